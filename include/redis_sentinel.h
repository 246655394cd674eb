/* Redis Sentinel: where the master is, and when it moved.
 *
 * Used by the Redis connection (redis_client.c) only when `redis_sentinels`
 * is set.  redis_sentinel_ask() asks the Sentinels in turn, each on a fresh
 * connection (AUTH with redis_sentinel_username/_password when set), for
 * `SENTINEL get-master-addr-by-name <redis_master_name>`, and answers with the
 * first address given, or with none when no Sentinel answered within
 * redis_connect_timeout_ms each.  Meanwhile one connection to a Sentinel stays
 * subscribed to `+switch-master` (moving to the next Sentinel, with backoff,
 * when it is lost) and reports each failover of that master.  Everything runs
 * on the caller's libevent loop; nothing blocks. */
#ifndef DUEWATCH_REDIS_SENTINEL_H
#define DUEWATCH_REDIS_SENTINEL_H

struct event_base;
struct config;
struct redis_sentinel;

/* The master's address, or host == NULL when no Sentinel named one. */
typedef void (*redis_sentinel_found)(void *arg, const char *host, int port);
/* A Sentinel announced that the master moved to host:port. */
typedef void (*redis_sentinel_switched)(void *arg, const char *host, int port);

/* Parses config->redis_sentinels (which must be non-empty and valid, as
 * config.c checks) and starts the subscription.  `config` must stay valid
 * until the next redis_sentinel_set_config() or destroy.  NULL on allocation
 * failure. */
struct redis_sentinel *redis_sentinel_create(struct event_base *base, const struct config *config,
                                             redis_sentinel_switched on_switch, void *arg);
/* Drops its connections without calling back; accepts NULL. */
void redis_sentinel_destroy(struct redis_sentinel *sentinel);
/* Points at a reloaded config (the timeouts and backoff may change). */
void redis_sentinel_set_config(struct redis_sentinel *sentinel, const struct config *config);
/* Starts a query; `found` is called once, later, never from inside this call.
 * Asking while a query runs only replaces the callback of the running one. */
void redis_sentinel_ask(struct redis_sentinel *sentinel, redis_sentinel_found found, void *arg);

#endif
