/* The deadline engine (see clock_engine.h).  Day arithmetic is deadline.c's;
 * this file decides what a clock does with it and records the changes. */
#include "clock_engine.h"

#include "alert_message.h"
#include "calendar.h"
#include "counter_keys.h"
#include "snapshots.h"
#include "text.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)
/* The due index groups clocks in buckets of this many ms (a claim reads the
 * buckets due, and small buckets stay in Redis's compact encoding). */
#define DUE_BUCKET_MS INT64_C(600000)
#define KEY_MAX 512
#define PAYLOAD_MAX 1024

static const char *const level_names[3] = {"yellow", "orange", "red"};

const char *clock_engine_level_name(int level)
{
    return level >= 0 && level <= 2 ? level_names[level] : NULL;
}

struct clock_engine {
    const char *prefix;
    const struct holidays *holidays;
    bool wall;
    int64_t counter_ttl_seconds;
    int64_t budget;
    struct effects *effects;
    int64_t earliest;
    uint64_t calendar_gaps;
    struct engine_alert *alerts;
    size_t alert_count, alert_capacity;
    bool failed;
    int64_t backfill_window_ms, wall_now_ms; /* kept across calls */
};

struct clock_engine *clock_engine_create(void)
{
    return calloc(1, sizeof(struct clock_engine));
}

static void clear_alerts(struct clock_engine *engine)
{
    for (size_t i = 0; i < engine->alert_count; i++)
        free(engine->alerts[i].payload);
    engine->alert_count = 0;
}

void clock_engine_destroy(struct clock_engine *engine)
{
    if (engine == NULL)
        return;
    clear_alerts(engine);
    free(engine->alerts);
    free(engine);
}

void clock_engine_begin(struct clock_engine *engine, const char *prefix,
                        const struct holidays *holidays, bool wall, int64_t counter_ttl_seconds,
                        int64_t budget, struct effects *effects)
{
    clear_alerts(engine);
    engine->prefix = prefix;
    engine->holidays = holidays;
    engine->wall = wall;
    engine->counter_ttl_seconds = counter_ttl_seconds;
    engine->budget = budget;
    engine->effects = effects;
    engine->earliest = INT64_MAX;
    engine->calendar_gaps = 0;
    engine->failed = false;
}

void clock_engine_set_backfill(struct clock_engine *engine, int64_t window_ms, int64_t now_ms)
{
    engine->backfill_window_ms = window_ms;
    engine->wall_now_ms = now_ms;
}

bool clock_engine_failed(const struct clock_engine *engine) { return engine->failed; }
bool clock_engine_budget_left(const struct clock_engine *engine) { return engine->budget > 0; }
int64_t clock_engine_earliest(const struct clock_engine *engine) { return engine->earliest; }
uint64_t clock_engine_calendar_gaps(const struct clock_engine *engine)
{
    return engine->calendar_gaps;
}
size_t clock_engine_alert_count(const struct clock_engine *engine) { return engine->alert_count; }
const struct engine_alert *clock_engine_alert(const struct clock_engine *engine, size_t index)
{
    return &engine->alerts[index];
}

/* Records an effect's outcome: any failure marks the call failed. */
static void check(struct clock_engine *engine, int result)
{
    if (result != 0)
        engine->failed = true;
}

/* ---- levels ---- */

bool clock_engine_level_due(struct clock_engine *engine, const struct engine_clock *clock,
                            int level, int64_t seq, int64_t *due_ms)
{
    const struct deadline_spec *spec = clock->spec;
    const struct clock_record *c = &clock->record;
    if (level == 2) {
        int64_t due = deadline_red_due_ms(clock_record_deadline(c), spec->red_repeat_ms, seq);
        if (due == DEADLINE_NO_LEVEL)
            return false;
        *due_ms = due;
        return true;
    }
    if (level == 0 ? !spec->has_yellow : !spec->has_orange)
        return false;
    /* Warnings count back from the unpaused term; the pause is added after. */
    struct deadline_result term = {
        .last_day = c->has_last_day ? c->last_day : calendar_local_day(c->base_deadline_ms - 1),
        .deadline_ms = c->base_deadline_ms};
    char err[160];
    int64_t due;
    if (deadline_warning_due(level == 0 ? &spec->yellow_before : &spec->orange_before,
                             engine->holidays, &term, &due, err, sizeof err) != 0) {
        engine->calendar_gaps++;
        return false;
    }
    *due_ms = due + c->paused_total_ms;
    return true;
}

