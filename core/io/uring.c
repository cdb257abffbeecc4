/*
 * The io_uring backend: today's fast path behind the io interface.
 *
 *   accept    multishot accept
 *   recv      multishot recv with buffer selection from a registered
 *             buffer ring, one ring per buffer class (Linux ≥ 6.0);
 *             single-shot recv into a pool buffer before that (or with
 *             RINGSLOT_IO=single)
 *   send      send (one iovec) or sendmsg from the send arena
 *   connect   connect + a linked timeout
 *   wake      read on the eventfd (io_read)
 *
 * Sockets are fixed files: each ring has a sparse file table and a socket's
 * slot is its fd number, installed by an IORING_OP_FILES_UPDATE queued just
 * before the socket's first op in this ring and cleared by another one at
 * io_close. Ops then name the slot (IOSQE_FIXED_FILE), so the kernel does
 * no fget/fput per op (atomic refcount pairs, the process being
 * multi-threaded). Fds above the table, or every fd when the kernel has no
 * sparse tables (before 5.19), stay plain. Slot = fd number rather than an
 * allocator: fd numbers are already dense and unique in the process, so no
 * map from fd to slot is needed, and a number reused after close is
 * ordered by the SQ itself (the clear is queued before close(2), the new
 * install only once an op on the reused number is asked for). The listener
 * keeps its plain fd: one multishot accept per life.
 *
 * The ring is created on the main thread disabled and enabled by its
 * worker (io_start) so that SINGLE_ISSUER binds it to that thread; with
 * DEFER_TASKRUN completions are only run when the worker waits.
 *
 * Send arena: a msghdr and its iovecs must stay put until the SQE is
 * submitted; with IORING_FEAT_SUBMIT_STABLE the kernel copies both then,
 * so the arena is reset at every submission and connections keep no send
 * state while idle. When it is full, what is prepared is submitted first.
 */
#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "backend.h"

#define RING_ENTRIES 4096
#define BUF_GROUP 1       /* the small buffers' ring (io_recv) */
#define BUF_GROUP_LARGE 2 /* the large ones' (io_recv_large) */
#define SEND_ARENA_MSGS 1024
#define SEND_ARENA_IOV 8192
#define FIXED_MAX 65536 /* fixed-file slots per ring (8 bytes each in the kernel) */

_Static_assert(sizeof(struct __kernel_timespec) == 2 * sizeof(long long),
               "io_op.u.ts must match the kernel's timespec");

struct uring_io {
    struct io base;
    struct io_uring ring;
    bool ring_disabled;          /* R_DISABLED: io_start enables it */
    bool ring_registered;        /* io_uring_enter names the ring by index */
    bool use_bufring;            /* multishot recv + provided buffer rings */
    struct bufring {
        struct io_uring_buf_ring *br;
        unsigned mask;
        struct io_bufpool pool;  /* the buffers' memory; ids for single shot */
    } small, large;
    size_t arena_msgs, arena_iovs;
    struct msghdr arena_msg[SEND_ARENA_MSGS];
    struct iovec arena_iov[SEND_ARENA_IOV];
    /* Fixed files: fixed[fd] is set while slot fd holds fd's socket (from
     * the install's queueing to the clear's); nfixed is 0 without a table.
     * An install reads its fd at submission: arena_fds holds them until. */
    uint8_t *fixed;
    unsigned nfixed;
    size_t arena_nfds;
    int arena_fds[RING_ENTRIES];
};

static struct uring_io *U(struct io *io)
{
    return (struct uring_io *)io;
}

/* Hand what is prepared to the kernel now; it has copied the arena's
 * msghdrs then (SUBMIT_STABLE), so the arena starts over. */
static void submit_now(struct uring_io *u)
{
    io_uring_submit(&u->ring);
    u->arena_msgs = u->arena_iovs = u->arena_nfds = 0;
}

static struct io_uring_sqe *get_sqe(struct uring_io *u)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        submit_now(u); /* the SQ is full */
        sqe = io_uring_get_sqe(&u->ring);
    }
    assert(sqe);
    return sqe;
}

