/* Alert messages (see alert_message.h): parses the '|'-joined outbox payload
 * that the deadline engine writes (clock_engine.c), words the one Chinese sentence a
 * supervisor reads, and encodes the msgpack map published on the alert topic.
 *
 * Local dates and times come from calendar.h (the configured zone, Asia/
 * Shanghai in deployment), so the text agrees with the day numbers the Lua
 * scripts and the counters use.  Dates are formatted here from day numbers
 * with the proleptic Gregorian conversion, which needs no time zone. */
#include "alert_message.h"

#include "fields.h"
#include "formats.h"

#include <inttypes.h>
#include <msgpack.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* Instants an alert may carry: 1970 up to 2200-01-01 (events are 2000..2100;
 * extensions can push a deadline some years further).  Anything else is no
 * payload our scripts wrote, and would only take the calendar arithmetic
 * outside the range where it is defined. */
#define ALERT_MAX_INSTANT_MS INT64_C(7258118400000)

#define MINUTE_MS INT64_C(60000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS INT64_C(86400000)

/* A resolution's list: up to ALERT_RESOLVES_MAX ids of 32 lowercase hex
 * digits joined by ','; only a resolved alert has one. */
static int parse_resolves(struct field field, struct alert *out, char *err, size_t err_size)
{
    if (field.length == 0)
        return 0;
    if (strcmp(out->state, "resolved") != 0) {
        snprintf(err, err_size, "resolves is not empty in a firing alert");
        return -1;
    }
    size_t count = (field.length + 1) / (ALERT_ID_LENGTH + 1);
    bool shaped = (field.length + 1) % (ALERT_ID_LENGTH + 1) == 0 && count <= ALERT_RESOLVES_MAX;
    for (size_t i = 0; shaped && i < field.length; i++) {
        char c = field.bytes[i];
        shaped = (i + 1) % (ALERT_ID_LENGTH + 1) == 0 ? c == ','
                                                        : (c >= '0' && c <= '9') ||
                                                              (c >= 'a' && c <= 'f');
    }
    if (!shaped) {
        snprintf(err, err_size, "resolves is not a list of at most %d alert ids",
                 ALERT_RESOLVES_MAX);
        return -1;
    }
    memcpy(out->resolves, field.bytes, field.length);
    out->resolves[field.length] = '\0';
    return 0;
}

int alert_parse(const char *alert_id, const char *payload, size_t payload_size,
                struct alert *out, char *err, size_t err_size)
{
    memset(out, 0, sizeof *out);
    if (alert_id == NULL || alert_id[0] == '\0') {
        snprintf(err, err_size, "alert id is empty");
        return -1;
    }
    size_t id_length = strnlen(alert_id, ALERT_FIELD_MAX);
    if (id_length > ALERT_FIELD_MAX - 1) {
        snprintf(err, err_size, "alert id is longer than %d bytes", ALERT_FIELD_MAX - 1);
        return -1;
    }
    memcpy(out->alert_id, alert_id, id_length + 1);
    if (payload == NULL)
        payload_size = 0;

    int version;
    if (fields_strip_version(&payload, &payload_size, "payload", &version, err, err_size) != 0)
        return -1;
    struct field fields[PAYLOAD_FIELD_COUNT];
    if (fields_split(payload, payload_size, fields,
                     version >= 3 ? PAYLOAD_FIELD_COUNT : PAYLOAD_FIELD_COUNT_V2, err,
                     err_size) != 0)
        return -1;
    enum {
        RULE = PAYLOAD_FIELD_RULE, LEVEL = PAYLOAD_FIELD_LEVEL, STATE = PAYLOAD_FIELD_STATE,
        SEQ = PAYLOAD_FIELD_SEQ, UNIT = PAYLOAD_FIELD_UNIT, CASE = PAYLOAD_FIELD_CASE,
        REF = PAYLOAD_FIELD_REF, SUBJECT = PAYLOAD_FIELD_SUBJECT,
        STARTED_AT = PAYLOAD_FIELD_STARTED_AT, DEADLINE = PAYLOAD_FIELD_DEADLINE,
        DUE_AT = PAYLOAD_FIELD_DUE_AT, CAUSE = PAYLOAD_FIELD_CAUSE,
        RESOLVED_BY = PAYLOAD_FIELD_RESOLVED_BY, LATE = PAYLOAD_FIELD_LATE,
        LAST_DAY = PAYLOAD_FIELD_LAST_DAY
    };

