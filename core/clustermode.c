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
        int port = cfg->announce_port ? cfg->announce_port
                   : cfg->port ? cfg->port : cfg->tls_port; /* TLS only: that port */
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
        .stream = tls_consensus_stream(rt),
        .arg = rt,
    };
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
    proxy_map_free(atomic_exchange(&rt->pending_map, NULL));
}
