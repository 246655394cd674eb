/* The working-day calendar (see holidays.h): parses the holiday file and
 * answers "is this day worked?".  Each covered day has one flag byte, so a
 * look-up is an index and three years cost about a kilobyte. */
#include "holidays.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the file says about a day; a plain day follows the weekday. */
enum day_flag { DAY_PLAIN = 0, DAY_HOLIDAY = 1, DAY_WORKDAY = 2 };

/* Bounds that keep the flag array small and the years four digits. */
#define FIRST_YEAR_ALLOWED 1970
#define LAST_YEAR_ALLOWED 9999
#define MAX_YEARS_COVERED 200

struct holidays {
    day_number first, last;
    day_number official_last; /* the days after it are provisional (last: none) */
    unsigned char *flags; /* one enum day_flag per day, first..last */
};

static bool is_weekend(day_number day)
{
    return calendar_weekday(day) >= 5;
}

static void skip_spaces(const char **cursor)
{
    while (isspace((unsigned char)**cursor))
        (*cursor)++;
}

/* Reads a year of exactly four digits. */
static bool read_year(const char **cursor, int *year)
{
    return calendar_read_digits(cursor, 4, year);
}

/* Reads "YYYY-MM-DD" (a real calendar date) and advances past it. */
static bool read_date(const char **cursor, day_number *day)
{
    return calendar_read_day(cursor, day);
}

/* Reads an optional ".." separator surrounded by optional spaces. */
static bool read_range_separator(const char **cursor)
{
    const char *p = *cursor;
    skip_spaces(&p);
    if (p[0] != '.' || p[1] != '.')
        return false;
    p += 2;
    skip_spaces(&p);
    *cursor = p;
    return true;
}

static bool at_end(const char *cursor)
{
    skip_spaces(&cursor);
    return *cursor == '\0';
}

/* Reads "YYYY..YYYY" and nothing after it. */
static bool read_year_range(const char *value, int *first_year, int *last_year)
{
    return read_year(&value, first_year) && read_range_separator(&value) &&
           read_year(&value, last_year) && at_end(value);
}

/* Applies a `years` line: allocates the flags for the covered days. */
static int set_years(struct holidays *holidays, const char *value, const char *where, char *err,
                     size_t err_size)
{
    if (holidays->flags != NULL) {
        snprintf(err, err_size, "%s: a second 'years' line", where);
        return -1;
    }
    int first_year, last_year;
    if (!read_year_range(value, &first_year, &last_year)) {
        snprintf(err, err_size, "%s: expected 'years YYYY..YYYY'", where);
        return -1;
    }
    if (first_year < FIRST_YEAR_ALLOWED || last_year < first_year ||
        last_year - first_year >= MAX_YEARS_COVERED) {
        snprintf(err, err_size, "%s: years must be %d or later, in order, at most %d of them",
                 where, FIRST_YEAR_ALLOWED, MAX_YEARS_COVERED);
        return -1;
    }
    holidays->first = calendar_day_from_ymd(first_year, 1, 1);
    holidays->last = calendar_day_from_ymd(last_year, 12, 31);
    holidays->official_last = holidays->last;
    holidays->flags = calloc((size_t)(holidays->last - holidays->first) + 1, 1);
    if (holidays->flags == NULL) {
        snprintf(err, err_size, "%s: out of memory", where);
        return -1;
    }
    return 0;
}

/* Applies a `provisional` line: the last years of the covered ones are not
 * yet an official schedule. */
static int set_provisional(struct holidays *holidays, const char *value, const char *where,
                           char *err, size_t err_size)
{
    if (holidays->flags == NULL) {
        snprintf(err, err_size, "%s: a 'years YYYY..YYYY' line must come before 'provisional'",
                 where);
        return -1;
    }
    if (holidays->official_last != holidays->last) {
        snprintf(err, err_size, "%s: a second 'provisional' line", where);
        return -1;
    }
    int first_year, last_year;
    if (!read_year_range(value, &first_year, &last_year)) {
        snprintf(err, err_size, "%s: expected 'provisional YYYY..YYYY'", where);
        return -1;
    }
    day_number first = calendar_day_from_ymd(first_year, 1, 1);
    if (first <= holidays->first || last_year < first_year ||
        calendar_day_from_ymd(last_year, 12, 31) != holidays->last) {
        snprintf(err, err_size,
                 "%s: the provisional years must be the last of the covered years, after at "
                 "least one official year",
                 where);
        return -1;
    }
    holidays->official_last = first - 1;
    return 0;
}

