/*
 * Private to core/: the objects of the running proxy and who owns them.
 *
 *   struct runtime   one per process, built by main; read-only after start
 *                    except its atomics. Holds the config, the snapshot
 *                    domain and slots, the control queue, the stats.
 *   struct worker    one per thread; owns its io, clients, links and
 *                    requests. No other thread touches them.
 *   struct client    a client connection (owned by its worker)
 *   struct link      a backend connection to one node (owned by its worker)
 *   struct request   one client command: owned by its client's FIFO while
 *                    the client lives, and also queued on at most one link;
 *                    freed when its reply has been delivered (or dropped
 *                    for an orphaned request whose client left).
 *
 * Every I/O goes through the worker's io (core/io/io.h): an io_op embedded
 * in the owning object, whose tag (enum op_kind) says which container_of
 * to apply to its completions.
 */
#ifndef RINGSLOT_CORE_RUNTIME_H
#define RINGSLOT_CORE_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../cluster/cluster.h"
#include "../config/config.h"
#include "../resp/resp.h"
#include "core.h"
#include "io/io.h"
#include "log.h"

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
    _Atomic bool leaving;                 /* cluster mode: handing slots over */
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

int64_t clock_ms(void);

/* TLS in the runtime (tlsglue.c) */
int tls_runtime_init(struct runtime *rt);          /* 0 or -1, logged */
/* --check-config: build each context cfg asks for (files load, key
 * matches); 0, or -1 with the first error in err. */
int tls_check_config(const struct config *cfg, char *err, size_t errlen);
void tls_runtime_destroy(struct runtime *rt);
/* Rebuild the ctx of each side that is on from cfg's files: 0, or -1 with
 * err (the old ctx stays). */
int tls_runtime_reload(struct runtime *rt, const struct config *cfg, char *err,
                       size_t errlen);
/* config_set, and for a TLS file option a reload; a failed reload undoes
 * the change and returns -1 with the reason. */
int tls_config_set(struct runtime *rt, struct config *latest, const char *name,
                   const char *value, char *err, size_t errlen);
/* SIGHUP (main thread): reload from the current config's files. */
void tls_sighup(struct runtime *rt);
struct tls_totals {
    uint64_t handshakes[IO_TLS_SIDES], resumed[IO_TLS_SIDES];
    uint64_t failures[IO_TLS_SIDES][TLS_FAIL_COUNT], failures_total[IO_TLS_SIDES];
};
void tls_stats_sum(const struct runtime *rt, struct tls_totals *t);
/* The consensus thread's TLS (tls-cluster, and --tls for the lease store),
 * or NULL when neither is on. */
const struct consensus_stream *tls_consensus_stream(const struct runtime *rt);
/* The control thread's connections (control.c, replica.c): after the TCP
 * connect, the TLS handshake when --tls (0 or -1); then whole sends,
 * receives of what is there (> 0, 0 EOF, -1 error or deadline), and a
 * close that also frees the TLS state. Plain fds work the same. */
int bconn_start(struct runtime *rt, int fd, const char *host, int port, int64_t deadline);
int bconn_send(struct runtime *rt, int fd, const char *buf, size_t len, int64_t deadline);
ssize_t bconn_recv(struct runtime *rt, int fd, char *buf, size_t cap, int64_t deadline);
void bconn_close(struct runtime *rt, int fd);

/* Ask the control thread to refresh the topology (any thread). */
void control_request_refresh(struct runtime *rt, int worker, const char *reason_addr);
/* Set the snapshot slots' destructors (before any publish). */
void control_init_slots(struct runtime *rt);
/* A worker lost its link to addr (EOF, error, connect failure or backend
 * timeout): control refreshes at once from other nodes, and every ~200 ms
 * until addr answers again or no longer serves slots. */
void control_report_lost(struct runtime *rt, int worker, const char *addr);
/* The control thread's body; returns when rt->stopping is set. */
void *control_main(void *rt);

/* ------------------------------------------------------------------------ */
/* Worker-owned objects                                                      */

/* A backend identity other than the configured one (auth.c). */
struct auth_id {
    struct worker *w;
    struct auth_id *next;     /* worker's list */
    unsigned refs;            /* clients, links and pending AUTHs using it */
    char *user, *pass;        /* owned */
};

struct auth_id *auth_intern(struct worker *w, const char *user, size_t ulen,
                            const char *pass, size_t plen);
struct auth_id *auth_get(struct auth_id *a);
void auth_put(struct auth_id *a);
void auth_command(const struct auth_id *a, struct resp_buf *b);

/* What two calls must share to share a link: the RESP version and the
 * backend identity (NULL: the configured --auth). */
struct link_key {
    int proto;
    struct auth_id *auth;
};

/* The tag of every io_op: whose completion it is. */
enum op_kind {
    OP_ACCEPT, OP_CLIENT_RECV, OP_CLIENT_SEND,
    OP_LINK_CONNECT, OP_LINK_RECV, OP_LINK_SEND,
    OP_TICK,
    OP_XWAKE,    /* the worker's inbox eventfd (xworker.c) */
};

/* Output waiting to go to a socket: a chain of chunks, gathered into one
 * vectored send. */
struct obuf_chunk {
    struct obuf_chunk *next;
    size_t len, cap, sent; /* sent: bytes already written from the front */
    char data[];
};

