/* Unit tests for daemon/deadline.c in Asia/Shanghai with the shipped
 * conf/holidays-cn.conf: month terms and month ends as 刑诉法解释 第二百零二条
 * 第一款 counts them, hour terms from the next whole hour, day terms moved off
 * Spring Festival or kept on an adjusted working Sunday, working-day terms
 * across Spring Festival and National Day 2025, warning offsets in days,
 * working days, hours and seconds, `until`, extensions, pauses, red repeats,
 * calendar coverage errors, and the end of a day where DST starts at
 * midnight.
 *
 * Every expected instant is written by hand as a Shanghai wall-clock time
 * and converted with timegm() minus 8 hours, never with calendar.c.
 * conf/holidays-cn.conf is found under $DUEWATCH_SOURCE_DIR, else the
 * current directory (the repository root when make runs the tests). */
#include "deadline.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

static struct holidays *holidays;

static day_number civil_day(int year, int month, int day)
{
    struct tm utc = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day};
    return (day_number)((int64_t)timegm(&utc) / 86400);
}

/* Epoch ms of a wall-clock time in Asia/Shanghai (UTC+8). */
static int64_t at(int year, int month, int day, int hour, int minute, int second, int ms)
{
    struct tm utc = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                     .tm_hour = hour, .tm_min = minute, .tm_sec = second};
    return ((int64_t)timegm(&utc) - 8 * 3600) * 1000 + ms;
}

/* 00:00 Shanghai time of a date. */
static int64_t midnight(int year, int month, int day)
{
    return at(year, month, day, 0, 0, 0, 0);
}

static struct deadline_spec term(enum duration_unit unit, int32_t amount, bool move)
{
    struct deadline_spec spec = {.length = {unit, amount}, .move_to_working_day = move};
    return spec;
}

static void set_yellow(struct deadline_spec *spec, enum duration_unit unit, int32_t amount)
{
    spec->has_yellow = true;
    spec->yellow_before = (struct duration){unit, amount};
}

static void set_orange(struct deadline_spec *spec, enum duration_unit unit, int32_t amount)
{
    spec->has_orange = true;
    spec->orange_before = (struct duration){unit, amount};
}

/* Computes and fails the test with the reason on error. */
static struct deadline_result compute(const struct deadline_spec *spec,
                                      const struct holidays *calendar, int64_t start_ms,
                                      int64_t until_ms)
{
    struct deadline_result result;
    char err[256] = "";
    if (deadline_compute(spec, calendar, start_ms, until_ms, &result, err, sizeof err) != 0)
        fail_msg("deadline_compute: %s", err);
    assert_string_equal(err, "");
    return result;
}

/* The error of a computation that must fail; *out must stay untouched. */
static void expect_compute_error(const struct deadline_spec *spec,
                                 const struct holidays *calendar, int64_t start_ms,
                                 int64_t until_ms, const char *reason)
{
    struct deadline_result result, untouched;
    memset(&result, 0x5a, sizeof result);
    memcpy(&untouched, &result, sizeof result);
    char err[256] = "";
    assert_int_equal(deadline_compute(spec, calendar, start_ms, until_ms, &result, err, sizeof err),
                     -1);
    assert_string_equal(err, reason);
    assert_memory_equal(&result, &untouched, sizeof result);
}

static void expect_last_day(const struct deadline_result *result, int year, int month, int day)
{
    assert_int_equal(result->last_day, civil_day(year, month, day));
    assert_int_equal(result->deadline_ms, midnight(year, month, day) + DAY_MS);
}

