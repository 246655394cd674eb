/* Unit tests for daemon/config.c: defaults, every value type, the exact error
 * message of each kind of mistake, bounds, cross-key rules, librdkafka
 * pass-through properties, the restart-only check on reload, masking in the
 * effective dump, and that conf/duewatch.conf is exactly the reference output.
 *
 * Files are written into a fresh temporary directory; files that live in the
 * source tree (conf/duewatch.conf, tests/unit/config_samples/) are found
 * under $DUEWATCH_SOURCE_DIR, else the compile-time DUEWATCH_SOURCE_DIR, else
 * the current directory (the repository root when make runs the tests). */
#include "config.h"

#include "log.h"
#include "redis_tls.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

static char temp_directory[64]; /* "/tmp/test_config.XXXXXX" */
/* The file most tests write their text into and load. */
static char temp_config_path[128];

/* ---- helpers ---- */

static const char *source_directory(void)
{
    const char *directory = getenv("DUEWATCH_SOURCE_DIR");
    if (directory != NULL && directory[0] != '\0')
        return directory;
#ifdef DUEWATCH_SOURCE_DIR
    return DUEWATCH_SOURCE_DIR;
#else
    return ".";
#endif
}

static void source_path(char *buf, size_t buf_size, const char *relative)
{
    int written = snprintf(buf, buf_size, "%s/%s", source_directory(), relative);
    assert_true(written > 0 && (size_t)written < buf_size);
}

static void write_bytes(const char *path, const void *bytes, size_t length)
{
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(bytes, 1, length, file), length);
    assert_int_equal(fclose(file), 0);
}

/* Writes `text` to the temporary config file and loads it. */
static struct config *load_text(const char *text, char *err, size_t err_size)
{
    write_bytes(temp_config_path, text, strlen(text));
    return config_load(temp_config_path, err, err_size);
}

static struct config *load_text_ok(const char *text)
{
    char err[512] = "";
    struct config *config = load_text(text, err, sizeof err);
    if (config == NULL)
        fail_msg("loading %s failed: %s", text, err);
    return config;
}

/* Loads `text` and checks that it fails with exactly
 * "<temp_config_path><expected_after_path>". */
static void expect_load_error(const char *text, const char *expected_after_path)
{
    char err[512] = "";
    char expected[PATH_MAX + 512];
    snprintf(expected, sizeof expected, "%s%s", temp_config_path, expected_after_path);
    struct config *config = load_text(text, err, sizeof err);
    if (config != NULL) {
        config_destroy(config);
        fail_msg("loading %s succeeded; expected error %s", text, expected);
    }
    assert_string_equal(err, expected);
}

/* Everything config_write_effective prints after its first (path) line. */
static char *effective_body(const struct config *config)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    assert_non_null(out);
    config_write_effective(config, out);
    assert_int_equal(fclose(out), 0);
    char *newline = strchr(text, '\n');
    assert_non_null(newline);
    memmove(text, newline + 1, strlen(newline + 1) + 1);
    return text;
}

static char *reference_text(size_t *length)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, length);
    assert_non_null(out);
    config_write_reference(out);
    assert_int_equal(fclose(out), 0);
    return text;
}

static char *read_whole_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        fail_msg("cannot open %s (set DUEWATCH_SOURCE_DIR to the repository root)", path);
    char *text = NULL;
    size_t capacity = 0;
    *length = 0;
    for (;;) {
        if (*length + 4096 > capacity) {
            capacity = capacity * 2 + 4096;
            char *grown = realloc(text, capacity);
            assert_non_null(grown);
            text = grown;
        }
        size_t got = fread(text + *length, 1, capacity - *length - 1, file);
        *length += got;
        if (got == 0)
            break;
    }
    assert_int_equal(ferror(file), 0);
    fclose(file);
    text[*length] = '\0';
    return text;
}

static void assert_property(const struct config *config, size_t index,
                            enum kafka_property_scope scope, const char *name, const char *value)
{
    assert_true(index < config->kafka_property_count);
    assert_int_equal(config->kafka_properties[index].scope, scope);
    assert_string_equal(config->kafka_properties[index].name, name);
    assert_string_equal(config->kafka_properties[index].value, value);
}

static int setup_temp_directory(void **state)
{
    (void)state;
    snprintf(temp_directory, sizeof temp_directory, "/tmp/test_config.XXXXXX");
    if (mkdtemp(temp_directory) == NULL)
        return -1;
    snprintf(temp_config_path, sizeof temp_config_path, "%s/t.conf", temp_directory);
    return 0;
}

static int remove_temp_directory(void **state)
{
    (void)state;
    unlink(temp_config_path);
    return rmdir(temp_directory);
}

/* ---- tests ---- */

