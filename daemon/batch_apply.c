/* Applying a batch (see batch.h): the read of what its events need, the
 * computation of their effects, and the write.  The clock computations are
 * the deadline engine's (clock_engine.h); this file decides which events
 * are new, in which order their operations apply, and what "now" is for
 * each, and adds what belongs to the batch as a whole: counters, running
 * counts, stop markers, dedupe ids, offsets and event times. */
#include "batch_private.h"

#include "clock_setup.h"
#include "counter_keys.h"
#include "snapshots.h"
#include "formats.h"
#include "text.h"
#include "log.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_SECONDS INT64_C(86400)
/* Sliding-window buckets only need to outlive the longest window they serve. */
#define HOUR_BUCKET_TTL (31 * DAY_SECONDS + 7200)
#define MINUTE_BUCKET_TTL (7200 + 120)
#define KEY_MAX 600
/* Alerts one batch may put in outboxes: far above what its events can cause
 * (a start collapses its past levels to one alert; each other op fires what
 * fell due before it). */
#define BATCH_ALERT_BUDGET 1000000

/* ---- dedupe spans ---- */

/* Event ids and stop markers are remembered per span of days, in one key per
 * span (<prefix>ev:<first day of the span, UTC>, a set of ids;
 * <prefix>stopped:<first day>, a hash of markers), where a key per id or
 * marker would cost a command each: a batch asks each key that may hold
 * entries of the last dedupe_ttl about all of its own at once and adds the
 * new ones with one command.  An entry is remembered at least dedupe_ttl and
 * at most a span longer. */
struct spans {
    int64_t span_days, older, ttl_seconds;
};

static struct spans spans_for(int64_t dedupe_ttl_seconds)
{
    int64_t ttl_days = (dedupe_ttl_seconds + DAY_SECONDS - 1) / DAY_SECONDS;
    if (ttl_days < 1)
        ttl_days = 1;
    struct spans spans = {.span_days = (ttl_days + 3) / 4};
    spans.older = (ttl_days + spans.span_days - 1) / spans.span_days;
    /* looked up until `older` spans after its own: kept that long after its
     * last write */
    spans.ttl_seconds = (spans.older + 1) * spans.span_days * DAY_SECONDS;
    return spans;
}

static void fill_span_keys(struct batch *batch, const struct batch_settings *settings)
{
    struct spans spans = spans_for(settings->dedupe_ttl_seconds);
    int64_t today = settings->wall_now_ms / 1000 / DAY_SECONDS;
    int64_t current = today / spans.span_days;
    batch->span_count = 0;
    for (int64_t index = current - spans.older; index <= current; index++) {
        if (batch->span_count == BATCH_SPANS_MAX)
            break;
        char date[16];
        calendar_format_day((day_number)(index * spans.span_days), date, sizeof date);
        snprintf(batch->span_keys[0][batch->span_count], CLOCK_PARTITION_MAX, "%sev:%s",
                 settings->key_prefix, date);
        snprintf(batch->span_keys[1][batch->span_count], CLOCK_PARTITION_MAX, "%sstopped:%s",
                 settings->key_prefix, date);
        batch->span_count++;
    }
}

/* ---- listing what the ops touch ---- */

/* Index of `name` among `count` names of `stride` bytes at `names`, adding
 * it when missing; slots is an open-addressing table of 1-based indices
 * with mask + 1 entries.  Returns the index. */
static uint32_t find_or_add(char *names, size_t stride, size_t *count, uint32_t *slots,
                            size_t mask, const char *name)
{
    size_t length = strlen(name);
    for (size_t slot = text_hash(name, length) & mask;; slot = (slot + 1) & mask) {
        uint32_t number = slots[slot];
        if (number == 0) {
            struct text_buffer copy = text_start(names + *count * stride, stride);
            text_add_bytes(&copy, name, length);
            slots[slot] = (uint32_t)++*count;
            return (uint32_t)(*count - 1);
        }
        if (strcmp(names + (number - 1) * stride, name) == 0)
            return number - 1;
    }
}

static int grow(void **array, size_t *capacity, size_t needed, size_t size)
{
    if (needed <= *capacity)
        return 0;
    void *grown = realloc(*array, needed * size);
    if (grown == NULL)
        return -1;
    *array = grown;
    *capacity = needed;
    return 0;
}

/* Lists the batch's clocks and marker fields, each once, and points every
 * op at its own. */
static int list_touched(struct batch *batch, const struct batch_settings *settings)
{
    size_t table = 16;
    while (table < 2 * batch->op_count + 2)
        table *= 2;
    batch->touched_table = 0; /* no table until both are whole */
    if (grow((void **)&batch->clock_slots, &batch->clock_slot_room, table,
             sizeof *batch->clock_slots) != 0 ||
        grow((void **)&batch->marker_slots, &batch->marker_slot_room, table,
             sizeof *batch->marker_slots) != 0 ||
        grow((void **)&batch->clocks, &batch->clock_capacity, batch->op_count + 1,
             sizeof *batch->clocks) != 0 ||
        grow((void **)&batch->markers, &batch->marker_capacity, batch->op_count + 1,
             sizeof *batch->markers) != 0)
        return -1;
    memset(batch->clock_slots, 0, table * sizeof *batch->clock_slots);
    memset(batch->marker_slots, 0, table * sizeof *batch->marker_slots);
    batch->touched_table = table;
    batch->clock_count = batch->marker_count = 0;
    for (size_t i = 0; i < batch->op_count; i++) {
        struct batch_op *op = &batch->ops[i];
        char name[sizeof batch->clocks->key];
        struct text_buffer text = text_start(name, sizeof name);
        text_add(&text, settings->key_prefix);
        text_add_bytes(&text, "clock:", 6);
        text_add(&text, op->rule);
        text_add_char(&text, ':');
        text_add_bytes(&text, op->op.key.bytes, op->op.key.length);
        /* the key begins each clock: the name goes straight into it */
        op->clock = find_or_add((char *)batch->clocks, sizeof *batch->clocks,
                                &batch->clock_count, batch->clock_slots, table - 1, name);
        text = text_start(name, sizeof name);
        text_add(&text, op->op.key_is_case ? "case:" : "ref:");
        text_add_bytes(&text, op->op.key.bytes, op->op.key.length);
        op->marker = find_or_add((char *)batch->markers, sizeof *batch->markers,
                                 &batch->marker_count, batch->marker_slots, table - 1, name);
    }
    /* Everything but the key and the written record's bytes starts empty. */
    for (size_t i = 0; i < batch->clock_count; i++) {
        struct batch_clock *clock = &batch->clocks[i];
        memset(&clock->engine, 0, offsetof(struct batch_clock, written) -
                                      offsetof(struct batch_clock, engine));
        clock->written_length = 0;
    }
    return 0;
}

