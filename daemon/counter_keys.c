/* Counter bucket names (see counter_keys.h). */
#include "counter_keys.h"

#include "text.h"

static const char period_letters[COUNTER_PERIODS] = {'d', 'w', 'm', 'q', 'y'};

void counter_keys_of_day(const char *prefix, day_number day, const char *unit, bool persons,
                         struct counter_keys *out)
{
    struct bucket_names names = {.day = {0}};
    calendar_bucket_names(day, &names);
    const char *const buckets[COUNTER_PERIODS] = {names.day, names.week, names.month,
                                                  names.quarter, names.year};
    for (int p = 0; p < COUNTER_PERIODS; p++) {
        /* "<prefix>[p]<letter>:<bucket>:<unit>" */
        struct text_buffer key = text_start(out->key[p], sizeof out->key[p]);
        text_add(&key, prefix);
        if (persons)
            text_add_char(&key, 'p');
        text_add_char(&key, period_letters[p]);
        text_add_char(&key, ':');
        text_add(&key, buckets[p]);
        text_add_char(&key, ':');
        text_add(&key, unit);
    }
}

void counter_day_key(const char *prefix, day_number day, const char *unit, char *buf,
                     size_t buf_size)
{
    char name[16];
    calendar_format_day(day, name, sizeof name);
    struct text_buffer key = text_start(buf, buf_size);
    text_add(&key, prefix);
    text_add_bytes(&key, "d:", 2);
    text_add(&key, name);
    text_add_char(&key, ':');
    text_add(&key, unit);
}
