/* Configuration: one file (conf/duewatch.conf), `key = value` lines.
 * Every key is declared once in the table in daemon/config.c (name, type,
 * default, bounds, reloadable?, description); that table drives parsing,
 * validation, --check-config, the reference printed by --help-config and the
 * shipped conf file.  A load parses into a new struct; the caller swaps it in
 * only when the load succeeded (reload keeps the old one on error). */
#ifndef DUEWATCH_CONFIG_H
#define DUEWATCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* A librdkafka property passed through: `kafka.<name> = value` applies to the
 * consumer and the producer, `kafka.consumer.<name>` to the consumer only,
 * `kafka.producer.<name>` to the producer only. */
enum kafka_property_scope { KAFKA_SCOPE_BOTH, KAFKA_SCOPE_CONSUMER, KAFKA_SCOPE_PRODUCER };
struct kafka_property {
    enum kafka_property_scope scope;
    char *name;  /* librdkafka property name, e.g. "bootstrap.servers" */
    char *value;
    int line; /* of the file that set it; 0 = a default */
};

enum clock_mode { CLOCK_MODE_WALL, CLOCK_MODE_EVENT };

struct config {
    char *path;                 /* file it was loaded from */
    /* Kafka */
    char **input_topics;        /* NULL-terminated list; input_topics = a,b */
    size_t input_topic_count;
    char *dead_letter_topic;
    char *alert_topic;
    struct kafka_property *kafka_properties;
    size_t kafka_property_count;
    /* Redis */
    char *redis_host;
    int redis_port;
    char *redis_unix_socket;    /* "" = use host/port */
    char *redis_user;           /* "" = default user */
    char *redis_password;       /* "" = no AUTH */
    char *redis_sentinels;      /* "" = no Sentinel; else host:port[,host:port...] */
    char *redis_master_name;    /* the master's name at the Sentinels */
    char *redis_sentinel_username; /* "" = default user (Sentinel AUTH) */
    char *redis_sentinel_password; /* "" = no AUTH on the Sentinels */
    bool redis_tls;             /* TLS to Redis (needs a hiredis >= 1.0 + SSL build) */
    char *redis_tls_ca_file;    /* "" = the system's CA store */
    char *redis_tls_cert_file;  /* client certificate; "" = none */
    char *redis_tls_key_file;   /* its private key; "" = none */
    char *redis_tls_server_name; /* "" = the host connected to */
    int redis_database;
    int redis_connect_timeout_ms;
    int redis_reconnect_min_ms;
    int redis_reconnect_max_ms;
    int redis_script_timeout_ms; /* a batch reply slower than this is logged as slow */
    /* State layout */
    char *key_prefix;
    char *timezone;
    int dedupe_ttl_days;
    int counter_retention_days;
    /* Pipeline */
    int batch_max_events;
    int batch_linger_ms;
    int max_inflight_events;
    int max_message_bytes;
    int max_message_depth;
    int max_future_ms;
    /* Clocks */
    enum clock_mode clock_mode;
    char *rules_file;
    char *holidays_file;
    int event_time_lateness_ms;
    int event_time_idle_partition_ms;
    int max_alerts_per_claim;
    int backfill_window_ms;
    /* Operations */
    char *http_listen;          /* "127.0.0.1:9187"; "" = no HTTP */
    int http_max_connections;
    int http_idle_timeout_ms;
    int watchdog_interval_ms;   /* 0 = use WATCHDOG_USEC from systemd if set */
    int shutdown_timeout_ms;
    int log_level;              /* enum log_level */
};

/* Loads and validates FILE into a new config.  Returns NULL on error and writes
 * "FILE:LINE: key 'name': what is wrong" (or "FILE: ..." for file-level
 * errors such as a missing required key) into err.  Unknown keys, bad values,
 * values out of bounds, duplicate keys and librdkafka properties that duewatch
 * manages itself (enable.auto.offset.store, enable.auto.commit,
 * partition.assignment.strategy, enable.partition.eof, auto.offset.reset,
 * callbacks) are errors. */
struct config *config_load(const char *path, char *err, size_t err_size);

/* Frees a config; accepts NULL. */
void config_destroy(struct config *config);

/* Writes the names of the keys whose values differ between `old_config` and
 * `new_config` but cannot change without a restart, comma-separated, into buf.
 * Returns how many there are (0 = the reload can apply everything). */
int config_restart_only_changes(const struct config *old_config, const struct config *new_config,
                                char *buf, size_t buf_size);

/* For a reload: gives `fresh` the running values of every key that needs a
 * restart (and all librdkafka properties), so that only reloadable changes
 * take effect; `running` receives fresh's values and is then destroyed by the
 * caller. */
void config_keep_restart_only(struct config *fresh, struct config *running);

/* Prints every key with its default, bounds and description as a commented
 * config file (the shipped conf/duewatch.conf is this output). */
void config_write_reference(FILE *out);

/* Prints the effective configuration (passwords shown as "********"). */
void config_write_effective(const struct config *config, FILE *out);
/* The same with the secrets in clear (--print-config --show-secrets), for the
 * operator tool, which reads its connection settings from it.  It reveals
 * nothing the caller could not read: the file was read with the caller's own
 * privileges. */
void config_write_effective_with_secrets(const struct config *config, FILE *out);

/* True when the config holds a password or other secret (redis_password,
 * or a librdkafka property such as sasl.password). */
bool config_holds_secret(const struct config *config);

/* Value of a passed-through librdkafka property for `scope` (most specific
 * wins), or NULL when not set. */
const char *config_kafka_property(const struct config *config, enum kafka_property_scope scope,
                                  const char *name);

#endif
