/* Redis Sentinel discovery and failover notices (contract in
 * redis_sentinel.h).  Two kinds of hiredis connections to Sentinels: a
 * short-lived query connection (one at a time; AUTH, then
 * SENTINEL get-master-addr-by-name, then closed) and one long-lived
 * subscription to +switch-master.  Each connection's `data` points at this
 * object while it is current; a connection given up is detached (data = NULL)
 * before it is closed, so its late callbacks do nothing.  hiredis frees a
 * context after its connect-failure and disconnect callbacks. */
#include "redis_sentinel.h"

#include "config.h"
#include "log.h"
#include "redis_loop.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SENTINELS 16

struct sentinel_address {
    char host[256];
    int port;
};

struct redis_sentinel {
    struct event_base *base;
    const struct config *config;
    struct sentinel_address addresses[MAX_SENTINELS];
    int count;
    redis_sentinel_switched on_switch;
    void *on_switch_arg;
    /* the query */
    redisAsyncContext *query_context;
    struct event *query_start;   /* starts an asked query on the next loop turn */
    struct event *query_timer;   /* gives up on one Sentinel */
    redis_sentinel_found found;
    void *found_arg;
    bool query_running;
    int query_next_index, query_tried;
    /* the subscription */
    redisAsyncContext *sub_context;
    struct event *sub_timer;     /* reconnects the subscription */
    int sub_index, sub_failures;
};

/* A TCP port in decimal, or -1. */
static int parse_port(const char *text, const char *end)
{
    char *stop = NULL;
    long port = strtol(text, &stop, 10);
    if (stop == text || stop != end || port < 1 || port > 65535)
        return -1;
    return (int)port;
}

