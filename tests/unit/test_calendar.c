/* Unit tests for daemon/calendar.c: day numbers <-> civil dates, weekdays,
 * month lengths, the time-zone check of calendar_init, local days and their
 * start instants (Asia/Shanghai, and two zones whose DST touches midnight),
 * the start of the local hour (Asia/Shanghai, Asia/Kolkata at +05:30),
 * the per-thread local-day cache, ISO 8601 week buckets.
 *
 * Expected values come from independent sources: timegm()/gmtime_r() for
 * civil dates, strftime's %G/%V for ISO weeks, and hand-written UTC+8
 * arithmetic for Asia/Shanghai instants. */
#include "calendar.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define DAY_MS INT64_C(86400000)
#define HOUR_MS INT64_C(3600000)

/* Day number of a civil date by way of timegm (not calendar.c). */
static day_number civil_day(int year, int month, int day)
{
    struct tm utc = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day};
    return (day_number)((int64_t)timegm(&utc) / 86400);
}

/* Epoch ms of a wall-clock time in Asia/Shanghai (UTC+8, no DST since 1991). */
static int64_t shanghai_ms(int year, int month, int day, int hour, int minute, int second, int ms)
{
    struct tm utc = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day,
                     .tm_hour = hour, .tm_min = minute, .tm_sec = second};
    return ((int64_t)timegm(&utc) - 8 * 3600) * 1000 + ms;
}

static void use_zone(const char *zone)
{
    char err[256] = "";
    assert_int_equal(calendar_init(zone, err, sizeof err), 0);
    assert_string_equal(err, "");
}

/* Group setup, and teardown of the tests that switch zones (it runs even
 * when such a test fails half-way). */
static int setup_shanghai(void **state)
{
    (void)state;
    char err[256];
    return calendar_init("Asia/Shanghai", err, sizeof err);
}

/* ---- civil dates ---- */

static void test_known_day_numbers(void **state)
{
    (void)state;
    assert_int_equal(calendar_day_from_ymd(1970, 1, 1), 0);
    assert_int_equal(calendar_day_from_ymd(1969, 12, 31), -1);
    assert_int_equal(calendar_day_from_ymd(2000, 3, 1), 11017);
    assert_int_equal(calendar_day_from_ymd(2024, 2, 29), 19782);
    assert_int_equal(calendar_day_from_ymd(2025, 3, 14), 20161);
    assert_int_equal(calendar_day_from_ymd(1600, 3, 1), -135080);
    int year, month, day;
    calendar_day_to_ymd(-135080, &year, &month, &day);
    assert_int_equal(year, 1600);
    assert_int_equal(month, 3);
    assert_int_equal(day, 1);
    calendar_day_to_ymd(19782, &year, &month, &day);
    assert_int_equal(year, 2024);
    assert_int_equal(month, 2);
    assert_int_equal(day, 29);
}

/* Every day from 1601 to 2400 against gmtime_r, both directions. */
static void test_day_numbers_match_gmtime(void **state)
{
    (void)state;
    day_number first = civil_day(1601, 1, 1), last = civil_day(2400, 12, 31);
    for (day_number day = first; day <= last; day++) {
        time_t seconds = (time_t)day * 86400;
        struct tm utc;
        assert_non_null(gmtime_r(&seconds, &utc));
        int year, month, day_of_month;
        calendar_day_to_ymd(day, &year, &month, &day_of_month);
        if (year != utc.tm_year + 1900 || month != utc.tm_mon + 1 || day_of_month != utc.tm_mday)
            fail_msg("day %d: got %d-%d-%d", (int)day, year, month, day_of_month);
        if (calendar_day_from_ymd(year, month, day_of_month) != day)
            fail_msg("day %d does not round-trip", (int)day);
        /* tm_wday: 0 = Sunday; calendar_weekday: 0 = Monday */
        if (calendar_weekday(day) != (utc.tm_wday + 6) % 7)
            fail_msg("day %d: weekday %d, gmtime says %d", (int)day, calendar_weekday(day),
                     utc.tm_wday);
    }
}

