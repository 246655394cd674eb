/* Unit tests for alert messages: strict parsing of outbox payloads of every
 * format version (include/formats.h: version 0 without a tag, versions 1
 * and 2 behind "@1|" and "@2|", the same fields; version 3 adds resolves)
 * and of every malformation, an unknown version included;
 * alert_format_payload writing version 3 that parses back to the same
 * alert; the clock id and resolves in the encoded map; the exact Chinese
 * sentence for each kind of alert, cutting that sentence at UTF-8 character
 * boundaries, and the msgpack map read back with msgpack-c's unpacker.
 *
 * Instants are written as epoch ms with their Asia/Shanghai (+08:00) local
 * time beside them; the group setup selects that zone through calendar.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_message.h"
#include "calendar.h"

#define STARTED_2024_03_15_1000 INT64_C(1710468000000)
#define DUE_2025_02_28_0000 INT64_C(1740672000000)
#define DUE_2025_03_12_0000 INT64_C(1741708800000)
#define DEADLINE_2025_03_15_0000 INT64_C(1741968000000)
#define DUE_2025_03_17_0000 INT64_C(1742140800000)
#define STOP_2025_03_17_1000 INT64_C(1742176800000)
#define LAST_DAY_2025_03_14 20161

#define STARTED_2025_01_10_0800 INT64_C(1736467200000)
#define DUE_2025_01_10_2000 INT64_C(1736510400000)
#define DEADLINE_2025_01_11_0800 INT64_C(1736553600000)
#define DUE_2025_01_11_0720 INT64_C(1736551200000)
#define DUE_2025_01_12_0800 INT64_C(1736640000000)

#define HOUR_MS INT64_C(3600000)

/* A day rule (bail, last day 2025-03-14) and an hour rule (unexecuted
 * detention, 24 hours from 2025-01-10 08:00), in format version 0 (no tag),
 * as releases up to 2026-12-03 wrote them. */
static const char DAY_RULE_PAYLOAD[] =
    "bail_expiry|orange|firing|0|500112-XJ01|A123|QB1|P9|1710468000000|1741968000000|"
    "1741708800000|ev-start-1||0|20161";
static const char HOUR_RULE_PAYLOAD[] =
    "detention_unexecuted|red|resolved|0|500112-XJ01|X3|JL3|P3|1736467200000|1736553600000|"
    "1736640000000|ev-decided-3|ev-executed-3|1|";

static const struct alert_wording BAIL_WORDING = {
    .label = "取保候审", .action = "请及时解除或变更强制措施",
    .extension_limit = "取保候审最长不得超过十二个月"};
static const struct alert_wording DETENTION_WORDING = {
    .label = "应拘未拘", .action = "请及时送拘留所执行或依法作出暂缓执行决定"};

static int select_shanghai(void **state)
{
    (void)state;
    char err[200];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0) {
        fprintf(stderr, "calendar_init: %s\n", err);
        return -1;
    }
    return 0;
}

/* Parses from a heap copy without a terminating NUL, so any read past
 * payload_size is an out-of-bounds read under AddressSanitizer. */
static int parse_exact(const char *alert_id, const char *payload, struct alert *out, char *err,
                       size_t err_size)
{
    size_t size = strlen(payload);
    char *copy = malloc(size > 0 ? size : 1);
    assert_non_null(copy);
    memcpy(copy, payload, size);
    int result = alert_parse(alert_id, copy, size, out, err, err_size);
    free(copy);
    return result;
}

/* DAY_RULE_PAYLOAD with field `index` (0-based) replaced by `value`. */
static void with_field(size_t index, const char *value, char *out, size_t out_size)
{
    const char *field_start = DAY_RULE_PAYLOAD;
    for (size_t i = 0; i < index; i++)
        field_start = strchr(field_start, '|') + 1;
    const char *field_end = strchr(field_start, '|');
    if (field_end == NULL)
        field_end = field_start + strlen(field_start);
    int written = snprintf(out, out_size, "%.*s%s%s", (int)(field_start - DAY_RULE_PAYLOAD),
                           DAY_RULE_PAYLOAD, value, field_end);
    assert_true(written > 0 && (size_t)written < out_size);
}

static void expect_rejected(const char *payload, const char *expected_err)
{
    struct alert alert;
    char err[200] = "";
    assert_int_equal(parse_exact("a1", payload, &alert, err, sizeof err), -1);
    assert_string_equal(err, expected_err);
}

static void expect_field_rejected(size_t index, const char *value, const char *expected_err)
{
    char payload[512];
    with_field(index, value, payload, sizeof payload);
    expect_rejected(payload, expected_err);
}

/* ------------------------------------------------------------------ parse */

