/* TLS for the Redis connection (see redis_tls.h).  duewatch keeps its own
 * OpenSSL SSL_CTX and hands hiredis one SSL object per connection
 * (redisInitiateSSL), so that besides the chain (redis_tls_ca_file) the server
 * certificate's name is checked too: redis_tls_server_name, or else the host
 * connected to.  Compiled without DUEWATCH_HIREDIS_SSL, or against hiredis
 * 0.14, only the "unsupported" answers remain. */
#include "redis_tls.h"

#include "config.h"

#include <hiredis/hiredis.h>
#include <stdio.h>

#if defined(DUEWATCH_HIREDIS_SSL) && HIREDIS_MAJOR >= 1
#define REDIS_TLS_AVAILABLE 1
#else
#define REDIS_TLS_AVAILABLE 0
#endif

#define HIREDIS_VERSION_TEXT_(a, b, c) #a "." #b "." #c
#define HIREDIS_VERSION_TEXT(a, b, c) HIREDIS_VERSION_TEXT_(a, b, c)
#define BUILT_HIREDIS HIREDIS_VERSION_TEXT(HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH)

bool redis_tls_supported(void)
{
    return REDIS_TLS_AVAILABLE;
}

const char *redis_tls_unsupported_reason(void)
{
#if REDIS_TLS_AVAILABLE
    return "";
#elif HIREDIS_MAJOR < 1
    return "duewatchd was built against hiredis " BUILT_HIREDIS " without TLS support; "
           "rebuild it against hiredis >= 1.0 with SSL (hiredis_ssl, as scripts/check-hiredis1.sh "
           "does) to use redis_tls";
#else
    return "duewatchd was built against hiredis " BUILT_HIREDIS " without its SSL library; "
           "rebuild it with HIREDIS_SSL=1 against hiredis_ssl (as scripts/check-hiredis1.sh "
           "does) to use redis_tls";
#endif
}

void redis_tls_describe_build(char *out, size_t out_size)
{
    snprintf(out, out_size, "redis TLS: %s (hiredis %s%s)", REDIS_TLS_AVAILABLE ? "yes" : "no",
             BUILT_HIREDIS, REDIS_TLS_AVAILABLE ? " with SSL" : ", no SSL");
}

#if REDIS_TLS_AVAILABLE

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

struct redis_tls {
    SSL_CTX *ssl_ctx;
    char *server_name; /* "" = the host connected to */
};

/* err gets "what: OpenSSL's reason". */
static void openssl_error(char *err, size_t err_size, const char *what, const char *file)
{
    char reason[256];
    redis_tls_last_error(reason, sizeof reason);
    snprintf(err, err_size, "redis TLS: %s '%s': %s", what, file,
             reason[0] ? reason : "unknown OpenSSL error");
}

struct redis_tls *redis_tls_create(const struct config *config, char *err, size_t err_size)
{
    struct redis_tls *tls = calloc(1, sizeof *tls);
    if (tls == NULL)
        goto oom;
    tls->server_name = strdup(config->redis_tls_server_name);
    tls->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (tls->server_name == NULL || tls->ssl_ctx == NULL)
        goto oom;
    SSL_CTX_set_min_proto_version(tls->ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls->ssl_ctx, SSL_VERIFY_PEER, NULL);
    ERR_clear_error();
    const char *ca = config->redis_tls_ca_file;
    if (ca[0] ? SSL_CTX_load_verify_locations(tls->ssl_ctx, ca, NULL) != 1
              : SSL_CTX_set_default_verify_paths(tls->ssl_ctx) != 1) {
        openssl_error(err, err_size, "cannot load the CA file", ca[0] ? ca : "(system default)");
        goto fail;
    }
    const char *cert = config->redis_tls_cert_file, *key = config->redis_tls_key_file;
    if (cert[0] && SSL_CTX_use_certificate_chain_file(tls->ssl_ctx, cert) != 1) {
        openssl_error(err, err_size, "cannot load the client certificate", cert);
        goto fail;
    }
    if (key[0] && (SSL_CTX_use_PrivateKey_file(tls->ssl_ctx, key, SSL_FILETYPE_PEM) != 1 ||
                   SSL_CTX_check_private_key(tls->ssl_ctx) != 1)) {
        openssl_error(err, err_size, "cannot load the client key (or it does not match the "
                      "certificate)", key);
        goto fail;
    }
    return tls;
oom:
    snprintf(err, err_size, "redis TLS: out of memory");
fail:
    redis_tls_destroy(tls);
    return NULL;
}

void redis_tls_destroy(struct redis_tls *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ssl_ctx);
    free(tls->server_name);
    free(tls);
}

/* What the server's certificate must name: server_name, or the host (an IP
 * address is matched against the certificate's IP entries). */
static bool expect_name(SSL *ssl, const char *server_name, const char *host)
{
    unsigned char address[16];
    if (server_name[0] == '\0' &&
        (inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    const char *name = server_name[0] ? server_name : host;
    return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
}

int redis_tls_start(struct redis_tls *tls, struct redisAsyncContext *context, const char *host,
                    char *err, size_t err_size)
{
    SSL *ssl = SSL_new(tls->ssl_ctx);
    if (ssl == NULL || !expect_name(ssl, tls->server_name, host)) {
        snprintf(err, err_size, "TLS: cannot set up the connection's TLS state");
        SSL_free(ssl);
        return -1;
    }
    if (redisInitiateSSL(&context->c, ssl) != REDIS_OK) {
        /* The handshake can fail at once (the server answered already). */
        char reason[256];
        redis_tls_last_error(reason, sizeof reason);
        snprintf(err, err_size, "TLS: %s", reason[0] ? reason : context->c.errstr);
        SSL_free(ssl); /* hiredis owns it only on success */
        return -1;
    }
    return 0;
}

void redis_tls_last_error(char *out, size_t out_size)
{
    unsigned long code = ERR_peek_last_error();
    out[0] = '\0';
    if (code != 0) {
        const char *reason = ERR_reason_error_string(code);
        snprintf(out, out_size, "%s", reason ? reason : "unknown OpenSSL error");
    }
    ERR_clear_error();
}

#else /* no TLS in this build */

struct redis_tls *redis_tls_create(const struct config *config, char *err, size_t err_size)
{
    (void)config;
    snprintf(err, err_size, "redis TLS: %s", redis_tls_unsupported_reason());
    return NULL;
}

void redis_tls_destroy(struct redis_tls *tls)
{
    (void)tls;
}

int redis_tls_start(struct redis_tls *tls, struct redisAsyncContext *context, const char *host,
                    char *err, size_t err_size)
{
    (void)tls;
    (void)context;
    (void)host;
    snprintf(err, err_size, "TLS: %s", redis_tls_unsupported_reason());
    return -1;
}

void redis_tls_last_error(char *out, size_t out_size)
{
    if (out_size > 0)
        out[0] = '\0';
}

#endif
