/*
 * test_client_link.c — client.c and link.c on the fake io backend
 * (harness_core.h): replies and requests split at every byte, partial
 * sends both ways, resets with requests in flight, orphans, backpressure,
 * connect failures, injected errors. RINGSLOT_SEED overrides the seeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_core.h"

static void test_get_set(void **state)
{
    struct harness h;
    h_setup(&h, 1, NULL);
    int c = h_client(&h);
    h_cmd(&h, c, "SET", "foo", "bar");
    h_cmd(&h, c, "GET", "foo");
    h_cmd(&h, c, "PING");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "$3\r\nbar\r\n");
    H_EXPECT(&h, c, "+PONG\r\n");
    h_teardown(&h);
}

/* A reply as the node sends it, cut at byte k: nothing reaches the client
 * before the last byte, then exactly the reply. */
static void reply_split_at_every_byte(const char *reply, size_t len)
{
    struct harness h;
    h_setup(&h, 2, NULL);
    int c = h_client(&h);
    const char *key = h_key_on(&h, 0, 0);
    for (size_t k = 1; k < len; k++) {
        h_mute(&h, 0, true);
        h_cmd(&h, c, "GET", key);
        h_run(&h);
        h_forget(&h, 0);
        h_link_feed(&h, 0, reply, k);
        h_run(&h);
        H_CHECK(&h, h_pending(&h, c) == 0);
        h_link_feed(&h, 0, reply + k, len - k);
        h_mute(&h, 0, false);
        h_run(&h);
        char *got = h_reply(&h, c);
        H_CHECK(&h, got && strlen(got) == len && memcmp(got, reply, len) == 0);
        free(got);
    }
    h_teardown(&h);
}

static void test_reply_split(void **state)
{
    static const char *const replies[] = {
        "$5\r\nhello\r\n", "$-1\r\n", ":42\r\n", "-ERR wrong\r\n", "+OK\r\n",
        "*3\r\n$1\r\na\r\n:1\r\n*1\r\n$-1\r\n", "*0\r\n",
    };
    for (size_t i = 0; i < sizeof replies / sizeof *replies; i++)
        reply_split_at_every_byte(replies[i], strlen(replies[i]));
}

/* A large bulk (several receive buffers, the link's input grows). */
static void test_large_bulk(void **state)
{
    struct harness h;
    h_setup(&h, 3, NULL);
    int c = h_client(&h);
    size_t n = 100000;
    char *val = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        val[i] = (char)('a' + i % 26);
    val[n] = '\0';
    h_cmd(&h, c, "SET", "big", val);
    h_cmd(&h, c, "GET", "big");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    char *got = h_reply(&h, c);
    H_CHECK(&h, got && strlen(got) == n + 11 && memcmp(got + 9, val, n) == 0);
    free(got);
    free(val);
    h_teardown(&h);
}

/* The client's command cut at every byte. */
static void test_request_split(void **state)
{
    static const char req[] = "*3\r\n$3\r\nSET\r\n$2\r\nkk\r\n$5\r\nvalue\r\n";
    struct harness h;
    h_setup(&h, 4, NULL);
    int c = h_client(&h);
    for (size_t k = 1; k < sizeof req - 1; k++) {
        h_raw(&h, c, req, k);
        h_run(&h);
        H_CHECK(&h, h_pending(&h, c) == 0);
        h_raw(&h, c, req + k, sizeof req - 1 - k);
        h_run(&h);
        H_EXPECT(&h, c, "+OK\r\n");
    }
    h_raw(&h, c, "PING\r\n", 6); /* inline */
    h_run(&h);
    H_EXPECT(&h, c, "+PONG\r\n");
    h_teardown(&h);
}

/* Sends that complete a byte (client) or three (link) at a time, and
 * receives of one byte. */
static void test_partial_sends(void **state)
{
    struct harness h;
    h_setup(&h, 5, NULL);
    io_fake_set_split(h.io, 1);
    int c = h_client(&h);
    io_fake_max_send(h.io, c, 1);
    h_cmd(&h, c, "SET", "a", "1");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    for (int i = 0; i < H_NODES; i++) {
        int fds[4];
        int n = h_node_fds(&h, i, fds, 4);
        for (int j = 0; j < n; j++)
            io_fake_max_send(h.io, fds[j], 3);
    }
    for (int i = 0; i < 30; i++) {
        char key[16], val[16];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "v%d", i);
        h_cmd(&h, c, "SET", key, val);
        h_cmd(&h, c, "GET", key);
    }
    h_run(&h);
    for (int i = 0; i < 30; i++) {
        char want[32];
        snprintf(want, sizeof want, "$%zu\r\nv%d\r\n", strlen("v") + (i < 10 ? 1 : 2), i);
        H_EXPECT(&h, c, "+OK\r\n");
        H_EXPECT(&h, c, want);
    }
    h_teardown(&h);
}

