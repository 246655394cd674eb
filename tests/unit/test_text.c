/* text.h: keys and fields built piece by piece give what snprintf gives,
 * cut the same way when the buffer is short. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "text.h"

static void test_pieces_join_like_snprintf(void **state)
{
    (void)state;
    char built[64], expected[64];
    struct text_buffer text = text_start(built, sizeof built);
    text_add(&text, "dw:");
    text_add_bytes(&text, "wm:xyz", 3);
    text_add_bytes(&text, NULL, 0); /* an absent field: nothing, and no memcpy of NULL */
    text_add_number(&text, INT64_C(29567140));
    text_add_char(&text, ':');
    text_add_number(&text, INT64_C(-42));
    text_add_char(&text, ':');
    text_add_number(&text, INT64_MIN);
    snprintf(expected, sizeof expected, "dw:wm:%d:%d:%lld", 29567140, -42, (long long)INT64_MIN);
    assert_string_equal(built, expected);
    assert_int_equal(text.length, strlen(expected));
}

static void test_padded_numbers(void **state)
{
    (void)state;
    char built[32];
    struct text_buffer text = text_start(built, sizeof built);
    text_add_padded(&text, 7, 4);
    text_add_char(&text, '-');
    text_add_padded(&text, 3, 2);
    text_add_char(&text, '-');
    text_add_padded(&text, 2026, 4);
    text_add_char(&text, '-');
    text_add_padded(&text, 0, 2);
    assert_string_equal(built, "0007-03-2026-00");
}

/* A short buffer keeps what fits and its NUL, as snprintf does. */
static void test_cut_at_the_buffer_end(void **state)
{
    (void)state;
    char built[8];
    struct text_buffer text = text_start(built, sizeof built);
    text_add(&text, "dw:clock:");
    text_add(&text, "bail_expiry");
    text_add_number(&text, 12345);
    assert_string_equal(built, "dw:cloc"); /* snprintf's 7 bytes and the NUL */
    assert_int_equal(text.length, sizeof built - 1);
    char one[1];
    text = text_start(one, sizeof one);
    text_add(&text, "anything");
    assert_int_equal(one[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pieces_join_like_snprintf),
        cmocka_unit_test(test_padded_numbers),
        cmocka_unit_test(test_cut_at_the_buffer_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
