/* Unit tests for daemon/clock_record.c, the clock record of
 * <prefix>clock:<rule>:<key> (include/formats.h): a version 0 record (no
 * tag, as releases up to 2026-12-03 wrote it) and a version 1 record ("@1|")
 * decode to the same struct, field by field, with no extension counted; a
 * version 2 record ("@2|") adds the extension counts, and a version 3 one
 * ("@3|") has the same fields; a version 4 one ("@4|") too, its numbers in
 * base 36 and those at their defaults empty, and it decodes to the same
 * struct as the version 3 record it replaces; a version 5 one ("@5|") has
 * version 4's fields (its due entry is in a sharded bucket); each remembers
 * the version it was read in; encoding writes version 5 and decodes back to
 * the same clock; optional fields (last day, paused since,
 * next due) round-trip as empty; and every malformation is refused with its
 * exact reason: a wrong field count, an unknown version tag, bad or
 * out-of-range numbers, `fired` outside -1..2, empty or NUL-holding text.
 * Decoding reads exactly `size` bytes: what follows them is not the
 * record's, in the error text neither. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock_record.h"

/* A bail clock started 2026-11-30 10:00 +08:00, last day 2026-11-29 (day
 * 20786), deadline 1827504000000, next due 1826208000000, nothing fired. */
#define V0_RECORD                                                                              \
    "500112-XJ01|A1|P9|e1|1796004000000|20786|1827504000000|0||-1|0|1826208000000|events:0"

/* An hour clock: no last day, paused since 1700003600000 after an hour
 * paused before, red repeat 5 next, not armed. */
#define HOUR_RECORD                                                                            \
    "@3|U1||||1700000000000||1700086400000|3600000|1700003600000|2|5||k:1|2|31"
/* The same in version 4: 1700000000000 is loyw3v28 in base 36, 3600000
 * 255s0, 31 v. */
#define HOUR_RECORD_V4 "@4|U1||||loyw3v28||lp0bjpq8|255s0|loyy90u8|2|5||k:1|2|v"
/* V0_RECORD in version 4: 1796004000000 mx2merk0, day 20786 g1e,
 * 1827504000000 nbjkp340, 1826208000000 nay53b40; paused_total 0, fired -1,
 * seq 0 and the extension counts 0 left empty. */
#define V0_RECORD_V4                                                                           \
    "@4|500112-XJ01|A1|P9|e1|mx2merk0|g1e|nbjkp340|||||nay53b40|events:0||"
/* Version 5 has version 4's fields (its due entry is in a sharded bucket)
 * and writes a whole number of minutes as its sixty-thousandths and '.':
 * 3600000 is 1o., 1796004000000 htkrc., 1827504000000 i4tuo., 1826208000000
 * i4d6o.; the other instants here are not whole minutes. */
#define HOUR_RECORD_V5 "@5|U1||||loyw3v28||lp0bjpq8|1o.|loyy90u8|2|5||k:1|2|v"
#define V0_RECORD_V5 "@5|500112-XJ01|A1|P9|e1|htkrc.|g1e|i4tuo.|||||i4d6o.|events:0||"
/* A UUID cause: "~" and its 16 bytes in base64url (RFC 4648 section 5). */
#define UUID_CAUSE "0a1b2c3d-1234-4abc-a123-0123456789ab"
#define UUID_CAUSE_V5 "~ChssPRI0SryhIwEjRWeJqw"

/* Two records hold the same clock: equal but for the version each was
 * decoded from. */
static void expect_same_clock(const struct clock_record *a, const struct clock_record *b)
{
    struct clock_record left = *a, right = *b;
    left.version = right.version = 0;
    assert_memory_equal(&left, &right, sizeof left);
}

/* Decodes from a heap copy without a terminating NUL, so a read past size
 * is an out-of-bounds read under AddressSanitizer. */
static int decode_exact(const char *value, struct clock_record *out, char *err,
                        size_t err_size)
{
    size_t size = strlen(value);
    char *copy = malloc(size > 0 ? size : 1);
    assert_non_null(copy);
    // NOLINTNEXTLINE(bugprone-not-null-terminated-result): deliberately unterminated
    memcpy(copy, value, size);
    int result = clock_record_decode(copy, size, out, err, err_size);
    free(copy);
    return result;
}

