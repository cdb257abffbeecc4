/*
 * sdnotify.h — systemd's readiness protocol (sd_notify(3)) for Type=notify
 * units: READY=1, STOPPING=1 and WATCHDOG=1 as datagrams to $NOTIFY_SOCKET.
 *
 * Written directly rather than linked from libsystemd: the protocol is one
 * sendto() of a text datagram on a unix socket (a path, or the abstract
 * namespace when the address starts with '@'), so the whole of it is
 * smaller than the build and package plumbing a new library would need,
 * and the binary keeps running unchanged where systemd is absent.
 *
 * Owned by the main thread; no state outside struct sd_notifier.
 */
#ifndef RINGSLOT_SDNOTIFY_H
#define RINGSLOT_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sd_notifier {
    int fd;                 /* datagram socket, or -1: not under systemd */
    char addr[128];         /* $NOTIFY_SOCKET as given */
    int64_t watchdog_ms;    /* feed every this often, 0 = no watchdog */
    int64_t next_watchdog;  /* clock_ms() of the next WATCHDOG=1 */
    bool ready_sent;        /* READY=1 goes out once */
};

/* From the environment values (any may be NULL): $NOTIFY_SOCKET,
 * $WATCHDOG_USEC and $WATCHDOG_PID, for process `self`. The watchdog is
 * fed at half of WATCHDOG_USEC, and only if WATCHDOG_PID is unset or self.
 * Returns 0, or -errno if the socket cannot be made (n->fd stays -1). */
int sd_notifier_init(struct sd_notifier *n, const char *socket_addr, const char *watchdog_usec,
                     const char *watchdog_pid, pid_t self);

/* One datagram to the socket; 0 if there is no socket. Returns -errno. */
int sd_notifier_send(const struct sd_notifier *n, const char *msg);

/* The main loop's tick at `now_ms`: READY=1 once `ready` first holds,
 * WATCHDOG=1 when due. Returns the ms until the next WATCHDOG=1 is due
 * (a bound for the loop's poll timeout), or -1 if there is no watchdog. */
int sd_notifier_tick(struct sd_notifier *n, bool ready, int64_t now_ms);

void sd_notifier_close(struct sd_notifier *n);

#endif
