/* Pausing and holding consumption (see flow_control.h).
 *
 * Consumption stops in two ways.  At max_inflight_events the consumer holds
 * (stops taking messages; librdkafka keeps what it fetched) until half have
 * been applied: the usual case under a backlog, many times a second, and a
 * pause would throw the fetched messages away each time.  A hold longer than
 * HOLD_MAX_MS (Redis slow for long), Redis down or failing, and shutting down
 * pause the partitions instead, which lets the consumer keep serving
 * rebalances. */
#include "flow_control.h"

#include "config.h"
#include "kafka_consumer.h"
#include "log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#define HOLD_MAX_MS 10000

struct flow_control {
    const struct config *config;
    struct kafka_consumer *consumer; /* not owned */
    flow_control_inputs_callback inputs;
    void *inputs_arg;
    struct event *hold_timer; /* turns a long hold into a pause */
    bool hold_expired;
    bool pause_logged;
    struct flow_control_stats stats;
};

static void hold_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct flow_control *flow = arg;
    flow->hold_expired = true;
    flow_control_update(flow);
}

struct flow_control *flow_control_create(struct event_base *base, const struct config *config,
                                         struct kafka_consumer *consumer,
                                         flow_control_inputs_callback inputs, void *arg,
                                         char *err, size_t err_size)
{
    struct flow_control *flow = calloc(1, sizeof *flow);
    if (flow == NULL)
        goto fail;
    flow->config = config;
    flow->consumer = consumer;
    flow->inputs = inputs;
    flow->inputs_arg = arg;
    flow->hold_timer = evtimer_new(base, hold_expired, flow);
    if (flow->hold_timer == NULL)
        goto fail;
    return flow;
fail:
    snprintf(err, err_size, "out of memory");
    flow_control_destroy(flow);
    return NULL;
}

void flow_control_destroy(struct flow_control *flow)
{
    if (flow == NULL)
        return;
    if (flow->hold_timer)
        event_free(flow->hold_timer);
    free(flow);
}

void flow_control_set_config(struct flow_control *flow, const struct config *config)
{
    flow->config = config;
}

void flow_control_update(struct flow_control *flow)
{
    struct flow_control_inputs in;
    flow->inputs(flow->inputs_arg, &in);
    const char *reason = NULL;
    size_t limit = (size_t)flow->config->max_inflight_events;
    bool paused = kafka_consumer_is_paused(flow->consumer);
    bool holding = kafka_consumer_is_holding(flow->consumer);
    bool over_limit = in.inflight_messages >= limit ||
                      ((paused || holding) && in.inflight_messages > limit / 2);
    bool hold = false;
    if (!over_limit)
        flow->hold_expired = false;
    if (in.stopping)
        reason = "shutting down";
    else if (!in.redis_ready)
        reason = "Redis is unavailable";
    else if (in.redis_failing)
        reason = "Redis returned an error";
    else if (over_limit && flow->hold_expired)
        reason = "in-flight limit reached for over 10 s";
    else if (over_limit)
        hold = true; /* released once half has drained */
    if ((reason && !paused) || (hold && !paused && !holding)) {
        flow->stats.pauses++;
        /* Waiting for the first Redis connection is not worth a line. */
        flow->pause_logged = !in.stopping && in.redis_connected_once;
        if (flow->pause_logged)
            log_notice("pausing consumption: %s (%zu messages in flight)",
                       reason ? reason : "in-flight limit reached", in.inflight_messages);
    } else if (!hold && !reason && (paused || holding) && flow->pause_logged) {
        log_notice("resuming consumption (%zu messages in flight)", in.inflight_messages);
    }
    if (hold && !holding) {
        struct timeval tv = {HOLD_MAX_MS / 1000, (HOLD_MAX_MS % 1000) * 1000};
        evtimer_add(flow->hold_timer, &tv);
    } else if (!hold) {
        evtimer_del(flow->hold_timer);
    }
    kafka_consumer_set_paused(flow->consumer, reason != NULL);
    kafka_consumer_set_holding(flow->consumer, hold);
    flow->stats.paused = reason != NULL || hold;
}

void flow_control_get_stats(const struct flow_control *flow, struct flow_control_stats *out)
{
    *out = flow->stats;
}
