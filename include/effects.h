/* What one call of daemon/lua/apply_effects.lua checks and writes: the
 * daemon computes every effect (clock_engine.h), collects it here, and the
 * script only checks that what the daemon read is still current and writes
 * it all atomically.  Knows nothing of events, rules or Redis I/O: it
 * collects keyed changes, sums and keeps the last of each as its kind says,
 * and builds the command.
 *
 * Kinds of change (a later change of the same key, or key and field, wins
 * unless said otherwise):
 *  - clock values: SET or DEL of a string key;
 *  - due-index entries: a member's score in a sorted set, or its removal;
 *  - due-index listings: ZADD <index> <score> <bucket>, once each;
 *  - counters: HINCRBY sums per key and field, EXPIRE per key;
 *  - running counts: INCRBY sums per key (0 too);
 *  - hash fields: HSET, or HDEL when the value is NULL;
 *  - set members: SADD, EXPIRE per key;
 *  - ordered changes: ZADD/ZREM kept in the order made (overdue lists);
 *  - distinct counts: the members written to a hash, and the count of those
 *    new to it added to a counter (distinct persons), one command per hash
 *    and counter;
 *  - conditional bucket removals (claims): ZREM <index> <bucket> when the
 *    bucket's key no longer exists.
 * Checks: a string key holds exactly a value (or does not exist), a hash
 * field holds a value (or does not exist). */
#ifndef DUEWATCH_EFFECTS_H
#define DUEWATCH_EFFECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct effects;

/* Returns NULL on allocation failure. */
struct effects *effects_create(void);
/* Accepts NULL. */
void effects_destroy(struct effects *effects);
/* Empties it for the next call. */
void effects_reset(struct effects *effects);

/* Every function below copies its strings and returns 0, or -1 when out of
 * memory (the effects are then incomplete: reset before reuse). */
int effects_expect_value(struct effects *effects, const char *key, const char *value,
                         size_t value_length);
int effects_expect_absent(struct effects *effects, const char *key);
/* value NULL: the field must not exist. */
int effects_expect_field(struct effects *effects, const char *key, const char *field,
                         const char *value);

/* value NULL: DEL. */
int effects_set_value(struct effects *effects, const char *key, const char *value,
                      size_t value_length);
/* remove true: ZREM key member; else ZADD key score member. */
int effects_index(struct effects *effects, const char *key, const char *member, int64_t score,
                  bool remove);
int effects_listing(struct effects *effects, const char *key, const char *member,
                    int64_t score);
/* ttl_seconds <= 0: no EXPIRE (the hash is kept for good). */
int effects_count(struct effects *effects, const char *key, const char *field, int64_t amount,
                  int64_t ttl_seconds);
int effects_add(struct effects *effects, const char *key, int64_t amount);
/* value NULL: HDEL. */
int effects_hash(struct effects *effects, const char *key, const char *field, const char *value,
                 size_t value_length);
/* ttl_seconds <= 0: no EXPIRE (the set is kept for good). */
int effects_set_member(struct effects *effects, const char *key, const char *member,
                       size_t member_length, int64_t ttl_seconds);
/* SADD key member, kept for good: for members given many times in a call
 * (the rule and unit of each start), written once however often given. */
int effects_list_member(struct effects *effects, const char *key, const char *member);
/* EXPIRE key ttl once (the last ttl given). */
int effects_expire(struct effects *effects, const char *key, int64_t ttl_seconds);
int effects_ordered_zset(struct effects *effects, const char *key, const char *member,
                         int64_t score, bool remove);
/* Counts `member` once in `count_key` `count_field`: the first time it is
 * written to the hash `members_key` (a member given twice counts once).  A
 * members hash may serve several counts when their members differ (the
 * command of each count writes its own).  (The members' EXPIRE is the
 * caller's: effects_expire.) */
int effects_count_distinct(struct effects *effects, const char *members_key, const char *member,
                           const char *count_key, const char *count_field);
int effects_forget_if_gone(struct effects *effects, const char *index_key,
                           const char *bucket_key, const char *bucket);

/* Whether anything is to be written (checks alone write nothing). */
bool effects_any_write(const struct effects *effects);

/* Builds `EVALSHA sha 0 ARGV...` for apply_effects.lua (layout at its top),
 * or `DUEWATCH.APPLY ARGV...` for duewatch's Redis module when script_sha is
 * NULL (redis_client_script_sha): fence_chain "" = unfenced.  The arrays belong to the effects and stay
 * valid until the next build, reset or destroy.  Returns the argument
 * count, or -1 on allocation failure. */
int effects_build(struct effects *effects, const char *script_sha, const char *fence_chain,
                  int64_t fence_position, const char ***argv, const size_t **argv_lengths);

#endif
