/* Unit tests for the event contract decoder: one valid event of every type
 * with exact field values, every reject reason with its exact enum value (and
 * the detail line where the wording matters), the order of checks, depth and
 * identifier boundaries, every truncation prefix, and a deterministic
 * mutation loop (run under ASan/UBSan) whose accepted outputs are re-checked
 * against the contract.  Messages are built with msgpack-c's packer, an
 * encoder independent of the reader under test, and copied into buffers of
 * exactly their size so any over-read is caught by the sanitizers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define DETAIL_SIZE 256
#define VALID_TS 1717171717123LL
#define DAY_MS 86400000LL

static const struct event_limits default_limits = {.max_bytes = 65536, .max_depth = 8};

/* The catalog, written out again from the contract so the decoder's own
 * table is checked against it. */
enum {
    NEED_CASE = 1,
    NEED_REF = 2,
    NEED_SUBJECT = 4,
    NEED_DAYS = 8,
};

static const struct {
    enum event_type type;
    const char *name;
    unsigned needs;
    const char *kinds[5]; /* NULL-terminated; empty when the type has none */
} catalog[EVENT_TYPE_COUNT] = {
    {EVENT_INCIDENT_REPORTED, "incident.reported", NEED_REF, {"criminal", "admin", "other"}},
    {EVENT_INCIDENT_ACCEPTED, "incident.accepted", NEED_REF | NEED_CASE, {NULL}},
    {EVENT_INCIDENT_CLOSED, "incident.closed", NEED_REF, {NULL}},
    {EVENT_CASE_ACCEPTED, "case.accepted", NEED_CASE, {"criminal", "admin"}},
    {EVENT_CASE_FILED, "case.filed", NEED_CASE, {NULL}},
    {EVENT_CASE_FILING_REFUSED, "case.filing_refused", NEED_CASE, {NULL}},
    {EVENT_CASE_EXTENDED, "case.extended", NEED_CASE | NEED_DAYS, {NULL}},
    {EVENT_CASE_SUSPENDED, "case.suspended", NEED_CASE, {NULL}},
    {EVENT_CASE_RESUMED, "case.resumed", NEED_CASE, {NULL}},
    {EVENT_CASE_CLOSED, "case.closed", NEED_CASE, {NULL}},
    {EVENT_MEASURE_STARTED, "measure.started", NEED_CASE | NEED_REF | NEED_SUBJECT,
     {"bail", "rs", "rs_designated", "criminal_detention"}},
    {EVENT_MEASURE_EXTENDED, "measure.extended", NEED_CASE | NEED_REF | NEED_DAYS, {NULL}},
    {EVENT_MEASURE_ENDED, "measure.ended", NEED_CASE | NEED_REF, {NULL}},
    {EVENT_MEASURE_ARREST_REQUESTED, "measure.arrest_requested", NEED_CASE | NEED_REF, {NULL}},
    {EVENT_DETENTION_DECIDED, "detention.decided",
     NEED_CASE | NEED_REF | NEED_SUBJECT | NEED_DAYS, {NULL}},
    {EVENT_DETENTION_EXECUTED, "detention.executed", NEED_CASE | NEED_REF, {NULL}},
    {EVENT_DETENTION_SUSPENDED, "detention.suspended", NEED_CASE | NEED_REF, {NULL}},
    {EVENT_DETENTION_CANCELLED, "detention.cancelled", NEED_CASE | NEED_REF, {NULL}},
    {EVENT_PROPERTY_SEIZED, "property.seized", NEED_CASE | NEED_REF, {"seize", "seal", "preserve"}},
    {EVENT_PROPERTY_EXTENDED, "property.extended", NEED_CASE | NEED_REF | NEED_DAYS, {NULL}},
    {EVENT_PROPERTY_RELEASED, "property.released", NEED_CASE | NEED_REF, {NULL}},
    {EVENT_DECISION_ISSUED, "decision.issued", NEED_CASE | NEED_REF,
     {"license", "penalty", "other"}},
    {EVENT_DECISION_PUBLISHED, "decision.published", NEED_CASE | NEED_REF, {NULL}},
    {EVENT_CLOCK_TICK, "clock.tick", 0, {NULL}},
};

/* The qualifiers, written out again: the type, the key it requires, its two
 * values, and the one kind it is required of (NULL: every event). */
struct qualifier_entry {
    enum event_type type;
    const char *qualifier;
    const char *values[2];
    const char *when_kind;
};

static const struct qualifier_entry qualifier_catalog[] = {
    {EVENT_CASE_ACCEPTED, "admin_type", {"public_security", "other"}, "admin"},
    {EVENT_PROPERTY_SEIZED, "scope", {"criminal", "admin"}, NULL},
    {EVENT_DECISION_ISSUED, "publish", {"required", "exempt"}, NULL},
};

/* The qualifier entry of a type, or NULL. */
static const struct qualifier_entry *qualifier_for(int type)
{
    for (size_t i = 0; i < sizeof qualifier_catalog / sizeof qualifier_catalog[0]; i++)
        if ((int)qualifier_catalog[i].type == type)
            return &qualifier_catalog[i];
    return NULL;
}

/* ---- message building ---- */

enum field_kind { FIELD_STR, FIELD_INT, FIELD_UINT, FIELD_DOUBLE, FIELD_NIL, FIELD_RAW };

struct field {
    const char *key;     /* packed as a str, unless raw_key is set */
    const uint8_t *raw_key;
    size_t raw_key_length;
    enum field_kind kind;
    const char *text;    /* FIELD_STR: NUL-terminated; FIELD_RAW: bytes */
    size_t raw_length;   /* FIELD_RAW */
    int64_t number;      /* FIELD_INT */
    uint64_t unsigned_number;
    double real;
};

struct message {
    struct field fields[24];
    size_t count;
};

struct packed {
    uint8_t *bytes; /* malloc'd, exactly `size` bytes */
    size_t size;
};

static struct field str_field(const char *key, const char *text)
{
    return (struct field){.key = key, .kind = FIELD_STR, .text = text};
}

static struct field int_field(const char *key, int64_t number)
{
    return (struct field){.key = key, .kind = FIELD_INT, .number = number};
}

static struct field uint_field(const char *key, uint64_t number)
{
    return (struct field){.key = key, .kind = FIELD_UINT, .unsigned_number = number};
}

static struct field double_field(const char *key, double real)
{
    return (struct field){.key = key, .kind = FIELD_DOUBLE, .real = real};
}

static struct field raw_field(const char *key, const void *bytes, size_t length)
{
    return (struct field){.key = key, .kind = FIELD_RAW, .text = bytes, .raw_length = length};
}

static void add_field(struct message *message, struct field field)
{
    assert_true(message->count < sizeof message->fields / sizeof message->fields[0]);
    message->fields[message->count++] = field;
}

/* Replaces the first field with this key, or appends. */
static void set_field(struct message *message, struct field field)
{
    for (size_t i = 0; i < message->count; i++)
        if (message->fields[i].key != NULL && strcmp(message->fields[i].key, field.key) == 0) {
            message->fields[i] = field;
            return;
        }
    add_field(message, field);
}

static void remove_field(struct message *message, const char *key)
{
    for (size_t i = 0; i < message->count; i++)
        if (message->fields[i].key != NULL && strcmp(message->fields[i].key, key) == 0) {
            memmove(&message->fields[i], &message->fields[i + 1],
                    (message->count - i - 1) * sizeof message->fields[0]);
            message->count--;
            return;
        }
    fail_msg("no field '%s' to remove", key);
}

