/*
 * The control thread: the only writer of shared state.
 *
 *   wait (eventfd from workers, or the next refresh time)
 *     ├─ drain the queue: MOVED seen → refresh (asking the MOVED target
 *     │  first, at most once a second: workers follow MOVED meanwhile);
 *     │  link lost → the node goes in the down set, refresh at once
 *     ├─ refresh: CLUSTER NODES from VIEWS_WANTED nodes that answer (the
 *     │  MOVED target, known masters in rotation, replicas, entry points;
 *     │  a lost node only as a last resort), merged by config epoch
 *     │  (nodes.c); publish a new topology snapshot only if it differs
 *     ├─ down set: a lost node leaves it when it answers PING again or no
 *     │  longer serves slots; while it is not empty, refresh every
 *     │  FAST_REFRESH_MS (a failover shows up within one refresh)
 *     ├─ periodic check every REFRESH_PERIOD_MS even without errors
 *     ├─ facts: redis_version (INFO server) and cluster-node-timeout
 *     │  (CONFIG GET) from every node asked, and once from each master
 *     │  not asked yet; published in the topology (its lowest version, its
 *     │  node timeout) for INFO and the hold time
 *     ├─ once: COMMAND → the backend's command table (else the built-in one)
 *     └─ reclaim snapshots no worker can see any more
 *
 * It uses plain blocking sockets with timeouts: it talks to the backend a
 * few times a second at most, and never on the request path. A node that
 * accepts connections but never answers (SIGSTOP) costs it IO_TIMEOUT_MS
 * once; after a worker reports it lost it is only probed, with a short
 * timeout.
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

#define REFRESH_PERIOD_MS 3000    /* the periodic check */
#define REFRESH_MIN_GAP_MS 100    /* between refreshes for a lost link */
#define MOVED_REFRESH_GAP_MS 1000 /* between refreshes for MOVED */
#define FAST_REFRESH_MS 200       /* while a slot's master is unreachable */
#define SLOW_DOWN_AFTER_MS 30000  /* … for this long; then every second */
#define IO_TIMEOUT_MS 1500
#define PROBE_TIMEOUT_MS 300      /* PING of a lost node */
#define VIEWS_WANTED 2            /* CLUSTER NODES views merged per refresh */
#define DOWN_MAX 64
#define FACTS_RETRY_MS 10000      /* a master that did not tell its facts */

/* A node some worker lost (EOF, connect failure, backend timeout). */
struct down_node {
    char addr[CLUSTER_ADDR_MAX];
    int64_t since;
};

/* What one node said about itself, when the control thread last asked. */
struct node_facts {
    char addr[CLUSTER_ADDR_MAX];
    char version[CLUSTER_VERSION_MAX]; /* redis_version, "" unknown */
    int node_timeout_ms;               /* cluster-node-timeout, 0 unknown */
    int64_t asked_ms;
};

struct control {
    struct runtime *rt;
    uint64_t version;
    bool have_commands;
    bool refresh_wanted;
    bool urgent;            /* a link was lost: no MOVED gap */
    int64_t last_refresh_ms;
    int64_t next_periodic_ms;
    unsigned failures;      /* consecutive failed refreshes (backoff) */
    unsigned rotate;        /* which known master is asked first */
    char prefer[CLUSTER_ADDR_MAX]; /* ask this node first (a MOVED target) */
    size_t ndown;
    struct down_node down[DOWN_MAX];
    struct node_facts *facts;          /* owned; nodes of the last topology */
    size_t nfacts, facts_cap;
    struct replica_health *replicas; /* replica.c */
};

/* ------------------------------------------------------------------------ */
/* A tiny blocking RESP client                                               */

/* A connection to host:port within ms, TLS'ed when --tls (tlsglue.c's
 * bconn_*: close it with bconn_close); -1 if none. */
