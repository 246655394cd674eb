/* The process_* metrics (see process_metrics.h), as Prometheus's client
 * libraries define them: procfs fields 14/15 (utime, stime), 22 (starttime,
 * in clock ticks after boot), 23 (vsize, bytes), 24 (rss, pages) of
 * /proc/self/stat, btime of /proc/stat, the entries of /proc/self/fd. */
#include "process_metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Fields 22..24 of /proc/self/stat: 0, or -1 when unreadable. */
static int read_stat(unsigned long long *starttime, unsigned long long *vsize, long long *rss)
{
    char line[1024];
    FILE *file = fopen("/proc/self/stat", "re");
    if (file == NULL)
        return -1;
    char *got = fgets(line, sizeof line, file);
    fclose(file);
    /* the command name (field 2) is in parentheses and may hold anything:
     * the fields after it start after the last ')' */
    const char *after = got ? strrchr(line, ')') : NULL;
    if (after == NULL)
        return -1;
    /* fields 3..21 skipped, then 22, 23, 24 */
    int read = sscanf(after + 1,
                      " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
                      "%*d %*d %llu %llu %lld",
                      starttime, vsize, rss);
    return read == 3 ? 0 : -1;
}

/* Boot time (Unix seconds) from /proc/stat; -1 when unreadable. */
static long long boot_time(void)
{
    char line[256];
    long long btime = -1;
    FILE *file = fopen("/proc/stat", "re");
    if (file == NULL)
        return -1;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "btime %lld", &btime) == 1)
            break;
    fclose(file);
    return btime;
}

static int64_t open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    int64_t count = 0;
    int own = dirfd(dir);
    const struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (entry->d_name[0] != '.' && strtol(entry->d_name, NULL, 10) != own)
            count++;
    closedir(dir);
    return count;
}

void process_metrics_read(struct process_sample *out)
{
    struct rusage usage;
    out->cpu_seconds = getrusage(RUSAGE_SELF, &usage) == 0
                           ? (double)usage.ru_utime.tv_sec + (double)usage.ru_stime.tv_sec +
                                 ((double)usage.ru_utime.tv_usec + (double)usage.ru_stime.tv_usec) /
                                     1e6
                           : -1;
    unsigned long long starttime = 0, vsize = 0;
    long long rss = 0;
    long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
    long long btime = boot_time();
    bool stat_ok = read_stat(&starttime, &vsize, &rss) == 0;
    out->resident_bytes = stat_ok && page > 0 ? (int64_t)rss * page : -1;
    out->virtual_bytes = stat_ok ? (int64_t)vsize : -1;
    out->start_time_seconds = stat_ok && ticks > 0 && btime >= 0
                                  ? (double)btime + (double)starttime / (double)ticks
                                  : -1;
    out->open_fds = open_fds();
    struct rlimit limit;
    out->max_fds = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                       ? (int64_t)limit.rlim_cur
                       : -1;
}