/* The link to node 0 resets with a GET and a SET written: the GET (read
 * only) is held and sent again once the node answers, the SET fails. */
static void hold_3s(struct config *cfg)
{
    cfg->cluster_down_timeout_ms = 3000;
}

static void test_link_reset_in_flight(void **state)
{
    struct harness h;
    h_setup(&h, 6, hold_3s);
    int c = h_client(&h);
    const char *k0 = h_key_on(&h, 0, 0);
    h_node_set(&h, 0, k0, "v0");
    h_cmd(&h, c, "PING");
    h_run(&h);
    H_EXPECT(&h, c, "+PONG\r\n");
    h_mute(&h, 0, true);
    h_cmd(&h, c, "GET", k0);
    h_cmd(&h, c, "SET", k0, "new");
    h_cmd(&h, c, "GET", h_key_on(&h, 1, 0));
    h_run(&h);
    h_forget(&h, 0);
    h_mute(&h, 0, false);
    h_node_reset(&h, 0, -ECONNRESET);
    h_run(&h);
    h_advance(&h, 300);
    H_EXPECT(&h, c, "$2\r\nv0\r\n");
    H_EXPECT(&h, c, "-ERR connection to node 127.0.0.1:7001 lost\r\n");
    H_EXPECT(&h, c, "$-1\r\n");
    h_cmd(&h, c, "GET", k0);
    h_run(&h);
    H_EXPECT(&h, c, "$2\r\nv0\r\n");
    h_teardown(&h);
}

/* A client leaves with replies in flight: its requests become orphans the
 * link frees when their replies come; the shared link stays in step. */
static void test_orphans(void **state)
{
    struct harness h;
    h_setup(&h, 7, NULL);
    int a = h_client(&h), b = h_client(&h);
    const char *k0 = h_key_on(&h, 0, 0);
    h_node_set(&h, 0, k0, "zz");
    h_mute(&h, 0, true);
    for (int i = 0; i < 5; i++)
        h_cmd(&h, a, "GET", k0);
    h_run(&h);
    io_fake_feed_eof(h.io, a);
    h_run(&h);
    H_CHECK(&h, io_fake_closed(h.io, a));
    h_cmd(&h, b, "GET", k0);
    h_run(&h);
    h_mute(&h, 0, false);
    h_run(&h);
    H_EXPECT(&h, b, "$2\r\nzz\r\n");
    H_CHECK(&h, h_pending(&h, b) == 0);
    h_teardown(&h);
}

static void small_budget(struct config *cfg)
{
    cfg->client_reply_budget = 2000;
}

/* Backpressure: a client that does not read stops being read past the
 * budget, and is read again once its replies drained below half. */
static void test_backpressure(void **state)
{
    struct harness h;
    h_setup(&h, 8, small_budget);
    int c = h_client(&h);
    char val[300];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    h_cmd(&h, c, "SET", "v", val);
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    io_fake_stall(h.io, c, true);
    for (int i = 0; i < 40; i++)
        h_cmd(&h, c, "GET", "v");
    h_run(&h);
    struct client *cl = h.w->clients;
    H_CHECK(&h, cl && cl->paused);
    io_fake_stall(h.io, c, false);
    h_run(&h);
    H_CHECK(&h, !h.w->clients->paused);
    for (int i = 0; i < 40; i++) {
        char *r = h_reply(&h, c);
        H_CHECK(&h, r && r[0] == '$');
        free(r);
    }
    h_teardown(&h);
}

static void test_connect_refused(void **state)
{
    struct harness h;
    h_setup(&h, 9, NULL);
    int c = h_client(&h);
    io_fake_connect_rule(h.io, "127.0.0.1:7001", -ECONNREFUSED, 0, -1);
    h_cmd(&h, c, "GET", h_key_on(&h, 0, 0));
    h_run(&h);
    H_EXPECT(&h, c, "-CLUSTERDOWN Could not connect to node 127.0.0.1:7001\r\n");
    io_fake_connect_clear(h.io, NULL);
    h_advance(&h, 3000); /* the link reconnects by itself, and answers */
    h_cmd(&h, c, "GET", h_key_on(&h, 0, 0));
    h_run(&h);
    H_EXPECT(&h, c, "$-1\r\n");
    h_teardown(&h);
}

