/*
 * Commands the proxy answers itself, from a sorted table.
 *
 * Dispatch looks every command up here first (a binary search over a few
 * dozen names, on a lower-cased copy of argv[0] of bounded length); a hit
 * never reaches a backend link. Everything else is routed by the command
 * table the backend described (cluster/).
 *
 * Handlers read their arguments from w->argv / w->lens and answer through
 * client_reply_*, which keeps the reply in request order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime.h"

#define NAME_MAX_LEN 32

bool arg_is(const struct worker *w, size_t i, const char *lower)
{
    size_t n = strlen(lower);
    return w->lens[i] == n && strncasecmp(w->argv[i], lower, n) == 0;
}

static void wrong_arity(struct client *c, const char *name)
{
    char msg[128];
    snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", name);
    client_reply_error(c, msg);
}

/* READONLY / READWRITE / ASKING: the proxy routes and follows
 * redirections itself, so these are accepted and change nothing. */
static void reply_ok(struct client *c, size_t argc)
{
    client_reply_bytes(c, "+OK\r\n", 5);
}

static void reply_bulk(struct client *c, const char *s, size_t len)
{
    struct resp_buf b = {0};
    resp_write_bulk(&b, s, len);
    client_reply_buf(c, &b);
}

/* ------------------------------------------------------------------------ */
/* Connection commands                                                       */

static void cmd_ping(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc > 2)
        wrong_arity(c, "ping");
    else if (argc == 2)
        reply_bulk(c, w->argv[1], w->lens[1]);
    else
        client_reply_bytes(c, "+PONG\r\n", 7);
}

static void cmd_echo(struct client *c, size_t argc)
{
    if (argc != 2)
        wrong_arity(c, "echo");
    else
        reply_bulk(c, c->w->argv[1], c->w->lens[1]);
}

static void cmd_quit(struct client *c, size_t argc)
{
    client_reply_bytes(c, "+OK\r\n", 5);
    c->close_after_reply = true;
    c->reading_stopped = true;
}

static void cmd_select(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc != 2)
        wrong_arity(c, "select");
    else if (w->lens[1] == 1 && w->argv[1][0] == '0')
        client_reply_bytes(c, "+OK\r\n", 5);
    else
        client_reply_error(c, "ERR SELECT is not allowed in cluster mode");
}

static void write_str_field(struct resp_buf *b, const char *k, const char *v)
{
    resp_write_bulk(b, k, strlen(k));
    resp_write_bulk(b, v, strlen(v));
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]: the proxy answers with
 * a Redis 7-like map and from now on speaks that protocol to this client
 * (its calls go over links that speak it too). */
static void cmd_hello(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    int proto = c->proto;
    size_t i = 1;
    if (argc >= 2) {
        if (w->lens[1] != 1 || (w->argv[1][0] != '2' && w->argv[1][0] != '3')) {
            client_reply_error(c, "NOPROTO unsupported protocol version");
            return;
        }
        proto = w->argv[1][0] - '0';
        i = 2;
    }
    for (; i < argc; i++) {
        if (arg_is(w, i, "auth") && i + 2 < argc) {
            i += 2; /* checked by the requirepass gate before we get here */
        } else if (arg_is(w, i, "setname") && i + 1 < argc) {
            i++;
            client_set_name(c, w->argv[i], w->lens[i]);
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "ERR Syntax error in HELLO option '%.*s'",
                     (int)(w->lens[i] > 32 ? 32 : w->lens[i]), w->argv[i]);
            client_reply_error(c, msg);
            return;
        }
    }
    c->proto = proto;
    struct resp_buf b = {0};
    resp_write_map_head(&b, proto, 7);
    write_str_field(&b, "server", "ringslot");
    write_str_field(&b, "version", RINGSLOT_VERSION);
    resp_write_bulk(&b, "proto", 5);
    resp_write_integer(&b, proto);
    resp_write_bulk(&b, "id", 2);
    resp_write_integer(&b, (long long)c->id);
    write_str_field(&b, "mode", "cluster");
    write_str_field(&b, "role", "master");
    resp_write_bulk(&b, "modules", 7);
    resp_write_array_head(&b, 0);
    client_reply_buf(c, &b);
}