struct obuf {
    struct obuf_chunk *head, *tail;
    size_t bytes; /* unsent bytes in the chain */
};

void obuf_append(struct obuf *o, const void *data, size_t len);
/* Fill iov from the unsent bytes; returns how many entries. */
int obuf_iov(const struct obuf *o, struct iovec *iov, int max);
/* n bytes were written; free drained chunks. */
void obuf_consume(struct obuf *o, size_t n);
void obuf_free(struct obuf *o);

/* A request parked by the worker instead of queued on a link (hold.c). */
enum request_wait {
    REQ_WAIT_NONE,
    REQ_WAIT_HELD,   /* its node was lost: re-routed by slot when one answers */
    REQ_WAIT_RETRY,  /* -TRYAGAIN/-LOADING/…: sent again after a backoff */
};

enum request_state {
    REQ_QUEUED,  /* waiting on a link (sent or not) */
    REQ_DONE,    /* reply attached, waiting for earlier replies */
};

#define REQ_INLINE_BYTES 96
#define REQ_MAX_REDIRECTS 5

/* How a fan-out parent combines its children's replies (fanout.c). */
enum merge_kind {
    MERGE_MGET,          /* arrays → one array in the original key order */
    MERGE_OK,            /* all +OK → +OK, else the first error */
    MERGE_SUM,           /* integers summed */
    MERGE_MIN,           /* integers, the smallest (WAIT, LASTSAVE) */
    MERGE_MAX,           /* integers, the largest (ACL DELUSER) */
    MERGE_CONCAT,        /* arrays concatenated (KEYS; in cluster mode
                            only the keys of own slots: fanout.c) */
    MERGE_FIRST_NONNULL, /* RANDOMKEY */
    MERGE_RANDOM_KEY,    /* GETKEYSINSLOT <slot> 1 arrays: one key of a
                            random non-empty one, or null */
    MERGE_FIRST,         /* every node says the same (SCRIPT LOAD) */
    MERGE_AND_ARRAY,     /* arrays of 0/1 ANDed element-wise (SCRIPT EXISTS) */
    MERGE_SCAN,          /* one node's SCAN reply, cursor re-encoded */
    MERGE_PAIRS,         /* [name, n, …] arrays: n summed by position */
    MERGE_UNION,         /* arrays concatenated without duplicates */
    MERGE_INFO,          /* INFO keyspace summed, after fan->prefix */
    MERGE_SLOWLOG,       /* SLOWLOG GET: entries merged newest first */
    MERGE_CONFIG_GET,    /* one node's CONFIG GET, requirepass the proxy's */
    MERGE_NONE,          /* no children: completed by its owner (xworker.c) */
};

struct fanout {
    enum merge_kind kind;
    size_t n, pending;
    struct request **children; /* owned */
    uint32_t *key_child;       /* MGET: key i is element key_pos[i] of … */
    uint32_t *key_pos;         /* … child key_child[i] */
    size_t nkeys;
    unsigned scan_shard;       /* MERGE_SCAN: which master was asked */
    uint8_t scan_check;        /* MERGE_SCAN: check bits of that node */
    uint8_t scan_hops;         /* MERGE_SCAN: masters skipped for an empty page */
    unsigned scan_nshards;
    struct resp_buf scan_restart; /* MERGE_SCAN: the call with cursor 0, for
                                     the next master or a lost replica */
    long long limit;           /* MERGE_SLOWLOG: entries wanted, -1 = all */
    char *prefix;              /* MERGE_INFO: the proxy's own sections */
    size_t prefix_len;
};

struct request {
    struct client *client;    /* NULL once the client has gone (orphan), and
                                 for fan-out children (see parent) */
    struct request *parent;   /* fan-out child: the request it answers for */
    struct fanout *fan;       /* fan-out parent: its children (owned) */
    struct request *cnext;    /* client FIFO */
    struct request *lnext;    /* link FIFO */
    struct link *link;        /* the link it is queued on, or NULL */
    enum request_state state;
    bool asking;              /* send ASKING first */
    bool silent;              /* CLIENT REPLY OFF|SKIP: reply not sent */
    bool is_block;            /* MULTI … EXEC written as one unit */
    uint32_t block_cmds;      /* commands inside the block */
    bool block_watched;       /* runs on its client's WATCH link: never
                                 re-sent elsewhere, where the WATCH is not */
    uint32_t skip_replies;    /* replies still to drop before the real one
                                 (ASKING's +OK, MULTI's +OK and +QUEUED) */
    char block_redirect[CLUSTER_ADDR_MAX]; /* a skipped reply was MOVED/ASK … */
    bool block_redirect_ask;  /* … of this kind: the block goes there whole */
    uint8_t redirects;
    size_t len;               /* command bytes */
    char *buf;                /* == inline_bytes when len fits */
    char *reply;              /* owned copy when the reply arrived early */
    size_t reply_len;
    /* Waiting in the worker, on no link (hold.c). lnext links the list. */
    enum request_wait wait;
    struct link_key wait_key; /* HELD: key of the link it came from (the
                                 client holds the identity's reference);
                                 proto 0: hold_slot not worked out yet */
    struct auth_id *auth_result; /* an AUTH as another user: becomes the
                                    client's identity on +OK (a reference) */
    uint8_t retries;          /* RETRY: attempts so far */
    int hold_slot;            /* HELD: re-routed by this slot (-1: any master) */
    int64_t hold_until;       /* HELD: fails with CLUSTERDOWN after this (0: unset) */
    int64_t retry_at;         /* RETRY: sent again at */
    int64_t retry_first;      /* RETRY: first retryable error (0: none yet) */
    struct link *retry_link;  /* RETRY: shared link it goes back to */
    uint32_t sub_replies;     /* on a subscriber link: replies (one per
                                 channel, or one error) still due */
    uint8_t sub_all;          /* enum sub_all: an argument-less
                                 (P|S)UNSUBSCRIBE, counted at the head */
    bool shard_all;           /* one link's part of an argument-less
                                 SUNSUBSCRIBE: its counts add shard_later */
    uint32_t shard_later;     /* … the shard channels of the links whose
                                 parts come after it (pubsub.c) */
    uint16_t metric;          /* metrics.c: the command's counter + 1, or 0 */
    int64_t t0_us;            /* metrics.c: batch time it arrived in */
    char inline_bytes[REQ_INLINE_BYTES];
};