static struct msghdr *arena_msg(struct uring_io *u, int niov)
{
    assert(niov > 0 && niov <= SEND_ARENA_IOV);
    if (u->arena_msgs == SEND_ARENA_MSGS || u->arena_iovs + (size_t)niov > SEND_ARENA_IOV)
        submit_now(u);
    struct msghdr *m = &u->arena_msg[u->arena_msgs++];
    memset(m, 0, sizeof *m);
    m->msg_iov = &u->arena_iov[u->arena_iovs];
    m->msg_iovlen = (size_t)niov;
    u->arena_iovs += (size_t)niov;
    return m;
}

static void arm(struct io_op *op, enum io_op_type type, int fd)
{
    assert(op->type == IO_OP_IDLE || op->type == type);
    op->type = (uint8_t)type;
    op->cancelled = 0;
    op->fd = fd;
}

/* Before the first SQE naming fd: true if fd is (now) in its slot and the
 * op's SQE should carry IOSQE_FIXED_FILE. The install is a FILES_UPDATE
 * SQE ahead of the op's: SQEs are issued in order within a submission and
 * FILES_UPDATE completes inline, so the op finds the slot filled without
 * a link (a linked op would be issued later, from task work). A failed
 * install (-ENOMEM) shows as the op's -EBADF, which its owner takes as
 * any socket error. */
static bool use_fixed(struct uring_io *u, int fd)
{
    if (fd < 0 || (unsigned)fd >= u->nfixed)
        return false;
    if (u->fixed[fd])
        return true;
    struct io_uring_sqe *sqe = get_sqe(u); /* may submit: the arena restarts */
    assert(u->arena_nfds < RING_ENTRIES); /* one per SQE since the last submit */
    int *slot_fd = &u->arena_fds[u->arena_nfds++];
    *slot_fd = fd;
    io_uring_prep_files_update(sqe, slot_fd, 1, fd);
    io_uring_sqe_set_data(sqe, NULL);
    u->fixed[fd] = 1;
    return true;
}

static void set_file(struct io_uring_sqe *sqe, bool fixed)
{
    if (fixed)
        sqe->flags |= IOSQE_FIXED_FILE; /* sqe->fd is the slot: the fd number */
}

/* At io_close, before close(2): the slot lets go of the socket (else the
 * socket would stay open, without a FIN, for as long as the ring lives).
 * Off the worker (teardown after its thread ended) a full SQ cannot be
 * submitted: the slot then goes with the ring. */
static void fixed_clear(struct uring_io *u, int fd)
{
    static const int no_file = -1; /* the kernel only reads it */
    if (fd < 0 || (unsigned)fd >= u->nfixed || !u->fixed[fd])
        return;
    u->fixed[fd] = 0;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
    if (!sqe) {
        submit_now(u);
        sqe = io_uring_get_sqe(&u->ring);
    }
    if (!sqe)
        return;
    io_uring_prep_files_update(sqe, (int *)&no_file, 1, fd);
    io_uring_sqe_set_data(sqe, NULL);
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

/* Multishot recv and buffer rings came with Linux 6.0 (5.19 for rings). */
static bool kernel_has_multishot_recv(void)
{
    const char *force = getenv("RINGSLOT_IO");
    if (force && strcmp(force, "single") == 0)
        return false;
    struct utsname un;
    int major = 0, minor = 0;
    if (uname(&un) == 0)
        sscanf(un.release, "%d.%d", &major, &minor);
    return major > 6 || (major == 6 && minor >= 0);
}

/* The ring's entries carry the pool's ids without the class flag (16 bits). */
static int setup_buffer_ring(struct uring_io *u, struct bufring *r, unsigned short bgid)
{
    uint32_t n = r->pool.count;
    size_t ring_bytes = n * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)mem,
        .ring_entries = n,
        .bgid = bgid,
    };
    int ret = io_uring_register_buf_ring(&u->ring, &reg, 0);
    if (ret) {
        munmap(mem, ring_bytes);
        return ret;
    }
    r->br = mem;
    r->mask = io_uring_buf_ring_mask(n);
    io_uring_buf_ring_init(r->br);
    for (unsigned i = 0; i < n; i++)
        io_uring_buf_ring_add(r->br, io_bufpool_data(&r->pool, i), (unsigned)r->pool.size,
                              (unsigned short)i, r->mask, (int)i);
    io_uring_buf_ring_advance(r->br, (int)n);
    return 0;
}

