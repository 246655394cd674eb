/* Effects of one script call (see effects.h).  Changes are appended as items
 * in the order made; the build sorts them by kind, key and field (the order
 * made breaking ties), so "the last change wins" and "sum per key" are one
 * pass over neighbours, and emits one command per key and kind where Redis
 * has a variadic command (MSET, ZADD, HSET, SADD...): Redis's cost is the
 * number of commands, not of arguments.  Strings live in an arena of blocks
 * that never move, so items and argv may point into it. */
#include "effects.h"

#include "formats.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

enum item_kind {
    ITEM_CHECK_VALUE,
    ITEM_CHECK_FIELD,
    ITEM_VALUE,
    ITEM_INDEX,
    ITEM_LISTING,
    ITEM_COUNT,
    ITEM_ADD,
    ITEM_HASH,
    ITEM_MEMBER,
    ITEM_LISTED,
    ITEM_EXPIRE,
    ITEM_ORDERED,
    ITEM_FORGET,
    ITEM_DISTINCT,
};

struct item {
    enum item_kind kind;
    bool absent; /* a removal, a deletion, an expected absence */
    uint32_t sequence;
    uint32_t key_id, field_id; /* interned: equal strings, equal ids (0 = no field) */
    const char *key, *field, *value;
    const char *extra; /* ITEM_DISTINCT: the count's key (field: its field; value: the member) */
    size_t value_length;
    int64_t number, ttl;
};

/* Keys and fields are interned (each distinct string copied once, with an
 * id), so items compare by ids and neighbours by pointer: a batch has tens
 * of thousands of changes on far fewer keys. */
struct interned {
    uint64_t hash;
    const char *text; /* NULL: empty slot */
    uint32_t id;
};

/* Where the change of (kind, key, field) is, for those kinds whose changes
 * of one key and field sum up or replace each other. */
struct slot {
    uint64_t hash;
    uint32_t item; /* index + 1; 0: empty */
};

#define ARENA_BLOCK 65536
struct arena_block {
    struct arena_block *next;
    size_t used, size;
    char bytes[];
};

/* Arguments per command at most: well inside Lua's unpack limit, and even,
 * so pairs (MSET, HSET, ZADD) stay whole. */
#define COMMAND_ARGS_MAX 4000

struct effects {
    struct item *items;
    size_t item_count, item_capacity;
    struct interned *strings;
    size_t string_count, string_capacity; /* capacity: a power of two */
    struct slot *slots;
    size_t slot_capacity; /* a power of two, > 2 * item_count */
    struct arena_block *blocks;
    bool writes;
    const char **argv;
    size_t *argv_lengths;
    size_t argc, argv_capacity;
    size_t command_start; /* argv index of the open command's count */
    const char *command_name, *command_key;
    bool failed;
};

struct effects *effects_create(void)
{
    return calloc(1, sizeof(struct effects));
}

static void free_blocks(struct arena_block *block)
{
    while (block) {
        struct arena_block *next = block->next;
        free(block);
        block = next;
    }
}

void effects_destroy(struct effects *effects)
{
    if (effects == NULL)
        return;
    free_blocks(effects->blocks);
    free(effects->items);
    free(effects->strings);
    free(effects->slots);
    free(effects->argv);
    free(effects->argv_lengths);
    free(effects);
}

void effects_reset(struct effects *effects)
{
    /* Keep the first block for the next call. */
    struct arena_block *first = effects->blocks;
    if (first) {
        free_blocks(first->next);
        first->next = NULL;
        first->used = 0;
    }
    effects->item_count = 0;
    effects->string_count = 0;
    if (effects->strings)
        memset(effects->strings, 0, effects->string_capacity * sizeof *effects->strings);
    if (effects->slots)
        memset(effects->slots, 0, effects->slot_capacity * sizeof *effects->slots);
    effects->writes = false;
    effects->argc = 0;
    effects->failed = false;
}

static char *arena_alloc(struct effects *effects, size_t size)
{
    struct arena_block *block = effects->blocks;
    if (block == NULL || block->size - block->used < size) {
        size_t capacity = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        struct arena_block *fresh = malloc(sizeof *fresh + capacity);
        if (fresh == NULL)
            return NULL;
        fresh->used = 0;
        fresh->size = capacity;
        fresh->next = block;
        effects->blocks = block = fresh;
    }
    char *bytes = block->bytes + block->used;
    block->used += size;
    return bytes;
}

