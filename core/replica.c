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

#include "runtime.h"

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

void replica_command(struct client *c, size_t argc)
{
    if (argc != 1) {
        dispatch_wrong_arity(c);
        return;
    }
    struct runtime *rt = c->w->rt;
    if (arg_is(c->w, 0, "readonly")) {
        c->reads = CLIENT_READS_REPLICAS;
        if (!atomic_load_explicit(&rt->readonly_seen, memory_order_relaxed))
            atomic_store(&rt->readonly_seen, true); /* the health checks start */
    } else {
        c->reads = CLIENT_READS_MASTER;
    }
    client_reply_bytes(c, "+OK\r\n", 5);
}

/* ------------------------------------------------------------------------ */
/* Control thread: replica health                                            */

#define LAG_SAMPLES 64          /* per master: 16 s of rounds at 250 ms */
#define ROUND_MAX_MS 250
#define ROUND_MIN_MS 10
#define INFO_REPLICATION "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"

struct offset_sample {
    int64_t ms;
    long long offset;
};

/* One node the health checks talk to, found by address. */
struct probed {
    char addr[CLUSTER_ADDR_MAX];
    int fd;                   /* kept open between rounds; -1: none */
    bool listed;              /* in the topology at this round */
    bool healthy;             /* replica: may serve reads */
    char master[CLUSTER_ADDR_MAX]; /* replica: the master it was last
                                      checked against */
    /* master: master_repl_offset over time (a ring, newest at next - 1) */
    struct offset_sample samples[LAG_SAMPLES];
    unsigned nsamples, next;
};

struct replica_health {
    struct runtime *rt;
    struct probed *nodes;     /* owned */
    size_t n, cap;
    int64_t next_ms;          /* next round */
};

struct replica_health *replica_health_new(struct runtime *rt)
{
    struct replica_health *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    h->rt = rt;
    return h;
}

static void forget_all(struct replica_health *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->nodes[i].fd >= 0)
            bconn_close(h->rt, h->nodes[i].fd);
    h->n = 0;
}

void replica_health_free(struct replica_health *h)
{
    if (!h)
        return;
    forget_all(h);
    free(h->nodes);
    free(h);
}

static struct probed *find_probed(const struct replica_health *h, const char *addr)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->nodes[i].addr, addr) == 0)
            return &h->nodes[i];
    return NULL;
}

/* The entry for addr, new if needed; marked as listed. */
static struct probed *probed_get(struct replica_health *h, const char *addr)
{
    struct probed *p = find_probed(h, addr);
    if (!p) {
        if (h->n == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 16;
            h->nodes = realloc(h->nodes, h->cap * sizeof *h->nodes);
            if (!h->nodes)
                abort();
        }
        p = &h->nodes[h->n++];
        memset(p, 0, sizeof *p);
        snprintf(p->addr, sizeof p->addr, "%s", addr);
        p->fd = -1;
    }
    p->listed = true;
    return p;
}

/* Drop the nodes the topology no longer names. */
static void forget_unlisted(struct replica_health *h)
{
    for (size_t i = 0; i < h->n;) {
        if (h->nodes[i].listed) {
            h->nodes[i++].listed = false;
            continue;
        }
        if (h->nodes[i].fd >= 0)
            bconn_close(h->rt, h->nodes[i].fd);
        h->nodes[i] = h->nodes[--h->n];
    }
}

/* p's INFO replication text (malloc'd, NUL-terminated), or NULL when it
 * did not answer by deadline (its connection is then closed). */
static char *ask_info(struct replica_health *h, struct probed *p, int64_t deadline)
{
    if (p->fd < 0 && (p->fd = control_dial(h->rt, p->addr, deadline)) < 0)
        return NULL;
    struct resp_value v;
    char *buf = NULL, *text = NULL;
    if (control_call(h->rt, p->fd, INFO_REPLICATION, &v, &buf, deadline) == 0) {
        if (v.type == RESP_T_BULK && !v.is_null && (text = malloc(v.len + 1))) {
            memcpy(text, v.str, v.len);
            text[v.len] = '\0';
        }
        resp_value_free(&v);
        free(buf);
    }
    if (!text) {
        bconn_close(h->rt, p->fd);
        p->fd = -1;
    }
    return text;
}

static void add_sample(struct probed *m, int64_t now, long long offset)
{
    const struct offset_sample *newest = &m->samples[(m->next + LAG_SAMPLES - 1) % LAG_SAMPLES];
    if (m->nsamples && offset < newest->offset)
        m->nsamples = 0; /* a new replication history: the old samples mean nothing */
    m->samples[m->next] = (struct offset_sample){.ms = now, .offset = offset};
    m->next = (m->next + 1) % LAG_SAMPLES;
    if (m->nsamples < LAG_SAMPLES)
        m->nsamples++;
}

/* How far behind master m a replica at offset r is, in ms (an upper
 * bound); INT64_MAX when the samples cannot tell. */
static int64_t lag_ms(const struct probed *m, long long r, int64_t now)
{
    for (unsigned i = 0; i < m->nsamples; i++) {
        const struct offset_sample *s = &m->samples[(m->next + LAG_SAMPLES - 1 - i) % LAG_SAMPLES];
        if (s->offset <= r)
            return i == 0 ? 0 : now - s->ms;
    }
    return INT64_MAX;
}

