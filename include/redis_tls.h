/* TLS for the Redis connection (redis_tls_* settings).  TLS needs hiredis
 * >= 1.0 with its hiredis_ssl library; the Makefile defines
 * DUEWATCH_HIREDIS_SSL=1 when building against it (HIREDIS_SSL=1, as
 * scripts/check-hiredis1.sh does).  Built against Debian's hiredis 0.14 every
 * function here reports that TLS is unavailable, and config_load refuses the
 * settings with redis_tls_unsupported_reason(). */
#ifndef DUEWATCH_REDIS_TLS_H
#define DUEWATCH_REDIS_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct redisAsyncContext;
struct redis_tls;

/* True when this build can speak TLS to Redis. */
bool redis_tls_supported(void);

/* Why this build cannot speak TLS (names the hiredis version it was built
 * against and what to rebuild with); "" when it can. */
const char *redis_tls_unsupported_reason(void);

/* One line for --version: "redis TLS: yes (hiredis X.Y.Z with SSL)" or
 * "redis TLS: no (...)". */
void redis_tls_describe_build(char *out, size_t out_size);

/* The shared TLS context for config's redis_tls_* files: the CA that must have
 * signed the server's certificate, the client certificate and key (both or
 * neither), and the name the server's certificate must carry (SNI and
 * verification).  Returns NULL with the reason in err when a file cannot be
 * loaded or the build has no TLS. */
struct redis_tls *redis_tls_create(const struct config *config, char *err, size_t err_size);

/* Frees a context made by redis_tls_create (NULL is fine).  Connections that
 * use it keep their own reference. */
void redis_tls_destroy(struct redis_tls *tls);

/* Starts the TLS handshake on a freshly created, not yet attached, connection
 * to `host`; the handshake finishes as the loop drives the connection, and
 * fails unless the server's certificate chains to the CA and names
 * redis_tls_server_name (or, when that is empty, `host`).  Returns 0, or -1
 * with "TLS: <why>" in err, the same text a handshake failing later gives
 * (the caller frees the context). */
int redis_tls_start(struct redis_tls *tls, struct redisAsyncContext *context, const char *host,
                    char *err, size_t err_size);

/* The newest OpenSSL error of this thread as text ("certificate verify
 * failed", ...), taken off OpenSSL's queue, or "" when there is none: hiredis
 * reports a failed handshake as a bare I/O error, this says why. */
void redis_tls_last_error(char *out, size_t out_size);

#endif