static const char *arena_copy(struct effects *effects, const char *text, size_t length)
{
    char *copy = arena_alloc(effects, length + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, text, length);
    copy[length] = '\0';
    return copy;
}

/* The decimal text of number, in the arena (by hand, text.h: a batch
 * formats tens of thousands of amounts and counts, and snprintf was a tenth
 * of the daemon's time). */
static const char *arena_number(struct effects *effects, int64_t number)
{
    char digits[24];
    struct text_buffer text = text_start(digits, sizeof digits);
    text_add_number(&text, number);
    return arena_copy(effects, digits, text.length);
}

static uint64_t hash_bytes(uint64_t hash, const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ (uint8_t)text[i]) * 0x100000001b3ull; /* FNV-1a */
    return hash;
}

static int grow_strings(struct effects *effects)
{
    size_t capacity = effects->string_capacity ? effects->string_capacity * 2 : 4096;
    struct interned *table = calloc(capacity, sizeof *table);
    if (table == NULL)
        return -1;
    for (size_t i = 0; i < effects->string_capacity; i++) {
        struct interned *entry = &effects->strings[i];
        if (entry->text == NULL)
            continue;
        size_t at = entry->hash & (capacity - 1);
        while (table[at].text)
            at = (at + 1) & (capacity - 1);
        table[at] = *entry;
    }
    free(effects->strings);
    effects->strings = table;
    effects->string_capacity = capacity;
    return 0;
}

/* The interned copy of text, and its id (from 1).  NULL when out of memory. */
static const char *intern(struct effects *effects, const char *text, uint32_t *id)
{
    if (2 * (effects->string_count + 1) > effects->string_capacity && grow_strings(effects) != 0)
        return NULL;
    size_t length = strlen(text);
    uint64_t hash = hash_bytes(0xcbf29ce484222325ull, text, length);
    size_t mask = effects->string_capacity - 1;
    for (size_t at = hash & mask;; at = (at + 1) & mask) {
        struct interned *entry = &effects->strings[at];
        if (entry->text == NULL) {
            entry->text = arena_copy(effects, text, length);
            if (entry->text == NULL)
                return NULL;
            entry->hash = hash;
            entry->id = (uint32_t)++effects->string_count;
            *id = entry->id;
            return entry->text;
        }
        if (entry->hash == hash && strcmp(entry->text, text) == 0) {
            *id = entry->id;
            return entry->text;
        }
    }
}

/* Kinds whose changes of one (key, field) are one: summed, or the last wins. */
static bool aggregates(enum item_kind kind)
{
    return kind == ITEM_VALUE || kind == ITEM_INDEX || kind == ITEM_LISTING ||
           kind == ITEM_COUNT || kind == ITEM_ADD || kind == ITEM_HASH || kind == ITEM_EXPIRE ||
           kind == ITEM_LISTED;
}

static int grow_slots(struct effects *effects)
{
    size_t capacity = effects->slot_capacity ? effects->slot_capacity * 2 : 4096;
    struct slot *table = calloc(capacity, sizeof *table);
    if (table == NULL)
        return -1;
    for (size_t i = 0; i < effects->slot_capacity; i++) {
        if (effects->slots[i].item == 0)
            continue;
        size_t at = effects->slots[i].hash & (capacity - 1);
        while (table[at].item)
            at = (at + 1) & (capacity - 1);
        table[at] = effects->slots[i];
    }
    free(effects->slots);
    effects->slots = table;
    effects->slot_capacity = capacity;
    return 0;
}

/* The slot of (kind, key, field): holding the item of that change, or empty
 * for the caller to fill. */
static struct slot *find_slot(struct effects *effects, const struct item *item)
{
    uint64_t hash = ((uint64_t)item->kind * 0x9e3779b97f4a7c15ull) ^
                    ((uint64_t)item->key_id << 32) ^ item->field_id;
    hash *= 0xbf58476d1ce4e5b9ull;
    /* The table takes the low bits, which the product alone draws from the
     * kind and the field only (the key's id sits above bit 31): every key of
     * one counter field started its probe in one place, and probing was a
     * fifth of the daemon's CPU (make bench's profile, 2026-12-05). */
    hash ^= hash >> 32;
    size_t mask = effects->slot_capacity - 1;
    for (size_t at = hash & mask;; at = (at + 1) & mask) {
        struct slot *slot = &effects->slots[at];
        if (slot->item == 0) {
            slot->hash = hash;
            return slot;
        }
        const struct item *other = &effects->items[slot->item - 1];
        if (slot->hash == hash && other->kind == item->kind && other->key_id == item->key_id &&
            other->field_id == item->field_id)
            return slot;
    }
}

