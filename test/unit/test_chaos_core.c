/*
 * test_chaos_core.c — seeded chaos on the fake io backend
 * (harness_core.h): client, link, dispatch, fan-out and hold together
 * under every fault the fake can make, checked by one property: each call
 * gets exactly one reply, in order, the right one or an error.
 * RINGSLOT_SEED runs one seed, RINGSLOT_CHAOS_SEEDS=n runs n.
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
        cmocka_unit_test(test_chaos),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
