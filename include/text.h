/* Building keys and fields piece by piece into a fixed buffer, without
 * snprintf: a batch builds tens of thousands of keys and fields, and
 * snprintf's format parsing was a fifth of the daemon's time in the make
 * bench profile.  Like snprintf, a text longer than the buffer is cut and
 * always NUL-terminated; unlike it, nothing is parsed.  No I/O, no
 * allocation. */
#ifndef DUEWATCH_TEXT_H
#define DUEWATCH_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct text_buffer {
    char *bytes;
    size_t size;   /* > 0 */
    size_t length; /* < size; bytes[length] == '\0' */
};

/* Starts an empty text in buf (size > 0 bytes). */
static inline struct text_buffer text_start(char *buf, size_t size)
{
    buf[0] = '\0';
    return (struct text_buffer){.bytes = buf, .size = size, .length = 0};
}

/* Appends `count` bytes (cut to the room left); bytes may be NULL when
 * count is 0 (an absent field of an event). */
static inline void text_add_bytes(struct text_buffer *text, const char *bytes, size_t count)
{
    size_t room = text->size - 1 - text->length;
    if (count > room)
        count = room;
    if (count == 0)
        return;
    memcpy(text->bytes + text->length, bytes, count);
    text->length += count;
    text->bytes[text->length] = '\0';
}

/* Appends a NUL-terminated string. */
static inline void text_add(struct text_buffer *text, const char *string)
{
    text_add_bytes(text, string, strlen(string));
}

static inline void text_add_char(struct text_buffer *text, char c)
{
    text_add_bytes(text, &c, 1);
}

/* Appends the decimal text of number ("%" PRId64). */
static inline void text_add_number(struct text_buffer *text, int64_t number)
{
    char digits[24];
    char *end = digits + sizeof digits, *at = end;
    uint64_t magnitude = number < 0 ? (uint64_t)0 - (uint64_t)number : (uint64_t)number;
    do {
        *--at = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude > 0);
    if (number < 0)
        *--at = '-';
    text_add_bytes(text, at, (size_t)(end - at));
}

/* Appends number as exactly `width` digits, zero-padded ("%0<width>u"; a
 * number of more digits keeps its last `width`, as the calendar's clamped
 * years and days never have). */
static inline void text_add_padded(struct text_buffer *text, unsigned number, int width)
{
    char digits[10];
    if (width > (int)sizeof digits)
        width = (int)sizeof digits;
    for (int i = width - 1; i >= 0; i--) {
        digits[i] = (char)('0' + number % 10);
        number /= 10;
    }
    text_add_bytes(text, digits, (size_t)width);
}

/* FNV-1a (32 bits) of `length` bytes: the slots of the daemon's hash tables
 * and the shard of a clock's due bucket (include/formats.h DUE_SHARDS, so a
 * stored layout depends on it: never change it). */
static inline uint32_t text_hash(const char *bytes, size_t length)
{
    uint32_t hash = 2166136261u;
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ (uint8_t)bytes[i]) * 16777619u;
    return hash;
}

#endif
