/* The ingest pipeline (see ingest.h).  Batches form a FIFO: the oldest is the
 * only one that may be sent, and at most one is in flight, so a partition's
 * events reach Redis in order even across errors and retries (a failed batch
 * is sent again before anything after it). */
#include "ingest.h"

#include "alerts.h"
#include "batch.h"
#include "calendar.h"
#include "clock_setup.h"
#include "config.h"
#include "kafka_consumer.h"
#include "kafka_producer.h"
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
#include <unistd.h>
#include <time.h>

struct pending_batch {
    struct ingest *ingest;
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

/* One dead letter on its way to the dead-letter topic. */
struct dead_letter {
    struct delivery_target target; /* first: the producer calls it back */
    struct ingest *ingest;
    uint64_t batch_sequence;
    rd_kafka_message_t *message; /* held by its batch; NULL once the batch is dropped */
    enum event_reject reason;
    bool queued;    /* handed to librdkafka; false = to be produced (again) */
    bool truncated; /* too large for the producer: only its head is sent */
    char detail[200];
    struct dead_letter *next;
};

/* Context of a Redis position lookup for a new assignment. */
struct position_lookup {
    struct ingest *ingest;
    uint64_t generation;
};

struct ingest {
    struct event_base *base;
    const struct config *config;
    const struct clock_setup *setup;
    struct alerts *alerts;
    struct redis_client *redis;
    struct kafka_consumer *consumer;
    struct kafka_producer *producer;
    struct pending_batch *oldest, *newest; /* FIFO; newest may be open (unsealed) */
    struct pending_batch *spare;           /* reusable batches */
    struct dead_letter *dead_letters;      /* not yet delivered */
    uint64_t next_sequence;
    struct event *linger_timer;
    struct event *retry_timer;
    struct event *dead_letter_retry_timer;
    struct event *revoke_timer; /* bounds finishing the batches of a revoke */
    struct event *hold_timer;   /* turns a long hold into a pause */
    bool hold_expired;
    int redis_error_streak;
    bool waiting_to_retry;
    /* Batches sent and not answered yet, at most BATCHES_IN_FLIGHT; they
     * form a fence chain (apply_batch.lua) so that one applies only after
     * the one ahead of it did. */
    int batches_in_flight;
    bool fence_broken; /* a batch failed: let the rest drain, then a new chain */
    uint64_t fence_chain_count;
    int64_t fence_position;
    uint64_t fence_instance; /* random: chains of different processes never meet */
    char fence_chain[48];
    rd_kafka_topic_partition_list_t *pending_assignment;
    uint64_t assignment_generation;
    bool lookup_in_flight;
    bool revoking;
    bool shutting_down;
    void (*on_stopped)(void *arg);
    void *on_stopped_arg;
    void (*on_ready)(void *arg);
    void *on_ready_arg;
    bool assigned_once;
    bool pause_logged;
    struct ingest_stats stats;
};

const double ingest_latency_bounds[INGEST_LATENCY_BUCKETS] = {
    0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
const double ingest_size_bounds[INGEST_SIZE_BUCKETS] = {1, 10, 50, 100, 250, 500, 1000, 2000,
                                                        5000};

static void try_send(struct ingest *ingest);

/* Two batches in flight keep Redis busy while the daemon turns a reply
 * around (store offsets, build and send the next command); more would only
 * queue in Redis. */
#define BATCHES_IN_FLIGHT 2
static void update_pause(struct ingest *ingest);

/* How much of a message too large to dead-letter whole is sent (with header
 * dw.truncated = its original size). */
#define DEAD_LETTER_TRUNCATED_BYTES 65536

static void observe(uint64_t *buckets, const double *bounds, size_t count, double value)
{
    size_t i = 0;
    while (i < count && value > bounds[i])
        i++;
    for (; i <= count; i++)
        buckets[i]++; /* cumulative, as Prometheus histograms are */
}

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

static void release_message(void *message) { rd_kafka_message_destroy(message); }

static struct pending_batch *take_batch(struct ingest *ingest)
{
    struct pending_batch *pending = ingest->spare;
    if (pending) {
        ingest->spare = pending->next;
    } else {
        pending = calloc(1, sizeof *pending);
        if (pending == NULL)
            return NULL;
        pending->batch = batch_create((size_t)ingest->config->batch_max_events, release_message);
        if (pending->batch == NULL) {
            free(pending);
            return NULL;
        }
    }
    pending->ingest = ingest;
    pending->sequence = ++ingest->next_sequence;
    pending->dead_letters_pending = 0;
    pending->sealed = pending->sent = pending->writing = false;
    pending->next = NULL;
    return pending;
}

/* Releases the batch's messages and keeps it for reuse. */
static void recycle_batch(struct ingest *ingest, struct pending_batch *pending)
{
    for (struct dead_letter *letter = ingest->dead_letters; letter; letter = letter->next)
        if (letter->batch_sequence == pending->sequence)
            letter->message = NULL;
    ingest->stats.inflight_messages -= batch_message_count(pending->batch);
    batch_reset(pending->batch);
    pending->next = ingest->spare;
    ingest->spare = pending;
}

static void seal_open_batch(struct ingest *ingest)
{
    if (ingest->newest && !ingest->newest->sealed) {
        ingest->newest->sealed = true;
        evtimer_del(ingest->linger_timer);
    }
}

static void linger_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ingest *ingest = arg;
    seal_open_batch(ingest);
    try_send(ingest);
}

static struct pending_batch *open_batch(struct ingest *ingest)
{
    if (ingest->newest && !ingest->newest->sealed)
        return ingest->newest;
    struct pending_batch *pending = take_batch(ingest);
    if (pending == NULL)
        return NULL;
    if (ingest->newest)
        ingest->newest->next = pending;
    else
        ingest->oldest = pending;
    ingest->newest = pending;
    int linger = ingest->config->batch_linger_ms;
    struct timeval tv = {linger / 1000, (linger % 1000) * 1000};
    evtimer_add(ingest->linger_timer, &tv);
    return pending;
}

/* Drops every batch not yet sent (their messages will be consumed again). */
static void drop_unsent_batches(struct ingest *ingest)
{
    /* The batches in flight stay, in order, until their replies. */
    struct pending_batch *kept_first = NULL, *kept = NULL;
    for (struct pending_batch *pending = ingest->oldest, *next; pending; pending = next) {
        next = pending->next;
        if (pending->sent) {
            if (kept)
                kept->next = pending;
            else
                kept_first = pending;
            kept = pending;
            pending->next = NULL;
        } else {
            recycle_batch(ingest, pending);
        }
    }
    ingest->oldest = kept_first;
    ingest->newest = kept;
    evtimer_del(ingest->linger_timer);
}

static void stopped_if_idle(struct ingest *ingest)
{
    if (ingest->shutting_down && ingest->oldest == NULL && ingest->on_stopped) {
        void (*on_stopped)(void *) = ingest->on_stopped;
        ingest->on_stopped = NULL;
        on_stopped(ingest->on_stopped_arg);
    }
}

static void finish_revoke_if_idle(struct ingest *ingest)
{
    if (ingest->revoking && ingest->oldest == NULL) {
        ingest->revoking = false;
        evtimer_del(ingest->revoke_timer);
        kafka_consumer_finish_revoke(ingest->consumer);
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
static void finish_consumed_batches(struct ingest *ingest, bool drop)
{
    if (drop || ingest->waiting_to_retry || !redis_client_is_ready(ingest->redis)) {
        drop_unsent_batches(ingest);
        return;
    }
    seal_open_batch(ingest);
    try_send(ingest);
}

/* Gives up finishing the consumed batches of a revoke or a stop: drops those
 * not sent yet, so only the one in flight is waited for. */
static void abandon_unsent_batches(struct ingest *ingest)
{
    drop_unsent_batches(ingest);
    finish_revoke_if_idle(ingest);
    stopped_if_idle(ingest);
}

static void revoke_timed_out(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ingest *ingest = arg;
    if (!ingest->revoking)
        return;
    log_warning("rebalance: the consumed batches were not applied within shutdown_timeout_ms "
                "(%d ms); dropping them (the partitions' next owner consumes them again; their "
                "dead letters may be sent twice)",
                ingest->config->shutdown_timeout_ms);
    abandon_unsent_batches(ingest);
}

/* ---- dead letters ---- */

static void produce_dead_letter(struct ingest *ingest, struct dead_letter *letter)
{
    rd_kafka_message_t *message = letter->message;
    char partition_text[16], offset_text[24], original[24];
    snprintf(partition_text, sizeof partition_text, "%" PRId32, message->partition);
    snprintf(offset_text, sizeof offset_text, "%" PRId64, message->offset);
    snprintf(original, sizeof original, "%zu", message->len);
    rd_kafka_resp_err_t error;
    for (;;) {
        rd_kafka_headers_t *headers = rd_kafka_headers_new(6);
        rd_kafka_header_add(headers, "dw.reason", -1, event_reject_name(letter->reason), -1);
        rd_kafka_header_add(headers, "dw.detail", -1, letter->detail, -1);
        rd_kafka_header_add(headers, "dw.topic", -1, rd_kafka_topic_name(message->rkt), -1);
        rd_kafka_header_add(headers, "dw.partition", -1, partition_text, -1);
        rd_kafka_header_add(headers, "dw.offset", -1, offset_text, -1);
        size_t length = message->len;
        if (letter->truncated && length > DEAD_LETTER_TRUNCATED_BYTES) {
            rd_kafka_header_add(headers, "dw.truncated", -1, original, -1);
            length = DEAD_LETTER_TRUNCATED_BYTES;
        }
        error = kafka_producer_send(ingest->producer, ingest->config->dead_letter_topic,
                                    message->key, message->key_len, message->payload, length,
                                    headers, &letter->target);
        if (error != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE || letter->truncated)
            break;
        /* Larger than the producer accepts: it can never be sent whole, and
         * waiting for it would stall every partition.  Its head and its
         * position go instead; the full message stays in the source log. */
        letter->truncated = true;
    }
    letter->queued = error == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!letter->queued) {
        log_warning("dead letter for %s[%" PRId32 "]@%" PRId64 " not queued: %s; retrying",
                    rd_kafka_topic_name(message->rkt), message->partition, message->offset,
                    rd_kafka_err2str(error));
        struct timeval one_second = {1, 0};
        evtimer_add(ingest->dead_letter_retry_timer, &one_second);
    }
}

static struct pending_batch *find_batch(struct ingest *ingest, uint64_t sequence)
{
    for (struct pending_batch *pending = ingest->oldest; pending; pending = pending->next)
        if (pending->sequence == sequence)
            return pending;
    return NULL;
}

static void unlist_dead_letter(struct ingest *ingest, struct dead_letter *letter)
{
    for (struct dead_letter **link = &ingest->dead_letters; *link; link = &(*link)->next)
        if (*link == letter) {
            *link = letter->next;
            return;
        }
}

static void dead_letter_delivered(struct delivery_target *target, rd_kafka_resp_err_t error)
{
    struct dead_letter *letter = (struct dead_letter *)target;
    struct ingest *ingest = letter->ingest;
    if (error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && letter->message && !letter->truncated) {
        letter->truncated = true; /* the broker's limit: send its head */
        produce_dead_letter(ingest, letter);
        return;
    }
    if (error && letter->message) {
        /* librdkafka gave up (message.timeout.ms); produce it again rather
         * than let the position pass a message that is nowhere. */
        ingest->stats.dead_letter_failures++;
        log_error("dead letter for %s[%" PRId32 "]@%" PRId64 " not delivered: %s; retrying",
                  rd_kafka_topic_name(letter->message->rkt), letter->message->partition,
                  letter->message->offset, rd_kafka_err2str(error));
        letter->queued = false;
        struct timeval one_second = {1, 0};
        evtimer_add(ingest->dead_letter_retry_timer, &one_second);
        return;
    }
    struct pending_batch *pending = find_batch(ingest, letter->batch_sequence);
    unlist_dead_letter(ingest, letter);
    free(letter);
    if (pending && --pending->dead_letters_pending == 0)
        try_send(ingest);
}

static void retry_dead_letters(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ingest *ingest = arg;
    for (struct dead_letter **link = &ingest->dead_letters; *link;) {
        struct dead_letter *letter = *link;
        if (!letter->queued && letter->message == NULL) {
            *link = letter->next; /* its batch was dropped: it will be consumed again */
            free(letter);
            continue;
        }
        if (!letter->queued)
            produce_dead_letter(ingest, letter);
        link = &letter->next;
    }
}

static void dead_letter(struct ingest *ingest, struct pending_batch *pending,
                        rd_kafka_message_t *message, enum event_reject reason, const char *detail)
{
    ingest->stats.dead_lettered[reason]++;
    log_warning("dead letter: %s[%" PRId32 "]@%" PRId64 ": %s: %s",
                rd_kafka_topic_name(message->rkt), message->partition, message->offset,
                event_reject_name(reason), detail);
    struct dead_letter *letter = calloc(1, sizeof *letter);
    if (letter == NULL) {
        /* Going on would store a position past a message that is nowhere. */
        log_error("out of memory for a dead letter; exiting so the message is consumed again");
        abort();
    }
    letter->target.delivered = dead_letter_delivered;
    letter->ingest = ingest;
    letter->batch_sequence = pending->sequence;
    letter->message = message;
    letter->reason = reason;
    snprintf(letter->detail, sizeof letter->detail, "%s", detail);
    letter->next = ingest->dead_letters;
    ingest->dead_letters = letter;
    pending->dead_letters_pending++;
    produce_dead_letter(ingest, letter);
}

/* ---- consuming ---- */

static void on_message(void *arg, rd_kafka_message_t *message)
{
    struct ingest *ingest = arg;
    if (message->err) {
        ingest->stats.consumer_errors++;
        log_warning("kafka: consume error on %s[%" PRId32 "]: %s",
                    message->rkt ? rd_kafka_topic_name(message->rkt) : "-", message->partition,
                    rd_kafka_message_errstr(message));
        rd_kafka_message_destroy(message);
        return;
    }
    if (ingest->revoking || ingest->shutting_down) {
        /* Its partition is being handed over or we are stopping: whoever
         * consumes it next applies it. */
        rd_kafka_message_destroy(message);
        return;
    }
    struct pending_batch *pending = open_batch(ingest);
    if (pending == NULL) {
        log_error("out of memory for a batch; exiting so the message is consumed again");
        abort();
    }
    ingest->stats.messages_consumed++;
    const struct event_limits limits = {(size_t)ingest->config->max_message_bytes,
                                        (unsigned)ingest->config->max_message_depth};
    struct duewatch_event event;
    char detail[200];
    enum event_reject verdict =
        event_decode(message->payload, message->len, &limits, &event, detail, sizeof detail);
    struct clock_op ops[CLOCK_OPS_MAX];
    int op_count = 0;
    if (verdict == EVENT_VALID && event.type != EVENT_CLOCK_TICK) {
        op_count = clock_setup_ops_for_event(ingest->setup, &event, ops, detail, sizeof detail);
        if (op_count < 0) {
            ingest->stats.clock_errors++;
            verdict = REJECT_CALENDAR_NOT_COVERED;
        }
    }
    if (batch_hold(pending->batch, message, rd_kafka_topic_name(message->rkt), message->partition,
                   message->offset) != 0) {
        log_error("out of memory holding a message; exiting so it is consumed again");
        abort();
    }
    ingest->stats.inflight_messages++;
    if (verdict != EVENT_VALID) {
        dead_letter(ingest, pending, message, verdict, detail);
    } else {
        if (event.type == EVENT_CLOCK_TICK)
            ingest->stats.ticks++;
        if (batch_add_event(pending->batch, &event, wall_ms(ingest), ops, op_count) != 0) {
            log_error("out of memory adding an event; exiting so it is consumed again");
            abort();
        }
    }
    if (batch_is_full(pending->batch)) {
        seal_open_batch(ingest);
        try_send(ingest);
    }
    update_pause(ingest);
}

/* ---- applying in Redis ---- */

static void schedule_redis_retry(struct ingest *ingest)
{
    int delay = ingest->config->redis_reconnect_min_ms;
    for (int i = 0; i < ingest->redis_error_streak && delay < ingest->config->redis_reconnect_max_ms;
         i++)
        delay *= 2;
    if (delay > ingest->config->redis_reconnect_max_ms)
        delay = ingest->config->redis_reconnect_max_ms;
    ingest->redis_error_streak++;
    ingest->waiting_to_retry = true;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(ingest->retry_timer, &tv);
}

static void retry_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ingest *ingest = arg;
    ingest->waiting_to_retry = false;
    update_pause(ingest);
    try_send(ingest);
}

/* The settings of a batch's read, computation and write, as they are now. */
static struct batch_settings settings_for(const struct ingest *ingest,
                                          const struct pending_batch *pending)
{
    const struct config *config = ingest->config;
    return (struct batch_settings){
        .key_prefix = config->key_prefix,
        .dedupe_ttl_seconds = (int64_t)config->dedupe_ttl_days * 86400,
        .counter_ttl_seconds = (int64_t)config->counter_retention_days * 86400,
        .event_time = config->clock_mode == CLOCK_MODE_EVENT,
        .now_ms = alerts_now(ingest->alerts),
        .wall_now_ms = calendar_wall_now_ms(),
        .setup = ingest->setup,
        .fence_key = pending->fence_key,
        .fence_position = pending->fence_position,
    };
}

/* The batch is no longer in flight: unlinks nothing, counts it. */
static void land(struct ingest *ingest, struct pending_batch *pending)
{
    pending->sent = pending->writing = false;
    ingest->batches_in_flight--;
}

/* A read or write failed (reply NULL: the connection was lost; the batch
 * may or may not have run: it is sent again once Redis is back, and the
 * checks make a second run harmless). */
static void batch_failed(struct ingest *ingest, struct pending_batch *pending,
                         const redisReply *reply, const char *reason)
{
    land(ingest, pending);
    ingest->fence_broken = true;
    bool stale = reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "STALE", 5) == 0;
    if (stale) {
        /* The batch ahead failed, or a claim changed one of its clocks since
         * the read: it changed nothing and goes again (after the one ahead),
         * or is dropped with it. */
    } else if (reply == NULL) {
        ingest->stats.redis_errors++;
    } else {
        ingest->stats.redis_errors++;
        if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            log_warning("redis: script cache was flushed; reconnecting to load it again");
            redis_client_reconnect(ingest->redis);
        } else {
            log_error("redis: batch of %zu events failed: %s; retrying with backoff",
                      batch_event_count(pending->batch), reason);
            schedule_redis_retry(ingest);
        }
    }
    if (ingest->revoking || ingest->shutting_down) {
        drop_unsent_batches(ingest);
        finish_revoke_if_idle(ingest);
        stopped_if_idle(ingest);
    }
    if (stale)
        try_send(ingest);
    update_pause(ingest);
}

