"""Issue 7: every command group a Redis 7 client or tool sends, through
ringslot, against the shared cluster (none of these tests breaks it; the
slot migration leaves one slot on another master, as test_routing's does).

Groups: cross-slot splits, all-node commands (SCAN, FLUSHALL, DBSIZE, …),
MULTI/EXEC and WATCH, WAIT, blocking commands on private links, scripting,
ordinary multi-key commands in one slot, pub/sub in RESP2 and RESP3 (with
keyspace notifications), HELLO 3, CLIENT, INFO, CONFIG, refusals and the
PROXY command."""

import os
import subprocess
import time

import pytest

import helpers
from helpers import unique
from helpers import Push, RespClient, RespError, keyslot, set_keys, wait_until

CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"


def delete_all(r, keys):
    """DEL key by key (a ringslot without --enable-cross-slot refuses
    DEL across slots)."""
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.delete(k)
    return sum(pipe.execute())


def tag(name):
    """A fresh {hash tag}: every key with it lives in one slot."""
    return "{%s%s}" % (name, os.urandom(4).hex())


@pytest.fixture(scope="module")
def xs(cluster, tmp_path_factory):
    """ringslot --enable-cross-slot."""
    rs = helpers.start_managed(tmp_path_factory.mktemp("ringslot-xs"), cluster, threads=2,
                               extra_args=["--enable-cross-slot"])
    yield rs
    helpers.fail_on(helpers.finish_managed(rs))


@pytest.fixture(scope="module")
def rs1(cluster, tmp_path_factory):
    """ringslot --threads 1: a blocked client must not delay the others."""
    rs = helpers.start_managed(tmp_path_factory.mktemp("ringslot-t1"), cluster, threads=1)
    yield rs
    helpers.fail_on(helpers.finish_managed(rs))


# --- cross-slot -----------------------------------------------------------------

def test_cross_slot_refused_when_disabled(ringslot):
    with ringslot.raw() as c:
        a, b = unique("xa") + "a", unique("xb") + "b"
        assert keyslot(a) != keyslot(b)
        assert c.command("MGET", a, b) == RespError(CROSSSLOT)
        assert c.command("DEL", a, b) == RespError(CROSSSLOT)
        t = tag("same")
        assert c.command("MSET", t + "a", 1, t + "b", 2) == "OK"
        assert c.command("MGET", t + "a", t + "b") == [b"1", b"2"]


def test_never_splittable_across_slots(xs):
    with xs.raw() as c:
        a, b = unique("nx") + "a", unique("nx") + "b"
        assert keyslot(a) != keyslot(b)
        for cmd in (("MSETNX", a, 1, b, 2), ("RENAME", a, b), ("SINTERSTORE", a, b),
                    ("SUNION", a, b)):
            assert c.command(*cmd) == RespError(CROSSSLOT), cmd


def node_reads(cluster, clients):
    return {m: int(clients[m].info("stats")["total_reads_processed"])
            for m in cluster.masters()}


def test_cross_slot_mget_mset_del(cluster, xs):
    r = xs.client()
    keys = [unique("cs") + str(i) for i in range(200)]
    assert len({keyslot(k) for k in keys}) > 150
    assert r.mset({k: "v" + k for k in keys}) is True
    assert r.mget(keys) == [("v" + k).encode() for k in keys]
    missing = keys[:50] + [unique("none") + str(i) for i in range(10)] + keys[50:]
    assert r.mget(missing) == ([("v" + k).encode() for k in keys[:50]] + [None] * 10 +
                               [("v" + k).encode() for k in keys[50:]])
    assert r.exists(*keys, keys[0]) == 201
    assert r.touch(*keys) == 200
    assert r.unlink(*keys[:100]) == 100
    assert r.delete(*keys) == 100
    assert r.exists(*keys) == 0


def test_cross_slot_mget_one_read_per_node(cluster, xs):
    """Children for one node leave in one write: each node sees one read per
    MGET, not one per key (Redis counts reads in total_reads_processed)."""
    r = xs.client()
    keys = [unique("rd") + str(i) for i in range(200)]
    r.mset({k: k for k in keys})
    direct = {m: cluster.client(m) for m in cluster.masters()}
    rounds = 5
    for attempt in range(3):
        r.ping()
        before = node_reads(cluster, direct)
        again = node_reads(cluster, direct)          # cost of measuring
        for _ in range(rounds):
            assert r.mget(keys)[0] == keys[0].encode()
        after = node_reads(cluster, direct)
        per_node = {m: after[m] - again[m] - (again[m] - before[m]) for m in direct}
        if all(v == rounds for v in per_node.values()):
            break
        # a topology refresh of some ringslot may add a read: measure again
    assert per_node == {m: rounds for m in direct}, per_node
    r.delete(*keys)


