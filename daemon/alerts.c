/* Alert delivery (see alerts.h).  Every alert is first written to a Redis
 * outbox, atomically with the clock change that caused it (apply_effects.lua);
 * this file only moves outbox entries to Kafka and deletes them after the
 * delivery report, so a crash anywhere re-sends (same alert_id) and never
 * loses one. */
#include "alerts.h"

#include "alert_message.h"
#include "claims.h"
#include "clock_engine.h"
#include "clock_setup.h"
#include "parked.h"
#include "provisional.h"
#include "snapshots.h"
#include "config.h"
#include "kafka_producer.h"
#include "log.h"
#include "text.h"
#include "lua_scripts.h"
#include "redis_client.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* Outboxes are re-read this often, for entries whose delivery or deletion
 * was interrupted (a Redis reconnect while an HDEL was on its way). */
#define OUTBOX_SWEEP_SECONDS 30
#define PARTITION_KEY_MAX 300
/* Clocks running and overdue per rule are read from Redis this often, for
 * metrics. */
#define RUNNING_REFRESH_SECONDS 5
#define COUNTED_RULES_MAX 64

/* The levels an alert may have (alert_message.h), as the metric labels them. */
#define ALERT_LEVELS 4
static const char *const level_names[ALERT_LEVELS] = {"yellow", "orange", "red", "violation"};
static const char *const state_names[2] = {"firing", "resolved"};

/* Per rule: alerts delivered by level and state, clocks running and
 * overdue. */
struct rule_counts {
    char rule[ALERT_FIELD_MAX];
    uint64_t delivered[ALERT_LEVELS][2];
    int64_t running; /* -1 = not read yet */
    int64_t overdue; /* -1 = not read yet */
};

struct owned_partition {
    char key[PARTITION_KEY_MAX]; /* "topic:partition" */
    int64_t event_time_ms;       /* highest applied event time; -1 none */
    int64_t last_seen_wall_ms;   /* when it last advanced (idle detection) */
};

/* An alert on its way to Kafka, then its outbox entry on its way out. */
struct outgoing_alert {
    struct delivery_target target; /* first: the producer calls it back */
    struct alerts *alerts;
    char partition[PARTITION_KEY_MAX];
    char alert_id[ALERT_FIELD_MAX];
    char *payload;
    size_t payload_size;
    bool queued;
    struct outgoing_alert *previous, *next; /* all outgoing alerts */
    struct outgoing_alert *next_same_hash;  /* the index by alert id */
};

/* Outgoing alerts are indexed by id: a burst of thousands due at once must
 * not cost a scan of all the others per alert. */
#define OUTGOING_INDEX_SIZE 4096

struct alerts {
    struct event_base *base;
    const struct config *config;
    const struct clock_setup *setup;
    struct redis_client *redis;
    struct kafka_producer *producer;
    struct owned_partition *owned;
    size_t owned_count;
    struct outgoing_alert *outgoing;
    struct outgoing_alert *outgoing_index[OUTGOING_INDEX_SIZE];
    struct event *claim_timer;
    struct event *retry_timer;
    struct event *sweep_timer;
    struct event *running_timer;
    struct rule_counts counts[COUNTED_RULES_MAX];
    size_t count_rules;
    bool claim_in_flight;
    bool claim_again;
    int64_t last_claim_event_time;
    struct alerts_stats stats;
    struct provisional *provisional; /* recomputes provisional clocks */
    struct parked *parked;           /* resumes clocks whose rule is back */
    struct snapshots *snapshots;     /* end-of-day running and overdue counts */
    struct claim *claim;             /* the claim in flight (claims.h) */
};

static bool event_mode(const struct alerts *alerts)
{
    return alerts->config->clock_mode == CLOCK_MODE_EVENT;
}

int64_t alerts_now(const struct alerts *alerts)
{
    if (!event_mode(alerts))
        return calendar_wall_now_ms();
    int64_t wall = calendar_wall_now_ms();
    int64_t lowest = INT64_MAX, highest = -1;
    bool any_active = false;
    for (size_t i = 0; i < alerts->owned_count; i++) {
        const struct owned_partition *partition = &alerts->owned[i];
        if (partition->event_time_ms > highest)
            highest = partition->event_time_ms;
        int64_t idle_ms = alerts->config->event_time_idle_partition_ms;
        if (idle_ms > 0 && wall - partition->last_seen_wall_ms > idle_ms)
            continue; /* idle: left out, as a watermark would (0: never idle) */
        any_active = true;
        if (partition->event_time_ms < lowest)
            lowest = partition->event_time_ms;
    }
    /* Every partition idle: all they hold has been seen. */
    int64_t time = any_active ? lowest : highest;
    if (time < 0 || alerts->owned_count == 0)
        return -1;
    return time - alerts->config->event_time_lateness_ms;
}

