/* Unit tests for the allocation-free msgpack reader: every format family at
 * its boundaries (hand-written bytes, so each exact format is exercised, and
 * msgpack-c's packer as an independent encoder), truncation at every byte,
 * the reserved byte, nesting limits and declared sizes the buffer cannot hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <msgpack.h>
#include <string.h>

#include "msgpack_reader.h"

/* Reads exactly one value from `bytes` and expects it to consume them all. */
static struct msgpack_value read_one(const uint8_t *bytes, size_t size)
{
    struct msgpack_reader reader;
    struct msgpack_value value;
    msgpack_reader_init(&reader, bytes, size);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(msgpack_reader_offset(&reader), size);
    assert_int_equal(msgpack_reader_remaining(&reader), 0);
    assert_int_equal(value.format_byte, bytes[0]);
    return value;
}

static void expect_unsigned(const uint8_t *bytes, size_t size, uint64_t expected)
{
    struct msgpack_value value = read_one(bytes, size);
    assert_int_equal(value.type, MSGPACK_VALUE_INT);
    assert_true(value.integer.fits_uint64);
    assert_true(value.integer.as_uint64 == expected);
    assert_int_equal(value.integer.fits_int64, expected <= (uint64_t)INT64_MAX);
    if (expected <= (uint64_t)INT64_MAX)
        assert_true(value.integer.as_int64 == (int64_t)expected);
}

static void expect_signed(const uint8_t *bytes, size_t size, int64_t expected)
{
    struct msgpack_value value = read_one(bytes, size);
    assert_int_equal(value.type, MSGPACK_VALUE_INT);
    assert_true(value.integer.fits_int64);
    assert_true(value.integer.as_int64 == expected);
    assert_int_equal(value.integer.fits_uint64, expected >= 0);
    if (expected >= 0)
        assert_true(value.integer.as_uint64 == (uint64_t)expected);
}

#define BYTES(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static void test_integers_every_format(void **state)
{
    (void)state;
    expect_unsigned(BYTES(0x00), 0);
    expect_unsigned(BYTES(0x7f), 127);
    expect_signed(BYTES(0xff), -1);
    expect_signed(BYTES(0xe0), -32);
    expect_unsigned(BYTES(0xcc, 0x00), 0);
    expect_unsigned(BYTES(0xcc, 0xff), 255);
    expect_unsigned(BYTES(0xcd, 0x01, 0x00), 256);
    expect_unsigned(BYTES(0xcd, 0xff, 0xff), 65535);
    expect_unsigned(BYTES(0xce, 0xff, 0xff, 0xff, 0xff), 4294967295u);
    expect_unsigned(BYTES(0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
                    (uint64_t)INT64_MAX);
    expect_unsigned(BYTES(0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
                    (uint64_t)INT64_MAX + 1);
    expect_unsigned(BYTES(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), UINT64_MAX);
    expect_signed(BYTES(0xd0, 0x80), -128);
    expect_signed(BYTES(0xd0, 0x7f), 127);
    expect_signed(BYTES(0xd0, 0xdf), -33);
    expect_signed(BYTES(0xd1, 0x80, 0x00), INT16_MIN);
    expect_signed(BYTES(0xd1, 0x7f, 0xff), INT16_MAX);
    expect_signed(BYTES(0xd2, 0x80, 0x00, 0x00, 0x00), INT32_MIN);
    expect_signed(BYTES(0xd2, 0xff, 0xff, 0xff, 0xfe), -2);
    expect_signed(BYTES(0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00), INT64_MIN);
    expect_signed(BYTES(0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), INT64_MAX);
    expect_signed(BYTES(0xd3, 0x00, 0x00, 0x00, 0xdc, 0x6a, 0xcf, 0xac, 0x00), 946684800000LL);
    expect_signed(BYTES(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), -1);
}

static void test_nil_bool_float(void **state)
{
    (void)state;
    assert_int_equal(read_one(BYTES(0xc0)).type, MSGPACK_VALUE_NIL);
    struct msgpack_value value = read_one(BYTES(0xc2));
    assert_int_equal(value.type, MSGPACK_VALUE_BOOL);
    assert_false(value.boolean);
    value = read_one(BYTES(0xc3));
    assert_int_equal(value.type, MSGPACK_VALUE_BOOL);
    assert_true(value.boolean);
    /* 1.5f = 0x3fc00000 */
    value = read_one(BYTES(0xca, 0x3f, 0xc0, 0x00, 0x00));
    assert_int_equal(value.type, MSGPACK_VALUE_FLOAT);
    assert_true(value.real.is_float32);
    assert_true(value.real.value == 1.5);
    /* -2.25 = 0xc002000000000000 */
    value = read_one(BYTES(0xcb, 0xc0, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00));
    assert_int_equal(value.type, MSGPACK_VALUE_FLOAT);
    assert_false(value.real.is_float32);
    assert_true(value.real.value == -2.25);
}

/* Builds a str/bin of `length` 'x' bytes after `header`. */
static size_t build_payload(uint8_t *buffer, const uint8_t *header, size_t header_size,
                            size_t length)
{
    memcpy(buffer, header, header_size);
    memset(buffer + header_size, 'x', length);
    return header_size + length;
}

static void expect_str(const uint8_t *header, size_t header_size, size_t length,
                       enum msgpack_value_type type)
{
    static uint8_t buffer[70000];
    size_t size = build_payload(buffer, header, header_size, length);
    struct msgpack_value value = read_one(buffer, size);
    assert_int_equal(value.type, type);
    if (type == MSGPACK_VALUE_STR) {
        assert_int_equal(value.str.length, length);
        assert_ptr_equal(value.str.bytes, (const char *)buffer + header_size);
    } else {
        assert_int_equal(value.bin.length, length);
        assert_ptr_equal(value.bin.bytes, buffer + header_size);
    }
}

static void test_str_and_bin_every_format(void **state)
{
    (void)state;
    expect_str(BYTES(0xa0), 0, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xbf), 31, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xd9, 0x00), 0, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xd9, 0xff), 255, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xda, 0x01, 0x00), 256, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xda, 0xff, 0xff), 65535, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xdb, 0x00, 0x01, 0x00, 0x00), 65536, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xdb, 0x00, 0x00, 0x00, 0x03), 3, MSGPACK_VALUE_STR);
    expect_str(BYTES(0xc4, 0xff), 255, MSGPACK_VALUE_BIN);
    expect_str(BYTES(0xc5, 0x01, 0x00), 256, MSGPACK_VALUE_BIN);
    expect_str(BYTES(0xc6, 0x00, 0x01, 0x00, 0x01), 65537, MSGPACK_VALUE_BIN);
    expect_str(BYTES(0xc4, 0x00), 0, MSGPACK_VALUE_BIN);

    struct msgpack_value value = read_one(BYTES(0xa3, 'a', 'b', 'c'));
    assert_int_equal(value.str.length, 3);
    assert_memory_equal(value.str.bytes, "abc", 3);
}

