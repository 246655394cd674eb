/* Unit tests of the deadline engine's behaviour over time (the table of
 * legal cases, tests/golden/deadlines.json, checks the deadlines and due
 * times; test_golden.c runs it): what fires when, exactly, for a paused
 * clock.  A paused clock's time stands still: an extension or a stop during
 * the pause fires nothing that fell due after the pause began, and a stop
 * during it is late only if the pause began after the deadline.  A claim
 * in wall mode sends each level of a start that waited in a backlog within
 * the backfill window, and collapses those of an older start.  A parked
 * clock resumes with every level due meanwhile, in order, across calls
 * when the budget runs out.  In event mode an event far ahead of its
 * partition's time (a stop years late) sends each level due after that
 * time once, red at its latest repeat.  An extension beyond the rule's caps
 * is applied and puts one violation alert in the outbox (seq: the
 * extension's number; the deadline as extended; due at the extension),
 * counted in violation.<rule> of its day, week and month.  A resolution
 * names the ids of the clock's levels under the deadline in force at the
 * stop (yellow, orange, the latest 8 red repeats). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "clock_engine.h"
#include "clock_setup.h"
#include "config.h"
#include "effects.h"
#include "alert_message.h"
#include "script_argv.h"

static struct clock_setup *setup;
/* One engine and one effects object for the file; each test starts afresh
 * (start_admin_case begins a new call on emptied effects). */
static struct clock_engine *engine;
static struct effects *effects;

static int64_t at(int year, int month, int day, int hour, int minute)
{
    return calendar_day_start_ms(calendar_day_from_ymd(year, month, day)) +
           ((int64_t)hour * 60 + minute) * 60000;
}

static int load_setup(void **state)
{
    (void)state;
    char err[512], rules[1024], holidays[1024];
    const char *source = getenv("DUEWATCH_SOURCE_DIR");
    snprintf(rules, sizeof rules, "%s/conf/rules.conf", source ? source : ".");
    snprintf(holidays, sizeof holidays, "%s/conf/holidays-cn.conf", source ? source : ".");
    struct config config = {.rules_file = rules, .holidays_file = holidays};
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0 ||
        (setup = clock_setup_load(&config, err, sizeof err)) == NULL) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    engine = clock_engine_create();
    effects = effects_create();
    return engine && effects ? 0 : -1;
}

static int free_setup(void **state)
{
    (void)state;
    clock_setup_destroy(setup);
    clock_engine_destroy(engine);
    effects_destroy(effects);
    return 0;
}

/* An admin case (30 days, moved off rest days; yellow 7 days, orange 3
 * days, red daily) accepted 2025-03-03 10:00: last day 04-02, deadline
 * 2025-04-03 00:00, yellow due 03-27, orange 03-31. */
static void start_admin_case(struct engine_clock *clock)
{
    effects_reset(effects);
    *clock = (struct engine_clock){.rule = "admin_case_limit",
                                   .spec = clock_setup_rule_spec(setup, "admin_case_limit", 0),
                                   .key = "A1"};
    assert_non_null(clock->spec);
    struct clock_record *c = &clock->record;
    snprintf(c->unit, sizeof c->unit, "500112-XJ01");
    snprintf(c->case_number, sizeof c->case_number, "A1");
    snprintf(c->cause, sizeof c->cause, "e1");
    snprintf(c->partition, sizeof c->partition, "events:0");
    c->started_at_ms = at(2025, 3, 3, 10, 0);
    c->has_last_day = true;
    c->last_day = calendar_day_from_ymd(2025, 4, 2);
    c->base_deadline_ms = at(2025, 4, 3, 0, 0);
    c->fired = -1;
    clock_engine_begin(engine, "dw:", clock_setup_holidays(setup), false, 86400, 1000000,
                       effects);
    clock_engine_start(engine, clock, c->started_at_ms);
    assert_int_equal(clock_engine_alert_count(engine), 0);
    assert_true(c->armed);
    assert_int_equal(c->next_due_ms, at(2025, 3, 27, 0, 0));
}

