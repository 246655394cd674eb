/* Prometheus text exposition (format 0.0.4) of what the daemon counts.
 * Metric names follow Prometheus conventions with the duewatch_ prefix. */
#ifndef DUEWATCH_METRICS_H
#define DUEWATCH_METRICS_H

#include <stdint.h>

struct evbuffer;
struct ingest;
struct alerts;
struct kafka_consumer;
struct redis_eviction;

/* What main() counts itself. */
struct process_counters {
    uint64_t reloads_applied;
    uint64_t reloads_failed;
    int64_t started_at_ms;
};

/* Where the metrics are read from (all owned by main). */
struct metrics_sources {
    const struct ingest *ingest;
    const struct alerts *alerts;
    struct kafka_consumer *consumer; /* partition lag */
    const struct redis_eviction *eviction;
    const struct process_counters *process;
};

/* Why /readyz answers 503 (one sentence), or NULL when the daemon is ready:
 * Redis set up, holding the daemon's state and accepting writes, partitions
 * assigned, consumption not paused for lack of Redis.  duewatch_ready says
 * the same. */
const char *metrics_not_ready_reason(const struct metrics_sources *sources);

/* Appends every metric to out. */
void metrics_write(struct evbuffer *out, const struct metrics_sources *sources);

#endif
