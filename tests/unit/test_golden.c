/* The golden table of legal deadline cases (tests/golden/deadlines.json,
 * tests/golden/README.md) through the C deadline engine, every case, as the
 * daemon computes it in event mode: the rules file the case names (default
 * conf/rules.conf) and conf/holidays-cn.conf loaded with clock_setup_load;
 * the starting event (its type, and the first value of each filter of the
 * rule's `start =` line: kind, scope, ...; a case's `start_event` object
 * overrides them) through clock_setup_ops_for_event; its start op made a clock record
 * as daemon/batch_apply.c does (nothing fired, red repeat 0, not armed);
 * clock_engine_start at the start, then the case's extensions, pauses and
 * resumes in order, each at its own instant.  Then, against the case's
 * `expect`: the effective deadline, the local day holding deadline - 1 ms,
 * the yellow and orange due times (null: the rule has none), the first red
 * (the deadline) and the next two red repeats ([] when red does not repeat),
 * each from clock_engine_level_due, which reads only the record's deadline,
 * last day and paused time (not what has fired).  A backfill case (with
 * `applied`, no ops) starts the clock at its partition's time `applied`
 * under the table's backfill_window_ms, and the alerts the start put in the
 * outbox must be its `fires`, in order ("red <k>" for red repeat k).
 * Extensions carry their `ground` (when stated) and the rule's extension
 * caps; a case with `violations` must have put exactly those violation
 * alerts in the outbox (their seq: the numbers of the violating
 * extensions).  A stop op is the event of that type through
 * clock_setup_ops_for_event (it must stop the rule) and clock_engine_stop
 * at its instant; its lateness must be the case's `stopped`.
 * A case whose `expect` is "no clock" checks only that its starting event
 * starts no clock of its rule (a criminal seizure, an exempt decision).
 *
 * Every case runs; each failing one is printed by name with every value
 * expected and found, and the test fails at the end with their count.
 * Times in the table are Asia/Shanghai local, "YYYY-MM-DD HH:MM[:SS]"; the
 * zone has kept +08:00 all year since 1992, so they are read with timegm()
 * minus 8 hours, independently of calendar.c.  Files are found under
 * $DUEWATCH_SOURCE_DIR, else the current directory (the repository root
 * when make runs the tests). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert_message.h"
#include "calendar.h"
#include "clock_engine.h"
#include "clock_setup.h"
#include "config.h"
#include "effects.h"

#define HOUR_MS INT64_C(3600000)
#define LOCAL_OFFSET_MS (8 * HOUR_MS)
#define DEFAULT_RULES "conf/rules.conf"
#define HOLIDAYS "conf/holidays-cn.conf"
#define SETUPS_MAX 4
#define REPORT_MAX 2048

static const char *source_directory(void)
{
    const char *directory = getenv("DUEWATCH_SOURCE_DIR");
    return directory && directory[0] ? directory : ".";
}

static void source_path(const char *relative, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", source_directory(), relative);
}

/* ---- the table's times ---- */

/* Reads `width` decimal digits at *text (nothing else) and moves past them. */
static bool digits(const char **text, int width, int *out)
{
    *out = 0;
    for (int i = 0; i < width; i++, (*text)++) {
        if (**text < '0' || **text > '9')
            return false;
        *out = *out * 10 + (**text - '0');
    }
    return true;
}

static bool literal(const char **text, char c)
{
    if (**text != c)
        return false;
    (*text)++;
    return true;
}

/* "YYYY-MM-DD" at *text into tm, moving past it. */
static bool read_date(const char **text, struct tm *tm)
{
    if (!digits(text, 4, &tm->tm_year) || !literal(text, '-') || !digits(text, 2, &tm->tm_mon) ||
        !literal(text, '-') || !digits(text, 2, &tm->tm_mday))
        return false;
    tm->tm_year -= 1900;
    tm->tm_mon -= 1;
    return true;
}

