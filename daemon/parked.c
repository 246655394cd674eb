/* Parked clocks (see parked.h): a pass is a chain of Redis requests, one in
 * flight at a time: HGETALL <prefix>parked -> for each rule configured
 * again and each partition: ZRANGE of its parked set -> MGET of the records
 * -> the deadline engine's unpark -> EVALSHA apply_effects -> the same set
 * again until it is empty.  A reply that comes back after the pass was
 * restarted or stopped is dropped (the generation tells). */
#include "parked.h"

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

#define PAGE_SIZE 128
#define PARTITION_KEY_MAX 300
#define KEY_MAX 600
#define RULES_MAX 64
#define STALE_MAX 3 /* a set whose page keeps going stale is left for the next pass */

struct rule_count {
    char rule[CLOCK_TEXT_MAX];
    int64_t count;
};

struct parked {
    struct redis_client *redis;
    const struct config *config;
    const struct clock_setup *setup;
    struct parked_callbacks callbacks;
    char (*partitions)[PARTITION_KEY_MAX];
    size_t partition_count;
    char rules[RULES_MAX][CLOCK_TEXT_MAX]; /* configured again, with clocks parked */
    size_t rule_count, rule_at, partition_at;
    bool running, in_flight, listed;
    int stale;
    uint64_t generation;
    char *page[PAGE_SIZE]; /* clock keys of the set being resumed */
    size_t page_count;
    uint64_t resumed_in_page, resumed_this_pass;
    struct effects *effects;
    struct clock_engine *engine;
    struct rule_count counts[RULES_MAX];
    size_t count_rules;
};

static void clear_page(struct parked *parked)
{
    for (size_t i = 0; i < parked->page_count; i++)
        free(parked->page[i]);
    parked->page_count = 0;
}

static void step(struct parked *parked);

/* A command whose reply goes to `handle` for this generation. */
struct request {
    struct parked *parked;
    uint64_t generation;
    void (*handle)(struct parked *parked, struct redisReply *reply);
};

/* The parked set is done (empty, or left for the next pass): the next. */
static void next_set(struct parked *parked)
{
    clear_page(parked);
    parked->stale = 0;
    if (++parked->partition_at >= parked->partition_count) {
        parked->partition_at = 0;
        parked->rule_at++;
    }
}

static void request_replied(struct redisReply *reply, void *privdata)
{
    struct request *request = privdata;
    struct parked *parked = request->parked;
    bool current = request->generation == parked->generation;
    void (*handle)(struct parked *, struct redisReply *) = request->handle;
    free(request);
    parked->in_flight = false;
    if (!current) {
        step(parked); /* restarted meanwhile: begin the new pass */
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "STALE", 5) == 0) {
        /* a batch or a claim changed a clock of the page since it was read */
        clear_page(parked);
        if (++parked->stale > STALE_MAX)
            next_set(parked);
        step(parked);
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Redis went away or refused: the next catch-up starts again. */
        log_warning("parked clocks: resuming interrupted (%s)",
                    reply ? reply->str : "connection lost");
        clear_page(parked);
        parked->running = false;
        return;
    }
    handle(parked, reply);
}

static void send(struct parked *parked, void (*handle)(struct parked *, struct redisReply *),
                 int argc, const char **argv, const size_t *lengths)
{
    struct request *request = malloc(sizeof *request);
    if (request != NULL) {
        *request = (struct request){parked, parked->generation, handle};
        if (redis_client_send(parked->redis, request_replied, request, argc, argv, lengths) ==
            0) {
            parked->in_flight = true;
            return;
        }
        free(request);
    }
    clear_page(parked);
    parked->running = false; /* Redis not ready: the next catch-up starts again */
}

/* <prefix>parked:<rule>:<partition> of the set being resumed. */
static void set_key(const struct parked *parked, char *buf, size_t size)
{
    snprintf(buf, size, "%sparked:%s:%s", parked->config->key_prefix,
             parked->rules[parked->rule_at], parked->partitions[parked->partition_at]);
}

/* ---- the counts ---- */

static void take_counts(struct parked *parked, const struct redisReply *pairs)
{
    for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
        const struct redisReply *rule = pairs->element[i], *count = pairs->element[i + 1];
        if (rule->type != REDIS_REPLY_STRING || count->type != REDIS_REPLY_STRING ||
            rule->len >= CLOCK_TEXT_MAX)
            continue;
        size_t at = 0;
        while (at < parked->count_rules && strcmp(parked->counts[at].rule, rule->str) != 0)
            at++;
        if (at == RULES_MAX)
            continue;
        if (at == parked->count_rules)
            snprintf(parked->counts[parked->count_rules++].rule, CLOCK_TEXT_MAX, "%s",
                     rule->str);
        parked->counts[at].count = strtoll(count->str, NULL, 10);
    }
}

static void counts_read(struct redisReply *reply, void *privdata)
{
    if (reply && reply->type == REDIS_REPLY_ARRAY)
        take_counts(privdata, reply);
}

