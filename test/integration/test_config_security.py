"""Issue 4: configuration, security, logging and observability.

Config files (redis-cluster-proxy's format with include) and --check-config;
options that change what a client sees (--bind, --unixsocket, --tcp-backlog,
--enable-cross-slot, PROXY CONFIG SET); --requirepass as Redis 7; admin
gating of PROXY CONFIG SET / SHUTDOWN / DEBUG; backend --auth / --auth-user;
no password in any output; the log (levels, --dump-queries, SIGHUP reopen);
--daemonize with --pidfile; the console (/metrics in Prometheus text format,
/healthz, /readyz, /info) and its slot-coverage metric across a failover.

Tests that break or reconfigure nodes use make_cluster; the rest share the
session cluster."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import helpers
from helpers import RespError, wait_until

PASSWORD = "rq-Secret-417"       # --requirepass
ADMIN_PASSWORD = "adm-Secret-902"  # --admin-password
BACKEND_PASSWORD = "be-Secret-233"  # the backend's requirepass (--auth)
USER_PASSWORD = "usr-Secret-661"   # an ACL user's password (--auth-user)
SECRETS = (PASSWORD, ADMIN_PASSWORD, BACKEND_PASSWORD, USER_PASSWORD)

NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


# --- starting ringslot with another readiness probe ---------------------------

class AuthRingslot(helpers.Ringslot):
    """Ready once PING answers after AUTH (--requirepass)."""
    password = PASSWORD

    def wait_ready(self, timeout=15.0):
        def probe():
            if self.proc.poll() is not None:
                raise RuntimeError("ringslot exited with %s" % self.proc.returncode)
            with helpers.RespClient(helpers.HOST, self.port, timeout=2) as c:
                return (c.command("AUTH", self.password) == "OK" and
                        c.command("SET", "probe:auth", "1") == "OK")
        wait_until(probe, timeout, what="ringslot :%d to serve with AUTH" % self.port)


class PingRingslot(helpers.Ringslot):
    """Ready once it answers PING (which needs no backend)."""

    def wait_ready(self, timeout=15.0):
        def probe():
            if self.proc.poll() is not None:
                raise RuntimeError("ringslot exited with %s" % self.proc.returncode)
            with helpers.RespClient(helpers.HOST, self.port, timeout=2) as c:
                return c.command("PING") == "PONG"
        wait_until(probe, timeout, what="ringslot :%d to answer PING" % self.port)


@pytest.fixture
def spawn(request, tmp_path):
    """spawn(kind, extra_args, cluster=None, entry_points=None): start a
    ringslot of class `kind`, watched like make_ringslot's (sanitizer
    reports, exit code on SIGTERM)."""
    started = []

    def start(kind=helpers.Ringslot, extra_args=(), cluster=None, entry_points=None,
              threads=2):
        if entry_points is None:
            cluster = cluster or request.getfixturevalue("cluster")
            entry_points = cluster.addrs(cluster.masters())
        d = tmp_path / ("rs%d" % len(started))
        d.mkdir()
        rs = helpers.start_managed(d, cluster, threads=threads, entry_points=entry_points,
                                   extra_args=extra_args, kind=kind)
        started.append(rs)
        return rs

    yield start
    helpers.finish_all_managed(started)


def run_ringslot(*args, timeout=20, env=None):
    """Run the binary to completion (--check-config, --daemonize)."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([helpers.ringslot_binary()] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=e)


