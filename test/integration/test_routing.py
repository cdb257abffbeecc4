"""Issue 2: routing single-key commands through ringslot to a Redis Cluster.

All tests here share the session cluster; none breaks it (the slot migration
leaves a consistent cluster with one slot on another master)."""

import os
import random
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

import helpers
from helpers import unique
from helpers import keyslot, wait_until


@pytest.fixture(scope="module", params=[1, 2], ids=["threads1", "threads2"])
def ringslot_t(request, cluster, tmp_path_factory):
    """ringslot with --threads 1, then with --threads 2."""
    rs = helpers.start_managed(tmp_path_factory.mktemp("ringslot-t%d" % request.param),
                               cluster, threads=request.param)
    yield rs
    helpers.fail_on(helpers.finish_managed(rs))


# --- routing ------------------------------------------------------------------

def test_keys_land_on_owning_master(cluster, ringslot):
    prefix = unique("route").encode()
    rnd = random.Random(2)
    keys = []
    for i in range(1000):
        if i % 4 == 0:   # binary, may contain {, }, \r\n, spaces, NUL
            suffix = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 24)))
        elif i % 4 == 1:  # a hash tag
            suffix = b"{%x}x" % rnd.getrandbits(32)
        else:
            suffix = b"%x" % rnd.getrandbits(rnd.randint(8, 64))
        keys.append(prefix + b"%d:" % i + suffix)
    values = {k: b"v%d" % i for i, k in enumerate(keys)}

    r = ringslot.client()
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, values[k])
    assert pipe.execute() == [True] * len(keys)

    direct = cluster.client(cluster.masters()[0])
    pipe = direct.pipeline(transaction=False)
    for k in keys:
        pipe.execute_command("CLUSTER", "KEYSLOT", k)
    slots = [int(s) for s in pipe.execute()]
    table = cluster.slot_table()
    expected = {m: set() for m in cluster.masters()}
    for k, s in zip(keys, slots):
        expected[table[s]].add(k)
    assert all(expected.values()), "1000 keys should cover every master"

    for m, want in expected.items():
        c = cluster.client(m)
        found = set(c.scan_iter(match=prefix + b"*", count=1000))
        missing, extra = want - found, found - want
        assert not missing and not extra, (
            "master :%d: %d keys missing, %d keys that belong elsewhere"
            % (m, len(missing), len(extra)))
        pipe = c.pipeline(transaction=False)
        for k in sorted(want):
            pipe.get(k)
        assert pipe.execute() == [values[k] for k in sorted(want)]

    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.get(k)
    assert pipe.execute() == [values[k] for k in keys]


def test_empty_and_32mb_values(cluster, ringslot, resp_client):
    r = ringslot.client(socket_timeout=120)
    k0 = unique("empty") + "k"
    assert r.set(k0, b"") is True
    assert r.get(k0) == b""
    assert r.strlen(k0) == 0
    c = resp_client(ringslot.port)
    c.send_command("GET", k0)
    assert c.read_raw() == b"$0\r\n\r\n"
    c.send_command("SET", "", "empty-key")  # an empty key is a key too
    assert c.read_raw() == b"+OK\r\n"
    c.send_command("GET", "")
    assert c.read_raw() == b"$9\r\nempty-key\r\n"

    big = os.urandom(32 << 20)
    k1 = unique("big") + "k"
    assert r.set(k1, big) is True
    got = r.get(k1)
    assert got is not None and len(got) == len(big)
    assert got == big
    owner = cluster.master_for_key(k1)
    assert cluster.client(owner).strlen(k1) == len(big)
    assert r.delete(k1) == 1


# --- pipelining -----------------------------------------------------------------

def incr_pipeline(client, keys, n=5000):
    pipe = client.pipeline(transaction=False)
    for j in range(n):
        pipe.incr(keys[j % len(keys)])
    return pipe.execute(raise_on_error=False)


