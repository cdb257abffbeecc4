/*
 * Dispatch: what happens to one parsed client command.
 *
 *   argv ─► command table ─► local answer (PING, ECHO, QUIT, SELECT, PROXY)
 *                        └─► key slots ─► topology ─► the worker's link
 *                                            └─ none loaded yet: held
 *                                               until it is (hold.c)
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

#include "route.h"

/* ------------------------------------------------------------------------ */
/* Routing                                                                   */

static void unknown_command(struct client *c, const struct cmd_args *a)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: ",
                     (int)(a->lens[0] > 128 ? 128 : a->lens[0]), a->argv[0]);
    for (size_t i = 1; i < a->argc && n < 400; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "'%.*s' ",
                      (int)(a->lens[i] > 64 ? 64 : a->lens[i]), a->argv[i]);
    client_reply_error(c, msg); /* request_fail() keeps it one line */
}

/* Redis names the command as its table does: "client|setname" for a
 * subcommand, the lower-cased command otherwise. */
static void wrong_arity_of(struct client *c, const char *fullname)
{
    char msg[200];
    snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", fullname);
    client_reply_error(c, msg);
}

void dispatch_wrong_arity(struct client *c, const struct cmd_args *a)
{
    char name[65];
    cluster_lower(name, sizeof name, a->argv[0], a->lens[0]);
    wrong_arity_of(c, name);
}

/* Slot of the call, -1 when it has no key, -2 when keys span slots. */
static int call_slot(struct worker *w, const struct command_info *ci, const struct cmd_args *a)
{
    int nkeys = command_key_positions(ci, (int)a->argc, a->argv, a->lens, w->args.keys,
                                      (int)a->argc);
    if (nkeys <= 0)
        return -1;
    int slot = (int)cluster_keyslot(a->argv[w->args.keys[0]], a->lens[w->args.keys[0]]);
    for (int i = 1; i < nkeys; i++)
        if ((int)cluster_keyslot(a->argv[w->args.keys[i]],
                                 a->lens[w->args.keys[i]]) != slot)
            return -2;
    return slot;
}

/* The shared link to a node for a protocol; RESP2 links are cached by
 * node index for the current topology. */
static struct link *node_link(struct worker *w, unsigned node, struct link_key key)
{
    assert(node < w->node_links_len);
    if (key.proto != 2 || key.auth)
        return link_get(w, w->topo->nodes[node].addr, key);
    if (!w->node_links[node])
        w->node_links[node] = link_get(w, w->topo->nodes[node].addr, key);
    return w->node_links[node];
}

/* ------------------------------------------------------------------------ */
/* Before the first topology                                                 */

/*
 * Two ways to wait for it, both bounded by the hold time from startup:
 * a call for one node over a shared link becomes a request held in
 * hold.c (hold_unrouted: the client's later calls are still parsed and
 * queued behind it, within the worker's byte cap); a call that cannot be
 * made into such a request without a topology (a fan-out needs the number
 * of masters, a private or subscriber link its node) stops its client's
 * input instead, to be dispatched again (dispatch_defer / dispatch_resume).
 */

bool dispatch_defer(struct client *c)
{
    struct worker *w = c->w;
    if (w->topo || w->quiescing || c->tail_len > DEFER_INPUT_MAX ||
        w->now_ms >= hold_boot_deadline(w))
        return false;
    c->input_held = true; /* this call and what follows wait in c->tail */
    w->clients_awaiting = true;
    return true;
}

void dispatch_resume(struct worker *w)
{
    w->clients_awaiting = false;
    for (struct client *c = w->clients, *next; c; c = next) {
        next = c->next;
        if (c->input_held) /* parsed again at the batch's end; a client */
            client_resume_later(c); /* held for pub/sub just holds again */
    }
}

/* The request for the parsed command, its bytes copied once (inline
 * commands are re-encoded as multibulk for the node). */
static struct request *request_for_command(struct client *c, const struct cmd_args *a,
                                           const char *buf)
{
    struct resp_req_parser *p = &c->parser;
    if (!p->is_inline)
        return request_new(buf, p->len);
    struct resp_buf b = {0};
    resp_write_command(&b, (int)p->argc, a->argv, a->lens);
    return request_adopt(&b);
}

