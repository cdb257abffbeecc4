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
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../consensus/consensus.h"
#include "route.h"

/* A SCAN call whose master finished with an empty page goes on to the
 * next master, at most this many times (each is one round trip). */
#define SCAN_EMPTY_HOPS 16

struct request *request_from_args(struct worker *w, int argc, const char *const *argv,
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
    p->fan_worker = c->w;
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
    resp_buf_free(&f->scan_restart);
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
    bool map = header_int(rep, len, '%', &n);
    if (!map && !header_int(rep, len, '*', &n) && !header_int(rep, len, '~', &n))
        return -1;
    if (n < 0)
        n = 0;
    if (map) /* a RESP3 map: its keys and values, in order */
        n *= 2;
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

/* MERGE_SUM, MERGE_MIN or MERGE_MAX over integer replies. */
static void merge_integers(const struct fanout *f, struct resp_buf *b)
{
    long long acc = 0;
    for (size_t i = 0; i < f->n; i++) {
        long long v;
        const struct request *c = f->children[i];
        if (!header_int(c->reply, c->reply_len, ':', &v)) {
            copy_reply(b, c);
            return;
        }
        if (i == 0 || f->kind == MERGE_SUM)
            acc = i == 0 ? v : acc + v;
        else if (f->kind == MERGE_MIN ? v < acc : v > acc)
            acc = v;
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

/* A number that differs from call to call (no shared state: the clock's
 * nanoseconds, mixed). Good enough to pick among slots, nothing more. */
static uint64_t pick_number(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull; /* splitmix64's finaliser */
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* RANDOMKEY over own slots: each child is one slot's GETKEYSINSLOT … 1
 * (an array of at most one key); the key of a random non-empty one. */
static void merge_random_key(const struct fanout *f, struct resp_buf *b, int proto)
{
    size_t nonempty = 0;
    long long n;
    for (size_t i = 0; i < f->n; i++)
        nonempty += header_int(f->children[i]->reply, f->children[i]->reply_len, '*', &n) &&
                    n > 0;
    if (nonempty == 0) {
        resp_write_null(b, proto);
        return;
    }
    size_t pick = (size_t)(pick_number() % nonempty);
    for (size_t i = 0; i < f->n; i++) {
        const struct request *c = f->children[i];
        if (!header_int(c->reply, c->reply_len, '*', &n) || n <= 0 || pick--)
            continue;
        size_t head = after_line(c->reply, c->reply_len);
        struct resp_reply_parser rp;
        resp_reply_init(&rp);
        if (resp_parse_reply(&rp, c->reply + head, c->reply_len - head) == RESP_OK)
            resp_buf_append(b, c->reply + head, rp.len);
        else
            resp_write_error(b, "ERR unexpected reply from a cluster node");
        return;
    }
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

/* A SCAN reply's parts: the node's cursor, how many keys the page has and
 * where their array starts; false if it is not [cursor, [keys…]]. */
static bool scan_page(const struct request *c, unsigned long long *node_cursor,
                      long long *nkeys, size_t *keys_off)
{
    size_t *offs, *lens;
    long long n = array_elements(c->reply, c->reply_len, &offs, &lens);
    bool ok = n == 2;
    if (ok) { /* element 0 is "$<len>\r\n<cursor>\r\n" */
        const char *cur = c->reply + offs[0];
        *node_cursor = strtoull(cur + after_line(cur, lens[0]), NULL, 10);
        ok = header_int(c->reply + offs[1], lens[1], '*', nkeys) ||
             header_int(c->reply + offs[1], lens[1], '~', nkeys);
        *keys_off = offs[1];
    }
    if (n >= 0) {
        free(offs);
        free(lens);
    }
    return ok;
}

/* The client's cursor after this page: the same master further on, the
 * next master from its start, or 0 once the last master is done. False if
 * the node's cursor does not fit (see cluster.h). */
static bool scan_next_cursor(const struct fanout *f, unsigned long long node_cursor,
                             uint64_t *out)
{
    struct scan_cursor next = {.shard = f->scan_shard, .check = f->scan_check,
                               .node = node_cursor};
    if (node_cursor == 0) {
        if (f->scan_shard + 1 >= f->scan_nshards) {
            *out = 0;
            return true;
        }
        next = (struct scan_cursor){.shard = f->scan_shard + 1};
    }
    return scan_cursor_encode(&next, out);
}

static void merge_scan(const struct fanout *f, struct resp_buf *b)
{
    const struct request *c = f->children[0];
    unsigned long long node_cursor;
    long long nkeys;
    size_t keys;
    uint64_t out;
    if (!scan_page(c, &node_cursor, &nkeys, &keys)) {
        copy_reply(b, c);
        return;
    }
    if (!scan_next_cursor(f, node_cursor, &out)) {
        char msg[160];
        snprintf(msg, sizeof msg, "ERR a node's SCAN cursor (%llu) does not fit the %d bits "
                 "a ringslot cursor holds for it", node_cursor, SCAN_CURSOR_NODE_BITS);
        resp_write_error(b, msg);
        return;
    }
    char num[24];
    int len = snprintf(num, sizeof num, "%" PRIu64, out);
    resp_write_array_head(b, 2);
    resp_write_bulk(b, num, (size_t)len);
    resp_buf_append(b, c->reply + keys, c->reply_len - keys);
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

/* How many elements the children's arrays hold together; false (with the
 * first child that is not an array copied to b) if one is not. */
static bool count_elements(const struct fanout *f, struct resp_buf *b, size_t *total)
{
    *total = 0;
    for (size_t i = 0; i < f->n; i++) {
        long long n;
        if (!header_int(f->children[i]->reply, f->children[i]->reply_len, '*', &n)) {
            copy_reply(b, f->children[i]);
            return false;
        }
        *total += n > 0 ? (size_t)n : 0;
    }
    return true;
}

/* PUBSUB CHANNELS: a channel may have subscribers on several nodes. */
static void merge_union(const struct fanout *f, struct resp_buf *b)
{
    size_t total, used = 0;
    if (!count_elements(f, b, &total))
        return;
    struct element *all = calloc(total + 1, sizeof *all);
    if (!all)
        abort();
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

/* Text of a bulk or RESP3 verbatim string ("$n" / "=n" + "txt:") that
 * starts at rep. */
static bool string_text(const char *rep, size_t rep_len, const char **text, size_t *len)
{
    long long n;
    if (!header_int(rep, rep_len, '$', &n) && !header_int(rep, rep_len, '=', &n))
        return false;
    size_t head = after_line(rep, rep_len);
    if (n < 0 || head + (size_t)n > rep_len)
        return false;
    *text = rep + head;
    *len = (size_t)n;
    if (rep[0] == '=' && *len >= 4) { /* "txt:" */
        *text += 4;
        *len -= 4;
    }
    return true;
}

static bool reply_text(const struct request *c, const char **text, size_t *len)
{
    return string_text(c->reply, c->reply_len, text, len);
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

/* One SLOWLOG GET entry: [id, timestamp, duration, args, addr, name]. */
struct slow_entry {
    const char *p;
    size_t len;
    size_t rest;              /* offset of the element after the id */
    long long ts;
    unsigned long long id;    /* renumbered: unique over the masters */
};

static int slow_newest_first(const void *a, const void *b)
{
    const struct slow_entry *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? 1 : -1;
    return x->id < y->id ? 1 : x->id > y->id ? -1 : 0;
}

/* Parse one entry of master `m` (of n); false if it is not an entry. */
static bool slow_entry_parse(const char *p, size_t len, size_t m, size_t n,
                             struct slow_entry *e)
{
    size_t *offs, *lens;
    long long k = array_elements(p, len, &offs, &lens);
    long long id = 0;
    bool ok = k >= 2 && header_int(p + offs[0], lens[0], ':', &id) &&
              header_int(p + offs[1], lens[1], ':', &e->ts);
    if (ok) {
        e->p = p;
        e->len = len;
        e->rest = offs[1];
        /* node ids collide across masters: id * n + m is unique, and still
         * grows with each master's own ids */
        e->id = (unsigned long long)id * n + m;
    }
    if (k >= 0) {
        free(offs);
        free(lens);
    }
    return ok;
}

/* SLOWLOG GET [count]: every master's entries, newest first, the first
 * `limit` of them (each master sent at most that many). */
static void merge_slowlog(const struct fanout *f, struct resp_buf *b)
{
    size_t total, used = 0;
    if (!count_elements(f, b, &total))
        return;
    struct slow_entry *all = calloc(total + 1, sizeof *all);
    if (!all)
        abort();
    for (size_t i = 0; i < f->n; i++) {
        const struct request *c = f->children[i];
        size_t *offs, *lens;
        long long m = array_elements(c->reply, c->reply_len, &offs, &lens);
        for (long long k = 0; k < m && used < total; k++)
            used += slow_entry_parse(c->reply + offs[k], lens[k], i, f->n, &all[used]);
        if (m >= 0) {
            free(offs);
            free(lens);
        }
    }
    qsort(all, used, sizeof *all, slow_newest_first);
    if (f->limit >= 0 && (size_t)f->limit < used)
        used = (size_t)f->limit;
    resp_write_array_head(b, (long long)used);
    for (size_t k = 0; k < used; k++) {
        const struct slow_entry *e = &all[k];
        resp_buf_append(b, e->p, after_line(e->p, e->len)); /* "*6\r\n" */
        resp_write_integer(b, (long long)e->id);
        resp_buf_append(b, e->p + e->rest, e->len - e->rest);
    }
    free(all);
}

/* CONFIG GET: the node's pairs, except that requirepass is the proxy's own
 * client password (the node's may be ringslot's backend credential). */
static void merge_config_get(const struct fanout *f, struct resp_buf *b,
                             const char *requirepass)
{
    static const char name[] = "$11\r\nrequirepass\r\n";
    const struct request *c = f->children[0];
    size_t *offs, *lens;
    long long n = array_elements(c->reply, c->reply_len, &offs, &lens);
    if (n < 0 || n % 2) {
        copy_reply(b, c);
        if (n >= 0) {
            free(offs);
            free(lens);
        }
        return;
    }
    if (c->reply[0] == '%')
        resp_write_map_head(b, 3, n / 2);
    else
        resp_write_array_head(b, n);
    for (long long k = 0; k < n; k += 2) {
        bool ours = lens[k] == sizeof name - 1 &&
                    memcmp(c->reply + offs[k], name, sizeof name - 1) == 0;
        resp_buf_append(b, c->reply + offs[k], lens[k]);
        if (ours)
            resp_write_bulk(b, requirepass, strlen(requirepass));
        else
            resp_buf_append(b, c->reply + offs[k + 1], lens[k + 1]);
    }
    free(offs);
    free(lens);
}

static void merge(const struct fanout *f, struct resp_buf *b, const struct client *client)
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
    case MERGE_SUM:
    case MERGE_MIN:
    case MERGE_MAX: merge_integers(f, b); break;
    case MERGE_CONCAT: merge_concat(f, b); break;
    case MERGE_FIRST_NONNULL: merge_first_nonnull(f, b); break;
    case MERGE_RANDOM_KEY: merge_random_key(f, b, client->proto); break;
    case MERGE_FIRST: copy_reply(b, f->children[0]); break;
    case MERGE_AND_ARRAY: merge_and_array(f, b); break;
    case MERGE_SCAN: merge_scan(f, b); break;
    case MERGE_PAIRS: merge_pairs(f, b); break;
    case MERGE_UNION: merge_union(f, b); break;
    case MERGE_INFO: merge_info(f, b, client->proto); break;
    case MERGE_SLOWLOG: merge_slowlog(f, b); break;
    case MERGE_CONFIG_GET: merge_config_get(f, b, client->w->cfg->requirepass); break;
    case MERGE_NONE: break; /* completed by its owner, never merged */
    }
}

/* The first master at or after `from` that holds keys of this proxy's view
 * (every master outside cluster mode); t->nmasters if none. */
static unsigned scan_shard_in_view(const struct worker *w, const struct cluster_topology *t,
                                   unsigned from)
{
    while (from < t->nmasters && !clustermode_master_in_view(w, from))
        from++;
    return from;
}

/* The check bits of master `m` of t. */
static uint8_t master_check(const struct cluster_topology *t, unsigned m)
{
    return scan_cursor_check(t->nodes[m].addr, t->nodes[m].id);
}

/*
 * Replace the SCAN parent's child by shard `shard`'s first page (the call
 * with cursor 0, kept in scan_restart): for the next master (scan_hop), on
 * one of its readers as a client's first page would be (`from_reader`), or
 * on the master for the same shard when the replica that held the cursor
 * was lost (a node's cursor means nothing to another node: each seeds its
 * hash function, so the shard starts over — keys may come twice, none is
 * lost).
 */
static void scan_first_page(struct request *p, unsigned shard, bool from_reader)
{
    struct fanout *f = p->fan;
    struct worker *w = p->client->w;
    request_free(f->children[0]);
    f->n = f->pending = 0;
    f->scan_shard = shard;
    uint8_t check = master_check(w->topo, shard);
    struct link *reader = from_reader ? replica_scan_link(p->client, shard, NULL, &check) : NULL;
    f->scan_check = check;
    add_child(p, request_new(f->scan_restart.data, f->scan_restart.len));
    if (reader)
        link_enqueue(reader, f->children[0]);
    else
        route_to_node(w, f->children[0], shard, client_key(p->client));
}

/*
 * SCAN's master finished with an empty page: rather than hand the client an
 * empty page and a cursor for the next master, ask that master now (its
 * cursor 0 call was kept in scan_restart), at most SCAN_EMPTY_HOPS times
 * per call. True if the child was sent again (the parent waits on).
 */
static bool scan_hop(struct request *p)
{
    struct fanout *f = p->fan;
    const struct cluster_topology *t = p->client->w->topo;
    unsigned long long node_cursor;
    long long nkeys;
    size_t keys;
    if (f->scan_hops >= SCAN_EMPTY_HOPS ||
        !scan_page(f->children[0], &node_cursor, &nkeys, &keys) || node_cursor || nkeys ||
        !t || t->nmasters != f->scan_nshards)
        return false; /* a changed topology: the client's next call sorts it out */
    unsigned next = scan_shard_in_view(p->client->w, t, f->scan_shard + 1);
    if (next >= f->scan_nshards)
        return false;
    f->scan_hops++;
    scan_first_page(p, next, true);
    return true;
}

void fanout_scan_fallback(struct request *child)
{
    struct request *p = child->parent;
    const struct cluster_topology *t = p->client->w->topo;
    assert(p->fan->kind == MERGE_SCAN && p->fan->children[0] == child);
    if (!t || p->fan->scan_shard >= t->nmasters) {
        request_fail(child, "ERR the node of this SCAN was lost: SCAN again from cursor 0");
        return;
    }
    scan_first_page(p, p->fan->scan_shard, false);
}

/*
 * Append the elements of the flat array at arr (a KEYS reply, a SCAN page's
 * keys) whose key lies in a slot this proxy owns; returns how many, or -1
 * when it is not an array of strings.
 */
static long long append_own_keys(struct resp_buf *b, const char *arr, size_t len,
                                 const struct proxy_map *own)
{
    long long n, kept = 0;
    if (!header_int(arr, len, '*', &n))
        return -1;
    size_t off = after_line(arr, len);
    struct resp_reply_parser rp;
    for (long long i = 0; i < n; i++) {
        const char *key;
        size_t key_len;
        resp_reply_init(&rp);
        if (resp_parse_reply(&rp, arr + off, len - off) != RESP_OK ||
            !string_text(arr + off, rp.len, &key, &key_len))
            return -1;
        if (consensus_owns_slot(own, cluster_keyslot(key, key_len))) {
            resp_buf_append(b, arr + off, rp.len);
            kept++;
        }
        off += rp.len;
    }
    return kept;
}

/* Where a SCAN reply's key array lies; false if it is not [cursor, keys]. */
static bool scan_keys(const struct request *c, size_t *at, size_t *len)
{
    size_t *offs, *lens;
    long long n = array_elements(c->reply, c->reply_len, &offs, &lens);
    if (n < 0)
        return false;
    if (n == 2) {
        *at = offs[1];
        *len = lens[1];
    }
    free(offs);
    free(lens);
    return n == 2;
}

/*
 * Cluster mode (clustermode.c, "a proxy's per-node view"): KEYS and SCAN
 * ask every master, and a child's reply keeps only the keys of this
 * proxy's own slots. Filtering the child's reply, before any merge, keeps
 * the merges (SCAN's cursor) unaware of it: a SCAN page just has fewer
 * keys, possibly none, under the same cursor.
 */
static void keep_own_keys(const struct request *p, struct request *child)
{
    enum merge_kind kind = p->fan->kind;
    const struct proxy_map *own;
    if (!p->client || (kind != MERGE_CONCAT && kind != MERGE_SCAN) ||
        !(own = clustermode_own_view(p->client->w)))
        return;
    size_t keys_at = 0, keys_len = child->reply_len; /* KEYS: the whole reply */
    if (kind == MERGE_SCAN && !scan_keys(child, &keys_at, &keys_len))
        return;
    struct resp_buf keys = {0};
    long long kept = append_own_keys(&keys, child->reply + keys_at, keys_len, own);
    if (kept >= 0) { /* anything else (an error) stays as it is */
        struct resp_buf out = {0};
        resp_buf_append(&out, child->reply, keys_at); /* SCAN: "*2" and the cursor */
        resp_write_array_head(&out, kept);
        resp_buf_append(&out, keys.data, keys.len);
        free(child->reply);
        child->reply = out.data;
        child->reply_len = out.len;
    }
    resp_buf_free(&keys);
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
    keep_own_keys(p, child);
    assert(p->fan->pending > 0);
    if (--p->fan->pending > 0)
        return;
    if (!p->client) { /* the client left: nobody wants the merge */
        request_free(p);
        return;
    }
    if (p->fan->kind == MERGE_SCAN && scan_hop(p))
        return;
    struct resp_buf b = {0};
    merge(p->fan, &b, p->client);
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

/* Which splittable command (the proxy's command table says): its step
 * (1 = keys, 2 = key/value pairs) and merge, or false. */
static bool splittable(const struct worker *w, const struct command_info *ci, int *step,
                       enum merge_kind *kind)
{
    const struct proxy_command *pc =
        w->route_hooks->proxy_command_lookup(ci->name, strlen(ci->name));
    if (!pc || !pc->split)
        return false;
    *step = pc->split;
    *kind = (enum merge_kind)pc->split_merge;
    return true;
}

static struct request *split_child(struct worker *w, const struct cmd_args *a,
                                   const struct split_key *keys, size_t nkeys, int step,
                                   const char **av, size_t *al)
{
    av[0] = a->argv[0];
    al[0] = a->lens[0];
    size_t n = 1;
    for (size_t k = 0; k < nkeys; k++)
        for (int s = 0; s < step; s++) {
            size_t arg = 1 + (size_t)keys[k].index * (size_t)step + (size_t)s;
            av[n] = a->argv[arg];
            al[n++] = a->lens[arg];
        }
    return request_from_args(w, (int)n, av, al);
}

bool fanout_split(struct client *c, const struct command_info *ci, const struct cmd_args *a)
{
    struct worker *w = c->w;
    int step;
    enum merge_kind kind;
    if (!splittable(w, ci, &step, &kind) || a->argc < 2 || (a->argc - 1) % (size_t)step)
        return false;
    size_t nkeys = (a->argc - 1) / (size_t)step;
    struct split_key *keys = malloc(nkeys * sizeof *keys);
    for (size_t k = 0; k < nkeys; k++) {
        size_t arg = 1 + k * (size_t)step;
        keys[k].slot = cluster_keyslot(a->argv[arg], a->lens[arg]);
        keys[k].index = (uint32_t)k;
    }
    qsort(keys, nkeys, sizeof *keys, by_slot);
    size_t nchildren = 0;
    for (size_t k = 0; k < nkeys; k++)
        nchildren += (k == 0 || keys[k].slot != keys[k - 1].slot);

    struct request *p = new_parent(c, kind, nchildren);
    struct fanout *f = p->fan;
    int *slots = malloc(nchildren * sizeof *slots);
    const char **av = malloc(a->argc * sizeof *av);
    size_t *al = malloc(a->argc * sizeof *al);
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
        add_child(p, split_child(w, a, keys + k, run, step, av, al));
        k += run;
    }
    free(keys);
    free(av);
    free(al);
    route_children(w, p, slots, ci);
    free(slots);
    return true;
}

/* SLOWLOG GET [count]: how many entries the merge keeps (Redis's default
 * 10; -1 all). A count the nodes refuse fails before the merge needs it. */
static long long slowlog_limit(const struct worker *w, const struct cmd_args *a)
{
    char num[24];
    if (a->argc < 3 || a->lens[2] >= sizeof num)
        return 10;
    memcpy(num, a->argv[2], a->lens[2]);
    num[a->lens[2]] = '\0';
    return strtoll(num, NULL, 10);
}

/* The command to topology nodes [0, n) (masters come first). */
static void fanout_first_nodes(struct client *c, const struct cmd_args *a, enum merge_kind kind, size_t n)
{
    struct worker *w = c->w;
    struct request *p = new_parent(c, kind, n);
    if (kind == MERGE_SLOWLOG)
        p->fan->limit = slowlog_limit(w, a);
    for (size_t m = 0; m < n; m++)
        add_child(p, request_from_args(w, (int)a->argc, a->argv, a->lens));
    struct request **kids = p->fan->children;
    for (size_t m = 0; m < n; m++)
        route_to_node(w, kids[m], (unsigned)m, client_key(c));
}

/* Is there a master to send to? Before the first topology the client's
 * input waits for it (dispatch_defer); otherwise answers CLUSTERDOWN. */
static bool have_masters(struct client *c)
{
    if (c->w->topo && c->w->topo->nmasters)
        return true;
    if (!c->w->topo && dispatch_defer(c))
        return false; /* waits for the first topology */
    client_reply_error(c, "CLUSTERDOWN The cluster is down");
    return false;
}

void fanout_all_masters(struct client *c, const struct cmd_args *a, enum merge_kind kind)
{
    if (have_masters(c))
        fanout_first_nodes(c, a, kind, c->w->topo->nmasters);
}

void fanout_all_nodes(struct client *c, const struct cmd_args *a, enum merge_kind kind)
{
    if (have_masters(c))
        fanout_first_nodes(c, a, kind, c->w->topo->nnodes);
}

void fanout_first_master(struct client *c, const struct cmd_args *a, enum merge_kind kind)
{
    if (have_masters(c))
        fanout_first_nodes(c, a, kind, 1);
}

void fanout_per_slot(struct client *c, enum merge_kind kind, const uint16_t *slots, size_t n,
                     int argc, const char **argv, int slot_arg)
{
    struct worker *w = c->w;
    const char *av[8];
    size_t al[8];
    char num[8];
    assert(argc <= 8 && slot_arg < argc && n > 0);
    for (int i = 0; i < argc; i++) {
        av[i] = argv[i];
        al[i] = argv[i] ? strlen(argv[i]) : 0;
    }
    av[slot_arg] = num;
    struct request *p = new_parent(c, kind, n);
    int *route = malloc(n * sizeof *route);
    if (!route)
        abort();
    for (size_t i = 0; i < n; i++) {
        al[slot_arg] = (size_t)snprintf(num, sizeof num, "%u", (unsigned)slots[i]);
        add_child(p, request_from_args(w, argc, av, al));
        route[i] = slots[i];
    }
    route_children(w, p, route, NULL); /* admin calls: the masters */
    free(route);
}

void fanout_to_links(struct client *c, const struct cmd_args *a, struct link **links, size_t n,
                     enum merge_kind kind)
{
    struct worker *w = c->w;
    struct request *p = new_parent(c, kind, n);
    for (size_t i = 0; i < n; i++)
        add_child(p, request_from_args(w, (int)a->argc, a->argv, a->lens));
    struct request **kids = p->fan->children;
    for (size_t i = 0; i < n; i++)
        link_enqueue(links[i], kids[i]);
}

/* The client's cursor argument; false (and answered) if it is not one.
 * Redis reads it with strtoul(): "-1" is 2^64 - 1 and "" is 0; leading
 * space, trailing bytes and overflow are refused. 2^64 - 1 ends the scan,
 * as on a Redis node; any other cursor above what ringslot hands out is
 * refused (a corrupted cursor must not look like a finished scan). */
static bool scan_client_cursor(struct client *c, const struct cmd_args *a,
                               struct scan_cursor *out)
{
    size_t len = a->lens[1];
    char num[32], *end;
    if (len >= sizeof num || (len && isspace((unsigned char)a->argv[1][0]))) {
        client_reply_error(c, "ERR invalid cursor");
        return false;
    }
    memcpy(num, a->argv[1], len);
    num[len] = '\0';
    errno = 0;
    unsigned long long cursor = strtoull(num, &end, 10);
    if (*end || errno == ERANGE) {
        client_reply_error(c, "ERR invalid cursor");
        return false;
    }
    if (cursor == ULLONG_MAX) {
        client_reply_bytes(c, "*2\r\n$1\r\n0\r\n*0\r\n", 15);
        return false;
    }
    if (!scan_cursor_decode(cursor, out)) {
        client_reply_error(c, "ERR invalid cursor");
        return false;
    }
    return true;
}

/* The call a with its cursor argument replaced, into b. */
static void scan_encode_call(const struct cmd_args *a, unsigned long long node_cursor,
                             struct resp_buf *b)
{
    char num[24];
    int len = snprintf(num, sizeof num, "%llu", node_cursor);
    /* a page of SCAN has a handful of arguments: on the stack unless more */
    const char *argv_small[16];
    size_t lens_small[16];
    bool small = a->argc <= 16;
    const char **argv = small ? argv_small : malloc(a->argc * sizeof *argv);
    size_t *lens = small ? lens_small : malloc(a->argc * sizeof *lens);
    if (!argv || !lens)
        abort();
    memcpy(argv, a->argv, a->argc * sizeof *argv);
    memcpy(lens, a->lens, a->argc * sizeof *lens);
    argv[1] = num;
    lens[1] = (size_t)len;
    resp_write_command(b, (int)a->argc, argv, lens);
    if (!small) {
        free(argv);
        free(lens);
    }
}

/*
 * SCAN over every master in turn, with the cursor of cluster.h's "SCAN
 * cursors": shard = master index, check = that master's check bits, node =
 * its own cursor. A cursor whose master changed restarts that master.
 */
void fanout_scan(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const struct cluster_topology *t = w->topo;
    struct scan_cursor cur;
    if (!scan_client_cursor(c, a, &cur) || !have_masters(c))
        return;
    if (t->nmasters > SCAN_CURSOR_MAX_SHARDS) {
        client_reply_error(c, "ERR SCAN through ringslot covers at most 256 masters");
        return;
    }
    if (cur.node == 0) /* cluster mode: skip masters with none of our keys */
        cur.shard = scan_shard_in_view(w, t, cur.shard);
    if (cur.shard >= t->nmasters) {
        client_reply_bytes(c, "*2\r\n$1\r\n0\r\n*0\r\n", 15);
        return;
    }
    /* the node that holds the cursor: the master or one of its replicas
     * (replica.c); none of them any more, the shard starts again */
    uint8_t now_check;
    struct link *reader = replica_scan_link(c, cur.shard, cur.node ? &cur.check : NULL,
                                            &now_check);
    if (cur.node != 0 && cur.check != now_check)
        cur.node = 0;
    struct request *p = new_parent(c, MERGE_SCAN, 1);
    struct fanout *f = p->fan;
    f->scan_shard = cur.shard;
    f->scan_check = now_check;
    f->scan_nshards = (unsigned)t->nmasters;
    scan_encode_call(a, 0, &f->scan_restart);
    struct resp_buf call = {0};
    scan_encode_call(a, cur.node, &call);
    add_child(p, request_adopt(&call));
    if (reader)
        link_enqueue(reader, f->children[0]);
    else
        route_to_node(w, f->children[0], cur.shard, client_key(c));
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
