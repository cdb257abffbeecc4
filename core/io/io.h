/*
 * core/io — the worker's sockets, timers and wake-ups behind one interface:
 * the only code in ringslot that knows io_uring or epoll.
 *
 * Backends:
 *   uring   io_uring with multishot accept and receive, rings of provided
 *           buffers (small ones for clients, large ones for links),
 *           SINGLE_ISSUER + DEFER_TASKRUN, a send arena (no send state kept
 *           while idle); single-shot receive on old kernels
 *   epoll   edge-triggered epoll on non-blocking sockets with the same
 *           semantics, for hosts that deny io_uring (container seccomp
 *           profiles, kernel.io_uring_disabled)
 *   fake    deterministic from a seed, no kernel sockets: splits receives,
 *           completes sends partially, injects errors, reorders completions
 *           (the last section of this header; unit tests only)
 *
 * Model: an operation (struct io_op) is embedded in its owner — a client, a
 * link, a listener, the worker — and stays owned by it; the owner must keep
 * it alive from the call that arms it until its final completion (one
 * without IO_EV_MORE). Calls only queue work: a completion is never handled
 * inside an io call. io_wait() collects completions; the worker then hands
 * each to its owner by the op's tag. Results are byte counts, fds, 0, or
 * -errno (Linux's values on every backend, -ECANCELED after io_cancel()).
 *
 * Threads: an io belongs to one thread (the worker that calls io_start());
 * only io_create() and io_destroy() may run elsewhere, before and after.
 */
#ifndef RINGSLOT_CORE_IO_H
#define RINGSLOT_CORE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../tls/tls.h"

enum io_backend { IO_BACKEND_AUTO, IO_BACKEND_URING, IO_BACKEND_EPOLL, IO_BACKEND_FAKE };

/* What an armed op does (backend-private bookkeeping, readable in tests). */
enum io_op_type {
    IO_OP_IDLE,
    IO_OP_ACCEPT,  /* multishot */
    IO_OP_RECV,    /* into provided buffers; may be multishot */
    IO_OP_READ,    /* one shot, into the caller's buffer */
    IO_OP_SEND,
    IO_OP_CONNECT,
    IO_OP_TIMER,
};

/*
 * One operation. `tag` is the owner's (which handler its completions go
 * to; tags below 0 are core/io's own); everything else belongs to the
 * backend while the op is armed.
 */
#define IO_TAG_OWN_MAX 0xff00 /* owners' tags; above: core/io's own ops */

struct io_op {
    uint16_t tag;          /* small: every client embeds two ops */
    uint8_t type;          /* enum io_op_type; IO_OP_IDLE once finished */
    uint8_t cancelled;     /* io_cancel() was asked for it */
    int fd;
    struct io_op *next;    /* backend lists (epoll waiters, timers, fake) */
    int64_t deadline_us;   /* timers and connect timeouts */
    union {
        struct { void *buf; size_t len; } read;
        struct { struct iovec *iov; int niov; } send; /* epoll: a saved copy */
        struct { uint32_t bid; bool large; } recv;    /* buffer class; uring
                                                         single shot: its buffer */
        struct { long long sec, nsec; } ts;           /* uring timeouts */
    } u;
};

/* Completion flags */
#define IO_EV_MORE 1u /* the op stays armed (multishot): more will come */
#define IO_EV_BUF 2u  /* data/buf: a provided buffer; give it back */

struct io_event {
    struct io_op *op;
    int res;
    unsigned flags;
    char *data;   /* IO_EV_BUF: the received bytes (res of them) */
    uint32_t buf; /* IO_EV_BUF: for io_buf_return() */
};

struct io;

/* Creates an io of the given kind; IO_BACKEND_AUTO takes io_uring when it
 * is usable with the features the worker needs, epoll otherwise. On error
 * returns -errno and, for a refused io_uring, writes the cause to `why`. */
int io_create(enum io_backend want, struct io **out, char *why, size_t whylen);
void io_destroy(struct io *io);
/* On the thread that will drive it, before any other call. */
int io_start(struct io *io);
enum io_backend io_kind(const struct io *io);
/* The backend and its mode in words, for INFO ("uring (multishot recv,
 * buffer ring)"). */
const char *io_detail(const struct io *io);
const char *io_backend_name(enum io_backend b);
/* Why io_uring cannot be used here (seccomp, sysctl, kernel): 0 if it can,
 * else -errno and a sentence in `why`. Cheap; main calls it once. */
int io_uring_usable(char *why, size_t whylen);

/* Accepts on a listening socket until cancelled or failed: res = new fd
 * (close-on-exec; non-blocking on epoll). */
