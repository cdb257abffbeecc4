"""Cluster mode (issue 5): ringslot processes form a Redis Cluster of their own.

Three ringslot processes with --cluster-mode in front of one backend cluster,
on loopback, with short timings so a failover takes seconds:

    --leader-lease 2000 --heartbeat-interval 250 --proxy-node-timeout 2000

    1  one leader, one map, CLUSTER SLOTS/NODES/INFO/MYID/SHARDS on each
    2  redis-py RedisCluster: 5000 keys, connections on all 3 proxies;
       redis-benchmark --cluster
    3  kill -9 the leader: new leader, dead proxy's slots move, live ones
       do not, the client keeps working
    4  restart it with the same --node-id-file: exactly its share moves back
    5  SIGTERM a follower under load (client retries off): no error
    6  SIGSTOP a follower: removed; SIGCONT: newest map, rejoins; FLUSHALL
       on the backend (the lease store): a leader again, terms still grow
    7  a wrong --cluster-password cannot join; another --cluster-name is a
       separate cluster on the same backend
    8  a proxy that cannot reach the lease store joins through
       --cluster-seeds (the seed names the leader and gives its map)
    9  340 strangers on the leader's cport (idle, garbage, half a RESP
       frame): a new proxy still joins, they are closed after 1–2 s
   10  per-proxy DBSIZE / KEYS / SCAN / RANDOMKEY cover the proxy's own
       slots: summed or merged over the proxies, every key once
   11  a proxy leaving serves as before until its slots are handed over
       (MOVED for everything only afterwards)

Every proxy's view is read through the cport (PROXY CLUSTER MEMBERS /
LEADER / MAP) and through what clients see (CLUSTER SLOTS). Each test uses
its own --cluster-name, so leases of different tests never meet on the
shared backend. Test 6 flushes its backend, so it makes a private one.
"""

import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
from redis.cluster import RedisCluster as PyRedisCluster

import helpers
from helpers import HOST, RespClient, RespError, wait_until

SLOTS = 16384
PASSWORD = "s3cret-cluster"
LEASE_MS = 2000
HB_MS = 250
NODE_TIMEOUT_MS = 2000
# the sanitizer build is slow and the machine small: room for scheduling
SLACK_S = 2.0


# --- helpers ------------------------------------------------------------------

def cluster_args(name, id_file, password=PASSWORD, extra=()):
    return ["--cluster-mode", "--cluster-name", name, "--cluster-password", password,
            "--node-id-file", str(id_file),
            "--leader-lease", str(LEASE_MS), "--heartbeat-interval", str(HB_MS),
            "--proxy-node-timeout", str(NODE_TIMEOUT_MS)] + list(extra)


def cport(rs):
    return rs.port + 10000


def cport_cmd(rs, *args, password=PASSWORD, timeout=5.0):
    client = RespClient(HOST, cport(rs), timeout=timeout)
    if password is not None:
        return helpers.authed_command(client, password, *args)
    with client as c:
        reply = c.command(*args)
    if isinstance(reply, RespError):
        raise reply
    return reply


def leader_of(rs):
    """(node id, term) of the leader this proxy knows, or None."""
    v = cport_cmd(rs, "PROXY", "CLUSTER", "LEADER")
    if v is None:
        return None
    node_id, term, _addr = v.decode().split(" ")
    return node_id, int(term)


def map_header(rs):
    """(term, version, members) of this proxy's map."""
    text = cport_cmd(rs, "PROXY", "CLUSTER", "MAP").decode()
    _magic, _v, term, version, n = text.split("\n", 1)[0].split(" ")
    return int(term), int(version), int(n)


def members(rs):
    return [m.decode().split(" ") for m in cport_cmd(rs, "PROXY", "CLUSTER", "MEMBERS")]


def client_cmd(rs, *args):
    with RespClient(HOST, rs.port, timeout=5) as c:
        reply = c.command(*args)
    if isinstance(reply, RespError):
        raise reply
    return reply


