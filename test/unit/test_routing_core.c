/*
 * test_routing_core.c — dispatch.c, fanout.c and hold.c on the fake io
 * backend (harness_core.h): pipelines that keep their order across nodes,
 * MOVED/ASK (also while a link is down), TRYAGAIN retries, held requests,
 * MULTI blocks, WATCH and blocking calls on private links, cross-slot
 * fan-out with a failing child, the commands sent to every master.
 * RINGSLOT_SEED overrides the seeds.
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
    cfg->cluster_down_timeout_ms = 3000;
}

/* A long pipeline over the three nodes, under seeded splits, partial sends
 * and reordered completions: the replies come in request order. */
static void test_pipeline_order(void **state)
{
    for (uint64_t seed = 100; seed < 110; seed++) {
        struct harness h;
        h_setup(&h, seed, NULL);
        int c = h_client(&h);
        for (int i = 0; i < 60; i++) {
            char key[16], val[16];
            snprintf(key, sizeof key, "p%d", i);
            snprintf(val, sizeof val, "%d", i * 7);
            h_cmd(&h, c, "SET", key, val);
            h_cmd(&h, c, "GET", key);
        }
        h_run(&h);
        for (int i = 0; i < 60; i++) {
            char want[32];
            snprintf(want, sizeof want, "$%d\r\n%d\r\n", snprintf(NULL, 0, "%d", i * 7), i * 7);
            H_EXPECT(&h, c, "+OK\r\n");
            H_EXPECT(&h, c, want);
        }
        h_teardown(&h);
    }
}

/* Redis writes an IPv6 node without brackets in MOVED ("::1:7999"): the
 * proxy tries to connect there. Refused here, so the call is held and then
 * goes where the topology says (node 0: the key is unset) instead of
 * failing at once with "invalid backend node address". */
static void test_moved_to_bare_ipv6(void **state)
{
    struct harness h;
    h_setup(&h, 21, NULL);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 0, 3);
    char moved[64];
    snprintf(moved, sizeof moved, "-MOVED %u ::1:7999\r\n", cluster_keyslot(k, strlen(k)));
    h_script_s(&h, 0, "get", moved);
    io_fake_connect_rule(h.io, "[::1]:7999", -ECONNREFUSED, 0, -1);
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    h_advance(&h, 10000); /* past the hold of a node that refuses */
    char *got = h_reply(&h, c);
    assert_non_null(got);
    if (strcmp(got, "$-1\r\n") != 0)
        fail_msg("reply: %s", got);
    free(got);
    h_teardown(&h);
}

/* A slot moved from node 0 to node 1 (not yet in the topology): node 0
 * answers MOVED and the call goes there. ASK: once, with ASKING first. */
static void test_moved_ask(void **state)
{
    struct harness h;
    h_setup(&h, 20, NULL);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 0, 3);
    unsigned slot = cluster_keyslot(k, strlen(k));
    h_node_set(&h, 1, k, "moved");
    h.owner[slot] = 1;
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    H_EXPECT(&h, c, "$5\r\nmoved\r\n");
    h.owner[slot] = 0;
    h_node_set(&h, 2, k, "asked");
    char ask[64];
    snprintf(ask, sizeof ask, "-ASK %u 127.0.0.1:7003\r\n", slot);
    h_script_s(&h, 0, "get", ask);
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    H_EXPECT(&h, c, "$5\r\nasked\r\n");
    /* a redirection loop ends after a few hops with the last error */
    for (int i = 0; i < 8; i++) {
        h_script_s(&h, 0, "get", ask);
        snprintf(ask, sizeof ask, "-ASK %u 127.0.0.1:7001\r\n", slot);
        h_script_s(&h, 2, "get", ask);
        snprintf(ask, sizeof ask, "-ASK %u 127.0.0.1:7003\r\n", slot);
    }
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    char *r = h_reply(&h, c);
    if (!r || strncmp(r, "-ASK", 4) != 0)
        h_fail(&h, r ? r : "no reply", __FILE__, __LINE__);
    free(r);
    h_teardown(&h);
}

/* -TRYAGAIN is retried after a backoff, and what the client sent after it
 * waits behind it; -CLUSTERDOWN too, until its window ends. */
