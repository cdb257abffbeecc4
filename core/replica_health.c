/*
 * replica_health.c — the control thread's replica health checks (see
 * route/replica.c for the whole design): INFO replication of every master
 * and replica each round, lag from the masters' offsets over time, and the
 * healthy replicas published as the masters' `readers` in the topology.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

#define LAG_SAMPLES 64          /* per master: 16 s of rounds at 250 ms */
#define ROUND_MAX_MS 250
#define ROUND_MIN_MS 10
#define INFO_REPLICATION "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n"

struct offset_sample {
    int64_t ms;
    long long offset;
};

/* One node the health checks talk to, found by address. */
struct probed {
    char addr[CLUSTER_ADDR_MAX];
    int fd;                   /* kept open between rounds; -1: none */
    bool listed;              /* in the topology at this round */
    bool healthy;             /* replica: may serve reads */
    char master[CLUSTER_ADDR_MAX]; /* replica: the master it was last
                                      checked against */
    /* master: master_repl_offset over time (a ring, newest at next - 1) */
    struct offset_sample samples[LAG_SAMPLES];
    unsigned nsamples, next;
};

struct replica_health {
    struct runtime *rt;
    struct probed *nodes;     /* owned */
    size_t n, cap;
    int64_t next_ms;          /* next round */
};

struct replica_health *replica_health_new(struct runtime *rt)
{
    struct replica_health *h = calloc(1, sizeof *h);
    if (!h)
        abort();
    h->rt = rt;
    return h;
}

static void forget_all(struct replica_health *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->nodes[i].fd >= 0)
            bconn_close(h->rt, h->nodes[i].fd);
    h->n = 0;
}

void replica_health_free(struct replica_health *h)
{
    if (!h)
        return;
    forget_all(h);
    free(h->nodes);
    free(h);
}

static struct probed *find_probed(const struct replica_health *h, const char *addr)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->nodes[i].addr, addr) == 0)
            return &h->nodes[i];
    return NULL;
}

/* The entry for addr, new if needed; marked as listed. */
static struct probed *probed_get(struct replica_health *h, const char *addr)
{
    struct probed *p = find_probed(h, addr);
    if (!p) {
        if (h->n == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 16;
            h->nodes = realloc(h->nodes, h->cap * sizeof *h->nodes);
            if (!h->nodes)
                abort();
        }
        p = &h->nodes[h->n++];
        memset(p, 0, sizeof *p);
        snprintf(p->addr, sizeof p->addr, "%s", addr);
        p->fd = -1;
    }
    p->listed = true;
    return p;
}

/* Drop the nodes the topology no longer names. */
static void forget_unlisted(struct replica_health *h)
{
    for (size_t i = 0; i < h->n;) {
        if (h->nodes[i].listed) {
            h->nodes[i++].listed = false;
            continue;
        }
        if (h->nodes[i].fd >= 0)
            bconn_close(h->rt, h->nodes[i].fd);
        h->nodes[i] = h->nodes[--h->n];
    }
}

/* p's INFO replication text (malloc'd, NUL-terminated), or NULL when it
 * did not answer by deadline (its connection is then closed). */
static char *ask_info(struct replica_health *h, struct probed *p, int64_t deadline)
{
    if (p->fd < 0 && (p->fd = control_dial(h->rt, p->addr, deadline)) < 0)
        return NULL;
    struct resp_value v;
    char *buf = NULL, *text = NULL;
    if (control_call(h->rt, p->fd, INFO_REPLICATION, &v, &buf, deadline) == 0) {
        if (v.type == RESP_T_BULK && !v.is_null && (text = malloc(v.len + 1))) {
            memcpy(text, v.str, v.len);
            text[v.len] = '\0';
        }
        resp_value_free(&v);
        free(buf);
    }
    if (!text) {
        bconn_close(h->rt, p->fd);
        p->fd = -1;
    }
    return text;
}

static void add_sample(struct probed *m, int64_t now, long long offset)
{
    const struct offset_sample *newest = &m->samples[(m->next + LAG_SAMPLES - 1) % LAG_SAMPLES];
    if (m->nsamples && offset < newest->offset)
        m->nsamples = 0; /* a new replication history: the old samples mean nothing */
    m->samples[m->next] = (struct offset_sample){.ms = now, .offset = offset};
    m->next = (m->next + 1) % LAG_SAMPLES;
    if (m->nsamples < LAG_SAMPLES)
        m->nsamples++;
}

/* How far behind master m a replica at offset r is, in ms (an upper
 * bound); INT64_MAX when the samples cannot tell. */
static int64_t lag_ms(const struct probed *m, long long r, int64_t now)
{
    for (unsigned i = 0; i < m->nsamples; i++) {
        const struct offset_sample *s = &m->samples[(m->next + LAG_SAMPLES - 1 - i) % LAG_SAMPLES];
        if (s->offset <= r)
            return i == 0 ? 0 : now - s->ms;
    }
    return INT64_MAX;
}

