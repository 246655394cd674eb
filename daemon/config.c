/* Configuration file loading, modelled on PgBouncer's config table.
 *
 * Every key is declared exactly once, in config_keys[] below: its name, type,
 * field in struct config, default (as text, parsed by the same code as the
 * file), bounds, whether a reload may change it, and its description.  That
 * one table drives parsing, defaults, validation, freeing, the restart-only
 * check on reload, the effective-config dump and the reference conf file, so a
 * new key is one table entry and cannot be half-documented.
 *
 * Keys beginning "kafka." other than the declared ones are librdkafka
 * properties passed through unchanged (see parse_kafka_property). */
#include "config.h"

#include "log.h"
#include "redis_tls.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes the rest of this file keeps for one "why this value is wrong" text. */
#define REASON_SIZE 512

/* What is shown instead of a secret in config_write_effective. */
#define MASKED_VALUE "********"

enum key_type {
    KEY_STRING, /* char * */
    KEY_INT,    /* int, within [min, max] */
    KEY_BOOL,   /* bool: true|false|yes|no|on|off|1|0 */
    KEY_ENUM,   /* int (or an enum): one of `words` */
    KEY_LIST,   /* char ** NULL-terminated, plus a size_t count */
    KEY_KAFKA,  /* no field: stored in kafka_properties as `kafka_name` */
};

/* Checks a string value (or one list item); writes why it is wrong into
 * reason and returns false when it is. */
typedef bool (*string_check)(const char *value, char *reason, size_t reason_size);

struct config_key {
    const char *name;
    enum key_type type;
    size_t offset;       /* of the field in struct config (not KEY_KAFKA) */
    size_t count_offset; /* KEY_LIST: of the size_t item count */
    const char *default_value;
    long long min, max;  /* KEY_INT */
    bool reloadable;
    bool secret;         /* masked in config_write_effective */
    bool relative_path;  /* a relative value is resolved against the file's directory */
    /* KEY_ENUM: the accepted words, NULL-terminated; parse_word maps a word to
     * the stored value (-1 when unknown), or NULL to store the word's index. */
    const char *const *words;
    int (*parse_word)(const char *word);
    string_check check;  /* KEY_STRING and each KEY_LIST item; NULL = anything */
    /* KEY_KAFKA: the librdkafka property and whom it applies to. */
    const char *kafka_name;
    enum kafka_property_scope kafka_scope;
    const char *section; /* starts a new section in the reference file */
    const char *description; /* one to three lines, '\n'-separated */
};

/* Field offsets, with a compile-time check that the field has the type the
 * key type writes through. */
#define STRING_FIELD(field)                                                                        \
    _Generic(((struct config *)0)->field, char *: offsetof(struct config, field))
#define INT_FIELD(field) _Generic(((struct config *)0)->field, int: offsetof(struct config, field))
#define BOOL_FIELD(field) _Generic(((struct config *)0)->field, bool: offsetof(struct config, field))
#define LIST_FIELD(field)                                                                          \
    _Generic(((struct config *)0)->field, char **: offsetof(struct config, field))
#define COUNT_FIELD(field)                                                                         \
    _Generic(((struct config *)0)->field, size_t: offsetof(struct config, field))
/* KEY_ENUM values are written through an int *, which is valid only for an
 * enum whose compatible type is int or unsigned int. */
_Static_assert(sizeof(enum clock_mode) == sizeof(int), "clock_mode is stored through an int *");
#define ENUM_FIELD(field)                                                                          \
    _Generic(((struct config *)0)->field, int: offsetof(struct config, field),                     \
             enum clock_mode: offsetof(struct config, field))

/* ---- value checks used by the table ---- */

static bool all_chars_in(const char *value, const char *allowed_punctuation)
{
    for (const char *p = value; *p != '\0'; p++) {
        char c = *p;
        bool alphanumeric =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alphanumeric && strchr(allowed_punctuation, c) == NULL)
            return false;
    }
    return true;
}

/* Kafka's own rule for topic names, checked here so a typo is reported with
 * its line instead of as a subscription error at run time. */
static bool check_topic_name(const char *value, char *reason, size_t reason_size)
{
    size_t length = strlen(value);
    if (length == 0 || length > 249 || !all_chars_in(value, "._-") || strcmp(value, ".") == 0 ||
        strcmp(value, "..") == 0) {
        snprintf(reason, reason_size,
                 "'%s' is not a Kafka topic name (1-249 characters of A-Z a-z 0-9 . _ -)", value);
        return false;
    }
    return true;
}

/* The prefix goes into every Redis key and the Lua scripts build keys from
 * it, so keep it to characters that need no quoting anywhere. */
static bool check_key_prefix(const char *value, char *reason, size_t reason_size)
{
    size_t length = strlen(value);
    if (length == 0 || length > 32 || !all_chars_in(value, "._:-")) {
        snprintf(reason, reason_size, "must be 1-32 characters of A-Z a-z 0-9 . _ : -");
        return false;
    }
    return true;
}

/* The name becomes TZ, which glibc reads as a path under /usr/share/zoneinfo:
 * refuse anything that could leave that directory.  Whether the zone exists
 * is checked by calendar_init(). */
static bool check_timezone(const char *value, char *reason, size_t reason_size)
{
    if (value[0] == '\0' || value[0] == '/' || strstr(value, "..") != NULL ||
        !all_chars_in(value, "/_+-")) {
        snprintf(reason, reason_size,
                 "'%s' is not a time zone name (like Asia/Shanghai: A-Z a-z 0-9 / _ + -)", value);
        return false;
    }
    return true;
}

static bool check_not_empty(const char *value, char *reason, size_t reason_size)
{
    if (value[0] == '\0') {
        snprintf(reason, reason_size, "must not be empty");
        return false;
    }
    return true;
}

/* sun_path holds 108 bytes including the terminating NUL. */
static bool check_unix_socket(const char *value, char *reason, size_t reason_size)
{
    if (strlen(value) > 107) {
        snprintf(reason, reason_size, "a Unix socket path is at most 107 bytes");
        return false;
    }
    return true;
}

/* "" (disabled), "host:port" or "[ipv6]:port". */
static bool check_listen_address(const char *value, char *reason, size_t reason_size)
{
    if (value[0] == '\0')
        return true;
    const char *colon = strrchr(value, ':');
    bool valid = colon != NULL && colon != value;
    if (valid) {
        size_t host_length = (size_t)(colon - value);
        bool bracketed = value[0] == '[';
        if (bracketed)
            valid = host_length > 2 && value[host_length - 1] == ']';
        else
            valid = memchr(value, ':', host_length) == NULL;
        for (size_t i = 0; valid && i < host_length; i++)
            valid = value[i] != ' ' && value[i] != '\t';
    }
    if (valid) {
        char *end = NULL;
        errno = 0;
        long port = colon[1] >= '0' && colon[1] <= '9' ? strtol(colon + 1, &end, 10) : 0;
        valid = errno == 0 && end != NULL && *end == '\0' && port >= 1 && port <= 65535;
    }
    if (!valid) {
        snprintf(reason, reason_size,
                 "'%s' is not host:port (port 1..65535, IPv6 as [address]:port; empty disables)",
                 value);
        return false;
    }
    return true;
}

/* "" (no Sentinel) or host:port[,host:port...], each item as
 * check_listen_address accepts it. */