/* ---- producing ---- */

static size_t id_slot(const char *alert_id, size_t length)
{
    return text_hash(alert_id, length) % OUTGOING_INDEX_SIZE;
}

static void remember(struct alerts *alerts, struct outgoing_alert *alert)
{
    alert->previous = NULL;
    alert->next = alerts->outgoing;
    if (alerts->outgoing)
        alerts->outgoing->previous = alert;
    alerts->outgoing = alert;
    size_t slot = id_slot(alert->alert_id, strlen(alert->alert_id));
    alert->next_same_hash = alerts->outgoing_index[slot];
    alerts->outgoing_index[slot] = alert;
    alerts->stats.in_flight++;
}

static void forget(struct alerts *alerts, struct outgoing_alert *alert)
{
    if (alert->previous)
        alert->previous->next = alert->next;
    else
        alerts->outgoing = alert->next;
    if (alert->next)
        alert->next->previous = alert->previous;
    size_t slot = id_slot(alert->alert_id, strlen(alert->alert_id));
    for (struct outgoing_alert **link = &alerts->outgoing_index[slot]; *link;
         link = &(*link)->next_same_hash)
        if (*link == alert) {
            *link = alert->next_same_hash;
            break;
        }
    alerts->stats.in_flight--;
    free(alert->payload);
    free(alert);
}

static struct rule_counts *counts_for(struct alerts *alerts, const char *rule, size_t length)
{
    for (size_t i = 0; i < alerts->count_rules; i++)
        if (strlen(alerts->counts[i].rule) == length &&
            memcmp(alerts->counts[i].rule, rule, length) == 0)
            return &alerts->counts[i];
    if (alerts->count_rules == COUNTED_RULES_MAX || length >= ALERT_FIELD_MAX)
        return NULL;
    struct rule_counts *counts = &alerts->counts[alerts->count_rules++];
    memset(counts, 0, sizeof *counts);
    memcpy(counts->rule, rule, length);
    counts->running = -1;
    counts->overdue = -1;
    return counts;
}

/* Counts a delivered alert by the first fields of its payload:
 * rule|level|state|... */
static void count_delivered(struct alerts *alerts, const struct outgoing_alert *outgoing)
{
    struct alert alert;
    char err[160];
    if (alert_parse(outgoing->alert_id, outgoing->payload, outgoing->payload_size, &alert, err,
                    sizeof err) != 0)
        return;
    struct rule_counts *counts = counts_for(alerts, alert.rule, strlen(alert.rule));
    if (counts == NULL)
        return;
    for (int l = 0; l < ALERT_LEVELS; l++)
        if (strcmp(alert.level, level_names[l]) == 0)
            counts->delivered[l][strcmp(alert.state, "resolved") == 0]++;
}

static void outbox_entry_deleted(struct redisReply *reply, void *privdata)
{
    struct outgoing_alert *alert = privdata;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        log_warning("alerts: outbox entry %s not deleted (%s); it may be sent again",
                    alert->alert_id, reply ? reply->str : "connection lost");
    forget(alert->alerts, alert);
}

static void send_alert(struct alerts *alerts, struct outgoing_alert *outgoing);

static void alert_delivered(struct delivery_target *target, rd_kafka_resp_err_t error)
{
    struct outgoing_alert *alert = (struct outgoing_alert *)target;
    struct alerts *alerts = alert->alerts;
    if (error) {
        alerts->stats.delivery_failures++;
        log_error("alerts: %s not delivered: %s; retrying", alert->alert_id,
                  rd_kafka_err2str(error));
        alert->queued = false;
        struct timeval one_second = {1, 0};
        evtimer_add(alerts->retry_timer, &one_second);
        return;
    }
    alerts->stats.alerts_delivered++;
    count_delivered(alerts, alert);
    char key[PARTITION_KEY_MAX + 40];
    snprintf(key, sizeof key, "%soutbox:%s", alerts->config->key_prefix, alert->partition);
    const char *argv[] = {"HDEL", key, alert->alert_id};
    size_t lengths[] = {4, strlen(key), strlen(alert->alert_id)};
    if (redis_client_send(alerts->redis, outbox_entry_deleted, alert, 3, argv, lengths) != 0) {
        log_warning("alerts: outbox entry %s not deleted (Redis unavailable); it may be sent "
                    "again", alert->alert_id);
        forget(alerts, alert);
    }
}

