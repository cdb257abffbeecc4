/*
 * The epoll backend: the io interface on non-blocking sockets, for hosts
 * where io_uring is refused (container seccomp profiles, sysctl).
 *
 * Every fd an op uses is registered once, edge-triggered for both
 * directions; the backend remembers per fd whether it is readable and
 * writable since the last edge, and which op waits on each side (at most
 * one reader: accept, recv or read; at most one writer: send or connect).
 * Work is done where io_uring would do it: a send is tried at once (the
 * worker calls io_send at the end of its iteration, so every request for a
 * node still leaves in one write) and waits for EPOLLOUT only on EAGAIN;
 * receives run when their fd turns readable. Results become completions
 * in a queue that io_wait hands out — never a handler inside a call.
 *
 * Fairness: one wake reads at most RECV_BURST buffers (ACCEPT_BURST
 * accepts) from an fd; an fd with more left goes on the ready list and is
 * read again in the next io_wait, after the others had their turn.
 *
 * Timers and connect deadlines sit on one unsorted list: a worker has one
 * tick and a few connecting links at a time.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "backend.h"

#define EPOLL_BATCH 256
#define RECV_BURST 16
#define ACCEPT_BURST 64

struct fd_state {
    struct io_op *reader;   /* accept, recv or read */
    struct io_op *writer;   /* send or connect */
    bool registered, readable, writable, ready_listed;
    bool peer_closed;       /* RDHUP/HUP/ERR seen: read to the end, a short
                               read does not mean drained (the EOF behind
                               it makes no new edge) */
};

struct epoll_io {
    struct io base;
    int epfd;
    struct fd_state *fds;
    size_t nfds;
    int *ready;             /* fds to try again without a new edge */
    size_t nready, ready_cap;
    struct io_op *timers;   /* timers and connect deadlines */
    struct io_evq q;
    struct io_bufpool pool, large; /* io_recv's, io_recv_large's */
};

static struct epoll_io *E(struct io *io)
{
    return (struct epoll_io *)io;
}

static struct fd_state *state_of(struct epoll_io *e, int fd)
{
    assert(fd >= 0);
    if ((size_t)fd >= e->nfds) {
        size_t n = e->nfds ? e->nfds : 256;
        while (n <= (size_t)fd)
            n *= 2;
        struct fd_state *fds = realloc(e->fds, n * sizeof *fds);
        if (!fds)
            abort();
        memset(fds + e->nfds, 0, (n - e->nfds) * sizeof *fds);
        e->fds = fds;
        e->nfds = n;
    }
    return &e->fds[fd];
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* The first op on fd: non-blocking, watched for both edges from now on. */
static struct fd_state *watch(struct epoll_io *e, int fd)
{
    struct fd_state *st = state_of(e, fd);
    if (st->registered)
        return st;
    set_nonblocking(fd);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST)
        st->registered = true;
    return st;
}

static void ready_later(struct epoll_io *e, int fd)
{
    struct fd_state *st = &e->fds[fd];
    if (st->ready_listed)
        return;
    if (e->nready == e->ready_cap) {
        size_t cap = e->ready_cap ? e->ready_cap * 2 : 64;
        int *r = realloc(e->ready, cap * sizeof *r);
        if (!r)
            abort();
        e->ready = r;
        e->ready_cap = cap;
    }
    e->ready[e->nready++] = fd;
    st->ready_listed = true;
}

static void arm(struct io_op *op, enum io_op_type type, int fd)
{
    assert(op->type == IO_OP_IDLE);
    op->type = (uint8_t)type;
    op->cancelled = 0;
    op->fd = fd;
    op->next = NULL;
}

/* The op's last completion. */
static void finish(struct epoll_io *e, struct io_op *op, int res)
{
    if (op->type == IO_OP_SEND) {
        free(op->u.send.iov);
        op->u.send.iov = NULL;
    }
    op->type = IO_OP_IDLE;
    io_evq_push(&e->q, op, res, 0);
}

static void unlist_timer(struct epoll_io *e, struct io_op *op)
{
    for (struct io_op **p = &e->timers; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

/* ------------------------------------------------------------------------ */
/* Doing the work                                                            */

static void try_accept(struct epoll_io *e, int fd, struct fd_state *st, struct io_op *op)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int nfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (nfd >= 0) {
            io_evq_push(&e->q, op, nfd, IO_EV_MORE);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN) {
            st->readable = false;
            return;
        }
        st->reader = NULL; /* EMFILE and the like end it, as on io_uring */
        finish(e, op, -errno);
        return;
    }
    ready_later(e, fd);
}