    if (field_copy_text(fields[RULE], "rule", false, out->rule, sizeof out->rule, err, err_size) != 0)
        return -1;
    if (field_equals(fields[LEVEL], "yellow") || field_equals(fields[LEVEL], "orange") ||
        field_equals(fields[LEVEL], "red") || field_equals(fields[LEVEL], "violation")) {
        memcpy(out->level, fields[LEVEL].bytes, fields[LEVEL].length);
        out->level[fields[LEVEL].length] = '\0';
    } else {
        snprintf(err, err_size, "level is not yellow, orange, red or violation");
        return -1;
    }
    if (field_equals(fields[STATE], "firing") || field_equals(fields[STATE], "resolved")) {
        memcpy(out->state, fields[STATE].bytes, fields[STATE].length);
        out->state[fields[STATE].length] = '\0';
    } else {
        snprintf(err, err_size, "state is not firing or resolved");
        return -1;
    }
    if (field_parse_decimal(fields[SEQ], "seq", 0, INT64_MAX, &out->seq, err, err_size) != 0 ||
        field_copy_text(fields[UNIT], "unit", false, out->unit, sizeof out->unit, err, err_size) != 0 ||
        field_copy_text(fields[CASE], "case", true, out->case_number, sizeof out->case_number, err, err_size) != 0 ||
        field_copy_text(fields[REF], "ref", false, out->ref, sizeof out->ref, err, err_size) != 0 ||
        field_copy_text(fields[SUBJECT], "subject", true, out->subject, sizeof out->subject, err, err_size) != 0 ||
        field_parse_decimal(fields[STARTED_AT], "started_at", 0, ALERT_MAX_INSTANT_MS, &out->started_at_ms,
                      err, err_size) != 0 ||
        field_parse_decimal(fields[DEADLINE], "deadline", 0, ALERT_MAX_INSTANT_MS, &out->deadline_ms, err,
                      err_size) != 0 ||
        field_parse_decimal(fields[DUE_AT], "due_at", 0, ALERT_MAX_INSTANT_MS, &out->due_at_ms, err,
                      err_size) != 0 ||
        field_copy_text(fields[CAUSE], "cause", true, out->cause, sizeof out->cause, err, err_size) != 0 ||
        field_copy_text(fields[RESOLVED_BY], "resolved_by", true, out->resolved_by, sizeof out->resolved_by, err, err_size) != 0)
        return -1;
    if (field_equals(fields[LATE], "0") || field_equals(fields[LATE], "1")) {
        out->late = fields[LATE].bytes[0] == '1';
    } else {
        snprintf(err, err_size, "late is not 0 or 1");
        return -1;
    }
    /* Day rules carry their last day; hour (and second) rules leave it empty. */
    out->has_last_day = fields[LAST_DAY].length > 0;
    if (out->has_last_day) {
        int64_t last_day;
        if (field_parse_decimal(fields[LAST_DAY], "last_day", 0, ALERT_MAX_INSTANT_MS / 86400000,
                          &last_day, err,
                          err_size) != 0)
            return -1;
        out->last_day = (day_number)last_day;
    }
    return version >= 3 ? parse_resolves(fields[PAYLOAD_FIELD_RESOLVES], out, err, err_size) : 0;
}