static int setup(void **state)
{
    (void)state;
    char err[512], path[512];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0)
        return -1;
    const char *directory = getenv("DUEWATCH_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/conf/holidays-cn.conf",
             directory && directory[0] ? directory : ".");
    holidays = holidays_load(path, err, sizeof err);
    if (holidays == NULL) {
        fprintf(stderr, "%s (set DUEWATCH_SOURCE_DIR to the repository root)\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    holidays_destroy(holidays);
    return 0;
}

static int restore_shanghai(void **state)
{
    (void)state;
    char err[256];
    return calendar_init("Asia/Shanghai", err, sizeof err);
}

/* ---- month terms ---- */

/* 取保候审 12 months from 2024-03-15: "自本月某日至下月同日为一个月", the
 * start day not counted: last day 2025-03-15 (a Saturday), whatever the
 * hour of the start; with the rule's move (not in custody) Monday 03-17. */
static void test_bail_twelve_months(void **state)
{
    (void)state;
    struct deadline_spec spec = term(DURATION_MONTHS, 12, false);
    set_yellow(&spec, DURATION_DAYS, 15);
    set_orange(&spec, DURATION_DAYS, 3);
    static const int start_times[][3] = {{0, 0, 0}, {10, 30, 0}, {23, 59, 59}};
    for (size_t i = 0; i < 3; i++) {
        int64_t start = at(2024, 3, 15, start_times[i][0], start_times[i][1], start_times[i][2], 0);
        /* No working-day logic is needed: no calendar required. */
        struct deadline_result result = compute(&spec, NULL, start, 0);
        assert_int_equal(result.last_day, civil_day(2025, 3, 15));
        assert_int_equal(result.deadline_ms, midnight(2025, 3, 16));
        assert_int_equal(result.deadline_ms, INT64_C(1742054400000)); /* 2025-03-15T16:00Z */
        assert_int_equal(result.yellow_due_ms, midnight(2025, 3, 1));
        assert_int_equal(result.orange_due_ms, midnight(2025, 3, 13));
    }
    /* Moved off the weekend: last day Monday 2025-03-17, levels counted back
     * from it. */
    spec.move_to_working_day = true;
    struct deadline_result moved = compute(&spec, holidays, at(2024, 3, 15, 9, 0, 0, 0), 0);
    expect_last_day(&moved, 2025, 3, 17);
    assert_int_equal(moved.yellow_due_ms, midnight(2025, 3, 3));
    assert_int_equal(moved.orange_due_ms, midnight(2025, 3, 15));
    /* The move needs the calendar: without it, an error, never a guess. */
    expect_compute_error(&spec, NULL, at(2024, 3, 15, 9, 0, 0, 0), 0,
                         "working days needed (for 2025-03-15) but no holiday calendar");
}

/* The same day-of-month N months later; the last day of that month when the
 * start is the last day of its month or that month has no such day; N
 * months at once, not month by month. */
static void test_month_ends(void **state)
{
    (void)state;
    static const struct {
        int start[3], months, last[3];
    } cases[] = {
        {{2024, 3, 15}, 12, {2025, 3, 15}}, /* 下月同日 */
        {{2024, 2, 29}, 12, {2025, 2, 28}}, /* start on a month end */
        {{2024, 8, 31}, 6, {2025, 2, 28}},  /* README's example */
        {{2024, 4, 30}, 1, {2024, 5, 31}},  /* a month end -> the month end, not 05-30 */
        {{2024, 1, 31}, 1, {2024, 2, 29}},
        {{2023, 8, 31}, 6, {2024, 2, 29}},
        {{2023, 2, 28}, 12, {2024, 2, 29}}, /* 02-28 ends February 2023 */
        {{2024, 2, 28}, 1, {2024, 3, 28}},  /* 02-28 does not end February 2024 */
        {{2024, 1, 30}, 1, {2024, 2, 29}},  /* no 02-30: the month end */
        {{2024, 1, 29}, 1, {2024, 2, 29}},
        {{2024, 1, 28}, 1, {2024, 2, 28}},
        {{2024, 1, 30}, 2, {2024, 3, 30}},  /* at once: not 02-29 -> 03-31 */
        {{2024, 5, 31}, 1, {2024, 6, 30}},
        {{2024, 6, 30}, 1, {2024, 7, 31}},
        {{2024, 7, 31}, 2, {2024, 9, 30}},
        {{2024, 3, 1}, 1, {2024, 4, 1}},
        {{2024, 12, 15}, 1, {2025, 1, 15}},
        {{2024, 11, 30}, 3, {2025, 2, 28}},
        {{2024, 12, 31}, 2, {2025, 2, 28}},
        {{2025, 3, 31}, 11, {2026, 2, 28}},
        {{2025, 1, 1}, 24, {2027, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct deadline_spec spec = term(DURATION_MONTHS, cases[i].months, false);
        struct deadline_result result = compute(
            &spec, NULL, at(cases[i].start[0], cases[i].start[1], cases[i].start[2], 14, 0, 0, 0),
            0);
        if (result.last_day != civil_day(cases[i].last[0], cases[i].last[1], cases[i].last[2]))
            fail_msg("case %zu: last day %d, expected %04d-%02d-%02d", i, (int)result.last_day,
                     cases[i].last[0], cases[i].last[1], cases[i].last[2]);
        expect_last_day(&result, cases[i].last[0], cases[i].last[1], cases[i].last[2]);
    }
}

/* A month term whose last day is a holiday moves when the rule says so. */
static void test_month_term_moves(void **state)
{
    (void)state;
    /* 2024-09-30 + 12 months = 2025-09-30 (Tuesday, worked): stays. */
    struct deadline_spec spec = term(DURATION_MONTHS, 12, true);
    struct deadline_result result = compute(&spec, holidays, at(2024, 9, 30, 8, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 9, 30);
    /* 2024-10-01 + 12 months = 2025-10-01 (National Day): -> 10-09. */
    result = compute(&spec, holidays, at(2024, 10, 1, 8, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 10, 9);
    /* Without the move (custody) it stays on the holiday. */
    spec.move_to_working_day = false;
    result = compute(&spec, NULL, at(2024, 10, 1, 8, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 10, 1);
}

/* ---- day terms ---- */

static void test_days_moved_off_spring_festival(void **state)
{
    (void)state;
    /* 2025-01-02 + 30 days = 2025-02-01, a Saturday inside 01-28..02-04. */
    struct deadline_spec spec = term(DURATION_DAYS, 30, true);
    struct deadline_result result = compute(&spec, holidays, at(2025, 1, 2, 9, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 2, 5);
    assert_int_equal(result.deadline_ms, midnight(2025, 2, 6));
    assert_int_equal(result.yellow_due_ms, DEADLINE_NO_LEVEL);
    assert_int_equal(result.orange_due_ms, DEADLINE_NO_LEVEL);
    /* Without the move flag the last day stays, and no calendar is needed. */
    spec.move_to_working_day = false;
    result = compute(&spec, NULL, at(2025, 1, 2, 9, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 2, 1);
    /* The starting day is not counted: 23:59 on 01-02 is still day 0. */
    result = compute(&spec, NULL, at(2025, 1, 2, 23, 59, 59, 999), 0);
    expect_last_day(&result, 2025, 2, 1);
    result = compute(&spec, NULL, at(2025, 1, 3, 0, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 2, 2);
    /* README's example: 3 days from 2025-01-27 15:00 -> last day 01-30. */
    spec = term(DURATION_DAYS, 3, false);
    result = compute(&spec, NULL, at(2025, 1, 27, 15, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 1, 30);
    assert_int_equal(result.deadline_ms, midnight(2025, 1, 31));
}

static void test_days_on_adjusted_working_sunday(void **state)
{
    (void)state;
    /* 2024-12-27 + 30 days = 2025-01-26, a Sunday worked (调休): no move. */
    struct deadline_spec spec = term(DURATION_DAYS, 30, true);
    struct deadline_result result = compute(&spec, holidays, at(2024, 12, 27, 16, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 1, 26);
    /* 2025-02-13 + 30 days = 2025-03-15, a plain Saturday: -> Monday 03-17. */
    result = compute(&spec, holidays, at(2025, 2, 13, 16, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 3, 17);
}

/* ---- working-day terms ---- */

static void test_working_days_across_spring_festival(void **state)
{
    (void)state;
    /* After Friday 2025-01-24: 01-26 (Sun, worked), 01-27, then 02-05,
     * 02-06, 02-07, 02-08 (Sat, worked), 02-10. */
    static const int expected[7][2] = {{1, 26}, {1, 27}, {2, 5}, {2, 6},
                                       {2, 7},  {2, 8},  {2, 10}};
    for (int n = 1; n <= 7; n++) {
        struct deadline_spec spec = term(DURATION_WORKING_DAYS, n, false);
        struct deadline_result result =
            compute(&spec, holidays, at(2025, 1, 24, 15, 0, 0, 0), 0);
        expect_last_day(&result, 2025, expected[n - 1][0], expected[n - 1][1]);
    }
}

static void test_working_days_across_national_day(void **state)
{
    (void)state;
    /* After Friday 2025-09-26: 09-28 (Sun, worked), 09-29, 09-30, then
     * 10-09, 10-10, 10-11 (Sat, worked), 10-13. */
    static const int expected[7][2] = {{9, 28},  {9, 29},  {9, 30}, {10, 9},
                                       {10, 10}, {10, 11}, {10, 13}};
    for (int n = 1; n <= 7; n++) {
        struct deadline_spec spec = term(DURATION_WORKING_DAYS, n, true);
        struct deadline_result result =
            compute(&spec, holidays, at(2025, 9, 26, 10, 0, 0, 0), 0);
        expect_last_day(&result, 2025, expected[n - 1][0], expected[n - 1][1]);
    }
    /* 7 working days: last day Monday 10-13; 2 working days before is the
     * worked Saturday 10-11, 3 before is 10-10, 4 before 10-09, 5 before
     * jumps back over the holiday to 09-30. */
    struct deadline_spec spec = term(DURATION_WORKING_DAYS, 7, false);
    set_yellow(&spec, DURATION_WORKING_DAYS, 2);
    set_orange(&spec, DURATION_WORKING_DAYS, 5);
    struct deadline_result result = compute(&spec, holidays, at(2025, 9, 26, 10, 0, 0, 0), 0);
    assert_int_equal(result.last_day, 20374);                     /* 2025-10-13 */
    assert_int_equal(result.deadline_ms, INT64_C(1760371200000)); /* 2025-10-14 00:00 +08 */
    assert_int_equal(result.yellow_due_ms, INT64_C(1760112000000)); /* 2025-10-11 00:00 +08 */
    assert_int_equal(result.orange_due_ms, midnight(2025, 9, 30));
}

/* ---- the specification's examples, as literal instants ---- */

static void test_specified_examples(void **state)
{
    (void)state;
    struct deadline_result result;

    /* 7 working days from Friday 2025-01-24 across Spring Festival 2025:
     * last day 2025-02-10, deadline 2025-02-11 00:00, 2 working days before
     * = 2025-02-08 00:00 (the worked Saturday). */
    struct deadline_spec spec = term(DURATION_WORKING_DAYS, 7, false);
    set_yellow(&spec, DURATION_WORKING_DAYS, 2);
    result = compute(&spec, holidays, at(2025, 1, 24, 9, 30, 0, 0), 0);
    assert_int_equal(result.last_day, 20129);                       /* 2025-02-10 */
    assert_int_equal(result.deadline_ms, INT64_C(1739203200000));   /* 2025-02-11 00:00 +08 */
    assert_int_equal(result.yellow_due_ms, INT64_C(1738944000000)); /* 2025-02-08 00:00 +08 */
    assert_int_equal(result.orange_due_ms, DEADLINE_NO_LEVEL);

    /* 30 calendar days with move from 2025-01-02: 02-01 (Spring Festival)
     * moves to Wednesday 2025-02-05. */
    spec = term(DURATION_DAYS, 30, true);
    result = compute(&spec, holidays, at(2025, 1, 2, 14, 0, 0, 0), 0);
    assert_int_equal(result.last_day, civil_day(2025, 2, 5));
    assert_int_equal(result.deadline_ms, INT64_C(1738771200000)); /* 2025-02-06 00:00 +08 */

    /* A day rule ending on the worked Sunday 2025-01-26 does not move:
     * 2025-01-16 + 10 days. */
    spec = term(DURATION_DAYS, 10, true);
    result = compute(&spec, holidays, at(2025, 1, 16, 14, 0, 0, 0), 0);
    assert_int_equal(result.last_day, 20114);                     /* 2025-01-26 */
    assert_int_equal(result.deadline_ms, INT64_C(1737907200000)); /* 2025-01-27 00:00 +08 */

    /* Custody: 3 days without move from 2025-01-27 -> last day 01-30 (the
     * holiday does not matter). */
    spec = term(DURATION_DAYS, 3, false);
    result = compute(&spec, holidays, at(2025, 1, 27, 22, 15, 0, 0), 0);
    assert_int_equal(result.last_day, civil_day(2025, 1, 30));
    assert_int_equal(result.deadline_ms, INT64_C(1738252800000)); /* 2025-01-31 00:00 +08 */

    /* 24 hours from 2025-01-10 08:00: the hour 08:00..09:00 is not counted,
     * so 2025-01-11 09:00; 12 hours before -> 2025-01-10 21:00. */
    spec = term(DURATION_HOURS, 24, false);
    set_yellow(&spec, DURATION_HOURS, 12);
    result = compute(&spec, holidays, INT64_C(1736467200000) /* 2025-01-10 08:00 +08 */, 0);
    assert_int_equal(result.deadline_ms, INT64_C(1736557200000));   /* 2025-01-11 09:00 +08 */
    assert_int_equal(result.yellow_due_ms, INT64_C(1736514000000)); /* 2025-01-10 21:00 +08 */
    assert_int_equal(result.last_day, civil_day(2025, 1, 11));

    /* Bail 取保候审 12 months from 2024-03-15 (moved off rest days): to
     * 2025-03-15, a Saturday, so last day Monday 2025-03-17, deadline
     * 2025-03-18 00:00; 15 days before = 2025-03-03 00:00, 3 days before =
     * 2025-03-15 00:00. */
    spec = term(DURATION_MONTHS, 12, true);
    set_yellow(&spec, DURATION_DAYS, 15);
    set_orange(&spec, DURATION_DAYS, 3);
    result = compute(&spec, holidays, at(2024, 3, 15, 16, 20, 0, 0), 0);
    assert_int_equal(result.last_day, 20164);                       /* 2025-03-17 */
    assert_int_equal(result.deadline_ms, INT64_C(1742227200000));   /* 2025-03-18 00:00 +08 */
    assert_int_equal(result.yellow_due_ms, INT64_C(1740931200000)); /* 2025-03-03 00:00 +08 */
    assert_int_equal(result.orange_due_ms, INT64_C(1741968000000)); /* 2025-03-15 00:00 +08 */

    /* until: the deadline is until, the last day that of until - 1 ms. */
    spec = term(DURATION_MONTHS, 12, true);
    result = compute(&spec, holidays, at(2024, 3, 15, 16, 20, 0, 0),
                     INT64_C(1741968000000) /* 2025-03-15 00:00 +08 */);
    assert_int_equal(result.deadline_ms, INT64_C(1741968000000));
    assert_int_equal(result.last_day, 20161); /* 2025-03-14 */
    result = compute(&spec, holidays, at(2024, 3, 15, 16, 20, 0, 0),
                     INT64_C(1741968000001) /* 2025-03-15 00:00:00.001 +08, a Saturday */);
    assert_int_equal(result.deadline_ms, INT64_C(1741968000001)); /* not moved */
    assert_int_equal(result.last_day, 20162);                     /* 2025-03-15 */
}

/* A working-day rule started on Wednesday 2035-12-26 whose term reaches 2036,
 * beyond the calendar's last (provisional) year: an error naming the first
 * unknown date, never a guess. */
static void test_working_days_beyond_calendar(void **state)
{
    (void)state;
    /* 12-27, 12-28, 12-31 are worked; the 4th needs 2036-01-01. */
    struct deadline_spec spec = term(DURATION_WORKING_DAYS, 7, false);
    expect_compute_error(&spec, holidays, at(2035, 12, 26, 10, 0, 0, 0), 0,
                         "working days of 2036-01-01 are not in the holiday calendar "
                         "(2024-01-01..2035-12-31)");
    struct deadline_result result;
    char err[256] = "";
    assert_int_equal(
        deadline_compute(&spec, holidays, at(2035, 12, 26, 10, 0, 0, 0), 0, &result, err,
                         sizeof err),
        -1);
    assert_non_null(strstr(err, "2036-01-01"));
    /* 3 working days still fit: last day Monday 2035-12-31. */
    spec = term(DURATION_WORKING_DAYS, 3, false);
    result = compute(&spec, holidays, at(2035, 12, 26, 10, 0, 0, 0), 0);
    expect_last_day(&result, 2035, 12, 31);
}

/* deadline_warning_due on its own, from a hand-made deadline. */
static void test_warning_due_directly(void **state)
{
    (void)state;
    /* Last day Friday 2025-03-14, deadline 2025-03-15 00:00 +08. */
    const struct deadline_result bail = {.last_day = 20161,
                                         .deadline_ms = INT64_C(1741968000000),
                                         .yellow_due_ms = DEADLINE_NO_LEVEL,
                                         .orange_due_ms = DEADLINE_NO_LEVEL};
    static const struct {
        struct duration before;
        int64_t due;
    } cases[] = {
        {{DURATION_DAYS, 1}, INT64_C(1741881600000)},          /* 03-14 00:00 */
        {{DURATION_DAYS, 3}, INT64_C(1741708800000)},          /* 03-12 00:00 */
        {{DURATION_DAYS, 15}, INT64_C(1740672000000)},         /* 02-28 00:00 */
        {{DURATION_WORKING_DAYS, 1}, INT64_C(1741881600000)},  /* 03-14 00:00 */
        {{DURATION_WORKING_DAYS, 3}, INT64_C(1741708800000)},  /* 03-12 00:00 */
        {{DURATION_WORKING_DAYS, 6}, INT64_C(1741276800000)},  /* 03-07 00:00 (Fri) */
        {{DURATION_HOURS, 12}, INT64_C(1741924800000)},        /* 03-14 12:00 */
        {{DURATION_HOURS, 48}, INT64_C(1741795200000)},        /* 03-13 00:00 */
        {{DURATION_SECONDS, 1}, INT64_C(1741967999000)},       /* 03-14 23:59:59 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t due = 0;
        char err[256] = "";
        if (deadline_warning_due(&cases[i].before, holidays, &bail, &due, err, sizeof err) != 0)
            fail_msg("case %zu: %s", i, err);
        if (due != cases[i].due)
            fail_msg("case %zu: due %lld, expected %lld", i, (long long)due,
                     (long long)cases[i].due);
    }

    /* Last day Saturday 2025-02-01 (a holiday): the 1st working day back is
     * 01-27, the 2nd the worked Sunday 01-26, the 3rd Friday 01-24. */
    const struct deadline_result festival = {.last_day = civil_day(2025, 2, 1),
                                             .deadline_ms = midnight(2025, 2, 2)};
    static const int64_t back[3] = {INT64_C(1737907200000),  /* 01-27 00:00 */
                                    INT64_C(1737820800000),  /* 01-26 00:00 */
                                    INT64_C(1737648000000)}; /* 01-24 00:00 */
    for (int n = 1; n <= 3; n++) {
        struct duration before = {DURATION_WORKING_DAYS, n};
        int64_t due = 0;
        char err[256] = "";
        assert_int_equal(deadline_warning_due(&before, holidays, &festival, &due, err, sizeof err),
                         0);
        assert_int_equal(due, back[n - 1]);
    }

    /* Errors: months, no calendar for working days. */
    int64_t due = 42;
    char err[256] = "";
    struct duration months = {DURATION_MONTHS, 1};
    assert_int_equal(deadline_warning_due(&months, holidays, &bail, &due, err, sizeof err), -1);
    assert_string_equal(err, "a warning cannot be given in months");
    struct duration working_days = {DURATION_WORKING_DAYS, 2};
    assert_int_equal(deadline_warning_due(&working_days, NULL, &bail, &due, err, sizeof err), -1);
    assert_string_equal(err, "working days needed (for 2025-03-14) but no holiday calendar");
    assert_int_equal(due, 42);
}

/* ---- warning offsets ---- */

static void test_working_day_offsets(void **state)
{
    (void)state;
    /* 7 working days from 2025-01-24: last day Monday 02-10 (worked). */
    struct deadline_spec spec = term(DURATION_WORKING_DAYS, 7, false);
    set_yellow(&spec, DURATION_WORKING_DAYS, 2);
    set_orange(&spec, DURATION_WORKING_DAYS, 1);
    struct deadline_result result = compute(&spec, holidays, at(2025, 1, 24, 15, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 2, 10);
    assert_int_equal(result.orange_due_ms, midnight(2025, 2, 10)); /* the last day is the 1st */
    assert_int_equal(result.yellow_due_ms, midnight(2025, 2, 8));  /* Saturday, worked */
    set_yellow(&spec, DURATION_WORKING_DAYS, 5);                   /* 02-10 08 07 06 05 */
    result = compute(&spec, holidays, at(2025, 1, 24, 15, 0, 0, 0), 0);
    assert_int_equal(result.yellow_due_ms, midnight(2025, 2, 5));
    set_yellow(&spec, DURATION_WORKING_DAYS, 6);                   /* back across the festival */
    result = compute(&spec, holidays, at(2025, 1, 24, 15, 0, 0, 0), 0);
    assert_int_equal(result.yellow_due_ms, midnight(2025, 1, 27));

    /* 8 days from 2025-01-24 without move: last day 02-01, a holiday.  The
     * 1st working day counting back is 01-27, the 2nd 01-26 (Sun, worked). */
    spec = term(DURATION_DAYS, 8, false);
    set_yellow(&spec, DURATION_WORKING_DAYS, 2);
    set_orange(&spec, DURATION_WORKING_DAYS, 1);
    result = compute(&spec, holidays, at(2025, 1, 24, 15, 0, 0, 0), 0);
    expect_last_day(&result, 2025, 2, 1);
    assert_int_equal(result.orange_due_ms, midnight(2025, 1, 27));
    assert_int_equal(result.yellow_due_ms, midnight(2025, 1, 26));
    /* Calendar days count back from the last day whatever it is. */
    set_orange(&spec, DURATION_DAYS, 1);
    set_yellow(&spec, DURATION_DAYS, 7);
    result = compute(&spec, holidays, at(2025, 1, 24, 15, 0, 0, 0), 0);
    assert_int_equal(result.orange_due_ms, midnight(2025, 2, 1));
    assert_int_equal(result.yellow_due_ms, midnight(2025, 1, 26));
}

/* ---- exact durations ---- */

static void test_hours(void **state)
{
    (void)state;
    /* "开始的时不算": 10:30:15.123 is in the hour 10:00..11:00, which is not
     * counted; 24 hours from 11:00. */
    struct deadline_spec spec = term(DURATION_HOURS, 24, false);
    set_orange(&spec, DURATION_HOURS, 12);
    set_yellow(&spec, DURATION_DAYS, 1);
    struct deadline_result result = compute(&spec, NULL, at(2025, 3, 14, 10, 30, 15, 123), 0);
    assert_int_equal(result.deadline_ms, at(2025, 3, 15, 11, 0, 0, 0));
    assert_int_equal(result.last_day, civil_day(2025, 3, 15));
    assert_int_equal(result.orange_due_ms, at(2025, 3, 14, 23, 0, 0, 0));
    assert_int_equal(result.yellow_due_ms, midnight(2025, 3, 15));
    /* README's example: decided 10:37, 24 hours: 11:00 the next day; also
     * from exactly 10:00:00.000 (its hour is not counted either) and from
     * 10:59:59.999. */
    assert_int_equal(compute(&spec, NULL, at(2025, 3, 14, 10, 37, 0, 0), 0).deadline_ms,
                     at(2025, 3, 15, 11, 0, 0, 0));
    assert_int_equal(compute(&spec, NULL, at(2025, 3, 14, 10, 0, 0, 0), 0).deadline_ms,
                     at(2025, 3, 15, 11, 0, 0, 0));
    assert_int_equal(compute(&spec, NULL, at(2025, 3, 14, 10, 59, 59, 999), 0).deadline_ms,
                     at(2025, 3, 15, 11, 0, 0, 0));
    assert_int_equal(compute(&spec, NULL, at(2025, 3, 14, 9, 59, 59, 999), 0).deadline_ms,
                     at(2025, 3, 15, 10, 0, 0, 0));
    /* From 23:xx the count starts at midnight: the deadline is the next
     * midnight, and the last day the day before it. */
    result = compute(&spec, NULL, at(2025, 3, 13, 23, 10, 0, 0), 0);
    assert_int_equal(result.deadline_ms, midnight(2025, 3, 15));
    assert_int_equal(result.last_day, civil_day(2025, 3, 14));
    /* From local midnight: 01:00 the next day. */
    result = compute(&spec, NULL, midnight(2025, 3, 14), 0);
    assert_int_equal(result.deadline_ms, at(2025, 3, 15, 1, 0, 0, 0));
    assert_int_equal(result.last_day, civil_day(2025, 3, 15));
    /* One hour: the end of the next whole hour. */
    spec = term(DURATION_HOURS, 1, false);
    assert_int_equal(compute(&spec, NULL, at(2025, 3, 14, 10, 37, 0, 0), 0).deadline_ms,
                     at(2025, 3, 14, 12, 0, 0, 0));
    /* Hour rules never move, even on a Saturday with the flag set. */
    spec = term(DURATION_HOURS, 24, true);
    result = compute(&spec, NULL, at(2025, 3, 14, 10, 30, 0, 0), 0);
    assert_int_equal(result.deadline_ms, at(2025, 3, 15, 11, 0, 0, 0));
    assert_int_equal(result.last_day, civil_day(2025, 3, 15));
}

static void test_seconds(void **state)
{
    (void)state;
    struct deadline_spec spec = term(DURATION_SECONDS, 90, false);
    set_yellow(&spec, DURATION_SECONDS, 60);
    struct deadline_result result = compute(&spec, NULL, at(2025, 3, 14, 23, 59, 0, 7), 0);
    assert_int_equal(result.deadline_ms, at(2025, 3, 15, 0, 0, 30, 7));
    assert_int_equal(result.last_day, civil_day(2025, 3, 15));
    assert_int_equal(result.yellow_due_ms, at(2025, 3, 14, 23, 59, 30, 7));
    assert_int_equal(result.orange_due_ms, DEADLINE_NO_LEVEL);
}

/* ---- until ---- */

static void test_until(void **state)
{
    (void)state;
    struct deadline_spec spec = term(DURATION_DAYS, 30, true);
    set_yellow(&spec, DURATION_DAYS, 1);
    set_orange(&spec, DURATION_HOURS, 2);
    /* Saturday noon: until is the deadline, nothing moves. */
    int64_t until = at(2025, 3, 22, 12, 0, 0, 0);
    struct deadline_result result = compute(&spec, holidays, at(2025, 3, 1, 9, 0, 0, 0), until);
    assert_int_equal(result.deadline_ms, until);
    assert_int_equal(result.last_day, civil_day(2025, 3, 22));
    assert_int_equal(result.yellow_due_ms, midnight(2025, 3, 22));
    assert_int_equal(result.orange_due_ms, at(2025, 3, 22, 10, 0, 0, 0));
    /* Until midnight: the last day is the day before. */
    until = midnight(2025, 3, 21);
    result = compute(&spec, holidays, at(2025, 3, 1, 9, 0, 0, 0), until);
    assert_int_equal(result.deadline_ms, until);
    assert_int_equal(result.last_day, civil_day(2025, 3, 20));
    assert_int_equal(result.yellow_due_ms, midnight(2025, 3, 20));
    /* Also for hour rules. */
    spec = term(DURATION_HOURS, 24, false);
    result = compute(&spec, NULL, at(2025, 3, 1, 9, 0, 0, 0), at(2025, 3, 5, 17, 45, 0, 0));
    assert_int_equal(result.deadline_ms, at(2025, 3, 5, 17, 45, 0, 0));
    assert_int_equal(result.last_day, civil_day(2025, 3, 5));
}

/* ---- extensions ---- */

/* One extension of a last day (the deadline engine applies them one at a
 * time, in order: tests/golden/deadlines.json has the clock-level cases). */
static day_number extended(const struct deadline_spec *spec, day_number last_day, int32_t days)
{
    day_number out;
    char err[256] = "";
    if (deadline_extend_last_day(spec, holidays, last_day, days, &out, err, sizeof err) != 0)
        fail_msg("deadline_extend_last_day: %s", err);
    return out;
}

static void test_extension_of_a_last_day(void **state)
{
    (void)state;
    /* 2025-01-02 + 30 days = 02-01 (Spring Festival) -> 02-05 with the move. */
    struct deadline_spec spec = term(DURATION_DAYS, 30, true);
    assert_int_equal(extended(&spec, civil_day(2025, 1, 2), 30), civil_day(2025, 2, 5));
    /* Without the move the extended last day stays on the holiday. */
    spec.move_to_working_day = false;
    assert_int_equal(extended(&spec, civil_day(2025, 1, 2), 30), civil_day(2025, 2, 1));
    /* A negative extension shortens the term the same way. */
    assert_int_equal(extended(&spec, civil_day(2025, 1, 2), -2), civil_day(2024, 12, 31));
    /* Working days always end on a working day: 02-10 + 5 = Saturday 02-15
     * -> Monday 02-17. */
    spec = term(DURATION_WORKING_DAYS, 7, false);
    assert_int_equal(extended(&spec, civil_day(2025, 2, 10), 5), civil_day(2025, 2, 17));
    /* Beyond the calendar the move cannot be made: an error, never a guess. */
    spec = term(DURATION_DAYS, 30, true);
    day_number out;
    char err[256] = "";
    assert_int_equal(deadline_extend_last_day(&spec, holidays, civil_day(2035, 12, 20), 20, &out,
                                              err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "not in the holiday calendar"));
}

/* ---- red repeats ---- */

static void test_red_repeats(void **state)
{
    (void)state;
    const int64_t deadline = midnight(2025, 3, 15);
    assert_int_equal(deadline_red_due_ms(deadline, DAY_MS, 0), deadline);
    assert_int_equal(deadline_red_due_ms(deadline, DAY_MS, 1), midnight(2025, 3, 16));
    assert_int_equal(deadline_red_due_ms(deadline, DAY_MS, 3), midnight(2025, 3, 18));
    assert_int_equal(deadline_red_due_ms(deadline, DAY_MS, -1), DEADLINE_NO_LEVEL);
    assert_int_equal(deadline_red_due_ms(deadline, 0, 0), deadline);
    assert_int_equal(deadline_red_due_ms(deadline, 0, 1), DEADLINE_NO_LEVEL);
    assert_int_equal(deadline_red_due_ms(deadline, DAY_MS, INT64_MAX / 2), INT64_MAX);

    assert_int_equal(deadline_red_latest_repeat(deadline, DAY_MS, deadline - 1), -1);
    assert_int_equal(deadline_red_latest_repeat(deadline, DAY_MS, deadline), 0);
    assert_int_equal(deadline_red_latest_repeat(deadline, DAY_MS, deadline + DAY_MS - 1), 0);
    assert_int_equal(deadline_red_latest_repeat(deadline, DAY_MS, deadline + DAY_MS), 1);
    assert_int_equal(deadline_red_latest_repeat(deadline, DAY_MS, at(2025, 3, 18, 12, 0, 0, 0)),
                     3);
    assert_int_equal(deadline_red_latest_repeat(deadline, 4 * HOUR_MS, deadline + 9 * HOUR_MS), 2);
    assert_int_equal(deadline_red_latest_repeat(deadline, 0, deadline - 1), -1);
    assert_int_equal(deadline_red_latest_repeat(deadline, 0, deadline + 10 * DAY_MS), 0);
    assert_int_equal(deadline_red_latest_repeat(INT64_MIN, 1, INT64_MAX), INT64_MAX);
    /* The two agree: repeat k is due no later than now, k + 1 after it. */
    for (int64_t now = deadline; now < deadline + 5 * DAY_MS; now += 7 * HOUR_MS + 1) {
        int64_t k = deadline_red_latest_repeat(deadline, 6 * HOUR_MS, now);
        assert_true(deadline_red_due_ms(deadline, 6 * HOUR_MS, k) <= now);
        assert_true(deadline_red_due_ms(deadline, 6 * HOUR_MS, k + 1) > now);
    }
}

/* ---- errors ---- */

static void test_out_of_coverage(void **state)
{
    (void)state;
    struct deadline_spec spec = term(DURATION_WORKING_DAYS, 3, false);
    /* After Friday 2035-12-28: 12-31 counts, then 2036-01-01 is unknown. */
    expect_compute_error(&spec, holidays, at(2035, 12, 28, 9, 0, 0, 0), 0,
                         "working days of 2036-01-01 are not in the holiday calendar "
                         "(2024-01-01..2035-12-31)");
    expect_compute_error(&spec, holidays, at(2036, 3, 1, 9, 0, 0, 0), 0,
                         "working days of 2036-03-02 are not in the holiday calendar "
                         "(2024-01-01..2035-12-31)");
    /* A working-day rule with no calendar at all. */
    expect_compute_error(&spec, NULL, at(2025, 1, 24, 9, 0, 0, 0), 0,
                         "working days needed (for 2025-01-25) but no holiday calendar");
    /* A day rule moving a last day in 2036: 2035-12-03 + 30 = 2036-01-02. */
    spec = term(DURATION_DAYS, 30, true);
    expect_compute_error(&spec, holidays, at(2035, 12, 3, 9, 0, 0, 0), 0,
                         "working days of 2036-01-02 are not in the holiday calendar "
                         "(2024-01-01..2035-12-31)");
    /* ... but without the move no working day is needed. */
    spec.move_to_working_day = false;
    struct deadline_result result = compute(&spec, holidays, at(2035, 12, 3, 9, 0, 0, 0), 0);
    expect_last_day(&result, 2036, 1, 2);
    /* A working-day warning counting back before 2024: last day 2024-01-02
     * is the 1st, 2024-01-01 a holiday, 2023-12-31 unknown. */
    spec = term(DURATION_DAYS, 1, false);
    set_yellow(&spec, DURATION_WORKING_DAYS, 2);
    expect_compute_error(&spec, holidays, at(2024, 1, 1, 9, 0, 0, 0), 0,
                         "working days of 2023-12-31 are not in the holiday calendar "
                         "(2024-01-01..2035-12-31)");
    /* An extension into 2036 on a working-day rule: 2035-12-04 + 40 days =
     * 2036-01-13. */
    spec = term(DURATION_WORKING_DAYS, 1, false);
    day_number out;
    char err[256] = "";
    assert_int_equal(deadline_extend_last_day(&spec, holidays, civil_day(2035, 12, 4), 40, &out,
                                              err, sizeof err),
                     -1);
    assert_string_equal(err, "working days of 2036-01-13 are not in the holiday calendar "
                             "(2024-01-01..2035-12-31)");
}

static void test_bad_specs(void **state)
{
    (void)state;
    struct deadline_spec spec = term(DURATION_DAYS, 0, false);
    expect_compute_error(&spec, NULL, at(2025, 3, 1, 9, 0, 0, 0), 0,
                         "length: amount must be at least 1 and the unit known");
    spec = term(DURATION_DAYS, 10, false);
    set_yellow(&spec, DURATION_MONTHS, 1);
    expect_compute_error(&spec, NULL, at(2025, 3, 1, 9, 0, 0, 0), 0,
                         "a warning cannot be given in months");
    spec = term(DURATION_DAYS, 10, false);
    set_orange(&spec, DURATION_WORKING_DAYS, 0);
    expect_compute_error(&spec, holidays, at(2025, 3, 1, 9, 0, 0, 0), 0,
                         "warning: amount must be at least 1 and the unit known");
}

/* ---- DST ---- */

/* Sao Paulo 2018-11-04 began at 01:00 (DST started at midnight): a one-day
 * term from 11-02 ends at the first instant of 11-04, 03:00Z. */
static void test_end_of_day_with_dst_at_midnight(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(calendar_init("America/Sao_Paulo", err, sizeof err), 0);
    struct deadline_spec spec = term(DURATION_DAYS, 1, false);
    set_yellow(&spec, DURATION_DAYS, 1);
    /* 2018-11-02 12:00 -03:00 = 15:00Z */
    struct deadline_result result = compute(&spec, NULL, INT64_C(1541170800000), 0);
    assert_int_equal(result.last_day, civil_day(2018, 11, 3));
    assert_int_equal(result.deadline_ms, INT64_C(1541300400000)); /* 2018-11-04T03:00Z */
    assert_int_equal(result.yellow_due_ms, INT64_C(1541214000000)); /* 2018-11-03T03:00Z */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bail_twelve_months),
        cmocka_unit_test(test_month_ends),
        cmocka_unit_test(test_month_term_moves),
        cmocka_unit_test(test_days_moved_off_spring_festival),
        cmocka_unit_test(test_days_on_adjusted_working_sunday),
        cmocka_unit_test(test_working_days_across_spring_festival),
        cmocka_unit_test(test_working_days_across_national_day),
        cmocka_unit_test(test_specified_examples),
        cmocka_unit_test(test_working_days_beyond_calendar),
        cmocka_unit_test(test_warning_due_directly),
        cmocka_unit_test(test_working_day_offsets),
        cmocka_unit_test(test_hours),
        cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_until),
        cmocka_unit_test(test_extension_of_a_last_day),
        cmocka_unit_test(test_red_repeats),
        cmocka_unit_test(test_out_of_coverage),
        cmocka_unit_test(test_bad_specs),
        cmocka_unit_test_teardown(test_end_of_day_with_dst_at_midnight, restore_shanghai),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
