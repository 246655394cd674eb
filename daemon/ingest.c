/* The ingest pipeline's consumer side (see ingest.h): validates what the
 * consumer hands over and drives the parts -- the batch queue, the dead
 * letters, flow control and the position lookup -- which it wires together:
 * the parts call each other directly where one needs the other, and through
 * this file where they would otherwise need each other both ways. */
#include "ingest.h"

#include "alerts.h"
#include "calendar.h"
#include "clock_setup.h"
#include "config.h"
#include "log.h"
#include "positions.h"
#include "redis_client.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct ingest {
    struct event_base *base;
    const struct config *config;
    const struct clock_setup *setup;
    struct redis_client *redis;        /* not owned */
    struct alerts *alerts;             /* not owned */
    struct flow_control *flow;         /* owned, as are the three below */
    struct dead_letters *dead_letters; /* (the queue holds their batches) */
    struct batch_queue *queue;
    struct positions *positions;
    struct redis_state *redis_state;
    void (*on_ready)(void *arg);
    void *on_ready_arg;
    bool assigned_once;
    struct ingest_stats stats; /* this file's counters; the parts keep theirs */
};

static void announce_if_ready(struct ingest *ingest)
{
    if (ingest->on_ready && ingest->assigned_once && redis_client_is_ready(ingest->redis)) {
        void (*ready)(void *) = ingest->on_ready;
        ingest->on_ready = NULL;
        ready(ingest->on_ready_arg);
    }
}