static void expect_v0_fields(const struct clock_record *record)
{
    assert_string_equal(record->unit, "500112-XJ01");
    assert_string_equal(record->case_number, "A1");
    assert_string_equal(record->subject, "P9");
    assert_string_equal(record->cause, "e1");
    assert_true(record->started_at_ms == INT64_C(1796004000000));
    assert_true(record->has_last_day);
    assert_int_equal(record->last_day, 20786);
    assert_true(record->base_deadline_ms == INT64_C(1827504000000));
    assert_true(record->paused_total_ms == 0);
    assert_false(record->paused);
    assert_true(record->paused_since_ms == 0);
    assert_int_equal(record->fired, -1);
    assert_true(record->seq == 0);
    assert_true(record->armed);
    assert_true(record->next_due_ms == INT64_C(1826208000000));
    assert_string_equal(record->partition, "events:0");
    assert_true(clock_record_deadline(record) == INT64_C(1827504000000));
}

static void test_decode_version_0(void **state)
{
    (void)state;
    struct clock_record record;
    char err[200] = "";
    assert_int_equal(decode_exact(V0_RECORD, &record, err, sizeof err), 0);
    assert_string_equal(err, "");
    expect_v0_fields(&record);
}

static void test_decode_version_1_same_fields(void **state)
{
    (void)state;
    struct clock_record v0, v1;
    char err[200];
    assert_int_equal(decode_exact(V0_RECORD, &v0, err, sizeof err), 0);
    assert_int_equal(decode_exact("@1|" V0_RECORD, &v1, err, sizeof err), 0);
    expect_v0_fields(&v1);
    assert_int_equal(v0.version, 0);
    assert_int_equal(v1.version, 1);
    expect_same_clock(&v0, &v1);
}

/* Version 3 changed only the outbox payload: a version 2 record reads as
 * the same record. */
static void test_decode_version_2_same_fields(void **state)
{
    (void)state;
    struct clock_record v2, v3;
    char err[200];
    assert_int_equal(decode_exact("@2|" V0_RECORD "|1|30", &v2, err, sizeof err), 0);
    assert_int_equal(decode_exact("@3|" V0_RECORD "|1|30", &v3, err, sizeof err), 0);
    assert_int_equal(v2.extensions, 1);
    assert_int_equal(v2.extended_days, 30);
    assert_int_equal(v2.version, 2);
    assert_int_equal(v3.version, 3);
    expect_same_clock(&v2, &v3);
}

static void test_encode_writes_version_5(void **state)
{
    (void)state;
    struct clock_record record, again;
    char err[200], buf[CLOCK_RECORD_MAX];
    assert_int_equal(decode_exact(V0_RECORD, &record, err, sizeof err), 0);
    assert_int_equal(record.extensions, 0);
    assert_int_equal(record.extended_days, 0);
    int length = clock_record_encode(&record, buf, sizeof buf);
    assert_string_equal(buf, V0_RECORD_V5);
    assert_int_equal(length, (int)strlen(V0_RECORD_V5));
    /* 23 bytes fewer than the same record in version 3 in version 4, 29 in 5 */
    assert_int_equal(strlen("@3|" V0_RECORD "|0|0") - strlen(V0_RECORD_V4), 23);
    assert_int_equal(strlen("@3|" V0_RECORD "|0|0") - strlen(V0_RECORD_V5), 29);
    assert_int_equal(decode_exact(buf, &again, err, sizeof err), 0);
    assert_int_equal(again.version, 5);
    expect_same_clock(&record, &again);
}

/* A version 3 record, the version 4 one a daemon of that version wrote for
 * it and the version 5 one written now hold the same clock. */
static void test_decode_version_4_same_clock(void **state)
{
    (void)state;
    struct clock_record v3, v4;
    char err[200];
    assert_int_equal(decode_exact("@3|" V0_RECORD "|0|0", &v3, err, sizeof err), 0);
    assert_int_equal(decode_exact(V0_RECORD_V4, &v4, err, sizeof err), 0);
    expect_v0_fields(&v4);
    assert_int_equal(v4.version, 4);
    expect_same_clock(&v3, &v4);
    assert_int_equal(decode_exact(HOUR_RECORD, &v3, err, sizeof err), 0);
    assert_int_equal(decode_exact(HOUR_RECORD_V4, &v4, err, sizeof err), 0);
    expect_same_clock(&v3, &v4);
    struct clock_record v5;
    assert_int_equal(decode_exact(HOUR_RECORD_V5, &v5, err, sizeof err), 0);
    assert_int_equal(v5.version, 5);
    expect_same_clock(&v4, &v5);
}

