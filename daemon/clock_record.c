/* Clock records (see clock_record.h and include/formats.h). */
#include "clock_record.h"

#include "fields.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Instants a record may hold: within +-2^62 ms keeps every sum the engine
 * makes (deadline + pauses + repeats) far from overflow. */
#define INSTANT_LIMIT (INT64_C(1) << 62)

static int decode_numbers(const struct field *f, struct clock_record *out, char *err,
                          size_t err_size)
{
    int64_t last_day = 0, fired = 0;
    if (field_parse_decimal(f[CLOCK_FIELD_STARTED_AT], "started_at", -INSTANT_LIMIT,
                            INSTANT_LIMIT, &out->started_at_ms, err, err_size) != 0 ||
        field_parse_optional(f[CLOCK_FIELD_LAST_DAY], "last_day", INT32_MIN, INT32_MAX,
                             &out->has_last_day, &last_day, err, err_size) != 0 ||
        field_parse_decimal(f[CLOCK_FIELD_BASE_DEADLINE], "base_deadline", -INSTANT_LIMIT,
                            INSTANT_LIMIT, &out->base_deadline_ms, err, err_size) != 0 ||
        field_parse_decimal(f[CLOCK_FIELD_PAUSED_TOTAL], "paused_total", 0, INSTANT_LIMIT,
                            &out->paused_total_ms, err, err_size) != 0 ||
        field_parse_optional(f[CLOCK_FIELD_PAUSED_SINCE], "paused_since", -INSTANT_LIMIT,
                             INSTANT_LIMIT, &out->paused, &out->paused_since_ms, err,
                             err_size) != 0 ||
        field_parse_decimal(f[CLOCK_FIELD_FIRED], "fired", -1, 2, &fired, err, err_size) != 0 ||
        field_parse_decimal(f[CLOCK_FIELD_SEQ], "seq", 0, INSTANT_LIMIT, &out->seq, err,
                            err_size) != 0 ||
        field_parse_optional(f[CLOCK_FIELD_NEXT_DUE], "next_due", -INSTANT_LIMIT, INSTANT_LIMIT,
                             &out->armed, &out->next_due_ms, err, err_size) != 0)
        return -1;
    out->last_day = (int32_t)last_day;
    out->fired = (int32_t)fired;
    return 0;
}

int clock_record_decode(const char *value, size_t size, struct clock_record *out, char *err,
                        size_t err_size)
{
    memset(out, 0, sizeof *out);
    int version;
    if (fields_strip_version(&value, &size, "clock record", &version, err, err_size) != 0)
        return -1;
    struct field f[CLOCK_FIELD_COUNT];
    size_t count = version >= 2 ? CLOCK_FIELD_COUNT : CLOCK_FIELD_COUNT_V1;
    if (fields_split(value, size, f, count, err, err_size) != 0 ||
        field_copy_text(f[CLOCK_FIELD_UNIT], "unit", false, out->unit, sizeof out->unit, err,
                        err_size) != 0 ||
        field_copy_text(f[CLOCK_FIELD_CASE], "case", true, out->case_number,
                        sizeof out->case_number, err, err_size) != 0 ||
        field_copy_text(f[CLOCK_FIELD_SUBJECT], "subject", true, out->subject,
                        sizeof out->subject, err, err_size) != 0 ||
        field_copy_text(f[CLOCK_FIELD_CAUSE], "cause", true, out->cause, sizeof out->cause, err,
                        err_size) != 0 ||
        field_copy_text(f[CLOCK_FIELD_PARTITION], "partition", false, out->partition,
                        sizeof out->partition, err, err_size) != 0)
        return -1;
    if (decode_numbers(f, out, err, err_size) != 0)
        return -1;
    if (version < 2)
        return 0; /* no extension counted */
    int64_t extensions = 0, extended_days = 0;
    if (field_parse_decimal(f[CLOCK_FIELD_EXTENSIONS], "extensions", 0, INT32_MAX, &extensions,
                            err, err_size) != 0 ||
        field_parse_decimal(f[CLOCK_FIELD_EXTENDED_DAYS], "extended_days", 0, INT32_MAX,
                            &extended_days, err, err_size) != 0)
        return -1;
    out->extensions = (int32_t)extensions;
    out->extended_days = (int32_t)extended_days;
    return 0;
}

/* "" for an absent optional number, else its decimal text. */
static const char *optional_text(bool present, int64_t value, char *buf, size_t size)
{
    if (!present)
        return "";
    snprintf(buf, size, "%" PRId64, value);
    return buf;
}

int clock_record_encode(const struct clock_record *record, char *buf, size_t buf_size)
{
    char last_day[24], paused_since[24], next_due[24];
    int length = snprintf(
        buf, buf_size,
        FORMAT_TAG "%s|%s|%s|%s|%" PRId64 "|%s|%" PRId64 "|%" PRId64 "|%s|%" PRId32 "|%" PRId64
                   "|%s|%s|%" PRId32 "|%" PRId32,
        record->unit, record->case_number, record->subject, record->cause, record->started_at_ms,
        optional_text(record->has_last_day, record->last_day, last_day, sizeof last_day),
        record->base_deadline_ms, record->paused_total_ms,
        optional_text(record->paused, record->paused_since_ms, paused_since, sizeof paused_since),
        record->fired, record->seq,
        optional_text(record->armed, record->next_due_ms, next_due, sizeof next_due),
        record->partition, record->extensions, record->extended_days);
    return length < 0 || (size_t)length >= buf_size ? -1 : length;
}

int64_t clock_record_deadline(const struct clock_record *record)
{
    return record->base_deadline_ms + record->paused_total_ms;
}
