/* One asynchronous Redis connection on the libevent loop: connect, set up
 * (AUTH, SELECT, SCRIPT LOAD, FUNCTION LOAD), report ready, and reconnect with
 * exponential backoff when the connection is lost.  hiredis owns and frees the
 * redisAsyncContext after its connect-failure and disconnect callbacks, so
 * this file only ever forgets its pointer there, never frees it. */
#include "redis_client.h"

#include "config.h"
#include "formats.h"
#include "log.h"
#include "lua_scripts.h"
#include "redis_loop.h"
#include "redis_sentinel.h"
#include "redis_tls.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

enum connection_state {
    STATE_IDLE,
    STATE_CONNECTING,
    STATE_SETTING_UP,
    STATE_VERIFYING,
    STATE_READY
};

struct redis_client {
    struct event_base *base;
    const struct config *config;
    redis_ready_callback on_ready;
    void *on_ready_arg;
    redis_verify_callback verify;
    void *verify_arg;
    redisAsyncContext *context;
    enum connection_state state;
    struct event *retry_timer;   /* reconnect after backoff */
    struct event *connect_timer; /* gives up a connect or setup that hangs */
    int failed_attempts;
    int setup_replies_pending;
    bool setup_failed;
    bool destroying;
    /* With redis_sentinels: the Sentinels, and the master they named. */
    struct redis_sentinel *sentinel;
    struct redis_tls *tls; /* with redis_tls: the TLS context of every connection */
    char master_host[256];
    int master_port;
    char script_sha[REDIS_SCRIPT_COUNT][41];
    /* Redis has loaded duewatch's module (redis_module/), of this release's
     * argument version: writes go to DUEWATCH.APPLY instead of
     * apply_effects.lua.  Probed at each connection (a failover may reach a
     * Redis without it). */
    bool module;
    struct redis_client_stats stats;
};

/* What a command's hiredis privdata points at: the caller's callback. */
struct pending_command {
    redis_reply_callback callback;
    void *privdata;
};

static void start_connect(struct redis_client *client);

static void schedule_retry(struct redis_client *client)
{
    if (client->destroying)
        return;
    int min_ms = client->config->redis_reconnect_min_ms;
    int max_ms = client->config->redis_reconnect_max_ms;
    long delay = min_ms;
    for (int i = 0; i < client->failed_attempts && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    client->failed_attempts++;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(client->retry_timer, &tv);
}

static void connection_gone(struct redis_client *client, const char *why)
{
    bool was_ready = client->state == STATE_READY;
    client->context = NULL;
    client->state = STATE_IDLE;
    evtimer_del(client->connect_timer);
    if (was_ready && !client->destroying) {
        client->stats.connection_losses++;
        log_warning("redis: connection lost: %s", why);
        if (client->on_ready && !client->destroying)
            client->on_ready(client->on_ready_arg, false);
    }
    schedule_retry(client);
}

static void on_disconnect(const redisAsyncContext *context, int status)
{
    struct redis_client *client = context->data;
    if (client == NULL)
        return;
    /* A refused TLS handshake reaches hiredis as a bare I/O error: OpenSSL
     * knows why (certificate verify failed, ...). */
    char why[512], tls_reason[256] = "";
    if (client->tls != NULL && status != REDIS_OK)
        redis_tls_last_error(tls_reason, sizeof tls_reason);
    if (tls_reason[0] && context->errstr[0])
        snprintf(why, sizeof why, "TLS: %s (%s)", tls_reason, context->errstr);
    else if (tls_reason[0])
        snprintf(why, sizeof why, "TLS: %s", tls_reason);
    else
        snprintf(why, sizeof why, "%s", status == REDIS_OK ? "closed" : context->errstr);
    /* Lost while connecting or setting up (a setup error was logged already
     * and ends with a clean disconnect): said once per outage. */
    if (status != REDIS_OK && client->state != STATE_READY && !client->destroying &&
        (client->failed_attempts == 0 || log_get_level() >= LOG_LEVEL_DEBUG))
        log_warning("redis: connection failed before it was ready: %s (retrying with backoff)",
                    why);
    connection_gone(client, why);
}

/* One step of the set-up after connecting; `script` is the script whose SHA1
 * the reply carries, or -1. */
struct setup_step {
    const char *name;
    int script;
};

static const struct setup_step step_auth = {"AUTH", -1};
static const struct setup_step step_select = {"SELECT", -1};
static const struct setup_step step_functions = {"FUNCTION LOAD duewatch", -1};
static const struct setup_step step_role = {"ROLE", -1}; /* with Sentinel only */
static const struct setup_step step_module = {"DUEWATCH.APPLY " SCRIPT_ARGS_VERSION_TEXT, -1};
static const struct setup_step step_scripts[REDIS_SCRIPT_COUNT] = {
    {"SCRIPT LOAD read_entries", REDIS_SCRIPT_READ_ENTRIES},
    {"SCRIPT LOAD apply_effects", REDIS_SCRIPT_APPLY_EFFECTS},
    {"SCRIPT LOAD claim_read", REDIS_SCRIPT_CLAIM_READ},
    {"SCRIPT LOAD snapshot_read", REDIS_SCRIPT_SNAPSHOT_READ},
};

static const char *script_source(enum redis_script script)
{
    switch (script) {
    case REDIS_SCRIPT_READ_ENTRIES: return lua_read_entries;
    case REDIS_SCRIPT_APPLY_EFFECTS: return lua_apply_effects;
    case REDIS_SCRIPT_CLAIM_READ: return lua_claim_read;
    case REDIS_SCRIPT_SNAPSHOT_READ: return lua_snapshot_read;
    case REDIS_SCRIPT_COUNT: break;
    }
    return "";
}

/* The module probe's answer: its argument version, or an error (no module,
 * one of another release, a user not allowed the command).  Either way the
 * set-up goes on: without the module, writes go to apply_effects.lua. */
static void module_probed(struct redis_client *client, const redisReply *reply)
{
    bool module = reply->type == REDIS_REPLY_INTEGER && reply->integer == SCRIPT_ARGS_VERSION;
    if (!module && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "unknown command") == NULL)
        log_warning("redis: the duewatch module is there but not used (%s): writes go through "
                    "apply_effects.lua", reply->str);
    client->module = module;
}