/* Index of `name` among the names at `names` (stride bytes apart, each at
 * the start of its element) listed in `slots`, or -1. */
static long find_name(const char *names, size_t stride, const uint32_t *slots, size_t table,
                      const char *name)
{
    if (slots == NULL || table == 0)
        return -1;
    for (size_t slot = text_hash(name, strlen(name)) & (table - 1);;
         slot = (slot + 1) & (table - 1)) {
        uint32_t number = slots[slot];
        if (number == 0)
            return -1;
        if (strcmp(names + (number - 1) * stride, name) == 0)
            return (long)number - 1;
    }
}

/* ---- step 1: the read ---- */

struct argv_builder {
    struct batch *batch;
    size_t argc;     /* arguments of every command so far */
    size_t commands; /* commands begun */
};

static void add_arg(struct argv_builder *b, const char *text, size_t length)
{
    b->batch->read_argv[b->argc] = text;
    b->batch->read_lengths[b->argc] = length;
    b->argc++;
    b->batch->read_commands[b->commands - 1].argc++;
}

static void add_string(struct argv_builder *b, const char *text)
{
    add_arg(b, text, strlen(text));
}

/* Begins the read's next command with its name and its key (NULL: none). */
static void begin_command(struct argv_builder *b, const char *name, const char *key)
{
    b->batch->read_commands[b->commands++] = (struct redis_command){
        0, b->batch->read_argv + b->argc, b->batch->read_lengths + b->argc};
    add_string(b, name);
    if (key != NULL)
        add_string(b, key);
}

static void add_count(struct argv_builder *b, size_t slot, size_t count)
{
    char *text = b->batch->count_text[slot];
    snprintf(text, sizeof b->batch->count_text[slot], "%zu", count);
    add_string(b, text);
}

/* The member "<rule>:<key>" of a clock's first op, for the entry request. */
static void member_text(const struct batch_op *op, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%.*s", op->rule, (int)op->op.key.length, op->op.key.bytes);
}

/* The clocks whose provisional entry the read asks for (extended, of a rule
 * that may use the calendar), as indexes into ops in entry_requests.
 * Returns their number, or -1 when out of memory. */
static long list_entry_requests(struct batch *batch, const struct batch_settings *settings)
{
    size_t requests = 0;
    free(batch->entry_requests);
    batch->entry_requests = calloc(batch->clock_count + 1, sizeof *batch->entry_requests);
    if (batch->entry_requests == NULL)
        return -1;
    for (size_t i = 0; i < batch->op_count; i++) {
        const struct batch_op *op = &batch->ops[i];
        struct batch_clock *clock = &batch->clocks[op->clock];
        /* the clock's start, and so its rule version, is read by this call */
        if (op->op.kind == CLOCK_OP_EXTEND &&
            clock_setup_rule_may_use_calendar(settings->setup, op->rule) &&
            !clock->wants_entry) {
            clock->wants_entry = true;
            batch->entry_requests[requests++] = i; /* by op: its rule and key name the member */
        }
    }
    return (long)requests;
}

/* The hint of a span key: 1 it existed at the last read, 0 it did not, -1
 * not seen yet. */
static int span_hint(const struct batch_span_hints *hints, const char *key)
{
    for (size_t i = 0; hints && i < hints->count; i++)
        if (strcmp(hints->spans[i].key, key) == 0)
            return hints->spans[i].exists;
    return -1;
}

/* Which spans the read asks (only when it has something to ask them). */
static void choose_spans(struct batch *batch, const struct batch_settings *settings)
{
    size_t wanted[2] = {batch->entry_count, batch->marker_count};
    for (int kind = 0; kind < 2; kind++)
        for (size_t s = 0; s < batch->span_count; s++)
            batch->span_asked[kind][s] =
                wanted[kind] > 0 && span_hint(settings->span_hints, batch->span_keys[kind][s]) != 0;
}

/* read_entries.lua's call: the version, the prefix, the record field that
 * names the partition, and per request the clock key and its member. */
static void add_entries_call(struct argv_builder *b, const char *script_sha,
                             const struct batch_settings *settings, size_t requests)
{
    struct batch *batch = b->batch;
    begin_command(b, "EVALSHA", script_sha);
    add_string(b, "0");
    add_count(b, 0, SCRIPT_ARGS_VERSION);
    add_string(b, settings->key_prefix);
    add_count(b, 1, CLOCK_FIELD_PARTITION + 1);
    for (size_t r = 0; r < requests; r++) {
        const struct batch_op *op = &batch->ops[batch->entry_requests[r]];
        struct batch_clock *clock = &batch->clocks[op->clock];
        /* the member lives in the clock's entry buffer until the reply:
         * nothing else uses it before then */
        member_text(op, clock->engine.entry, sizeof clock->engine.entry);
        add_string(b, clock->key);
        add_string(b, clock->engine.entry);
    }
}

/* The span commands of one kind: SMISMEMBER (ids) or HMGET (markers). */
static void add_span_lookups(struct argv_builder *b, int kind)
{
    struct batch *batch = b->batch;
    for (size_t s = 0; s < batch->span_count; s++) {
        if (!batch->span_asked[kind][s])
            continue;
        begin_command(b, kind == 0 ? "SMISMEMBER" : "HMGET", batch->span_keys[kind][s]);
        if (kind == 0)
            for (size_t i = 0; i < batch->entry_count; i++)
                add_arg(b, batch->entries[i].id.bytes, batch->entries[i].id.length);
        else
            for (size_t i = 0; i < batch->marker_count; i++)
                add_string(b, batch->markers[i]);
    }
}

int batch_build_read(struct batch *batch, const char *entries_sha,
                     const struct batch_settings *settings,
                     const struct redis_command **commands)
{
    fill_span_keys(batch, settings);
    if (list_touched(batch, settings) != 0)
        return -1;
    long requests = list_entry_requests(batch, settings);
    if (requests < 0)
        return -1;
    choose_spans(batch, settings);
    size_t spans = batch->span_count;
    size_t needed = 4 * BATCH_READ_COMMANDS_MAX + spans * (batch->entry_count + batch->marker_count) +
                    batch->clock_count + batch->partition_count + 2 * (size_t)requests;
    size_t capacity = batch->read_capacity;
    if (grow((void **)&batch->read_argv, &capacity, needed, sizeof *batch->read_argv) != 0 ||
        grow((void **)&batch->read_lengths, &batch->read_capacity, needed,
             sizeof *batch->read_lengths) != 0)
        return -1;
    struct argv_builder b = {batch, 0, 0};
    for (int kind = 0; kind < 2; kind++)
        for (size_t s = 0; s < spans; s++)
            begin_command(&b, "EXISTS", batch->span_keys[kind][s]);
    add_span_lookups(&b, 0);
    if (batch->clock_count > 0) {
        begin_command(&b, "MGET", NULL);
        for (size_t i = 0; i < batch->clock_count; i++)
            add_string(&b, batch->clocks[i].key);
    }
    add_span_lookups(&b, 1);
    snprintf(batch->read_keys[0], sizeof batch->read_keys[0], "%seventtime", settings->key_prefix);
    snprintf(batch->read_keys[1], sizeof batch->read_keys[1], "%sclaimed", settings->key_prefix);
    if (batch->partition_count > 0) {
        begin_command(&b, "HMGET", batch->read_keys[0]);
        for (size_t i = 0; i < batch->partition_count; i++)
            add_string(&b, batch->partitions[i].key_text);
    }
    begin_command(&b, "HGETALL", batch->read_keys[1]);
    if (requests > 0)
        add_entries_call(&b, entries_sha, settings, (size_t)requests);
    *commands = batch->read_commands;
    return (int)b.commands;
}

