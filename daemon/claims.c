/* Claiming due levels (see claims.h). */
#include "claims.h"

#include "clock_engine.h"
#include "clock_setup.h"
#include "effects.h"
#include "formats.h"
#include "log.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 600
#define HEAD_ARGS 8

struct claim {
    struct effects *effects;
    struct clock_engine *engine;
    char prefix[128];
    int64_t now, budget;
    char (*partitions)[CLOCK_PARTITION_MAX];
    size_t partition_count;
    const char **argv;
    size_t *lengths;
    char numbers[4][24];
    bool more;
    int64_t earliest;
    uint64_t dropped, parked;
    char parked_rule[CLOCK_TEXT_MAX];
};

struct claim *claim_create(void)
{
    struct claim *claim = calloc(1, sizeof *claim);
    if (claim == NULL)
        return NULL;
    claim->effects = effects_create();
    claim->engine = clock_engine_create();
    if (claim->effects == NULL || claim->engine == NULL)
        goto fail;
    return claim;
fail:
    claim_destroy(claim);
    return NULL;
}

void claim_destroy(struct claim *claim)
{
    if (claim == NULL)
        return;
    effects_destroy(claim->effects);
    clock_engine_destroy(claim->engine);
    free(claim->partitions);
    free(claim->argv);
    free(claim->lengths);
    free(claim);
}

int claim_build_read(struct claim *claim, const char *script_sha, const char *prefix,
                     int64_t now, int64_t budget, const char *const *partitions, size_t count,
                     const char ***argv, const size_t **argv_lengths)
{
    free(claim->partitions);
    free(claim->argv);
    free(claim->lengths);
    claim->partitions = calloc(count + 1, sizeof *claim->partitions);
    claim->argv = calloc(HEAD_ARGS + count, sizeof *claim->argv);
    claim->lengths = calloc(HEAD_ARGS + count, sizeof *claim->lengths);
    if (claim->partitions == NULL || claim->argv == NULL || claim->lengths == NULL)
        return -1;
    snprintf(claim->prefix, sizeof claim->prefix, "%s", prefix);
    claim->now = now;
    claim->budget = budget;
    claim->partition_count = count;
    snprintf(claim->numbers[0], sizeof claim->numbers[0], "%d", SCRIPT_ARGS_VERSION);
    snprintf(claim->numbers[1], sizeof claim->numbers[1], "%" PRId64, now);
    snprintf(claim->numbers[2], sizeof claim->numbers[2], "%" PRId64, budget);
    snprintf(claim->numbers[3], sizeof claim->numbers[3], "%zu", count);
    const char *head[HEAD_ARGS] = {"EVALSHA",          script_sha,        "0",
                                   claim->numbers[0],  claim->prefix,     claim->numbers[1],
                                   claim->numbers[2],  claim->numbers[3]};
    for (size_t i = 0; i < HEAD_ARGS; i++)
        claim->argv[i] = head[i];
    for (size_t i = 0; i < count; i++) {
        snprintf(claim->partitions[i], sizeof claim->partitions[i], "%s", partitions[i]);
        claim->argv[HEAD_ARGS + i] = claim->partitions[i];
    }
    for (size_t i = 0; i < HEAD_ARGS + count; i++)
        claim->lengths[i] = strlen(claim->argv[i]);
    *argv = claim->argv;
    *argv_lengths = claim->lengths;
    return (int)(HEAD_ARGS + count);
}

static bool is_string(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_STRING;
}

/* A partition's state as read: its claimed instant, whether every due clock
 * was read, and its earliest due after now. */
struct partition_state {
    bool has_since;
    int64_t since;
    bool complete;
};

static int read_states(struct claim *claim, const redisReply *states,
                       struct partition_state *out)
{
    if (states->type != REDIS_REPLY_ARRAY || states->elements != claim->partition_count)
        return -1;
    for (size_t p = 0; p < claim->partition_count; p++) {
        const redisReply *state = states->element[p];
        if (state->type != REDIS_REPLY_ARRAY || state->elements != 3)
            return -1;
        out[p].has_since = is_string(state->element[0]);
        out[p].since = out[p].has_since ? strtoll(state->element[0]->str, NULL, 10) : 0;
        out[p].complete = state->element[1]->type == REDIS_REPLY_INTEGER &&
                          state->element[1]->integer == 1;
        if (!out[p].complete)
            claim->more = true;
        if (is_string(state->element[2])) {
            int64_t due = strtoll(state->element[2]->str, NULL, 10);
            if (due < claim->earliest)
                claim->earliest = due;
        }
    }
    return 0;
}