static void observe_batch(struct ingest *ingest, const struct pending_batch *pending)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double seconds = (double)(now.tv_sec - pending->sent_at.tv_sec) +
                     (double)(now.tv_nsec - pending->sent_at.tv_nsec) / 1e9;
    observe(ingest->stats.latency_buckets, ingest_latency_bounds, INGEST_LATENCY_BUCKETS, seconds);
    ingest->stats.latency_sum_seconds += seconds;
    if (seconds * 1000 > ingest->config->redis_script_timeout_ms)
        log_warning("redis: a batch of %zu events took %.0f ms (redis_script_timeout_ms %d)",
                    batch_event_count(pending->batch), seconds * 1000,
                    ingest->config->redis_script_timeout_ms);
    observe(ingest->stats.size_buckets, ingest_size_bounds, INGEST_SIZE_BUCKETS,
            (double)batch_event_count(pending->batch));
}

/* The batch applied: offsets stored, alerts published, the batch recycled. */
static void batch_applied(struct ingest *ingest, struct pending_batch *pending)
{
    ingest->redis_error_streak = 0;
    observe_batch(ingest, pending);
    ingest->stats.events_applied += batch_applied_count(pending->batch);
    ingest->stats.events_duplicate += batch_duplicate_count(pending->batch);
    ingest->stats.batches_applied++;
    ingest->stats.batch_events_total += batch_event_count(pending->batch);
    for (size_t i = 0; i < batch_partition_count(pending->batch); i++) {
        const char *topic;
        int32_t partition;
        int64_t next_offset, max_event_time;
        batch_partition(pending->batch, i, &topic, &partition, &next_offset, &max_event_time);
        kafka_consumer_store_offset(ingest->consumer, topic, partition, next_offset);
        if (max_event_time >= 0)
            alerts_note_event_time(ingest->alerts, topic, partition, max_event_time);
    }
    alerts_batch_applied(ingest->alerts, batch_engine(pending->batch));
    /* (A batch applies only after those ahead of it, so it is the oldest:
     * unlinked generally all the same.) */
    struct pending_batch *before = NULL;
    for (struct pending_batch *at = ingest->oldest; at && at != pending; at = at->next)
        before = at;
    if (before)
        before->next = pending->next;
    else
        ingest->oldest = pending->next;
    if (ingest->newest == pending)
        ingest->newest = before;
    recycle_batch(ingest, pending);
    finish_revoke_if_idle(ingest);
    stopped_if_idle(ingest);
    /* Redis is idle now: send what has gathered instead of waiting out the
     * linger time (batches grow by themselves while others are in flight). */
    if (ingest->batches_in_flight == 0 && ingest->newest && !ingest->newest->sealed)
        seal_open_batch(ingest);
    try_send(ingest);
    update_pause(ingest);
}

