/* The working-day calendar: the State Council's holiday schedule (法定节假日
 * and 调休 adjusted working days) read from a file such as
 * conf/holidays-cn.conf.  A working day is Monday to Friday unless it is a
 * holiday, plus the adjusted working weekend days.  The file declares which
 * years it covers; asking about a day outside them is an error, never a
 * guess.  A loaded calendar is immutable: share it freely for reading. */
#ifndef DUEWATCH_HOLIDAYS_H
#define DUEWATCH_HOLIDAYS_H

#include <stdbool.h>
#include <stddef.h>

#include "calendar.h"

struct holidays;

/* Loads the file.  Format, one entry per line; '#' starts a comment; blank
 * lines are ignored:
 *   years 2024..2035                     the covered years (exactly one line,
 *                                        before the first date)
 *   provisional 2027..2035               optional, after `years`: the last
 *                                        covered years have no official
 *                                        schedule yet (only the statutory
 *                                        holidays are listed for them)
 *   holiday 2025-01-28..2025-02-04       a holiday range, both ends included
 *   holiday 2025-01-01                   a single holiday
 *   workday 2025-01-26                   a Saturday or Sunday that is worked
 * Spaces around ".." are allowed.  Listing a holiday twice is harmless.
 * Returns NULL with "FILE:LINE: reason" in err on error (a bad date or range,
 * a date outside the declared years, a workday that is not a Saturday or
 * Sunday, a date listed both as holiday and workday, an unknown keyword, a
 * second `years` line) or "FILE: reason" (cannot open, no `years` line). */
struct holidays *holidays_load(const char *path, char *err, size_t err_size);

/* Frees the calendar; NULL is allowed. */
void holidays_destroy(struct holidays *holidays);

/* Sets *working for `day` and returns 0, or returns -1 (leaving *working
 * alone) when the day is outside the covered years. */
int holidays_is_working_day(const struct holidays *holidays, day_number day, bool *working);

/* The first (January 1 of the first year) and last (December 31 of the last
 * year) covered day. */
day_number holidays_first_day(const struct holidays *holidays);
day_number holidays_last_day(const struct holidays *holidays);

/* The last day of the official years: the last covered day when there is no
 * `provisional` line, else December 31 of the year before the first
 * provisional one.  A deadline computed from a later day is provisional. */
day_number holidays_official_last_day(const struct holidays *holidays);

/* Writes the calendar as compact text for the Lua scripts, which need the
 * same working days:
 *   "FIRSTDAY,LASTDAY,OFFICIALLASTDAY;h1,h2,...;w1,w2,..."
 * all decimal day numbers (days since 1970-01-01): the covered range and the
 * last official day (holidays_official_last_day), then in
 * ascending order the holidays that fall on Monday..Friday (a weekend holiday
 * changes nothing), then the adjusted working weekend days.  An empty list is
 * an empty field ("19723,20819,20819;;20000").  Returns the length written (without
 * the terminating NUL), or -1 if buf_size is too small. */
int holidays_serialize(const struct holidays *holidays, char *buf, size_t buf_size);

#endif
