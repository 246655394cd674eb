/* Strict reading of the '|'-joined values duewatchd stores in Redis (clock
 * records, outbox payloads: include/formats.h): a value splits into an
 * exact number of fields, each read as bounded text or as a strict number
 * (decimal, or base 36).  Anything else is reported into the caller's
 * buffer, never guessed. */
#ifndef DUEWATCH_FIELDS_H
#define DUEWATCH_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One field of a value: points into it, not NUL-terminated. */
struct field {
    const char *bytes;
    size_t length;
};

/* Splits value into exactly `count` '|'-separated fields.  Returns 0, or -1
 * with "N fields, expected M" in err (counting stops one past `count`, so a
 * huge value is not scanned to its end for the message). */
int fields_split(const char *value, size_t size, struct field *fields, size_t count, char *err,
                 size_t err_size);

/* A stored value of version N from 1 to FORMAT_VERSION begins with the tag
 * "@N|" (include/formats.h), one of version 0 has none: skips the tag and
 * sets *version.  Returns 0, or -1 with "<what> format @N... is not one
 * this daemon reads" for another version's tag (a newer release's). */
int fields_strip_version(const char **value, size_t *size, const char *what, int *version,
                         char *err, size_t err_size);

bool field_equals(struct field field, const char *text);

/* Copies a text field into out (out_size bytes, NUL-terminated).  Refuses an
 * empty field unless may_be_empty, one too long, and one holding a NUL byte.
 * Returns 0, or -1 with a reason naming `name` in err. */
int field_copy_text(struct field field, const char *name, bool may_be_empty, char *out,
                    size_t out_size, char *err, size_t err_size);

/* Strict decimal: an optional '-' then digits, nothing else (no '+', no
 * spaces), within [minimum, maximum].  Returns 0, or -1 with a reason. */
int field_parse_decimal(struct field field, const char *name, int64_t minimum, int64_t maximum,
                        int64_t *out, char *err, size_t err_size);

/* A number in base 36 (format version 4's clock record): an optional '-',
 * then digits 0-9 and a-z, nothing else (no capitals, '+' or spaces),
 * within [minimum, maximum].  Returns 0, or -1 with a reason. */
int field_parse_base36(struct field field, const char *name, int64_t minimum, int64_t maximum,
                       int64_t *out, char *err, size_t err_size);

/* Room for any int64 in base 36, its sign and the NUL. */
#define FIELD_BASE36_MAX 16
/* Writes `value` as field_parse_base36 reads it; returns its length. */
size_t field_format_base36(int64_t value, char out[FIELD_BASE36_MAX]);

#endif
