/* Unit tests for daemon/effects.c: the exact `EVALSHA sha 0 ARGV...` it
 * builds for daemon/lua/apply_effects.lua (layout at the script's top) from
 * the changes collected, by the aggregation rules of include/effects.h:
 *  - the header: argument format version, fence chain and position;
 *  - checks come first, whatever the order they were made in (value checks,
 *    then field checks, each kind in the order made);
 *  - string values: the last change per key wins, sets in one MSET, deletions
 *    in one DEL; hash fields the same (HDEL before HSET per key); due-index
 *    entries the same (ZREM before ZADD per key); listings once each;
 *  - counters summed per key and field (one HINCRBYS per key), EXPIRE once per key;
 *    running counts summed per key (INCRBY, a sum of 0 kept); SADD with its
 *    EXPIRE; EXPIRE with the last ttl given;
 *  - ordered zset changes and FORGETs one command each, in the order made;
 *  - a command of more than 4000 arguments continues in more commands of the
 *    same name and key, never splitting a pair;
 *  - reset empties it, effects_any_write ignores checks;
 *  - within a kind, keys (and a key's fields) come in the order they were
 *    first mentioned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "effects.h"
#include "script_argv.h"

#define COUNT_OF(array) (sizeof(array) / sizeof *(array))

static struct effects *under_test; /* destroyed by the teardown, also after a failure */

/* New effects under test (those before destroyed). */
static struct effects *created(void)
{
    effects_destroy(under_test);
    under_test = effects_create();
    assert_non_null(under_test);
    return under_test;
}

static int destroy_effects(void **state)
{
    (void)state;
    effects_destroy(under_test);
    under_test = NULL;
    return 0;
}

/* Builds (unfenced, script "SHA") and compares the lines (script_argv.h). */
static void expect_build(struct effects *effects, const char *const *expected,
                         size_t expected_count)
{
    const char **argv;
    const size_t *lengths;
    int argc = effects_build(effects, "SHA", "", 0, &argv, &lengths);
    assert_true(argc > 0);
    static struct argv_lines lines;
    argv_lines_read(argc, argv, lengths, &lines);
    argv_lines_expect(&lines, expected, expected_count);
}

static void test_header_and_fence(void **state)
{
    (void)state;
    struct effects *effects = created();
    const char **argv;
    const size_t *lengths;
    assert_false(effects_any_write(effects));
    static const char *const empty[] = {"EVALSHA", "SHA", "0", ARGS_VERSION, "dw:fence:00ab-1", "3", "0"};
    int argc = effects_build(effects, "SHA", "dw:fence:00ab-1", 3, &argv, &lengths);
    assert_int_equal(argc, 7);
    for (int i = 0; i < argc; i++) {
        assert_int_equal(lengths[i], strlen(empty[i]));
        assert_memory_equal(argv[i], empty[i], lengths[i]);
    }
    /* unfenced: an empty chain, position 0 */
    static const char *const unfenced[] = {"EVALSHA SHA 0 " ARGS_VERSION " '' 0", "checks 0"};
    expect_build(effects, unfenced, COUNT_OF(unfenced));
    effects_destroy(NULL); /* accepted */
}

static void test_checks_come_first(void **state)
{
    (void)state;
    struct effects *effects = created();
    assert_int_equal(effects_expect_field(effects, "dw:claimed", "events:0", NULL), 0);
    assert_false(effects_any_write(effects));
    assert_int_equal(effects_set_value(effects, "dw:clock:r:k", "@1|new", 6), 0);
    assert_true(effects_any_write(effects));
    assert_int_equal(effects_expect_value(effects, "dw:clock:r:k", "@1|old|x", 6), 0);
    assert_int_equal(effects_expect_absent(effects, "dw:clock:r:j"), 0);
    assert_int_equal(effects_expect_field(effects, "dw:claimed", "events:1", "1700"), 0);
    static const char *const expected[] = {
        "EVALSHA SHA 0 " ARGS_VERSION " '' 0",
        "checks 4",
        "V dw:clock:r:k @1|old", /* value_length 6: only those bytes */
        "A dw:clock:r:j",
        "h dw:claimed events:0",
        "H dw:claimed events:1 1700",
        "MSET dw:clock:r:k @1|new",
    };
    expect_build(effects, expected, COUNT_OF(expected));
}

