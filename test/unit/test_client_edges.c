/*
 * test_client_edges.c — the less travelled paths of client.c, dispatch.c
 * and hold.c on the fake io backend (harness_core.h): calls before the
 * first topology, output limits and idle clients, CLIENT REPLY, AUTH as
 * another user, pub/sub (pushes, held input while subscribing), MULTI
 * refusals, redirections on private links. RINGSLOT_SEED overrides seeds.
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

static void cross_slot(struct config *cfg)
{
    cfg->enable_cross_slot = true;
}

/* Before the first topology: a keyed call is held (hold_unrouted), a
 * fan-out and a MULTI block wait with the client's input (dispatch_defer);
 * everything goes once the topology comes, in order. */
static void test_before_topology(void **state)
{
    struct harness h;
    h_setup_bare(&h, 40, cross_slot);
    int c = h_client(&h);
    const char *k0 = h_key_on(&h, 0, 0), *k1 = h_key_on(&h, 1, 0);
    h_cmd(&h, c, "SET", k0, "a");
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SET", k1, "b");
    h_cmd(&h, c, "EXEC");
    h_cmd(&h, c, "MGET", k0, k1);
    h_cmd(&h, c, "DBSIZE");
    h_run(&h);
    H_CHECK(&h, h_pending(&h, c) == 0); /* the first call waits, and all after it */
    h_publish(&h);
    h_advance(&h, 100);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "+QUEUED\r\n");
    H_EXPECT(&h, c, "*1\r\n+OK\r\n");
    H_EXPECT(&h, c, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    H_EXPECT(&h, c, ":2\r\n");
    h_teardown(&h);
}

/* No topology ever: the calls fail once the boot hold time is over. */
static void test_no_topology(void **state)
{
    struct harness h;
    h_setup_bare(&h, 41, cross_slot);
    int c = h_client(&h);
    h_cmd(&h, c, "INFO"); /* the proxy's own sections, no keyspace to sum */
    h_run(&h);
    char *info = h_reply(&h, c);
    H_CHECK(&h, info && info[0] == '$' && strstr(info, "# Server") != NULL);
    free(info);
    h_cmd(&h, c, "GET", "x");
    h_cmd(&h, c, "DBSIZE");
    h_advance(&h, 60000);
    char *r = h_reply(&h, c);
    H_CHECK(&h, r && strncmp(r, "-CLUSTERDOWN", 12) == 0);
    free(r);
    r = h_reply(&h, c);
    H_CHECK(&h, r && r[0] == '-');
    free(r);
    h_teardown(&h);
}

static void limits(struct config *cfg)
{
    cfg->obuf_limits[CONFIG_OBUF_NORMAL].hard_bytes = 4000;
    cfg->obuf_limits[CONFIG_OBUF_NORMAL].soft_bytes = 1000;
    cfg->obuf_limits[CONFIG_OBUF_NORMAL].soft_seconds = 1;
    cfg->timeout = 2;
}

/* Output limits close a client that does not read (hard at once, soft
 * after its seconds); an idle client is closed after `timeout`. */
