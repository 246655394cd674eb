/* The legal deadline of a clock and when its warning levels are due, counted
 * as the law counts (刑事诉讼法 第一百零五条; 行政处罚法 第八十五条) in the
 * configured time zone (calendar_init).  "Last day" is the local date on
 * which the term ends; "end of a day" is 24:00 local, i.e. the start of the
 * next day.
 *
 * Length of a term, from the starting event's instant `start` (刑事诉讼法
 * 第一百零五条: "期间开始的时和日不算在期间以内"):
 *  - seconds (test rules): deadline = start + length, an exact duration.
 *  - hours: the local clock hour holding `start` is not counted, even when
 *    `start` is exactly HH:00:00.000; counting begins at the next whole local
 *    hour: deadline = calendar_hour_start_ms(start) + 1 hour + N hours
 *    (decided 10:37 or 10:00, 24 hours: 11:00 the next day).  Never moved.
 *    For seconds and hours the last day is the local day containing
 *    deadline - 1 ms.
 *  - days: the starting day is not counted; the last day is the Nth day after
 *    the start date; the deadline is the end of the last day.
 *  - months (最高人民法院关于适用《中华人民共和国刑事诉讼法》的解释 第二百零二条
 *    第一款: "以月计算的期间，自本月某日至下月同日为一个月；期间起算日为本月
 *    最后一日的，至下月最后一日为一个月；下月同日不存在的，自本月某日至下月
 *    最后一日为一个月"): the last day is the same day-of-month N months after
 *    the start date, or the last day of that month when the start date is the
 *    last day of its month or that month has no such day.  N months count at
 *    once from the start date (2024-01-30 + 2 months: 2024-03-30).  So
 *    2024-03-15 + 12 months: 2025-03-15; 2024-02-29 + 12: 2025-02-28;
 *    2024-08-31 + 6: 2025-02-28; 2024-04-30 + 1: 2024-05-31.  (Not the
 *    刑期 rule of 第二款, which ends a day earlier.)  Deadline = end of the
 *    last day.
 *  - working days: the last day is the Nth working day after the start date
 *    (holidays.h), so it is always a working day.
 *  - move_to_working_day: a day or month rule's last day that is not a
 *    working day moves to the next working day ("期间的最后一日为节假日的，
 *    以节假日后的第一日为期满日期"); hour rules never move.  A custody term
 *    ("在押期间...不得因节假日而延长") is a rule with custody = yes, which
 *    clock_setup.c refuses together with move_to_working_day = yes.
 *  - `until` (epoch ms, from the starting event) overrides the rule: it is
 *    the deadline, the last day is the local day containing until - 1 ms, and
 *    nothing moves.
 *  - extensions, one at a time as their events arrive, add calendar days to
 *    the last day; then a move_to_working_day or working-day rule moves the
 *    new last day to the next working day (after each extension, not once
 *    after the total), and the deadline is the end of the new last day (also
 *    when `until` gave the deadline).  For second and hour rules an
 *    extension day is 86 400 000 ms added to the deadline.
 *    (deadline_extend_last_day; clock_engine.c applies it.)
 *  - pauses freeze the clock: the deadline and every level move later by
 *    exactly the paused milliseconds; the last day stays that of the unpaused
 *    term.  (clock_engine.c adds the paused time.)
 *
 * Warning levels (yellow, orange; either may be absent), `before` the
 * deadline:
 *  - N days: 00:00 local of the Nth day counting back from the last day, the
 *    last day being the 1st (1 day = 00:00 of the last day; 3 days with last
 *    day 2025-03-14 = 2025-03-12 00:00).
 *  - N working days: 00:00 of the Nth working day counting back from the last
 *    day, the last day being the 1st if it is a working day (otherwise the
 *    1st is the latest working day before it).
 *  - N hours / seconds: deadline minus them.
 *  Red is due at the deadline and, when red_repeat_ms > 0, again at
 *  deadline + k * red_repeat_ms for k = 1, 2, ...
 *
 * Anything that needs to know working days fails (returns -1 with a reason in
 * err) when holidays is NULL or the day is outside the calendar's years:
 * never a guess.  holidays may be NULL for rules that need no working days. */
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

/* amount must be at least 1 (clock_setup.c allows 1..100000). */
struct duration {
    enum duration_unit unit;
    int32_t amount;
};

struct deadline_spec {
    struct duration length;
    bool move_to_working_day;   /* day and month lengths only */
    bool has_yellow, has_orange;
    struct duration yellow_before, orange_before; /* any unit but months */
    int64_t red_repeat_ms;      /* 0 = red does not repeat */
};

/* The due time of a level the rule does not have. */
#define DEADLINE_NO_LEVEL INT64_MIN

struct deadline_result {
    day_number last_day;
    int64_t deadline_ms;   /* red is due here */
    int64_t yellow_due_ms; /* DEADLINE_NO_LEVEL when the rule has no yellow */
    int64_t orange_due_ms; /* DEADLINE_NO_LEVEL when the rule has no orange */
};

/* Computes the deadline and levels of a clock started at start_ms, with the
 * starting event's until_ms (0 = none), before any extension or pause.
 * Returns 0, or -1 with a reason in err (working days unknown, bad spec);
 * *out is written only on success. */
int deadline_compute(const struct deadline_spec *spec, const struct holidays *holidays,
                     int64_t start_ms, int64_t until_ms, struct deadline_result *out, char *err,
                     size_t err_size);

/* The instant a warning `before` a deadline with the given last day is due
 * (rules in the file comment; months are not a warning unit).  Returns 0, or
 * -1 with a reason in err. */
int deadline_warning_due(const struct duration *before, const struct holidays *holidays,
                         const struct deadline_result *deadline, int64_t *due_ms, char *err,
                         size_t err_size);

/* Whether a clock of this rule asks the holiday calendar: a working-day
 * length or warning, or a day or month length moved off rest days.  Only
 * such a clock can depend on provisional calendar years: on a day up to its
 * last day (the latest day any of its computations looks at). */
bool deadline_uses_calendar(const struct deadline_spec *spec);

/* One extension of a day, month or working-day clock as it is applied when
 * the extending event arrives: `days` calendar days added to last_day, then
 * moved to the next working day for a move_to_working_day or working-day
 * rule.  Returns 0 with *out, or -1 with a reason in err (working days
 * unknown). */
int deadline_extend_last_day(const struct deadline_spec *spec, const struct holidays *holidays,
                             day_number last_day, int32_t days, day_number *out, char *err,
                             size_t err_size);

/* Due time of red repeat k: k = 0 is the first red (the deadline), k >= 1 is
 * deadline_ms + k * red_repeat_ms.  DEADLINE_NO_LEVEL when k < 0, or k >= 1
 * and red does not repeat; INT64_MAX (never) when the sum overflows. */
int64_t deadline_red_due_ms(int64_t deadline_ms, int64_t red_repeat_ms, int64_t k);

/* The largest k with deadline_red_due_ms(deadline_ms, red_repeat_ms, k) <=
 * now_ms: -1 before the deadline, 0 from the deadline on when red does not
 * repeat. */
int64_t deadline_red_latest_repeat(int64_t deadline_ms, int64_t red_repeat_ms, int64_t now_ms);

#endif
