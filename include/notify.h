/* systemd's notification protocol (sd_notify), spoken directly: one datagram
 * to $NOTIFY_SOCKET per state change.  Written here rather than linked from
 * libsystemd so the daemon needs nothing at build time; every function does
 * nothing when NOTIFY_SOCKET is unset. */
#ifndef DUEWATCH_NOTIFY_H
#define DUEWATCH_NOTIFY_H

#include <stdint.h>

/* READY=1 with a STATUS= line. */
void notify_ready(const char *status);
/* RELOADING=1 with MONOTONIC_USEC=now (what Type=notify-reload expects). */
void notify_reloading(void);
void notify_stopping(void);
void notify_watchdog(void);
void notify_status(const char *status);

/* The interval at which WATCHDOG=1 must be sent, in microseconds: half of
 * $WATCHDOG_USEC when set for this process ($WATCHDOG_PID matches or is
 * unset), else 0. */
uint64_t notify_watchdog_interval_usec(void);

#endif
