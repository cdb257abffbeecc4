/*
 * sdnotify.c — the sd_notify(3) datagram protocol, written out (see
 * sdnotify.h for why not libsystemd).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

/* $NOTIFY_SOCKET as a sockaddr_un: '@' names the abstract namespace (a
 * leading NUL, no terminator counted). Returns the address length, or 0
 * for an empty, relative or too long address. */
static socklen_t notify_addr(const char *s, struct sockaddr_un *sa)
{
    size_t len = strlen(s);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (len < 2 || len >= sizeof sa->sun_path || (s[0] != '/' && s[0] != '@'))
        return 0;
    memcpy(sa->sun_path, s, len);
    if (s[0] == '@') {
        sa->sun_path[0] = '\0';
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

/* WATCHDOG_USEC/2 in ms (at least 1), or 0 if there is no watchdog for us. */
static int64_t watchdog_interval(const char *usec, const char *pid, pid_t self)
{
    if (!usec || !usec[0])
        return 0;
    if (pid && pid[0] && strtoll(pid, NULL, 10) != (long long)self)
        return 0;
    char *end;
    long long us = strtoll(usec, &end, 10);
    if (*end || us <= 0)
        return 0;
    int64_t ms = us / 2000;
    return ms > 0 ? ms : 1;
}

int sd_notifier_init(struct sd_notifier *n, const char *socket_addr, const char *watchdog_usec,
                     const char *watchdog_pid, pid_t self)
{
    memset(n, 0, sizeof *n);
    n->fd = -1;
    if (!socket_addr || !socket_addr[0])
        return 0;
    struct sockaddr_un sa;
    if (strlen(socket_addr) >= sizeof n->addr || notify_addr(socket_addr, &sa) == 0)
        return -EINVAL;
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (n->fd < 0)
        return -errno;
    strcpy(n->addr, socket_addr);
    n->watchdog_ms = watchdog_interval(watchdog_usec, watchdog_pid, self);
    return 0;
}

int sd_notifier_send(const struct sd_notifier *n, const char *msg)
{
    if (n->fd < 0)
        return 0;
    struct sockaddr_un sa;
    socklen_t len = notify_addr(n->addr, &sa);
    ssize_t r = sendto(n->fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
                       (const struct sockaddr *)&sa, len);
    return r < 0 ? -errno : 0;
}

int sd_notifier_tick(struct sd_notifier *n, bool ready, int64_t now_ms)
{
    if (n->fd < 0)
        return -1;
    if (ready && !n->ready_sent) {
        n->ready_sent = true;
        sd_notifier_send(n, "READY=1");
    }
    if (!n->watchdog_ms)
        return -1;
    if (now_ms >= n->next_watchdog) {
        sd_notifier_send(n, "WATCHDOG=1");
        n->next_watchdog = now_ms + n->watchdog_ms;
    }
    return (int)(n->next_watchdog - now_ms);
}

void sd_notifier_close(struct sd_notifier *n)
{
    if (n->fd >= 0)
        close(n->fd);
    n->fd = -1;
}
