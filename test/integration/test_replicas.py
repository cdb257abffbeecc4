"""Reads from replicas (issue 13): --read-from-replicas no|yes|replica,
READONLY / READWRITE per connection, replica health (lag, SIGSTOP, kill -9)
and failover.

What a node served is read from its own INFO commandstats (deltas, so the
shared cluster's other users do not matter); what the proxy decided, from
its INFO (replicas_readable, replica_reads, replica_fallbacks). Tests that
kill, stop or fail over nodes use a private cluster (make_cluster)."""

import signal
import threading
import time

import pytest
import redis

from helpers import HOST, parse_info, wait_until

LAG_MS = 500
# ASan build, 2 shared cores: what "within the lag limit" may take here.
SLACK_S = 1.0


def node_calls(cluster, port, cmd):
    """calls= of cmdstat_<cmd> on the node (0 if never called)."""
    stats = parse_info(cluster.execute(port, "INFO", "commandstats"))
    entry = stats.get("cmdstat_" + cmd)
    if not entry:
        return 0
    return int(dict(kv.split("=") for kv in entry.split(","))["calls"])


def calls_by_node(cluster, cmd, ports=None):
    return {p: node_calls(cluster, p, cmd) for p in (ports or cluster.ports)}


def proxy(rs, **kw):
    return redis.Redis(host=HOST, port=rs.port, socket_timeout=10, **kw)


def readable(rs):
    return int(proxy(rs).info("cluster")["replicas_readable"])


def proxy_masters(rs):
    """Ports of the masters in the proxy's topology (PROXY CLUSTER NODES)."""
    rows = proxy(rs).execute_command("PROXY", "CLUSTER", "NODES")[1]
    return {int(dict(zip(row[::2], row[1::2]))[b"port"]) for row in rows}


def wait_readable(rs, n, timeout=10.0):
    wait_until(lambda: readable(rs) == n, timeout, what="%d readable replicas" % n)


def fill(r, keys):
    p = r.pipeline(transaction=False)
    for k in keys:
        p.set(k, "v-" + k)
    p.execute()


def read_all(r, keys, rounds, pipelined=True):
    """GET every key `rounds` times; returns the wrong answers. A
    single-connection client must not pipeline: redis-py's pipelines take
    another connection from the pool (without its READONLY)."""
    wrong = 0
    for _ in range(rounds):
        if pipelined:
            p = r.pipeline(transaction=False)
            for k in keys:
                p.get(k)
            got = p.execute()
        else:
            got = [r.get(k) for k in keys]
        wrong += sum(v != ("v-" + k).encode() for k, v in zip(keys, got))
    return wrong


# --- spreading ------------------------------------------------------------------

def test_yes_spreads_gets_over_masters_and_replicas(cluster, make_ringslot):
    rs = make_ringslot(extra_args=["--read-from-replicas", "yes"])
    wait_readable(rs, 3)
    r = proxy(rs)
    keys = ["spread:%d" % i for i in range(200)]
    sets0 = calls_by_node(cluster, "set")
    fill(r, keys)
    sets1 = calls_by_node(cluster, "set")
    gets0 = calls_by_node(cluster, "get")
    assert read_all(r, keys, 50) == 0  # 10 000 GETs
    gets = {p: n - gets0[p] for p, n in calls_by_node(cluster, "get").items()}
    assert sum(gets.values()) == 10000, gets
    # every node served its share: about 1/2 of its shard's reads each
    for p, n in gets.items():
        assert n > 10000 / 6 * 0.3, gets
    replica_gets = sum(gets[p] for p in cluster.replicas())
    assert int(r.info("stats")["replica_reads"]) >= replica_gets
    # writes only on masters: a replica runs only what its master replicated
    for m in cluster.masters():
        for rep in cluster.replicas(m):
            assert sets1[rep] - sets0[rep] == sets1[m] - sets0[m]
    assert sum(sets1[m] - sets0[m] for m in cluster.masters()) == len(keys)


def test_replica_mode_reads_only_replicas(cluster, make_ringslot):
    rs = make_ringslot(extra_args=["--read-from-replicas", "replica"])
    wait_readable(rs, 3)
    r = proxy(rs)
    keys = ["only:%d" % i for i in range(100)]
    fill(r, keys)
    gets0 = calls_by_node(cluster, "get")
    assert read_all(r, keys, 10) == 0
    gets = {p: n - gets0[p] for p, n in calls_by_node(cluster, "get").items()}
    assert all(gets[m] == 0 for m in cluster.masters()), gets
    assert sum(gets[p] for p in cluster.replicas()) == 1000, gets