static void test_parse_day_rule(void **state)
{
    (void)state;
    struct alert alert;
    char err[200] = "";
    assert_int_equal(parse_exact("4f1c0a", DAY_RULE_PAYLOAD, &alert, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(alert.alert_id, "4f1c0a");
    assert_string_equal(alert.rule, "bail_expiry");
    assert_string_equal(alert.level, "orange");
    assert_string_equal(alert.state, "firing");
    assert_true(alert.seq == 0);
    assert_string_equal(alert.unit, "500112-XJ01");
    assert_string_equal(alert.case_number, "A123");
    assert_string_equal(alert.ref, "QB1");
    assert_string_equal(alert.subject, "P9");
    assert_true(alert.started_at_ms == STARTED_2024_03_15_1000);
    assert_true(alert.deadline_ms == DEADLINE_2025_03_15_0000);
    assert_true(alert.due_at_ms == DUE_2025_03_12_0000);
    assert_string_equal(alert.cause, "ev-start-1");
    assert_string_equal(alert.resolved_by, "");
    assert_false(alert.late);
    assert_true(alert.has_last_day);
    assert_int_equal(alert.last_day, LAST_DAY_2025_03_14);
}

static void test_parse_hour_rule(void **state)
{
    (void)state;
    struct alert alert;
    char err[200] = "";
    assert_int_equal(parse_exact("9e2b", HOUR_RULE_PAYLOAD, &alert, err, sizeof err), 0);
    assert_string_equal(alert.alert_id, "9e2b");
    assert_string_equal(alert.rule, "detention_unexecuted");
    assert_string_equal(alert.level, "red");
    assert_string_equal(alert.state, "resolved");
    assert_true(alert.seq == 0);
    assert_string_equal(alert.unit, "500112-XJ01");
    assert_string_equal(alert.case_number, "X3");
    assert_string_equal(alert.ref, "JL3");
    assert_string_equal(alert.subject, "P3");
    assert_true(alert.started_at_ms == STARTED_2025_01_10_0800);
    assert_true(alert.deadline_ms == DEADLINE_2025_01_11_0800);
    assert_true(alert.due_at_ms == DUE_2025_01_12_0800);
    assert_string_equal(alert.cause, "ev-decided-3");
    assert_string_equal(alert.resolved_by, "ev-executed-3");
    assert_true(alert.late);
    assert_false(alert.has_last_day);
    assert_int_equal(alert.last_day, 0);
}

static void test_parse_edges_accepted(void **state)
{
    (void)state;
    char payload[512];
    struct alert alert;
    char err[200];
    /* Optional text fields empty, a red repeat's seq, instants and day
     * numbers at the ends of their range (1970 .. 2200-01-01), and 64-byte
     * fields and alert id (the maximum). */
    static const char max_text[] =
        "0123456789012345678901234567890123456789012345678901234567890123";
    snprintf(payload, sizeof payload,
             "%s|red|firing|17|%s||%s||0|5|7258118400000|||0|84005", max_text, max_text,
             max_text);
    assert_int_equal(parse_exact(max_text, payload, &alert, err, sizeof err), 0);
    assert_string_equal(alert.alert_id, max_text);
    assert_string_equal(alert.rule, max_text);
    assert_true(alert.seq == 17);
    assert_string_equal(alert.case_number, "");
    assert_string_equal(alert.subject, "");
    assert_string_equal(alert.cause, "");
    assert_true(alert.started_at_ms == 0);
    assert_true(alert.deadline_ms == 5);
    assert_true(alert.due_at_ms == INT64_C(7258118400000));
    assert_true(alert.has_last_day);
    assert_int_equal(alert.last_day, 84005);

    /* Just outside the range: no payload our scripts write; refused. */
    with_field(8, "-1", payload, sizeof payload);
    assert_int_equal(parse_exact("a1", payload, &alert, err, sizeof err), -1);
    with_field(8, "0", payload, sizeof payload);
    with_field(10, "7258118400001", payload, sizeof payload);
    assert_int_equal(parse_exact("a1", payload, &alert, err, sizeof err), -1);
    with_field(10, "7258118400000", payload, sizeof payload);
    with_field(14, "84007", payload, sizeof payload);
    assert_int_equal(parse_exact("a1", payload, &alert, err, sizeof err), -1);
}

static void test_parse_reads_only_payload_size(void **state)
{
    (void)state;
    /* What follows payload_size (a 16th field here) is not the payload's. */
    char buffer[512];
    snprintf(buffer, sizeof buffer, "%s|extra", DAY_RULE_PAYLOAD);
    struct alert alert;
    char err[200];
    assert_int_equal(alert_parse("a1", buffer, strlen(DAY_RULE_PAYLOAD), &alert, err, sizeof err),
                     0);
    assert_int_equal(alert.last_day, LAST_DAY_2025_03_14);
    /* One byte short cuts the last day to 2016. */
    assert_int_equal(
        alert_parse("a1", buffer, strlen(DAY_RULE_PAYLOAD) - 1, &alert, err, sizeof err), 0);
    assert_int_equal(alert.last_day, 2016);
}

static void test_reject_field_count(void **state)
{
    (void)state;
    /* 14 fields: the last day and its separator missing. */
    char payload[512];
    snprintf(payload, sizeof payload, "%.*s", (int)(strrchr(DAY_RULE_PAYLOAD, '|') -
                                                   DAY_RULE_PAYLOAD),
             DAY_RULE_PAYLOAD);
    expect_rejected(payload, "14 fields, expected 15");
    snprintf(payload, sizeof payload, "%s|", DAY_RULE_PAYLOAD);
    expect_rejected(payload, "more than 15 fields");
    snprintf(payload, sizeof payload, "%s|x|y|z", DAY_RULE_PAYLOAD);
    expect_rejected(payload, "more than 15 fields");
    expect_rejected("", "1 fields, expected 15");
}

static void test_reject_level(void **state)
{
    (void)state;
    expect_field_rejected(1, "purple", "level is not yellow, orange, red or violation");
    expect_field_rejected(1, "RED", "level is not yellow, orange, red or violation");
    expect_field_rejected(1, "", "level is not yellow, orange, red or violation");
    expect_field_rejected(1, "redd", "level is not yellow, orange, red or violation");
}

static void test_reject_state(void **state)
{
    (void)state;
    expect_field_rejected(2, "fired", "state is not firing or resolved");
    expect_field_rejected(2, "", "state is not firing or resolved");
    expect_field_rejected(2, "resolved ", "state is not firing or resolved");
}

static void test_reject_seq(void **state)
{
    (void)state;
    expect_field_rejected(3, "one", "seq is not a decimal integer");
    expect_field_rejected(3, "1x", "seq is not a decimal integer");
    expect_field_rejected(3, "", "seq is not a decimal integer");
    expect_field_rejected(3, "+1", "seq is not a decimal integer");
    expect_field_rejected(3, " 1", "seq is not a decimal integer");
    expect_field_rejected(3, "-", "seq is not a decimal integer");
    expect_field_rejected(3, "-1", "seq is out of range");
    expect_field_rejected(3, "9223372036854775808", "seq is out of range");
}

static void test_reject_other_numbers(void **state)
{
    (void)state;
    expect_field_rejected(8, "", "started_at is not a decimal integer");
    expect_field_rejected(9, "1741968000000.0", "deadline is not a decimal integer");
    expect_field_rejected(10, "99999999999999999999", "due_at is out of range");
    expect_field_rejected(10, "-9223372036854775809", "due_at is out of range");
    expect_field_rejected(14, "2025-03-14", "last_day is not a decimal integer");
    expect_field_rejected(14, "2147483648", "last_day is out of range");
    expect_field_rejected(14, "-2147483649", "last_day is out of range");
}

static void test_reject_long_text(void **state)
{
    (void)state;
    static const char too_long[] =
        "01234567890123456789012345678901234567890123456789012345678901234";
    assert_int_equal(strlen(too_long), 65);
    expect_field_rejected(0, too_long, "rule is 65 bytes, at most 64 allowed");
    expect_field_rejected(4, too_long, "unit is 65 bytes, at most 64 allowed");
    expect_field_rejected(5, too_long, "case is 65 bytes, at most 64 allowed");
    expect_field_rejected(6, too_long, "ref is 65 bytes, at most 64 allowed");
    expect_field_rejected(7, too_long, "subject is 65 bytes, at most 64 allowed");
    expect_field_rejected(11, too_long, "cause is 65 bytes, at most 64 allowed");
    expect_field_rejected(12, too_long, "resolved_by is 65 bytes, at most 64 allowed");

    struct alert alert;
    char err[200];
    assert_int_equal(parse_exact(too_long, DAY_RULE_PAYLOAD, &alert, err, sizeof err), -1);
    assert_string_equal(err, "alert id is longer than 64 bytes");
    assert_int_equal(parse_exact("", DAY_RULE_PAYLOAD, &alert, err, sizeof err), -1);
    assert_string_equal(err, "alert id is empty");
}

static void test_reject_empty_or_nul_text(void **state)
{
    (void)state;
    expect_field_rejected(0, "", "rule is empty");
    expect_field_rejected(4, "", "unit is empty");
    expect_field_rejected(6, "", "ref is empty");

    /* "QB\0x" as the ref: the copy would end early, so it is refused. */
    char payload[512];
    with_field(6, "QB#x", payload, sizeof payload);
    size_t size = strlen(payload);
    *strchr(payload, '#') = '\0';
    struct alert alert;
    char err[200];
    assert_int_equal(alert_parse("a1", payload, size, &alert, err, sizeof err), -1);
    assert_string_equal(err, "ref contains a NUL byte");
}

static void test_reject_late(void **state)
{
    (void)state;
    expect_field_rejected(13, "2", "late is not 0 or 1");
    expect_field_rejected(13, "", "late is not 0 or 1");
    expect_field_rejected(13, "01", "late is not 0 or 1");
    expect_field_rejected(13, "true", "late is not 0 or 1");
}

/* -------------------------------------------------------- format versions */

/* "@1|" + text: the same fields in format version 1. */
static const char *tagged(const char *prefix, const char *text, const char *suffix)
{
    static char buf[1024];
    int written = snprintf(buf, sizeof buf, "%s%s%s", prefix, text, suffix);
    assert_true(written > 0 && (size_t)written < sizeof buf);
    return buf;
}

static void test_parse_version_1(void **state)
{
    (void)state;
    struct alert v0, v1;
    char err[200];
    assert_int_equal(parse_exact("4f1c0a", DAY_RULE_PAYLOAD, &v0, err, sizeof err), 0);
    assert_int_equal(
        parse_exact("4f1c0a", tagged("@1|", DAY_RULE_PAYLOAD, ""), &v1, err, sizeof err), 0);
    assert_string_equal(v1.rule, "bail_expiry");
    assert_string_equal(v1.level, "orange");
    assert_true(v1.deadline_ms == DEADLINE_2025_03_15_0000);
    assert_int_equal(v1.last_day, LAST_DAY_2025_03_14);
    assert_memory_equal(&v0, &v1, sizeof v0);
    assert_int_equal(parse_exact("9e2b", HOUR_RULE_PAYLOAD, &v0, err, sizeof err), 0);
    assert_int_equal(
        parse_exact("9e2b", tagged("@1|", HOUR_RULE_PAYLOAD, ""), &v1, err, sizeof err), 0);
    assert_string_equal(v1.resolved_by, "ev-executed-3");
    assert_false(v1.has_last_day);
    assert_memory_equal(&v0, &v1, sizeof v0);
}

/* Version 2 has the fields of version 0; version 3 adds resolves. */
static void test_parse_versions_2_and_3(void **state)
{
    (void)state;
    struct alert v0, tagged_alert;
    char err[200];
    assert_int_equal(parse_exact("4f1c0a", DAY_RULE_PAYLOAD, &v0, err, sizeof err), 0);
    assert_int_equal(parse_exact("4f1c0a", tagged("@2|", DAY_RULE_PAYLOAD, ""), &tagged_alert,
                                 err, sizeof err),
                     0);
    assert_memory_equal(&v0, &tagged_alert, sizeof v0);
    assert_int_equal(parse_exact("4f1c0a", tagged("@3|", DAY_RULE_PAYLOAD, "|"), &tagged_alert,
                                 err, sizeof err),
                     0);
    assert_memory_equal(&v0, &tagged_alert, sizeof v0);
    assert_int_equal(parse_exact("9e2b", HOUR_RULE_PAYLOAD, &v0, err, sizeof err), 0);
    assert_string_equal(v0.resolves, "");
    char ten[ALERT_RESOLVES_MAX * (ALERT_ID_LENGTH + 1)] = "";
    for (int i = 0; i < ALERT_RESOLVES_MAX; i++)
        strcat(ten, i ? ",00000000000000000000000000000000" : "00000000000000000000000000000000");
    assert_int_equal(parse_exact("9e2b", tagged("@3|", HOUR_RULE_PAYLOAD, "|"), &tagged_alert,
                                 err, sizeof err),
                     0);
    char with_ten[1024];
    snprintf(with_ten, sizeof with_ten, "@3|%s|%s", HOUR_RULE_PAYLOAD, ten);
    assert_int_equal(parse_exact("9e2b", with_ten, &tagged_alert, err, sizeof err), 0);
    assert_string_equal(tagged_alert.resolves, ten);
}

/* resolves: only in a resolution, at most ALERT_RESOLVES_MAX ids of 32
 * lowercase hex digits joined by ','. */
static void test_reject_resolves(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0123456789abcdef0123456789abcde",         /* 31 digits */
        "0123456789abcdef0123456789abcdef0",       /* 33 digits */
        "0123456789ABCDEF0123456789abcdef",        /* upper case */
        "0123456789abcdef0123456789abcdef,",       /* trailing comma */
        "0123456789abcdef0123456789abcdef;0123456789abcdef0123456789abcdef",
        "00000000000000000000000000000000,00000000000000000000000000000000,"
        "00000000000000000000000000000000,00000000000000000000000000000000,"
        "00000000000000000000000000000000,00000000000000000000000000000000,"
        "00000000000000000000000000000000,00000000000000000000000000000000,"
        "00000000000000000000000000000000,00000000000000000000000000000000,"
        "00000000000000000000000000000000", /* 11 ids */
    };
    char payload[1024];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(payload, sizeof payload, "@3|%s|%s", HOUR_RULE_PAYLOAD, bad[i]);
        expect_rejected(payload, "resolves is not a list of at most 10 alert ids");
    }
    snprintf(payload, sizeof payload, "@3|%s|0123456789abcdef0123456789abcdef", DAY_RULE_PAYLOAD);
    expect_rejected(payload, "resolves is not empty in a firing alert");
    expect_rejected(tagged("@3|", DAY_RULE_PAYLOAD, ""), "15 fields, expected 16");
    expect_rejected(tagged("@2|", DAY_RULE_PAYLOAD, "|"), "more than 15 fields");
}

