/*
 * consensus/rconn.c — a small non-blocking RESP client for the consensus
 * thread's poll() loop.
 *
 *   rconn_send ─► (closed? connect, queue AUTH) ─► append command + tag
 *   poll: POLLOUT ─► finish connect / write      POLLIN ─► read, cut
 *         replies with resp_read_value, call on_reply(tag, value) in order
 *   deadline passed / error / EOF ─► close, on_reply(tag, NULL) for each
 *
 * Tag -1 is the AUTH this file sends by itself: its reply goes to the
 * callback too, so the owner can tell a refused password apart.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "node.h"

int64_t consensus_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t consensus_clock_ms(void)
{
    return consensus_clock_us() / 1000;
}

void rconn_init(struct rconn *rc, rconn_reply_fn fn, void *owner, int timeout_ms)
{
    memset(rc, 0, sizeof *rc);
    rc->fd = -1;
    rc->on_reply = fn;
    rc->owner = owner;
    rc->timeout_ms = timeout_ms;
    rc->poll_index = -1;
}

void rconn_target(struct rconn *rc, const char *host, int port)
{
    snprintf(rc->host, sizeof rc->host, "%s", host);
    rc->port = port;
}

bool rconn_idle(const struct rconn *rc)
{
    return rc->npend == 0;
}

void rconn_close(struct consensus *c, struct rconn *rc)
{
    if (rc->tls)
        c->hooks.stream->close(rc->tls, rc->fd);
    rc->tls = NULL;
    if (rc->fd >= 0)
        close(rc->fd);
    rc->fd = -1;
    rc->gen++;
    rc->state = RCONN_CLOSED;
    rc->out.len = 0;
    rc->out_off = 0;
    rc->in_len = 0;
    /* callbacks may queue new commands on rc: take the list first */
    int tags[RCONN_MAX_PENDING];
    unsigned n = rc->npend;
    memcpy(tags, rc->tags, n * sizeof tags[0]);
    rc->npend = 0;
    for (unsigned i = 0; i < n; i++)
        rc->on_reply(c, rc, tags[i], NULL);
}

