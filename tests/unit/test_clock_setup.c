/* Unit tests for the provisional side of daemon/clock_setup.c with the
 * shipped rules (conf/rules.conf): which starts are marked provisional and
 * with what entry, and clock_setup_recompute() under the shipped calendar
 * (2027 provisional) and under a calendar in which 2027 is official and
 * differs from it (a schedule written for this test, not the State
 * Council's).
 *
 * Also the custody key of a rule (never moved off rest days), and rule
 * versions by effective date (`[rule since YYYY-MM-DD]`): which version a
 * clock follows, and every refusal.
 *
 * Files are found under $DUEWATCH_SOURCE_DIR, else the current directory (the
 * repository root when make runs the tests).  Expected instants come from
 * timegm(), not from calendar.c. */
#include "clock_engine.h"
#include "clock_setup.h"
#include "config.h"
#include "holidays.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shipped_files.h"

static char temp_directory[64];
static char official_path[128];
static char rules_path[512], shipped_holidays_path[512];
static struct clock_setup *shipped;  /* 2027 provisional */
static struct clock_setup *official; /* 2027 official, with 01-18..19 off */

static struct clock_setup *load(const char *holidays_path)
{
    struct config config = {.rules_file = rules_path, .holidays_file = (char *)holidays_path};
    char err[512];
    struct clock_setup *setup = clock_setup_load(&config, err, sizeof err);
    if (setup == NULL)
        fprintf(stderr, "clock_setup_load: %s\n", err);
    return setup;
}

static int setup_all(void **state)
{
    (void)state;
    char err[256];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0)
        return -1;
    source_path("conf/rules.conf", rules_path, sizeof rules_path);
    source_path("conf/holidays-cn.conf", shipped_holidays_path, sizeof shipped_holidays_path);
    snprintf(temp_directory, sizeof temp_directory, "/tmp/test_clock_setup.XXXXXX");
    if (mkdtemp(temp_directory) == NULL)
        return -1;
    snprintf(official_path, sizeof official_path, "%s/holidays.conf", temp_directory);
    FILE *file = fopen(official_path, "w");
    if (file == NULL)
        return -1;
    fputs("years 2026..2028\n"
          "provisional 2028..2028\n"
          "holiday 2027-01-01\n"
          "holiday 2027-01-18..2027-01-19\n"
          "workday 2027-01-16\n",
          file);
    fclose(file);
    shipped = load(shipped_holidays_path);
    official = load(official_path);
    return shipped && official ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    clock_setup_destroy(shipped);
    clock_setup_destroy(official);
    unlink(official_path);
    return rmdir(temp_directory);
}

#define TEXT(literal) ((struct text){literal, (uint32_t)(sizeof(literal) - 1)})

/* An event of `type` and `kind` with the qualifiers the shipped rules'
 * start filters ask for (scope admin, admin_type public_security, publish
 * required); the decoder ignores those its type does not take. */
static struct duewatch_event event_of(enum event_type type, const char *kind, int64_t ts_ms,
                                      int64_t until_ms)
{
    return (struct duewatch_event){
        .type = type, .ts_ms = ts_ms, .until_ms = until_ms, .id = TEXT("e1"),
        .unit = TEXT("500112-XJ01"), .case_number = TEXT("AJ1"), .ref = TEXT("R1"),
        .subject = TEXT("P1"), .kind = {kind, (uint32_t)strlen(kind)},
        .qualifiers = {[EVENT_ENUM_SCOPE - 1] = TEXT("admin"),
                       [EVENT_ENUM_ADMIN_TYPE - 1] = TEXT("public_security"),
                       [EVENT_ENUM_PUBLISH - 1] = TEXT("required")}};
}

static struct clock_op start_op(const struct clock_setup *setup, enum event_type type,
                                const char *kind, int64_t ts_ms, int64_t until_ms)
{
    struct duewatch_event event = event_of(type, kind, ts_ms, until_ms);
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[256];
    int count = clock_setup_ops_for_event(setup, &event, ops, err, sizeof err);
    if (count < 0)
        fail_msg("%s", err);
    for (int i = 0; i < count; i++)
        if (ops[i].kind == CLOCK_OP_START)
            return ops[i];
    fail_msg("no start");
    return ops[0];
}

static void test_which_clocks_are_provisional(void **state)
{
    (void)state;
    /* admin_case_limit moves its last day: 2027 is provisional. */
    assert_true(clock_setup_is_provisional(shipped, "admin_case_limit", 0, true,
                                           day_of(2027, 1, 19)));
    assert_false(clock_setup_is_provisional(shipped, "admin_case_limit", 0, true,
                                            day_of(2026, 12, 31)));
    assert_false(clock_setup_is_provisional(official, "admin_case_limit", 0, true,
                                            day_of(2027, 1, 19)));
    /* bail_expiry moves its last day too (not in custody: 刑事诉讼法 第一百零
     * 五条); criminal_detention_limit (custody) never asks the calendar; a
     * clock with no last day and an unknown rule are never provisional. */
    assert_true(clock_setup_is_provisional(shipped, "bail_expiry", 0, true, day_of(2027, 6, 1)));
    assert_false(clock_setup_is_provisional(shipped, "criminal_detention_limit", 0, true,
                                            day_of(2027, 6, 1)));
    assert_false(clock_setup_is_provisional(shipped, "admin_case_limit", 0, false, 0));
    assert_false(clock_setup_is_provisional(shipped, "no_such_rule", 0, true, day_of(2030, 1, 1)));
}