static struct packed pack_message(const struct message *message)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, message->count);
    for (size_t i = 0; i < message->count; i++) {
        const struct field *field = &message->fields[i];
        if (field->raw_key != NULL)
            msgpack_sbuffer_write(&buffer, (const char *)field->raw_key, field->raw_key_length);
        else
            msgpack_pack_str_with_body(&packer, field->key, strlen(field->key));
        switch (field->kind) {
        case FIELD_STR:
            msgpack_pack_str_with_body(&packer, field->text, strlen(field->text));
            break;
        case FIELD_INT: msgpack_pack_int64(&packer, field->number); break;
        case FIELD_UINT: msgpack_pack_uint64(&packer, field->unsigned_number); break;
        case FIELD_DOUBLE: msgpack_pack_double(&packer, field->real); break;
        case FIELD_NIL: msgpack_pack_nil(&packer); break;
        case FIELD_RAW: msgpack_sbuffer_write(&buffer, field->text, field->raw_length); break;
        }
    }
    struct packed packed = {malloc(buffer.size), buffer.size};
    assert_non_null(packed.bytes);
    memcpy(packed.bytes, buffer.data, buffer.size);
    msgpack_sbuffer_destroy(&buffer);
    return packed;
}

/* A valid message of `type` with exactly the keys it needs; kind is the
 * type's first kind value. */
static struct message message_for_type(enum event_type type)
{
    struct message message = {.count = 0};
    add_field(&message, uint_field("v", 1));
    add_field(&message, str_field("id", "01HZX3K9Q7.evt_0001"));
    add_field(&message, str_field("type", catalog[type].name));
    add_field(&message, int_field("ts", VALID_TS));
    add_field(&message, str_field("unit", "500112-XJ01"));
    if (catalog[type].needs & NEED_CASE)
        add_field(&message, str_field("case", "A5001120000002024060001"));
    if (catalog[type].needs & NEED_REF)
        add_field(&message, str_field("ref", "M-77"));
    if (catalog[type].needs & NEED_SUBJECT)
        add_field(&message, str_field("subject", "p_9f2c.1"));
    if (catalog[type].needs & NEED_DAYS)
        add_field(&message, uint_field("days", 30));
    if (catalog[type].kinds[0] != NULL)
        add_field(&message, str_field("kind", catalog[type].kinds[0]));
    const struct qualifier_entry *q = qualifier_for(type);
    if (q != NULL && (q->when_kind == NULL || strcmp(q->when_kind, catalog[type].kinds[0]) == 0))
        add_field(&message, str_field(q->qualifier, q->values[0]));
    return message;
}

/* The value of the type's qualifier in the event. */
static struct text qualifier_of(const struct duewatch_event *event, int type)
{
    const struct qualifier_entry *q = qualifier_for(type);
    int key = event_enum_key_from_name(q->qualifier, strlen(q->qualifier));
    assert_true(key > 0);
    return event_enum_value(event, (enum event_enum_key)key);
}

static enum event_reject decode_with(const struct message *message,
                                     const struct event_limits *limits, char *detail)
{
    struct packed packed = pack_message(message);
    struct duewatch_event event;
    enum event_reject result =
        event_decode(packed.bytes, packed.size, limits, &event, detail, DETAIL_SIZE);
    free(packed.bytes);
    return result;
}

static enum event_reject decode(const struct message *message, char *detail)
{
    return decode_with(message, &default_limits, detail);
}

#define assert_text(text, expected)                                   \
    do {                                                              \
        assert_int_equal((text).length, strlen(expected));            \
        assert_memory_equal((text).bytes, (expected), strlen(expected)); \
    } while (0)

#define assert_absent(text) assert_int_equal((text).length, 0)

#define expect_decode(message, reason)                        \
    do {                                                        \
        char detail_[DETAIL_SIZE];                              \
        assert_int_equal(decode((message), detail_), (reason)); \
    } while (0)

#define expect_decode_detail(message, reason, expected_detail)  \
    do {                                                        \
        char detail_[DETAIL_SIZE];                              \
        assert_int_equal(decode((message), detail_), (reason)); \
        assert_string_equal(detail_, (expected_detail));        \
    } while (0)

static bool points_into(struct text text, const struct packed *packed)
{
    const uint8_t *bytes = (const uint8_t *)text.bytes;
    return bytes >= packed->bytes && bytes + text.length <= packed->bytes + packed->size;
}

/* ---- tests ---- */

static void test_names(void **state)
{
    (void)state;
    for (int type = 0; type < EVENT_TYPE_COUNT; type++) {
        assert_string_equal(event_type_name((enum event_type)type), catalog[type].name);
        assert_int_equal(event_type_from_name(catalog[type].name, strlen(catalog[type].name)),
                         type);
    }
    assert_null(event_type_name(EVENT_TYPE_COUNT));
    assert_null(event_type_name((enum event_type)-1));
    assert_int_equal(event_type_from_name("case.file", 9), -1);
    assert_int_equal(event_type_from_name("case.filedx", 11), -1);
    assert_int_equal(event_type_from_name("case.filedx", 10), EVENT_CASE_FILED);
    assert_int_equal(event_type_from_name("Case.filed", 10), -1);
    assert_int_equal(event_type_from_name("", 0), -1);
    assert_int_equal(event_type_from_name(NULL, 0), -1);

    static const char *const reject_names[REJECT_COUNT] = {
        "valid", "too_large", "empty", "not_msgpack", "trailing_bytes", "not_map", "too_deep",
        "key_not_string", "duplicate_key", "missing_key", "wrong_type", "bad_version",
        "unknown_type", "bad_identifier", "ts_out_of_range", "bad_kind", "bad_days",
        "ts_in_future", "until_not_after_ts", "bad_value", "calendar_not_covered"};
    for (int reason = 0; reason < REJECT_COUNT; reason++)
        assert_string_equal(event_reject_name((enum event_reject)reason), reject_names[reason]);
    assert_null(event_reject_name(REJECT_COUNT));
}

static void test_every_type_valid_minimal(void **state)
{
    (void)state;
    for (int type = 0; type < EVENT_TYPE_COUNT; type++) {
        struct message message = message_for_type((enum event_type)type);
        struct packed packed = pack_message(&message);
        struct duewatch_event event;
        char detail[DETAIL_SIZE] = "untouched";
        assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                      sizeof detail),
                         EVENT_VALID);
        assert_string_equal(detail, "");
        assert_int_equal(event.type, type);
        assert_true(event.ts_ms == VALID_TS);
        assert_text(event.id, "01HZX3K9Q7.evt_0001");
        assert_text(event.unit, "500112-XJ01");
        assert_true(points_into(event.id, &packed));
        assert_true(points_into(event.unit, &packed));
        unsigned needs = catalog[type].needs;
        if (needs & NEED_CASE) {
            assert_text(event.case_number, "A5001120000002024060001");
            assert_true(points_into(event.case_number, &packed));
        } else {
            assert_absent(event.case_number);
        }
        if (needs & NEED_REF)
            assert_text(event.ref, "M-77");
        else
            assert_absent(event.ref);
        if (needs & NEED_SUBJECT)
            assert_text(event.subject, "p_9f2c.1");
        else
            assert_absent(event.subject);
        assert_int_equal(event.days, (needs & NEED_DAYS) ? 30 : 0);
        if (catalog[type].kinds[0] != NULL)
            assert_text(event.kind, catalog[type].kinds[0]);
        else
            assert_absent(event.kind);
        assert_true(event.until_ms == 0);
        free(packed.bytes);
    }
}

/* Every optional key present, on every type: all are validated and passed
 * on, except a kind on a type without kind values, which is ignored. */
