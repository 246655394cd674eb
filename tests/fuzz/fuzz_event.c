/* libFuzzer target: event_decode() on untrusted Kafka message values (the
 * daemon's limits: 65536 bytes, depth 8), then, for a valid event, what the
 * ingest pipeline does next with it: the clock operations under the shipped
 * rules and holiday calendar, and a batch of it applied in its three steps
 * (batch.h) against an empty Redis: the read's arguments, the computation
 * on the reply the read gives for nothing stored, and the write.
 *
 * Oracles besides the sanitizers:
 *   - the detail line is NUL-terminated printable ASCII (it goes into a
 *     dead-letter header and a log line: no control bytes, no raw input);
 *   - a valid event's identifiers are 1..64 bytes of [A-Za-z0-9._-] and point
 *     into the input; ts/until/days are within the contract;
 *   - differential: msgpack-c must unpack a valid value completely, to a map
 *     whose "id", "unit" and "type" hold what event_decode returned;
 *   - batch_build_read succeeds for every accepted event, and its commands
 *     follow the read's layout (include/batch.h) exactly (every span probed,
 *     every list as long as the batch's, the id listed, every clock key
 *     "dw:clock:...", nothing left over);
 *   - batch_compute accepts the reply of an empty Redis: the event applies
 *     (a clock.tick is no entry), nothing is a duplicate;
 *   - the write follows apply_effects.lua's layout: no checks (nothing was
 *     read), every command on its allow list with at least one argument and
 *     its count exact; every clock a start writes (MSET) is a record that
 *     clock_record_decode reads back. */
#include "batch.h"
#include "clock_record.h"
#include "clock_setup.h"
#include "config.h"
#include "event.h"
#include "formats.h"
#include "fuzz_common.h"
#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

static struct clock_setup *setup;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_daemon_init();
    struct config config;
    memset(&config, 0, sizeof config);
    config.rules_file = (char *)FUZZ_REPO_FILE("conf/rules.conf");
    config.holidays_file = (char *)FUZZ_REPO_FILE("conf/holidays-cn.conf");
    char err[512];
    setup = clock_setup_load(&config, err, sizeof err);
    if (setup == NULL) {
        fprintf(stderr, "fuzz_event: %s\n", err);
        abort();
    }
    return 0;
}

static bool is_identifier_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static void check_text_inside(const struct text *text, const uint8_t *data, size_t size,
                              const char *name)
{
    if (text->length == 0)
        return;
    FUZZ_CHECK((const uint8_t *)text->bytes >= data &&
                   (const uint8_t *)text->bytes + text->length <= data + size,
               "%s points outside the input", name);
}

static void check_identifier(const struct text *text, bool required, const uint8_t *data,
                             size_t size, const char *name)
{
    if (text->length == 0) {
        FUZZ_CHECK(!required, "%s is required but empty", name);
        return;
    }
    check_text_inside(text, data, size, name);
    FUZZ_CHECK(text->length <= EVENT_MAX_IDENTIFIER, "%s is %u bytes", name, text->length);
    for (uint32_t i = 0; i < text->length; i++)
        FUZZ_CHECK(is_identifier_byte(text->bytes[i]), "%s byte %u is 0x%02x", name, i,
                   (unsigned char)text->bytes[i]);
}