static void test_extension_during_a_pause_fires_nothing_after_it_began(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    clock_engine_pause(engine, &clock, at(2025, 3, 20, 9, 0), false, 0);
    assert_false(clock.record.armed);
    /* 03-28, still paused: yellow (due 03-27) fell due after the pause began */
    clock_engine_extend(engine, &clock, 30, GROUND_NONE, at(2025, 3, 28, 9, 0), false, 0,
                        at(2025, 3, 28, 9, 0));
    assert_int_equal(clock_engine_alert_count(engine), 0);
    assert_int_equal(clock.record.fired, -1);
    assert_false(clock.record.armed); /* still paused: nothing armed */
    /* the resume arms the yellow of the extended term (last day 05-02, a
     * holiday -> 05-06), shifted by the 12 days 01:00 paused */
    clock_engine_resume(engine, &clock, at(2025, 4, 1, 10, 0), at(2025, 4, 1, 10, 0));
    assert_int_equal(clock.record.last_day, calendar_day_from_ymd(2025, 5, 6));
    assert_true(clock.record.armed);
    assert_int_equal(clock.record.next_due_ms,
                     at(2025, 4, 30, 0, 0) + (at(2025, 4, 1, 10, 0) - at(2025, 3, 20, 9, 0)));
}

/* Whether the effects built hold `line` (script_argv.h's lines). */
static bool effects_hold(const char *line)
{
    const char **argv;
    const size_t *lengths;
    int argc = effects_build(effects, "SHA", "", 0, &argv, &lengths);
    assert_true(argc > 0);
    static struct argv_lines lines;
    argv_lines_read(argc, argv, lengths, &lines);
    for (size_t i = 0; i < lines.count; i++)
        if (strcmp(lines.line[i], line) == 0)
            return true;
    return false;
}

static void test_extension_beyond_the_caps_is_applied_and_reported_once(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    clock.caps = clock_setup_rule_caps(setup, "admin_case_limit", 0); /* once, 30 days */
    assert_non_null(clock.caps);
    clock_engine_extend(engine, &clock, 30, GROUND_NONE, at(2025, 3, 10, 9, 0), false, 0,
                        at(2025, 3, 10, 9, 0));
    assert_int_equal(clock_engine_alert_count(engine), 0); /* lawful */
    assert_int_equal(clock.record.extensions, 1);
    assert_int_equal(clock.record.extended_days, 30);
    /* the second: 05-02 (Labour Day holidays) -> 05-06, + 3 = 05-09 */
    clock_engine_extend(engine, &clock, 3, GROUND_NONE, at(2025, 3, 11, 9, 0), false, 0,
                        at(2025, 3, 11, 9, 0));
    assert_int_equal(clock.record.last_day, calendar_day_from_ymd(2025, 5, 9));
    assert_int_equal(clock.record.extensions, 2);
    assert_int_equal(clock.record.extended_days, 33);
    assert_int_equal(clock_engine_alert_count(engine), 1);
    const struct engine_alert *sent = clock_engine_alert(engine, 0);
    struct alert alert;
    char err[160];
    assert_int_equal(alert_parse(sent->id, sent->payload, strlen(sent->payload), &alert, err,
                                 sizeof err), 0);
    assert_string_equal(alert.level, "violation");
    assert_string_equal(alert.state, "firing");
    assert_true(alert.seq == 2);
    assert_true(alert.due_at_ms == at(2025, 3, 11, 9, 0));
    assert_true(alert.deadline_ms == at(2025, 5, 10, 0, 0));
    /* sha1("admin_case_limit|A1|<deadline>|violation|2"), as every alert id */
    assert_int_equal(strlen(sent->id), 32);
    assert_true(effects_hold("HINCRBYS dw:d:2025-03-11:500112-XJ01 violation.admin_case_limit 1"));
    assert_true(effects_hold("HINCRBYS dw:w:2025-W11:_all violation.admin_case_limit 1"));
    assert_true(effects_hold("HINCRBYS dw:m:2025-03:500112-XJ01 violation.admin_case_limit 1"));
    /* a third extension is reported again, with its own number */
    clock_engine_extend(engine, &clock, 1, GROUND_NONE, at(2025, 3, 12, 9, 0), false, 0,
                        at(2025, 3, 12, 9, 0));
    assert_int_equal(clock_engine_alert_count(engine), 2);
    assert_int_equal(alert_parse(clock_engine_alert(engine, 1)->id,
                                 clock_engine_alert(engine, 1)->payload,
                                 strlen(clock_engine_alert(engine, 1)->payload), &alert, err,
                                 sizeof err), 0);
    assert_true(alert.seq == 3);
    assert_string_not_equal(clock_engine_alert(engine, 1)->id, sent->id);
}

