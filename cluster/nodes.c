/*
 * nodes.c — CLUSTER NODES views, merged by config epoch (see cluster.h).
 *
 * A line of CLUSTER NODES:
 *
 *   <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch>
 *   <link-state> <slot or range>...
 *
 * with flags a comma list (myself, master, slave, fail?, fail, handshake,
 * noaddr, nofailover, noflags) and slots "a-b", "a", or "[a->-id]" /
 * "[a-<-id]" for a migration in progress (skipped: ASK handles those). The
 * text comes from the network, so every field is checked and every count
 * is bounded by the bytes actually received.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"

#define ID_MAX 40

struct view_node {
    char id[ID_MAX + 1];
    char host[CLUSTER_ADDR_MAX - 8];
    uint16_t port;
    char master[ID_MAX + 1]; /* replica: its master's id; "" otherwise */
    uint64_t epoch;
    bool is_master;
    bool failed;             /* flagged fail (not fail?: only suspected) */
};

struct nodes_view {
    size_t n, cap;
    struct view_node *nodes;
    uint16_t owner[CLUSTER_SLOTS]; /* index into nodes, or CLUSTER_NO_NODE */
};

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */

struct field {
    const char *s;
    size_t n;
};

/* Split line [s, s+n) at spaces into at most max fields; returns how many. */
static size_t split_fields(const char *s, size_t n, struct field *f, size_t max)
{
    size_t k = 0, i = 0;
    while (i < n && k < max) {
        while (i < n && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < n && s[i] != ' ')
            i++;
        if (i > start)
            f[k++] = (struct field){s + start, i - start};
    }
    return k;
}

