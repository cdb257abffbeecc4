"""Issue 11, pub/sub: what clients see through ringslot compared with Redis.

- Pipelined subscribe/unsubscribe transitions (redis-py's PubSub sends
  SUBSCRIBE, UNSUBSCRIBE, SUBSCRIBE, PING in one go when it resubscribes):
  the same bytes, in the same order, as a plain redis-server answers, in
  RESP2 and RESP3, and the connection ends in the same state.
- RESP3 clients may run any command while subscribed (Redis 7 restricts
  only RESP2).
- PUBLISH counts every client subscribed through ringslot, wherever the
  PUBLISH goes, and each subscriber gets each message once.
"""

import os
import socket
import threading
import time

import pytest

import helpers
from helpers import HOST, RespClient, encode_command, transcript, wait_until


def unique(name):
    """A fresh name (no braces, no glob characters)."""
    return "%s:%d:%s:" % (name, os.getpid(), os.urandom(4).hex())


def pipelines(n):
    """Subscribe-state transitions, each ending in PING <sentinel>."""
    a, b, s, k = n + "a", n + "b", n + "s", n + "k"
    p = n + "p*"
    return {
        "resubscribe": [("SUBSCRIBE", a), ("UNSUBSCRIBE",), ("SUBSCRIBE", b), ("PING",)],
        "command_while_changing": [("SUBSCRIBE", a), ("GET", k), ("UNSUBSCRIBE",), ("GET", k),
                                   ("PING",)],
        "patterns_and_channels": [("PSUBSCRIBE", p), ("SUBSCRIBE", a), ("PUNSUBSCRIBE",),
                                  ("GET", k), ("UNSUBSCRIBE", a), ("PING", "x"), ("GET", k)],
        "nothing_subscribed": [("UNSUBSCRIBE",), ("PUNSUBSCRIBE",), ("SUNSUBSCRIBE",),
                               ("UNSUBSCRIBE", a, b), ("PUNSUBSCRIBE", p), ("GET", k)],
        "repeats": [("SUBSCRIBE", a, a, b), ("UNSUBSCRIBE", b, s), ("PUNSUBSCRIBE",),
                    ("UNSUBSCRIBE",), ("UNSUBSCRIBE",), ("GET", k)],
        "shard_and_plain": [("SSUBSCRIBE", s), ("SUBSCRIBE", a), ("UNSUBSCRIBE",), ("GET", k),
                            ("SUNSUBSCRIBE",), ("GET", k)],
        "reset": [("SUBSCRIBE", a), ("PSUBSCRIBE", p), ("RESET",), ("GET", k)],
        "refusals": [("SUBSCRIBE", a), ("OBJECT", "ENCODING", k), ("BOGUS", "x"), ("PUBLISH", a),
                     ("ECHO",), ("PING", "a", "b"), ("GET", k), ("PUBLISH", a, "m"),
                     ("UNSUBSCRIBE",), ("PUBLISH", a, "m")],
        "set_while_subscribed": [("SUBSCRIBE", a), ("SET", k, "v"), ("GET", k), ("DEL", k),
                                 ("UNSUBSCRIBE", a), ("SUBSCRIBE", b), ("GET", k)],
    }


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("case", sorted(pipelines("x")))
def test_pipelined_transitions_match_redis(ringslot, plain_redis, proto, case):
    name = unique("ps")
    sentinel = unique("end")
    cmds = pipelines(name)[case] + [("PING", sentinel)]
    want = transcript(plain_redis, cmds, proto, sentinel)
    got = transcript(ringslot.port, cmds, proto, sentinel)
    assert got == want