def slot_table(rs):
    """CLUSTER SLOTS of one proxy as a list of 16384 client ports (None for
    an unowned slot)."""
    table = [None] * SLOTS
    for entry in client_cmd(rs, "CLUSTER", "SLOTS"):
        start, end, node = entry[0], entry[1], entry[2]
        for s in range(start, end + 1):
            table[s] = node[1]
    return table


def node_id(rs):
    return client_cmd(rs, "CLUSTER", "MYID").decode()


def converged(proxies):
    """True when every proxy has the same map (term, version) listing
    exactly these proxies, and CLUSTER SLOTS covers every slot with them."""
    headers = {map_header(rs) for rs in proxies}
    if len(headers) != 1 or next(iter(headers))[2] != len(proxies):
        return False
    want = {rs.port for rs in proxies}
    tables = [slot_table(rs) for rs in proxies]
    return all(t == tables[0] for t in tables) and set(tables[0]) == want


def wait_converged(proxies, timeout=15.0):
    wait_until(lambda: converged(proxies), timeout, interval=0.1,
               what="%d proxies to agree on one map" % len(proxies))
    return slot_table(proxies[0])


def find_leader(proxies):
    ids = {node_id(rs): rs for rs in proxies}
    views = {leader_of(rs) for rs in proxies}
    if len(views) != 1 or None in views:
        return None
    lid = next(iter(views))[0]
    return ids.get(lid)


@pytest.fixture
def name():
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture
def start_proxies(make_ringslot, tmp_path):
    """start_proxies(n, name, cluster=None, extra=()) -> [Ringslot]; node id
    files live in tmp_path/id-<i> so a proxy can be restarted as itself."""
    counter = [0]

    def start(n, cluster_name, cluster=None, extra=(), password=PASSWORD):
        out = []
        for _ in range(n):
            counter[0] += 1
            id_file = tmp_path / ("id-%d" % counter[0])
            rs = make_ringslot(cluster=cluster,
                               extra_args=cluster_args(cluster_name, id_file, password, extra))
            rs.id_file = id_file
            out.append(rs)
        return out
    return start


def restart_as(make_ringslot, rs, cluster_name, cluster=None):
    """Start a new process with rs's port and node id file."""
    new = make_ringslot(cluster=cluster, port=rs.port,
                        extra_args=cluster_args(cluster_name, rs.id_file))
    new.id_file = rs.id_file
    return new


# --- 1 ------------------------------------------------------------------------

def test_three_proxies_agree(start_proxies, name):
    proxies = start_proxies(3, name)
    table = wait_converged(proxies)
    assert set(table) == {rs.port for rs in proxies}
    counts = sorted(table.count(rs.port) for rs in proxies)
    assert counts[-1] - counts[0] <= 1, counts

    leader = wait_until(lambda: find_leader(proxies), 10, what="one leader")
    assert leader in proxies

    for rs in proxies:
        myid = node_id(rs)
        assert len(myid) == 40 and all(ch in "0123456789abcdef" for ch in myid)
        nodes = client_cmd(rs, "CLUSTER", "NODES").decode().splitlines()
        assert len(nodes) == 3
        mine = [line for line in nodes if "myself" in line.split(" ")[2]]
        assert len(mine) == 1 and mine[0].startswith(myid + " ")
        for line in nodes:
            f = line.split(" ")
            assert f[1].startswith("127.0.0.1:") and "@" in f[1]
            assert f[2] in ("master", "myself,master")
            assert f[3] == "-" and f[4] == "0" and f[7] == "connected"
            assert int(f[6]) == map_header(rs)[1]  # config epoch = map version
        info = helpers.parse_info(client_cmd(rs, "CLUSTER", "INFO"))
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_assigned"] == str(SLOTS)
        assert info["cluster_known_nodes"] == "3"
        shards = client_cmd(rs, "CLUSTER", "SHARDS")
        assert len(shards) == 3
        listed = members(rs)
        assert len(listed) == 3
        assert sum(1 for m in listed if m[2].startswith("leader")) == 1

    # the cport refuses everything before AUTH, and a wrong password
    with RespClient(HOST, cport(proxies[0]), timeout=5) as c:
        r = c.command("PROXY", "CLUSTER", "MEMBERS")
        assert isinstance(r, RespError) and str(r).startswith("NOAUTH")
        r = c.command("AUTH", "nope")
        assert isinstance(r, RespError)


