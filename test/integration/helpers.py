"""Helpers for ringslot's integration tests and demo.

    RedisCluster   N masters + R replicas per master of Debian's redis-server
                   on free 127.0.0.1 ports, created with redis-cli --cluster
    Ringslot       one ringslot process in front of a cluster
    RespClient     a raw RESP2/RESP3 client for protocol-level tests
    keyslot()      CRC16 hash slot with {hash tag} rules, as Redis computes it
    free_port()    a port P with P and P+10000 free on 127.0.0.1

Every process is started with subprocess.Popen (popen(): its own session, so
a terminal's Ctrl-C reaches only the test runner, which then stops its
children) and stopped through that object (SIGTERM, then SIGKILL), never by
name. Readiness is probed with wait_until(), never assumed after a sleep.
Start processes from the main thread: there they are tied to their parent
with PR_SET_PDEATHSIG, so a killed test run does not leave servers behind
(the kernel ties that to the thread that forked them, so from another thread
popen() does not set it).
"""

import ctypes
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import redis

HOST = "127.0.0.1"
REDIS_SERVER = os.environ.get("REDIS_SERVER", "redis-server")
REDIS_CLI = os.environ.get("REDIS_CLI", "redis-cli")
SLOTS = 16384

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    "runtime error:",
)


# --- waiting ----------------------------------------------------------------

def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Call pred() every `interval` seconds until it returns a true value
    (returned) or `timeout` seconds pass (TimeoutError, with the last
    exception pred raised, if any)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - probing: retry on anything
            last_exc = exc
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise TimeoutError(msg)
        time.sleep(interval)


def closed_by_peer(sock):
    """True once the peer has closed the connection (EOF or reset), False
    while it is open. Never blocks."""
    try:
        return sock.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


# --- ports ------------------------------------------------------------------

_ports_lock = threading.Lock()
_ports_given = set()
# P below the kernel's ephemeral range minus 10000, so that neither P nor the
# cluster bus port P+10000 can be taken by an outgoing connection.
_PORT_LOW, _PORT_HIGH = 12000, 22000


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port P such that P and P+10000 are free on 127.0.0.1 and that this
    process has not handed out before (a process started on the last one may
    not have bound it yet)."""
    with _ports_lock:
        for _ in range(2000):
            p = random.randrange(_PORT_LOW, _PORT_HIGH)
            if p in _ports_given or p + 10000 in _ports_given:
                continue
            if _bindable(p) and _bindable(p + 10000):
                _ports_given.add(p)
                return p
    raise RuntimeError("no free port pair found")


# --- processes --------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _preexec_tie_to_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort only
        pass


def popen(args, **kw):
    """subprocess.Popen in a session of its own (a Ctrl-C in the terminal
    reaches only us, and we stop our children in order); started from the
    main thread, the child also dies if we do."""
    kw.setdefault("start_new_session", True)
    if threading.current_thread() is threading.main_thread():
        kw.setdefault("preexec_fn", _preexec_tie_to_parent)
    return subprocess.Popen(args, **kw)


def stop_process(proc, timeout=10.0, sig=signal.SIGTERM):
    """Send `sig` to proc (if it still runs), wait up to `timeout`, then
    SIGKILL. Returns the exit code (negative: killed by a signal)."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def read_tail(path, limit=20000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read()
    except OSError as exc:
        return "<cannot read %s: %s>" % (path, exc)
    text = data.decode("utf-8", "replace")
    if size > limit:
        text = "[... %d bytes before]\n" % (size - limit) + text
    return text


def parse_info(text):
    """INFO-style "key:value" lines into a dict (values as str)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        out[k] = v
    return out


# --- hash slots -------------------------------------------------------------

def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def keyslot(key):
    """Hash slot of key (str or bytes), with Redis's {hash tag} rule."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s != -1:
        e = key.find(b"}", s + 1)
        if e != -1 and e != s + 1:
            key = key[s + 1:e]
    return crc16(key) % SLOTS


