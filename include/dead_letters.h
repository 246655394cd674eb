/* Dead letters: invalid messages produced to the dead-letter topic (headers
 * dw.reason, dw.detail, dw.topic, dw.partition, dw.offset, and dw.truncated
 * when only the head of a message too large for the producer is sent), again
 * and again until the log has them.  Each belongs to a batch (batch_queue.h)
 * that is applied only once its dead letters are delivered, so the stored
 * position never passes a message that is neither applied nor
 * dead-lettered; the owner learns of each delivery through its callback. */
#ifndef DUEWATCH_DEAD_LETTERS_H
#define DUEWATCH_DEAD_LETTERS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct event_base;
struct config;
struct kafka_producer;

struct dead_letters_stats {
    uint64_t sent[REJECT_COUNT]; /* messages dead-lettered, by reason */
    uint64_t delivery_failures;  /* produced again after the producer gave up */
};

/* A dead letter of batch `batch` is in the dead-letter topic's log (or its
 * batch was released before: the owner finds no such batch). */
typedef void (*dead_letter_delivered_callback)(void *arg, uint64_t batch);

struct dead_letters;

/* Produces with `producer` (not owned; must outlive the dead letters, or be
 * destroyed only once the loop has stopped).  `config` must stay valid until
 * the next dead_letters_set_config or destroy.  Returns NULL with a message
 * in err. */
struct dead_letters *dead_letters_create(struct event_base *base, const struct config *config,
                                         struct kafka_producer *producer,
                                         dead_letter_delivered_callback delivered, void *arg,
                                         char *err, size_t err_size);
/* Frees, forgetting the letters not delivered yet (their messages' offsets
 * were never stored: they are consumed again); accepts NULL and a half-built
 * object. */
void dead_letters_destroy(struct dead_letters *letters);
/* Points at a reloaded config. */
void dead_letters_set_config(struct dead_letters *letters, const struct config *config);

/* Counts, logs and produces a dead letter for `message`, which batch `batch`
 * holds until dead_letters_release(); `detail` is copied.  Exits the process
 * when out of memory (the message is consumed again after the restart). */
void dead_letters_send(struct dead_letters *letters, uint64_t batch, rd_kafka_message_t *message,
                       enum event_reject reason, const char *detail);
/* Batch `batch` released its messages (applied, or dropped): its letters
 * not produced yet are given up, their messages being consumed again. */
void dead_letters_release(struct dead_letters *letters, uint64_t batch);

void dead_letters_get_stats(const struct dead_letters *letters, struct dead_letters_stats *out);

#endif