bool clock_engine_next_level(struct clock_engine *engine, const struct engine_clock *clock,
                             int *level, int64_t *seq, int64_t *due_ms)
{
    const struct clock_record *c = &clock->record;
    int next = c->fired + 1;
    int64_t next_seq = 0;
    if (c->fired >= 2) {
        next = 2;
        next_seq = c->seq;
    }
    for (; next <= 2; next++) {
        if (clock_engine_level_due(engine, clock, next, next_seq, due_ms)) {
            *level = next;
            *seq = next_seq;
            return true;
        }
    }
    return false;
}

bool clock_engine_is_provisional(const struct clock_engine *engine,
                                 const struct engine_clock *clock)
{
    return clock->record.has_last_day && deadline_uses_calendar(clock->spec) &&
           engine->holidays != NULL &&
           clock->record.last_day > holidays_official_last_day(engine->holidays);
}

/* ---- keys ---- */

static void member_of(const struct engine_clock *clock, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%s", clock->rule, clock->key);
}

/* The overdue list of the clock's unit, and of _all (all units: its size is
 * the duewatch_clocks_overdue metric). */
static void set_overdue(struct clock_engine *engine, const struct engine_clock *clock, bool listed)
{
    const char *const who[2] = {clock->record.unit, "_all"};
    for (int w = 0; w < 2; w++) {
        char key[KEY_MAX];
        snprintf(key, sizeof key, "%soverdue:%s:%s", engine->prefix, clock->rule, who[w]);
        check(engine, effects_ordered_zset(engine->effects, key, clock->key,
                                           clock_record_deadline(&clock->record), !listed));
    }
}

static void note_entry(struct clock_engine *engine, struct engine_clock *clock, const char *entry)
{
    char key[KEY_MAX], member[KEY_MAX];
    snprintf(key, sizeof key, "%sprovisional:%s", engine->prefix, clock->record.partition);
    member_of(clock, member, sizeof member);
    check(engine, effects_hash(engine->effects, key, member, entry, entry ? strlen(entry) : 0));
    clock->has_entry = entry != NULL;
    if (entry && entry != clock->entry)
        snprintf(clock->entry, sizeof clock->entry, "%s", entry);
}

/* ---- alerts ---- */

static void alert_id(const struct engine_clock *clock, int64_t deadline, const char *level,
                     int64_t seq, char out[33])
{
    char text[KEY_MAX];
    int length = snprintf(text, sizeof text, "%s|%s|%" PRId64 "|%s|%" PRId64, clock->rule,
                          clock->key, deadline, level, seq);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text, (size_t)length, digest);
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* What a resolution of the clock resolves, joined by ',' into out: the ids
 * its level alerts have under the deadline in force now (the resolution's
 * `deadline`) -- yellow and orange when the rule has them and the clock
 * reached them, and red repeats 0 .. seq - 1, the latest
 * ALERT_RESOLVES_MAX - 2 of them, when red fired.  Every level alert sent
 * under this deadline is among them (but older red repeats); a level a
 * collapse skipped is named though it was never sent; alerts sent under an
 * earlier deadline (before an extension, the end of a pause, a calendar
 * recompute) had other ids: the clock id links those. */
static void resolved_ids(const struct engine_clock *clock, char *out, size_t size)
{
    const struct clock_record *c = &clock->record;
    int64_t deadline = clock_record_deadline(c);
    size_t used = 0;
    char id[33];
    out[0] = '\0';
    for (int level = 0; level <= 2 && level <= c->fired; level++) {
        bool has = level == 0 ? clock->spec->has_yellow
                              : level == 1 ? clock->spec->has_orange : c->seq > 0;
        if (!has)
            continue;
        int64_t first = 0, last = 0;
        if (level == 2) {
            last = c->seq - 1;
            first = last - (ALERT_RESOLVES_MAX - 3) > 0 ? last - (ALERT_RESOLVES_MAX - 3) : 0;
        }
        for (int64_t seq = first; seq <= last && used + ALERT_ID_LENGTH + 2 <= size; seq++) {
            alert_id(clock, deadline, level_names[level], seq, id);
            used += (size_t)snprintf(out + used, size - used, "%s%s", used ? "," : "", id);
        }
    }
}

