/*
 * test_cluster.c — unit tests of cluster/ (cluster.h): CRC16 and key slots,
 * topology from CLUSTER SLOTS, and the command table (built-in lookups, key
 * positions for every shape of key spec, tables built from COMMAND replies),
 * host:port splitting and lower-casing.
 *
 * The slot vectors and the COMMAND / CLUSTER SLOTS replies below were
 * captured from a real redis-server 7.0.15 (a throwaway cluster-enabled
 * instance for CLUSTER KEYSLOT), so these tests need no server to run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cluster/cluster.h"

/* ======================================================================== */
/* Helpers: hand-built resp_value trees                                     */

static struct resp_value v_int(long long n)
{
    return (struct resp_value){.type = RESP_T_INTEGER, .integer = n};
}

static struct resp_value v_str(const char *s)
{
    return (struct resp_value){.type = RESP_T_BULK, .str = s, .len = strlen(s)};
}

static struct resp_value v_nil(void)
{
    return (struct resp_value){.type = RESP_T_BULK, .is_null = true};
}

/* An array of n values (passed by value); freed by resp_value_free. */
static struct resp_value v_arr(size_t n, ...)
{
    struct resp_value a = {.type = RESP_T_ARRAY, .count = n};
    va_list ap;

    a.elems = n ? calloc(n, sizeof(*a.elems)) : NULL;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        a.elems[i] = va_arg(ap, struct resp_value);
    va_end(ap);
    return a;
}

/* [ip, port, id] */
static struct resp_value v_node(const char *ip, long long port, const char *id)
{
    return v_arr(3, v_str(ip), v_int(port), v_str(id));
}

/* Parse captured RESP text into a tree (resp's reader). */
static struct resp_value parse(const char *text, size_t len)
{
    struct resp_value v;
    size_t used = 0;

    assert_int_equal(resp_read_value(text, len, &v, &used), RESP_OK);
    assert_int_equal(used, len);
    return v;
}

/* ======================================================================== */
/* Helpers: calls                                                           */

#define MAX_ARGS 40

struct call {
    int argc;
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
};

static struct call mkcall(const char *first, ...)
{
    struct call c = {0};
    va_list ap;

    va_start(ap, first);
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(c.argc < MAX_ARGS);
        c.argv[c.argc] = a;
        c.lens[c.argc++] = strlen(a);
    }
    va_end(ap);
    return c;
}
#define CALL(...) mkcall(__VA_ARGS__, (const char *)NULL)

static const struct command_info *lookup(const struct command_table *t, struct call c)
{
    return command_lookup(t, c.argc, c.argv, c.lens);
}

/* Key positions as text ("1,3", "" for none, "-1" for malformed), so a
 * failure prints both lists. */
static void keys_text(const struct command_table *t, struct call c, int max, char *out)
{
    const struct command_info *ci = lookup(t, c);
    int keys[MAX_ARGS];
    char *p = out;

    assert_non_null(ci);
    int n = command_key_positions(ci, c.argc, c.argv, c.lens, keys, max);
    if (n < 0) {
        sprintf(out, "%d", n);
        return;
    }
    *p = '\0';
    for (int i = 0; i < n; i++)
        p += sprintf(p, i ? ",%d" : "%d", keys[i]);
}

#define EXPECT_KEYS(t, want, ...)                                   \
    do {                                                            \
        char got_[256];                                             \
        keys_text((t), CALL(__VA_ARGS__), MAX_ARGS, got_);          \
        assert_string_equal(got_, (want));                          \
    } while (0)

/* ======================================================================== */
/* CRC16 and key slots                                                      */

static unsigned slot_of(const char *key)
{
    return cluster_keyslot(key, strlen(key));
}

static void test_crc16_vectors(void **state)
{
    (void)state;
    /* The CRC-16/XMODEM check value, as in Redis's crc16.c test. */
    assert_int_equal(cluster_crc16("123456789", 9), 0x31C3);
    assert_int_equal(cluster_crc16("", 0), 0);
    assert_int_equal(cluster_crc16(NULL, 0), 0);
    assert_int_equal(cluster_crc16("A", 1), 0x58E5);
}

static void test_keyslot_hash_tags(void **state)
{
    (void)state;
    assert_int_equal(slot_of("foo"), 12182);
    assert_int_equal(slot_of("bar"), 5061);
    assert_int_equal(slot_of("{user1000}.following"), slot_of("{user1000}.followers"));
    assert_int_equal(slot_of("{user1000}.following"), slot_of("user1000"));
    /* Empty first tag: the whole key, even though "{bar}" follows. */
    assert_int_equal(slot_of("foo{}{bar}"), cluster_crc16("foo{}{bar}", 10) & 16383);
    /* First '{', then the first '}' after it: the tag is "{bar". */
    assert_int_equal(slot_of("foo{{bar}}zap"), cluster_crc16("{bar", 4) & 16383);
    assert_int_equal(slot_of("{}"), cluster_crc16("{}", 2) & 16383);
    assert_int_equal(slot_of("foo{bar}{zap}"), slot_of("bar"));
    /* No closing brace, or a '}' only before the '{': the whole key. */
    assert_int_equal(slot_of("{bar"), cluster_crc16("{bar", 4) & 16383);
    assert_int_equal(slot_of("}{a}"), slot_of("a"));
    assert_int_equal(cluster_keyslot(NULL, 0), 0);
    /* Bytes after a NUL still count (keys are binary). */
    assert_int_equal(cluster_keyslot("a\0b", 3), cluster_crc16("a\0b", 3) & 16383);
}

/* CLUSTER KEYSLOT answers of redis-server 7.0.15 (cluster-enabled). */
static const struct {
    const char *key;
    size_t len;
    unsigned slot;
} real_slots[] = {
    {"foo", 3, 12182},
    {"bar", 3, 5061},
    {"", 0, 0},
    {"a", 1, 15495},
    {"{user1000}.following", 20, 3443},
    {"{user1000}.followers", 20, 3443},
    {"foo{}{bar}", 10, 8363},
    {"foo{{bar}}zap", 13, 4015},
    {"{}", 2, 15257},
    {"foo{bar}{zap}", 13, 5061},
    {"{bar", 4, 4015},
    {"bar}", 4, 6624},
    {"}{", 2, 12793},
    {"123456789", 9, 12739},
    {"hello world", 11, 15332},
    {"tYgjmUh:Bel", 11, 8979},
    {"1iEl2hpChYgCfr", 14, 7353},
    {"1spNxnyVmi", 10, 6166},
    {"hA}2O76UMFxFkM}R5Kj", 19, 3902},
    {"-1vR", 4, 9237},
    {"{1fjO", 5, 7973},
    {"S}6ilI8ihN5", 11, 6537},
    {"XSc7Tvo}hB", 10, 5110},
    {"qFYY}kv5ZJ", 10, 6940},
    {"3J1TW", 5, 16119},
    {"tkwtDDb{", 8, 6589},
    {"xHKas1VOq-g6YYZYn9Z", 19, 9569},
    {"yi", 2, 3918},
    {"4uoRgna", 7, 12537},
    {"tmUdjAWtGSU8po{799N", 19, 7633},
    {"snR", 3, 5066},
    {"H9u_cAUsdMlH_UvTC:QCyEZD", 24, 10625},
    {"_}TddJ8", 7, 13889},
    {"yS5SUkCnD", 9, 8568},
    {"zRA9a9SkpXz9w3Ql", 16, 6976},
    {"Y7Zkuvqdt7s8Stqcbnr3yBdG", 24, 4011},
    {"L:EPH1q", 7, 3347},
    {"T6", 2, 5358},
    {"_1:qt-c4xatws8phP_9nhF", 22, 16339},
    {"Jfm:5di", 7, 5259},
    {"P:-zJ5-9:F_Hz5r", 15, 16351},
    {"pY4OjE2jBMptUs", 14, 16308},
    {"r7CmY{uCu", 9, 7228},
    {"3-ZR1zTOlUcR64cXQ_L-ioD", 23, 8603},
    {"kHIf", 4, 2293},
    {"Iq2HZt", 6, 16335},
    {"-}PlJhx2jIclHkCiHp", 18, 6877},
    {"bR1IqfEouHgxzNN", 15, 1626},
    {"AL5:wIScGebc:y-8F", 17, 6677},
    {"n3}Y:NBDRzrZSgq", 15, 10368},
    {"j", 1, 3564},
    {"G3uhkW:KFLf6xuI5aHUQP", 21, 15814},
    {"eNBTxaQW", 8, 11127},
    {"8J:", 3, 6426},
    {"zF:alHlsZfYcMMDktXP}t", 21, 10889},
    {"user:{42}:name", 14, 8000},
    {"{42}", 4, 8000},
    {"x{a}y{b}z", 9, 15495},
    {"{{}}", 4, 4092},
    {"{a}{b}", 6, 15495},
    {"a{b}c}", 6, 3300},
    {"}{a}", 4, 15495},
    {"{{a}}", 5, 10276},
    {"{ }", 3, 9314},
    {"{\000}", 3, 0},
    {"\377\376{\200}", 5, 4488},
};

static void test_keyslot_matches_redis(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(real_slots) / sizeof(real_slots[0]); i++) {
        unsigned got = cluster_keyslot(real_slots[i].key, real_slots[i].len);
        if (got != real_slots[i].slot)
            fail_msg("keyslot(\"%s\") = %u, Redis says %u", real_slots[i].key, got,
                     real_slots[i].slot);
    }
}

/* Longer keys, past the 8-byte blocks cluster_crc16 takes at once (CLUSTER
 * KEYSLOT of redis-server 7.0.15 again). */
