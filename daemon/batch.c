/* Batch of events, reduced as they are added (see batch.h); reading the
 * state a batch needs and computing its effects are batch_apply.c's. */
#include "batch.h"

#include "batch_private.h"
#include "calendar.h"
#include "clock_engine.h"
#include "effects.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct batch *batch_create(size_t max_events, batch_release_message release)
{
    struct batch *batch = calloc(1, sizeof *batch);
    if (batch == NULL)
        return NULL;
    batch->max_events = max_events;
    batch->release = release;
    batch->slot_count = 16;
    while (batch->slot_count < 2 * max_events)
        batch->slot_count *= 2;
    batch->messages = calloc(max_events, sizeof *batch->messages);
    batch->entries = calloc(max_events, sizeof *batch->entries);
    batch->groups = calloc(max_events, sizeof *batch->groups);
    batch->group_slots = calloc(batch->slot_count, sizeof *batch->group_slots);
    batch->leader_slots = calloc(batch->slot_count, sizeof *batch->leader_slots);
    batch->effects = effects_create();
    batch->engine = clock_engine_create();
    if (!batch->messages || !batch->entries || !batch->groups || !batch->group_slots ||
        !batch->leader_slots || !batch->effects || !batch->engine)
        goto fail;
    batch->cached_day_end_ms = INT64_MIN;
    return batch;
fail:
    batch_destroy(batch);
    return NULL;
}

void batch_reset(struct batch *batch)
{
    for (size_t i = 0; i < batch->message_count; i++)
        if (batch->release)
            batch->release(batch->messages[i]);
    batch->message_count = 0;
    batch->entry_count = 0;
    batch->added_count = 0;
    batch->op_count = 0;
    batch->clock_count = 0;
    batch->marker_count = 0;
    batch->applied = batch->duplicates = 0;
    batch->ahead_count = 0;
    effects_reset(batch->effects);
    /* The slot table is small next to the work of a batch: wipe it whole. */
    if (batch->group_count) {
        memset(batch->group_slots, 0, batch->slot_count * sizeof *batch->group_slots);
        memset(batch->leader_slots, 0, batch->slot_count * sizeof *batch->leader_slots);
    }
    batch->group_count = 0;
    for (size_t i = 0; i < batch->partition_count; i++)
        free(batch->partitions[i].key_text);
    batch->partition_count = 0;
}

void batch_destroy(struct batch *batch)
{
    if (batch == NULL)
        return;
    if (batch->messages)
        batch_reset(batch);
    free(batch->messages);
    free(batch->entries);
    free(batch->groups);
    free(batch->group_slots);
    free(batch->leader_slots);
    free(batch->partitions);
    free(batch->ops);
    free(batch->clocks);
    free(batch->markers);
    free(batch->read_argv);
    free(batch->read_lengths);
    free(batch->entry_requests);
    free(batch->clock_slots);
    free(batch->marker_slots);
    free(batch->id_slots);
    free(batch->marker_values);
    effects_destroy(batch->effects);
    clock_engine_destroy(batch->engine);
    free(batch);
}

static uint32_t hash_bytes(uint32_t hash, const struct text *text)
{
    for (uint32_t i = 0; i < text->length; i++)
        hash = (hash ^ (uint8_t)text->bytes[i]) * 16777619u;
    return (hash ^ 0xffu) * 16777619u; /* a separator: "ab","c" differs from "a","bc" */
}

/* FNV-1a over the eight bytes of a number. */
static uint32_t hash_number(uint32_t hash, uint64_t number)
{
    for (unsigned shift = 0; shift < 64; shift += 8)
        hash = (hash ^ (uint32_t)((number >> shift) & 0xffu)) * 16777619u;
    return hash;
}

/* FNV-1a over what makes a period leader: unit, type, kind, qualifiers and
 * day (find_or_add_group). */
static uint32_t hash_period(const struct duewatch_event *event, day_number day)
{
    uint32_t hash = hash_bytes(2166136261u, &event->unit);
    hash = hash_bytes(hash, &event->kind);
    for (int q = 0; q < EVENT_QUALIFIER_COUNT; q++)
        hash = hash_bytes(hash, &event->qualifiers[q]);
    hash = hash_number(hash, (uint64_t)event->type);
    return hash_number(hash, (uint64_t)(int64_t)day);
}

