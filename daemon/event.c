/* The event contract (see event.h and README "Event contract"): decodes one
 * Kafka message value with the allocation-free msgpack reader and validates
 * it strictly.  Two passes over the bytes: the first checks that the whole
 * value is well-formed msgpack within the depth limit with nothing after it,
 * so the second can read the map knowing every declared size is backed by
 * bytes.  The checks run in a fixed order (size, msgpack, map, keys and
 * types, required keys, values) so a message always gets the same reason.
 *
 * Details never echo untrusted bytes except as hex, or as identifiers that
 * passed the identifier charset check (see describe_text). */
#include "event.h"

#include "msgpack_reader.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Contract keys; also bit positions in "seen" and "required" sets. */
enum contract_key {
    KEY_V,
    KEY_ID,
    KEY_TYPE,
    KEY_TS,
    KEY_UNIT,
    KEY_CASE,
    KEY_REF,
    KEY_SUBJECT,
    KEY_KIND,
    KEY_DAYS,
    KEY_UNTIL,
    KEY_GROUND,
    KEY_SCOPE,
    KEY_ADMIN_TYPE,
    KEY_PUBLISH,
    KEY_COUNT
};

#define KEY_BIT(key) (1u << (key))
#define ALWAYS_REQUIRED \
    (KEY_BIT(KEY_V) | KEY_BIT(KEY_ID) | KEY_BIT(KEY_TYPE) | KEY_BIT(KEY_TS) | KEY_BIT(KEY_UNIT))

/* Names for detail lines; lookup is find_contract_key()'s switch. */
static const struct {
    const char *name;
} contract_keys[KEY_COUNT] = {
    [KEY_V] = {"v"},
    [KEY_ID] = {"id"},
    [KEY_TYPE] = {"type"},
    [KEY_TS] = {"ts"},
    [KEY_UNIT] = {"unit"},
    [KEY_CASE] = {"case"},
    [KEY_REF] = {"ref"},
    [KEY_SUBJECT] = {"subject"},
    [KEY_KIND] = {"kind"},
    [KEY_DAYS] = {"days"},
    [KEY_UNTIL] = {"until"},
    [KEY_GROUND] = {"ground"},
    [KEY_SCOPE] = {"scope"},
    [KEY_ADMIN_TYPE] = {"admin_type"},
    [KEY_PUBLISH] = {"publish"},
};

/* Kind values, NULL-terminated. */
static const char *const incident_kinds[] = {"criminal", "admin", "other", NULL};
static const char *const case_kinds[] = {"criminal", "admin", NULL};
static const char *const measure_kinds[] = {"bail", "rs", "rs_designated", "criminal_detention",
                                            NULL};
static const char *const property_kinds[] = {"seize", "seal", "preserve", NULL};
/* `ground` values, in the order of enum extension_ground from GROUND_ROVING:
 * 流窜作案、多次作案、结伙作案 (刑事诉讼法 第九十一条); 重大疑难复杂案件
 * (公安部关于改革完善受案立案制度的意见, 立案审查期限). */
static const char *const ground_values[] = {"roving", "repeated", "gang", "complex", NULL};
_Static_assert(sizeof ground_values / sizeof ground_values[0] == GROUND_COUNT,
               "one ground value per enum extension_ground after GROUND_NONE");
static const char *const decision_kinds[] = {"license", "penalty", "other", NULL};

#define NAME_AND_LENGTH(name) name, (uint8_t)(sizeof(name) - 1)

struct type_rule {
    const char *name;
    uint8_t name_length;
    unsigned required;        /* keys required beyond ALWAYS_REQUIRED */
    const char *const *kinds; /* NULL when the type has no kind values */
    int partition_key;        /* KEY_REF or KEY_CASE: names the clock; -1 none */
};

#define CASE_REF (KEY_BIT(KEY_CASE) | KEY_BIT(KEY_REF))