/* ------------------------------------------------------------------------ */
/* PROXY                                                                     */

static void sum_stats(const struct runtime *rt, struct worker_stats *out)
{
    memset(out, 0, sizeof *out);
#define SUM(f) atomic_store_explicit(&out->f, \
        atomic_load_explicit(&out->f, memory_order_relaxed) + \
        atomic_load_explicit(&rt->stats[i].f, memory_order_relaxed), memory_order_relaxed)
    for (int i = 0; i < rt->nworkers; i++) {
        SUM(commands); SUM(errors); SUM(moved); SUM(ask);
        SUM(clients); SUM(clients_total); SUM(bytes_in); SUM(bytes_out);
    }
#undef SUM
}

static unsigned long long get(_Atomic uint64_t *v)
{
    return (unsigned long long)atomic_load_explicit(v, memory_order_relaxed);
}

static void proxy_info(struct client *c)
{
    struct runtime *rt = c->w->rt;
    struct worker_stats s;
    sum_stats(rt, &s);
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
        get(&s.clients), get(&s.clients_total), get(&s.commands), get(&s.errors),
        get(&s.moved), get(&s.ask), get(&rt->refreshes), get(&s.bytes_in),
        get(&s.bytes_out), t ? t->nnodes : 0, t ? t->nmasters : 0,
        t ? cluster_topology_covered(t) : 0);
    reply_bulk(c, text, (size_t)n);
}

static void proxy_multiplexing(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc == 3 && arg_is(w, 2, "off")) {
        c->multiplex_off = true;
        client_reply_bytes(c, "+OK\r\n", 5);
    } else if (argc == 3 && arg_is(w, 2, "status")) {
        if (c->multiplex_off)
            client_reply_bytes(c, "+off\r\n", 6);
        else
            client_reply_bytes(c, "+on\r\n", 5);
    } else {
        client_reply_error(c, "ERR Invalid PROXY MULTIPLEXING subcommand");
    }
}

static void cmd_proxy(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc >= 2 && arg_is(w, 1, "multiplexing"))
        proxy_multiplexing(c, argc);
    else if (argc >= 2 && arg_is(w, 1, "info"))
        proxy_info(c);
    else if (argc == 2 && arg_is(w, 1, "ping"))
        client_reply_bytes(c, "+PONG\r\n", 7);
    else
        client_reply_error(c, "ERR Unknown PROXY subcommand or wrong number of arguments");
}

/* ------------------------------------------------------------------------ */
/* Every master                                                              */

static void all_sum(struct client *c, size_t argc) { fanout_all_masters(c, argc, MERGE_SUM); }
static void all_ok(struct client *c, size_t argc) { fanout_all_masters(c, argc, MERGE_OK); }
static void all_concat(struct client *c, size_t argc) { fanout_all_masters(c, argc, MERGE_CONCAT); }
static void all_first(struct client *c, size_t argc) { fanout_all_masters(c, argc, MERGE_FIRST); }
static void all_min(struct client *c, size_t argc) { fanout_all_masters(c, argc, MERGE_MIN); }

static void cmd_randomkey(struct client *c, size_t argc)
{
    fanout_all_masters(c, argc, MERGE_FIRST_NONNULL);
}

/* SCRIPT and FUNCTION: what changes state goes to every master. */
static void cmd_script(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc >= 2 && arg_is(w, 1, "exists"))
        fanout_all_masters(c, argc, MERGE_AND_ARRAY);
    else if (argc >= 2 && arg_is(w, 1, "load"))
        fanout_all_masters(c, argc, MERGE_FIRST);
    else if (argc >= 2 && (arg_is(w, 1, "flush") || arg_is(w, 1, "kill")))
        fanout_all_masters(c, argc, MERGE_OK);
    else
        dispatch_forward_any(c, argc);
}