static void test_reject_unknown_version(void **state)
{
    (void)state;
    expect_rejected(tagged("@6|", DAY_RULE_PAYLOAD, ""),
                    "payload format @6|bail_ is not one this daemon reads");
    expect_rejected(tagged("@1", DAY_RULE_PAYLOAD, ""),
                    "payload format @1bail_e is not one this daemon reads");
    expect_rejected("@1|", "1 fields, expected 15");
    expect_rejected(tagged("@1|", DAY_RULE_PAYLOAD, "|x"), "more than 15 fields");
}

/* The reason names only the payload's own bytes: what follows payload_size
 * in the caller's buffer is not part of it. */
static void test_unknown_version_reason_reads_only_payload_size(void **state)
{
    (void)state;
    static const char buffer[] = "@4ZZZZZZZZZZ";
    struct alert alert;
    char err[200] = "";
    assert_int_equal(alert_parse("a1", buffer, 2, &alert, err, sizeof err), -1);
    assert_string_equal(err, "payload format @4 is not one this daemon reads");
    assert_int_equal(alert_parse("a1", buffer, 1, &alert, err, sizeof err), -1);
    assert_string_equal(err, "payload format @ is not one this daemon reads");
}

/* alert_format_payload writes the current version (the payload of version
 * 3, tagged "@5|"): the tag, then the version 0 fields and resolves (empty
 * here); it parses back to the same alert. */
