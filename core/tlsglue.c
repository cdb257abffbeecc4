/*
 * TLS in the runtime: the contexts (a tls_slot per side), the workers'
 * hooks into core/io's TLS filter, reloads, and the control thread's
 * blocking TLS connections.
 *
 *   tls-port listener ─accept─► tls_accepted ─► io_tls_accept(server ctx)
 *   link_connect ─────────────► tls_link_attach ─► io_tls_connect(backend)
 *   control.c / replica.c ────► bconn_* : connect, handshake, send, recv
 *                                on a blocking-with-poll socket
 *   cluster mode ─────────────► tls_consensus_stream: the consensus
 *                                thread's cluster port (tls-cluster) and
 *                                lease store (--tls), non-blocking
 *   SIGHUP, PROXY CONFIG SET ─► tls_runtime_reload: new ctx for new
 *                                connections; the old one lives as long as
 *                                a connection holds it
 *
 * Four contexts, one tls_slot each: tls-port (server), --tls (links,
 * control thread, lease store), the cluster port (server) and its outgoing
 * side (the tls-* certificate as a client one, as Redis's tls-cluster).
 *
 * The control thread's connections use a tls_conn too (not OpenSSL's
 * socket BIO): one code path for verification, session reuse and failure
 * reasons on both kinds of connection, and the same counters. They are
 * found by fd in a table the control thread alone touches (rt->bconns).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../consensus/consensus.h"
#include "runtime.h"

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */

static bool server_on(const struct config *cfg)
{
    return cfg->tls_port != 0;
}

static bool cport_on(const struct config *cfg)
{
    return cfg->cluster_mode && cfg->tls_cluster;
}

/* The side's options from cfg: 0 tls-port, 1 --tls, 2 the cluster port,
 * 3 the cluster port's outgoing side. */
enum side { SIDE_SERVER, SIDE_BACKEND, SIDE_CPORT, SIDE_CPORT_CLIENT, SIDES };

static const char *const side_names[SIDES] = {"tls-port", "--tls", "tls-cluster",
                                             "tls-cluster (client)"};

static bool side_on(const struct config *cfg, enum side s)
{
    return s == SIDE_SERVER ? server_on(cfg) : s == SIDE_BACKEND ? cfg->tls : cport_on(cfg);
}

static void side_options(const struct config *cfg, enum side s, struct tls_options *o)
{
    if (s == SIDE_SERVER || s == SIDE_CPORT)
        tls_options_server(cfg, o);
    else if (s == SIDE_BACKEND)
        tls_options_backend(cfg, o);
    else
        tls_options_cluster_client(cfg, o);
}

static struct tls_slot *side_slot(struct runtime *rt, enum side s)
{
    struct tls_slot *slots[SIDES] = {&rt->tls_server, &rt->tls_backend, &rt->tls_cport_server,
                                     &rt->tls_cport_client};
    return slots[s];
}

int tls_runtime_init(struct runtime *rt)
{
    const struct config *cfg = rt->cfg;
    char err[512];
    struct tls_ctx *ctx[SIDES] = {0};
    struct tls_options o;
    for (int s = 0; s < SIDES; s++) {
        if (!side_on(cfg, s))
            continue;
        side_options(cfg, s, &o);
        if (!(ctx[s] = tls_ctx_new(&o, err, sizeof err))) {
            log_error("TLS (%s): %s", side_names[s], err);
            while (s-- > 0)
                tls_ctx_unref(ctx[s]);
            return -1;
        }
    }
    if (cfg->tls && cfg->tls_insecure)
        log_warn("*** --tls-insecure: the nodes' certificates are NOT verified; anyone "
                 "on the path can impersonate the cluster ***");
    for (int s = 0; s < SIDES; s++)
        tls_slot_init(side_slot(rt, s), ctx[s]);
    rt->tls_inited = true;
    return 0;
}

int tls_check_config(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_options o;
    char e[480];
    for (int s = 0; s < SIDES; s++) {
        if (!side_on(cfg, s))
            continue;
        side_options(cfg, s, &o);
        struct tls_ctx *ctx = tls_ctx_new(&o, e, sizeof e);
        if (!ctx) {
            snprintf(err, errlen, "TLS (%s): %s", side_names[s], e);
            return -1;
        }
        tls_ctx_unref(ctx);
    }
    return 0;
}