static void expect_ext(const uint8_t *bytes, size_t size, int8_t type, uint32_t length,
                       size_t payload_offset)
{
    struct msgpack_value value = read_one(bytes, size);
    assert_int_equal(value.type, MSGPACK_VALUE_EXT);
    assert_int_equal(value.ext.type, type);
    assert_int_equal(value.ext.length, length);
    assert_ptr_equal(value.ext.bytes, bytes + payload_offset);
}

static void test_ext_every_format(void **state)
{
    (void)state;
    static uint8_t buffer[70000];
    expect_ext(BYTES(0xd4, 0x05, 0xaa), 5, 1, 2);
    expect_ext(BYTES(0xd5, 0xff, 1, 2), -1, 2, 2);
    expect_ext(BYTES(0xd6, 0x80, 1, 2, 3, 4), -128, 4, 2);
    expect_ext(BYTES(0xd7, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8), 127, 8, 2);
    expect_ext(BYTES(0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16), 1, 16,
               2);
    expect_ext(BYTES(0xc7, 0x00, 0x07), 7, 0, 3);
    expect_ext(BYTES(0xc7, 0x03, 0xfe, 'a', 'b', 'c'), -2, 3, 3);
    size_t size = build_payload(buffer, BYTES(0xc8, 0x01, 0x00, 0x09), 256);
    expect_ext(buffer, size, 9, 256, 4);
    size = build_payload(buffer, BYTES(0xc9, 0x00, 0x01, 0x00, 0x00, 0x0a), 65536);
    expect_ext(buffer, size, 10, 65536, 6);
}

