/* Redis's eviction under the daemon (see redis_eviction.h). */
#include "redis_eviction.h"

#include "log.h"
#include "redis_client.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_INTERVAL_MS 5000
#define POLICY_MAX 32

struct redis_eviction {
    struct redis_client *redis; /* not owned */
    struct event *timer;
    bool in_flight;      /* INFO memory and INFO stats sent, stats not answered yet */
    bool memory_read;    /* this check's INFO memory answered with both fields */
    bool refused_logged; /* an INFO refused was logged: not again every check */
    int64_t maxmemory;   /* from this check's INFO memory */
    char policy[POLICY_MAX];
    char logged_policy[POLICY_MAX]; /* the policy last warned about ("" = none) */
    int64_t logged_maxmemory;
    struct redis_eviction_stats stats;
};

/* The value of `name` in an INFO reply ("name:value\r\n" lines) into out;
 * false when the reply has no such line or the value does not fit. */
static bool info_field(const char *info, const char *name, char *out, size_t size)
{
    size_t name_length = strlen(name);
    for (const char *line = info; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        if (length > 0 && line[length - 1] == '\r')
            length--;
        if (length > name_length && strncmp(line, name, name_length) == 0 &&
            line[name_length] == ':') {
            size_t value_length = length - name_length - 1;
            if (value_length >= size)
                return false;
            memcpy(out, line + name_length + 1, value_length);
            out[value_length] = '\0';
            return true;
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

static bool info_number(const char *info, const char *name, int64_t *out)
{
    char text[32];
    char *end;
    if (!info_field(info, name, text, sizeof text))
        return false;
    long long value = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || value < 0)
        return false;
    *out = value;
    return true;
}

/* An error or unexpected reply to INFO: logged once, the check ends. */
static bool info_text(struct redis_eviction *eviction, const struct redisReply *reply,
                      const char *section)
{
    if (reply != NULL && reply->type == REDIS_REPLY_STRING)
        return true;
    if (reply != NULL && !eviction->refused_logged) {
        log_warning("redis: INFO %s refused (%s): whether Redis may evict duewatch's keys is "
                    "not checked",
                    section, reply->type == REDIS_REPLY_ERROR ? reply->str : "not a text");
        eviction->refused_logged = true;
    }
    return false;
}

static void on_memory(struct redisReply *reply, void *privdata)
{
    struct redis_eviction *eviction = privdata;
    eviction->memory_read =
        info_text(eviction, reply, "memory") &&
        info_number(reply->str, "maxmemory", &eviction->maxmemory) &&
        info_field(reply->str, "maxmemory_policy", eviction->policy, sizeof eviction->policy);
}

/* Logs a change of what may evict: a warning while it may, once when no
 * longer. */
static void report_policy(struct redis_eviction *eviction, bool may_evict)
{
    bool warned = eviction->logged_policy[0] != '\0';
    if (may_evict && (!warned || strcmp(eviction->logged_policy, eviction->policy) != 0 ||
                      eviction->logged_maxmemory != eviction->maxmemory)) {
        log_warning("redis: maxmemory-policy %s with maxmemory %" PRId64
                    " bytes: Redis may evict duewatch's keys when full (running clocks, event "
                    "ids, alerts in the outbox), and what it evicts is lost without a word; set "
                    "maxmemory-policy noeviction (README \"From the source tree\")",
                    eviction->policy, eviction->maxmemory);
        snprintf(eviction->logged_policy, sizeof eviction->logged_policy, "%s",
                 eviction->policy);
        eviction->logged_maxmemory = eviction->maxmemory;
    } else if (!may_evict && warned) {
        log_info("redis: Redis no longer evicts keys (maxmemory-policy %s, maxmemory %" PRId64
                 " bytes)",
                 eviction->policy, eviction->maxmemory);
        eviction->logged_policy[0] = '\0';
    }
}

static void report_evictions(const struct redis_eviction *eviction, int64_t evicted)
{
    if (!eviction->stats.known && evicted > 0)
        log_warning("redis: Redis has evicted %" PRId64 " keys since it started (INFO stats "
                    "evicted_keys): any of duewatch's among them is lost (a clock, event ids, "
                    "an alert in the outbox)",
                    evicted);
    else if (eviction->stats.known && evicted > eviction->stats.evicted_keys)
        log_warning("redis: Redis evicted %" PRId64 " keys since the last check (INFO stats "
                    "evicted_keys %" PRId64 "): any of duewatch's among them is lost (a clock, "
                    "event ids, an alert in the outbox)",
                    evicted - eviction->stats.evicted_keys, evicted);
}

static void on_stats(struct redisReply *reply, void *privdata)
{
    struct redis_eviction *eviction = privdata;
    eviction->in_flight = false;
    int64_t evicted;
    if (!eviction->memory_read || !info_text(eviction, reply, "stats") ||
        !info_number(reply->str, "evicted_keys", &evicted))
        return;
    bool may_evict = eviction->maxmemory > 0 && strcmp(eviction->policy, "noeviction") != 0;
    report_policy(eviction, may_evict);
    report_evictions(eviction, evicted);
    eviction->stats = (struct redis_eviction_stats){true, may_evict, evicted};
}

void redis_eviction_check(struct redis_eviction *eviction)
{
    if (eviction->in_flight || !redis_client_is_ready(eviction->redis))
        return;
    static const char *memory[2] = {"INFO", "memory"}, *stats[2] = {"INFO", "stats"};
    static const size_t memory_lengths[2] = {4, 6}, stats_lengths[2] = {4, 5};
    eviction->memory_read = false;
    if (redis_client_send(eviction->redis, on_memory, eviction, 2, memory, memory_lengths) == 0 &&
        redis_client_send(eviction->redis, on_stats, eviction, 2, stats, stats_lengths) == 0)
        eviction->in_flight = true;
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    redis_eviction_check(arg);
}

struct redis_eviction *redis_eviction_create(struct event_base *base, struct redis_client *redis)
{
    struct redis_eviction *eviction = calloc(1, sizeof *eviction);
    if (eviction == NULL)
        goto fail;
    eviction->redis = redis;
    eviction->stats.evicted_keys = -1;
    eviction->timer = event_new(base, -1, EV_PERSIST, timer_fired, eviction);
    struct timeval interval = {CHECK_INTERVAL_MS / 1000, (CHECK_INTERVAL_MS % 1000) * 1000};
    if (eviction->timer == NULL || event_add(eviction->timer, &interval) != 0)
        goto fail;
    return eviction;
fail:
    redis_eviction_destroy(eviction);
    return NULL;
}

void redis_eviction_destroy(struct redis_eviction *eviction)
{
    if (eviction == NULL)
        return;
    if (eviction->timer)
        event_free(eviction->timer);
    free(eviction);
}

void redis_eviction_get_stats(const struct redis_eviction *eviction,
                              struct redis_eviction_stats *out)
{
    *out = eviction->stats;
}
