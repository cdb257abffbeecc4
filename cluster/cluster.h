/*
 * cluster — what ringslot knows about the backend Redis Cluster, as pure data.
 *
 *   - Hash slots: CRC16 (XMODEM) of the key, or of its first non-empty
 *     {hash tag}, modulo 16384, exactly as Redis computes it.
 *   - Topology: nodes (masters and their replicas) and the slot → master
 *     table, built from a parsed CLUSTER SLOTS reply, or from several
 *     nodes' CLUSTER NODES views merged by config epoch (what the control
 *     thread uses: it settles conflicting views as Redis Cluster does). A
 *     topology is immutable once built; the control thread publishes it as
 *     a snapshot and workers only read it.
 *   - Command table: arity, flags and key positions of every command, from
 *     a built-in table of Redis 7.0's commands (so ringslot can route before
 *     the backend answers) or from the backend's own COMMAND reply (Redis 7
 *     key specs, subcommands included, so new commands and modules just
 *     work). Also immutable once built.
 *
 * No I/O here: the control thread fetches the replies and hands them in.
 */
#ifndef RINGSLOT_CLUSTER_H
#define RINGSLOT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../resp/resp.h"

#define CLUSTER_SLOTS 16384

uint16_t cluster_crc16(const char *buf, size_t len);
/* Slot of a key, with {hash tag} rules. */
unsigned cluster_keyslot(const char *key, size_t len);

/* ------------------------------------------------------------------------ */
/* Text (text.c)                                                            */

/*
 * Split "host:port" into host (NUL-terminated, the NUL within host_len) and
 * port. The host is an IPv6 address in brackets ("[::1]:6379", brackets
 * dropped), or else everything before the last ':' — so a bare IPv6
 * address passes too ("::1:6379": Redis writes MOVED targets so, and the
 * consensus lease holds the leader's address so). It may be empty
 * (":6379"): what that means is the caller's business, as is refusing a
 * bare IPv6 address. The port is decimal digits, 1..65535. False, with
 * host and *port untouched, for a missing or bad port, "[]" or a bracket
 * not closed by "]:", or a host that does not fit.
 */
bool cluster_addr_split(const char *addr, char *host, size_t host_len, int *port);

/* Copy src[0..len) to dst in lower case, at most size - 1 bytes (size > 0),
 * and end it with a NUL; returns the bytes copied. ASCII only, whatever the
 * locale, as Redis folds command names. dst may be src. */
size_t cluster_lower(char *dst, size_t size, const char *src, size_t len);

/* The value of the line "name:value" in INFO text[0..len) (its CR
 * dropped), into out with a NUL; false (out empty) if there is no such
 * line or the value does not fit in cap - 1 bytes. */
bool cluster_info_field(const char *text, size_t len, const char *name, char *out,
                        size_t cap);

/* ------------------------------------------------------------------------ */
/* Topology                                                                 */

#define CLUSTER_NO_NODE 0xffff
#define CLUSTER_ADDR_MAX 64 /* "host:port" text, NUL-terminated */
#define CLUSTER_VERSION_MAX 24 /* "7.0.15", NUL-terminated */
#define CLUSTER_READERS_MAX 8 /* replicas of one master that serve reads */

struct cluster_node {
    char addr[CLUSTER_ADDR_MAX]; /* "ip:port" as the cluster announces it
                                    (IPv6 as "[::1]:port") */
    char host[CLUSTER_ADDR_MAX - 8]; /* ip alone, for connect() */
    uint16_t port;
    char id[41];                 /* node id, "" when the reply has none */
    bool is_master;
    uint16_t master;             /* index of its master (replicas only) */
    /* Masters: their replicas that may serve reads now (in sync, within
     * the lag limit). The parsers leave it empty; the proxy's control
     * thread fills it in before it publishes a topology. */
    uint8_t nreaders;
    uint16_t readers[CLUSTER_READERS_MAX]; /* node indexes */
};

struct cluster_topology {
    size_t nnodes;
    struct cluster_node *nodes;        /* owned; masters first */
    size_t nmasters;
    uint16_t slot_master[CLUSTER_SLOTS]; /* node index or CLUSTER_NO_NODE */
    uint64_t version;                  /* set by the publisher, grows */
    /* What the publisher learned from the nodes themselves (0 / "" until
     * known; the parsers leave them so): */
    int node_timeout_ms;               /* their cluster-node-timeout (the
                                          largest reported) */
    char redis_version[CLUSTER_VERSION_MAX]; /* the lowest redis_version
                                                among the masters */
};

/*
 * Build a topology from a CLUSTER SLOTS reply. Nodes are de-duplicated by
 * address. A node entry whose ip is empty means "the address you asked"
 * (Redis does this for a node that does not know its own ip): `asked_host`
 * fills it in. Returns NULL and sets *err (static text) on a malformed reply.
 */