int alert_format_payload(const struct alert *alert, char *buf, size_t buf_size)
{
    char last_day[16] = "";
    if (alert->has_last_day)
        snprintf(last_day, sizeof last_day, "%" PRId32, (int32_t)alert->last_day);
    int length = snprintf(buf, buf_size,
                          FORMAT_TAG "%s|%s|%s|%" PRId64 "|%s|%s|%s|%s|%" PRId64 "|%" PRId64
                                     "|%" PRId64 "|%s|%s|%c|%s|%s",
                          alert->rule, alert->level, alert->state, alert->seq, alert->unit,
                          alert->case_number, alert->ref, alert->subject, alert->started_at_ms,
                          alert->deadline_ms, alert->due_at_ms, alert->cause, alert->resolved_by,
                          alert->late ? '1' : '0', last_day, alert->resolves);
    return length < 0 || (size_t)length >= buf_size ? -1 : length;
}

/* ------------------------------------------------------------- arithmetic */

/* later - earlier, saturated: parsed instants may be any int64. */
static int64_t difference_ms(int64_t later, int64_t earlier)
{
    if (earlier < 0 && later > INT64_MAX + earlier)
        return INT64_MAX;
    if (earlier > 0 && later < INT64_MIN + earlier)
        return INT64_MIN;
    return later - earlier;
}

/* The following helpers take amounts already clamped to >= 0. */
static int64_t round_div(int64_t amount, int64_t unit)
{
    return amount / unit + (amount % unit >= unit - amount % unit ? 1 : 0);
}

static int64_t ceil_div(int64_t amount, int64_t unit)
{
    return amount / unit + (amount % unit != 0 ? 1 : 0);
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days), so formatting needs neither a time zone nor calendar.c. */
static void civil_from_days(int64_t days, int64_t *year, int *month, int *day_of_month)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t shifted_month = (5 * day_of_year + 2) / 153; /* March = 0 */
    *day_of_month = (int)(day_of_year - (153 * shifted_month + 2) / 5 + 1);
    *month = (int)(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
    *year = year_of_era + era * 400 + (*month <= 2 ? 1 : 0);
}

static void format_day(int64_t day, char *buf, size_t buf_size)
{
    int64_t year;
    int month, day_of_month;
    civil_from_days(day, &year, &month, &day_of_month);
    snprintf(buf, buf_size, "%04" PRId64 "-%02d-%02d", year, month, day_of_month);
}

/* "YYYY-MM-DD HH:MM" in the configured zone.  The time of day is the offset
 * from the local day's first instant, which is the wall-clock time in zones
 * without daylight saving (Asia/Shanghai); on a DST change day it would be
 * off by the shift. */
static void format_local_minute(int64_t ts_ms, char *buf, size_t buf_size)
{
    day_number day = calendar_local_day(ts_ms);
    int64_t since_midnight = difference_ms(ts_ms, calendar_day_start_ms(day));
    if (since_midnight < 0)
        since_midnight = 0;
    int64_t minute_of_day = since_midnight / MINUTE_MS;
    char date[32];
    format_day(day, date, sizeof date);
    snprintf(buf, buf_size, "%s %02d:%02d", date, (int)(minute_of_day / 60 % 24),
             (int)(minute_of_day % 60));
}

/* -------------------------------------------------------------- wording */

/* Appends into a fixed buffer, remembering whether anything was cut. */
struct text_builder {
    char *buf;
    size_t size;
    size_t used;
    bool truncated;
};

static void append(struct text_builder *text, const char *piece)
{
    if (text->size == 0 || text->truncated)
        return;
    size_t length = strlen(piece);
    size_t room = text->size - 1 - text->used;
    if (length > room) {
        length = room;
        text->truncated = true;
    }
    memcpy(text->buf + text->used, piece, length);
    text->used += length;
    text->buf[text->used] = '\0';
}

static void append_number(struct text_builder *text, int64_t number)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRId64, number);
    append(text, digits);
}

/* Length of the UTF-8 sequence a lead byte starts (1 for anything else, so
 * stray bytes are kept as they are rather than eating what precedes them). */
