/*
 * core/net — the connections of a worker and what travels on them:
 *
 *   struct worker    one per thread; owns its io, clients, links and
 *                    requests. No other thread touches them. Defined here,
 *                    the lowest layer that needs its fields; fields that
 *                    belong to upper layers are plain members of lower-layer
 *                    types (request lists, counters) or pointers to
 *                    incomplete types (xmsg, xgather, config_wait,
 *                    proxy_map).
 *   struct client    a client connection (client.c), owned by its worker
 *   struct link      a backend connection to one node (link.c)
 *   struct listener  an accepting socket (listen.c)
 *   struct request   one client command: owned by its client's FIFO while
 *                    the client lives, and also queued on at most one link;
 *                    freed when its reply has been delivered (or dropped
 *                    for an orphaned request whose client left). This layer
 *                    owns requests: creation, replies in order, freeing,
 *                    and what a request carries (request_flags, request.c).
 *   struct obuf      output waiting for a socket (obuf.c)
 *   struct auth_id   a backend identity other than the configured one
 *                    (auth.c)
 *
 * Every I/O goes through the worker's io (core/io/io.h): an io_op embedded
 * in the owning object, whose tag (enum op_kind) says which container_of
 * to apply to its completions.
 *
 * Layering: net/ includes only the bottom layer's headers (io/io.h, and
 * tls/tls.h for TLS) and the shared leaf headers (base.h, core.h, log.h,
 * metrics.h). What it must ask of the layers above (a client
 * parsed a command; a link got an error, a redirection or a pub/sub
 * confirmation; a fan-out child's reply; the backend credentials) goes
 * through struct net_hooks, which the worker installs at worker_create
 * (w->net_hooks): net never names a function of route/ or cmd/.
 */
#ifndef RINGSLOT_CORE_NET_H
#define RINGSLOT_CORE_NET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "../../cluster/cluster.h"
#include "../../config/config.h"
#include "../../resp/resp.h"
#include "../base.h"
#include "../core.h"
#include "../io/io.h"
#include "../log.h"
#include "../metrics.h"

struct fanout;          /* route/: a fan-out parent's children */
struct route_hooks;     /* route/: its calls upward (route.h) */
struct proxy_map;       /* consensus/ */

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

struct request {
    struct client *client;    /* NULL once the client has gone (orphan), and
                                 for fan-out children (see parent) */
    struct request *parent;   /* fan-out child: the request it answers for */
    struct fanout *fan;       /* fan-out parent: its children (owned) */
    struct worker *fan_worker; /* fan-out parent: its worker (set with fan),
                                 whose net_hooks free it and take its
                                 children's replies, orphaned or not */
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
    /* The command's table flags and the slot of its keys (-1: none), set by
     * dispatch for a parsed command; slot REQ_SLOT_UNKNOWN otherwise
     * (request_flags works them out from the bytes). Flags, not the table
     * entry: the table is a snapshot a queued request may outlive. */
    uint32_t cmd_flags;
    int slot;
    uint16_t metric;          /* metrics.c: the command's counter + 1, or 0 */
    int64_t t0_us;            /* metrics.c: batch time it arrived in */
    char inline_bytes[REQ_INLINE_BYTES];
};

enum link_state {
    LINK_IDLE,        /* no socket; connects when a request arrives */
    LINK_CONNECTING,
    LINK_READY,       /* its multishot recv is armed (or waits for buffers) */
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

/* A private link's place in its worker (a shared link stays LINK_IN_USE):
 *
 *   IN_USE  lent to a client (link_lend: a new link, or one from the pool)
 *   POOLED  given back clean and ready (link_giveback); link_lend takes it
 *   DOOMED  given back otherwise, or lost without an owner: closed, and
 *           freed once no op is in flight (link_reap). Never left.
 */
enum link_pool { LINK_IN_USE, LINK_POOLED, LINK_DOOMED };

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
    enum link_pool pool;      /* private: lent, pooled or doomed */
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
    bool recv_nobufs;         /* READY, recv ended with -ENOBUFS: armed again
                                 once buffers came back (link_rearm_nobufs) */
    struct link *dirty_next;  /* worker's list of links with unsent bytes */

