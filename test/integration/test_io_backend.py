"""--io-backend: io_uring where it may be used, epoll where it is refused
(a container's seccomp profile), and the choice visible in INFO and PROXY
CONFIG GET. The rest of the suite runs on io_uring; `make test` runs a
representative part of it a second time on epoll (RINGSLOT_TEST_IO)."""
import os
import subprocess

import pytest

import helpers
from helpers import unique

LAUNCHER = os.path.join(os.path.dirname(__file__), "no_io_uring.py")


def _seccomp_available():
    import importlib.util
    return importlib.util.find_spec("seccomp") is not None


needs_seccomp = pytest.mark.skipif(not _seccomp_available(),
                                   reason="python3-seccomp is not installed")


class NoUringRingslot(helpers.Ringslot):
    """A ringslot started under a filter that denies io_uring_setup."""

    def args(self):
        return ["/usr/bin/python3", LAUNCHER] + super().args()


def _serves(rs):
    r = rs.client()
    keys = [unique("io") + ":%d" % i for i in range(200)]
    pipe = r.pipeline(transaction=False)
    for i, k in enumerate(keys):
        pipe.set(k, i)
    assert all(pipe.execute())
    assert r.mget(keys) == [str(i).encode() for i in range(200)]  # across every master
    assert r.delete(*keys) == 200


@needs_seccomp
def test_auto_takes_epoll_when_io_uring_is_denied(cluster, make_ringslot):
    rs = make_ringslot(kind=NoUringRingslot, extra_args=["--io-backend", "auto", "--enable-cross-slot"])
    info = rs.proxy_info()
    assert info["multiplexing_api"] == "epoll"
    assert str(info["io_backend"]).startswith("epoll")
    _serves(rs)
    log = rs.log_tail(20000)
    warnings = [ln for ln in log.splitlines() if "io_uring is not available" in ln]
    assert len(warnings) == 1, log  # one line, naming the cause
    assert "seccomp" in warnings[0] and "using epoll" in warnings[0], warnings[0]


