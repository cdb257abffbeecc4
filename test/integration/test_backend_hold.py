"""How long requests wait for the backend, and what ringslot says about it
(issue 11, items 7-10).

    7  requests that arrive before the first topology is loaded are held
       until it comes, never answered -CLUSTERDOWN for that
    8  the default hold follows the backend: about 2 x cluster-node-timeout
       for a lost master with a replica (a kill -9 under load shows no
       error but writes in flight), none for one without; an explicit
       --cluster-down-timeout still wins
    9  INFO says cluster_enabled:1 (redis-py's RedisCluster works against
       one ringslot) and the masters' redis_version
   10  a request for a master that is down fails with
       -CLUSTERDOWN Could not connect to node ip:port
       (redis-cluster-proxy's words after Redis's prefix)
"""

import socket
import threading
import time

import redis

import helpers
from helpers import HOST, RespClient, RespError, keyslot, wait_until
from test_resilience import Load, cluster_ok_without, keys_for


class UnwaitedRingslot(helpers.Ringslot):
    """Started, not probed: the test connects the moment the port accepts."""

    def wait_ready(self, timeout=15.0):
        pass


def stalled_listener():
    """A loopback port that completes TCP handshakes (the backlog) and never
    answers: an entry point there costs the control thread its read
    timeout. The caller closes it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    s.listen(64)
    return s


def connect_asap(port, deadline):
    """A client of port the moment it accepts (polling)."""
    while True:
        try:
            return RespClient(HOST, port, timeout=15)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def early_client(port, t0, until, out):
    """Connect the moment the port accepts, send at once (keyed, MULTI,
    every master, a blocking call), again on a new connection each time,
    until `until` after t0."""
    n = 0
    while time.monotonic() - t0 < until:
        with connect_asap(port, t0 + 15) as c:
            k = "early:%d:%d" % (threading.get_ident(), n)
            got = c.pipeline([("SET", k, n), ("GET", k), ("EXISTS", k),
                              ("MULTI",), ("INCR", k), ("EXEC",),
                              ("DBSIZE",), ("BLPOP", k + ":list", "0.01")])
            ok = (got[:6] == ["OK", str(n).encode(), 1, "OK", "QUEUED", [n + 1]]
                  and isinstance(got[6], int) and got[7] is None)
            out.append((k, got, ok))
        n += 1


def early_subscriber(port, t0, out):
    with connect_asap(port, t0 + 15) as c:
        c.send_command("SUBSCRIBE", "early:ch")
        out.append(c.read_reply())
        out.append(c.read_reply())  # the message published below


def key_on(cluster, master, prefix):
    for i in range(10000):
        k = "%s:%d" % (prefix, i)
        if cluster.master_for_slot(keyslot(k)) == master:
            return k
    raise AssertionError("no key found for :%d" % master)


# --- 7 ------------------------------------------------------------------------

def test_requests_before_first_topology_are_held(cluster, make_ringslot):
    # The first entry point stalls: the first topology comes only after the
    # control thread's read timeout there (1.5 s), while clients already
    # connect and send.
    stall = stalled_listener()
    try:
        entry = ["%s:%d" % (HOST, stall.getsockname()[1])] + cluster.addrs(cluster.masters())
        out, sub = [], []
        t0 = time.monotonic()
        rs = make_ringslot(cluster, entry_points=entry, kind=UnwaitedRingslot)
        threads = [threading.Thread(target=early_client, args=(rs.port, t0, 3.0, out))
                   for _ in range(4)]
        threads.append(threading.Thread(target=early_subscriber, args=(rs.port, t0, sub)))
        for t in threads:
            t.start()
        wait_until(lambda: sub, 15, what="the early SUBSCRIBE to be answered")
        assert sub[0] == [b"subscribe", b"early:ch", 1], sub
        with rs.raw() as c:
            assert c.command("PUBLISH", "early:ch", "hi") >= 1
        for t in threads:
            t.join(30)
    finally:
        stall.close()
    assert sub == [[b"subscribe", b"early:ch", 1], [b"message", b"early:ch", b"hi"]], sub
    bad = [(k, got) for (k, got, ok) in out if not ok]
    print("METRIC early_batches=%d bad=%d" % (len(out), len(bad)))
    assert out and not bad, bad[:5]
    assert rs.proxy_info()["requests_held"] >= 1, "no request waited for the first topology"


def test_a_deferred_call_is_counted_once(cluster, make_ringslot):
    # DBSIZE before the first topology waits (dispatch_defer) and is
    # dispatched again once it is in: INFO counts it once, as sent.
    stall = stalled_listener()
    try:
        entry = ["%s:%d" % (HOST, stall.getsockname()[1])] + cluster.addrs(cluster.masters())
        t0 = time.monotonic()
        rs = make_ringslot(cluster, entry_points=entry, kind=UnwaitedRingslot)
        with connect_asap(rs.port, t0 + 15) as c:
            def processed():
                info = c.command("INFO", "stats").decode()
                return int(info.split("total_commands_processed:")[1].split()[0])
            before = processed()
            got = c.pipeline([("DBSIZE",), ("DBSIZE",)])
            after = processed()
    finally:
        stall.close()
    assert all(isinstance(n, int) for n in got), got
    assert after - before == 3, (before, after)  # two DBSIZE and that INFO


def test_no_first_topology_within_the_hold(cluster, make_ringslot):
    # Only a stalled entry point: requests wait the hold time from startup,
    # then get today's error.
    stall = stalled_listener()
    try:
        t0 = time.monotonic()
        rs = make_ringslot(cluster, entry_points=["%s:%d" % (HOST, stall.getsockname()[1])],
                           kind=UnwaitedRingslot,
                           extra_args=["--cluster-down-timeout", "1500"])
        with connect_asap(rs.port, t0 + 15) as c:
            got = c.pipeline([("GET", "k"), ("DBSIZE",), ("PING",)])
        took = time.monotonic() - t0
    finally:
        stall.close()
    down = RespError("CLUSTERDOWN The cluster is down")
    assert got == [down, down, "PONG"], got
    assert 1.0 <= took <= 5.0, took


# --- 8 ------------------------------------------------------------------------

def test_default_hold_covers_a_failover(make_cluster, make_ringslot):
    cluster = make_cluster(masters=3, replicas=1, node_timeout=2000)
    rs = make_ringslot(cluster)  # default --cluster-down-timeout: auto
    keys = keys_for("auto", 200)
    victim = cluster.masters()[0]
    survivor = [m for m in cluster.masters() if m != victim][0]
    load = Load(rs.port, keys, threads=2, name="auto").start()
    time.sleep(1.0)
    t_kill = time.monotonic()
    cluster.kill(victim)
    wait_until(lambda: cluster_ok_without(cluster, victim, survivor), 30, interval=0.05,
               what="failover of :%d" % victim)
    t_ok = time.monotonic()
    time.sleep(1.0)
    load.stop()
    errs = load.errors()
    print("METRIC auto_hold_failover_ms=%d errors=%d ops=%d" % (
        (t_ok - t_kill) * 1000, len(errs), len(load.ops)))
    assert not load.wrong, load.wrong[:5]
    # only writes in flight on the dead link may fail (one per client)
    assert len(errs) <= len(load.parts), [(o.key, o.err) for o in errs]
    assert all(o.kind == "set" and "lost" in o.err for o in errs), \
        [(o.kind, o.err) for o in errs]
    # what the rule came to: auto, 2 x 2000 + 2000 ms
    with rs.raw() as c:
        assert c.command("PROXY", "CONFIG", "GET", "cluster-down-timeout") == \
            [b"cluster-down-timeout", b"auto"]
    info = rs.client().info("cluster")
    assert info["backend_node_timeout_ms"] == 2000, info
    assert info["cluster_down_hold_ms"] == 6000, info


def test_no_replica_fails_at_once_and_names_the_node(make_cluster, make_ringslot):
    cluster = make_cluster(masters=3, replicas=0,
                           extra_args=["--cluster-require-full-coverage", "no"])
    rs_auto = make_ringslot(cluster)
    rs_explicit = make_ringslot(cluster, extra_args=["--cluster-down-timeout", "1500"])
    victim = cluster.masters()[0]
    key = key_on(cluster, victim, "nr")
    other = key_on(cluster, cluster.masters()[1], "nr")
    for rs in (rs_auto, rs_explicit):
        with rs.raw() as c:
            assert c.command("SET", key, "1") == "OK"
    cluster.kill(victim)
    want = RespError("CLUSTERDOWN Could not connect to node %s:%d" % (HOST, victim))
    took = {}
    for name, rs in (("auto", rs_auto), ("explicit", rs_explicit)):
        with rs.raw() as c:
            t0 = time.monotonic()
            got = c.command("GET", key)
            took[name] = time.monotonic() - t0
            assert got == want, (name, got)
            assert c.command("SET", other, "x") == "OK"  # other masters serve
    print("METRIC no_replica_error_ms auto=%d explicit=%d" % (
        took["auto"] * 1000, took["explicit"] * 1000))
    assert took["auto"] < 0.5, took
    assert 1.0 <= took["explicit"] <= 4.0, took


# --- 9 ------------------------------------------------------------------------

def test_info_cluster_enabled_and_backend_version(cluster, ringslot):
    backend = helpers.parse_info(cluster.execute(cluster.masters()[0], "INFO", "server"))
    rc = redis.RedisCluster(host=HOST, port=ringslot.port, socket_timeout=10)
    try:
        assert rc.set("rc:key", "v") is True
        assert rc.get("rc:key") == b"v"
        info = rc.info(target_nodes=redis.RedisCluster.RANDOM)
    finally:
        rc.close()
    assert info["cluster_enabled"] == 1, info
    assert info["redis_version"] == backend["redis_version"], (info["redis_version"],
                                                               backend["redis_version"])
    # HELLO's version is the same claim (clients read it there too)
    with ringslot.raw() as c:
        hello = c.command("HELLO", "3")
    assert hello[b"version"] == backend["redis_version"].encode(), hello
