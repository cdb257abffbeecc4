/*
 * Metrics (metrics.h): per-worker counters, and their rendering as
 * Prometheus text and as INFO text.
 *
 *   worker i (only writer)          console (main thread, a reader)
 *   ─────────────────────           ───────────────────────────────
 *   cmds[] by name (open hash)  ──► summed by name over the workers
 *   latency buckets             ──► cumulative histogram
 *   nodes[] link states (tick)  ──► summed by node and state
 *   slots_unreachable (tick)    ──► slots covered minus the largest
 *
 * "Reachable" is what the workers saw: a master counts as unreachable when
 * a worker has a shared link to it that is not up and has failed since it
 * was last up. A worker that never talked to a node assumes it is fine.
 * The largest count over the workers is taken, so a master that one worker
 * cannot reach shows. It comes back once a link to it is up again, or once
 * the topology names another master for its slots (a failover).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define CMD_UNKNOWN METRICS_CMDS
#define CMD_OTHER (METRICS_CMDS + 1)

/* Latency bucket upper bounds, microseconds; the last bucket is +Inf. */
static const int64_t lat_bounds_us[METRICS_LAT_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
    250000, 500000, 1000000, 2500000,
};

/* One writer: a plain add, no locked instruction. */
static inline void bump(_Atomic uint64_t *v, uint64_t n)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t get(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

void metrics_init(struct worker_metrics *m)
{
    memset(m, 0, sizeof *m);
    strcpy(m->cmds[CMD_UNKNOWN].name, "unknown");
    strcpy(m->cmds[CMD_OTHER].name, "other");
    atomic_store(&m->cmds[CMD_UNKNOWN].used, true);
    atomic_store(&m->cmds[CMD_OTHER].used, true);
}

/* ------------------------------------------------------------------------ */
/* Commands                                                                  */

/* The entry for a command name, added on first sight while the table is
 * less than 3/4 full. Per command dispatched: the name's length and hash
 * come from one pass over it, and a probe compares len + 1 bytes. */
static unsigned cmd_index(struct worker_metrics *m, const char *name)
{
    if (!name)
        return CMD_UNKNOWN;
    uint32_t h = 2166136261u; /* hash(name), and its length with it */
    size_t len = 0;
    for (; name[len]; len++) {
        if (len + 1 >= METRICS_CMD_NAME)
            return CMD_OTHER;
        h = (h ^ (unsigned char)name[len]) * 16777619u;
    }
    for (unsigned i = 0; i < METRICS_CMDS; i++) {
        unsigned idx = (h + i) & (METRICS_CMDS - 1);
        struct metrics_cmd *e = &m->cmds[idx];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            if (m->ncmds >= METRICS_CMDS / 4 * 3)
                return CMD_OTHER;
            strcpy(e->name, name);
            atomic_store_explicit(&e->used, true, memory_order_release);
            m->ncmds++;
            return idx;
        }
        if (memcmp(e->name, name, len + 1) == 0) /* both NUL-terminated */
            return idx;
    }
    return CMD_OTHER;
}

void metrics_command(struct worker *w, const char *name)
{
    struct worker_metrics *m = w->metrics;
    unsigned idx = cmd_index(m, name);
    m->cur = (uint16_t)(idx + 1);
    bump(&m->cmds[idx].calls, 1);
}

void metrics_command_undo(struct worker *w)
{
    struct worker_metrics *m = w->metrics;
    if (m->cur)
        bump(&m->cmds[m->cur - 1].calls, (uint64_t)-1);
}

void metrics_dispatch_end(struct worker *w)
{
    w->metrics->cur = 0;
}

void metrics_request(struct worker *w, struct request *r)
{
    r->metric = w->metrics->cur;
    r->t0_us = w->now_us;
}