static void test_container_headers(void **state)
{
    (void)state;
    struct {
        uint8_t bytes[5];
        size_t size;
        enum msgpack_value_type type;
        uint32_t count;
    } cases[] = {
        {{0x90}, 1, MSGPACK_VALUE_ARRAY, 0},
        {{0x9f}, 1, MSGPACK_VALUE_ARRAY, 15},
        {{0xdc, 0x00, 0x10}, 3, MSGPACK_VALUE_ARRAY, 16},
        {{0xdc, 0xff, 0xff}, 3, MSGPACK_VALUE_ARRAY, 65535},
        {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5, MSGPACK_VALUE_ARRAY, UINT32_MAX},
        {{0x80}, 1, MSGPACK_VALUE_MAP, 0},
        {{0x8f}, 1, MSGPACK_VALUE_MAP, 15},
        {{0xde, 0x00, 0x10}, 3, MSGPACK_VALUE_MAP, 16},
        {{0xdf, 0x00, 0x01, 0x00, 0x00}, 5, MSGPACK_VALUE_MAP, 65536},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* Only the header is read: the declared elements are not there and
         * that is not next()'s business. */
        struct msgpack_value value = read_one(cases[i].bytes, cases[i].size);
        assert_int_equal(value.type, cases[i].type);
        assert_int_equal(value.count, cases[i].count);
    }
}

/* Packs a sequence with msgpack-c and checks that the reader, reading value
 * by value, sees what was packed. */
static void test_agrees_with_msgpack_c(void **state)
{
    (void)state;
    static const int64_t signed_values[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL, INT64_MAX,
        -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN};
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    size_t signed_count = sizeof signed_values / sizeof signed_values[0];
    for (size_t i = 0; i < signed_count; i++)
        msgpack_pack_int64(&packer, signed_values[i]);
    msgpack_pack_uint64(&packer, UINT64_MAX);
    msgpack_pack_double(&packer, 0.1);
    msgpack_pack_float(&packer, -0.5f);
    msgpack_pack_str_with_body(&packer, "hello", 5);
    msgpack_pack_bin_with_body(&packer, "\x00\x01", 2);
    msgpack_pack_map(&packer, 70000);
    msgpack_pack_array(&packer, 20);
    msgpack_pack_nil(&packer);
    msgpack_pack_true(&packer);

    struct msgpack_reader reader;
    struct msgpack_value value;
    msgpack_reader_init(&reader, buffer.data, buffer.size);
    for (size_t i = 0; i < signed_count; i++) {
        assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
        assert_int_equal(value.type, MSGPACK_VALUE_INT);
        assert_true(value.integer.fits_int64);
        assert_true(value.integer.as_int64 == signed_values[i]);
    }
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_false(value.integer.fits_int64);
    assert_true(value.integer.as_uint64 == UINT64_MAX);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_true(value.real.value == 0.1 && !value.real.is_float32);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_true(value.real.value == -0.5 && value.real.is_float32);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(value.type, MSGPACK_VALUE_STR);
    assert_int_equal(value.str.length, 5);
    assert_memory_equal(value.str.bytes, "hello", 5);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(value.type, MSGPACK_VALUE_BIN);
    assert_int_equal(value.bin.length, 2);
    assert_memory_equal(value.bin.bytes, "\x00\x01", 2);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(value.type, MSGPACK_VALUE_MAP);
    assert_int_equal(value.count, 70000);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(value.type, MSGPACK_VALUE_ARRAY);
    assert_int_equal(value.count, 20);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(value.type, MSGPACK_VALUE_NIL);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(value.type, MSGPACK_VALUE_BOOL);
    assert_int_equal(msgpack_reader_remaining(&reader), 0);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_TRUNCATED);
    assert_int_equal(reader.error_offset, buffer.size);
    msgpack_sbuffer_destroy(&buffer);
}

/* A message using many formats; every strict prefix must fail to skip (and
 * leave the position at 0), the whole must skip exactly. */
