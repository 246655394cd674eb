/* Provisional clocks (see provisional.h): the refresh as a chain of Redis
 * requests, HSCAN -> MGET -> EVALSHA recompute_clocks -> next page, one in
 * flight at a time.  A reply that comes back after the refresh was
 * restarted or stopped is dropped (the generation tells). */
#include "provisional.h"

#include "clock_setup.h"
#include "config.h"
#include "log.h"
#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SIZE 256
#define PARTITION_KEY_MAX 300
#define PASSES_MAX 3
#define FIELDS_PER_CLOCK 7

/* One listed clock of the page being worked on. */
struct listed_clock {
    char *member; /* "<rule>:<key>", split in place into rule and key */
    const char *rule, *key;
    char *entry, *record;
    bool recomputed;
    char last_day[16], base_deadline[24];
    bool still_provisional;
};

struct provisional {
    struct redis_client *redis;
    const struct config *config;
    const struct clock_setup *setup;
    struct provisional_callbacks callbacks;
    char (*partitions)[PARTITION_KEY_MAX];
    size_t partition_count, current;
    char cursor[32];
    int pass;
    bool changed_meanwhile; /* a page of this pass had clocks changed meanwhile */
    bool running, in_flight;
    uint64_t generation;
    struct listed_clock page[PAGE_SIZE];
    size_t page_count;
    uint64_t recomputed_this_refresh, failed_this_refresh;
    char first_failure[256];
    struct provisional_stats stats;
};

static void clear_page(struct provisional *provisional)
{
    for (size_t i = 0; i < provisional->page_count; i++) {
        free(provisional->page[i].member);
        free(provisional->page[i].entry);
        free(provisional->page[i].record);
    }
    memset(provisional->page, 0, sizeof provisional->page);
    provisional->page_count = 0;
}

static void step(struct provisional *provisional);

/* Sends a command whose reply goes to `callback` for this generation. */
struct request {
    struct provisional *provisional;
    uint64_t generation;
    void (*handle)(struct provisional *provisional, struct redisReply *reply);
};

static void request_replied(struct redisReply *reply, void *privdata)
{
    struct request *request = privdata;
    struct provisional *provisional = request->provisional;
    bool current = request->generation == provisional->generation;
    void (*handle)(struct provisional *, struct redisReply *) = request->handle;
    free(request);
    provisional->in_flight = false;
    if (!current) {
        step(provisional); /* restarted meanwhile: begin the new refresh */
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Redis went away or refused: the next catch-up starts again. */
        log_warning("provisional clocks: refresh interrupted (%s)",
                    reply ? reply->str : "connection lost");
        clear_page(provisional);
        provisional->running = false;
        return;
    }
    handle(provisional, reply);
}

static void send(struct provisional *provisional,
                 void (*handle)(struct provisional *, struct redisReply *), int argc,
                 const char **argv, const size_t *lengths)
{
    struct request *request = malloc(sizeof *request);
    if (request != NULL) {
        *request = (struct request){provisional, provisional->generation, handle};
        if (redis_client_send(provisional->redis, request_replied, request, argc, argv,
                              lengths) == 0) {
            provisional->in_flight = true;
            return;
        }
        free(request);
    }
    clear_page(provisional);
    provisional->running = false; /* Redis not ready: the next catch-up starts again */
}

static void list_key(const struct provisional *provisional, char *buf, size_t size)
{
    snprintf(buf, size, "%sprovisional:%s", provisional->config->key_prefix,
             provisional->partitions[provisional->current]);
}

static void finish_refresh(struct provisional *provisional)
{
    provisional->running = false;
    provisional->stats.refreshes_completed++;
    if (provisional->failed_this_refresh > 0)
        log_error("provisional clocks: %" PRIu64 " could not be recomputed with the calendar in "
                  "force and keep their deadline (first: %s)",
                  provisional->failed_this_refresh, provisional->first_failure);
    if (provisional->recomputed_this_refresh > 0)
        log_notice("provisional clocks: %" PRIu64 " recomputed with the calendar in force",
                   provisional->recomputed_this_refresh);
}

/* The page is done: the next page, the same partition again, or the next. */
static void advance(struct provisional *provisional)
{
    clear_page(provisional);
    if (strcmp(provisional->cursor, "0") == 0) {
        if (provisional->changed_meanwhile && provisional->pass + 1 < PASSES_MAX) {
            provisional->pass++;
        } else {
            provisional->current++;
            provisional->pass = 0;
        }
        provisional->changed_meanwhile = false;
    }
    step(provisional);
}

