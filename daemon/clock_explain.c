/* A running clock as the deadline engine reads it (see clock_explain.h). */
#include "clock_explain.h"

#include "calendar.h"
#include "clock_engine.h"
#include "clock_record.h"
#include "clock_setup.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>

/* A JSON string of stored text: identifiers and topic names, escaped all
 * the same. */
static void json_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void json_ms_or_null(FILE *out, bool present, int64_t ms)
{
    if (present)
        fprintf(out, "%" PRId64, ms);
    else
        fputs("null", out);
}

static void write_identity(FILE *out, const char *rule, const struct clock_record *c)
{
    const char *names[6] = {"rule", "unit", "case", "subject", "cause", "partition"};
    const char *values[6] = {rule, c->unit, c->case_number, c->subject, c->cause, c->partition};
    fputc('{', out);
    for (int i = 0; i < 6; i++) {
        fprintf(out, "%s\"%s\":", i ? "," : "", names[i]);
        json_string(out, values[i]);
    }
}

static void write_terms(FILE *out, const struct clock_record *c, bool provisional)
{
    fprintf(out, ",\"started_at\":%" PRId64 ",\"deadline\":%" PRId64 ",\"last_day\":",
            c->started_at_ms, clock_record_deadline(c));
    if (c->has_last_day) {
        char day[16];
        calendar_format_day(c->last_day, day, sizeof day);
        json_string(out, day);
    } else {
        fputs("null", out);
    }
    fputs(",\"paused_since\":", out);
    json_ms_or_null(out, c->paused, c->paused_since_ms);
    fprintf(out,
            ",\"paused_total_ms\":%" PRId64 ",\"extensions\":%" PRId32
            ",\"extended_days\":%" PRId32 ",\"provisional\":%s",
            c->paused_total_ms, c->extensions, c->extended_days, provisional ? "true" : "false");
}

/* The rule's levels, each with its due time (red: the first) and whether the
 * clock is past it (it was sent, or collapsed into a later one); the red
 * repeat period, the highest level fired and where the clock is armed. */
static void write_levels(FILE *out, struct clock_engine *engine, const struct engine_clock *clock)
{
    const struct clock_record *c = &clock->record;
    const struct deadline_spec *spec = clock->spec;
    bool has_level[3] = {spec->has_yellow, spec->has_orange, true};
    fputs(",\"levels\":[", out);
    bool first = true;
    for (int level = 0; level < 3; level++) {
        if (!has_level[level])
            continue;
        int64_t due = 0;
        bool known = clock_engine_level_due(engine, clock, level, 0, &due);
        fprintf(out, "%s{\"level\":\"%s\",\"due_at\":", first ? "" : ",",
                clock_engine_level_name(level));
        json_ms_or_null(out, known, due);
        fprintf(out, ",\"done\":%s}", c->fired >= level ? "true" : "false");
        first = false;
    }
    fprintf(out, "],\"red_repeat_ms\":%" PRId64 ",\"fired\":", spec->red_repeat_ms);
    if (c->fired >= 0 && c->fired <= 2)
        fprintf(out, "\"%s\"", clock_engine_level_name(c->fired));
    else
        fputs("null", out);
    fputs(",\"next\":", out);
    int level;
    int64_t seq, due;
    /* where the record says the clock is armed, and which level that is */
    if (c->armed && clock_engine_next_level(engine, clock, &level, &seq, &due))
        fprintf(out, "{\"level\":\"%s\",\"repeat\":%" PRId64 ",\"due_at\":%" PRId64 "}",
                clock_engine_level_name(level), seq, c->next_due_ms);
    else
        fputs("null", out);
}

/* The record on `in` into record (NUL-terminated, without a trailing line
 * end); false when longer than CLOCK_RECORD_MAX. */
static bool read_record(FILE *in, char *record, size_t size, size_t *length)
{
    size_t got = fread(record, 1, size - 1, in);
    while (got > 0 && (record[got - 1] == '\n' || record[got - 1] == '\r'))
        got--;
    record[got] = '\0';
    *length = got;
    return got <= CLOCK_RECORD_MAX && feof(in);
}

int clock_explain(const struct clock_setup *setup, const char *rule, FILE *in, FILE *out,
                  char *err, size_t err_size)
{
    struct engine_clock clock = {.rule = rule, .key = ""};
    char record[CLOCK_RECORD_MAX + 2], why[160];
    size_t length;
    if (!read_record(in, record, sizeof record, &length)) {
        snprintf(err, err_size, "the record is longer than %d bytes", CLOCK_RECORD_MAX);
        return -1;
    }
    if (clock_record_decode(record, length, &clock.record, why, sizeof why) != 0) {
        snprintf(err, err_size, "the clock record does not decode: %s", why);
        return -1;
    }
    /* the rule's version in force when the clock started */
    clock.spec = clock_setup_rule_spec(setup, rule, clock.record.started_at_ms);
    if (clock.spec == NULL) {
        snprintf(err, err_size, "rule '%s' is not in the rules file", rule);
        return -1;
    }
    struct clock_engine *engine = clock_engine_create();
    if (engine == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    clock_engine_begin(engine, "", clock_setup_holidays(setup), true, 0, 0, NULL);
    write_identity(out, rule, &clock.record);
    write_terms(out, &clock.record, clock_engine_is_provisional(engine, &clock));
    write_levels(out, engine, &clock);
    fputs("}\n", out);
    clock_engine_destroy(engine);
    return 0;
}
