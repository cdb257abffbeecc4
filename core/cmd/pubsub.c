/*
 * Pub/sub: a client's subscriptions, held on private subscriber links.
 *
 * A subscribed client gets subscriber links, each in one role (sub_role):
 *
 *   main      c->pubsub_link: SUBSCRIBE and PSUBSCRIBE, on the home node
 *   shard     one per node for SSUBSCRIBE (shard channels live on their
 *             slot's node); each node counts only its own shard channels,
 *             so the count in every confirmation is rewritten to the
 *             client's total (pubsub_client_count), as Redis counts
 *   keyspace  one per other master, for __keyspace@/__keyevent@ channels
 *             and patterns, which each node publishes only locally; their
 *             copies of the commands are orphans, so the client sees one
 *             confirmation per channel, from the main link
 *
 * The home node, and PUBLISH's count. PUBLISH answers how many clients
 * received the message. Redis Cluster sends every PUBLISH to all nodes,
 * but each node counts only its own subscribers, so the count depends on
 * where the PUBLISH and the subscriptions are. Every main link therefore
 * goes to one node, the master of the lowest served slot (slot 0 while the
 * cluster is whole: the same for every worker and every ringslot in front
 * of the cluster), and PUBLISH goes there too: its count is every
 * subscriber made through ringslot (plus the node's own direct ones), as
 * one Redis would say. Summing a PUBLISH fanned out to every master is not
 * an option: each copy is propagated to all nodes again, so subscribers
 * would get the message once per master. The price: classic pub/sub's
 * subscriber connections (not SSUBSCRIBE's) all land on that node, which
 * Redis Cluster makes match every message anyway. A topology that moves
 * the home closes the clients subscribed on the old one (as a dead link
 * does), so that they subscribe again where PUBLISH now goes; a keyless
 * MULTI block runs on the home too (dispatch_exec).
 *
 * Replies. A command on a subscriber link keeps its place in the link's
 * FIFO and (except the keyspace copies) in the client's, like any request;
 * it is answered by one confirmation per channel (or by one error), which
 * go to the client in order as they come, and it leaves the FIFO with the
 * last one. An argument-less (P|S)UNSUBSCRIBE is answered once per
 * subscription of its kind, known once it reaches the head (the link's
 * counts, from the confirmations before it). Published messages pass at
 * once (client_push keeps them behind replies due earlier).
 *
 * The client's state (enum client_pubsub, net/net.h) is CHANGING while any
 * subscriber link has a command in flight; when the last is answered,
 * links left with no subscription go back to the pool and the state is
 * SUBSCRIBED or NONE. A RESP2 client's next command waits for that (it may
 * be refused, and PING's form depends on it); so does RESET in RESP3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"

/* ------------------------------------------------------------------------ */
/* State                                                                     */