/* ROLE's first element is "master" on a master. */
static bool reply_says_master(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
           reply->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(reply->element[0]->str, "master") == 0;
}

static void setup_reply(redisAsyncContext *context, void *reply_pointer, void *privdata)
{
    struct redis_client *client = context->data;
    redisReply *reply = reply_pointer;
    const struct setup_step *step = privdata;
    if (client == NULL || reply == NULL)
        return; /* connection lost: on_disconnect handles it */
    if (step == &step_module) {
        module_probed(client, reply);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* A replica refuses the loads at every attempt: said once. */
        bool readonly = strstr(reply->str, "READONLY") != NULL;
        if (!readonly || !client->stats.refusing_writes)
            log_error("redis: %s failed: %s%s", step->name, reply->str,
                      readonly ? " (a replica? not ready until Redis accepts writes)" : "");
        client->stats.refusing_writes |= readonly;
        client->setup_failed = true;
    } else if (step == &step_role && !reply_says_master(reply)) {
        if (!client->stats.refusing_writes)
            log_error("redis: %s:%d is not a master (a replica during a failover?); asking the "
                      "sentinels again", client->master_host, client->master_port);
        client->stats.refusing_writes = true;
        client->setup_failed = true;
    } else if (step->script >= 0 && reply->type == REDIS_REPLY_STRING && reply->len == 40) {
        memcpy(client->script_sha[step->script], reply->str, 40);
        client->script_sha[step->script][40] = '\0';
    }
    if (--client->setup_replies_pending > 0)
        return;
    if (client->setup_failed) {
        /* A setup error (wrong password, ACL, old Redis) will not fix itself
         * quickly; back off and try again rather than run half set up. */
        evtimer_del(client->connect_timer);
        redisAsyncDisconnect(context);
        return;
    }
    client->state = STATE_VERIFYING;
    if (client->verify)
        client->verify(client->verify_arg); /* answers with redis_client_verified */
    else
        redis_client_verified(client, true);
}

void redis_client_verified(struct redis_client *client, bool ok)
{
    if (client->state != STATE_VERIFYING || client->context == NULL)
        return;
    evtimer_del(client->connect_timer);
    if (!ok) {
        redisAsyncDisconnect(client->context); /* backs off and tries again */
        return;
    }
    client->state = STATE_READY;
    client->stats.refusing_writes = false;
    client->failed_attempts = 0;
    client->stats.connects++;
    const char *writes = client->module ? "writes through the duewatch module"
                                        : "writes through apply_effects.lua";
    if (client->sentinel)
        log_notice("redis: connected to master %s at %s:%d and ready (scripts loaded; %s)",
                   client->config->redis_master_name, client->master_host, client->master_port,
                   writes);
    else
        log_notice("redis: connected to %s and ready (scripts loaded; %s)",
                   client->config->redis_unix_socket[0] ? client->config->redis_unix_socket
                                                          : client->config->redis_host,
                   writes);
    if (client->on_ready)
        client->on_ready(client->on_ready_arg, true);
}