/* ... and of a counter group: the period's, the hour and the minute. */
static uint32_t hash_group(uint32_t period_hash, int64_t hour_index, int64_t minute_index)
{
    return hash_number(hash_number(period_hash, (uint64_t)hour_index), (uint64_t)minute_index);
}

static bool same_text(const struct text *a, const struct text *b)
{
    return a->length == b->length &&
           (a->length == 0 || memcmp(a->bytes, b->bytes, a->length) == 0);
}

/* The group counts the event in the same period buckets. */
static bool same_period(const struct counter_group *group, const struct duewatch_event *event,
                        day_number day)
{
    if (group->type != event->type || group->day != day ||
        !same_text(&group->unit, &event->unit) || !same_text(&group->kind, &event->kind))
        return false;
    for (int q = 0; q < EVENT_QUALIFIER_COUNT; q++)
        if (!same_text(&group->qualifiers[q], &event->qualifiers[q]))
            return false;
    return true;
}

static day_number local_day(struct batch *batch, int64_t ts_ms)
{
    if (ts_ms >= batch->cached_day_start_ms && ts_ms < batch->cached_day_end_ms)
        return batch->cached_day;
    day_number day = calendar_local_day(ts_ms);
    batch->cached_day = day;
    batch->cached_day_start_ms = calendar_day_start_ms(day);
    batch->cached_day_end_ms = calendar_day_start_ms(day + 1);
    return day;
}

/* The group number (1-based) in `slots` whose hash is `hash` and which
 * counts the event in the same periods (and, given a window {hour index,
 * minute index}, in the same hour and minute); when there is none, returns 0
 * and the free slot for it in *free_slot. */
static uint32_t find_group(const struct batch *batch, const int32_t *slots, uint32_t hash,
                           const struct duewatch_event *event, day_number day,
                           const int64_t window[2], size_t *free_slot)
{
    size_t mask = batch->slot_count - 1;
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
        int32_t number = slots[slot];
        if (number == 0) {
            *free_slot = slot;
            return 0;
        }
        const struct counter_group *group = &batch->groups[number - 1];
        bool matches = window ? group->hash == hash && group->hour_index == window[0] &&
                                    group->minute_index == window[1]
                              : group->period_hash == hash;
        if (matches && same_period(group, event, day))
            return (uint32_t)number;
    }
}

/* Events of one unit, type, kind, qualifiers, day, hour and minute share
 * their counter increments; the groups of one day share a period leader. */
static uint32_t find_or_add_group(struct batch *batch, const struct duewatch_event *event, int64_t now_ms)
{
    day_number day = local_day(batch, event->ts_ms);
    int64_t age = now_ms - event->ts_ms;
    const int64_t window[2] = {age <= HOUR_WINDOW_REACH_MS ? event->ts_ms / HOUR_MS : -1,
                               age <= MINUTE_WINDOW_REACH_MS ? event->ts_ms / MINUTE_MS : -1};
    uint32_t period_hash = hash_period(event, day);
    uint32_t hash = hash_group(period_hash, window[0], window[1]);
    size_t group_slot, leader_slot;
    uint32_t number = find_group(batch, batch->group_slots, hash, event, day, window, &group_slot);
    if (number != 0) {
        batch->groups[number - 1].event_count++;
        return number;
    }
    uint32_t leader = find_group(batch, batch->leader_slots, period_hash, event, day, NULL,
                                 &leader_slot);
    struct counter_group *group = &batch->groups[batch->group_count++];
    group->unit = event->unit;
    group->type = event->type;
    group->kind = event->kind;
    memcpy(group->qualifiers, event->qualifiers, sizeof group->qualifiers);
    group->day = day;
    group->hour_index = window[0];
    group->minute_index = window[1];
    group->hash = hash;
    group->period_hash = period_hash;
    group->event_count = 1;
    group->duplicates = 0;
    group->period_leader = leader ? leader : (uint32_t)batch->group_count;
    batch->group_slots[group_slot] = (int32_t)batch->group_count;
    if (leader == 0)
        batch->leader_slots[leader_slot] = (int32_t)batch->group_count;
    return (uint32_t)batch->group_count;
}