    /* FIFO: [head, unsent) are written and await replies; [unsent, tail]
     * are not written yet. unsent_off: bytes of `unsent` already written. */
    struct request *head, *tail, *unsent;
    size_t unsent_off;
    size_t nqueued;

    /* the send in flight (io_send copies the array; the bytes stay) */
    struct iovec iov[LINK_SEND_IOV];

    /* replies: parsed in the provided buffer they arrive in; the bytes of
     * a reply not yet whole are copied to `in` ([in_off, in_len) pending)
     * until it is (link_input) */
    char *in;
    size_t in_len, in_cap, in_off;
    struct resp_reply_parser rp;
    /* PARSE: replies are parsed (above). STREAM: a large bulk string for
     * the FIFO head is passed on to its client as it arrives, not
     * gathered in `in`; stream_left bytes of it (the CRLF included) are
     * still to come (link.c, stream_start). */
    enum link_rx { LINK_RX_PARSE, LINK_RX_STREAM } rx;
    size_t stream_left;

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

/* CLIENT REPLY: whether the replies of a client's next requests are sent.
 *
 *   ON ──OFF──► OFF ──ON (or RESET)──► ON
 *   ON ──SKIP─► SKIP ──its next request──► ON      (SKIP while OFF: OFF)
 */
enum client_reply {
    CLIENT_REPLY_ON,
    CLIENT_REPLY_OFF,   /* none until CLIENT REPLY ON */
    CLIENT_REPLY_SKIP,  /* not the next request's */
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
    bool peer_eof;                   /* the client sent its FIN: nothing more
                                        to read; closed once the replies of
                                        what it sent before are out */
    bool flush_listed;
    struct client *flush_next;       /* worker's list of clients to flush */
    uint8_t held_rounds;             /* iterations its output was held back
                                        in a row (client_flush_all) */

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
    enum client_reply reply_mode;    /* CLIENT REPLY ON / OFF / SKIP */
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
/* A parsed command's arguments, handed to whoever handles it: slices into
 * the client's input (argv[i], lens[i]), valid while it is handled. */
struct cmd_args {
    size_t argc;
    const char *const *argv;
    const size_t *lens;
};

struct arg_scratch {
    const char **argv;
    size_t *lens;
    int *keys;
    size_t cap;
};
/* request.c: room for n arguments (aborts when out of memory, like every
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

/*
 * Calls from net/ to the layers above, installed by the worker
 * (worker_create fills w->net_hooks; every member is set). Each is the
 * function of the same name in route/ or cmd/; see their comments in
 * route/route.h and cmd/cmd.h.
 */
struct net_hooks {
    /* client.c: one parsed command (route: dispatch.c) */
    bool (*dispatch_command)(struct client *c, const char *buf);
    /* client.c: a fan-out child's reply, a parent freed (route: fanout.c) */
    void (*fanout_child_reply)(struct request *child, const char *data, size_t len);
    void (*fanout_free)(struct request *parent);
    /* client.c: a retried request has its final reply (route: hold.c) */
    void (*hold_retry_done)(struct request *r);
    /* link.c: lost links, error replies, revived links (route: hold.c,
     * dispatch.c, replica.c) */
    void (*hold_request)(struct link *l, struct request *r);
    bool (*hold_retry)(struct link *l, struct request *r, const char *reply, size_t len);
    bool (*hold_behind_retry)(struct link *l, struct request *r);
    void (*hold_pass)(struct worker *w);
    void (*dispatch_redirect)(struct link *from, struct request *r, const char *reply,
                              size_t len);
    void (*dispatch_note_block_redirect)(struct request *r, const char *reply, size_t len);
    void (*replica_fallback)(struct link *l, struct request *r);
    /* link.c: subscriber links (cmd: pubsub.c) */
    bool (*pubsub_is_message)(const char *data, size_t len);
    bool (*pubsub_reply_is_last)(struct link *l, struct request *r, const char *data,
                                 size_t len, char first);
    bool (*pubsub_client_count)(const struct link *l, const struct request *r,
                                const char *data, size_t len, struct resp_buf *out);
    void (*pubsub_settle)(struct client *c);
    /* link.c: the AUTH every new link sends first (cmd: admin.c) */
    const char *(*admin_backend_auth)(const struct runtime *rt, size_t *len);
    /* link.c: TLS on a new socket when --tls (root: tlsglue.c) */
    bool (*tls_link_attach)(struct worker *w, int fd, const char *addr);
};

struct worker {
    int id;
    struct auth_id *auths;           /* interned identities (auth.c) */
    struct runtime *rt;
    const struct net_hooks *net_hooks;     /* calls up from net/ (worker.c) */
    const struct route_hooks *route_hooks; /* calls up from route/ (worker.c) */
    const struct cmd_hooks *cmd_hooks;     /* calls up from cmd/ (worker.c) */
    struct worker_stats *stats;
    struct io *io;                   /* sockets, timers, wake-ups (owned) */
    struct listener listeners[LISTENERS_MAX]; /* listen.c */
    int nlisteners;
    struct io_op tick_op;
    unsigned ops;                    /* worker-level ops in flight */