static bool parse_u64(struct field f, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (f.n == 0 || f.n > 20)
        return false;
    for (size_t i = 0; i < f.n; i++) {
        if (f.s[i] < '0' || f.s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(f.s[i] - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool has_flag(struct field flags, const char *name)
{
    size_t n = strlen(name), i = 0;
    while (i < flags.n) {
        size_t start = i;
        while (i < flags.n && flags.s[i] != ',')
            i++;
        if (i - start == n && memcmp(flags.s + start, name, n) == 0)
            return true;
        i++;
    }
    return false;
}

/* "ip:port@cport[,hostname]" (or "ip:port" from old servers). */
static const char *parse_addr(struct field a, const char *asked_host, struct view_node *nd)
{
    size_t end = 0;
    while (end < a.n && a.s[end] != '@' && a.s[end] != ',')
        end++;
    size_t colon = end;
    while (colon > 0 && a.s[colon - 1] != ':')
        colon--;
    if (colon == 0)
        return "node address has no port";
    uint64_t port;
    if (!parse_u64((struct field){a.s + colon, end - colon}, 65535, &port))
        return "node port is not a number";
    nd->port = (uint16_t)port;
    const char *host = a.s;
    size_t hl = colon - 1;
    if (hl == 0 && asked_host) {
        host = asked_host;
        hl = strlen(asked_host);
    }
    if (hl >= sizeof nd->host || memchr(host, '\0', hl))
        return "node ip is too long";
    memcpy(nd->host, host, hl);
    nd->host[hl] = '\0';
    return NULL;
}

static bool copy_id(struct field f, char *out)
{
    if (f.n == 0 || f.n > ID_MAX || memchr(f.s, '\0', f.n))
        return false;
    memcpy(out, f.s, f.n);
    out[f.n] = '\0';
    return true;
}

/* "a-b" or "a" → owner[a..b] = idx. Migration markers are skipped. */
static const char *parse_slots(struct nodes_view *v, struct field f, uint16_t idx)
{
    if (f.n > 0 && f.s[0] == '[')
        return NULL;
    const char *dash = memchr(f.s, '-', f.n);
    uint64_t a, b;
    size_t an = dash ? (size_t)(dash - f.s) : f.n;
    if (!parse_u64((struct field){f.s, an}, CLUSTER_SLOTS - 1, &a))
        return "slot is not a number in 0..16383";
    b = a;
    if (dash && !parse_u64((struct field){dash + 1, f.n - an - 1}, CLUSTER_SLOTS - 1, &b))
        return "slot range end is not a number in 0..16383";
    if (b < a)
        return "slot range ends before it starts";
    for (uint64_t s = a; s <= b; s++) {
        if (v->owner[s] != CLUSTER_NO_NODE)
            return "a slot is claimed twice";
        v->owner[s] = idx;
    }
    return NULL;
}

static struct view_node *add_node(struct nodes_view *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct view_node *nodes = realloc(v->nodes, cap * sizeof *nodes);
        if (!nodes)
            abort();
        v->nodes = nodes;
        v->cap = cap;
    }
    struct view_node *nd = &v->nodes[v->n];
    memset(nd, 0, sizeof *nd);
    return nd;
}

#define MAX_FIELDS (8 + CLUSTER_SLOTS)

static const char *parse_line(struct nodes_view *v, const char *s, size_t n,
                              const char *asked_host, struct field *f)
{
    size_t k = split_fields(s, n, f, MAX_FIELDS);
    if (k == 0)
        return NULL; /* blank line */
    if (k < 8)
        return "CLUSTER NODES line has fewer than 8 fields";
    if (has_flag(f[2], "handshake") || has_flag(f[2], "noaddr"))
        return NULL; /* not a usable member (yet) */
    if (v->n >= CLUSTER_NO_NODE - 1)
        return "too many nodes";
    struct view_node *nd = add_node(v);
    const char *err = NULL;
    if (!copy_id(f[0], nd->id))
        return "node id is not 1..40 bytes";
    if ((err = parse_addr(f[1], asked_host, nd)) != NULL)
        return err;
    if (nd->port == 0)
        return NULL; /* no address yet */
    nd->is_master = has_flag(f[2], "master");
    nd->failed = has_flag(f[2], "fail");
    if (!(f[3].n == 1 && f[3].s[0] == '-') && !copy_id(f[3], nd->master))
        return "master id is not 1..40 bytes";
    if (!parse_u64(f[6], UINT64_MAX, &nd->epoch))
        return "config epoch is not a number";
    uint16_t idx = (uint16_t)v->n++;
    for (size_t i = 8; i < k && nd->is_master && !err; i++)
        err = parse_slots(v, f[i], idx);
    return err;
}

struct nodes_view *nodes_view_parse(const char *text, size_t len, const char *asked_host,
                                    const char **err)
{
    struct nodes_view *v = calloc(1, sizeof *v);
    struct field *f = malloc(MAX_FIELDS * sizeof *f);
    if (!v || !f)
        abort();
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        v->owner[s] = CLUSTER_NO_NODE;
    *err = NULL;
    size_t i = 0;
    while (i < len && !*err) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - i;
        if (n > 0 && text[end - 1] == '\r')
            n--;
        *err = parse_line(v, text + i, n, asked_host, f);
        i = end + 1;
    }
    free(f);
    if (!*err && v->n == 0)
        *err = "CLUSTER NODES lists no usable node";
    if (*err) {
        nodes_view_free(v);
        return NULL;
    }
    return v;
}

void nodes_view_free(struct nodes_view *v)
{
    if (!v)
        return;
    free(v->nodes);
    free(v);
}

unsigned nodes_view_covered(const struct nodes_view *v)
{
    unsigned n = 0;
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        n += v->owner[s] != CLUSTER_NO_NODE;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Merging                                                                   */

struct merged {
    struct view_node rec;  /* from the view that knows it with the highest epoch */
    bool owner;            /* serves slots after the merge */
    size_t nrep, rep0;     /* its replicas: reps[rep0 .. rep0+nrep) */
};

struct merge {
    struct merged *m;
    size_t n;
    uint16_t owner[CLUSTER_SLOTS];
    uint64_t epoch[CLUSTER_SLOTS];
    size_t *reps;
};

static size_t find_id(const struct merge *mg, const char *id)
{
    for (size_t i = 0; i < mg->n; i++)
        if (strcmp(mg->m[i].rec.id, id) == 0)
            return i;
    return SIZE_MAX;
}

/* Add v's nodes; map[i] = merged index of v's node i. */
static void merge_nodes(struct merge *mg, const struct nodes_view *v, size_t *map)
{
    for (size_t i = 0; i < v->n; i++) {
        const struct view_node *nd = &v->nodes[i];
        size_t j = find_id(mg, nd->id);
        if (j == SIZE_MAX) {
            j = mg->n++;
            mg->m[j] = (struct merged){.rec = *nd};
        } else if (nd->epoch > mg->m[j].rec.epoch) {
            mg->m[j].rec = *nd;
        }
        map[i] = j;
    }
}

/* Each slot goes to the claim with the highest epoch (earlier views win
 * ties), as Redis Cluster settles conflicts. */
static void merge_slots(struct merge *mg, const struct nodes_view *v, const size_t *map)
{
    for (size_t s = 0; s < CLUSTER_SLOTS; s++) {
        uint16_t o = v->owner[s];
        if (o == CLUSTER_NO_NODE)
            continue;
        uint64_t e = v->nodes[o].epoch;
        if (mg->owner[s] == CLUSTER_NO_NODE || e > mg->epoch[s]) {
            mg->owner[s] = (uint16_t)map[o];
            mg->epoch[s] = e;
        }
    }
}

/* Replicas: non-owners whose freshest record names an owner as master and
 * that are not flagged fail (CLUSTER SLOTS leaves those out too). */
static void group_replicas(struct merge *mg)
{
    size_t *master = malloc((mg->n ? mg->n : 1) * sizeof *master);
    mg->reps = malloc((mg->n ? mg->n : 1) * sizeof *mg->reps);
    if (!master || !mg->reps)
        abort();
    for (size_t i = 0; i < mg->n; i++) {
        const struct merged *x = &mg->m[i];
        master[i] = SIZE_MAX;
        if (x->owner || x->rec.failed || !x->rec.master[0])
            continue;
        size_t j = find_id(mg, x->rec.master);
        if (j != SIZE_MAX && mg->m[j].owner) {
            master[i] = j;
            mg->m[j].nrep++;
        }
    }
    size_t at = 0;
    for (size_t j = 0; j < mg->n; j++) {
        mg->m[j].rep0 = at;
        at += mg->m[j].nrep;
        mg->m[j].nrep = 0;
    }
    for (size_t i = 0; i < mg->n; i++)
        if (master[i] != SIZE_MAX) {
            struct merged *o = &mg->m[master[i]];
            mg->reps[o->rep0 + o->nrep++] = i;
        }
    free(master);
}

static struct resp_value *alloc_elems(struct resp_value *v, enum resp_type type, size_t n)
{
    v->type = type;
    v->count = n;
    v->elems = calloc(n ? n : 1, sizeof *v->elems);
    if (!v->elems)
        abort();
    return v->elems;
}

static void node_value(struct resp_value *v, const struct view_node *nd)
{
    struct resp_value *e = alloc_elems(v, RESP_T_ARRAY, 3);
    e[0] = (struct resp_value){.type = RESP_T_BULK, .str = nd->host, .len = strlen(nd->host)};
    e[1] = (struct resp_value){.type = RESP_T_INTEGER, .integer = nd->port};
    e[2] = (struct resp_value){.type = RESP_T_BULK, .str = nd->id, .len = strlen(nd->id)};
}

/* The merge as a CLUSTER SLOTS reply: [start, end, master, replica…] per
 * run of slots with one owner. Strings point into mg. */
static void slots_value(const struct merge *mg, struct resp_value *top)
{
    size_t runs = 0;
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        runs += mg->owner[s] != CLUSTER_NO_NODE &&
                (s == 0 || mg->owner[s - 1] != mg->owner[s]);
    struct resp_value *entries = alloc_elems(top, RESP_T_ARRAY, runs);
    size_t k = 0;
    for (size_t s = 0; s < CLUSTER_SLOTS;) {
        uint16_t o = mg->owner[s];
        size_t end = s;
        while (end + 1 < CLUSTER_SLOTS && mg->owner[end + 1] == o)
            end++;
        if (o != CLUSTER_NO_NODE) {
            const struct merged *x = &mg->m[o];
            struct resp_value *e = alloc_elems(&entries[k++], RESP_T_ARRAY, 3 + x->nrep);
            e[0] = (struct resp_value){.type = RESP_T_INTEGER, .integer = (long long)s};
            e[1] = (struct resp_value){.type = RESP_T_INTEGER, .integer = (long long)end};
            node_value(&e[2], &x->rec);
            for (size_t r = 0; r < x->nrep; r++)
                node_value(&e[3 + r], &mg->m[mg->reps[x->rep0 + r]].rec);
        }
        s = end + 1;
    }
}

struct cluster_topology *nodes_merge(struct nodes_view *const *views, size_t n,
                                     const char **err)
{
    struct merge *mg = calloc(1, sizeof *mg);
    size_t total = 0, maxn = 0;
    for (size_t i = 0; i < n; i++) {
        total += views[i]->n;
        maxn = views[i]->n > maxn ? views[i]->n : maxn;
    }
    size_t *map = malloc((maxn ? maxn : 1) * sizeof *map);
    if (!mg || !map || !(mg->m = calloc(total ? total : 1, sizeof *mg->m)))
        abort();
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        mg->owner[s] = CLUSTER_NO_NODE;
    for (size_t i = 0; i < n; i++) {
        merge_nodes(mg, views[i], map);
        merge_slots(mg, views[i], map);
    }
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        if (mg->owner[s] != CLUSTER_NO_NODE)
            mg->m[mg->owner[s]].owner = true;
    group_replicas(mg);
    struct resp_value top = {0};
    slots_value(mg, &top);
    struct cluster_topology *t = cluster_topology_from_slots(&top, NULL, err);
    resp_value_free(&top);
    free(map);
    free(mg->reps);
    free(mg->m);
    free(mg);
    return t;
}
