/* Shared by the unit tests that load the shipped rules and calendar
 * (test_clock_setup.c, test_clock_explain.c): where the repository's files
 * are, and instants written as Beijing dates, from timegm() rather than
 * calendar.c (the code under test). */
#ifndef DUEWATCH_TEST_SHIPPED_FILES_H
#define DUEWATCH_TEST_SHIPPED_FILES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define HOUR_MS INT64_C(3600000)

/* The UTC day number of a date. */
static inline int32_t day_of(int year, int month, int day)
{
    struct tm utc = {.tm_year = year - 1900, .tm_mon = month - 1, .tm_mday = day};
    return (int32_t)((int64_t)timegm(&utc) / 86400);
}

/* Local midnight (+08:00) of a date, plus hours. */
static inline int64_t at(int year, int month, int day, int hour)
{
    return (int64_t)day_of(year, month, day) * 86400000 - 8 * HOUR_MS + hour * HOUR_MS;
}

/* A file of the repository: under $DUEWATCH_SOURCE_DIR, else the current
 * directory (the repository root when make runs the tests). */
static inline void source_path(const char *relative, char *buf, size_t buf_size)
{
    const char *directory = getenv("DUEWATCH_SOURCE_DIR");
    if (directory == NULL || directory[0] == '\0')
        directory = ".";
    snprintf(buf, buf_size, "%s/%s", directory, relative);
}

#endif