enum link_state {
    LINK_IDLE,        /* no socket; connects when a request arrives */
    LINK_CONNECTING,
    LINK_READY,
    LINK_CLOSING,     /* socket shut down; waiting for its ops to finish */
};

#define LINK_SEND_IOV 256

/*
 * A link is shared (every client of the worker multiplexed on it, found by
 * address) or private: lent to one client that needs connection state on
 * the backend (WATCH, a blocking command, pub/sub, multiplexing off). A
 * private link with nothing in flight and no state goes back to the pool;
 * one whose client left while it was busy, watching or subscribed is
 * closed, never pooled.
 */
enum link_kind { LINK_SHARED, LINK_PRIVATE };

/* A private link's part in its client's pub/sub (pubsub.c). */
enum sub_role {
    SUB_NONE,     /* not a subscriber link */
    SUB_MAIN,     /* c->pubsub_link: SUBSCRIBE / PSUBSCRIBE, on the home node */
    SUB_SHARD,    /* SSUBSCRIBE, on the shard channel's node */
    SUB_KEYSPACE, /* keyspace channels on another master: only messages
                     reach the client, confirmations are the main link's */
};

/* An argument-less (P|S)UNSUBSCRIBE is answered once per subscription of
 * that kind (once if none): how many is known when it reaches the head. */
enum sub_all { SUB_ALL_NONE, SUB_ALL_CHANNELS, SUB_ALL_PATTERNS, SUB_ALL_SHARD };

/* What a subscriber link's node holds for it, from the counts in its
 * confirmations (Redis counts channels + patterns together, shard
 * channels apart). */
struct sub_counts {
    uint32_t channels, patterns, shard;
};

struct link {
    struct worker *w;
    struct link *next;        /* worker's list of links */
    enum link_kind kind;
    struct client *owner;     /* private and lent: the client (not owned) */
    struct link *owner_next;  /* the owner's list of private links */
    bool pooled;              /* private, idle, waiting in the pool */
    bool doomed;              /* private: free once its ops are done */
    enum sub_role sub_role;   /* private: its part in the owner's pub/sub */
    struct sub_counts subs;   /* subscriber: what it is subscribed to */
    bool hello_pending;       /* RESP3: HELLO 3's reply not read yet */
    bool auth_pending;        /* --auth: AUTH's reply not read yet */
    bool reader;              /* shared, says READONLY first: carries reads
                                 to a replica (replica.c) */
    int proto;                /* 2 or 3: RESP3 clients get RESP3 links */
    struct auth_id *auth;     /* identity it authenticates as (a reference),
                                 NULL = --auth */
    char addr[CLUSTER_ADDR_MAX];
    struct sockaddr_storage sa;
    socklen_t salen;
    int fd;
    enum link_state state;
    unsigned ops;             /* ops in flight */
    struct io_op connect_op, recv_op, send_op;
    bool recv_armed, send_armed, dirty;
    struct link *dirty_next;  /* worker's list of links with unsent bytes */

    /* FIFO: [head, unsent) are written and await replies; [unsent, tail]
     * are not written yet. unsent_off: bytes of `unsent` already written. */
    struct request *head, *tail, *unsent;
    size_t unsent_off;
    size_t nqueued;

    /* the send in flight (io_send copies the array; the bytes stay) */
    struct iovec iov[LINK_SEND_IOV];

    /* replies */
    char *in;
    size_t in_len, in_cap, in_off;
    struct resp_reply_parser rp;

    int64_t retry_at_ms;      /* no reconnect before this (backoff) */
    unsigned failures;

    /* Health (shared links). down_since: when the node stopped answering
     * (0 = up); while set, requests routed here are held (hold.c), and a
     * reconnected link carries only a probe until a reply proves the node
     * is back (revived, applied at the end of the batch). */
    int64_t down_since;
    bool revived;
    int64_t progress_ms;      /* last reply bytes, or the first write after
                                 nothing was awaited (backend timeout) */
};

enum client_state { CLIENT_OPEN, CLIENT_CLOSING };