static void test_retry(void **state)
{
    struct harness h;
    h_setup(&h, 21, cross_slot);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 1, 0);
    h_node_set(&h, 1, k, "late");
    h_script_s(&h, 1, "get", "-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
    h_script_s(&h, 1, "get", "-LOADING Redis is loading the dataset in memory\r\n");
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    h_cmd(&h, c, "SET", k, "after"); /* parked behind the retried GET */
    h_run(&h);
    H_CHECK(&h, h_pending(&h, c) == 0);
    h_advance(&h, 2000);
    H_EXPECT(&h, c, "$4\r\nlate\r\n");
    H_EXPECT(&h, c, "+OK\r\n");
    for (int i = 0; i < 40; i++)
        h_script_s(&h, 1, "get", "-CLUSTERDOWN The cluster is down\r\n");
    h_cmd(&h, c, "GET", k);
    h_advance(&h, 10000);
    H_EXPECT(&h, c, "-CLUSTERDOWN The cluster is down\r\n");
    h_teardown(&h);
}

/* Node 0's link resets while calls wait on it and its connects are
 * refused: its requests are held, then the slot moves to node 2 (a new
 * topology) and they go there, in order; a MOVED arriving for a held call
 * is followed too. */
static void test_hold_and_failover(void **state)
{
    struct harness h;
    h_setup(&h, 22, cross_slot);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 0, 0), *k2 = h_key_on(&h, 0, 1);
    h_cmd(&h, c, "SET", k, "one");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    h_mute(&h, 0, true);
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    h_forget(&h, 0);
    io_fake_connect_rule(h.io, "127.0.0.1:7001", -ECONNREFUSED, 0, -1);
    h_node_reset(&h, 0, -ECONNRESET);
    h_run(&h);
    h_cmd(&h, c, "SET", k2, "two");
    h_cmd(&h, c, "GET", k2);
    h_advance(&h, 500);
    H_CHECK(&h, h_pending(&h, c) == 0 && h.w->nheld > 0);
    /* failover: node 2 takes node 0's slots */
    for (int s = 0; s < CLUSTER_SLOTS; s++)
        if (h.owner[s] == 0)
            h.owner[s] = 2;
    h_node_set(&h, 2, k, "one");
    h_publish(&h);
    h_run(&h);
    h_advance(&h, 200);
    H_EXPECT(&h, c, "$3\r\none\r\n");
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "$3\r\ntwo\r\n");
    H_CHECK(&h, strcmp(h_node_get(&h, 2, k2), "two") == 0);
    /* no master at all for a slot: held, then CLUSTERDOWN */
    unsigned slot = cluster_keyslot(k, strlen(k));
    h.owner[slot] = CLUSTER_NO_NODE;
    h_publish(&h);
    h_cmd(&h, c, "GET", k);
    h_advance(&h, 5000);
    char *r = h_reply(&h, c);
    H_CHECK(&h, r && strncmp(r, "-CLUSTERDOWN", 12) == 0);
    free(r);
    h_teardown(&h);
}

/* MULTI … EXEC is written as one block on the node of its keys; a MOVED
 * inside it sends the whole block there. */
static void test_multi(void **state)
{
    struct harness h;
    h_setup(&h, 23, NULL);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 2, 0);
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SET", k, "m");
    h_cmd(&h, c, "GET", k);
    h_cmd(&h, c, "EXEC");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "+QUEUED\r\n");
    H_EXPECT(&h, c, "+QUEUED\r\n");
    H_EXPECT(&h, c, "*2\r\n+OK\r\n$1\r\nm\r\n");
    unsigned slot = cluster_keyslot(k, strlen(k));
    h.owner[slot] = 1;
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SET", k, "n");
    h_cmd(&h, c, "EXEC");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "+QUEUED\r\n");
    H_EXPECT(&h, c, "*1\r\n+OK\r\n");
    H_CHECK(&h, h_node_get(&h, 1, k) && strcmp(h_node_get(&h, 1, k), "n") == 0);
    /* an ASK for a command inside the block: the block goes there whole,
     * after ASKING (the slot is being imported there) */
    char ask[64];
    snprintf(ask, sizeof ask, "-ASK %u 127.0.0.1:7003\r\n", slot);
    char cmd[48];
    snprintf(cmd, sizeof cmd, "set %s", k);
    h_script_s(&h, 1, cmd, ask);
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SET", k, "asked");
    h_cmd(&h, c, "EXEC");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "+QUEUED\r\n");
    H_EXPECT(&h, c, "*1\r\n+OK\r\n");
    H_CHECK(&h, h_node_get(&h, 2, k) && strcmp(h_node_get(&h, 2, k), "asked") == 0);
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SET", "a", "1");
    h_cmd(&h, c, "SET", "b", "1");
    h_cmd(&h, c, "EXEC");
    h_cmd(&h, c, "EXEC");
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "DISCARD");
    h_run(&h);
    for (char *r; (r = h_reply(&h, c)); free(r))
        ;
    h_teardown(&h);
}

