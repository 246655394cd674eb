/* libFuzzer target: event_decode() on untrusted Kafka message values (the
 * daemon's limits: 65536 bytes, depth 8), then, for a valid event, what the
 * ingest pipeline does next with it: the clock operations under the shipped
 * rules and holiday calendar, and the EVALSHA argument list of a batch.
 *
 * Oracles besides the sanitizers:
 *   - the detail line is NUL-terminated printable ASCII (it goes into a
 *     dead-letter header and a log line: no control bytes, no raw input);
 *   - a valid event's identifiers are 1..64 bytes of [A-Za-z0-9._-] and point
 *     into the input; ts/until/days are within the contract;
 *   - differential: msgpack-c must unpack a valid value completely, to a map
 *     whose "id", "unit" and "type" hold what event_decode returned. */
#include "batch.h"
#include "clock_setup.h"
#include "config.h"
#include "event.h"
#include "fuzz_common.h"

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
    const msgpack_object *ts = map_value(map, "ts");
    FUZZ_CHECK(ts != NULL && ts->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                   ts->via.u64 == (uint64_t)event->ts_ms,
               "msgpack-c disagrees on 'ts'");
    msgpack_unpacked_destroy(&unpacked);
}

/* What ingest does with a valid event: clock ops, then one batch command. */
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
    FUZZ_CHECK(batch_add_event(batch, event, INT64_C(1741900000000), ops, op_count) == 0,
               "batch_add_event");
    struct batch_settings settings = {
        .key_prefix = "dw:",
        .dedupe_ttl_seconds = 30 * 86400,
        .counter_ttl_seconds = 400 * 86400,
        .event_time = false,
        .now_ms = INT64_C(1741900000000),
        .lua_calendar = clock_setup_lua_calendar(setup),
        .lua_rules = clock_setup_lua_rules(setup),
    };
    const char **argv;
    const size_t *lengths;
    int argc = batch_build_command(batch, "0123456789012345678901234567890123456789", &settings,
                                   &argv, &lengths);
    FUZZ_CHECK(argc > 0, "batch_build_command");
    /* Every argument must be readable for its whole length (ASan checks). */
    unsigned sum = 0;
    for (int i = 0; i < argc; i++)
        for (size_t k = 0; k < lengths[i]; k++)
            sum += (unsigned char)argv[i][k];
    (void)sum;
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
    differential(data, size, &event);
    pipeline(&event);
    return 0;
}