static void keep_alert(struct clock_engine *engine, const char *partition, const char *id,
                       const char *payload)
{
    if (engine->alert_count == engine->alert_capacity) {
        size_t capacity = engine->alert_capacity ? engine->alert_capacity * 2 : 64;
        struct engine_alert *grown = realloc(engine->alerts, capacity * sizeof *grown);
        if (grown == NULL) {
            engine->failed = true;
            return;
        }
        engine->alerts = grown;
        engine->alert_capacity = capacity;
    }
    struct engine_alert *alert = &engine->alerts[engine->alert_count];
    snprintf(alert->partition, sizeof alert->partition, "%s", partition);
    memcpy(alert->id, id, sizeof alert->id - 1); /* 32 hex digits */
    alert->id[sizeof alert->id - 1] = '\0';
    alert->payload = strdup(payload);
    if (alert->payload == NULL) {
        engine->failed = true;
        return;
    }
    engine->alert_count++;
}

/* Counts `field` once per day, ISO week and month of `due`, for the clock's
 * unit and for _all: alert.<rule>.<level> of a level fired (its due time),
 * violation.<rule> of a violating extension (its time). */
static void count_in_buckets(struct clock_engine *engine, const struct engine_clock *clock,
                             const char *field, int64_t due)
{
    const char *const who[2] = {clock->record.unit, "_all"};
    for (int w = 0; w < 2; w++) {
        struct counter_keys keys;
        counter_keys_of_day(engine->prefix, calendar_local_day(due), who[w], false, &keys);
        for (int p = 0; p < COUNTER_PERIODS; p++)
            check(engine, effects_count(engine->effects, keys.key[p], field, 1,
                                        engine->counter_ttl_seconds));
    }
}

/* Puts an alert of the clock as it stands in its outbox: `level` (yellow,
 * orange, red, violation) with seq, due at `due`; resolved_by non-NULL: the
 * resolution by that event.  The alert id names the level ("resolved" for a
 * resolution) and seq.  Returns false when it could not. */
static bool put_in_outbox(struct clock_engine *engine, const struct engine_clock *clock,
                          const char *level, int64_t seq, int64_t due, const char *resolved_by,
                          bool late)
{
    const struct clock_record *c = &clock->record;
    bool resolved = resolved_by != NULL;
    struct alert alert = {.seq = resolved ? 0 : seq,
                          .started_at_ms = c->started_at_ms,
                          .deadline_ms = clock_record_deadline(c),
                          .due_at_ms = due,
                          .late = late,
                          .has_last_day = c->has_last_day,
                          .last_day = c->last_day};
    snprintf(alert.rule, sizeof alert.rule, "%s", clock->rule);
    snprintf(alert.level, sizeof alert.level, "%s", level);
    snprintf(alert.state, sizeof alert.state, "%s", resolved ? "resolved" : "firing");
    snprintf(alert.unit, sizeof alert.unit, "%s", c->unit);
    snprintf(alert.case_number, sizeof alert.case_number, "%s", c->case_number);
    snprintf(alert.ref, sizeof alert.ref, "%s", clock->key);
    snprintf(alert.subject, sizeof alert.subject, "%s", c->subject);
    snprintf(alert.cause, sizeof alert.cause, "%s", c->cause);
    snprintf(alert.resolved_by, sizeof alert.resolved_by, "%s", resolved ? resolved_by : "");
    if (resolved)
        resolved_ids(clock, alert.resolves, sizeof alert.resolves);
    alert_id(clock, alert.deadline_ms, resolved ? "resolved" : level, alert.seq,
             alert.alert_id);
    char payload[PAYLOAD_MAX], key[KEY_MAX];
    int length = alert_format_payload(&alert, payload, sizeof payload);
    if (length < 0) {
        engine->failed = true;
        return false;
    }
    snprintf(key, sizeof key, "%soutbox:%s", engine->prefix, c->partition);
    check(engine, effects_hash(engine->effects, key, alert.alert_id, payload, (size_t)length));
    keep_alert(engine, c->partition, alert.alert_id, payload);
    return true;
}