void metrics_reply(struct worker *w, const struct request *r, const char *data)
{
    struct worker_metrics *m = w->metrics;
    if (!r->metric)
        return; /* not a client command (a push, an internal request) */
    if (data[0] == '-' || data[0] == '!')
        bump(&m->cmds[r->metric - 1].errors, 1);
    int64_t us = w->now_us - r->t0_us;
    size_t b = 0;
    while (b < METRICS_LAT_BUCKETS - 1 && us > lat_bounds_us[b])
        b++;
    bump(&m->latency[b], 1);
    bump(&m->latency_sum_us, us > 0 ? (uint64_t)us : 0);
}

/* ------------------------------------------------------------------------ */
/* Links and reachability (every tick)                                       */

static int node_index(struct worker_metrics *m, const char *addr)
{
    for (unsigned i = 0, h = hash(addr); i < METRICS_NODES; i++) {
        unsigned idx = (h + i) & (METRICS_NODES - 1);
        struct metrics_node *e = &m->nodes[idx];
        if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
            snprintf(e->addr, sizeof e->addr, "%s", addr);
            atomic_store_explicit(&e->used, true, memory_order_release);
            return (int)idx;
        }
        if (strcmp(e->addr, addr) == 0)
            return (int)idx;
    }
    return -1; /* more nodes than labels: not shown */
}

static void count_links(struct worker *w)
{
    struct worker_metrics *m = w->metrics;
    uint32_t counts[METRICS_NODES][METRICS_LINK_STATES];
    memset(counts, 0, sizeof counts);
    for (struct link *l = w->links; l; l = l->next) {
        int idx = node_index(m, l->addr);
        if (idx >= 0 && (unsigned)l->state < METRICS_LINK_STATES)
            counts[idx][l->state]++;
    }
    for (int i = 0; i < METRICS_NODES; i++)
        for (int s = 0; s < METRICS_LINK_STATES; s++)
            atomic_store_explicit(&m->nodes[i].links[s], counts[i][s],
                                  memory_order_relaxed);
}

/* Slots whose master this worker saw fail and not come back. */
static uint32_t unreachable_slots(struct worker *w, const struct cluster_topology *t)
{
    uint8_t *state = calloc(t->nnodes ? t->nnodes : 1, 1); /* 1 down, 2 up */
    if (!state)
        return 0;
    for (struct link *l = w->links; l; l = l->next) {
        if (l->kind != LINK_SHARED || l->reader) /* reads only: not the master's health */
            continue;
        unsigned n = cluster_topology_find(t, l->addr);
        if (n == CLUSTER_NO_NODE)
            continue;
        if (l->state == LINK_READY)
            state[n] = 2;
        else if (l->failures > 0 && state[n] == 0)
            state[n] = 1;
    }
    uint32_t down = 0;
    for (size_t s = 0; s < CLUSTER_SLOTS; s++) {
        unsigned n = t->slot_master[s];
        down += n != CLUSTER_NO_NODE && state[n] == 1;
    }
    free(state);
    return down;
}

void metrics_tick(struct worker *w)
{
    count_links(w);
    uint32_t down = w->topo ? unreachable_slots(w, w->topo) : 0;
    atomic_store_explicit(&w->metrics->slots_unreachable, down, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Text output                                                               */

struct out {
    char *data;
    size_t len, cap;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = o->cap - o->len;
        int n = vsnprintf(o->data ? o->data + o->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap ? o->cap * 2 : 8192;
        while (cap - o->len <= (size_t)n)
            cap *= 2;
        char *d = realloc(o->data, cap);
        if (!d)
            abort();
        o->data = d;
        o->cap = cap;
    }
}

/* A label value as the exposition format wants it (\\, \", \n escaped). */
static void out_label(struct out *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            outf(o, "\\%c", *s);
        else if (*s == '\n')
            outf(o, "\\n");
        else
            outf(o, "%c", *s);
    }
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(struct out *o, const char *name, const char *type,
                   const char *help, unsigned long long v)
{
    head(o, name, type, help);
    outf(o, "%s %llu\n", name, v);
}

void stats_sum(const struct runtime *rt, struct stats_totals *t)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < rt->nworkers; i++) {
        const struct worker_stats *s = &rt->stats[i];
        t->commands += get(&s->commands);
        t->errors += get(&s->errors);
        t->moved += get(&s->moved);
        t->ask += get(&s->ask);
        t->clients += get(&s->clients);
        t->clients_total += get(&s->clients_total);
        t->bytes_in += get(&s->bytes_in);
        t->bytes_out += get(&s->bytes_out);
        t->held += get(&s->held);
        t->retried += get(&s->retried);
        t->backend_timeouts += get(&s->backend_timeouts);
        t->rejected_clients += get(&s->rejected_clients);
        t->output_limit_kills += get(&s->output_limit_kills);
        t->ops_per_sec += get(&s->ops_per_sec);
        t->replica_reads += get(&s->replica_reads);
        t->replica_fallbacks += get(&s->replica_fallbacks);
    }
    t->refreshes = get(&rt->refreshes);
}