static void test_last_change_wins(void **state)
{
    (void)state;
    struct effects *effects = created();
    /* string values: k:a set twice, k:c set then deleted, k:d deleted then set */
    assert_int_equal(effects_set_value(effects, "k:a", "1", 1), 0);
    assert_int_equal(effects_set_value(effects, "k:c", "x", 1), 0);
    assert_int_equal(effects_set_value(effects, "k:d", NULL, 0), 0);
    assert_int_equal(effects_set_value(effects, "k:b", "2", 1), 0);
    assert_int_equal(effects_set_value(effects, "k:a", "3", 1), 0);
    assert_int_equal(effects_set_value(effects, "k:c", NULL, 0), 0);
    assert_int_equal(effects_set_value(effects, "k:d", "y", 1), 0);
    /* hash fields: f1 set then removed, f3 removed then set */
    assert_int_equal(effects_hash(effects, "h", "f1", "v1", 2), 0);
    assert_int_equal(effects_hash(effects, "h", "f3", NULL, 0), 0);
    assert_int_equal(effects_hash(effects, "h", "f2", "v2", 2), 0);
    assert_int_equal(effects_hash(effects, "h", "f1", NULL, 0), 0);
    assert_int_equal(effects_hash(effects, "h", "f3", "v3", 2), 0);
    /* due-index entries: r:a moved, r:b removed, r:c added then removed */
    assert_int_equal(effects_index(effects, "dw:due:p:5", "r:a", 3000001, false), 0);
    assert_int_equal(effects_index(effects, "dw:due:p:5", "r:c", 3000009, false), 0);
    assert_int_equal(effects_index(effects, "dw:due:p:5", "r:b", 0, true), 0);
    assert_int_equal(effects_index(effects, "dw:due:p:5", "r:a", 3000002, false), 0);
    assert_int_equal(effects_index(effects, "dw:due:p:5", "r:c", 0, true), 0);
    /* listings: once each */
    assert_int_equal(effects_listing(effects, "dw:due:p", "5", 3000000), 0);
    assert_int_equal(effects_listing(effects, "dw:due:p", "4", 2400000), 0);
    assert_int_equal(effects_listing(effects, "dw:due:p", "5", 3000000), 0);
    static const char *const expected[] = {
        "EVALSHA SHA 0 " ARGS_VERSION " '' 0",
        "checks 0",
        "MSET k:a 3 k:d y k:b 2",
        "DEL k:c",
        "ZREM dw:due:p:5 r:c r:b",
        "ZADD dw:due:p:5 3000002 r:a",
        "ZADD dw:due:p 3000000 5 2400000 4",
        "HDEL h f1",
        "HSET h f3 v3 f2 v2",
    };
    expect_build(effects, expected, COUNT_OF(expected));
}

static void test_counters_summed(void **state)
{
    (void)state;
    struct effects *effects = created();
    assert_int_equal(effects_count(effects, "dw:d:2026-11-30:_all", "case.filed", 2, 100), 0);
    assert_int_equal(effects_add(effects, "dw:active:r:_all", 1), 0);
    assert_int_equal(effects_count(effects, "dw:d:2026-11-30:u1", "case.filed", 1, 50), 0);
    assert_int_equal(effects_count(effects, "dw:d:2026-11-30:_all", "alert.r.red", 1, 100), 0);
    assert_int_equal(effects_count(effects, "dw:d:2026-11-30:_all", "case.filed", 3, 100), 0);
    assert_int_equal(effects_add(effects, "dw:active:r:u1", 2), 0);
    assert_int_equal(effects_add(effects, "dw:active:r:_all", -1), 0);
    assert_int_equal(effects_add(effects, "dw:active:r:u1", 3), 0);
    /* a counter summing to 0 is kept as well */
    assert_int_equal(effects_count(effects, "dw:d:2026-11-30:u1", "case.closed", 1, 50), 0);
    assert_int_equal(effects_count(effects, "dw:d:2026-11-30:u1", "case.closed", -1, 50), 0);
    /* amounts of every sign and size, as decimal text */
    assert_int_equal(effects_add(effects, "dw:active:r:u2", -120), 0);
    assert_int_equal(effects_add(effects, "dw:active:r:u3", INT64_MIN), 0);
    assert_int_equal(effects_add(effects, "dw:active:r:u4", INT64_MAX), 0);
    static const char *const expected[] = {
        "EVALSHA SHA 0 " ARGS_VERSION " '' 0",
        "checks 0",
        /* one command per key, each field's sum once */
        "HINCRBYS dw:d:2026-11-30:_all case.filed 5 alert.r.red 1",
        "EXPIRE dw:d:2026-11-30:_all 100",
        "HINCRBYS dw:d:2026-11-30:u1 case.filed 1 case.closed 0",
        "EXPIRE dw:d:2026-11-30:u1 50",
        "INCRBY dw:active:r:_all 0", /* 1 - 1: kept, as INCR then DECR would be */
        "INCRBY dw:active:r:u1 5",
        "INCRBY dw:active:r:u2 -120",
        "INCRBY dw:active:r:u3 -9223372036854775808",
        "INCRBY dw:active:r:u4 9223372036854775807",
    };
    expect_build(effects, expected, COUNT_OF(expected));
}

