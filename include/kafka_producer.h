/* The Kafka producer for dead letters (and alerts), driven from the libevent
 * loop like the consumer: delivery reports arrive on librdkafka's main queue,
 * which signals a pipe.  Idempotent producer, acks=all: a message reported
 * delivered is in the log. */
#ifndef DUEWATCH_KAFKA_PRODUCER_H
#define DUEWATCH_KAFKA_PRODUCER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config;

/* Whoever produces a message embeds this as the FIRST member of the struct it
 * passes to kafka_producer_send; its `delivered` is called on the loop with
 * error 0 once the message is in the log, or the final error. */
struct delivery_target {
    void (*delivered)(struct delivery_target *target, rd_kafka_resp_err_t error);
};

struct kafka_producer;

/* Returns NULL with a message in err on failure. */
struct kafka_producer *kafka_producer_create(struct event_base *base, const struct config *config,
                                             char *err, size_t err_size);
/* Waits up to timeout_ms (0: none; negative: no flush at all) for
 * outstanding deliveries (shutdown only; their callbacks run), purges what is
 * left, then frees; accepts NULL. */
void kafka_producer_destroy(struct kafka_producer *producer, int timeout_ms);

/* Produces a copy of key/value to topic (partitioner: by key; no key = any).
 * `headers` (may be NULL) passes to librdkafka on success and is destroyed by
 * this call on failure.  Returns 0, or the librdkafka error (e.g. queue full). */
rd_kafka_resp_err_t kafka_producer_send(struct kafka_producer *producer, const char *topic,
                                        const void *key, size_t key_size, const void *value,
                                        size_t value_size, rd_kafka_headers_t *headers,
                                        struct delivery_target *target);

/* Messages produced and not yet reported. */
int kafka_producer_outstanding(const struct kafka_producer *producer);

#endif