def test_readonly_readwrite_per_connection(cluster, make_ringslot):
    rs = make_ringslot()  # --read-from-replicas no
    keys = ["conn:%d" % i for i in range(100)]
    plain = proxy(rs)
    fill(plain, keys)
    ro = proxy(rs, single_connection_client=True)
    assert ro.execute_command("READONLY") in (b"OK", "OK", True)
    wait_readable(rs, 3)  # the health checks start with the first READONLY

    def replica_gets(client):
        before = calls_by_node(cluster, "get", cluster.replicas())
        assert read_all(client, keys, 10, pipelined=False) == 0
        after = calls_by_node(cluster, "get", cluster.replicas())
        return sum(after[p] - before[p] for p in after)

    assert replica_gets(plain) == 0      # the global option says no
    assert replica_gets(ro) > 200        # READONLY: masters and replicas
    assert ro.execute_command("READWRITE") in (b"OK", "OK", True)
    assert replica_gets(ro) == 0
    ro.execute_command("READONLY")
    assert ro.execute_command("RESET") in (b"RESET", "RESET")
    assert replica_gets(ro) == 0         # RESET: back to the option's no
    with pytest.raises(redis.ResponseError) as e:
        plain.execute_command("READONLY", "x")
    assert str(e.value) == "wrong number of arguments for 'readonly' command"


def test_readwrite_overrides_global_yes(cluster, make_ringslot):
    rs = make_ringslot(extra_args=["--read-from-replicas", "yes"])
    wait_readable(rs, 3)
    keys = ["rw:%d" % i for i in range(100)]
    r = proxy(rs, single_connection_client=True)
    fill(r, keys)
    r.execute_command("READWRITE")
    before = calls_by_node(cluster, "get", cluster.replicas())
    assert read_all(r, keys, 5, pipelined=False) == 0
    assert calls_by_node(cluster, "get", cluster.replicas()) == before


def test_never_replicas_for_writes_scripts_multi(cluster, make_ringslot):
    rs = make_ringslot(extra_args=["--read-from-replicas", "replica"])
    wait_readable(rs, 3)
    r = proxy(rs)
    r.set("{w}k", "1")
    before = {c: calls_by_node(cluster, c, cluster.replicas())
              for c in ("eval", "eval_ro", "get", "exec")}
    # EVAL may write: master; EVAL_RO is read-only: a replica
    assert r.eval("return redis.call('GET', KEYS[1])", 1, "{w}k") == b"1"
    assert r.execute_command("EVAL_RO", "return redis.call('GET', KEYS[1])", 1, "{w}k") == b"1"
    p = r.pipeline(transaction=True)
    p.get("{w}k")
    assert p.execute() == [b"1"]
    after = {c: calls_by_node(cluster, c, cluster.replicas())
             for c in ("eval", "eval_ro", "get", "exec")}

    def delta(c):
        return sum(after[c][p] - before[c][p] for p in after[c])
    assert delta("eval") == 0
    assert delta("eval_ro") == 1
    # the one GET is EVAL_RO's own; MULTI's GET ran on the master
    assert delta("exec") == 0 and delta("get") == 1


def test_read_after_write_guard(cluster, make_ringslot):
    rs = make_ringslot(extra_args=["--read-from-replicas", "replica",
                                   "--replica-read-after-write", "60000"])
    wait_readable(rs, 3)
    writer = proxy(rs, single_connection_client=True)
    reader = proxy(rs, single_connection_client=True)
    writer.set("raw:k", "v-raw:k")
    before = calls_by_node(cluster, "get", cluster.replicas())
    assert writer.get("raw:k") == b"v-raw:k"      # its own write: master
    assert calls_by_node(cluster, "get", cluster.replicas()) == before
    assert reader.get("raw:k") is not None        # another client: replica
    after = calls_by_node(cluster, "get", cluster.replicas())
    assert sum(after.values()) - sum(before.values()) == 1


