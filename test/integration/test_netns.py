"""Cluster mode across real, changing addresses (issue 15), as root.

Every process gets a network namespace of its own on a private segment
(netns.py: a bridge inside a hub namespace the test made, veth pairs, the
addresses 10.77.0.0/24; nothing in the root namespace is touched):

    10.77.0.2     backend: a 3-master Redis Cluster (ports 7000-7002)
    10.77.0.3     clients: redis-py RedisCluster in a thread, and the test's
                  own probes (the main thread enters this namespace for
                  the test's duration; setns(2) is per thread)
    10.77.0.10+   proxies, one namespace per incarnation: a restarted proxy
                  is a new "pod" with an address never used before

The proxies run the way deploy/ runs them: deploy/container/ringslot-entrypoint
with deploy/container/ringslot.conf (port 7777, cport 17777, console 9121),
POD_IP as --announce-ip and POD_NAME = ringslot-<ordinal>, so the node id is
sha1(cluster name/pod name): the same id for every incarnation of an ordinal,
with a new address (as deploy/kubernetes/cluster.yaml's StatefulSet does).
--cluster-seeds names the pods as the headless Service does
(ringslot-<i>.ringslot-peers:17777), resolved through /etc/hosts, which
`ip netns exec` replaces by a file the test rewrites when a pod moves (the
stand-in for cluster DNS).

Clients know one name, the client Service `ringslot:7777`, and nothing else
(redis-py's dynamic_startup_nodes=False, which redis-py recommends for a DNS
startup node): the connection class resolves that name to the pods the
Service would route to (ready, not terminating), one after the other in a
random order, as a ClusterIP in front of the ready endpoints would. Every
other address the client uses comes from CLUSTER SLOTS. A pod leaves the
Service when it is sent SIGTERM, joins it once it serves (its readiness).

Load: one thread SETs a new key and GETs it back (value checked), counting
acknowledged writes, errors (after redis-py's own retries: 3 attempts, 5
connection retries each) and the time of each; afterwards every
acknowledged write is read back through the proxies.

    1  rolling restart: each proxy in turn gets SIGTERM, leaves, exits 0,
       its namespace is deleted, and it comes back in a new one with a new
       address and the same node id: zero client errors, no acknowledged
       write lost, the old address gone from CLUSTER NODES within the node
       timeout
    2  the whole tier at once: all three get SIGTERM, exit, come back with
       new addresses: the client, knowing only the Service name, recovers;
       the time it takes is printed
    3  a proxy's eth0 goes down (the process lives on), a follower and then
       the leader: it is removed, its slots (only its) move, operations
       started later than the node timeout plus one heartbeat after the cut
       (for the leader: plus the lease) succeed and are not held up; link
       up: it rejoins without a restart, as the same process

The figures (errors, recovery times, slots moved) are printed: run with -s.
Timings as in test_cluster_mode.py: lease 2000 ms, heartbeat 250 ms, node
timeout 2000 ms.
"""

import os
import random
import signal
import socket
import subprocess
import threading
import time
import uuid

import pytest
import redis
from redis.cluster import RedisCluster as PyRedisCluster

import helpers
import netns
from helpers import RespClient, RespError, wait_until

SLOTS = 16384
PASSWORD = "s3cret-netns"
LEASE_MS = 2000
HB_MS = 250
NODE_TIMEOUT_MS = 2000
SLACK_S = 2.0                 # the sanitizer build on a small machine

TAG = "rs%d" % os.getpid()    # every namespace name starts with it
BACKEND_IP = "10.77.0.2"
CLIENT_IP = "10.77.0.3"
BACKEND_PORTS = (7000, 7001, 7002)
PORT = 7777                   # deploy/container/ringslot.conf
CPORT = PORT + 10000
CONSOLE_PORT = 9121            # deploy/container/ringslot.conf
SERVICE = "ringslot"          # the client Service's name
TIER = 3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ENTRYPOINT = os.path.join(ROOT, "deploy", "container", "ringslot-entrypoint")
CONTAINER_CONF = os.path.join(ROOT, "deploy", "container", "ringslot.conf")


def log(msg):
    print("[netns] " + msg, flush=True)


# --- the network and the backend ----------------------------------------------

