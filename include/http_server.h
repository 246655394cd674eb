/* The operations endpoint on the event loop (a small HTTP/1.x server, one
 * request per connection):
 *   GET /metrics  Prometheus text format
 *   GET /healthz  200 while the loop turns (this answer is proof of it)
 *   GET /readyz   200 when Redis is set up, partitions are assigned and
 *                 consumption is not paused for errors; 503 with the reason
 * Anything else is 404; methods other than GET/HEAD are 405.  At most
 * config->http_max_connections are open at once (a new one closes the oldest
 * still waiting for its request), each closed after http_idle_timeout_ms
 * without a whole request; accept() failures (out of descriptors) pause the
 * listener for 100 ms instead of spinning, and close the connections still
 * waiting for their request (Kafka and Redis need descriptors more). */
#ifndef DUEWATCH_HTTP_SERVER_H
#define DUEWATCH_HTTP_SERVER_H

#include <stddef.h>

struct event_base;
struct config;
struct metrics_sources;
struct http_server;

/* Listens on config->http_listen ("host:port" or "[v6]:port"), with its
 * connection cap and idle timeout (the config may go after this call).
 * Serves what `sources` (metrics.h; must outlive the server) tells.  Returns
 * NULL with a message in err on failure. */
struct http_server *http_server_create(struct event_base *base, const struct config *config,
                                       const struct metrics_sources *sources, char *err,
                                       size_t err_size);
void http_server_destroy(struct http_server *server);

#endif
