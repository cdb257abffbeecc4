/*
 * TLS in the runtime: the contexts (a tls_slot per side), the workers'
 * hooks into core/io's TLS filter, reloads, and the control thread's
 * blocking TLS connections.
 *
 *   tls-port listener ─accept─► tls_accepted ─► io_tls_accept(server ctx)
 *   link_connect ─────────────► tls_link_attach ─► io_tls_connect(backend)
 *   control.c / replica.c ────► bconn_* : connect, handshake, send, recv
 *                                on a blocking-with-poll socket
 *   SIGHUP, PROXY CONFIG SET ─► tls_runtime_reload: new ctx for new
 *                                connections; the old one lives as long as
 *                                a connection holds it
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

#include "runtime.h"

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */

static bool server_on(const struct config *cfg)
{
    return cfg->tls_port != 0;
}

int tls_runtime_init(struct runtime *rt)
{
    const struct config *cfg = rt->cfg;
    char err[512];
    struct tls_options o;
    struct tls_ctx *server = NULL, *backend = NULL;
    if (server_on(cfg)) {
        tls_options_server(cfg, &o);
        if (!(server = tls_ctx_new(&o, err, sizeof err))) {
            log_error("TLS (tls-port): %s", err);
            return -1;
        }
    }
    if (cfg->tls) {
        tls_options_backend(cfg, &o);
        if (!(backend = tls_ctx_new(&o, err, sizeof err))) {
            log_error("TLS (--tls): %s", err);
            tls_ctx_unref(server);
            return -1;
        }
        if (cfg->tls_insecure)
            log_warn("*** --tls-insecure: the nodes' certificates are NOT verified; anyone "
                     "on the path can impersonate the cluster ***");
    }
    tls_slot_init(&rt->tls_server, server);
    tls_slot_init(&rt->tls_backend, backend);
    rt->tls_inited = true;
    return 0;
}

int tls_check_config(const struct config *cfg, char *err, size_t errlen)
{
    struct tls_options o;
    char e[480];
    struct tls_ctx *ctx;
    if (server_on(cfg)) {
        tls_options_server(cfg, &o);
        if (!(ctx = tls_ctx_new(&o, e, sizeof e))) {
            snprintf(err, errlen, "TLS (tls-port): %s", e);
            return -1;
        }
        tls_ctx_unref(ctx);
    }
    if (cfg->tls) {
        tls_options_backend(cfg, &o);
        if (!(ctx = tls_ctx_new(&o, e, sizeof e))) {
            snprintf(err, errlen, "TLS (--tls): %s", e);
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
    tls_slot_destroy(&rt->tls_server);
    tls_slot_destroy(&rt->tls_backend);
    for (size_t i = 0; i < rt->nbconns; i++)
        tls_conn_free(rt->bconns[i]);
    free(rt->bconns);
    rt->tls_inited = false;
}

int tls_runtime_reload(struct runtime *rt, const struct config *cfg, char *err, size_t errlen)
{
    struct tls_options o;
    char e[512];
    int ret = 0;
    err[0] = '\0';
    if (server_on(rt->cfg)) {
        tls_options_server(cfg, &o);
        if (tls_slot_reload(&rt->tls_server, &o, e, sizeof e) < 0) {
            snprintf(err, errlen, "%s", e);
            ret = -1;
        }
    }
    if (rt->cfg->tls) {
        tls_options_backend(cfg, &o);
        if (tls_slot_reload(&rt->tls_backend, &o, e, sizeof e) < 0) {
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
    if (!server_on(rt->cfg) && !rt->cfg->tls)
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