static void cmd_function(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc >= 2 && arg_is(w, 1, "load"))
        fanout_all_masters(c, argc, MERGE_FIRST);
    else if (argc >= 2 && (arg_is(w, 1, "delete") || arg_is(w, 1, "flush") ||
                           arg_is(w, 1, "restore")))
        fanout_all_masters(c, argc, MERGE_OK);
    else
        dispatch_forward_any(c, argc);
}

static void cmd_scan(struct client *c, size_t argc)
{
    if (argc < 2)
        wrong_arity(c, "scan");
    else
        fanout_scan(c, argc);
}

/* WAIT covers the writes of the connection it runs on: ask every shared
 * link this client wrote through, with the timeout capped so the link's
 * other clients are never held up for long; the minimum is the answer
 * (it may under-report durability, never over-report it). */
static void cmd_wait(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc != 3) {
        wrong_arity(c, "wait");
        return;
    }
    char *end;
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)(w->lens[2] < 31 ? w->lens[2] : 31), w->argv[2]);
    long long timeout = strtoll(num, &end, 10);
    if (*end || timeout < 0) {
        client_reply_error(c, "ERR timeout is not an integer or out of range");
        return;
    }
    long long cap = w->rt->cfg->wait_timeout_cap_ms;
    if (timeout == 0 || timeout > cap)
        timeout = cap;
    int n = snprintf(num, sizeof num, "%lld", timeout);
    w->argv[2] = num;
    w->lens[2] = (size_t)n;
    if (c->nwritten == 0) {
        dispatch_forward_any(c, argc);
        return;
    }
    fanout_to_links(c, argc, c->written, c->nwritten, MERGE_MIN);
    c->nwritten = 0;
}

