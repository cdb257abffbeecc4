/*
 * The proxy's own INFO text, Redis-style sections ("# Name" then
 * key:value lines, sections separated by a blank line), for INFO, PROXY
 * INFO and the console's /info. The keyspace section needs the masters'
 * answers and is added by the caller (fanout.c).
 *
 * Any thread may call info_write with a view it holds: a worker passes its
 * batch's snapshots, the console its own snapshot reader's. Counters are
 * summed over the workers' stats (stats_sum, metrics.c); no thread reads
 * another's client table.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cmd.h"

/* redis_version until the control thread has read the masters' own (the
 * lowest of them is shown then: clients gate features on it). */
#define REDIS_COMPAT_VERSION "7.0.0"

const char *info_redis_version(const struct cluster_topology *t)
{
    return t && t->redis_version[0] ? t->redis_version : REDIS_COMPAT_VERSION;
}

/* jemalloc's mallctl when the binary links it (release); the ASan build
 * uses the sanitizer's allocator and has none. */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp,
                   size_t newlen) __attribute__((weak));
/* The sanitizers' allocator statistics (sanitizer builds only). */
extern size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));

/* printf into the info text. */
static void addf(struct resp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct resp_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        resp_buf_append(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void human_bytes(char *out, size_t outlen, unsigned long long n)
{
    static const char units[] = "BKMGT";
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, outlen, "%lluB", n);
    else
        snprintf(out, outlen, "%.2f%c", v, units[u]);
}

/* The workers' backend, in INFO's words ("uring (multishot recv, …)"). */
static const char *io_in_use(const struct runtime *rt)
{
    return rt->nworkers > 0 && rt->workers[0] ? io_detail(rt->workers[0]->io) : "none";
}

static void info_server(const struct info_view *v, struct resp_buf *b, const char *title)
{
    const struct config *cfg = v->cfg;
    struct utsname u;
    if (uname(&u) < 0)
        memset(&u, 0, sizeof u);
    long long up = (clock_ms() - v->rt->start_ms) / 1000;
    addf(b, "# %s\r\n", title);
    addf(b, "redis_version:%s\r\nringslot_version:%s\r\nproxy_version:%s\r\n",
         info_redis_version(v->topo), RINGSLOT_VERSION, RINGSLOT_VERSION);
    /* a cluster node, as INFO cluster (cluster_enabled:1) and HELLO say */
    addf(b, "redis_mode:cluster\r\n");
    addf(b, "os:%s %s %s\r\narch_bits:%d\r\n", u.sysname, u.release, u.machine,
         (int)(sizeof(long) * 8));
    addf(b, "multiplexing_api:%s\r\nio_backend:%s\r\n",
         v->rt->io_backend == IO_BACKEND_EPOLL ? "epoll" : "io_uring", io_in_use(v->rt));
    addf(b, "gcc_version:%d.%d.%d\r\n", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
    addf(b, "process_id:%ld\r\nthreads:%d\r\ntcp_port:%d\r\n", (long)getpid(),
         v->rt->nworkers, cfg->port);
    if (v->rt->cfg->tls_port)
        addf(b, "tls_port:%d\r\n", v->rt->cfg->tls_port);
    addf(b, "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n", up, up / 86400);
    addf(b, "acl_user:%s\r\n", cfg->auth_user[0] ? cfg->auth_user : "default");
    if (cfg->unixsocket[0])
        addf(b, "unix_socket:%s\r\nunix_socket_permissions:%o\r\n", cfg->unixsocket,
             cfg->unixsocketperm);
}

/* Connected clients come from each worker's own counter, not from reading
 * another worker's client table. */
static void info_clients(const struct info_view *v, struct resp_buf *b,
                         const struct stats_totals *s)
{
    const struct runtime *rt = v->rt;
    addf(b, "# Clients\r\nconnected_clients:%llu\r\nmaxclients:%d\r\n",
         (unsigned long long)s->clients, v->cfg->maxclients);
    for (int i = 0; i < rt->nworkers; i++)
        addf(b, "thread_%d_clients:%llu\r\n", i,
             (unsigned long long)atomic_load_explicit(&rt->stats[i].clients,
                                                      memory_order_relaxed));
}

/* Bytes the allocator has handed out: jemalloc's stats.allocated after an
 * epoch refresh, else the sanitizer's count, else glibc's mallinfo2. */
static unsigned long long used_memory(const char **allocator)
{
    if (mallctl) {
        uint64_t epoch = 1;
        size_t allocated = 0, len = sizeof allocated;
        mallctl("epoch", NULL, NULL, &epoch, sizeof epoch);
        if (mallctl("stats.allocated", &allocated, &len, NULL, 0) == 0) {
            *allocator = "jemalloc";
            return allocated;
        }
    }
    if (__sanitizer_get_current_allocated_bytes) {
        *allocator = "sanitizer";
        return __sanitizer_get_current_allocated_bytes();
    }
    *allocator = "libc";
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void info_memory(struct resp_buf *b)
{
    const char *allocator;
    unsigned long long used = used_memory(&allocator), rss = (unsigned long long)process_rss_bytes();
    unsigned long long total = (unsigned long long)sysconf(_SC_PHYS_PAGES) *
                               (unsigned long long)sysconf(_SC_PAGESIZE);
    char h1[32], h2[32], h3[32];
    human_bytes(h1, sizeof h1, used);
    human_bytes(h2, sizeof h2, rss);
    human_bytes(h3, sizeof h3, total);
    addf(b, "# Memory\r\nused_memory:%llu\r\nused_memory_human:%s\r\n"
         "used_memory_rss:%llu\r\nused_memory_rss_human:%s\r\n"
         "total_system_memory:%llu\r\ntotal_system_memory_human:%s\r\n"
         "mem_allocator:%s\r\n", used, h1, rss, h2, total, h3, allocator);
}

/* TLS counters (since start; not reset by CONFIG RESETSTAT): "client"
 * is the tls-port side, "backend" the links and the control thread. */
static void info_tls(const struct info_view *v, struct resp_buf *b)
{
    const struct runtime *rt = v->rt;
    if (!rt->cfg->tls_port && !rt->cfg->tls)
        return;
    struct tls_totals t;
    v->tls_stats_sum(rt, &t);
    static const char *const side[IO_TLS_SIDES] = {"client", "backend"};
    for (int s = 0; s < IO_TLS_SIDES; s++) {
        addf(b, "tls_%s_handshakes:%llu\r\ntls_%s_resumed_handshakes:%llu\r\n"
             "tls_%s_handshake_failures:%llu\r\n", side[s],
             (unsigned long long)t.handshakes[s], side[s], (unsigned long long)t.resumed[s],
             side[s], (unsigned long long)t.failures_total[s]);
        for (int f = TLS_FAIL_NONE + 1; f < TLS_FAIL_COUNT; f++)
            if (t.failures[s][f])
                addf(b, "tls_%s_failures_%s:%llu\r\n", side[s], tls_fail_name(f),
                     (unsigned long long)t.failures[s][f]);
    }
    addf(b, "tls_reloads:%llu\r\ntls_reload_failures:%llu\r\n",
         (unsigned long long)atomic_load(&rt->tls_reloads),
         (unsigned long long)atomic_load(&rt->tls_reload_failures));
}

static void info_stats(const struct info_view *v, struct resp_buf *b,
                       const struct stats_totals *s)
{
    addf(b, "# Stats\r\ntotal_connections_received:%llu\r\n"
         "total_commands_processed:%llu\r\ninstantaneous_ops_per_sec:%llu\r\n"
         "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\n"
         "rejected_connections:%llu\r\n",
         (unsigned long long)s->clients_total, (unsigned long long)s->commands,
         (unsigned long long)s->ops_per_sec, (unsigned long long)s->bytes_in,
         (unsigned long long)s->bytes_out, (unsigned long long)s->rejected_clients);
    addf(b, "total_error_replies:%llu\r\nmoved_followed:%llu\r\nask_followed:%llu\r\n"
         "topology_refreshes:%llu\r\nrequests_held:%llu\r\nrequests_retried:%llu\r\n"
         "backend_timeouts:%llu\r\nclient_output_limit_kills:%llu\r\n"
         "log_lines_dropped:%llu\r\n",
         (unsigned long long)s->errors, (unsigned long long)s->moved,
         (unsigned long long)s->ask,
         (unsigned long long)s->refreshes,
         (unsigned long long)s->held, (unsigned long long)s->retried,
         (unsigned long long)s->backend_timeouts, (unsigned long long)s->output_limit_kills,
         (unsigned long long)log_dropped());
    addf(b, "replica_reads:%llu\r\nreplica_fallbacks:%llu\r\n",
         (unsigned long long)s->replica_reads, (unsigned long long)s->replica_fallbacks);
    info_tls(v, b);
}

/* cluster_enabled:1 in every mode: ringslot answers CLUSTER SLOTS (a
 * one-node cluster outside cluster mode), and cluster clients such as
 * redis-py's RedisCluster check this field before they ask. */
static void info_cluster(const struct info_view *v, struct resp_buf *b)
{
    const struct cluster_topology *t = v->topo;
    size_t nodes = t ? t->nnodes : 0, masters = t ? t->nmasters : 0;
    addf(b, "# Cluster\r\ncluster_enabled:1\r\nnodes:%zu\r\nmasters:%zu\r\n"
         "replicas:%zu\r\nslots_covered:%u\r\nslots_reachable:%u\r\n",
         nodes, masters, nodes - masters,
         t ? cluster_topology_covered(t) : 0, metrics_slots_reachable(v->rt, t));
    addf(b, "backend_node_timeout_ms:%d\r\ncluster_down_hold_ms:%lld\r\n",
         t ? t->node_timeout_ms : 0, (long long)hold_time_ms(v->cfg, t));
    size_t readers = 0;
    for (size_t i = 0; i < masters; i++)
        readers += t->nodes[i].nreaders;
    addf(b, "replicas_readable:%zu\r\n", readers); /* healthy: may serve reads */
}

void info_write(const struct info_view *v, unsigned bits, bool proxy, struct resp_buf *b)
{
    struct stats_totals s;
    stats_since_reset(v->rt, &s); /* counters since CONFIG RESETSTAT */
    size_t before = b->len;
#define SEP() do { if (b->len > before) resp_buf_append(b, "\r\n", 2); } while (0)
    if (bits & INFO_SERVER)
        info_server(v, b, proxy ? "Proxy" : "Server");
    if (bits & INFO_CLIENTS) {
        SEP();
        info_clients(v, b, &s);
    }
    if (bits & INFO_MEMORY) {
        SEP();
        info_memory(b);
    }
    if (bits & INFO_STATS) {
        SEP();
        info_stats(v, b, &s);
    }
    if (bits & INFO_CLUSTER) {
        SEP();
        info_cluster(v, b);
    }
    if (bits & INFO_KEYSPACE)
        SEP();
#undef SEP
}
