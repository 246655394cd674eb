/* Zero-copy, allocation-free msgpack reader (see msgpack_reader.h).
 *
 * Why not msgpack-c's unpacker: msgpack_unpack_next() allocates a zone per
 * message and pre-allocates arrays and maps from their declared sizes, so a
 * 6-byte message (0xdd ff ff ff ff ...) can demand gigabytes before the
 * decoder notices the data is missing.  Kafka message values are untrusted,
 * so they are read here instead: nothing is allocated, declared sizes are
 * only counted down, and every read checks the bytes that remain.  msgpack-c
 * is still used for encoding elsewhere.
 *
 * Multi-byte numbers are big-endian and read byte by byte, so the buffer needs
 * no alignment. */
#include "msgpack_reader.h"

#include <string.h>

void msgpack_reader_init(struct msgpack_reader *reader, const void *data, size_t size)
{
    reader->data = data;
    reader->size = data == NULL ? 0 : size;
    reader->offset = 0;
    reader->error_offset = 0;
}

size_t msgpack_reader_offset(const struct msgpack_reader *reader) { return reader->offset; }

size_t msgpack_reader_remaining(const struct msgpack_reader *reader)
{
    return reader->size - reader->offset;
}

static uint64_t read_big_endian(const uint8_t *bytes, size_t width)
{
    uint64_t result = 0;
    for (size_t i = 0; i < width; i++)
        result = (result << 8) | bytes[i];
    return result;
}

static void set_unsigned(struct msgpack_value *value, uint64_t number)
{
    value->type = MSGPACK_VALUE_INT;
    value->integer.as_uint64 = number;
    value->integer.fits_uint64 = true;
    value->integer.fits_int64 = number <= (uint64_t)INT64_MAX;
    value->integer.as_int64 = value->integer.fits_int64 ? (int64_t)number : 0;
}

static void set_signed(struct msgpack_value *value, int64_t number)
{
    value->type = MSGPACK_VALUE_INT;
    value->integer.as_int64 = number;
    value->integer.fits_int64 = true;
    value->integer.fits_uint64 = number >= 0;
    value->integer.as_uint64 = number >= 0 ? (uint64_t)number : 0;
}

/* Two's complement of the low `width` bytes, without relying on
 * implementation-defined conversions of out-of-range unsigned values. */
static int64_t sign_extend(uint64_t raw, size_t width)
{
    unsigned bits = (unsigned)width * 8;
    uint64_t sign_bit = (uint64_t)1 << (bits - 1);
    if ((raw & sign_bit) == 0)
        return (int64_t)raw;
    /* raw - 2^bits, computed as -(2^bits - raw) so no step overflows. */
    uint64_t magnitude = (bits == 64 ? 0 : ((uint64_t)1 << bits)) - raw;
    if (magnitude == sign_bit && bits == 64)
        return INT64_MIN;
    return -(int64_t)magnitude;
}

enum msgpack_reader_status msgpack_reader_next(struct msgpack_reader *reader,
                                               struct msgpack_value *value)
{
    size_t available = reader->size - reader->offset;
    if (available == 0) {
        reader->error_offset = reader->offset;
        return MSGPACK_READER_TRUNCATED;
    }
    /* Only now: data may be NULL for an empty buffer. */
    const uint8_t *start = reader->data + reader->offset;
    uint8_t first = start[0];
    /* The header is `header_size` bytes (format byte included); for str, bin
     * and ext a payload of `payload_length` bytes follows. */
    size_t header_size = 1;
    size_t length_width = 0; /* bytes of the big-endian length field, if any */
    size_t fixed_payload = 0;
    memset(value, 0, sizeof *value);
    value->format_byte = first;

