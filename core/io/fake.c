/*
 * The fake backend: the io interface in memory, deterministic from a seed,
 * for unit tests of the code above it (client, link, routing). No byte goes
 * through the kernel: an fd is only a number (the proxy's own socket(), or
 * one the test made with io_fake_conn_new), and io_shutdown/io_close are
 * what the fake sees of a connection's end.
 *
 *   test ── io_fake_feed ──► conn.in ──(split, seeded)──► recv/read completions
 *   proxy ── io_send ──► conn.send (iovecs kept) ──(partial, seeded)──► conn.out
 *   test ◄── io_fake_sent / io_fake_consume ── conn.out
 *
 * io_wait never blocks: it turns what is ready into completions (timers
 * whose virtual time has come, connects whose rule says so, input for an
 * armed reader, sends not stalled), shuffles them across operations
 * (keeping each operation's own order) and hands them out. Time moves only
 * when the test says so (io_fake_advance): ticks, connect timeouts and the
 * worker's batch clock (io_clock_us) all read the virtual clock.
 *
 * One exception to "no kernel I/O": a read on an fd the fake never saw as
 * a connection (the worker's inbox eventfd, written by xworker_wake) reads
 * it for real, without blocking, so cross-worker questions work too.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend.h"

enum conn_kind { CONN_OTHER, CONN_CLIENT, CONN_OUT, CONN_LISTENER };

struct fake_conn {
    int fd;
    uint64_t id;            /* unique per connection: fds are reused */
    enum conn_kind kind;
    bool closed;            /* io_close'd: kept for the test to inspect */
    bool shut;              /* io_shutdown'd */
    bool connected;         /* CONN_OUT: its connect succeeded */
    bool eof;               /* the peer closes once `in` is delivered */
    bool stalled;           /* sends do not complete */
    char addr[64];          /* CONN_OUT: "ip:port" it connected to */
    char *in;               /* fed, not yet received */
    size_t in_len, in_off, in_cap;
    char *out;              /* what the proxy sent */
    size_t out_len, out_cap;
    size_t max_send;        /* 0: seeded */
    int fail_recv, fail_send; /* next completion's error (0: none) */
    struct io_op *reader;   /* accept, recv or read */
    struct io_op *writer;   /* send or connect */
    int64_t connect_at;     /* virtual time its connect completes */
    int connect_res;
    uint64_t accepted;      /* CONN_LISTENER: fds waiting to be accepted … */
    int *backlog;
    size_t nbacklog, backlog_cap;
};

struct connect_rule {
    struct connect_rule *next;
    char addr[64];
    int res;
    int delay_ms;  /* < 0: never answers (times out) */
    int count;     /* < 0: every connect */
};

struct fake_io {
    struct io base;
    uint64_t rng;
    int64_t now_us;
    int split;          /* receives: 0 seeded, else at most this many bytes */
    int partial_pct;    /* sends: percent that complete partially */
    bool reorder;
    struct fake_conn **conns; /* by fd */
    size_t nconns;
    struct io_op *timers;
    struct connect_rule *rules;
    struct io_evq q;
    struct io_bufpool pool, large; /* io_recv's, io_recv_large's */
    uint64_t next_id;
    struct io_event *batch; /* one wait's new completions, before shuffling */
    size_t nbatch, batch_cap;
};

static struct fake_io *F(struct io *io)
{
    assert(io->kind == IO_BACKEND_FAKE);
    return (struct fake_io *)io;
}