void io_accept(struct io *io, struct io_op *op, int fd);
/* Receives into buffers the backend provides: each completion carries
 * IO_EV_BUF; return the buffer promptly (io_buf_return). res 0 is EOF,
 * -ENOBUFS means every buffer is out: arm again once some came back. */
void io_recv(struct io *io, struct io_op *op, int fd);
/* io_recv into large buffers (links: a large reply comes in a few
 * completions, not one per small buffer); a separate pool of them, so
 * -ENOBUFS here says nothing of io_recv's. */
void io_recv_large(struct io *io, struct io_op *op, int fd);
void io_buf_return(struct io *io, uint32_t buf);
/* One read into buf (the worker's eventfd). */
void io_read(struct io *io, struct io_op *op, int fd, void *buf, size_t len);
/* One send of the iovecs (copied now; the bytes they point at stay valid
 * until the completion). res may be short: the caller sends the rest. */
void io_send(struct io *io, struct io_op *op, int fd, const struct iovec *iov, int niov);
/* Connects fd (any family); res 0, -errno, or -ETIMEDOUT after timeout_ms. */
void io_connect(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                socklen_t salen, int timeout_ms);
/* Completes with res 0 after ms milliseconds. */
void io_timer(struct io *io, struct io_op *op, int ms);
/* Ends an armed op early: its final completion comes with -ECANCELED (or
 * its own result if it had already finished). No-op on an idle op. */
void io_cancel(struct io *io, struct io_op *op);
/* Before freeing everything: cancel every armed op. */
void io_cancel_all(struct io *io);
/* shutdown(2) through the backend: armed receives end (res 0), sends fail. */
void io_shutdown(struct io *io, int fd);
/* close(2) through the backend, which forgets fd. Every fd an op ever used
 * must be closed here, and only once no op on it is armed (io_uring keeps
 * such an fd's socket in its fixed-file table until then: a plain close
 * would leave the socket open and the number's next owner misrouted). */
void io_close(struct io *io, int fd);

/*
 * TLS (tls_filter.c). An fd given to io_tls_accept or io_tls_connect before
 * its first op carries TLS from then on, and its owner sees only
 * plaintext: io_recv and io_read deliver decrypted bytes (io_recv's buffers
 * are the filter's, told apart by their ids; give them back with
 * io_buf_return as any), io_send encrypts and completes with the plaintext
 * byte count once the ciphertext went out (maybe short, as any send),
 * io_connect completes once the handshake is done (or failed: -EPROTO, or
 * -ETIMEDOUT when connect and handshake together took its timeout), io_shutdown sends close_notify when it can without waiting,
 * io_close frees the TLS state. The handshake runs by itself on the
 * filter's own receives and sends; one that is not done after the
 * handshake timeout fails. A failed handshake (bad certificate, plaintext
 * from the peer) ends the owner's receive with -EPROTO (-ETIMEDOUT for the
 * deadline), which owners take as a close.
 */
enum io_tls_side { IO_TLS_ACCEPTED, IO_TLS_CONNECTED, IO_TLS_SIDES };

/* Counters of one io's TLS (updated by its thread, read by any). */
struct io_tls_stats {
    _Atomic uint64_t handshakes[IO_TLS_SIDES];
    _Atomic uint64_t resumed[IO_TLS_SIDES];
    _Atomic uint64_t failures[IO_TLS_SIDES][TLS_FAIL_COUNT];
};

/* A failed handshake, for the log: side, peer ("1.2.3.4:5678" or the
 * node's host:port), the reason and OpenSSL's words. Called from io_wait,
 * never from a completion handler's call. */
typedef void io_tls_log_fn(void *arg, enum io_tls_side side, const char *peer,
                           enum tls_fail why, const char *detail);

/* Optional, before the first io_tls_* call: where to count, whom to tell,
 * the handshake deadline (ms; <= 0: 10 s). */
void io_tls_setup(struct io *io, struct io_tls_stats *stats, int handshake_timeout_ms,
                  io_tls_log_fn *log, void *log_arg);
/* Server side on an accepted fd; 0 or -ENOMEM (then fd stays plain). */
int io_tls_accept(struct io *io, int fd, struct tls_ctx *ctx);
/* Client side on a socket about to be io_connect'ed to host:port (host
 * for SNI, the name check and session reuse). 0 or -ENOMEM. */
int io_tls_connect(struct io *io, int fd, struct tls_ctx *ctx, const char *host, int port);
/* The TLS connection on fd, or NULL (plain fd). */
struct tls_conn *io_tls_conn(struct io *io, int fd);

/* Submits what was queued, waits for at least one completion (at most
 * timeout_ms; -1 forever) and copies up to max of them to ev. Returns the
 * count (0 on timeout), or -errno on a fatal backend error. */