/* ---- step 2: the computation ---- */

/* What the read returned (EXEC's replies, in batch_build_read's order),
 * checked for shape: per span asked (oldest first) the ids seen and the
 * stop markers, NULL for a span not asked; the clock records, the
 * partitions' event times, the claimed instants and the provisional
 * entries, NULL when not asked (nothing to ask). */
struct read_reply {
    const redisReply *seen[BATCH_SPANS_MAX], *records, *markers[BATCH_SPANS_MAX], *times,
        *claimed, *entries;
    size_t spans;
};

static bool is_array_of(const redisReply *reply, size_t count)
{
    return reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == count;
}

/* The read's next reply, a list of `count` when `asked` (else NULL: not
 * sent); *failed when it is missing or of another shape. */
static const redisReply *next_list(const redisReply *reply, size_t *at, bool asked, size_t count,
                                   bool *failed)
{
    if (!asked)
        return NULL;
    const redisReply *list = *at < reply->elements ? reply->element[(*at)++] : NULL;
    if (!is_array_of(list, count))
        *failed = true;
    return list;
}

/* The spans' EXISTS replies (the first 2 * spans) into the hints; a span
 * that exists and was not asked makes the read STALE.  Returns 0, or -1
 * with the reason in err. */
static int check_spans(const struct batch *batch, const redisReply *reply,
                       struct batch_span_hints *hints, char *err, size_t err_size)
{
    size_t spans = batch->span_count;
    if (reply->elements < 2 * spans) {
        snprintf(err, err_size, "batch read: reply of the wrong shape");
        return -1;
    }
    const char *missed = NULL;
    if (hints)
        hints->count = 0;
    for (int kind = 0; kind < 2; kind++)
        for (size_t s = 0; s < spans; s++) {
            const redisReply *exists = reply->element[(size_t)kind * spans + s];
            if (exists->type != REDIS_REPLY_INTEGER) {
                snprintf(err, err_size, "batch read: reply of the wrong shape");
                return -1;
            }
            size_t wanted = kind == 0 ? batch->entry_count : batch->marker_count;
            if (exists->integer == 1 && wanted > 0 && !batch->span_asked[kind][s] && !missed)
                missed = batch->span_keys[kind][s];
            if (hints && hints->count < BATCH_SPAN_HINTS_MAX) {
                snprintf(hints->spans[hints->count].key, sizeof hints->spans[0].key, "%s",
                         batch->span_keys[kind][s]);
                hints->spans[hints->count++].exists = exists->integer == 1;
            }
        }
    if (missed) {
        snprintf(err, err_size, "STALE %s appeared since the last read", missed);
        return -1;
    }
    return 0;
}

static int parse_read(const struct batch *batch, const redisReply *reply, size_t requests,
                      struct batch_span_hints *hints, struct read_reply *out, char *err,
                      size_t err_size)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        snprintf(err, err_size, "batch read: unexpected reply %s",
                 reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        return -1;
    }
    if (check_spans(batch, reply, hints, err, err_size) != 0)
        return -1;
    *out = (struct read_reply){.spans = batch->span_count};
    size_t at = 2 * batch->span_count;
    bool failed = false;
    for (size_t s = 0; s < out->spans; s++)
        out->seen[s] = next_list(reply, &at, batch->span_asked[0][s], batch->entry_count, &failed);
    out->records = next_list(reply, &at, batch->clock_count > 0, batch->clock_count, &failed);
    for (size_t s = 0; s < out->spans; s++)
        out->markers[s] =
            next_list(reply, &at, batch->span_asked[1][s], batch->marker_count, &failed);
    out->times =
        next_list(reply, &at, batch->partition_count > 0, batch->partition_count, &failed);
    out->claimed = at < reply->elements ? reply->element[at++] : NULL;
    failed = failed || out->claimed == NULL || out->claimed->type != REDIS_REPLY_ARRAY;
    out->entries = next_list(reply, &at, requests > 0, requests, &failed);
    if (failed || at != reply->elements) {
        snprintf(err, err_size, "batch read: reply of the wrong shape");
        return -1;
    }
    return 0;
}

static bool is_string(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_STRING;
}

static int64_t reply_number(const redisReply *reply, int64_t absent)
{
    if (reply->type == REDIS_REPLY_INTEGER)
        return reply->integer;
    if (is_string(reply))
        return strtoll(reply->str, NULL, 10);
    return absent;
}

/* ---- the batches ahead ---- */

/* Several batches are in flight: the read of one may run before the writes
 * of those ahead of it.  What those writes will leave counts as read: the
 * ids they apply, the clocks they change (and the values the write checks
 * them against become those they write: the newest batch's, which computed
 * on top of the older ones'), their stop markers, their event times.  The
 * write of this batch applies only if those ahead applied (the fence), so
 * this never counts what was not written. */
void batch_set_aheads(struct batch *batch, const struct batch *const *aheads, size_t count)
{
    batch->ahead_count = count < BATCH_AHEAD_MAX ? count : BATCH_AHEAD_MAX;
    for (size_t i = 0; i < batch->ahead_count; i++)
        batch->aheads[i] = aheads[i];
}

static const struct batch_clock *clock_written_by(const struct batch *ahead, const char *key)
{
    long i = find_name((const char *)ahead->clocks, sizeof *ahead->clocks, ahead->clock_slots,
                       ahead->touched_table, key);
    return i >= 0 && ahead->clocks[i].changed ? &ahead->clocks[i] : NULL;
}

static const char *marker_written_by(const struct batch *ahead, const char *field)
{
    if (ahead->marker_values == NULL)
        return NULL;
    long i = find_name((const char *)ahead->markers, sizeof *ahead->markers, ahead->marker_slots,
                       ahead->touched_table, field);
    return i >= 0 && ahead->marker_values[i][0] != '\0' ? ahead->marker_values[i] : NULL;
}

