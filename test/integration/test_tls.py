"""TLS through ringslot (issue 12): a TLS-only Redis Cluster behind, ringslot
with --tls to it and a tls-port for clients, on io_uring and on epoll.

    basic        redis-cli --tls and redis-py ssl=True via the TLS port,
                 pipelines, a large value; --port 0 serves TLS only
    mTLS         no client certificate, another CA, an expired one: refused,
                 counted by reason; a client already connected is unaffected
    wrong ports  plaintext to the TLS port, TLS to the plain port: closed or
                 refused, no crash
    deadline     a client that stalls mid-handshake is closed after
                 --tls-handshake-timeout
    reload       PROXY CONFIG SET tls-cert-file and SIGHUP: new connections
                 get the new certificate, old ones keep working; a broken
                 file is refused and the old certificate stays
    failover     clients on TLS through a master's failover
    backend      a node certificate from another CA is refused (unless
                 --tls-insecure, which says so loudly); sessions resumed
    also         INFO and /metrics counters, backpressure on a TLS client,
                 session resumption, clients vanishing mid-stream, pub/sub
                 and BLPOP on private links, cluster mode with tls-cluster
                 (one proxy TLS only)

The module's `rs` runs every test that uses it on io_uring and on epoll.
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import redis

import helpers
from helpers import HOST, REDIS_CLI, RespError, closed_by_peer, unique, wait_until
from test_resilience import cluster_ok_without
from tls_certs import SERVER_SAN, _make_leaf, redis_cli_tls_args, start_tls_cluster, \
    tls_resp_client


class TlsRingslot(helpers.Ringslot):
    """ringslot with a tls-port (and, unless plain=False, its plain port),
    reaching the nodes with --tls. With plain=False the readiness probe goes
    over TLS."""

    certs = None
    plain = True
    tls_port = None

    def args(self):
        a = super().args()
        if not self.plain:
            a[a.index("--port") + 1] = "0"
        cert, key = self.certs.pair("server")
        return a + [
            "--tls-port", str(self.tls_port),
            "--tls-cert-file", self.server_cert or cert,
            "--tls-key-file", self.server_key or key,
            "--tls-ca-cert-file", self.certs.ca,
        ] + self.backend_args

    def start(self, attempts=3):
        self.tls_port = helpers.free_port()
        return super().start(attempts)

    def wait_ready(self, timeout=15.0):
        if self.plain:
            return super().wait_ready(timeout)
        key = "ringslot:probe:%d" % self.tls_port

        def probe():
            if self.proc.poll() is not None:
                raise RuntimeError("ringslot exited with %s" % self.proc.returncode)
            with tls_resp_client(self.tls_port, self.certs, timeout=2) as c:
                return c.command("SET", key, "1") == "OK" and c.command("GET", key) == b"1"
        wait_until(probe, timeout, what="ringslot TLS :%d to serve" % self.tls_port)

    def tls_client(self, client="client", **kw):
        """redis-py over TLS to the TLS port."""
        cert, key = self.certs.pair(client) if client else (None, None)
        kw.setdefault("socket_timeout", 30)
        return redis.Redis(host=HOST, port=self.tls_port, ssl=True,
                           ssl_ca_certs=self.certs.ca, ssl_certfile=cert,
                           ssl_keyfile=key, **kw)

    def tls_raw(self, client="client", timeout=10.0):
        return tls_resp_client(self.tls_port, self.certs, client=client, timeout=timeout)


def backend_args(certs, cacert=None):
    cert, key = certs.pair("client")
    return ["--tls", "--tls-cacert", cacert or certs.ca, "--tls-cert", cert, "--tls-key", key]


def start_tls_ringslot(tmpdir, cluster, io="uring", plain=True, extra_args=(),
                       server_cert=None, server_key=None, backend=None, ready=True):
    kind = type("TlsRingslotX", (TlsRingslot,), {
        "certs": cluster.certs, "plain": plain, "server_cert": server_cert,
        "server_key": server_key,
        "backend_args": backend if backend is not None else backend_args(cluster.certs),
    })
    if not ready:
        kind.wait_ready = lambda self, timeout=15.0: None
    return helpers.start_managed(tmpdir, cluster, threads=2,
                                 extra_args=["--io-backend", io] + list(extra_args), kind=kind)


@pytest.fixture(scope="module", params=["uring", "epoll"])
def rs(request, tls_cluster, tmp_path_factory):
    r = start_tls_ringslot(tmp_path_factory.mktemp("rs-" + request.param), tls_cluster,
                           io=request.param)
    yield r
    helpers.fail_on(helpers.finish_managed(r))


@pytest.fixture
def make_tls_ringslot(tls_cluster, tmp_path):
    started = []

    def make(**kw):
        d = tmp_path / ("rs%d" % len(started))
        d.mkdir()
        r = start_tls_ringslot(d, kw.pop("cluster", tls_cluster), **kw)
        started.append(r)
        return r

    yield make
    helpers.finish_all_managed(started)


def tls_info(r):
    with r.raw() as c:
        return helpers.parse_info(c.command("INFO", "stats"))


def counter(info, name):
    return int(info.get(name, 0))


def redis_cli(r, *args, client="client"):
    cmd = [REDIS_CLI, "-h", HOST, "-p", str(r.tls_port)] + \
        redis_cli_tls_args(r.certs, client) + [str(a) for a in args]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=30)


# --- basic --------------------------------------------------------------------

def test_redis_cli_tls(rs):
    p = unique("cli")
    assert redis_cli(rs, "PING").stdout.strip() == "PONG"
    for i in range(20):  # keys on every master
        out = redis_cli(rs, "SET", "%s%d" % (p, i), "v%d" % i)
        assert out.stdout.strip() == "OK", out.stdout
    for i in range(20):
        assert redis_cli(rs, "GET", "%s%d" % (p, i)).stdout.strip() == "v%d" % i
    info = tls_info(rs)
    assert counter(info, "tls_client_handshakes") >= 41, info
    assert counter(info, "tls_backend_handshakes") >= 1, info


def test_redis_py_ssl_pipeline_and_large_values(rs):
    p = unique("py")
    c = rs.tls_client()
    try:
        pipe = c.pipeline(transaction=False)
        for i in range(2000):
            pipe.set("%s%d" % (p, i), "value-%d" % i)
        assert all(pipe.execute())
        pipe = c.pipeline(transaction=False)
        for i in range(2000):
            pipe.get("%s%d" % (p, i))
        assert pipe.execute() == [b"value-%d" % i for i in range(2000)]
        big = os.urandom(3 * 1024 * 1024 + 17)  # many records both ways
        assert c.set(p + "big", big)
        assert c.get(p + "big") == big
        tag = "{%s}" % p  # one slot: MGET without cross-slot splitting
        assert c.mset({tag + str(i): str(i) for i in range(100)})
        assert c.mget([tag + str(i) for i in range(100)]) == [b"%d" % i for i in range(100)]
    finally:
        c.close()
    # the plain port serves the same data
    with rs.raw() as r:
        assert r.command("GET", p + "7") == b"value-7"


def test_tls_only_port_zero(make_tls_ringslot):
    r = make_tls_ringslot(plain=False, io="epoll")
    with r.tls_raw() as c:
        assert c.command("PING") == "PONG"
        info = helpers.parse_info(c.command("INFO", "server"))
        slots = c.command("CLUSTER", "SLOTS")
    assert info["tcp_port"] == "0" and info["tls_port"] == str(r.tls_port), info
    assert slots[0][2][1] == r.tls_port, slots  # cluster clients come back over TLS
    with pytest.raises(OSError):
        socket.create_connection((HOST, r.port), timeout=2).close()


# --- mutual TLS ----------------------------------------------------------------

def refused(r, client):
    """True if a client presenting `client`'s certificate (None: none) gets
    no service: the handshake fails, or the first read finds the
    connection closed (TLS 1.3 verifies the client after its Finished)."""
    try:
        with r.tls_raw(client=client, timeout=5) as c:
            c.command("PING")
    except (ssl.SSLError, ConnectionError, OSError, helpers.ConnectionClosed):
        return True
    return False


def test_mutual_tls_refusals(rs):
    before = tls_info(rs)
    with rs.tls_raw() as good:
        assert good.command("SET", "mtls:k", "1") == "OK"
        assert refused(rs, None)
        assert refused(rs, "other")
        assert refused(rs, "expired")
        assert good.command("GET", "mtls:k") == b"1"  # unaffected
    after = tls_info(rs)
    for reason in ("no_client_cert", "unknown_ca", "expired"):
        name = "tls_client_failures_" + reason
        assert counter(after, name) > counter(before, name), (name, after)
    assert rs.running()


def test_auth_clients_optional_and_no(make_tls_ringslot):
    r = make_tls_ringslot(extra_args=["--tls-auth-clients", "optional"])
    assert not refused(r, None)      # no certificate: fine
    assert refused(r, "other")       # one that does not verify: refused
    r2 = make_tls_ringslot(extra_args=["--tls-auth-clients", "no"])
    assert not refused(r2, None)
    assert not refused(r2, "other")  # not even asked for


# --- wrong protocol on a port ----------------------------------------------------

def test_plaintext_to_tls_port_and_tls_to_plain_port(rs):
    before = tls_info(rs)
    s = socket.create_connection((HOST, rs.tls_port), timeout=5)
    try:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        wait_until(lambda: closed_by_peer(s), 10, what="plaintext client closed")
    finally:
        s.close()
    after = tls_info(rs)
    assert counter(after, "tls_client_failures_plaintext") > \
        counter(before, "tls_client_failures_plaintext"), after
    # TLS to the plain port: a RESP port does not answer a ClientHello
    ctx = rs.certs.ssl_context()
    raw = socket.create_connection((HOST, rs.port), timeout=3)
    with pytest.raises((ssl.SSLError, OSError)):
        ctx.wrap_socket(raw, server_hostname=HOST).close()
    raw.close()
    with rs.raw() as c:
        assert c.command("PING") == "PONG"
    with rs.tls_raw() as c:
        assert c.command("PING") == "PONG"


# --- handshake deadline ------------------------------------------------------------

def test_stalled_handshake_is_closed(make_tls_ringslot):
    r = make_tls_ringslot(extra_args=["--tls-handshake-timeout", "300"])
    ctx = r.certs.ssl_context()
    # the first bytes of a real ClientHello, then nothing
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outg, server_hostname=HOST)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outg.read()
    stalled = [socket.create_connection((HOST, r.tls_port), timeout=5) for _ in range(2)]
    stalled[0].sendall(hello[:20])  # mid-record
    try:
        with r.tls_raw() as good:  # an honest client at the same time
            assert good.command("PING") == "PONG"
            for s in stalled:
                wait_until(lambda s=s: closed_by_peer(s), 10, what="stalled client closed")
            assert good.command("PING") == "PONG"
    finally:
        for s in stalled:
            s.close()
    assert counter(tls_info(r), "tls_client_failures_timeout") >= 2


# --- certificate reload ---------------------------------------------------------------

def served_der(r):
    ctx = r.certs.ssl_context()
    with socket.create_connection((HOST, r.tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            return s.getpeercert(binary_form=True)


def der_of(path):
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_certificate_reload(tls_cluster, make_tls_ringslot, tmp_path):
    certs = tls_cluster.certs
    name = "server-b-%d" % os.getpid()  # a second server certificate, same CA
    _make_leaf(certs.dir, name, "ca", san=SERVER_SAN)
    a_crt, a_key = certs.pair("server")
    b_crt, b_key = certs.pair(name)
    live_crt, live_key = str(tmp_path / "live.crt"), str(tmp_path / "live.key")
    shutil.copy(a_crt, live_crt)
    shutil.copy(a_key, live_key)
    r = make_tls_ringslot(server_cert=live_crt, server_key=live_key)
    assert served_der(r) == der_of(a_crt)
    old = r.tls_raw()
    try:
        assert old.command("SET", "reload:k", "1") == "OK"
        # the new pair in place; PROXY CONFIG SET of the file rebuilds
        shutil.copy(b_crt, live_crt)
        shutil.copy(b_key, live_key)
        with r.raw() as c:
            assert c.command("PROXY", "CONFIG", "SET", "tls-cert-file", live_crt) == "OK"
        assert served_der(r) == der_of(b_crt)
        assert old.command("GET", "reload:k") == b"1"  # the old connection goes on
        # a broken file or a missing one: refused, the config and B stay
        with open(live_crt, "w") as f:
            f.write("not a certificate\n")
        with r.raw() as c:
            reply = c.command("PROXY", "CONFIG", "SET", "tls-cert-file", live_crt)
            assert isinstance(reply, RespError) and "tls-cert-file" in str(reply), reply
            reply = c.command("PROXY", "CONFIG", "SET", "tls-cert-file", "/nonexistent/x.crt")
            assert isinstance(reply, RespError), reply
            assert c.command("PROXY", "CONFIG", "GET", "tls-cert-file") == \
                [b"tls-cert-file", live_crt.encode()]
        assert served_der(r) == der_of(b_crt)
        # SIGHUP re-reads the files: back to A
        shutil.copy(a_crt, live_crt)
        shutil.copy(a_key, live_key)
        r.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: served_der(r) == der_of(a_crt), 10, what="SIGHUP reload")
        assert old.command("GET", "reload:k") == b"1"
    finally:
        old.close()
    # the SIGHUP reload counts once both sides are rebuilt: the client side
    # may already serve A a moment before
    wait_until(lambda: counter(tls_info(r), "tls_reloads") >= 2, 10, what="tls_reloads 2")
    assert counter(tls_info(r), "tls_reload_failures") >= 1


# --- failover -------------------------------------------------------------------------

@pytest.fixture
def private_tls_cluster(tmp_path):
    c = start_tls_cluster(tmp_path / "fo", masters=3, replicas=1, node_timeout=2000)
    try:
        yield c
    finally:
        c.stop()


def test_failover_with_tls_clients(private_tls_cluster, make_tls_ringslot):
    cluster = private_tls_cluster
    r = make_tls_ringslot(cluster=cluster)
    p = unique("fo")
    keys = ["%s%d" % (p, i) for i in range(200)]
    stop = threading.Event()
    ops, wrong = [], []

    def run(part):
        c = r.tls_client()
        acked = {}
        seq = 0
        while not stop.is_set():
            k = part[seq % len(part)]
            seq += 1
            v = b"%d" % seq
            t0 = time.monotonic()
            try:
                c.set(k, v)
                acked[k] = v
                got = c.get(k)
                if got != v:
                    wrong.append((k, got, v))
                ops.append((t0, True))
            except redis.RedisError:
                ops.append((t0, False))
                time.sleep(0.01)
        c.close()

    threads = [threading.Thread(target=run, args=(keys[i::2],), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    wait_until(lambda: len(ops) > 50, 15, what="load running")
    victim = cluster.masters()[0]
    survivor = [m for m in cluster.masters() if m != victim][0]
    cluster.kill(victim)
    wait_until(lambda: cluster_ok_without(cluster, victim, survivor), 30, interval=0.05,
               what="failover of :%d" % victim)
    t_ok = time.monotonic()
    wait_until(lambda: sum(1 for t0, ok in ops if ok and t0 > t_ok + 1.0) > 100, 30,
               what="service after the failover")
    stop.set()
    for t in threads:
        t.join(30)
    assert not wrong, wrong[:5]
    late_errors = [t0 for t0, ok in ops if not ok and t0 > t_ok + 1.0]
    assert not late_errors, len(late_errors)
    errors = [t0 for t0, ok in ops if not ok]
    assert len(errors) <= 2, len(errors)  # at most a write in flight per client


# --- the backend side ------------------------------------------------------------------

def test_backend_certificate_verified(tls_cluster, make_tls_ringslot):
    certs = tls_cluster.certs
    other = certs.path("other-ca.crt")
    r = make_tls_ringslot(backend=backend_args(certs, cacert=other), ready=False)
    wait_until(lambda: "TLS handshake with node" in r.log_text() and
               "unknown_ca" in r.log_text(), 20, what="a refused node certificate")
    assert r.running()
    r2 = make_tls_ringslot(backend=backend_args(certs, cacert=other) + ["--tls-insecure"])
    assert "--tls-insecure" in r2.log_text()
    with r2.tls_raw() as c:
        assert c.command("PING") == "PONG"


def test_metrics_and_info(make_tls_ringslot):
    console = helpers.free_port()
    r = make_tls_ringslot(extra_args=["--console-port", str(console)])
    with r.tls_raw() as c:
        assert c.command("PING") == "PONG"
        server = helpers.parse_info(c.command("INFO", "server"))
    assert server["tls_port"] == str(r.tls_port)
    assert refused(r, "other")
    import urllib.request
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, console), timeout=5) as f:
        text = f.read().decode()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines()
                 if line.startswith("ringslot_tls_"))
    assert int(lines['ringslot_tls_handshakes_total{side="client"}']) >= 1, lines
    assert int(lines['ringslot_tls_handshakes_total{side="backend"}']) >= 1, lines
    assert int(lines['ringslot_tls_handshake_failures_total'
                     '{side="client",reason="unknown_ca"}']) >= 1, lines


# --- flow control, resumption, abrupt ends -----------------------------------------------

def test_backpressure_over_tls(make_tls_ringslot):
    """A client that writes a whole pipeline before reading, with a small
    reply budget: ringslot stops reading its TLS socket and starts again
    (the filter's recv cancelled and re-armed), nothing lost or reordered."""
    r = make_tls_ringslot(io="epoll", extra_args=["--client-reply-budget", "256kb"])
    p = unique("bp")
    value = os.urandom(20 * 1024)
    with r.tls_raw(timeout=60) as c:
        assert c.command("SET", p, value) == "OK"
        replies = c.pipeline([("GET", p)] * 1000 + [("ECHO", "end")])
    assert replies[:-1] == [value] * 1000 and replies[-1] == b"end"


def test_session_resumption(rs):
    ctx = rs.certs.ssl_context()
    before = tls_info(rs)
    with socket.create_connection((HOST, rs.tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert s.recv(64) == b"+PONG\r\n"  # the tickets came before it
            session = s.session
    with socket.create_connection((HOST, rs.tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST, session=session) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            assert s.recv(64) == b"+PONG\r\n"
            assert s.session_reused
    after = tls_info(rs)
    assert counter(after, "tls_client_resumed_handshakes") > \
        counter(before, "tls_client_resumed_handshakes"), after
    # towards the nodes: the control thread's periodic connections (and
    # every link after the first to a node) offer the node's last session
    wait_until(lambda: counter(tls_info(rs), "tls_backend_resumed_handshakes") >= 1, 15,
               what="a resumed session with a node")


def test_clients_vanishing_mid_stream(rs):
    """Clients that close (or reset) with requests and replies in flight,
    mid-handshake and mid-record: nothing leaks or crashes (ASan), the
    others are served."""
    p = unique("gone")
    big = os.urandom(200 * 1024)
    with rs.tls_raw() as c:
        assert c.command("SET", p, big) == "OK"
    ctx = rs.certs.ssl_context()
    for i in range(20):
        raw = socket.create_connection((HOST, rs.tls_port), timeout=5)
        if i % 4 == 0:  # gone during the handshake
            raw.sendall(b"\x16\x03\x01\x00\x05ab")
            raw.close()
            continue
        s = ctx.wrap_socket(raw, server_hostname=HOST)
        s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(p), p.encode()) * 20)
        if i % 4 == 1:
            s.recv(1000)  # part of a record's plaintext read
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    with rs.tls_raw() as c:
        assert c.command("GET", p) == big
    assert rs.running()


# --- cluster mode: the cluster port over TLS -----------------------------------------------

def test_cluster_mode_over_tls(make_tls_ringslot, tmp_path):
    """Two proxies in cluster mode with tls-cluster yes in front of the TLS
    cluster: the lease store (the backend) is reached over TLS (--tls), the
    proxies talk over TLS on their cluster ports and agree on one map; a
    plaintext client on a cluster port is closed."""
    from test_cluster_mode import PASSWORD, cluster_args
    name = "tls-" + os.urandom(5).hex()
    # the second one TLS only (--port 0): it announces its TLS port, and
    # its cluster port is that + 10000, as Redis's bus
    proxies = [make_tls_ringslot(extra_args=cluster_args(name, tmp_path / ("id-%d" % i),
                                                         extra=["--tls-cluster", "yes"]),
                                 plain=(i == 0))
               for i in range(2)]

    def cport_of(r):
        return (r.port if r.plain else r.tls_port) + 10000

    def cport_cmd(r, *args):
        with tls_resp_client(cport_of(r), r.certs, timeout=5) as c:
            assert c.command("AUTH", PASSWORD) == "OK"
            return c.command(*args)

    def agreed():
        heads = {cport_cmd(r, "PROXY", "CLUSTER", "MAP").decode().split("\n", 1)[0]
                 for r in proxies}
        return len(heads) == 1 and next(iter(heads)).split(" ")[4] == "2"
    wait_until(agreed, 30, interval=0.2, what="two proxies on one map over TLS")
    members = cport_cmd(proxies[0], "PROXY", "CLUSTER", "MEMBERS")
    assert len(members) == 2 and sum(b"leader" in m for m in members) == 1, members
    s = socket.create_connection((HOST, cport_of(proxies[1])), timeout=5)
    try:
        s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
        wait_until(lambda: closed_by_peer(s), 10, what="plaintext cport client closed")
    finally:
        s.close()
    ports = set()
    for r in proxies:
        with r.tls_raw() as c:
            assert c.command("SET", "cm-tls:%s" % name, "1") == "OK"
            ports |= {entry[2][1] for entry in c.command("CLUSTER", "SLOTS")}
    assert ports == {proxies[0].port, proxies[1].tls_port}, ports


def test_pubsub_and_blocking_calls(rs):
    """Private and subscriber links over TLS: SUBSCRIBE through the TLS
    port gets what a plain client PUBLISHes; BLPOP waits on its own link."""
    chan = unique("chan")
    sub = rs.tls_client()
    p = sub.pubsub()
    try:
        p.subscribe(chan)
        assert p.get_message(timeout=5)["type"] == "subscribe"
        with rs.raw() as c:
            wait_until(lambda: c.command("PUBLISH", chan, "hello") >= 1, 10,
                       what="the subscription to reach the node")
        msg = None
        for _ in range(50):
            msg = p.get_message(timeout=0.2)
            if msg and msg["type"] == "message":
                break
        assert msg and msg["data"] == b"hello", msg
    finally:
        p.close()
        sub.close()
    key = unique("list")
    c = rs.tls_client()
    got = []
    t = threading.Thread(target=lambda: got.append(c.blpop([key], timeout=10)))
    t.start()
    try:
        with rs.tls_raw() as other:  # before or after BLPOP reaches the node: both fine
            assert other.command("RPUSH", key, "x") >= 1
        t.join(15)
        assert got == [(key.encode(), b"x")], got
    finally:
        c.close()