static void test_start_entries(void **state)
{
    (void)state;
    /* Accepted Sunday 2026-12-20: +30 days = Tuesday 2027-01-19. */
    struct clock_op op = start_op(shipped, EVENT_CASE_ACCEPTED, "admin", at(2026, 12, 20, 10), 0);
    assert_int_equal(op.last_day, day_of(2027, 1, 19));
    assert_string_equal(op.provisional_entry, "S");
    /* Under the official 2027 the same start ends Wednesday 01-20, final. */
    op = start_op(official, EVENT_CASE_ACCEPTED, "admin", at(2026, 12, 20, 10), 0);
    assert_int_equal(op.last_day, day_of(2027, 1, 20));
    assert_string_equal(op.provisional_entry, "");
    /* An `until` fixes the last day: the entry keeps it. */
    op = start_op(shipped, EVENT_CASE_ACCEPTED, "admin", at(2026, 12, 20, 10),
                  at(2027, 1, 16, 0));
    assert_int_equal(op.last_day, day_of(2027, 1, 15));
    char expected[16];
    snprintf(expected, sizeof expected, "D%d", day_of(2027, 1, 15));
    assert_string_equal(op.provisional_entry, expected);
    /* Ending inside the official years: not provisional. */
    op = start_op(shipped, EVENT_CASE_ACCEPTED, "admin", at(2026, 11, 20, 10), 0);
    assert_string_equal(op.provisional_entry, "");
    /* A working-day rule: 7 working days from Monday 2026-12-28 in the
     * provisional 2027 (01-01 off): 12-29, 12-30, 12-31, 01-04 .. 01-07. */
    op = start_op(shipped, EVENT_DECISION_ISSUED, "penalty", at(2026, 12, 28, 10), 0);
    assert_int_equal(op.last_day, day_of(2027, 1, 7));
    assert_string_equal(op.provisional_entry, "S");
}

static void recompute(const struct clock_setup *setup, const char *rule, const char *entry,
                      int64_t started_ms, struct clock_recompute *out)
{
    char err[256] = "";
    if (clock_setup_recompute(setup, rule, entry, started_ms, 0, 0, out, err, sizeof err) != 0)
        fail_msg("%s: %s", entry, err);
}

static void test_recompute(void **state)
{
    (void)state;
    struct clock_recompute result;
    int64_t started = at(2026, 12, 20, 10);
    /* From the start, under either calendar. */
    recompute(shipped, "admin_case_limit", "S", started, &result);
    assert_int_equal(result.last_day, day_of(2027, 1, 19));
    assert_int_equal(result.base_deadline_ms, at(2027, 1, 20, 0));
    assert_true(result.provisional);
    recompute(official, "admin_case_limit", "S", started, &result);
    assert_int_equal(result.last_day, day_of(2027, 1, 20));
    assert_int_equal(result.base_deadline_ms, at(2027, 1, 21, 0));
    assert_false(result.provisional);
    /* From an official last day and two extensions, each moved off rest
     * days as it was applied: 2026-12-31 + 18 = Monday 2027-01-18 (off in
     * the official 2027: -> 01-20), + 3 = Saturday 01-23 -> Monday 01-25. */
    char entry[64];
    snprintf(entry, sizeof entry, "D%d,18,3", day_of(2026, 12, 31));
    recompute(official, "admin_case_limit", entry, started, &result);
    assert_int_equal(result.last_day, day_of(2027, 1, 25));
    assert_false(result.provisional);
    /* The same under the provisional 2027: 01-18 is worked, + 3 = Thursday
     * 01-21. */
    recompute(shipped, "admin_case_limit", entry, started, &result);
    assert_int_equal(result.last_day, day_of(2027, 1, 21));
    assert_true(result.provisional);
    /* A working-day rule from its start: 7 working days from 2026-12-28 in
     * the official 2027 (01-01 off, Saturday 01-16 worked, 01-18/19 off). */
    recompute(official, "decision_publication", "S", at(2026, 12, 28, 10), &result);
    assert_int_equal(result.last_day, day_of(2027, 1, 7));
    recompute(official, "decision_publication", "S", at(2027, 1, 12, 10), &result);
    /* 01-13, 01-14, 01-15, 01-16 (worked Saturday), 01-20, 01-21, 01-22 */
    assert_int_equal(result.last_day, day_of(2027, 1, 22));
    /* An hour rule keeps what its record says. */
    char err[256] = "";
    assert_int_equal(clock_setup_recompute(shipped, "detention_unexecuted", "S", started, 123,
                                           456, &result, err, sizeof err),
                     0);
    assert_int_equal(result.last_day, 123);
    assert_int_equal(result.base_deadline_ms, 456);
    assert_false(result.provisional);
}

