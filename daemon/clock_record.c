/* Clock records (see clock_record.h and include/formats.h). */
#include "clock_record.h"

#include "fields.h"
#include "text.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Instants a record may hold: within +-2^62 ms keeps every sum the engine
 * makes (deadline + pauses + repeats) far from overflow. */
#define INSTANT_LIMIT (INT64_C(1) << 62)

/* What version 4 leaves empty for each number (include/formats.h; the text
 * fields are not looked up here). */
static const int64_t empty_numbers[CLOCK_FIELD_COUNT] = {
#define EMPTY_ITEM(name, empty) [CLOCK_FIELD_##name] = (empty),
    CLOCK_RECORD_NUMBERS(EMPTY_ITEM)
#undef EMPTY_ITEM
};

/* How a record's numbers read: decimal up to version 3, base 36 from 4, and
 * from 5 a number ending in '.' counts minutes (formats.h). */
struct number_reader {
    const struct field *fields;
    bool base36, minutes;
    char *err;
    size_t err_size;
};

#define MINUTE_MS INT64_C(60000)

/* A version 5 number written in minutes: "<base 36>." is 60000 times it. */
static int parse_minutes(const struct number_reader *reader, struct field text, const char *name,
                         int64_t minimum, int64_t maximum, int64_t *out)
{
    text.length--; /* the '.' */
    int64_t minutes;
    if (text.length == 0 ||
        field_parse_base36(text, name, -INSTANT_LIMIT / MINUTE_MS, INSTANT_LIMIT / MINUTE_MS,
                           &minutes, reader->err, reader->err_size) != 0) {
        if (text.length == 0)
            snprintf(reader->err, reader->err_size, "%s '.' holds no minutes", name);
        return -1;
    }
    if (minutes * MINUTE_MS < minimum || minutes * MINUTE_MS > maximum) {
        snprintf(reader->err, reader->err_size, "%s %" PRId64 " minutes is out of range", name,
                 minutes);
        return -1;
    }
    *out = minutes * MINUTE_MS;
    return 0;
}

/* Reads number `field` into *out; *present (may be NULL) says whether an
 * optional one is there.  An empty field is an absent optional number, a
 * version 4 number at its default, or an error. */
static int read_number(const struct number_reader *reader, enum clock_record_field field,
                       const char *name, int64_t minimum, int64_t maximum, bool *present,
                       int64_t *out)
{
    struct field text = reader->fields[field];
    int64_t empty = empty_numbers[field];
    bool ignored;
    if (present == NULL)
        present = &ignored;
    *present = text.length > 0;
    if (text.length == 0 && empty == CLOCK_NUMBER_OPTIONAL) {
        *out = 0;
        return 0;
    }
    if (text.length == 0 && reader->base36 && empty != CLOCK_NUMBER_REQUIRED) {
        *out = empty;
        return 0;
    }
    if (text.length == 0 && reader->base36) {
        snprintf(reader->err, reader->err_size, "%s is empty", name);
        return -1;
    }
    if (reader->minutes && text.bytes[text.length - 1] == '.')
        return parse_minutes(reader, text, name, minimum, maximum, out);
    return reader->base36
               ? field_parse_base36(text, name, minimum, maximum, out, reader->err,
                                    reader->err_size)
               : field_parse_decimal(text, name, minimum, maximum, out, reader->err,
                                     reader->err_size);
}