# --- 2 ------------------------------------------------------------------------

def test_redis_py_cluster_client(start_proxies, name):
    proxies = start_proxies(3, name)
    wait_converged(proxies)
    rc = PyRedisCluster(host=HOST, port=proxies[0].port, socket_timeout=10)
    try:
        for i in range(5000):
            rc.set("cm:%s:%d" % (name, i), i)
        for i in range(5000):
            assert rc.get("cm:%s:%d" % (name, i)) == str(i).encode()
        # the client talks to every proxy, not only the one it started on
        used = {n.port for n in rc.get_nodes() if n.redis_connection is not None
                and n.redis_connection.connection_pool._created_connections > 0}
        assert used == {rs.port for rs in proxies}
    finally:
        rc.close()

    bench = subprocess.run(
        ["redis-benchmark", "--cluster", "-h", HOST, "-p", str(proxies[1].port),
         "-n", "2000", "-c", "10", "-t", "set,get", "-q"],
        capture_output=True, text=True, timeout=120)
    out = bench.stdout + bench.stderr
    assert bench.returncode == 0, out
    assert "requests per second" in out and "rror" not in out, out


# --- 3 and 4 ------------------------------------------------------------------

class Load:
    """A RedisCluster client doing SET/GET in a thread, counting errors."""

    def __init__(self, port, retries=3):
        self.rc = PyRedisCluster(host=HOST, port=port, socket_timeout=5,
                                 cluster_error_retry_attempts=retries)
        self.errors = []
        self.ops = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        while not self.stop.is_set():
            key = "load:%d" % (i % 2000)
            try:
                self.rc.set(key, i)
                self.rc.get(key)
                self.ops += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.errors.append((time.monotonic(), repr(exc)))
            i += 1

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        self.rc.close()