def http_get(port, path, method="GET", timeout=5):
    """(status, body) of one request to the console."""
    req = urllib.request.Request("http://%s:%d%s" % (helpers.HOST, port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def non_loopback_address():
    """A local IPv4 address that is not loopback, or None."""
    try:
        out = subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                             timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    for a in out:
        if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", a) and not a.startswith("127."):
            return a
    return None


def config_get(c, name):
    reply = c.command("PROXY", "CONFIG", "GET", name)
    assert isinstance(reply, list), reply
    return {k.decode(): v for k, v in zip(reply[::2], reply[1::2])}


# --- config files and --check-config ------------------------------------------

def write_rcp_config(d):
    """An rcp-style file with comments, quotes and an include."""
    (d / "secrets.conf").write_text(
        "# included file\n"
        'requirepass "%s"\n'
        "admin-password %s\n" % (PASSWORD, ADMIN_PASSWORD))
    (d / "proxy.conf").write_text(
        "# redis-cluster-proxy style\n"
        "threads 2   # trailing comment\n"
        "max-clients 500\n"
        "enable-cross-slot yes\n"
        "log-level debug\n"
        "dump-queries yes\n"
        "tcp-backlog 123\n"
        "connections-pool-size 7\n"
        "include secrets.conf\n")
    return d / "proxy.conf"


def test_check_config_rcp_file_with_include(tmp_path):
    conf = write_rcp_config(tmp_path)
    with open(conf, "a") as f:
        f.write("cluster 127.0.0.1:7000\n")
    r = run_ringslot("--check-config", "-c", conf, "--log-level", "warning")
    assert r.returncode == 0, r.stderr
    lines = set(r.stdout.splitlines())
    for want in ("threads 2", "maxclients 500", "enable-cross-slot yes", "tcp-backlog 123",
                 "log-level warning", "connections-pool-size 7", "requirepass ********",
                 "admin-password ********", "entry-point 127.0.0.1:7000"):
        assert want in lines, (want, r.stdout)
    for s in SECRETS:
        assert s not in r.stdout + r.stderr

    (tmp_path / "bad.conf").write_text("port 7000\n\nfrobnicate yes\n")
    r = run_ringslot("--check-config", "-c", tmp_path / "bad.conf", "127.0.0.1:7000")
    assert r.returncode == 1
    assert "bad.conf:3" in r.stderr and "frobnicate" in r.stderr


def test_config_file_options_take_effect(spawn, tmp_path):
    conf = write_rcp_config(tmp_path)
    rs = spawn(AuthRingslot, ["-c", conf, "--connections-pool-size", "9"])
    with rs.raw() as c:
        assert c.command("GET", "x") == RespError(NOAUTH)
        assert c.command("AUTH", PASSWORD) == "OK"
        got = config_get(c, "*")
        assert got["maxclients"] == 500
        assert got["enable-cross-slot"] == 1
        assert got["connections-pool-size"] == 9  # the command line wins
        assert got["requirepass"] == b"********"
        assert got["log-level"] == b"debug"
        # enable-cross-slot: a multi-slot MGET is split, not refused
        assert c.command("MSET", "cfa", "1", "cfb", "2") == "OK"
        assert c.command("MGET", "cfa", "cfb") == [b"1", b"2"]
    # log-level debug + dump-queries from the file
    wait_until(lambda: "query from client" in rs.log_text(), 5, what="a dumped query")
    assert "MGET cfa cfb" in rs.log_text() or "mget cfa cfb" in rs.log_text().lower()


# --- --requirepass ------------------------------------------------------------

def test_requirepass_flows(spawn):
    rs = spawn(AuthRingslot, ["--requirepass", PASSWORD])
    with rs.raw() as c:
        for cmd in (("GET", "k"), ("PING",), ("PROXY", "INFO"), ("CLUSTER", "SLOTS"),
                    ("MULTI",), ("SUBSCRIBE", "ch")):
            assert c.command(*cmd) == RespError(NOAUTH), cmd
        assert c.command("HELLO", "3") == RespError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise "
            "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
            "client and select the RESP protocol version at the same time")
        assert c.command("AUTH", "wrong") == RespError(WRONGPASS)
        assert c.command("AUTH", "default", "wrong") == RespError(WRONGPASS)
        assert c.command("AUTH", "someone", PASSWORD) == RespError(WRONGPASS)
        assert c.command("AUTH") == RespError("ERR wrong number of arguments for 'auth' command")
        assert c.command("GET", "k") == RespError(NOAUTH)
        assert c.command("AUTH", PASSWORD) == "OK"
        assert c.command("SET", "rp:k", "v") == "OK"
        assert c.command("AUTH", "wrong") == RespError(WRONGPASS)
        assert c.command("GET", "rp:k") == b"v"  # a failed AUTH keeps the session
        assert c.command("RESET") == "RESET"
        assert c.command("GET", "rp:k") == RespError(NOAUTH)  # RESET signs out
        assert c.command("AUTH", "default", PASSWORD) == "OK"
        assert c.command("GET", "rp:k") == b"v"
        assert c.command("QUIT") == "OK"
    with rs.raw() as c:
        assert c.command("HELLO", "3", "AUTH", "default", "nope") == RespError(WRONGPASS)
        assert c.command("GET", "rp:k") == RespError(NOAUTH)
        hello = c.command("HELLO", "3", "AUTH", "default", PASSWORD)
        assert hello[b"proto"] == 3 and hello[b"server"] == b"ringslot"
        assert c.command("GET", "rp:k") == b"v"
    with rs.raw() as c:  # QUIT is allowed before AUTH
        assert c.command("QUIT") == "OK"
    r = rs.client(password=PASSWORD)  # redis-py's own AUTH handshake
    assert r.get("rp:k") == b"v"
    r.close()


def test_auth_without_requirepass(ringslot):
    with ringslot.raw() as c:
        assert c.command("AUTH", "x") == RespError(
            "ERR AUTH <password> called without any password configured for the default "
            "user. Are you sure your configuration is correct?")
        assert c.command("AUTH", "default", "anything") == "OK"  # as Redis's nopass
        assert c.command("AUTH", "someone", "x") == RespError(WRONGPASS)  # the backend says so
        assert c.command("HELLO", "3", "AUTH", "default", "x")[b"proto"] == 3


def test_auth_as_another_acl_user(cluster, ringslot):
    """A client that AUTHs as another backend ACL user is checked by the
    backend, and from then on everything it sends (fan-outs too) runs as that
    user, over links keyed by its identity; RESET goes back to --auth."""
    masters = cluster.masters()
    for port in masters:
        cluster.execute(port, "ACL", "SETUSER", "rs_alice", "on", ">s3cret", "~alice:*", "+@all")
    try:
        with ringslot.raw() as c:
            assert c.command("AUTH", "rs_alice", "wrong") == RespError(WRONGPASS)
            assert c.command("SET", "rs_bob:1", "x") == "OK"  # still the default identity
            assert c.command("AUTH", "rs_alice", "s3cret") == "OK"
            assert c.command("SET", "alice:1", "a") == "OK"
            denied = c.command("SET", "rs_bob:2", "x")
            assert isinstance(denied, RespError) and str(denied).startswith("NOPERM")
            assert isinstance(c.command("DBSIZE"), int)  # fan-out as alice
            assert c.command("RESET") == "RESET"
            assert c.command("SET", "rs_bob:3", "x") == "OK"
    finally:
        for port in masters:
            cluster.execute(port, "ACL", "DELUSER", "rs_alice")


# --- admin gating ---------------------------------------------------------------

ADMIN_REFUSED = ("NOPERM PROXY CONFIG SET, PROXY SHUTDOWN and PROXY DEBUG are only "
                 "accepted from loopback and unix socket clients, or after PROXY AUTH "
                 "<admin-password>")


def test_admin_gating(spawn, tmp_path):
    sock = str(tmp_path / "rs.sock")
    rs = spawn(extra_args=["--admin-password", ADMIN_PASSWORD, "--unixsocket", sock])
    remote = non_loopback_address()
    if remote is None:
        pytest.skip("no non-loopback address on this host to connect from")
    with helpers.RespClient(remote, rs.port) as c:
        assert c.command("PROXY", "CONFIG", "GET", "log-level") == [b"log-level", b"info"]
        assert c.command("PROXY", "CONFIG", "SET", "log-level", "debug") == RespError(ADMIN_REFUSED)
        assert c.command("PROXY", "SHUTDOWN") == RespError(ADMIN_REFUSED)
        assert c.command("PROXY", "DEBUG", "SEGFAULT") == RespError(ADMIN_REFUSED)
        assert c.command("PROXY", "AUTH", "wrong") == RespError(WRONGPASS)
        assert c.command("PROXY", "CONFIG", "SET", "log-level", "debug") == RespError(ADMIN_REFUSED)
        assert c.command("PROXY", "AUTH", ADMIN_PASSWORD) == "OK"
        assert c.command("PROXY", "CONFIG", "SET", "log-level", "warning") == "OK"
        assert c.command("PROXY", "CONFIG", "GET", "log-level") == [b"log-level", b"warning"]
        assert c.command("PROXY", "DEBUG", "NOPE") == RespError(
            "ERR Unknown subcommand or wrong number of arguments for 'PROXY DEBUG'. "
            "Try PROXY DEBUG HELP")
    with rs.raw() as c:  # loopback: no PROXY AUTH needed
        assert c.command("PROXY", "CONFIG", "SET", "log-level", "info") == "OK"
    u = socket.socket(socket.AF_UNIX)
    u.connect(sock)
    u.sendall(helpers.encode_command("PROXY", "CONFIG", "SET", "log-level", "success"))
    assert u.recv(100) == b"+OK\r\n"
    u.close()
    with rs.raw() as c:
        assert c.command("PROXY", "CONFIG", "SET", "threads", "3") == RespError(
            "ERR This config option is read-only")
        assert c.command("PROXY", "CONFIG", "SET", "nope", "3") == RespError(
            "ERR Invalid config option")
        assert c.command("PROXY", "CONFIG", "GET", "nope") == RespError(
            "ERR Invalid config option")


def test_proxy_auth_without_admin_password(ringslot):
    with ringslot.raw() as c:
        reply = c.command("PROXY", "AUTH", "x")
        assert isinstance(reply, RespError) and "admin password" in str(reply)


def test_proxy_debug_and_shutdown(cluster, tmp_path):
    # Unmanaged processes: they are meant to die (ASan reports the SEGV).
    binary = helpers.ringslot_binary()
    cl = cluster.addrs(cluster.masters())
    for args, wait_reply in ((["PROXY", "DEBUG", "SEGFAULT"], False),
                             (["PROXY", "DEBUG", "ASSERT"], False),
                             (["PROXY", "SHUTDOWN", "ASAP"], False),
                             (["PROXY", "SHUTDOWN"], False)):
        rs = PingRingslot(binary, cl, workdir=str(tmp_path), threads=2)
        rs.start()
        try:
            with rs.raw() as c:
                c.send_command(*args)
                with pytest.raises((helpers.ConnectionClosed, ConnectionResetError)):
                    c.read_reply()
            rs.proc.wait(15)
            if args[1] == "DEBUG":
                assert rs.proc.returncode != 0, args
            else:
                assert rs.proc.returncode == 0, (args, rs.log_tail())
            text = rs.log_text()
            assert ("PROXY %s" % " ".join(args[1:])) in text, text[-2000:]
        finally:
            helpers.stop_process(rs.proc, 5)


# --- options --------------------------------------------------------------------

def test_runtime_config_set_takes_effect(ringslot):
    with ringslot.raw() as c:
        assert c.command("SET", "rcs:a", "1") == "OK"
        assert c.command("SET", "rcs:b", "2") == "OK"
        assert c.command("MGET", "rcs:a", "rcs:b") == RespError(
            "CROSSSLOT Keys in request don't hash to the same slot")
        assert c.command("PROXY", "CONFIG", "SET", "enable-cross-slot", "yes") == "OK"
        try:
            # every worker reads the new config snapshot within a loop or two
            for _ in range(20):
                with ringslot.raw() as d:
                    assert d.command("MGET", "rcs:a", "rcs:b") == [b"1", b"2"]
        finally:
            assert c.command("PROXY", "CONFIG", "SET", "enable-cross-slot", "no") == "OK"
        assert isinstance(c.command("PROXY", "CONFIG", "SET", "log-level", "bogus"), RespError)
        assert c.command("PROXY", "CONFIG", "GET", "log-level") == [b"log-level", b"info"]


def test_bind_unixsocket_backlog(spawn, tmp_path):
    sock = str(tmp_path / "proxy.sock")
    rs = spawn(extra_args=["--bind", "127.0.0.1", "--bind", "::1", "--unixsocket", sock,
                           "--unixsocketperm", "700", "--tcp-backlog", "77"])
    assert os.stat(sock).st_mode & 0o777 == 0o700
    u = socket.socket(socket.AF_UNIX)
    u.connect(sock)
    u.sendall(helpers.encode_command("SET", "bind:k", "unix"))
    assert u.recv(100) == b"+OK\r\n"
    u.close()
    # worker 0 accepts every unix client and hands each to the least-loaded
    # worker: both threads serve them
    threads = set()
    conns = []
    for _ in range(6):
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(helpers.encode_command("PROXY", "CLIENT", "THREAD"))
        conns.append(s)
    for s in conns:
        reply = s.recv(100)
        assert reply.startswith(b":"), reply
        threads.add(int(reply[1:].strip()))
        s.sendall(helpers.encode_command("GET", "bind:k"))
        assert s.recv(100) == b"$4\r\nunix\r\n"
        s.close()
    assert threads == {0, 1}, threads
    with helpers.RespClient("::1", rs.port) as c:
        assert c.command("GET", "bind:k") == b"unix"
    remote = non_loopback_address()
    if remote:
        with pytest.raises(OSError):
            socket.create_connection((remote, rs.port), timeout=2).close()
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-ltnH", "sport = :%d" % rs.port], capture_output=True,
                             text=True).stdout
        backlogs = {int(line.split()[2]) for line in out.splitlines() if line.strip()}
        assert backlogs == {77}, out
    rs.stop()
    assert not os.path.exists(sock)  # removed on exit