static void send_setup(struct redis_client *client, const struct setup_step *step, int argc,
                       const char **argv)
{
    size_t lengths[4];
    for (int i = 0; i < argc; i++)
        lengths[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(client->context, setup_reply, (void *)step, argc, argv, lengths) ==
        REDIS_OK)
        client->setup_replies_pending++;
    else
        client->setup_failed = true;
}

static void on_connect(const redisAsyncContext *context, int status)
{
    struct redis_client *client = context->data;
    if (client == NULL)
        return;
    if (status != REDIS_OK) {
        if (client->failed_attempts == 0 || log_get_level() >= LOG_LEVEL_DEBUG)
            log_warning("redis: cannot connect: %s (retrying with backoff)", context->errstr);
        client->context = NULL; /* hiredis frees it after this callback */
        client->state = STATE_IDLE;
        evtimer_del(client->connect_timer);
        schedule_retry(client);
        return;
    }
    const struct config *config = client->config;
    client->state = STATE_SETTING_UP;
    client->setup_failed = false;
    client->setup_replies_pending = 0;
    if (config->redis_password[0]) {
        if (config->redis_user[0])
            send_setup(client, &step_auth, 3,
                       (const char *[]){"AUTH", config->redis_user, config->redis_password});
        else
            send_setup(client, &step_auth, 2, (const char *[]){"AUTH", config->redis_password});
    }
    if (config->redis_database != 0) {
        char database[16];
        snprintf(database, sizeof database, "%d", config->redis_database);
        send_setup(client, &step_select, 2, (const char *[]){"SELECT", database});
    }
    for (int script = 0; script < REDIS_SCRIPT_COUNT; script++)
        send_setup(client, &step_scripts[script], 3,
                   (const char *[]){"SCRIPT", "LOAD", script_source((enum redis_script)script)});
    if (client->sentinel)
        send_setup(client, &step_role, 1, (const char *[]){"ROLE"});
    send_setup(client, &step_functions, 4,
               (const char *[]){"FUNCTION", "LOAD", "REPLACE", lua_windows});
    send_setup(client, &step_module, 2,
               (const char *[]){"DUEWATCH.APPLY", SCRIPT_ARGS_VERSION_TEXT});
    if (client->setup_failed)
        redisAsyncDisconnect(client->context);
}

static void connect_timed_out(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_client *client = arg;
    if (client->context == NULL || client->state == STATE_READY)
        return;
    log_warning("redis: connect or setup took longer than %d ms; retrying",
                client->config->redis_connect_timeout_ms);
    redisAsyncContext *context = client->context;
    context->data = NULL; /* its callbacks must not touch the client any more */
    client->context = NULL;
    client->state = STATE_IDLE;
    redisAsyncFree(context);
    schedule_retry(client);
}

static void connect_to(struct redis_client *client, const char *host, int port);

/* With Sentinel: the master's address, once the Sentinels named it. */
static void master_found(void *arg, const char *host, int port)
{
    struct redis_client *client = arg;
    if (client->destroying || client->context != NULL)
        return;
    if (host == NULL) {
        if (client->failed_attempts == 0 || log_get_level() >= LOG_LEVEL_DEBUG)
            log_warning("redis: no sentinel names master %s (retrying with backoff)",
                        client->config->redis_master_name);
        schedule_retry(client);
        return;
    }
    snprintf(client->master_host, sizeof client->master_host, "%s", host);
    client->master_port = port;
    connect_to(client, host, port);
}

/* With Sentinel: the master moved.  A connection elsewhere is dropped and a
 * waiting reconnect runs now; either way the Sentinels are asked again. */
static void master_switched(void *arg, const char *host, int port)
{
    struct redis_client *client = arg;
    if (client->destroying)
        return;
    client->failed_attempts = 0;
    if (client->context != NULL) {
        /* A connect still under way ends by itself (failure, or ROLE); hiredis
         * would not report the disconnect of a context not yet connected. */
        if (client->state != STATE_CONNECTING &&
            (strcmp(host, client->master_host) != 0 || port != client->master_port))
            redisAsyncDisconnect(client->context); /* connection_gone retries at once */
        return;
    }
    if (evtimer_pending(client->retry_timer, NULL)) {
        evtimer_del(client->retry_timer);
        start_connect(client);
    }
}

static void start_connect(struct redis_client *client)
{
    if (client->sentinel) {
        redis_sentinel_ask(client->sentinel, master_found, client);
        return;
    }
    const struct config *config = client->config;
    if (config->redis_unix_socket[0])
        connect_to(client, NULL, 0);
    else
        connect_to(client, config->redis_host, config->redis_port);
}

