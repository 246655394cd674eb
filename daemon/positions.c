/* Rebalancing: positions come from Redis (see positions.h). */
#include "positions.h"

#include "alerts.h"
#include "config.h"
#include "kafka_consumer.h"
#include "log.h"
#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Context of a Redis position lookup for a new assignment. */
struct position_lookup {
    struct positions *positions;
    uint64_t generation;
};

struct positions {
    const struct config *config;
    struct redis_client *redis;      /* not owned */
    struct kafka_consumer *consumer; /* not owned */
    struct alerts *alerts;           /* not owned */
    void (*assigned)(void *arg);
    void *assigned_arg;
    rd_kafka_topic_partition_list_t *pending_assignment; /* owned; waits for its positions */
    uint64_t assignment_generation; /* a lookup answers only the assignment it was sent for */
    bool lookup_in_flight;
};

/* Hands the pending assignment, its starting offsets set, to the consumer and
 * the alert delivery. */
static void complete_assignment(struct positions *positions)
{
    rd_kafka_topic_partition_list_t *partitions = positions->pending_assignment;
    positions->pending_assignment = NULL;
    kafka_consumer_assign(positions->consumer, partitions);
    alerts_assign(positions->alerts, partitions);
    rd_kafka_topic_partition_list_destroy(partitions);
    positions->assigned(positions->assigned_arg);
}

static void on_positions(struct redisReply *reply, void *privdata)
{
    struct position_lookup *lookup = privdata;
    struct positions *positions = lookup->positions;
    bool current = lookup->generation == positions->assignment_generation;
    free(lookup);
    if (!current)
        return;
    positions->lookup_in_flight = false;
    rd_kafka_topic_partition_list_t *partitions = positions->pending_assignment;
    if (partitions == NULL)
        return;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != (size_t)partitions->cnt) {
        if (reply && reply->type == REDIS_REPLY_ERROR)
            log_error("redis: reading partition positions failed: %s", reply->str);
        return; /* retried when Redis is ready again */
    }
    for (int i = 0; i < partitions->cnt; i++) {
        struct redisReply *element = reply->element[i];
        partitions->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        if (element->type == REDIS_REPLY_STRING) {
            char *end;
            long long offset = strtoll(element->str, &end, 10);
            if (*end == '\0' && offset >= 0)
                partitions->elems[i].offset = offset;
        }
    }
    complete_assignment(positions);
}

static void lookup_positions(struct positions *positions)
{
    rd_kafka_topic_partition_list_t *partitions = positions->pending_assignment;
    if (partitions == NULL || positions->lookup_in_flight ||
        !redis_client_is_ready(positions->redis))
        return;
    if (partitions->cnt == 0) {
        complete_assignment(positions);
        return;
    }
    size_t argc = 2 + (size_t)partitions->cnt;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lengths = calloc(argc, sizeof *lengths);
    char **fields = calloc((size_t)partitions->cnt, sizeof *fields);
    char *key = NULL;
    struct position_lookup *lookup = malloc(sizeof *lookup);
    if (!argv || !lengths || !fields || !lookup ||
        asprintf(&key, "%soffsets", positions->config->key_prefix) < 0) {
        key = NULL;
        log_error("out of memory looking up partition positions");
        free(lookup);
        goto done;
    }
    argv[0] = "HMGET";
    argv[1] = key;
    for (int i = 0; i < partitions->cnt; i++) {
        if (asprintf(&fields[i], "%s:%" PRId32, partitions->elems[i].topic,
                     partitions->elems[i].partition) < 0)
            fields[i] = NULL;
        argv[2 + i] = fields[i] ? fields[i] : "";
    }
    for (size_t i = 0; i < argc; i++)
        lengths[i] = strlen(argv[i]);
    lookup->positions = positions;
    lookup->generation = positions->assignment_generation;
    if (redis_client_send(positions->redis, on_positions, lookup, (int)argc, argv, lengths) == 0)
        positions->lookup_in_flight = true;
    else
        free(lookup);
done:
    if (fields)
        for (int i = 0; i < partitions->cnt; i++)
            free(fields[i]);
    free(fields);
    free(key);
    free(argv);
    free(lengths);
}

/* Forgets the assignment waiting for its positions, if any. */
static void drop_pending_assignment(struct positions *positions)
{
    if (positions->pending_assignment) {
        rd_kafka_topic_partition_list_destroy(positions->pending_assignment);
        positions->pending_assignment = NULL;
    }
}

struct positions *positions_create(const struct config *config, struct redis_client *redis,
                                   struct kafka_consumer *consumer, struct alerts *alerts,
                                   void (*assigned)(void *arg), void *arg, char *err,
                                   size_t err_size)
{
    struct positions *positions = calloc(1, sizeof *positions);
    if (positions == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    positions->config = config;
    positions->redis = redis;
    positions->consumer = consumer;
    positions->alerts = alerts;
    positions->assigned = assigned;
    positions->assigned_arg = arg;
    return positions;
}

void positions_destroy(struct positions *positions)
{
    if (positions == NULL)
        return;
    drop_pending_assignment(positions);
    free(positions);
}

void positions_set_config(struct positions *positions, const struct config *config)
{
    positions->config = config;
}

void positions_assign(struct positions *positions, rd_kafka_topic_partition_list_t *partitions)
{
    drop_pending_assignment(positions);
    positions->pending_assignment = partitions;
    positions->assignment_generation++;
    positions->lookup_in_flight = false;
    lookup_positions(positions);
}

void positions_revoke(struct positions *positions)
{
    drop_pending_assignment(positions);
    positions->assignment_generation++;
    positions->lookup_in_flight = false;
}

void positions_redis_ready(struct positions *positions, bool ready)
{
    positions->lookup_in_flight = false;
    if (ready)
        lookup_positions(positions);
}