static void test_truncated_at_every_byte(void **state)
{
    (void)state;
    static const uint8_t message[] = {
        0x87,                                     /* map of 7 pairs */
        0xa1, 'a', 0xcd, 0x12, 0x34,              /* "a": uint16 */
        0xa1, 'b', 0x92, 0xd2, 0xff, 0xff, 0xff, 0x00, 0xc3, /* "b": [int32, true] */
        0xa1, 'c', 0xd9, 0x02, 'h', 'i',          /* "c": str8 */
        0xa1, 'd', 0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18, /* "d": float64 */
        0xa1, 'e', 0xc7, 0x01, 0x05, 0xee,        /* "e": ext8 */
        0xa1, 'f', 0x81, 0xc0, 0xc5, 0x00, 0x01, 0x7a, /* "f": {nil: bin16} */
        0xa1, 'g', 0xcf, 0, 0, 0, 0, 0, 0, 0, 1,  /* "g": uint64 */
    };
    struct msgpack_reader reader;
    for (size_t size = 0; size < sizeof message; size++) {
        msgpack_reader_init(&reader, message, size);
        assert_int_equal(msgpack_reader_skip(&reader, 8), MSGPACK_READER_TRUNCATED);
        assert_int_equal(msgpack_reader_offset(&reader), 0);
        assert_int_equal(reader.error_offset, size);
    }
    msgpack_reader_init(&reader, message, sizeof message);
    assert_int_equal(msgpack_reader_skip(&reader, 8), MSGPACK_READER_OK);
    assert_int_equal(msgpack_reader_offset(&reader), sizeof message);

    /* next() on a truncated scalar also fails without moving. */
    static const uint8_t scalars[][9] = {
        {0xcc}, {0xcd, 0x01}, {0xce, 1, 2, 3}, {0xcf, 1, 2, 3, 4, 5, 6, 7}, {0xd0},
        {0xd3, 1}, {0xca, 1, 2}, {0xcb}, {0xa2, 'x'}, {0xd9}, {0xda, 0x00},
        {0xc4, 0x02, 0x00}, {0xd4, 0x01}, {0xd8, 0x01, 1, 2}, {0xc7, 0x01}, {0xc9, 0, 0, 0},
    };
    static const size_t sizes[] = {1, 2, 4, 8, 1, 2, 3, 1, 2, 1, 2, 3, 2, 4, 2, 4};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct msgpack_value value;
        msgpack_reader_init(&reader, scalars[i], sizes[i]);
        assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_TRUNCATED);
        assert_int_equal(msgpack_reader_offset(&reader), 0);
    }
}

static void test_reserved_byte(void **state)
{
    (void)state;
    struct msgpack_reader reader;
    struct msgpack_value value;
    msgpack_reader_init(&reader, BYTES(0xc1));
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_RESERVED_BYTE);
    assert_int_equal(reader.error_offset, 0);
    assert_int_equal(msgpack_reader_offset(&reader), 0);
    /* Inside a container: found by skip, at its offset, position restored. */
    msgpack_reader_init(&reader, BYTES(0x93, 0x01, 0x02, 0xc1));
    assert_int_equal(msgpack_reader_skip(&reader, 4), MSGPACK_READER_RESERVED_BYTE);
    assert_int_equal(reader.error_offset, 3);
    assert_int_equal(msgpack_reader_offset(&reader), 0);
}

static void test_empty_and_null_buffer(void **state)
{
    (void)state;
    struct msgpack_reader reader;
    struct msgpack_value value;
    msgpack_reader_init(&reader, NULL, 0);
    assert_int_equal(msgpack_reader_remaining(&reader), 0);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_TRUNCATED);
    assert_int_equal(msgpack_reader_skip(&reader, 4), MSGPACK_READER_TRUNCATED);
    /* A NULL buffer claims no bytes whatever size says. */
    msgpack_reader_init(&reader, NULL, 100);
    assert_int_equal(msgpack_reader_remaining(&reader), 0);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_TRUNCATED);
}

/* `levels` nested single-element arrays around a 0. */
static size_t build_nested(uint8_t *buffer, size_t levels)
{
    memset(buffer, 0x91, levels);
    buffer[levels] = 0x00;
    return levels + 1;
}

static void test_depth_limit(void **state)
{
    (void)state;
    static uint8_t buffer[100000];
    struct msgpack_reader reader;
    for (unsigned limit = 0; limit <= 10; limit++) {
        size_t size = build_nested(buffer, limit);
        msgpack_reader_init(&reader, buffer, size);
        assert_int_equal(msgpack_reader_skip(&reader, limit), MSGPACK_READER_OK);
        assert_int_equal(msgpack_reader_offset(&reader), size);
        size = build_nested(buffer, limit + 1);
        msgpack_reader_init(&reader, buffer, size);
        assert_int_equal(msgpack_reader_skip(&reader, limit), MSGPACK_READER_TOO_DEEP);
        assert_int_equal(reader.error_offset, limit);
        assert_int_equal(msgpack_reader_offset(&reader), 0);
    }
    /* Empty containers count as a level too. */
    msgpack_reader_init(&reader, BYTES(0x91, 0x80));
    assert_int_equal(msgpack_reader_skip(&reader, 1), MSGPACK_READER_TOO_DEEP);
    msgpack_reader_init(&reader, BYTES(0x91, 0x80));
    assert_int_equal(msgpack_reader_skip(&reader, 2), MSGPACK_READER_OK);
    /* Map values nest too; siblings do not add depth. */
    msgpack_reader_init(&reader, BYTES(0x82, 0x01, 0x91, 0x02, 0x03, 0x91, 0x04));
    assert_int_equal(msgpack_reader_skip(&reader, 2), MSGPACK_READER_OK);
    assert_int_equal(msgpack_reader_offset(&reader), 7);
    msgpack_reader_init(&reader, BYTES(0x81, 0x01, 0x91, 0x91, 0x02));
    assert_int_equal(msgpack_reader_skip(&reader, 2), MSGPACK_READER_TOO_DEEP);
    assert_int_equal(reader.error_offset, 3);

    /* Limits above the ceiling act as the ceiling; 90,000 levels never
     * recurse or overflow anything. */
    size_t size = build_nested(buffer, MSGPACK_READER_MAX_DEPTH);
    msgpack_reader_init(&reader, buffer, size);
    assert_int_equal(msgpack_reader_skip(&reader, 100000), MSGPACK_READER_OK);
    size = build_nested(buffer, MSGPACK_READER_MAX_DEPTH + 1);
    msgpack_reader_init(&reader, buffer, size);
    assert_int_equal(msgpack_reader_skip(&reader, 100000), MSGPACK_READER_TOO_DEEP);
    assert_int_equal(reader.error_offset, MSGPACK_READER_MAX_DEPTH);
    size = build_nested(buffer, 90000);
    msgpack_reader_init(&reader, buffer, size);
    assert_int_equal(msgpack_reader_skip(&reader, 100000), MSGPACK_READER_TOO_DEEP);
}