static int decode_numbers(const struct number_reader *reader, struct clock_record *out)
{
    int64_t last_day = 0, fired = 0;
    if (read_number(reader, CLOCK_FIELD_STARTED_AT, "started_at", -INSTANT_LIMIT, INSTANT_LIMIT,
                    NULL, &out->started_at_ms) != 0 ||
        read_number(reader, CLOCK_FIELD_LAST_DAY, "last_day", INT32_MIN, INT32_MAX,
                    &out->has_last_day, &last_day) != 0 ||
        read_number(reader, CLOCK_FIELD_BASE_DEADLINE, "base_deadline", -INSTANT_LIMIT,
                    INSTANT_LIMIT, NULL, &out->base_deadline_ms) != 0 ||
        read_number(reader, CLOCK_FIELD_PAUSED_TOTAL, "paused_total", 0, INSTANT_LIMIT, NULL,
                    &out->paused_total_ms) != 0 ||
        read_number(reader, CLOCK_FIELD_PAUSED_SINCE, "paused_since", -INSTANT_LIMIT,
                    INSTANT_LIMIT, &out->paused, &out->paused_since_ms) != 0 ||
        read_number(reader, CLOCK_FIELD_FIRED, "fired", -1, 2, NULL, &fired) != 0 ||
        read_number(reader, CLOCK_FIELD_SEQ, "seq", 0, INSTANT_LIMIT, NULL, &out->seq) != 0 ||
        read_number(reader, CLOCK_FIELD_NEXT_DUE, "next_due", -INSTANT_LIMIT, INSTANT_LIMIT,
                    &out->armed, &out->next_due_ms) != 0)
        return -1;
    out->last_day = (int32_t)last_day;
    out->fired = (int32_t)fired;
    return 0;
}

static int decode_extensions(const struct number_reader *reader, struct clock_record *out)
{
    int64_t extensions = 0, extended_days = 0;
    if (read_number(reader, CLOCK_FIELD_EXTENSIONS, "extensions", 0, INT32_MAX, NULL,
                    &extensions) != 0 ||
        read_number(reader, CLOCK_FIELD_EXTENDED_DAYS, "extended_days", 0, INT32_MAX, NULL,
                    &extended_days) != 0)
        return -1;
    out->extensions = (int32_t)extensions;
    out->extended_days = (int32_t)extended_days;
    return 0;
}

/* ---- the cause: a UUID in 23 characters ---- */

/* Version 5 writes a cause that is a UUID in its canonical text (8-4-4-4-12
 * lowercase hex digits, 36 characters: what most producers use for event
 * ids) as '~' and its 16 bytes in base64url without padding (RFC 4648
 * section 5), 23 characters; '~' begins no event id (the contract's
 * identifiers are A-Z a-z 0-9 . _ -), and any other cause is kept as it is. */
#define CAUSE_COMPACT_LENGTH 23
#define UUID_TEXT_LENGTH 36

static const char base64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int hex_value(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The 16 bytes of a canonical UUID text; false when it is not one. */
static bool uuid_bytes(const char *text, uint8_t bytes[16])
{
    if (strlen(text) != UUID_TEXT_LENGTH)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < UUID_TEXT_LENGTH; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return false;
            continue;
        }
        int high = hex_value(text[i]), low = hex_value(text[i + 1]);
        if (high < 0 || low < 0)
            return false;
        bytes[n++] = (uint8_t)(high << 4 | low);
        i++;
    }
    return true;
}

static bool compact_cause(const char *cause, char out[CAUSE_COMPACT_LENGTH + 1])
{
    uint8_t bytes[16];
    if (!uuid_bytes(cause, bytes))
        return false;
    out[0] = '~';
    for (size_t i = 0; i < 22; i++) {
        size_t bit = i * 6, byte = bit / 8, shift = bit % 8;
        unsigned word = (unsigned)bytes[byte] << 8 | (byte + 1 < 16 ? bytes[byte + 1] : 0);
        out[1 + i] = base64url[(word >> (10 - shift)) & 63];
    }
    out[CAUSE_COMPACT_LENGTH] = '\0';
    return true;
}

/* A version 5 cause field into out: "~" and 22 base64url characters back to
 * the UUID's text; anything else as it is (already copied by the caller). */
