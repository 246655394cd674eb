/* libFuzzer target: the alert round trip.  The input is an outbox entry as
 * alerts.c reads it back from Redis: "<alert id>\n<payload>" (without a
 * newline the whole input is the payload and the id is fixed), the payload
 * of any format version (include/formats.h: 0 without a tag, 1 and 2
 * behind "@1|" and "@2|", 3 and 4 behind "@3|" and "@4|" with resolves).
 * alert_parse() must never crash on it; when it accepts it,
 * alert_format_text() (with the shipped rules' wording) and alert_encode()
 * must succeed, and msgpack-c must decode the encoding back to exactly the
 * parsed field values.
 *
 * Further oracles:
 *   - the text is NUL-terminated within the daemon's 1024-byte buffer, and is
 *     valid UTF-8 whenever the fields and the wording are (a cut never splits
 *     a character);
 *   - the map's clock_id is alert_clock_id() of the rule and ref, and a
 *     resolution's resolves array holds exactly the parsed ids;
 *   - alert_format_payload() of a parsed alert writes the current version:
 *     the tag and exactly PAYLOAD_FIELD_COUNT fields, which parse back to the
 *     same alert;
 *   - parse is stable across versions: the parsed fields joined with '|'
 *     without a tag (version 0) parse to the same alert, unless the rule
 *     begins with '@' (a version 0 payload cannot: it would read as a tag;
 *     rule names are [a-z0-9_]) or it resolves ids (version 0 has none);
 *   - the payload read as a clock record (clock_record_decode, the value of
 *     <prefix>clock:<rule>:<key>): when it decodes, clock_record_encode()
 *     writes the current version (the tag, CLOCK_FIELD_COUNT fields) and
 *     that decodes to the same record. */
#include "alert_message.h"
#include "clock_record.h"
#include "clock_setup.h"
#include "config.h"
#include "formats.h"
#include "fuzz_common.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#define EMITTED_AT_MS INT64_C(1741917600123)

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
        fprintf(stderr, "fuzz_alert: %s\n", err);
        abort();
    }
    return 0;
}

/* RFC 3629 UTF-8. */
static bool valid_utf8(const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    while (*s) {
        unsigned char c = *s;
        size_t extra;
        unsigned low = 0x80, high = 0xBF;
        if (c < 0x80)
            extra = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            extra = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            low = c == 0xE0 ? 0xA0 : 0x80;
            high = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            low = c == 0xF0 ? 0x90 : 0x80;
            high = c == 0xF4 ? 0x8F : 0xBF;
        } else
            return false;
        for (size_t k = 1; k <= extra; k++) {
            unsigned char next = s[k];
            if (next < (k == 1 ? low : 0x80) || next > (k == 1 ? high : 0xBF))
                return false;
        }
        s += extra + 1;
    }
    return true;
}

static const msgpack_object *map_value(const msgpack_object *map, const char *key)
{
    size_t length = strlen(key);
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        FUZZ_CHECK(k->type == MSGPACK_OBJECT_STR, "alert map key %u is not a str", i);
        if (k->via.str.size == length && memcmp(k->via.str.ptr, key, length) == 0) {
            FUZZ_CHECK(found == NULL, "key '%s' twice in the alert map", key);
            found = &map->via.map.ptr[i].val;
        }
    }
    FUZZ_CHECK(found != NULL, "key '%s' missing from the alert map", key);
    return found;
}

static void expect_str(const msgpack_object *map, const char *key, const char *expected)
{
    const msgpack_object *value = map_value(map, key);
    FUZZ_CHECK(value->type == MSGPACK_OBJECT_STR, "'%s' is not a str", key);
    FUZZ_CHECK(value->via.str.size == strlen(expected) &&
                   memcmp(value->via.str.ptr, expected, value->via.str.size) == 0,
               "'%s' decodes to something else", key);
}