static void test_every_type_valid_with_optional_keys(void **state)
{
    (void)state;
    for (int type = 0; type < EVENT_TYPE_COUNT; type++) {
        struct message message = message_for_type((enum event_type)type);
        set_field(&message, str_field("case", "C.9"));
        set_field(&message, str_field("ref", "R_1"));
        set_field(&message, str_field("subject", "S-2"));
        set_field(&message, uint_field("days", EVENT_MAX_DAYS));
        set_field(&message, int_field("until", VALID_TS + 7 * DAY_MS));
        if (catalog[type].kinds[0] == NULL)
            set_field(&message, str_field("kind", "anything at all \x01"));
        struct packed packed = pack_message(&message);
        struct duewatch_event event;
        char detail[DETAIL_SIZE];
        assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                      sizeof detail),
                         EVENT_VALID);
        assert_int_equal(event.type, type);
        assert_text(event.case_number, "C.9");
        assert_text(event.ref, "R_1");
        assert_text(event.subject, "S-2");
        assert_int_equal(event.days, EVENT_MAX_DAYS);
        assert_true(event.until_ms == VALID_TS + 7 * DAY_MS);
        if (catalog[type].kinds[0] != NULL)
            assert_text(event.kind, catalog[type].kinds[0]);
        else
            assert_absent(event.kind);
        free(packed.bytes);
    }
}

/* `ground` (README "Event contract"): each value decodes to its enum, an
 * absent one is GROUND_NONE, another value is bad_kind, a non-str
 * wrong_type. */
static void test_ground(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        enum extension_ground ground;
    } grounds[] = {{"roving", GROUND_ROVING}, {"repeated", GROUND_REPEATED},
                   {"gang", GROUND_GANG}, {"complex", GROUND_COMPLEX}};
    char detail[DETAIL_SIZE];
    struct duewatch_event event;
    struct message message = message_for_type(EVENT_MEASURE_EXTENDED);
    struct packed packed = pack_message(&message);
    assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                  sizeof detail),
                     EVENT_VALID);
    assert_int_equal(event.ground, GROUND_NONE);
    free(packed.bytes);
    for (size_t i = 0; i < sizeof grounds / sizeof grounds[0]; i++) {
        set_field(&message, str_field("ground", grounds[i].value));
        packed = pack_message(&message);
        assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                      sizeof detail),
                         EVENT_VALID);
        assert_int_equal(event.ground, grounds[i].ground);
        free(packed.bytes);
    }
    set_field(&message, str_field("ground", "gangs"));
    expect_decode_detail(&message, REJECT_BAD_KIND,
                         "ground 'gangs' is not one of roving, repeated, gang, complex");
    for (size_t i = 0; i < sizeof grounds / sizeof grounds[0]; i++) {
        assert_int_equal(event_ground_from_name(grounds[i].value, strlen(grounds[i].value)),
                         grounds[i].ground);
        assert_string_equal(event_ground_name(grounds[i].ground), grounds[i].value);
    }
    assert_int_equal(event_ground_from_name("gangs", 5), -1);
    assert_null(event_ground_name(GROUND_NONE));
    assert_null(event_ground_name(GROUND_COUNT));
    set_field(&message, int_field("ground", 1));
    expect_decode_detail(&message, REJECT_WRONG_TYPE,
                         "key 'ground' has msgpack type int (expected str)");
}

static void test_every_kind_value(void **state)
{
    (void)state;
    char detail[DETAIL_SIZE];
    for (int type = 0; type < EVENT_TYPE_COUNT; type++) {
        for (size_t k = 0; catalog[type].kinds[k] != NULL; k++) {
            struct message message = message_for_type((enum event_type)type);
            set_field(&message, str_field("kind", catalog[type].kinds[k]));
            const struct qualifier_entry *q = qualifier_for(type);
            if (q != NULL)
                set_field(&message, str_field(q->qualifier, q->values[1]));
            struct packed packed = pack_message(&message);
            struct duewatch_event event;
            assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event,
                                          detail, sizeof detail),
                             EVENT_VALID);
            assert_text(event.kind, catalog[type].kinds[k]);
            /* a qualifier required of another kind only is ignored */
            if (q != NULL && q->when_kind != NULL && strcmp(q->when_kind, catalog[type].kinds[k]))
                assert_absent(qualifier_of(&event, type));
            else if (q != NULL)
                assert_text(qualifier_of(&event, type), q->values[1]);
            free(packed.bytes);
        }
    }
    /* A kind of another type, a prefix, a different case: all rejected. */
    struct message message = message_for_type(EVENT_CASE_ACCEPTED);
    set_field(&message, str_field("kind", "other"));
    expect_decode_detail(&message, REJECT_BAD_KIND,
                         "kind 'other' is not valid for type case.accepted "
                         "(one of criminal, admin)");
    set_field(&message, str_field("kind", "crim"));
    expect_decode(&message, REJECT_BAD_KIND);
    set_field(&message, str_field("kind", "Criminal"));
    expect_decode(&message, REJECT_BAD_KIND);
    set_field(&message, str_field("kind", "criminal "));
    expect_decode_detail(&message, REJECT_BAD_KIND,
                         "kind <9 bytes, hex 6372696d696e616c20> is not valid for type "
                         "case.accepted (one of criminal, admin)");
    message = message_for_type(EVENT_MEASURE_STARTED);
    remove_field(&message, "kind");
    expect_decode_detail(&message, REJECT_BAD_KIND,
                         "key 'kind' is required for type measure.started (one of bail, rs, "
                         "rs_designated, criminal_detention)");
    /* Still a type check first: a kind that is not a str. */
    set_field(&message, int_field("kind", 1));
    expect_decode_detail(&message, REJECT_WRONG_TYPE,
                         "key 'kind' has msgpack type int (expected str)");
    message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, int_field("kind", 1));
    expect_decode(&message, REJECT_WRONG_TYPE);
}

/* Qualifiers: scope on every property.seized, admin_type on case.accepted
 * of kind admin only, publish on every decision.issued: missing is
 * missing_key, a value not listed bad_value, each with its detail; the
 * decoded event carries the value; one the type or kind does not take is
 * ignored. */