/* The counters CONFIG RESETSTAT starts again (Redis's resetServerStats);
 * the gauges (clients, ops_per_sec) are not counters. */
static const size_t resettable[] = {
    offsetof(struct stats_totals, commands), offsetof(struct stats_totals, errors),
    offsetof(struct stats_totals, moved), offsetof(struct stats_totals, ask),
    offsetof(struct stats_totals, clients_total), offsetof(struct stats_totals, bytes_in),
    offsetof(struct stats_totals, bytes_out), offsetof(struct stats_totals, held),
    offsetof(struct stats_totals, retried), offsetof(struct stats_totals, backend_timeouts),
    offsetof(struct stats_totals, rejected_clients),
    offsetof(struct stats_totals, output_limit_kills), offsetof(struct stats_totals, refreshes),
    offsetof(struct stats_totals, replica_reads),
    offsetof(struct stats_totals, replica_fallbacks),
};
_Static_assert(sizeof resettable / sizeof resettable[0] <= STATS_BASE_MAX,
               "runtime.stats_base holds every resettable counter");

static uint64_t *stats_field(struct stats_totals *t, size_t off)
{
    return (uint64_t *)((char *)t + off);
}

/* The workers keep counting (one writer each): a reset only records where
 * INFO's counters start from. Two resets at once leave either's base. */
void stats_reset(struct runtime *rt)
{
    struct stats_totals t;
    stats_sum(rt, &t);
    for (size_t i = 0; i < sizeof resettable / sizeof resettable[0]; i++)
        atomic_store_explicit(&rt->stats_base[i], *stats_field(&t, resettable[i]),
                              memory_order_relaxed);
}

void stats_since_reset(const struct runtime *rt, struct stats_totals *t)
{
    stats_sum(rt, t);
    for (size_t i = 0; i < sizeof resettable / sizeof resettable[0]; i++) {
        uint64_t base = get(&rt->stats_base[i]), *v = stats_field(t, resettable[i]);
        *v = *v > base ? *v - base : 0;
    }
}

long long process_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long pages = 0, rss = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* Slots covered by a reachable master: the topology's, less what the most
 * pessimistic worker cannot reach. */
unsigned metrics_slots_reachable(const struct runtime *rt, const struct cluster_topology *t)
{
    if (!t)
        return 0;
    unsigned covered = cluster_topology_covered(t), down = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        unsigned d = atomic_load_explicit(&rt->metrics[i].slots_unreachable,
                                          memory_order_relaxed);
        down = d > down ? d : down;
    }
    return down < covered ? covered - down : 0;
}

/* (name, calls, errors) gathered over the workers, then merged by name. */
struct cmd_row {
    const char *name;
    uint64_t calls, errors;
};

static int cmp_row(const void *a, const void *b)
{
    return strcmp(((const struct cmd_row *)a)->name, ((const struct cmd_row *)b)->name);
}