def first_mismatch(got, want):
    for j, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return "reply %d: got %r, want %r" % (j, g, w)
    return "got %d replies, want %d" % (len(got), len(want))


def test_pipelined_incr_in_order(ringslot_t):
    keys = [unique("incr") + "k%d" % i for i in range(100)]
    r = ringslot_t.client()
    want = [j // 100 + 1 for j in range(5000)]
    got = incr_pipeline(r, keys)
    assert got == want, first_mismatch(got, want)
    got = incr_pipeline(r, keys)
    want2 = [50 + j // 100 + 1 for j in range(5000)]
    assert got == want2, first_mismatch(got, want2)


def test_pipelined_incr_5_clients_master_paused(cluster, ringslot_t):
    nclients = 5
    prefix = unique("incr5")
    keys = [[prefix + "c%d:k%d" % (i, j) for j in range(100)] for i in range(nclients)]
    rounds = [[] for _ in range(nclients)]      # (start, end) of each good round
    errors = []
    started = [threading.Event() for _ in range(nclients)]
    stop = threading.Event()

    def client(i):
        r = ringslot_t.client(socket_timeout=60)
        try:
            n = 0
            while not (stop.is_set() and n >= 2):
                t0 = time.monotonic()
                got = incr_pipeline(r, keys[i])
                t1 = time.monotonic()
                want = [n * 50 + j // 100 + 1 for j in range(5000)]
                if got != want:
                    errors.append("client %d round %d: %s" % (i, n, first_mismatch(got, want)))
                    return
                rounds[i].append((t0, t1))
                n += 1
                started[i].set()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append("client %d: %r" % (i, exc))
        finally:
            started[i].set()
            r.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(nclients)]
    for t in threads:
        t.start()
    try:
        for ev in started:
            assert ev.wait(60), "a client did not finish its first round"
        victim = cluster.master_for_key(keys[0][0])
        t_pause = time.monotonic()
        assert cluster.pause(victim, 300) == "OK"
        t_resume = t_pause + 0.3
        # every client completes a round that began after the pause ended
        wait_until(lambda: errors or all(any(t0 > t_resume for t0, _ in rs) for rs in rounds),
                   60, what="rounds after the pause")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    overlapped = [i for i, rs in enumerate(rounds)
                  if any(t0 < t_resume and t1 > t_pause for t0, t1 in rs)]
    assert overlapped, "no round ran while the master was paused"
    r = ringslot_t.client()
    for i in range(nclients):
        want = [str(50 * len(rounds[i])).encode()] * 100
        pipe = r.pipeline(transaction=False)
        for k in keys[i]:
            pipe.get(k)
        assert pipe.execute() == want


# --- locally answered and forwarded commands --------------------------------------

def test_ping_echo_select_quit(ringslot, resp_client):
    c = resp_client(ringslot.port)
    c.send_command("PING")
    assert c.read_raw() == b"+PONG\r\n"
    c.send_command("PING", "hello world")
    assert c.read_raw() == b"$11\r\nhello world\r\n"
    c.send_command("PING", "")
    assert c.read_raw() == b"$0\r\n\r\n"
    c.send_command("ECHO", "a\r\nb")
    assert c.read_raw() == b"$4\r\na\r\nb\r\n"
    c.send_command("SELECT", "0")
    assert c.read_raw() == b"+OK\r\n"
    c.send_command("SELECT", "1")
    assert c.read_raw() == b"-ERR SELECT is not allowed in cluster mode\r\n"
    c.send_command("PING", "a", "b")
    assert c.read_raw() == b"-ERR wrong number of arguments for 'ping' command\r\n"
    c.send_command("ECHO")
    assert c.read_raw() == b"-ERR wrong number of arguments for 'echo' command\r\n"
    c.send_command("GET")                         # a routed command: same text
    assert c.read_raw() == b"-ERR wrong number of arguments for 'get' command\r\n"
    c.send(b"PING\r\n")                           # inline
    assert c.read_raw() == b"+PONG\r\n"
    c.send(b"ping  \"x y\"\r\n")
    assert c.read_raw() == b"$3\r\nx y\r\n"

    # local and forwarded replies interleaved in one pipeline stay in order
    k = unique("order")
    cmds = []
    for i in range(50):
        cmds += [("SET", k + str(i), str(i)), ("PING",), ("GET", k + str(i)),
                 ("ECHO", "e%d" % i), ("SELECT", "0")]
    replies = c.pipeline(cmds)
    want = []
    for i in range(50):
        want += ["OK", "PONG", str(i).encode(), ("e%d" % i).encode(), "OK"]
    assert replies == want

    c.send_command("QUIT")
    assert c.read_raw() == b"+OK\r\n"
    c.read_until_closed(5)


def test_quit_after_pipeline(ringslot, resp_client):
    """QUIT answers after the replies before it, then closes."""
    c = resp_client(ringslot.port)
    k = unique("quit") + "k"
    c.send(helpers.encode_command("SET", k, "1") + helpers.encode_command("INCR", k)
           + helpers.encode_command("QUIT") + helpers.encode_command("INCR", k))
    assert c.read_raw() == b"+OK\r\n"
    assert c.read_raw() == b":2\r\n"
    assert c.read_raw() == b"+OK\r\n"
    c.read_until_closed(5)
    assert ringslot.client().get(k) == b"2"


def test_command_forwarded(cluster, ringslot, resp_client):
    c = resp_client(ringslot.port)
    d = resp_client(cluster.masters()[0])
    count = c.command("COMMAND", "COUNT")
    assert isinstance(count, int) and count == d.command("COMMAND", "COUNT")
    # (no command with subcommands: their order differs between servers)
    c.send_command("COMMAND", "INFO", "get", "set", "xadd")
    d.send_command("COMMAND", "INFO", "get", "set", "xadd")
    assert c.read_raw() == d.read_raw()


# --- redirections ------------------------------------------------------------------

def test_no_moved_in_steady_state(cluster, make_ringslot):
    rs = make_ringslot(threads=2)
    before = rs.proxy_info()
    for name in ("moved_followed", "ask_followed", "topology_refreshes"):
        assert isinstance(before.get(name), int), "PROXY INFO lacks %s: %r" % (name, before)
    assert before["moved_followed"] == 0
    prefix = unique("steady")
    clients = [rs.client() for _ in range(4)]
    for n, r in enumerate(clients):
        pipe = r.pipeline(transaction=False)
        for i in range(1000):
            pipe.set("%s%d:%d" % (prefix, n, i), i)
            pipe.get("%s%d:%d" % (prefix, n, i))
        got = pipe.execute()
        assert got == [x for i in range(1000) for x in (True, str(i).encode())]
    after = rs.proxy_info()
    assert after["moved_followed"] == 0, after
    assert after["ask_followed"] == 0, after


def test_live_slot_migration(cluster, make_ringslot):
    rs = make_ringslot(threads=2)
    tag = "mig%s" % os.urandom(3).hex()
    slot = keyslot(tag)
    src = cluster.master_for_slot(slot)
    dst = [m for m in cluster.masters() if m != src][0]
    nwriters, nkeys = 2, 100
    keys = [["{%s}:w%d:k%d" % (tag, w, i) for i in range(nkeys)] for w in range(nwriters)]

    r = rs.client()
    pipe = r.pipeline(transaction=False)
    for w in range(nwriters):
        for k in keys[w]:
            pipe.set(k, "init")
    assert pipe.execute() == [True] * (nwriters * nkeys)
    all_keys = [k for ks in keys for k in ks]
    # (other tests' keys may share the slot: count only ours)
    assert cluster.execute(src, "EXISTS", *all_keys) == len(all_keys)

    errors, ops = [], [0] * nwriters
    last = [dict.fromkeys(keys[w], b"init") for w in range(nwriters)]
    stop = threading.Event()

    def writer(w):
        c = rs.client(socket_timeout=30)
        rnd = random.Random(w)
        n = 0
        try:
            while not stop.is_set():
                k = keys[w][n % nkeys]
                v = b"%d:%d" % (w, n)
                if c.set(k, v) is not True:
                    errors.append("writer %d: SET %s failed" % (w, k))
                    return
                last[w][k] = v
                got = c.get(k)
                if got != v:
                    errors.append("writer %d: GET %s = %r after SET %r" % (w, k, got, v))
                    return
                k2 = keys[w][rnd.randrange(nkeys)]
                got = c.get(k2)
                if got != last[w][k2]:
                    errors.append("writer %d: GET %s = %r, last written %r"
                                  % (w, k2, got, last[w][k2]))
                    return
                n += 1
                ops[w] = n
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append("writer %d: %r" % (w, exc))

    def progress(min_ops):
        base = list(ops)
        wait_until(lambda: errors or all(ops[w] - base[w] >= min_ops for w in range(nwriters)),
                   30, what="writers to make progress")

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(nwriters)]
    for t in threads:
        t.start()
    try:
        progress(20)
        # between batches, let the writers hit the half-migrated slot
        batches = cluster.migrate_slot(slot, dst, batch=10, between=lambda: progress(5))
        assert batches >= nwriters * nkeys // 10
        progress(50)        # and the moved slot
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not errors, errors
    assert cluster.execute(src, "CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert cluster.execute(dst, "EXISTS", *all_keys) == len(all_keys)
    d = cluster.client(dst)
    for w in range(nwriters):
        pipe = d.pipeline(transaction=False)
        for k in keys[w]:
            pipe.get(k)
        assert pipe.execute() == [last[w][k] for k in keys[w]]
    info = rs.proxy_info()
    assert info["ask_followed"] > 0 or info["moved_followed"] > 0, info
    cluster.wait_stable(30)   # every node (replicas too) agrees on the new owner


# --- load, shutdown, disconnects ------------------------------------------------------

def test_redis_benchmark(ringslot):
    p = subprocess.run(
        ["redis-benchmark", "-h", helpers.HOST, "-p", str(ringslot.port),
         "-t", "set,get", "-n", "100000", "-c", "50", "-P", "16", "-q"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0, out
    assert "ERR" not in out and "error" not in out.lower(), out
    rates = dict(re.findall(r"\b(SET|GET): ([\d.]+) requests per second", out))
    assert set(rates) == {"SET", "GET"}, out
    assert float(rates["SET"]) > 0 and float(rates["GET"]) > 0, out


def test_sigterm_exits_0(make_ringslot):
    rs = make_ringslot(threads=2)
    r = rs.client()
    k = unique("term") + "k"
    assert r.set(k, "v") is True
    idle = rs.raw()     # a connected idle client must not hold up the exit
    try:
        assert rs.stop(timeout=10) == 0, rs.log_tail()
    finally:
        idle.close()
        r.close()


def test_client_disconnect_with_requests_in_flight(cluster, ringslot_t):
    prefix = unique("dc")
    big = os.urandom(16 << 10)
    errors = []
    stop = threading.Event()

    def checker(i):
        c = ringslot_t.client(socket_timeout=30)
        mine = [prefix + "chk%d:%d" % (i, j) for j in range(50)]
        n = 0
        try:
            while not stop.is_set():
                pipe = c.pipeline(transaction=False)
                for j, k in enumerate(mine):
                    pipe.set(k, "%d:%d:%d" % (i, n, j))
                    pipe.get(k)
                got = pipe.execute(raise_on_error=False)
                want = [x for j in range(len(mine)) for x in (True, b"%d:%d:%d" % (i, n, j))]
                if got != want:
                    errors.append("checker %d round %d: %s" % (i, n, first_mismatch(got, want)))
                    return
                n += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append("checker %d: %r" % (i, exc))

    r = ringslot_t.client()
    bigkeys = [prefix + "big%d" % j for j in range(20)]
    for k in bigkeys:
        r.set(k, big)
    burst = []
    for j in range(1000):
        if j % 3 == 0:
            burst.append(helpers.encode_command("GET", bigkeys[j % len(bigkeys)]))
        elif j % 3 == 1:
            burst.append(helpers.encode_command("SET", prefix + "burst%d" % j, big))
        else:
            burst.append(helpers.encode_command("INCR", prefix + "ctr%d" % (j % 7)))
    burst = b"".join(burst)

    threads = [threading.Thread(target=checker, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for rnd in range(10):
            s = socket.create_connection((helpers.HOST, ringslot_t.port), timeout=10)
            if rnd % 2:   # reset instead of FIN
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                s.sendall(burst)
            except OSError:
                pass
            s.close()
            if errors:
                break
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors

    # fresh clients afterwards get their own values
    for n in range(3):
        c = ringslot_t.client()
        pipe = c.pipeline(transaction=False)
        ks = [prefix + "after%d:%d" % (n, j) for j in range(200)]
        for j, k in enumerate(ks):
            pipe.set(k, j)
        for k in ks:
            pipe.get(k)
        assert pipe.execute() == [True] * 200 + [str(j).encode() for j in range(200)]
        for k in bigkeys[:3]:
            assert c.get(k) == big
        c.close()


def _start_expecting_failure(cluster, port, log_path, timeout=5.0):
    """Run ringslot on `port`; return (exit code or None if it kept running,
    its log)."""
    args = [helpers.ringslot_binary(), "--port", str(port), "--threads", "2"] \
        + cluster.addrs(cluster.masters())
    with open(log_path, "wb") as f:
        p = helpers.popen(args, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
    try:
        rc = p.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        helpers.stop_process(p, 5.0)
    with open(log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    return rc, log


def test_startup_fails_if_port_taken(cluster, ringslot, tmp_path):
    # a port another ringslot serves (both would use SO_REUSEPORT)
    rc, log = _start_expecting_failure(cluster, ringslot.port, tmp_path / "second.log")
    assert rc is not None and rc != 0, \
        "a second ringslot on port %d started (exit %s):\n%s" % (ringslot.port, rc, log)
    assert not any(m in log for m in helpers.SANITIZER_MARKERS), log
    # a port held by a plain listening socket
    port = helpers.free_port()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((helpers.HOST, port))
        s.listen(1)
        rc, log = _start_expecting_failure(cluster, port, tmp_path / "third.log")
    finally:
        s.close()
    assert rc is not None and rc != 0, "ringslot started on a taken port (exit %s):\n%s" % (rc, log)
    assert not any(m in log for m in helpers.SANITIZER_MARKERS), log
    with ringslot.raw() as c:
        assert c.command("PING") == "PONG"


def test_single_shot_recv_fallback(cluster, make_ringslot):
    """Kernels without multishot recv / buffer rings (before 6.0) get the
    single-shot recv path; RINGSLOT_IO=single forces it here. The same
    pipelined workload must come back in order."""
    rs = make_ringslot(threads=1, env={"RINGSLOT_IO": "single"}, extra_args=["--io-backend", "uring"])
    info = rs.proxy_info()
    assert "single-shot" in str(info.get("io_backend", ""))
    r = rs.client()
    keys = [unique("fallback") + ":%d" % (i % 50) for i in range(3000)]
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.incr(k)
    got = pipe.execute()
    seen = {}
    for k, v in zip(keys, got):
        seen[k] = seen.get(k, 0) + 1
        assert v == seen[k]
    # a value larger than one receive buffer, in pieces
    big = b"x" * (3 * 1024 * 1024 + 7)
    r.set("fallback:big", big)
    assert r.get("fallback:big") == big