# --- all-node commands ------------------------------------------------------------

def test_scan_iter_returns_every_key_in_many_pages(ringslot):
    r = ringslot.client()
    prefix = unique("scan")
    keys = {(prefix + str(i)).encode() for i in range(700)}
    set_keys(r, keys)
    pages, cursor, seen = 0, 0, []
    while True:
        cursor, batch = r.scan(cursor, match=prefix + "*", count=10)
        assert 0 <= cursor < 2 ** 63
        seen += batch
        pages += 1
        if cursor == 0:
            break
    assert pages > 20
    assert set(seen) == keys
    assert set(r.scan_iter(match=prefix + "*", count=10)) == keys
    assert delete_all(r, keys) == len(keys)


def test_all_master_commands(cluster, ringslot):
    r = ringslot.client()
    prefix = unique("all")
    keys = [prefix + str(i) for i in range(60)]
    for k in keys:
        r.set(k, 1)
    total = sum(cluster.client(m).dbsize() for m in cluster.masters())
    assert r.dbsize() == total
    assert sorted(r.keys(prefix + "*")) == sorted(k.encode() for k in keys)
    assert r.randomkey() is not None
    sha = r.script_load("return 1")
    assert all(cluster.client(m).script_exists(sha) == [True] for m in cluster.masters())
    assert r.script_exists(sha, "0" * 40) == [True, False]
    lib = "#!lua name=lib%s\nredis.register_function('f%s', function() return 7 end)" % (
        (os.urandom(3).hex(),) * 2)
    name = r.function_load(lib)
    assert all(cluster.execute(m, "FUNCTION", "LIST", "LIBRARYNAME", name)
               for m in cluster.masters())
    assert r.function_delete(name) in (True, b"OK")
    assert r.lastsave() is not None
    delete_all(r, keys)


def test_flushall_async_empties_every_master(cluster, ringslot):
    r = ringslot.client()
    prefix = unique("flush")
    for i in range(100):
        r.set(prefix + str(i), i)
    assert all(cluster.client(m).dbsize() > 0 for m in cluster.masters())
    assert r.flushall(asynchronous=True) is True
    assert all(cluster.client(m).dbsize() == 0 for m in cluster.masters())
    r.set(prefix, 1)
    assert r.execute_command("FLUSHDB", "SYNC") is True
    assert r.dbsize() == 0


# --- transactions -----------------------------------------------------------------

def test_multi_exec_and_watch(ringslot):
    t = tag("tx")
    a, b = ringslot.raw(), ringslot.raw()
    assert a.command("MULTI") == "OK"
    assert a.command("SET", t + "k", 1) == "QUEUED"
    assert a.command("INCR", t + "k") == "QUEUED"
    assert a.command("GET", t + "k") == "QUEUED"
    assert a.command("EXEC") == ["OK", 2, b"2"]
    # keys of two slots: refused at queue time, EXECABORT at EXEC
    assert a.command("MULTI") == "OK"
    assert a.command("SET", t + "k", 1) == "QUEUED"
    assert a.command("SET", unique("other") + "k", 1) == RespError(CROSSSLOT)
    assert a.command("EXEC") == RespError(
        "EXECABORT Transaction discarded because of previous errors.")
    # WATCH conflict: another client changes the key
    assert a.command("WATCH", t + "k") == "OK"
    assert b.command("SET", t + "k", "changed") == "OK"
    assert a.command("MULTI") == "OK"
    assert a.command("SET", t + "k", "mine") == "QUEUED"
    assert a.command("EXEC") is None
    assert a.command("GET", t + "k") == b"changed"
    # no conflict
    assert a.command("WATCH", t + "k") == "OK"
    assert a.command("MULTI") == "OK"
    assert a.command("SET", t + "k", "mine") == "QUEUED"
    assert a.command("EXEC") == ["OK"]
    assert a.command("DISCARD") == RespError("ERR DISCARD without MULTI")
    a.close()
    b.close()