def test_kill_leader_then_restart(start_proxies, make_ringslot, name):
    proxies = start_proxies(3, name)
    before = wait_converged(proxies)
    leader = wait_until(lambda: find_leader(proxies), 10, what="one leader")
    survivors = [rs for rs in proxies if rs is not leader]
    old_term = leader_of(survivors[0])[1]
    dead_id = node_id(leader)

    with Load(survivors[0].port) as load:
        time.sleep(0.5)
        t0 = time.monotonic()
        leader.kill(signal.SIGKILL)

        def new_leader():
            views = {leader_of(rs) for rs in survivors}
            return len(views) == 1 and None not in views and \
                next(iter(views))[0] != dead_id and next(iter(views))[1] > old_term
        wait_until(new_leader, (LEASE_MS + HB_MS) / 1000 + SLACK_S, interval=0.05,
                   what="a new leader")
        failover_s = time.monotonic() - t0

        wait_until(lambda: converged(survivors),
                   (LEASE_MS + NODE_TIMEOUT_MS + HB_MS) / 1000 + SLACK_S, interval=0.05,
                   what="the dead proxy's slots to move")
        moved_s = time.monotonic() - t0
        after = slot_table(survivors[0])
        time.sleep(2.0)  # the client has converged too: no more errors now
        errors_before = len(load.errors)
        time.sleep(1.5)
        late_errors = load.errors[errors_before:]
        ops = load.ops
    print("leader failover %.2fs, slots moved after %.2fs" % (failover_s, moved_s))
    # slots of live proxies did not move; the dead one's went to survivors
    for s in range(SLOTS):
        if before[s] != leader.port:
            assert after[s] == before[s], "slot %d of a live proxy moved" % s
        else:
            assert after[s] in {rs.port for rs in survivors}
    counts = sorted(after.count(rs.port) for rs in survivors)
    assert counts == [SLOTS // 2, SLOTS // 2]
    assert ops > 0 and not late_errors, late_errors[:5]

    # 4: restart it as itself: it rejoins and exactly its share moves back
    back = restart_as(make_ringslot, leader, name)
    assert node_id(back) == dead_id
    proxies = survivors + [back]
    final = wait_converged(proxies)
    changed = [s for s in range(SLOTS) if final[s] != after[s]]
    assert all(final[s] == back.port for s in changed)
    assert len(changed) == SLOTS // 3, len(changed)
    ranges = len(client_cmd(back, "CLUSTER", "SLOTS"))
    print("rejoin moved %d slots; CLUSTER SLOTS has %d ranges" % (len(changed), ranges))
    assert ranges <= 2 * 3 * 3


# --- 5 ------------------------------------------------------------------------

def test_sigterm_follower_under_load(start_proxies, name):
    proxies = start_proxies(3, name)
    before = wait_converged(proxies)
    leader = wait_until(lambda: find_leader(proxies), 10, what="one leader")
    follower = next(rs for rs in proxies if rs is not leader)
    rest = [rs for rs in proxies if rs is not follower]

    with Load(rest[0].port, retries=1) as load:  # one attempt: no retries
        time.sleep(1.0)
        follower.stopped_by_us = True
        follower.proc.send_signal(signal.SIGTERM)
        # its slots move while it still runs (it serves MOVED meanwhile)
        wait_until(lambda: converged(rest), 10, interval=0.05,
                   what="the leaving proxy's slots to move")
        assert follower.running(), "exited before its slots had moved"
        rc = follower.proc.wait(30)  # a second SIGTERM would mean "now"
        follower.exit_code = rc
        time.sleep(1.0)
        errors = list(load.errors)
        ops = load.ops
    assert rc == 0
    assert ops > 0
    assert not errors, errors[:5]
    after = slot_table(rest[0])
    for s in range(SLOTS):
        if before[s] != follower.port:
            assert after[s] == before[s]


# --- 6 ------------------------------------------------------------------------

def test_partition_and_flushall(start_proxies, make_cluster, name):
    backend = make_cluster(masters=3, replicas=0)
    proxies = start_proxies(3, name, cluster=backend)
    wait_converged(proxies)
    leader = wait_until(lambda: find_leader(proxies), 10, what="one leader")
    victim = next(rs for rs in proxies if rs is not leader)
    rest = [rs for rs in proxies if rs is not victim]

    victim.proc.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: converged(rest), (NODE_TIMEOUT_MS + HB_MS) / 1000 + SLACK_S + 2,
                   interval=0.1, what="the stopped proxy to be removed")
        newest = map_header(rest[0])
    finally:
        victim.proc.send_signal(signal.SIGCONT)

    seen = []

    def rejoined():
        h = map_header(victim)
        seen.append(h[:2])
        return converged(proxies)
    wait_until(rejoined, 15, interval=0.05, what="the stopped proxy to rejoin")
    # it never went back to a map older than the one it had, and it moved to
    # one at least as new as the survivors' map while it was away
    assert seen == sorted(seen), seen
    assert map_header(victim)[:2] > newest[:2]

    # FLUSHALL on every master: the lease and the map are gone
    term_before = max(leader_of(rs)[1] for rs in proxies)
    for port in backend.masters():
        backend.execute(port, "FLUSHALL")

    def leader_again():
        views = {leader_of(rs) for rs in proxies}
        if len(views) != 1 or None in views:
            return False
        return next(iter(views))[1] > term_before
    wait_until(leader_again, (LEASE_MS + HB_MS) / 1000 + SLACK_S + 3, interval=0.1,
               what="a leader with a greater term after FLUSHALL")
    wait_converged(proxies)


# --- 7 ------------------------------------------------------------------------

def test_wrong_password_and_other_name(start_proxies, name):
    proxies = start_proxies(3, name)
    wait_converged(proxies)
    intruder = start_proxies(1, name, password="wrong-password")[0]
    other_name = name + "-other"
    other = start_proxies(1, other_name)[0]

    time.sleep((3 * HB_MS + NODE_TIMEOUT_MS) / 1000)
    assert converged(proxies)  # still exactly the three
    ids = {m[0] for m in members(proxies[0])}
    assert node_id(intruder) not in ids
    with pytest.raises(RespError):
        cport_cmd(proxies[0], "PING", password="wrong-password")

    # the other name: its own cluster, its own leader, on the same backend
    wait_until(lambda: leader_of(other) is not None and
               leader_of(other)[0] == node_id(other), 10, what="the other cluster's leader")
    assert set(slot_table(other)) == {other.port}
    assert node_id(other) not in ids
    assert leader_of(proxies[0])[0] != node_id(other)


