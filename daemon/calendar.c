/* Civil time in the configured time zone (see calendar.h).
 *
 * Day numbers <-> year/month/day use Howard Hinnant's days_from_civil and
 * civil_from_days (pure integer arithmetic, proleptic Gregorian, valid for
 * any int32 day).  Instants <-> local dates go through the C library's
 * time-zone database: calendar_init() sets TZ once, localtime_r() and
 * mktime() do the rest.
 *
 * calendar_local_day() runs once per event or more, and calendar_day_start_ms()
 * for every deadline and bucket: each remembers its last answers, in caches
 * private to the calling thread (_Thread_local; the daemon converts on its
 * event loop only), so nearly every call is a few comparisons instead of a
 * localtime_r() or mktime() (those were a twentieth of the daemon's time in
 * the make bench profile).  calendar_local_day() keeps the [start, end)
 * instant ranges of the last DAY_CACHE_WAYS local days it answered (a batch
 * alternates between today and the days of its deadlines);
 * calendar_day_start_ms() the starts of days by day number modulo
 * START_CACHE_SLOTS.  calendar_init() empties both: a new zone, new answers.
 *
 * Daylight saving: with tm_isdst = -1, glibc's mktime() gives for 00:00 in a
 * DST gap (America/Sao_Paulo 2018-11-04) the first existing instant of the
 * date (01:00), and for an ambiguous 00:00 (America/Havana 2023-11-05) the
 * first of the two; test_calendar.c checks both.  Asia/Shanghai has had no
 * DST since 1991, so there every local day is 24 hours long. */
#include "calendar.h"

#include "text.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <time.h>

#define DAY_MS INT64_C(86400000)
#define ZONEINFO_DIRECTORY "/usr/share/zoneinfo/"

/* A local day calendar_local_day() answered, as an instant range. */
struct day_cache {
    bool valid;
    day_number day;
    int64_t start_ms; /* first instant of day */
    int64_t end_ms;   /* first instant of day + 1 */
};

#define DAY_CACHE_WAYS 4
static _Thread_local struct day_cache last_answers[DAY_CACHE_WAYS];
static _Thread_local unsigned next_answer; /* the way the next new answer replaces */

/* Day starts by day number: slot day % START_CACHE_SLOTS. */
#define START_CACHE_SLOTS 256
struct start_cache {
    bool valid;
    day_number day;
    int64_t start_ms;
};
static _Thread_local struct start_cache day_starts[START_CACHE_SLOTS];

static void forget_answers(void)
{
    memset(last_answers, 0, sizeof last_answers);
    memset(day_starts, 0, sizeof day_starts);
    next_answer = 0;
}

int calendar_init(const char *zone_name, char *err, size_t err_size)
{
    /* The name becomes part of a path: refuse anything that could leave the
     * zoneinfo directory. */
    if (zone_name == NULL || zone_name[0] == '\0' || zone_name[0] == '/' ||
        strstr(zone_name, "..") != NULL) {
        snprintf(err, err_size, "'%s' is not a time zone name (like Asia/Shanghai)",
                 zone_name ? zone_name : "");
        return -1;
    }
    char path[256];
    int length = snprintf(path, sizeof path, "%s%s", ZONEINFO_DIRECTORY, zone_name);
    if (length < 0 || (size_t)length >= sizeof path) {
        snprintf(err, err_size, "time zone name too long");
        return -1;
    }
    struct stat info;
    if (stat(path, &info) != 0 || !S_ISREG(info.st_mode)) {
        snprintf(err, err_size, "unknown time zone '%s' (no %s; is tzdata installed?)", zone_name,
                 path);
        return -1;
    }
    /* Not every file there is a zone (zone.tab, tzdata.zi): a real one starts
     * with the TZif magic.  The right/ zones count leap seconds, which civil
     * deadlines do not. */
    char magic[4] = {0};
    FILE *file = fopen(path, "rb");
    size_t got = file ? fread(magic, 1, sizeof magic, file) : 0;
    if (file)
        fclose(file);
    if (got != sizeof magic || memcmp(magic, "TZif", 4) != 0 ||
        strncmp(zone_name, "right/", 6) == 0) {
        snprintf(err, err_size, "'%s' is not a usable time zone (like Asia/Shanghai)", zone_name);
        return -1;
    }
    if (setenv("TZ", zone_name, 1) != 0) {
        snprintf(err, err_size, "cannot set TZ");
        return -1;
    }
    tzset();
    forget_answers();
    return 0;
}

