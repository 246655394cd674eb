/* /metrics, /healthz and /readyz over HTTP (see http_server.h). */
#include "http_server.h"

#include "ingest.h"
#include "log.h"
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_server {
    struct evhttp *http;
    const struct metrics_sources *sources;
};

static void reply_text(struct evhttp_request *request, int code, const char *reason,
                       const char *content_type, struct evbuffer *body)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(request);
    evhttp_add_header(headers, "Content-Type", content_type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_send_reply(request, code, reason, body);
}

static void handle(struct evhttp_request *request, void *arg)
{
    struct http_server *server = arg;
    enum evhttp_cmd_type method = evhttp_request_get_command(request);
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        evhttp_send_error(request, 500, "out of memory");
        return;
    }
    const char *uri = evhttp_request_get_uri(request);
    const struct evhttp_uri *parsed = evhttp_request_get_evhttp_uri(request);
    const char *path = parsed ? evhttp_uri_get_path(parsed) : uri;
    if (path == NULL)
        path = "";
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evbuffer_add_printf(body, "only GET\n");
        reply_text(request, 405, "Method Not Allowed", "text/plain; charset=utf-8", body);
    } else if (strcmp(path, "/metrics") == 0) {
        metrics_write(body, server->sources);
        reply_text(request, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
    } else if (strcmp(path, "/healthz") == 0) {
        evbuffer_add_printf(body, "ok\n");
        reply_text(request, 200, "OK", "text/plain; charset=utf-8", body);
    } else if (strcmp(path, "/readyz") == 0) {
        struct ingest_stats stats;
        ingest_get_stats(server->sources->ingest, &stats);
        const char *problem =
            stats.redis_state.lost
                ? "redis state lost (an empty Redis?): consumption held until recovered "
                  "(duewatch recover)"
            : stats.redis_state.readonly ? "redis refuses writes (READONLY: a replica?)"
            : !stats.redis_ready         ? "redis not connected"
            : !stats.assigned            ? "no partition assignment yet"
            : (stats.flow.paused && stats.batches.inflight_messages == 0)
                ? "consumption paused"
                : NULL;
        if (problem) {
            evbuffer_add_printf(body, "not ready: %s\n", problem);
            reply_text(request, 503, "Service Unavailable", "text/plain; charset=utf-8", body);
        } else {
            evbuffer_add_printf(body, "ready\n");
            reply_text(request, 200, "OK", "text/plain; charset=utf-8", body);
        }
    } else {
        evbuffer_add_printf(body, "not found; try /metrics, /healthz or /readyz\n");
        reply_text(request, 404, "Not Found", "text/plain; charset=utf-8", body);
    }
    evbuffer_free(body);
}

struct http_server *http_server_create(struct event_base *base, const char *listen,
                                       const struct metrics_sources *sources, char *err,
                                       size_t err_size)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof host || colon == listen) {
        snprintf(err, err_size, "http_listen '%s': expected host:port", listen);
        return NULL;
    }
    const char *host_start = listen;
    size_t host_length = (size_t)(colon - listen);
    if (listen[0] == '[' && colon[-1] == ']') { /* [::1]:9187 */
        host_start++;
        host_length -= 2;
    }
    memcpy(host, host_start, host_length);
    host[host_length] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        snprintf(err, err_size, "http_listen '%s': bad port", listen);
        return NULL;
    }
    struct http_server *server = calloc(1, sizeof *server);
    if (server == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    server->sources = sources;
    server->http = evhttp_new(base);
    if (server->http == NULL || evhttp_bind_socket(server->http, host, (ev_uint16_t)port) != 0) {
        snprintf(err, err_size, "http_listen %s: cannot listen (address in use or not local?)",
                 listen);
        http_server_destroy(server);
        return NULL;
    }
    evhttp_set_allowed_methods(server->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_max_headers_size(server->http, 8192);
    evhttp_set_max_body_size(server->http, 0);
    evhttp_set_timeout(server->http, 10);
    evhttp_set_gencb(server->http, handle, server);
    log_notice("http: serving /metrics, /healthz and /readyz on %s", listen);
    return server;
}

void http_server_destroy(struct http_server *server)
{
    if (server == NULL)
        return;
    if (server->http)
        evhttp_free(server->http);
    free(server);
}
