/* Unit tests for daemon/holidays.c: the shipped conf/holidays-cn.conf (working
 * days per year, every 调休 day of 2024..2026, coverage), the serialized form
 * for Lua checked day by day against holidays_is_working_day, and the exact
 * "FILE:LINE: reason" of each kind of mistake.
 *
 * conf/holidays-cn.conf is found under $DUEWATCH_SOURCE_DIR, else the
 * current directory (the repository root when make runs the tests).
 * Expected day numbers come from timegm(), not from calendar.c. */
#include "holidays.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static char temp_directory[64];
static char temp_path[128];

static day_number civil_day(int year, int month, int day)
{
    struct tm utc = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day};
    return (day_number)((int64_t)timegm(&utc) / 86400);
}

/* 0 = Sunday .. 6 = Saturday, from gmtime_r. */
static int gm_weekday(day_number day)
{
    time_t seconds = (time_t)day * 86400;
    struct tm utc;
    assert_non_null(gmtime_r(&seconds, &utc));
    return utc.tm_wday;
}

/* A file of the source tree, under $DUEWATCH_SOURCE_DIR or ".". */
static void source_path(const char *relative, char *buf, size_t buf_size)
{
    const char *directory = getenv("DUEWATCH_SOURCE_DIR");
    if (directory == NULL || directory[0] == '\0')
        directory = ".";
    int written = snprintf(buf, buf_size, "%s/%s", directory, relative);
    assert_true(written > 0 && (size_t)written < buf_size);
}

static void shipped_path(char *buf, size_t buf_size)
{
    source_path("conf/holidays-cn.conf", buf, buf_size);
}

static struct holidays *load_shipped(void)
{
    char path[512], err[512] = "";
    shipped_path(path, sizeof path);
    struct holidays *holidays = holidays_load(path, err, sizeof err);
    if (holidays == NULL)
        fail_msg("%s (set DUEWATCH_SOURCE_DIR to the repository root)", err);
    return holidays;
}