    if (first <= 0x7f) {
        set_unsigned(value, first);
    } else if (first >= 0xe0) {
        set_signed(value, (int64_t)first - 256);
    } else if (first <= 0x8f) {
        value->type = MSGPACK_VALUE_MAP;
        value->count = first & 0x0fu;
    } else if (first <= 0x9f) {
        value->type = MSGPACK_VALUE_ARRAY;
        value->count = first & 0x0fu;
    } else if (first <= 0xbf) {
        value->type = MSGPACK_VALUE_STR;
        fixed_payload = first & 0x1fu;
    } else {
        switch (first) {
        case 0xc0: value->type = MSGPACK_VALUE_NIL; break;
        case 0xc1:
            reader->error_offset = reader->offset;
            return MSGPACK_READER_RESERVED_BYTE;
        case 0xc2:
        case 0xc3:
            value->type = MSGPACK_VALUE_BOOL;
            value->boolean = first == 0xc3;
            break;
        case 0xc4: value->type = MSGPACK_VALUE_BIN; length_width = 1; break;
        case 0xc5: value->type = MSGPACK_VALUE_BIN; length_width = 2; break;
        case 0xc6: value->type = MSGPACK_VALUE_BIN; length_width = 4; break;
        /* ext 8/16/32: length field, then the type byte, then the payload. */
        case 0xc7: value->type = MSGPACK_VALUE_EXT; length_width = 1; header_size = 2; break;
        case 0xc8: value->type = MSGPACK_VALUE_EXT; length_width = 2; header_size = 2; break;
        case 0xc9: value->type = MSGPACK_VALUE_EXT; length_width = 4; header_size = 2; break;
        case 0xca: value->type = MSGPACK_VALUE_FLOAT; header_size = 5; break;
        case 0xcb: value->type = MSGPACK_VALUE_FLOAT; header_size = 9; break;
        case 0xcc: value->type = MSGPACK_VALUE_INT; header_size = 2; break;
        case 0xcd: value->type = MSGPACK_VALUE_INT; header_size = 3; break;
        case 0xce: value->type = MSGPACK_VALUE_INT; header_size = 5; break;
        case 0xcf: value->type = MSGPACK_VALUE_INT; header_size = 9; break;
        case 0xd0: value->type = MSGPACK_VALUE_INT; header_size = 2; break;
        case 0xd1: value->type = MSGPACK_VALUE_INT; header_size = 3; break;
        case 0xd2: value->type = MSGPACK_VALUE_INT; header_size = 5; break;
        case 0xd3: value->type = MSGPACK_VALUE_INT; header_size = 9; break;
        /* fixext 1/2/4/8/16: the type byte, then a payload of fixed size. */
        case 0xd4: value->type = MSGPACK_VALUE_EXT; header_size = 2; fixed_payload = 1; break;
        case 0xd5: value->type = MSGPACK_VALUE_EXT; header_size = 2; fixed_payload = 2; break;
        case 0xd6: value->type = MSGPACK_VALUE_EXT; header_size = 2; fixed_payload = 4; break;
        case 0xd7: value->type = MSGPACK_VALUE_EXT; header_size = 2; fixed_payload = 8; break;
        case 0xd8: value->type = MSGPACK_VALUE_EXT; header_size = 2; fixed_payload = 16; break;
        case 0xd9: value->type = MSGPACK_VALUE_STR; length_width = 1; break;
        case 0xda: value->type = MSGPACK_VALUE_STR; length_width = 2; break;
        case 0xdb: value->type = MSGPACK_VALUE_STR; length_width = 4; break;
        case 0xdc: value->type = MSGPACK_VALUE_ARRAY; length_width = 2; break;
        case 0xdd: value->type = MSGPACK_VALUE_ARRAY; length_width = 4; break;
        case 0xde: value->type = MSGPACK_VALUE_MAP; length_width = 2; break;
        default: /* 0xdf */ value->type = MSGPACK_VALUE_MAP; length_width = 4; break;
        }
    }

    header_size += length_width;
    if (header_size > available) {
        reader->error_offset = reader->size;
        return MSGPACK_READER_TRUNCATED;
    }
    size_t payload_length = fixed_payload;
    if (length_width > 0)
        payload_length = (size_t)read_big_endian(start + 1, length_width);

    switch (value->type) {
    case MSGPACK_VALUE_INT:
        if (first >= 0xcc && first <= 0xcf)
            set_unsigned(value, read_big_endian(start + 1, header_size - 1));
        else if (first >= 0xd0 && first <= 0xd3)
            set_signed(value, sign_extend(read_big_endian(start + 1, header_size - 1),
                                          header_size - 1));
        break;
    case MSGPACK_VALUE_FLOAT:
        if (first == 0xca) {
            uint32_t bits = (uint32_t)read_big_endian(start + 1, 4);
            float single;
            memcpy(&single, &bits, sizeof single);
            value->real.value = single;
            value->real.is_float32 = true;
        } else {
            uint64_t bits = read_big_endian(start + 1, 8);
            memcpy(&value->real.value, &bits, sizeof value->real.value);
        }
        break;
    case MSGPACK_VALUE_ARRAY:
    case MSGPACK_VALUE_MAP:
        if (length_width > 0)
            value->count = (uint32_t)payload_length;
        payload_length = 0; /* elements follow as values of their own */
        break;
    default:
        break;
    }

