/* The standard process_* metrics of Prometheus client libraries
 * (process_cpu_seconds_total, process_resident_memory_bytes, ...) for the
 * daemon's own process, read from /proc/self and getrlimit() on each call:
 * a few small reads, no waiting on anything but the kernel. */
#ifndef DUEWATCH_PROCESS_METRICS_H
#define DUEWATCH_PROCESS_METRICS_H

#include <stdint.h>

/* One reading; a field that could not be read is < 0. */
struct process_sample {
    double cpu_seconds;        /* user + system time (getrusage) */
    int64_t resident_bytes;    /* /proc/self/stat rss, in bytes */
    int64_t virtual_bytes;     /* /proc/self/stat vsize */
    int64_t open_fds;          /* entries of /proc/self/fd, the one reading it left out */
    int64_t max_fds;           /* RLIMIT_NOFILE soft limit (-1: unlimited or unknown) */
    double start_time_seconds; /* Unix time: /proc/stat btime + /proc/self/stat starttime */
};

/* Fills every field of out (those not readable set to -1). */
void process_metrics_read(struct process_sample *out);

#endif