static void test_destroy_accepts_null(void **state)
{
    (void)state;
    config_destroy(NULL);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[PATH_MAX + 32];
    char err[512] = "";
    char expected[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/absent.conf", temp_directory);
    snprintf(expected, sizeof expected, "%s: cannot open: No such file or directory", path);
    assert_null(config_load(path, err, sizeof err));
    assert_string_equal(err, expected);
    /* No error buffer at all must be safe too. */
    assert_null(config_load(path, NULL, 0));
}

static void test_defaults_from_empty_file(void **state)
{
    (void)state;
    /* Empty, and only comments and blank lines, both give every default. */
    const char *texts[] = {"", "# nothing but a comment\n\n   \t\n  # indented comment\n"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        struct config *config = load_text_ok(texts[t]);
        assert_string_equal(config->path, temp_config_path);
        assert_int_equal(config->input_topic_count, 1);
        assert_string_equal(config->input_topics[0], "duewatch.events");
        assert_null(config->input_topics[1]);
        assert_string_equal(config->dead_letter_topic, "duewatch.deadletter");
        assert_string_equal(config->alert_topic, "duewatch.alerts");
        assert_int_equal(config->kafka_property_count, 2);
        assert_property(config, 0, KAFKA_SCOPE_BOTH, "bootstrap.servers", "127.0.0.1:9092");
        assert_property(config, 1, KAFKA_SCOPE_CONSUMER, "group.id", "duewatch");
        assert_string_equal(config->redis_host, "127.0.0.1");
        assert_int_equal(config->redis_port, 6379);
        assert_string_equal(config->redis_unix_socket, "");
        assert_string_equal(config->redis_user, "");
        assert_string_equal(config->redis_password, "");
        assert_int_equal(config->redis_database, 0);
        assert_int_equal(config->redis_connect_timeout_ms, 2000);
        assert_int_equal(config->redis_reconnect_min_ms, 100);
        assert_int_equal(config->redis_reconnect_max_ms, 5000);
        assert_int_equal(config->redis_script_timeout_ms, 1000);
        assert_string_equal(config->key_prefix, "dw:");
        assert_string_equal(config->timezone, "Asia/Shanghai");
        assert_int_equal(config->dedupe_ttl_days, 30);
        assert_int_equal(config->counter_retention_days, 400);
        assert_int_equal(config->batch_max_events, 20000);
        assert_int_equal(config->batch_linger_ms, 5);
        assert_int_equal(config->max_inflight_events, 80000);
        assert_int_equal(config->max_message_bytes, 65536);
        assert_int_equal(config->max_message_depth, 8);
        assert_int_equal(config->max_future_ms, 300000);
        assert_int_equal(config->clock_mode, CLOCK_MODE_WALL);
        assert_string_equal(config->rules_file, "/etc/duewatch/rules.conf");
        assert_string_equal(config->holidays_file, "/etc/duewatch/holidays-cn.conf");
        assert_int_equal(config->event_time_lateness_ms, 0);
        assert_int_equal(config->event_time_idle_partition_ms, 60000);
        assert_int_equal(config->max_alerts_per_claim, 1000);
        assert_int_equal(config->backfill_window_ms, 86400000);
        assert_string_equal(config->http_listen, "127.0.0.1:9187");
        assert_int_equal(config->watchdog_interval_ms, 0);
        assert_int_equal(config->shutdown_timeout_ms, 5000);
        assert_int_equal(config->log_level, LOG_LEVEL_INFO);
        config_destroy(config);
    }
}

/* The sample sets every key to a non-default value. */
static void test_every_type_parsed_from_sample(void **state)
{
    (void)state;
    char path[PATH_MAX];
    char err[512] = "";
    source_path(path, sizeof path, "tests/unit/config_samples/all-types.conf");
    struct config *config = config_load(path, err, sizeof err);
    if (config == NULL)
        fail_msg("%s", err);
    /* list */
    assert_int_equal(config->input_topic_count, 3);
    assert_string_equal(config->input_topics[0], "events.a");
    assert_string_equal(config->input_topics[1], "events.b");
    assert_string_equal(config->input_topics[2], "events.c");
    assert_null(config->input_topics[3]);
    /* strings, including tabs around '=', quotes and an empty value */
    assert_string_equal(config->dead_letter_topic, "events.dead");
    assert_string_equal(config->alert_topic, "events.alerts");
    assert_string_equal(config->redis_host, "redis.example");
    assert_string_equal(config->redis_unix_socket, "/run/redis/redis.sock");
    assert_string_equal(config->redis_user, "duewatch");
    assert_string_equal(config->redis_password, "  pass word # not a comment  ");
    assert_string_equal(config->key_prefix, "dw.test:");
    assert_string_equal(config->timezone, "Etc/GMT-8");
    assert_string_equal(config->rules_file, "/srv/duewatch/rules.conf");
    assert_string_equal(config->holidays_file, "/srv/duewatch/holidays.conf");
    assert_string_equal(config->http_listen, "");
    /* ints, at their bounds */
    assert_int_equal(config->redis_port, 6380);
    assert_int_equal(config->redis_database, 15);
    assert_int_equal(config->redis_connect_timeout_ms, 100);
    assert_int_equal(config->redis_reconnect_min_ms, 60000);
    assert_int_equal(config->redis_reconnect_max_ms, 600000);
    assert_int_equal(config->redis_script_timeout_ms, 10);
    assert_int_equal(config->dedupe_ttl_days, 3650);
    assert_int_equal(config->counter_retention_days, 1);
    assert_int_equal(config->batch_max_events, 100000);
    assert_int_equal(config->batch_linger_ms, 0);
    assert_int_equal(config->max_inflight_events, 10000000);
    assert_int_equal(config->max_message_bytes, 16777216);
    assert_int_equal(config->max_message_depth, 64);
    assert_int_equal(config->max_future_ms, 86400000);
    assert_int_equal(config->event_time_lateness_ms, 86400000);
    assert_int_equal(config->event_time_idle_partition_ms, 0);
    assert_int_equal(config->max_alerts_per_claim, 100000);
    assert_int_equal(config->backfill_window_ms, 604800000);
    assert_int_equal(config->watchdog_interval_ms, 3600000);
    assert_int_equal(config->shutdown_timeout_ms, 600000);
    /* enums */
    assert_int_equal(config->clock_mode, CLOCK_MODE_EVENT);
    assert_int_equal(config->log_level, LOG_LEVEL_DEBUG);
    /* declared kafka keys and pass-through properties: properties for both
     * clients first, then client-specific ones, each in file order */
    assert_int_equal(config->kafka_property_count, 5);
    assert_property(config, 0, KAFKA_SCOPE_BOTH, "bootstrap.servers",
                    "kafka-1.example:9093,kafka-2.example:9093");
    assert_property(config, 1, KAFKA_SCOPE_BOTH, "statistics.interval.ms", "0");
    assert_property(config, 2, KAFKA_SCOPE_CONSUMER, "group.id", "duewatch-test");
    assert_property(config, 3, KAFKA_SCOPE_CONSUMER, "fetch.min.bytes", "1");
    assert_property(config, 4, KAFKA_SCOPE_PRODUCER, "compression.type", "lz4");
    config_destroy(config);
}

static void test_layout_quotes_and_line_endings(void **state)
{
    (void)state;
    struct config *config = load_text_ok("\xEF\xBB\xBF"
                                         "redis_host = host-a   \r\n"
                                         "  redis_user\t=\t\"\"\r\n"
                                         "redis_password = \"\"\"\n"
                                         "redis_unix_socket = \"\"/tmp/x\"\"\n"
                                         "kafka.sasl.oauthbearer.config = a=b c=d\n"
                                         "kafka.client.id = \"  padded  \"\n"
                                         "kafka.client.rack = ##\n"
                                         "kafka.sasl.username = 公安局\n"
                                         "kafka.consumer.check.crcs =\n"
                                         "log_level = error");
    assert_string_equal(config->redis_host, "host-a");
    assert_string_equal(config->redis_user, "");
    assert_string_equal(config->redis_password, "\"");
    assert_string_equal(config->redis_unix_socket, "\"/tmp/x\"");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_BOTH, "sasl.oauthbearer.config"),
                        "a=b c=d");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_BOTH, "client.id"), "  padded  ");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_BOTH, "client.rack"), "##");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_BOTH, "sasl.username"),
                        "公安局");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_CONSUMER, "check.crcs"), "");
    assert_int_equal(config->log_level, LOG_LEVEL_ERROR);
    config_destroy(config);

    const char *levels[] = {"error", "warning", "notice", "info", "debug"};
    const int level_values[] = {LOG_LEVEL_ERROR, LOG_LEVEL_WARNING, LOG_LEVEL_NOTICE,
                                LOG_LEVEL_INFO, LOG_LEVEL_DEBUG};
    for (size_t i = 0; i < 5; i++) {
        char text[64];
        snprintf(text, sizeof text, "log_level = %s\nclock_mode = %s\n", levels[i],
                 i % 2 == 0 ? "wall" : "event");
        config = load_text_ok(text);
        assert_int_equal(config->log_level, level_values[i]);
        assert_int_equal(config->clock_mode, i % 2 == 0 ? CLOCK_MODE_WALL : CLOCK_MODE_EVENT);
        config_destroy(config);
    }
}

