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

/* ------------------------------------------------------------------------ */
/* CLUSTER, as clients see it                                                */

static void keyslot(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc != 3) {
        client_reply_error(c, "ERR wrong number of arguments for 'cluster|keyslot' command");
        return;
    }
    char line[32];
    unsigned slot = cluster_keyslot(w->args.argv[2], w->args.lens[2]);
    int n = snprintf(line, sizeof line, ":%u\r\n", slot);
    client_reply_bytes(c, line, (size_t)n);
}

/* COUNTKEYSINSLOT / GETKEYSINSLOT: the backend node serving that slot.
 * Redis parses every number before it checks the slot's range. */
static void slot_question(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    long long slot, count = 0;
    if (!resp_string2ll(w->args.argv[2], w->args.lens[2], &slot) ||
        (argc == 4 && !resp_string2ll(w->args.argv[3], w->args.lens[3], &count))) {
        client_reply_error(c, "ERR value is not an integer or out of range");
        return;
    }
    if (slot < 0 || slot >= CLUSTER_SLOTS || count < 0) {
        client_reply_error(c, argc == 4 ? "ERR Invalid slot or number of keys"
                                        : "ERR Invalid slot");
        return;
    }
    struct request *r = request_from_args(w, (int)argc, w->args.argv, w->args.lens);
    client_append(c, r);
    route_to_slot(w, r, (int)slot, client_key(c));
}

void clustermode_command(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    const struct proxy_map *m = w->pmap;
    void (*reply)(const struct proxy_map *, int, struct resp_buf *) = NULL;
    if (argc < 2) {
        client_reply_error(c, "ERR wrong number of arguments for 'cluster' command");
        return;
    }
    if (arg_is(w, 1, "slots"))
        reply = consensus_reply_cluster_slots;
    else if (arg_is(w, 1, "shards"))
        reply = consensus_reply_cluster_shards;
    else if (arg_is(w, 1, "nodes"))
        reply = consensus_reply_cluster_nodes;
    else if (arg_is(w, 1, "info"))
        reply = consensus_reply_cluster_info;
    else if (arg_is(w, 1, "myid"))
        reply = consensus_reply_cluster_myid;
    if (reply && m) {
        struct resp_buf b = {0};
        reply(m, c->proto, &b);
        client_reply_buf(c, &b);
    } else if (reply) {
        client_reply_error(c, "CLUSTERDOWN The cluster is down");
    } else if (arg_is(w, 1, "keyslot")) {
        keyslot(c, argc);
    } else if ((arg_is(w, 1, "countkeysinslot") && argc == 3) ||
               (arg_is(w, 1, "getkeysinslot") && argc == 4)) {
        slot_question(c, argc);
    } else {
        dispatch_forward_any(c, argc);
    }
}

/*
 * Should this call be answered with -MOVED to the proxy that owns its slot
 * (cluster mode)? always: yes; hint: at most once per connection every few
 * seconds, so cluster clients learn the map without being bounced; never
 * inside MULTI, a blocking call or pub/sub (the caller checks those).
 */
bool clustermode_moved(struct client *c, int slot)
{
    struct worker *w = c->w;
    const struct proxy_map *m = w->pmap;
    const struct config *cfg = w->rt->cfg;
    if (!cfg->cluster_mode || !m || slot < 0 || cfg->moved_mode == CONFIG_MOVED_NEVER)
        return false;
    const struct proxy_member *owner = consensus_slot_owner(m, (unsigned)slot);
    if (!owner || (m->self >= 0 && owner == &m->members[m->self]))
        return false;
    if (cfg->moved_mode == CONFIG_MOVED_HINT && !atomic_load(&w->rt->leaving)) {
        /* the first foreign call is served; a later one gets the hint */
        if (!c->foreign_seen) {
            c->foreign_seen = true;
            return false;
        }
        if (c->last_moved_ms && w->now_ms - c->last_moved_ms < CLUSTER_MOVED_HINT_MS)
            return false;
        c->last_moved_ms = w->now_ms;
    }
    struct resp_buf b = {0};
    consensus_reply_moved(m, (unsigned)slot, &b);
    client_reply_buf(c, &b);
    return true;
}