static const msgpack_object *map_value(const msgpack_object *map, const char *key)
{
    size_t length = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == length &&
            memcmp(k->via.str.ptr, key, length) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static void check_same_string(const msgpack_object *map, const char *key, const char *bytes,
                              size_t length)
{
    const msgpack_object *value = map_value(map, key);
    FUZZ_CHECK(value != NULL && value->type == MSGPACK_OBJECT_STR, "msgpack-c: no str '%s'", key);
    FUZZ_CHECK(value->via.str.size == length && memcmp(value->via.str.ptr, bytes, length) == 0,
               "msgpack-c disagrees on '%s'", key);
}

static void differential(const uint8_t *data, size_t size, const struct duewatch_event *event)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    msgpack_unpack_return status =
        msgpack_unpack_next(&unpacked, (const char *)data, size, &offset);
    FUZZ_CHECK(status == MSGPACK_UNPACK_SUCCESS, "msgpack-c cannot unpack a valid event (%d)",
               (int)status);
    FUZZ_CHECK(offset == size, "msgpack-c stops at %zu of %zu bytes", offset, size);
    const msgpack_object *map = &unpacked.data;
    FUZZ_CHECK(map->type == MSGPACK_OBJECT_MAP, "msgpack-c: not a map");
    check_same_string(map, "id", event->id.bytes, event->id.length);
    check_same_string(map, "unit", event->unit.bytes, event->unit.length);
    const char *type = event_type_name(event->type);
    check_same_string(map, "type", type, strlen(type));
    for (int q = 0; q < EVENT_QUALIFIER_COUNT; q++)
        if (event->qualifiers[q].length > 0)
            check_same_string(map, event_enum_key_name((enum event_enum_key)(q + 1)),
                              event->qualifiers[q].bytes, event->qualifiers[q].length);
    const msgpack_object *ts = map_value(map, "ts");
    FUZZ_CHECK(ts != NULL && ts->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                   ts->via.u64 == (uint64_t)event->ts_ms,
               "msgpack-c disagrees on 'ts'");
    msgpack_unpacked_destroy(&unpacked);
}

/* ---- the batch's three steps ---- */

#define NOW_MS INT64_C(1741900000000)

static const struct batch_settings settings = {
    .key_prefix = "dw:",
    .dedupe_ttl_seconds = 30 * 86400,
    .counter_ttl_seconds = 400 * 86400,
    .event_time = false,
    .now_ms = NOW_MS,
    .wall_now_ms = NOW_MS,
    .fence_key = "",
    .fence_position = 0,
};

/* A decimal count argument of the read or the write. */
static size_t count_at(int argc, const char **argv, const size_t *lengths, int at)
{
    FUZZ_CHECK(at < argc, "argument %d missing (of %d)", at, argc);
    FUZZ_CHECK(lengths[at] > 0 && lengths[at] < 12, "argument %d is no count", at);
    size_t count = 0;
    for (size_t i = 0; i < lengths[at]; i++) {
        FUZZ_CHECK(argv[at][i] >= '0' && argv[at][i] <= '9', "argument %d is no count", at);
        count = count * 10 + (size_t)(argv[at][i] - '0');
    }
    return count;
}

static bool argument_is(const char **argv, const size_t *lengths, int at, const char *text)
{
    return lengths[at] == strlen(text) && memcmp(argv[at], text, lengths[at]) == 0;
}

/* What the read asks (include/batch.h, no span hints: every span): the
 * spans' EXISTS, then SMISMEMBER per span, MGET, HMGET per span, the event
 * times, claimed and the provisional entries, each list as long as the
 * batch's; the id listed is the event's, every clock key "dw:clock:...". */
struct read_lists {
    size_t spans, ids, clocks, markers, partitions, entries;
};

static bool command_is(const struct redis_command *command, const char *name)
{
    return argument_is(command->argv, command->argv_lengths, 0, name);
}

/* The command is the read's step (its name; the markers' HMGET by its
 * stopped span, the event times' by its key). */
static bool step_matches(const struct redis_command *command, const char *name, int step)
{
    if (!command_is(command, name))
        return false;
    if (step == 2)
        return command->argc > 1 && command->argv_lengths[1] > 11 &&
               memcmp(command->argv[1], "dw:stopped:", 11) == 0;
    if (step == 3)
        return argument_is(command->argv, command->argv_lengths, 1, "dw:eventtime");
    return true;
}