/* WATCH and blocking calls take a private link; BLPOP is answered when
 * another client pushes. */
static void test_watch_and_blocking(void **state)
{
    struct harness h;
    h_setup(&h, 24, NULL);
    int a = h_client(&h), b = h_client(&h);
    const char *k = h_key_on(&h, 1, 0);
    h_cmd(&h, a, "WATCH", k);
    h_cmd(&h, a, "MULTI");
    h_cmd(&h, a, "SET", k, "w");
    h_cmd(&h, a, "EXEC");
    h_run(&h);
    H_EXPECT(&h, a, "+OK\r\n");
    H_EXPECT(&h, a, "+OK\r\n");
    H_EXPECT(&h, a, "+QUEUED\r\n");
    H_EXPECT(&h, a, "*1\r\n+OK\r\n");
    const char *q = h_key_on(&h, 2, 0);
    h_cmd(&h, a, "BLPOP", q, "0");
    h_run(&h);
    H_CHECK(&h, h_pending(&h, a) == 0);
    h_cmd(&h, b, "RPUSH", q, "item");
    h_run(&h);
    H_EXPECT(&h, b, ":1\r\n");
    char want[64];
    snprintf(want, sizeof want, "*2\r\n$%zu\r\n%s\r\n$4\r\nitem\r\n", strlen(q), q);
    H_EXPECT(&h, a, want);
    /* a blocked client that leaves: its private link is closed */
    h_cmd(&h, a, "BLPOP", q, "0");
    h_run(&h);
    io_fake_feed_eof(h.io, a);
    h_run(&h);
    h_teardown(&h);
}

/* Cross-slot MGET/MSET/DEL/EXISTS split per node and merged; a failing
 * child makes the whole call fail with its error. */
static void test_cross_slot(void **state)
{
    struct harness h;
    h_setup(&h, 25, cross_slot);
    int c = h_client(&h);
    const char *k0 = h_key_on(&h, 0, 0), *k1 = h_key_on(&h, 1, 0), *k2 = h_key_on(&h, 2, 0);
    h_cmd(&h, c, "MSET", k0, "a", k1, "b", k2, "c");
    h_cmd(&h, c, "MGET", k2, k0, "nokey", k1);
    h_cmd(&h, c, "EXISTS", k0, k1, "nokey");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "*4\r\n$1\r\nc\r\n$1\r\na\r\n$-1\r\n$1\r\nb\r\n");
    H_EXPECT(&h, c, ":2\r\n");
    h_script_s(&h, 1, "mget", "-ERR child failed\r\n");
    h_cmd(&h, c, "MGET", k0, k1, k2);
    h_script_s(&h, 2, "del", "-ERR no del\r\n");
    h_cmd(&h, c, "DEL", k0, k1, k2);
    h_run(&h);
    H_EXPECT(&h, c, "-ERR child failed\r\n");
    H_EXPECT(&h, c, "-ERR no del\r\n");
    /* the client leaves with a fan-out in flight */
    h_mute(&h, 2, true);
    h_cmd(&h, c, "MGET", k0, k1, k2);
    h_run(&h);
    io_fake_feed_eof(h.io, c);
    h_run(&h);
    h_mute(&h, 2, false);
    h_run(&h);
    h_teardown(&h);
}

