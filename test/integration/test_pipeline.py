"""Pipelines spread over several masters: replies in request order, and none
held back while another master is slow.

ringslot may keep a client's output for one more loop iteration when more
completions are already waiting (client.c, coalescing: fewer, larger sends
at high pipelining). It must never keep a reply while the worker would
sleep: a pipeline whose next command waits on a stopped master, or blocks on
a list, still gets the replies before it at once. The slow master here is
stopped with SIGSTOP (and continued in a finally), so "the reply arrived
while the other was still pending" holds by construction, not by timing.
The private cluster has a long cluster-node-timeout so that the stop is
never taken for a failure."""

import os
import signal

import pytest

import helpers
from helpers import RedisCluster, RespError, keyslot, unique, wait_until

BACKENDS = ["uring", "epoll"]


@pytest.fixture(scope="module")
def slow_cluster(tmp_path_factory):
    c = RedisCluster(tmp_path_factory.mktemp("pipeline-cluster"), masters=3, replicas=0,
                     node_timeout=60000)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(params=BACKENDS)
def rs(request, slow_cluster, make_ringslot):
    return make_ringslot(cluster=slow_cluster,
                         extra_args=["--io-backend", request.param, "--enable-cross-slot"])


def keys_by_master(c, prefix, n=400):
    """{master port: [keys]} for n keys named prefix + i."""
    table = c.slot_table()
    out = {}
    for i in range(n):
        k = "%s%d" % (prefix, i)
        out.setdefault(table[keyslot(k)], []).append(k)
    return out


class Stopped:
    """A master stopped (SIGSTOP) for the with-block, continued after it."""

    def __init__(self, c, port):
        self.pid = c.nodes[port].proc.pid

    def __enter__(self):
        os.kill(self.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        os.kill(self.pid, signal.SIGCONT)


def test_reply_not_held_behind_a_stopped_master(slow_cluster, rs):
    byk = keys_by_master(slow_cluster, unique("pl"))
    fast, slow = sorted(byk)[:2]
    a, a2, b = byk[fast][0], byk[fast][1], byk[slow][0]
    with rs.raw() as c:
        assert c.pipeline([("SET", a, "va"), ("SET", a2, "va2"), ("SET", b, "vb")]) == \
            ["OK", "OK", "OK"]
        with Stopped(slow_cluster, slow):
            # before and behind the command that waits on the stopped master
            c.send(b"".join(helpers.encode_command(*cmd) for cmd in
                            [("GET", a), ("GET", a2), ("GET", b), ("GET", a)]))
            assert c.read_reply() == b"va"     # while b's master cannot answer
            assert c.read_reply() == b"va2"
        assert c.read_reply() == b"vb"         # then the rest, in order
        assert c.read_reply() == b"va"
        assert c.command("PING") == "PONG"


def test_reply_not_held_behind_a_blocking_call(slow_cluster, rs):
    byk = keys_by_master(slow_cluster, unique("plb"))
    fast, slow = sorted(byk)[:2]
    a, lst = byk[fast][0], byk[slow][0]
    node = slow_cluster.client(slow)
    blocked0 = node.info("clients")["blocked_clients"]
    with rs.raw() as c, rs.raw() as other:
        assert c.command("SET", a, "va") == "OK"
        c.send(helpers.encode_command("GET", a) + helpers.encode_command("BLPOP", lst, 0) +
               helpers.encode_command("GET", a))
        assert c.read_reply() == b"va"         # before the call blocks, not after
        wait_until(lambda: node.info("clients")["blocked_clients"] > blocked0, 10,
                   interval=0.01, what="the BLPOP to block on its master")
        assert other.command("RPUSH", lst, "item") == 1
        assert c.read_reply() == [lst.encode(), b"item"]
        assert c.read_reply() == b"va"


def test_pipelines_over_all_masters_keep_order(slow_cluster, rs):
    """Many pipelined batches over every master, from several connections
    at once: each reply answers its own request (the coalescing path)."""
    byk = keys_by_master(slow_cluster, unique("plo"), n=300)
    keys = [k for ks in byk.values() for k in ks]
    conns = [rs.raw() for _ in range(4)]
    try:
        conns[0].pipeline([("SET", k, k) for k in keys])
        for rnd in range(30):
            batches = []
            for i, c in enumerate(conns):
                ks = [keys[(rnd * 37 + i * 11 + j * 7) % len(keys)] for j in range(16)]
                cmds = [("GET", k) if j % 3 else ("ECHO", "e%d" % j) for j, k in enumerate(ks)]
                c.send(b"".join(helpers.encode_command(*cmd) for cmd in cmds))
                batches.append(cmds)
            for c, cmds in zip(conns, batches):
                for cmd in cmds:
                    got = c.read_reply()
                    assert not isinstance(got, RespError), got
                    assert got == cmd[1].encode()
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize("proto", [2, 3])
def test_large_bulks_stream_in_order(slow_cluster, rs, proto):
    """Values from 16 KB to 3 MB (a link streams a large bulk to its
    client as it arrives, link.c rx STREAM) pipelined with small replies
    from every master, over several connections at once, RESP2 and RESP3:
    every byte lands with its own request, in order, and a large value
    that must wait behind another master's reply (not its client's next
    reply) comes whole too."""
    byk = keys_by_master(slow_cluster, unique("big"), n=60)
    masters = sorted(byk)
    sizes = [16384, 16385, 65536, 300001, 3 * 1024 * 1024]
    values = {}
    with rs.raw() as setter:
        for i, size in enumerate(sizes):
            for m in masters:
                k = byk[m][i]
                values[k] = os.urandom(size // 2).hex().encode() + b"x" * (size % 2)
                assert setter.command("SET", k, values[k]) == "OK"
    conns = [rs.raw() for _ in range(3)]
    try:
        for c in conns:
            if proto == 3:
                c.command("HELLO", "3")
        for rnd in range(3):
            batches = []
            for i, c in enumerate(conns):
                cmds = []
                for j, k in enumerate(sorted(values)):
                    if (j + i + rnd) % 3 == 0:
                        cmds.append(("ECHO", "e%d" % j))
                    cmds.append(("GET", k))
                c.send(b"".join(helpers.encode_command(*cmd) for cmd in cmds))
                batches.append(cmds)
            for c, cmds in zip(conns, batches):
                for cmd in cmds:
                    got = c.read_reply()
                    want = values[cmd[1]] if cmd[0] == "GET" else cmd[1].encode()
                    assert got == want, (cmd, len(got) if isinstance(got, bytes) else got)
    finally:
        for c in conns:
            c.close()