void route_to_node(struct worker *w, struct request *r, unsigned node, struct link_key key)
{
    const struct cluster_topology *t = w->topo;
    if (!t || node >= t->nnodes) {
        request_fail(r, "CLUSTERDOWN The cluster is down");
        return;
    }
    link_enqueue(node_link(w, node, key), r);
}

/* The link for a slot (-1: any master), or NULL with *err set. */
static struct link *slot_link(struct worker *w, int slot, struct link_key key,
                              const char **err)
{
    const struct cluster_topology *t = w->topo;
    if (!t || t->nmasters == 0) {
        *err = "CLUSTERDOWN The cluster is down";
        return NULL;
    }
    unsigned node = slot >= 0 ? t->slot_master[slot] : w->rr++ % (unsigned)t->nmasters;
    if (node == CLUSTER_NO_NODE) {
        *err = "CLUSTERDOWN Hash slot not served";
        return NULL;
    }
    return node_link(w, node, key);
}

void route_to_slot(struct worker *w, struct request *r, int slot, struct link_key key)
{
    if (!w->topo) { /* the first is not loaded yet */
        hold_unrouted(w, r, slot, key);
        return;
    }
    const char *err = NULL;
    struct link *l = slot_link(w, slot, key, &err);
    if (l)
        link_enqueue(l, r);
    else
        request_fail(r, err);
}

/* Remember the links a client wrote through, for WAIT. */
static void note_write(struct client *c, struct link *l)
{
    for (unsigned i = 0; i < c->nwritten; i++)
        if (c->written[i] == l)
            return;
    if (c->nwritten < CLIENT_WRITTEN_MAX)
        c->written[c->nwritten++] = l;
    else
        c->written_all = true;
}

/* Does this call need a connection of its own (it may block the link, or
 * leaves state on it)? XREAD/XREADGROUP only block with BLOCK. */
static bool needs_private(struct worker *w, const struct command_info *ci, const struct cmd_args *a)
{
    if (arg_is(a, 0, "watch"))
        return true;
    if (!(ci->flags & CMD_BLOCKING))
        return false;
    if (!arg_is(a, 0, "xread") && !arg_is(a, 0, "xreadgroup"))
        return true;
    for (size_t i = 1; i < a->argc; i++)
        if (arg_is(a, i, "block"))
            return true;
    return false;
}

/* The link this client's call goes on: its own private link to that node
 * if it holds one, a newly lent one if the call needs it, else the shared
 * link. NULL when no private link can be had. */
static struct link *client_link(struct client *c, struct link *shared,
                                const struct command_info *ci, const struct cmd_args *a)
{
    struct link *p = c->plinks ? client_private_link(c, shared->addr) : NULL;
    if (p)
        return p;
    if (!c->multiplex_off && !needs_private(c->w, ci, a))
        return shared;
    return link_lend(c->w, shared->addr, c);
}

