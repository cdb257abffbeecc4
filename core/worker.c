/*
 * The worker: one thread, one io_uring, its own clients and backend links.
 *
 *   loop:
 *     submit and wait for ≥ 1 completion      (reader is "idle" meanwhile)
 *     enter the snapshot epoch, load topology + command table
 *     drain every CQE into its handler        (clients parse and dispatch,
 *                                              links match replies)
 *     flush: one send per dirty link, one per client with output
 *     re-arm recvs that hit -ENOBUFS once buffers went back
 *
 * Handlers never submit sends themselves; they mark links and clients dirty,
 * so all of an iteration's requests for a node leave in one write.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "../consensus/consensus.h"
#include "pubsub.h"
#include "runtime.h"

#define RING_ENTRIES 4096
#define BUF_GROUP 1
#define BUF_COUNT 1024
#define BUF_SIZE 4096
#define TICK_MS 100

int64_t clock_ms(void)
{
    return consensus_clock_ms(); /* the one clock (consensus.h) */
}

/*
 * A msghdr and room for niov iovecs, valid until the next submission. With
 * IORING_FEAT_SUBMIT_STABLE the kernel keeps its own copy of both once a
 * SENDMSG is submitted, so connections need no send state of their own
 * while idle. When the arena is full, what is prepared is submitted first.
 */
struct msghdr *worker_send_msg(struct worker *w, int niov)
{
    assert(niov > 0 && niov <= SEND_ARENA_IOV);
    if (w->arena_msgs == SEND_ARENA_MSGS || w->arena_iovs + (size_t)niov > SEND_ARENA_IOV) {
        io_uring_submit(&w->ring);
        w->arena_msgs = w->arena_iovs = 0;
    }
    struct msghdr *m = &w->arena_msg[w->arena_msgs++];
    memset(m, 0, sizeof *m);
    m->msg_iov = &w->arena_iov[w->arena_iovs];
    m->msg_iovlen = (size_t)niov;
    w->arena_iovs += (size_t)niov;
    return m;
}

struct io_uring_sqe *worker_sqe(struct worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (!sqe) {
        /* The SQ is full: hand what we have to the kernel and retry. */
        io_uring_submit(&w->ring);
        sqe = io_uring_get_sqe(&w->ring);
    }
    assert(sqe);
    return sqe;
}

/* ------------------------------------------------------------------------ */
/* Output buffers                                                            */

#define OBUF_CHUNK 16384
#define OBUF_FIRST_CHUNK 512

void obuf_append(struct obuf *o, const void *data, size_t len)
{
    struct obuf_chunk *t = o->tail;
    if (t && t->cap - t->len >= len) {
        memcpy(t->data + t->len, data, len);
        t->len += len;
        o->bytes += len;
        return;
    }
    if (t && t->cap > t->len) { /* fill the tail first */
        size_t n = t->cap - t->len;
        memcpy(t->data + t->len, data, n);
        t->len += n;
        o->bytes += n;
        data = (const char *)data + n;
        len -= n;
    }
    /* Most replies are small and leave at once: start an empty chain with a
     * small chunk, so a connection's reply does not pin 16 KB. Sizes are
     * allocator size classes, header included. */
    size_t want = (o->tail ? OBUF_CHUNK : OBUF_FIRST_CHUNK) - sizeof(struct obuf_chunk);
    size_t cap = len > want ? len : want;
    struct obuf_chunk *c = malloc(sizeof *c + cap);
    if (!c)
        abort();
    c->next = NULL;
    c->len = len;
    c->cap = cap;
    c->sent = 0;
    memcpy(c->data, data, len);
    if (o->tail)
        o->tail->next = c;
    else
        o->head = c;
    o->tail = c;
    o->bytes += len;
}

int obuf_iov(const struct obuf *o, struct iovec *iov, int max)
{
    int n = 0;
    for (struct obuf_chunk *c = o->head; c && n < max; c = c->next) {
        if (c->len == c->sent)
            continue;
        iov[n].iov_base = c->data + c->sent;
        iov[n].iov_len = c->len - c->sent;
        n++;
    }
    return n;
}

void obuf_consume(struct obuf *o, size_t n)
{
    assert(n <= o->bytes);
    o->bytes -= n;
    while (o->head) {
        struct obuf_chunk *c = o->head;
        size_t left = c->len - c->sent;
        if (n < left) {
            c->sent += n;
            return;
        }
        n -= left;
        o->head = c->next;
        if (!o->head)
            o->tail = NULL;
        free(c);
    }
}