day_number calendar_day_from_ymd(int year, int month, int day)
{
    /* 64-bit so that any int year is defined behaviour; a result outside
     * day_number saturates (such dates never come from valid input). */
    const int64_t shifted_year = (int64_t)year - (month <= 2);
    const int64_t era = (shifted_year >= 0 ? shifted_year : shifted_year - 399) / 400;
    const int64_t year_of_era = shifted_year - era * 400;                          /* [0, 399] */
    const int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    const int64_t day_of_era =
        year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    const int64_t days = era * 146097 + day_of_era - 719468;
    if (days > INT32_MAX)
        return INT32_MAX;
    if (days < INT32_MIN)
        return INT32_MIN;
    return (day_number)days;
}

void calendar_day_to_ymd(day_number day, int *year, int *month, int *day_of_month)
{
    const int64_t shifted = (int64_t)day + 719468; /* days since 0000-03-01 */
    const int era = (int)((shifted >= 0 ? shifted : shifted - 146096) / 146097);
    const int day_of_era = (int)(shifted - (int64_t)era * 146097); /* [0, 146096] */
    const int year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const int day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const int month_from_march = (5 * day_of_year + 2) / 153; /* [0, 11], 0 = March */
    const int civil_month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
    *day_of_month = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    *month = civil_month;
    *year = year_of_era + era * 400 + (civil_month <= 2);
}

int calendar_weekday(day_number day)
{
    /* 1970-01-01 (day 0) was a Thursday: 3 with Monday = 0. */
    int weekday = (day + 3) % 7;
    return weekday < 0 ? weekday + 7 : weekday;
}

int calendar_days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

bool calendar_read_digits(const char **cursor, int width, int *value)
{
    int result = 0;
    for (int i = 0; i < width; i++) {
        char c = (*cursor)[i];
        if (c < '0' || c > '9')
            return false;
        result = result * 10 + (c - '0');
    }
    *cursor += width;
    *value = result;
    return true;
}

bool calendar_read_day(const char **cursor, day_number *day)
{
    const char *p = *cursor;
    int year, month, day_of_month;
    if (!calendar_read_digits(&p, 4, &year) || *p++ != '-' || !calendar_read_digits(&p, 2, &month) ||
        *p++ != '-' || !calendar_read_digits(&p, 2, &day_of_month))
        return false;
    if (month < 1 || month > 12 || day_of_month < 1 ||
        day_of_month > calendar_days_in_month(year, month))
        return false;
    *day = calendar_day_from_ymd(year, month, day_of_month);
    *cursor = p;
    return true;
}

int64_t calendar_day_start_ms(day_number day)
{
    struct start_cache *cached = &day_starts[(uint32_t)day % START_CACHE_SLOTS];
    if (cached->valid && cached->day == day)
        return cached->start_ms;
    int year, month, day_of_month;
    calendar_day_to_ymd(day, &year, &month, &day_of_month);
    struct tm midnight = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day_of_month,
                          .tm_isdst = -1 /* let the zone decide; see the file comment */};
    time_t start = mktime(&midnight);
    *cached = (struct start_cache){.valid = true, .day = day, .start_ms = (int64_t)start * 1000};
    return cached->start_ms;
}

/* floor(a / b) for b > 0 (C division truncates toward zero). */
static int64_t floor_divide(int64_t a, int64_t b)
{
    int64_t quotient = a / b;
    return a % b != 0 && a < 0 ? quotient - 1 : quotient;
}

day_number calendar_local_day(int64_t ts_ms)
{
    for (int way = 0; way < DAY_CACHE_WAYS; way++) {
        const struct day_cache *cached = &last_answers[way];
        if (cached->valid && ts_ms >= cached->start_ms && ts_ms < cached->end_ms)
            return cached->day;
    }
    time_t seconds = (time_t)floor_divide(ts_ms, 1000);
    struct tm local;
    if (localtime_r(&seconds, &local) == NULL) {
        /* Only for instants no event can carry (beyond year 2^31); answer the
         * UTC date rather than garbage. */
        return (day_number)floor_divide(ts_ms, DAY_MS);
    }
    day_number day = calendar_day_from_ymd(local.tm_year + 1900, local.tm_mon + 1, local.tm_mday);
    int64_t start_ms = calendar_day_start_ms(day);
    int64_t end_ms = calendar_day_start_ms(day + 1);
    /* Remember the range only when it really holds ts_ms (a zone whose clocks
     * go back across midnight has dates that are not one interval). */
    if (ts_ms >= start_ms && ts_ms < end_ms) {
        last_answers[next_answer] = (struct day_cache){
            .valid = true, .day = day, .start_ms = start_ms, .end_ms = end_ms};
        next_answer = (next_answer + 1) % DAY_CACHE_WAYS;
    }
    return day;
}

