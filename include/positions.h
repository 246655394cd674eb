/* Rebalance positions: where the partitions of a new assignment start.  Each
 * partition's position is read from Redis (HMGET <prefix>offsets), where the
 * batch script records the next offset of every partition together with the
 * batch's effects; a partition with none there starts from its committed
 * offset (else auto.offset.reset).  The assignment, its starting offsets set, is then handed to the
 * consumer (kafka_consumer_assign) and the alert delivery (alerts_assign).
 * A lookup that fails is sent again when Redis is ready again; a newer
 * assignment or a revocation makes the answer to an older one ignored. */
#ifndef DUEWATCH_POSITIONS_H
#define DUEWATCH_POSITIONS_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

struct config;
struct redis_client;
struct kafka_consumer;
struct alerts;

struct positions;

/* Looks up with `redis` and hands assignments to `consumer` and `alerts`
 * (none owned; each must outlive the positions, and the Redis client must be
 * destroyed first: a lookup in flight refers to this object).  Calls
 * assigned(arg) each time an assignment was handed over.  `config` must stay
 * valid until the next positions_set_config or destroy.  Returns NULL with a
 * message in err. */
struct positions *positions_create(const struct config *config, struct redis_client *redis,
                                   struct kafka_consumer *consumer, struct alerts *alerts,
                                   void (*assigned)(void *arg), void *arg, char *err,
                                   size_t err_size);
/* Frees, with an assignment still waiting for its positions; accepts NULL. */
void positions_destroy(struct positions *positions);
/* Points at a reloaded config (key_prefix). */
void positions_set_config(struct positions *positions, const struct config *config);

/* A new assignment (ownership passes), replacing any still waiting: its
 * positions are looked up now, or once Redis is ready. */
void positions_assign(struct positions *positions, rd_kafka_topic_partition_list_t *partitions);
/* The assignment is revoked: one still waiting is forgotten. */
void positions_revoke(struct positions *positions);
/* Redis is ready (the waiting assignment's lookup is sent again) or lost. */
void positions_redis_ready(struct positions *positions, bool ready);

#endif