/* Splits "host:port,[v6]:port" (validated by config.c) into addresses. */
static void parse_addresses(struct redis_sentinel *sentinel, const char *list)
{
    for (const char *start = list; *start != '\0' && sentinel->count < MAX_SENTINELS;) {
        while (*start == ' ' || *start == '\t')
            start++;
        const char *comma = strchr(start, ',');
        const char *end = comma != NULL ? comma : start + strlen(start);
        const char *colon = end;
        while (colon > start && *colon != ':')
            colon--;
        const char *host = start, *host_end = colon;
        if (*host == '[' && host_end > host + 1 && host_end[-1] == ']') {
            host++;
            host_end--;
        }
        struct sentinel_address *address = &sentinel->addresses[sentinel->count];
        size_t length = (size_t)(host_end - host);
        while (end > colon && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        address->port = colon > start ? parse_port(colon + 1, end) : -1;
        if (address->port > 0 && length < sizeof address->host) {
            memcpy(address->host, host, length);
            address->host[length] = '\0';
            sentinel->count++;
        }
        if (comma == NULL)
            break;
        start = comma + 1;
    }
}

/* A new connection to Sentinel `index`, attached to the loop; NULL (logged)
 * when it cannot even be started. */
static redisAsyncContext *connect_to(struct redis_sentinel *sentinel, int index)
{
    const struct sentinel_address *address = &sentinel->addresses[index];
    redisAsyncContext *context = redisAsyncConnect(address->host, address->port);
    if (context == NULL || context->err || redis_loop_attach(context, sentinel->base) != 0) {
        log_warning("redis: cannot connect to sentinel %s:%d: %s", address->host, address->port,
                    context && context->err ? context->errstr : "out of memory");
        if (context)
            redisAsyncFree(context);
        return NULL;
    }
    context->data = sentinel;
    return context;
}

/* Sends AUTH for the Sentinels when configured, its reply to `callback`
 * (NULL: the next command's reply shows a failure, as NOAUTH). */
static void send_auth(struct redis_sentinel *sentinel, redisAsyncContext *context,
                      redisCallbackFn *callback)
{
    const struct config *config = sentinel->config;
    if (config->redis_sentinel_password[0] == '\0')
        return;
    if (config->redis_sentinel_username[0])
        redisAsyncCommand(context, callback, NULL, "AUTH %s %s", config->redis_sentinel_username,
                          config->redis_sentinel_password);
    else
        redisAsyncCommand(context, callback, NULL, "AUTH %s", config->redis_sentinel_password);
}

static void timer_start(struct event *timer, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(timer, &tv);
}

/* ---- the query ---- */

static void query_next(struct redis_sentinel *sentinel);

/* Detaches and closes the current query connection, if any. */
static void query_drop(struct redis_sentinel *sentinel, bool in_callback)
{
    redisAsyncContext *context = sentinel->query_context;
    sentinel->query_context = NULL;
    evtimer_del(sentinel->query_timer);
    if (context == NULL)
        return;
    context->data = NULL;
    if (in_callback)
        redisAsyncDisconnect(context);
    else
        redisAsyncFree(context);
}

static void query_finish(struct redis_sentinel *sentinel, const char *host, int port)
{
    sentinel->query_running = false;
    sentinel->found(sentinel->found_arg, host, port);
}

static void query_reply(redisAsyncContext *context, void *reply_pointer, void *privdata)
{
    (void)privdata;
    struct redis_sentinel *sentinel = context->data;
    redisReply *reply = reply_pointer;
    if (sentinel == NULL || context != sentinel->query_context || reply == NULL)
        return; /* given up, or lost: on_disconnect moves on */
    const struct sentinel_address *asked = &sentinel->addresses[sentinel->query_next_index == 0
                                                                    ? sentinel->count - 1
                                                                    : sentinel->query_next_index - 1];
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING && reply->element[0]->len < 256 &&
        parse_port(reply->element[1]->str, reply->element[1]->str + reply->element[1]->len) > 0) {
        char host[256];
        snprintf(host, sizeof host, "%s", reply->element[0]->str);
        int port =
            parse_port(reply->element[1]->str, reply->element[1]->str + reply->element[1]->len);
        log_debug("redis: sentinel %s:%d names master %s at %s:%d", asked->host, asked->port,
                  sentinel->config->redis_master_name, host, port);
        query_drop(sentinel, true);
        query_finish(sentinel, host, port);
        return;
    }
    log_warning("redis: sentinel %s:%d does not name master %s: %s", asked->host, asked->port,
                sentinel->config->redis_master_name,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unknown master");
    query_drop(sentinel, true);
    query_next(sentinel);
}

static void query_connected(const redisAsyncContext *context, int status)
{
    struct redis_sentinel *sentinel = context->data;
    if (sentinel == NULL || context != sentinel->query_context)
        return;
    if (status != REDIS_OK) {
        log_debug("redis: cannot connect to a sentinel: %s", context->errstr);
        sentinel->query_context = NULL; /* hiredis frees it */
        evtimer_del(sentinel->query_timer);
        query_next(sentinel);
        return;
    }
    send_auth(sentinel, sentinel->query_context, NULL);
    redisAsyncCommand(sentinel->query_context, query_reply, NULL,
                      "SENTINEL get-master-addr-by-name %s", sentinel->config->redis_master_name);
}

static void query_disconnected(const redisAsyncContext *context, int status)
{
    (void)status;
    struct redis_sentinel *sentinel = context->data;
    if (sentinel == NULL || context != sentinel->query_context)
        return;
    sentinel->query_context = NULL; /* hiredis frees it */
    evtimer_del(sentinel->query_timer);
    query_next(sentinel);
}

static void query_timed_out(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_sentinel *sentinel = arg;
    log_warning("redis: a sentinel did not answer within %d ms",
                sentinel->config->redis_connect_timeout_ms);
    query_drop(sentinel, false);
    query_next(sentinel);
}

/* Asks the next Sentinel not yet asked in this query, or ends the query with
 * no answer once all were asked. */
static void query_next(struct redis_sentinel *sentinel)
{
    while (sentinel->query_tried < sentinel->count) {
        int index = sentinel->query_next_index;
        sentinel->query_next_index = (index + 1) % sentinel->count;
        sentinel->query_tried++;
        redisAsyncContext *context = connect_to(sentinel, index);
        if (context == NULL)
            continue;
        sentinel->query_context = context;
        redisAsyncSetConnectCallback(context, query_connected);
        redisAsyncSetDisconnectCallback(context, query_disconnected);
        timer_start(sentinel->query_timer, sentinel->config->redis_connect_timeout_ms);
        return;
    }
    query_finish(sentinel, NULL, 0);
}

static void query_start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_sentinel *sentinel = arg;
    sentinel->query_tried = 0;
    query_next(sentinel);
}

void redis_sentinel_ask(struct redis_sentinel *sentinel, redis_sentinel_found found, void *arg)
{
    sentinel->found = found;
    sentinel->found_arg = arg;
    if (sentinel->query_running)
        return;
    sentinel->query_running = true;
    timer_start(sentinel->query_start, 0);
}

/* ---- the subscription ---- */

static void sub_lost(struct redis_sentinel *sentinel)
{
    sentinel->sub_context = NULL;
    sentinel->sub_index = (sentinel->sub_index + 1) % sentinel->count;
    long delay = sentinel->config->redis_reconnect_min_ms;
    for (int i = 0; i < sentinel->sub_failures && delay < sentinel->config->redis_reconnect_max_ms;
         i++)
        delay *= 2;
    if (delay > sentinel->config->redis_reconnect_max_ms)
        delay = sentinel->config->redis_reconnect_max_ms;
    sentinel->sub_failures++;
    timer_start(sentinel->sub_timer, (int)delay);
}

