/* sd_notify without libsystemd (see notify.h). */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void send_state(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    size_t length = strlen(path);
    if (length >= sizeof address.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    memcpy(address.sun_path, path, length);
    if (path[0] == '@')
        address.sun_path[0] = '\0'; /* abstract socket */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    socklen_t address_length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length);
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&address,
                          address_length);
    (void)sent; /* a lost notification is systemd's timeout to handle */
    close(fd);
}

void notify_ready(const char *status)
{
    char state[512];
    snprintf(state, sizeof state, "READY=1\nSTATUS=%s", status);
    send_state(state);
}

void notify_reloading(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char state[128];
    snprintf(state, sizeof state, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ULL + (unsigned long long)now.tv_nsec / 1000);
    send_state(state);
}

void notify_stopping(void) { send_state("STOPPING=1"); }

void notify_watchdog(void) { send_state("WATCHDOG=1"); }

void notify_status(const char *status)
{
    char state[512];
    snprintf(state, sizeof state, "STATUS=%s", status);
    send_state(state);
}

uint64_t notify_watchdog_interval_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (usec == NULL)
        return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && strtol(pid, NULL, 10) != (long)getpid())
        return 0;
    errno = 0;
    unsigned long long value = strtoull(usec, NULL, 10);
    if (errno || value == 0)
        return 0;
    return value / 2;
}