void obuf_free(struct obuf *o)
{
    while (o->head) {
        struct obuf_chunk *c = o->head;
        o->head = c->next;
        free(c);
    }
    o->tail = NULL;
    o->bytes = 0;
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

/* Multishot recv and buffer rings came with Linux 6.0 (5.19 for rings). */
static bool kernel_has_multishot_recv(void)
{
    const char *force = getenv("RINGSLOT_IO");
    if (force && strcmp(force, "single") == 0)
        return false;
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) == 0)
        sscanf(u.release, "%d.%d", &major, &minor);
    return major > 6 || (major == 6 && minor >= 0);
}

static int setup_buffer_ring(struct worker *w)
{
    size_t ring_bytes = BUF_COUNT * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
                     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uintptr_t)mem,
        .ring_entries = BUF_COUNT,
        .bgid = BUF_GROUP,
    };
    int ret = io_uring_register_buf_ring(&w->ring, &reg, 0);
    if (ret) {
        munmap(mem, ring_bytes);
        return ret;
    }
    w->br = mem;
    w->nbufs = BUF_COUNT;
    w->buf_size = BUF_SIZE;
    w->br_mask = io_uring_buf_ring_mask(BUF_COUNT);
    w->bufs = malloc((size_t)BUF_COUNT * BUF_SIZE);
    if (!w->bufs)
        return -ENOMEM;
    io_uring_buf_ring_init(w->br);
    for (unsigned i = 0; i < BUF_COUNT; i++)
        io_uring_buf_ring_add(w->br, w->bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
                              (unsigned short)i, w->br_mask, (int)i);
    io_uring_buf_ring_advance(w->br, BUF_COUNT);
    return 0;
}

/* io_uring_enable_rings() is declared by liburing 2.3 but not exported by
 * Debian 12's library: make the register call ourselves. */
static int enable_ring(struct io_uring *ring)
{
    long ret = syscall(__NR_io_uring_register, ring->ring_fd,
                       IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    return ret < 0 ? -errno : 0;
}

static int setup_ring(struct worker *w)
{
    struct io_uring_params p = {0};
    /* Created here (main thread), driven by the worker thread: the ring
     * starts disabled so SINGLE_ISSUER binds it to the thread that enables
     * it (worker_main). */
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
              IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_R_DISABLED;
    p.cq_entries = RING_ENTRIES * 4;
    p.flags |= IORING_SETUP_CQSIZE;
    int ret = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
    if (ret == -EINVAL) { /* older kernel: plain ring */
        memset(&p, 0, sizeof p);
        p.cq_entries = RING_ENTRIES * 4;
        p.flags = IORING_SETUP_CQSIZE;
        ret = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
    }
    if (ret == 0)
        w->ring_disabled = (p.flags & IORING_SETUP_R_DISABLED) != 0;
    if (ret == 0 && !(p.features & IORING_FEAT_SUBMIT_STABLE)) {
        /* worker_send_msg() relies on it (kernels before 5.5 lack it) */
        io_uring_queue_exit(&w->ring);
        return -ENOTSUP;
    }
    return ret;
}

int worker_create(struct runtime *rt, int id, struct worker **out)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->id = id;
    w->rt = rt;
    w->stats = &rt->stats[id];
    w->metrics = &rt->metrics[id];
    w->tick_op.kind = OP_TICK;
    int ret = setup_ring(w);
    if (ret < 0) {
        free(w);
        return ret;
    }
    w->use_bufring = kernel_has_multishot_recv() && setup_buffer_ring(w) == 0;
    w->inbox_fd = -1;
    ret = xworker_init(w);
    if (ret == 0)
        ret = listen_worker(w);
    if (ret < 0) {
        worker_destroy(w);
        return ret;
    }
    *out = w;
    return 0;
}

void worker_destroy(struct worker *w)
{
    w->cfg = w->rt->cfg; /* the thread is gone: its snapshot may be too */
    client_free_all(w);
    hold_fail_all(w, "ERR proxy is shutting down");
    xworker_destroy(w);
    admin_worker_destroy(w);
    link_free_all(w);
    listen_close_all(w);
    io_uring_queue_exit(&w->ring);
    if (w->br)
        munmap(w->br, w->nbufs * sizeof(struct io_uring_buf));
    free(w->bufs);
    free(w->node_links);
    free(w->reader_links);
    arg_scratch_free(&w->args);
    free(w);
}

/* ------------------------------------------------------------------------ */
/* Loop                                                                      */

