/* duewatchd: command line, start-up, signals and shutdown.  Everything runs on
 * one libevent loop; signals arrive as loop events (evsignal), never in async
 * handlers. */
#include "calendar.h"
#include "clock_explain.h"
#include "clock_setup.h"
#include "config.h"
#include "holidays.h"
#include "alerts.h"
#include "http_server.h"
#include "ingest.h"
#include "kafka_consumer.h"
#include "kafka_producer.h"
#include "metrics.h"
#include "log.h"
#include "notify.h"
#include "redis_client.h"
#include "redis_eviction.h"
#include "redis_tls.h"

#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef DUEWATCH_VERSION
#define DUEWATCH_VERSION "0.0.0"
#endif
#define DEFAULT_CONFIG_PATH "/etc/duewatch/duewatch.conf"

#define SIGNALS_WATCHED 3

struct daemon_state {
    struct event_base *base;
    struct config *config;
    struct clock_setup *setup;
    /* The modules (create_modules, destroy_modules), all owned here. */
    struct kafka_producer *producer; /* dead letters and alerts */
    struct redis_client *redis;
    struct redis_eviction *eviction;
    struct alerts *alerts;
    struct kafka_consumer *consumer;
    struct ingest *ingest;
    struct metrics_sources metrics; /* what /metrics reads */
    struct event *shutdown_timer;
    struct event *watchdog_timer;
    struct event *drain_timer;
    struct event *coverage_timer;
    struct http_server *http;
    struct event *signals[SIGNALS_WATCHED]; /* SIGTERM, SIGINT, SIGHUP */
    struct process_counters counters;
    bool stopping;
    int64_t stop_deadline_ms; /* monotonic: SIGTERM + shutdown_timeout_ms */
};

/* What the Kafka close gets at least, after the work in flight took the whole
 * shutdown_timeout_ms: a shutdown ends within that plus this (and the unit's
 * TimeoutStopSec stays above the largest sum). */
#define KAFKA_CLOSE_MIN_MS 1000

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void send_watchdog(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    /* Sent from the loop itself: a loop that hangs stops sending, and systemd
     * restarts the service. */
    notify_watchdog();
}

/* The holiday calendar's official years ending soon: warn at start-up,
 * after a reload and every few hours while it lasts (the metric
 * duewatch_calendar_official_ending says the same; readiness is kept). */
static void warn_if_calendar_ending(const struct clock_setup *setup)
{
    struct calendar_coverage coverage;
    clock_setup_coverage(setup, calendar_wall_now_ms(), &coverage);
    if (!coverage.official_ending)
        return;
    char official_end[11], end[11];
    calendar_format_day(calendar_local_day(coverage.official_end_ms - 1), official_end,
                        sizeof official_end);
    calendar_format_day(calendar_local_day(coverage.end_ms - 1), end, sizeof end);
    log_warning("holiday calendar: its official years end %s; deadlines after that use "
                "provisional years (statutory holidays only, up to %s) and are marked "
                "provisional: add the State Council's schedule for the next year to the "
                "holidays file and reload",
                official_end, end);
}

static void check_calendar_coverage(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon_state *state = arg;
    warn_if_calendar_ending(state->setup);
}

/* ---- the modules and their wiring ---- */

/* Redis connected and set up, or lost.  The ingest pipeline hears of it
 * first, so that its position lookup and batches go out ahead of the alert
 * delivery's catch-up.  (Called from the loop only: every module exists.) */
static void redis_ready(void *arg, bool ready)
{
    struct daemon_state *state = arg;
    ingest_redis_ready(state->ingest, ready);
    if (ready) {
        alerts_redis_ready(state->alerts, true);
        redis_eviction_check(state->eviction);
    }
}

/* The consumer's callbacks, for the ingest pipeline: it is created after the
 * consumer, which it needs, and the consumer calls back from the loop only. */
static void consumer_message(void *arg, rd_kafka_message_t *message)
{
    struct daemon_state *state = arg;
    ingest_message(state->ingest, message);
}

static void consumer_assign(void *arg, rd_kafka_topic_partition_list_t *partitions)
{
    struct daemon_state *state = arg;
    ingest_assign(state->ingest, partitions);
}

