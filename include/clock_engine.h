/* The deadline engine: every computation about a running clock, in one
 * place.  Given a clock's record (clock_record.h), its rule's deadline_spec
 * and the holiday calendar, it applies what happens to the clock -- a start,
 * a stop, an extension, a pause, a resume, the passing of time (a claim of
 * due levels), a recompute after the calendar changed -- as the law counts
 * (include/deadline.h has the rules; tests/golden/deadlines.json is the
 * table of legal cases they must meet), and says what that changes in Redis
 * by collecting it in an effects object (effects.h): the due index, the
 * outbox of alerts, alert counters, overdue lists and the list of clocks
 * computed with provisional calendar years.  It does no I/O: its callers
 * read the records, and write the record it leaves together with the
 * effects in one script call.
 *
 * Levels: 0 yellow, 1 orange, 2 red; a clock's `fired` is the highest level
 * sent, `seq` the next red repeat.  The next level is the first present one
 * after `fired` (red repeats: seq, seq + 1, ...), and the record's next_due
 * is where it is armed in the due index.
 *
 * Firing through a horizon sends every level due by it, in order, or, when
 * collapsing, only the latest of those due by `since` (levels that were
 * already past when the clock started, or that a daemon wall-clock catch-up
 * finds long gone) and each after it in order; a clock whose start is
 * within the backfill window of when it is applied collapses only the
 * levels past at its start (clock_engine_set_backfill).  Every alert id is
 * sha1("<rule>|<key>|<deadline>|<level>|<seq>") cut to 32 hex digits, so a
 * replay sends the same alert with the same id.
 *
 * A paused clock's time stands still: an event during the pause fires
 * nothing that fell due after the pause began, and a stop during it is late
 * only if the pause began after the deadline.
 *
 * A level whose due time the calendar cannot say (a working-day warning
 * beyond the calendar's last year) is skipped and counted in
 * calendar_gaps, never guessed. */
#ifndef DUEWATCH_CLOCK_ENGINE_H
#define DUEWATCH_CLOCK_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock_record.h"
#include "deadline.h"
#include "effects.h"
#include "event.h"
#include "holidays.h"

#define ENGINE_ENTRY_MAX 512

/* What the law allows a rule's extensions (rules.conf max_extensions,
 * max_extension_days, max_total_days, ground_max_total_days, grounds); each
 * EXTENSION_UNCAPPED when the rule sets no such cap.  An extension beyond
 * one is applied all the same (the clock follows what the case system
 * recorded) and raises a violation alert (clock_engine_extend). */
#define EXTENSION_UNCAPPED (-1)
struct extension_caps {
    int32_t max_extensions;        /* how many extensions, in all */
    int32_t max_extension_days;    /* the days all extensions add, in total */
    int32_t max_total_days;        /* start date to last day, in days (day rules) */
    int32_t ground_max_total_days; /* the same for an extension stating one of `grounds` */
    unsigned grounds;              /* bit 1u << g per enum extension_ground g that unlocks
                                      ground_max_total_days; another ground does not */
};

/* The bit of `ground` in extension_caps.grounds. */
#define EXTENSION_GROUND_BIT(ground) (1u << (unsigned)(ground))

/* A clock as the engine sees it.  The caller fills rule, spec, key, record,
 * caps (NULL: none) and, for a clock listed as provisional, entry (its value
 * in <prefix>provisional:<partition>: how its last day came to be). */
struct engine_clock {
    const char *rule;
    const struct deadline_spec *spec;
    const struct extension_caps *caps;
    const char *key;
    struct clock_record record;
    bool has_entry;
    char entry[ENGINE_ENTRY_MAX];
    /* set for a start only (not stored): the starting event's `until` is
     * later than the deadline the rule computes (clock_op.until_beyond_law),
     * which clock_engine_start reports as a violation */
    bool until_beyond_law;
};

/* An alert the engine put in an outbox, for the caller to publish once the
 * write has applied. */
struct engine_alert {
    char partition[CLOCK_PARTITION_MAX];
    char id[33];
    char *payload;
};

struct clock_engine;

/* What one script call's computations share.  prefix and holidays must
 * outlive the engine's use; wall: wall-clock mode (levels past at a start
 * collapse, see above).  Returns NULL on allocation failure. */
struct clock_engine *clock_engine_create(void);
void clock_engine_destroy(struct clock_engine *engine);
/* Starts a call: collects into effects, may emit at most `budget` alerts. */
void clock_engine_begin(struct clock_engine *engine, const char *prefix,
                        const struct holidays *holidays, bool wall, int64_t counter_ttl_seconds,
                        int64_t budget, struct effects *effects);

/* The backfill window (README "Out of order and duplicates"): levels that
 * fell due after a clock's start but before the start was applied (it
 * waited in a backlog: failover, rebalance, lag) fire each, in order, when
 * the start is at most window_ms older than the time it is applied at;
 * from an older start (a replay of history) they collapse to the latest.
 * Levels already past at the start itself always collapse.  "Applied at":
 * in event mode the start's horizon (its partition's time); in wall mode
 * now_ms, the wall clock of the call.  Kept across calls until set again;
 * 0 at creation (every late start collapses). */