static void route(struct client *c, const char *buf, const struct command_info *ci,
                  const struct cmd_args *a)
{
    struct worker *w = c->w;
    int slot = call_slot(w, ci, a);
    if (!(ci->flags & CMD_READONLY))
        c->last_write_ms = w->now_ms; /* --replica-read-after-write */
    if (slot == -2) {
        if (!runtime_cross_slot(w) || !fanout_split(c, ci, a))
            client_reply_error(c, "CROSSSLOT Keys in request don't hash to the same slot");
        return;
    }
    /* cluster mode: maybe point the client at the proxy owning the slot
     * (never inside MULTI, a blocking call or pub/sub) */
    if (slot >= 0 && c->pubsub == PUBSUB_NONE && !needs_private(w, ci, a) &&
        clustermode_moved(c, slot))
        return;
    if (!w->topo && !c->multiplex_off && !needs_private(w, ci, a)) {
        /* before the first topology: held for the shared link it will take */
        struct request *r = request_for_command(c, a, buf);
        request_set_command(r, ci->flags, slot);
        client_append(c, r);
        hold_unrouted(w, r, slot, client_key(c));
        return;
    }
    if (!w->topo && dispatch_defer(c)) /* it needs a link of its own */
        return;
    struct link *l = replica_read_link(c, ci, slot);
    if (!l) {
        const char *err = NULL;
        struct link *shared = slot_link(w, slot, client_key(c), &err);
        if (!shared) {
            client_reply_error(c, err);
            return;
        }
        l = client_link(c, shared, ci, a);
    }
    if (!l) {
        client_reply_error(c, "ERR max number of private connections to the cluster reached");
        return;
    }
    if (arg_is(a, 0, "watch")) {
        if (c->watch_link && c->watch_link != l) {
            client_reply_error(c, "ERR WATCH keys served by different nodes are not supported");
            return;
        }
        c->watch_link = l;
    }
    struct request *r = request_for_command(c, a, buf);
    request_set_command(r, ci->flags, slot);
    client_append(c, r);
    if ((ci->flags & CMD_WRITE) && l->kind == LINK_SHARED)
        note_write(c, l);
    link_enqueue(l, r);
}

void dispatch_forward_on(struct client *c, const struct cmd_args *a, struct link *l)
{
    struct request *r = request_from_args(c->w, (int)a->argc, a->argv, a->lens);
    client_append(c, r);
    link_enqueue(l, r);
}

void dispatch_forward_any(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    struct request *r = request_from_args(w, (int)a->argc, a->argv, a->lens);
    r->client = c;
    client_append(c, r);
    route_to_slot(w, r, -1, client_key(c));
}

static void multi_refuse(struct client *c, const char *err)
{
    c->multi_abort = true;
    client_reply_error(c, err);
}

#define MULTI_CMD "*1\r\n$5\r\nMULTI\r\n"
#define EXEC_CMD "*1\r\n$4\r\nEXEC\r\n"

/* CLIENT LIST's cmd= (Redis shows the last command, subcommand included,
 * e.g. "client|list"); a copy, since the command table may be replaced. */
static void note_command(struct client *c, const char *name)
{
    if (!name)
        name = "NULL";
    size_t n = strnlen(name, sizeof c->last_cmd - 1); /* per command: no snprintf */
    memcpy(c->last_cmd, name, n);
    c->last_cmd[n] = '\0';
}

/* WATCH inside MULTI: past the arity and key checks (whose errors abort
 * the block) Redis runs it, refuses it and leaves the block as it was. */
static void multi_watch(struct client *c, const struct command_info *ci, const struct cmd_args *a)
{
    if (call_slot(c->w, ci, a) == -2)
        multi_refuse(c, "CROSSSLOT Keys in request don't hash to the same slot");
    else
        client_reply_error(c, "ERR WATCH inside MULTI is not allowed");
}

/* Inside MULTI: check the command as Redis would at queue time, keep its
 * bytes for EXEC, answer +QUEUED. */
static void multi_queue(struct client *c, const char *buf, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const struct command_info *ci = command_lookup(w->cmds, (int)a->argc, a->argv, a->lens);
    metrics_command(w, ci ? ci->name : NULL);
    note_command(c, ci ? ci->name : NULL);
    if (!ci) {
        c->multi_abort = true;
        unknown_command(c, a);
        return;
    }
    if (!command_arity_ok(ci, (int)a->argc)) {
        c->multi_abort = true;
        wrong_arity_of(c, ci->name);
        return;
    }
    if (arg_is(a, 0, "watch")) {
        multi_watch(c, ci, a);
        return;
    }
    /* EXEC runs the block on a shared link: a subscription there would
     * turn every other client's replies into pub/sub pushes. */
    if (w->route_hooks->pubsub_is_subscribe_command(a)) {
        multi_refuse(c, "ERR Command not allowed inside a transaction");
        return;
    }
    int slot = call_slot(w, ci, a);
    if (slot == -2 || (slot >= 0 && c->multi_slot >= 0 && slot != c->multi_slot)) {
        multi_refuse(c, "CROSSSLOT Keys in request don't hash to the same slot");
        return;
    }
    if (slot >= 0)
        c->multi_slot = slot;
    if (c->multi_buf.len == 0) /* the block is built in place: see dispatch_exec */
        resp_buf_append(&c->multi_buf, MULTI_CMD, sizeof MULTI_CMD - 1);
    if (c->parser.is_inline)
        resp_write_command(&c->multi_buf, (int)a->argc, a->argv, a->lens);
    else
        resp_buf_append(&c->multi_buf, buf, c->parser.len);
    c->multi_cmds++;
    client_reply_bytes(c, "+QUEUED\r\n", 9);
}