/* Start a non-blocking connect. Returns 0 or -1. */
static int start_connect(struct rconn *rc)
{
    char portstr[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    snprintf(portstr, sizeof portstr, "%d", rc->port);
    if (rc->port <= 0 || getaddrinfo(rc->host, portstr, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc->fd = fd;
    rc->state = RCONN_CONNECTING;
    return 0;
}

static void push_tag(struct rconn *rc, int tag)
{
    if (rc->npend == 0)
        rc->deadline = consensus_clock_ms() + rc->timeout_ms;
    rc->tags[rc->npend++] = tag;
}

bool rconn_send(struct consensus *c, struct rconn *rc, int tag, int argc, const char **argv)
{
    if (atomic_load(&c->stop_req) || rc->npend + 2 > RCONN_MAX_PENDING)
        return false;
    if (rc->state == RCONN_CLOSED) {
        if (start_connect(rc) < 0)
            return false;
        if (rc->pass && rc->pass[0]) {
            const char *auth[3] = {"AUTH", rc->user, rc->pass};
            bool user = rc->user && rc->user[0];
            if (!user)
                auth[1] = rc->pass;
            resp_write_command(&rc->out, user ? 3 : 2, auth, NULL);
            push_tag(rc, -1);
        }
    }
    resp_write_command(&rc->out, argc, argv, NULL);
    push_tag(rc, tag);
    return true;
}

short rconn_events(const struct rconn *rc)
{
    if (rc->state == RCONN_CLOSED)
        return 0;
    if (rc->state == RCONN_CONNECTING)
        return POLLOUT;
    return (short)(POLLIN | (rc->out_off < rc->out.len ? POLLOUT : 0));
}

static bool write_some(struct consensus *c, struct rconn *rc)
{
    while (rc->out_off < rc->out.len) {
        ssize_t n = consensus_send(c, rc->tls, rc->fd, rc->out.data + rc->out_off,
                                   rc->out.len - rc->out_off);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        rc->out_off += (size_t)n;
    }
    rc->out.len = rc->out_off = 0;
    /* the stream's own bytes (handshake, the rest of a record) */
    return !rc->tls || consensus_send(c, rc->tls, rc->fd, NULL, 0) == 0;
}

/* Deliver every complete reply. Returns false on a protocol error. */
static bool deliver(struct consensus *c, struct rconn *rc)
{
    size_t off = 0;
    while (off < rc->in_len && rc->npend > 0) {
        struct resp_value v;
        size_t used;
        enum resp_result r = resp_read_value(rc->in + off, rc->in_len - off, &v, &used);
        if (r == RESP_NEED_MORE)
            break;
        if (r == RESP_ERROR)
            return false;
        int tag = rc->tags[0];
        memmove(rc->tags, rc->tags + 1, (rc->npend - 1) * sizeof rc->tags[0]);
        rc->npend--;
        rc->deadline = consensus_clock_ms() + rc->timeout_ms;
        off += used;
        unsigned gen = rc->gen;
        rc->on_reply(c, rc, tag, &v);
        resp_value_free(&v);
        if (rc->gen != gen) /* the callback closed (and maybe reopened) it */
            return true;
    }
    memmove(rc->in, rc->in + off, rc->in_len - off);
    rc->in_len -= off;
    return rc->npend > 0 || rc->in_len == 0;
}

ssize_t consensus_send(struct consensus *c, void *tls, int fd, const void *buf, size_t len)
{
    if (tls)
        return c->hooks.stream->send(tls, fd, buf, len);
    return send(fd, buf, len, MSG_NOSIGNAL);
}

short consensus_events(struct consensus *c, void *tls, short want)
{
    return tls ? c->hooks.stream->events(tls, want) : want;
}

ssize_t consensus_recv_more(struct consensus *c, void *tls, int fd, char **buf, size_t *len,
                            size_t *cap, size_t max)
{
    if (*cap - *len < 4096) {
        size_t want = *cap ? *cap * 2 : 16384;
        if (want > max)
            return 0; /* a peer sending that much is not one of ours */
        char *p = realloc(*buf, want);
        if (!p)
            return 0;
        *buf = p;
        *cap = want;
    }
    ssize_t n = tls ? c->hooks.stream->recv(tls, fd, *buf + *len, *cap - *len)
                    : recv(fd, *buf + *len, *cap - *len, 0);
    if (n > 0)
        *len += (size_t)n;
    return n;
}

static bool read_some(struct consensus *c, struct rconn *rc)
{
    for (;;) {
        ssize_t n = consensus_recv_more(c, rc->tls, rc->fd, &rc->in, &rc->in_len, &rc->in_cap,
                                        RCONN_MAX_IN);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        unsigned gen = rc->gen;
        if (!deliver(c, rc))
            return rc->gen != gen;
        if (rc->gen != gen)
            return true;
    }
}

void rconn_handle(struct consensus *c, struct rconn *rc, short revents, int64_t now)
{
    (void)now;
    if (rc->state == RCONN_CLOSED || revents == 0)
        return;
    if (rc->state == RCONN_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(rc->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
            rconn_close(c, rc);
            return;
        }
        rc->state = RCONN_READY;
        const struct consensus_stream *st = c->hooks.stream;
        if (st && st->client(c->hooks.arg, rc->fd, rc->host, rc->port, rc->lease, &rc->tls) < 0) {
            rconn_close(c, rc);
            return;
        }
    }
    if ((revents & (POLLERR | POLLHUP)) && !(revents & POLLIN)) {
        rconn_close(c, rc);
        return;
    }
    unsigned gen = rc->gen;
    if (!write_some(c, rc)) {
        rconn_close(c, rc);
        return;
    }
    if ((revents & POLLIN) && !read_some(c, rc) && rc->gen == gen)
        rconn_close(c, rc);
}

void rconn_check_timeout(struct consensus *c, struct rconn *rc, int64_t now)
{
    if (rc->state != RCONN_CLOSED && rc->npend > 0 && now >= rc->deadline)
        rconn_close(c, rc);
}
