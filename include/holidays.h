/* The working-day calendar: the State Council's holiday schedule (法定节假日
 * and 调休 adjusted working days) read from a file such as
 * conf/holidays-cn.conf.  A working day is Monday to Friday unless it is a
 * holiday, plus the adjusted working weekend days.  The file declares which
 * years it covers; asking about a day outside them is an error, never a
 * guess. */
#ifndef DUEWATCH_HOLIDAYS_H
#define DUEWATCH_HOLIDAYS_H

#include <stdbool.h>
#include <stddef.h>

#include "calendar.h"

struct holidays;

/* Loads the file.  Format, one entry per line ('#' starts a comment):
 *   years 2024..2026
 *   holiday 2025-01-28..2025-02-04    (or a single date)
 *   workday 2025-01-26                (a weekend day that is worked)
 * Returns NULL with "FILE:LINE: reason" in err on error: a bad date, a date
 * outside the declared years, a workday that is not a Saturday or Sunday, a
 * date listed both ways, or no `years` line before the first date. */
struct holidays *holidays_load(const char *path, char *err, size_t err_size);
void holidays_destroy(struct holidays *holidays);

/* Sets *working for `day`; returns 0, or -1 when the day is outside the years
 * the file covers. */
int holidays_is_working_day(const struct holidays *holidays, day_number day, bool *working);

day_number holidays_first_day(const struct holidays *holidays);
day_number holidays_last_day(const struct holidays *holidays);

/* Writes "FIRST,LAST;h1,h2,...;w1,w2,..." (day numbers: the covered range,
 * the holidays that fall on Monday..Friday, the adjusted working weekend
 * days) for the Lua scripts.  Returns the length, or -1 if buf is too small. */
int holidays_serialize(const struct holidays *holidays, char *buf, size_t buf_size);

#endif
