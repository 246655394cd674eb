/* mock_cluster: hosts librdkafka's in-process mock Kafka cluster in a process
 * of its own, so the end-to-end tests can kill and restart duewatchd while
 * "Kafka" (its topics, offsets and committed group offsets) stays up.
 *
 * Usage: mock_cluster [--brokers N] [--topic NAME:PARTITIONS]... [--no-stdin]
 *
 * Prints exactly one line "BOOTSTRAP=host:port,..." on stdout once the
 * brokers listen (they bind 127.0.0.1 only), then serves until SIGTERM,
 * SIGINT, the command "quit", or end of standard input.  Exiting on stdin EOF
 * means a test runner that dies without cleaning up does not leave brokers
 * behind (its end of the pipe closes).  Use --no-stdin to run it detached
 * (for example `mock_cluster --no-stdin &` from a script, whose stdin may be
 * /dev/null).
 *
 * Commands on stdin, one per line, each answered by one line "OK ..." or
 * "ERR reason":
 *   topic NAME PARTITIONS            create a topic (replication factor 1)
 *   errors API_KEY COUNT ERR...      the next COUNT requests of API_KEY fail
 *                                    with these errors in order (one ERR
 *                                    given = repeated COUNT times).  API keys:
 *                                    Produce=0 Fetch=1 ListOffsets=2
 *                                    Metadata=3 OffsetCommit=8 OffsetFetch=9
 *                                    FindCoordinator=10 JoinGroup=11
 *                                    Heartbeat=12 SyncGroup=14.  ERR is an
 *                                    rd_kafka_resp_err_t number (e.g. 6,
 *                                    -195) or name (NOT_LEADER_FOR_PARTITION,
 *                                    _TRANSPORT)
 *   clear_errors API_KEY             drop errors still queued for API_KEY
 *   broker_down ID | broker_up ID    disconnect / reconnect a broker (-1 = all)
 *   rtt ID MS                        delay a broker's responses
 *   ping                             answers OK (a liveness probe)
 *   quit                             exit
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_COMMAND_LINE 4096
#define MAX_INJECTED_ERRORS 1000
#define MAX_WORDS (MAX_INJECTED_ERRORS + 4)

static volatile sig_atomic_t stop_signal_received;

static void on_stop_signal(int signal_number)
{
    (void)signal_number;
    stop_signal_received = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: mock_cluster [--brokers N] [--topic NAME:PARTITIONS]... [--no-stdin]\n");
}

/* Parses a whole decimal integer within [min, max]; false otherwise. */
static bool parse_long(const char *text, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

/* Accepts an error code as a number or as its librdkafka name, with or
 * without the RD_KAFKA_RESP_ERR_ prefix ("6", "NOT_LEADER_FOR_PARTITION",
 * "_TRANSPORT"), because names are what people read in logs. */
static bool parse_error_code(const char *text, rd_kafka_resp_err_t *out)
{
    long number;
    if (parse_long(text, INT_MIN, INT_MAX, &number)) {
        *out = (rd_kafka_resp_err_t)number;
        return true;
    }
    const char *name = text;
    if (strncmp(name, "RD_KAFKA_RESP_ERR_", 18) == 0)
        name += 18;
    const struct rd_kafka_err_desc *descriptions = NULL;
    size_t count = 0;
    rd_kafka_get_err_descs(&descriptions, &count);
    for (size_t i = 0; i < count; i++) {
        if (descriptions[i].name != NULL && strcmp(descriptions[i].name, name) == 0) {
            *out = descriptions[i].code;
            return true;
        }
    }
    return false;
}

static bool create_topic(rd_kafka_mock_cluster_t *cluster, const char *name, long partitions,
                         char *reason, size_t reason_size)
{
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(cluster, name, (int)partitions, 1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(reason, reason_size, "cannot create topic %s: %s", name, rd_kafka_err2str(err));
        return false;
    }
    return true;
}

/* Runs one stdin command; writes the reply line (without newline) to reply.
 * Returns false when the command asks us to exit. */
static bool run_command(rd_kafka_mock_cluster_t *cluster, char *line, char *reply,
                        size_t reply_size)
{
    char *words[MAX_WORDS];
    size_t word_count = 0;
    char *saveptr = NULL;
    for (char *word = strtok_r(line, " \t\r", &saveptr); word != NULL;
         word = strtok_r(NULL, " \t\r", &saveptr)) {
        if (word_count == MAX_WORDS) {
            snprintf(reply, reply_size, "ERR too many words");
            return true;
        }
        words[word_count++] = word;
    }
    if (word_count == 0) {
        snprintf(reply, reply_size, "ERR empty command");
        return true;
    }

    const char *command = words[0];
    long a, b;
    char reason[256];
    if (strcmp(command, "quit") == 0 && word_count == 1) {
        snprintf(reply, reply_size, "OK bye");
        return false;
    }
    if (strcmp(command, "ping") == 0 && word_count == 1) {
        snprintf(reply, reply_size, "OK pong");
    } else if (strcmp(command, "topic") == 0 && word_count == 3) {
        if (!parse_long(words[2], 1, 100000, &a))
            snprintf(reply, reply_size, "ERR bad partition count '%s'", words[2]);
        else if (!create_topic(cluster, words[1], a, reason, sizeof reason))
            snprintf(reply, reply_size, "ERR %s", reason);
        else
            snprintf(reply, reply_size, "OK");
    } else if (strcmp(command, "errors") == 0 && word_count >= 4) {
        static rd_kafka_resp_err_t codes[MAX_INJECTED_ERRORS];
        size_t given = word_count - 3;
        if (!parse_long(words[1], 0, INT16_MAX, &a)) {
            snprintf(reply, reply_size, "ERR bad api key '%s'", words[1]);
        } else if (!parse_long(words[2], 1, MAX_INJECTED_ERRORS, &b)) {
            snprintf(reply, reply_size, "ERR bad count '%s' (1..%d)", words[2],
                     MAX_INJECTED_ERRORS);
        } else if (given != 1 && given != (size_t)b) {
            snprintf(reply, reply_size, "ERR %zu error codes given for count %ld", given, b);
        } else {
            for (long i = 0; i < b; i++) {
                const char *code_text = words[3 + (given == 1 ? 0 : i)];
                if (!parse_error_code(code_text, &codes[i])) {
                    snprintf(reply, reply_size, "ERR unknown error code '%s'", code_text);
                    return true;
                }
            }
            rd_kafka_mock_push_request_errors_array(cluster, (int16_t)a, (size_t)b, codes);
            snprintf(reply, reply_size, "OK");
        }
    } else if (strcmp(command, "clear_errors") == 0 && word_count == 2) {
        if (!parse_long(words[1], 0, INT16_MAX, &a)) {
            snprintf(reply, reply_size, "ERR bad api key '%s'", words[1]);
        } else {
            rd_kafka_mock_clear_request_errors(cluster, (int16_t)a);
            snprintf(reply, reply_size, "OK");
        }
    } else if ((strcmp(command, "broker_down") == 0 || strcmp(command, "broker_up") == 0) &&
               word_count == 2) {
        if (!parse_long(words[1], -1, INT32_MAX, &a)) {
            snprintf(reply, reply_size, "ERR bad broker id '%s'", words[1]);
        } else {
            rd_kafka_resp_err_t err = strcmp(command, "broker_down") == 0
                                          ? rd_kafka_mock_broker_set_down(cluster, (int32_t)a)
                                          : rd_kafka_mock_broker_set_up(cluster, (int32_t)a);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                snprintf(reply, reply_size, "ERR %s", rd_kafka_err2str(err));
            else
                snprintf(reply, reply_size, "OK");
        }
    } else if (strcmp(command, "rtt") == 0 && word_count == 3) {
        if (!parse_long(words[1], -1, INT32_MAX, &a) || !parse_long(words[2], 0, 3600000, &b)) {
            snprintf(reply, reply_size, "ERR usage: rtt BROKER_ID MILLISECONDS");
        } else {
            rd_kafka_resp_err_t err = rd_kafka_mock_broker_set_rtt(cluster, (int32_t)a, (int)b);
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                snprintf(reply, reply_size, "ERR %s", rd_kafka_err2str(err));
            else
                snprintf(reply, reply_size, "OK");
        }
    } else {
        snprintf(reply, reply_size, "ERR unknown command or wrong arguments: %s", command);
    }
    return true;
}

/* Answers every complete line in buffer[0..*used); keeps a partial last line.
 * Returns false when a command asked us to exit. */
static bool run_buffered_commands(rd_kafka_mock_cluster_t *cluster, char *buffer, size_t *used)
{
    size_t start = 0;
    bool keep_running = true;
    while (keep_running) {
        char *newline = memchr(buffer + start, '\n', *used - start);
        if (newline == NULL)
            break;
        *newline = '\0';
        char reply[512];
        keep_running = run_command(cluster, buffer + start, reply, sizeof reply);
        printf("%s\n", reply);
        fflush(stdout);
        start = (size_t)(newline - buffer) + 1;
    }
    memmove(buffer, buffer + start, *used - start);
    *used -= start;
    return keep_running;
}

int main(int argc, char **argv)
{
    long broker_count = 1;
    bool read_stdin = true;
    const char *topics[256];
    size_t topic_count = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
            if (!parse_long(argv[++i], 1, 64, &broker_count)) {
                fprintf(stderr, "mock_cluster: --brokers wants 1..64\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
            if (topic_count == sizeof topics / sizeof topics[0]) {
                fprintf(stderr, "mock_cluster: too many --topic options\n");
                return 2;
            }
            topics[topic_count++] = argv[++i];
        } else if (strcmp(argv[i], "--no-stdin") == 0) {
            read_stdin = false;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    /* Our stdout is a pipe read by the test runner: a write after it went
     * away must fail with EPIPE, not kill us mid-shutdown. */
    signal(SIGPIPE, SIG_IGN);

    /* Signals are blocked except inside the main thread's ppoll(), so one
     * arriving between the flag check and the wait still wakes the wait (no
     * lost wake-up).  Blocked before rd_kafka_new: librdkafka's threads
     * inherit the mask, so a SIGTERM cannot land in one of them (which set
     * the flag but left ppoll() asleep: the helper then never stopped). */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigset_t stop_signals, wait_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);

    char errstr[512];
    char broker_count_text[16];
    snprintf(broker_count_text, sizeof broker_count_text, "%ld", broker_count);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", broker_count_text, errstr,
                          sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mock_cluster: %s\n", errstr);
        return 1;
    }
    /* The producer is only the mock cluster's owner; it never sends anything. */
    rd_kafka_t *owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (owner == NULL) {
        fprintf(stderr, "mock_cluster: rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *cluster = rd_kafka_handle_mock_cluster(owner);
    if (cluster == NULL) {
        fprintf(stderr, "mock_cluster: librdkafka did not create a mock cluster\n");
        rd_kafka_destroy(owner);
        return 1;
    }

    int exit_code = 0;
    for (size_t i = 0; i < topic_count; i++) {
        char name[256];
        const char *colon = strrchr(topics[i], ':');
        long partitions = 0;
        size_t name_length = colon != NULL ? (size_t)(colon - topics[i]) : 0;
        if (colon == NULL || name_length == 0 || name_length >= sizeof name ||
            !parse_long(colon + 1, 1, 100000, &partitions)) {
            fprintf(stderr, "mock_cluster: --topic wants NAME:PARTITIONS, got '%s'\n", topics[i]);
            exit_code = 2;
            goto out;
        }
        memcpy(name, topics[i], name_length);
        name[name_length] = '\0';
        char reason[300];
        if (!create_topic(cluster, name, partitions, reason, sizeof reason)) {
            fprintf(stderr, "mock_cluster: %s\n", reason);
            exit_code = 1;
            goto out;
        }
    }

    printf("BOOTSTRAP=%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    fflush(stdout);

    static char buffer[MAX_COMMAND_LINE];
    size_t used = 0;
    while (!stop_signal_received) {
        struct pollfd input = {.fd = STDIN_FILENO, .events = POLLIN};
        int ready = ppoll(&input, read_stdin ? 1 : 0, NULL, &wait_mask);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("mock_cluster: ppoll");
            exit_code = 1;
            break;
        }
        if (!read_stdin || ready == 0)
            continue;
        ssize_t got = read(STDIN_FILENO, buffer + used, sizeof buffer - 1 - used);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            perror("mock_cluster: read stdin");
            exit_code = 1;
            break;
        }
        if (got == 0)
            break; /* the test runner closed the pipe or died */
        used += (size_t)got;
        if (!run_buffered_commands(cluster, buffer, &used))
            break;
        if (used == sizeof buffer - 1) {
            printf("ERR line too long\n");
            fflush(stdout);
            used = 0;
        }
    }

out:
    /* Destroying the owning handle also destroys its mock cluster. */
    rd_kafka_destroy(owner);
    return exit_code;
}
