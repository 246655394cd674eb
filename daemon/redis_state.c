/* Redis's state under the daemon: generation marker, rollbacks and losses
 * (see redis_state.h). */
#include "redis_state.h"

#include "calendar.h"
#include "config.h"
#include "kafka_consumer.h"
#include "log.h"
#include "redis_client.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define CHECK_INTERVAL_MS 5000
#define LOST_PREFIX "lost "
#define MARKER_MAX 128

/* What a verification found, decided once the positions are read. */
enum verdict { VERDICT_KEEP, VERDICT_CREATE, VERDICT_LOST };

struct redis_state {
    const struct config *config;
    struct redis_client *redis;      /* not owned */
    struct kafka_consumer *consumer; /* not owned */
    void (*drop_batches)(void *arg);
    void *drop_arg;
    struct event *check_timer;
    char known[MARKER_MAX];  /* the marker of the state this daemon works on; "" = none yet */
    char marker[MARKER_MAX]; /* read by the verification under way; "" = absent */
    bool marker_unreadable;  /* ... or GET failed (not a string?): not verified */
    char written[MARKER_MAX + 64]; /* what the verification writes back */
    enum verdict verdict;
    rd_kafka_topic_partition_list_t *seeks; /* owned; where the verification moves partitions */
    bool check_in_flight;
    bool check_failed; /* the periodic check under way asked for a reconnect */
    struct redis_state_stats stats;
};

static void key_name(const struct redis_state *state, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s%s", state->config->key_prefix, name);
}

static void new_marker(char *out, size_t size)
{
    uint64_t random[2] = {0, 0};
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        random[0] = (uint64_t)now.tv_sec ^ ((uint64_t)now.tv_nsec << 20);
        random[1] = (uint64_t)now.tv_nsec;
    }
    snprintf(out, size, "%016" PRIx64 "%016" PRIx64, random[0], random[1]);
}

/* Redis's position of topic:partition in an HGETALL reply, or -1. */
static int64_t redis_position(const struct redisReply *offsets, const char *topic,
                              int32_t partition)
{
    char field[300];
    snprintf(field, sizeof field, "%s:%" PRId32, topic, partition);
    for (size_t i = 0; i + 1 < offsets->elements; i += 2) {
        const struct redisReply *name = offsets->element[i], *value = offsets->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING ||
            strcmp(name->str, field) != 0)
            continue;
        char *end;
        long long offset = strtoll(value->str, &end, 10);
        return *end == '\0' && offset >= 0 ? offset : -1;
    }
    return -1;
}

/* Where every owned partition goes: Redis's position (the beginning when it
 * holds none), or where it is when that is not behind.  Returns the list when
 * one partition at least must go back (or when `recovering`: all go to
 * Redis's positions), else NULL. */
static rd_kafka_topic_partition_list_t *plan_seeks(const struct redis_state *state,
                                                   const struct redisReply *offsets,
                                                   bool recovering)
{
    const rd_kafka_topic_partition_list_t *owned = kafka_consumer_assignment(state->consumer);
    if (owned == NULL || owned->cnt == 0)
        return NULL;
    rd_kafka_topic_partition_list_t *seeks = rd_kafka_topic_partition_list_new(owned->cnt);
    bool behind = recovering;
    for (int i = 0; i < owned->cnt; i++) {
        const rd_kafka_topic_partition_t *entry = &owned->elems[i];
        int64_t held = redis_position(offsets, entry->topic, entry->partition);
        int64_t applied = entry->offset; /* < 0: nothing applied by this daemon */
        if (applied >= 0 && (held < 0 || held < applied))
            behind = true;
        int64_t target = held < 0 ? RD_KAFKA_OFFSET_BEGINNING
                         : (applied >= 0 && applied < held && !recovering) ? applied
                                                                            : held;
        rd_kafka_topic_partition_list_add(seeks, entry->topic, entry->partition)->offset =
            target;
    }
    if (!behind) {
        rd_kafka_topic_partition_list_destroy(seeks);
        return NULL;
    }
    return seeks;
}

/* Decides from the marker read and the positions; fills state->written. */
static enum verdict decide(struct redis_state *state)
{
    bool recorded_lost = strncmp(state->marker, LOST_PREFIX, strlen(LOST_PREFIX)) == 0;
    bool absent = state->marker[0] == '\0';
    if (recorded_lost) {
        snprintf(state->written, sizeof state->written, "%s", state->marker);
        return VERDICT_LOST;
    }
    /* The marker is written before anything else: a copy of the state this
     * daemon worked on has it, so a Redis without it (an empty one, or one
     * flushed and written to since) is not that state. */
    if (absent && state->known[0] != '\0') {
        snprintf(state->written, sizeof state->written, LOST_PREFIX "%.64s %" PRId64,
                 state->known, calendar_wall_now_ms());
        return VERDICT_LOST;
    }
    if (absent) {
        new_marker(state->written, sizeof state->written);
        return VERDICT_CREATE;
    }
    snprintf(state->written, sizeof state->written, "%s", state->marker);
    return VERDICT_KEEP;
}