int io_wait(struct io *io, struct io_event *ev, int max, int timeout_ms);

/* Are completions waiting to be collected now, so that a non-blocking
 * io_wait would most likely return some? A hint that costs no syscall:
 * uring reads its CQ and the kernel's flag for pending task work (with
 * DEFER_TASKRUN a reply that came in is only turned into a completion when
 * the worker enters the kernel); fake asks io_fake_busy; epoll says whether
 * its own queue holds completions (sends done at once, so after the worker
 * sent to its links) or an fd waits on its ready list: the next io_wait
 * then polls without sleeping (it does not ask epoll for new events). It
 * may be wrong either way (task work that makes no completion): callers
 * use it only to choose between doing something now and one iteration
 * later, never to sleep. */
bool io_ready(struct io *io);

/* The worker's batch clock in microseconds: the process's monotonic clock
 * (consensus_clock_us), or the fake backend's virtual one. */
int64_t io_clock_us(const struct io *io);

/* ------------------------------------------------------------------------ */
/* fake backend (tests only)                                                 */
/*
 * IO_BACKEND_FAKE: every call below takes an io of that kind. An fd is a
 * real descriptor used only as a unique number (socket(2), never
 * connected); the proxy's io_shutdown/io_close end a fake connection.
 * Nothing happens until io_wait, which never blocks: it completes what is
 * ready now (fed bytes for an armed receive, sends not stalled, connects
 * and timers whose virtual time has come) in a seeded order. A read on an
 * fd that is no fake connection (the worker's inbox eventfd) is done for
 * real, without blocking.
 *
 * Defaults: seed 1, receives split at seeded points, 30% of sends partial,
 * completions of different ops reordered.
 */
void io_fake_seed(struct io *io, uint64_t seed);
/* Receives take at most max_bytes each (1: byte by byte); 0: seeded. */
void io_fake_set_split(struct io *io, int max_bytes);
/* Percent of sends (of more than one byte) that complete partially. */
void io_fake_set_partial(struct io *io, int percent);
void io_fake_set_reorder(struct io *io, bool on);
/* Virtual time: timers, connect deadlines, io_clock_us. */
void io_fake_advance(struct io *io, int64_t ms);
int64_t io_fake_now_us(const struct io *io);
/* ms until the next timer or connect deadline, -1 if none. */
int64_t io_fake_next_timer_ms(struct io *io);
/* Is there anything the next io_wait would complete? */
bool io_fake_busy(struct io *io);

/* A listening socket (give it to io_accept), and a client connecting to
 * it: the fd the proxy will accept. */
int io_fake_listener(struct io *io);
int io_fake_conn_new(struct io *io, int listener);
/* Bytes the proxy will receive on fd; then EOF once they are read. */
void io_fake_feed(struct io *io, int fd, const void *data, size_t len);
void io_fake_feed_eof(struct io *io, int fd);
/* What the proxy sent on fd so far (not consumed), and consuming it. */
const char *io_fake_sent(struct io *io, int fd, size_t *len);
void io_fake_consume(struct io *io, int fd, size_t n);
/* The proxy shut fd down or closed it. */
bool io_fake_closed(struct io *io, int fd);

enum io_fake_point { IO_FAKE_RECV, IO_FAKE_SEND };
/* The next receive (or send) on fd completes with err (-ECONNRESET, -EPIPE,
 * -ENOBUFS, …) and ends. */
void io_fake_fail(struct io *io, int fd, enum io_fake_point at, int err);
/* While stalled, sends on fd do not complete (a peer that does not read). */
void io_fake_stall(struct io *io, int fd, bool stalled);
/* Sends on fd complete with at most max bytes (0: seeded). */
void io_fake_max_send(struct io *io, int fd, size_t max);

/* Connects to addr ("ip:port") complete with res (0 or -errno) after
 * delay_ms of virtual time (< 0: never, so they time out), for the next
 * count of them (< 0: all). The newest rule for an address wins. */
void io_fake_connect_rule(struct io *io, const char *addr, int res, int delay_ms, int count);
/* Forget the rules for addr (NULL: every address). */
void io_fake_connect_clear(struct io *io, const char *addr);
/* The proxy's connected outgoing fds (to addr, or all for NULL). */
int io_fake_conns(struct io *io, const char *addr, int *fds, int max);
/* A number unique to the connection now on fd (fd numbers are reused). */
uint64_t io_fake_conn_id(struct io *io, int fd);
/* The address an outgoing fd connected to, or NULL. */
const char *io_fake_conn_addr(struct io *io, int fd);

#endif