def tag_for_slot(slot):
    """A short string whose keyslot is `slot` (use it as a {hash tag})."""
    i = 0
    while True:
        t = "t%d" % i
        if keyslot(t) == slot:
            return t
        i += 1


# --- Redis Cluster ----------------------------------------------------------

class RedisNode:
    def __init__(self, port, workdir):
        self.port = port
        self.workdir = workdir
        self.log_path = os.path.join(workdir, "redis-%d.log" % port)
        self.proc = None

    @property
    def addr(self):
        return "%s:%d" % (HOST, self.port)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


class RedisCluster:
    """A Redis Cluster of `masters` masters with `replicas` replicas each,
    all on 127.0.0.1, data and logs under `workdir`.

        c = RedisCluster(tmpdir); c.start(); ...; c.stop()

    Ports are `c.ports` (creation order); roles change with failovers, so ask
    masters()/replicas() rather than remembering them."""

    def __init__(self, workdir, masters=3, replicas=1, node_timeout=2000,
                 extra_args=(), start_timeout=60.0):
        self.workdir = str(workdir)
        self.nmasters = masters
        self.nreplicas = replicas
        self.node_timeout = node_timeout
        self.extra_args = list(extra_args)
        self.start_timeout = start_timeout
        self.nodes = {}          # port -> RedisNode
        self._clients = []
        self.startup_seconds = None
        os.makedirs(self.workdir, exist_ok=True)

    # -- lifecycle --

    @property
    def ports(self):
        return list(self.nodes)

    def addrs(self, ports=None):
        return ["%s:%d" % (HOST, p) for p in (self.ports if ports is None else ports)]

    def _server_args(self, port):
        return [REDIS_SERVER,
                "--port", str(port), "--bind", HOST,
                "--cluster-enabled", "yes",
                "--cluster-node-timeout", str(self.node_timeout),
                "--cluster-config-file", os.path.join(self.workdir, "nodes-%d.conf" % port),
                "--dir", self.workdir,
                "--save", "", "--appendonly", "no",
                "--repl-diskless-sync-delay", "0",
                # replicas appear in CLUSTER SLOTS once their offset is not 0
                "--repl-ping-replica-period", "1",
                "--protected-mode", "no",
                "--daemonize", "no",
                "--logfile", ""] + self.extra_args

    def _spawn(self, node):
        logf = open(node.log_path, "ab")
        try:
            node.proc = popen(self._server_args(node.port), stdin=subprocess.DEVNULL,
                              stdout=logf, stderr=subprocess.STDOUT, cwd=self.workdir)
        finally:
            logf.close()

    def _wait_ping(self, node, timeout=10.0):
        def ping():
            if not node.alive():
                raise RuntimeError("redis-server :%d exited (%s):\n%s" % (
                    node.port, node.proc.returncode, read_tail(node.log_path, 3000)))
            return self.execute(node.port, "PING") == "PONG"
        try:
            wait_until(ping, timeout, what="redis-server :%d PING" % node.port)
        except TimeoutError:
            if not node.alive():
                raise RuntimeError("redis-server :%d exited (%s):\n%s" % (
                    node.port, node.proc.returncode, read_tail(node.log_path, 3000)))
            raise

    def _start_node(self, attempts=5):
        """Start one fresh node on a free port; retries with another port if
        it could not bind (a port can be taken between check and bind)."""
        for attempt in range(attempts):
            node = RedisNode(free_port(), self.workdir)
            self._spawn(node)
            try:
                self._wait_ping(node)
                self.nodes[node.port] = node
                return node
            except Exception:
                stop_process(node.proc, 2.0)
                if attempt == attempts - 1:
                    raise

    def start(self):
        t0 = time.monotonic()
        try:
            n = self.nmasters * (1 + self.nreplicas)
            for _ in range(n):
                self._start_node()
            self._create()
            self.wait_stable(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _cli_options(self):
        """redis-cli options needed to reach the nodes (TLS in a subclass)."""
        return []

    def _create(self):
        args = [REDIS_CLI] + self._cli_options() + ["--cluster", "create"] + self.addrs() + [
            "--cluster-replicas", str(self.nreplicas), "--cluster-yes"]
        log = os.path.join(self.workdir, "cluster-create.log")
        with open(log, "wb") as f:
            p = popen(args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
            try:
                rc = p.wait(self.start_timeout)
            except subprocess.TimeoutExpired:
                stop_process(p, 1.0)
                rc = None
        if rc != 0:
            raise RuntimeError("redis-cli --cluster create failed (%s):\n%s" % (rc, read_tail(log, 5000)))

    def stop(self):
        """Stop every node this object started (SIGTERM, then SIGKILL)."""
        for c in self._clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001
                pass
        self._clients = []
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                try:
                    node.proc.terminate()
                except ProcessLookupError:
                    pass
        for node in self.nodes.values():
            if node.proc is not None:
                stop_process(node.proc, 5.0)

    def cleanup(self):
        """stop(), then remove the work directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- clients --

    def client(self, port, **kw):
        """A redis-py client straight to one node (closed by stop())."""
        kw.setdefault("socket_timeout", 30)
        kw.setdefault("socket_connect_timeout", 5)
        c = redis.Redis(host=HOST, port=port, **kw)
        self._clients.append(c)
        return c

    def _any_alive(self):
        for node in self.nodes.values():
            if node.alive():
                return node.port
        raise RuntimeError("no node is running")

    def execute(self, port, *args):
        """One command straight to one node on a fresh connection; the reply
        unparsed by redis-py (error replies raise RespError)."""
        with RespClient(HOST, port, timeout=5) as c:
            reply = c.command(*args)
        if isinstance(reply, RespError):
            raise reply
        return reply

    # -- topology --

    def cluster_slots(self, port=None):
        """CLUSTER SLOTS of one node as [(start, end, master_port,
        [replica_ports])], sorted."""
        raw = self.execute(port or self._any_alive(), "CLUSTER", "SLOTS")
        out = []
        for entry in raw:
            start, end = int(entry[0]), int(entry[1])
            master = int(entry[2][1])
            reps = sorted(int(r[1]) for r in entry[3:])
            out.append((start, end, master, reps))
        return sorted(out)

    def cluster_nodes(self, port=None):
        """CLUSTER NODES of one node as a list of dicts: id, port, flags
        (set), master (id or None), slots (raw range strings)."""
        raw = self.execute(port or self._any_alive(), "CLUSTER", "NODES")
        if isinstance(raw, bytes):
            raw = raw.decode()
        out = []
        for line in raw.splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            addr = parts[1].split("@")[0]
            out.append({
                "id": parts[0],
                "port": int(addr.rsplit(":", 1)[1]) if ":" in addr and addr.rsplit(":", 1)[1] else 0,
                "flags": set(parts[2].split(",")),
                "master": None if parts[3] == "-" else parts[3],
                "slots": parts[8:],
            })
        return out

    def node_id(self, port):
        return self.execute(port, "CLUSTER", "MYID").decode()

    def masters(self):
        """Ports of the current masters that own slots, as one node sees it."""
        return sorted({m for (_, _, m, _) in self.cluster_slots()})

    def replicas(self, master_port=None):
        """Ports of the replicas (of one master, or all)."""
        out = []
        for (_, _, m, reps) in self.cluster_slots():
            if master_port is None or m == master_port:
                out.extend(reps)
        return sorted(set(out))

    def slot_table(self, port=None):
        """A list of 16384 master ports, one per slot."""
        table = [None] * SLOTS
        for (s, e, m, _) in self.cluster_slots(port):
            for i in range(s, e + 1):
                table[i] = m
        return table

    def master_for_slot(self, slot):
        for (s, e, m, _) in self.cluster_slots():
            if s <= slot <= e:
                return m
        return None

    def master_for_key(self, key):
        return self.master_for_slot(keyslot(key))

    def _node_ok(self, port):
        info = parse_info(self.execute(port, "CLUSTER", "INFO"))
        return (info.get("cluster_state") == "ok"
                and info.get("cluster_slots_ok") == str(SLOTS))

    def _check_stable(self, expect_replicas=True):
        alive = [n.port for n in self.nodes.values() if n.alive()]
        views = []
        for port in alive:
            if not self._node_ok(port):
                return False
            views.append(self.cluster_slots(port))
        if any(v != views[0] for v in views):
            return False
        covered = sum(e - s + 1 for (s, e, _, _) in views[0])
        if covered != SLOTS:
            return False
        if expect_replicas:
            for (_, _, m, reps) in views[0]:
                if len(reps) != self.nreplicas:
                    return False
                for r in reps:
                    info = parse_info(self.execute(r, "INFO", "replication"))
                    if info.get("master_link_status") != "up":
                        return False
        return True

    def wait_stable(self, timeout=30.0, expect_replicas=True):
        """Probe until every running node says cluster_state:ok, all agree on
        CLUSTER SLOTS covering all 16384 slots, and (expect_replicas) every
        master has its replicas listed and their links are up."""
        wait_until(lambda: self._check_stable(expect_replicas), timeout,
                   interval=0.1, what="cluster to become stable")

    # -- faults --

    def kill(self, port, sig=signal.SIGKILL):
        """Send sig to the node on port; for SIGKILL/SIGTERM, wait for it to
        exit."""
        node = self.nodes[port]
        if node.alive():
            node.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                try:
                    node.proc.wait(10)
                except subprocess.TimeoutExpired:
                    node.proc.kill()
                    node.proc.wait()

    def restart(self, port, timeout=10.0):
        """Start a stopped node again on the same port and config file (it
        rejoins the cluster with its old id)."""
        node = self.nodes[port]
        if node.alive():
            raise RuntimeError("node :%d is running" % port)
        self._spawn(node)
        self._wait_ping(node, timeout)

    def pause(self, port, ms, mode=None):
        """CLIENT PAUSE ms [WRITE] sent straight to the node."""
        args = ["CLIENT", "PAUSE", str(int(ms))]
        if mode:
            args.append(mode)
        return self.execute(port, *args)

    def migrate_slot(self, slot, dst, batch=10, between=None):
        """Move `slot` to master `dst` the way redis-cli --cluster reshard
        does: SETSLOT IMPORTING on dst, MIGRATING on the owner, MIGRATE ...
        KEYS in batches (calling between() after each), then SETSLOT NODE on
        dst, the old owner and every other master. Even if a step fails, the
        slot is left owned by one node (remaining keys moved, NODE set).
        Returns the number of batches."""
        src = self.master_for_slot(slot)
        if src == dst:
            return 0
        src_id, dst_id = self.node_id(src), self.node_id(dst)
        batches = 0

        def move(step):
            nonlocal batches
            while True:
                keys = self.execute(src, "CLUSTER", "GETKEYSINSLOT", slot, batch)
                if not keys:
                    return
                reply = self.execute(src, "MIGRATE", HOST, dst, "", 0, 10000, "KEYS", *keys)
                if reply not in ("OK", "NOKEY"):
                    raise RuntimeError("MIGRATE: %r" % (reply,))
                batches += 1
                if step is not None:
                    step()

        done = False
        try:
            self.execute(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            self.execute(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            move(between)
            done = True
        finally:
            try:
                if not done:
                    move(None)
            finally:
                others = [m for m in self.masters() if m not in (src, dst)]
                for m in [dst, src] + others:
                    self.execute(m, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        return batches

    def keyslot(self, key):
        """The server's CLUSTER KEYSLOT."""
        return int(self.execute(self._any_alive(), "CLUSTER", "KEYSLOT", key))


# --- ringslot ---------------------------------------------------------------

class Ringslot:
    """One ringslot process.

        rs = Ringslot(binary, entry_points, workdir, threads=2, extra_args=[])
        rs.start()  # waits until it answers PING and a SET/GET round-trip
        ...
        rc = rs.stop()   # SIGTERM, wait; returns the exit code

    stdout and stderr go to one log file in workdir (log_path), or to our own
    stdout/stderr when workdir is None."""

    def __init__(self, binary, entry_points, workdir=None, threads=2, port=None,
                 extra_args=(), env=None, ready_timeout=15.0):
        self.binary = binary
        self.entry_points = list(entry_points)
        self.workdir = workdir
        self.threads = threads
        self.port = port
        self.extra_args = list(extra_args)
        self.env = env
        self.ready_timeout = ready_timeout
        self.proc = None
        self.log_path = None
        self.stopped_by_us = False
        self.exit_code = None

    @property
    def addr(self):
        return "%s:%d" % (HOST, self.port)

    def args(self):
        a = [self.binary, "--port", str(self.port)]
        if self.threads is not None:
            a += ["--threads", str(self.threads)]
        # make test runs part of the suite a second time on epoll
        io = os.environ.get("RINGSLOT_TEST_IO")
        if io and not any(str(x).startswith("--io-backend") for x in self.extra_args):
            a += ["--io-backend", io]
        return a + self.entry_points + self.extra_args

    def start(self, attempts=3):
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        if self.env:
            env.update(self.env)
        fixed_port = self.port is not None
        for attempt in range(attempts):
            if not fixed_port:
                self.port = free_port()
            if self.workdir is not None:
                self.log_path = os.path.join(self.workdir, "ringslot-%d.log" % self.port)
                out = open(self.log_path, "ab")
                kw = dict(stdout=out, stderr=subprocess.STDOUT)
            else:
                out, kw = None, {}
            try:
                self.proc = popen(self.args(), stdin=subprocess.DEVNULL, env=env, **kw)
            finally:
                if out is not None:
                    out.close()
            try:
                self.wait_ready(self.ready_timeout)
                return self
            except Exception:
                exited = self.proc.poll() is not None
                stop_process(self.proc, 5.0)
                # Retry only if it died early, e.g. the port was taken between
                # our check and its bind.
                if fixed_port or not exited or attempt == attempts - 1:
                    raise

    def wait_ready(self, timeout=15.0):
        """PING until +PONG, then SET/GET a probe key until both succeed."""
        key = "ringslot:probe:%d" % self.port
        val = b"ready-%d" % os.getpid()

        def probe():
            if self.proc.poll() is not None:
                raise RuntimeError("ringslot exited with %s" % self.proc.returncode)
            with RespClient(HOST, self.port, timeout=2) as c:
                if c.command("PING") != "PONG":
                    return False
                if c.command("SET", key, val) != "OK":
                    return False
                return c.command("GET", key) == val
        try:
            wait_until(probe, timeout, interval=0.05, what="ringslot :%d to serve" % self.port)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError("%s\n--- ringslot log ---\n%s" % (exc, self.log_tail())) from None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0, sig=signal.SIGTERM):
        """Send sig (SIGTERM), wait up to timeout (then SIGKILL). Returns the
        exit code."""
        self.stopped_by_us = True
        self.exit_code = stop_process(self.proc, timeout, sig)
        return self.exit_code

    def kill(self, sig=signal.SIGKILL):
        self.stopped_by_us = True
        if self.running():
            self.proc.send_signal(sig)
        if sig == signal.SIGKILL:
            self.exit_code = self.proc.wait()

    def log_text(self):
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_size(self):
        try:
            return os.path.getsize(self.log_path) if self.log_path else 0
        except OSError:
            return 0

    def log_tail(self, limit=20000):
        return read_tail(self.log_path, limit) if self.log_path else ""

    def sanitizer_report(self, since=0):
        """The sanitizer report in the log after byte offset `since`, or
        None."""
        text = self.log_text()[since:]
        for marker in SANITIZER_MARKERS:
            i = text.find(marker)
            if i != -1:
                start = text.rfind("\n", 0, max(0, i - 2000)) + 1
                return text[start:start + 30000]
        return None

    def client(self, **kw):
        kw.setdefault("socket_timeout", 30)
        kw.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host=HOST, port=self.port, **kw)

    def raw(self, timeout=10.0):
        return RespClient(HOST, self.port, timeout=timeout)

    def proxy_info(self):
        """PROXY INFO as a dict; integer values converted."""
        with self.raw() as c:
            reply = c.command("PROXY", "INFO")
        if isinstance(reply, RespError):
            raise reply
        info = parse_info(reply)
        for k, v in info.items():
            if re.fullmatch(r"-?\d+", v):
                info[k] = int(v)
        return info


