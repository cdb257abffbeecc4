/*
 * core/route — where a client's command goes: dispatch (dispatch.c: the
 * command table, MULTI blocks, private links, the answer to MOVED/ASK),
 * requests parked off the links (hold.c: held for a lost node, retried
 * after -TRYAGAIN & co.), fan-out to several nodes and the merge of their
 * replies (fanout.c), reads from replicas (replica.c), and this proxy's
 * own slots in cluster mode (clusterview.c: MOVED hints, the per-node
 * view).
 *
 * Invariants: a request is on at most one of a link's FIFO, the held list
 * or the retry list (r->lnext); requests of one slot leave in the order
 * they came; a fan-out parent is freed only once every child is in.
 *
 * Layering: route/ includes only net/net.h (and what it includes). What it
 * needs from cmd/ (the requirepass gate, the proxy's own commands, the
 * pub/sub state gate) goes through struct route_hooks, installed by the
 * worker (w->route_hooks). net/ reaches route through struct net_hooks.
 */
#ifndef RINGSLOT_CORE_ROUTE_H
#define RINGSLOT_CORE_ROUTE_H

#include <string.h>
#include <strings.h>

#include "../net/net.h"

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

/* Where a by-subcommand row sends its call. */
enum fan_target { FAN_MASTERS, FAN_NODES, FAN_FIRST_MASTER };

/* One subcommand the proxy fans out ("config set" → every node, +OK). */
struct proxy_subcommand {
    const char *name;   /* lower case */
    uint8_t merge;      /* enum merge_kind */
    uint8_t to;         /* enum fan_target */
};

/*
 * What the proxy knows about a command, in one row of cmd/commands.c's
 * table (sorted by name; every other layer asks it through the
 * proxy_command_lookup hook):
 *   fn      the proxy's own handler; NULL: the command is forwarded as
 *           usual and only the rows below apply
 *   merge   for the fan-out handlers: how the replies are combined
 *   split   cross-slot: keys every `split` arguments from the first (1:
 *           keys, 2: key/value pairs; 0: never split), children merged by
 *           split_merge
 *   subs    per subcommand: where it goes and how it merges (NULL-ended;
 *           a subcommand not listed is forwarded to any master)
 *   flags   PC_*
 */
struct proxy_command {
    const char *name; /* lower case */
    void (*fn)(struct client *c, const struct cmd_args *a);
    uint8_t merge;        /* enum merge_kind */
    uint8_t split;
    uint8_t split_merge;  /* enum merge_kind */
    uint8_t flags;
    const struct proxy_subcommand *subs;
};
#define PC_MULTI_CONTROL 1u /* acts on the transaction itself: never queued */
#define PC_REFUSED 2u       /* not supported by ringslot (rcp's list) */
/* Is argument i this lower-case word? Inline: with a literal word the
 * length is a constant, so a command of another length (most of them, on
 * every request's gates) costs one comparison and no call. */
static inline bool arg_is(const struct cmd_args *a, size_t i, const char *lower)
{
    size_t n = strlen(lower);
    return a->lens[i] == n && strncasecmp(a->argv[i], lower, n) == 0;
}

/* What dispatch does with the command a, given c's pub/sub state
 * (cmd/pubsub.c decides). */
enum pubsub_gate {
    PUBSUB_GO,     /* run it */
    PUBSUB_WAIT,   /* the state is changing: parse it again once settled */
    PUBSUB_REFUSE, /* RESP2 and subscribed: answered with Redis's error */
};

/*
 * Calls from route/ to cmd/, installed by the worker (worker_create fills
 * w->route_hooks; every member is set). Each is the function of the same
 * name in cmd/ (see cmd/cmd.h).
 */
struct route_hooks {
    bool (*admin_gate)(struct client *c, const char *buf, const struct cmd_args *a);
    const struct proxy_command *(*proxy_command_lookup)(const char *name, size_t len);
    enum pubsub_gate (*pubsub_gate)(struct client *c, const struct cmd_args *a);
    void (*pubsub_refuse)(struct client *c, const char *name);
    bool (*pubsub_is_subscribe_command)(const struct cmd_args *a);
    int (*pubsub_home_slot)(const struct cluster_topology *t);
};

