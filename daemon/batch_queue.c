/* The batch queue (see batch_queue.h).  Batches form a FIFO: they are sent
 * oldest first and apply in that order (the fence chain), so a partition's
 * events reach Redis in order even across errors and retries (a failed batch
 * is sent again before anything after it). */
#include "batch_queue.h"

#include "alerts.h"
#include "batch.h"
#include "calendar.h"
#include "config.h"
#include "dead_letters.h"
#include "flow_control.h"
#include "kafka_consumer.h"
#include "log.h"
#include "redis_client.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Three batches in flight keep Redis busy while the daemon computes one and
 * turns a reply around (store offsets, build and send the next command):
 * with two, Redis idled while the daemon computed (make bench: 67,000
 * against 77,000 events/s); more would only queue in Redis.  The reads of
 * all but the oldest may run before the writes ahead of them
 * (batch_set_aheads). */
#define BATCHES_IN_FLIGHT 3
_Static_assert(BATCHES_IN_FLIGHT - 1 <= BATCH_AHEAD_MAX, "every batch ahead is counted as read");

struct pending_batch {
    struct batch_queue *queue;
    struct batch *batch;
    uint64_t sequence;
    struct timespec sent_at;
    int dead_letters_pending;
    bool sealed;
    bool sent;    /* in flight: its read or its write */
    bool writing; /* its write is sent (the next batch's read may follow it) */
    int64_t fence_position;
    char fence_key[160];
    struct pending_batch *next;
};

struct batch_queue {
    const struct config *config;
    const struct clock_setup *setup;
    struct redis_client *redis;        /* not owned */
    struct kafka_consumer *consumer;   /* not owned */
    struct alerts *alerts;             /* not owned */
    struct dead_letters *dead_letters; /* not owned */
    struct flow_control *flow;         /* not owned */
    struct pending_batch *oldest, *newest; /* FIFO; newest may be open (unsealed) */
    struct pending_batch *spare;           /* reusable batches */
    uint64_t next_sequence;
    struct event *linger_timer;
    struct event *retry_timer;
    struct event *revoke_timer; /* bounds finishing the batches of a revoke */
    int redis_error_streak;
    bool waiting_to_retry;
    /* Batches sent and not answered yet, at most BATCHES_IN_FLIGHT; they
     * form a fence chain (apply_effects.lua) so that one applies only after
     * the one ahead of it did. */
    int batches_in_flight;
    bool fence_broken; /* a batch failed: let the rest drain, then a new chain */
    uint64_t fence_chain_count;
    int64_t fence_position;
    uint64_t fence_instance; /* random: chains of different processes never meet */
    char fence_chain[48];
    /* which dedupe spans existed at the last read (batch.h): a read asks
     * only those, and learns of a new one from its own EXISTS */
    struct batch_span_hints span_hints;
    bool revoking;
    bool stopping;
    void (*on_stopped)(void *arg);
    void *on_stopped_arg;
    struct batch_queue_stats stats;
};

const double batch_queue_latency_bounds[BATCH_QUEUE_LATENCY_BUCKETS] = {
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
const double batch_queue_size_bounds[BATCH_QUEUE_SIZE_BUCKETS] = {
    1, 10, 50, 100, 250, 500, 1000, 2000, 5000};

static void try_send(struct batch_queue *queue);

static void observe(uint64_t *buckets, const double *bounds, size_t count, double value)
{
    size_t i = 0;
    while (i < count && value > bounds[i])
        i++;
    for (; i <= count; i++)
        buckets[i]++; /* cumulative, as Prometheus histograms are */
}

static void release_message(void *message) { rd_kafka_message_destroy(message); }

static struct pending_batch *take_batch(struct batch_queue *queue)
{
    struct pending_batch *pending = queue->spare;
    if (pending) {
        queue->spare = pending->next;
    } else {
        pending = calloc(1, sizeof *pending);
        if (pending == NULL)
            return NULL;
        pending->batch = batch_create((size_t)queue->config->batch_max_events, release_message);
        if (pending->batch == NULL) {
            free(pending);
            return NULL;
        }
    }
    pending->queue = queue;
    pending->sequence = ++queue->next_sequence;
    pending->dead_letters_pending = 0;
    pending->sealed = pending->sent = pending->writing = false;
    pending->next = NULL;
    return pending;
}

/* Releases the batch's messages and keeps it for reuse. */
static void recycle_batch(struct batch_queue *queue, struct pending_batch *pending)
{
    dead_letters_release(queue->dead_letters, pending->sequence);
    queue->stats.inflight_messages -= batch_message_count(pending->batch);
    batch_reset(pending->batch);
    pending->next = queue->spare;
    queue->spare = pending;
}

static void seal_open_batch(struct batch_queue *queue)
{
    if (queue->newest && !queue->newest->sealed) {
        queue->newest->sealed = true;
        evtimer_del(queue->linger_timer);
    }
}

static void linger_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct batch_queue *queue = arg;
    seal_open_batch(queue);
    try_send(queue);
}

