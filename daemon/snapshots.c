/* End-of-day snapshots (see snapshots.h): a chain of Redis requests, one in
 * flight at a time: GET the marker -> snapshot_read.lua for the next day ->
 * the counts computed here -> apply_effects.lua (the marker checked to be as
 * read) -> the next day, until the daemon's time. */
#include "snapshots.h"

#include "calendar.h"
#include "config.h"
#include "counter_keys.h"
#include "effects.h"
#include "formats.h"
#include "log.h"
#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_MAX 160

struct snapshots {
    struct redis_client *redis;
    const struct config *config;
    struct effects *effects;
    bool in_flight;
    bool marker_known;
    char marker[16];  /* the day last snapshotted, as stored; "" none */
    int64_t now_ms;   /* the latest daemon time told; -1 none */
    int64_t earliest_applied_ms; /* of the events this daemon applied; -1 none */
    day_number day;   /* the day being snapshotted, or the first marker */
    bool counting;    /* day is a snapshot (not the first marker) */
    size_t read_days; /* the day buckets after it the read asked for */
    uint64_t taken;
};

static void step(struct snapshots *snapshots);

struct snapshots *snapshots_create(struct redis_client *redis, const struct config *config)
{
    struct snapshots *snapshots = calloc(1, sizeof *snapshots);
    if (snapshots == NULL)
        return NULL;
    snapshots->redis = redis;
    snapshots->config = config;
    snapshots->now_ms = -1;
    snapshots->earliest_applied_ms = -1;
    snapshots->effects = effects_create();
    if (snapshots->effects == NULL) {
        snapshots_destroy(snapshots);
        return NULL;
    }
    return snapshots;
}

void snapshots_destroy(struct snapshots *snapshots)
{
    if (snapshots == NULL)
        return;
    effects_destroy(snapshots->effects);
    free(snapshots);
}

void snapshots_set_config(struct snapshots *snapshots, const struct config *config)
{
    snapshots->config = config;
}

uint64_t snapshots_taken(const struct snapshots *snapshots) { return snapshots->taken; }

int64_t snapshots_next_end(int64_t now_ms)
{
    return calendar_day_start_ms(calendar_local_day(now_ms) + 1);
}

void snapshots_note_applied(struct snapshots *snapshots, int64_t earliest_ms)
{
    if (earliest_ms >= 0 &&
        (snapshots->earliest_applied_ms < 0 || earliest_ms < snapshots->earliest_applied_ms))
        snapshots->earliest_applied_ms = earliest_ms;
}

void snapshots_time_reached(struct snapshots *snapshots, int64_t now_ms)
{
    if (now_ms > snapshots->now_ms)
        snapshots->now_ms = now_ms;
    if (!snapshots->in_flight)
        step(snapshots);
}

/* A request failed: the chain stops, and starts again from the marker the
 * next time the daemon's time is told. */
static void give_up(struct snapshots *snapshots, const char *what, const struct redisReply *reply)
{
    snapshots->in_flight = false;
    snapshots->marker_known = false;
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_error("snapshots: %s failed: %s", what, reply->str);
}

static void send_or_give_up(struct snapshots *snapshots, redis_reply_callback callback,
                            int argc, const char **argv, const size_t *lengths)
{
    snapshots->in_flight = true;
    if (argc < 0 || redis_client_send(snapshots->redis, callback, snapshots, argc, argv,
                                      lengths) != 0)
        give_up(snapshots, "a request", NULL);
}

/* ---- writing ---- */

static void written(struct redisReply *reply, void *privdata)
{
    struct snapshots *snapshots = privdata;
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "STALE", 5) == 0) {
        snapshots->in_flight = false; /* another daemon wrote it: read again */
        snapshots->marker_known = false;
        step(snapshots);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        give_up(snapshots, "writing", reply);
        return;
    }
    snapshots->in_flight = false;
    calendar_format_day(snapshots->day, snapshots->marker, sizeof snapshots->marker);
    if (snapshots->counting) /* the first marker is a start, not a snapshot */
        snapshots->taken++;
    step(snapshots);
}