static void send_alert(struct alerts *alerts, struct outgoing_alert *outgoing)
{
    struct alert alert;
    char err[200];
    if (alert_parse(outgoing->alert_id, outgoing->payload, outgoing->payload_size, &alert, err,
                    sizeof err) != 0) {
        log_error("alerts: outbox entry %s of %s is malformed (%s); left in the outbox",
                  outgoing->alert_id, outgoing->partition, err);
        forget(alerts, outgoing);
        return;
    }
    alert.provisional = clock_setup_is_provisional(alerts->setup, alert.rule, alert.started_at_ms,
                                                   alert.has_last_day, alert.last_day);
    struct alert_wording wording; /* of the clock's rule version */
    clock_setup_wording(alerts->setup, alert.rule, alert.started_at_ms, &wording);
    /* In wall mode the text speaks of the moment it is sent (a level sent
     * late states the time really left); in event mode of the level's due
     * time (the stream's time, not the machine's). */
    int64_t now_ms = calendar_wall_now_ms();
    if (alerts->config->clock_mode == CLOCK_MODE_WALL)
        alert.sent_at_ms = now_ms;
    char text[1024];
    alert_format_text(&alert, &wording, text, sizeof text);
    void *data;
    size_t size;
    if (alert_encode(&alert, text, wording.basis, now_ms, &data, &size) != 0) {
        log_error("alerts: out of memory encoding %s; retrying", outgoing->alert_id);
        struct timeval one_second = {1, 0};
        evtimer_add(alerts->retry_timer, &one_second);
        return;
    }
    const char *key = alert.case_number[0] ? alert.case_number : alert.ref;
    rd_kafka_resp_err_t error =
        kafka_producer_send(alerts->producer, alerts->config->alert_topic, key, strlen(key), data,
                            size, NULL, &outgoing->target);
    free(data);
    outgoing->queued = error == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (!outgoing->queued) {
        log_warning("alerts: %s not queued: %s; retrying", outgoing->alert_id,
                    rd_kafka_err2str(error));
        struct timeval one_second = {1, 0};
        evtimer_add(alerts->retry_timer, &one_second);
    }
}

static bool in_flight(const struct alerts *alerts, const char *alert_id, size_t length)
{
    for (const struct outgoing_alert *alert = alerts->outgoing_index[id_slot(alert_id, length)];
         alert; alert = alert->next_same_hash)
        if (strlen(alert->alert_id) == length && memcmp(alert->alert_id, alert_id, length) == 0)
            return true;
    return false;
}

static void publish(struct alerts *alerts, const char *partition, size_t partition_length,
                    const char *alert_id, size_t id_length, const char *payload,
                    size_t payload_length)
{
    if (partition_length >= PARTITION_KEY_MAX || id_length >= ALERT_FIELD_MAX ||
        in_flight(alerts, alert_id, id_length))
        return;
    struct outgoing_alert *outgoing = calloc(1, sizeof *outgoing);
    char *copy = malloc(payload_length + 1);
    if (outgoing == NULL || copy == NULL) {
        /* It stays in the outbox; the next sweep sends it. */
        free(outgoing);
        free(copy);
        log_error("alerts: out of memory; %.*s waits in its outbox", (int)id_length, alert_id);
        return;
    }
    outgoing->target.delivered = alert_delivered;
    outgoing->alerts = alerts;
    memcpy(outgoing->partition, partition, partition_length);
    memcpy(outgoing->alert_id, alert_id, id_length);
    memcpy(copy, payload, payload_length);
    copy[payload_length] = '\0';
    outgoing->payload = copy;
    outgoing->payload_size = payload_length;
    remember(alerts, outgoing);
    send_alert(alerts, outgoing);
}

static void retry_unqueued(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct alerts *alerts = arg;
    for (struct outgoing_alert *alert = alerts->outgoing, *next; alert; alert = next) {
        next = alert->next; /* send_alert may forget it */
        if (!alert->queued)
            send_alert(alerts, alert);
    }
}

