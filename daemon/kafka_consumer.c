/* Kafka consumer on the libevent loop (see kafka_consumer.h). */
#include "kafka_consumer.h"

#include "config.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Messages handed over per loop turn before yielding to timers and Redis. */
#define MESSAGES_PER_TURN 2000

/* librdkafka takes a consumer that has not polled for max.poll.interval.ms
 * (5 min by default) for stuck and leaves the group.  The queue's pipe wakes
 * the loop only when something is queued, so a quiet stream (a district at
 * night) would lose its partitions every 5 minutes, and the alerts of those
 * partitions would wait until they came back (the demo, idle, took 44 s):
 * the consumer is polled at least this often.  A hold stops polling for at
 * most flow_control's HOLD_MAX_MS (10 s), then pauses instead. */
#define KEEPALIVE_POLL_MS 1000

struct kafka_consumer {
    rd_kafka_t *handle;
    rd_kafka_queue_t *queue;
    int wakeup_pipe[2];
    struct event *wakeup_event;
    struct event *keepalive_timer; /* polls a quiet consumer (KEEPALIVE_POLL_MS) */
    struct kafka_consumer_callbacks callbacks;
    void *arg;
    rd_kafka_topic_partition_list_t *assignment; /* what is assigned now */
    bool paused;
    bool holding;
    bool closing;
    bool abandoned; /* the close did not finish in time: never destroy the handle */
};

/* librdkafka calls this from its own threads: log_write is a single write(2). */
static void log_from_librdkafka(const rd_kafka_t *handle, int level, const char *facility,
                                const char *message)
{
    (void)handle;
    enum log_level ours = level <= 3   ? LOG_LEVEL_ERROR
                          : level == 4 ? LOG_LEVEL_WARNING
                          : level == 5 ? LOG_LEVEL_NOTICE
                          : level == 6 ? LOG_LEVEL_INFO
                                       : LOG_LEVEL_DEBUG;
    log_write(ours, "kafka: %s: %s", facility, message);
}

static void error_from_librdkafka(rd_kafka_t *handle, int error, const char *reason, void *opaque)
{
    (void)opaque;
    log_write(error == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || error == RD_KAFKA_RESP_ERR__FATAL
                  ? LOG_LEVEL_ERROR
                  : LOG_LEVEL_WARNING,
              "kafka: %s: %s: %s", rd_kafka_name(handle), rd_kafka_err2name(error), reason);
}

static int set_property(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                        size_t err_size)
{
    char reason[512];
    if (rd_kafka_conf_set(conf, name, value, reason, sizeof reason) != RD_KAFKA_CONF_OK) {
        snprintf(err, err_size, "kafka property '%s': %s", name, reason);
        return -1;
    }
    return 0;
}

int kafka_apply_properties(rd_kafka_conf_t *conf, const struct config *config, int scope,
                           char *err, size_t err_size)
{
    rd_kafka_conf_set_log_cb(conf, log_from_librdkafka);
    rd_kafka_conf_set_error_cb(conf, error_from_librdkafka);
    for (size_t i = 0; i < config->kafka_property_count; i++) {
        const struct kafka_property *property = &config->kafka_properties[i];
        if (property->scope != KAFKA_SCOPE_BOTH && (int)property->scope != scope)
            continue;
        if (set_property(conf, property->name, property->value, err, err_size) != 0)
            return -1;
    }
    return 0;
}

int kafka_check_properties(const struct config *config, char *err, size_t err_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    int status = 0;
    for (size_t i = 0; i < config->kafka_property_count && status == 0; i++) {
        const struct kafka_property *property = &config->kafka_properties[i];
        char reason[512];
        if (rd_kafka_conf_set(conf, property->name, property->value, reason, sizeof reason) !=
            RD_KAFKA_CONF_OK) {
            const char *prefix = property->scope == KAFKA_SCOPE_CONSUMER   ? "kafka.consumer."
                                 : property->scope == KAFKA_SCOPE_PRODUCER ? "kafka.producer."
                                                                           : "kafka.";
            snprintf(err, err_size, "%s:%d: key '%s%s': librdkafka: %s", config->path,
                     property->line, prefix, property->name, reason);
            status = -1;
        }
    }
    rd_kafka_conf_destroy(conf);
    return status;
}