# --- 8 ------------------------------------------------------------------------

def test_seeds_when_the_lease_store_is_out_of_reach(start_proxies, name):
    a, b = start_proxies(2, name)
    wait_converged([a, b])
    leader = wait_until(lambda: find_leader([a, b]), 10, what="one leader")
    follower = b if leader is a else a
    # its lease store is a port nobody listens on: only a seed can tell it
    # who leads; the first seed is dead too, the second is a follower
    nowhere = helpers.free_port()
    c = start_proxies(1, name, extra=["--lease-redis", "redis://127.0.0.1:%d" % nowhere,
                                      "--cluster-seeds", "127.0.0.1:1,127.0.0.1:%d"
                                      % cport(follower)])[0]
    wait_converged([a, b, c], timeout=20)
    assert leader_of(c)[0] == node_id(leader)


# --- 9 (issue 11, item 12) ----------------------------------------------------

def test_strangers_on_the_cport_never_crowd_out_members(start_proxies, name):
    """300 idle TCP connections, plus some that send garbage and some that
    stop inside a RESP frame, on the leader's cport: a new proxy still
    joins, the members stay, and the strangers are closed after their
    authentication deadline (2 heartbeat intervals, kept within 1–2 s)."""
    a, b = start_proxies(2, name)
    wait_converged([a, b])
    leader = wait_until(lambda: find_leader([a, b]), 10, what="one leader")
    strangers = []
    try:
        for i in range(340):
            s = socket.create_connection((HOST, cport(leader)), timeout=5)
            if i % 17 == 1:
                s.sendall(b"hello there\r\nGET / HTTP/1.1\r\n")
            elif i % 17 == 2:
                s.sendall(b"*3\r\n$4\r\nAUTH\r\n$7\r\ndef")
            strangers.append(s)
        c = start_proxies(1, name)[0]
        wait_converged([a, b, c], timeout=10)
        # every stranger is gone once its deadline passed
        wait_until(lambda: all(helpers.closed_by_peer(s) for s in strangers), 2 + SLACK_S,
                   interval=0.1, what="the cport to close unauthenticated connections")
        wait_converged([a, b, c], timeout=5)
        assert {m[0] for m in members(leader)} == {node_id(rs) for rs in (a, b, c)}
    finally:
        for s in strangers:
            s.close()


# --- 10 (issue 11, item 11) ---------------------------------------------------

def _scan_all(rs, *args):
    """Every key one proxy's SCAN returns, as a list (duplicates kept)."""
    out, cursor = [], b"0"
    with RespClient(HOST, rs.port, timeout=10) as c:
        while True:
            cursor, keys = c.command("SCAN", cursor, *args)
            out.extend(keys)
            if cursor == b"0":
                return out


def _backend_dbsize(cluster):
    return sum(cluster.execute(m, "DBSIZE") for m in cluster.masters())


