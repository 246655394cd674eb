/* A consumer of duewatch's alert topic in C (README "Alert message"):
 * librdkafka reads the topic in a consumer group, msgpack-c decodes each
 * value, and one line per alert is printed:
 *     <alert_id> <clock_id> <level> <state> <text>
 * Usage: alert_consumer <bootstrap> <topic> <group> [count]
 * (count: stop after that many alerts; without it, read until killed).
 * `make all` builds it (build/examples/alert_consumer) so it cannot rot;
 * tests/e2e/test_schemas.py runs it against the daemon's alerts.
 * Offsets are committed after an alert is handled: at least once, so a
 * consumer that restarts may see an alert again -- its alert_id is the same,
 * which makes handling idempotent. */
#include <librdkafka/rdkafka.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The string value of `key` in a msgpack map ("" when absent or no string). */
static msgpack_object_str field(const msgpack_object *map, const char *key)
{
    msgpack_object_str none = {0, ""};
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *pair = &map->via.map.ptr[i];
        if (pair->key.type == MSGPACK_OBJECT_STR && pair->key.via.str.size == strlen(key) &&
            memcmp(pair->key.via.str.ptr, key, strlen(key)) == 0)
            return pair->val.type == MSGPACK_OBJECT_STR ? pair->val.via.str : none;
    }
    return none;
}

static void print_alert(const void *value, size_t size)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    if (msgpack_unpack_next(&unpacked, value, size, NULL) == MSGPACK_UNPACK_SUCCESS &&
        unpacked.data.type == MSGPACK_OBJECT_MAP) {
        const char *keys[] = {"alert_id", "clock_id", "level", "state", "text"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            msgpack_object_str text = field(&unpacked.data, keys[i]);
            printf("%s%.*s", i ? " " : "", (int)text.size, text.ptr);
        }
        printf("\n");
        fflush(stdout);
    }
    msgpack_unpacked_destroy(&unpacked);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s <bootstrap> <topic> <group> [count]\n", argv[0]);
        return 2;
    }
    long count = argc > 4 ? strtol(argv[4], NULL, 10) : -1;
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) ||
        rd_kafka_conf_set(conf, "group.id", argv[3], err, sizeof err) ||
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, sizeof err) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (consumer == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[2], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t subscribed = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    while (subscribed == RD_KAFKA_RESP_ERR_NO_ERROR && count != 0) {
        rd_kafka_message_t *message = rd_kafka_consumer_poll(consumer, 1000);
        if (message == NULL)
            continue;
        if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            print_alert(message->payload, message->len);
            rd_kafka_commit_message(consumer, message, 0);
            if (count > 0)
                count--;
        }
        rd_kafka_message_destroy(message);
    }
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return subscribed == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : 1;
}
