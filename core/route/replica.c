/*
 * replica.c — reads from replicas (--read-from-replicas, READONLY).
 *
 *   control thread, every round (≈ --replica-max-lag / 4, at most 250 ms)
 *     INFO replication of each master ──► its master_repl_offset over time
 *     INFO replication of each replica ─► master_link_status, its master,
 *                                         slave_repl_offset
 *     healthy = answered within the probe timeout, link up, replicating
 *               the topology's master, and behind it by at most
 *               --replica-max-lag ms ──► the masters' `readers` in the
 *               topology snapshot (republished when the set changes)
 *
 *   worker, per read-only call for a slot (replica_read_link)
 *     no | READWRITE ─► master
 *     yes | READONLY ─► round robin over the master and its readers
 *     replica        ─► round robin over its readers; none: the master
 *     a reader whose link is down is skipped (fallback counted)
 *
 * Lag in milliseconds from byte offsets: the control thread keeps a ring
 * of (time, master_repl_offset) samples per master. A replica at offset R
 * has everything the master had at the newest sample whose offset is <= R,
 * so it is at most (now - that sample's time) behind. A replica that does
 * not answer INFO within the probe timeout (SIGSTOP, overload) is unhealthy
 * at once: it stops getting reads within one round plus one timeout, which
 * stays under the lag limit.
 *
 * What a replica link carries is read-only, so when it fails (EOF, or the
 * replica drops out of the healthy set while reads wait on it) its
 * requests go to the slot's master instead (replica_fallback): the client
 * sees no error. Reader links are kept apart from the links that carry
 * writes (link_get_reader): READONLY on a master that gets demoted would
 * make it serve stale reads instead of answering MOVED.
 *
 * Always the master: anything but a keyed read-only command (MULTI/EXEC,
 * blocking calls, pub/sub, scripts that may write: EVAL is not read-only,
 * EVAL_RO is), a client holding connection state (WATCH, a private link,
 * multiplexing off), and a client's reads within
 * --replica-read-after-write ms of its last call that was not read-only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "route.h"

/* ------------------------------------------------------------------------ */
/* Workers: where a read goes                                                */

/* The mode this client's reads follow. */
static enum config_read_from client_mode(const struct client *c)
{
    enum config_read_from global = c->w->cfg->read_from_replicas;
    switch (c->reads) {
    case CLIENT_READS_REPLICAS:
        return global == CONFIG_READ_MASTER ? CONFIG_READ_SPREAD : global;
    case CLIENT_READS_MASTER:
        return CONFIG_READ_MASTER;
    default:
        return global;
    }
}

/* May c's reads be served by a replica now (whatever the call)? */
static bool client_may_read_replicas(const struct client *c)
{
    const struct worker *w = c->w;
    /* connection state (WATCH, subscriptions, a blocked call) is the master's */
    if (c->plinks || c->multiplex_off || c->in_multi)
        return false;
    int guard = w->cfg->replica_read_after_write_ms;
    return guard <= 0 || w->now_ms - c->last_write_ms >= guard;
}

/* May this call of c be served by a replica at all? */
static bool replica_eligible(const struct client *c, const struct command_info *ci, int slot)
{
    if (slot < 0 || !ci || !(ci->flags & CMD_READONLY) ||
        (ci->flags & (CMD_WRITE | CMD_BLOCKING | CMD_PUBSUB)))
        return false;
    return client_may_read_replicas(c);
}

/* The worker's READONLY link to replica `node` (RESP2 ones cached by node
 * index for the current topology, as node_links). */
static struct link *reader_link(struct worker *w, unsigned node, struct link_key key)
{
    if (key.proto != 2 || key.auth)
        return link_get_reader(w, w->topo->nodes[node].addr, key);
    if (!w->reader_links[node])
        w->reader_links[node] = link_get_reader(w, w->topo->nodes[node].addr, key);
    return w->reader_links[node];
}

/* A SCAN cursor is only good on the node that handed it out, which its
 * check bits must then name without doubt: a reader whose check bits are
 * the master's or another reader's is not asked for SCAN pages. */
static uint8_t node_check(const struct cluster_node *n)
{
    return scan_cursor_check(n->addr, n->id);
}

static bool check_is_unique(const struct cluster_topology *t, const struct cluster_node *m,
                            unsigned node)
{
    uint8_t k = node_check(&t->nodes[node]);
    if (k == node_check(m))
        return false;
    for (unsigned i = 0; i < m->nreaders; i++)
        if (m->readers[i] != node && node_check(&t->nodes[m->readers[i]]) == k)
            return false;
    return true;
}

/*
 * A reader of master m for one of c's reads in `mode`, round robin (yes:
 * the master takes a turn too); skips readers whose link is down and, for
 * SCAN (`scan`), readers check_is_unique refuses. NULL: the master.
 */