/* The criminal detention's totals: 7 days without a ground, 30 with one of
 * its grounds (流窜作案、多次作案、结伙作案); the filing review's ground
 * (complex) does not lengthen it. */
static void test_detention_totals_with_and_without_a_ground(void **state)
{
    (void)state;
    const struct extension_caps *caps = clock_setup_rule_caps(setup, "criminal_detention_limit", 0);
    struct clock_record record = {.has_last_day = true,
                                  .started_at_ms = at(2025, 3, 3, 9, 0),
                                  .extensions = 1};
    record.last_day = calendar_day_from_ymd(2025, 3, 10); /* 7 days */
    assert_false(clock_engine_extension_violates(caps, &record, GROUND_NONE));
    record.last_day = calendar_day_from_ymd(2025, 3, 11); /* 8 days */
    assert_true(clock_engine_extension_violates(caps, &record, GROUND_NONE));
    assert_false(clock_engine_extension_violates(caps, &record, GROUND_ROVING));
    assert_true(clock_engine_extension_violates(caps, &record, GROUND_COMPLEX));
    record.last_day = calendar_day_from_ymd(2025, 4, 2); /* 30 days */
    assert_false(clock_engine_extension_violates(caps, &record, GROUND_REPEATED));
    assert_false(clock_engine_extension_violates(caps, &record, GROUND_GANG));
    record.last_day = calendar_day_from_ymd(2025, 4, 3); /* 31 days */
    assert_true(clock_engine_extension_violates(caps, &record, GROUND_GANG));
    assert_false(clock_engine_extension_violates(NULL, &record, GROUND_GANG));
}

/* The filing review's totals (公安部关于改革完善受案立案制度的意见): 7 days
 * without a ground, 30 with `complex` (重大疑难复杂案件), and a criminal
 * detention's ground does not unlock the 30. */
static void test_filing_review_totals_only_its_ground_unlocks(void **state)
{
    (void)state;
    const struct extension_caps *caps = clock_setup_rule_caps(setup, "criminal_filing_review", 0);
    assert_non_null(caps);
    struct clock_record record = {.has_last_day = true,
                                  .started_at_ms = at(2025, 3, 3, 9, 0),
                                  .extensions = 1};
    record.last_day = calendar_day_from_ymd(2025, 3, 10); /* 7 days */
    assert_false(clock_engine_extension_violates(caps, &record, GROUND_NONE));
    record.last_day = calendar_day_from_ymd(2025, 3, 11); /* 8 days */
    assert_true(clock_engine_extension_violates(caps, &record, GROUND_NONE));
    assert_true(clock_engine_extension_violates(caps, &record, GROUND_ROVING));
    assert_false(clock_engine_extension_violates(caps, &record, GROUND_COMPLEX));
    record.last_day = calendar_day_from_ymd(2025, 4, 2); /* 30 days */
    assert_true(clock_engine_extension_violates(caps, &record, GROUND_GANG));
    assert_false(clock_engine_extension_violates(caps, &record, GROUND_COMPLEX));
    record.last_day = calendar_day_from_ymd(2025, 4, 3); /* 31 days */
    assert_true(clock_engine_extension_violates(caps, &record, GROUND_COMPLEX));
}

static void test_stop_during_a_pause_is_not_late_and_sends_nothing(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    clock_engine_pause(engine, &clock, at(2025, 3, 20, 9, 0), false, 0);
    /* 04-10, past the unpaused deadline, still paused */
    bool late = true;
    clock_engine_stop(engine, &clock, at(2025, 4, 10, 9, 0), false, 0, "e9", &late);
    assert_false(late);
    assert_int_equal(clock_engine_alert_count(engine), 0); /* nothing had fired */
}