def test_watched_block_never_runs_without_its_watch(cluster, ringslot):
    """WATCH one node's key, then MULTI with a key of another node: the
    block runs on the WATCH link, the node refuses the foreign key (MOVED)
    and aborts; ringslot must not send the block on to the key's node,
    where it would commit without the WATCH (a lost update)."""
    w, other = unique("w"), unique("o")
    while cluster.master_for_key(w + "k") == cluster.master_for_key(other + "k"):
        other = unique("o")
    a, b = ringslot.raw(), ringslot.raw()
    assert a.command("SET", w + "k", "0") == "OK"
    assert a.command("WATCH", w + "k") == "OK"
    assert b.command("SET", w + "k", "changed") == "OK"
    assert a.command("MULTI") == "OK"
    assert a.command("SET", other + "k", "z") == "QUEUED"
    assert a.command("EXEC") == RespError(
        "EXECABORT Transaction discarded because of previous errors.")
    assert a.command("GET", other + "k") is None
    # the same without a conflict: still the node's EXECABORT, never a
    # block that ran where the WATCH was not
    assert a.command("WATCH", w + "k") == "OK"
    assert a.command("MULTI") == "OK"
    assert a.command("SET", other + "k", "z") == "QUEUED"
    assert a.command("EXEC") == RespError(
        "EXECABORT Transaction discarded because of previous errors.")
    assert a.command("GET", other + "k") is None
    a.close()
    b.close()


def test_multi_exec_across_live_migration(cluster, ringslot):
    """Transactions on one slot keep working while the slot moves: the
    block is re-sent whole on MOVED/ASK, the client never sees one."""
    t = tag("mig")
    slot = keyslot(t)
    keys = [t + str(i) for i in range(40)]
    r = ringslot.client()
    for k in keys:
        r.set(k, 0)
    src = cluster.master_for_slot(slot)
    dst = next(m for m in cluster.masters() if m != src)
    c = ringslot.raw()
    counts = {k: 0 for k in keys}
    errors = []

    def transactions():
        for k in keys:
            got = c.pipeline([("MULTI",), ("INCR", k), ("INCR", k), ("EXEC",)])
            if got[-1] != [counts[k] + 1, counts[k] + 2]:
                errors.append((k, got))
            counts[k] += 2

    before = ringslot.proxy_info()
    assert cluster.migrate_slot(slot, dst, batch=4, between=transactions) >= 5
    transactions()
    assert not errors, errors[:3]
    after = ringslot.proxy_info()
    assert (after["ask_followed"] + after["moved_followed"] >
            before["ask_followed"] + before["moved_followed"]), after
    assert [int(v) for v in r.mget(keys)] == [counts[k] for k in keys]
    c.close()
    cluster.wait_stable(30)


# --- WAIT, blocking commands ----------------------------------------------------------

def test_wait_returns_replica_count(ringslot):
    with ringslot.raw() as c:
        t = tag("wait")
        for i in range(5):
            assert c.command("SET", t + str(i), i) == "OK"
        assert c.command("SET", unique("w2"), 1) == "OK"
        assert c.command("WAIT", 1, 1000) == 1
        assert c.command("WAIT", 0, 0) >= 0


@pytest.mark.parametrize("blocking", ["BLPOP", "BRPOPLPUSH"])
def test_blocked_client_does_not_delay_others(cluster, rs1, blocking):
    t = tag("blk")
    node = cluster.client(cluster.master_for_key(t + "list"))
    blocked0 = node.info("clients")["blocked_clients"]
    a, b = rs1.raw(), rs1.raw()
    assert b.command("SET", t + "x", "v") == "OK"
    if blocking == "BLPOP":
        a.send_command("BLPOP", t + "list", 5)
    else:
        a.send_command("BRPOPLPUSH", t + "list", t + "dst", 5)
    wait_until(lambda: node.info("clients")["blocked_clients"] > blocked0, 10,
               interval=0.01, what="the blocking call to reach its node")
    start = time.monotonic()
    for _ in range(50):
        assert b.command("GET", t + "x") == b"v"
    # not stalled behind the 5 s blocking call (the bound is loose on purpose:
    # a loaded machine under ASan is slow, never 5 s slow)
    assert time.monotonic() - start < 4.0
    assert b.command("RPUSH", t + "list", "item") == 1
    got = a.read_reply()
    assert got == ([t.encode() + b"list", b"item"] if blocking == "BLPOP" else b"item")
    assert a.command("GET", t + "x") == b"v"   # back on the shared link
    a.close()
    b.close()


# --- scripting, ordinary multi-key commands ---------------------------------------------

