/* /metrics, /healthz and /readyz over HTTP (see http_server.h).
 *
 * A small HTTP/1.x server of its own on the loop (evhttp in libevent 2.1 has
 * no connection cap): one request per connection, answered with
 * "Connection: close".  What the port can cost the daemon is bounded:
 * http_max_connections descriptors, each closed after http_idle_timeout_ms
 * without a whole request (or without taking its reply), and accept()
 * failures (out of descriptors) pause the listener instead of spinning and
 * give the descriptors of idle connections back. */
#include "http_server.h"

#include "config.h"
#include "ingest.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_REQUEST_BYTES 8192
#define ACCEPT_PAUSE_MS 100 /* after accept() failed (EMFILE, ENFILE...) */

struct connection {
    struct connection *older, *newer; /* the server's list, oldest first */
    struct http_server *server;
    struct bufferevent *bev;
    struct event *deadline;
    bool replied; /* the reply is written; close once it is sent */
};

struct http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *resume_timer; /* re-enables the listener after a pause */
    const struct metrics_sources *sources;
    int max_connections;
    struct timeval idle_timeout;
    int open;
    struct connection *oldest, *newest;
};

static void close_connection(struct connection *connection)
{
    struct http_server *server = connection->server;
    if (connection->older)
        connection->older->newer = connection->newer;
    else
        server->oldest = connection->newer;
    if (connection->newer)
        connection->newer->older = connection->older;
    else
        server->newest = connection->older;
    server->open--;
    if (connection->deadline)
        event_free(connection->deadline);
    if (connection->bev)
        bufferevent_free(connection->bev); /* closes the socket */
    free(connection);
}

/* ---- replies ---- */

static void reply(struct connection *connection, bool head, int code, const char *reason,
                  const char *content_type, struct evbuffer *body)
{
    struct evbuffer *out = bufferevent_get_output(connection->bev);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                        code, reason, content_type, evbuffer_get_length(body));
    if (!head)
        evbuffer_add_buffer(out, body);
    connection->replied = true;
    bufferevent_disable(connection->bev, EV_READ);
    bufferevent_enable(connection->bev, EV_WRITE);
}

static void readiness(const struct http_server *server, struct evbuffer *body, int *code)
{
    const char *problem = metrics_not_ready_reason(server->sources);
    if (problem)
        evbuffer_add_printf(body, "not ready: %s\n", problem);
    else
        evbuffer_add_printf(body, "ready\n");
    *code = problem ? 503 : 200;
}

/* Answers the request line "METHOD TARGET HTTP/x.y" (headers are ignored). */
static void answer(struct connection *connection, const char *request_line)
{
    static const char *const text = "text/plain; charset=utf-8";
    char method[16], target[1024];
    struct evbuffer *body = evbuffer_new();
    if (body == NULL) {
        close_connection(connection);
        return;
    }
    if (sscanf(request_line, "%15s %1023s HTTP/%*d.%*d", method, target) != 2) {
        evbuffer_add_printf(body, "bad request\n");
        reply(connection, false, 400, "Bad Request", text, body);
        evbuffer_free(body);
        return;
    }
    target[strcspn(target, "?#")] = '\0';
    bool head = strcmp(method, "HEAD") == 0;
    int code = 200;
    if (!head && strcmp(method, "GET") != 0) {
        evbuffer_add_printf(body, "only GET\n");
        reply(connection, false, 405, "Method Not Allowed", text, body);
    } else if (strcmp(target, "/metrics") == 0) {
        metrics_write(body, connection->server->sources);
        reply(connection, head, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body);
    } else if (strcmp(target, "/healthz") == 0) {
        evbuffer_add_printf(body, "ok\n");
        reply(connection, head, 200, "OK", text, body);
    } else if (strcmp(target, "/readyz") == 0) {
        readiness(connection->server, body, &code);
        reply(connection, head, code, code == 200 ? "OK" : "Service Unavailable", text, body);
    } else {
        evbuffer_add_printf(body, "not found; try /metrics, /healthz or /readyz\n");
        reply(connection, head, 404, "Not Found", text, body);
    }
    evbuffer_free(body);
}

/* ---- a connection's life ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    struct connection *connection = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    if (end.pos < 0)
        end = evbuffer_search(in, "\n\n", 2, NULL);
    if (end.pos < 0) {
        if (evbuffer_get_length(in) > MAX_REQUEST_BYTES) {
            struct evbuffer *body = evbuffer_new();
            if (body == NULL) {
                close_connection(connection);
                return;
            }
            evbuffer_add_printf(body, "request too large\n");
            reply(connection, false, 431, "Request Header Fields Too Large",
                  "text/plain; charset=utf-8", body);
            evbuffer_free(body);
        }
        return;
    }
    char *line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
    if (line == NULL) {
        close_connection(connection);
        return;
    }
    answer(connection, line);
    free(line);
}

static void on_written(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct connection *connection = arg;
    if (connection->replied)
        close_connection(connection);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what; /* EOF, error: the peer is gone */
    close_connection(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    close_connection(arg);
}

/* At the cap: the oldest connection still waiting for its request makes
 * room (a slow client cannot hold the port); none waiting: false. */
