/* A running clock as the deadline engine reads it, for people.
 *
 * `duewatchd -c FILE --explain-clock RULE` (the operator tool's `duewatch
 * clock RULE KEY` reads the record from Redis and hands it over) decodes a
 * stored clock record of any format version and prints what the engine
 * computes from it under the configured rule and calendar -- the deadline,
 * the last day, the due time of each level -- as one JSON object:
 *
 *   {"rule", "unit", "case", "subject", "cause", "partition": strings,
 *    "started_at", "deadline": epoch ms, "last_day": "YYYY-MM-DD" or null,
 *    "paused_since": epoch ms or null, "paused_total_ms", "extensions",
 *    "extended_days": integers, "provisional": whether the deadline falls in
 *    a provisional calendar year,
 *    "levels": [{"level": "yellow"|"orange"|"red", "due_at": epoch ms or
 *                null (the calendar cannot say), "done": the clock is past
 *                it (sent, or collapsed into a later level)}, ...] for the
 *              rule's levels (red: its first time, at the deadline),
 *    "red_repeat_ms": 0 when red does not repeat, "fired": the highest
 *    level sent or null, "next": {"level", "repeat" (red's: 0 the first),
 *    "due_at"} or null: where the clock is armed}
 *
 * So the tool shows a clock without a second definition of the law's
 * arithmetic (tests/unit/test_clock_explain.c, tests/e2e/test_tool.py). */
#ifndef DUEWATCH_CLOCK_EXPLAIN_H
#define DUEWATCH_CLOCK_EXPLAIN_H

#include <stddef.h>
#include <stdio.h>

struct clock_setup;

/* Reads one record as stored (a trailing newline is ignored) from `in` to
 * its end, and writes its JSON object and a newline to `out`.  Returns 0, or
 * -1 with a message in err (an unknown rule, a record too long or that does
 * not decode); nothing is written then. */
int clock_explain(const struct clock_setup *setup, const char *rule, FILE *in, FILE *out,
                  char *err, size_t err_size);

#endif