/* fan-out (fanout.c) */
/* Cross-slot MGET/MSET/DEL/UNLINK/EXISTS/TOUCH split per slot; false if
 * the command is not splittable (the caller answers CROSSSLOT). */
bool fanout_split(struct client *c, const struct command_info *ci, const struct cmd_args *a);
/* The command (w->argv) to every master, merged as `kind`. */
void fanout_all_masters(struct client *c, const struct cmd_args *a, enum merge_kind kind);
/* The command to every node, replicas too (what must survive a failover:
 * ACL and CONFIG changes), merged as `kind`. */
void fanout_all_nodes(struct client *c, const struct cmd_args *a, enum merge_kind kind);
/* The command to the first master only (the same node every time, so
 * reads agree with each other), its reply passed through `kind`. */
void fanout_first_master(struct client *c, const struct cmd_args *a, enum merge_kind kind);
/* The command (w->argv) on each of these links. */
void fanout_to_links(struct client *c, const struct cmd_args *a, struct link **links, size_t n,
                     enum merge_kind kind);
/* One child per slot: argv with argument slot_arg replaced by the slot's
 * number, routed to the master serving it. n ≥ 1. */
void fanout_per_slot(struct client *c, enum merge_kind kind, const uint16_t *slots, size_t n,
                     int argc, const char **argv, int slot_arg);
/* SCAN with a cluster-wide cursor. */
void fanout_scan(struct client *c, const struct cmd_args *a);
/* A SCAN page's replica was lost with the request in flight: the shard
 * starts again on its master (see scan_first_page). */
void fanout_scan_fallback(struct request *child);
/* A child's reply arrived (called by request_reply). */
void fanout_child_reply(struct request *child, const char *data, size_t len);
void fanout_free(struct request *parent);
/* Encode argv[0, argc) with argv[0..prefix) replaced. */
struct request *request_from_args(struct worker *w, int argc, const char *const *argv,
                                  const size_t *lens);
/* Queue r on the link of the master that serves `slot` (or any master for
 * slot -1); answers CLUSTERDOWN itself when there is none. */
void route_to_slot(struct worker *w, struct request *r, int slot, struct link_key key);
/* Queue r on the link of topology node `node`. */
void route_to_node(struct worker *w, struct request *r, unsigned node, struct link_key key);

/* cluster mode: this proxy's own slots (clusterview.c) */
#define CLUSTER_MOVED_HINT_MS 5000
/* Answered -MOVED to the slot's owner proxy instead of served? */
bool clustermode_moved(struct client *c, int slot);
/* The map whose own slots bound this proxy's per-node view (DBSIZE, KEYS,
 * SCAN, RANDOMKEY) when that view is less than the keyspace (cluster mode
 * with other members), else NULL. */
const struct proxy_map *clustermode_own_view(const struct worker *w);
/* Does this master (topology index) serve a slot of that view? (SCAN
 * skips those that do not.) True outside such a view. */
bool clustermode_master_in_view(const struct worker *w, unsigned master);

/* dispatch (dispatch.c): one parsed command; false when it must wait for
 * the pub/sub state (not consumed: the caller keeps its bytes) */
bool dispatch_command(struct client *c, const char *buf);
/* Redis's "wrong number of arguments for '<argv[0] lower-cased>' command". */
void dispatch_wrong_arity(struct client *c, const struct cmd_args *a);
/* Forward w->argv on this link, in the client's FIFO. */
void dispatch_forward_on(struct client *c, const struct cmd_args *a, struct link *l);
/* Forward w->argv to any master. */
void dispatch_forward_any(struct client *c, const struct cmd_args *a);
/* Write the client's queued MULTI block. */
void dispatch_exec(struct client *c);
/* The command being dispatched needs a topology and none is loaded yet:
 * true if the client's input stops here, to be dispatched again once one
 * is (dispatch_resume); false once the hold time from startup is up or the
 * client has sent too much meanwhile (answer the error then). */
bool dispatch_defer(struct client *c);
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
void replica_command(struct client *c, const struct cmd_args *a);

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

#endif