def test_sighup_reopens_log(spawn, tmp_path):
    log = tmp_path / "ringslot.log"
    rs = spawn(extra_args=["--logfile", str(log)])
    wait_until(lambda: "listening on port" in log.read_text(), 5, what="the startup line")
    os.rename(log, tmp_path / "ringslot.log.1")
    rs.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: log.exists() and "log file reopened" in log.read_text(), 5,
               what="the log file reopened")
    with rs.raw() as c:
        assert c.command("PROXY", "CONFIG", "SET", "log-level", "info") == "OK"
    wait_until(lambda: "PROXY CONFIG SET log-level" in log.read_text(), 5,
               what="a line in the new file")
    old = (tmp_path / "ringslot.log.1").read_text()
    assert "listening on port" in old and "PROXY CONFIG SET" not in old
    # the line format: pid:role dd Mon yyyy hh:mm:ss.mmm <mark> message
    line = log.read_text().splitlines()[0]
    assert re.match(r"^\d+:(M|C|K|W\d+) \d\d \w{3} \d{4} \d\d:\d\d:\d\d\.\d{3} [.\-*#!] ", line), line
    assert "\x1b[" not in log.read_text()  # no colours in a file


def test_daemonize_and_pidfile(cluster, tmp_path):
    pidfile = tmp_path / "rs.pid"
    log = tmp_path / "rs.log"
    port = helpers.free_port()
    env = {"ASAN_OPTIONS": "detect_leaks=1:log_path=%s" % (tmp_path / "asan")}
    t0 = time.monotonic()
    r = run_ringslot("--daemonize", "--pidfile", pidfile, "--logfile", log, "--port", port,
                     "--threads", "2", *cluster.addrs(cluster.masters()), env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    pid = int(pidfile.read_text())
    try:
        # the parent returned only once the child listens
        with helpers.RespClient(helpers.HOST, port) as c:
            assert c.command("PING") == "PONG"
        assert time.monotonic() - t0 < 15
        assert os.getsid(pid) == pid  # a session of its own
    finally:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not os.path.exists("/proc/%d" % pid) or
                   open("/proc/%d/stat" % pid).read().split()[2] == "Z", 15,
                   what="the daemon to exit")
    wait_until(lambda: not pidfile.exists(), 5, what="the pidfile to go")
    assert "bye" in log.read_text()
    assert not list(tmp_path.glob("asan*")), "sanitizer report from the daemon"

    # a failure before listening comes back as the exit code
    busy = socket.socket()
    busy.bind((helpers.HOST, 0))
    busy.listen()
    try:
        r = run_ringslot("--daemonize", "--pidfile", tmp_path / "other.pid", "--bind",
                         helpers.HOST, "--port", busy.getsockname()[1],
                         *cluster.addrs(cluster.masters()), env=env)
        assert r.returncode == 1
        assert "Could not listen" in r.stdout + r.stderr
        assert not (tmp_path / "other.pid").exists()
    finally:
        busy.close()


