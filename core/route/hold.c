/*
 * hold.c — requests a worker parks instead of queueing them on a link.
 *
 *   link lost / node down ──► HELD ──► the slot's master answers (link
 *     (link.c)                  │      revived, or a new topology) ──►
 *   no topology yet ──────────►─┤      re-routed by slot (route_to_slot)
 *     (dispatch.c)              ├──► hold time or byte cap passed:
 *                               │      -CLUSTERDOWN Could not connect to
 *                               │      node ip:port (no topology: The
 *                               │      cluster is down)
 *                               └──► client left: dropped, never sent
 *
 * The hold time is --cluster-down-timeout, or with auto (the default) what
 * the backend implies: 2 x its cluster-node-timeout + 2 s for a master
 * that has a replica to take over, none for one that has not (nothing
 * will serve its slots soon), 5 s before the first topology.
 *
 *   -TRYAGAIN -LOADING -MASTERDOWN -BUSY -CLUSTERDOWN from a node
 *                          ──► RETRY ──► backoff passed: the same shared
 *                               │        link again (ASKING kept)
 *                               └──► window or attempts used up: the error
 *
 * Both are FIFOs through r->lnext (a parked request is on no link), so
 * requests for one slot leave in the order they came. A parked request
 * stays in its client's FIFO (its reply keeps its place); a client that
 * leaves orphans it (client_close) and the next pass drops it; one that
 * only sent its FIN (peer_eof) gets an error for it instead: never sent.
 *
 * Held requests are re-routed by slot, not by address: the slot of their
 * first key, or, for a keyless call sent to one node (a fan-out to every
 * master, SCAN), a slot that node served, so it reaches that node's
 * successor. The hold deadline is counted from when the node stopped
 * answering, so once a node has been down longer than the hold time, new
 * requests for it fail at once instead of each waiting the full time.
 *
 * Retries go back to the same shared link: the error came from a node that
 * is alive (a retry of a request that was redirected with ASK must reach
 * the same importing node with ASKING). They are not done on private links
 * (the link may be given back meanwhile) nor for MULTI blocks.
 *
 * Retries keep the client's order: from a request's first retryable error
 * until its final reply, the client's new requests for shared links join
 * the retry queue behind it instead of running before it. A pipelined
 * `MSET {t}a 1 {t}b 1` that met -TRYAGAIN, then `SET {t}b 2`, leaves b = 2,
 * as one Redis would. (Requests already written when the error came cannot
 * be called back, and retried ones go again as their backoffs end; the
 * proxy answers in order all the same.)
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

#define HOLD_BYTES_MAX (64u << 20)  /* per worker */
#define RETRY_MAX 32                /* attempts (~12 s: the window decides) */
#define RETRY_MIN_WINDOW_MS 1000    /* -TRYAGAIN & co. even with hold 0 */
#define RETRY_BACKOFF_MS 25         /* doubled per attempt (the tick rounds up) */
#define RETRY_BACKOFF_MAX_MS 400

/* --cluster-down-timeout auto (the default): a master's failover takes
 * about 2 x cluster-node-timeout (detection, then the replicas' election:
 * 3.5-4 s measured at 2000 ms); hold that long plus a margin. A node that
 * would not say its timeout has Redis's default. */
#define AUTO_HOLD_MARGIN_MS 2000
#define NODE_TIMEOUT_DEFAULT_MS 15000
/* auto, before the first topology: a few entry points' connect and read
 * timeouts (control.c) */
#define AUTO_HOLD_BOOT_MS 5000

static const char E_NO_TOPOLOGY[] = "CLUSTERDOWN The cluster is down";

/* Nobody wants r: free it (a fan-out child completes its parent's count,
 * which frees the orphaned parent once every child is in). */
static void drop(struct request *r)
{
    if (r->parent)
        request_fail(r, "ERR client closed the connection");
    else
        request_free(r);
}

static void append(struct request **head, struct request **tail, struct request *r)
{
    r->lnext = NULL;
    if (*tail)
        (*tail)->lnext = r;
    else
        *head = r;
    *tail = r;
}