static void test_qualifiers(void **state)
{
    (void)state;
    static const struct {
        enum event_type type;
        const char *kind, *key, *detail_missing, *detail_bad;
    } cases[] = {
        {EVENT_PROPERTY_SEIZED, "seize", "scope",
         "key 'scope' is required for type property.seized (one of criminal, admin)",
         "scope 'Admin' is not valid for type property.seized (one of criminal, admin)"},
        {EVENT_CASE_ACCEPTED, "admin", "admin_type",
         "key 'admin_type' is required for type case.accepted kind admin "
         "(one of public_security, other)",
         "admin_type 'Admin' is not valid for type case.accepted kind admin "
         "(one of public_security, other)"},
        {EVENT_DECISION_ISSUED, "penalty", "publish",
         "key 'publish' is required for type decision.issued (one of required, exempt)",
         "publish 'Admin' is not valid for type decision.issued (one of required, exempt)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct message message = message_for_type(cases[i].type);
        set_field(&message, str_field("kind", cases[i].kind));
        set_field(&message, str_field(cases[i].key, "x"));
        remove_field(&message, cases[i].key);
        expect_decode_detail(&message, REJECT_MISSING_KEY, cases[i].detail_missing);
        set_field(&message, str_field(cases[i].key, "Admin"));
        expect_decode_detail(&message, REJECT_BAD_VALUE, cases[i].detail_bad);
        set_field(&message, str_field(cases[i].key, ""));
        expect_decode(&message, REJECT_BAD_VALUE);
        set_field(&message, int_field(cases[i].key, 1));
        expect_decode(&message, REJECT_WRONG_TYPE);
    }
    /* Decoded values, through event_enum_value. */
    struct message message = message_for_type(EVENT_PROPERTY_SEIZED);
    set_field(&message, str_field("scope", "criminal"));
    add_field(&message, str_field("publish", "not checked here"));
    struct packed packed = pack_message(&message);
    struct duewatch_event event;
    char detail[DETAIL_SIZE];
    assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                  sizeof detail),
                     EVENT_VALID);
    assert_text(event_enum_value(&event, EVENT_ENUM_SCOPE), "criminal");
    assert_text(event_enum_value(&event, EVENT_ENUM_KIND), "seize");
    assert_absent(event_enum_value(&event, EVENT_ENUM_PUBLISH));
    assert_true(points_into(event.qualifiers[EVENT_ENUM_SCOPE - 1], &packed));
    free(packed.bytes);
    /* A criminal case needs no admin_type; one given is ignored, unchecked. */
    message = message_for_type(EVENT_CASE_ACCEPTED);
    expect_decode(&message, EVENT_VALID);
    add_field(&message, str_field("admin_type", "whatever"));
    expect_decode(&message, EVENT_VALID);
    /* decision.issued has kinds now: missing is bad_kind, checked before publish. */
    message = message_for_type(EVENT_DECISION_ISSUED);
    remove_field(&message, "kind");
    remove_field(&message, "publish");
    expect_decode_detail(&message, REJECT_BAD_KIND,
                         "key 'kind' is required for type decision.issued "
                         "(one of license, penalty, other)");
    /* Names and the contract's lists. */
    assert_string_equal(event_enum_key_name(EVENT_ENUM_ADMIN_TYPE), "admin_type");
    assert_null(event_enum_key_name(EVENT_ENUM_COUNT));
    assert_int_equal(event_enum_key_from_name("scope", 5), EVENT_ENUM_SCOPE);
    assert_int_equal(event_enum_key_from_name("kind", 4), EVENT_ENUM_KIND);
    assert_int_equal(event_enum_key_from_name("scopes", 6), -1);
    assert_int_equal(event_enum_key_from_name("case", 4), -1);
    assert_string_equal(event_enum_values(EVENT_PROPERTY_SEIZED, EVENT_ENUM_SCOPE)[1], "admin");
    assert_null(event_enum_values(EVENT_PROPERTY_SEIZED, EVENT_ENUM_PUBLISH));
    assert_null(event_enum_values(EVENT_CASE_FILED, EVENT_ENUM_KIND));
    assert_string_equal(event_enum_values(EVENT_DECISION_ISSUED, EVENT_ENUM_KIND)[0], "license");
}

static void test_size_and_empty(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_CASE_FILED);
    struct packed packed = pack_message(&message);
    struct duewatch_event event;
    char detail[DETAIL_SIZE];
    struct event_limits limits = {.max_bytes = packed.size, .max_depth = 8};
    assert_int_equal(
        event_decode(packed.bytes, packed.size, &limits, &event, detail, sizeof detail),
        EVENT_VALID);
    limits.max_bytes = packed.size - 1;
    assert_int_equal(
        event_decode(packed.bytes, packed.size, &limits, &event, detail, sizeof detail),
        REJECT_TOO_LARGE);
    char expected[64];
    snprintf(expected, sizeof expected, "value has %zu bytes (at most %zu)", packed.size,
             packed.size - 1);
    assert_string_equal(detail, expected);
    /* Size is checked before anything is read. */
    assert_int_equal(event_decode(NULL, 1000000, &default_limits, &event, detail, sizeof detail),
                     REJECT_TOO_LARGE);
    assert_int_equal(event_decode(NULL, 0, &default_limits, &event, detail, sizeof detail),
                     REJECT_EMPTY);
    assert_int_equal(event_decode(packed.bytes, 0, &default_limits, &event, detail, sizeof detail),
                     REJECT_EMPTY);
    assert_int_equal(event_decode(NULL, 10, &default_limits, &event, detail, sizeof detail),
                     REJECT_EMPTY);
    free(packed.bytes);
}

static void test_not_msgpack_trailing_not_map(void **state)
{
    (void)state;
    struct duewatch_event event;
    char detail[DETAIL_SIZE];
    static const uint8_t reserved[] = {0x81, 0xa1, 'v', 0xc1};
    assert_int_equal(event_decode(reserved, sizeof reserved, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_NOT_MSGPACK);
    assert_string_equal(detail, "reserved byte 0xc1 at offset 3");
    static const uint8_t truncated[] = {0x82, 0xa1, 'v', 0x01};
    assert_int_equal(event_decode(truncated, sizeof truncated, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_NOT_MSGPACK);
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1};
    assert_int_equal(event_decode(huge_map, sizeof huge_map, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_NOT_MSGPACK);

    /* A valid event followed by 5 bytes. */
    struct message message = message_for_type(EVENT_CASE_FILED);
    struct packed packed = pack_message(&message);
    uint8_t *longer = malloc(packed.size + 5);
    assert_non_null(longer);
    memcpy(longer, packed.bytes, packed.size);
    memset(longer + packed.size, 0xc0, 5);
    assert_int_equal(event_decode(longer, packed.size + 5, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_TRAILING_BYTES);
    assert_string_equal(detail, "5 bytes follow the event map");
    /* Whole-value checks come before the map check... */
    static const uint8_t two_ints[] = {0x01, 0x02};
    assert_int_equal(event_decode(two_ints, sizeof two_ints, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_TRAILING_BYTES);
    assert_string_equal(detail, "1 byte follows the first msgpack value");
    /* ... and the tail is never parsed: even a reserved byte there is
     * TRAILING_BYTES, not NOT_MSGPACK. */
    longer[packed.size] = 0xc1;
    assert_int_equal(event_decode(longer, packed.size + 5, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_TRAILING_BYTES);
    free(longer);
    free(packed.bytes);

    static const uint8_t array[] = {0x91, 0x80};
    assert_int_equal(event_decode(array, sizeof array, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_NOT_MAP);
    assert_string_equal(detail, "top-level value has msgpack type array, not map");
    static const uint8_t text[] = {0xa2, 'h', 'i'};
    assert_int_equal(event_decode(text, sizeof text, &default_limits, &event, detail,
                                  sizeof detail),
                     REJECT_NOT_MAP);
    static const uint8_t nil[] = {0xc0};
    assert_int_equal(event_decode(nil, sizeof nil, &default_limits, &event, detail, sizeof detail),
                     REJECT_NOT_MAP);
}

static void test_key_not_string_and_duplicates(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_CASE_FILED);
    static const uint8_t int_key[] = {0x07};
    struct field field = int_field(NULL, 1);
    field.raw_key = int_key;
    field.raw_key_length = sizeof int_key;
    add_field(&message, field);
    expect_decode_detail(&message, REJECT_KEY_NOT_STRING,
                         "map key #7 has msgpack type int (keys must be str)");
    /* A bin key holding "v" is not a str key either. */
    message = message_for_type(EVENT_CASE_FILED);
    static const uint8_t bin_key[] = {0xc4, 0x01, 'v'};
    field.raw_key = bin_key;
    field.raw_key_length = sizeof bin_key;
    message.fields[0] = field;
    expect_decode(&message, REJECT_KEY_NOT_STRING);

    message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, int_field("ts", VALID_TS));
    expect_decode_detail(&message, REJECT_DUPLICATE_KEY, "key 'ts' appears twice");
    /* Even with a value that would be wrong on its own. */
    message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, str_field("case", ""));
    expect_decode_detail(&message, REJECT_DUPLICATE_KEY, "key 'case' appears twice");
    /* Unknown keys may repeat. */
    message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, int_field("note", 1));
    add_field(&message, str_field("note", "again"));
    expect_decode(&message, EVENT_VALID);
}

static void test_missing_keys(void **state)
{
    (void)state;
    static const char *const always[] = {"v", "id", "type", "ts", "unit"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++) {
        struct message message = message_for_type(EVENT_CLOCK_TICK);
        remove_field(&message, always[i]);
        char expected[64];
        snprintf(expected, sizeof expected, "key '%s' is required", always[i]);
        expect_decode_detail(&message, REJECT_MISSING_KEY, expected);
    }
    static const struct {
        unsigned need;
        const char *key;
    } by_type[] = {{NEED_CASE, "case"}, {NEED_REF, "ref"}, {NEED_SUBJECT, "subject"},
                   {NEED_DAYS, "days"}};
    int removed = 0;
    for (int type = 0; type < EVENT_TYPE_COUNT; type++)
        for (size_t i = 0; i < sizeof by_type / sizeof by_type[0]; i++) {
            if (!(catalog[type].needs & by_type[i].need))
                continue;
            struct message message = message_for_type((enum event_type)type);
            remove_field(&message, by_type[i].key);
            char expected[96];
            snprintf(expected, sizeof expected, "key '%s' is required for type %s",
                     by_type[i].key, catalog[type].name);
            expect_decode_detail(&message, REJECT_MISSING_KEY, expected);
            removed++;
        }
    assert_int_equal(removed, 43); /* every "also required" key in the catalog */
    struct message message = message_for_type(EVENT_CASE_FILED);
    remove_field(&message, "case");
    expect_decode_detail(&message, REJECT_MISSING_KEY,
                         "key 'case' is required for type case.filed");
}

static void test_wrong_types(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_CASE_EXTENDED);
    set_field(&message, double_field("ts", (double)VALID_TS));
    expect_decode_detail(&message, REJECT_WRONG_TYPE,
                         "key 'ts' has msgpack type float (expected int)");
    set_field(&message, str_field("ts", "1717171717123"));
    expect_decode(&message, REJECT_WRONG_TYPE);

    message = message_for_type(EVENT_CASE_EXTENDED);
    set_field(&message, int_field("v", -1));
    expect_decode_detail(&message, REJECT_WRONG_TYPE,
                         "key 'v' is negative (-1), expected a non-negative int");
    set_field(&message, str_field("v", "1"));
    expect_decode_detail(&message, REJECT_WRONG_TYPE,
                         "key 'v' has msgpack type str (expected a non-negative int)");
    set_field(&message, double_field("v", 1.0));
    expect_decode(&message, REJECT_WRONG_TYPE);

    message = message_for_type(EVENT_CASE_EXTENDED);
    set_field(&message, int_field("days", -30));
    expect_decode(&message, REJECT_WRONG_TYPE);
    set_field(&message, (struct field){.key = "days", .kind = FIELD_NIL});
    expect_decode(&message, REJECT_WRONG_TYPE);

    static const char *const string_keys[] = {"id", "type", "unit", "case"};
    for (size_t i = 0; i < sizeof string_keys / sizeof string_keys[0]; i++) {
        message = message_for_type(EVENT_CASE_EXTENDED);
        set_field(&message, int_field(string_keys[i], 5));
        expect_decode(&message, REJECT_WRONG_TYPE);
    }
    /* bin is not str, even with identifier bytes. */
    message = message_for_type(EVENT_CASE_EXTENDED);
    static const uint8_t bin_unit[] = {0xc4, 0x02, 'U', '1'};
    set_field(&message, raw_field("unit", bin_unit, sizeof bin_unit));
    expect_decode_detail(&message, REJECT_WRONG_TYPE,
                         "key 'unit' has msgpack type bin (expected str)");
    /* Containers are the wrong type too. */
    static const uint8_t array_ref[] = {0x91, 0xa1, 'x'};
    message = message_for_type(EVENT_MEASURE_ENDED);
    set_field(&message, raw_field("ref", array_ref, sizeof array_ref));
    expect_decode_detail(&message, REJECT_WRONG_TYPE,
                         "key 'ref' has msgpack type array (expected str)");
    message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, double_field("until", 1e12));
    expect_decode(&message, REJECT_WRONG_TYPE);
    /* Types are checked before required keys: ts wrong and case missing. */
    message = message_for_type(EVENT_CASE_FILED);
    remove_field(&message, "case");
    set_field(&message, double_field("ts", 1.0));
    expect_decode(&message, REJECT_WRONG_TYPE);
}

