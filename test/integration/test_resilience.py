"""Resilience (issue 3): failover, manual failover, resharding, startup with
nodes down, a black-holed master, limits and bad input.

Tests that break nodes start their own cluster (make_cluster, cluster-node-
timeout 2000 ms); the limit tests use the shared one. The figures the
closing note needs are printed as `METRIC name=value` lines (pytest -s
shows them) and appended to /tmp/resilience_metrics.txt
($RINGSLOT_METRICS_FILE).

Load: threads doing SET k v / GET k through ringslot, each on keys of its
own, recording every operation. A GET must return the key's last
acknowledged value or the value of a write that failed (its fate is
unknown); anything else is a wrong (stale) read.
"""

import os
import random
import resource
import signal
import socket
import subprocess
import threading
import time

import pytest
import redis

import helpers
from helpers import HOST, RespClient, RespError, keyslot, wait_until

METRICS_FILE = os.environ.get("RINGSLOT_METRICS_FILE", "/tmp/resilience_metrics.txt")


def metric(name, value):
    line = "METRIC %s=%s" % (name, value)
    print(line)
    with open(METRICS_FILE, "a") as f:
        f.write(line + "\n")


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


# --- load ---------------------------------------------------------------------

class Op:
    __slots__ = ("t0", "t1", "key", "kind", "ok", "err")

    def __init__(self, t0, t1, key, kind, ok, err):
        self.t0, self.t1, self.key, self.kind, self.ok, self.err = t0, t1, key, kind, ok, err