static void check_list_items(const struct redis_command *command, int first,
                             const struct duewatch_event *event)
{
    for (int item = first; item < command->argc; item++) {
        const char *text = command->argv[item];
        size_t length = command->argv_lengths[item];
        if (command_is(command, "SMISMEMBER"))
            FUZZ_CHECK(length == event->id.length && memcmp(text, event->id.bytes, length) == 0,
                       "the id listed is not the event's");
        if (command_is(command, "MGET"))
            FUZZ_CHECK(length > 9 && memcmp(text, "dw:clock:", 9) == 0, "clock key %.*s",
                       (int)length, text);
    }
}

static struct read_lists check_read(int count, const struct redis_command *commands,
                                    const struct duewatch_event *event)
{
    struct read_lists lists = {0};
    int at = 0;
    while (at < count && command_is(&commands[at], "EXISTS") && commands[at].argc == 2)
        at++;
    FUZZ_CHECK(at > 0 && at % 2 == 0, "%d span probes", at);
    lists.spans = (size_t)at / 2;
    static const char *const order[] = {"SMISMEMBER", "MGET", "HMGET", "HMGET", "HGETALL",
                                        "EVALSHA"};
    for (int step = 0; step < 6 && at < count; step++) {
        bool per_span = step == 0 || step == 2;
        size_t repeats = per_span ? lists.spans : 1;
        if (!step_matches(&commands[at], order[step], step))
            continue; /* not sent: its list is empty */
        int first = step == 1 ? 1 : step == 5 ? 6 : 2;
        size_t items = (size_t)(commands[at].argc - first);
        for (size_t r = 0; r < repeats; r++, at++) {
            FUZZ_CHECK(at < count && step_matches(&commands[at], order[step], step) &&
                           (size_t)(commands[at].argc - first) == items,
                       "command %d is not %s of %zu", at, order[step], items);
            check_list_items(&commands[at], first, event);
        }
        size_t *const lengths[] = {&lists.ids, &lists.clocks, &lists.markers, &lists.partitions,
                                   NULL, &lists.entries};
        if (lengths[step])
            *lengths[step] = step == 5 ? items / 2 : items;
    }
    FUZZ_CHECK(at == count, "%d commands, the read ends at %d", count, at);
    FUZZ_CHECK(lists.ids == (event->type == EVENT_CLOCK_TICK ? 0u : 1u), "%zu ids", lists.ids);
    FUZZ_CHECK(lists.partitions == 1, "%zu partitions", lists.partitions);
    return lists;
}

/* A list of `count` nil replies (ints when `zero_ints`): what an empty Redis
 * answers to a read command. */
#define REPLY_NODES (64 + 3 * CLOCK_OPS_MAX) /* probes and lists, an id, the rest per op */

static redisReply *empty_list(size_t count, bool zero_ints, redisReply *nodes, size_t *used)
{
    FUZZ_CHECK(*used + 1 + count <= REPLY_NODES, "more replies than room");
    redisReply *list = &nodes[(*used)++];
    list->type = REDIS_REPLY_ARRAY;
    list->elements = count;
    list->element = count ? calloc(count, sizeof *list->element) : NULL;
    FUZZ_CHECK(count == 0 || list->element != NULL, "calloc");
    for (size_t i = 0; i < count; i++) {
        redisReply *item = &nodes[(*used)++];
        item->type = zero_ints ? REDIS_REPLY_INTEGER : REDIS_REPLY_NIL;
        list->element[i] = item;
    }
    return list;
}

/* An empty Redis's answer to each read command. */
static redisReply *empty_reply_to(const struct redis_command *command, const struct read_lists *lists,
                                  redisReply *nodes, size_t *used)
{
    if (command_is(command, "EXISTS")) {
        FUZZ_CHECK(*used < REPLY_NODES, "more replies than room");
        redisReply *zero = &nodes[(*used)++];
        zero->type = REDIS_REPLY_INTEGER;
        return zero;
    }
    size_t count = command_is(command, "SMISMEMBER") ? lists->ids
                   : command_is(command, "MGET")     ? lists->clocks
                   : command_is(command, "EVALSHA")  ? lists->entries
                   : command_is(command, "HGETALL")  ? 0
                   : (size_t)command->argc - 2; /* HMGET: markers or partitions */
    return empty_list(count, command_is(command, "SMISMEMBER"), nodes, used);
}