/* Is the replica whose INFO is `text` a read target for master m? */
static bool replica_ok(const struct replica_health *h, const char *text,
                       const struct cluster_node *m, int max_lag, int64_t now)
{
    char host[CLUSTER_ADDR_MAX], port[8], status[16], offset[24], addr[CLUSTER_ADDR_MAX + 8];
    size_t len = strlen(text);
    if (!cluster_info_field(text, len, "master_host", host, sizeof host) ||
        !cluster_info_field(text, len, "master_port", port, sizeof port) ||
        !cluster_info_field(text, len, "master_link_status", status, sizeof status) ||
        !cluster_info_field(text, len, "slave_repl_offset", offset, sizeof offset) ||
        strcmp(status, "up") != 0)
        return false;
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    const struct probed *mp = find_probed(h, m->addr);
    return strcmp(addr, m->addr) == 0 && mp && lag_ms(mp, atoll(offset), now) <= max_lag;
}

/* One round of probes over cur's masters (those with replicas) and
 * replicas; each call waits at most `timeout` ms. */
static void probe_round(struct replica_health *h, const struct cluster_topology *cur,
                        int timeout, int max_lag)
{
    char value[24];
    int64_t start = clock_ms();
    for (size_t i = cur->nmasters; i < cur->nnodes; i++) {
        struct probed *m = probed_get(h, cur->nodes[cur->nodes[i].master].addr);
        if (m->nsamples && m->samples[(m->next + LAG_SAMPLES - 1) % LAG_SAMPLES].ms >= start)
            continue; /* already sampled this round (another replica of it) */
        char *text = ask_info(h, m, clock_ms() + timeout);
        if (text && cluster_info_field(text, strlen(text), "master_repl_offset", value, sizeof value))
            add_sample(m, clock_ms(), atoll(value));
        free(text);
    }
    for (size_t i = cur->nmasters; i < cur->nnodes; i++) {
        const struct cluster_node *n = &cur->nodes[i];
        struct probed *p = probed_get(h, n->addr);
        char *text = ask_info(h, p, clock_ms() + timeout);
        bool ok = text && replica_ok(h, text, &cur->nodes[n->master], max_lag, clock_ms());
        if (ok != p->healthy)
            log_info("replica %s %s", p->addr, ok ? "serves reads" : text ?
                     "serves no reads: not in sync, or behind by more than the lag limit" :
                     "serves no reads: no answer to INFO");
        p->healthy = ok;
        snprintf(p->master, sizeof p->master, "%s", cur->nodes[n->master].addr);
        free(text);
    }
    forget_unlisted(h);
}

void replica_health_fill(const struct replica_health *h, struct cluster_topology *t)
{
    for (size_t i = 0; i < t->nmasters; i++)
        t->nodes[i].nreaders = 0;
    for (size_t i = t->nmasters; i < t->nnodes; i++) {
        struct cluster_node *m = &t->nodes[t->nodes[i].master];
        const struct probed *p = find_probed(h, t->nodes[i].addr);
        if (p && p->healthy && strcmp(p->master, m->addr) == 0 &&
            m->nreaders < CLUSTER_READERS_MAX)
            m->readers[m->nreaders++] = (uint16_t)i;
    }
}

static bool same_readers(const struct cluster_topology *a, const struct cluster_topology *b)
{
    for (size_t i = 0; i < a->nmasters; i++)
        if (a->nodes[i].nreaders != b->nodes[i].nreaders ||
            memcmp(a->nodes[i].readers, b->nodes[i].readers,
                   a->nodes[i].nreaders * sizeof a->nodes[i].readers[0]) != 0)
            return false;
    return true;
}

static bool any_readers(const struct cluster_topology *t)
{
    for (size_t i = 0; i < t->nmasters; i++)
        if (t->nodes[i].nreaders)
            return true;
    return false;
}

/* Is anyone able to read from replicas (the option, or a READONLY seen)? */
static bool wanted(struct runtime *rt, const struct config *cfg)
{
    return cfg->read_from_replicas != CONFIG_READ_MASTER || atomic_load(&rt->readonly_seen);
}

struct cluster_topology *replica_health_check(struct replica_health *h, int *wait_ms)
{
    struct runtime *rt = h->rt;
    const struct config *cfg = admin_config(rt);
    int round = cfg->replica_max_lag_ms / 4;
    round = round > ROUND_MAX_MS ? ROUND_MAX_MS : round < ROUND_MIN_MS ? ROUND_MIN_MS : round;
    int64_t now = clock_ms();
    if (now < h->next_ms) {
        *wait_ms = (int)(h->next_ms - now);
        return NULL;
    }
    *wait_ms = round;
    const struct cluster_topology *cur = snapshot_load(&rt->slots[SLOT_TOPOLOGY]);
    h->next_ms = now + round;
    if (!cur)
        return NULL;
    if (wanted(rt, cfg)) {
        probe_round(h, cur, round, cfg->replica_max_lag_ms);
    } else {
        forget_all(h); /* nothing published stays healthy unchecked */
        if (!any_readers(cur))
            return NULL;
    }
    struct cluster_topology *t = cluster_topology_dup(cur);
    if (!t)
        abort();
    replica_health_fill(h, t);
    if (same_readers(cur, t)) {
        cluster_topology_free(t);
        return NULL;
    }
    return t;
}