static void test_output_limits_and_idle(void **state)
{
    struct harness h;
    h_setup(&h, 42, limits);
    int hard = h_client(&h), soft = h_client(&h), idle = h_client(&h);
    char val[600];
    memset(val, 'v', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    h_cmd(&h, idle, "SET", "big", val);
    h_run(&h);
    H_EXPECT(&h, idle, "+OK\r\n");
    io_fake_stall(h.io, hard, true);
    io_fake_stall(h.io, soft, true);
    for (int i = 0; i < 10; i++)
        h_cmd(&h, hard, "GET", "big");
    h_cmd(&h, soft, "GET", "big");
    h_cmd(&h, soft, "GET", "big");
    h_run(&h);
    H_CHECK(&h, io_fake_closed(h.io, hard));
    H_CHECK(&h, !io_fake_closed(h.io, soft));
    h_advance(&h, 2500);
    H_CHECK(&h, io_fake_closed(h.io, soft));
    h_advance(&h, 2000);
    H_CHECK(&h, io_fake_closed(h.io, idle));
    h_teardown(&h);
}

/* CLIENT REPLY OFF/SKIP/ON; CLIENT SETNAME; an error text with CR/LF in
 * it stays one line; an inline command longer than a request's inline
 * bytes. */
static void test_client_reply_and_texts(void **state)
{
    struct harness h;
    h_setup(&h, 43, NULL);
    int c = h_client(&h);
    h_cmd(&h, c, "CLIENT", "REPLY", "OFF");
    h_cmd(&h, c, "SET", "a", "1");
    h_cmd(&h, c, "CLIENT", "REPLY", "ON");
    h_cmd(&h, c, "CLIENT", "REPLY", "SKIP");
    h_cmd(&h, c, "GET", "a");
    h_cmd(&h, c, "GET", "a");
    h_cmd(&h, c, "CLIENT", "SETNAME", "me");
    h_cmd(&h, c, "CLIENT", "GETNAME");
    h_cmd(&h, c, "NO\r\nSUCH");
    char line[200];
    int n = snprintf(line, sizeof line, "SET a %0120d\r\n", 7);
    h_raw(&h, c, line, (size_t)n);
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "$1\r\n1\r\n");
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "$2\r\nme\r\n");
    H_EXPECT(&h, c, "-ERR unknown command 'NO  SUCH', with args beginning with: \r\n");
    H_EXPECT(&h, c, "+OK\r\n");
    h_teardown(&h);
}

/* The proxy's own table (a hash index): any case finds a row, a name one
 * byte shorter or longer than a row's does not, and a NUL inside argv[0]
 * is part of the name (not the end of a shorter one). */
static void test_proxy_table_names(void **state)
{
    struct harness h;
    h_setup(&h, 47, NULL);
    int c = h_client(&h);
    h_cmd(&h, c, "pInG");
    h_cmd(&h, c, "eCHo", "x");
    h_cmd(&h, c, "PIN");
    h_cmd(&h, c, "PINGG");
    static const char nul_ping[] = "*1\r\n$5\r\nPING\0\r\n*1\r\n$4\r\nPING\r\n";
    h_raw(&h, c, nul_ping, sizeof nul_ping - 1);
    h_run(&h);
    H_EXPECT(&h, c, "+PONG\r\n");
    H_EXPECT(&h, c, "$1\r\nx\r\n");
    H_EXPECT(&h, c, "-ERR unknown command 'PIN', with args beginning with: \r\n");
    H_EXPECT(&h, c, "-ERR unknown command 'PINGG', with args beginning with: \r\n");
    char *r = h_reply(&h, c); /* the NUL is in the error's name: not +PONG */
    assert_non_null(r);
    assert_true(strncmp(r, "-ERR unknown command 'PING", 26) == 0);
    free(r);
    H_EXPECT(&h, c, "+PONG\r\n");
    h_teardown(&h);
}

/* AUTH as another user goes to a node; on +OK the client's calls use links
 * that authenticate as that user; a refused AUTH changes nothing. */
static void test_auth_user(void **state)
{
    struct harness h;
    h_setup(&h, 44, NULL);
    int c = h_client(&h);
    h_cmd(&h, c, "AUTH", "bob", "secret");
    h_cmd(&h, c, "SET", h_key_on(&h, 2, 0), "x");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "+OK\r\n");
    for (int i = 0; i < H_NODES; i++)
        h_script_s(&h, i, "auth", "-WRONGPASS invalid username-password pair\r\n");
    h_cmd(&h, c, "AUTH", "eve", "bad");
    h_run(&h);
    h_script_clear(&h);
    char *r = h_reply(&h, c);
    H_CHECK(&h, r && strncmp(r, "-WRONGPASS", 10) == 0);
    free(r);
    /* a node refusing the identity on a new link: the call gets its error */
    h_script_s(&h, 1, "auth", "-WRONGPASS invalid username-password pair\r\n");
    h_cmd(&h, c, "GET", h_key_on(&h, 1, 0));
    h_run(&h);
    r = h_reply(&h, c);
    H_CHECK(&h, r && r[0] == '-');
    free(r);
    h_teardown(&h);
}

/* SUBSCRIBE takes a subscriber link; a message comes as a push; commands
 * sent while the subscription is being confirmed wait for it; UNSUBSCRIBE
 * lets the link go. */