struct cluster_topology *cluster_topology_from_slots(const struct resp_value *reply,
                                                     const char *asked_host,
                                                     const char **err);
void cluster_topology_free(struct cluster_topology *t);
/* A deep copy of t (version included), or NULL when out of memory. */
struct cluster_topology *cluster_topology_dup(const struct cluster_topology *t);
/* Index of the node with this "ip:port" address, or CLUSTER_NO_NODE. */
unsigned cluster_topology_find(const struct cluster_topology *t, const char *addr);
/* Number of slots that have a master. */
unsigned cluster_topology_covered(const struct cluster_topology *t);
/* Does the master at index `master` have a replica in t (one that could
 * take over: replicas flagged fail are not in a topology)? */
bool cluster_topology_has_replica(const struct cluster_topology *t, unsigned master);

/* Compare two Redis version strings ("7.0.15") number by number, as
 * strcmp does (<0, 0, >0); a missing part counts as 0. */
int cluster_version_cmp(const char *a, const char *b);

/* ------------------------------------------------------------------------ */
/* Topology views (CLUSTER NODES)                                          */

/*
 * CLUSTER NODES views and how the control thread merges them into one
 * topology (nodes.c).
 *
 * CLUSTER SLOTS says who serves what but not how fresh that knowledge is;
 * during a failover or a reshard two nodes can disagree for a while.
 * CLUSTER NODES carries each master's config epoch, and Redis Cluster
 * itself settles a conflict for a slot in favour of the higher epoch: the
 * merge does the same across the views the control thread gathered.
 *
 *   view 1 ─┐   per slot: the claim with the highest epoch wins (ties: the
 *   view 2 ─┼─► earlier view); per node: the record from the view that
 *   …      ─┘   knows it with the highest epoch ─► CLUSTER SLOTS-shaped
 *                value ─► cluster_topology_from_slots()
 *
 * Masters flagged `fail` keep their slots (as in CLUSTER SLOTS): whether a
 * node answers is the workers' business, and they hold requests for it for
 * --cluster-down-timeout. Replicas flagged `fail`, and nodes in handshake
 * or without an address, are left out.
 */
struct nodes_view; /* one node's CLUSTER NODES reply, parsed; opaque */

/* Parse the text of a CLUSTER NODES reply. asked_host stands in for an
 * empty ip (a node that does not know its own address yet). Returns NULL
 * and sets *err (static text) on malformed input. */
struct nodes_view *nodes_view_parse(const char *text, size_t len, const char *asked_host,
                                    const char **err);
void nodes_view_free(struct nodes_view *v);
/* How many slots the view assigns. */
unsigned nodes_view_covered(const struct nodes_view *v);

/* Merge n ≥ 1 views (earlier views win ties) into a new topology, or NULL
 * and *err. */
struct cluster_topology *nodes_merge(struct nodes_view *const *views, size_t n,
                                     const char **err);


/* ------------------------------------------------------------------------ */
/* Command table                                                            */

/* Flags from Redis's COMMAND reply that routing cares about. */
enum cmd_flag {
    CMD_WRITE = 1u << 0,
    CMD_READONLY = 1u << 1,
    CMD_BLOCKING = 1u << 2,     /* may block (BLPOP, XREAD BLOCK …) */
    CMD_NOSCRIPT = 1u << 3,
    CMD_PUBSUB = 1u << 4,
    CMD_MOVABLE_KEYS = 1u << 5, /* key positions depend on the arguments */
    CMD_ADMIN = 1u << 6,
    CMD_NO_KEYS_ALL_NODES = 1u << 7, /* reserved for the proxy's own table */
};

/* One Redis 7 key spec (COMMAND DOCS / COMMAND INFO "key_specs"). */
enum keyspec_begin { KS_BEGIN_INDEX, KS_BEGIN_KEYWORD, KS_BEGIN_UNKNOWN };
enum keyspec_find { KS_FIND_RANGE, KS_FIND_KEYNUM, KS_FIND_UNKNOWN };
/* Added: the key-spec flags that change how keys are found. */
enum keyspec_flag {
    KS_FLAG_INCOMPLETE = 1u << 0,     /* may miss keys: the command's own
                                         key finder decides (MIGRATE KEYS) */
    KS_FLAG_NOT_KEY = 1u << 1,        /* a sharded channel, routed like a key */
    KS_FLAG_VARIABLE_FLAGS = 1u << 2, /* key access flags vary (SET GET) */
};

struct keyspec {
    enum keyspec_begin begin;
    int index;               /* KS_BEGIN_INDEX: argv position */
    const char *keyword;     /* KS_BEGIN_KEYWORD: search this (case-insens.) */
    int startfrom;           /*   from here; negative counts from the end */
    enum keyspec_find find;
    int lastkey, keystep, limit;          /* KS_FIND_RANGE */
    int keynumidx, firstkey, keynumstep;  /* KS_FIND_KEYNUM */
    uint32_t flags;          /* added: enum keyspec_flag */
};