# --- backend credentials and no password anywhere ---------------------------------

def protect_cluster(cl):
    """requirepass on every node, plus an ACL user for --auth-user."""
    for port in cl.ports:
        cl.execute(port, "ACL", "SETUSER", "proxyuser", "on", ">" + USER_PASSWORD,
                   "~*", "&*", "+@all")
        cl.execute(port, "CONFIG", "SET", "masterauth", BACKEND_PASSWORD)
        cl.execute(port, "CONFIG", "SET", "requirepass", BACKEND_PASSWORD)


def test_backend_auth_and_no_password_in_output(make_cluster, spawn, tmp_path):
    cl = make_cluster(masters=3, replicas=0)
    entry = cl.addrs()
    protect_cluster(cl)
    console = helpers.free_port()
    secret_args = ["-a", BACKEND_PASSWORD, "--requirepass", PASSWORD, "--admin-password",
                   ADMIN_PASSWORD, "--log-level", "debug", "--dump-queries", "--dump-buffer",
                   "--dump-queues", "--console-port", str(console)]
    rs = spawn(AuthRingslot, secret_args, entry_points=entry)
    outputs = []
    with rs.raw() as c:
        assert c.command("AUTH", "wrong") == RespError(WRONGPASS)
        assert c.command("AUTH", PASSWORD) == "OK"
        c.command("HELLO", "2", "AUTH", "default", PASSWORD)
        c.command("PROXY", "AUTH", ADMIN_PASSWORD)
        c.command("PROXY", "CONFIG", "SET", "requirepass", PASSWORD)
        c.command("MIGRATE", "127.0.0.1", "1", "", "0", "10", "AUTH", BACKEND_PASSWORD,
                  "KEYS", "x")
        for i in range(30):  # every master, through authenticated links
            assert c.command("SET", "ba:%d" % i, "v%d" % i) == "OK"
            assert c.command("GET", "ba:%d" % i) == b"v%d" % i
        outputs.append(c.command("INFO"))
        outputs.append(c.command("PROXY", "INFO"))
        outputs.append(c.command("PROXY", "CONFIG", "GET", "*"))
        outputs.append(c.command("CLIENT", "LIST"))
    for path in ("/metrics", "/info", "/readyz"):
        outputs.append(http_get(console, path)[1])
    r = run_ringslot("--check-config", *secret_args, *entry)
    assert r.returncode == 0
    outputs += [r.stdout, r.stderr]
    time.sleep(0.5)  # let the log ring drain
    outputs.append(rs.log_text())
    text = repr(outputs)
    for s in SECRETS:
        assert s not in text, s
    log = rs.log_text()
    assert "(redacted)" in log  # --dump-queries
    assert "buffer from client" in log  # --dump-buffer
    assert "requests waiting for replies" in log  # --dump-queues

    # --auth-user: the links authenticate as that ACL user
    rs2 = spawn(extra_args=["--auth-user", "proxyuser", "-a", USER_PASSWORD],
                entry_points=entry)
    with rs2.raw() as c:
        assert c.command("SET", "ba:user", "1") == "OK"
        assert c.command("ACL", "WHOAMI") == b"proxyuser"

    # a wrong backend password: no topology, links refused, said in the log
    rs3 = spawn(PingRingslot, ["-a", "wrong-pass", "--console-port", str(helpers.free_port())],
                entry_points=entry)
    with rs3.raw() as c:
        assert isinstance(c.command("GET", "ba:1"), RespError)
    wait_until(lambda: "AUTH refused" in rs3.log_text(), 10, what="the AUTH failure logged")