static void test_relative_paths_follow_the_config_file(void **state)
{
    (void)state;
    char resolved_directory[PATH_MAX];
    assert_non_null(realpath(temp_directory, resolved_directory));
    char expected[PATH_MAX + 64];

    /* Absolute config path. */
    struct config *config = load_text_ok("rules_file = rules.conf\n"
                                         "holidays_file = ../shared/holidays.conf\n");
    snprintf(expected, sizeof expected, "%s/rules.conf", temp_directory);
    assert_string_equal(config->rules_file, expected);
    snprintf(expected, sizeof expected, "%s/../shared/holidays.conf", temp_directory);
    assert_string_equal(config->holidays_file, expected);
    config_destroy(config);

    /* Relative config paths are made absolute from the current directory, so
     * a later chdir (or reload) cannot change what they name. */
    char saved_cwd[PATH_MAX];
    assert_non_null(getcwd(saved_cwd, sizeof saved_cwd));
    assert_int_equal(chdir(resolved_directory), 0);
    char err[512] = "";
    const char *text = "rules_file = r.conf\nholidays_file = /abs/h.conf\n";
    write_bytes(temp_config_path, text, strlen(text));
    config = config_load("t.conf", err, sizeof err);
    struct config *dotted = config_load("./t.conf", err, sizeof err);
    assert_int_equal(chdir(saved_cwd), 0);
    assert_non_null(config);
    assert_non_null(dotted);
    snprintf(expected, sizeof expected, "%s/r.conf", resolved_directory);
    assert_string_equal(config->rules_file, expected);
    assert_string_equal(config->holidays_file, "/abs/h.conf");
    assert_string_equal(config->path, "t.conf");
    snprintf(expected, sizeof expected, "%s/./r.conf", resolved_directory);
    assert_string_equal(dotted->rules_file, expected);
    config_destroy(config);
    config_destroy(dotted);
}

