/*
 * Private to core/io: what every backend implements. struct io is the
 * common head of each backend's own struct (first member), so io.c can
 * dispatch through the table without knowing the backend.
 */
#ifndef RINGSLOT_CORE_IO_BACKEND_H
#define RINGSLOT_CORE_IO_BACKEND_H

#include "io.h"

struct io_backend_ops {
    int (*start)(struct io *io);
    void (*destroy)(struct io *io);
    void (*accept)(struct io *io, struct io_op *op, int fd);
    void (*recv)(struct io *io, struct io_op *op, int fd, bool large);
    void (*buf_return)(struct io *io, uint32_t buf);
    void (*read)(struct io *io, struct io_op *op, int fd, void *buf, size_t len);
    void (*send)(struct io *io, struct io_op *op, int fd, const struct iovec *iov, int niov);
    void (*connect)(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                    socklen_t salen, int timeout_ms);
    void (*timer)(struct io *io, struct io_op *op, int ms);
    void (*cancel)(struct io *io, struct io_op *op);
    void (*cancel_all)(struct io *io);
    void (*shutdown)(struct io *io, int fd);
    void (*close)(struct io *io, int fd);
    int (*wait)(struct io *io, struct io_event *ev, int max, int timeout_ms);
    bool (*ready)(struct io *io); /* io_ready(); NULL: always false */
};

struct io_tls;

struct io {
    const struct io_backend_ops *ops;
    enum io_backend kind;
    const char *detail; /* io_detail() */
    struct io_tls *tls; /* tls_filter.c; NULL until an fd uses TLS */
};

/* The TLS filter (tls_filter.c) in front of the backend: each returns
 * false when fd is not a TLS fd (the backend then does the work). */
bool io_tls_recv(struct io *io, struct io_op *op, int fd);
bool io_tls_read(struct io *io, struct io_op *op, int fd, void *buf, size_t len);
bool io_tls_send(struct io *io, struct io_op *op, int fd, const struct iovec *iov, int niov);
bool io_tls_connect_op(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                       socklen_t salen, int timeout_ms);
bool io_tls_cancel(struct io *io, struct io_op *op);
bool io_tls_buf_return(struct io *io, uint32_t buf);
bool io_tls_shutdown(struct io *io, int fd);
bool io_tls_close(struct io *io, int fd);
void io_tls_cancel_all(struct io *io);
int io_tls_wait(struct io *io, struct io_event *ev, int max, int timeout_ms);
void io_tls_destroy_state(struct io_tls *t); /* after the backend's destroy */

/* Provided receive buffers, two classes (every backend), each its own
 * pool (and buffer ring): small ones for io_recv (clients: requests are
 * mostly small, and there are many clients), large ones for io_recv_large
 * (links: a large reply then comes in few completions, and a worker has few
 * links). A large buffer's id has IO_BUF_LARGE set. */
#define IO_BUF_COUNT 1024
#define IO_BUF_SIZE 4096
#define IO_BUF_LARGE_COUNT 64
#define IO_BUF_LARGE_SIZE 65536
#define IO_BUF_LARGE 0x40000000u

int io_uring_create(struct io **out, char *why, size_t whylen);
int io_epoll_create(struct io **out);
int io_fake_create(struct io **out);

/* A completion queue kept by backends that make their own completions
 * (epoll, fake, uring's cancellations of never-submitted ops). */
struct io_evq {
    struct io_event *ev;
    size_t head, len, cap;
};
void io_evq_push(struct io_evq *q, struct io_op *op, int res, unsigned flags);
void io_evq_push_buf(struct io_evq *q, struct io_op *op, int res, char *data, uint32_t buf,
                     unsigned flags);
int io_evq_take(struct io_evq *q, struct io_event *ev, int max);
void io_evq_free(struct io_evq *q);

/* Provided buffers of one class: `count` of `size` bytes at first, in one
 * block (the uring buffer ring registers their addresses); io_bufpool_grow
 * adds blocks of as many again, for receives that hold a buffer while they
 * wait (uring's single-shot fallback arms one per idle client). A stack of
 * free ids; every id carries the class's `flag` (0 or IO_BUF_LARGE). */
struct io_bufpool {
    char **blocks;
    uint32_t nblocks;
    uint32_t count, flag;
    size_t size;
    uint32_t *free_ids;
    uint32_t nfree;
};
/* A pool of count buffers of size bytes, their ids flagged with flag. */
int io_bufpool_init(struct io_bufpool *p, uint32_t count, size_t size, uint32_t flag);
void io_bufpool_free(struct io_bufpool *p);
/* Takes a free buffer: its id, or UINT32_MAX if none. */
uint32_t io_bufpool_take(struct io_bufpool *p);
void io_bufpool_put(struct io_bufpool *p, uint32_t id);
/* Another IO_BUF_COUNT buffers; 0 or -ENOMEM. */
int io_bufpool_grow(struct io_bufpool *p);
static inline char *io_bufpool_data(const struct io_bufpool *p, uint32_t id)
{
    id &= ~p->flag;
    return p->blocks[id / p->count] + (size_t)(id % p->count) * p->size;
}

int64_t io_now_us(void);

#endif