static void test_recompute_errors(void **state)
{
    (void)state;
    struct clock_recompute result = {1, 2, true};
    static const struct {
        const char *rule, *entry, *reason;
    } cases[] = {
        {"no_such_rule", "S", "rule 'no_such_rule' is not configured"},
        {"admin_case_limit", "", "malformed provisional entry ''"},
        {"admin_case_limit", "X1", "malformed provisional entry 'X1'"},
        {"admin_case_limit", "D", "malformed provisional entry 'D'"},
        {"admin_case_limit", "S,", "malformed provisional entry 'S,'"},
        {"admin_case_limit", "S,3x", "malformed provisional entry 'S,3x'"},
        {"admin_case_limit", "S,999999", "malformed provisional entry 'S,999999'"},
        {"admin_case_limit", "S;3", "malformed provisional entry 'S;3'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        assert_int_equal(clock_setup_recompute(shipped, cases[i].rule, cases[i].entry,
                                               at(2026, 12, 20, 10), 0, 0, &result, err,
                                               sizeof err),
                         -1);
        assert_string_equal(err, cases[i].reason);
    }
    /* Beyond the calendar: an error, never a guess; *out untouched. */
    char err[256] = "", entry[32];
    snprintf(entry, sizeof entry, "D%d,5", day_of(2035, 12, 30));
    assert_int_equal(clock_setup_recompute(shipped, "admin_case_limit", entry, 0, 0, 0, &result,
                                           err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "2036-01-04 are not in the holiday calendar"));
    assert_int_equal(result.last_day, 1);
    assert_int_equal(result.base_deadline_ms, 2);
}

static void test_coverage(void **state)
{
    (void)state;
    struct calendar_coverage coverage;
    clock_setup_coverage(shipped, at(2026, 11, 1, 0) + 1, &coverage);
    assert_int_equal(coverage.official_end_ms, at(2027, 1, 1, 0));
    assert_int_equal(coverage.end_ms, at(2036, 1, 1, 0));
    assert_false(coverage.official_ending); /* 61 days before, less 1 ms */
    clock_setup_coverage(shipped, at(2026, 11, 2, 0), &coverage);
    assert_true(coverage.official_ending); /* 60 days before */
}

/* Writes `text` as a rules file in the temporary directory and loads it;
 * returns the setup (NULL with the reason in err). */
static struct clock_setup *load_rules_text(const char *text, char *err, size_t err_size)
{
    char path[160];
    snprintf(path, sizeof path, "%s/rules.conf", temp_directory);
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    struct config config = {.rules_file = path, .holidays_file = shipped_holidays_path};
    struct clock_setup *setup = clock_setup_load(&config, err, err_size);
    unlink(path);
    return setup;
}

/* A rule's key must be the partition key the event contract names for each
 * of its event types (event_partition_key_name), or its events could land
 * on different partitions: a measure clock keyed by case is refused. */
static void test_rule_key_must_be_the_partition_key(void **state)
{
    (void)state;
    char err[512];
    assert_null(load_rules_text("[bail_by_case]\n"
                                "label = x\naction = y\nbasis = b\n"
                                "start = measure.started kind=bail\nstop = measure.ended\n"
                                "key = case\nlength = 12 months\nyellow = none\norange = 3 days\n"
                                "red_repeat = 1 day\n",
                                err, sizeof err));
    assert_non_null(strstr(err, "rules.conf:1: rule 'bail_by_case': key = case, but "
                                "measure.started events are keyed by ref on Kafka"));
}

/* Loads a one-rule file whose rule has the given custody and
 * move_to_working_day lines; NULL with the error in err when refused. */
static struct clock_setup *load_custody_rule(const char *lines, char *err, size_t err_size)
{
    char text[1024];
    snprintf(text, sizeof text,
             "# a custody term\n"
             "[held]\n"
             "label = x\naction = y\nbasis = b\n"
             "start = measure.started kind=criminal_detention\nstop = measure.ended\n"
             "key = ref\nlength = 3 days\n%s"
             "yellow = none\norange = 1 day\nred_repeat = 1 day\n",
             lines);
    return load_rules_text(text, err, err_size);
}

/* custody = yes: a term in custody is never moved off rest days (刑事诉讼法
 * 第一百零五条 "在押期间...不得因节假日而延长"), so custody = yes with
 * move_to_working_day = yes is refused at the rule's line; custody takes
 * only yes or no; without the key a rule is not in custody. */
static void test_custody_is_never_moved(void **state)
{
    (void)state;
    char err[512] = "";
    assert_null(load_custody_rule("custody = yes\nmove_to_working_day = yes\n", err,
                                  sizeof err));
    assert_non_null(strstr(err, "rules.conf:2: rule 'held': custody = yes with "
                                "move_to_working_day = yes: a term in custody is never moved "
                                "off rest days"));
    assert_null(load_custody_rule("custody = maybe\n", err, sizeof err));
    assert_non_null(strstr(err, "rules.conf:10: key 'custody': expected 'yes' or 'no'"));
    assert_null(load_custody_rule("custody = yes\ncustody = no\n", err, sizeof err));
    assert_non_null(strstr(err, "rules.conf:11: key 'custody' given twice in rule 'held'"));
    struct clock_setup *setup;
    static const char *const accepted[] = {"custody = yes\nmove_to_working_day = no\n",
                                           "custody = yes\n", "custody = no\n"
                                           "move_to_working_day = yes\n", ""};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        setup = load_custody_rule(accepted[i], err, sizeof err);
        if (setup == NULL)
            fail_msg("%s: %s", accepted[i], err);
        clock_setup_destroy(setup);
    }
    /* The shipped criminal_detention_limit is a custody rule: its last day in
     * Spring Festival 2025 (01-27 + 3 days = 01-30) is not moved. */
    struct clock_op op = start_op(shipped, EVENT_MEASURE_STARTED, "criminal_detention",
                                  at(2025, 1, 27, 15), 0);
    assert_int_equal(op.last_day, day_of(2025, 1, 30));
    /* The shipped bail_expiry is not: 2024-03-15 + 12 months = Saturday
     * 2025-03-15, moved to Monday 03-17. */
    op = start_op(shipped, EVENT_MEASURE_STARTED, "bail", at(2024, 3, 15, 10), 0);
    assert_int_equal(op.last_day, day_of(2025, 3, 17));
}