/* apply_effects.lua's ALLOWED */
static const char *const allowed_commands[] = {"MSET",   "DEL",  "ZADD",   "ZREM",
                                               "HSET",   "HDEL", "HINCRBYS", "INCRBY",
                                               "EXPIRE", "SADD", "FORGET", "DISTINCT"};

static bool is_allowed(const char **argv, const size_t *lengths, int at)
{
    for (size_t i = 0; i < sizeof allowed_commands / sizeof *allowed_commands; i++)
        if (argument_is(argv, lengths, at, allowed_commands[i]))
            return true;
    return false;
}

/* Every MSET pair that is a clock: a record clock_record_decode reads. */
static void check_clock_values(const char **argv, const size_t *lengths, int first, size_t count)
{
    for (size_t i = 0; i + 1 < count; i += 2) {
        int key = first + (int)i;
        if (lengths[key] < 9 || memcmp(argv[key], "dw:clock:", 9) != 0)
            continue;
        struct clock_record record;
        char err[256];
        FUZZ_CHECK(clock_record_decode(argv[key + 1], lengths[key + 1], &record, err,
                                       sizeof err) == 0,
                   "the record written for %.*s does not decode: %s", (int)lengths[key],
                   argv[key], err);
    }
}

static void check_write(int argc, const char **argv, const size_t *lengths)
{
    FUZZ_CHECK(argc >= 7 && argument_is(argv, lengths, 0, "EVALSHA") &&
                   argument_is(argv, lengths, 3, SCRIPT_ARGS_VERSION_TEXT),
               "write header");
    /* On an empty Redis the only checks are that the clocks the batch starts
     * are still absent: "A <prefix>clock:...". */
    size_t checks = count_at(argc, argv, lengths, 6);
    int at = 7;
    for (size_t i = 0; i < checks; i++, at += 2)
        FUZZ_CHECK(at + 1 < argc && argument_is(argv, lengths, at, "A") &&
                       lengths[at + 1] > 9 && memcmp(argv[at + 1], "dw:clock:", 9) == 0,
                   "check %zu is not that a new clock is still absent", i);
    while (at < argc) {
        FUZZ_CHECK(is_allowed(argv, lengths, at), "command %.*s is not allowed",
                   (int)lengths[at], argv[at]);
        size_t count = count_at(argc, argv, lengths, at + 1);
        FUZZ_CHECK(count >= 1 && at + 2 + (int)count <= argc, "command %.*s: count %zu",
                   (int)lengths[at], argv[at], count);
        if (argument_is(argv, lengths, at, "MSET"))
            check_clock_values(argv, lengths, at + 2, count);
        at += 2 + (int)count;
    }
}

/* What ingest does with a valid event: clock ops, then a batch's read, its
 * computation on an empty Redis's reply, and its write. */