void tls_runtime_destroy(struct runtime *rt)
{
    if (!rt->tls_inited)
        return;
    for (int s = 0; s < SIDES; s++)
        tls_slot_destroy(side_slot(rt, s));
    for (size_t i = 0; i < rt->nbconns; i++)
        tls_conn_free(rt->bconns[i]);
    free(rt->bconns);
    rt->tls_inited = false;
}

int tls_runtime_reload(struct runtime *rt, const struct config *cfg, char *err, size_t errlen)
{
    struct tls_options o;
    char e[480];
    int ret = 0;
    err[0] = '\0';
    for (int s = 0; s < SIDES; s++) {
        if (!side_on(rt->cfg, s)) /* which sides are on is fixed at start */
            continue;
        side_options(cfg, s, &o);
        if (tls_slot_reload(side_slot(rt, s), &o, e, sizeof e) < 0) {
            if (ret == 0)
                snprintf(err, errlen, "%s", e);
            ret = -1;
        }
    }
    stat_add(ret == 0 ? &rt->tls_reloads : &rt->tls_reload_failures, 1);
    return ret;
}

/* The options whose change rebuilds a ctx. */
static bool tls_file_option(const char *name)
{
    static const char *const names[] = {
        "tls-cert-file", "tls-key-file", "tls-key-file-pass", "tls-ca-cert-file",
        "tls-ca-cert-dir", "tls-auth-clients", "tls-cacert", "tls-cert", "tls-key",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcasecmp(name, names[i]) == 0)
            return true;
    return false;
}

int tls_config_set(struct runtime *rt, struct config *latest, const char *name,
                   const char *value, char *err, size_t errlen)
{
    if (!tls_file_option(name))
        return config_set(latest, name, value, err, errlen);
    struct config *before = malloc(sizeof *before);
    if (!before) {
        snprintf(err, errlen, "Out of memory");
        return -1;
    }
    *before = *latest;
    int ret = config_set(latest, name, value, err, errlen);
    if (ret == 0 && tls_runtime_reload(rt, latest, err, errlen) < 0) {
        *latest = *before; /* the old certificates stay in use */
        ret = -1;
    }
    free(before);
    if (ret == 0)
        log_info("TLS: %s changed; new connections use the new context", name);
    return ret;
}

void tls_sighup(struct runtime *rt)
{
    if (!server_on(rt->cfg) && !rt->cfg->tls && !cport_on(rt->cfg))
        return;
    char err[512];
    size_t reader = (size_t)rt->nworkers; /* the main thread's epoch slot */
    snapshot_reader_enter(&rt->snap, reader);
    int ret = tls_runtime_reload(rt, admin_config(rt), err, sizeof err);
    snapshot_reader_idle(&rt->snap, reader);
    if (ret < 0)
        log_warn("SIGHUP: TLS certificates not reloaded, the old ones stay: %s", err);
    else
        log_info("SIGHUP: TLS certificates reloaded");
}

/* ------------------------------------------------------------------------ */
/* Workers                                                                   */

static void log_failure(void *arg, enum io_tls_side side, const char *peer, enum tls_fail why,
                        const char *detail)
{
    (void)arg;
    if (side == IO_TLS_CONNECTED)
        log_warn("TLS handshake with node %s failed: %s%s%s", peer, tls_fail_name(why),
                 detail[0] ? ": " : "", detail);
    else
        log_debug("TLS handshake with client %s failed: %s%s%s", peer, tls_fail_name(why),
                  detail[0] ? ": " : "", detail);
}

void tls_worker_setup(struct worker *w)
{
    struct runtime *rt = w->rt;
    if (!server_on(rt->cfg) && !rt->cfg->tls)
        return;
    io_tls_setup(w->io, &rt->tls_stats[w->id], rt->cfg->tls_handshake_timeout_ms, log_failure,
                 w);
}

void tls_accepted(struct worker *w, int fd)
{
    struct tls_ctx *ctx = tls_slot_get(&w->rt->tls_server);
    if (ctx && io_tls_accept(w->io, fd, ctx) < 0)
        log_warn("TLS: no memory for a client's TLS state");
    tls_ctx_unref(ctx);
}