struct command_info {
    const char *name;        /* lower case; "object|encoding" for subcommands */
    int arity;               /* Redis's: -N means at least N */
    uint32_t flags;          /* enum cmd_flag */
    int first_key, last_key, key_step; /* legacy range, used when there are
                                          no key specs */
    size_t nspecs;
    const struct keyspec *specs;
    size_t nsubcommands;
    const struct command_info *subcommands; /* matched on argv[1] */
};

struct command_table; /* immutable after build; opaque */

/* The built-in table (Redis 7.0's commands), built once, never freed. */
const struct command_table *command_table_builtin(void);
/* Build from a parsed COMMAND reply (Redis 7 format; Redis 6's shorter
 * entries without key specs are accepted too). NULL + *err on bad input. */
struct command_table *command_table_from_reply(const struct resp_value *reply,
                                               const char **err);
void command_table_free(struct command_table *t);
size_t command_table_size(const struct command_table *t); /* top-level commands */
/* The i-th top-level command, i < command_table_size (PROXY COMMAND). */
const struct command_info *command_table_at(const struct command_table *t, size_t i);

/*
 * Look up argv[0] (and argv[1] for commands with subcommands), case
 * insensitive, without allocating. Returns NULL for an unknown command.
 */
const struct command_info *command_lookup(const struct command_table *t,
                                          int argc, const char *const *argv,
                                          const size_t *lens);
/* Redis's arity rule. */
bool command_arity_ok(const struct command_info *c, int argc);

/*
 * Positions of the keys of this call, in argv order, into keys[] (at most
 * max). Returns how many, or -1 when the arguments are malformed for the key
 * spec (e.g. numkeys larger than argc): the backend will answer that call
 * with its own error, so route it anywhere.
 * (Added notes:) positions are distinct argv indexes, so max >= argc is
 * always enough; a smaller array that cannot hold them all also gives -1.
 * Sharded pub/sub channels ("not_key" specs: SPUBLISH, SSUBSCRIBE) are
 * returned as keys, since they are routed by slot the same way.
 */
int command_key_positions(const struct command_info *c, int argc,
                          const char *const *argv, const size_t *lens,
                          int *keys, int max);

/* ------------------------------------------------------------------------ */
/* SCAN cursors (scan_cursor.c)                                             */

/*
 * The cursor a client sees when ringslot walks every master in turn. It
 * stays at or below 2^53 - 1, the largest integer a double (a JavaScript
 * number) holds exactly: node-redis and ioredis parse cursors as numbers.
 *
 *   bit 52 ......... 48 47 ........ 40 39 ......................... 0
 *       check (5 bits)  shard (8 bits)  the node's own cursor (40 bits)
 *
 *   shard  which master, in the topology's master order (0 starts a scan)
 *   check  hash of the address and id of the node that handed the node
 *          cursor out (the master, or one of its replicas with replica
 *          reads): a cursor is never continued on another node
 *   node   that node's own SCAN cursor. Redis's cursor stays below its
 *          table size (Redis 7.4+/Valkey: per-slot tables, cursor = table
 *          cursor << 14 | slot), so 40 bits hold a node of ~2^39 keys, or
 *          2^26 keys in one slot of a 7.4+ node. A larger node cursor is
 *          refused (scan_cursor_encode fails), never truncated.
 *
 * Pure functions; the fan-out that uses them is core/route/fanout.c.
 */
#define SCAN_CURSOR_NODE_BITS 40
#define SCAN_CURSOR_SHARD_BITS 8
#define SCAN_CURSOR_CHECK_BITS 5
#define SCAN_CURSOR_MAX_SHARDS (1u << SCAN_CURSOR_SHARD_BITS)
#define SCAN_CURSOR_NODE_MAX ((1ull << SCAN_CURSOR_NODE_BITS) - 1)
#define SCAN_CURSOR_MAX ((1ull << 53) - 1)

struct scan_cursor {
    unsigned shard;     /* < SCAN_CURSOR_MAX_SHARDS */
    uint8_t check;      /* < 1 << SCAN_CURSOR_CHECK_BITS */
    uint64_t node;      /* <= SCAN_CURSOR_NODE_MAX */
};

/* Split a client's cursor; false if it is above SCAN_CURSOR_MAX (not one
 * ringslot handed out). */
bool scan_cursor_decode(uint64_t cursor, struct scan_cursor *out);
/* Pack c; false if a field does not fit (a node cursor past 40 bits). */
bool scan_cursor_encode(const struct scan_cursor *c, uint64_t *out);
/* The check bits of a node (its address and node id). */
uint8_t scan_cursor_check(const char *addr, const char *id);

#endif