static const struct type_rule type_rules[EVENT_TYPE_COUNT] = {
    [EVENT_INCIDENT_REPORTED] = {NAME_AND_LENGTH("incident.reported"),
                                 KEY_BIT(KEY_REF), incident_kinds, KEY_REF},
    [EVENT_INCIDENT_ACCEPTED] = {NAME_AND_LENGTH("incident.accepted"), CASE_REF, NULL, KEY_REF},
    [EVENT_INCIDENT_CLOSED] = {NAME_AND_LENGTH("incident.closed"), KEY_BIT(KEY_REF), NULL, KEY_REF},
    [EVENT_CASE_ACCEPTED] = {NAME_AND_LENGTH("case.accepted"),
                             KEY_BIT(KEY_CASE), case_kinds, KEY_CASE},
    [EVENT_CASE_FILED] = {NAME_AND_LENGTH("case.filed"), KEY_BIT(KEY_CASE), NULL, KEY_CASE},
    [EVENT_CASE_FILING_REFUSED] = {NAME_AND_LENGTH("case.filing_refused"), KEY_BIT(KEY_CASE),
                                   NULL, KEY_CASE},
    [EVENT_CASE_EXTENDED] = {NAME_AND_LENGTH("case.extended"),
                             KEY_BIT(KEY_CASE) | KEY_BIT(KEY_DAYS), NULL, KEY_CASE},
    [EVENT_CASE_SUSPENDED] = {NAME_AND_LENGTH("case.suspended"), KEY_BIT(KEY_CASE), NULL, KEY_CASE},
    [EVENT_CASE_RESUMED] = {NAME_AND_LENGTH("case.resumed"), KEY_BIT(KEY_CASE), NULL, KEY_CASE},
    [EVENT_CASE_CLOSED] = {NAME_AND_LENGTH("case.closed"), KEY_BIT(KEY_CASE), NULL, KEY_CASE},
    [EVENT_MEASURE_STARTED] = {NAME_AND_LENGTH("measure.started"),
                               CASE_REF | KEY_BIT(KEY_SUBJECT), measure_kinds, KEY_REF},
    [EVENT_MEASURE_EXTENDED] = {NAME_AND_LENGTH("measure.extended"),
                                CASE_REF | KEY_BIT(KEY_DAYS), NULL, KEY_REF},
    [EVENT_MEASURE_ENDED] = {NAME_AND_LENGTH("measure.ended"), CASE_REF, NULL, KEY_REF},
    [EVENT_MEASURE_ARREST_REQUESTED] = {NAME_AND_LENGTH("measure.arrest_requested"), CASE_REF,
                                        NULL, KEY_REF},
    [EVENT_DETENTION_DECIDED] = {NAME_AND_LENGTH("detention.decided"),
                                 CASE_REF | KEY_BIT(KEY_SUBJECT) | KEY_BIT(KEY_DAYS),
                                 NULL, KEY_REF},
    [EVENT_DETENTION_EXECUTED] = {NAME_AND_LENGTH("detention.executed"), CASE_REF, NULL, KEY_REF},
    [EVENT_DETENTION_SUSPENDED] = {NAME_AND_LENGTH("detention.suspended"), CASE_REF, NULL, KEY_REF},
    [EVENT_DETENTION_CANCELLED] = {NAME_AND_LENGTH("detention.cancelled"), CASE_REF, NULL, KEY_REF},
    [EVENT_PROPERTY_SEIZED] = {NAME_AND_LENGTH("property.seized"),
                               CASE_REF, property_kinds, KEY_REF},
    [EVENT_PROPERTY_EXTENDED] = {NAME_AND_LENGTH("property.extended"),
                                 CASE_REF | KEY_BIT(KEY_DAYS), NULL, KEY_REF},
    [EVENT_PROPERTY_RELEASED] = {NAME_AND_LENGTH("property.released"), CASE_REF, NULL, KEY_REF},
    [EVENT_DECISION_ISSUED] = {NAME_AND_LENGTH("decision.issued"),
                               CASE_REF, decision_kinds, KEY_REF},
    [EVENT_DECISION_PUBLISHED] = {NAME_AND_LENGTH("decision.published"), CASE_REF, NULL, KEY_REF},
    [EVENT_CLOCK_TICK] = {NAME_AND_LENGTH("clock.tick"), 0, NULL, -1},
};

/* Qualifier values, NULL-terminated. */
static const char *const scopes[] = {"criminal", "admin", NULL};
static const char *const admin_types[] = {"public_security", "other", NULL};
static const char *const publish_values[] = {"required", "exempt", NULL};

/* The contract key of each enumerated key (event.h). */
static const int enum_contract_keys[EVENT_ENUM_COUNT] = {
    [EVENT_ENUM_KIND] = KEY_KIND,
    [EVENT_ENUM_SCOPE] = KEY_SCOPE,
    [EVENT_ENUM_ADMIN_TYPE] = KEY_ADMIN_TYPE,
    [EVENT_ENUM_PUBLISH] = KEY_PUBLISH,
};

/* Qualifiers: the enumerated keys besides kind a type requires, of every
 * event of the type or (when_kind) only of those of that kind; one row per
 * type and key.  Where the law gives a clock to one scope only, the rules'
 * start filters read these (README "Event contract"). */
static const struct qualifier_rule {
    enum event_type type;
    enum event_enum_key key;
    const char *const *values;
    const char *when_kind; /* NULL: every event of the type */
} qualifier_rules[] = {
    /* 治安案件 (治安管理处罚法) or another administrative case (行政处罚法 第六十条) */
    {EVENT_CASE_ACCEPTED, EVENT_ENUM_ADMIN_TYPE, admin_types, "admin"},
    /* criminal (刑事诉讼法) or administrative (行政强制法, 行政处罚法) measure */
    {EVENT_PROPERTY_SEIZED, EVENT_ENUM_SCOPE, scopes, NULL},
    /* to be published, or exempt from publication (国家秘密、个人隐私、未成年人) */
    {EVENT_DECISION_ISSUED, EVENT_ENUM_PUBLISH, publish_values, NULL},
};

