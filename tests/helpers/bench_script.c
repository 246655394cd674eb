/* bench_script: duewatch's own batch calls (the read transaction, then the
 * computed effects through duewatch's Redis module when Redis has it, as
 * the daemon does, else apply_effects.lua) called back to back from a
 * bare hiredis client, for `make bench` (scripts/bench.sh).  Batches are
 * built and computed with the project's batch API exactly as daemon/ingest.c
 * and daemon/batch_queue.c do (event_decode, clock_setup_ops_for_event, batch_hold,
 * batch_add_event, batch_build_read, batch_compute, batch_build_write); one
 * batch's write is in flight while the next fills, as in the daemon.
 *
 *   bench_script rate CONFIG DATAFILE TOPIC [--chunk N]
 *       applies the events of DATAFILE (see bench_redis_set.c for the format;
 *       each record names its partition) in chunks of N (default 1000)
 *       messages per partition in turn, offsets counted per partition from 0,
 *       as a consumer of a pre-loaded topic sees them.  Prints
 *         events=E applied=A duplicates=D batches=B seconds=S rate=R
 *   bench_script clocks CONFIG COUNT TOPIC PARTITIONS [--spread-days D] [--keep-dedupe]
 *       starts COUNT bail clocks (measure.started kind=bail, ts spread over the
 *       last D days, default 300, so every deadline and warning is still
 *       ahead), round-robin over TOPIC's PARTITIONS; then deletes the start
 *       events' dedupe keys (a clock running for months outlived them) unless
 *       --keep-dedupe.  Prints
 *         clocks=N applied=A seconds=S rate=R used_before=B used_after=U used_after_dedupe_del=V
 *       (INFO memory used_memory, bytes)
 *
 * CONFIG is a duewatchd configuration file: Redis address, key_prefix, TTLs,
 * batch_max_events, time zone, rules and holidays come from it.  The caller
 * chooses the Redis state (the benchmark flushes it first). */
#include "batch.h"
#include "calendar.h"
#include "clock_setup.h"
#include "config.h"
#include "event.h"
#include "formats.h"
#include "lua_scripts.h"
#include "redis_client.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_script: %s: %s\n", what, detail);
    exit(1);
}

/* ---- applying batches ---- */

struct runner {
    const struct config *config;
    const struct clock_setup *setup;
    redisContext *redis;
    char read_sha[41], write_sha[41]; /* read_entries.lua, apply_effects.lua */
    bool module; /* Redis has duewatch's module: writes go to DUEWATCH.APPLY */
    struct batch_span_hints span_hints; /* as the daemon's batch queue keeps them */
    struct batch *batches[2]; /* the one filling, and the one whose write is in flight */
    struct batch *batch;      /* filling */
    bool write_in_flight;
    long long applied, duplicates, batches_sent, events;
    double started;
};

static void load_script(struct runner *r, const char *script, char sha[41])
{
    redisReply *reply = redisCommand(r->redis, "SCRIPT LOAD %s", script);
    if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->len != 40)
        die("SCRIPT LOAD", reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "failed");
    memcpy(sha, reply->str, 40);
    sha[40] = '\0';
    freeReplyObject(reply);
}

static void connect_redis(struct runner *r)
{
    r->redis = redisConnect(r->config->redis_host, r->config->redis_port);
    if (r->redis == NULL || r->redis->err)
        die("connect", r->redis ? r->redis->errstr : "out of memory");
    load_script(r, lua_read_entries, r->read_sha);
    load_script(r, lua_apply_effects, r->write_sha);
    /* the daemon's probe (daemon/redis_client.c) */
    redisReply *reply = redisCommand(r->redis, "DUEWATCH.APPLY %d", SCRIPT_ARGS_VERSION);
    r->module = reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
                reply->integer == SCRIPT_ARGS_VERSION;
    freeReplyObject(reply);
}

static long long used_memory(struct runner *r)
{
    redisReply *reply = redisCommand(r->redis, "INFO memory");
    if (reply == NULL || reply->type != REDIS_REPLY_STRING)
        die("INFO", "failed");
    const char *at = strstr(reply->str, "used_memory:");
    long long used = at ? strtoll(at + 12, NULL, 10) : -1;
    freeReplyObject(reply);
    return used;
}

static void append(struct runner *r, int argc, const char **argv, const size_t *lengths)
{
    if (redisAppendCommandArgv(r->redis, argc, argv, lengths) != REDIS_OK)
        die("append", r->redis->errstr);
    int done = 0;
    while (!done)
        if (redisBufferWrite(r->redis, &done) != REDIS_OK)
            die("write", r->redis->errstr);
}

