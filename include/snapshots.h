/* End-of-day snapshots (README "Counters"): once the daemon's time has
 * passed a local day's end (24:00 in the configured time zone) and every
 * level due by then is claimed, the running and overdue clocks of each rule
 * and unit at that end are written into that day's bucket, running.<rule>
 * and overdue.<rule>, and <prefix>snapshot names the day.  The live counts
 * are read then (snapshot_read.lua), less what events of the later days
 * changed (started/stopped/unlisted.<rule> of their day buckets, written by
 * every batch), so a replay of the same events gives the same snapshots
 * however its batches fall.  Exact when the daemon's time passes each day's
 * end within the next day; a jump over several days (an idle event-time
 * partition, a daemon stopped for days) counts the overdue of the skipped
 * days from the later days' changes, which may count a clock whose deadline
 * fell in between.  One request in flight at a time; several daemons may
 * race, the marker check lets one write each day. */
#ifndef DUEWATCH_SNAPSHOTS_H
#define DUEWATCH_SNAPSHOTS_H

#include <stdint.h>

struct config;
struct redis_client;

struct snapshots;

/* Borrows redis and config (they outlive it).  NULL on allocation failure. */
struct snapshots *snapshots_create(struct redis_client *redis, const struct config *config);
/* Accepts NULL.  A request in flight answers with a NULL reply first
 * (the redis client is destroyed before it). */
void snapshots_destroy(struct snapshots *snapshots);
void snapshots_set_config(struct snapshots *snapshots, const struct config *config);

/* The daemon's time is `now_ms` and every level due by then is claimed:
 * snapshots each day that ended by then and has none (on an empty Redis:
 * from the day of the earliest event applied, see snapshots_note_applied,
 * or else from the day of now_ms on: what ran earlier is not known). */
void snapshots_time_reached(struct snapshots *snapshots, int64_t now_ms);

/* A batch applied events from `earliest_ms` on (-1: none): on an empty
 * Redis (no marker yet), the snapshots start with the day of the earliest
 * event this daemon applied -- a replay of history onto an empty Redis
 * snapshots its days too. */
void snapshots_note_applied(struct snapshots *snapshots, int64_t earliest_ms);

/* The next day's end to snapshot after `now_ms` (wall mode: when to claim
 * and call snapshots_time_reached again). */
int64_t snapshots_next_end(int64_t now_ms);

/* Days snapshotted by this daemon since it started. */
uint64_t snapshots_taken(const struct snapshots *snapshots);

#endif