/* Loads a rules file of `text`; returns the error (NULL: it loaded). */
static const char *load_error(const char *text)
{
    static char err[512];
    struct clock_setup *setup = load_rules_text(text, err, sizeof err);
    clock_setup_destroy(setup);
    return setup ? NULL : strstr(err, "rules.conf:");
}

#define DETENTION_RULE                                                                         \
    "[detention]\nlabel = x\naction = y\nbasis = b\nstart = measure.started kind=criminal_detention\n"   \
    "stop = measure.arrest_requested, measure.ended\nkey = ref\nlength = 3 days\n"             \
    "yellow = none\norange = 1 day\nred_repeat = 1 day\n"

/* The shipped caps (conf/rules.conf) and every refusal of a cap key, with
 * the file and line. */
static void test_extension_caps(void **state)
{
    (void)state;
    const struct extension_caps *caps = clock_setup_rule_caps(shipped, "criminal_detention_limit", 0);
    assert_non_null(caps);
    assert_int_equal(caps->max_extensions, EXTENSION_UNCAPPED);
    assert_int_equal(caps->max_extension_days, EXTENSION_UNCAPPED);
    assert_int_equal(caps->max_total_days, 7);
    assert_int_equal(caps->ground_max_total_days, 30);
    assert_int_equal(caps->grounds, EXTENSION_GROUND_BIT(GROUND_ROVING) |
                                         EXTENSION_GROUND_BIT(GROUND_REPEATED) |
                                         EXTENSION_GROUND_BIT(GROUND_GANG));
    caps = clock_setup_rule_caps(shipped, "criminal_filing_review", 0);
    assert_non_null(caps);
    assert_int_equal(caps->max_total_days, 7);
    assert_int_equal(caps->ground_max_total_days, 30);
    assert_int_equal(caps->grounds, EXTENSION_GROUND_BIT(GROUND_COMPLEX));
    assert_true(clock_setup_rule_stops_on(shipped, "criminal_filing_review", EVENT_CASE_FILED));
    assert_true(clock_setup_rule_stops_on(shipped, "criminal_filing_review",
                                          EVENT_CASE_FILING_REFUSED));
    assert_false(clock_setup_rule_stops_on(shipped, "admin_case_limit",
                                           EVENT_CASE_FILING_REFUSED));
    caps = clock_setup_rule_caps(shipped, "bail_expiry", 0);
    assert_non_null(caps);
    assert_int_equal(caps->max_extensions, 0);
    caps = clock_setup_rule_caps(shipped, "property_hold_limit", 0);
    assert_non_null(caps);
    assert_int_equal(caps->max_extensions, 1);
    assert_int_equal(caps->max_extension_days, 30);
    assert_null(clock_setup_rule_caps(shipped, "detention_unexecuted", 0));
    assert_null(clock_setup_rule_caps(shipped, "no_such_rule", 0));
    assert_true(clock_setup_rule_stops_on(shipped, "criminal_detention_limit",
                                          EVENT_MEASURE_ARREST_REQUESTED));
    assert_false(clock_setup_rule_stops_on(shipped, "bail_expiry", EVENT_MEASURE_ARREST_REQUESTED));

    assert_null(load_error(DETENTION_RULE "extend = measure.extended\nmax_total_days = 7\n"
                                          "ground_max_total_days = 30\ngrounds = gang\n"
                                          "extension_limit = z\n"));
    assert_string_equal(load_error(DETENTION_RULE "extend = measure.extended\n"
                                                  "max_total_days = 7\n"
                                                  "ground_max_total_days = 30\n"
                                                  "extension_limit = z\n"),
                        "rules.conf:1: rule 'detention': ground_max_total_days and grounds (the "
                        "grounds that unlock it) go together");
    assert_string_equal(load_error(DETENTION_RULE "extend = measure.extended\n"
                                                  "max_total_days = 7\ngrounds = gang\n"
                                                  "extension_limit = z\n"),
                        "rules.conf:1: rule 'detention': ground_max_total_days and grounds (the "
                        "grounds that unlock it) go together");
    assert_string_equal(load_error(DETENTION_RULE "grounds = gang, gangs\n"),
                        "rules.conf:12: key 'grounds': 'gangs' is not a ground of the event "
                        "contract (README \"Event contract\": ground)");
    assert_string_equal(load_error(DETENTION_RULE "grounds = ,\n"),
                        "rules.conf:12: key 'grounds': lists no ground");
    assert_string_equal(load_error(DETENTION_RULE "max_extensions = -1\n"),
                        "rules.conf:12: key 'max_extensions': expected 'none' or a number "
                        "from 0 to 100000");
    assert_string_equal(load_error(DETENTION_RULE "max_total_days = 7x\n"),
                        "rules.conf:12: key 'max_total_days': expected 'none' or a number "
                        "from 0 to 100000");
    assert_string_equal(load_error(DETENTION_RULE "max_total_days = 7\nextension_limit = z\n"),
                        "rules.conf:1: rule 'detention': extension caps without extend events");
    assert_string_equal(load_error(DETENTION_RULE "extend = measure.extended\n"
                                                  "max_total_days = 7\n"),
                        "rules.conf:1: rule 'detention': extension caps need extension_limit "
                        "(what the law allows, for the alert text)");
    assert_string_equal(load_error(DETENTION_RULE "extend = measure.extended\n"
                                                  "extension_limit = z\n"),
                        "rules.conf:1: rule 'detention': extension_limit without a cap");
    assert_string_equal(load_error(DETENTION_RULE "extend = measure.extended\n"
                                                  "max_total_days = 2\nextension_limit = z\n"),
                        "rules.conf:1: rule 'detention': max_total_days is below the length");
    assert_string_equal(load_error(DETENTION_RULE "extend = measure.extended\n"
                                                  "ground_max_total_days = 30\n"
                                                  "extension_limit = z\n"),
                        "rules.conf:1: rule 'detention': ground_max_total_days needs "
                        "max_total_days, and is not below it");
    /* Every rule names its legal basis: one without is refused at its line. */
    assert_string_equal(load_error("# no basis\n[detention]\nlabel = x\naction = y\n"
                                   "start = measure.started kind=criminal_detention\n"
                                   "stop = measure.ended\nkey = ref\nlength = 3 days\n"
                                   "yellow = none\norange = 1 day\nred_repeat = 1 day\n"),
                        "rules.conf:2: rule 'detention' lacks key 'basis'");
    /* An `until` beyond the term of a rule the law bounds (it has caps) is
     * marked; an earlier one, and one of a rule without caps, are not. */
    struct clock_op until_op = start_op(shipped, EVENT_MEASURE_STARTED, "bail",
                                        at(2025, 3, 15, 10), at(2026, 4, 1, 0));
    assert_true(until_op.until_beyond_law);
    until_op = start_op(shipped, EVENT_MEASURE_STARTED, "bail", at(2025, 3, 15, 10),
                        at(2026, 3, 17, 0)); /* the law's own deadline: not beyond */
    assert_false(until_op.until_beyond_law);
    until_op = start_op(shipped, EVENT_MEASURE_STARTED, "bail", at(2025, 3, 15, 10), 0);
    assert_false(until_op.until_beyond_law);
    until_op = start_op(shipped, EVENT_DETENTION_DECIDED, "", at(2025, 5, 1, 10),
                        at(2025, 5, 3, 10));
    assert_false(until_op.until_beyond_law);
    /* The shipped rules' basis and overdue_text reach the alert wording. */
    struct alert_wording wording;
    clock_setup_wording(shipped, "bail_expiry", 0, &wording);
    assert_non_null(strstr(wording.basis, "第七十九条：“取保候审最长不得超过十二个月”"));
    assert_non_null(strstr(wording.overdue_text, "应当及时解除"));
    clock_setup_wording(shipped, "admin_case_limit", 0, &wording);
    assert_non_null(strstr(wording.basis, "第九十九条"));
    assert_string_equal(wording.overdue_text, "");
    assert_string_equal(load_error("[bail]\nlabel = x\naction = y\nbasis = b\n"
                                   "start = measure.started kind=bail\nstop = measure.ended\n"
                                   "extend = measure.extended\nkey = ref\nlength = 12 months\n"
                                   "yellow = none\norange = 3 days\nred_repeat = 1 day\n"
                                   "max_total_days = 400\nextension_limit = z\n"),
                        "rules.conf:1: rule 'bail': max_total_days counts calendar days: the "
                        "length must be in days");
}