/* A slot the node at addr serves in the current topology, or -1. */
static int slot_of_node(const struct cluster_topology *t, const char *addr)
{
    unsigned node = t ? cluster_topology_find(t, addr) : CLUSTER_NO_NODE;
    if (node == CLUSTER_NO_NODE || !t->nodes[node].is_master)
        return -1;
    for (int s = 0; s < CLUSTER_SLOTS; s++)
        if (t->slot_master[s] == node)
            return s;
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Held                                                                      */

int64_t hold_time_ms(const struct config *cfg, const struct cluster_topology *t)
{
    if (cfg->cluster_down_timeout_ms != CONFIG_AUTO)
        return cfg->cluster_down_timeout_ms;
    if (!t)
        return AUTO_HOLD_BOOT_MS;
    int64_t nt = t->node_timeout_ms > 0 ? t->node_timeout_ms : NODE_TIMEOUT_DEFAULT_MS;
    return 2 * nt + AUTO_HOLD_MARGIN_MS;
}

static int64_t hold_time(const struct worker *w)
{
    return hold_time_ms(w->cfg, w->topo);
}

int64_t hold_boot_deadline(const struct worker *w)
{
    return w->rt->start_ms + hold_time_ms(w->cfg, NULL);
}

/* The hold time for requests for the node at addr: auto holds only for a
 * master a replica can replace; without one nothing will serve its slots
 * soon, so its requests fail at once. */
static int64_t hold_time_for(const struct worker *w, const char *addr)
{
    const struct cluster_topology *t = w->topo;
    unsigned node = t ? cluster_topology_find(t, addr) : CLUSTER_NO_NODE;
    if (w->cfg->cluster_down_timeout_ms == CONFIG_AUTO && node != CLUSTER_NO_NODE &&
        t->nodes[node].is_master && !cluster_topology_has_replica(t, node))
        return 0;
    return hold_time(w);
}

/* r cannot wait any longer for the node at addr (NULL: for a first
 * topology). redis-cluster-proxy's words after the CLUSTERDOWN prefix that
 * Redis uses, so scripts written for either recognise it. */
static void fail_held(struct request *r, const char *addr)
{
    char err[48 + CLUSTER_ADDR_MAX];
    if (!addr) {
        request_fail(r, E_NO_TOPOLOGY);
        return;
    }
    snprintf(err, sizeof err, "CLUSTERDOWN Could not connect to node %s", addr);
    request_fail(r, err);
}

/* May r be held (more)? Answers it (or drops it) and returns false when
 * not: its client left, the proxy is stopping, its hold time (hold_until,
 * set by the caller) has passed, or the worker holds too much. */
static bool hold_admit(struct worker *w, struct request *r, const char *addr)
{
    if (!request_wanted(r)) {
        drop(r);
        return false;
    }
    if (w->quiescing) {
        request_fail(r, "ERR proxy is shutting down");
        return false;
    }
    if (w->now_ms >= r->hold_until || w->held_bytes + r->len > HOLD_BYTES_MAX) {
        fail_held(r, addr); /* a node down for long fails fast */
        return false;
    }
    return true;
}

static void park_held(struct worker *w, struct request *r)
{
    r->wait = REQ_WAIT_HELD;
    w->nheld++;
    w->held_bytes += r->len;
    append(&w->held_head, &w->held_tail, r);
}

void hold_request(struct link *l, struct request *r)
{
    struct worker *w = l->w;
    r->link = NULL;
    r->asking = false; /* re-routed by slot: a new ASK comes if still needed */
    if (!r->hold_until) { /* first hold since it was last written */
        int64_t since = l->down_since ? l->down_since : w->now_ms;
        r->hold_until = since + hold_time_for(w, l->addr);
    }
    if (!hold_admit(w, r, l->addr))
        return;
    if (!r->wait_key.proto) { /* where it goes once held: parsed once */
        request_flags(w, r, &r->hold_slot);
        if (r->hold_slot < 0)
            r->hold_slot = slot_of_node(w->topo, l->addr);
        r->wait_key = (struct link_key){.proto = l->proto, .auth = l->auth};
        stat_add(&w->stats->held, 1);
    }
    park_held(w, r);
}

void hold_unrouted(struct worker *w, struct request *r, int slot, struct link_key key)
{
    r->link = NULL;
    if (!r->hold_until)
        r->hold_until = hold_boot_deadline(w);
    if (!hold_admit(w, r, NULL))
        return;
    if (!r->wait_key.proto) {
        r->hold_slot = slot;
        r->wait_key = key;
        stat_add(&w->stats->held, 1);
    }
    park_held(w, r);
}

/* Every held request once, in order: routed again. One whose node is still
 * down (or that still has no topology) is held again, at the tail, keeping
 * the order, or fails there once its time is up (hold_admit): a request
 * whose slot has a master that answers goes out even if its time is up. */
void hold_pass(struct worker *w)
{
    struct request *r = w->held_head;
    w->held_head = w->held_tail = NULL;
    w->nheld = 0;
    w->held_bytes = 0;
    while (r) {
        struct request *next = r->lnext;
        r->lnext = NULL;
        r->wait = REQ_WAIT_NONE;
        if (!request_wanted(r))
            drop(r);
        else if (request_client(r)->peer_eof) /* it said goodbye while the node was lost:
                                 not run later behind its back */
            request_fail(r, "ERR not sent: the client closed its side while the node was lost");
        else
            route_to_slot(w, r, r->hold_slot, r->wait_key);
        r = next;
    }
}

/* ------------------------------------------------------------------------ */
/* Retried                                                                   */

/* The retry window for this error reply, or -1 if it is not retried. The
 * node did not run the command for any of these, so writes are safe too.
 * -CLUSTERDOWN is what every node answers between a master's failure and
 * its replacement: it gets the hold time, like a lost link. */
static int64_t retry_window(const struct worker *w, const char *e, size_t len)
{
    static const char *const busy[] = {"-TRYAGAIN", "-LOADING", "-MASTERDOWN", "-BUSY"};
    int64_t hold = hold_time(w);
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++) {
        size_t n = strlen(busy[i]);
        if (len > n && memcmp(e, busy[i], n) == 0 && (e[n] == ' ' || e[n] == '\r'))
            return hold > RETRY_MIN_WINDOW_MS ? hold : RETRY_MIN_WINDOW_MS;
    }
    if (len > 13 && memcmp(e, "-CLUSTERDOWN ", 13) == 0)
        return hold;
    return -1;
}