#define QUALIFIER_RULE_COUNT (sizeof qualifier_rules / sizeof qualifier_rules[0])

static const char *const reject_names[REJECT_COUNT] = {
    [EVENT_VALID] = "valid",
    [REJECT_TOO_LARGE] = "too_large",
    [REJECT_EMPTY] = "empty",
    [REJECT_NOT_MSGPACK] = "not_msgpack",
    [REJECT_TRAILING_BYTES] = "trailing_bytes",
    [REJECT_NOT_MAP] = "not_map",
    [REJECT_TOO_DEEP] = "too_deep",
    [REJECT_KEY_NOT_STRING] = "key_not_string",
    [REJECT_DUPLICATE_KEY] = "duplicate_key",
    [REJECT_MISSING_KEY] = "missing_key",
    [REJECT_WRONG_TYPE] = "wrong_type",
    [REJECT_BAD_VERSION] = "bad_version",
    [REJECT_UNKNOWN_TYPE] = "unknown_type",
    [REJECT_BAD_IDENTIFIER] = "bad_identifier",
    [REJECT_TS_OUT_OF_RANGE] = "ts_out_of_range",
    [REJECT_BAD_KIND] = "bad_kind",
    [REJECT_BAD_DAYS] = "bad_days",
    [REJECT_TS_IN_FUTURE] = "ts_in_future",
    [REJECT_UNTIL_NOT_AFTER_TS] = "until_not_after_ts",
    [REJECT_BAD_VALUE] = "bad_value",
    [REJECT_CALENDAR_NOT_COVERED] = "calendar_not_covered",
};

const char *event_type_name(enum event_type type)
{
    if ((unsigned)type >= EVENT_TYPE_COUNT)
        return NULL;
    return type_rules[type].name;
}

int event_type_from_name(const char *name, size_t length)
{
    if (name == NULL)
        return -1;
    /* Length and first byte rule out most entries before any memcmp. */
    for (int type = 0; type < EVENT_TYPE_COUNT; type++)
        if (type_rules[type].name_length == length && type_rules[type].name[0] == name[0] &&
            memcmp(type_rules[type].name, name, length) == 0)
            return type;
    return -1;
}

bool event_type_counts_persons(enum event_type type)
{
    return (unsigned)type < EVENT_TYPE_COUNT && (type_rules[type].required & KEY_BIT(KEY_SUBJECT));
}

const char *event_partition_key_name(enum event_type type)
{
    if ((unsigned)type >= EVENT_TYPE_COUNT || type_rules[type].partition_key < 0)
        return NULL;
    return contract_keys[type_rules[type].partition_key].name;
}

struct text event_partition_key(const struct duewatch_event *event)
{
    struct text none = {"", 0};
    if ((unsigned)event->type >= EVENT_TYPE_COUNT)
        return none;
    switch (type_rules[event->type].partition_key) {
    case KEY_REF: return event->ref;
    case KEY_CASE: return event->case_number;
    default: return none;
    }
}

const char *event_enum_key_name(enum event_enum_key key)
{
    if ((unsigned)key >= EVENT_ENUM_COUNT)
        return NULL;
    return contract_keys[enum_contract_keys[key]].name;
}

int event_enum_key_from_name(const char *name, size_t length)
{
    if (name == NULL)
        return -1;
    for (int key = 0; key < EVENT_ENUM_COUNT; key++) {
        const char *known = contract_keys[enum_contract_keys[key]].name;
        if (strlen(known) == length && memcmp(known, name, length) == 0)
            return key;
    }
    return -1;
}

const char *const *event_enum_values(enum event_type type, enum event_enum_key key)
{
    if ((unsigned)type >= EVENT_TYPE_COUNT || (unsigned)key >= EVENT_ENUM_COUNT)
        return NULL;
    if (key == EVENT_ENUM_KIND)
        return type_rules[type].kinds;
    for (size_t i = 0; i < QUALIFIER_RULE_COUNT; i++)
        if (qualifier_rules[i].type == type && qualifier_rules[i].key == key)
            return qualifier_rules[i].values;
    return NULL;
}

struct text event_enum_value(const struct duewatch_event *event, enum event_enum_key key)
{
    struct text none = {"", 0};
    if ((unsigned)key >= EVENT_ENUM_COUNT)
        return none;
    return key == EVENT_ENUM_KIND ? event->kind : event->qualifiers[key - 1];
}

int event_ground_from_name(const char *name, size_t length)
{
    if (name == NULL)
        return -1;
    for (int i = 0; ground_values[i] != NULL; i++)
        if (strlen(ground_values[i]) == length && memcmp(ground_values[i], name, length) == 0)
            return GROUND_ROVING + i;
    return -1;
}

