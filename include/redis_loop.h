/* Attaching a hiredis asynchronous connection to a libevent loop. */
#ifndef DUEWATCH_REDIS_LOOP_H
#define DUEWATCH_REDIS_LOOP_H

struct event_base;
struct redisAsyncContext;

/* Makes `base` drive `context`'s reads and writes; hiredis frees what this
 * allocates when it frees the context.  Returns 0, or -1 on allocation
 * failure (the context is then untouched, the caller frees it). */
int redis_loop_attach(struct redisAsyncContext *context, struct event_base *base);

#endif
