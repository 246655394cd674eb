/* The working-day calendar (see holidays.h).  Dates are kept as one flag per
 * day of the covered years, so a look-up is an index. */
#include "holidays.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum day_flag { DAY_PLAIN = 0, DAY_HOLIDAY = 1, DAY_WORKDAY = 2 };

struct holidays {
    day_number first, last;
    unsigned char *flags; /* one per day from first to last */
};

static bool parse_date(const char *text, day_number *out)
{
    int year, month, day, consumed = 0;
    if (sscanf(text, "%4d-%2d-%2d%n", &year, &month, &day, &consumed) != 3 || consumed != 10 ||
        month < 1 || month > 12 || day < 1 || day > calendar_days_in_month(year, month))
        return false;
    *out = calendar_day_from_ymd(year, month, day);
    return true;
}

static char *next_word(char **cursor)
{
    char *start = *cursor;
    while (isspace((unsigned char)*start))
        start++;
    if (*start == '\0')
        return NULL;
    char *end = start;
    while (*end && !isspace((unsigned char)*end))
        end++;
    if (*end)
        *end++ = '\0';
    *cursor = end;
    return start;
}

struct holidays *holidays_load(const char *path, char *err, size_t err_size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct holidays *holidays = calloc(1, sizeof *holidays);
    char line[512];
    int number = 0;
    if (holidays == NULL) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    while (fgets(line, sizeof line, file)) {
        number++;
        char *comment = strchr(line, '#');
        if (comment)
            *comment = '\0';
        char *cursor = line;
        char *word = next_word(&cursor);
        if (word == NULL)
            continue;
        char *value = next_word(&cursor);
        if (value == NULL || next_word(&cursor) != NULL) {
            snprintf(err, err_size, "%s:%d: expected 'years A..B', 'holiday DATE[..DATE]' or "
                     "'workday DATE'", path, number);
            goto fail;
        }
        if (strcmp(word, "years") == 0) {
            int first_year, last_year, consumed = 0;
            if (holidays->flags) {
                snprintf(err, err_size, "%s:%d: 'years' given twice", path, number);
                goto fail;
            }
            if (sscanf(value, "%4d..%4d%n", &first_year, &last_year, &consumed) != 2 ||
                value[consumed] != '\0' || first_year < 1970 || last_year > 2200 ||
                last_year < first_year) {
                snprintf(err, err_size, "%s:%d: expected 'years YYYY..YYYY'", path, number);
                goto fail;
            }
            holidays->first = calendar_day_from_ymd(first_year, 1, 1);
            holidays->last = calendar_day_from_ymd(last_year, 12, 31);
            holidays->flags = calloc((size_t)(holidays->last - holidays->first + 1), 1);
            if (holidays->flags == NULL) {
                snprintf(err, err_size, "out of memory");
                goto fail;
            }
            continue;
        }
        bool holiday = strcmp(word, "holiday") == 0;
        if (!holiday && strcmp(word, "workday") != 0) {
            snprintf(err, err_size, "%s:%d: unknown entry '%s' (years, holiday, workday)", path,
                     number, word);
            goto fail;
        }
        if (holidays->flags == NULL) {
            snprintf(err, err_size, "%s:%d: a 'years A..B' line must come first", path, number);
            goto fail;
        }
        day_number from, to;
        char *range = strstr(value, "..");
        if (range && holiday) {
            *range = '\0';
            if (!parse_date(value, &from) || !parse_date(range + 2, &to) || to < from) {
                snprintf(err, err_size, "%s:%d: bad date range", path, number);
                goto fail;
            }
        } else if (!parse_date(value, &from)) {
            snprintf(err, err_size, "%s:%d: bad date '%s' (YYYY-MM-DD)", path, number, value);
            goto fail;
        } else {
            to = from;
        }
        if (from < holidays->first || to > holidays->last) {
            snprintf(err, err_size, "%s:%d: date outside the declared years", path, number);
            goto fail;
        }
        for (day_number day = from; day <= to; day++) {
            unsigned char *flag = &holidays->flags[day - holidays->first];
            if (!holiday && calendar_weekday(day) < 5) {
                snprintf(err, err_size, "%s:%d: workday %s is not a Saturday or Sunday", path,
                         number, value);
                goto fail;
            }
            if (*flag != DAY_PLAIN && *flag != (holiday ? DAY_HOLIDAY : DAY_WORKDAY)) {
                snprintf(err, err_size, "%s:%d: a date listed both as holiday and workday", path,
                         number);
                goto fail;
            }
            *flag = holiday ? DAY_HOLIDAY : DAY_WORKDAY;
        }
    }
    if (holidays->flags == NULL) {
        snprintf(err, err_size, "%s: no 'years A..B' line", path);
        goto fail;
    }
    fclose(file);
    return holidays;
fail:
    fclose(file);
    holidays_destroy(holidays);
    return NULL;
}

void holidays_destroy(struct holidays *holidays)
{
    if (holidays == NULL)
        return;
    free(holidays->flags);
    free(holidays);
}

int holidays_is_working_day(const struct holidays *holidays, day_number day, bool *working)
{
    if (day < holidays->first || day > holidays->last)
        return -1;
    unsigned char flag = holidays->flags[day - holidays->first];
    *working = flag == DAY_WORKDAY || (flag == DAY_PLAIN && calendar_weekday(day) < 5);
    return 0;
}

day_number holidays_first_day(const struct holidays *holidays) { return holidays->first; }
day_number holidays_last_day(const struct holidays *holidays) { return holidays->last; }

int holidays_serialize(const struct holidays *holidays, char *buf, size_t buf_size)
{
    size_t used = 0;
    int written = snprintf(buf, buf_size, "%d,%d;", holidays->first, holidays->last);
    if (written < 0 || (size_t)written >= buf_size)
        return -1;
    used = (size_t)written;
    for (int pass = 0; pass < 2; pass++) {
        bool first = true;
        for (day_number day = holidays->first; day <= holidays->last; day++) {
            unsigned char flag = holidays->flags[day - holidays->first];
            bool listed = pass == 0 ? flag == DAY_HOLIDAY && calendar_weekday(day) < 5
                                    : flag == DAY_WORKDAY;
            if (!listed)
                continue;
            written = snprintf(buf + used, buf_size - used, "%s%d", first ? "" : ",", day);
            if (written < 0 || (size_t)written >= buf_size - used)
                return -1;
            used += (size_t)written;
            first = false;
        }
        if (pass == 0) {
            if (used + 1 >= buf_size)
                return -1;
            buf[used++] = ';';
            buf[used] = '\0';
        }
    }
    return (int)used;
}
