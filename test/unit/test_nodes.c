/*
 * test_nodes.c — unit tests of core/nodes.c: CLUSTER NODES views parsed and
 * merged by config epoch into the topology the control thread publishes.
 *
 * The base view is the example from Redis's CLUSTER NODES documentation
 * (the format redis-server 7.0 prints); the others are that cluster after
 * a failover, during a reshard, and with nodes in odd states.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cluster/cluster.h"

#define ID1 "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"
#define ID2 "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1"
#define ID3 "292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f"
#define ID4 "07c37dfeb235213a872192d90877d0cd55635b91"
#define ID5 "6ec23923021cf3ffec47632106199cb7f496ce01"
#define ID6 "824fe116063bc5fcf9f4ffd895bc17aee7731ac3"

/* 30001..30003 masters (epochs 1..3), 30004..30006 their replicas. */
static const char BASE[] =
    ID4 " 127.0.0.1:30004@31004,hostname4 slave " ID1 " 0 1426238317239 4 connected\n"
    ID2 " 127.0.0.1:30002@31002,hostname2 master - 0 1426238316232 2 connected 5461-10922\n"
    ID3 " 127.0.0.1:30003@31003,hostname3 master - 0 1426238318243 3 connected 10923-16383\n"
    ID5 " 127.0.0.1:30005@31005,hostname5 slave " ID2 " 0 1426238316232 5 connected\n"
    ID6 " 127.0.0.1:30006@31006,hostname6 slave " ID3 " 0 1426238317741 6 connected\n"
    ID1 " 127.0.0.1:30001@31001,hostname1 myself,master - 0 0 1 connected 0-5460\n";

/* After 30001 failed: 30004 took its slots with epoch 7. */
static const char FAILED_OVER[] =
    ID4 " 127.0.0.1:30004@31004 master - 0 1426238317239 7 connected 0-5460\n"
    ID2 " 127.0.0.1:30002@31002 myself,master - 0 1426238316232 2 connected 5461-10922\n"
    ID3 " 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 10923-16383\n"
    ID5 " 127.0.0.1:30005@31005 slave " ID2 " 0 1426238316232 5 connected\n"
    ID6 " 127.0.0.1:30006@31006 slave " ID3 " 0 1426238317741 6 connected\n"
    ID1 " 127.0.0.1:30001@31001 master,fail - 1426238316000 1426238315000 1 disconnected\n";

/* Slots 0-99 moved to 30002 (SETSLOT NODE bumped its epoch to 8); 5460 is
 * being migrated. */
static const char RESHARDED[] =
    ID1 " 127.0.0.1:30001@31001 master - 0 0 1 connected 100-5459 [5460->-" ID2 "]\n"
    ID2 " 127.0.0.1:30002@31002 myself,master - 0 0 8 connected 0-99 5461-10922\n"
    ID3 " 127.0.0.1:30003@31003 master - 0 0 3 connected 10923-16383\n";

static struct nodes_view *view(const char *text, const char *asked)
{
    const char *err = NULL;
    struct nodes_view *v = nodes_view_parse(text, strlen(text), asked, &err);
    if (!v)
        fail_msg("view refused: %s", err);
    return v;
}

static struct cluster_topology *merge(size_t n, ...)
{
    struct nodes_view *views[4];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        views[i] = va_arg(ap, struct nodes_view *);
    va_end(ap);
    const char *err = NULL;
    struct cluster_topology *t = nodes_merge(views, n, &err);
    if (!t)
        fail_msg("merge refused: %s", err);
    return t;
}

static const char *owner(const struct cluster_topology *t, unsigned slot)
{
    unsigned n = t->slot_master[slot];
    return n == CLUSTER_NO_NODE ? "-" : t->nodes[n].addr;
}

static void test_single_view(void **state)
{
    (void)state;
    struct nodes_view *v = view(BASE, "127.0.0.1");
    assert_int_equal(nodes_view_covered(v), CLUSTER_SLOTS);
    struct cluster_topology *t = merge(1, v);
    assert_int_equal(t->nnodes, 6);
    assert_int_equal(t->nmasters, 3);
    assert_string_equal(owner(t, 0), "127.0.0.1:30001");
    assert_string_equal(owner(t, 5460), "127.0.0.1:30001");
    assert_string_equal(owner(t, 5461), "127.0.0.1:30002");
    assert_string_equal(owner(t, 16383), "127.0.0.1:30003");
    unsigned r = cluster_topology_find(t, "127.0.0.1:30004");
    assert_int_not_equal(r, CLUSTER_NO_NODE);
    assert_false(t->nodes[r].is_master);
    assert_string_equal(t->nodes[t->nodes[r].master].addr, "127.0.0.1:30001");
    assert_string_equal(t->nodes[t->slot_master[0]].id, ID1);
    cluster_topology_free(t);
    nodes_view_free(v);
}

/* A stale view and a fresh one disagree about slots 0-5460: the higher
 * epoch wins, whichever view came first. */