/* A client's pub/sub state (pubsub.c):
 *
 *   NONE ──(P|S)SUBSCRIBE──► CHANGING ──all confirmed──► SUBSCRIBED
 *     ▲                        │  ▲                          │
 *     └──all confirmed, none ──┘  └──any (un)subscribe───────┘
 *
 * While CHANGING, a command whose outcome depends on the state (RESP2:
 * every command but (P|S)(UN)SUBSCRIBE; RESET) waits unparsed in c->tail. */
enum client_pubsub { PUBSUB_NONE, PUBSUB_CHANGING, PUBSUB_SUBSCRIBED };

/* Where a client's read-only calls may go, beside --read-from-replicas. */
enum client_reads {
    CLIENT_READS_DEFAULT,   /* as --read-from-replicas says */
    CLIENT_READS_REPLICAS,  /* READONLY: replicas too, whatever the option */
    CLIENT_READS_MASTER,    /* READWRITE: masters only, whatever the option */
};

#define CLIENT_SEND_IOV 64
#define CLIENT_WRITTEN_MAX 4

struct client {
    struct worker *w;
    struct client *prev, *next;      /* worker's list */
    int fd;
    uint64_t id;
    enum client_state state;
    unsigned ops;
    struct io_op recv_op, send_op;
    bool recv_armed, send_armed;
    bool close_after_reply;          /* QUIT or protocol error */
    bool reading_stopped;            /* input refused after an error/QUIT */
    bool flush_listed;
    struct client *flush_next;       /* worker's list of clients to flush */

    struct resp_req_parser parser;
    char *tail;                      /* incomplete command bytes (owned) */
    size_t tail_len, tail_cap;

    struct request *rhead, *rtail;   /* FIFO in request order */
    size_t nreqs;

    struct link *written[CLIENT_WRITTEN_MAX]; /* links written through since
                                                 the last WAIT (worker-owned) */
    unsigned nwritten;
    bool written_all;                /* more than CLIENT_WRITTEN_MAX: WAIT
                                        asks every master */

    /* MULTI: commands are queued here and written as one block at EXEC */
    bool in_multi;
    bool multi_abort;                /* a queued command was refused */
    int multi_slot;                  /* -1: no key yet */
    uint32_t multi_cmds;
    struct resp_buf multi_buf;

    /* private links (see enum link_kind) */
    struct link *plinks;             /* lent to this client */
    struct link *watch_link;         /* WATCH state lives on this one */
    bool multiplex_off;              /* PROXY MULTIPLEXING OFF / always */
    int proto;                       /* RESP version (HELLO), 2 or 3 */
    char *name;                      /* CLIENT SETNAME / HELLO SETNAME */
    struct auth_id *auth;            /* AUTH as another backend user (a
                                        reference), NULL = --auth */
    bool authenticated;              /* passed --requirepass (admin.c) */
    bool admin;                      /* passed PROXY AUTH (admin.c) */
    int8_t peer_local;               /* loopback/unix peer: 1, not: -1, 0 unknown */
    char *lib_name, *lib_ver;        /* CLIENT SETINFO */
    char last_cmd[24];               /* CLIENT LIST cmd=, "" before any */
    /* hold.c: requests that met a retryable error and have no final reply
     * yet, and new requests parked behind them (kept in order) */
    uint32_t nretrying, nbehind;
    int64_t created_ms, last_ms;     /* accepted, last command (CLIENT LIST) */
    bool reply_off;                  /* CLIENT REPLY OFF */
    bool reply_skip;                 /* CLIENT REPLY SKIP: the next command */
    bool paused;                     /* backpressure: replies over
                                        client-reply-budget, not read */
    bool rearm_listed;               /* on the worker's need_rearm list */
    struct client *rearm_next;       /* (not flush_next: it may be on both) */
    int64_t soft_since_ms;           /* over the soft output limit since */
    size_t early_bytes;              /* replies kept out of order (r->reply) */
    bool foreign_seen;               /* cluster mode: a call for another
                                        proxy's slot was served */
    int64_t last_moved_ms;           /* cluster mode: last MOVED hint */
    enum client_pubsub pubsub;
    struct link *pubsub_link;        /* SUBSCRIBE/PSUBSCRIBE go here */
    bool input_held;                 /* a command waits (for the pub/sub
                                        state, or the first topology:
                                        dispatch_defer); c->tail is not
                                        parsed until it is resumed */
    bool resume_listed;              /* on the worker's resume_list */
    struct client *resume_next;
    enum client_reads reads;         /* READONLY / READWRITE (replica.c) */
    int64_t last_write_ms;           /* last call that was not read-only
                                        (--replica-read-after-write) */

    struct obuf out;                 /* not yet handed to the kernel */
    struct obuf sending;             /* handed to the in-flight send */

};

struct xmsg;    /* xworker.c */
struct xgather; /* xworker.c */

#define LISTENERS_MAX (2 * CONFIG_MAX_BINDS + 1) /* plain, TLS, unix */

/* A parsed command's arguments as slices (argv[i], lens[i] into the input)
 * and room for its key positions; grown, never shrunk. */
struct arg_scratch {
    const char **argv;
    size_t *lens;
    int *keys;
    size_t cap;
};
/* dispatch.c: room for n arguments (aborts when out of memory, like every
 * request-path allocation). */
void arg_scratch_reserve(struct arg_scratch *s, size_t n);
void arg_scratch_free(struct arg_scratch *s);