/* "YYYY-MM-DD HH:MM[:SS]" local -> epoch ms; false when malformed. */
static bool parse_local(const char *text, int64_t *ms)
{
    struct tm tm = {0};
    if (text == NULL || !read_date(&text, &tm) || !literal(&text, ' ') ||
        !digits(&text, 2, &tm.tm_hour) || !literal(&text, ':') || !digits(&text, 2, &tm.tm_min))
        return false;
    if (*text == ':' && (!literal(&text, ':') || !digits(&text, 2, &tm.tm_sec)))
        return false;
    if (*text != '\0')
        return false;
    *ms = (int64_t)timegm(&tm) * 1000 - LOCAL_OFFSET_MS;
    return true;
}

/* "YYYY-MM-DD" -> day number (days since 1970-01-01). */
static bool parse_day(const char *text, int32_t *day)
{
    struct tm tm = {0};
    if (text == NULL || !read_date(&text, &tm) || *text != '\0')
        return false;
    *day = (int32_t)((int64_t)timegm(&tm) / 86400);
    return true;
}

static void format_local(int64_t ms, char *buf, size_t size)
{
    int64_t local = ms + LOCAL_OFFSET_MS;
    time_t seconds = (time_t)(local >= 0 ? local / 1000 : (local - 999) / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    int length = (int)strftime(buf, size, "%Y-%m-%d %H:%M", &tm);
    if (tm.tm_sec != 0 || local % 1000 != 0)
        snprintf(buf + length, size - (size_t)length, ":%02d.%03d", tm.tm_sec,
                 (int)(((local % 1000) + 1000) % 1000));
}

static void format_day(int32_t day, char *buf, size_t size)
{
    time_t seconds = (time_t)day * 86400;
    struct tm tm;
    gmtime_r(&seconds, &tm);
    strftime(buf, size, "%Y-%m-%d", &tm);
}

/* ---- rules ---- */

struct loaded_setup {
    char rules_file[256];
    struct clock_setup *setup;
};

static struct loaded_setup setups[SETUPS_MAX];

static struct clock_setup *setup_for(const char *rules_file)
{
    for (int i = 0; i < SETUPS_MAX && setups[i].setup; i++)
        if (strcmp(setups[i].rules_file, rules_file) == 0)
            return setups[i].setup;
    int free_slot = 0;
    while (free_slot < SETUPS_MAX && setups[free_slot].setup)
        free_slot++;
    assert_true(free_slot < SETUPS_MAX);
    char rules[512], holidays[512], err[512];
    source_path(rules_file, rules, sizeof rules);
    source_path(HOLIDAYS, holidays, sizeof holidays);
    struct config config = {.rules_file = rules, .holidays_file = holidays};
    struct clock_setup *setup = clock_setup_load(&config, err, sizeof err);
    if (setup == NULL)
        fail_msg("clock_setup_load %s: %s (set DUEWATCH_SOURCE_DIR to the repository root)",
                 rules, err);
    snprintf(setups[free_slot].rules_file, sizeof setups[free_slot].rules_file, "%s", rules_file);
    setups[free_slot].setup = setup;
    return setup;
}

/* The starting event of a case: its type and its enumerated keys (kind,
 * scope, admin_type, publish: event.h), by enum event_enum_key; "" absent. */
struct start_values {
    enum event_type type;
    char values[EVENT_ENUM_COUNT][32];
};

/* The `start = <type> [key=a,b ...]` line of [rule] in the rules file: its
 * event type and the first value of each filter.  Returns false when the
 * file has no such line or it names an unknown type or key. */
static bool start_of_rule(const char *rules_file, const char *rule, struct start_values *out)
{
    char path[512], line[512], section[128];
    source_path(rules_file, path, sizeof path);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    snprintf(section, sizeof section, "[%s]", rule);
    memset(out, 0, sizeof *out);
    bool inside = false, found = false, valid = true;
    while (!found && fgets(line, sizeof line, file)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '[')
            inside = strcmp(line, section) == 0;
        char *save = NULL, *word = strtok_r(line, " \t", &save);
        if (!inside || word == NULL || strcmp(word, "start") != 0 ||
            (word = strtok_r(NULL, " \t", &save)) == NULL || strcmp(word, "=") != 0 ||
            (word = strtok_r(NULL, " \t", &save)) == NULL)
            continue;
        found = true;
        int number = event_type_from_name(word, strlen(word));
        valid = number >= 0;
        out->type = (enum event_type)number;
        while (valid && (word = strtok_r(NULL, " \t", &save)) != NULL) {
            char *equals = strchr(word, '=');
            if (equals == NULL)
                continue; /* a value list continued after ", " */
            int key = event_enum_key_from_name(word, (size_t)(equals - word));
            valid = key >= 0;
            if (valid)
                snprintf(out->values[key], sizeof out->values[key], "%.*s",
                         (int)strcspn(equals + 1, ","), equals + 1);
        }
    }
    fclose(file);
    return found && valid;
}

