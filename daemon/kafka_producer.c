/* Kafka producer on the libevent loop (see kafka_producer.h). */
#include "kafka_producer.h"

#include "config.h"
#include "kafka_consumer.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kafka_producer {
    rd_kafka_t *handle;
    rd_kafka_queue_t *queue;
    int wakeup_pipe[2];
    struct event *wakeup_event;
};

static void delivered(rd_kafka_t *handle, const rd_kafka_message_t *message, void *opaque)
{
    (void)handle;
    (void)opaque;
    struct delivery_target *target = message->_private;
    if (target)
        target->delivered(target, message->err);
}

static void serve(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct kafka_producer *producer = arg;
    char discard[256];
    while (fd >= 0 && read(fd, discard, sizeof discard) > 0) {
    }
    while (rd_kafka_poll(producer->handle, 0) > 0) {
    }
}

struct kafka_producer *kafka_producer_create(struct event_base *base, const struct config *config,
                                             char *err, size_t err_size)
{
    struct kafka_producer *producer = calloc(1, sizeof *producer);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char reason[512];
    if (producer == NULL || conf == NULL) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    producer->wakeup_pipe[0] = producer->wakeup_pipe[1] = -1;
    /* Idempotence keeps librdkafka's own retries from writing a message twice;
     * no message timeout, so an outage delays alerts and dead letters instead
     * of failing them (kafka.producer.message.timeout.ms overrides). */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", reason, sizeof reason) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", reason, sizeof reason) ||
        rd_kafka_conf_set(conf, "message.timeout.ms", "0", reason, sizeof reason)) {
        snprintf(err, err_size, "kafka producer: %s", reason);
        goto fail;
    }
    if (kafka_apply_properties(conf, config, KAFKA_SCOPE_PRODUCER, err, err_size) != 0)
        goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, delivered);
    rd_kafka_conf_set_opaque(conf, producer);
    producer->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof reason);
    if (producer->handle == NULL) {
        snprintf(err, err_size, "cannot create Kafka producer: %s", reason);
        goto fail;
    }
    conf = NULL; /* rd_kafka_new took it */
    producer->queue = rd_kafka_queue_get_main(producer->handle);
    if (pipe2(producer->wakeup_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, err_size, "pipe: %s", strerror(errno));
        goto fail;
    }
    producer->wakeup_event =
        event_new(base, producer->wakeup_pipe[0], EV_READ | EV_PERSIST, serve, producer);
    if (producer->wakeup_event == NULL || event_add(producer->wakeup_event, NULL) != 0) {
        snprintf(err, err_size, "cannot watch the producer queue");
        goto fail;
    }
    rd_kafka_queue_io_event_enable(producer->queue, producer->wakeup_pipe[1], "1", 1);
    return producer;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    kafka_producer_destroy(producer, -1);
    return NULL;
}

void kafka_producer_destroy(struct kafka_producer *producer, int timeout_ms)
{
    if (producer == NULL)
        return;
    if (producer->handle && timeout_ms >= 0) {
        rd_kafka_resp_err_t error = rd_kafka_flush(producer->handle, timeout_ms);
        if (error) {
            /* Their sources are consumed again (dead letters) or re-sent from
             * the outbox (alerts) after restart; purged (their reports are not
             * served), so that destroying the handle does not wait for them. */
            log_warning("kafka: %d message(s) not delivered at shutdown: %s",
                        rd_kafka_outq_len(producer->handle), rd_kafka_err2str(error));
            rd_kafka_purge(producer->handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                                 RD_KAFKA_PURGE_F_NON_BLOCKING);
        }
    }
    if (producer->queue) {
        rd_kafka_queue_io_event_enable(producer->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(producer->queue);
    }
    if (producer->wakeup_event)
        event_free(producer->wakeup_event);
    if (producer->handle)
        rd_kafka_destroy(producer->handle);
    for (int i = 0; i < 2; i++)
        if (producer->wakeup_pipe[i] >= 0)
            close(producer->wakeup_pipe[i]);
    free(producer);
}

rd_kafka_resp_err_t kafka_producer_send(struct kafka_producer *producer, const char *topic,
                                        const void *key, size_t key_size, const void *value,
                                        size_t value_size, rd_kafka_headers_t *headers,
                                        struct delivery_target *target)
{
    rd_kafka_resp_err_t error = rd_kafka_producev(
        producer->handle, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key_size), RD_KAFKA_V_VALUE((void *)value, value_size),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(target), RD_KAFKA_V_END);
    if (error && headers)
        rd_kafka_headers_destroy(headers);
    return error;
}

int kafka_producer_outstanding(const struct kafka_producer *producer)
{
    return rd_kafka_outq_len(producer->handle);
}