static void rebalance(rd_kafka_t *handle, rd_kafka_resp_err_t error,
                      rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    struct kafka_consumer *consumer = opaque;
    if (error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_notice("kafka: rebalance: %d partition(s) assigned", partitions->cnt);
        if (consumer->closing) {
            rd_kafka_assign(handle, NULL);
            return;
        }
        consumer->callbacks.on_assign(consumer->arg, rd_kafka_topic_partition_list_copy(partitions));
    } else if (error == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(handle) != 0;
        log_notice("kafka: rebalance: %d partition(s) revoked%s", partitions->cnt,
                   lost ? " (assignment lost: the group session timed out)" : "");
        if (consumer->closing) {
            /* Closing: the owner has already finished its batches. */
            kafka_consumer_finish_revoke(consumer);
            return;
        }
        consumer->callbacks.on_revoke(consumer->arg, lost);
    } else {
        log_error("kafka: rebalance failed: %s", rd_kafka_err2str(error));
        rd_kafka_assign(handle, NULL);
    }
}

static void drain(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct kafka_consumer *consumer = arg;
    char discard[256];
    while (fd >= 0 && read(fd, discard, sizeof discard) > 0) {
    }
    for (int i = 0; i < MESSAGES_PER_TURN && !consumer->holding; i++) {
        rd_kafka_message_t *message = rd_kafka_consumer_poll(consumer->handle, 0);
        if (message == NULL)
            return;
        consumer->callbacks.on_message(consumer->arg, message);
    }
    /* More may be queued: the pipe is written only when the queue goes from
     * empty to non-empty, so come back on the next loop turn (or on
     * release). */
    if (!consumer->holding)
        event_active(consumer->wakeup_event, EV_READ, 0);
}

static void keepalive_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    struct kafka_consumer *consumer = arg;
    if (!consumer->closing) /* the close polls its own queue */
        drain(-1, what, consumer); /* polls unless holding, as a wakeup would */
}