/* Publishes what the engine put in outboxes, once its write has applied. */
static void publish_engine_alerts(struct alerts *alerts, const struct clock_engine *engine)
{
    for (size_t i = 0; i < clock_engine_alert_count(engine); i++) {
        const struct engine_alert *alert = clock_engine_alert(engine, i);
        alerts->stats.alerts_claimed++;
        publish(alerts, alert->partition, strlen(alert->partition), alert->id, strlen(alert->id),
                alert->payload, strlen(alert->payload));
    }
}

/* ---- claiming ---- */

static void request_claim(struct alerts *alerts);

static void arm_timer(struct alerts *alerts, int64_t due_ms)
{
    if (event_mode(alerts) || due_ms < 0 || due_ms == INT64_MAX)
        return;
    int64_t delay = due_ms - calendar_wall_now_ms();
    if (delay < 0)
        delay = 0;
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000)};
    /* Only ever move the timer earlier; a later due is found by that claim. */
    struct timeval pending;
    if (evtimer_pending(alerts->claim_timer, &pending)) {
        struct timeval now, wanted;
        event_base_gettimeofday_cached(alerts->base, &now);
        evutil_timeradd(&now, &tv, &wanted);
        if (evutil_timercmp(&pending, &wanted, <=))
            return;
    }
    evtimer_add(alerts->claim_timer, &tv);
}

static void note_calendar_gaps(struct alerts *alerts, uint64_t gaps)
{
    if (gaps == 0)
        return;
    alerts->stats.calendar_gaps += gaps;
    log_warning("clocks: %" PRIu64 " working-day look-ups fell outside the holiday calendar's "
                "years (those levels are skipped, extensions not moved); extend the holidays "
                "file", gaps);
}

/* What a write computed by the engine leaves to do once it applied. */
static void alerts_engine_applied(struct alerts *alerts, const struct clock_engine *engine)
{
    note_calendar_gaps(alerts, clock_engine_calendar_gaps(engine));
    publish_engine_alerts(alerts, engine);
    arm_timer(alerts, clock_engine_earliest(engine));
}

/* A claim failed or went stale: try again in a second (or at once). */
static void claim_again_in(struct alerts *alerts, int seconds)
{
    alerts->claim_in_flight = false;
    struct timeval delay = {seconds, 0};
    evtimer_add(alerts->claim_timer, &delay);
}

static void claim_finished(struct alerts *alerts)
{
    alerts->claim_in_flight = false;
    alerts->stats.claims++;
    const struct clock_engine *engine = claim_engine(alerts->claim);
    note_calendar_gaps(alerts, clock_engine_calendar_gaps(engine));
    publish_engine_alerts(alerts, engine);
    arm_timer(alerts, claim_earliest(alerts->claim));
    alerts->stats.due_entries_dropped += claim_dropped(alerts->claim);
    const char *rule;
    uint64_t parked = claim_parked(alerts->claim, &rule);
    if (parked > 0)
        log_warning("clocks: %" PRIu64 " parked: rule %s is not configured (a reload or a restart "
                    "without it); they resume, every level due meanwhile sent in order, when it "
                    "is configured again", parked, rule);
    if (claim_more(alerts->claim) || alerts->claim_again) {
        alerts->claim_again = false;
        request_claim(alerts);
        return;
    }
    /* every level due by the claim's time is claimed: the days ended by then
     * can be snapshotted; wall mode claims again at the next day's end */
    snapshots_time_reached(alerts->snapshots, alerts->last_claim_event_time);
    arm_timer(alerts, snapshots_next_end(alerts->last_claim_event_time));
}

static void claim_written(struct redisReply *reply, void *privdata)
{
    struct alerts *alerts = privdata;
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "STALE", 5) == 0) {
        /* a batch changed a clock between the read and the write: again */
        alerts->claim_in_flight = false;
        request_claim(alerts);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply)
            log_error("alerts: claim failed: %s", reply->str);
        claim_again_in(alerts, 1);
        return;
    }
    claim_finished(alerts);
}

