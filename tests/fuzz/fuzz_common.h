/* Helpers shared by the libFuzzer targets in tests/fuzz/ (see README.md). */
#ifndef DUEWATCH_FUZZ_COMMON_H
#define DUEWATCH_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "calendar.h"
#include "log.h"

/* Stops the target with a message; libFuzzer records the input as a crash. */
#define FUZZ_CHECK(condition, ...)                                                                 \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf(stderr, "fuzz check failed: %s (%s:%d): ", #condition, __FILE__, __LINE__);   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The parsers under test take a path: the input goes into a memfd (one per
 * process, rewritten for every input) and is read back through
 * /proc/self/fd/N, so no file is left behind and nothing touches the disk. */
struct fuzz_file {
    int fd;
    char path[64];
};

static inline void fuzz_file_init(struct fuzz_file *file, const char *name)
{
    file->fd = memfd_create(name, MFD_CLOEXEC);
    if (file->fd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(file->path, sizeof file->path, "/proc/self/fd/%d", file->fd);
}

static inline void fuzz_file_write(const struct fuzz_file *file, const void *data, size_t size)
{
    if (ftruncate(file->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    const char *bytes = data;
    size_t done = 0;
    while (done < size) {
        ssize_t written = pwrite(file->fd, bytes + done, size - done, (off_t)done);
        if (written <= 0) {
            perror("pwrite");
            abort();
        }
        done += (size_t)written;
    }
}

/* The daemon's set-up that the parsers rely on: the time zone of the
 * shipped configuration, and quiet logs (a log line per input would make the
 * run I/O bound). */
static inline void fuzz_daemon_init(void)
{
    char err[256];
    if (calendar_init("Asia/Shanghai", err, sizeof err) != 0) {
        fprintf(stderr, "fuzz: %s\n", err);
        abort();
    }
    log_set_level(LOG_LEVEL_ERROR);
}

/* DUEWATCH_SOURCE_DIR is the repository root (set by the Makefile), so the
 * targets find conf/ wherever they are run from. */
#ifndef DUEWATCH_SOURCE_DIR
#define DUEWATCH_SOURCE_DIR "."
#endif
#define FUZZ_REPO_FILE(relative) DUEWATCH_SOURCE_DIR "/" relative

#endif