/* (P|S)SUBSCRIBE and (P|S)UNSUBSCRIBE: allowed in every state. */
bool pubsub_is_subscribe_command(const struct cmd_args *a)
{
    static const char *names[] = {"subscribe",   "psubscribe",   "ssubscribe",
                                  "unsubscribe", "punsubscribe", "sunsubscribe"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (arg_is(a, 0, names[i]))
            return true;
    return false;
}

enum pubsub_gate pubsub_gate(struct client *c, const struct cmd_args *a)
{
    switch (c->pubsub) {
    case PUBSUB_NONE:
        return PUBSUB_GO;
    case PUBSUB_CHANGING:
        if (pubsub_is_subscribe_command(a) || (c->proto != 2 && !arg_is(a, 0, "reset")))
            return PUBSUB_GO;
        return PUBSUB_WAIT;
    case PUBSUB_SUBSCRIBED:
        if (c->proto != 2 || pubsub_is_subscribe_command(a) || arg_is(a, 0, "ping") ||
            arg_is(a, 0, "quit") || arg_is(a, 0, "reset"))
            return PUBSUB_GO;
        return PUBSUB_REFUSE;
    }
    return PUBSUB_GO;
}

void pubsub_refuse(struct client *c, const char *name)
{
    char msg[200];
    snprintf(msg, sizeof msg, "ERR Can't execute '%.64s': only (P|S)SUBSCRIBE / "
             "(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context", name);
    client_reply_error(c, msg);
}

static uint32_t subscriptions(const struct link *l)
{
    return l->subs.channels + l->subs.patterns + l->subs.shard;
}

struct sub_counts pubsub_client_counts(const struct client *c)
{
    struct sub_counts n = {0};
    for (const struct link *l = c->plinks; l; l = l->owner_next)
        if (l->sub_role == SUB_MAIN || l->sub_role == SUB_SHARD) {
            n.channels += l->subs.channels;
            n.patterns += l->subs.patterns;
            n.shard += l->subs.shard;
        }
    return n;
}

/* A subscriber link of c with nothing in flight and no subscription. */
static struct link *empty_subscriber(const struct client *c)
{
    for (struct link *l = c->plinks; l; l = l->owner_next)
        if (l->sub_role != SUB_NONE && l->nqueued == 0 && subscriptions(l) == 0)
            return l;
    return NULL;
}

void pubsub_settle(struct client *c)
{
    bool subscribed = false;
    for (const struct link *l = c->plinks; l; l = l->owner_next) {
        if (l->sub_role == SUB_NONE)
            continue;
        if (l->nqueued)
            return; /* still changing */
        subscribed = subscribed || subscriptions(l) > 0;
    }
    struct link *l;
    while ((l = empty_subscriber(c))) {
        l->sub_role = SUB_NONE; /* out of pub/sub mode on the node: poolable */
        link_giveback(l);
    }
    c->pubsub = subscribed ? PUBSUB_SUBSCRIBED : PUBSUB_NONE;
    if (c->input_held)
        client_resume_later(c);
}

/* ------------------------------------------------------------------------ */
/* Replies on subscriber links                                               */

enum push_kind { PUSH_OTHER, PUSH_MESSAGE, PUSH_CHANNELS, PUSH_PATTERNS, PUSH_SHARD };

/* A RESP2 array or RESP3 push by its first element, a bulk string. */
static enum push_kind push_kind(const char *data, size_t len)
{
    static const struct {
        const char *word;
        enum push_kind kind;
    } words[] = {
        {"message", PUSH_MESSAGE},     {"pmessage", PUSH_MESSAGE},
        {"smessage", PUSH_MESSAGE},    {"subscribe", PUSH_CHANNELS},
        {"unsubscribe", PUSH_CHANNELS}, {"psubscribe", PUSH_PATTERNS},
        {"punsubscribe", PUSH_PATTERNS}, {"ssubscribe", PUSH_SHARD},
        {"sunsubscribe", PUSH_SHARD},
    };
    const char *end = data + len;
    if (len < 8 || (data[0] != '*' && data[0] != '>'))
        return PUSH_OTHER;
    const char *p = memchr(data, '\n', len);
    if (!p || end - p < 4 || p[1] != '$')
        return PUSH_OTHER;
    size_t n = 0;
    for (p += 2; p < end && *p >= '0' && *p <= '9' && n < 16; p++)
        n = n * 10 + (size_t)(*p - '0');
    if (end - p < 2 || (size_t)(end - p - 2) < n)
        return PUSH_OTHER;
    p += 2; /* CRLF */
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].word) == n && memcmp(p, words[i].word, n) == 0)
            return words[i].kind;
    return PUSH_OTHER;
}

bool pubsub_is_message(const char *data, size_t len)
{
    return push_kind(data, len) == PUSH_MESSAGE;
}

/* Where the line that ends a reply starts. */
static size_t last_line(const char *data, size_t len)
{
    size_t i = len - 2;
    while (i > 0 && data[i - 1] != '\n')
        i--;
    return i;
}

/* The integer that ends a confirmation (its subscription count), or -1. */
static long long last_integer(const char *data, size_t len)
{
    if (len < 4 || data[len - 2] != '\r')
        return -1;
    size_t i = last_line(data, len);
    if (data[i] != ':')
        return -1;
    long long n = 0;
    for (i++; i < len - 2 && n < (1ll << 40); i++) {
        if (data[i] < '0' || data[i] > '9')
            return -1;
        n = n * 10 + (data[i] - '0');
    }
    return n;
}

static uint32_t add_clamped(uint32_t v, long long delta)
{
    return (long long)v + delta > 0 ? (uint32_t)((long long)v + delta) : 0;
}

/* Follow the node's count: channels and patterns share one count, so the
 * change is the kind's. */
