/*
 * Dispatch: what happens to one parsed client command.
 *
 *   argv ─► command table ─► local answer (PING, ECHO, QUIT, SELECT, PROXY)
 *                        └─► key slots ─► topology ─► the worker's link
 *
 * The command's bytes are copied once, into the request (inline commands
 * are re-encoded as multibulk); the link writes them from there, and a
 * MOVED or ASK re-sends the same bytes elsewhere.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime.h"

static struct request *request_new(struct client *c)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->client = c;
    r->buf = r->inline_bytes;
    if (c->rtail)
        c->rtail->cnext = r;
    else
        c->rhead = r;
    c->rtail = r;
    c->nreqs++;
    return r;
}

static void reply_bytes(struct client *c, const char *data, size_t len)
{
    struct request *r = request_new(c);
    request_reply(r, data, len);
}

static void reply_error(struct client *c, const char *text)
{
    struct request *r = request_new(c);
    request_fail(r, text);
}

static void reply_buf(struct client *c, struct resp_buf *b)
{
    reply_bytes(c, b->data, b->len);
    resp_buf_free(b);
}

/* Make sure the worker's scratch arrays hold n arguments. */
static void scratch_reserve(struct worker *w, size_t n)
{
    if (n <= w->scratch_cap)
        return;
    size_t cap = w->scratch_cap ? w->scratch_cap : 64;
    while (cap < n)
        cap *= 2;
    w->argv = realloc(w->argv, cap * sizeof *w->argv);
    w->lens = realloc(w->lens, cap * sizeof *w->lens);
    w->keys = realloc(w->keys, cap * sizeof *w->keys);
    if (!w->argv || !w->lens || !w->keys)
        abort();
    w->scratch_cap = cap;
}

static bool arg_is(struct worker *w, size_t i, const char *s)
{
    return w->lens[i] == strlen(s) && strncasecmp(w->argv[i], s, w->lens[i]) == 0;
}

/* ------------------------------------------------------------------------ */
/* Answered by the proxy                                                     */

static void proxy_info(struct client *c)
{
    struct runtime *rt = c->w->rt;
    uint64_t sum[8] = {0};
    for (int i = 0; i < rt->nworkers; i++) {
        struct worker_stats *s = &rt->stats[i];
        sum[0] += atomic_load_explicit(&s->commands, memory_order_relaxed);
        sum[1] += atomic_load_explicit(&s->errors, memory_order_relaxed);
        sum[2] += atomic_load_explicit(&s->moved, memory_order_relaxed);
        sum[3] += atomic_load_explicit(&s->ask, memory_order_relaxed);
        sum[4] += atomic_load_explicit(&s->clients, memory_order_relaxed);
        sum[5] += atomic_load_explicit(&s->clients_total, memory_order_relaxed);
        sum[6] += atomic_load_explicit(&s->bytes_in, memory_order_relaxed);
        sum[7] += atomic_load_explicit(&s->bytes_out, memory_order_relaxed);
    }
    const struct cluster_topology *t = c->w->topo;
    char text[2048];
    int n = snprintf(text, sizeof text,
        "# Proxy\r\nproxy_version:%s\r\nthreads:%d\r\nio_backend:io_uring%s\r\n"
        "uptime_in_seconds:%lld\r\n"
        "# Clients\r\nconnected_clients:%llu\r\ntotal_connections_received:%llu\r\n"
        "# Stats\r\ntotal_commands_processed:%llu\r\nerror_replies:%llu\r\n"
        "moved_followed:%llu\r\nask_followed:%llu\r\ntopology_refreshes:%llu\r\n"
        "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
        "# Cluster\r\nnodes:%zu\r\nmasters:%zu\r\nslots_covered:%u\r\n",
        RINGSLOT_VERSION, rt->nworkers,
        c->w->use_bufring ? " (multishot recv, buffer ring)" : " (single-shot recv)",
        (long long)((clock_ms() - rt->start_ms) / 1000),
        (unsigned long long)sum[4], (unsigned long long)sum[5],
        (unsigned long long)sum[0], (unsigned long long)sum[1],
        (unsigned long long)sum[2], (unsigned long long)sum[3],
        (unsigned long long)atomic_load(&rt->refreshes),
        (unsigned long long)sum[6], (unsigned long long)sum[7],
        t ? t->nnodes : 0, t ? t->nmasters : 0,
        t ? cluster_topology_covered(t) : 0);
    struct resp_buf b = {0};
    resp_write_bulk(&b, text, (size_t)n);
    reply_buf(c, &b);
}