void parked_refresh_counts(struct parked *parked)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%sparked", parked->config->key_prefix);
    const char *argv[] = {"HGETALL", key};
    size_t lengths[] = {7, strlen(key)};
    redis_client_send(parked->redis, counts_read, parked, 2, argv, lengths);
}

void parked_for_each_count(const struct parked *parked,
                           void (*each)(void *arg, const char *rule, int64_t count), void *arg)
{
    for (size_t i = 0; i < parked->count_rules; i++)
        each(arg, parked->counts[i].rule, parked->counts[i].count);
}

/* ---- a pass ---- */

/* The pass's rules: those with clocks parked that are configured again;
 * those still missing are logged. */
static void rules_listed(struct parked *parked, struct redisReply *reply)
{
    parked->listed = true;
    if (reply->type != REDIS_REPLY_ARRAY) {
        parked->running = false;
        return;
    }
    take_counts(parked, reply);
    for (size_t i = 0; i < parked->count_rules; i++) {
        const struct rule_count *count = &parked->counts[i];
        if (count->count <= 0)
            continue;
        if (clock_setup_rule_spec(parked->setup, count->rule, 0) == NULL)
            log_warning("clocks: %" PRId64 " parked: rule %s is not configured; they resume, "
                        "every level due meanwhile sent in order, when it is configured again",
                        count->count, count->rule);
        else if (parked->rule_count < RULES_MAX)
            snprintf(parked->rules[parked->rule_count++], CLOCK_TEXT_MAX, "%s", count->rule);
    }
    step(parked);
}

static void written(struct parked *parked, struct redisReply *reply)
{
    (void)reply;
    parked->resumed_this_pass += parked->resumed_in_page;
    parked->stale = 0;
    clear_page(parked);
    parked->callbacks.applied(parked->callbacks.arg, parked->engine);
    step(parked); /* the same set again: what is left of it */
}

/* One clock of the page (member: its key), into the effects; false when
 * the budget ran out before it was caught up (the page ends there).
 * *failed: out of memory. */
static bool resume_clock(struct parked *parked, const char *member,
                         const struct redisReply *value, int64_t now, bool *failed)
{
    const char *rule = parked->rules[parked->rule_at];
    char clock_key[KEY_MAX], list[KEY_MAX], count[KEY_MAX], err[160];
    snprintf(clock_key, sizeof clock_key, "%sclock:%s:%s", parked->config->key_prefix, rule,
             member);
    set_key(parked, list, sizeof list);
    snprintf(count, sizeof count, "%sparked", parked->config->key_prefix);
    struct effects *effects = parked->effects;
    struct engine_clock clock = {.rule = rule, .key = member};
    bool resumed = true;
    if (clock_setup_rule_spec(parked->setup, rule, 0) == NULL)
        return true; /* the rule went away again: left parked (the next pass says so) */
    if (value->type != REDIS_REPLY_STRING) {
        /* stopped since its rule came back: only its entry is left */
        *failed = effects_expect_absent(effects, clock_key) != 0;
    } else if (clock_record_decode(value->str, value->len, &clock.record, err, sizeof err) !=
               0) {
        log_error("parked clocks: %s holds no record this daemon reads (%s); no longer parked",
                  clock_key, err);
        *failed = effects_expect_value(effects, clock_key, value->str, value->len) != 0;
    } else {
        char record[CLOCK_RECORD_MAX];
        /* the rule version of the clock's start */
        clock.spec = clock_setup_rule_spec(parked->setup, rule, clock.record.started_at_ms);
        resumed = clock_engine_unpark(parked->engine, &clock, now);
        int length = clock_record_encode(&clock.record, record, sizeof record);
        *failed = length < 0 ||
                  effects_expect_value(effects, clock_key, value->str, value->len) != 0 ||
                  effects_set_value(effects, clock_key, record, (size_t)length) != 0;
    }
    if (resumed && !*failed) {
        *failed = effects_index(effects, list, member, 0, true) != 0 ||
                  effects_count(effects, count, rule, -1, 0) != 0;
        parked->resumed_in_page++;
    }
    return resumed;
}

static void records_read(struct parked *parked, struct redisReply *reply)
{
    int64_t now = parked->callbacks.now(parked->callbacks.arg);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != parked->page_count || now < 0) {
        clear_page(parked);
        parked->running = false; /* the next catch-up starts again */
        return;
    }
    const struct config *config = parked->config;
    effects_reset(parked->effects);
    clock_engine_begin(parked->engine, config->key_prefix, clock_setup_holidays(parked->setup),
                       config->clock_mode != CLOCK_MODE_EVENT,
                       (int64_t)config->counter_retention_days * 86400,
                       config->max_alerts_per_claim, parked->effects);
    parked->resumed_in_page = 0;
    bool failed = false;
    for (size_t i = 0; i < parked->page_count && !failed; i++)
        if (!resume_clock(parked, parked->page[i], reply->element[i], now, &failed))
            break;
    const char **argv;
    const size_t *lengths;
    int argc = failed || clock_engine_failed(parked->engine) ? -1
               : effects_any_write(parked->effects)
                   ? effects_build(parked->effects,
                                   redis_client_script_sha(parked->redis,
                                                           REDIS_SCRIPT_APPLY_EFFECTS),
                                   "", 0, &argv, &lengths)
                   : 0;
    if (argc <= 0) {
        if (argc < 0)
            log_error("parked clocks: out of memory; resuming them stops");
        next_set(parked);
        step(parked);
        return;
    }
    send(parked, written, argc, argv, lengths);
}