static size_t gather_commands(struct runtime *rt, struct cmd_row *rows)
{
    size_t n = 0;
    for (int i = 0; i < rt->nworkers; i++)
        for (size_t j = 0; j < METRICS_CMDS + 2; j++) {
            struct metrics_cmd *e = &rt->metrics[i].cmds[j];
            if (!atomic_load_explicit(&e->used, memory_order_acquire))
                continue;
            rows[n++] = (struct cmd_row){e->name, get(&e->calls), get(&e->errors)};
        }
    qsort(rows, n, sizeof *rows, cmp_row);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out && strcmp(rows[out - 1].name, rows[i].name) == 0) {
            rows[out - 1].calls += rows[i].calls;
            rows[out - 1].errors += rows[i].errors;
        } else {
            rows[out++] = rows[i];
        }
    }
    return out;
}

static void render_commands(struct out *o, struct runtime *rt)
{
    struct cmd_row *rows = calloc((size_t)rt->nworkers * (METRICS_CMDS + 2), sizeof *rows);
    if (!rows)
        return;
    size_t n = gather_commands(rt, rows);
    head(o, "ringslot_commands_total", "counter", "Commands received, by command.");
    for (size_t i = 0; i < n; i++)
        if (rows[i].calls) {
            outf(o, "ringslot_commands_total{command=\"");
            out_label(o, rows[i].name);
            outf(o, "\"} %" PRIu64 "\n", rows[i].calls);
        }
    head(o, "ringslot_command_errors_total", "counter",
         "Error replies sent to clients, by command.");
    for (size_t i = 0; i < n; i++)
        if (rows[i].calls) {
            outf(o, "ringslot_command_errors_total{command=\"");
            out_label(o, rows[i].name);
            outf(o, "\"} %" PRIu64 "\n", rows[i].errors);
        }
    free(rows);
}

static void render_latency(struct out *o, struct runtime *rt)
{
    uint64_t buckets[METRICS_LAT_BUCKETS] = {0}, sum_us = 0, count = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        for (int b = 0; b < METRICS_LAT_BUCKETS; b++)
            buckets[b] += get(&rt->metrics[i].latency[b]);
        sum_us += get(&rt->metrics[i].latency_sum_us);
    }
    head(o, "ringslot_command_duration_seconds", "histogram",
         "Time from a command's arrival to its reply being queued to the client.");
    for (int b = 0; b < METRICS_LAT_BUCKETS; b++) {
        count += buckets[b];
        if (b < METRICS_LAT_BUCKETS - 1)
            outf(o, "ringslot_command_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                 (double)lat_bounds_us[b] / 1e6, count);
        else
            outf(o, "ringslot_command_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                 count);
    }
    outf(o, "ringslot_command_duration_seconds_sum %.6f\n", (double)sum_us / 1e6);
    outf(o, "ringslot_command_duration_seconds_count %" PRIu64 "\n", count);
}

static const char *const link_state_names[METRICS_LINK_STATES] = {
    [LINK_IDLE] = "idle", [LINK_CONNECTING] = "connecting",
    [LINK_READY] = "ready", [LINK_CLOSING] = "closing",
};

struct link_row {
    const char *addr;
    uint64_t n[METRICS_LINK_STATES];
};

static int cmp_link_row(const void *a, const void *b)
{
    return strcmp(((const struct link_row *)a)->addr, ((const struct link_row *)b)->addr);
}

/* Links summed by (node, state) over the workers. */
static void render_links(struct out *o, struct runtime *rt)
{
    struct link_row *rows = calloc((size_t)rt->nworkers * METRICS_NODES, sizeof *rows);
    if (!rows)
        return;
    size_t n = 0;
    for (int i = 0; i < rt->nworkers; i++)
        for (int j = 0; j < METRICS_NODES; j++) {
            struct metrics_node *e = &rt->metrics[i].nodes[j];
            if (!atomic_load_explicit(&e->used, memory_order_acquire))
                continue;
            rows[n].addr = e->addr;
            for (int s = 0; s < METRICS_LINK_STATES; s++)
                rows[n].n[s] = atomic_load_explicit(&e->links[s], memory_order_relaxed);
            n++;
        }
    qsort(rows, n, sizeof *rows, cmp_link_row);
    head(o, "ringslot_backend_links", "gauge", "Backend connections, by node and state.");
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && strcmp(rows[i].addr, rows[i + 1].addr) == 0) {
            for (int s = 0; s < METRICS_LINK_STATES; s++)
                rows[i + 1].n[s] += rows[i].n[s]; /* carried to the last one */
            continue;
        }
        for (int s = 0; s < METRICS_LINK_STATES; s++) {
            outf(o, "ringslot_backend_links{node=\"");
            out_label(o, rows[i].addr);
            outf(o, "\",state=\"%s\"} %" PRIu64 "\n", link_state_names[s], rows[i].n[s]);
        }
    }
    free(rows);
}