static bool check_sentinel_list(const char *value, char *reason, size_t reason_size)
{
    char item[256];
    for (const char *start = value; *start != '\0';) {
        const char *comma = strchr(start, ',');
        size_t length = comma != NULL ? (size_t)(comma - start) : strlen(start);
        while (length > 0 && (*start == ' ' || *start == '\t')) {
            start++;
            length--;
        }
        while (length > 0 && (start[length - 1] == ' ' || start[length - 1] == '\t'))
            length--;
        if (length == 0 || length >= sizeof item) {
            snprintf(reason, reason_size, "an empty or overlong item in the list");
            return false;
        }
        memcpy(item, start, length);
        item[length] = '\0';
        if (!check_listen_address(item, reason, reason_size))
            return false;
        if (comma == NULL)
            break;
        start = comma + 1;
        if (*start == '\0') {
            snprintf(reason, reason_size, "an empty item in the list");
            return false;
        }
    }
    return true;
}

static int clock_mode_parse(const char *word)
{
    if (strcmp(word, "wall") == 0)
        return CLOCK_MODE_WALL;
    if (strcmp(word, "event") == 0)
        return CLOCK_MODE_EVENT;
    return -1;
}

static const char *const clock_mode_words[] = {"wall", "event", NULL};
static const char *const log_level_words[] = {"error", "warning", "notice", "info", "debug", NULL};

/* ---- the table ---- */

