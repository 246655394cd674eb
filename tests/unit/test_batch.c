/* Unit tests for a batch's three steps (include/batch.h) with the shipped
 * rules and calendar (conf/rules.conf, conf/holidays-cn.conf):
 *  1. batch_build_read: the exact commands of the read transaction (layout
 *     in batch.h) for a small batch over two partitions -- every dedupe span
 *     of the wall clock's day probed, the event ids and stop markers looked
 *     up in each span asked, each clock once, the partitions, the provisional
 *     entries an extension of a calendar rule asks for (read_entries.lua);
 *     with span hints, only the spans that exist, and a span that appeared
 *     unasked makes the computation STALE;
 *  2. batch_compute on EXEC's replies built by hand (sized by the commands):
 *     an id seen in a span and a second copy in the batch are duplicates; a start in event
 *     mode fires the level its partition's time has passed (the alert in
 *     batch_engine()) and arms the next; a stop of a clock read in format
 *     version 0 deletes it and sends the resolution; a stop marker read
 *     keeps an earlier start from starting;
 *  3. batch_build_write: the exact apply_effects.lua call -- the checks of
 *     the clocks read, MSET of the new record ("@5|", compact numbers), DEL, due index,
 *     HINCRBY counters (events less duplicates, alerts, resolutions) with
 *     their keys, fields, amounts and EXPIREs, INCRBY running counts, the
 *     outbox, stop marker, offsets and event times, SADD of the new ids,
 *     the fence.
 * Files are found under $DUEWATCH_SOURCE_DIR, else the current directory
 * (the repository root when make runs the tests).  Instants are epoch ms
 * with their Asia/Shanghai time beside them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "calendar.h"
#include "clock_engine.h"
#include "clock_setup.h"
#include "config.h"
#include "redis_client.h"
#include "script_argv.h"

#define COUNT_OF(array) (sizeof(array) / sizeof *(array))
#define HOUR_MS INT64_C(3600000)
#define TS INT64_C(1796004000000)   /* 2026-11-30 10:00 (a Monday) */
#define T0 (TS - 13 * HOUR_MS)       /* 2026-11-29 21:00 (a Sunday) */
#define UNIT "500112-XJ01"
/* A bail clock as a release before 2026-12-03 wrote it (format version 0):
 * started 2025-12-10 10:00, last day 2026-12-09 (day 20796), deadline
 * 2026-12-10 00:00, yellow fired, orange (2026-12-07 00:00) armed. */
#define BAIL_M1_V0                                                                             \
    UNIT "|A0|P8|e0|1765332000000|20796|1796832000000|0||0|0|1796572800000|events:1"

static struct clock_setup *setup;
static struct batch *under_test; /* destroyed by the teardown, also after a failure */
static int released;

static void count_release(void *message)
{
    (void)message;
    released++;
}

static int setup_all(void **state)
{
    (void)state;
    char err[512], rules[512], holidays[512];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0)
        return -1;
    const char *directory = getenv("DUEWATCH_SOURCE_DIR");
    if (directory == NULL || directory[0] == '\0')
        directory = ".";
    snprintf(rules, sizeof rules, "%s/conf/rules.conf", directory);
    snprintf(holidays, sizeof holidays, "%s/conf/holidays-cn.conf", directory);
    struct config config = {.rules_file = rules, .holidays_file = holidays};
    setup = clock_setup_load(&config, err, sizeof err);
    if (setup == NULL)
        fprintf(stderr, "clock_setup_load: %s (set DUEWATCH_SOURCE_DIR to the repository root)\n",
                err);
    return setup ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    clock_setup_destroy(setup);
    return 0;
}

/* A new batch under test (the one before it destroyed). */
static struct batch *new_batch(size_t max_events, batch_release_message release)
{
    batch_destroy(under_test);
    under_test = batch_create(max_events, release);
    assert_non_null(under_test);
    return under_test;
}

static int destroy_batch(void **state)
{
    (void)state;
    batch_destroy(under_test);
    under_test = NULL;
    return 0;
}

static struct text text_of(const char *s) { return (struct text){s, (uint32_t)strlen(s)}; }

static struct duewatch_event event_of(enum event_type type, const char *id, int64_t ts,
                                      const char *ref, const char *kind)
{
    return (struct duewatch_event){.type = type, .ts_ms = ts, .id = text_of(id),
                                   .unit = text_of(UNIT), .case_number = text_of("A1"),
                                   .ref = text_of(ref), .subject = text_of("P9"),
                                   .kind = text_of(kind), .days = 10};
}

/* Holds a message for topic "events" and adds the event with its ops under
 * the shipped rules; returns how many ops it has. */
static int add(struct batch *batch, int32_t partition, int64_t offset,
               const struct duewatch_event *event)
{
    static int message;
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[256];
    int count = clock_setup_ops_for_event(setup, event, ops, err, sizeof err);
    if (count < 0)
        fail_msg("%s", err);
    assert_int_equal(batch_hold(batch, &message, "events", partition, offset), 0);
    assert_int_equal(batch_add_event(batch, event, TS + 1000, ops, count), 0);
    return count;
}

static struct batch_settings settings_of(bool event_time)
{
    return (struct batch_settings){
        .key_prefix = "dw:", .dedupe_ttl_seconds = 30 * 86400, .counter_ttl_seconds = 400 * 86400,
        .event_time = event_time, .now_ms = TS + 1000, .wall_now_ms = TS + 1000, .setup = setup,
        .fence_key = "dw:fence:00000000000000ab-1", .fence_position = 3};
}