static void expect_payload_round_trip(const char *alert_id, const char *v0_payload)
{
    struct alert alert, again;
    char err[200], buf[1024], expected[1024];
    assert_int_equal(parse_exact(alert_id, v0_payload, &alert, err, sizeof err), 0);
    int length = alert_format_payload(&alert, buf, sizeof buf);
    snprintf(expected, sizeof expected, "@5|%s|", v0_payload);
    assert_string_equal(buf, expected);
    assert_int_equal(length, (int)strlen(expected));
    assert_int_equal(parse_exact(alert_id, buf, &again, err, sizeof err), 0);
    assert_memory_equal(&alert, &again, sizeof alert);
    /* a buffer one byte short of the terminating NUL is refused */
    assert_int_equal(alert_format_payload(&alert, buf, (size_t)length), -1);
    assert_int_equal(alert_format_payload(&alert, buf, (size_t)length + 1), length);
}

static void test_format_payload_round_trip(void **state)
{
    (void)state;
    expect_payload_round_trip("4f1c0a", DAY_RULE_PAYLOAD);
    expect_payload_round_trip("9e2b", HOUR_RULE_PAYLOAD);
    /* extremes: a red repeat, negative and largest instants, empty texts */
    expect_payload_round_trip("a1", "r|red|firing|9223372036854775807|u||f||0|0|"
                                    "7258118400000|||0|0");
}

/* ------------------------------------------------------------------- text */

/* The bail clock of the examples: case A123, person P9, last day 2025-03-14,
 * deadline 2025-03-15 00:00. */
static struct alert bail_alert(const char *level, const char *state, int64_t seq, int64_t due_at)
{
    struct alert alert;
    memset(&alert, 0, sizeof alert);
    snprintf(alert.alert_id, sizeof alert.alert_id, "4f1c0a");
    snprintf(alert.rule, sizeof alert.rule, "bail_expiry");
    snprintf(alert.level, sizeof alert.level, "%s", level);
    snprintf(alert.state, sizeof alert.state, "%s", state);
    alert.seq = seq;
    snprintf(alert.unit, sizeof alert.unit, "500112-XJ01");
    snprintf(alert.case_number, sizeof alert.case_number, "A123");
    snprintf(alert.ref, sizeof alert.ref, "QB1");
    snprintf(alert.subject, sizeof alert.subject, "P9");
    snprintf(alert.cause, sizeof alert.cause, "ev-start-1");
    alert.started_at_ms = STARTED_2024_03_15_1000;
    alert.deadline_ms = DEADLINE_2025_03_15_0000;
    alert.due_at_ms = due_at;
    alert.has_last_day = true;
    alert.last_day = LAST_DAY_2025_03_14;
    return alert;
}

/* The unexecuted detention of the examples: 24 hours from 2025-01-10 08:00. */
static struct alert detention_alert(const char *level, const char *state, int64_t seq,
                                    int64_t due_at)
{
    struct alert alert = bail_alert(level, state, seq, due_at);
    snprintf(alert.rule, sizeof alert.rule, "detention_unexecuted");
    snprintf(alert.case_number, sizeof alert.case_number, "X3");
    snprintf(alert.ref, sizeof alert.ref, "JL3");
    snprintf(alert.subject, sizeof alert.subject, "P3");
    alert.started_at_ms = STARTED_2025_01_10_0800;
    alert.deadline_ms = DEADLINE_2025_01_11_0800;
    alert.has_last_day = false;
    alert.last_day = 0;
    return alert;
}

static void expect_text(const struct alert *alert, const struct alert_wording *wording,
                        const char *expected)
{
    char text[1024];
    memset(text, 'X', sizeof text);
    alert_format_text(alert, wording, text, sizeof text);
    assert_string_equal(text, expected);
}

static void test_text_yellow_day_rule(void **state)
{
    (void)state;
    struct alert alert = bail_alert("yellow", "firing", 0, DUE_2025_02_28_0000);
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余15天，"
                "请及时解除或变更强制措施。");
}