    /* Compare against what is left, never add to the offset first: a 32-bit
     * declared length must not wrap the arithmetic. */
    if (payload_length > available - header_size) {
        reader->error_offset = reader->size;
        return MSGPACK_READER_TRUNCATED;
    }
    const uint8_t *payload = start + header_size;
    switch (value->type) {
    case MSGPACK_VALUE_STR:
        value->str.bytes = (const char *)payload;
        value->str.length = (uint32_t)payload_length;
        break;
    case MSGPACK_VALUE_BIN:
        value->bin.bytes = payload;
        value->bin.length = (uint32_t)payload_length;
        break;
    case MSGPACK_VALUE_EXT:
        value->ext.type = (int8_t)sign_extend(start[header_size - 1], 1);
        value->ext.bytes = payload;
        value->ext.length = (uint32_t)payload_length;
        break;
    default:
        break;
    }
    reader->offset += header_size + payload_length;
    return MSGPACK_READER_OK;
}

enum msgpack_reader_status msgpack_reader_skip(struct msgpack_reader *reader, unsigned max_depth)
{
    /* pending[d] = values still to read in the container open at depth d;
     * pending[0] is the single value being skipped.  Map pairs count as two
     * values, so a 32-bit pair count needs 64 bits here. */
    uint64_t pending[MSGPACK_READER_MAX_DEPTH + 1];
    unsigned depth = 0;
    size_t start_offset = reader->offset;
    enum msgpack_reader_status status = MSGPACK_READER_OK;
    if (max_depth > MSGPACK_READER_MAX_DEPTH)
        max_depth = MSGPACK_READER_MAX_DEPTH;

    pending[0] = 1;
    for (;;) {
        while (depth > 0 && pending[depth] == 0)
            depth--;
        if (depth == 0 && pending[0] == 0)
            return MSGPACK_READER_OK;
        pending[depth]--;

        struct msgpack_value value;
        size_t value_offset = reader->offset;
        status = msgpack_reader_next(reader, &value);
        if (status != MSGPACK_READER_OK)
            goto fail;
        if (value.type != MSGPACK_VALUE_ARRAY && value.type != MSGPACK_VALUE_MAP)
            continue;
        if (depth + 1 > max_depth) {
            reader->error_offset = value_offset;
            status = MSGPACK_READER_TOO_DEEP;
            goto fail;
        }
        uint64_t elements = value.type == MSGPACK_VALUE_MAP ? 2 * (uint64_t)value.count
                                                            : value.count;
        /* Every element takes at least one byte: a larger declared size
         * cannot be satisfied, so say so now instead of counting it down. */
        if (elements > msgpack_reader_remaining(reader)) {
            reader->error_offset = reader->size;
            status = MSGPACK_READER_TRUNCATED;
            goto fail;
        }
        /* An empty container is checked for depth but opens no level. */
        if (elements > 0)
            pending[++depth] = elements;
    }

fail:
    reader->offset = start_offset;
    return status;
}

const char *msgpack_reader_status_name(enum msgpack_reader_status status)
{
    switch (status) {
    case MSGPACK_READER_OK: return "ok";
    case MSGPACK_READER_TRUNCATED: return "truncated";
    case MSGPACK_READER_RESERVED_BYTE: return "reserved_byte";
    case MSGPACK_READER_TOO_DEEP: return "too_deep";
    }
    return NULL;
}

const char *msgpack_value_type_name(enum msgpack_value_type type)
{
    switch (type) {
    case MSGPACK_VALUE_NIL: return "nil";
    case MSGPACK_VALUE_BOOL: return "bool";
    case MSGPACK_VALUE_INT: return "int";
    case MSGPACK_VALUE_FLOAT: return "float";
    case MSGPACK_VALUE_STR: return "str";
    case MSGPACK_VALUE_BIN: return "bin";
    case MSGPACK_VALUE_ARRAY: return "array";
    case MSGPACK_VALUE_MAP: return "map";
    case MSGPACK_VALUE_EXT: return "ext";
    }
    return NULL;
}
