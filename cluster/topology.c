/*
 * topology.c — the backend's nodes and slot → master table, built from a
 * parsed CLUSTER SLOTS reply.
 *
 *   CLUSTER SLOTS ─► read_entry (per slot range) ─► pending nodes, deduped
 *                    by "ip:port" through a small hash; slot_master holds
 *                    pending indexes
 *                 ─► order: masters by their first slot, then replicas by
 *                    (their master, first appearance)
 *                 ─► final nodes[] and slot_master remapped to it
 *
 * A reply entry is [start, end, master, replica…]; a node is
 * [ip, port, id?, metadata?] (Redis 7 adds a hostname map as a 4th element,
 * which is ignored). Everything is validated: the reply comes from outside.
 * The result is immutable and owned by the caller.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"

/* Nodes get uint16_t indexes and CLUSTER_NO_NODE is reserved. */
#define MAX_NODES (CLUSTER_NO_NODE - 1)

/* A node while the reply is read, before the final order is known. */
struct pending_node {
    struct cluster_node node;
    unsigned first_slot; /* masters: lowest slot served */
    size_t master;       /* replicas: pending index of their master */
    size_t seq;          /* order of first appearance */
    size_t final;        /* index in the finished nodes[] */
};

struct builder {
    struct pending_node *nodes;
    size_t n;            /* at most the reply's node mentions */
    uint32_t *hash;      /* open addressing, pending index + 1; 0 = empty */
    size_t hash_mask;
    const char *asked_host;
    uint16_t *slots;     /* the topology's slot_master, pending indexes */
};

static uint32_t addr_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static bool is_string(const struct resp_value *v)
{
    return v->type == RESP_T_BULK || v->type == RESP_T_SIMPLE ||
           v->type == RESP_T_VERBATIM;
}

static bool is_absent(const struct resp_value *v)
{
    return v->is_null || v->type == RESP_T_NULL;
}

static bool is_list(const struct resp_value *v)
{
    return (v->type == RESP_T_ARRAY || v->type == RESP_T_SET) && !v->is_null;
}

/*
 * Fill n's address fields from [ip, port, id?]. An empty or null ip is "the
 * address you asked". Returns NULL or a static error text.
 */
static const char *read_node_addr(const struct resp_value *v, const char *asked_host,
                                  struct cluster_node *n)
{
    if (!is_list(v) || v->count < 2)
        return "node entry is not [ip, port, ...]";
    const struct resp_value *ip = &v->elems[0], *port = &v->elems[1];
    const char *host = ip->str;
    size_t hlen = ip->len;

    if (!is_absent(ip) && !is_string(ip))
        return "node ip is not a string";
    if (is_absent(ip) || hlen == 0) {
        if (asked_host == NULL || asked_host[0] == '\0')
            return "node has no ip and no asked host was given";
        host = asked_host;
        hlen = strlen(asked_host);
    }
    if (hlen >= sizeof(n->host) || memchr(host, '\0', hlen) != NULL)
        return "node ip is too long or not text";
    if (port->type != RESP_T_INTEGER || port->integer <= 0 || port->integer > 65535)
        return "node port is not an integer in 1..65535";
    memcpy(n->host, host, hlen);
    n->host[hlen] = '\0';
    n->port = (uint16_t)port->integer;
    /* An IPv6 literal needs brackets so the port stays separable. */
    snprintf(n->addr, sizeof(n->addr), memchr(host, ':', hlen) ? "[%s]:%u" : "%s:%u",
             n->host, (unsigned)n->port);

    n->id[0] = '\0';
    if (v->count >= 3 && !is_absent(&v->elems[2])) {
        const struct resp_value *id = &v->elems[2];
        if (!is_string(id) || id->len >= sizeof(n->id))
            return "node id is not a string of at most 40 bytes";
        memcpy(n->id, id->str, id->len);
        n->id[id->len] = '\0';
    }
    return NULL;
}