/* EXEC: the whole block in one request, contiguous on one link, so it is
 * atomic even on a shared link. */
void dispatch_exec(struct client *c)
{
    struct worker *w = c->w;
    const char *err = NULL;
    /* After WATCH the block must run where the watch is (EXEC unwatches). */
    struct link *l = c->watch_link, *watch_link = l;
    c->watch_link = NULL;
    /* A block without keys runs on the pub/sub home, where PUBLISH goes:
     * a PUBLISH in it counts what one outside would (not some master's). */
    int slot = c->multi_slot >= 0 || !w->topo ? c->multi_slot : w->route_hooks->pubsub_home_slot(w->topo);
    if (!l && w->topo && !(l = slot_link(w, slot, client_key(c), &err))) {
        client_reply_error(c, err);
        return;
    }
    /* multi_buf already holds MULTI and the queued commands: the request
     * takes the buffer over instead of copying it */
    if (c->multi_buf.len == 0)
        resp_buf_append(&c->multi_buf, MULTI_CMD, sizeof MULTI_CMD - 1);
    resp_buf_append(&c->multi_buf, EXEC_CMD, sizeof EXEC_CMD - 1);
    struct request *r = client_request_new(c);
    r->buf = c->multi_buf.data;
    r->len = c->multi_buf.len;
    memset(&c->multi_buf, 0, sizeof c->multi_buf);
    r->is_block = true;
    r->block_cmds = c->multi_cmds;
    r->block_watched = watch_link != NULL;
    if (!l) { /* no topology yet */
        hold_unrouted(w, r, c->multi_slot, client_key(c));
        return;
    }
    if (l->kind == LINK_SHARED)
        note_write(c, l);
    c->last_write_ms = w->now_ms;
    link_enqueue(l, r);
}

/* A RESP2 subscriber's command: Redis checks the arity first, then refuses
 * it naming the command as its table does ("client|list"). */
static void refuse_subscribed(struct client *c, const struct cmd_args *a, const struct command_info *ci,
                              const char *name)
{
    if (ci && !command_arity_ok(ci, (int)a->argc))
        wrong_arity_of(c, ci->name);
    else
        c->w->route_hooks->pubsub_refuse(c, ci ? ci->name : name);
}