int64_t calendar_hour_start_ms(int64_t ts_ms)
{
    int64_t seconds = floor_divide(ts_ms, 1000);
    time_t instant = (time_t)seconds;
    struct tm local;
    if (localtime_r(&instant, &local) == NULL) {
        /* Only for instants no event can carry (beyond year 2^31): the UTC
         * hour, as calendar_local_day answers the UTC date. */
        return floor_divide(ts_ms, 3600000) * 3600000;
    }
    return (seconds - (int64_t)local.tm_min * 60 - (int64_t)local.tm_sec) * 1000;
}

/* Year, month, day as fixed-width text parts that always fit their fields:
 * the bucket and format contracts concern years 0..9999. */
static void clamp_ymd(day_number day, unsigned *year, unsigned *month, unsigned *day_of_month)
{
    int y, m, d;
    calendar_day_to_ymd(day, &y, &m, &d);
    *year = y < 0 ? 0u : y > 9999 ? 9999u : (unsigned)y;
    *month = (unsigned)m % 100u;
    *day_of_month = (unsigned)d % 100u;
}

/* "YYYY-MM-DD" into text. */
static void add_day(struct text_buffer *text, unsigned year, unsigned month,
                    unsigned day_of_month)
{
    text_add_padded(text, year, 4);
    text_add_char(text, '-');
    text_add_padded(text, month, 2);
    text_add_char(text, '-');
    text_add_padded(text, day_of_month, 2);
}

void calendar_format_day(day_number day, char *buf, size_t buf_size)
{
    unsigned year, month, day_of_month;
    clamp_ymd(day, &year, &month, &day_of_month);
    struct text_buffer text = text_start(buf, buf_size);
    add_day(&text, year, month, day_of_month);
}

/* The names of one day's buckets (calendar_bucket_names), computed. */
static void compute_bucket_names(day_number day, struct bucket_names *out)
{
    unsigned year, month, day_of_month;
    clamp_ymd(day, &year, &month, &day_of_month);
    struct text_buffer text = text_start(out->day, sizeof out->day);
    add_day(&text, year, month, day_of_month);
    text = text_start(out->month, sizeof out->month);
    text_add_padded(&text, year, 4);
    text_add_char(&text, '-');
    text_add_padded(&text, month, 2);
    text = text_start(out->quarter, sizeof out->quarter);
    text_add_padded(&text, year, 4);
    text_add_bytes(&text, "-Q", 2);
    text_add_char(&text, (char)('1' + (month - 1) / 3 % 4));
    text = text_start(out->year, sizeof out->year);
    text_add_padded(&text, year, 4);

    /* ISO 8601: weeks start on Monday and belong to the year that holds their
     * Thursday, so 2024-12-30 is in 2025-W01 and 2021-01-03 in 2020-W53. */
    day_number thursday = day - calendar_weekday(day) + 3;
    int week_year, ignored_month, ignored_day;
    calendar_day_to_ymd(thursday, &week_year, &ignored_month, &ignored_day);
    unsigned week = (unsigned)((thursday - calendar_day_from_ymd(week_year, 1, 1)) / 7 + 1);
    unsigned iso_year = week_year < 0 ? 0u : week_year > 9999 ? 9999u : (unsigned)week_year;
    text = text_start(out->week, sizeof out->week);
    text_add_padded(&text, iso_year, 4);
    text_add_bytes(&text, "-W", 2);
    text_add_padded(&text, week % 100u, 2);
}

void calendar_bucket_names(day_number day, struct bucket_names *out)
{
    /* A batch asks for the few days its events fall on, thousands of times:
     * the last answer is kept (names do not depend on the zone). */
    static _Thread_local bool known;
    static _Thread_local day_number known_day;
    static _Thread_local struct bucket_names known_names;
    if (!known || known_day != day) {
        compute_bucket_names(day, &known_names);
        known_day = day;
        known = true;
    }
    *out = known_names;
}

int64_t calendar_wall_now_ms(void)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    return (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
}