static int setup_ring(struct uring_io *u)
{
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_TASKRUN_FLAG | /* io_ready: pending task work */
              IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE;
    p.cq_entries = RING_ENTRIES * 4;
    int ret = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
    if (ret == -EINVAL) { /* older kernel: plain ring */
        memset(&p, 0, sizeof p);
        p.cq_entries = RING_ENTRIES * 4;
        p.flags = IORING_SETUP_CQSIZE;
        ret = io_uring_queue_init_params(RING_ENTRIES, &u->ring, &p);
    }
    if (ret < 0)
        return ret;
    u->ring_disabled = (p.flags & IORING_SETUP_R_DISABLED) != 0;
    if (!(p.features & IORING_FEAT_SUBMIT_STABLE)) {
        /* the send arena relies on it (kernels before 5.5 lack it) */
        io_uring_queue_exit(&u->ring);
        return -ENOTSUP;
    }
    return 0;
}

/* Why io_uring_setup failed, in words an operator can act on. */
static void explain_refusal(int err, char *why, size_t whylen)
{
    if (!whylen)
        return;
    int disabled = 0;
    FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
    if (f) {
        if (fscanf(f, "%d", &disabled) != 1)
            disabled = 0;
        fclose(f);
    }
    bool seccomp = false;
    f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "Seccomp:", 8) == 0)
                seccomp = atoi(line + 8) == 2;
        fclose(f);
    }
    if (disabled)
        snprintf(why, whylen, "%s: sysctl kernel.io_uring_disabled=%d", strerror(err), disabled);
    else if (seccomp && (err == EPERM || err == ENOSYS))
        snprintf(why, whylen, "%s: a seccomp filter (a container's default profile?) refuses "
                 "io_uring_setup", strerror(err));
    else if (err == ENOSYS)
        snprintf(why, whylen, "%s: the kernel has no io_uring", strerror(err));
    else if (err == ENOTSUP || err == EINVAL)
        snprintf(why, whylen, "%s: the kernel's io_uring is too old (Linux 5.5 or later needed)",
                 strerror(err));
    else
        snprintf(why, whylen, "%s", strerror(err));
}

int io_uring_usable(char *why, size_t whylen)
{
    struct io_uring ring;
    int ret = io_uring_queue_init(8, &ring, 0);
    if (ret < 0) {
        explain_refusal(-ret, why, whylen);
        return ret;
    }
    io_uring_queue_exit(&ring);
    return 0;
}

static const struct io_backend_ops uring_ops;

int io_uring_create(struct io **out, char *why, size_t whylen)
{
    struct uring_io *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->base.ops = &uring_ops;
    u->base.kind = IO_BACKEND_URING;
    int ret = setup_ring(u);
    if (ret < 0) {
        explain_refusal(-ret, why, whylen);
        free(u);
        return ret;
    }
    ret = io_bufpool_init(&u->small.pool, IO_BUF_COUNT, IO_BUF_SIZE, 0);
    if (ret == 0)
        ret = io_bufpool_init(&u->large.pool, IO_BUF_LARGE_COUNT, IO_BUF_LARGE_SIZE, IO_BUF_LARGE);
    if (ret < 0) {
        io_bufpool_free(&u->small.pool);
        io_uring_queue_exit(&u->ring);
        free(u);
        return ret;
    }
    /* both rings or neither: a failed second one leaves the first
     * registered, unused, until the ring goes */
    u->use_bufring = kernel_has_multishot_recv() && setup_buffer_ring(u, &u->small, BUF_GROUP) == 0 &&
                     setup_buffer_ring(u, &u->large, BUF_GROUP_LARGE) == 0;
    u->base.detail = u->use_bufring ? "io_uring (multishot recv, buffer ring)"
                                    : "io_uring (single-shot recv)";
    *out = &u->base;
    return 0;
}

