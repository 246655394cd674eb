/* Batch of events reduced for one EVALSHA of apply_batch.lua (see batch.h and
 * the ARGV layout documented at the top of daemon/lua/apply_batch.lua). */
#include "batch.h"

#include "calendar.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS 3600000LL
#define MINUTE_MS 60000LL
/* Sliding windows reach back 30 days (hour buckets) and 1 hour (minute
 * buckets); older events are not written there, so a replay of history does
 * not fill buckets that would expire unread. */
#define HOUR_WINDOW_REACH_MS (31LL * 24 * HOUR_MS)
#define MINUTE_WINDOW_REACH_MS (2LL * HOUR_MS)
#define GROUP_FIELDS 8
#define HEADER_FIELDS 13

struct counter_group {
    struct text unit;
    enum event_type type;
    day_number day;
    int64_t hour_index;   /* -1 = outside the hour windows */
    int64_t minute_index; /* -1 = outside the minute window */
    uint32_t hash;
    uint32_t event_count; /* events of the batch counted in this group */
    struct bucket_names names;
    char hour_text[24];
    char minute_text[24];
    char count_text[12];
};

/* An event with an id (a clock.tick only moves its partition's time, which
 * the batch keeps per partition, and is not an entry). */
struct batch_entry {
    struct text id;
    uint32_t group; /* 1-based */
    uint32_t partition; /* index into partitions */
    int64_t ts_ms;
    int64_t partition_time_before_ms; /* highest ts of the partition's earlier events in
                                         this batch, -1 none */
    uint32_t first_op, op_count;
    char group_text[12];
    char number_text[4][24];
};

/* A clock operation with what apply_batch.lua needs of its event. */
struct batch_op {
    struct clock_op op;
    struct text id, unit, case_number, subject;
    enum event_type type;
    uint32_t days;
    int64_t ts_ms;
    size_t head_offset, head_length; /* a start's record head, in batch->heads */
    char number_text[2][24];
};

struct partition_progress {
    const char *topic;
    int32_t partition;
    int64_t next_offset;
    int64_t max_event_time_ms; /* highest ts of the events added (ticks too), -1 none */
    char *key_text; /* "<topic>:<partition>" */
    char offset_text[24];
    char time_text[24];
};

struct batch {
    size_t max_events;
    batch_release_message release;
    void **messages;
    size_t message_count;
    struct batch_entry *entries;
    size_t entry_count;
    struct counter_group *groups;
    size_t group_count;
    int32_t *group_slots; /* open addressing: 0 = empty, else group number */
    size_t slot_count;    /* power of two, >= 2 * max_events */
    struct partition_progress *partitions;
    size_t partition_count;
    size_t partition_capacity;
    size_t last_partition; /* of the message held last */
    size_t op_event_count; /* entries with clock operations */
    size_t added_count;    /* events added, ticks included */
    struct batch_op *ops;
    size_t op_count, op_capacity;
    char *heads; /* the record heads of the batch's starts, rendered by the build */
    size_t heads_length, heads_capacity;
    /* command */
    const char **argv;
    size_t *argv_lengths;
    size_t argv_capacity;
    char header_text[HEADER_FIELDS][24];
    /* last day looked up, to skip the time-zone conversion for most events */
    int64_t cached_day_start_ms, cached_day_end_ms;
    day_number cached_day;
};

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
    batch->argv_capacity = HEADER_FIELDS + 3 + max_events * (GROUP_FIELDS + 2) + 2 * 64;
    batch->argv = calloc(batch->argv_capacity, sizeof *batch->argv);
    batch->argv_lengths = calloc(batch->argv_capacity, sizeof *batch->argv_lengths);
    if (!batch->messages || !batch->entries || !batch->groups || !batch->group_slots ||
        !batch->argv || !batch->argv_lengths)
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
    batch->op_event_count = 0;
    batch->added_count = 0;
    batch->op_count = 0;
    /* The slot table is small next to the work of a batch: wipe it whole. */
    if (batch->group_count)
        memset(batch->group_slots, 0, batch->slot_count * sizeof *batch->group_slots);
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
    free(batch->partitions);
    free(batch->ops);
    free(batch->heads);
    free(batch->argv);
    free(batch->argv_lengths);
    free(batch);
}