static void on_batch_written(struct redisReply *reply, void *privdata)
{
    struct pending_batch *pending = privdata;
    struct ingest *ingest = pending->ingest;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        batch_failed(ingest, pending, reply, reply ? reply->str : "connection lost");
        return;
    }
    land(ingest, pending);
    batch_applied(ingest, pending);
}

/* The state the batch needs is read: compute its effects and write them. */
static void on_batch_read(struct redisReply *reply, void *privdata)
{
    struct pending_batch *pending = privdata;
    struct ingest *ingest = pending->ingest;
    char err[300];
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        batch_failed(ingest, pending, reply, reply ? reply->str : "connection lost");
        return;
    }
    const struct batch_settings settings = settings_for(ingest, pending);
    if (batch_compute(pending->batch, reply, &settings, err, sizeof err) != 0) {
        batch_failed(ingest, pending, &(redisReply){.type = REDIS_REPLY_ERROR, .str = err}, err);
        return;
    }
    const char **argv;
    const size_t *argv_lengths;
    int argc = batch_build_write(pending->batch,
                                 redis_client_script_sha(ingest->redis, REDIS_SCRIPT_APPLY_EFFECTS),
                                 &settings, &argv, &argv_lengths);
    if (argc < 0 || redis_client_send(ingest->redis, on_batch_written, pending, argc, argv,
                                      argv_lengths) != 0) {
        batch_failed(ingest, pending, NULL, "could not send");
        return;
    }
    pending->writing = true;
    /* The next batch may read now: its read comes after this write. */
    try_send(ingest);
}