static void test_weekday(void **state)
{
    (void)state;
    assert_int_equal(calendar_weekday(0), 3);                           /* Thursday */
    assert_int_equal(calendar_weekday(-1), 2);                          /* Wednesday */
    assert_int_equal(calendar_weekday(-7), 3);
    assert_int_equal(calendar_weekday(civil_day(2025, 3, 14)), 4);      /* Friday */
    assert_int_equal(calendar_weekday(civil_day(2025, 1, 26)), 6);      /* Sunday */
    assert_int_equal(calendar_weekday(civil_day(2024, 12, 30)), 0);     /* Monday */
    assert_int_equal(calendar_weekday(20089), 2);                       /* 2025-01-01, Wednesday */
    assert_int_equal(calendar_day_from_ymd(2025, 1, 1), 20089);
}

/* The range the daemon can meet, 1999-12-31 .. 2101-01-01, day by day: the
 * civil date round-trips and consecutive days are consecutive numbers. */
static void test_round_trip_1999_to_2101(void **state)
{
    (void)state;
    assert_int_equal(calendar_day_from_ymd(1999, 12, 31), 10956);
    assert_int_equal(calendar_day_from_ymd(2101, 1, 1), 47847);
    int previous_year = 1999, previous_month = 12, previous_day = 30;
    for (day_number day = 10956; day <= 47847; day++) {
        int year, month, day_of_month;
        calendar_day_to_ymd(day, &year, &month, &day_of_month);
        if (calendar_day_from_ymd(year, month, day_of_month) != day)
            fail_msg("day %d (%04d-%02d-%02d) does not round-trip", (int)day, year, month,
                     day_of_month);
        /* The next date after the previous one, by hand. */
        bool next_day = year == previous_year && month == previous_month &&
                        day_of_month == previous_day + 1;
        bool next_month = year == previous_year && month == previous_month + 1 &&
                          day_of_month == 1;
        bool next_year = year == previous_year + 1 && month == 1 && day_of_month == 1 &&
                         previous_month == 12 && previous_day == 31;
        if (!next_day && !next_month && !next_year)
            fail_msg("day %d is %04d-%02d-%02d after %04d-%02d-%02d", (int)day, year, month,
                     day_of_month, previous_year, previous_month, previous_day);
        previous_year = year;
        previous_month = month;
        previous_day = day_of_month;
    }
    assert_int_equal(previous_year, 2101);
    assert_int_equal(previous_month, 1);
    assert_int_equal(previous_day, 1);
}

static void test_days_in_month(void **state)
{
    (void)state;
    assert_int_equal(calendar_days_in_month(2024, 2), 29);
    assert_int_equal(calendar_days_in_month(2025, 2), 28);
    assert_int_equal(calendar_days_in_month(1900, 2), 28);
    assert_int_equal(calendar_days_in_month(2000, 2), 29);
    assert_int_equal(calendar_days_in_month(2100, 2), 28);
    assert_int_equal(calendar_days_in_month(2025, 1), 31);
    assert_int_equal(calendar_days_in_month(2025, 4), 30);
    assert_int_equal(calendar_days_in_month(2025, 12), 31);
    /* Against the day numbers of consecutive first days. */
    for (int year = 1999; year <= 2101; year++)
        for (int month = 1; month <= 12; month++) {
            int next_year = month == 12 ? year + 1 : year, next_month = month == 12 ? 1 : month + 1;
            assert_int_equal(calendar_days_in_month(year, month),
                             civil_day(next_year, next_month, 1) - civil_day(year, month, 1));
        }
}

