/*
 * A leaf of core/ (any layer from net/ up may include it): counters the
 * workers keep for the console's /metrics and INFO (metrics.c). metrics.c
 * reads workers' and requests' fields, but it is a sink like log.c: it never
 * calls into net/, route/ or cmd/, so the layers that feed it do not reach
 * upward. The console that serves these (console.c) is the root's
 * (runtime.h).
 *
 * Each worker owns one struct worker_metrics and is its only writer; other
 * threads (the console, on the main thread) only read it. Counters are
 * atomics written with a plain load+store (one writer, so no locked
 * instruction on the request path) and read relaxed. Names in the tables are
 * written once, before the entry's `used` flag is released.
 *
 *   dispatch ── metrics_command(name from the command table) ─► calls[cmd]
 *   client_append ── metrics_request ─► r->metric, r->t0_us
 *   request_reply ── metrics_reply ─► errors[cmd], latency histogram
 *   worker tick ── metrics_tick ─► links by node and state, unreachable slots
 *
 * Label values are bounded: command names come from the command table
 * (the backend's COMMAND reply or the built-in one) or the proxy's own
 * table, never from client input ("unknown" for a command no table has,
 * "other" once a worker's table is full); node labels are backend node
 * addresses, at most METRICS_NODES per worker.
 */
#ifndef RINGSLOT_CORE_METRICS_H
#define RINGSLOT_CORE_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cluster/cluster.h"

#define METRICS_CMDS 512          /* per worker; 3/4 may be filled */
#define METRICS_CMD_NAME 48
#define METRICS_NODES 64
#define METRICS_LAT_BUCKETS 15    /* the last one is +Inf */
#define METRICS_LINK_STATES 4     /* enum link_state */

struct metrics_cmd {
    _Atomic bool used;            /* name is set */
    char name[METRICS_CMD_NAME];
    _Atomic uint64_t calls, errors;
};

struct metrics_node {
    _Atomic bool used;            /* addr is set */
    char addr[64];
    _Atomic uint32_t links[METRICS_LINK_STATES];
};

struct worker_metrics {
    /* the worker's own (no other thread reads these) */
    uint16_t cur;                 /* cmds[] index + 1 of the command being
                                     dispatched, 0 outside dispatch */
    unsigned ncmds;
    /* read by the console */
    struct metrics_cmd cmds[METRICS_CMDS + 2]; /* + "unknown", "other" */
    _Atomic uint64_t latency[METRICS_LAT_BUCKETS]; /* not cumulative */
    _Atomic uint64_t latency_sum_us;
    struct metrics_node nodes[METRICS_NODES];
    _Atomic uint32_t slots_unreachable; /* slots whose master this worker
                                           cannot reach (last tick) */
};

struct config;
struct worker;
struct request;
struct runtime;
struct client;

/* Worker hooks. */
void metrics_init(struct worker_metrics *m);
/* The command being dispatched is `name` (NULL: unknown to every table). */
void metrics_command(struct worker *w, const char *name);
void metrics_dispatch_end(struct worker *w);
/* The command being dispatched was deferred, to be dispatched (and
 * counted) again: take back its call. */
void metrics_command_undo(struct worker *w);
void metrics_request(struct worker *w, struct request *r);
void metrics_reply(struct worker *w, const struct request *r, const char *data);
void metrics_tick(struct worker *w);

/* The Prometheus text exposition of everything (console thread; `reader`
 * is its snapshot reader index). Returns a malloc'd string. */
char *metrics_render(struct runtime *rt, size_t reader, size_t *len);
/* The workers' counters summed (each read relaxed: a recent value). */
struct stats_totals {
    uint64_t commands, errors, moved, ask, clients, clients_total, ops_per_sec;
    uint64_t bytes_in, bytes_out, held, retried, backend_timeouts;
    uint64_t rejected_clients, output_limit_kills, refreshes;
    uint64_t replica_reads, replica_fallbacks;
};
void stats_sum(const struct runtime *rt, struct stats_totals *out);
/* CONFIG RESETSTAT: INFO's counters start again from 0 (any thread; the
 * console's /metrics counters never go back, as Prometheus expects). */
void stats_reset(struct runtime *rt);
/* stats_sum with the counters taken since the last stats_reset. */
void stats_since_reset(const struct runtime *rt, struct stats_totals *out);
/* This process's resident set, from /proc/self/statm. */
long long process_rss_bytes(void);
/* Slots covered by a reachable master: the topology's, less what the most
 * pessimistic worker cannot reach. */
unsigned metrics_slots_reachable(const struct runtime *rt, const struct cluster_topology *t);


#endif