/* Sends one sealed batch's read; returns 0, or -1 when it could not be sent
 * now. */
static int send_batch(struct ingest *ingest, struct pending_batch *pending)
{
    if (ingest->batches_in_flight == 0) {
        /* Nothing ahead of this batch can fail any more: a new chain. */
        snprintf(ingest->fence_chain, sizeof ingest->fence_chain, "%016" PRIx64 "-%" PRIu64,
                 ingest->fence_instance, ++ingest->fence_chain_count);
        ingest->fence_position = 0;
    }
    snprintf(pending->fence_key, sizeof pending->fence_key, "%sfence:%s",
             ingest->config->key_prefix, ingest->fence_chain);
    pending->fence_position = ingest->fence_position + 1;
    const struct batch_settings settings = settings_for(ingest, pending);
    const char **argv;
    const size_t *argv_lengths;
    int argc = batch_build_read(pending->batch,
                                redis_client_script_sha(ingest->redis, REDIS_SCRIPT_READ_BATCH),
                                &settings, &argv, &argv_lengths);
    if (argc < 0) {
        log_error("out of memory building a batch command; retrying");
        schedule_redis_retry(ingest);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &pending->sent_at);
    if (redis_client_send(ingest->redis, on_batch_read, pending, argc, argv, argv_lengths) != 0)
        return -1;
    pending->sent = true;
    pending->writing = false;
    ingest->fence_position++;
    ingest->batches_in_flight++;
    return 0;
}

