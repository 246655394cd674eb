/* Claiming due levels: the read of the clocks whose next level is due
 * (daemon/lua/claim_read.lua), the computation of what fires (the deadline
 * engine), and the write of the outbox entries, counters, re-armed clocks
 * and claimed instants (apply_effects.lua, each clock checked to be as
 * read).  Knows nothing of Redis I/O or Kafka: alerts.c sends the commands
 * and publishes what was claimed.
 *
 * In event mode every level fires in order, as a live run would have.  In
 * wall mode every level (and red repeat) that fell due after the
 * partition's last complete claim fires in order too, however long nobody
 * claimed for it (a daemon down, a Kafka outage, a rebalance); only levels
 * already due by then collapse to the latest of them (a clock that started
 * with levels past: backfill, late data), except for a clock whose start is
 * within the backfill window (clock_engine_set_backfill): only its levels
 * past at its start collapse, those due after it fire each.  That instant is kept per
 * partition in <prefix>claimed (hash "<topic>:<partition>" -> epoch ms) and
 * moves on only once a claim has gone through all of the partition's due
 * clocks (not when the budget ran out part way). */
#ifndef DUEWATCH_CLAIMS_H
#define DUEWATCH_CLAIMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct claim;
struct clock_engine;
struct clock_setup;
struct redisReply;

/* Returns NULL on allocation failure; destroy accepts NULL. */
struct claim *claim_create(void);
void claim_destroy(struct claim *claim);

/* Step 1: `EVALSHA sha 0 ARGV...` reading what is due at `now` in these
 * partitions, at most `budget` clocks.  The arrays belong to the claim and
 * stay valid until the next build or destroy.  Returns the argument count,
 * or -1 on allocation failure. */
int claim_build_read(struct claim *claim, const char *script_sha, const char *prefix,
                     int64_t now, int64_t budget, const char *const *partitions, size_t count,
                     const char ***argv, const size_t **argv_lengths);

/* Step 2: computes what fires, from the read's reply (backfill_window_ms:
 * clock_engine_set_backfill).  Returns 0, or -1 with a reason in err (a
 * malformed reply, out of memory). */
int claim_compute(struct claim *claim, const struct redisReply *reply,
                  const struct clock_setup *setup, bool wall, int64_t counter_ttl_seconds,
                  int64_t backfill_window_ms, char *err, size_t err_size);

/* Step 3: `EVALSHA sha 0 ARGV...` writing it (apply_effects.lua); 0 when
 * there is nothing to write.  Returns the argument count, or -1. */
int claim_build_write(struct claim *claim, const char *script_sha, const char ***argv,
                      const size_t **argv_lengths);

/* After claim_compute: whether clocks are left due (claim again at once),
 * the earliest due after the claim (INT64_MAX: none), index entries dropped
 * (their clock is gone), clocks parked (their rule is no longer configured:
 * the rule of the first in *first_rule; parked.h resumes them), and the
 * engine's alerts and calendar gaps. */
bool claim_more(const struct claim *claim);
int64_t claim_earliest(const struct claim *claim);
uint64_t claim_dropped(const struct claim *claim);
uint64_t claim_parked(const struct claim *claim, const char **first_rule);
const struct clock_engine *claim_engine(const struct claim *claim);

#endif
