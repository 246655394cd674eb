/* The batch queue: consumed messages gather in batches (batch.h), each
 * applied by a read (a MULTI ... EXEC transaction, batch.h), the computation of its effects in the
 * daemon, and one checked write (apply_effects.lua); once Redis acknowledged
 * a batch's write its partitions' offsets are stored in the consumer and its
 * alerts and event times go to the alert delivery.  Batches are sent in the
 * order they were consumed, three in flight at a time, chained by a fence
 * so that one applies only after the one ahead of it; a batch's computation
 * counts the writes of those ahead of it as read (batch_set_aheads), since
 * its read may have run before them; a batch is sent only once its
 * dead letters (dead_letters.h) are delivered.  A batch that fails is sent
 * again, with backoff after an error reply.  On a revocation or a stop the
 * consumed batches are finished (or dropped) before the partitions are
 * handed over or the daemon exits. */
#ifndef DUEWATCH_BATCH_QUEUE_H
#define DUEWATCH_BATCH_QUEUE_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock_setup.h"
#include "event.h"

struct event_base;
struct config;
struct redis_client;
struct kafka_consumer;
struct alerts;
struct dead_letters;
struct flow_control;

/* Histogram buckets (upper bounds) of the Redis round trip of a batch, in
 * seconds, and of the number of events in a batch. */
#define BATCH_QUEUE_LATENCY_BUCKETS 12
#define BATCH_QUEUE_SIZE_BUCKETS 9
extern const double batch_queue_latency_bounds[BATCH_QUEUE_LATENCY_BUCKETS];
extern const double batch_queue_size_bounds[BATCH_QUEUE_SIZE_BUCKETS];

struct batch_queue_stats {
    uint64_t events_applied;   /* first deliveries, as the script counted them */
    uint64_t events_duplicate; /* seen again and not applied twice */
    uint64_t batches_applied;
    uint64_t batch_events_total;
    uint64_t redis_errors; /* batch calls that failed (connection lost or error reply) */
    /* cumulative counts per bucket (the last bucket is +Inf) and sums */
    uint64_t latency_buckets[BATCH_QUEUE_LATENCY_BUCKETS + 1];
    double latency_sum_seconds;
    uint64_t size_buckets[BATCH_QUEUE_SIZE_BUCKETS + 1];
    size_t inflight_messages; /* held by a batch: consumed, not applied nor dropped yet */
};

/* What the consumer side needs to know of the queue now. */
struct batch_queue_status {
    size_t inflight_messages;
    bool backing_off; /* a batch failed with an error reply: nothing is sent until its retry */
    bool revoking;    /* finishing the consumed batches before a hand-over */
    bool stopping;    /* finishing the consumed batches before the exit */
};

struct batch_queue;

/* Applies with `redis`, stores offsets in `consumer`, reports to `alerts`,
 * waits for `dead_letters` and calls flow_control_update(`flow`) after each
 * change that may concern it.  None of these is owned; each must outlive the
 * queue, and the Redis client must be destroyed first (a batch in flight
 * refers to the queue).  `config` and `setup` must stay valid until the next
 * batch_queue_set_config or destroy.  Returns NULL with a message in err. */
struct batch_queue *batch_queue_create(struct event_base *base, const struct config *config,
                                       const struct clock_setup *setup,
                                       struct redis_client *redis,
                                       struct kafka_consumer *consumer, struct alerts *alerts,
                                       struct dead_letters *dead_letters,
                                       struct flow_control *flow, char *err, size_t err_size);
/* Frees the batches, releasing their messages (before the consumer that
 * made them is destroyed); accepts NULL and a half-built queue. */
void batch_queue_destroy(struct batch_queue *queue);
/* Points at a reloaded config and clock setup. */
void batch_queue_set_config(struct batch_queue *queue, const struct config *config,
                            const struct clock_setup *setup);

/* The open batch -- a new one when none is open, its linger time starting --
 * takes `message` (ownership passes) and holds it until the batch is done.
 * Returns 0, or -1 with a message in err (out of memory). */
int batch_queue_hold(struct batch_queue *queue, rd_kafka_message_t *message, char *err,
                     size_t err_size);
/* After batch_queue_hold: adds the message's valid event with its clock
 * operations to the open batch (see batch_add_event).  Returns 0, or -1. */
int batch_queue_add_event(struct batch_queue *queue, const struct duewatch_event *event,
                          int64_t now_ms, const struct clock_op *ops, int op_count);
/* After batch_queue_hold: the open batch waits for one more dead letter
 * before it is sent.  Returns its number, for dead_letters_send and
 * batch_queue_dead_letter_delivered. */
uint64_t batch_queue_await_dead_letter(struct batch_queue *queue);
/* A dead letter of batch `batch` was delivered (no such batch: it was
 * dropped meanwhile). */
void batch_queue_dead_letter_delivered(struct batch_queue *queue, uint64_t batch);
/* Sends the open batch when it is full. */
void batch_queue_send_if_full(struct batch_queue *queue);

/* Redis is ready (what waits is sent) or lost (when revoking or stopping, the
 * batches not sent yet are dropped: nothing more can be applied before). */
void batch_queue_redis_ready(struct batch_queue *queue, bool ready);

/* Drops every batch not sent yet (their messages are consumed again once
 * the partitions are sought back: redis_state.h). */
void batch_queue_drop_unsent(struct batch_queue *queue);

/* The partitions are revoked: the consumed batches are finished -- each
 * applied once its dead letters are delivered, in order, as usual -- and
 * then kafka_consumer_finish_revoke() hands the partitions over, so that
 * whoever consumes them next neither applies nor dead-letters those messages
 * again.  With `drop` (the assignment was lost: another member may own the
 * partitions already), or when Redis cannot take them now, the batches not
 * sent yet are dropped instead and consumed again by the next owner.  Bounded
 * by shutdown_timeout_ms. */
void batch_queue_revoke(struct batch_queue *queue, bool drop);
/* The daemon stops: the consumed batches are finished as on a revocation
 * (dropped when Redis cannot take them now), then on_stopped(arg) is called
 * on the loop (or at once).  The caller bounds the wait. */
void batch_queue_stop(struct batch_queue *queue, void (*on_stopped)(void *arg), void *arg);

void batch_queue_get_status(const struct batch_queue *queue, struct batch_queue_status *out);
void batch_queue_get_stats(const struct batch_queue *queue, struct batch_queue_stats *out);

#endif