static void test_members_expire_ordered_forget(void **state)
{
    (void)state;
    struct effects *effects = created();
    assert_int_equal(effects_ordered_zset(effects, "dw:overdue:r:u2", "k1", 10, false), 0);
    assert_int_equal(effects_set_member(effects, "dw:ev:2026-11-28", "e2", 2, 3456000), 0);
    assert_int_equal(effects_forget_if_gone(effects, "dw:due:events:0",
                                            "dw:due:events:0:2993340", "2993340"), 0);
    assert_int_equal(effects_ordered_zset(effects, "dw:overdue:r:u1", "k1", 0, true), 0);
    assert_int_equal(effects_expire(effects, "dw:stopped:2026-11-28", 10), 0);
    assert_int_equal(effects_set_member(effects, "dw:ev:2026-11-28", "e1xyz", 2, 3456000), 0);
    assert_int_equal(effects_ordered_zset(effects, "dw:overdue:r:u2", "k1", 20, false), 0);
    assert_int_equal(effects_expire(effects, "dw:stopped:2026-11-28", 20), 0);
    assert_int_equal(effects_forget_if_gone(effects, "dw:due:events:0",
                                            "dw:due:events:0:2993339", "2993339"), 0);
    static const char *const expected[] = {
        "EVALSHA SHA 0 " ARGS_VERSION " '' 0",
        "checks 0",
        "SADD dw:ev:2026-11-28 e2 e1",
        "EXPIRE dw:ev:2026-11-28 3456000",
        "EXPIRE dw:stopped:2026-11-28 20", /* the last ttl given */
        /* ordered changes, then FORGETs, each in the order made */
        "ZADD dw:overdue:r:u2 10 k1",
        "ZREM dw:overdue:r:u1 k1",
        "ZADD dw:overdue:r:u2 20 k1",
        "FORGET dw:due:events:0 dw:due:events:0:2993340 2993340",
        "FORGET dw:due:events:0 dw:due:events:0:2993339 2993339",
    };
    expect_build(effects, expected, COUNT_OF(expected));
}

/* Distinct counts: one command per members hash and count, with each
 * member given once (HSET would count a repeated one once too: the script
 * adds what HSET says was new, but the repeat costs Redis a write); a listed
 * set's members once each, kept for good (no EXPIRE). */
static void test_distinct_and_kept_sets(void **state)
{
    (void)state;
    struct effects *effects = created();
    const char *const month = "dw:pm:2026-10:u1", *const count = "dw:m:2026-10:u1";
    assert_int_equal(effects_count_distinct(effects, month, "measure.started:bail|P1", count,
                                            "persons.measure.started:bail"),
                     0);
    assert_int_equal(effects_list_member(effects, "dw:running", "bail_expiry:u1"), 0);
    assert_int_equal(effects_list_member(effects, "dw:running", "rs_expiry:u1"), 0);
    assert_int_equal(effects_list_member(effects, "dw:running", "bail_expiry:u1"), 0);
    assert_int_equal(effects_count_distinct(effects, month, "measure.started:rs|P1", count,
                                            "persons.measure.started:rs"),
                     0);
    assert_int_equal(effects_count_distinct(effects, month, "measure.started:bail|P2", count,
                                            "persons.measure.started:bail"),
                     0);
    assert_int_equal(effects_count_distinct(effects, month, "measure.started:bail|P1", count,
                                            "persons.measure.started:bail"),
                     0);
    static const char *const expected[] = {
        "EVALSHA SHA 0 " ARGS_VERSION " '' 0",
        "checks 0",
        "SADD dw:running bail_expiry:u1 rs_expiry:u1", /* each listed member once */
        /* each member once, in byte order */
        "DISTINCT dw:pm:2026-10:u1 dw:m:2026-10:u1 persons.measure.started:bail "
        "measure.started:bail|P1 measure.started:bail|P2",
        "DISTINCT dw:pm:2026-10:u1 dw:m:2026-10:u1 persons.measure.started:rs "
        "measure.started:rs|P1",
    };
    expect_build(effects, expected, COUNT_OF(expected));
}