/* splitmix64: a tiny generator whose whole state is the seed */
static uint64_t rnd(struct fake_io *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static size_t rnd_range(struct fake_io *f, size_t lo, size_t hi)
{
    return lo + (size_t)(rnd(f) % (hi - lo + 1));
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        abort();
    return p;
}

static void conn_free(struct fake_conn *c)
{
    if (!c)
        return;
    free(c->in);
    free(c->out);
    free(c->backlog);
    free(c);
}

/* The live record of fd, made on first use (a closed one is replaced). */
static struct fake_conn *conn_of(struct fake_io *f, int fd)
{
    assert(fd >= 0);
    if ((size_t)fd >= f->nconns) {
        size_t n = f->nconns ? f->nconns : 64;
        while (n <= (size_t)fd)
            n *= 2;
        f->conns = xrealloc(f->conns, n * sizeof *f->conns);
        memset(f->conns + f->nconns, 0, (n - f->nconns) * sizeof *f->conns);
        f->nconns = n;
    }
    struct fake_conn *c = f->conns[fd];
    if (c && !c->closed)
        return c;
    conn_free(c);
    c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->fd = fd;
    c->id = ++f->next_id;
    f->conns[fd] = c;
    return c;
}

static struct fake_conn *conn_find(struct fake_io *f, int fd)
{
    return fd >= 0 && (size_t)fd < f->nconns ? f->conns[fd] : NULL;
}

static void arm(struct io_op *op, enum io_op_type type, int fd)
{
    assert(op->type == IO_OP_IDLE);
    op->type = (uint8_t)type;
    op->cancelled = 0;
    op->fd = fd;
    op->next = NULL;
}

static void batch_push(struct fake_io *f, struct io_op *op, int res, char *data, uint32_t buf,
                       unsigned flags)
{
    if (f->nbatch == f->batch_cap) {
        f->batch_cap = f->batch_cap ? f->batch_cap * 2 : 64;
        f->batch = xrealloc(f->batch, f->batch_cap * sizeof *f->batch);
    }
    f->batch[f->nbatch++] = (struct io_event){.op = op, .res = res, .flags = flags,
                                              .data = data, .buf = buf};
}

/* The op's last completion (into the current batch). */
static void finish(struct fake_io *f, struct io_op *op, int res)
{
    if (op->type == IO_OP_SEND) {
        free(op->u.send.iov);
        op->u.send.iov = NULL;
    }
    op->type = IO_OP_IDLE;
    batch_push(f, op, res, NULL, 0, 0);
}

static void unlist_timer(struct fake_io *f, struct io_op *op)
{
    for (struct io_op **p = &f->timers; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

static void fake_accept(struct io *io, struct io_op *op, int fd)
{
    struct fake_conn *c = conn_of(F(io), fd);
    assert(!c->reader);
    c->kind = CONN_LISTENER;
    arm(op, IO_OP_ACCEPT, fd);
    c->reader = op;
}

static void fake_recv(struct io *io, struct io_op *op, int fd, bool large)
{
    struct fake_conn *c = conn_of(F(io), fd);
    assert(!c->reader);
    arm(op, IO_OP_RECV, fd);
    op->u.recv.large = large;
    c->reader = op;
}

static void fake_read(struct io *io, struct io_op *op, int fd, void *buf, size_t len)
{
    struct fake_conn *c = conn_of(F(io), fd);
    assert(!c->reader);
    arm(op, IO_OP_READ, fd);
    op->u.read.buf = buf;
    op->u.read.len = len;
    c->reader = op;
}

static void fake_buf_return(struct io *io, uint32_t buf)
{
    struct fake_io *f = F(io);
    io_bufpool_put(buf & IO_BUF_LARGE ? &f->large : &f->pool, buf);
}

static void fake_send(struct io *io, struct io_op *op, int fd, const struct iovec *iov, int niov)
{
    struct fake_conn *c = conn_of(F(io), fd);
    assert(!c->writer && niov > 0);
    arm(op, IO_OP_SEND, fd);
    /* the array is copied now, the bytes read at completion: a caller that
     * let them go meanwhile is caught by ASan */
    op->u.send.iov = xrealloc(NULL, (size_t)niov * sizeof *iov);
    memcpy(op->u.send.iov, iov, (size_t)niov * sizeof *iov);
    op->u.send.niov = niov;
    c->writer = op;
}

static struct connect_rule *rule_for(struct fake_io *f, const char *addr)
{
    for (struct connect_rule *r = f->rules; r; r = r->next)
        if (r->count != 0 && strcmp(r->addr, addr) == 0)
            return r;
    return NULL;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
        snprintf(out, len, "[%s]:%u", host, ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
        snprintf(out, len, "%s:%u", host, ntohs(s4->sin_port));
    }
}

static void fake_connect(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                         socklen_t salen, int timeout_ms)
{
    struct fake_io *f = F(io);
    struct fake_conn *c = conn_of(f, fd);
    assert(!c->writer);
    (void)salen;
    c->kind = CONN_OUT;
    addr_text(sa, c->addr, sizeof c->addr);
    arm(op, IO_OP_CONNECT, fd);
    c->writer = op;
    struct connect_rule *r = rule_for(f, c->addr);
    int res = r ? r->res : 0, delay = r ? r->delay_ms : 0;
    if (r && r->count > 0)
        r->count--;
    if (delay < 0 || delay >= timeout_ms) {
        res = -ETIMEDOUT;
        delay = timeout_ms;
    }
    c->connect_res = res;
    c->connect_at = f->now_us + (int64_t)delay * 1000;
}

static void fake_timer(struct io *io, struct io_op *op, int ms)
{
    struct fake_io *f = F(io);
    arm(op, IO_OP_TIMER, -1);
    op->deadline_us = f->now_us + (int64_t)ms * 1000;
    op->next = f->timers;
    f->timers = op;
}

/* Cancellations complete straight into the queue: they are the answer to
 * a call, and come after whatever the op had already produced. */
static void fake_cancel(struct io *io, struct io_op *op)
{
    struct fake_io *f = F(io);
    if (op->type == IO_OP_IDLE)
        return;
    if (op->type == IO_OP_TIMER)
        unlist_timer(f, op);
    struct fake_conn *c = op->type == IO_OP_TIMER ? NULL : conn_find(f, op->fd);
    if (c && c->reader == op)
        c->reader = NULL;
    if (c && c->writer == op)
        c->writer = NULL;
    if (op->type == IO_OP_SEND) {
        free(op->u.send.iov);
        op->u.send.iov = NULL;
    }
    op->cancelled = 1;
    op->type = IO_OP_IDLE;
    io_evq_push(&f->q, op, -ECANCELED, 0);
}

static void fake_cancel_all(struct io *io)
{
    struct fake_io *f = F(io);
    while (f->timers)
        fake_cancel(io, f->timers);
    for (size_t fd = 0; fd < f->nconns; fd++) {
        struct fake_conn *c = f->conns[fd];
        if (c && c->reader)
            fake_cancel(io, c->reader);
        if (c && c->writer)
            fake_cancel(io, c->writer);
    }
}

/* What waits ends at the next io_wait: readers see EOF, a send -EPIPE, a
 * connect -ECANCELED (as on epoll). */
static void fake_shutdown(struct io *io, int fd)
{
    struct fake_conn *c = conn_of(F(io), fd);
    c->shut = true;
    if (c->writer && c->writer->type == IO_OP_CONNECT)
        fake_cancel(io, c->writer);
}

static void fake_close(struct io *io, int fd)
{
    struct fake_io *f = F(io);
    struct fake_conn *c = conn_find(f, fd);
    if (c && !c->closed) {
        if (c->reader) /* callers close once nothing is armed */
            fake_cancel(io, c->reader);
        if (c->writer)
            fake_cancel(io, c->writer);
        c->closed = c->shut = true;
        for (size_t i = 0; i < c->nbacklog; i++)
            close(c->backlog[i]);
        c->nbacklog = 0;
    }
    close(fd);
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                   */

/* How many of `avail` bytes the next receive takes. */
static size_t chunk(struct fake_io *f, size_t avail, size_t room)
{
    size_t n = avail < room ? avail : room;
    if (f->split > 0)
        return n < (size_t)f->split ? n : (size_t)f->split;
    switch (rnd(f) % 4) { /* whole, a few bytes, or anything in between */
    case 0:
        return n;
    case 1:
        return rnd_range(f, 1, n < 3 ? n : 3);
    default:
        return rnd_range(f, 1, n);
    }
}

/* A wake-up fd (CONN_OTHER): read for real when it has something. */
static void other_read(struct fake_io *f, struct fake_conn *c, struct io_op *op)
{
    ssize_t n = read(c->fd, op->u.read.buf, op->u.read.len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    c->reader = NULL;
    finish(f, op, n < 0 ? -errno : (int)n);
}

static bool other_readable(const struct fake_conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void reader_work(struct fake_io *f, struct fake_conn *c)
{
    struct io_op *op = c->reader;
    if (c->kind == CONN_OTHER && op->type == IO_OP_READ) {
        other_read(f, c, op);
        return;
    }
    if (op->type == IO_OP_ACCEPT) {
        for (size_t i = 0; i < c->nbacklog; i++)
            batch_push(f, op, c->backlog[i], NULL, 0, IO_EV_MORE);
        c->nbacklog = 0;
        return;
    }
    if (c->fail_recv) {
        int err = c->fail_recv;
        c->fail_recv = 0;
        c->reader = NULL;
        finish(f, op, err);
        return;
    }
    size_t avail = c->in_len - c->in_off;
    if (avail == 0) {
        if (c->eof || c->shut) {
            c->reader = NULL;
            finish(f, op, 0);
        }
        return;
    }
    if (op->type == IO_OP_READ) {
        size_t n = chunk(f, avail, op->u.read.len);
        memcpy(op->u.read.buf, c->in + c->in_off, n);
        c->in_off += n;
        c->reader = NULL;
        finish(f, op, (int)n);
        return;
    }
    struct io_bufpool *pool = op->u.recv.large ? &f->large : &f->pool;
    int pieces = (int)rnd_range(f, 1, 3); /* a multishot recv may bring several */
    for (int i = 0; i < pieces && c->in_off < c->in_len; i++) {
        uint32_t bid = io_bufpool_take(pool);
        if (bid == UINT32_MAX) {
            c->reader = NULL;
            finish(f, op, -ENOBUFS);
            return;
        }
        size_t n = chunk(f, c->in_len - c->in_off, pool->size);
        char *buf = io_bufpool_data(pool, bid);
        memcpy(buf, c->in + c->in_off, n);
        c->in_off += n;
        batch_push(f, op, (int)n, buf, bid, IO_EV_MORE | IO_EV_BUF);
    }
}

static size_t iov_total(const struct iovec *iov, int n)
{
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

static void capture(struct fake_conn *c, const struct iovec *iov, int niov, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        c->out_cap = (c->out_len + n) * 2;
        c->out = xrealloc(c->out, c->out_cap);
    }
    for (int i = 0; i < niov && n; i++) {
        size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
        memcpy(c->out + c->out_len, iov[i].iov_base, k);
        c->out_len += k;
        n -= k;
    }
}

static void writer_work(struct fake_io *f, struct fake_conn *c)
{
    struct io_op *op = c->writer;
    if (op->type == IO_OP_CONNECT) {
        if (f->now_us < c->connect_at)
            return;
        c->writer = NULL;
        c->connected = c->connect_res == 0;
        finish(f, op, c->connect_res);
        return;
    }
    int res;
    if (c->fail_send) {
        res = c->fail_send;
        c->fail_send = 0;
    } else if (c->shut) {
        res = -EPIPE;
    } else if (c->stalled) {
        return;
    } else {
        size_t total = iov_total(op->u.send.iov, op->u.send.niov), n = total;
        if (c->max_send && n > c->max_send)
            n = c->max_send;
        else if (total > 1 && rnd(f) % 100 < (uint64_t)f->partial_pct)
            n = rnd_range(f, 1, total - 1);
        capture(c, op->u.send.iov, op->u.send.niov, n);
        res = (int)n;
    }
    c->writer = NULL;
    finish(f, op, res);
}

static void expire_timers(struct fake_io *f)
{
    for (struct io_op **p = &f->timers; *p;) {
        struct io_op *op = *p;
        if (op->deadline_us > f->now_us) {
            p = &op->next;
            continue;
        }
        *p = op->next;
        finish(f, op, 0);
    }
}

/* A seeded interleaving of the batch: each step takes the earliest
 * remaining completion of a randomly chosen one, so an op's own
 * completions keep their order. */
static void shuffle_into_queue(struct fake_io *f)
{
    size_t left = f->nbatch;
    while (left) {
        size_t pick = f->reorder ? rnd_range(f, 0, left - 1) : 0;
        struct io_op *op = f->batch[pick].op;
        size_t first = 0;
        while (f->batch[first].op != op)
            first++;
        struct io_event ev = f->batch[first];
        memmove(f->batch + first, f->batch + first + 1, (left - first - 1) * sizeof ev);
        left--;
        io_evq_push_buf(&f->q, ev.op, ev.res, ev.data, ev.buf, ev.flags);
    }
    f->nbatch = 0;
}

static int fake_wait(struct io *io, struct io_event *out, int max, int timeout_ms)
{
    struct fake_io *f = F(io);
    (void)timeout_ms; /* never blocks: time moves with io_fake_advance */
    expire_timers(f);
    for (size_t fd = 0; fd < f->nconns; fd++) {
        struct fake_conn *c = f->conns[fd];
        if (!c || c->closed)
            continue;
        if (c->reader)
            reader_work(f, c);
        if (c->writer)
            writer_work(f, c);
    }
    shuffle_into_queue(f);
    return io_evq_take(&f->q, out, max);
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

static int fake_start(struct io *io)
{
    return 0;
}

static void fake_destroy(struct io *io)
{
    struct fake_io *f = F(io);
    for (size_t fd = 0; fd < f->nconns; fd++) {
        struct fake_conn *c = f->conns[fd];
        if (c && c->writer && c->writer->type == IO_OP_SEND)
            free(c->writer->u.send.iov);
        if (c && !c->closed)
            for (size_t i = 0; i < c->nbacklog; i++)
                close(c->backlog[i]);
        conn_free(c);
    }
    while (f->rules) {
        struct connect_rule *r = f->rules;
        f->rules = r->next;
        free(r);
    }
    free(f->conns);
    free(f->batch);
    io_evq_free(&f->q);
    io_bufpool_free(&f->pool);
    io_bufpool_free(&f->large);
    free(f);
}

static const struct io_backend_ops fake_ops = {
    .start = fake_start,
    .destroy = fake_destroy,
    .accept = fake_accept,
    .recv = fake_recv,
    .buf_return = fake_buf_return,
    .read = fake_read,
    .send = fake_send,
    .connect = fake_connect,
    .timer = fake_timer,
    .cancel = fake_cancel,
    .cancel_all = fake_cancel_all,
    .shutdown = fake_shutdown,
    .close = fake_close,
    .wait = fake_wait,
    .ready = io_fake_busy,
};

int io_fake_create(struct io **out)
{
    struct fake_io *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->base.ops = &fake_ops;
    f->base.kind = IO_BACKEND_FAKE;
    f->base.detail = "fake (in memory, seeded)";
    f->rng = 1;
    f->now_us = io_now_us(); /* near the process clock: rt->start_ms agrees */
    f->partial_pct = 30;
    f->reorder = true;
    int ret = io_bufpool_init(&f->pool, IO_BUF_COUNT, IO_BUF_SIZE, 0);
    if (ret == 0)
        ret = io_bufpool_init(&f->large, IO_BUF_LARGE_COUNT, IO_BUF_LARGE_SIZE, IO_BUF_LARGE);
    if (ret < 0) {
        io_bufpool_free(&f->pool);
        free(f);
        return ret;
    }
    *out = &f->base;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The test's side (io.h, "fake backend")                                    */

int64_t io_fake_now_us(const struct io *io)
{
    return ((const struct fake_io *)io)->now_us;
}

void io_fake_seed(struct io *io, uint64_t seed)
{
    F(io)->rng = seed;
}

void io_fake_set_split(struct io *io, int max_bytes)
{
    F(io)->split = max_bytes;
}

void io_fake_set_partial(struct io *io, int percent)
{
    F(io)->partial_pct = percent;
}

void io_fake_set_reorder(struct io *io, bool on)
{
    F(io)->reorder = on;
}

void io_fake_advance(struct io *io, int64_t ms)
{
    F(io)->now_us += ms * 1000;
}

int io_fake_listener(struct io *io)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0)
        conn_of(F(io), fd)->kind = CONN_LISTENER;
    return fd;
}

int io_fake_conn_new(struct io *io, int listener)
{
    struct fake_io *f = F(io);
    struct fake_conn *l = conn_find(f, listener);
    assert(l && l->kind == CONN_LISTENER && !l->closed);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct fake_conn *c = conn_of(f, fd);
    c->kind = CONN_CLIENT;
    c->connected = true;
    if (l->nbacklog == l->backlog_cap) {
        l->backlog_cap = l->backlog_cap ? l->backlog_cap * 2 : 8;
        l->backlog = xrealloc(l->backlog, l->backlog_cap * sizeof *l->backlog);
    }
    l->backlog[l->nbacklog++] = fd;
    return fd;
}

void io_fake_feed(struct io *io, int fd, const void *data, size_t len)
{
    struct fake_conn *c = conn_find(F(io), fd);
    assert(c);
    if (c->closed || c->shut)
        return; /* nobody reads it any more */
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    if (c->in_len + len > c->in_cap) {
        c->in_cap = (c->in_len + len) * 2;
        c->in = xrealloc(c->in, c->in_cap);
    }
    memcpy(c->in + c->in_len, data, len);
    c->in_len += len;
}

void io_fake_feed_eof(struct io *io, int fd)
{
    struct fake_conn *c = conn_find(F(io), fd);
    assert(c);
    c->eof = true;
}

const char *io_fake_sent(struct io *io, int fd, size_t *len)
{
    struct fake_conn *c = conn_find(F(io), fd);
    *len = c ? c->out_len : 0;
    return c ? c->out : NULL;
}

void io_fake_consume(struct io *io, int fd, size_t n)
{
    struct fake_conn *c = conn_find(F(io), fd);
    assert(c && n <= c->out_len);
    memmove(c->out, c->out + n, c->out_len - n);
    c->out_len -= n;
}

void io_fake_fail(struct io *io, int fd, enum io_fake_point at, int err)
{
    struct fake_conn *c = conn_find(F(io), fd);
    assert(c && err < 0);
    if (at == IO_FAKE_RECV)
        c->fail_recv = err;
    else
        c->fail_send = err;
}

void io_fake_stall(struct io *io, int fd, bool stalled)
{
    struct fake_conn *c = conn_find(F(io), fd);
    assert(c);
    c->stalled = stalled;
}

void io_fake_max_send(struct io *io, int fd, size_t max)
{
    struct fake_conn *c = conn_find(F(io), fd);
    assert(c);
    c->max_send = max;
}

void io_fake_connect_rule(struct io *io, const char *addr, int res, int delay_ms, int count)
{
    struct fake_io *f = F(io);
    struct connect_rule *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    snprintf(r->addr, sizeof r->addr, "%s", addr);
    r->res = res;
    r->delay_ms = delay_ms;
    r->count = count;
    r->next = f->rules; /* the newest rule wins */
    f->rules = r;
}

void io_fake_connect_clear(struct io *io, const char *addr)
{
    for (struct connect_rule *r = F(io)->rules; r; r = r->next)
        if (!addr || strcmp(r->addr, addr) == 0)
            r->count = 0;
}

int io_fake_conns(struct io *io, const char *addr, int *fds, int max)
{
    struct fake_io *f = F(io);
    int n = 0;
    for (size_t fd = 0; fd < f->nconns && n < max; fd++) {
        struct fake_conn *c = f->conns[fd];
        if (!c || c->closed || c->kind != CONN_OUT || !c->connected)
            continue;
        if (!addr || strcmp(c->addr, addr) == 0)
            fds[n++] = (int)fd;
    }
    return n;
}

const char *io_fake_conn_addr(struct io *io, int fd)
{
    struct fake_conn *c = conn_find(F(io), fd);
    return c && c->kind == CONN_OUT ? c->addr : NULL;
}

uint64_t io_fake_conn_id(struct io *io, int fd)
{
    struct fake_conn *c = conn_find(F(io), fd);
    return c ? c->id : 0;
}

bool io_fake_closed(struct io *io, int fd)
{
    struct fake_conn *c = conn_find(F(io), fd);
    return !c || c->closed || c->shut;
}

bool io_fake_busy(struct io *io)
{
    struct fake_io *f = F(io);
    if (f->q.head < f->q.len)
        return true;
    for (struct io_op *t = f->timers; t; t = t->next)
        if (t->deadline_us <= f->now_us)
            return true;
    for (size_t fd = 0; fd < f->nconns; fd++) {
        struct fake_conn *c = f->conns[fd];
        if (!c || c->closed)
            continue;
        struct io_op *r = c->reader, *w = c->writer;
        if (r && r->type == IO_OP_ACCEPT && c->nbacklog)
            return true;
        if (r && c->kind == CONN_OTHER && r->type == IO_OP_READ) {
            if (other_readable(c))
                return true;
            continue;
        }
        if (r && r->type != IO_OP_ACCEPT &&
            (c->in_off < c->in_len || c->eof || c->shut || c->fail_recv))
            return true;
        if (w && w->type == IO_OP_CONNECT && f->now_us >= c->connect_at)
            return true;
        if (w && w->type == IO_OP_SEND && (!c->stalled || c->shut || c->fail_send))
            return true;
    }
    return false;
}

int64_t io_fake_next_timer_ms(struct io *io)
{
    struct fake_io *f = F(io);
    int64_t best = -1;
    for (struct io_op *t = f->timers; t; t = t->next) {
        int64_t left = (t->deadline_us - f->now_us + 999) / 1000;
        if (best < 0 || left < best)
            best = left < 0 ? 0 : left;
    }
    for (size_t fd = 0; fd < f->nconns; fd++) {
        struct fake_conn *c = f->conns[fd];
        if (c && !c->closed && c->writer && c->writer->type == IO_OP_CONNECT) {
            int64_t left = (c->connect_at - f->now_us + 999) / 1000;
            if (best < 0 || left < best)
                best = left < 0 ? 0 : left;
        }
    }
    return best;
}
