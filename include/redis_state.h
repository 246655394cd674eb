/* Redis's state under the daemon: the verifier of every new Redis
 * connection (redis_client_set_verifier), and a periodic check while it is
 * ready.
 *
 * A generation marker (<prefix>generation, a random id) is written when a
 * daemon first sets up an empty Redis and read back on every connection.
 * Each connection reads it and the positions (<prefix>offsets) before
 * anything else is sent, and writes the marker back (which also proves that
 * Redis accepts writes; a READONLY answer keeps the connection unready):
 *
 * - Positions behind what this daemon applied (a Redis restored from an
 *   older snapshot, or a replica that had not caught up): a rollback.  The
 *   batches consumed and not applied are dropped and every owned partition
 *   is sought back to the position Redis holds (the beginning when it holds
 *   none), so the lost events are consumed again and applied once, in order.
 * - No marker while this daemon had one (an empty Redis swapped in, or one
 *   flushed and written to since: the marker is written before anything
 *   else, so every copy of the daemon's state has it), or the marker
 *   recording such a loss: the state is lost.  The marker is replaced by a record of the loss ("lost ..."), the
 *   batches are dropped, and the connection is never reported ready, so
 *   nothing consumes or writes over the loss, in this process or any other,
 *   until an operator writes a marker and positions (`duewatch recover`, or
 *   a restored snapshot); then every owned partition is sought to them.
 *
 * The periodic check (every 5 s) rewrites the marker and drops the
 * connection when the marker changed or a write is refused, so a Redis
 * flushed or switched without a reconnect is verified the same way. */
#ifndef DUEWATCH_REDIS_STATE_H
#define DUEWATCH_REDIS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config;
struct redis_client;
struct kafka_consumer;

struct redis_state_stats {
    bool lost;          /* Redis lost the state: held until recovered */
    bool readonly;      /* Redis refuses writes (READONLY) */
    uint64_t rollbacks; /* rollbacks seen: owned partitions sought back */
    uint64_t losses;    /* times the state was found lost */
};

struct redis_state;

/* Verifies `redis`'s connections (registers itself as its verifier) and
 * seeks `consumer`; drop_batches(arg) drops every batch consumed and not
 * applied (none is in flight during a verification).  None is owned; the
 * Redis client must be destroyed first.  `config` must stay valid until the
 * next redis_state_set_config or destroy.  Returns NULL with a message in
 * err. */
struct redis_state *redis_state_create(struct event_base *base, const struct config *config,
                                       struct redis_client *redis,
                                       struct kafka_consumer *consumer,
                                       void (*drop_batches)(void *arg), void *arg, char *err,
                                       size_t err_size);
/* Frees; accepts NULL and a half-built one. */
void redis_state_destroy(struct redis_state *state);
/* Points at a reloaded config (key_prefix). */
void redis_state_set_config(struct redis_state *state, const struct config *config);
void redis_state_get_stats(const struct redis_state *state, struct redis_state_stats *out);

#endif
