/* The ingest pipeline: Kafka messages → validation → batches → one EVALSHA
 * per batch → offsets stored after Redis acknowledged.  Invalid messages go to
 * the dead-letter topic first; a batch is applied only once its dead letters
 * are delivered, so the stored position never passes a message that is
 * neither applied nor dead-lettered.  Consumption pauses while Redis is down
 * or erroring and while the in-flight bound is reached.
 *
 * This is the consumer side: it takes what the consumer hands over
 * (messages, assignments, revocations) and Redis' state, and drives the
 * pipeline's parts, which it creates and owns: batch_queue.h (batches and
 * their application), dead_letters.h, flow_control.h (pausing) and
 * positions.h (where a new assignment starts). */
#ifndef DUEWATCH_INGEST_H
#define DUEWATCH_INGEST_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch_queue.h"
#include "dead_letters.h"
#include "flow_control.h"
#include "redis_state.h"

struct event_base;
struct config;
struct clock_setup;
struct redis_client;
struct kafka_producer;
struct kafka_consumer;
struct alerts;

struct ingest_stats {
    uint64_t messages_consumed;
    uint64_t ticks;
    uint64_t consumer_errors;
    uint64_t clock_errors; /* events whose deadline could not be computed */
    uint64_t misrouted;    /* valid events whose Kafka key is not their partition key */
    uint64_t redis_connects;
    bool assigned; /* the consumer group gave this instance its partitions */
    bool redis_ready;
    struct batch_queue_stats batches;
    struct dead_letters_stats dead_letters;
    struct flow_control_stats flow;
    struct redis_state_stats redis_state;
};

struct ingest;

/* Creates the pipeline's parts on the services given, none of them owned:
 * `redis` applies the batches (destroy it before the ingest: its pending
 * callbacks refer to the parts), `producer` sends the dead letters,
 * `consumer` is paused, assigned and stores offsets (its callbacks must reach
 * ingest_message, ingest_assign and ingest_revoke; destroy it after the
 * ingest, which holds its messages), `alerts` hears of assignments and
 * applied batches.  `config` and `setup` must stay valid until the next
 * ingest_set_config or destroy.  Returns NULL with a message in err. */
struct ingest *ingest_create(struct event_base *base, const struct config *config,
                             const struct clock_setup *setup, struct redis_client *redis,
                             struct kafka_producer *producer, struct kafka_consumer *consumer,
                             struct alerts *alerts, char *err, size_t err_size);
/* Frees the parts, releasing the messages held; accepts NULL and a half-built
 * ingest. */
void ingest_destroy(struct ingest *ingest);

/* Points at a reloaded config and clock setup (only reloadable keys take
 * effect). */
void ingest_set_config(struct ingest *ingest, const struct config *config,
                       const struct clock_setup *setup);

/* The consumer's callbacks (kafka_consumer.h): a message or a consumer error
 * (ownership passes), a new assignment (ownership passes), the revocation of
 * the whole assignment. */
void ingest_message(struct ingest *ingest, rd_kafka_message_t *message);
void ingest_assign(struct ingest *ingest, rd_kafka_topic_partition_list_t *partitions);
void ingest_revoke(struct ingest *ingest, bool lost);
/* The Redis client's ready callback (redis_client.h). */
void ingest_redis_ready(struct ingest *ingest, bool ready);

/* Begins a clean stop: stops taking messages and finishes the batches
 * already consumed (each applied once its dead letters are delivered), so a
 * restart or the partitions' next owner neither applies nor dead-letters them
 * again; when Redis is unavailable they are dropped instead (consumed again
 * after restart) and only the batch in flight is waited for.  Calls
 * on_stopped(arg) on the loop once nothing is left (or at once).  The caller
 * bounds the wait (shutdown_timeout_ms). */
void ingest_begin_shutdown(struct ingest *ingest, void (*on_stopped)(void *arg), void *arg);

/* Calls ready(arg) once, the first time Redis is set up (scripts loaded) and
 * the consumer has joined its group and received an assignment. */
void ingest_on_ready(struct ingest *ingest, void (*ready)(void *arg), void *arg);

void ingest_get_stats(const struct ingest *ingest, struct ingest_stats *out);

#endif