void clock_engine_set_backfill(struct clock_engine *engine, int64_t window_ms, int64_t now_ms);

/* Results of the call so far. */
bool clock_engine_failed(const struct clock_engine *engine); /* out of memory */
bool clock_engine_budget_left(const struct clock_engine *engine);
int64_t clock_engine_earliest(const struct clock_engine *engine); /* INT64_MAX: none */
uint64_t clock_engine_calendar_gaps(const struct clock_engine *engine);
size_t clock_engine_alert_count(const struct clock_engine *engine);
const struct engine_alert *clock_engine_alert(const struct clock_engine *engine, size_t index);

/* "yellow", "orange", "red" for levels 0, 1, 2; NULL for another. */
const char *clock_engine_level_name(int level);

/* The due time of `level` (red: repeat seq) of the clock, or false when its
 * rule has no such level or the calendar cannot say. */
bool clock_engine_level_due(struct clock_engine *engine, const struct engine_clock *clock,
                            int level, int64_t seq, int64_t *due_ms);

/* The next level after the clock's fired state: false when none is left. */
bool clock_engine_next_level(struct clock_engine *engine, const struct engine_clock *clock,
                             int *level, int64_t *seq, int64_t *due_ms);

/* A clock started (record filled with fired -1, seq 0, not armed): fires the
 * levels due by `horizon` (the levels past at its start collapsed to the
 * latest; those due since, in order, or collapsed too when the start is
 * older than the backfill window), and arms the next one;
 * notes the clock as provisional when it is.  The caller counts it running. */
void clock_engine_start(struct clock_engine *engine, struct engine_clock *clock,
                        int64_t horizon);

/* Levels due by ts fire, then the clock stops.  `since`, when has_since:
 * in wall mode the instant up to which the partition's levels were claimed
 * (levels due by it collapse to the latest, each after it fires); in event
 * mode the partition's time before the event (levels due by it fire each,
 * those after it each level at most once, red at its latest repeat due by
 * ts).  The same holds for extend and pause.  Then the clock stops: out of the due index, the overdue list
 * and the provisional list; a resolution is sent when any level had fired.
 * *late says whether it stopped after its deadline.  The caller deletes the
 * record and counts the resolution. */
void clock_engine_stop(struct clock_engine *engine, struct engine_clock *clock, int64_t ts,
                       bool has_since, int64_t since, const char *event_id, bool *late);

/* Levels due by ts fire, then the term is extended by `days` calendar days
 * (deadline.h), levels ahead are armed for the new deadline, red repeats
 * count again from it, and the overdue list follows the deadline as seen at
 * `now`.  The record counts the extension and its days; when it goes beyond
 * the clock's caps (the extension's number above max_extensions, the days
 * added in all above max_extension_days, or the term from the start date to
 * the new last day above max_total_days -- ground_max_total_days when
 * the extension states a `ground` among the caps' grounds) a violation alert goes into
 * the outbox, due at ts, with seq = the extension's number, and counts in
 * violation.<rule> of ts's buckets. */
void clock_engine_extend(struct clock_engine *engine, struct engine_clock *clock, int32_t days,
                         enum extension_ground ground, int64_t ts, bool has_since, int64_t since, int64_t now);

/* Whether an extension that leaves the record as it is (its extensions and
 * extended_days already counting it) goes beyond `caps`. */
bool clock_engine_extension_violates(const struct extension_caps *caps,
                                     const struct clock_record *record,
                                     enum extension_ground ground);

/* A pause (no-op when paused): levels due by ts fire, the clock leaves the
 * due index.  A resume (no-op when not paused): the paused time is added,
 * the overdue list follows, the next level is armed. */
void clock_engine_pause(struct clock_engine *engine, struct engine_clock *clock, int64_t ts,
                        bool has_since, int64_t since);
void clock_engine_resume(struct clock_engine *engine, struct engine_clock *clock, int64_t ts,
                         int64_t now);

/* Time passed: the levels due by `now` fire (collapsing before `since` in
 * wall mode when has_since) and the next is armed. */
void clock_engine_claim(struct clock_engine *engine, struct engine_clock *clock, int64_t now,
                        bool has_since, int64_t since);

/* A parked clock resumes (its rule is configured again; it left the due
 * index while it was not, parked.h): every level due by `now` fires, in
 * order, none collapsed -- they fell due while the rule was away -- and the
 * next is armed.  Returns false when the budget ran out with levels still
 * due (nothing armed; the record says what fired: call again). */
bool clock_engine_unpark(struct clock_engine *engine, struct engine_clock *clock, int64_t now);

/* The calendar changed: the clock's last day and base deadline become
 * these; when the deadline moved, red repeats count again from it and the
 * overdue list follows (now < 0: unknown, left alone); the next level is
 * armed.  still_provisional false takes it off the provisional list. */
void clock_engine_recompute(struct clock_engine *engine, struct engine_clock *clock,
                            int32_t last_day, int64_t base_deadline_ms, bool still_provisional,
                            int64_t now);

/* Whether the clock's deadline depends on provisional calendar years. */
bool clock_engine_is_provisional(const struct clock_engine *engine,
                                 const struct engine_clock *clock);

#endif
