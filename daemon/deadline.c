/* Legal deadlines of clocks and the due times of their warning levels (the
 * rules are in deadline.h).  Everything is counted in local day numbers and
 * only turned into instants at the end, with calendar_day_start_ms(), so
 * "the end of a day" is always the next local midnight, whatever the zone. */
#include "deadline.h"

#include <stdio.h>

#define SECOND_MS INT64_C(1000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

/* *working for `day`, or -1 with a reason when the calendar cannot say. */
static int check_working_day(const struct holidays *holidays, day_number day, bool *working,
                             char *err, size_t err_size)
{
    char date[11];
    if (holidays == NULL) {
        calendar_format_day(day, date, sizeof date);
        snprintf(err, err_size, "working days needed (for %s) but no holiday calendar", date);
        return -1;
    }
    if (holidays_is_working_day(holidays, day, working) != 0) {
        char first[11], last[11];
        calendar_format_day(day, date, sizeof date);
        calendar_format_day(holidays_first_day(holidays), first, sizeof first);
        calendar_format_day(holidays_last_day(holidays), last, sizeof last);
        snprintf(err, err_size, "working days of %s are not in the holiday calendar (%s..%s)",
                 date, first, last);
        return -1;
    }
    return 0;
}

/* Moves *day forward to the first working day on or after it. */
static int move_to_working_day(const struct holidays *holidays, day_number *day, char *err,
                               size_t err_size)
{
    for (;;) {
        bool working;
        if (check_working_day(holidays, *day, &working, err, err_size) != 0)
            return -1;
        if (working)
            return 0;
        (*day)++;
    }
}

/* The Nth working day after `start` (start itself not counted). */
static int nth_working_day_after(const struct holidays *holidays, day_number start, int32_t count,
                                 day_number *out, char *err, size_t err_size)
{
    day_number day = start;
    for (int32_t counted = 0; counted < count;) {
        bool working;
        day++;
        if (check_working_day(holidays, day, &working, err, err_size) != 0)
            return -1;
        if (working)
            counted++;
    }
    *out = day;
    return 0;
}

/* The last day of a term of `months` starting on `start` (刑诉法解释 第二百零
 * 二条第一款): the same day-of-month `months` later; the last day of that
 * month when `start` is the last day of its month or that month is shorter.
 * The months are counted at once from `start`, not one by one. */
static day_number month_term_last_day(day_number start, int32_t months)
{
    int year, month, day_of_month;
    calendar_day_to_ymd(start, &year, &month, &day_of_month);
    int64_t month_index = (int64_t)year * 12 + (month - 1) + months;
    int end_year = (int)(month_index / 12);
    int end_month = (int)(month_index % 12) + 1;
    int length = calendar_days_in_month(end_year, end_month);
    bool start_on_month_end = day_of_month == calendar_days_in_month(year, month);
    int end_day = start_on_month_end || day_of_month > length ? length : day_of_month;
    return calendar_day_from_ymd(end_year, end_month, end_day);
}

static int check_amount(const struct duration *duration, const char *what, char *err,
                        size_t err_size)
{
    if (duration->amount < 1 || (unsigned)duration->unit > DURATION_WORKING_DAYS) {
        snprintf(err, err_size, "%s: amount must be at least 1 and the unit known", what);
        return -1;
    }
    return 0;
}

int deadline_warning_due(const struct duration *before, const struct holidays *holidays,
                         const struct deadline_result *deadline, int64_t *due_ms, char *err,
                         size_t err_size)
{
    if (check_amount(before, "warning", err, err_size) != 0)
        return -1;
    switch (before->unit) {
    case DURATION_SECONDS:
        *due_ms = deadline->deadline_ms - before->amount * SECOND_MS;
        return 0;
    case DURATION_HOURS:
        *due_ms = deadline->deadline_ms - before->amount * HOUR_MS;
        return 0;
    case DURATION_DAYS:
        /* The last day is the 1st day counting back. */
        *due_ms = calendar_day_start_ms(deadline->last_day - (before->amount - 1));
        return 0;
    case DURATION_WORKING_DAYS: {
        day_number day = deadline->last_day;
        for (int32_t counted = 0;; day--) {
            bool working;
            if (check_working_day(holidays, day, &working, err, err_size) != 0)
                return -1;
            if (working && ++counted == before->amount)
                break;
        }
        *due_ms = calendar_day_start_ms(day);
        return 0;
    }
    case DURATION_MONTHS:
        break;
    }
    snprintf(err, err_size, "a warning cannot be given in months");
    return -1;
}

/* Fills the yellow and orange due times of *result from its last day and
 * deadline. */
