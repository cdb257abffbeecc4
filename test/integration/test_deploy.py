"""Deployment: systemd's notify protocol (READY=1 after the first topology,
STOPPING=1 on SIGTERM, WATCHDOG=1 every WATCHDOG_USEC/2), the systemd unit
(systemd-analyze verify), `make deb` (dpkg-x into a scratch dir, --version,
lintian), the container entrypoint, and the Kubernetes manifests.

Tools that may be absent (systemd-analyze, lintian, dpkg-deb) skip their
test with a message rather than fail it."""
import gzip
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import yaml

import helpers

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")


def http_status(port, path, timeout=2):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (helpers.HOST, port, path),
                                    timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


# --- systemd notify -----------------------------------------------------------

class NotifySocket:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def drain(self, seconds):
        """Read what arrives during `seconds`; returns those datagrams."""
        got = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                got.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        self.messages += got
        return got

    def wait_for(self, msg, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if msg in self.drain(0.05):
                return
        raise TimeoutError("no %s within %.1fs; got %r" % (msg, timeout, self.messages[-5:]))

    def close(self):
        self.sock.close()


def start_single_node_cluster(workdir, port):
    """One redis-server owning every slot, on `port`."""
    proc = helpers.popen([helpers.REDIS_SERVER, "--port", str(port), "--bind", helpers.HOST,
                          "--cluster-enabled", "yes", "--dir", str(workdir),
                          "--cluster-config-file", "nodes-%d.conf" % port,
                          "--save", "", "--appendonly", "no", "--logfile", ""],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT)

    def up():
        r = subprocess.run([helpers.REDIS_CLI, "-p", str(port), "CLUSTER", "ADDSLOTSRANGE",
                            "0", "16383"], capture_output=True, text=True)
        return r.stdout.strip() == "OK" or "already busy" in r.stdout
    helpers.wait_until(up, 10, what="redis-server :%d" % port)
    return proc


def test_sd_notify_ready_watchdog_stopping(tmp_path):
    """READY=1 only once the first topology is loaded (the entry point
    starts after ringslot), WATCHDOG=1 every 100 ms for WATCHDOG_USEC=200000,
    STOPPING=1 on SIGTERM, then a clean exit."""
    notify = NotifySocket(str(tmp_path / "notify"))
    backend_port, port, console = helpers.free_port(), helpers.free_port(), helpers.free_port()
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="200000")
    log = open(tmp_path / "ringslot.log", "wb")
    rs = helpers.popen([helpers.ringslot_binary(), "--port", str(port), "--threads", "1",
                        "--console-port", str(console), "127.0.0.1:%d" % backend_port],
                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    redis = None
    try:
        helpers.wait_until(lambda: http_status(console, "/readyz") == 503, 10,
                           what="the console to answer")
        notify.drain(1.0)  # ~1 s without a topology: watchdog only
        assert "READY=1" not in notify.messages
        assert 5 <= notify.messages.count("WATCHDOG=1") <= 15, notify.messages
        assert http_status(console, "/readyz") == 503

        redis = start_single_node_cluster(tmp_path, backend_port)
        notify.wait_for("READY=1", 15)
        assert http_status(console, "/readyz") == 200
        assert notify.messages.count("READY=1") == 1

        rs.send_signal(15)
        notify.wait_for("STOPPING=1", 10)
        assert rs.wait(15) == 0
        assert notify.messages.count("READY=1") == 1
    finally:
        helpers.stop_process(rs, 5)
        if redis is not None:
            helpers.stop_process(redis, 5)
        log.close()
        notify.close()



# --- Debian package and systemd unit ----------------------------------------

def need_tools(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip("%s not installed (apt-get install dpkg-dev lintian systemd)"
                    % ", ".join(missing))


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """`make deb`, then the package unpacked into a scratch root with
    dpkg -x: (path of the .deb, the root)."""
    need_tools("dpkg-deb", "dpkg-shlibdeps", "strip")
    # under `make test` the outer make's MAKELEVEL/MAKEFLAGS would make this
    # one print "Entering/Leaving directory" lines around the path
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    r = subprocess.run(["make", "-s", "--no-print-directory", "deb"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    debs = [line for line in r.stdout.splitlines() if line.strip().endswith(".deb")]
    assert debs, r.stdout
    path = os.path.join(ROOT, debs[-1].strip())
    root = tmp_path_factory.mktemp("debroot")
    subprocess.run(["dpkg", "-x", path, str(root)], check=True)
    return path, root


def test_deb_contents(deb):
    path, root = deb
    r = subprocess.run([str(root / "usr/bin/ringslot"), "--version"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("ringslot "), r.stdout + r.stderr
    for f in ["usr/share/man/man1/ringslot.1.gz", "lib/systemd/system/ringslot.service",
              "etc/ringslot/ringslot.conf", "etc/logrotate.d/ringslot",
              "usr/share/doc/ringslot/copyright", "usr/share/doc/ringslot/changelog.Debian.gz"]:
        assert (root / f).is_file(), f
    with gzip.open(root / "usr/share/man/man1/ringslot.1.gz", "rt") as f:
        assert f.read().startswith('.\\" ringslot(1)')
    fields = subprocess.run(["dpkg-deb", "-f", path], capture_output=True, text=True,
                            check=True).stdout
    assert "liburing2" in fields and "libinih1" in fields and "adduser" in fields, fields
    listed = subprocess.run(["sh", "-c", "dpkg-deb --ctrl-tarfile %s | tar -xO ./conffiles"
                             % path], capture_output=True, text=True, check=True).stdout
    assert listed.split() == ["/etc/logrotate.d/ringslot", "/etc/ringslot/ringslot.conf"]
    config = subprocess.run([str(root / "usr/bin/ringslot"), "--check-config", "-c",
                             str(root / "etc/ringslot/ringslot.conf")],
                            capture_output=True, text=True, timeout=10)
    assert config.returncode == 0, config.stderr


def test_deb_lintian(deb):
    """No error or warning but the overrides the package states."""
    need_tools("lintian")
    r = subprocess.run(["lintian", "--allow-root", "--pedantic", "--fail-on", "error,warning",
                        deb[0]], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_systemd_unit_verifies(deb, tmp_path):
    """systemd-analyze verify on the packaged unit, its commands pointed at
    the unpacked binary and its Documentation= at the unpacked man page."""
    need_tools("systemd-analyze")
    _, root = deb
    unit = (root / "lib/systemd/system/ringslot.service").read_text()
    for key in ["Type=notify", "WatchdogSec=", "ProtectSystem=strict", "NoNewPrivileges=yes",
                "CapabilityBoundingSet=\n", "io_uring_setup io_uring_enter io_uring_register"]:
        assert key in unit, key
    (tmp_path / "ringslot.service").write_text(
        unit.replace("/usr/bin/ringslot", str(root / "usr/bin/ringslot")))
    env = dict(os.environ, MANPATH=str(root / "usr/share/man"), SYSTEMD_LOG_LEVEL="notice")
    r = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "ringslot.service")],
                       capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert r.returncode == 0 and "ringslot.service" not in r.stderr, r.stdout + r.stderr


# --- container ------------------------------------------------------------------

CONTAINER = os.path.join(DEPLOY, "container")
ENTRYPOINT = os.path.join(CONTAINER, "ringslot-entrypoint")


def run_entrypoint(args, env, tmp_path, binary=None):
    e = dict(os.environ, RINGSLOT_CONFIG=os.path.join(CONTAINER, "ringslot.conf"),
             RINGSLOT_RUNDIR=str(tmp_path), **env)
    for k in ("POD_IP", "POD_NAME", "RINGSLOT_ANNOUNCE_IP", "RINGSLOT_CLUSTER_NAME"):
        if k not in env:
            e.pop(k, None)
    if binary:
        e["RINGSLOT_BIN"] = binary
    return subprocess.run([ENTRYPOINT] + args, env=e, capture_output=True, text=True,
                          timeout=20)


def test_entrypoint_args(tmp_path):
    """With a fake exec target: the options the environment adds, after the
    container's arguments, and the node id derived from the pod name."""
    fake = tmp_path / "fake-ringslot"
    fake.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\"\n")
    fake.chmod(0o755)
    conf = os.path.join(CONTAINER, "ringslot.conf")

    r = run_entrypoint(["10.0.0.5:7000"], {}, tmp_path, str(fake))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == ["-c", conf, "10.0.0.5:7000"]

    r = run_entrypoint(["--cluster-mode", "10.0.0.5:7000"],
                       {"POD_IP": "10.1.2.3", "POD_NAME": "ringslot-1"}, tmp_path, str(fake))
    assert r.returncode == 0, r.stderr
    idfile = str(tmp_path / "node-id")
    assert r.stdout.split("\n")[:-1] == ["-c", conf, "--cluster-mode", "10.0.0.5:7000",
                                         "--announce-ip", "10.1.2.3",
                                         "--node-id-file", idfile]
    assert open(idfile).read().strip() == hashlib.sha1(b"ringslot/ringslot-1").hexdigest()

    r = run_entrypoint([], {"POD_IP": "10.1.2.3", "RINGSLOT_ANNOUNCE_IP": "192.0.2.7"},
                       tmp_path, str(fake))
    assert "192.0.2.7" in r.stdout.split() and "10.1.2.3" not in r.stdout.split()


def test_entrypoint_real_binary(tmp_path):
    """The real binary accepts what the entrypoint hands it, and keeps the
    derived node id (consensus reads 40 hex)."""
    r = run_entrypoint(["--cluster-mode", "--cluster-password", "x", "127.0.0.1:7000",
                        "--check-config"],
                       {"POD_IP": "10.1.2.3", "POD_NAME": "ringslot-0"}, tmp_path,
                       helpers.ringslot_binary())
    assert r.returncode == 0, r.stderr
    assert "announce-ip 10.1.2.3" in r.stdout
    assert "node-id-file %s" % (tmp_path / "node-id") in r.stdout
    assert "console-port 9121" in r.stdout and "port 7777" in r.stdout


def test_healthcheck_script(tmp_path):
    """ringslot-healthcheck: 0 on a console answering 200, else non-zero."""
    class Console(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer((helpers.HOST, 0), Console)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    script = os.path.join(CONTAINER, "ringslot-healthcheck")
    try:
        env = dict(os.environ, RINGSLOT_CONSOLE_PORT=str(srv.server_address[1]))
        assert subprocess.run([script], env=env, timeout=10).returncode == 0
    finally:
        srv.shutdown()
        srv.server_close()
    env = dict(os.environ, RINGSLOT_CONSOLE_PORT=str(helpers.free_port()))
    assert subprocess.run([script], env=env, timeout=10,
                          stderr=subprocess.DEVNULL).returncode != 0


def containerfile_args():
    """The ARG name="packages" lines of the Containerfile."""
    out = {}
    for line in open(os.path.join(CONTAINER, "Containerfile")):
        if line.startswith("ARG ") and "=" in line:
            k, v = line[4:].strip().split("=", 1)
            out[k] = v.strip('"').split()
    return out


def test_containerfile_packages(deb):
    """Every package the Containerfile installs exists (apt-cache show), and
    the run stage installs every library the binary links (the .deb's
    Depends, from dpkg-shlibdeps)."""
    need_tools("apt-cache")
    args = containerfile_args()
    text = open(os.path.join(CONTAINER, "Containerfile")).read()
    assert "FROM debian:12 AS build" in text and "FROM debian:12-slim" in text
    assert "USER 10001" in text and "HEALTHCHECK" in text
    for pkg in args["BUILD_DEPS"] + args["RUNTIME_DEPS"]:
        r = subprocess.run(["apt-cache", "show", pkg], capture_output=True, text=True)
        assert r.returncode == 0 and "Package: %s" % pkg in r.stdout, pkg
    depends = subprocess.run(["dpkg-deb", "-f", deb[0], "Depends"], capture_output=True,
                             text=True, check=True).stdout
    libs = {d.split()[0] for d in depends.split(",")} - {"libc6", "adduser"}
    assert libs <= set(args["RUNTIME_DEPS"]), (libs, args["RUNTIME_DEPS"])


# --- Kubernetes -------------------------------------------------------------------

KUBE = os.path.join(DEPLOY, "kubernetes")


def manifests(name):
    with open(os.path.join(KUBE, name)) as f:
        return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(f) if d}


def test_every_manifest_parses():
    names = sorted(f for f in os.listdir(KUBE) if f.endswith(".yaml"))
    assert names == ["cluster.yaml", "single.yaml"]
    for n in names:
        for d in manifests(n).values():
            assert d["apiVersion"] and d["kind"] and d["metadata"]["name"]


def check_pod(spec, source):
    """Probes, grace, preStop and the security context of a pod template."""
    pod = spec["template"]["spec"]
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True
    # the default profile: io_uring is denied there and ringslot runs on
    # epoll (test_io_backend.py starts it under such a filter)
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert "epoll" in source
    assert pod["terminationGracePeriodSeconds"] >= 15
    (c,) = pod["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["lifecycle"]["preStop"]
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    return pod, c


def check_pdb(docs, labels):
    (pdb,) = [d for (k, _), d in docs.items() if k == "PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"] == labels


def test_single_proxy_manifest():
    docs = manifests("single.yaml")
    dep = docs[("Deployment", "ringslot")]
    svc = docs[("Service", "ringslot")]
    labels = dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["selector"] == labels
    check_pod(dep["spec"], open(os.path.join(KUBE, "single.yaml")).read())
    check_pdb(docs, labels)


def test_cluster_mode_manifest(tmp_path):
    """StatefulSet + headless Service, announce-ip from status.podIP, seeds
    through the headless Service's DNS names, the password from a Secret;
    and the container's arguments, expanded as the kubelet does, are
    accepted by ringslot through the entrypoint."""
    source = open(os.path.join(KUBE, "cluster.yaml")).read()
    docs = manifests("cluster.yaml")
    sts = docs[("StatefulSet", "ringslot")]
    headless = docs[("Service", sts["spec"]["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"
    labels = sts["spec"]["selector"]["matchLabels"]
    assert headless["spec"]["selector"] == labels
    check_pdb(docs, labels)
    pod, c = check_pod(sts["spec"], source)
    env = {e["name"]: e for e in c["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "derived from the pod name" in source
    args = c["args"]
    assert "--cluster-mode" in args
    (seeds,) = [a for a in args if a.startswith("--cluster-seeds=")]
    peers = ".%s.$(POD_NAMESPACE).svc.cluster.local:17777" % headless["metadata"]["name"]
    assert seeds.split("=", 1)[1].split(",") == [
        "%s-%d%s" % (sts["metadata"]["name"], i, peers) for i in range(sts["spec"]["replicas"])]
    # The password: a Secret mounted as a configuration file (-c).
    secret = docs[("Secret", "ringslot-cluster")]
    conf = secret["stringData"]["cluster.conf"]
    assert conf.startswith("cluster-password ") and "lease-redis" in conf
    (vol,) = [v for v in pod["volumes"] if v.get("secret")]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == vol["name"]]
    conf_path = args[args.index("-c") + 1]
    assert os.path.dirname(conf_path) == mount["mountPath"]

    (tmp_path / "cluster.conf").write_text(conf)
    values = {"POD_NAMESPACE": "default",
              "RINGSLOT_CLUSTER_NAME": env["RINGSLOT_CLUSTER_NAME"]["value"]}
    expanded = [a.replace(conf_path, str(tmp_path / "cluster.conf")) for a in args]
    for k, v in values.items():
        expanded = [a.replace("$(%s)" % k, v) for a in expanded]
    r = run_entrypoint(expanded + ["--check-config"],
                       {"POD_IP": "10.1.2.3", "POD_NAME": "ringslot-2"}, tmp_path,
                       helpers.ringslot_binary())
    assert r.returncode == 0, r.stderr
    assert "announce-ip 10.1.2.3" in r.stdout and "cluster-mode yes" in r.stdout
    assert "ringslot-0.ringslot-peers.default.svc.cluster.local:17777" in r.stdout