def test_runtime_change(cluster, make_ringslot):
    rs = make_ringslot()
    r = proxy(rs)
    keys = ["rt:%d" % i for i in range(50)]
    fill(r, keys)
    assert r.execute_command("PROXY", "CONFIG", "SET", "read-from-replicas", "replica") in (b"OK", "OK", True)
    assert r.execute_command("PROXY", "CONFIG", "GET", "read-from-replicas") == [b"read-from-replicas", b"replica"]
    wait_readable(rs, 3)
    before = calls_by_node(cluster, "get", cluster.masters())
    assert read_all(r, keys, 4) == 0
    assert calls_by_node(cluster, "get", cluster.masters()) == before
    r.execute_command("PROXY", "CONFIG", "SET", "read-from-replicas", "no")
    wait_readable(rs, 0)
    before = calls_by_node(cluster, "get", cluster.replicas())
    assert read_all(r, keys, 4) == 0
    assert calls_by_node(cluster, "get", cluster.replicas()) == before


def test_backend_auth(make_cluster, make_ringslot):
    """With --auth, the health checks and the READONLY links authenticate."""
    password = "be-Replica-77"
    c = make_cluster(masters=3, replicas=1)
    masters, replicas = c.masters(), c.replicas()
    for port in c.ports:  # masterauth first: replicas keep syncing
        c.execute(port, "CONFIG", "SET", "masterauth", password)
        c.execute(port, "CONFIG", "SET", "requirepass", password)
    rs = make_ringslot(cluster=c, entry_points=c.addrs(masters),
                       extra_args=["-a", password, "--read-from-replicas", "replica"])
    wait_readable(rs, 3)

    def gets(port):
        stats = redis.Redis(host=HOST, port=port, password=password).info("commandstats")
        return stats.get("cmdstat_get", {}).get("calls", 0)
    keys = ["auth:%d" % i for i in range(60)]
    r = proxy(rs)
    fill(r, keys)
    before = {p: gets(p) for p in masters + replicas}
    assert read_all(r, keys, 5) == 0
    assert all(gets(p) == before[p] for p in masters)
    assert sum(gets(p) - before[p] for p in replicas) == 300


# --- failures -------------------------------------------------------------------

class ReadLoad:
    """Threads reading `keys` through the proxy until stopped: counts
    errors, wrong values and the slowest read."""

    def __init__(self, rs, keys, threads=3, pipeline=1):
        self.rs, self.keys, self.pipeline = rs, keys, pipeline
        self.stop_ev = threading.Event()
        self.errors, self.wrong, self.reads = [], 0, 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def run(self, n):
        r = proxy(self.rs)
        i = n
        while not self.stop_ev.is_set():
            batch = [self.keys[(i + j) % len(self.keys)] for j in range(self.pipeline)]
            i += self.pipeline
            t0 = time.monotonic()
            try:
                p = r.pipeline(transaction=False)
                for k in batch:
                    p.get(k)
                got = p.execute()
            except redis.RedisError as exc:
                with self.lock:
                    self.errors.append(repr(exc))
                continue
            took = time.monotonic() - t0
            with self.lock:
                self.reads += len(batch)
                self.wrong += sum(v != ("v-" + k).encode() for k, v in zip(batch, got))
                self.log.append((t0, took))

    def __enter__(self):
        self.log = []
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def slowest_after(self, t):
        with self.lock:
            return max([took for (t0, took) in self.log if t0 >= t] or [0.0])

    def count(self):
        with self.lock:
            return self.reads


def keys_on(cluster, master, n, prefix):
    out, i = [], 0
    while len(out) < n:
        k = "%s:%d" % (prefix, i)
        if cluster.master_for_key(k) == master:
            out.append(k)
        i += 1
    return out


def private_cluster(make_cluster, make_ringslot, mode):
    """3 masters + 1 replica each, ringslot --read-from-replicas mode with
    a LAG_MS lag limit, once every replica serves reads."""
    c = make_cluster(masters=3, replicas=1)
    rs = make_ringslot(cluster=c, extra_args=["--read-from-replicas", mode,
                                              "--replica-max-lag", str(LAG_MS)])
    wait_readable(rs, 3)
    return c, rs


def test_replica_killed_under_read_load(make_cluster, make_ringslot):
    c, rs = private_cluster(make_cluster, make_ringslot, "yes")
    keys = ["kill:%d" % i for i in range(300)]
    fill(proxy(rs), keys)
    victim = c.replicas()[0]
    with ReadLoad(rs, keys, threads=3, pipeline=20) as load:
        wait_until(lambda: load.count() > 2000, 20, what="read load")
        c.kill(victim)
        n = load.count()
        wait_until(lambda: load.count() > n + 3000, 30, what="reads after the kill")
        wait_readable(rs, 2)
    assert load.errors == []
    assert load.wrong == 0