static void test_format_day(void **state)
{
    (void)state;
    char buf[11];
    calendar_format_day(civil_day(2025, 3, 4), buf, sizeof buf);
    assert_string_equal(buf, "2025-03-04");
    calendar_format_day(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31");
    char short_buf[5];
    calendar_format_day(civil_day(2025, 3, 4), short_buf, sizeof short_buf);
    assert_string_equal(short_buf, "2025"); /* truncated, still terminated */
}

/* ---- time zone ---- */

static void test_init_rejects_bad_names(void **state)
{
    (void)state;
    char err[256];
    static const struct {
        const char *name, *message;
    } cases[] = {
        {"", "'' is not a time zone name (like Asia/Shanghai)"},
        {"/etc/localtime", "'/etc/localtime' is not a time zone name (like Asia/Shanghai)"},
        {"../etc/passwd", "'../etc/passwd' is not a time zone name (like Asia/Shanghai)"},
        {"../../etc/passwd", "'../../etc/passwd' is not a time zone name (like Asia/Shanghai)"},
        {"Asia/../Asia/Shanghai",
         "'Asia/../Asia/Shanghai' is not a time zone name (like Asia/Shanghai)"},
        {"Nowhere/City",
         "unknown time zone 'Nowhere/City' (no /usr/share/zoneinfo/Nowhere/City; is tzdata "
         "installed?)"},
        {"Mars/Olympus",
         "unknown time zone 'Mars/Olympus' (no /usr/share/zoneinfo/Mars/Olympus; is tzdata "
         "installed?)"},
        {"Asia", "unknown time zone 'Asia' (no /usr/share/zoneinfo/Asia; is tzdata installed?)"},
        /* files in the zoneinfo folder that are no zone, and leap-second zones */
        {"zone.tab", "'zone.tab' is not a usable time zone (like Asia/Shanghai)"},
        {"right/Asia/Shanghai",
         "'right/Asia/Shanghai' is not a usable time zone (like Asia/Shanghai)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        assert_int_equal(calendar_init(cases[i].name, err, sizeof err), -1);
        assert_string_equal(err, cases[i].message);
    }
    assert_int_equal(calendar_init(NULL, err, sizeof err), -1);
    /* A failed init leaves the zone as it was. */
    assert_int_equal(calendar_local_day(shanghai_ms(2025, 3, 14, 23, 59, 59, 999)),
                     civil_day(2025, 3, 14));
    assert_int_equal(calendar_local_day(shanghai_ms(2025, 3, 15, 0, 0, 0, 0)),
                     civil_day(2025, 3, 15));
}

/* ---- local days in Asia/Shanghai ---- */

static void test_shanghai_local_day_edges(void **state)
{
    (void)state;
    day_number march14 = civil_day(2025, 3, 14);
    assert_int_equal(calendar_local_day(shanghai_ms(2025, 3, 14, 0, 0, 0, 0)), march14);
    assert_int_equal(calendar_local_day(shanghai_ms(2025, 3, 14, 23, 59, 59, 999)), march14);
    assert_int_equal(calendar_local_day(shanghai_ms(2025, 3, 15, 0, 0, 0, 0)), march14 + 1);
    assert_int_equal(calendar_local_day(shanghai_ms(2025, 3, 13, 23, 59, 59, 999)), march14 - 1);
    /* Same UTC date, different local dates. */
    assert_int_equal(calendar_local_day(INT64_C(1741967999999)), march14);     /* 15:59:59.999Z */
    assert_int_equal(calendar_local_day(INT64_C(1741968000000)), march14 + 1); /* 16:00Z */
    /* Before the epoch: the floor of negative milliseconds. */
    assert_int_equal(calendar_local_day(-1), 0);                     /* 1970-01-01 07:59:59.999 */
    assert_int_equal(calendar_local_day(-8 * HOUR_MS), 0);           /* 00:00 local */
    assert_int_equal(calendar_local_day(-8 * HOUR_MS - 1), -1);
}

/* Both sides of midnight 2025-03-14/15 as literal instants, in every order,
 * so that each call both hits and misses the cached day. */
static void test_local_day_midnight_any_order(void **state)
{
    (void)state;
    const int64_t before = INT64_C(1741967999999); /* 2025-03-14 23:59:59.999 +08 */
    const int64_t after = INT64_C(1741968000000);  /* 2025-03-15 00:00:00.000 +08 */
    const day_number march14 = 20161, march15 = 20162;
    assert_int_equal(calendar_local_day(after), march15);
    assert_int_equal(calendar_local_day(before), march14);
    assert_int_equal(calendar_local_day(before), march14);
    assert_int_equal(calendar_local_day(after), march15);
    assert_int_equal(calendar_local_day(after), march15);
    assert_int_equal(calendar_local_day(before), march14);
    /* The far edges of both days, then back across midnight. */
    assert_int_equal(calendar_local_day(INT64_C(1741881600000)), march14);     /* 03-14 00:00 */
    assert_int_equal(calendar_local_day(INT64_C(1742054399999)), march15);     /* 03-15 end */
    assert_int_equal(calendar_local_day(INT64_C(1742054400000)), march15 + 1); /* 03-16 00:00 */
    assert_int_equal(calendar_local_day(INT64_C(1741881599999)), march14 - 1); /* 03-13 end */
    assert_int_equal(calendar_local_day(before), march14);
    assert_int_equal(calendar_local_day(after), march15);
}

static void test_shanghai_day_start(void **state)
{
    (void)state;
    assert_int_equal(calendar_day_start_ms(civil_day(2025, 3, 15)),
                     shanghai_ms(2025, 3, 15, 0, 0, 0, 0));
    assert_int_equal(calendar_day_start_ms(civil_day(2025, 3, 15)), INT64_C(1741968000000));
    assert_int_equal(calendar_day_start_ms(0), -8 * HOUR_MS);
    for (day_number day = civil_day(2000, 1, 1); day <= civil_day(2100, 12, 31); day += 7)
        assert_int_equal(calendar_day_start_ms(day), (int64_t)day * DAY_MS - 8 * HOUR_MS);
}

/* The cache must answer exactly as a fresh conversion would, whatever order
 * the instants come in: every 37 minutes over three years, forwards, then
 * jumping back and forth across midnights. */
static void test_local_day_cache_agrees(void **state)
{
    (void)state;
    int64_t from = shanghai_ms(2024, 1, 1, 0, 0, 0, 0), to = shanghai_ms(2027, 1, 1, 0, 0, 0, 0);
    for (int64_t ts = from; ts < to; ts += 37 * 60000 + 13) {
        day_number expected = (day_number)((ts + 8 * HOUR_MS) / DAY_MS);
        if (calendar_local_day(ts) != expected)
            fail_msg("ts %lld: day %d, expected %d", (long long)ts, (int)calendar_local_day(ts),
                     (int)expected);
    }
    int64_t midnight = shanghai_ms(2025, 2, 1, 0, 0, 0, 0);
    day_number day = civil_day(2025, 2, 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(calendar_local_day(midnight - 1), day - 1);
        assert_int_equal(calendar_local_day(midnight), day);
        assert_int_equal(calendar_local_day(midnight + DAY_MS - 1), day);
        assert_int_equal(calendar_local_day(midnight + DAY_MS), day + 1);
        assert_int_equal(calendar_local_day(midnight - 1), day - 1);
    }
}

/* The local hour holding an instant (hour periods, deadline.c): in Shanghai
 * the instant minus its minutes, seconds and milliseconds. */
static void test_shanghai_hour_start(void **state)
{
    (void)state;
    int64_t ten = shanghai_ms(2025, 3, 12, 10, 0, 0, 0);
    assert_int_equal(calendar_hour_start_ms(shanghai_ms(2025, 3, 12, 10, 37, 0, 0)), ten);
    assert_int_equal(calendar_hour_start_ms(shanghai_ms(2025, 3, 12, 10, 59, 59, 999)), ten);
    assert_int_equal(calendar_hour_start_ms(ten), ten);
    assert_int_equal(calendar_hour_start_ms(ten - 1), ten - HOUR_MS);
    /* local midnight (16:00Z the day before) and a time before 1970 */
    int64_t midnight = shanghai_ms(2025, 7, 1, 0, 0, 0, 0);
    assert_int_equal(calendar_hour_start_ms(midnight + 1), midnight);
    assert_int_equal(calendar_hour_start_ms(-1), -HOUR_MS);
    assert_int_equal(calendar_hour_start_ms(-HOUR_MS), -HOUR_MS);
}

/* A zone half an hour off UTC (Asia/Kolkata, +05:30): the local hour starts
 * at :30 UTC. */
static void test_half_hour_zone_hour_start(void **state)
{
    (void)state;
    use_zone("Asia/Kolkata");
    int64_t ts = INT64_C(1741769820000);    /* 2025-03-12T08:57:00Z = 14:27 local */
    int64_t start = INT64_C(1741768200000); /* 2025-03-12T08:30:00Z = 14:00 local */
    assert_int_equal(calendar_hour_start_ms(ts), start);
    assert_int_equal(calendar_hour_start_ms(start), start);
    assert_int_equal(calendar_hour_start_ms(start - 1), start - HOUR_MS);
    use_zone("Asia/Shanghai");
}

/* calendar_init must drop the cached day: the same instant is another date
 * in another zone. */
static void test_cache_follows_zone_change(void **state)
{
    (void)state;
    int64_t ts = INT64_C(1741982400000); /* 2025-03-14T20:00:00Z */
    assert_int_equal(calendar_local_day(ts), civil_day(2025, 3, 15)); /* 04:00 in Shanghai */
    use_zone("America/Sao_Paulo");
    assert_int_equal(calendar_local_day(ts), civil_day(2025, 3, 14)); /* 17:00 in Sao Paulo */
    use_zone("Asia/Shanghai");
    assert_int_equal(calendar_local_day(ts), civil_day(2025, 3, 15));
}

/* calendar_init must drop the cached day starts too: one day number starts
 * at another instant in another zone. */
static void test_day_start_cache_follows_zone_change(void **state)
{
    (void)state;
    day_number day = civil_day(2025, 3, 15);
    assert_int_equal(calendar_day_start_ms(day), INT64_C(1741968000000)); /* 00:00 +08 */
    use_zone("America/Sao_Paulo");
    assert_int_equal(calendar_day_start_ms(day), INT64_C(1741968000000) + 11 * HOUR_MS);
    use_zone("Asia/Shanghai");
    assert_int_equal(calendar_day_start_ms(day), INT64_C(1741968000000));
}

/* Instants of more days than the local-day cache holds, visited round and
 * round (as a batch goes between today and its deadlines' days): every
 * answer is the day localtime gives, and days whose slots collide in the
 * day-start cache (256 apart) keep their own starts. */
static void test_local_day_cache_many_days(void **state)
{
    (void)state;
    const day_number first = civil_day(2026, 12, 1);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 9; i++) {
            day_number day = first + i * 256;
            int64_t start = (int64_t)day * DAY_MS - 8 * HOUR_MS;
            assert_int_equal(calendar_day_start_ms(day), start);
            assert_int_equal(calendar_local_day(start + 13 * HOUR_MS), day);
            assert_int_equal(calendar_local_day(start - 1), day - 1);
        }
}

/* ---- DST at midnight ---- */

/* Sao Paulo 2018-11-04: clocks jumped from 00:00 to 01:00 (-03 -> -02); the
 * day starts at 01:00 local = 03:00Z and is 23 hours long. */
static void test_dst_gap_at_midnight(void **state)
{
    (void)state;
    use_zone("America/Sao_Paulo");
    day_number day = civil_day(2018, 11, 4);
    int64_t start = INT64_C(1541300400000); /* 2018-11-04T03:00:00Z */
    assert_int_equal(calendar_day_start_ms(day), start);
    assert_int_equal(calendar_day_start_ms(day + 1) - start, 23 * HOUR_MS);
    assert_int_equal(calendar_local_day(start - 1), day - 1);
    assert_int_equal(calendar_local_day(start), day);
    assert_int_equal(calendar_local_day(start + 23 * HOUR_MS - 1), day);
    assert_int_equal(calendar_local_day(start + 23 * HOUR_MS), day + 1);
    use_zone("Asia/Shanghai");
}

/* Havana 2023-11-05: clocks went back from 01:00 CDT to 00:00 CST, so 00:00
 * happened twice; the day starts at the first (04:00Z) and is 25 hours. */
static void test_dst_repeated_midnight(void **state)
{
    (void)state;
    use_zone("America/Havana");
    day_number day = civil_day(2023, 11, 5);
    int64_t start = INT64_C(1699156800000); /* 2023-11-05T04:00:00Z */
    assert_int_equal(calendar_day_start_ms(day), start);
    assert_int_equal(calendar_day_start_ms(day + 1) - start, 25 * HOUR_MS);
    assert_int_equal(calendar_local_day(start - 1), day - 1);
    assert_int_equal(calendar_local_day(start), day);
    assert_int_equal(calendar_local_day(start + HOUR_MS + 30 * 60000), day); /* second 00:30 */
    assert_int_equal(calendar_local_day(start + 25 * HOUR_MS - 1), day);
    assert_int_equal(calendar_local_day(start + 25 * HOUR_MS), day + 1);
    use_zone("Asia/Shanghai");
}

/* ---- buckets ---- */

static void expect_buckets(int year, int month, int day, const char *week)
{
    struct bucket_names names;
    memset(&names, 'x', sizeof names);
    calendar_bucket_names(civil_day(year, month, day), &names);
    char expected_day[16], expected_month[16];
    snprintf(expected_day, sizeof expected_day, "%04d-%02d-%02d", year, month, day);
    snprintf(expected_month, sizeof expected_month, "%04d-%02d", year, month);
    assert_string_equal(names.day, expected_day);
    assert_string_equal(names.month, expected_month);
    assert_string_equal(names.week, week);
    char expected_quarter[32], expected_year[16];
    snprintf(expected_quarter, sizeof expected_quarter, "%04d-Q%d", year, (month - 1) / 3 + 1);
    snprintf(expected_year, sizeof expected_year, "%04d", year);
    assert_string_equal(names.quarter, expected_quarter);
    assert_string_equal(names.year, expected_year);
}

/* Quarters begin in January, April, July and October. */
static void test_quarter_boundaries(void **state)
{
    (void)state;
    const struct { int month, day; const char *quarter; } cases[] = {
        {1, 1, "2026-Q1"}, {3, 31, "2026-Q1"}, {4, 1, "2026-Q2"}, {6, 30, "2026-Q2"},
        {7, 1, "2026-Q3"}, {9, 30, "2026-Q3"}, {10, 1, "2026-Q4"}, {12, 31, "2026-Q4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct bucket_names names;
        calendar_bucket_names(civil_day(2026, cases[i].month, cases[i].day), &names);
        assert_string_equal(names.quarter, cases[i].quarter);
        assert_string_equal(names.year, "2026");
    }
}

static void test_iso_week_year_ends(void **state)
{
    (void)state;
    expect_buckets(2025, 3, 14, "2025-W11");
    expect_buckets(2024, 12, 30, "2025-W01"); /* Monday of the week with 2025-01-02 */
    expect_buckets(2024, 12, 29, "2024-W52");
    expect_buckets(2021, 1, 3, "2020-W53");   /* Sunday ending 2020's 53rd week */
    expect_buckets(2021, 1, 4, "2021-W01");
    expect_buckets(2020, 12, 31, "2020-W53");
    expect_buckets(2026, 1, 1, "2026-W01");   /* a Thursday */
    expect_buckets(2026, 12, 31, "2026-W53"); /* a Thursday: 2026 has 53 weeks */
    expect_buckets(2027, 1, 1, "2026-W53");   /* a Friday */
    expect_buckets(2027, 1, 3, "2026-W53");
    expect_buckets(2027, 1, 4, "2027-W01");
}

/* Every day from 1990 to 2110 against strftime's %G-W%V and %F. */
static void test_buckets_match_strftime(void **state)
{
    (void)state;
    for (day_number day = civil_day(1990, 1, 1); day <= civil_day(2110, 12, 31); day++) {
        time_t seconds = (time_t)day * 86400;
        struct tm utc;
        assert_non_null(gmtime_r(&seconds, &utc));
        char week[16], date[16], month[16];
        strftime(week, sizeof week, "%G-W%V", &utc);
        strftime(date, sizeof date, "%F", &utc);
        strftime(month, sizeof month, "%Y-%m", &utc);
        struct bucket_names names;
        memset(&names, 'x', sizeof names);
        calendar_bucket_names(day, &names);
        char year[8];
        strftime(year, sizeof year, "%Y", &utc);
        if (strcmp(names.week, week) != 0 || strcmp(names.day, date) != 0 ||
            strcmp(names.month, month) != 0 || strcmp(names.year, year) != 0)
            fail_msg("%s: got %s %s %s, expected %s %s", date, names.day, names.week, names.month,
                     week, month);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_day_numbers),
        cmocka_unit_test(test_day_numbers_match_gmtime),
        cmocka_unit_test(test_weekday),
        cmocka_unit_test(test_round_trip_1999_to_2101),
        cmocka_unit_test(test_days_in_month),
        cmocka_unit_test(test_format_day),
        cmocka_unit_test(test_init_rejects_bad_names),
        cmocka_unit_test(test_shanghai_local_day_edges),
        cmocka_unit_test(test_local_day_midnight_any_order),
        cmocka_unit_test(test_shanghai_day_start),
        cmocka_unit_test(test_local_day_cache_agrees),
        cmocka_unit_test(test_shanghai_hour_start),
        cmocka_unit_test_teardown(test_half_hour_zone_hour_start, setup_shanghai),
        cmocka_unit_test_teardown(test_cache_follows_zone_change, setup_shanghai),
        cmocka_unit_test_teardown(test_day_start_cache_follows_zone_change, setup_shanghai),
        cmocka_unit_test(test_local_day_cache_many_days),
        cmocka_unit_test_teardown(test_dst_gap_at_midnight, setup_shanghai),
        cmocka_unit_test_teardown(test_dst_repeated_midnight, setup_shanghai),
        cmocka_unit_test(test_iso_week_year_ends),
        cmocka_unit_test(test_quarter_boundaries),
        cmocka_unit_test(test_buckets_match_strftime),
    };
    return cmocka_run_group_tests(tests, setup_shanghai, NULL);
}