static void test_pubsub(void **state)
{
    struct harness h;
    h_setup(&h, 45, NULL);
    int s = h_client(&h), p = h_client(&h);
    h_cmd(&h, s, "SUBSCRIBE", "ch");
    h_cmd(&h, s, "PING");
    h_run(&h);
    H_EXPECT(&h, s, "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    H_EXPECT(&h, s, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    h_cmd(&h, p, "PUBLISH", "ch", "hello");
    h_run(&h);
    H_EXPECT(&h, p, ":1\r\n");
    H_EXPECT(&h, s, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n");
    h_cmd(&h, s, "GET", "x");
    h_cmd(&h, s, "UNSUBSCRIBE");
    h_cmd(&h, s, "GET", "x");
    h_run(&h);
    char *r = h_reply(&h, s);
    H_CHECK(&h, r && r[0] == '-');
    free(r);
    H_EXPECT(&h, s, "*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n");
    H_EXPECT(&h, s, "$-1\r\n");
    h_teardown(&h);
}

/* MULTI refusals: unknown commands and wrong arity abort the block at
 * EXEC, WATCH inside MULTI is refused, a block across slots too. */
static void test_multi_refusals(void **state)
{
    struct harness h;
    h_setup(&h, 46, NULL);
    int c = h_client(&h);
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "NOSUCH");
    h_cmd(&h, c, "GET");
    h_cmd(&h, c, "WATCH", "a");
    h_cmd(&h, c, "EXEC");
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SET", h_key_on(&h, 0, 0), "1");
    h_cmd(&h, c, "SET", h_key_on(&h, 1, 0), "1");
    h_cmd(&h, c, "EXEC");
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SUBSCRIBE", "x");
    h_cmd(&h, c, "DISCARD");
    h_run(&h);
    int n = 0, errors = 0;
    for (char *r; (r = h_reply(&h, c)); free(r), n++)
        errors += r[0] == '-';
    H_CHECK(&h, n == 12 && errors >= 5);
    h_teardown(&h);
}

/* A MOVED on a client's WATCH link: the call follows on a private link to
 * the new node; a private link's node resets: the watching client is
 * closed, as it would be if it had lost Redis itself. */
static void test_private_redirect_and_loss(void **state)
{
    struct harness h;
    h_setup(&h, 47, NULL);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 0, 0);
    h_cmd(&h, c, "WATCH", k);
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    h.owner[cluster_keyslot(k, strlen(k))] = 1;
    h_node_set(&h, 1, k, "there");
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    H_EXPECT(&h, c, "$5\r\nthere\r\n");
    h_node_reset(&h, 0, -ECONNRESET);
    h_node_reset(&h, 1, -ECONNRESET);
    h_run(&h);
    H_CHECK(&h, io_fake_closed(h.io, c));
    h_teardown(&h);
}

/* Questions about every worker's clients go through the worker's inbox
 * (one worker here): CLIENT LIST, CLIENT KILL; a client that leaves before
 * its answer. */
static void test_client_list_and_kill(void **state)
{
    struct harness h;
    h_setup(&h, 48, NULL);
    int a = h_client(&h), b = h_client(&h);
    h_cmd(&h, b, "CLIENT", "SETNAME", "victim");
    h_cmd(&h, a, "CLIENT", "LIST");
    h_run(&h);
    H_EXPECT(&h, b, "+OK\r\n");
    char *r = h_reply(&h, a);
    H_CHECK(&h, r && r[0] == '$' && strstr(r, "name=victim") != NULL);
    free(r);
    h_cmd(&h, a, "CLIENT", "KILL", "ID", "2");
    h_run(&h);
    H_EXPECT(&h, a, ":1\r\n");
    H_CHECK(&h, io_fake_closed(h.io, b));
    h_cmd(&h, a, "CLIENT", "LIST");
    io_fake_feed_eof(h.io, a);
    h_run(&h);
    h_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_before_topology),
        cmocka_unit_test(test_no_topology),
        cmocka_unit_test(test_output_limits_and_idle),
        cmocka_unit_test(test_client_reply_and_texts),
        cmocka_unit_test(test_proxy_table_names),
        cmocka_unit_test(test_auth_user),
        cmocka_unit_test(test_pubsub),
        cmocka_unit_test(test_multi_refusals),
        cmocka_unit_test(test_private_redirect_and_loss),
        cmocka_unit_test(test_client_list_and_kill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