static void test_stop_after_the_levels_fired_resolves_once(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    /* 03-29 10:00: yellow (03-27) fires before the stop; the stop resolves it */
    bool late = true;
    clock_engine_stop(engine, &clock, at(2025, 3, 29, 10, 0), false, 0, "e9", &late);
    assert_false(late);
    assert_int_equal(clock_engine_alert_count(engine), 2);
    const struct engine_alert *yellow = clock_engine_alert(engine, 0);
    const struct engine_alert *resolved = clock_engine_alert(engine, 1);
    assert_non_null(strstr(yellow->payload, "|yellow|firing|0|"));
    assert_non_null(strstr(resolved->payload, "|yellow|resolved|0|"));
    assert_string_equal(yellow->partition, "events:0");
    assert_string_not_equal(yellow->id, resolved->id);
    /* the resolution names the yellow's id, and nothing else */
    assert_non_null(strstr(resolved->payload, "|e9|0|"));
    assert_string_equal(strrchr(resolved->payload, '|') + 1, yellow->id);
}

/* The levels the call put in the outbox so far, "level/seq,..." */
static void fired(char *buf, size_t size)
{
    buf[0] = '\0';
    for (size_t i = 0, length = 0; i < clock_engine_alert_count(engine) && length < size; i++) {
        const char *payload = clock_engine_alert(engine, i)->payload;
        const char *level = strstr(payload, "|yellow|firing|") ? "yellow"
                            : strstr(payload, "|orange|firing|") ? "orange"
                                                                 : "red";
        const char *seq = strstr(payload, "|firing|") + strlen("|firing|");
        int written = snprintf(buf + length, size - length, "%s%s/%.*s", i ? "," : "", level,
                               (int)strcspn(seq, "|"), seq);
        length += written > 0 ? (size_t)written : 0;
    }
}

/* Wall mode, 04-01 10:00: the partition was claimed up to 09:59, and the
 * admin case's start (03-03) is only applied now; yellow (03-27) and
 * orange (03-31) are both past. */
static void claim_late_start(int64_t window_ms, char *buf, size_t size)
{
    struct engine_clock clock;
    start_admin_case(&clock);
    clock_engine_begin(engine, "dw:", clock_setup_holidays(setup), true, 86400, 1000000,
                       effects);
    int64_t now = at(2025, 4, 1, 10, 0);
    clock_engine_set_backfill(engine, window_ms, now);
    clock_engine_claim(engine, &clock, now, true, at(2025, 4, 1, 9, 59));
    fired(buf, size);
    clock_engine_set_backfill(engine, 0, 0);
}

static void test_wall_claim_sends_each_level_of_a_start_within_the_window(void **state)
{
    (void)state;
    char levels[256];
    claim_late_start(INT64_C(40) * 86400000, levels, sizeof levels); /* start 29 days old */
    assert_string_equal(levels, "yellow/0,orange/0");
    claim_late_start(INT64_C(86400000), levels, sizeof levels); /* older than the window */
    assert_string_equal(levels, "orange/0");
}

static void test_unpark_sends_every_level_due_in_order_across_calls(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    clock.record.armed = false; /* parked: out of the due index */
    char levels[256];
    /* 04-05 10:00: yellow, orange, red (04-03), repeats 04-04 and 04-05;
     * a budget of 2 stops after orange, nothing armed */
    clock_engine_begin(engine, "dw:", clock_setup_holidays(setup), true, 86400, 2, effects);
    assert_false(clock_engine_unpark(engine, &clock, at(2025, 4, 5, 10, 0)));
    fired(levels, sizeof levels);
    assert_string_equal(levels, "yellow/0,orange/0");
    assert_false(clock.record.armed);
    clock_engine_begin(engine, "dw:", clock_setup_holidays(setup), true, 86400, 1000, effects);
    assert_true(clock_engine_unpark(engine, &clock, at(2025, 4, 5, 10, 0)));
    fired(levels, sizeof levels);
    assert_string_equal(levels, "red/0,red/1,red/2");
    assert_true(clock.record.armed);
    assert_int_equal(clock.record.next_due_ms, at(2025, 4, 6, 0, 0));
}

static void expect_alert(size_t index, const char *text)
{
    assert_true(index < clock_engine_alert_count(engine));
    const struct engine_alert *alert = clock_engine_alert(engine, index);
    if (strstr(alert->payload, text) == NULL)
        fail_msg("alert %zu is %s, expected %s", index, alert->payload, text);
}