def test_eval_keys_and_argv(ringslot):
    r = ringslot.client()
    t = tag("ev")
    assert r.eval("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}", 2, t + "a", t + "b",
                  "x", "y") == [(t + "a").encode(), (t + "b").encode(), b"x", b"y"]
    assert r.eval("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])",
                  1, t + "a", "val") == b"val"
    sha = r.script_load("return ARGV[1]")
    assert r.evalsha(sha, 0, "z") == b"z"
    # the first ARGV is not a key: numkeys 0 goes anywhere
    assert r.eval("return ARGV[1]", 0, unique("notakey")) is not None


def test_nested_eval_and_command_docs_as_redis(cluster, ringslot):
    node = cluster.masters()[0]
    with ringslot.raw() as c, RespClient(helpers.HOST, node) as d:
        for cmd in (("EVAL", "return {{{{{{{{{{{{1}}}}}}}}}}}}", 0),
                    ("COMMAND", "DOCS", "get", "set"),
                    ("COMMAND", "INFO", "mget"),
                    ("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"),
                    ("COMMAND", "COUNT")):
            c.send_command(*cmd)
            d.send_command(*cmd)
            assert c.read_raw() == d.read_raw(), cmd


def test_getdel_lmove_copy_zrangestore(ringslot):
    r = ringslot.client()
    t = tag("mk")
    r.set(t + "s", "v")
    assert r.getdel(t + "s") == b"v" and r.get(t + "s") is None
    r.rpush(t + "l1", "a", "b")
    assert r.lmove(t + "l1", t + "l2", "LEFT", "RIGHT") == b"a"
    assert r.lrange(t + "l2", 0, -1) == [b"a"]
    r.set(t + "c1", "x")
    assert r.copy(t + "c1", t + "c2") is True and r.get(t + "c2") == b"x"
    r.zadd(t + "z", {"a": 1, "b": 2, "c": 3})
    assert r.zrangestore(t + "zd", t + "z", 0, 1) == 2
    assert r.zrange(t + "zd", 0, -1) == [b"a", b"b"]
    with ringslot.raw() as c:
        assert c.command("COPY", unique("a"), unique("b")) == RespError(CROSSSLOT)


def test_routed_server_commands(ringslot):
    r = ringslot.client()
    k = unique("obj")
    r.set(k, 12345)
    assert len(r.time()) == 2
    assert r.memory_usage(k) > 0
    assert r.object("encoding", k) == b"int"
    assert r.execute_command("LOLWUT", "VERSION", "5")
    with ringslot.raw() as c:
        for cmd in ("MONITOR", "SYNC", "SHUTDOWN", "DEBUG"):
            err = c.command(cmd)
            assert isinstance(err, RespError) and "not supported" in str(err), err
        assert c.command("NOSUCHCMD", "a") == RespError(
            "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' ")
        assert c.command("READONLY") == "OK" and c.command("ASKING") == "OK"


# --- pub/sub --------------------------------------------------------------------------

def read_push(c, proto):
    msg = c.read_reply()
    if proto == 3:
        assert isinstance(msg, Push), msg
    return list(msg)


@pytest.mark.parametrize("proto", [2, 3])
def test_subscribe_publish_round_trip(ringslot, proto):
    sub, pub = ringslot.raw(), ringslot.raw()
    if proto == 3:
        assert sub.command("HELLO", "3")[b"proto"] == 3
    ch = unique("ch")
    sub.send_command("SUBSCRIBE", ch)
    assert read_push(sub, proto) == [b"subscribe", ch.encode(), 1]
    pat = unique("pat")
    sub.send_command("PSUBSCRIBE", pat + "*")
    assert read_push(sub, proto) == [b"psubscribe", (pat + "*").encode(), 2]
    pub.command("PUBLISH", ch, "hello")
    assert read_push(sub, proto) == [b"message", ch.encode(), b"hello"]
    pub.command("PUBLISH", pat + "x", "p")
    assert read_push(sub, proto) == [b"pmessage", (pat + "*").encode(), (pat + "x").encode(),
                                     b"p"]
    sub.send_command("UNSUBSCRIBE", ch)
    assert read_push(sub, proto) == [b"unsubscribe", ch.encode(), 1]
    sub.send_command("PUNSUBSCRIBE")
    assert read_push(sub, proto) == [b"punsubscribe", (pat + "*").encode(), 0]
    assert sub.command("PING") == "PONG"
    sub.close()
    pub.close()


