/* Logger: journald priority prefixes on stderr.  The level is an atomic so
 * librdkafka's background threads (which log through log_write) see reloads. */
#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static _Atomic int current_level = LOG_LEVEL_INFO;

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

void log_writev(enum log_level level, const char *format, va_list args)
{
    if ((int)level > atomic_load(&current_level))
        return;
    char line[2048];
    int prefix = snprintf(line, sizeof line, "<%d>", (int)level);
    int body = vsnprintf(line + prefix, sizeof line - (size_t)prefix - 1, format, args);
    size_t length = (size_t)prefix + (body < 0 ? 0 : (size_t)body);
    if (length > sizeof line - 2)
        length = sizeof line - 2;
    /* Keep each record on one line whatever the message holds. */
    for (size_t i = (size_t)prefix; i < length; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[length++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, length);
    (void)ignored;
}

void log_write(enum log_level level, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    log_writev(level, format, args);
    va_end(args);
}
