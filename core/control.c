/*
 * The control thread: the only writer of shared state.
 *
 *   wait (eventfd from workers, or the refresh period)
 *     ├─ drain the queue: MOVED seen / link lost → refresh wanted
 *     ├─ refresh: CLUSTER SLOTS from the first node that answers (known
 *     │  nodes first, then the entry points); publish a new topology
 *     │  snapshot only if it differs
 *     ├─ once: COMMAND → the backend's command table (else the built-in one)
 *     └─ reclaim snapshots no worker can see any more
 *
 * It uses plain blocking sockets with timeouts: it talks to the backend a
 * few times a second at most, and never on the request path.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime.h"

#define REFRESH_PERIOD_MS 5000
#define REFRESH_MIN_GAP_MS 100
#define IO_TIMEOUT_MS 2000

struct control {
    struct runtime *rt;
    uint64_t version;
    bool have_commands;
    bool refresh_wanted;
    int64_t last_refresh_ms;
    int64_t next_periodic_ms;
    unsigned failures;      /* consecutive failed refreshes (backoff) */
};

void control_request_refresh(struct runtime *rt, int worker, const char *addr)
{
    struct ctl_msg m = {.type = CTL_MSG_REFRESH, .worker = (uint16_t)worker};
    if (addr)
        snprintf(m.addr, sizeof m.addr, "%s", addr);
    if (mq_push(&rt->ctl_queue, &m)) {
        uint64_t one = 1;
        ssize_t n = write(rt->ctl_wakeup_fd, &one, sizeof one);
        (void)n;
    }
}

/* ------------------------------------------------------------------------ */
/* A tiny blocking RESP client                                               */

