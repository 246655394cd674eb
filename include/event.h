/* The event contract: decoding and strict validation of one Kafka message value
 * (a msgpack map, see README "Event contract").  Zero-copy: string fields of a
 * decoded event point into the caller's buffer, which must outlive the event.
 * No allocation, bounded work: safe on any input. */
#ifndef DUEWATCH_EVENT_H
#define DUEWATCH_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte range inside the message buffer; not NUL-terminated. */
struct text {
    const char *bytes;
    uint32_t length;
};

/* Event types of the contract, in catalog order.  Stable: these numbers are
 * used as array indexes, never written anywhere. */
enum event_type {
    EVENT_INCIDENT_REPORTED,
    EVENT_INCIDENT_ACCEPTED,
    EVENT_INCIDENT_CLOSED,
    EVENT_CASE_ACCEPTED,
    EVENT_CASE_FILED,
    EVENT_CASE_FILING_REFUSED,
    EVENT_CASE_EXTENDED,
    EVENT_CASE_SUSPENDED,
    EVENT_CASE_RESUMED,
    EVENT_CASE_CLOSED,
    EVENT_MEASURE_STARTED,
    EVENT_MEASURE_EXTENDED,
    EVENT_MEASURE_ENDED,
    EVENT_MEASURE_ARREST_REQUESTED,
    EVENT_DETENTION_DECIDED,
    EVENT_DETENTION_EXECUTED,
    EVENT_DETENTION_SUSPENDED,
    EVENT_DETENTION_CANCELLED,
    EVENT_PROPERTY_SEIZED,
    EVENT_PROPERTY_EXTENDED,
    EVENT_PROPERTY_RELEASED,
    EVENT_DECISION_ISSUED,
    EVENT_DECISION_PUBLISHED,
    EVENT_CLOCK_TICK,
    EVENT_TYPE_COUNT
};

/* "incident.reported" etc.; NULL for an out-of-range value. */
const char *event_type_name(enum event_type type);
/* Looks a type name up; returns -1 when it is not in the catalog. */
int event_type_from_name(const char *name, size_t length);

/* Why a message was rejected.  event_reject_name() gives the stable snake_case
 * name used in the dead-letter header and in the per-reason counter. */
enum event_reject {
    EVENT_VALID = 0,
    REJECT_TOO_LARGE,        /* value longer than limits->max_bytes */
    REJECT_EMPTY,            /* no value at all (tombstone or zero bytes) */
    REJECT_NOT_MSGPACK,      /* malformed or truncated msgpack, or a reserved byte */
    REJECT_TRAILING_BYTES,   /* bytes left after the first msgpack object */
    REJECT_NOT_MAP,          /* top-level object is not a map */
    REJECT_TOO_DEEP,         /* nesting deeper than limits->max_depth */
    REJECT_KEY_NOT_STRING,   /* a top-level map key that is not a msgpack str */
    REJECT_DUPLICATE_KEY,    /* a contract key appears twice */
    REJECT_MISSING_KEY,      /* a key required (always or by type) is absent */
    REJECT_WRONG_TYPE,       /* a contract key holds the wrong msgpack type */
    REJECT_BAD_VERSION,      /* v is not 1 */
    REJECT_UNKNOWN_TYPE,     /* type is not in the catalog */
    REJECT_BAD_IDENTIFIER,   /* identifier empty, > 64 bytes, or outside [A-Za-z0-9._-] */
    REJECT_TS_OUT_OF_RANGE,  /* ts or until outside 2000-01-01 .. 2100-12-31 (UTC) */
    REJECT_BAD_KIND,         /* kind missing or not one of the type's kind values, or a
                                ground not one of the ground values */
    REJECT_BAD_DAYS,         /* days is 0 or above EVENT_MAX_DAYS */
    REJECT_TS_IN_FUTURE,     /* ts later than limits->latest_ts_ms (wall clock + max_future_ms) */
    REJECT_UNTIL_NOT_AFTER_TS, /* until at or before ts */
    REJECT_BAD_VALUE,        /* a qualifier (scope, admin_type, publish) not one of its values */
    /* Not from event_decode: a valid event whose working-day deadline falls
     * outside the holiday calendar's years (see clock_setup.h). */
    REJECT_CALENDAR_NOT_COVERED,
    REJECT_COUNT
};

const char *event_reject_name(enum event_reject reason);

/* Whether events of `type` name a person (`subject` is required of them):
 * the counters count them in distinct persons too (README "Counters"). */
bool event_type_counts_persons(enum event_type type);