/* Connects to host:port, or to redis_unix_socket when host is NULL. */
static void connect_to(struct redis_client *client, const char *host, int port)
{
    const struct config *config = client->config;
    redisAsyncContext *context = host == NULL ? redisAsyncConnectUnix(config->redis_unix_socket)
                                              : redisAsyncConnect(host, port);
    if (context == NULL || context->err) {
        log_warning("redis: cannot connect: %s", context ? context->errstr : "out of memory");
        if (context)
            redisAsyncFree(context);
        schedule_retry(client);
        return;
    }
    char err[512];
    if (client->tls != NULL && redis_tls_start(client->tls, context, host, err, sizeof err) != 0) {
        if (client->failed_attempts == 0 || log_get_level() >= LOG_LEVEL_DEBUG)
            log_warning("redis: connection failed before it was ready: %s (retrying with backoff)",
                        err);
        redisAsyncFree(context);
        schedule_retry(client);
        return;
    }
    if (redis_loop_attach(context, client->base) != 0) {
        log_error("redis: out of memory attaching the connection to the loop");
        redisAsyncFree(context);
        schedule_retry(client);
        return;
    }
    context->data = client;
    client->context = context;
    client->state = STATE_CONNECTING;
    redisAsyncSetConnectCallback(context, on_connect);
    redisAsyncSetDisconnectCallback(context, on_disconnect);
    int timeout_ms = config->redis_connect_timeout_ms;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(client->connect_timer, &tv);
}

static void retry_timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

struct redis_client *redis_client_create(struct event_base *base, const struct config *config,
                                         redis_ready_callback on_ready, void *arg)
{
    struct redis_client *client = calloc(1, sizeof *client);
    if (client == NULL)
        return NULL;
    client->base = base;
    client->config = config;
    client->on_ready = on_ready;
    client->on_ready_arg = arg;
    client->retry_timer = evtimer_new(base, retry_timer_fired, client);
    client->connect_timer = evtimer_new(base, connect_timed_out, client);
    if (client->retry_timer == NULL || client->connect_timer == NULL)
        goto fail;
    if (config->redis_tls) {
        char err[512];
        client->tls = redis_tls_create(config, err, sizeof err);
        if (client->tls == NULL) {
            log_error("%s", err);
            goto fail;
        }
    }
    if (config->redis_sentinels[0] != '\0') {
        client->sentinel = redis_sentinel_create(base, config, master_switched, client);
        if (client->sentinel == NULL)
            goto fail;
    }
    start_connect(client);
    return client;
fail:
    redis_client_destroy(client);
    return NULL;
}

void redis_client_destroy(struct redis_client *client)
{
    if (client == NULL)
        return;
    client->destroying = true;
    if (client->context) {
        redisAsyncContext *context = client->context;
        client->context = NULL;
        /* Pending callbacks run now with NULL replies; the client is still valid. */
        redisAsyncFree(context);
    }
    redis_sentinel_destroy(client->sentinel);
    redis_tls_destroy(client->tls);
    if (client->retry_timer)
        event_free(client->retry_timer);
    if (client->connect_timer)
        event_free(client->connect_timer);
    free(client);
}

void redis_client_set_config(struct redis_client *client, const struct config *config)
{
    client->config = config;
    if (client->sentinel)
        redis_sentinel_set_config(client->sentinel, config);
}

bool redis_client_is_ready(const struct redis_client *client)
{
    return client->state == STATE_READY;
}

const char *redis_client_script_sha(const struct redis_client *client, enum redis_script script)
{
    if (script == REDIS_SCRIPT_APPLY_EFFECTS && client->module)
        return NULL;
    return client->script_sha[script];
}

static void command_reply(redisAsyncContext *context, void *reply, void *privdata)
{
    (void)context;
    struct pending_command pending = *(struct pending_command *)privdata;
    free(privdata);
    pending.callback(reply, pending.privdata);
}

void redis_client_set_verifier(struct redis_client *client, redis_verify_callback verify,
                               void *arg)
{
    client->verify = verify;
    client->verify_arg = arg;
}

int redis_client_send(struct redis_client *client, redis_reply_callback callback, void *privdata,
                      int argc, const char **argv, const size_t *argv_lengths)
{
    if (client->state != STATE_READY)
        return -1;
    return redis_client_send_unverified(client, callback, privdata, argc, argv, argv_lengths);
}

