/*
 * Cluster mode, the core side (DESIGN §5): what cluster-aware clients see,
 * and the hand-over of proxy maps from the consensus thread.
 *
 *   consensus thread ── publish hook ──► rt->pending_map (atomic exchange)
 *                                          │ eventfd wakes the control thread
 *   control thread ◄───────────────────────┘
 *     clustermode_publish_pending(): snapshot_publish(SLOT_PROXYMAP)
 *   workers: CLUSTER SLOTS/SHARDS/NODES/INFO/MYID from the snapshot; MOVED
 *     hints for slots another proxy owns (dispatch.c)
 *
 * Outside cluster mode the snapshot is a one-node map in which this proxy
 * owns every slot, so cluster-aware clients work against a single ringslot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../consensus/consensus.h"
#include "runtime.h"
#include "tls/tls.h"

static void map_destroy(void *p)
{
    proxy_map_free(p);
}

/* Consensus thread: hand the map to the control thread (DESIGN §2: only
 * the control thread publishes snapshots). A map not yet published is
 * replaced by the newer one. */
static void hook_publish(void *arg, struct proxy_map *map)
{
    struct runtime *rt = arg;
    struct proxy_map *old = atomic_exchange(&rt->pending_map, map);
    proxy_map_free(old);
    uint64_t one = 1;
    ssize_t n = write(rt->ctl_wakeup_fd, &one, sizeof one);
    (void)n;
}

static void hook_log(void *arg, enum log_level level, const char *msg)
{
    log_msg(level, "%s", msg);
}

static void hook_thread_init(void *arg)
{
    log_set_role("K");
}

/* ------------------------------------------------------------------------ */
/* The cluster port over TLS (tls-cluster yes)                               */

/*
 * As Redis's cluster bus: the tls-* certificate serves the cport and is
 * this proxy's client certificate towards the others; a peer must present
 * one (tls-auth-clients does not apply). The lease store is a Redis of the
 * backend: with --tls it is reached as the nodes are (--tls-cacert …).
 * Connections start on the context current when they open; a reload
 * (clustermode_tls_reload) swaps it for later ones. Owned by the runtime;
 * the consensus thread only reads it.
 */
struct cluster_tls {
    struct tls_slot server, client;  /* NULL ctx: not used on that side */
    struct consensus_transport transport;
};

static void *cport_tls_open(void *arg, int fd, const char *host, int port)
{
    struct cluster_tls *t = arg;
    struct tls_ctx *ctx = tls_slot_get(host ? &t->client : &t->server);
    if (!ctx)
        return NULL;
    uint64_t now = (uint64_t)consensus_clock_ms();
    struct tls_conn *conn = host ? tls_conn_connect(ctx, host, port, now)
                                 : tls_conn_accept(ctx, now);
    tls_ctx_unref(ctx); /* the connection holds its own reference */
    struct tls_sock *s = conn ? tls_sock_new(conn) : NULL;
    if (!s)
        tls_conn_free(conn);
    return s;
}

static ssize_t cport_tls_recv(void *s, int fd, void *buf, size_t cap)
{
    ssize_t n = tls_sock_recv(s, fd, buf, cap);
    struct tls_conn *conn = tls_sock_conn(s);
    if (n < 0 && tls_conn_state(conn) == TLS_FAILED)
        log_debug("cluster port TLS: %s (%s)", tls_fail_name(tls_conn_failure(conn)),
                  tls_conn_error(conn));
    return n;
}

static ssize_t cport_tls_send(void *s, int fd, const void *buf, size_t len)
{
    return tls_sock_send(s, fd, buf, len);
}

static short cport_tls_events(const void *s, bool have_output)
{
    return tls_sock_events(s, have_output);
}

static void cport_tls_close(void *s, int fd)
{
    tls_sock_free(s, fd);
}

/* The cport's two sides; the lease store's client side (server NULL). */
static void cluster_tls_options(const struct config *cfg, bool lease, struct tls_options *server,
                                struct tls_options *client)
{
    tls_options_server(cfg, server);
    server->auth_clients = TLS_AUTH_CLIENTS_YES;
    if (lease)
        tls_options_backend(cfg, client);
    else
        tls_options_cluster_client(cfg, client);
}