static void claim_read_replied(struct redisReply *reply, void *privdata)
{
    struct alerts *alerts = privdata;
    char err[256];
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        log_error("alerts: claim failed: %s", reply->str);
        claim_again_in(alerts, 1);
        return;
    }
    if (reply == NULL ||
        claim_compute(alerts->claim, reply, alerts->setup, !event_mode(alerts),
                      (int64_t)alerts->config->counter_retention_days * 86400,
                      alerts->config->backfill_window_ms, err, sizeof err) != 0) {
        if (reply)
            log_error("alerts: claim failed: %s", err);
        claim_again_in(alerts, 1);
        return;
    }
    const char **argv;
    const size_t *lengths;
    int argc = claim_build_write(alerts->claim,
                                 redis_client_script_sha(alerts->redis, REDIS_SCRIPT_APPLY_EFFECTS),
                                 &argv, &lengths);
    if (argc == 0) {
        claim_finished(alerts);
        return;
    }
    if (argc < 0 || redis_client_send(alerts->redis, claim_written, alerts, argc, argv,
                                      lengths) != 0)
        claim_again_in(alerts, 1);
}

static void request_claim(struct alerts *alerts)
{
    if (alerts->claim_in_flight) {
        alerts->claim_again = true;
        return;
    }
    if (alerts->owned_count == 0 || !redis_client_is_ready(alerts->redis))
        return;
    int64_t now = alerts_now(alerts);
    if (now < 0)
        return;
    alerts->last_claim_event_time = now;
    const char **partitions = calloc(alerts->owned_count + 1, sizeof *partitions);
    if (partitions == NULL)
        return;
    for (size_t i = 0; i < alerts->owned_count; i++)
        partitions[i] = alerts->owned[i].key;
    const char **argv;
    const size_t *lengths;
    int argc = claim_build_read(alerts->claim,
                                redis_client_script_sha(alerts->redis, REDIS_SCRIPT_CLAIM_READ),
                                alerts->config->key_prefix, now,
                                alerts->config->max_alerts_per_claim, partitions,
                                alerts->owned_count, &argv, &lengths);
    free(partitions);
    if (argc > 0 &&
        redis_client_send(alerts->redis, claim_read_replied, alerts, argc, argv, lengths) == 0)
        alerts->claim_in_flight = true;
}

static void claim_timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    request_claim(arg);
}

/* ---- outboxes ---- */

struct outbox_read {
    struct alerts *alerts;
    char partition[PARTITION_KEY_MAX];
};

static void outbox_read_replied(struct redisReply *reply, void *privdata)
{
    struct outbox_read *read = privdata;
    struct alerts *alerts = read->alerts;
    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const struct redisReply *id = reply->element[i], *payload = reply->element[i + 1];
            if (id->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING ||
                in_flight(alerts, id->str, id->len))
                continue;
            alerts->stats.outbox_resent++;
            publish(alerts, read->partition, strlen(read->partition), id->str, id->len,
                    payload->str, payload->len);
        }
    }
    free(read);
}

static void read_outboxes(struct alerts *alerts)
{
    for (size_t i = 0; i < alerts->owned_count; i++) {
        struct outbox_read *read = calloc(1, sizeof *read);
        if (read == NULL)
            return;
        read->alerts = alerts;
        snprintf(read->partition, sizeof read->partition, "%s", alerts->owned[i].key);
        char key[PARTITION_KEY_MAX + 40];
        snprintf(key, sizeof key, "%soutbox:%s", alerts->config->key_prefix, read->partition);
        const char *argv[] = {"HGETALL", key};
        size_t lengths[] = {7, strlen(key)};
        if (redis_client_send(alerts->redis, outbox_read_replied, read, 2, argv, lengths) != 0)
            free(read);
    }
}

static void sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct alerts *alerts = arg;
    if (redis_client_is_ready(alerts->redis))
        read_outboxes(alerts);
    /* Event mode: idle partitions drop out of the minimum as time passes.
     * Wall mode: each claim moves the partitions' claimed-up-to instant on
     * (claims.h), and levels due after it count as missed (they fire
     * each, not collapsed): keep it close to now also when nothing falls
     * due for hours. */
    if (!event_mode(alerts) || alerts_now(alerts) > alerts->last_claim_event_time)
        request_claim(alerts);
}

/* ---- clocks running and overdue, for metrics ---- */

/* One ZCARD of <prefix>overdue:<rule>:_all on its way. */
struct overdue_read {
    struct alerts *alerts;
    char rule[ALERT_FIELD_MAX];
};

static void overdue_read(struct redisReply *reply, void *privdata)
{
    struct overdue_read *read = privdata;
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        struct rule_counts *counts = counts_for(read->alerts, read->rule, strlen(read->rule));
        if (counts)
            counts->overdue = reply->integer;
    }
    free(read);
}

