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

/* Histogram buckets (upper bounds) of the Redis round trip of a batch, in
 * seconds, and of the number of events in a batch. */
#define INGEST_LATENCY_BUCKETS 12
#define INGEST_SIZE_BUCKETS 9
extern const double ingest_latency_bounds[INGEST_LATENCY_BUCKETS];
extern const double ingest_size_bounds[INGEST_SIZE_BUCKETS];

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
    /* cumulative counts per bucket (the last bucket is +Inf) and sums */
    uint64_t latency_buckets[INGEST_LATENCY_BUCKETS + 1];
    double latency_sum_seconds;
    uint64_t size_buckets[INGEST_SIZE_BUCKETS + 1];
    bool assigned; /* the consumer group gave this instance its partitions */
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

/* Begins a clean stop: stops taking messages and finishes the batches
 * already consumed (each applied once its dead letters are delivered), so a
 * restart or the partitions' next owner neither applies nor dead-letters them
 * again; when Redis is unavailable they are dropped instead (consumed again
 * after restart) and only the batch in flight is waited for.  Calls
 * on_stopped(arg) on the loop once nothing is left (or at once).  The caller
 * bounds the wait (shutdown_timeout_ms). */
void ingest_begin_shutdown(struct ingest *ingest, void (*on_stopped)(void *arg), void *arg);
/* After the loop has stopped: commits stored offsets, leaves the group,
 * flushes the producer (bounded by timeout_ms). */
void ingest_close(struct ingest *ingest, int timeout_ms);

/* Calls ready(arg) once, the first time Redis is set up (scripts loaded) and
 * the consumer has joined its group and received an assignment. */
void ingest_on_ready(struct ingest *ingest, void (*ready)(void *arg), void *arg);

void ingest_get_stats(const struct ingest *ingest, struct ingest_stats *out);
void ingest_get_alert_stats(const struct ingest *ingest, struct alerts_stats *out);

/* Calls each(arg, topic, partition, lag) for every assigned partition: the
 * high watermark (as last seen by the consumer) minus its position. */
void ingest_for_each_lag(struct ingest *ingest,
                         void (*each)(void *arg, const char *topic, int32_t partition, int64_t lag),
                         void *arg);
/* Alerts delivered per rule, level and state, for metrics. */
void ingest_for_each_alert_count(const struct ingest *ingest,
                                 void (*each)(void *arg, const char *rule, const char *level,
                                              const char *state, uint64_t count),
                                 void *arg);
/* Clocks running per rule (refreshed from Redis every few seconds). */
void ingest_for_each_running(const struct ingest *ingest,
                             void (*each)(void *arg, const char *rule, int64_t running), void *arg);
bool ingest_is_ready(const struct ingest *ingest);

#endif