@pytest.mark.parametrize("proto", [2, 3])
def test_ssubscribe_spublish_round_trip(cluster, ringslot, proto):
    sub, pub = ringslot.raw(), ringslot.raw()
    if proto == 3:
        assert sub.command("HELLO", "3")[b"proto"] == 3
    by_node = {}
    while len(by_node) < 3:     # one shard channel on each master
        ch = unique("sch")
        by_node.setdefault(cluster.master_for_key(ch), ch)
    chans = list(by_node.values())
    # a plain subscription on the node of the first shard channel: the two
    # kinds use different links, so SUNSUBSCRIBE is answered all the same
    plain = unique("plain")
    while cluster.master_for_key(plain) != cluster.master_for_key(chans[0]):
        plain = unique("plain")
    sub.send_command("SUBSCRIBE", plain)
    assert read_push(sub, proto) == [b"subscribe", plain.encode(), 1]
    for i, ch in enumerate(chans):  # counts are the client's, as on Redis
        sub.send_command("SSUBSCRIBE", ch)
        assert read_push(sub, proto) == [b"ssubscribe", ch.encode(), i + 1]
    for ch in chans:
        assert pub.command("SPUBLISH", ch, "m" + ch) == 1
        assert read_push(sub, proto) == [b"smessage", ch.encode(), ("m" + ch).encode()]
    for i, ch in enumerate(chans):
        sub.send_command("SUNSUBSCRIBE", ch)
        assert read_push(sub, proto) == [b"sunsubscribe", ch.encode(), len(chans) - 1 - i]
    sub.send_command("UNSUBSCRIBE")
    assert read_push(sub, proto) == [b"unsubscribe", plain.encode(), 0]
    assert sub.command("PING") == "PONG"
    sub.close()
    pub.close()


def test_keyspace_notifications_from_every_master(cluster, ringslot):
    for m in cluster.masters():
        cluster.execute(m, "CONFIG", "SET", "notify-keyspace-events", "KEA")
    try:
        sub, w = ringslot.raw(), ringslot.client()
        numpat0 = {m: cluster.client(m).pubsub_numpat() for m in cluster.masters()}
        sub.send_command("SUBSCRIBE", "__keyevent@0__:set")
        assert sub.read_reply() == [b"subscribe", b"__keyevent@0__:set", 1]
        prefix = unique("ks")
        sub.send_command("PSUBSCRIBE", "__keyspace@0__:%s*" % prefix)
        assert sub.read_reply() == [b"psubscribe", ("__keyspace@0__:%s*" % prefix).encode(), 2]
        keys = [prefix + str(i) for i in range(30)]
        def subscribed_everywhere():
            for m in cluster.masters():
                node = cluster.client(m)
                if node.pubsub_numsub("__keyevent@0__:set")[0][1] < 1:
                    return False
                if node.pubsub_numpat() <= numpat0[m]:
                    return False
            return True
        wait_until(subscribed_everywhere, 10, interval=0.01,
                   what="the subscriptions on every master")
        for k in keys:
            w.set(k, 1)
        assert len({cluster.master_for_key(k) for k in keys}) == 3
        got = [sub.read_reply() for _ in range(2 * len(keys))]
        events = sorted(g[2] for g in got if g[0] == b"message" and g[2].startswith(
            prefix.encode()))
        assert events == sorted(k.encode() for k in keys)
        assert sum(1 for g in got if g[0] == b"pmessage") == len(keys)
        sub.send_command("UNSUBSCRIBE")
        assert sub.read_reply() == [b"unsubscribe", b"__keyevent@0__:set", 1]
        sub.send_command("PUNSUBSCRIBE")
        assert sub.read_reply()[2] == 0
        assert sub.command("PING") == "PONG"
        delete_all(w, keys)
        sub.close()
    finally:
        for m in cluster.masters():
            cluster.execute(m, "CONFIG", "SET", "notify-keyspace-events", "")


# --- connection state --------------------------------------------------------------------

def test_hello3_then_hgetall_is_a_map(ringslot):
    with ringslot.raw() as c:
        hello = c.command("HELLO", "3", "SETNAME", "h3")
        assert hello[b"proto"] == 3 and hello[b"server"] == b"ringslot"
        k = unique("h")
        assert c.command("HSET", k, "a", "1", "b", "2") == 2
        assert c.command("HGETALL", k) == {b"a": b"1", b"b": b"2"}
        assert c.command("CLIENT", "GETNAME") == b"h3"
        assert c.command("RESET") == "RESET"    # back to RESP2, no name
        assert c.command("HGETALL", k) == [b"a", b"1", b"b", b"2"]
        assert c.command("CLIENT", "GETNAME") is None
        assert c.command("DEL", k) == 1