static bool applied_by(const struct batch *ahead, const struct text *id)
{
    if (ahead->id_slots == NULL || ahead->id_table == 0)
        return false;
    size_t mask = ahead->id_table - 1;
    for (size_t slot = text_hash(id->bytes, id->length) & mask;; slot = (slot + 1) & mask) {
        uint32_t number = ahead->id_slots[slot];
        if (number == 0)
            return false;
        const struct batch_entry *entry = &ahead->entries[number - 1];
        if (entry->id.length == id->length && memcmp(entry->id.bytes, id->bytes, id->length) == 0)
            return !entry->duplicate;
    }
}

/* Whether a batch ahead applies the id. */
static bool applied_ahead(const struct batch *batch, const struct text *id)
{
    for (size_t a = 0; a < batch->ahead_count; a++)
        if (applied_by(batch->aheads[a], id))
            return true;
    return false;
}

/* The newest stop marker the batches ahead write for the field, or NULL. */
static const char *marker_ahead(const struct batch *batch, const char *field)
{
    for (size_t a = 0; a < batch->ahead_count; a++) {
        const char *marker = marker_written_by(batch->aheads[a], field);
        if (marker)
            return marker;
    }
    return NULL;
}

/* The clock as the newest batch ahead that changes it writes it, or NULL. */
static const struct batch_clock *clock_ahead(const struct batch *batch, const char *key)
{
    for (size_t a = 0; a < batch->ahead_count; a++) {
        const struct batch_clock *written = clock_written_by(batch->aheads[a], key);
        if (written)
            return written;
    }
    return NULL;
}

/* The clocks and event times as the writes ahead leave them. */
static void apply_ahead(struct batch *batch)
{
    for (size_t i = 0; i < batch->clock_count && batch->ahead_count > 0; i++) {
        struct batch_clock *clock = &batch->clocks[i];
        const struct batch_clock *written = clock_ahead(batch, clock->key);
        if (written == NULL)
            continue;
        clock->exists = written->exists;
        clock->engine.record = written->engine.record;
        clock->engine.has_entry = written->engine.has_entry;
        memcpy(clock->engine.entry, written->engine.entry, sizeof clock->engine.entry);
        clock->read_value = written->exists ? written->written : NULL;
        clock->read_length = written->written_length;
    }
    for (size_t a = 0; a < batch->ahead_count; a++) {
        const struct batch *ahead = batch->aheads[a];
        for (size_t i = 0; i < batch->partition_count; i++)
            for (size_t j = 0; j < ahead->partition_count; j++)
                if (strcmp(batch->partitions[i].key_text, ahead->partitions[j].key_text) == 0 &&
                    ahead->partitions[j].max_event_time_ms > batch->partitions[i].stored_time_ms)
                    batch->partitions[i].stored_time_ms = ahead->partitions[j].max_event_time_ms;
    }
}

/* Which events are duplicates: their id is in a span's set, or an earlier
 * event of this batch had it. */
static int mark_duplicates(struct batch *batch, const struct read_reply *read)
{
    size_t table = 16;
    while (table < 2 * batch->entry_count + 2)
        table *= 2;
    batch->id_table = 0; /* no table until it is whole */
    if (grow((void **)&batch->id_slots, &batch->id_slot_room, table, sizeof *batch->id_slots) != 0)
        return -1;
    uint32_t *slots = batch->id_slots;
    memset(slots, 0, table * sizeof *slots);
    batch->id_table = table;
    batch->applied = batch->duplicates = 0;
    for (size_t i = 0; i < batch->group_count; i++)
        batch->groups[i].duplicates = 0;
    for (size_t i = 0; i < batch->entry_count; i++) {
        struct batch_entry *entry = &batch->entries[i];
        bool duplicate = applied_ahead(batch, &entry->id);
        for (size_t s = 0; s < read->spans && !duplicate; s++)
            duplicate = read->seen[s] && reply_number(read->seen[s]->element[i], 0) == 1;
        for (size_t slot = text_hash(entry->id.bytes, entry->id.length) & (table - 1);;
             slot = (slot + 1) & (table - 1)) {
            if (slots[slot] == 0) {
                slots[slot] = (uint32_t)i + 1;
                break;
            }
            const struct batch_entry *other = &batch->entries[slots[slot] - 1];
            if (other->id.length == entry->id.length &&
                memcmp(other->id.bytes, entry->id.bytes, entry->id.length) == 0) {
                duplicate = true; /* a second copy in this batch */
                break;
            }
        }
        entry->duplicate = duplicate;
        if (duplicate) {
            batch->duplicates++;
            batch->groups[entry->group - 1].duplicates++;
        } else {
            batch->applied++;
        }
    }
    return 0;
}

/* Decodes the clocks read; an undecodable record is reported and treated as
 * no clock (a start may replace it). */
static void load_clocks(struct batch *batch, const struct read_reply *read, size_t requests)
{
    for (size_t i = 0; i < batch->clock_count; i++) {
        struct batch_clock *clock = &batch->clocks[i];
        const redisReply *value = read->records->element[i];
        clock->exists = clock->changed = false;
        clock->read_value = NULL;
        if (!is_string(value))
            continue;
        char err[160];
        clock->read_value = value->str;
        clock->read_length = value->len;
        if (clock_record_decode(value->str, value->len, &clock->engine.record, err,
                                sizeof err) != 0) {
            log_error("clocks: %s holds no clock record this daemon reads (%s); replaced by "
                      "the next start", clock->key, err);
            continue;
        }
        clock->exists = true;
    }
    for (size_t r = 0; r < requests; r++) {
        struct batch_clock *clock = &batch->clocks[batch->ops[batch->entry_requests[r]].clock];
        const redisReply *entry = read->entries->element[r];
        clock->engine.has_entry = is_string(entry) && entry->len < sizeof clock->engine.entry;
        if (clock->engine.has_entry)
            memcpy(clock->engine.entry, entry->str, entry->len + 1);
    }
}

/* The instant up to which every due level of `partition` was claimed (wall
 * mode), from the read's <prefix>claimed. */
static bool claimed_since(const struct read_reply *read, const char *partition, int64_t *since)
{
    const redisReply *pairs = read->claimed;
    for (size_t i = 0; i + 1 < pairs->elements; i += 2)
        if (is_string(pairs->element[i]) && strcmp(pairs->element[i]->str, partition) == 0) {
            *since = reply_number(pairs->element[i + 1], 0);
            return true;
        }
    return false;
}

/* What the ops of one computation share. */
struct op_context {
    struct batch *batch;
    const struct batch_settings *settings;
    const struct read_reply *read;
    char (*marker_values)[MARKER_VALUE_MAX]; /* written by this batch (MARKER_VALUE_MAX) */
    const char *event_id;
    bool failed; /* out of memory on the way */
};

/* "Now" as seen by an event: in event mode the time its own partition had
 * reached before it (depending on nothing but the partition's own order, so
 * a replay decides exactly as the live run did however partitions
 * interleave); in wall mode the wall clock. */