static size_t utf8_sequence_length(unsigned char lead)
{
    if (lead >= 0xF0 && lead <= 0xF7)
        return 4;
    if (lead >= 0xE0)
        return lead <= 0xEF ? 3 : 1;
    if (lead >= 0xC0)
        return 2;
    return 1;
}

/* After a cut, drops a last character whose sequence did not fit whole. */
static void finish(struct text_builder *text)
{
    if (!text->truncated || text->used == 0)
        return;
    size_t lead = text->used - 1;
    while (lead > 0 && ((unsigned char)text->buf[lead] & 0xC0) == 0x80 && text->used - lead < 4)
        lead--;
    if (lead + utf8_sequence_length((unsigned char)text->buf[lead]) > text->used) {
        text->used = lead;
        text->buf[lead] = '\0';
    }
}

/* "（案件C，人员S）", "（案件C）" without a subject, or "（编号REF）" without a
 * case (clocks keyed by an incident: the ref is all that identifies them). */
static void append_identity(struct text_builder *text, const struct alert *alert)
{
    if (alert->case_number[0] == '\0') {
        append(text, "（编号");
        append(text, alert->ref);
        append(text, "）");
        return;
    }
    append(text, "（案件");
    append(text, alert->case_number);
    if (alert->subject[0] != '\0') {
        append(text, "，人员");
        append(text, alert->subject);
    }
    append(text, "）");
}

/* The moment the clock runs out as the text names it: the last day for day
 * rules, the local date and time of the deadline for hour rules. */
static void append_deadline(struct text_builder *text, const struct alert *alert)
{
    char when[48];
    if (alert->has_last_day)
        format_day(alert->last_day, when, sizeof when);
    else
        format_local_minute(alert->deadline_ms, when, sizeof when);
    append(text, when);
}

/* The moment a firing level's time left counts from: its due time, or the
 * moment it is sent when that is later (a level sent late). */
static int64_t remaining_from_ms(const struct alert *alert)
{
    return alert->sent_at_ms > alert->due_at_ms ? alert->sent_at_ms : alert->due_at_ms;
}

/* Whether no time is left at `from`: past the last day (day rules) or the
 * deadline (hour rules). */
static bool expired_at(const struct alert *alert, int64_t from)
{
    return alert->has_last_day ? calendar_local_day(from) > alert->last_day
                               : from >= alert->deadline_ms;
}

/* "剩余3天" / "剩余12小时" / "剩余40分钟", counted from `from`. */
static void append_remaining(struct text_builder *text, const struct alert *alert, int64_t from)
{
    append(text, "剩余");
    if (alert->has_last_day) {
        /* Both days count: from the 12th with the 14th as last day is 3. */
        append_number(text, (int64_t)alert->last_day - calendar_local_day(from) + 1);
        append(text, "天");
        return;
    }
    int64_t left = difference_ms(alert->deadline_ms, from);
    if (left < 0)
        left = 0;
    int64_t hours = round_div(left, HOUR_MS);
    if (hours > 0) {
        append_number(text, hours);
        append(text, "小时");
    } else {
        append_number(text, round_div(left, MINUTE_MS));
        append(text, "分钟");
    }
}

/* "已超期2天", or for repeats closer together than a day (test rules repeat
 * in seconds) "已超期5小时" / "已超期30秒". */
static void append_overdue(struct text_builder *text, const struct alert *alert)
{
    int64_t overdue = difference_ms(alert->due_at_ms, alert->deadline_ms);
    if (overdue < 0)
        overdue = 0;
    append(text, "已超期");
    if (overdue >= DAY_MS) {
        append_number(text, overdue / DAY_MS);
        append(text, "天");
    } else if (overdue >= HOUR_MS) {
        append_number(text, overdue / HOUR_MS);
        append(text, "小时");
    } else {
        append_number(text, overdue / 1000);
        append(text, "秒");
    }
}

/* Extension number seq (from 1): "第1次延长超出法律规定（<limit>），期限已按记录
 * 延至2025-04-14，请核查延长的依据和审批。"; seq 0, a document's `until` beyond
 * the law's term: "文书载明的期限超出法律规定（<limit>），期限已按文书记至
 * 2025-04-14，请核查期限的依据和审批。" */
