/*
 * TLS as a filter between the backend and the ops' owners: the owners of a
 * TLS fd (a client, a link) arm the usual verbs and see plaintext; the
 * filter runs its own raw ops on the fd and turns their completions into
 * the owners' ones inside io_wait (never a handler inside a call).
 *
 *   owner io_recv/io_read ─┐                      ┌─ raw recv (provided
 *                          ▼                      │  buffers, multishot)
 *        plaintext ◄─ tls_conn_read ◄─ feed ◄─────┘
 *   owner io_send ─► tls_conn_write ─► out ─► sending ─► raw send
 *   owner io_connect ─► raw connect ─► handshake ─► owner's completion
 *
 * Per fd (struct tls_fd): at most one raw recv, one raw send and one raw
 * connect in flight, each an io_op embedded in it with a tag below 0; the
 * owner's ops are remembered (o_recv, o_send, o_conn) and completed from
 * the filter's queue. Ciphertext to send collects in `out` while `sending`
 * is in flight (its bytes must stay put until the completion), then the two
 * swap. An owner's send completes once all ciphertext went out.
 *
 * Flow control: the raw recv runs while the handshake does or while the
 * owner has a recv armed; a cancelled owner recv (client backpressure)
 * cancels it, and what was fed meanwhile waits decrypted-later in the
 * tls_conn until the owner reads again.
 *
 * Lifetime: io_close forgets the fd at once for the owner; the tls_fd
 * lives on (a zombie, fd still open so its number is not reused) until its
 * raw ops finished, then the backend closes the fd and it is freed.
 *
 * Deadlines: a handshake not done after the io's handshake timeout (the
 * accepting side) or io_connect's timeout counted from io_tls_connect (the
 * connecting side: TCP and TLS together) fails with -ETIMEDOUT; io_wait
 * checks every DEADLINE_SCAN_MS (and waits no longer while one runs).
 *
 * Plaintext buffers for io_recv: IO_TLS_BUF bit set in the id, 16 KB each,
 * made on demand up to PBUF_MAX (then the owner's recv ends with -ENOBUFS,
 * as on an empty ring).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>

#include "backend.h"

#define container_of_tf(op, member) \
    ((struct tls_fd *)((char *)(op) - offsetof(struct tls_fd, member)))

/* the filter's own ops: tags above every owner's (io.h: IO_TAG_OWN_MAX) */
#define TAG_RAW_RECV 0xfff0
#define TAG_RAW_SEND 0xfff1
#define TAG_RAW_CONN 0xfff2

#define PBUF_FLAG 0x80000000u
#define PBUF_SIZE 16384
#define PBUF_MAX 1024
#define PUMP_BURST 8              /* plaintext buffers per fd and pass */
#define SEND_CHUNK (256 * 1024)   /* plaintext taken per owner send */
#define DEADLINE_SCAN_MS 100
#define DEFAULT_HANDSHAKE_MS 10000

enum tf_phase {
    TF_CONNECTING, /* client side: the TCP connect is in flight */
    TF_HANDSHAKE,
    TF_OPEN,
    TF_DONE,       /* failed, EOF or shut: `error` is what recvs get */
};

struct tls_fd {
    int fd;
    enum io_tls_side side;
    enum tf_phase phase;
    struct tls_conn *conn;
    char peer[80];             /* for the log */
    int error;                 /* TF_DONE: 0 (EOF) or -errno */
    int hs_timeout_ms;         /* client side: io_connect's (TCP + TLS);
                                  0: the io's handshake timeout */
    bool shut, closed, counted, fed;
    struct io_op raw_recv, raw_send, raw_conn;
    bool raw_recv_armed, raw_send_armed, raw_conn_armed, raw_recv_cancelling;
    bool want_rearm;           /* raw recv hit -ENOBUFS */
    char *out, *sending;       /* ciphertext: collecting, in flight */
    size_t out_len, out_cap, sending_len, sending_off, sending_cap;
    struct io_op *o_recv, *o_send, *o_conn; /* the owner's armed ops */
    struct iovec *o_iov;       /* a send waiting for the handshake */
    int o_niov;
    size_t o_taken;            /* plaintext taken for o_send (0: none yet) */
    bool o_encrypted;
    struct tls_fd *work_next, *hs_next, *all_next, *all_prev, *nobuf_next;
    bool work_listed, hs_listed;
};

