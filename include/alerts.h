/* Alert delivery: claims due clock levels (claims.h) for the
 * partitions this instance owns, publishes the outbox entries on the alert
 * topic, and removes each entry once the producer reports it delivered.
 * Wall mode: a timer is armed for the next due level.  Event mode: time is the
 * lowest event time over the owned partitions that are not idle, minus the
 * allowed lateness, and claims run as it advances. */
#ifndef DUEWATCH_ALERTS_H
#define DUEWATCH_ALERTS_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock_setup.h"

struct event_base;
struct config;
struct redis_client;
struct kafka_producer;
struct clock_setup;
struct redisReply;

struct alerts_stats {
    uint64_t claims;
    uint64_t alerts_claimed;
    uint64_t alerts_delivered;
    uint64_t delivery_failures;
    uint64_t outbox_resent;
    uint64_t calendar_gaps;
    uint64_t due_entries_dropped; /* index entries without a clock this daemon reads */
    uint64_t provisional_recomputed; /* provisional clocks recomputed (provisional.h) */
    uint64_t provisional_failed;
    uint64_t snapshots;              /* end-of-day snapshots written (snapshots.h) */
    struct calendar_coverage calendar; /* of the calendar in force, now */
    size_t in_flight;
    int64_t event_time_ms; /* -1 = not known yet */
};

struct alerts;

struct alerts *alerts_create(struct event_base *base, const struct config *config,
                             const struct clock_setup *setup, struct redis_client *redis,
                             struct kafka_producer *producer);
/* Frees; accepts NULL.  Alerts still in flight stay in their outbox. */
void alerts_destroy(struct alerts *alerts);
void alerts_set_config(struct alerts *alerts, const struct config *config,
                       const struct clock_setup *setup);

/* The partitions now owned ("topic:partition" of each); resends their
 * outboxes and claims what is due. */
void alerts_assign(struct alerts *alerts, const rd_kafka_topic_partition_list_t *partitions);
/* Stops claiming for every partition. */
void alerts_revoke(struct alerts *alerts);
void alerts_redis_ready(struct alerts *alerts, bool ready);

/* After a batch was applied: publishes the alerts its computation put in
 * outboxes and arms the timer for the earliest due it armed;
 * earliest_event_ms: the earliest time of its events counted (-1 none),
 * from which the end-of-day snapshots start on an empty Redis. */
struct clock_engine;
void alerts_batch_applied(struct alerts *alerts, const struct clock_engine *engine,
                          int64_t earliest_event_ms);
/* Event mode: the highest event time applied on a partition. */
void alerts_note_event_time(struct alerts *alerts, const char *topic, int32_t partition,
                            int64_t ts_ms);
/* The time clocks are judged by now: wall time, or event time in event mode
 * (-1 while not known). */
int64_t alerts_now(const struct alerts *alerts);

void alerts_get_stats(const struct alerts *alerts, struct alerts_stats *out);

/* Alerts delivered, per rule, level and state (since start). */
void alerts_for_each_count(const struct alerts *alerts,
                           void (*each)(void *arg, const char *rule, const char *level,
                                        const char *state, uint64_t count),
                           void *arg);
/* Clocks parked per rule (their rule not configured: parked.h), read every
 * few seconds. */
void alerts_for_each_parked(const struct alerts *alerts,
                            void (*each)(void *arg, const char *rule, int64_t parked), void *arg);
/* Clocks running per rule (dw:active:<rule>:_all, read every few seconds). */
void alerts_for_each_running(const struct alerts *alerts,
                             void (*each)(void *arg, const char *rule, int64_t running),
                             void *arg);
/* Clocks overdue per rule: past their deadline and not stopped
 * (dw:overdue:<rule>:_all, read every few seconds). */
void alerts_for_each_overdue(const struct alerts *alerts,
                             void (*each)(void *arg, const char *rule, int64_t overdue),
                             void *arg);

#endif