static bool make_room(struct http_server *server)
{
    for (struct connection *connection = server->oldest; connection; connection = connection->newer)
        if (!connection->replied) {
            log_warning("http: %d connections open (http_max_connections): closing the "
                        "oldest one still waiting for its request",
                        server->open);
            close_connection(connection);
            return true;
        }
    return false;
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd,
                      struct sockaddr *address, int address_length, void *arg)
{
    (void)listener;
    (void)address;
    (void)address_length;
    struct http_server *server = arg;
    if (server->open >= server->max_connections && !make_room(server)) {
        evutil_closesocket(fd);
        return;
    }
    struct connection *connection = calloc(1, sizeof *connection);
    if (connection == NULL) {
        evutil_closesocket(fd);
        return;
    }
    connection->server = server;
    connection->older = server->newest;
    if (server->newest)
        server->newest->newer = connection;
    else
        server->oldest = connection;
    server->newest = connection;
    server->open++;
    connection->bev = bufferevent_socket_new(server->base, fd, BEV_OPT_CLOSE_ON_FREE);
    connection->deadline = evtimer_new(server->base, on_deadline, connection);
    if (connection->bev == NULL || connection->deadline == NULL ||
        evtimer_add(connection->deadline, &server->idle_timeout) != 0) {
        if (connection->bev == NULL)
            evutil_closesocket(fd);
        close_connection(connection);
        return;
    }
    bufferevent_setcb(connection->bev, on_read, on_written, on_event, connection);
    bufferevent_setwatermark(connection->bev, EV_READ, 0, MAX_REQUEST_BYTES + 1);
    bufferevent_enable(connection->bev, EV_READ);
}

/* ---- the listener ---- */

static void resume_accepting(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct http_server *server = arg;
    evconnlistener_enable(server->listener);
}

/* accept() failed: most likely the process is out of descriptors (EMFILE,
 * ENFILE).  The listener pauses, and the connections still waiting for their
 * request are closed: the descriptors go to Kafka and Redis first. */
static void on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct http_server *server = arg;
    int error = EVUTIL_SOCKET_ERROR();
    int closed = 0;
    struct connection *connection, *next;
    for (connection = server->oldest; connection; connection = next) {
        next = connection->newer;
        if (!connection->replied) {
            close_connection(connection);
            closed++;
        }
    }
    log_warning("http: accept failed: %s; closed the %d connection(s) waiting for their "
                "request and not accepting for %d ms",
                strerror(error), closed, ACCEPT_PAUSE_MS);
    evconnlistener_disable(listener);
    struct timeval pause = {ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000};
    evtimer_add(server->resume_timer, &pause);
}

/* Parses "host:port" or "[v6]:port" into host and port; 0, or -1 with err. */
static int split_listen(const char *listen, char *host, size_t host_size, char *port,
                        size_t port_size, char *err, size_t err_size)
{
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= host_size || colon == listen ||
        strlen(colon + 1) >= port_size) {
        snprintf(err, err_size, "http_listen '%s': expected host:port", listen);
        return -1;
    }
    const char *host_start = listen;
    size_t host_length = (size_t)(colon - listen);
    if (listen[0] == '[' && colon[-1] == ']') { /* [::1]:9187 */
        host_start++;
        host_length -= 2;
    }
    memcpy(host, host_start, host_length);
    host[host_length] = '\0';
    memcpy(port, colon + 1, strlen(colon + 1) + 1);
    char *end;
    long number = strtol(port, &end, 10);
    if (*end != '\0' || number < 1 || number > 65535) {
        snprintf(err, err_size, "http_listen '%s': bad port", listen);
        return -1;
    }
    return 0;
}

static struct evconnlistener *listen_on(struct http_server *server, const char *host,
                                        const char *port)
{
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV};
    struct evutil_addrinfo *addresses = NULL;
    if (evutil_getaddrinfo(host, port, &hints, &addresses) != 0 || addresses == NULL)
        return NULL;
    struct evconnlistener *listener = evconnlistener_new_bind(
        server->base, on_accept, server,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
        addresses->ai_addr, (int)addresses->ai_addrlen);
    evutil_freeaddrinfo(addresses);
    return listener;
}

struct http_server *http_server_create(struct event_base *base, const struct config *config,
                                       const struct metrics_sources *sources, char *err,
                                       size_t err_size)
{
    char host[256], port[16];
    if (split_listen(config->http_listen, host, sizeof host, port, sizeof port, err,
                     err_size) != 0)
        return NULL;
    struct http_server *server = calloc(1, sizeof *server);
    if (server == NULL) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    server->base = base;
    server->sources = sources;
    server->max_connections = config->http_max_connections;
    server->idle_timeout = (struct timeval){config->http_idle_timeout_ms / 1000,
                                            (config->http_idle_timeout_ms % 1000) * 1000};
    server->resume_timer = evtimer_new(base, resume_accepting, server);
    server->listener = listen_on(server, host, port);
    if (server->resume_timer == NULL || server->listener == NULL) {
        snprintf(err, err_size, "http_listen %s: cannot listen (address in use or not local?)",
                 config->http_listen);
        http_server_destroy(server);
        return NULL;
    }
    evconnlistener_set_error_cb(server->listener, on_accept_error);
    log_notice("http: serving /metrics, /healthz and /readyz on %s (at most %d connections)",
               config->http_listen, server->max_connections);
    return server;
}

void http_server_destroy(struct http_server *server)
{
    if (server == NULL)
        return;
    for (struct connection *connection = server->oldest, *newer; connection; connection = newer) {
        newer = connection->newer;
        close_connection(connection);
    }
    if (server->listener)
        evconnlistener_free(server->listener);
    if (server->resume_timer)
        event_free(server->resume_timer);
    free(server);
}