/* Applies a `holiday` or `workday` line. */
static int set_days(struct holidays *holidays, bool holiday, const char *value,
                    const char *where, char *err, size_t err_size)
{
    const char *keyword = holiday ? "holiday" : "workday";
    if (holidays->flags == NULL) {
        snprintf(err, err_size, "%s: a 'years YYYY..YYYY' line must come before the first %s",
                 where, keyword);
        return -1;
    }
    day_number from, to;
    if (!read_date(&value, &from)) {
        snprintf(err, err_size, "%s: bad date (expected a real date YYYY-MM-DD)", where);
        return -1;
    }
    to = from;
    if (holiday && read_range_separator(&value)) {
        if (!read_date(&value, &to)) {
            snprintf(err, err_size, "%s: bad end date (expected a real date YYYY-MM-DD)", where);
            return -1;
        }
        if (to < from) {
            snprintf(err, err_size, "%s: range ends before it starts", where);
            return -1;
        }
    }
    if (!at_end(value)) {
        snprintf(err, err_size, holiday ? "%s: expected 'holiday DATE' or 'holiday DATE..DATE'"
                                        : "%s: expected 'workday DATE' (one date)",
                 where);
        return -1;
    }
    if (from < holidays->first || to > holidays->last) {
        snprintf(err, err_size, "%s: date outside the declared years", where);
        return -1;
    }
    for (day_number day = from; day <= to; day++) {
        char date[11];
        calendar_format_day(day, date, sizeof date);
        if (!holiday && !is_weekend(day)) {
            snprintf(err, err_size, "%s: workday %s is not a Saturday or Sunday", where, date);
            return -1;
        }
        unsigned char *flag = &holidays->flags[day - holidays->first];
        unsigned char wanted = holiday ? DAY_HOLIDAY : DAY_WORKDAY;
        if (*flag != DAY_PLAIN && *flag != wanted) {
            snprintf(err, err_size, "%s: %s is listed both as holiday and as workday", where,
                     date);
            return -1;
        }
        *flag = wanted;
    }
    return 0;
}

/* Parses one line (comment already cut off). */
static int parse_line(struct holidays *holidays, const char *line, const char *where, char *err,
                      size_t err_size)
{
    skip_spaces(&line);
    if (*line == '\0')
        return 0;
    const char *keyword = line;
    while (*line != '\0' && !isspace((unsigned char)*line))
        line++;
    size_t keyword_length = (size_t)(line - keyword);
    skip_spaces(&line);
    if (keyword_length == 5 && memcmp(keyword, "years", 5) == 0)
        return set_years(holidays, line, where, err, err_size);
    if (keyword_length == 11 && memcmp(keyword, "provisional", 11) == 0)
        return set_provisional(holidays, line, where, err, err_size);
    if (keyword_length == 7 && memcmp(keyword, "holiday", 7) == 0)
        return set_days(holidays, true, line, where, err, err_size);
    if (keyword_length == 7 && memcmp(keyword, "workday", 7) == 0)
        return set_days(holidays, false, line, where, err, err_size);
    snprintf(err, err_size, "%s: unknown entry '%.*s' (expected years, provisional, holiday or workday)", where,
             keyword_length > 40 ? 40 : (int)keyword_length, keyword);
    return -1;
}

struct holidays *holidays_load(const char *path, char *err, size_t err_size)
{
    struct holidays *holidays = NULL;
    char *line = NULL;
    size_t line_capacity = 0;
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    holidays = calloc(1, sizeof *holidays);
    if (holidays == NULL) {
        snprintf(err, err_size, "%s: out of memory", path);
        goto fail;
    }
    for (long number = 1; getline(&line, &line_capacity, file) >= 0; number++) {
        char *comment = strchr(line, '#');
        if (comment != NULL)
            *comment = '\0';
        char where[512];
        snprintf(where, sizeof where, "%s:%ld", path, number);
        if (parse_line(holidays, line, where, err, err_size) != 0)
            goto fail;
    }
    if (ferror(file)) {
        snprintf(err, err_size, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    if (holidays->flags == NULL) {
        snprintf(err, err_size, "%s: no 'years YYYY..YYYY' line", path);
        goto fail;
    }
    free(line);
    fclose(file);
    return holidays;
fail:
    free(line);
    if (file != NULL)
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
    switch ((enum day_flag)holidays->flags[day - holidays->first]) {
    case DAY_HOLIDAY:
        *working = false;
        break;
    case DAY_WORKDAY:
        *working = true;
        break;
    case DAY_PLAIN:
    default:
        *working = !is_weekend(day);
        break;
    }
    return 0;
}

day_number holidays_first_day(const struct holidays *holidays)
{
    return holidays->first;
}

day_number holidays_last_day(const struct holidays *holidays)
{
    return holidays->last;
}

day_number holidays_official_last_day(const struct holidays *holidays)
{
    return holidays->official_last;
}

/* Appends formatted text at *used; false when it does not fit. */
static bool append(char *buf, size_t buf_size, size_t *used, const char *separator, long value)
{
    int written = snprintf(buf + *used, buf_size - *used, "%s%ld", separator, value);
    if (written < 0 || (size_t)written >= buf_size - *used)
        return false;
    *used += (size_t)written;
    return true;
}

int holidays_serialize(const struct holidays *holidays, char *buf, size_t buf_size)
{
    size_t used = 0;
    if (buf_size == 0 || !append(buf, buf_size, &used, "", holidays->first) ||
        !append(buf, buf_size, &used, ",", holidays->last) ||
        !append(buf, buf_size, &used, ",", holidays->official_last))
        return -1;
    /* Two lists: weekday holidays, then worked weekend days. */
    for (int list = 0; list < 2; list++) {
        const char *separator = ";";
        bool empty = true;
        for (day_number day = holidays->first; day <= holidays->last; day++) {
            unsigned char flag = holidays->flags[day - holidays->first];
            bool listed = list == 0 ? flag == DAY_HOLIDAY && !is_weekend(day)
                                    : flag == DAY_WORKDAY;
            if (!listed)
                continue;
            if (!append(buf, buf_size, &used, separator, day))
                return -1;
            separator = ",";
            empty = false;
        }
        if (empty) {
            if (used + 1 >= buf_size)
                return -1;
            buf[used++] = ';';
            buf[used] = '\0';
        }
    }
    if (used > (size_t)INT32_MAX)
        return -1;
    return (int)used;
}