def test_client_commands(ringslot):
    r = ringslot.client()
    assert r.client_setname("alpha") is True
    assert r.client_getname() == "alpha" or r.client_getname() == b"alpha"
    cid = r.client_id()
    info = r.client_info()
    assert int(info["id"]) == cid and info["name"] == "alpha"
    others = [ringslot.raw() for _ in range(10)]
    for n, o in enumerate(others):
        assert o.command("CLIENT", "SETNAME", "o%d" % n) == "OK"
    # SO_REUSEPORT hashes each connection to a worker: ten all land on one
    # worker once in 512 runs, so open more (unnamed) until both are seen.
    spare = []
    threads = {o.command("PROXY", "CLIENT", "THREAD") for o in others}
    while threads != {0, 1} and len(spare) < 40:
        spare.append(ringslot.raw())
        threads.add(spare[-1].command("PROXY", "CLIENT", "THREAD"))
    assert threads == {0, 1}
    names = {c["name"] for c in r.client_list()}
    assert {"alpha"} | {"o%d" % n for n in range(10)} <= names
    # cmd= is each client's last command, as Redis shows it
    assert others[1].command("GET", unique("cmd")) is None
    listed = {c["name"]: c["cmd"] for c in r.client_list()}
    assert listed["o1"] == "get" and listed["o2"] == "proxy", listed
    assert listed["o3"] == "proxy" and r.client_info()["cmd"] == "client|info"
    assert others[4].command("CLIENT", "GETNAME") == b"o4"
    assert {c["name"]: c["cmd"] for c in r.client_list()}["o4"] == "client|getname"
    victim = others[0].command("CLIENT", "ID")
    assert r.client_kill_filter(_id=victim) == 1
    with pytest.raises(Exception):
        others[0].command("PING")
    assert victim not in {int(c["id"]) for c in r.client_list()}
    with ringslot.raw() as c:
        assert c.command("CLIENT", "SETNAME", "a b") == RespError(
            "ERR Client names cannot contain spaces, newlines or special characters.")
        err = c.command("CLIENT", "TRACKING", "on")
        assert isinstance(err, RespError) and "not supported" in str(err)
        assert c.command("CLIENT", "NO-EVICT", "on") == "OK"
        assert c.command("CLIENT", "SETINFO", "lib-name", "mylib") == "OK"
        assert "lib-name=mylib" in c.command("CLIENT", "INFO").decode()
        c.send_command("CLIENT", "REPLY", "OFF")
        c.send_command("SET", unique("r"), 1)
        c.send_command("CLIENT", "REPLY", "SKIP")
        assert c.command("CLIENT", "REPLY", "ON") == "OK"
        c.send_command("CLIENT", "REPLY", "SKIP")
        c.send_command("PING", "skipped")
        assert c.command("PING", "seen") == b"seen"
    for o in others + spare:
        o.close()


def test_info_parsed_by_redis_py_and_redis_cli(cluster, ringslot):
    r = ringslot.client()
    k = unique("info")
    r.set(k, 1)
    info = r.info()
    for key in ("ringslot_version", "process_id", "uptime_in_seconds", "threads", "tcp_port",
                "io_backend", "connected_clients", "total_commands_processed",
                "instantaneous_ops_per_sec", "total_net_input_bytes", "used_memory",
                "used_memory_rss", "moved_followed", "ask_followed", "topology_refreshes",
                "nodes", "masters", "replicas", "slots_covered"):
        assert key in info, key
    assert info["tcp_port"] == ringslot.port and info["threads"] == 2
    assert info["masters"] == 3 and info["replicas"] == 3 and info["slots_covered"] == 16384
    assert info["used_memory_rss"] > 0
    direct = sum(cluster.client(m).info("keyspace").get("db0", {}).get("keys", 0)
                 for m in cluster.masters())
    assert info["db0"]["keys"] == direct
    assert set(r.info("keyspace")) == {"db0"}
    assert "used_memory" in r.info("memory") and "redis_version" not in r.info("memory")
    both = r.execute_command("INFO", "server", "clients")
    assert "process_id" in both and "connected_clients" in both and "used_memory" not in both
    out = subprocess.run([helpers.REDIS_CLI, "-p", str(ringslot.port), "info", "stats"],
                         capture_output=True, text=True, timeout=10).stdout
    assert "total_commands_processed:" in out
    out = subprocess.run([helpers.REDIS_CLI, "-3", "-p", str(ringslot.port), "info", "keyspace"],
                         capture_output=True, text=True, timeout=10).stdout
    assert "db0:keys=" in out
    r.delete(k)