@needs_seccomp
def test_forced_uring_that_is_denied_exits_1(cluster, tmp_path):
    args = ["/usr/bin/python3", LAUNCHER, helpers.ringslot_binary(), "--port",
            str(helpers.free_port()), "--io-backend", "uring"] + cluster.addrs(cluster.masters())
    out = subprocess.run(args, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "io_uring is not available" in out.stdout + out.stderr


def test_auto_takes_io_uring_when_it_may(cluster, make_ringslot):
    rs = make_ringslot(extra_args=["--io-backend", "auto"])
    info = rs.proxy_info()
    assert info["multiplexing_api"] == "io_uring", info
    with rs.raw() as c:
        assert c.command("PROXY", "CONFIG", "GET", "io-backend") == [b"io-backend", b"auto"]


def test_forced_epoll_serves_and_says_so(cluster, make_ringslot):
    rs = make_ringslot(extra_args=["--io-backend", "epoll", "--enable-cross-slot"])
    assert rs.proxy_info()["multiplexing_api"] == "epoll"
    with rs.raw() as c:
        assert c.command("PROXY", "CONFIG", "GET", "io-backend") == [b"io-backend", b"epoll"]
    _serves(rs)


def test_io_backend_in_both_config_formats(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("port 7777\nio-backend epoll\n")
    ini = tmp_path / "a.ini"
    ini.write_text("[proxy]\nport = 7777\nio-backend = epoll\n\n[backend]\n"
                   "entry-point = 127.0.0.1:7000\n")
    for path in (conf, ini):
        out = subprocess.run([helpers.ringslot_binary(), "--check-config", "-c", str(path),
                              "127.0.0.1:7000"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "io-backend epoll" in out.stdout, out.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("io-backend kqueue\n")
    out = subprocess.run([helpers.ringslot_binary(), "--check-config", "-c", str(bad),
                          "127.0.0.1:7000"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "kqueue" in out.stdout + out.stderr


def test_single_shot_fallback_serves_past_the_buffer_count(cluster, make_ringslot):
    """io_uring without multishot receive (kernels before 6.0; forced here
    with RINGSLOT_IO=single) arms one receive per client, and each holds a
    buffer while it waits: more idle clients than the 1024 first buffers
    must not starve the next one (the pool grows)."""
    import resource
    import socket
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1300
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    rs = make_ringslot(threads=1, env={"RINGSLOT_IO": "single"},
                       extra_args=["--io-backend", "uring"])
    idle = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection((helpers.HOST, rs.port), timeout=5))
        # every idle one is accepted and armed before the last one speaks
        helpers.wait_until(lambda: rs.proxy_info()["connected_clients"] >= 1100, 20,
                           what="1100 idle clients")
        with rs.raw() as c:
            assert c.command("PING") == "PONG"
        for s in idle[:50]:
            s.sendall(b"PING\r\n")
            assert s.recv(16) == b"+PONG\r\n"
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.parametrize("backend", ["uring", "epoll"])
def test_half_close_after_a_partial_command_is_seen(cluster, make_ringslot, backend):
    """A client that sends part of a command and its FIN in one go: the FIN
    sits behind the data, so on epoll (edge-triggered) a short read is not
    "drained" — the proxy must read on to the EOF and close the connection
    (the proxy's idle timeout is off by default: a missed EOF would keep it
    open for good)."""
    rs = make_ringslot(threads=1, extra_args=["--io-backend", backend])
    for frame, want in ((b"*2\r\n$3\r\nGET\r\n$5\r\nab", b""), (b"PING\r\nGE", b"+PONG\r\n"),
                        (b"*3\r\n", b"")):
        assert _send_then_fin(rs, frame) == want, frame


def _send_then_fin(rs, data):
    """Send data, shut the write side, read to the proxy's close."""
    import socket
    s = socket.create_connection((helpers.HOST, rs.port))
    s.settimeout(10)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got  # closed by the proxy
            got += chunk
    finally:
        s.close()


def _cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


@pytest.mark.parametrize("backend", ["uring", "epoll"])
def test_half_close_after_complete_commands_gets_their_replies(cluster, make_ringslot, backend):
    """`printf 'SET k v\\r\\nGET k\\r\\n' | nc -N proxy 7777`: the FIN comes right
    behind the commands. Redis runs them before it reads the EOF, so they
    are answered, then the connection is closed; the proxy must not drop
    the replies still on their way from the nodes (it did, on both
    backends, most of the time; on epoll even PING's)."""
    rs = make_ringslot(threads=1, extra_args=["--io-backend", backend])
    big = os.urandom(1 << 20)
    for _ in range(5):  # the race was lost most of the time: a few rounds show it
        k = unique("hc")
        cases = [
            (b"PING\r\n", b"+PONG\r\n"),
            (_cmd("SET", k + "a", "v") + _cmd("GET", k + "a") + b"*2\r\n$3\r\nGET\r\n$3\r\nab",
             b"+OK\r\n$1\r\nv\r\n"),
            (b"".join(_cmd("INCR", k + "n{%d}" % (i % 7)) for i in range(700)) + _cmd("PING"),
             b"".join(b":%d\r\n" % (i // 7 + 1) for i in range(700)) + b"+PONG\r\n"),
            (_cmd("MULTI") + _cmd("SET", "{%s}m" % k, 1) + _cmd("INCR", "{%s}m" % k) + _cmd("EXEC"),
             b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n"),
            (_cmd("SET", k + "big", big) + _cmd("GET", k + "big"),
             b"+OK\r\n$%d\r\n%s\r\n" % (len(big), big)),
            (_cmd("SUBSCRIBE", k + "ch") + _cmd("PING"),
             b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%sch\r\n:1\r\n" % (len(k) + 2, k.encode())
             + b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        ]
        for data, want in cases:
            assert _send_then_fin(rs, data) == want, data[:80]
    # a blocking call is closed at once, as Redis frees a blocked client at
    # EOF (BLPOP 0 would otherwise keep the connection for good)
    assert _send_then_fin(rs, _cmd("BLPOP", k + "nothing", 0)) == b""
    helpers.wait_until(lambda: rs.proxy_info()["connected_clients"] <= 1, 10,
                       what="every half-closed client closed")


def _server_sockets(port, state):
    """The proxy's own TCP sockets on `port` in `state` (hex, as in
    /proc/net/tcp: 01 established, 08 close-wait)."""
    n = 0
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == state:
                n += 1
    return n


@pytest.mark.parametrize("backend", ["uring", "epoll"])
def test_connection_churn_closes_every_socket(cluster, make_ringslot, backend):
    """Clients come and go, fd numbers are reused at once, across two
    workers. On io_uring a socket also sits in its ring's fixed-file slot,
    which keeps it open after close(2): every close must clear the slot.
    A client the proxy closes (QUIT) sees EOF; a client that closes first
    leaves no socket behind on the proxy's side (a forgotten slot would
    keep it in CLOSE-WAIT for good)."""
    import socket
    rs = make_ringslot(threads=2, extra_args=["--io-backend", backend])

    def ping(s):
        s.sendall(b"PING\r\n")
        assert s.recv(16) == b"+PONG\r\n"

    for i in range(300):
        s = socket.create_connection((helpers.HOST, rs.port), timeout=10)
        try:
            ping(s)
            if i % 2:
                s.sendall(b"QUIT\r\n")
                got = b""
                while True:
                    chunk = s.recv(64)
                    if not chunk:
                        break  # the proxy's FIN
                    got += chunk
                assert got == b"+OK\r\n"
        finally:
            s.close()
    batch = [socket.create_connection((helpers.HOST, rs.port), timeout=10) for _ in range(100)]
    for s in batch:
        ping(s)
    for s in batch:
        s.close()
    helpers.wait_until(lambda: _server_sockets(rs.port, "08") == 0
                       and rs.proxy_info()["connected_clients"] == 1, 20,  # PROXY INFO's own
                       what="no proxy socket left in CLOSE-WAIT")
    with rs.raw() as c:  # and it still serves
        assert c.command("PING") == "PONG"
