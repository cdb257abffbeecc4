/*
 * Client connections: bytes in, commands cut, replies out in request order.
 *
 *   recv (provided buffer) ──► parse ──► dispatch ──► request FIFO ──► links
 *        │  incomplete tail copied into c->tail; the buffer goes back to
 *        ▼  the io backend at once (io_buf_return)
 *   replies attach to their request; the FIFO head's reply moves to c->out;
 *   one send in flight per socket (c->sending), gathered from chunks; small
 *   output may wait one iteration that does not sleep for the rest of a
 *   pipeline's replies (client_flush_all: coalescing).
 *
 * Lifetime: a client is freed when it is CLOSING and no op is in flight.
 * Requests still queued on links are orphaned (client = NULL) and freed by
 * the link when their reply arrives, so a shared link never loses its
 * reply/request pairing; requests parked by hold.c are orphaned too and
 * dropped by its next pass, never sent. A FIN (peer_eof) is not a close:
 * the replies of what came before it go out first.
 *
 * Limits (Redis's names and texts):
 *   maxclients       the client over the limit gets "-ERR max number of
 *                    clients reached", then the connection is closed
 *   client-reply-budget   backpressure: while a client's unsent replies
 *                    (out + sending + replies kept out of order) pass it,
 *                    its socket is not read (the armed recv is
 *                    cancelled); reading resumes below half of it. A small
 *                    budget deadlocks clients that write a whole pipeline
 *                    before reading (redis-py does), hence 256 MB.
 *   client-output-buffer-limit   normal / pubsub (a subscribed client):
 *                    past the hard limit, or the soft one for its seconds,
 *                    the client is closed. Checked where output grows
 *                    (client_flush) and once a second (client_scan).
 *   timeout          idle seconds (no input) before a client is closed;
 *                    subscribers and clients awaiting a reply are exempt
 *   tcp-keepalive    as Redis's anetKeepAlive
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

static void client_maybe_free(struct client *c);
static void client_close(struct client *c);

static void flush_later(struct client *c)
{
    if (c->flush_listed || c->state != CLIENT_OPEN)
        return;
    c->flush_listed = true;
    c->flush_next = c->w->flush_list;
    c->w->flush_list = c;
}

static void arm_recv(struct client *c)
{
    struct worker *w = c->w;
    if (c->recv_armed || c->state != CLIENT_OPEN || c->reading_stopped || c->paused ||
        c->peer_eof)
        return;
    io_recv(w->io, &c->recv_op, c->fd);
    c->recv_armed = true;
    c->ops++;
}

void client_rearm(struct client *c)
{
    arm_recv(c);
}

/* Redis's maxclients check: true if fd was answered and closed. Pending
 * input is read away first so that the close sends FIN, not an RST that
 * could destroy the error before the client reads it. */