static void note_confirmation(struct link *l, const char *data, size_t len)
{
    enum push_kind kind = push_kind(data, len);
    long long n = last_integer(data, len);
    if (n < 0)
        return;
    struct sub_counts *s = &l->subs;
    long long delta = n - (long long)s->channels - (long long)s->patterns;
    if (kind == PUSH_CHANNELS)
        s->channels = add_clamped(s->channels, delta);
    else if (kind == PUSH_PATTERNS)
        s->patterns = add_clamped(s->patterns, delta);
    else if (kind == PUSH_SHARD)
        s->shard = (uint32_t)n;
}

/* The client's shard channels: the sum over its shard links, each of
 * which counts only its node's. */
static uint32_t shard_total(const struct client *c)
{
    return pubsub_client_counts(c).shard;
}

/* What the client is told after a confirmation of r on shard link l. An
 * argument-less SUNSUBSCRIBE's parts run on all shard links at once and
 * may be answered in any order, but the client sees them in its FIFO's:
 * the earlier parts' links are empty by then, the later ones still hold
 * what they held when it was sent (shard_later). */
static uint32_t shard_count_seen(const struct link *l, const struct request *r)
{
    return r->shard_all ? l->subs.shard + r->shard_later : shard_total(l->owner);
}

bool pubsub_client_count(const struct link *l, const struct request *r, const char *data,
                         size_t len, struct resp_buf *out)
{
    if (!l->owner || push_kind(data, len) != PUSH_SHARD || last_integer(data, len) < 0)
        return false;
    size_t i = last_line(data, len);
    resp_buf_append(out, data, i);
    resp_write_integer(out, shard_count_seen(l, r));
    return true;
}

/* How many replies an argument-less unsubscribe gets: one per
 * subscription of its kind, one if none. */
static uint32_t unsubscribe_all_replies(const struct link *l, enum sub_all kind)
{
    uint32_t n = kind == SUB_ALL_PATTERNS ? l->subs.patterns
               : kind == SUB_ALL_SHARD   ? l->subs.shard
                                         : l->subs.channels;
    return n ? n : 1;
}

