/*
 * consensus — cluster mode: several ringslot processes in front of the same
 * backend present themselves to clients as one Redis Cluster whose nodes are
 * the proxies (DESIGN §5, issue 5).
 *
 * Three layers, from pure to threaded:
 *
 *   1. The proxy slot map (slotmap.c, pure): members (40-hex id, announced
 *      ip:port, cport) and slot → member for all 16384 slots, versioned by
 *      (term, version). proxy_map_assign() recomputes it for a new set of
 *      live members moving the minimum number of slots: a join takes only
 *      the newcomer's fair share from the most loaded members, a leave
 *      spreads only the leaver's slots over the survivors. Which slots move
 *      is chosen to keep ranges few (whole small ranges first, growing
 *      existing ranges at their edges); when churn still leaves a member
 *      with more than 2 × members ranges, proxy_map_defrag() swaps a few
 *      small ranges between neighbours (bounded extra moves, only then).
 *      Text serialisation for the lease store and the cport.
 *
 *   2. Replies clients see (reply.c, pure): CLUSTER SLOTS / SHARDS / NODES /
 *      INFO / MYID in Redis 7's formats, written from a published map into a
 *      resp_buf by the workers; consensus_slot_owner() for MOVED hints; a
 *      one-node map for outside cluster mode.
 *
 *   3. The protocol (node.c, rconn.c, cport.c; its own thread): leader lease
 *      in Redis (the backend cluster, key routed by following MOVED, or
 *      --lease-redis), terms that only grow, the map stored with a
 *      compare-and-set on (leader, term), a RESP server on the cport
 *      (AUTH first) for heartbeats, joins, leaves, map pulls and operators'
 *      PROXY CLUSTER MEMBERS|LEADER|MAP, and the leader's parallel probes.
 *      Everything is non-blocking in one poll() loop, so heartbeats never
 *      wait behind a topology refresh or a slow lease store.
 *
 *   consensus thread                          core
 *   ----------------                          ----
 *   accepts a newer (term, version) map ──► publish(arg, map)  (map is a
 *                                             fresh heap object, owned by
 *                                             the callee from then on; free
 *                                             it with proxy_map_free)
 *
 * The publish hook runs on the consensus thread. DESIGN §2 lets only the
 * control thread publish snapshots, so core's callback should hand the map
 * over (atomic exchange into a "pending" pointer, freeing a map it replaces,
 * plus a write to the control eventfd) and the control thread then calls
 * snapshot_publish(SLOT_PROXYMAP). Workers read the map only through that
 * snapshot. consensus sees the backend only through cluster/cluster.h (key
 * slots) and plain RESP replies (it follows -MOVED for the lease keys).
 */
#ifndef RINGSLOT_CONSENSUS_H
#define RINGSLOT_CONSENSUS_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../cluster/cluster.h"
#include "../config/config.h"
#include "../resp/resp.h"

#define PROXY_MAP_MAX_MEMBERS 128 /* n·(n-1) ≤ 16384 keeps leaves minimal */
#define PROXY_ID_LEN 40
#define PROXY_IP_MAX 46           /* INET6_ADDRSTRLEN */
#define PROXY_NO_OWNER 0xffff

struct proxy_member {
    char id[PROXY_ID_LEN + 1];    /* 40 lower-case hex digits */
    char ip[PROXY_IP_MAX];        /* announced to clients */
    uint16_t port;                /* announced client port */
    uint16_t cport;               /* cluster port (same ip) */
};

struct proxy_map {
    uint64_t term;                /* leader term that produced it */
    uint64_t version;             /* grows with every map; config epoch */
    size_t nmembers;
    struct proxy_member members[PROXY_MAP_MAX_MEMBERS]; /* sorted by id */
    uint16_t owner[CLUSTER_SLOTS]; /* member index or PROXY_NO_OWNER */
    /* Local view, not serialised: who "myself" is for CLUSTER NODES/MYID. */
    struct proxy_member me;
    int self;                     /* index of `me` in members, or -1 */
};

struct proxy_range {
    uint16_t start, end;          /* inclusive */
    uint16_t owner;               /* member index or PROXY_NO_OWNER */
};

/* ------------------------------------------------------------------------ */
/* Slot map (pure)                                                          */