static void consumer_revoke(void *arg, bool lost)
{
    struct daemon_state *state = arg;
    ingest_revoke(state->ingest, lost);
}

/* Creates the modules, each handed those it needs: the producer (dead letters
 * and alerts), the Redis client and its eviction check, the alert delivery, the consumer and the
 * ingest pipeline.  Returns 0, or -1 with a message in err (destroy_modules
 * frees what was created). */
static int create_modules(struct daemon_state *state, char *err, size_t err_size)
{
    static const struct kafka_consumer_callbacks callbacks = {consumer_message, consumer_assign,
                                                              consumer_revoke};
    state->producer = kafka_producer_create(state->base, state->config, err, err_size);
    if (state->producer == NULL)
        return -1;
    state->redis = redis_client_create(state->base, state->config, redis_ready, state);
    if (state->redis == NULL) {
        snprintf(err, err_size, "cannot create the Redis client");
        return -1;
    }
    state->eviction = redis_eviction_create(state->base, state->redis);
    if (state->eviction == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    state->alerts =
        alerts_create(state->base, state->config, state->setup, state->redis, state->producer);
    if (state->alerts == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    state->consumer =
        kafka_consumer_create(state->base, state->config, &callbacks, state, err, err_size);
    if (state->consumer == NULL)
        return -1;
    state->ingest = ingest_create(state->base, state->config, state->setup, state->redis,
                                  state->producer, state->consumer, state->alerts, err, err_size);
    if (state->ingest == NULL)
        return -1;
    state->metrics = (struct metrics_sources){state->ingest, state->alerts, state->consumer,
                                              state->eviction, &state->counters};
    return 0;
}

/* After the loop has stopped: dead letters and alerts still on their way are
 * delivered or abandoned (a dead letter's message offset was never stored, so
 * it is consumed again; an alert is re-sent from its outbox), then the
 * consumer commits the stored offsets and leaves the group.  Both within what
 * is left of shutdown_timeout_ms, the close at least KAFKA_CLOSE_MIN_MS.  The
 * dead letters and the alert delivery keep their pointer to the producer,
 * unused from now on. */
static void close_kafka(struct daemon_state *state)
{
    if (state->stop_deadline_ms == 0)
        state->stop_deadline_ms = monotonic_ms() + state->config->shutdown_timeout_ms;
    int64_t left = state->stop_deadline_ms - monotonic_ms();
    kafka_producer_destroy(state->producer, left > 0 ? (int)left : 0);
    state->producer = NULL;
    left = state->stop_deadline_ms - monotonic_ms();
    kafka_consumer_close(state->consumer,
                         left > KAFKA_CLOSE_MIN_MS ? (int)left : KAFKA_CLOSE_MIN_MS);
}

/* Frees the modules; any may be missing.  The Redis client goes first: its
 * pending callbacks (NULL replies) still find the batches and look-ups they
 * refer to.  The ingest pipeline releases the messages it holds before the
 * consumer that made them goes. */
static void destroy_modules(struct daemon_state *state)
{
    redis_client_destroy(state->redis);
    redis_eviction_destroy(state->eviction);
    ingest_destroy(state->ingest);
    kafka_consumer_destroy(state->consumer);
    alerts_destroy(state->alerts);
    kafka_producer_destroy(state->producer, -1);
}

static void announce_ready(void *arg)
{
    struct daemon_state *state = arg;
    (void)state;
    log_notice("ready: Redis set up, consumer group joined");
    notify_ready("consuming");
}

/* A config file holding a password should be readable by its owner (and
 * group) only: say so at start-up, as ssh does for private keys. */
static void warn_if_secret_exposed(const struct config *config)
{
    struct stat info;
    if (config_holds_secret(config) && stat(config->path, &info) == 0 &&
        (info.st_mode & S_IROTH))
        log_warning("%s holds a password and is readable by others (mode %03o); "
                    "chmod o-r it", config->path, (unsigned)(info.st_mode & 0777));
}

/* --check-config: what was loaded, with the calendar's official and
 * provisional years. */
static void print_check_summary(const char *config_path, const struct clock_setup *setup)
{
    struct calendar_coverage coverage;
    clock_setup_coverage(setup, calendar_wall_now_ms(), &coverage);
    int first_year, official_year, last_year, month, day;
    calendar_day_to_ymd(holidays_first_day(clock_setup_holidays(setup)), &first_year, &month,
                        &day);
    calendar_day_to_ymd(calendar_local_day(coverage.official_end_ms - 1), &official_year, &month,
                        &day);
    calendar_day_to_ymd(calendar_local_day(coverage.end_ms - 1), &last_year, &month, &day);
    printf("%s: configuration OK (%zu rules)\n", config_path, clock_setup_rule_count(setup));
    printf("holiday calendar: official %d..%d", first_year, official_year);
    if (last_year > official_year)
        printf(", provisional %d..%d (statutory holidays only)", official_year + 1, last_year);
    printf("\n");
}

/* --explain-clock RULE: the record on stdin (as stored), its clock as JSON
 * on stdout.  Returns the exit status. */
static int explain_clock(const struct clock_setup *setup, const char *rule)
{
    char err[300];
    if (clock_explain(setup, rule, stdin, stdout, err, sizeof err) != 0) {
        fprintf(stderr, "duewatchd: --explain-clock %s: %s\n", rule, err);
        return 1;
    }
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}

/* --print-config: secrets masked unless --show-secrets asks for them. */
static void print_effective(const struct config *config, bool show_secrets)
{
    if (show_secrets)
        config_write_effective_with_secrets(config, stdout);
    else
        config_write_effective(config, stdout);
}

/* libevent's own messages go through our logger, at the matching priority. */
static void log_from_libevent(int severity, const char *message)
{
    enum log_level level = severity == EVENT_LOG_ERR    ? LOG_LEVEL_ERROR
                           : severity == EVENT_LOG_WARN ? LOG_LEVEL_WARNING
                           : severity == EVENT_LOG_MSG  ? LOG_LEVEL_INFO
                                                        : LOG_LEVEL_DEBUG;
    log_write(level, "libevent: %s", message);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: duewatchd [-c FILE] [--check-config] [--print-config [--show-secrets]]\n"
            "       duewatchd [-c FILE] --explain-clock RULE < RECORD\n"
            "       duewatchd --help | --version | --config-reference\n"
            "\n"
            "Watches legal deadlines: consumes case and incident events from Kafka, keeps\n"
            "counters and deadline clocks in Redis, and raises early-warning alerts.\n"
            "\n"
            "  -c, --config FILE     configuration file (default %s)\n"
            "  -t, --check-config    load and validate the configuration, then exit\n"
            "      --print-config    print the effective configuration (secrets masked) and\n"
            "                        exit; the rules and holiday files are not read\n"
            "      --show-secrets    with --print-config: secrets in clear (for the duewatch\n"
            "                        tool; nothing the caller cannot read in FILE itself)\n"
            "      --explain-clock RULE  read a clock record of RULE (as stored in Redis) on\n"
            "                        stdin and print, as JSON, its deadline, last day and\n"
            "                        levels as the rules and calendar of FILE compute them\n"
            "                        (for the duewatch tool's `clock` command)\n"
            "      --config-reference  print every key with its default and meaning\n"
            "  -V, --version         print the version and whether Redis TLS is built in\n"
            "  -h, --help            this text\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop cleanly; SIGHUP reloads the configuration.\n",
            DEFAULT_CONFIG_PATH);
}

/* Shutdown, second step: alerts already handed to the producer are waited for
 * (their delivery reports remove them from the outbox), bounded by the
 * shutdown timer. */
static void check_alerts_delivered(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon_state *state = arg;
    struct alerts_stats alerts;
    alerts_get_stats(state->alerts, &alerts);
    if (alerts.in_flight == 0)
        event_base_loopbreak(state->base);
}

/* Shutdown, first step done: the consumed batches are applied (or dropped). */
static void stop_loop(void *arg)
{
    struct daemon_state *state = arg;
    struct timeval interval = {0, 20000};
    state->drain_timer = event_new(state->base, -1, EV_PERSIST, check_alerts_delivered, state);
    if (state->drain_timer == NULL || event_add(state->drain_timer, &interval) != 0)
        event_base_loopbreak(state->base);
}

static void shutdown_timed_out(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon_state *state = arg;
    log_warning("shutdown: work in flight did not finish in time; abandoning it (a batch "
                "not applied is consumed again, an alert not acknowledged is re-sent from "
                "its outbox, after restart)");
    event_base_loopbreak(state->base);
}

/* After the first SIGTERM/SIGINT, another one ends the process at once,
 * wherever it is (the loop, or a librdkafka call that waits): what was not
 * finished is redone after restart, as after a crash. */
static void stop_now(int signal_number)
{
    (void)signal_number;
    static const char line[] = "<5>second signal: exiting now (the work in flight is "
                               "redone after restart)\n";
    ssize_t ignored = write(STDERR_FILENO, line, sizeof line - 1);
    (void)ignored;
    _exit(EXIT_FAILURE);
}

static void on_terminate(evutil_socket_t signal_number, short what, void *arg)
{
    (void)what;
    struct daemon_state *state = arg;
    if (state->stopping)
        return; /* only until stop_now is in place */
    state->stopping = true;
    struct sigaction hard = {.sa_handler = stop_now};
    sigaction(SIGTERM, &hard, NULL);
    sigaction(SIGINT, &hard, NULL);
    notify_stopping();
    log_notice("%s: stopping (a second signal stops at once)", strsignal((int)signal_number));
    int timeout = state->config->shutdown_timeout_ms;
    state->stop_deadline_ms = monotonic_ms() + timeout;
    struct timeval tv = {timeout / 1000, (timeout % 1000) * 1000};
    evtimer_add(state->shutdown_timer, &tv);
    ingest_begin_shutdown(state->ingest, stop_loop, state);
}

static void on_reload(evutil_socket_t signal_number, short what, void *arg)
{
    (void)signal_number;
    (void)what;
    struct daemon_state *state = arg;
    char err[1024];
    log_notice("SIGHUP: reloading %s", state->config->path);
    notify_reloading();
    struct config *fresh = config_load(state->config->path, err, sizeof err);
    if (fresh != NULL && kafka_check_properties(fresh, err, sizeof err) != 0) {
        config_destroy(fresh);
        fresh = NULL;
    }
    if (fresh == NULL) {
        log_error("reload failed, keeping the running configuration: %s", err);
        state->counters.reloads_failed++;
        notify_ready("reload failed; running on the previous configuration");
        return;
    }
    char changed[512];
    if (config_restart_only_changes(state->config, fresh, changed, sizeof changed) > 0) {
        /* The running values of these stay in force until a restart; the
         * reloadable changes still apply. */
        log_warning("reload: ignored until restart (these keys need one): %s", changed);
        config_keep_restart_only(fresh, state->config);
    }
    struct clock_setup *fresh_setup = clock_setup_load(fresh, err, sizeof err);
    if (fresh_setup == NULL) {
        log_error("reload failed, keeping the running configuration and rules: %s", err);
        state->counters.reloads_failed++;
        config_destroy(fresh);
        notify_ready("reload failed; running on the previous rules");
        return;
    }
    ingest_set_config(state->ingest, fresh, fresh_setup);
    redis_client_set_config(state->redis, fresh);
    alerts_set_config(state->alerts, fresh, fresh_setup);
    log_set_level((enum log_level)fresh->log_level);
    config_destroy(state->config);
    clock_setup_destroy(state->setup);
    state->config = fresh;
    state->setup = fresh_setup;
    state->counters.reloads_applied++;
    log_notice("reload: configuration and %zu rules applied",
               clock_setup_rule_count(fresh_setup));
    warn_if_calendar_ending(fresh_setup);
    notify_ready("consuming");
}

/* With redis_tls: loads the CA, certificate and key once, so that
 * --check-config and start-up report an unreadable or mismatched file. */
static int check_redis_tls(const struct config *config, char *err, size_t err_size)
{
    if (!config->redis_tls)
        return 0;
    struct redis_tls *tls = redis_tls_create(config, err, err_size);
    redis_tls_destroy(tls);
    return tls != NULL ? 0 : -1;
}

/* --version: the version, and whether this build speaks TLS to Redis (the
 * TLS tests skip a build that does not). */
static void print_version(void)
{
    char tls[160];
    redis_tls_describe_build(tls, sizeof tls);
    printf("duewatchd %s\n%s\n", DUEWATCH_VERSION, tls);
}

/* The command line. */
struct options {
    const char *config_path;
    const char *explain_rule; /* --explain-clock RULE */
    bool check_only, print_config, show_secrets;
};

/* Parses the command line into options; answers --config-reference,
 * --version and --help. Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct options *options)
{
    static const struct option known[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"print-config", no_argument, NULL, 'p'},
        {"show-secrets", no_argument, NULL, 's'},
        {"explain-clock", required_argument, NULL, 'e'},
        {"config-reference", no_argument, NULL, 'r'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *options = (struct options){.config_path = DEFAULT_CONFIG_PATH};
    int option;
    while ((option = getopt_long(argc, argv, "c:tVh", known, NULL)) != -1) {
        switch (option) {
        case 'c': options->config_path = optarg; break;
        case 't': options->check_only = true; break;
        case 'p': options->print_config = true; break;
        case 's': options->show_secrets = true; break;
        case 'e': options->explain_rule = optarg; break;
        case 'r': config_write_reference(stdout); return 0;
        case 'V': print_version(); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (options->show_secrets && !options->print_config) {
        fprintf(stderr, "duewatchd: --show-secrets goes with --print-config\n");
        usage(stderr);
        return 2;
    }
    if (optind != argc) {
        fprintf(stderr, "duewatchd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return -1;
}

/* Loads the configuration, its TLS files, the time zone, the rules and the
 * calendar into state (errors on stderr: nothing runs yet); answers
 * --print-config and --check-config. Returns -1 to go on and run, else the
 * exit status, with state's configuration and rules destroyed. */
static int load_configuration(struct daemon_state *state, const struct options *options)
{
    char err[1024];
    const char *path = options->config_path;
    state->config = config_load(path, err, sizeof err);
    if (state->config == NULL || kafka_check_properties(state->config, err, sizeof err) != 0) {
        fprintf(stderr, "duewatchd: %s\n", err);
        goto fail;
    }
    if (check_redis_tls(state->config, err, sizeof err) != 0) {
        fprintf(stderr, "duewatchd: %s: %s\n", path, err);
        goto fail;
    }
    if (calendar_init(state->config->timezone, err, sizeof err) != 0) {
        fprintf(stderr, "duewatchd: %s: timezone: %s\n", path, err);
        goto fail;
    }
    warn_if_secret_exposed(state->config);
    if (options->print_config && !options->check_only) {
        /* The settings alone, as the operator tool reads them (it needs no
         * rules); --check-config checks the rules and the calendar. */
        print_effective(state->config, options->show_secrets);
        config_destroy(state->config);
        return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    }
    state->setup = clock_setup_load(state->config, err, sizeof err);
    if (state->setup == NULL) {
        fprintf(stderr, "duewatchd: %s\n", err);
        goto fail;
    }
    if (options->explain_rule != NULL) {
        int status = explain_clock(state->setup, options->explain_rule);
        clock_setup_destroy(state->setup);
        config_destroy(state->config);
        return status;
    }
    if (options->check_only) {
        if (options->print_config)
            print_effective(state->config, options->show_secrets);
        print_check_summary(path, state->setup);
        clock_setup_destroy(state->setup);
        config_destroy(state->config);
        return 0;
    }
    return -1;
fail:
    config_destroy(state->config);
    return 1;
}

/* Arms a persistent timer every interval; NULL when it cannot. */
static struct event *arm_timer(struct event_base *base, const struct timeval *interval,
                               event_callback_fn callback, void *arg)
{
    struct event *timer = event_new(base, -1, EV_PERSIST, callback, arg);
    if (timer != NULL && event_add(timer, interval) != 0) {
        event_free(timer);
        timer = NULL;
    }
    return timer;
}

/* Everything the loop runs: the signals as events, the modules, the HTTP
 * port, the watchdog and the calendar coverage timers. 0, or -1 logged (the
 * caller destroys what was made). */
static int start_daemon(struct daemon_state *state, const char *config_path)
{
    char err[1024];
    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(log_from_libevent);
    state->base = event_base_new();
    if (state->base == NULL) {
        log_error("cannot create the event loop");
        return -1;
    }
    state->shutdown_timer = evtimer_new(state->base, shutdown_timed_out, state);
    static const struct {
        int number;
        event_callback_fn callback;
    } handled[SIGNALS_WATCHED] = {{SIGTERM, on_terminate}, {SIGINT, on_terminate},
                                  {SIGHUP, on_reload}};
    for (int i = 0; i < SIGNALS_WATCHED; i++) {
        state->signals[i] = evsignal_new(state->base, handled[i].number, handled[i].callback,
                                         state);
        if (state->signals[i] == NULL || evsignal_add(state->signals[i], NULL) != 0) {
            log_error("cannot watch signals");
            return -1;
        }
    }
    if (create_modules(state, err, sizeof err) != 0) {
        log_error("%s", err);
        return -1;
    }
    state->counters.started_at_ms = calendar_wall_now_ms();
    if (state->config->http_listen[0]) {
        state->http = http_server_create(state->base, state->config, &state->metrics, err,
                                         sizeof err);
        if (state->http == NULL) {
            log_error("%s", err);
            return -1;
        }
    }
    ingest_on_ready(state->ingest, announce_ready, state);
    uint64_t watchdog_usec = state->config->watchdog_interval_ms > 0
                                 ? (uint64_t)state->config->watchdog_interval_ms * 1000
                                 : notify_watchdog_interval_usec();
    if (watchdog_usec > 0) {
        struct timeval interval = {(time_t)(watchdog_usec / 1000000),
                                   (suseconds_t)(watchdog_usec % 1000000)};
        state->watchdog_timer = arm_timer(state->base, &interval, send_watchdog, state);
        if (state->watchdog_timer == NULL) {
            log_error("cannot arm the watchdog timer");
            return -1;
        }
        notify_watchdog();
    }
    log_notice("duewatchd %s started (config %s, topics %s..., group %s)", DUEWATCH_VERSION,
               config_path, state->config->input_topics[0],
               config_kafka_property(state->config, KAFKA_SCOPE_CONSUMER, "group.id"));
    warn_if_calendar_ending(state->setup);
    struct timeval six_hours = {6 * 3600, 0};
    state->coverage_timer = arm_timer(state->base, &six_hours, check_calendar_coverage, state);
    if (state->coverage_timer == NULL) {
        log_error("cannot arm the calendar coverage timer");
        return -1;
    }
    return 0;
}

static void log_stop_summary(const struct daemon_state *state)
{
    struct ingest_stats stats;
    ingest_get_stats(state->ingest, &stats);
    uint64_t dead = 0;
    for (int i = 0; i < REJECT_COUNT; i++)
        dead += stats.dead_letters.sent[i];
    log_notice("stopped: %llu messages consumed, %llu events applied, %llu duplicates, "
               "%llu dead-lettered",
               (unsigned long long)stats.messages_consumed,
               (unsigned long long)stats.batches.events_applied,
               (unsigned long long)stats.batches.events_duplicate, (unsigned long long)dead);
}

/* Frees what start_daemon made, whatever it got to, and the configuration. */
static void stop_daemon(struct daemon_state *state)
{
    http_server_destroy(state->http);
    destroy_modules(state);
    for (int i = 0; i < SIGNALS_WATCHED; i++)
        if (state->signals[i])
            event_free(state->signals[i]);
    struct event *timers[] = {state->shutdown_timer, state->watchdog_timer, state->drain_timer,
                              state->coverage_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        if (timers[i])
            event_free(timers[i]);
    if (state->base)
        event_base_free(state->base);
    clock_setup_destroy(state->setup);
    config_destroy(state->config);
}

int main(int argc, char **argv)
{
    struct options options;
    int answered = parse_options(argc, argv, &options);
    if (answered >= 0)
        return answered;
    struct daemon_state state = {0};
    answered = load_configuration(&state, &options);
    if (answered >= 0)
        return answered;
    log_set_level((enum log_level)state.config->log_level);
    int status = 1;
    if (start_daemon(&state, options.config_path) == 0) {
        event_base_dispatch(state.base);
        close_kafka(&state);
        log_stop_summary(&state);
        log_flush_suppressed();
        status = 0;
    }
    stop_daemon(&state);
    return status;
}
