/* A zero-copy, allocation-free msgpack reader: a cursor over a byte buffer
 * that decodes one value header at a time and can skip whole values under a
 * nesting limit.  Strings, binaries and ext payloads are returned as pointers
 * into the buffer.  Every read checks the bytes that remain, so any input is
 * safe.  Used to validate untrusted Kafka message values (see event.c). */
#ifndef DUEWATCH_MSGPACK_READER_H
#define DUEWATCH_MSGPACK_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* msgpack_reader_skip() treats any larger depth limit as this one: it keeps
 * one counter per open container on the stack, so the limit bounds its
 * stack use (8 bytes a level). */
#define MSGPACK_READER_MAX_DEPTH 256

enum msgpack_reader_status {
    MSGPACK_READER_OK = 0,
    MSGPACK_READER_TRUNCATED,     /* the buffer ends inside (or before) a value */
    MSGPACK_READER_RESERVED_BYTE, /* 0xc1, which the format never uses */
    MSGPACK_READER_TOO_DEEP,      /* containers nested beyond the depth limit */
};

enum msgpack_value_type {
    MSGPACK_VALUE_NIL,
    MSGPACK_VALUE_BOOL,
    MSGPACK_VALUE_INT,   /* every int and uint format, fixints included */
    MSGPACK_VALUE_FLOAT, /* float 32 and float 64 */
    MSGPACK_VALUE_STR,
    MSGPACK_VALUE_BIN,
    MSGPACK_VALUE_ARRAY,
    MSGPACK_VALUE_MAP,
    MSGPACK_VALUE_EXT,
};

/* One decoded value header.  For str, bin and ext the payload is part of the
 * value (pointer into the buffer); for array and map only the header is read
 * and the elements follow in the buffer. */
struct msgpack_value {
    enum msgpack_value_type type;
    uint8_t format_byte; /* the first byte of the value, for diagnostics */
    union {
        bool boolean;
        struct {
            int64_t as_int64;   /* meaningful when fits_int64 */
            uint64_t as_uint64; /* meaningful when fits_uint64 */
            bool fits_int64;    /* false only for uint 64 values above INT64_MAX */
            bool fits_uint64;   /* false for negative values */
        } integer;
        struct {
            double value;
            bool is_float32;
        } real;
        struct {
            const char *bytes; /* not NUL-terminated; any bytes, not checked as UTF-8 */
            uint32_t length;
        } str;
        struct {
            const uint8_t *bytes;
            uint32_t length;
        } bin;
        struct {
            int8_t type;
            const uint8_t *bytes;
            uint32_t length;
        } ext;
        uint32_t count; /* array: elements; map: key/value pairs (declared, unverified) */
    };
};

/* Plain struct so it can live on the stack; use the functions, not the fields,
 * except error_offset. */
struct msgpack_reader {
    const uint8_t *data;
    size_t size;
    size_t offset;       /* next byte to read */
    size_t error_offset; /* after a failed call: where the problem was found */
};

/* Starts reading `size` bytes at `data` (data may be NULL when size is 0).
 * The buffer must outlive every value read from it. */
void msgpack_reader_init(struct msgpack_reader *reader, const void *data, size_t size);

/* Reads the next value header (and, for str/bin/ext, its payload) into
 * *value and advances past it.  On failure returns TRUNCATED or
 * RESERVED_BYTE, sets error_offset and leaves the position unchanged. */
enum msgpack_reader_status msgpack_reader_next(struct msgpack_reader *reader,
                                               struct msgpack_value *value);

/* Skips one complete value, containers included.  A container at the top of
 * the skipped value is depth 1, one inside it depth 2, and so on; scalars add
 * no depth; max_depth 0 allows scalars only (values above
 * MSGPACK_READER_MAX_DEPTH count as that).  Declared container sizes are only
 * counted down, never allocated, and a size larger than the bytes left fails
 * at once.  Work is linear in the buffer size.  On failure returns TRUNCATED,
 * RESERVED_BYTE or TOO_DEEP, sets error_offset and leaves the position
 * unchanged. */
enum msgpack_reader_status msgpack_reader_skip(struct msgpack_reader *reader, unsigned max_depth);

/* Offset of the next byte to read, and bytes left after it. */
size_t msgpack_reader_offset(const struct msgpack_reader *reader);
size_t msgpack_reader_remaining(const struct msgpack_reader *reader);

/* "ok", "truncated", "reserved_byte", "too_deep"; NULL when out of range. */
const char *msgpack_reader_status_name(enum msgpack_reader_status status);
/* "nil", "bool", "int", "float", "str", "bin", "array", "map", "ext"; NULL
 * when out of range. */
const char *msgpack_value_type_name(enum msgpack_value_type type);

#endif