@pytest.mark.parametrize("proto", [2, 3])
def test_resubscribed_connection_receives(ringslot, proto):
    """After SUBSCRIBE a, UNSUBSCRIBE, SUBSCRIBE b, PING in one write, the
    connection is subscribed to b (and only b), as on Redis."""
    n = unique("rs")
    sub, pub = ringslot.raw(), ringslot.client()
    try:
        if proto == 3:
            sub.command("HELLO", "3")
        sub.send(b"".join(encode_command(*c) for c in [
            ("SUBSCRIBE", n + "a"), ("UNSUBSCRIBE",), ("SUBSCRIBE", n + "b"), ("PING",)]))
        got = [list(sub.read_reply()) if proto == 2 else sub.read_reply() for _ in range(4)]
        assert got[2] == [b"subscribe", (n + "b").encode(), 1]
        assert pub.publish(n + "a", "x") == 0
        assert pub.publish(n + "b", "y") == 1
        assert list(sub.read_reply()) == [b"message", (n + "b").encode(), b"y"]
    finally:
        sub.close()
        pub.close()


def test_resp3_any_command_while_subscribed(ringslot):
    """Redis 7 refuses other commands only to RESP2 subscribers."""
    n = unique("r3")
    with ringslot.raw() as c:
        assert c.command("HELLO", "3")[b"proto"] == 3
        c.send_command("SUBSCRIBE", n + "ch")
        assert list(c.read_reply()) == [b"subscribe", (n + "ch").encode(), 1]
        assert c.command("SET", n + "k", "v") == "OK"
        assert c.command("GET", n + "k") == b"v"
        # its own message first, then the count, as Redis sends them
        assert list(c.command("PUBLISH", n + "ch", "m")) == [b"message", (n + "ch").encode(),
                                                             b"m"]
        assert c.read_reply() == 1
        assert c.command("DEL", n + "k") == 1
        assert c.command("PING") == "PONG"


def read_messages(c, until):
    """Messages read until one whose payload is `until` (included)."""
    got = []
    while not got or got[-1][-1] != until:
        got.append(list(c.read_reply()))
    return got


@pytest.mark.parametrize("nsubs", [1, 2])
def test_publish_counts_every_subscriber(cluster, ringslot, nsubs):
    """One (or two) channel subscribers and as many pattern subscribers:
    every PUBLISH says 2 (4), whichever connection and worker sends it,
    and each subscriber gets each message exactly once."""
    n = unique("pc")
    ch = n + "chan"
    subs = []
    try:
        for i in range(nsubs):
            s = ringslot.raw()
            s.send_command("SUBSCRIBE", ch)
            assert s.read_reply()[0] == b"subscribe"
            p = ringslot.raw()
            p.send_command("PSUBSCRIBE", n + "*")
            assert p.read_reply()[0] == b"psubscribe"
            subs += [s, p]
        counts = []
        for i in range(6):
            with ringslot.raw() as pub:  # new connections: both workers publish
                counts.append(pub.command("PUBLISH", ch, "m%d" % i))
        assert counts == [2 * nsubs] * 6
        with ringslot.raw() as pub:
            assert pub.command("PUBLISH", ch, "end") == 2 * nsubs
        for s in subs:
            got = read_messages(s, b"end")
            assert [m[-1] for m in got] == [b"m%d" % i for i in range(6)] + [b"end"]
        # exactly once: each subscription is held on one node only
        numsub = sum(cluster.client(m).pubsub_numsub(ch)[0][1] for m in cluster.masters())
        assert numsub == nsubs
    finally:
        for s in subs:
            s.close()


def test_publish_counts_subscribers_of_every_ringslot(cluster, ringslot, make_ringslot):
    """Two ringslots in front of one cluster pick the same home node: a
    channel subscriber on one and a pattern subscriber on the other are
    both counted by a PUBLISH through either."""
    other = make_ringslot(threads=1)
    n = unique("two")
    with ringslot.raw() as s, other.raw() as p:
        s.send_command("SUBSCRIBE", n + "c")
        assert s.read_reply()[0] == b"subscribe"
        p.send_command("PSUBSCRIBE", n + "*")
        assert p.read_reply()[0] == b"psubscribe"
        for rs in (ringslot, other, ringslot, other):
            with rs.raw() as pub:
                assert pub.command("PUBLISH", n + "c", "m") == 2
            assert s.read_reply()[-1] == b"m" and p.read_reply()[-1] == b"m"


