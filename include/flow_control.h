/* Flow control of consumption: pausing and holding the consumer.  At
 * max_inflight_events the consumer holds (stops taking messages; librdkafka
 * keeps what it fetched) until half have been applied.  A hold that lasts too
 * long, Redis down or failing, and shutting down pause the partitions
 * instead.  The decision is made again from the owner's answers (the inputs
 * callback) on every flow_control_update(): call it whenever one of the
 * inputs may have changed. */
#ifndef DUEWATCH_FLOW_CONTROL_H
#define DUEWATCH_FLOW_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config;
struct kafka_consumer;

/* What the decision depends on, as the owner sees it now. */
struct flow_control_inputs {
    size_t inflight_messages;  /* consumed and neither applied nor dropped yet */
    bool stopping;             /* the daemon is shutting down */
    bool redis_ready;          /* connected and set up */
    bool redis_failing;        /* a batch failed with an error reply: its retry waits */
    bool redis_connected_once; /* false: waiting for the first connection (not logged) */
};

struct flow_control_stats {
    uint64_t pauses; /* pauses and holds begun */
    bool paused;     /* paused or holding now */
};

/* Fills *out; called by every flow_control_update(). */
typedef void (*flow_control_inputs_callback)(void *arg, struct flow_control_inputs *out);

struct flow_control;

/* Pauses and holds `consumer` (not owned; must outlive the flow control).
 * Decides nothing yet: call flow_control_update() once `inputs` can answer.
 * `config` must stay valid until the next flow_control_set_config or
 * destroy.  Returns NULL with a message in err. */
struct flow_control *flow_control_create(struct event_base *base, const struct config *config,
                                         struct kafka_consumer *consumer,
                                         flow_control_inputs_callback inputs, void *arg,
                                         char *err, size_t err_size);
/* Frees; accepts NULL and a half-built flow control. */
void flow_control_destroy(struct flow_control *flow);
/* Points at a reloaded config (max_inflight_events). */
void flow_control_set_config(struct flow_control *flow, const struct config *config);

/* Pauses, holds or resumes the consumer as the inputs now require (logs a
 * pause and the resume that follows it). */
void flow_control_update(struct flow_control *flow);

void flow_control_get_stats(const struct flow_control *flow, struct flow_control_stats *out);

#endif