static int connect_timeout(const char *host, int port, int ms)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int err = 0;
            socklen_t el = sizeof err;
            if (poll(&pfd, 1, ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
                r = 0;
        }
        if (r == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

static bool wait_fd(int fd, short events, int64_t deadline)
{
    int64_t left = deadline - clock_ms();
    if (left <= 0)
        return false;
    struct pollfd pfd = {.fd = fd, .events = events};
    return poll(&pfd, 1, (int)left) == 1;
}

/*
 * Send one command and read its reply into *out. *buf owns the bytes the
 * value points into (free it after resp_value_free). Returns 0 or -1.
 */
static int call(int fd, const char *cmd, struct resp_value *out, char **buf)
{
    int64_t deadline = clock_ms() + IO_TIMEOUT_MS;
    size_t len = strlen(cmd), off = 0;
    while (off < len) {
        if (!wait_fd(fd, POLLOUT, deadline))
            return -1;
        ssize_t n = send(fd, cmd + off, len - off, MSG_NOSIGNAL);
        if (n <= 0 && errno != EAGAIN)
            return -1;
        off += n > 0 ? (size_t)n : 0;
    }
    size_t cap = 65536, have = 0;
    char *b = malloc(cap);
    for (;;) {
        size_t used;
        if (have && resp_read_value(b, have, out, &used) == RESP_OK) {
            *buf = b;
            return 0;
        }
        if (have == cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        if (!b || !wait_fd(fd, POLLIN, deadline))
            break;
        ssize_t n = recv(fd, b + have, cap - have, 0);
        if (n <= 0 && errno != EAGAIN)
            break;
        have += n > 0 ? (size_t)n : 0;
    }
    free(b);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Refresh                                                                   */

static bool same_topology(const struct cluster_topology *a, const struct cluster_topology *b)
{
    if (!a || !b || a->nnodes != b->nnodes || a->nmasters != b->nmasters)
        return false;
    for (size_t i = 0; i < a->nnodes; i++)
        if (strcmp(a->nodes[i].addr, b->nodes[i].addr) != 0 ||
            a->nodes[i].is_master != b->nodes[i].is_master)
            return false;
    return memcmp(a->slot_master, b->slot_master, sizeof a->slot_master) == 0;
}

static void topology_destroy(void *p)
{
    cluster_topology_free(p);
}

static void commands_destroy(void *p)
{
    command_table_free(p);
}

void control_init_slots(struct runtime *rt)
{
    rt->slots[SLOT_TOPOLOGY].destroy = topology_destroy;
    rt->slots[SLOT_COMMANDS].destroy = commands_destroy;
}

static void fetch_commands(struct control *ctl, int fd)
{
    struct resp_value v;
    char *buf = NULL;
    if (call(fd, "*1\r\n$7\r\nCOMMAND\r\n", &v, &buf) != 0)
        return;
    const char *err = NULL;
    struct command_table *t = command_table_from_reply(&v, &err);
    resp_value_free(&v);
    free(buf);
    if (!t) {
        log_warn("COMMAND reply not usable (%s); keeping the built-in table", err ? err : "?");
        ctl->have_commands = true;
        return;
    }
    snapshot_publish(&ctl->rt->snap, &ctl->rt->slots[SLOT_COMMANDS], t);
    ctl->have_commands = true;
    log_info("command table loaded from the backend: %zu commands", command_table_size(t));
}

/* Ask one node. Returns a new topology or NULL. */
static struct cluster_topology *ask_node(struct control *ctl, const char *host, int port)
{
    int fd = connect_timeout(host, port, ctl->rt->cfg->connect_timeout_ms);
    if (fd < 0)
        return NULL;
    struct resp_value v;
    char *buf = NULL;
    struct cluster_topology *t = NULL;
    if (call(fd, "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n", &v, &buf) == 0) {
        const char *err = NULL;
        if (v.type == RESP_T_ERROR)
            log_warn("CLUSTER SLOTS from %s:%d: %.*s", host, port, (int)v.len, v.str);
        else if (!(t = cluster_topology_from_slots(&v, host, &err)))
            log_warn("CLUSTER SLOTS from %s:%d unusable: %s", host, port, err);
        resp_value_free(&v);
        free(buf);
    }
    if (t && !ctl->have_commands)
        fetch_commands(ctl, fd);
    close(fd);
    return t;
}

/* Split a node address "ip:port" / "[ip]:port" into host and port. */
static bool split_addr(const char *addr, char *host, size_t hl, int *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return false;
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hl)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = atoi(colon + 1);
    return *port > 0;
}

static struct cluster_topology *discover(struct control *ctl)
{
    const struct cluster_topology *cur = snapshot_load(&ctl->rt->slots[SLOT_TOPOLOGY]);
    char host[CLUSTER_ADDR_MAX];
    int port;
    for (size_t i = 0; cur && i < cur->nnodes; i++) {
        if (!split_addr(cur->nodes[i].addr, host, sizeof host, &port))
            continue;
        struct cluster_topology *t = ask_node(ctl, host, port);
        if (t)
            return t;
    }
    const struct config *cfg = ctl->rt->cfg;
    for (size_t i = 0; i < cfg->nentry_points; i++) {
        struct cluster_topology *t =
            ask_node(ctl, cfg->entry_points[i].host, cfg->entry_points[i].port);
        if (t)
            return t;
    }
    return NULL;
}

static void refresh(struct control *ctl)
{
    struct runtime *rt = ctl->rt;
    ctl->refresh_wanted = false;
    ctl->last_refresh_ms = clock_ms();
    atomic_fetch_add(&rt->refreshes, 1);
    struct cluster_topology *t = discover(ctl);
    if (!t) {
        ctl->failures++;
        if (ctl->failures == 1 || ctl->failures % 20 == 0)
            log_warn("no entry point or known node answered CLUSTER SLOTS; retrying");
        return;
    }
    ctl->failures = 0;
    const struct cluster_topology *cur = snapshot_load(&rt->slots[SLOT_TOPOLOGY]);
    if (same_topology(cur, t)) {
        cluster_topology_free(t);
        return;
    }
    t->version = ++ctl->version;
    log_info("topology v%llu: %zu nodes, %zu masters, %u slots covered",
             (unsigned long long)t->version, t->nnodes, t->nmasters,
             cluster_topology_covered(t));
    snapshot_publish(&rt->snap, &rt->slots[SLOT_TOPOLOGY], t);
    atomic_store(&rt->topology_ready, true);
}

/* Milliseconds until the next refresh is due. */
static int next_wait(struct control *ctl, int64_t now)
{
    int64_t due;
    if (ctl->refresh_wanted) {
        due = ctl->last_refresh_ms + REFRESH_MIN_GAP_MS;
    } else if (ctl->failures) {
        unsigned f = ctl->failures < 5 ? ctl->failures : 5;
        due = ctl->last_refresh_ms + (100ll << f); /* 200 ms … 3.2 s */
    } else {
        due = ctl->next_periodic_ms;
    }
    int64_t wait = due - now;
    return wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
}

static void drain_queue(struct control *ctl)
{
    uint64_t v;
    ssize_t n = read(ctl->rt->ctl_wakeup_fd, &v, sizeof v);
    (void)n;
    struct ctl_msg m;
    while (mq_pop(&ctl->rt->ctl_queue, &m))
        ctl->refresh_wanted = true;
}

void *control_main(void *arg)
{
    struct control ctl = {.rt = arg};
    log_set_role("C");
    refresh(&ctl);
    ctl.next_periodic_ms = clock_ms() + REFRESH_PERIOD_MS;
    while (!atomic_load(&ctl.rt->stopping)) {
        int64_t now = clock_ms();
        struct pollfd pfd = {.fd = ctl.rt->ctl_wakeup_fd, .events = POLLIN};
        if (poll(&pfd, 1, next_wait(&ctl, now)) == 1)
            drain_queue(&ctl);
        clustermode_publish_pending(ctl.rt);
        now = clock_ms();
        bool periodic = now >= ctl.next_periodic_ms;
        bool retry = ctl.failures && next_wait(&ctl, now) == 0;
        bool wanted = ctl.refresh_wanted && now - ctl.last_refresh_ms >= REFRESH_MIN_GAP_MS;
        if (periodic || retry || wanted) {
            refresh(&ctl);
            ctl.next_periodic_ms = clock_ms() + REFRESH_PERIOD_MS;
        }
        snapshot_reclaim(&ctl.rt->snap);
    }
    return NULL;
}
