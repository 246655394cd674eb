/* Alert messages (see alert_message.h): outbox payload -> struct alert ->
 * msgpack message with a Chinese sentence for supervisors. */
#include "alert_message.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYLOAD_FIELDS 15
#define DAY_MS ((int64_t)86400000)
#define HOUR_MS ((int64_t)3600000)

static bool copy_field(char *target, size_t target_size, const char *start, size_t length)
{
    if (length >= target_size)
        return false;
    memcpy(target, start, length);
    target[length] = '\0';
    return true;
}

static bool parse_number(const char *start, size_t length, int64_t *out)
{
    char text[24];
    if (length == 0 || length >= sizeof text)
        return false;
    memcpy(text, start, length);
    text[length] = '\0';
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || *end != '\0')
        return false;
    *out = value;
    return true;
}

int alert_parse(const char *alert_id, const char *payload, size_t payload_size,
                struct alert *out, char *err, size_t err_size)
{
    const char *fields[PAYLOAD_FIELDS];
    size_t lengths[PAYLOAD_FIELDS];
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= payload_size; i++) {
        if (i == payload_size || payload[i] == '|') {
            if (count == PAYLOAD_FIELDS) {
                snprintf(err, err_size, "more than %d fields", PAYLOAD_FIELDS);
                return -1;
            }
            fields[count] = payload + start;
            lengths[count] = i - start;
            count++;
            start = i + 1;
        }
    }
    if (count != PAYLOAD_FIELDS) {
        snprintf(err, err_size, "%zu fields, expected %d", count, PAYLOAD_FIELDS);
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (!copy_field(out->alert_id, sizeof out->alert_id, alert_id, strlen(alert_id)) ||
        !copy_field(out->rule, sizeof out->rule, fields[0], lengths[0]) || lengths[0] == 0 ||
        !copy_field(out->level, sizeof out->level, fields[1], lengths[1]) ||
        !copy_field(out->state, sizeof out->state, fields[2], lengths[2]) ||
        !copy_field(out->unit, sizeof out->unit, fields[4], lengths[4]) ||
        !copy_field(out->case_number, sizeof out->case_number, fields[5], lengths[5]) ||
        !copy_field(out->ref, sizeof out->ref, fields[6], lengths[6]) ||
        !copy_field(out->subject, sizeof out->subject, fields[7], lengths[7]) ||
        !copy_field(out->cause, sizeof out->cause, fields[11], lengths[11]) ||
        !copy_field(out->resolved_by, sizeof out->resolved_by, fields[12], lengths[12])) {
        snprintf(err, err_size, "a field is too long or empty");
        return -1;
    }
    if (strcmp(out->level, "yellow") != 0 && strcmp(out->level, "orange") != 0 &&
        strcmp(out->level, "red") != 0) {
        snprintf(err, err_size, "unknown level '%s'", out->level);
        return -1;
    }
    if (strcmp(out->state, "firing") != 0 && strcmp(out->state, "resolved") != 0) {
        snprintf(err, err_size, "unknown state '%s'", out->state);
        return -1;
    }
    int64_t last_day = 0;
    if (!parse_number(fields[3], lengths[3], &out->seq) || out->seq < 0 ||
        !parse_number(fields[8], lengths[8], &out->started_at_ms) ||
        !parse_number(fields[9], lengths[9], &out->deadline_ms) ||
        !parse_number(fields[10], lengths[10], &out->due_at_ms) ||
        (lengths[14] > 0 && !parse_number(fields[14], lengths[14], &last_day))) {
        snprintf(err, err_size, "a number field is not a decimal integer");
        return -1;
    }
    if (lengths[13] != 1 || (fields[13][0] != '0' && fields[13][0] != '1')) {
        snprintf(err, err_size, "late must be 0 or 1");
        return -1;
    }
    out->late = fields[13][0] == '1';
    out->has_last_day = lengths[14] > 0;
    out->last_day = (day_number)last_day;
    return 0;
}

/* Appends to a text buffer, never past its end nor through a UTF-8 character. */
struct text_buffer {
    char *data;
    size_t size, used;
    bool full;
};

