/* bench_kafka_reader: the Kafka read limit for `make bench` (scripts/bench.sh).
 * A bare librdkafka consumer reads a whole topic and decodes every value with
 * the project's event_decode (include/event.h), counting: what duewatchd's
 * consuming side could reach with nothing else to do.
 *
 * Usage: bench_kafka_reader BOOTSTRAP TOPIC COUNT [--group] [--timeout S]
 *
 * Reads from the beginning of every partition until COUNT messages arrived
 * (explicit assignment; --group subscribes with a fresh consumer group
 * instead, paying the group join).  No offsets are committed.  Prints one line
 *   messages=N valid=V seconds=S rate=R
 * where S runs from the first message to the last (the join or assignment is
 * not counted) and R = (N - 1) / S.  Exits 1 when COUNT is not reached within
 * --timeout seconds of silence (default 30). */
#include "event.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char err[512];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "bench_kafka_reader: %s=%s: %s\n", name, value, err);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_kafka_reader BOOTSTRAP TOPIC COUNT [--group] [--timeout S]\n");
        return 2;
    }
    const char *bootstrap = argv[1], *topic = argv[2];
    long long want = strtoll(argv[3], NULL, 10);
    bool use_group = false;
    double silence_timeout = 30;
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--group") == 0)
            use_group = true;
        else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
            silence_timeout = atof(argv[++i]);
        else {
            fprintf(stderr, "bench_kafka_reader: unknown argument %s\n", argv[i]);
            return 2;
        }
    }

    char group[64];
    snprintf(group, sizeof group, "bench-kafka-reader-%ld", (long)getpid());
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", group);
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.auto.offset.store", "false");
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.partition.eof", "false");
    set(conf, "log_level", "3");
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "bench_kafka_reader: rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);

    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(64);
    if (use_group) {
        rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, list);
        if (e) {
            fprintf(stderr, "bench_kafka_reader: subscribe: %s\n", rd_kafka_err2str(e));
            return 1;
        }
    } else {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        const struct rd_kafka_metadata *metadata = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &metadata, 10000);
        if (e || metadata->topic_cnt != 1 || metadata->topics[0].err) {
            fprintf(stderr, "bench_kafka_reader: metadata for %s: %s\n", topic,
                    rd_kafka_err2str(e ? e : metadata->topics[0].err));
            return 1;
        }
        for (int p = 0; p < metadata->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(list, topic, metadata->topics[0].partitions[p].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(metadata);
        rd_kafka_topic_destroy(rkt);
        e = rd_kafka_assign(rk, list);
        if (e) {
            fprintf(stderr, "bench_kafka_reader: assign: %s\n", rd_kafka_err2str(e));
            return 1;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);

    const struct event_limits limits = {65536, 8, 0};
    long long messages = 0, valid = 0;
    double first = 0, last = 0, last_progress = now_seconds();
    while (messages < want) {
        rd_kafka_message_t *message = rd_kafka_consumer_poll(rk, 100);
        double now = now_seconds();
        if (message == NULL) {
            if (now - last_progress > silence_timeout)
                break;
            continue;
        }
        if (message->err) {
            if (message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "bench_kafka_reader: %s\n", rd_kafka_message_errstr(message));
            rd_kafka_message_destroy(message);
            continue;
        }
        if (messages == 0)
            first = now;
        last = last_progress = now;
        messages++;
        struct duewatch_event event;
        char detail[200];
        if (event_decode(message->payload, message->len, &limits, &event, detail,
                         sizeof detail) == EVENT_VALID)
            valid++;
        rd_kafka_message_destroy(message);
    }
    double seconds = last - first;
    printf("messages=%lld valid=%lld seconds=%.3f rate=%.0f\n", messages, valid, seconds,
           seconds > 0 ? (double)(messages - 1) / seconds : 0.0);
    fflush(stdout);
    rd_kafka_unsubscribe(rk);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return messages >= want ? 0 : 1;
}
