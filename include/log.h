/* Logging to stderr with journald priority prefixes ("<3>" error ... "<7>" debug).
 * systemd-journald reads the prefix as the line's priority, so no syslog call is
 * needed.  One line per notable thing; never a line per normal event.  When
 * stderr is not the journal (JOURNAL_STREAM does not name it), each line
 * starts with its UTC time: "2026-12-04T05:06:07.089Z <4>message".
 *
 * Repeated lines are rate-limited per call site (the format string): at most
 * 50 lines of one site per 10 s, then one summary line "log: N more lines
 * like "<format>" suppressed in the last S s".  Debug lines are not limited. */
#ifndef DUEWATCH_LOG_H
#define DUEWATCH_LOG_H

#include <stdarg.h>

enum log_level {
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_WARNING = 4,
    LOG_LEVEL_NOTICE = 5,
    LOG_LEVEL_INFO = 6,
    LOG_LEVEL_DEBUG = 7,
};

/* Sets the most verbose level written; lines above it are dropped. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error|warning|notice|info|debug"; returns -1 when unknown. */
int log_level_parse(const char *name);

/* Writes one line "[TIME ]<N>message\n" to stderr (a single write(2), so lines from
 * librdkafka's threads never interleave mid-line), unless its call site is
 * over its rate limit.  Thread-safe. */
void log_write(enum log_level level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void log_writev(enum log_level level, const char *format, va_list args)
    __attribute__((format(printf, 2, 0)));

/* Writes the summaries of every site that suppressed lines now, without
 * waiting for its interval to end (at exit). */
void log_flush_suppressed(void);

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_write(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...) log_write(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_write(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
