/* Parked clocks: clocks whose rule is no longer configured (a reload or a
 * restart without it).  A claim that finds one due takes it out of the due
 * index into <prefix>parked:<rule>:<partition> (zset: clock key -> the due
 * time it had) and counts it in <prefix>parked (hash: rule -> clocks
 * parked), so claims never read it again while its rule is away (claims.h).
 * The clock itself stays as it was: running, counted in
 * <prefix>active:<rule>:*, never dropped.
 *
 * A pass resumes the parked clocks of the given partitions whose rule is
 * configured again: every level that fell due meanwhile fires, in order
 * (clock_engine_unpark), and the clock goes back into the due index, its
 * entry out of the parked set, the count down, written with
 * apply_effects.lua, each clock checked to be as read.  A pass runs when
 * the rules may have changed (a reload) and when partitions are taken over
 * or Redis comes back (a restart with the rule back), a page of clocks at a
 * time, at most max_alerts_per_claim alerts per script call.  It also logs
 * the rules whose clocks stay parked.
 *
 * The counts per rule are read from <prefix>parked for the metric
 * duewatch_clocks_parked{rule}. */
#ifndef DUEWATCH_PARKED_H
#define DUEWATCH_PARKED_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct clock_engine;
struct clock_setup;
struct redis_client;

struct parked_callbacks {
    /* a page was written: its engine's alerts to publish, earliest due to arm */
    void (*applied)(void *arg, const struct clock_engine *engine);
    /* the time levels fall due by (-1 while unknown: the pass stops) */
    int64_t (*now)(void *arg);
    void *arg;
};

struct parked;

/* `config` and `setup` must stay valid until the next parked_set_config()
 * or destroy.  Returns NULL on allocation failure. */
struct parked *parked_create(struct redis_client *redis, const struct config *config,
                             const struct clock_setup *setup,
                             const struct parked_callbacks *callbacks);
/* Frees; accepts NULL.  Call after the Redis client is destroyed (its
 * pending callbacks come back with NULL first) or while nothing is in
 * flight. */
void parked_destroy(struct parked *parked);
void parked_set_config(struct parked *parked, const struct config *config,
                       const struct clock_setup *setup);

/* Starts a pass over these partitions ("<topic>:<partition>" each), or
 * restarts the one under way with them. */
void parked_resume(struct parked *parked, const char *const *partitions, size_t count);
/* Stops the pass under way (the partitions were revoked). */
void parked_stop(struct parked *parked);

/* Reads the counts per rule again (for the metric). */
void parked_refresh_counts(struct parked *parked);
/* Each rule listed in <prefix>parked (it had clocks parked once) and how
 * many of its clocks are parked now (0 once all resumed), as last read. */
void parked_for_each_count(const struct parked *parked,
                           void (*each)(void *arg, const char *rule, int64_t count), void *arg);

#endif