/* Puts a level's alert in the clock's outbox.  resolved_by NULL: a firing
 * level, counted in alert.<rule>.<level>. */
static void emit(struct clock_engine *engine, const struct engine_clock *clock, int level,
                 int64_t seq, int64_t due, const char *resolved_by, bool late)
{
    if (!put_in_outbox(engine, clock, level_names[level], seq, due, resolved_by, late) ||
        resolved_by != NULL)
        return;
    char field[KEY_MAX];
    snprintf(field, sizeof field, "alert.%s.%s", clock->rule, level_names[level]);
    count_in_buckets(engine, clock, field, due);
    if (level == 2 && seq == 0)
        set_overdue(engine, clock, true);
}

/* ---- the due index ---- */

static int64_t bucket_of(int64_t due)
{
    return due >= 0 ? due / DUE_BUCKET_MS : -((-due + DUE_BUCKET_MS - 1) / DUE_BUCKET_MS);
}

/* The bucket's name in the partition's listing: "<bucket>.<shard>" (the
 * shard from the member, formats.h DUE_SHARDS), or "<bucket>" where a record
 * older than DUE_BUCKET_SHARDED_SINCE was armed. */
static void bucket_name(int64_t bucket, const char *member, bool sharded, char *buf, size_t size)
{
    if (!sharded) {
        snprintf(buf, size, "%" PRId64, bucket);
        return;
    }
    snprintf(buf, size, "%" PRId64 ".%u", bucket,
             (unsigned)(text_hash(member, strlen(member)) % DUE_SHARDS));
}

static void bucket_key(const struct clock_engine *engine, const struct engine_clock *clock,
                       const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%sdue:%s:%s", engine->prefix, clock->record.partition, name);
}

static void unindex(struct clock_engine *engine, struct engine_clock *clock)
{
    if (!clock->record.armed)
        return;
    char key[KEY_MAX], member[KEY_MAX], name[48];
    member_of(clock, member, sizeof member);
    bucket_name(bucket_of(clock->record.next_due_ms), member,
                clock->record.version >= DUE_BUCKET_SHARDED_SINCE, name, sizeof name);
    bucket_key(engine, clock, name, key, sizeof key);
    check(engine, effects_index(engine->effects, key, member, 0, true));
    clock->record.armed = false;
}

static void index_at(struct clock_engine *engine, struct engine_clock *clock, int64_t due)
{
    char key[KEY_MAX], member[KEY_MAX], listing[KEY_MAX], name[48];
    int64_t bucket = bucket_of(due);
    member_of(clock, member, sizeof member);
    bucket_name(bucket, member, true, name, sizeof name);
    bucket_key(engine, clock, name, key, sizeof key);
    check(engine, effects_index(engine->effects, key, member, due, false));
    snprintf(listing, sizeof listing, "%sdue:%s", engine->prefix, clock->record.partition);
    check(engine, effects_listing(engine->effects, listing, name, bucket * DUE_BUCKET_MS));
    clock->record.armed = true;
    clock->record.version = FORMAT_VERSION;
    clock->record.next_due_ms = due;
    if (due < engine->earliest)
        engine->earliest = due;
}

/* Arms the next level (nothing while paused or when none is left). */
static void rearm(struct clock_engine *engine, struct engine_clock *clock)
{
    unindex(engine, clock);
    if (clock->record.paused)
        return;
    int level;
    int64_t seq, due;
    if (clock_engine_next_level(engine, clock, &level, &seq, &due))
        index_at(engine, clock, due);
}

/* ---- firing ---- */

struct pending_level {
    bool present;
    int level;
    int64_t seq, due;
};