static void expect_int(const msgpack_object *map, const char *key, int64_t expected)
{
    const msgpack_object *value = map_value(map, key);
    if (value->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        FUZZ_CHECK(expected >= 0 && value->via.u64 == (uint64_t)expected,
                   "'%s' = %" PRIu64 ", expected %" PRId64, key, value->via.u64, expected);
    else
        FUZZ_CHECK(value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && value->via.i64 == expected,
                   "'%s' is not the integer %" PRId64, key, expected);
}

/* The resolves array is the ids of `joined` ("id,id,..." or ""), in order. */
static void check_resolves(const msgpack_object *value, const char *joined)
{
    FUZZ_CHECK(value->type == MSGPACK_OBJECT_ARRAY, "'resolves' is not an array");
    size_t length = strlen(joined);
    size_t count = length == 0 ? 0 : (length + 1) / (ALERT_ID_LENGTH + 1);
    FUZZ_CHECK(value->via.array.size == count, "'resolves' has %u ids, expected %zu",
               value->via.array.size, count);
    for (uint32_t i = 0; i < value->via.array.size; i++) {
        const msgpack_object *id = &value->via.array.ptr[i];
        FUZZ_CHECK(id->type == MSGPACK_OBJECT_STR && id->via.str.size == ALERT_ID_LENGTH &&
                       memcmp(id->via.str.ptr, joined + i * (ALERT_ID_LENGTH + 1),
                              ALERT_ID_LENGTH) == 0,
                   "'resolves' id %u decodes to something else", i);
    }
}

static void check_encoding(const struct alert *alert, const char *text, const void *data,
                           size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    msgpack_unpack_return status = msgpack_unpack_next(&unpacked, data, size, &offset);
    FUZZ_CHECK(status == MSGPACK_UNPACK_SUCCESS, "msgpack-c cannot decode the alert (%d)",
               (int)status);
    FUZZ_CHECK(offset == size, "trailing bytes after the alert map");
    const msgpack_object *map = &unpacked.data;
    FUZZ_CHECK(map->type == MSGPACK_OBJECT_MAP, "the alert is not a map");
    bool resolved = strcmp(alert->state, "resolved") == 0;
    FUZZ_CHECK(map->via.map.size == (resolved ? 22u : 19u), "alert map has %u keys",
               map->via.map.size);
    expect_int(map, "v", 1);
    expect_str(map, "alert_id", alert->alert_id);
    char clock_id[ALERT_ID_LENGTH + 1];
    alert_clock_id(alert->rule, alert->ref, clock_id);
    expect_str(map, "clock_id", clock_id);
    expect_str(map, "rule", alert->rule);
    expect_str(map, "level", alert->level);
    expect_str(map, "state", alert->state);
    expect_int(map, "seq", alert->seq);
    expect_str(map, "unit", alert->unit);
    expect_str(map, "case", alert->case_number);
    expect_str(map, "ref", alert->ref);
    expect_str(map, "subject", alert->subject);
    expect_int(map, "started_at", alert->started_at_ms);
    expect_int(map, "deadline", alert->deadline_ms);
    expect_int(map, "due_at", alert->due_at_ms);
    expect_int(map, "emitted_at", EMITTED_AT_MS);
    expect_str(map, "cause", alert->cause);
    expect_str(map, "text", text);
    const msgpack_object *provisional = map_value(map, "provisional");
    FUZZ_CHECK(provisional->type == MSGPACK_OBJECT_BOOLEAN &&
                   provisional->via.boolean == alert->provisional,
               "'provisional' decodes to something else");
    if (resolved) {
        expect_str(map, "resolved_by", alert->resolved_by);
        const msgpack_object *late = map_value(map, "late");
        FUZZ_CHECK(late->type == MSGPACK_OBJECT_BOOLEAN && late->via.boolean == alert->late,
                   "'late' decodes to something else");
        check_resolves(map_value(map, "resolves"), alert->resolves);
    }
    msgpack_unpacked_destroy(&unpacked);
}

/* The version 0 payload (no tag) of `alert`, as releases up to 2026-12-03
 * wrote it. */
static int join_payload(const struct alert *alert, char *buf, size_t buf_size)
{
    char last_day[16] = "";
    if (alert->has_last_day)
        snprintf(last_day, sizeof last_day, "%" PRId32, alert->last_day);
    return snprintf(buf, buf_size,
                    "%s|%s|%s|%" PRId64 "|%s|%s|%s|%s|%" PRId64 "|%" PRId64 "|%" PRId64
                    "|%s|%s|%d|%s",
                    alert->rule, alert->level, alert->state, alert->seq, alert->unit,
                    alert->case_number, alert->ref, alert->subject, alert->started_at_ms,
                    alert->deadline_ms, alert->due_at_ms, alert->cause, alert->resolved_by,
                    alert->late ? 1 : 0, last_day);
}

/* '|' separators in text, plus one: the fields of a value. */
static size_t field_count(const char *text, size_t length)
{
    size_t fields = 1;
    for (size_t i = 0; i < length; i++)
        fields += text[i] == '|';
    return fields;
}

/* Both payload versions of a parsed alert parse back to it. */
static void check_payload_round_trips(const struct alert *alert)
{
    char payload[2048], err[256];
    struct alert again;
    int length = alert_format_payload(alert, payload, sizeof payload);
    FUZZ_CHECK(length > FORMAT_TAG_LENGTH && (size_t)length < sizeof payload,
               "alert_format_payload: %d", length);
    FUZZ_CHECK(memcmp(payload, FORMAT_TAG, FORMAT_TAG_LENGTH) == 0, "payload without its tag");
    FUZZ_CHECK(field_count(payload + FORMAT_TAG_LENGTH, (size_t)length - FORMAT_TAG_LENGTH) ==
                   PAYLOAD_FIELD_COUNT,
               "payload of %zu fields: %s",
               field_count(payload + FORMAT_TAG_LENGTH, (size_t)length - FORMAT_TAG_LENGTH),
               payload);
    FUZZ_CHECK(alert_parse(alert->alert_id, payload, (size_t)length, &again, err, sizeof err) == 0,
               "the payload written does not parse: %s (%s)", err, payload);
    FUZZ_CHECK(memcmp(alert, &again, sizeof again) == 0, "the payload written parses differently");
    if (alert->rule[0] == '@' || alert->resolves[0] != '\0')
        return;
    int joined = join_payload(alert, payload, sizeof payload);
    FUZZ_CHECK(joined > 0 && (size_t)joined < sizeof payload, "join");
    FUZZ_CHECK(alert_parse(alert->alert_id, payload, (size_t)joined, &again, err, sizeof err) ==
                   0,
               "re-joined payload does not parse: %s", err);
    FUZZ_CHECK(memcmp(alert, &again, sizeof again) == 0, "re-joined payload parses differently");
}

/* The value read as a clock record: when it decodes, it encodes to the
 * current version and decodes back the same. */
static void check_clock_record(const char *value, size_t size)
{
    struct clock_record record, again;
    char err[256], encoded[CLOCK_RECORD_MAX];
    memset(err, 'Z', sizeof err);
    if (clock_record_decode(value, size, &record, err, sizeof err) != 0) {
        size_t length = strnlen(err, sizeof err);
        FUZZ_CHECK(length > 0 && length < sizeof err, "bad clock record error text");
        return;
    }
    FUZZ_CHECK(record.fired >= -1 && record.fired <= 2, "fired %d", (int)record.fired);
    int length = clock_record_encode(&record, encoded, sizeof encoded);
    FUZZ_CHECK(length > FORMAT_TAG_LENGTH && memcmp(encoded, FORMAT_TAG, FORMAT_TAG_LENGTH) == 0,
               "clock_record_encode: %d", length);
    FUZZ_CHECK(field_count(encoded + FORMAT_TAG_LENGTH, (size_t)length - FORMAT_TAG_LENGTH) ==
                   CLOCK_FIELD_COUNT,
               "record of the wrong field count: %s", encoded);
    FUZZ_CHECK(clock_record_decode(encoded, (size_t)length, &again, err, sizeof err) == 0,
               "the record written does not decode: %s (%s)", err, encoded);
    again.version = record.version; /* read from another version, the same clock */
    FUZZ_CHECK(memcmp(&record, &again, sizeof again) == 0, "the record written decodes differently");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char alert_id[128] = "0123456789abcdef0123456789abcdef";
    const char *payload = (const char *)data;
    size_t payload_size = size;
    const uint8_t *newline = memchr(data, '\n', size);
    if (newline != NULL) {
        size_t id_length = (size_t)(newline - data);
        if (id_length >= sizeof alert_id)
            id_length = sizeof alert_id - 1;
        memcpy(alert_id, data, id_length);
        alert_id[id_length] = '\0';
        payload = (const char *)newline + 1;
        payload_size = size - (size_t)(newline + 1 - data);
    }
    check_clock_record(payload, payload_size);
    struct alert alert;
    char err[256];
    memset(err, 'Z', sizeof err);
    if (alert_parse(alert_id, payload, payload_size, &alert, err, sizeof err) != 0) {
        size_t length = strnlen(err, sizeof err);
        FUZZ_CHECK(length > 0 && length < sizeof err, "bad error text");
        return 0;
    }
    check_payload_round_trips(&alert);

    /* as alerts.c sets it: from the rule, the last day and the calendar */
    alert.provisional =
        clock_setup_is_provisional(setup, alert.rule, alert.started_at_ms, alert.has_last_day,
                                   alert.last_day);
    struct alert_wording wording;
    clock_setup_wording(setup, alert.rule, alert.started_at_ms, &wording);
    char text[1024];
    memset(text, 'Z', sizeof text);
    alert_format_text(&alert, &wording, text, sizeof text);
    FUZZ_CHECK(memchr(text, '\0', sizeof text) != NULL, "text not NUL-terminated");
    bool fields_utf8 = valid_utf8(alert.unit) && valid_utf8(alert.case_number) &&
                       valid_utf8(alert.ref) && valid_utf8(alert.subject) &&
                       valid_utf8(wording.label) && valid_utf8(wording.action);
    if (fields_utf8)
        FUZZ_CHECK(valid_utf8(text), "text is not UTF-8: %s", text);

    /* The cut: a buffer too small for the sentence keeps a prefix of it that
     * ends on a character boundary. */
    char small[160];
    size_t small_size = size % sizeof small;
    memset(small, 'Z', sizeof small);
    alert_format_text(&alert, &wording, small, small_size);
    if (small_size > 0) {
        size_t small_length = strnlen(small, small_size);
        FUZZ_CHECK(small_length < small_size, "cut text not NUL-terminated");
        FUZZ_CHECK(strncmp(small, text, small_length) == 0, "cut text is not a prefix");
        if (fields_utf8)
            FUZZ_CHECK(valid_utf8(small), "cut text is not UTF-8 (%zu bytes)", small_size);
    }

    void *encoded = NULL;
    size_t encoded_size = 0;
    FUZZ_CHECK(alert_encode(&alert, text, wording.basis, EMITTED_AT_MS, &encoded, &encoded_size) == 0,
               "alert_encode failed for a parsed alert");
    check_encoding(&alert, text, encoded, encoded_size);
    free(encoded);
    return 0;
}
