/* The names of the counter buckets (README "Counters"), the one definition
 * every writer shares: a hash per unit and local day, ISO week, month,
 * quarter and year, `<prefix><letter>:<bucket>:<unit>` with the letters
 * d w m q y, and beside each the membership hash of the persons counted in
 * it, `<prefix>p<letter>:<bucket>:<unit>`.  No I/O. */
#ifndef DUEWATCH_COUNTER_KEYS_H
#define DUEWATCH_COUNTER_KEYS_H

#include "calendar.h"

#include <stdbool.h>

#define COUNTER_PERIODS 5
#define COUNTER_KEY_MAX 600

struct counter_keys {
    char key[COUNTER_PERIODS][COUNTER_KEY_MAX];
};

/* Fills the keys of the buckets holding local day `day` for `unit` (NUL-
 * terminated), in the order day, week, month, quarter, year; persons true:
 * the membership hashes instead.  A key longer than COUNTER_KEY_MAX - 1 is
 * cut (prefix and unit are bounded far below it). */
void counter_keys_of_day(const char *prefix, day_number day, const char *unit, bool persons,
                         struct counter_keys *out);

/* The day bucket alone (the end-of-day snapshots are written there). */
void counter_day_key(const char *prefix, day_number day, const char *unit, char *buf,
                     size_t buf_size);

#endif