const char *event_ground_name(enum extension_ground ground)
{
    if (ground <= GROUND_NONE || ground >= GROUND_COUNT)
        return NULL;
    return ground_values[ground - GROUND_ROVING];
}

const char *event_reject_name(enum event_reject reason)
{
    if ((unsigned)reason >= REJECT_COUNT)
        return NULL;
    return reject_names[reason];
}

/* Writes the detail line and returns `reason`, so callers can `return reject(...)`. */
static enum event_reject reject(char *detail, size_t detail_size, enum event_reject reason,
                                const char *format, ...) __attribute__((format(printf, 4, 5)));

static enum event_reject reject(char *detail, size_t detail_size, enum event_reject reason,
                                const char *format, ...)
{
    if (detail != NULL && detail_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(detail, detail_size, format, args);
        va_end(args);
    }
    return reason;
}

/* The identifier charset [A-Za-z0-9._-] as a 256-bit set, one bit per byte
 * value: a shift and a mask per byte, no branches, no locale. */
static const uint64_t identifier_charset[4] = {
    0x03ff600000000000ULL, /* '-' 0x2d, '.' 0x2e, '0'-'9' 0x30-0x39 */
    0x07fffffe87fffffeULL, /* 'A'-'Z' 0x41-0x5a, '_' 0x5f, 'a'-'z' 0x61-0x7a */
    0,
    0,
};

static bool is_identifier_byte(unsigned char byte)
{
    return (identifier_charset[byte >> 6] >> (byte & 63)) & 1;
}

/* Offset of the first byte outside the identifier charset, or -1. */
static long first_non_identifier_byte(const char *bytes, uint32_t length)
{
    for (uint32_t i = 0; i < length; i++)
        if (!is_identifier_byte((unsigned char)bytes[i]))
            return (long)i;
    return -1;
}

/* Bytes of an untrusted string shown in hex in a detail line. */
#define HEX_PREVIEW_BYTES 16u

/* Quotes an untrusted string for a detail line: 'as-is' when it is a valid
 * identifier (charset and length), else its length and its first bytes in hex,
 * so no control or terminal bytes reach logs or Kafka headers. */
static const char *describe_text(const char *bytes, uint32_t length, char *buffer,
                                 size_t buffer_size)
{
    static const char hex_digits[] = "0123456789abcdef";
    if (length <= EVENT_MAX_IDENTIFIER && first_non_identifier_byte(bytes, length) < 0) {
        snprintf(buffer, buffer_size, "'%.*s'", (int)length, bytes);
        return buffer;
    }
    char hex[2 * HEX_PREVIEW_BYTES + 1];
    uint32_t shown = length;
    if (shown > HEX_PREVIEW_BYTES)
        shown = HEX_PREVIEW_BYTES;
    for (uint32_t i = 0; i < shown; i++) {
        unsigned char byte = (unsigned char)bytes[i];
        hex[2 * i] = hex_digits[byte >> 4];
        hex[2 * i + 1] = hex_digits[byte & 0x0f];
    }
    hex[2 * shown] = '\0';
    snprintf(buffer, buffer_size, "<%" PRIu32 " bytes, hex %s%s>", length, hex,
             length > shown ? "..." : "");
    return buffer;
}

/* "criminal, admin, other" for a detail line. */
static const char *list_kinds(const char *const *kinds, char *buffer, size_t buffer_size)
{
    size_t used = 0;
    buffer[0] = '\0';
    for (size_t i = 0; kinds[i] != NULL && used < buffer_size; i++) {
        int written = snprintf(buffer + used, buffer_size - used, "%s%s", i > 0 ? ", " : "",
                               kinds[i]);
        if (written < 0)
            break;
        used += (size_t)written;
    }
    return buffer;
}

/* Returns the contract key named by these bytes, or -1.  A switch on the
 * length and first byte, so an unknown key costs at most one memcmp. */
static int find_contract_key(const char *name, uint32_t length)
{
#define KEY_IF_MATCHES(key, literal) \
    (memcmp(name, literal, sizeof(literal) - 1) == 0 ? (key) : -1)
    switch (length) {
    case 1: return name[0] == 'v' ? KEY_V : -1;
    case 2: return name[0] == 'i' ? KEY_IF_MATCHES(KEY_ID, "id") : KEY_IF_MATCHES(KEY_TS, "ts");
    case 3: return KEY_IF_MATCHES(KEY_REF, "ref");
    case 4:
        switch (name[0]) {
        case 't': return KEY_IF_MATCHES(KEY_TYPE, "type");
        case 'u': return KEY_IF_MATCHES(KEY_UNIT, "unit");
        case 'c': return KEY_IF_MATCHES(KEY_CASE, "case");
        case 'k': return KEY_IF_MATCHES(KEY_KIND, "kind");
        case 'd': return KEY_IF_MATCHES(KEY_DAYS, "days");
        default: return -1;
        }
    case 5: return name[0] == 'u' ? KEY_IF_MATCHES(KEY_UNTIL, "until")
                                  : KEY_IF_MATCHES(KEY_SCOPE, "scope");
    case 6: return KEY_IF_MATCHES(KEY_GROUND, "ground");
    case 7: return name[0] == 's' ? KEY_IF_MATCHES(KEY_SUBJECT, "subject")
                                  : KEY_IF_MATCHES(KEY_PUBLISH, "publish");
    case 10: return KEY_IF_MATCHES(KEY_ADMIN_TYPE, "admin_type");
    default: return -1;
    }
#undef KEY_IF_MATCHES
}