static void cmd_proxy(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc >= 2 && arg_is(w, 1, "info")) {
        proxy_info(c);
    } else if (argc >= 2 && arg_is(w, 1, "ping")) {
        reply_bytes(c, "+PONG\r\n", 7);
    } else {
        reply_error(c, "ERR Unknown PROXY subcommand or wrong number of arguments");
    }
}

static void cmd_ping(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc > 2) {
        reply_error(c, "ERR wrong number of arguments for 'ping' command");
    } else if (argc == 2) {
        struct resp_buf b = {0};
        resp_write_bulk(&b, w->argv[1], w->lens[1]);
        reply_buf(c, &b);
    } else {
        reply_bytes(c, "+PONG\r\n", 7);
    }
}

static void cmd_select(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc != 2)
        reply_error(c, "ERR wrong number of arguments for 'select' command");
    else if (w->lens[1] == 1 && w->argv[1][0] == '0')
        reply_bytes(c, "+OK\r\n", 5);
    else
        reply_error(c, "ERR SELECT is not allowed in cluster mode");
}

/* Commands the proxy answers itself. Returns false if not one of them. */
static bool local_command(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (arg_is(w, 0, "ping")) {
        cmd_ping(c, argc);
    } else if (arg_is(w, 0, "echo")) {
        struct resp_buf b = {0};
        if (argc != 2) {
            reply_error(c, "ERR wrong number of arguments for 'echo' command");
            return true;
        }
        resp_write_bulk(&b, w->argv[1], w->lens[1]);
        reply_buf(c, &b);
    } else if (arg_is(w, 0, "quit")) {
        reply_bytes(c, "+OK\r\n", 5);
        c->close_after_reply = true;
        c->reading_stopped = true;
    } else if (arg_is(w, 0, "select")) {
        cmd_select(c, argc);
    } else if (arg_is(w, 0, "proxy")) {
        cmd_proxy(c, argc);
    } else {
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Routing                                                                   */

static void unknown_command(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(w->lens[0] > 128 ? 128 : w->lens[0]), w->argv[0]);
    for (size_t i = 1; i < argc && n < 400; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
                      (int)(w->lens[i] > 64 ? 64 : w->lens[i]), w->argv[i]);
    for (char *p = msg; *p; p++) /* keep the reply one line */
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    reply_error(c, msg);
}

/* Slot of the call, -1 when it has no key, -2 when keys span slots. */
static int call_slot(struct worker *w, const struct command_info *ci, size_t argc)
{
    int nkeys = command_key_positions(ci, (int)argc, w->argv, w->lens, w->keys,
                                      (int)argc);
    if (nkeys <= 0)
        return -1;
    int slot = (int)cluster_keyslot(w->argv[w->keys[0]], w->lens[w->keys[0]]);
    for (int i = 1; i < nkeys; i++)
        if ((int)cluster_keyslot(w->argv[w->keys[i]], w->lens[w->keys[i]]) != slot)
            return -2;
    return slot;
}

static struct link *node_link(struct worker *w, unsigned node)
{
    assert(node < w->node_links_len);
    if (!w->node_links[node])
        w->node_links[node] = link_get(w, w->topo->nodes[node].addr);
    return w->node_links[node];
}

/* Copy the command's bytes into the request, once. */
static void request_set_bytes(struct client *c, struct request *r, const char *buf)
{
    struct resp_req_parser *p = &c->parser;
    if (p->is_inline) {
        struct resp_buf b = {0};
        resp_write_command(&b, (int)p->argc, c->w->argv, c->w->lens);
        r->buf = b.data;
        r->len = b.len;
        return;
    }
    r->len = p->len;
    if (r->len > REQ_INLINE_BYTES) {
        r->buf = malloc(r->len);
        if (!r->buf)
            abort();
    }
    memcpy(r->buf, buf, r->len);
}

static void route(struct client *c, const char *buf, const struct command_info *ci,
                  size_t argc)
{
    struct worker *w = c->w;
    const struct cluster_topology *t = w->topo;
    if (!t || t->nmasters == 0) {
        reply_error(c, "CLUSTERDOWN The cluster is down");
        return;
    }
    int slot = call_slot(w, ci, argc);
    if (slot == -2) {
        reply_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
        return;
    }
    unsigned node;
    if (slot >= 0) {
        node = t->slot_master[slot];
        if (node == CLUSTER_NO_NODE) {
            reply_error(c, "CLUSTERDOWN Hash slot not served");
            return;
        }
    } else {
        node = w->rr++ % (unsigned)t->nmasters;
    }
    struct request *r = request_new(c);
    request_set_bytes(c, r, buf);
    link_enqueue(node_link(w, node), r);
}

void dispatch_command(struct client *c, const char *buf)
{
    struct worker *w = c->w;
    struct resp_req_parser *p = &c->parser;
    size_t argc = p->argc;
    scratch_reserve(w, argc);
    for (size_t i = 0; i < argc; i++) {
        w->argv[i] = resp_req_arg(p, buf, i);
        w->lens[i] = p->argv[i].len;
    }
    atomic_fetch_add_explicit(&w->stats->commands, 1, memory_order_relaxed);
    if (local_command(c, argc))
        return;
    const struct command_info *ci = command_lookup(w->cmds, (int)argc, w->argv, w->lens);
    if (!ci) {
        unknown_command(c, argc);
        return;
    }
    if (!command_arity_ok(ci, (int)argc)) {
        char msg[200];
        snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%.*s' command",
                 (int)(w->lens[0] > 64 ? 64 : w->lens[0]), w->argv[0]);
        for (char *q = msg; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        reply_error(c, msg);
        return;
    }
    route(c, buf, ci, argc);
}

/* ------------------------------------------------------------------------ */
/* Redirections                                                              */

/* "-MOVED 3999 127.0.0.1:6381" / "-ASK 3999 127.0.0.1:6381": is_ask, addr. */
static bool parse_redirect(const char *reply, size_t len, bool *is_ask,
                           char *addr, size_t addrlen)
{
    const char *p;
    if (len > 7 && memcmp(reply, "-MOVED ", 7) == 0) {
        *is_ask = false;
        p = reply + 7;
    } else if (len > 5 && memcmp(reply, "-ASK ", 5) == 0) {
        *is_ask = true;
        p = reply + 5;
    } else {
        return false;
    }
    const char *end = reply + len;
    while (p < end && *p != ' ')
        p++;
    if (p >= end)
        return false;
    p++;
    size_t n = 0;
    while (p + n < end && p[n] != '\r' && n + 1 < addrlen)
        n++;
    if (n == 0 || p + n >= end || p[n] != '\r')
        return false;
    memcpy(addr, p, n);
    addr[n] = '\0';
    return true;
}

/*
 * The reply to r is an error: if it is a redirection we can follow, send r
 * there and return; otherwise deliver the error to the client.
 */
void dispatch_redirect(struct worker *w, struct request *r, const char *reply, size_t len)
{
    bool is_ask;
    char addr[CLUSTER_ADDR_MAX];
    if (!r->client || r->redirects >= REQ_MAX_REDIRECTS ||
        !parse_redirect(reply, len, &is_ask, addr, sizeof addr)) {
        request_reply(r, reply, len);
        return;
    }
    r->redirects++;
    r->asking = is_ask;
    r->link = NULL;
    if (is_ask) {
        atomic_fetch_add_explicit(&w->stats->ask, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&w->stats->moved, 1, memory_order_relaxed);
        control_request_refresh(w->rt, w->id, addr);
    }
    link_enqueue(link_get(w, addr), r);
}