static int64_t now_for(const struct op_context *ctx, const struct batch_entry *entry)
{
    int64_t now = ctx->settings->now_ms;
    if (ctx->settings->event_time) {
        now = ctx->batch->partitions[entry->partition].stored_time_ms;
        if (entry->partition_time_before_ms > now)
            now = entry->partition_time_before_ms;
    }
    return now > entry->ts_ms ? now : entry->ts_ms;
}

/* The partition's time before the event (event mode: the highest ts applied
 * from it, its earlier events in this batch included), -1 none. */
static int64_t partition_time_before(const struct op_context *ctx,
                                     const struct batch_entry *entry)
{
    int64_t time = ctx->batch->partitions[entry->partition].stored_time_ms;
    return entry->partition_time_before_ms > time ? entry->partition_time_before_ms : time;
}

/* The `since` of an event's engine call (clock_engine.h): in wall mode the
 * clock's partition's last claim, in event mode the event's partition's
 * time before it. */
static bool since_for(const struct op_context *ctx, const struct batch_entry *entry,
                      const struct clock_record *c, int64_t *since)
{
    if (!ctx->settings->event_time)
        return claimed_since(ctx->read, c->partition, since);
    *since = partition_time_before(ctx, entry);
    return true;
}

/* A stop marker of the clock's key, parsed. */
struct stop_marker {
    bool stops;      /* by an event of a type that stops the rule, at or after the start */
    bool pending;    /* it found no clock: the start it is for runs to it */
    int type;        /* enum event_type */
    int64_t ts;
    char id[CLOCK_TEXT_MAX];
};

/* The newest marker of the op's key: this batch's, the batches ahead's, or
 * the stored one. */
static struct stop_marker read_marker(const struct op_context *ctx, const struct batch_op *op)
{
    struct stop_marker result = {.stops = false};
    const char *marker = ctx->marker_values[op->marker];
    if (marker[0] == '\0')
        marker = marker_ahead(ctx->batch, ctx->batch->markers[op->marker]);
    if (marker == NULL || marker[0] == '\0') {
        /* the newest span asked that holds one */
        const redisReply *stored = NULL;
        for (size_t s = ctx->read->spans; s > 0 && stored == NULL; s--) {
            const redisReply *span = ctx->read->markers[s - 1];
            if (span && is_string(span->element[op->marker]))
                stored = span->element[op->marker];
        }
        if (stored == NULL)
            return result;
        marker = stored->str;
    }
    const char *bar = strchr(marker, '|');
    if (bar == NULL)
        return result;
    int type = result.type = event_type_from_name(marker, (size_t)(bar - marker));
    char *end;
    result.ts = strtoll(bar + 1, &end, 10);
    result.stops = type >= 0 && clock_setup_rule_stops_on(ctx->settings->setup, op->rule, type) &&
                   result.ts >= op->ts_ms;
    if (*end == '|' && end[1] != '\0' && strlen(end + 1) < sizeof result.id) {
        result.pending = true;
        snprintf(result.id, sizeof result.id, "%s", end + 1);
    }
    return result;
}

/* The running clocks of the rule and unit (and _all), listed in
 * <prefix>running for the end-of-day snapshots, which also read the starts
 * and stops of the event's local day: <prefix>changes:<day>, fields
 * "<rule>:<unit>:started" and ":stopped" (the snapshot of a day before,
 * taken once the daemon's time has passed it, takes them back out of the
 * running counts it reads). */
static void count_running(struct op_context *ctx, const struct batch_op *op, const char *unit,
                          day_number event_day, int64_t delta)
{
    char key[KEY_MAX], field[KEY_MAX];
    const char *const who[2] = {unit, "_all"};
    const char *prefix = ctx->settings->key_prefix;
    for (int w = 0; w < 2; w++) {
        struct text_buffer text = text_start(key, sizeof key);
        text_add(&text, prefix);
        text_add_bytes(&text, "active:", 7);
        text_add(&text, op->rule);
        text_add_char(&text, ':');
        text_add(&text, who[w]);
        if (effects_add(ctx->batch->effects, key, delta) != 0)
            ctx->failed = true;
        if (delta <= 0)
            continue;
        text = text_start(field, sizeof field);
        text_add(&text, op->rule);
        text_add_char(&text, ':');
        text_add(&text, who[w]);
        text = text_start(key, sizeof key);
        text_add(&text, prefix);
        text_add(&text, "running");
        if (effects_list_member(ctx->batch->effects, key, field) != 0)
            ctx->failed = true;
    }
    char day[16];
    calendar_format_day(event_day, day, sizeof day);
    struct text_buffer text = text_start(key, sizeof key);
    text_add(&text, prefix);
    text_add_bytes(&text, "changes:", 8);
    text_add(&text, day);
    text = text_start(field, sizeof field);
    text_add(&text, op->rule);
    text_add_char(&text, ':');
    text_add(&text, unit);
    text_add(&text, delta > 0 ? ":started" : ":stopped");
    if (effects_count(ctx->batch->effects, key, field, 1, SNAPSHOT_CHANGES_TTL) != 0)
        ctx->failed = true;
}

/* The resolution counters of a stop, in the buckets of its day. */
static void count_resolved(struct op_context *ctx, day_number day, const struct batch_op *op,
                           const char *unit, bool late)
{
    char field[KEY_MAX];
    struct text_buffer text = text_start(field, sizeof field);
    text_add(&text, "resolved.");
    text_add(&text, op->rule);
    text_add(&text, late ? ".late" : ".ontime");
    const char *const who[2] = {unit, "_all"};
    for (int w = 0; w < 2; w++) {
        struct counter_keys keys;
        counter_keys_of_day(ctx->settings->key_prefix, day, who[w], false, &keys);
        for (int p = 0; p < COUNTER_PERIODS; p++)
            if (effects_count(ctx->batch->effects, keys.key[p], field, 1,
                              ctx->settings->counter_ttl_seconds) != 0)
                ctx->failed = true;
    }
}

/* A start whose stop came first (a pending marker: the stop found no clock,
 * e.g. applied first from another partition): the clock runs from its start
 * to the stop as if they had come in order -- levels due before the stop
 * fire (clock_engine_stop), then the resolution, late when after the
 * deadline -- and is not left running.  The marker is consumed, so another
 * start of the key raises nothing. */
static void run_to_stop(struct op_context *ctx, const struct batch_entry *entry,
                        const struct batch_op *op, struct batch_clock *clock,
                        const struct stop_marker *marker)
{
    struct clock_record *c = &clock->engine.record;
    int64_t since = 0;
    bool has_since = since_for(ctx, entry, c, &since);
    if (ctx->settings->event_time)
        since = now_for(ctx, entry); /* what the start itself fired up to */
    bool late;
    clock_engine_stop(ctx->batch->engine, &clock->engine, marker->ts, has_since, since,
                      marker->id, &late);
    clock->exists = false;
    count_resolved(ctx, calendar_local_day(marker->ts), op, c->unit, late);
    snprintf(ctx->marker_values[op->marker], sizeof ctx->marker_values[op->marker],
             "%s|%" PRId64, event_type_name((enum event_type)marker->type), marker->ts);
}

