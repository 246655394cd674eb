/* The process_* metrics (see process_metrics.h), as Prometheus's client
 * libraries define them: CPU time from getrusage() (microseconds, finer than
 * procfs's clock ticks), fields 22 (starttime, clock ticks after boot), 23
 * (vsize, bytes) and 24 (rss, pages) of /proc/self/stat, btime of
 * /proc/stat, the entries of /proc/self/fd, RLIMIT_NOFILE. */
#include "process_metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The next number of a /proc line at *p (leading spaces skipped), moving *p
 * past it: 0, or -1 when there is none. */
static int next_number(const char **p, long long *out)
{
    char *end;
    *out = strtoll(*p, &end, 10);
    if (end == *p)
        return -1;
    *p = end;
    return 0;
}

/* Fields 22..24 of /proc/self/stat: 0, or -1 when unreadable. */
static int read_stat(long long *starttime, long long *vsize, long long *rss)
{
    char line[1024];
    FILE *file = fopen("/proc/self/stat", "re");
    if (file == NULL)
        return -1;
    char *got = fgets(line, sizeof line, file);
    fclose(file);
    /* the command name (field 2) is in parentheses and may hold anything:
     * the fields after it start after the last ')', one space before each */
    const char *p = got ? strrchr(line, ')') : NULL;
    if (p == NULL)
        return -1;
    p++; /* the space before field 3 */
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL || next_number(&p, starttime) != 0 || next_number(&p, vsize) != 0 ||
        next_number(&p, rss) != 0)
        return -1;
    return 0;
}

/* Boot time (Unix seconds) from /proc/stat; -1 when unreadable. */
static long long boot_time(void)
{
    char line[256];
    long long btime = -1;
    FILE *file = fopen("/proc/stat", "re");
    if (file == NULL)
        return -1;
    while (btime < 0 && fgets(line, sizeof line, file)) {
        const char *p = line + 6;
        long long value;
        if (strncmp(line, "btime ", 6) == 0 && next_number(&p, &value) == 0)
            btime = value;
    }
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
    /* readdir_r is deprecated; this stream is this call's own */
    // cppcheck-suppress readdirCalled
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
    long long starttime = 0, vsize = 0, rss = 0;
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