static int compute_levels(const struct deadline_spec *spec, const struct holidays *holidays,
                          struct deadline_result *result, char *err, size_t err_size)
{
    result->yellow_due_ms = DEADLINE_NO_LEVEL;
    result->orange_due_ms = DEADLINE_NO_LEVEL;
    if (spec->has_yellow && deadline_warning_due(&spec->yellow_before, holidays, result,
                                                 &result->yellow_due_ms, err, err_size) != 0)
        return -1;
    if (spec->has_orange && deadline_warning_due(&spec->orange_before, holidays, result,
                                                 &result->orange_due_ms, err, err_size) != 0)
        return -1;
    return 0;
}

int deadline_compute(const struct deadline_spec *spec, const struct holidays *holidays,
                     int64_t start_ms, int64_t until_ms, struct deadline_result *out, char *err,
                     size_t err_size)
{
    if (check_amount(&spec->length, "length", err, err_size) != 0)
        return -1;
    const enum duration_unit unit = spec->length.unit;
    const int32_t amount = spec->length.amount;
    struct deadline_result result;

    /* 1. The term as the starting event defines it. */
    if (until_ms != 0) {
        result.deadline_ms = until_ms;
        result.last_day = calendar_local_day(until_ms - 1);
    } else if (unit == DURATION_HOURS) {
        /* The hour the start falls in is not counted, even from HH:00:00.000:
         * counting begins at the next whole local hour. */
        result.deadline_ms = calendar_hour_start_ms(start_ms) + (amount + 1) * HOUR_MS;
        result.last_day = calendar_local_day(result.deadline_ms - 1);
    } else if (unit == DURATION_SECONDS) {
        result.deadline_ms = start_ms + amount * SECOND_MS;
        result.last_day = calendar_local_day(result.deadline_ms - 1);
    } else {
        day_number start_day = calendar_local_day(start_ms);
        day_number last_day;
        if (unit == DURATION_DAYS)
            last_day = start_day + amount;
        else if (unit == DURATION_MONTHS)
            last_day = month_term_last_day(start_day, amount);
        else if (nth_working_day_after(holidays, start_day, amount, &last_day, err, err_size) != 0)
            return -1;
        if (spec->move_to_working_day &&
            move_to_working_day(holidays, &last_day, err, err_size) != 0)
            return -1;
        result.last_day = last_day;
        result.deadline_ms = calendar_day_start_ms(last_day + 1);
    }

    /* 2. Warning levels. */
    if (compute_levels(spec, holidays, &result, err, err_size) != 0)
        return -1;
    *out = result;
    return 0;
}

bool deadline_uses_calendar(const struct deadline_spec *spec)
{
    enum duration_unit unit = spec->length.unit;
    return unit == DURATION_WORKING_DAYS ||
           (spec->move_to_working_day && (unit == DURATION_DAYS || unit == DURATION_MONTHS)) ||
           (spec->has_yellow && spec->yellow_before.unit == DURATION_WORKING_DAYS) ||
           (spec->has_orange && spec->orange_before.unit == DURATION_WORKING_DAYS);
}

int deadline_extend_last_day(const struct deadline_spec *spec, const struct holidays *holidays,
                             day_number last_day, int32_t days, day_number *out, char *err,
                             size_t err_size)
{
    day_number day = last_day + days;
    if ((spec->move_to_working_day || spec->length.unit == DURATION_WORKING_DAYS) &&
        move_to_working_day(holidays, &day, err, err_size) != 0)
        return -1;
    *out = day;
    return 0;
}

int64_t deadline_red_due_ms(int64_t deadline_ms, int64_t red_repeat_ms, int64_t k)
{
    if (k < 0 || (k > 0 && red_repeat_ms <= 0))
        return DEADLINE_NO_LEVEL;
    if (k == 0)
        return deadline_ms;
    if (k > (INT64_MAX - (deadline_ms > 0 ? deadline_ms : 0)) / red_repeat_ms)
        return INT64_MAX;
    return deadline_ms + k * red_repeat_ms;
}

int64_t deadline_red_latest_repeat(int64_t deadline_ms, int64_t red_repeat_ms, int64_t now_ms)
{
    if (now_ms < deadline_ms)
        return -1;
    if (red_repeat_ms <= 0)
        return 0;
    /* now_ms >= deadline_ms, so the difference is exact as unsigned. */
    uint64_t elapsed = (uint64_t)now_ms - (uint64_t)deadline_ms;
    uint64_t k = elapsed / (uint64_t)red_repeat_ms;
    return k > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)k;
}
