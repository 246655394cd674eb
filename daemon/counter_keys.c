/* Counter bucket names (see counter_keys.h). */
#include "counter_keys.h"

#include <stdio.h>

static const char period_letters[COUNTER_PERIODS] = {'d', 'w', 'm', 'q', 'y'};

void counter_keys_of_day(const char *prefix, day_number day, const char *unit, bool persons,
                         struct counter_keys *out)
{
    struct bucket_names names = {.day = {0}};
    calendar_bucket_names(day, &names);
    const char *const buckets[COUNTER_PERIODS] = {names.day, names.week, names.month,
                                                  names.quarter, names.year};
    for (int p = 0; p < COUNTER_PERIODS; p++)
        snprintf(out->key[p], sizeof out->key[p], "%s%s%c:%s:%s", prefix, persons ? "p" : "",
                 period_letters[p], buckets[p], unit);
}

void counter_day_key(const char *prefix, day_number day, const char *unit, char *buf,
                     size_t buf_size)
{
    char name[16];
    calendar_format_day(day, name, sizeof name);
    snprintf(buf, buf_size, "%sd:%s:%s", prefix, name, unit);
}