# --- ringslot processes owned by the test fixtures ----------------------------

def authed_command(client, password, *args):
    """AUTH password, then args, on an open client; a RespError from
    either is raised."""
    with client as c:
        r = c.command("AUTH", password)
        if isinstance(r, RespError):
            raise r
        reply = c.command(*args)
    if isinstance(reply, RespError):
        raise reply
    return reply


def unique(name):
    """A fresh key prefix (no braces, no glob characters)."""
    return "%s:%d:%s:" % (name, os.getpid(), os.urandom(4).hex())


LIVE_RINGSLOTS = []  # started by start_managed() and not yet finish_managed()


def ringslot_binary():
    """$RINGSLOT_BIN, default ./ringslot at the repository root."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    return os.environ.get("RINGSLOT_BIN") or os.path.join(root, "ringslot")


def start_managed(tmpdir, cluster, threads=2, entry_points=None, extra_args=(),
                  kind=Ringslot, **kw):
    """Start a ringslot of class `kind` (default entry points: every master
    of `cluster`), wait until it serves, and register it so the fixtures
    watch it (log on failure, sanitizer reports, unexpected exit). Pair with
    finish_managed()."""
    import pytest
    binary = ringslot_binary()
    if not os.access(binary, os.X_OK):
        pytest.fail("ringslot binary not found or not executable: %s "
                    "(build it with `make`, or set RINGSLOT_BIN)" % binary, pytrace=False)
    if entry_points is None:
        entry_points = cluster.addrs(cluster.masters())
    rs = kind(binary, entry_points, workdir=str(tmpdir), threads=threads,
              extra_args=list(extra_args), **kw)
    LIVE_RINGSLOTS.append(rs)
    try:
        rs.start()
    except BaseException:
        LIVE_RINGSLOTS.remove(rs)
        if rs.proc is not None:
            stop_process(rs.proc, 5.0)
        raise
    return rs


def finish_managed(rs):
    """Stop rs (SIGTERM) if it runs; return a list of problems: a non-zero
    exit on SIGTERM, an exit we did not cause, a sanitizer report."""
    problems = []
    if rs in LIVE_RINGSLOTS:
        LIVE_RINGSLOTS.remove(rs)
    if rs.proc is None:
        return problems
    if rs.running():
        rc = rs.stop()
        if rc != 0:
            problems.append("ringslot :%s exited with %s after SIGTERM" % (rs.port, rc))
    elif not rs.stopped_by_us:
        problems.append("ringslot :%s died on its own (exit code %s)"
                        % (rs.port, rs.proc.returncode))
    report = rs.sanitizer_report()
    if report:
        problems.append("sanitizer report in ringslot :%s log:\n%s" % (rs.port, report))
    elif problems:
        problems.append("--- ringslot :%s log (tail) ---\n%s" % (rs.port, rs.log_tail(12000)))
    return problems


def finish_all_managed(started):
    """finish_managed() each of `started`, then fail the test on any problem."""
    problems = []
    for rs in started:
        problems += finish_managed(rs)
    fail_on(problems)


def fail_on(problems):
    if problems:
        import pytest
        pytest.fail("\n\n".join(problems), pytrace=False)


# --- raw RESP client --------------------------------------------------------

class RespError(Exception):
    """An error reply (-ERR ...). RespClient returns these, it does not raise
    them, so tests can compare error texts."""

    def __eq__(self, other):
        return isinstance(other, RespError) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


class Status(str):
    """A simple string reply (+OK)."""


class Push(list):
    """A RESP3 push frame (>)."""


class Verbatim(bytes):
    """A RESP3 verbatim string (=); .format is e.g. "txt"."""
    format = None


class RespSet(list):
    """A RESP3 set (~), kept in order."""


class BigNumber(int):
    """A RESP3 big number (()."""


class ConnectionClosed(Exception):
    pass


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def set_keys(r, keys, value=1):
    """SET every key to value through redis-py client r, in one pipeline."""
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, value)
    pipe.execute()


class RespClient:
    """A plain socket speaking RESP. send() writes bytes as given;
    read_reply() reads exactly one reply (RESP2 or RESP3) and returns it
    parsed; read_raw() returns that reply's bytes instead. Attributes (|) are
    stored in .last_attributes and the reply they precede is returned."""

    def __init__(self, host=HOST, port=None, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.last_attributes = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def send_command(self, *args):
        self.send(encode_command(*args))

    def command(self, *args):
        self.send_command(*args)
        return self.read_reply()

    def pipeline(self, commands):
        """Send all commands in one write, return their replies in order."""
        self.send(b"".join(encode_command(*c) for c in commands))
        return [self.read_reply() for _ in commands]

    # -- reading --

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionClosed("connection closed by peer")
        if self.pos > (1 << 20) and self.pos > len(self.buf) // 2:
            del self.buf[:self.pos]
            self.pos = 0
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i != -1:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = bytes(self.buf[self.pos:self.pos + n])
        if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
            raise ValueError("bulk not terminated by CRLF")
        self.pos += n + 2
        return data

    def _parse(self):
        line = self._line()
        if not line:
            raise ValueError("empty reply line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Status(rest.decode("utf-8", "replace"))
        if t == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._parse() for _ in range(n)]
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest.decode())
        if t == b"(":
            return BigNumber(int(rest))
        if t == b"!":
            return RespError(self._exact(int(rest)).decode("utf-8", "replace"))
        if t == b"=":
            data = self._exact(int(rest))
            v = Verbatim(data[4:])
            v.format = data[:3].decode()
            return v
        if t == b"%":
            n = int(rest)
            d = {}
            for _ in range(n):
                k = self._parse()
                d[_hashable(k)] = self._parse()
            return d
        if t == b"~":
            return RespSet(self._parse() for _ in range(int(rest)))
        if t == b">":
            return Push(self._parse() for _ in range(int(rest)))
        if t == b"|":
            n = int(rest)
            attrs = {}
            for _ in range(n):
                k = self._parse()
                attrs[_hashable(k)] = self._parse()
            self.last_attributes = attrs
            return self._parse()
        raise ValueError("unknown RESP type byte %r in %r" % (t, line[:80]))

    def read_reply(self):
        """One reply, parsed."""
        return self._parse()

    def read_raw(self):
        """One reply, as the bytes received."""
        start = self.pos
        self._parse()
        return bytes(self.buf[start:self.pos])

    def read_until_closed(self, timeout=5.0):
        """Read until the peer closes; returns the bytes received meanwhile.
        TimeoutError if it stays open."""
        data = bytes(self.buf[self.pos:])
        self.pos = len(self.buf)
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("connection still open after %.1fs" % timeout) from None
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk
            if time.monotonic() > deadline:
                raise TimeoutError("connection still open after %.1fs" % timeout)


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def transcript(port, commands, proto, sentinel):
    """Send `commands` in one write and return every byte received up to and
    including the reply that carries `sentinel` (the last command is a
    PING with it, answered in either form)."""
    with RespClient(HOST, port) as c:
        if proto == 3:
            c.command("HELLO", "3")     # its reply names the server: not compared
        c.send(b"".join(encode_command(*cmd) for cmd in commands))
        out = b""
        while sentinel.encode() not in out:
            out += c.read_raw()
        return out