static void test_huge_declared_sizes(void **state)
{
    (void)state;
    struct msgpack_reader reader;
    struct msgpack_value value;
    /* Containers: next() reads the header; skip() refuses at once because
     * the buffer cannot hold that many elements. */
    static const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x00};
    msgpack_reader_init(&reader, array32, sizeof array32);
    assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_OK);
    assert_int_equal(value.count, UINT32_MAX);
    msgpack_reader_init(&reader, array32, sizeof array32);
    assert_int_equal(msgpack_reader_skip(&reader, 4), MSGPACK_READER_TRUNCATED);
    assert_int_equal(msgpack_reader_offset(&reader), 0);
    msgpack_reader_init(&reader, BYTES(0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02));
    assert_int_equal(msgpack_reader_skip(&reader, 4), MSGPACK_READER_TRUNCATED);
    /* A map of 1 pair needs 2 values, not 1. */
    msgpack_reader_init(&reader, BYTES(0x81, 0x01));
    assert_int_equal(msgpack_reader_skip(&reader, 4), MSGPACK_READER_TRUNCATED);
    msgpack_reader_init(&reader, BYTES(0xde, 0x00, 0x01, 0x01, 0x02));
    assert_int_equal(msgpack_reader_skip(&reader, 4), MSGPACK_READER_OK);
    /* Payloads: lengths larger than what is left fail without wrapping. */
    static const uint8_t payloads[][6] = {
        {0xdb, 0xff, 0xff, 0xff, 0xff, 'x'},
        {0xc6, 0xff, 0xff, 0xff, 0xff, 'x'},
        {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
        {0xda, 0xff, 0xff, 'x', 'y', 'z'},
        {0xd9, 0x05, 'a', 'b', 'c', 'd'},
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        msgpack_reader_init(&reader, payloads[i], sizeof payloads[i]);
        assert_int_equal(msgpack_reader_next(&reader, &value), MSGPACK_READER_TRUNCATED);
        assert_int_equal(msgpack_reader_offset(&reader), 0);
        assert_int_equal(reader.error_offset, sizeof payloads[i]);
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(msgpack_reader_status_name(MSGPACK_READER_OK), "ok");
    assert_string_equal(msgpack_reader_status_name(MSGPACK_READER_TOO_DEEP), "too_deep");
    assert_null(msgpack_reader_status_name((enum msgpack_reader_status)99));
    assert_string_equal(msgpack_value_type_name(MSGPACK_VALUE_MAP), "map");
    assert_string_equal(msgpack_value_type_name(MSGPACK_VALUE_EXT), "ext");
    assert_null(msgpack_value_type_name((enum msgpack_value_type)99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers_every_format),
        cmocka_unit_test(test_nil_bool_float),
        cmocka_unit_test(test_str_and_bin_every_format),
        cmocka_unit_test(test_ext_every_format),
        cmocka_unit_test(test_container_headers),
        cmocka_unit_test(test_agrees_with_msgpack_c),
        cmocka_unit_test(test_truncated_at_every_byte),
        cmocka_unit_test(test_reserved_byte),
        cmocka_unit_test(test_empty_and_null_buffer),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_huge_declared_sizes),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
