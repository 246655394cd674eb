/* A batch of consumed messages and the script calls that apply them.
 * Events are reduced on the way in: each event contributes its id (for the
 * dedupe) and a reference to a counter group (unit, type, day, hour, minute),
 * so the script writes each distinct counter once per batch.  The batch also
 * tracks, per partition, the offset after its last message, written to Redis
 * by the same script, and holds the messages (zero-copy: event ids point into
 * them) until the batch is done.  Knows nothing of Kafka or Redis I/O. */
#ifndef DUEWATCH_BATCH_H
#define DUEWATCH_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock_setup.h"
#include "event.h"

struct batch;

/* Called for each held message when the batch is reset or destroyed. */
typedef void (*batch_release_message)(void *message);

struct batch_settings {
    const char *key_prefix;
    int64_t dedupe_ttl_seconds;
    int64_t counter_ttl_seconds;
    bool event_time;        /* clock_mode = event */
    int64_t now_ms;         /* wall time, or event time in event mode (-1 unknown) */
    int64_t wall_now_ms;    /* the dedupe spans are days of the wall clock */
    int64_t backfill_window_ms; /* clock_engine_set_backfill; 0: every late start collapses */
    const struct clock_setup *setup;
    /* Batches sent before the one ahead has answered (apply_effects.lua):
     * fence_key is the chain's key <prefix>fence:<chain> ("" = unfenced),
     * fence_position the batch's place in it, from 1. */
    const char *fence_key;
    int64_t fence_position;
    /* What earlier reads found of the dedupe spans (below); NULL: a read
     * asks every span. */
    struct batch_span_hints *span_hints;
};

/* Which dedupe span keys (<prefix>ev:<day>, <prefix>stopped:<day>) existed
 * at the last read.  A read asks only the spans that existed then or that
 * it has not seen yet, and checks every span's existence in the same
 * transaction: a span that exists and was not asked (another writer, or a
 * batch ahead, made it since) fails the computation with STALE, and the read
 * goes again, asking it.  Kept by the caller across its batches (zeroed:
 * nothing known, every span asked); batch_compute updates it. */
#define BATCH_SPAN_HINTS_MAX 16
struct batch_span_hints {
    size_t count;
    struct {
        char key[128];
        bool exists;
    } spans[BATCH_SPAN_HINTS_MAX];
};

/* Returns NULL on allocation failure.  max_events bounds the events and held
 * messages; batch_add_event/batch_hold refuse beyond it. */
struct batch *batch_create(size_t max_events, batch_release_message release);
/* Releases held messages and frees; accepts NULL. */
void batch_destroy(struct batch *batch);
/* Releases held messages and empties the batch for reuse. */
void batch_reset(struct batch *batch);

/* Adds a validated event with its clock operations, for the partition of the
 * message last held.  A clock.tick is added too: it changes nothing but its
 * partition's event time.  now_ms
 * decides whether the event still falls inside the sliding windows (events
 * older than 31 days skip the hour buckets, older than 2 hours the minute
 * buckets).  The event's strings and the ops' rule names must stay valid
 * until the batch is reset: hold the message that carries them first.
 * Returns 0, or -1 when full or out of memory. */
int batch_add_event(struct batch *batch, const struct duewatch_event *event, int64_t now_ms,
                    const struct clock_op *ops, int op_count);

/* Keeps `message` alive until reset and records that `topic`/`partition` has
 * been consumed up to `offset` (the next offset to read is offset + 1).
 * `topic` must stay valid as long as the message.  Returns 0, or -1 when full
 * or out of memory. */
int batch_hold(struct batch *batch, void *message, const char *topic, int32_t partition,
               int64_t offset);

size_t batch_event_count(const struct batch *batch);
size_t batch_message_count(const struct batch *batch);
bool batch_is_full(const struct batch *batch);

/* Per-partition progress recorded by batch_hold, for storing offsets in Kafka
 * once the batch is applied; max_event_time_ms is the highest ts of the
 * events added there (clock.tick included), -1 when none was. */
size_t batch_partition_count(const struct batch *batch);
void batch_partition(const struct batch *batch, size_t index, const char **topic,
                     int32_t *partition, int64_t *next_offset, int64_t *max_event_time_ms);

/* A batch is applied in three steps (batch_apply.c), the same settings for
 * all three:
 *  1. batch_build_read: the read, commands to send as one transaction
 *     (redis_client_send_transaction: MULTI ... EXEC), in this order:
 *       EXISTS of each dedupe span key, the ids' spans then the markers'
 *       (oldest first);
 *       SMISMEMBER <prefix>ev:<span> id..., per span asked (span_hints);
 *       MGET clock key...;
 *       HMGET <prefix>stopped:<span> marker..., per span asked;
 *       HMGET <prefix>eventtime "<topic>:<partition>"...;
 *       HGETALL <prefix>claimed;
 *       EVALSHA read_entries.lua (the provisional entries of extended
 *       clocks: where an entry is depends on the clock's record).
 *     A command whose list is empty is not sent.  Plain commands, not a
 *     script: Lua turns every argument and reply into a Lua string, and the
 *     same reads cost Redis about twice as much from a script.
 *  2. batch_compute, with that reply: decides which events are duplicates
 *     and computes every effect of the others (counters, clock changes with
 *     the deadline engine, alerts, offsets).
 *  3. batch_build_write: `EVALSHA sha 0 ARGV...` for apply_effects.lua,
 *     which checks the clocks are still as read and writes it all.
 * A write that fails (STALE: something changed since the read) goes again
 * from step 1.  The arrays belong to the batch and stay valid until the
 * next build, reset or destroy.  The builds return the command count (the
 * read) or the argument count (the write), or -1 on allocation failure; batch_compute returns 0, or -1 with a reason in
 * err (a malformed reply, out of memory). */
struct redisReply;
struct redis_command;
int batch_build_read(struct batch *batch, const char *entries_sha,
                     const struct batch_settings *settings,
                     const struct redis_command **commands);
/* Before batch_compute: `aheads` are the batches in flight ahead of this
 * one, computed, whose writes may not have run before this batch's read,
 * newest first (count 0: none; at most BATCH_AHEAD_MAX).  They must stay as
 * they are until this batch is computed; a reset forgets them. */
#define BATCH_AHEAD_MAX 2
void batch_set_aheads(struct batch *batch, const struct batch *const *aheads, size_t count);
int batch_compute(struct batch *batch, const struct redisReply *reply,
                  const struct batch_settings *settings, char *err, size_t err_size);
int batch_build_write(struct batch *batch, const char *script_sha,
                      const struct batch_settings *settings, const char ***argv,
                      const size_t **argv_lengths);

/* After batch_compute: events applied and found duplicate, and the engine's
 * results (alerts to publish once the write applied, the earliest due armed,
 * calendar gaps). */
uint64_t batch_applied_count(const struct batch *batch);
/* The earliest time of the batch's events counted (duplicates left out),
 * -1 when none: after batch_compute. */
int64_t batch_earliest_event_ms(const struct batch *batch);
uint64_t batch_duplicate_count(const struct batch *batch);
const struct clock_engine *batch_engine(const struct batch *batch);

#endif