static bool refuse_if_full(struct worker *w, int fd)
{
    struct runtime *rt = w->rt;
    if (atomic_fetch_add(&rt->nclients, 1) < w->cfg->maxclients)
        return false;
    atomic_fetch_sub(&rt->nclients, 1);
    static const char err[] = "-ERR max number of clients reached\r\n";
    char sink[1024];
    for (int i = 0; i < 64 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
        ;
    ssize_t n = send(fd, err, sizeof err - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n;
    io_close(w->io, fd); /* frees its TLS state, if any */
    stat_add(&w->stats->rejected_clients, 1);
    return true;
}

/* Redis's anetKeepAlive: probes after `interval` idle seconds, then every
 * interval/3, dead after 3 unanswered (a no-op on a unix socket). */
static void set_keepalive(int fd, int interval)
{
    if (interval <= 0)
        return;
    int one = 1, idle = interval, every = interval / 3 > 0 ? interval / 3 : 1, count = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &every, sizeof every);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

void client_accepted(struct worker *w, int fd)
{
    if (refuse_if_full(w, fd))
        return;
    struct client *c = calloc(1, sizeof *c);
    if (!c) {
        atomic_fetch_sub(&w->rt->nclients, 1);
        io_close(w->io, fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_keepalive(fd, w->rt->cfg->tcpkeepalive);
    c->w = w;
    c->fd = fd;
    c->id = atomic_fetch_add(&w->rt->next_client_id, 1) + 1;
    c->multi_slot = -1;
    c->proto = 2;
    c->created_ms = c->last_ms = w->now_ms;
    c->multiplex_off = w->rt->cfg->disable_multiplexing == CONFIG_MULTIPLEXING_ALWAYS;
    /* as in Redis: a connection made while no password is required stays
     * signed in when one is set later (CONFIG SET requirepass) */
    c->authenticated = !w->cfg->requirepass[0];
    c->recv_op.tag = OP_CLIENT_RECV;
    c->send_op.tag = OP_CLIENT_SEND;
    resp_req_init(&c->parser);
    c->parser.max_bulk = w->rt->cfg->proto_max_bulk_len;
    c->parser.max_query = w->rt->cfg->client_query_buffer_limit;
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    stat_add(&w->stats->clients, 1);
    stat_add(&w->stats->clients_total, 1);
    arm_recv(c);
}

/* Close: shut the socket so in-flight ops complete. Requests on links
 * become orphans. Freeing is the outermost caller's job (client_handle,
 * client_flush, client_kill): a handler deeper in the stack may still
 * hold the pointer. */
static void client_close(struct client *c)
{
    if (c->state == CLIENT_CLOSING)
        return;
    c->state = CLIENT_CLOSING;
    io_shutdown(c->w->io, c->fd);
    struct request *r = c->rhead;
    while (r) {
        struct request *next = r->cnext;
        r->cnext = NULL;
        if (r->state == REQ_QUEUED && (r->link || r->fan || r->wait != REQ_WAIT_NONE)) {
            /* the link (the last child's reply, the next hold pass) frees it */
            r->client = NULL;
        } else {
            request_free(r);
        }
        r = next;
    }
    c->rhead = c->rtail = NULL;
    c->nreqs = 0;
    while (c->plinks)
        link_giveback(c->plinks); /* busy, watching or subscribed: closed */
}

/* The backend answered an AUTH as another user: on success that identity
 * is the client's from now on (its later calls use links keyed by it). */
void client_auth_result(struct client *c, struct request *r, bool ok)
{
    if (ok) {
        auth_put(c->auth);
        c->auth = r->auth_result;
        c->authenticated = true;
    } else {
        auth_put(r->auth_result);
    }
    r->auth_result = NULL;
}

void client_set_name(struct client *c, const char *name, size_t len)
{
    free(c->name);
    c->name = NULL;
    if (len == 0)
        return;
    c->name = malloc(len + 1);
    if (!c->name)
        abort();
    memcpy(c->name, name, len);
    c->name[len] = '\0';
}

void client_kill(struct client *c)
{
    client_close(c);
    client_maybe_free(c);
}

struct link *client_private_link(const struct client *c, const char *addr)
{
    for (struct link *l = c->plinks; l; l = l->owner_next)
        if (l->sub_role == SUB_NONE && strcmp(l->addr, addr) == 0)
            return l;
    return NULL; /* a subscriber link carries pub/sub commands only */
}

void client_private_idle(struct client *c, struct link *l)
{
    if (c->multiplex_off || c->watch_link == l || l->sub_role != SUB_NONE)
        return; /* the client still needs this connection's state */
    link_giveback(l);
}

void client_push(struct client *c, const char *data, size_t len)
{
    if (c->state != CLIENT_OPEN)
        return;
    if (!c->rhead) {
        obuf_append(&c->out, data, len);
        flush_later(c);
        return;
    }
    /* earlier replies are still due: queue the push behind them */
    struct request *r = client_request_new(c);
    r->state = REQ_QUEUED;
    request_reply(r, data, len);
}

static void client_maybe_free(struct client *c)
{
    if (c->state != CLIENT_CLOSING || c->ops)
        return;
    struct worker *w = c->w;
    /* unlink from the worker's lists */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    for (struct client **p = &w->flush_list; *p; p = &(*p)->flush_next)
        if (*p == c) {
            *p = c->flush_next;
            break;
        }
    for (struct client **p = &w->need_rearm; c->rearm_listed && *p; p = &(*p)->rearm_next)
        if (*p == c) {
            *p = c->rearm_next;
            break;
        }
    for (struct client **p = &w->resume_list; c->resume_listed && *p; p = &(*p)->resume_next)
        if (*p == c) {
            *p = c->resume_next;
            break;
        }
    io_close(w->io, c->fd);
    resp_req_free(&c->parser);
    obuf_free(&c->out);
    obuf_free(&c->sending);
    free(c->tail);
    resp_buf_free(&c->multi_buf);
    auth_put(c->auth);
    free(c->name);
    free(c->lib_name);
    free(c->lib_ver);
    stat_add(&w->stats->clients, (uint64_t)-1);
    atomic_fetch_sub(&w->rt->nclients, 1);
    free(c);
}

void client_free_all(struct worker *w)
{
    while (w->clients) {
        struct client *c = w->clients;
        client_close(c);
        c->ops = 0; /* the ring is about to go; nothing will complete */
        client_maybe_free(c);
    }
}

/* ------------------------------------------------------------------------ */
/* Requests and replies                                                      */

struct client *request_client(const struct request *r)
{
    return r->parent ? r->parent->client : r->client;
}

bool request_wanted(const struct request *r)
{
    return request_client(r) != NULL;
}

/* Keep (a part of) r's reply until the replies before it are out: appended
 * to r->reply, counted in early_bytes (output limits see it). */
static void keep_early(struct client *c, struct request *r, const char *data, size_t len)
{
    char *reply = realloc(r->reply, r->reply_len + len);
    if (!reply)
        abort();
    memcpy(reply + r->reply_len, data, len);
    r->reply = reply;
    r->reply_len += len;
    c->early_bytes += len;
    flush_later(c);
}

/* r is the FIFO head: what was kept of its reply goes out (unless CLIENT
 * REPLY silenced it). */
static void emit_kept(struct client *c, struct request *r)
{
    if (!r->reply_len)
        return;
    if (!r->silent)
        obuf_append(&c->out, r->reply, r->reply_len);
    c->early_bytes -= r->reply_len;
    free(r->reply);
    r->reply = NULL;
    r->reply_len = 0;
}

/* r is the FIFO head and the rest of its reply is data: out it goes, and r
 * is done. */
static void deliver_head(struct client *c, struct request *r, const char *data, size_t len)
{
    assert(c->rhead == r);
    c->rhead = r->cnext;
    if (!c->rhead)
        c->rtail = NULL;
    c->nreqs--;
    emit_kept(c, r);
    if (!r->silent && len)
        obuf_append(&c->out, data, len);
    request_free(r);
}

/* Move every answered request at the FIFO head into the output. */
static void deliver_ready(struct client *c)
{
    while (c->rhead && c->rhead->state == REQ_DONE)
        deliver_head(c, c->rhead, NULL, 0);
    if (c->out.bytes)
        flush_later(c);
}

void request_reply_part(struct request *r, const char *data, size_t len)
{
    struct client *c = r->client;
    assert(r->state == REQ_QUEUED && !r->parent);
    if (!c)
        return; /* an orphan: its last part frees it */
    if (c->rhead != r) {
        keep_early(c, r, data, len);
        return;
    }
    emit_kept(c, r);
    if (!r->silent)
        obuf_append(&c->out, data, len);
    flush_later(c);
}

void request_reply(struct request *r, const char *data, size_t len)
{
    struct client *c = r->client;
    assert(r->state == REQ_QUEUED);
    if (r->retries) {
        /* route's hold_retry_done: a retry of a client that is gone
         * changes nothing */
        struct client *rc = request_client(r);
        if (rc)
            rc->w->net_hooks->hold_retry_done(r);
    }
    if (r->parent) {
        r->parent->fan_worker->net_hooks->fanout_child_reply(r, data, len);
        return;
    }
    if (!c) {
        request_free(r);
        return;
    }
    if (r->auth_result)
        client_auth_result(c, r, data[0] == '+');
    r->link = NULL;
    r->state = REQ_DONE;
    metrics_reply(c->w, r, data);
    if (c->rhead == r) { /* in order: straight to the output, no copy */
        deliver_head(c, r, data, len);
        deliver_ready(c);
        return;
    }
    keep_early(c, r, data, len); /* output limits count replies kept out of order */
}

void request_fail(struct request *r, const char *err)
{
    /* A longer text is cut, keeping the CRLF that ends the line (snprintf
     * returns the length it wanted, not what it wrote). */
    char line[1024];
    int n = snprintf(line, sizeof line - 2, "-%s", err);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - 3)
        n = (int)(sizeof line - 3);
    for (int i = 1; i < n; i++) /* an echoed argument must not end the line */
        if (line[i] == '\r' || line[i] == '\n')
            line[i] = ' ';
    line[n++] = '\r';
    line[n++] = '\n';
    if (r->client)
        stat_add(&r->client->w->stats->errors, 1);
    request_reply(r, line, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* Input                                                                     */

struct request *client_request_new(struct client *c)
{
    struct request *r = request_new(NULL, 0);
    client_append(c, r);
    return r;
}

void client_append(struct client *c, struct request *r)
{
    r->client = c;
    metrics_request(c->w, r);
    if (c->reply_mode != CLIENT_REPLY_ON) { /* CLIENT REPLY: answered, not sent */
        r->silent = true;
        if (c->reply_mode == CLIENT_REPLY_SKIP)
            c->reply_mode = CLIENT_REPLY_ON;
    }
    if (c->rtail)
        c->rtail->cnext = r;
    else
        c->rhead = r;
    c->rtail = r;
    c->nreqs++;
}

void client_reply_bytes(struct client *c, const char *data, size_t len)
{
    request_reply(client_request_new(c), data, len);
}

void client_reply_error(struct client *c, const char *text)
{
    request_fail(client_request_new(c), text);
}

void client_reply_buf(struct client *c, struct resp_buf *b)
{
    client_reply_bytes(c, b->data, b->len);
    resp_buf_free(b);
}

static void protocol_error(struct client *c, const char *text)
{
    client_reply_error(c, text);
    c->reading_stopped = true;
    c->close_after_reply = true;
}

/*
 * Cut and dispatch every complete command in buf[0, len). Returns the
 * number of bytes consumed; the rest is an incomplete command (or input
 * after an error, which is discarded).
 */
static size_t parse_commands(struct client *c, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len && !c->reading_stopped) {
        enum resp_result res = resp_parse_request(&c->parser, buf + off, len - off);
        if (res == RESP_NEED_MORE)
            break;
        if (res == RESP_ERROR) {
            protocol_error(c, c->parser.error);
            return len;
        }
        if (c->parser.argc > 0 && !c->w->net_hooks->dispatch_command(c, buf + off))
            c->input_held = true; /* it waits for the pub/sub state */
        if (c->input_held) { /* this command again, once resumed (the
                                pub/sub state settled, or the first
                                topology came: dispatch_defer) */
            resp_req_next(&c->parser);
            break;
        }
        off += c->parser.len;
        resp_req_next(&c->parser);
    }
    return off;
}

/* A command gathered in the tail is sized ahead (tail_expect) when it
 * needs more than this, to at most this many times what came of it. */
#define TAIL_EXPECT_MIN 16384
#define TAIL_EXPECT_RATIO 64

/* Room for `want` bytes in the tail: doubling from 1 KB, or exactly `want`
 * (tail_expect knows the size of what comes). */
static void tail_grow(struct client *c, size_t want, bool exact)
{
    if (want <= c->tail_cap)
        return;
    size_t cap = c->tail_cap ? c->tail_cap : 1024;
    while (cap < want)
        cap *= 2;
    if (exact)
        cap = want;
    char *t = realloc(c->tail, cap);
    if (!t)
        abort();
    c->tail = t;
    c->tail_cap = cap;
}

static void tail_append(struct client *c, const char *data, size_t len)
{
    tail_grow(c, c->tail_len + len, false);
    memcpy(c->tail + c->tail_len, data, len);
    c->tail_len += len;
}

/* The tail starts with an incomplete command: size the tail for what the
 * parser knows it needs (a SET of a large value, its whole value), so the
 * gathering does not copy it again at every doubling. At most 64 times
 * what came of it: a header announcing a huge argument reserves little
 * (one 4 KB receive of a 256 KB SET reserves it whole). */
static void tail_expect(struct client *c)
{
    size_t need = resp_req_need(&c->parser);
    size_t bound = c->tail_len * TAIL_EXPECT_RATIO;
    if (need > TAIL_EXPECT_MIN)
        tail_grow(c, need < bound ? need : bound, true);
}

/* Parse what c->tail holds (the bytes left over, and input that came while
 * the client's input was held); keep the rest. */
static void parse_tail(struct client *c)
{
    size_t used = parse_commands(c, c->tail, c->tail_len);
    memmove(c->tail, c->tail + used, c->tail_len - used);
    c->tail_len -= used;
    if (c->tail_len == 0 && c->tail_cap > 65536) { /* give big buffers back */
        free(c->tail);
        c->tail = NULL;
        c->tail_cap = 0;
    } else if (c->tail_len && !c->input_held) {
        tail_expect(c);
    }
}

static void client_input(struct client *c, const char *data, size_t len)
{
    stat_add(&c->w->stats->bytes_in, len);
    if (c->tail_len == 0 && !c->input_held) {
        size_t used = parse_commands(c, data, len);
        if (used < len) {
            tail_append(c, data + used, len - used);
            if (!c->input_held && !c->reading_stopped)
                tail_expect(c);
        }
        return;
    }
    tail_append(c, data, len);
    if (c->input_held && c->tail_len <= DEFER_INPUT_MAX)
        return; /* parsed again once resumed */
    c->input_held = false; /* too much: a topology wait refuses now, a
                              pub/sub wait holds again */
    parse_tail(c);
}

void client_resume_later(struct client *c)
{
    if (c->resume_listed || c->state != CLIENT_OPEN)
        return;
    c->resume_listed = true;
    c->resume_next = c->w->resume_list;
    c->w->resume_list = c;
}

void client_resume_all(struct worker *w)
{
    while (w->resume_list) {
        struct client *c = w->resume_list;
        w->resume_list = c->resume_next;
        c->resume_listed = false;
        if (c->state != CLIENT_OPEN || c->reading_stopped)
            continue;
        c->input_held = false;
        if (c->tail_len)
            parse_tail(c); /* may hold again */
    }
}

static void return_buffer(struct worker *w, uint32_t bid)
{
    io_buf_return(w->io, bid);
    w->bufs_returned = true;
}

/* The client sent its FIN; it may still read (shutdown(SHUT_WR), `nc -N`).
 * Redis answers every command that came before the FIN (it runs them before
 * its read returns 0), so the replies of the requests already read go out,
 * then the connection is closed (client_flush, as after QUIT). A client
 * with a blocking call in its FIFO is closed at once, as Redis frees a
 * blocked client at EOF: the call might never return. */
static void client_peer_eof(struct client *c)
{
    c->peer_eof = true;
    c->close_after_reply = true;
    for (struct request *r = c->rhead; r; r = r->cnext)
        if (r->cmd_flags & CMD_BLOCKING) {
            client_close(c);
            return;
        }
    flush_later(c);
}

static void handle_recv(struct client *c, const struct io_event *ev)
{
    struct worker *w = c->w;
    int res = ev->res;
    if (!(ev->flags & IO_EV_MORE)) {
        c->recv_armed = false;
        c->ops--;
    }
    if (res == -ENOBUFS && c->state == CLIENT_OPEN) {
        /* The ring is empty: wait until a buffer goes back. */
        if (!c->rearm_listed) {
            c->rearm_listed = true;
            c->rearm_next = w->need_rearm;
            w->need_rearm = c;
        }
        return;
    }
    if (res == -ECANCELED && c->state == CLIENT_OPEN && c->paused)
        return; /* backpressure cancelled the recv (client_pause) */
    if (res == 0 && c->state == CLIENT_OPEN) {
        client_peer_eof(c);
        return;
    }
    if (res <= 0) {
        client_close(c);
        return;
    }
    c->last_ms = w->now_ms; /* `timeout` counts from the last input */
    assert(ev->flags & IO_EV_BUF);
    if (c->state == CLIENT_OPEN && !c->reading_stopped)
        client_input(c, ev->data, (size_t)res);
    return_buffer(w, ev->buf);
    if (!c->recv_armed)
        arm_recv(c);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                    */

/* Unsent replies: not yet taken by the kernel, or kept until an earlier
 * reply arrives. */
static size_t pending_output(const struct client *c)
{
    return c->out.bytes + c->sending.bytes + c->early_bytes;
}

/* Redis's client-output-buffer-limit for c's class: true once c must go
 * (past the hard limit; past the soft one since more than its seconds). */
static bool over_output_limit(struct client *c, size_t pending)
{
    const struct config *cfg = c->w->cfg;
    const struct config_obuf_limit *lim =
        &cfg->obuf_limits[c->pubsub != PUBSUB_NONE ? CONFIG_OBUF_PUBSUB : CONFIG_OBUF_NORMAL];
    if (lim->hard_bytes > 0 && pending >= (unsigned long long)lim->hard_bytes)
        return true;
    if (lim->soft_bytes <= 0 || pending < (unsigned long long)lim->soft_bytes) {
        c->soft_since_ms = 0;
        return false;
    }
    if (!c->soft_since_ms) {
        c->soft_since_ms = c->w->now_ms;
        return false;
    }
    return c->w->now_ms - c->soft_since_ms > (int64_t)lim->soft_seconds * 1000;
}

/* Backpressure: stop reading c until its replies drain (handle_send). A
 * multishot recv is cancelled; its -ECANCELED is not an error. What
 * arrives before the cancel lands is still handled (a few buffers). */
static void client_pause(struct client *c)
{
    c->paused = true;
    if (c->recv_armed)
        io_cancel(c->w->io, &c->recv_op);
}

static void client_resume_if_drained(struct client *c)
{
    long long budget = c->w->cfg->client_reply_budget;
    if (!c->paused || (budget > 0 && pending_output(c) > (unsigned long long)budget / 2))
        return;
    c->paused = false;
    arm_recv(c);
}

/* Close c for an output limit (logged and counted, as Redis does) or
 * idleness (limit NULL). Outermost callers only. */
static void client_drop(struct client *c, const char *limit)
{
    if (limit) {
        log_warn("client id=%llu closed for overcoming of output buffer limits (%s, "
                 "%zu bytes of replies unsent)", (unsigned long long)c->id, limit,
                 pending_output(c));
        stat_add(&c->w->stats->output_limit_kills, 1);
    } else {
        log_debug("client id=%llu closed: idle timeout", (unsigned long long)c->id);
    }
    client_close(c);
    client_maybe_free(c);
}

/* Where output grew: limits, then backpressure. True if c was closed (and
 * maybe freed). */
static bool check_output(struct client *c)
{
    size_t pending = pending_output(c);
    if (over_output_limit(c, pending)) {
        client_drop(c, "hard or soft limit");
        return true;
    }
    long long budget = c->w->cfg->client_reply_budget;
    if (budget > 0 && !c->paused && pending > (unsigned long long)budget)
        client_pause(c);
    return false;
}

/* Once a second: clients idle past `timeout` (not subscribers, nor those
 * awaiting a reply: Redis exempts pub/sub and blocked clients too; nor
 * paused ones), and clients over a soft output limit that got no output
 * since. */
void client_scan(struct worker *w)
{
    w->next_scan_ms = w->now_ms + 1000;
    int64_t idle_ms = (int64_t)w->cfg->timeout * 1000;
    for (struct client *c = w->clients, *next; c; c = next) {
        next = c->next;
        if (c->state != CLIENT_OPEN)
            continue;
        if (c->soft_since_ms && over_output_limit(c, pending_output(c)))
            client_drop(c, "soft limit");
        else if (idle_ms > 0 && w->now_ms - c->last_ms > idle_ms && c->pubsub == PUBSUB_NONE &&
                 !c->nreqs && !c->paused) /* paused: we stopped reading it */
            client_drop(c, NULL);
    }
}

void client_flush(struct client *c)
{
    if (c->state != CLIENT_OPEN || check_output(c) || c->send_armed)
        return;
    if (c->out.bytes == 0) {
        /* (after a FIN, input held for the pub/sub state or the first
         * topology is still to run) */
        if (c->close_after_reply && c->nreqs == 0 && !(c->peer_eof && c->input_held)) {
            client_close(c);
            client_maybe_free(c);
        }
        return;
    }
    /* hand the whole pending chain to this send */
    assert(c->sending.bytes == 0);
    c->sending = c->out;
    memset(&c->out, 0, sizeof c->out);
    struct iovec iov[CLIENT_SEND_IOV]; /* io_send copies the array */
    int n = obuf_iov(&c->sending, iov, CLIENT_SEND_IOV);
    io_send(c->w->io, &c->send_op, c->fd, iov, n);
    c->send_armed = true;
    c->ops++;
}

/*
 * Coalescing. A pipeline spread over several links gets its replies back on
 * different links, often in different io_wait batches; flushing at the end
 * of every iteration writes it in several small sends (at GET -P 16 over 3
 * masters, ~1.6 per batch). So a client whose output is small and whose
 * FIFO head still waits on a link (or a fan-out) keeps its output one more
 * iteration when io_ready() says completions are already waiting: they
 * often hold the missing replies, and the iteration that collects them
 * follows at once. Bounds, so no reply is late for long:
 *   - the next io_wait does not sleep while anything is held (the worker's
 *     flush_held), and an iteration that collects nothing flushes all;
 *   - at most CLIENT_HOLD_ROUNDS iterations in a row per client;
 *   - never for more than CLIENT_HOLD_BYTES, never behind a blocking call
 *     or a request parked in the worker (hold.c): those may take long.
 * Order is untouched: held output is c->out, sent whole later.
 */
#define CLIENT_HOLD_ROUNDS 1
#define CLIENT_HOLD_BYTES 16384

static bool worth_holding(const struct client *c)
{
    const struct request *r = c->rhead;
    return c->state == CLIENT_OPEN && !c->send_armed && c->out.bytes > 0 &&
           c->out.bytes <= CLIENT_HOLD_BYTES && c->held_rounds < CLIENT_HOLD_ROUNDS && r &&
           r->state == REQ_QUEUED && (r->link || r->fan) && r->wait == REQ_WAIT_NONE &&
           !(r->cmd_flags & CMD_BLOCKING);
}

bool client_flush_all(struct worker *w, bool may_hold)
{
    struct client *held = NULL;
    int ready = may_hold ? -1 : 0; /* io_ready(), asked once, when needed */
    while (w->flush_list) {
        struct client *c = w->flush_list;
        w->flush_list = c->flush_next;
        if (ready != 0 && worth_holding(c)) {
            if (ready < 0)
                ready = io_ready(w->io);
            if (ready) {
                c->held_rounds++;
                c->flush_next = held; /* stays flush_listed */
                held = c;
                continue;
            }
        }
        c->flush_listed = false;
        c->held_rounds = 0;
        client_flush(c); /* may free c (and only c) */
    }
    w->flush_list = held;
    return held != NULL;
}

static void handle_send(struct client *c, int res)
{
    c->send_armed = false;
    c->ops--;
    if (res < 0) {
        obuf_free(&c->sending);
        client_close(c);
        return;
    }
    stat_add(&c->w->stats->bytes_out, (uint64_t)res);
    obuf_consume(&c->sending, (size_t)res);
    if (c->sending.bytes) {
        /* partial send: what is left goes first, ahead of newer output */
        struct obuf rest = c->sending;
        if (c->out.head) {
            rest.tail->next = c->out.head;
            rest.tail = c->out.tail;
            rest.bytes += c->out.bytes;
        }
        c->out = rest;
        memset(&c->sending, 0, sizeof c->sending);
    }
    if (c->state == CLIENT_OPEN) {
        client_resume_if_drained(c);
        flush_later(c);
    }
}

void client_handle(struct worker *w, const struct io_event *ev)
{
    struct client *c;
    if (ev->op->tag == OP_CLIENT_RECV) {
        c = container_of(ev->op, struct client, recv_op);
        handle_recv(c, ev);
    } else {
        c = container_of(ev->op, struct client, send_op);
        handle_send(c, ev->res);
    }
    client_maybe_free(c);
}