static void test_connect_timeout(void **state)
{
    struct harness h;
    h_setup(&h, 10, NULL);
    int c = h_client(&h);
    io_fake_connect_rule(h.io, "127.0.0.1:7002", 0, -1, -1);
    h_cmd(&h, c, "GET", h_key_on(&h, 1, 0));
    h_advance(&h, 5000);
    H_EXPECT(&h, c, "-CLUSTERDOWN Could not connect to node 127.0.0.1:7002\r\n");
    h_teardown(&h);
}

/* -ENOBUFS on a client's receive: it is armed again once some buffer went
 * back (another client's input here). */
static void test_enobufs(void **state)
{
    struct harness h;
    h_setup(&h, 11, NULL);
    int a = h_client(&h), b = h_client(&h);
    io_fake_fail(h.io, a, IO_FAKE_RECV, -ENOBUFS);
    h_run(&h);
    h_cmd(&h, a, "PING");
    h_run(&h);
    H_CHECK(&h, h_pending(&h, a) == 0);
    h_cmd(&h, b, "PING");
    h_run(&h);
    H_EXPECT(&h, b, "+PONG\r\n");
    H_EXPECT(&h, a, "+PONG\r\n");
    h_teardown(&h);
}

/* Errors on the client's socket close it; a protocol error is answered
 * first. */
static void test_client_errors(void **state)
{
    struct harness h;
    h_setup(&h, 12, NULL);
    int a = h_client(&h), b = h_client(&h), d = h_client(&h);
    io_fake_fail(h.io, a, IO_FAKE_RECV, -ECONNRESET);
    h_cmd(&h, b, "PING");
    io_fake_fail(h.io, b, IO_FAKE_SEND, -EPIPE);
    h_raw(&h, d, "*1\r\n$x\r\n", 8);
    h_run(&h);
    H_CHECK(&h, io_fake_closed(h.io, a));
    H_CHECK(&h, io_fake_closed(h.io, b));
    char *r = h_reply(&h, d);
    H_CHECK(&h, r && strncmp(r, "-ERR Protocol error", 19) == 0);
    free(r);
    H_CHECK(&h, io_fake_closed(h.io, d));
    h_teardown(&h);
}

/* The node closes the link (EOF), and sends a reply nobody asked for. */
static void test_link_eof_and_stray_reply(void **state)
{
    struct harness h;
    h_setup(&h, 13, NULL);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 2, 0);
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    H_EXPECT(&h, c, "$-1\r\n");
    int fd;
    H_CHECK(&h, h_node_fds(&h, 2, &fd, 1) == 1);
    io_fake_feed_eof(h.io, fd);
    h_run(&h);
    h_cmd(&h, c, "GET", k);
    h_advance(&h, 200);
    H_EXPECT(&h, c, "$-1\r\n");
    h_link_feed(&h, 2, "+STRAY\r\n", 8);
    h_run(&h);
    h_cmd(&h, c, "GET", k);
    h_advance(&h, 200);
    H_EXPECT(&h, c, "$-1\r\n");
    h_teardown(&h);
}

static void resp3(struct config *cfg)
{
    cfg->backend_timeout_ms = 500;
}

/* RESP3 clients get RESP3 links (HELLO 3 first); a push on a shared link
 * is dropped; a node that stops answering times out. */
static void test_resp3_and_timeout(void **state)
{
    struct harness h;
    h_setup(&h, 14, resp3);
    int c = h_client(&h);
    h_cmd(&h, c, "HELLO", "3");
    h_run(&h);
    char *r = h_reply(&h, c);
    H_CHECK(&h, r && r[0] == '%');
    free(r);
    const char *k = h_key_on(&h, 1, 0);
    h_script_s(&h, 1, "get", ">2\r\n+invalidate\r\n*0\r\n$1\r\nx\r\n");
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    H_EXPECT(&h, c, "$1\r\nx\r\n");
    h_mute(&h, 1, true);
    h_cmd(&h, c, "GET", k);
    h_advance(&h, 2000);
    r = h_reply(&h, c);
    H_CHECK(&h, r && r[0] == '-');
    free(r);
    h_teardown(&h);
}

/* Seeded chaos: clients pipeline GETs, SETs, cross-slot MGETs and MULTI
 * blocks over keys whose value is their own name, while links reset (on
 * receive or send, with any error), nodes go quiet, slots move (MOVED,
 * ASK), clients stop reading or leave, and time passes. Every client gets exactly one reply per call,
 * in order: the right one, or an error. */