/* ts and until accept every int format, signed ones included. */
static void test_integer_formats_for_ts(void **state)
{
    (void)state;
    /* 1717171717123 = 0x0000018fcf690403 */
    static const uint8_t as_int64[] = {0xd3, 0x00, 0x00, 0x01, 0x8f, 0xcf, 0x69, 0x04, 0x03};
    /* until must be after ts: 1717171717124 */
    static const uint8_t as_uint64[] = {0xcf, 0x00, 0x00, 0x01, 0x8f, 0xcf, 0x69, 0x04, 0x04};
    static const uint8_t fixint_one[] = {0x01};
    static const uint8_t int8_one[] = {0xd0, 0x01};
    static const uint8_t days_as_int16[] = {0xd1, 0x00, 0x1e};
    struct message message = message_for_type(EVENT_CASE_EXTENDED);
    set_field(&message, raw_field("ts", as_int64, sizeof as_int64));
    set_field(&message, raw_field("until", as_uint64, sizeof as_uint64));
    set_field(&message, raw_field("days", days_as_int16, sizeof days_as_int16));
    set_field(&message, raw_field("v", int8_one, sizeof int8_one));
    struct packed packed = pack_message(&message);
    struct duewatch_event event;
    char detail[DETAIL_SIZE];
    assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                  sizeof detail),
                     EVENT_VALID);
    assert_true(event.ts_ms == 1717171717123LL);
    assert_true(event.until_ms == 1717171717124LL);
    assert_int_equal(event.days, 30);
    free(packed.bytes);
    /* A positive fixint ts is an int: the reason is the range, not the type. */
    set_field(&message, raw_field("ts", fixint_one, sizeof fixint_one));
    expect_decode_detail(&message, REJECT_TS_OUT_OF_RANGE, "ts 1 is before 2000-01-01");
}

static void test_version(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_CLOCK_TICK);
    set_field(&message, uint_field("v", 2));
    expect_decode_detail(&message, REJECT_BAD_VERSION, "v is 2, only version 1 is supported");
    set_field(&message, uint_field("v", 0));
    expect_decode(&message, REJECT_BAD_VERSION);
    set_field(&message, uint_field("v", UINT64_MAX));
    expect_decode(&message, REJECT_BAD_VERSION);
    /* The version decides the schema: it is checked before the type. */
    set_field(&message, str_field("type", "no.such"));
    expect_decode(&message, REJECT_BAD_VERSION);
}

static void test_unknown_type(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_CLOCK_TICK);
    set_field(&message, str_field("type", "case.reopened"));
    expect_decode_detail(&message, REJECT_UNKNOWN_TYPE,
                         "type 'case.reopened' is not in the catalog");
    set_field(&message, str_field("type", "case.filed\x1b[2J"));
    expect_decode_detail(&message, REJECT_UNKNOWN_TYPE,
                         "type <14 bytes, hex 636173652e66696c65641b5b324a> is not in the catalog");
    set_field(&message, str_field("type", "clock.tick.clock.tick.clock.tick"));
    expect_decode(&message, REJECT_UNKNOWN_TYPE);
    set_field(&message, str_field("type", "CLOCK.TICK"));
    expect_decode(&message, REJECT_UNKNOWN_TYPE);
    set_field(&message, str_field("type", ""));
    expect_decode_detail(&message, REJECT_UNKNOWN_TYPE, "type '' is not in the catalog");
    /* Unknown type wins over a missing type-specific key: there is no type
     * to say what is missing. */
    message = message_for_type(EVENT_CASE_FILED);
    remove_field(&message, "case");
    set_field(&message, str_field("type", "case.filedd"));
    expect_decode(&message, REJECT_UNKNOWN_TYPE);
}