static void append_violation(struct text_builder *text, const struct alert *alert,
                             const struct alert_wording *wording)
{
    bool document = alert->seq == 0;
    if (document) {
        append(text, "文书载明的期限超出法律规定");
    } else {
        append(text, "第");
        append_number(text, alert->seq);
        append(text, "次延长超出法律规定");
    }
    if (wording->extension_limit != NULL && wording->extension_limit[0] != '\0') {
        append(text, "（");
        append(text, wording->extension_limit);
        append(text, "）");
    }
    append(text, document ? "，期限已按文书记至" : "，期限已按记录延至");
    append_deadline(text, alert);
    append(text, document ? "，请核查期限的依据和审批。" : "，请核查延长的依据和审批。");
}

void alert_format_text(const struct alert *alert, const struct alert_wording *wording, char *buf,
                       size_t buf_size)
{
    struct text_builder text = {buf, buf_size, 0, false};
    if (buf_size > 0)
        buf[0] = '\0';
    append(&text, wording->label);
    append_identity(&text, alert);
    if (strcmp(alert->level, "violation") == 0) {
        append_violation(&text, alert, wording);
        if (alert->provisional)
            append(&text, "（到期日按暂定节假日安排计算，以国务院正式安排为准。）");
        finish(&text);
        return;
    }
    if (strcmp(alert->state, "resolved") == 0) {
        if (alert->late) {
            /* due_at of a resolution is when the clock stopped; any part of
             * a day past the deadline counts as a day. */
            int64_t overdue = difference_ms(alert->due_at_ms, alert->deadline_ms);
            int64_t days = overdue > 0 ? ceil_div(overdue, DAY_MS) : 1;
            append(&text, "已办结，超期");
            append_number(&text, days);
            append(&text, "天，预警解除。");
        } else {
            append(&text, "已在期限内办结，预警解除。");
        }
        finish(&text);
        return;
    }
    if (strcmp(alert->level, "red") == 0) {
        append(&text, "已于");
        append_deadline(&text, alert);
        append(&text, "到期，");
        if (alert->seq > 0) {
            append_overdue(&text, alert);
            append(&text, "，");
        }
        if (wording->overdue_text != NULL && wording->overdue_text[0] != '\0') {
            append(&text, wording->overdue_text);
            append(&text, "，");
        }
    } else if (expired_at(alert, remaining_from_ms(alert))) {
        /* a yellow or orange sent after the deadline: no time is left */
        append(&text, "已于");
        append_deadline(&text, alert);
        append(&text, "到期，");
    } else {
        append(&text, "将于");
        append_deadline(&text, alert);
        append(&text, "到期，");
        append_remaining(&text, alert, remaining_from_ms(alert));
        append(&text, "，");
    }
    append(&text, wording->action);
    append(&text, "。");
    if (alert->provisional)
        append(&text, "（到期日按暂定节假日安排计算，以国务院正式安排为准。）");
    finish(&text);
}

/* --------------------------------------------------------------- encoding */

static int pack_key(msgpack_packer *packer, const char *key)
{
    size_t length = strlen(key);
    if (msgpack_pack_str(packer, length) != 0)
        return -1;
    return msgpack_pack_str_body(packer, key, length);
}

static int pack_string(msgpack_packer *packer, const char *key, const char *value)
{
    size_t length = strlen(value);
    if (pack_key(packer, key) != 0 || msgpack_pack_str(packer, length) != 0)
        return -1;
    return msgpack_pack_str_body(packer, value, length);
}

static int pack_int(msgpack_packer *packer, const char *key, int64_t value)
{
    if (pack_key(packer, key) != 0)
        return -1;
    return msgpack_pack_int64(packer, value);
}

