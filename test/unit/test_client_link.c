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

/* A value of n bytes: a pattern that shows misplaced bytes. */
static char *pattern(size_t n, int salt)
{
    char *val = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        val[i] = (char)('a' + (i * 7 + (size_t)salt) % 26);
    val[n] = '\0';
    return val;
}

/* Expect "$n\r\n<val>\r\n" as the client's next reply. */
static void expect_bulk(struct harness *h, int c, const char *val)
{
    size_t n = strlen(val);
    char head[32];
    int hl = snprintf(head, sizeof head, "$%zu\r\n", n);
    char *got = h_reply(h, c);
    H_CHECK(h, got && strlen(got) == (size_t)hl + n + 2 && memcmp(got, head, (size_t)hl) == 0 &&
                   memcmp(got + hl, val, n) == 0 && memcmp(got + hl + n, "\r\n", 2) == 0);
    free(got);
}

/* Large bulks stream to their client (link.c, rx STREAM) between small
 * replies on the same link and in one receive with them, cut at odd sizes
 * (the CRLF across two receives): every client gets its bytes, in order. */
static void test_streamed_bulk(void **state)
{
    for (int split = 0; split < 3; split++) {
        struct harness h;
        h_setup(&h, 40 + (uint64_t)split, NULL);
        if (split)
            io_fake_set_split(h.io, split == 1 ? 4093 : 65537);
        int a = h_client(&h), b = h_client(&h);
        const char *big = h_key_on(&h, 0, 0), *small = h_key_on(&h, 0, 1);
        char *v1 = pattern(300001, 1), *v2 = pattern(70000, 2);
        h_node_set(&h, 0, big, v1);
        h_node_set(&h, 0, small, "s");
        h_cmd(&h, a, "GET", small);
        h_cmd(&h, a, "GET", big);
        h_cmd(&h, b, "GET", big);
        h_cmd(&h, a, "GET", small);
        h_cmd(&h, a, "SET", small, v2);
        h_cmd(&h, a, "GET", small);
        h_cmd(&h, b, "PING");
        h_run(&h);
        H_EXPECT(&h, a, "$1\r\ns\r\n");
        expect_bulk(&h, a, v1);
        H_EXPECT(&h, a, "$1\r\ns\r\n");
        H_EXPECT(&h, a, "+OK\r\n");
        expect_bulk(&h, a, v2);
        expect_bulk(&h, b, v1);
        H_EXPECT(&h, b, "+PONG\r\n");
        H_CHECK(&h, h_pending(&h, a) == 0 && h_pending(&h, b) == 0);
        free(v1);
        free(v2);
        h_teardown(&h);
    }
}

/* A large bulk that is not its client's next reply (an earlier request
 * waits on a muted node) is gathered, not streamed, and goes out in
 * order. */
static void test_large_bulk_out_of_order(void **state)
{
    struct harness h;
    h_setup(&h, 43, NULL);
    int c = h_client(&h);
    const char *k0 = h_key_on(&h, 0, 0), *k1 = h_key_on(&h, 1, 0);
    char *val = pattern(200000, 3);
    h_node_set(&h, 0, k0, val);
    h_node_set(&h, 1, k1, "first");
    h_mute(&h, 1, true);
    h_cmd(&h, c, "GET", k1);
    h_cmd(&h, c, "GET", k0);
    h_run(&h);
    H_CHECK(&h, h_pending(&h, c) == 0);
    h_mute(&h, 1, false);
    h_run(&h);
    H_EXPECT(&h, c, "$5\r\nfirst\r\n");
    expect_bulk(&h, c, val);
    free(val);
    h_teardown(&h);
}

/* Clients of the worker still open (the proxy's view: a closed client's
 * fd number may already be a new link's). */
static int open_clients(const struct harness *h)
{
    int n = 0;
    for (const struct client *c = h->w->clients; c; c = c->next)
        n += c->state == CLIENT_OPEN;
    return n;
}

/* The node fails in the middle of a streamed bulk: its client, which has
 * part of it, is closed (no error text after half a bulk); another client
 * of the link gets its error and, after the reconnect, its replies. A
 * bulk whose CRLF is wrong fails the link the same way. */
