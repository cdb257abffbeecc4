/*
 * Fan-out: one client command answered by several backend commands.
 *
 *   client FIFO:  … ─ parent ─ …            (keeps the client's reply order)
 *                      │ fan->children
 *        ┌─────────────┼──────────────┐
 *     child (slot A) child (slot B)  child (master 3)   each queued on a link
 *        └──── replies copied into the children ────┘
 *                      ▼ when the last one arrives
 *                merge (enum merge_kind) ─► request_reply(parent)
 *
 * Cross-slot commands are split per slot, not per node: Redis Cluster
 * refuses a multi-key command across slots even when one node owns them
 * all. Children for the same node are queued in the same loop iteration,
 * so they leave in one write.
 *
 * Ownership: the parent owns its children (fan->children). A child is on
 * at most one link until its reply arrives; the parent is freed only once
 * every child has replied, even if its client left (then nothing is sent).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define SCAN_CURSOR_BITS 48
#define SCAN_CURSOR_MASK ((1ull << SCAN_CURSOR_BITS) - 1)

struct request *request_from_args(struct worker *w, int argc, const char **argv,
                                  const size_t *lens)
{
    struct resp_buf b = {0};
    resp_write_command(&b, argc, argv, lens);
    (void)w;
    return request_adopt(&b);
}

static struct request *new_parent(struct client *c, enum merge_kind kind, size_t n)
{
    struct request *p = client_request_new(c);
    p->state = REQ_QUEUED;
    p->fan = calloc(1, sizeof *p->fan);
    if (!p->fan)
        abort();
    p->fan->kind = kind;
    p->fan->children = calloc(n, sizeof *p->fan->children);
    if (!p->fan->children)
        abort();
    return p;
}

static void add_child(struct request *p, struct request *child)
{
    child->parent = p;
    child->state = REQ_QUEUED;
    p->fan->children[p->fan->n++] = child;
    p->fan->pending++;
}

void fanout_free(struct request *p)
{
    struct fanout *f = p->fan;
    for (size_t i = 0; i < f->n; i++) {
        assert(!f->children[i]->link);
        request_free(f->children[i]);
    }
    free(f->children);
    free(f->key_child);
    free(f->key_pos);
    free(f->prefix);
    free(f);
    p->fan = NULL;
}

/* ------------------------------------------------------------------------ */
/* Reading children's replies                                                */

/* Parse "<type><integer>\r\n" at the start of rep. */
static bool header_int(const char *rep, size_t len, char type, long long *out)
{
    if (len < 4 || rep[0] != type)
        return false;
    char *end;
    *out = strtoll(rep + 1, &end, 10);
    return end > rep + 1 && end < rep + len && *end == '\r';
}

/* Offset just past the first CRLF. */
static size_t after_line(const char *rep, size_t len)
{
    const char *nl = memchr(rep, '\n', len);
    return nl ? (size_t)(nl - rep) + 1 : len;
}

/* Element boundaries of an array reply: offs[i], lens[i] for its n
 * elements. Returns the count, or -1 if it is not a well-formed array. */
static long long array_elements(const char *rep, size_t len, size_t **offs, size_t **lens)
{
    long long n;
    if (!header_int(rep, len, '*', &n) && !header_int(rep, len, '~', &n))
        return -1;
    if (n < 0)
        n = 0;
    *offs = calloc((size_t)n + 1, sizeof **offs);
    *lens = calloc((size_t)n + 1, sizeof **lens);
    size_t off = after_line(rep, len);
    struct resp_reply_parser rp;
    for (long long i = 0; i < n; i++) {
        resp_reply_init(&rp);
        if (resp_parse_reply(&rp, rep + off, len - off) != RESP_OK) {
            free(*offs);
            free(*lens);
            return -1;
        }
        (*offs)[i] = off;
        (*lens)[i] = rp.len;
        off += rp.len;
    }
    return n;
}