/* Checks the msgpack type of a contract key's value. */
static enum event_reject check_key_type(int key, const struct msgpack_value *value, char *detail,
                                        size_t detail_size)
{
    const char *name = contract_keys[key].name;
    switch (key) {
    case KEY_V:
    case KEY_DAYS:
        if (value->type != MSGPACK_VALUE_INT)
            return reject(detail, detail_size, REJECT_WRONG_TYPE,
                          "key '%s' has msgpack type %s (expected a non-negative int)", name,
                          msgpack_value_type_name(value->type));
        if (!value->integer.fits_uint64)
            return reject(detail, detail_size, REJECT_WRONG_TYPE,
                          "key '%s' is negative (%" PRId64 "), expected a non-negative int",
                          name, value->integer.as_int64);
        return EVENT_VALID;
    case KEY_TS:
    case KEY_UNTIL:
        if (value->type != MSGPACK_VALUE_INT)
            return reject(detail, detail_size, REJECT_WRONG_TYPE,
                          "key '%s' has msgpack type %s (expected int)", name,
                          msgpack_value_type_name(value->type));
        return EVENT_VALID;
    default:
        if (value->type != MSGPACK_VALUE_STR)
            return reject(detail, detail_size, REJECT_WRONG_TYPE,
                          "key '%s' has msgpack type %s (expected str)", name,
                          msgpack_value_type_name(value->type));
        return EVENT_VALID;
    }
}

static enum event_reject check_identifier(int key, const struct msgpack_value *value,
                                          char *detail, size_t detail_size)
{
    const char *name = contract_keys[key].name;
    uint32_t length = value->str.length;
    if (length == 0)
        return reject(detail, detail_size, REJECT_BAD_IDENTIFIER, "key '%s' is empty", name);
    if (length > EVENT_MAX_IDENTIFIER)
        return reject(detail, detail_size, REJECT_BAD_IDENTIFIER,
                      "key '%s' has %" PRIu32 " bytes (at most %d)", name, length,
                      EVENT_MAX_IDENTIFIER);
    long bad = first_non_identifier_byte(value->str.bytes, length);
    if (bad >= 0)
        return reject(detail, detail_size, REJECT_BAD_IDENTIFIER,
                      "key '%s' has byte 0x%02x at offset %ld (allowed: A-Z a-z 0-9 . _ -)", name,
                      (unsigned char)value->str.bytes[bad], bad);
    return EVENT_VALID;
}

/* ts and until: epoch milliseconds inside 2000-01-01 .. 2100-12-31 (UTC). */
static enum event_reject check_time(int key, const struct msgpack_value *value, char *detail,
                                    size_t detail_size)
{
    const char *name = contract_keys[key].name;
    if (!value->integer.fits_int64)
        return reject(detail, detail_size, REJECT_TS_OUT_OF_RANGE,
                      "%s %" PRIu64 " is after 2100-12-31", name, value->integer.as_uint64);
    int64_t ms = value->integer.as_int64;
    if (ms < EVENT_MIN_TS_MS)
        return reject(detail, detail_size, REJECT_TS_OUT_OF_RANGE,
                      "%s %" PRId64 " is before 2000-01-01", name, ms);
    if (ms > EVENT_MAX_TS_MS)
        return reject(detail, detail_size, REJECT_TS_OUT_OF_RANGE,
                      "%s %" PRId64 " is after 2100-12-31", name, ms);
    return EVENT_VALID;
}

/* ts no later than latest_ts_ms (when set), until (when given) after ts:
 * a time in the future would fire every level of its clock at once, and a
 * deadline before its start would report it overdue since ever. */