static int pack_uint(msgpack_packer *packer, const char *key, uint64_t value)
{
    if (pack_key(packer, key) != 0)
        return -1;
    return msgpack_pack_uint64(packer, value);
}

/* "resolves": the ids of a resolution, as an array of strings. */
static int pack_resolves(msgpack_packer *packer, const char *joined)
{
    size_t length = strlen(joined);
    size_t count = length == 0 ? 0 : (length + 1) / (ALERT_ID_LENGTH + 1);
    if (pack_key(packer, "resolves") != 0 || msgpack_pack_array(packer, count) != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (msgpack_pack_str(packer, ALERT_ID_LENGTH) != 0 ||
            msgpack_pack_str_body(packer, joined + i * (ALERT_ID_LENGTH + 1), ALERT_ID_LENGTH) !=
                0)
            return -1;
    }
    return 0;
}

void alert_clock_id(const char *rule, const char *ref, char out[ALERT_ID_LENGTH + 1])
{
    char text[2 * ALERT_FIELD_MAX + 2];
    int length = snprintf(text, sizeof text, "%s|%s", rule, ref);
    if (length < 0)
        length = 0;
    if ((size_t)length >= sizeof text)
        length = (int)sizeof text - 1;
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, (size_t)length, digest);
    for (int i = 0; i < ALERT_ID_LENGTH / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

static int pack_alert(msgpack_packer *packer, const struct alert *alert, const char *text,
                      const char *basis, int64_t emitted_at_ms)
{
    bool resolved = strcmp(alert->state, "resolved") == 0;
    char clock_id[ALERT_ID_LENGTH + 1];
    alert_clock_id(alert->rule, alert->ref, clock_id);
    if (msgpack_pack_map(packer, resolved ? 22 : 19) != 0 ||
        pack_uint(packer, "v", 1) != 0 ||
        pack_string(packer, "alert_id", alert->alert_id) != 0 ||
        pack_string(packer, "clock_id", clock_id) != 0 ||
        pack_string(packer, "rule", alert->rule) != 0 ||
        pack_string(packer, "level", alert->level) != 0 ||
        pack_string(packer, "state", alert->state) != 0 ||
        pack_uint(packer, "seq", (uint64_t)alert->seq) != 0 ||
        pack_string(packer, "unit", alert->unit) != 0 ||
        pack_string(packer, "case", alert->case_number) != 0 ||
        pack_string(packer, "ref", alert->ref) != 0 ||
        pack_string(packer, "subject", alert->subject) != 0 ||
        pack_int(packer, "started_at", alert->started_at_ms) != 0 ||
        pack_int(packer, "deadline", alert->deadline_ms) != 0 ||
        pack_int(packer, "due_at", alert->due_at_ms) != 0 ||
        pack_int(packer, "emitted_at", emitted_at_ms) != 0 ||
        pack_string(packer, "cause", alert->cause) != 0 || pack_key(packer, "provisional") != 0 ||
        (alert->provisional ? msgpack_pack_true(packer) : msgpack_pack_false(packer)) != 0)
        return -1;
    if (resolved) {
        if (pack_string(packer, "resolved_by", alert->resolved_by) != 0 ||
            pack_key(packer, "late") != 0 ||
            (alert->late ? msgpack_pack_true(packer) : msgpack_pack_false(packer)) != 0 ||
            pack_resolves(packer, alert->resolves) != 0)
            return -1;
    }
    if (pack_string(packer, "basis", basis) != 0)
        return -1;
    return pack_string(packer, "text", text);
}

int alert_encode(const struct alert *alert, const char *text, const char *basis,
                 int64_t emitted_at_ms, void **data, size_t *size)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    if (pack_alert(&packer, alert, text, basis, emitted_at_ms) != 0) {
        msgpack_sbuffer_destroy(&buffer);
        return -1;
    }
    /* The sbuffer grows with realloc(), so its bytes are the caller's to
     * free(); releasing hands them over without a copy. */
    *size = buffer.size;
    *data = msgpack_sbuffer_release(&buffer);
    return 0;
}