def test_each_proxy_sees_its_own_slots(start_proxies, cluster, name):
    """A proxy's DBSIZE, KEYS, SCAN and RANDOMKEY cover the slots it owns,
    as a Redis node's do: summed over the proxies DBSIZE is the keyspace,
    per-proxy SCANs and KEYS are disjoint and together give every key once,
    RANDOMKEY names a key of the proxy's own slots; redis-cli --cluster
    info counts the keys once."""
    proxies = start_proxies(3, name)
    table = wait_converged(proxies)
    prefix = "own:%s:" % name
    keys = {("%s%d" % (prefix, i)).encode() for i in range(3000)}
    by_master = {}
    for k in keys:
        by_master.setdefault(cluster.master_for_key(k.decode()), []).append(k)
    for port, ks in by_master.items():
        pipe = cluster.client(port).pipeline(transaction=False)
        for k in ks:
            pipe.set(k, "v")
        pipe.execute()
    total = _backend_dbsize(cluster)

    everything = [k for m in cluster.masters() for k in cluster.client(m).scan_iter(count=1000)]
    assert len(everything) == total
    sizes = [client_cmd(rs, "DBSIZE") for rs in proxies]
    assert sum(sizes) == total, (sizes, total)
    for rs, size in zip(proxies, sizes):
        # bytes: other tests on this shared cluster leave keys that are not UTF-8
        assert size == sum(1 for k in everything if table[helpers.keyslot(k)] == rs.port)
    seen = {}
    for rs in proxies:
        mine = {k for k in keys if table[helpers.keyslot(k.decode())] == rs.port}
        scanned = [k for k in _scan_all(rs, "MATCH", prefix + "*", "COUNT", 500) if k in keys]
        assert len(scanned) == len(set(scanned)) and set(scanned) == mine
        listed = client_cmd(rs, "KEYS", prefix + "*")
        assert len(listed) == len(set(listed)) and set(listed) == mine
        seen[rs.port] = mine
        randoms = {client_cmd(rs, "RANDOMKEY") for _ in range(10)}
        assert all(table[helpers.keyslot(k.decode())] == rs.port for k in randoms), randoms
        assert len(randoms) > 1
        with RespClient(HOST, rs.port, timeout=10) as c:  # RESP3
            c.command("HELLO", "3")
            assert c.command("DBSIZE") == sizes[proxies.index(rs)]
            k = c.command("RANDOMKEY")
            assert table[helpers.keyslot(k.decode())] == rs.port
    assert set().union(*seen.values()) == keys
    assert sum(len(v) for v in seen.values()) == len(keys)  # disjoint

    info = subprocess.run(["redis-cli", "--cluster", "info", "%s:%d" % (HOST, proxies[0].port)],
                          capture_output=True, text=True, timeout=60)
    assert "[OK] %d keys in 3 masters." % total in info.stdout, info.stdout + info.stderr


# --- 11 (issue 15) ------------------------------------------------------------

def sigterm_pending(pid):
    """SIGTERM is pending for the process (ringslot blocks it and reads it
    from a signalfd, so it stays pending until read)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("ShdPnd:", "SigPnd:")) and int(line.split()[1], 16) & (
                    1 << (signal.SIGTERM - 1)):
                return True
    return False


def test_leaving_proxy_serves_until_its_slots_are_handed_over(start_proxies, name):
    """SIGTERM while the hand-off cannot finish (the leader is stopped):
    until its slots have moved, the leaving proxy serves as before (a call
    for another proxy's slot on a new connection is served, hint mode), and
    answers MOVED to everything only after the hand-off. When the whole tier
    stops at once, two leaving proxies whose maps are a heartbeat apart
    would otherwise send a client back and forth between them until its
    redirection limit (test_netns.py's whole tier restart met that)."""
    a, b = start_proxies(2, name)
    table = wait_converged([a, b])
    leader = wait_until(lambda: find_leader([a, b]), 10, what="one leader")
    follower = b if leader is a else a
    foreign = next(s for s in range(SLOTS) if table[s] == leader.port)
    key = "{%s}leaving" % helpers.tag_for_slot(foreign)
    assert client_cmd(follower, "SET", key, "v") == "OK"
    leader.proc.send_signal(signal.SIGSTOP)
    try:
        follower.stopped_by_us = True
        follower.proc.send_signal(signal.SIGTERM)
        # its main thread blocks in the hand-off, log lines wait meanwhile:
        # what shows it began is the signal read from its signalfd
        wait_until(lambda: not sigterm_pending(follower.proc.pid), 5,
                   what="the follower to read SIGTERM")
        for _ in range(5):  # each on a new connection
            assert client_cmd(follower, "GET", key) == b"v"
        assert follower.running()
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    # nobody took its slots: it stops waiting after its bound and exits 0
    follower.exit_code = follower.proc.wait(30)
    assert follower.exit_code == 0
