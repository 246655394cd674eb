/* Dead letters on their way to the dead-letter topic (see dead_letters.h). */
#include "dead_letters.h"

#include "config.h"
#include "kafka_producer.h"
#include "log.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

/* How much of a message too large to dead-letter whole is sent (with header
 * dw.truncated = its original size). */
#define DEAD_LETTER_TRUNCATED_BYTES 65536

/* One dead letter on its way to the dead-letter topic. */
struct dead_letter {
    struct delivery_target target; /* first: the producer calls it back */
    struct dead_letters *letters;
    uint64_t batch;
    rd_kafka_message_t *message; /* held by its batch; NULL once the batch is dropped */
    enum event_reject reason;
    bool queued;    /* handed to librdkafka; false = to be produced (again) */
    bool truncated; /* too large for the producer: only its head is sent */
    char detail[200];
    struct dead_letter *next;
};

struct dead_letters {
    const struct config *config;
    struct kafka_producer *producer; /* not owned */
    dead_letter_delivered_callback delivered;
    void *delivered_arg;
    struct dead_letter *undelivered; /* owned */
    struct event *retry_timer;
    struct dead_letters_stats stats;
};

static void produce(struct dead_letters *letters, struct dead_letter *letter)
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
        error = kafka_producer_send(letters->producer, letters->config->dead_letter_topic,
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
        evtimer_add(letters->retry_timer, &one_second);
    }
}

static void unlist(struct dead_letters *letters, struct dead_letter *letter)
{
    for (struct dead_letter **link = &letters->undelivered; *link; link = &(*link)->next)
        if (*link == letter) {
            *link = letter->next;
            return;
        }
}

static void letter_delivered(struct delivery_target *target, rd_kafka_resp_err_t error)
{
    struct dead_letter *letter = (struct dead_letter *)target;
    struct dead_letters *letters = letter->letters;
    if (error == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && letter->message && !letter->truncated) {
        letter->truncated = true; /* the broker's limit: send its head */
        produce(letters, letter);
        return;
    }
    if (error && letter->message) {
        /* librdkafka gave up (message.timeout.ms); produce it again rather
         * than let the position pass a message that is nowhere. */
        letters->stats.delivery_failures++;
        log_error("dead letter for %s[%" PRId32 "]@%" PRId64 " not delivered: %s; retrying",
                  rd_kafka_topic_name(letter->message->rkt), letter->message->partition,
                  letter->message->offset, rd_kafka_err2str(error));
        letter->queued = false;
        struct timeval one_second = {1, 0};
        evtimer_add(letters->retry_timer, &one_second);
        return;
    }
    uint64_t batch = letter->batch;
    unlist(letters, letter);
    free(letter);
    letters->delivered(letters->delivered_arg, batch);
}

static void retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dead_letters *letters = arg;
    for (struct dead_letter **link = &letters->undelivered; *link;) {
        struct dead_letter *letter = *link;
        if (!letter->queued && letter->message == NULL) {
            *link = letter->next; /* its batch was dropped: it will be consumed again */
            free(letter);
            continue;
        }
        if (!letter->queued)
            produce(letters, letter);
        link = &letter->next;
    }
}

struct dead_letters *dead_letters_create(struct event_base *base, const struct config *config,
                                         struct kafka_producer *producer,
                                         dead_letter_delivered_callback delivered, void *arg,
                                         char *err, size_t err_size)
{
    struct dead_letters *letters = calloc(1, sizeof *letters);
    if (letters == NULL)
        goto fail;
    letters->config = config;
    letters->producer = producer;
    letters->delivered = delivered;
    letters->delivered_arg = arg;
    letters->retry_timer = evtimer_new(base, retry, letters);
    if (letters->retry_timer == NULL)
        goto fail;
    return letters;
fail:
    snprintf(err, err_size, "out of memory");
    dead_letters_destroy(letters);
    return NULL;
}

void dead_letters_destroy(struct dead_letters *letters)
{
    if (letters == NULL)
        return;
    for (struct dead_letter *letter = letters->undelivered, *next; letter; letter = next) {
        next = letter->next;
        free(letter);
    }
    if (letters->retry_timer)
        event_free(letters->retry_timer);
    free(letters);
}

void dead_letters_set_config(struct dead_letters *letters, const struct config *config)
{
    letters->config = config;
}

void dead_letters_send(struct dead_letters *letters, uint64_t batch, rd_kafka_message_t *message,
                       enum event_reject reason, const char *detail)
{
    letters->stats.sent[reason]++;
    log_warning("dead letter: %s[%" PRId32 "]@%" PRId64 ": %s: %s",
                rd_kafka_topic_name(message->rkt), message->partition, message->offset,
                event_reject_name(reason), detail);
    struct dead_letter *letter = calloc(1, sizeof *letter);
    if (letter == NULL) {
        /* Going on would store a position past a message that is nowhere. */
        log_error("out of memory for a dead letter; exiting so the message is consumed again");
        abort();
    }
    letter->target.delivered = letter_delivered;
    letter->letters = letters;
    letter->batch = batch;
    letter->message = message;
    letter->reason = reason;
    snprintf(letter->detail, sizeof letter->detail, "%s", detail);
    letter->next = letters->undelivered;
    letters->undelivered = letter;
    produce(letters, letter);
}

void dead_letters_release(struct dead_letters *letters, uint64_t batch)
{
    for (struct dead_letter *letter = letters->undelivered; letter; letter = letter->next)
        if (letter->batch == batch)
            letter->message = NULL;
}

void dead_letters_get_stats(const struct dead_letters *letters, struct dead_letters_stats *out)
{
    *out = letters->stats;
}