static void test_keyslot_long_keys_match_redis(void **state)
{
    (void)state;
    static const struct { const char *key; unsigned slot; } cases[] = {
        {"key:000000012345", 12533}, /* redis-benchmark's keys */
        {"key:000000099999", 7382},
        {"key:__rand_int__", 13782},
        {"01234567", 10},
        {"012345678", 9239},
        {"0123456789abcdef0", 12149},
        {"ringslot slices its CRC16 eight bytes at a time", 13453},
        {"{tagged}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 15945},
        {"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{tag-after-forty-bytes}", 13533},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (slot_of(cases[i].key) != cases[i].slot)
            fail_msg("keyslot(\"%s\") = %u, Redis says %u", cases[i].key,
                     slot_of(cases[i].key), cases[i].slot);
    char key[256];
    for (int i = 0; i < 256; i++) /* every byte value; the tag is "|" */
        key[i] = (char)i;
    assert_int_equal(cluster_keyslot(key, 256), 16155);
    memset(key, 0xff, 33);
    assert_int_equal(cluster_keyslot(key, 33), 15356);
    memset(key, 'a', 100);
    assert_int_equal(cluster_keyslot(key, 100), 5960);
}

/* The bitwise definition of CRC-16/XMODEM, one bit at a time. */
static uint16_t crc16_bitwise(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* Every entry of the eight slicing tables: one non-zero byte at each
 * position of one and of two 8-byte blocks (with a partial block after),
 * all 256 values, against the bitwise definition. */
static void test_crc16_every_table_entry(void **state)
{
    (void)state;
    unsigned char buf[19];
    for (size_t len = 8; len <= sizeof buf; len += 11)
        for (size_t pos = 0; pos < len; pos++)
            for (int b = 0; b < 256; b++) {
                memset(buf, 0, sizeof buf);
                buf[pos] = (unsigned char)b;
                uint16_t want = crc16_bitwise(buf, len);
                uint16_t got = cluster_crc16((const char *)buf, len);
                if (got != want)
                    fail_msg("len %zu, byte %d at %zu: %04x, want %04x", len, b, pos, got, want);
            }
}

/* The hash tag rule and CRC as they were before slicing: bytewise, with
 * plain loops instead of memchr. */
static unsigned keyslot_reference(const unsigned char *key, size_t len)
{
    size_t open = 0, close;
    while (open < len && key[open] != '{')
        open++;
    for (close = open + 1; close < len && key[close] != '}'; close++)
        ;
    if (open < len && close < len && close > open + 1)
        return crc16_bitwise(key + open + 1, close - open - 1) & 16383;
    return crc16_bitwise(key, len) & 16383;
}

/* Random keys of every length up to 300 bytes, braces frequent, from a
 * fixed seed. */
static void test_keyslot_random_keys(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    unsigned char key[300];
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)round % (sizeof key + 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u; /* LCG */
            unsigned r = (unsigned)(seed >> 33);
            key[i] = r % 16 == 0 ? '{' : r % 16 == 1 ? '}' : (unsigned char)(r >> 8);
        }
        unsigned got = cluster_keyslot((const char *)key, len);
        unsigned want = keyslot_reference(key, len);
        if (got != want)
            fail_msg("round %d, len %zu: slot %u, want %u", round, len, got, want);
        if (cluster_crc16((const char *)key, len) != crc16_bitwise(key, len))
            fail_msg("round %d, len %zu: crc16 differs", round, len);
    }
}

/* ======================================================================== */
/* Topology                                                                 */

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccc"

/* Three masters; C's slots come first in the reply but B serves slot 0,
 * and A has two ranges, so the order must come from slots, not the reply. */
static struct resp_value three_masters(void)
{
    return v_arr(4,
        v_arr(4, v_int(10923), v_int(16383), v_node("10.0.0.3", 7002, ID_C),
              v_node("10.0.0.6", 7005, "f3")),
        v_arr(4, v_int(5461), v_int(10922), v_node("10.0.0.1", 7000, ID_A),
              v_node("10.0.0.4", 7003, "f1")),
        v_arr(5, v_int(0), v_int(99), v_node("10.0.0.2", 7001, ID_B),
              v_node("10.0.0.5", 7004, "f2"), v_node("10.0.0.7", 7006, "f2b")),
        v_arr(4, v_int(100), v_int(5460), v_node("10.0.0.1", 7000, ID_A),
              v_node("10.0.0.4", 7003, "f1")));
}

static void test_topology_three_masters(void **state)
{
    (void)state;
    struct resp_value r = three_masters();
    const char *err = NULL;
    struct cluster_topology *t = cluster_topology_from_slots(&r, NULL, &err);

    assert_non_null(t);
    assert_null(err);
    assert_int_equal(t->nnodes, 7);
    assert_int_equal(t->nmasters, 3);
    /* masters by first slot: B (0), A (100), C (10923) */
    assert_string_equal(t->nodes[0].addr, "10.0.0.2:7001");
    assert_string_equal(t->nodes[1].addr, "10.0.0.1:7000");
    assert_string_equal(t->nodes[2].addr, "10.0.0.3:7002");
    for (int i = 0; i < 3; i++)
        assert_true(t->nodes[i].is_master);
    assert_string_equal(t->nodes[1].id, ID_A);
    assert_string_equal(t->nodes[1].host, "10.0.0.1");
    assert_int_equal(t->nodes[1].port, 7000);
    /* replicas grouped by master, in reply order within a master */
    assert_string_equal(t->nodes[3].addr, "10.0.0.5:7004");
    assert_string_equal(t->nodes[4].addr, "10.0.0.7:7006");
    assert_string_equal(t->nodes[5].addr, "10.0.0.4:7003");
    assert_string_equal(t->nodes[6].addr, "10.0.0.6:7005");
    assert_int_equal(t->nodes[3].master, 0);
    assert_int_equal(t->nodes[4].master, 0);
    assert_int_equal(t->nodes[5].master, 1);
    assert_int_equal(t->nodes[6].master, 2);
    assert_false(t->nodes[5].is_master);
    assert_string_equal(t->nodes[5].id, "f1");
    /* slots */
    assert_int_equal(t->slot_master[0], 0);
    assert_int_equal(t->slot_master[99], 0);
    assert_int_equal(t->slot_master[100], 1);
    assert_int_equal(t->slot_master[5461], 1);
    assert_int_equal(t->slot_master[10922], 1);
    assert_int_equal(t->slot_master[10923], 2);
    assert_int_equal(t->slot_master[16383], 2);
    assert_int_equal(cluster_topology_covered(t), 16384);
    /* find */
    assert_int_equal(cluster_topology_find(t, "10.0.0.4:7003"), 5);
    assert_int_equal(cluster_topology_find(t, "10.0.0.3:7002"), 2);
    assert_int_equal(cluster_topology_find(t, "10.0.0.9:7000"), CLUSTER_NO_NODE);
    cluster_topology_free(t);
    resp_value_free(&r);
}

/* Replicas (that could take over) per master; INFO's lowest version. */
static void test_topology_replicas_and_versions(void **state)
{
    (void)state;
    struct resp_value r = three_masters();
    const char *err = NULL;
    struct cluster_topology *t = cluster_topology_from_slots(&r, NULL, &err);

    assert_non_null(t);
    assert_true(cluster_topology_has_replica(t, 0));
    assert_true(cluster_topology_has_replica(t, 1));
    assert_true(cluster_topology_has_replica(t, 2));
    t->nnodes = 4; /* only master 0's first replica left */
    assert_true(cluster_topology_has_replica(t, 0));
    assert_false(cluster_topology_has_replica(t, 1));
    assert_false(cluster_topology_has_replica(t, 2));
    t->nnodes = 7;
    assert_int_equal(t->node_timeout_ms, 0);      /* the publisher's to set */
    assert_string_equal(t->redis_version, "");
    cluster_topology_free(t);
    resp_value_free(&r);

    assert_true(cluster_version_cmp("7.0.15", "7.0.15") == 0);
    assert_true(cluster_version_cmp("7.0.9", "7.0.15") < 0);   /* not strcmp */
    assert_true(cluster_version_cmp("7.2.0", "7.0.15") > 0);
    assert_true(cluster_version_cmp("6.2.14", "7.0.0") < 0);
    assert_true(cluster_version_cmp("10.0.0", "9.9.9") > 0);
    assert_true(cluster_version_cmp("7.0", "7.0.0") == 0);
    assert_true(cluster_version_cmp("7.0.1", "7.0") > 0);
    assert_true(cluster_version_cmp("7.2.0-rc1", "7.2.0-rc2") < 0);
    assert_true(cluster_version_cmp("", "") == 0);
}

/* Parsed topologies have no readers; a copy is deep (the control thread
 * republishes one with its masters' healthy replicas filled in). */
static void test_topology_readers_and_dup(void **state)
{
    (void)state;
    struct resp_value r = three_masters();
    const char *err = NULL;
    struct cluster_topology *t = cluster_topology_from_slots(&r, NULL, &err);

    assert_non_null(t);
    for (size_t i = 0; i < t->nnodes; i++)
        assert_int_equal(t->nodes[i].nreaders, 0);
    t->version = 7;
    struct cluster_topology *d = cluster_topology_dup(t);
    assert_non_null(d);
    assert_ptr_not_equal(d->nodes, t->nodes);
    assert_int_equal(d->version, 7);
    assert_int_equal(d->nnodes, t->nnodes);
    assert_memory_equal(d->slot_master, t->slot_master, sizeof t->slot_master);
    d->nodes[0].readers[d->nodes[0].nreaders++] = 3;
    assert_int_equal(t->nodes[0].nreaders, 0);
    assert_string_equal(d->nodes[5].addr, "10.0.0.4:7003");
    cluster_topology_free(d);
    cluster_topology_free(t);
    resp_value_free(&r);
}

static void test_topology_ipv6_empty_ip_partial(void **state)
{
    (void)state;
    struct resp_value r = v_arr(2,
        v_arr(4, v_int(0), v_int(8191), v_node("", 6379, ID_A), v_node("::1", 6380, "r")),
        v_arr(3, v_int(9000), v_int(9000),
              v_arr(2, v_nil(), v_int(6381)))); /* null ip, no id */
    const char *err = NULL;
    struct cluster_topology *t = cluster_topology_from_slots(&r, "192.168.1.9", &err);

    assert_non_null(t);
    assert_int_equal(t->nnodes, 3);
    assert_string_equal(t->nodes[0].addr, "192.168.1.9:6379");
    assert_string_equal(t->nodes[0].host, "192.168.1.9");
    assert_string_equal(t->nodes[1].addr, "192.168.1.9:6381");
    assert_string_equal(t->nodes[1].id, "");
    assert_string_equal(t->nodes[2].addr, "[::1]:6380");
    assert_string_equal(t->nodes[2].host, "::1");
    assert_int_equal(t->nodes[2].master, 0);
    assert_int_equal(cluster_topology_covered(t), 8192 + 1);
    assert_int_equal(t->slot_master[8192], CLUSTER_NO_NODE);
    assert_int_equal(t->slot_master[9000], 1);
    assert_int_equal(cluster_topology_find(t, "[::1]:6380"), 2);
    cluster_topology_free(t);

    /* An empty ip with nothing to fill it in is an error. */
    t = cluster_topology_from_slots(&r, NULL, &err);
    assert_null(t);
    assert_non_null(err);
    resp_value_free(&r);
}

static void expect_bad_slots(struct resp_value r)
{
    const char *err = NULL;
    struct cluster_topology *t = cluster_topology_from_slots(&r, "127.0.0.1", &err);

    assert_null(t);
    assert_non_null(err);
    resp_value_free(&r);
}

static void test_topology_rejects_bad_replies(void **state)
{
    (void)state;
    expect_bad_slots(v_int(3));                                           /* not an array */
    expect_bad_slots(v_arr(1, v_arr(2, v_int(0), v_int(5))));             /* no master */
    expect_bad_slots(v_arr(1, v_arr(3, v_int(5), v_int(4), v_node("a", 1, ""))));  /* start>end */
    expect_bad_slots(v_arr(1, v_arr(3, v_int(0), v_int(16384), v_node("a", 1, ""))));
    expect_bad_slots(v_arr(1, v_arr(3, v_int(-1), v_int(3), v_node("a", 1, ""))));
    expect_bad_slots(v_arr(1, v_arr(3, v_str("0"), v_int(3), v_node("a", 1, ""))));
    expect_bad_slots(v_arr(1, v_arr(3, v_int(0), v_int(3), v_node("a", 0, ""))));     /* port */
    expect_bad_slots(v_arr(1, v_arr(3, v_int(0), v_int(3), v_node("a", 65536, ""))));
    expect_bad_slots(v_arr(1, v_arr(3, v_int(0), v_int(3), v_arr(1, v_str("a")))));
    expect_bad_slots(v_arr(1, v_arr(3, v_int(0), v_int(3),
                                    v_node("a", 1, ID_A "x"))));          /* 41-byte id */
    expect_bad_slots(v_arr(1, v_arr(3, v_int(0), v_int(3),
        v_node("a-very-long-host-name-that-does-not-fit-the-host-field.example", 1, ""))));
    expect_bad_slots(v_arr(2, v_arr(3, v_int(0), v_int(10), v_node("a", 1, "")),
                           v_arr(3, v_int(10), v_int(20), v_node("b", 1, "")))); /* overlap */
    expect_bad_slots(v_arr(1, v_arr(4, v_int(0), v_int(3), v_node("a", 1, ""),
                                    v_node("a", 1, ""))));                /* own replica */
}

static void test_topology_empty_reply(void **state)
{
    (void)state;
    struct resp_value r = v_arr(0);
    const char *err = NULL;
    struct cluster_topology *t = cluster_topology_from_slots(&r, NULL, &err);

    assert_non_null(t);
    assert_int_equal(t->nnodes, 0);
    assert_int_equal(cluster_topology_covered(t), 0);
    assert_int_equal(cluster_topology_find(t, "a:1"), CLUSTER_NO_NODE);
    cluster_topology_free(t);
    cluster_topology_free(NULL);
}

/* A real 7.0.15 reply: the node does not know its own ip (""), and each
 * node carries a 4th element, the hostname metadata (a flat array in RESP2,
 * a map in RESP3). */
static void check_real_slots(const char *text)
{
    struct resp_value r = parse(text, strlen(text));
    const char *err = NULL;
    struct cluster_topology *t = cluster_topology_from_slots(&r, "127.0.0.1", &err);

    assert_non_null(t);
    assert_int_equal(t->nnodes, 1);
    assert_string_equal(t->nodes[0].addr, "127.0.0.1:37419");
    assert_string_equal(t->nodes[0].id, "e9a33711d874e49c59dd7bb273ba61bdbc554c22");
    assert_int_equal(cluster_topology_covered(t), 101 + 101);
    assert_int_equal(t->slot_master[250], 0);
    assert_int_equal(t->slot_master[150], CLUSTER_NO_NODE);
    cluster_topology_free(t);
    resp_value_free(&r);
}

#define REAL_SLOTS(map)                                                      \
    "*2\r\n*3\r\n:0\r\n:100\r\n*4\r\n$0\r\n\r\n:37419\r\n"                   \
    "$40\r\ne9a33711d874e49c59dd7bb273ba61bdbc554c22\r\n" map "\r\n"         \
    "$8\r\nhostname\r\n$14\r\nnode-a.example\r\n"                            \
    "*3\r\n:200\r\n:300\r\n*4\r\n$0\r\n\r\n:37419\r\n"                       \
    "$40\r\ne9a33711d874e49c59dd7bb273ba61bdbc554c22\r\n" map "\r\n"         \
    "$8\r\nhostname\r\n$14\r\nnode-a.example\r\n"

static void test_topology_real_reply(void **state)
{
    (void)state;
    check_real_slots(REAL_SLOTS("*2"));
    check_real_slots(REAL_SLOTS("%1"));
}

/* ======================================================================== */
/* Built-in command table: lookup                                           */

static void test_builtin_lookup(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();
    const struct command_info *c;

    assert_ptr_equal(t, command_table_builtin());
    assert_int_equal(command_table_size(t), 240); /* Redis 7.0.15 */
    c = lookup(t, CALL("GET", "k"));
    assert_non_null(c);
    assert_string_equal(c->name, "get");
    assert_int_equal(c->arity, 2);
    assert_int_equal(c->flags, CMD_READONLY);
    assert_ptr_equal(lookup(t, CALL("gEt")), c);
    assert_int_equal(lookup(t, CALL("SET", "k", "v"))->flags, CMD_WRITE);
    assert_int_equal(lookup(t, CALL("BLPOP", "k", "0"))->flags, CMD_WRITE | CMD_BLOCKING | CMD_NOSCRIPT);
    assert_int_equal(lookup(t, CALL("EVAL", "s", "0"))->flags,
                     CMD_NOSCRIPT | CMD_MOVABLE_KEYS);
    assert_int_equal(lookup(t, CALL("SUBSCRIBE", "c"))->flags, CMD_PUBSUB | CMD_NOSCRIPT);
    assert_true(lookup(t, CALL("FLUSHALL"))->flags & CMD_WRITE);
    assert_true(lookup(t, CALL("SHUTDOWN"))->flags & CMD_ADMIN);
    assert_null(lookup(t, CALL("NOSUCHCOMMAND")));
    assert_null(lookup(t, CALL("")));
    assert_null(command_lookup(t, 0, NULL, NULL));
    /* longer than any name: unknown, and no overflow of the stack buffer */
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(lookup(t, CALL(big)));
    assert_string_equal(lookup(t, CALL("CONFIG", big))->name, "config");
    /* a NUL inside the name is not a shorter name */
    const char *nul_argv[] = {"get\0x"};
    size_t nul_len[] = {5};
    assert_null(command_lookup(t, 1, nul_argv, nul_len));
}

static void test_builtin_subcommands(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();
    const struct command_info *c;

    assert_string_equal(lookup(t, CALL("CONFIG", "GET", "maxmemory"))->name, "config|get");
    assert_string_equal(lookup(t, CALL("config", "set", "a", "b"))->name, "config|set");
    assert_string_equal(lookup(t, CALL("OBJECT", "Encoding", "k"))->name, "object|encoding");
    assert_string_equal(lookup(t, CALL("XINFO", "STREAM", "s"))->name, "xinfo|stream");
    assert_string_equal(lookup(t, CALL("CLUSTER", "SLOTS"))->name, "cluster|slots");
    assert_string_equal(lookup(t, CALL("client", "kill", "id", "1"))->name, "client|kill");
    /* unknown subcommand, or none: the container */
    c = lookup(t, CALL("CONFIG", "NOSUCH"));
    assert_string_equal(c->name, "config");
    assert_int_equal(c->nsubcommands, 5); /* get set help resetstat rewrite */
    assert_string_equal(lookup(t, CALL("CONFIG"))->name, "config");
    assert_string_equal(lookup(t, CALL("CONFIG", "get|x"))->name, "config");
    /* a subcommand's full name is not a top-level command */
    assert_null(lookup(t, CALL("config|get", "x")));
    assert_null(lookup(t, CALL("CONFIG|GET", "x"))); /* '|' found while folding */
    assert_null(lookup(t, CALL("|")));
    /* an empty subcommand, or one too long for the name buffer: the container */
    assert_string_equal(lookup(t, CALL("CONFIG", ""))->name, "config");
    char longsub[130];
    memset(longsub, 'g', sizeof longsub - 1);
    longsub[sizeof longsub - 1] = '\0';
    for (size_t len = 119; len < sizeof longsub; len++) /* "config|" + len crosses 127 */
        assert_string_equal(lookup(t, CALL("CONFIG", longsub + sizeof longsub - 1 - len))->name, "config");
    /* commands without subcommands ignore argv[1] */
    assert_string_equal(lookup(t, CALL("GET", "GET"))->name, "get");
    /* every subcommand of a container resolves to itself */
    static const char *containers[] = {"config", "object", "xinfo", "client", "cluster",
                                       "acl", "command", "function", "memory", "script",
                                       "xgroup", "pubsub", "slowlog", "module", "latency"};
    for (size_t i = 0; i < sizeof(containers) / sizeof(containers[0]); i++) {
        c = lookup(t, CALL(containers[i]));
        assert_non_null(c);
        assert_true(c->nsubcommands > 0);
        size_t n = strlen(containers[i]) + 1;
        for (size_t j = 0; j < c->nsubcommands; j++) {
            const char *sub = c->subcommands[j].name;
            assert_memory_equal(sub, containers[i], n - 1);
            assert_int_equal(sub[n - 1], '|');
            assert_ptr_equal(lookup(t, CALL(containers[i], sub + n)), &c->subcommands[j]);
        }
    }
}

static void test_arity(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();
    const struct command_info *get = lookup(t, CALL("GET")), *mset = lookup(t, CALL("MSET"));

    assert_true(command_arity_ok(get, 2));
    assert_false(command_arity_ok(get, 1));
    assert_false(command_arity_ok(get, 3));
    assert_int_equal(mset->arity, -3);
    assert_false(command_arity_ok(mset, 2));
    assert_true(command_arity_ok(mset, 3));
    assert_true(command_arity_ok(mset, 5));
    assert_true(command_arity_ok(mset, 4)); /* odd pairs are MSET's own error */
    const struct command_info *og = lookup(t, CALL("OBJECT", "ENCODING", "k"));
    assert_true(command_arity_ok(og, 3));
    assert_false(command_arity_ok(og, 4));
}

/* ======================================================================== */
/* Built-in command table: key positions                                    */

static void test_keys_simple(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();

    EXPECT_KEYS(t, "1", "GET", "k");
    EXPECT_KEYS(t, "-1", "GET");                    /* arity error: no key */
    EXPECT_KEYS(t, "1,2,3", "MGET", "a", "b", "c");
    EXPECT_KEYS(t, "1,2", "DEL", "a", "b");
    EXPECT_KEYS(t, "1,3,5", "MSET", "a", "1", "b", "2", "c", "3");
    EXPECT_KEYS(t, "1,3", "MSETNX", "a", "1", "b", "2");
    EXPECT_KEYS(t, "", "PING");
    EXPECT_KEYS(t, "", "PING", "hello");
    EXPECT_KEYS(t, "1,2", "RENAME", "a", "b");
    EXPECT_KEYS(t, "1,2", "BLMOVE", "a", "b", "LEFT", "RIGHT", "0");
    EXPECT_KEYS(t, "1,2,3", "BLPOP", "a", "b", "c", "0"); /* timeout is not a key */
    EXPECT_KEYS(t, "2,3,4", "BITOP", "AND", "dest", "a", "b");
    EXPECT_KEYS(t, "1", "SPUBLISH", "chan", "msg"); /* sharded channel */
    EXPECT_KEYS(t, "1,2", "SSUBSCRIBE", "a", "b");
    EXPECT_KEYS(t, "", "PUBLISH", "chan", "msg");
    EXPECT_KEYS(t, "1", "SET", "k", "v", "GET");
}

static void test_keys_numkeys(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();

    EXPECT_KEYS(t, "3,4", "EVAL", "return 1", "2", "a", "b", "argv1");
    EXPECT_KEYS(t, "", "EVAL", "return 1", "0", "argv1");
    EXPECT_KEYS(t, "", "EVAL", "return 1", "0");
    EXPECT_KEYS(t, "3", "EVALSHA", "abc", "1", "a", "argv1");
    EXPECT_KEYS(t, "3", "EVAL_RO", "s", "1", "a");
    EXPECT_KEYS(t, "3,4", "FCALL", "f", "2", "a", "b", "x", "y");
    EXPECT_KEYS(t, "3", "FCALL_RO", "f", "1", "a");
    /* malformed numkeys */
    EXPECT_KEYS(t, "-1", "EVAL", "s", "x", "a");
    EXPECT_KEYS(t, "-1", "EVAL", "s", "-1", "a");
    EXPECT_KEYS(t, "-1", "EVAL", "s", "3", "a", "b");
    EXPECT_KEYS(t, "-1", "EVAL", "s", "01", "a");
    EXPECT_KEYS(t, "-1", "EVAL", "s", "99999999999999999999", "a");
    EXPECT_KEYS(t, "-1", "EVAL", "s");
    EXPECT_KEYS(t, "-1", "EVAL", "s", " 1", "a");
    /* ZUNIONSTORE dest numkeys k… [WEIGHTS …] */
    EXPECT_KEYS(t, "1,3,4", "ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2");
    EXPECT_KEYS(t, "1,3", "ZINTERSTORE", "d", "1", "a");
    EXPECT_KEYS(t, "1", "ZDIFFSTORE", "d", "0"); /* the backend reports numkeys 0 */
    EXPECT_KEYS(t, "2,3", "ZUNION", "2", "a", "b", "WITHSCORES");
    EXPECT_KEYS(t, "2,3", "ZDIFF", "2", "a", "b");
    EXPECT_KEYS(t, "2,3", "SINTERCARD", "2", "a", "b", "LIMIT", "5");
    EXPECT_KEYS(t, "2,3", "ZINTERCARD", "2", "a", "b");
    EXPECT_KEYS(t, "2,3", "LMPOP", "2", "a", "b", "LEFT", "COUNT", "2");
    EXPECT_KEYS(t, "3,4", "BLMPOP", "0", "2", "a", "b", "LEFT");
    EXPECT_KEYS(t, "2", "ZMPOP", "1", "a", "MIN");
    EXPECT_KEYS(t, "3,4,5", "BZMPOP", "1.5", "3", "a", "b", "c", "MAX");
    EXPECT_KEYS(t, "-1", "LMPOP", "3", "a", "b");
}

static void test_keys_keyword(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();

    EXPECT_KEYS(t, "4,5", "XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0");
    EXPECT_KEYS(t, "2", "XREAD", "streams", "a", "$");
    EXPECT_KEYS(t, "5,6", "XREAD", "BLOCK", "0", "COUNT", "STREAMS", "a", "b", "1", "2");
    EXPECT_KEYS(t, "-1", "XREAD", "STREAMS", "a");
    EXPECT_KEYS(t, "", "XREAD", "COUNT", "1"); /* no STREAMS: nothing to route by */
    EXPECT_KEYS(t, "5,6", "XREADGROUP", "GROUP", "g", "c", "STREAMS", "a", "b", ">", ">");
    EXPECT_KEYS(t, "7", "XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">");
    /* GEORADIUS key lon lat r unit [STORE k] [STOREDIST k] */
    EXPECT_KEYS(t, "1", "GEORADIUS", "g", "15", "37", "200", "km");
    EXPECT_KEYS(t, "1,7", "GEORADIUS", "g", "15", "37", "200", "km", "STORE", "dst");
    EXPECT_KEYS(t, "1,8", "GEORADIUS", "g", "15", "37", "200", "km", "ASC", "STOREDIST", "dd",
                "COUNT", "1");
    EXPECT_KEYS(t, "1,7,9", "GEORADIUS", "g", "1", "2", "3", "km", "store", "a",
                "storedist", "b");
    EXPECT_KEYS(t, "1,6", "GEORADIUSBYMEMBER", "g", "m", "200", "km", "STORE", "dst");
    /* OBJECT ENCODING key, XINFO STREAM key: subcommand key specs */
    EXPECT_KEYS(t, "2", "OBJECT", "ENCODING", "k");
    EXPECT_KEYS(t, "2", "XINFO", "STREAM", "s", "FULL");
    EXPECT_KEYS(t, "2", "XINFO", "GROUPS", "s");
    EXPECT_KEYS(t, "", "CONFIG", "GET", "maxmemory");
    EXPECT_KEYS(t, "", "OBJECT", "HELP");
}

static void test_keys_sort_migrate(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();

    EXPECT_KEYS(t, "1", "SORT", "k");
    EXPECT_KEYS(t, "1,3", "SORT", "k", "STORE", "dst");
    EXPECT_KEYS(t, "1,8", "SORT", "k", "BY", "w_*", "LIMIT", "0", "10", "store", "dst", "ALPHA");
    /* "BY store" and "GET store" are patterns, not the STORE option */
    EXPECT_KEYS(t, "1", "SORT", "k", "BY", "store", "GET", "store");
    EXPECT_KEYS(t, "1,7", "SORT", "k", "STORE", "d1", "GET", "#", "STORE", "d2");
    EXPECT_KEYS(t, "1", "SORT", "k", "STORE"); /* no argument: not an option */
    EXPECT_KEYS(t, "1", "SORT_RO", "k", "BY", "w_*", "GET", "#");
    /* MIGRATE host port key db timeout */
    EXPECT_KEYS(t, "3", "MIGRATE", "h", "6379", "k", "0", "5000");
    EXPECT_KEYS(t, "3", "MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "REPLACE");
    EXPECT_KEYS(t, "8,9", "MIGRATE", "h", "6379", "", "0", "5000", "REPLACE", "KEYS", "a", "b");
    EXPECT_KEYS(t, "9,10", "MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "keys", "KEYS",
                "a", "b");
    EXPECT_KEYS(t, "10", "MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "u", "keys", "KEYS",
                "a");
    EXPECT_KEYS(t, "-1", "MIGRATE", "h", "6379", "k", "0", "5000", "KEYS", "a");
}

static void test_keys_bounded_output(void **state)
{
    (void)state;
    const struct command_table *t = command_table_builtin();
    struct call c = CALL("MGET", "a", "b", "c");
    const struct command_info *ci = lookup(t, c);
    int keys[3];

    assert_int_equal(command_key_positions(ci, c.argc, c.argv, c.lens, keys, 3), 3);
    assert_int_equal(command_key_positions(ci, c.argc, c.argv, c.lens, keys, 2), -1);
    assert_int_equal(command_key_positions(ci, 0, c.argv, c.lens, keys, 3), -1);
}

/* Hand-built specs: begin/find edge cases and dedup/sort across specs. */
static void test_keys_hand_built_specs(void **state)
{
    (void)state;
    static const struct keyspec specs[] = {
        /* keys from the end backwards after the last "TO" */
        {.begin = KS_BEGIN_KEYWORD, .keyword = "to", .startfrom = -1,
         .find = KS_FIND_RANGE, .lastkey = 0, .keystep = 1},
        {.begin = KS_BEGIN_INDEX, .index = 1, .find = KS_FIND_RANGE, .lastkey = -1,
         .keystep = 2},
        {.begin = KS_BEGIN_UNKNOWN, .find = KS_FIND_UNKNOWN},
    };
    const struct command_info c = {.name = "x.cmd", .arity = -2, .nspecs = 3, .specs = specs};
    struct call k = CALL("X.CMD", "a", "b", "TO", "c", "to", "d");
    int keys[MAX_ARGS];

    /* spec 1 → 6 (after the last "to"), spec 2 → 1,3,5; unknown spec ignored */
    int n = command_key_positions(&c, k.argc, k.argv, k.lens, keys, MAX_ARGS);
    assert_int_equal(n, 4);
    assert_int_equal(keys[0], 1);
    assert_int_equal(keys[1], 3);
    assert_int_equal(keys[2], 5);
    assert_int_equal(keys[3], 6);

    /* legacy range only (Redis 6 style): 2..-2 step 2 */
    const struct command_info legacy = {.name = "y", .arity = -3, .first_key = 2,
                                        .last_key = -2, .key_step = 2};
    struct call l = CALL("Y", "x", "a", "1", "b", "2", "z");
    n = command_key_positions(&legacy, l.argc, l.argv, l.lens, keys, MAX_ARGS);
    assert_int_equal(n, 2);
    assert_int_equal(keys[0], 2);
    assert_int_equal(keys[1], 4);
    const struct command_info past = {.name = "z", .arity = -2, .first_key = 1,
                                      .last_key = 3, .key_step = 1};
    assert_int_equal(command_key_positions(&past, 2, l.argv, l.lens, keys, MAX_ARGS), -1);
}

/* ======================================================================== */
/* Tables from COMMAND replies                                              */

/* COMMAND INFO get mset xread sort migrate eval object spublish georadius
 * zunionstore, from redis-server 7.0.15, in RESP2 and RESP3. */
static const char info_resp2[] =
    "*10\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
    "*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n"
    "+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n"
    "*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n"
    "$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n"
    ":0\r\n*0\r\n*10\r\n$4\r\nmset\r\n:-3\r\n*2\r\n+write\r\n+denyoom\r\n:1\r\n:-1\r\n"
    ":2\r\n*3\r\n+@write\r\n+@string\r\n+@slow\r\n*2\r\n$26\r\n"
    "request_policy:multi_shard\r\n$29\r\nresponse_policy:all_succeeded\r\n*1\r\n*6\r\n"
    "$5\r\nflags\r\n*2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n"
    "$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n"
    "$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:-1\r\n$7\r\n"
    "keystep\r\n:2\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$5\r\nxread\r\n:-4\r\n*3\r\n"
    "+readonly\r\n+blocking\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n*4\r\n+@read\r\n"
    "+@stream\r\n+@slow\r\n+@blocking\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n"
    "+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$7\r\nkeyword\r\n$4\r\n"
    "spec\r\n*4\r\n$7\r\nkeyword\r\n$7\r\nSTREAMS\r\n$9\r\nstartfrom\r\n:1\r\n$9\r\n"
    "find_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\n"
    "lastkey\r\n:-1\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:2\r\n*0\r\n*10\r\n$4\r\n"
    "sort\r\n:-2\r\n*3\r\n+write\r\n+denyoom\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n*6\r\n"
    "+@write\r\n+@set\r\n+@sortedset\r\n+@list\r\n+@slow\r\n+@dangerous\r\n*0\r\n*3\r\n"
    "*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\n"
    "type\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n"
    "*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\n"
    "keystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*8\r\n$5\r\nnotes\r\n$120\r\n"
    "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort\r\n"
    "$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n"
    "$7\r\nunknown\r\n$4\r\nspec\r\n*0\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$7\r\n"
    "unknown\r\n$4\r\nspec\r\n*0\r\n*8\r\n$5\r\nnotes\r\n$116\r\n"
    "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array\r\n"
    "$5\r\nflags\r\n*2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n"
    "$7\r\nunknown\r\n$4\r\nspec\r\n*0\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$7\r\n"
    "unknown\r\n$4\r\nspec\r\n*0\r\n*0\r\n*10\r\n$7\r\nmigrate\r\n:-6\r\n*2\r\n+write\r\n"
    "+movablekeys\r\n:3\r\n:3\r\n:1\r\n*4\r\n+@keyspace\r\n+@write\r\n+@slow\r\n"
    "+@dangerous\r\n*1\r\n$23\r\nnondeterministic_output\r\n*2\r\n*6\r\n$5\r\nflags\r\n"
    "*3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\n"
    "index\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:3\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\n"
    "type\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n"
    ":1\r\n$5\r\nlimit\r\n:0\r\n*6\r\n$5\r\nflags\r\n*4\r\n+RW\r\n+access\r\n+delete\r\n"
    "+incomplete\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$7\r\nkeyword\r\n$4\r\n"
    "spec\r\n*4\r\n$7\r\nkeyword\r\n$4\r\nKEYS\r\n$9\r\nstartfrom\r\n:-2\r\n$9\r\n"
    "find_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\n"
    "lastkey\r\n:-1\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$4\r\n"
    "eval\r\n:-3\r\n*5\r\n+noscript\r\n+stale\r\n+skip_monitor\r\n+no_mandatory_keys\r\n"
    "+movablekeys\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@slow\r\n+@scripting\r\n*0\r\n*1\r\n*8\r\n"
    "$5\r\nnotes\r\n$78\r\n"
    "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE\r\n"
    "$5\r\nflags\r\n*3\r\n+RW\r\n+access\r\n+update\r\n$12\r\nbegin_search\r\n*4\r\n"
    "$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\n"
    "find_keys\r\n*4\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n*6\r\n$9\r\n"
    "keynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n*0\r\n*10\r\n"
    "$6\r\nobject\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*1\r\n+@slow\r\n*0\r\n*0\r\n*5\r\n"
    "*10\r\n$15\r\nobject|idletime\r\n:3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n*3\r\n"
    "+@keyspace\r\n+@read\r\n+@slow\r\n*1\r\n$23\r\nnondeterministic_output\r\n*1\r\n"
    "*6\r\n$5\r\nflags\r\n*1\r\n+RO\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\n"
    "index\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\n"
    "type\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n"
    ":1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$11\r\nobject|help\r\n:2\r\n*2\r\n"
    "+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@keyspace\r\n+@slow\r\n*0\r\n*0\r\n"
    "*0\r\n*10\r\n$15\r\nobject|encoding\r\n:3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n"
    "*3\r\n+@keyspace\r\n+@read\r\n+@slow\r\n*1\r\n$23\r\nnondeterministic_output\r\n"
    "*1\r\n*6\r\n$5\r\nflags\r\n*1\r\n+RO\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n"
    "$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n"
    "$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\n"
    "keystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$11\r\nobject|freq\r\n:3\r\n"
    "*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n*3\r\n+@keyspace\r\n+@read\r\n+@slow\r\n*1\r\n"
    "$23\r\nnondeterministic_output\r\n*1\r\n*6\r\n$5\r\nflags\r\n*1\r\n+RO\r\n$12\r\n"
    "begin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\n"
    "index\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n"
    "*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
    "*10\r\n$15\r\nobject|refcount\r\n:3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n*3\r\n"
    "+@keyspace\r\n+@read\r\n+@slow\r\n*1\r\n$23\r\nnondeterministic_output\r\n*1\r\n"
    "*6\r\n$5\r\nflags\r\n*1\r\n+RO\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\n"
    "index\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\n"
    "type\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n"
    ":1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$8\r\nspublish\r\n:3\r\n*4\r\n+pubsub\r\n"
    "+loading\r\n+stale\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*2\r\n+@pubsub\r\n+@fast\r\n*0\r\n"
    "*1\r\n*6\r\n$5\r\nflags\r\n*1\r\n+not_key\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\n"
    "type\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n"
    "*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\n"
    "keystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n*10\r\n$9\r\ngeoradius\r\n:-6\r\n*3\r\n"
    "+write\r\n+denyoom\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@write\r\n+@geo\r\n"
    "+@slow\r\n*0\r\n*3\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\n"
    "begin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\n"
    "index\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n"
    "*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*6\r\n"
    "$5\r\nflags\r\n*2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n"
    "$7\r\nkeyword\r\n$4\r\nspec\r\n*4\r\n$7\r\nkeyword\r\n$5\r\nSTORE\r\n$9\r\n"
    "startfrom\r\n:6\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\n"
    "spec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n"
    "*6\r\n$5\r\nflags\r\n*2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\n"
    "type\r\n$7\r\nkeyword\r\n$4\r\nspec\r\n*4\r\n$7\r\nkeyword\r\n$9\r\nSTOREDIST\r\n"
    "$9\r\nstartfrom\r\n:6\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n"
    "$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n"
    ":0\r\n*0\r\n*10\r\n$11\r\nzunionstore\r\n:-4\r\n*3\r\n+write\r\n+denyoom\r\n"
    "+movablekeys\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@write\r\n+@sortedset\r\n+@slow\r\n*0\r\n"
    "*2\r\n*6\r\n$5\r\nflags\r\n*2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n*4\r\n"
    "$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\n"
    "find_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\n"
    "lastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*6\r\n$5\r\nflags\r\n"
    "*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n"
    "$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n"
    "$6\r\nkeynum\r\n$4\r\nspec\r\n*6\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n"
    ":1\r\n$7\r\nkeystep\r\n:1\r\n*0\r\n";
static const char info_resp3[] =
    "*10\r\n*10\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
    "~3\r\n+@read\r\n+@string\r\n+@fast\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n"
    "+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n"
    "%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n"
    "$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n"
    ":0\r\n~0\r\n*10\r\n$4\r\nmset\r\n:-3\r\n~2\r\n+write\r\n+denyoom\r\n:1\r\n:-1\r\n"
    ":2\r\n~3\r\n+@write\r\n+@string\r\n+@slow\r\n~2\r\n$26\r\n"
    "request_policy:multi_shard\r\n$29\r\nresponse_policy:all_succeeded\r\n~1\r\n%3\r\n"
    "$5\r\nflags\r\n~2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n"
    "$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n"
    "$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:-1\r\n$7\r\n"
    "keystep\r\n:2\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$5\r\nxread\r\n:-4\r\n~3\r\n"
    "+readonly\r\n+blocking\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n~4\r\n+@read\r\n"
    "+@stream\r\n+@slow\r\n+@blocking\r\n~0\r\n~1\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n"
    "+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$7\r\nkeyword\r\n$4\r\n"
    "spec\r\n%2\r\n$7\r\nkeyword\r\n$7\r\nSTREAMS\r\n$9\r\nstartfrom\r\n:1\r\n$9\r\n"
    "find_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\n"
    "lastkey\r\n:-1\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:2\r\n~0\r\n*10\r\n$4\r\n"
    "sort\r\n:-2\r\n~3\r\n+write\r\n+denyoom\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n~6\r\n"
    "+@write\r\n+@set\r\n+@sortedset\r\n+@list\r\n+@slow\r\n+@dangerous\r\n~0\r\n~3\r\n"
    "%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\n"
    "type\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n"
    "%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\n"
    "keystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n%4\r\n$5\r\nnotes\r\n$120\r\n"
    "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort\r\n"
    "$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n"
    "$7\r\nunknown\r\n$4\r\nspec\r\n%0\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$7\r\n"
    "unknown\r\n$4\r\nspec\r\n%0\r\n%4\r\n$5\r\nnotes\r\n$116\r\n"
    "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array\r\n"
    "$5\r\nflags\r\n~2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n"
    "$7\r\nunknown\r\n$4\r\nspec\r\n%0\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$7\r\n"
    "unknown\r\n$4\r\nspec\r\n%0\r\n~0\r\n*10\r\n$7\r\nmigrate\r\n:-6\r\n~2\r\n+write\r\n"
    "+movablekeys\r\n:3\r\n:3\r\n:1\r\n~4\r\n+@keyspace\r\n+@write\r\n+@slow\r\n"
    "+@dangerous\r\n~1\r\n$23\r\nnondeterministic_output\r\n~2\r\n%3\r\n$5\r\nflags\r\n"
    "~3\r\n+RW\r\n+access\r\n+delete\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\n"
    "index\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:3\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\n"
    "type\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n"
    ":1\r\n$5\r\nlimit\r\n:0\r\n%3\r\n$5\r\nflags\r\n~4\r\n+RW\r\n+access\r\n+delete\r\n"
    "+incomplete\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$7\r\nkeyword\r\n$4\r\n"
    "spec\r\n%2\r\n$7\r\nkeyword\r\n$4\r\nKEYS\r\n$9\r\nstartfrom\r\n:-2\r\n$9\r\n"
    "find_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\n"
    "lastkey\r\n:-1\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$4\r\n"
    "eval\r\n:-3\r\n~5\r\n+noscript\r\n+stale\r\n+skip_monitor\r\n+no_mandatory_keys\r\n"
    "+movablekeys\r\n:0\r\n:0\r\n:0\r\n~2\r\n+@slow\r\n+@scripting\r\n~0\r\n~1\r\n%4\r\n"
    "$5\r\nnotes\r\n$78\r\n"
    "We cannot tell how the keys will be used so we assume the worst, RW and UPDATE\r\n"
    "$5\r\nflags\r\n~3\r\n+RW\r\n+access\r\n+update\r\n$12\r\nbegin_search\r\n%2\r\n"
    "$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:2\r\n$9\r\n"
    "find_keys\r\n%2\r\n$4\r\ntype\r\n$6\r\nkeynum\r\n$4\r\nspec\r\n%3\r\n$9\r\n"
    "keynumidx\r\n:0\r\n$8\r\nfirstkey\r\n:1\r\n$7\r\nkeystep\r\n:1\r\n~0\r\n*10\r\n"
    "$6\r\nobject\r\n:-2\r\n~0\r\n:0\r\n:0\r\n:0\r\n~1\r\n+@slow\r\n~0\r\n~0\r\n*5\r\n"
    "*10\r\n$15\r\nobject|idletime\r\n:3\r\n~1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n~3\r\n"
    "+@keyspace\r\n+@read\r\n+@slow\r\n~1\r\n$23\r\nnondeterministic_output\r\n~1\r\n"
    "%3\r\n$5\r\nflags\r\n~1\r\n+RO\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\n"
    "index\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\n"
    "type\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n"
    ":1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$11\r\nobject|help\r\n:2\r\n~2\r\n"
    "+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n~2\r\n+@keyspace\r\n+@slow\r\n~0\r\n~0\r\n"
    "~0\r\n*10\r\n$15\r\nobject|encoding\r\n:3\r\n~1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n"
    "~3\r\n+@keyspace\r\n+@read\r\n+@slow\r\n~1\r\n$23\r\nnondeterministic_output\r\n"
    "~1\r\n%3\r\n$5\r\nflags\r\n~1\r\n+RO\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n"
    "$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n%2\r\n"
    "$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\n"
    "keystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$11\r\nobject|freq\r\n:3\r\n"
    "~1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n~3\r\n+@keyspace\r\n+@read\r\n+@slow\r\n~1\r\n"
    "$23\r\nnondeterministic_output\r\n~1\r\n%3\r\n$5\r\nflags\r\n~1\r\n+RO\r\n$12\r\n"
    "begin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\n"
    "index\r\n:2\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n"
    "%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n"
    "*10\r\n$15\r\nobject|refcount\r\n:3\r\n~1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n~3\r\n"
    "+@keyspace\r\n+@read\r\n+@slow\r\n~1\r\n$23\r\nnondeterministic_output\r\n~1\r\n"
    "%3\r\n$5\r\nflags\r\n~1\r\n+RO\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\n"
    "index\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\n"
    "type\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n"
    ":1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$8\r\nspublish\r\n:3\r\n~4\r\n+pubsub\r\n"
    "+loading\r\n+stale\r\n+fast\r\n:1\r\n:1\r\n:1\r\n~2\r\n+@pubsub\r\n+@fast\r\n~0\r\n"
    "~1\r\n%3\r\n$5\r\nflags\r\n~1\r\n+not_key\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\n"
    "type\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n"
    "%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\n"
    "keystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$9\r\ngeoradius\r\n:-6\r\n~3\r\n"
    "+write\r\n+denyoom\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@write\r\n+@geo\r\n"
    "+@slow\r\n~0\r\n~3\r\n%3\r\n$5\r\nflags\r\n~2\r\n+RO\r\n+access\r\n$12\r\n"
    "begin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\n"
    "index\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n"
    "%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n%3\r\n"
    "$5\r\nflags\r\n~2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n"
    "$7\r\nkeyword\r\n$4\r\nspec\r\n%2\r\n$7\r\nkeyword\r\n$5\r\nSTORE\r\n$9\r\n"
    "startfrom\r\n:6\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\n"
    "spec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n"
    "%3\r\n$5\r\nflags\r\n~2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\n"
    "type\r\n$7\r\nkeyword\r\n$4\r\nspec\r\n%2\r\n$7\r\nkeyword\r\n$9\r\nSTOREDIST\r\n"
    "$9\r\nstartfrom\r\n:6\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n"
    "$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n"
    ":0\r\n~0\r\n*10\r\n$11\r\nzunionstore\r\n:-4\r\n~3\r\n+write\r\n+denyoom\r\n"
    "+movablekeys\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@write\r\n+@sortedset\r\n+@slow\r\n~0\r\n"
    "~2\r\n%3\r\n$5\r\nflags\r\n~2\r\n+OW\r\n+update\r\n$12\r\nbegin_search\r\n%2\r\n"
    "$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\n"
    "find_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\n"
    "lastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n%3\r\n$5\r\nflags\r\n"
    "~2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n"
    "$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:2\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n"
    "$6\r\nkeynum\r\n$4\r\nspec\r\n%3\r\n$9\r\nkeynumidx\r\n:0\r\n$8\r\nfirstkey\r\n"
    ":1\r\n$7\r\nkeystep\r\n:1\r\n~0\r\n";

static void assert_specs_equal(const struct command_info *a, const struct command_info *b)
{
    assert_int_equal(a->nspecs, b->nspecs);
    for (size_t i = 0; i < a->nspecs; i++) {
        const struct keyspec *x = &a->specs[i], *y = &b->specs[i];
        assert_int_equal(x->begin, y->begin);
        assert_int_equal(x->index, y->index);
        if (x->begin == KS_BEGIN_KEYWORD)
            assert_string_equal(x->keyword, y->keyword);
        assert_int_equal(x->startfrom, y->startfrom);
        assert_int_equal(x->find, y->find);
        assert_int_equal(x->lastkey, y->lastkey);
        assert_int_equal(x->keystep, y->keystep);
        assert_int_equal(x->limit, y->limit);
        assert_int_equal(x->keynumidx, y->keynumidx);
        assert_int_equal(x->firstkey, y->firstkey);
        assert_int_equal(x->keynumstep, y->keynumstep);
        assert_int_equal(x->flags, y->flags);
    }
}

/* The reply-built entry must equal the generated built-in one. */
static void assert_info_equal(const struct command_info *a, const struct command_info *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->arity, b->arity);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->first_key, b->first_key);
    assert_int_equal(a->last_key, b->last_key);
    assert_int_equal(a->key_step, b->key_step);
    assert_specs_equal(a, b);
    assert_int_equal(a->nsubcommands, b->nsubcommands);
}

static void check_info_reply(const char *text, size_t len)
{
    static const char *names[] = {"get", "mset", "xread", "sort", "migrate", "eval",
                                  "object", "spublish", "georadius", "zunionstore"};
    struct resp_value r = parse(text, len);
    const char *err = NULL;
    struct command_table *t = command_table_from_reply(&r, &err);
    const struct command_table *b = command_table_builtin();

    resp_value_free(&r); /* the table must not point into the reply */
    assert_non_null(t);
    assert_null(err);
    assert_int_equal(command_table_size(t), 10);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const struct command_info *c = lookup(t, CALL(names[i]));
        assert_non_null(c);
        assert_info_equal(c, lookup(b, CALL(names[i])));
    }
    const struct command_info *obj = lookup(t, CALL("object"));
    for (size_t j = 0; j < obj->nsubcommands; j++) {
        const char *sub = obj->subcommands[j].name + strlen("object|");
        assert_info_equal(lookup(t, CALL("OBJECT", sub)), lookup(b, CALL("OBJECT", sub)));
    }
    assert_null(lookup(t, CALL("SET")));
    assert_string_equal(lookup(t, CALL("object", "FREQ", "k"))->name, "object|freq");
    EXPECT_KEYS(t, "4,5", "XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "0");
    EXPECT_KEYS(t, "1,3", "SORT", "k", "STORE", "dst");
    EXPECT_KEYS(t, "8", "MIGRATE", "h", "1", "", "0", "5", "COPY", "KEYS", "a");
    EXPECT_KEYS(t, "1,3,4", "ZUNIONSTORE", "d", "2", "a", "b");
    EXPECT_KEYS(t, "2", "OBJECT", "ENCODING", "k");
    command_table_free(t);
}

static void test_reply_resp2(void **state)
{
    (void)state;
    check_info_reply(info_resp2, sizeof(info_resp2) - 1);
}

static void test_reply_resp3(void **state)
{
    (void)state;
    check_info_reply(info_resp3, sizeof(info_resp3) - 1);
}

/* Redis 6: 6 or 7 fields, no key specs. */
static const char info_redis6[] =
    "*5\r\n"
    "*7\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
    "*3\r\n+@read\r\n+@string\r\n+@fast\r\n"
    "*6\r\n$4\r\nMSET\r\n:-3\r\n*2\r\n+write\r\n+denyoom\r\n:1\r\n:-1\r\n:2\r\n"
    "*6\r\n$4\r\neval\r\n:-3\r\n*2\r\n+noscript\r\n+movablekeys\r\n:0\r\n:0\r\n:0\r\n"
    "*6\r\n$10\r\nmymod.cmd2\r\n:-2\r\n*1\r\n+write\r\n:2\r\n:-1\r\n:1\r\n"
    "*6\r\n$6\r\nobject\r\n:-2\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n";

static void test_reply_redis6(void **state)
{
    (void)state;
    struct resp_value r = parse(info_redis6, sizeof(info_redis6) - 1);
    const char *err = NULL;
    struct command_table *t = command_table_from_reply(&r, &err);

    resp_value_free(&r);
    assert_non_null(t);
    assert_int_equal(command_table_size(t), 5);
    const struct command_info *mset = lookup(t, CALL("mset"));
    assert_string_equal(mset->name, "mset"); /* lower-cased */
    assert_int_equal(mset->flags, CMD_WRITE);
    assert_int_equal(mset->nspecs, 0);
    EXPECT_KEYS(t, "1", "GET", "k");
    EXPECT_KEYS(t, "1,3", "MSET", "a", "1", "b", "2");
    EXPECT_KEYS(t, "2,3", "MYMOD.CMD2", "x", "a", "b");
    EXPECT_KEYS(t, "2", "OBJECT", "ENCODING", "k");
    /* movable keys without specs: the built-in specs are borrowed */
    EXPECT_KEYS(t, "3", "EVAL", "s", "1", "k", "arg");
    EXPECT_KEYS(t, "", "EVAL", "s", "0", "arg");
    command_table_free(t);
}

static void expect_bad_reply(const char *text)
{
    struct resp_value r = parse(text, strlen(text));
    const char *err = NULL;

    assert_null(command_table_from_reply(&r, &err));
    assert_non_null(err);
    resp_value_free(&r);
}

#define ENTRY_HEAD "$1\r\nx\r\n:-2\r\n*0\r\n:1\r\n:1\r\n:1\r\n*0\r\n*0\r\n"
#define SPEC(bs, fk) "*1\r\n*4\r\n$12\r\nbegin_search\r\n" bs "$9\r\nfind_keys\r\n" fk
#define BS_INDEX "*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n"
#define FK_RANGE(step)                                                          \
    "*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n" \
    "$7\r\nkeystep\r\n:" step "\r\n$5\r\nlimit\r\n:0\r\n"

static void test_reply_errors(void **state)
{
    (void)state;
    expect_bad_reply(":1\r\n");
    expect_bad_reply("*1\r\n$3\r\nget\r\n");                              /* not an entry */
    expect_bad_reply("*1\r\n*3\r\n$3\r\nget\r\n:2\r\n*0\r\n");            /* too short */
    expect_bad_reply("*1\r\n*6\r\n:1\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"); /* name */
    expect_bad_reply("*1\r\n*6\r\n$1\r\nx\r\n$1\r\n2\r\n*0\r\n:1\r\n:1\r\n:1\r\n");
    expect_bad_reply("*2\r\n*6\r\n$1\r\nx\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"
                     "*6\r\n$1\r\nX\r\n:2\r\n*0\r\n:1\r\n:1\r\n:1\r\n"); /* duplicate */
    expect_bad_reply("*1\r\n*9\r\n" ENTRY_HEAD SPEC(BS_INDEX, FK_RANGE("0")));
    expect_bad_reply("*1\r\n*9\r\n" ENTRY_HEAD "*1\r\n*2\r\n$5\r\nflags\r\n*0\r\n");
    expect_bad_reply("*1\r\n*9\r\n" ENTRY_HEAD ":3\r\n");
    /* subcommand that is not "x|…" */
    expect_bad_reply("*1\r\n*10\r\n" ENTRY_HEAD "*0\r\n"
                     "*1\r\n*6\r\n$5\r\ny|get\r\n:2\r\n*0\r\n:0\r\n:0\r\n:0\r\n");

    /* the same entry with keystep 1 is fine, keys included */
    const char ok[] = "*1\r\n*9\r\n" ENTRY_HEAD SPEC(BS_INDEX, FK_RANGE("1"));
    struct resp_value r = parse(ok, sizeof(ok) - 1);
    const char *err = NULL;
    struct command_table *t = command_table_from_reply(&r, &err);
    resp_value_free(&r);
    assert_non_null(t);
    EXPECT_KEYS(t, "1", "X", "k");
    command_table_free(t);
    command_table_free(NULL);
}

/* Names at and past the lookup buffer's bound (only modules have such). */
static void test_reply_long_names(void **state)
{
    (void)state;
    char n127[128], n200[201], sub[300], text[1200];
    memset(n127, 'a', 127);
    n127[127] = '\0';
    memset(n200, 'b', 200);
    n200[200] = '\0';
    snprintf(sub, sizeof(sub), "%s|x", n127);
    snprintf(text, sizeof(text),
             "*2\r\n*10\r\n$127\r\n%s\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
             "*1\r\n*6\r\n$129\r\n%s\r\n:2\r\n*0\r\n:0\r\n:0\r\n:0\r\n"
             "*6\r\n$200\r\n%s\r\n:1\r\n*0\r\n:0\r\n:0\r\n:0\r\n",
             n127, sub, n200);
    struct resp_value r = parse(text, strlen(text));
    const char *err = NULL;
    struct command_table *t = command_table_from_reply(&r, &err);
    resp_value_free(&r);
    assert_non_null(t);
    assert_int_equal(command_table_size(t), 2);
    const struct command_info *c = lookup(t, CALL(n127, "x"));
    assert_non_null(c);
    assert_string_equal(c->name, n127); /* "…|x" is too long to look up */
    assert_null(lookup(t, CALL(n200)));
    command_table_free(t);
}

/* ------------------------------------------------------------------------ */
/* SCAN cursors                                                             */

static void test_scan_cursor_round_trip_and_bounds(void **state)
{
    (void)state;
    struct scan_cursor in = {.shard = 255, .check = 31, .node = SCAN_CURSOR_NODE_MAX}, out;
    uint64_t v;
    assert_true(scan_cursor_encode(&in, &v));
    assert_true(v == SCAN_CURSOR_MAX); /* every field at its largest: 2^53 - 1 */
    assert_true(scan_cursor_decode(v, &out));
    assert_int_equal(out.shard, 255);
    assert_int_equal(out.check, 31);
    assert_true(out.node == SCAN_CURSOR_NODE_MAX);

    in = (struct scan_cursor){.shard = 2, .check = 5, .node = 12345};
    assert_true(scan_cursor_encode(&in, &v));
    assert_true(v == ((5ull << 48) | (2ull << 40) | 12345));
    assert_true(scan_cursor_decode(v, &out));
    assert_int_equal(out.shard, 2);
    assert_int_equal(out.check, 5);
    assert_true(out.node == 12345);

    /* the start of a shard, and the start of everything */
    in = (struct scan_cursor){.shard = 1};
    assert_true(scan_cursor_encode(&in, &v));
    assert_true(v == 1ull << 40);
    in = (struct scan_cursor){0};
    assert_true(scan_cursor_encode(&in, &v));
    assert_true(v == 0);

    /* what does not fit is refused, never wrapped */
    in = (struct scan_cursor){.node = SCAN_CURSOR_NODE_MAX + 1};
    assert_false(scan_cursor_encode(&in, &v));
    in = (struct scan_cursor){.shard = SCAN_CURSOR_MAX_SHARDS};
    assert_false(scan_cursor_encode(&in, &v));
    in = (struct scan_cursor){.check = 32};
    assert_false(scan_cursor_encode(&in, &v));
    assert_false(scan_cursor_decode(SCAN_CURSOR_MAX + 1, &out));
    assert_false(scan_cursor_decode(UINT64_MAX, &out));
}

static void test_scan_cursor_check_bits(void **state)
{
    (void)state;
    /* stable, within 5 bits, and different nodes mostly differ */
    uint8_t a = scan_cursor_check("127.0.0.1:7000", "abc");
    assert_int_equal(a, scan_cursor_check("127.0.0.1:7000", "abc"));
    unsigned same = 0;
    char addr[32];
    for (int port = 7000; port < 7256; port++) {
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        uint8_t c = scan_cursor_check(addr, "");
        assert_true(c < 32);
        same += c == scan_cursor_check("127.0.0.1:6999", "");
    }
    assert_true(same < 32); /* about 1 in 32 collide */
}

/* ======================================================================== */
/* Addresses                                                                */

static void test_addr_split_forms(void **state)
{
    (void)state;
    static const struct { const char *in, *host; int port; } ok[] = {
        {"127.0.0.1:6379", "127.0.0.1", 6379},
        {"[::1]:6380", "::1", 6380},
        /* bare IPv6 (MOVED targets, the lease's leader value): the last ':' */
        {"::1:16379", "::1", 16379},
        {"fe80::1:2:7000", "fe80::1:2", 7000},
        /* an empty host is the caller's to judge (config reads 127.0.0.1) */
        {":7001", "", 7001},
        /* the port's edges, leading zeros as atoi/strtoll read them */
        {"h:1", "h", 1},
        {"h:65535", "h", 65535},
        {"h:06379", "h", 6379},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char host[64];
        int port = 0;
        if (!cluster_addr_split(ok[i].in, host, sizeof host, &port))
            fail_msg("refused '%s'", ok[i].in);
        assert_string_equal(host, ok[i].host);
        assert_int_equal(port, ok[i].port);
    }
}

static void test_addr_split_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "127.0.0.1", "127.0.0.1:", "[::1]", "[::1]:", /* no port */
        "h:0", "h:65536", "h:99999999999999999999", "h:-1", "h:+80",
        "h:80x", "h: 80", "h:80 ", "[::1]:80:90", /* bad port */
        "[]:80", "[::1:80", "[::1]x:80", "[::1]80", /* brackets */
    };
    char host[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        strcpy(host, "untouched");
        int port = -7;
        if (cluster_addr_split(bad[i], host, sizeof host, &port))
            fail_msg("accepted '%s'", bad[i]);
        assert_string_equal(host, "untouched");
        assert_int_equal(port, -7);
    }
}