/* Sends the level a collapse kept. */
static void emit_collapsed(struct clock_engine *engine, struct engine_clock *clock,
                           const struct pending_level *pending)
{
    emit(engine, clock, pending->level, pending->seq, pending->due, NULL, false);
    engine->budget--;
    if (pending->level == 2 && pending->seq > 0)
        /* the first red (seq 0) was skipped by the collapse: the clock is
         * overdue all the same */
        set_overdue(engine, clock, true);
}

/* The latest red repeat due by `limit` when it is later than seq (a
 * collapse jumps straight to it), else seq. */
static int64_t latest_repeat(const struct engine_clock *clock, int64_t seq, int64_t limit)
{
    int64_t latest = deadline_red_latest_repeat(clock_record_deadline(&clock->record),
                                                clock->spec->red_repeat_ms, limit);
    return latest > seq ? latest : seq;
}

/* Up to when the clock's due levels collapse to the latest of them (those
 * after it fire each, in order): `since` as the caller has it (INT64_MAX:
 * every level), except that a clock whose start is within the backfill
 * window of the time it is applied at collapses only the levels already
 * past at its start (the others fell due while the start waited). */
static int64_t collapse_until(const struct clock_engine *engine, const struct clock_record *c,
                              int64_t horizon, int64_t since)
{
    int64_t applied = engine->wall && engine->wall_now_ms > horizon ? engine->wall_now_ms
                                                                    : horizon;
    if (applied - c->started_at_ms <= engine->backfill_window_ms && since > c->started_at_ms)
        return c->started_at_ms;
    return since;
}

/* Fires the clock's levels due at or before `horizon`: every one in order,
 * or (collapse) only the latest of those due by `since` (all of them
 * without a since; see collapse_until) and each after it in order.  Leaves
 * fired/seq updated; does not touch the due index.  Stops early when the
 * budget runs out. */
static void fire_through(struct clock_engine *engine, struct engine_clock *clock, int64_t horizon,
                         bool collapse, bool has_since, int64_t since)
{
    struct clock_record *c = &clock->record;
    if (c->armed && c->next_due_ms > horizon)
        return; /* the armed level is the next one (rearm keeps it so): not due */
    int64_t limit = collapse ? collapse_until(engine, c, horizon, has_since ? since : INT64_MAX)
                             : INT64_MIN;
    struct pending_level pending = {0};
    while (engine->budget > 0) {
        int level;
        int64_t seq, due;
        if (!clock_engine_next_level(engine, clock, &level, &seq, &due) || due > horizon)
            break;
        bool collapsing = due <= limit;
        if (level == 2 && seq > 0 && clock->spec->red_repeat_ms > 0 && collapsing) {
            int64_t jumped = latest_repeat(clock, seq, limit < horizon ? limit : horizon);
            if (jumped != seq) {
                seq = jumped;
                due = deadline_red_due_ms(clock_record_deadline(c), clock->spec->red_repeat_ms,
                                          seq);
            }
        }
        if (collapsing) {
            pending = (struct pending_level){true, level, seq, due};
        } else {
            if (pending.present) {
                emit_collapsed(engine, clock, &pending); /* c already records it */
                pending.present = false;
                if (engine->budget <= 0)
                    break;
            }
            emit(engine, clock, level, seq, due, NULL, false);
            engine->budget--;
        }
        c->fired = level;
        c->seq = level == 2 ? seq + 1 : 0;
    }
    if (pending.present)
        emit_collapsed(engine, clock, &pending);
}

/* Each level due by `horizon` fires at most once, in order, a red jumping
 * to its latest repeat due by then, and the red ends it: what an event far
 * ahead of its partition's time sends, whatever the gap. */
static void fire_each_level_once(struct clock_engine *engine, struct engine_clock *clock,
                                 int64_t horizon)
{
    struct clock_record *c = &clock->record;
    int level;
    int64_t seq, due;
    while (engine->budget > 0 && clock_engine_next_level(engine, clock, &level, &seq, &due) &&
           due <= horizon) {
        if (level == 2 && clock->spec->red_repeat_ms > 0) {
            int64_t latest = latest_repeat(clock, seq, horizon);
            if (latest != seq) {
                seq = latest;
                due = deadline_red_due_ms(clock_record_deadline(c), clock->spec->red_repeat_ms,
                                          seq);
            }
        }
        const struct pending_level kept = {true, level, seq, due};
        c->fired = level;
        c->seq = level == 2 ? seq + 1 : 0;
        emit_collapsed(engine, clock, &kept);
        if (level == 2)
            break;
    }
}