/* The batch of the read and compute tests.  Partition 0: e1 starts
 * detention_unexecuted JL1 at T0; e2 (no clock: an incident of kind other); e1 again; a tick.
 * Partition 1: e5 (seen before, per the read); e6 ends measure M1, which
 * stops bail_expiry, rs_expiry and criminal_detention_limit clocks of M1. */
static struct batch *two_partitions(void)
{
    struct batch *batch = new_batch(16, count_release);
    struct duewatch_event decided = event_of(EVENT_DETENTION_DECIDED, "e1", T0, "JL1", "");
    struct duewatch_event filed = event_of(EVENT_INCIDENT_REPORTED, "e2", TS + 5, "R2", "other");
    struct duewatch_event tick = event_of(EVENT_CLOCK_TICK, "", TS + 9, "", "");
    struct duewatch_event filed_before =
        event_of(EVENT_INCIDENT_REPORTED, "e5", TS + 3, "R5", "other");
    struct duewatch_event ended = event_of(EVENT_MEASURE_ENDED, "e6", TS + 4, "M1", "");
    assert_int_equal(add(batch, 0, 40, &decided), 1);
    assert_int_equal(add(batch, 0, 41, &filed), 0);
    assert_int_equal(add(batch, 0, 42, &decided), 1);
    assert_int_equal(add(batch, 0, 43, &tick), 0);
    assert_int_equal(add(batch, 1, 7, &filed_before), 0);
    assert_int_equal(add(batch, 1, 8, &ended), 3);
    assert_int_equal(batch_event_count(batch), 6); /* the tick too */
    assert_int_equal(batch_message_count(batch), 6);
    return batch;
}

/* The read's commands, one line each ("NAME arg ..."), equal `expected`. */
static void expect_read(int count, const struct redis_command *commands,
                        const char *const *expected, size_t expected_count)
{
    static struct argv_lines lines;
    lines.count = 0;
    lines.line[0][0] = '\0';
    for (int c = 0; c < count; c++) {
        for (int i = 0; i < commands[c].argc; i++)
            argv_lines_append(&lines, commands[c].argv, commands[c].argv_lengths, i,
                              commands[c].argc);
        argv_lines_next(&lines);
    }
    argv_lines_expect(&lines, expected, expected_count);
}

/* Spans of a 30-day dedupe: 8 days each, the current one (from day 20784,
 * 2026-11-27, holding the wall clock's day) and the 4 before it, oldest
 * first; a command per span. */
#define PER_SPAN(command, kind, rest)                                                          \
    command " dw:" kind ":2026-10-26" rest, command " dw:" kind ":2026-11-03" rest,            \
        command " dw:" kind ":2026-11-11" rest, command " dw:" kind ":2026-11-19" rest,        \
        command " dw:" kind ":2026-11-27" rest
#define SPAN_PROBES PER_SPAN("EXISTS", "ev", ""), PER_SPAN("EXISTS", "stopped", "")

static void test_read_commands(void **state)
{
    (void)state;
    struct batch *batch = two_partitions();
    const struct batch_settings settings = settings_of(true);
    const struct redis_command *commands;
    int count = batch_build_read(batch, "SHA1", &settings, &commands);
    static const char *const expected[] = {
        SPAN_PROBES,
        /* event ids, the second copy of e1 too, in every span (no hints) */
        PER_SPAN("SMISMEMBER", "ev", " e1 e2 e1 e5 e6"),
        /* clocks, each once */
        "MGET dw:clock:detention_unexecuted:JL1 dw:clock:bail_expiry:M1 dw:clock:rs_expiry:M1 "
        "dw:clock:criminal_detention_limit:M1",
        /* stop markers, in every span */
        PER_SPAN("HMGET", "stopped", " ref:JL1 ref:M1"),
        "HMGET dw:eventtime events:0 events:1",
        "HGETALL dw:claimed",
        /* no extension of a calendar rule: no provisional entries */
    };
    expect_read(count, commands, expected, COUNT_OF(expected));

    released = 0;
    batch_reset(batch);
    assert_int_equal(released, 6);
    assert_int_equal(batch_event_count(batch), 0);
    assert_int_equal(batch_partition_count(batch), 0);
    /* a reset batch reads nothing of what it held */
    count = batch_build_read(batch, "SHA1", &settings, &commands);
    static const char *const empty[] = {SPAN_PROBES, "HGETALL dw:claimed"};
    expect_read(count, commands, empty, COUNT_OF(empty));
}

/* An extension of a rule moved off rest days (admin_case_limit and
 * admin_penalty_case_limit; bail_expiry and rs_expiry, not in custody:
 * 刑事诉讼法 第一百零五条) asks the calendar, so it asks for its clock's
 * provisional entry; one of criminal_detention_limit (custody: never moved)
 * or criminal_filing_review (not moved) does not.  read_entries.lua reads
 * them, told which record field names the partition. */
