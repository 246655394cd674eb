/* The clock configuration as one reloadable unit: the rules file and the
 * holiday calendar.
 * It turns an event into the clock operations of every rule it concerns
 * (start with a computed deadline, stop, extend, pause, resume). */
#ifndef DUEWATCH_CLOCK_SETUP_H
#define DUEWATCH_CLOCK_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert_message.h"
#include "event.h"

struct config;
struct clock_setup;

/* Loads config->rules_file and config->holidays_file.  Returns NULL with
 * "FILE:LINE: reason" in err. */
struct clock_setup *clock_setup_load(const struct config *config, char *err, size_t err_size);
void clock_setup_destroy(struct clock_setup *setup);

/* Whether running clocks compute the same under both setups: the same
 * rules' deadlines and stop types, the same holiday calendar.  When not, a
 * reload recomputes the provisional clocks (provisional.h). */
bool clock_setup_same_clocks(const struct clock_setup *a, const struct clock_setup *b);

/* Rule versions (rules.conf `[NAME since YYYY-MM-DD]`): a clock follows the
 * version in force on its start date, the local date of started_ms (the
 * clock record's started_at_ms, or the starting event's ts), for its whole
 * life: extensions, caps, recomputes and alert wording.  Every function
 * below that takes started_ms answers for that version. */

/* Wording of a rule for alert texts; a rule no longer configured gets its
 * name as label and a generic action. */
void clock_setup_wording(const struct clock_setup *setup, const char *rule_name,
                         int64_t started_ms, struct alert_wording *out);

/* The holiday calendar in force. */
const struct holidays *clock_setup_holidays(const struct clock_setup *setup);

/* How far the calendar reaches: the end (24:00 local) of its last official
 * day and of its last day (provisional years included), epoch ms; and
 * whether the official years end within CALENDAR_ENDING_DAYS of now_ms (the
 * operator should add the next official year: the daemon warns and a metric
 * flags it). */
#define CALENDAR_ENDING_DAYS 60
struct calendar_coverage {
    int64_t official_end_ms;
    int64_t end_ms;
    bool official_ending;
};
void clock_setup_coverage(const struct clock_setup *setup, int64_t now_ms,
                          struct calendar_coverage *out);

/* Whether a deadline of rule `rule_name` with this last day depends on
 * provisional calendar years (false for a rule no longer configured and for
 * a clock with no last day). */
bool clock_setup_is_provisional(const struct clock_setup *setup, const char *rule_name,
                                int64_t started_ms, bool has_last_day, int32_t last_day);

/* A provisional clock's deadline computed again with the calendar in force:
 * `entry` is its entry in <prefix>provisional:<partition> ("S" or "D<day>",
 * then ",<days>" per extension), started_ms the start recorded in the clock.
 * Hour and second rules keep their deadline (no calendar in it).  Returns 0
 * with *out, or -1 with a reason in err (unknown rule, a malformed entry,
 * working days beyond the calendar). */
struct clock_recompute {
    int32_t last_day;
    int64_t base_deadline_ms; /* before pauses */
    bool provisional;          /* still depends on provisional years */
};
int clock_setup_recompute(const struct clock_setup *setup, const char *rule_name,
                          const char *entry, int64_t started_ms, int32_t recorded_last_day,
                          int64_t recorded_base_deadline_ms, struct clock_recompute *out,
                          char *err, size_t err_size);

/* The deadline of rule `rule_name`, or NULL when no such rule is configured
 * (a reload removed it). */
struct deadline_spec;
const struct deadline_spec *clock_setup_rule_spec(const struct clock_setup *setup,
                                                  const char *rule_name, int64_t started_ms);
/* Whether any version of the rule asks the holiday calendar
 * (deadline_uses_calendar), for a caller that does not know the clock's
 * start yet. */
bool clock_setup_rule_may_use_calendar(const struct clock_setup *setup, const char *rule_name);
/* What the law allows the rule's extensions, or NULL when the rule sets no
 * cap or is not configured. */
struct extension_caps;
const struct extension_caps *clock_setup_rule_caps(const struct clock_setup *setup,
                                                   const char *rule_name, int64_t started_ms);
/* Whether an event of `type` (enum event_type) stops the rule's clocks (the
 * same in every version). */
bool clock_setup_rule_stops_on(const struct clock_setup *setup, const char *rule_name,
                               int type);

/* The rules by name, each once whatever its versions: how many, and the
 * index-th (0 ..count-1, in file order; NULL past the end). */
size_t clock_setup_rule_count(const struct clock_setup *setup);
const char *clock_setup_rule_name(const struct clock_setup *setup, size_t index);

/* One clock operation of an event (batch_apply.c applies it). */
enum clock_op_kind { CLOCK_OP_START, CLOCK_OP_STOP, CLOCK_OP_EXTEND, CLOCK_OP_PAUSE, CLOCK_OP_RESUME };
struct clock_op {
    enum clock_op_kind kind;
    const char *rule;      /* rule name (owned by the setup) */
    struct text key;       /* the event's ref or case */
    bool key_is_case;
    /* start only */
    bool has_last_day;
    int32_t last_day;
    int64_t base_deadline_ms;
    /* "" when the computation used official calendar years only; else what a
     * recompute starts from (provisional.h): "S" (the start, no `until`) or
     * "D<last day>" (an `until`) */
    char provisional_entry[16];
    /* the event's `until` is later than the deadline the rule computes: a
     * term beyond what the law allows (the clock still follows `until`) */
    bool until_beyond_law;
};

#define CLOCK_OPS_MAX 16

/* Fills ops (at most CLOCK_OPS_MAX) with the operations `event` causes and
 * returns how many, or -1 with a reason in err when a deadline cannot be
 * computed (a working-day rule beyond the holiday calendar's years). */
int clock_setup_ops_for_event(const struct clock_setup *setup, const struct duewatch_event *event,
                              struct clock_op *ops, char *err, size_t err_size);

#endif