static const struct config_key config_keys[] = {
    {.name = "kafka.bootstrap.servers", .type = KEY_KAFKA, .kafka_name = "bootstrap.servers",
     .kafka_scope = KAFKA_SCOPE_BOTH, .default_value = "127.0.0.1:9092", .check = check_not_empty,
     .section = "Kafka",
     .description = "Kafka brokers to start from, host:port[,host:port...]; passed to\n"
                    "librdkafka as bootstrap.servers for the consumer and the producer."},
    {.name = "kafka.group.id", .type = KEY_KAFKA, .kafka_name = "group.id",
     .kafka_scope = KAFKA_SCOPE_CONSUMER, .default_value = "duewatch", .check = check_not_empty,
     .description = "Kafka consumer group; the consumer's committed offsets belong to it."},
    {.name = "input_topics", .type = KEY_LIST, .offset = LIST_FIELD(input_topics),
     .count_offset = COUNT_FIELD(input_topic_count), .default_value = "duewatch.events",
     .check = check_topic_name,
     .description = "Topics events are consumed from, comma-separated."},
    {.name = "dead_letter_topic", .type = KEY_STRING, .offset = STRING_FIELD(dead_letter_topic),
     .default_value = "duewatch.deadletter", .check = check_topic_name,
     .description = "Topic that receives, unchanged, every message that fails validation,\n"
                    "with the reason in a header."},
    {.name = "alert_topic", .type = KEY_STRING, .offset = STRING_FIELD(alert_topic),
     .default_value = "duewatch.alerts", .check = check_topic_name,
     .description = "Topic deadline alerts are produced to."},

    {.name = "redis_host", .type = KEY_STRING, .offset = STRING_FIELD(redis_host),
     .default_value = "127.0.0.1", .section = "Redis",
     .description = "Redis server host name or address (unused when redis_unix_socket is set)."},
    {.name = "redis_port", .type = KEY_INT, .offset = INT_FIELD(redis_port),
     .default_value = "6379", .min = 1, .max = 65535, .description = "Redis server TCP port."},
    {.name = "redis_unix_socket", .type = KEY_STRING, .offset = STRING_FIELD(redis_unix_socket),
     .default_value = "", .check = check_unix_socket,
     .description = "Path of the Redis Unix socket; when set it is used instead of\n"
                    "redis_host and redis_port."},
    {.name = "redis_user", .type = KEY_STRING, .offset = STRING_FIELD(redis_user),
     .default_value = "", .description = "Redis ACL user for AUTH; empty = the default user."},
    {.name = "redis_password", .type = KEY_STRING, .offset = STRING_FIELD(redis_password),
     .default_value = "", .secret = true,
     .description = "Redis password for AUTH; empty = no AUTH.  Shown masked in the\n"
                    "effective configuration."},
    {.name = "redis_sentinels", .type = KEY_STRING, .offset = STRING_FIELD(redis_sentinels),
     .default_value = "", .check = check_sentinel_list,
     .description = "Redis Sentinels, host:port[,host:port...]; when set, the master is\n"
                    "asked of them (redis_master_name) and followed across failovers, and\n"
                    "redis_host, redis_port and redis_unix_socket are not used."},
    {.name = "redis_master_name", .type = KEY_STRING, .offset = STRING_FIELD(redis_master_name),
     .default_value = "", .description = "The master's name in the Sentinels' configuration (sentinel monitor)."},
    {.name = "redis_sentinel_username", .type = KEY_STRING,
     .offset = STRING_FIELD(redis_sentinel_username), .default_value = "",
     .description = "ACL user for AUTH on the Sentinels; empty = the default user."},
    {.name = "redis_sentinel_password", .type = KEY_STRING,
     .offset = STRING_FIELD(redis_sentinel_password), .default_value = "", .secret = true,
     .description = "Password for AUTH on the Sentinels (not the master's: that is\n"
                    "redis_password); empty = no AUTH.  Shown masked."},
    {.name = "redis_tls", .type = KEY_BOOL, .offset = BOOL_FIELD(redis_tls),
     .default_value = "false",
     .description = "Connect to Redis over TLS (Redis's tls-port).  Needs duewatchd built\n"
                    "against hiredis >= 1.0 with SSL; other builds refuse this setting.\n"
                    "Sentinel connections stay plain TCP."},
    {.name = "redis_tls_ca_file", .type = KEY_STRING, .offset = STRING_FIELD(redis_tls_ca_file),
     .default_value = "", .relative_path = true,
     .description = "PEM file of the CA(s) that must have signed Redis's certificate;\n"
                    "empty = the system's CA store.  Relative to this file's directory."},
    {.name = "redis_tls_cert_file", .type = KEY_STRING,
     .offset = STRING_FIELD(redis_tls_cert_file), .default_value = "", .relative_path = true,
     .description = "PEM client certificate shown to Redis (tls-auth-clients); empty =\n"
                    "none.  Goes with redis_tls_key_file."},
    {.name = "redis_tls_key_file", .type = KEY_STRING, .offset = STRING_FIELD(redis_tls_key_file),
     .default_value = "", .relative_path = true,
     .description = "PEM private key of redis_tls_cert_file; empty = none."},
    {.name = "redis_tls_server_name", .type = KEY_STRING,
     .offset = STRING_FIELD(redis_tls_server_name), .default_value = "",
     .description = "Name Redis's certificate must carry (also sent as SNI); empty = the\n"
                    "host connected to (redis_host, or the master the Sentinels name)."},
    {.name = "redis_database", .type = KEY_INT, .offset = INT_FIELD(redis_database),
     .default_value = "0", .min = 0, .max = 15,
     .description = "Redis logical database selected after connecting."},
    {.name = "redis_connect_timeout_ms", .type = KEY_INT,
     .offset = INT_FIELD(redis_connect_timeout_ms), .default_value = "2000", .min = 100,
     .max = 60000, .reloadable = true,
     .description = "Time allowed to connect to Redis and finish setting up the connection\n"
                    "before the attempt is abandoned and retried."},
    {.name = "redis_reconnect_min_ms", .type = KEY_INT, .offset = INT_FIELD(redis_reconnect_min_ms),
     .default_value = "100", .min = 10, .max = 60000, .reloadable = true,
     .description = "Delay before the first Redis reconnect attempt after a failure; it\n"
                    "doubles with each failed attempt up to redis_reconnect_max_ms."},
    {.name = "redis_reconnect_max_ms", .type = KEY_INT, .offset = INT_FIELD(redis_reconnect_max_ms),
     .default_value = "5000", .min = 100, .max = 600000, .reloadable = true,
     .description = "Longest delay between Redis reconnect attempts; at least\n"
                    "redis_reconnect_min_ms."},
    {.name = "redis_script_timeout_ms", .type = KEY_INT,
     .offset = INT_FIELD(redis_script_timeout_ms), .default_value = "1000", .min = 10,
     .max = 60000, .reloadable = true,
     .description = "A batch whose Redis reply takes longer than this is logged as slow."},

    {.name = "key_prefix", .type = KEY_STRING, .offset = STRING_FIELD(key_prefix),
     .default_value = "dw:", .check = check_key_prefix, .section = "State",
     .description = "Prefix of every Redis key duewatch uses (1-32 characters of\n"
                    "A-Z a-z 0-9 . _ : -).  A new prefix starts from empty state."},
    {.name = "timezone", .type = KEY_STRING, .offset = STRING_FIELD(timezone),
     .default_value = "Asia/Shanghai", .check = check_timezone,
     .description = "IANA time zone of the local calendar (days, weeks, months, holidays);\n"
                    "it must exist in the system's tzdata."},
    {.name = "dedupe_ttl_days", .type = KEY_INT, .offset = INT_FIELD(dedupe_ttl_days),
     .default_value = "30", .min = 1, .max = 3650, .reloadable = true,
     .description = "How long event ids are remembered, to drop redelivered duplicates."},
    {.name = "counter_retention_days", .type = KEY_INT, .offset = INT_FIELD(counter_retention_days),
     .default_value = "400", .min = 1, .max = 3650, .reloadable = true,
     .description = "How long counters are kept in Redis."},

    {.name = "batch_max_events", .type = KEY_INT, .offset = INT_FIELD(batch_max_events),
     .default_value = "20000", .min = 1, .max = 100000, .reloadable = true, .section = "Pipeline",
     .description = "Most events applied to Redis by one script call (larger batches\n"
                    "write each counter once for more events: `make bench` ran fastest\n"
                    "at 20000, with each call ~60 ms in Redis)."},
    {.name = "batch_linger_ms", .type = KEY_INT, .offset = INT_FIELD(batch_linger_ms),
     .default_value = "5", .min = 0, .max = 10000, .reloadable = true,
     .description = "How long a partly filled batch waits for more events before it is\n"
                    "applied (0 = at once)."},
    {.name = "max_inflight_events", .type = KEY_INT, .offset = INT_FIELD(max_inflight_events),
     .default_value = "80000", .min = 100, .max = 10000000, .reloadable = true,
     .description = "Most events consumed but not yet applied to Redis; consuming stops\n"
                    "at this many until half are applied.  At least batch_max_events\n"
                    "(three batches are in flight: four batches keep Redis busy)."},
    {.name = "max_message_bytes", .type = KEY_INT, .offset = INT_FIELD(max_message_bytes),
     .default_value = "65536", .min = 64, .max = 16777216, .reloadable = true,
     .description = "Larger messages are rejected to the dead-letter topic."},
    {.name = "max_message_depth", .type = KEY_INT, .offset = INT_FIELD(max_message_depth),
     .default_value = "8", .min = 1, .max = 64, .reloadable = true,
     .description = "Deepest msgpack nesting accepted in a message (the top-level map is 1)."},
    {.name = "max_future_ms", .type = KEY_INT, .offset = INT_FIELD(max_future_ms),
     .default_value = "300000", .min = 0, .max = 86400000, .reloadable = true,
     .description = "An event whose ts is later than the wall clock plus this is rejected\n"
                    "to the dead-letter topic (ts_in_future), in both clock modes: a\n"
                    "timestamp from the future would fire its clocks' levels at once\n"
                    "(0 = no bound: only for replaying data dated ahead, in tests)."},

    {.name = "clock_mode", .type = KEY_ENUM, .offset = ENUM_FIELD(clock_mode),
     .default_value = "wall", .words = clock_mode_words, .parse_word = clock_mode_parse,
     .section = "Clocks and deadlines",
     .description = "wall: deadlines fall due by the system clock.  event: the clock is the\n"
                    "newest event time seen, less event_time_lateness_ms (replays, tests)."},
    {.name = "rules_file", .type = KEY_STRING, .offset = STRING_FIELD(rules_file),
     .default_value = "/etc/duewatch/rules.conf", .check = check_not_empty, .relative_path = true,
     .reloadable = true,
     .description = "Deadline rules.  A relative path is relative to this file's directory."},
    {.name = "holidays_file", .type = KEY_STRING, .offset = STRING_FIELD(holidays_file),
     .default_value = "/etc/duewatch/holidays-cn.conf", .check = check_not_empty,
     .relative_path = true, .reloadable = true,
     .description = "Public holidays and adjusted working days, for deadlines counted in\n"
                    "working days.  A relative path is relative to this file's directory."},
    {.name = "event_time_lateness_ms", .type = KEY_INT, .offset = INT_FIELD(event_time_lateness_ms),
     .default_value = "0", .min = 0, .max = 86400000, .reloadable = true,
     .description = "Event clock: how far the clock stays behind the newest event time, so\n"
                    "events that arrive a little late are still counted before deadlines."},
    {.name = "event_time_idle_partition_ms", .type = KEY_INT,
     .offset = INT_FIELD(event_time_idle_partition_ms), .default_value = "60000", .min = 0,
     .max = 86400000, .reloadable = true,
     .description = "Event clock: a partition without messages for this long stops holding\n"
                    "the clock back (0 = always wait for every partition)."},
    {.name = "max_alerts_per_claim", .type = KEY_INT, .offset = INT_FIELD(max_alerts_per_claim),
     .default_value = "1000", .min = 1, .max = 100000, .reloadable = true,
     .description = "Most due deadlines claimed from Redis in one pass; the rest wait for\n"
                    "the next pass."},
    {.name = "backfill_window_ms", .type = KEY_INT, .offset = INT_FIELD(backfill_window_ms),
     .default_value = "86400000", .min = 0, .max = 604800000, .reloadable = true,
     .description = "A clock start applied late (it waited in a backlog: failover,\n"
                    "rebalance, consumer lag, an outage) fires every level that fell due\n"
                    "since the start, in order, when the start is at most this old; an\n"
                    "older start (a replay of history) sends only the latest level due.\n"
                    "The default, one day, covers failovers and rebalances (seconds),\n"
                    "ordinary lag (minutes) and an outage of up to a day."},

    {.name = "http_listen", .type = KEY_STRING, .offset = STRING_FIELD(http_listen),
     .default_value = "127.0.0.1:9187", .check = check_listen_address, .section = "Operations",
     .description = "Address of the HTTP endpoint: host:port, or [ipv6]:port; empty = none."},
    {.name = "http_max_connections", .type = KEY_INT, .offset = INT_FIELD(http_max_connections),
     .default_value = "64", .min = 1, .max = 512,
     .description = "Most connections the HTTP endpoint holds open at once.  At the cap,\n"
                    "a new connection closes the oldest one still waiting for its request."},
    {.name = "http_idle_timeout_ms", .type = KEY_INT, .offset = INT_FIELD(http_idle_timeout_ms),
     .default_value = "10000", .min = 100, .max = 600000,
     .description = "An HTTP connection that has not sent a whole request within this\n"
                    "long, or not taken its reply, is closed."},
    {.name = "watchdog_interval_ms", .type = KEY_INT, .offset = INT_FIELD(watchdog_interval_ms),
     .default_value = "0", .min = 0, .max = 3600000, .reloadable = true,
     .description = "Interval of systemd watchdog pings; 0 = derive it from WATCHDOG_USEC\n"
                    "when systemd sets that."},
    {.name = "shutdown_timeout_ms", .type = KEY_INT, .offset = INT_FIELD(shutdown_timeout_ms),
     .default_value = "5000", .min = 100, .max = 600000, .reloadable = true,
     .description = "Time allowed on shutdown, and when a rebalance takes the partitions\n"
                    "away, to finish the work in flight (the batches consumed, with their\n"
                    "dead letters).  A shutdown ends within this plus about a second (the\n"
                    "Kafka close) whatever state Kafka and Redis are in; keep systemd's\n"
                    "TimeoutStopSec (20 s in the unit) above that sum."},
    {.name = "log_level", .type = KEY_ENUM, .offset = INT_FIELD(log_level), .default_value = "info",
     .words = log_level_words, .parse_word = log_level_parse, .reloadable = true,
     .description = "Most verbose log level written."},
};