static redisReply *next_reply(struct runner *r, const char *what)
{
    redisReply *reply = NULL;
    if (redisGetReply(r->redis, (void **)&reply) != REDIS_OK)
        die(what, r->redis->errstr);
    if (reply->type == REDIS_REPLY_ERROR)
        die(what, reply->str);
    return reply;
}

static void wait_write(struct runner *r)
{
    if (!r->write_in_flight)
        return;
    freeReplyObject(next_reply(r, "apply_effects"));
    r->write_in_flight = false;
}

static struct batch_settings settings_of(struct runner *r)
{
    return (struct batch_settings){
        .key_prefix = r->config->key_prefix,
        .dedupe_ttl_seconds = (int64_t)r->config->dedupe_ttl_days * 86400,
        .counter_ttl_seconds = (int64_t)r->config->counter_retention_days * 86400,
        .event_time = r->config->clock_mode == CLOCK_MODE_EVENT,
        .now_ms = wall_ms(),
        .wall_now_ms = wall_ms(),
        .setup = r->setup,
        .fence_key = "",
        .fence_position = 0,
        .span_hints = &r->span_hints,
    };
}

/* Sends the filling batch's read (one transaction, as
 * redis_client_send_transaction does) and computes it.  The read goes right
 * after the write in flight, so it sees it.  Returns 0, or -1 with the
 * reason in err when the computation refused the read (STALE: read again). */
static int read_and_compute(struct runner *r, const struct batch_settings *settings, char *err,
                            size_t err_size)
{
    const struct redis_command *commands;
    int count = batch_build_read(r->batch, r->read_sha, settings, &commands);
    if (count < 0)
        die("batch_build_read", "out of memory");
    static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    append(r, 1, multi, NULL);
    for (int c = 0; c < count; c++)
        append(r, commands[c].argc, commands[c].argv, commands[c].argv_lengths);
    append(r, 1, exec, NULL);
    wait_write(r);
    for (int c = 0; c <= count; c++) /* +OK, then +QUEUED for each command */
        freeReplyObject(next_reply(r, "batch read"));
    redisReply *read = next_reply(r, "batch read");
    for (size_t i = 0; read->type == REDIS_REPLY_ARRAY && i < read->elements; i++)
        if (read->element[i]->type == REDIS_REPLY_ERROR)
            die("batch read", read->element[i]->str);
    int computed = batch_compute(r->batch, read, settings, err, err_size);
    freeReplyObject(read);
    return computed;
}

/* Applies the filling batch as the daemon does: its read, its effects
 * computed and written, and the next batch fills while that write runs. */
static void send_batch(struct runner *r)
{
    if (batch_message_count(r->batch) == 0)
        return;
    const struct batch_settings settings = settings_of(r);
    if (r->batches_sent == 0)
        r->started = now_seconds();
    char err[256];
    /* a dedupe span new since the last read answers STALE once */
    for (int tries = 0; read_and_compute(r, &settings, err, sizeof err) != 0; tries++)
        if (tries == 2 || strncmp(err, "STALE", 5) != 0)
            die("batch_compute", err);
    const char **argv;
    const size_t *lengths;
    int argc = batch_build_write(r->batch, r->module ? NULL : r->write_sha, &settings, &argv,
                                 &lengths);
    if (argc < 0)
        die("batch_build_write", "out of memory");
    append(r, argc, argv, lengths);
    r->write_in_flight = true;
    r->applied += (long long)batch_applied_count(r->batch);
    r->duplicates += (long long)batch_duplicate_count(r->batch);
    r->batches_sent++;
    /* The batch whose write is in flight keeps its effects' strings until the
     * write is sent whole (it is: append flushes); fill the other one. */
    r->batch = r->batch == r->batches[0] ? r->batches[1] : r->batches[0];
    batch_reset(r->batch);
}

/* One message, as ingest.c's ingest_message handles a valid one. */
static void add_event(struct runner *r, const char *topic, int32_t partition, int64_t offset,
                      const struct duewatch_event *event)
{
    if (batch_hold(r->batch, NULL, topic, partition, offset) != 0)
        die("batch_hold", "failed");
    struct clock_op ops[CLOCK_OPS_MAX];
    int op_count = 0;
    char detail[200];
    if (event->type != EVENT_CLOCK_TICK) {
        op_count = clock_setup_ops_for_event(r->setup, event, ops, detail, sizeof detail);
        if (op_count < 0)
            die("clock_setup_ops_for_event", detail);
    }
    if (batch_add_event(r->batch, event, wall_ms(), ops, op_count) != 0)
        die("batch_add_event", "failed");
    r->events++;
    if (batch_is_full(r->batch))
        send_batch(r);
}

static double finish(struct runner *r)
{
    send_batch(r);
    wait_write(r);
    return r->batches_sent ? now_seconds() - r->started : 0;
}