static void arm_accept(struct worker *w)
{
    for (int i = 0; i < w->nlisteners && !w->draining; i++) {
        struct listener *ls = &w->listeners[i];
        if (ls->armed || ls->fd < 0)
            continue;
        struct io_uring_sqe *sqe = worker_sqe(w);
        io_uring_prep_multishot_accept(sqe, ls->fd, NULL, NULL, SOCK_CLOEXEC);
        io_uring_sqe_set_data(sqe, &ls->op);
        ls->armed = true;
        w->ops++;
    }
}

static void arm_tick(struct worker *w)
{
    w->tick_ts.tv_sec = 0;
    w->tick_ts.tv_nsec = TICK_MS * 1000000ll;
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_timeout(sqe, &w->tick_ts, 0, 0);
    io_uring_sqe_set_data(sqe, &w->tick_op);
    w->ops++;
}

static void handle_accept(struct worker *w, struct op *op, int res, unsigned flags)
{
    struct listener *l = container_of(op, struct listener, op);
    if (!(flags & IORING_CQE_F_MORE)) {
        l->armed = false;
        w->ops--;
    }
    if (res >= 0 && l->handoff) {
        xworker_adopt(w, res);
    } else if (res >= 0) {
        client_accepted(w, res);
    } else if (res != -ECANCELED && res != -EINVAL) {
        log_warn("accept: %s", strerror(-res));
    }
}

static bool all_idle(struct worker *w)
{
    for (struct client *c = w->clients; c; c = c->next)
        if (c->nreqs || c->out.bytes || c->sending.bytes)
            return false;
    return true;
}

/* SIGTERM: stop accepting; once every client's replies went out (or the
 * deadline passed) the loop ends. */
static bool drain_step(struct worker *w)
{
    if (!w->draining) {
        w->draining = true;
        w->stop_deadline_ms = w->now_ms + 3000;
        listen_close_all(w);
    }
    return all_idle(w) || w->now_ms >= w->stop_deadline_ms;
}

/* INFO's instantaneous_ops_per_sec: this worker's rate over the last
 * second or so, published for the other threads to sum. */
static void sample_ops(struct worker *w)
{
    if (w->now_ms - w->sample_ms < 1000)
        return;
    uint64_t cmds = atomic_load_explicit(&w->stats->commands, memory_order_relaxed);
    uint64_t rate = w->sample_ms ? (cmds - w->sample_cmds) * 1000 /
                                       (uint64_t)(w->now_ms - w->sample_ms) : 0;
    atomic_store_explicit(&w->stats->ops_per_sec, rate, memory_order_relaxed);
    w->sample_ms = w->now_ms;
    w->sample_cmds = cmds;
}

static void handle_tick(struct worker *w)
{
    w->ops--;
    if (w->quiescing)
        return;
    sample_ops(w);
    for (struct link *l = w->links; l; l = l->next)
        link_tick(l);
    if (w->nheld) /* deadlines, and links that came back */
        hold_pass(w);
    if (w->clients_awaiting && w->now_ms >= hold_boot_deadline(w))
        dispatch_resume(w); /* no first topology in time: they get the error */
    if (w->nretry)
        retry_pass(w);
    if (w->now_ms >= w->next_scan_ms)
        client_scan(w);
    metrics_tick(w);
    arm_tick(w);
}

static void dispatch_cqe(struct worker *w, struct io_uring_cqe *cqe)
{
    struct op *op = io_uring_cqe_get_data(cqe);
    if (!op)
        return;
    switch (op->kind) {
    case OP_ACCEPT:
        handle_accept(w, op, cqe->res, cqe->flags);
        break;
    case OP_TICK:
        handle_tick(w);
        break;
    case OP_CLIENT_RECV:
    case OP_CLIENT_SEND:
        client_handle(w, op, cqe->res, cqe->flags);
        break;
    case OP_LINK_CONNECT:
    case OP_LINK_TIMEOUT:
    case OP_LINK_RECV:
    case OP_LINK_SEND:
        link_handle(w, op, cqe->res, cqe->flags);
        break;
    case OP_XWAKE:
        xworker_handle(w, cqe->res);
        break;
    case OP_CANCEL:
        break;
    }
}