static void script_replied(struct provisional *provisional, struct redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 4) {
        uint64_t written = (uint64_t)reply->element[0]->integer;
        provisional->stats.clocks_recomputed += written;
        provisional->recomputed_this_refresh += written;
        if (reply->element[1]->integer > 0)
            provisional->changed_meanwhile = true;
        provisional->callbacks.applied(provisional->callbacks.arg, reply, 2);
    }
    advance(provisional);
}

static void note_failure(struct provisional *provisional, const struct listed_clock *clock,
                         const char *reason)
{
    provisional->stats.clocks_failed++;
    if (provisional->failed_this_refresh++ == 0)
        snprintf(provisional->first_failure, sizeof provisional->first_failure, "%s:%s: %s",
                 clock->rule, clock->key, reason);
}

/* Recomputes one listed clock from its record (started_at is field 5). */
static void recompute(struct provisional *provisional, struct listed_clock *clock)
{
    char err[200];
    const char *field = clock->record;
    for (int i = 0; i < 4 && field != NULL; i++) {
        field = strchr(field, '|');
        field = field ? field + 1 : NULL;
    }
    const char *last_day_field = field ? strchr(field, '|') : NULL;
    const char *base_field = last_day_field ? strchr(last_day_field + 1, '|') : NULL;
    if (base_field == NULL) {
        note_failure(provisional, clock, "malformed clock record");
        return;
    }
    struct clock_recompute result;
    if (clock_setup_recompute(provisional->setup, clock->rule, clock->entry,
                              strtoll(field, NULL, 10),
                              (int32_t)strtol(last_day_field + 1, NULL, 10),
                              strtoll(base_field + 1, NULL, 10), &result, err, sizeof err) != 0) {
        note_failure(provisional, clock, err);
        return;
    }
    snprintf(clock->last_day, sizeof clock->last_day, "%" PRId32, result.last_day);
    snprintf(clock->base_deadline, sizeof clock->base_deadline, "%" PRId64,
             result.base_deadline_ms);
    clock->still_provisional = result.provisional;
    clock->recomputed = true;
}

static void send_recomputed(struct provisional *provisional)
{
    enum { HEAD = 11 };
    const char *argv[HEAD + PAGE_SIZE * FIELDS_PER_CLOCK];
    size_t lengths[HEAD + PAGE_SIZE * FIELDS_PER_CLOCK];
    char now[24], ttl[24], count[24];
    int64_t now_ms = provisional->callbacks.now(provisional->callbacks.arg);
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(ttl, sizeof ttl, "%" PRId64,
             (int64_t)provisional->config->counter_retention_days * 86400);
    const struct config *config = provisional->config;
    argv[0] = "EVALSHA";
    argv[1] = redis_client_script_sha(provisional->redis, REDIS_SCRIPT_RECOMPUTE_CLOCKS);
    argv[2] = "0";
    argv[3] = config->key_prefix;
    argv[4] = now;
    argv[5] = config->clock_mode == CLOCK_MODE_EVENT ? "event" : "wall";
    argv[6] = clock_setup_lua_calendar(provisional->setup);
    argv[7] = clock_setup_lua_rules(provisional->setup);
    argv[8] = ttl;
    argv[9] = provisional->partitions[provisional->current];
    argv[10] = count;
    int argc = HEAD, clocks = 0;
    for (size_t i = 0; i < provisional->page_count; i++) {
        struct listed_clock *clock = &provisional->page[i];
        if (!clock->recomputed)
            continue;
        argv[argc++] = clock->rule;
        argv[argc++] = clock->key;
        argv[argc++] = clock->entry;
        argv[argc++] = clock->record;
        argv[argc++] = clock->last_day;
        argv[argc++] = clock->base_deadline;
        argv[argc++] = clock->still_provisional ? "1" : "0";
        clocks++;
    }
    if (clocks == 0) {
        advance(provisional);
        return;
    }
    snprintf(count, sizeof count, "%d", clocks);
    for (int i = 0; i < argc; i++)
        lengths[i] = strlen(argv[i]);
    send(provisional, script_replied, argc, argv, lengths);
}

static void records_read(struct provisional *provisional, struct redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != provisional->page_count) {
        advance(provisional);
        return;
    }
    for (size_t i = 0; i < provisional->page_count; i++) {
        struct listed_clock *clock = &provisional->page[i];
        const struct redisReply *value = reply->element[i];
        if (value->type != REDIS_REPLY_STRING) {
            /* stopped: the script drops the entry (an empty record never
             * matches a clock that exists) */
            clock->record = strdup("");
            if (clock->record != NULL)
                snprintf(clock->last_day, sizeof clock->last_day, "0");
            clock->recomputed = clock->record != NULL;
            continue;
        }
        clock->record = strndup(value->str, value->len);
        if (clock->record != NULL)
            recompute(provisional, clock);
    }
    send_recomputed(provisional);
}

