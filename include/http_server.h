/* The operations endpoint on the event loop (libevent's evhttp):
 *   GET /metrics  Prometheus text format
 *   GET /healthz  200 while the loop turns (this answer is proof of it)
 *   GET /readyz   200 when Redis is set up, partitions are assigned and
 *                 consumption is not paused for errors; 503 with the reason
 * Anything else is 404; methods other than GET/HEAD are 405. */
#ifndef DUEWATCH_HTTP_SERVER_H
#define DUEWATCH_HTTP_SERVER_H

#include <stddef.h>

struct event_base;
struct metrics_sources;
struct http_server;

/* Listens on "host:port" (an empty string: returns NULL without error and
 * sets *disabled).  Serves what `sources` (metrics.h; must outlive the
 * server) tells.  Returns NULL with a message in err on failure. */
struct http_server *http_server_create(struct event_base *base, const char *listen,
                                       const struct metrics_sources *sources, char *err,
                                       size_t err_size);
void http_server_destroy(struct http_server *server);

#endif
