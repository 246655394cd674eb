/* Unit tests for the batch reducer: the exact EVALSHA argument list
 * daemon/lua/apply_batch.lua reads (its header documents the layout) for a
 * small batch over two partitions -- counter groups shared across partitions,
 * a clock.tick that only moves its partition's time, a start with its record
 * head and first due time, a stop with the partition time before it, the
 * fence -- and what the batch reports back for storing offsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "calendar.h"

#define TS 1796004000000LL /* 2026-11-30 10:00 in Asia/Shanghai (a Monday) */

static int released;
static void count_release(void *message)
{
    (void)message;
    released++;
}

static struct text text_of(const char *s) { return (struct text){s, (uint32_t)strlen(s)}; }

static struct duewatch_event event_of(enum event_type type, const char *id, int64_t ts)
{
    return (struct duewatch_event){.type = type, .ts_ms = ts, .id = text_of(id),
                                   .unit = text_of("500112-XJ01"), .case_number = text_of("A1"),
                                   .ref = text_of("M1"), .subject = text_of("P9")};
}

static void add(struct batch *batch, int32_t partition, int64_t offset,
                const struct duewatch_event *event, const struct clock_op *ops, int op_count)
{
    static int message;
    assert_int_equal(batch_hold(batch, &message, "events", partition, offset), 0);
    assert_int_equal(batch_add_event(batch, event, TS + 1000, ops, op_count), 0);
}

static void expect_arguments(int argc, const char **argv, const size_t *lengths,
                             const char *const *expected, int expected_count)
{
    assert_int_equal(argc, expected_count);
    for (int i = 0; i < argc; i++) {
        char actual[256];
        snprintf(actual, sizeof actual, "%.*s", (int)lengths[i], argv[i]);
        if (strcmp(actual, expected[i]) != 0)
            fail_msg("argument %d: '%s', expected '%s'", i, actual, expected[i]);
    }
}

static void test_layout_of_a_batch(void **state)
{
    (void)state;
    struct batch *batch = batch_create(16, count_release);
    assert_non_null(batch);
    struct clock_op start = {.kind = CLOCK_OP_START, .rule = "bail_expiry", .key = text_of("M1"),
                             .has_last_day = true, .last_day = 20786,
                             .base_deadline_ms = 1827504000000LL,
                             .first_due_ms = 1826208000000LL};
    struct clock_op stop = {.kind = CLOCK_OP_STOP, .rule = "bail_expiry", .key = text_of("M1")};

    struct duewatch_event started = event_of(EVENT_MEASURE_STARTED, "e1", TS);
    struct duewatch_event filed = event_of(EVENT_CASE_FILED, "e2", TS + 5);
    struct duewatch_event tick = event_of(EVENT_CLOCK_TICK, "", TS + 9);
    struct duewatch_event ended = event_of(EVENT_MEASURE_ENDED, "e4", TS + 7);
    struct duewatch_event filed_elsewhere = event_of(EVENT_CASE_FILED, "e5", TS + 3);
    add(batch, 0, 40, &started, &start, 1);
    add(batch, 0, 41, &filed, NULL, 0);
    add(batch, 0, 42, &tick, NULL, 0);
    add(batch, 0, 43, &ended, &stop, 1);
    add(batch, 1, 7, &filed_elsewhere, NULL, 0);
    assert_int_equal(batch_event_count(batch), 5); /* the tick too */
    assert_int_equal(batch_message_count(batch), 5);

    const struct batch_settings settings = {
        .key_prefix = "dw:", .dedupe_ttl_seconds = 2592000, .counter_ttl_seconds = 34560000,
        .event_time = false, .now_ms = TS + 1000, .lua_calendar = "CAL", .lua_rules = "RULES",
        .fence_chain = "00000000000000ab-1", .fence_position = 3};
    const char **argv;
    const size_t *lengths;
    int argc = batch_build_command(batch, "SHA", &settings, &argv, &lengths);
    static const char *const expected[] = {
        "EVALSHA", "SHA", "0",
        /* header */
        "dw:", "2592000", "34560000", "3", "4", "2", "wall", "1796004001000", "CAL", "RULES",
        "2", "00000000000000ab-1", "3",
        /* counter groups: unit, type, day, week, month, hour, minute, events */
        "500112-XJ01", "measure.started", "2026-11-30", "2026-W49", "2026-11", "498890",
        "29933400", "1",
        "500112-XJ01", "case.filed", "2026-11-30", "2026-W49", "2026-11", "498890", "29933400",
        "2",
        "500112-XJ01", "measure.ended", "2026-11-30", "2026-W49", "2026-11", "498890",
        "29933400", "1",
        /* partitions: key, next offset, highest ts (the tick's) */
        "events:0", "44", "1796004000009",
        "events:1", "8", "1796004000003",
        /* events with ids: id, group */
        "e1", "1", "e2", "2", "e4", "3", "e5", "2",
        /* clock events: number, ts, partition, partition time before, ops */
        "1", "1796004000000", "1", "-1", "1",
        "S", "bail_expiry", "M1", "ref", "500112-XJ01",
        "500112-XJ01|A1|P9|e1|1796004000000|20786|1827504000000", "1826208000000", "",
        "3", "1796004000007", "1", "1796004000009", "1",
        "X", "bail_expiry", "M1", "ref", "measure.ended",
    };
    expect_arguments(argc, argv, lengths, expected, (int)(sizeof expected / sizeof *expected));

    const char *topic;
    int32_t partition;
    int64_t next_offset, max_event_time;
    assert_int_equal(batch_partition_count(batch), 2);
    batch_partition(batch, 0, &topic, &partition, &next_offset, &max_event_time);
    assert_string_equal(topic, "events");
    assert_int_equal(partition, 0);
    assert_int_equal(next_offset, 44);
    assert_int_equal(max_event_time, TS + 9);

    released = 0;
    batch_reset(batch);
    assert_int_equal(released, 5);
    assert_int_equal(batch_event_count(batch), 0);
    /* A reset batch builds an empty command with no stale groups or events. */
    argc = batch_build_command(batch, "SHA", &settings, &argv, &lengths);
    assert_int_equal(argc, 3 + 13);
    batch_destroy(batch);
}

static void test_full_batch_refuses_more(void **state)
{
    (void)state;
    struct batch *batch = batch_create(2, NULL);
    assert_non_null(batch);
    struct duewatch_event event = event_of(EVENT_CASE_FILED, "e1", TS);
    int message;
    assert_int_equal(batch_hold(batch, &message, "events", 0, 1), 0);
    assert_int_equal(batch_add_event(batch, &event, TS, NULL, 0), 0);
    assert_int_equal(batch_hold(batch, &message, "events", 0, 2), 0);
    assert_true(batch_is_full(batch));
    assert_int_equal(batch_hold(batch, &message, "events", 0, 3), -1);
    batch_destroy(batch);
    batch_destroy(NULL);
}

int main(void)
{
    char err[256];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0) {
        fprintf(stderr, "calendar_init: %s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_of_a_batch),
        cmocka_unit_test(test_full_batch_refuses_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