def test_replica_sigstop_stops_and_resumes_reads(make_cluster, make_ringslot):
    c, rs = private_cluster(make_cluster, make_ringslot, "replica")
    master = c.masters()[0]
    victim = c.replicas(master)[0]
    keys = keys_on(c, master, 100, "stop")
    fill(proxy(rs), keys)
    stopped = False
    try:
        with ReadLoad(rs, keys, threads=2, pipeline=5) as load:
            wait_until(lambda: load.count() > 500, 20, what="read load")
            c.kill(victim, signal.SIGSTOP)
            stopped = True
            t_stop = time.monotonic()
            wait_readable(rs, 2, timeout=LAG_MS / 1000 + SLACK_S)
            detected = time.monotonic() - t_stop
            n = load.count()
            wait_until(lambda: load.count() > n + 1000, 30, what="reads while stopped")
            # every read that began after detection went to the master: none
            # waited for the stopped replica
            assert load.slowest_after(t_stop + detected) < 0.5
            c.kill(victim, signal.SIGCONT)
            stopped = False
            wait_readable(rs, 3)
            before = node_calls(c, victim, "get")
            n = load.count()
            wait_until(lambda: load.count() > n + 500, 30, what="reads after SIGCONT")
            assert node_calls(c, victim, "get") > before
    finally:
        if stopped:
            c.kill(victim, signal.SIGCONT)
    assert detected <= LAG_MS / 1000 + SLACK_S
    assert load.errors == []
    assert load.wrong == 0
    # while it was stopped, its slot's reads went to the master
    assert int(proxy(rs).info("stats")["replica_fallbacks"]) > 0


def test_lagging_replica_stops_and_resumes_reads(make_cluster, make_ringslot):
    """A replica that answers INFO, link up, but stops applying the
    replication stream (CLIENT PAUSE WRITE pauses it on a replica) falls
    behind by offsets: no reads once the lag limit is passed."""
    c, rs = private_cluster(make_cluster, make_ringslot, "replica")
    master = c.masters()[0]
    victim = c.replicas(master)[0]
    keys = keys_on(c, master, 50, "lag")
    r = proxy(rs)
    fill(r, keys)
    stop = threading.Event()

    def writer():
        w = proxy(rs)
        while not stop.is_set():
            fill(w, keys)
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    try:
        assert c.execute(victim, "CLIENT", "PAUSE", "4000", "WRITE") in (b"OK", "OK")
        t_pause = time.monotonic()
        wait_readable(rs, 2, timeout=LAG_MS / 1000 + SLACK_S)
        detected = time.monotonic() - t_pause
        before = node_calls(c, victim, "get")
        assert read_all(r, keys, 10) == 0
        assert node_calls(c, victim, "get") == before  # the master served them
        wait_readable(rs, 3, timeout=15)               # pause over, in sync again
        before = node_calls(c, victim, "get")
        assert read_all(r, keys, 10) == 0
        assert node_calls(c, victim, "get") > before
    finally:
        stop.set()
        t.join(30)
    assert detected <= LAG_MS / 1000 + SLACK_S


def test_failover_under_load_replica_mode(make_cluster, make_ringslot):
    """Writes and reads through the proxy while a replica takes over
    (CLUSTER FAILOVER). After the failover, no read returns a value older
    than one acknowledged more than the lag bound before it began."""
    c, rs = private_cluster(make_cluster, make_ringslot, "replica")
    old_master = c.masters()[0]
    new_master = c.replicas(old_master)[0]
    keys = keys_on(c, old_master, 20, "fo")
    acked = {k: [(0, 0.0)] for k in keys}  # key → [(version, ack time)]
    reads = []                             # (key, version, start time)
    errors = {"read": [], "write": []}
    stop = threading.Event()
    r0 = proxy(rs)
    for k in keys:
        r0.set(k, 0)

    def writer():
        r = proxy(rs)
        v = 0
        while not stop.is_set():
            v += 1
            for k in keys:
                try:
                    r.set(k, v)
                except redis.RedisError as exc:
                    errors["write"].append(repr(exc))
                    continue
                acked[k].append((v, time.monotonic()))

    def reader(n):
        r = proxy(rs)
        i = n
        while not stop.is_set():
            k = keys[i % len(keys)]
            i += 1
            t0 = time.monotonic()
            try:
                got = r.get(k)
            except redis.RedisError as exc:
                errors["read"].append(repr(exc))
                continue
            reads.append((k, int(got), t0))

    threads = [threading.Thread(target=writer, daemon=True)] + \
        [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)  # load before the failover
        assert c.execute(new_master, "CLUSTER", "FAILOVER") in (b"OK", "OK")
        wait_until(lambda: c.master_for_slot(0) is not None and
                   old_master in c.replicas(new_master), 30, what="failover")
        # over once the proxy sees the new master and the old one serves
        # reads again, in sync
        wait_until(lambda: proxy_masters(rs) == set(c.masters()) and readable(rs) == 3, 30,
                   what="the proxy to follow the failover")
        t_end = time.monotonic()
        assert new_master in c.masters()
        before = node_calls(c, old_master, "get")
        time.sleep(1.5)  # load after the failover
        assert node_calls(c, old_master, "get") > before  # a replica again
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    bound = LAG_MS / 1000 + 0.25  # + one probe round: the check's own step
    wrong = []
    for k, got, t0 in reads:
        if t0 < t_end:
            continue
        need = max(v for v, at in acked[k] if at <= t0 - bound)
        if got < need:
            wrong.append((k, got, need, t0))
    assert wrong == []
    assert errors["read"] == []
    # once the load stops, every key reads its last acknowledged value
    last = {k: acked[k][-1][0] for k in keys}
    wait_until(lambda: all(int(r0.get(k)) >= last[k] for k in keys),
               LAG_MS / 1000 + SLACK_S, what="replicas to catch up")


