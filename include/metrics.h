/* Prometheus text exposition (format 0.0.4) of what the daemon counts.
 * Metric names follow Prometheus conventions with the duewatch_ prefix. */
#ifndef DUEWATCH_METRICS_H
#define DUEWATCH_METRICS_H

#include <stdint.h>

struct evbuffer;
struct ingest;

/* What main() counts itself. */
struct process_counters {
    uint64_t reloads_applied;
    uint64_t reloads_failed;
    int64_t started_at_ms;
};

/* Appends every metric to out. */
void metrics_write(struct evbuffer *out, struct ingest *ingest,
                   const struct process_counters *process);

#endif