struct listener {
    int fd;
    struct io_op op;                    /* OP_ACCEPT, multishot */
    bool armed;
    bool handoff;                    /* unix socket: spread over the workers */
    bool tls;                        /* tls-port: clients get TLS */
};

struct worker {
    int id;
    struct auth_id *auths;           /* interned identities (auth.c) */
    struct runtime *rt;
    struct worker_stats *stats;
    struct io *io;                   /* sockets, timers, wake-ups (owned) */
    struct listener listeners[LISTENERS_MAX]; /* listen.c */
    int nlisteners;
    struct io_op tick_op;
    unsigned ops;                    /* worker-level ops in flight */

    bool bufs_returned;              /* some buffer went back this batch */

    struct client *clients;
    struct client *need_rearm;       /* clients whose recv hit -ENOBUFS */
    struct client *flush_list;       /* clients with output to send */
    struct client *resume_list;      /* held input to parse again (pub/sub
                                        state settled) */
    struct link *links;
    struct link *dirty_links;

    /* Per-batch view of the snapshots (valid only inside a batch). */
    const struct cluster_topology *topo;
    const struct command_table *cmds;
    const struct config *cfg;        /* runtime config (PROXY CONFIG SET) */
    struct worker_metrics *metrics;  /* == &rt->metrics[id] */
    const struct proxy_map *pmap;       /* CLUSTER replies, MOVED hints */
    /* node index of `topo` → link; rebuilt when the topology changes */
    struct link **node_links;
    struct link **reader_links;      /* the same for READONLY links to
                                        replicas (replica.c) */
    size_t node_links_len;
    uint64_t node_links_version;
    unsigned rr;                     /* round robin over masters */

    struct arg_scratch args;         /* the command being dispatched */

    int64_t now_ms;
    int64_t now_us;                  /* the batch's clock reading (latency) */
    int64_t stop_deadline_ms;
    bool draining;                   /* SIGTERM: no new connections */
    bool quiescing;                  /* exiting: no new ops at all */
    bool reap_links;                 /* some link was doomed */
    int64_t sample_ms;               /* ops_per_sec sampling (tick) */
    uint64_t sample_cmds;

    /* cross-worker requests (xworker.c): other threads push messages on
     * `inbox` and write `inbox_fd`; the worker reads it through its ring */
    _Atomic(struct xmsg *) inbox;
    int inbox_fd;
    uint64_t inbox_val;
    struct io_op inbox_op;
    bool inbox_armed;
    struct xgather *gathers;         /* this worker's questions in flight */
    int adopt_next;                  /* xworker_adopt's round-robin start */
    struct config_wait *config_waits; /* PROXY CONFIG SETs awaiting publication (admin.c) */

    /* requests parked off the links (hold.c): FIFOs through r->lnext */
    struct request *held_head, *held_tail;
    size_t nheld, held_bytes;
    struct request *retry_head, *retry_tail;
    size_t nretry;
    bool hold_due;                   /* a link revived: hold pass at batch end */
    bool clients_awaiting;           /* some client awaits the first topology */
    bool retry_due;                  /* a client's retries are over: retry pass
                                        at batch end for what waits behind */
    int64_t next_scan_ms;            /* idle / soft output limit scan */
    pthread_t thread;
};

/* The key of the links this client's calls travel on. */
static inline struct link_key client_key(const struct client *c)
{
    return (struct link_key){.proto = c->proto, .auth = c->auth};
}

int worker_create(struct runtime *rt, int id, struct worker **out);
/* 0 if nothing listens on the configured port, else -errno. */

/* listeners (listen.c) */
/* Open w's listeners: each --bind address with SO_REUSEPORT, and for
 * worker 0 the unix socket. 0 or -errno. */
int listen_worker(struct worker *w);
void listen_close_all(struct worker *w);
/* 0 if every TCP address can be bound without SO_REUSEPORT (nobody else
 * listens there), else -errno. */
int listen_probe(const struct config *cfg);
/* One TCP listener per --bind address on port, into fds (LISTENERS_MAX);
 * returns how many, or -errno. */
int listen_tcp(const struct config *cfg, int port, bool reuseport, int *fds);
void *worker_main(void *w);
/* worker_main in parts, for tests that drive a worker themselves (on the
 * fake io backend): start once; step runs one loop iteration (waiting at
 * most timeout_ms) and returns 1 to go on, 0 once drained after stopping,
 * -errno on a backend failure; finish cancels and reaps what is left. */
int worker_start(struct worker *w);
int worker_step(struct worker *w, int timeout_ms);
void worker_finish(struct worker *w);
void worker_destroy(struct worker *w);

/* links (link.c) */
struct link *link_get(struct worker *w, const char *addr, struct link_key key);
/* The shared READONLY link to a replica (replica reads). */
struct link *link_get_reader(struct worker *w, const char *addr, struct link_key key);
/* Give up on l as if it was lost (its reads go elsewhere, it reconnects). */
void link_abandon(struct link *l, const char *why);
void link_enqueue(struct link *l, struct request *r);
/* link_enqueue for a request leaving the retry queue (hold.c): in order
 * already, so never parked behind its client's retries again. */