static void append(struct text_buffer *buffer, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void append(struct text_buffer *buffer, const char *format, ...)
{
    if (buffer->full || buffer->size == 0)
        return;
    char piece[512];
    va_list args;
    va_start(args, format);
    int length = vsnprintf(piece, sizeof piece, format, args);
    va_end(args);
    if (length < 0)
        return;
    size_t take = (size_t)length < sizeof piece ? (size_t)length : sizeof piece - 1;
    if (buffer->used + take >= buffer->size) {
        take = buffer->size - 1 - buffer->used;
        /* back off to a character boundary */
        while (take > 0 && ((unsigned char)piece[take] & 0xC0) == 0x80)
            take--;
        buffer->full = true;
    }
    memcpy(buffer->data + buffer->used, piece, take);
    buffer->used += take;
    buffer->data[buffer->used] = '\0';
}

static void format_local_minute(int64_t ms, char *buf, size_t buf_size)
{
    day_number day = calendar_local_day(ms);
    char date[16];
    calendar_format_day(day, date, sizeof date);
    int64_t minutes = (ms - calendar_day_start_ms(day)) / 60000;
    snprintf(buf, buf_size, "%s %02d:%02d", date, (int)(minutes / 60 % 100),
             (int)(minutes % 60));
}

void alert_format_text(const struct alert *alert, const struct alert_wording *wording, char *buf,
                       size_t buf_size)
{
    struct text_buffer text = {buf, buf_size, 0, false};
    if (buf_size > 0)
        buf[0] = '\0';
    append(&text, "%s", wording->label);
    if (alert->case_number[0] && alert->subject[0])
        append(&text, "（案件%s，人员%s）", alert->case_number, alert->subject);
    else if (alert->case_number[0])
        append(&text, "（案件%s）", alert->case_number);
    else
        append(&text, "（编号%s）", alert->ref);
    char when[32];
    if (alert->has_last_day)
        calendar_format_day(alert->last_day, when, sizeof when);
    else
        format_local_minute(alert->deadline_ms, when, sizeof when);
    if (strcmp(alert->state, "resolved") == 0) {
        if (alert->late) {
            int64_t days = (alert->due_at_ms - alert->deadline_ms + DAY_MS - 1) / DAY_MS;
            append(&text, "已办结，超期%" PRId64 "天，预警解除。", days < 1 ? 1 : days);
        } else {
            append(&text, "已在期限内办结，预警解除。");
        }
        return;
    }
    if (strcmp(alert->level, "red") != 0) {
        if (alert->has_last_day) {
            int64_t days = alert->last_day - calendar_local_day(alert->due_at_ms) + 1;
            append(&text, "将于%s到期，剩余%" PRId64 "天，%s。", when, days, wording->action);
        } else {
            int64_t left = alert->deadline_ms - alert->due_at_ms;
            int64_t hours = (left + HOUR_MS / 2) / HOUR_MS;
            if (hours > 0)
                append(&text, "将于%s到期，剩余%" PRId64 "小时，%s。", when, hours,
                       wording->action);
            else
                append(&text, "将于%s到期，剩余%" PRId64 "分钟，%s。", when, left / 60000,
                       wording->action);
        }
        return;
    }
    if (alert->seq == 0) {
        append(&text, "已于%s到期，%s。", when, wording->action);
        return;
    }
    int64_t overdue = alert->due_at_ms - alert->deadline_ms;
    if (overdue >= DAY_MS)
        append(&text, "已于%s到期，已超期%" PRId64 "天，%s。", when, overdue / DAY_MS,
               wording->action);
    else if (overdue >= HOUR_MS)
        append(&text, "已于%s到期，已超期%" PRId64 "小时，%s。", when, overdue / HOUR_MS,
               wording->action);
    else
        append(&text, "已于%s到期，已超期%" PRId64 "秒，%s。", when, overdue / 1000,
               wording->action);
}

static void pack_string(msgpack_packer *packer, const char *text)
{
    size_t length = strlen(text);
    msgpack_pack_str(packer, length);
    msgpack_pack_str_body(packer, text, length);
}

static void pack_key(msgpack_packer *packer, const char *key) { pack_string(packer, key); }

int alert_encode(const struct alert *alert, const char *text, int64_t emitted_at_ms, void **data,
                 size_t *size)
{
    bool resolved = strcmp(alert->state, "resolved") == 0;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map(&packer, resolved ? 18 : 16);
    pack_key(&packer, "v");
    msgpack_pack_uint32(&packer, 1);
    pack_key(&packer, "alert_id");
    pack_string(&packer, alert->alert_id);
    pack_key(&packer, "rule");
    pack_string(&packer, alert->rule);
    pack_key(&packer, "level");
    pack_string(&packer, alert->level);
    pack_key(&packer, "state");
    pack_string(&packer, alert->state);
    pack_key(&packer, "seq");
    msgpack_pack_uint64(&packer, (uint64_t)alert->seq);
    pack_key(&packer, "unit");
    pack_string(&packer, alert->unit);
    pack_key(&packer, "case");
    pack_string(&packer, alert->case_number);
    pack_key(&packer, "ref");
    pack_string(&packer, alert->ref);
    pack_key(&packer, "subject");
    pack_string(&packer, alert->subject);
    pack_key(&packer, "started_at");
    msgpack_pack_int64(&packer, alert->started_at_ms);
    pack_key(&packer, "deadline");
    msgpack_pack_int64(&packer, alert->deadline_ms);
    pack_key(&packer, "due_at");
    msgpack_pack_int64(&packer, alert->due_at_ms);
    pack_key(&packer, "emitted_at");
    msgpack_pack_int64(&packer, emitted_at_ms);
    pack_key(&packer, "cause");
    pack_string(&packer, alert->cause);
    if (resolved) {
        pack_key(&packer, "resolved_by");
        pack_string(&packer, alert->resolved_by);
        pack_key(&packer, "late");
        if (alert->late)
            msgpack_pack_true(&packer);
        else
            msgpack_pack_false(&packer);
    }
    pack_key(&packer, "text");
    pack_string(&packer, text);
    if (buffer.data == NULL) {
        msgpack_sbuffer_destroy(&buffer);
        return -1;
    }
    *data = buffer.data; /* the sbuffer's malloc'd storage passes to the caller */
    *size = buffer.size;
    return 0;
}