def test_config_get_from_a_master(ringslot):
    r = ringslot.client()
    got = r.config_get("maxmemory")
    assert "maxmemory" in got
    assert set(r.config_get("save")) == {"save"}
    out = subprocess.run(["redis-benchmark", "-p", str(ringslot.port), "-n", "100", "-c", "2",
                          "-t", "ping", "-q"], capture_output=True, text=True, timeout=30)
    assert "Could not fetch" not in out.stdout + out.stderr, out.stdout + out.stderr


# --- PROXY --------------------------------------------------------------------------

def test_proxy_subcommands(ringslot, tmp_path):
    with ringslot.raw() as c:
        assert c.command("PROXY", "PING") == "PONG"
        helpl = c.command("PROXY", "HELP")
        assert helpl[0] == "PROXY <subcommand> arg arg ... arg" and len(helpl) > 5
        info = helpers.parse_info(c.command("PROXY", "INFO"))
        assert {"proxy_version", "threads", "moved_followed", "connected_clients",
                "used_memory", "nodes"} <= set(info)
        mem = helpers.parse_info(c.command("PROXY", "INFO", "memory"))
        assert "used_memory" in mem and "threads" not in mem
        rows = c.command("PROXY", "COMMAND")
        assert len(rows) > 150 and all(len(row) == 6 for row in rows)
        get = next(row for row in rows if row[0] == "get")
        assert get == ["get", 2, 1, 1, 1, 0]
        unsupported = {row[0] for row in c.command("PROXY", "COMMAND", "UNSUPPORTED")}
        assert "monitor" in unsupported and "get" not in unsupported
        cross = {row[0] for row in c.command("PROXY", "COMMAND", "CROSSSLOTS-UNSUPPORTED")}
        assert "msetnx" in cross and "mget" not in cross and "get" not in cross
        assert isinstance(c.command("PROXY", "COMMAND", "bogus"), RespError)
        cid = c.command("CLIENT", "ID")
        thread = c.command("PROXY", "CLIENT", "THREAD")
        assert c.command("PROXY", "CLIENT", "ID") == "%d:%d" % (thread, cid)
        cl = c.command("PROXY", "CLUSTER")
        assert cl[0:4] == ["status", "updated", "connection", "shared"]
        assert cl[4] == "nodes" and len(cl[5]) == 3
        node = cl[5][0]
        assert node[0::2] == ["name", "ip", "port", "slots", "replicas", "connected"]
        assert sum(n[7] for n in cl[5]) == 16384
        assert c.command("PROXY", "CLUSTER", "STATUS") == ["status", "updated"]
        assert c.command("PROXY", "CLUSTER", "CONNECTION") == ["connection", "shared"]
        assert len(c.command("PROXY", "CLUSTER", "NODES")[1]) == 3
        refreshes = ringslot.proxy_info()["topology_refreshes"]
        assert c.command("PROXY", "CLUSTER", "UPDATE") == "started"
        wait_until(lambda: ringslot.proxy_info()["topology_refreshes"] > refreshes, 10,
                   what="a topology refresh")
        marker = "marker-%s" % os.urandom(4).hex()
        assert c.command("PROXY", "LOG", "warning", marker) == "OK"
        wait_until(lambda: marker in ringslot.log_text(), 5, what="the log line")
        assert isinstance(c.command("PROXY", "LOG", "loud", "x"), RespError)
        assert c.command("PROXY", "MULTIPLEXING", "STATUS") == "on"
        assert c.command("PROXY", "MULTIPLEXING", "OFF") == "OK"
        assert c.command("PROXY", "MULTIPLEXING", "STATUS") == "off"
        k = unique("mx")
        assert c.command("SET", k, 1) == "OK" and c.command("GET", k) == b"1"
        assert c.command("PROXY", "CLUSTER", "CONNECTION") == ["connection", "private"]
        assert c.command("PROXY", "NOPE") == RespError(
            "ERR Unknown subcommand or wrong number of arguments for 'PROXY'. Try PROXY HELP")