/* The rules whose clocks the event starts, comma-separated, in rule order. */
static void started_rules(const struct duewatch_event *event, char *out, size_t out_size)
{
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[256];
    int count = clock_setup_ops_for_event(shipped, event, ops, err, sizeof err);
    if (count < 0)
        fail_msg("%s", err);
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < count; i++)
        if (ops[i].kind == CLOCK_OP_START)
            used += (size_t)snprintf(out + used, out_size - used, "%s%s", used ? "," : "",
                                     ops[i].rule);
}

/* The law's scope in the shipped start filters: a 30-day seizure clock for
 * administrative 查封/扣押 only (行政强制法 第二十五条), 先行登记保存 for
 * administrative cases only, 治安 cases 30 days and other administrative
 * cases 90 (行政处罚法 第六十条), publication 7 working days for 许可/处罚,
 * 20 for other decisions, none for an exempt one. */
static void test_start_filters_follow_the_law_scope(void **state)
{
    (void)state;
    static const struct {
        enum event_type type;
        const char *kind, *qualifier, *expected;
        enum event_enum_key key;
    } cases[] = {
        {EVENT_PROPERTY_SEIZED, "seize", "criminal", "", EVENT_ENUM_SCOPE},
        {EVENT_PROPERTY_SEIZED, "seal", "criminal", "", EVENT_ENUM_SCOPE},
        {EVENT_PROPERTY_SEIZED, "seize", "admin", "property_hold_limit", EVENT_ENUM_SCOPE},
        {EVENT_PROPERTY_SEIZED, "seal", "admin", "property_hold_limit", EVENT_ENUM_SCOPE},
        {EVENT_PROPERTY_SEIZED, "preserve", "criminal", "", EVENT_ENUM_SCOPE},
        {EVENT_PROPERTY_SEIZED, "preserve", "admin", "evidence_preservation", EVENT_ENUM_SCOPE},
        {EVENT_PROPERTY_SEIZED, "seize", "", "", EVENT_ENUM_SCOPE},
        {EVENT_CASE_ACCEPTED, "admin", "public_security", "admin_case_limit",
         EVENT_ENUM_ADMIN_TYPE},
        {EVENT_CASE_ACCEPTED, "admin", "other", "admin_penalty_case_limit",
         EVENT_ENUM_ADMIN_TYPE},
        /* a criminal matter: the filing review (应立未立), no administrative limit */
        {EVENT_CASE_ACCEPTED, "criminal", "", "criminal_filing_review", EVENT_ENUM_ADMIN_TYPE},
        {EVENT_DECISION_ISSUED, "penalty", "required", "decision_publication",
         EVENT_ENUM_PUBLISH},
        {EVENT_DECISION_ISSUED, "license", "required", "decision_publication",
         EVENT_ENUM_PUBLISH},
        {EVENT_DECISION_ISSUED, "other", "required", "decision_publication_other",
         EVENT_ENUM_PUBLISH},
        {EVENT_DECISION_ISSUED, "penalty", "exempt", "", EVENT_ENUM_PUBLISH},
        {EVENT_DECISION_ISSUED, "other", "exempt", "", EVENT_ENUM_PUBLISH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct duewatch_event event = event_of(cases[i].type, cases[i].kind,
                                               at(2025, 3, 3, 10), 0);
        event.qualifiers[cases[i].key - 1] =
            (struct text){cases[i].qualifier, (uint32_t)strlen(cases[i].qualifier)};
        char found[256];
        started_rules(&event, found, sizeof found);
        if (strcmp(found, cases[i].expected) != 0)
            fail_msg("%s kind=%s %s=%s: started [%s], expected [%s]",
                     event_type_name(cases[i].type), cases[i].kind,
                     event_enum_key_name(cases[i].key), cases[i].qualifier, found,
                     cases[i].expected);
    }
}

/* Loads a one-rule file whose start line is `start`; returns the setup
 * (NULL with the reason in err). */
static struct clock_setup *load_start_line(const char *start, char *err, size_t err_size)
{
    char text[1024];
    snprintf(text, sizeof text,
             "[seizure]\nlabel = x\naction = y\nbasis = b\nstart = %s\nstop = property.released\n"
             "key = ref\nlength = 30 days\nyellow = none\norange = 3 days\nred_repeat = 1 day\n",
             start);
    return load_rules_text(text, err, err_size);
}

/* The start line's filters are checked against the event contract at load:
 * a value the contract does not list, a key the type does not take, a key
 * twice, a key without values; values may continue after ", ". */
static void test_start_filter_syntax(void **state)
{
    (void)state;
    static const struct {
        const char *start, *error; /* error NULL: loads */
    } cases[] = {
        {"property.seized kind=seize, seal scope=admin", NULL},
        {"property.seized scope=admin kind=seize", NULL},
        {"property.seized kind=seize scope=adm",
         "rules.conf:5: key 'start': scope 'adm' is not one the event contract lists for "
         "property.seized"},
        {"property.seized kind=seize publish=required",
         "rules.conf:5: key 'start': property.seized events have no enumerated key "
         "'publish' to filter on"},
        {"property.seized kind=seize kind=seal",
         "rules.conf:5: key 'start': 'kind=' given twice"},
        {"property.seized kind= scope=admin", "rules.conf:5: key 'start': 'kind=' lists no value"},
        {"property.seized scope=", "rules.conf:5: key 'start': 'scope=' lists no value"},
        {"property.seized admin", "rules.conf:5: key 'start': expected 'key=value,...' after "
                                  "the type, not 'admin'"},
        {"property.seized kind=bail", "rules.conf:5: key 'start': kind 'bail' is not one the "
                                      "event contract lists for property.seized"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        struct clock_setup *setup = load_start_line(cases[i].start, err, sizeof err);
        if (cases[i].error == NULL && setup == NULL)
            fail_msg("'%s' refused: %s", cases[i].start, err);
        if (cases[i].error != NULL && (setup != NULL || strstr(err, cases[i].error) == NULL))
            fail_msg("'%s': expected '%s', got '%s'", cases[i].start, cases[i].error,
                     setup ? "(loaded)" : err);
        if (i == 0) { /* the continued list holds both kinds, scope admin only */
            struct duewatch_event event = event_of(EVENT_PROPERTY_SEIZED, "seal",
                                                   at(2025, 3, 3, 10), 0);
            struct clock_op ops[CLOCK_OPS_MAX];
            char op_err[256];
            assert_int_equal(clock_setup_ops_for_event(setup, &event, ops, op_err,
                                                       sizeof op_err), 1);
            event.qualifiers[EVENT_ENUM_SCOPE - 1] = TEXT("criminal");
            assert_int_equal(clock_setup_ops_for_event(setup, &event, ops, op_err,
                                                       sizeof op_err), 0);
        }
        clock_setup_destroy(setup);
    }
}

/* A rule with a version from 2026-01-01 that shortens the term, adds a
 * second extension and has its own basis (test figures, not the law). */
#define VERSIONED_RULES                                                                        \
    DETENTION_RULE "extend = measure.extended\nmax_extensions = 1\nextension_limit = once\n"   \
                   "\n[detention since 2026-01-01]\nbasis = b2026\nlength = 2 days\n"           \
                   "max_extensions = 2\nextension_limit = twice\n"

static struct clock_setup *load_text(const char *text)
{
    char err[512];
    struct clock_setup *setup = load_rules_text(text, err, sizeof err);
    if (setup == NULL)
        fail_msg("%s", err);
    return setup;
}

/* A clock follows the version in force on its start event's local date
 * (Asia/Shanghai): started 2025-12-31 23:30 (15:30 UTC) the rule's first
 * section, started 2026-01-01 00:30 (2025-12-31 16:30 UTC) the version;
 * spec, caps, wording and recompute answer for the clock's start whenever
 * they are asked; a version is no rule of its own. */
static void test_rule_versions(void **state)
{
    (void)state;
    struct clock_setup *setup = load_text(VERSIONED_RULES);
    int64_t before = at(2025, 12, 31, 23) + HOUR_MS / 2, after = at(2026, 1, 1, 0) + HOUR_MS / 2;
    assert_int_equal(clock_setup_rule_count(setup), 1);
    struct clock_op op = start_op(setup, EVENT_MEASURE_STARTED, "criminal_detention", before, 0);
    assert_int_equal(op.last_day, day_of(2026, 1, 3)); /* 3 days */
    op = start_op(setup, EVENT_MEASURE_STARTED, "criminal_detention", after, 0);
    assert_int_equal(op.last_day, day_of(2026, 1, 3)); /* 2 days */
    /* a document's until 3 days and 2 hours after a 10:00 start (noon of
     * the third day after) is beyond the version's 2 days, not the 3 days of
     * the rule's first section (started 2025-12-28, its deadline 2026-01-01
     * 00:00) */
    int64_t late_start = at(2026, 1, 5, 10), early_start = at(2025, 12, 28, 10);
    assert_true(start_op(setup, EVENT_MEASURE_STARTED, "criminal_detention", late_start,
                         late_start + 74 * HOUR_MS)
                    .until_beyond_law);
    assert_false(start_op(setup, EVENT_MEASURE_STARTED, "criminal_detention", early_start,
                          early_start + 74 * HOUR_MS)
                     .until_beyond_law);
    assert_int_equal(clock_setup_rule_spec(setup, "detention", before)->length.amount, 3);
    assert_int_equal(clock_setup_rule_spec(setup, "detention", after)->length.amount, 2);
    /* an unchanged key carries over: orange 1 day in both */
    assert_int_equal(clock_setup_rule_spec(setup, "detention", after)->orange_before.amount, 1);
    assert_int_equal(clock_setup_rule_caps(setup, "detention", before)->max_extensions, 1);
    assert_int_equal(clock_setup_rule_caps(setup, "detention", after)->max_extensions, 2);
    struct alert_wording wording;
    clock_setup_wording(setup, "detention", before, &wording);
    assert_string_equal(wording.basis, "b");
    assert_string_equal(wording.extension_limit, "once");
    assert_string_equal(wording.label, "x");
    clock_setup_wording(setup, "detention", after, &wording);
    assert_string_equal(wording.basis, "b2026");
    assert_string_equal(wording.extension_limit, "twice");
    assert_string_equal(wording.label, "x");
    /* a recompute (after a reload) of a clock started before the date keeps
     * its version's length even when recomputed after it */
    struct clock_recompute result;
    char err[256];
    assert_int_equal(clock_setup_recompute(setup, "detention", "S,1", before, 0, 0, &result, err,
                                           sizeof err), 0);
    assert_int_equal(result.last_day, day_of(2026, 1, 4));
    assert_int_equal(clock_setup_recompute(setup, "detention", "S,1", after, 0, 0, &result, err,
                                           sizeof err), 0);
    assert_int_equal(result.last_day, day_of(2026, 1, 4));
    assert_int_equal(clock_setup_recompute(setup, "detention", "S", at(2026, 3, 1, 9), 0, 0,
                                           &result, err, sizeof err), 0);
    assert_int_equal(result.last_day, day_of(2026, 3, 3));
    /* the versions are part of what running clocks compute */
    struct clock_setup *unversioned =
        load_text(DETENTION_RULE "extend = measure.extended\nmax_extensions = 1\n"
                                 "extension_limit = once\n");
    assert_false(clock_setup_same_clocks(setup, unversioned));
    clock_setup_destroy(unversioned);
    assert_false(clock_setup_rule_may_use_calendar(setup, "detention"));
    clock_setup_destroy(setup);
    /* a version that moves last days off rest days: only its clocks ask the
     * calendar (provisional in 2027), but an extension (whose clock's start
     * is not known yet) may */
    setup = load_text(VERSIONED_RULES "move_to_working_day = yes\n");
    assert_true(clock_setup_rule_may_use_calendar(setup, "detention"));
    assert_false(clock_setup_is_provisional(setup, "detention", before, true, day_of(2027, 3, 1)));
    assert_true(clock_setup_is_provisional(setup, "detention", after, true, day_of(2027, 3, 1)));
    assert_false(clock_setup_rule_may_use_calendar(setup, "no_such_rule"));
    clock_setup_destroy(setup);

    /* The shipped admin_case_limit: the 2025 revision's version from
     * 2026-01-01 keeps the 2012 figures (its text was not found: README
     * "Rule versions") and says so in its basis. */
    int64_t old_case = at(2025, 12, 31, 10), new_case = at(2026, 1, 5, 10);
    clock_setup_wording(shipped, "admin_case_limit", old_case, &wording);
    assert_non_null(strstr(wording.basis, "（2012年修正）第九十九条"));
    clock_setup_wording(shipped, "admin_case_limit", new_case, &wording);
    assert_non_null(strstr(wording.basis, "2025年修订，2026年1月1日起施行"));
    assert_non_null(strstr(wording.basis, "原文未查到"));
    for (int i = 0; i < 2; i++) {
        int64_t started = i == 0 ? old_case : new_case;
        assert_int_equal(clock_setup_rule_spec(shipped, "admin_case_limit", started)->length.amount,
                         30);
        assert_int_equal(clock_setup_rule_caps(shipped, "admin_case_limit", started)->max_extensions,
                         1);
        assert_int_equal(
            clock_setup_rule_caps(shipped, "admin_case_limit", started)->max_extension_days, 30);
    }
}

/* Every refusal of a version section, with the file and line. */
static void test_rule_version_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text, *error;
    } cases[] = {
        {"[ghost since 2026-01-01]\nbasis = b\n",
         "rules.conf:1: a version of rule 'ghost', which is not defined above (a version "
         "follows its rule)"},
        {"[detention since 2026-01-01]\nbasis = b\n\n" DETENTION_RULE,
         "rules.conf:1: a version of rule 'detention', which is not defined above (a version "
         "follows its rule)"},
        {DETENTION_RULE "[detention since 2026-02-30]\nbasis = b\n",
         "rules.conf:12: expected '[rule_name since YYYY-MM-DD]', a real date, not "
         "'2026-02-30'"},
        {DETENTION_RULE "[detention since 2026-1-1]\nbasis = b\n",
         "rules.conf:12: expected '[rule_name since YYYY-MM-DD]', a real date, not "
         "'2026-1-1'"},
        {DETENTION_RULE "[detention since]\nbasis = b\n",
         "rules.conf:12: expected '[rule_name since YYYY-MM-DD]', a real date, not ''"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\n"
                        "[detention since 2026-01-01]\nbasis = c\n",
         "rules.conf:14: version 2026-01-01 of rule 'detention' given twice"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\n"
                        "[detention since 2025-06-01]\nbasis = c\n",
         "rules.conf:14: version 2025-06-01 of rule 'detention' is not after its version "
         "2026-01-01 (versions in date order)"},
        {DETENTION_RULE "[detention since 2026-01-01]\nlength = 2 days\n",
         "rules.conf:12: version 2026-01-01 of rule 'detention' lacks key 'basis' (every "
         "version names its own legal basis)"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\nstop = measure.ended\n",
         "rules.conf:14: key 'stop' cannot change in a version of rule 'detention': a rule's "
         "events and key are the same in every version"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\nkey = ref\n",
         "rules.conf:14: key 'key' cannot change in a version of rule 'detention'"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\nlength = 2 days\n"
                        "length = 4 days\n",
         "rules.conf:15: key 'length' given twice in rule 'detention'"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\nmax_total_days = 7\n"
                        "extension_limit = z\n",
         "rules.conf:12: rule 'detention': extension caps without extend events"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\nmove_to_working_day = yes\n"
                        "custody = yes\n",
         "rules.conf:12: rule 'detention': custody = yes with move_to_working_day = yes"},
        {DETENTION_RULE "[detention since 2026-01-01]\nbasis = b\nwhatever = 1\n",
         "rules.conf:14: unknown key 'whatever' in rule 'detention'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *error = load_error(cases[i].text);
        if (error == NULL || strncmp(error, cases[i].error, strlen(cases[i].error)) != 0)
            fail_msg("case %zu: expected '%s', got '%s'", i, cases[i].error,
                     error ? error : "(loaded)");
    }
    /* accepted: a version overriding keys its rule gave, two versions in
     * order, a version of a rule that is not the section just above */
    assert_null(load_error(DETENTION_RULE "[detention since 2026-01-01]\nbasis = c\n"
                                          "label = z\nlength = 2 days\nyellow = 1 day\n"
                                          "[detention since 2027-01-01]\nbasis = d\n"));
    assert_null(load_error(DETENTION_RULE "[held]\nlabel = x\naction = y\nbasis = b\n"
                                          "start = measure.started kind=bail\n"
                                          "stop = measure.ended\nkey = ref\n"
                                          "length = 12 months\nyellow = none\n"
                                          "orange = 3 days\nred_repeat = 1 day\n"
                                          "[detention since 2026-01-01]\nbasis = c\n"));
}

/* The rules are listed once each, whatever their versions (metrics and
 * --check-config count them): the shipped file has 12 rules, admin_case_limit
 * with a version from 2026-01-01 among them, each named once. */
static void test_rules_listed_once_whatever_their_versions(void **state)
{
    (void)state;
    assert_int_equal(clock_setup_rule_count(shipped), 12);
    for (size_t i = 0; i < 12; i++)
        for (size_t j = i + 1; j < 12; j++)
            assert_string_not_equal(clock_setup_rule_name(shipped, i),
                                    clock_setup_rule_name(shipped, j));
    assert_string_equal(clock_setup_rule_name(shipped, 4), "admin_case_limit");
    assert_null(clock_setup_rule_name(shipped, 12));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_which_clocks_are_provisional),
        cmocka_unit_test(test_start_entries),
        cmocka_unit_test(test_recompute),
        cmocka_unit_test(test_recompute_errors),
        cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_rule_key_must_be_the_partition_key),
        cmocka_unit_test(test_custody_is_never_moved),
        cmocka_unit_test(test_extension_caps),
        cmocka_unit_test(test_rules_listed_once_whatever_their_versions),
        cmocka_unit_test(test_start_filters_follow_the_law_scope),
        cmocka_unit_test(test_start_filter_syntax),
        cmocka_unit_test(test_rule_versions),
        cmocka_unit_test(test_rule_version_refusals),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