static void park_retry(struct link *l, struct request *r)
{
    struct worker *w = l->w;
    r->retry_link = l;
    r->link = NULL;
    r->wait = REQ_WAIT_RETRY;
    w->nretry++;
    append(&w->retry_head, &w->retry_tail, r);
}

bool hold_retry(struct link *l, struct request *r, const char *reply, size_t len)
{
    struct worker *w = l->w;
    int64_t window = retry_window(w, reply, len);
    if (window >= 0 && l->reader) { /* -MASTERDOWN & co. from a replica */
        replica_fallback(l, r);
        return true;
    }
    if (window < 0 || l->kind != LINK_SHARED || r->is_block || !request_wanted(r) || w->quiescing)
        return false;
    if (!r->retry_first)
        r->retry_first = w->now_ms;
    if (r->retries >= RETRY_MAX || w->now_ms - r->retry_first >= window)
        return false;
    int64_t backoff = (int64_t)RETRY_BACKOFF_MS << r->retries;
    struct client *c = request_client(r);
    if (!r->retries && c)
        c->nretrying++; /* until its final reply (hold_retry_done) */
    r->retries++;
    r->retry_at = w->now_ms + (backoff < RETRY_BACKOFF_MAX_MS ? backoff : RETRY_BACKOFF_MAX_MS);
    park_retry(l, r);
    stat_add(&w->stats->retried, 1);
    return true;
}

bool hold_behind_retry(struct link *l, struct request *r)
{
    struct client *c = request_client(r);
    if (!c || !(c->nretrying || c->nbehind) || r->retries || r->redirects || l->w->quiescing)
        return false; /* a redirected one may be older than the retries */
    r->retry_at = 0;
    c->nbehind++;
    park_retry(l, r);
    return true;
}

void hold_retry_done(struct request *r)
{
    struct client *c = request_client(r);
    if (!c)
        return;
    assert(c->nretrying > 0);
    if (--c->nretrying == 0 && c->nbehind)
        c->w->retry_due = true;
}

/* Must r stay in the retry queue? A retried request waits for its backoff;
 * those parked behind wait, together and in order, for the client's
 * retries to end. */
static bool retry_waits(struct worker *w, const struct request *r, const struct client *c)
{
    return r->retries ? w->now_ms < r->retry_at : c->nretrying > 0;
}

void retry_pass(struct worker *w)
{
    struct request *r = w->retry_head;
    w->retry_head = w->retry_tail = NULL;
    w->nretry = 0;
    w->retry_due = false;
    while (r) {
        struct request *next = r->lnext;
        struct client *c = request_client(r);
        if (!c) { /* its client left */
            r->wait = REQ_WAIT_NONE;
            drop(r);
        } else if (retry_waits(w, r, c)) {
            w->nretry++;
            append(&w->retry_head, &w->retry_tail, r);
        } else {
            r->wait = REQ_WAIT_NONE;
            if (!r->retries)
                c->nbehind--;
            link_enqueue_retried(r->retry_link, r); /* held there if it went down */
        }
        r = next;
    }
}

void hold_fail_all(struct worker *w, const char *err)
{
    struct request *lists[2] = {w->held_head, w->retry_head};
    w->held_head = w->held_tail = w->retry_head = w->retry_tail = NULL;
    w->nheld = w->nretry = 0;
    w->held_bytes = 0;
    for (int i = 0; i < 2; i++)
        for (struct request *r = lists[i], *next; r; r = next) {
            next = r->lnext;
            r->lnext = NULL;
            r->wait = REQ_WAIT_NONE;
            request_fail(r, err);
        }
}