class Load:
    """`threads` clients of ringslot on `port`, each doing SET then GET on
    its share of `keys` until stop(). pause_after_error: sleep after an
    error, so a client whose slots are down does not spin."""

    def __init__(self, port, keys, threads=2, pause_after_error=0.01, name="load"):
        self.port = port
        self.parts = [keys[i::threads] for i in range(threads)]
        self.pause_after_error = pause_after_error
        self.name = name
        self.ops = []
        self.wrong = []
        self.acked = {}  # key -> last acknowledged value (all threads)
        self._stop = threading.Event()
        self._threads = []

    def start(self):
        for i, part in enumerate(self.parts):
            t = threading.Thread(target=self._run, args=(i, part), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(60)
        return self

    def _op(self, c, kind, key, val, maybe):
        t0 = time.monotonic()
        try:
            if kind == "set":
                c.set(key, val)
            else:
                got = c.get(key)
        except redis.RedisError as exc:
            self.ops.append(Op(t0, time.monotonic(), key, kind, False, str(exc)))
            if kind == "set":
                maybe.setdefault(key, set()).add(val)
            if self.pause_after_error:
                time.sleep(self.pause_after_error)
            return
        self.ops.append(Op(t0, time.monotonic(), key, kind, True, None))
        if kind == "set":
            self.acked[key] = val
            maybe[key] = set()
        elif got != self.acked.get(key) and got not in maybe.get(key, ()):
            self.wrong.append((key, got, self.acked.get(key)))

    def _run(self, tid, keys):
        c = redis.Redis(host=HOST, port=self.port, socket_timeout=30,
                        socket_connect_timeout=5)
        maybe = {}
        seq = 0
        while not self._stop.is_set():
            key = keys[seq % len(keys)]
            seq += 1
            self._op(c, "set", key, b"%s:%d:%d" % (self.name.encode(), tid, seq), maybe)
            self._op(c, "get", key, None, maybe)
        c.close()

    # -- figures --

    def errors(self, keys=None, after=None):
        return [o for o in self.ops if not o.ok and (keys is None or o.key in keys)
                and (after is None or o.t1 > after)]

    def successes(self, keys=None, started_after=None):
        return [o for o in self.ops if o.ok and (keys is None or o.key in keys)
                and (started_after is None or o.t0 >= started_after)]


def keys_for(prefix, n):
    return ["%s:%d" % (prefix, i) for i in range(n)]


def split_by_owner(cluster, keys):
    table = cluster.slot_table()
    out = {}
    for k in keys:
        out.setdefault(table[keyslot(k)], []).append(k)
    return out


def cluster_ok_without(cluster, dead_port, probe_port):
    """The cluster says ok and no slot is served by dead_port any more."""
    info = helpers.parse_info(cluster.execute(probe_port, "CLUSTER", "INFO"))
    if info.get("cluster_state") != "ok":
        return False
    return all(m != dead_port for (_, _, m, _) in cluster.cluster_slots(probe_port))


def check_acked_readable(cluster, rs, acked):
    """Every acknowledged write the (new) owner has reads the same through
    ringslot. Returns how many acknowledged writes the owner lost."""
    table = cluster.slot_table()
    direct = {}
    for owner in set(table):
        direct[owner] = cluster.client(owner)
    via = rs.client()
    lost = 0
    mismatched = []
    for key, val in acked.items():
        have = direct[table[keyslot(key)]].get(key)
        if have != val:
            lost += 1
        got = via.get(key)
        if got != have:
            mismatched.append((key, got, have))
    via.close()
    assert not mismatched, "ringslot reads differ from the owner: %r" % mismatched[:5]
    return lost


def proxy_stat(rs, name):
    return rs.proxy_info().get(name, 0)


# --- 1. kill -9 a master under load ---------------------------------------------

def test_failover_kill_master_under_load(make_cluster, make_ringslot):
    cluster = make_cluster(masters=3, replicas=1)
    rs_hold = make_ringslot(cluster, extra_args=["--cluster-down-timeout", "10000"])
    rs_def = make_ringslot(cluster)  # default hold: 2000 ms
    keys = keys_for("fo", 240)
    owners = split_by_owner(cluster, keys)
    victim = cluster.masters()[0]
    victim_keys = set(owners[victim])
    survivor = [m for m in cluster.masters() if m != victim][0]

    long_load = Load(rs_hold.port, [k for k in keys if int(k.split(":")[1]) % 2 == 0],
                     threads=2, name="hold").start()
    def_load = Load(rs_def.port, [k for k in keys if int(k.split(":")[1]) % 2 == 1],
                    threads=2, name="def").start()
    time.sleep(1.0)
    t_kill = time.monotonic()
    cluster.kill(victim)
    # a client whose request is held leaves: the request is never sent
    time.sleep(0.5)
    ghost = "{%s}ghost" % helpers.tag_for_slot(keyslot(sorted(victim_keys)[0]))
    s = socket.create_connection((HOST, rs_hold.port))
    s.sendall(helpers.encode_command("SET", ghost, "never"))
    time.sleep(0.2)
    s.close()
    wait_until(lambda: cluster_ok_without(cluster, victim, survivor), 30, interval=0.05,
               what="failover of :%d" % victim)
    t_ok = time.monotonic()
    time.sleep(4.0)
    long_load.stop()
    def_load.stop()

    failover_ms = (t_ok - t_kill) * 1000
    metric("failover_cluster_ok_ms", int(failover_ms))
    for name, load, rs in (("hold10s", long_load, rs_hold), ("default", def_load, rs_def)):
        vk = {k for k in victim_keys if k in set(sum(load.parts, []))}
        errs = load.errors()
        first = min((o.t1 for o in load.successes(vk, started_after=t_kill + 0.01)),
                    default=None)
        metric("failover_%s_errors" % name, len(errs))
        metric("failover_%s_error_kinds" % name,
               "|".join(sorted({e.err.split(" ")[0] for e in errs})) or "none")
        metric("failover_%s_kill_to_first_success_ms" % name,
               int((first - t_kill) * 1000) if first else -1)
        metric("failover_%s_ops" % name, len(load.ops))
        assert not load.wrong, "%s: wrong reads %r" % (name, load.wrong[:5])
        late = load.errors(after=t_ok + 3.0)
        assert not late, "%s: errors more than 3 s after the cluster was ok: %r" % (
            name, [(o.key, o.err) for o in late[:5]])
        assert first is not None, "%s: no success on the failed master's slots" % name
        lost = check_acked_readable(cluster, rs, load.acked)
        metric("failover_%s_acked_writes_lost_by_replica" % name, lost)
        metric("failover_%s_topology_refreshes" % name, proxy_stat(rs, "topology_refreshes"))
    owner = cluster.master_for_key(ghost)
    assert cluster.client(owner).exists(ghost) == 0, "a held request of a gone client was sent"
    # With a hold longer than the failover, only writes that were in flight
    # on the dead link when it died may fail (one per client thread).
    hold_errs = long_load.errors()
    assert len(hold_errs) <= len(long_load.parts), [(o.key, o.err) for o in hold_errs]
    assert all(o.kind == "set" and "lost" in o.err for o in hold_errs), \
        [(o.kind, o.err) for o in hold_errs]


# --- 2. CLUSTER FAILOVER under load -----------------------------------------------

def test_manual_failover_under_load(make_cluster, make_ringslot):
    cluster = make_cluster(masters=3, replicas=1)
    rs = make_ringslot(cluster)
    keys = keys_for("mf", 200)
    old_master = cluster.masters()[0]
    replica = cluster.replicas(old_master)[0]
    load = Load(rs.port, keys, threads=2, name="mf").start()
    time.sleep(1.0)
    refreshes0 = proxy_stat(rs, "topology_refreshes")
    t0 = time.monotonic()
    assert cluster.execute(replica, "CLUSTER", "FAILOVER") == "OK"
    wait_until(lambda: replica in cluster.masters() and old_master not in cluster.masters(),
               30, interval=0.05, what="manual failover")
    t_done = time.monotonic()
    # Followed within one refresh: MOVED stops once the proxy has the new
    # topology (a refresh for MOVED is at most 1 s after the first one).
    time.sleep(2.0)
    moved_a = proxy_stat(rs, "moved_followed")
    time.sleep(1.0)
    moved_b = proxy_stat(rs, "moved_followed")
    load.stop()
    errs = load.errors()
    metric("manual_failover_ms", int((t_done - t0) * 1000))
    metric("manual_failover_errors", len(errs))
    metric("manual_failover_refreshes", proxy_stat(rs, "topology_refreshes") - refreshes0)
    metric("manual_failover_ops", len(load.ops))
    assert not errs, [(o.key, o.err) for o in errs[:5]]
    assert not load.wrong, load.wrong[:5]
    assert moved_b == moved_a, "still following MOVED 2 s after the failover"
    assert check_acked_readable(cluster, rs, load.acked) == 0


# --- 3. reshard 1500 slots under load -----------------------------------------------

def mget_loop(port, pairs, stop, out):
    """MGET of two keys of one slot that nobody writes: always their
    initial values, even while the slot migrates (ASK, TRYAGAIN)."""
    c = redis.Redis(host=HOST, port=port, socket_timeout=30)
    i = 0
    while not stop.is_set():
        a, b = pairs[i % len(pairs)]
        i += 1
        try:
            got = c.mget(a, b)
            if got != [b"init", b"init"]:
                out["wrong"].append((a, b, got))
        except redis.RedisError as exc:
            out["errors"].append(str(exc))
        out["ops"] += 1
    c.close()


def test_reshard_under_load(make_cluster, make_ringslot):
    cluster = make_cluster(masters=3, replicas=0)
    rs = make_ringslot(cluster)
    masters = cluster.masters()
    src, dst = masters[0], masters[1]
    # redis-cli moves the source's lowest slots: put the keys in 8 of those,
    # 400 per slot, so each migration takes a while (ASK, TRYAGAIN)
    table = cluster.slot_table()
    moving = [s for s in range(helpers.SLOTS) if table[s] == src][:1500]
    tags = [helpers.tag_for_slot(moving[i]) for i in range(100, 1400, 160)]
    keys = ["{%s}:%d" % (t, i) for t in tags for i in range(400)]
    with rs.raw() as c:
        assert all(r == "OK" for r in c.pipeline([("SET", k, "init") for k in keys]))
    written = [k for k in keys if int(k.rsplit(":", 1)[1]) < 300]
    pairs = [("{%s}:%d" % (t, i), "{%s}:%d" % (t, i + 50)) for t in tags
             for i in range(300, 350)]
    load = Load(rs.port, written, threads=2, name="rs").start()
    stop, mget = threading.Event(), {"ops": 0, "errors": [], "wrong": []}
    mt = threading.Thread(target=mget_loop, args=(rs.port, pairs, stop, mget), daemon=True)
    mt.start()
    time.sleep(0.5)
    info0 = rs.proxy_info()
    t0 = time.monotonic()
    args = [helpers.REDIS_CLI, "--cluster", "reshard", "%s:%d" % (HOST, src),
            "--cluster-from", cluster.node_id(src), "--cluster-to", cluster.node_id(dst),
            "--cluster-slots", "1500", "--cluster-pipeline", "10", "--cluster-yes"]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    t1 = time.monotonic()
    assert p.returncode == 0, p.stdout.decode(errors="replace")[-3000:]
    time.sleep(1.5)
    load.stop()
    stop.set()
    mt.join(30)
    info1 = rs.proxy_info()
    refreshes = info1["topology_refreshes"] - info0["topology_refreshes"]
    seconds = t1 - t0
    errs = load.errors()
    metric("reshard_seconds", round(seconds, 1))
    metric("reshard_errors", len(errs) + len(mget["errors"]))
    metric("reshard_wrong_reads", len(load.wrong) + len(mget["wrong"]))
    metric("reshard_refreshes", refreshes)
    metric("reshard_moved", info1["moved_followed"] - info0["moved_followed"])
    metric("reshard_ask", info1["ask_followed"] - info0["ask_followed"])
    metric("reshard_ops", len(load.ops) + mget["ops"])
    assert not errs, [(o.key, o.err) for o in errs[:5]]
    assert not mget["errors"], mget["errors"][:5]
    assert not load.wrong, load.wrong[:5]
    assert not mget["wrong"], mget["wrong"][:5]
    # no refresh storm: MOVED refreshes at most once a second, plus the
    # periodic check
    assert refreshes <= seconds * 1.5 + 6, refreshes
    table = cluster.slot_table()
    assert all(table[s] == dst for s in moving)
    with rs.raw() as c:
        got = c.pipeline([("GET", k) for k in keys if k not in set(written)])
    assert all(v == b"init" for v in got)
    # Without traffic, the periodic check (every 3 s) sees a slot that moved:
    # no MOVED afterwards.
    cluster.migrate_slot(moving[100], src)
    time.sleep(3.5)
    moved0 = rs.proxy_info()["moved_followed"]
    with rs.raw() as c:
        assert c.command("GET", "{%s}:0" % tags[0]) is not None
    assert rs.proxy_info()["moved_followed"] == moved0, "the periodic check missed a move"


# --- -TRYAGAIN and -BUSY: bounded retry with backoff ----------------------------------

BUSY_SCRIPT = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
while true do
  local n = redis.call('TIME')
  if n[1] * 1000000 + n[2] - start > tonumber(ARGV[1]) then break end
end
return 1
"""


def timed_command(port, args, out):
    with RespClient(HOST, port, timeout=20) as c:
        t0 = time.monotonic()
        out["reply"] = c.command(*args)
        out["ms"] = (time.monotonic() - t0) * 1000


class HalfMigratedSlot:
    """Two keys a, b of one slot of the first master (set to a_value,
    b_value through rs), the slot MIGRATING to the second master with a
    already moved: a command on both keys gets -TRYAGAIN until finish()."""

    def __init__(self, cluster, rs, a_value, b_value):
        self.cluster = cluster
        self.src, self.dst = cluster.masters()[0], cluster.masters()[1]
        self.slot = cluster.slot_table().index(self.src)
        tag = helpers.tag_for_slot(self.slot)
        self.a, self.b = "{%s}a" % tag, "{%s}b" % tag
        with rs.raw() as c:
            assert c.pipeline([("SET", self.a, a_value), ("SET", self.b, b_value)]) == \
                ["OK", "OK"]
        self.dst_id = cluster.node_id(self.dst)
        cluster.execute(self.dst, "CLUSTER", "SETSLOT", self.slot, "IMPORTING",
                        cluster.node_id(self.src))
        cluster.execute(self.src, "CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.dst_id)
        self.migrate(self.a)

    def migrate(self, key):
        self.cluster.execute(self.src, "MIGRATE", HOST, self.dst, "", 0, 5000, "KEYS", key)

    def finish(self):
        self.migrate(self.b)
        rest = [m for m in self.cluster.masters() if m not in (self.src, self.dst)]
        for m in [self.dst, self.src] + rest:
            self.cluster.execute(m, "CLUSTER", "SETSLOT", self.slot, "NODE", self.dst_id)


def test_tryagain_and_busy_are_retried(make_cluster, make_ringslot):
    cluster = make_cluster(masters=3, replicas=0)
    rs = make_ringslot(cluster)
    # half of the slot's keys moved: MGET gets -TRYAGAIN until it is done
    half = HalfMigratedSlot(cluster, rs, "1", "2")
    src, a, b = half.src, half.a, half.b
    with pytest.raises(RespError, match="TRYAGAIN"):
        cluster.execute(src, "MGET", a, b)
    out = {}
    retried0 = rs.proxy_info()["requests_retried"]
    t = threading.Thread(target=timed_command, args=(rs.port, ("MGET", a, b), out))
    t.start()
    wait_until(lambda: rs.proxy_info()["requests_retried"] > retried0, 10, interval=0.01,
               what="the proxy to retry the MGET after -TRYAGAIN")
    time.sleep(0.3)  # a few more bounded retries before the slot settles
    half.finish()
    t.join(20)
    metric("tryagain_retried_reply_ms", int(out["ms"]))
    assert out["reply"] == [b"1", b"2"], out
    # a script running past busy-reply-threshold: -BUSY until it ends
    node = cluster.master_for_key(a)
    cluster.execute(node, "CONFIG", "SET", "busy-reply-threshold", "100")
    script = threading.Thread(target=lambda: cluster.client(node).eval(BUSY_SCRIPT, 0, 700000))
    script.start()

    def node_busy():
        try:
            cluster.execute(node, "GET", a)
        except RespError as e:
            return str(e).startswith("BUSY")
        return False
    wait_until(node_busy, 10, interval=0.01, what="the node to answer -BUSY")
    out = {}
    timed_command(rs.port, ("GET", a), out)
    script.join(10)
    metric("busy_retried_reply_ms", int(out["ms"]))
    assert out["reply"] == b"1", out


# --- 4. startup with nodes down -----------------------------------------------------

class NotWaitingRingslot(helpers.Ringslot):
    """A ringslot that is only expected to answer PING at first."""

    def wait_ready(self, timeout=15.0):
        def ping():
            with RespClient(HOST, self.port, timeout=2) as c:
                return c.command("PING") == "PONG"
        wait_until(ping, timeout, what="ringslot :%d PING" % self.port)


def dead_addr():
    return "%s:%d" % (HOST, helpers.free_port())


def test_startup_with_nodes_down(make_cluster, make_ringslot, tmp_path):
    cluster = make_cluster(masters=3, replicas=1)
    replica = cluster.replicas()[0]
    cluster.kill(replica)
    masters = cluster.masters()
    # first entry points dead (nothing listens / the killed replica), then a master
    t0 = time.monotonic()
    rs = make_ringslot(cluster, entry_points=[dead_addr(), cluster.addrs([replica])[0],
                                              cluster.addrs([masters[1]])[0]])
    metric("startup_with_dead_entry_points_ms", int((time.monotonic() - t0) * 1000))
    with rs.raw() as c:
        keys = keys_for("st", 100)
        assert all(r == "OK" for r in c.pipeline([("SET", k, k) for k in keys]))
        assert c.pipeline([("GET", k) for k in keys]) == [k.encode() for k in keys]
    assert set(split_by_owner(cluster, keys)) == set(masters)

    # No entry point reachable: answers CLUSTERDOWN, keeps retrying, serves
    # once one comes up.
    d = tmp_path / "noentry"
    d.mkdir()
    rs2 = NotWaitingRingslot(helpers.ringslot_binary(), cluster.addrs([replica]),
                             workdir=str(d), threads=2)
    helpers.LIVE_RINGSLOTS.append(rs2)
    try:
        rs2.start()
        with rs2.raw() as c:
            r = c.command("GET", "st:1")
            assert isinstance(r, RespError) and str(r).startswith("CLUSTERDOWN"), r
        cluster.restart(replica)
        t1 = time.monotonic()

        def serves():
            with rs2.raw(timeout=3) as c:
                return c.command("GET", "st:1") == b"st:1"
        wait_until(serves, 20, interval=0.1, what="ringslot to find the cluster")
        metric("startup_entry_point_back_to_serving_ms", int((time.monotonic() - t1) * 1000))
    finally:
        helpers.fail_on(helpers.finish_managed(rs2))


# --- 5. a black-holed master (SIGSTOP) -------------------------------------------------

def test_retried_request_is_not_overtaken(make_cluster, make_ringslot):
    """A pipelined MSET that meets -TRYAGAIN keeps its place: the SET sent
    after it on the same connection runs after it, so b ends as 2 (one
    Redis connection's order), not as the retried MSET's 1."""
    cluster = make_cluster(masters=3, replicas=0)
    rs = make_ringslot(cluster)
    half = HalfMigratedSlot(cluster, rs, "0", "0")
    retried0 = rs.proxy_info()["requests_retried"]
    c = rs.raw()
    c.send_command("MSET", half.a, "1", half.b, "1")
    wait_until(lambda: rs.proxy_info()["requests_retried"] > retried0, 10, interval=0.01,
               what="the MSET to meet -TRYAGAIN")
    c.send_command("SET", half.b, "2")
    c.send_command("GET", half.b)
    # not a readiness wait: time for the SET to overtake, were it let
    time.sleep(0.3)
    half.finish()
    assert [c.read_reply() for _ in range(3)] == ["OK", "OK", b"2"]
    c.close()
    assert cluster.client(half.dst).get(half.b) == b"2"
    assert cluster.client(half.dst).get(half.a) == b"1"


def test_black_holed_master(make_cluster, make_ringslot):
    # No replicas and partial coverage allowed: the stopped master's slots
    # stay its own, and the other masters keep serving.
    cluster = make_cluster(masters=3, replicas=0,
                           extra_args=["--cluster-require-full-coverage", "no"])
    rs = make_ringslot(cluster, extra_args=["--backend-timeout", "1000",
                                            "--cluster-down-timeout", "500"])
    owners = split_by_owner(cluster, keys_for("bh", 300))
    victim = cluster.masters()[0]
    others = [k for m, ks in owners.items() if m != victim for k in ks]
    hit = Load(rs.port, owners[victim], threads=1, pause_after_error=0.05, name="bh-v").start()
    rest = Load(rs.port, others, threads=2, name="bh-o").start()
    time.sleep(1.0)
    t_stop = time.monotonic()
    cluster.kill(victim, signal.SIGSTOP)
    time.sleep(3.5)
    t_cont = time.monotonic()
    cluster.kill(victim, signal.SIGCONT)
    wait_until(lambda: hit.successes(started_after=t_cont), 20, interval=0.05,
               what="the black-holed master's slots to be served again")
    t_back = time.monotonic()
    time.sleep(0.5)
    hit.stop()
    rest.stop()

    during = [(o.t1 - o.t0) * 1000 for o in rest.ops if t_stop <= o.t0 <= t_cont]
    before = [(o.t1 - o.t0) * 1000 for o in rest.ops if o.t1 < t_stop]
    first_err = min((o.t1 for o in hit.errors(after=t_stop)), default=None)
    metric("blackhole_other_slots_p99_ms", round(percentile(during, 99), 2))
    metric("blackhole_other_slots_p99_before_ms", round(percentile(before, 99), 2))
    metric("blackhole_other_slots_ops_during", len(during))
    metric("blackhole_other_slots_errors", len(rest.errors()))
    metric("blackhole_stop_to_first_error_ms",
           int((first_err - t_stop) * 1000) if first_err else -1)
    metric("blackhole_cont_to_first_success_ms", int((t_back - t_cont) * 1000))
    metric("blackhole_backend_timeouts", rs.log_text().count("(backend timeout)"))
    assert not rest.errors(), [(o.key, o.err) for o in rest.errors()[:5]]
    assert not rest.wrong and not hit.wrong
    assert len(during) > 50, "other slots were not served while the master was stopped"
    assert percentile(during, 99) < 50, "p99 %.1f ms" % percentile(during, 99)
    assert first_err is not None, "the stopped master's slots never errored"
    # the backend timeout (1 s) is what fails them, not much earlier or later
    assert 0.8 <= first_err - t_stop <= 3.0, first_err - t_stop


# --- 6. limits and bad input -------------------------------------------------------

def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, n)) if hard != resource.RLIM_INFINITY else max(soft, n)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def closed_after_error(port, payload, expect):
    """Send payload; the reply must be the error `expect`, then EOF."""
    with RespClient(HOST, port, timeout=10) as c:
        c.send(payload)
        data = c.read_until_closed(10)
    assert data == b"-" + expect.encode() + b"\r\n", data[:200]


def test_maxclients(make_ringslot):
    rs = make_ringslot(extra_args=["--maxclients", "8"])
    time.sleep(0.3)  # the readiness probe's connections are gone
    conns = [RespClient(HOST, rs.port, timeout=5) for _ in range(8)]
    try:
        for c in conns:
            assert c.command("PING") == "PONG"
        with RespClient(HOST, rs.port, timeout=5) as extra:
            assert extra.read_until_closed(5) == b"-ERR max number of clients reached\r\n"
        conns.pop().close()

        def admitted():
            with RespClient(HOST, rs.port, timeout=2) as c:
                return c.command("PING") == "PONG"
        wait_until(admitted, 5, what="a freed place to be usable")
    finally:
        for c in conns:
            c.close()


def test_bad_input_limits(make_ringslot):
    rs = make_ringslot(extra_args=["--proto-max-bulk-len", "1000",
                                   "--client-query-buffer-limit", "1mb"])
    port = rs.port
    closed_after_error(port, b"*2\r\n$3\r\nGET\r\n$1001\r\n",
                       "ERR Protocol error: invalid bulk length")
    closed_after_error(port, b"*2\r\n$3\r\nGET\r\n$99999999999999999999\r\n",
                       "ERR Protocol error: invalid bulk length")
    closed_after_error(port, b"*2\r\n$3\r\nGET\r\n$-5\r\n",
                       "ERR Protocol error: invalid bulk length")
    closed_after_error(port, b"*99999999999\r\n", "ERR Protocol error: invalid multibulk length")
    closed_after_error(port, b"*1\r\n*1\r\n$4\r\nPING\r\n",
                       "ERR Protocol error: expected '$', got '*'")
    closed_after_error(port, b"x" * 70000, "ERR Protocol error: too big inline request")
    closed_after_error(port, b"*1\r\n$" + b"9" * 70000,
                       "ERR Protocol error: too big bulk count string")
    # 1.2 MB of arguments of 900 bytes: past the 1 MB query buffer limit
    arg = b"$900\r\n" + b"a" * 900 + b"\r\n"
    closed_after_error(port, b"*2000\r\n" + arg * 1400,
                       "ERR Protocol error: client query buffer limit exceeded")
    with RespClient(HOST, port, timeout=10) as c:
        # an empty multibulk is skipped, as Redis does
        c.send(b"*-5\r\n*0\r\nPING\r\n")
        assert c.read_reply() == "PONG"
        # a huge announced count allocates nothing up front
        rss0 = rss_bytes(rs.proc.pid)
        c.send(b"*2147483647\r\n$4\r\nPING\r\n")
        time.sleep(0.3)
        assert rss_bytes(rs.proc.pid) - rss0 < 16 << 20
    # truncated frames, then the connection goes
    for frame in (b"*3\r\n$3\r\nSET\r\n$1\r\na", b"*2\r\n$3\r\nGET", b"$", b"*", b"GET a"):
        s = socket.create_connection((HOST, port))
        s.sendall(frame)
        s.close()
    with rs.raw() as c:
        assert c.command("SET", "{bad}k", "v") == "OK"
        assert c.command("GET", "{bad}k") == b"v"


def random_frames(rnd, n):
    valid = [helpers.encode_command(*a) for a in (
        ("GET", "{rnd}a"), ("SET", "{rnd}a", "xyz"), ("MGET", "{rnd}a", "{rnd}b"),
        ("PING",), ("ECHO", "hello"), ("HSET", "{rnd}h", "f", "v"))]
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 3000))))
        elif kind == 1:  # a valid command with bytes flipped
            b = bytearray(rnd.choice(valid) * rnd.randint(1, 5))
            for _ in range(rnd.randint(1, 6)):
                b[rnd.randrange(len(b))] = rnd.getrandbits(8)
            out.append(bytes(b))
        elif kind == 2:  # truncated
            b = rnd.choice(valid) * 3
            out.append(b[:rnd.randrange(1, len(b))])
        else:  # huge or negative numbers in headers
            num = rnd.choice([b"-1", b"-2147483649", b"9223372036854775807",
                              b"99999999999999999999", b"2147483648", b"0", b"+5", b"05"])
            out.append(rnd.choice([b"*", b"*2\r\n$"]) + num + b"\r\n" + b"$3\r\nGET\r\n")
    return out


def test_random_bytes_and_huge_commands(make_ringslot):
    rs = make_ringslot()
    rnd = random.Random(20240611)
    for frame in random_frames(rnd, 400):
        s = socket.create_connection((HOST, rs.port))
        s.settimeout(2)
        try:
            s.sendall(frame)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass
        finally:
            s.close()
    with rs.raw(timeout=60) as c:
        assert c.command("SET", "{t}a", "1") == "OK"
        # 10^6 arguments: a key repeated, one slot, forwarded whole
        n = 1000000
        c.send(b"*%d\r\n$6\r\nEXISTS\r\n" % (n + 1) + b"$4\r\n{t}a\r\n" * n)
        assert c.read_reply() == n
        c.send(b"*%d\r\n$4\r\nECHO\r\n" % (n + 1) + b"$1\r\nx\r\n" * n)
        assert c.read_reply() == RespError("ERR wrong number of arguments for 'echo' command")
        c.send(b"*%d\r\n$7\r\nNOSUCHC\r\n" % (n + 1) + b"$1\r\nx\r\n" * n)
        r = c.read_reply()
        assert isinstance(r, RespError) and str(r).startswith("ERR unknown command")
        assert c.command("PING") == "PONG"


def test_many_idle_connections_memory(make_ringslot):
    n = 2000
    raise_nofile(n + 200)
    rs = make_ringslot()
    pid = rs.proc.pid
    # Warm up first: every provided receive buffer of every worker gets
    # touched once (one recv each), so the baseline already has them.
    warm = [RespClient(HOST, rs.port, timeout=10) for _ in range(64)]
    for _ in range(40):
        for c in warm:
            assert c.command("PING") == "PONG"
    for c in warm:
        c.close()
    time.sleep(0.3)
    rss0 = rss_bytes(pid)
    socks = []
    try:
        for _ in range(n):
            socks.append(socket.create_connection((HOST, rs.port), timeout=10))
        for s in socks:
            s.sendall(b"PING\r\n")
        for s in socks:
            buf = b""
            while not buf.endswith(b"\r\n"):
                buf += s.recv(64)
            assert buf == b"+PONG\r\n"
        time.sleep(0.5)
        rss1 = rss_bytes(pid)
        info = rs.proxy_info()
        assert info["connected_clients"] >= n
        per = (rss1 - rss0) / n
        binary = os.path.basename(os.path.dirname(helpers.ringslot_binary()))
        metric("idle_connections", n)
        metric("bytes_per_idle_connection_%s" % (binary or "ringslot"), int(per))
        with rs.raw() as c:
            assert c.command("SET", "{mem}k", "v") == "OK"
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: rs.proxy_info()["connected_clients"] <= 2, 10,
               what="the connections to be gone")


def asan_env(extra):
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") + extra}


def test_backpressure_timeout_keepalive(make_ringslot):
    # A small quarantine: freed reply buffers must not count as growth.
    rs = make_ringslot(extra_args=["--client-reply-budget", "2mb", "--timeout", "2",
                                   "--tcpkeepalive", "60"],
                       env=asan_env("quarantine_size_mb=8:thread_local_quarantine_size_kb=256"))
    pid = rs.proc.pid
    payload = b"p" * 65536
    cmd = helpers.encode_command("ECHO", payload)
    count = 1600  # 100 MB of replies, never read while they are sent
    sub = RespClient(HOST, rs.port, timeout=10)
    assert sub.command("SUBSCRIBE", "bp-chan")[0] == b"subscribe"
    idle = RespClient(HOST, rs.port, timeout=10)
    assert idle.command("PING") == "PONG"
    rss0 = rss_bytes(pid)
    s = socket.create_connection((HOST, rs.port))
    sender_done = threading.Event()

    def send_all():
        try:
            for _ in range(count):
                s.sendall(cmd)
        finally:
            sender_done.set()
    t = threading.Thread(target=send_all, daemon=True)
    t.start()
    time.sleep(3.0)  # past --timeout: a paused client is not idle
    grown = rss_bytes(pid) - rss0
    metric("backpressure_rss_growth_bytes", grown)
    assert not sender_done.is_set(), "the proxy read 100 MB it could not send"
    assert grown < 40 << 20, grown
    with rs.raw() as other:  # others are unaffected
        t0 = time.monotonic()
        assert other.command("PING") == "PONG"
        assert time.monotonic() - t0 < 1.0
    # the idle client was closed, the subscriber was not
    assert idle.read_until_closed(3) == b""
    assert sub.command("PING") in ("PONG", [b"pong", b""])
    # keepalive on client sockets
    ss = subprocess.run(["ss", "-tnoH", "state", "established", "( sport = :%d )" % rs.port],
                        stdout=subprocess.PIPE, text=True).stdout
    assert "keepalive" in ss, ss
    # drain: every reply arrives, reading resumes
    rc = RespClient.__new__(RespClient)
    rc.sock, rc.buf, rc.pos, rc.last_attributes = s, bytearray(), 0, None
    s.settimeout(30)
    for i in range(count):
        assert rc.read_reply() == payload, i
    t.join(30)
    assert sender_done.is_set()
    assert rc.command("PING") == "PONG"
    s.close()
    sub.close()
    idle.close()


def test_output_buffer_limits(make_ringslot):
    rs = make_ringslot(extra_args=["--client-reply-budget", "0", "--client-output-buffer-limit",
                                   "normal 4mb 0 0 pubsub 1mb 256kb 1"])
    payload = b"q" * 65536
    # normal class: a client that never reads its replies is disconnected
    s = socket.create_connection((HOST, rs.port))
    s.settimeout(20)
    cmd = helpers.encode_command("ECHO", payload)
    closed = False
    try:
        for _ in range(2000):  # 128 MB at most
            s.sendall(cmd)
    except OSError:
        closed = True
    if not closed:  # or the close shows on reading
        try:
            while s.recv(1 << 20):
                pass
            closed = True
        except OSError:
            closed = True
    s.close()
    assert closed
    # pubsub class: a subscriber that does not read is disconnected, the
    # publisher is not
    sub = RespClient(HOST, rs.port, timeout=20)
    assert sub.command("SUBSCRIBE", "ob-chan")[0] == b"subscribe"
    with rs.raw() as pub:
        for _ in range(400):  # 25 MB
            assert pub.command("PUBLISH", "ob-chan", payload) in (0, 1)

        def sub_gone():
            return pub.command("PUBSUB", "NUMSUB", "ob-chan")[1] == 0
        wait_until(sub_gone, 10, what="the slow subscriber to be disconnected")
        assert pub.command("PING") == "PONG"
    sub.close()