/* ---- one case ---- */

/* What a failing case prints: its lines, appended as they are found. */
struct report {
    char text[REPORT_MAX];
    size_t length;
    int problems;
};

static void note(struct report *report, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void note(struct report *report, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    if (report->length < sizeof report->text) {
        int written = vsnprintf(report->text + report->length,
                                sizeof report->text - report->length, format, args);
        if (written > 0)
            report->length += (size_t)written;
        if (report->length > sizeof report->text)
            report->length = sizeof report->text;
    }
    va_end(args);
    report->problems++;
}

struct engine_state {
    struct effects *effects;
    struct clock_engine *engine;
    int64_t backfill_window_ms;
};

/* The case's starting event: the rule's start line, then the case's
 * `start_event` ({"scope": "criminal", ...}) over its enumerated keys; its
 * time and `until`.  The strings point into *values. */
static bool start_event_of(const json_t *golden, struct start_values *values,
                           struct duewatch_event *event, struct report *report)
{
    const char *rules_file = json_string_value(json_object_get(golden, "rules_file"));
    const char *rule = json_string_value(json_object_get(golden, "rule"));
    const char *until = json_string_value(json_object_get(golden, "until"));
    int64_t start_ms = 0, until_ms = 0;
    if (!parse_local(json_string_value(json_object_get(golden, "start")), &start_ms) ||
        (until && !parse_local(until, &until_ms))) {
        note(report, "  start or until is not a local time\n");
        return false;
    }
    if (!start_of_rule(rules_file ? rules_file : DEFAULT_RULES, rule, values)) {
        note(report, "  no valid `start =` line for [%s]\n", rule);
        return false;
    }
    const char *name;
    const json_t *value;
    json_object_foreach((json_t *)json_object_get(golden, "start_event"), name, value) {
        int key = event_enum_key_from_name(name, strlen(name));
        if (key < 0 || !json_is_string(value)) {
            note(report, "  start_event: '%s' is not an enumerated key with a string\n", name);
            return false;
        }
        snprintf(values->values[key], sizeof values->values[key], "%s", json_string_value(value));
    }
    *event = (struct duewatch_event){
        .type = values->type, .ts_ms = start_ms, .until_ms = until_ms, .days = 10,
        .id = {"g1", 2}, .unit = {"500112-XJ01", 11}, .case_number = {"G1", 2},
        .ref = {"R1", 2}, .subject = {"P1", 2}};
    for (int key = 0; key < EVENT_ENUM_COUNT; key++) {
        struct text text = {values->values[key], (uint32_t)strlen(values->values[key])};
        if (key == EVENT_ENUM_KIND)
            event->kind = text;
        else
            event->qualifiers[key - 1] = text;
    }
    return true;
}

/* The op starting the case's rule among the event's ops (NULL: none); err
 * receives why the ops could not be computed. */
static const struct clock_op *start_op_of(const struct clock_setup *setup,
                                          const struct duewatch_event *event, const char *rule,
                                          struct clock_op *ops, char *err, size_t err_size)
{
    int count = clock_setup_ops_for_event(setup, event, ops, err, err_size);
    for (int i = 0; i < count; i++)
        if (ops[i].kind == CLOCK_OP_START && strcmp(ops[i].rule, rule) == 0)
            return &ops[i];
    if (count >= 0)
        err[0] = '\0';
    return NULL;
}

/* A case expecting "no clock": its starting event must start no clock of
 * its rule (a criminal seizure, an exempt decision). */
static void check_no_clock(const struct clock_setup *setup, const json_t *golden,
                           struct report *report)
{
    struct start_values values;
    struct duewatch_event event;
    if (!start_event_of(golden, &values, &event, report))
        return;
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[256];
    const char *rule = json_string_value(json_object_get(golden, "rule"));
    if (start_op_of(setup, &event, rule, ops, err, sizeof err) != NULL)
        note(report, "  expected no clock, but the start event starts a %s clock\n", rule);
    else if (err[0] != '\0')
        note(report, "  the start event's ops failed: %s\n", err);
}

/* The clock the case's start makes, as batch_apply.c's op_start fills it;
 * key receives its key. */
static bool start_clock(const struct clock_setup *setup, const json_t *golden,
                        struct engine_clock *clock, char *key, size_t key_size,
                        struct report *report)
{
    const char *rule = json_string_value(json_object_get(golden, "rule"));
    struct start_values values;
    struct duewatch_event event;
    if (!start_event_of(golden, &values, &event, report))
        return false;
    int64_t start_ms = event.ts_ms;
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[256];
    const struct clock_op *op = start_op_of(setup, &event, rule, ops, err, sizeof err);
    if (op == NULL) {
        note(report, "  the start event starts no %s clock (%s)\n", rule, err);
        return false;
    }
    snprintf(key, key_size, "%.*s", (int)op->key.length, op->key.bytes);
    /* the rule version of the start (README "Rule versions") */
    *clock = (struct engine_clock){.rule = op->rule,
                                   .spec = clock_setup_rule_spec(setup, rule, start_ms),
                                   .caps = clock_setup_rule_caps(setup, rule, start_ms),
                                   .key = key,
                                   .has_entry = op->provisional_entry[0] != '\0',
                                   .until_beyond_law = op->until_beyond_law};
    struct clock_record *c = &clock->record;
    snprintf(c->unit, sizeof c->unit, "500112-XJ01");
    snprintf(c->case_number, sizeof c->case_number, "G1");
    snprintf(c->subject, sizeof c->subject, "P1");
    snprintf(c->cause, sizeof c->cause, "g1");
    snprintf(c->partition, sizeof c->partition, "events:0");
    c->started_at_ms = start_ms;
    c->has_last_day = op->has_last_day;
    c->last_day = op->last_day;
    c->base_deadline_ms = op->base_deadline_ms;
    c->fired = -1;
    snprintf(clock->entry, sizeof clock->entry, "%s", op->provisional_entry);
    return true;
}

/* A stop op: the event of type `type_name` at ts must stop the clock's
 * rule (clock_setup_ops_for_event); it stops the clock.  *late: whether it
 * came after the deadline.  Returns false (noted) when it stops nothing. */
static bool stop_clock(const struct clock_setup *setup, struct clock_engine *engine,
                       struct engine_clock *clock, const char *type_name, int64_t ts,
                       bool *late, struct report *report)
{
    int type = event_type_from_name(type_name, strlen(type_name));
    struct duewatch_event event = {
        .type = (enum event_type)type, .ts_ms = ts, .id = {"g2", 2},
        .unit = {"500112-XJ01", 11}, .case_number = {"G1", 2}, .ref = {"R1", 2}};
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[256] = "";
    int count = type < 0 ? 0 : clock_setup_ops_for_event(setup, &event, ops, err, sizeof err);
    for (int i = 0; i < count; i++)
        if (ops[i].kind == CLOCK_OP_STOP && strcmp(ops[i].rule, clock->rule) == 0) {
            clock_engine_stop(engine, clock, ts, false, 0, "g2", late);
            return true;
        }
    note(report, "  %s does not stop %s (%s)\n", type_name, clock->rule, err);
    return false;
}

/* The case's extensions (with their ground), pauses, resumes and stop, each
 * at its own instant.  *stopped: -1 no stop, else whether it was late. */
static bool apply_ops(const struct clock_setup *setup, struct clock_engine *engine,
                      struct engine_clock *clock, const json_t *ops, int *stopped,
                      struct report *report)
{
    size_t index;
    const json_t *op;
    *stopped = -1;
    json_array_foreach(ops, index, op) {
        const json_t *extend = json_object_get(op, "extend");
        const char *stop = json_string_value(json_object_get(op, "stop"));
        const char *when = json_string_value(
            extend || stop ? json_object_get(op, "at")
                           : json_object_get(op, json_object_get(op, "pause") ? "pause"
                                                                               : "resume"));
        int64_t ts;
        if (when == NULL || !parse_local(when, &ts) || (extend && !json_is_integer(extend))) {
            note(report, "  op %zu is malformed\n", index);
            return false;
        }
        if (stop) {
            bool late = false;
            if (!stop_clock(setup, engine, clock, stop, ts, &late, report))
                return false;
            *stopped = late;
        } else if (extend) {
            const char *name = json_string_value(json_object_get(op, "ground"));
            int ground = name ? event_ground_from_name(name, strlen(name)) : GROUND_NONE;
            if (ground < 0) {
                note(report, "  op %zu: ground '%s' is not in the contract\n", index, name);
                return false;
            }
            clock_engine_extend(engine, clock, (int32_t)json_integer_value(extend),
                                (enum extension_ground)ground, ts, false, 0, ts);
        }
        else if (json_object_get(op, "pause"))
            clock_engine_pause(engine, clock, ts, false, 0);
        else
            clock_engine_resume(engine, clock, ts, ts);
    }
    return true;
}

/* One due time against its expected local time (NULL: no such level). */
static void compare_due(struct engine_state *state, const struct engine_clock *clock,
                        const char *what, int level, int64_t seq, const char *expected,
                        struct report *report)
{
    int64_t due = 0, expected_ms = 0;
    bool present = clock_engine_level_due(state->engine, clock, level, seq, &due);
    char found[40] = "none";
    if (present)
        format_local(due, found, sizeof found);
    if (expected && !parse_local(expected, &expected_ms))
        note(report, "  %s: expected '%s' is not a local time\n", what, expected);
    else if (present != (expected != NULL) || (present && due != expected_ms))
        note(report, "  %s: expected %s, found %s\n", what, expected ? expected : "none", found);
}

static void compare(struct engine_state *state, const struct engine_clock *clock,
                    const json_t *expect, struct report *report)
{
    int64_t deadline = clock_record_deadline(&clock->record), expected_deadline = 0;
    const char *deadline_text = json_string_value(json_object_get(expect, "deadline"));
    const char *last_day_text = json_string_value(json_object_get(expect, "last_day"));
    char found[40];
    format_local(deadline, found, sizeof found);
    if (!deadline_text || !parse_local(deadline_text, &expected_deadline) ||
        deadline != expected_deadline)
        note(report, "  deadline: expected %s, found %s\n", deadline_text, found);
    int32_t expected_day = 0, last_day = calendar_local_day(deadline - 1);
    format_day(last_day, found, sizeof found);
    if (!last_day_text || !parse_day(last_day_text, &expected_day) || last_day != expected_day)
        note(report, "  last_day: expected %s, found %s\n", last_day_text, found);
    compare_due(state, clock, "yellow", 0, 0,
                json_string_value(json_object_get(expect, "yellow")), report);
    compare_due(state, clock, "orange", 1, 0,
                json_string_value(json_object_get(expect, "orange")), report);
    compare_due(state, clock, "red", 2, 0, deadline_text, report);
    const json_t *repeats = json_object_get(expect, "red_repeats");
    if (!json_is_array(repeats) || (json_array_size(repeats) != 0 && json_array_size(repeats) != 2))
        note(report, "  red_repeats: expected a list of 0 or 2 times\n");
    for (int64_t k = 1; k <= 2; k++) {
        char what[32];
        snprintf(what, sizeof what, "red repeat %" PRId64, k);
        compare_due(state, clock, what, 2, k,
                    json_string_value(json_array_get(repeats, (size_t)(k - 1))), report);
    }
}

/* The alerts a backfill case's start sent, against its `fires`. */
static void compare_fires(const struct engine_state *state, const json_t *fires,
                          struct report *report)
{
    char found[256] = "", expected[256] = "";
    size_t length = 0, index;
    const json_t *level;
    for (size_t i = 0; i < clock_engine_alert_count(state->engine) && length < sizeof found;
         i++) {
        const struct engine_alert *sent = clock_engine_alert(state->engine, i);
        struct alert alert;
        char err[160];
        if (alert_parse(sent->id, sent->payload, strlen(sent->payload), &alert, err,
                        sizeof err) != 0) {
            note(report, "  fires: an alert does not parse (%s)\n", err);
            return;
        }
        int written = alert.seq > 0 ? snprintf(found + length, sizeof found - length,
                                               "%s%s %" PRId64, length ? "," : "", alert.level,
                                               alert.seq)
                                    : snprintf(found + length, sizeof found - length, "%s%s",
                                               length ? "," : "", alert.level);
        length += written > 0 ? (size_t)written : 0;
    }
    length = 0;
    json_array_foreach(fires, index, level) {
        int written = snprintf(expected + length, length < sizeof expected
                                                      ? sizeof expected - length : 0,
                               "%s%s", length ? "," : "", json_string_value(level));
        length += written > 0 ? (size_t)written : 0;
    }
    if (!json_is_array(fires) || strcmp(found, expected) != 0)
        note(report, "  fires: expected [%s], found [%s]\n", expected, found);
}

/* The violation alerts the case's extensions sent (their seq, in order)
 * against its `violations`, and its stop's lateness against `stopped`. */
static void compare_outcome(const struct engine_state *state, const json_t *golden, int stopped,
                            struct report *report)
{
    const json_t *violations = json_object_get(golden, "violations");
    if (violations) {
        char found[128] = "", expected[128] = "";
        size_t length = 0, index;
        const json_t *number;
        for (size_t i = 0; i < clock_engine_alert_count(state->engine); i++) {
            const struct engine_alert *sent = clock_engine_alert(state->engine, i);
            struct alert alert;
            char err[160];
            if (alert_parse(sent->id, sent->payload, strlen(sent->payload), &alert, err,
                            sizeof err) == 0 && strcmp(alert.level, "violation") == 0 &&
                length < sizeof found) {
                int written = snprintf(found + length, sizeof found - length, "%s%" PRId64,
                                       length ? "," : "", alert.seq);
                length += written > 0 ? (size_t)written : 0;
            }
        }
        length = 0;
        json_array_foreach(violations, index, number) {
            if (length >= sizeof expected)
                break;
            int written = snprintf(expected + length, sizeof expected - length, "%s%" PRId64,
                                   length ? "," : "", (int64_t)json_integer_value(number));
            length += written > 0 ? (size_t)written : 0;
        }
        if (strcmp(found, expected) != 0)
            note(report, "  violations: expected [%s], found [%s]\n", expected, found);
    }
    const char *expected_stop = json_string_value(json_object_get(golden, "stopped"));
    const char *found_stop = stopped < 0 ? NULL : stopped ? "late" : "ontime";
    if ((expected_stop == NULL) != (found_stop == NULL) ||
        (expected_stop && strcmp(expected_stop, found_stop) != 0))
        note(report, "  stopped: expected %s, found %s\n", expected_stop ? expected_stop : "none",
             found_stop ? found_stop : "none");
}

/* Runs one case; what differs goes into the report (no problems: none). */
static void run_case(struct engine_state *state, const json_t *golden, struct report *report)
{
    const char *rules_file = json_string_value(json_object_get(golden, "rules_file"));
    struct clock_setup *setup = setup_for(rules_file ? rules_file : DEFAULT_RULES);
    const char *rule = json_string_value(json_object_get(golden, "rule"));
    if (rule == NULL || clock_setup_rule_spec(setup, rule, 0) == NULL) {
        note(report, "  rule %s is not configured\n", rule ? rule : "(none)");
        return;
    }
    const json_t *expect = json_object_get(golden, "expect");
    if (json_is_string(expect)) {
        if (strcmp(json_string_value(expect), "no clock") != 0)
            note(report, "  expect is a string other than \"no clock\"\n");
        else
            check_no_clock(setup, golden, report);
        return;
    }
    struct engine_clock clock;
    char key[CLOCK_TEXT_MAX];
    if (!start_clock(setup, golden, &clock, key, sizeof key, report))
        return;
    effects_reset(state->effects);
    clock_engine_begin(state->engine, "dw:", clock_setup_holidays(setup), false, 86400,
                       INT64_MAX, state->effects);
    clock_engine_set_backfill(state->engine, state->backfill_window_ms, 0);
    const char *applied = json_string_value(json_object_get(golden, "applied"));
    int64_t horizon = clock.record.started_at_ms;
    if (applied && !parse_local(applied, &horizon)) {
        note(report, "  applied is not a local time\n");
        return;
    }
    clock_engine_start(state->engine, &clock, horizon);
    if (applied)
        compare_fires(state, json_object_get(golden, "fires"), report);
    int stopped;
    if (!apply_ops(setup, state->engine, &clock, json_object_get(golden, "ops"), &stopped,
                   report))
        return;
    compare_outcome(state, golden, stopped, report);
    if (clock_engine_failed(state->engine))
        note(report, "  the engine failed (out of memory)\n");
    if (clock.record.paused)
        note(report, "  the clock is still paused after the ops\n");
    compare(state, &clock, expect, report);
    if (clock_engine_calendar_gaps(state->engine) != 0)
        note(report, "  %" PRIu64 " level(s) beyond the calendar\n",
             clock_engine_calendar_gaps(state->engine));
}

static void test_every_golden_case(void **unused)
{
    (void)unused;
    char path[512];
    source_path("tests/golden/deadlines.json", path, sizeof path);
    json_error_t error;
    json_t *table = json_load_file(path, 0, &error);
    if (table == NULL)
        fail_msg("%s:%d: %s (set DUEWATCH_SOURCE_DIR to the repository root)", path, error.line,
                 error.text);
    assert_int_equal(json_integer_value(json_object_get(table, "format")), 1);
    assert_string_equal(json_string_value(json_object_get(table, "time_zone")), "Asia/Shanghai");
    assert_string_equal(json_string_value(json_object_get(table, "calendar")), HOLIDAYS);
    const json_t *cases = json_object_get(table, "cases");
    assert_true(json_array_size(cases) > 0);
    struct engine_state state = {
        effects_create(), clock_engine_create(),
        json_integer_value(json_object_get(table, "backfill_window_ms"))};
    assert_true(json_is_integer(json_object_get(table, "backfill_window_ms")));
    assert_true(state.effects && state.engine);
    int failed = 0;
    size_t index;
    const json_t *golden;
    json_array_foreach(cases, index, golden) {
        static struct report report;
        report.length = 0;
        report.problems = 0;
        report.text[0] = '\0';
        run_case(&state, golden, &report);
        if (report.problems == 0)
            continue;
        failed++;
        const char *name = json_string_value(json_object_get(golden, "name"));
        const char *rule = json_string_value(json_object_get(golden, "rule"));
        fprintf(stderr, "golden case %s (rule %s):\n%s", name ? name : "(no name)",
                rule ? rule : "(none)", report.text);
    }
    fprintf(stderr, "golden: %zu cases, %d failed\n", json_array_size(cases), failed);
    clock_engine_destroy(state.engine);
    effects_destroy(state.effects);
    size_t total = json_array_size(cases);
    json_decref(table);
    for (int i = 0; i < SETUPS_MAX; i++) {
        clock_setup_destroy(setups[i].setup);
        setups[i].setup = NULL;
    }
    if (failed > 0)
        fail_msg("%d of %zu golden cases differ from the table", failed, total);
}

int main(void)
{
    char err[256];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0) {
        fprintf(stderr, "calendar_init: %s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_golden_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