static const struct request *first_error(const struct fanout *f)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->children[i]->reply[0] == '-' || f->children[i]->reply[0] == '!')
            return f->children[i];
    return NULL;
}

static void copy_reply(struct resp_buf *b, const struct request *r)
{
    resp_buf_append(b, r->reply, r->reply_len);
}

/* ------------------------------------------------------------------------ */
/* Merges                                                                    */

static void merge_mget(const struct fanout *f, struct resp_buf *b)
{
    size_t **offs = calloc(f->n, sizeof *offs), **lens = calloc(f->n, sizeof *lens);
    long long *counts = calloc(f->n, sizeof *counts);
    bool ok = true;
    for (size_t i = 0; i < f->n; i++) {
        const struct request *c = f->children[i];
        counts[i] = array_elements(c->reply, c->reply_len, &offs[i], &lens[i]);
        ok = ok && counts[i] >= 0;
    }
    for (size_t k = 0; ok && k < f->nkeys; k++)
        ok = (long long)f->key_pos[k] < counts[f->key_child[k]];
    if (ok) {
        resp_write_array_head(b, (long long)f->nkeys);
        for (size_t k = 0; k < f->nkeys; k++) {
            const struct request *c = f->children[f->key_child[k]];
            size_t pos = f->key_pos[k];
            resp_buf_append(b, c->reply + offs[f->key_child[k]][pos],
                            lens[f->key_child[k]][pos]);
        }
    } else {
        resp_write_error(b, "ERR unexpected reply from a cluster node");
    }
    for (size_t i = 0; i < f->n; i++)
        if (counts[i] >= 0) {
            free(offs[i]);
            free(lens[i]);
        }
    free(offs);
    free(lens);
    free(counts);
}

static void merge_integers(const struct fanout *f, struct resp_buf *b, bool min)
{
    long long acc = 0;
    for (size_t i = 0; i < f->n; i++) {
        long long v;
        const struct request *c = f->children[i];
        if (!header_int(c->reply, c->reply_len, ':', &v)) {
            copy_reply(b, c);
            return;
        }
        acc = (i == 0) ? v : min ? (v < acc ? v : acc) : acc + v;
    }
    resp_write_integer(b, acc);
}

static void merge_concat(const struct fanout *f, struct resp_buf *b)
{
    long long total = 0;
    for (size_t i = 0; i < f->n; i++) {
        long long n;
        const struct request *c = f->children[i];
        if (!header_int(c->reply, c->reply_len, '*', &n)) {
            copy_reply(b, c);
            return;
        }
        total += n > 0 ? n : 0;
    }
    resp_write_array_head(b, total);
    for (size_t i = 0; i < f->n; i++) {
        const struct request *c = f->children[i];
        size_t head = after_line(c->reply, c->reply_len);
        resp_buf_append(b, c->reply + head, c->reply_len - head);
    }
}

static bool is_null(const struct request *c)
{
    return (c->reply_len == 5 && (memcmp(c->reply, "$-1\r\n", 5) == 0 ||
                                  memcmp(c->reply, "*-1\r\n", 5) == 0)) ||
           (c->reply_len == 3 && c->reply[0] == '_');
}

static void merge_first_nonnull(const struct fanout *f, struct resp_buf *b)
{
    for (size_t i = 0; i < f->n; i++)
        if (!is_null(f->children[i]) && f->children[i]->reply[0] != '-') {
            copy_reply(b, f->children[i]);
            return;
        }
    copy_reply(b, f->children[0]);
}