def test_redis_py_pubsub_resubscribe(ringslot):
    """redis-py's PubSub: subscribe, read, unsubscribe and subscribe again
    without reading in between, ping; then a reconnection resubscribes."""
    n = unique("py")
    r = ringslot.client()
    p = r.pubsub()
    try:
        p.subscribe(n + "a")
        assert p.get_message(timeout=5)["type"] == "subscribe"
        p.unsubscribe()
        p.subscribe(n + "b")
        p.ping("hc")
        got = [p.get_message(timeout=5) for _ in range(3)]
        assert [(m["type"], m["channel"]) for m in got[:2]] == [
            ("unsubscribe", (n + "a").encode()), ("subscribe", (n + "b").encode())]
        assert got[2]["type"] == "pong" and got[2]["data"] == b"hc"
        assert r.publish(n + "b", "x") == 1
        assert p.get_message(timeout=5)["data"] == b"x"
        # a lost connection: redis-py reconnects and resubscribes
        p.connection.disconnect()
        p.ping()
        got = [p.get_message(timeout=5) for _ in range(2)]
        assert got[0]["type"] == "subscribe" and got[0]["channel"] == (n + "b").encode()
        assert got[1]["type"] == "pong"
        assert r.publish(n + "b", "y") == 1
        assert p.get_message(timeout=5)["data"] == b"y"
    finally:
        p.close()
        r.close()


def test_subscribe_inside_multi_is_refused(ringslot):
    """EXEC runs a block on a shared link: a SUBSCRIBE there would make the
    link a subscriber for every client on it. Refused at queue time (Redis
    7.0 would run it; ringslot cannot on a shared link)."""
    n = unique("mu")
    with ringslot.raw() as c:
        got = c.pipeline([("MULTI",), ("SUBSCRIBE", n + "a"), ("SET", n + "k", "v"), ("EXEC",)])
        assert got[:3] == ["OK", helpers.RespError(
            "ERR Command not allowed inside a transaction"), "QUEUED"]
        assert got[3] == helpers.RespError(
            "EXECABORT Transaction discarded because of previous errors.")
    clients = [ringslot.raw() for _ in range(4)]
    try:
        for c in clients:
            assert c.command("GET", n + "k") is None
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("proto", [2, 3])
def test_client_list_counts_subscriptions(ringslot, plain_redis, proto):
    n = unique("cl")
    def counts(port):
        with RespClient(HOST, port) as c, RespClient(HOST, port) as other:
            if proto == 3:
                c.command("HELLO", "3")
            c.send(b"".join(encode_command(*x) for x in [
                ("SUBSCRIBE", n + "a", n + "b"), ("PSUBSCRIBE", n + "*"),
                ("SSUBSCRIBE", n + "s")]))
            for _ in range(4):
                c.read_reply()
            line = [x for x in other.command("CLIENT", "LIST").decode().splitlines()
                    if " sub=" in x and " sub=0 " not in x]
            assert len(line) == 1, line
            return [f for f in line[0].split() if f.split("=")[0] in ("sub", "psub", "ssub")]
    assert counts(ringslot.port) == counts(plain_redis) == ["sub=2", "psub=1", "ssub=1"]


def test_transitions_in_order_under_a_message_flood(ringslot):
    """RESP2: 100 rounds of UNSUBSCRIBE, PING, PSUBSCRIBE, SUBSCRIBE ch ch,
    PING, PUNSUBSCRIBE in one write while another client publishes to the
    channel without pause: the confirmations and PONGs come in request
    order, and messages only while the connection is subscribed."""
    n = unique("fl")
    ch, pat = n + "c", n + "*"
    stop, started = threading.Event(), threading.Event()

    def publish():
        with RespClient(HOST, ringslot.port) as p:
            while not stop.is_set():
                p.command("PUBLISH", ch, "m")
                started.set()

    t = threading.Thread(target=publish)
    t.start()
    try:
        assert started.wait(10)
        with RespClient(HOST, ringslot.port) as c:
            cmds, want = [("SUBSCRIBE", ch)], [[b"subscribe", ch.encode(), 1]]
            for i in range(100):
                cmds += [("UNSUBSCRIBE",), ("PING", "a%d" % i), ("PSUBSCRIBE", pat),
                         ("SUBSCRIBE", ch, ch), ("PING", "b%d" % i), ("PUNSUBSCRIBE",)]
                want += [[b"unsubscribe", ch.encode(), 0], b"a%d" % i,
                         [b"psubscribe", pat.encode(), 1], [b"subscribe", ch.encode(), 2],
                         [b"subscribe", ch.encode(), 2], [b"pong", b"b%d" % i],
                         [b"punsubscribe", pat.encode(), 1]]
            c.send(b"".join(encode_command(*x) for x in cmds + [("PING", "end")]))
            got, messages, channels, patterns = [], 0, 1, 0
            while got[-1:] != [[b"pong", b"end"]]:
                r = c.read_reply()
                if isinstance(r, list) and r[0] in (b"message", b"pmessage"):
                    assert channels if r[0] == b"message" else patterns, (r, len(got))
                    messages += 1
                    continue
                if isinstance(r, list) and r[0].endswith(b"subscribe"):
                    if r[0].startswith(b"p"):
                        patterns = r[2] - channels
                    else:
                        channels = r[2] - patterns
                got.append(r)
        assert got == want + [[b"pong", b"end"]]
        assert messages > 0
    finally:
        stop.set()
        t.join()


