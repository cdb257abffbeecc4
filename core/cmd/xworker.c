/*
 * Cross-worker requests: questions about every worker's clients (CLIENT
 * LIST, CLIENT KILL) answered without any thread touching another's client
 * table (DESIGN §1).
 *
 *   worker A (asking)                        worker B (and A itself)
 *   -----------------                        -----------------------
 *   placeholder in the client's FIFO
 *   gather {pending = nworkers}
 *   one xmsg per worker ──push + eventfd──►  inbox read completes (OP_XWAKE)
 *                                            answer from its own clients
 *   inbox read completes ◄──push + eventfd── the same xmsg, answered
 *   fold into the gather; the last answer
 *   completes the placeholder (request order kept)
 *
 * The same inbox carries unix-socket clients: SO_REUSEPORT cannot spread
 * them, so worker 0 accepts them all and hands each to the worker with the
 * fewest clients (xworker_adopt); the message owns the fd until then.
 *
 * Inbox: a lock-free LIFO of messages (producers CAS-push; the owner takes
 * the whole list with one exchange, so there is no ABA) plus an eventfd
 * that the owner keeps a read armed on in its own ring. A message is owned
 * by whoever popped it last; the gather belongs to the asking worker and is
 * touched only there. A worker that has stopped never answers: its inbox
 * and the asking worker's pending gathers are freed at destroy time (their
 * clients are gone by then).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd.h"

#define FILTER_MAX_IDS 256

enum xkind { X_LIST, X_KILL };
enum ctype { CT_ANY, CT_NORMAL, CT_PUBSUB, CT_NONE /* master/replica: none here */ };

/* Which clients a CLIENT LIST / CLIENT KILL is about. Written by the asking
 * worker before the messages are pushed, read-only afterwards. */
struct xfilter {
    enum ctype type;
    uint64_t ids[FILTER_MAX_IDS];
    size_t nids;                 /* 0: any id */
    char addr[64], laddr[64];    /* "" = any */
    bool user_other;             /* USER other than "default": matches none */
    long long maxage;            /* seconds; 0 = any */
    bool skipme;
    uint64_t me;                 /* the asking client's id */
};

struct xgather {
    struct xgather *next;        /* asking worker's list */
    enum xkind kind;
    bool old_kill;               /* CLIENT KILL ip:port: +OK / no such client */
    int pending;
    struct request *slot;        /* placeholder in the client's FIFO */
    struct resp_buf text;        /* CLIENT LIST lines */
    long long count;             /* clients killed */
    struct xfilter filter;
};

struct xmsg {
    struct xmsg *next;
    bool adopt;                  /* a client handed over: `fd`, nothing else */
    int fd;
    bool answered;
    int from;                    /* asking worker */
    struct xgather *g;           /* the answering worker reads only its
                                    filter; the rest is `from`'s */
    char *text;                  /* answer (owned) */
    size_t len;
    long long count;
};

/* ------------------------------------------------------------------------ */
/* Inbox                                                                     */

int xworker_init(struct worker *w)
{
    w->inbox_op.tag = OP_XWAKE;
    atomic_init(&w->inbox, NULL);
    w->inbox_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return w->inbox_fd < 0 ? -errno : 0;
}

void xworker_arm(struct worker *w)
{
    if (w->inbox_armed || w->quiescing || w->inbox_fd < 0)
        return;
    io_read(w->io, &w->inbox_op, w->inbox_fd, &w->inbox_val, sizeof w->inbox_val);
    w->inbox_armed = true;
    w->ops++;
}

void xworker_wake(struct worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->inbox_fd, &one, sizeof one); /* counter: never blocks long */
    (void)n;
}

static void inbox_push(struct worker *to, struct xmsg *m)
{
    struct xmsg *head = atomic_load_explicit(&to->inbox, memory_order_relaxed);
    do
        m->next = head;
    while (!atomic_compare_exchange_weak_explicit(&to->inbox, &head, m,
                                                  memory_order_release,
                                                  memory_order_relaxed));
    xworker_wake(to);
}

/* Everything pushed so far, oldest first. */
static struct xmsg *inbox_take(struct worker *w)
{
    struct xmsg *m = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    struct xmsg *fifo = NULL;
    while (m) {
        struct xmsg *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
    }
    return fifo;
}

static void msg_free(struct xmsg *m)
{
    free(m->text);
    free(m);
}

/* ------------------------------------------------------------------------ */
/* Answering (on the worker that owns the clients)                           */