static void test_reset_empties(void **state)
{
    (void)state;
    struct effects *effects = created();
    assert_int_equal(effects_set_value(effects, "k", "v", 1), 0);
    assert_int_equal(effects_expect_absent(effects, "k"), 0);
    const char **argv;
    const size_t *lengths;
    assert_int_equal(effects_build(effects, "SHA", "", 0, &argv, &lengths), 7 + 2 + 4);
    effects_reset(effects);
    assert_false(effects_any_write(effects));
    static const char *const expected[] = {"EVALSHA SHA 0 " ARGS_VERSION " '' 0", "checks 0"};
    expect_build(effects, expected, COUNT_OF(expected));
    assert_int_equal(effects_hash(effects, "h", "f", "v", 1), 0);
    static const char *const after[] = {"EVALSHA SHA 0 " ARGS_VERSION " '' 0", "checks 0", "HSET h f v"};
    expect_build(effects, after, COUNT_OF(after));
}

/* ---- chunking ---- */

/* One command of a build: where its arguments start, and how many. */
struct command {
    char name[16];
    size_t first, count;
};

/* The commands after the (absent) checks of an unfenced build. */
static size_t commands_of(int argc, const char **argv, const size_t *lengths,
                          struct command *out, size_t max)
{
    assert_int_equal(argv_number(argv, lengths, 6, argc), 0);
    size_t n = 0;
    for (int at = 7; at < argc; n++) {
        assert_true(n < max);
        assert_true(lengths[at] < sizeof out[n].name);
        snprintf(out[n].name, sizeof out[n].name, "%.*s", (int)lengths[at], argv[at]);
        out[n].count = (size_t)argv_number(argv, lengths, at + 1, argc);
        out[n].first = (size_t)at + 2;
        at += 2 + (int)out[n].count;
        assert_true(at <= argc);
    }
    return n;
}

static void expect_arg(const char **argv, const size_t *lengths, size_t index, const char *text)
{
    char actual[64];
    snprintf(actual, sizeof actual, "%.*s", (int)lengths[index], argv[index]);
    assert_string_equal(actual, text);
}

/* 4001 members of one set: SADD key + 3999 (4000 arguments), SADD key + 2. */
static void test_chunking_members(void **state)
{
    (void)state;
    struct effects *effects = created();
    char member[16];
    for (int i = 0; i < 4001; i++) {
        int length = snprintf(member, sizeof member, "m%04d", i);
        assert_int_equal(effects_set_member(effects, "s", member, (size_t)length, 60), 0);
    }
    const char **argv;
    const size_t *lengths;
    int argc = effects_build(effects, "SHA", "", 0, &argv, &lengths);
    struct command commands[8];
    assert_int_equal(commands_of(argc, argv, lengths, commands, 8), 3);
    assert_string_equal(commands[0].name, "SADD");
    assert_int_equal(commands[0].count, 4000);
    assert_string_equal(commands[1].name, "SADD");
    assert_int_equal(commands[1].count, 3);
    assert_string_equal(commands[2].name, "EXPIRE");
    int next = 0;
    for (int c = 0; c < 2; c++) {
        expect_arg(argv, lengths, commands[c].first, "s");
        for (size_t k = 1; k < commands[c].count; k++) {
            snprintf(member, sizeof member, "m%04d", next++);
            expect_arg(argv, lengths, commands[c].first + k, member);
        }
    }
    assert_int_equal(next, 4001);
    expect_arg(argv, lengths, commands[2].first, "s");
    expect_arg(argv, lengths, commands[2].first + 1, "60");
}