#define CHAOS_CLIENTS 4
#define CHAOS_CALLS 400
#define CHAOS_KEYS 64

struct chaos_call {
    char kind;  /* 'g' GET, 's' SET, 'm' MGET of k[0..2], 'x' MULTI (4 replies) */
    int k[3];
};

static uint64_t chaos_rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void chaos_fault(struct harness *h, uint64_t *rs)
{
    static const int errs[] = {-ECONNRESET, -EPIPE, -ETIMEDOUT, -ENOBUFS};
    int node = (int)(chaos_rnd(rs) % H_NODES), fds[8];
    int n = h_node_fds(h, node, fds, 8);
    if (n == 0)
        return;
    io_fake_fail(h->io, fds[chaos_rnd(rs) % (uint64_t)n],
                 chaos_rnd(rs) % 2 ? IO_FAKE_RECV : IO_FAKE_SEND, errs[chaos_rnd(rs) % 4]);
}

static void chaos_cfg(struct config *cfg)
{
    cfg->cluster_down_timeout_ms = 3000;
    cfg->enable_cross_slot = true;
}

static void bulk_of(char *out, size_t size, int k) /* k < CHAOS_KEYS */
{
    char key[16];
    snprintf(key, sizeof key, "c:%d", k);
    snprintf(out, size, "$%zu\r\n%s\r\n", strlen(key), key);
}

/* Sends one call of client fd; returns it. */
static struct chaos_call chaos_send(struct harness *h, int fd, uint64_t *rs)
{
    struct chaos_call c = {.kind = "ggggssmx"[chaos_rnd(rs) % 8]};
    char key[3][16];
    for (int i = 0; i < 3; i++) {
        c.k[i] = (int)(chaos_rnd(rs) % CHAOS_KEYS);
        snprintf(key[i], sizeof key[i], "c:%d", c.k[i]);
    }
    if (c.kind == 'g') {
        h_cmd(h, fd, "GET", key[0]);
    } else if (c.kind == 's') {
        h_cmd(h, fd, "SET", key[0], key[0]);
    } else if (c.kind == 'm') {
        h_cmd(h, fd, "MGET", key[0], key[1], key[2]);
    } else {
        h_cmd(h, fd, "MULTI");
        h_cmd(h, fd, "SET", "{m}x", "v");
        h_cmd(h, fd, "GET", "{m}x");
        h_cmd(h, fd, "EXEC");
    }
    return c;
}

/* The next replies of fd match c (or are errors). */
static void chaos_check(struct harness *h, int fd, const struct chaos_call *c, int client, int n)
{
    char want[4][128];
    int nwant = 1;
    if (c->kind == 'g') {
        bulk_of(want[0], sizeof want[0], c->k[0]);
    } else if (c->kind == 's') {
        snprintf(want[0], sizeof want[0], "+OK\r\n");
    } else if (c->kind == 'm') {
        char b[3][24];
        for (int i = 0; i < 3; i++)
            bulk_of(b[i], sizeof b[i], c->k[i]);
        snprintf(want[0], sizeof want[0], "*3\r\n%s%s%s", b[0], b[1], b[2]);
    } else {
        nwant = 4;
        snprintf(want[0], sizeof want[0], "+OK\r\n");
        snprintf(want[1], sizeof want[1], "+QUEUED\r\n");
        snprintf(want[2], sizeof want[2], "+QUEUED\r\n");
        snprintf(want[3], sizeof want[3], "*2\r\n+OK\r\n$1\r\nv\r\n");
    }
    for (int i = 0; i < nwant; i++) {
        char *r = h_reply(h, fd);
        if (!r || (r[0] != '-' && strcmp(r, want[i]) != 0)) {
            char what[200];
            snprintf(what, sizeof what, "client %d call %d: %.60s, wanted %.60s", client, n,
                     r ? r : "(none)", want[i]);
            free(r);
            h_fail(h, what, __FILE__, __LINE__);
        }
        if (getenv("CHAOS_STATS"))
            fprintf(stderr, "%c", r[0]);
        free(r);
    }
}

/* A key's slot moves to another node (MOVED from the old one; the new
 * topology published or not), or its owner answers the next GET with ASK
 * to another node that has the key too. */
