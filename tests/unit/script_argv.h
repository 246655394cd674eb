/* Shared by the unit tests that check a script call's arguments
 * (test_batch.c, test_effects.c): an `EVALSHA sha 0 ARGV...` for
 * daemon/lua/apply_effects.lua read back the way the script reads it (its
 * header has the layout) into one line per part, so a test compares lines:
 *
 *   "EVALSHA <sha> 0 <version> <fence chain> <fence position>"
 *   "checks <C>"
 *   one line per check:   "V key value" | "A key" | "H key field value" | "h key field"
 *   one line per command: "<name> <argument> ..." (its count consumed: a count
 *                         that does not match what follows breaks the lines)
 *
 * Arguments are joined by one space; an empty argument shows as ''.  Any
 * argument that holds a NUL byte, a count that is not a number or runs past
 * the end, or more lines than fit fails the test. */
#ifndef DUEWATCH_TEST_SCRIPT_ARGV_H
#define DUEWATCH_TEST_SCRIPT_ARGV_H

#include "formats.h"

#define ARGS_VERSION SCRIPT_ARGS_VERSION_TEXT

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARGV_LINE_MAX 1024
#define ARGV_LINES_MAX 256

struct argv_lines {
    size_t count;
    char line[ARGV_LINES_MAX][ARGV_LINE_MAX];
};

/* Appends argument `index` to the line being written. */
static inline void argv_lines_append(struct argv_lines *out, const char **argv,
                                     const size_t *lengths, int index, int argc)
{
    if (index >= argc)
        fail_msg("argument %d is missing (%d arguments)", index, argc);
    char *line = out->line[out->count];
    size_t used = strlen(line);
    if (memchr(argv[index], '\0', lengths[index]) != NULL)
        fail_msg("argument %d holds a NUL byte", index);
    int written = snprintf(line + used, ARGV_LINE_MAX - used, "%s%.*s", used ? " " : "",
                           lengths[index] ? (int)lengths[index] : 2,
                           lengths[index] ? argv[index] : "''");
    if (written < 0 || (size_t)written >= ARGV_LINE_MAX - used)
        fail_msg("line %zu is too long for the test", out->count);
}

static inline void argv_lines_next(struct argv_lines *out)
{
    if (++out->count == ARGV_LINES_MAX)
        fail_msg("more than %d lines", ARGV_LINES_MAX);
    out->line[out->count][0] = '\0';
}

/* A decimal argument, for counts. */
static inline long argv_number(const char **argv, const size_t *lengths, int index, int argc)
{
    if (index >= argc)
        fail_msg("argument %d is missing (%d arguments)", index, argc);
    char text[24];
    if (lengths[index] == 0 || lengths[index] >= sizeof text)
        fail_msg("argument %d is not a count", index);
    memcpy(text, argv[index], lengths[index]);
    text[lengths[index]] = '\0';
    char *end;
    long number = strtol(text, &end, 10);
    if (*end != '\0' || number < 0)
        fail_msg("argument %d ('%s') is not a count", index, text);
    return number;
}

/* Reads an apply_effects.lua call into lines (layout above). */
static inline void argv_lines_read(int argc, const char **argv, const size_t *lengths,
                                   struct argv_lines *out)
{
    out->count = 0;
    out->line[0][0] = '\0';
    int at = 0;
    for (; at < 6; at++)
        argv_lines_append(out, argv, lengths, at, argc);
    argv_lines_next(out);
    long checks = argv_number(argv, lengths, at, argc);
    snprintf(out->line[out->count], ARGV_LINE_MAX, "checks %ld", checks);
    argv_lines_next(out);
    at++;
    for (long c = 0; c < checks; c++) {
        if (at >= argc)
            fail_msg("check %ld is missing", c);
        char kind = lengths[at] == 1 ? argv[at][0] : '?';
        int parts = kind == 'V' || kind == 'h' ? 3 : kind == 'A' ? 2 : kind == 'H' ? 4 : 0;
        if (parts == 0)
            fail_msg("check %ld has kind '%.*s'", c, (int)lengths[at], argv[at]);
        for (int p = 0; p < parts; p++)
            argv_lines_append(out, argv, lengths, at++, argc);
        argv_lines_next(out);
    }
    while (at < argc) {
        argv_lines_append(out, argv, lengths, at, argc);
        long count = argv_number(argv, lengths, at + 1, argc);
        if (count < 1)
            fail_msg("command at %d has no arguments", at);
        at += 2;
        for (long k = 0; k < count; k++)
            argv_lines_append(out, argv, lengths, at++, argc);
        argv_lines_next(out);
    }
}

/* The lines equal `expected`, one by one; on a difference every actual
 * line is printed, to show where the two part. */
static inline void argv_lines_expect(const struct argv_lines *actual,
                                     const char *const *expected, size_t expected_count)
{
    size_t common = actual->count < expected_count ? actual->count : expected_count;
    for (size_t i = 0; i <= common; i++) {
        bool same = i < common ? strcmp(actual->line[i], expected[i]) == 0
                               : actual->count == expected_count;
        if (same)
            continue;
        for (size_t k = 0; k < actual->count; k++)
            fprintf(stderr, "    actual %3zu: %s\n", k, actual->line[k]);
        if (i < common)
            fail_msg("line %zu: '%s', expected '%s'", i, actual->line[i], expected[i]);
        fail_msg("%zu lines, expected %zu", actual->count, expected_count);
    }
}

#endif