static double worker_cpu_seconds(struct worker *w)
{
    clockid_t cid;
    struct timespec ts;
    if (pthread_getcpuclockid(w->thread, &cid) != 0 || clock_gettime(cid, &ts) != 0)
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void render_workers(struct out *o, struct runtime *rt)
{
    head(o, "ringslot_worker_commands_total", "counter", "Commands received, by worker thread.");
    for (int i = 0; i < rt->nworkers; i++)
        outf(o, "ringslot_worker_commands_total{worker=\"%d\"} %" PRIu64 "\n", i,
             get(&rt->stats[i].commands));
    head(o, "ringslot_worker_clients", "gauge", "Connected clients, by worker thread.");
    for (int i = 0; i < rt->nworkers; i++)
        outf(o, "ringslot_worker_clients{worker=\"%d\"} %" PRIu64 "\n", i,
             get(&rt->stats[i].clients));
    head(o, "ringslot_worker_cpu_seconds_total", "counter",
         "CPU time used by each worker thread.");
    for (int i = 0; i < rt->nworkers; i++)
        outf(o, "ringslot_worker_cpu_seconds_total{worker=\"%d\"} %.6f\n", i,
             rt->workers[i] ? worker_cpu_seconds(rt->workers[i]) : 0.0);
}

static void render_tls(struct out *o, struct runtime *rt)
{
    if (!rt->cfg->tls_port && !rt->cfg->tls)
        return;
    struct tls_totals t;
    tls_stats_sum(rt, &t);
    static const char *const side[IO_TLS_SIDES] = {"client", "backend"};
    head(o, "ringslot_tls_handshakes_total", "counter",
         "TLS handshakes completed: side=client (tls-port) or backend (--tls).");
    for (int s = 0; s < IO_TLS_SIDES; s++)
        outf(o, "ringslot_tls_handshakes_total{side=\"%s\"} %" PRIu64 "\n", side[s],
             t.handshakes[s]);
    head(o, "ringslot_tls_resumed_handshakes_total", "counter",
         "TLS handshakes that resumed a session.");
    for (int s = 0; s < IO_TLS_SIDES; s++)
        outf(o, "ringslot_tls_resumed_handshakes_total{side=\"%s\"} %" PRIu64 "\n", side[s],
             t.resumed[s]);
    head(o, "ringslot_tls_handshake_failures_total", "counter",
         "TLS handshakes that failed, by side and reason.");
    for (int s = 0; s < IO_TLS_SIDES; s++)
        for (int f = TLS_FAIL_NONE + 1; f < TLS_FAIL_COUNT; f++)
            outf(o, "ringslot_tls_handshake_failures_total{side=\"%s\",reason=\"%s\"} %"
                 PRIu64 "\n", side[s], tls_fail_name(f), t.failures[s][f]);
    head(o, "ringslot_tls_reloads_total", "counter",
         "Certificate reloads (SIGHUP, PROXY CONFIG SET), by result.");
    outf(o, "ringslot_tls_reloads_total{result=\"ok\"} %" PRIu64 "\n",
         get(&rt->tls_reloads));
    outf(o, "ringslot_tls_reloads_total{result=\"failed\"} %" PRIu64 "\n",
         get(&rt->tls_reload_failures));
}

static void render_topology(struct out *o, struct runtime *rt, const struct cluster_topology *t)
{
    scalar(o, "ringslot_topology_refreshes_total", "counter",
           "Topology refreshes (CLUSTER SLOTS) attempted.", get(&rt->refreshes));
    scalar(o, "ringslot_topology_nodes", "gauge", "Backend nodes in the topology.",
           t ? t->nnodes : 0);
    scalar(o, "ringslot_topology_masters", "gauge", "Backend masters in the topology.",
           t ? t->nmasters : 0);
    scalar(o, "ringslot_slots_covered", "gauge",
           "Hash slots the topology assigns to a master.", t ? cluster_topology_covered(t) : 0);
    scalar(o, "ringslot_slots_reachable", "gauge",
           "Hash slots whose master the workers can reach.", metrics_slots_reachable(rt, t));
    scalar(o, "ringslot_ready", "gauge", "1 once listening with a topology loaded (/readyz).",
           atomic_load(&rt->topology_ready) && !atomic_load(&rt->stopping));
}

char *metrics_render(struct runtime *rt, size_t reader, size_t *len)
{
    struct out o = {0};
    struct stats_totals s;
    stats_sum(rt, &s);
    head(&o, "ringslot_build_info", "gauge", "Always 1; the version is a label.");
    outf(&o, "ringslot_build_info{version=\"%s\"} 1\n", RINGSLOT_VERSION);
    scalar(&o, "ringslot_uptime_seconds", "gauge", "Seconds since start.",
           (unsigned long long)((clock_ms() - rt->start_ms) / 1000));
    scalar(&o, "ringslot_connected_clients", "gauge", "Connected clients.", s.clients);
    scalar(&o, "ringslot_connections_received_total", "counter", "Client connections accepted.",
           s.clients_total);
    scalar(&o, "ringslot_requests_total", "counter", "Commands received.", s.commands);
    scalar(&o, "ringslot_errors_total", "counter", "Errors the proxy produced itself.", s.errors);
    scalar(&o, "ringslot_moved_total", "counter", "MOVED redirections followed.", s.moved);
    scalar(&o, "ringslot_ask_total", "counter", "ASK redirections followed.", s.ask);
    scalar(&o, "ringslot_net_input_bytes_total", "counter", "Bytes read from clients.", s.bytes_in);
    scalar(&o, "ringslot_net_output_bytes_total", "counter", "Bytes written to clients.",
           s.bytes_out);
    scalar(&o, "ringslot_rejected_connections_total", "counter",
           "Connections refused by maxclients.", s.rejected_clients);
    scalar(&o, "ringslot_client_limit_disconnects_total", "counter",
           "Clients closed by client-output-buffer-limit or timeout.", s.output_limit_kills);
    scalar(&o, "ringslot_requests_held_total", "counter",
           "Requests held while their node was lost.", s.held);
    scalar(&o, "ringslot_requests_retried_total", "counter",
           "Requests sent again after TRYAGAIN, LOADING and the like.", s.retried);
    scalar(&o, "ringslot_backend_timeouts_total", "counter",
           "Backend links closed for making no reply progress.", s.backend_timeouts);
    scalar(&o, "ringslot_replica_reads_total", "counter",
           "Read-only calls sent to a replica.", s.replica_reads);
    scalar(&o, "ringslot_replica_fallbacks_total", "counter",
           "Reads meant for a replica that went to the master.", s.replica_fallbacks);
    scalar(&o, "process_resident_memory_bytes", "gauge", "Resident set size.",
           (unsigned long long)process_rss_bytes());
    scalar(&o, "ringslot_log_lines_dropped_total", "counter",
           "Log lines a worker dropped because the log ring was full.", log_dropped());
    render_commands(&o, rt);
    render_latency(&o, rt);
    render_workers(&o, rt);
    snapshot_reader_enter(&rt->snap, reader);
    const struct cluster_topology *t = snapshot_load(&rt->slots[SLOT_TOPOLOGY]);
    render_topology(&o, rt, t);
    snapshot_reader_idle(&rt->snap, reader);
    render_links(&o, rt);
    render_tls(&o, rt);
    *len = o.len;
    return o.data;
}