static struct pending_batch *open_batch(struct batch_queue *queue)
{
    if (queue->newest && !queue->newest->sealed)
        return queue->newest;
    struct pending_batch *pending = take_batch(queue);
    if (pending == NULL)
        return NULL;
    if (queue->newest)
        queue->newest->next = pending;
    else
        queue->oldest = pending;
    queue->newest = pending;
    int linger = queue->config->batch_linger_ms;
    struct timeval tv = {linger / 1000, (linger % 1000) * 1000};
    evtimer_add(queue->linger_timer, &tv);
    return pending;
}

static struct pending_batch *find_batch(struct batch_queue *queue, uint64_t sequence)
{
    for (struct pending_batch *pending = queue->oldest; pending; pending = pending->next)
        if (pending->sequence == sequence)
            return pending;
    return NULL;
}

/* Drops every batch not yet sent (their messages will be consumed again). */
static void drop_unsent_batches(struct batch_queue *queue)
{
    /* The batches in flight stay, in order, until their replies. */
    struct pending_batch *kept_first = NULL, *kept = NULL;
    for (struct pending_batch *pending = queue->oldest, *next; pending; pending = next) {
        next = pending->next;
        if (pending->sent) {
            if (kept)
                kept->next = pending;
            else
                kept_first = pending;
            kept = pending;
            pending->next = NULL;
        } else {
            recycle_batch(queue, pending);
        }
    }
    queue->oldest = kept_first;
    queue->newest = kept;
    evtimer_del(queue->linger_timer);
}

static void stopped_if_idle(struct batch_queue *queue)
{
    if (queue->stopping && queue->oldest == NULL && queue->on_stopped) {
        void (*on_stopped)(void *) = queue->on_stopped;
        queue->on_stopped = NULL;
        on_stopped(queue->on_stopped_arg);
    }
}

static void finish_revoke_if_idle(struct batch_queue *queue)
{
    if (queue->revoking && queue->oldest == NULL) {
        queue->revoking = false;
        evtimer_del(queue->revoke_timer);
        kafka_consumer_finish_revoke(queue->consumer);
    }
}

/* Revoking or stopping: the batches already consumed are finished -- each
 * applied once its dead letters are delivered, in order, as usual -- before
 * the partitions are handed over (or the daemon exits), so that whoever
 * consumes the partitions next neither applies nor dead-letters those
 * messages again: a dead letter is produced once in the normal path.  With
 * `drop` (the assignment was lost: another member may own the partitions
 * already), or when Redis cannot take them now, the batches not sent yet are
 * dropped instead and consumed again by the next owner: the dedupe makes that
 * harmless for the events, and their dead letters may be produced twice (at
 * least once).  The caller bounds the wait (revoke_timer, or the daemon's
 * shutdown timer) and calls finish_revoke_if_idle / stopped_if_idle. */
static void finish_consumed_batches(struct batch_queue *queue, bool drop)
{
    if (drop || queue->waiting_to_retry || !redis_client_is_ready(queue->redis)) {
        drop_unsent_batches(queue);
        return;
    }
    seal_open_batch(queue);
    try_send(queue);
}

/* Gives up finishing the consumed batches of a revoke or a stop: drops those
 * not sent yet, so only the one in flight is waited for. */
static void abandon_unsent_batches(struct batch_queue *queue)
{
    drop_unsent_batches(queue);
    finish_revoke_if_idle(queue);
    stopped_if_idle(queue);
}

/* While revoking or stopping, after a batch failed or Redis was lost: nothing
 * more can be applied before the hand-over or the exit. */
static void abandon_if_finishing(struct batch_queue *queue)
{
    if (queue->revoking || queue->stopping)
        abandon_unsent_batches(queue);
}

