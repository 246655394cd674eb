/* The Kafka consumer (librdkafka high-level consumer, eager assignment) driven
 * from the libevent loop: librdkafka signals a pipe when its queue becomes
 * non-empty (rd_kafka_queue_io_event_enable), so there is no polling thread
 * and no busy loop.  Offsets are stored only when the owner says so
 * (enable.auto.offset.store=false) and committed by auto-commit and on close.
 *
 * Rebalances are handed to the owner and completed later: on assignment the
 * owner looks up each partition's position in Redis and then calls
 * kafka_consumer_assign(); on revocation it finishes the batches it has
 * consumed and then calls kafka_consumer_finish_revoke().  librdkafka allows
 * assign() after the callback has returned, within the session timeout (the
 * group's rebalance waits for this member meanwhile). */
#ifndef DUEWATCH_KAFKA_CONSUMER_H
#define DUEWATCH_KAFKA_CONSUMER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct config;

struct kafka_consumer_callbacks {
    /* A message or a consumer error (message->err != 0); ownership passes. */
    void (*on_message)(void *arg, rd_kafka_message_t *message);
    /* New assignment (a copy the owner must destroy).  The consumer fetches
     * nothing until kafka_consumer_assign(). */
    void (*on_assign)(void *arg, rd_kafka_topic_partition_list_t *partitions);
    /* The whole assignment is being revoked (eager protocol).  The consumer
     * waits for kafka_consumer_finish_revoke().  lost: librdkafka considers
     * the assignment lost (the group session timed out), so another member
     * may own the partitions already. */
    void (*on_revoke)(void *arg, bool lost);
};

struct kafka_consumer;

/* Creates the consumer and subscribes to config->input_topics.  Returns NULL
 * with a message in err on failure (bad librdkafka property, ...). */
struct kafka_consumer *kafka_consumer_create(struct event_base *base, const struct config *config,
                                             const struct kafka_consumer_callbacks *callbacks,
                                             void *arg, char *err, size_t err_size);
/* Destroys without leaving the group gracefully; accepts NULL.  Call
 * kafka_consumer_close() first for a clean shutdown. */
void kafka_consumer_destroy(struct kafka_consumer *consumer);

/* Completes an assignment announced by on_assign; offsets in `partitions` are
 * the starting positions (RD_KAFKA_OFFSET_INVALID = the committed offset,
 * else auto.offset.reset).  Re-applies the pause state to the new partitions. */
void kafka_consumer_assign(struct kafka_consumer *consumer,
                           const rd_kafka_topic_partition_list_t *partitions);
/* Completes a revocation announced by on_revoke (commits stored offsets first). */
void kafka_consumer_finish_revoke(struct kafka_consumer *consumer);

/* Pauses or resumes fetching on every assigned partition; remembered across
 * rebalances.  Idempotent. */
void kafka_consumer_set_paused(struct kafka_consumer *consumer, bool paused);
bool kafka_consumer_is_paused(const struct kafka_consumer *consumer);
/* Holding: on_message is not called and what librdkafka fetched waits in its
 * queue (bounded by queued.max.messages.kbytes) until released -- unlike a
 * pause, which throws the fetched messages away and fetches them again on
 * resume.  Rebalance events wait too: hold only briefly. */
void kafka_consumer_set_holding(struct kafka_consumer *consumer, bool holding);
bool kafka_consumer_is_holding(const struct kafka_consumer *consumer);

/* Marks topic/partition as consumed up to next_offset (exclusive); the
 * assignment remembers it as the partition's position (below). */
void kafka_consumer_store_offset(struct kafka_consumer *consumer, const char *topic,
                                 int32_t partition, int64_t next_offset);
/* What is assigned now, each partition's offset being its position: where
 * the assignment started it, moved on by each stored offset and seek
 * (RD_KAFKA_OFFSET_INVALID: started from the committed offset, nothing
 * stored since).  NULL when nothing is assigned. */
const rd_kafka_topic_partition_list_t *kafka_consumer_assignment(
    const struct kafka_consumer *consumer);
/* Moves assigned partitions to the offsets in `partitions` (absolute, or
 * RD_KAFKA_OFFSET_BEGINNING): nothing fetched from the old positions is
 * handed over after this returns (waits up to 5 s for the fetcher).
 * Returns 0, or -1 with the failure logged. */
int kafka_consumer_seek(struct kafka_consumer *consumer,
                        const rd_kafka_topic_partition_list_t *partitions);
/* Checks every kafka.* property of `config` as the consumer and the producer
 * would set it: returns 0, or -1 with "FILE:LINE: key '...': librdkafka:
 * <its message>" in err. */
int kafka_check_properties(const struct config *config, char *err, size_t err_size);

/* Shutdown only: commits the stored offsets and leaves the group, waiting at
 * most timeout_ms (a hung or absent coordinator would hold it for minutes).
 * Returns whether it finished; if not, kafka_consumer_destroy() leaves the
 * librdkafka handle to the process exit. */
bool kafka_consumer_close(struct kafka_consumer *consumer, int timeout_ms);

/* The librdkafka handle. */
rd_kafka_t *kafka_consumer_handle(struct kafka_consumer *consumer);

/* Calls each(arg, topic, partition, lag) for every assigned partition: the
 * high watermark last reported by the broker minus the consumer's position
 * (no network round trip: both are cached by librdkafka). */
void kafka_consumer_for_each_lag(struct kafka_consumer *consumer,
                                 void (*each)(void *arg, const char *topic, int32_t partition,
                                              int64_t lag),
                                 void *arg);

/* Shared by the consumer and the producer: applies config's kafka.* properties
 * for `scope` to conf and routes librdkafka's logs to ours.  Returns 0, or -1
 * with a message in err. */
int kafka_apply_properties(rd_kafka_conf_t *conf, const struct config *config, int scope,
                           char *err, size_t err_size);

#endif