static void test_addr_split_host_length(void **state)
{
    (void)state;
    char host[10]; /* 9 bytes and the NUL */
    int port;

    assert_true(cluster_addr_split("123456789:80", host, sizeof host, &port));
    assert_string_equal(host, "123456789");
    assert_false(cluster_addr_split("1234567890:80", host, sizeof host, &port));
    assert_true(cluster_addr_split("[123456789]:80", host, sizeof host, &port));
    assert_string_equal(host, "123456789");
    assert_false(cluster_addr_split("[1234567890]:80", host, sizeof host, &port));
}

/* One INFO-text field reader for the control thread's node facts and its
 * replica checks. */
static void test_info_field(void **state)
{
    (void)state;
    const char text[] = "# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n"
                        "master_repl_offset:123456\r\nlast:x";
    size_t len = sizeof text - 1;
    char out[16];
    assert_true(cluster_info_field(text, len, "redis_version", out, sizeof out));
    assert_string_equal(out, "7.0.15");
    assert_true(cluster_info_field(text, len, "master_repl_offset", out, sizeof out));
    assert_string_equal(out, "123456");
    assert_true(cluster_info_field(text, len, "last", out, sizeof out)); /* no CRLF */
    assert_string_equal(out, "x");
    assert_false(cluster_info_field(text, len, "redis", out, sizeof out)); /* a prefix */
    assert_string_equal(out, "");
    assert_false(cluster_info_field(text, len, "absent", out, sizeof out));
    assert_false(cluster_info_field(text, len, "redis_version", out, 6)); /* too long */
    assert_string_equal(out, "");
}