#define KEY_COUNT (sizeof config_keys / sizeof config_keys[0])

/* Pairs of int keys where the first must not exceed the second. */
static const struct {
    const char *lower;
    const char *upper;
} ordered_keys[] = {
    {"redis_reconnect_min_ms", "redis_reconnect_max_ms"},
    {"batch_max_events", "max_inflight_events"},
};

/* librdkafka properties duewatch sets itself (offset storing after Redis has
 * applied a batch, the assignment strategy, where to start): a pass-through
 * value would silently break delivery guarantees, so it is an error.  Any
 * property ending in "_cb" is refused too (callbacks cannot be set as text). */
static const char *const managed_kafka_properties[] = {
    "enable.auto.offset.store", "enable.auto.commit", "partition.assignment.strategy",
    "enable.partition.eof",     "auto.offset.reset",  NULL,
};

/* Substrings of pass-through property names whose values are secrets. */
static const char *const secret_kafka_property_parts[] = {
    "password", "secret", "sasl.oauthbearer.config", "ssl.key.pem", NULL,
};

/* ---- small helpers ---- */

static void *field_address(struct config *config, size_t offset)
{
    return (char *)config + offset;
}

static const void *const_field_address(const struct config *config, size_t offset)
{
    return (const char *)config + offset;
}

static const struct config_key *find_key(const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(config_keys[i].name, name) == 0)
            return &config_keys[i];
    return NULL;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Trims [start, *end) in place; returns the new start and moves *end. */
static char *trim(char *start, char **end)
{
    while (start < *end && is_space(*start))
        start++;
    while (*end > start && is_space((*end)[-1]))
        (*end)--;
    return start;
}

static const char *kafka_scope_prefix(enum kafka_property_scope scope)
{
    switch (scope) {
    case KAFKA_SCOPE_CONSUMER:
        return "kafka.consumer.";
    case KAFKA_SCOPE_PRODUCER:
        return "kafka.producer.";
    case KAFKA_SCOPE_BOTH:
        break;
    }
    return "kafka.";
}

static struct kafka_property *find_kafka_property(const struct config *config,
                                                  enum kafka_property_scope scope, const char *name)
{
    for (size_t i = 0; i < config->kafka_property_count; i++)
        if (config->kafka_properties[i].scope == scope &&
            strcmp(config->kafka_properties[i].name, name) == 0)
            return &config->kafka_properties[i];
    return NULL;
}

/* The table entry that declares (scope, name), or NULL for a pass-through. */
static const struct config_key *declared_kafka_key(enum kafka_property_scope scope,
                                                   const char *name)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (config_keys[i].type == KEY_KAFKA && config_keys[i].kafka_scope == scope &&
            strcmp(config_keys[i].kafka_name, name) == 0)
            return &config_keys[i];
    return NULL;
}

static bool is_secret_kafka_property(const char *name)
{
    for (size_t i = 0; secret_kafka_property_parts[i] != NULL; i++)
        if (strcasestr(name, secret_kafka_property_parts[i]) != NULL)
            return true;
    return false;
}

static void free_string_list(char **list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; list[i] != NULL; i++)
        free(list[i]);
    free(list);
}

/* ---- loading ---- */

/* State of one config_load call. */
struct load_context {
    const char *path;
    char *base_directory;          /* absolute directory of the file, for relative paths */
    int key_lines[KEY_COUNT];      /* line that set each key; 0 = default */
    int *property_lines;           /* the same for each kafka_properties entry */
    size_t property_lines_capacity;
};

/* Sets (scope, name) = value: replaces an existing value, otherwise appends.
 * Properties for both clients are kept ahead of client-specific ones (each
 * group in file order) so that applying them in array order, later ones
 * overriding earlier ones, gives "the most specific wins". */
static bool set_kafka_property(struct config *config, struct load_context *context,
                               enum kafka_property_scope scope, const char *name, const char *value,
                               int line)
{
    struct kafka_property *existing = find_kafka_property(config, scope, name);
    char *value_copy = strdup(value);
    if (value_copy == NULL)
        return false;
    if (existing != NULL) {
        free(existing->value);
        existing->value = value_copy;
        existing->line = line;
        context->property_lines[existing - config->kafka_properties] = line;
        return true;
    }
    char *name_copy = strdup(name);
    size_t count = config->kafka_property_count;
    struct kafka_property *grown =
        realloc(config->kafka_properties, (count + 1) * sizeof *config->kafka_properties);
    if (grown != NULL)
        config->kafka_properties = grown;
    if (count + 1 > context->property_lines_capacity) {
        int *lines = realloc(context->property_lines, (count + 1) * sizeof *lines);
        if (lines != NULL) {
            context->property_lines = lines;
            context->property_lines_capacity = count + 1;
        }
    }
    if (name_copy == NULL || grown == NULL || context->property_lines_capacity < count + 1) {
        free(name_copy);
        free(value_copy);
        return false;
    }
    size_t position = count;
    if (scope == KAFKA_SCOPE_BOTH)
        for (position = 0; position < count; position++)
            if (config->kafka_properties[position].scope != KAFKA_SCOPE_BOTH)
                break;
    memmove(&config->kafka_properties[position + 1], &config->kafka_properties[position],
            (count - position) * sizeof *config->kafka_properties);
    memmove(&context->property_lines[position + 1], &context->property_lines[position],
            (count - position) * sizeof *context->property_lines);
    config->kafka_properties[position] = (struct kafka_property){
        .scope = scope, .name = name_copy, .value = value_copy, .line = line};
    context->property_lines[position] = line;
    config->kafka_property_count = count + 1;
    return true;
}

/* Parses a whole decimal number within the key's bounds. */
static bool parse_int(const struct config_key *key, const char *value, int *out, char *reason,
                      size_t reason_size)
{
    const char *digits = value[0] == '-' ? value + 1 : value;
    if (digits[0] < '0' || digits[0] > '9') {
        snprintf(reason, reason_size, "'%s' is not a whole number", value);
        return false;
    }
    char *end = NULL;
    errno = 0;
    long long number = strtoll(value, &end, 10);
    if (*end != '\0') {
        snprintf(reason, reason_size, "'%s' is not a whole number", value);
        return false;
    }
    if (errno == ERANGE || number < key->min || number > key->max) {
        snprintf(reason, reason_size, "%s is out of range %lld..%lld", value, key->min, key->max);
        return false;
    }
    *out = (int)number;
    return true;
}

/* Splits a comma-separated list into a new NULL-terminated array of checked,
 * distinct, non-empty items.  Returns NULL with a reason on error. */