static void refused(struct client *c, size_t argc)
{
    char name[33], msg[160];
    size_t n = c->w->lens[0] < 32 ? c->w->lens[0] : 32;
    for (size_t i = 0; i < n; i++) {
        char ch = c->w->argv[0][i];
        name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    name[n] = '\0';
    snprintf(msg, sizeof msg, "ERR command '%s' is not supported by ringslot", name);
    client_reply_error(c, msg);
}

/* ------------------------------------------------------------------------ */
/* Pub/Sub                                                                   */

/*
 * A subscribed client gets private subscriber links: one for SUBSCRIBE and
 * PSUBSCRIBE (Redis Cluster broadcasts PUBLISH to every node, so any node
 * will do: the first channel's slot picks one, spreading clients), one per
 * node for SSUBSCRIBE (shard channels live on their slot's node). Their
 * commands are written and forgotten; everything the node sends back is
 * forwarded to the client as it comes (link.c, subscriber_reply).
 */
static struct link *subscriber_link(struct client *c, int slot)
{
    struct worker *w = c->w;
    const char *err = NULL;
    struct link *shared = NULL;
    if (w->topo && w->topo->nmasters) {
        unsigned node = w->topo->slot_master[slot];
        if (node != CLUSTER_NO_NODE)
            shared = link_get(w, w->topo->nodes[node].addr, c->proto);
        else
            err = "CLUSTERDOWN Hash slot not served";
    } else {
        err = "CLUSTERDOWN The cluster is down";
    }
    if (!shared) {
        client_reply_error(c, err);
        return NULL;
    }
    struct link *l = client_private_link(c, shared->addr);
    if (l && l->subscriber)
        return l;
    l = link_lend(w, shared->addr, c);
    if (!l) {
        client_reply_error(c, "ERR max number of private connections to the cluster reached");
        return NULL;
    }
    l->subscriber = true;
    c->sublinks++;
    return l;
}

/* Write w->argv on a subscriber link; replies come back as pushes. */
static void subscriber_send(struct client *c, struct link *l, size_t argc)
{
    struct request *r = request_from_args(c->w, (int)argc, c->w->argv, c->w->lens);
    link_enqueue(l, r); /* no client: freed once written */
}

static int channel_slot(struct client *c, size_t i)
{
    return (int)cluster_keyslot(c->w->argv[i], c->w->lens[i]);
}

static void cmd_subscribe(struct client *c, size_t argc)
{
    if (argc < 2) {
        wrong_arity(c, c->w->lens[0] == 9 ? "subscribe" : "psubscribe");
        return;
    }
    if (!c->pubsub_link) {
        struct link *l = subscriber_link(c, channel_slot(c, 1));
        if (!l)
            return;
        c->pubsub_link = l;
    }
    subscriber_send(c, c->pubsub_link, argc);
}

static void cmd_ssubscribe(struct client *c, size_t argc)
{
    if (argc < 2) {
        wrong_arity(c, "ssubscribe");
        return;
    }
    struct link *l = subscriber_link(c, channel_slot(c, 1));
    if (l)
        subscriber_send(c, l, argc);
}

/* Not subscribed: answer as Redis does, one confirmation per channel. */
static void unsubscribe_locally(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    struct resp_buf b = {0};
    const char *kind = w->argv[0];
    size_t klen = w->lens[0];
    char lower[16];
    for (size_t i = 0; i < klen && i < sizeof lower; i++)
        lower[i] = (kind[i] >= 'A' && kind[i] <= 'Z') ? (char)(kind[i] + 32) : kind[i];
    for (size_t i = 1; i < (argc > 1 ? argc : 2); i++) {
        resp_write_array_head(&b, 3);
        resp_write_bulk(&b, lower, klen < sizeof lower ? klen : sizeof lower);
        if (argc > 1)
            resp_write_bulk(&b, w->argv[i], w->lens[i]);
        else
            resp_write_null(&b, c->proto);
        resp_write_integer(&b, 0);
    }
    client_reply_buf(c, &b);
}

static void cmd_unsubscribe(struct client *c, size_t argc)
{
    if (c->pubsub_link)
        subscriber_send(c, c->pubsub_link, argc);
    else
        unsubscribe_locally(c, argc);
}

static void cmd_sunsubscribe(struct client *c, size_t argc)
{
    bool sent = false;
    for (struct link *l = c->plinks; l; l = l->owner_next)
        if (l->subscriber && l != c->pubsub_link) {
            subscriber_send(c, l, argc);
            sent = true;
        }
    if (!sent)
        unsubscribe_locally(c, argc);
}

/* PING while subscribed is answered by the node, in pub/sub form. */
static void cmd_ping_maybe_subscribed(struct client *c, size_t argc)
{
    if (!c->sublinks) {
        cmd_ping(c, argc);
        return;
    }
    struct link *l = c->pubsub_link;
    for (struct link *p = c->plinks; !l && p; p = p->owner_next)
        if (p->subscriber)
            l = p;
    subscriber_send(c, l, argc);
}

static void cmd_pubsub(struct client *c, size_t argc)
{
    struct worker *w = c->w;
    if (argc >= 2 && (arg_is(w, 1, "numsub") || arg_is(w, 1, "shardnumsub")))
        fanout_all_masters(c, argc, MERGE_PAIRS);
    else if (argc >= 2 && arg_is(w, 1, "numpat"))
        fanout_all_masters(c, argc, MERGE_SUM);
    else if (argc >= 2 && (arg_is(w, 1, "channels") || arg_is(w, 1, "shardchannels")))
        fanout_all_masters(c, argc, MERGE_UNION);
    else
        dispatch_forward_any(c, argc);
}

/* ------------------------------------------------------------------------ */
/* MULTI / EXEC                                                              */

static void multi_reset(struct client *c)
{
    c->in_multi = false;
    c->multi_abort = false;
    c->multi_slot = -1;
    c->multi_cmds = 0;
    c->multi_buf.len = 0;
}

static void cmd_multi(struct client *c, size_t argc)
{
    if (c->in_multi) {
        client_reply_error(c, "ERR MULTI calls can not be nested");
        return;
    }
    multi_reset(c);
    c->in_multi = true;
    client_reply_bytes(c, "+OK\r\n", 5);
}

/* Forward a fixed command on link l, in the client's FIFO. */
static void forward_words(struct client *c, struct link *l, const char *word)
{
    const char *av[1] = {word};
    size_t al[1] = {strlen(word)};
    struct request *r = request_from_args(c->w, 1, av, al);
    client_append(c, r);
    link_enqueue(l, r);
}

static void cmd_discard(struct client *c, size_t argc)
{
    if (!c->in_multi) {
        client_reply_error(c, "ERR DISCARD without MULTI");
        return;
    }
    multi_reset(c);
    if (c->watch_link) { /* DISCARD unwatches: UNWATCH answers +OK too */
        struct link *l = c->watch_link;
        c->watch_link = NULL;
        forward_words(c, l, "UNWATCH");
        return;
    }
    client_reply_bytes(c, "+OK\r\n", 5);
}

static void cmd_unwatch(struct client *c, size_t argc)
{
    if (c->watch_link) {
        struct link *l = c->watch_link;
        c->watch_link = NULL; /* given back once the reply is in */
        dispatch_forward_on(c, argc, l);
        return;
    }
    client_reply_bytes(c, "+OK\r\n", 5);
}

/* RESET: back to a fresh connection's state. Links holding WATCH or
 * subscriptions are closed rather than cleaned. */
static void cmd_reset(struct client *c, size_t argc)
{
    multi_reset(c);
    c->multiplex_off = c->w->rt->cfg->disable_multiplexing == CONFIG_MULTIPLEXING_ALWAYS;
    c->watch_link = NULL;
    while (c->plinks)
        link_giveback(c->plinks);
    c->nwritten = 0;
    client_reply_bytes(c, "+RESET\r\n", 8);
}

static void cmd_exec(struct client *c, size_t argc)
{
    if (!c->in_multi) {
        client_reply_error(c, "ERR EXEC without MULTI");
        return;
    }
    if (c->multi_abort) {
        multi_reset(c);
        client_reply_error(c, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    dispatch_exec(c);
    multi_reset(c);
}

/* ------------------------------------------------------------------------ */
/* Table (sorted by name)                                                    */

static const struct proxy_command table[] = {
    {"bgrewriteaof", all_ok},
    {"asking", reply_ok},
    {"bgsave", all_first},
    {"cluster", clustermode_command},
    {"dbsize", all_sum},
    {"debug", refused},
    {"discard", cmd_discard},
    {"echo", cmd_echo},
    {"exec", cmd_exec},
    {"failover", refused},
    {"flushall", all_ok},
    {"flushdb", all_ok},
    {"function", cmd_function},
    {"hello", cmd_hello},
    {"keys", all_concat},
    {"lastsave", all_min},
    {"monitor", refused},
    {"multi", cmd_multi},
    {"ping", cmd_ping_maybe_subscribed},
    {"proxy", cmd_proxy},
    {"psubscribe", cmd_subscribe},
    {"psync", refused},
    {"pubsub", cmd_pubsub},
    {"punsubscribe", cmd_unsubscribe},
    {"quit", cmd_quit},
    {"randomkey", cmd_randomkey},
    {"readonly", reply_ok},
    {"readwrite", reply_ok},
    {"replconf", refused},
    {"replicaof", refused},
    {"reset", cmd_reset},
    {"save", all_ok},
    {"scan", cmd_scan},
    {"script", cmd_script},
    {"select", cmd_select},
    {"shutdown", refused},
    {"slaveof", refused},
    {"ssubscribe", cmd_ssubscribe},
    {"subscribe", cmd_subscribe},
    {"sunsubscribe", cmd_sunsubscribe},
    {"sync", refused},
    {"unsubscribe", cmd_unsubscribe},
    {"unwatch", cmd_unwatch},
    {"wait", cmd_wait},
};

const struct proxy_command *proxy_command_lookup(const char *name, size_t len)
{
    char lower[NAME_MAX_LEN];
    if (len == 0 || len >= sizeof lower)
        return NULL;
    for (size_t i = 0; i < len; i++)
        lower[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    lower[len] = '\0';
    size_t lo = 0, hi = sizeof table / sizeof table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(lower, table[mid].name);
        if (cmp == 0)
            return &table[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