/* ---- data file ---- */

struct record {
    uint32_t partition;
    const unsigned char *value;
    uint32_t value_length;
};

static uint32_t read_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        die(path, "cannot open");
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)length + 1);
    if (data == NULL || fread(data, 1, (size_t)length, file) != (size_t)length)
        die(path, "cannot read");
    fclose(file);
    *size = (size_t)length;
    return data;
}

static int run_rate(struct runner *r, const char *path, const char *topic, size_t chunk)
{
    size_t size;
    unsigned char *data = read_file(path, &size);
    size_t count = 0, capacity = 1 << 16;
    struct record *records = malloc(capacity * sizeof *records);
    uint32_t partitions = 0;
    for (size_t at = 0; at + 12 <= size;) {
        uint32_t key_length = read_u32(data + at + 4);
        if (count == capacity)
            records = realloc(records, (capacity *= 2) * sizeof *records);
        struct record *record = &records[count++];
        record->partition = read_u32(data + at);
        record->value_length = read_u32(data + at + 8 + key_length);
        record->value = data + at + 12 + key_length;
        at += 12 + (size_t)key_length + record->value_length;
        if (record->partition + 1 > partitions)
            partitions = record->partition + 1;
    }
    /* Per partition, its records in file (= offset) order. */
    size_t *per_partition = calloc(partitions, sizeof *per_partition);
    for (size_t i = 0; i < count; i++)
        per_partition[records[i].partition]++;
    size_t **lists = calloc(partitions, sizeof *lists);
    size_t *filled = calloc(partitions, sizeof *filled);
    for (uint32_t p = 0; p < partitions; p++)
        lists[p] = malloc((per_partition[p] + 1) * sizeof **lists);
    for (size_t i = 0; i < count; i++)
        lists[records[i].partition][filled[records[i].partition]++] = i;

    const struct event_limits limits = {(size_t)r->config->max_message_bytes,
                                        (unsigned)r->config->max_message_depth, 0};
    size_t *next = calloc(partitions, sizeof *next);
    long long invalid = 0;
    for (bool any = true; any;) {
        any = false;
        for (uint32_t p = 0; p < partitions; p++) {
            for (size_t n = 0; n < chunk && next[p] < per_partition[p]; n++, next[p]++) {
                any = true;
                const struct record *record = &records[lists[p][next[p]]];
                struct duewatch_event event;
                char detail[200];
                if (event_decode(record->value, record->value_length, &limits, &event, detail,
                                 sizeof detail) != EVENT_VALID) {
                    invalid++; /* the daemon would dead-letter it */
                    continue;
                }
                add_event(r, topic, (int32_t)p, (int64_t)next[p], &event);
            }
        }
    }
    double seconds = finish(r);
    printf("events=%lld applied=%lld duplicates=%lld invalid=%lld batches=%lld seconds=%.3f "
           "rate=%.0f\n",
           r->events, r->applied, r->duplicates, invalid, r->batches_sent, seconds,
           seconds > 0 ? (double)r->events / seconds : 0.0);
    for (uint32_t p = 0; p < partitions; p++)
        free(lists[p]);
    free(lists);
    free(filled);
    free(next);
    free(per_partition);
    free(records);
    free(data);
    return 0;
}