static void refresh_overdue(struct alerts *alerts)
{
    size_t rules = clock_setup_rule_count(alerts->setup);
    for (size_t i = 0; i < rules; i++) {
        struct overdue_read *read = calloc(1, sizeof *read);
        char key[PARTITION_KEY_MAX + 40];
        if (read == NULL)
            return;
        read->alerts = alerts;
        snprintf(read->rule, sizeof read->rule, "%s", clock_setup_rule_name(alerts->setup, i));
        snprintf(key, sizeof key, "%soverdue:%s:_all", alerts->config->key_prefix, read->rule);
        const char *argv[] = {"ZCARD", key};
        size_t lengths[] = {5, strlen(key)};
        if (redis_client_send(alerts->redis, overdue_read, read, 2, argv, lengths) != 0)
            free(read);
    }
}

static void running_read(struct redisReply *reply, void *privdata)
{
    struct alerts *alerts = privdata;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    size_t rules = clock_setup_rule_count(alerts->setup);
    for (size_t i = 0; i < reply->elements && i < rules; i++) {
        const char *rule = clock_setup_rule_name(alerts->setup, i);
        struct rule_counts *counts = counts_for(alerts, rule, strlen(rule));
        if (counts)
            counts->running = reply->element[i]->type == REDIS_REPLY_STRING
                                  ? strtoll(reply->element[i]->str, NULL, 10)
                                  : 0;
    }
}

static void refresh_running(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct alerts *alerts = arg;
    size_t rules = clock_setup_rule_count(alerts->setup);
    if (!redis_client_is_ready(alerts->redis))
        return;
    parked_refresh_counts(alerts->parked);
    refresh_overdue(alerts);
    if (rules == 0)
        return;
    const char **argv = calloc(rules + 1, sizeof *argv);
    size_t *lengths = calloc(rules + 1, sizeof *lengths);
    char **keys = calloc(rules, sizeof *keys);
    if (argv && lengths && keys) {
        argv[0] = "MGET";
        lengths[0] = 4;
        size_t argc = 1;
        for (size_t i = 0; i < rules; i++) {
            if (asprintf(&keys[i], "%sactive:%s:_all", alerts->config->key_prefix,
                         clock_setup_rule_name(alerts->setup, i)) < 0) {
                keys[i] = NULL;
                break;
            }
            argv[argc] = keys[i];
            lengths[argc++] = strlen(keys[i]);
        }
        if (argc == rules + 1)
            redis_client_send(alerts->redis, running_read, alerts, (int)argc, argv, lengths);
    }
    if (keys)
        for (size_t i = 0; i < rules; i++)
            free(keys[i]);
    free(keys);
    free(argv);
    free(lengths);
}

void alerts_for_each_count(const struct alerts *alerts,
                           void (*each)(void *arg, const char *rule, const char *level,
                                        const char *state, uint64_t count),
                           void *arg)
{
    for (size_t i = 0; i < alerts->count_rules; i++)
        for (int level = 0; level < ALERT_LEVELS; level++)
            for (int state = 0; state < 2; state++)
                if (alerts->counts[i].delivered[level][state] > 0)
                    each(arg, alerts->counts[i].rule, level_names[level], state_names[state],
                         alerts->counts[i].delivered[level][state]);
}

void alerts_for_each_running(const struct alerts *alerts,
                             void (*each)(void *arg, const char *rule, int64_t running), void *arg)
{
    for (size_t i = 0; i < alerts->count_rules; i++)
        if (alerts->counts[i].running >= 0)
            each(arg, alerts->counts[i].rule, alerts->counts[i].running);
}

void alerts_for_each_overdue(const struct alerts *alerts,
                             void (*each)(void *arg, const char *rule, int64_t overdue),
                             void *arg)
{
    for (size_t i = 0; i < alerts->count_rules; i++)
        if (alerts->counts[i].overdue >= 0)
            each(arg, alerts->counts[i].rule, alerts->counts[i].overdue);
}

void alerts_for_each_parked(const struct alerts *alerts,
                            void (*each)(void *arg, const char *rule, int64_t parked), void *arg)
{
    parked_for_each_count(alerts->parked, each, arg);
}

/* ---- life cycle ---- */

/* Provisional clocks recomputed, or parked clocks resumed: the alerts to
 * publish, and their new due times may arm the timer. */
static void recompute_applied(void *arg, const struct clock_engine *engine)
{
    alerts_engine_applied(arg, engine);
}

static int64_t recompute_now(void *arg)
{
    return alerts_now(arg);
}