struct io_tls {
    struct tls_fd **byfd;      /* fd → its tls_fd (not zombies) */
    size_t nbyfd;
    struct tls_fd *all;        /* every tls_fd, zombies too */
    struct tls_fd *work;       /* fds to pump in the next pass */
    struct tls_fd *hs;         /* fds that were handshaking */
    struct tls_fd *nobuf;      /* fds whose raw recv hit -ENOBUFS */
    struct io_evq q;           /* the owners' completions */
    char **pbufs;              /* [PBUF_MAX], made on demand */
    uint32_t *pfree;
    uint32_t npfree, npbufs;
    bool raw_bufs_back;        /* a raw buffer went back: retry -ENOBUFS */
    struct io_tls_stats *stats;
    struct io_tls_stats own_stats;
    io_tls_log_fn *log;
    void *log_arg;
    int hs_timeout_ms;
    int64_t next_scan_us;
};

static uint64_t now_ms(void)
{
    return (uint64_t)(io_now_us() / 1000);
}

static struct io_tls *get_tls(struct io *io)
{
    if (io->tls)
        return io->tls;
    struct io_tls *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->pbufs = calloc(PBUF_MAX, sizeof *t->pbufs);
    t->pfree = calloc(PBUF_MAX, sizeof *t->pfree);
    if (!t->pbufs || !t->pfree) {
        free(t->pbufs);
        free(t->pfree);
        free(t);
        return NULL;
    }
    t->stats = &t->own_stats;
    t->hs_timeout_ms = DEFAULT_HANDSHAKE_MS;
    io->tls = t;
    return t;
}

void io_tls_setup(struct io *io, struct io_tls_stats *stats, int handshake_timeout_ms,
                  io_tls_log_fn *log, void *log_arg)
{
    struct io_tls *t = get_tls(io);
    if (!t)
        return;
    if (stats)
        t->stats = stats;
    t->hs_timeout_ms = handshake_timeout_ms > 0 ? handshake_timeout_ms : DEFAULT_HANDSHAKE_MS;
    t->log = log;
    t->log_arg = log_arg;
}

static struct tls_fd *lookup(struct io *io, int fd)
{
    struct io_tls *t = io->tls;
    if (!t || fd < 0 || (size_t)fd >= t->nbyfd)
        return NULL;
    return t->byfd[fd];
}

struct tls_conn *io_tls_conn(struct io *io, int fd)
{
    struct tls_fd *tf = lookup(io, fd);
    return tf ? tf->conn : NULL;
}