static void merge_and_array(const struct fanout *f, struct resp_buf *b)
{
    size_t *offs0, *lens0;
    long long n = array_elements(f->children[0]->reply, f->children[0]->reply_len,
                                 &offs0, &lens0);
    if (n < 0) {
        copy_reply(b, f->children[0]);
        return;
    }
    long long *acc = calloc((size_t)n + 1, sizeof *acc);
    for (long long k = 0; k < n; k++)
        acc[k] = 1;
    for (size_t i = 0; i < f->n; i++) {
        const struct request *c = f->children[i];
        size_t *offs, *lens;
        long long m = array_elements(c->reply, c->reply_len, &offs, &lens);
        for (long long k = 0; k < n && k < m; k++) {
            long long v = 0;
            header_int(c->reply + offs[k], lens[k], ':', &v);
            acc[k] = acc[k] && v;
        }
        if (m >= 0) {
            free(offs);
            free(lens);
        }
    }
    resp_write_array_head(b, n);
    for (long long k = 0; k < n; k++)
        resp_write_integer(b, acc[k]);
    free(acc);
    free(offs0);
    free(lens0);
}

static void merge_scan(const struct fanout *f, struct resp_buf *b)
{
    const struct request *c = f->children[0];
    size_t *offs, *lens;
    long long n = array_elements(c->reply, c->reply_len, &offs, &lens);
    if (n != 2) {
        copy_reply(b, c);
        if (n >= 0) {
            free(offs);
            free(lens);
        }
        return;
    }
    /* element 0 is "$<len>\r\n<cursor>\r\n" */
    const char *cur = c->reply + offs[0];
    unsigned long long node_cursor = strtoull(cur + after_line(cur, lens[0]), NULL, 10);
    unsigned long long out;
    if (node_cursor != 0)
        out = ((unsigned long long)f->scan_check << 56) |
              ((unsigned long long)f->scan_shard << SCAN_CURSOR_BITS) |
              (node_cursor & SCAN_CURSOR_MASK);
    else if (f->scan_shard + 1 < f->scan_nshards)
        out = (unsigned long long)(f->scan_shard + 1) << SCAN_CURSOR_BITS;
    else
        out = 0;
    char num[24];
    int len = snprintf(num, sizeof num, "%llu", out);
    resp_write_array_head(b, 2);
    resp_write_bulk(b, num, (size_t)len);
    resp_buf_append(b, c->reply + offs[1], lens[1]);
    free(offs);
    free(lens);
}

/* PUBSUB NUMSUB: every node lists the same names in the same order. */
static void merge_pairs(const struct fanout *f, struct resp_buf *b)
{
    size_t *offs0, *lens0;
    const struct request *c0 = f->children[0];
    long long n = array_elements(c0->reply, c0->reply_len, &offs0, &lens0);
    if (n < 0 || n % 2) {
        copy_reply(b, c0);
        if (n >= 0) {
            free(offs0);
            free(lens0);
        }
        return;
    }
    long long *sum = calloc((size_t)n / 2 + 1, sizeof *sum);
    for (size_t i = 0; i < f->n; i++) {
        const struct request *c = f->children[i];
        size_t *offs, *lens;
        long long m = array_elements(c->reply, c->reply_len, &offs, &lens);
        for (long long k = 1; k < n && k < m; k += 2) {
            long long v = 0;
            header_int(c->reply + offs[k], lens[k], ':', &v);
            sum[k / 2] += v;
        }
        if (m >= 0) {
            free(offs);
            free(lens);
        }
    }
    resp_write_array_head(b, n);
    for (long long k = 0; k < n; k += 2) {
        resp_buf_append(b, c0->reply + offs0[k], lens0[k]);
        resp_write_integer(b, sum[k / 2]);
    }
    free(sum);
    free(offs0);
    free(lens0);
}

struct element {
    const char *p;
    size_t len;
};