/* Pending index of the node with n's address, adding it if new. */
static const char *intern_node(struct builder *b, const struct cluster_node *n,
                               size_t *index)
{
    size_t h = addr_hash(n->addr) & b->hash_mask;

    for (; b->hash[h] != 0; h = (h + 1) & b->hash_mask) {
        if (strcmp(b->nodes[b->hash[h] - 1].node.addr, n->addr) == 0) {
            *index = b->hash[h] - 1;
            return NULL;
        }
    }
    if (b->n >= MAX_NODES)
        return "too many nodes";
    struct pending_node *p = &b->nodes[b->n];
    p->node = *n;
    p->node.is_master = false;
    p->node.master = CLUSTER_NO_NODE;
    p->node.nreaders = 0;
    p->first_slot = CLUSTER_SLOTS;
    p->master = SIZE_MAX;
    p->seq = b->n;
    b->hash[h] = (uint32_t)(b->n + 1);
    *index = b->n++;
    return NULL;
}

static const char *read_range(const struct resp_value *e, unsigned *start, unsigned *end)
{
    const struct resp_value *s = &e->elems[0], *t = &e->elems[1];

    if (s->type != RESP_T_INTEGER || t->type != RESP_T_INTEGER)
        return "slot range bounds are not integers";
    if (s->integer < 0 || t->integer >= CLUSTER_SLOTS || s->integer > t->integer)
        return "slot range out of 0..16383 or start > end";
    *start = (unsigned)s->integer;
    *end = (unsigned)t->integer;
    return NULL;
}

/* One [start, end, master, replica…] entry. */
static const char *read_entry(struct builder *b, const struct resp_value *e)
{
    struct cluster_node n;
    unsigned start, end;
    size_t m, r;
    const char *err = read_range(e, &start, &end);

    if (err == NULL)
        err = read_node_addr(&e->elems[2], b->asked_host, &n);
    if (err == NULL)
        err = intern_node(b, &n, &m);
    if (err != NULL)
        return err;
    b->nodes[m].node.is_master = true;
    if (start < b->nodes[m].first_slot)
        b->nodes[m].first_slot = start;
    for (unsigned s = start; s <= end; s++) {
        if (b->slots[s] != CLUSTER_NO_NODE)
            return "overlapping slot ranges";
        b->slots[s] = (uint16_t)m;
    }
    for (size_t i = 3; i < e->count; i++) {
        if ((err = read_node_addr(&e->elems[i], b->asked_host, &n)) != NULL ||
            (err = intern_node(b, &n, &r)) != NULL)
            return err;
        if (r == m)
            return "a node is listed as its own replica";
        if (b->nodes[r].master == SIZE_MAX)
            b->nodes[r].master = m; /* first master seen wins */
    }
    return NULL;
}

static int master_cmp(const void *a, const void *b, void *ctx)
{
    const struct pending_node *nodes = ctx;
    unsigned x = nodes[*(const size_t *)a].first_slot;
    unsigned y = nodes[*(const size_t *)b].first_slot;

    return x < y ? -1 : x > y; /* distinct: slot ranges never overlap */
}

static int replica_cmp(const void *a, const void *b, void *ctx)
{
    const struct pending_node *nodes = ctx;
    const struct pending_node *x = &nodes[*(const size_t *)a];
    const struct pending_node *y = &nodes[*(const size_t *)b];
    size_t xm = nodes[x->master].final, ym = nodes[y->master].final;

    if (xm != ym)
        return xm < ym ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* order[] = pending indexes in final order: masters by first slot, then
 * replicas grouped by master (whose final index the first sort assigns). */
static void sort_pending(struct builder *b, size_t *order)
{
    size_t nm = 0;

    for (size_t i = 0; i < b->n; i++)
        if (b->nodes[i].node.is_master)
            order[nm++] = i;
    size_t k = nm;
    for (size_t i = 0; i < b->n; i++)
        if (!b->nodes[i].node.is_master)
            order[k++] = i;
    qsort_r(order, nm, sizeof(*order), master_cmp, b->nodes);
    for (size_t i = 0; i < nm; i++)
        b->nodes[order[i]].final = i;
    qsort_r(order + nm, b->n - nm, sizeof(*order), replica_cmp, b->nodes);
    for (size_t i = nm; i < b->n; i++)
        b->nodes[order[i]].final = i;
}

/* Move pending nodes into t in their final order; remap slot_master. */
static void finish(struct builder *b, struct cluster_topology *t, const size_t *order)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct pending_node *p = &b->nodes[order[i]];
        t->nodes[i] = p->node;
        if (p->node.is_master)
            t->nmasters++;
        else
            t->nodes[i].master = (uint16_t)b->nodes[p->master].final;
    }
    t->nnodes = b->n;
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        if (t->slot_master[s] != CLUSTER_NO_NODE)
            t->slot_master[s] = (uint16_t)b->nodes[t->slot_master[s]].final;
}