static void test_identifiers(void **state)
{
    (void)state;
    char sixty_four[65], sixty_five[66], seventy[71];
    memset(sixty_four, 'a', 64);
    sixty_four[64] = '\0';
    memset(sixty_five, 'Z', 65);
    sixty_five[65] = '\0';
    memset(seventy, '9', 70);
    seventy[70] = '\0';
    static const char *const keys[] = {"id", "unit", "case", "ref", "subject"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        struct message message = message_for_type(EVENT_MEASURE_STARTED);
        set_field(&message, str_field(keys[i], sixty_four));
        expect_decode(&message, EVENT_VALID);
        set_field(&message, str_field(keys[i], sixty_five));
        char expected[96];
        snprintf(expected, sizeof expected, "key '%s' has 65 bytes (at most 64)", keys[i]);
        expect_decode_detail(&message, REJECT_BAD_IDENTIFIER, expected);
        set_field(&message, str_field(keys[i], ""));
        snprintf(expected, sizeof expected, "key '%s' is empty", keys[i]);
        expect_decode_detail(&message, REJECT_BAD_IDENTIFIER, expected);
        set_field(&message, str_field(keys[i], "a b"));
        expect_decode(&message, REJECT_BAD_IDENTIFIER);
        set_field(&message, str_field(keys[i], "A-z.0_9"));
        expect_decode(&message, EVENT_VALID);
    }
    struct message message = message_for_type(EVENT_CASE_FILED);
    set_field(&message, str_field("unit", seventy));
    expect_decode_detail(&message, REJECT_BAD_IDENTIFIER, "key 'unit' has 70 bytes (at most 64)");
    set_field(&message, str_field("unit", "500:112"));
    expect_decode_detail(&message, REJECT_BAD_IDENTIFIER,
                         "key 'unit' has byte 0x3a at offset 3 (allowed: A-Z a-z 0-9 . _ -)");
    /* UTF-8 (here 公安) is outside the charset; the detail shows hex only. */
    set_field(&message, str_field("unit", "X\xe5\x85\xac\xe5\xae\x89"));
    expect_decode_detail(&message, REJECT_BAD_IDENTIFIER,
                         "key 'unit' has byte 0xe5 at offset 1 (allowed: A-Z a-z 0-9 . _ -)");
    static const uint8_t with_nul[] = {0xa3, 'a', 0x00, 'b'};
    set_field(&message, raw_field("unit", with_nul, sizeof with_nul));
    expect_decode_detail(&message, REJECT_BAD_IDENTIFIER,
                         "key 'unit' has byte 0x00 at offset 1 (allowed: A-Z a-z 0-9 . _ -)");
    /* Every byte value, against the charset written out independently. */
    for (unsigned byte = 0; byte < 256; byte++) {
        static const char allowed[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
        uint8_t raw_unit[] = {0xa3, 'A', (uint8_t)byte, 'B'};
        message = message_for_type(EVENT_CASE_FILED);
        set_field(&message, raw_field("unit", raw_unit, sizeof raw_unit));
        bool expected_valid = byte != 0 && memchr(allowed, (int)byte, sizeof allowed - 1) != NULL;
        char detail[DETAIL_SIZE];
        assert_int_equal(decode(&message, detail),
                         expected_valid ? EVENT_VALID : REJECT_BAD_IDENTIFIER);
    }
    /* Present but not required by the type: still validated. */
    message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, str_field("subject", "who?"));
    expect_decode(&message, REJECT_BAD_IDENTIFIER);
}

static void test_time_range(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_CLOCK_TICK);
    set_field(&message, int_field("ts", EVENT_MIN_TS_MS));
    expect_decode(&message, EVENT_VALID);
    set_field(&message, int_field("ts", EVENT_MIN_TS_MS - 1));
    expect_decode_detail(&message, REJECT_TS_OUT_OF_RANGE, "ts 946684799999 is before 2000-01-01");
    set_field(&message, int_field("ts", EVENT_MAX_TS_MS));
    expect_decode(&message, EVENT_VALID);
    set_field(&message, int_field("ts", EVENT_MAX_TS_MS + 1));
    expect_decode_detail(&message, REJECT_TS_OUT_OF_RANGE, "ts 4133980800000 is after 2100-12-31");
    set_field(&message, int_field("ts", 1));
    expect_decode_detail(&message, REJECT_TS_OUT_OF_RANGE, "ts 1 is before 2000-01-01");
    set_field(&message, int_field("ts", INT64_MIN));
    expect_decode(&message, REJECT_TS_OUT_OF_RANGE);
    set_field(&message, uint_field("ts", UINT64_MAX));
    expect_decode_detail(&message, REJECT_TS_OUT_OF_RANGE,
                         "ts 18446744073709551615 is after 2100-12-31");
    /* Seconds instead of milliseconds is a typical producer bug. */
    set_field(&message, int_field("ts", 1717171717));
    expect_decode(&message, REJECT_TS_OUT_OF_RANGE);

    message = message_for_type(EVENT_CLOCK_TICK);
    add_field(&message, int_field("until", EVENT_MIN_TS_MS - 1));
    expect_decode_detail(&message, REJECT_TS_OUT_OF_RANGE,
                         "until 946684799999 is before 2000-01-01");
    set_field(&message, int_field("until", 0));
    expect_decode(&message, REJECT_TS_OUT_OF_RANGE);
    set_field(&message, int_field("until", EVENT_MAX_TS_MS));
    expect_decode(&message, EVENT_VALID);
}

/* ts no later than limits->latest_ts_ms (0: no bound), until after ts. */
static void test_time_order(void **state)
{
    (void)state;
    const int64_t latest = 1780000000000LL;
    const struct event_limits limits = {.max_bytes = 65536, .max_depth = 8,
                                        .latest_ts_ms = latest};
    char detail[DETAIL_SIZE];
    struct message message = message_for_type(EVENT_CLOCK_TICK);
    set_field(&message, int_field("ts", latest));
    assert_int_equal(decode_with(&message, &limits, detail), EVENT_VALID);
    set_field(&message, int_field("ts", latest + 1));
    assert_int_equal(decode_with(&message, &limits, detail), REJECT_TS_IN_FUTURE);
    assert_string_equal(detail, "ts 1780000000001 is 1 ms ahead of the latest accepted "
                                "(1780000000000: wall clock + max_future_ms)");
    /* without a bound only the contract's years count */
    assert_int_equal(decode_with(&message, &default_limits, detail), EVENT_VALID);
    /* the range comes first: 2101 is out of range, not in the future */
    set_field(&message, int_field("ts", EVENT_MAX_TS_MS + 1));
    assert_int_equal(decode_with(&message, &limits, detail), REJECT_TS_OUT_OF_RANGE);

    message = message_for_type(EVENT_MEASURE_STARTED);
    set_field(&message, int_field("ts", 1740000000000LL));
    add_field(&message, int_field("until", 1740000000000LL));
    expect_decode_detail(&message, REJECT_UNTIL_NOT_AFTER_TS,
                         "until 1740000000000 is not after ts 1740000000000");
    set_field(&message, int_field("until", 1740000000000LL - 86400000));
    expect_decode(&message, REJECT_UNTIL_NOT_AFTER_TS);
    set_field(&message, int_field("until", 1740000000001LL));
    expect_decode(&message, EVENT_VALID);
}

/* Every type that concerns a clock names the key of its clock: case for
 * case events, ref for the others; clock.tick none. */
static void test_partition_keys(void **state)
{
    (void)state;
    for (int type = 0; type < EVENT_TYPE_COUNT; type++) {
        const char *name = event_partition_key_name((enum event_type)type);
        const char *type_name = event_type_name((enum event_type)type);
        if (type == EVENT_CLOCK_TICK)
            assert_null(name);
        else
            assert_string_equal(name, strncmp(type_name, "case.", 5) == 0 ? "case" : "ref");
    }
    assert_null(event_partition_key_name(EVENT_TYPE_COUNT));
    struct duewatch_event event = {.type = EVENT_INCIDENT_ACCEPTED,
                                   .ref = {"I1", 2},
                                   .case_number = {"A1", 2}};
    assert_text(event_partition_key(&event), "I1");
    event.type = EVENT_CASE_CLOSED;
    assert_text(event_partition_key(&event), "A1");
    event.type = EVENT_CLOCK_TICK;
    assert_absent(event_partition_key(&event));
}