static struct link *pick_reader(struct client *c, enum config_read_from mode,
                                const struct cluster_node *m, bool scan)
{
    struct worker *w = c->w;
    unsigned n = m->nreaders;
    if (n == 0) {
        if (mode == CONFIG_READ_REPLICA)
            stat_add(&w->stats->replica_fallbacks, 1);
        return NULL;
    }
    unsigned pick = w->rr++ % (mode == CONFIG_READ_SPREAD ? n + 1 : n);
    if (pick == n)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        unsigned node = m->readers[(pick + i) % n];
        if (scan && !check_is_unique(w->topo, m, node))
            continue;
        struct link *l = reader_link(w, node, client_key(c));
        if (!l->down_since) {
            stat_add(&w->stats->replica_reads, 1);
            return l;
        }
    }
    stat_add(&w->stats->replica_fallbacks, 1); /* no reader to be had */
    return NULL;
}

struct link *replica_read_link(struct client *c, const struct command_info *ci, int slot)
{
    const struct cluster_topology *t = c->w->topo;
    enum config_read_from mode = client_mode(c);
    if (mode == CONFIG_READ_MASTER || !t || !replica_eligible(c, ci, slot) ||
        t->slot_master[slot] == CLUSTER_NO_NODE)
        return NULL;
    return pick_reader(c, mode, &t->nodes[t->slot_master[slot]], false);
}

/* The reader of m whose check bits are `check` (unique, link up); NULL if
 * none: the node that handed out that cursor serves no reads any more. */
static struct link *cursor_reader(struct client *c, const struct cluster_node *m,
                                  uint8_t check)
{
    const struct cluster_topology *t = c->w->topo;
    for (unsigned i = 0; i < m->nreaders; i++) {
        unsigned node = m->readers[i];
        if (node_check(&t->nodes[node]) != check || !check_is_unique(t, m, node))
            continue;
        struct link *l = reader_link(c->w, node, client_key(c));
        return l->down_since ? NULL : l;
    }
    return NULL;
}

struct link *replica_scan_link(struct client *c, unsigned master, const uint8_t *cont,
                               uint8_t *check)
{
    const struct cluster_topology *t = c->w->topo;
    const struct cluster_node *m = &t->nodes[master];
    *check = node_check(m);
    if (cont && *cont == *check)
        return NULL; /* the master's cursor */
    /* a replica's cursor goes on there, whatever the mode is now */
    struct link *l = cont ? cursor_reader(c, m, *cont) : NULL;
    enum config_read_from mode = client_mode(c);
    if (!l && mode != CONFIG_READ_MASTER && client_may_read_replicas(c))
        l = pick_reader(c, mode, m, true);
    if (l)
        *check = node_check(&t->nodes[cluster_topology_find(t, l->addr)]);
    return l;
}

void replica_fallback(struct link *l, struct request *r)
{
    struct worker *w = l->w;
    int slot;
    if (!request_wanted(r)) { /* the link's own READONLY/PING, or orphaned */
        hold_request(l, r);   /* drops it */
        return;
    }
    stat_add(&w->stats->replica_fallbacks, 1);
    if (r->parent && r->parent->fan->kind == MERGE_SCAN) {
        fanout_scan_fallback(r); /* its cursor is that replica's alone */
        return;
    }
    request_flags(w, r, &slot);
    route_to_slot(w, r, slot, (struct link_key){.proto = l->proto, .auth = l->auth});
}

/* Is addr a healthy replica (or a master: it serves its reads) in t? */
static bool still_readable(const struct cluster_topology *t, const char *addr)
{
    unsigned node = cluster_topology_find(t, addr);
    if (node == CLUSTER_NO_NODE)
        return false;
    const struct cluster_node *n = &t->nodes[node];
    if (n->is_master)
        return true;
    const struct cluster_node *m = &t->nodes[n->master];
    for (unsigned i = 0; i < m->nreaders; i++)
        if (m->readers[i] == node)
            return true;
    return false;
}

void replica_topology_changed(struct worker *w)
{
    for (struct link *l = w->links; l; l = l->next)
        if (l->reader && (l->state == LINK_READY || l->state == LINK_CONNECTING) && l->head &&
            !still_readable(w->topo, l->addr))
            link_abandon(l, "no longer a healthy replica");
}

void replica_command(struct client *c, const struct cmd_args *a)
{
    if (a->argc != 1) {
        dispatch_wrong_arity(c, a);
        return;
    }
    struct runtime *rt = c->w->rt;
    if (arg_is(a, 0, "readonly")) {
        c->reads = CLIENT_READS_REPLICAS;
        if (!atomic_load_explicit(&rt->readonly_seen, memory_order_relaxed))
            atomic_store(&rt->readonly_seen, true); /* the health checks start */
    } else {
        c->reads = CLIENT_READS_MASTER;
    }
    client_reply_bytes(c, "+OK\r\n", 5);
}