static void test_text_orange_day_rule(void **state)
{
    (void)state;
    struct alert alert = bail_alert("orange", "firing", 0, DUE_2025_03_12_0000);
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余3天，"
                "请及时解除或变更强制措施。");
    /* Later on the same local day (23:59) is still 3 days. */
    alert.due_at_ms = DUE_2025_03_12_0000 + 24 * HOUR_MS - 60000;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余3天，"
                "请及时解除或变更强制措施。");
}

static void test_text_red_first(void **state)
{
    (void)state;
    struct alert alert = bail_alert("red", "firing", 0, DEADLINE_2025_03_15_0000);
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，请及时解除或变更强制措施。");
}

/* An extension beyond the law's cap: its number, the law's words, the
 * last day as extended; a violation payload parses back (level violation). */
static void test_text_violation(void **state)
{
    (void)state;
    struct alert alert = bail_alert("violation", "firing", 1, DUE_2025_03_12_0000);
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）第1次延长超出法律规定（取保候审最长不得超过"
                "十二个月），期限已按记录延至2025-03-14，请核查延长的依据和审批。");
    struct alert_wording unworded = {.label = "取保候审", .action = "请及时解除或变更强制措施"};
    alert.seq = 2;
    expect_text(&alert, &unworded,
                "取保候审（案件A123，人员P9）第2次延长超出法律规定，期限已按记录延至"
                "2025-03-14，请核查延长的依据和审批。");
    /* seq 0: the starting document's `until` beyond the law's term */
    alert.seq = 0;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）文书载明的期限超出法律规定（取保候审最长不得超过"
                "十二个月），期限已按文书记至2025-03-14，请核查期限的依据和审批。");
    alert.seq = 2;
    char payload[1024], err[200];
    struct alert again;
    assert_true(alert_format_payload(&alert, payload, sizeof payload) > 0);
    assert_int_equal(parse_exact("4f1c0a", payload, &again, err, sizeof err), 0);
    assert_string_equal(again.level, "violation");
    assert_true(again.seq == 2);
}

static void test_text_red_repeat(void **state)
{
    (void)state;
    struct alert alert = bail_alert("red", "firing", 2, DUE_2025_03_17_0000);
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，已超期2天，"
                "请及时解除或变更强制措施。");
    /* 2 days 23:59 is still 2 whole days. */
    alert.due_at_ms = DUE_2025_03_17_0000 + 24 * HOUR_MS - 60000;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，已超期2天，"
                "请及时解除或变更强制措施。");
}

/* A rule's overdue_text (what the law says once the term is over) goes
 * before the action in red texts, first and repeated, and nowhere else. */
static void test_text_red_states_what_the_law_requires(void **state)
{
    (void)state;
    struct alert_wording wording = BAIL_WORDING;
    wording.overdue_text = "依法应当及时解除";
    struct alert alert = bail_alert("red", "firing", 0, DEADLINE_2025_03_15_0000);
    expect_text(&alert, &wording,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，依法应当及时解除，"
                "请及时解除或变更强制措施。");
    alert = bail_alert("red", "firing", 2, DUE_2025_03_17_0000);
    expect_text(&alert, &wording,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，已超期2天，依法应当及时解除，"
                "请及时解除或变更强制措施。");
    alert = bail_alert("orange", "firing", 0, DUE_2025_03_12_0000);
    expect_text(&alert, &wording,
                "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余3天，"
                "请及时解除或变更强制措施。");
}

static void test_text_red_repeat_within_a_day(void **state)
{
    (void)state;
    int64_t five_hours_59_minutes_late = DEADLINE_2025_03_15_0000 + 5 * HOUR_MS + 59 * 60000;
    struct alert alert = bail_alert("red", "firing", 1, five_hours_59_minutes_late);
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，已超期5小时，"
                "请及时解除或变更强制措施。");
    alert.seq = 3;
    alert.due_at_ms = DEADLINE_2025_03_15_0000 + 30999;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，已超期30秒，"
                "请及时解除或变更强制措施。");
}

static void test_text_resolved_late(void **state)
{
    (void)state;
    /* Stopped 2 days 10 hours after the deadline: any part of a day counts. */
    struct alert alert = bail_alert("red", "resolved", 0, STOP_2025_03_17_1000);
    alert.late = true;
    expect_text(&alert, &BAIL_WORDING, "取保候审（案件A123，人员P9）已办结，超期3天，预警解除。");
    alert.due_at_ms = DUE_2025_03_17_0000;
    expect_text(&alert, &BAIL_WORDING, "取保候审（案件A123，人员P9）已办结，超期2天，预警解除。");
    alert.due_at_ms = DEADLINE_2025_03_15_0000 + 1;
    expect_text(&alert, &BAIL_WORDING, "取保候审（案件A123，人员P9）已办结，超期1天，预警解除。");
    /* Late stops count at least one day. */
    alert.due_at_ms = DEADLINE_2025_03_15_0000;
    expect_text(&alert, &BAIL_WORDING, "取保候审（案件A123，人员P9）已办结，超期1天，预警解除。");
}

static void test_text_resolved_on_time(void **state)
{
    (void)state;
    struct alert alert = bail_alert("orange", "resolved", 0, DUE_2025_03_12_0000 + HOUR_MS);
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）已在期限内办结，预警解除。");
}

static void test_text_hour_rule(void **state)
{
    (void)state;
    struct alert alert = detention_alert("orange", "firing", 0, DUE_2025_01_10_2000);
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）将于2025-01-11 08:00到期，剩余12小时，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
    /* Hours round to the nearest: 11 h 30 min is 12, 11 h 29 min is 11. */
    alert.due_at_ms = DUE_2025_01_10_2000 + 30 * 60000;
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）将于2025-01-11 08:00到期，剩余12小时，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
    alert.due_at_ms = DUE_2025_01_10_2000 + 31 * 60000;
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）将于2025-01-11 08:00到期，剩余11小时，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
    /* Under half an hour left is said in minutes. */
    alert.due_at_ms = DUE_2025_01_11_0720 + 11 * 60000;
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）将于2025-01-11 08:00到期，剩余29分钟，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
}

/* A level sent after its due time (due while the daemon was down, or already
 * past when its clock started) states the time left when it is sent. */