static enum event_reject check_time_order(const struct msgpack_value *fields, unsigned seen,
                                          int64_t latest_ts_ms, char *detail, size_t detail_size)
{
    int64_t ts = fields[KEY_TS].integer.as_int64;
    if (latest_ts_ms > 0 && ts > latest_ts_ms)
        return reject(detail, detail_size, REJECT_TS_IN_FUTURE,
                      "ts %" PRId64 " is %" PRId64 " ms ahead of the latest accepted (%" PRId64
                      ": wall clock + max_future_ms)",
                      ts, ts - latest_ts_ms, latest_ts_ms);
    if ((seen & KEY_BIT(KEY_UNTIL)) && fields[KEY_UNTIL].integer.as_int64 <= ts)
        return reject(detail, detail_size, REJECT_UNTIL_NOT_AFTER_TS,
                      "until %" PRId64 " is not after ts %" PRId64,
                      fields[KEY_UNTIL].integer.as_int64, ts);
    return EVENT_VALID;
}

/* The index of a str value among NULL-terminated `values`, or -1. */
static int listed_index(const char *const *values, const struct msgpack_value *value)
{
    for (size_t i = 0; values[i] != NULL; i++)
        if (strlen(values[i]) == value->str.length &&
            memcmp(values[i], value->str.bytes, value->str.length) == 0)
            return (int)i;
    return -1;
}

static bool kind_is_listed(const char *const *kinds, const struct msgpack_value *kind)
{
    return listed_index(kinds, kind) >= 0;
}

static struct text text_of(const struct msgpack_value *value)
{
    struct text text = {value->str.bytes, value->str.length};
    return text;
}

/* The qualifiers qualifier_rules[] requires of this event (type, and kind
 * when a row names one): present (missing_key) and listed (bad_value); their
 * values go into qualifiers[] (by event_enum_key - 1).  A qualifier the
 * event's type or kind does not take is ignored.  The kind is valid already. */
static enum event_reject check_qualifiers(int type, const struct msgpack_value *fields,
                                          unsigned seen, struct text *qualifiers, char *detail,
                                          size_t detail_size)
{
    char text_buffer[96], values_buffer[96], kind_buffer[48] = "";
    for (size_t i = 0; i < QUALIFIER_RULE_COUNT; i++) {
        const struct qualifier_rule *row = &qualifier_rules[i];
        if ((int)row->type != type)
            continue;
        kind_buffer[0] = '\0';
        if (row->when_kind != NULL) {
            const struct msgpack_value *kind = &fields[KEY_KIND];
            if (strlen(row->when_kind) != kind->str.length ||
                memcmp(row->when_kind, kind->str.bytes, kind->str.length) != 0)
                continue;
            snprintf(kind_buffer, sizeof kind_buffer, " kind %s", row->when_kind);
        }
        int key = enum_contract_keys[row->key];
        const char *name = contract_keys[key].name;
        if (!(seen & KEY_BIT(key)))
            return reject(detail, detail_size, REJECT_MISSING_KEY,
                          "key '%s' is required for type %s%s (one of %s)", name,
                          type_rules[type].name, kind_buffer,
                          list_kinds(row->values, values_buffer, sizeof values_buffer));
        if (!kind_is_listed(row->values, &fields[key]))
            return reject(detail, detail_size, REJECT_BAD_VALUE,
                          "%s %s is not valid for type %s%s (one of %s)", name,
                          describe_text(fields[key].str.bytes, fields[key].str.length,
                                        text_buffer, sizeof text_buffer),
                          type_rules[type].name, kind_buffer,
                          list_kinds(row->values, values_buffer, sizeof values_buffer));
        qualifiers[row->key - 1] = text_of(&fields[key]);
    }
    return EVENT_VALID;
}

/* Pass one: the whole value is one well-formed msgpack object within the
 * depth limit, with nothing after it. */
static enum event_reject check_msgpack(const void *value, size_t size, unsigned max_depth,
                                       char *detail, size_t detail_size)
{
    struct msgpack_reader reader;
    /* The reader caps the limit; name the limit that actually applied. */
    if (max_depth > MSGPACK_READER_MAX_DEPTH)
        max_depth = MSGPACK_READER_MAX_DEPTH;
    msgpack_reader_init(&reader, value, size);
    enum msgpack_reader_status status = msgpack_reader_skip(&reader, max_depth);
    switch (status) {
    case MSGPACK_READER_OK:
        break;
    case MSGPACK_READER_TOO_DEEP:
        return reject(detail, detail_size, REJECT_TOO_DEEP,
                      "container at offset %zu is nested deeper than %u levels",
                      reader.error_offset, max_depth);
    case MSGPACK_READER_RESERVED_BYTE:
        return reject(detail, detail_size, REJECT_NOT_MSGPACK,
                      "reserved byte 0xc1 at offset %zu", reader.error_offset);
    case MSGPACK_READER_TRUNCATED:
    default:
        return reject(detail, detail_size, REJECT_NOT_MSGPACK,
                      "msgpack value is truncated (%zu bytes are not enough)", size);
    }
    size_t trailing = msgpack_reader_remaining(&reader);
    if (trailing > 0) {
        /* Only the first byte decides: fixmap 0x80-0x8f, map 16 0xde, map 32 0xdf. */
        uint8_t first = ((const uint8_t *)value)[0];
        bool is_map = (first >= 0x80 && first <= 0x8f) || first == 0xde || first == 0xdf;
        return reject(detail, detail_size, REJECT_TRAILING_BYTES, "%zu %s the %s", trailing,
                      trailing == 1 ? "byte follows" : "bytes follow",
                      is_map ? "event map" : "first msgpack value");
    }
    return EVENT_VALID;
}