/* A map with one member owning every slot, (term, version) = (0, 0). */
void proxy_map_init_single(struct proxy_map *m, const struct proxy_member *only);
/* A heap copy (NULL on OOM) / free one. */
struct proxy_map *proxy_map_dup(const struct proxy_map *m);
void proxy_map_free(struct proxy_map *m);
/* Index of the member with this id, or -1. */
int proxy_map_find(const struct proxy_map *m, const char *id);
/* Sets m->me and m->self (by id). */
void proxy_map_set_self(struct proxy_map *m, const struct proxy_member *me);

/*
 * Recompute the map for the live members `live` (any order, distinct ids,
 * 1..PROXY_MAP_MAX_MEMBERS of them) into *out: out->members = live sorted
 * by id; every slot owned by a live member; counts within one slot of each
 * other (the extra slots go to the members that already hold the most,
 * ties to the lower id). Slots of a departed member, and the excess of
 * members above their share, are the only slots that move. term, version,
 * me are copied from old; self is recomputed. out may not alias old.
 * Returns the number of slots whose owner changed, or -1 on bad input.
 */
int proxy_map_assign(const struct proxy_map *old, const struct proxy_member *live,
                     size_t nlive, struct proxy_map *out);
/* Same, starting from old's members plus `m` (or minus `id`). */
int proxy_map_join(const struct proxy_map *old, const struct proxy_member *m,
                   struct proxy_map *out);
int proxy_map_leave(const struct proxy_map *old, const char *id, struct proxy_map *out);

/*
 * Defragmentation, for the leader after an assign: while a member owns more
 * than max_ranges ranges, swap its smallest range with an equal piece of a
 * neighbour's (counts unchanged, nobody gains a range), spending at most
 * `budget` extra moved slots. Returns the slots moved (0 when no member is
 * above max_ranges: then nothing moves), -1 on OOM.
 */
int proxy_map_defrag(struct proxy_map *m, unsigned max_ranges, unsigned budget);
/* What the leader uses: 2 × members ranges, 1/16 of a share per change. */
#define PROXY_MAP_RANGE_LIMIT(n) (2u * (unsigned)(n))
#define PROXY_MAP_DEFRAG_BUDGET(n) (CLUSTER_SLOTS / (16u * (unsigned)(n)) + 2u)

/* Ranges in slot order into out (at most max); returns how many exist. */
size_t proxy_map_ranges(const struct proxy_map *m, struct proxy_range *out, size_t max);
/* Slots owned by member idx / ranges it owns. */
unsigned proxy_map_count(const struct proxy_map *m, unsigned idx);
unsigned proxy_map_member_ranges(const struct proxy_map *m, unsigned idx);
/* (a.term, a.version) > (b.term, b.version) */
bool proxy_map_newer(const struct proxy_map *a, const struct proxy_map *b);

/* Text form: "ringslot-map 1 <term> <version> <n>\n", then n lines
 * "<id> <ip> <port> <cport>\n", then "<start>-<end>=<idx>" ranges separated
 * by ' ', then "\n". Decoding validates everything (it comes off the wire)
 * and leaves out->me/self cleared. Returns 0 or -1. */
void proxy_map_encode(const struct proxy_map *m, struct resp_buf *out);
int proxy_map_decode(const char *buf, size_t len, struct proxy_map *out);

/* A random 40-hex id (from getrandom). */
void proxy_id_random(char out[PROXY_ID_LEN + 1]);
bool proxy_id_valid(const char *s, size_t len);

/* ------------------------------------------------------------------------ */
/* What clients see (pure writers; proto is the client's RESP version)      */

/* Member owning a slot (NULL if none). */
const struct proxy_member *consensus_slot_owner(const struct proxy_map *m, unsigned slot);
/* Is the slot this proxy's own (m->self)? */
bool consensus_owns_slot(const struct proxy_map *m, unsigned slot);
void consensus_reply_cluster_slots(const struct proxy_map *m, int proto, struct resp_buf *b);
void consensus_reply_cluster_shards(const struct proxy_map *m, int proto, struct resp_buf *b);
void consensus_reply_cluster_nodes(const struct proxy_map *m, int proto, struct resp_buf *b);
void consensus_reply_cluster_info(const struct proxy_map *m, int proto, struct resp_buf *b);
void consensus_reply_cluster_myid(const struct proxy_map *m, int proto, struct resp_buf *b);
/* "-MOVED <slot> <ip>:<port>" (without the CRLF-terminated framing: a
 * complete error line is appended). Returns false when nobody owns it. */