static void stat_inc(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Registering and forgetting                                                */

static struct tls_fd *attach(struct io *io, int fd, enum io_tls_side side)
{
    struct io_tls *t = get_tls(io);
    if (!t || fd < 0)
        return NULL;
    if ((size_t)fd >= t->nbyfd) {
        size_t n = t->nbyfd ? t->nbyfd : 256;
        while (n <= (size_t)fd)
            n *= 2;
        struct tls_fd **b = realloc(t->byfd, n * sizeof *b);
        if (!b)
            return NULL;
        memset(b + t->nbyfd, 0, (n - t->nbyfd) * sizeof *b);
        t->byfd = b;
        t->nbyfd = n;
    }
    struct tls_fd *tf = calloc(1, sizeof *tf);
    if (!tf)
        return NULL;
    tf->fd = fd;
    tf->side = side;
    tf->raw_recv.tag = TAG_RAW_RECV;
    tf->raw_send.tag = TAG_RAW_SEND;
    tf->raw_conn.tag = TAG_RAW_CONN;
    tf->all_next = t->all;
    if (t->all)
        t->all->all_prev = tf;
    t->all = tf;
    t->byfd[fd] = tf;
    return tf;
}

static void unlist_all(struct io_tls *t, struct tls_fd *tf)
{
    if (tf->all_prev)
        tf->all_prev->all_next = tf->all_next;
    else
        t->all = tf->all_next;
    if (tf->all_next)
        tf->all_next->all_prev = tf->all_prev;
}

static void hs_list(struct io_tls *t, struct tls_fd *tf)
{
    if (tf->hs_listed)
        return;
    tf->hs_listed = true;
    tf->hs_next = t->hs;
    t->hs = tf;
}

int io_tls_accept(struct io *io, int fd, struct tls_ctx *ctx)
{
    struct tls_fd *tf = attach(io, fd, IO_TLS_ACCEPTED);
    if (!tf)
        return -ENOMEM;
    tf->conn = tls_conn_accept(ctx, now_ms());
    if (!tf->conn) {
        io->tls->byfd[fd] = NULL;
        unlist_all(io->tls, tf);
        free(tf);
        return -ENOMEM;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(tf->peer, sizeof tf->peer, "%s:%d", host, port);
    tf->phase = TF_HANDSHAKE;
    hs_list(io->tls, tf);
    /* the raw recv starts with the owner's first recv (client_accepted
     * arms it at once) */
    return 0;
}

int io_tls_connect(struct io *io, int fd, struct tls_ctx *ctx, const char *host, int port)
{
    struct tls_fd *tf = attach(io, fd, IO_TLS_CONNECTED);
    if (!tf)
        return -ENOMEM;
    tf->conn = tls_conn_connect(ctx, host, port, now_ms());
    if (!tf->conn) {
        io->tls->byfd[fd] = NULL;
        unlist_all(io->tls, tf);
        free(tf);
        return -ENOMEM;
    }
    snprintf(tf->peer, sizeof tf->peer, "%s:%d", host ? host : "?", port);
    tf->phase = TF_CONNECTING;
    hs_list(io->tls, tf);
    return 0;
}

static void free_tf(struct tls_fd *tf)
{
    tls_conn_free(tf->conn);
    free(tf->out);
    free(tf->sending);
    free(tf->o_iov);
    free(tf);
}

/* A zombie whose raw ops all finished: close the fd, free it. */
static bool reap_if_done(struct io *io, struct tls_fd *tf)
{
    if (!tf->closed || tf->raw_recv_armed || tf->raw_send_armed || tf->raw_conn_armed)
        return false;
    struct io_tls *t = io->tls;
    if ((size_t)tf->fd < t->nbyfd && t->byfd[tf->fd] == tf)
        t->byfd[tf->fd] = NULL;
    io->ops->close(io, tf->fd);
    unlist_all(t, tf);
    for (struct tls_fd **p = &t->work; tf->work_listed && *p; p = &(*p)->work_next)
        if (*p == tf) {
            *p = tf->work_next;
            break;
        }
    for (struct tls_fd **p = &t->hs; tf->hs_listed && *p; p = &(*p)->hs_next)
        if (*p == tf) {
            *p = tf->hs_next;
            break;
        }
    for (struct tls_fd **p = &t->nobuf; tf->want_rearm && *p; p = &(*p)->nobuf_next)
        if (*p == tf) {
            *p = tf->nobuf_next;
            break;
        }
    free_tf(tf);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Owner completions                                                         */

static void work_later(struct io_tls *t, struct tls_fd *tf)
{
    if (tf->work_listed || tf->closed)
        return;
    tf->work_listed = true;
    tf->work_next = t->work;
    t->work = tf;
}

static void owner_done(struct io_tls *t, struct io_op **slot, int res)
{
    struct io_op *op = *slot;
    if (!op)
        return;
    *slot = NULL;
    op->type = IO_OP_IDLE;
    io_evq_push(&t->q, op, res, 0);
}

static void owner_send_done(struct tls_fd *tf, struct io_tls *t, int res)
{
    free(tf->o_iov);
    tf->o_iov = NULL;
    tf->o_taken = 0;
    tf->o_encrypted = false;
    owner_done(t, &tf->o_send, res);
}

/* ------------------------------------------------------------------------ */
/* Raw sending                                                               */

static void out_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        abort();
    *buf = b;
    *cap = n;
}

/* Move what the tls_conn has to send into `out`. */
static void collect_output(struct tls_fd *tf)
{
    size_t n;
    while ((n = tls_conn_output_pending(tf->conn)) > 0) {
        out_reserve(&tf->out, &tf->out_cap, tf->out_len + n);
        tf->out_len += tls_conn_output(tf->conn, tf->out + tf->out_len, n);
    }
}

static void kick_send(struct io *io, struct tls_fd *tf)
{
    collect_output(tf);
    if (tf->raw_send_armed || tf->closed || tf->shut || tf->phase == TF_CONNECTING)
        return;
    if (tf->sending_off == tf->sending_len && tf->out_len) {
        /* swap: `out` goes out, the old buffer collects */
        char *b = tf->sending;
        size_t cap = tf->sending_cap;
        tf->sending = tf->out;
        tf->sending_cap = tf->out_cap;
        tf->sending_len = tf->out_len;
        tf->sending_off = 0;
        tf->out = b;
        tf->out_cap = cap;
        tf->out_len = 0;
    }
    if (tf->sending_off == tf->sending_len)
        return;
    struct iovec iov = {tf->sending + tf->sending_off, tf->sending_len - tf->sending_off};
    io->ops->send(io, &tf->raw_send, tf->fd, &iov, 1);
    tf->raw_send_armed = true;
}

static bool all_sent(const struct tls_fd *tf)
{
    return tf->out_len == 0 && tf->sending_off == tf->sending_len;
}

/* Best effort, without waiting (a failure or a shutdown): whatever is
 * pending, when no raw send is in flight. */
static void send_now(struct tls_fd *tf)
{
    collect_output(tf);
    if (tf->raw_send_armed || tf->closed)
        return;
    if (tf->sending_off < tf->sending_len) {
        ssize_t n = send(tf->fd, tf->sending + tf->sending_off,
                         tf->sending_len - tf->sending_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            tf->sending_off += (size_t)n;
    }
    if (tf->sending_off == tf->sending_len && tf->out_len) {
        ssize_t n = send(tf->fd, tf->out, tf->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)n;
        tf->out_len = 0;
    }
}

/* Encrypt (up to SEND_CHUNK of) the owner's waiting send. */
static void encrypt_owner_send(struct io *io, struct tls_fd *tf)
{
    if (!tf->o_send || tf->o_encrypted || tf->phase != TF_OPEN)
        return;
    size_t taken = 0;
    for (int i = 0; i < tf->o_niov && taken < SEND_CHUNK; i++) {
        const char *p = tf->o_iov[i].iov_base;
        size_t left = tf->o_iov[i].iov_len;
        while (left && taken < SEND_CHUNK) {
            size_t want = left < SEND_CHUNK - taken ? left : SEND_CHUNK - taken;
            ssize_t n = tls_conn_write(tf->conn, p, want);
            if (n <= 0) {
                if (taken == 0) { /* TLS_ERROR (CLOSING or FAILED) */
                    owner_send_done(tf, io->tls, -EPIPE);
                    return;
                }
                goto out;
            }
            p += n;
            left -= (size_t)n;
            taken += (size_t)n;
        }
    }
out:
    tf->o_taken = taken;
    tf->o_encrypted = true;
    collect_output(tf);
    kick_send(io, tf);
}

static void raw_send_done(struct io *io, struct tls_fd *tf, int res)
{
    tf->raw_send_armed = false;
    if (res < 0) {
        tf->sending_off = tf->sending_len; /* dropped */
        tf->out_len = 0;
    } else {
        tf->sending_off += (size_t)res;
        if (!tf->closed)
            kick_send(io, tf);
    }
    if (!tf->o_send)
        return;
    if (res < 0)
        owner_send_done(tf, io->tls, res);
    else if (tf->o_encrypted && all_sent(tf))
        owner_send_done(tf, io->tls, (int)tf->o_taken);
    else if (tf->o_encrypted && !tf->raw_send_armed) /* shut: it cannot go */
        owner_send_done(tf, io->tls, -EPIPE);
}

/* ------------------------------------------------------------------------ */
/* Handshake and failure                                                     */

static void count_failure(struct io *io, struct tls_fd *tf, enum tls_fail why)
{
    struct io_tls *t = io->tls;
    if (tf->counted)
        return;
    tf->counted = true;
    stat_inc(&t->stats->failures[tf->side][why]);
    if (t->log)
        t->log(t->log_arg, tf->side, tf->peer, why, tls_conn_error(tf->conn));
}

/* The connection is over for the owner with `err` (-EPROTO, -ETIMEDOUT, or
 * an EOF's 0): its connect and a waiting send end now, its recv once the
 * plaintext already decrypted is read. */
static void tf_end(struct io *io, struct tls_fd *tf, int err)
{
    struct io_tls *t = io->tls;
    if (tf->phase == TF_DONE)
        return;
    tf->phase = TF_DONE;
    tf->error = err;
    owner_done(t, &tf->o_conn, err ? err : -ECONNRESET);
    if (tf->o_send && !tf->o_encrypted)
        owner_send_done(tf, t, err ? err : -EPIPE);
    work_later(t, tf);
}

static void tf_fail(struct io *io, struct tls_fd *tf, enum tls_fail why, int err)
{
    count_failure(io, tf, why);
    send_now(tf); /* the alert, if any */
    tf_end(io, tf, err);
}

/* After every feed: move the handshake on, note its end. */
static void after_feed(struct io *io, struct tls_fd *tf)
{
    enum tls_state st = tls_conn_state(tf->conn);
    if (st == TLS_FAILED) {
        enum tls_fail why = tls_conn_failure(tf->conn);
        tf_fail(io, tf, why == TLS_FAIL_NONE ? TLS_FAIL_OTHER : why, -EPROTO);
        return;
    }
    if (tf->phase == TF_HANDSHAKE && st != TLS_HANDSHAKING) {
        struct io_tls *t = io->tls;
        tf->phase = TF_OPEN;
        stat_inc(&t->stats->handshakes[tf->side]);
        if (tls_conn_resumed(tf->conn))
            stat_inc(&t->stats->resumed[tf->side]);
        owner_done(t, &tf->o_conn, 0);
        encrypt_owner_send(io, tf);
    }
    kick_send(io, tf);
    work_later(io->tls, tf);
}

/* ------------------------------------------------------------------------ */
/* Raw receiving and the owner's plaintext                                   */

static bool wants_raw_recv(const struct tls_fd *tf)
{
    if (tf->closed || tf->shut || tf->phase == TF_DONE || tf->phase == TF_CONNECTING)
        return false;
    return tf->phase == TF_HANDSHAKE || tf->o_recv;
}

static void arm_raw_recv(struct io *io, struct tls_fd *tf)
{
    if (tf->raw_recv_armed || tf->want_rearm || !wants_raw_recv(tf))
        return;
    io->ops->recv(io, &tf->raw_recv, tf->fd, false);
    tf->raw_recv_armed = true;
    tf->raw_recv_cancelling = false;
}

static void raw_recv_event(struct io *io, struct tls_fd *tf, const struct io_event *ev)
{
    struct io_tls *t = io->tls;
    bool final = !(ev->flags & IO_EV_MORE);
    if (final)
        tf->raw_recv_armed = false;
    if (ev->res > 0) {
        if (!tf->closed && tf->phase != TF_DONE && tls_conn_state(tf->conn) != TLS_FAILED) {
            tf->fed = true;
            tls_conn_feed(tf->conn, ev->data, (size_t)ev->res);
            after_feed(io, tf);
        }
        io->ops->buf_return(io, ev->buf);
        t->raw_bufs_back = true;
    } else if (ev->res == -ENOBUFS) {
        if (!tf->want_rearm) { /* again once a buffer came back */
            tf->want_rearm = true;
            tf->nobuf_next = t->nobuf;
            t->nobuf = tf;
        }
    } else if (ev->res != -ECANCELED || !tf->raw_recv_cancelling) {
        /* EOF or an error */
        if (tf->phase == TF_HANDSHAKE && tf->fed)
            count_failure(io, tf, TLS_FAIL_OTHER);
        tf->shut = tf->shut || ev->res <= 0;
        if (tf->phase != TF_DONE) {
            tf->phase = TF_DONE;
            tf->error = ev->res == -ECANCELED ? -ECANCELED : ev->res;
            owner_done(t, &tf->o_conn, tf->error ? tf->error : -ECONNRESET);
            if (tf->o_send && !tf->o_encrypted)
                owner_send_done(tf, t, -EPIPE);
        }
        work_later(t, tf);
    }
    if (final && !tf->closed)
        work_later(t, tf);
}

static uint32_t pbuf_take(struct io_tls *t)
{
    if (t->npfree)
        return t->pfree[--t->npfree];
    if (t->npbufs == PBUF_MAX)
        return UINT32_MAX;
    char *b = malloc(PBUF_SIZE);
    if (!b)
        return UINT32_MAX;
    t->pbufs[t->npbufs] = b;
    return t->npbufs++;
}

/* Up to cap bytes of plaintext: > 0, or TLS_AGAIN / TLS_EOF / TLS_ERROR. */
static ssize_t read_plain(struct tls_fd *tf, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = tls_conn_read(tf->conn, buf + got, cap - got);
        if (n <= 0)
            return got ? (ssize_t)got : n;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* The owner's recv after TLS_AGAIN/EOF/ERROR from read_plain. */
static void recv_end_or_wait(struct io *io, struct tls_fd *tf, ssize_t n)
{
    struct io_tls *t = io->tls;
    if (n == TLS_EOF) {
        owner_done(t, &tf->o_recv, 0);
    } else if (n == TLS_ERROR) {
        enum tls_fail why = tls_conn_failure(tf->conn);
        if (tls_conn_state(tf->conn) == TLS_FAILED)
            count_failure(io, tf, why == TLS_FAIL_NONE ? TLS_FAIL_OTHER : why);
        owner_done(t, &tf->o_recv, tf->phase == TF_DONE && tf->error ? tf->error : -EPROTO);
    } else if (tf->phase == TF_DONE) {
        owner_done(t, &tf->o_recv, tf->error);
    }
}

/* Hand decrypted bytes to the owner's recv or read. */
static void pump(struct io *io, struct tls_fd *tf)
{
    struct io_tls *t = io->tls;
    if (tf->o_recv && tf->shut && tf->phase != TF_DONE)
        tf_end(io, tf, 0);
    for (int i = 0; tf->o_recv && i < PUMP_BURST; i++) {
        if (tf->phase != TF_OPEN && tf->phase != TF_DONE)
            break;
        if (tf->phase == TF_DONE && (tf->shut || tls_conn_state(tf->conn) == TLS_FAILED)) {
            owner_done(t, &tf->o_recv, tf->error);
            break;
        }
        struct io_op *op = tf->o_recv;
        if (op->type == IO_OP_READ) {
            ssize_t n = read_plain(tf, op->u.read.buf, op->u.read.len);
            if (n > 0)
                owner_done(t, &tf->o_recv, (int)n);
            else
                recv_end_or_wait(io, tf, n);
            break;
        }
        uint32_t id = pbuf_take(t);
        if (id == UINT32_MAX) {
            owner_done(t, &tf->o_recv, -ENOBUFS);
            break;
        }
        ssize_t n = read_plain(tf, t->pbufs[id], PBUF_SIZE);
        if (n <= 0) {
            t->pfree[t->npfree++] = id;
            recv_end_or_wait(io, tf, n);
            break;
        }
        io_evq_push_buf(&t->q, op, (int)n, t->pbufs[id], id | PBUF_FLAG, IO_EV_MORE | IO_EV_BUF);
        if (i == PUMP_BURST - 1)
            work_later(t, tf); /* more next pass, after the others */
    }
    kick_send(io, tf); /* reads may answer (key updates, tickets) */
    arm_raw_recv(io, tf);
}

/* ------------------------------------------------------------------------ */
/* The verbs on a TLS fd                                                     */

static void own(struct io_op *op, enum io_op_type type, int fd)
{
    assert(op->type == IO_OP_IDLE);
    op->type = (uint8_t)type;
    op->cancelled = 0;
    op->fd = fd;
}

bool io_tls_recv(struct io *io, struct io_op *op, int fd)
{
    struct tls_fd *tf = lookup(io, fd);
    if (!tf)
        return false;
    assert(!tf->o_recv);
    own(op, IO_OP_RECV, fd);
    tf->o_recv = op;
    work_later(io->tls, tf);
    return true;
}

bool io_tls_read(struct io *io, struct io_op *op, int fd, void *buf, size_t len)
{
    struct tls_fd *tf = lookup(io, fd);
    if (!tf)
        return false;
    assert(!tf->o_recv);
    own(op, IO_OP_READ, fd);
    op->u.read.buf = buf;
    op->u.read.len = len;
    tf->o_recv = op;
    work_later(io->tls, tf);
    return true;
}

bool io_tls_send(struct io *io, struct io_op *op, int fd, const struct iovec *iov, int niov)
{
    struct tls_fd *tf = lookup(io, fd);
    if (!tf)
        return false;
    assert(!tf->o_send);
    own(op, IO_OP_SEND, fd);
    tf->o_send = op;
    if (tf->phase == TF_DONE || tf->shut) {
        owner_send_done(tf, io->tls, -EPIPE);
        return true;
    }
    /* the bytes stay valid until the completion; the array is ours */
    tf->o_iov = malloc((size_t)(niov > 0 ? niov : 1) * sizeof *iov);
    if (!tf->o_iov)
        abort();
    memcpy(tf->o_iov, iov, (size_t)niov * sizeof *iov);
    tf->o_niov = niov;
    tf->o_taken = 0;
    tf->o_encrypted = false;
    encrypt_owner_send(io, tf); /* waits while the handshake runs */
    return true;
}

bool io_tls_connect_op(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                       socklen_t salen, int timeout_ms)
{
    struct tls_fd *tf = lookup(io, fd);
    if (!tf)
        return false;
    assert(!tf->o_conn && tf->phase == TF_CONNECTING);
    own(op, IO_OP_CONNECT, fd);
    tf->o_conn = op;
    tf->hs_timeout_ms = timeout_ms; /* the handshake is part of connecting */
    io->ops->connect(io, &tf->raw_conn, fd, sa, salen, timeout_ms);
    tf->raw_conn_armed = true;
    return true;
}

static void raw_conn_done(struct io *io, struct tls_fd *tf, int res)
{
    tf->raw_conn_armed = false;
    if (tf->closed)
        return;
    if (res < 0) {
        tf->phase = TF_DONE;
        tf->error = res;
        owner_done(io->tls, &tf->o_conn, res);
        return;
    }
    tf->phase = TF_HANDSHAKE;
    kick_send(io, tf);      /* the ClientHello */
    arm_raw_recv(io, tf);
}

bool io_tls_cancel(struct io *io, struct io_op *op)
{
    if (op->type == IO_OP_IDLE || op->type == IO_OP_TIMER || op->type == IO_OP_ACCEPT)
        return false;
    struct tls_fd *tf = lookup(io, op->fd);
    if (!tf)
        return false;
    struct io_tls *t = io->tls;
    op->cancelled = 1;
    if (tf->o_recv == op) {
        owner_done(t, &tf->o_recv, -ECANCELED);
        if (tf->raw_recv_armed && !tf->raw_recv_cancelling && tf->phase != TF_HANDSHAKE) {
            tf->raw_recv_cancelling = true; /* flow control */
            io->ops->cancel(io, &tf->raw_recv);
        }
    } else if (tf->o_send == op) {
        if (tf->raw_send_armed)
            io->ops->cancel(io, &tf->raw_send);
        owner_send_done(tf, t, -ECANCELED);
    } else if (tf->o_conn == op) {
        if (tf->raw_conn_armed)
            io->ops->cancel(io, &tf->raw_conn);
        owner_done(t, &tf->o_conn, -ECANCELED);
    } else {
        return false;
    }
    return true;
}

void io_tls_cancel_all(struct io *io)
{
    struct io_tls *t = io->tls;
    for (struct tls_fd *tf = t->all; tf; tf = tf->all_next) {
        owner_done(t, &tf->o_recv, -ECANCELED);
        owner_done(t, &tf->o_conn, -ECANCELED);
        if (tf->o_send)
            owner_send_done(tf, t, -ECANCELED);
    }
}

bool io_tls_buf_return(struct io *io, uint32_t buf)
{
    struct io_tls *t = io->tls;
    if (!(buf & PBUF_FLAG)) { /* a plain fd's: the backend takes it */
        t->raw_bufs_back = true;
        return false;
    }
    t->pfree[t->npfree++] = buf & ~PBUF_FLAG;
    return true;
}

bool io_tls_shutdown(struct io *io, int fd)
{
    struct tls_fd *tf = lookup(io, fd);
    if (!tf)
        return false;
    if (tf->phase == TF_OPEN) {
        tls_conn_close(tf->conn); /* close_notify, if it can leave now */
        send_now(tf);
    }
    tf->shut = true;
    if (tf->phase == TF_HANDSHAKE)
        tf_end(io, tf, -ECONNRESET);
    if (tf->o_send && !tf->raw_send_armed)
        owner_send_done(tf, io->tls, -EPIPE);
    work_later(io->tls, tf);
    io->ops->shutdown(io, fd);
    return true;
}

bool io_tls_close(struct io *io, int fd)
{
    struct tls_fd *tf = lookup(io, fd);
    if (!tf)
        return false;
    /* owners close once nothing is armed; at teardown (the worker's last
     * free, nothing will be waited for) their ops are just forgotten */
    struct io_op **owned[] = {&tf->o_recv, &tf->o_send, &tf->o_conn};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++)
        if (*owned[i]) {
            (*owned[i])->type = IO_OP_IDLE;
            *owned[i] = NULL;
        }
    tf->closed = true;
    if (reap_if_done(io, tf))
        return true;
    /* raw ops still in flight: end them; the fd stays open (its number
     * not reused) until their completions came */
    shutdown(fd, SHUT_RDWR);
    if (tf->raw_recv_armed)
        io->ops->cancel(io, &tf->raw_recv);
    if (tf->raw_send_armed)
        io->ops->cancel(io, &tf->raw_send);
    if (tf->raw_conn_armed)
        io->ops->cancel(io, &tf->raw_conn);
    return true;
}

/* ------------------------------------------------------------------------ */
/* Waiting                                                                   */

static void expire_handshakes(struct io *io)
{
    struct io_tls *t = io->tls;
    int64_t now_us = io_now_us();
    if (now_us < t->next_scan_us)
        return;
    t->next_scan_us = now_us + DEADLINE_SCAN_MS * 1000;
    uint64_t now = (uint64_t)(now_us / 1000);
    for (struct tls_fd **p = &t->hs; *p;) {
        struct tls_fd *tf = *p;
        bool waiting = !tf->closed && (tf->phase == TF_HANDSHAKE || tf->phase == TF_CONNECTING);
        /* TF_CONNECTING: the connect has its own timeout */
        int limit = tf->hs_timeout_ms > 0 ? tf->hs_timeout_ms : t->hs_timeout_ms;
        if (waiting && (tf->phase == TF_CONNECTING ||
                        !tls_conn_handshake_expired(tf->conn, now, (uint64_t)limit))) {
            p = &tf->hs_next;
            continue;
        }
        *p = tf->hs_next;
        tf->hs_listed = false;
        if (waiting) {
            tls_conn_timeout(tf->conn);
            tf_fail(io, tf, TLS_FAIL_TIMEOUT, -ETIMEDOUT);
        }
    }
}

static void run_work(struct io *io)
{
    struct io_tls *t = io->tls;
    if (t->raw_bufs_back) {
        t->raw_bufs_back = false;
        while (t->nobuf) {
            struct tls_fd *tf = t->nobuf;
            t->nobuf = tf->nobuf_next;
            tf->want_rearm = false;
            work_later(t, tf);
        }
    }
    struct tls_fd *list = t->work;
    t->work = NULL;
    while (list) {
        struct tls_fd *tf = list;
        list = tf->work_next;
        tf->work_listed = false;
        pump(io, tf);
    }
}

static void raw_event(struct io *io, const struct io_event *ev)
{
    struct io_op *op = ev->op;
    struct tls_fd *tf;
    switch (op->tag) {
    case TAG_RAW_RECV:
        tf = container_of_tf(op, raw_recv);
        raw_recv_event(io, tf, ev);
        break;
    case TAG_RAW_SEND:
        tf = container_of_tf(op, raw_send);
        raw_send_done(io, tf, ev->res);
        break;
    default:
        tf = container_of_tf(op, raw_conn);
        raw_conn_done(io, tf, ev->res);
        break;
    }
    reap_if_done(io, tf);
}

int io_tls_wait(struct io *io, struct io_event *ev, int max, int timeout_ms)
{
    struct io_tls *t = io->tls;
    expire_handshakes(io);
    run_work(io);
    if (t->q.head < t->q.len || t->work)
        timeout_ms = 0;
    else if (t->hs && (timeout_ms < 0 || timeout_ms > DEADLINE_SCAN_MS))
        timeout_ms = DEADLINE_SCAN_MS;
    int n = io->ops->wait(io, ev, max, timeout_ms);
    if (n < 0)
        return n;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].op->tag > IO_TAG_OWN_MAX)
            raw_event(io, &ev[i]);
        else
            ev[k++] = ev[i];
    }
    run_work(io);
    return k + io_evq_take(&t->q, ev + k, max - k);
}

void io_tls_destroy_state(struct io_tls *t)
{
    while (t->all) {
        struct tls_fd *tf = t->all;
        t->all = tf->all_next;
        free_tf(tf);
    }
    for (uint32_t i = 0; i < t->npbufs; i++)
        free(t->pbufs[i]);
    free(t->pbufs);
    free(t->pfree);
    free(t->byfd);
    io_evq_free(&t->q);
    free(t);
}