static void op_start(struct op_context *ctx, const struct batch_entry *entry,
                     const struct batch_op *op, struct batch_clock *clock)
{
    if (clock->exists)
        return; /* a second start of a running clock */
    struct stop_marker marker = read_marker(ctx, op);
    if (marker.stops && !marker.pending)
        return; /* stopped (or run to its stop) already */
    struct clock_record *c = &clock->engine.record;
    memset(c, 0, sizeof *c);
    struct text_buffer text = text_start(c->unit, sizeof c->unit);
    text_add_bytes(&text, op->unit.bytes, op->unit.length);
    text = text_start(c->case_number, sizeof c->case_number);
    text_add_bytes(&text, op->case_number.bytes, op->case_number.length);
    text = text_start(c->subject, sizeof c->subject);
    text_add_bytes(&text, op->subject.bytes, op->subject.length);
    text = text_start(c->cause, sizeof c->cause);
    text_add_bytes(&text, op->id.bytes, op->id.length);
    text = text_start(c->partition, sizeof c->partition);
    text_add(&text, ctx->batch->partitions[entry->partition].key_text);
    c->started_at_ms = op->ts_ms;
    c->has_last_day = op->op.has_last_day;
    c->last_day = op->op.last_day;
    c->base_deadline_ms = op->op.base_deadline_ms;
    c->fired = -1;
    clock->engine.has_entry = op->op.provisional_entry[0] != '\0';
    snprintf(clock->engine.entry, sizeof clock->engine.entry, "%s", op->op.provisional_entry);
    clock->engine.until_beyond_law = op->op.until_beyond_law;
    clock->exists = clock->changed = true;
    /* The levels a starting clock fires at once, collapsed to the latest:
     * those due by its partition's time (backfill: a start behind its
     * partition).  In wall mode only those due by its own ts fire here: the
     * claim that follows the batch fires the latest due level, after the
     * batch's own stops have had their say. */
    clock_engine_start(ctx->batch->engine, &clock->engine,
                       ctx->settings->event_time ? now_for(ctx, entry) : op->ts_ms);
    if (marker.stops) {
        run_to_stop(ctx, entry, op, clock, &marker);
        return;
    }
    count_running(ctx, op, c->unit, ctx->batch->groups[entry->group - 1].day, 1);
}

static void op_stop(struct op_context *ctx, const struct batch_entry *entry,
                    const struct batch_op *op, struct batch_clock *clock)
{
    bool stopped = clock->exists;
    if (clock->exists) {
        struct clock_record *c = &clock->engine.record;
        int64_t since = 0;
        bool has_since = since_for(ctx, entry, c, &since);
        bool late;
        clock_engine_stop(ctx->batch->engine, &clock->engine, op->ts_ms, has_since, since,
                          ctx->event_id, &late);
        clock->exists = false;
        clock->changed = true;
        day_number day = ctx->batch->groups[entry->group - 1].day;
        count_running(ctx, op, c->unit, day, -1);
        count_resolved(ctx, day, op, c->unit, late);
    }
    /* A stop that found no clock is pending: its id goes with it.  One that
     * stopped a clock of another rule of the key stays resolved. */
    char resolved[64];
    snprintf(resolved, sizeof resolved, "%s|%" PRId64, event_type_name(op->type), op->ts_ms);
    char *value = ctx->marker_values[op->marker];
    if (stopped || strcmp(value, resolved) == 0)
        snprintf(value, MARKER_VALUE_MAX, "%s", resolved);
    else
        snprintf(value, MARKER_VALUE_MAX, "%s|%.64s", resolved, ctx->event_id);
}

static void op_change(struct op_context *ctx, const struct batch_entry *entry,
                      const struct batch_op *op, struct batch_clock *clock)
{
    if (!clock->exists)
        return;
    struct clock_engine *engine = ctx->batch->engine;
    struct clock_record *c = &clock->engine.record;
    int64_t since = 0;
    bool has_since = since_for(ctx, entry, c, &since);
    switch (op->op.kind) {
    case CLOCK_OP_EXTEND:
        clock_engine_extend(engine, &clock->engine, (int32_t)op->days, op->ground, op->ts_ms,
                            has_since, since, now_for(ctx, entry));
        break;
    case CLOCK_OP_PAUSE:
        if (c->paused)
            return;
        clock_engine_pause(engine, &clock->engine, op->ts_ms, has_since, since);
        break;
    case CLOCK_OP_RESUME:
        if (!c->paused)
            return;
        clock_engine_resume(engine, &clock->engine, op->ts_ms, now_for(ctx, entry));
        break;
    default:
        return;
    }
    clock->changed = true;
}

/* The ops of the new events, in order. */
static void apply_ops(struct op_context *ctx)
{
    struct batch *batch = ctx->batch;
    for (size_t i = 0; i < batch->entry_count; i++) {
        const struct batch_entry *entry = &batch->entries[i];
        if (entry->duplicate || entry->op_count == 0)
            continue;
        char event_id[CLOCK_TEXT_MAX];
        snprintf(event_id, sizeof event_id, "%.*s", (int)entry->id.length, entry->id.bytes);
        ctx->event_id = event_id;
        for (uint32_t k = 0; k < entry->op_count; k++) {
            const struct batch_op *op = &batch->ops[entry->first_op + k];
            struct batch_clock *clock = &batch->clocks[op->clock];
            /* the rule version of the clock's start (a start: the event's) */
            int64_t started = op->op.kind == CLOCK_OP_START && !clock->exists
                                  ? op->ts_ms
                                  : clock->engine.record.started_at_ms;
            const struct deadline_spec *spec =
                clock_setup_rule_spec(ctx->settings->setup, op->rule, started);
            if (spec == NULL)
                continue; /* a rule a reload removed */
            clock->engine.rule = op->rule;
            clock->engine.spec = spec;
            clock->engine.caps = clock_setup_rule_caps(ctx->settings->setup, op->rule, started);
            clock->engine.key = clock->key + strlen(clock->key) - op->op.key.length;
            if (op->op.kind == CLOCK_OP_START)
                op_start(ctx, entry, op, clock);
            else if (op->op.kind == CLOCK_OP_STOP)
                op_stop(ctx, entry, op, clock);
            else
                op_change(ctx, entry, op, clock);
        }
    }
    ctx->event_id = NULL; /* it pointed at this frame */
}

