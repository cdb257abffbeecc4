/*
 * Backend links: one shared, multiplexed connection per worker and node.
 *
 *   FIFO:  head ... unsent ... tail
 *          └ written, awaiting ┘└ not written yet ┘
 *
 * Requests are written as the client sent them (the bytes the request
 * owns), gathered into one sendmsg per loop iteration; replies come back
 * in the same order, so the reply parser's boundaries pair each reply with
 * the FIFO head. Nothing is ever removed from the written part except by
 * its reply (or by the link dying): that is what keeps a shared link in
 * sync when clients come and go.
 *
 * States: IDLE ──connect──► CONNECTING ──ok──► READY ──error/EOF──► CLOSING
 *           ▲                    │ fail                                 │
 *           └────── backoff ─────┴──────────── ops drained ◄────────────┘
 *
 * Receiving: while READY, one multishot io_recv_large stays armed (no SQE,
 * no poll arm per reply): each completion brings a provided buffer, whose
 * whole replies are parsed in place and handed on; the bytes of a reply
 * not yet whole are copied to the link's parse buffer `in` and collect
 * there. The buffer goes back at once. A final completion re-arms it
 * (the kernel may end a multishot), -ENOBUFS waits for buffers to come
 * back (end of the batch, or the next tick), EOF and errors lose the link.
 * A large bulk string (GET of a big value) is not gathered: once its
 * header is in, it streams to its client as it comes (rx STREAM), so the
 * link neither copies it into `in` nor grows `in` to its size.
 *
 * Health of a shared link (orthogonal to the state): `down_since` is set
 * when it is lost (EOF, error, failed connect, or no reply progress for
 * --backend-timeout: the node stopped answering then). What was written
 * fails with -ERR unless it is read-only; everything else is held
 * (hold.c) while the control thread refreshes the topology. A down link
 * keeps reconnecting with backoff while the topology names its node, and
 * carries only a PING until a reply proves the node is back (a black-holed
 * node completes TCP handshakes); then `revived` clears it at the end of
 * the batch and the held requests go out again, ahead of newer ones.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

#define LINK_IN_FIRST 65536 /* the parse buffer's first size */
/* A bulk reply at least this long streams to its client (rx STREAM) when
 * it does not arrive whole: gathering it would copy it once more. Shorter
 * ones are gathered (they rarely span receives, and a reply in one piece
 * is cheaper to hand on). */
#define LINK_STREAM_MIN 16384
#define ASKING_CMD "*1\r\n$6\r\nASKING\r\n"
#define ASKING_LEN (sizeof(ASKING_CMD) - 1)

#define PING_CMD "*1\r\n$4\r\nPING\r\n"
#define READONLY_CMD "*1\r\n$8\r\nREADONLY\r\n"

static void link_drain(struct link *l, const char *err, bool park);
static void stream_abort(struct link *l);

/* "1.2.3.4:6379", "[::1]:6379" or "::1:6379" → sockaddr. The last form is
 * how Redis writes an IPv6 node in MOVED and ASK (no brackets): the last
 * ':' ends the host. */