/* Instants before 1970 and at the bounds the engine allows (+-2^62 ms)
 * round-trip; a minus sign goes before the digits. */
static void test_version_4_numbers_round_trip(void **state)
{
    (void)state;
    static const int64_t instants[] = {0, -1, -35, 36, INT64_C(-4611686018427387904),
                                       INT64_C(4611686018427387904)};
    for (size_t i = 0; i < sizeof instants / sizeof instants[0]; i++) {
        struct clock_record record, again;
        char err[200], buf[CLOCK_RECORD_MAX];
        assert_int_equal(decode_exact(HOUR_RECORD, &record, err, sizeof err), 0);
        record.started_at_ms = instants[i];
        record.base_deadline_ms = instants[i];
        record.paused_since_ms = instants[i];
        assert_true(clock_record_encode(&record, buf, sizeof buf) > 0);
        assert_int_equal(decode_exact(buf, &again, err, sizeof err), 0);
        expect_same_clock(&record, &again);
    }
    struct clock_record record;
    char err[200], buf[CLOCK_RECORD_MAX];
    assert_int_equal(decode_exact(HOUR_RECORD, &record, err, sizeof err), 0);
    record.started_at_ms = -71;
    assert_true(clock_record_encode(&record, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "|-1z|")); /* -(36 + 35) */
}


static void test_optional_fields_round_trip(void **state)
{
    (void)state;
    struct clock_record record, again;
    char err[200], buf[CLOCK_RECORD_MAX];
    assert_int_equal(decode_exact(HOUR_RECORD, &record, err, sizeof err), 0);
    assert_string_equal(record.case_number, "");
    assert_string_equal(record.subject, "");
    assert_string_equal(record.cause, "");
    assert_false(record.has_last_day);
    assert_int_equal(record.last_day, 0);
    assert_true(record.paused);
    assert_true(record.paused_since_ms == INT64_C(1700003600000));
    assert_true(record.paused_total_ms == 3600000);
    assert_int_equal(record.fired, 2);
    assert_true(record.seq == 5);
    assert_false(record.armed);
    assert_string_equal(record.partition, "k:1");
    assert_int_equal(record.extensions, 2);
    assert_int_equal(record.extended_days, 31);
    /* the effective deadline adds the time paused */
    assert_true(clock_record_deadline(&record) == INT64_C(1700090000000));
    assert_int_equal(clock_record_encode(&record, buf, sizeof buf), (int)strlen(HOUR_RECORD_V5));
    assert_string_equal(buf, HOUR_RECORD_V5);
    assert_int_equal(decode_exact(buf, &again, err, sizeof err), 0);
    expect_same_clock(&record, &again);
}

static void test_encode_needs_room(void **state)
{
    (void)state;
    struct clock_record record;
    char err[200], buf[CLOCK_RECORD_MAX];
    assert_int_equal(decode_exact(HOUR_RECORD, &record, err, sizeof err), 0);
    size_t length = strlen(HOUR_RECORD_V5);
    assert_int_equal(clock_record_encode(&record, buf, length), -1);
    assert_int_equal(clock_record_encode(&record, buf, length + 1), (int)length);
    assert_string_equal(buf, HOUR_RECORD_V5);
}

/* V0_RECORD with field `index` (0-based) replaced by `value`. */
static void with_field(size_t index, const char *value, char *out, size_t out_size)
{
    const char *record = V0_RECORD;
    const char *start = record;
    for (size_t i = 0; i < index; i++)
        start = strchr(start, '|') + 1;
    const char *end = strchr(start, '|');
    if (end == NULL)
        end = start + strlen(start);
    int written = snprintf(out, out_size, "%.*s%s%s", (int)(start - record), record, value, end);
    assert_true(written > 0 && (size_t)written < out_size);
}

