#!/usr/bin/python3
"""ringslot benchmark harness (issue 6): `make bench` or `python3 bench/run.py`.

Starts its own 3-master Redis Cluster (Debian redis-server on free 127.0.0.1
ports) and ringslot in front of it (one process with --threads 2, one with
--threads 1), then runs redis-benchmark against ringslot and against the
nodes directly (`--cluster`), interleaved per case and round, and writes

    bench/results/<YYYY-MM-DD>.md    tables, machine, exact commands
    bench/results/<YYYY-MM-DD>.png   throughput by case (gnuplot)
    bench/results/<YYYY-MM-DD>-scaling.png   the scaling table's chart
    bench/README.md                  the "latest results" section

Issue 14: the ringslot runs get as many redis-benchmark client threads as
the direct --cluster runs (3), every throughput row has the masters' CPU per
request in the same run and ringslot's divided by it, a targets table leads
the results, and a scaling table (class Scaling) varies clients, idle
connections, pipeline depth, value size, cluster size and keys per MGET.

The cluster, ringslot processes, free ports, waiting and the RESP client come
from the integration tests' test/integration/helpers.py (Python 3 standard
library plus redis-py, Debian's python3-redis, which `make deps` installs).
Every process started on the bench's behalf goes through helpers.popen (its
own session, PR_SET_PDEATHSIG so a killed harness leaves nothing behind) and
is listed here, so that it is stopped through its own Popen object
(SIGTERM, then SIGKILL) at the end, on error and on Ctrl-C / SIGTERM.

Options: --rounds N (default 5), --quick (1 round, small -n, results go to
bench/results/quick/ and README is not touched), --ringslot PATH,
--series 2,1 (thread counts; 2:epoll runs with --io-backend epoll, 2:before
runs the --before BINARY: side by side in one run), --keep (keep the work
directory with logs), --no-chart.
"""

import argparse
import csv
import datetime
import hashlib
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

sys.path.insert(0, os.path.join(ROOT, "test", "integration"))
try:
    import helpers
except ImportError as exc:      # helpers imports redis-py
    sys.exit("bench: cannot import test/integration/helpers.py (%s); it needs Debian's "
             "python3-redis (`make deps`)" % exc)
from helpers import HOST, RedisCluster, RespClient, RespError, stop_process  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
IDLE_CONNS = 5000
TAIL = 4000     # bytes of a log quoted in anomalies and errors

# --- process control ---------------------------------------------------------

_children = []          # every Popen started for us, for teardown
_helpers_popen = helpers.popen


def _tracked_popen(args, **kw):
    p = _helpers_popen(args, **kw)
    _children.append(p)
    return p


# helpers' RedisCluster and Ringslot start their processes through
# helpers.popen: route it through the list above, so stop_all() also reaches
# a node or ringslot whose start was interrupted before its owner recorded it
helpers.popen = _tracked_popen


def stop_all():
    for p in reversed(_children):
        try:
            stop_process(p, 5.0)
        except Exception:  # noqa: BLE001 - teardown keeps going
            pass
    _children.clear()


class Interrupted(BaseException):
    pass


def _on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


def run_cmd(args, timeout):
    """Run a short-lived command; returns (rc, stdout, stderr, wall seconds).
    rc None: timed out (killed)."""
    p = _tracked_popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _children.remove(p)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), \
        time.monotonic() - t0


# --- ringslot ---------------------------------------------------------------------