static void test_streamed_bulk_broken(void **state)
{
    for (int how = 0; how < 2; how++) {
        struct harness h;
        h_setup(&h, 44 + (uint64_t)how, NULL);
        int a = h_client(&h), b = h_client(&h);
        const char *k0 = h_key_on(&h, 0, 0);
        h_node_set(&h, 0, k0, "v");
        h_cmd(&h, a, "PING");
        h_run(&h);
        H_EXPECT(&h, a, "+PONG\r\n");
        h_mute(&h, 0, true);
        h_cmd(&h, a, "GET", k0);
        h_run(&h); /* the GET is the link's head (clients' input is shuffled) */
        h_cmd(&h, b, "SET", k0, "w");
        h_run(&h);
        h_forget(&h, 0);
        h_mute(&h, 0, false);
        char *part = pattern(100000, 4);
        char head[] = "$200000\r\n";
        h_link_feed(&h, 0, head, sizeof head - 1);
        h_link_feed(&h, 0, part, 100000);
        h_run(&h);
        if (how == 0) {
            h_node_reset(&h, 0, -ECONNRESET);
        } else {
            h_link_feed(&h, 0, part, 100000);
            h_link_feed(&h, 0, "XX", 2); /* not a CRLF */
        }
        H_CHECK(&h, open_clients(&h) == 2);
        h_run(&h);
        H_CHECK(&h, open_clients(&h) == 1);
        H_EXPECT(&h, b, "-ERR connection to node 127.0.0.1:7001 lost\r\n");
        h_advance(&h, 300);
        h_cmd(&h, b, "GET", k0);
        h_run(&h);
        H_EXPECT(&h, b, "$1\r\nv\r\n");
        free(part);
        h_teardown(&h);
    }
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

/* A client leaves (a reset) with replies in flight: its requests become
 * orphans the link frees when their replies come; the shared link stays in
 * step. */
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
    io_fake_fail(h.io, a, IO_FAKE_RECV, -ECONNRESET);
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

/* A client's FIN (shutdown(SHUT_WR), `nc -N`) with replies in flight: as
 * Redis, which runs every command before it reads the EOF, the replies go
 * out, then the connection is closed; a blocking call is not waited for. */
static void test_fin_gets_replies_in_flight(void **state)
{
    struct harness h;
    h_setup(&h, 8, NULL);
    int a = h_client(&h);
    const char *k0 = h_key_on(&h, 0, 0);
    h_node_set(&h, 0, k0, "zz");
    h_mute(&h, 0, true);
    h_cmd(&h, a, "PING");
    for (int i = 0; i < 3; i++)
        h_cmd(&h, a, "GET", k0);
    io_fake_feed(h.io, a, "*2\r\n$3\r\nGET", 12); /* incomplete: dropped */
    io_fake_feed_eof(h.io, a);
    h_run(&h);
    H_CHECK(&h, !io_fake_closed(h.io, a));
    h_mute(&h, 0, false);
    h_run(&h);
    H_EXPECT(&h, a, "+PONG\r\n");
    for (int i = 0; i < 3; i++)
        H_EXPECT(&h, a, "$2\r\nzz\r\n");
    H_CHECK(&h, io_fake_closed(h.io, a));

    int b = h_client(&h);
    h_cmd(&h, b, "BLPOP", k0, "0");
    io_fake_feed_eof(h.io, b);
    h_run(&h);
    H_CHECK(&h, io_fake_closed(h.io, b));
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

/* -ENOBUFS on a link's receive is no loss: it is armed again once some
 * buffer went back (the client's next input here), and the replies of
 * what was in flight still come. */
static void test_link_enobufs(void **state)
{
    struct harness h;
    h_setup(&h, 15, NULL);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 0, 0);
    h_cmd(&h, c, "SET", k, "v1");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    int fd;
    H_CHECK(&h, h_node_fds(&h, 0, &fd, 1) == 1);
    uint64_t id = io_fake_conn_id(h.io, fd);
    io_fake_fail(h.io, fd, IO_FAKE_RECV, -ENOBUFS);
    h_run(&h);
    h_cmd(&h, c, "GET", k);
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    H_EXPECT(&h, c, "$2\r\nv1\r\n");
    H_EXPECT(&h, c, "$2\r\nv1\r\n");
    H_CHECK(&h, h_node_fds(&h, 0, &fd, 1) == 1 && io_fake_conn_id(h.io, fd) == id);
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
/* Coalescing (client.c) may keep a client's output for one more iteration
 * that does not sleep; never once the worker settles: with the node of the
 * second command muted, the first reply is out, the third (answered, but
 * behind the second) is kept, and nothing is left held. Then the rest, in
 * order. Every seed reorders the completions differently. */
static void test_reply_not_held_while_idle(void **state)
{
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct harness h;
        h_setup(&h, 100 + seed, NULL);
        int c = h_client(&h);
        const char *k0 = h_key_on(&h, 0, 0), *k2 = h_key_on(&h, 2, 0);
        h_node_set(&h, 0, k0, "v0");
        h_node_set(&h, 2, k2, "v2");
        h_cmd(&h, c, "PING"); /* links and topology settled first */
        h_run(&h);
        H_EXPECT(&h, c, "+PONG\r\n");
        h_mute(&h, 1, true);
        h_cmd(&h, c, "GET", k0);
        h_cmd(&h, c, "GET", k2);
        h_cmd(&h, c, "GET", h_key_on(&h, 1, 0));
        h_cmd(&h, c, "GET", k2);
        h_run(&h);
        H_EXPECT(&h, c, "$2\r\nv0\r\n");
        H_EXPECT(&h, c, "$2\r\nv2\r\n");
        H_CHECK(&h, h_pending(&h, c) == 0);
        H_CHECK(&h, !h.w->flush_held && !h.w->flush_list);
        h_mute(&h, 1, false);
        h_run(&h);
        H_EXPECT(&h, c, "$-1\r\n");
        H_EXPECT(&h, c, "$2\r\nv2\r\n");
        H_CHECK(&h, h_pending(&h, c) == 0);
        h_teardown(&h);
    }
}

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_set),
        cmocka_unit_test(test_reply_split),
        cmocka_unit_test(test_large_bulk),
        cmocka_unit_test(test_streamed_bulk),
        cmocka_unit_test(test_large_bulk_out_of_order),
        cmocka_unit_test(test_streamed_bulk_broken),
        cmocka_unit_test(test_request_split),
        cmocka_unit_test(test_partial_sends),
        cmocka_unit_test(test_link_reset_in_flight),
        cmocka_unit_test(test_orphans),
        cmocka_unit_test(test_fin_gets_replies_in_flight),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_enobufs),
        cmocka_unit_test(test_link_enobufs),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_link_eof_and_stray_reply),
        cmocka_unit_test(test_resp3_and_timeout),
        cmocka_unit_test(test_reply_not_held_while_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
