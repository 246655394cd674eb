/* The inside of a batch, shared by the files that make one (batch.c: events
 * reduced as they are added; batch_apply.c: the read of the state it needs,
 * the computation of its effects and the write).  Nothing else includes
 * this. */
#ifndef DUEWATCH_BATCH_PRIVATE_H
#define DUEWATCH_BATCH_PRIVATE_H

#include "batch.h"
#include "calendar.h"
#include "clock_engine.h"
#include "effects.h"
#include "redis_client.h"

#define HOUR_MS 3600000LL
#define MINUTE_MS 60000LL
/* Sliding windows reach back 30 days (hour buckets) and 1 hour (minute
 * buckets); older events are not written there, so a replay of history does
 * not fill buckets that would expire unread. */
#define HOUR_WINDOW_REACH_MS (31LL * 24 * HOUR_MS)
#define MINUTE_WINDOW_REACH_MS (2LL * HOUR_MS)
#define RULE_NAME_TEXT_MAX 48
/* Dedupe spans looked at (see batch_apply.c): at most ceil(ttl / span) + 1
 * with span = ceil(ttl / 4). */
#define BATCH_SPANS_MAX 8
/* The read: EXISTS per span key, SMISMEMBER and HMGET per span, MGET, HMGET,
 * HGETALL, EVALSHA. */
#define BATCH_READ_COMMANDS_MAX (4 * BATCH_SPANS_MAX + 4)
/* A stop marker's value: "<type>|<ts>" (it stopped a running clock, or a
 * start consumed it), or "<type>|<ts>|<event id>" (a stop that found no
 * clock: pending, the start it is for runs to it, see batch_apply.c). */
#define MARKER_VALUE_MAX (CLOCK_TEXT_MAX + 96)

struct counter_group {
    struct text unit;
    enum event_type type;
    /* counted also as <type>:<kind>, <type>:<qualifier>, <type>:<kind>:<qualifier>
     * (length 0: absent) */
    struct text kind;
    struct text qualifiers[EVENT_QUALIFIER_COUNT];
    day_number day;
    int64_t hour_index;   /* -1 = outside the hour windows */
    int64_t minute_index; /* -1 = outside the minute window */
    uint32_t hash, period_hash; /* of all the above; of all but the hour and minute */
    uint32_t event_count; /* events of the batch counted in this group */
    uint32_t duplicates;  /* of them, found already applied */
    /* 1-based: the first group of the same unit, type, kind, qualifiers and
     * day (itself when it is the first), whose period buckets count the
     * events of every group leading to it: a batch spans many minutes and
     * few days, so the period counts are made once per leader. */
    uint32_t period_leader;
    int64_t period_events; /* leaders: the new events of the groups they lead */
};

/* An event with an id (a clock.tick only moves its partition's time, which
 * the batch keeps per partition, and is not an entry). */
struct batch_entry {
    struct text id;
    struct text subject; /* a person counted (event_type_counts_persons); length 0: none */
    uint32_t group;     /* 1-based */
    uint32_t partition; /* index into partitions */
    int64_t ts_ms;
    int64_t partition_time_before_ms; /* highest ts of the partition's earlier events in
                                         this batch, -1 none */
    uint32_t first_op, op_count;
    bool duplicate; /* set by the read */
};

/* A clock operation with what its computation needs of its event. */
struct batch_op {
    struct clock_op op;
    char rule[RULE_NAME_TEXT_MAX]; /* a copy: a reload may free the setup op.rule is in */
    struct text id, unit, case_number, subject;
    enum event_type type;
    uint32_t days;
    enum extension_ground ground; /* the extension's `ground`, GROUND_NONE when none */
    int64_t ts_ms;
    uint32_t clock;  /* index into the batch's clocks */
    uint32_t marker; /* S and X: index into the batch's marker fields */
};

/* One clock the batch's ops touch, read once and changed in order. */
struct batch_clock {
    char key[CLOCK_PARTITION_MAX + 2 * RULE_NAME_TEXT_MAX + 96]; /* <prefix>clock:<rule>:<key> */
    struct engine_clock engine;
    const char *read_value; /* as read (points into the read reply), NULL: none */
    size_t read_length;
    bool exists, changed, wants_entry;
    char written[CLOCK_RECORD_MAX]; /* what the write sets (changed and existing) */
    size_t written_length;
};

struct partition_progress {
    const char *topic;
    int32_t partition;
    int64_t next_offset;
    int64_t max_event_time_ms; /* highest ts of the events added (ticks too), -1 none */
    char *key_text;            /* "<topic>:<partition>" */
    int64_t stored_time_ms;    /* event time in Redis before the batch (read), -1 none */
};

struct batch {
    size_t max_events;
    batch_release_message release;
    void **messages;
    size_t message_count;
    struct batch_entry *entries;
    size_t entry_count;
    struct counter_group *groups;
    size_t group_count;
    int32_t *group_slots; /* open addressing: 0 = empty, else group number */
    int32_t *leader_slots; /* the same for period leaders (hour and minute left out) */
    size_t slot_count;    /* power of two, >= 2 * max_events */
    struct partition_progress *partitions;
    size_t partition_count;
    size_t partition_capacity;
    size_t last_partition; /* of the message held last */
    size_t added_count;    /* events added, ticks included */
    struct batch_op *ops;
    size_t op_count, op_capacity;
    /* last day looked up, to skip the time-zone conversion for most events */
    int64_t cached_day_start_ms, cached_day_end_ms;
    day_number cached_day;
    /* the read, the computation and the write (batch_apply.c) */
    struct batch_clock *clocks;
    size_t clock_count, clock_capacity;
    char (*markers)[2 * CLOCK_TEXT_MAX + 8]; /* "<keykind>:<key>" */
    size_t marker_count, marker_capacity;
    const char **read_argv; /* every command's arguments, one after the other */
    size_t *read_lengths;
    size_t read_capacity;
    struct redis_command read_commands[BATCH_READ_COMMANDS_MAX];
    bool span_asked[2][BATCH_SPANS_MAX];    /* ev, stopped: SMISMEMBER / HMGET sent */
    char read_keys[2][CLOCK_PARTITION_MAX]; /* <prefix>eventtime, <prefix>claimed */
    char span_keys[2][BATCH_SPANS_MAX][CLOCK_PARTITION_MAX]; /* ev, stopped */
    size_t span_count;
    char count_text[8][24];
    size_t *entry_requests; /* clocks whose provisional entry the read asks for */
    struct effects *effects;
    struct clock_engine *engine;
    uint64_t applied, duplicates;
    /* Kept after the computation for the batches behind it (batch_set_aheads):
     * look-ups of its clocks, markers and ids, and the markers it wrote. */
    uint32_t *clock_slots, *marker_slots; /* 1-based indices; touched_table entries */
    size_t touched_table;
    uint32_t *id_slots; /* 1-based entry indices; id_table entries */
    size_t id_table;
    /* Room of the tables above, kept from batch to batch (a table allocated
     * for each batch cost page faults: the kernel zeroing fresh pages). */
    size_t clock_slot_room, marker_slot_room, id_slot_room, marker_value_room;
    char (*marker_values)[MARKER_VALUE_MAX]; /* written by this batch */
    /* in flight ahead of this one, their writes not yet applied; newest first */
    const struct batch *aheads[BATCH_AHEAD_MAX];
    size_t ahead_count;
};

#endif
