/* Provisional clocks (see provisional.h): the refresh as a chain of Redis
 * requests, HSCAN -> MGET -> the deadline engine's recompute -> EVALSHA
 * apply_effects (each clock and entry checked to be as read) -> next page,
 * one in flight at a time.  A reply that comes back after the refresh was
 * restarted or stopped is dropped (the generation tells). */
#include "provisional.h"

#include "clock_engine.h"
#include "clock_setup.h"
#include "config.h"
#include "effects.h"
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

/* One listed clock of the page being worked on. */
struct listed_clock {
    char *member; /* "<rule>:<key>", split in place into rule and key */
    const char *rule, *key;
    char *entry;
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
    struct effects *effects;      /* the page's recompute */
    struct clock_engine *engine;
    uint64_t written;             /* clocks of the page recomputed */
};

static void clear_page(struct provisional *provisional)
{
    for (size_t i = 0; i < provisional->page_count; i++) {
        free(provisional->page[i].member);
        free(provisional->page[i].entry);
    }
    memset(provisional->page, 0, sizeof provisional->page);
    provisional->page_count = 0;
}

static void step(struct provisional *provisional);
static void advance(struct provisional *provisional);

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
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "STALE", 5) == 0) {
        /* a batch or a claim changed a clock of the page since it was read:
         * this page changed nothing, and the partition gets another pass */
        provisional->changed_meanwhile = true;
        advance(provisional);
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
    (void)reply;
    provisional->stats.clocks_recomputed += provisional->written;
    provisional->recomputed_this_refresh += provisional->written;
    provisional->callbacks.applied(provisional->callbacks.arg, provisional->engine);
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

/* Recomputes one listed clock from its record and entry into the effects,
 * each checked to be still as read.  Returns -1 when out of memory. */
static int recompute(struct provisional *provisional, struct listed_clock *clock,
                     const struct redisReply *value, int64_t now)
{
    char err[200], list[PARTITION_KEY_MAX + 64], key[PARTITION_KEY_MAX + 200];
    list_key(provisional, list, sizeof list);
    snprintf(key, sizeof key, "%sclock:%s:%s", provisional->config->key_prefix, clock->rule,
             clock->key);
    char member[PARTITION_KEY_MAX + 200];
    snprintf(member, sizeof member, "%s:%s", clock->rule, clock->key);
    struct effects *effects = provisional->effects;
    if (effects_expect_field(effects, list, member, clock->entry) != 0)
        return -1;
    if (value->type != REDIS_REPLY_STRING) {
        /* stopped: its entry goes */
        return effects_expect_absent(effects, key) != 0 ||
                       effects_hash(effects, list, member, NULL, 0) != 0
                   ? -1
                   : 0;
    }
    struct engine_clock engine_clock = {.rule = clock->rule, .key = clock->key,
                                        .has_entry = true};
    if (clock_setup_rule_spec(provisional->setup, clock->rule, 0) == NULL)
        return 0; /* the rule is not in force: left alone */
    snprintf(engine_clock.entry, sizeof engine_clock.entry, "%s", clock->entry);
    struct clock_recompute result;
    struct clock_record *c = &engine_clock.record;
    if (clock_record_decode(value->str, value->len, c, err, sizeof err) == 0)
        /* the rule version of the clock's start */
        engine_clock.spec = clock_setup_rule_spec(provisional->setup, clock->rule,
                                                  c->started_at_ms);
    if (engine_clock.spec == NULL ||
        clock_setup_recompute(provisional->setup, clock->rule, clock->entry, c->started_at_ms,
                              c->last_day, c->base_deadline_ms, &result, err, sizeof err) != 0) {
        note_failure(provisional, clock, err);
        return 0;
    }
    clock_engine_recompute(provisional->engine, &engine_clock, result.last_day,
                           result.base_deadline_ms, result.provisional, now);
    char record[CLOCK_RECORD_MAX];
    int length = clock_record_encode(c, record, sizeof record);
    if (length < 0 || effects_expect_value(effects, key, value->str, value->len) != 0 ||
        effects_set_value(effects, key, record, (size_t)length) != 0)
        return -1;
    provisional->written++;
    return 0;
}

static void records_read(struct provisional *provisional, struct redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != provisional->page_count) {
        advance(provisional);
        return;
    }
    const struct config *config = provisional->config;
    effects_reset(provisional->effects);
    clock_engine_begin(provisional->engine, config->key_prefix,
                       clock_setup_holidays(provisional->setup),
                       config->clock_mode != CLOCK_MODE_EVENT,
                       (int64_t)config->counter_retention_days * 86400, 0, provisional->effects);
    provisional->written = 0;
    int64_t now = provisional->callbacks.now(provisional->callbacks.arg);
    for (size_t i = 0; i < provisional->page_count; i++)
        if (recompute(provisional, &provisional->page[i], reply->element[i], now) != 0 ||
            clock_engine_failed(provisional->engine)) {
            log_error("provisional clocks: out of memory; the refresh stops");
            advance(provisional);
            return;
        }
    const char **argv;
    const size_t *lengths;
    int argc = effects_any_write(provisional->effects)
                   ? effects_build(provisional->effects,
                                   redis_client_script_sha(provisional->redis,
                                                           REDIS_SCRIPT_APPLY_EFFECTS),
                                   "", 0, &argv, &lengths)
                   : 0;
    if (argc <= 0) {
        advance(provisional);
        return;
    }
    send(provisional, script_replied, argc, argv, lengths);
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
    provisional->effects = effects_create();
    provisional->engine = clock_engine_create();
    if (provisional->effects == NULL || provisional->engine == NULL) {
        provisional_destroy(provisional);
        return NULL;
    }
    return provisional;
}

void provisional_destroy(struct provisional *provisional)
{
    if (provisional == NULL)
        return;
    clear_page(provisional);
    free(provisional->partitions);
    effects_destroy(provisional->effects);
    clock_engine_destroy(provisional->engine);
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
