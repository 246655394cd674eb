/* libFuzzer target: the rules parser.  The input is the rules file (a memfd
 * opened as /proc/self/fd/N); clock_setup_load() reads it together with the
 * shipped holiday calendar (conf/holidays-cn.conf).  A setup that loads is
 * then used as the daemon uses it: every event type of the contract, with
 * each of its kinds and with and without `until`, at a few instants inside
 * and at the edge of the calendar's years, goes through
 * clock_setup_ops_for_event() (deadline arithmetic under the fuzzed rules),
 * and each rule's wording is looked up.
 *
 * Oracles besides the sanitizers:
 *   - an error is one NUL-terminated line;
 *   - every rule has its deadline (clock_setup_rule_spec: a length of at
 *     least 1; a name not configured has none), and a setup computes its
 *     clocks the same as itself (clock_setup_same_clocks), as a second load
 *     of the same file does, and differently from the shipped rules when it
 *     has another number of rules;
 *   - every op names a configured rule, has a non-empty key of the event,
 *     and a start op's deadline is after its start unless `until` set it;
 *   - clock_setup_rule_stops_on agrees with the ops: an event type stops a
 *     rule exactly when the rule gets a stop op for it;
 *   - a start op has a provisional entry exactly when its rule asks the
 *     calendar and its last day is after the official years ("D<day>" with
 *     `until`, else "S"). */
#include "clock_setup.h"
#include "config.h"
#include "deadline.h"
#include "fuzz_common.h"

#include <stdbool.h>
#include <stdint.h>

static struct fuzz_file rules_file;
static struct config config;
static struct clock_setup *shipped;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_daemon_init();
    fuzz_file_init(&rules_file, "fuzz_rules");
    config.rules_file = rules_file.path;
    config.holidays_file = (char *)FUZZ_REPO_FILE("conf/holidays-cn.conf");
    struct config shipped_config = config;
    shipped_config.rules_file = (char *)FUZZ_REPO_FILE("conf/rules.conf");
    char err[512];
    shipped = clock_setup_load(&shipped_config, err, sizeof err);
    if (shipped == NULL) {
        fprintf(stderr, "fuzz_rules: %s\n", err);
        abort();
    }
    return 0;
}

#define TEXT(literal) ((struct text){literal, (uint32_t)(sizeof(literal) - 1)})

/* The kinds of the contract (README "Event contract"); "" = no kind. */
static const char *const all_kinds[] = {"",      "criminal", "admin", "other",
                                        "bail",  "rs",       "rs_designated",
                                        "criminal_detention", "seize", "seal", "preserve",
                                        "license", "penalty"};
/* Qualifier values (scope, admin_type, publish): none, the values the shipped
 * rules start on, the others; kind k gets set k % 3. */
static const char *const qualifier_sets[3][EVENT_QUALIFIER_COUNT] = {
    {"", "", ""}, {"admin", "public_security", "required"}, {"criminal", "other", "exempt"}};

/* Every rule has its deadline; the setup computes as itself and as a
 * second load of the same file. */
static void check_rule_specs(const struct clock_setup *setup)
{
    size_t rules = clock_setup_rule_count(setup);
    for (size_t i = 0; i < rules; i++) {
        const char *name = clock_setup_rule_name(setup, i);
        const struct deadline_spec *spec = clock_setup_rule_spec(setup, name, 0);
        FUZZ_CHECK(spec != NULL, "rule %s has no deadline", name);
        FUZZ_CHECK(spec->length.amount >= 1, "rule %s: length %d", name,
                   (int)spec->length.amount);
        FUZZ_CHECK(spec->red_repeat_ms >= 0, "rule %s: red repeat %lld", name,
                   (long long)spec->red_repeat_ms);
    }
    /* rule names are [a-z0-9_]: this one is never configured */
    FUZZ_CHECK(clock_setup_rule_spec(setup, "no such rule", 0) == NULL, "a spec for no rule");
    FUZZ_CHECK(!clock_setup_rule_stops_on(setup, "no such rule", 0), "no rule stops");
    FUZZ_CHECK(clock_setup_same_clocks(setup, setup), "a setup differs from itself");
    if (rules != clock_setup_rule_count(shipped))
        FUZZ_CHECK(!clock_setup_same_clocks(setup, shipped) &&
                       !clock_setup_same_clocks(shipped, setup),
                   "%zu rules compute as the %zu shipped ones", rules,
                   clock_setup_rule_count(shipped));
    char err[1024];
    struct clock_setup *again = clock_setup_load(&config, err, sizeof err);
    FUZZ_CHECK(again != NULL, "the same file fails a second load: %s", err);
    FUZZ_CHECK(clock_setup_same_clocks(setup, again) && clock_setup_same_clocks(again, setup),
               "two loads of one file compute differently");
    clock_setup_destroy(again);
}

static bool is_rule(const struct clock_setup *setup, const char *name)
{
    for (size_t i = 0; i < clock_setup_rule_count(setup); i++)
        if (clock_setup_rule_name(setup, i) == name)
            return true;
    return false;
}