static void chaos_move(struct harness *h, uint64_t *rs)
{
    char key[16];
    snprintf(key, sizeof key, "c:%d", (int)(chaos_rnd(rs) % CHAOS_KEYS));
    unsigned slot = cluster_keyslot(key, strlen(key));
    int from = h->owner[slot], to = (from + 1 + (int)(chaos_rnd(rs) % 2)) % H_NODES;
    for (int k = 0; k < CHAOS_KEYS; k++) { /* every key of the slot goes along */
        char other[16];
        snprintf(other, sizeof other, "c:%d", k);
        if (cluster_keyslot(other, strlen(other)) == slot)
            h_node_set(h, to, other, other);
    }
    if (chaos_rnd(rs) % 2) {
        char ask[64];
        snprintf(ask, sizeof ask, "-ASK %u %s\r\n", slot, h->nodes[to].addr);
        char cmd[32];
        snprintf(cmd, sizeof cmd, "get %s", key);
        h_script_s(h, from, cmd, ask);
        return;
    }
    h->owner[slot] = (uint16_t)to;
    if (chaos_rnd(rs) % 2)
        h_publish(h);
}

static void chaos_once(uint64_t seed)
{
    struct harness h;
    h_setup(&h, seed, chaos_cfg);
    uint64_t rs = h.seed;
    int fds[CHAOS_CLIENTS];
    static struct chaos_call calls[CHAOS_CLIENTS][CHAOS_CALLS];
    int ncalls[CHAOS_CLIENTS] = {0};
    for (int k = 0; k < CHAOS_KEYS; k++) {
        char key[16];
        snprintf(key, sizeof key, "c:%d", k);
        h_node_set(&h, h.owner[cluster_keyslot(key, strlen(key))], key, key);
    }
    for (int i = 0; i < CHAOS_CLIENTS; i++)
        fds[i] = h_client(&h);
    for (int round = 0; round < 60; round++) {
        int i = (int)(chaos_rnd(&rs) % CHAOS_CLIENTS);
        switch (chaos_rnd(&rs) % 12) {
        case 5: /* a client leaves with calls in flight; another comes */
            io_fake_feed_eof(h.io, fds[i]);
            fds[i] = h_client(&h);
            ncalls[i] = 0;
            break;
        case 6:
            chaos_fault(&h, &rs);
            break;
        case 7: { /* a quiet node, maybe lost with calls in flight */
            int n = (int)(chaos_rnd(&rs) % H_NODES);
            h_mute(&h, n, true);
            h_run(&h);
            if (chaos_rnd(&rs) % 2) { /* what it read dies with it */
                h_node_reset(&h, n, chaos_rnd(&rs) % 2 ? -ECONNRESET : -ETIMEDOUT);
                h_forget(&h, n);
            } else {
                chaos_fault(&h, &rs);
            }
            h_run(&h);
            h_mute(&h, n, false);
            break;
        }
        case 8:
            io_fake_stall(h.io, fds[i], chaos_rnd(&rs) % 2);
            break;
        case 9:
            h_advance(&h, (int64_t)(chaos_rnd(&rs) % 300));
            break;
        case 10:
            chaos_move(&h, &rs);
            break;
        default:
            for (int n = (int)(chaos_rnd(&rs) % 6); n > 0 && ncalls[i] < CHAOS_CALLS; n--)
                calls[i][ncalls[i]++] = chaos_send(&h, fds[i], &rs);
        }
        if (chaos_rnd(&rs) % 2)
            h_run(&h);
    }
    for (int i = 0; i < CHAOS_CLIENTS; i++)
        io_fake_stall(h.io, fds[i], false);
    h_advance(&h, 5000);
    for (int i = 0; i < CHAOS_CLIENTS; i++) {
        for (int j = 0; j < ncalls[i]; j++)
            chaos_check(&h, fds[i], &calls[i][j], i, j);
        H_CHECK(&h, h_pending(&h, fds[i]) == 0);
    }
    h_teardown(&h);
}

/* 40 seeds; RINGSLOT_CHAOS_SEEDS=n runs n (a longer soak), RINGSLOT_SEED
 * one. */
static void test_chaos(void **state)
{
    const char *env = getenv("RINGSLOT_CHAOS_SEEDS");
    uint64_t n = getenv("RINGSLOT_SEED") ? 1 : env ? strtoull(env, NULL, 0) : 40;
    for (uint64_t seed = 1000; seed < 1000 + n; seed++)
        chaos_once(seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_set),
        cmocka_unit_test(test_reply_split),
        cmocka_unit_test(test_large_bulk),
        cmocka_unit_test(test_request_split),
        cmocka_unit_test(test_partial_sends),
        cmocka_unit_test(test_link_reset_in_flight),
        cmocka_unit_test(test_orphans),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_enobufs),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_link_eof_and_stray_reply),
        cmocka_unit_test(test_resp3_and_timeout),
        cmocka_unit_test(test_chaos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