static void sock_name(const struct client *c, bool local, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int ret = local ? getsockname(c->fd, (struct sockaddr *)&ss, &sl)
                    : getpeername(c->fd, (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ret == 0 && ss.ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        port = ntohs(s->sin_port);
    } else if (ret == 0 && ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        port = ntohs(s->sin6_port);
        if (strncmp(ip, "::ffff:", 7) == 0 && strchr(ip + 7, '.')) /* v4-mapped */
            memmove(ip, ip + 7, strlen(ip + 7) + 1);
    } else if (ret == 0 && ss.ss_family == AF_UNIX) {
        snprintf(out, outlen, "%s:0", c->w->rt->cfg->unixsocket);
        return;
    }
    snprintf(out, outlen, "%s:%d", ip, port);
}

void client_info_line(struct client *c, struct resp_buf *b, const char *cmd)
{
    char addr[128], laddr[128], flags[8], line[1024];
    sock_name(c, false, addr, sizeof addr);
    sock_name(c, true, laddr, sizeof laddr);
    size_t nf = 0;
    if (c->pubsub != PUBSUB_NONE)
        flags[nf++] = 'P';
    if (c->in_multi)
        flags[nf++] = 'x';
    if (nf == 0)
        flags[nf++] = 'N';
    flags[nf] = '\0';
    int64_t now = c->w->now_ms;
    size_t omem = c->out.bytes + c->sending.bytes;
    struct sub_counts subs = pubsub_client_counts(c);
    int n = snprintf(line, sizeof line,
        "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=0 "
        "sub=%u psub=%u ssub=%u multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=%zu "
        "rbs=%zu rbp=0 obl=0 oll=%zu omem=%zu tot-mem=%zu events=r cmd=%s user=default "
        "redir=-1 resp=%d lib-name=%s lib-ver=%s",
        (unsigned long long)c->id, addr, laddr, c->fd, c->name ? c->name : "",
        (long long)(now - c->created_ms) / 1000, (long long)(now - c->last_ms) / 1000,
        flags, subs.channels, subs.patterns, subs.shard,
        c->in_multi ? (int)c->multi_cmds : -1, c->tail_len,
        c->tail_cap - c->tail_len, c->multi_buf.cap, c->tail_cap, c->nreqs, omem,
        sizeof *c + c->tail_cap + omem + c->multi_buf.cap, cmd,
        c->proto, c->lib_name ? c->lib_name : "", c->lib_ver ? c->lib_ver : "");
    resp_buf_append(b, line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

static bool matches(struct client *c, const struct xfilter *f)
{
    if (c->state != CLIENT_OPEN)
        return false;
    if (f->type == CT_NONE || f->user_other)
        return false;
    if (f->type == CT_NORMAL && c->pubsub != PUBSUB_NONE)
        return false;
    if (f->type == CT_PUBSUB && c->pubsub == PUBSUB_NONE)
        return false;
    if (f->skipme && c->id == f->me)
        return false;
    if (f->maxage && (c->w->now_ms - c->created_ms) / 1000 < f->maxage)
        return false;
    bool id_ok = f->nids == 0;
    for (size_t i = 0; !id_ok && i < f->nids; i++)
        id_ok = f->ids[i] == c->id;
    if (!id_ok)
        return false;
    char a[128];
    if (f->addr[0]) {
        sock_name(c, false, a, sizeof a);
        if (strcmp(a, f->addr) != 0)
            return false;
    }
    if (f->laddr[0]) {
        sock_name(c, true, a, sizeof a);
        if (strcmp(a, f->laddr) != 0)
            return false;
    }
    return true;
}

static void answer_list(struct worker *w, struct xmsg *m, const struct xfilter *f)
{
    struct resp_buf b = {0};
    for (struct client *c = w->clients; c; c = c->next) {
        if (!matches(c, f))
            continue;
        client_info_line(c, &b, c->id == f->me ? "client|list"
                         : c->last_cmd[0] ? c->last_cmd : "NULL");
        resp_buf_append(&b, "\n", 1);
    }
    m->text = b.data;
    m->len = b.len;
}

/* The asking client itself is closed after its reply, as Redis does. */
static void answer_kill(struct worker *w, struct xmsg *m, const struct xfilter *f)
{
    for (struct client *c = w->clients, *next; c; c = next) {
        next = c->next;
        if (!matches(c, f))
            continue;
        m->count++;
        if (c->id == f->me) {
            c->close_after_reply = true;
            c->reading_stopped = true;
        } else {
            client_kill(c);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Gathering (on the asking worker)                                          */

static void gather_unlist(struct worker *w, struct xgather *g)
{
    for (struct xgather **p = &w->gathers; *p; p = &(*p)->next)
        if (*p == g) {
            *p = g->next;
            return;
        }
}

static void gather_finish(struct worker *w, struct xgather *g)
{
    struct resp_buf b = {0};
    if (g->kind == X_LIST) /* RESP3: a verbatim string, as Redis's */
        fanout_write_text(&b, g->slot->client ? g->slot->client->proto : 2,
                          g->text.data ? g->text.data : "", g->text.len);
    else if (!g->old_kill)
        resp_write_integer(&b, g->count);
    else if (g->count)
        resp_write_simple(&b, "OK");
    else
        resp_write_error(&b, "ERR No such client");
    fanout_placeholder_done(g->slot, b.data, b.len);
    resp_buf_free(&b);
    gather_unlist(w, g);
    resp_buf_free(&g->text);
    free(g);
}

static void fold_answer(struct worker *w, struct xmsg *m)
{
    struct xgather *g = m->g;
    if (m->len)
        resp_buf_append(&g->text, m->text, m->len);
    g->count += m->count;
    msg_free(m);
    if (--g->pending == 0)
        gather_finish(w, g);
}

void xworker_handle(struct worker *w, int res)
{
    w->inbox_armed = false;
    w->ops--;
    for (struct xmsg *m = inbox_take(w), *next; m; m = next) {
        next = m->next;
        if (m->adopt) {
            client_accepted(w, m->fd);
            msg_free(m);
            continue;
        }
        if (m->answered) {
            fold_answer(w, m);
            continue;
        }
        const struct xfilter *f = &m->g->filter; /* read-only while asked */
        if (m->g->kind == X_LIST)
            answer_list(w, m, f);
        else
            answer_kill(w, m, f);
        m->answered = true;
        inbox_push(w->rt->workers[m->from], m);
    }
    if (res != -ECANCELED)
        xworker_arm(w);
}

void xworker_adopt(struct worker *w, int fd)
{
    struct runtime *rt = w->rt;
    /* fewest clients now, counting those handed over in this batch (a
     * worker's count shows them only once it has adopted them); ties go
     * round the workers */
    if (!w->adopt_sent)
        w->adopt_sent = calloc((size_t)rt->nworkers, sizeof *w->adopt_sent);
    if (w->adopt_sent && w->adopt_batch_us != w->now_us) {
        memset(w->adopt_sent, 0, (size_t)rt->nworkers * sizeof *w->adopt_sent);
        w->adopt_batch_us = w->now_us;
    }
    int best = -1;
    uint64_t best_n = UINT64_MAX;
    for (int k = 0; k < rt->nworkers; k++) {
        int i = (w->adopt_next + k) % rt->nworkers;
        uint64_t n = atomic_load_explicit(&rt->stats[i].clients, memory_order_relaxed) +
                     (w->adopt_sent ? w->adopt_sent[i] : 0);
        if (n < best_n) {
            best = i;
            best_n = n;
        }
    }
    w->adopt_next = (best + 1) % rt->nworkers;
    struct xmsg *m = best == w->id ? NULL : calloc(1, sizeof *m);
    if (!m) {
        client_accepted(w, fd); /* this worker, or no memory for the message */
        return;
    }
    if (w->adopt_sent)
        w->adopt_sent[best]++;
    m->adopt = true;
    m->fd = fd;
    inbox_push(rt->workers[best], m);
}

/* Ask every worker (this one included, through the same path). */
static void gather_start(struct client *c, struct xgather *g)
{
    struct worker *w = c->w;
    struct runtime *rt = w->rt;
    g->slot = fanout_placeholder(c);
    g->pending = rt->nworkers;
    g->next = w->gathers;
    w->gathers = g;
    for (int i = 0; i < rt->nworkers; i++) {
        struct xmsg *m = calloc(1, sizeof *m);
        if (!m)
            abort();
        m->from = w->id;
        m->g = g;
        inbox_push(rt->workers[i], m);
    }
}

void xworker_destroy(struct worker *w)
{
    for (struct xmsg *m = inbox_take(w), *next; m; m = next) {
        next = m->next;
        if (m->adopt)
            close(m->fd); /* its client never started */
        msg_free(m); /* a question's gather is its own worker's to free */
    }
    while (w->gathers) {
        struct xgather *g = w->gathers;
        w->gathers = g->next;
        request_free(g->slot); /* orphaned: every client is gone */
        resp_buf_free(&g->text);
        free(g);
    }
    if (w->inbox_fd >= 0)
        io_close(w->io, w->inbox_fd);
    free(w->adopt_sent);
    w->inbox_fd = -1;
}

/* ------------------------------------------------------------------------ */
/* CLIENT LIST / CLIENT KILL arguments                                       */

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    char num[24];
    if (len == 0 || len >= sizeof num)
        return false;
    memcpy(num, s, len);
    num[len] = '\0';
    char *end;
    long long v = strtoll(num, &end, 10);
    if (*end || v <= 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

static const char *parse_type(const struct cmd_args *a, size_t i, enum ctype *t)
{
    if (arg_is(a, i, "normal"))
        *t = CT_NORMAL;
    else if (arg_is(a, i, "pubsub"))
        *t = CT_PUBSUB;
    else if (arg_is(a, i, "master") || arg_is(a, i, "replica") || arg_is(a, i, "slave"))
        *t = CT_NONE;
    else
        return "ERR Unknown client type";
    return NULL;
}

static void copy_arg(const struct cmd_args *a, size_t i, char *out, size_t outlen)
{
    size_t n = a->lens[i] < outlen - 1 ? a->lens[i] : outlen - 1;
    memcpy(out, a->argv[i], n);
    out[n] = '\0';
}

static struct xgather *gather_new(struct client *c, enum xkind kind)
{
    struct xgather *g = calloc(1, sizeof *g);
    if (!g)
        abort();
    g->kind = kind;
    g->filter.me = c->id;
    return g;
}

static void refuse(struct client *c, struct xgather *g, const char *err)
{
    free(g);
    client_reply_error(c, err);
}

/* CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id [id …]] */
void xworker_client_list(struct client *c, const struct cmd_args *a)
{
    struct xgather *g = gather_new(c, X_LIST);
    if (a->argc == 4 && arg_is(a, 2, "type")) {
        const char *err = parse_type(a, 3, &g->filter.type);
        if (err) {
            refuse(c, g, err);
            return;
        }
    } else if (a->argc >= 4 && arg_is(a, 2, "id")) {
        for (size_t i = 3; i < a->argc && g->filter.nids < FILTER_MAX_IDS; i++)
            if (!parse_u64(a->argv[i], a->lens[i], &g->filter.ids[g->filter.nids++])) {
                refuse(c, g, "ERR Invalid client ID");
                return;
            }
    } else if (a->argc != 2) {
        refuse(c, g, "ERR syntax error");
        return;
    }
    gather_start(c, g);
}

/* One filter of CLIENT KILL's new form; NULL or an error. */
static const char *kill_option(const struct cmd_args *a, size_t i, struct xfilter *f)
{
    if (arg_is(a, i, "id")) {
        f->nids = 1;
        return parse_u64(a->argv[i + 1], a->lens[i + 1], &f->ids[0])
                   ? NULL : "ERR client-id should be greater than 0";
    }
    if (arg_is(a, i, "type"))
        return parse_type(a, i + 1, &f->type);
    if (arg_is(a, i, "addr")) {
        copy_arg(a, i + 1, f->addr, sizeof f->addr);
        return NULL;
    }
    if (arg_is(a, i, "laddr")) {
        copy_arg(a, i + 1, f->laddr, sizeof f->laddr);
        return NULL;
    }
    if (arg_is(a, i, "user")) {
        f->user_other = !arg_is(a, i + 1, "default");
        return NULL;
    }
    if (arg_is(a, i, "skipme")) {
        if (!arg_is(a, i + 1, "yes") && !arg_is(a, i + 1, "no"))
            return "ERR syntax error";
        f->skipme = arg_is(a, i + 1, "yes");
        return NULL;
    }
    if (arg_is(a, i, "maxage")) {
        uint64_t age;
        if (!parse_u64(a->argv[i + 1], a->lens[i + 1], &age))
            return "ERR syntax error";
        f->maxage = (long long)age;
        return NULL;
    }
    return "ERR syntax error";
}

/* CLIENT KILL ip:port | CLIENT KILL <filter> <value> … */
void xworker_client_kill(struct client *c, const struct cmd_args *a)
{
    struct xgather *g = gather_new(c, X_KILL);
    if (a->argc == 3) {
        g->old_kill = true;
        copy_arg(a, 2, g->filter.addr, sizeof g->filter.addr);
    } else if (a->argc < 4 || a->argc % 2) {
        refuse(c, g, "ERR syntax error");
        return;
    } else {
        g->filter.skipme = true;
        for (size_t i = 2; i < a->argc; i += 2) {
            const char *err = kill_option(a, i, &g->filter);
            if (err) {
                refuse(c, g, err);
                return;
            }
        }
    }
    gather_start(c, g);
}