static void try_send(struct ingest *ingest)
{
    struct pending_batch *pending = ingest->oldest;
    /* Empty sealed batches (everything in them was dropped) have nothing to
     * send: recycle them. */
    while (pending && pending->sealed && !pending->sent &&
           batch_message_count(pending->batch) == 0) {
        ingest->oldest = pending->next;
        if (ingest->oldest == NULL)
            ingest->newest = NULL;
        recycle_batch(ingest, pending);
        pending = ingest->oldest;
    }
    if (pending == NULL) {
        /* Nothing left: a revoke or a stop waiting for the batches is done. */
        finish_revoke_if_idle(ingest);
        stopped_if_idle(ingest);
        return;
    }
    if (ingest->waiting_to_retry || !redis_client_is_ready(ingest->redis))
        return;
    if (ingest->fence_broken) {
        /* What is still in flight fails STALE; start again once it is back. */
        if (ingest->batches_in_flight > 0)
            return;
        ingest->fence_broken = false;
    }
    /* In order: the batches in flight are the oldest ones.  A batch reads
     * only once every batch ahead of it has sent its write, so it reads what
     * they wrote (Redis runs one connection's commands in order). */
    for (; pending && ingest->batches_in_flight < BATCHES_IN_FLIGHT; pending = pending->next) {
        if (pending->sent) {
            if (!pending->writing)
                break;
            continue;
        }
        if (!pending->sealed || pending->dead_letters_pending > 0 ||
            send_batch(ingest, pending) != 0)
            break;
        break; /* its write comes first */
    }
}

