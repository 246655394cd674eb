/* Unit tests for daemon/clock_explain.c (`duewatchd --explain-clock`): a
 * stored record read back as the engine computes it, under the shipped rules
 * and calendar.  The clock is the golden table's bail-12-months-readme-example
 * (tests/golden/deadlines.json): started 2024-03-15 10:00, last day
 * 2025-03-17 (2025-03-15 is a Saturday), deadline 2025-03-18 00:00, yellow
 * 2025-03-03 00:00, orange 2025-03-15 00:00, red daily from the deadline;
 * here with yellow sent and orange armed.  Instants come from timegm(). */
#include "calendar.h"
#include "clock_explain.h"
#include "clock_record.h"
#include "clock_setup.h"
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "shipped_files.h"

static char rules_path[512], holidays_path[512];
static struct clock_setup *shipped;

static int setup_all(void **state)
{
    (void)state;
    char err[512];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0)
        return -1;
    source_path("conf/rules.conf", rules_path, sizeof rules_path);
    source_path("conf/holidays-cn.conf", holidays_path, sizeof holidays_path);
    struct config config = {.rules_file = rules_path, .holidays_file = holidays_path};
    shipped = clock_setup_load(&config, err, sizeof err);
    if (shipped == NULL)
        fprintf(stderr, "clock_setup_load: %s\n", err);
    return shipped ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    clock_setup_destroy(shipped);
    return 0;
}

static struct clock_record bail_record(void)
{
    struct clock_record record = {
        .unit = "500112-XJ01", .case_number = "A2024-0315", .subject = "P9",
        .cause = "ev-0315", .started_at_ms = at(2024, 3, 15, 10), .has_last_day = true,
        .last_day = day_of(2025, 3, 17), .base_deadline_ms = at(2025, 3, 18, 0),
        .fired = 0, .armed = true, .next_due_ms = at(2025, 3, 15, 0),
        .partition = "duewatch.events:3"};
    return record;
}

/* What --explain-clock prints for `input`, or NULL with the error in err. */
static char *explain(const char *rule, const char *input, char *err, size_t err_size)
{
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    assert_non_null(in);
    assert_non_null(out);
    int status = clock_explain(shipped, rule, in, out, err, err_size);
    fclose(in);
    fclose(out);
    if (status != 0) {
        assert_int_equal(size, 0); /* nothing written on failure */
        free(text);
        return NULL;
    }
    return text;
}

static void test_bail_clock_with_yellow_sent(void **state)
{
    (void)state;
    struct clock_record record = bail_record();
    char stored[CLOCK_RECORD_MAX + 2], expected[2048], err[300];
    assert_true(clock_record_encode(&record, stored, sizeof stored) > 0);
    strcat(stored, "\n"); /* as redis-cli prints it */
    char *text = explain("bail_expiry", stored, err, sizeof err);
    assert_non_null(text);
    snprintf(expected, sizeof expected,
             "{\"rule\":\"bail_expiry\",\"unit\":\"500112-XJ01\",\"case\":\"A2024-0315\","
             "\"subject\":\"P9\",\"cause\":\"ev-0315\",\"partition\":\"duewatch.events:3\","
             "\"started_at\":%lld,\"deadline\":%lld,\"last_day\":\"2025-03-17\","
             "\"paused_since\":null,\"paused_total_ms\":0,\"extensions\":0,"
             "\"extended_days\":0,\"provisional\":false,\"levels\":["
             "{\"level\":\"yellow\",\"due_at\":%lld,\"done\":true},"
             "{\"level\":\"orange\",\"due_at\":%lld,\"done\":false},"
             "{\"level\":\"red\",\"due_at\":%lld,\"done\":false}],"
             "\"red_repeat_ms\":86400000,\"fired\":\"yellow\","
             "\"next\":{\"level\":\"orange\",\"repeat\":0,\"due_at\":%lld}}\n",
             (long long)at(2024, 3, 15, 10), (long long)at(2025, 3, 18, 0),
             (long long)at(2025, 3, 3, 0), (long long)at(2025, 3, 15, 0),
             (long long)at(2025, 3, 18, 0), (long long)at(2025, 3, 15, 0));
    assert_string_equal(text, expected);
    free(text);
}

/* Paused for two days and red sent twice: the deadline and the levels move
 * by the pause; the next is the third red. */
static void test_paused_clock_past_its_deadline(void **state)
{
    (void)state;
    struct clock_record record = bail_record();
    record.paused_total_ms = 48 * HOUR_MS;
    record.fired = 2;
    record.seq = 2;
    record.next_due_ms = at(2025, 3, 22, 0);
    char stored[CLOCK_RECORD_MAX + 2], err[300];
    assert_true(clock_record_encode(&record, stored, sizeof stored) > 0);
    char *text = explain("bail_expiry", stored, err, sizeof err);
    assert_non_null(text);
    char deadline[64], next[128];
    snprintf(deadline, sizeof deadline, "\"deadline\":%lld,", (long long)at(2025, 3, 20, 0));
    snprintf(next, sizeof next, "\"fired\":\"red\",\"next\":{\"level\":\"red\",\"repeat\":2,"
             "\"due_at\":%lld}}\n", (long long)at(2025, 3, 22, 0));
    assert_non_null(strstr(text, deadline));
    assert_non_null(strstr(text, "\"paused_total_ms\":172800000,"));
    assert_non_null(strstr(text, "\"done\":true},{\"level\":\"orange\""));
    assert_non_null(strstr(text, next));
    free(text);
}

static void test_refusals_say_why(void **state)
{
    (void)state;
    struct clock_record record = bail_record();
    char stored[CLOCK_RECORD_MAX + 2], err[300];
    assert_true(clock_record_encode(&record, stored, sizeof stored) > 0);
    assert_null(explain("no_such_rule", stored, err, sizeof err));
    assert_string_equal(err, "rule 'no_such_rule' is not in the rules file");
    assert_null(explain("bail_expiry", "@4|too|few", err, sizeof err));
    assert_non_null(strstr(err, "the clock record does not decode: "));
    char long_input[CLOCK_RECORD_MAX + 40];
    memset(long_input, 'x', sizeof long_input - 1);
    long_input[sizeof long_input - 1] = '\0';
    assert_null(explain("bail_expiry", long_input, err, sizeof err));
    char expected[80];
    snprintf(expected, sizeof expected, "the record is longer than %d bytes", CLOCK_RECORD_MAX);
    assert_string_equal(err, expected);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bail_clock_with_yellow_sent),
        cmocka_unit_test(test_paused_clock_past_its_deadline),
        cmocka_unit_test(test_refusals_say_why),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