static void write_text(const char *text)
{
    FILE *file = fopen(temp_path, "w");
    assert_non_null(file);
    assert_int_equal(fputs(text, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
}

static struct holidays *load_text(const char *text, char *err, size_t err_size)
{
    write_text(text);
    return holidays_load(temp_path, err, err_size);
}

static int setup_temp(void **state)
{
    (void)state;
    char err[256];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0)
        return -1;
    snprintf(temp_directory, sizeof temp_directory, "/tmp/test_holidays.XXXXXX");
    if (mkdtemp(temp_directory) == NULL)
        return -1;
    snprintf(temp_path, sizeof temp_path, "%s/holidays.conf", temp_directory);
    return 0;
}

static int teardown_temp(void **state)
{
    (void)state;
    unlink(temp_path);
    return rmdir(temp_directory);
}

static bool working(const struct holidays *holidays, int year, int month, int day)
{
    bool result = false;
    if (holidays_is_working_day(holidays, civil_day(year, month, day), &result) != 0)
        fail_msg("%04d-%02d-%02d is not covered", year, month, day);
    return result;
}

/* ---- the shipped schedule ---- */

static void test_shipped_working_days_per_year(void **state)
{
    (void)state;
    struct holidays *holidays = load_shipped();
    /* 2024..2026 official; 2027..2035 provisional (statutory days only). */
    static const int expected[12] = {251, 248, 248, 254, 251, 250, 250, 251, 256, 252, 251, 251};
    for (int year = 2024; year <= 2035; year++) {
        int count = 0;
        for (day_number day = civil_day(year, 1, 1); day <= civil_day(year, 12, 31); day++) {
            bool is_working;
            assert_int_equal(holidays_is_working_day(holidays, day, &is_working), 0);
            count += is_working;
        }
        if (count != expected[year - 2024])
            fail_msg("%d: %d working days, expected %d", year, count, expected[year - 2024]);
    }
    holidays_destroy(holidays);
}

static void test_shipped_coverage(void **state)
{
    (void)state;
    struct holidays *holidays = load_shipped();
    assert_int_equal(holidays_first_day(holidays), civil_day(2024, 1, 1));
    assert_int_equal(holidays_last_day(holidays), civil_day(2035, 12, 31));
    assert_int_equal(holidays_official_last_day(holidays), civil_day(2026, 12, 31));
    bool is_working = true;
    assert_int_equal(holidays_is_working_day(holidays, civil_day(2023, 12, 31), &is_working), -1);
    assert_int_equal(holidays_is_working_day(holidays, civil_day(2036, 1, 1), &is_working), -1);
    assert_true(is_working); /* untouched on error */
    is_working = true;
    assert_int_equal(holidays_is_working_day(holidays, civil_day(2024, 1, 1), &is_working), 0);
    assert_false(is_working);
    assert_int_equal(holidays_is_working_day(holidays, civil_day(2026, 12, 31), &is_working), 0);
    assert_true(is_working); /* a plain Thursday */
    holidays_destroy(holidays);
}

/* Provisional years: the statutory days of 《全国年节及纪念日放假办法》 Art. 2
 * (2024 revision) and nothing else, checked at their edges. */
static void test_shipped_provisional_years(void **state)
{
    (void)state;
    struct holidays *holidays = load_shipped();
    /* 2027: 元旦 Fri 01-01; 春节 除夕 02-05 (Fri) .. 初三 02-08 (Mon); 清明
     * 04-05 (Mon); 劳动节 05-01/02 (Sat/Sun: no 补假 is guessed); 端午 06-09
     * (Wed); 中秋 09-15 (Wed); 国庆 10-01 (Fri) .. 10-03. */
    assert_false(working(holidays, 2027, 1, 1));
    assert_true(working(holidays, 2027, 2, 4));
    assert_false(working(holidays, 2027, 2, 5));
    assert_false(working(holidays, 2027, 2, 8));
    assert_true(working(holidays, 2027, 2, 9));
    assert_false(working(holidays, 2027, 4, 5));
    assert_true(working(holidays, 2027, 5, 3));
    assert_false(working(holidays, 2027, 6, 9));
    assert_false(working(holidays, 2027, 9, 15));
    assert_false(working(holidays, 2027, 10, 1));
    assert_true(working(holidays, 2027, 10, 4));
    /* No worked weekend day in a provisional year. */
    for (day_number day = civil_day(2027, 1, 1); day <= civil_day(2035, 12, 31); day++) {
        int weekday = gm_weekday(day);
        bool is_working;
        assert_int_equal(holidays_is_working_day(holidays, day, &is_working), 0);
        if ((weekday == 0 || weekday == 6) && is_working)
            fail_msg("weekend day %d is worked in a provisional year", (int)day);
    }
    holidays_destroy(holidays);
}

/* The adjusted working weekend days of the three notices, and nothing else
 * on a weekend is worked. */
static void test_shipped_adjusted_working_days(void **state)
{
    (void)state;
    struct holidays *holidays = load_shipped();
    static const int adjusted[][3] = {
        {2024, 2, 4},  {2024, 2, 18}, {2024, 4, 7},  {2024, 4, 28}, {2024, 5, 11},
        {2024, 9, 14}, {2024, 9, 29}, {2024, 10, 12}, {2025, 1, 26}, {2025, 2, 8},
        {2025, 4, 27}, {2025, 9, 28}, {2025, 10, 11}, {2026, 1, 4},  {2026, 2, 14},
        {2026, 2, 28}, {2026, 5, 9},  {2026, 9, 20}, {2026, 10, 10},
    };
    size_t count = sizeof adjusted / sizeof adjusted[0];
    for (day_number day = civil_day(2024, 1, 1); day <= civil_day(2026, 12, 31); day++) {
        int weekday = gm_weekday(day);
        if (weekday != 0 && weekday != 6)
            continue;
        bool listed = false;
        for (size_t i = 0; i < count; i++)
            listed |= civil_day(adjusted[i][0], adjusted[i][1], adjusted[i][2]) == day;
        bool is_working;
        assert_int_equal(holidays_is_working_day(holidays, day, &is_working), 0);
        if (is_working != listed)
            fail_msg("weekend day %d: working %d, listed %d", (int)day, is_working, listed);
    }
    holidays_destroy(holidays);
}

/* Holidays of the notices, checked at their edges and inside. */
static void test_shipped_holidays(void **state)
{
    (void)state;
    struct holidays *holidays = load_shipped();
    /* Spring Festival 2025: 01-28 .. 02-04; 01-27 and 02-05 are worked. */
    assert_true(working(holidays, 2025, 1, 27));
    for (int day = 28; day <= 31; day++)
        assert_false(working(holidays, 2025, 1, day));
    for (int day = 1; day <= 4; day++)
        assert_false(working(holidays, 2025, 2, day));
    assert_true(working(holidays, 2025, 2, 5));
    /* National Day 2025: 10-01 .. 10-08 (a Wednesday). */
    assert_true(working(holidays, 2025, 9, 30));
    assert_false(working(holidays, 2025, 10, 8));
    assert_true(working(holidays, 2025, 10, 9));
    /* 2024 single days; 2026 New Year including the Saturday. */
    assert_false(working(holidays, 2024, 6, 10));
    assert_true(working(holidays, 2024, 6, 11));
    assert_false(working(holidays, 2026, 1, 2));
    assert_false(working(holidays, 2026, 2, 23));
    assert_true(working(holidays, 2026, 2, 24));
    /* Plain days. */
    assert_true(working(holidays, 2025, 3, 14));  /* Friday */
    assert_false(working(holidays, 2025, 3, 15)); /* Saturday */
    assert_false(working(holidays, 2025, 3, 16)); /* Sunday */
    holidays_destroy(holidays);
}

/* ---- serialized form ---- */

static void test_serialize_small(void **state)
{
    (void)state;
    char err[512] = "";
    struct holidays *holidays =
        load_text("# Spring Festival 2025\n"
                  "years 2025..2025\n"
                  "holiday 2025-01-28 .. 2025-02-04   # 春节\n"
                  "workday 2025-02-08\n"
                  "workday 2025-01-26\n"
                  "holiday 2025-02-01\n", /* again, on a Saturday: harmless */
                  err, sizeof err);
    assert_non_null(holidays);
    char expected[256];
    /* Monday..Friday holidays only: 01-28 Tue .. 01-31 Fri, 02-03 Mon, 02-04 Tue. */
    snprintf(expected, sizeof expected, "%d,%d,%d;%d,%d,%d,%d,%d,%d;%d,%d", civil_day(2025, 1, 1),
             civil_day(2025, 12, 31), civil_day(2025, 12, 31), civil_day(2025, 1, 28), civil_day(2025, 1, 29),
             civil_day(2025, 1, 30), civil_day(2025, 1, 31), civil_day(2025, 2, 3),
             civil_day(2025, 2, 4), civil_day(2025, 1, 26), civil_day(2025, 2, 8));
    assert_string_equal(expected, "20089,20453,20453;20116,20117,20118,20119,20122,20123;20114,20127");
    char buf[256];
    memset(buf, 'x', sizeof buf);
    int length = holidays_serialize(holidays, buf, sizeof buf);
    assert_int_equal(length, (int)strlen(expected));
    assert_string_equal(buf, expected);
    /* Exactly enough room, and one byte less for every shorter buffer. */
    assert_int_equal(holidays_serialize(holidays, buf, strlen(expected) + 1), length);
    assert_string_equal(buf, expected);
    for (size_t size = 0; size <= strlen(expected); size++)
        assert_int_equal(holidays_serialize(holidays, buf, size), -1);
    holidays_destroy(holidays);
}

static void test_serialize_empty_lists(void **state)
{
    (void)state;
    char err[512] = "", buf[64];
    struct holidays *holidays = load_text("years 2025..2025\n", err, sizeof err);
    assert_non_null(holidays);
    assert_int_equal(holidays_serialize(holidays, buf, sizeof buf), 19);
    assert_string_equal(buf, "20089,20453,20453;;");
    holidays_destroy(holidays);
    holidays = load_text("years 2025..2025\nworkday 2025-01-26\n", err, sizeof err);
    assert_non_null(holidays);
    holidays_serialize(holidays, buf, sizeof buf);
    assert_string_equal(buf, "20089,20453,20453;;20114");
    holidays_destroy(holidays);
    holidays = load_text("years 2025..2025\nholiday 2025-01-01\n", err, sizeof err);
    assert_non_null(holidays);
    holidays_serialize(holidays, buf, sizeof buf);
    assert_string_equal(buf, "20089,20453,20453;20089;");
    holidays_destroy(holidays);
}

/* tests/unit/holiday_samples/small-2025.conf: 元旦, Spring Festival and
 * National Day 2025 with their adjusted working days, listed out of order
 * and one holiday twice.  Day numbers written by hand: 2025-01-01 = 20089
 * (Wed), 01-28..01-31 = 20116..20119, 02-03/04 (Mon/Tue) = 20122/20123,
 * 10-01..10-03 = 20362..20364, 10-06..10-08 = 20367..20369; worked weekend
 * days 01-26 = 20114, 02-08 = 20127, 09-28 = 20359, 10-11 = 20372. */
static void test_serialize_sample_file(void **state)
{
    (void)state;
    char path[512], err[512] = "";
    source_path("tests/unit/holiday_samples/small-2025.conf", path, sizeof path);
    struct holidays *holidays = holidays_load(path, err, sizeof err);
    if (holidays == NULL)
        fail_msg("%s", err);
    const char *expected = "20089,20453,20453;"
                           "20089,20116,20117,20118,20119,20122,20123,"
                           "20362,20363,20364,20367,20368,20369;"
                           "20114,20127,20359,20372";
    char buf[256];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(holidays_serialize(holidays, buf, sizeof buf), 119);
    assert_string_equal(buf, expected);
    assert_int_equal(holidays_serialize(holidays, buf, 120), 119);
    assert_string_equal(buf, expected);
    assert_int_equal(holidays_serialize(holidays, buf, 119), -1);
    /* 261 weekdays - 13 weekday holidays + 4 worked weekend days. */
    int count = 0;
    for (day_number day = 20089; day <= 20453; day++) {
        bool is_working;
        assert_int_equal(holidays_is_working_day(holidays, day, &is_working), 0);
        count += is_working;
    }
    assert_int_equal(count, 252);
    bool is_working = true;
    assert_int_equal(holidays_is_working_day(holidays, 20088, &is_working), -1); /* 2024-12-31 */
    assert_int_equal(holidays_is_working_day(holidays, 20454, &is_working), -1); /* 2026-01-01 */
    assert_true(is_working);
    holidays_destroy(holidays);

    /* A sample file with a mistake: FILE:LINE: reason. */
    source_path("tests/unit/holiday_samples/workday-on-weekday.conf", path, sizeof path);
    assert_null(holidays_load(path, err, sizeof err));
    char expected_err[600];
    snprintf(expected_err, sizeof expected_err,
             "%s:6: workday 2025-02-07 is not a Saturday or Sunday", path);
    assert_string_equal(err, expected_err);
}

/* Parses the serialized shipped calendar the way the Lua script does and
 * checks it gives the same answer for every covered day. */
static void test_serialize_shipped_agrees(void **state)
{
    (void)state;
    struct holidays *holidays = load_shipped();
    char buf[8192];
    int length = holidays_serialize(holidays, buf, sizeof buf);
    assert_true(length > 0 && (size_t)length == strlen(buf));
    char *fields[3];
    char *cursor = buf;
    for (int i = 0; i < 3; i++) {
        fields[i] = cursor;
        char *end = strchr(cursor, ';');
        if (i < 2) {
            assert_non_null(end);
            *end = '\0';
            cursor = end + 1;
        } else {
            assert_null(end);
        }
    }
    long first, last;
    long official_last;
    assert_int_equal(sscanf(fields[0], "%ld,%ld,%ld", &first, &last, &official_last), 3);
    assert_int_equal(official_last, civil_day(2026, 12, 31));
    assert_int_equal(first, civil_day(2024, 1, 1));
    assert_int_equal(last, civil_day(2035, 12, 31));
    static unsigned char listed[2][4400];
    memset(listed, 0, sizeof listed);
    int counts[2] = {0, 0};
    for (int list = 0; list < 2; list++) {
        long previous = first - 1;
        for (char *item = strtok(fields[list + 1], ","); item; item = strtok(NULL, ",")) {
            long day = strtol(item, NULL, 10);
            assert_true(day > previous && day <= last); /* ascending, covered */
            listed[list][day - first] = 1;
            counts[list]++;
            previous = day;
        }
    }
    /* Holidays on Monday..Friday: 2024 19, 2025 18, 2026 19 (262, 261, 261
     * weekdays minus these plus the worked weekend days 8, 5, 6 give 251,
     * 248, 248); in the provisional years 2027..2035 the weekdays (261, 260,
     * 261, 261, 261, 262, 260, 260, 261) minus the working days listed in
     * the file's header. */
    assert_int_equal(counts[0], 19 + 18 + 19 + (261 - 254) + (260 - 251) + (261 - 250) +
                                    (261 - 250) + (261 - 251) + (262 - 256) + (260 - 252) +
                                    (260 - 251) + (261 - 251));
    assert_int_equal(counts[1], 8 + 5 + 6);
    for (long day = first; day <= last; day++) {
        int weekday = gm_weekday((day_number)day);
        bool weekend = weekday == 0 || weekday == 6;
        bool lua_working = listed[1][day - first] || (!weekend && !listed[0][day - first]);
        bool is_working;
        assert_int_equal(holidays_is_working_day(holidays, (day_number)day, &is_working), 0);
        if (is_working != lua_working)
            fail_msg("day %ld: C says %d, serialized form says %d", day, is_working, lua_working);
    }
    holidays_destroy(holidays);
}

/* ---- errors ---- */

static void expect_error(const char *text, const char *reason)
{
    char err[512] = "", expected[512];
    struct holidays *holidays = load_text(text, err, sizeof err);
    if (holidays != NULL) {
        holidays_destroy(holidays);
        fail_msg("loaded, expected: %s", reason);
    }
    snprintf(expected, sizeof expected, "%s%s", temp_path, reason);
    assert_string_equal(err, expected);
}

static void test_load_errors(void **state)
{
    (void)state;
    const char *years = "years 2025..2025\n";
    char text[512];
    static const struct {
        const char *lines, *reason;
    } cases[] = {
        {"holiday 2025-02-30\n", ":2: bad date (expected a real date YYYY-MM-DD)"},
        {"holiday 2025-2-03\n", ":2: bad date (expected a real date YYYY-MM-DD)"},
        {"holiday 2025-13-01\n", ":2: bad date (expected a real date YYYY-MM-DD)"},
        {"holiday +025-01-01\n", ":2: bad date (expected a real date YYYY-MM-DD)"},
        {"holiday\n", ":2: bad date (expected a real date YYYY-MM-DD)"},
        {"holiday 2025-01-28..2025-02-30\n",
         ":2: bad end date (expected a real date YYYY-MM-DD)"},
        {"holiday 2025-02-04..2025-01-28\n", ":2: range ends before it starts"},
        {"holiday 2025-01-01 2025-01-02\n",
         ":2: expected 'holiday DATE' or 'holiday DATE..DATE'"},
        {"workday 2025-01-26..2025-01-27\n", ":2: expected 'workday DATE' (one date)"},
        {"holiday 2024-12-31\n", ":2: date outside the declared years"},
        {"holiday 2025-12-31..2026-01-01\n", ":2: date outside the declared years"},
        {"workday 2026-01-03\n", ":2: date outside the declared years"},
        {"\n# Monday\nworkday 2025-01-27\n", ":4: workday 2025-01-27 is not a Saturday or Sunday"},
        {"holiday 2025-01-28..2025-02-04\nworkday 2025-02-01\n",
         ":3: 2025-02-01 is listed both as holiday and as workday"},
        {"workday 2025-02-01\nholiday 2025-01-28..2025-02-04\n",
         ":3: 2025-02-01 is listed both as holiday and as workday"},
        {"years 2026..2026\n", ":2: a second 'years' line"},
        {"holidays 2025-01-01\n", ":2: unknown entry 'holidays' (expected years, provisional, "
                                  "holiday or workday)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "%s%s", years, cases[i].lines);
        expect_error(text, cases[i].reason);
    }
    expect_error("holiday 2025-01-01\nyears 2025..2025\n",
                 ":1: a 'years YYYY..YYYY' line must come before the first holiday");
    expect_error("# nothing\n\n", ": no 'years YYYY..YYYY' line");
    expect_error("", ": no 'years YYYY..YYYY' line");
    expect_error("years 2025\n", ":1: expected 'years YYYY..YYYY'");
    expect_error("years 2025..2026 extra\n", ":1: expected 'years YYYY..YYYY'");
    expect_error("years 2026..2025\n",
                 ":1: years must be 1970 or later, in order, at most 200 of them");
    expect_error("years 1969..2025\n",
                 ":1: years must be 1970 or later, in order, at most 200 of them");

    /* provisional: the last covered years, after at least one official one */
    static const char provisional_tail[] =
        ":2: the provisional years must be the last of the covered years, after at least one "
        "official year";
    expect_error("years 2025..2027\nprovisional 2025..2027\n", provisional_tail);
    expect_error("years 2025..2027\nprovisional 2026..2026\n", provisional_tail);
    expect_error("years 2025..2027\nprovisional 2027..2028\n", provisional_tail);
    expect_error("years 2025..2027\nprovisional 2027..2026\n", provisional_tail);
    expect_error("years 2025..2027\nprovisional 2027\n", ":2: expected 'provisional YYYY..YYYY'");
    expect_error("years 2025..2027\nprovisional 2027..2027\nprovisional 2027..2027\n",
                 ":3: a second 'provisional' line");
    expect_error("provisional 2027..2027\nyears 2025..2027\n",
                 ":1: a 'years YYYY..YYYY' line must come before 'provisional'");

    char err[512] = "";
    assert_null(holidays_load("/nonexistent/holidays.conf", err, sizeof err));
    assert_string_equal(err, "/nonexistent/holidays.conf: cannot open: No such file or directory");
    holidays_destroy(NULL);
}

/* Without a provisional line every covered year is official; with one, the
 * official years end the year before it. */
static void test_official_last_day(void **state)
{
    (void)state;
    char err[512] = "";
    struct holidays *holidays = load_text("years 2025..2027\n", err, sizeof err);
    assert_non_null(holidays);
    assert_int_equal(holidays_official_last_day(holidays), civil_day(2027, 12, 31));
    holidays_destroy(holidays);
    holidays = load_text("years 2025..2027\nprovisional 2026 .. 2027\nholiday 2027-01-01\n", err,
                         sizeof err);
    assert_non_null(holidays);
    assert_int_equal(holidays_official_last_day(holidays), civil_day(2025, 12, 31));
    assert_false(working(holidays, 2027, 1, 1));
    holidays_destroy(holidays);
}

/* Layout freedom: comments, blank lines, tabs, spaces around "..". */
static void test_load_layout(void **state)
{
    (void)state;
    char err[512] = "";
    struct holidays *holidays = load_text("\n   # comment only\n"
                                          "\tyears\t2024 .. 2025   # covered\n"
                                          "holiday\t2025-10-01..2025-10-08\n"
                                          "  workday 2025-10-11   # 调休\n",
                                          err, sizeof err);
    assert_non_null(holidays);
    assert_string_equal(err, "");
    assert_int_equal(holidays_first_day(holidays), civil_day(2024, 1, 1));
    assert_int_equal(holidays_last_day(holidays), civil_day(2025, 12, 31));
    assert_false(working(holidays, 2025, 10, 1));
    assert_false(working(holidays, 2025, 10, 8));
    assert_true(working(holidays, 2025, 10, 9));
    assert_true(working(holidays, 2025, 10, 11));
    assert_false(working(holidays, 2025, 9, 28)); /* not listed here: a plain Sunday */
    holidays_destroy(holidays);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shipped_working_days_per_year),
        cmocka_unit_test(test_shipped_coverage),
        cmocka_unit_test(test_shipped_adjusted_working_days),
        cmocka_unit_test(test_shipped_holidays),
        cmocka_unit_test(test_shipped_provisional_years),
        cmocka_unit_test(test_official_last_day),
        cmocka_unit_test(test_serialize_small),
        cmocka_unit_test(test_serialize_empty_lists),
        cmocka_unit_test(test_serialize_sample_file),
        cmocka_unit_test(test_serialize_shipped_agrees),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_layout),
    };
    return cmocka_run_group_tests(tests, setup_temp, teardown_temp);
}