/* "<name> <old-ip> <old-port> <new-ip> <new-port>" for our master: reported. */
static void sub_switch_message(struct redis_sentinel *sentinel, const char *payload)
{
    char words[5][256];
    int count = 0;
    for (const char *p = payload; *p != '\0' && count < 5;) {
        size_t length = strcspn(p, " ");
        if (length > 0 && length < sizeof words[0]) {
            memcpy(words[count], p, length);
            words[count++][length] = '\0';
        }
        p += length;
        p += strspn(p, " ");
    }
    if (count != 5 || strcmp(words[0], sentinel->config->redis_master_name) != 0)
        return;
    int new_port = parse_port(words[4], words[4] + strlen(words[4]));
    if (new_port < 0)
        return;
    log_notice("redis: sentinel reports a failover of %s: %s:%s -> %s:%d", words[0], words[1],
               words[2], words[3], new_port);
    sentinel->on_switch(sentinel->on_switch_arg, words[3], new_port);
}

static void sub_message(redisAsyncContext *context, void *reply_pointer, void *privdata)
{
    (void)privdata;
    struct redis_sentinel *sentinel = context->data;
    redisReply *reply = reply_pointer;
    if (sentinel == NULL || context != sentinel->sub_context || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        log_warning("redis: cannot subscribe to sentinel failover notices: %s", reply->str);
        context->data = NULL;
        redisAsyncDisconnect(context);
        sub_lost(sentinel);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "subscribe") == 0)
        sentinel->sub_failures = 0;
    else if (strcmp(reply->element[0]->str, "message") == 0)
        sub_switch_message(sentinel, reply->element[2]->str);
}

static void sub_connected(const redisAsyncContext *context, int status)
{
    struct redis_sentinel *sentinel = context->data;
    if (sentinel == NULL || context != sentinel->sub_context)
        return;
    if (status != REDIS_OK) {
        sub_lost(sentinel); /* hiredis frees it */
        return;
    }
    /* hiredis drops an error answering SUBSCRIBE itself, so AUTH's is checked. */
    send_auth(sentinel, sentinel->sub_context, sub_message);
    redisAsyncCommand(sentinel->sub_context, sub_message, NULL, "SUBSCRIBE +switch-master");
}

static void sub_disconnected(const redisAsyncContext *context, int status)
{
    (void)status;
    struct redis_sentinel *sentinel = context->data;
    if (sentinel == NULL || context != sentinel->sub_context)
        return;
    sub_lost(sentinel); /* hiredis frees it */
}

static void sub_connect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct redis_sentinel *sentinel = arg;
    redisAsyncContext *context = connect_to(sentinel, sentinel->sub_index);
    if (context == NULL) {
        sub_lost(sentinel);
        return;
    }
    sentinel->sub_context = context;
    redisAsyncSetConnectCallback(context, sub_connected);
    redisAsyncSetDisconnectCallback(context, sub_disconnected);
}

/* ---- life cycle ---- */

struct redis_sentinel *redis_sentinel_create(struct event_base *base, const struct config *config,
                                             redis_sentinel_switched on_switch, void *arg)
{
    struct redis_sentinel *sentinel = calloc(1, sizeof *sentinel);
    if (sentinel == NULL)
        return NULL;
    sentinel->base = base;
    sentinel->config = config;
    sentinel->on_switch = on_switch;
    sentinel->on_switch_arg = arg;
    parse_addresses(sentinel, config->redis_sentinels);
    sentinel->query_start = evtimer_new(base, query_start, sentinel);
    sentinel->query_timer = evtimer_new(base, query_timed_out, sentinel);
    sentinel->sub_timer = evtimer_new(base, sub_connect, sentinel);
    if (sentinel->count == 0 || sentinel->query_start == NULL || sentinel->query_timer == NULL ||
        sentinel->sub_timer == NULL)
        goto fail;
    timer_start(sentinel->sub_timer, 0);
    return sentinel;
fail:
    redis_sentinel_destroy(sentinel);
    return NULL;
}

void redis_sentinel_destroy(struct redis_sentinel *sentinel)
{
    if (sentinel == NULL)
        return;
    if (sentinel->query_context) {
        sentinel->query_context->data = NULL;
        redisAsyncFree(sentinel->query_context);
    }
    if (sentinel->sub_context) {
        sentinel->sub_context->data = NULL;
        redisAsyncFree(sentinel->sub_context);
    }
    if (sentinel->query_start)
        event_free(sentinel->query_start);
    if (sentinel->query_timer)
        event_free(sentinel->query_timer);
    if (sentinel->sub_timer)
        event_free(sentinel->sub_timer);
    free(sentinel);
}

void redis_sentinel_set_config(struct redis_sentinel *sentinel, const struct config *config)
{
    sentinel->config = config;
}