/* 2001 string values: MSET of 2000 pairs, MSET of 1; 2000 hash fields:
 * HSET key + 1999 pairs, HSET key + 1 pair. */
/* A key's counters and a count's members continue in further commands
 * that repeat their head (the key; the members hash, count key and field),
 * the DISTINCT ones at half the room (the script makes member/value pairs). */
static void test_chunking_counts_and_distinct(void **state)
{
    (void)state;
    struct effects *effects = created();
    char field[16];
    for (int i = 0; i < 2000; i++) {
        snprintf(field, sizeof field, "f%04d", i);
        assert_int_equal(effects_count(effects, "c", field, i + 1, 0), 0);
        for (int repeat = 0; repeat < 2; repeat++) /* a repeat is written once */
            assert_int_equal(effects_count_distinct(effects, "p", field, "c", "persons.x"), 0);
    }
    const char **argv;
    const size_t *lengths;
    int argc = effects_build(effects, "SHA", "", 0, &argv, &lengths);
    struct command commands[8];
    assert_int_equal(commands_of(argc, argv, lengths, commands, 8), 4);
    static const char *const names[] = {"HINCRBYS", "HINCRBYS", "DISTINCT", "DISTINCT"};
    static const size_t counts[] = {3999, 3, 2000, 6};
    for (int c = 0; c < 4; c++) {
        assert_string_equal(commands[c].name, names[c]);
        assert_int_equal(commands[c].count, counts[c]);
        expect_arg(argv, lengths, commands[c].first, c < 2 ? "c" : "p");
    }
    expect_arg(argv, lengths, commands[1].first + 1, "f1999");
    expect_arg(argv, lengths, commands[1].first + 2, "2000");
    expect_arg(argv, lengths, commands[3].first + 1, "c");
    expect_arg(argv, lengths, commands[3].first + 2, "persons.x");
    expect_arg(argv, lengths, commands[3].first + 3, "f1997");
}

static void test_chunking_pairs(void **state)
{
    (void)state;
    struct effects *effects = created();
    char key[16], value[16];
    for (int i = 0; i < 2001; i++) {
        snprintf(key, sizeof key, "k%04d", i);
        int length = snprintf(value, sizeof value, "v%04d", i);
        assert_int_equal(effects_set_value(effects, key, value, (size_t)length), 0);
        if (i < 2000)
            assert_int_equal(effects_hash(effects, "h", key, value, (size_t)length), 0);
    }
    const char **argv;
    const size_t *lengths;
    int argc = effects_build(effects, "SHA", "", 0, &argv, &lengths);
    struct command commands[8];
    assert_int_equal(commands_of(argc, argv, lengths, commands, 8), 4);
    static const char *const names[] = {"MSET", "MSET", "HSET", "HSET"};
    static const size_t counts[] = {4000, 2, 3999, 3};
    int pair = 0;
    for (int c = 0; c < 4; c++) {
        assert_string_equal(commands[c].name, names[c]);
        assert_int_equal(commands[c].count, counts[c]);
        size_t at = commands[c].first;
        if (c == 2)
            pair = 0; /* the hash's fields start again from k0000 */
        if (c >= 2)
            expect_arg(argv, lengths, at++, "h");
        for (; at < commands[c].first + commands[c].count; at += 2, pair++) {
            snprintf(key, sizeof key, "k%04d", pair);
            snprintf(value, sizeof value, "v%04d", pair);
            expect_arg(argv, lengths, at, key);
            expect_arg(argv, lengths, at + 1, value);
        }
    }
    assert_int_equal(pair, 2000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_header_and_fence, destroy_effects),
        cmocka_unit_test_teardown(test_checks_come_first, destroy_effects),
        cmocka_unit_test_teardown(test_last_change_wins, destroy_effects),
        cmocka_unit_test_teardown(test_counters_summed, destroy_effects),
        cmocka_unit_test_teardown(test_members_expire_ordered_forget, destroy_effects),
        cmocka_unit_test_teardown(test_distinct_and_kept_sets, destroy_effects),
        cmocka_unit_test_teardown(test_reset_empties, destroy_effects),
        cmocka_unit_test_teardown(test_chunking_members, destroy_effects),
        cmocka_unit_test_teardown(test_chunking_pairs, destroy_effects),
        cmocka_unit_test_teardown(test_chunking_counts_and_distinct, destroy_effects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