/* Is the replica whose INFO is `text` a read target for master m? */
static bool replica_ok(const struct replica_health *h, const char *text,
                       const struct cluster_node *m, int max_lag, int64_t now)
{
    char host[CLUSTER_ADDR_MAX], port[8], status[16], offset[24], addr[CLUSTER_ADDR_MAX + 8];
    size_t len = strlen(text);
    if (!cluster_info_field(text, len, "master_host", host, sizeof host) ||
        !cluster_info_field(text, len, "master_port", port, sizeof port) ||
        !cluster_info_field(text, len, "master_link_status", status, sizeof status) ||
        !cluster_info_field(text, len, "slave_repl_offset", offset, sizeof offset) ||
        strcmp(status, "up") != 0)
        return false;
    snprintf(addr, sizeof addr, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    const struct probed *mp = find_probed(h, m->addr);
    return strcmp(addr, m->addr) == 0 && mp && lag_ms(mp, atoll(offset), now) <= max_lag;
}

/* One round of probes over cur's masters (those with replicas) and
 * replicas; each call waits at most `timeout` ms. */
static void probe_round(struct replica_health *h, const struct cluster_topology *cur,
                        int timeout, int max_lag)
{
    char value[24];
    int64_t start = clock_ms();
    for (size_t i = cur->nmasters; i < cur->nnodes; i++) {
        struct probed *m = probed_get(h, cur->nodes[cur->nodes[i].master].addr);
        if (m->nsamples && m->samples[(m->next + LAG_SAMPLES - 1) % LAG_SAMPLES].ms >= start)
            continue; /* already sampled this round (another replica of it) */
        char *text = ask_info(h, m, clock_ms() + timeout);
        if (text && cluster_info_field(text, strlen(text), "master_repl_offset", value, sizeof value))
            add_sample(m, clock_ms(), atoll(value));
        free(text);
    }
    for (size_t i = cur->nmasters; i < cur->nnodes; i++) {
        const struct cluster_node *n = &cur->nodes[i];
        struct probed *p = probed_get(h, n->addr);
        char *text = ask_info(h, p, clock_ms() + timeout);
        bool ok = text && replica_ok(h, text, &cur->nodes[n->master], max_lag, clock_ms());
        if (ok != p->healthy)
            log_info("replica %s %s", p->addr, ok ? "serves reads" : text ?
                     "serves no reads: not in sync, or behind by more than the lag limit" :
                     "serves no reads: no answer to INFO");
        p->healthy = ok;
        snprintf(p->master, sizeof p->master, "%s", cur->nodes[n->master].addr);
        free(text);
    }
    forget_unlisted(h);
}

void replica_health_fill(const struct replica_health *h, struct cluster_topology *t)
{
    for (size_t i = 0; i < t->nmasters; i++)
        t->nodes[i].nreaders = 0;
    for (size_t i = t->nmasters; i < t->nnodes; i++) {
        struct cluster_node *m = &t->nodes[t->nodes[i].master];
        const struct probed *p = find_probed(h, t->nodes[i].addr);
        if (p && p->healthy && strcmp(p->master, m->addr) == 0 &&
            m->nreaders < CLUSTER_READERS_MAX)
            m->readers[m->nreaders++] = (uint16_t)i;
    }
}

static bool same_readers(const struct cluster_topology *a, const struct cluster_topology *b)
{
    for (size_t i = 0; i < a->nmasters; i++)
        if (a->nodes[i].nreaders != b->nodes[i].nreaders ||
            memcmp(a->nodes[i].readers, b->nodes[i].readers,
                   a->nodes[i].nreaders * sizeof a->nodes[i].readers[0]) != 0)
            return false;
    return true;
}

static bool any_readers(const struct cluster_topology *t)
{
    for (size_t i = 0; i < t->nmasters; i++)
        if (t->nodes[i].nreaders)
            return true;
    return false;
}

/* Is anyone able to read from replicas (the option, or a READONLY seen)? */
static bool wanted(struct runtime *rt, const struct config *cfg)
{
    return cfg->read_from_replicas != CONFIG_READ_MASTER || atomic_load(&rt->readonly_seen);
}

struct cluster_topology *replica_health_check(struct replica_health *h, int *wait_ms)
{
    struct runtime *rt = h->rt;
    const struct config *cfg = admin_config(rt);
    int round = cfg->replica_max_lag_ms / 4;
    round = round > ROUND_MAX_MS ? ROUND_MAX_MS : round < ROUND_MIN_MS ? ROUND_MIN_MS : round;
    int64_t now = clock_ms();
    if (now < h->next_ms) {
        *wait_ms = (int)(h->next_ms - now);
        return NULL;
    }
    *wait_ms = round;
    const struct cluster_topology *cur = snapshot_load(&rt->slots[SLOT_TOPOLOGY]);
    h->next_ms = now + round;
    if (!cur)
        return NULL;
    if (wanted(rt, cfg)) {
        probe_round(h, cur, round, cfg->replica_max_lag_ms);
    } else {
        forget_all(h); /* nothing published stays healthy unchecked */
        if (!any_readers(cur))
            return NULL;
    }
    struct cluster_topology *t = cluster_topology_dup(cur);
    if (!t)
        abort();
    replica_health_fill(h, t);
    if (same_readers(cur, t)) {
        cluster_topology_free(t);
        return NULL;
    }
    return t;
}