/*
 * The ring's fd in the worker's own table of registered rings (Linux 5.18):
 * each io_uring_enter then names the ring by index and skips the fdget on
 * the ring fd, an atomic refcount pair per call in a multi-threaded
 * process. liburing (2.2+) keeps the index in ring.enter_ring_fd and adds
 * IORING_ENTER_REGISTERED_RING to its own enter calls; its register calls
 * keep using the real fd. The table is the calling thread's, hence here,
 * on the worker: an enter from another thread would find nothing at that
 * index (or another ring's), so after io_start only the worker submits —
 * as SINGLE_ISSUER demands anyway. A kernel that refuses it leaves the
 * ring as it was. The thread's exit drops the registration; the
 * unregister io_uring_queue_exit tries on the destroying thread finds
 * nothing there and does nothing.
 */
static void register_ring_fd(struct uring_io *u)
{
    u->ring_registered = io_uring_register_ring_fd(&u->ring) == 1;
}

/* The sparse fixed-file table (Linux 5.19): as many slots as the process
 * may have fds, at most FIXED_MAX. Refused: every fd stays plain. */
static void register_files(struct uring_io *u)
{
    unsigned n = FIXED_MAX;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < n)
        n = (unsigned)rl.rlim_cur;
    u->fixed = calloc(n, 1);
    if (!u->fixed)
        return;
    if (io_uring_register_files_sparse(&u->ring, n) < 0) {
        free(u->fixed);
        u->fixed = NULL;
        return;
    }
    u->nfixed = n;
}

/* io_uring_enable_rings() is declared by liburing 2.3 but not exported by
 * Debian 12's library: make the register call ourselves. */
static int uring_start(struct io *io)
{
    struct uring_io *u = U(io);
    if (u->ring_disabled) {
        long ret = syscall(__NR_io_uring_register, u->ring.ring_fd,
                           IORING_REGISTER_ENABLE_RINGS, NULL, 0);
        if (ret < 0)
            return -errno;
        u->ring_disabled = false;
    }
    register_ring_fd(u);
    register_files(u);
    return 0;
}

static void uring_destroy(struct io *io)
{
    struct uring_io *u = U(io);
    io_uring_queue_exit(&u->ring);
    struct bufring *rings[] = {&u->small, &u->large};
    for (int i = 0; i < 2; i++) {
        if (rings[i]->br)
            munmap(rings[i]->br, rings[i]->pool.count * sizeof(struct io_uring_buf));
        io_bufpool_free(&rings[i]->pool);
    }
    free(u->fixed);
    free(u);
}

/* ------------------------------------------------------------------------ */
/* Operations                                                                */

static void uring_accept(struct io *io, struct io_op *op, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(U(io));
    arm(op, IO_OP_ACCEPT, fd);
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, op);
}

static void uring_recv(struct io *io, struct io_op *op, int fd, bool large)
{
    struct uring_io *u = U(io);
    bool fixed = use_fixed(u, fd);
    struct io_uring_sqe *sqe = get_sqe(u);
    struct bufring *r = large ? &u->large : &u->small;
    arm(op, IO_OP_RECV, fd);
    op->u.recv.large = large;
    if (u->use_bufring) {
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        set_file(sqe, fixed);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = large ? BUF_GROUP_LARGE : BUF_GROUP;
    } else {
        /* a single-shot recv holds its buffer while it waits (an idle
         * client holds one for good): the pool grows rather than refuse */
        uint32_t bid = io_bufpool_take(&r->pool);
        if (bid == UINT32_MAX && io_bufpool_grow(&r->pool) == 0)
            bid = io_bufpool_take(&r->pool);
        op->u.recv.bid = bid;
        if (bid == UINT32_MAX) /* completes at once with -ENOBUFS */
            io_uring_prep_nop(sqe);
        else
            io_uring_prep_recv(sqe, fd, io_bufpool_data(&r->pool, bid), r->pool.size, 0);
        set_file(sqe, fixed && bid != UINT32_MAX);
    }
    io_uring_sqe_set_data(sqe, op);
}