/* ---- pausing ---- */

/* Consumption stops in two ways.  At max_inflight_events the consumer holds
 * (stops taking messages; librdkafka keeps what it fetched) until half have
 * been applied: the usual case under a backlog, many times a second, and a
 * pause would throw the fetched messages away each time.  A hold longer than
 * HOLD_MAX_MS (Redis slow for long), Redis down or failing, and shutting
 * down pause the partitions instead, which lets the consumer keep serving
 * rebalances. */
#define HOLD_MAX_MS 10000

static void hold_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct ingest *ingest = arg;
    ingest->hold_expired = true;
    update_pause(ingest);
}

static void update_pause(struct ingest *ingest)
{
    const char *reason = NULL;
    size_t limit = (size_t)ingest->config->max_inflight_events;
    bool paused = kafka_consumer_is_paused(ingest->consumer);
    bool holding = kafka_consumer_is_holding(ingest->consumer);
    bool over_limit = ingest->stats.inflight_messages >= limit ||
                      ((paused || holding) && ingest->stats.inflight_messages > limit / 2);
    bool hold = false;
    if (!over_limit)
        ingest->hold_expired = false;
    if (ingest->shutting_down)
        reason = "shutting down";
    else if (!redis_client_is_ready(ingest->redis))
        reason = "Redis is unavailable";
    else if (ingest->waiting_to_retry)
        reason = "Redis returned an error";
    else if (over_limit && ingest->hold_expired)
        reason = "in-flight limit reached for over 10 s";
    else if (over_limit)
        hold = true; /* released once half has drained */
    if ((reason && !paused) || (hold && !paused && !holding)) {
        ingest->stats.pauses++;
        /* Waiting for the first Redis connection is not worth a line. */
        ingest->pause_logged = !ingest->shutting_down && ingest->stats.redis_connects > 0;
        if (ingest->pause_logged)
            log_notice("pausing consumption: %s (%zu messages in flight)",
                       reason ? reason : "in-flight limit reached",
                       ingest->stats.inflight_messages);
    } else if (!hold && !reason && (paused || holding) && ingest->pause_logged) {
        log_notice("resuming consumption (%zu messages in flight)",
                   ingest->stats.inflight_messages);
    }
    if (hold && !holding) {
        struct timeval tv = {HOLD_MAX_MS / 1000, (HOLD_MAX_MS % 1000) * 1000};
        evtimer_add(ingest->hold_timer, &tv);
    } else if (!hold) {
        evtimer_del(ingest->hold_timer);
    }
    kafka_consumer_set_paused(ingest->consumer, reason != NULL);
    kafka_consumer_set_holding(ingest->consumer, hold);
    ingest->stats.paused = reason != NULL || hold;
}

/* ---- rebalancing: positions come from Redis ---- */