static void try_recv(struct epoll_io *e, int fd, struct fd_state *st, struct io_op *op)
{
    struct io_bufpool *pool = op->u.recv.large ? &e->large : &e->pool;
    for (int i = 0; i < RECV_BURST; i++) {
        uint32_t bid = io_bufpool_take(pool);
        if (bid == UINT32_MAX) {
            st->reader = NULL;
            finish(e, op, -ENOBUFS);
            return;
        }
        char *buf = io_bufpool_data(pool, bid);
        ssize_t n = recv(fd, buf, pool->size, 0);
        if (n > 0) {
            io_evq_push_buf(&e->q, op, (int)n, buf, bid, IO_EV_MORE | IO_EV_BUF);
            if ((size_t)n < pool->size && !st->peer_closed) {
                st->readable = false; /* drained: a later arrival makes a new edge */
                return;
            }
            continue;
        }
        io_bufpool_put(pool, bid);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            st->readable = false;
            return;
        }
        st->reader = NULL;
        finish(e, op, n == 0 ? 0 : -errno);
        return;
    }
    ready_later(e, fd);
}

static void try_read(struct epoll_io *e, int fd, struct fd_state *st, struct io_op *op)
{
    ssize_t n;
    do
        n = read(fd, op->u.read.buf, op->u.read.len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) {
        st->readable = false;
        return;
    }
    if (n >= 0 && (size_t)n < op->u.read.len && !st->peer_closed)
        st->readable = false;
    st->reader = NULL;
    finish(e, op, n < 0 ? -errno : (int)n);
}

static void reader_work(struct epoll_io *e, int fd, struct fd_state *st)
{
    struct io_op *op = st->reader;
    if (!op || !st->readable)
        return;
    if (op->type == IO_OP_ACCEPT)
        try_accept(e, fd, st, op);
    else if (op->type == IO_OP_RECV)
        try_recv(e, fd, st, op);
    else
        try_read(e, fd, st, op);
}

/* res of one sendmsg, or -EAGAIN */
static int send_now(int fd, const struct iovec *iov, int niov)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)niov};
    ssize_t n;
    do
        n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int)n;
}

static void writer_work(struct epoll_io *e, int fd, struct fd_state *st)
{
    struct io_op *op = st->writer;
    if (!op || !st->writable)
        return;
    int res;
    if (op->type == IO_OP_CONNECT) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        unlist_timer(e, op);
        res = -err;
    } else {
        res = send_now(fd, op->u.send.iov, op->u.send.niov);
        if (res == -EAGAIN) {
            st->writable = false;
            return;
        }
    }
    st->writer = NULL;
    finish(e, op, res);
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

static void reader_arm(struct epoll_io *e, struct io_op *op, enum io_op_type type, int fd)
{
    struct fd_state *st = watch(e, fd);
    assert(!st->reader);
    arm(op, type, fd);
    st->reader = op;
    if (st->readable) /* no new edge will come for what is already there */
        ready_later(e, fd);
}

static void epoll_accept(struct io *io, struct io_op *op, int fd)
{
    reader_arm(E(io), op, IO_OP_ACCEPT, fd);
}

static void epoll_recv(struct io *io, struct io_op *op, int fd, bool large)
{
    op->u.recv.large = large;
    reader_arm(E(io), op, IO_OP_RECV, fd);
}

static void epoll_read(struct io *io, struct io_op *op, int fd, void *buf, size_t len)
{
    op->u.read.buf = buf;
    op->u.read.len = len;
    reader_arm(E(io), op, IO_OP_READ, fd);
}

static void epoll_buf_return(struct io *io, uint32_t buf)
{
    struct epoll_io *e = E(io);
    io_bufpool_put(buf & IO_BUF_LARGE ? &e->large : &e->pool, buf);
}

static void epoll_send(struct io *io, struct io_op *op, int fd, const struct iovec *iov,
                       int niov)
{
    struct epoll_io *e = E(io);
    struct fd_state *st = watch(e, fd);
    assert(!st->writer);
    arm(op, IO_OP_SEND, fd);
    op->u.send.iov = NULL;
    int res = send_now(fd, iov, niov);
    if (res != -EAGAIN) {
        finish(e, op, res);
        return;
    }
    /* the socket is full: keep a copy of the iovecs until EPOLLOUT */
    st->writable = false;
    op->u.send.iov = malloc((size_t)niov * sizeof *iov);
    if (!op->u.send.iov)
        abort();
    memcpy(op->u.send.iov, iov, (size_t)niov * sizeof *iov);
    op->u.send.niov = niov;
    st->writer = op;
}