static void test_error_messages(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *expected; /* after the file name */
    } cases[] = {
        /* lines that are not `key = value` */
        {"redis_port\n", ":1: expected 'key = value'"},
        {"# comment\n\n = 5\n", ":3: expected 'key = value'"},
        {"\xEF\xBB\xBF", NULL},
        /* unknown key, duplicates */
        {"redis_port = 1\nno_such_key = 1\n", ":2: key 'no_such_key': unknown key"},
        {"Redis_Port = 1\n", ":1: key 'Redis_Port': unknown key"},
        {"redis_port = 1\n# x\nredis_port = 2\n",
         ":3: key 'redis_port': set twice (first on line 1)"},
        {"kafka.group.id = a\nkafka.group.id = b\n",
         ":2: key 'kafka.group.id': set twice (first on line 1)"},
        {"kafka.client.id = a\n\nkafka.client.id = b\n",
         ":3: key 'kafka.client.id': set twice (first on line 1)"},
        {"kafka.consumer.client.id = a\n"
         "kafka.producer.client.id = a\n"
         "kafka.consumer.client.id = b\n",
         ":3: key 'kafka.consumer.client.id': set twice (first on line 1)"},
        /* numbers */
        {"redis_port = abc\n", ":1: key 'redis_port': 'abc' is not a whole number"},
        {"redis_port = 12x\n", ":1: key 'redis_port': '12x' is not a whole number"},
        {"redis_port = 1.5\n", ":1: key 'redis_port': '1.5' is not a whole number"},
        {"redis_port = 0x10\n", ":1: key 'redis_port': '0x10' is not a whole number"},
        {"redis_port = +80\n", ":1: key 'redis_port': '+80' is not a whole number"},
        {"redis_port = -\n", ":1: key 'redis_port': '-' is not a whole number"},
        {"redis_port =\n", ":1: key 'redis_port': '' is not a whole number"},
        {"redis_port = \"\"\n", ":1: key 'redis_port': '' is not a whole number"},
        {"redis_port = 6379 # comment\n",
         ":1: key 'redis_port': '6379 # comment' is not a whole number"},
        {"redis_port = 99999999999999999999\n",
         ":1: key 'redis_port': 99999999999999999999 is out of range 1..65535"},
        {"redis_port = -99999999999999999999\n",
         ":1: key 'redis_port': -99999999999999999999 is out of range 1..65535"},
        {"redis_port = 4294973675\n", ":1: key 'redis_port': 4294973675 is out of range 1..65535"},
        /* enums */
        {"clock_mode = Wall\n", ":1: key 'clock_mode': 'Wall' is not one of wall|event"},
        {"clock_mode =\n", ":1: key 'clock_mode': '' is not one of wall|event"},
        {"log_level = verbose\n",
         ":1: key 'log_level': 'verbose' is not one of error|warning|notice|info|debug"},
        {"log_level = 7\n",
         ":1: key 'log_level': '7' is not one of error|warning|notice|info|debug"},
        /* Sentinel */
        {"redis_sentinels = s1:26379,\nredis_master_name = m\n",
         ":1: key 'redis_sentinels': an empty item in the list"},
        {"redis_sentinels = s1\nredis_master_name = m\n",
         ":1: key 'redis_sentinels': 's1' is not host:port (port 1..65535, IPv6 as "
         "[address]:port; empty disables)"},
        {"redis_sentinels = s1:26379\n",
         ":1: key 'redis_sentinels': needs redis_master_name and an empty redis_unix_socket"},
        /* quotes */
        {"redis_password = \"abc\n", ":1: key 'redis_password': quoted value has no closing '\"'"},
        {"redis_password = \"\n", ":1: key 'redis_password': quoted value has no closing '\"'"},
        /* lists and topic names */
        {"input_topics = a,,b\n", ":1: key 'input_topics': empty item in the list"},
        {"input_topics = a,\n", ":1: key 'input_topics': empty item in the list"},
        {"input_topics =\n", ":1: key 'input_topics': empty item in the list"},
        {"input_topics = a, b, a\n", ":1: key 'input_topics': 'a' is listed twice"},
        {"input_topics = ok, bad topic\n",
         ":1: key 'input_topics': 'bad topic' is not a Kafka topic name "
         "(1-249 characters of A-Z a-z 0-9 . _ -)"},
        {"dead_letter_topic =\n",
         ":1: key 'dead_letter_topic': '' is not a Kafka topic name "
         "(1-249 characters of A-Z a-z 0-9 . _ -)"},
        {"alert_topic = ..\n",
         ":1: key 'alert_topic': '..' is not a Kafka topic name "
         "(1-249 characters of A-Z a-z 0-9 . _ -)"},
        /* other string checks */
        {"key_prefix =\n", ":1: key 'key_prefix': must be 1-32 characters of A-Z a-z 0-9 . _ : -"},
        {"key_prefix = dw prefix\n",
         ":1: key 'key_prefix': must be 1-32 characters of A-Z a-z 0-9 . _ : -"},
        {"key_prefix = 123456789012345678901234567890123\n",
         ":1: key 'key_prefix': must be 1-32 characters of A-Z a-z 0-9 . _ : -"},
        {"timezone = ../../etc/passwd\n",
         ":1: key 'timezone': '../../etc/passwd' is not a time zone name "
         "(like Asia/Shanghai: A-Z a-z 0-9 / _ + -)"},
        {"timezone = /etc/localtime\n",
         ":1: key 'timezone': '/etc/localtime' is not a time zone name "
         "(like Asia/Shanghai: A-Z a-z 0-9 / _ + -)"},
        {"timezone = Asia/Shang hai\n",
         ":1: key 'timezone': 'Asia/Shang hai' is not a time zone name "
         "(like Asia/Shanghai: A-Z a-z 0-9 / _ + -)"},
        {"timezone =\n",
         ":1: key 'timezone': '' is not a time zone name "
         "(like Asia/Shanghai: A-Z a-z 0-9 / _ + -)"},
        {"rules_file =\n", ":1: key 'rules_file': must not be empty"},
        {"holidays_file = \"\"\n", ":1: key 'holidays_file': must not be empty"},
        {"kafka.bootstrap.servers =\n", ":1: key 'kafka.bootstrap.servers': must not be empty"},
        {"kafka.group.id =\n", ":1: key 'kafka.group.id': must not be empty"},
        {"http_listen = 9187\n",
         ":1: key 'http_listen': '9187' is not host:port "
         "(port 1..65535, IPv6 as [address]:port; empty disables)"},
        {"http_listen = :9187\n",
         ":1: key 'http_listen': ':9187' is not host:port "
         "(port 1..65535, IPv6 as [address]:port; empty disables)"},
        {"http_listen = ::1:9187\n",
         ":1: key 'http_listen': '::1:9187' is not host:port "
         "(port 1..65535, IPv6 as [address]:port; empty disables)"},
        {"http_listen = [::1:9187\n",
         ":1: key 'http_listen': '[::1:9187' is not host:port "
         "(port 1..65535, IPv6 as [address]:port; empty disables)"},
        {"http_listen = localhost:0\n",
         ":1: key 'http_listen': 'localhost:0' is not host:port "
         "(port 1..65535, IPv6 as [address]:port; empty disables)"},
        {"http_listen = localhost:65536\n",
         ":1: key 'http_listen': 'localhost:65536' is not host:port "
         "(port 1..65535, IPv6 as [address]:port; empty disables)"},
        {"http_listen = localhost:\n",
         ":1: key 'http_listen': 'localhost:' is not host:port "
         "(port 1..65535, IPv6 as [address]:port; empty disables)"},
        /* bytes that are not text */
        {"redis_host = \xff\n", ":1: not UTF-8 text"},
        {"# fine\nredis_host = \xC0\xAF\n", ":2: not UTF-8 text"},
        {"redis_host = \xED\xA0\x80\n", ":1: not UTF-8 text"},
        {"redis_host = \xE5\x85\n", ":1: not UTF-8 text"},
        {"redis_host = a\x01" "b\n", ":1: control character in line"},
        {"redis_host = a\x1b[31m\n", ":1: control character in line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].expected == NULL) {
            /* A lone byte order mark is an empty file. */
            struct config *config = load_text_ok(cases[i].text);
            config_destroy(config);
            continue;
        }
        expect_load_error(cases[i].text, cases[i].expected);
    }

    /* A NUL byte inside a line. */
    char err[512] = "";
    char expected[PATH_MAX + 64];
    write_bytes(temp_config_path, "redis_host = a\0b\n", 17);
    assert_null(config_load(temp_config_path, err, sizeof err));
    snprintf(expected, sizeof expected, "%s:1: not UTF-8 text", temp_config_path);
    assert_string_equal(err, expected);

    /* sun_path holds 107 bytes and the NUL; the 107-byte path loads in
     * test_values_accepted_by_string_checks. */
    char socket_line[160];
    char socket_path[109];
    memset(socket_path, 's', 108);
    socket_path[0] = '/';
    socket_path[108] = '\0';
    snprintf(socket_line, sizeof socket_line, "redis_unix_socket = %s\n", socket_path);
    expect_load_error(socket_line,
                      ":1: key 'redis_unix_socket': a Unix socket path is at most 107 bytes");

    /* A small error buffer gets a truncated, terminated message. */
    char small[8];
    assert_null(load_text("redis_port = 0\n", small, sizeof small));
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, temp_config_path, sizeof small - 1);
}

static void test_values_accepted_by_string_checks(void **state)
{
    (void)state;
    struct config *config = load_text_ok("http_listen = [::1]:9187\n"
                                         "key_prefix = 12345678901234567890123456789012\n"
                                         "timezone = America/Argentina/Buenos_Aires\n"
                                         "input_topics = a_b-c.d,X\n");
    assert_string_equal(config->http_listen, "[::1]:9187");
    assert_string_equal(config->key_prefix, "12345678901234567890123456789012");
    assert_string_equal(config->timezone, "America/Argentina/Buenos_Aires");
    assert_int_equal(config->input_topic_count, 2);
    config_destroy(config);

    char socket_line[160];
    char socket_path[108];
    memset(socket_path, 's', 107);
    socket_path[0] = '/';
    socket_path[107] = '\0';
    snprintf(socket_line, sizeof socket_line, "redis_unix_socket = %s\n", socket_path);
    config = load_text_ok(socket_line);
    assert_string_equal(config->redis_unix_socket, socket_path);
    config_destroy(config);
}