static void test_days(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_DETENTION_DECIDED);
    set_field(&message, uint_field("days", 1));
    expect_decode(&message, EVENT_VALID);
    set_field(&message, uint_field("days", EVENT_MAX_DAYS));
    expect_decode(&message, EVENT_VALID);
    set_field(&message, uint_field("days", 0));
    expect_decode_detail(&message, REJECT_BAD_DAYS, "days 0 is outside 1..3650");
    set_field(&message, uint_field("days", EVENT_MAX_DAYS + 1));
    expect_decode_detail(&message, REJECT_BAD_DAYS, "days 3651 is outside 1..3650");
    set_field(&message, uint_field("days", UINT64_MAX));
    expect_decode(&message, REJECT_BAD_DAYS);
    set_field(&message, uint_field("days", 4294967326ULL)); /* 2^32 + 30: no truncation to 30 */
    expect_decode(&message, REJECT_BAD_DAYS);
    /* Not required by case.filed, but validated when present. */
    message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, uint_field("days", 0));
    expect_decode(&message, REJECT_BAD_DAYS);
}

static void test_unknown_keys_ignored(void **state)
{
    (void)state;
    /* {"a": [1, [2, {"b": nil}]], "c": bin, "d": ext}: the innermost map is
     * level 5 (the event map is level 1). */
    static const uint8_t nested[] = {0x83, 0xa1, 'a', 0x92, 0x01, 0x92, 0x02, 0x81, 0xa1, 'b',
                                     0xc0, 0xa1, 'c', 0xc4, 0x02, 0xc1, 0xc1, 0xa1, 'd', 0xd4,
                                     0x01, 0xff};
    static const uint8_t bin32_short[] = {0xc6, 0x00, 0x00, 0x00, 0x01, 0x00};
    struct message message = {.count = 0};
    add_field(&message, raw_field("x-trace", nested, sizeof nested));
    struct message base = message_for_type(EVENT_PROPERTY_SEIZED);
    for (size_t i = 0; i < base.count; i++)
        add_field(&message, base.fields[i]);
    add_field(&message, double_field("score", 0.5));
    add_field(&message, raw_field("blob", bin32_short, sizeof bin32_short));
    add_field(&message, str_field("", "empty key"));
    add_field(&message, str_field("V", "case differs"));
    add_field(&message, str_field("unit2", "x"));
    struct packed packed = pack_message(&message);
    struct duewatch_event event;
    char detail[DETAIL_SIZE];
    assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                  sizeof detail),
                     EVENT_VALID);
    assert_int_equal(event.type, EVENT_PROPERTY_SEIZED);
    assert_text(event.unit, "500112-XJ01");
    assert_text(event.case_number, "A5001120000002024060001");
    assert_text(event.ref, "M-77");
    assert_text(event.kind, "seize");
    assert_true(event.ts_ms == VALID_TS);
    /* Exactly at the limit it passes; one level less allowed is too deep. */
    struct event_limits limits = {.max_bytes = 65536, .max_depth = 5};
    assert_int_equal(event_decode(packed.bytes, packed.size, &limits, &event, detail,
                                  sizeof detail),
                     EVENT_VALID);
    limits.max_depth = 4;
    assert_int_equal(event_decode(packed.bytes, packed.size, &limits, &event, detail,
                                  sizeof detail),
                     REJECT_TOO_DEEP);
    free(packed.bytes);
}

/* `levels` nested single-element arrays around nil, as an unknown key's
 * value: the event then nests levels + 1 deep. */
static enum event_reject decode_with_nesting(size_t levels, unsigned max_depth, char *detail)
{
    static uint8_t nesting[300];
    assert_true(levels < sizeof nesting);
    memset(nesting, 0x91, levels);
    nesting[levels] = 0xc0;
    struct message message = message_for_type(EVENT_CASE_FILED);
    add_field(&message, raw_field("deep", nesting, levels + 1));
    struct event_limits limits = {.max_bytes = 65536, .max_depth = max_depth};
    return decode_with(&message, &limits, detail);
}

static void test_depth_limit(void **state)
{
    (void)state;
    char detail[DETAIL_SIZE];
    for (unsigned max_depth = 1; max_depth <= 40; max_depth++) {
        assert_int_equal(decode_with_nesting(max_depth - 1, max_depth, detail), EVENT_VALID);
        assert_int_equal(decode_with_nesting(max_depth, max_depth, detail), REJECT_TOO_DEEP);
    }
    /* The ninth level is the eighth array, after the base event, the key
     * "deep" (5 bytes) and seven arrays. */
    struct message base = message_for_type(EVENT_CASE_FILED);
    struct packed packed = pack_message(&base);
    char expected[96];
    snprintf(expected, sizeof expected, "container at offset %zu is nested deeper than 8 levels",
             packed.size + 5 + 7);
    free(packed.bytes);
    assert_int_equal(decode_with_nesting(8, 8, detail), REJECT_TOO_DEEP);
    assert_string_equal(detail, expected);
    /* Depth 0 leaves no room for the event map itself. */
    struct message message = message_for_type(EVENT_CASE_FILED);
    struct event_limits limits = {.max_bytes = 65536, .max_depth = 0};
    assert_int_equal(decode_with(&message, &limits, detail), REJECT_TOO_DEEP);
    /* Far past the limit: found at the limit, nothing recursed. */
    assert_int_equal(decode_with_nesting(299, 8, detail), REJECT_TOO_DEEP);
    /* Too deep before truncated when the deep part comes first. */
    static const uint8_t deep_then_cut[] = {0x82, 0xa1, 'x', 0x91, 0x91, 0x91, 0xc0, 0xa1};
    struct duewatch_event event;
    limits.max_depth = 3;
    assert_int_equal(event_decode(deep_then_cut, sizeof deep_then_cut, &limits, &event, detail,
                                  sizeof detail),
                     REJECT_TOO_DEEP);
    limits.max_depth = 4;
    assert_int_equal(event_decode(deep_then_cut, sizeof deep_then_cut, &limits, &event, detail,
                                  sizeof detail),
                     REJECT_NOT_MSGPACK);
}

static void test_every_truncation_prefix(void **state)
{
    (void)state;
    static const uint8_t nested[] = {0x92, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x81, 0xa1, 'k',
                                     0xd6, 0x01, 1, 2, 3, 4};
    struct message message = message_for_type(EVENT_DETENTION_DECIDED);
    add_field(&message, int_field("until", VALID_TS + DAY_MS));
    add_field(&message, raw_field("extra", nested, sizeof nested));
    struct packed packed = pack_message(&message);
    char detail[DETAIL_SIZE];
    struct duewatch_event event;
    assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, detail,
                                  sizeof detail),
                     EVENT_VALID);
    for (size_t size = 0; size < packed.size; size++) {
        /* A buffer of exactly `size` bytes, so ASan sees any over-read. */
        uint8_t *prefix = malloc(size > 0 ? size : 1);
        assert_non_null(prefix);
        memcpy(prefix, packed.bytes, size);
        enum event_reject result =
            event_decode(prefix, size, &default_limits, &event, detail, sizeof detail);
        assert_int_equal(result, size == 0 ? REJECT_EMPTY : REJECT_NOT_MSGPACK);
        free(prefix);
    }
    free(packed.bytes);
}