/* Writes the marker `day` (checked to be as read) with what the effects
 * hold. */
static void write_marker(struct snapshots *snapshots, day_number day, bool counting)
{
    struct effects *effects = snapshots->effects;
    char key[COUNTER_KEY_MAX], text[16];
    snprintf(key, sizeof key, "%ssnapshot", snapshots->config->key_prefix);
    calendar_format_day(day, text, sizeof text);
    bool ok = (snapshots->marker[0] ? effects_expect_value(effects, key, snapshots->marker,
                                                           strlen(snapshots->marker))
                                    : effects_expect_absent(effects, key)) == 0 &&
              effects_set_value(effects, key, text, strlen(text)) == 0;
    const char **argv = NULL;
    const size_t *lengths = NULL;
    int argc = ok ? effects_build(effects,
                                  redis_client_script_sha(snapshots->redis,
                                                          REDIS_SCRIPT_APPLY_EFFECTS),
                                  "", 0, &argv, &lengths)
                  : -1;
    snapshots->day = day;
    snapshots->counting = counting;
    send_or_give_up(snapshots, written, argc, argv, lengths);
}

/* ---- computing ---- */

/* A running count of the snapshot: "<rule>:<unit>" as read. */
struct snapshot_count {
    const char *name; /* in the reply */
    int64_t running, overdue;
};

static int64_t reply_integer(const struct redisReply *reply)
{
    if (reply->type == REDIS_REPLY_INTEGER)
        return reply->integer;
    if (reply->type == REDIS_REPLY_STRING)
        return strtoll(reply->str, NULL, 10);
    return 0; /* nil: absent, 0 */
}

static int compare_counts(const void *a, const void *b)
{
    return strcmp(((const struct snapshot_count *)a)->name,
                  ((const struct snapshot_count *)b)->name);
}

/* The count named by the first `length` bytes of `text`, NULL when none. */
static struct snapshot_count *find_count(struct snapshot_count *counts, size_t count,
                                         const char *text, size_t length)
{
    char name[FIELD_MAX];
    if (length >= sizeof name)
        return NULL;
    memcpy(name, text, length);
    name[length] = '\0';
    struct snapshot_count key = {name, 0, 0};
    return bsearch(&key, counts, count, sizeof *counts, compare_counts);
}

/* Applies a later day's change to "<rule>:<unit>..." (text: the rule and
 * unit, then ':' and the rest) and to "<rule>:_all". */
static void apply_change(struct snapshot_count *counts, size_t count, const char *text,
                         int64_t running, int64_t overdue)
{
    const char *rule_end = strchr(text, ':');
    const char *unit_end = rule_end ? strchr(rule_end + 1, ':') : NULL;
    if (unit_end == NULL)
        return;
    char all[FIELD_MAX];
    int length = snprintf(all, sizeof all, "%.*s:_all", (int)(rule_end - text), text);
    struct snapshot_count *targets[2] = {
        find_count(counts, count, text, (size_t)(unit_end - text)),
        length > 0 ? find_count(counts, count, all, (size_t)length) : NULL};
    for (int t = 0; t < 2; t++)
        if (targets[t]) {
            targets[t]->running += running;
            targets[t]->overdue += overdue;
        }
}

/* One later day's changes (3 replies): its starts and stops come back out
 * of the running counts; the clocks it took off the overdue list from a
 * deadline before the day's end go back in, those it listed again at one
 * come out. */