static void test_text_sent_late_counts_from_sending(void **state)
{
    (void)state;
    /* yellow due 2025-02-28, sent 2025-03-09 10:00 (local): 6 days left */
    struct alert alert = bail_alert("yellow", "firing", 0, DUE_2025_02_28_0000);
    alert.sent_at_ms = DUE_2025_03_12_0000 - 3 * 24 * HOUR_MS + 10 * HOUR_MS;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余6天，"
                "请及时解除或变更强制措施。");
    /* sent on the last day: 1 day */
    alert.sent_at_ms = DEADLINE_2025_03_15_0000 - HOUR_MS;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余1天，"
                "请及时解除或变更强制措施。");
    /* sent after the last day: no time is left */
    alert.sent_at_ms = DEADLINE_2025_03_15_0000 + HOUR_MS;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）已于2025-03-14到期，请及时解除或变更强制措施。");
    /* a sending time before the due time (clocks apart) counts from due_at */
    alert.sent_at_ms = DUE_2025_02_28_0000 - 2 * 24 * HOUR_MS;
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余15天，"
                "请及时解除或变更强制措施。");
}

static void test_text_hour_rule_sent_late(void **state)
{
    (void)state;
    /* orange due 2025-01-10 20:00, sent 2025-01-11 02:00: 6 hours left */
    struct alert alert = detention_alert("orange", "firing", 0, DUE_2025_01_10_2000);
    alert.sent_at_ms = DUE_2025_01_10_2000 + 6 * HOUR_MS;
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）将于2025-01-11 08:00到期，剩余6小时，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
    /* sent at the deadline: none left */
    alert.sent_at_ms = DEADLINE_2025_01_11_0800;
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）已于2025-01-11 08:00到期，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
}

static void test_text_hour_rule_red(void **state)
{
    (void)state;
    struct alert alert = detention_alert("red", "firing", 0, DEADLINE_2025_01_11_0800);
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）已于2025-01-11 08:00到期，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
    alert.seq = 1;
    alert.due_at_ms = DUE_2025_01_12_0800;
    expect_text(&alert, &DETENTION_WORDING,
                "应拘未拘（案件X3，人员P3）已于2025-01-11 08:00到期，已超期1天，"
                "请及时送拘留所执行或依法作出暂缓执行决定。");
}

static void test_text_without_subject(void **state)
{
    (void)state;
    struct alert alert = bail_alert("orange", "firing", 0, DUE_2025_03_12_0000);
    alert.subject[0] = '\0';
    expect_text(&alert, &BAIL_WORDING,
                "取保候审（案件A123）将于2025-03-14到期，剩余3天，请及时解除或变更强制措施。");
}

static void test_text_without_case(void **state)
{
    (void)state;
    struct alert alert = bail_alert("orange", "firing", 0, DUE_2025_03_12_0000);
    alert.case_number[0] = '\0';
    alert.subject[0] = '\0';
    struct alert_wording incident = {.label = "警情受案", .action = "请及时受案或作出不予受案决定"};
    expect_text(&alert, &incident,
                "警情受案（编号QB1）将于2025-03-14到期，剩余3天，请及时受案或作出不予受案决定。");
    /* Without a case only the ref identifies the clock, even with a subject. */
    snprintf(alert.subject, sizeof alert.subject, "P9");
    expect_text(&alert, &incident,
                "警情受案（编号QB1）将于2025-03-14到期，剩余3天，请及时受案或作出不予受案决定。");
}