@pytest.fixture(scope="module")
def net(tmp_path_factory):
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip("network namespace tests skipped: " + reason)
    n = netns.Net(TAG, workdir=tmp_path_factory.mktemp("netns"))
    try:
        n.create()
        n.backend = n.add_host("be", BACKEND_IP)
        n.client = n.add_host("cl", CLIENT_IP)
        yield n
    finally:
        helpers.fail_on(n.destroy())


class Backend:
    """A Redis Cluster of 3 masters in the backend namespace."""

    def __init__(self, net, workdir):
        self.net = net
        self.workdir = str(workdir)
        self.procs = []

    @property
    def addrs(self):
        return ["%s:%d" % (BACKEND_IP, p) for p in BACKEND_PORTS]

    def start(self):
        for port in BACKEND_PORTS:
            logf = open(os.path.join(self.workdir, "redis-%d.log" % port), "ab")
            try:
                self.procs.append(helpers.popen(
                    ["ip", "netns", "exec", self.net.backend, helpers.REDIS_SERVER,
                     "--port", str(port), "--bind", BACKEND_IP,
                     "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                     "--cluster-announce-ip", BACKEND_IP,
                     "--cluster-config-file", os.path.join(self.workdir, "nodes-%d.conf" % port),
                     "--dir", self.workdir, "--save", "", "--appendonly", "no",
                     "--protected-mode", "no", "--daemonize", "no", "--logfile", ""],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT))
            finally:
                logf.close()
        with netns.entered(self.net.client):
            for port in BACKEND_PORTS:
                wait_until(lambda: self.execute(port, "PING") == "PONG", 10,
                           what="redis-server %s:%d" % (BACKEND_IP, port))
        create = subprocess.run(
            ["ip", "netns", "exec", self.net.backend, helpers.REDIS_CLI, "--cluster", "create"]
            + self.addrs + ["--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert create.returncode == 0, create.stdout + create.stderr
        with netns.entered(self.net.client):
            wait_until(self._ok, 30, interval=0.1, what="the backend cluster to be ok")

    def execute(self, port, *args):
        with RespClient(BACKEND_IP, port, timeout=5) as c:
            reply = c.command(*args)
        if isinstance(reply, RespError):
            raise reply
        return reply

    def _ok(self):
        for port in BACKEND_PORTS:
            info = helpers.parse_info(self.execute(port, "CLUSTER", "INFO"))
            if info.get("cluster_state") != "ok" or info.get("cluster_known_nodes") != "3":
                return False
        return True

    def stop(self):
        for p in self.procs:
            helpers.stop_process(p, 5.0)


@pytest.fixture(scope="module")
def backend(net, tmp_path_factory):
    b = Backend(net, tmp_path_factory.mktemp("backend"))
    try:
        b.start()
        yield b
    finally:
        b.stop()


# --- proxies as pods ----------------------------------------------------------

class Pod(helpers.Ringslot):
    """One incarnation of a proxy: a namespace of its own, the container's
    entrypoint and configuration, POD_IP/POD_NAME in the environment."""

    def __init__(self, binary, entry_points, workdir=None, threads=2, extra_args=(),
                 ns=None, ip=None, ordinal=None, cluster_name=None):
        env = {"RINGSLOT_BIN": binary, "RINGSLOT_CONFIG": CONTAINER_CONF,
               "RINGSLOT_RUNDIR": workdir, "RINGSLOT_CLUSTER_NAME": cluster_name,
               "POD_IP": ip, "POD_NAME": "ringslot-%d" % ordinal}
        super().__init__(binary, entry_points, workdir=workdir, threads=threads, port=PORT,
                         extra_args=extra_args, env=env)
        self.ns = ns
        self.ip = ip
        self.ordinal = ordinal

    @property
    def addr(self):
        return "%s:%d" % (self.ip, self.port)

    def args(self):
        return (["ip", "netns", "exec", self.ns, ENTRYPOINT, "--threads", str(self.threads)]
                + self.entry_points + self.extra_args)

    def spawn(self):
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        env.update(self.env)
        self.log_path = os.path.join(self.workdir, "ringslot.log")
        with open(self.log_path, "ab") as out:
            self.proc = helpers.popen(self.args(), stdin=subprocess.DEVNULL, env=env,
                                      stdout=out, stderr=subprocess.STDOUT)

    def start(self, attempts=1):
        self.spawn()
        self.wait_ready(self.ready_timeout)
        return self

    def wait_ready(self, timeout=15.0):
        """Ready as the manifests' readinessProbe sees it: GET /readyz on the
        console port answers 200; and PING answers PONG."""
        def probe():
            if self.proc.poll() is not None:
                raise RuntimeError("ringslot exited with %s" % self.proc.returncode)
            with socket.create_connection((self.ip, CONSOLE_PORT), timeout=2) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if not s.recv(64).startswith(b"HTTP/1.1 200"):
                    return False
            with RespClient(self.ip, self.port, timeout=2) as c:
                return c.command("PING") == "PONG"
        try:
            wait_until(probe, timeout, interval=0.05, what="ringslot %s to be ready" % self.addr)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError("%s\n--- ringslot log ---\n%s" % (exc, self.log_tail())) from None

    def raw(self, timeout=10.0):
        return RespClient(self.ip, self.port, timeout=timeout)


def peer_name(ordinal):
    return "ringslot-%d.ringslot-peers" % ordinal


class Tier:
    """The StatefulSet: TIER ordinals, each with its current Pod, plus the
    client Service's endpoints. Every Pod ever started is stopped (SIGTERM,
    then SIGKILL) and its namespace deleted by shutdown()."""

    def __init__(self, net, backend, workdir, cluster_name):
        self.net = net
        self.backend = backend
        self.workdir = workdir
        self.cluster_name = cluster_name
        self.pods = [None] * TIER
        self.started = []
        self.endpoints = []           # Service: ips of ready, not terminating pods
        self.lock = threading.Lock()
        self.next_host = 10
        for i in range(TIER):        # the headless Service's names exist from the start
            net.set_name(peer_name(i), net.addr(self.next_host + i))

    def extra_args(self):
        seeds = ",".join("%s:%d" % (peer_name(i), CPORT) for i in range(TIER))
        return ["--cluster-mode", "--cluster-name", self.cluster_name,
                "--cluster-password", PASSWORD, "--cluster-seeds", seeds,
                "--leader-lease", str(LEASE_MS), "--heartbeat-interval", str(HB_MS),
                "--proxy-node-timeout", str(NODE_TIMEOUT_MS)]

    def _new_pod(self, ordinal):
        ip = self.net.addr(self.next_host)
        self.next_host += 1
        gen = sum(1 for p in self.started if p.ordinal == ordinal)
        ns = self.net.add_host("p%dg%d" % (ordinal, gen), ip)
        self.net.set_name(peer_name(ordinal), ip)
        d = self.workdir / ("ringslot-%d-g%d" % (ordinal, gen))
        d.mkdir()
        binary = helpers.ringslot_binary()
        if not os.access(binary, os.X_OK):
            pytest.fail("ringslot binary not found: %s (build it, or set RINGSLOT_BIN)" % binary,
                        pytrace=False)
        pod = Pod(binary, self.backend.addrs[:2], workdir=str(d), threads=2,
                  extra_args=self.extra_args(), ns=ns, ip=ip, ordinal=ordinal,
                  cluster_name=self.cluster_name)
        self.started.append(pod)
        helpers.LIVE_RINGSLOTS.append(pod)
        return pod

    def launch(self, ordinals):
        """Start a new pod for each ordinal, all at once, then wait until
        each serves; each joins the Service once it does."""
        pods = [self._new_pod(i) for i in ordinals]
        for pod in pods:
            pod.spawn()
            self.pods[pod.ordinal] = pod
        for pod in pods:
            pod.wait_ready()
            with self.lock:
                self.endpoints.append(pod.ip)
        return pods

    def set_ready(self, pod, ready):
        """The pod's readiness as the Service sees it."""
        with self.lock:
            if ready and pod.ip not in self.endpoints:
                self.endpoints.append(pod.ip)
            elif not ready and pod.ip in self.endpoints:
                self.endpoints.remove(pod.ip)

    def terminate(self, pod):
        """What the kubelet does: out of the Service, then SIGTERM."""
        with self.lock:
            if pod.ip in self.endpoints:
                self.endpoints.remove(pod.ip)
        pod.stopped_by_us = True
        pod.proc.send_signal(signal.SIGTERM)

    def reap(self, pod, timeout=30):
        """Wait for a terminated pod to exit; then its sandbox (namespace and
        address) goes away. Returns the exit code."""
        pod.exit_code = pod.proc.wait(timeout)
        self.net.remove_host(pod.ns)
        return pod.exit_code

    def resolve(self):
        with self.lock:
            eps = list(self.endpoints)
        random.shuffle(eps)
        return eps

    def live(self):
        return [p for p in self.pods if p is not None and p.running()]

    def shutdown(self):
        problems = []
        for pod in self.started:
            problems += helpers.finish_managed(pod)
        for pod in self.started:
            if pod.ns in self.net.namespaces:
                self.net.remove_host(pod.ns)
        return problems


@pytest.fixture
def tier(net, backend, tmp_path, monkeypatch):
    t = Tier(net, backend, tmp_path, "nt-" + uuid.uuid4().hex[:8])
    resolve_service(monkeypatch, t)
    problems = []
    with netns.entered(net.client):
        try:
            yield t
        finally:
            problems = t.shutdown()
    helpers.fail_on(problems)


# --- what the proxies say -----------------------------------------------------

def pod_cmd(pod, *args):
    with RespClient(pod.ip, PORT, timeout=5) as c:
        reply = c.command(*args)
    if isinstance(reply, RespError):
        raise reply
    return reply


def cport_cmd(pod, *args):
    return helpers.authed_command(RespClient(pod.ip, CPORT, timeout=5), PASSWORD, *args)


def map_header(pod):
    text = cport_cmd(pod, "PROXY", "CLUSTER", "MAP").decode()
    _magic, _v, term, version, n = text.split("\n", 1)[0].split(" ")
    return int(term), int(version), int(n)


def leader_id(pod):
    v = cport_cmd(pod, "PROXY", "CLUSTER", "LEADER")
    return None if v is None else v.decode().split(" ")[0]


def node_id(pod):
    return pod_cmd(pod, "CLUSTER", "MYID").decode()


def slot_table(pod):
    """CLUSTER SLOTS of one pod: 16384 announced ips (None: unowned)."""
    table = [None] * SLOTS
    for entry in pod_cmd(pod, "CLUSTER", "SLOTS"):
        assert entry[2][1] == PORT
        for s in range(entry[0], entry[1] + 1):
            table[s] = entry[2][0].decode()
    return table


def nodes_ips(pod):
    """The ips CLUSTER NODES lists (announced address, before the @)."""
    text = pod_cmd(pod, "CLUSTER", "NODES").decode()
    return {line.split(" ")[1].split("@")[0].rsplit(":", 1)[0] for line in text.splitlines()}


def converged(pods):
    """Every pod has the same map listing exactly these pods, at their
    current addresses, covering every slot."""
    headers = {map_header(p) for p in pods}
    if len(headers) != 1 or next(iter(headers))[2] != len(pods):
        return False
    tables = [slot_table(p) for p in pods]
    return all(t == tables[0] for t in tables) and set(tables[0]) == {p.ip for p in pods}


def wait_converged(pods, timeout=20.0):
    wait_until(lambda: converged(pods), timeout, interval=0.05,
               what="%d proxies to agree on one map" % len(pods))
    return slot_table(pods[0])


def find_leader(pods):
    views = {leader_id(p) for p in pods}
    if len(views) != 1 or None in views:
        return None
    lid = next(iter(views))
    return next((p for p in pods if node_id(p) == lid), None)


def moved(before, after, rename=None):
    """Slots whose owner changed (an ordinal's new address counts as the
    same owner when rename maps old ip -> new ip)."""
    rename = rename or {}
    return sum(1 for s in range(SLOTS) if rename.get(before[s], before[s]) != after[s])


# --- the client -----------------------------------------------------------------

def resolve_service(monkeypatch, tier):
    """From now until the test ends, redis-py connections to SERVICE go to
    the Service's endpoints (tried in a random order, like a ClusterIP in
    front of them); any other host is used as it is. (redis-py 4.3's
    RedisCluster takes no connection class, hence the patch.)"""
    connect = redis.connection.Connection._connect

    def service_connect(self):
        if self.host != SERVICE:
            return connect(self)
        err = ConnectionRefusedError("Service %s has no endpoints" % SERVICE)
        for ip in tier.resolve():
            self.host = ip
            try:
                return connect(self)
            except OSError as exc:
                err = exc
            finally:
                self.host = SERVICE
        raise err
    monkeypatch.setattr(redis.connection.Connection, "_connect", service_connect)


def cluster_client():
    return PyRedisCluster(host=SERVICE, port=PORT, dynamic_startup_nodes=False,
                          socket_timeout=2, socket_connect_timeout=1)


class Load:
    """SET a new key, GET it back, in a thread in the client namespace."""

    def __init__(self, tier, prefix):
        self.tier = tier
        self.prefix = prefix
        self.acked = {}             # key -> value, every SET answered OK
        self.errors = []            # (started, ended, repr)
        self.ok_times = []          # end time of each verified SET+GET
        self.ok_starts = []         # and its start time
        self.stop = threading.Event()
        self.started = threading.Event()
        self.init_error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        netns.enter_for_good(self.tier.net.client)
        try:
            rc = cluster_client()
        except Exception as exc:  # noqa: BLE001 - reported by __enter__
            self.init_error = exc
            self.started.set()
            return
        self.started.set()
        i = 0
        try:
            while not self.stop.is_set():
                key = "%s:%d" % (self.prefix, i)
                val = "v%d" % i
                t0 = time.monotonic()
                try:
                    if rc.set(key, val) is not True:
                        raise AssertionError("SET %s not acknowledged" % key)
                    self.acked[key] = val
                    got = rc.get(key)
                    if got != val.encode():
                        raise AssertionError("GET %s: %r, wanted %r" % (key, got, val))
                    self.ok_starts.append(t0)
                    self.ok_times.append(time.monotonic())
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    self.errors.append((t0, time.monotonic(), repr(exc)[:300]))
                i += 1
        finally:
            rc.close()

    def __enter__(self):
        self.thread.start()
        self.started.wait(30)
        if self.init_error is not None:
            raise self.init_error
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)

    def wait_ops(self, n, timeout=30.0):
        """Wait until n more operations succeeded."""
        target = len(self.ok_times) + n
        wait_until(lambda: len(self.ok_times) >= target, timeout, interval=0.02,
                   what="%d more successful operations" % n)

    def first_ok_after(self, t):
        return next((x for x in self.ok_times if x > t), None)

    def last_ok_before(self, t):
        return next((x for x in reversed(self.ok_times) if x < t), None)

    def max_gap(self, since, until=None):
        """The longest time without a successful operation between since
        and until (now): how long the client stalled."""
        until = time.monotonic() if until is None else until
        times = [since] + [x for x in self.ok_times if since < x < until] + [until]
        return max(b - a for a, b in zip(times, times[1:]))

    def slow_ops(self, since, longer_than=0.5):
        """(start, end) of the successful operations started after since
        that took longer than longer_than seconds."""
        return [(a, b) for a, b in zip(self.ok_starts, self.ok_times)
                if a >= since and b - a > longer_than]

    def summary(self):
        return "%d operations, %d acknowledged writes, %d errors" % (
            len(self.ok_times), len(self.acked), len(self.errors))


def verify_acked(tier, load):
    """Every acknowledged write reads back, through the proxies. Returns the
    number of keys checked."""
    rc = cluster_client()
    try:
        items = sorted(load.acked.items())
        missing = []
        for i in range(0, len(items), 500):
            chunk = items[i:i + 500]
            pipe = rc.pipeline()
            for k, _ in chunk:
                pipe.get(k)
            for (k, v), got in zip(chunk, pipe.execute()):
                if got != v.encode():
                    missing.append((k, v, got))
        assert not missing, "%d acknowledged writes lost, e.g. %r" % (len(missing), missing[:5])
        return len(items)
    finally:
        rc.close()


# --- 1 ------------------------------------------------------------------------

def test_rolling_restart_with_new_addresses(tier):
    tier.launch(range(TIER))
    table = wait_converged(tier.pods)
    ids = [node_id(p) for p in tier.pods]
    figures = []
    with Load(tier, "roll") as load:
        load.wait_ops(200)
        for i in range(TIER):
            old = tier.pods[i]
            rest = [p for p in tier.pods if p is not old]
            was_leader = find_leader(tier.pods) is old
            t0 = time.monotonic()
            tier.terminate(old)
            # its slots move while it still runs (it answers MOVED meanwhile)
            wait_until(lambda: converged(rest), NODE_TIMEOUT_MS / 1000 + SLACK_S, interval=0.05,
                       what="ringslot-%d's slots to move away" % i)
            left_s = time.monotonic() - t0
            after_leave = slot_table(rest[0])
            wait_until(lambda: all(old.ip not in nodes_ips(p) for p in rest),
                       max(0.0, t0 + NODE_TIMEOUT_MS / 1000 - time.monotonic()),
                       interval=0.05, what="%s to leave CLUSTER NODES" % old.ip)
            gone_s = time.monotonic() - t0
            rc = tier.reap(old)
            assert rc == 0, "ringslot-%d exited with %s after SIGTERM" % (i, rc)
            exit_s = time.monotonic() - t0
            assert all(old.ip not in nodes_ips(p) for p in rest)
            new = tier.launch([i])[0]
            assert new.ip != old.ip
            assert node_id(new) == ids[i], "a new node id for the same pod name"
            final = wait_converged(tier.pods)
            back_s = time.monotonic() - t0
            load.wait_ops(100)
            step = dict(ordinal=i, leader=was_leader, old=old.ip, new=new.ip,
                        left_s=left_s, exit_s=exit_s, gone_s=gone_s, back_s=back_s,
                        stall_s=load.max_gap(t0),
                        moved_out=moved(table, after_leave),
                        moved_in=moved(after_leave, final), errors=len(load.errors))
            figures.append(step)
            log("rolling restart ringslot-%(ordinal)d (leader: %(leader)s) %(old)s -> "
                "%(new)s: slots moved away after %(left_s).2fs (%(moved_out)d slots), old address "
                "gone from CLUSTER NODES after %(gone_s).2fs, exited after %(exit_s).2fs, "
                "back and converged after %(back_s).2fs (%(moved_in)d slots moved back); "
                "longest client stall %(stall_s).2fs; client errors so far %(errors)d" % step)
            table = final
        load.wait_ops(200)
    checked = verify_acked(tier, load)
    log("rolling restart: %s; %d acknowledged writes read back" % (load.summary(), checked))
    assert not load.errors, load.errors[:5]
    assert len(load.acked) > 0 and checked == len(load.acked)
    for p in tier.pods:
        assert nodes_ips(p) == {q.ip for q in tier.pods}


# --- 2 ------------------------------------------------------------------------

def test_whole_tier_restart_with_new_addresses(tier):
    tier.launch(range(TIER))
    before = wait_converged(tier.pods)
    with Load(tier, "tier") as load:
        load.wait_ops(200)
        old = list(tier.pods)
        t0 = time.monotonic()
        for p in old:
            tier.terminate(p)
        wait_until(lambda: any(not p.running() for p in old), 30, interval=0.01,
                   what="a proxy to exit")
        t_first_exit = time.monotonic()
        codes = [tier.reap(p) for p in old]
        t_down = time.monotonic()
        assert codes == [0] * TIER, codes
        tier.launch(range(TIER))
        t_ready = time.monotonic()
        after = wait_converged(tier.pods)
        t_conv = time.monotonic()
        wait_until(lambda: load.first_ok_after(t_conv) is not None, 60, interval=0.05,
                   what="the client to recover")
        load.wait_ops(300)
        errors = list(load.errors)
    first_ok = load.first_ok_after(t_down)
    last_ok = load.last_ok_before(t0)
    checked = verify_acked(tier, load)
    old_ips = {p.ip for p in old}
    # slots whose pod (ordinal, same node id) changed across the restart
    changed = moved(before, after, {o.ip: n.ip for o, n in zip(old, tier.pods)})
    for p in tier.pods:
        assert not nodes_ips(p) & old_ips
    log("whole tier restart: SIGTERM to all exited after %.2fs; new pods served %.2fs later, "
        "converged %.2fs after that; the client's first success %.2fs after the old tier "
        "was gone (%.2fs after the new one served), client outage (last success before to "
        "first success after) %.2fs; %d slots changed pod; %d errors; %s; %d acknowledged "
        "writes read back"
        % (t_down - t0, t_ready - t_down, t_conv - t_ready, first_ok - t_down,
           first_ok - t_ready, first_ok - last_ok, changed, len(errors), load.summary(),
           checked))
    for e in errors[:5]:
        log("  error at +%.2fs (started +%.2fs): %s" % (e[1] - t0, e[0] - t0, e[2]))
    # while the old tier drains, before any proxy has exited, nothing fails
    # (proxies that all leave at once must not bounce a client between them)
    draining = [e for e in errors if e[1] < t_first_exit]
    assert not draining, draining[:5]
    assert checked == len(load.acked) > 0


# --- 3 ------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["follower", "leader"])
def test_network_cut_then_rejoin(tier, role):
    tier.launch(range(TIER))
    before = wait_converged(tier.pods)
    leader = wait_until(lambda: find_leader(tier.pods), 10, what="one leader")
    victim = leader if role == "leader" else next(p for p in tier.pods if p is not leader)
    rest = [p for p in tier.pods if p is not victim]
    pid = victim.proc.pid
    # a follower is removed by the leader after the node timeout; a cut
    # leader's lease must expire first, then its successor removes it
    bound = (NODE_TIMEOUT_MS + HB_MS + (LEASE_MS if role == "leader" else 0)) / 1000
    with Load(tier, "cut") as load:
        load.wait_ops(200)
        t0 = time.monotonic()
        tier.net.link(victim.ns, False)
        # the kubelet's readiness probe fails on a pod it cannot reach: the
        # Service stops routing new connections to it (the probe's own
        # delay is not modelled; a client that still resolves the pod meets
        # a connect timeout and tries the name again)
        tier.set_ready(victim, False)
        wait_until(lambda: converged(rest), bound + SLACK_S, interval=0.05,
                   what="the cut proxy to be removed")
        removed_s = time.monotonic() - t0
        after = slot_table(rest[0])
        # let the client run into the change and past it
        wait_until(lambda: time.monotonic() > t0 + bound + SLACK_S + 1.0, 30, interval=0.1)
        load.wait_ops(200)
        cut_errors = list(load.errors)
        t1 = time.monotonic()
        stall = load.max_gap(t0, t1)
        slow = load.slow_ops(t0)
        tier.net.link(victim.ns, True)
        victim.wait_ready()
        tier.set_ready(victim, True)
        final = wait_converged(tier.pods)
        rejoin_s = time.monotonic() - t1
        load.wait_ops(200)
        errors = list(load.errors)
    checked = verify_acked(tier, load)
    out = moved(before, after)
    back = moved(after, final)
    late = [e for e in cut_errors if e[0] > t0 + bound + SLACK_S]
    last_err = max((e[1] - t0 for e in cut_errors), default=None)
    log("network cut of the %s (%s): removed and its slots moved after %.2fs (%d slots "
        "moved, all its own); longest client stall %.2fs; client errors during the cut: %d, "
        "the last one ended at +%s (bound: %s = %.2fs); link up: rejoined as the same "
        "process after %.2fs (%d slots moved back, %d differ from before the cut); errors "
        "after the link came back: %d; "
        "%s; %d acknowledged writes read back"
        % (role, victim.ip, removed_s, out, stall, len(cut_errors),
           "%.2fs" % last_err if last_err is not None else "-",
           "lease + node timeout + heartbeat" if role == "leader" else
           "node timeout + heartbeat", bound, rejoin_s, back, moved(before, final),
           len(errors) - len(cut_errors), load.summary(), checked))
    for a, b in slow:
        log("  slow operation (redis-py retrying inside it): started +%.2fs, done +%.2fs"
            % (a - t0, b - t0))
    for e in cut_errors[:5]:
        log("  error started +%.2fs ended +%.2fs: %s" % (e[0] - t0, e[1] - t0, e[2]))
    assert all(before[s] == after[s] for s in range(SLOTS) if before[s] != victim.ip)
    assert out == before.count(victim.ip)
    assert victim.running() and victim.proc.pid == pid
    assert not late, late[:5]
    # Slow operations after the bound are logged above, not asserted: they
    # are redis-py's (its connection to the Service name can stay pinned to
    # the cut pod, so its refreshes fail and it keeps a stale map for a few
    # operations, each waiting out its own timeouts), as a client in a real
    # cluster behind kube-proxy would. What the proxies owe is asserted:
    # no error for an operation started after the bound, every
    # acknowledged write readable, only the cut proxy's slots moved.
    assert len(errors) == len(cut_errors), errors[len(cut_errors):][:5]
    assert checked == len(load.acked) > 0
