/* Redis's eviction under the daemon: whether the Redis it writes may evict
 * keys, and whether it has.
 *
 * Redis set to evict when full (maxmemory with a maxmemory-policy other than
 * noeviction) drops keys to make room, and an evicted key of duewatch's is
 * lost without a word: a running clock that never fires, an event-id set
 * (its events counted again when sent again), an alert in the outbox never
 * delivered.  The daemon cannot prevent it; it says so.  On every new
 * connection and every CHECK_INTERVAL_MS while Redis is ready it reads
 * INFO memory (maxmemory, maxmemory_policy) and INFO stats (evicted_keys):
 *
 * - a policy that may evict is a warning, and so is each change of it or of
 *   maxmemory while it may; a return to no eviction is logged once;
 * - evicted_keys above what the last check saw is a warning (at the first
 *   check: above 0, keys evicted before the daemon looked);
 * - duewatch_redis_may_evict and duewatch_redis_evicted_keys say the same
 *   (metrics.c), from the first check on.
 *
 * Only reads: INFO is allowed where CONFIG is often renamed or denied; an
 * INFO refused (an ACL) is logged once and the figures stay unknown. */
#ifndef DUEWATCH_REDIS_EVICTION_H
#define DUEWATCH_REDIS_EVICTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct redis_client;

struct redis_eviction_stats {
    bool known;           /* a check has read both figures */
    bool may_evict;       /* maxmemory > 0 and maxmemory_policy is not noeviction */
    int64_t evicted_keys; /* INFO stats evicted_keys at the last check */
};

struct redis_eviction;

/* Checks `redis` (not owned; destroy the client first: a reply pending at
 * its end still calls back into this).  NULL when out of memory. */
struct redis_eviction *redis_eviction_create(struct event_base *base, struct redis_client *redis);
/* Frees; accepts NULL and a half-built one. */
void redis_eviction_destroy(struct redis_eviction *eviction);
/* Checks now, if Redis is ready and no check is under way (called when a
 * connection becomes ready, so a Redis that may evict is named at once). */
void redis_eviction_check(struct redis_eviction *eviction);
void redis_eviction_get_stats(const struct redis_eviction *eviction,
                              struct redis_eviction_stats *out);

#endif