static void test_read_asks_provisional_entries(void **state)
{
    (void)state;
    struct batch *batch = new_batch(4, NULL);
    struct duewatch_event extended = event_of(EVENT_CASE_EXTENDED, "x1", TS, "R1", "");
    extended.case_number = text_of("A7");
    struct duewatch_event measure = event_of(EVENT_MEASURE_EXTENDED, "x2", TS, "M2", "");
    assert_int_equal(add(batch, 2, 5, &measure), 3);
    assert_int_equal(add(batch, 2, 6, &extended), 3);
    const struct batch_settings settings = settings_of(false);
    const struct redis_command *commands;
    int count = batch_build_read(batch, "SHA1", &settings, &commands);
    static const char *const expected[] = {
        SPAN_PROBES,
        PER_SPAN("SMISMEMBER", "ev", " x2 x1"),
        "MGET dw:clock:bail_expiry:M2 dw:clock:rs_expiry:M2 "
        "dw:clock:criminal_detention_limit:M2 dw:clock:admin_case_limit:A7 "
        "dw:clock:admin_penalty_case_limit:A7 dw:clock:criminal_filing_review:A7",
        PER_SPAN("HMGET", "stopped", " ref:M2 case:A7"),
        "HMGET dw:eventtime events:2",
        "HGETALL dw:claimed",
        /* clocks 1, 2, 4 and 5, each with its member "<rule>:<key>"; the
         * partition is a record's 13th field */
        "EVALSHA SHA1 0 " ARGS_VERSION " dw: 13 dw:clock:bail_expiry:M2 bail_expiry:M2 "
        "dw:clock:rs_expiry:M2 rs_expiry:M2 dw:clock:admin_case_limit:A7 admin_case_limit:A7 "
        "dw:clock:admin_penalty_case_limit:A7 admin_penalty_case_limit:A7",
    };
    expect_read(count, commands, expected, COUNT_OF(expected));
}

/* ---- hand-built replies ---- */

#define NODES_MAX 256
static redisReply nodes[NODES_MAX];
static redisReply *children[NODES_MAX];
static size_t nodes_used, children_used;

static redisReply *node(int type)
{
    assert_true(nodes_used < NODES_MAX);
    redisReply *reply = &nodes[nodes_used++];
    memset(reply, 0, sizeof *reply);
    reply->type = type;
    return reply;
}

static redisReply *nil(void) { return node(REDIS_REPLY_NIL); }

static redisReply *integer(long long value)
{
    redisReply *reply = node(REDIS_REPLY_INTEGER);
    reply->integer = value;
    return reply;
}

static redisReply *string(const char *text)
{
    redisReply *reply = node(REDIS_REPLY_STRING);
    reply->str = (char *)text;
    reply->len = strlen(text);
    return reply;
}

/* An array of `count` replies (the arguments). */
static redisReply *array(size_t count, ...)
{
    assert_true(children_used + count <= NODES_MAX);
    redisReply *reply = node(REDIS_REPLY_ARRAY);
    reply->elements = count;
    reply->element = &children[children_used];
    va_list items;
    va_start(items, count);
    for (size_t i = 0; i < count; i++)
        children[children_used++] = va_arg(items, redisReply *);
    va_end(items);
    return reply;
}

/* `count` contiguous child slots, filled by the caller. */
static redisReply **reserve_children(size_t count)
{
    assert_true(children_used + count <= NODES_MAX);
    redisReply **reserved = &children[children_used];
    children_used += count;
    return reserved;
}

/* A list of `count` replies made by `item`. */
static redisReply *array_of(size_t count, redisReply *(*item)(void))
{
    redisReply *reply = node(REDIS_REPLY_ARRAY);
    reply->elements = count;
    reply->element = reserve_children(count);
    for (size_t i = 0; i < count; i++)
        reply->element[i] = item();
    return reply;
}

static redisReply *zero(void) { return integer(0); }

/* The number of items a read command answers with: its ids, keys or fields
 * (SMISMEMBER key id..., MGET key..., HMGET key field..., EVALSHA sha 0
 * version prefix field pairs...); 0 for a reply that is no list. */
static size_t read_items(const struct redis_command *command)
{
    char name[16];
    snprintf(name, sizeof name, "%.*s", (int)command->argv_lengths[0], command->argv[0]);
    if (strcmp(name, "SMISMEMBER") == 0 || strcmp(name, "HMGET") == 0)
        return (size_t)command->argc - 2;
    if (strcmp(name, "MGET") == 0)
        return (size_t)command->argc - 1;
    if (strcmp(name, "EVALSHA") == 0)
        return (size_t)(command->argc - 6) / 2;
    return 0;
}

/* What an empty Redis answers to the batch's read (EXEC's replies, sized by
 * the commands themselves): no span exists, no id seen, no clock, no stop
 * marker, no event time, nothing claimed, no provisional entry.  A test
 * then puts in what its Redis holds. */
static redisReply *empty_read_reply(struct batch *batch, const struct batch_settings *settings)
{
    const struct redis_command *commands;
    int count = batch_build_read(batch, "SHA1", settings, &commands);
    assert_true(count > 0);
    nodes_used = children_used = 0;
    redisReply *reply = node(REDIS_REPLY_ARRAY);
    reply->elements = (size_t)count;
    reply->element = reserve_children((size_t)count);
    for (int c = 0; c < count; c++) {
        const char *name = commands[c].argv[0];
        reply->element[c] = strncmp(name, "EXISTS", 6) == 0
                                ? integer(0)
                                : array_of(read_items(&commands[c]),
                                           strncmp(name, "SMISMEMBER", 10) == 0 ? zero : nil);
    }
    return reply;
}

/* The read's replies for two_partitions() with every span asked (see
 * test_read_commands): EXISTS per ev span (0..4) and stopped span (5..9),
 * SMISMEMBER per span (10..14), MGET (15), HMGET per span (16..20), the
 * event times (21), claimed (22). */
#define READ_EXISTS_EV(span) (span)
#define READ_EXISTS_STOPPED(span) (5 + (span))
#define READ_SEEN(span) (10 + (span))
#define READ_RECORDS 15
#define READ_MARKERS(span) (16 + (span))
#define READ_TIMES 21

/* What Redis holds for two_partitions(): the oldest and the current ev
 * spans exist, e5 is in the oldest; of the clocks only bail_expiry M1
 * exists (version 0); no stop markers; events:0 has reached TS, events:1
 * has no event time; nothing claimed. */