static void expect_rejected(const char *value, const char *expected_err)
{
    struct clock_record record;
    char err[200] = "";
    if (decode_exact(value, &record, err, sizeof err) != -1)
        fail_msg("'%s' decoded", value);
    assert_string_equal(err, expected_err);
}

static void expect_field_rejected(size_t index, const char *value, const char *expected_err)
{
    char record[512];
    with_field(index, value, record, sizeof record);
    expect_rejected(record, expected_err);
    /* the same under the version 1 tag */
    char tagged[520];
    snprintf(tagged, sizeof tagged, "@1|%s", record);
    expect_rejected(tagged, expected_err);
}

static void test_reject_field_count(void **state)
{
    (void)state;
    /* 12 fields: the partition and its separator missing */
    expect_rejected("500112-XJ01|A1|P9|e1|1796004000000|20786|1827504000000|0||-1|0|1826208000000",
                    "12 fields, expected 13");
    expect_rejected(V0_RECORD "|", "more than 13 fields");
    expect_rejected("@1|" V0_RECORD "|x", "more than 13 fields");
    expect_rejected("", "1 fields, expected 13");
    expect_rejected("@1|", "1 fields, expected 13");
    /* versions 3 and 2 have the extension counts; version 1 has not */
    expect_rejected("@3|" V0_RECORD, "13 fields, expected 15");
    expect_rejected("@2|" V0_RECORD, "13 fields, expected 15");
    expect_rejected("@1|" V0_RECORD "|0|0", "more than 13 fields");
    expect_rejected("@2|" V0_RECORD "|-1|0", "extensions is out of range");
    expect_rejected("@2|" V0_RECORD "|1|x", "extended_days is not a decimal integer");
    expect_rejected("@2|" V0_RECORD "|1|", "extended_days is not a decimal integer");
}

static void test_reject_unknown_version(void **state)
{
    (void)state;
    expect_rejected("@9|" V0_RECORD, "clock record format @9|50011 is not one this daemon reads");
    expect_rejected("@1" V0_RECORD, "clock record format @1500112 is not one this daemon reads");
}

/* The reason names only the record's own bytes: what follows `size` in the
 * caller's buffer is not part of it. */
static void test_unknown_version_reason_reads_only_size(void **state)
{
    (void)state;
    static const char buffer[] = "@7ZZZZZZZZZZ";
    struct clock_record record;
    char err[200] = "";
    assert_int_equal(clock_record_decode(buffer, 2, &record, err, sizeof err), -1);
    assert_string_equal(err, "clock record format @7 is not one this daemon reads");
    assert_int_equal(clock_record_decode(buffer, 1, &record, err, sizeof err), -1);
    assert_string_equal(err, "clock record format @ is not one this daemon reads");
}

static void test_reject_bad_numbers(void **state)
{
    (void)state;
    expect_field_rejected(4, "17960040000x0", "started_at is not a decimal integer");
    expect_field_rejected(4, "", "started_at is not a decimal integer");
    expect_field_rejected(4, "+1796004000000", "started_at is not a decimal integer");
    expect_field_rejected(4, "4611686018427387905", "started_at is out of range");
    expect_field_rejected(5, "2147483648", "last_day is out of range");
    expect_field_rejected(5, "2026-11-29", "last_day is not a decimal integer");
    expect_field_rejected(6, "", "base_deadline is not a decimal integer");
    expect_field_rejected(6, "-4611686018427387905", "base_deadline is out of range");
    expect_field_rejected(7, "-1", "paused_total is out of range");
    expect_field_rejected(7, "", "paused_total is not a decimal integer");
    expect_field_rejected(8, " 1", "paused_since is not a decimal integer");
    expect_field_rejected(10, "-1", "seq is out of range");
    expect_field_rejected(10, "", "seq is not a decimal integer");
    expect_field_rejected(11, "1e3", "next_due is not a decimal integer");
    expect_field_rejected(11, "99999999999999999999", "next_due is out of range");
}