struct kafka_consumer *kafka_consumer_create(struct event_base *base, const struct config *config,
                                             const struct kafka_consumer_callbacks *callbacks,
                                             void *arg, char *err, size_t err_size)
{
    struct kafka_consumer *consumer = calloc(1, sizeof *consumer);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *topics = NULL;
    if (consumer == NULL || conf == NULL) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    consumer->wakeup_pipe[0] = consumer->wakeup_pipe[1] = -1;
    consumer->callbacks = *callbacks;
    consumer->arg = arg;
    /* Properties duewatch manages (the config refuses them as pass-through):
     * offsets are stored only after Redis applied the events; eager assignment
     * because cooperative-sticky has rebalance bugs in librdkafka 2.0.x. */
    if (set_property(conf, "enable.auto.offset.store", "false", err, err_size) ||
        set_property(conf, "enable.auto.commit", "true", err, err_size) ||
        set_property(conf, "auto.offset.reset", "earliest", err, err_size) ||
        set_property(conf, "partition.assignment.strategy", "range,roundrobin", err, err_size) ||
        set_property(conf, "enable.partition.eof", "false", err, err_size) ||
        /* A default, not managed (kafka.consumer.* may change it): what the
         * consumer prefetches while duewatch holds it under a backlog; 16 MiB
         * is over a second of events at the Redis-bound rate, and librdkafka's
         * own 64 MiB made a catch-up's RSS ~250 MiB. */
        set_property(conf, "queued.max.messages.kbytes", "16384", err, err_size) ||
        kafka_apply_properties(conf, config, KAFKA_SCOPE_CONSUMER, err, err_size))
        goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance);
    rd_kafka_conf_set_opaque(conf, consumer);
    char reason[512];
    consumer->handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, reason, sizeof reason);
    if (consumer->handle == NULL) {
        snprintf(err, err_size, "cannot create Kafka consumer: %s", reason);
        goto fail;
    }
    conf = NULL; /* rd_kafka_new took it */
    rd_kafka_poll_set_consumer(consumer->handle);
    consumer->queue = rd_kafka_queue_get_consumer(consumer->handle);
    if (pipe2(consumer->wakeup_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, err_size, "pipe: %s", strerror(errno));
        goto fail;
    }
    consumer->wakeup_event =
        event_new(base, consumer->wakeup_pipe[0], EV_READ | EV_PERSIST, drain, consumer);
    if (consumer->wakeup_event == NULL || event_add(consumer->wakeup_event, NULL) != 0) {
        snprintf(err, err_size, "cannot watch the consumer queue");
        goto fail;
    }
    rd_kafka_queue_io_event_enable(consumer->queue, consumer->wakeup_pipe[1], "1", 1);
    consumer->keepalive_timer = event_new(base, -1, EV_PERSIST, keepalive_poll, consumer);
    const struct timeval keepalive = {KEEPALIVE_POLL_MS / 1000, (KEEPALIVE_POLL_MS % 1000) * 1000};
    if (consumer->keepalive_timer == NULL ||
        event_add(consumer->keepalive_timer, &keepalive) != 0) {
        snprintf(err, err_size, "cannot start the consumer's keep-alive poll");
        goto fail;
    }
    topics = rd_kafka_topic_partition_list_new((int)config->input_topic_count);
    for (size_t i = 0; i < config->input_topic_count; i++)
        rd_kafka_topic_partition_list_add(topics, config->input_topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t error = rd_kafka_subscribe(consumer->handle, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (error) {
        snprintf(err, err_size, "cannot subscribe: %s", rd_kafka_err2str(error));
        goto fail;
    }
    /* Messages may already be queued before the pipe was armed. */
    event_active(consumer->wakeup_event, EV_READ, 0);
    return consumer;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    kafka_consumer_destroy(consumer);
    return NULL;
}

void kafka_consumer_destroy(struct kafka_consumer *consumer)
{
    if (consumer == NULL)
        return;
    if (consumer->queue) {
        rd_kafka_queue_io_event_enable(consumer->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(consumer->queue);
    }
    if (consumer->wakeup_event)
        event_free(consumer->wakeup_event);
    if (consumer->keepalive_timer)
        event_free(consumer->keepalive_timer);
    if (consumer->assignment)
        rd_kafka_topic_partition_list_destroy(consumer->assignment);
    /* After a close that did not finish, destroying the handle would wait
     * for the group to terminate (minutes with a hung coordinator): it is
     * left to the process exit.  Nothing calls back into this consumer: its
     * callbacks run only from polls on this thread. */
    if (consumer->handle && !consumer->abandoned)
        rd_kafka_destroy_flags(consumer->handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    for (int i = 0; i < 2; i++)
        if (consumer->wakeup_pipe[i] >= 0)
            close(consumer->wakeup_pipe[i]);
    free(consumer);
}

void kafka_consumer_assign(struct kafka_consumer *consumer,
                           const rd_kafka_topic_partition_list_t *partitions)
{
    rd_kafka_resp_err_t error = rd_kafka_assign(consumer->handle, partitions);
    if (error) {
        log_error("kafka: assign failed: %s", rd_kafka_err2str(error));
        return;
    }
    if (consumer->assignment)
        rd_kafka_topic_partition_list_destroy(consumer->assignment);
    consumer->assignment = rd_kafka_topic_partition_list_copy(partitions);
    /* A new assignment starts fetching: the pause must be applied again. */
    if (consumer->paused)
        rd_kafka_pause_partitions(consumer->handle, consumer->assignment);
    for (int i = 0; i < partitions->cnt; i++)
        log_info("kafka: consuming %s[%d] from %s", partitions->elems[i].topic,
                 partitions->elems[i].partition,
                 partitions->elems[i].offset >= 0 ? "its position in Redis" : "the committed offset");
}

void kafka_consumer_finish_revoke(struct kafka_consumer *consumer)
{
    if (consumer->assignment && consumer->assignment->cnt > 0) {
        rd_kafka_resp_err_t error = rd_kafka_commit(consumer->handle, NULL, 1 /* async */);
        if (error && error != RD_KAFKA_RESP_ERR__NO_OFFSET)
            log_warning("kafka: commit before revoke: %s", rd_kafka_err2str(error));
    }
    rd_kafka_assign(consumer->handle, NULL);
    if (consumer->assignment) {
        rd_kafka_topic_partition_list_destroy(consumer->assignment);
        consumer->assignment = NULL;
    }
}

void kafka_consumer_set_paused(struct kafka_consumer *consumer, bool paused)
{
    if (consumer->paused == paused)
        return;
    consumer->paused = paused;
    if (consumer->assignment == NULL)
        return;
    if (paused)
        rd_kafka_pause_partitions(consumer->handle, consumer->assignment);
    else
        rd_kafka_resume_partitions(consumer->handle, consumer->assignment);
}

bool kafka_consumer_is_paused(const struct kafka_consumer *consumer) { return consumer->paused; }

void kafka_consumer_set_holding(struct kafka_consumer *consumer, bool holding)
{
    if (consumer->holding == holding)
        return;
    consumer->holding = holding;
    if (!holding)
        event_active(consumer->wakeup_event, EV_READ, 0); /* what waited in the queue */
}

bool kafka_consumer_is_holding(const struct kafka_consumer *consumer)
{
    return consumer->holding;
}

void kafka_consumer_store_offset(struct kafka_consumer *consumer, const char *topic,
                                 int32_t partition, int64_t next_offset)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = next_offset;
    /* Fails harmlessly for a partition no longer assigned: its new owner
     * starts from the position recorded in Redis. */
    rd_kafka_offsets_store(consumer->handle, list);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_topic_partition_t *assigned =
        consumer->assignment
            ? rd_kafka_topic_partition_list_find(consumer->assignment, topic, partition)
            : NULL;
    if (assigned)
        assigned->offset = next_offset;
}

const rd_kafka_topic_partition_list_t *kafka_consumer_assignment(
    const struct kafka_consumer *consumer)
{
    return consumer->assignment;
}

int kafka_consumer_seek(struct kafka_consumer *consumer,
                        const rd_kafka_topic_partition_list_t *partitions)
{
    /* Only what is still assigned (a revocation may have ended meanwhile). */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(partitions->cnt);
    for (int i = 0; i < partitions->cnt; i++)
        if (consumer->assignment &&
            rd_kafka_topic_partition_list_find(consumer->assignment, partitions->elems[i].topic,
                                               partitions->elems[i].partition))
            rd_kafka_topic_partition_list_add(list, partitions->elems[i].topic,
                                              partitions->elems[i].partition)
                ->offset = partitions->elems[i].offset;
    if (list->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(list);
        return 0;
    }
    rd_kafka_error_t *error = rd_kafka_seek_partitions(consumer->handle, list, 5000);
    int status = 0;
    if (error) {
        log_error("kafka: seek failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        status = -1;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *entry = &list->elems[i];
        if (entry->err) {
            log_error("kafka: seek %s[%d]: %s", entry->topic, entry->partition,
                      rd_kafka_err2str(entry->err));
            status = -1;
        }
        rd_kafka_topic_partition_t *assigned =
            consumer->assignment ? rd_kafka_topic_partition_list_find(
                                       consumer->assignment, entry->topic, entry->partition)
                                 : NULL;
        if (assigned)
            assigned->offset = entry->offset;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return status;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* An event of the close: a rebalance is completed as the callback would
 * (the owner has finished its batches); the rest are dropped. */
static void serve_close_event(struct kafka_consumer *consumer, rd_kafka_event_t *event)
{
    if (rd_kafka_event_type(event) != RD_KAFKA_EVENT_REBALANCE)
        return;
    if (rd_kafka_event_error(event) == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
        kafka_consumer_finish_revoke(consumer);
    else
        rd_kafka_assign(consumer->handle, NULL);
}

bool kafka_consumer_close(struct kafka_consumer *consumer, int timeout_ms)
{
    consumer->closing = true;
    rd_kafka_queue_t *queue = rd_kafka_queue_new(consumer->handle);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(consumer->handle, queue);
    if (error) {
        log_warning("kafka: consumer close: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
    int64_t deadline = monotonic_ms() + timeout_ms;
    while (error == NULL && !rd_kafka_consumer_closed(consumer->handle)) {
        int64_t left = deadline - monotonic_ms();
        if (left <= 0)
            break;
        rd_kafka_event_t *event = rd_kafka_queue_poll(queue, left < 100 ? (int)left : 100);
        if (event) {
            serve_close_event(consumer, event);
            rd_kafka_event_destroy(event);
        }
    }
    rd_kafka_queue_destroy(queue);
    consumer->abandoned = !rd_kafka_consumer_closed(consumer->handle);
    if (consumer->abandoned)
        log_warning("kafka: the consumer did not leave its group within %d ms (broker not "
                    "answering?); exiting without it: the partitions' positions are in Redis, "
                    "and the group reassigns them after its session timeout",
                    timeout_ms);
    return !consumer->abandoned;
}

rd_kafka_t *kafka_consumer_handle(struct kafka_consumer *consumer) { return consumer->handle; }

void kafka_consumer_for_each_lag(struct kafka_consumer *consumer,
                                 void (*each)(void *arg, const char *topic, int32_t partition,
                                              int64_t lag),
                                 void *arg)
{
    if (consumer->assignment == NULL)
        return;
    rd_kafka_topic_partition_list_t *positions =
        rd_kafka_topic_partition_list_copy(consumer->assignment);
    rd_kafka_position(consumer->handle, positions);
    for (int i = 0; i < positions->cnt; i++) {
        const rd_kafka_topic_partition_t *entry = &positions->elems[i];
        int64_t low = 0, high = 0;
        if (rd_kafka_get_watermark_offsets(consumer->handle, entry->topic, entry->partition, &low,
                                           &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0)
            continue;
        int64_t position = entry->offset >= 0 ? entry->offset : low;
        each(arg, entry->topic, entry->partition, high > position ? high - position : 0);
    }
    rd_kafka_topic_partition_list_destroy(positions);
}