static void test_stop_far_ahead_of_its_partition_sends_each_level_once(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    /* event mode: the partition's time is still the start; the stop comes
     * 2025-06-01 10:00, 59 daily repeats after the deadline (04-03) */
    bool late = false;
    clock_engine_stop(engine, &clock, at(2025, 6, 1, 10, 0), true, at(2025, 3, 3, 10, 0), "e9",
                      &late);
    assert_true(late);
    assert_int_equal(clock_engine_alert_count(engine), 4);
    expect_alert(0, "|yellow|firing|0|");
    expect_alert(1, "|orange|firing|0|");
    expect_alert(2, "|red|firing|59|");
    expect_alert(3, "|red|resolved|0|");
}

static void test_levels_due_before_the_partitions_time_fire_each(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    /* the partition had reached 04-05 12:00 (a live run's claims fire each
     * level by then: red 0, 1 and 2); the rest up to the stop collapse */
    bool late = false;
    clock_engine_stop(engine, &clock, at(2025, 6, 1, 10, 0), true, at(2025, 4, 5, 12, 0), "e9",
                      &late);
    assert_int_equal(clock_engine_alert_count(engine), 7);
    expect_alert(2, "|red|firing|0|");
    expect_alert(3, "|red|firing|1|");
    expect_alert(4, "|red|firing|2|");
    expect_alert(5, "|red|firing|59|");
    expect_alert(6, "|red|resolved|0|");
    /* it resolves yellow, orange and the latest 8 red repeats, 52..59
     * (52..58 were collapsed, never sent; 0..2 are beyond the bound) */
    const char *resolves = strrchr(clock_engine_alert(engine, 6)->payload, '|') + 1;
    assert_int_equal(strlen(resolves), 10 * 33 - 1);
    assert_memory_equal(resolves, clock_engine_alert(engine, 0)->id, 32);
    assert_memory_equal(resolves + 33, clock_engine_alert(engine, 1)->id, 32);
    assert_string_equal(resolves + 9 * 33, clock_engine_alert(engine, 5)->id);
    assert_null(strstr(resolves, clock_engine_alert(engine, 2)->id));
}

/* An extension moves the deadline: the ids of levels fired before it were
 * computed with the old one, and the resolution, computed with the new
 * one, does not name them (their clock id links them). */
static void test_resolution_after_an_extension_names_ids_of_the_new_deadline(void **state)
{
    (void)state;
    struct engine_clock clock;
    start_admin_case(&clock);
    bool late = true;
    /* 03-28: yellow (03-27) fires, then the term is extended by 30 days */
    clock_engine_extend(engine, &clock, 30, false, at(2025, 3, 28, 9, 0), false, 0,
                        at(2025, 3, 28, 9, 0));
    assert_int_equal(clock_engine_alert_count(engine), 1);
    char yellow_id[33];
    snprintf(yellow_id, sizeof yellow_id, "%s", clock_engine_alert(engine, 0)->id);
    clock_engine_stop(engine, &clock, at(2025, 3, 29, 10, 0), false, 0, "e9", &late);
    assert_int_equal(clock_engine_alert_count(engine), 2);
    const char *resolves = strrchr(clock_engine_alert(engine, 1)->payload, '|') + 1;
    assert_int_equal(strlen(resolves), 32);
    assert_string_not_equal(resolves, yellow_id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extension_during_a_pause_fires_nothing_after_it_began),
        cmocka_unit_test(test_stop_during_a_pause_is_not_late_and_sends_nothing),
        cmocka_unit_test(test_extension_beyond_the_caps_is_applied_and_reported_once),
        cmocka_unit_test(test_detention_totals_with_and_without_a_ground),
        cmocka_unit_test(test_filing_review_totals_only_its_ground_unlocks),
        cmocka_unit_test(test_stop_after_the_levels_fired_resolves_once),
        cmocka_unit_test(test_resolution_after_an_extension_names_ids_of_the_new_deadline),
        cmocka_unit_test(test_wall_claim_sends_each_level_of_a_start_within_the_window),
        cmocka_unit_test(test_unpark_sends_every_level_due_in_order_across_calls),
        cmocka_unit_test(test_stop_far_ahead_of_its_partition_sends_each_level_once),
        cmocka_unit_test(test_levels_due_before_the_partitions_time_fire_each),
    };
    return cmocka_run_group_tests(tests, load_setup, free_setup);
}
