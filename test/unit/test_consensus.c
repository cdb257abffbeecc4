/*
 * test_consensus.c — unit tests of consensus/ (consensus.h): the proxy slot
 * assigner (minimal movement on join and leave, balance, bounded ranges
 * under 1000 random joins/leaves, determinism), the map's text form (round
 * trip, every truncation and corruption refused), and the CLUSTER replies
 * clients see (exact bytes, checked with resp's reader).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../consensus/consensus.h"

#define S CLUSTER_SLOTS

/* ======================================================================== */
/* Helpers                                                                  */

static uint64_t rng_state = 88172645463325252ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static struct proxy_member member(unsigned k)
{
    struct proxy_member m = {0};
    uint64_t x = 0x9e3779b97f4a7c15ull * (k + 1);
    for (int i = 0; i < PROXY_ID_LEN; i++) {
        m.id[i] = "0123456789abcdef"[(x >> (4 * (i % 16))) & 15];
        if (i % 16 == 15)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    snprintf(m.ip, sizeof m.ip, "127.0.0.%u", 1 + k % 250);
    m.port = (uint16_t)(7000 + k);
    m.cport = (uint16_t)(17000 + k);
    return m;
}

static struct proxy_map *map_new(void)
{
    struct proxy_map *m = calloc(1, sizeof *m);
    assert_non_null(m);
    return m;
}

/* Every slot owned by a member; counts within `tol` of each other. */
static void check_balanced(const struct proxy_map *m, unsigned tol)
{
    unsigned lo = S, hi = 0, total = 0;
    for (unsigned s = 0; s < S; s++)
        assert_true(m->owner[s] < m->nmembers);
    for (unsigned i = 0; i < m->nmembers; i++) {
        unsigned c = proxy_map_count(m, i);
        lo = c < lo ? c : lo;
        hi = c > hi ? c : hi;
        total += c;
    }
    assert_int_equal(total, S);
    assert_true(hi - lo <= tol);
}

static const char *owner_id(const struct proxy_map *m, unsigned s)
{
    return m->members[m->owner[s]].id;
}

static unsigned max_member_ranges(const struct proxy_map *m)
{
    unsigned mx = 0;
    for (unsigned i = 0; i < m->nmembers; i++) {
        unsigned r = proxy_map_member_ranges(m, i);
        mx = r > mx ? r : mx;
    }
    return mx;
}

/* ======================================================================== */
/* Assigner                                                                 */

static void test_single(void **state)
{
    (void)state;
    struct proxy_map *m = map_new();
    struct proxy_member a = member(0);
    proxy_map_init_single(m, &a);
    struct proxy_range r[4];
    assert_int_equal(proxy_map_ranges(m, r, 4), 1);
    assert_int_equal(r[0].start, 0);
    assert_int_equal(r[0].end, S - 1);
    assert_int_equal(m->self, 0);
    assert_int_equal(proxy_map_count(m, 0), S);
    free(m);
}

/* A join moves exactly the newcomer's share, and only to the newcomer. */
static void check_join(const struct proxy_map *old, const struct proxy_map *nw,
                       const char *newcomer, int moved)
{
    unsigned n = (unsigned)nw->nmembers;
    assert_int_equal(moved, S / n);
    for (unsigned s = 0; s < S; s++)
        if (strcmp(owner_id(old, s), owner_id(nw, s)) != 0)
            assert_string_equal(owner_id(nw, s), newcomer);
    check_balanced(nw, 1);
}

/* A leave moves exactly the leaver's slots, and nothing else. */
static void check_leave(const struct proxy_map *old, const struct proxy_map *nw,
                        const char *leaver, int moved)
{
    int idx = proxy_map_find(old, leaver);
    assert_true(idx >= 0);
    assert_int_equal(moved, (int)proxy_map_count(old, (unsigned)idx));
    for (unsigned s = 0; s < S; s++) {
        if (strcmp(owner_id(old, s), owner_id(nw, s)) != 0)
            assert_string_equal(owner_id(old, s), leaver);
        assert_string_not_equal(owner_id(nw, s), leaver);
    }
    check_balanced(nw, 1);
}

static void test_join_leave_sequence(void **state)
{
    (void)state;
    struct proxy_map *a = map_new(), *b = map_new();
    struct proxy_member m0 = member(0);
    proxy_map_init_single(a, &m0);
    for (unsigned k = 1; k < 8; k++) {
        struct proxy_member m = member(k);
        int moved = proxy_map_join(a, &m, b);
        check_join(a, b, m.id, moved);
        assert_true(max_member_ranges(b) <= 2 * b->nmembers);
        struct proxy_map *t = a; a = b; b = t;
    }
    /* the three-proxy case of the integration tests: ~16384/3 moves */
    for (unsigned k = 7; k >= 3; k--) {
        struct proxy_member m = member(k);
        int moved = proxy_map_leave(a, m.id, b);
        check_leave(a, b, m.id, moved);
        assert_true(max_member_ranges(b) <= 2 * b->nmembers);
        struct proxy_map *t = a; a = b; b = t;
    }
    assert_int_equal(a->nmembers, 3);
    /* leave and rejoin the same member: exactly its share comes back */
    struct proxy_member m1 = member(1);
    int moved = proxy_map_leave(a, m1.id, b);
    check_leave(a, b, m1.id, moved);
    moved = proxy_map_join(b, &m1, a);
    check_join(b, a, m1.id, moved);
    assert_int_equal(moved, S / 3);
    assert_int_equal(proxy_map_join(a, &m1, b), -1);   /* already in */
    assert_int_equal(proxy_map_leave(a, member(99).id, b), -1); /* unknown */
    free(a);
    free(b);
}

/* The same live set, in any order, gives the same map. */
static void test_deterministic(void **state)
{
    (void)state;
    struct proxy_map *base = map_new(), *x = map_new(), *y = map_new();
    struct proxy_member m0 = member(0);
    proxy_map_init_single(base, &m0);
    struct proxy_member live[5], rev[5];
    for (unsigned i = 0; i < 5; i++) {
        live[i] = member(i);
        rev[4 - i] = live[i];
    }
    assert_true(proxy_map_assign(base, live, 5, x) >= 0);
    assert_true(proxy_map_assign(base, rev, 5, y) >= 0);
    assert_memory_equal(x->owner, y->owner, sizeof x->owner);
    assert_memory_equal(x->members, y->members, sizeof x->members);
    for (unsigned i = 1; i < 5; i++)
        assert_true(strcmp(x->members[i - 1].id, x->members[i].id) < 0);
    check_balanced(x, 1);
    /* duplicate ids and bad ids are refused */
    live[1] = live[0];
    assert_int_equal(proxy_map_assign(base, live, 5, x), -1);
    live[1] = member(1);
    live[1].id[3] = 'X';
    assert_int_equal(proxy_map_assign(base, live, 5, x), -1);
    assert_int_equal(proxy_map_assign(base, live, 0, x), -1);
    free(base);
    free(x);
    free(y);
}

/* Several members join and leave at once (a leader that starts with a
 * stored map and hears from everyone in its first heartbeat). */
static void test_simultaneous(void **state)
{
    (void)state;
    struct proxy_map *a = map_new(), *b = map_new();
    struct proxy_member live[6];
    for (unsigned i = 0; i < 6; i++)
        live[i] = member(i);
    proxy_map_init_single(a, &live[0]);
    assert_int_equal(proxy_map_assign(a, live, 4, b), S - S / 4 - (S % 4 > 0));
    check_balanced(b, 1);
    /* 0 and 1 leave, 4 and 5 join */
    int moved = proxy_map_assign(b, live + 2, 4, a);
    unsigned gone = proxy_map_count(b, (unsigned)proxy_map_find(b, live[0].id)) +
                    proxy_map_count(b, (unsigned)proxy_map_find(b, live[1].id));
    assert_int_equal(moved, (int)gone);
    check_balanced(a, 1);
    free(a);
    free(b);
}

/* 1000 random joins and leaves: balance, complete ownership, minimal moves,
 * bounded ranges. */
static void test_random_churn(void **state)
{
    (void)state;
    struct proxy_map *a = map_new(), *b = map_new();
    bool in[64] = {0};
    unsigned n = 1, worst = 0, defrag_total = 0, defrag_changes = 0;
    in[0] = true;
    struct proxy_member m0 = member(0);
    proxy_map_init_single(a, &m0);
    for (int step = 0; step < 1000; step++) {
        bool join = n == 1 || (n < 12 && rng() % 2 == 0);
        unsigned k;
        do
            k = (unsigned)(rng() % 64);
        while (in[k] == join);
        struct proxy_member m = member(k);
        int moved;
        if (join) {
            moved = proxy_map_join(a, &m, b);
            check_join(a, b, m.id, moved);
            n++;
        } else {
            moved = proxy_map_leave(a, m.id, b);
            check_leave(a, b, m.id, moved);
            n--;
        }
        in[k] = join;
        struct proxy_map *before = proxy_map_dup(b);
        int extra = proxy_map_defrag(b, PROXY_MAP_RANGE_LIMIT(n), PROXY_MAP_DEFRAG_BUDGET(n));
        assert_true(extra >= 0 && (unsigned)extra <= PROXY_MAP_DEFRAG_BUDGET(n));
        if (extra == 0)
            assert_memory_equal(before->owner, b->owner, sizeof b->owner);
        for (unsigned i = 0; i < b->nmembers; i++)
            assert_int_equal(proxy_map_count(before, i), proxy_map_count(b, i));
        proxy_map_free(before);
        defrag_total += (unsigned)extra;
        defrag_changes += extra > 0;
        unsigned r = max_member_ranges(b);
        worst = r > worst ? r : worst;
        if (r > 2 * n + 2) {
            free(a);
            free(b);
            fail_msg("step %d: %u members, a member has %u ranges", step, n, r);
        }
        struct proxy_map *t = a; a = b; b = t;
    }
    struct proxy_range ranges[1];
    print_message("churn: worst ranges/member %u, final %zu ranges for %zu members, "
                  "defrag moved %u slots in %u of 1000 changes\n", worst,
                  proxy_map_ranges(a, ranges, 0), a->nmembers, defrag_total, defrag_changes);
    free(a);
    free(b);
}

/* ======================================================================== */
/* Text form                                                                */

static void churned_map(struct proxy_map *out, unsigned n)
{
    struct proxy_map *tmp = map_new();
    struct proxy_member m0 = member(0);
    proxy_map_init_single(out, &m0);
    for (unsigned k = 1; k < n; k++) {
        struct proxy_member m = member(k);
        assert_true(proxy_map_join(out, &m, tmp) > 0);
        memcpy(out, tmp, sizeof *tmp);
    }
    free(tmp);
    out->term = 7;
    out->version = 42;
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    struct proxy_map *m = map_new(), *d = map_new();
    churned_map(m, 5);
    struct resp_buf b = {0};
    proxy_map_encode(m, &b);
    assert_int_equal(proxy_map_decode(b.data, b.len, d), 0);
    assert_int_equal(d->term, 7);
    assert_int_equal(d->version, 42);
    assert_int_equal(d->nmembers, 5);
    assert_memory_equal(d->members, m->members, 5 * sizeof m->members[0]);
    assert_memory_equal(d->owner, m->owner, sizeof m->owner);
    assert_int_equal(d->self, -1);
    /* every truncation is refused */
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(proxy_map_decode(b.data, cut, d), -1);
    /* corruptions */
    char *c = malloc(b.len);
    const char *bad[] = {"ringslot-map 2", "ringslot-map 1 x", "ringslot-map 1 1 1 0\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(proxy_map_decode(bad[i], strlen(bad[i]), d), -1);
    memcpy(c, b.data, b.len);
    char *eq = strstr(c, "=0");
    eq[1] = '9'; /* owner out of range */
    assert_int_equal(proxy_map_decode(c, b.len, d), -1);
    memcpy(c, b.data, b.len);
    char *first = strchr(c, '\n') + 1;
    first[5] = 'Z'; /* bad id */
    assert_int_equal(proxy_map_decode(c, b.len, d), -1);
    free(c);
    resp_buf_free(&b);
    free(m);
    free(d);
}

static void test_ids(void **state)
{
    (void)state;
    char a[PROXY_ID_LEN + 1], b[PROXY_ID_LEN + 1];
    proxy_id_random(a);
    proxy_id_random(b);
    assert_true(proxy_id_valid(a, strlen(a)));
    assert_string_not_equal(a, b);
    assert_false(proxy_id_valid("abc", 3));
    assert_false(proxy_id_valid("ABCDEF0123456789ABCDEF0123456789ABCDEF01", 40));
}

/* ======================================================================== */
/* Replies                                                                  */

/* Three members owning 0-5460, 5461-10922, 10923-16383 (ids sorted). */
static struct proxy_map *three(void)
{
    struct proxy_map *m = map_new();
    struct proxy_member a = member(0);
    proxy_map_init_single(m, &a);
    m->nmembers = 3;
    for (unsigned i = 0; i < 3; i++) {
        m->members[i] = member(i);
        memset(m->members[i].id, "abc"[i], PROXY_ID_LEN);
    }
    for (unsigned s = 0; s < S; s++)
        m->owner[s] = s <= 5460 ? 0 : s <= 10922 ? 1 : 2;
    m->version = 9;
    proxy_map_set_self(m, &m->members[1]);
    return m;
}

static struct resp_value read_reply(const struct resp_buf *b)
{
    struct resp_value v;
    size_t used;
    assert_int_equal(resp_read_value(b->data, b->len, &v, &used), RESP_OK);
    assert_int_equal(used, b->len);
    return v;
}

static void test_reply_slots(void **state)
{
    (void)state;
    struct proxy_map *m = three();
    struct resp_buf b = {0};
    consensus_reply_cluster_slots(m, 2, &b);
    const char *want_head = "*3\r\n*3\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:7000\r\n$40\r\n"
                            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n*0\r\n*3\r\n:5461\r\n";
    assert_memory_equal(b.data, want_head, strlen(want_head));
    struct resp_value v = read_reply(&b);
    assert_int_equal(v.count, 3);
    assert_int_equal(v.elems[2].elems[0].integer, 10923);
    assert_int_equal(v.elems[2].elems[1].integer, 16383);
    assert_int_equal(v.elems[2].elems[2].elems[1].integer, 7002);
    resp_value_free(&v);
    b.len = 0;
    consensus_reply_cluster_slots(m, 3, &b);
    assert_non_null(memmem(b.data, b.len, "\r\n%0\r\n", 6));
    resp_buf_free(&b);
    free(m);
}

static void test_reply_shards(void **state)
{
    (void)state;
    struct proxy_map *m = three();
    struct resp_buf b = {0};
    consensus_reply_cluster_shards(m, 2, &b);
    const char *want = "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*1\r\n*14\r\n"
                       "$2\r\nid\r\n$40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n$4\r\nport\r\n"
                       ":7000\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n"
                       "$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n"
                       "$6\r\nhealth\r\n$6\r\nonline\r\n*4\r\n";
    assert_memory_equal(b.data, want, strlen(want));
    struct resp_value v = read_reply(&b);
    resp_value_free(&v);
    b.len = 0;
    consensus_reply_cluster_shards(m, 3, &b);
    assert_memory_equal(b.data, "*3\r\n%2\r\n$5\r\nslots", 17);
    v = read_reply(&b);
    assert_int_equal(v.elems[0].type, RESP_T_MAP);
    resp_value_free(&v);
    resp_buf_free(&b);
    free(m);
}

static void test_reply_nodes_info_myid(void **state)
{
    (void)state;
    struct proxy_map *m = three();
    m->owner[100] = 2; /* a one-slot range prints as "100" */
    struct resp_buf b = {0};
    consensus_reply_cluster_nodes(m, 2, &b);
    struct resp_value v = read_reply(&b);
    char *text = strndup(v.str, v.len);
    char *l0 = text, *l1 = strchr(l0, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
    char id[41], addr[64], flags[32], rest[128];
    long long ms, epoch;
    assert_int_equal(sscanf(l1, "%40s %63s %31s - 0 %lld %lld connected %127[^\n]", id, addr,
                            flags, &ms, &epoch, rest), 6);
    assert_string_equal(addr, "127.0.0.2:7001@17001");
    assert_string_equal(flags, "myself,master");
    assert_int_equal(epoch, 9);
    assert_string_equal(rest, "5461-10922");
    assert_true(ms > 0);
    assert_non_null(strstr(l0, " master - 0 "));
    assert_non_null(strstr(l0, "connected 0-99 101-5460\n"));
    assert_non_null(strstr(l2, "connected 100 10923-16383\n"));
    assert_int_equal(text[v.len - 1], '\n');
    free(text);
    resp_value_free(&v);
    b.len = 0;
    consensus_reply_cluster_nodes(m, 3, &b);
    assert_memory_equal(strchr(b.data, '\n') + 1, "txt:aaaa", 8);
    assert_int_equal(b.data[0], '=');
    v = read_reply(&b);
    resp_value_free(&v);

    b.len = 0;
    consensus_reply_cluster_info(m, 2, &b);
    v = read_reply(&b);
    assert_non_null(memmem(v.str, v.len, "cluster_state:ok\r\ncluster_slots_assigned:16384\r\n", 48));
    assert_non_null(memmem(v.str, v.len, "cluster_known_nodes:3\r\ncluster_size:3\r\n", 39));
    assert_non_null(memmem(v.str, v.len, "cluster_current_epoch:9\r\n", 25));
    resp_value_free(&v);
    m->owner[5] = PROXY_NO_OWNER;
    b.len = 0;
    consensus_reply_cluster_info(m, 2, &b);
    assert_non_null(memmem(b.data, b.len, "cluster_state:fail", 18));

    b.len = 0;
    consensus_reply_cluster_myid(m, 2, &b);
    assert_memory_equal(b.data, "$40\r\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\r\n", 47);
    b.len = 0;
    assert_false(consensus_reply_moved(m, 5, &b));
    assert_true(consensus_reply_moved(m, 12000, &b));
    assert_memory_equal(b.data, "-MOVED 12000 127.0.0.3:7002\r\n", b.len);
    assert_string_equal(consensus_slot_owner(m, 0)->id, m->members[0].id);
    assert_null(consensus_slot_owner(m, 5));
    assert_null(consensus_slot_owner(m, S));
    resp_buf_free(&b);
    free(m);
}

static void test_single_map(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    char path[] = "/tmp/ringslot-test-id-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *id = "0123456789abcdef0123456789abcdef01234567\n";
    assert_int_equal(write(fd, id, strlen(id)), (ssize_t)strlen(id));
    close(fd);
    snprintf(cfg.node_id_file, sizeof cfg.node_id_file, "%s", path);
    cfg.cport = 0;
    struct proxy_map *m = consensus_single_map(&cfg, "0.0.0.0", 7777);
    unlink(path);
    assert_string_equal(m->me.id, "0123456789abcdef0123456789abcdef01234567");
    assert_string_equal(m->members[0].ip, "127.0.0.1");
    assert_int_equal(m->members[0].cport, 17777);
    assert_int_equal(m->self, 0);
    struct resp_buf b = {0};
    consensus_reply_cluster_slots(m, 2, &b);
    struct resp_value v = read_reply(&b);
    assert_int_equal(v.count, 1);
    assert_int_equal(v.elems[0].elems[1].integer, S - 1);
    resp_value_free(&v);
    resp_buf_free(&b);
    proxy_map_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_join_leave_sequence),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_simultaneous),
        cmocka_unit_test(test_random_churn),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_reply_slots),
        cmocka_unit_test(test_reply_shards),
        cmocka_unit_test(test_reply_nodes_info_myid),
        cmocka_unit_test(test_single_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