/* ---- clocks ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

struct synthetic {
    char id[37], unit[12], case_number[24], ref[13], subject[14];
};

static struct text text_of(const char *s) { return (struct text){s, (uint32_t)strlen(s)}; }

static int run_clocks(struct runner *r, long long count, const char *topic, int partitions,
                      int spread_days, bool keep_dedupe)
{
    struct synthetic *all = calloc((size_t)count, sizeof *all);
    if (all == NULL)
        die("clocks", "out of memory");
    long long before = used_memory(r);
    int64_t now = wall_ms();
    int64_t *offsets = calloc((size_t)partitions, sizeof *offsets);
    for (long long i = 0; i < count; i++) {
        struct synthetic *s = &all[i];
        uint64_t a = next_random(), b = next_random();
        snprintf(s->id, sizeof s->id, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-a%03" PRIx32
                 "-%012" PRIx64,
                 (uint32_t)a, (uint32_t)(a >> 32) & 0xffff, (uint32_t)(a >> 48) & 0xfff,
                 (uint32_t)b & 0xfff, (uint64_t)((b >> 12) & 0xffffffffffffull));
        int unit = (int)(next_random() % 40) + 1;
        snprintf(s->unit, sizeof s->unit, "500112-XJ%02d", unit);
        snprintf(s->case_number, sizeof s->case_number, "A500112XJ%02d2026%06lld", unit, i % 1000000);
        /* an odd multiplier modulo 2^40 is a bijection: unique, random-looking refs */
        snprintf(s->ref, sizeof s->ref, "QZ%010" PRIx64,
                 (uint64_t)((uint64_t)i * 0x9e3779b97full & 0xffffffffffull));
        snprintf(s->subject, sizeof s->subject, "S%012" PRIx64, (uint64_t)(next_random() & 0xffffffffffffull));
        struct duewatch_event event = {
            .type = EVENT_MEASURE_STARTED,
            .ts_ms = now - (int64_t)(next_random() % ((uint64_t)spread_days * 86400000ull)),
            .id = text_of(s->id),
            .unit = text_of(s->unit),
            .case_number = text_of(s->case_number),
            .ref = text_of(s->ref),
            .subject = text_of(s->subject),
            .kind = text_of("bail"),
        };
        int partition = (int)(i % partitions);
        add_event(r, topic, partition, offsets[partition]++, &event);
    }
    double seconds = finish(r);
    long long after = used_memory(r);
    long long after_delete = after;
    if (!keep_dedupe) {
        /* The event ids live in a few sets (<prefix>ev:<first day of a span>):
         * drop them whole. */
        char pattern[128];
        snprintf(pattern, sizeof pattern, "%sev:*", r->config->key_prefix);
        unsigned long long cursor = 0;
        do {
            char cursor_text[32];
            snprintf(cursor_text, sizeof cursor_text, "%llu", cursor);
            const char *args[] = {"SCAN", cursor_text, "MATCH", pattern, "COUNT", "1000"};
            redisReply *reply = redisCommandArgv(r->redis, 6, args, NULL);
            if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
                die("SCAN", r->redis->errstr);
            cursor = strtoull(reply->element[0]->str, NULL, 10);
            for (size_t k = 0; k < reply->element[1]->elements; k++) {
                const char *del[] = {"DEL", reply->element[1]->element[k]->str};
                redisReply *deleted = redisCommandArgv(r->redis, 2, del, NULL);
                if (deleted == NULL)
                    die("DEL", r->redis->errstr);
                freeReplyObject(deleted);
            }
            freeReplyObject(reply);
        } while (cursor != 0);
        after_delete = used_memory(r);
    }
    printf("clocks=%lld applied=%lld seconds=%.3f rate=%.0f used_before=%lld used_after=%lld "
           "used_after_dedupe_del=%lld\n",
           count, r->applied, seconds, seconds > 0 ? (double)count / seconds : 0.0, before, after,
           after_delete);
    free(all);
    free(offsets);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr,
                "usage: bench_script rate CONFIG DATAFILE TOPIC [--chunk N]\n"
                "       bench_script clocks CONFIG COUNT TOPIC PARTITIONS [--spread-days D] "
                "[--keep-dedupe]\n");
        return 2;
    }
    char err[1024];
    struct config *config = config_load(argv[2], err, sizeof err);
    if (config == NULL)
        die("config", err);
    if (calendar_init(config->timezone, err, sizeof err) != 0)
        die("timezone", err);
    struct clock_setup *setup = clock_setup_load(config, err, sizeof err);
    if (setup == NULL)
        die("rules", err);
    struct runner r = {.config = config, .setup = setup};
    r.batches[0] = batch_create((size_t)config->batch_max_events, NULL);
    r.batches[1] = batch_create((size_t)config->batch_max_events, NULL);
    if (r.batches[0] == NULL || r.batches[1] == NULL)
        die("batch_create", "out of memory");
    r.batch = r.batches[0];
    connect_redis(&r);
    int status;
    if (strcmp(argv[1], "rate") == 0) {
        size_t chunk = 1000;
        for (int i = 5; i + 1 < argc; i += 2)
            if (strcmp(argv[i], "--chunk") == 0)
                chunk = (size_t)atol(argv[i + 1]);
        status = run_rate(&r, argv[3], argv[4], chunk ? chunk : 1);
    } else if (strcmp(argv[1], "clocks") == 0 && argc >= 6) {
        int spread_days = 300;
        bool keep_dedupe = false;
        for (int i = 6; i < argc; i++) {
            if (strcmp(argv[i], "--spread-days") == 0 && i + 1 < argc)
                spread_days = atoi(argv[++i]);
            else if (strcmp(argv[i], "--keep-dedupe") == 0)
                keep_dedupe = true;
        }
        status = run_clocks(&r, atoll(argv[3]), argv[4], atoi(argv[5]),
                            spread_days > 0 ? spread_days : 1, keep_dedupe);
    } else {
        fprintf(stderr, "bench_script: unknown mode %s\n", argv[1]);
        status = 2;
    }
    redisFree(r.redis);
    batch_destroy(r.batches[0]);
    batch_destroy(r.batches[1]);
    clock_setup_destroy(setup);
    config_destroy(config);
    return status;
}