static char **parse_list(const struct config_key *key, const char *value, size_t *count,
                         char *reason, size_t reason_size)
{
    size_t capacity = 2;
    for (const char *p = value; *p != '\0'; p++)
        capacity += *p == ',';
    char **items = calloc(capacity, sizeof *items);
    char *copy = strdup(value);
    size_t used = 0;
    if (items == NULL || copy == NULL) {
        snprintf(reason, reason_size, "out of memory");
        goto fail;
    }
    for (char *start = copy;;) {
        char *comma = strchr(start, ',');
        char *end = comma != NULL ? comma : start + strlen(start);
        char *item = trim(start, &end);
        *end = '\0';
        if (item[0] == '\0') {
            snprintf(reason, reason_size, "empty item in the list");
            goto fail;
        }
        if (key->check != NULL && !key->check(item, reason, reason_size))
            goto fail;
        for (size_t i = 0; i < used; i++)
            if (strcmp(items[i], item) == 0) {
                snprintf(reason, reason_size, "'%s' is listed twice", item);
                goto fail;
            }
        items[used] = strdup(item);
        if (items[used] == NULL) {
            snprintf(reason, reason_size, "out of memory");
            goto fail;
        }
        used++;
        if (comma == NULL)
            break;
        start = comma + 1;
    }
    free(copy);
    *count = used;
    return items;
fail:
    free(copy);
    free_string_list(items);
    return NULL;
}

static bool parse_bool(const char *value, bool *out)
{
    static const char *const true_words[] = {"true", "yes", "on", "1", NULL};
    static const char *const false_words[] = {"false", "no", "off", "0", NULL};
    for (size_t i = 0; true_words[i] != NULL; i++)
        if (strcmp(value, true_words[i]) == 0) {
            *out = true;
            return true;
        }
    for (size_t i = 0; false_words[i] != NULL; i++)
        if (strcmp(value, false_words[i]) == 0) {
            *out = false;
            return true;
        }
    return false;
}

static int enum_word_value(const struct config_key *key, size_t index)
{
    return key->parse_word != NULL ? key->parse_word(key->words[index]) : (int)index;
}

/* "wall|event" */
static void join_words(const struct config_key *key, char *buf, size_t buf_size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; key->words[i] != NULL && used < buf_size; i++) {
        int written =
            snprintf(buf + used, buf_size - used, "%s%s", i > 0 ? "|" : "", key->words[i]);
        if (written < 0)
            break;
        used += (size_t)written;
    }
}

/* Parses `value` for `key` and stores it in config, replacing the previous
 * value (the default, when called for the file).  Returns false with a reason. */
static bool set_value(struct config *config, struct load_context *context,
                      const struct config_key *key, const char *value, int line, char *reason,
                      size_t reason_size)
{
    switch (key->type) {
    case KEY_STRING: {
        if (key->check != NULL && !key->check(value, reason, reason_size))
            return false;
        char *copy;
        if (key->relative_path && value[0] != '/' && value[0] != '\0') {
            const char *directory = context->base_directory;
            const char *separator = directory[strlen(directory) - 1] == '/' ? "" : "/";
            if (asprintf(&copy, "%s%s%s", directory, separator, value) < 0)
                copy = NULL;
        } else {
            copy = strdup(value);
        }
        if (copy == NULL) {
            snprintf(reason, reason_size, "out of memory");
            return false;
        }
        char **slot = field_address(config, key->offset);
        free(*slot);
        *slot = copy;
        return true;
    }
    case KEY_INT:
        return parse_int(key, value, field_address(config, key->offset), reason, reason_size);
    case KEY_BOOL:
        if (!parse_bool(value, field_address(config, key->offset))) {
            snprintf(reason, reason_size, "'%s' is not one of true|false|yes|no|on|off|1|0", value);
            return false;
        }
        return true;
    case KEY_ENUM: {
        for (size_t i = 0; key->words[i] != NULL; i++)
            if (strcmp(value, key->words[i]) == 0) {
                *(int *)field_address(config, key->offset) = enum_word_value(key, i);
                return true;
            }
        char words[128];
        join_words(key, words, sizeof words);
        snprintf(reason, reason_size, "'%s' is not one of %s", value, words);
        return false;
    }
    case KEY_LIST: {
        size_t count = 0;
        char **items = parse_list(key, value, &count, reason, reason_size);
        if (items == NULL)
            return false;
        char ***slot = field_address(config, key->offset);
        free_string_list(*slot);
        *slot = items;
        *(size_t *)field_address(config, key->count_offset) = count;
        return true;
    }
    case KEY_KAFKA:
        if (key->check != NULL && !key->check(value, reason, reason_size))
            return false;
        if (!set_kafka_property(config, context, key->kafka_scope, key->kafka_name, value, line)) {
            snprintf(reason, reason_size, "out of memory");
            return false;
        }
        return true;
    }
    snprintf(reason, reason_size, "internal error: unknown key type");
    return false;
}

/* A `kafka.` key that is not in the table: a librdkafka property. */
static bool parse_kafka_property(struct config *config, struct load_context *context,
                                 const char *key_name, const char *value, int line, char *reason,
                                 size_t reason_size)
{
    enum kafka_property_scope scope = KAFKA_SCOPE_BOTH;
    const char *name = key_name + strlen("kafka.");
    if (strncmp(key_name, "kafka.consumer.", strlen("kafka.consumer.")) == 0) {
        scope = KAFKA_SCOPE_CONSUMER;
        name = key_name + strlen("kafka.consumer.");
    } else if (strncmp(key_name, "kafka.producer.", strlen("kafka.producer.")) == 0) {
        scope = KAFKA_SCOPE_PRODUCER;
        name = key_name + strlen("kafka.producer.");
    }
    if (name[0] == '\0') {
        snprintf(reason, reason_size, "no librdkafka property name after '%s'",
                 kafka_scope_prefix(scope));
        return false;
    }
    size_t length = strlen(name);
    bool managed = length >= 3 && strcmp(name + length - 3, "_cb") == 0;
    for (size_t i = 0; !managed && managed_kafka_properties[i] != NULL; i++)
        managed = strcmp(name, managed_kafka_properties[i]) == 0;
    if (managed) {
        snprintf(reason, reason_size, "librdkafka property '%s' is managed by duewatch", name);
        return false;
    }
    const struct config_key *declared = declared_kafka_key(scope, name);
    if (declared != NULL) {
        snprintf(reason, reason_size, "same property as '%s'; set that instead", declared->name);
        return false;
    }
    struct kafka_property *existing = find_kafka_property(config, scope, name);
    if (existing != NULL) {
        snprintf(reason, reason_size, "set twice (first on line %d)",
                 context->property_lines[existing - config->kafka_properties]);
        return false;
    }
    if (!set_kafka_property(config, context, scope, name, value, line)) {
        snprintf(reason, reason_size, "out of memory");
        return false;
    }
    return true;
}

/* "FILE:LINE: " or, for line 0 (a default or the whole file), "FILE: ". */
static void write_error(char *err, size_t err_size, const char *path, int line, const char *format,
                        ...) __attribute__((format(printf, 5, 6)));
static void write_error(char *err, size_t err_size, const char *path, int line, const char *format,
                        ...)
{
    if (err == NULL || err_size == 0)
        return;
    int prefix = line > 0 ? snprintf(err, err_size, "%s:%d: ", path, line)
                          : snprintf(err, err_size, "%s: ", path);
    if (prefix < 0 || (size_t)prefix >= err_size)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(err + prefix, err_size - (size_t)prefix, format, args);
    va_end(args);
}

