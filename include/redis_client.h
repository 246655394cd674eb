/* One asynchronous Redis connection on the libevent loop (hiredis).  It
 * connects, authenticates (AUTH [user] password), selects the database, loads
 * the Lua scripts and the function library, has the connection verified by
 * the owner's verifier if one is set (redis_state.h: Redis's state is the
 * one the daemon worked on, and Redis accepts writes), and only then reports
 * itself ready.  A lost connection is re-established with exponential backoff; every
 * command pending at the loss gets its callback with reply == NULL, so callers
 * learn of the loss once, where they sent the command. */
#ifndef DUEWATCH_REDIS_CLIENT_H
#define DUEWATCH_REDIS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct config;
struct redisReply;

enum redis_script {
    REDIS_SCRIPT_READ_ENTRIES,  /* reads the provisional entries of a batch's clocks */
    REDIS_SCRIPT_APPLY_EFFECTS, /* checks and writes computed effects */
    REDIS_SCRIPT_CLAIM_READ,    /* reads the clocks due */
    REDIS_SCRIPT_SNAPSHOT_READ, /* reads what an end-of-day snapshot needs */
    REDIS_SCRIPT_COUNT
};

/* Called with ready=true once connected and set up, false when the connection
 * is lost (not for each failed reconnect attempt). */
typedef void (*redis_ready_callback)(void *arg, bool ready);
/* Called with the reply, or reply == NULL when the connection was lost before
 * the reply arrived (the command may or may not have run). */
typedef void (*redis_reply_callback)(struct redisReply *reply, void *privdata);

struct redis_client;

/* Creates the client and starts connecting.  `config` must stay valid until
 * the next redis_client_set_config() or destroy.  Returns NULL on allocation
 * failure. */
struct redis_client *redis_client_create(struct event_base *base, const struct config *config,
                                         redis_ready_callback on_ready, void *arg);
/* Disconnects (pending callbacks get NULL) and frees; accepts NULL. */
void redis_client_destroy(struct redis_client *client);
/* Points at a reloaded config (reloadable keys: timeouts and backoff). */
void redis_client_set_config(struct redis_client *client, const struct config *config);

bool redis_client_is_ready(const struct redis_client *client);
/* SHA1 (40 hex chars) of a script, valid once ready; NULL for
 * apply_effects.lua when Redis has duewatch's module, whose DUEWATCH.APPLY
 * takes the same arguments (effects_build names it then). */
const char *redis_client_script_sha(const struct redis_client *client, enum redis_script script);

/* Sends a command; the argv strings are copied before this returns.  Returns
 * 0, or -1 when not ready (the callback will not be called). */
int redis_client_send(struct redis_client *client, redis_reply_callback callback, void *privdata,
                      int argc, const char **argv, const size_t *argv_lengths);

/* One command of a transaction: argc arguments and their lengths. */
struct redis_command {
    int argc;
    const char **argv;
    const size_t *argv_lengths;
};

/* Sends `count` commands as one transaction, MULTI ... EXEC: atomic, and no
 * script (plain reads cost Redis about half what the same reads cost from
 * Lua, which turns every argument and reply into a Lua string).  The
 * callback gets EXEC's array, one reply per command; or, when a command
 * failed, that command's error, as a single command's failure reads; or
 * NULL when the connection was lost.  The argv strings are copied before
 * this returns.  Returns 0, or -1 when not ready or out of memory (the
 * callback will not be called; a transaction sent in part is dropped with
 * the connection). */
int redis_client_send_transaction(struct redis_client *client, redis_reply_callback callback,
                                  void *privdata, size_t count,
                                  const struct redis_command *commands);

/* Called once a new connection is set up, before it is ready: the verifier
 * sends its commands with redis_client_send_unverified() and answers with
 * redis_client_verified().  A connection lost meanwhile answers its commands
 * with reply == NULL; the next connection is verified again. */
typedef void (*redis_verify_callback)(void *arg);
void redis_client_set_verifier(struct redis_client *client, redis_verify_callback verify,
                               void *arg);
/* As redis_client_send, also while the connection is being verified. */
int redis_client_send_unverified(struct redis_client *client, redis_reply_callback callback,
                                 void *privdata, int argc, const char **argv,
                                 const size_t *argv_lengths);
/* The verifier's answer: ok, the connection is ready (on_ready(true)); else
 * it is dropped and tried again with backoff, verified again each time. */
void redis_client_verified(struct redis_client *client, bool ok);

/* Drops the connection and reconnects (used after NOSCRIPT: reconnecting
 * reloads the scripts). */
void redis_client_reconnect(struct redis_client *client);

/* Round trips and failures, for logs and metrics. */
struct redis_client_stats {
    uint64_t connects;
    uint64_t connection_losses;
    uint64_t commands_sent;
    bool refusing_writes; /* the last set-up was refused READONLY (a replica) */
};
void redis_client_get_stats(const struct redis_client *client, struct redis_client_stats *out);

#endif
