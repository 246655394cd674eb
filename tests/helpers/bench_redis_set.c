/* bench_redis_set: the Redis limit for `make bench` (scripts/bench.sh).  One
 * `SET <prefix><id> 1 NX EX <ttl>` per event -- the dedupe write every event
 * costs duewatch at the least -- pipelined from a bare hiredis client, for the
 * ids of the benchmark's data file.
 *
 * Usage: bench_redis_set HOST PORT DATAFILE [--depth D] [--prefix P] [--ttl S]
 *   defaults: depth 128, prefix "dw:bench:ev:", ttl 2592000 (30 days)
 *
 * DATAFILE (written by scripts/bench_events.py): records of
 *   u32 partition, u32 key length, key, u32 value length, value
 * (little endian); each value is decoded with event_decode for its id.
 * Commands are sent D at a time and their D replies read (as redis-benchmark
 * -P D does).  Prints one line
 *   commands=N created=C seconds=S rate=R
 * timing only the Redis part (decoding and formatting come first). */
#include "event.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        perror(path);
        exit(1);
    }
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)length + 1);
    if (data == NULL || fread(data, 1, (size_t)length, file) != (size_t)length) {
        fprintf(stderr, "bench_redis_set: cannot read %s\n", path);
        exit(1);
    }
    fclose(file);
    *size = (size_t)length;
    return data;
}

static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_redis_set HOST PORT DATAFILE [--depth D] [--prefix P] "
                        "[--ttl S]\n");
        return 2;
    }
    const char *host = argv[1], *path = argv[3];
    int port = atoi(argv[2]);
    int depth = 128;
    const char *prefix = "dw:bench:ev:";
    const char *ttl = "2592000";
    for (int i = 4; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--depth") == 0)
            depth = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--prefix") == 0)
            prefix = argv[i + 1];
        else if (strcmp(argv[i], "--ttl") == 0)
            ttl = argv[i + 1];
        else {
            fprintf(stderr, "bench_redis_set: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (depth < 1)
        depth = 1;

    size_t size;
    unsigned char *data = read_file(path, &size);
    size_t capacity = 1024, count = 0;
    char **keys = malloc(capacity * sizeof *keys);
    size_t *key_lengths = malloc(capacity * sizeof *key_lengths);
    size_t prefix_length = strlen(prefix);
    const struct event_limits limits = {65536, 8, 0};
    for (size_t at = 0; at + 12 <= size;) {
        uint32_t key_length = read_u32(data + at + 4);
        uint32_t value_length = read_u32(data + at + 8 + key_length);
        const unsigned char *value = data + at + 12 + key_length;
        at += 12 + (size_t)key_length + value_length;
        struct duewatch_event event;
        char detail[200];
        if (event_decode(value, value_length, &limits, &event, detail, sizeof detail) !=
                EVENT_VALID ||
            event.id.length == 0 || event.type == EVENT_CLOCK_TICK)
            continue;
        if (count == capacity) {
            capacity *= 2;
            keys = realloc(keys, capacity * sizeof *keys);
            key_lengths = realloc(key_lengths, capacity * sizeof *key_lengths);
        }
        keys[count] = malloc(prefix_length + event.id.length);
        memcpy(keys[count], prefix, prefix_length);
        memcpy(keys[count] + prefix_length, event.id.bytes, event.id.length);
        key_lengths[count] = prefix_length + event.id.length;
        count++;
    }
    free(data);

    redisContext *c = redisConnect(host, port);
    if (c == NULL || c->err) {
        fprintf(stderr, "bench_redis_set: connect: %s\n", c ? c->errstr : "out of memory");
        return 1;
    }
    long long created = 0;
    double start = now_seconds();
    for (size_t i = 0; i < count; i += (size_t)depth) {
        size_t n = count - i < (size_t)depth ? count - i : (size_t)depth;
        for (size_t j = 0; j < n; j++) {
            const char *args[] = {"SET", keys[i + j], "1", "NX", "EX", ttl};
            size_t lengths[] = {3, key_lengths[i + j], 1, 2, 2, strlen(ttl)};
            redisAppendCommandArgv(c, 6, args, lengths);
        }
        for (size_t j = 0; j < n; j++) {
            redisReply *reply = NULL;
            if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
                fprintf(stderr, "bench_redis_set: %s\n", c->errstr);
                return 1;
            }
            if (reply->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "bench_redis_set: %s\n", reply->str);
                return 1;
            }
            if (reply->type == REDIS_REPLY_STATUS)
                created++;
            freeReplyObject(reply);
        }
    }
    double seconds = now_seconds() - start;
    printf("commands=%zu created=%lld seconds=%.3f rate=%.0f\n", count, created, seconds,
           seconds > 0 ? (double)count / seconds : 0.0);
    redisFree(c);
    for (size_t i = 0; i < count; i++)
        free(keys[i]);
    free(keys);
    free(key_lengths);
    return 0;
}
