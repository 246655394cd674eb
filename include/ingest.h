/* The ingest pipeline: Kafka messages → validation → batches → one EVALSHA
 * per batch → offsets stored after Redis acknowledged.  Invalid messages go to
 * the dead-letter topic first; a batch is applied only once its dead letters
 * are delivered, so the stored position never passes a message that is
 * neither applied nor dead-lettered.  Consumption pauses while Redis is down
 * or erroring and while the in-flight bound is reached. */
#ifndef DUEWATCH_INGEST_H
#define DUEWATCH_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct event_base;
struct config;
struct clock_setup;
struct alerts_stats;

struct ingest_stats {
    uint64_t messages_consumed;
    uint64_t events_applied;
    uint64_t events_duplicate;
    uint64_t ticks;
    uint64_t dead_lettered[REJECT_COUNT];
    uint64_t dead_letter_failures;
    uint64_t batches_applied;
    uint64_t batch_events_total;
    uint64_t redis_errors;
    uint64_t consumer_errors;
    uint64_t pauses;
    uint64_t clock_errors;
    uint64_t redis_connects;
    size_t inflight_messages;
    bool paused;
    bool redis_ready;
};

struct ingest;

/* Creates the Redis client, the consumer, the producer and the alert
 * delivery, and starts them.  `config` and `setup` must stay valid until the
 * next ingest_set_config or destroy.  Returns NULL with a message in err. */
struct ingest *ingest_create(struct event_base *base, const struct config *config,
                             const struct clock_setup *setup, char *err, size_t err_size);
/* Frees everything; accepts NULL.  Call ingest_close() first for a clean stop. */
void ingest_destroy(struct ingest *ingest);

/* Points at a reloaded config and clock setup (only reloadable keys take
 * effect). */
void ingest_set_config(struct ingest *ingest, const struct config *config,
                       const struct clock_setup *setup);

/* Begins a clean stop: pauses consumption, drops batches not yet sent (their
 * messages are redelivered after restart), waits for the batch in flight.
 * Calls on_stopped(arg) on the loop once nothing is in flight (or at once). */
void ingest_begin_shutdown(struct ingest *ingest, void (*on_stopped)(void *arg), void *arg);
/* After the loop has stopped: commits stored offsets, leaves the group,
 * flushes the producer (bounded by timeout_ms). */
void ingest_close(struct ingest *ingest, int timeout_ms);

/* Calls ready(arg) once, the first time Redis is set up (scripts loaded) and
 * the consumer has joined its group and received an assignment. */
void ingest_on_ready(struct ingest *ingest, void (*ready)(void *arg), void *arg);

void ingest_get_stats(const struct ingest *ingest, struct ingest_stats *out);
void ingest_get_alert_stats(const struct ingest *ingest, struct alerts_stats *out);
bool ingest_is_ready(const struct ingest *ingest);

#endif