bool tls_link_attach(struct worker *w, int fd, const char *addr)
{
    if (!w->rt->cfg->tls)
        return true;
    char host[CLUSTER_ADDR_MAX];
    int port;
    struct tls_ctx *ctx = tls_slot_get(&w->rt->tls_backend);
    bool ok = ctx && cluster_addr_split(addr, host, sizeof host, &port) &&
              io_tls_connect(w->io, fd, ctx, host, port) == 0;
    tls_ctx_unref(ctx);
    return ok;
}

void tls_stats_sum(const struct runtime *rt, struct tls_totals *t)
{
    memset(t, 0, sizeof *t);
    const struct io_tls_stats *all[rt->nworkers + 1];
    for (int i = 0; i < rt->nworkers; i++)
        all[i] = &rt->tls_stats[i];
    all[rt->nworkers] = &rt->tls_ctl_stats;
    for (int i = 0; i <= rt->nworkers; i++)
        for (int s = 0; s < IO_TLS_SIDES; s++) {
            t->handshakes[s] += atomic_load(&all[i]->handshakes[s]);
            t->resumed[s] += atomic_load(&all[i]->resumed[s]);
            for (int f = 0; f < TLS_FAIL_COUNT; f++) {
                uint64_t n = atomic_load(&all[i]->failures[s][f]);
                t->failures[s][f] += n;
                t->failures_total[s] += n;
            }
        }
}

/* ------------------------------------------------------------------------ */
/* The control thread's blocking connections                                 */

static struct tls_conn **bconn_slot(struct runtime *rt, int fd, bool grow)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= rt->nbconns) {
        if (!grow)
            return NULL;
        size_t n = rt->nbconns ? rt->nbconns : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct tls_conn **b = realloc(rt->bconns, n * sizeof *b);
        if (!b)
            return NULL;
        memset(b + rt->nbconns, 0, (n - rt->nbconns) * sizeof *b);
        rt->bconns = b;
        rt->nbconns = n;
    }
    return &rt->bconns[fd];
}

static bool wait_until(int fd, short events, int64_t deadline)
{
    int64_t left = deadline - clock_ms();
    if (left <= 0)
        return false;
    struct pollfd pfd = {.fd = fd, .events = events};
    return poll(&pfd, 1, (int)left) == 1;
}