/* UTF-8 as RFC 3629 defines it: no overlong forms, surrogates or values
 * above U+10FFFF. */
static bool is_valid_utf8(const unsigned char *text, size_t length)
{
    size_t i = 0;
    while (i < length) {
        unsigned char c = text[i];
        size_t extra;
        unsigned min_second = 0x80, max_second = 0xBF;
        if (c < 0x80)
            extra = 0;
        else if (c >= 0xC2 && c <= 0xDF)
            extra = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0)
                min_second = 0xA0;
            if (c == 0xED)
                max_second = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0)
                min_second = 0x90;
            if (c == 0xF4)
                max_second = 0x8F;
        } else
            return false;
        if (length - i <= extra)
            return false;
        for (size_t k = 1; k <= extra; k++) {
            unsigned char next = text[i + k];
            unsigned low = k == 1 ? min_second : 0x80, high = k == 1 ? max_second : 0xBF;
            if (next < low || next > high)
                return false;
        }
        i += extra + 1;
    }
    return true;
}

/* The redis_tls_* keys: refused by a build without TLS (saying why), and
 * otherwise a certificate goes with a key and TLS with a TCP connection. */
static bool check_tls_rules(const struct config *config, const struct load_context *context,
                            char *err, size_t err_size)
{
    /* The first TLS key in use names the error; redis_tls = no alone is not a use. */
    const char *used = config->redis_tls                  ? "redis_tls"
                       : config->redis_tls_ca_file[0]     ? "redis_tls_ca_file"
                       : config->redis_tls_cert_file[0]   ? "redis_tls_cert_file"
                       : config->redis_tls_key_file[0]    ? "redis_tls_key_file"
                       : config->redis_tls_server_name[0] ? "redis_tls_server_name"
                                                          : NULL;
    const char *problem = NULL;
    if (used == NULL)
        return true;
    if (!redis_tls_supported())
        problem = redis_tls_unsupported_reason();
    else if (!config->redis_tls)
        problem = "set, but redis_tls is not yes";
    else if (config->redis_unix_socket[0])
        problem = "TLS is for TCP connections: redis_unix_socket must be empty";
    else if ((config->redis_tls_cert_file[0] == '\0') != (config->redis_tls_key_file[0] == '\0')) {
        used = config->redis_tls_cert_file[0] ? "redis_tls_cert_file" : "redis_tls_key_file";
        problem = "redis_tls_cert_file and redis_tls_key_file go together (both or neither)";
    }
    if (problem == NULL)
        return true;
    const struct config_key *key = find_key(used);
    write_error(err, err_size, context->path, context->key_lines[key - config_keys],
                "key '%s': %s", key->name, problem);
    return false;
}

/* Checks the rules that involve more than one key.  The error points at the
 * line that set the offending key (the later one when both were set). */
static bool check_cross_key_rules(const struct config *config, const struct load_context *context,
                                  char *err, size_t err_size)
{
    for (size_t i = 0; i < sizeof ordered_keys / sizeof ordered_keys[0]; i++) {
        const struct config_key *lower = find_key(ordered_keys[i].lower);
        const struct config_key *upper = find_key(ordered_keys[i].upper);
        int lower_value = *(const int *)const_field_address(config, lower->offset);
        int upper_value = *(const int *)const_field_address(config, upper->offset);
        if (lower_value <= upper_value)
            continue;
        int lower_line = context->key_lines[lower - config_keys];
        int upper_line = context->key_lines[upper - config_keys];
        if (upper_line >= lower_line)
            write_error(err, err_size, context->path, upper_line, "key '%s': must be >= %s (%d)",
                        upper->name, lower->name, lower_value);
        else
            write_error(err, err_size, context->path, lower_line, "key '%s': must be <= %s (%d)",
                        lower->name, upper->name, upper_value);
        return false;
    }
    if (config->redis_sentinels[0] != '\0' &&
        (config->redis_master_name[0] == '\0' || config->redis_unix_socket[0] != '\0')) {
        const struct config_key *sentinels = find_key("redis_sentinels");
        write_error(err, err_size, context->path, context->key_lines[sentinels - config_keys],
                    "key 'redis_sentinels': needs redis_master_name and an empty "
                    "redis_unix_socket");
        return false;
    }
    if (!check_tls_rules(config, context, err, err_size))
        return false;
    if (config->redis_host[0] == '\0' && config->redis_unix_socket[0] == '\0') {
        const struct config_key *host = find_key("redis_host");
        write_error(err, err_size, context->path, context->key_lines[host - config_keys],
                    "key 'redis_host': must not be empty when redis_unix_socket is empty");
        return false;
    }
    return true;
}

/* The absolute directory holding `path`. */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *directory = NULL;
    if (slash == path)
        return strdup("/");
    if (slash != NULL && path[0] == '/')
        return strndup(path, (size_t)(slash - path));
    char *cwd = getcwd(NULL, 0);
    if (cwd == NULL)
        return NULL;
    if (slash == NULL)
        return cwd;
    if (asprintf(&directory, "%s/%.*s", cwd, (int)(slash - path), path) < 0)
        directory = NULL;
    free(cwd);
    return directory;
}

/* Parses one line; returns false with err written. */
static bool parse_line(struct config *config, struct load_context *context, char *line,
                       size_t length, int line_number, char *err, size_t err_size)
{
    char reason[REASON_SIZE];
    if (memchr(line, '\0', length) != NULL || !is_valid_utf8((const unsigned char *)line, length)) {
        write_error(err, err_size, context->path, line_number, "not UTF-8 text");
        return false;
    }
    char *end = line + length;
    char *start = trim(line, &end);
    *end = '\0';
    if (start[0] == '\0' || start[0] == '#')
        return true;
    for (const char *p = start; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t') {
            write_error(err, err_size, context->path, line_number, "control character in line");
            return false;
        }
    char *equals = strchr(start, '=');
    char *key_end = equals;
    char *key_name = equals != NULL ? trim(start, &key_end) : NULL;
    if (equals == NULL || key_name == key_end) {
        write_error(err, err_size, context->path, line_number, "expected 'key = value'");
        return false;
    }
    *key_end = '\0';
    char *value_end = end;
    char *value = trim(equals + 1, &value_end);
    *value_end = '\0';
    /* Double quotes keep leading and trailing spaces; there are no escapes:
     * exactly the outer pair is removed. */
    if (value[0] == '"') {
        size_t value_length = (size_t)(value_end - value);
        if (value_length < 2 || value[value_length - 1] != '"') {
            write_error(err, err_size, context->path, line_number,
                        "key '%s': quoted value has no closing '\"'", key_name);
            return false;
        }
        value[value_length - 1] = '\0';
        value++;
    }

    const struct config_key *key = find_key(key_name);
    if (key != NULL) {
        int *set_on = &context->key_lines[key - config_keys];
        if (*set_on != 0) {
            write_error(err, err_size, context->path, line_number,
                        "key '%s': set twice (first on line %d)", key_name, *set_on);
            return false;
        }
        if (!set_value(config, context, key, value, line_number, reason, sizeof reason)) {
            write_error(err, err_size, context->path, line_number, "key '%s': %s", key_name,
                        reason);
            return false;
        }
        *set_on = line_number;
        return true;
    }
    if (strncmp(key_name, "kafka.", strlen("kafka.")) == 0) {
        if (!parse_kafka_property(config, context, key_name, value, line_number, reason,
                                  sizeof reason)) {
            write_error(err, err_size, context->path, line_number, "key '%s': %s", key_name,
                        reason);
            return false;
        }
        return true;
    }
    write_error(err, err_size, context->path, line_number, "key '%s': unknown key", key_name);
    return false;
}