/* Recomputes the provisional clocks of the owned partitions with the
 * calendar in force (provisional.h says when that is needed); or resumes
 * their parked clocks whose rule is configured again (parked.h). */
static void refresh_clocks(struct alerts *alerts, bool provisional)
{
    const char **keys = calloc(alerts->owned_count + 1, sizeof *keys);
    if (keys == NULL)
        return;
    for (size_t i = 0; i < alerts->owned_count; i++)
        keys[i] = alerts->owned[i].key;
    if (provisional)
        provisional_refresh(alerts->provisional, keys, alerts->owned_count);
    else
        parked_resume(alerts->parked, keys, alerts->owned_count);
    free(keys);
}

struct alerts *alerts_create(struct event_base *base, const struct config *config,
                             const struct clock_setup *setup, struct redis_client *redis,
                             struct kafka_producer *producer)
{
    struct alerts *alerts = calloc(1, sizeof *alerts);
    if (alerts == NULL)
        return NULL;
    alerts->base = base;
    alerts->config = config;
    alerts->setup = setup;
    alerts->redis = redis;
    alerts->producer = producer;
    alerts->last_claim_event_time = -1;
    alerts->claim_timer = evtimer_new(base, claim_timer_fired, alerts);
    alerts->retry_timer = evtimer_new(base, retry_unqueued, alerts);
    alerts->sweep_timer = event_new(base, -1, EV_PERSIST, sweep, alerts);
    alerts->running_timer = event_new(base, -1, EV_PERSIST, refresh_running, alerts);
    const struct provisional_callbacks recomputed = {recompute_applied, recompute_now, alerts};
    alerts->provisional = provisional_create(redis, config, setup, &recomputed);
    const struct parked_callbacks resumed = {recompute_applied, recompute_now, alerts};
    alerts->parked = parked_create(redis, config, setup, &resumed);
    alerts->claim = claim_create();
    alerts->snapshots = snapshots_create(redis, config);
    if (!alerts->claim || !alerts->parked || !alerts->snapshots || !alerts->claim_timer || !alerts->retry_timer ||
        !alerts->sweep_timer || !alerts->running_timer || !alerts->provisional) {
        alerts_destroy(alerts);
        return NULL;
    }
    struct timeval refresh = {RUNNING_REFRESH_SECONDS, 0};
    event_add(alerts->running_timer, &refresh);
    struct timeval interval = {OUTBOX_SWEEP_SECONDS, 0};
    if (config->clock_mode == CLOCK_MODE_EVENT) {
        /* idle detection needs a finer tick than the outbox sweep */
        interval.tv_sec = 1;
    }
    event_add(alerts->sweep_timer, &interval);
    return alerts;
}

void alerts_destroy(struct alerts *alerts)
{
    if (alerts == NULL)
        return;
    while (alerts->outgoing) {
        struct outgoing_alert *next = alerts->outgoing->next;
        free(alerts->outgoing->payload);
        free(alerts->outgoing);
        alerts->outgoing = next;
    }
    free(alerts->owned);
    provisional_destroy(alerts->provisional);
    parked_destroy(alerts->parked);
    claim_destroy(alerts->claim);
    snapshots_destroy(alerts->snapshots);
    if (alerts->claim_timer)
        event_free(alerts->claim_timer);
    if (alerts->retry_timer)
        event_free(alerts->retry_timer);
    if (alerts->sweep_timer)
        event_free(alerts->sweep_timer);
    if (alerts->running_timer)
        event_free(alerts->running_timer);
    free(alerts);
}

void alerts_set_config(struct alerts *alerts, const struct config *config,
                       const struct clock_setup *setup)
{
    bool clocks_may_change = !clock_setup_same_clocks(alerts->setup, setup);
    alerts->config = config;
    alerts->setup = setup;
    provisional_set_config(alerts->provisional, config, setup);
    parked_set_config(alerts->parked, config, setup);
    snapshots_set_config(alerts->snapshots, config);
    if (alerts->owned_count == 0 || !redis_client_is_ready(alerts->redis))
        return;
    if (clocks_may_change)
        refresh_clocks(alerts, true);
    refresh_clocks(alerts, false); /* a rule may be back */
}

/* Event mode: the partitions' times as the batch script recorded them, so a
 * restart resumes where event time stood. */
