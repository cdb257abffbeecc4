#!/usr/bin/python3
"""make demo: a 3-master + 3-replica Redis Cluster on free 127.0.0.1 ports,
ringslot in front of it in the foreground (its output on this terminal), and
how to connect. Ctrl-C (or SIGTERM) stops everything this script started and
removes the cluster's temporary directory.

    /usr/bin/python3 test/demo.py --ringslot ./ringslot --port 7777
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))

import helpers  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


class Stop(Exception):
    pass


def on_signal(signum, frame):
    raise Stop(signal.Signals(signum).name)


def say(msg=""):
    print(msg, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ringslot", default=os.path.join(REPO_ROOT, "ringslot"),
                    help="the ringslot binary (default: ./ringslot)")
    ap.add_argument("--port", type=int, default=7777, help="ringslot's port (default 7777)")
    ap.add_argument("--threads", type=int, default=None,
                    help="ringslot --threads (default: ringslot's own)")
    ap.add_argument("--masters", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=1, help="replicas per master")
    args = ap.parse_args()

    if not os.access(args.ringslot, os.X_OK):
        say("demo: %s is not an executable; build it with `make`" % args.ringslot)
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    workdir = tempfile.mkdtemp(prefix="ringslot-demo-")
    cluster = helpers.RedisCluster(workdir, masters=args.masters, replicas=args.replicas)
    rs = None
    rc = 0
    try:
        say("demo: starting a Redis Cluster of %d masters, %d replica(s) per master, under %s"
            % (args.masters, args.replicas, workdir))
        cluster.start()
        masters = cluster.masters()
        for m in masters:
            say("  master  %s:%d  replicas: %s" % (helpers.HOST, m, " ".join(
                "%s:%d" % (helpers.HOST, r) for r in cluster.replicas(m)) or "-"))
        say("demo: cluster ready in %.1fs; starting ringslot on port %d"
            % (cluster.startup_seconds, args.port))
        # workdir=None: ringslot's stdout/stderr are this terminal's
        rs = helpers.Ringslot(args.ringslot, cluster.addrs(masters), workdir=None,
                              threads=args.threads, port=args.port)
        try:
            rs.start(attempts=1)
        except RuntimeError as exc:
            say("demo: ringslot did not start: %s" % str(exc).splitlines()[0])
            return 1
        say()
        say("ringslot is serving on port %d. Try:" % args.port)
        say("  redis-cli -p %d" % args.port)
        say("  redis-benchmark -p %d -t set,get -P 16 -q" % args.port)
        say("Ctrl-C stops ringslot and the cluster.")
        say()
        rc = rs.proc.wait()
        say("demo: ringslot exited with code %s" % rc)
        rc = rc or 1
    except Stop as exc:
        say("\ndemo: %s, stopping" % exc)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if rs is not None and rs.running():
            code = rs.stop(timeout=10)
            say("demo: ringslot stopped (exit code %s)" % code)
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        say("demo: cluster stopped")
    return rc


if __name__ == "__main__":
    sys.exit(main())
