/*
 * The backend-independent part of core/io: choosing a backend, dispatching
 * calls to it, and the completion queue and buffer pool that the backends
 * making their own completions share.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../consensus/consensus.h"
#include "backend.h"

int64_t io_now_us(void)
{
    return consensus_clock_us(); /* the one clock */
}

int64_t io_clock_us(const struct io *io)
{
    if (io->kind == IO_BACKEND_FAKE) /* a predictable branch, once per batch */
        return io_fake_now_us(io);
    return consensus_clock_us();
}

static const char *const backend_names[] = {
    [IO_BACKEND_AUTO] = "auto",
    [IO_BACKEND_URING] = "uring",
    [IO_BACKEND_EPOLL] = "epoll",
    [IO_BACKEND_FAKE] = "fake",
};

const char *io_backend_name(enum io_backend b)
{
    return (unsigned)b < sizeof backend_names / sizeof *backend_names ? backend_names[b] : "?";
}

int io_create(enum io_backend want, struct io **out, char *why, size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    switch (want) {
    case IO_BACKEND_URING:
        return io_uring_create(out, why, whylen);
    case IO_BACKEND_EPOLL:
        return io_epoll_create(out);
    case IO_BACKEND_FAKE:
        return io_fake_create(out);
    case IO_BACKEND_AUTO:
        if (io_uring_create(out, why, whylen) == 0)
            return 0;
        return io_epoll_create(out);
    }
    return -EINVAL;
}

void io_destroy(struct io *io)
{
    if (!io)
        return;
    struct io_tls *tls = io->tls;
    io->ops->destroy(io);
    if (tls)
        io_tls_destroy_state(tls);
}

int io_start(struct io *io) { return io->ops->start(io); }
enum io_backend io_kind(const struct io *io) { return io->kind; }
const char *io_detail(const struct io *io) { return io->detail; }

/* Every verb on an fd asks the TLS filter first when some fd uses TLS. */
void io_accept(struct io *io, struct io_op *op, int fd) { io->ops->accept(io, op, fd); }
void io_timer(struct io *io, struct io_op *op, int ms) { io->ops->timer(io, op, ms); }

void io_recv(struct io *io, struct io_op *op, int fd)
{
    if (!io->tls || !io_tls_recv(io, op, fd))
        io->ops->recv(io, op, fd, false);
}

void io_recv_large(struct io *io, struct io_op *op, int fd)
{
    if (!io->tls || !io_tls_recv(io, op, fd))
        io->ops->recv(io, op, fd, true);
}

void io_buf_return(struct io *io, uint32_t buf)
{
    if (!io->tls || !io_tls_buf_return(io, buf))
        io->ops->buf_return(io, buf);
}

void io_cancel(struct io *io, struct io_op *op)
{
    if (!io->tls || !io_tls_cancel(io, op))
        io->ops->cancel(io, op);
}

void io_cancel_all(struct io *io)
{
    if (io->tls)
        io_tls_cancel_all(io);
    io->ops->cancel_all(io);
}

void io_shutdown(struct io *io, int fd)
{
    if (!io->tls || !io_tls_shutdown(io, fd))
        io->ops->shutdown(io, fd);
}

void io_close(struct io *io, int fd)
{
    if (!io->tls || !io_tls_close(io, fd))
        io->ops->close(io, fd);
}

void io_read(struct io *io, struct io_op *op, int fd, void *buf, size_t len)
{
    if (!io->tls || !io_tls_read(io, op, fd, buf, len))
        io->ops->read(io, op, fd, buf, len);
}

void io_send(struct io *io, struct io_op *op, int fd, const struct iovec *iov, int niov)
{
    if (!io->tls || !io_tls_send(io, op, fd, iov, niov))
        io->ops->send(io, op, fd, iov, niov);
}

void io_connect(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                socklen_t salen, int timeout_ms)
{
    if (!io->tls || !io_tls_connect_op(io, op, fd, sa, salen, timeout_ms))
        io->ops->connect(io, op, fd, sa, salen, timeout_ms);
}

int io_wait(struct io *io, struct io_event *ev, int max, int timeout_ms)
{
    if (io->tls)
        return io_tls_wait(io, ev, max, timeout_ms);
    return io->ops->wait(io, ev, max, timeout_ms);
}

/* (The TLS filter's own queue is not asked: a false "no" only means a
 * client's output leaves an iteration sooner.) */
bool io_ready(struct io *io)
{
    return io->ops->ready && io->ops->ready(io);
}

/* ------------------------------------------------------------------------ */
/* Completion queue                                                          */

void io_evq_push_buf(struct io_evq *q, struct io_op *op, int res, char *data, uint32_t buf,
                     unsigned flags)
{
    if (q->head > 0 && q->head == q->len)
        q->head = q->len = 0;
    if (q->len == q->cap) {
        if (q->head > 0) { /* slide the untaken ones to the front */
            memmove(q->ev, q->ev + q->head, (q->len - q->head) * sizeof *q->ev);
            q->len -= q->head;
            q->head = 0;
        }
        if (q->len == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 256;
            struct io_event *ev = realloc(q->ev, cap * sizeof *ev);
            if (!ev)
                abort();
            q->ev = ev;
            q->cap = cap;
        }
    }
    q->ev[q->len++] = (struct io_event){.op = op, .res = res, .flags = flags,
                                        .data = data, .buf = buf};
}

void io_evq_push(struct io_evq *q, struct io_op *op, int res, unsigned flags)
{
    io_evq_push_buf(q, op, res, NULL, 0, flags);
}

int io_evq_take(struct io_evq *q, struct io_event *ev, int max)
{
    int n = 0;
    while (q->head < q->len && n < max)
        ev[n++] = q->ev[q->head++];
    return n;
}

void io_evq_free(struct io_evq *q)
{
    free(q->ev);
    memset(q, 0, sizeof *q);
}

/* ------------------------------------------------------------------------ */
/* Provided buffers                                                          */

int io_bufpool_init(struct io_bufpool *p, uint32_t count, size_t size, uint32_t flag)
{
    memset(p, 0, sizeof *p);
    p->count = count;
    p->size = size;
    p->flag = flag;
    return io_bufpool_grow(p);
}

int io_bufpool_grow(struct io_bufpool *p)
{
    uint32_t total = (p->nblocks + 1) * p->count;
    char **blocks = realloc(p->blocks, (p->nblocks + 1) * sizeof *blocks);
    if (!blocks)
        return -ENOMEM;
    p->blocks = blocks;
    uint32_t *ids = realloc(p->free_ids, total * sizeof *ids);
    if (!ids)
        return -ENOMEM;
    p->free_ids = ids;
    char *mem = malloc((size_t)p->count * p->size);
    if (!mem)
        return -ENOMEM;
    p->blocks[p->nblocks++] = mem;
    for (uint32_t i = total; i-- > total - p->count;) /* lowest ids on top */
        p->free_ids[p->nfree++] = i | p->flag;
    return 0;
}

void io_bufpool_free(struct io_bufpool *p)
{
    for (uint32_t i = 0; i < p->nblocks; i++)
        free(p->blocks[i]);
    free(p->blocks);
    free(p->free_ids);
    memset(p, 0, sizeof *p);
}

uint32_t io_bufpool_take(struct io_bufpool *p)
{
    return p->nfree ? p->free_ids[--p->nfree] : UINT32_MAX;
}

void io_bufpool_put(struct io_bufpool *p, uint32_t id)
{
    p->free_ids[p->nfree++] = id | p->flag;
}