# --- replies byte for byte as Redis 7.0 gives them ----------------------------
#
# Each case is sent in one write to ringslot and to a reference: a plain
# redis-server (`plain`, empty: nothing here writes to it) or a node of the
# shared cluster (`node`: for CLUSTER and for what only a cluster node says).

SAME_AS_REDIS = {
    # WATCH inside MULTI: refused, the block still runs (no EXECABORT) …
    "watch_in_multi": ("plain", [("MULTI",), ("WATCH", "k"), ("GET", "k"), ("EXEC",)]),
    # … but an arity error or CROSSSLOT there aborts it, as on a cluster node
    "watch_arity_in_multi": ("plain", [("MULTI",), ("WATCH",), ("EXEC",)]),
    "watch_crossslot_in_multi": ("node", [("MULTI",), ("WATCH", "a", "b"), ("EXEC",)]),
    "subcommand_arity_in_multi": ("plain", [("MULTI",), ("CLIENT", "SETNAME"), ("EXEC",)]),
    "client_arity": ("plain", [("CLIENT", "SETNAME"), ("CLIENT", "KILL"), ("CLIENT", "ID", "x"),
                               ("CLIENT", "GETNAME", "x"), ("CLIENT", "setname", "a", "b"),
                               ("CLIENT", "INFO", "x"), ("CLIENT", "REPLY"),
                               ("CLIENT", "NO-EVICT"), ("CLIENT", "CACHING"),
                               ("CLIENT", "HELP", "x")]),
    "client_unknown": ("plain", [("CLIENT", "nope"), ("CLIENT", "NoPe", "x")]),
    # an echoed argument stays inside its error line
    "echoed_newlines": ("plain", [("CLIENT", "a\r\nb"), ("HELLO", "3", "x\ny"),
                                  ("NOPE\r\n", "a\nb")]),
    "command_config_arity": ("plain", [("COMMAND", "COUNT", "x"), ("CONFIG", "GET"),
                                       ("COMMAND", "nope"), ("CONFIG", "nope")]),
    "cluster_arity": ("node", [("CLUSTER", "SLOTS", "x"), ("CLUSTER", "SHARDS", "x"),
                               ("CLUSTER", "NODES", "x"), ("CLUSTER", "INFO", "x"),
                               ("CLUSTER", "MYID", "x"), ("CLUSTER", "KEYSLOT"),
                               ("CLUSTER", "nope")]),
    "cluster_slot_numbers": ("node", [("CLUSTER", "COUNTKEYSINSLOT", "x"),
                                      ("CLUSTER", "COUNTKEYSINSLOT", "16384"),
                                      ("CLUSTER", "GETKEYSINSLOT", "x", "1"),
                                      ("CLUSTER", "GETKEYSINSLOT", "16384", "1"),
                                      ("CLUSTER", "GETKEYSINSLOT", "1", "-1")]),
    "hello_version": ("plain", [("HELLO", "x"), ("HELLO", "02"), ("HELLO", "4"),
                                ("HELLO", "1"), ("HELLO", "-1"), ("HELLO", "3", "AUTH"),
                                ("HELLO", "3", "AUTH", "a"), ("HELLO", "3", "SETNAME")]),
    "scan_cursor": ("plain", [("SCAN", "-1"), ("SCAN", "18446744073709551615"),
                              ("SCAN", "18446744073709551616"), ("SCAN", "x"),
                              ("SCAN", " 1"), ("SCAN", "1 ")]),
}


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("case", sorted(SAME_AS_REDIS))
def test_replies_match_redis(cluster, ringslot, plain_redis, proto, case):
    where, cmds = SAME_AS_REDIS[case]
    reference = plain_redis if where == "plain" else cluster.masters()[0]
    sentinel = unique("end")
    cmds = cmds + [("PING", sentinel)]
    want = helpers.transcript(reference, cmds, proto, sentinel)
    got = helpers.transcript(ringslot.port, cmds, proto, sentinel)
    assert got == want


def test_info_server_says_cluster_mode(cluster, ringslot):
    """ringslot is a cluster node to its clients (INFO cluster has
    cluster_enabled:1, HELLO says mode cluster): INFO server says so too."""
    node = helpers.parse_info(cluster.execute(cluster.masters()[0], "INFO", "server"))
    assert node["redis_mode"] == "cluster"
    with ringslot.raw() as c:
        info = helpers.parse_info(c.command("INFO", "server").decode())
        assert info["redis_mode"] == node["redis_mode"]
        assert c.command("HELLO", "3")[b"mode"] == b"cluster"
