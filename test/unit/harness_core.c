/*
 * harness_core.c — see harness_core.h. The fake nodes are a few hundred
 * lines of Redis: enough commands for what the proxy sends, with slot
 * ownership checked so redirections happen where a real cluster would
 * make them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "harness_core.h"

#ifdef RINGSLOT_SANITIZED
#include <sanitizer/common_interface_defs.h>
#endif

/* The seed of the harness running now, for a sanitizer's report (a crash
 * never reaches the H_* assertions that print it). */
static uint64_t running_seed;

static void print_seed(void)
{
    fprintf(stderr, "harness seed %llu (RINGSLOT_SEED=%llu repeats it)\n",
            (unsigned long long)running_seed, (unsigned long long)running_seed);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

uint64_t h_seed(uint64_t seed)
{
    const char *env = getenv("RINGSLOT_SEED");
    return env && *env ? strtoull(env, NULL, 0) : seed;
}

void h_fail(struct harness *h, const char *what, const char *file, int line)
{
    fail_msg("%s:%d: %s (seed %llu; RINGSLOT_SEED=%llu repeats it)", file, line, what,
             (unsigned long long)h->seed, (unsigned long long)h->seed);
}

/* ------------------------------------------------------------------------ */
/* Setup                                                                     */

void h_publish(struct harness *h)
{
    struct cluster_topology *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->nnodes = t->nmasters = H_NODES;
    t->nodes = calloc(H_NODES, sizeof *t->nodes);
    assert_non_null(t->nodes);
    for (int i = 0; i < H_NODES; i++) {
        struct cluster_node *n = &t->nodes[i];
        snprintf(n->addr, sizeof n->addr, "%s", h->nodes[i].addr);
        snprintf(n->host, sizeof n->host, "127.0.0.1");
        n->port = (uint16_t)(7001 + i);
        snprintf(n->id, sizeof n->id, "%040d", i + 1);
        n->is_master = true;
    }
    memcpy(t->slot_master, h->owner, sizeof t->slot_master);
    t->version = ++h->topo_version;
    snprintf(t->redis_version, sizeof t->redis_version, "7.2.4");
    snapshot_publish(&h->rt.snap, &h->rt.slots[SLOT_TOPOLOGY], t);
    atomic_store(&h->rt.topology_ready, true);
}

static void setup(struct harness *h, uint64_t seed, void (*tune)(struct config *), bool publish);

void h_setup(struct harness *h, uint64_t seed, void (*tune)(struct config *))
{
    setup(h, seed, tune, true);
}

void h_setup_bare(struct harness *h, uint64_t seed, void (*tune)(struct config *))
{
    setup(h, seed, tune, false);
}

static void setup(struct harness *h, uint64_t seed, void (*tune)(struct config *), bool publish)
{
    memset(h, 0, sizeof *h);
    h->seed = running_seed = h_seed(seed);
#ifdef RINGSLOT_SANITIZED
    __sanitizer_set_death_callback(print_seed);
#else
    (void)print_seed;
#endif
    log_set_level(getenv("RINGSLOT_HDEBUG") ? LOG_DEBUG : LOG_ERROR);
    config_defaults(&h->cfg);
    h->cfg.port = 0;
    h->cfg.unixsocket[0] = '\0';
    h->cfg.threads = 1;
    if (tune)
        tune(&h->cfg);
    for (int i = 0; i < H_NODES; i++)
        snprintf(h->nodes[i].addr, sizeof h->nodes[i].addr, "127.0.0.1:%d", 7001 + i);
    for (int s = 0; s < CLUSTER_SLOTS; s++)
        h->owner[s] = (uint16_t)(s * H_NODES / CLUSTER_SLOTS);
    assert_int_equal(runtime_init(&h->rt, &h->cfg, IO_BACKEND_FAKE), 0);
    if (publish)
        h_publish(h);
    assert_int_equal(worker_create(&h->rt, 0, &h->w), 0);
    h->rt.workers[0] = h->w;
    h->io = h->w->io;
    io_fake_seed(h->io, h->seed);
    /* a listener the fake accepts on (the config opens none) */
    h->listener = io_fake_listener(h->io);
    assert_true(h->listener >= 0);
    struct worker *w = h->w;
    w->listeners[w->nlisteners++] = (struct listener){.fd = h->listener, .op.tag = OP_ACCEPT};
    assert_int_equal(worker_start(w), 0);
    h_run(h);
}

static void kv_free(struct h_kv *kv)
{
    for (size_t i = 0; i < kv->nitems; i++)
        free(kv->items[i]);
    free(kv->items);
    free(kv->key);
    free(kv->val);
    free(kv);
}

static void nconn_reset(struct h_nconn *nc)
{
    if (!nc->used)
        return;
    resp_req_free(&nc->p);
    resp_buf_free(&nc->queued);
    resp_buf_free(&nc->muted_in);
    memset(nc, 0, sizeof *nc);
}

void h_teardown(struct harness *h)
{
    worker_finish(h->w);
    runtime_destroy(&h->rt);
    for (int i = 0; i < H_NODES; i++)
        while (h->nodes[i].kv) {
            struct h_kv *kv = h->nodes[i].kv;
            h->nodes[i].kv = kv->next;
            kv_free(kv);
        }
    h_script_clear(h);
    for (int fd = 0; fd < H_MAX_FDS; fd++)
        nconn_reset(&h->nconns[fd]);
    while (h->canned) {
        struct h_script *s = h->canned;
        h->canned = s->next;
        free(s->reply);
        free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* The fake nodes                                                            */

static struct h_kv *kv_find(struct h_node *n, const char *key, size_t len)
{
    for (struct h_kv *kv = n->kv; kv; kv = kv->next)
        if (kv->klen == len && memcmp(kv->key, key, len) == 0)
            return kv;
    return NULL;
}

static bool kv_del(struct h_node *n, const char *key, size_t len)
{
    for (struct h_kv **p = &n->kv; *p; p = &(*p)->next)
        if ((*p)->klen == len && memcmp((*p)->key, key, len) == 0) {
            struct h_kv *kv = *p;
            *p = kv->next;
            kv_free(kv);
            return true;
        }
    return false;
}

static struct h_kv *kv_put(struct h_node *n, const char *key, size_t klen)
{
    struct h_kv *kv = kv_find(n, key, klen);
    if (kv)
        return kv;
    kv = calloc(1, sizeof *kv);
    assert_non_null(kv);
    kv->key = xstrndup(key, klen);
    kv->klen = klen;
    kv->next = n->kv;
    n->kv = kv;
    return kv;
}

struct call {
    size_t argc;
    const char *argv[64];
    size_t lens[64];
};

static bool is(const struct call *c, size_t i, const char *name)
{
    return i < c->argc && strlen(name) == c->lens[i] &&
           strncasecmp(c->argv[i], name, c->lens[i]) == 0;
}

/* -MOVED / nothing: may this node serve the call's first key? */
static bool redirected(struct harness *h, struct h_nconn *nc, const struct call *c, size_t key,
                       struct resp_buf *out)
{
    if (key >= c->argc)
        return false;
    unsigned slot = cluster_keyslot(c->argv[key], c->lens[key]);
    int owner = h->owner[slot];
    if (owner == nc->node || nc->asking)
        return false;
    char err[96];
    if (owner == CLUSTER_NO_NODE)
        snprintf(err, sizeof err, "CLUSTERDOWN Hash slot not served");
    else
        snprintf(err, sizeof err, "MOVED %u %s", slot, h->nodes[owner].addr);
    resp_write_error(out, err);
    return true;
}

static void wake_blocked(struct harness *h, int node, const char *key, size_t klen);

static void list_push(struct h_kv *kv, const char *v, size_t len, bool left)
{
    kv->is_list = true;
    kv->items = realloc(kv->items, (kv->nitems + 1) * sizeof *kv->items);
    assert_non_null(kv->items);
    if (left) {
        memmove(kv->items + 1, kv->items, kv->nitems * sizeof *kv->items);
        kv->items[0] = xstrndup(v, len);
    } else {
        kv->items[kv->nitems] = xstrndup(v, len);
    }
    kv->nitems++;
}

/* BLPOP/LPOP: the head of the list at key, into out; false if empty. */
static bool list_pop(struct h_node *n, const char *key, size_t klen, struct resp_buf *out,
                     bool with_key)
{
    struct h_kv *kv = kv_find(n, key, klen);
    if (!kv || !kv->nitems)
        return false;
    char *v = kv->items[0];
    memmove(kv->items, kv->items + 1, (kv->nitems - 1) * sizeof *kv->items);
    kv->nitems--;
    if (with_key) {
        resp_write_array_head(out, 2);
        resp_write_bulk(out, key, klen);
    }
    resp_write_bulk(out, v, strlen(v));
    free(v);
    if (!kv->nitems)
        kv_del(n, key, klen);
    return true;
}

static bool canned_reply(struct harness *h, const struct call *c, struct resp_buf *out)
{
    for (const struct h_script *s = h->canned; s; s = s->next) {
        char name[32];
        const char *sp = strchr(s->cmd, ' ');
        size_t n = sp ? (size_t)(sp - s->cmd) : strlen(s->cmd);
        snprintf(name, sizeof name, "%.*s", (int)n, s->cmd);
        if (is(c, 0, name) && (!sp || is(c, 1, sp + 1))) {
            resp_buf_append(out, s->reply, s->len);
            return true;
        }
    }
    return false;
}

/* One command on node nc->node; its reply appended to out (nothing when it
 * blocks). */
static void node_exec(struct harness *h, int fd, struct h_nconn *nc, const struct call *c,
                      struct resp_buf *out)
{
    struct h_node *n = &h->nodes[nc->node];
    bool asking = nc->asking;
    nc->asking = false;
    if (is(c, 0, "ping")) {
        resp_write_simple(out, "PONG");
    } else if (is(c, 0, "asking")) {
        nc->asking = true;
        resp_write_simple(out, "OK");
    } else if (is(c, 0, "hello")) {
        resp_write_map_head(out, 3, 1);
        resp_write_simple(out, "server");
        resp_write_simple(out, "redis");
    } else if (is(c, 0, "auth") || is(c, 0, "readonly") || is(c, 0, "watch") ||
               is(c, 0, "unwatch") || is(c, 0, "flushall") || is(c, 0, "select")) {
        resp_write_simple(out, "OK");
    } else if (is(c, 0, "multi")) {
        nc->multi = true;
        nc->multi_asking = asking;
        resp_write_simple(out, "OK");
    } else if (is(c, 0, "discard")) {
        nc->multi = nc->multi_err = nc->multi_asking = false;
        resp_buf_free(&nc->queued);
        nc->nqueued = 0;
        resp_write_simple(out, "OK");
    } else {
        nc->asking = asking; /* the key commands below see it */
        size_t key = 1;
        bool keyed = is(c, 0, "get") || is(c, 0, "set") || is(c, 0, "del") ||
                     is(c, 0, "unlink") || is(c, 0, "exists") || is(c, 0, "touch") ||
                     is(c, 0, "mget") || is(c, 0, "mset") || is(c, 0, "lpush") ||
                     is(c, 0, "rpush") || is(c, 0, "lpop") || is(c, 0, "blpop") ||
                     is(c, 0, "brpop") || is(c, 0, "incr");
        if (keyed && redirected(h, nc, c, key, out)) {
            nc->asking = false;
            return;
        }
        nc->asking = false;
        if (is(c, 0, "get")) {
            struct h_kv *kv = kv_find(n, c->argv[1], c->lens[1]);
            if (kv && !kv->is_list)
                resp_write_bulk(out, kv->val, kv->vlen);
            else
                resp_buf_append(out, "$-1\r\n", 5);
        } else if (is(c, 0, "set") && c->argc >= 3) {
            struct h_kv *kv = kv_put(n, c->argv[1], c->lens[1]);
            free(kv->val);
            kv->val = xstrndup(c->argv[2], c->lens[2]);
            kv->vlen = c->lens[2];
            resp_write_simple(out, "OK");
        } else if (is(c, 0, "del") || is(c, 0, "unlink") || is(c, 0, "exists") ||
                   is(c, 0, "touch")) {
            long long k = 0;
            bool del = is(c, 0, "del") || is(c, 0, "unlink");
            for (size_t i = 1; i < c->argc; i++)
                k += del ? kv_del(n, c->argv[i], c->lens[i])
                         : kv_find(n, c->argv[i], c->lens[i]) != NULL;
            resp_write_integer(out, k);
        } else if (is(c, 0, "mget")) {
            resp_write_array_head(out, (long long)c->argc - 1);
            for (size_t i = 1; i < c->argc; i++) {
                struct h_kv *kv = kv_find(n, c->argv[i], c->lens[i]);
                if (kv && !kv->is_list)
                    resp_write_bulk(out, kv->val, kv->vlen);
                else
                    resp_buf_append(out, "$-1\r\n", 5);
            }
        } else if (is(c, 0, "mset")) {
            for (size_t i = 1; i + 1 < c->argc; i += 2) {
                struct h_kv *kv = kv_put(n, c->argv[i], c->lens[i]);
                free(kv->val);
                kv->val = xstrndup(c->argv[i + 1], c->lens[i + 1]);
                kv->vlen = c->lens[i + 1];
            }
            resp_write_simple(out, "OK");
        } else if (is(c, 0, "lpush") || is(c, 0, "rpush")) {
            struct h_kv *kv = kv_put(n, c->argv[1], c->lens[1]);
            for (size_t i = 2; i < c->argc; i++)
                list_push(kv, c->argv[i], c->lens[i], is(c, 0, "lpush"));
            resp_write_integer(out, (long long)kv->nitems);
            wake_blocked(h, nc->node, c->argv[1], c->lens[1]);
        } else if (is(c, 0, "lpop")) {
            if (!list_pop(n, c->argv[1], c->lens[1], out, false))
                resp_buf_append(out, "$-1\r\n", 5);
        } else if (is(c, 0, "blpop") || is(c, 0, "brpop")) {
            if (!list_pop(n, c->argv[1], c->lens[1], out, true))
                snprintf(nc->blocked, sizeof nc->blocked, "%.*s", (int)c->lens[1], c->argv[1]);
        } else if (is(c, 0, "dbsize")) {
            long long k = 0;
            for (struct h_kv *kv = n->kv; kv; kv = kv->next)
                k++;
            resp_write_integer(out, k);
        } else if (is(c, 0, "keys")) {
            long long k = 0;
            for (struct h_kv *kv = n->kv; kv; kv = kv->next)
                k++;
            resp_write_array_head(out, k);
            for (struct h_kv *kv = n->kv; kv; kv = kv->next)
                resp_write_bulk(out, kv->key, kv->klen);
        } else if (is(c, 0, "incr")) {
            struct h_kv *kv = kv_put(n, c->argv[1], c->lens[1]);
            long long v = kv->val ? atoll(kv->val) + 1 : 1;
            char num[32];
            int len = snprintf(num, sizeof num, "%lld", v);
            free(kv->val);
            kv->val = xstrndup(num, (size_t)len);
            kv->vlen = (size_t)len;
            resp_write_integer(out, v);
        } else if (canned_reply(h, c, out)) {
        } else {
            char err[128];
            snprintf(err, sizeof err, "ERR unknown command '%.*s'", (int)c->lens[0], c->argv[0]);
            resp_write_error(out, err);
        }
    }
    (void)fd;
}

static void sub_reply(struct resp_buf *out, const char *kind, const char *ch, size_t len, int n)
{
    resp_write_push_head(out, 2, 3);
    resp_write_bulk(out, kind, strlen(kind));
    if (ch)
        resp_write_bulk(out, ch, len);
    else
        resp_buf_append(out, "$-1\r\n", 5);
    resp_write_integer(out, n);
}

/* SUBSCRIBE / UNSUBSCRIBE / PUBLISH (to every node's subscribers, as a
 * cluster propagates it); false for other commands. */
static bool node_pubsub(struct harness *h, struct h_nconn *nc, const struct call *c,
                        struct resp_buf *out)
{
    if (is(c, 0, "subscribe")) {
        for (size_t i = 1; i < c->argc && nc->nchans < 16; i++) {
            snprintf(nc->chans[nc->nchans++], 32, "%.*s", (int)c->lens[i], c->argv[i]);
            sub_reply(out, "subscribe", c->argv[i], c->lens[i], nc->nchans);
        }
        return true;
    }
    if (is(c, 0, "unsubscribe")) {
        if (c->argc == 1 && nc->nchans == 0)
            sub_reply(out, "unsubscribe", NULL, 0, 0);
        while (c->argc == 1 && nc->nchans > 0) {
            nc->nchans--;
            sub_reply(out, "unsubscribe", nc->chans[nc->nchans], strlen(nc->chans[nc->nchans]),
                      nc->nchans);
        }
        for (size_t i = 1; i < c->argc; i++) {
            for (int j = 0; j < nc->nchans; j++)
                if (strlen(nc->chans[j]) == c->lens[i] &&
                    memcmp(nc->chans[j], c->argv[i], c->lens[i]) == 0) {
                    memmove(nc->chans[j], nc->chans[j + 1], (size_t)(nc->nchans - j - 1) * 32);
                    nc->nchans--;
                    break;
                }
            sub_reply(out, "unsubscribe", c->argv[i], c->lens[i], nc->nchans);
        }
        return true;
    }
    if (!is(c, 0, "publish") || c->argc != 3)
        return false;
    long long n = 0;
    for (int fd = 0; fd < H_MAX_FDS; fd++) {
        struct h_nconn *o = &h->nconns[fd];
        for (int j = 0; o->used && j < o->nchans; j++) {
            if (strlen(o->chans[j]) != c->lens[1] || memcmp(o->chans[j], c->argv[1], c->lens[1]))
                continue;
            struct resp_buf m = {0};
            resp_write_push_head(&m, 2, 3);
            resp_write_bulk(&m, "message", 7);
            resp_write_bulk(&m, c->argv[1], c->lens[1]);
            resp_write_bulk(&m, c->argv[2], c->lens[2]);
            io_fake_feed(h->io, fd, m.data, m.len);
            resp_buf_free(&m);
            n++;
        }
    }
    resp_write_integer(out, n);
    return true;
}

static void parse_call(const struct resp_req_parser *p, const char *buf, struct call *c)
{
    c->argc = p->argc < 64 ? p->argc : 64;
    for (size_t i = 0; i < c->argc; i++) {
        c->argv[i] = resp_req_arg(p, buf, i);
        c->lens[i] = p->argv[i].len;
    }
}

static void node_exec_multi(struct harness *h, int fd, struct h_nconn *nc, struct resp_buf *out)
{
    bool err = nc->multi_err;
    struct resp_buf q = nc->queued;
    unsigned nq = nc->nqueued;
    memset(&nc->queued, 0, sizeof nc->queued);
    nc->nqueued = 0;
    bool asking = nc->multi_asking;
    nc->multi = nc->multi_err = nc->multi_asking = false;
    if (err) {
        resp_write_error(out, "EXECABORT Transaction discarded because of previous errors.");
        resp_buf_free(&q);
        return;
    }
    resp_write_array_head(out, nq);
    struct resp_req_parser p;
    resp_req_init(&p);
    size_t off = 0;
    while (off < q.len && resp_parse_request(&p, q.data + off, q.len - off) == RESP_OK) {
        struct call c;
        parse_call(&p, q.data + off, &c);
        nc->asking = asking;
        node_exec(h, fd, nc, &c, out);
        off += p.len;
        resp_req_next(&p);
    }
    resp_req_free(&p);
    resp_buf_free(&q);
}

/* A scripted reply for this call, if one waits (it is used up). */
static struct h_script *script_for(struct h_node *n, const struct call *c)
{
    for (struct h_script **p = &n->scripts; *p; p = &(*p)->next) {
        struct h_script *s = *p;
        bool any = s->cmd[0] == '\0' && !is(c, 0, "asking");
        char name[32];
        const char *sp = strchr(s->cmd, ' '); /* "get key": that key only */
        snprintf(name, sizeof name, "%.*s", (int)(sp ? sp - s->cmd : (long)strlen(s->cmd)),
                 s->cmd);
        if (any || (is(c, 0, name) && (!sp || is(c, 1, sp + 1)))) {
            *p = s->next;
            return s;
        }
    }
    return NULL;
}

static void node_call(struct harness *h, int fd, struct h_nconn *nc, const char *raw,
                      size_t rawlen, const struct call *c, struct resp_buf *out)
{
    struct h_node *n = &h->nodes[nc->node];
    n->requests++;
    if (getenv("RINGSLOT_HDEBUG"))
        fprintf(stderr, "node %d fd %d: %.*s %.*s\n", nc->node, fd, (int)c->lens[0], c->argv[0],
                c->argc > 1 ? (int)c->lens[1] : 0, c->argc > 1 ? c->argv[1] : "");
    struct h_script *s = script_for(n, c);
    if (s) {
        if (nc->multi && s->reply[0] == '-')
            nc->multi_err = true;
        resp_buf_append(out, s->reply, s->len);
        free(s->reply);
        free(s);
        return;
    }
    if (nc->multi && is(c, 0, "exec")) {
        node_exec_multi(h, fd, nc, out);
    } else if (nc->multi && !is(c, 0, "multi") && !is(c, 0, "discard") && !is(c, 0, "watch")) {
        nc->asking = nc->multi_asking;
        bool moved = redirected(h, nc, c, 1, out);
        nc->asking = false;
        if (moved) {
            nc->multi_err = true;
            return;
        }
        resp_buf_append(&nc->queued, raw, rawlen);
        nc->nqueued++;
        resp_write_simple(out, "QUEUED");
    } else if (is(c, 0, "exec")) {
        resp_write_error(out, "ERR EXEC without MULTI");
    } else if (node_pubsub(h, nc, c, out)) {
    } else {
        node_exec(h, fd, nc, c, out);
    }
}

static void wake_blocked(struct harness *h, int node, const char *key, size_t klen)
{
    for (int fd = 0; fd < H_MAX_FDS; fd++) {
        struct h_nconn *nc = &h->nconns[fd];
        if (!nc->used || nc->node != node || strlen(nc->blocked) != klen ||
            memcmp(nc->blocked, key, klen) != 0)
            continue;
        struct resp_buf out = {0};
        if (list_pop(&h->nodes[node], key, klen, &out, true)) {
            nc->blocked[0] = '\0';
            io_fake_feed(h->io, fd, out.data, out.len);
        }
        resp_buf_free(&out);
    }
}

static int node_of(struct harness *h, const char *addr)
{
    for (int i = 0; i < H_NODES; i++)
        if (strcmp(h->nodes[i].addr, addr) == 0)
            return i;
    return -1;
}

/* Answer what the proxy wrote on fd; true if anything was read. */
static bool serve_conn(struct harness *h, int fd)
{
    struct h_nconn *nc = &h->nconns[fd];
    if (nc->used && nc->conn != io_fake_conn_id(h->io, fd))
        nconn_reset(nc); /* the number was closed and reused meanwhile */
    if (!nc->used) {
        nc->used = true;
        nc->conn = io_fake_conn_id(h->io, fd);
        nc->node = node_of(h, io_fake_conn_addr(h->io, fd));
        assert_true(nc->node >= 0);
        resp_req_init(&nc->p);
    }
    size_t len;
    const char *buf = io_fake_sent(h->io, fd, &len);
    if (!len)
        return false;
    if (h->nodes[nc->node].muted) {
        resp_buf_append(&nc->muted_in, buf, len);
        io_fake_consume(h->io, fd, len);
        return true;
    }
    struct resp_buf out = {0};
    size_t off = 0;
    while (off < len && nc->blocked[0] == '\0') {
        enum resp_result res = resp_parse_request(&nc->p, buf + off, len - off);
        if (res == RESP_NEED_MORE)
            break;
        assert_int_equal(res, RESP_OK);
        struct call c;
        parse_call(&nc->p, buf + off, &c);
        node_call(h, fd, nc, buf + off, nc->p.len, &c, &out);
        off += nc->p.len;
        resp_req_next(&nc->p);
    }
    io_fake_consume(h->io, fd, off);
    if (out.len)
        io_fake_feed(h->io, fd, out.data, out.len);
    resp_buf_free(&out);
    return off > 0;
}

static bool serve_nodes(struct harness *h)
{
    int fds[H_MAX_FDS];
    int n = io_fake_conns(h->io, NULL, fds, H_MAX_FDS);
    bool live[H_MAX_FDS] = {0};
    bool moved = false;
    for (int i = 0; i < n; i++) {
        assert_true(fds[i] < H_MAX_FDS);
        live[fds[i]] = true;
        moved |= serve_conn(h, fds[i]);
    }
    for (int fd = 0; fd < H_MAX_FDS; fd++)
        if (h->nconns[fd].used && !live[fd])
            nconn_reset(&h->nconns[fd]); /* closed: a new socket may reuse the number */
    return moved;
}

void h_run(struct harness *h)
{
    for (int i = 0; i < 100000; i++) {
        bool moved = serve_nodes(h);
        if (!moved && !io_fake_busy(h->io))
            return;
        assert_true(worker_step(h->w, 0) >= 0);
    }
    h_fail(h, "the worker never settles", __FILE__, __LINE__);
}

void h_advance(struct harness *h, int64_t ms)
{
    while (ms > 0) {
        int64_t step = io_fake_next_timer_ms(h->io);
        if (step <= 0 || step > ms)
            step = ms;
        io_fake_advance(h->io, step);
        ms -= step;
        h_run(h);
    }
}

void h_script(struct harness *h, int node, const char *cmd, const char *reply, size_t len)
{
    struct h_script *s = calloc(1, sizeof *s), **p = &h->nodes[node].scripts;
    assert_non_null(s);
    snprintf(s->cmd, sizeof s->cmd, "%s", cmd);
    s->reply = xmalloc(len);
    memcpy(s->reply, reply, len);
    s->len = len;
    while (*p)
        p = &(*p)->next;
    *p = s;
}

void h_mute(struct harness *h, int node, bool muted)
{
    h->nodes[node].muted = muted;
    if (muted)
        return;
    for (int fd = 0; fd < H_MAX_FDS; fd++) { /* what was read meanwhile, in order */
        struct h_nconn *nc = &h->nconns[fd];
        if (!nc->used || nc->node != node || !nc->muted_in.len)
            continue;
        size_t len;
        const char *now = io_fake_sent(h->io, fd, &len);
        struct resp_buf all = nc->muted_in;
        memset(&nc->muted_in, 0, sizeof nc->muted_in);
        resp_buf_append(&all, now, len);
        io_fake_consume(h->io, fd, len);
        /* put it back as if just sent, then serve it */
        struct resp_buf out = {0};
        size_t off = 0;
        while (off < all.len) {
            if (resp_parse_request(&nc->p, all.data + off, all.len - off) != RESP_OK)
                break;
            struct call c;
            parse_call(&nc->p, all.data + off, &c);
            node_call(h, fd, nc, all.data + off, nc->p.len, &c, &out);
            off += nc->p.len;
            resp_req_next(&nc->p);
        }
        if (out.len)
            io_fake_feed(h->io, fd, out.data, out.len);
        resp_buf_free(&out);
        resp_buf_free(&all);
    }
}

void h_script_clear(struct harness *h)
{
    for (int i = 0; i < H_NODES; i++)
        while (h->nodes[i].scripts) {
            struct h_script *s = h->nodes[i].scripts;
            h->nodes[i].scripts = s->next;
            free(s->reply);
            free(s);
        }
}

void h_canned(struct harness *h, const char *cmd, const char *reply)
{
    struct h_script *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->cmd, sizeof s->cmd, "%s", cmd);
    s->len = strlen(reply);
    s->reply = xstrndup(reply, s->len);
    s->next = h->canned;
    h->canned = s;
}

void h_forget(struct harness *h, int node)
{
    for (int fd = 0; fd < H_MAX_FDS; fd++)
        if (h->nconns[fd].used && h->nconns[fd].node == node)
            resp_buf_free(&h->nconns[fd].muted_in);
}

void h_link_feed(struct harness *h, int node, const char *bytes, size_t len)
{
    int fd;
    H_CHECK(h, h_node_fds(h, node, &fd, 1) == 1);
    io_fake_feed(h->io, fd, bytes, len);
}

int h_node_fds(struct harness *h, int node, int *fds, int max)
{
    return io_fake_conns(h->io, h->nodes[node].addr, fds, max);
}

void h_node_reset(struct harness *h, int node, int err)
{
    int fds[64];
    int n = h_node_fds(h, node, fds, 64);
    for (int i = 0; i < n; i++)
        io_fake_fail(h->io, fds[i], IO_FAKE_RECV, err);
}

const char *h_key_on(struct harness *h, int node, int nth)
{
    static char keys[64][32]; /* callers keep a few at once */
    static unsigned next;
    char *key = keys[next++ % 64];
    for (int i = 0;; i++) {
        snprintf(key, 32, "key:%d", i);
        if (h->owner[cluster_keyslot(key, strlen(key))] == node && nth-- == 0)
            return key;
    }
}

void h_node_set(struct harness *h, int node, const char *key, const char *val)
{
    struct h_kv *kv = kv_put(&h->nodes[node], key, strlen(key));
    free(kv->val);
    kv->val = xstrndup(val, strlen(val));
    kv->vlen = strlen(val);
}

const char *h_node_get(struct harness *h, int node, const char *key)
{
    struct h_kv *kv = kv_find(&h->nodes[node], key, strlen(key));
    return kv && !kv->is_list ? kv->val : NULL;
}

/* ------------------------------------------------------------------------ */
/* Clients                                                                   */

int h_client(struct harness *h)
{
    int fd = io_fake_conn_new(h->io, h->listener);
    assert_true(fd >= 0);
    h_run(h);
    return fd;
}

void h_cmdv(struct harness *h, int fd, int argc, const char **argv)
{
    struct resp_buf b = {0};
    resp_write_command(&b, argc, argv, NULL);
    io_fake_feed(h->io, fd, b.data, b.len);
    resp_buf_free(&b);
}

void h_raw(struct harness *h, int fd, const char *bytes, size_t len)
{
    io_fake_feed(h->io, fd, bytes, len);
}

char *h_reply(struct harness *h, int fd)
{
    size_t len;
    const char *buf = io_fake_sent(h->io, fd, &len);
    if (!len)
        return NULL;
    struct resp_reply_parser p;
    resp_reply_init(&p);
    if (resp_parse_reply(&p, buf, len) != RESP_OK)
        return NULL;
    char *r = xstrndup(buf, p.len);
    io_fake_consume(h->io, fd, p.len);
    return r;
}

size_t h_pending(struct harness *h, int fd)
{
    size_t len;
    io_fake_sent(h->io, fd, &len);
    return len;
}

void h_expect(struct harness *h, int fd, const char *want, const char *file, int line)
{
    char *got = h_reply(h, fd);
    if (!got || strcmp(got, want) != 0) {
        char what[512];
        snprintf(what, sizeof what, "reply %.200s, wanted %.200s", got ? got : "(none)", want);
        free(got);
        h_fail(h, what, file, line);
    }
    free(got);
}
