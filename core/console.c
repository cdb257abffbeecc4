/*
 * The HTTP console (--console-port): a small HTTP/1.1 server for probes and
 * scrapers, served from the main thread's poll loop.
 *
 *   GET /metrics   Prometheus text format 0.0.4 (metrics_render)
 *   GET /healthz   200 while the process runs
 *   GET /readyz    200 once listening with a topology loaded, 503 before
 *                  that and while shutting down
 *   GET /info      the INFO text
 *
 * Why the main thread and not the control thread: the control thread talks
 * to the backend with blocking calls that can take seconds while nodes are
 * down, which is exactly when probes must still be answered. The main
 * thread only waits for signals; it reads shared state the way a worker
 * does (counters, and snapshots through a reader slot of its own).
 *
 * Readiness: once a topology was loaded the proxy stays ready, whatever
 * happens to the backend afterwards. A backend outage hits every proxy at
 * once; if they all turned unready, Kubernetes would remove every endpoint
 * and turn a partial outage (some slots down) into a total one. Clients get
 * CLUSTERDOWN for the slots that are down, as Redis itself would answer.
 *
 * Each connection: read one request head (up to CONSOLE_REQ_MAX bytes,
 * within CONSOLE_HEADER_MS of the accept), write the response (within
 * CONSOLE_SEND_MS), close (Connection: close).
 *
 * Stalled clients never keep probes out (Slowloris): when every place is
 * taken, a new connection takes the place of the oldest one still waiting
 * for its request head, and a new connection is read at once (a probe
 * sends its request with the handshake), so /healthz, /readyz and /metrics
 * are answered in the pass that accepts them, however many others stall.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define CONSOLE_CONNS 32
#define CONSOLE_REQ_MAX 4096
#define CONSOLE_HEADER_MS 2000 /* the whole request head, from the accept */
#define CONSOLE_SEND_MS 5000   /* the response, once built */

struct console_conn {
    int fd;                    /* -1: free */
    char in[CONSOLE_REQ_MAX];
    size_t in_len;
    char *out;                 /* the whole response, once built */
    size_t out_len, out_off;
    int64_t deadline_ms;       /* reading: CONSOLE_HEADER_MS after the
                                  accept; sending: CONSOLE_SEND_MS after
                                  the response was built */
};

struct console {
    struct runtime *rt;
    size_t reader;             /* snapshot reader index of this thread */
    int lfds[LISTENERS_MAX];
    int nlfds;
    struct console_conn conns[CONSOLE_CONNS];
    int poll_conn[CONSOLE_CONNS]; /* pollfd index - nlfds → conns[] index */
};

int console_open(struct runtime *rt, struct console **out)
{
    struct console *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int n = listen_tcp(rt->cfg, rt->cfg->console_port, false, c->lfds);
    if (n < 0) {
        free(c);
        return n;
    }
    for (int i = 0; i < n; i++)
        fcntl(c->lfds[i], F_SETFL, fcntl(c->lfds[i], F_GETFL) | O_NONBLOCK);
    c->nlfds = n;
    c->rt = rt;
    c->reader = (size_t)rt->nworkers;
    for (int i = 0; i < CONSOLE_CONNS; i++)
        c->conns[i].fd = -1;
    *out = c;
    return 0;
}

static void conn_close(struct console_conn *k)
{
    close(k->fd);
    free(k->out);
    k->fd = -1;
    k->out = NULL;
}

void console_close(struct console *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nlfds; i++)
        close(c->lfds[i]);
    for (int i = 0; i < CONSOLE_CONNS; i++)
        if (c->conns[i].fd >= 0)
            conn_close(&c->conns[i]);
    free(c);
}