static void test_fired_is_minus_1_to_2(void **state)
{
    (void)state;
    expect_field_rejected(9, "3", "fired is out of range");
    expect_field_rejected(9, "-2", "fired is out of range");
    expect_field_rejected(9, "", "fired is not a decimal integer");
    static const char *const accepted[] = {"-1", "0", "1", "2"};
    for (int i = 0; i < 4; i++) {
        char value[512], err[200];
        struct clock_record record;
        with_field(9, accepted[i], value, sizeof value);
        assert_int_equal(decode_exact(value, &record, err, sizeof err), 0);
        assert_int_equal(record.fired, i - 1);
    }
}

static void test_reject_text(void **state)
{
    (void)state;
    static const char too_long[] =
        "01234567890123456789012345678901234567890123456789012345678901234";
    assert_int_equal(strlen(too_long), 65);
    expect_field_rejected(0, "", "unit is empty");
    expect_field_rejected(0, too_long, "unit is 65 bytes, at most 64 allowed");
    expect_field_rejected(1, too_long, "case is 65 bytes, at most 64 allowed");
    expect_field_rejected(2, too_long, "subject is 65 bytes, at most 64 allowed");
    expect_field_rejected(3, too_long, "cause is 65 bytes, at most 64 allowed");
    expect_field_rejected(12, "", "partition is empty");

    /* "A\0x" as the case: the copy would end early, so it is refused */
    char value[512];
    with_field(1, "A#x", value, sizeof value);
    size_t size = strlen(value);
    *strchr(value, '#') = '\0';
    struct clock_record record;
    char err[200];
    assert_int_equal(clock_record_decode(value, size, &record, err, sizeof err), -1);
    assert_string_equal(err, "case contains a NUL byte");
}

static void test_version_4_rejects(void **state)
{
    (void)state;
    /* HOUR_RECORD_V4 without its pause, its repeats and its extensions,
     * field by field: started_at and base_deadline have no default; digits
     * are 0-9a-z only (no capitals, '+' or space); bounds as in version 3 */
    expect_rejected("@4|U1||||||lp0bjpq8||||||k:1||",
                    "started_at is empty");
    expect_rejected("@4|U1||||loyw3v28||||||||k:1||",
                    "base_deadline is empty");
    expect_rejected("@4|U1||||LOYW3V28||lp0bjpq8||||||k:1||",
                    "started_at is not a base-36 integer");
    expect_rejected("@4|U1||||+loyw3v28||lp0bjpq8||||||k:1||",
                    "started_at is not a base-36 integer");
    expect_rejected("@4|U1||||loyw3v28||lp0bjpq8| 1|||||k:1||",
                    "paused_total is not a base-36 integer");
    expect_rejected("@4|U1||||loyw3v28||lp0bjpq8||||-||k:1||",
                    "seq is not a base-36 integer");
    expect_rejected("@4|U1||||z1z1z1z1z1z1||lp0bjpq8||||||k:1||",
                    "started_at is out of range");
    expect_rejected("@4|U1||||loyw3v28||lp0bjpq8|-1|||||k:1||",
                    "paused_total is out of range");
    expect_rejected("@4|U1||||loyw3v28||lp0bjpq8|||3|||k:1||",
                    "fired is out of range");
    expect_rejected("@4|U1||||loyw3v28||lp0bjpq8|||-2|||k:1||",
                    "fired is out of range");
    expect_rejected("@4|U1||||loyw3v28||lp0bjpq8||||||k:1||-1",
                    "extended_days is out of range");
    expect_rejected("@4|U1||||loyw3v28||lp0bjpq8||||||k:1|", "14 fields, expected 15");
    /* a version 3 record's decimal digits read as base 36 in version 4 */
    expect_rejected("@4|" V0_RECORD "|0|0", "started_at is out of range");
}

/* The cause, the rest of its array zeroed as a decoded record's is. */
static void set_cause(struct clock_record *record, const char *cause)
{
    memset(record->cause, 0, sizeof record->cause);
    snprintf(record->cause, sizeof record->cause, "%s", cause);
}

/* Version 5: a UUID cause in 23 characters and back; a cause that is not a
 * canonical UUID (capitals, another length) as it is; minutes and
 * milliseconds alike round-trip. */