static void event_times_read(struct redisReply *reply, void *privdata)
{
    struct alerts *alerts = privdata;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == alerts->owned_count) {
        for (size_t i = 0; i < reply->elements; i++) {
            if (reply->element[i]->type != REDIS_REPLY_STRING)
                continue;
            int64_t time = strtoll(reply->element[i]->str, NULL, 10);
            if (time > alerts->owned[i].event_time_ms)
                alerts->owned[i].event_time_ms = time;
        }
    }
    if (alerts->owned_count > 0)
        refresh_clocks(alerts, false); /* needs the event time */
    request_claim(alerts);
}

static void read_event_times(struct alerts *alerts)
{
    size_t argc = 2 + alerts->owned_count;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lengths = calloc(argc, sizeof *lengths);
    char key[64];
    snprintf(key, sizeof key, "%seventtime", alerts->config->key_prefix);
    if (argv && lengths) {
        argv[0] = "HMGET";
        argv[1] = key;
        for (size_t i = 0; i < alerts->owned_count; i++)
            argv[2 + i] = alerts->owned[i].key;
        for (size_t i = 0; i < argc; i++)
            lengths[i] = strlen(argv[i]);
        if (redis_client_send(alerts->redis, event_times_read, alerts, (int)argc, argv,
                              lengths) != 0)
            request_claim(alerts);
    }
    free(argv);
    free(lengths);
}

/* After (re)connecting or a new assignment: resend what waits in the
 * outboxes and claim what is due. */
static void catch_up(struct alerts *alerts)
{
    if (alerts->owned_count == 0 || !redis_client_is_ready(alerts->redis))
        return;
    read_outboxes(alerts);
    refresh_clocks(alerts, true);
    if (event_mode(alerts)) {
        read_event_times(alerts);
    } else {
        refresh_clocks(alerts, false);
        request_claim(alerts);
    }
}

void alerts_assign(struct alerts *alerts, const rd_kafka_topic_partition_list_t *partitions)
{
    free(alerts->owned);
    alerts->owned = calloc((size_t)partitions->cnt + 1, sizeof *alerts->owned);
    alerts->owned_count = 0;
    if (alerts->owned == NULL)
        return;
    int64_t wall = calendar_wall_now_ms();
    for (int i = 0; i < partitions->cnt; i++) {
        struct owned_partition *partition = &alerts->owned[alerts->owned_count++];
        snprintf(partition->key, sizeof partition->key, "%s:%" PRId32, partitions->elems[i].topic,
                 partitions->elems[i].partition);
        partition->event_time_ms = -1;
        partition->last_seen_wall_ms = wall;
    }
    catch_up(alerts);
}

void alerts_revoke(struct alerts *alerts)
{
    alerts->owned_count = 0;
    provisional_stop(alerts->provisional);
    parked_stop(alerts->parked);
    evtimer_del(alerts->claim_timer);
}

void alerts_redis_ready(struct alerts *alerts, bool ready)
{
    if (ready) {
        catch_up(alerts);
        refresh_running(-1, 0, alerts);
    }
}

void alerts_batch_applied(struct alerts *alerts, const struct clock_engine *engine,
                          int64_t earliest_event_ms)
{
    snapshots_note_applied(alerts->snapshots, earliest_event_ms);
    alerts_engine_applied(alerts, engine);
    if (event_mode(alerts) && alerts_now(alerts) > alerts->last_claim_event_time)
        request_claim(alerts);
}

void alerts_note_event_time(struct alerts *alerts, const char *topic, int32_t partition,
                            int64_t ts_ms)
{
    char key[PARTITION_KEY_MAX];
    snprintf(key, sizeof key, "%s:%" PRId32, topic, partition);
    for (size_t i = 0; i < alerts->owned_count; i++)
        if (strcmp(alerts->owned[i].key, key) == 0) {
            if (ts_ms > alerts->owned[i].event_time_ms)
                alerts->owned[i].event_time_ms = ts_ms;
            alerts->owned[i].last_seen_wall_ms = calendar_wall_now_ms();
            return;
        }
}

void alerts_get_stats(const struct alerts *alerts, struct alerts_stats *out)
{
    *out = alerts->stats;
    out->event_time_ms = event_mode(alerts) ? alerts_now(alerts) : -1;
    struct provisional_stats provisional;
    provisional_get_stats(alerts->provisional, &provisional);
    out->provisional_recomputed = provisional.clocks_recomputed;
    out->provisional_failed = provisional.clocks_failed;
    out->snapshots = snapshots_taken(alerts->snapshots);
    clock_setup_coverage(alerts->setup, calendar_wall_now_ms(), &out->calendar);
}