    bool bufs_returned;              /* some buffer went back this batch */
    bool links_nobufs;               /* some link's recv hit -ENOBUFS */

    struct client *clients;
    struct client *need_rearm;       /* clients whose recv hit -ENOBUFS */
    struct client *flush_list;       /* clients with output to send */
    bool flush_held;                 /* some of them were held back: the
                                        next io_wait must not sleep */
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

    struct arg_scratch args;         /* storage of the command being
                                        dispatched (dispatch_one only: its
                                        handlers get a struct cmd_args) */

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
    /* xworker_adopt: clients handed to each worker in this batch, which its
     * count does not show until it adopts them (allocated at the first
     * handoff: [nworkers]) */
    uint32_t *adopt_sent;
    int64_t adopt_batch_us;
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
/* End of a batch in which buffers went back: arm the receives of links
 * that hit -ENOBUFS. */
void link_rearm_nobufs(struct worker *w);
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
/* Free doomed private links whose ops are done, and close links lost while
 * nothing was in flight (end of a loop iteration). */
void link_reap(struct worker *w);
void link_free_all(struct worker *w);

/* clients and requests (client.c) */
void client_accepted(struct worker *w, int fd);
void client_handle(struct worker *w, const struct io_event *ev);
void client_flush(struct client *c);
/* End of an iteration: flush every client on the flush list, except those
 * worth holding back one more iteration that does not sleep (may_hold, and
 * io_ready says completions are waiting; see client.c). True if some were
 * held: they stay listed, and the caller's next io_wait must not block. */
bool client_flush_all(struct worker *w, bool may_hold);
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
/* The client r answers to (a fan-out child's is its parent's), or NULL
 * once it has gone. */
struct client *request_client(const struct request *r);
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

/* Bytes a client whose input waits (dispatch_defer) may send meanwhile. */
#define DEFER_INPUT_MAX (1u << 20)
/* Append a request made elsewhere to the client's FIFO. */
void client_append(struct client *c, struct request *r);
/* The command table flags of what r carries (0: unknown, or a MULTI
 * block) and the slot of its first key (-1: none). Parses r's bytes: for
 * the failure paths only. */
#define REQ_SLOT_UNKNOWN (-3)
/* What dispatch knows of r's command (see struct request). */
void request_set_command(struct request *r, uint32_t flags, int slot);
uint32_t request_flags(struct worker *w, const struct request *r, int *slot);
/* Safe to send twice (CMD_READONLY)? */
bool request_readonly(struct worker *w, const struct request *r, int *slot);
/* Links (link.c): the tick's health work, and the end of a batch. */
void link_revive_all(struct worker *w);
/* Clients (client.c): idle timeout and soft output limit, once a second. */
void client_scan(struct worker *w);

#endif