/* The levels an event at `horizon` fires before it changes the clock.  Wall
 * mode: collapsed up to `since` (the partition's last claim), each after it.
 * Event mode with a since (the partition's time before the event, up to
 * which a live run's claims fire every level): each level due by it, then
 * each level due after it at most once (fire_each_level_once), so an event
 * far ahead of its partition -- a stop two years late -- sends a bounded
 * number of alerts; without a since, every level. */
static void fire_before_event(struct clock_engine *engine, struct engine_clock *clock,
                              int64_t horizon, bool has_since, int64_t since)
{
    if (engine->wall || !has_since) {
        fire_through(engine, clock, horizon, engine->wall, has_since, since);
        return;
    }
    fire_through(engine, clock, since < horizon ? since : horizon, false, false, 0);
    fire_each_level_once(engine, clock, horizon);
}

/* For the end-of-day snapshots (snapshots.h): the overdue list's change
 * made by an event at `ts` is recorded for the ends of day before it (whose
 * snapshot, taken later, reads the list as it is then): the deadline the
 * clock left, in <prefix>unlisted:<day>, and unless stopped the deadline it
 * was listed at again, in <prefix>relisted:<day>, members
 * "<rule>:<unit>:<key>:<deadline>" scored by that deadline.  Only deadlines
 * before the start of the event's day matter to those ends of day. */
static void note_left_overdue(struct clock_engine *engine, const struct engine_clock *clock,
                              int64_t deadline_before, int64_t ts, bool stopped)
{
    day_number day = calendar_local_day(ts);
    int64_t day_start = calendar_day_start_ms(day), deadline = clock_record_deadline(&clock->record);
    char name[16], key[KEY_MAX], member[KEY_MAX];
    calendar_format_day(day, name, sizeof name);
    const char *const lists[2] = {"unlisted", "relisted"};
    const int64_t scores[2] = {deadline_before, deadline};
    const bool wanted[2] = {deadline_before < day_start, !stopped && deadline < day_start};
    for (int l = 0; l < 2; l++) {
        if (!wanted[l])
            continue;
        snprintf(key, sizeof key, "%s%s:%s", engine->prefix, lists[l], name);
        snprintf(member, sizeof member, "%s:%s:%s:%" PRId64, clock->rule, clock->record.unit,
                 clock->key, scores[l]);
        check(engine, effects_index(engine->effects, key, member, scores[l], false));
        check(engine, effects_expire(engine->effects, key, SNAPSHOT_CHANGES_TTL));
    }
}

/* After the deadline moved (from deadline_before, by an event at ts; ts < 0:
 * no event): the clock leaves the overdue list when its deadline is ahead
 * of `now` again, and is listed (at its new deadline) when red had fired
 * and it is still past. */
static void update_overdue(struct clock_engine *engine, struct engine_clock *clock, int64_t now,
                           int64_t deadline_before, int64_t ts)
{
    if (clock->record.fired < 2)
        return;
    if (ts >= 0)
        note_left_overdue(engine, clock, deadline_before, ts, false);
    set_overdue(engine, clock, clock_record_deadline(&clock->record) <= now);
}

/* ---- what happens to a clock ---- */

/* How far an event at ts lets a clock's levels fire: a paused clock's time
 * stood still when the pause began. */
static int64_t firing_horizon(const struct clock_record *c, int64_t ts)
{
    return c->paused && c->paused_since_ms < ts ? c->paused_since_ms : ts;
}

/* Puts the clock's violation alert number `seq` in the outbox, due at
 * `due`, counted in violation.<rule> of that time's buckets. */