/* Takes the page's fields ("<rule>:<key>") and entries from an HSCAN reply. */
static bool take_page(struct provisional *provisional, const struct redisReply *pairs)
{
    for (size_t i = 0; i + 1 < pairs->elements && provisional->page_count < PAGE_SIZE; i += 2) {
        const struct redisReply *field = pairs->element[i], *value = pairs->element[i + 1];
        if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING)
            continue;
        struct listed_clock *clock = &provisional->page[provisional->page_count];
        clock->member = strndup(field->str, field->len);
        clock->entry = strndup(value->str, value->len);
        char *colon = clock->member ? strchr(clock->member, ':') : NULL;
        if (clock->member == NULL || clock->entry == NULL || colon == NULL) {
            bool out_of_memory = clock->member == NULL || clock->entry == NULL;
            free(clock->member);
            free(clock->entry);
            memset(clock, 0, sizeof *clock);
            if (out_of_memory)
                return false;
            continue; /* not "<rule>:<key>": not ours */
        }
        *colon = '\0';
        clock->rule = clock->member;
        clock->key = colon + 1;
        provisional->page_count++;
    }
    return true;
}

static void page_scanned(struct provisional *provisional, struct redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        advance(provisional);
        return;
    }
    snprintf(provisional->cursor, sizeof provisional->cursor, "%s", reply->element[0]->str);
    if (!take_page(provisional, reply->element[1]) || provisional->page_count == 0) {
        advance(provisional);
        return;
    }
    const char *argv[1 + PAGE_SIZE];
    size_t lengths[1 + PAGE_SIZE];
    char keys[PAGE_SIZE][200];
    argv[0] = "MGET";
    lengths[0] = 4;
    for (size_t i = 0; i < provisional->page_count; i++) {
        int length = snprintf(keys[i], sizeof keys[i], "%sclock:%s:%s",
                              provisional->config->key_prefix, provisional->page[i].rule,
                              provisional->page[i].key);
        argv[1 + i] = keys[i];
        lengths[1 + i] = length > 0 && (size_t)length < sizeof keys[i] ? (size_t)length : 0;
    }
    send(provisional, records_read, (int)provisional->page_count + 1, argv, lengths);
}

/* Asks for the next page of the current partition, or finishes. */
static void step(struct provisional *provisional)
{
    if (!provisional->running || provisional->in_flight)
        return;
    if (provisional->current >= provisional->partition_count) {
        finish_refresh(provisional);
        return;
    }
    char key[PARTITION_KEY_MAX + 64];
    list_key(provisional, key, sizeof key);
    const char *argv[] = {"HSCAN", key, provisional->cursor, "COUNT", "256"};
    size_t lengths[5];
    for (int i = 0; i < 5; i++)
        lengths[i] = strlen(argv[i]);
    send(provisional, page_scanned, 5, argv, lengths);
}

struct provisional *provisional_create(struct redis_client *redis, const struct config *config,
                                       const struct clock_setup *setup,
                                       const struct provisional_callbacks *callbacks)
{
    struct provisional *provisional = calloc(1, sizeof *provisional);
    if (provisional == NULL)
        return NULL;
    provisional->redis = redis;
    provisional->config = config;
    provisional->setup = setup;
    provisional->callbacks = *callbacks;
    return provisional;
}

void provisional_destroy(struct provisional *provisional)
{
    if (provisional == NULL)
        return;
    clear_page(provisional);
    free(provisional->partitions);
    free(provisional);
}

void provisional_set_config(struct provisional *provisional, const struct config *config,
                            const struct clock_setup *setup)
{
    provisional->config = config;
    provisional->setup = setup;
}

void provisional_refresh(struct provisional *provisional, const char *const *partitions,
                         size_t count)
{
    provisional_stop(provisional);
    provisional->partitions = calloc(count + 1, sizeof *provisional->partitions);
    if (provisional->partitions == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        snprintf(provisional->partitions[i], PARTITION_KEY_MAX, "%s", partitions[i]);
    provisional->partition_count = count;
    provisional->recomputed_this_refresh = 0;
    provisional->failed_this_refresh = 0;
    provisional->running = true;
    step(provisional); /* waits for the reply in flight, if any */
}

void provisional_stop(struct provisional *provisional)
{
    provisional->generation++;
    provisional->running = false;
    clear_page(provisional);
    free(provisional->partitions);
    provisional->partitions = NULL;
    provisional->partition_count = 0;
    provisional->current = 0;
    provisional->pass = 0;
    provisional->changed_meanwhile = false;
    snprintf(provisional->cursor, sizeof provisional->cursor, "0");
}

void provisional_get_stats(const struct provisional *provisional, struct provisional_stats *out)
{
    *out = provisional->stats;
}