struct config *config_load(const char *path, char *err, size_t err_size)
{
    struct load_context context = {.path = path};
    struct config *config = NULL;
    FILE *file = NULL;
    char *line = NULL;
    size_t line_capacity = 0;
    char reason[REASON_SIZE];

    file = fopen(path, "r");
    if (file == NULL) {
        write_error(err, err_size, path, 0, "cannot open: %s", strerror(errno));
        goto fail;
    }
    context.base_directory = directory_of(path);
    if (context.base_directory == NULL) {
        write_error(err, err_size, path, 0, "cannot resolve its directory: %s", strerror(errno));
        goto fail;
    }
    config = calloc(1, sizeof *config);
    if (config == NULL || (config->path = strdup(path)) == NULL) {
        write_error(err, err_size, path, 0, "out of memory");
        goto fail;
    }
    /* Defaults first, through the same parser, so the file only overrides. */
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (!set_value(config, &context, &config_keys[i], config_keys[i].default_value, 0, reason,
                       sizeof reason)) {
            write_error(err, err_size, path, 0, "default of key '%s': %s", config_keys[i].name,
                        reason);
            goto fail;
        }

    ssize_t length;
    int line_number = 0;
    errno = 0;
    while ((length = getline(&line, &line_capacity, file)) >= 0) {
        line_number++;
        char *text = line;
        /* A byte order mark, as some editors write, is not part of the text. */
        if (line_number == 1 && length >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
            text += 3;
            length -= 3;
        }
        if (!parse_line(config, &context, text, (size_t)length, line_number, err, err_size))
            goto fail;
    }
    if (ferror(file)) {
        write_error(err, err_size, path, 0, "cannot read: %s", strerror(errno));
        goto fail;
    }
    if (!check_cross_key_rules(config, &context, err, err_size))
        goto fail;

    free(line);
    fclose(file);
    free(context.base_directory);
    free(context.property_lines);
    return config;

fail:
    free(line);
    if (file != NULL)
        fclose(file);
    free(context.base_directory);
    free(context.property_lines);
    config_destroy(config);
    return NULL;
}

void config_destroy(struct config *config)
{
    if (config == NULL)
        return;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];
        if (key->type == KEY_STRING)
            free(*(char **)field_address(config, key->offset));
        else if (key->type == KEY_LIST)
            free_string_list(*(char ***)field_address(config, key->offset));
    }
    for (size_t i = 0; i < config->kafka_property_count; i++) {
        free(config->kafka_properties[i].name);
        free(config->kafka_properties[i].value);
    }
    free(config->kafka_properties);
    free(config->path);
    free(config);
}

const char *config_kafka_property(const struct config *config, enum kafka_property_scope scope,
                                  const char *name)
{
    const struct kafka_property *property = find_kafka_property(config, scope, name);
    if (property == NULL && scope != KAFKA_SCOPE_BOTH)
        property = find_kafka_property(config, KAFKA_SCOPE_BOTH, name);
    return property != NULL ? property->value : NULL;
}

/* ---- reload ---- */

static bool values_equal(const struct config *a, const struct config *b,
                         const struct config_key *key)
{
    switch (key->type) {
    case KEY_STRING:
        return strcmp(*(char *const *)const_field_address(a, key->offset),
                      *(char *const *)const_field_address(b, key->offset)) == 0;
    case KEY_INT:
    case KEY_ENUM:
        return *(const int *)const_field_address(a, key->offset) ==
               *(const int *)const_field_address(b, key->offset);
    case KEY_BOOL:
        return *(const bool *)const_field_address(a, key->offset) ==
               *(const bool *)const_field_address(b, key->offset);
    case KEY_LIST: {
        char *const *list_a = *(char **const *)const_field_address(a, key->offset);
        char *const *list_b = *(char **const *)const_field_address(b, key->offset);
        size_t i = 0;
        for (; list_a[i] != NULL && list_b[i] != NULL; i++)
            if (strcmp(list_a[i], list_b[i]) != 0)
                return false;
        return list_a[i] == NULL && list_b[i] == NULL;
    }
    case KEY_KAFKA: {
        const struct kafka_property *property_a =
            find_kafka_property(a, key->kafka_scope, key->kafka_name);
        const struct kafka_property *property_b =
            find_kafka_property(b, key->kafka_scope, key->kafka_name);
        return property_a != NULL && property_b != NULL &&
               strcmp(property_a->value, property_b->value) == 0;
    }
    }
    return false;
}

/* Appends ", name" (or "name" first) to buf, truncating safely. */
static void append_name(char *buf, size_t buf_size, int already_listed, const char *prefix,
                        const char *name)
{
    if (buf_size == 0)
        return;
    size_t used = strlen(buf);
    if (used < buf_size)
        snprintf(buf + used, buf_size - used, "%s%s%s", already_listed > 0 ? ", " : "", prefix,
                 name);
}

/* Whether a pass-through property of `config` has no equal in `other`. */
static bool kafka_property_changed(const struct kafka_property *property,
                                   const struct config *other)
{
    const struct kafka_property *match =
        find_kafka_property(other, property->scope, property->name);
    return match == NULL || strcmp(match->value, property->value) != 0;
}

int config_restart_only_changes(const struct config *old_config, const struct config *new_config,
                                char *buf, size_t buf_size)
{
    int changes = 0;
    if (buf_size > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];
        if (!key->reloadable && !values_equal(old_config, new_config, key))
            append_name(buf, buf_size, changes++, "", key->name);
    }
    /* Pass-through properties all need a restart: changed or removed ones,
     * then added ones. */
    for (size_t i = 0; i < old_config->kafka_property_count; i++) {
        const struct kafka_property *property = &old_config->kafka_properties[i];
        if (declared_kafka_key(property->scope, property->name) == NULL &&
            kafka_property_changed(property, new_config))
            append_name(buf, buf_size, changes++, kafka_scope_prefix(property->scope),
                        property->name);
    }
    for (size_t i = 0; i < new_config->kafka_property_count; i++) {
        const struct kafka_property *property = &new_config->kafka_properties[i];
        if (declared_kafka_key(property->scope, property->name) == NULL &&
            find_kafka_property(old_config, property->scope, property->name) == NULL)
            append_name(buf, buf_size, changes++, kafka_scope_prefix(property->scope),
                        property->name);
    }
    return changes;
}

static void swap_bytes(void *a, void *b, size_t size)
{
    unsigned char *x = a, *y = b;
    for (size_t i = 0; i < size; i++) {
        unsigned char keep = x[i];
        x[i] = y[i];
        y[i] = keep;
    }
}

void config_keep_restart_only(struct config *fresh, struct config *running)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];
        if (key->reloadable)
            continue;
        switch (key->type) {
        case KEY_STRING:
            swap_bytes(field_address(fresh, key->offset), field_address(running, key->offset),
                       sizeof(char *));
            break;
        case KEY_INT:
        case KEY_ENUM:
            swap_bytes(field_address(fresh, key->offset), field_address(running, key->offset),
                       sizeof(int));
            break;
        case KEY_BOOL:
            swap_bytes(field_address(fresh, key->offset), field_address(running, key->offset),
                       sizeof(bool));
            break;
        case KEY_LIST:
            swap_bytes(field_address(fresh, key->offset), field_address(running, key->offset),
                       sizeof(char **));
            swap_bytes(field_address(fresh, key->count_offset),
                       field_address(running, key->count_offset), sizeof(size_t));
            break;
        case KEY_KAFKA:
            break; /* the whole pass-through list is swapped below */
        }
    }
    /* Every librdkafka property needs a restart. */
    struct kafka_property *properties = fresh->kafka_properties;
    size_t property_count = fresh->kafka_property_count;
    fresh->kafka_properties = running->kafka_properties;
    fresh->kafka_property_count = running->kafka_property_count;
    running->kafka_properties = properties;
    running->kafka_property_count = property_count;
}