int console_pollfds(struct console *c, struct pollfd *pfds, int max)
{
    int n = 0;
    for (int i = 0; i < c->nlfds && n < max; i++)
        pfds[n++] = (struct pollfd){.fd = c->lfds[i], .events = POLLIN};
    for (int i = 0; i < CONSOLE_CONNS && n < max; i++) {
        struct console_conn *k = &c->conns[i];
        if (k->fd < 0)
            continue;
        c->poll_conn[n - c->nlfds] = i;
        pfds[n++] = (struct pollfd){.fd = k->fd, .events = k->out ? POLLOUT : POLLIN};
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */

static void respond(struct console_conn *k, int status, const char *reason,
                    const char *type, const char *body, size_t len, bool head_only)
{
    char hdr[256];
    int h = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n", status, reason, type, len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t total = (size_t)h + (head_only ? 0 : len);
    k->out = malloc(total);
    if (!k->out)
        abort();
    memcpy(k->out, hdr, (size_t)h);
    if (!head_only)
        memcpy(k->out + h, body, len);
    k->out_len = total;
    k->out_off = 0;
}

static void respond_text(struct console_conn *k, int status, const char *reason,
                         const char *text, bool head_only)
{
    respond(k, status, reason, "text/plain; charset=utf-8", text, strlen(text), head_only);
}

static void route(struct console *c, struct console_conn *k, const char *path, bool head)
{
    struct runtime *rt = c->rt;
    size_t len;
    if (strcmp(path, "/metrics") == 0) {
        char *body = metrics_render(rt, c->reader, &len);
        respond(k, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len, head);
        free(body);
    } else if (strcmp(path, "/healthz") == 0) {
        respond_text(k, 200, "OK", "ok\n", head);
    } else if (strcmp(path, "/readyz") == 0) {
        if (atomic_load(&rt->stopping))
            respond_text(k, 503, "Service Unavailable", "shutting down\n", head);
        else if (!atomic_load(&rt->topology_ready))
            respond_text(k, 503, "Service Unavailable",
                         "no entry point has answered yet: no topology\n", head);
        else
            respond_text(k, 200, "OK", "ready\n", head);
    } else if (strcmp(path, "/info") == 0) {
        snapshot_reader_enter(&rt->snap, c->reader);
        const struct config *cfg = snapshot_load(&rt->slots[SLOT_CONFIG]);
        struct info_view v = {rt, snapshot_load(&rt->slots[SLOT_TOPOLOGY]), cfg ? cfg : rt->cfg,
                              tls_stats_sum};
        struct resp_buf body = {0};
        info_write(&v, INFO_ALL & ~(unsigned)INFO_KEYSPACE, true, &body);
        snapshot_reader_idle(&rt->snap, c->reader);
        respond(k, 200, "OK", "text/plain; charset=utf-8", body.data, body.len, head);
        resp_buf_free(&body);
    } else {
        respond_text(k, 404, "Not Found", "not found\n", head);
    }
}

/*
 * The request line: "METHOD SP target SP HTTP/1.x". Headers are read (to
 * find the end of the request) and ignored; a body is not expected.
 */
static void handle_request(struct console *c, struct console_conn *k)
{
    char *eol = memchr(k->in, '\r', k->in_len);
    char method[16], target[256], version[16];
    if (!eol) {
        respond_text(k, 400, "Bad Request", "bad request\n", false);
        return;
    }
    *eol = '\0';
    if (sscanf(k->in, "%15s %255s %15s", method, target, version) != 3 ||
        target[0] != '/' || strncmp(version, "HTTP/1.", 7) != 0) {
        respond_text(k, 400, "Bad Request", "bad request\n", false);
        return;
    }
    target[strcspn(target, "?#")] = '\0';
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0)
        respond_text(k, 405, "Method Not Allowed", "method not allowed\n", false);
    else
        route(c, k, target, head);
}

/* ------------------------------------------------------------------------ */
/* I/O                                                                       */

static void conn_write(struct console_conn *k)
{
    ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0) {
        conn_close(k);
        return;
    }
    k->out_off += (size_t)n;
    if (k->out_off == k->out_len)
        conn_close(k);
}

/* Read; once the headers are complete, build the response. */
static void conn_read(struct console *c, struct console_conn *k)
{
    ssize_t n = read(k->fd, k->in + k->in_len, sizeof k->in - 1 - k->in_len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_close(k);
        return;
    }
    if (n < 0)
        return;
    k->in_len += (size_t)n;
    k->in[k->in_len] = '\0';
    if (strstr(k->in, "\r\n\r\n") || strstr(k->in, "\n\n"))
        handle_request(c, k);
    else if (k->in_len == sizeof k->in - 1)
        respond_text(k, 431, "Request Header Fields Too Large", "request too large\n", false);
    if (k->out) {
        k->deadline_ms = clock_ms() + CONSOLE_SEND_MS;
        conn_write(k); /* usually all of it: the socket is fresh */
    }
}

/*
 * A place for a new connection: a free one, else the place of the oldest
 * connection still reading its request head (closed here). NULL only when
 * every place is sending a response, which ends within CONSOLE_SEND_MS.
 */
static struct console_conn *take_place(struct console *c)
{
    struct console_conn *oldest = NULL;
    for (int i = 0; i < CONSOLE_CONNS; i++) {
        struct console_conn *k = &c->conns[i];
        if (k->fd < 0)
            return k;
        if (!k->out && (!oldest || k->deadline_ms < oldest->deadline_ms))
            oldest = k;
    }
    if (oldest)
        conn_close(oldest);
    return oldest;
}

static void accept_all(struct console *c, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        struct console_conn *k = take_place(c);
        if (!k) { /* every place is answering: a scraper retries */
            close(fd);
            continue;
        }
        k->fd = fd;
        k->in_len = 0;
        k->deadline_ms = clock_ms() + CONSOLE_HEADER_MS;
        conn_read(c, k); /* a probe's request is usually here already */
    }
}

void console_handle(struct console *c, const struct pollfd *pfds, int n)
{
    for (int i = c->nlfds; i < n; i++) {
        struct console_conn *k = &c->conns[c->poll_conn[i - c->nlfds]];
        if (k->fd != pfds[i].fd || !pfds[i].revents)
            continue;
        if (pfds[i].revents & (POLLERR | POLLNVAL))
            conn_close(k);
        else if (k->out)
            conn_write(k);
        else
            conn_read(c, k);
    }
    /* after the connections: accepting may reuse a place (and its fd
     * number) that this pass's pollfds still describe */
    for (int i = 0; i < n && i < c->nlfds; i++)
        if (pfds[i].revents & POLLIN)
            accept_all(c, pfds[i].fd);
    int64_t now = clock_ms();
    for (int i = 0; i < CONSOLE_CONNS; i++)
        if (c->conns[i].fd >= 0 && now > c->conns[i].deadline_ms)
            conn_close(&c->conns[i]);
}