/* Appends an item (or merges it into the one of its kind, key and field)
 * with copies of its strings (field and value may be NULL). */
static int add_item(struct effects *effects, enum item_kind kind, const char *key,
                    const char *field, const char *value, size_t value_length, int64_t number,
                    int64_t ttl, bool absent)
{
    if (effects->item_count == effects->item_capacity) {
        size_t capacity = effects->item_capacity ? effects->item_capacity * 2 : 1024;
        struct item *grown = realloc(effects->items, capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        effects->items = grown;
        effects->item_capacity = capacity;
    }
    struct item item = {.kind = kind, .absent = absent,
                        .sequence = (uint32_t)effects->item_count,
                        .value_length = value_length, .number = number, .ttl = ttl};
    if ((item.key = intern(effects, key, &item.key_id)) == NULL ||
        (field && (item.field = intern(effects, field, &item.field_id)) == NULL) ||
        (value && (item.value = arena_copy(effects, value, value_length)) == NULL))
        return -1;
    if (kind != ITEM_CHECK_VALUE && kind != ITEM_CHECK_FIELD)
        effects->writes = true;
    if (!aggregates(kind)) {
        effects->items[effects->item_count++] = item;
        return 0;
    }
    if (2 * (effects->item_count + 1) > effects->slot_capacity && grow_slots(effects) != 0)
        return -1;
    struct slot *slot = find_slot(effects, &item);
    if (slot->item == 0) {
        effects->items[effects->item_count++] = item;
        slot->item = (uint32_t)effects->item_count;
        return 0;
    }
    struct item *merged = &effects->items[slot->item - 1];
    if (kind == ITEM_COUNT || kind == ITEM_ADD) {
        merged->number += number;
    } else {
        item.sequence = merged->sequence; /* keeps its place; the content is the last */
        *merged = item;
    }
    return 0;
}

int effects_expect_value(struct effects *effects, const char *key, const char *value,
                         size_t value_length)
{
    return add_item(effects, ITEM_CHECK_VALUE, key, NULL, value, value_length, 0, 0, false);
}

int effects_expect_absent(struct effects *effects, const char *key)
{
    return add_item(effects, ITEM_CHECK_VALUE, key, NULL, NULL, 0, 0, 0, true);
}

int effects_expect_field(struct effects *effects, const char *key, const char *field,
                         const char *value)
{
    return add_item(effects, ITEM_CHECK_FIELD, key, field, value, value ? strlen(value) : 0, 0,
                    0, value == NULL);
}

int effects_set_value(struct effects *effects, const char *key, const char *value,
                      size_t value_length)
{
    return add_item(effects, ITEM_VALUE, key, NULL, value, value_length, 0, 0, value == NULL);
}

int effects_index(struct effects *effects, const char *key, const char *member, int64_t score,
                  bool remove)
{
    return add_item(effects, ITEM_INDEX, key, member, NULL, 0, score, 0, remove);
}

int effects_listing(struct effects *effects, const char *key, const char *member, int64_t score)
{
    return add_item(effects, ITEM_LISTING, key, member, NULL, 0, score, 0, false);
}

int effects_count(struct effects *effects, const char *key, const char *field, int64_t amount,
                  int64_t ttl_seconds)
{
    return add_item(effects, ITEM_COUNT, key, field, NULL, 0, amount, ttl_seconds, false);
}

int effects_add(struct effects *effects, const char *key, int64_t amount)
{
    return add_item(effects, ITEM_ADD, key, NULL, NULL, 0, amount, 0, false);
}

int effects_hash(struct effects *effects, const char *key, const char *field, const char *value,
                 size_t value_length)
{
    return add_item(effects, ITEM_HASH, key, field, value, value_length, 0, 0, value == NULL);
}

int effects_set_member(struct effects *effects, const char *key, const char *member,
                       size_t member_length, int64_t ttl_seconds)
{
    return add_item(effects, ITEM_MEMBER, key, NULL, member, member_length, 0, ttl_seconds,
                    false);
}

int effects_list_member(struct effects *effects, const char *key, const char *member)
{
    return add_item(effects, ITEM_LISTED, key, member, NULL, 0, 0, 0, false);
}

int effects_expire(struct effects *effects, const char *key, int64_t ttl_seconds)
{
    return add_item(effects, ITEM_EXPIRE, key, NULL, NULL, 0, 0, ttl_seconds, false);
}

int effects_ordered_zset(struct effects *effects, const char *key, const char *member,
                         int64_t score, bool remove)
{
    return add_item(effects, ITEM_ORDERED, key, member, NULL, 0, score, 0, remove);
}

int effects_forget_if_gone(struct effects *effects, const char *index_key,
                           const char *bucket_key, const char *bucket)
{
    return add_item(effects, ITEM_FORGET, index_key, bucket_key, bucket, strlen(bucket), 0, 0,
                    false);
}

int effects_count_distinct(struct effects *effects, const char *members_key, const char *member,
                           const char *count_key, const char *count_field)
{
    if (add_item(effects, ITEM_DISTINCT, members_key, count_field, member, strlen(member), 0, 0,
                 false) != 0)
        return -1;
    struct item *item = &effects->items[effects->item_count - 1];
    item->extra = arena_copy(effects, count_key, strlen(count_key));
    return item->extra ? 0 : -1;
}

bool effects_any_write(const struct effects *effects)
{
    return effects->writes;
}

/* ---- building ---- */

static bool keeps_order(enum item_kind kind)
{
    return kind == ITEM_CHECK_VALUE || kind == ITEM_CHECK_FIELD || kind == ITEM_ORDERED ||
           kind == ITEM_FORGET;
}

static int compare_items(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (!keeps_order(x->kind)) {
        if (x->key_id != y->key_id)
            return x->key_id < y->key_id ? -1 : 1;
        if (x->field_id != y->field_id)
            return x->field_id < y->field_id ? -1 : 1;
    }
    if (x->kind == ITEM_DISTINCT) { /* a member given twice is written once */
        int order = strcmp(x->value, y->value);
        if (order != 0)
            return order;
    }
    return x->sequence < y->sequence ? -1 : x->sequence > y->sequence ? 1 : 0;
}

static void push(struct effects *effects, const char *text, size_t length)
{
    if (effects->failed)
        return;
    if (effects->argc == effects->argv_capacity) {
        size_t capacity = effects->argv_capacity ? effects->argv_capacity * 2 : 4096;
        const char **argv = realloc(effects->argv, capacity * sizeof *argv);
        if (argv)
            effects->argv = argv;
        size_t *lengths = realloc(effects->argv_lengths, capacity * sizeof *lengths);
        if (lengths)
            effects->argv_lengths = lengths;
        if (argv == NULL || lengths == NULL) {
            effects->failed = true;
            return;
        }
        effects->argv_capacity = capacity;
    }
    effects->argv[effects->argc] = text;
    effects->argv_lengths[effects->argc] = length;
    effects->argc++;
}

static void push_text(struct effects *effects, const char *text)
{
    if (text == NULL) {
        effects->failed = true;
        return;
    }
    push(effects, text, strlen(text));
}

static void push_number(struct effects *effects, int64_t number)
{
    push_text(effects, arena_number(effects, number));
}

static void end_command(struct effects *effects)
{
    if (effects->command_name == NULL || effects->failed)
        return;
    size_t count = effects->argc - effects->command_start - 1;
    const char *text = arena_number(effects, (int64_t)count);
    if (text == NULL) {
        effects->failed = true;
        return;
    }
    effects->argv[effects->command_start] = text;
    effects->argv_lengths[effects->command_start] = strlen(text);
    effects->command_name = NULL;
}

/* Opens `name key ...` (key NULL: a command without one, like MSET). */
static void begin_command(struct effects *effects, const char *name, const char *key)
{
    end_command(effects);
    push_text(effects, name);
    effects->command_start = effects->argc;
    push(effects, "", 0); /* the count, filled by end_command */
    effects->command_name = name;
    effects->command_key = key;
    if (key)
        push_text(effects, key);
}

/* Makes room for `needed` more arguments in the open command, continuing it
 * in a new command of the same name and key when it is full. */
static void room_for(struct effects *effects, size_t needed)
{
    size_t used = effects->argc - effects->command_start - 1;
    if (used + needed > COMMAND_ARGS_MAX)
        begin_command(effects, effects->command_name, effects->command_key);
}

/* The end of the run of items [first, ...) sharing first's key; and of
 * those sharing its key and field. */
static size_t same_key_end(const struct effects *effects, size_t first)
{
    size_t end = first + 1;
    while (end < effects->item_count && effects->items[end].kind == effects->items[first].kind &&
           effects->items[end].key_id == effects->items[first].key_id)
        end++;
    return end;
}

static bool same_field(const struct item *a, const struct item *b)
{
    return a->field_id == b->field_id;
}

/* Checks: V key value | A key | H key field value | h key field. */
static size_t emit_check(struct effects *effects, size_t at)
{
    const struct item *item = &effects->items[at];
    if (item->kind == ITEM_CHECK_VALUE) {
        push_text(effects, item->absent ? "A" : "V");
        push_text(effects, item->key);
        if (!item->absent)
            push(effects, item->value, item->value_length);
    } else {
        push_text(effects, item->absent ? "h" : "H");
        push_text(effects, item->key);
        push_text(effects, item->field);
        if (!item->absent)
            push(effects, item->value, item->value_length);
    }
    return at + 1;
}

/* String values: the last per key; all sets in MSETs, all deletions in DELs. */
static size_t emit_values(struct effects *effects, size_t at)
{
    size_t end = at;
    while (end < effects->item_count && effects->items[end].kind == ITEM_VALUE)
        end++;
    for (int pass = 0; pass < 2; pass++) {
        bool opened = false;
        for (size_t i = at; i < end; i = same_key_end(effects, i)) {
            const struct item *last = &effects->items[same_key_end(effects, i) - 1];
            if (last->absent != (pass == 1))
                continue;
            if (!opened) {
                begin_command(effects, pass == 0 ? "MSET" : "DEL", NULL);
                opened = true;
            }
            room_for(effects, 2);
            push_text(effects, last->key);
            if (pass == 0)
                push(effects, last->value, last->value_length);
        }
    }
    end_command(effects);
    return end;
}

/* Items of one key whose last change per field wins: removals first (ZREM
 * or HDEL), then the rest (ZADD score member, or HSET field value). */
static void emit_last_per_field(struct effects *effects, size_t at, size_t end,
                                const char *remove_name, const char *write_name)
{
    for (int pass = 0; pass < 2; pass++) {
        bool opened = false;
        for (size_t i = at; i < end;) {
            size_t next = i + 1;
            while (next < end && same_field(&effects->items[i], &effects->items[next]))
                next++;
            const struct item *last = &effects->items[next - 1];
            i = next;
            if (last->absent != (pass == 0))
                continue;
            if (!opened) {
                begin_command(effects, pass == 0 ? remove_name : write_name, last->key);
                opened = true;
            }
            room_for(effects, 2);
            if (pass == 0) {
                push_text(effects, last->field);
            } else if (last->kind == ITEM_HASH) {
                push_text(effects, last->field);
                push(effects, last->value, last->value_length);
            } else {
                push_number(effects, last->number);
                push_text(effects, last->field);
            }
        }
    }
    end_command(effects);
}

/* Counters: HINCRBYS key field amount... (the summed amount per field:
 * the script increments each; one command per key keeps the arguments few),
 * then EXPIRE the key. */
static void emit_counts(struct effects *effects, size_t at, size_t end)
{
    begin_command(effects, "HINCRBYS", effects->items[at].key);
    for (size_t i = at; i < end;) {
        int64_t sum = 0;
        size_t next = i;
        while (next < end && same_field(&effects->items[i], &effects->items[next]))
            sum += effects->items[next++].number;
        room_for(effects, 2);
        push_text(effects, effects->items[i].field);
        push_number(effects, sum);
        i = next;
    }
    end_command(effects);
    if (effects->items[at].ttl <= 0)
        return; /* kept for good */
    begin_command(effects, "EXPIRE", effects->items[at].key);
    push_number(effects, effects->items[at].ttl);
    end_command(effects);
}

/* Distinct counts of one members hash: per count field,
 * DISTINCT members_key count_key count_field member... (continued in more
 * commands when long; every member of them all once is counted once). */
static void emit_distinct(struct effects *effects, size_t at, size_t end)
{
    for (size_t i = at; i < end;) {
        size_t next = i + 1;
        while (next < end && same_field(&effects->items[i], &effects->items[next]))
            next++;
        for (size_t k = i; k < next;) {
            begin_command(effects, "DISTINCT", effects->items[i].key);
            push_text(effects, effects->items[i].extra);
            push_text(effects, effects->items[i].field);
            /* the script passes member/value pairs to HSET: half the room */
            for (size_t used = 3; k < next && used < COMMAND_ARGS_MAX / 2; k++) {
                const struct item *member = &effects->items[k];
                if (k > i && strcmp(member->value, effects->items[k - 1].value) == 0)
                    continue; /* sorted: repeats are neighbours */
                push(effects, member->value, member->value_length);
                used++;
            }
            end_command(effects);
        }
        i = next;
    }
}

static void emit_key_group(struct effects *effects, size_t at, size_t end)
{
    const struct item *first = &effects->items[at];
    switch (first->kind) {
    case ITEM_INDEX:
    case ITEM_LISTING:
        emit_last_per_field(effects, at, end, "ZREM", "ZADD");
        break;
    case ITEM_HASH:
        emit_last_per_field(effects, at, end, "HDEL", "HSET");
        break;
    case ITEM_COUNT:
        emit_counts(effects, at, end);
        break;
    case ITEM_DISTINCT:
        emit_distinct(effects, at, end);
        break;
    case ITEM_ADD: {
        int64_t sum = 0;
        for (size_t i = at; i < end; i++)
            sum += effects->items[i].number;
        begin_command(effects, "INCRBY", first->key); /* 0 too: as INCR then DECR would */
        push_number(effects, sum);
        break;
    }
    case ITEM_LISTED: /* one item per member: merged in add_item */
        begin_command(effects, "SADD", first->key);
        for (size_t i = at; i < end; i++) {
            room_for(effects, 1);
            push_text(effects, effects->items[i].field);
        }
        break;
    case ITEM_EXPIRE:
        begin_command(effects, "EXPIRE", first->key);
        push_number(effects, effects->items[end - 1].ttl);
        break;
    case ITEM_MEMBER:
        begin_command(effects, "SADD", first->key);
        for (size_t i = at; i < end; i++) {
            room_for(effects, 1);
            push(effects, effects->items[i].value, effects->items[i].value_length);
        }
        if (first->ttl > 0) { /* else kept for good */
            begin_command(effects, "EXPIRE", first->key);
            push_number(effects, first->ttl);
        }
        break;
    default:
        break;
    }
    end_command(effects);
}

/* Ordered changes one command each; FORGET index bucket_key bucket. */
static void emit_ordered(struct effects *effects, const struct item *item)
{
    if (item->kind == ITEM_FORGET) {
        begin_command(effects, "FORGET", item->key);
        push_text(effects, item->field);
        push(effects, item->value, item->value_length);
    } else {
        begin_command(effects, item->absent ? "ZREM" : "ZADD", item->key);
        if (!item->absent)
            push_number(effects, item->number);
        push_text(effects, item->field);
    }
    end_command(effects);
}

int effects_build(struct effects *effects, const char *script_sha, const char *fence_chain,
                  int64_t fence_position, const char ***argv, const size_t **argv_lengths)
{
    if (effects->item_count > 1)
        qsort(effects->items, effects->item_count, sizeof *effects->items, compare_items);
    effects->argc = 0;
    effects->command_name = NULL;
    if (script_sha == NULL) {
        push_text(effects, "DUEWATCH.APPLY");
    } else {
        push_text(effects, "EVALSHA");
        push_text(effects, script_sha);
        push_text(effects, "0");
    }
    push_number(effects, SCRIPT_ARGS_VERSION);
    push_text(effects, fence_chain);
    push_number(effects, fence_position);
    size_t checks = 0;
    while (checks < effects->item_count && effects->items[checks].kind <= ITEM_CHECK_FIELD)
        checks++;
    push_number(effects, (int64_t)checks);
    size_t at = 0;
    while (at < checks)
        at = emit_check(effects, at);
    while (at < effects->item_count) {
        enum item_kind kind = effects->items[at].kind;
        if (kind == ITEM_VALUE) {
            at = emit_values(effects, at);
        } else if (keeps_order(kind)) {
            emit_ordered(effects, &effects->items[at]);
            at++;
        } else {
            size_t end = same_key_end(effects, at);
            emit_key_group(effects, at, end);
            at = end;
        }
    }
    end_command(effects);
    if (effects->failed)
        return -1;
    *argv = effects->argv;
    *argv_lengths = effects->argv_lengths;
    return (int)effects->argc;
}