static void epoll_connect(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                          socklen_t salen, int timeout_ms)
{
    struct epoll_io *e = E(io);
    set_nonblocking(fd);
    arm(op, IO_OP_CONNECT, fd);
    /* connect first, watch after: an unconnected socket reports HUP */
    int ret = connect(fd, sa, salen);
    struct fd_state *st = watch(e, fd);
    if (ret == 0 || errno != EINPROGRESS) {
        finish(e, op, ret == 0 ? 0 : -errno);
        return;
    }
    assert(!st->writer);
    st->writer = op;
    op->deadline_us = io_now_us() + (int64_t)timeout_ms * 1000;
    op->next = e->timers;
    e->timers = op;
}

static void epoll_timer(struct io *io, struct io_op *op, int ms)
{
    struct epoll_io *e = E(io);
    arm(op, IO_OP_TIMER, -1);
    op->deadline_us = io_now_us() + (int64_t)ms * 1000;
    op->next = e->timers;
    e->timers = op;
}

static void epoll_cancel(struct io *io, struct io_op *op)
{
    struct epoll_io *e = E(io);
    if (op->type == IO_OP_IDLE)
        return;
    if (op->type == IO_OP_TIMER || op->type == IO_OP_CONNECT)
        unlist_timer(e, op);
    if (op->fd >= 0 && (size_t)op->fd < e->nfds) {
        struct fd_state *st = &e->fds[op->fd];
        if (st->reader == op)
            st->reader = NULL;
        if (st->writer == op)
            st->writer = NULL;
    }
    op->cancelled = 1;
    finish(e, op, -ECANCELED);
}

static void epoll_cancel_all(struct io *io)
{
    struct epoll_io *e = E(io);
    while (e->timers)
        epoll_cancel(io, e->timers);
    for (size_t fd = 0; fd < e->nfds; fd++) {
        if (e->fds[fd].reader)
            epoll_cancel(io, e->fds[fd].reader);
        if (e->fds[fd].writer)
            epoll_cancel(io, e->fds[fd].writer);
    }
}

static void epoll_shutdown(struct io *io, int fd)
{
    struct epoll_io *e = E(io);
    shutdown(fd, SHUT_RDWR);
    if ((size_t)fd >= e->nfds || !e->fds[fd].registered)
        return;
    struct fd_state *st = &e->fds[fd];
    if (st->writer && st->writer->type == IO_OP_CONNECT) {
        epoll_cancel(io, st->writer); /* an aborted connect may report nothing */
        return;
    }
    /* what waits ends now: EOF for readers, EPIPE for a send */
    st->readable = st->writable = true;
    ready_later(e, fd);
}

static void epoll_close(struct io *io, int fd)
{
    struct epoll_io *e = E(io);
    if ((size_t)fd < e->nfds) {
        struct fd_state *st = &e->fds[fd];
        /* callers close once nothing is armed; should one not, its op
         * still gets its final completion */
        if (st->reader)
            epoll_cancel(io, st->reader);
        if (st->writer)
            epoll_cancel(io, st->writer);
        if (st->registered)
            epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, NULL);
        bool listed = st->ready_listed;
        memset(st, 0, sizeof *st);
        st->ready_listed = listed; /* the list entry stays until the next pass */
    }
    close(fd);
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                   */

static void run_ready(struct epoll_io *e)
{
    size_t n = e->nready;
    int *fds = e->ready;
    /* a fresh list for what stays ready: this pass may append to it */
    e->ready = NULL;
    e->nready = e->ready_cap = 0;
    for (size_t i = 0; i < n; i++)
        e->fds[fds[i]].ready_listed = false;
    for (size_t i = 0; i < n; i++) {
        struct fd_state *st = &e->fds[fds[i]];
        reader_work(e, fds[i], st);
        writer_work(e, fds[i], st);
    }
    free(fds);
}

static void expire_timers(struct epoll_io *e, int64_t now)
{
    for (struct io_op **p = &e->timers; *p;) {
        struct io_op *op = *p;
        if (op->deadline_us > now) {
            p = &op->next;
            continue;
        }
        *p = op->next;
        if (op->type == IO_OP_CONNECT) {
            struct fd_state *st = &e->fds[op->fd];
            if (st->writer == op)
                st->writer = NULL;
            finish(e, op, -ETIMEDOUT);
        } else {
            finish(e, op, 0);
        }
    }
}

