/* Legal deadlines of starting clocks (see deadline.h). */
#include "deadline.h"

#include <stdio.h>

static int working(const struct holidays *holidays, day_number day, bool *result, char *err,
                   size_t err_size)
{
    if (holidays == NULL || holidays_is_working_day(holidays, day, result) != 0) {
        char date[16];
        calendar_format_day(day, date, sizeof date);
        snprintf(err, err_size, "working days of %s are not in the holiday calendar", date);
        return -1;
    }
    return 0;
}

/* The first working day on or after `day`. */
static int next_working_day(const struct holidays *holidays, day_number *day, char *err,
                            size_t err_size)
{
    for (;;) {
        bool is_working;
        if (working(holidays, *day, &is_working, err, err_size) != 0)
            return -1;
        if (is_working)
            return 0;
        (*day)++;
    }
}

/* The last day of a term of `months` starting on `start`. */
static day_number month_term_last_day(day_number start, int months)
{
    int year, month, day;
    calendar_day_to_ymd(start, &year, &month, &day);
    int index = year * 12 + (month - 1) + months;
    int end_year = index / 12, end_month = index % 12 + 1;
    int end_day = day;
    int length = calendar_days_in_month(end_year, end_month);
    if (end_day > length)
        end_day = length;
    return calendar_day_from_ymd(end_year, end_month, end_day) - 1;
}

int deadline_compute(const struct deadline_spec *spec, const struct holidays *holidays,
                     int64_t start_ms, int64_t until_ms, struct deadline_result *out, char *err,
                     size_t err_size)
{
    if (until_ms != 0) {
        out->deadline_ms = until_ms;
        out->last_day = calendar_local_day(until_ms - 1);
        return 0;
    }
    day_number start = calendar_local_day(start_ms);
    day_number last;
    switch (spec->length.unit) {
    case DURATION_SECONDS:
    case DURATION_HOURS:
        out->deadline_ms = start_ms + (int64_t)spec->length.amount *
                                          (spec->length.unit == DURATION_SECONDS ? 1000 : 3600000);
        out->last_day = calendar_local_day(out->deadline_ms - 1);
        return 0;
    case DURATION_DAYS:
        last = start + spec->length.amount;
        break;
    case DURATION_MONTHS:
        last = month_term_last_day(start, spec->length.amount);
        break;
    case DURATION_WORKING_DAYS:
        last = start;
        for (int counted = 0; counted < spec->length.amount;) {
            last++;
            bool is_working;
            if (working(holidays, last, &is_working, err, err_size) != 0)
                return -1;
            counted += is_working;
        }
        break;
    default:
        snprintf(err, err_size, "unknown duration unit");
        return -1;
    }
    if (spec->move_to_working_day && next_working_day(holidays, &last, err, err_size) != 0)
        return -1;
    out->last_day = last;
    out->deadline_ms = calendar_day_start_ms(last + 1);
    return 0;
}

int deadline_warning_due(const struct duration *before, const struct holidays *holidays,
                         const struct deadline_result *deadline, int64_t *due_ms, char *err,
                         size_t err_size)
{
    switch (before->unit) {
    case DURATION_SECONDS:
        *due_ms = deadline->deadline_ms - (int64_t)before->amount * 1000;
        return 0;
    case DURATION_HOURS:
        *due_ms = deadline->deadline_ms - (int64_t)before->amount * 3600000;
        return 0;
    case DURATION_DAYS:
    case DURATION_MONTHS:
        *due_ms = calendar_day_start_ms(deadline->last_day - before->amount + 1);
        return 0;
    case DURATION_WORKING_DAYS: {
        day_number day = deadline->last_day;
        for (int counted = 0;;) {
            bool is_working;
            if (working(holidays, day, &is_working, err, err_size) != 0)
                return -1;
            if (is_working && ++counted == before->amount)
                break;
            day--;
        }
        *due_ms = calendar_day_start_ms(day);
        return 0;
    }
    }
    snprintf(err, err_size, "unknown duration unit");
    return -1;
}