/* Every int key, at each bound (accepted) and one past it (refused). */
static void test_int_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t offset;
        long long min, max;
    } keys[] = {
        {"redis_port", offsetof(struct config, redis_port), 1, 65535},
        {"redis_database", offsetof(struct config, redis_database), 0, 15},
        {"redis_connect_timeout_ms", offsetof(struct config, redis_connect_timeout_ms), 100, 60000},
        {"redis_reconnect_min_ms", offsetof(struct config, redis_reconnect_min_ms), 10, 60000},
        {"redis_reconnect_max_ms", offsetof(struct config, redis_reconnect_max_ms), 100, 600000},
        {"redis_script_timeout_ms", offsetof(struct config, redis_script_timeout_ms), 10, 60000},
        {"dedupe_ttl_days", offsetof(struct config, dedupe_ttl_days), 1, 3650},
        {"counter_retention_days", offsetof(struct config, counter_retention_days), 1, 3650},
        {"batch_max_events", offsetof(struct config, batch_max_events), 1, 100000},
        {"batch_linger_ms", offsetof(struct config, batch_linger_ms), 0, 10000},
        {"max_inflight_events", offsetof(struct config, max_inflight_events), 100, 10000000},
        {"max_message_bytes", offsetof(struct config, max_message_bytes), 64, 16777216},
        {"max_message_depth", offsetof(struct config, max_message_depth), 1, 64},
        {"max_future_ms", offsetof(struct config, max_future_ms), 0, 86400000},
        {"event_time_lateness_ms", offsetof(struct config, event_time_lateness_ms), 0, 86400000},
        {"event_time_idle_partition_ms", offsetof(struct config, event_time_idle_partition_ms), 0,
         86400000},
        {"max_alerts_per_claim", offsetof(struct config, max_alerts_per_claim), 1, 100000},
        {"backfill_window_ms", offsetof(struct config, backfill_window_ms), 0, 604800000},
        {"http_max_connections", offsetof(struct config, http_max_connections), 1, 512},
        {"http_idle_timeout_ms", offsetof(struct config, http_idle_timeout_ms), 100, 600000},
        {"watchdog_interval_ms", offsetof(struct config, watchdog_interval_ms), 0, 3600000},
        {"shutdown_timeout_ms", offsetof(struct config, shutdown_timeout_ms), 100, 600000},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char text[256];
        char expected[256];
        const char *name = keys[i].name;
        for (int side = 0; side < 2; side++) {
            long long bound = side == 0 ? keys[i].min : keys[i].max;
            long long outside = side == 0 ? bound - 1 : bound + 1;
            snprintf(text, sizeof text, "%s = %lld\n", name, outside);
            snprintf(expected, sizeof expected, ":1: key '%s': %lld is out of range %lld..%lld",
                     name, outside, keys[i].min, keys[i].max);
            expect_load_error(text, expected);

            /* The bound itself loads; the paired keys are moved out of the
             * way so the cross-key rules hold at either extreme. */
            const char *partners = side == 0 ? "redis_reconnect_min_ms = 10\nbatch_max_events = 1\n"
                                             : "redis_reconnect_max_ms = 600000\n"
                                               "max_inflight_events = 10000000\n";
            bool is_partner = strstr(partners, name) != NULL;
            snprintf(text, sizeof text, "%s%s = %lld\n", is_partner ? "" : partners, name, bound);
            struct config *config = load_text_ok(text);
            int stored;
            memcpy(&stored, (const char *)config + keys[i].offset, sizeof stored);
            assert_int_equal(stored, bound);
            config_destroy(config);
        }
    }
}

static void test_cross_key_rules(void **state)
{
    (void)state;
    expect_load_error("redis_reconnect_min_ms = 6000\n",
                      ":1: key 'redis_reconnect_min_ms': must be <= redis_reconnect_max_ms (5000)");
    expect_load_error("redis_reconnect_min_ms = 300\nredis_reconnect_max_ms = 200\n",
                      ":2: key 'redis_reconnect_max_ms': must be >= redis_reconnect_min_ms (300)");
    expect_load_error("redis_reconnect_max_ms = 200\n# c\nredis_reconnect_min_ms = 300\n",
                      ":3: key 'redis_reconnect_min_ms': must be <= redis_reconnect_max_ms (200)");
    expect_load_error("max_inflight_events = 19999\n",
                      ":1: key 'max_inflight_events': must be >= batch_max_events (20000)");
    expect_load_error("batch_max_events = 80001\n",
                      ":1: key 'batch_max_events': must be <= max_inflight_events (80000)");
    expect_load_error("redis_host = \"\"\n",
                      ":1: key 'redis_host': must not be empty when redis_unix_socket is empty");

    /* Equal is allowed, and a socket makes the host optional. */
    struct config *config = load_text_ok("redis_reconnect_min_ms = 5000\n"
                                         "max_inflight_events = 20000\n"
                                         "redis_host =\n"
                                         "redis_unix_socket = /run/redis.sock\n");
    assert_int_equal(config->redis_reconnect_min_ms, config->redis_reconnect_max_ms);
    assert_int_equal(config->max_inflight_events, config->batch_max_events);
    assert_string_equal(config->redis_host, "");
    config_destroy(config);
}

/* The redis_tls_* keys.  A build without TLS (Debian's hiredis 0.14) refuses
 * them, saying why; a hiredis >= 1.0 + SSL build (scripts/check-hiredis1.sh)
 * checks that they fit together and loads the files. */
static void test_redis_tls_settings(void **state)
{
    (void)state;
    /* redis_tls = no alone is the default written out: fine in every build. */
    struct config *config = load_text_ok("redis_tls = no\n");
    assert_false(config->redis_tls);
    config_destroy(config);
    char expected[640];
    if (!redis_tls_supported()) {
        const char *reason = redis_tls_unsupported_reason();
        assert_non_null(strstr(reason, "without TLS support"));
        assert_non_null(strstr(reason, "rebuild it against hiredis >= 1.0 with SSL"));
        char built[32];
        snprintf(built, sizeof built, "hiredis %d.%d.%d ", HIREDIS_MAJOR,
                 HIREDIS_MINOR, HIREDIS_PATCH);
        assert_non_null(strstr(reason, built));
        snprintf(expected, sizeof expected, ":2: key 'redis_tls': %s", reason);
        expect_load_error("redis_port = 6380\nredis_tls = yes\n", expected);
        snprintf(expected, sizeof expected, ":1: key 'redis_tls_ca_file': %s", reason);
        expect_load_error("redis_tls_ca_file = /etc/ssl/redis-ca.pem\n", expected);
        char err[512] = "";
        config = load_text_ok("");
        assert_null(redis_tls_create(config, err, sizeof err));
        snprintf(expected, sizeof expected, "redis TLS: %s", reason);
        assert_string_equal(err, expected);
        config_destroy(config);
        return;
    }
    expect_load_error("redis_tls_ca_file = ca.pem\n",
                      ":1: key 'redis_tls_ca_file': set, but redis_tls is not yes");
    expect_load_error("redis_tls = yes\nredis_unix_socket = /run/redis.sock\n",
                      ":1: key 'redis_tls': TLS is for TCP connections: redis_unix_socket must "
                      "be empty");
    expect_load_error("redis_tls = yes\nredis_tls_key_file = client.key\n",
                      ":2: key 'redis_tls_key_file': redis_tls_cert_file and redis_tls_key_file "
                      "go together (both or neither)");
    config = load_text_ok("redis_tls = yes\nredis_tls_ca_file = no-such-ca.pem\n"
                          "redis_tls_cert_file = /c.pem\nredis_tls_key_file = /k.pem\n"
                          "redis_tls_server_name = redis.example\n");
    assert_true(config->redis_tls);
    /* A relative file is relative to the config file's directory. */
    const char *slash = strrchr(temp_config_path, '/');
    snprintf(expected, sizeof expected, "%.*s/no-such-ca.pem", (int)(slash - temp_config_path),
             temp_config_path);
    assert_string_equal(config->redis_tls_ca_file, expected);
    assert_string_equal(config->redis_tls_cert_file, "/c.pem");
    assert_string_equal(config->redis_tls_server_name, "redis.example");
    char err[512] = "";
    assert_null(redis_tls_create(config, err, sizeof err));
    snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "'");
    assert_non_null(strstr(err, "redis TLS: cannot load the CA file '"));
    assert_non_null(strstr(err, expected));
    config_destroy(config);
}