/* ------------------------------------------------------------------------ */
/* A proxy's per-node view: its own slots                                    */

/*
 * In cluster mode each proxy is a node of the logical cluster, and a Redis
 * node's DBSIZE, KEYS, SCAN and RANDOMKEY cover the slots it owns: summed or
 * merged over the nodes (redis-cli --cluster info, per-node SCAN in ioredis
 * and node-redis) they give the keyspace exactly once. The backend masters'
 * slots do not line up with the proxies', so:
 *
 *   DBSIZE     CLUSTER COUNTKEYSINSLOT for each own slot, on the master
 *              serving it, summed (16384 / members commands, pipelined per
 *              master — an admin command)
 *   RANDOMKEY  CLUSTER GETKEYSINSLOT <slot> 1 for each own slot; one key of
 *              a random non-empty slot (null only when the own slots hold
 *              no key, as Redis answers for an empty node)
 *   KEYS       every master as before; keys outside the own slots are
 *              dropped from the replies (fanout.c)
 *   SCAN       the masters in turn as before, skipping those that serve
 *              none of the own slots; keys outside them are dropped from
 *              each page (fanout.c), so a page may be short or empty and
 *              its cursor stays valid
 *
 * A proxy alone in its map owns every slot: nothing changes, nor outside
 * cluster mode.
 */
const struct proxy_map *clustermode_own_view(const struct worker *w)
{
    const struct proxy_map *m = w->pmap;
    if (!w->rt->cfg->cluster_mode || !m)
        return NULL;
    /* every slot is assigned to a live member: alone means all of them */
    return m->nmembers == 1 && m->self == 0 ? NULL : m;
}

bool clustermode_master_in_view(const struct worker *w, unsigned master)
{
    const struct proxy_map *m = clustermode_own_view(w);
    if (!m)
        return true;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        if (w->topo->slot_master[s] == master && consensus_owns_slot(m, s))
            return true;
    return false;
}

/* The slots m->self owns, in order, into out[CLUSTER_SLOTS]; how many. */
static size_t own_slots(const struct proxy_map *m, uint16_t *out)
{
    size_t n = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        if (consensus_owns_slot(m, s))
            out[n++] = (uint16_t)s;
    return n;
}

/* Ask about each own slot (argv[slot_arg] = the slot), merged by kind; or
 * answer `none` at once when this proxy owns no slot. */
static void per_own_slot(struct client *c, const struct proxy_map *m, enum merge_kind kind,
                         int argc, const char **argv, int slot_arg, const char *none)
{
    uint16_t *slots = malloc(CLUSTER_SLOTS * sizeof *slots);
    if (!slots)
        abort();
    size_t n = own_slots(m, slots);
    if (n)
        fanout_per_slot(c, kind, slots, n, argc, argv, slot_arg);
    else
        client_reply_bytes(c, none, strlen(none));
    free(slots);
}

bool clustermode_dbsize(struct client *c, size_t argc)
{
    const struct proxy_map *m = clustermode_own_view(c->w);
    if (!m || argc != 1) /* a wrong arity gets the backend's own error */
        return false;
    const char *argv[3] = {"CLUSTER", "COUNTKEYSINSLOT", NULL};
    per_own_slot(c, m, MERGE_SUM, 3, argv, 2, ":0\r\n");
    return true;
}

bool clustermode_randomkey(struct client *c, size_t argc)
{
    const struct proxy_map *m = clustermode_own_view(c->w);
    if (!m || argc != 1)
        return false;
    const char *argv[4] = {"CLUSTER", "GETKEYSINSLOT", NULL, "1"};
    per_own_slot(c, m, MERGE_RANDOM_KEY, 4, argv, 2, c->proto == 3 ? "_\r\n" : "$-1\r\n");
    return true;
}