/* ms until the earliest deadline, capped by limit (-1: none) */
static int next_deadline_ms(struct epoll_io *e, int64_t now, int limit)
{
    int ms = limit;
    for (struct io_op *op = e->timers; op; op = op->next) {
        int64_t left = op->deadline_us - now;
        int t = left <= 0 ? 0 : (int)((left + 999) / 1000);
        if (ms < 0 || t < ms)
            ms = t;
    }
    return ms;
}

static void handle_events(struct epoll_io *e, const struct epoll_event *evs, int n)
{
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if ((size_t)fd >= e->nfds)
            continue;
        struct fd_state *st = &e->fds[fd];
        uint32_t ev = evs[i].events;
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            st->readable = true;
        if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            st->peer_closed = true;
        if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            st->writable = true;
        reader_work(e, fd, st);
        writer_work(e, fd, st);
    }
}

static int epoll_wait_io(struct io *io, struct io_event *out, int max, int timeout_ms)
{
    struct epoll_io *e = E(io);
    int64_t start = io_now_us();
    for (;;) {
        if (e->nready)
            run_ready(e);
        int64_t now = io_now_us();
        expire_timers(e, now);
        int limit = timeout_ms;
        if (timeout_ms >= 0) {
            int64_t left = (int64_t)timeout_ms * 1000 - (now - start);
            limit = left <= 0 ? 0 : (int)((left + 999) / 1000);
        }
        bool have = e->q.head < e->q.len;
        int wait_ms = have || e->nready ? 0 : next_deadline_ms(e, now, limit);
        struct epoll_event evs[EPOLL_BATCH];
        int n = epoll_wait(e->epfd, evs, EPOLL_BATCH, wait_ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            handle_events(e, evs, n);
        expire_timers(e, io_now_us());
        if (e->q.head < e->q.len || limit == 0)
            return io_evq_take(&e->q, out, max);
    }
}

/*
 * io_ready: completions already queued (a send done at once, an accept, a
 * batch io_wait could not hand out whole), or fds left on the ready list.
 * Either way the next io_wait polls without sleeping, so output kept back
 * for it (client.c, coalescing) costs no extra wake-up; and a worker that
 * just sent requests to its links has a queued completion for each. No
 * syscall: pending epoll events are not asked for.
 */
static bool epoll_ready(struct io *io)
{
    struct epoll_io *e = E(io);
    return e->q.head < e->q.len || e->nready > 0;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

static int epoll_start(struct io *io)
{
    return 0;
}

static void epoll_destroy(struct io *io)
{
    struct epoll_io *e = E(io);
    for (size_t fd = 0; fd < e->nfds; fd++) {
        struct fd_state *st = &e->fds[fd];
        if (st->writer && st->writer->type == IO_OP_SEND)
            free(st->writer->u.send.iov);
    }
    close(e->epfd);
    free(e->fds);
    free(e->ready);
    io_evq_free(&e->q);
    io_bufpool_free(&e->pool);
    io_bufpool_free(&e->large);
    free(e);
}

static const struct io_backend_ops epoll_ops = {
    .start = epoll_start,
    .destroy = epoll_destroy,
    .accept = epoll_accept,
    .recv = epoll_recv,
    .buf_return = epoll_buf_return,
    .read = epoll_read,
    .send = epoll_send,
    .connect = epoll_connect,
    .timer = epoll_timer,
    .cancel = epoll_cancel,
    .cancel_all = epoll_cancel_all,
    .shutdown = epoll_shutdown,
    .close = epoll_close,
    .wait = epoll_wait_io,
    .ready = epoll_ready,
};

int io_epoll_create(struct io **out)
{
    struct epoll_io *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->base.ops = &epoll_ops;
    e->base.kind = IO_BACKEND_EPOLL;
    e->base.detail = "epoll (edge-triggered, non-blocking sockets)";
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    int ret = e->epfd < 0 ? -errno : io_bufpool_init(&e->pool, IO_BUF_COUNT, IO_BUF_SIZE, 0);
    if (ret == 0)
        ret = io_bufpool_init(&e->large, IO_BUF_LARGE_COUNT, IO_BUF_LARGE_SIZE, IO_BUF_LARGE);
    if (ret < 0) {
        io_bufpool_free(&e->pool);
        if (e->epfd >= 0)
            close(e->epfd);
        free(e);
        return ret;
    }
    *out = &e->base;
    return 0;
}