static void apply_day(struct snapshot_count *counts, size_t count, struct redisReply **day)
{
    const struct redisReply *changes = day[0];
    for (size_t i = 0; changes->type == REDIS_REPLY_ARRAY && i + 1 < changes->elements; i += 2) {
        const char *field = changes->element[i]->str;
        const char *kind = field ? strrchr(field, ':') : NULL;
        int64_t n = reply_integer(changes->element[i + 1]);
        if (kind)
            apply_change(counts, count, field, strcmp(kind, ":started") == 0 ? -n : n, 0);
    }
    for (int list = 1; list <= 2; list++)
        for (size_t i = 0; day[list]->type == REDIS_REPLY_ARRAY && i < day[list]->elements; i++)
            if (day[list]->element[i]->str)
                apply_change(counts, count, day[list]->element[i]->str, 0, list == 1 ? 1 : -1);
}

/* The running and overdue counts of snapshots->day into its buckets. */
static int write_counts(struct snapshots *snapshots, const struct snapshot_count *counts,
                        size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const char *colon = strchr(counts[i].name, ':');
        if (colon == NULL || (counts[i].running <= 0 && counts[i].overdue <= 0))
            continue;
        char key[COUNTER_KEY_MAX], field[FIELD_MAX], text[24];
        counter_day_key(snapshots->config->key_prefix, snapshots->day, colon + 1, key,
                        sizeof key);
        const char *const names[2] = {"running", "overdue"};
        const int64_t values[2] = {counts[i].running > 0 ? counts[i].running : 0,
                                   counts[i].overdue > 0 ? counts[i].overdue : 0};
        for (int v = 0; v < 2; v++) {
            snprintf(field, sizeof field, "%s.%.*s", names[v], (int)(colon - counts[i].name),
                     counts[i].name);
            snprintf(text, sizeof text, "%" PRId64, values[v]);
            if (effects_hash(snapshots->effects, key, field, text, strlen(text)) != 0)
                return -1;
        }
        if (effects_expire(snapshots->effects, key,
                           (int64_t)snapshots->config->counter_retention_days * 86400) != 0)
            return -1;
    }
    return 0;
}

/* The reply's counts (element 1), less the later days' changes. */
static int compute(struct snapshots *snapshots, const struct redisReply *reply, size_t *written)
{
    const struct redisReply *listed = reply->element[1];
    if (listed->type != REDIS_REPLY_ARRAY || reply->elements != 2 + 3 * snapshots->read_days)
        return -1;
    size_t count = listed->elements / 3;
    struct snapshot_count *counts = calloc(count + 1, sizeof *counts);
    if (counts == NULL)
        return -1;
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        struct redisReply **values = &listed->element[3 * i];
        if (values[0]->type != REDIS_REPLY_STRING)
            continue;
        counts[kept++] = (struct snapshot_count){values[0]->str, reply_integer(values[1]),
                                                 reply_integer(values[2])};
    }
    qsort(counts, kept, sizeof *counts, compare_counts);
    for (size_t d = 0; d < snapshots->read_days; d++)
        apply_day(counts, kept, &reply->element[2 + 3 * d]);
    effects_reset(snapshots->effects);
    int result = write_counts(snapshots, counts, kept);
    *written = kept;
    free(counts);
    return result;
}

static void read_replied(struct redisReply *reply, void *privdata)
{
    struct snapshots *snapshots = privdata;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        give_up(snapshots, "reading", reply);
        return;
    }
    const struct redisReply *marker = reply->element[0];
    if (marker->type != REDIS_REPLY_STRING || strcmp(marker->str, snapshots->marker) != 0) {
        snapshots->in_flight = false; /* changed since: start from it again */
        snapshots->marker_known = false;
        step(snapshots);
        return;
    }
    size_t counted = 0;
    if (compute(snapshots, reply, &counted) != 0) {
        give_up(snapshots, "computing", NULL);
        return;
    }
    char name[16];
    calendar_format_day(snapshots->day, name, sizeof name);
    log_info("snapshots: end of %s recorded (%zu running counts)", name, counted);
    write_marker(snapshots, snapshots->day, true);
}

/* ---- reading ---- */