static void report_violation(struct clock_engine *engine, const struct engine_clock *clock,
                             int64_t seq, int64_t due)
{
    if (!put_in_outbox(engine, clock, "violation", seq, due, NULL, false))
        return;
    char field[KEY_MAX];
    snprintf(field, sizeof field, "violation.%s", clock->rule);
    count_in_buckets(engine, clock, field, due);
}

void clock_engine_start(struct clock_engine *engine, struct engine_clock *clock, int64_t horizon)
{
    if (clock_engine_is_provisional(engine, clock) && clock->has_entry)
        note_entry(engine, clock, clock->entry);
    /* A document whose `until` goes beyond the law's term: the clock follows
     * the document, and the violation is reported once, at the start
     * (seq 0; extensions are numbered from 1). */
    if (clock->until_beyond_law)
        report_violation(engine, clock, 0, clock->record.started_at_ms);
    fire_through(engine, clock, horizon, true, false, 0);
    rearm(engine, clock);
}

void clock_engine_stop(struct clock_engine *engine, struct engine_clock *clock, int64_t ts,
                       bool has_since, int64_t since, const char *event_id, bool *late)
{
    struct clock_record *c = &clock->record;
    /* Levels due by the time of the stop fire first, as a live run would have. */
    fire_before_event(engine, clock, firing_horizon(c, ts), has_since, since);
    unindex(engine, clock);
    if (clock_engine_is_provisional(engine, clock))
        note_entry(engine, clock, NULL);
    if (c->fired >= 2) {
        note_left_overdue(engine, clock, clock_record_deadline(c), ts, true);
        set_overdue(engine, clock, false);
    }
    /* late: after the deadline, counting the pause still running as paused */
    *late = firing_horizon(c, ts) > clock_record_deadline(c);
    if (c->fired >= 0)
        /* level: the highest that fired; seq 0 (a resolution is not a repeat) */
        emit(engine, clock, c->fired, 0, ts, event_id, *late);
}

/* An extension of a day, month or working-day term: the new last day, and
 * the provisional entry that says how it came to be. */
static void extend_last_day(struct clock_engine *engine, struct engine_clock *clock,
                            int32_t days)
{
    struct clock_record *c = &clock->record;
    day_number last;
    char err[160];
    if (deadline_extend_last_day(clock->spec, engine->holidays, c->last_day, days, &last, err,
                                 sizeof err) != 0) {
        /* beyond the calendar: the days are added, the move is not made */
        engine->calendar_gaps++;
        last = c->last_day + days;
    }
    /* a provisional clock records the extension for its recompute; one that
     * becomes provisional records the official last day it had */
    bool was_provisional = clock_engine_is_provisional(engine, clock);
    char base[ENGINE_ENTRY_MAX];
    if (was_provisional && clock->has_entry)
        snprintf(base, sizeof base, "%s", clock->entry);
    else
        snprintf(base, sizeof base, "D%" PRId32, c->last_day);
    c->last_day = last;
    c->base_deadline_ms = calendar_day_start_ms(last + 1);
    if (clock_engine_is_provisional(engine, clock)) {
        char entry[ENGINE_ENTRY_MAX];
        int length = snprintf(entry, sizeof entry, "%s,%" PRId32, base, days);
        if (length < 0 || (size_t)length >= sizeof entry)
            engine->failed = true;
        else
            note_entry(engine, clock, entry);
    } else if (was_provisional) {
        note_entry(engine, clock, NULL);
    }
}

bool clock_engine_extension_violates(const struct extension_caps *caps,
                                     const struct clock_record *record,
                                     enum extension_ground ground)
{
    if (caps == NULL)
        return false;
    if (caps->max_extensions != EXTENSION_UNCAPPED && record->extensions > caps->max_extensions)
        return true;
    if (caps->max_extension_days != EXTENSION_UNCAPPED &&
        record->extended_days > caps->max_extension_days)
        return true;
    /* Only a ground the rule names unlocks its longer total: 流窜作案 does
     * not lengthen a filing review, nor 重大疑难复杂 a criminal detention. */
    bool grounded = ground != GROUND_NONE && (caps->grounds & EXTENSION_GROUND_BIT(ground));
    int32_t total_cap = grounded && caps->ground_max_total_days != EXTENSION_UNCAPPED
                            ? caps->ground_max_total_days
                            : caps->max_total_days;
    if (total_cap == EXTENSION_UNCAPPED || !record->has_last_day)
        return false;
    int64_t total = (int64_t)record->last_day - calendar_local_day(record->started_at_ms);
    return total > total_cap;
}