bool pubsub_reply_is_last(struct link *l, struct request *r, const char *data, size_t len,
                          char first)
{
    if (r->sub_all != SUB_ALL_NONE) { /* at the head: the counts are current */
        r->sub_replies = unsubscribe_all_replies(l, (enum sub_all)r->sub_all);
        r->sub_all = SUB_ALL_NONE;
    }
    if (first == '-')
        return true; /* refused whole (NOPERM, CROSSSLOT, MOVED …) */
    note_confirmation(l, data, len);
    if (r->sub_replies > 1) {
        r->sub_replies--;
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Links                                                                     */

static struct link *lend_subscriber(struct client *c, const char *addr, enum sub_role role)
{
    for (struct link *l = c->plinks; l && role != SUB_MAIN; l = l->owner_next)
        if (l->sub_role == role && strcmp(l->addr, addr) == 0)
            return l;
    struct link *l = link_lend(c->w, addr, c);
    if (!l)
        return NULL;
    l->sub_role = role;
    l->subs = (struct sub_counts){0};
    return l;
}

/* The subscriber link in `role` to the master of `slot`; NULL once an
 * error has been answered, or while the first topology is awaited
 * (dispatch_defer: the call is parsed again once it is in). */
static struct link *subscriber_link(struct client *c, int slot, enum sub_role role)
{
    struct worker *w = c->w;
    const char *err = "CLUSTERDOWN The cluster is down";
    if (!w->topo && dispatch_defer(c))
        return NULL;
    unsigned node = w->topo && w->topo->nmasters ? w->topo->slot_master[slot]
                                                 : CLUSTER_NO_NODE;
    if (w->topo && w->topo->nmasters && node == CLUSTER_NO_NODE)
        err = "CLUSTERDOWN Hash slot not served";
    struct link *l = NULL;
    if (node != CLUSTER_NO_NODE) {
        l = lend_subscriber(c, w->topo->nodes[node].addr, role);
        err = "ERR max number of private connections to the cluster reached";
    }
    if (!l)
        client_reply_error(c, err);
    return l;
}

/* The pub/sub home: the master of the lowest served slot (see above). */
int pubsub_home_slot(const struct cluster_topology *t)
{
    for (int s = 0; t && t->nmasters && s < CLUSTER_SLOTS; s++)
        if (t->slot_master[s] != CLUSTER_NO_NODE)
            return s;
    return 0;
}

static enum sub_all unsubscribe_kind(const char *name)
{
    char k = name[0] | 0x20;
    return k == 'p' ? SUB_ALL_PATTERNS : k == 's' ? SUB_ALL_SHARD : SUB_ALL_CHANNELS;
}

/* Send argv on subscriber link l, in c's FIFO, or as an orphan whose
 * confirmations are dropped (a keyspace link's copy). Answered by one
 * confirmation per channel unless the caller says otherwise. */
static struct request *subscriber_send_args(struct client *c, struct link *l,
                                            const struct cmd_args *a, bool answers)
{
    struct request *r = request_from_args(c->w, (int)a->argc, a->argv, a->lens);
    r->sub_replies = a->argc > 1 ? (uint32_t)(a->argc - 1) : 0;
    r->sub_all = a->argc > 1 ? SUB_ALL_NONE : unsubscribe_kind(a->argv[0]);
    if (answers)
        client_append(c, r);
    c->pubsub = PUBSUB_CHANGING;
    link_enqueue(l, r);
    return r;
}

static struct request *subscriber_send(struct client *c, struct link *l, const struct cmd_args *a)
{
    return subscriber_send_args(c, l, a, true);
}

static int channel_slot(const struct cmd_args *a, size_t i)
{
    return (int)cluster_keyslot(a->argv[i], a->lens[i]);
}

/* A keyspace-notification channel or a pattern that may match one. */
static bool keyspace_channel(const char *s, size_t len)
{
    return len >= 5 && memcmp(s, "__key", 5) == 0;
}

/* (P)SUBSCRIBE's keyspace channels also go to every other master. */
static void keyspace_fanout(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const char **av = malloc(a->argc * sizeof *av);
    size_t *al = malloc(a->argc * sizeof *al);
    if (!av || !al)
        abort();
    size_t n = 1;
    av[0] = a->argv[0];
    al[0] = a->lens[0];
    for (size_t i = 1; i < a->argc; i++)
        if (keyspace_channel(a->argv[i], a->lens[i])) {
            av[n] = a->argv[i];
            al[n++] = a->lens[i];
        }
    for (size_t m = 0; n > 1 && w->topo && m < w->topo->nmasters; m++) {
        const char *addr = w->topo->nodes[m].addr;
        if (strcmp(addr, c->pubsub_link->addr) == 0)
            continue;
        struct link *l = lend_subscriber(c, addr, SUB_KEYSPACE);
        const struct cmd_args keyspace = {.argc = n, .argv = av, .lens = al};
        if (l) /* past the cap: that node's events are missed */
            subscriber_send_args(c, l, &keyspace, false);
    }
    free(av);
    free(al);
}

/* ------------------------------------------------------------------------ */
/* A new topology                                                            */

/* Is subscriber link l still where its subscriptions belong in t? A main
 * link must be on the home node (else PUBLISH, sent there, would miss
 * it); a shard link on a master (a demoted node masters none of its
 * channels' slots). Keyspace links only miss their node's events. */
static bool subscriber_in_place(const struct cluster_topology *t, const struct link *l)
{
    if (l->sub_role == SUB_MAIN) {
        unsigned home = t->slot_master[pubsub_home_slot(t)];
        return home != CLUSTER_NO_NODE && strcmp(t->nodes[home].addr, l->addr) == 0;
    }
    if (l->sub_role == SUB_SHARD)
        return cluster_topology_find(t, l->addr) < t->nmasters;
    return true;
}

static bool subscriptions_in_place(const struct cluster_topology *t, const struct client *c)
{
    for (const struct link *l = c->plinks; l; l = l->owner_next)
        if (!subscriber_in_place(t, l))
            return false;
    return true;
}

/* A failover that kept the TCP connections (CLUSTER FAILOVER, a paused
 * master) leaves subscriber links on a node that is no longer where they
 * belong: such a client is closed, as when a link dies, so that it
 * subscribes again (client libraries do) where the new topology says. */
void pubsub_topology_changed(struct worker *w)
{
    const struct cluster_topology *t = w->topo;
    if (!t || !t->nmasters)
        return; /* nothing known to be better */
    for (struct client *c = w->clients, *next; c; c = next) {
        next = c->next;
        if (c->plinks && c->pubsub != PUBSUB_NONE && !subscriptions_in_place(t, c))
            client_kill(c);
    }
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

void pubsub_cmd_subscribe(struct client *c, const struct cmd_args *a)
{
    if (a->argc < 2) {
        dispatch_wrong_arity(c, a);
        return;
    }
    if (!c->pubsub_link) {
        struct link *l = subscriber_link(c, pubsub_home_slot(c->w->topo), SUB_MAIN);
        if (!l)
            return;
        c->pubsub_link = l;
    }
    subscriber_send(c, c->pubsub_link, a);
    keyspace_fanout(c, a);
}

void pubsub_cmd_ssubscribe(struct client *c, const struct cmd_args *a)
{
    if (a->argc < 2) {
        dispatch_wrong_arity(c, a);
        return;
    }
    struct link *l = subscriber_link(c, channel_slot(a, 1), SUB_SHARD);
    if (l)
        subscriber_send(c, l, a);
}

/* No link holds these channels: answer as Redis does, one confirmation
 * per channel (one with a null channel without arguments), with the
 * client's `count` of that kind. */
static void unsubscribe_locally(struct client *c, const struct cmd_args *a, uint32_t count)
{
    struct resp_buf b = {0};
    const char *kind = a->argv[0];
    size_t klen = a->lens[0];
    char lower[17]; /* "punsubscribe" at most, and the NUL */
    size_t lower_len = cluster_lower(lower, sizeof lower, kind, klen);
    for (size_t i = 1; i < (a->argc > 1 ? a->argc : 2); i++) {
        resp_write_push_head(&b, c->proto, 3);
        resp_write_bulk(&b, lower, lower_len);
        if (a->argc > 1)
            resp_write_bulk(&b, a->argv[i], a->lens[i]);
        else
            resp_write_null(&b, c->proto);
        resp_write_integer(&b, count);
    }
    client_reply_buf(c, &b);
}

/* The main link answers; keyspace links unsubscribe silently. */
void pubsub_cmd_unsubscribe(struct client *c, const struct cmd_args *a)
{
    if (!c->pubsub_link) {
        unsubscribe_locally(c, a, 0);
        return;
    }
    subscriber_send(c, c->pubsub_link, a);
    for (struct link *l = c->plinks; l; l = l->owner_next) /* sending never gives back */
        if (l->sub_role == SUB_KEYSPACE)
            subscriber_send_args(c, l, a, false);
}

/* SUNSUBSCRIBE ch …: the channels share a slot (Redis refuses otherwise),
 * so the shard link of that slot's node answers; without channels every
 * shard link does, one after the other. */
void pubsub_cmd_sunsubscribe(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const char *addr = NULL;
    if (a->argc > 1 && w->topo && w->topo->nmasters) {
        unsigned node = w->topo->slot_master[channel_slot(a, 1)];
        addr = node != CLUSTER_NO_NODE ? w->topo->nodes[node].addr : "";
    }
    bool sent = false;
    uint32_t later = a->argc == 1 ? shard_total(c) : 0; /* counted down part by part */
    for (struct link *l = c->plinks; l; l = l->owner_next)
        if (l->sub_role == SUB_SHARD && (a->argc == 1 || (addr && strcmp(l->addr, addr) == 0))) {
            struct request *r = subscriber_send(c, l, a);
            later -= a->argc == 1 ? l->subs.shard : 0;
            r->shard_all = a->argc == 1;
            r->shard_later = later;
            sent = true;
        }
    if (!sent) /* shard channels elsewhere still count */
        unsubscribe_locally(c, a, shard_total(c));
}

/* PUBLISH goes to the home node, where the proxy's subscribers are. A
 * RESP3 subscriber's goes on its own main link (on that node too): a
 * message it gets from itself then comes before the count, as from Redis. */
void pubsub_cmd_publish(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    if (a->argc != 3) {
        dispatch_wrong_arity(c, a);
        return;
    }
    if (c->proto == 3 && c->pubsub_link) {
        subscriber_send(c, c->pubsub_link, a)->sub_replies = 1;
        return;
    }
    struct request *r = request_from_args(w, (int)a->argc, a->argv, a->lens);
    client_append(c, r);
    route_to_slot(w, r, pubsub_home_slot(w->topo), client_key(c));
}