/* Commands answered by every master, merged. */
static void test_all_masters(void **state)
{
    struct harness h;
    h_setup(&h, 26, cross_slot);
    h_canned(&h, "script load", "$40\r\n0123456789012345678901234567890123456789\r\n");
    h_canned(&h, "script exists", "*2\r\n:1\r\n:0\r\n");
    h_canned(&h, "slowlog len", ":2\r\n");
    h_canned(&h, "slowlog get", "*1\r\n*6\r\n:1\r\n:100\r\n:5\r\n*1\r\n$3\r\nGET\r\n"
                                "$9\r\n127.0.0.1\r\n$0\r\n\r\n");
    h_canned(&h, "pubsub numsub", "*2\r\n$2\r\nch\r\n:1\r\n");
    h_canned(&h, "pubsub channels", "*1\r\n$2\r\nch\r\n");
    h_canned(&h, "randomkey", "$1\r\nr\r\n");
    h_canned(&h, "info", "$44\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=9\r\n\r\n");
    h_canned(&h, "config get", "*4\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
                               "$11\r\nrequirepass\r\n$3\r\nxyz\r\n");
    h_canned(&h, "wait", ":1\r\n");
    h_canned(&h, "acl setuser", "+OK\r\n");
    h_canned(&h, "acl deluser", ":1\r\n");
    h_canned(&h, "lastsave", ":1700000000\r\n");
    h_canned(&h, "scan", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\ns\r\n");
    h_canned(&h, "flushall", "+OK\r\n");
    int c = h_client(&h);
    h_cmd(&h, c, "MSET", h_key_on(&h, 0, 0), "a", h_key_on(&h, 1, 0), "b");
    h_cmd(&h, c, "DBSIZE");
    h_cmd(&h, c, "KEYS", "*");
    h_cmd(&h, c, "SCRIPT", "LOAD", "return 1");
    h_cmd(&h, c, "SCRIPT", "EXISTS", "a", "b");
    h_cmd(&h, c, "SLOWLOG", "LEN");
    h_cmd(&h, c, "SLOWLOG", "GET", "2");
    h_cmd(&h, c, "PUBSUB", "NUMSUB", "ch");
    h_cmd(&h, c, "PUBSUB", "CHANNELS");
    h_cmd(&h, c, "RANDOMKEY");
    h_cmd(&h, c, "INFO", "keyspace");
    h_cmd(&h, c, "CONFIG", "GET", "maxmemory");
    h_cmd(&h, c, "SCAN", "0");
    h_cmd(&h, c, "FLUSHALL");
    h_cmd(&h, c, "SET", "w", "1");
    h_cmd(&h, c, "WAIT", "0", "0");
    h_cmd(&h, c, "ACL", "SETUSER", "u");
    h_cmd(&h, c, "ACL", "DELUSER", "u");
    h_cmd(&h, c, "LASTSAVE");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, ":2\r\n");
    int n = 0;
    for (char *r; (r = h_reply(&h, c)); free(r), n++)
        if (r[0] == '-')
            h_fail(&h, r, __FILE__, __LINE__);
    H_CHECK(&h, n == 17);
    /* a failing node: the merged reply is its error */
    static const char *const calls[][3] = {
        {"DBSIZE"}, {"KEYS", "*"}, {"SCRIPT", "EXISTS", "a"}, {"PUBSUB", "NUMSUB", "ch"},
        {"PUBSUB", "CHANNELS"}, {"SLOWLOG", "GET"}, /* not RANDOMKEY, INFO: they skip it */
        {"CONFIG", "GET", "maxmemory"}, {"FLUSHALL"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s", calls[i][0]);
        for (char *p = name; *p; p++)
            *p = (char)(*p | 0x20);
        h_script_s(&h, 0, name, "-ERR node says no\r\n");
        int argc = calls[i][2] ? 3 : calls[i][1] ? 2 : 1;
        h_cmdv(&h, c, argc, (const char **)calls[i]);
        h_run(&h);
        char *r = h_reply(&h, c);
        if (!r || strcmp(r, "-ERR node says no\r\n") != 0)
            h_fail(&h, calls[i][0], __FILE__, __LINE__);
        free(r);
        h_script_clear(&h);
    }
    h_teardown(&h);
}

/* SCAN walks the masters one after the other with one cursor; an empty
 * last page of a master moves on at once; RANDOMKEY skips empty nodes;
 * INFO for a RESP3 client is verbatim text. */
static void test_scan_and_text(void **state)
{
    struct harness h;
    h_setup(&h, 29, NULL);
    int c = h_client(&h);
    h_script_s(&h, 0, "scan", "*2\r\n$1\r\n0\r\n*0\r\n");
    h_script_s(&h, 1, "scan", "*2\r\n$2\r\n17\r\n*1\r\n$1\r\na\r\n");
    h_script_s(&h, 1, "scan", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n");
    h_script_s(&h, 2, "scan", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nc\r\n");
    char cursor[32] = "0";
    int pages = 0, keys = 0;
    do {
        h_cmd(&h, c, "SCAN", cursor, "COUNT", "10");
        h_run(&h);
        char *r = h_reply(&h, c);
        H_CHECK(&h, r && strncmp(r, "*2\r\n$", 5) == 0);
        char *p = strchr(r + 4, '\n') + 1;
        size_t len = strcspn(p, "\r");
        snprintf(cursor, sizeof cursor, "%.*s", (int)len, p);
        keys += strstr(p, "*1\r\n") != NULL;
        free(r);
    } while (strcmp(cursor, "0") != 0 && ++pages < 10);
    H_CHECK(&h, pages == 2 && keys == 3);
    h_cmd(&h, c, "SCAN", "notanumber");
    h_cmd(&h, c, "SCAN", " 1");
    h_cmd(&h, c, "SCAN", "18446744073709551615");
    h_cmd(&h, c, "SCAN", "99999999999999");
    h_run(&h);
    H_EXPECT(&h, c, "-ERR invalid cursor\r\n");
    H_EXPECT(&h, c, "-ERR invalid cursor\r\n");
    H_EXPECT(&h, c, "*2\r\n$1\r\n0\r\n*0\r\n");
    H_EXPECT(&h, c, "*2\r\n$1\r\n0\r\n*0\r\n"); /* a shard past the last: done */
    char *r;
    h_script_s(&h, 0, "randomkey", "$-1\r\n");
    h_script_s(&h, 1, "randomkey", "$-1\r\n");
    h_script_s(&h, 2, "randomkey", "$-1\r\n");
    h_cmd(&h, c, "RANDOMKEY");
    h_cmd(&h, c, "HELLO", "3");
    h_cmd(&h, c, "INFO");
    h_canned(&h, "info", "$44\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=9\r\n\r\n");
    h_run(&h);
    H_EXPECT(&h, c, "$-1\r\n");
    free(h_reply(&h, c));
    r = h_reply(&h, c);
    H_CHECK(&h, r && r[0] == '=' && strstr(r, "db0:keys=9") != NULL);
    free(r);
    h_teardown(&h);
}

/* Errors the proxy answers itself: unknown commands, arity, CROSSSLOT
 * when splitting is off. */
static void test_local_errors(void **state)
{
    struct harness h;
    h_setup(&h, 27, NULL);
    int c = h_client(&h);
    h_cmd(&h, c, "NOSUCH", "x");
    h_cmd(&h, c, "GET");
    h_cmd(&h, c, "MGET", h_key_on(&h, 0, 0), h_key_on(&h, 1, 0));
    h_cmd(&h, c, "ECHO", "hi");
    h_run(&h);
    H_EXPECT(&h, c, "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n");
    H_EXPECT(&h, c, "-ERR wrong number of arguments for 'get' command\r\n");
    H_EXPECT(&h, c, "-CROSSSLOT Keys in request don't hash to the same slot\r\n");
    H_EXPECT(&h, c, "$2\r\nhi\r\n");
    h_teardown(&h);
}

/* A link that writes a few bytes at a time: ASKING, and MULTI with its
 * commands, are answered by the node before the rest of their request is
 * written (a reply to a request still partly unsent is no stray). */
static void test_replies_to_partly_written(void **state)
{
    struct harness h;
    h_setup(&h, 28, NULL);
    int c = h_client(&h);
    const char *k = h_key_on(&h, 0, 0);
    unsigned slot = cluster_keyslot(k, strlen(k));
    h_cmd(&h, c, "PING", "x");
    h_cmd(&h, c, "GET", h_key_on(&h, 2, 0));
    h_run(&h);
    H_EXPECT(&h, c, "$1\r\nx\r\n");
    H_EXPECT(&h, c, "$-1\r\n");
    int fd;
    H_CHECK(&h, h_node_fds(&h, 2, &fd, 1) == 1);
    io_fake_max_send(h.io, fd, 16); /* "*1\r\n$6\r\nASKING\r\n", then the GET */
    char ask[64];
    snprintf(ask, sizeof ask, "-ASK %u 127.0.0.1:7003\r\n", slot);
    h_script_s(&h, 0, "get", ask);
    h_node_set(&h, 2, k, "asked");
    h_cmd(&h, c, "GET", k);
    h_run(&h);
    H_EXPECT(&h, c, "$5\r\nasked\r\n");
    io_fake_max_send(h.io, fd, 15); /* "*1\r\n$5\r\nMULTI\r\n", … */
    const char *k2 = h_key_on(&h, 2, 1);
    h_cmd(&h, c, "MULTI");
    h_cmd(&h, c, "SET", k2, "1");
    h_cmd(&h, c, "GET", k2);
    h_cmd(&h, c, "EXEC");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "+QUEUED\r\n");
    H_EXPECT(&h, c, "+QUEUED\r\n");
    H_EXPECT(&h, c, "*2\r\n+OK\r\n$1\r\n1\r\n");
    h_teardown(&h);
}

/* Merges over replies that differ per node: the smallest LASTSAVE, the
 * newest SLOWLOG entries first, a reply that is not what the merge
 * expects passed on as it is. */
static void test_merge_edges(void **state)
{
    struct harness h;
    h_setup(&h, 30, NULL);
    int c = h_client(&h);
    static const char *const saves[] = {":300\r\n", ":100\r\n", ":200\r\n"};
    for (int i = 0; i < H_NODES; i++) {
        char entry[160];
        snprintf(entry, sizeof entry, "*1\r\n*6\r\n:%d\r\n:%d\r\n:5\r\n*1\r\n$3\r\nGET\r\n"
                 "$9\r\n127.0.0.1\r\n$0\r\n\r\n", i, 1000 - i * 100);
        h_script_s(&h, i, "slowlog", entry);
        h_script_s(&h, i, "lastsave", saves[i]);
        h_script_s(&h, i, "acl", i == 1 ? ":7\r\n" : ":2\r\n");
    }
    h_script_s(&h, 2, "dbsize", "+notanumber\r\n");
    h_script_s(&h, 1, "keys", "+notanarray\r\n");
    h_cmd(&h, c, "SLOWLOG", "GET", "2");
    h_cmd(&h, c, "LASTSAVE");
    h_cmd(&h, c, "ACL", "DELUSER", "x");
    h_cmd(&h, c, "DBSIZE");
    h_cmd(&h, c, "KEYS", "*");
    h_run(&h);
    char *r = h_reply(&h, c);
    H_CHECK(&h, r && strncmp(r, "*2\r\n*6\r\n:0\r\n:1000\r\n", 19) == 0);
    free(r);
    H_EXPECT(&h, c, ":100\r\n");
    H_EXPECT(&h, c, ":7\r\n");
    H_EXPECT(&h, c, "+notanumber\r\n");
    H_EXPECT(&h, c, "+notanarray\r\n");
    h_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_order),
        cmocka_unit_test(test_moved_ask),
        cmocka_unit_test(test_moved_to_bare_ipv6),
        cmocka_unit_test(test_retry),
        cmocka_unit_test(test_hold_and_failover),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_watch_and_blocking),
        cmocka_unit_test(test_cross_slot),
        cmocka_unit_test(test_all_masters),
        cmocka_unit_test(test_local_errors),
        cmocka_unit_test(test_replies_to_partly_written),
        cmocka_unit_test(test_scan_and_text),
        cmocka_unit_test(test_merge_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