static void on_written(struct redisReply *reply, void *privdata);

/* Writes the marker back (the write probe) and waits for its answer. */
static void write_marker(struct redis_state *state)
{
    char key[160];
    key_name(state, "generation", key, sizeof key);
    const char *mode = state->verdict == VERDICT_CREATE ? "NX" : NULL;
    const char *argv[4] = {"SET", key, state->written, mode};
    size_t lengths[4] = {3, strlen(key), strlen(state->written), mode ? 2 : 0};
    if (redis_client_send_unverified(state->redis, on_written, state, mode ? 4 : 3, argv,
                                     lengths) != 0) {
        state->check_in_flight = false;
        redis_client_verified(state->redis, false);
    }
}

static void on_offsets(struct redisReply *reply, void *privdata)
{
    struct redis_state *state = privdata;
    if (reply == NULL) {
        state->check_in_flight = false; /* connection lost: the next one verifies */
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || state->marker_unreadable) {
        if (reply->type != REDIS_REPLY_ARRAY)
            log_error("redis: reading the positions failed: %s",
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        state->check_in_flight = false;
        redis_client_verified(state->redis, false);
        return;
    }
    state->verdict = decide(state);
    if (state->seeks)
        rd_kafka_topic_partition_list_destroy(state->seeks);
    state->seeks = state->verdict == VERDICT_LOST ? NULL
                                                  : plan_seeks(state, reply, state->stats.lost);
    write_marker(state);
}

static void on_marker(struct redisReply *reply, void *privdata)
{
    struct redis_state *state = privdata;
    state->marker[0] = '\0';
    state->marker_unreadable = reply && reply->type == REDIS_REPLY_ERROR;
    if (state->marker_unreadable)
        log_error("redis: reading the generation marker failed: %s", reply->str);
    if (reply && reply->type == REDIS_REPLY_STRING)
        snprintf(state->marker, sizeof state->marker, "%.*s", (int)reply->len, reply->str);
}

/* The redis_verify_callback: reads the marker and the positions. */
static void verify(void *arg)
{
    struct redis_state *state = arg;
    char marker_key[160], offsets_key[160];
    key_name(state, "generation", marker_key, sizeof marker_key);
    key_name(state, "offsets", offsets_key, sizeof offsets_key);
    const char *get[2] = {"GET", marker_key};
    const char *hgetall[2] = {"HGETALL", offsets_key};
    size_t get_lengths[2] = {3, strlen(marker_key)};
    size_t hgetall_lengths[2] = {7, strlen(offsets_key)};
    state->check_in_flight = true;
    if (redis_client_send_unverified(state->redis, on_marker, state, 2, get, get_lengths) != 0 ||
        redis_client_send_unverified(state->redis, on_offsets, state, 2, hgetall,
                                     hgetall_lengths) != 0) {
        state->check_in_flight = false;
        redis_client_verified(state->redis, false);
    }
}

/* Redis refused the marker's write. */
static void write_refused(struct redis_state *state, const struct redisReply *reply)
{
    bool readonly = reply && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "READONLY");
    if (readonly && !state->stats.readonly)
        log_error("redis: refuses writes (%s); not ready, consumption paused until it accepts "
                  "them (a replica after a switch-over? point redis_host at the primary)",
                  reply->str);
    else if (!readonly && reply)
        log_error("redis: writing the generation marker failed: %s",
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    state->stats.readonly = readonly;
    redis_client_verified(state->redis, false);
}

/* Verified: the state is lost (held), or kept, the partitions sought back
 * when Redis is behind. */
static void conclude(struct redis_state *state)
{
    if (state->verdict == VERDICT_LOST) {
        if (!state->stats.lost) {
            state->stats.lost = true;
            state->stats.losses++;
            log_error("redis: state lost: Redis lacks the generation marker this daemon "
                      "worked with (an empty Redis?) or records a loss (%s); consumption held "
                      "and /readyz not ready until an operator recovers it (README: Recovering "
                      "an empty Redis, `duewatch recover`)",
                      state->written);
        }
        state->drop_batches(state->drop_arg);
        redis_client_verified(state->redis, false);
        return;
    }
    if (state->seeks) {
        state->drop_batches(state->drop_arg);
        kafka_consumer_seek(state->consumer, state->seeks);
        if (!state->stats.lost) {
            state->stats.rollbacks++;
            log_warning("redis: rolled back: its positions are behind what this daemon "
                        "applied; %d owned partition(s) consumed again from the positions in "
                        "Redis (batches not applied dropped)",
                        state->seeks->cnt);
        }
        rd_kafka_topic_partition_list_destroy(state->seeks);
        state->seeks = NULL;
    }
    if (state->stats.lost)
        log_notice("redis: state recovered (generation %s): owned partitions consumed from the "
                   "positions in Redis",
                   state->written);
    state->stats.lost = false;
    snprintf(state->known, sizeof state->known, "%.*s", (int)sizeof state->known - 1,
             state->written);
    redis_client_verified(state->redis, true);
}

static void on_written(struct redisReply *reply, void *privdata)
{
    struct redis_state *state = privdata;
    state->check_in_flight = false;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_NIL && state->verdict == VERDICT_CREATE) {
        /* Another instance set up the empty Redis first: adopt its marker. */
        log_info("redis: another instance wrote the generation marker first; reading it");
        verify(state);
        return;
    }
    if (reply->type != REDIS_REPLY_STATUS) {
        write_refused(state, reply);
        return;
    }
    state->stats.readonly = false;
    conclude(state);
}

