/*
 * The worker: one thread, one io (core/io), its own clients and backend links.
 *
 *   loop:
 *     io_wait: submit, wait for ≥ 1 completion (reader is "idle" meanwhile)
 *     enter the snapshot epoch, load topology + command table
 *     hand each completion to its owner      (clients parse and dispatch,
 *                                              links match replies)
 *     flush: one send per dirty link, one per client with output (a
 *            client's small output may wait one iteration that does not
 *            sleep for the rest of its pipeline: client_flush_all)
 *     re-arm recvs (clients', links') that hit -ENOBUFS once buffers went back
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
#include <unistd.h>

#include "../consensus/consensus.h"
#include "runtime.h"

#define TICK_MS 100
#define EVENT_BATCH 1024 /* completions handled per loop iteration, at most */

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

/* The calls net/, route/ and cmd/ make upward (net.h, route.h, cmd.h): the
 * functions of the same names in route/, cmd/ and the root. */
static const struct net_hooks net_hooks = {
    .dispatch_command = dispatch_command,
    .fanout_child_reply = fanout_child_reply,
    .fanout_free = fanout_free,
    .hold_retry_done = hold_retry_done,
    .hold_request = hold_request,
    .hold_retry = hold_retry,
    .hold_behind_retry = hold_behind_retry,
    .hold_pass = hold_pass,
    .dispatch_redirect = dispatch_redirect,
    .dispatch_note_block_redirect = dispatch_note_block_redirect,
    .replica_fallback = replica_fallback,
    .pubsub_is_message = pubsub_is_message,
    .pubsub_reply_is_last = pubsub_reply_is_last,
    .pubsub_client_count = pubsub_client_count,
    .pubsub_settle = pubsub_settle,
    .admin_backend_auth = admin_backend_auth,
    .tls_link_attach = tls_link_attach,
};

static const struct route_hooks route_hooks = {
    .admin_gate = admin_gate,
    .proxy_command_lookup = proxy_command_lookup,
    .pubsub_gate = pubsub_gate,
    .pubsub_refuse = pubsub_refuse,
    .pubsub_is_subscribe_command = pubsub_is_subscribe_command,
    .pubsub_home_slot = pubsub_home_slot,
};

static const struct cmd_hooks cmd_hooks = {
    .tls_config_set = tls_config_set,
    .tls_stats_sum = tls_stats_sum,
};

int worker_create(struct runtime *rt, int id, struct worker **out)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->id = id;
    w->rt = rt;
    w->net_hooks = &net_hooks;
    w->route_hooks = &route_hooks;
    w->cmd_hooks = &cmd_hooks;
    w->stats = &rt->stats[id];
    w->metrics = &rt->metrics[id];
    w->tick_op.tag = OP_TICK;
    char why[160];
    int ret = io_create(rt->io_backend, &w->io, why, sizeof why);
    if (ret < 0) {
        free(w);
        return ret;
    }
    tls_worker_setup(w);
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
    io_destroy(w->io);
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
        io_accept(w->io, &ls->op, ls->fd);
        ls->armed = true;
        w->ops++;
    }
}

static void arm_tick(struct worker *w)
{
    io_timer(w->io, &w->tick_op, TICK_MS);
    w->ops++;
}

static void handle_accept(struct worker *w, const struct io_event *ev)
{
    struct listener *l = container_of(ev->op, struct listener, op);
    int res = ev->res;
    if (!(ev->flags & IO_EV_MORE)) {
        l->armed = false;
        w->ops--;
    }
    if (res >= 0 && l->handoff) {
        xworker_adopt(w, res);
    } else if (res >= 0) {
        if (l->tls)
            tls_accepted(w, res);
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

/* Receives (clients', links') that ended with -ENOBUFS are armed again:
 * once buffers went back (end of the batch), and at every tick, since one
 * handled in a batch after the one that gave the buffers back would wait
 * for a return that may never come. One that finds the ring empty again
 * waits once more. */
static void rearm_nobufs(struct worker *w)
{
    if (w->links_nobufs)
        link_rearm_nobufs(w);
    while (w->need_rearm) {
        struct client *c = w->need_rearm;
        w->need_rearm = c->rearm_next;
        c->rearm_listed = false;
        client_rearm(c);
    }
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
    rearm_nobufs(w);
    metrics_tick(w);
    arm_tick(w);
}

static void dispatch_event(struct worker *w, const struct io_event *ev)
{
    switch ((enum op_kind)ev->op->tag) {
    case OP_ACCEPT:
        handle_accept(w, ev);
        break;
    case OP_TICK:
        handle_tick(w);
        break;
    case OP_CLIENT_RECV:
    case OP_CLIENT_SEND:
        client_handle(w, ev);
        break;
    case OP_LINK_CONNECT:
    case OP_LINK_RECV:
    case OP_LINK_SEND:
        link_handle(w, ev);
        break;
    case OP_XWAKE:
        xworker_handle(w, ev->res);
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

/* may_hold: clients' output may wait one more iteration (client.c,
 * coalescing): not after an iteration that collected nothing. */
static void flush_all(struct worker *w, bool may_hold)
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
    w->flush_held = client_flush_all(w, may_hold);
    if (w->bufs_returned) {
        w->bufs_returned = false;
        rearm_nobufs(w);
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
 * never touches a buffer after it is freed. Bounded: the backend's own exit
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
    io_cancel_all(w->io);
    int64_t deadline = clock_ms() + 1000;
    struct io_event ev[EVENT_BATCH];
    while (ops_pending(w) && clock_ms() < deadline) {
        int n = io_wait(w->io, ev, EVENT_BATCH, 50);
        for (int i = 0; i < n; i++)
            dispatch_event(w, &ev[i]);
    }
}

int worker_start(struct worker *w)
{
    int ret = io_start(w->io);
    if (ret < 0)
        return ret;
    arm_accept(w);
    arm_tick(w);
    xworker_arm(w);
    return 0;
}

int worker_step(struct worker *w, int timeout_ms)
{
    struct io_event ev[EVENT_BATCH];
    snapshot_reader_idle(&w->rt->snap, (size_t)w->id);
    /* Output held back last iteration never waits for a sleep: this wait
     * only collects what is there, and if that is nothing it all goes. */
    bool held = w->flush_held;
    int n = io_wait(w->io, ev, EVENT_BATCH, held ? 0 : timeout_ms);
    if (n < 0) {
        log_error("waiting for I/O (%s): %s", io_backend_name(io_kind(w->io)), strerror(-n));
        return n;
    }
    w->now_us = io_clock_us(w->io); /* once per batch: time, metrics */
    w->now_ms = w->now_us / 1000;
    load_snapshots(w);
    for (int i = 0; i < n; i++)
        dispatch_event(w, &ev[i]);
    if (w->hold_due)
        link_revive_all(w);
    if (w->retry_due)
        retry_pass(w);
    flush_all(w, !held || n > 0);
    return atomic_load(&w->rt->stopping) && drain_step(w) ? 0 : 1;
}

void worker_finish(struct worker *w)
{
    quiesce(w);
    snapshot_reader_idle(&w->rt->snap, (size_t)w->id);
}

void *worker_main(void *arg)
{
    struct worker *w = arg;
    char role[8];
    snprintf(role, sizeof role, "W%d", w->id);
    log_set_role(role);
    int ret = worker_start(w);
    if (ret < 0) {
        log_error("starting the %s backend: %s", io_backend_name(io_kind(w->io)),
                  strerror(-ret));
        abort();
    }
    while (worker_step(w, -1) > 0)
        ;
    worker_finish(w);
    return NULL;
}