static void test_lower(void **state)
{
    (void)state;
    char buf[8];

    assert_int_equal(cluster_lower(buf, sizeof buf, "GeT", 3), 3);
    assert_string_equal(buf, "get");
    /* ASCII only: bytes past 0x7f and punctuation are copied as they are */
    assert_int_equal(cluster_lower(buf, sizeof buf, "A|\xc3\x89Z@[", 7), 7);
    assert_memory_equal(buf, "a|\xc3\x89z@[", 8);
    /* truncated to size - 1, always NUL-terminated */
    assert_int_equal(cluster_lower(buf, sizeof buf, "SUBSCRIBE", 9), 7);
    assert_string_equal(buf, "subscri");
    assert_int_equal(cluster_lower(buf, 1, "X", 1), 0);
    assert_string_equal(buf, "");
    /* only len bytes are read, and in place works */
    char in_place[] = "CONFIG SET";
    assert_int_equal(cluster_lower(in_place, sizeof in_place, in_place, 6), 6);
    assert_string_equal(in_place, "config");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_vectors),
        cmocka_unit_test(test_keyslot_hash_tags),
        cmocka_unit_test(test_keyslot_matches_redis),
        cmocka_unit_test(test_keyslot_long_keys_match_redis),
        cmocka_unit_test(test_crc16_every_table_entry),
        cmocka_unit_test(test_keyslot_random_keys),
        cmocka_unit_test(test_topology_readers_and_dup),
        cmocka_unit_test(test_topology_three_masters),
        cmocka_unit_test(test_topology_replicas_and_versions),
        cmocka_unit_test(test_topology_ipv6_empty_ip_partial),
        cmocka_unit_test(test_topology_rejects_bad_replies),
        cmocka_unit_test(test_topology_empty_reply),
        cmocka_unit_test(test_topology_real_reply),
        cmocka_unit_test(test_builtin_lookup),
        cmocka_unit_test(test_builtin_subcommands),
        cmocka_unit_test(test_arity),
        cmocka_unit_test(test_keys_simple),
        cmocka_unit_test(test_keys_numkeys),
        cmocka_unit_test(test_keys_keyword),
        cmocka_unit_test(test_keys_sort_migrate),
        cmocka_unit_test(test_keys_bounded_output),
        cmocka_unit_test(test_keys_hand_built_specs),
        cmocka_unit_test(test_reply_resp2),
        cmocka_unit_test(test_reply_resp3),
        cmocka_unit_test(test_reply_redis6),
        cmocka_unit_test(test_reply_errors),
        cmocka_unit_test(test_reply_long_names),
        cmocka_unit_test(test_scan_cursor_round_trip_and_bounds),
        cmocka_unit_test(test_scan_cursor_check_bits),
        cmocka_unit_test(test_addr_split_forms),
        cmocka_unit_test(test_addr_split_refusals),
        cmocka_unit_test(test_addr_split_host_length),
        cmocka_unit_test(test_info_field),
        cmocka_unit_test(test_lower),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
