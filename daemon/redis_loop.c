/* The glue between a hiredis asynchronous connection and a libevent loop,
 * shared by the Redis connection (redis_client.c) and the Sentinel queries
 * (redis_sentinel.c). */
#include "redis_loop.h"

#include <event2/event.h>
#include <hiredis/async.h>
#include <stdlib.h>

/* The adapter hiredis ships (adapters/libevent.h) differs between 0.14 and
 * 1.x, and some 1.x distributions leave it out; these few lines use only the
 * ev hooks of redisAsyncContext, the same in both, so duewatch builds against
 * either.  Nothing touches `events` after redisAsyncHandleRead/Write: they may
 * free the context, and with it (through cleanup) these events. */
struct loop_events {
    redisAsyncContext *context;
    struct event *read_event, *write_event;
};

static void loop_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct loop_events *events = arg;
    redisAsyncHandleRead(events->context);
}

static void loop_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct loop_events *events = arg;
    redisAsyncHandleWrite(events->context);
}

static void loop_add_read(void *privdata)
{
    struct loop_events *events = privdata;
    event_add(events->read_event, NULL);
}

static void loop_del_read(void *privdata)
{
    struct loop_events *events = privdata;
    event_del(events->read_event);
}

static void loop_add_write(void *privdata)
{
    struct loop_events *events = privdata;
    event_add(events->write_event, NULL);
}

static void loop_del_write(void *privdata)
{
    struct loop_events *events = privdata;
    event_del(events->write_event);
}

static void loop_cleanup(void *privdata)
{
    struct loop_events *events = privdata;
    if (events == NULL)
        return;
    event_free(events->read_event);
    event_free(events->write_event);
    events->context->ev.data = NULL;
    free(events);
}

int redis_loop_attach(redisAsyncContext *context, struct event_base *base)
{
    struct loop_events *events = calloc(1, sizeof *events);
    if (events == NULL)
        return -1;
    events->context = context;
    events->read_event =
        event_new(base, context->c.fd, EV_READ | EV_PERSIST, loop_readable, events);
    events->write_event =
        event_new(base, context->c.fd, EV_WRITE | EV_PERSIST, loop_writable, events);
    if (events->read_event == NULL || events->write_event == NULL) {
        if (events->read_event)
            event_free(events->read_event);
        if (events->write_event)
            event_free(events->write_event);
        free(events);
        return -1;
    }
    context->ev.addRead = loop_add_read;
    context->ev.delRead = loop_del_read;
    context->ev.addWrite = loop_add_write;
    context->ev.delWrite = loop_del_write;
    context->ev.cleanup = loop_cleanup;
    context->ev.data = events;
    return 0;
}