# --- SCAN -------------------------------------------------------------------------

def cursor_check(cluster, port):
    """The check bits ringslot gives the SCAN cursors of node `port`
    (cluster/scan_cursor.c: FNV-1a over "host:port" then the node id, low
    5 bits)."""
    h = 2166136261
    for ch in ("%s:%d%s" % (HOST, port, cluster.node_id(port))).encode():
        h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
    return h & 31


def scan_all(r, match):
    """Every key SCAN MATCH gives, and how many calls it took."""
    seen, cursor, pages = [], 0, 0
    while True:
        cursor, page = r.scan(cursor, match=match, count=20)
        assert 0 <= cursor <= 2**53 - 1
        seen += [k.decode() for k in page]
        pages += 1
        if cursor == 0:
            return seen, pages


def test_scan_pages_come_from_replicas(cluster, make_ringslot):
    """SCAN is read-only: with `replica` its pages come from replicas (each
    cursor continued on the replica that handed it out), every key once. A
    replica whose cursor check bits equal its master's (1 in 32) could not
    be told from it by a cursor: that shard stays on the master. A MATCH
    nothing matches makes the proxy hop to the next shard within one call
    (an empty last page): that shard's first page too comes from its
    replica (before: from its master, and the rest of that shard with it)."""
    rs = make_ringslot(extra_args=["--read-from-replicas", "replica"])
    wait_readable(rs, 3)
    r = proxy(rs)
    keys = {"scanrep:%d" % i for i in range(300)}
    fill(r, sorted(keys))
    expected = set()
    for (_, _, m, reps) in cluster.cluster_slots():
        assert len(reps) == 1, cluster.cluster_slots()
        distinct = cursor_check(cluster, reps[0]) != cursor_check(cluster, m)
        expected.add(reps[0] if distinct else m)
    for match, want in (("scanrep:*", keys), ("scanrep-none:*", set())):
        scans0 = calls_by_node(cluster, "scan")
        seen, pages = scan_all(r, match)
        assert set(seen) == want and len(seen) == len(want)
        scans = {p: n - scans0[p] for p, n in calls_by_node(cluster, "scan").items()}
        served = {p for p, n in scans.items() if n > 0}
        stats = {k: v for k, v in r.info("stats").items() if k.startswith("replica")}
        assert served == expected, (match, scans, stats)
        assert sum(scans.values()) >= pages


def test_scan_survives_losing_its_replicas(make_cluster, make_ringslot):
    """Every replica killed in the middle of a SCAN: the shards start again
    on their masters (a node's cursor means nothing to another), so keys
    may come twice but none is missed, and the client sees no error."""
    c, rs = private_cluster(make_cluster, make_ringslot, "replica")
    r = proxy(rs)
    keys = {"scanlost:%d" % i for i in range(300)}
    fill(r, sorted(keys))
    cursor, page = r.scan(0, match="scanlost:*", count=10)
    assert cursor != 0
    seen = {k.decode() for k in page}
    for rep in c.replicas():
        c.kill(rep)
    while cursor != 0:
        cursor, page = r.scan(cursor, match="scanlost:*", count=10)
        seen |= {k.decode() for k in page}
    assert seen == keys
    assert int(r.info("stats")["replica_fallbacks"]) >= 1