static int parse_addr(const char *addr, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[CLUSTER_ADDR_MAX];
    int port;
    if (!cluster_addr_split(addr, host, sizeof host, &port))
        return -1;
    memset(sa, 0, sizeof *sa);
    if (strchr(host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
            return -1;
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -1;
    *len = sizeof *s4;
    return 0;
}

/* Replies that come back before the one the client waits for. */
static void request_expect_replies(struct request *r)
{
    r->skip_replies = (r->asking ? 1u : 0u) + (r->is_block ? 1u + r->block_cmds : 0u);
    r->block_redirect[0] = '\0';
}

static struct link *link_new(struct worker *w, const char *addr, enum link_kind kind,
                             struct link_key key)
{
    struct link *l = calloc(1, sizeof *l);
    if (!l)
        abort();
    l->w = w;
    l->kind = kind;
    l->proto = key.proto;
    l->auth = auth_get(key.auth);
    snprintf(l->addr, sizeof l->addr, "%s", addr);
    l->fd = -1;
    l->state = LINK_IDLE;
    l->connect_op.tag = OP_LINK_CONNECT;
    l->recv_op.tag = OP_LINK_RECV;
    l->send_op.tag = OP_LINK_SEND;
    resp_reply_init(&l->rp);
    if (parse_addr(addr, &l->sa, &l->salen) < 0)
        l->salen = 0; /* every request on it fails; see link_connect */
    l->next = w->links;
    w->links = l;
    return l;
}

/* The shared link to addr for key, READONLY (reader) or not; new if none. */
static struct link *shared_link(struct worker *w, const char *addr, struct link_key key,
                                bool reader)
{
    for (struct link *l = w->links; l; l = l->next)
        if (l->kind == LINK_SHARED && l->reader == reader && l->proto == key.proto &&
            l->auth == key.auth && strcmp(l->addr, addr) == 0)
            return l;
    struct link *l = link_new(w, addr, LINK_SHARED, key);
    l->reader = reader;
    return l;
}

struct link *link_get(struct worker *w, const char *addr, struct link_key key)
{
    return shared_link(w, addr, key, false);
}

/* A reader link is never used for writes: READONLY on a node that turned
 * master is harmless, but on a link to a master that was demoted it would
 * serve stale reads instead of answering MOVED. */
struct link *link_get_reader(struct worker *w, const char *addr, struct link_key key)
{
    return shared_link(w, addr, key, true);
}

#define PRIVATE_LINKS_MAX 4096 /* per worker */

struct link *link_lend(struct worker *w, const char *addr, struct client *c)
{
    struct link *found = NULL;
    unsigned nprivate = 0;
    for (struct link *l = w->links; l; l = l->next) {
        if (l->kind != LINK_PRIVATE)
            continue;
        nprivate++;
        if (!found && l->pool == LINK_POOLED && l->state == LINK_READY && l->proto == c->proto &&
            l->auth == c->auth &&
            strcmp(l->addr, addr) == 0)
            found = l;
    }
    if (!found && nprivate >= PRIVATE_LINKS_MAX)
        return NULL;
    struct link *l = found ? found : link_new(w, addr, LINK_PRIVATE, client_key(c));
    l->pool = LINK_IN_USE;
    l->owner = c;
    l->owner_next = c->plinks;
    c->plinks = l;
    return l;
}

static unsigned pooled_for(const struct worker *w, const char *addr)
{
    unsigned n = 0;
    for (const struct link *l = w->links; l; l = l->next)
        n += l->pool == LINK_POOLED && strcmp(l->addr, addr) == 0;
    return n;
}

static void link_doom(struct link *l);

void link_giveback(struct link *l)
{
    struct client *c = l->owner;
    assert(l->kind == LINK_PRIVATE && c);
    for (struct link **p = &c->plinks; *p; p = &(*p)->owner_next)
        if (*p == l) {
            *p = l->owner_next;
            break;
        }
    bool clean = l->nqueued == 0 && l->sub_role == SUB_NONE && c->watch_link != l &&
                 l->state == LINK_READY;
    if (c->watch_link == l)
        c->watch_link = NULL;
    if (c->pubsub_link == l)
        c->pubsub_link = NULL;
    l->owner = NULL;
    l->owner_next = NULL;
    int pool_size = l->w->cfg->connections_pool_size;
    if (clean && pooled_for(l->w, l->addr) < (unsigned)(pool_size > 0 ? pool_size : 10))
        l->pool = LINK_POOLED;
    else
        link_doom(l);
}

static void mark_dirty(struct link *l)
{
    if (l->dirty)
        return;
    l->dirty = true;
    l->dirty_next = l->w->dirty_links;
    l->w->dirty_links = l;
}

void link_enqueue(struct link *l, struct request *r)
{
    if (l->kind == LINK_SHARED && l->w->net_hooks->hold_behind_retry(l, r))
        return;
    link_enqueue_retried(l, r);
}

void link_enqueue_retried(struct link *l, struct request *r)
{
    if (l->kind == LINK_SHARED && l->down_since) {
        if (l->reader)
            l->w->net_hooks->replica_fallback(l, r); /* read-only: its master answers */
        else
            l->w->net_hooks->hold_request(l, r); /* until the node answers again (or failed over) */
        return;
    }
    r->link = l;
    r->lnext = NULL;
    r->state = REQ_QUEUED;
    request_expect_replies(r);
    if (l->tail)
        l->tail->lnext = r;
    else
        l->head = r;
    l->tail = r;
    if (!l->unsent)
        l->unsent = r;
    l->nqueued++;
    mark_dirty(l);
}

static struct request *pop_head(struct link *l)
{
    struct request *r = l->head;
    assert(r && r != l->unsent);
    l->head = r->lnext;
    if (l->tail == r)
        l->tail = NULL;
    r->lnext = NULL;
    r->link = NULL;
    l->nqueued--;
    return r;
}

/* ------------------------------------------------------------------------ */
/* Connecting                                                                */

static void link_connect(struct link *l)
{
    struct worker *w = l->w;
    assert(l->state == LINK_IDLE && l->ops == 0);
    if (l->salen == 0) {
        link_drain(l, "ERR invalid backend node address", false);
        return;
    }
    int fd = socket(l->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        link_drain(l, "ERR cannot create a socket to the backend", false);
        return;
    }
    if (!w->net_hooks->tls_link_attach(w, fd, l->addr)) { /* --tls: no plaintext fallback */
        close(fd);
        link_drain(l, "ERR cannot set up TLS to the backend", false);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    l->fd = fd;
    l->state = LINK_CONNECTING;
    int ms = w->cfg->connect_timeout_ms > 0 ? w->cfg->connect_timeout_ms : 1000;
    io_connect(w->io, &l->connect_op, fd, (struct sockaddr *)&l->sa, l->salen, ms);
    l->ops++;
}

/*
 * The receive is multishot (io_recv_large: the backend's large buffers, so
 * a large reply comes in few completions) and armed while the link is
 * READY: `recv_armed` from here until the final completion (one without
 * IO_EV_MORE: EOF, an error, -ENOBUFS, or a multishot the kernel ended),
 * after which the handler arms it again.
 */
static void arm_recv(struct link *l)
{
    if (l->recv_armed || l->state != LINK_READY)
        return;
    l->recv_nobufs = false;
    io_recv_large(l->w->io, &l->recv_op, l->fd);
    l->recv_armed = true;
    l->ops++;
}

/* Append n bytes to the parse buffer l->in (it only grows, doubling from
 * 64 KB; what was parsed is dropped from its front first). */
static void in_append(struct link *l, const char *data, size_t n)
{
    if (l->in_off == l->in_len)
        l->in_off = l->in_len = 0;
    if (l->in_cap - l->in_len < n) {
        if (l->in_off > 0) {
            memmove(l->in, l->in + l->in_off, l->in_len - l->in_off);
            l->in_len -= l->in_off;
            l->in_off = 0;
        }
        size_t cap = l->in_cap ? l->in_cap : LINK_IN_FIRST;
        while (cap - l->in_len < n)
            cap *= 2;
        if (cap != l->in_cap) {
            char *in = realloc(l->in, cap);
            if (!in)
                abort();
            l->in = in;
            l->in_cap = cap;
        }
    }
    memcpy(l->in + l->in_len, data, n);
    l->in_len += n;
}

/* A command the link sends itself, ahead of everything on a new socket
 * (HELLO 3, AUTH); no client waits for its reply. */
static void link_send_first(struct link *l, const char *cmd, size_t len)
{
    struct request *r = request_new(cmd, len);
    r->state = REQ_QUEUED;
    r->link = l;
    assert(l->head == l->unsent); /* nothing written on the new socket yet */
    r->lnext = l->head;
    l->head = l->unsent = r;
    if (!l->tail)
        l->tail = r;
    l->nqueued++;
}

/* A RESP3 link says HELLO 3 before anything else; its reply is dropped. */
static void say_hello(struct link *l)
{
    static const char hello[] = "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n";
    link_send_first(l, hello, sizeof hello - 1);
    l->hello_pending = true;
}

/* The link authenticates first of all (before HELLO): as the identity it
 * is keyed by, else with --auth. */
static void say_auth(struct link *l)
{
    if (l->auth) {
        struct resp_buf b = {0};
        auth_command(l->auth, &b);
        link_send_first(l, b.data, b.len);
        resp_buf_free(&b);
        l->auth_pending = true;
        return;
    }
    size_t len;
    const char *auth = l->w->net_hooks->admin_backend_auth(l->w->rt, &len);
    if (!auth)
        return;
    link_send_first(l, auth, len);
    l->auth_pending = true;
}

static void link_ready(struct link *l)
{
    l->state = LINK_READY;
    if (l->down_since) /* the node must answer before requests go out */
        link_send_first(l, PING_CMD, sizeof PING_CMD - 1);
    if (l->reader) /* else a replica answers reads with MOVED */
        link_send_first(l, READONLY_CMD, sizeof READONLY_CMD - 1);
    if (l->proto == 3)
        say_hello(l);
    say_auth(l);
    resp_reply_init(&l->rp);
    l->in_off = l->in_len = 0;
    l->rx = LINK_RX_PARSE;
    l->stream_left = 0;
    arm_recv(l);
    mark_dirty(l);
}

/* ------------------------------------------------------------------------ */
/* Failure                                                                   */

/*
 * Empty the FIFO. Written requests (their fate on the node is unknown)
 * fail with err, unless `park` and they are read-only; with `park`, those
 * and every unwritten request are held for the slot's next master
 * (hold.c; a partial write is redone whole), else they fail too.
 */
static void link_drain(struct link *l, const char *err, bool park)
{
    bool written = true;
    while (l->head) {
        struct request *r = l->head;
        int slot;
        if (r == l->unsent)
            written = false;
        l->head = r->lnext;
        r->lnext = NULL;
        r->link = NULL;
        l->nqueued--;
        if (park && l->reader)
            l->w->net_hooks->replica_fallback(l, r); /* all read-only: the master answers */
        else if (park && (!written || request_readonly(l->w, r, &slot)))
            l->w->net_hooks->hold_request(l, r);
        else
            request_fail(r, err);
    }
    l->tail = l->unsent = NULL;
    l->unsent_off = 0;
}

static void link_unlist_and_free(struct link *l)
{
    struct worker *w = l->w;
    for (struct link **p = &w->links; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    for (struct link **p = &w->dirty_links; *p; p = &(*p)->dirty_next)
        if (*p == l) {
            *p = l->dirty_next;
            break;
        }
    auth_put(l->auth);
    free(l->in);
    free(l);
}

/* The end of every path that may have closed the link: release the socket
 * once no op is in flight; a doomed private link is freed (the caller must
 * not touch l afterwards). */
static void link_maybe_idle(struct link *l)
{
    if ((l->state != LINK_CLOSING && !(l->pool == LINK_DOOMED && l->state == LINK_IDLE)) || l->ops)
        return;
    if (l->fd >= 0)
        io_close(l->w->io, l->fd);
    l->fd = -1;
    l->state = LINK_IDLE;
    l->recv_armed = l->send_armed = l->recv_nobufs = false;
    if (l->pool == LINK_DOOMED) {
        assert(!l->head);
        link_unlist_and_free(l);
        return;
    }
    if (l->nqueued || l->down_since)
        mark_dirty(l); /* reconnect (link_flush), after the backoff */
}

/* A private link nobody may use again: fail what it carries (its client is
 * gone or gave it up), close it, free it when its ops are done. */
static void link_doom(struct link *l)
{
    l->pool = LINK_DOOMED;
    if (l->state == LINK_READY || l->state == LINK_CONNECTING) {
        io_shutdown(l->w->io, l->fd);
        l->state = LINK_CLOSING;
    }
    link_drain(l, "ERR connection closed", false);
    l->w->reap_links = true; /* freed by link_reap, never under a caller */
}

/* Doomed links, and links closed while no op was in flight (their recv
 * waited for buffers): no completion will come to end them. */
void link_reap(struct worker *w)
{
    w->reap_links = false;
    for (struct link *l = w->links, *next; l; l = next) {
        next = l->next;
        if (l->pool == LINK_DOOMED || l->state == LINK_CLOSING)
            link_maybe_idle(l);
    }
}

/* The node stopped answering at `since` (now, or the last reply progress
 * for a backend timeout). */
static void link_lost_since(struct link *l, const char *why, int64_t since)
{
    if (l->state == LINK_CLOSING || l->state == LINK_IDLE)
        return;
    struct worker *w = l->w;
    bool was_connecting = l->state == LINK_CONNECTING;
    if (l->failures < 3 || l->failures % 50 == 0) /* a dead node retries for long */
        log_warn("link to %s %s: %s", l->addr, was_connecting ? "failed" : "lost", why);
    l->failures++;
    /* The first reconnection is at once (the node may just have closed an
     * idle connection); then 200 ms doubling to 2 s. */
    int64_t backoff = l->failures == 1 ? 0 : 50ll << (l->failures < 6 ? l->failures : 6);
    l->retry_at_ms = w->now_ms + (backoff > 2000 ? 2000 : backoff);
    io_shutdown(l->w->io, l->fd);
    l->state = LINK_CLOSING;
    if (!l->recv_armed) /* it waited for buffers: no EOF will close it */
        w->reap_links = true;
    if (l->rx == LINK_RX_STREAM)
        stream_abort(l);
    char err[160];
    snprintf(err, sizeof err, "ERR connection to node %s %s", l->addr,
             was_connecting ? "failed" : "lost");
    struct client *owner = l->owner;
    if (l->kind == LINK_PRIVATE) {
        /* Its connection state (blocked call, WATCH, subscriptions) is gone:
         * fail what it carried; a subscriber or watching client is closed so
         * that it starts over, as it would if it had lost Redis itself. */
        bool fatal = l->sub_role != SUB_NONE || (owner && owner->watch_link == l);
        if (owner)
            link_giveback(l); /* dooms it: not clean */
        else
            link_doom(l);
        if (owner && fatal)
            client_kill(owner);
    } else {
        if (!l->down_since)
            l->down_since = since;
        l->revived = false;
        link_drain(l, err, true);
    }
    if (!l->reader) /* replicas: the health checks see it (replica.c) */
        control_report_lost(w->rt, w->id, l->addr);
}

static void link_lost(struct link *l, const char *why)
{
    link_lost_since(l, why, l->w->now_ms);
}

void link_abandon(struct link *l, const char *why)
{
    link_lost(l, why);
}

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */

static size_t wire_len(const struct request *r)
{
    return r->len + (r->asking ? ASKING_LEN : 0);
}

static int build_iov(struct link *l)
{
    int n = 0;
    size_t skip = l->unsent_off;
    for (struct request *r = l->unsent; r && n + 2 <= LINK_SEND_IOV; r = r->lnext) {
        if (r->asking) {
            if (skip < ASKING_LEN) {
                l->iov[n].iov_base = (char *)ASKING_CMD + skip;
                l->iov[n++].iov_len = ASKING_LEN - skip;
                skip = 0;
            } else {
                skip -= ASKING_LEN;
            }
        }
        l->iov[n].iov_base = r->buf + skip;
        l->iov[n++].iov_len = r->len - skip;
        skip = 0;
    }
    return n;
}

/* A down shared link reconnects by itself only while the topology still
 * names its node: once its slots moved, nothing needs it. */
static bool wants_reconnect(const struct link *l)
{
    const struct cluster_topology *t = l->w->topo;
    return l->kind == LINK_SHARED && l->down_since && t &&
           cluster_topology_find(t, l->addr) != CLUSTER_NO_NODE;
}

void link_flush(struct link *l)
{
    struct worker *w = l->w;
    if (w->quiescing)
        return;
    if (l->state == LINK_IDLE && (l->nqueued || wants_reconnect(l))) {
        if (w->now_ms >= l->retry_at_ms)
            link_connect(l);
        return; /* the tick retries after the backoff */
    }
    if (l->state != LINK_READY || l->send_armed || !l->unsent)
        return;
    int n = build_iov(l);
    io_send(w->io, &l->send_op, l->fd, l->iov, n);
    l->send_armed = true;
    l->ops++;
}

/* n bytes went out: move `unsent` past every request fully written. */
static void sent(struct link *l, size_t n)
{
    if (l->head == l->unsent) /* nothing was awaited: the timeout starts now */
        l->progress_ms = l->w->now_ms;
    n += l->unsent_off;
    while (l->unsent && n >= wire_len(l->unsent)) {
        n -= wire_len(l->unsent);
        l->unsent->hold_until = 0; /* written: a later loss holds it anew */
        l->unsent = l->unsent->lnext;
    }
    l->unsent_off = l->unsent ? n : 0;
}

/* ------------------------------------------------------------------------ */
/* Receiving                                                                 */

/*
 * A reply on a subscriber link (pubsub.c): anything but a published
 * message answers the FIFO head, which leaves with its last confirmation.
 * A message the node sent before the head's reply goes out just before
 * that reply, as a part of the head's place in the client's FIFO (not
 * after an "unsubscribe" with count 0, say); with nothing in flight for
 * the client, it goes out as it comes. When the link has nothing left in
 * flight, the client's pub/sub state may settle (and l go back).
 */
static void subscriber_reply(struct link *l, const char *data, size_t len, char first)
{
    struct client *c = l->owner;
    struct request *r = l->head;
    if (l->w->net_hooks->pubsub_is_message(data, len)) {
        if (r && r->client)
            request_reply_part(r, data, len);
        else if (c)
            client_push(c, data, len);
        return;
    }
    if (!r || r == l->unsent) {
        link_lost(l, "reply without a request");
        return;
    }
    bool last = l->w->net_hooks->pubsub_reply_is_last(l, r, data, len, first);
    struct resp_buf count = {0};
    if (l->w->net_hooks->pubsub_client_count(l, r, data, len, &count)) {
        data = count.data;
        len = count.len;
    }
    if (!last) {
        request_reply_part(r, data, len);
    } else {
        pop_head(l);
        request_reply(r, data, len);
    }
    resp_buf_free(&count);
    if (last && c && l->nqueued == 0)
        l->w->net_hooks->pubsub_settle(c);
}

/* The reply to the link's own AUTH: dropped, unless it is an error, which
 * fails the link (wrong --auth: nothing would work on it). */
static void auth_reply(struct link *l, const char *data, size_t len, char first)
{
    l->auth_pending = false;
    request_free(pop_head(l));
    if (first == '-' && l->auth) {
        /* A client's own identity was refused (wrong password, user
         * disabled): everything queued for it gets the node's own error
         * rather than waiting for reconnections that would fail alike. */
        char err[160];
        snprintf(err, sizeof err, "%.*s", (int)(len >= 3 && len < 150 ? len - 3 : 0), data + 1);
        link_drain(l, err, false);
        /* the node is fine: close without reporting it lost */
        io_shutdown(l->w->io, l->fd);
        l->state = LINK_CLOSING; /* the recv ends (EOF): its handler closes l */
        return;
    }
    if (first == '-') {
        char why[160];
        snprintf(why, sizeof why, "AUTH refused: %.*s", (int)(len >= 3 && len < 120 ? len - 3 : 0),
                 data + 1);
        link_lost(l, why);
    }
}

/* One complete reply; `first` is its type byte, at data[first_off] (after
 * any RESP3 attribute). */
static void one_reply(struct link *l, const char *data, size_t len, char first,
                      size_t first_off)
{
    if (l->auth_pending) {
        auth_reply(l, data, len, first);
        return;
    }
    if (l->hello_pending) {
        l->hello_pending = false; /* its reply pops its request below */
    } else if (l->sub_role != SUB_NONE) {
        subscriber_reply(l, data, len, first);
        return;
    }
    if (first == '>')
        return; /* RESP3 push on a shared link: nobody asked for it */
    struct request *r = l->head;
    /* A request written in part may already have replies for its prefix
     * (ASKING's +OK, MULTI's +OK and +QUEUED for each complete command):
     * the node answers each command as soon as it has it whole. */
    bool prefix = r && r == l->unsent && l->unsent_off > 0 && r->skip_replies;
    if (!r || (r == l->unsent && !prefix)) {
        link_lost(l, "reply without a request");
        return;
    }
    if (r->skip_replies) {
        /* ASKING's +OK, or MULTI's +OK / +QUEUED. A MOVED or ASK for a
         * command inside a block means the block (which EXEC will abort)
         * must go to that node whole. */
        r->skip_replies--;
        if (r->is_block && first == '-' && !r->block_redirect[0])
            l->w->net_hooks->dispatch_note_block_redirect(r, data, len);
        return;
    }
    pop_head(l);
    if (first != '-')
        request_reply(r, data, len);
    else if (!l->w->net_hooks->hold_retry(l, r, data + first_off, len - first_off))
        l->w->net_hooks->dispatch_redirect(l, r, data, len); /* MOVED, ASK, or the error */
    if (l->kind == LINK_PRIVATE && l->owner && l->nqueued == 0)
        client_private_idle(l->owner, l);
}

/* Handles the complete replies in buf[0..len) and returns the bytes they
 * took; an incomplete reply's bytes are left (the parser keeps its
 * progress in them: call again with the same start and more bytes). Stops
 * once the link is no longer READY (lost, or given back and closed while
 * handling a reply). */
static size_t parse_replies(struct link *l, const char *buf, size_t len)
{
    size_t off = 0;
    while (l->state == LINK_READY && off < len) {
        const char *p = buf + off;
        enum resp_result res = resp_parse_reply(&l->rp, p, len - off);
        if (res == RESP_NEED_MORE)
            break;
        if (res == RESP_ERROR) {
            link_lost(l, l->rp.error ? l->rp.error : "protocol error");
            break;
        }
        size_t n = l->rp.len, first_off = l->rp.first_off;
        char first = l->rp.first;
        resp_reply_next(&l->rp);
        off += n;
        one_reply(l, p, n, first, first_off);
        if (l->pool == LINK_DOOMED)
            break; /* given back while handling the reply */
    }
    return off;
}

/*
 * p[0..n) is the start of a reply not yet whole, the parser's progress in
 * it in l->rp. If it is a large bulk string ('$' first: no attribute, not
 * an aggregate) and its request is a plain one at the head of its
 * client's FIFO on a shared link — its bytes can only go to that client,
 * in order, and nothing (hold, retry, fan-out merge) needs the reply
 * whole — what came of it goes to the client now and the rest follows as
 * it arrives (stream_input). True if it streams: p's bytes are taken.
 */
static bool stream_start(struct link *l, const char *p, size_t n)
{
    if (p[0] != '$' || l->rp.state != RESP_REPLY_BLOB || l->kind != LINK_SHARED ||
        l->hello_pending || l->auth_pending ||
        n + (size_t)l->rp.blob_left < LINK_STREAM_MIN)
        return false;
    struct request *r = l->head;
    if (!r || r == l->unsent || r->skip_replies || r->parent || r->auth_result || !r->client ||
        r->client->rhead != r)
        return false;
    request_reply_part(r, p, n);
    l->rx = LINK_RX_STREAM;
    l->stream_left = (size_t)l->rp.blob_left;
    resp_reply_init(&l->rp);
    return true;
}

/* A streamed reply cannot be taken back: if the link fails in its middle,
 * its client (which has part of it) is closed, as if it had lost the node
 * itself; the request becomes an orphan the drain frees. */
static void stream_abort(struct link *l)
{
    struct client *c = l->head ? l->head->client : NULL;
    l->rx = LINK_RX_PARSE;
    l->stream_left = 0;
    if (c)
        client_kill(c);
}

/* The next bytes of a streamed reply: up to stream_left of data[0..len)
 * go to the client; the last two must be its CRLF. Returns the bytes
 * taken (the rest are the next replies). */
static size_t stream_input(struct link *l, const char *data, size_t len)
{
    size_t left = l->stream_left, n = len < left ? len : left;
    for (size_t i = left > 2 ? left - 2 : 0; i < n; i++)
        if (data[i] != (left - i == 2 ? '\r' : '\n')) {
            link_lost(l, "protocol error: bulk string not ended by CRLF");
            return len;
        }
    struct request *r = l->head;
    request_reply_part(r, data, n);
    l->stream_left -= n;
    if (l->stream_left == 0) {
        l->rx = LINK_RX_PARSE;
        pop_head(l);
        request_reply(r, "$", 0); /* done: "$" is what metrics see of it */
    }
    return n;
}

/*
 * Bytes from a provided buffer (valid during this call only). With nothing
 * pending in l->in — replies that fit in one buffer, the usual case — they
 * are parsed where they lie and only an incomplete reply's bytes are
 * copied into l->in; else they join the pending bytes there until the
 * reply is whole, or until it turns out to be a large bulk string that
 * streams (stream_start). No reply's pointer outlives one_reply, so the
 * buffer can go back as soon as this returns.
 */
static void link_input(struct link *l, const char *data, size_t len)
{
    if (l->rx == LINK_RX_STREAM) {
        size_t used = stream_input(l, data, len);
        data += used;
        len -= used;
        if (!len || l->state != LINK_READY)
            return;
    }
    if (l->in_off == l->in_len) {
        size_t used = parse_replies(l, data, len);
        if (used < len && l->state == LINK_READY &&
            !stream_start(l, data + used, len - used))
            in_append(l, data + used, len - used);
        return;
    }
    in_append(l, data, len);
    l->in_off += parse_replies(l, l->in + l->in_off, l->in_len - l->in_off);
    if (l->in_off < l->in_len && l->state == LINK_READY &&
        stream_start(l, l->in + l->in_off, l->in_len - l->in_off))
        l->in_off = l->in_len;
}

/* A completion of the link's multishot receive. */
static void recv_event(struct worker *w, struct link *l, const struct io_event *ev)
{
    int res = ev->res;
    if (!(ev->flags & IO_EV_MORE)) {
        l->ops--;
        l->recv_armed = false;
    }
    if (res > 0) {
        assert(ev->flags & IO_EV_BUF);
        if (l->state == LINK_READY) { /* else lost meanwhile: the bytes mean nothing */
            l->progress_ms = w->now_ms;
            if (l->down_since && !l->revived) { /* the node answers again */
                l->revived = true;
                w->hold_due = true;
            }
            link_input(l, ev->data, (size_t)res);
        }
        io_buf_return(w->io, ev->buf);
        w->bufs_returned = true;
        arm_recv(l); /* if the multishot ended with this one */
        return;
    }
    if (res == -ENOBUFS && l->state == LINK_READY) {
        /* Every buffer is out: armed again once some came back, at the end
         * of the batch (link_rearm_nobufs), or at the next tick. */
        l->recv_nobufs = true;
        w->links_nobufs = true;
        return;
    }
    link_lost(l, res == 0 ? "closed by the node" : strerror(-res));
}

void link_rearm_nobufs(struct worker *w)
{
    w->links_nobufs = false;
    for (struct link *l = w->links; l; l = l->next)
        if (l->recv_nobufs)
            arm_recv(l);
}

void link_handle(struct worker *w, const struct io_event *ev)
{
    struct link *l;
    struct io_op *op = ev->op;
    int res = ev->res;
    switch ((enum op_kind)op->tag) {
    case OP_LINK_CONNECT:
        l = container_of(op, struct link, connect_op);
        l->ops--;
        if (res == 0 && l->state == LINK_CONNECTING)
            link_ready(l);
        else
            link_lost(l, res == -ETIMEDOUT ? "connect timeout" : strerror(-res));
        break;
    case OP_LINK_RECV:
        l = container_of(op, struct link, recv_op);
        recv_event(w, l, ev);
        break;
    default:
        l = container_of(op, struct link, send_op);
        l->ops--;
        l->send_armed = false;
        if (res < 0) {
            link_lost(l, strerror(-res));
            break;
        }
        sent(l, (size_t)res);
        if (l->unsent)
            mark_dirty(l);
        break;
    }
    link_maybe_idle(l);
}

/* Blocking calls on private links may wait as long as they like. */
static bool timeout_exempt(struct link *l)
{
    int slot;
    return l->kind == LINK_PRIVATE && (request_flags(l->w, l->head, &slot) & CMD_BLOCKING);
}

/*
 * Every tick: a link that made no reply progress for --backend-timeout is
 * lost (a shared link is a FIFO, so one request cannot be cut out of it:
 * everything it carries fails or is held, and it reconnects); a link that
 * is down reconnects once its backoff has passed; a receive that waits for
 * buffers is armed again. Never frees l (its recv is armed while READY:
 * that completion closes it; else link_reap does).
 */
void link_tick(struct link *l)
{
    struct worker *w = l->w;
    int timeout = w->cfg->backend_timeout_ms;
    if (timeout > 0 && l->state == LINK_READY && l->head && l->head != l->unsent &&
        w->now_ms - l->progress_ms >= timeout && !timeout_exempt(l)) {
        char why[64];
        snprintf(why, sizeof why, "no reply for %d ms (backend timeout)", timeout);
        stat_add(&w->stats->backend_timeouts, 1);
        link_lost_since(l, why, l->progress_ms);
        return;
    }
    if (l->state == LINK_IDLE && (l->nqueued || l->down_since) && w->now_ms >= l->retry_at_ms)
        mark_dirty(l);
}

/* End of a batch in which down links answered: they are up again, and the
 * held requests go out (before anything newer: until now, new requests for
 * these links were held behind them). */
void link_revive_all(struct worker *w)
{
    w->hold_due = false;
    for (struct link *l = w->links; l; l = l->next) {
        if (!l->revived)
            continue;
        log_info("link to %s answers again after %lld ms", l->addr,
                 (long long)(w->now_ms - l->down_since));
        l->revived = false;
        l->down_since = 0;
        l->failures = 0;
    }
    w->net_hooks->hold_pass(w);
}

void link_shutdown_all(struct worker *w)
{
    for (struct link *l = w->links; l; l = l->next) {
        if (l->state == LINK_READY || l->state == LINK_CONNECTING) {
            io_shutdown(l->w->io, l->fd);
            l->state = LINK_CLOSING;
        }
        link_drain(l, "ERR proxy is shutting down", false);
        link_maybe_idle(l);
    }
}

void link_free_all(struct worker *w)
{
    while (w->links) {
        struct link *l = w->links;
        w->links = l->next;
        while (l->head) {
            struct request *r = l->head;
            l->head = r->lnext;
            request_free(r);
        }
        if (l->fd >= 0)
            io_close(w->io, l->fd);
        auth_put(l->auth);
        free(l->in);
        free(l);
    }
}