/* Load the snapshots for this batch and keep node_links in step. */
static void load_snapshots(struct worker *w)
{
    struct runtime *rt = w->rt;
    snapshot_reader_enter(&rt->snap, (size_t)w->id);
    w->topo = snapshot_load(&rt->slots[SLOT_TOPOLOGY]);
    w->cmds = snapshot_load(&rt->slots[SLOT_COMMANDS]);
    w->pmap = snapshot_load(&rt->slots[SLOT_PROXYMAP]);
    w->cfg = snapshot_load(&rt->slots[SLOT_CONFIG]);
    if (!w->cfg)
        w->cfg = rt->cfg;
    if (!w->cmds)
        w->cmds = command_table_builtin();
    admin_worker_poll(w);
    if (w->topo && w->topo->version != w->node_links_version) {
        free(w->node_links);
        free(w->reader_links);
        w->node_links = calloc(w->topo->nnodes, sizeof *w->node_links);
        w->reader_links = calloc(w->topo->nnodes, sizeof *w->reader_links);
        w->node_links_len = w->topo->nnodes;
        w->node_links_version = w->topo->version;
        replica_topology_changed(w);
        pubsub_topology_changed(w);
        /* Before this batch dispatches anything: held requests for slots
         * that moved go first, so a newer request cannot overtake them. */
        if (w->nheld)
            hold_pass(w);
        if (w->clients_awaiting)
            dispatch_resume(w);
    }
}

static void flush_all(struct worker *w)
{
    if (w->resume_list) /* first: what it sends is flushed below */
        client_resume_all(w);
    if (w->reap_links)
        link_reap(w);
    while (w->dirty_links) {
        struct link *l = w->dirty_links;
        w->dirty_links = l->dirty_next;
        l->dirty = false;
        link_flush(l);
    }
    while (w->flush_list) {
        struct client *c = w->flush_list;
        w->flush_list = c->flush_next;
        c->flush_listed = false;
        client_flush(c);
    }
    if (w->bufs_returned) {
        w->bufs_returned = false;
        while (w->need_rearm) {
            struct client *c = w->need_rearm;
            w->need_rearm = c->rearm_next;
            c->rearm_listed = false;
            client_rearm(c);
        }
    }
}

static bool ops_pending(struct worker *w)
{
    if (w->ops || w->clients)
        return true;
    for (struct link *l = w->links; l; l = l->next)
        if (l->ops)
            return true;
    return false;
}

/*
 * Before the worker's memory goes: shut every socket, cancel what is still
 * armed, and reap completions until nothing is in flight, so the kernel
 * never touches a buffer after it is freed. Bounded: the ring's own exit
 * cancels whatever is left after the deadline.
 */
static void quiesce(struct worker *w)
{
    w->quiescing = true;
    for (struct client *c = w->clients; c;) {
        struct client *next = c->next;
        client_kill(c);
        c = next;
    }
    hold_fail_all(w, "ERR proxy is shutting down");
    link_shutdown_all(w);
    struct io_uring_sqe *sqe = worker_sqe(w);
    io_uring_prep_cancel(sqe, NULL, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data(sqe, NULL);
    int64_t deadline = clock_ms() + 1000;
    while (ops_pending(w) && clock_ms() < deadline) {
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000ll};
        struct io_uring_cqe *cqe;
        io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, &ts, NULL);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            dispatch_cqe(w, cqe);
            seen++;
        }
        io_uring_cq_advance(&w->ring, seen);
    }
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    char role[8];
    snprintf(role, sizeof role, "W%d", w->id);
    log_set_role(role);
    if (w->ring_disabled) {
        int ret = enable_ring(&w->ring);
        if (ret < 0) {
            log_error("enabling the io_uring: %s", strerror(-ret));
            abort();
        }
    }
    arm_accept(w);
    arm_tick(w);
    xworker_arm(w);
    for (;;) {
        snapshot_reader_idle(&w->rt->snap, (size_t)w->id);
        int ret = io_uring_submit_and_wait(&w->ring, 1);
        w->arena_msgs = w->arena_iovs = 0; /* all submitted: the kernel has copies */
        if (ret < 0 && ret != -EINTR && ret != -ETIME && ret != -EAGAIN &&
            ret != -EBUSY) {
            log_error("io_uring_submit_and_wait: %s", strerror(-ret));
            break;
        }
        w->now_us = consensus_clock_us(); /* once per batch: time, metrics */
        w->now_ms = w->now_us / 1000;
        load_snapshots(w);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            dispatch_cqe(w, cqe);
            seen++;
        }
        io_uring_cq_advance(&w->ring, seen);
        if (w->hold_due)
            link_revive_all(w);
        if (w->retry_due)
            retry_pass(w);
        flush_all(w);
        if (atomic_load(&w->rt->stopping) && drain_step(w))
            break;
    }
    quiesce(w);
    snapshot_reader_idle(&w->rt->snap, (size_t)w->id);
    return NULL;
}