void link_enqueue_retried(struct link *l, struct request *r);
void link_flush(struct link *l);
void link_handle(struct worker *w, const struct io_event *ev);
void link_tick(struct link *l);
/* A private link to addr for c: from the pool or new (NULL past the cap). */
struct link *link_lend(struct worker *w, const char *addr, struct client *c);
/* c no longer needs l: pooled if clean and idle, else closed. */
void link_giveback(struct link *l);
/* c's private link to addr, if it has one. */
struct link *client_private_link(const struct client *c, const char *addr);
/* A private link of c has nothing in flight any more. */
void client_private_idle(struct client *c, struct link *l);
/* Pub/sub: a push from a subscriber link, in order with c's replies. */
void client_push(struct client *c, const char *data, size_t len);
/* c's held input (input_held) is parsed again at the end of the batch. */
void client_resume_later(struct client *c);
/* End of a batch: parse the input of every client client_resume_later
 * named (before links are flushed: what it sends leaves this batch). */
void client_resume_all(struct worker *w);
/* Close c now (its subscriber or WATCH link died, CLIENT KILL, shutdown);
 * freed at once when no op is in flight. */
void client_kill(struct client *c);
void client_set_name(struct client *c, const char *name, size_t len);
void client_auth_result(struct client *c, struct request *r, bool ok);
void link_shutdown_all(struct worker *w);
/* Free doomed private links whose ops are done (end of a loop iteration). */
void link_reap(struct worker *w);
void link_free_all(struct worker *w);

/* clients and requests (client.c) */
void client_accepted(struct worker *w, int fd);
/* On a TLS listener's fd, before client_accepted (tlsglue.c). */
void tls_accepted(struct worker *w, int fd);
/* TLS for a link's new socket when --tls; false: none could be set up. */
bool tls_link_attach(struct worker *w, int fd, const char *addr);
void tls_worker_setup(struct worker *w);
void client_handle(struct worker *w, const struct io_event *ev);
void client_flush(struct client *c);
void client_rearm(struct client *c);
void client_free_all(struct worker *w);
/* The reply for r arrived (bytes copied); delivers in request order. */
void request_reply(struct request *r, const char *data, size_t len);
/* A part of r's reply (pub/sub confirmations come one per channel): sent
 * at once when r is the client's FIFO head, else kept with r; the last
 * part comes through request_reply. */
void request_reply_part(struct request *r, const char *data, size_t len);
void request_free(struct request *r);
/* Is anyone still waiting for r's reply (its client, or its fan-out
 * parent's)? */
bool request_wanted(const struct request *r);
/* Route a request (new, or redirected) to a node by address. */
void request_fail(struct request *r, const char *err);

/* A request carrying a copy of bytes (in the request itself when small). */
struct request *request_new(const char *bytes, size_t len);
/* A request carrying b's bytes: b's buffer is taken over (b is emptied). */
struct request *request_adopt(struct resp_buf *b);
/* A new request at the tail of the client's FIFO (replies keep its place). */
struct request *client_request_new(struct client *c);
/* Replies the proxy builds itself, in request order. Error texts are
 * Redis's, without '-' and CRLF. */
void client_reply_bytes(struct client *c, const char *data, size_t len);
void client_reply_error(struct client *c, const char *text);
void client_reply_buf(struct client *c, struct resp_buf *b); /* frees b */

/* Commands the proxy answers itself (commands.c). The handler sees the
 * arguments in w->argv/w->lens[0, argc). */
struct proxy_command {
    const char *name; /* lower case */
    void (*fn)(struct client *c, size_t argc);
};
const struct proxy_command *proxy_command_lookup(const char *name, size_t len);
bool arg_is(const struct worker *w, size_t i, const char *lower);

/* fan-out (fanout.c) */
/* Cross-slot MGET/MSET/DEL/UNLINK/EXISTS/TOUCH split per slot; false if
 * the command is not splittable (the caller answers CROSSSLOT). */
bool fanout_split(struct client *c, const struct command_info *ci, size_t argc);
/* The command (w->argv) to every master, merged as `kind`. */
void fanout_all_masters(struct client *c, size_t argc, enum merge_kind kind);
/* The command to every node, replicas too (what must survive a failover:
 * ACL and CONFIG changes), merged as `kind`. */
void fanout_all_nodes(struct client *c, size_t argc, enum merge_kind kind);
/* The command to the first master only (the same node every time, so
 * reads agree with each other), its reply passed through `kind`. */
void fanout_first_master(struct client *c, size_t argc, enum merge_kind kind);
/* The command (w->argv) on each of these links. */
void fanout_to_links(struct client *c, size_t argc, struct link **links, size_t n,
                     enum merge_kind kind);
/* One child per slot: argv with argument slot_arg replaced by the slot's
 * number, routed to the master serving it. n ≥ 1. */
void fanout_per_slot(struct client *c, enum merge_kind kind, const uint16_t *slots, size_t n,
                     int argc, const char **argv, int slot_arg);
/* SCAN with a cluster-wide cursor. */
void fanout_scan(struct client *c, size_t argc);
/* A SCAN page's replica was lost with the request in flight: the shard
 * starts again on its master (see scan_first_page). */
void fanout_scan_fallback(struct request *child);
/* A child's reply arrived (called by request_reply). */
void fanout_child_reply(struct request *child, const char *data, size_t len);
void fanout_free(struct request *parent);
/* Encode argv[0, argc) (w->argv) with argv[0..prefix) replaced. */
struct request *request_from_args(struct worker *w, int argc, const char **argv,
                                  const size_t *lens);