/* The periodic check's answers: the marker must be ours, and a write (DEL
 * of a key nobody sets: changes nothing) must be accepted. */
static void on_checked_marker(struct redisReply *reply, void *privdata)
{
    struct redis_state *state = privdata;
    if (reply == NULL || (reply->type == REDIS_REPLY_STRING && strcmp(reply->str, state->known) == 0))
        return;
    log_warning("redis: its generation marker changed or vanished; reconnecting to verify its "
                "state");
    state->check_failed = true;
    redis_client_reconnect(state->redis);
}

static void on_checked_offsets(struct redisReply *reply, void *privdata)
{
    struct redis_state *state = privdata;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || state->check_failed)
        return;
    /* Every write sent before this read was answered: a position behind
     * what was applied is a rollback the connection did not see. */
    rd_kafka_topic_partition_list_t *seeks = plan_seeks(state, reply, false);
    if (seeks == NULL)
        return;
    rd_kafka_topic_partition_list_destroy(seeks);
    log_warning("redis: its positions went back; reconnecting to verify its state");
    state->check_failed = true;
    redis_client_reconnect(state->redis);
}

static void on_checked_write(struct redisReply *reply, void *privdata)
{
    struct redis_state *state = privdata;
    state->check_in_flight = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR || state->check_failed)
        return;
    log_warning("redis: a write was refused (%s); reconnecting to verify", reply->str);
    redis_client_reconnect(state->redis);
}

static void check_timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_state *state = arg;
    if (state->check_in_flight || state->known[0] == '\0' || !redis_client_is_ready(state->redis))
        return;
    state->check_failed = false;
    char marker_key[160], offsets_key[160], probe_key[160];
    key_name(state, "generation", marker_key, sizeof marker_key);
    key_name(state, "offsets", offsets_key, sizeof offsets_key);
    key_name(state, "generation:probe", probe_key, sizeof probe_key);
    const char *get[2] = {"GET", marker_key};
    const char *hgetall[2] = {"HGETALL", offsets_key};
    const char *del[2] = {"DEL", probe_key};
    size_t get_lengths[2] = {3, strlen(marker_key)};
    size_t hgetall_lengths[2] = {7, strlen(offsets_key)};
    size_t del_lengths[2] = {3, strlen(probe_key)};
    if (redis_client_send(state->redis, on_checked_marker, state, 2, get, get_lengths) == 0 &&
        redis_client_send(state->redis, on_checked_offsets, state, 2, hgetall,
                          hgetall_lengths) == 0 &&
        redis_client_send(state->redis, on_checked_write, state, 2, del, del_lengths) == 0)
        state->check_in_flight = true;
}

struct redis_state *redis_state_create(struct event_base *base, const struct config *config,
                                       struct redis_client *redis,
                                       struct kafka_consumer *consumer,
                                       void (*drop_batches)(void *arg), void *arg, char *err,
                                       size_t err_size)
{
    struct redis_state *state = calloc(1, sizeof *state);
    if (state == NULL)
        goto fail;
    state->config = config;
    state->redis = redis;
    state->consumer = consumer;
    state->drop_batches = drop_batches;
    state->drop_arg = arg;
    state->check_timer = event_new(base, -1, EV_PERSIST, check_timer_fired, state);
    struct timeval interval = {CHECK_INTERVAL_MS / 1000, (CHECK_INTERVAL_MS % 1000) * 1000};
    if (state->check_timer == NULL || event_add(state->check_timer, &interval) != 0)
        goto fail;
    redis_client_set_verifier(redis, verify, state);
    return state;
fail:
    snprintf(err, err_size, "out of memory");
    redis_state_destroy(state);
    return NULL;
}

void redis_state_destroy(struct redis_state *state)
{
    if (state == NULL)
        return;
    if (state->check_timer)
        event_free(state->check_timer);
    if (state->seeks)
        rd_kafka_topic_partition_list_destroy(state->seeks);
    free(state);
}

void redis_state_set_config(struct redis_state *state, const struct config *config)
{
    state->config = config;
}

void redis_state_get_stats(const struct redis_state *state, struct redis_state_stats *out)
{
    *out = state->stats;
}