/* Checks the reply's shape; returns how many node mentions it has. */
static const char *count_mentions(const struct resp_value *reply, size_t *mentions)
{
    *mentions = 0;
    if (!is_list(reply))
        return "CLUSTER SLOTS reply is not an array";
    for (size_t i = 0; i < reply->count; i++) {
        const struct resp_value *e = &reply->elems[i];
        if (!is_list(e) || e->count < 3)
            return "slot range entry is not [start, end, master, ...]";
        *mentions += e->count - 2;
    }
    return NULL;
}

static const char *build(struct builder *b, const struct resp_value *reply,
                         struct cluster_topology *t)
{
    const char *err = NULL;
    size_t *order;

    for (size_t i = 0; i < reply->count && err == NULL; i++)
        err = read_entry(b, &reply->elems[i]);
    if (err != NULL)
        return err;
    order = malloc((b->n ? b->n : 1) * sizeof(*order));
    t->nodes = calloc(b->n ? b->n : 1, sizeof(*t->nodes));
    if (order == NULL || t->nodes == NULL) {
        free(order);
        return "out of memory";
    }
    sort_pending(b, order);
    finish(b, t, order);
    free(order);
    return NULL;
}

struct cluster_topology *cluster_topology_from_slots(const struct resp_value *reply,
                                                     const char *asked_host,
                                                     const char **err)
{
    struct builder b = {.asked_host = asked_host};
    struct cluster_topology *t = NULL;
    size_t mentions, hsize = 16;

    *err = count_mentions(reply, &mentions);
    if (*err != NULL)
        return NULL;
    while (hsize < 2 * mentions)
        hsize *= 2;
    b.hash_mask = hsize - 1;
    b.nodes = calloc(mentions ? mentions : 1, sizeof(*b.nodes));
    b.hash = calloc(hsize, sizeof(*b.hash));
    t = calloc(1, sizeof(*t));
    if (b.nodes == NULL || b.hash == NULL || t == NULL) {
        *err = "out of memory";
    } else {
        for (size_t s = 0; s < CLUSTER_SLOTS; s++)
            t->slot_master[s] = CLUSTER_NO_NODE;
        b.slots = t->slot_master;
        *err = build(&b, reply, t);
    }
    free(b.nodes);
    free(b.hash);
    if (*err != NULL) {
        cluster_topology_free(t);
        return NULL;
    }
    return t;
}

void cluster_topology_free(struct cluster_topology *t)
{
    if (t == NULL)
        return;
    free(t->nodes);
    free(t);
}

struct cluster_topology *cluster_topology_dup(const struct cluster_topology *t)
{
    struct cluster_topology *d = malloc(sizeof(*d));
    struct cluster_node *nodes = malloc((t->nnodes ? t->nnodes : 1) * sizeof(*nodes));

    if (d == NULL || nodes == NULL) {
        free(d);
        free(nodes);
        return NULL;
    }
    *d = *t;
    memcpy(nodes, t->nodes, t->nnodes * sizeof(*nodes));
    d->nodes = nodes;
    return d;
}

unsigned cluster_topology_find(const struct cluster_topology *t, const char *addr)
{
    /* Linear: the control thread asks rarely and clusters have few nodes. */
    for (size_t i = 0; i < t->nnodes; i++)
        if (strcmp(t->nodes[i].addr, addr) == 0)
            return (unsigned)i;
    return CLUSTER_NO_NODE;
}

unsigned cluster_topology_covered(const struct cluster_topology *t)
{
    unsigned n = 0;

    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        n += t->slot_master[s] != CLUSTER_NO_NODE;
    return n;
}

bool cluster_topology_has_replica(const struct cluster_topology *t, unsigned master)
{
    for (size_t i = t->nmasters; i < t->nnodes; i++)
        if (t->nodes[i].master == master)
            return true;
    return false;
}

int cluster_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        unsigned long x = strtoul(a, (char **)&a, 10);
        unsigned long y = strtoul(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
        a += *a == '.';
        b += *b == '.';
        if ((*a && (*a < '0' || *a > '9')) || (*b && (*b < '0' || *b > '9')))
            return strcmp(a, b); /* "7.2.0-rc1": the rest as text */
    }
    return 0;
}