static void lookup_positions(struct ingest *ingest);

/* Hands the pending assignment, its starting offsets set, to the consumer and
 * the alert delivery. */
static void complete_assignment(struct ingest *ingest)
{
    rd_kafka_topic_partition_list_t *partitions = ingest->pending_assignment;
    ingest->pending_assignment = NULL;
    kafka_consumer_assign(ingest->consumer, partitions);
    alerts_assign(ingest->alerts, partitions);
    rd_kafka_topic_partition_list_destroy(partitions);
    ingest->assigned_once = true;
    ingest->stats.assigned = true;
    announce_if_ready(ingest);
}

static void on_positions(struct redisReply *reply, void *privdata)
{
    struct position_lookup *lookup = privdata;
    struct ingest *ingest = lookup->ingest;
    bool current = lookup->generation == ingest->assignment_generation;
    free(lookup);
    if (!current)
        return;
    ingest->lookup_in_flight = false;
    rd_kafka_topic_partition_list_t *partitions = ingest->pending_assignment;
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
    complete_assignment(ingest);
}

static void lookup_positions(struct ingest *ingest)
{
    rd_kafka_topic_partition_list_t *partitions = ingest->pending_assignment;
    if (partitions == NULL || ingest->lookup_in_flight || !redis_client_is_ready(ingest->redis))
        return;
    if (partitions->cnt == 0) {
        complete_assignment(ingest);
        return;
    }
    size_t argc = 2 + (size_t)partitions->cnt;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lengths = calloc(argc, sizeof *lengths);
    char **fields = calloc((size_t)partitions->cnt, sizeof *fields);
    char *key = NULL;
    struct position_lookup *lookup = malloc(sizeof *lookup);
    if (!argv || !lengths || !fields || !lookup ||
        asprintf(&key, "%soffsets", ingest->config->key_prefix) < 0) {
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
    lookup->ingest = ingest;
    lookup->generation = ingest->assignment_generation;
    if (redis_client_send(ingest->redis, on_positions, lookup, (int)argc, argv, lengths) == 0)
        ingest->lookup_in_flight = true;
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

static void on_assign(void *arg, rd_kafka_topic_partition_list_t *partitions)
{
    struct ingest *ingest = arg;
    if (ingest->pending_assignment)
        rd_kafka_topic_partition_list_destroy(ingest->pending_assignment);
    ingest->pending_assignment = partitions;
    ingest->assignment_generation++;
    ingest->lookup_in_flight = false;
    lookup_positions(ingest);
}

static void on_revoke(void *arg, bool lost)
{
    struct ingest *ingest = arg;
    if (ingest->pending_assignment) {
        rd_kafka_topic_partition_list_destroy(ingest->pending_assignment);
        ingest->pending_assignment = NULL;
    }
    ingest->assignment_generation++;
    ingest->lookup_in_flight = false;
    ingest->revoking = true;
    ingest->stats.assigned = false;
    alerts_revoke(ingest->alerts);
    /* The group waits for this member to finish its revoke before it
     * rebalances: finishing the consumed batches normally takes a few Redis
     * round trips, and is bounded by shutdown_timeout_ms. */
    int timeout = ingest->config->shutdown_timeout_ms;
    struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
    evtimer_add(ingest->revoke_timer, &tv);
    finish_consumed_batches(ingest, lost);
    finish_revoke_if_idle(ingest);
    update_pause(ingest);
}

static void on_redis_ready(void *arg, bool ready)
{
    struct ingest *ingest = arg;
    ingest->stats.redis_ready = ready;
    if (ready)
        ingest->stats.redis_connects++;
    if (ready) {
        ingest->lookup_in_flight = false;
        lookup_positions(ingest);
        try_send(ingest);
        if (ingest->alerts)
            alerts_redis_ready(ingest->alerts, true);
    } else {
        ingest->lookup_in_flight = false;
        /* Nothing more can be applied before the hand-over or the exit. */
        if (ingest->revoking || ingest->shutting_down)
            abandon_unsent_batches(ingest);
    }
    if (ingest->consumer)
        update_pause(ingest);
}

/* ---- life cycle ---- */

struct ingest *ingest_create(struct event_base *base, const struct config *config,
                             const struct clock_setup *setup, char *err, size_t err_size)
{
    struct ingest *ingest = calloc(1, sizeof *ingest);
    if (ingest == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    ingest->base = base;
    ingest->config = config;
    ingest->setup = setup;
    if (getrandom(&ingest->fence_instance, sizeof ingest->fence_instance, 0) !=
        (ssize_t)sizeof ingest->fence_instance) {
        /* no entropy yet (early boot): pid and time tell processes apart too */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ingest->fence_instance = ((uint64_t)getpid() << 40) ^ (uint64_t)now.tv_sec ^
                                 ((uint64_t)now.tv_nsec << 20);
    }
    ingest->linger_timer = evtimer_new(base, linger_expired, ingest);
    ingest->retry_timer = evtimer_new(base, retry_expired, ingest);
    ingest->dead_letter_retry_timer = evtimer_new(base, retry_dead_letters, ingest);
    ingest->revoke_timer = evtimer_new(base, revoke_timed_out, ingest);
    ingest->hold_timer = evtimer_new(base, hold_expired, ingest);
    if (!ingest->linger_timer || !ingest->retry_timer || !ingest->dead_letter_retry_timer ||
        !ingest->revoke_timer || !ingest->hold_timer) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    ingest->producer = kafka_producer_create(base, config, err, err_size);
    if (ingest->producer == NULL)
        goto fail;
    ingest->redis = redis_client_create(base, config, on_redis_ready, ingest);
    if (ingest->redis == NULL) {
        snprintf(err, err_size, "cannot create the Redis client");
        goto fail;
    }
    ingest->alerts = alerts_create(base, config, setup, ingest->redis, ingest->producer);
    if (ingest->alerts == NULL) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    const struct kafka_consumer_callbacks callbacks = {on_message, on_assign, on_revoke};
    ingest->consumer = kafka_consumer_create(base, config, &callbacks, ingest, err, err_size);
    if (ingest->consumer == NULL)
        goto fail;
    update_pause(ingest);
    return ingest;
fail:
    ingest_destroy(ingest);
    return NULL;
}

void ingest_destroy(struct ingest *ingest)
{
    if (ingest == NULL)
        return;
    /* The Redis client first: its pending callbacks (NULL replies) still find
     * the batches they refer to. */
    redis_client_destroy(ingest->redis);
    ingest->redis = NULL;
    for (struct pending_batch *pending = ingest->oldest, *next; pending; pending = next) {
        next = pending->next;
        batch_destroy(pending->batch);
        free(pending);
    }
    for (struct pending_batch *pending = ingest->spare, *next; pending; pending = next) {
        next = pending->next;
        batch_destroy(pending->batch);
        free(pending);
    }
    kafka_consumer_destroy(ingest->consumer);
    alerts_destroy(ingest->alerts);
    kafka_producer_destroy(ingest->producer, 0);
    for (struct dead_letter *letter = ingest->dead_letters, *next; letter; letter = next) {
        next = letter->next;
        free(letter);
    }
    if (ingest->pending_assignment)
        rd_kafka_topic_partition_list_destroy(ingest->pending_assignment);
    if (ingest->linger_timer)
        event_free(ingest->linger_timer);
    if (ingest->retry_timer)
        event_free(ingest->retry_timer);
    if (ingest->dead_letter_retry_timer)
        event_free(ingest->dead_letter_retry_timer);
    if (ingest->revoke_timer)
        event_free(ingest->revoke_timer);
    if (ingest->hold_timer)
        event_free(ingest->hold_timer);
    free(ingest);
}

void ingest_set_config(struct ingest *ingest, const struct config *config,
                       const struct clock_setup *setup)
{
    ingest->config = config;
    ingest->setup = setup;
    redis_client_set_config(ingest->redis, config);
    alerts_set_config(ingest->alerts, config, setup);
}

void ingest_begin_shutdown(struct ingest *ingest, void (*on_stopped)(void *arg), void *arg)
{
    ingest->shutting_down = true;
    ingest->on_stopped = on_stopped;
    ingest->on_stopped_arg = arg;
    update_pause(ingest);
    /* Bounded by the daemon's shutdown timer (shutdown_timeout_ms). */
    finish_consumed_batches(ingest, false);
    stopped_if_idle(ingest);
}

void ingest_close(struct ingest *ingest, int timeout_ms)
{
    /* Dead letters still on their way are delivered or abandoned (their
     * messages' offsets were never stored, so they are consumed again). */
    kafka_producer_destroy(ingest->producer, timeout_ms);
    ingest->producer = NULL;
    kafka_consumer_close(ingest->consumer);
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
}

void ingest_get_alert_stats(const struct ingest *ingest, struct alerts_stats *out)
{
    alerts_get_stats(ingest->alerts, out);
}

bool ingest_is_ready(const struct ingest *ingest)
{
    return redis_client_is_ready(ingest->redis);
}

void ingest_for_each_lag(struct ingest *ingest,
                         void (*each)(void *arg, const char *topic, int32_t partition, int64_t lag),
                         void *arg)
{
    kafka_consumer_for_each_lag(ingest->consumer, each, arg);
}

void ingest_for_each_alert_count(const struct ingest *ingest,
                                 void (*each)(void *arg, const char *rule, const char *level,
                                              const char *state, uint64_t count),
                                 void *arg)
{
    alerts_for_each_count(ingest->alerts, each, arg);
}

void ingest_for_each_running(const struct ingest *ingest,
                             void (*each)(void *arg, const char *rule, int64_t running), void *arg)
{
    alerts_for_each_running(ingest->alerts, each, arg);
}