static void revoke_timed_out(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct batch_queue *queue = arg;
    if (!queue->revoking)
        return;
    log_warning("rebalance: the consumed batches were not applied within shutdown_timeout_ms "
                "(%d ms); dropping them (the partitions' next owner consumes them again; their "
                "dead letters may be sent twice)",
                queue->config->shutdown_timeout_ms);
    abandon_unsent_batches(queue);
}

/* ---- applying in Redis ---- */

static void schedule_redis_retry(struct batch_queue *queue)
{
    int delay = queue->config->redis_reconnect_min_ms;
    for (int i = 0; i < queue->redis_error_streak && delay < queue->config->redis_reconnect_max_ms;
         i++)
        delay *= 2;
    if (delay > queue->config->redis_reconnect_max_ms)
        delay = queue->config->redis_reconnect_max_ms;
    queue->redis_error_streak++;
    queue->waiting_to_retry = true;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(queue->retry_timer, &tv);
}

static void retry_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct batch_queue *queue = arg;
    queue->waiting_to_retry = false;
    flow_control_update(queue->flow);
    try_send(queue);
}

/* The settings of a batch's read, computation and write, as they are now. */
static struct batch_settings settings_for(struct batch_queue *queue,
                                          const struct pending_batch *pending)
{
    const struct config *config = queue->config;
    return (struct batch_settings){
        .key_prefix = config->key_prefix,
        .dedupe_ttl_seconds = (int64_t)config->dedupe_ttl_days * 86400,
        .counter_ttl_seconds = (int64_t)config->counter_retention_days * 86400,
        .event_time = config->clock_mode == CLOCK_MODE_EVENT,
        .now_ms = alerts_now(queue->alerts),
        .wall_now_ms = calendar_wall_now_ms(),
        .backfill_window_ms = config->backfill_window_ms,
        .setup = queue->setup,
        .fence_key = pending->fence_key,
        .fence_position = pending->fence_position,
        .span_hints = &queue->span_hints,
    };
}

/* The batch is no longer in flight. */
static void land(struct batch_queue *queue, struct pending_batch *pending)
{
    pending->sent = pending->writing = false;
    queue->batches_in_flight--;
}

/* The batch was not applied: an error reply to its read or its write, or
 * reply == NULL when the connection was lost (it may or may not have run:
 * it is sent again once Redis is back, and the checks make a second run
 * harmless). */
static void batch_failed(struct batch_queue *queue, struct pending_batch *pending,
                         const struct redisReply *reply, const char *reason)
{
    land(queue, pending);
    queue->fence_broken = true;
    if (reply && strncmp(reply->str, "STALE", 5) == 0) {
        /* A claim changed one of its clocks since the read, or the batch
         * ahead did not apply: it changed nothing and goes again, after the
         * one ahead -- also while revoking or stopping, unless Redis is
         * failing (then the batches not applied are dropped, as after the
         * error ahead of it). */
        if (queue->waiting_to_retry || !redis_client_is_ready(queue->redis))
            abandon_if_finishing(queue);
        try_send(queue);
        flow_control_update(queue->flow);
        return;
    }
    queue->stats.redis_errors++;
    if (reply == NULL) {
        abandon_if_finishing(queue);
        return;
    }
    if (strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        log_warning("redis: script cache was flushed; reconnecting to load it again");
        redis_client_reconnect(queue->redis);
    } else if (strstr(reply->str, "unknown command") != NULL) {
        /* the module was unloaded: the new connection's probe finds it gone */
        log_warning("redis: batch refused: %s; reconnecting to write through the script",
                    reply->str);
        redis_client_reconnect(queue->redis);
    } else if (strstr(reply->str, "READONLY") != NULL) {
        /* A replica now (a switch-over): the new connection is verified to
         * accept writes before anything is sent again (redis_state.h). */
        log_warning("redis: batch refused: %s; reconnecting", reply->str);
        redis_client_reconnect(queue->redis);
    } else {
        log_error("redis: batch of %zu events failed: %s; retrying with backoff",
                  batch_event_count(pending->batch), reason);
        schedule_redis_retry(queue);
    }
    abandon_if_finishing(queue);
    flow_control_update(queue->flow);
}

/* Counts an applied batch: its round trip (read, computation and write) and
 * its size. */