static int send_all(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len) {
        if (!wait_until(fd, POLLOUT, deadline))
            return -1;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

/* What the tls_conn wants sent, sent. */
static int flush_tls(int fd, struct tls_conn *c, int64_t deadline)
{
    char buf[16384];
    while (tls_conn_output_pending(c)) {
        size_t n = tls_conn_output(c, buf, sizeof buf);
        if (send_all(fd, buf, n, deadline) < 0)
            return -1;
    }
    return 0;
}

/* Ciphertext from the socket into c: 0, or -1 (EOF, error, deadline). */
static int feed_tls(int fd, struct tls_conn *c, int64_t deadline)
{
    char buf[16384];
    for (;;) {
        if (!wait_until(fd, POLLIN, deadline))
            return -1;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            tls_conn_feed(c, buf, (size_t)n);
            return 0;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            return -1;
    }
}

int bconn_start(struct runtime *rt, int fd, const char *host, int port, int64_t deadline)
{
    if (!rt->cfg->tls)
        return 0;
    struct tls_conn **slot = bconn_slot(rt, fd, true);
    if (slot && *slot) { /* a closed fd's state, should one have slipped by */
        tls_conn_free(*slot);
        *slot = NULL;
    }
    struct tls_ctx *ctx = tls_slot_get(&rt->tls_backend);
    struct tls_conn *c = slot && ctx ? tls_conn_connect(ctx, host, port, (uint64_t)clock_ms())
                                     : NULL;
    tls_ctx_unref(ctx);
    if (!c)
        return -1;
    struct io_tls_stats *st = &rt->tls_ctl_stats;
    while (tls_conn_state(c) == TLS_HANDSHAKING) {
        if (flush_tls(fd, c, deadline) < 0 || feed_tls(fd, c, deadline) < 0) {
            if (clock_ms() >= deadline)
                tls_conn_timeout(c);
            break;
        }
    }
    enum tls_state s = tls_conn_state(c);
    if (s == TLS_OPEN && flush_tls(fd, c, deadline) == 0) {
        atomic_fetch_add(&st->handshakes[IO_TLS_CONNECTED], 1);
        if (tls_conn_resumed(c))
            atomic_fetch_add(&st->resumed[IO_TLS_CONNECTED], 1);
        *slot = c;
        return 0;
    }
    enum tls_fail why = s == TLS_FAILED ? tls_conn_failure(c) : TLS_FAIL_OTHER;
    if (s == TLS_FAILED) {
        flush_tls(fd, c, clock_ms() + 100); /* the alert */
        atomic_fetch_add(&st->failures[IO_TLS_CONNECTED][why], 1);
        log_warn("TLS handshake with node %s:%d failed: %s%s%s", host, port, tls_fail_name(why),
                 tls_conn_error(c)[0] ? ": " : "", tls_conn_error(c));
    }
    tls_conn_free(c);
    return -1;
}

int bconn_send(struct runtime *rt, int fd, const char *buf, size_t len, int64_t deadline)
{
    struct tls_conn **slot = bconn_slot(rt, fd, false);
    if (!slot || !*slot)
        return send_all(fd, buf, len, deadline);
    while (len) {
        ssize_t n = tls_conn_write(*slot, buf, len);
        if (n <= 0 || flush_tls(fd, *slot, deadline) < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t bconn_recv(struct runtime *rt, int fd, char *buf, size_t cap, int64_t deadline)
{
    struct tls_conn **slot = bconn_slot(rt, fd, false);
    if (!slot || !*slot) {
        for (;;) {
            if (!wait_until(fd, POLLIN, deadline))
                return -1;
            ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
            if (n >= 0 || (errno != EAGAIN && errno != EINTR))
                return n < 0 ? -1 : n;
        }
    }
    for (;;) {
        ssize_t n = tls_conn_read(*slot, buf, cap);
        if (flush_tls(fd, *slot, deadline) < 0)
            return -1;
        if (n > 0)
            return n;
        if (n == TLS_EOF)
            return 0;
        if (n == TLS_ERROR || feed_tls(fd, *slot, deadline) < 0)
            return -1;
    }
}

void bconn_close(struct runtime *rt, int fd)
{
    struct tls_conn **slot = bconn_slot(rt, fd, false);
    if (slot && *slot) {
        tls_conn_close(*slot); /* close_notify, if the socket takes it now */
        char b[256];
        size_t n = tls_conn_output(*slot, b, sizeof b);
        if (n)
            (void)!send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        tls_conn_free(*slot);
        *slot = NULL;
    }
    close(fd);
}

/* ------------------------------------------------------------------------ */
/* The consensus thread's sockets (consensus_stream)                         */

/* A non-blocking TLS connection of the consensus thread: ciphertext the
 * socket did not take waits in `out`. */
struct cstream {
    struct runtime *rt;
    struct tls_conn *conn;
    bool counted;
    char *out;
    size_t len, cap;
};

static int cs_start(struct runtime *rt, struct tls_slot *slot, int fd, const char *host,
                    int port, void **h)
{
    struct cstream *s = calloc(1, sizeof *s);
    struct tls_ctx *ctx = tls_slot_get(slot);
    if (s && ctx)
        s->conn = host ? tls_conn_connect(ctx, host, port, (uint64_t)clock_ms())
                       : tls_conn_accept(ctx, (uint64_t)clock_ms());
    tls_ctx_unref(ctx);
    if (!s || !s->conn) {
        free(s);
        return -1;
    }
    s->rt = rt;
    *h = s;
    (void)fd;
    return 0;
}

static int cs_client(void *arg, int fd, const char *host, int port, bool lease, void **h)
{
    struct runtime *rt = arg;
    *h = NULL;
    if (lease ? !rt->cfg->tls : !cport_on(rt->cfg))
        return 0;
    return cs_start(rt, lease ? &rt->tls_backend : &rt->tls_cport_client, fd, host, port, h);
}

static int cs_server(void *arg, int fd, void **h)
{
    struct runtime *rt = arg;
    *h = NULL;
    return cport_on(rt->cfg) ? cs_start(rt, &rt->tls_cport_server, fd, NULL, 0, h) : 0;
}

/* Move the tls_conn's output to the socket as far as it takes it. */
static int cs_flush(struct cstream *s, int fd)
{
    size_t n;
    while ((n = tls_conn_output_pending(s->conn)) > 0) {
        if (s->len + n > s->cap) {
            size_t cap = s->cap ? s->cap : 16384;
            while (cap < s->len + n)
                cap *= 2;
            char *b = realloc(s->out, cap);
            if (!b)
                return -1;
            s->out = b;
            s->cap = cap;
        }
        s->len += tls_conn_output(s->conn, s->out + s->len, n);
    }
    while (s->len) {
        ssize_t w = send(fd, s->out, s->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        memmove(s->out, s->out + w, s->len - (size_t)w);
        s->len -= (size_t)w;
    }
    return 0;
}

/* After a feed: count the handshake's end once, log a failure. */
static void cs_note(struct cstream *s)
{
    enum tls_state st = tls_conn_state(s->conn);
    if (s->counted || st == TLS_HANDSHAKING)
        return;
    s->counted = true;
    struct io_tls_stats *t = &s->rt->tls_ctl_stats;
    int side = IO_TLS_CONNECTED; /* the consensus thread's count with the backend side */
    if (st == TLS_FAILED) {
        enum tls_fail why = tls_conn_failure(s->conn);
        atomic_fetch_add(&t->failures[side][why], 1);
        log_warn("cluster mode: TLS handshake failed: %s%s%s", tls_fail_name(why),
                 tls_conn_error(s->conn)[0] ? ": " : "", tls_conn_error(s->conn));
    } else {
        atomic_fetch_add(&t->handshakes[side], 1);
    }
}

/* len 0: only move waiting ciphertext to the socket. */
static ssize_t cs_send(void *h, int fd, const void *buf, size_t len)
{
    struct cstream *s = h;
    ssize_t n = len ? tls_conn_write(s->conn, buf, len) : 0;
    if (cs_flush(s, fd) < 0 || n == TLS_ERROR) {
        errno = EPIPE;
        return -1;
    }
    if (n == TLS_AGAIN) {
        errno = EAGAIN;
        return -1;
    }
    return n;
}

static ssize_t cs_recv(void *h, int fd, void *buf, size_t cap)
{
    struct cstream *s = h;
    char raw[16384];
    for (;;) {
        ssize_t n = tls_conn_read(s->conn, buf, cap);
        if (cs_flush(s, fd) < 0) {
            errno = EPIPE;
            return -1;
        }
        if (n > 0)
            return n;
        if (n == TLS_EOF)
            return 0;
        if (n == TLS_ERROR) {
            errno = ECONNRESET;
            return -1;
        }
        ssize_t r = recv(fd, raw, sizeof raw, MSG_DONTWAIT);
        if (r <= 0)
            return r; /* EOF, or -1 with errno (EAGAIN: poll) */
        tls_conn_feed(s->conn, raw, (size_t)r);
        cs_note(s);
    }
}

static short cs_events(void *h, short want)
{
    struct cstream *s = h;
    short out = s->len || tls_conn_output_pending(s->conn) ? POLLOUT : 0;
    if (tls_conn_state(s->conn) == TLS_HANDSHAKING)
        return (short)(POLLIN | out);
    return (short)(want | out);
}

static void cs_close(void *h, int fd)
{
    struct cstream *s = h;
    if (tls_conn_state(s->conn) == TLS_OPEN) {
        tls_conn_close(s->conn); /* close_notify, if the socket takes it now */
        cs_flush(s, fd);
    }
    tls_conn_free(s->conn);
    free(s->out);
    free(s);
}

static const struct consensus_stream cstream_ops = {
    .client = cs_client,
    .server = cs_server,
    .send = cs_send,
    .recv = cs_recv,
    .events = cs_events,
    .close = cs_close,
};

const struct consensus_stream *tls_consensus_stream(const struct runtime *rt)
{
    return rt->cfg->tls || cport_on(rt->cfg) ? &cstream_ops : NULL;
}