def proc_ticks(pid):
    """utime+stime of a process (all threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])      # fields 14 and 15 of stat(5)


def sys_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...; with tick-based
    # accounting (no CONFIG_IRQ_TIME_ACCOUNTING, as on Debian's and this
    # kernel) irq/softirq ticks are also charged to the interrupted task's
    # stime, so they belong to "busy" for the subtraction to add up
    return dict(busy=v[0] + v[1] + v[2] + v[5] + v[6], steal=v[7] if len(v) > 7 else 0)


def ringslot_help(binary):
    try:
        return subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=10).stdout.decode("utf-8", "replace")
    except Exception as exc:  # noqa: BLE001
        return "<%s --help failed: %s>" % (binary, exc)


class Ringslot(helpers.Ringslot):
    """helpers' Ringslot with the bench's command line (--bind, and
    --enable-cross-slot when --help lists it), a series name, restart
    bookkeeping and /proc figures. Started from this process, it inherits the
    raised RLIMIT_NOFILE."""

    def __init__(self, binary, threads, entry_port, workdir, cross_slot_flag, variant=""):
        super().__init__(binary, ["%s:%d" % (HOST, entry_port)], workdir=workdir,
                         threads=threads, ready_timeout=20.0)
        self.cross_slot_flag = cross_slot_flag
        self.variant = variant   # "", "epoll" (--io-backend epoll), "before" (--before binary)
        self.restarts = 0
        self.dead = False

    @property
    def name(self):
        return "ringslot t%d%s" % (self.threads, " " + self.variant if self.variant else "")

    def args(self):
        a = [self.binary, "--port", str(self.port), "--bind", HOST, "--threads", str(self.threads)]
        if self.cross_slot_flag:
            a.append("--enable-cross-slot")
        if self.variant == "epoll":
            a += ["--io-backend", "epoll"]
        if getattr(self, "console_port", None):
            a += ["--console-port", str(self.console_port)]
        return a + self.extra_args + self.entry_points

    def start(self):
        self.port = None      # a fresh free port on every (re)start
        try:
            return super().start()
        except RuntimeError as exc:
            raise RuntimeError("%s: %s" % (self.name, exc)) from None

    def cpu_ticks(self):
        return proc_ticks(self.proc.pid)

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self):
        if self.proc is not None:
            super().stop(5.0)


# --- cases ----------------------------------------------------------------------

def ten_keys(cmd, prefix, value=True):
    out = [cmd]
    for _ in range(10):
        out.append(prefix + "key:__rand_int__")
        if value:
            out.append("xxx")
    return out


class Case:
    def __init__(self, cid, title, args, tests, n, direct_args=None, direct_extra=(),
                 target_key=None, chart=True, ringslot=True, rs_extra=None):
        self.cid = cid
        self.title = title
        self.args = args                 # common args (both targets)
        self.direct_args = direct_args or args
        self.direct_extra = list(direct_extra)
        # the yardstick (issue 14): ringslot runs get as many client threads
        # as the direct --cluster runs, which use one per master
        self.rs_extra = ["--threads", str(CLIENT_THREADS)] if rs_extra is None else list(rs_extra)
        self.tests = tests               # labels of the CSV rows, in order
        self.n = n
        self.target_key = target_key
        self.chart = chart
        self.ringslot = ringslot         # False: a direct-only reference run


def make_cases(quick):
    n_p1, n_p16, n_multi, n_lat, n_lat1 = (20000, 200000, 10000, 20000, 5000) if quick else \
        (200000, 2000000, 100000, 200000, 20000)
    base = ["-r", "100000", "-c", "50"]
    return [
        Case("p1", "SET/GET -P 1",
             ["-t", "set,get"] + base + ["-P", "1", "-n", str(n_p1)],
             ["SET P1", "GET P1"], n_p1, target_key="p1"),
        Case("p16", "SET/GET -P 16",
             ["-t", "set,get"] + base + ["-P", "16", "-n", str(n_p16)],
             ["SET P16", "GET P16"], n_p16, target_key="p16"),
        Case("mset", "MSET 10 keys",
             ["-r", "100000", "-n", str(n_multi), "-c", "50"] + ten_keys("MSET", ""),
             ["MSET 10"], n_multi,
             direct_args=["-r", "100000", "-n", str(n_multi), "-c", "50"] + ten_keys("MSET", "{tag}"),
             target_key="multi"),
        Case("mget", "MGET 10 keys",
             ["-r", "100000", "-n", str(n_multi), "-c", "50"] + ten_keys("MGET", "", value=False),
             ["MGET 10"], n_multi,
             direct_args=["-r", "100000", "-n", str(n_multi), "-c", "50"] +
             ten_keys("MGET", "{tag}", value=False),
             target_key="multi"),
        # GET latency: one client thread on both sides (the issue's reference
        # is --cluster --threads 1), so "added latency" compares like with like
        Case("lat", "GET latency (one client thread)",
             ["-t", "get"] + base + ["-P", "1", "-n", str(n_lat)],
             ["GET lat"], n_lat, direct_extra=["--threads", "1"], chart=False,
             rs_extra=["--threads", "1"]),
        # the hop's own cost: one connection, so no queueing behind 49 others
        Case("lat1", "GET latency (one connection)",
             ["-t", "get", "-r", "100000", "-c", "1", "-P", "1", "-n", str(n_lat1)],
             ["GET lat c1"], n_lat1, direct_extra=["--threads", "1"], chart=False,
             rs_extra=["--threads", "1"]),
    ]


QUANTUM = 0.25   # s: time resolution of multi-threaded redis-benchmark (--cluster or --threads)
CLIENT_THREADS = 3   # redis-benchmark --cluster runs one thread per master: 3
# issue 14's targets, all from one run
TARGETS = {   # throughput ratio to direct
    "p1": 0.75, "p16": 0.80, "multi": 0.75,
}
CPU_RATIO_TARGETS = {"p1": 0.75, "p16": 0.35}   # ringslot CPU/request ÷ nodes' CPU/request
CPU_TARGETS = {}       # requests per ringslot CPU-second: informative since issue 14
LAT_TARGET = (0.08, 0.15)   # added GET latency p50 / p99, ms (ringslot minus direct)
VALUE_TARGET = 0.85         # 16 KB and 256 KB values, ratio to direct
BYTES_PER_CONN_TARGET = 1024
SCALE_CLIENTS_TARGET = 0.15   # throughput and CPU/request within 15% of the 50-client figure
SCALE_MASTERS_TARGET = 0.10   # throughput at 30 masters within 10% of 3


def bench_cmd(case, port, direct):
    # options first: redis-benchmark takes everything after the first
    # non-option as the command, so --csv must precede a custom command
    args = ["redis-benchmark", "-h", HOST, "-p", str(port), "--csv"]
    if direct:
        args += ["--cluster"] + case.direct_extra + case.direct_args
    else:
        args += case.rs_extra + case.args
    return args


def parse_csv(out):
    rows = []
    # progress output uses \r; keep only the CSV lines
    lines = [l for l in out.replace("\r", "\n").split("\n") if l.startswith('"')]
    for rec in csv.reader(lines):
        if not rec or rec[0] == "test" or len(rec) < 8:
            continue
        try:
            rows.append({"test": rec[0], "rps": float(rec[1]), "avg": float(rec[2]),
                         "p50": float(rec[4]), "p95": float(rec[5]), "p99": float(rec[6]),
                         "max": float(rec[7])})
        except ValueError:
            continue
    return rows


LOG_BAD_RE = re.compile(r"^\d+:\w \d+ \w+ \d+ [\d:.]+ [#!] ")
ERR_RE = re.compile(r"(error|CROSSSLOT|MOVED|refused|reset by peer|closed|timeout)", re.I)


# --- the run -----------------------------------------------------------------------

def _read_line(s):
    """Read a one-line reply (up to CRLF, or what came before EOF) from a raw socket."""
    data = b""
    while not data.endswith(b"\r\n"):
        d = s.recv(64)
        if not d:
            break
        data += d
    return data


class Bench:
    def __init__(self, opts):
        self.opts = opts
        self.cases = make_cases(opts.quick)
        self.results = []      # dicts: round, case, target, test, rps, p50, p99, cpu, ...
        self.loads = []        # per run: client / nodes / other processes' CPU, in cores
        self.anomalies = []
        self.commands = {}     # (case, target) -> command line
        self.memory = {}
        self.cross_slot_probe = {}

    def note(self, msg, rnd=None):
        """Record an anomaly; the same message in several rounds is listed once
        with its rounds."""
        print("!! " + ("round %d: " % rnd if rnd else "") + msg, flush=True)
        for a in self.anomalies:
            if a[0] == msg:
                if rnd:
                    a[1].append(rnd)
                return
        self.anomalies.append((msg, [rnd] if rnd else []))

    def _node_pids(self):
        return [n.proc.pid for n in self.cluster.nodes.values()]

    def _ours_ticks(self):
        """CPU ticks of the long-running processes we started (nodes, every
        ringslot, also idle ones)."""
        total = 0
        pids = self._node_pids() + [rs.proc.pid for rs in self.rs if rs.running()]
        for pid in pids:
            try:
                total += proc_ticks(pid)
            except OSError:
                pass
        return total

    def run_one(self, rnd, case, target, rs=None, timeout=120):
        direct = rs is None
        tname = "direct" if direct else rs.name
        if not direct and rs.dead:
            return
        if not direct and not rs.running():
            if not self.restart(rs, "before %s" % case.cid, rnd):
                return
        port = self.cluster.ports[0] if direct else rs.port
        args = bench_cmd(case, port, direct)
        shown = list(args)
        self.commands.setdefault((case.cid, tname), " ".join(_quote(a) for a in shown))
        t0 = None if direct else rs.cpu_ticks()
        nodes0 = sum(proc_ticks(pid) for pid in self._node_pids())
        ours0, sys0 = self._ours_ticks(), sys_ticks()
        ch0, self0 = resource.getrusage(resource.RUSAGE_CHILDREN), \
            resource.getrusage(resource.RUSAGE_SELF)
        rc, out, err, wall = run_cmd(args, timeout)
        ch1, self1 = resource.getrusage(resource.RUSAGE_CHILDREN), \
            resource.getrusage(resource.RUSAGE_SELF)
        ours1, sys1 = self._ours_ticks(), sys_ticks()
        nodes1 = sum(proc_ticks(pid) for pid in self._node_pids())
        client = (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime)
        harness = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)
        busy = (sys1["busy"] - sys0["busy"]) / CLK_TCK
        foreign = busy - (ours1 - ours0) / CLK_TCK - client - harness
        load = dict(client=client / wall, nodes=(nodes1 - nodes0) / CLK_TCK / wall,
                    foreign=foreign / wall,
                    steal=(sys1["steal"] - sys0["steal"]) / CLK_TCK / wall)
        cpu = None
        if not direct:
            if rs.running():
                cpu = (rs.cpu_ticks() - t0) / CLK_TCK
            else:
                self.note("%s died during %s round %d (exit %s); log tail:\n%s" %
                          (rs.name, case.cid, rnd, rs.proc.returncode, rs.log_tail(TAIL)))
        rows = parse_csv(out)
        problem = None
        if rc is None:
            problem = "timed out after %ds" % timeout
        elif rc != 0 or len(rows) != len(case.tests):
            problem = "rc %s, %d CSV rows" % (rc, len(rows))
        errtext = "\n".join(l.strip() for l in (err + "\n" + out).replace("\r", "\n").split("\n")
                            if ERR_RE.search(l) and not l.startswith('"'))
        if errtext:
            problem = (problem + "; " if problem else "") + "output: " + errtext[:600]
        if problem:
            self.note("%s %s: %s" % (tname, case.cid, problem), rnd)
        if rc is None and not direct and rs.running():
            # a hung proxy would eat the time budget run after run
            self.note("%s hung in %s; stopping it. log tail:\n%s" %
                      (rs.name, case.cid, rs.log_tail(TAIL)), rnd)
            rs.stop()
        if not problem:   # a process that died mid-run leaves the subtraction short
            self.loads.append(dict(round=rnd, case=case.cid, target=tname, wall=wall, **load))
        for label, row in zip(case.tests, rows):
            self.results.append(dict(round=rnd, case=case.cid, target=tname, test=label,
                                     rps=row["rps"], p50=row["p50"], p99=row["p99"],
                                     cpu=cpu, wall=wall, nodes_cpu=(nodes1 - nodes0) / CLK_TCK,
                                     requests=case.n * len(case.tests),
                                     problem=problem))
        summary = " ".join("%s=%.0f" % (l, r["rps"]) for l, r in zip(case.tests, rows))
        extra = "" if cpu is None else " cpu=%.2fs" % cpu
        print("  r%d %-6s %-12s %6.1fs %s%s  [client %.2f nodes %.2f other %.2f cores]%s" % (
            rnd, case.cid, tname, wall, summary, extra, load["client"], load["nodes"],
            load["foreign"], " [%s]" % problem[:80] if problem else ""), flush=True)

    def scan_log(self, rs):
        """Warnings (#) and errors (!) in ringslot's log become anomalies."""
        try:
            with open(rs.log_path, errors="replace") as f:
                bad = [l.rstrip() for l in f if LOG_BAD_RE.match(l)]
        except OSError:
            return
        if bad:
            self.note("%s logged %d warning/error line(s), first ones:\n%s" %
                      (rs.name, len(bad), "\n".join(bad[:8])))

    def restart(self, rs, when, rnd):
        """Restart a ringslot that died; a series whose ringslot cannot be
        started again is dropped from the remaining runs."""
        self.note("%s was not running %s (exit %s); restarting. log tail:\n%s" %
                  (rs.name, when, rs.proc.returncode if rs.proc else None, rs.log_tail(TAIL)), rnd)
        rs.stop()
        rs.restarts += 1
        if rs.restarts > 3:
            self.note("%s: giving up after 3 restarts; its remaining runs are skipped" % rs.name)
            rs.dead = True
            return False
        try:
            rs.start()
            return True
        except RuntimeError as exc:
            self.note("%s: restart failed, its remaining runs are skipped: %s" % (rs.name, exc))
            rs.dead = True
            return False

    def probe_cross_slot(self, rs):
        keys = ["bench:xs:%d" % i for i in range(10)]
        res = {}
        try:
            with RespClient(HOST, rs.port, timeout=5.0) as c:
                args = ["MSET"]
                for k in keys:
                    args += [k, "v"]
                res["MSET"] = c.command(*args)
                res["MGET"] = c.command("MGET", *keys)
        except Exception as exc:  # noqa: BLE001
            res["error"] = repr(exc)
        ok = res.get("MSET") == "OK" and isinstance(res.get("MGET"), list) and \
            all(v == b"v" for v in res["MGET"])
        text = "ok" if ok else "; ".join(
            "%s -> %r" % (k, v[:3] if isinstance(v, list) else str(v) if isinstance(v, RespError) else v)
            for k, v in res.items())
        self.cross_slot_probe[rs.name] = text
        if not ok:
            self.note("%s refuses or breaks 10-key cross-slot MSET/MGET: %s" % (rs.name, text))

    def warm_buffer_ring(self, rs):
        """Cycle every receive buffer of ringslot's provided-buffer rings once:
        the kernel touches them page by page as connections are read, a fixed
        cost per worker (up to 1024 x 4 KB) that belongs to the idle figure,
        not to the connections measured after it."""
        socks = [socket.create_connection((HOST, rs.port), timeout=5) for _ in range(64)]
        try:
            for _ in range(80):
                for s in socks:
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                for s in socks:
                    _read_line(s)
        finally:
            for s in socks:
                s.close()

    def measure_memory(self, rs, nconns=IDLE_CONNS, record=True):
        self.warm_buffer_ring(rs)
        time.sleep(0.5)
        idle = rs.rss_kb()
        socks = []
        failed = 0
        try:
            for _ in range(nconns):
                try:
                    s = socket.create_connection((HOST, rs.port), timeout=5)
                    s.sendall(b"*1\r\n$4\r\nPING\r\n")
                    socks.append(s)
                except OSError:
                    failed += 1
            good = 0
            for s in socks:
                try:
                    good += _read_line(s) == b"+PONG\r\n"
                except OSError:
                    pass
            time.sleep(1.0)
            loaded = rs.rss_kb()
        finally:
            for s in socks:
                s.close()
        conns = good
        per = (loaded - idle) * 1024.0 / conns if conns else None
        mm = dict(idle_kb=idle, loaded_kb=loaded, conns=conns,
                  failed=failed + len(socks) - good, per=per)
        if record:
            self.memory[rs.name] = mm
        print("  memory %s: idle %d kB, with %d conns %d kB -> %s B/conn" %
              (rs.name, idle, conns, loaded, "%.0f" % per if per is not None else "n/a"), flush=True)
        if conns != nconns:
            self.note("%s: only %d of %d idle connections answered PING" % (rs.name, conns, nconns))
        # let ringslot see the closes before the benchmarks start
        time.sleep(1.0)
        return mm

    def run_scaling(self):
        self.scaling = Scaling(self)
        self.scaling.run()

    def run_replica_reads(self):
        """The replica-reads rows (after the main cases: their nodes idle)."""
        if "--read-from-replicas" not in self.help:
            self.note("ringslot --help does not mention --read-from-replicas; "
                      "replica-read rows skipped")
            return
        self.replica_reads = ReplicaReads(self)
        self.replica_reads.run()

    def run_tls_rows(self):
        """The TLS rows (issue 12), after the main cases."""
        if "--tls-port" not in self.help or not shutil.which("stunnel4"):
            self.note("no --tls-port in ringslot --help, or no stunnel4: TLS rows skipped")
            return
        self.tls_rows = TlsRows(self)
        self.tls_rows.run()

    def run_tls_only(self):
        self.workdir = tempfile.mkdtemp(prefix="ringslot-bench-")
        self.binary = os.path.join(self.workdir, "ringslot")
        shutil.copy2(self.opts.ringslot, self.binary)
        self.help = ringslot_help(self.binary)
        self.run_tls_rows()

    def run_replica_reads_only(self):
        self.workdir = tempfile.mkdtemp(prefix="ringslot-bench-")
        self.binary = os.path.join(self.workdir, "ringslot")
        shutil.copy2(self.opts.ringslot, self.binary)
        self.help = ringslot_help(self.binary)
        self.run_replica_reads()

    def run(self):
        o = self.opts
        self.t_start = time.monotonic()
        self.t_round = 0.0          # the longest main round so far (s)
        self.rounds_cut = None      # (run, planned) when the budget cut the main rounds
        self.started_at = datetime.datetime.now()
        self.load_before = open("/proc/loadavg").read().split()[:3]
        self.workdir = tempfile.mkdtemp(prefix="ringslot-bench-")
        print("work directory: %s" % self.workdir, flush=True)
        # run a private copy: the binary cannot change under a long run, and
        # `make release` (cp onto ./ringslot) is not refused with ETXTBSY
        self.binary = os.path.join(self.workdir, "ringslot")
        shutil.copy2(o.ringslot, self.binary)
        with open(self.binary, "rb") as f:
            self.binary_sha = hashlib.sha256(f.read()).hexdigest()[:12]
        self.help = ringslot_help(self.binary)
        self.cross_flag = "--enable-cross-slot" in self.help
        if not self.cross_flag:
            self.note("ringslot --help does not mention --enable-cross-slot; "
                      "MSET/MGET cases run without it")
        self.cluster = RedisCluster(os.path.join(self.workdir, "cluster"), masters=3, replicas=0,
                                    node_timeout=5000)
        print("starting 3-master cluster ...", flush=True)
        self.cluster.start()
        print("cluster ok on ports %s" % self.cluster.ports, flush=True)
        self.rs = []
        if o.before:
            self.before_binary = os.path.join(self.workdir, "ringslot-before")
            shutil.copy2(o.before, self.before_binary)
        for t, variant in o.series:
            binary = self.before_binary if variant == "before" else self.binary
            rs = Ringslot(binary, t, self.cluster.ports[0], self.workdir, self.cross_flag, variant)
            rs.start()
            print("%s on port %d: ./ringslot %s" % (rs.name, rs.port, " ".join(rs.args()[1:])),
                  flush=True)
            self.measure_memory(rs)
            self.probe_cross_slot(rs)
            self.rs.append(rs)

        # warm-up (not measured): fill the keyspaces, warm every path once
        warm_n = "20000" if o.quick else "100000"
        warm = Case("warm", "warm-up", ["-t", "set,get", "-r", "100000", "-c", "50", "-P", "16",
                                        "-n", warm_n], ["SET", "GET"], int(warm_n))
        print("warm-up ...", flush=True)
        for rs in self.rs:
            run_cmd(bench_cmd(warm, rs.port, False), 120)
        run_cmd(bench_cmd(warm, self.cluster.ports[0], True), 120)

        self.t_main = time.monotonic()
        planned = 0 if o.scaling_only else o.rounds
        rnd = 0
        while rnd < planned and self.another_round(rnd):
            rnd += 1
            t_round = time.monotonic()
            print("round %d/%d" % (rnd, planned), flush=True)
            order = [self.rs[0], None] + self.rs[1:]     # A B A' ...
            if rnd % 2 == 0:
                order.reverse()                           # ... A' B A on even rounds
            for case in self.cases:
                for rs in order:
                    if rs is None or case.ringslot:
                        self.run_one(rnd, case, "direct" if rs is None else rs.name, rs)
            self.t_round = max(self.t_round, time.monotonic() - t_round)
        if planned and rnd < planned:
            print("main cases: %d round(s) instead of %d (to fit %d minutes: a round took "
                  "%.0f s)" % (rnd, planned, BUDGET_S // 60, self.t_round), flush=True)
            self.rounds_cut = (rnd, planned)
            o.rounds = rnd     # every table and the later parts use the rounds run
        for rs in self.rs:
            if not rs.running():
                self.note("%s not running at the end (exit %s); log tail:\n%s" %
                          (rs.name, rs.proc.returncode, rs.log_tail(TAIL)))
            self.scan_log(rs)
        self.t_main = time.monotonic() - self.t_main
        self.timings = [("main cases", self.t_main)]
        parts = []
        if not o.no_scaling and not o.main_only:
            parts.append(("scaling", self.run_scaling))
        if not o.scaling_only and not o.main_only:
            parts += [("replica reads", self.run_replica_reads), ("TLS rows", self.run_tls_rows)]
        for title, fn in parts:
            # a part that fails is an anomaly, not the end of the run: the
            # other parts' figures are still worth writing
            t0 = time.monotonic()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001
                self.note("%s failed: %s" % (title, exc))
            self.timings.append((title, time.monotonic() - t0))
        self.load_after = open("/proc/loadavg").read().split()[:3]
        self.elapsed = time.monotonic() - self.t_start

    def another_round(self, done):
        """Whether the main cases get another round. A default full run is
        held to BUDGET_S: past MAIN_ROUNDS_MIN rounds, one more runs only if
        it and the later parts (scaling, replica reads, TLS rows: about
        REST_UNITS runs of one case set, wherever measured) still fit. On a
        slower machine that means fewer rounds, not a longer run. An explicit
        --rounds is run in full."""
        o = self.opts
        if done < MAIN_ROUNDS_MIN or not o.budgeted:
            return True
        unit = self.t_round / (len(self.rs) + 1)    # one series' (or direct's) share
        rest = 0 if o.main_only else REST_UNITS * unit
        projected = time.monotonic() - self.t_start + self.t_round + rest
        return projected <= BUDGET_S


# --- reads from replicas (issue 13) ---------------------------------------------------

class ReplicaReads:
    """GET -P 16 through one ringslot (--threads 2) with --read-from-replicas
    no and yes (switched by PROXY CONFIG SET, interleaved per round), on a
    cluster of its own: 3 masters + 1 replica each, so the main cases keep
    their replica-less cluster unchanged. Per run: throughput, latency,
    ringslot's CPU and the CPU of the masters vs the replicas."""

    SETTINGS = ("no", "yes")

    def __init__(self, bench):
        self.b = bench
        # half the P16 case's -n and at most REPLICA_ROUNDS rounds: to fit 15 minutes
        self.n = 100000 if bench.opts.quick else 1000000
        self.rounds = min(bench.opts.rounds, REPLICA_ROUNDS)
        self.args = ["-t", "get", "-r", "100000", "-c", "50", "-P", "16", "-n", str(self.n)]
        self.rows = []          # dicts: round, setting, rps, p50, p99, proxy, masters, replicas

    def start(self):
        b = self.b
        self.cluster = RedisCluster(os.path.join(b.workdir, "cluster-replicas"), masters=3,
                                    replicas=1, node_timeout=5000)
        print("starting 3-master + 3-replica cluster ...", flush=True)
        self.cluster.start()
        self.masters = self.cluster.masters()
        self.replicas = self.cluster.replicas()
        self.rs = Ringslot(b.binary, 2, self.masters[0], b.workdir, False)
        self.rs.start()
        print("ringslot for replica reads on port %d" % self.rs.port, flush=True)
        run_cmd(bench_cmd(Case("warm", "warm-up", ["-t", "set", "-r", "100000", "-c", "50",
                                                   "-P", "16", "-n", "100000"], ["SET"], 100000),
                          self.rs.port, False), 120)

    def set_mode(self, setting):
        with RespClient(HOST, self.rs.port, timeout=5.0) as c:
            c.command("PROXY", "CONFIG", "SET", "read-from-replicas", setting)
            want = 3 if setting == "yes" else 0
            helpers.wait_until(lambda: int(helpers.parse_info(c.command("INFO", "cluster"))
                                           ["replicas_readable"]) == want,
                               10, what="%d readable replicas" % want)

    def run_one(self, rnd, setting):
        self.set_mode(setting)
        pids = {p: self.cluster.nodes[p].proc.pid for p in self.masters + self.replicas}
        t0 = {p: proc_ticks(pid) for p, pid in pids.items()}
        rs0 = self.rs.cpu_ticks()
        rc, out, err, wall = run_cmd(["redis-benchmark", "-h", HOST, "-p", str(self.rs.port),
                                      "--csv"] + self.args, 300)
        d = {p: (proc_ticks(pid) - t0[p]) / CLK_TCK / wall for p, pid in pids.items()}
        rows = parse_csv(out)
        if rc != 0 or len(rows) != 1:
            self.b.note("replica reads %s: rc %s, %d CSV rows %s" % (setting, rc, len(rows),
                                                                     err[:300]), rnd)
            return
        row = dict(round=rnd, setting=setting, rps=rows[0]["rps"], p50=rows[0]["p50"],
                   p99=rows[0]["p99"], proxy=(self.rs.cpu_ticks() - rs0) / CLK_TCK / wall,
                   masters=sum(d[p] for p in self.masters),
                   replicas=sum(d[p] for p in self.replicas))
        self.rows.append(row)
        print("  r%d GET P16 read-from-replicas %-3s %s rps  p50 %.3f ms  cores: ringslot %.2f "
              "masters %.2f replicas %.2f" % (rnd, setting, fmt_rps(row["rps"]), row["p50"],
                                              row["proxy"], row["masters"], row["replicas"]),
              flush=True)

    def run(self):
        self.start()
        try:
            for rnd in range(1, self.rounds + 1):
                order = self.SETTINGS if rnd % 2 else tuple(reversed(self.SETTINGS))
                for setting in order:
                    self.run_one(rnd, setting)
        finally:
            self.rs.stop()
            self.cluster.stop()

    def render(self):
        L = ["## Reads from replicas (GET -P 16)", "",
             "One ringslot (`--threads 2`) in front of 3 masters + 1 replica each; "
             "`redis-benchmark %s`, with `--read-from-replicas` switched by `PROXY CONFIG SET` "
             "between runs (interleaved, medians over %d round(s)). CPU in cores: ringslot, the 3 "
             "masters together, the 3 replicas together (with `no` the replicas only apply "
             "replication; there is no write load here)." % (" ".join(self.args), self.rounds),
             "", "| read-from-replicas | GET rps | p50 ms | p99 ms | ringslot | masters | replicas |",
             "|---|---:|---:|---:|---:|---:|---:|"]
        for setting in self.SETTINGS:
            rows = [r for r in self.rows if r["setting"] == setting]
            if not rows:
                L.append("| %s | - | - | - | - | - | - |" % setting)
                continue
            L.append("| %s | %s | %.3f | %.3f | %.2f | %.2f | %.2f |" % (
                setting, fmt_rps(med([r["rps"] for r in rows])), med([r["p50"] for r in rows]),
                med([r["p99"] for r in rows]), med([r["proxy"] for r in rows]),
                med([r["masters"] for r in rows]), med([r["replicas"] for r in rows])))
        L.append("")
        return L


class TlsRows:
    """TLS through ringslot (issue 12), on a cluster of its own per backend
    kind, P1 and P16 GET/SET (50 clients), interleaved per round:

        plain    redis-benchmark ─► ringslot port ─► plain nodes  (reference)
        tls      redis-benchmark --tls ─► ringslot tls-port ─► plain nodes
        tls-tls  redis-benchmark --tls ─► ringslot tls-port --tls ─► TLS nodes
        stunnel  redis-benchmark --tls ─► stunnel4 ─► ringslot port ─► plain
                 nodes (what users run today in front of a TLS-less proxy)

    CPU per request is ringslot's, plus stunnel's for the last row. The
    client does not present a certificate (tls-auth-clients no): the rows
    compare the encryption, not the verification of client certificates."""

    SETTINGS = ("plain", "tls", "tls-tls", "stunnel")

    def __init__(self, bench):
        self.b = bench
        quick = bench.opts.quick
        # shrunk to fit make bench's 15 minutes: the stunnel row alone ran
        # ~40 s per P1 run at the main cases' -n, and ~30 s at -n 100000 on
        # a slower VM
        self.n = (10000, 100000) if quick else (TLS_N_P1, 10 * TLS_N_P1)
        self.cases = [("P1", ["-t", "set,get", "-r", "100000", "-c", "50", "-P", "1",
                              "-n", str(self.n[0])]),
                      ("P16", ["-t", "set,get", "-r", "100000", "-c", "50", "-P", "16",
                               "-n", str(self.n[1])])]
        self.rounds = 1 if quick else min(bench.opts.rounds, TLS_ROUNDS)
        if self.rounds < bench.opts.rounds:
            print("TLS rows: %d round(s) instead of %d, -n %d / %d (to fit 15 minutes)" %
                  ((self.rounds, bench.opts.rounds) + self.n), flush=True)
        self.rows = []   # round, setting, case, test, rps, p50, cpu (ringslot [+ stunnel])
        self.procs = []
        self.settings = self.SETTINGS

    def _ringslot(self, entry_port, extra, tls_port):
        cert, key = self.certs.pair("server")
        rs = Ringslot(self.b.binary, 2, entry_port, self.b.workdir, False)
        rs.ready_timeout = 8.0 if self.b.opts.quick else 20.0
        rs.tls_port = tls_port
        base_args = rs.args

        def args():
            a = base_args()
            return a[:-1] + ["--tls-port", str(tls_port), "--tls-cert-file", cert,
                             "--tls-key-file", key, "--tls-ca-cert-file", self.certs.ca,
                             "--tls-auth-clients", "no"] + extra + a[-1:]
        rs.args = args
        rs.start()
        return rs

    def _stunnel(self, accept_port, to_port):
        cert, key = self.certs.pair("server")
        conf = os.path.join(self.b.workdir, "stunnel-%d.conf" % accept_port)
        with open(conf, "w") as f:
            f.write("foreground = yes\npid =\n[redis]\naccept = %s:%d\nconnect = %s:%d\n"
                    "cert = %s\nkey = %s\n" % (HOST, accept_port, HOST, to_port, cert, key))
        p = _tracked_popen(["stunnel4", conf], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        helpers.wait_until(lambda: _port_open(accept_port), 10, what="stunnel to listen")
        return p

    def start(self):
        import tls_certs
        b = self.b
        self.certs = tls_certs.make_certs(os.path.join(b.workdir, "certs"))
        self.plain_cluster = RedisCluster(os.path.join(b.workdir, "cluster-tls-plain"),
                                          masters=3, replicas=0, node_timeout=5000)
        self.tls_cluster = tls_certs.TlsRedisCluster(os.path.join(b.workdir, "cluster-tls"),
                                                     self.certs, masters=3, replicas=0,
                                                     node_timeout=5000)
        print("starting a plain and a TLS-only 3-master cluster ...", flush=True)
        self.plain_cluster.start()
        self.tls_cluster.start()
        client_cert, client_key = self.certs.pair("client")
        self.rs = self._ringslot(self.plain_cluster.ports[0], [], helpers.free_port())
        try:
            self.rs_tls = self._ringslot(self.tls_cluster.ports[0],
                                         ["--tls", "--tls-cacert", self.certs.ca, "--tls-cert",
                                          client_cert, "--tls-key", client_key],
                                         helpers.free_port())
        except RuntimeError as exc:
            # the other settings are still worth measuring
            self.b.note("TLS: ringslot --tls to TLS-only nodes did not start; tls-tls rows "
                        "skipped: %s" % str(exc)[:1500])
            self.rs_tls = None
            self.settings = tuple(x for x in self.settings if x != "tls-tls")
        self.stunnel_port = helpers.free_port()
        self.stunnel = self._stunnel(self.stunnel_port, self.rs.port)
        # a TLS port that does not listen makes redis-benchmark retry until
        # its timeout: check each once, skip what is not there
        for setting in ("tls", "tls-tls"):
            if setting not in self.settings:
                continue
            port = self.target(setting)[0]
            try:
                helpers.wait_until(lambda: _port_open(port), 5, what="TLS port %d" % port)
            except TimeoutError:
                self.b.note("TLS: ringslot's --tls-port %d does not accept connections; %s rows "
                            "skipped" % (port, setting))
                self.settings = tuple(x for x in self.settings if x != setting)

    def target(self, setting):
        """(port, tls?, [(pid source)...]) of a setting's run."""
        if setting == "plain":
            return self.rs.port, False, [self.rs.proc.pid]
        if setting == "tls":
            return self.rs.tls_port, True, [self.rs.proc.pid]
        if setting == "tls-tls":
            return self.rs_tls.tls_port, True, [self.rs_tls.proc.pid]
        return self.stunnel_port, True, [self.rs.proc.pid, self.stunnel.pid]

    def run_one(self, rnd, setting, case, args):
        port, tls, pids = self.target(setting)
        cmd = ["redis-benchmark", "-h", HOST, "-p", str(port), "--csv"] + args
        if tls:
            cmd[1:1] = ["--tls", "--cacert", self.certs.ca]
        t0 = [proc_ticks(pid) for pid in pids]
        rc, out, err, wall = run_cmd(cmd, 300)
        cpu = sum(proc_ticks(pid) - t for pid, t in zip(pids, t0)) / CLK_TCK
        rows = parse_csv(out)
        if rc != 0 or len(rows) != 2:
            self.b.note("TLS %s %s: rc %s, %d CSV rows %s" % (setting, case, rc, len(rows),
                                                             (err or out)[:300]), rnd)
            return
        n = int(args[args.index("-n") + 1])
        for label, row in zip(("SET", "GET"), rows):
            self.rows.append(dict(round=rnd, setting=setting, case=case, test=label,
                                  rps=row["rps"], p50=row["p50"], cpu=cpu, requests=2 * n))
        print("  r%d TLS %-4s %-8s SET=%.0f GET=%.0f cpu=%.2fs" % (
            rnd, case, setting, rows[0]["rps"], rows[1]["rps"], cpu), flush=True)

    def run(self):
        try:
            self.start()
            for rnd in range(1, self.rounds + 1):
                order = self.settings if rnd % 2 else tuple(reversed(self.settings))
                for case, args in self.cases:
                    for setting in order:
                        self.run_one(rnd, setting, case, args)
        finally:
            for rs in (getattr(self, "rs", None), getattr(self, "rs_tls", None)):
                if rs is not None:
                    rs.stop()
            if getattr(self, "stunnel", None) is not None:
                stop_process(self.stunnel, 5.0)
            for c in (getattr(self, "plain_cluster", None), getattr(self, "tls_cluster", None)):
                if c is not None:
                    c.stop()

    def render(self):
        L = ["## TLS (issue 12)", "",
             "One ringslot (`--threads 2`, `--tls-port`, `tls-auth-clients no`) per backend kind, "
             "redis-benchmark `-t set,get -r 100000 -c 50` (`--tls --cacert` on the TLS rows), "
             "medians over %d round(s) (at most %d, -n %d at P1 and %d at P16, to fit "
             "make bench's 15 minutes). *plain*: ringslot's plain port; *tls*: its TLS port, "
             "plain nodes; *tls-tls*: its TLS port and `--tls` to TLS-only nodes; *stunnel*: "
             "stunnel4 terminating TLS in front of the plain port. Requests per CPU-second "
             "count ringslot's CPU, plus stunnel's on the stunnel row." %
             ((self.rounds, TLS_ROUNDS) + self.n), "",
             "| case | setting | SET rps | GET rps | GET p50 ms | requests / CPU-second | "
             "vs plain |", "|---|---|---:|---:|---:|---:|---:|"]
        for case, _args in self.cases:
            eff = {}
            for setting in self.SETTINGS:
                rows = [r for r in self.rows if r["setting"] == setting and r["case"] == case]
                sets = [r for r in rows if r["test"] == "SET"]
                gets = [r for r in rows if r["test"] == "GET"]
                eff[setting] = med([r["requests"] / r["cpu"] for r in sets if r["cpu"]])
            for setting in self.SETTINGS:
                rows = [r for r in self.rows if r["setting"] == setting and r["case"] == case]
                sets = [r for r in rows if r["test"] == "SET"]
                gets = [r for r in rows if r["test"] == "GET"]
                ratio = (eff[setting] / eff["plain"]) if eff.get(setting) and eff.get("plain") \
                    else None
                L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    case, setting, fmt_rps(med([r["rps"] for r in sets])),
                    fmt_rps(med([r["rps"] for r in gets])),
                    "%.3f" % med([r["p50"] for r in gets]) if gets else "n/a",
                    fmt_rps(eff[setting]), fmt_ratio(ratio) if ratio else "n/a"))
        L.append("")
        return L



# --- time budget of a default full run (make bench: under 15 minutes) ---------------

BUDGET_S = 14 * 60        # a default full run: under make bench's 15 minutes
MAIN_ROUNDS_MIN = 3       # the main cases' medians need at least this many rounds
# The parts after the main cases (scaling, replica reads, TLS rows at the
# sizes below) take about this many times one series' share of a main round:
# measured 14.4 (2026-12-03, Xeon VM, 369 s after 77 s rounds of 3 series) to
# about 18.6 (2026-12-02, a slower Xeon VM; the same parts re-sized to today's
# -n and rounds); the larger, so the projection errs on the short side.
REST_UNITS = 19
REPLICA_ROUNDS = 3        # full run: reads-from-replicas rounds
TLS_ROUNDS = 2            # full run: the TLS rows' rounds (issue 12)
TLS_N_P1 = 50000          # full run: the TLS rows' -n at P1 (ten times that at P16)

# --- scaling (issue 14: cost as the work grows) --------------------------------------

SCALE_ROUNDS = 2          # full run: medians of up to this many interleaved rounds
IDLE_CONNS_WANTED = 50000
LOG_LINE_RE = re.compile(r"^\d+:(\w) (\d+ \w+ \d+ [\d:]+\.\d+) (\S) (.*)$")


def log_events(path, pattern):
    """(wall-clock timestamp, message) of ringslot log lines matching pattern."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = LOG_LINE_RE.match(line.rstrip("\n"))
                if m and re.search(pattern, m.group(4)):
                    ts = datetime.datetime.strptime(m.group(2), "%d %b %Y %H:%M:%S.%f").timestamp()
                    out.append((ts, m.group(4)))
    except OSError:
        pass
    return out


def n_keys(cmd, k, tag):
    return [cmd] + ["%skey:__rand_int__" % tag for _ in range(k)]


def http_get(port, path):
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    return data.decode("utf-8", "replace").split("\r\n\r\n", 1)[-1]


class Scaling:
    """The "scaling" table: how throughput, CPU per request and memory move
    as one dimension of the work grows, the others held at the main cases'
    -c 50 -P 1. Runs after the main rounds on the same 3-master cluster and
    the first ringslot series (clients, pipeline, value size, cross-slot
    keys), on a fresh ringslot (idle connections) and on clusters of its own
    (cluster size). Ringslot runs use --threads 3 client threads like the
    direct --cluster runs; runs of one round are interleaved ringslot,
    direct (reversed on even rounds)."""

    CLIENTS = (50, 500, 5000)
    DEPTHS = (1, 16, 128)
    VALUES = (16, 1024, 16384, 262144)
    XKEYS = (2, 10, 100)
    MASTERS = (3, 9, 30)

    def __init__(self, bench):
        self.b = bench
        o = bench.opts
        self.quick = o.quick
        self.rounds = 1 if o.quick else min(o.rounds, SCALE_ROUNDS)
        self.rs = bench.rs[0]
        self.shrunk = []
        self.idle = None
        self.sizes = {}          # masters -> dict
        self.t_runs = self.t_idle = 0.0
        self.t_sizes = {}
        self.masters = self.MASTERS
        self.clients = self.CLIENTS
        if o.quick:
            # redis-benchmark spends ~4.5 s setting up 5,000 connections
            self.clients = (50, 500, 2000)
            self.shrunk.append("clients: 50, 500 and 2,000 (quick)")
            self.masters = (3, 30)
            self.shrunk.append("cluster size: 3 and 30 masters (quick)")
        f = 10 if o.quick else 1
        g = ["-r", "100000"]
        self.cases = {}   # (group, x, sub) -> Case
        for c in self.clients:
            for p in (1, 16):
                n = (200000 if p == 1 else 2000000) // f
                n = max(n, c * 4)
                self.cases[("clients", c, p)] = Case(
                    "s-c%d-p%d" % (c, p), "GET -c %d -P %d" % (c, p),
                    ["-t", "get"] + g + ["-c", str(c), "-P", str(p), "-n", str(n)], ["GET"], n)
        n = 2000000 // f
        self.cases[("pipeline", 128, None)] = Case(
            "s-p128", "GET -c 50 -P 128", ["-t", "get"] + g + ["-c", "50", "-P", "128", "-n", str(n)],
            ["GET"], n)
        for d in self.VALUES:
            # keep the data set at ≤ ~256 MB: -r × value size
            r = min(100000, (256 << 20) // d)
            n = {16: 100000, 1024: 100000, 16384: 50000, 262144: 10000}[d] // f
            self.cases[("value", d, None)] = Case(
                "s-d%d" % d, "SET/GET -d %d" % d,
                ["-t", "set,get", "-d", str(d), "-r", str(r), "-c", "50", "-P", "1", "-n", str(n)],
                ["SET", "GET"], n)
        for k in self.XKEYS:
            n = {2: 100000, 10: 50000, 100: 10000}[k] // f
            base = ["-r", "100000", "-n", str(n), "-c", "50"]
            self.cases[("xslot", k, None)] = Case(
                "s-x%d" % k, "MGET %d keys" % k, base + n_keys("MGET", k, ""), ["MGET"], n,
                direct_args=base + n_keys("MGET", k, "{tag}"))

    def direct_too(self, key):
        group, x, sub = key
        return group in ("pipeline", "value", "xslot") or (group == "clients" and x == 50)

    def run(self):
        b = self.b
        if self.rounds < b.opts.rounds:
            self.shrunk.append("%d round(s) instead of %d (to fit 15 minutes)" %
                               (self.rounds, b.opts.rounds))
        if self.quick:
            self.shrunk.append("-n a tenth of the full run's")
        t0 = time.monotonic()
        keys = list(self.cases)
        for rnd in range(1, self.rounds + 1):
            print("scaling round %d/%d" % (rnd, self.rounds), flush=True)
            for key in keys:
                case = self.cases[key]
                order = [self.rs] + ([None] if self.direct_too(key) else [])
                if rnd % 2 == 0:
                    order.reverse()
                for rs in order:
                    b.run_one(rnd, case, "direct" if rs is None else rs.name, rs, timeout=300)
        self.t_runs = time.monotonic() - t0
        t0 = time.monotonic()
        self.idle_connections()
        self.t_idle = time.monotonic() - t0
        self.t_sizes = {}
        for msg in self.shrunk:
            print("scaling: shrunk: " + msg, flush=True)
        for m in self.masters:
            t0 = time.monotonic()
            self.cluster_size(m)
            self.t_sizes[m] = time.monotonic() - t0

    # -- idle connections --

    def idle_connections(self):
        """RSS per idle connection on a fresh ringslot, at as many connections
        as RLIMIT_NOFILE allows (both the harness and ringslot hold one
        descriptor per connection)."""
        b = self.b
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        want = 2000 if self.quick else IDLE_CONNS_WANTED
        n = min(want, soft - 1000)
        if n < want:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            self.shrunk.append(
                "idle connections: %d instead of %d: RLIMIT_NOFILE is %d (hard limit %d, not "
                "raisable here: setrlimit above it needs CAP_SYS_RESOURCE), and ringslot, like "
                "this harness, holds one descriptor per connection" % (n, want, soft, hard)
                if not self.quick else "idle connections: %d (quick)" % n)
        rs = Ringslot(b.binary, self.rs.threads, b.cluster.ports[0], b.workdir, b.cross_flag)
        rs.extra_args = ["--maxclients", str(n + 100)]    # the default is 10,000
        rs.start()
        try:
            mm = b.measure_memory(rs, n, record=False)
        finally:
            rs.stop()
        mm["wanted"] = want
        self.idle = mm

    # -- cluster size --

    def cluster_size(self, m):
        """A fresh cluster of m masters and a fresh ringslot with a console
        port: time to the first published topology, time from a slot moving
        to ringslot publishing it, backend links and RSS before and after a
        low-load SET/GET run, and that run's throughput."""
        b = self.b
        print("cluster size %d: starting %d masters ..." % (m, m), flush=True)
        cl = RedisCluster(os.path.join(b.workdir, "cluster-%d" % m), masters=m, replicas=0,
                          node_timeout=5000, start_timeout=120.0)
        res = dict(masters=m, runs=[])
        self.sizes[m] = res
        rs = None
        try:
            cl.start()
            res["cluster_start_s"] = cl.startup_seconds
            rs = Ringslot(b.binary, self.rs.threads, cl.ports[0], b.workdir, False)
            rs.console_port = helpers.free_port()
            rs.start()
            res["rss0_kb"] = rs.rss_kb()
            # time to the first topology: "listening" → "topology v1" in the log
            listen = log_events(rs.log_path, r"listening on")
            v1 = log_events(rs.log_path, r"^topology v1:")
            if listen and v1:
                res["first_ms"] = 1000.0 * (v1[0][0] - listen[0][0])
            res["publish_ms"] = self.move_slot(cl, rs, res)
            n = 10000 if self.quick else 100000
            args = ["redis-benchmark", "-h", HOST, "-p", str(rs.port), "--csv", "--threads",
                    str(CLIENT_THREADS), "-t", "set,get", "-r", "100000", "-c", "50", "-P", "1",
                    "-n", str(n)]
            res["command"] = " ".join(_quote(a) for a in args[:4] + ["P"] + args[5:])
            pids = [nd.proc.pid for nd in cl.nodes.values()]
            for rnd in range(1, self.rounds + 1):
                c0, n0 = rs.cpu_ticks(), sum(proc_ticks(p) for p in pids)
                rc, out, err, wall = run_cmd(args, 300)
                cpu = (rs.cpu_ticks() - c0) / CLK_TCK
                ncpu = (sum(proc_ticks(p) for p in pids) - n0) / CLK_TCK
                rows = parse_csv(out)
                if rc != 0 or len(rows) != 2:
                    b.note("cluster size %d: rc %s, %d CSV rows %s" % (m, rc, len(rows),
                                                                       (err or out)[:300]), rnd)
                    continue
                res["runs"].append(dict(rps=statistics.mean(r["rps"] for r in rows), cpu=cpu,
                                        nodes_cpu=ncpu, requests=2 * n, wall=wall))
                print("  r%d masters=%d SET=%.0f GET=%.0f cpu=%.2fs nodes=%.2fs" % (
                    rnd, m, rows[0]["rps"], rows[1]["rps"], cpu, ncpu), flush=True)
            time.sleep(0.5)
            res["rss1_kb"] = rs.rss_kb()
            metrics = http_get(rs.console_port, "/metrics")
            res["links"] = sum(float(l.rsplit(" ", 1)[1]) for l in metrics.splitlines()
                               if l.startswith("ringslot_backend_links{") and
                               'state="ready"' in l)
            ref = [l for l in metrics.splitlines()
                   if l.startswith("ringslot_topology_refreshes_total")]
            res["refreshes"] = int(float(ref[0].split()[1])) if ref else None
        except Exception as exc:  # noqa: BLE001 - one size failing keeps the rest
            b.note("cluster size %d failed: %s%s" % (
                m, exc, ("\nringslot log tail:\n" + rs.log_tail(TAIL)) if rs else ""))
        finally:
            if rs is not None:
                b.scan_log(rs)
                rs.stop()
            cl.stop()

    def move_slot(self, cl, rs, res):
        """Move one empty slot to another master (CLUSTER SETSLOT … NODE on
        every master), send one GET for it through ringslot (its MOVED asks
        for a refresh), and time until ringslot logs the next topology
        version: the refresh schedule plus the refresh itself."""
        key = "bench:move"
        slot = int(cl.execute(cl.ports[0], "CLUSTER", "KEYSLOT", key))
        owner = next(p for (a, z, p, _) in cl.cluster_slots() if a <= slot <= z)
        to = next(p for p in cl.ports if p != owner)
        to_id = cl.node_id(to)
        before = len(log_events(rs.log_path, r"^topology v\d+:"))
        t0 = time.time()
        for p in [to, owner] + [p for p in cl.ports if p not in (to, owner)]:
            cl.execute(p, "CLUSTER", "SETSLOT", str(slot), "NODE", to_id)
        with RespClient(HOST, rs.port, timeout=5.0) as c:
            c.command("GET", key)
        try:
            helpers.wait_until(lambda: len(log_events(rs.log_path, r"^topology v\d+:")) > before,
                               10, interval=0.01, what="ringslot to publish the moved slot")
        except TimeoutError:
            self.b.note("cluster size %d: ringslot did not publish a slot move within 10 s" %
                        len(cl.ports))
            return None
        ev = log_events(rs.log_path, r"^topology v\d+:")[before]
        return 1000.0 * (ev[0] - t0)

    # -- reporting --

    def agg(self, key, target):
        case = self.cases[key]
        out = {}
        for t in case.tests:
            rows = [r for r in self.b.results if r["case"] == case.cid and r["target"] == target
                    and r["test"] == t]
            out[t] = dict(rps=med([r["rps"] for r in rows]), p50=med([r["p50"] for r in rows]),
                          rs_us=med([1e6 * r["cpu"] / r["requests"] for r in rows if r["cpu"]]),
                          nodes_us=med([1e6 * r["nodes_cpu"] / r["requests"] for r in rows
                                        if r.get("nodes_cpu")]),
                          cpu_ratio=med([r["cpu"] / r["nodes_cpu"] for r in rows
                                         if r["cpu"] is not None and r.get("nodes_cpu")]),
                          problems=sum(1 for r in rows if r["problem"]))
        return out

    def verdicts(self):
        """name -> (value text, ok) for the targets summary."""
        v = {}
        worst = None
        for p in (1, 16):
            base = self.agg(("clients", 50, p), self.rs.name)["GET"]
            for c in self.clients[1:]:
                a = self.agg(("clients", c, p), self.rs.name)["GET"]
                for f in ("rps", "rs_us"):
                    if a[f] and base[f]:
                        dev = abs(a[f] / base[f] - 1)
                        worst = dev if worst is None else max(worst, dev)
        v["clients"] = ("max deviation %s" % ("n/a" if worst is None else "%.0f%%" % (100 * worst)),
                        None if worst is None else worst <= SCALE_CLIENTS_TARGET)
        if self.idle and self.idle.get("per") is not None:
            v["idle"] = ("%.0f B at %d conns" % (self.idle["per"], self.idle["conns"]),
                         self.idle["per"] <= BYTES_PER_CONN_TARGET)
        else:
            v["idle"] = ("n/a", None)
        for d in (16384, 262144):
            a = self.agg(("value", d, None), self.rs.name)
            dd = self.agg(("value", d, None), "direct")
            rs_ = [a[t]["rps"] / dd[t]["rps"] if a[t]["rps"] and dd[t]["rps"] else None
                   for t in ("SET", "GET")]
            ok = None if None in rs_ else min(rs_) >= VALUE_TARGET
            v["value%d" % d] = (" / ".join(fmt_ratio(x) for x in rs_), ok)
        r3, r30 = self.size_rps(3), self.size_rps(self.masters[-1])
        if r3 and r30 and self.masters[-1] == 30:
            v["masters"] = ("%.2f" % (r30 / r3), abs(r30 / r3 - 1) <= SCALE_MASTERS_TARGET)
        else:
            v["masters"] = ("n/a (no 30-master run)", None)
        return v

    def size_rps(self, m):
        s = self.sizes.get(m)
        return med([r["rps"] for r in s["runs"]]) if s and s["runs"] else None

    def render(self, png_name):
        nm = self.rs.name
        L = ["## Scaling (issue 14: cost as the work grows)", ""]
        L.append("One dimension at a time grows from the main cases' shape (`-c 50 -P 1`, 3-byte "
                 "values, 3 masters), through %s with `--threads %d` client threads, medians of "
                 "%d round(s). \"µs/req\" is CPU per request: ringslot's (utime+stime), and the "
                 "masters' during the same run; \"CPU ÷ nodes\" divides the first by the second." %
                 (nm, CLIENT_THREADS, self.rounds))
        if self.shrunk:
            L.append("")
            L.append("Shrunk in this run: " + "; ".join(self.shrunk) + ".")
        L += ["", "![scaling](%s)" % png_name, ""]

        L += ["### Clients (GET, `-r 100000`)", "",
              "Ringslot only; relative to the 50-client figure of the same depth. Target: "
              "throughput and ringslot CPU per request within %d%% of the 50-client figure. "
              "A run includes accepting and closing its connections: at %s clients -n %s "
              "at P1 is %d requests per connection." %
              (100 * SCALE_CLIENTS_TARGET, fmt_rps(self.clients[-1]),
               fmt_rps(self.cases[("clients", self.clients[-1], 1)].n),
               self.cases[("clients", self.clients[-1], 1)].n // self.clients[-1]), "",
              "| depth | clients | requests/s | vs 50 | ringslot µs/req | vs 50 | nodes µs/req | "
              "CPU ÷ nodes | pass |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for p in (1, 16):
            base = self.agg(("clients", 50, p), nm)["GET"]
            for c in self.clients:
                a = self.agg(("clients", c, p), nm)["GET"]
                rr = a["rps"] / base["rps"] if a["rps"] and base["rps"] else None
                rc = a["rs_us"] / base["rs_us"] if a["rs_us"] and base["rs_us"] else None
                ok = None if (rr is None or rc is None or c == 50) else \
                    abs(rr - 1) <= SCALE_CLIENTS_TARGET and abs(rc - 1) <= SCALE_CLIENTS_TARGET
                L.append("| P%d | %s | %s%s | %s | %s | %s | %s | %s | %s |" % (
                    p, fmt_rps(c), fmt_rps(a["rps"]), " ⚠" if a["problems"] else "",
                    fmt_ratio(rr), fmt_us(a["rs_us"]), fmt_ratio(rc), fmt_us(a["nodes_us"]),
                    fmt_ratio(a["cpu_ratio"]), "" if c == 50 else verdict(ok)))
        L.append("")

        L += ["### Idle connections", ""]
        if self.idle:
            i = self.idle
            L.append("A fresh %s (receive-buffer rings cycled once, as in the memory table), "
                     "then %d idle client connections that each sent one PING (wanted: %d). "
                     "RSS only." % (nm, i["conns"], i["wanted"]))
            L += ["", "| conns | idle RSS | RSS with conns | bytes / conn | target | pass |",
                  "|---:|---:|---:|---:|---:|---|",
                  "| %s | %d kB | %d kB | %s | ≤ %d | %s |" % (
                      fmt_rps(i["conns"]), i["idle_kb"], i["loaded_kb"],
                      "n/a" if i["per"] is None else "%.0f" % i["per"], BYTES_PER_CONN_TARGET,
                      verdict(None if i["per"] is None else i["per"] <= BYTES_PER_CONN_TARGET)), ""]
        else:
            L += ["n/a (see Anomalies)", ""]

        L += ["### Pipeline depth (GET, `-c 50 -r 100000`)", "",
              "| depth | direct `--cluster` | ringslot | ratio | ringslot µs/req | nodes µs/req | "
              "CPU ÷ nodes |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for p in self.DEPTHS:
            key = ("pipeline", 128, None) if p == 128 else ("clients", 50, p)
            a, d = self.agg(key, nm)["GET"], self.agg(key, "direct")["GET"]
            L.append("| %d | %s | %s | %s | %s | %s | %s |" % (
                p, fmt_rps(d["rps"]), fmt_rps(a["rps"]),
                fmt_ratio(a["rps"] / d["rps"] if a["rps"] and d["rps"] else None),
                fmt_us(a["rs_us"]), fmt_us(a["nodes_us"]), fmt_ratio(a["cpu_ratio"])))
        L.append("")

        L += ["### Value size (SET/GET `-c 50 -P 1`)", "",
              "`-r` shrinks with the value so that the data set stays ≤ 256 MB. Target for "
              "16 KB and 256 KB: ratio to direct ≥ %.2f (SET and GET)." % VALUE_TARGET, "",
              "| value | test | direct `--cluster` | ringslot | ratio | ringslot µs/req | "
              "CPU ÷ nodes | pass |", "|---:|---|---:|---:|---:|---:|---:|---|"]
        for dsz in self.VALUES:
            key = ("value", dsz, None)
            a, d = self.agg(key, nm), self.agg(key, "direct")
            for t in ("SET", "GET"):
                ratio = a[t]["rps"] / d[t]["rps"] if a[t]["rps"] and d[t]["rps"] else None
                judged = dsz >= 16384
                L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    fmt_size(dsz), t, fmt_rps(d[t]["rps"]), fmt_rps(a[t]["rps"]),
                    fmt_ratio(ratio), fmt_us(a[t]["rs_us"]), fmt_ratio(a[t]["cpu_ratio"]),
                    verdict(None if ratio is None else ratio >= VALUE_TARGET) if judged else ""))
        L.append("")

        L += ["### Cluster size (low load)", "",
              "A fresh cluster of m masters and a fresh %s per size; `%s`. *first topology*: "
              "ringslot's log from \"listening\" to \"topology v1\" (first CLUSTER NODES round, "
              "merge, publish). *slot move*: one empty slot reassigned with `CLUSTER SETSLOT … "
              "NODE` on every master, then one GET for it through ringslot; time until ringslot "
              "logs the next topology version (mostly its refresh schedule: a MOVED refresh "
              "waits ≥ 1 s after the previous refresh, the periodic one runs every 3 s). "
              "ringslot does not expose the duration of one refresh. *links*: "
              "`ringslot_backend_links{state=\"ready\"}` after the runs; *kB / link*: RSS after "
              "the runs, minus the 3-master figure, per extra link. Target: throughput at 30 "
              "masters within %d%% of 3." % (nm, self.sizes.get(3, {}).get("command", "?"),
                                             100 * SCALE_MASTERS_TARGET), "",
              "| masters | first topology ms | slot move → published ms | links | RSS idle | "
              "RSS after runs | kB / link | requests/s | vs 3 | ringslot µs/req | pass |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        s3 = self.sizes.get(3, {})
        r3 = self.size_rps(3)
        for m in self.masters:
            s = self.sizes.get(m, {})
            r = self.size_rps(m)
            per_link = None
            if m != 3 and s.get("rss1_kb") and s3.get("rss1_kb") and s.get("links") and \
                    s3.get("links") and s["links"] > s3["links"]:
                per_link = (s["rss1_kb"] - s3["rss1_kb"]) / (s["links"] - s3["links"])
            rs_us = med([1e6 * x["cpu"] / x["requests"] for x in s.get("runs", []) if x["cpu"]])
            ok = None if (m != 30 or not r or not r3) else abs(r / r3 - 1) <= SCALE_MASTERS_TARGET
            L.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                m, "%.1f" % s["first_ms"] if s.get("first_ms") is not None else "n/a",
                "%.0f" % s["publish_ms"] if s.get("publish_ms") is not None else "n/a",
                "%.0f" % s["links"] if s.get("links") is not None else "n/a",
                "%d kB" % s["rss0_kb"] if s.get("rss0_kb") else "n/a",
                "%d kB" % s["rss1_kb"] if s.get("rss1_kb") else "n/a",
                "%.1f" % per_link if per_link is not None else "n/a", fmt_rps(r),
                fmt_ratio(r / r3 if r and r3 else None), fmt_us(rs_us),
                verdict(ok) if m == 30 else ""))
        L.append("")

        L += ["### Cross-slot keys per MGET (`-c 50 -r 100000`)", "",
              "Through ringslot the keys fall on random slots (all masters); the direct "
              "reference puts every key of a client under its node's `{tag}`.", "",
              "| keys | direct `--cluster` | ringslot | ratio | ringslot µs/req | nodes µs/req | "
              "CPU ÷ nodes |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for k in self.XKEYS:
            key = ("xslot", k, None)
            a, d = self.agg(key, nm)["MGET"], self.agg(key, "direct")["MGET"]
            L.append("| %d | %s | %s | %s | %s | %s | %s |" % (
                k, fmt_rps(d["rps"]), fmt_rps(a["rps"]),
                fmt_ratio(a["rps"] / d["rps"] if a["rps"] and d["rps"] else None),
                fmt_us(a["rs_us"]), fmt_us(a["nodes_us"]), fmt_ratio(a["cpu_ratio"])))
        L.append("")
        L.append("Scaling time: runs %.0f s, idle connections %.0f s, cluster sizes %s." % (
            self.t_runs, self.t_idle, ", ".join("%d: %.0f s" % (m, t) for m, t in
                                                sorted(self.t_sizes.items()))))
        L.append("")
        return L

    def chart(self, png_path, datadir):
        nm = self.rs.name

        def write(name, rows):
            p = os.path.join(datadir, name)
            with open(p, "w") as f:
                for r in rows:
                    f.write(" ".join("NaN" if v is None else str(v) for v in r) + "\n")
            return p

        rows = []
        for c in self.clients:
            row = [c]
            for p in (1, 16):
                base = self.agg(("clients", 50, p), nm)["GET"]
                a = self.agg(("clients", c, p), nm)["GET"]
                row += [a["rps"] / base["rps"] if a["rps"] and base["rps"] else None,
                        a["rs_us"] / base["rs_us"] if a["rs_us"] and base["rs_us"] else None]
            rows.append(row)
        f_cl = write("sc-clients.dat", rows)
        rows = []
        for p in self.DEPTHS:
            key = ("pipeline", 128, None) if p == 128 else ("clients", 50, p)
            a, d = self.agg(key, nm)["GET"], self.agg(key, "direct")["GET"]
            rows.append([p, (d["rps"] or 0) / 1000, (a["rps"] or 0) / 1000])
        f_p = write("sc-pipe.dat", rows)
        rows = []
        for dsz in self.VALUES:
            a, d = self.agg(("value", dsz, None), nm), self.agg(("value", dsz, None), "direct")
            rows.append([dsz] + [a[t]["rps"] / d[t]["rps"] if a[t]["rps"] and d[t]["rps"] else None
                                 for t in ("SET", "GET")])
        f_v = write("sc-value.dat", rows)
        f_m = write("sc-masters.dat", [[m, (self.size_rps(m) or 0) / 1000] for m in self.masters])
        rows = []
        for k in self.XKEYS:
            a, d = self.agg(("xslot", k, None), nm)["MGET"], self.agg(("xslot", k, None), "direct")["MGET"]
            rows.append([k, (d["rps"] or 0) / 1000, (a["rps"] or 0) / 1000])
        f_x = write("sc-xslot.dat", rows)
        script = """
set terminal pngcairo size 1500,820 font 'DejaVu Sans,10'
set output '%(png)s'
set grid
set key top right
set style data linespoints
set multiplot layout 2,3 title 'ringslot scaling, %(date)s (%(nm)s, %(rounds)d round(s), %(cores)d cores)'
set logscale x
set title 'clients (GET): relative to 50 clients'
set key top left
set xlabel 'client connections'
set yrange [0:*]
plot '%(cl)s' using 1:2 title 'req/s P1' lw 2, '' using 1:3 title 'CPU/req P1' lw 2 dt 2, '' using 1:4 title 'req/s P16' lw 2, '' using 1:5 title 'CPU/req P16' lw 2 dt 2, 1.15 title '±15%%' lc rgb '#999999' dt 3, 0.85 notitle lc rgb '#999999' dt 3
set key top right
set title 'pipeline depth (GET, -c 50)'
set xlabel '-P'
set ylabel 'thousand requests / s'
plot '%(p)s' using 1:2 title 'direct --cluster' lw 2 lc rgb '#4d4d4d', '' using 1:3 title 'ringslot' lw 2 lc rgb '#1f77b4'
set title 'value size (-c 50 -P 1): ratio to direct'
set xlabel 'bytes'
set ylabel 'ringslot / direct'
plot '%(v)s' using 1:2 title 'SET' lw 2, '' using 1:3 title 'GET' lw 2, 0.85 title 'target' lc rgb '#999999' dt 3
unset logscale x
set title 'cluster size (SET/GET -c 50 -P 1, through ringslot)'
set xlabel 'masters'
set ylabel 'thousand requests / s'
plot '%(m)s' using 1:2 title 'ringslot' lw 2 lc rgb '#1f77b4'
set logscale x
set title 'keys per MGET (-c 50)'
set xlabel 'keys'
plot '%(x)s' using 1:2 title 'direct ({tag})' lw 2 lc rgb '#4d4d4d', '' using 1:3 title 'ringslot (cross-slot)' lw 2 lc rgb '#1f77b4'
unset multiplot
""" % dict(png=png_path, date=self.b.started_at.strftime("%Y-%m-%d"), nm=nm, rounds=self.rounds,
           cores=os.cpu_count(), cl=f_cl, p=f_p, v=f_v, m=f_m, x=f_x)
        sp = os.path.join(datadir, "scaling.gp")
        with open(sp, "w") as f:
            f.write(script)
        r = subprocess.run(["gnuplot", sp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("gnuplot failed:\n" + r.stdout.decode("utf-8", "replace"))


def fmt_size(d):
    return "%d B" % d if d < 1024 else "%d KB" % (d // 1024)


def _port_open(port):
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _quote(a):
    return a if re.fullmatch(r"[A-Za-z0-9_.,:/=@%+-]+", a) else "'" + a.replace("'", "'\\''") + "'"


# --- reporting -----------------------------------------------------------------------

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt_rps(v):
    if v is None:
        return "n/a"
    return "{:,.0f}".format(v)


def fmt_us(v):
    return "n/a" if v is None else "%.2f" % v


def fmt_ratio(v):
    return "n/a" if v is None else "%.2f" % v


def verdict(ok):
    return "n/a" if ok is None else ("**pass**" if ok else "FAIL")


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def ver(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  timeout=10).stdout.decode().strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            return "?"
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    git = ver(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    try:
        dirty = ", working tree modified" if subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10).stdout.strip() else ""
    except Exception:  # noqa: BLE001
        dirty = ""
    return dict(model=model, nproc=os.cpu_count(), kernel=platform.release(),
                mem="%.1f GiB" % (mem_kb / 1048576.0),
                redis=ver(["redis-server", "--version"]),
                bench=ver(["redis-benchmark", "--version"]),
                ringslot=ver([OPTS.ringslot, "--version"]), git=git + dirty,
                os=_os_release())


def _os_release():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "?"


def analyse(b):
    names = [rs.name for rs in b.rs]
    tests = []   # (case, test label)
    for c in b.cases:
        for t in c.tests:
            tests.append((c, t))
    agg = {}
    for c, t in tests:
        for tgt in names + ["direct"]:
            rows = [r for r in b.results if r["case"] == c.cid and r["test"] == t and r["target"] == tgt]
            agg[(t, tgt)] = dict(
                rps=med([r["rps"] for r in rows]), p50=med([r["p50"] for r in rows]),
                p99=med([r["p99"] for r in rows]), n=len(rows),
                rps_all=[r["rps"] for r in rows],
                cpu_eff=med([r["requests"] / r["cpu"] for r in rows
                             if r["cpu"] and len(c.tests) and r["test"] == c.tests[0]]),
                cpu_util=med([r["cpu"] / r["wall"] for r in rows
                              if r["cpu"] is not None and r["test"] == c.tests[0]]),
                # CPU per request of the run (all its tests): the 3 masters',
                # and ringslot's divided by it (requests cancel out)
                nodes_us=med([1e6 * r["nodes_cpu"] / r["requests"] for r in rows
                              if r.get("nodes_cpu")]),
                rs_us=med([1e6 * r["cpu"] / r["requests"] for r in rows if r["cpu"]]),
                cpu_ratio=med([r["cpu"] / r["nodes_cpu"] for r in rows
                               if r["cpu"] is not None and r.get("nodes_cpu")]),
                problems=sum(1 for r in rows if r["problem"]))
    return names, tests, agg


def render_hop_latency(b, names, agg):
    """The -c 1 rows: with one connection nothing queues, so the added
    latency is the hop's own (at -c 50 a closed loop on a saturated box
    turns the throughput gap into latency). Informative: the target is
    judged on the -c 50 case above."""
    lat1 = next((c for c in b.cases if c.cid == "lat1"), None)
    ref = agg.get(("GET lat c1", "direct"))
    if not lat1 or not ref:
        return []
    L = ["", "One connection (`-t get -r 100000 -c 1 -P 1 -n %d`, one client thread on both "
         "sides): no request waits behind another, so \"added\" is the hop's own cost." % lat1.n,
         "", "| target | p50 | p99 | GET requests/s | added p50 / p99 |", "|---|---:|---:|---:|---:|"]
    for label, key in [("direct `--cluster --threads 1`", ("GET lat c1", "direct"))] + \
            [(nm, ("GET lat c1", nm)) for nm in names]:
        a = agg[key]
        added = ""
        if key[1] != "direct" and a["p50"] is not None and ref["p50"] is not None:
            added = "%+.3f / %+.3f" % (a["p50"] - ref["p50"], a["p99"] - ref["p99"])
        L.append("| %s | %s | %s | %s | %s |" % (
            label, "n/a" if a["p50"] is None else "%.3f" % a["p50"],
            "n/a" if a["p99"] is None else "%.3f" % a["p99"], fmt_rps(a["rps"]), added))
    return L


def render(b, m, chart_name):
    names, tests, agg = analyse(b)
    o = b.opts
    L = []
    date = b.started_at.strftime("%Y-%m-%d")
    L.append("# ringslot benchmark, %s%s" % (date, " (quick smoke run)" if o.quick else ""))
    L.append("")
    if o.quick:
        L.append("**Smoke run (`--quick`): 1 round with small -n; the direct `--cluster` figures "
                 "are dominated by redis-benchmark's 250 ms time steps, so ratios and pass/fail "
                 "below mean nothing. Use `make bench` for figures.**")
        L.append("")
    L.append("Machine: %s, %s CPUs (nproc), %s RAM, Linux %s, %s. %s; %s; %s (git %s; "
             "binary sha256 %s…)." %
             (m["model"], m["nproc"], m["mem"], m["kernel"], m["os"], m["redis"], m["bench"],
              m["ringslot"], m["git"], b.binary_sha))
    L.append("")
    L.append("Run: started %s, %d round(s), total %.1f min; load average before %s, after %s. "
             "Everything (3 redis-server masters, ringslot, redis-benchmark) shares the same "
             "%s cores on loopback." %
             (b.started_at.strftime("%Y-%m-%d %H:%M"), o.rounds, b.elapsed / 60,
              "/".join(b.load_before), "/".join(b.load_after), m["nproc"]))
    if getattr(b, "timings", None):
        L.append("Time by part: %s." % ", ".join("%s %.0f s" % t for t in b.timings))
    if b.rounds_cut:
        L.append("Main cases: %d of %d rounds: past %d, a round runs only while the whole run "
                 "is projected to end within %d minutes (the longest round took %.0f s)." %
                 (b.rounds_cut + (MAIN_ROUNDS_MIN, BUDGET_S // 60, b.t_round)))
    others = [x["foreign"] for x in b.loads]
    if others:
        med_o, max_o = statistics.median(others), max(others)
        L.append("CPU taken by other work on the machine during the runs (see the CPU table): "
                 "median %.2f, max %.2f cores." % (med_o, max_o))
        if med_o > 0.25:
            L.append("")
            L.append("**This run shared the machine with other work (median %.2f of %d cores "
                     "busy elsewhere): interleaving keeps the ratios comparable, but absolute "
                     "figures, latencies and the runtime are off; rerun on a quiet machine.**" %
                     (med_o, os.cpu_count()))
            L.append("")
    L.append("Per case and round the runs are interleaved %s, direct, %s (reversed on even "
             "rounds); figures are medians over rounds, ratios are ringslot median / direct "
             "median from the same run." % (names[0], ", ".join(names[1:]) or "-"))
    L.append("")
    if b.cross_flag:
        L.append("ringslot ran with `--enable-cross-slot`.")
    else:
        L.append("ringslot's `--help` does not list `--enable-cross-slot`, so it ran without it.")
    L.append("Cross-slot 10-key MSET/MGET probe before the runs: " +
             "; ".join("%s: %s" % (k, v) for k, v in b.cross_slot_probe.items()) + ".")
    L.append("")

    targets_at = len(L)
    # throughput
    L.append("## Throughput (requests/s, median)")
    L.append("")
    L.append("Every ringslot run uses `--threads %d` client threads, as many as the direct "
             "`--cluster` runs (one per master). Per series: requests/s, ratio to direct, the "
             "3 masters' CPU per request during that run (µs, utime+stime / requests) and "
             "ringslot's CPU per request divided by it; the direct column's \"nodes µs\" is the "
             "masters' CPU per request when clients talk to them directly. The SET and GET rows "
             "of one case come from one `-t set,get` run and share its CPU figures." %
             CLIENT_THREADS)
    L.append("")
    hdr = "| case | direct `--cluster` | nodes µs | step¹ |"
    sep = "|---|---:|---:|---:|"
    for nm in names:
        hdr += " %s | ratio | nodes µs | CPU ÷ nodes |" % nm
        sep += "---:|---:|---:|---:|"
    hdr += " target ratio | target CPU ÷ nodes |" + "".join(" %s |" % nm for nm in names)
    sep += "---:|---:|" + "---|" * len(names)
    L += [hdr, sep]
    verdicts = {}
    for c, t in tests:
        if c.cid in ("lat", "lat1"):
            continue
        d = agg[(t, "direct")]["rps"]
        # the step of the slower side of each ratio: both are multi-threaded
        step = "%.0f%%" % (100.0 * QUANTUM * d / c.n) if d else "n/a"
        line = "| %s | %s | %s | %s |" % (t, fmt_rps(d), fmt_us(agg[(t, "direct")]["nodes_us"]),
                                          step)
        tgt = TARGETS.get(c.target_key)
        ctgt = CPU_RATIO_TARGETS.get(c.target_key)
        vs = []
        for nm in names:
            a = agg[(t, nm)]
            r = a["rps"]
            ratio = r / d if (r is not None and d) else None
            flag = " ⚠" if a["problems"] else ""
            line += " %s%s | %s | %s | %s |" % (fmt_rps(r), flag, fmt_ratio(ratio),
                                                fmt_us(a["nodes_us"]), fmt_ratio(a["cpu_ratio"]))
            ok = None if (ratio is None or tgt is None) else ratio >= tgt
            cok = None if (a["cpu_ratio"] is None or ctgt is None) else a["cpu_ratio"] <= ctgt
            vs.append((ok, cok) if ctgt else (ok,))
            verdicts[(t, nm)] = (ratio, ok)
        line += (" ≥ %.2f |" % tgt if tgt else " |") + (" ≤ %.2f |" % ctgt if ctgt else " |")
        line += "".join(" %s |" % " / ".join(verdict(x) for x in v) for v in vs)
        L.append(line)
    L.append("")
    L.append("¹ redis-benchmark with several client threads (`--cluster`, or `--threads`) "
             "measures a run's time in %d ms steps, so a figure can only take the values "
             "n / (k × %.2f s); \"step\" is one such step relative to the direct median, i.e. "
             "the resolution of the direct figure (the ringslot figures have a step of the "
             "same order), hence of every ratio. The one-thread latency runs are not "
             "quantized. Pass/fail: throughput ratio, then CPU ÷ nodes where the issue sets a "
             "target." % (QUANTUM * 1000, QUANTUM))
    if any(agg[k]["problems"] for k in agg):
        L.append("")
        L.append("⚠ = at least one run of this cell reported errors or a problem (see "
                 "Anomalies); redis-benchmark counts error replies as requests, so such a "
                 "figure is not a throughput.")
    L.append("")
    L.append("![throughput](%s)" % chart_name)
    L.append("")

    # cpu
    L.append("## ringslot CPU efficiency (requests per ringslot CPU-second, median)")
    L.append("")
    L.append("utime+stime of the ringslot process from /proc/<pid>/stat before and after each "
             "run; requests = -n × tests in the run. \"cores\" is ringslot CPU-seconds per "
             "wall-second of the run.")
    L.append("")
    hdr = "| case |" + "".join(" %s | cores |" % nm for nm in names) + " target |" + \
        "".join(" %s |" % nm for nm in names)
    L += [hdr, "|---|" + "---:|---:|" * len(names) + "---:|" + "---|" * len(names)]
    for c in b.cases:
        if not c.ringslot:
            continue
        t = c.tests[0]
        tgt = CPU_TARGETS.get(c.target_key)
        line = "| %s |" % c.title
        vs = []
        for nm in names:
            a = agg[(t, nm)]
            line += " %s | %s |" % (fmt_rps(a["cpu_eff"]),
                                    "n/a" if a["cpu_util"] is None else "%.2f" % a["cpu_util"])
            vs.append(None if (tgt is None or a["cpu_eff"] is None) else a["cpu_eff"] >= tgt)
        line += (" ≥ %s |" % fmt_rps(tgt)) if tgt else " |"
        line += "".join(" %s |" % (verdict(v) if tgt else "") for v in vs)
        L.append(line)
    L.append("")

    # latency
    L.append("## GET latency at -P 1 -c 50, one client thread (ms, median of per-run percentiles)")
    L.append("")
    lat = next(c for c in b.cases if c.cid == "lat")
    L.append("Both sides: `-t get -r 100000 -c 50 -P 1 -n %d` with one client thread "
             "(direct: `--cluster --threads 1`, the issue's reference; ringslot: `--threads 1`). "
             "Added = ringslot minus direct, per percentile. The %d-thread GET P1 figures of "
             "the throughput runs are shown for reference." % (lat.n, CLIENT_THREADS))
    L.append("")
    L.append("| target | p50 | p99 | GET requests/s | added p50 / p99 | target added | pass |")
    L.append("|---|---:|---:|---:|---:|---:|---|")
    ref = agg[("GET lat", "direct")]
    rows = [("direct `--cluster --threads 1` (reference)", ("GET lat", "direct"), False)]
    rows += [("%s (`--threads 1`)" % nm, ("GET lat", nm), True) for nm in names]
    rows += [("direct `--cluster` (%d client threads)" % CLIENT_THREADS, ("GET P1", "direct"), False)]
    rows += [("%s (`--threads %d`)" % (nm, CLIENT_THREADS), ("GET P1", nm), False) for nm in names]
    b.lat_added = {}
    for label, key, judged in rows:
        a = agg[key]
        p50, p99 = a["p50"], a["p99"]
        added, tt, v = "", "", ""
        if judged:
            if p50 is not None and ref["p50"] is not None:
                d50, d99 = p50 - ref["p50"], p99 - ref["p99"]
                b.lat_added[key[1]] = (d50, d99)
                added = "%+.3f / %+.3f" % (d50, d99)
                v = verdict(d50 <= LAT_TARGET[0] and d99 <= LAT_TARGET[1])
            else:
                v = verdict(None)
            tt = "≤ %.2f / %.2f" % LAT_TARGET
        L.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            label, "n/a" if p50 is None else "%.3f" % p50, "n/a" if p99 is None else "%.3f" % p99,
            fmt_rps(a["rps"]), added, tt, v))
    L += render_hop_latency(b, names, agg)
    L.append("")

    # memory
    L.append("## Memory per idle connection")
    L.append("")
    L.append("VmRSS of a started ringslot whose receive-buffer rings were cycled once by 64 "
             "connections (a fixed per-worker cost, so it counts as idle), then with %d idle "
             "client connections open, each having sent one PING and read +PONG. RSS only: "
             "kernel socket buffers are not counted." % IDLE_CONNS)
    L.append("")
    L.append("| series | idle RSS | RSS with conns | conns | bytes / conn | target | pass |")
    L.append("|---|---:|---:|---:|---:|---:|---|")
    for nm in names:
        mm = b.memory.get(nm)
        if not mm:
            L.append("| %s | n/a | n/a | n/a | n/a | ≤ 1 KB | n/a |" % nm)
            continue
        per = mm["per"]
        L.append("| %s | %d kB | %d kB | %d | %s | ≤ %d | %s |" % (
            nm, mm["idle_kb"], mm["loaded_kb"], mm["conns"],
            "n/a" if per is None else "%.0f" % per, BYTES_PER_CONN_TARGET,
            verdict(None if per is None else per <= BYTES_PER_CONN_TARGET)))
    L.append("")

    scaling_png = chart_name.replace(".png", "-scaling.png")
    if getattr(b, "scaling", None):
        L += b.scaling.render(scaling_png)
    L[targets_at:targets_at] = render_targets(b, names, agg)

    # raw
    L.append("## All runs (requests/s per round)")
    L.append("")
    L.append("| test | target | " + " | ".join("r%d" % i for i in range(1, o.rounds + 1)) +
             " | min–max spread |")
    L.append("|---|---|" + "---:|" * o.rounds + "---:|")
    for c, t in tests:
        for tgt in ["direct"] + (names if c.ringslot else []):
            rows = {r["round"]: r for r in b.results
                    if r["test"] == t and r["target"] == tgt and r["case"] == c.cid}
            vals = [rows[i]["rps"] for i in sorted(rows)]
            spread = "%.0f%%" % (100.0 * (max(vals) - min(vals)) / statistics.median(vals)) \
                if vals and statistics.median(vals) else "n/a"
            L.append("| %s | %s | %s | %s |" % (t, tgt, " | ".join(
                fmt_rps(rows[i]["rps"]) if i in rows else "-" for i in range(1, o.rounds + 1)),
                spread))
    L.append("")

    L.append("## CPU during the runs (cores, median / max over rounds)")
    L.append("")
    L.append("client = redis-benchmark (getrusage of the reaped child); nodes = the 3 "
             "redis-servers; other = everything else on the machine: /proc/stat user+nice+system "
             "minus the processes above, ringslot and this harness. Anything well above 0 in "
             "\"other\" means the box was shared during that run and its figures are noisy.")
    L.append("")
    L.append("| case | target | client | nodes | other | steal |")
    L.append("|---|---|---:|---:|---:|---:|")

    def mm(vals):
        return "%.2f / %.2f" % (statistics.median(vals), max(vals)) if vals else "n/a"
    for c in b.cases:
        for tgt in ["direct"] + (names if c.ringslot else []):
            ls = [x for x in b.loads if x["case"] == c.cid and x["target"] == tgt]
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                c.title, tgt, mm([x["client"] for x in ls]), mm([x["nodes"] for x in ls]),
                mm([x["foreign"] for x in ls]), mm([x["steal"] for x in ls])))
    L.append("")

    if getattr(b, "replica_reads", None):
        L += b.replica_reads.render()
    if getattr(b, "tls_rows", None):
        L += b.tls_rows.render()

    # anomalies
    L.append("## Anomalies")
    L.append("")
    if b.anomalies:
        for msg, rounds in b.anomalies:
            where = " (round%s %s)" % ("s" if len(rounds) > 1 else "",
                                       ", ".join(str(r) for r in rounds)) if rounds else ""
            L.append("- " + (msg + where).replace("\n", "\n  "))
    else:
        L.append("None: every run completed with the expected CSV rows and no error output; "
                 "ringslot stayed up throughout.")
    L.append("")

    # notes + commands
    L.append("## Notes")
    L.append("")
    L.append("- The direct reference for MSET/MGET uses the same 10-key command with every key "
             "under one `{tag}` (redis-benchmark `--cluster` substitutes a hash tag owned by the "
             "node each client talks to): a Redis Cluster cannot serve it across slots. "
             "Through ringslot the 10 keys are spread over random slots on all nodes.")
    L.append("- redis-benchmark `--cluster` runs one thread per master (3) unless `--threads` "
             "is given; against ringslot every run gets `--threads %d` (issue 14's yardstick). "
             "The latency case runs one client thread on both sides (`--cluster --threads 1`, "
             "the issue's reference)." % CLIENT_THREADS)
    L.append("- In `--cluster` mode redis-benchmark tags `-t set,get` keys per client "
             "(`key:{tag}:…`), so its GETs mostly miss; through ringslot the GETs hit keys "
             "written by the SET test and the warm-up.")
    L.append("- Before the rounds every target gets an unmeasured warm-up "
             "(`-t set,get -r 100000 -c 50 -P 16 -n %s`)." % ("20000" if o.quick else "100000"))
    L.append("")
    L.append("## Commands")
    L.append("")
    L.append("```")
    node = b.cluster.nodes[b.cluster.ports[0]]    # as started by helpers.RedisCluster
    shape = [a.replace(b.cluster.workdir, "D").replace(str(node.port), "P") for a in node.proc.args]
    L.append("# cluster: %d × %s" % (len(b.cluster.ports), " ".join(_quote(a) for a in shape)))
    L.append("redis-cli --cluster create %s --cluster-replicas 0 --cluster-yes" %
             " ".join("%s:%d" % (HOST, p) for p in b.cluster.ports))
    for rs in b.rs:
        L.append("# %s (RLIMIT_NOFILE %d):" % (rs.name, resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
        L.append(" ".join(["./ringslot"] + [_quote(a) for a in rs.args()[1:]]))
    for c in b.cases:
        for tgt in ["direct"] + names:
            cmd = b.commands.get((c.cid, tgt))
            if cmd:
                L.append(cmd)
    L.append("```")
    L.append("")
    return "\n".join(L), agg, verdicts


def render_targets(b, names, agg):
    """The issue 14 targets, one row each, pass/fail per series (the scaling
    rows are measured on the first series only)."""
    L = ["## Targets (issue 14)", "",
         "All from this run; the tables below have the details. Scaling rows: %s only." %
         names[0], "",
         "| target | requirement |" + "".join(" %s |" % nm for nm in names),
         "|---|---|" + "---|" * len(names)]

    def ratio(t, nm):
        d, r = agg[(t, "direct")]["rps"], agg[(t, nm)]["rps"]
        return r / d if d and r else None

    def cell(val, ok):
        return val if ok is None else "%s %s" % (val, verdict(ok))

    def both(tests, nm, tgt):
        rs_ = [ratio(t, nm) for t in tests]
        return cell(" / ".join(fmt_ratio(x) for x in rs_),
                    None if None in rs_ else min(rs_) >= tgt)

    rows = []
    for key, t, label in (("p1", "SET P1", "SET/GET P1"), ("p16", "SET P16", "SET/GET P16")):
        tgt = CPU_RATIO_TARGETS[key]
        rows.append(("ringslot CPU per request ÷ nodes' CPU per request, %s" % label,
                     "≤ %.2f" % tgt,
                     [cell(fmt_ratio(agg[(t, nm)]["cpu_ratio"]),
                           None if agg[(t, nm)]["cpu_ratio"] is None
                           else agg[(t, nm)]["cpu_ratio"] <= tgt) for nm in names]))
    for key, tests, label in (("p1", ("SET P1", "GET P1"), "P1 (SET / GET)"),
                              ("p16", ("SET P16", "GET P16"), "P16 (SET / GET)"),
                              ("multi", ("MSET 10", "MGET 10"),
                               "10-key MSET / MGET across slots (direct: `{tag}` keys)")):
        rows.append(("throughput ratio to direct, %s, %d client threads each" %
                     (label, CLIENT_THREADS), "≥ %.2f" % TARGETS[key],
                     [both(tests, nm, TARGETS[key]) for nm in names]))
    sc = getattr(b, "scaling", None)
    sv = sc.verdicts() if sc else {}
    extra = ["—"] * (len(names) - 1)
    for d in (16384, 262144):
        v = sv.get("value%d" % d, ("n/a", None))
        rows.append(("%s values, ratio to direct (SET / GET)" % fmt_size(d), "≥ %.2f" % VALUE_TARGET,
                     [cell(*v)] + extra))
    lat = getattr(b, "lat_added", {})
    rows.append(("added GET latency at P1, p50 / p99 (ringslot minus direct `--threads 1`)",
                 "≤ %.2f / %.2f ms" % LAT_TARGET,
                 [cell("%+.3f / %+.3f" % lat[nm], lat[nm][0] <= LAT_TARGET[0] and
                       lat[nm][1] <= LAT_TARGET[1]) if nm in lat else cell("n/a", None)
                  for nm in names]))
    rows.append(("clients %s vs 50: throughput and CPU per request (P1, P16)" %
                 " / ".join(fmt_rps(c) for c in (sc.clients[1:] if sc else Scaling.CLIENTS[1:])),
                 "within %d%%" % (100 * SCALE_CLIENTS_TARGET),
                 [cell(*sv.get("clients", ("n/a", None)))] + extra))
    rows.append(("RSS per idle connection at %s idle connections" % fmt_rps(IDLE_CONNS_WANTED),
                 "≤ %d B" % BYTES_PER_CONN_TARGET, [cell(*sv.get("idle", ("n/a", None)))] + extra))
    rows.append(("throughput at 30 vs 3 masters", "within %d%%" % (100 * SCALE_MASTERS_TARGET),
                 [cell(*sv.get("masters", ("n/a", None)))] + extra))
    for label, req, cells in rows:
        L.append("| %s | %s |" % (label, req) + "".join(" %s |" % c for c in cells))
    L.append("")
    return L


def chart(b, agg, png_path, datadir):
    names = [rs.name for rs in b.rs]
    groups = [[], []]
    for c in b.cases:
        if not c.chart:
            continue
        for t in c.tests:
            g = 1 if c.cid == "p16" else 0
            d = agg[(t, "direct")]["rps"]
            ratios = ["%.2f" % (agg[(t, nm)]["rps"] / d) if d and agg[(t, nm)]["rps"] else "n/a"
                      for nm in names]
            label = "%s\\n%s" % (t, " / ".join(ratios))
            groups[g].append([label] + [agg[(t, tgt)]["rps"] for tgt in ["direct"] + names])
    files = []
    for i, rows in enumerate(groups):
        p = os.path.join(datadir, "chart%d.dat" % i)
        with open(p, "w") as f:
            for r in rows:
                f.write('"%s" %s\n' % (r[0], " ".join("%.1f" % ((v or 0) / 1000.0) for v in r[1:])))
        files.append(p)
    cols = ["direct --cluster"] + ["ringslot --threads %d" % rs.threads for rs in b.rs]
    colors = ["#4d4d4d", "#1f77b4", "#ff7f0e", "#2ca02c"]
    plots = []
    for i, p in enumerate(files):
        parts = []
        for j, nm in enumerate(cols):
            parts.append("'%s' using %d:xtic(1) title '%s' lc rgb '%s'" %
                         (p, j + 2, nm, colors[j % len(colors)]))
        plots.append("plot " + ", ".join(parts))
    script = """
set terminal pngcairo size 1200,560 font 'DejaVu Sans,10'
set output '%s'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set key top right
set bmargin 5
set multiplot layout 1,2 title 'ringslot vs direct Redis Cluster, %s (median of %d round(s), %s; under each case: ratio to direct, %s)'
set ylabel 'thousand requests / s'
set title 'unpipelined (-P 1) and 10-key MSET/MGET, -c 50'
%s
set title 'pipelined -P 16, -c 50'
%s
unset multiplot
""" % (png_path, b.started_at.strftime("%Y-%m-%d"), b.opts.rounds,
       "%d cores" % os.cpu_count(), " / ".join("t%d" % rs.threads for rs in b.rs),
       plots[0], plots[1])
    sp = os.path.join(datadir, "chart.gp")
    with open(sp, "w") as f:
        f.write(script)
    r = subprocess.run(["gnuplot", sp], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("gnuplot failed:\n" + r.stdout.decode("utf-8", "replace"))


README_BEGIN = "<!-- latest-results:begin -->"
README_END = "<!-- latest-results:end -->"


def update_readme(md_name, png_name, md_text):
    path = os.path.join(HERE, "README.md")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = "# bench\n\n%s\n%s\n" % (README_BEGIN, README_END)
    # the throughput table, CPU and latency/memory sections of the results file
    keep = []
    sections = md_text.split("\n## ")
    for s in sections[1:]:
        title = s.split("\n", 1)[0]
        if title.startswith(("Targets", "Throughput", "ringslot CPU", "GET latency", "Memory",
                             "Scaling", "Reads from replicas")):
            keep.append("### " + s.rstrip().replace("\n### ", "\n#### "))
    head = sections[0].strip().splitlines()
    body = ["## Latest results", "",
            "From [`results/%s`](results/%s) (chart: [`results/%s`](results/%s)); the file "
            "also has every round's figures, the CPU split, anomalies and the exact commands." %
            (md_name, md_name, png_name, png_name), ""]
    # the header paragraph (machine, run, load, any warning), not the probe lines
    for l in head[1:]:
        if l.startswith(("ringslot ran", "ringslot's", "Cross-slot")):
            break
        body.append(l)
    sc_png = png_name.replace(".png", "-scaling.png")
    body += [""] + "\n\n".join(keep).replace("](%s)" % png_name, "](results/%s)" % png_name) \
        .replace("](%s)" % sc_png, "](results/%s)" % sc_png).splitlines()
    body = [l for i, l in enumerate(body) if l.strip() or (i and body[i - 1].strip())]
    block = README_BEGIN + "\n" + "\n".join(body) + "\n" + README_END
    if README_BEGIN in text and README_END in text:
        a = text.index(README_BEGIN)
        z = text.index(README_END) + len(README_END)
        text = text[:a] + block + text[z:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


# --- main ----------------------------------------------------------------------------

def raise_nofile(want=65536):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY
                                                 else want, hard))


def preflight(opts):
    missing = [t for t in ("redis-server", "redis-cli", "redis-benchmark") if not shutil.which(t)]
    if missing:
        sys.exit("bench: missing %s; install Debian redis-server and redis-tools" % ", ".join(missing))
    if not opts.no_chart and not shutil.which("gnuplot"):
        sys.exit("bench: gnuplot not found. The chart needs Debian's gnuplot-nox:\n"
                 "    apt-get install gnuplot-nox\n"
                 "(or run with --no-chart to skip the PNG)")
    if not (os.path.isfile(opts.ringslot) and os.access(opts.ringslot, os.X_OK)):
        sys.exit("bench: %s is not an executable; build it with `make release`" % opts.ringslot)
    raise_nofile()
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < IDLE_CONNS + 200:
        sys.exit("bench: RLIMIT_NOFILE %d is below the %d needed for the idle-connection test" %
                 (resource.getrlimit(resource.RLIMIT_NOFILE)[0], IDLE_CONNS + 200))


def main(argv=None):
    global OPTS
    ap = argparse.ArgumentParser(description="ringslot vs direct Redis Cluster benchmark")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; --quick: 1)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 round, small -n; results in bench/results/quick/, "
                         "README untouched")
    ap.add_argument("--ringslot", default=os.path.join(ROOT, "ringslot"))
    ap.add_argument("--series", default="2,1",
                    help="ringslot series: --threads values, each optionally :epoll "
                         "(--io-backend epoll) or :before (the --before binary); "
                         "default 2,1; e.g. 2,2:before,2:epoll")
    ap.add_argument("--before", default=None,
                    help="an earlier ringslot binary for :before series (side by side)")
    ap.add_argument("--out", default=None, help="results directory (default bench/results)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--no-chart", action="store_true", help="skip the gnuplot PNG")
    ap.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    ap.add_argument("--main-only", action="store_true",
                    help="only the main cases (no scaling, replica or TLS rows): for side-by-side "
                         "series such as 2,2:before,2:epoll")
    ap.add_argument("--scaling-only", action="store_true",
                    help="setup, then only the scaling table (no main rounds, replica or TLS "
                         "rows); for working on it")
    ap.add_argument("--tls-only", action="store_true",
                    help="run only the TLS rows and print them (no files)")
    ap.add_argument("--replica-reads-only", action="store_true",
                    help="run only the reads-from-replicas rows and print them (no files)")
    opts = ap.parse_args(argv)
    opts.ringslot = os.path.abspath(opts.ringslot)
    # a default full run is held to BUDGET_S (fewer main rounds on a slower
    # machine); an explicit --rounds, --quick or a partial run is not
    opts.budgeted = opts.rounds is None and not opts.quick
    if opts.rounds is None:
        opts.rounds = 1 if opts.quick else 5
    if opts.rounds < 1:
        ap.error("--rounds must be ≥ 1")
    series = []
    for x in opts.series.split(","):
        if not x.strip():
            continue
        t, _, variant = x.strip().partition(":")
        if variant not in ("", "epoll", "before"):
            ap.error("--series: unknown variant %r (epoll or before)" % variant)
        if variant == "before" and not opts.before:
            ap.error("--series %s needs --before BINARY" % x)
        series.append((int(t), variant))
    opts.series = series
    if not opts.series:
        ap.error("--series needs at least one thread count")
    if opts.before:
        opts.before = os.path.abspath(opts.before)
    if opts.out is None:
        opts.out = os.path.join(HERE, "results", "quick") if opts.quick else \
            os.path.join(HERE, "results")
    OPTS = opts
    preflight(opts)

    # SIGINT too: a shell starts background jobs with SIGINT ignored
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)
    b = Bench(opts)
    ok = False
    try:
        if opts.replica_reads_only:
            b.run_replica_reads_only()
        elif opts.tls_only:
            b.run_tls_only()
        else:
            b.run()
        ok = True
    except (KeyboardInterrupt, Interrupted) as exc:
        print("\nbench: interrupted (%s); tearing down" % (exc or "Ctrl-C"), file=sys.stderr)
    except Exception as exc:  # noqa: BLE001
        print("\nbench: failed: %s" % exc, file=sys.stderr)
        for rs in getattr(b, "rs", []):
            if rs.log_path:
                print("--- %s log tail (%s):\n%s" % (rs.name, rs.log_path, rs.log_tail(TAIL)),
                      file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for s in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for rs in getattr(b, "rs", []):
            rs.stop()
        if getattr(b, "cluster", None):
            b.cluster.stop()
        stop_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if not ok:
        if getattr(b, "workdir", None):
            print("bench: logs kept in %s" % b.workdir, file=sys.stderr)
        return 1
    if opts.tls_only:
        print("\n".join(b.tls_rows.render() if getattr(b, "tls_rows", None) else []))
        print("\n".join("!! " + a[0] for a in b.anomalies))
        shutil.rmtree(b.workdir, ignore_errors=True)
        return 0
    if opts.replica_reads_only:
        print("\n".join(b.replica_reads.render() if getattr(b, "replica_reads", None) else []))
        print("\n".join("!! " + a[0] for a in b.anomalies))
        shutil.rmtree(b.workdir, ignore_errors=True)
        return 0

    m = machine()
    os.makedirs(opts.out, exist_ok=True)
    date = b.started_at.strftime("%Y-%m-%d")
    md_name, png_name = date + ".md", date + ".png"
    text, agg, _ = render(b, m, png_name)
    md_path = os.path.join(opts.out, md_name)
    with open(md_path, "w") as f:
        f.write(text)
    print("\nwrote %s" % md_path)
    if not opts.no_chart:
        png_path = os.path.join(opts.out, png_name)
        chart(b, agg, png_path, b.workdir)
        print("wrote %s" % png_path)
        if getattr(b, "scaling", None):
            sc_path = os.path.join(opts.out, png_name.replace(".png", "-scaling.png"))
            b.scaling.chart(sc_path, b.workdir)
            print("wrote %s" % sc_path)
    if not opts.quick and not opts.no_readme and os.path.abspath(opts.out) == \
            os.path.join(HERE, "results"):
        update_readme(md_name, png_name, text)
        print("updated %s" % os.path.join(HERE, "README.md"))
    print("\n" + text.split("## All runs")[0])
    print("total %.1f s" % b.elapsed)
    if opts.keep or b.anomalies:
        print("logs kept in %s" % b.workdir)
    else:
        shutil.rmtree(b.workdir, ignore_errors=True)
    return 0


OPTS = None

if __name__ == "__main__":
    sys.exit(main())