@pytest.mark.parametrize("sub", ["LIST", "INFO"])
def test_client_text_replies_are_verbatim_in_resp3(ringslot, plain_redis, sub):
    """CLIENT LIST / CLIENT INFO in RESP3 are verbatim strings (=…txt:),
    as Redis sends them; RESP2 keeps the bulk string."""
    def first_bytes(port, proto):
        with RespClient(HOST, port) as c:
            c.command("HELLO", str(proto))
            c.send_command("CLIENT", sub)
            raw = c.read_raw()
            return raw[:1], raw.split(b"\r\n", 1)[1].startswith(b"txt:")
    for proto in (2, 3):
        want = first_bytes(plain_redis, proto)
        assert first_bytes(ringslot.port, proto) == want, proto


# --- shard channels on several masters: the client's count -------------------

def shard_channels(cluster, n):
    """Two shard channels on different masters (hash tags {sc}: slot 463,
    {sd}: slot 12584)."""
    a, b = n + "{sc}", n + "{sd}"
    assert cluster.master_for_key(a) != cluster.master_for_key(b)
    return a, b


def stepwise(port, steps, proto):
    """Each command's replies (raw bytes), waiting for them before the next
    command: a PING <sentinel> after each marks where its replies end."""
    out = []
    with RespClient(HOST, port) as c:
        if proto == 3:
            c.command("HELLO", "3")
        for i, cmd in enumerate(steps):
            sentinel = "step%d" % i
            c.send(encode_command(*cmd) + encode_command("PING", sentinel))
            got = b""
            while sentinel.encode() not in got:
                got += c.read_raw()
            out.append(got)
    return out


@pytest.mark.parametrize("proto", [2, 3])
def test_shard_counts_are_the_clients_one_by_one(cluster, ringslot, plain_redis, proto):
    """SSUBSCRIBE/SUNSUBSCRIBE on channels of two masters: every count is the
    client's number of shard channels, as on one Redis (each node counts
    only its own: 0 while still subscribed elsewhere crashes ioredis)."""
    a, b = shard_channels(cluster, unique("sh"))
    steps = [("SSUBSCRIBE", a), ("SSUBSCRIBE", b), ("SUNSUBSCRIBE", b), ("SSUBSCRIBE", b),
             ("SUNSUBSCRIBE", a), ("SUNSUBSCRIBE", a), ("SUNSUBSCRIBE", b)]
    assert stepwise(ringslot.port, steps, proto) == stepwise(plain_redis, steps, proto)


def confirmations(port, steps, proto):
    """The confirmations of `steps` (sent one by one), parsed."""
    with RespClient(HOST, port) as c:
        if proto == 3:
            c.command("HELLO", "3")
        got = []
        for cmd in steps:
            n = max(len(cmd) - 1, 1) if cmd[0] != "SUNSUBSCRIBE" or len(cmd) > 1 else None
            c.send_command(*cmd)
            if n is None:  # argument-less: until the count reaches 0
                while not got or got[-1][2] != 0:
                    got.append(list(c.read_reply()))
            else:
                got += [list(c.read_reply()) for _ in range(n)]
        return got