/* The clocks changed: written back, each checked to be as read. */
static int write_clocks(struct batch *batch)
{
    for (size_t i = 0; i < batch->clock_count; i++) {
        struct batch_clock *clock = &batch->clocks[i];
        if (!clock->changed)
            continue;
        /* as read: holding that value, or (a start) still no clock -- the same
         * key started meanwhile from another partition loses nothing */
        if ((clock->read_value ? effects_expect_value(batch->effects, clock->key,
                                                      clock->read_value, clock->read_length)
                               : effects_expect_absent(batch->effects, clock->key)) != 0)
            return -1;
        if (!clock->exists) {
            if (clock->read_value && effects_set_value(batch->effects, clock->key, NULL, 0) != 0)
                return -1;
            continue;
        }
        int length = clock_record_encode(&clock->engine.record, clock->written,
                                         sizeof clock->written);
        if (length < 0 ||
            effects_set_value(batch->effects, clock->key, clock->written, (size_t)length) != 0)
            return -1;
        clock->written_length = (size_t)length;
    }
    return 0;
}

/* The fields a counter group's events count in: <type>, and where the
 * event has them <type>:<kind>, <type>:<qualifier>, <type>:<kind>:<qualifier>
 * (README "Counters").  Returns how many were written into fields. */
static int group_fields(const struct counter_group *group, char fields[][KEY_MAX])
{
    const char *type = event_type_name(group->type);
    int count = 0;
    snprintf(fields[count++], KEY_MAX, "%s", type);
    const struct text *kind = &group->kind;
    if (kind->length > 0)
        snprintf(fields[count++], KEY_MAX, "%s:%.*s", type, (int)kind->length, kind->bytes);
    for (int q = 0; q < EVENT_QUALIFIER_COUNT; q++) {
        const struct text *value = &group->qualifiers[q];
        if (value->length == 0)
            continue;
        snprintf(fields[count++], KEY_MAX, "%s:%.*s", type, (int)value->length, value->bytes);
        if (kind->length > 0)
            snprintf(fields[count++], KEY_MAX, "%s:%.*s:%.*s", type, (int)kind->length,
                     kind->bytes, (int)value->length, value->bytes);
    }
    return count;
}

/* A group's events in the sliding windows' hour and minute buckets, by
 * type alone (dw_window sums every field). */
static int write_window_counts(struct batch *batch, const struct batch_settings *settings,
                               const struct counter_group *group, const char *unit, int64_t n)
{
    const char *const who[2] = {unit, "_all"};
    const char *const kinds[2] = {"wh", "wm"};
    const int64_t indexes[2] = {group->hour_index, group->minute_index};
    const int64_t ttls[2] = {HOUR_BUCKET_TTL, MINUTE_BUCKET_TTL};
    char key[KEY_MAX];
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < 2; k++) {
            if (indexes[k] < 0)
                continue; /* outside that window */
            /* "<prefix><kind>:<index>:<unit>" */
            struct text_buffer text = text_start(key, sizeof key);
            text_add(&text, settings->key_prefix);
            text_add(&text, kinds[k]);
            text_add_char(&text, ':');
            text_add_number(&text, indexes[k]);
            text_add_char(&text, ':');
            text_add(&text, who[w]);
            if (effects_count(batch->effects, key, event_type_name(group->type), n,
                              ttls[k]) != 0)
                return -1;
        }
    return 0;
}

/* A period leader's events, per day, ISO week, month, quarter and year. */
static int write_period_counts(struct batch *batch, const struct batch_settings *settings,
                               const struct counter_group *leader, const char *unit)
{
    char fields[1 + 2 * EVENT_QUALIFIER_COUNT + 1][KEY_MAX];
    int field_count = group_fields(leader, fields);
    const char *const who[2] = {unit, "_all"};
    for (int w = 0; w < 2; w++) {
        struct counter_keys keys;
        counter_keys_of_day(settings->key_prefix, leader->day, who[w], false, &keys);
        for (int p = 0; p < COUNTER_PERIODS; p++)
            for (int f = 0; f < field_count; f++)
                if (effects_count(batch->effects, keys.key[p], fields[f], leader->period_events,
                                  settings->counter_ttl_seconds) != 0)
                    return -1;
    }
    return 0;
}

/* Each counter group's events (less its duplicates): summed per period
 * leader in the period buckets, and in the sliding windows. */
static int write_counters(struct batch *batch, const struct batch_settings *settings)
{
    for (size_t g = 0; g < batch->group_count; g++)
        batch->groups[g].period_events = 0;
    for (size_t g = 0; g < batch->group_count; g++) {
        const struct counter_group *group = &batch->groups[g];
        batch->groups[group->period_leader - 1].period_events +=
            (int64_t)group->event_count - group->duplicates;
    }
    for (size_t g = 0; g < batch->group_count; g++) {
        const struct counter_group *group = &batch->groups[g];
        int64_t n = (int64_t)group->event_count - group->duplicates;
        char unit[CLOCK_TEXT_MAX];
        snprintf(unit, sizeof unit, "%.*s", (int)group->unit.length, group->unit.bytes);
        if (group->period_events > 0 && write_period_counts(batch, settings, group, unit) != 0)
            return -1;
        if (n > 0 && write_window_counts(batch, settings, group, unit, n) != 0)
            return -1;
    }
    return 0;
}

