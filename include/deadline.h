/* The legal deadline of a starting clock, counted as the law counts
 * (刑事诉讼法 第一百零五条; 行政处罚法 第八十五条), in the configured time zone:
 *  - hours (or seconds): deadline = start + length;
 *  - days: the starting day is not counted; the deadline is the end (24:00
 *    local) of the Nth day after the start date;
 *  - months: as decision documents state a term (自2024年3月15日起至2025年3月14日止):
 *    the last day is the day before the same day-of-month N months later,
 *    that day clamped to the month's length (2024-01-31 + 1 month: 02-29 ->
 *    last day 02-28); the deadline is the end of the last day;
 *  - working days: the last day is the Nth working day after the start date;
 *  - with move_to_working_day, a day or month rule's last day that is not a
 *    working day moves to the next working day;
 *  - an event's `until` (epoch ms) is the deadline when given; its last day
 *    is the local day containing until - 1 ms.
 * Warnings (yellow, orange) and later changes (extensions, pauses) are
 * computed by the Lua scripts from the last day and deadline stored with the
 * clock (daemon/lua/lib/clock_lib.lua); deadline_warning_due() gives the same
 * answer in C for tools and tests. */
#ifndef DUEWATCH_DEADLINE_H
#define DUEWATCH_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "holidays.h"

enum duration_unit {
    DURATION_SECONDS,
    DURATION_HOURS,
    DURATION_DAYS,
    DURATION_MONTHS,
    DURATION_WORKING_DAYS,
};

struct duration {
    enum duration_unit unit;
    int32_t amount;
};

struct deadline_spec {
    struct duration length;
    bool move_to_working_day;
    bool has_yellow, has_orange;
    struct duration yellow_before, orange_before;
    int64_t red_repeat_ms; /* 0 = red does not repeat */
};

struct deadline_result {
    day_number last_day; /* for hour rules: the local day containing deadline - 1 ms */
    int64_t deadline_ms;
};

/* Computes the deadline of a clock started at start_ms (until_ms 0 = none).
 * Returns 0, or -1 with a reason in err when a working day must be known
 * outside the holiday calendar's years (or holidays is NULL then). */
int deadline_compute(const struct deadline_spec *spec, const struct holidays *holidays,
                     int64_t start_ms, int64_t until_ms, struct deadline_result *out, char *err,
                     size_t err_size);

/* When a warning `before` the deadline is due: N days before = 00:00 of the
 * Nth day counting back from the last day (the last day being the 1st);
 * N working days = 00:00 of the Nth working day counting back (the last day
 * being the 1st if it is a working day); hours/seconds = deadline minus
 * them.  Returns 0, or -1 with a reason in err (calendar coverage). */
int deadline_warning_due(const struct duration *before, const struct holidays *holidays,
                         const struct deadline_result *deadline, int64_t *due_ms, char *err,
                         size_t err_size);

#endif