static void count_applied(struct batch_queue *queue, const struct pending_batch *pending)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double seconds = (double)(now.tv_sec - pending->sent_at.tv_sec) +
                     (double)(now.tv_nsec - pending->sent_at.tv_nsec) / 1e9;
    observe(queue->stats.latency_buckets, batch_queue_latency_bounds,
            BATCH_QUEUE_LATENCY_BUCKETS, seconds);
    queue->stats.latency_sum_seconds += seconds;
    if (seconds * 1000 > queue->config->redis_script_timeout_ms)
        log_warning("redis: a batch of %zu events took %.0f ms (redis_script_timeout_ms %d)",
                    batch_event_count(pending->batch), seconds * 1000,
                    queue->config->redis_script_timeout_ms);
    observe(queue->stats.size_buckets, batch_queue_size_bounds, BATCH_QUEUE_SIZE_BUCKETS,
            (double)batch_event_count(pending->batch));
    queue->stats.events_applied += batch_applied_count(pending->batch);
    queue->stats.events_duplicate += batch_duplicate_count(pending->batch);
    queue->stats.batches_applied++;
    queue->stats.batch_events_total += batch_event_count(pending->batch);
}

/* The batch was applied: its offsets are stored, the alert delivery learns
 * what it changed, and the batch leaves the queue. */
static void batch_applied(struct batch_queue *queue, struct pending_batch *pending)
{
    queue->redis_error_streak = 0;
    count_applied(queue, pending);
    for (size_t i = 0; i < batch_partition_count(pending->batch); i++) {
        const char *topic;
        int32_t partition;
        int64_t next_offset, max_event_time;
        batch_partition(pending->batch, i, &topic, &partition, &next_offset, &max_event_time);
        kafka_consumer_store_offset(queue->consumer, topic, partition, next_offset);
        if (max_event_time >= 0)
            alerts_note_event_time(queue->alerts, topic, partition, max_event_time);
    }
    alerts_batch_applied(queue->alerts, batch_engine(pending->batch),
                         batch_earliest_event_ms(pending->batch));
    /* (A batch applies only after those ahead of it, so it is the oldest:
     * unlinked generally all the same.) */
    struct pending_batch *before = NULL;
    for (struct pending_batch *at = queue->oldest; at && at != pending; at = at->next)
        before = at;
    if (before)
        before->next = pending->next;
    else
        queue->oldest = pending->next;
    if (queue->newest == pending)
        queue->newest = before;
    recycle_batch(queue, pending);
    finish_revoke_if_idle(queue);
    stopped_if_idle(queue);
    /* Redis is idle now: send what has gathered instead of waiting out the
     * linger time (batches grow by themselves while others are in flight). */
    if (queue->batches_in_flight == 0 && queue->newest && !queue->newest->sealed)
        seal_open_batch(queue);
    try_send(queue);
    flow_control_update(queue->flow);
}

static void on_batch_written(struct redisReply *reply, void *privdata)
{
    struct pending_batch *pending = privdata;
    struct batch_queue *queue = pending->queue;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        batch_failed(queue, pending, reply, reply ? reply->str : "connection lost");
        return;
    }
    land(queue, pending);
    batch_applied(queue, pending);
}

/* What the batch needs is read: compute its effects and write them. */
static void on_batch_read(struct redisReply *reply, void *privdata)
{
    struct pending_batch *pending = privdata;
    struct batch_queue *queue = pending->queue;
    char err[300];
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        batch_failed(queue, pending, reply, reply ? reply->str : "connection lost");
        return;
    }
    const struct batch_settings settings = settings_for(queue, pending);
    /* The batches ahead still in flight are computed (replies come in
     * order) and their writes may run after this read: they count as read,
     * the newest first. */
    const struct batch *aheads[BATCHES_IN_FLIGHT - 1];
    size_t ahead_count = 0;
    for (struct pending_batch *at = queue->oldest; at && at != pending; at = at->next)
        if (at->writing && ahead_count < BATCHES_IN_FLIGHT - 1) {
            /* the queue runs oldest first: each newer one goes in front */
            for (size_t i = ahead_count; i > 0; i--)
                aheads[i] = aheads[i - 1];
            aheads[0] = at->batch;
            ahead_count++;
        }
    batch_set_aheads(pending->batch, aheads, ahead_count);
    if (batch_compute(pending->batch, reply, &settings, err, sizeof err) != 0) {
        struct redisReply failure = {.type = REDIS_REPLY_ERROR, .str = err, .len = strlen(err)};
        batch_failed(queue, pending, &failure, err);
        return;
    }
    const char **argv;
    const size_t *argv_lengths;
    int argc = batch_build_write(pending->batch,
                                 redis_client_script_sha(queue->redis, REDIS_SCRIPT_APPLY_EFFECTS),
                                 &settings, &argv, &argv_lengths);
    if (argc < 0 || redis_client_send(queue->redis, on_batch_written, pending, argc, argv,
                                      argv_lengths) != 0) {
        batch_failed(queue, pending, NULL, "could not send");
        return;
    }
    pending->writing = true;
}

