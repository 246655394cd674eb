/* Unit tests for daemon/log.c's rate limit: lines are grouped by call site
 * (the format string); a site writes its first 50 lines of an interval and
 * counts the rest, which one summary line reports; another site is not
 * affected; debug lines are never limited.  stderr is redirected to a pipe
 * to read what was written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int saved_stderr = -1;
static int pipe_read = -1;

/* stderr into a non-blocking pipe (large enough for what a test writes). */
static void capture(void)
{
    int fds[2];
    assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    saved_stderr = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    pipe_read = fds[0];
}

/* Restores stderr; returns what was written (caller frees). */
static char *captured(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    size_t size = 0, capacity = 1 << 20;
    char *text = malloc(capacity + 1);
    assert_non_null(text);
    ssize_t got;
    while ((got = read(pipe_read, text + size, capacity - size)) > 0)
        size += (size_t)got;
    close(pipe_read);
    text[size] = '\0';
    return text;
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *at = strstr(text, needle); at; at = strstr(at + 1, needle))
        n++;
    return n;
}

static void test_a_site_over_its_burst_is_summarized(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_DEBUG);
    capture();
    for (int i = 0; i < 1000; i++)
        log_warning("flood line %d", i);
    log_notice("another site");
    for (int i = 0; i < 60; i++)
        log_debug("debug line %d", i);
    log_flush_suppressed();
    char *text = captured();
    assert_int_equal(count(text, "<4>flood line "), 50);
    assert_non_null(strstr(text, "<4>flood line 49\n"));
    assert_null(strstr(text, "flood line 50\n"));
    assert_int_equal(count(text, "<5>another site\n"), 1);
    assert_int_equal(count(text, "<7>debug line "), 60);
    assert_int_equal(count(text, "suppressed"), 1);
    assert_non_null(
        strstr(text, "<4>log: 950 more lines like \"flood line %d\" suppressed in the last "));
    free(text);
}

static void test_levels_above_the_threshold_do_not_count(void **state)
{
    (void)state;
    log_set_level(LOG_LEVEL_WARNING);
    capture();
    for (int i = 0; i < 100; i++)
        log_info("quiet line %d", i);
    for (int i = 0; i < 3; i++)
        log_error("loud line %d", i);
    log_flush_suppressed();
    char *text = captured();
    assert_int_equal(count(text, "quiet line"), 0);
    assert_int_equal(count(text, "<3>loud line "), 3);
    assert_int_equal(count(text, "suppressed"), 0);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_site_over_its_burst_is_summarized),
        cmocka_unit_test(test_levels_above_the_threshold_do_not_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
