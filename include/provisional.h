/* Provisional clocks: clocks whose deadline was computed with provisional
 * holiday-calendar years (conf/holidays-cn.conf `provisional`: statutory
 * holidays only, before the State Council's notice for the year).
 * The deadline engine lists them per partition in
 * <prefix>provisional:<partition> with what their last day was computed
 * from (clock_engine.h).
 *
 * A refresh recomputes every listed clock of the given partitions with the
 * calendar and rules in force (clock_setup_recompute), re-arms the levels
 * still ahead (clock_engine_recompute) and writes it with apply_effects.lua; a clock that no longer depends on a provisional year leaves the
 * list.  With an unchanged calendar a refresh changes nothing, so it runs
 * whenever the calendar or the rules may differ from those the clocks were
 * computed with: after a reload, when partitions are taken over (their last
 * owner may have run another calendar), and when Redis comes back.
 *
 * It works one partition at a time, a page of clocks at a time (HSCAN, MGET
 * of their records, one script call), so Redis is never held long; a page
 * whose clocks a batch changed between the read and the write changes
 * nothing and is read again (up to three passes over a partition). */
#ifndef DUEWATCH_PROVISIONAL_H
#define DUEWATCH_PROVISIONAL_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct clock_setup;
struct redis_client;
struct redisReply;

/* A page written (its engine: alerts none, the earliest due armed, calendar
 * gaps); and the time clocks are judged by (-1 while unknown). */
struct clock_engine;
struct provisional_callbacks {
    /* a page was written: its engine's earliest due armed may arm the timer */
    void (*applied)(void *arg, const struct clock_engine *engine);
    int64_t (*now)(void *arg);
    void *arg;
};

struct provisional;

/* `config` and `setup` must stay valid until the next provisional_set_config()
 * or destroy.  Returns NULL on allocation failure. */
struct provisional *provisional_create(struct redis_client *redis, const struct config *config,
                                       const struct clock_setup *setup,
                                       const struct provisional_callbacks *callbacks);
/* Frees; accepts NULL.  Call after the Redis client is destroyed (its pending
 * callbacks come back with NULL first) or while nothing is in flight. */
void provisional_destroy(struct provisional *provisional);
void provisional_set_config(struct provisional *provisional, const struct config *config,
                            const struct clock_setup *setup);

/* Starts a refresh of these partitions ("<topic>:<partition>" each), or
 * restarts the one under way with them. */
void provisional_refresh(struct provisional *provisional, const char *const *partitions,
                         size_t count);
/* Stops the refresh under way (the partitions were revoked). */
void provisional_stop(struct provisional *provisional);

struct provisional_stats {
    uint64_t refreshes_completed;
    uint64_t clocks_recomputed; /* written with the calendar in force */
    uint64_t clocks_failed;     /* could not be recomputed (logged) */
};
void provisional_get_stats(const struct provisional *provisional, struct provisional_stats *out);

#endif