@pytest.mark.parametrize("proto", [2, 3])
def test_shard_counts_are_the_clients_unsubscribe_all(cluster, ringslot, plain_redis, proto):
    """Argument-less SUNSUBSCRIBE over two masters: counts 1 then 0, as on
    Redis, not 0 and 0. (The channels' order is Redis's dict order, which
    its hash seed decides: compared as a set.)"""
    a, b = shard_channels(cluster, unique("sa"))
    steps = [("SSUBSCRIBE", a), ("SSUBSCRIBE", b), ("SUNSUBSCRIBE",)]
    got = confirmations(ringslot.port, steps, proto)
    want = confirmations(plain_redis, steps, proto)
    assert [r[0] for r in got] == [r[0] for r in want]
    assert [r[2] for r in got] == [r[2] for r in want] == [1, 2, 1, 0]
    assert sorted(r[1] for r in got) == sorted(r[1] for r in want)


# --- a failover that keeps the connections -------------------------------------

def closed_within(c, seconds):
    """True once the peer closes c (messages before that are skipped),
    False if it is still open after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        c.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            c.read_reply()
        except (helpers.ConnectionClosed, ConnectionResetError):
            return True
        except socket.timeout:
            return False
    return False


def test_subscriber_of_failed_over_home_is_disconnected(make_cluster, make_ringslot):
    """CLUSTER FAILOVER on the home master's replica keeps every TCP
    connection, but the home node (master of slot 0) moves: the subscriber
    is closed so that it subscribes again, and PUBLISH (sent to the new
    home) counts it again. Before: still connected, PUBLISH answered 0."""
    cluster = make_cluster(masters=3, replicas=1)
    rs = make_ringslot(cluster)
    ch = unique("fo")
    shard = ch + "{sc}"  # slot 463: on the home master too
    pub = rs.client()
    sub, ssub = rs.raw(), rs.raw()
    try:
        old = cluster.master_for_slot(0)
        assert cluster.master_for_key(shard) == old
        assert sub.command("SUBSCRIBE", ch) == [b"subscribe", ch.encode(), 1]
        assert ssub.command("SSUBSCRIBE", shard) == [b"ssubscribe", shard.encode(), 1]
        assert pub.publish(ch, "before") == 1
        assert list(sub.read_reply()) == [b"message", ch.encode(), b"before"]
        replica = cluster.replicas(old)[0]
        assert cluster.execute(replica, "CLUSTER", "FAILOVER") == "OK"
        wait_until(lambda: cluster.master_for_slot(0) == replica, 30, interval=0.05,
                   what="manual failover")
        assert closed_within(sub, 20), "subscriber still connected after the failover"
        # its shard channel's slot is now mastered elsewhere: closed too
        assert closed_within(ssub, 5), "shard subscriber still on the demoted node"
    finally:
        sub.close()
        ssub.close()
    with rs.raw() as again:
        assert again.command("SUBSCRIBE", ch) == [b"subscribe", ch.encode(), 1]
        assert pub.publish(ch, "after") == 1
        assert list(again.read_reply()) == [b"message", ch.encode(), b"after"]
        assert pub.execute_command("PUBSUB", "NUMSUB", ch) == [ch.encode(), 1]
    pub.close()


# --- PUBLISH inside MULTI ----------------------------------------------------------

def test_publish_in_keyless_multi_counts_subscribers(ringslot):
    """A block without keys runs on the pub/sub home, as PUBLISH alone
    does: its PUBLISH counts the subscriber every time (before: the block
    went to any master in turn, and answered 0 on all but the home)."""
    ch = unique("mp")
    with ringslot.raw() as sub, ringslot.raw() as c:
        assert sub.command("SUBSCRIBE", ch) == [b"subscribe", ch.encode(), 1]
        for i in range(9):
            got = c.pipeline([("MULTI",), ("PUBLISH", ch, str(i)), ("EXEC",)])
            assert got[2] == [1], got
        assert [list(sub.read_reply())[2] for _ in range(9)] == [str(i).encode() for i in range(9)]