/* Takes an index entry whose clock cannot fire out of the index. */
static int drop_entry(struct claim *claim, const char *partition, const char *bucket,
                      const char *member)
{
    char key[KEY_MAX];
    snprintf(key, sizeof key, "%sdue:%s:%s", claim->prefix, partition, bucket);
    claim->dropped++;
    return effects_index(claim->effects, key, member, 0, true);
}

/* Parks a due clock whose rule is not configured (a reload or a restart
 * without it): its entry leaves the due index for
 * <prefix>parked:<rule>:<partition> (scored by the due time it had), the
 * rule's count in <prefix>parked goes up, and its record is written
 * unarmed, checked to be as read (so a claim racing this one is STALE and
 * the count stays exact).  parked.h brings it back. */
static int park_clock(struct claim *claim, const char *partition, const char *bucket,
                      const char *rule, const char *member, const redisReply *record,
                      struct clock_record *c)
{
    char key[KEY_MAX], value[CLOCK_RECORD_MAX];
    int64_t due = c->next_due_ms;
    c->armed = false;
    int length = clock_record_encode(c, value, sizeof value);
    snprintf(key, sizeof key, "%sdue:%s:%s", claim->prefix, partition, bucket);
    if (length < 0 || effects_index(claim->effects, key, member, 0, true) != 0)
        return -1;
    snprintf(key, sizeof key, "%sclock:%s", claim->prefix, member);
    if (effects_expect_value(claim->effects, key, record->str, record->len) != 0 ||
        effects_set_value(claim->effects, key, value, (size_t)length) != 0)
        return -1;
    char list[sizeof claim->prefix + KEY_MAX + CLOCK_PARTITION_MAX + 16];
    snprintf(list, sizeof list, "%sparked:%s:%s", claim->prefix, rule, c->partition);
    if (effects_index(claim->effects, list, member + strlen(rule) + 1, due, false) != 0)
        return -1;
    snprintf(key, sizeof key, "%sparked", claim->prefix);
    if (effects_count(claim->effects, key, rule, 1, 0) != 0)
        return -1;
    if (claim->parked++ == 0) {
        /* the first parked rule names the log line; a longer name is cut */
        size_t name_length = strnlen(rule, sizeof claim->parked_rule - 1);
        memcpy(claim->parked_rule, rule, name_length);
        claim->parked_rule[name_length] = '\0';
    }
    return 0;
}

/* Fires one due clock: rule:key = member, record as read. */
static int claim_clock(struct claim *claim, const struct clock_setup *setup,
                       const struct partition_state *state, const char *partition,
                       const char *bucket, const char *member, const redisReply *record)
{
    char rule[KEY_MAX];
    const char *colon = strchr(member, ':');
    size_t rule_length = colon ? (size_t)(colon - member) : 0;
    if (colon == NULL || rule_length >= sizeof rule)
        return drop_entry(claim, partition, bucket, member);
    memcpy(rule, member, rule_length);
    rule[rule_length] = '\0';
    struct engine_clock clock = {.rule = rule, .key = colon + 1};
    char err[160];
    if (!is_string(record))
        /* an index entry left behind: drop it so it does not block the timer */
        return drop_entry(claim, partition, bucket, member);
    if (clock_record_decode(record->str, record->len, &clock.record, err, sizeof err) != 0) {
        log_error("alerts: clock %s holds no record this daemon reads (%s); dropped from the "
                  "due index", member, err);
        return drop_entry(claim, partition, bucket, member);
    }
    /* the rule version of the clock's start */
    const struct deadline_spec *spec =
        clock_setup_rule_spec(setup, rule, clock.record.started_at_ms);
    clock.spec = spec;
    if (spec == NULL)
        return park_clock(claim, partition, bucket, rule, member, record, &clock.record);
    bool wall = state != NULL;
    clock_engine_claim(claim->engine, &clock, claim->now, wall && state->has_since,
                       wall ? state->since : 0);
    char key[KEY_MAX], value[CLOCK_RECORD_MAX];
    snprintf(key, sizeof key, "%sclock:%s", claim->prefix, member);
    int length = clock_record_encode(&clock.record, value, sizeof value);
    if (length < 0 || effects_expect_value(claim->effects, key, record->str, record->len) != 0 ||
        effects_set_value(claim->effects, key, value, (size_t)length) != 0)
        return -1;
    return 0;
}

/* The due clocks of the read, partition by partition; a partition gets its
 * claimed instant when all of its due clocks were read and fired within the
 * budget. */