static void test_version_5_compacts_uuid_causes_and_minutes(void **state)
{
    (void)state;
    struct clock_record record, again;
    char err[200], buf[CLOCK_RECORD_MAX];
    assert_int_equal(decode_exact(V0_RECORD, &record, err, sizeof err), 0);
    set_cause(&record, UUID_CAUSE);
    assert_true(clock_record_encode(&record, buf, sizeof buf) > 0);
    assert_string_equal(buf, "@5|500112-XJ01|A1|P9|" UUID_CAUSE_V5
                             "|htkrc.|g1e|i4tuo.|||||i4d6o.|events:0||");
    assert_int_equal(decode_exact(buf, &again, err, sizeof err), 0);
    assert_string_equal(again.cause, UUID_CAUSE);
    expect_same_clock(&record, &again);
    static const char *const kept[] = {"0A1B2C3D-1234-4ABC-A123-0123456789AB",
                                       "0a1b2c3d-1234-4abc-a123-0123456789a",
                                       "0a1b2c3d_1234-4abc-a123-0123456789ab", "e1"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        set_cause(&record, kept[i]);
        assert_true(clock_record_encode(&record, buf, sizeof buf) > 0);
        assert_non_null(strstr(buf, kept[i]));
        assert_int_equal(decode_exact(buf, &again, err, sizeof err), 0);
        assert_string_equal(again.cause, kept[i]);
    }
    /* a millisecond past the minute is written in milliseconds */
    record.base_deadline_ms += 1;
    record.paused_total_ms = 120000;
    assert_true(clock_record_encode(&record, buf, sizeof buf) > 0);
    assert_non_null(strstr(buf, "|nbjkp341|2.|"));
    assert_int_equal(decode_exact(buf, &again, err, sizeof err), 0);
    expect_same_clock(&record, &again);
}

static void test_version_5_rejects(void **state)
{
    (void)state;
    expect_rejected("@5|U1|||~ChssPRI0SryhIwEjRWeJq|htkrc.||i4tuo.||||||k:1||",
                    "cause '~ChssPRI0SryhIwEjRWeJq' is not a UUID in base64url");
    /* 'x' leaves bits set past the 128 */
    expect_rejected("@5|U1|||~ChssPRI0SryhIwEjRWeJqx|htkrc.||i4tuo.||||||k:1||",
                    "cause '~ChssPRI0SryhIwEjRWeJqx' is not a UUID in base64url");
    expect_rejected("@5|U1|||~ChssPRI0Sryh+wEjRWeJqw|htkrc.||i4tuo.||||||k:1||",
                    "cause '~ChssPRI0Sryh+wEjRWeJqw' is not a UUID in base64url");
    expect_rejected("@5|U1||||.||i4tuo.||||||k:1||", "started_at '.' holds no minutes");
    expect_rejected("@5|U1||||htkrc..||i4tuo.||||||k:1||",
                    "started_at is not a base-36 integer");
    expect_rejected("@5|U1||||htkrc.||i4tuo.|-1.|||||k:1||",
                    "paused_total -1 minutes is out of range");
    /* a cause beginning with '~' is version 5's compact UUID, no event id */
    expect_rejected("@4|U1|||~e1|htkrc||i4tuo||||||k:1||", "cause '~e1' begins with '~'");
    /* minutes are version 5's: a version 4 record has none */
    expect_rejected("@4|U1||||htkrc.||i4tuo.||||||k:1||", "started_at is not a base-36 integer");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_version_0),
        cmocka_unit_test(test_decode_version_1_same_fields),
        cmocka_unit_test(test_decode_version_2_same_fields),
        cmocka_unit_test(test_encode_writes_version_5),
        cmocka_unit_test(test_decode_version_4_same_clock),
        cmocka_unit_test(test_version_4_numbers_round_trip),
        cmocka_unit_test(test_version_4_rejects),
        cmocka_unit_test(test_version_5_compacts_uuid_causes_and_minutes),
        cmocka_unit_test(test_version_5_rejects),
        cmocka_unit_test(test_optional_fields_round_trip),
        cmocka_unit_test(test_encode_needs_room),
        cmocka_unit_test(test_reject_field_count),
        cmocka_unit_test(test_reject_unknown_version),
        cmocka_unit_test(test_unknown_version_reason_reads_only_size),
        cmocka_unit_test(test_reject_bad_numbers),
        cmocka_unit_test(test_fired_is_minus_1_to_2),
        cmocka_unit_test(test_reject_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