# --- the console ----------------------------------------------------------------

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (\S+)$" % (METRIC_NAME, LABEL, LABEL))
HELP = re.compile(r"^# HELP (%s) .*$" % METRIC_NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % METRIC_NAME)


def parse_exposition(text):
    """Check every line of a Prometheus text exposition; return
    {(name, labels-string): value}."""
    assert text.endswith("\n")
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("#"):
            m = TYPE.match(line)
            if m:
                assert m.group(1) not in types, "TYPE twice: " + line
                types[m.group(1)] = m.group(2)
            else:
                assert HELP.match(line), "bad comment line: %r" % line
            continue
        m = SAMPLE.match(line)
        assert m, "bad sample line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        float(value)  # a number, +Inf, NaN
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or (family in types and types[family] == "histogram"), \
            "sample before its TYPE: %r" % line
        assert (name, labels) not in samples, "duplicate sample: %r" % line
        samples[(name, labels)] = float(value)
    return samples


def labels_of(samples, name, label):
    return {re.search(r'%s="([^"]*)"' % label, lab).group(1): v
            for (n, lab), v in samples.items() if n == name}


def test_metrics_exposition(spawn, cluster):
    console = helpers.free_port()
    rs = spawn(extra_args=["--console-port", str(console)])
    evil = ['zz"evil', "x\ny", "{}\\", "nope-%d" % os.getpid()]
    with rs.raw() as c:
        for i in range(50):
            c.command("SET", "m:%d" % i, "v")
            c.command("GET", "m:%d" % i)
        c.command("CONFIG", "GET", "maxmemory")
        c.command("OBJECT", "ENCODING", "m:1")
        for name in evil:
            assert isinstance(c.command(name, "a"), RespError)
        c.command("GET")  # wrong arity: an error by command
    status, text = http_get(console, "/metrics")
    assert status == 200
    samples = parse_exposition(text)
    for name in evil:
        assert name not in text
    cmds = labels_of(samples, "ringslot_commands_total", "command")
    errs = labels_of(samples, "ringslot_command_errors_total", "command")
    assert cmds["set"] >= 50 and cmds["get"] >= 51 and errs["get"] >= 1
    assert cmds["unknown"] >= len(evil) and errs["unknown"] >= len(evil)
    known = {b"unknown", b"other", b"proxy"}
    for entry in cluster.execute(cluster.masters()[0], "COMMAND"):
        known.add(entry[0].lower())
        for sub in (entry[9] if len(entry) > 9 else []):
            known.add(sub[0].lower())
    for name in cmds:
        assert name.encode() in known, name
    buckets = [(lab, v) for (n, lab), v in samples.items()
               if n == "ringslot_command_duration_seconds_bucket"]
    values = [v for _, v in buckets]
    assert values == sorted(values) and buckets[-1][0] == '{le="+Inf"}'
    assert values[-1] == samples[("ringslot_command_duration_seconds_count", "")] >= 100
    assert samples[("ringslot_slots_covered", "")] == 16384
    assert samples[("ringslot_slots_reachable", "")] == 16384
    assert samples[("ringslot_ready", "")] == 1
    assert samples[("process_resident_memory_bytes", "")] > 0
    links = labels_of(samples, "ringslot_backend_links", "node")
    assert set(links) <= set(cluster.addrs())
    assert len(labels_of(samples, "ringslot_worker_commands_total", "worker")) == 2
    assert http_get(console, "/healthz") == (200, "ok\n")
    status, info = http_get(console, "/info")
    assert status == 200 and "slots_covered:16384" in info
    assert http_get(console, "/nope")[0] == 404
    assert http_get(console, "/metrics", method="POST")[0] == 405