/* The bytes of `text` that fit in buf_size at a character boundary. */
static size_t expected_cut(const char *text, size_t buf_size)
{
    size_t length = strlen(text);
    if (buf_size == 0)
        return 0;
    size_t cut = length < buf_size - 1 ? length : buf_size - 1;
    while (cut > 0 && cut < length && ((unsigned char)text[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

/* True when `text` ends with a whole UTF-8 sequence (or is empty). */
static bool ends_with_whole_character(const char *text)
{
    size_t length = strlen(text);
    if (length == 0)
        return true;
    size_t lead = length - 1;
    while (lead > 0 && ((unsigned char)text[lead] & 0xC0) == 0x80)
        lead--;
    unsigned char byte = (unsigned char)text[lead];
    size_t sequence = byte < 0x80 ? 1 : byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2;
    return lead + sequence == length;
}

static void test_text_truncated_at_character_boundary(void **state)
{
    (void)state;
    struct alert alert = bail_alert("red", "firing", 2, DUE_2025_03_17_0000);
    char full[1024];
    alert_format_text(&alert, &BAIL_WORDING, full, sizeof full);
    size_t full_length = strlen(full);
    assert_int_equal(full_length, strlen("取保候审（案件A123，人员P9）已于2025-03-14到期，"
                                         "已超期2天，请及时解除或变更强制措施。"));
    for (size_t size = 1; size <= full_length + 2; size++) {
        char *buf = malloc(size); /* exact size: ASan sees any overrun */
        assert_non_null(buf);
        alert_format_text(&alert, &BAIL_WORDING, buf, size);
        size_t cut = expected_cut(full, size);
        assert_int_equal(strlen(buf), cut);
        assert_memory_equal(buf, full, cut);
        assert_true(ends_with_whole_character(buf));
        free(buf);
    }
    /* Spot checks: "取" is 3 bytes, "（" 3 bytes. */
    char small[16];
    alert_format_text(&alert, &BAIL_WORDING, small, 3);
    assert_string_equal(small, "");
    alert_format_text(&alert, &BAIL_WORDING, small, 4);
    assert_string_equal(small, "取");
    alert_format_text(&alert, &BAIL_WORDING, small, 6);
    assert_string_equal(small, "取");
    alert_format_text(&alert, &BAIL_WORDING, small, 13);
    assert_string_equal(small, "取保候审");
    alert_format_text(&alert, &BAIL_WORDING, small, 16);
    assert_string_equal(small, "取保候审（");

    /* Size 0 writes nothing at all. */
    char untouched = 'X';
    alert_format_text(&alert, &BAIL_WORDING, &untouched, 0);
    assert_int_equal(untouched, 'X');
}

static void test_text_truncated_with_four_byte_characters(void **state)
{
    (void)state;
    /* A label with a 4-byte character (U+20000) and ASCII around it. */
    struct alert_wording wording = {.label = "a\xF0\xA0\x80\x80" "b", .action = "c"};
    struct alert alert = bail_alert("red", "firing", 0, DEADLINE_2025_03_15_0000);
    char buf[8];
    for (size_t size = 2; size <= 5; size++) {
        alert_format_text(&alert, &wording, buf, size);
        assert_string_equal(buf, "a");
    }
    alert_format_text(&alert, &wording, buf, 6);
    assert_string_equal(buf, "a\xF0\xA0\x80\x80");
    alert_format_text(&alert, &wording, buf, 7);
    assert_string_equal(buf, "a\xF0\xA0\x80\x80" "b");
}

/* ----------------------------------------------------------------- encode */

static const msgpack_object *expect_key(const msgpack_object *map, uint32_t index,
                                        const char *key)
{
    assert_true(index < map->via.map.size);
    const msgpack_object_kv *pair = &map->via.map.ptr[index];
    assert_int_equal(pair->key.type, MSGPACK_OBJECT_STR);
    assert_int_equal(pair->key.via.str.size, strlen(key));
    assert_memory_equal(pair->key.via.str.ptr, key, strlen(key));
    return &pair->val;
}

static void expect_str(const msgpack_object *map, uint32_t index, const char *key,
                       const char *value)
{
    const msgpack_object *object = expect_key(map, index, key);
    assert_int_equal(object->type, MSGPACK_OBJECT_STR);
    assert_int_equal(object->via.str.size, strlen(value));
    if (object->via.str.size > 0)
        assert_memory_equal(object->via.str.ptr, value, strlen(value));
}

static void expect_uint(const msgpack_object *map, uint32_t index, const char *key,
                        uint64_t value)
{
    const msgpack_object *object = expect_key(map, index, key);
    assert_int_equal(object->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(object->via.u64 == value);
}

static void expect_int(const msgpack_object *map, uint32_t index, const char *key, int64_t value)
{
    const msgpack_object *object = expect_key(map, index, key);
    if (value >= 0) {
        assert_int_equal(object->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        assert_true(object->via.u64 == (uint64_t)value);
    } else {
        assert_int_equal(object->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
        assert_true(object->via.i64 == value);
    }
}

static void expect_bool(const msgpack_object *map, uint32_t index, const char *key, bool value)
{
    const msgpack_object *object = expect_key(map, index, key);
    assert_int_equal(object->type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(object->via.boolean, value);
}

/* "resolves": an array of `count` strings, ids[i] each. */
static void expect_ids(const msgpack_object *map, uint32_t index, uint32_t count,
                       const char *const *ids)
{
    const msgpack_object *object = expect_key(map, index, "resolves");
    assert_int_equal(object->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(object->via.array.size, count);
    for (uint32_t i = 0; i < count; i++) {
        const msgpack_object *id = &object->via.array.ptr[i];
        assert_int_equal(id->type, MSGPACK_OBJECT_STR);
        assert_int_equal(id->via.str.size, strlen(ids[i]));
        assert_memory_equal(id->via.str.ptr, ids[i], strlen(ids[i]));
    }
}

/* Unpacks exactly one map from data/size into `unpacked`. */
static const msgpack_object *unpack_map(msgpack_unpacked *unpacked, const void *data, size_t size,
                                        uint32_t expected_keys)
{
    size_t offset = 0;
    msgpack_unpacked_init(unpacked);
    assert_int_equal(msgpack_unpack_next(unpacked, data, size, &offset), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(offset, size);
    assert_int_equal(unpacked->data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(unpacked->data.via.map.size, expected_keys);
    return &unpacked->data;
}

static void test_encode_firing(void **state)
{
    (void)state;
    struct alert alert;
    char err[200];
    assert_int_equal(parse_exact("4f1c0a", DAY_RULE_PAYLOAD, &alert, err, sizeof err), 0);
    const char *text = "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余3天，"
                       "请及时解除或变更强制措施。";
    void *data = NULL;
    size_t size = 0;
    const char *basis = "《中华人民共和国刑事诉讼法》第七十九条：“取保候审最长不得超过十二个月”";
    assert_int_equal(alert_encode(&alert, text, basis, INT64_C(1741708801234), &data, &size), 0);
    assert_non_null(data);

    msgpack_unpacked unpacked;
    const msgpack_object *map = unpack_map(&unpacked, data, size, 19);
    expect_uint(map, 0, "v", 1);
    expect_str(map, 1, "alert_id", "4f1c0a");
    /* SHA-1("bail_expiry|QB1"), the first 32 hex digits */
    expect_str(map, 2, "clock_id", "1e7b2cce27d87ea900d887774525a7ea");
    expect_str(map, 3, "rule", "bail_expiry");
    expect_str(map, 4, "level", "orange");
    expect_str(map, 5, "state", "firing");
    expect_uint(map, 6, "seq", 0);
    expect_str(map, 7, "unit", "500112-XJ01");
    expect_str(map, 8, "case", "A123");
    expect_str(map, 9, "ref", "QB1");
    expect_str(map, 10, "subject", "P9");
    expect_int(map, 11, "started_at", STARTED_2024_03_15_1000);
    expect_int(map, 12, "deadline", DEADLINE_2025_03_15_0000);
    expect_int(map, 13, "due_at", DUE_2025_03_12_0000);
    expect_int(map, 14, "emitted_at", INT64_C(1741708801234));
    expect_str(map, 15, "cause", "ev-start-1");
    expect_bool(map, 16, "provisional", false);
    expect_str(map, 17, "basis", basis);
    expect_str(map, 18, "text", text);
    msgpack_unpacked_destroy(&unpacked);
    free(data);
}

static void test_encode_resolved(void **state)
{
    (void)state;
    struct alert alert;
    char err[200];
    char payload[512];
    snprintf(payload, sizeof payload,
             "detention_unexecuted|red|resolved|0|500112-XJ01||JL3||0|1736553600000|"
             "1736640000000|ev-decided-3|ev-executed-3|1|");
    assert_int_equal(parse_exact("9e2b", payload, &alert, err, sizeof err), 0);
    const char *text = "应拘未拘（编号JL3）已办结，超期1天，预警解除。";
    void *data = NULL;
    size_t size = 0;
    assert_int_equal(alert_encode(&alert, text, "本局执法惯例", INT64_C(1736640000500), &data, &size),
                     0);

    msgpack_unpacked unpacked;
    const msgpack_object *map = unpack_map(&unpacked, data, size, 22);
    expect_uint(map, 0, "v", 1);
    expect_str(map, 1, "alert_id", "9e2b");
    /* SHA-1("detention_unexecuted|JL3"), the first 32 hex digits */
    expect_str(map, 2, "clock_id", "2aa7c21f4097fda168b5da89b483d30e");
    expect_str(map, 3, "rule", "detention_unexecuted");
    expect_str(map, 4, "level", "red");
    expect_str(map, 5, "state", "resolved");
    expect_uint(map, 6, "seq", 0);
    expect_str(map, 7, "unit", "500112-XJ01");
    expect_str(map, 8, "case", "");
    expect_str(map, 9, "ref", "JL3");
    expect_str(map, 10, "subject", "");
    expect_int(map, 11, "started_at", 0);
    expect_int(map, 12, "deadline", DEADLINE_2025_01_11_0800);
    expect_int(map, 13, "due_at", DUE_2025_01_12_0800);
    expect_int(map, 14, "emitted_at", INT64_C(1736640000500));
    expect_str(map, 15, "cause", "ev-decided-3");
    expect_bool(map, 16, "provisional", false);
    expect_str(map, 17, "resolved_by", "ev-executed-3");
    expect_bool(map, 18, "late", true);
    expect_ids(map, 19, 0, NULL); /* a version 2 payload: resolves nothing */
    expect_str(map, 20, "basis", "本局执法惯例");
    expect_str(map, 21, "text", text);
    msgpack_unpacked_destroy(&unpacked);
    free(data);

    /* On time: late is false, and a large seq keeps its value. */
    alert.late = false;
    alert.seq = INT64_MAX;
    assert_int_equal(alert_encode(&alert, "", "", 0, &data, &size), 0);
    map = unpack_map(&unpacked, data, size, 22);
    expect_uint(map, 6, "seq", (uint64_t)INT64_MAX);
    expect_int(map, 14, "emitted_at", 0);
    expect_bool(map, 16, "provisional", false);
    expect_bool(map, 18, "late", false);
    expect_str(map, 21, "text", "");
    msgpack_unpacked_destroy(&unpacked);
    free(data);

    /* A deadline that depends on provisional calendar years says so. */
    alert.provisional = true;
    assert_int_equal(alert_encode(&alert, "", "", 0, &data, &size), 0);
    map = unpack_map(&unpacked, data, size, 22);
    expect_bool(map, 16, "provisional", true);
    msgpack_unpacked_destroy(&unpacked);
    free(data);
}

/* A version 3 resolution names the ids it resolves, in the payload's order. */
static void test_encode_resolves(void **state)
{
    (void)state;
    static const char *const ids[2] = {"0123456789abcdef0123456789abcdef",
                                       "fedcba9876543210fedcba9876543210"};
    struct alert alert;
    char err[200], payload[512];
    snprintf(payload, sizeof payload, "@3|%s|%s,%s", HOUR_RULE_PAYLOAD, ids[0], ids[1]);
    assert_int_equal(parse_exact("9e2b", payload, &alert, err, sizeof err), 0);
    assert_string_equal(alert.resolves, "0123456789abcdef0123456789abcdef,"
                                        "fedcba9876543210fedcba9876543210");
    void *data = NULL;
    size_t size = 0;
    assert_int_equal(alert_encode(&alert, "", "", 0, &data, &size), 0);
    msgpack_unpacked unpacked;
    const msgpack_object *map = unpack_map(&unpacked, data, size, 22);
    expect_ids(map, 19, 2, ids);
    msgpack_unpacked_destroy(&unpacked);
    free(data);
}

/* A firing alert whose deadline is provisional ends with the caveat; a
 * resolution does not carry it. */
static void test_text_of_a_provisional_deadline(void **state)
{
    (void)state;
    struct alert alert;
    char err[200], text[1024];
    assert_int_equal(parse_exact("4f1c0a", DAY_RULE_PAYLOAD, &alert, err, sizeof err), 0);
    alert.provisional = true;
    alert_format_text(&alert, &BAIL_WORDING, text, sizeof text);
    assert_string_equal(text, "取保候审（案件A123，人员P9）将于2025-03-14到期，剩余3天，"
                              "请及时解除或变更强制措施。"
                              "（到期日按暂定节假日安排计算，以国务院正式安排为准。）");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_day_rule),
        cmocka_unit_test(test_text_of_a_provisional_deadline),
        cmocka_unit_test(test_parse_versions_2_and_3),
        cmocka_unit_test(test_reject_resolves),
        cmocka_unit_test(test_encode_resolves),
        cmocka_unit_test(test_parse_hour_rule),
        cmocka_unit_test(test_parse_edges_accepted),
        cmocka_unit_test(test_parse_reads_only_payload_size),
        cmocka_unit_test(test_reject_field_count),
        cmocka_unit_test(test_reject_level),
        cmocka_unit_test(test_text_violation),
        cmocka_unit_test(test_reject_state),
        cmocka_unit_test(test_reject_seq),
        cmocka_unit_test(test_reject_other_numbers),
        cmocka_unit_test(test_reject_long_text),
        cmocka_unit_test(test_reject_empty_or_nul_text),
        cmocka_unit_test(test_reject_late),
        cmocka_unit_test(test_parse_version_1),
        cmocka_unit_test(test_reject_unknown_version),
        cmocka_unit_test(test_unknown_version_reason_reads_only_payload_size),
        cmocka_unit_test(test_format_payload_round_trip),
        cmocka_unit_test(test_text_yellow_day_rule),
        cmocka_unit_test(test_text_orange_day_rule),
        cmocka_unit_test(test_text_red_first),
        cmocka_unit_test(test_text_red_repeat),
        cmocka_unit_test(test_text_red_states_what_the_law_requires),
        cmocka_unit_test(test_text_red_repeat_within_a_day),
        cmocka_unit_test(test_text_resolved_late),
        cmocka_unit_test(test_text_resolved_on_time),
        cmocka_unit_test(test_text_hour_rule),
        cmocka_unit_test(test_text_sent_late_counts_from_sending),
        cmocka_unit_test(test_text_hour_rule_sent_late),
        cmocka_unit_test(test_text_hour_rule_red),
        cmocka_unit_test(test_text_without_subject),
        cmocka_unit_test(test_text_without_case),
        cmocka_unit_test(test_text_truncated_at_character_boundary),
        cmocka_unit_test(test_text_truncated_with_four_byte_characters),
        cmocka_unit_test(test_encode_firing),
        cmocka_unit_test(test_encode_resolved),
    };
    return cmocka_run_group_tests(tests, select_shanghai, NULL);
}
