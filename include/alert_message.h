/* Alert messages: the outbox payload written by the Lua scripts, parsed into
 * a struct, turned into the msgpack map published on the alert topic, with
 * one Chinese sentence a supervisor can act on. */
#ifndef DUEWATCH_ALERT_MESSAGE_H
#define DUEWATCH_ALERT_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"

#define ALERT_FIELD_MAX 65
/* An alert id: 32 lowercase hex digits (the first 128 bits of a SHA-1). */
#define ALERT_ID_LENGTH 32
/* At most this many ids in a resolution's `resolves`: yellow, orange and
 * the latest ALERT_RESOLVES_MAX - 2 red repeats. */
#define ALERT_RESOLVES_MAX 10

/* One alert as stored in an outbox: the payload is the fields below in the
 * versioned format of include/formats.h (OUTBOX_PAYLOAD_FIELDS; last_day is
 * '' for hour rules). */
struct alert {
    char alert_id[ALERT_FIELD_MAX];
    char rule[ALERT_FIELD_MAX];
    char level[12]; /* yellow | orange | red | violation */
    char state[12]; /* firing | resolved */
    int64_t seq;    /* red: the repeat; violation: the extension's number (1 = the first) */
    char unit[ALERT_FIELD_MAX], case_number[ALERT_FIELD_MAX], ref[ALERT_FIELD_MAX],
        subject[ALERT_FIELD_MAX], cause[ALERT_FIELD_MAX], resolved_by[ALERT_FIELD_MAX];
    int64_t started_at_ms, deadline_ms, due_at_ms;
    bool late;
    bool has_last_day;
    day_number last_day;
    /* resolved: the ids it resolves, joined by ',' ('' none; payload
     * version 3, '' when read from an earlier version) */
    char resolves[ALERT_RESOLVES_MAX * (ALERT_ID_LENGTH + 1)];
    /* Not in the payload: set by the caller when the deadline depends on
     * provisional calendar years (clock_setup_is_provisional). */
    bool provisional;
    /* Not in the payload: the moment the text is written for (wall mode: the
     * moment of sending). A firing level sent after its due time (due while
     * the daemon was down, or already past when its clock started) states the
     * time left from here, not from due_at; 0 or earlier than due_at: due_at. */
    int64_t sent_at_ms;
};

/* Parses an outbox entry of the current or the previous format version.
 * Returns 0, or -1 with a reason in err. */
int alert_parse(const char *alert_id, const char *payload, size_t payload_size,
                struct alert *out, char *err, size_t err_size);

/* Writes the outbox payload of `alert` in the current format into buf.
 * Returns its length, or -1 when it does not fit. */
int alert_format_payload(const struct alert *alert, char *buf, size_t buf_size);

/* How a rule is worded in alert texts (from the rules file). */
struct alert_wording {
    const char *label;  /* e.g. "取保候审" */
    const char *action; /* e.g. "请及时解除或变更强制措施" */
    /* what the law allows the rule's extensions, quoted in a violation's
     * text (rules.conf extension_limit); NULL or "" when the rule has none */
    const char *extension_limit;
    /* the rule's legal basis (rules.conf basis): law, article and the quoted
     * half-sentence; every alert message carries it in `basis` */
    const char *basis;
    /* what the law says of the term once it is over (rules.conf
     * overdue_text), put before the action in red texts; NULL or "" when
     * the rule has none */
    const char *overdue_text;
};

/* Writes the sentence for `alert` into buf (UTF-8, NUL-terminated, cut at a
 * character boundary if too long).  Examples:
 *   取保候审（案件A123，人员P9）将于2025-03-14到期，剩余3天，请及时解除或变更强制措施。
 *   应拘未拘（案件A7，人员P2）将于2025-03-14 10:00到期，剩余12小时，请及时送拘留所执行。
 *   取保候审（案件A123，人员P9）已于2025-03-14到期，已超期2天，请及时解除或变更强制措施。
 * The time left counts from the later of due_at and sent_at_ms; a yellow or
 * orange sent after the deadline says 已于<deadline>到期 (no time left). 
 *   取保候审（案件A123，人员P9）已办结，超期2天，预警解除。
 * A violation (an extension beyond what the law allows):
 *   取保候审（案件A123，人员P9）第1次延长超出法律规定（<extension_limit>），
 *   期限已按记录延至2025-04-14，请核查延长的依据和审批。
 * A firing alert whose deadline is provisional ends with
 *   （到期日按暂定节假日安排计算，以国务院正式安排为准。） */
void alert_format_text(const struct alert *alert, const struct alert_wording *wording, char *buf,
                       size_t buf_size);

/* The clock id every alert of the clock of `rule` and `ref` carries: the
 * first 32 hex digits of SHA-1("<rule>|<ref>") (README "Alert message"),
 * NUL-terminated. */
void alert_clock_id(const char *rule, const char *ref, char out[ALERT_ID_LENGTH + 1]);

/* Encodes the alert-topic message (msgpack map; see README "Alert message")
 * with its `clock_id`, its `text` and its rule's `basis` into a malloc'd
 * buffer (a resolved one with `resolves`, an array of the ids).  Returns 0
 * and sets *data and *size, or -1. */
int alert_encode(const struct alert *alert, const char *text, const char *basis,
                 int64_t emitted_at_ms, void **data, size_t *size);

#endif