static int expand_cause(struct field field, char *out, size_t size, char *err, size_t err_size)
{
    if (field.length == 0 || field.bytes[0] != '~')
        return 0;
    uint8_t bytes[17] = {0};
    unsigned values[22];
    bool valid = field.length == CAUSE_COMPACT_LENGTH && size > UUID_TEXT_LENGTH;
    for (size_t i = 0; valid && i < 22; i++) {
        char c = field.bytes[1 + i];
        const char *at = c != '\0' ? strchr(base64url, c) : NULL;
        valid = at != NULL;
        values[i] = valid ? (unsigned)(at - base64url) : 0;
    }
    /* 22 characters carry 132 bits: the last 4 must be zero */
    if (!valid || (values[21] & 15) != 0) {
        snprintf(err, err_size, "cause '%.*s' is not a UUID in base64url", (int)field.length,
                 field.bytes);
        return -1;
    }
    for (size_t i = 0; i < 22; i++) {
        size_t bit = i * 6, byte = bit / 8, shift = bit % 8;
        unsigned word = values[i] << (10 - shift);
        bytes[byte] |= (uint8_t)(word >> 8);
        bytes[byte + 1] |= (uint8_t)word;
    }
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = hex[bytes[i] >> 4];
        out[n++] = hex[bytes[i] & 15];
    }
    out[n] = '\0';
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
    out->version = version;
    if (version < 5 && out->cause[0] == '~') {
        /* no event id begins with '~', and version 5 would read it as a UUID */
        snprintf(err, err_size, "cause '%s' begins with '~'", out->cause);
        return -1;
    }
    if (version >= 5 && expand_cause(f[CLOCK_FIELD_CAUSE], out->cause, sizeof out->cause, err,
                                     err_size) != 0)
        return -1;
    struct number_reader reader = {.fields = f, .base36 = version >= 4, .minutes = version >= 5,
                                   .err = err, .err_size = err_size};
    if (decode_numbers(&reader, out) != 0)
        return -1;
    /* versions 0 and 1 counted no extension */
    return version >= 2 ? decode_extensions(&reader, out) : 0;
}

/* Appends '|' then number `field` in base 36, or nothing after the '|' when
 * it is absent (`present` false) or at its default. */
static void put_number(struct text_buffer *text, enum clock_record_field field, bool present,
                       int64_t value)
{
    text_add_char(text, '|');
    if (present && value != empty_numbers[field]) {
        char digits[FIELD_BASE36_MAX];
        bool minutes = value != 0 && value % MINUTE_MS == 0;
        size_t length = field_format_base36(minutes ? value / MINUTE_MS : value, digits);
        text_add_bytes(text, digits, length);
        if (minutes)
            text_add_char(text, '.');
    }
}

int clock_record_encode(const struct clock_record *record, char *buf, size_t buf_size)
{
    /* built where it always fits (its fields are bounded), then copied */
    char whole[CLOCK_RECORD_MAX + 1];
    struct text_buffer text = text_start(whole, sizeof whole);
    text_add_bytes(&text, FORMAT_TAG, FORMAT_TAG_LENGTH);
    text_add(&text, record->unit);
    text_add_char(&text, '|');
    text_add(&text, record->case_number);
    text_add_char(&text, '|');
    text_add(&text, record->subject);
    text_add_char(&text, '|');
    char compact[CAUSE_COMPACT_LENGTH + 1];
    text_add(&text, compact_cause(record->cause, compact) ? compact : record->cause);
    put_number(&text, CLOCK_FIELD_STARTED_AT, true, record->started_at_ms);
    put_number(&text, CLOCK_FIELD_LAST_DAY, record->has_last_day, record->last_day);
    put_number(&text, CLOCK_FIELD_BASE_DEADLINE, true, record->base_deadline_ms);
    put_number(&text, CLOCK_FIELD_PAUSED_TOTAL, true, record->paused_total_ms);
    put_number(&text, CLOCK_FIELD_PAUSED_SINCE, record->paused, record->paused_since_ms);
    put_number(&text, CLOCK_FIELD_FIRED, true, record->fired);
    put_number(&text, CLOCK_FIELD_SEQ, true, record->seq);
    put_number(&text, CLOCK_FIELD_NEXT_DUE, record->armed, record->next_due_ms);
    text_add_char(&text, '|');
    text_add(&text, record->partition);
    put_number(&text, CLOCK_FIELD_EXTENSIONS, true, record->extensions);
    put_number(&text, CLOCK_FIELD_EXTENDED_DAYS, true, record->extended_days);
    if (text.length + 1 > buf_size)
        return -1;
    memcpy(buf, whole, text.length + 1);
    return (int)text.length;
}

int64_t clock_record_deadline(const struct clock_record *record)
{
    return record->base_deadline_ms + record->paused_total_ms;
}