static void test_kafka_pass_through_scopes(void **state)
{
    (void)state;
    struct config *config = load_text_ok("kafka.consumer.client.id = consumer-id\n"
                                         "kafka.producer.linger.ms = 20\n"
                                         "kafka.client.id = both-id\n"
                                         "kafka.bootstrap.servers = b1:9092,b2:9092\n"
                                         "kafka.consumer.fetch.wait.max.ms = 50\n"
                                         "kafka.security.protocol = SASL_SSL\n"
                                         "kafka.producer.group.id = ignored-by-producer\n");
    assert_int_equal(config->kafka_property_count, 8);
    assert_property(config, 0, KAFKA_SCOPE_BOTH, "bootstrap.servers", "b1:9092,b2:9092");
    assert_property(config, 1, KAFKA_SCOPE_BOTH, "client.id", "both-id");
    assert_property(config, 2, KAFKA_SCOPE_BOTH, "security.protocol", "SASL_SSL");
    assert_property(config, 3, KAFKA_SCOPE_CONSUMER, "group.id", "duewatch");
    assert_property(config, 4, KAFKA_SCOPE_CONSUMER, "client.id", "consumer-id");
    assert_property(config, 5, KAFKA_SCOPE_PRODUCER, "linger.ms", "20");
    assert_property(config, 6, KAFKA_SCOPE_CONSUMER, "fetch.wait.max.ms", "50");
    assert_property(config, 7, KAFKA_SCOPE_PRODUCER, "group.id", "ignored-by-producer");

    /* The most specific scope wins. */
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_CONSUMER, "client.id"),
                        "consumer-id");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_PRODUCER, "client.id"),
                        "both-id");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_BOTH, "client.id"), "both-id");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_CONSUMER, "group.id"),
                        "duewatch");
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_PRODUCER, "group.id"),
                        "ignored-by-producer");
    assert_null(config_kafka_property(config, KAFKA_SCOPE_BOTH, "group.id"));
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_PRODUCER, "linger.ms"), "20");
    assert_null(config_kafka_property(config, KAFKA_SCOPE_CONSUMER, "linger.ms"));
    assert_string_equal(config_kafka_property(config, KAFKA_SCOPE_CONSUMER, "bootstrap.servers"),
                        "b1:9092,b2:9092");
    assert_null(config_kafka_property(config, KAFKA_SCOPE_BOTH, "no.such.property"));

    /* Applying the array in order, later entries overriding earlier ones (as
     * kafka_apply_properties does), must give the same answer. */
    static const enum kafka_property_scope clients[] = {KAFKA_SCOPE_CONSUMER, KAFKA_SCOPE_PRODUCER};
    for (size_t c = 0; c < 2; c++) {
        const char *applied = NULL;
        for (size_t i = 0; i < config->kafka_property_count; i++) {
            const struct kafka_property *property = &config->kafka_properties[i];
            if ((property->scope == KAFKA_SCOPE_BOTH || property->scope == clients[c]) &&
                strcmp(property->name, "client.id") == 0)
                applied = property->value;
        }
        assert_non_null(applied);
        assert_string_equal(applied, config_kafka_property(config, clients[c], "client.id"));
    }
    config_destroy(config);
}

static void test_kafka_refused_properties(void **state)
{
    (void)state;
    static const char *const managed[] = {"enable.auto.offset.store", "enable.auto.commit",
                                          "partition.assignment.strategy", "enable.partition.eof",
                                          "auto.offset.reset"};
    static const char *const prefixes[] = {"kafka.", "kafka.consumer.", "kafka.producer."};
    char text[128];
    char expected[256];
    for (size_t m = 0; m < sizeof managed / sizeof managed[0]; m++)
        for (size_t p = 0; p < 3; p++) {
            snprintf(text, sizeof text, "# c\n%s%s = x\n", prefixes[p], managed[m]);
            snprintf(expected, sizeof expected,
                     ":2: key '%s%s': librdkafka property '%s' is managed by duewatch", prefixes[p],
                     managed[m], managed[m]);
            expect_load_error(text, expected);
        }
    expect_load_error("kafka.consumer.rebalance_cb = x\n",
                      ":1: key 'kafka.consumer.rebalance_cb': librdkafka property 'rebalance_cb' "
                      "is managed by duewatch");
    expect_load_error("kafka.dr_msg_cb = x\n",
                      ":1: key 'kafka.dr_msg_cb': librdkafka property 'dr_msg_cb' is managed by "
                      "duewatch");
    expect_load_error("kafka.consumer.group.id = other\n",
                      ":1: key 'kafka.consumer.group.id': same property as 'kafka.group.id'; set "
                      "that instead");
    expect_load_error("kafka. = x\n",
                      ":1: key 'kafka.': no librdkafka property name after 'kafka.'");
    expect_load_error("kafka.producer. = x\n",
                      ":1: key 'kafka.producer.': no librdkafka property name after "
                      "'kafka.producer.'");
    /* Only the exact names are refused. */
    struct config *config = load_text_ok("kafka.enable.auto.commit.interval.ms = 1000\n"
                                         "kafka.cb = 1\n");
    assert_string_equal(
        config_kafka_property(config, KAFKA_SCOPE_BOTH, "enable.auto.commit.interval.ms"), "1000");
    config_destroy(config);
}