/* Orders person entries by period leader (then as added). */
static int compare_by_leader(const void *a, const void *b, void *arg)
{
    const struct batch *batch = arg;
    const struct batch_entry *x = &batch->entries[*(const uint32_t *)a];
    const struct batch_entry *y = &batch->entries[*(const uint32_t *)b];
    uint32_t lx = batch->groups[x->group - 1].period_leader;
    uint32_t ly = batch->groups[y->group - 1].period_leader;
    if (lx != ly)
        return lx < ly ? -1 : 1;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* The persons of the new entries listed (indexes into entries, ordered by
 * period leader) of one leader: each subject counted once per bucket in
 * persons.<type>[:<kind>] (README "Counters"). */
static int write_leader_persons(struct batch *batch, const struct batch_settings *settings,
                                const struct counter_group *leader, const uint32_t *list,
                                size_t count)
{
    char unit[CLOCK_TEXT_MAX], counted[96], field[128], member[KEY_MAX];
    snprintf(unit, sizeof unit, "%.*s", (int)leader->unit.length, leader->unit.bytes);
    if (leader->kind.length > 0)
        snprintf(counted, sizeof counted, "%s:%.*s", event_type_name(leader->type),
                 (int)leader->kind.length, leader->kind.bytes);
    else
        snprintf(counted, sizeof counted, "%s", event_type_name(leader->type));
    snprintf(field, sizeof field, "persons.%s", counted);
    const char *const who[2] = {unit, "_all"};
    for (int w = 0; w < 2; w++) {
        struct counter_keys keys, members;
        counter_keys_of_day(settings->key_prefix, leader->day, who[w], false, &keys);
        counter_keys_of_day(settings->key_prefix, leader->day, who[w], true, &members);
        for (int p = 0; p < COUNTER_PERIODS; p++) {
            for (size_t i = 0; i < count; i++) {
                const struct text *subject = &batch->entries[list[i]].subject;
                struct text_buffer text = text_start(member, sizeof member);
                text_add(&text, counted);
                text_add_char(&text, '|');
                text_add_bytes(&text, subject->bytes, subject->length);
                if (effects_count_distinct(batch->effects, members.key[p], member, keys.key[p],
                                           field) != 0)
                    return -1;
            }
            if (effects_expire(batch->effects, members.key[p],
                               settings->counter_ttl_seconds) != 0)
                return -1;
        }
    }
    return 0;
}

/* Each new event naming a person, in the persons' buckets of its leader
 * (the bucket names made once per leader). */
static int write_persons(struct batch *batch, const struct batch_settings *settings)
{
    uint32_t *list = malloc((batch->entry_count + 1) * sizeof *list);
    if (list == NULL)
        return -1;
    size_t count = 0;
    for (size_t i = 0; i < batch->entry_count; i++)
        if (!batch->entries[i].duplicate && batch->entries[i].subject.length > 0)
            list[count++] = (uint32_t)i;
    qsort_r(list, count, sizeof *list, compare_by_leader, batch);
    int result = 0;
    for (size_t first = 0, end; first < count && result == 0; first = end) {
        uint32_t leader = batch->groups[batch->entries[list[first]].group - 1].period_leader;
        end = first + 1;
        while (end < count &&
               batch->groups[batch->entries[list[end]].group - 1].period_leader == leader)
            end++;
        result = write_leader_persons(batch, settings, &batch->groups[leader - 1], list + first,
                                      end - first);
    }
    free(list);
    return result;
}

/* New ids and stop markers into the current span; offsets and event times. */
static int write_progress(struct batch *batch, const struct batch_settings *settings,
                          char (*marker_values)[MARKER_VALUE_MAX])
{
    int64_t span_ttl = spans_for(settings->dedupe_ttl_seconds).ttl_seconds;
    const char *ids_key = batch->span_keys[0][batch->span_count - 1];
    const char *markers_key = batch->span_keys[1][batch->span_count - 1];
    for (size_t i = 0; i < batch->entry_count; i++)
        if (!batch->entries[i].duplicate &&
            effects_set_member(batch->effects, ids_key, batch->entries[i].id.bytes,
                               batch->entries[i].id.length, span_ttl) != 0)
            return -1;
    bool markers_written = false;
    for (size_t i = 0; i < batch->marker_count; i++) {
        if (marker_values[i][0] == '\0')
            continue;
        markers_written = true;
        if (effects_hash(batch->effects, markers_key, batch->markers[i], marker_values[i],
                         strlen(marker_values[i])) != 0)
            return -1;
    }
    if (markers_written && effects_expire(batch->effects, markers_key, span_ttl) != 0)
        return -1;
    char key[KEY_MAX], text[24];
    for (size_t i = 0; i < batch->partition_count; i++) {
        const struct partition_progress *progress = &batch->partitions[i];
        snprintf(key, sizeof key, "%soffsets", settings->key_prefix);
        snprintf(text, sizeof text, "%" PRId64, progress->next_offset);
        if (effects_hash(batch->effects, key, progress->key_text, text, strlen(text)) != 0)
            return -1;
        if (progress->max_event_time_ms < 0 ||
            progress->max_event_time_ms <= progress->stored_time_ms)
            continue;
        snprintf(key, sizeof key, "%seventtime", settings->key_prefix);
        snprintf(text, sizeof text, "%" PRId64, progress->max_event_time_ms);
        if (effects_hash(batch->effects, key, progress->key_text, text, strlen(text)) != 0)
            return -1;
    }
    return 0;
}

int batch_compute(struct batch *batch, const struct redisReply *reply,
                  const struct batch_settings *settings, char *err, size_t err_size)
{
    size_t requests = 0;
    for (size_t i = 0; i < batch->clock_count; i++)
        requests += batch->clocks[i].wants_entry;
    struct read_reply read;
    if (parse_read(batch, reply, requests, settings->span_hints, &read, err, err_size) != 0)
        return -1;
    effects_reset(batch->effects);
    if (mark_duplicates(batch, &read) != 0)
        goto out_of_memory;
    load_clocks(batch, &read, requests);
    for (size_t i = 0; i < batch->partition_count; i++)
        batch->partitions[i].stored_time_ms = reply_number(read.times->element[i], -1);
    apply_ahead(batch);
    if (grow((void **)&batch->marker_values, &batch->marker_value_room, batch->marker_count + 1,
             sizeof *batch->marker_values) != 0)
        goto out_of_memory;
    char (*marker_values)[MARKER_VALUE_MAX] = batch->marker_values;
    for (size_t i = 0; i <= batch->marker_count; i++)
        marker_values[i][0] = '\0'; /* none written */
    clock_engine_begin(batch->engine, settings->key_prefix,
                       clock_setup_holidays(settings->setup), !settings->event_time,
                       settings->counter_ttl_seconds, BATCH_ALERT_BUDGET, batch->effects);
    clock_engine_set_backfill(batch->engine, settings->backfill_window_ms,
                              settings->event_time ? 0 : settings->now_ms);
    struct op_context ctx = {batch, settings, &read, marker_values, NULL, false};
    apply_ops(&ctx);
    bool failed = ctx.failed || clock_engine_failed(batch->engine) || write_clocks(batch) != 0 ||
                  write_counters(batch, settings) != 0 || write_persons(batch, settings) != 0 ||
                  write_progress(batch, settings, marker_values) != 0;
    if (!failed)
        return 0;
out_of_memory:
    snprintf(err, err_size, "out of memory computing a batch");
    return -1;
}

int batch_build_write(struct batch *batch, const char *script_sha,
                      const struct batch_settings *settings, const char ***argv,
                      const size_t **argv_lengths)
{
    return effects_build(batch->effects, script_sha, settings->fence_key,
                         settings->fence_position, argv, argv_lengths);
}

uint64_t batch_applied_count(const struct batch *batch) { return batch->applied; }

int64_t batch_earliest_event_ms(const struct batch *batch)
{
    int64_t earliest = -1;
    for (size_t i = 0; i < batch->entry_count; i++)
        if (!batch->entries[i].duplicate &&
            (earliest < 0 || batch->entries[i].ts_ms < earliest))
            earliest = batch->entries[i].ts_ms;
    return earliest;
}
uint64_t batch_duplicate_count(const struct batch *batch) { return batch->duplicates; }
const struct clock_engine *batch_engine(const struct batch *batch) { return batch->engine; }
