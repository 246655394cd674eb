/* Logger: journald priority prefixes on stderr.  The level is an atomic so
 * librdkafka's background threads (which log through log_write) see reloads.
 *
 * Timestamps: journald stamps every line itself, so a line for the journal is
 * "<N>message".  Anywhere else (a terminal, a file, a container's log) a line
 * starts with its own time, ISO 8601 in UTC to the millisecond:
 * "2026-12-04T05:06:07.089Z <N>message".  stderr is the journal when
 * JOURNAL_STREAM (set by systemd) names its device and inode, as
 * systemd.exec(5) says to check.
 *
 * Rate limit: lines are grouped by call site (their format string); a site
 * writes at most LOG_BURST lines per LOG_INTERVAL_MS, and the lines beyond
 * that are counted and reported by one summary line once the interval is
 * over (at the site's next line, at any other line, or at
 * log_flush_suppressed()).  Debug lines are never limited: whoever asks for
 * them asks for the volume. */
#include "log.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_BURST 50
#define LOG_INTERVAL_MS 10000
#define LOG_SITES 256 /* call sites tracked at once (a power of two) */
#define LOG_PROBE 8   /* slots looked at per site */

struct log_site {
    const char *format; /* NULL = free slot */
    enum log_level level;
    int64_t window_start_ms;
    unsigned written;     /* lines written in this window */
    uint64_t suppressed;  /* lines dropped in this window */
};

static _Atomic int current_level = LOG_LEVEL_INFO;
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_site sites[LOG_SITES];

void log_set_level(enum log_level level) { atomic_store(&current_level, (int)level); }

enum log_level log_get_level(void) { return (enum log_level)atomic_load(&current_level); }

int log_level_parse(const char *name)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {
        {"error", LOG_LEVEL_ERROR}, {"warning", LOG_LEVEL_WARNING}, {"notice", LOG_LEVEL_NOTICE},
        {"info", LOG_LEVEL_INFO},   {"debug", LOG_LEVEL_DEBUG},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0)
            return (int)names[i].level;
    return -1;
}

static int64_t monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool stderr_is_journal;

/* JOURNAL_STREAM is "<device>:<inode>" of the stream systemd connected to
 * the journal; stderr is the journal only when it is still that stream. */
static void detect_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    if (stream == NULL)
        return;
    char *end;
    unsigned long long device = strtoull(stream, &end, 10);
    if (end == stream || *end != ':')
        return;
    const char *inode_text = end + 1;
    unsigned long long inode = strtoull(inode_text, &end, 10);
    struct stat info;
    if (end == inode_text || *end != '\0' || fstat(STDERR_FILENO, &info) != 0)
        return;
    stderr_is_journal = (unsigned long long)info.st_dev == device &&
                        (unsigned long long)info.st_ino == inode;
}

/* "2026-12-04T05:06:07.089Z " (UTC) into out; returns its length. */
static int write_timestamp(char *out, size_t size)
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    if (gmtime_r(&now.tv_sec, &utc) == NULL)
        return 0;
    char seconds[32];
    if (strftime(seconds, sizeof seconds, "%Y-%m-%dT%H:%M:%S", &utc) == 0)
        return 0;
    return snprintf(out, size, "%s.%03ldZ ", seconds, now.tv_nsec / 1000000);
}

/* One line to stderr in a single write(2), so lines from librdkafka's
 * threads never interleave mid-line; newlines in the text become spaces. */
static void write_line(enum log_level level, const char *format, va_list args)
    __attribute__((format(printf, 2, 0)));
static void write_line(enum log_level level, const char *format, va_list args)
{
    char line[2048];
    pthread_once(&journal_once, detect_journal);
    int prefix = stderr_is_journal ? 0 : write_timestamp(line, sizeof line);
    prefix += snprintf(line + prefix, sizeof line - (size_t)prefix, "<%d>", (int)level);
    int body = vsnprintf(line + prefix, sizeof line - (size_t)prefix - 1, format, args);
    size_t length = (size_t)prefix + (body < 0 ? 0 : (size_t)body);
    if (length > sizeof line - 2)
        length = sizeof line - 2;
    for (size_t i = (size_t)prefix; i < length; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[length++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, length);
    (void)ignored;
}

static void write_formatted(enum log_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void write_formatted(enum log_level level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    write_line(level, format, args);
    va_end(args);
}

/* The summary of a site's window, if it dropped lines; the window ends.
 * (Called with sites_lock held.) */
static void close_window(struct log_site *site, int64_t now_ms)
{
    if (site->suppressed > 0)
        write_formatted(site->level,
                        "log: %llu more lines like \"%.200s\" suppressed in the last %lld s",
                        (unsigned long long)site->suppressed, site->format,
                        (long long)((now_ms - site->window_start_ms + 999) / 1000));
    site->window_start_ms = now_ms;
    site->written = 0;
    site->suppressed = 0;
}

/* The slot of `format`: its own, a free one, or the one whose window started
 * first among those probed (its summary is written before it is reused). */
static struct log_site *find_site(const char *format, int64_t now_ms)
{
    size_t start = (size_t)(((uintptr_t)format >> 3) * 2654435761u) & (LOG_SITES - 1);
    struct log_site *oldest = NULL;
    for (size_t i = 0; i < LOG_PROBE; i++) {
        struct log_site *site = &sites[(start + i) & (LOG_SITES - 1)];
        if (site->format == format)
            return site;
        if (site->format == NULL) {
            *site = (struct log_site){.format = format, .window_start_ms = now_ms};
            return site;
        }
        if (oldest == NULL || site->window_start_ms < oldest->window_start_ms)
            oldest = site;
    }
    close_window(oldest, now_ms);
    *oldest = (struct log_site){.format = format, .window_start_ms = now_ms};
    return oldest;
}

/* Whether a line of `format` may be written now; writes the summaries of
 * windows that are over.  (Called with sites_lock held.) */
static bool admit(enum log_level level, const char *format, int64_t now_ms)
{
    for (size_t i = 0; i < LOG_SITES; i++)
        if (sites[i].suppressed > 0 && now_ms - sites[i].window_start_ms >= LOG_INTERVAL_MS)
            close_window(&sites[i], now_ms);
    struct log_site *site = find_site(format, now_ms);
    if (now_ms - site->window_start_ms >= LOG_INTERVAL_MS)
        close_window(site, now_ms);
    site->level = level;
    if (site->written < LOG_BURST) {
        site->written++;
        return true;
    }
    site->suppressed++;
    return false;
}

void log_writev(enum log_level level, const char *format, va_list args)
{
    if ((int)level > atomic_load(&current_level))
        return;
    if (level == LOG_LEVEL_DEBUG) {
        write_line(level, format, args);
        return;
    }
    pthread_mutex_lock(&sites_lock);
    if (admit(level, format, monotonic_ms()))
        write_line(level, format, args);
    pthread_mutex_unlock(&sites_lock);
}

void log_write(enum log_level level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_writev(level, format, args);
    va_end(args);
}

void log_flush_suppressed(void)
{
    pthread_mutex_lock(&sites_lock);
    int64_t now_ms = monotonic_ms();
    for (size_t i = 0; i < LOG_SITES; i++)
        if (sites[i].suppressed > 0)
            close_window(&sites[i], now_ms);
    pthread_mutex_unlock(&sites_lock);
}