void clock_engine_extend(struct clock_engine *engine, struct engine_clock *clock, int32_t days,
                         enum extension_ground ground, int64_t ts, bool has_since, int64_t since,
                         int64_t now)
{
    struct clock_record *c = &clock->record;
    fire_before_event(engine, clock, firing_horizon(c, ts), has_since, since);
    int64_t deadline_before = clock_record_deadline(c);
    enum duration_unit unit = clock->spec->length.unit;
    if (unit == DURATION_SECONDS || unit == DURATION_HOURS || !c->has_last_day) {
        c->base_deadline_ms += days * DAY_MS;
        if (c->has_last_day)
            c->last_day += days;
    } else {
        extend_last_day(engine, clock, days);
    }
    /* Levels still ahead are armed for the new deadline; red repeats count
     * again from it. */
    if (c->fired >= 2)
        c->seq = 0;
    update_overdue(engine, clock, now, deadline_before, ts);
    rearm(engine, clock);
    /* Counted, and checked against what the law allows: one beyond it is
     * applied as recorded and reported once, now. */
    if (c->extensions < INT32_MAX)
        c->extensions++;
    c->extended_days = days > INT32_MAX - c->extended_days ? INT32_MAX : c->extended_days + days;
    if (clock_engine_extension_violates(clock->caps, c, ground))
        report_violation(engine, clock, c->extensions, ts);
}

void clock_engine_pause(struct clock_engine *engine, struct engine_clock *clock, int64_t ts,
                        bool has_since, int64_t since)
{
    if (clock->record.paused)
        return;
    fire_before_event(engine, clock, ts, has_since, since);
    clock->record.paused = true;
    clock->record.paused_since_ms = ts;
    unindex(engine, clock);
}

void clock_engine_resume(struct clock_engine *engine, struct engine_clock *clock, int64_t ts,
                         int64_t now)
{
    struct clock_record *c = &clock->record;
    if (!c->paused)
        return;
    int64_t deadline_before = clock_record_deadline(c);
    if (ts > c->paused_since_ms)
        c->paused_total_ms += ts - c->paused_since_ms;
    c->paused = false;
    c->paused_since_ms = 0;
    update_overdue(engine, clock, now, deadline_before, ts);
    rearm(engine, clock);
}

void clock_engine_claim(struct clock_engine *engine, struct engine_clock *clock, int64_t now,
                        bool has_since, int64_t since)
{
    fire_through(engine, clock, firing_horizon(&clock->record, now), engine->wall, has_since,
                 since);
    rearm(engine, clock);
}

bool clock_engine_unpark(struct clock_engine *engine, struct engine_clock *clock, int64_t now)
{
    int64_t horizon = firing_horizon(&clock->record, now);
    fire_through(engine, clock, horizon, false, false, 0);
    int level;
    int64_t seq, due;
    if (engine->budget <= 0 && clock_engine_next_level(engine, clock, &level, &seq, &due) &&
        due <= horizon)
        return false; /* more due: the next call goes on from what fired */
    rearm(engine, clock);
    return true;
}

void clock_engine_recompute(struct clock_engine *engine, struct engine_clock *clock,
                            int32_t last_day, int64_t base_deadline_ms, bool still_provisional,
                            int64_t now)
{
    struct clock_record *c = &clock->record;
    int64_t deadline = clock_record_deadline(c);
    c->last_day = last_day;
    c->base_deadline_ms = base_deadline_ms;
    if (clock_record_deadline(c) != deadline) {
        if (c->fired >= 2)
            c->seq = 0;
        if (now >= 0)
            update_overdue(engine, clock, now, deadline, -1);
    }
    rearm(engine, clock);
    if (!still_provisional)
        note_entry(engine, clock, NULL);
}