/* Sends one sealed batch's read; returns 0, or -1 when it could not be sent
 * now. */
static int send_batch(struct batch_queue *queue, struct pending_batch *pending)
{
    if (queue->batches_in_flight == 0) {
        /* Nothing ahead of this batch can fail any more: a new chain. */
        snprintf(queue->fence_chain, sizeof queue->fence_chain, "%016" PRIx64 "-%" PRIu64,
                 queue->fence_instance, ++queue->fence_chain_count);
        queue->fence_position = 0;
    }
    snprintf(pending->fence_key, sizeof pending->fence_key, "%sfence:%s",
             queue->config->key_prefix, queue->fence_chain);
    pending->fence_position = queue->fence_position + 1;
    const struct batch_settings settings = settings_for(queue, pending);
    const struct redis_command *commands;
    int count = batch_build_read(pending->batch,
                                 redis_client_script_sha(queue->redis, REDIS_SCRIPT_READ_ENTRIES),
                                 &settings, &commands);
    if (count < 0) {
        log_error("out of memory building a batch command; retrying");
        schedule_redis_retry(queue);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &pending->sent_at);
    if (redis_client_send_transaction(queue->redis, on_batch_read, pending, (size_t)count,
                                      commands) != 0)
        return -1;
    pending->sent = true;
    pending->writing = false;
    queue->fence_position++;
    queue->batches_in_flight++;
    return 0;
}

static void try_send(struct batch_queue *queue)
{
    struct pending_batch *pending = queue->oldest;
    /* Empty sealed batches (everything in them was dropped) have nothing to
     * send: recycle them. */
    while (pending && pending->sealed && !pending->sent &&
           batch_message_count(pending->batch) == 0) {
        queue->oldest = pending->next;
        if (queue->oldest == NULL)
            queue->newest = NULL;
        recycle_batch(queue, pending);
        pending = queue->oldest;
    }
    if (pending == NULL) {
        /* Nothing left: a revoke or a stop waiting for the batches is done. */
        finish_revoke_if_idle(queue);
        stopped_if_idle(queue);
        return;
    }
    if (queue->waiting_to_retry || !redis_client_is_ready(queue->redis))
        return;
    if (queue->fence_broken) {
        /* What is still in flight fails STALE; start again once it is back. */
        if (queue->batches_in_flight > 0)
            return;
        queue->fence_broken = false;
    }
    /* In order: the batches in flight are the oldest ones.  A batch's read
     * may run before the writes of those ahead of it: the computation counts
     * those writes as read (batch_set_aheads), and the fence lets this batch's
     * write apply only after it. */
    for (; pending && queue->batches_in_flight < BATCHES_IN_FLIGHT; pending = pending->next) {
        if (pending->sent)
            continue;
        if (!pending->sealed || pending->dead_letters_pending > 0 ||
            send_batch(queue, pending) != 0)
            break;
    }
}

/* ---- life cycle ---- */

struct batch_queue *batch_queue_create(struct event_base *base, const struct config *config,
                                       const struct clock_setup *setup,
                                       struct redis_client *redis,
                                       struct kafka_consumer *consumer, struct alerts *alerts,
                                       struct dead_letters *dead_letters,
                                       struct flow_control *flow, char *err, size_t err_size)
{
    struct batch_queue *queue = calloc(1, sizeof *queue);
    if (queue == NULL)
        goto fail;
    queue->config = config;
    queue->setup = setup;
    queue->redis = redis;
    queue->consumer = consumer;
    queue->alerts = alerts;
    queue->dead_letters = dead_letters;
    queue->flow = flow;
    if (getrandom(&queue->fence_instance, sizeof queue->fence_instance, 0) !=
        (ssize_t)sizeof queue->fence_instance) {
        /* no entropy yet (early boot): pid and time tell processes apart too */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        queue->fence_instance = ((uint64_t)getpid() << 40) ^ (uint64_t)now.tv_sec ^
                                ((uint64_t)now.tv_nsec << 20);
    }
    queue->linger_timer = evtimer_new(base, linger_expired, queue);
    queue->retry_timer = evtimer_new(base, retry_expired, queue);
    queue->revoke_timer = evtimer_new(base, revoke_timed_out, queue);
    if (!queue->linger_timer || !queue->retry_timer || !queue->revoke_timer)
        goto fail;
    return queue;
fail:
    snprintf(err, err_size, "out of memory");
    batch_queue_destroy(queue);
    return NULL;
}