static int claim_clocks(struct claim *claim, const struct clock_setup *setup, bool wall,
                        const redisReply *clocks, const struct partition_state *states)
{
    size_t at = 0;
    for (size_t p = 0; p < claim->partition_count; p++) {
        const char *partition = claim->partitions[p];
        for (; at + 3 < clocks->elements; at += 4) {
            const redisReply *number = clocks->element[at];
            if (number->type != REDIS_REPLY_INTEGER || (size_t)number->integer != p + 1)
                break;
            if (!is_string(clocks->element[at + 1]) || !is_string(clocks->element[at + 2]))
                return -1;
            if (!clock_engine_budget_left(claim->engine)) {
                claim->more = true;
                continue;
            }
            if (claim_clock(claim, setup, wall ? &states[p] : NULL, partition,
                            clocks->element[at + 1]->str, clocks->element[at + 2]->str,
                            clocks->element[at + 3]) != 0)
                return -1;
        }
        const struct partition_state *state = &states[p];
        if (wall && state->complete && clock_engine_budget_left(claim->engine) &&
            (!state->has_since || claim->now > state->since)) {
            char key[KEY_MAX], now[24];
            snprintf(key, sizeof key, "%sclaimed", claim->prefix);
            snprintf(now, sizeof now, "%" PRId64, claim->now);
            if (effects_hash(claim->effects, key, partition, now, strlen(now)) != 0)
                return -1;
        }
    }
    return at == clocks->elements ? 0 : -1;
}

/* Buckets claimed from: dropped from their partition's list once empty. */
static int forget_buckets(struct claim *claim, const redisReply *buckets)
{
    for (size_t i = 0; i + 1 < buckets->elements; i += 2) {
        const redisReply *number = buckets->element[i], *bucket = buckets->element[i + 1];
        if (number->type != REDIS_REPLY_INTEGER || number->integer < 1 ||
            (size_t)number->integer > claim->partition_count || !is_string(bucket))
            return -1;
        char index[KEY_MAX], key[KEY_MAX + 64];
        snprintf(index, sizeof index, "%sdue:%s", claim->prefix,
                 claim->partitions[number->integer - 1]);
        snprintf(key, sizeof key, "%s:%s", index, bucket->str);
        if (effects_forget_if_gone(claim->effects, index, key, bucket->str) != 0)
            return -1;
    }
    return 0;
}

int claim_compute(struct claim *claim, const struct redisReply *reply,
                  const struct clock_setup *setup, bool wall, int64_t counter_ttl_seconds,
                  int64_t backfill_window_ms, char *err, size_t err_size)
{
    effects_reset(claim->effects);
    clock_engine_begin(claim->engine, claim->prefix, clock_setup_holidays(setup), wall,
                       counter_ttl_seconds, claim->budget, claim->effects);
    clock_engine_set_backfill(claim->engine, backfill_window_ms, wall ? claim->now : 0);
    claim->more = false;
    claim->earliest = INT64_MAX;
    claim->dropped = claim->parked = 0;
    claim->parked_rule[0] = '\0';
    struct partition_state *states = calloc(claim->partition_count + 1, sizeof *states);
    if (states == NULL) {
        snprintf(err, err_size, "out of memory computing a claim");
        return -1;
    }
    int result = -1;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[1]->type != REDIS_REPLY_ARRAY ||
        reply->element[2]->type != REDIS_REPLY_ARRAY ||
        read_states(claim, reply->element[0], states) != 0 ||
        claim_clocks(claim, setup, wall, reply->element[1], states) != 0 ||
        forget_buckets(claim, reply->element[2]) != 0)
        snprintf(err, err_size, "claim_read.lua: reply of the wrong shape, or out of memory");
    else if (clock_engine_failed(claim->engine))
        snprintf(err, err_size, "out of memory computing a claim");
    else
        result = 0;
    if (!clock_engine_budget_left(claim->engine))
        claim->more = true;
    if (clock_engine_earliest(claim->engine) < claim->earliest)
        claim->earliest = clock_engine_earliest(claim->engine);
    free(states);
    return result;
}

int claim_build_write(struct claim *claim, const char *script_sha, const char ***argv,
                      const size_t **argv_lengths)
{
    if (!effects_any_write(claim->effects))
        return 0;
    return effects_build(claim->effects, script_sha, "", 0, argv, argv_lengths);
}

bool claim_more(const struct claim *claim) { return claim->more; }
int64_t claim_earliest(const struct claim *claim) { return claim->earliest; }
uint64_t claim_dropped(const struct claim *claim) { return claim->dropped; }
uint64_t claim_parked(const struct claim *claim, const char **first_rule)
{
    *first_rule = claim->parked_rule;
    return claim->parked;
}
const struct clock_engine *claim_engine(const struct claim *claim) { return claim->engine; }
