/* Civil time in the configured time zone (see calendar.h).  Day numbers use
 * Howard Hinnant's civil-date algorithms (pure integer arithmetic); instants
 * are converted with the C library's time-zone database via TZ.
 *
 * calendar_local_day is on the per-event path: it remembers the last local
 * day's instant range (one per thread: the daemon converts on its loop only)
 * and so skips localtime_r for nearly every event. */
#include "calendar.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DAY_MS 86400000LL

static _Thread_local struct {
    int64_t start_ms, end_ms;
    day_number day;
    int valid;
} last_day;

int calendar_init(const char *zone_name, char *err, size_t err_size)
{
    if (zone_name[0] == '\0' || zone_name[0] == '/' || strstr(zone_name, "..")) {
        snprintf(err, err_size, "'%s' is not a time zone name (like Asia/Shanghai)", zone_name);
        return -1;
    }
    char path[512];
    struct stat info;
    snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", zone_name);
    if (stat(path, &info) != 0 || !S_ISREG(info.st_mode)) {
        snprintf(err, err_size, "unknown time zone '%s' (no %s; is tzdata installed?)", zone_name,
                 path);
        return -1;
    }
    setenv("TZ", zone_name, 1);
    tzset();
    last_day.valid = 0;
    return 0;
}

day_number calendar_day_from_ymd(int year, int month, int day)
{
    year -= month <= 2;
    const int era = (year >= 0 ? year : year - 399) / 400;
    const int year_of_era = year - era * 400;
    const int day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    const int day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

void calendar_day_to_ymd(day_number day, int *year, int *month, int *day_of_month)
{
    const int z = day + 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const int day_of_era = z - era * 146097;
    const int year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const int day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    const int month_index = (5 * day_of_year + 2) / 153;
    const int d = day_of_year - (153 * month_index + 2) / 5 + 1;
    const int m = month_index < 10 ? month_index + 3 : month_index - 9;
    *year = year_of_era + era * 400 + (m <= 2);
    *month = m;
    *day_of_month = d;
}

int calendar_weekday(day_number day)
{
    /* 1970-01-01 was a Thursday (3 with Monday = 0). */
    int weekday = (day + 3) % 7;
    return weekday < 0 ? weekday + 7 : weekday;
}

int calendar_days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

int64_t calendar_day_start_ms(day_number day)
{
    int year, month, day_of_month;
    calendar_day_to_ymd(day, &year, &month, &day_of_month);
    struct tm local = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day_of_month,
                       .tm_isdst = -1};
    time_t start = mktime(&local);
    /* A DST gap can swallow midnight: mktime then moves forward, which is
     * the first existing instant of the date, as documented. */
    return (int64_t)start * 1000;
}

day_number calendar_local_day(int64_t ts_ms)
{
    if (last_day.valid && ts_ms >= last_day.start_ms && ts_ms < last_day.end_ms)
        return last_day.day;
    time_t seconds = (time_t)(ts_ms >= 0 ? ts_ms / 1000 : (ts_ms - 999) / 1000);
    struct tm local;
    localtime_r(&seconds, &local);
    day_number day = calendar_day_from_ymd(local.tm_year + 1900, local.tm_mon + 1, local.tm_mday);
    last_day.day = day;
    last_day.start_ms = calendar_day_start_ms(day);
    last_day.end_ms = calendar_day_start_ms(day + 1);
    last_day.valid = 1;
    return day;
}

void calendar_format_day(day_number day, char *buf, size_t buf_size)
{
    int year, month, day_of_month;
    calendar_day_to_ymd(day, &year, &month, &day_of_month);
    snprintf(buf, buf_size, "%04d-%02d-%02d", year, month, day_of_month);
}

void calendar_bucket_names(day_number day, struct bucket_names *out)
{
    int year, month, day_of_month;
    calendar_day_to_ymd(day, &year, &month, &day_of_month);
    /* The contract keeps years within 2000..2100; the modulo only tells the
     * compiler the fields fit. */
    year = (year % 10000 + 10000) % 10000;
    snprintf(out->day, sizeof out->day, "%04d-%02u-%02u", year, (unsigned)month % 100u,
             (unsigned)day_of_month % 100u);
    snprintf(out->month, sizeof out->month, "%04d-%02u", year, (unsigned)month % 100u);
    /* ISO 8601: the week belongs to the year of its Thursday. */
    day_number thursday = day - calendar_weekday(day) + 3;
    int week_year, ignored_month, ignored_day;
    calendar_day_to_ymd(thursday, &week_year, &ignored_month, &ignored_day);
    int week = (thursday - calendar_day_from_ymd(week_year, 1, 1)) / 7 + 1;
    snprintf(out->week, sizeof out->week, "%04d-W%02u", (week_year % 10000 + 10000) % 10000,
             (unsigned)week % 100u);
}