static int connect_timeout(struct runtime *rt, const char *host, int port, int ms)
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
    if (fd >= 0 && bconn_start(rt, fd, host, port, clock_ms() + ms) < 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/*
 * Send one command and read its reply into *out. *buf owns the bytes the
 * value points into (free it after resp_value_free). Returns 0 or -1.
 */
static int call_until(struct runtime *rt, int fd, const char *cmd, struct resp_value *out,
                      char **buf, int64_t deadline)
{
    if (bconn_send(rt, fd, cmd, strlen(cmd), deadline) < 0)
        return -1;
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
        if (!b)
            break;
        ssize_t n = bconn_recv(rt, fd, b + have, cap - have, deadline);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    free(b);
    return -1;
}

static int call(struct runtime *rt, int fd, const char *cmd, struct resp_value *out, char **buf)
{
    return call_until(rt, fd, cmd, out, buf, clock_ms() + IO_TIMEOUT_MS);
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
    return a->node_timeout_ms == b->node_timeout_ms &&
           strcmp(a->redis_version, b->redis_version) == 0 &&
           memcmp(a->slot_master, b->slot_master, sizeof a->slot_master) == 0;
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
    if (call(ctl->rt, fd, "*1\r\n$7\r\nCOMMAND\r\n", &v, &buf) != 0)
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

/* --auth: the control thread's connections authenticate as the links do. */
static bool authenticate_until(struct runtime *rt, int fd, const char *host, int port,
                               int64_t deadline)
{
    size_t len;
    const char *auth = admin_backend_auth(rt, &len);
    if (!auth)
        return true;
    struct resp_value v;
    char *buf = NULL;
    if (call_until(rt, fd, auth, &v, &buf, deadline) != 0)
        return false;
    bool ok = v.type != RESP_T_ERROR;
    if (!ok)
        log_warn("AUTH refused by %s:%d: %.*s", host, port, (int)v.len, v.str);
    resp_value_free(&v);
    free(buf);
    return ok;
}

static bool authenticate(struct control *ctl, int fd, const char *host, int port)
{
    return authenticate_until(ctl->rt, fd, host, port, clock_ms() + IO_TIMEOUT_MS);
}

/* A connection to host:port, authenticated as the links are; -1 if not. */
static int open_node(struct control *ctl, const char *host, int port)
{
    int fd = connect_timeout(ctl->rt, host, port, admin_config(ctl->rt)->connect_timeout_ms);
    if (fd >= 0 && !authenticate(ctl, fd, host, port)) {
        bconn_close(ctl->rt, fd);
        fd = -1;
    }
    return fd;
}

static void learn_facts(struct control *ctl, int fd, const char *addr);

/* Ask the node at addr for its CLUSTER NODES view (and its facts, on the
 * same connection). Returns it or NULL. */
static struct nodes_view *ask_node(struct control *ctl, const char *addr, const char *host,
                                   int port)
{
    int fd = open_node(ctl, host, port);
    if (fd < 0)
        return NULL;
    struct resp_value v;
    char *buf = NULL;
    struct nodes_view *view = NULL;
    if (call(ctl->rt, fd, "*2\r\n$7\r\nCLUSTER\r\n$5\r\nNODES\r\n", &v, &buf) == 0) {
        const char *err = NULL;
        if (v.type == RESP_T_ERROR)
            log_warn("CLUSTER NODES from %s:%d: %.*s", host, port, (int)v.len, v.str);
        else if (v.type != RESP_T_BULK || v.is_null)
            log_warn("CLUSTER NODES from %s:%d: not a bulk string", host, port);
        else if (!(view = nodes_view_parse(v.str, v.len, host, &err)))
            log_warn("CLUSTER NODES from %s:%d unusable: %s", host, port, err);
        resp_value_free(&v);
        free(buf);
    }
    if (view && !ctl->have_commands)
        fetch_commands(ctl, fd);
    if (view)
        learn_facts(ctl, fd, addr);
    bconn_close(ctl->rt, fd);
    return view;
}

int control_dial(struct runtime *rt, const char *addr, int64_t deadline)
{
    char host[CLUSTER_ADDR_MAX];
    int port;
    int64_t left = deadline - clock_ms();
    if (left <= 0 || !cluster_addr_split(addr, host, sizeof host, &port))
        return -1;
    int fd = connect_timeout(rt, host, port, (int)left);
    if (fd >= 0 && !authenticate_until(rt, fd, host, port, deadline)) {
        bconn_close(rt, fd);
        fd = -1;
    }
    return fd;
}

int control_call(struct runtime *rt, int fd, const char *cmd, struct resp_value *out, char **buf,
                 int64_t deadline)
{
    return call_until(rt, fd, cmd, out, buf, deadline);
}

/* ------------------------------------------------------------------------ */
/* Nodes the workers lost                                                    */

static bool is_down(const struct control *ctl, const char *addr)
{
    for (size_t i = 0; i < ctl->ndown; i++)
        if (strcmp(ctl->down[i].addr, addr) == 0)
            return true;
    return false;
}

static void mark_down(struct control *ctl, const char *addr)
{
    if (!addr[0] || is_down(ctl, addr) || ctl->ndown == DOWN_MAX)
        return;
    struct down_node *d = &ctl->down[ctl->ndown++];
    snprintf(d->addr, sizeof d->addr, "%s", addr);
    d->since = clock_ms();
    log_warn("node %s is unreachable: refreshing the topology every %d ms until its "
             "slots have a master that answers", addr, FAST_REFRESH_MS);
}

/* Does addr answer PING (any reply) within PROBE_TIMEOUT_MS? */
static bool probe(struct runtime *rt, const char *addr)
{
    char host[CLUSTER_ADDR_MAX];
    int port;
    if (!cluster_addr_split(addr, host, sizeof host, &port))
        return false;
    int64_t deadline = clock_ms() + PROBE_TIMEOUT_MS;
    int fd = connect_timeout(rt, host, port, PROBE_TIMEOUT_MS);
    if (fd < 0)
        return false;
    struct resp_value v;
    char *buf = NULL;
    bool ok = call_until(rt, fd, "*1\r\n$4\r\nPING\r\n", &v, &buf, deadline) == 0;
    if (ok) {
        resp_value_free(&v);
        free(buf);
    }
    bconn_close(rt, fd);
    return ok;
}

/* Forget the lost nodes that answer again or no longer serve slots (their
 * slots moved to a new master, which the workers will try). */
static void check_down(struct control *ctl)
{
    const struct cluster_topology *t = snapshot_load(&ctl->rt->slots[SLOT_TOPOLOGY]);
    for (size_t i = 0; i < ctl->ndown;) {
        const char *addr = ctl->down[i].addr;
        unsigned node = t ? cluster_topology_find(t, addr) : CLUSTER_NO_NODE;
        bool serves = node != CLUSTER_NO_NODE && t->nodes[node].is_master;
        if (serves && !probe(ctl->rt, addr)) {
            i++;
            continue;
        }
        log_info("node %s %s after %lld ms", addr, serves ? "answers again" :
                 "no longer serves slots", (long long)(clock_ms() - ctl->down[i].since));
        ctl->down[i] = ctl->down[--ctl->ndown];
    }
}

/* ------------------------------------------------------------------------ */
/* What the nodes say about themselves                                       */

static struct node_facts *find_facts(struct control *ctl, const char *addr)
{
    for (size_t i = 0; i < ctl->nfacts; i++)
        if (strcmp(ctl->facts[i].addr, addr) == 0)
            return &ctl->facts[i];
    return NULL;
}

static struct node_facts *add_facts(struct control *ctl, const char *addr)
{
    struct node_facts *f = find_facts(ctl, addr);
    if (f)
        return f;
    if (ctl->nfacts == ctl->facts_cap) {
        ctl->facts_cap = ctl->facts_cap ? ctl->facts_cap * 2 : 16;
        ctl->facts = realloc(ctl->facts, ctl->facts_cap * sizeof *ctl->facts);
        if (!ctl->facts)
            abort();
    }
    f = &ctl->facts[ctl->nfacts++];
    *f = (struct node_facts){0};
    snprintf(f->addr, sizeof f->addr, "%s", addr);
    return f;
}

/* CONFIG GET's [name, value] as a number; 0 if refused (CONFIG renamed or
 * not allowed to this user) or malformed. */
static int config_number(const struct resp_value *v)
{
    if (v->type != RESP_T_ARRAY || v->count != 2 || v->elems[1].type != RESP_T_BULK)
        return 0;
    char num[16];
    snprintf(num, sizeof num, "%.*s", (int)(v->elems[1].len < 15 ? v->elems[1].len : 15),
             v->elems[1].str);
    long long n = strtoll(num, NULL, 10);
    return n > 0 && n < 86400000 ? (int)n : 0; /* ms: a day at most */
}

/* INFO server and CONFIG GET cluster-node-timeout on fd, a connection to
 * addr: two short round trips. */
static void learn_facts(struct control *ctl, int fd, const char *addr)
{
    struct node_facts *f = add_facts(ctl, addr);
    int64_t deadline = clock_ms() + IO_TIMEOUT_MS;
    struct resp_value v;
    char *buf = NULL;
    f->asked_ms = clock_ms();
    if (call_until(ctl->rt, fd, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n", &v, &buf, deadline) != 0)
        return;
    if (v.type == RESP_T_BULK || v.type == RESP_T_VERBATIM)
        cluster_info_field(v.str, v.len, "redis_version", f->version, sizeof f->version);
    /* it goes into our INFO text: "7.2.4", "7.4.0-rc1" */
    f->version[strspn(f->version, "0123456789.-abcdefghijklmnopqrstuvwxyz")] = '\0';
    resp_value_free(&v);
    free(buf);
    if (call_until(ctl->rt, fd, "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$20\r\ncluster-node-timeout\r\n",
                   &v, &buf, deadline) != 0)
        return;
    f->node_timeout_ms = config_number(&v);
    resp_value_free(&v);
    free(buf);
}

/* Masters of t whose version is not known: ask them (each at most every
 * FACTS_RETRY_MS, never one a worker lost). */
static void ask_missing_facts(struct control *ctl, const struct cluster_topology *t)
{
    int64_t now = clock_ms();
    for (size_t i = 0; i < t->nmasters; i++) {
        const struct cluster_node *n = &t->nodes[i];
        const struct node_facts *f = find_facts(ctl, n->addr);
        if ((f && (f->version[0] || now - f->asked_ms < FACTS_RETRY_MS)) || is_down(ctl, n->addr))
            continue;
        int fd = open_node(ctl, n->host, n->port);
        if (fd < 0) {
            add_facts(ctl, n->addr)->asked_ms = now;
            continue;
        }
        learn_facts(ctl, fd, n->addr);
        bconn_close(ctl->rt, fd);
    }
}

/* Forget the facts of nodes that are not in t (the list stays bounded). */
static void prune_facts(struct control *ctl, const struct cluster_topology *t)
{
    for (size_t i = 0; i < ctl->nfacts;) {
        if (cluster_topology_find(t, ctl->facts[i].addr) == CLUSTER_NO_NODE)
            ctl->facts[i] = ctl->facts[--ctl->nfacts];
        else
            i++;
    }
}

/* Into t: the largest cluster-node-timeout of its nodes, and the lowest
 * redis_version of its masters (clients gate features on it). */
static void apply_facts(struct control *ctl, struct cluster_topology *t)
{
    ask_missing_facts(ctl, t);
    prune_facts(ctl, t);
    for (size_t i = 0; i < t->nnodes; i++) {
        const struct node_facts *f = find_facts(ctl, t->nodes[i].addr);
        if (!f)
            continue;
        if (f->node_timeout_ms > t->node_timeout_ms)
            t->node_timeout_ms = f->node_timeout_ms;
        if (i < t->nmasters && f->version[0] &&
            (!t->redis_version[0] || cluster_version_cmp(f->version, t->redis_version) < 0))
            snprintf(t->redis_version, sizeof t->redis_version, "%s", f->version);
    }
}

/* ------------------------------------------------------------------------ */
/* Whom to ask                                                               */

struct candidates {
    char (*addr)[CLUSTER_ADDR_MAX];
    size_t n, cap;
};

static void add_candidate(struct candidates *c, const char *addr)
{
    if (!addr[0] || c->n == c->cap)
        return;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->addr[i], addr) == 0)
            return;
    snprintf(c->addr[c->n++], CLUSTER_ADDR_MAX, "%s", addr);
}

/* In order: the MOVED target, known masters (starting at a rotating one,
 * so no node answers every refresh), replicas, entry points; nodes in the
 * down set are left out here (see discover). */
static void list_candidates(struct control *ctl, struct candidates *c)
{
    const struct cluster_topology *t = snapshot_load(&ctl->rt->slots[SLOT_TOPOLOGY]);
    const struct config *cfg = ctl->rt->cfg;
    size_t nn = t ? t->nnodes : 0;
    c->cap = nn + cfg->nentry_points + 1;
    c->addr = calloc(c->cap, sizeof *c->addr);
    if (!c->addr)
        abort();
    if (!is_down(ctl, ctl->prefer))
        add_candidate(c, ctl->prefer);
    for (size_t i = 0; t && i < t->nmasters; i++) {
        const char *a = t->nodes[(i + ctl->rotate) % t->nmasters].addr;
        if (!is_down(ctl, a))
            add_candidate(c, a);
    }
    for (size_t i = t ? t->nmasters : 0; i < nn; i++)
        if (!is_down(ctl, t->nodes[i].addr))
            add_candidate(c, t->nodes[i].addr);
    for (size_t i = 0; i < cfg->nentry_points; i++) {
        const struct entry_point *e = &cfg->entry_points[i];
        char a[CLUSTER_ADDR_MAX];
        snprintf(a, sizeof a, strchr(e->host, ':') ? "[%s]:%d" : "%s:%d", e->host, e->port);
        if (!is_down(ctl, a))
            add_candidate(c, a);
    }
}

static size_t gather_views(struct control *ctl, const struct candidates *c,
                           struct nodes_view **views, size_t n)
{
    char host[CLUSTER_ADDR_MAX];
    int port;
    for (size_t i = 0; i < c->n && n < VIEWS_WANTED; i++) {
        if (!cluster_addr_split(c->addr[i], host, sizeof host, &port))
            continue;
        struct nodes_view *v = ask_node(ctl, c->addr[i], host, port);
        if (v)
            views[n++] = v;
    }
    return n;
}

/* Views from up to VIEWS_WANTED nodes, merged; nodes some worker lost are
 * asked only when no other node answered. NULL if none answered. */
static struct cluster_topology *discover(struct control *ctl)
{
    struct candidates c = {0};
    struct nodes_view *views[VIEWS_WANTED];
    list_candidates(ctl, &c);
    size_t n = gather_views(ctl, &c, views, 0);
    if (n == 0) {
        struct candidates lost = {.addr = c.addr, .cap = c.cap};
        for (size_t i = 0; i < ctl->ndown; i++)
            add_candidate(&lost, ctl->down[i].addr);
        n = gather_views(ctl, &lost, views, 0);
    }
    free(c.addr);
    ctl->prefer[0] = '\0';
    ctl->rotate++;
    if (n == 0)
        return NULL;
    const char *err = NULL;
    struct cluster_topology *t = nodes_merge(views, n, &err);
    if (!t)
        log_warn("CLUSTER NODES views could not be merged: %s", err);
    for (size_t i = 0; i < n; i++)
        nodes_view_free(views[i]);
    return t;
}

static void refresh(struct control *ctl)
{
    struct runtime *rt = ctl->rt;
    ctl->refresh_wanted = false;
    ctl->urgent = false;
    ctl->last_refresh_ms = clock_ms();
    atomic_fetch_add(&rt->refreshes, 1);
    struct cluster_topology *t = discover(ctl);
    if (!t) {
        ctl->failures++;
        if (ctl->failures == 1 || ctl->failures % 20 == 0)
            log_warn("no entry point or known node answered CLUSTER NODES; retrying");
        check_down(ctl);
        return;
    }
    ctl->failures = 0;
    apply_facts(ctl, t);
    const struct cluster_topology *cur = snapshot_load(&rt->slots[SLOT_TOPOLOGY]);
    if (same_topology(cur, t)) {
        cluster_topology_free(t);
        check_down(ctl);
        return;
    }
    replica_health_fill(ctl->replicas, t);
    t->version = ++ctl->version;
    log_info("topology v%llu: %zu nodes, %zu masters, %u slots covered; "
             "redis_version %s, cluster-node-timeout %d ms",
             (unsigned long long)t->version, t->nnodes, t->nmasters,
             cluster_topology_covered(t), t->redis_version[0] ? t->redis_version : "?",
             t->node_timeout_ms);
    snapshot_publish(&rt->snap, &rt->slots[SLOT_TOPOLOGY], t);
    atomic_store(&rt->topology_ready, true);
    check_down(ctl);
}

/* A failover takes a few seconds: refresh fast for that long; a master
 * that stays away (no replica) is checked once a second after that. */
static int64_t down_period(const struct control *ctl, int64_t now)
{
    for (size_t i = 0; i < ctl->ndown; i++)
        if (now - ctl->down[i].since < SLOW_DOWN_AFTER_MS)
            return FAST_REFRESH_MS;
    return 1000;
}

/* Milliseconds until the next refresh is due. */
static int next_wait(struct control *ctl, int64_t now)
{
    int64_t due;
    if (ctl->refresh_wanted) {
        bool lost = ctl->urgent || ctl->ndown;
        due = ctl->last_refresh_ms + (lost ? REFRESH_MIN_GAP_MS : MOVED_REFRESH_GAP_MS);
    } else if (ctl->failures) {
        unsigned f = ctl->failures < 5 ? ctl->failures : 5;
        due = ctl->last_refresh_ms + (100ll << f); /* 200 ms … 3.2 s */
    } else if (ctl->ndown) {
        due = ctl->last_refresh_ms + down_period(ctl, now);
    } else {
        due = ctl->next_periodic_ms;
    }
    if (due > ctl->next_periodic_ms)
        due = ctl->next_periodic_ms;
    int64_t wait = due - now;
    return wait < 0 ? 0 : wait > 1000 ? 1000 : (int)wait;
}

static void drain_queue(struct control *ctl)
{
    uint64_t v;
    ssize_t n = read(ctl->rt->ctl_wakeup_fd, &v, sizeof v);
    (void)n;
    struct ctl_msg m;
    while (mq_pop(&ctl->rt->ctl_queue, &m)) {
        m.addr[sizeof m.addr - 1] = '\0';
        ctl->refresh_wanted = true;
        if (m.type == CTL_MSG_LINK_LOST) {
            mark_down(ctl, m.addr);
            ctl->urgent = true;
        } else if (m.addr[0]) {
            snprintf(ctl->prefer, sizeof ctl->prefer, "%s", m.addr);
        }
    }
}

/* Replica health round if due (replica.c): a topology whose healthy
 * replicas changed is published at once. Returns ms until the next one. */
static int check_replicas(struct control *ctl)
{
    int wait;
    struct cluster_topology *t = replica_health_check(ctl->replicas, &wait);
    if (t) {
        t->version = ++ctl->version;
        snapshot_publish(&ctl->rt->snap, &ctl->rt->slots[SLOT_TOPOLOGY], t);
    }
    return wait;
}

void *control_main(void *arg)
{
    struct control ctl = {.rt = arg};
    log_set_role("C");
    ctl.replicas = replica_health_new(ctl.rt);
    refresh(&ctl);
    ctl.next_periodic_ms = clock_ms() + REFRESH_PERIOD_MS;
    while (!atomic_load(&ctl.rt->stopping)) {
        int replica_wait = check_replicas(&ctl);
        int64_t now = clock_ms();
        int wait = next_wait(&ctl, now);
        struct pollfd pfd = {.fd = ctl.rt->ctl_wakeup_fd, .events = POLLIN};
        if (poll(&pfd, 1, wait < replica_wait ? wait : replica_wait) == 1)
            drain_queue(&ctl);
        clustermode_publish_pending(ctl.rt);
        admin_publish_pending(ctl.rt);
        now = clock_ms();
        if (next_wait(&ctl, now) == 0) {
            refresh(&ctl);
            ctl.next_periodic_ms = clock_ms() + REFRESH_PERIOD_MS;
        }
        snapshot_reclaim(&ctl.rt->snap);
    }
    free(ctl.facts);
    replica_health_free(ctl.replicas);
    return NULL;
}