int batch_add_event(struct batch *batch, const struct duewatch_event *event, int64_t now_ms,
                    const struct clock_op *ops, int op_count)
{
    if (batch->entry_count >= batch->max_events || batch->partition_count == 0)
        return -1;
    if (batch->op_count + (size_t)op_count > batch->op_capacity) {
        size_t capacity = batch->op_capacity ? batch->op_capacity : 256;
        while (capacity < batch->op_count + (size_t)op_count)
            capacity *= 2;
        struct batch_op *grown = realloc(batch->ops, capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        batch->ops = grown;
        batch->op_capacity = capacity;
    }
    batch->added_count++;
    struct partition_progress *progress = &batch->partitions[batch->last_partition];
    int64_t partition_time_before = progress->max_event_time_ms;
    if (event->ts_ms > progress->max_event_time_ms)
        progress->max_event_time_ms = event->ts_ms;
    if (event->type == EVENT_CLOCK_TICK)
        return 0;
    struct batch_entry *entry = &batch->entries[batch->entry_count++];
    entry->id = event->id;
    entry->subject = event_type_counts_persons(event->type) ? event->subject
                                                             : (struct text){"", 0};
    entry->ts_ms = event->ts_ms;
    entry->partition_time_before_ms = partition_time_before;
    entry->group = find_or_add_group(batch, event, now_ms);
    entry->partition = (uint32_t)batch->last_partition;
    entry->first_op = (uint32_t)batch->op_count;
    entry->op_count = (uint32_t)op_count;
    entry->duplicate = false;
    for (int i = 0; i < op_count; i++) {
        struct batch_op *op = &batch->ops[batch->op_count++];
        op->op = ops[i];
        snprintf(op->rule, sizeof op->rule, "%s", ops[i].rule);
        op->op.rule = op->rule;
        op->id = event->id;
        op->ts_ms = event->ts_ms;
        op->unit = event->unit;
        op->case_number = event->case_number;
        op->subject = event->subject;
        op->type = event->type;
        op->days = event->days;
        op->ground = event->ground;
    }
    return 0;
}

int batch_hold(struct batch *batch, void *message, const char *topic, int32_t partition,
               int64_t offset)
{
    if (batch->message_count >= batch->max_events)
        return -1;
    struct partition_progress *progress = NULL;
    for (size_t i = 0; i < batch->partition_count; i++)
        if (batch->partitions[i].partition == partition &&
            strcmp(batch->partitions[i].topic, topic) == 0) {
            progress = &batch->partitions[i];
            break;
        }
    if (progress == NULL) {
        if (batch->partition_count == batch->partition_capacity) {
            size_t capacity = batch->partition_capacity ? batch->partition_capacity * 2 : 16;
            void *grown = realloc(batch->partitions, capacity * sizeof *batch->partitions);
            if (grown == NULL)
                return -1;
            batch->partitions = grown;
            batch->partition_capacity = capacity;
        }
        progress = &batch->partitions[batch->partition_count];
        progress->topic = topic;
        progress->partition = partition;
        progress->next_offset = offset + 1;
        progress->max_event_time_ms = -1;
        progress->stored_time_ms = -1;
        if (asprintf(&progress->key_text, "%s:%" PRId32, topic, partition) < 0)
            return -1;
        batch->partition_count++;
    }
    batch->last_partition = (size_t)(progress - batch->partitions);
    if (offset + 1 > progress->next_offset)
        progress->next_offset = offset + 1;
    batch->messages[batch->message_count++] = message;
    return 0;
}

size_t batch_event_count(const struct batch *batch) { return batch->added_count; }
size_t batch_message_count(const struct batch *batch) { return batch->message_count; }
bool batch_is_full(const struct batch *batch) { return batch->message_count >= batch->max_events; }
size_t batch_partition_count(const struct batch *batch) { return batch->partition_count; }

void batch_partition(const struct batch *batch, size_t index, const char **topic,
                     int32_t *partition, int64_t *next_offset, int64_t *max_event_time_ms)
{
    *topic = batch->partitions[index].topic;
    *partition = batch->partitions[index].partition;
    *next_offset = batch->partitions[index].next_offset;
    *max_event_time_ms = batch->partitions[index].max_event_time_ms;
}