static int element_cmp(const void *a, const void *b)
{
    const struct element *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* PUBSUB CHANNELS: a channel may have subscribers on several nodes. */
static void merge_union(const struct fanout *f, struct resp_buf *b)
{
    size_t total = 0, used = 0;
    for (size_t i = 0; i < f->n; i++) {
        long long n;
        if (!header_int(f->children[i]->reply, f->children[i]->reply_len, '*', &n)) {
            copy_reply(b, f->children[i]);
            return;
        }
        total += n > 0 ? (size_t)n : 0;
    }
    struct element *all = calloc(total + 1, sizeof *all);
    for (size_t i = 0; i < f->n; i++) {
        const struct request *c = f->children[i];
        size_t *offs, *lens;
        long long m = array_elements(c->reply, c->reply_len, &offs, &lens);
        for (long long k = 0; k < m && used < total; k++)
            all[used++] = (struct element){c->reply + offs[k], lens[k]};
        if (m >= 0) {
            free(offs);
            free(lens);
        }
    }
    qsort(all, used, sizeof *all, element_cmp);
    size_t unique = 0;
    for (size_t k = 0; k < used; k++)
        if (k == 0 || element_cmp(&all[k], &all[k - 1]) != 0)
            all[unique++] = all[k];
    resp_write_array_head(b, (long long)unique);
    for (size_t k = 0; k < unique; k++)
        resp_buf_append(b, all[k].p, all[k].len);
    free(all);
}

/* Text of a bulk or RESP3 verbatim string reply ("$n" / "=n" + "txt:"). */
static bool reply_text(const struct request *c, const char **text, size_t *len)
{
    long long n;
    if (!header_int(c->reply, c->reply_len, '$', &n) &&
        !header_int(c->reply, c->reply_len, '=', &n))
        return false;
    size_t head = after_line(c->reply, c->reply_len);
    if (n < 0 || head + (size_t)n > c->reply_len)
        return false;
    *text = c->reply + head;
    *len = (size_t)n;
    if (c->reply[0] == '=' && *len >= 4) { /* "txt:" */
        *text += 4;
        *len -= 4;
    }
    return true;
}

struct keyspace_db {
    long long keys, expires, ttl_weight;
};

/* Add the "dbN:keys=…,expires=…,avg_ttl=…" lines of one node's INFO
 * keyspace to sums[N]. */
static void sum_keyspace(const char *t, size_t len, struct keyspace_db *sums, int ndb)
{
    const char *end = t + len;
    while (t < end) {
        const char *nl = memchr(t, '\n', (size_t)(end - t));
        const char *eol = nl ? nl : end;
        int db;
        long long keys, expires, ttl;
        char line[256];
        size_t n = (size_t)(eol - t) < sizeof line - 1 ? (size_t)(eol - t) : sizeof line - 1;
        memcpy(line, t, n);
        line[n] = '\0';
        if (sscanf(line, "db%d:keys=%lld,expires=%lld,avg_ttl=%lld", &db, &keys, &expires,
                   &ttl) == 4 && db >= 0 && db < ndb) {
            sums[db].keys += keys;
            sums[db].expires += expires;
            sums[db].ttl_weight += ttl * expires;
        }
        t = eol + 1;
    }
}

#define INFO_DBS 16

/* INFO: the proxy's sections, then the masters' keyspace summed (avg_ttl
 * weighted by each node's expires), as a bulk (RESP3: verbatim) string. */
static void merge_info(const struct fanout *f, struct resp_buf *b, int proto)
{
    struct keyspace_db sums[INFO_DBS] = {{0}};
    for (size_t i = 0; i < f->n; i++) {
        const char *t;
        size_t len;
        if (reply_text(f->children[i], &t, &len))
            sum_keyspace(t, len, sums, INFO_DBS);
    }
    struct resp_buf text = {0};
    resp_buf_append(&text, f->prefix, f->prefix_len);
    resp_buf_append(&text, "# Keyspace\r\n", 12);
    for (int db = 0; db < INFO_DBS; db++) {
        if (!sums[db].keys)
            continue;
        char line[160];
        int n = snprintf(line, sizeof line, "db%d:keys=%lld,expires=%lld,avg_ttl=%lld\r\n",
                         db, sums[db].keys, sums[db].expires,
                         sums[db].expires ? sums[db].ttl_weight / sums[db].expires : 0);
        resp_buf_append(&text, line, (size_t)n);
    }
    fanout_write_text(b, proto, text.data, text.len);
    resp_buf_free(&text);
}

static void merge(const struct fanout *f, struct resp_buf *b, int proto)
{
    const struct request *err = first_error(f);
    /* INFO keeps the proxy's sections even if a node failed to answer */
    if (err && f->kind != MERGE_FIRST_NONNULL && f->kind != MERGE_INFO) {
        copy_reply(b, err);
        return;
    }
    switch (f->kind) {
    case MERGE_MGET: merge_mget(f, b); break;
    case MERGE_OK: resp_write_simple(b, "OK"); break;
    case MERGE_SUM: merge_integers(f, b, false); break;
    case MERGE_MIN: merge_integers(f, b, true); break;
    case MERGE_CONCAT: merge_concat(f, b); break;
    case MERGE_FIRST_NONNULL: merge_first_nonnull(f, b); break;
    case MERGE_FIRST: copy_reply(b, f->children[0]); break;
    case MERGE_AND_ARRAY: merge_and_array(f, b); break;
    case MERGE_SCAN: merge_scan(f, b); break;
    case MERGE_PAIRS: merge_pairs(f, b); break;
    case MERGE_UNION: merge_union(f, b); break;
    case MERGE_INFO: merge_info(f, b, proto); break;
    case MERGE_NONE: break; /* completed by its owner, never merged */
    }
}

void fanout_child_reply(struct request *child, const char *data, size_t len)
{
    struct request *p = child->parent;
    child->link = NULL;
    child->state = REQ_DONE;
    child->reply = malloc(len ? len : 1);
    if (!child->reply)
        abort();
    memcpy(child->reply, data, len);
    child->reply_len = len;
    assert(p->fan->pending > 0);
    if (--p->fan->pending > 0)
        return;
    if (!p->client) { /* the client left: nobody wants the merge */
        request_free(p);
        return;
    }
    struct resp_buf b = {0};
    merge(p->fan, &b, p->client->proto);
    request_reply(p, b.data, b.len);
    resp_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Builders                                                                  */

/* Route every child (an MGET's parts may go to replicas); the parent may
 * be complete (and freed) afterwards. */
static void route_children(struct worker *w, struct request *p, const int *slots,
                           const struct command_info *ci)
{
    size_t n = p->fan->n;
    struct client *c = p->client;
    struct link_key key = client_key(c);
    struct request **kids = p->fan->children;
    for (size_t i = 0; i < n; i++) {
        struct link *reader = replica_read_link(c, ci, slots[i]);
        if (reader)
            link_enqueue(reader, kids[i]);
        else
            route_to_slot(w, kids[i], slots[i], key);
    }
}

struct split_key {
    unsigned slot;
    uint32_t index; /* key number in the original command */
};

static int by_slot(const void *a, const void *b)
{
    const struct split_key *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Which splittable command: its step (1 = keys, 2 = key/value pairs) and
 * merge, or false. */
static bool splittable(const struct command_info *ci, int *step, enum merge_kind *kind)
{
    static const struct { const char *name; int step; enum merge_kind kind; } cmds[] = {
        {"mget", 1, MERGE_MGET}, {"mset", 2, MERGE_OK}, {"del", 1, MERGE_SUM},
        {"unlink", 1, MERGE_SUM}, {"exists", 1, MERGE_SUM}, {"touch", 1, MERGE_SUM},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(ci->name, cmds[i].name) == 0) {
            *step = cmds[i].step;
            *kind = cmds[i].kind;
            return true;
        }
    return false;
}

static struct request *split_child(struct worker *w, const struct split_key *keys,
                                   size_t nkeys, int step, const char **av, size_t *al)
{
    av[0] = w->args.argv[0];
    al[0] = w->args.lens[0];
    size_t n = 1;
    for (size_t k = 0; k < nkeys; k++)
        for (int s = 0; s < step; s++) {
            size_t arg = 1 + (size_t)keys[k].index * (size_t)step + (size_t)s;
            av[n] = w->args.argv[arg];
            al[n++] = w->args.lens[arg];
        }
    return request_from_args(w, (int)n, av, al);
}

bool fanout_split(struct client *c, const struct command_info *ci, size_t argc)
{
    struct worker *w = c->w;
    int step;
    enum merge_kind kind;
    if (!splittable(ci, &step, &kind) || argc < 2 || (argc - 1) % (size_t)step)
        return false;
    size_t nkeys = (argc - 1) / (size_t)step;
    struct split_key *keys = malloc(nkeys * sizeof *keys);
    for (size_t k = 0; k < nkeys; k++) {
        size_t arg = 1 + k * (size_t)step;
        keys[k].slot = cluster_keyslot(w->args.argv[arg], w->args.lens[arg]);
        keys[k].index = (uint32_t)k;
    }
    qsort(keys, nkeys, sizeof *keys, by_slot);
    size_t nchildren = 0;
    for (size_t k = 0; k < nkeys; k++)
        nchildren += (k == 0 || keys[k].slot != keys[k - 1].slot);

    struct request *p = new_parent(c, kind, nchildren);
    struct fanout *f = p->fan;
    int *slots = malloc(nchildren * sizeof *slots);
    const char **av = malloc(argc * sizeof *av);
    size_t *al = malloc(argc * sizeof *al);
    if (kind == MERGE_MGET) {
        f->nkeys = nkeys;
        f->key_child = malloc(nkeys * sizeof *f->key_child);
        f->key_pos = malloc(nkeys * sizeof *f->key_pos);
    }
    for (size_t k = 0; k < nkeys;) {
        size_t run = 1;
        while (k + run < nkeys && keys[k + run].slot == keys[k].slot)
            run++;
        for (size_t j = 0; kind == MERGE_MGET && j < run; j++) {
            f->key_child[keys[k + j].index] = (uint32_t)f->n;
            f->key_pos[keys[k + j].index] = (uint32_t)j;
        }
        slots[f->n] = (int)keys[k].slot;
        add_child(p, split_child(w, keys + k, run, step, av, al));
        k += run;
    }
    free(keys);
    free(av);
    free(al);
    route_children(w, p, slots, ci);
    free(slots);
    return true;
}

void fanout_all_masters(struct client *c, size_t argc, enum merge_kind kind)
{
    struct worker *w = c->w;
    const struct cluster_topology *t = w->topo;
    if (!t || t->nmasters == 0) {
        client_reply_error(c, "CLUSTERDOWN The cluster is down");
        return;
    }
    struct request *p = new_parent(c, kind, t->nmasters);
    for (size_t m = 0; m < t->nmasters; m++)
        add_child(p, request_from_args(w, (int)argc, w->args.argv, w->args.lens));
    size_t n = p->fan->n;
    struct request **kids = p->fan->children;
    for (size_t m = 0; m < n; m++)
        route_to_node(w, kids[m], (unsigned)m, client_key(c));
}

void fanout_to_links(struct client *c, size_t argc, struct link **links, size_t n,
                     enum merge_kind kind)
{
    struct worker *w = c->w;
    struct request *p = new_parent(c, kind, n);
    for (size_t i = 0; i < n; i++)
        add_child(p, request_from_args(w, (int)argc, w->args.argv, w->args.lens));
    struct request **kids = p->fan->children;
    for (size_t i = 0; i < n; i++)
        link_enqueue(links[i], kids[i]);
}

/* 7 check bits of a node, so a cursor handed out by one node is never
 * continued on another (its cursors mean nothing there). */
static uint8_t node_check(const struct cluster_node *n)
{
    uint32_t h = 2166136261u;
    for (const char *s = n->addr; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    for (const char *s = n->id; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return (uint8_t)(h & 0x7f);
}

/*
 * SCAN over every master in turn. The cursor the client sees: bit 63
 * clear, bits 56-62 check bits of the node, bits 48-55 the shard (masters
 * ordered by first slot), bits 0-47 that node's own cursor.
 */
void fanout_scan(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    const struct cluster_topology *t = w->topo;
    char *end;
    char num[24];
    if (w->args.lens[1] == 0 || w->args.lens[1] >= sizeof num) {
        client_reply_error(c, "ERR invalid cursor");
        return;
    }
    memcpy(num, w->args.argv[1], w->args.lens[1]);
    num[w->args.lens[1]] = '\0';
    unsigned long long cursor = strtoull(num, &end, 10);
    if (*end || num[0] == '-') {
        client_reply_error(c, "ERR invalid cursor");
        return;
    }
    if (!t || t->nmasters == 0) {
        client_reply_error(c, "CLUSTERDOWN The cluster is down");
        return;
    }
    unsigned shard = (unsigned)((cursor >> SCAN_CURSOR_BITS) & 0xff);
    uint8_t check = (uint8_t)((cursor >> 56) & 0x7f);
    unsigned long long node_cursor = cursor & SCAN_CURSOR_MASK;
    if (shard >= t->nmasters) {
        client_reply_bytes(c, "*2\r\n$1\r\n0\r\n*0\r\n", 15);
        return;
    }
    uint8_t now_check = node_check(&t->nodes[shard]);
    if (node_cursor != 0 && check != now_check)
        node_cursor = 0; /* the shard's node changed: restart it */
    int len = snprintf(num, sizeof num, "%llu", node_cursor);
    const char *saved = w->args.argv[1];
    size_t saved_len = w->args.lens[1];
    w->args.argv[1] = num;
    w->args.lens[1] = (size_t)len;
    struct request *p = new_parent(c, MERGE_SCAN, 1);
    p->fan->scan_shard = shard;
    p->fan->scan_check = now_check;
    p->fan->scan_nshards = (unsigned)t->nmasters;
    add_child(p, request_from_args(w, (int)argc, w->args.argv, w->args.lens));
    w->args.argv[1] = saved;
    w->args.lens[1] = saved_len;
    route_to_node(w, p->fan->children[0], shard, client_key(c));
}

/* ------------------------------------------------------------------------ */
/* INFO and placeholders                                                     */

void fanout_write_text(struct resp_buf *b, int proto, const char *text, size_t len)
{
    if (proto != 3) {
        resp_write_bulk(b, text, len);
        return;
    }
    char head[32];
    int n = snprintf(head, sizeof head, "=%zu\r\ntxt:", len + 4);
    resp_buf_append(b, head, (size_t)n);
    resp_buf_append(b, text, len);
    resp_buf_append(b, "\r\n", 2);
}

void fanout_info(struct client *c, const char *text, size_t len)
{
    struct worker *w = c->w;
    const struct cluster_topology *t = w->topo;
    size_t n = t ? t->nmasters : 0;
    struct request *p = new_parent(c, MERGE_INFO, n ? n : 1);
    p->fan->prefix = malloc(len ? len : 1);
    if (!p->fan->prefix)
        abort();
    memcpy(p->fan->prefix, text, len);
    p->fan->prefix_len = len;
    if (n == 0) { /* no cluster yet: no keyspace to sum */
        struct resp_buf b = {0};
        merge_info(p->fan, &b, c->proto);
        request_reply(p, b.data, b.len);
        resp_buf_free(&b);
        return;
    }
    static const char *av[2] = {"INFO", "keyspace"};
    static const size_t al[2] = {4, 8};
    for (size_t m = 0; m < n; m++)
        add_child(p, request_from_args(w, 2, av, al));
    struct request **kids = p->fan->children;
    for (size_t m = 0; m < n; m++)
        route_to_node(w, kids[m], (unsigned)m, client_key(c));
}

struct request *fanout_placeholder(struct client *c)
{
    return new_parent(c, MERGE_NONE, 1);
}

void fanout_placeholder_done(struct request *p, const char *data, size_t len)
{
    if (p->client)
        request_reply(p, data, len);
    else
        request_free(p); /* its client left meanwhile */
}
