/* Strict field reading (see fields.h). */
#include "fields.h"

#include "formats.h"

#include <stdio.h>
#include <string.h>

int fields_split(const char *value, size_t size, struct field *fields, size_t count, char *err,
                 size_t err_size)
{
    size_t found = 0;
    size_t field_start = 0;
    if (value == NULL)
        size = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && value[i] != '|')
            continue;
        if (found == count) {
            snprintf(err, err_size, "more than %zu fields", count);
            return -1;
        }
        fields[found].bytes = value + field_start;
        fields[found].length = i - field_start;
        found++;
        field_start = i + 1;
    }
    if (found != count) {
        snprintf(err, err_size, "%zu fields, expected %zu", found, count);
        return -1;
    }
    return 0;
}

bool field_equals(struct field field, const char *text)
{
    return field.length == strlen(text) && memcmp(field.bytes, text, field.length) == 0;
}

int field_copy_text(struct field field, const char *name, bool may_be_empty, char *out,
                    size_t out_size, char *err, size_t err_size)
{
    if (field.length == 0 && !may_be_empty) {
        snprintf(err, err_size, "%s is empty", name);
        return -1;
    }
    if (field.length > out_size - 1) {
        snprintf(err, err_size, "%s is %zu bytes, at most %zu allowed", name, field.length,
                 out_size - 1);
        return -1;
    }
    if (memchr(field.bytes, '\0', field.length) != NULL) {
        snprintf(err, err_size, "%s contains a NUL byte", name);
        return -1;
    }
    memcpy(out, field.bytes, field.length);
    out[field.length] = '\0';
    return 0;
}

/* The value of digit c in `radix` (10: 0-9; 36: 0-9 then a-z), or -1. */
static int digit_value(char c, int radix)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (radix == 36 && c >= 'a' && c <= 'z')
        return c - 'a' + 10;
    return -1;
}

static int parse_number(struct field field, const char *name, int radix, int64_t minimum,
                        int64_t maximum, int64_t *out, char *err, size_t err_size)
{
    const char *what = radix == 10 ? "a decimal integer" : "a base-36 integer";
    size_t at = 0;
    bool negative = field.length > 0 && field.bytes[0] == '-';
    if (negative)
        at = 1;
    if (at == field.length) {
        snprintf(err, err_size, "%s is not %s", name, what);
        return -1;
    }
    /* Accumulate as a negative number: its range includes INT64_MIN. */
    int64_t value = 0;
    for (; at < field.length; at++) {
        int digit = digit_value(field.bytes[at], radix);
        if (digit < 0) {
            snprintf(err, err_size, "%s is not %s", name, what);
            return -1;
        }
        if (value < (INT64_MIN + digit) / radix) {
            snprintf(err, err_size, "%s is out of range", name);
            return -1;
        }
        value = value * radix - digit;
    }
    if (!negative) {
        if (value == INT64_MIN) {
            snprintf(err, err_size, "%s is out of range", name);
            return -1;
        }
        value = -value;
    }
    if (value < minimum || value > maximum) {
        snprintf(err, err_size, "%s is out of range", name);
        return -1;
    }
    *out = value;
    return 0;
}

int field_parse_decimal(struct field field, const char *name, int64_t minimum, int64_t maximum,
                        int64_t *out, char *err, size_t err_size)
{
    return parse_number(field, name, 10, minimum, maximum, out, err, err_size);
}

int field_parse_base36(struct field field, const char *name, int64_t minimum, int64_t maximum,
                       int64_t *out, char *err, size_t err_size)
{
    return parse_number(field, name, 36, minimum, maximum, out, err, err_size);
}

size_t field_format_base36(int64_t value, char out[FIELD_BASE36_MAX])
{
    char reversed[FIELD_BASE36_MAX];
    size_t length = 0;
    /* Digits of the magnitude, computed on the negative side (INT64_MIN). */
    int64_t rest = value < 0 ? value : -value;
    do {
        reversed[length++] = "0123456789abcdefghijklmnopqrstuvwxyz"[-(rest % 36)];
        rest /= 36;
    } while (rest != 0);
    size_t at = 0;
    if (value < 0)
        out[at++] = '-';
    while (length > 0)
        out[at++] = reversed[--length];
    out[at] = '\0';
    return at;
}

int fields_strip_version(const char **value, size_t *size, const char *what, int *version,
                         char *err, size_t err_size)
{
    if (*value == NULL)
        *size = 0;
    *version = 0;
    if (*size == 0 || (*value)[0] != '@')
        return 0; /* version 0: identifiers never begin with '@' */
    /* "@<digit>|" of a version from 1 to the current one */
    if (*size >= FORMAT_TAG_LENGTH && (*value)[2] == '|' && (*value)[1] >= '1' &&
        (*value)[1] <= '0' + FORMAT_VERSION) {
        *version = (*value)[1] - '0';
        *value += FORMAT_TAG_LENGTH;
        *size -= FORMAT_TAG_LENGTH;
        return 0;
    }
    snprintf(err, err_size, "%s format %.*s is not one this daemon reads", what,
             (int)(*size < 8 ? *size : 8), *value);
    return -1;
}
