/*
 * core/base.h — what every layer of core/ shares, below net/: the
 * process-wide struct runtime (config, snapshot domain and slots, the
 * control queue, the stats), the workers' counters, the one clock, and the
 * two messages any worker code may send the control thread.
 *
 * Invariants: this header includes nothing of core/ but core.h (snapshots,
 * queues) and io/io.h (the backend kind main chose); what it declares is
 * implemented in base.c, mq.c and snapshot.c, which include nothing above
 * it, so any layer may use it without reaching upward. struct runtime is
 * read-only after start except its atomics; it points at upper-layer
 * objects (workers, admin, consensus, metrics) only through incomplete
 * types.
 */
#ifndef RINGSLOT_CORE_BASE_H
#define RINGSLOT_CORE_BASE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "io/io.h"
#include "tls/tls.h"

#define RINGSLOT_VERSION "0.1.0"

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* ------------------------------------------------------------------------ */
/* Shared between threads                                                    */

/* Counters: written by one thread each (relaxed), summed by readers. */
struct worker_stats {
    _Atomic uint64_t commands;
    _Atomic uint64_t errors;         /* error replies sent to clients */
    _Atomic uint64_t moved;          /* MOVED redirections followed */
    _Atomic uint64_t ask;            /* ASK redirections followed */
    _Atomic uint64_t clients;        /* connected now */
    _Atomic uint64_t clients_total;  /* accepted since start */
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t ops_per_sec;    /* commands/s over the last second */
    _Atomic uint64_t held;           /* requests held for a lost node (hold.c) */
    _Atomic uint64_t retried;        /* TRYAGAIN/LOADING/… retries (hold.c) */
    _Atomic uint64_t backend_timeouts; /* links that made no reply progress */
    _Atomic uint64_t rejected_clients; /* refused by maxclients */
    _Atomic uint64_t output_limit_kills; /* client-output-buffer-limit closes */
    _Atomic uint64_t replica_reads;  /* reads sent to a replica (replica.c) */
    _Atomic uint64_t replica_fallbacks; /* reads meant for a replica that went
                                        to the master (none healthy, or
                                        its link failed) */
    char pad[64];
};

/* Counters in struct worker_stats have one writer (their worker): a
 * relaxed load and store is enough, and avoids a locked instruction per
 * command. Readers on other threads see a recent value. */
static inline void stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

enum snapshot_slot_id { SLOT_TOPOLOGY, SLOT_COMMANDS, SLOT_PROXYMAP, SLOT_CONFIG, SLOT_COUNT };

struct proxy_map;
struct consensus;

#define STATS_BASE_MAX 16

struct runtime {
    const struct config *cfg;
    struct snapshot_domain snap;          /* readers: 0..threads-1 */
    struct snapshot_slot slots[SLOT_COUNT];
    struct mq ctl_queue;                  /* workers → control */
    int ctl_wakeup_fd;                    /* eventfd for the queue */
    _Atomic bool stopping;                /* set by main on SIGTERM/SIGINT */
    _Atomic bool leaving;                 /* cluster mode: slots handed over,
                                             MOVED for all (main.c) */
    _Atomic bool topology_ready;          /* a topology was published once */
    _Atomic bool readonly_seen;           /* a client sent READONLY: replica
                                             health is checked from now on */
    _Atomic uint64_t refreshes;           /* topology refreshes done */
    _Atomic uint64_t next_client_id;
    _Atomic int workers_done;             /* workers whose loop has ended */
    _Atomic int64_t nclients;             /* all workers' clients (maxclients) */
    int64_t start_ms;
    _Atomic(struct proxy_map *) pending_map; /* consensus → control hand-over */
    struct consensus *consensus;          /* cluster mode only */
    enum io_backend io_backend;           /* chosen by main: uring or epoll */
    int nworkers;
    struct worker **workers;
    struct worker_stats *stats;           /* [nworkers] */
    struct worker_metrics *metrics;       /* [nworkers] (metrics.h) */
    struct admin *admin;                  /* config writer, credentials (admin.c) */
    _Atomic uint64_t stats_base[STATS_BASE_MAX]; /* counters at the last CONFIG
                                                    RESETSTAT (metrics.c) */
    /* TLS (tlsglue.c) */
    bool tls_inited;
    struct tls_slot tls_server;           /* tls-port's ctx; NULL ctx: off */
    struct tls_slot tls_backend;          /* --tls: links and control */
    struct tls_slot tls_cport_server;     /* tls-cluster: the cluster port */
    struct tls_slot tls_cport_client;     /* tls-cluster: to other proxies */
    struct io_tls_stats *tls_stats;       /* [nworkers] */
    struct io_tls_stats tls_ctl_stats;    /* the control thread's */
    _Atomic uint64_t tls_reloads, tls_reload_failures;
    struct tls_conn **bconns;             /* control thread only: by fd */
    size_t nbconns;
};

/* TLS handshakes and failures summed over the threads (tlsglue.c). */
struct tls_totals {
    uint64_t handshakes[IO_TLS_SIDES], resumed[IO_TLS_SIDES];
    uint64_t failures[IO_TLS_SIDES][TLS_FAIL_COUNT], failures_total[IO_TLS_SIDES];
};

int64_t clock_ms(void);

/* The queue to the control thread (base.c): a push and an eventfd write,
 * from any thread. */
/* Ask the control thread to refresh the topology (any thread). */
void control_request_refresh(struct runtime *rt, int worker, const char *reason_addr);
/* A worker lost its link to addr (EOF, error, connect failure or backend
 * timeout): control refreshes at once from other nodes, and every ~200 ms
 * until addr answers again or no longer serves slots. */
void control_report_lost(struct runtime *rt, int worker, const char *addr);

#endif