static void check_provisional_entry(const struct clock_setup *setup,
                                    const struct duewatch_event *event, const struct clock_op *op)
{
    bool provisional =
        clock_setup_is_provisional(setup, op->rule, event->ts_ms, op->has_last_day, op->last_day);
    char expected[16] = "";
    if (provisional && event->until_ms != 0)
        snprintf(expected, sizeof expected, "D%d", (int)op->last_day);
    else if (provisional)
        snprintf(expected, sizeof expected, "S");
    FUZZ_CHECK(strcmp(op->provisional_entry, expected) == 0,
               "rule %s: provisional entry '%s', expected '%s'", op->rule, op->provisional_entry,
               expected);
}

static void run_event(const struct clock_setup *setup, const struct duewatch_event *event)
{
    struct clock_op ops[CLOCK_OPS_MAX];
    char err[512];
    int count = clock_setup_ops_for_event(setup, event, ops, err, sizeof err);
    if (count < 0) {
        FUZZ_CHECK(memchr(err, '\0', sizeof err) != NULL, "ops error not terminated");
        return;
    }
    FUZZ_CHECK(count <= CLOCK_OPS_MAX, "%d ops", count);
    for (int i = 0; i < count; i++) {
        const struct clock_op *op = &ops[i];
        FUZZ_CHECK(is_rule(setup, op->rule), "op %d names no configured rule", i);
        FUZZ_CHECK(op->key.length > 0, "op %d has an empty key", i);
        const struct text *expected = op->key_is_case ? &event->case_number : &event->ref;
        FUZZ_CHECK(op->key.bytes == expected->bytes && op->key.length == expected->length,
                   "op %d keys on the wrong identifier", i);
        if (op->kind == CLOCK_OP_START && event->until_ms == 0)
            FUZZ_CHECK(op->base_deadline_ms > event->ts_ms,
                       "rule %s: deadline %lld not after start %lld", op->rule,
                       (long long)op->base_deadline_ms, (long long)event->ts_ms);
        if (op->kind == CLOCK_OP_START)
            check_provisional_entry(setup, event, op);
        if (op->kind == CLOCK_OP_STOP)
            FUZZ_CHECK(clock_setup_rule_stops_on(setup, op->rule, (int)event->type),
                       "rule %s gets a stop op of a type it does not stop on", op->rule);
    }
    if (count == CLOCK_OPS_MAX)
        return; /* ops may have been left out */
    for (size_t r = 0; r < clock_setup_rule_count(setup); r++) {
        const char *name = clock_setup_rule_name(setup, r);
        bool stopped = false;
        for (int i = 0; i < count; i++)
            stopped |= ops[i].kind == CLOCK_OP_STOP && ops[i].rule == name;
        FUZZ_CHECK(clock_setup_rule_stops_on(setup, name, (int)event->type) == stopped,
                   "rule %s: stops_on %s says %d, the ops %d", name,
                   event_type_name(event->type), !stopped, stopped);
    }
}

static void run_events(const struct clock_setup *setup)
{
    /* 2025-03-14 10:00 +08, 2026-12-30 23:59 +08 (last days of the
     * official years), 2024-01-01 00:00 +08 (the first day), 2035-12-30
     * 23:59 +08 (last days of the provisional years). */
    static const int64_t instants[] = {INT64_C(1741917600000), INT64_C(1798732740000),
                                       INT64_C(1704038400000), INT64_C(2082643140000)};
    for (int type = 0; type < EVENT_TYPE_COUNT; type++)
        for (size_t k = 0; k < sizeof all_kinds / sizeof all_kinds[0]; k++)
            for (size_t t = 0; t < sizeof instants / sizeof instants[0]; t++) {
                struct duewatch_event event = {
                    .type = (enum event_type)type,
                    .ts_ms = instants[t],
                    .id = TEXT("ev-1"),
                    .unit = TEXT("500112-XJ01"),
                    .case_number = TEXT("A500112202503"),
                    .ref = TEXT("R0001"),
                    .subject = TEXT("S0001"),
                    .kind = {all_kinds[k], (uint32_t)strlen(all_kinds[k])},
                    .days = 30,
                };
                for (int q = 0; q < EVENT_QUALIFIER_COUNT; q++)
                    event.qualifiers[q] = (struct text){
                        qualifier_sets[k % 3][q], (uint32_t)strlen(qualifier_sets[k % 3][q])};
                run_event(setup, &event);
                if (t == 0 && k == 4) {
                    event.until_ms = instants[t] + INT64_C(86400000) * 45;
                    run_event(setup, &event);
                }
            }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    memset(err, 'Z', sizeof err);
    fuzz_file_write(&rules_file, data, size);
    struct clock_setup *setup = clock_setup_load(&config, err, sizeof err);
    if (setup == NULL) {
        size_t length = strnlen(err, sizeof err);
        FUZZ_CHECK(length < sizeof err, "error not NUL-terminated");
        FUZZ_CHECK(length > 0, "empty error");
        return 0;
    }
    check_rule_specs(setup);
    for (size_t i = 0; i < clock_setup_rule_count(setup); i++) {
        struct alert_wording wording;
        clock_setup_wording(setup, clock_setup_rule_name(setup, i), 0, &wording);
        FUZZ_CHECK(wording.label != NULL && wording.label[0] != '\0', "rule %zu has no label", i);
        FUZZ_CHECK(wording.action != NULL && wording.action[0] != '\0', "rule %zu has no action",
                   i);
        FUZZ_CHECK(strchr(wording.label, '|') == NULL && strchr(wording.action, '|') == NULL,
                   "'|' in the wording of rule %zu", i);
    }
    run_events(setup);
    clock_setup_destroy(setup);
    return 0;
}