static void test_failover_epoch_wins(void **state)
{
    (void)state;
    struct nodes_view *stale = view(BASE, "127.0.0.1");
    struct nodes_view *fresh = view(FAILED_OVER, "127.0.0.1");
    struct cluster_topology *a = merge(2, stale, fresh), *b = merge(2, fresh, stale);
    for (int i = 0; i < 2; i++) {
        struct cluster_topology *t = i ? b : a;
        assert_string_equal(owner(t, 0), "127.0.0.1:30004");
        assert_string_equal(owner(t, 5460), "127.0.0.1:30004");
        assert_string_equal(owner(t, 5461), "127.0.0.1:30002");
        assert_int_equal(t->nmasters, 3);
        unsigned old = cluster_topology_find(t, "127.0.0.1:30001");
        assert_true(old == CLUSTER_NO_NODE || !t->nodes[old].is_master);
        assert_int_equal(cluster_topology_covered(t), CLUSTER_SLOTS);
    }
    assert_memory_equal(a->slot_master, b->slot_master, sizeof a->slot_master);
    cluster_topology_free(a);
    cluster_topology_free(b);
    nodes_view_free(stale);
    nodes_view_free(fresh);
}

static void test_reshard_epoch_wins(void **state)
{
    (void)state;
    struct nodes_view *stale = view(BASE, "127.0.0.1");
    struct nodes_view *fresh = view(RESHARDED, "127.0.0.1");
    assert_int_equal(nodes_view_covered(fresh), CLUSTER_SLOTS - 1); /* 5460 migrating */
    struct cluster_topology *t = merge(2, stale, fresh);
    assert_string_equal(owner(t, 0), "127.0.0.1:30002");
    assert_string_equal(owner(t, 99), "127.0.0.1:30002");
    assert_string_equal(owner(t, 100), "127.0.0.1:30001");
    /* only the stale view names an owner for the migrating slot */
    assert_string_equal(owner(t, 5460), "127.0.0.1:30001");
    cluster_topology_free(t);
    t = merge(1, fresh);
    assert_string_equal(owner(t, 5460), "-");
    cluster_topology_free(t);
    nodes_view_free(stale);
    nodes_view_free(fresh);
}

/* A master that failed without a replica keeps its slots (workers hold
 * requests for it); a failed replica, a node in handshake and one without
 * an address are left out; an empty ip is the asked host. */
static void test_odd_nodes(void **state)
{
    (void)state;
    static const char text[] =
        ID1 " :30001@31001 myself,master - 0 0 1 connected 0-8191\n"
        ID2 " 10.0.0.2:30002@31002 master,fail - 0 0 2 disconnected 8192-16383\n"
        ID3 " 10.0.0.3:30003@31003 slave,fail " ID1 " 0 0 1 disconnected\n"
        ID4 " 10.0.0.4:30004@31004 slave,fail? " ID2 " 0 0 2 connected\n"
        ID5 " 10.0.0.5:30005@31005 handshake - 0 0 0 connected\n"
        ID6 " :0@0 master,noaddr - 0 0 0 disconnected\n";
    struct nodes_view *v = view(text, "10.0.0.1");
    struct cluster_topology *t = merge(1, v);
    assert_string_equal(owner(t, 0), "10.0.0.1:30001");
    assert_string_equal(owner(t, 16383), "10.0.0.2:30002");
    assert_int_equal(cluster_topology_find(t, "10.0.0.3:30003"), CLUSTER_NO_NODE);
    assert_int_not_equal(cluster_topology_find(t, "10.0.0.4:30004"), CLUSTER_NO_NODE);
    assert_int_equal(t->nnodes, 3);
    cluster_topology_free(t);
    nodes_view_free(v);
}

static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "abc 127.0.0.1:1@2 master - 0 0\n",                                    /* 6 fields */
        ID1 " 127.0.0.1:30001@31001 master - 0 0 x connected 0-1\n",           /* epoch */
        ID1 " 127.0.0.1:30001@31001 master - 0 0 1 connected 0-16384\n",       /* slot */
        ID1 " 127.0.0.1:30001@31001 master - 0 0 1 connected 9-3\n",           /* range */
        ID1 " 127.0.0.1:30001@31001 master - 0 0 1 connected 0-9\n"
        ID2 " 127.0.0.1:30002@31002 master - 0 0 2 connected 5-10\n",          /* twice */
        ID1 " 127.0.0.1@31001 master - 0 0 1 connected\n",                     /* port */
        ID1 "X" ID1 " 127.0.0.1:1@2 master - 0 0 1 connected\n",               /* id */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *err = NULL;
        struct nodes_view *v = nodes_view_parse(bad[i], strlen(bad[i]), "127.0.0.1", &err);
        if (v)
            fail_msg("accepted bad input %zu", i);
        assert_non_null(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_view),
        cmocka_unit_test(test_failover_epoch_wins),
        cmocka_unit_test(test_reshard_epoch_wins),
        cmocka_unit_test(test_odd_nodes),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
