"""The test harness itself: cluster fixtures, slot math, the raw RESP client.

These need no ringslot; they make sure a failing ringslot test is not the
harness's fault."""

import os
import signal

import helpers
from helpers import RespError, keyslot


def test_cluster_is_ready(cluster):
    masters = cluster.masters()
    assert len(masters) == 3
    assert len(cluster.ports) == 6
    table = cluster.slot_table()
    assert None not in table
    assert set(table) == set(masters)
    for m in masters:
        reps = cluster.replicas(m)
        assert len(reps) == 1
        assert reps[0] not in masters
        assert cluster.node_id(m)
    for port in cluster.ports:
        info = helpers.parse_info(cluster.execute(port, "CLUSTER", "INFO"))
        assert info["cluster_state"] == "ok"
        assert info["cluster_known_nodes"] == "6"


def test_keyslot_matches_server(cluster):
    keys = ["", "a", "foo", "{user1000}.following", "{user1000}.followers",
            "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}foo", "{", "}",
            "{a", "a}", "123456789"]
    keys += [os.urandom(n) for n in range(1, 40)]
    keys += ["k:%d" % i for i in range(100)]
    c = cluster.client(cluster.masters()[0])
    pipe = c.pipeline(transaction=False)
    for k in keys:
        pipe.execute_command("CLUSTER", "KEYSLOT", k)
    for k, slot in zip(keys, pipe.execute()):
        assert keyslot(k) == int(slot), k
    assert keyslot("123456789") == 0x31C3 % 16384
    t = helpers.tag_for_slot(777)
    assert cluster.keyslot("{%s}x" % t) == 777


def test_master_for_slot_owns_keys(cluster):
    for key in ["a", "b", "c", "hello", "{t}x"]:
        owner = cluster.master_for_key(key)
        c = cluster.client(owner)
        c.set(key, b"v")
        assert c.get(key) == b"v"
        c.delete(key)


def test_resp_client_against_redis(cluster, resp_client):
    port = cluster.master_for_key("{rc}key")
    c = resp_client(port)
    assert c.command("PING") == "PONG"
    assert c.command("PING", "hi") == b"hi"
    assert c.command("SET", "{rc}key", b"") == "OK"
    assert c.command("GET", "{rc}key") == b""
    assert c.command("GET", "{rc}missing") is None
    err = c.command("SELECT", 1)
    assert isinstance(err, RespError)
    assert str(err) == "ERR SELECT is not allowed in cluster mode"
    c.send(b"PING\r\n")
    assert c.read_raw() == b"+PONG\r\n"
    assert c.pipeline([("INCR", "{rc}n"), ("INCR", "{rc}n"), ("DEL", "{rc}n")]) == [1, 2, 1]
    hello = c.command("HELLO", 3)
    assert isinstance(hello, dict) and hello[b"proto"] == 3
    assert c.command("GET", "{rc}missing") is None
    c.send(helpers.encode_command("HSET", "{rc}h", "f", "v"))
    assert c.read_raw() == b":1\r\n"
    assert c.command("HGETALL", "{rc}h") == {b"f": b"v"}
    assert c.command("DEL", "{rc}h") == 1
    assert c.command("QUIT") == "OK"
    c.read_until_closed(5)


def test_make_cluster_kill_restart(make_cluster):
    c = make_cluster(masters=3, replicas=0)
    assert len(c.masters()) == 3 and c.replicas() == []
    victim = c.masters()[0]
    c.kill(victim, signal.SIGKILL)
    assert not c.nodes[victim].alive()
    c.restart(victim)
    assert c.execute(victim, "PING") == "PONG"
    c.wait_stable(30, expect_replicas=False)
    assert victim in c.masters()


def test_migrate_slot(cluster):
    tag = "fx%s" % os.urandom(3).hex()
    slot = keyslot(tag)
    src = cluster.master_for_slot(slot)
    dst = [m for m in cluster.masters() if m != src][0]
    s = cluster.client(src)
    keys = ["{%s}:%d" % (tag, i) for i in range(25)]
    for k in keys:
        s.set(k, k)
    calls = []
    assert cluster.migrate_slot(slot, dst, batch=10, between=lambda: calls.append(1)) == 3
    assert len(calls) == 3
    assert cluster.master_for_slot(slot) == dst
    d = cluster.client(dst)
    assert [d.get(k) for k in keys] == [k.encode() for k in keys]
    cluster.wait_stable(30)
    assert cluster.migrate_slot(slot, src, batch=100) == 1   # and back
    cluster.wait_stable(30)
    assert cluster.master_for_slot(slot) == src