static uint32_t hash_group(const struct text *unit, enum event_type type, day_number day,
                           int64_t hour_index, int64_t minute_index)
{
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (uint32_t i = 0; i < unit->length; i++)
        hash = (hash ^ (uint8_t)unit->bytes[i]) * 16777619u;
    const uint64_t numbers[4] = {(uint64_t)type, (uint64_t)(int64_t)day, (uint64_t)hour_index,
                                 (uint64_t)minute_index};
    for (size_t i = 0; i < 4; i++)
        for (unsigned shift = 0; shift < 64; shift += 8)
            hash = (hash ^ (uint32_t)((numbers[i] >> shift) & 0xffu)) * 16777619u;
    return hash;
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

static uint32_t find_or_add_group(struct batch *batch, const struct duewatch_event *event, int64_t now_ms)
{
    day_number day = local_day(batch, event->ts_ms);
    int64_t age = now_ms - event->ts_ms;
    int64_t hour_index = age <= HOUR_WINDOW_REACH_MS ? event->ts_ms / HOUR_MS : -1;
    int64_t minute_index = age <= MINUTE_WINDOW_REACH_MS ? event->ts_ms / MINUTE_MS : -1;
    uint32_t hash = hash_group(&event->unit, event->type, day, hour_index, minute_index);
    size_t mask = batch->slot_count - 1;
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
        int32_t number = batch->group_slots[slot];
        if (number == 0)
            break;
        struct counter_group *group = &batch->groups[number - 1];
        if (group->hash == hash && group->type == event->type && group->day == day &&
            group->hour_index == hour_index && group->minute_index == minute_index &&
            group->unit.length == event->unit.length &&
            memcmp(group->unit.bytes, event->unit.bytes, event->unit.length) == 0) {
            group->event_count++;
            return (uint32_t)number;
        }
    }
    struct counter_group *group = &batch->groups[batch->group_count++];
    group->unit = event->unit;
    group->type = event->type;
    group->day = day;
    group->hour_index = hour_index;
    group->minute_index = minute_index;
    group->hash = hash;
    group->event_count = 1;
    size_t slot = hash & mask;
    while (batch->group_slots[slot] != 0)
        slot = (slot + 1) & mask;
    batch->group_slots[slot] = (int32_t)batch->group_count;
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
    entry->ts_ms = event->ts_ms;
    entry->partition_time_before_ms = partition_time_before;
    entry->group = find_or_add_group(batch, event, now_ms);
    entry->partition = (uint32_t)batch->last_partition;
    entry->first_op = (uint32_t)batch->op_count;
    entry->op_count = (uint32_t)op_count;
    if (op_count > 0)
        batch->op_event_count++;
    for (int i = 0; i < op_count; i++) {
        struct batch_op *op = &batch->ops[batch->op_count++];
        op->op = ops[i];
        op->id = event->id;
        op->ts_ms = event->ts_ms;
        op->unit = event->unit;
        op->case_number = event->case_number;
        op->subject = event->subject;
        op->type = event->type;
        op->days = event->days;
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

static void push(struct batch *batch, size_t *argc, const char *text, size_t length)
{
    batch->argv[*argc] = text;
    batch->argv_lengths[*argc] = length;
    (*argc)++;
}

static void push_string(struct batch *batch, size_t *argc, const char *text)
{
    push(batch, argc, text, strlen(text));
}

/* Appends one clock operation in the layout apply_batch.lua reads. */
static void push_op(struct batch *batch, size_t *argc, struct batch_op *op)
{
    static const char *const letters[] = {"S", "X", "E", "P", "R"};
    const char *keykind = op->op.key_is_case ? "case" : "ref";
    push_string(batch, argc, letters[op->op.kind]);
    push_string(batch, argc, op->op.rule);
    push(batch, argc, op->op.key.bytes, op->op.key.length);
    switch (op->op.kind) {
    case CLOCK_OP_START:
        push_string(batch, argc, keykind);
        push(batch, argc, op->unit.bytes, op->unit.length);
        push(batch, argc, batch->heads + op->head_offset, op->head_length);
        snprintf(op->number_text[0], sizeof op->number_text[0], "%" PRId64, op->op.first_due_ms);
        push_string(batch, argc, op->number_text[0]);
        push_string(batch, argc, op->op.provisional_entry);
        break;
    case CLOCK_OP_STOP:
        push_string(batch, argc, keykind);
        push_string(batch, argc, event_type_name(op->type));
        break;
    case CLOCK_OP_EXTEND:
        snprintf(op->number_text[0], sizeof op->number_text[0], "%" PRIu32, op->days);
        push_string(batch, argc, op->number_text[0]);
        break;
    case CLOCK_OP_PAUSE:
    case CLOCK_OP_RESUME:
        break;
    }
}

/* Renders the fixed head of a starting clock's record (lib/clock_lib.lua:
 * unit|case|subject|cause|started_at|last_day|base_deadline) into
 * batch->heads, so the script only appends the changing fields.  Returns 0,
 * or -1 on allocation failure. */
static int render_head(struct batch *batch, struct batch_op *op)
{
    char last_day[16] = "";
    if (op->op.has_last_day)
        snprintf(last_day, sizeof last_day, "%" PRId32, op->op.last_day);
    size_t needed = op->unit.length + op->case_number.length + op->subject.length +
                    op->id.length + 2 * 24 + sizeof last_day + 8;
    if (batch->heads_length + needed > batch->heads_capacity) {
        size_t capacity = batch->heads_capacity ? batch->heads_capacity : 4096;
        while (capacity < batch->heads_length + needed)
            capacity *= 2;
        char *grown = realloc(batch->heads, capacity);
        if (grown == NULL)
            return -1;
        batch->heads = grown;
        batch->heads_capacity = capacity;
    }
    int length = snprintf(batch->heads + batch->heads_length, needed,
                          "%.*s|%.*s|%.*s|%.*s|%" PRId64 "|%s|%" PRId64, (int)op->unit.length,
                          op->unit.bytes, (int)op->case_number.length, op->case_number.bytes,
                          (int)op->subject.length, op->subject.bytes, (int)op->id.length,
                          op->id.bytes, op->ts_ms, last_day, op->op.base_deadline_ms);
    op->head_offset = batch->heads_length;
    op->head_length = (size_t)length;
    batch->heads_length += (size_t)length;
    return 0;
}

static void push_number(struct batch *batch, size_t *argc, char *text, size_t size, int64_t value)
{
    int length = snprintf(text, size, "%" PRId64, value);
    push(batch, argc, text, (size_t)length);
}

int batch_build_command(struct batch *batch, const char *script_sha,
                        const struct batch_settings *settings, const char ***argv,
                        const size_t **argv_lengths)
{
    size_t needed = 3 + HEADER_FIELDS + batch->group_count * GROUP_FIELDS +
                    batch->partition_count * 3 + batch->entry_count * 2 +
                    batch->op_event_count * 5 + batch->op_count * 8;
    if (needed > batch->argv_capacity) {
        const char **grown_argv = realloc(batch->argv, needed * sizeof *batch->argv);
        if (grown_argv == NULL)
            return -1;
        batch->argv = grown_argv;
        size_t *grown_lengths = realloc(batch->argv_lengths, needed * sizeof *batch->argv_lengths);
        if (grown_lengths == NULL)
            return -1;
        batch->argv_lengths = grown_lengths;
        batch->argv_capacity = needed;
    }
    /* The heads first: the buffer may move while it grows. */
    batch->heads_length = 0;
    for (size_t i = 0; i < batch->op_count; i++)
        if (batch->ops[i].op.kind == CLOCK_OP_START && render_head(batch, &batch->ops[i]) != 0)
            return -1;
    size_t argc = 0;
    push_string(batch, &argc, "EVALSHA");
    push_string(batch, &argc, script_sha);
    push_string(batch, &argc, "0");
    push_string(batch, &argc, settings->key_prefix);
    int64_t header[5] = {settings->dedupe_ttl_seconds, settings->counter_ttl_seconds,
                         (int64_t)batch->group_count, (int64_t)batch->entry_count,
                         (int64_t)batch->partition_count};
    for (int i = 0; i < 5; i++)
        push_number(batch, &argc, batch->header_text[i], sizeof batch->header_text[i], header[i]);
    push_string(batch, &argc, settings->event_time ? "event" : "wall");
    push_number(batch, &argc, batch->header_text[5], sizeof batch->header_text[5],
                settings->now_ms);
    push_string(batch, &argc, settings->lua_calendar);
    push_string(batch, &argc, settings->lua_rules);
    push_number(batch, &argc, batch->header_text[6], sizeof batch->header_text[6],
                (int64_t)batch->op_event_count);
    push_string(batch, &argc, settings->fence_chain ? settings->fence_chain : "");
    push_number(batch, &argc, batch->header_text[7], sizeof batch->header_text[7],
                settings->fence_position);
    for (size_t i = 0; i < batch->group_count; i++) {
        struct counter_group *group = &batch->groups[i];
        calendar_bucket_names(group->day, &group->names);
        if (group->hour_index >= 0)
            snprintf(group->hour_text, sizeof group->hour_text, "%" PRId64, group->hour_index);
        else
            group->hour_text[0] = '\0';
        if (group->minute_index >= 0)
            snprintf(group->minute_text, sizeof group->minute_text, "%" PRId64,
                     group->minute_index);
        else
            group->minute_text[0] = '\0';
        push(batch, &argc, group->unit.bytes, group->unit.length);
        push_string(batch, &argc, event_type_name(group->type));
        push_string(batch, &argc, group->names.day);
        push_string(batch, &argc, group->names.week);
        push_string(batch, &argc, group->names.month);
        push_string(batch, &argc, group->hour_text);
        push_string(batch, &argc, group->minute_text);
        push_number(batch, &argc, group->count_text, sizeof group->count_text,
                    group->event_count);
    }
    for (size_t i = 0; i < batch->partition_count; i++) {
        struct partition_progress *progress = &batch->partitions[i];
        push_string(batch, &argc, progress->key_text);
        push_number(batch, &argc, progress->offset_text, sizeof progress->offset_text,
                    progress->next_offset);
        push_number(batch, &argc, progress->time_text, sizeof progress->time_text,
                    progress->max_event_time_ms);
    }
    /* Every event's id and group: the script's dedupe pass. */
    for (size_t i = 0; i < batch->entry_count; i++) {
        struct batch_entry *entry = &batch->entries[i];
        push(batch, &argc, entry->id.bytes, entry->id.length);
        push_number(batch, &argc, entry->group_text, sizeof entry->group_text, entry->group);
    }
    /* Then the few events that touch clocks, in order, with their ops. */
    static const char *const small_numbers[] = {"0", "1", "2", "3", "4", "5", "6", "7", "8",
                                                "9", "10", "11", "12", "13", "14", "15", "16"};
    _Static_assert(sizeof small_numbers / sizeof *small_numbers == CLOCK_OPS_MAX + 1,
                   "an op count text for every possible count");
    for (size_t i = 0; i < batch->entry_count; i++) {
        struct batch_entry *entry = &batch->entries[i];
        if (entry->op_count == 0)
            continue;
        push_number(batch, &argc, entry->number_text[0], sizeof entry->number_text[0],
                    (int64_t)i + 1);
        push_number(batch, &argc, entry->number_text[1], sizeof entry->number_text[1],
                    entry->ts_ms);
        push_number(batch, &argc, entry->number_text[2], sizeof entry->number_text[2],
                    (int64_t)entry->partition + 1);
        push_number(batch, &argc, entry->number_text[3], sizeof entry->number_text[3],
                    entry->partition_time_before_ms);
        push_string(batch, &argc, small_numbers[entry->op_count]);
        for (uint32_t op = 0; op < entry->op_count; op++)
            push_op(batch, &argc, &batch->ops[entry->first_op + op]);
    }
    *argv = batch->argv;
    *argv_lengths = batch->argv_lengths;
    return (int)argc;
}