static redisReply *two_partitions_reply(struct batch *batch, const struct batch_settings *settings)
{
    redisReply *reply = empty_read_reply(batch, settings);
    reply->element[READ_EXISTS_EV(0)]->integer = 1;
    reply->element[READ_EXISTS_EV(4)]->integer = 1;
    reply->element[READ_SEEN(0)]->element[3] = integer(1);
    reply->element[READ_RECORDS]->element[1] = string(BAIL_M1_V0);
    reply->element[READ_TIMES]->element[0] = string("1796004000000");
    return reply;
}

static void compute(struct batch *batch, const redisReply *reply,
                    const struct batch_settings *settings)
{
    const struct redis_command *commands;
    assert_true(batch_build_read(batch, "SHA1", settings, &commands) > 0);
    char err[256] = "";
    if (batch_compute(batch, reply, settings, err, sizeof err) != 0)
        fail_msg("batch_compute: %s", err);
}

static void write_lines(struct batch *batch, const struct batch_settings *settings,
                        struct argv_lines *lines)
{
    const char **argv;
    const size_t *lengths;
    int argc = batch_build_write(batch, "SHA2", settings, &argv, &lengths);
    assert_true(argc > 0);
    argv_lines_read(argc, argv, lengths, lines);
}

/* The lines after the checks equal `expected` (the checks have their own
 * test below). */
#define COMMANDS_MAX 256