static void page_listed(struct parked *parked, struct redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        next_set(parked);
        step(parked);
        return;
    }
    const char *argv[1 + PAGE_SIZE];
    size_t lengths[1 + PAGE_SIZE];
    char keys[PAGE_SIZE][KEY_MAX];
    argv[0] = "MGET";
    lengths[0] = 4;
    for (size_t i = 0; i < reply->elements && parked->page_count < PAGE_SIZE; i++) {
        const struct redisReply *member = reply->element[i];
        char *copy = member->type == REDIS_REPLY_STRING ? strdup(member->str) : NULL;
        if (copy == NULL)
            continue;
        size_t at = parked->page_count++;
        parked->page[at] = copy;
        int length = snprintf(keys[at], sizeof keys[at], "%sclock:%s:%s",
                              parked->config->key_prefix, parked->rules[parked->rule_at], copy);
        argv[1 + at] = keys[at];
        lengths[1 + at] = length > 0 && (size_t)length < sizeof keys[at] ? (size_t)length : 0;
    }
    if (parked->page_count == 0) {
        next_set(parked);
        step(parked);
        return;
    }
    send(parked, records_read, (int)parked->page_count + 1, argv, lengths);
}

static void finish_pass(struct parked *parked)
{
    parked->running = false;
    if (parked->resumed_this_pass > 0)
        log_notice("clocks: %" PRIu64 " parked clocks resumed (their rule is configured again); "
                   "the levels due meanwhile were sent, in order",
                   parked->resumed_this_pass);
}

/* Asks for what comes next in the pass, or finishes it. */
static void step(struct parked *parked)
{
    if (!parked->running || parked->in_flight)
        return;
    char key[KEY_MAX];
    if (!parked->listed) {
        snprintf(key, sizeof key, "%sparked", parked->config->key_prefix);
        const char *argv[] = {"HGETALL", key};
        size_t lengths[] = {7, strlen(key)};
        send(parked, rules_listed, 2, argv, lengths);
        return;
    }
    if (parked->rule_at >= parked->rule_count || parked->partition_count == 0) {
        finish_pass(parked);
        return;
    }
    set_key(parked, key, sizeof key);
    char last[16];
    snprintf(last, sizeof last, "%d", PAGE_SIZE - 1);
    const char *argv[] = {"ZRANGE", key, "0", last};
    size_t lengths[] = {6, strlen(key), 1, strlen(last)};
    send(parked, page_listed, 4, argv, lengths);
}

struct parked *parked_create(struct redis_client *redis, const struct config *config,
                             const struct clock_setup *setup,
                             const struct parked_callbacks *callbacks)
{
    struct parked *parked = calloc(1, sizeof *parked);
    if (parked == NULL)
        return NULL;
    parked->redis = redis;
    parked->config = config;
    parked->setup = setup;
    parked->callbacks = *callbacks;
    parked->effects = effects_create();
    parked->engine = clock_engine_create();
    if (parked->effects == NULL || parked->engine == NULL)
        goto fail;
    return parked;
fail:
    parked_destroy(parked);
    return NULL;
}

void parked_destroy(struct parked *parked)
{
    if (parked == NULL)
        return;
    clear_page(parked);
    free(parked->partitions);
    effects_destroy(parked->effects);
    clock_engine_destroy(parked->engine);
    free(parked);
}

void parked_set_config(struct parked *parked, const struct config *config,
                       const struct clock_setup *setup)
{
    parked->config = config;
    parked->setup = setup;
}

void parked_resume(struct parked *parked, const char *const *partitions, size_t count)
{
    parked_stop(parked);
    parked->partitions = calloc(count + 1, sizeof *parked->partitions);
    if (parked->partitions == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        snprintf(parked->partitions[i], PARTITION_KEY_MAX, "%s", partitions[i]);
    parked->partition_count = count;
    parked->running = true;
    step(parked); /* waits for the reply in flight, if any */
}

void parked_stop(struct parked *parked)
{
    parked->generation++;
    parked->running = parked->listed = false;
    clear_page(parked);
    free(parked->partitions);
    parked->partitions = NULL;
    parked->partition_count = parked->rule_count = parked->rule_at = 0;
    parked->partition_at = 0;
    parked->stale = 0;
    parked->resumed_this_pass = 0;
}