enum event_reject event_decode(const void *value, size_t size, const struct event_limits *limits,
                               struct duewatch_event *out, char *detail, size_t detail_size)
{
    struct msgpack_value fields[KEY_COUNT];
    struct text qualifiers[EVENT_QUALIFIER_COUNT] = {{"", 0}};
    unsigned seen = 0;
    enum event_reject result;
    char text_buffer[96];
    char kinds_buffer[96];

    memset(out, 0, sizeof *out);
    if (detail != NULL && detail_size > 0)
        detail[0] = '\0';

    if (size > limits->max_bytes)
        return reject(detail, detail_size, REJECT_TOO_LARGE, "value has %zu bytes (at most %zu)",
                      size, limits->max_bytes);
    if (value == NULL || size == 0)
        return reject(detail, detail_size, REJECT_EMPTY, "value is empty");
    result = check_msgpack(value, size, limits->max_depth, detail, detail_size);
    if (result != EVENT_VALID)
        return result;

    /* Pass two.  Reader failures below cannot happen after pass one; they
     * are still checked so a bug here cannot read out of bounds. */
    struct msgpack_reader reader;
    struct msgpack_value map;
    msgpack_reader_init(&reader, value, size);
    if (msgpack_reader_next(&reader, &map) != MSGPACK_READER_OK)
        goto malformed;
    if (map.type != MSGPACK_VALUE_MAP)
        return reject(detail, detail_size, REJECT_NOT_MAP,
                      "top-level value has msgpack type %s, not map",
                      msgpack_value_type_name(map.type));

    for (uint32_t pair = 0; pair < map.count; pair++) {
        struct msgpack_value key_value;
        if (msgpack_reader_next(&reader, &key_value) != MSGPACK_READER_OK)
            goto malformed;
        if (key_value.type != MSGPACK_VALUE_STR)
            return reject(detail, detail_size, REJECT_KEY_NOT_STRING,
                          "map key #%" PRIu32 " has msgpack type %s (keys must be str)", pair + 1,
                          msgpack_value_type_name(key_value.type));
        int key = find_contract_key(key_value.str.bytes, key_value.str.length);
        if (key < 0) {
            /* Unknown keys are allowed; the top-level map is depth 1, so
             * their values may nest max_depth - 1 more levels (pass one
             * already enforced this). */
            if (msgpack_reader_skip(&reader, limits->max_depth - 1) != MSGPACK_READER_OK)
                goto malformed;
            continue;
        }
        if (seen & KEY_BIT(key))
            return reject(detail, detail_size, REJECT_DUPLICATE_KEY, "key '%s' appears twice",
                          contract_keys[key].name);
        seen |= KEY_BIT(key);
        if (msgpack_reader_next(&reader, &fields[key]) != MSGPACK_READER_OK)
            goto malformed;
        result = check_key_type(key, &fields[key], detail, detail_size);
        if (result != EVENT_VALID)
            return result;
        /* A container value has been rejected above, so no elements follow
         * here that would need skipping. */
    }

    /* Required keys: first the ones every event has, then the type's own.
     * v and type are checked on the way because the type decides the rest. */
    for (int key = 0; key < KEY_COUNT; key++)
        if ((ALWAYS_REQUIRED & KEY_BIT(key)) && !(seen & KEY_BIT(key)))
            return reject(detail, detail_size, REJECT_MISSING_KEY, "key '%s' is required",
                          contract_keys[key].name);
    if (fields[KEY_V].integer.as_uint64 != 1)
        return reject(detail, detail_size, REJECT_BAD_VERSION,
                      "v is %" PRIu64 ", only version 1 is supported",
                      fields[KEY_V].integer.as_uint64);
    int type = event_type_from_name(fields[KEY_TYPE].str.bytes, fields[KEY_TYPE].str.length);
    if (type < 0)
        return reject(detail, detail_size, REJECT_UNKNOWN_TYPE, "type %s is not in the catalog",
                      describe_text(fields[KEY_TYPE].str.bytes, fields[KEY_TYPE].str.length,
                                    text_buffer, sizeof text_buffer));
    const struct type_rule *rule = &type_rules[type];
    for (int key = 0; key < KEY_COUNT; key++)
        if ((rule->required & KEY_BIT(key)) && !(seen & KEY_BIT(key)))
            return reject(detail, detail_size, REJECT_MISSING_KEY,
                          "key '%s' is required for type %s", contract_keys[key].name,
                          rule->name);
    if (rule->kinds != NULL && !(seen & KEY_BIT(KEY_KIND)))
        return reject(detail, detail_size, REJECT_BAD_KIND,
                      "key 'kind' is required for type %s (one of %s)", rule->name,
                      list_kinds(rule->kinds, kinds_buffer, sizeof kinds_buffer));

