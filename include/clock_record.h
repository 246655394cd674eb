/* A clock's record as stored in <prefix>clock:<rule>:<key> (the fields and
 * their versions: include/formats.h), decoded into a struct the deadline
 * engine (clock_engine.h) works on, and encoded back. */
#ifndef DUEWATCH_CLOCK_RECORD_H
#define DUEWATCH_CLOCK_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats.h"

#define CLOCK_TEXT_MAX 65       /* identifiers: at most 64 bytes */
#define CLOCK_PARTITION_MAX 300 /* "<topic>:<partition>" */
/* Room for any encoded record. */
#define CLOCK_RECORD_MAX (FORMAT_TAG_LENGTH + 4 * CLOCK_TEXT_MAX + CLOCK_PARTITION_MAX + 11 * 24)

struct clock_record {
    char unit[CLOCK_TEXT_MAX], case_number[CLOCK_TEXT_MAX], subject[CLOCK_TEXT_MAX],
        cause[CLOCK_TEXT_MAX];
    int64_t started_at_ms;
    bool has_last_day;
    int32_t last_day;
    int64_t base_deadline_ms; /* before pauses */
    int64_t paused_total_ms;
    bool paused;
    int64_t paused_since_ms;
    int32_t fired; /* -1 none, 0 yellow, 1 orange, 2 red */
    int64_t seq;   /* the next red repeat */
    bool armed;
    int64_t next_due_ms;
    char partition[CLOCK_PARTITION_MAX];
    int32_t extensions;    /* extensions applied (0 in a record of version 0 or 1) */
    int32_t extended_days; /* the days they added */
    int32_t version; /* the format version it was decoded from (formats.h), which says
                        where its due entry is; FORMAT_VERSION once armed here */
};

/* Decodes a record of the current or a previous format version (0, 1).  Returns
 * 0, or -1 with a reason in err (wrong field count, a bad number, an unknown
 * version). */
int clock_record_decode(const char *value, size_t size, struct clock_record *out, char *err,
                        size_t err_size);

/* Encodes `record` in the current format into buf (NUL-terminated).
 * Returns its length, or -1 when it does not fit. */
int clock_record_encode(const struct clock_record *record, char *buf, size_t buf_size);

/* The effective deadline: base deadline plus the time paused. */
int64_t clock_record_deadline(const struct clock_record *record);

#endif