static int compare_lines(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The write's commands are exactly `expected`, in any order: the commands of
 * different keys are independent in one atomic call, and effects.c orders
 * keys by first mention (test_effects.c checks the order rules). */
static void expect_commands(const struct argv_lines *lines, const char *const *expected,
                            size_t expected_count)
{
    long checks = strtol(lines->line[1] + strlen("checks "), NULL, 10);
    static struct argv_lines commands, wanted;
    commands.count = wanted.count = 0;
    for (size_t i = 2 + (size_t)checks; i < lines->count; i++)
        memcpy(commands.line[commands.count++], lines->line[i], ARGV_LINE_MAX);
    for (size_t i = 0; i < expected_count; i++)
        snprintf(wanted.line[wanted.count++], ARGV_LINE_MAX, "%s", expected[i]);
    qsort(commands.line, commands.count, ARGV_LINE_MAX, compare_lines);
    qsort(wanted.line, wanted.count, ARGV_LINE_MAX, compare_lines);
    const char *sorted[COMMANDS_MAX];
    for (size_t i = 0; i < wanted.count; i++)
        sorted[i] = wanted.line[i];
    argv_lines_expect(&commands, sorted, wanted.count);
}

static bool has_line(const struct argv_lines *lines, const char *line)
{
    for (size_t i = 0; i < lines->count; i++)
        if (strcmp(lines->line[i], line) == 0)
            return true;
    return false;
}

/* JL1 in version 5: started 1795957200000 (29932620 minutes: htk5o.),
 * deadline and next due 1796047200000 (29934120 minutes: htlbc.), orange
 * fired (1), seq 0 and the rest at their defaults left empty */
#define JL1_RECORD                                                                             \
    "@5|" UNIT "|A1|P9|e1|htk5o.||htlbc.|||1||htlbc.|events:0||"
/* sha1("detention_unexecuted|JL1|1796047200000|orange|0"), 32 digits */
#define JL1_ORANGE_ID "48d9afde8a6415ac8a73ecaa0bdca874"
/* orange of JL1, due 2026-11-30 10:00, deadline 2026-11-30 22:00 (decided
 * 21:00: the hour 21:00..22:00 is not counted, 24 hours from 22:00) */
#define JL1_ORANGE                                                                             \
    "@5|detention_unexecuted|orange|firing|0|" UNIT "|A1|JL1|P9|1795957200000|1796047200000|"    \
    "1796004000000|e1||0||"
/* sha1("bail_expiry|M1|1796832000000|resolved|0"), 32 digits */
#define M1_RESOLVED_ID "a2732d934a29ef8ff14dface14eab1c7"
/* it resolves the yellow M1 fired under that deadline:
 * sha1("bail_expiry|M1|1796832000000|yellow|0"), 32 digits */
#define M1_RESOLVED                                                                            \
    "@5|bail_expiry|yellow|resolved|0|" UNIT "|A0|M1|P8|1765332000000|1796832000000|"           \
    "1796004000004|e0|e6|0|20796|753d3fbae0d616d1abaee4ce1418ef96"


static const char *const two_partitions_commands[] = {
    "MSET dw:clock:detention_unexecuted:JL1 " JL1_RECORD,
    "DEL dw:clock:bail_expiry:M1",
    /* JL1's red (2026-11-30 22:00) armed in its shard of the bucket
     * (FNV-1a of "detention_unexecuted:JL1" is 5 modulo 8); M1's orange
     * taken out of the bucket its version 0 record was armed in, unsharded */
    "ZADD dw:due:events:0:2993412.5 1796047200000 detention_unexecuted:JL1",
    "ZREM dw:due:events:1:2994288 bail_expiry:M1",
    "ZADD dw:due:events:0 1796047200000 2993412.5",
    /* counters: e1 once (its copy is a duplicate) on 2026-11-29 (ISO week
     * 48), outside the minute window; e2 (e5 is a duplicate) and e6 on
     * 2026-11-30 (week 49); JL1's orange on the day it was due; M1's
     * resolution on its stop's day */
    /* counters: one HINCRBYS per key, each field once (fields in the order first counted) */
    "HINCRBYS dw:changes:2026-11-29 detention_unexecuted:" UNIT ":started 1",
    "HINCRBYS dw:changes:2026-11-30 bail_expiry:" UNIT ":stopped 1",
    "HINCRBYS dw:d:2026-11-29:" UNIT " detention.decided 1",
    "HINCRBYS dw:d:2026-11-29:_all detention.decided 1",
    "HINCRBYS dw:d:2026-11-30:" UNIT " alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:d:2026-11-30:_all alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:m:2026-11:" UNIT " alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 detention.decided 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:m:2026-11:_all alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 detention.decided 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:q:2026-Q4:" UNIT " alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 detention.decided 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:q:2026-Q4:_all alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 detention.decided 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:w:2026-W48:" UNIT " detention.decided 1",
    "HINCRBYS dw:w:2026-W48:_all detention.decided 1",
    "HINCRBYS dw:w:2026-W49:" UNIT " alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:w:2026-W49:_all alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:wh:498877:" UNIT " detention.decided 1",
    "HINCRBYS dw:wh:498877:_all detention.decided 1",
    "HINCRBYS dw:wh:498890:" UNIT " incident.reported 1 measure.ended 1",
    "HINCRBYS dw:wh:498890:_all incident.reported 1 measure.ended 1",
    "HINCRBYS dw:wm:29933400:" UNIT " incident.reported 1 measure.ended 1",
    "HINCRBYS dw:wm:29933400:_all incident.reported 1 measure.ended 1",
    "HINCRBYS dw:y:2026:" UNIT " alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 detention.decided 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "HINCRBYS dw:y:2026:_all alert.detention_unexecuted.orange 1 resolved.bail_expiry.ontime 1 detention.decided 1 incident.reported 1 incident.reported:other 1 measure.ended 1",
    "EXPIRE dw:d:2026-11-29:" UNIT " 34560000",
    "EXPIRE dw:d:2026-11-29:_all 34560000",
    "EXPIRE dw:d:2026-11-30:" UNIT " 34560000",
    "EXPIRE dw:d:2026-11-30:_all 34560000",
    "EXPIRE dw:m:2026-11:" UNIT " 34560000",
    "EXPIRE dw:m:2026-11:_all 34560000",
    "EXPIRE dw:w:2026-W48:" UNIT " 34560000",
    "EXPIRE dw:w:2026-W48:_all 34560000",
    "EXPIRE dw:w:2026-W49:" UNIT " 34560000",
    "EXPIRE dw:w:2026-W49:_all 34560000",
    /* sliding windows: hours 498877 (T0) and 498890 (TS), minute 29933400 */
    "EXPIRE dw:wh:498877:" UNIT " 2685600",
    "EXPIRE dw:wh:498877:_all 2685600",
    "EXPIRE dw:wh:498890:" UNIT " 2685600",
    "EXPIRE dw:wh:498890:_all 2685600",
    "EXPIRE dw:wm:29933400:" UNIT " 7320",
    "EXPIRE dw:wm:29933400:_all 7320",
    /* kinds (incident.reported kind other), quarter and year buckets, and the
     * person of the detention decision (P9) once per bucket */
    "DISTINCT dw:pd:2026-11-29:" UNIT " dw:d:2026-11-29:" UNIT " persons.detention.decided detention.decided|P9",
    "DISTINCT dw:pd:2026-11-29:_all dw:d:2026-11-29:_all persons.detention.decided detention.decided|P9",
    "DISTINCT dw:pm:2026-11:" UNIT " dw:m:2026-11:" UNIT " persons.detention.decided detention.decided|P9",
    "DISTINCT dw:pm:2026-11:_all dw:m:2026-11:_all persons.detention.decided detention.decided|P9",
    "DISTINCT dw:pq:2026-Q4:" UNIT " dw:q:2026-Q4:" UNIT " persons.detention.decided detention.decided|P9",
    "DISTINCT dw:pq:2026-Q4:_all dw:q:2026-Q4:_all persons.detention.decided detention.decided|P9",
    "DISTINCT dw:pw:2026-W48:" UNIT " dw:w:2026-W48:" UNIT " persons.detention.decided detention.decided|P9",
    "DISTINCT dw:pw:2026-W48:_all dw:w:2026-W48:_all persons.detention.decided detention.decided|P9",
    "DISTINCT dw:py:2026:" UNIT " dw:y:2026:" UNIT " persons.detention.decided detention.decided|P9",
    "DISTINCT dw:py:2026:_all dw:y:2026:_all persons.detention.decided detention.decided|P9",
    "EXPIRE dw:pd:2026-11-29:" UNIT " 34560000",
    "EXPIRE dw:pd:2026-11-29:_all 34560000",
    "EXPIRE dw:pm:2026-11:" UNIT " 34560000",
    "EXPIRE dw:pm:2026-11:_all 34560000",
    "EXPIRE dw:pq:2026-Q4:" UNIT " 34560000",
    "EXPIRE dw:pq:2026-Q4:_all 34560000",
    "EXPIRE dw:pw:2026-W48:" UNIT " 34560000",
    "EXPIRE dw:pw:2026-W48:_all 34560000",
    "EXPIRE dw:py:2026:" UNIT " 34560000",
    "EXPIRE dw:py:2026:_all 34560000",
    "EXPIRE dw:q:2026-Q4:" UNIT " 34560000",
    "EXPIRE dw:q:2026-Q4:_all 34560000",
    "EXPIRE dw:y:2026:" UNIT " 34560000",
    "EXPIRE dw:y:2026:_all 34560000",
    /* for the end-of-day snapshots: JL1 started on 2026-11-29, M1 stopped on
     * 2026-11-30 (kept 64 days) */
    "EXPIRE dw:changes:2026-11-29 5529600",
    "EXPIRE dw:changes:2026-11-30 5529600",
    /* running clocks */
    "INCRBY dw:active:bail_expiry:" UNIT " -1",
    "INCRBY dw:active:bail_expiry:_all -1",
    "INCRBY dw:active:detention_unexecuted:" UNIT " 1",
    "INCRBY dw:active:detention_unexecuted:_all 1",
    "SADD dw:running detention_unexecuted:" UNIT " detention_unexecuted:_all",
    /* event times (the tick's on events:0), offsets, outboxes, stop marker */
    "HSET dw:eventtime events:0 1796004000009 events:1 1796004000004",
    "HSET dw:offsets events:0 44 events:1 9",
    "HSET dw:outbox:events:0 " JL1_ORANGE_ID " " JL1_ORANGE,
    "HSET dw:outbox:events:1 " M1_RESOLVED_ID " " M1_RESOLVED,
    "HSET dw:stopped:2026-11-27 ref:M1 measure.ended|1796004000004",
    /* the new ids into the current span */
    "SADD dw:ev:2026-11-27 e1 e2 e6",
    "EXPIRE dw:ev:2026-11-27 3456000",
    "EXPIRE dw:stopped:2026-11-27 3456000",
};

static void test_compute_and_write(void **state)
{
    (void)state;
    struct batch *batch = two_partitions();
    const struct batch_settings settings = settings_of(true);
    compute(batch, two_partitions_reply(batch, &settings), &settings);
    assert_int_equal(batch_applied_count(batch), 3);   /* e1, e2, e6 */
    assert_int_equal(batch_duplicate_count(batch), 2); /* e1's copy, e5 */

    const struct clock_engine *engine = batch_engine(batch);
    assert_int_equal(clock_engine_alert_count(engine), 2);
    const struct engine_alert *orange = clock_engine_alert(engine, 0);
    assert_string_equal(orange->partition, "events:0");
    assert_string_equal(orange->id, JL1_ORANGE_ID);
    assert_string_equal(orange->payload, JL1_ORANGE);
    const struct engine_alert *resolved = clock_engine_alert(engine, 1);
    assert_string_equal(resolved->partition, "events:1");
    assert_string_equal(resolved->id, M1_RESOLVED_ID);
    assert_string_equal(resolved->payload, M1_RESOLVED);
    assert_true(clock_engine_earliest(engine) == INT64_C(1796047200000));
    assert_int_equal(clock_engine_calendar_gaps(engine), 0);

    static struct argv_lines lines;
    write_lines(batch, &settings, &lines);
    assert_string_equal(lines.line[0], "EVALSHA SHA2 0 " ARGS_VERSION " dw:fence:00000000000000ab-1 3");
    assert_true(has_line(&lines, "V dw:clock:bail_expiry:M1 " BAIL_M1_V0));
    expect_commands(&lines, two_partitions_commands, COUNT_OF(two_partitions_commands));

    const char *topic;
    int32_t partition;
    int64_t next_offset, max_event_time;
    assert_int_equal(batch_partition_count(batch), 2);
    batch_partition(batch, 1, &topic, &partition, &next_offset, &max_event_time);
    assert_string_equal(topic, "events");
    assert_int_equal(partition, 1);
    assert_int_equal(next_offset, 9);
    assert_true(max_event_time == TS + 4);
}

/* Every clock the write changes is checked to be as read: M1 still holds
 * the record read, and JL1, read absent, is still absent (else a start by
 * another daemon in between would be overwritten unnoticed). */
static void test_write_checks_clocks_as_read(void **state)
{
    (void)state;
    struct batch *batch = two_partitions();
    const struct batch_settings settings = settings_of(true);
    compute(batch, two_partitions_reply(batch, &settings), &settings);
    static struct argv_lines lines;
    write_lines(batch, &settings, &lines);
    static const char *const expected[] = {
        "checks 2",
        "A dw:clock:detention_unexecuted:JL1",
        "V dw:clock:bail_expiry:M1 " BAIL_M1_V0,
    };
    static struct argv_lines checks;
    checks.count = 0;
    for (size_t i = 1; i < lines.count && strncmp(lines.line[i], "MSET ", 5) != 0; i++)
        memcpy(checks.line[checks.count++], lines.line[i], ARGV_LINE_MAX);
    argv_lines_expect(&checks, expected, COUNT_OF(expected));
}

/* A stop marker read for the key (a stop that came first, with a later ts)
 * keeps a start from starting; an older one does not. */
static void expect_start_after_marker(const char *marker, bool started)
{
    struct batch *batch = new_batch(4, NULL);
    struct duewatch_event start = event_of(EVENT_MEASURE_STARTED, "s1", TS, "M3", "bail");
    assert_int_equal(add(batch, 0, 1, &start), 1);
    const struct batch_settings settings = settings_of(true);
    /* EXISTS per span (10), SMISMEMBER and HMGET per span (5 each) around
     * MGET, then the event time and claimed: the marker read is in the
     * middle span (the newest that holds one), an older one in the oldest */
    redisReply *reply = empty_read_reply(batch, &settings);
    assert_int_equal(reply->elements, 10 + 5 + 1 + 5 + 1 + 1);
    reply->element[16]->element[0] = string("measure.ended|1700000000000");
    reply->element[18]->element[0] = string(marker);
    compute(batch, reply, &settings);
    assert_int_equal(batch_applied_count(batch), 1);
    static struct argv_lines lines;
    write_lines(batch, &settings, &lines);
    assert_int_equal(has_line(&lines, "INCRBY dw:active:bail_expiry:_all 1"), started);
    bool written = false;
    for (size_t i = 0; i < lines.count; i++)
        written |= strncmp(lines.line[i], "MSET dw:clock:bail_expiry:M3 ", 29) == 0;
    assert_int_equal(written, started);
}

static void test_stop_marker_read_keeps_start_from_starting(void **state)
{
    (void)state;
    expect_start_after_marker("measure.ended|1796004000000", false); /* at ts: stopped */
    expect_start_after_marker("measure.ended|1796004060000", false);
    expect_start_after_marker("measure.ended|1796003999999", true);  /* before: starts */
    expect_start_after_marker("case.closed|1796004060000", true);    /* not a bail stop */
}


/* Computes the batch on a read that found nothing (empty_read_reply). */
static void compute_on_empty_read(struct batch *batch, const struct batch_settings *settings)
{
    redisReply *reply = empty_read_reply(batch, settings);
    char err[256] = "";
    if (batch_compute(batch, reply, settings, err, sizeof err) != 0)
        fail_msg("batch_compute: %s", err);
}

/* Three batches in flight: the read of the third ran before the writes of
 * both ahead of it.  What they write counts as read, the newest first: the
 * clock the oldest started is stopped (and checked as that one writes it),
 * and the id it applied is a duplicate. */
static void test_reads_count_every_write_ahead(void **state)
{
    (void)state;
    const struct batch_settings settings = settings_of(true);
    struct batch *first = new_batch(4, NULL), *second = batch_create(4, NULL),
                 *third = batch_create(4, NULL);
    assert_non_null(second);
    assert_non_null(third);
    struct duewatch_event start = event_of(EVENT_MEASURE_STARTED, "s1", TS, "M3", "bail");
    struct duewatch_event other = event_of(EVENT_INCIDENT_REPORTED, "s2", TS + 1, "R2", "other");
    struct duewatch_event end = event_of(EVENT_MEASURE_ENDED, "s3", TS + 2, "M3", "");
    assert_int_equal(add(first, 0, 1, &start), 1);
    compute_on_empty_read(first, &settings);
    assert_int_equal(add(second, 0, 2, &other), 0);
    const struct batch *ahead_of_second[] = {first};
    batch_set_aheads(second, ahead_of_second, 1);
    compute_on_empty_read(second, &settings);
    assert_int_equal(add(third, 0, 1, &start), 1); /* s1 again */
    assert_int_equal(add(third, 0, 3, &end), 3);
    const struct batch *ahead_of_third[] = {second, first};
    batch_set_aheads(third, ahead_of_third, 2);
    compute_on_empty_read(third, &settings);
    assert_int_equal(batch_duplicate_count(third), 1);
    assert_int_equal(batch_applied_count(third), 1);

    static struct argv_lines started, stopped;
    write_lines(first, &settings, &started);
    const char *record = NULL;
    for (size_t i = 0; i < started.count; i++)
        if (strncmp(started.line[i], "MSET dw:clock:bail_expiry:M3 ", 29) == 0)
            record = started.line[i] + 29;
    assert_non_null(record);
    char check[ARGV_LINE_MAX];
    snprintf(check, sizeof check, "V dw:clock:bail_expiry:M3 %s", record);
    write_lines(third, &settings, &stopped);
    assert_true(has_line(&stopped, check));
    assert_true(has_line(&stopped, "DEL dw:clock:bail_expiry:M3"));
    assert_true(has_line(&stopped, "INCRBY dw:active:bail_expiry:_all -1"));
    batch_destroy(second);
    batch_destroy(third);
}

/* Events of one unit, type and kind on one day are counted once in the
 * period buckets, whatever their minutes; the windows count each minute and
 * hour apart. */
static void test_period_counts_sum_the_minutes_of_a_day(void **state)
{
    (void)state;
    struct batch *batch = under_test = new_batch(8, NULL);
    const int64_t offsets[3] = {0, 2 * 60000, 2 * HOUR_MS};
    const char *const ids[3] = {"p1", "p2", "p3"};
    for (int i = 0; i < 3; i++) {
        struct duewatch_event event =
            event_of(EVENT_INCIDENT_REPORTED, ids[i], TS + offsets[i], ids[i], "other");
        assert_int_equal(add(batch, 0, i, &event), 0);
    }
    const struct batch_settings settings = settings_of(false);
    compute_on_empty_read(batch, &settings);
    static struct argv_lines lines;
    write_lines(batch, &settings, &lines);
    static const char *const expected[] = {
        "HINCRBYS dw:d:2026-11-30:" UNIT " incident.reported 3 incident.reported:other 3",
        "HINCRBYS dw:y:2026:_all incident.reported 3 incident.reported:other 3",
        "HINCRBYS dw:wm:29933400:" UNIT " incident.reported 1",
        "HINCRBYS dw:wm:29933402:" UNIT " incident.reported 1",
        "HINCRBYS dw:wm:29933520:" UNIT " incident.reported 1",
        "HINCRBYS dw:wh:498890:" UNIT " incident.reported 2",
        "HINCRBYS dw:wh:498892:_all incident.reported 1",
    };
    for (size_t i = 0; i < COUNT_OF(expected); i++)
        if (!has_line(&lines, expected[i]))
            fail_msg("no line '%s'", expected[i]);
}

static void expect_compute_error_with(struct batch *batch, const redisReply *reply,
                                      const struct batch_settings *settings, const char *expected)
{
    char err[256] = "";
    assert_int_equal(batch_compute(batch, reply, settings, err, sizeof err), -1);
    assert_string_equal(err, expected);
}

static void expect_compute_error(struct batch *batch, const redisReply *reply,
                                 const char *expected)
{
    const struct batch_settings settings = settings_of(true);
    expect_compute_error_with(batch, reply, &settings, expected);
}

static void test_reply_of_the_wrong_shape(void **state)
{
    (void)state;
    struct batch *batch = two_partitions();
    const struct batch_settings settings = settings_of(true);
    nodes_used = children_used = 0;
    redisReply *error = node(REDIS_REPLY_ERROR);
    error->str = "VERSION arguments of format 2, this script reads 1";
    expect_compute_error(batch, error,
                         "batch read: unexpected reply VERSION arguments of format 2, "
                         "this script reads 1");
    expect_compute_error(batch, nil(), "batch read: unexpected reply ");
    /* four seen flags for five ids */
    redisReply *reply = two_partitions_reply(batch, &settings);
    reply->element[READ_SEEN(2)]->elements = 4;
    expect_compute_error(batch, reply, "batch read: reply of the wrong shape");
    reply = two_partitions_reply(batch, &settings);
    reply->element[READ_TIMES] = nil();
    expect_compute_error(batch, reply, "batch read: reply of the wrong shape");
    reply = two_partitions_reply(batch, &settings);
    reply->element[READ_EXISTS_STOPPED(1)] = nil();
    expect_compute_error(batch, reply, "batch read: reply of the wrong shape");
    /* a reply too few, and one too many */
    reply = two_partitions_reply(batch, &settings);
    reply->elements--;
    expect_compute_error(batch, reply, "batch read: reply of the wrong shape");
    reply = two_partitions_reply(batch, &settings);
    redisReply **more = reserve_children(reply->elements + 1);
    memcpy(more, reply->element, reply->elements * sizeof *more);
    more[reply->elements++] = array(0);
    reply->element = more;
    expect_compute_error(batch, reply, "batch read: reply of the wrong shape");
}

/* With hints (kept by the caller from read to read), a read asks only the
 * spans the last read found, and probes them all; a span that appeared
 * meanwhile, not asked, makes the computation STALE (read again), and the
 * next read asks it. */
static void test_read_asks_the_spans_that_exist(void **state)
{
    (void)state;
    static struct batch_span_hints hints;
    memset(&hints, 0, sizeof hints);
    struct batch_settings settings = settings_of(true);
    settings.span_hints = &hints;
    struct batch *batch = two_partitions();
    /* nothing known yet: every span asked; the reply says which exist */
    compute(batch, two_partitions_reply(batch, &settings), &settings);
    assert_int_equal(batch_duplicate_count(batch), 2); /* e5 in a span, e1 twice */
    const struct redis_command *commands;
    int count = batch_build_read(batch, "SHA1", &settings, &commands);
    static const char *const known[] = {
        SPAN_PROBES,
        "SMISMEMBER dw:ev:2026-10-26 e1 e2 e1 e5 e6",
        "SMISMEMBER dw:ev:2026-11-27 e1 e2 e1 e5 e6",
        "MGET dw:clock:detention_unexecuted:JL1 dw:clock:bail_expiry:M1 dw:clock:rs_expiry:M1 "
        "dw:clock:criminal_detention_limit:M1",
        /* no stopped span exists: no HMGET of markers */
        "HMGET dw:eventtime events:0 events:1",
        "HGETALL dw:claimed",
    };
    expect_read(count, commands, known, COUNT_OF(known));

    /* a stopped span appeared: the read did not ask it */
    redisReply *reply = empty_read_reply(batch, &settings);
    reply->element[READ_EXISTS_EV(0)]->integer = 1;
    reply->element[READ_EXISTS_EV(4)]->integer = 1;
    reply->element[READ_EXISTS_STOPPED(3)]->integer = 1;
    expect_compute_error_with(batch, reply, &settings,
                              "STALE dw:stopped:2026-11-19 appeared since the last read");
    count = batch_build_read(batch, "SHA1", &settings, &commands);
    assert_int_equal(count, 10 + 2 + 1 + 1 + 1 + 1);
    assert_int_equal(commands[13].argc, 4);
    assert_string_equal(commands[13].argv[1], "dw:stopped:2026-11-19");
}

static void test_full_batch_refuses_more(void **state)
{
    (void)state;
    struct batch *batch = new_batch(2, NULL);
    struct duewatch_event event = event_of(EVENT_CASE_FILED, "e1", TS, "R1", "");
    int message;
    /* an event needs a partition held first */
    assert_int_equal(batch_add_event(batch, &event, TS, NULL, 0), -1);
    assert_int_equal(batch_hold(batch, &message, "events", 0, 1), 0);
    assert_int_equal(batch_add_event(batch, &event, TS, NULL, 0), 0);
    assert_int_equal(batch_hold(batch, &message, "events", 0, 2), 0);
    assert_true(batch_is_full(batch));
    assert_int_equal(batch_hold(batch, &message, "events", 0, 3), -1);
    batch_destroy(NULL); /* accepted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_read_commands, destroy_batch),
        cmocka_unit_test_teardown(test_reads_count_every_write_ahead, destroy_batch),
        cmocka_unit_test_teardown(test_period_counts_sum_the_minutes_of_a_day, destroy_batch),
        cmocka_unit_test_teardown(test_read_asks_provisional_entries, destroy_batch),
        cmocka_unit_test_teardown(test_compute_and_write, destroy_batch),
        cmocka_unit_test_teardown(test_write_checks_clocks_as_read, destroy_batch),
        cmocka_unit_test_teardown(test_stop_marker_read_keeps_start_from_starting, destroy_batch),
        cmocka_unit_test_teardown(test_reply_of_the_wrong_shape, destroy_batch),
        cmocka_unit_test_teardown(test_read_asks_the_spans_that_exist, destroy_batch),
        cmocka_unit_test_teardown(test_full_batch_refuses_more, destroy_batch),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