int redis_client_send_unverified(struct redis_client *client, redis_reply_callback callback,
                                 void *privdata, int argc, const char **argv,
                                 const size_t *argv_lengths)
{
    if (client->state != STATE_READY && client->state != STATE_VERIFYING)
        return -1;
    struct pending_command *pending = malloc(sizeof *pending);
    if (pending == NULL)
        return -1;
    pending->callback = callback;
    pending->privdata = privdata;
    if (redisAsyncCommandArgv(client->context, command_reply, pending, argc, argv, argv_lengths) !=
        REDIS_OK) {
        free(pending);
        return -1;
    }
    client->stats.commands_sent++;
    return 0;
}

/* A transaction in flight: hiredis runs one callback per command sent
 * (MULTI, each command, EXEC), in order, also with NULL when the
 * connection goes; the last one frees it. */
struct transaction {
    redis_reply_callback callback;
    void *privdata;
    size_t callbacks_pending;
    bool abandoned;  /* sent in part: the caller is not called */
    char error[256]; /* the first error MULTI or a queued command answered */
};

static void transaction_callback_done(struct transaction *transaction)
{
    if (--transaction->callbacks_pending == 0)
        free(transaction);
}

/* MULTI's +OK and each command's +QUEUED; an error (OOM while Redis is
 * over maxmemory, NOPERM, ...) is kept: EXEC then only says EXECABORT. */
static void queued_reply(redisAsyncContext *context, void *reply, void *privdata)
{
    (void)context;
    struct transaction *transaction = privdata;
    const redisReply *queued = reply;
    if (queued != NULL && queued->type == REDIS_REPLY_ERROR && transaction->error[0] == '\0')
        snprintf(transaction->error, sizeof transaction->error, "%s", queued->str);
    transaction_callback_done(transaction);
}

/* EXEC's reply to the caller: the array, or the error that decided it (the
 * first a command answered, queued or run), as a single command's failure
 * reads (NOSCRIPT, OOM, ... included). */
static void exec_reply(redisAsyncContext *context, void *reply, void *privdata)
{
    (void)context;
    struct transaction *transaction = privdata;
    redisReply *result = reply, queued_error;
    if (result != NULL && result->type == REDIS_REPLY_ERROR && transaction->error[0] != '\0') {
        queued_error = (redisReply){.type = REDIS_REPLY_ERROR, .str = transaction->error,
                                    .len = strlen(transaction->error)};
        result = &queued_error;
    } else if (result != NULL && result->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < result->elements; i++)
            if (result->element[i]->type == REDIS_REPLY_ERROR) {
                result = result->element[i];
                break;
            }
    }
    if (!transaction->abandoned)
        transaction->callback(result, transaction->privdata);
    transaction_callback_done(transaction);
}

int redis_client_send_transaction(struct redis_client *client, redis_reply_callback callback,
                                  void *privdata, size_t count,
                                  const struct redis_command *commands)
{
    if (client->state != STATE_READY)
        return -1;
    struct transaction *transaction = calloc(1, sizeof *transaction);
    if (transaction == NULL)
        return -1;
    transaction->callback = callback;
    transaction->privdata = privdata;
    transaction->callbacks_pending = 1; /* this function's own hold, dropped at the end */
    static const char *multi_argv[] = {"MULTI"}, *exec_argv[] = {"EXEC"};
    bool sent = redisAsyncCommandArgv(client->context, queued_reply, transaction, 1, multi_argv,
                                      NULL) == REDIS_OK;
    transaction->callbacks_pending += sent;
    for (size_t i = 0; sent && i < count; i++) {
        sent = redisAsyncCommandArgv(client->context, queued_reply, transaction, commands[i].argc,
                                     commands[i].argv, commands[i].argv_lengths) == REDIS_OK;
        transaction->callbacks_pending += sent;
    }
    if (sent) {
        sent = redisAsyncCommandArgv(client->context, exec_reply, transaction, 1, exec_argv,
                                     NULL) == REDIS_OK;
        transaction->callbacks_pending += sent;
    }
    if (sent) {
        client->stats.commands_sent += count + 2;
    } else {
        transaction->abandoned = true;
        /* inside MULTI, or not: drop the connection (the next one starts
         * clean); the callbacks registered run with NULL */
        if (transaction->callbacks_pending > 1)
            redisAsyncDisconnect(client->context);
    }
    transaction_callback_done(transaction);
    return sent ? 0 : -1;
}

void redis_client_reconnect(struct redis_client *client)
{
    if (client->context && (client->state == STATE_READY || client->state == STATE_VERIFYING))
        redisAsyncDisconnect(client->context);
}

void redis_client_get_stats(const struct redis_client *client, struct redis_client_stats *out)
{
    *out = client->stats;
}