static void uring_buf_return(struct io *io, uint32_t bid)
{
    struct uring_io *u = U(io);
    struct bufring *r = bid & IO_BUF_LARGE ? &u->large : &u->small;
    if (!u->use_bufring) {
        io_bufpool_put(&r->pool, bid);
        return;
    }
    io_uring_buf_ring_add(r->br, io_bufpool_data(&r->pool, bid), (unsigned)r->pool.size,
                          (unsigned short)(bid & ~IO_BUF_LARGE), r->mask, 0);
    io_uring_buf_ring_advance(r->br, 1);
}

static void uring_read(struct io *io, struct io_op *op, int fd, void *buf, size_t len)
{
    struct uring_io *u = U(io);
    bool fixed = use_fixed(u, fd);
    struct io_uring_sqe *sqe = get_sqe(u);
    arm(op, IO_OP_READ, fd);
    io_uring_prep_read(sqe, fd, buf, (unsigned)len, 0);
    set_file(sqe, fixed);
    io_uring_sqe_set_data(sqe, op);
}

static void uring_send(struct io *io, struct io_op *op, int fd, const struct iovec *iov,
                       int niov)
{
    struct uring_io *u = U(io);
    bool fixed = use_fixed(u, fd);
    struct msghdr *msg = NULL;
    if (niov > 1) {
        /* the msghdr before the SQE: taking it may submit, which must not
         * send a taken but unprepared SQE; and with a free SQE ensured
         * first, get_sqe below cannot submit (and reset the arena) either */
        if (io_uring_sq_space_left(&u->ring) == 0)
            submit_now(u);
        msg = arena_msg(u, niov);
        memcpy(msg->msg_iov, iov, (size_t)niov * sizeof *iov);
    }
    struct io_uring_sqe *sqe = get_sqe(u);
    arm(op, IO_OP_SEND, fd);
    if (!msg) /* the common case: a plain send, no msghdr to import */
        io_uring_prep_send(sqe, fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    else
        io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
    set_file(sqe, fixed);
    io_uring_sqe_set_data(sqe, op);
}

static void set_ts(struct io_op *op, int ms)
{
    op->u.ts.sec = ms / 1000;
    op->u.ts.nsec = (long long)(ms % 1000) * 1000000;
}

static void uring_connect(struct io *io, struct io_op *op, int fd, const struct sockaddr *sa,
                          socklen_t salen, int timeout_ms)
{
    struct uring_io *u = U(io);
    bool fixed = use_fixed(u, fd);
    /* two SQEs in one go: make room for both before linking them */
    if (io_uring_sq_space_left(&u->ring) < 2)
        submit_now(u);
    arm(op, IO_OP_CONNECT, fd);
    set_ts(op, timeout_ms); /* read by the kernel at submission */
    struct io_uring_sqe *sqe = get_sqe(u);
    io_uring_prep_connect(sqe, fd, sa, salen);
    set_file(sqe, fixed);
    io_uring_sqe_set_data(sqe, op);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = get_sqe(u);
    io_uring_prep_link_timeout(sqe, (struct __kernel_timespec *)&op->u.ts, 0);
    io_uring_sqe_set_data(sqe, NULL); /* its own completion says nothing new */
}

static void uring_timer(struct io *io, struct io_op *op, int ms)
{
    struct io_uring_sqe *sqe = get_sqe(U(io));
    arm(op, IO_OP_TIMER, -1);
    set_ts(op, ms);
    io_uring_prep_timeout(sqe, (struct __kernel_timespec *)&op->u.ts, 0, 0);
    io_uring_sqe_set_data(sqe, op);
}

static void uring_cancel(struct io *io, struct io_op *op)
{
    if (op->type == IO_OP_IDLE || op->cancelled)
        return;
    op->cancelled = 1;
    struct io_uring_sqe *sqe = get_sqe(U(io));
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data(sqe, NULL);
}

static void uring_cancel_all(struct io *io)
{
    struct io_uring_sqe *sqe = get_sqe(U(io));
    io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data(sqe, NULL);
}

static void uring_shutdown(struct io *io, int fd)
{
    shutdown(fd, SHUT_RDWR);
}

static void uring_close(struct io *io, int fd)
{
    fixed_clear(U(io), fd);
    close(fd);
}

/* ------------------------------------------------------------------------ */
/* Completions                                                               */

/* One CQE as an event; false if it is not one (a linked timeout, a cancel,
 * a buffer-less end of a receive). */
static bool to_event(struct uring_io *u, struct io_uring_cqe *cqe, struct io_event *ev)
{
    struct io_op *op = io_uring_cqe_get_data(cqe);
    if (!op)
        return false;
    int res = cqe->res;
    unsigned flags = (cqe->flags & IORING_CQE_F_MORE) ? IO_EV_MORE : 0;
    *ev = (struct io_event){.op = op};
    switch (op->type) {
    case IO_OP_RECV: {
        struct bufring *r = op->u.recv.large ? &u->large : &u->small;
        if (u->use_bufring) {
            if (cqe->flags & IORING_CQE_F_BUFFER) {
                uint32_t bid = (cqe->flags >> IORING_CQE_BUFFER_SHIFT) | r->pool.flag;
                if (res > 0) {
                    flags |= IO_EV_BUF;
                    ev->buf = bid;
                    ev->data = io_bufpool_data(&r->pool, bid);
                } else {
                    uring_buf_return(&u->base, bid);
                }
            }
        } else if (op->u.recv.bid == UINT32_MAX) {
            res = -ENOBUFS;
        } else if (res > 0) {
            flags |= IO_EV_BUF;
            ev->buf = op->u.recv.bid;
            ev->data = io_bufpool_data(&r->pool, op->u.recv.bid);
        } else {
            io_bufpool_put(&r->pool, op->u.recv.bid);
        }
        break;
    }
    case IO_OP_CONNECT:
        if (res == -ECANCELED && !op->cancelled)
            res = -ETIMEDOUT; /* the linked timeout fired */
        break;
    case IO_OP_TIMER:
        if (res == -ETIME)
            res = 0;
        break;
    default:
        break;
    }
    ev->res = res;
    ev->flags = flags;
    if (!(flags & IO_EV_MORE))
        op->type = IO_OP_IDLE;
    return true;
}

static int uring_wait(struct io *io, struct io_event *ev, int max, int timeout_ms)
{
    struct uring_io *u = U(io);
    int ret;
    if (timeout_ms < 0) {
        ret = io_uring_submit_and_wait(&u->ring, 1);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        struct io_uring_cqe *cqe;
        ret = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
    }
    u->arena_msgs = u->arena_iovs = u->arena_nfds = 0; /* all submitted: the kernel has copies */
    if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EAGAIN && ret != -EBUSY)
        return ret;
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    int n = 0;
    io_uring_for_each_cqe(&u->ring, head, cqe) {
        if (n == max)
            break;
        seen++;
        if (to_event(u, cqe, &ev[n]))
            n++;
    }
    io_uring_cq_advance(&u->ring, seen);
    return n;
}

/* Completions to collect: CQEs not yet taken, CQEs the kernel kept aside
 * (overflow), or task work (DEFER_TASKRUN: a receive's data came in; it
 * becomes a CQE when we enter). TASKRUN_FLAG makes the kernel set
 * IORING_SQ_TASKRUN; without DEFER_TASKRUN (old kernels) the CQ says it. */
static bool uring_ready(struct io *io)
{
    struct io_uring *ring = &U(io)->ring;
    return io_uring_cq_ready(ring) ||
           (IO_URING_READ_ONCE(*ring->sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW));
}

static const struct io_backend_ops uring_ops = {
    .start = uring_start,
    .destroy = uring_destroy,
    .accept = uring_accept,
    .recv = uring_recv,
    .buf_return = uring_buf_return,
    .read = uring_read,
    .send = uring_send,
    .connect = uring_connect,
    .timer = uring_timer,
    .cancel = uring_cancel,
    .cancel_all = uring_cancel_all,
    .shutdown = uring_shutdown,
    .close = uring_close,
    .wait = uring_wait,
    .ready = uring_ready,
};