static void test_restart_only_changes(void **state)
{
    (void)state;
    char buf[512];
    struct config *old_config = load_text_ok("");

    /* Each key changed alone: restart-only keys are named, reloadable ones not. */
    static const struct {
        const char *line;
        const char *restart_key; /* NULL = reloadable */
    } changes[] = {
        {"kafka.bootstrap.servers = other:9092", "kafka.bootstrap.servers"},
        {"kafka.group.id = other", "kafka.group.id"},
        {"input_topics = duewatch.events, more", "input_topics"},
        {"dead_letter_topic = other", "dead_letter_topic"},
        {"alert_topic = other", "alert_topic"},
        {"redis_host = other", "redis_host"},
        {"redis_port = 6380", "redis_port"},
        {"redis_unix_socket = /run/redis.sock", "redis_unix_socket"},
        {"redis_user = someone", "redis_user"},
        {"redis_password = secret", "redis_password"},
        {"redis_master_name = main", "redis_master_name"},
        {"redis_sentinel_password = secret", "redis_sentinel_password"},
        {"redis_database = 1", "redis_database"},
        {"key_prefix = other:", "key_prefix"},
        {"timezone = UTC", "timezone"},
        {"clock_mode = event", "clock_mode"},
        {"http_listen = 127.0.0.1:9188", "http_listen"},
        {"kafka.client.id = x", "kafka.client.id"},
        {"kafka.consumer.client.id = x", "kafka.consumer.client.id"},
        {"kafka.producer.linger.ms = 1", "kafka.producer.linger.ms"},
        {"redis_connect_timeout_ms = 3000", NULL},
        {"redis_reconnect_min_ms = 200", NULL},
        {"redis_reconnect_max_ms = 6000", NULL},
        {"redis_script_timeout_ms = 2000", NULL},
        {"dedupe_ttl_days = 31", NULL},
        {"counter_retention_days = 401", NULL},
        {"batch_max_events = 2001", NULL},
        {"batch_linger_ms = 6", NULL},
        {"max_inflight_events = 50001", NULL},
        {"max_message_bytes = 65537", NULL},
        {"max_message_depth = 9", NULL},
        {"max_future_ms = 60000", NULL},
        {"rules_file = /other/rules.conf", NULL},
        {"holidays_file = /other/holidays.conf", NULL},
        {"event_time_lateness_ms = 1", NULL},
        {"event_time_idle_partition_ms = 1", NULL},
        {"max_alerts_per_claim = 1001", NULL},
        {"backfill_window_ms = 1", NULL},
        {"watchdog_interval_ms = 1", NULL},
        {"shutdown_timeout_ms = 5001", NULL},
        {"log_level = debug", NULL},
    };
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
        struct config *new_config = load_text_ok(changes[i].line);
        int count = config_restart_only_changes(old_config, new_config, buf, sizeof buf);
        if (changes[i].restart_key != NULL) {
            assert_int_equal(count, 1);
            assert_string_equal(buf, changes[i].restart_key);
            /* The other direction: a removed pass-through is a change too. */
            assert_int_equal(config_restart_only_changes(new_config, old_config, buf, sizeof buf),
                             1);
            assert_string_equal(buf, changes[i].restart_key);
        } else {
            assert_int_equal(count, 0);
            assert_string_equal(buf, "");
        }
        config_destroy(new_config);
    }

    /* Several at once, in table order, then pass-through properties. */
    struct config *new_config = load_text_ok("log_level = debug\n"
                                             "kafka.client.id = added\n"
                                             "redis_port = 6380\n"
                                             "batch_max_events = 10\n"
                                             "kafka.group.id = other\n"
                                             "input_topics = a\n");
    assert_int_equal(config_restart_only_changes(old_config, new_config, buf, sizeof buf), 4);
    assert_string_equal(buf, "kafka.group.id, input_topics, redis_port, kafka.client.id");
    /* Too small a buffer truncates the text but not the count. */
    char small[8];
    assert_int_equal(config_restart_only_changes(old_config, new_config, small, sizeof small), 4);
    assert_string_equal(small, "kafka.g");
    assert_int_equal(config_restart_only_changes(old_config, new_config, NULL, 0), 4);
    config_destroy(new_config);
    config_destroy(old_config);

    /* Pass-through properties changed, removed and added. */
    old_config = load_text_ok("kafka.consumer.x = 1\nkafka.producer.y = 2\nkafka.same = 3\n");
    new_config = load_text_ok("kafka.z = 4\nkafka.same = 3\nkafka.consumer.x = 2\n");
    assert_int_equal(config_restart_only_changes(old_config, new_config, buf, sizeof buf), 3);
    assert_string_equal(buf, "kafka.consumer.x, kafka.producer.y, kafka.z");
    config_destroy(new_config);

    /* The same text loaded twice: nothing to restart for. */
    new_config = load_text_ok("kafka.consumer.x = 1\nkafka.producer.y = 2\nkafka.same = 3\n");
    assert_int_equal(config_restart_only_changes(old_config, new_config, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    config_destroy(new_config);
    config_destroy(old_config);
}

static void test_effective_masks_secrets(void **state)
{
    (void)state;
    struct config *config = load_text_ok("redis_password = hunter2\n"
                                         "redis_sentinels = s1:26379, [::1]:26380\n"
                                         "redis_master_name = main\n"
                                         "redis_sentinel_username = watcher\n"
                                         "redis_sentinel_password = pw-6\n"
                                         "kafka.sasl.username = svc-duewatch\n"
                                         "kafka.sasl.password = pw-1\n"
                                         "kafka.producer.ssl.key.password = pw-2\n"
                                         "kafka.sasl.oauthbearer.config = principal=pw-3\n"
                                         "kafka.consumer.sasl.oauthbearer.client.secret = pw-4\n"
                                         "kafka.ssl.key.pem = pw-5\n"
                                         "kafka.ssl.keystore.password =\n"
                                         "input_topics = a, b\n"
                                         "redis_user = \" spaced\"\n");
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    assert_non_null(out);
    config_write_effective(config, out);
    assert_int_equal(fclose(out), 0);
    char expected[8192];
    snprintf(expected, sizeof expected,
             "# duewatch effective configuration, loaded from %s\n"
             "kafka.bootstrap.servers = 127.0.0.1:9092\n"
             "kafka.group.id = duewatch\n"
             "input_topics = a, b\n"
             "dead_letter_topic = duewatch.deadletter\n"
             "alert_topic = duewatch.alerts\n"
             "redis_host = 127.0.0.1\n"
             "redis_port = 6379\n"
             "redis_unix_socket = \"\"\n"
             "redis_user = \" spaced\"\n"
             "redis_password = ********\n"
             "redis_sentinels = s1:26379, [::1]:26380\n"
             "redis_master_name = main\n"
             "redis_sentinel_username = watcher\n"
             "redis_sentinel_password = ********\n"
             "redis_tls = false\n"
             "redis_tls_ca_file = \"\"\n"
             "redis_tls_cert_file = \"\"\n"
             "redis_tls_key_file = \"\"\n"
             "redis_tls_server_name = \"\"\n"
             "redis_database = 0\n"
             "redis_connect_timeout_ms = 2000\n"
             "redis_reconnect_min_ms = 100\n"
             "redis_reconnect_max_ms = 5000\n"
             "redis_script_timeout_ms = 1000\n"
             "key_prefix = dw:\n"
             "timezone = Asia/Shanghai\n"
             "dedupe_ttl_days = 30\n"
             "counter_retention_days = 400\n"
             "batch_max_events = 20000\n"
             "batch_linger_ms = 5\n"
             "max_inflight_events = 80000\n"
             "max_message_bytes = 65536\n"
             "max_message_depth = 8\n"
             "max_future_ms = 300000\n"
             "clock_mode = wall\n"
             "rules_file = /etc/duewatch/rules.conf\n"
             "holidays_file = /etc/duewatch/holidays-cn.conf\n"
             "event_time_lateness_ms = 0\n"
             "event_time_idle_partition_ms = 60000\n"
             "max_alerts_per_claim = 1000\n"
             "backfill_window_ms = 86400000\n"
             "http_listen = 127.0.0.1:9187\n"
             "http_max_connections = 64\n"
             "http_idle_timeout_ms = 10000\n"
             "watchdog_interval_ms = 0\n"
             "shutdown_timeout_ms = 5000\n"
             "log_level = info\n"
             "kafka.sasl.username = svc-duewatch\n"
             "kafka.sasl.password = ********\n"
             "kafka.sasl.oauthbearer.config = ********\n"
             "kafka.ssl.key.pem = ********\n"
             "kafka.ssl.keystore.password = \"\"\n"
             "kafka.producer.ssl.key.password = ********\n"
             "kafka.consumer.sasl.oauthbearer.client.secret = ********\n",
             temp_config_path);
    assert_string_equal(text, expected);
    assert_null(strstr(text, "hunter2"));
    assert_null(strstr(text, "pw-"));
    free(text);
    config_destroy(config);
}

/* What config_write_effective prints (secrets aside) loads back unchanged. */
static void test_effective_output_loads_back(void **state)
{
    (void)state;
    struct config *config = load_text_ok("redis_user = \"  two spaces  \"\n"
                                         "redis_unix_socket = \"\"/q\"\"\n"
                                         "redis_host = \"\"\"\n"
                                         "input_topics = x, y,z\n"
                                         "clock_mode = event\n"
                                         "log_level = warning\n"
                                         "kafka.consumer.client.id = \" c \"\n"
                                         "kafka.producer.acks = all\n"
                                         "kafka.debug =\n");
    char *first = effective_body(config);
    char *path = NULL;
    assert_true(asprintf(&path, "%s/effective.conf", temp_directory) > 0);
    write_bytes(path, first, strlen(first));
    char err[512] = "";
    struct config *reloaded = config_load(path, err, sizeof err);
    if (reloaded == NULL)
        fail_msg("%s", err);
    char *second = effective_body(reloaded);
    assert_string_equal(first, second);
    assert_string_equal(reloaded->redis_user, "  two spaces  ");
    assert_string_equal(reloaded->redis_unix_socket, "\"/q\"");
    assert_string_equal(reloaded->redis_host, "\"");
    assert_string_equal(config_kafka_property(reloaded, KAFKA_SCOPE_CONSUMER, "client.id"), " c ");
    assert_int_equal(config_restart_only_changes(config, reloaded, err, sizeof err), 0);
    unlink(path);
    free(path);
    free(first);
    free(second);
    config_destroy(reloaded);
    config_destroy(config);
}

static void test_reference_layout(void **state)
{
    (void)state;
    size_t length = 0;
    char *text = reference_text(&length);
    assert_int_equal(strlen(text), length);
    assert_non_null(strstr(text, "\n# Redis server TCP port.\n"
                                 "# default: 6379; range: 1..65535; reload: restart\n"
                                 "redis_port = 6379\n"));
    assert_non_null(strstr(text, "# default: \"\"; reload: restart\nredis_password = \"\"\n"));
    assert_non_null(strstr(text, "# default: wall; values: wall|event; reload: restart\n"
                                 "clock_mode = wall\n"));
    assert_non_null(strstr(text, "# default: info; values: error|warning|notice|info|debug; "
                                 "reload: yes\nlog_level = info\n"));
    assert_non_null(strstr(text, "# default: 5000; range: 100..600000; reload: yes\n"
                                 "redis_reconnect_max_ms = 5000\n"));
    assert_non_null(strstr(text, "#kafka.security.protocol = SASL_SSL\n"
                                 "#kafka.sasl.mechanisms = SCRAM-SHA-512\n"
                                 "#kafka.sasl.username = duewatch\n"
                                 "#kafka.sasl.password = change-me\n"
                                 "#kafka.ssl.ca.location = /etc/duewatch/kafka-ca.pem\n"));
    /* Comment lines stay readable in an 80-column terminal. */
    for (const char *line = text; *line != '\0';) {
        const char *newline = strchr(line, '\n');
        assert_non_null(newline);
        if (line[0] == '#' && newline - line > 78)
            fail_msg("comment line longer than 78 columns: %.*s", (int)(newline - line), line);
        line = newline + 1;
    }
    /* The reference is a complete config file equal to the defaults. */
    write_bytes(temp_config_path, text, length);
    char err[512] = "";
    struct config *from_reference = config_load(temp_config_path, err, sizeof err);
    if (from_reference == NULL)
        fail_msg("%s", err);
    struct config *from_empty = load_text_ok("");
    char *reference_effective = effective_body(from_reference);
    char *empty_effective = effective_body(from_empty);
    assert_string_equal(reference_effective, empty_effective);
    free(reference_effective);
    free(empty_effective);
    config_destroy(from_reference);
    config_destroy(from_empty);
    free(text);
}

/* conf/duewatch.conf is the reference output, byte for byte; regenerate it
 * with build/tests/print_config_reference > conf/duewatch.conf. */
static void test_shipped_conf_is_the_reference(void **state)
{
    (void)state;
    char path[PATH_MAX];
    source_path(path, sizeof path, "conf/duewatch.conf");
    char err[512] = "";
    struct config *config = config_load(path, err, sizeof err);
    if (config == NULL)
        fail_msg("%s", err);
    config_destroy(config);

    size_t shipped_length = 0, reference_length = 0;
    char *shipped = read_whole_file(path, &shipped_length);
    char *reference = reference_text(&reference_length);
    if (shipped_length != reference_length || memcmp(shipped, reference, shipped_length) != 0)
        fail_msg("%s differs from config_write_reference(); regenerate it with "
                 "build/tests/print_config_reference > conf/duewatch.conf",
                 path);
    free(shipped);
    free(reference);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destroy_accepts_null),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_defaults_from_empty_file),
        cmocka_unit_test(test_every_type_parsed_from_sample),
        cmocka_unit_test(test_layout_quotes_and_line_endings),
        cmocka_unit_test(test_relative_paths_follow_the_config_file),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_values_accepted_by_string_checks),
        cmocka_unit_test(test_int_bounds),
        cmocka_unit_test(test_redis_tls_settings),
        cmocka_unit_test(test_cross_key_rules),
        cmocka_unit_test(test_kafka_pass_through_scopes),
        cmocka_unit_test(test_kafka_refused_properties),
        cmocka_unit_test(test_restart_only_changes),
        cmocka_unit_test(test_effective_masks_secrets),
        cmocka_unit_test(test_effective_output_loads_back),
        cmocka_unit_test(test_reference_layout),
        cmocka_unit_test(test_shipped_conf_is_the_reference),
    };
    return cmocka_run_group_tests(tests, setup_temp_directory, remove_temp_directory);
}
