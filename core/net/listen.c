/*
 * Listening sockets: one TCP socket per --bind address (IPv4 or IPv6; with
 * no --bind, one dual-stack wildcard socket), opened by every worker with
 * SO_REUSEPORT so the kernel spreads connections over the workers; and the
 * unix socket (--unixsocket), which SO_REUSEPORT cannot spread, so worker 0
 * alone listens on it and hands each client to the least-loaded worker
 * (xworker_adopt). tls-port gets the same TCP sockets, marked `tls`: their
 * clients speak TLS (tlsglue.c, core/io's filter).
 *
 * main probes the TCP addresses first without SO_REUSEPORT: another
 * process's SO_REUSEPORT sockets would otherwise share the port silently
 * instead of making startup fail.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

/* "*" is Redis's spelling of every IPv4 address, "::*" of every IPv6 one. */
static const char *bind_host(const char *b)
{
    if (strcmp(b, "*") == 0)
        return "0.0.0.0";
    if (strcmp(b, "::*") == 0)
        return "::";
    return b;
}

/* One listening socket on host (NULL: dual-stack wildcard). */
static int listen_one(const char *host, int port, int backlog, bool reuseport)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE,
                             .ai_family = host ? AF_UNSPEC : AF_INET6};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
        return -EINVAL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int ret = fd < 0 ? -errno : 0;
    if (fd >= 0) {
        int one = 1, v6only = host != NULL; /* an explicit v6 address: v6 only */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (res->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
            ret = -errno;
            close(fd);
        }
    }
    freeaddrinfo(res);
    return ret < 0 ? ret : fd;
}

int listen_tcp(const struct config *cfg, int port, bool reuseport, int *fds)
{
    size_t n = cfg->nbinds ? cfg->nbinds : 1;
    for (size_t i = 0; i < n; i++) {
        const char *host = cfg->nbinds ? bind_host(cfg->binds[i]) : NULL;
        int fd = listen_one(host, port, cfg->tcp_backlog, reuseport);
        if (fd == -EAFNOSUPPORT && !host) /* a kernel without IPv6 */
            fd = listen_one("0.0.0.0", port, cfg->tcp_backlog, reuseport);
        if (fd < 0) {
            while (i > 0)
                close(fds[--i]);
            return fd;
        }
        fds[i] = fd;
    }
    return (int)n;
}

int listen_probe(const struct config *cfg)
{
    int fds[LISTENERS_MAX];
    for (int k = 0; k < 2; k++) {
        int port = k == 0 ? cfg->port : cfg->tls_port;
        int n = port ? listen_tcp(cfg, port, false, fds) : 0;
        for (int i = 0; i < n; i++)
            close(fds[i]);
        if (n < 0)
            return n;
    }
    return 0;
}

static int listen_unix(const struct config *cfg)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(cfg->unixsocket) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, cfg->unixsocket);
    unlink(cfg->unixsocket); /* a stale socket from an earlier run, as Redis */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        (cfg->unixsocketperm && chmod(cfg->unixsocket, (mode_t)cfg->unixsocketperm) < 0) ||
        listen(fd, cfg->tcp_backlog) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int listen_worker(struct worker *w)
{
    const struct config *cfg = w->rt->cfg;
    int fds[LISTENERS_MAX];
    int n = 0;
    if (cfg->port) {
        n = listen_tcp(cfg, cfg->port, true, fds);
        if (n < 0)
            return n;
    }
    int plain = n;
    if (cfg->tls_port) {
        int t = listen_tcp(cfg, cfg->tls_port, true, fds + n);
        if (t < 0) {
            while (n > 0)
                close(fds[--n]);
            return t;
        }
        n += t;
    }
    int tcp = n;
    if (w->id == 0 && cfg->unixsocket[0]) {
        int fd = listen_unix(cfg);
        if (fd < 0) {
            while (n > 0)
                close(fds[--n]);
            return fd;
        }
        fds[n++] = fd;
    }
    for (int i = 0; i < n; i++) {
        w->listeners[i].fd = fds[i];
        w->listeners[i].op.tag = OP_ACCEPT;
        w->listeners[i].armed = false;
        w->listeners[i].handoff = false;
        w->listeners[i].tls = i >= plain && i < tcp;
    }
    if (w->id == 0 && cfg->unixsocket[0])
        w->listeners[n - 1].handoff = w->rt->nworkers > 1;
    w->nlisteners = n;
    return 0;
}

void listen_close_all(struct worker *w)
{
    for (int i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].fd < 0)
            continue;
        io_cancel(w->io, &w->listeners[i].op); /* ends with -ECANCELED */
        io_shutdown(w->io, w->listeners[i].fd);
        io_close(w->io, w->listeners[i].fd);
        w->listeners[i].fd = -1;
    }
}