def test_console_answers_probes_while_300_clients_stall(spawn):
    """Slowloris (issue 11, item 13): 300 connections that send half a
    request head. A fresh probe or scrape is still answered at once, again
    and again; the stalled ones are closed after the 2 s header deadline."""
    console = helpers.free_port()
    spawn(extra_args=["--console-port", str(console)])
    assert http_get(console, "/healthz") == (200, "ok\n")
    stalled = []
    try:
        for _ in range(300):
            s = socket.create_connection((helpers.HOST, console), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            stalled.append(s)
        for _ in range(5):
            started = time.monotonic()
            assert http_get(console, "/healthz", timeout=2) == (200, "ok\n")
            assert http_get(console, "/readyz", timeout=2)[0] == 200
            status, text = http_get(console, "/metrics", timeout=2)
            assert status == 200 and "ringslot_ready 1" in text
            assert time.monotonic() - started < 1.5  # stalled ones last 2 s
        wait_until(lambda: all(helpers.closed_by_peer(s) for s in stalled), 2 + 2,
                   interval=0.1, what="the console to close the stalled connections")
    finally:
        for s in stalled:
            s.close()
    assert http_get(console, "/healthz") == (200, "ok\n")


class Forwarder:
    """A TCP port that starts refusing, then (open()) forwards every
    connection to `target`: an entry point that answers only later."""

    def __init__(self, target_port):
        self.port = helpers.free_port()
        self.target = target_port
        self.sock = None
        self.threads = []

    def open(self):
        self.sock = socket.create_server((helpers.HOST, self.port))
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def _accept(self):
        while True:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            b = socket.create_connection((helpers.HOST, self.target))
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        if self.sock:
            self.sock.close()


def test_readyz_waits_for_an_entry_point(spawn, cluster):
    fwd = Forwarder(cluster.masters()[0])
    console = helpers.free_port()
    rs = spawn(PingRingslot, ["--console-port", str(console)],
               entry_points=["127.0.0.1:%d" % fwd.port])
    try:
        assert http_get(console, "/healthz")[0] == 200
        status, body = http_get(console, "/readyz")
        assert status == 503 and "no topology" in body
        with rs.raw() as c:
            assert str(c.command("GET", "rz")).startswith("CLUSTERDOWN")
        fwd.open()
        wait_until(lambda: http_get(console, "/readyz")[0] == 200, 15,
                   what="/readyz to turn 200")
        with rs.raw() as c:
            assert c.command("SET", "rz", "1") == "OK"
    finally:
        fwd.close()


def test_slot_coverage_metric_follows_a_failover(make_cluster, spawn):
    cl = make_cluster(masters=3, replicas=1)
    console = helpers.free_port()
    rs = spawn(extra_args=["--console-port", str(console)], cluster=cl)

    def metric(name):
        return parse_exposition(http_get(console, "/metrics")[1])[(name, "")]

    assert metric("ringslot_slots_reachable") == 16384
    victim = cl.master_for_slot(0)
    keys = ["{%s}k" % helpers.tag_for_slot(s) for s in range(0, 16384, 512)]
    stop = threading.Event()

    def traffic():  # touches every master, so the workers see the loss
        while not stop.is_set():
            try:
                with rs.raw(timeout=2) as c:
                    while not stop.is_set():
                        c.pipeline([("SET", k, "1") for k in keys])
                        time.sleep(0.02)
            except Exception:  # noqa: BLE001 - errors are expected meanwhile
                time.sleep(0.05)

    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        cl.kill(victim)
        low = wait_until(lambda: (lambda v: v if v < 16384 else None)(
            metric("ringslot_slots_reachable")), 15, interval=0.1,
            what="slots_reachable to drop")
        assert low <= 16384 - 5000  # a third of the slots
        wait_until(lambda: metric("ringslot_slots_reachable") == 16384, 40, interval=0.2,
                   what="slots_reachable to recover after the failover")
        assert victim not in cl.masters()
    finally:
        stop.set()
        t.join(5)


@pytest.mark.parametrize("name", ["ringslot.conf", "ringslot.ini", "ringslot-cluster.conf"])
def test_deploy_examples_are_valid(name):
    """The example configurations shipped in deploy/ parse, and
    --check-config never prints the cluster password."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", name)
    out = subprocess.run([helpers.ringslot_binary(), "--check-config", "-c", path],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "port 7777" in out.stdout
    assert "change-me" not in out.stdout + out.stderr