static void free_batches(struct pending_batch *pending)
{
    for (struct pending_batch *next; pending; pending = next) {
        next = pending->next;
        batch_destroy(pending->batch);
        free(pending);
    }
}

void batch_queue_destroy(struct batch_queue *queue)
{
    if (queue == NULL)
        return;
    free_batches(queue->oldest);
    free_batches(queue->spare);
    if (queue->linger_timer)
        event_free(queue->linger_timer);
    if (queue->retry_timer)
        event_free(queue->retry_timer);
    if (queue->revoke_timer)
        event_free(queue->revoke_timer);
    free(queue);
}

void batch_queue_set_config(struct batch_queue *queue, const struct config *config,
                            const struct clock_setup *setup)
{
    queue->config = config;
    queue->setup = setup;
}

/* ---- consumed messages ---- */

int batch_queue_hold(struct batch_queue *queue, rd_kafka_message_t *message, char *err,
                     size_t err_size)
{
    struct pending_batch *pending = open_batch(queue);
    if (pending == NULL) {
        snprintf(err, err_size, "out of memory for a batch");
        return -1;
    }
    if (batch_hold(pending->batch, message, rd_kafka_topic_name(message->rkt), message->partition,
                   message->offset) != 0) {
        snprintf(err, err_size, "out of memory holding a message");
        return -1;
    }
    queue->stats.inflight_messages++;
    return 0;
}

int batch_queue_add_event(struct batch_queue *queue, const struct duewatch_event *event,
                          int64_t now_ms, const struct clock_op *ops, int op_count)
{
    return batch_add_event(queue->newest->batch, event, now_ms, ops, op_count);
}

uint64_t batch_queue_await_dead_letter(struct batch_queue *queue)
{
    queue->newest->dead_letters_pending++;
    return queue->newest->sequence;
}

void batch_queue_dead_letter_delivered(struct batch_queue *queue, uint64_t batch)
{
    struct pending_batch *pending = find_batch(queue, batch);
    if (pending && --pending->dead_letters_pending == 0)
        try_send(queue);
}

void batch_queue_send_if_full(struct batch_queue *queue)
{
    if (queue->newest && !queue->newest->sealed && batch_is_full(queue->newest->batch)) {
        seal_open_batch(queue);
        try_send(queue);
    }
}

/* ---- Redis, revocations and the stop ---- */

void batch_queue_redis_ready(struct batch_queue *queue, bool ready)
{
    if (ready)
        try_send(queue);
    else
        abandon_if_finishing(queue);
}

void batch_queue_drop_unsent(struct batch_queue *queue)
{
    abandon_unsent_batches(queue);
    flow_control_update(queue->flow);
}

void batch_queue_revoke(struct batch_queue *queue, bool drop)
{
    queue->revoking = true;
    /* The group waits for this member to finish its revoke before it
     * rebalances: finishing the consumed batches normally takes a few Redis
     * round trips, and is bounded by shutdown_timeout_ms. */
    int timeout = queue->config->shutdown_timeout_ms;
    struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
    evtimer_add(queue->revoke_timer, &tv);
    finish_consumed_batches(queue, drop);
    finish_revoke_if_idle(queue);
}

void batch_queue_stop(struct batch_queue *queue, void (*on_stopped)(void *arg), void *arg)
{
    queue->stopping = true;
    queue->on_stopped = on_stopped;
    queue->on_stopped_arg = arg;
    flow_control_update(queue->flow);
    /* Bounded by the daemon's shutdown timer (shutdown_timeout_ms). */
    finish_consumed_batches(queue, false);
    stopped_if_idle(queue);
}

void batch_queue_get_status(const struct batch_queue *queue, struct batch_queue_status *out)
{
    out->inflight_messages = queue->stats.inflight_messages;
    out->backing_off = queue->waiting_to_retry;
    out->revoking = queue->revoking;
    out->stopping = queue->stopping;
}

void batch_queue_get_stats(const struct batch_queue *queue, struct batch_queue_stats *out)
{
    *out = queue->stats;
}