/* False when the command must wait for the pub/sub state (untouched). */
static bool dispatch_one(struct client *c, const char *buf)
{
    struct worker *w = c->w;
    struct resp_req_parser *p = &c->parser;
    size_t nargs = p->argc;
    /* the slices live in the worker's scratch; handlers get them as args */
    arg_scratch_reserve(&w->args, nargs);
    for (size_t i = 0; i < nargs; i++) {
        w->args.argv[i] = resp_req_arg(p, buf, i);
        w->args.lens[i] = p->argv[i].len;
    }
    const struct cmd_args args = {.argc = nargs, .argv = w->args.argv, .lens = w->args.lens};
    const struct cmd_args *a = &args;
    enum pubsub_gate gate = w->route_hooks->pubsub_gate(c, a);
    if (gate == PUBSUB_WAIT)
        return false;
    stat_add(&w->stats->commands, 1);
    c->last_ms = w->now_ms;
    if (!w->route_hooks->admin_gate(c, buf, a))
        return true;
    const struct proxy_command *pc = w->route_hooks->proxy_command_lookup(a->argv[0], a->lens[0]);
    /* inside MULTI everything is queued but what acts on the transaction */
    if (c->in_multi && !(pc && (pc->flags & PC_MULTI_CONTROL))) {
        multi_queue(c, buf, a);
        return true;
    }
    if (pc && pc->fn) { /* the proxy's own (a row without fn is forwarded) */
        metrics_command(w, pc->name);
        /* the backend's table names subcommands ("client|list") */
        const struct command_info *sub =
            a->argc >= 2 ? command_lookup(w->cmds, (int)a->argc, a->argv, a->lens) : NULL;
        note_command(c, sub ? sub->name : pc->name);
        /* a known subcommand's arity is checked first, as Redis does (an
         * unknown one is the handler's to answer: it may serve it) */
        if (sub && strchr(sub->name, '|') && !command_arity_ok(sub, (int)a->argc)) {
            wrong_arity_of(c, sub->name);
            return true;
        }
        if (gate != PUBSUB_REFUSE) {
            pc->fn(c, a);
            return true;
        }
        if (!sub) /* the table knows its arity */
            sub = command_lookup(w->cmds, (int)a->argc, a->argv, a->lens);
        refuse_subscribed(c, a, sub, pc->name);
        return true;
    }
    const struct command_info *ci = command_lookup(w->cmds, (int)a->argc, a->argv, a->lens);
    metrics_command(w, ci ? ci->name : NULL);
    note_command(c, ci ? ci->name : NULL);
    if (!ci) {
        unknown_command(c, a);
        return true;
    }
    if (!command_arity_ok(ci, (int)a->argc)) {
        wrong_arity_of(c, ci->name);
        return true;
    }
    if (gate == PUBSUB_REFUSE) /* after the unknown and arity checks, as Redis */
        refuse_subscribed(c, a, ci, ci->name);
    else
        route(c, buf, ci, a);
    return true;
}

bool dispatch_command(struct client *c, const char *buf)
{
    bool done = dispatch_one(c, buf);
    if (done && c->input_held) { /* deferred (dispatch_defer): it comes again */
        stat_add(&c->w->stats->commands, (uint64_t)-1);
        metrics_command_undo(c->w);
    }
    metrics_dispatch_end(c->w); /* requests made later are not this command's */
    return done;
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
void dispatch_note_block_redirect(struct request *r, const char *reply, size_t len)
{
    bool is_ask;
    if (parse_redirect(reply, len, &is_ask, r->block_redirect, sizeof r->block_redirect))
        r->block_redirect_ask = is_ask;
    else
        r->block_redirect[0] = '\0';
}

void dispatch_redirect(struct link *from, struct request *r, const char *reply, size_t len)
{
    struct worker *w = from->w;
    bool is_ask;
    char addr[CLUSTER_ADDR_MAX];
    bool redirect;
    if (r->block_redirect[0]) {
        is_ask = r->block_redirect_ask;
        snprintf(addr, sizeof addr, "%s", r->block_redirect);
        redirect = true;
    } else {
        redirect = reply[0] == '-' && parse_redirect(reply, len, &is_ask, addr, sizeof addr);
    }
    /* A watched block whose keys are elsewhere (or moved) gets the node's
     * own EXECABORT, as a cluster client talking to that node would: sent
     * to another node it would run without its WATCH. */
    if (!redirect || !request_wanted(r) || r->redirects >= REQ_MAX_REDIRECTS ||
        r->block_watched) {
        request_reply(r, reply, len);
        return;
    }
    r->redirects++;
    r->asking = is_ask;
    r->link = NULL;
    if (is_ask) {
        stat_add(&w->stats->ask, 1);
    } else {
        stat_add(&w->stats->moved, 1);
        control_request_refresh(w->rt, w->id, addr);
    }
    /* A call that needed its own connection keeps needing one there. */
    struct link *to;
    if (from->kind == LINK_PRIVATE && r->client) {
        to = client_private_link(r->client, addr);
        if (!to)
            to = link_lend(w, addr, r->client);
        if (!to) {
            request_fail(r, "ERR max number of private connections to the cluster reached");
            return;
        }
    } else {
        to = link_get(w, addr, (struct link_key){.proto = from->proto, .auth = from->auth});
    }
    link_enqueue(to, r);
}