/* Queue r on the link of the master that serves `slot` (or any master for
 * slot -1); answers CLUSTERDOWN itself when there is none. */
void route_to_slot(struct worker *w, struct request *r, int slot, struct link_key key);
/* Queue r on the link of topology node `node`. */
void route_to_node(struct worker *w, struct request *r, unsigned node, struct link_key key);

/* Append a request made elsewhere to the client's FIFO. */
void client_append(struct client *c, struct request *r);

/* INFO text (info.c): the snapshots a caller holds, and which sections. */
struct info_view {
    struct runtime *rt;
    const struct cluster_topology *topo; /* may be NULL */
    const struct config *cfg;            /* the runtime config */
};
enum info_section {
    INFO_SERVER = 1, INFO_CLIENTS = 2, INFO_MEMORY = 4, INFO_STATS = 8, INFO_CLUSTER = 16,
    INFO_KEYSPACE = 32, INFO_ALL = 63,
};
/* Appends the proxy's own sections (keyspace is the caller's: it needs the
 * masters). */
void info_write(const struct info_view *v, unsigned sections, bool proxy, struct resp_buf *b);
/* The Redis version ringslot claims (INFO, HELLO): the lowest among the
 * masters of t, a compatible constant until it is known. */
const char *info_redis_version(const struct cluster_topology *t);

/* cluster mode (clustermode.c) */
#define CLUSTER_MOVED_HINT_MS 5000
#define CLUSTER_LEAVE_GRACE_MS 1000
int clustermode_start(struct runtime *rt);       /* main, before threads */
void clustermode_publish_pending(struct runtime *rt); /* control thread */
void clustermode_leave(struct runtime *rt);      /* SIGTERM: slots move first */
void clustermode_stop(struct runtime *rt);
void clustermode_command(struct client *c, size_t argc); /* CLUSTER … */
/* Answered -MOVED to the slot's owner proxy instead of served? */
bool clustermode_moved(struct client *c, int slot);
/* The map whose own slots bound this proxy's per-node view (DBSIZE, KEYS,
 * SCAN, RANDOMKEY) when that view is less than the keyspace (cluster mode
 * with other members), else NULL. */
const struct proxy_map *clustermode_own_view(const struct worker *w);
/* Does this master (topology index) serve a slot of that view? (SCAN
 * skips those that do not.) True outside such a view. */
bool clustermode_master_in_view(const struct worker *w, unsigned master);
/* DBSIZE / RANDOMKEY over this proxy's own slots; false when its view is
 * the whole keyspace (the caller asks every master as before). */
bool clustermode_dbsize(struct client *c, size_t argc);
bool clustermode_randomkey(struct client *c, size_t argc);

/* dispatch (dispatch.c): one parsed command; false when it must wait for
 * the pub/sub state (not consumed: the caller keeps its bytes) */
bool dispatch_command(struct client *c, const char *buf);
/* Redis's "wrong number of arguments for '<argv[0] lower-cased>' command". */
void dispatch_wrong_arity(struct client *c);
/* Forward w->argv on this link, in the client's FIFO. */
void dispatch_forward_on(struct client *c, size_t argc, struct link *l);
/* Forward w->argv to any master. */
void dispatch_forward_any(struct client *c, size_t argc);
/* Write the client's queued MULTI block. */
void dispatch_exec(struct client *c);
/* The command being dispatched needs a topology and none is loaded yet:
 * true if the client's input stops here, to be dispatched again once one
 * is (dispatch_resume); false once the hold time from startup is up or the
 * client has sent too much meanwhile (answer the error then). */
bool dispatch_defer(struct client *c);
#define DEFER_INPUT_MAX (1u << 20) /* bytes a waiting client may send */
/* The first topology came, or the wait is over: dispatch again what the
 * waiting clients sent. */
void dispatch_resume(struct worker *w);
void dispatch_redirect(struct link *from, struct request *r, const char *reply, size_t len);
/* Remember a MOVED/ASK seen inside a MULTI block (see struct request). */
void dispatch_note_block_redirect(struct request *r, const char *reply, size_t len);

/* Held and retried requests (hold.c). */
/* The hold time for a lost master that has a replica (and the retry
 * window of -CLUSTERDOWN): --cluster-down-timeout, or auto's. */
int64_t hold_time_ms(const struct config *cfg, const struct cluster_topology *t);
/* Until when calls wait for the first topology (startup + hold time). */
int64_t hold_boot_deadline(const struct worker *w);
/* r could not go on shared link l (down, or just lost): hold it until its
 * slot has a master that answers, or fail it (hold time, byte cap). */
void hold_request(struct link *l, struct request *r);
/* r (already in its client's FIFO) arrived before the first topology: hold
 * it for `slot` (-1: any master) until one comes, or fail it with
 * -CLUSTERDOWN The cluster is down once the hold time from start is up. */
void hold_unrouted(struct worker *w, struct request *r, int slot, struct link_key key);
/* Route every held request again (held anew while its node is down or
 * there is no topology; failed there once its time is up); drop those
 * whose client left. */
void hold_pass(struct worker *w);
/* A -TRYAGAIN/-LOADING/-MASTERDOWN/-BUSY/-CLUSTERDOWN reply to r on l:
 * true if r was parked for a retry (the caller forgets the reply). */
