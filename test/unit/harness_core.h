/*
 * harness_core — one worker of the real proxy code (client, link, dispatch,
 * fan-out, hold) driven by a unit test on the fake io backend, with three
 * fake Redis Cluster masters answering its links in memory.
 *
 *   test ── h_cmd(client) ──► fake conn ──► worker_step ──► links ──► fake conn
 *     ▲                                                                  │
 *     └── h_reply(client) ◄── fake conn ◄── worker ◄── node_serve ◄──────┘
 *
 * The nodes own slots as the published topology says (h->owner can differ:
 * a node then answers -MOVED, as a real one after a migration), keep
 * strings and lists, and run MULTI/EXEC, WATCH, ASKING, BLPOP. A test can
 * script a node's next reply to a command instead (MOVED, ASK, TRYAGAIN,
 * pushes, large bulks), or mute a node (requests stay unanswered).
 *
 * Seeds: every harness takes one (RINGSLOT_SEED overrides it); the H_*
 * assertions print it on failure, and so does a sanitizer's report, so a
 * run can be repeated exactly. RINGSLOT_HDEBUG=1 prints the proxy's log
 * and every command a fake node runs.
 */
#ifndef RINGSLOT_TEST_HARNESS_CORE_H
#define RINGSLOT_TEST_HARNESS_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../core/runtime.h"

#define H_NODES 3
#define H_MAX_FDS 1024

struct h_kv {
    struct h_kv *next;
    char *key, *val;
    size_t klen, vlen;
    bool is_list;       /* a list: items[0, nitems), head first */
    char **items;
    size_t nitems;
};

struct h_script {
    struct h_script *next;
    char cmd[32];       /* lower case; "" = any command but ASKING */
    char *reply;
    size_t len;
};

struct h_node {
    char addr[32];
    struct h_kv *kv;
    struct h_script *scripts; /* FIFO */
    bool muted;               /* requests are read, not answered */
    unsigned requests;        /* commands seen (all connections) */
};

/* A node's view of one connection from the proxy. */
struct h_nconn {
    bool used;
    uint64_t conn;            /* io_fake_conn_id: a new one on the fd resets */
    int node;
    struct resp_req_parser p;
    bool asking, multi, multi_err;
    bool multi_asking;        /* ASKING came before MULTI: it holds for the
                                 block, as in Redis (resetClient) */
    struct resp_buf queued;   /* MULTI: the commands, to run at EXEC */
    unsigned nqueued;
    char blocked[64];         /* BLPOP waiting on this key ("" = none) */
    struct resp_buf muted_in; /* requests read while the node was muted */
    char chans[16][32];       /* SUBSCRIBE: channels of this connection */
    int nchans;
};

struct harness {
    uint64_t seed;
    struct config cfg;
    struct runtime rt;
    struct worker *w;
    struct io *io;
    int listener;
    struct h_node nodes[H_NODES];
    uint16_t owner[CLUSTER_SLOTS]; /* which node really serves a slot */
    struct h_nconn nconns[H_MAX_FDS];
    uint64_t topo_version;
    struct h_script *canned;
};

/* RINGSLOT_SEED, else `seed`. */
uint64_t h_seed(uint64_t seed);
/* Build runtime + worker (fake io, seeded), publish the 3-master topology.
 * tune (may be NULL) adjusts the config first. */
void h_setup(struct harness *h, uint64_t seed, void (*tune)(struct config *));
/* The same with no topology published yet (h_publish later). */
void h_setup_bare(struct harness *h, uint64_t seed, void (*tune)(struct config *));
void h_teardown(struct harness *h);
/* Publish a topology from h->owner (slot → node; CLUSTER_NO_NODE for none). */
void h_publish(struct harness *h);

/* A connected client (accepted by the worker); its fd. */
int h_client(struct harness *h);
/* Feed a command (argv) or raw bytes to a client. */
void h_cmdv(struct harness *h, int fd, int argc, const char **argv);
#define h_cmd(h, fd, ...) \
    h_cmdv(h, fd, sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *), \
           (const char *[]){__VA_ARGS__})
void h_raw(struct harness *h, int fd, const char *bytes, size_t len);
/* Step the worker and serve the nodes until nothing moves. */
void h_run(struct harness *h);
/* Advance virtual time by ms (ticks fire every 100 ms), running meanwhile. */
void h_advance(struct harness *h, int64_t ms);
/* The next complete reply the client got (malloc'd, NUL-terminated), or
 * NULL if none is complete. */
char *h_reply(struct harness *h, int fd);
/* Unread output bytes of a client. */
size_t h_pending(struct harness *h, int fd);

/* The node's next reply to cmd (lower case; "" any; "get k": GET of k
 * only) is `reply` verbatim. */
void h_script(struct harness *h, int node, const char *cmd, const char *reply, size_t len);
#define h_script_s(h, node, cmd, reply) h_script(h, node, cmd, reply, strlen(reply))
/* Forget every node's scripted replies not used yet. */
void h_script_clear(struct harness *h);
/* Every node answers cmd ("name" or "name sub", lower case) with reply,
 * for the rest of the test (commands the fake does not implement). */
void h_canned(struct harness *h, const char *cmd, const char *reply);
/* Forget what a muted node read (never answered). */
void h_forget(struct harness *h, int node);
/* Bytes from node i on the proxy's first connection to it. */
void h_link_feed(struct harness *h, int node, const char *bytes, size_t len);
/* Muted: the node reads requests but answers none until unmuted (then all,
 * in order). */
void h_mute(struct harness *h, int node, bool muted);
/* The proxy's connected fds to node i (at most max). */
int h_node_fds(struct harness *h, int node, int *fds, int max);
/* Reset every connection to node i (the next recv fails with err). */
void h_node_reset(struct harness *h, int node, int err);
/* A key whose slot node i owns (from a fixed list, the nth such); the
 * string stays valid for the next 63 calls. */
const char *h_key_on(struct harness *h, int node, int nth);
/* Set/get a string directly in a node. */
void h_node_set(struct harness *h, int node, const char *key, const char *val);
const char *h_node_get(struct harness *h, int node, const char *key);

/* Fail with the seed printed when the client's next reply is not `want`. */
#define H_EXPECT(h, fd, want) h_expect(h, fd, want, __FILE__, __LINE__)
void h_expect(struct harness *h, int fd, const char *want, const char *file, int line);
#define H_CHECK(h, cond) \
    do { \
        if (!(cond)) \
            h_fail(h, #cond, __FILE__, __LINE__); \
    } while (0)
void h_fail(struct harness *h, const char *what, const char *file, int line);

#endif
