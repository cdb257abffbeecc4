"""Fixtures for ringslot's integration tests (see helpers.py for the classes).

    cluster        session: one 3-master + 3-replica Redis Cluster shared by
                   every test that does not break it (do not kill, fail over
                   or reconfigure its nodes; use make_cluster for that)
    make_cluster   function: make_cluster(masters=3, replicas=1, **kw) starts
                   a private cluster, torn down after the test
    ringslot       module: ringslot --threads 2 in front of `cluster`
    make_ringslot  function: make_ringslot(cluster=None, threads=2,
                   entry_points=None, extra_args=(), **kw) starts ringslot
                   (default: in front of `cluster`, all its masters as entry
                   points), stopped after the test
    resp_client    function: resp_client(port) -> helpers.RespClient, closed
                   after the test
    plain_redis    module: the port of a standalone redis-server, the
                   reference for byte-for-byte reply comparisons
                   (helpers.transcript)

For a ringslot of another scope (e.g. a module-scoped fixture parametrized by
--threads), call helpers.start_managed() and helpers.finish_managed() from
your own fixture; see test_routing.py's ringslot_t.

Every ringslot started through these fixtures writes stdout+stderr to a log
in the test's tmp dir. When a test fails, the tail of each running ringslot's
log is attached to the report. A test fails in teardown if a ringslot it used
printed a sanitizer report, died on its own, or did not exit 0 on SIGTERM.

The binary is $RINGSLOT_BIN, default ./ringslot at the repository root.
"""

import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import helpers  # noqa: E402
from helpers import RedisCluster, RespClient  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for rs in list(helpers.LIVE_RINGSLOTS):
            rep.sections.append((
                "ringslot :%s log (tail, %s)" % (rs.port, rs.log_path),
                rs.log_tail(12000)))


@pytest.fixture(autouse=True)
def _ringslot_watch():
    """After each test: any ringslot still meant to be running must not have
    died, and must not have printed a sanitizer report during the test."""
    marks = {id(rs): rs.log_size() for rs in helpers.LIVE_RINGSLOTS}
    yield
    problems = []
    for rs in list(helpers.LIVE_RINGSLOTS):
        report = rs.sanitizer_report(marks.get(id(rs), 0))
        if report:
            problems.append("sanitizer report in ringslot :%s log:\n%s" % (rs.port, report))
        elif rs.proc is not None and not rs.running() and not rs.stopped_by_us:
            problems.append("ringslot :%s died during the test (exit code %s):\n%s"
                            % (rs.port, rs.proc.returncode, rs.log_tail(12000)))
            helpers.LIVE_RINGSLOTS.remove(rs)
    helpers.fail_on(problems)


# --- clusters -----------------------------------------------------------------

@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    c = RedisCluster(tmp_path_factory.mktemp("cluster"), masters=3, replicas=1)
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def make_cluster(tmp_path):
    started = []

    def make(masters=3, replicas=1, **kw):
        c = RedisCluster(tmp_path / ("cluster%d" % len(started)), masters=masters,
                         replicas=replicas, **kw)
        started.append(c)
        c.start()
        return c

    yield make
    for c in started:
        c.stop()


@pytest.fixture(scope="module")
def plain_redis(tmp_path_factory):
    """A standalone redis-server: the reference for byte comparisons."""
    workdir = str(tmp_path_factory.mktemp("plain"))
    port = helpers.free_port()
    proc = helpers.popen([helpers.REDIS_SERVER, "--port", str(port), "--bind", helpers.HOST,
                          "--save", "", "--appendonly", "no", "--dir", workdir,
                          "--daemonize", "no", "--logfile", ""],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT)
    try:
        def pong():
            with RespClient(helpers.HOST, port, timeout=2) as c:
                return c.command("PING") == "PONG"
        helpers.wait_until(pong, 10, what="redis-server :%d" % port)
        yield port
    finally:
        helpers.stop_process(proc)


# --- ringslot -----------------------------------------------------------------

@pytest.fixture(scope="module")
def ringslot(cluster, tmp_path_factory):
    rs = helpers.start_managed(tmp_path_factory.mktemp("ringslot"), cluster, threads=2)
    yield rs
    helpers.fail_on(helpers.finish_managed(rs))


@pytest.fixture
def make_ringslot(request, tmp_path):
    started = []

    def make(cluster=None, threads=2, entry_points=None, extra_args=(), **kw):
        if cluster is None:
            cluster = request.getfixturevalue("cluster")
        d = tmp_path / ("ringslot%d" % len(started))
        d.mkdir()
        rs = helpers.start_managed(d, cluster, threads=threads, entry_points=entry_points,
                                   extra_args=extra_args, **kw)
        started.append(rs)
        return rs

    yield make
    helpers.finish_all_managed(started)


@pytest.fixture
def resp_client():
    opened = []

    def make(port, timeout=10.0):
        c = RespClient(helpers.HOST, port, timeout=timeout)
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.close()


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A TLS-only Redis Cluster (tls_certs.start_tls_cluster: 3 masters + 3
    replicas, port 0, tls-cluster and tls-replication on) for one module."""
    import tls_certs
    c = tls_certs.start_tls_cluster(tmp_path_factory.mktemp("tls"))
    try:
        yield c
    finally:
        c.stop()
