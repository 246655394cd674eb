/* Civil time in the configured time zone: local dates as day numbers, the
 * instant a local day starts, and the names of counter buckets (day, ISO week,
 * month).  calendar_init() sets the process time zone (TZ) once at start-up;
 * the time zone is a restart-only setting. */
#ifndef DUEWATCH_CALENDAR_H
#define DUEWATCH_CALENDAR_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* A local civil date as days since 1970-01-01 (proleptic Gregorian). */
typedef int32_t day_number;

/* Sets the process time zone to an IANA name ("Asia/Shanghai").  Returns 0, or
 * -1 with a message in err when the zone is unknown (no tzdata file). */
int calendar_init(const char *zone_name, char *err, size_t err_size);

/* The wall clock now, epoch milliseconds. */
int64_t calendar_wall_now_ms(void);

/* The local date that contains instant ts_ms (epoch milliseconds). */
day_number calendar_local_day(int64_t ts_ms);

/* The first instant (epoch ms) of local date `day` (00:00 local, or the first
 * existing local time on that date where a DST gap swallows midnight). */
int64_t calendar_day_start_ms(day_number day);

/* The first instant (epoch ms) of the local clock hour that contains ts_ms:
 * ts_ms minus its local minutes, seconds and milliseconds (in a zone whose
 * offset is whole hours, as Asia/Shanghai's +08:00, the UTC hour). */
int64_t calendar_hour_start_ms(int64_t ts_ms);

day_number calendar_day_from_ymd(int year, int month, int day);
void calendar_day_to_ymd(day_number day, int *year, int *month, int *day_of_month);
/* 0 = Monday ... 6 = Sunday */
int calendar_weekday(day_number day);
int calendar_days_in_month(int year, int month);

/* Bucket names for counters (see README "Counters"). */
struct bucket_names {
    char day[11];   /* "2025-03-14" */
    char week[9];   /* "2025-W11" (ISO 8601 week-numbering year and week) */
    char month[8];  /* "2025-03" */
    char quarter[10]; /* "2025-Q1" */
    char year[5];    /* "2025" */
};
void calendar_bucket_names(day_number day, struct bucket_names *out);

/* Reads "YYYY-MM-DD" (four, two and two digits; a real calendar date) at
 * *cursor into *day and advances past it; false (nothing moved) otherwise.
 * The rules and holiday files' one date syntax. */
bool calendar_read_day(const char **cursor, day_number *day);

/* Reads exactly `width` decimal digits at *cursor into *value and moves the
 * cursor past them; false (cursor unmoved) when any of them is not a digit. */
bool calendar_read_digits(const char **cursor, int width, int *value);

/* Formats a local date as "YYYY-MM-DD" into buf (at least 11 bytes). */
void calendar_format_day(day_number day, char *buf, size_t buf_size);

#endif