bool hold_retry(struct link *l, struct request *r, const char *reply, size_t len);
/* A new request of a client with a retry not finished yet: true if r was
 * parked behind it (it runs after it, as on one Redis connection). */
bool hold_behind_retry(struct link *l, struct request *r);
/* r, which was retried, has its final reply: what waits behind it may go. */
void hold_retry_done(struct request *r);
/* Send the retries that are due, each with what was parked behind it. */
void retry_pass(struct worker *w);
/* Shutdown: fail every parked request. */
void hold_fail_all(struct worker *w, const char *err);
/* The command table flags of what r carries (0: unknown, or a MULTI
 * block) and the slot of its first key (-1: none). Parses r's bytes: for
 * the failure paths only. */
uint32_t request_flags(struct worker *w, const struct request *r, int *slot);
/* Safe to send twice (CMD_READONLY)? */
bool request_readonly(struct worker *w, const struct request *r, int *slot);
/* Links (link.c): the tick's health work, and the end of a batch. */
void link_revive_all(struct worker *w);
/* Clients (client.c): idle timeout and soft output limit, once a second. */
void client_scan(struct worker *w);

/* Reads from replicas (replica.c). */
/* The READONLY link for a read-only call of c (`ci`) to `slot`,
 * or NULL: the call goes to the slot's master as usual. */
struct link *replica_read_link(struct client *c, const struct command_info *ci, int slot);
/* SCAN of master `master`'s keys: the READONLY link of the replica to ask,
 * or NULL for the master; *check gets that node's cursor check bits. With
 * `cont` (a cursor's check bits) the node that handed that cursor out is
 * kept while it serves reads; *check != *cont means the shard restarts. */
struct link *replica_scan_link(struct client *c, unsigned master, const uint8_t *cont,
                               uint8_t *check);
/* r was on reader link l, which failed or answered a retryable error: it
 * is read-only, so it goes to its slot's master instead. */
void replica_fallback(struct link *l, struct request *r);
/* A new topology: reader links to replicas that are no longer healthy
 * give their in-flight reads to the masters. */
void replica_topology_changed(struct worker *w);
/* READONLY / READWRITE. */
void replica_command(struct client *c, size_t argc);
/* The control thread's replica health checks: probes replicas' INFO
 * replication while anyone may read from them, and publishes the healthy
 * ones in the topology. */
struct replica_health;
struct replica_health *replica_health_new(struct runtime *rt);
void replica_health_free(struct replica_health *h);
/* Probe if due; a topology to publish when the healthy set changed (the
 * caller sets its version), else NULL. *wait_ms: until the next round. */
struct cluster_topology *replica_health_check(struct replica_health *h, int *wait_ms);
/* Fill t's readers from the last probes (a topology about to be published). */
void replica_health_fill(const struct replica_health *h, struct cluster_topology *t);
/* The control thread's blocking client (control.c): a connection to addr,
 * authenticated like the links (TLS when --tls), or -1; one command's reply
 * by deadline. Close it with bconn_close (tlsglue.c). */
int control_dial(struct runtime *rt, const char *addr, int64_t deadline);
int control_call(struct runtime *rt, int fd, const char *cmd, struct resp_value *out, char **buf,
                 int64_t deadline);

/* Is cross-slot splitting on? Read through here, not cfg directly, so a
 * runtime change (PROXY CONFIG SET enable-cross-slot) only has to change
 * what this returns. */
static inline bool runtime_cross_slot(const struct worker *w)
{
    return w->cfg->enable_cross_slot; /* the runtime config snapshot */
}

/* INFO: `text` (the proxy's own sections, copied) followed by the masters'
 * summed INFO keyspace (fanout.c). */
void fanout_info(struct client *c, const char *text, size_t len);
/* A text reply: bulk string, or verbatim "txt" for a RESP3 client. */
void fanout_write_text(struct resp_buf *b, int proto, const char *text, size_t len);
/* A reply slot in c's FIFO that the caller completes later with
 * fanout_placeholder_done (a fan-out parent with no children, so a client
 * that leaves orphans it instead of freeing it). */
struct request *fanout_placeholder(struct client *c);
void fanout_placeholder_done(struct request *p, const char *data, size_t len);

/* Cross-worker requests (xworker.c): questions about every worker's
 * clients, asked of each worker through its inbox and gathered into the
 * asking client's reply, in request order. */
int xworker_init(struct worker *w);
void xworker_arm(struct worker *w);
/* Worker 0: hand a unix-socket client to the least-loaded worker (this
 * one included); fd is theirs from now on. */
void xworker_adopt(struct worker *w, int fd);
/* Any thread: make w's inbox read complete (a batch runs soon). */
void xworker_wake(struct worker *w);
void xworker_handle(struct worker *w, int res);
void xworker_destroy(struct worker *w);
/* CLIENT LIST [TYPE t] [ID id …] and CLIENT KILL (both forms), argv in
 * w->argv. */
void xworker_client_list(struct client *c, size_t argc);
void xworker_client_kill(struct client *c, size_t argc);
/* One CLIENT LIST line for c (no CRLF) appended to b. */
void client_info_line(struct client *c, struct resp_buf *b, const char *cmd);

#include "admin.h"
#include "metrics.h"

#endif