static int64_t wall_ms(struct ingest *ingest)
{
    struct timeval now;
    event_base_gettimeofday_cached(ingest->base, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_usec / 1000;
}

/* ---- the parts' callbacks ---- */

/* flow_control_inputs_callback */
static void flow_inputs(void *arg, struct flow_control_inputs *out)
{
    struct ingest *ingest = arg;
    struct batch_queue_status status;
    batch_queue_get_status(ingest->queue, &status);
    out->inflight_messages = status.inflight_messages;
    out->stopping = status.stopping;
    out->redis_ready = redis_client_is_ready(ingest->redis);
    out->redis_failing = status.backing_off;
    out->redis_connected_once = ingest->stats.redis_connects > 0;
}

/* dead_letter_delivered_callback: the queue is created after the dead
 * letters, which it waits for. */
static void dead_letter_delivered(void *arg, uint64_t batch)
{
    struct ingest *ingest = arg;
    batch_queue_dead_letter_delivered(ingest->queue, batch);
}

/* The redis state check found a rollback or a loss: the batches consumed
 * and not applied go (their partitions are sought back). */
static void drop_batches(void *arg)
{
    struct ingest *ingest = arg;
    batch_queue_drop_unsent(ingest->queue);
}

/* An assignment was handed to the consumer and the alert delivery. */
static void assignment_complete(void *arg)
{
    struct ingest *ingest = arg;
    ingest->assigned_once = true;
    ingest->stats.assigned = true;
    announce_if_ready(ingest);
}

/* ---- consuming ---- */

/* Decodes and validates the message; for a valid event other than a
 * clock.tick, fills ops with its clock operations.  Returns the verdict, with
 * the reason of a rejection in detail. */
static enum event_reject validate(struct ingest *ingest, const rd_kafka_message_t *message,
                                  struct duewatch_event *event, struct clock_op *ops,
                                  int *op_count, char *detail, size_t detail_size)
{
    const struct event_limits limits = {
        (size_t)ingest->config->max_message_bytes, (unsigned)ingest->config->max_message_depth,
        ingest->config->max_future_ms > 0 ? calendar_wall_now_ms() + ingest->config->max_future_ms
                                          : 0};
    enum event_reject verdict =
        event_decode(message->payload, message->len, &limits, event, detail, detail_size);
    *op_count = 0;
    if (verdict == EVENT_VALID && event->type != EVENT_CLOCK_TICK) {
        *op_count = clock_setup_ops_for_event(ingest->setup, event, ops, detail, detail_size);
        if (*op_count < 0) {
            ingest->stats.clock_errors++;
            *op_count = 0;
            verdict = REJECT_CALENDAR_NOT_COVERED;
        }
    }
    return verdict;
}

/* Counts and logs a valid event whose Kafka key is not the key the contract
 * names for its type (event_partition_key): its clock's events may then be
 * spread over partitions (README "Event contract"). */
static void check_partition_key(struct ingest *ingest, const rd_kafka_message_t *message,
                                const struct duewatch_event *event)
{
    struct text expected = event_partition_key(event);
    if (expected.length == 0)
        return; /* clock.tick: any key */
    if (message->key_len == expected.length &&
        memcmp(message->key, expected.bytes, expected.length) == 0)
        return;
    ingest->stats.misrouted++;
    log_warning("kafka: %s[%" PRId32 "] offset %" PRId64 ": %s event keyed %s, the contract "
                "keys it by its %s '%.*s' (its clock's events may land on other partitions; "
                "%" PRIu64 " so far)",
                rd_kafka_topic_name(message->rkt), message->partition, message->offset,
                event_type_name(event->type), message->key ? "otherwise" : "without a key",
                event_partition_key_name(event->type), (int)expected.length, expected.bytes,
                ingest->stats.misrouted);
}

void ingest_message(struct ingest *ingest, rd_kafka_message_t *message)
{
    if (message->err) {
        ingest->stats.consumer_errors++;
        log_warning("kafka: consume error on %s[%" PRId32 "]: %s",
                    message->rkt ? rd_kafka_topic_name(message->rkt) : "-", message->partition,
                    rd_kafka_message_errstr(message));
        rd_kafka_message_destroy(message);
        return;
    }
    struct batch_queue_status status;
    batch_queue_get_status(ingest->queue, &status);
    if (status.revoking || status.stopping) {
        /* Its partition is being handed over or we are stopping: whoever
         * consumes it next applies it. */
        rd_kafka_message_destroy(message);
        return;
    }
    ingest->stats.messages_consumed++;
    struct duewatch_event event;
    struct clock_op ops[CLOCK_OPS_MAX];
    int op_count;
    char detail[200];
    enum event_reject verdict =
        validate(ingest, message, &event, ops, &op_count, detail, sizeof detail);
    char err[64];
    if (batch_queue_hold(ingest->queue, message, err, sizeof err) != 0) {
        log_error("%s; exiting so the message is consumed again", err);
        abort();
    }
    if (verdict != EVENT_VALID) {
        dead_letters_send(ingest->dead_letters, batch_queue_await_dead_letter(ingest->queue),
                          message, verdict, detail);
    } else {
        if (event.type == EVENT_CLOCK_TICK)
            ingest->stats.ticks++;
        else
            check_partition_key(ingest, message, &event);
        if (batch_queue_add_event(ingest->queue, &event, wall_ms(ingest), ops, op_count) != 0) {
            log_error("out of memory adding an event; exiting so it is consumed again");
            abort();
        }
    }
    batch_queue_send_if_full(ingest->queue);
    flow_control_update(ingest->flow);
}

void ingest_assign(struct ingest *ingest, rd_kafka_topic_partition_list_t *partitions)
{
    positions_assign(ingest->positions, partitions);
}

void ingest_revoke(struct ingest *ingest, bool lost)
{
    positions_revoke(ingest->positions);
    ingest->stats.assigned = false;
    alerts_revoke(ingest->alerts);
    batch_queue_revoke(ingest->queue, lost);
    flow_control_update(ingest->flow);
}

void ingest_redis_ready(struct ingest *ingest, bool ready)
{
    ingest->stats.redis_ready = ready;
    if (ready)
        ingest->stats.redis_connects++;
    positions_redis_ready(ingest->positions, ready);
    batch_queue_redis_ready(ingest->queue, ready);
    flow_control_update(ingest->flow);
}

/* ---- life cycle ---- */

struct ingest *ingest_create(struct event_base *base, const struct config *config,
                             const struct clock_setup *setup, struct redis_client *redis,
                             struct kafka_producer *producer, struct kafka_consumer *consumer,
                             struct alerts *alerts, char *err, size_t err_size)
{
    struct ingest *ingest = calloc(1, sizeof *ingest);
    if (ingest == NULL) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    ingest->base = base;
    ingest->config = config;
    ingest->setup = setup;
    ingest->redis = redis;
    ingest->alerts = alerts;
    ingest->flow = flow_control_create(base, config, consumer, flow_inputs, ingest, err, err_size);
    if (ingest->flow == NULL)
        goto fail;
    ingest->dead_letters = dead_letters_create(base, config, producer, dead_letter_delivered,
                                               ingest, err, err_size);
    if (ingest->dead_letters == NULL)
        goto fail;
    ingest->queue = batch_queue_create(base, config, setup, redis, consumer, alerts,
                                       ingest->dead_letters, ingest->flow, err, err_size);
    if (ingest->queue == NULL)
        goto fail;
    ingest->positions = positions_create(config, redis, consumer, alerts, assignment_complete,
                                         ingest, err, err_size);
    if (ingest->positions == NULL)
        goto fail;
    ingest->redis_state =
        redis_state_create(base, config, redis, consumer, drop_batches, ingest, err, err_size);
    if (ingest->redis_state == NULL)
        goto fail;
    flow_control_update(ingest->flow);
    return ingest;
fail:
    ingest_destroy(ingest);
    return NULL;
}

void ingest_destroy(struct ingest *ingest)
{
    if (ingest == NULL)
        return;
    redis_state_destroy(ingest->redis_state);
    positions_destroy(ingest->positions);
    batch_queue_destroy(ingest->queue);
    dead_letters_destroy(ingest->dead_letters);
    flow_control_destroy(ingest->flow);
    free(ingest);
}

void ingest_set_config(struct ingest *ingest, const struct config *config,
                       const struct clock_setup *setup)
{
    ingest->config = config;
    ingest->setup = setup;
    flow_control_set_config(ingest->flow, config);
    dead_letters_set_config(ingest->dead_letters, config);
    batch_queue_set_config(ingest->queue, config, setup);
    positions_set_config(ingest->positions, config);
    redis_state_set_config(ingest->redis_state, config);
}

void ingest_begin_shutdown(struct ingest *ingest, void (*on_stopped)(void *arg), void *arg)
{
    batch_queue_stop(ingest->queue, on_stopped, arg);
}

void ingest_on_ready(struct ingest *ingest, void (*ready)(void *arg), void *arg)
{
    ingest->on_ready = ready;
    ingest->on_ready_arg = arg;
    announce_if_ready(ingest);
}

void ingest_get_stats(const struct ingest *ingest, struct ingest_stats *out)
{
    *out = ingest->stats;
    batch_queue_get_stats(ingest->queue, &out->batches);
    dead_letters_get_stats(ingest->dead_letters, &out->dead_letters);
    flow_control_get_stats(ingest->flow, &out->flow);
    redis_state_get_stats(ingest->redis_state, &out->redis_state);
    struct redis_client_stats client;
    redis_client_get_stats(ingest->redis, &client);
    out->redis_state.readonly |= client.refusing_writes;
}