/* The Kafka message key producers must give an event of `type` so that
 * every event of one clock lands on one partition (README "Event
 * contract"): "ref" or "case", the contract key that names the clock; NULL
 * for a type that concerns no clock (clock.tick) and an out-of-range value.
 * The rules file is checked against it (clock_setup.c). */
const char *event_partition_key_name(enum event_type type);

#define EVENT_MAX_IDENTIFIER 64
#define EVENT_MAX_DAYS 3650
#define EVENT_MIN_TS_MS 946684800000LL   /* 2000-01-01T00:00:00Z */
#define EVENT_MAX_TS_MS 4133980799999LL  /* 2100-12-31T23:59:59.999Z */

/* Enumerated keys: string keys whose values the contract lists per type
 * (README "Event contract").  kind, and the qualifiers: keys a type requires
 * besides kind -- of every event of the type, or only of those of one kind
 * (event.c `qualifier_rules[]` is the one definition).  A rule's start filter
 * names them (`start = property.seized kind=seize scope=admin`, clock_setup.c). */
enum event_enum_key {
    EVENT_ENUM_KIND,
    EVENT_ENUM_SCOPE,      /* property.seized: criminal | admin */
    EVENT_ENUM_ADMIN_TYPE, /* case.accepted kind=admin: public_security (治安) | other */
    EVENT_ENUM_PUBLISH,    /* decision.issued: required | exempt */
    EVENT_ENUM_COUNT
};
#define EVENT_QUALIFIER_COUNT (EVENT_ENUM_COUNT - 1)

/* "kind", "scope", ...; NULL for an out-of-range value. */
const char *event_enum_key_name(enum event_enum_key key);
/* Looks an enumerated key up by name; -1 when there is none of that name. */
int event_enum_key_from_name(const char *name, size_t length);
/* The values the contract allows for `key` on events of `type`,
 * NULL-terminated; NULL when the type takes no such key. */
const char *const *event_enum_values(enum event_type type, enum event_enum_key key);

struct event_limits {
    size_t max_bytes;   /* larger values are REJECT_TOO_LARGE */
    unsigned max_depth; /* the top-level map is depth 1 */
    /* a later ts is REJECT_TS_IN_FUTURE (the daemon: wall clock +
     * max_future_ms); 0: no bound but the contract's years */
    int64_t latest_ts_ms;
};

/* The `ground` an extension may state (README "Event contract"): why a
 * term is extended to the longer total the law allows on that ground.
 * roving, repeated, gang: a criminal detention's time to request arrest
 * (刑事诉讼法 第九十一条: 流窜作案、多次作案、结伙作案的重大嫌疑分子);
 * complex: a criminal matter's filing review (公安部关于改革完善受案立案制度
 * 的意见: 重大疑难复杂案件).  Which grounds unlock a rule's longer total is
 * the rule's (rules.conf `grounds`). */
enum extension_ground { GROUND_NONE, GROUND_ROVING, GROUND_REPEATED, GROUND_GANG, GROUND_COMPLEX,
                        GROUND_COUNT };

/* The ground named by these bytes, or -1 when the contract has none of that
 * name; "roving" etc. for a ground, NULL for GROUND_NONE or out of range. */
int event_ground_from_name(const char *name, size_t length);
const char *event_ground_name(enum extension_ground ground);

struct duewatch_event {
    enum event_type type;
    int64_t ts_ms;
    struct text id, unit, case_number, ref, subject, kind; /* length 0 when absent */
    /* scope, admin_type, publish: qualifiers[key - 1] (enum event_enum_key);
     * length 0 when absent or not required of this event (then ignored) */
    struct text qualifiers[EVENT_QUALIFIER_COUNT];
    uint32_t days;      /* 0 when absent */
    int64_t until_ms;   /* 0 when absent */
    enum extension_ground ground; /* GROUND_NONE when absent */
};

/* The event's value of an enumerated key; length 0 when it has none. */
struct text event_enum_value(const struct duewatch_event *event, enum event_enum_key key);

/* The value of the event's partition key (event_partition_key_name);
 * length 0 when its type has none. */
struct text event_partition_key(const struct duewatch_event *event);

/* Decodes and validates one message value.  Returns EVENT_VALID and fills *out,
 * or a reason and writes a one-line human explanation (e.g. "key 'case' is
 * required for type case.filed") into detail (always NUL-terminated when
 * detail_size > 0).  Never allocates; reads at most `size` bytes of `value`. */
enum event_reject event_decode(const void *value, size_t size, const struct event_limits *limits,
                               struct duewatch_event *out, char *detail, size_t detail_size);

#endif