/* snapshot_read.lua for snapshots->day, with the day buckets after it up to
 * the daemon's day. */
static void read_day(struct snapshots *snapshots)
{
    day_number today = calendar_local_day(snapshots->now_ms);
    size_t days = (size_t)(today - snapshots->day), argc = 0;
    snapshots->read_days = days;
    const char **argv = calloc(8 + days, sizeof *argv);
    size_t *lengths = calloc(8 + days, sizeof *lengths);
    char (*names)[16] = calloc(days + 1, sizeof *names);
    char version[24], day_end[24], count[24];
    if (argv == NULL || lengths == NULL || names == NULL) {
        give_up(snapshots, "a request", NULL);
    } else {
        snprintf(version, sizeof version, "%d", SCRIPT_ARGS_VERSION);
        snprintf(day_end, sizeof day_end, "%" PRId64, calendar_day_start_ms(snapshots->day + 1));
        snprintf(count, sizeof count, "%zu", days);
        const char *head[7] = {"EVALSHA",
                               redis_client_script_sha(snapshots->redis,
                                                       REDIS_SCRIPT_SNAPSHOT_READ),
                               "0", version, snapshots->config->key_prefix, day_end, count};
        for (; argc < 7; argc++)
            argv[argc] = head[argc];
        for (size_t d = 0; d < days; d++) {
            calendar_format_day(snapshots->day + 1 + (day_number)d, names[d], sizeof names[d]);
            argv[argc++] = names[d];
        }
        for (size_t i = 0; i < argc; i++)
            lengths[i] = strlen(argv[i]);
        send_or_give_up(snapshots, read_replied, (int)argc, argv, lengths);
    }
    free(argv); /* hiredis copied the arguments */
    free(lengths);
    free(names);
}

static void marker_replied(struct redisReply *reply, void *privdata)
{
    struct snapshots *snapshots = privdata;
    if (reply == NULL || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
        give_up(snapshots, "reading the marker", reply);
        return;
    }
    snapshots->in_flight = false;
    snapshots->marker_known = true;
    snprintf(snapshots->marker, sizeof snapshots->marker, "%s",
             reply->type == REDIS_REPLY_STRING ? reply->str : "");
    step(snapshots);
}

/* The next request of the chain, if any is due. */
static void step(struct snapshots *snapshots)
{
    if (snapshots->now_ms < 0)
        return;
    effects_reset(snapshots->effects);
    if (!snapshots->marker_known) {
        char key[COUNTER_KEY_MAX];
        snprintf(key, sizeof key, "%ssnapshot", snapshots->config->key_prefix);
        const char *argv[2] = {"GET", key};
        const size_t lengths[2] = {3, strlen(key)};
        send_or_give_up(snapshots, marker_replied, 2, argv, lengths);
        return;
    }
    day_number today = calendar_local_day(snapshots->now_ms), last;
    const char *cursor = snapshots->marker;
    if (!calendar_read_day(&cursor, &last)) {
        /* none yet (an empty Redis, or the first start of this release):
         * from the earliest event applied on, else from today on */
        day_number first = today;
        if (snapshots->earliest_applied_ms >= 0 &&
            calendar_local_day(snapshots->earliest_applied_ms) < first)
            first = calendar_local_day(snapshots->earliest_applied_ms);
        write_marker(snapshots, first - 1, false);
        return;
    }
    if (last + 1 >= today)
        return; /* the day after the last snapshotted has not ended */
    snapshots->day = last + 1;
    if (today - snapshots->day > SNAPSHOT_CATCH_UP_DAYS) {
        snapshots->day = today - SNAPSHOT_CATCH_UP_DAYS;
        log_warning("snapshots: the last end of day recorded is %s; the days up to %d days ago "
                    "are skipped (their backlog is no longer known)",
                    snapshots->marker, SNAPSHOT_CATCH_UP_DAYS);
    }
    read_day(snapshots);
}