static void pipeline(const struct duewatch_event *event)
{
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[256];
    int op_count = clock_setup_ops_for_event(setup, event, ops, err, sizeof err);
    if (op_count < 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "ops error not terminated");
        return;
    }
    FUZZ_CHECK(op_count <= CLOCK_OPS_MAX, "%d ops", op_count);
    struct batch *batch = batch_create(4, NULL);
    FUZZ_CHECK(batch != NULL, "batch_create");
    static char message;
    FUZZ_CHECK(batch_hold(batch, &message, "duewatch.events", 3, 41) == 0, "batch_hold");
    FUZZ_CHECK(batch_add_event(batch, event, NOW_MS, ops, op_count) == 0, "batch_add_event");
    struct batch_settings with_setup = settings;
    with_setup.setup = setup;
    const struct redis_command *commands;
    int count = batch_build_read(batch, "0123456789012345678901234567890123456789", &with_setup,
                                 &commands);
    FUZZ_CHECK(count > 0 && count <= 64, "batch_build_read failed for an accepted event");
    struct read_lists lists = check_read(count, commands, event);

    redisReply nodes[REPLY_NODES];
    memset(nodes, 0, sizeof nodes);
    size_t used = 0;
    redisReply *parts[64];
    for (int c = 0; c < count; c++)
        parts[c] = empty_reply_to(&commands[c], &lists, nodes, &used);
    redisReply reply = {.type = REDIS_REPLY_ARRAY, .elements = (size_t)count, .element = parts};
    FUZZ_CHECK(batch_compute(batch, &reply, &with_setup, err, sizeof err) == 0,
               "batch_compute refused an empty Redis's reply: %s", err);
    FUZZ_CHECK(batch_applied_count(batch) == lists.ids && batch_duplicate_count(batch) == 0,
               "applied %llu, duplicates %llu", (unsigned long long)batch_applied_count(batch),
               (unsigned long long)batch_duplicate_count(batch));
    for (int c = 0; c < count; c++)
        if (parts[c]->type == REDIS_REPLY_ARRAY)
            free(parts[c]->element);
    const char **argv;
    const size_t *lengths;
    int argc;
    argc = batch_build_write(batch, "0123456789012345678901234567890123456789", &with_setup,
                             &argv, &lengths);
    FUZZ_CHECK(argc > 0, "batch_build_write failed");
    check_write(argc, argv, lengths);
    batch_destroy(batch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct event_limits limits = {.max_bytes = 65536, .max_depth = 8};
    struct duewatch_event event;
    char detail[256];
    memset(detail, 'Z', sizeof detail);
    enum event_reject reason = event_decode(data, size, &limits, &event, detail, sizeof detail);
    FUZZ_CHECK(reason >= EVENT_VALID && reason < REJECT_COUNT, "reason %d", (int)reason);
    if (reason != EVENT_VALID) {
        FUZZ_CHECK(event_reject_name(reason) != NULL, "reason %d has no name", (int)reason);
        size_t length = strnlen(detail, sizeof detail);
        FUZZ_CHECK(length < sizeof detail, "detail not NUL-terminated");
        FUZZ_CHECK(length > 0, "empty detail for %s", event_reject_name(reason));
        for (size_t i = 0; i < length; i++)
            FUZZ_CHECK(detail[i] >= 0x20 && detail[i] < 0x7f,
                       "detail byte %zu is 0x%02x (%s: %s)", i, (unsigned char)detail[i],
                       event_reject_name(reason), detail);
        return 0;
    }
    FUZZ_CHECK(size <= limits.max_bytes, "valid event of %zu bytes", size);
    FUZZ_CHECK(event.type >= 0 && event.type < EVENT_TYPE_COUNT, "type %d", (int)event.type);
    FUZZ_CHECK(event.ts_ms >= EVENT_MIN_TS_MS && event.ts_ms <= EVENT_MAX_TS_MS, "ts %lld",
               (long long)event.ts_ms);
    FUZZ_CHECK(event.until_ms == 0 ||
                   (event.until_ms >= EVENT_MIN_TS_MS && event.until_ms <= EVENT_MAX_TS_MS),
               "until %lld", (long long)event.until_ms);
    FUZZ_CHECK(event.days <= EVENT_MAX_DAYS, "days %u", event.days);
    check_identifier(&event.id, true, data, size, "id");
    check_identifier(&event.unit, true, data, size, "unit");
    check_identifier(&event.case_number, false, data, size, "case");
    check_identifier(&event.ref, false, data, size, "ref");
    check_identifier(&event.subject, false, data, size, "subject");
    check_text_inside(&event.kind, data, size, "kind");
    for (int q = 0; q < EVENT_QUALIFIER_COUNT; q++)
        check_text_inside(&event.qualifiers[q], data, size,
                          event_enum_key_name((enum event_enum_key)(q + 1)));
    differential(data, size, &event);
    pipeline(&event);
    return 0;
}