static struct cluster_tls *cluster_tls_new(const struct config *cfg, bool lease)
{
    struct tls_options so, co;
    cluster_tls_options(cfg, lease, &so, &co);
    char err[256];
    struct tls_ctx *server = lease ? NULL : tls_ctx_new(&so, err, sizeof err);
    struct tls_ctx *client = server || lease ? tls_ctx_new(&co, err, sizeof err) : NULL;
    struct cluster_tls *t = client ? calloc(1, sizeof *t) : NULL;
    if (!t) {
        log_error("cluster mode: %s: %s", lease ? "the lease store over TLS" : "tls-cluster",
                  client ? "out of memory" : err);
        tls_ctx_unref(server);
        tls_ctx_unref(client);
        return NULL;
    }
    tls_slot_init(&t->server, server);
    tls_slot_init(&t->client, client);
    t->transport = (struct consensus_transport){
        .open = cport_tls_open,
        .recv = cport_tls_recv,
        .send = cport_tls_send,
        .events = cport_tls_events,
        .close = cport_tls_close,
        .arg = t,
    };
    return t;
}

static void cluster_tls_free(struct cluster_tls *t)
{
    if (!t)
        return;
    tls_slot_destroy(&t->server);
    tls_slot_destroy(&t->client);
    free(t);
}

static int cluster_tls_reload(struct cluster_tls *t, const struct config *cfg, bool lease,
                              char *err, size_t errlen)
{
    if (!t)
        return 0;
    struct tls_options so, co;
    cluster_tls_options(cfg, lease, &so, &co);
    if ((!lease && tls_slot_reload(&t->server, &so, err, errlen) < 0) ||
        tls_slot_reload(&t->client, &co, err, errlen) < 0)
        return -1;
    return 0;
}

int clustermode_tls_reload(struct runtime *rt, char *err, size_t errlen)
{
    if (cluster_tls_reload(rt->cluster_tls, rt->cfg, false, err, errlen) < 0)
        return -1;
    return cluster_tls_reload(rt->lease_tls, rt->cfg, true, err, errlen);
}

void clustermode_publish_pending(struct runtime *rt)
{
    struct proxy_map *m = atomic_exchange(&rt->pending_map, NULL);
    if (m)
        snapshot_publish(&rt->snap, &rt->slots[SLOT_PROXYMAP], m);
}

int clustermode_start(struct runtime *rt)
{
    const struct config *cfg = rt->cfg;
    rt->slots[SLOT_PROXYMAP].destroy = map_destroy;
    if (!cfg->cluster_mode) {
        /* Before any thread runs: main may publish this first one. */
        const char *ip = cfg->announce_ip[0] ? cfg->announce_ip
                         : cfg->nbinds ? cfg->binds[0] : NULL;
        int port = cfg->announce_port ? cfg->announce_port : cfg->port;
        struct proxy_map *m = consensus_single_map(cfg, ip, port);
        if (!m)
            return -1;
        snapshot_publish(&rt->snap, &rt->slots[SLOT_PROXYMAP], m);
        return 0;
    }
    struct consensus_hooks hooks = {
        .publish = hook_publish,
        .log = hook_log,
        .thread_init = hook_thread_init,
        .arg = rt,
    };
    if (cfg->tls_cluster) {
        rt->cluster_tls = cluster_tls_new(cfg, false);
        if (!rt->cluster_tls)
            return -1;
        hooks.transport = &rt->cluster_tls->transport;
    }
    if (cfg->tls) {
        rt->lease_tls = cluster_tls_new(cfg, true);
        if (!rt->lease_tls)
            return -1;
        hooks.lease_transport = &rt->lease_tls->transport;
    }
    char err[256];
    rt->consensus = consensus_start(cfg, &hooks, err, sizeof err);
    if (!rt->consensus) {
        log_error("cluster mode: %s", err);
        return -1;
    }
    log_info("cluster mode: node id %s, cport %d", consensus_node_id(rt->consensus),
             cfg->cport);
    return 0;
}

/* SIGTERM in cluster mode: move our slots away before we stop serving. */
void clustermode_leave(struct runtime *rt)
{
    if (!rt->consensus)
        return;
    if (consensus_leave(rt->consensus, 5000) < 0)
        log_warn("cluster mode: leaving timed out; stopping anyway");
}

void clustermode_stop(struct runtime *rt)
{
    consensus_stop(rt->consensus);
    rt->consensus = NULL;
    cluster_tls_free(rt->cluster_tls); /* after the thread that used it */
    cluster_tls_free(rt->lease_tls);
    rt->cluster_tls = rt->lease_tls = NULL;
    proxy_map_free(atomic_exchange(&rt->pending_map, NULL));
}