/* ---- writing ---- */

/* Writes a value so that config_load reads it back unchanged: quoted when it
 * is empty, has spaces at either end or starts with a quote. */
static void write_value_text(FILE *out, const char *value)
{
    size_t length = strlen(value);
    bool quote =
        length == 0 || is_space(value[0]) || is_space(value[length - 1]) || value[0] == '"';
    fprintf(out, quote ? "\"%s\"" : "%s", value);
}

static void write_key_value(FILE *out, const struct config *config, const struct config_key *key,
                            bool mask_secrets)
{
    fprintf(out, "%s = ", key->name);
    switch (key->type) {
    case KEY_STRING: {
        const char *value = *(char *const *)const_field_address(config, key->offset);
        bool masked = key->secret && mask_secrets && value[0] != '\0';
        write_value_text(out, masked ? MASKED_VALUE : value);
        break;
    }
    case KEY_INT:
        fprintf(out, "%d", *(const int *)const_field_address(config, key->offset));
        break;
    case KEY_BOOL:
        fputs(*(const bool *)const_field_address(config, key->offset) ? "true" : "false", out);
        break;
    case KEY_ENUM: {
        int value = *(const int *)const_field_address(config, key->offset);
        for (size_t i = 0; key->words[i] != NULL; i++)
            if (enum_word_value(key, i) == value) {
                fputs(key->words[i], out);
                break;
            }
        break;
    }
    case KEY_LIST: {
        char *const *items = *(char **const *)const_field_address(config, key->offset);
        for (size_t i = 0; items[i] != NULL; i++)
            fprintf(out, "%s%s", i > 0 ? ", " : "", items[i]);
        break;
    }
    case KEY_KAFKA: {
        const struct kafka_property *property =
            find_kafka_property(config, key->kafka_scope, key->kafka_name);
        write_value_text(out, property != NULL ? property->value : "");
        break;
    }
    }
    fputc('\n', out);
}

static void write_comment_lines(FILE *out, const char *text)
{
    while (*text != '\0') {
        const char *newline = strchr(text, '\n');
        int length = newline != NULL ? (int)(newline - text) : (int)strlen(text);
        fprintf(out, "# %.*s\n", length, text);
        text += length + (newline != NULL);
    }
}

/* Writes "# <lead> a, b, c<tail>" as comment lines of at most 78 columns. */
static void write_wrapped_words(FILE *out, const char *lead, const char *const *words,
                                const char *tail)
{
    int column = fprintf(out, "# %s", lead);
    for (size_t i = 0; words[i] != NULL; i++) {
        const char *after = words[i + 1] != NULL ? "," : tail;
        int width = (int)(strlen(words[i]) + strlen(after)) + 1;
        if (column + width > 78)
            column = fprintf(out, "\n#");
        column += fprintf(out, " %s%s", words[i], after);
    }
    fputc('\n', out);
}

static void write_kafka_pass_through_notes(FILE *out)
{
    fputs("\n"
          "# Any other kafka.<property> line is handed to librdkafka as <property>:\n"
          "# kafka.<property> applies to the consumer and the producer,\n"
          "# kafka.consumer.<property> to the consumer only and\n"
          "# kafka.producer.<property> to the producer only (the more specific wins).\n"
          "# They need a restart.  Refused, because duewatch sets them itself:\n",
          out);
    write_wrapped_words(out, "callbacks (*_cb),", managed_kafka_properties, ".");
    write_wrapped_words(out, "Shown masked: values of properties whose name contains",
                        secret_kafka_property_parts, ".");
    fputs("# Example, SASL over TLS:\n"
          "#kafka.security.protocol = SASL_SSL\n"
          "#kafka.sasl.mechanisms = SCRAM-SHA-512\n"
          "#kafka.sasl.username = duewatch\n"
          "#kafka.sasl.password = change-me\n"
          "#kafka.ssl.ca.location = /etc/duewatch/kafka-ca.pem\n",
          out);
}

void config_write_reference(FILE *out)
{
    fputs("# duewatch configuration: duewatchd reads this file at start and on reload.\n"
          "#\n"
          "# One `key = value` per line; lines starting with # are comments.  Double\n"
          "# quotes around a value keep spaces at its ends (there are no escapes: the\n"
          "# outer pair is removed).  An unknown key, a key set twice or a bad value\n"
          "# stops the daemon from starting, and a reload with such an error keeps the\n"
          "# running configuration.  \"reload: yes\" keys take effect on reload; the\n"
          "# others need a restart.\n"
          "#\n"
          "# Every key is listed with its default, so this file is complete as it\n"
          "# stands.  It is generated from the key table in daemon/config.c.\n",
          out);
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const struct config_key *key = &config_keys[i];
        if (key->section != NULL)
            fprintf(out, "\n# ==== %s ====\n", key->section);
        fputc('\n', out);
        write_comment_lines(out, key->description);
        const char *default_text = key->default_value[0] != '\0' ? key->default_value : "\"\"";
        fprintf(out, "# default: %s", default_text);
        if (key->type == KEY_INT)
            fprintf(out, "; range: %lld..%lld", key->min, key->max);
        else if (key->type == KEY_ENUM) {
            char words[128];
            join_words(key, words, sizeof words);
            fprintf(out, "; values: %s", words);
        } else if (key->type == KEY_BOOL)
            fputs("; values: true|false", out);
        fprintf(out, "; reload: %s\n", key->reloadable ? "yes" : "restart");
        fprintf(out, "%s = ", key->name);
        write_value_text(out, key->default_value);
        fputc('\n', out);
        /* The pass-through rules follow the declared kafka.* keys. */
        if (key->type == KEY_KAFKA && (i + 1 == KEY_COUNT || config_keys[i + 1].type != KEY_KAFKA))
            write_kafka_pass_through_notes(out);
    }
}

static void write_effective(const struct config *config, FILE *out, bool mask_secrets)
{
    fprintf(out, "# duewatch effective configuration, loaded from %s\n", config->path);
    for (size_t i = 0; i < KEY_COUNT; i++)
        write_key_value(out, config, &config_keys[i], mask_secrets);
    for (size_t i = 0; i < config->kafka_property_count; i++) {
        const struct kafka_property *property = &config->kafka_properties[i];
        if (declared_kafka_key(property->scope, property->name) != NULL)
            continue;
        fprintf(out, "%s%s = ", kafka_scope_prefix(property->scope), property->name);
        bool masked = mask_secrets && is_secret_kafka_property(property->name) &&
                      property->value[0] != '\0';
        write_value_text(out, masked ? MASKED_VALUE : property->value);
        fputc('\n', out);
    }
}

void config_write_effective(const struct config *config, FILE *out)
{
    write_effective(config, out, true);
}

void config_write_effective_with_secrets(const struct config *config, FILE *out)
{
    write_effective(config, out, false);
}

bool config_holds_secret(const struct config *config)
{
    if (config->redis_password[0] != '\0' || config->redis_sentinel_password[0] != '\0')
        return true;
    for (size_t i = 0; i < config->kafka_property_count; i++)
        if (is_secret_kafka_property(config->kafka_properties[i].name) &&
            config->kafka_properties[i].value[0] != '\0')
            return true;
    return false;
}