static void test_detail_buffer_handling(void **state)
{
    (void)state;
    struct message message = message_for_type(EVENT_CASE_FILED);
    remove_field(&message, "case");
    struct packed packed = pack_message(&message);
    struct duewatch_event event;
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, small,
                                  sizeof small),
                     REJECT_MISSING_KEY);
    assert_string_equal(small, "key 'ca");
    assert_int_equal(event_decode(packed.bytes, packed.size, &default_limits, &event, NULL, 0),
                     REJECT_MISSING_KEY);
    free(packed.bytes);
}

/* xorshift64*: deterministic, so a failure reproduces. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

static bool is_identifier(struct text text)
{
    if (text.length < 1 || text.length > EVENT_MAX_IDENTIFIER)
        return false;
    for (uint32_t i = 0; i < text.length; i++) {
        unsigned char byte = (unsigned char)text.bytes[i];
        if (!((byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') ||
              (byte >= '0' && byte <= '9') || byte == '.' || byte == '_' || byte == '-'))
            return false;
    }
    return true;
}

/* What an accepted event must satisfy, checked independently of event.c. */
static void assert_event_obeys_contract(const struct duewatch_event *event, const struct packed *packed)
{
    assert_true((unsigned)event->type < EVENT_TYPE_COUNT);
    assert_true(event->ts_ms >= EVENT_MIN_TS_MS && event->ts_ms <= EVENT_MAX_TS_MS);
    assert_true(event->until_ms == 0 ||
                (event->until_ms >= EVENT_MIN_TS_MS && event->until_ms <= EVENT_MAX_TS_MS));
    assert_true(event->days <= EVENT_MAX_DAYS);
    assert_true(is_identifier(event->id) && points_into(event->id, packed));
    assert_true(is_identifier(event->unit) && points_into(event->unit, packed));
    const struct text optional[] = {event->case_number, event->ref, event->subject};
    for (size_t i = 0; i < 3; i++)
        assert_true(optional[i].length == 0 ||
                    (is_identifier(optional[i]) && points_into(optional[i], packed)));
    unsigned needs = catalog[event->type].needs;
    assert_true(!(needs & NEED_CASE) || event->case_number.length > 0);
    assert_true(!(needs & NEED_REF) || event->ref.length > 0);
    assert_true(!(needs & NEED_SUBJECT) || event->subject.length > 0);
    assert_true(!(needs & NEED_DAYS) || event->days >= 1);
    const struct qualifier_entry *entry = qualifier_for(event->type);
    for (int q = 0; q < EVENT_QUALIFIER_COUNT; q++) {
        struct text value = event->qualifiers[q];
        bool fits = value.length == 0;
        for (size_t v = 0; entry != NULL && v < 2; v++)
            fits |= strlen(entry->values[v]) == value.length &&
                    memcmp(entry->values[v], value.bytes, value.length) == 0;
        assert_true(fits);
    }
    if (catalog[event->type].kinds[0] == NULL) {
        assert_int_equal(event->kind.length, 0);
        return;
    }
    bool listed = false;
    for (size_t k = 0; catalog[event->type].kinds[k] != NULL; k++)
        listed |= strlen(catalog[event->type].kinds[k]) == event->kind.length &&
                  memcmp(catalog[event->type].kinds[k], event->kind.bytes,
                         event->kind.length) == 0;
    assert_true(listed);
}

static void test_mutations(void **state)
{
    (void)state;
    enum { MUTATIONS = 200000, SLACK = 8 };
    static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0,
                                          0xbf, 0xc0, 0xc1, 0xc4, 0xc6, 0xc9, 0xcc, 0xcf,
                                          0xd3, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
                                          0xe0, 0xff, ':', 'a'};
    static const uint8_t nested[] = {0x92, 0x91, 0x80, 0xc7, 0x02, 0x05, 0xaa, 0xbb};
    struct packed seeds[4];
    struct message message = message_for_type(EVENT_MEASURE_STARTED);
    seeds[0] = pack_message(&message);
    message = message_for_type(EVENT_DETENTION_DECIDED);
    add_field(&message, int_field("until", VALID_TS + DAY_MS));
    add_field(&message, raw_field("x", nested, sizeof nested));
    seeds[1] = pack_message(&message);
    message = message_for_type(EVENT_CLOCK_TICK);
    seeds[2] = pack_message(&message);
    message = message_for_type(EVENT_PROPERTY_EXTENDED);
    add_field(&message, str_field("kind", "ignored"));
    seeds[3] = pack_message(&message);

    uint64_t random_state = 0x5eed0fdecade1234ULL;
    unsigned counts[REJECT_COUNT] = {0};
    uint8_t work[512];
    char detail[DETAIL_SIZE];
    for (unsigned round = 0; round < MUTATIONS; round++) {
        const struct packed *seed = &seeds[next_random(&random_state) % 4];
        assert_true(seed->size + SLACK <= sizeof work);
        memcpy(work, seed->bytes, seed->size);
        size_t size = seed->size;
        unsigned operations = 1 + (unsigned)(next_random(&random_state) % 3);
        for (unsigned op = 0; op < operations && size > 0; op++) {
            size_t position = next_random(&random_state) % size;
            switch (next_random(&random_state) % 6) {
            case 0: work[position] = (uint8_t)next_random(&random_state); break;
            case 1:
                work[position] = interesting[next_random(&random_state) % sizeof interesting];
                break;
            case 2: work[position] ^= (uint8_t)(1u << (next_random(&random_state) % 8)); break;
            case 3: size = position; break;
            case 4:
                if (size < seed->size + SLACK) {
                    memmove(work + position + 1, work + position, size - position);
                    work[position] = (uint8_t)next_random(&random_state);
                    size++;
                }
                break;
            default:
                memmove(work + position, work + position + 1, size - position - 1);
                size--;
                break;
            }
        }
        struct packed mutated = {malloc(size > 0 ? size : 1), size};
        assert_non_null(mutated.bytes);
        memcpy(mutated.bytes, work, size);
        struct duewatch_event event;
        enum event_reject result =
            event_decode(mutated.bytes, size, &default_limits, &event, detail, sizeof detail);
        assert_true((unsigned)result < REJECT_COUNT);
        counts[result]++;
        /* One printable line, whatever the input held. */
        size_t length = strnlen(detail, sizeof detail);
        assert_true(length < sizeof detail);
        for (size_t i = 0; i < length; i++)
            assert_true(detail[i] >= 0x20 && detail[i] <= 0x7e);
        if (result == EVENT_VALID)
            assert_event_obeys_contract(&event, &mutated);
        else
            assert_true(length > 0);
        free(mutated.bytes);
    }
    /* The loop reaches deep into validation, not just the msgpack layer. */
    unsigned reasons_seen = 0;
    for (int reason = 0; reason < REJECT_COUNT; reason++)
        reasons_seen += counts[reason] > 0;
    assert_true(counts[EVENT_VALID] > 1000);
    assert_true(counts[REJECT_NOT_MSGPACK] > 1000);
    assert_true(counts[REJECT_BAD_IDENTIFIER] > 100);
    assert_true(reasons_seen >= 13);
    for (size_t i = 0; i < 4; i++)
        free(seeds[i].bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_every_type_valid_minimal),
        cmocka_unit_test(test_every_type_valid_with_optional_keys),
        cmocka_unit_test(test_every_kind_value),
        cmocka_unit_test(test_ground),
        cmocka_unit_test(test_qualifiers),
        cmocka_unit_test(test_size_and_empty),
        cmocka_unit_test(test_not_msgpack_trailing_not_map),
        cmocka_unit_test(test_key_not_string_and_duplicates),
        cmocka_unit_test(test_missing_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_integer_formats_for_ts),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_unknown_type),
        cmocka_unit_test(test_identifiers),
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_time_order),
        cmocka_unit_test(test_partition_keys),
        cmocka_unit_test(test_days),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_every_truncation_prefix),
        cmocka_unit_test(test_detail_buffer_handling),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