bool consensus_reply_moved(const struct proxy_map *m, unsigned slot, struct resp_buf *b);

/*
 * Outside cluster mode: a heap map where this proxy (ip:port, a random or
 * node-id-file id) owns every slot. ip NULL or "0.0.0.0"/"::" → 127.0.0.1.
 */
struct proxy_map *consensus_single_map(const struct config *cfg, const char *ip, int port);
/* The id in a --node-id-file (first line, 40 hex); false if none/invalid. */
bool consensus_read_id_file(const char *path, char out[PROXY_ID_LEN + 1]);

/* ------------------------------------------------------------------------ */
/* The consensus thread                                                     */

struct consensus;

/*
 * A byte-stream transform for the consensus thread's sockets (TLS: core
 * implements it; consensus only moves bytes). Every call is non-blocking,
 * on the consensus thread.
 */
struct consensus_stream {
    /* A connected socket to another proxy's cluster port (lease false) or
     * to the lease store (lease true): 0 with *h (NULL: stays plain), or
     * -1 (close it). */
    int (*client)(void *arg, int fd, const char *host, int port, bool lease, void **h);
    /* An accepted cluster-port socket: as client. */
    int (*server)(void *arg, int fd, void **h);
    /* As send(2) and recv(2) on a non-blocking socket: bytes, 0 for EOF
     * (recv), -1 with errno (EAGAIN: poll again). send of 0 bytes moves
     * the stream's own waiting bytes (0 or -1). */
    ssize_t (*send)(void *h, int fd, const void *buf, size_t len);
    ssize_t (*recv)(void *h, int fd, void *buf, size_t cap);
    /* The poll events to ask for when the owner wants `want`. */
    short (*events)(void *h, short want);
    void (*close)(void *h, int fd);
};

/* What core hands to consensus_start. Every hook runs on the consensus
 * thread. */
struct consensus_hooks {
    /* Each newly accepted map; the callee owns it (proxy_map_free). The
     * first call (the one-member map) happens inside consensus_start, on
     * the caller's thread; later ones on the consensus thread. */
    void (*publish)(void *arg, struct proxy_map *map);
    /* One log line (no newline); NULL = silent. */
    void (*log)(void *arg, enum log_level level, const char *msg);
    /* Called first on the new thread (e.g. to name it for the log). */
    void (*thread_init)(void *arg);
    /* TLS for the cluster port and the lease store; NULL: all plain. */
    const struct consensus_stream *stream;
    void *arg;
};

/*
 * Start cluster mode: load or create the node id (--node-id-file), bind the
 * cport, publish the initial one-member map (this proxy owns everything
 * until it learns the cluster's map), and start the thread. Returns NULL
 * with a message in err on failure (cport in use, unwritable id file).
 * cfg must outlive consensus_stop.
 */
struct consensus *consensus_start(const struct config *cfg,
                                  const struct consensus_hooks *hooks,
                                  char *err, size_t errlen);
/* This proxy's node id (stable for the process's life). */
const char *consensus_node_id(const struct consensus *c);
/*
 * Graceful leave (SIGTERM): tell the leader (or, as leader, hand over:
 * publish a map without us, store it, release the lease), then wait until a
 * map that excludes us has been published, at most timeout_ms. Returns 0
 * when it was, -1 on timeout. The thread keeps running (the cport keeps
 * answering) until consensus_stop.
 */
int consensus_leave(struct consensus *c, int timeout_ms);
/* Stop the thread, close sockets, free. NULL is fine. */
void consensus_stop(struct consensus *c);

/* The process's one clock: CLOCK_MONOTONIC in microseconds, and in
 * milliseconds (the _us value / 1000). Here because consensus is the lowest
 * module that reads time; core's clock_ms and the workers' per-batch
 * reading call these. */
int64_t consensus_clock_us(void);
int64_t consensus_clock_ms(void);

#endif