    /* Values: everything present is validated, required or not. */
    static const int identifier_keys[] = {KEY_ID, KEY_UNIT, KEY_CASE, KEY_REF, KEY_SUBJECT};
    for (size_t i = 0; i < sizeof identifier_keys / sizeof identifier_keys[0]; i++) {
        int key = identifier_keys[i];
        if (!(seen & KEY_BIT(key)))
            continue;
        result = check_identifier(key, &fields[key], detail, detail_size);
        if (result != EVENT_VALID)
            return result;
    }
    /* "_all" names the bureau-wide totals in every counter key: a unit of
     * that name would be counted twice there. */
    if (fields[KEY_UNIT].str.length == 4 && memcmp(fields[KEY_UNIT].str.bytes, "_all", 4) == 0)
        return reject(detail, detail_size, REJECT_BAD_IDENTIFIER,
                      "unit '_all' is reserved for the bureau-wide totals");
    result = check_time(KEY_TS, &fields[KEY_TS], detail, detail_size);
    if (result != EVENT_VALID)
        return result;
    if (seen & KEY_BIT(KEY_UNTIL)) {
        result = check_time(KEY_UNTIL, &fields[KEY_UNTIL], detail, detail_size);
        if (result != EVENT_VALID)
            return result;
    }
    result = check_time_order(fields, seen, limits->latest_ts_ms, detail, detail_size);
    if (result != EVENT_VALID)
        return result;
    if (rule->kinds != NULL && !kind_is_listed(rule->kinds, &fields[KEY_KIND]))
        return reject(detail, detail_size, REJECT_BAD_KIND,
                      "kind %s is not valid for type %s (one of %s)",
                      describe_text(fields[KEY_KIND].str.bytes, fields[KEY_KIND].str.length,
                                    text_buffer, sizeof text_buffer),
                      rule->name, list_kinds(rule->kinds, kinds_buffer, sizeof kinds_buffer));
    if ((seen & KEY_BIT(KEY_GROUND)) && !kind_is_listed(ground_values, &fields[KEY_GROUND]))
        return reject(detail, detail_size, REJECT_BAD_KIND, "ground %s is not one of %s",
                      describe_text(fields[KEY_GROUND].str.bytes, fields[KEY_GROUND].str.length,
                                    text_buffer, sizeof text_buffer),
                      list_kinds(ground_values, kinds_buffer, sizeof kinds_buffer));
    result = check_qualifiers(type, fields, seen, qualifiers, detail, detail_size);
    if (result != EVENT_VALID)
        return result;
    if (seen & KEY_BIT(KEY_DAYS)) {
        uint64_t days = fields[KEY_DAYS].integer.as_uint64;
        if (days < 1 || days > EVENT_MAX_DAYS)
            return reject(detail, detail_size, REJECT_BAD_DAYS,
                          "days %" PRIu64 " is outside 1..%d", days, EVENT_MAX_DAYS);
    }

    /* Valid: fill the event.  Absent optional fields stay zero. */
    out->type = (enum event_type)type;
    out->ts_ms = fields[KEY_TS].integer.as_int64;
    out->id = text_of(&fields[KEY_ID]);
    out->unit = text_of(&fields[KEY_UNIT]);
    if (seen & KEY_BIT(KEY_CASE))
        out->case_number = text_of(&fields[KEY_CASE]);
    if (seen & KEY_BIT(KEY_REF))
        out->ref = text_of(&fields[KEY_REF]);
    if (seen & KEY_BIT(KEY_SUBJECT))
        out->subject = text_of(&fields[KEY_SUBJECT]);
    /* A kind on a type without kind values is ignored, not passed on. */
    if (rule->kinds != NULL)
        out->kind = text_of(&fields[KEY_KIND]);
    if (seen & KEY_BIT(KEY_DAYS))
        out->days = (uint32_t)fields[KEY_DAYS].integer.as_uint64;
    if (seen & KEY_BIT(KEY_UNTIL))
        out->until_ms = fields[KEY_UNTIL].integer.as_int64;
    if (seen & KEY_BIT(KEY_GROUND))
        out->ground = (enum extension_ground)(GROUND_ROVING +
                                              listed_index(ground_values, &fields[KEY_GROUND]));
    memcpy(out->qualifiers, qualifiers, sizeof qualifiers);
    return EVENT_VALID;

malformed:
    return reject(detail, detail_size, REJECT_NOT_MSGPACK,
                  "malformed msgpack at offset %zu", reader.error_offset);
}
