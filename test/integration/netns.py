"""Network namespaces for tests that need real, changing addresses.

    Net(tag, prefix)   a private Ethernet segment: a bridge in a hub
                       namespace of its own, and hosts (namespaces made by
                       the test) plugged into it by veth pairs, one address
                       each in prefix.0/24
    net.add_host(name, ip)   a namespace "<tag><name>" with lo up and eth0
                       holding ip/24; returns the namespace's name
    net.link(ns, up)   eth0 of one host up or down (its processes live on)
    net.remove_host(ns)      delete one host (its eth0 and hub port go too)
    net.destroy()      delete every namespace this Net made, and only those
    entered(ns)        context manager: the calling thread's sockets are
                       made in namespace ns meanwhile (setns(2) on this
                       thread only), then it returns to its own
    hosts_file         /etc/hosts as seen by `ip netns exec <ns> ...` for
                       every host: ip netns exec bind-mounts
                       /etc/netns/<ns>/hosts over /etc/hosts, and that file
                       is a symlink to one file the test rewrites in place,
                       so every host resolves the same names (the test's
                       stand-in for cluster DNS)

Nothing outside the namespaces this class made is touched: the bridge and
every veth live inside them, no address or route is added to the root
namespace, and the only files are /etc/netns/<ns>/ for our own names (and
/etc/netns itself when it did not exist), removed by destroy().

Names carry the tag (the test passes its pid), so concurrent runs never meet.
Processes started with `ip netns exec` must be stopped before destroy():
a namespace disappears only when the last process in it is gone.
"""

import contextlib
import ctypes
import os
import shutil
import subprocess

CLONE_NEWNET = 0x40000000
NETNS_RUN = "/run/netns"
NETNS_ETC = "/etc/netns"

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    pass


def ip(*args, check=True):
    """Run `ip ARGS`; NetnsError with its stderr when it fails."""
    p = subprocess.run(["ip"] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    if check and p.returncode != 0:
        raise NetnsError("ip %s: %s" % (" ".join(args), (p.stderr or p.stdout).strip()))
    return p


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: %s" % os.strerror(err))


@contextlib.contextmanager
def entered(ns):
    """The calling thread works in network namespace `ns` inside the block
    (network namespaces are per thread: other threads are not affected)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_RUN, ns), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def enter_for_good(ns):
    """The calling thread moves to `ns` and stays there (for threads that
    end in it, such as a load generator)."""
    fd = os.open(os.path.join(NETNS_RUN, ns), os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


def unavailable_reason():
    """None if this process can make network namespaces, veth pairs and a
    bridge; otherwise why not (for pytest.skip)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    probe = "rsprobe%d" % os.getpid()
    try:
        ip("netns", "add", probe)
    except (NetnsError, OSError) as exc:
        return "cannot create a network namespace: %s" % exc
    try:
        ip("-n", probe, "link", "add", "br0", "type", "bridge")
        ip("-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "b0")
    except NetnsError as exc:
        return "cannot create a bridge or veth pair in a namespace: %s" % exc
    finally:
        ip("netns", "del", probe, check=False)
    return None


class Net:
    def __init__(self, tag, prefix="10.77.0", workdir="/tmp"):
        self.tag = tag
        self.prefix = prefix
        self.hub = tag + "hub"
        self.namespaces = []       # made by us, in creation order
        self.hub_ports = {}        # host namespace -> its veth's name in the hub
        self._port_seq = 0
        self._etc_created = False
        self.hosts_file = os.path.join(str(workdir), "hosts")
        self.names = {}            # name -> ip, written to hosts_file

    def addr(self, n):
        return "%s.%d" % (self.prefix, n)

    def _add_ns(self, ns):
        ip("netns", "add", ns)
        self.namespaces.append(ns)
        ip("-n", ns, "link", "set", "lo", "up")

    def create(self):
        self.write_hosts()
        if not os.path.isdir(NETNS_ETC):
            os.makedirs(NETNS_ETC)
            self._etc_created = True
        self._add_ns(self.hub)
        ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        ip("-n", self.hub, "link", "set", "br0", "up")
        return self

    def add_host(self, name, address):
        """A namespace plugged into the bridge with address/24 on its eth0."""
        ns = self.tag + name
        self._add_ns(ns)
        etc = os.path.join(NETNS_ETC, ns)
        os.makedirs(etc)
        os.symlink(self.hosts_file, os.path.join(etc, "hosts"))
        self._port_seq += 1
        port = "h%d" % self._port_seq  # inside the hub: only our own names
        ip("-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        self.hub_ports[ns] = port
        ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
        ip("-n", ns, "addr", "add", "%s/24" % address, "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        return ns

    def link(self, ns, up):
        ip("-n", ns, "link", "set", "eth0", "up" if up else "down")

    def remove_host(self, ns):
        ip("netns", "del", ns, check=False)
        if ns in self.namespaces:
            self.namespaces.remove(ns)
        self.hub_ports.pop(ns, None)
        shutil.rmtree(os.path.join(NETNS_ETC, ns), ignore_errors=True)

    def set_name(self, name, address):
        """name resolves to address in every host from now on (the file is
        rewritten in place: the bind mounts follow it)."""
        self.names[name] = address
        self.write_hosts()

    def write_hosts(self):
        lines = ["127.0.0.1 localhost"] + ["%s %s" % (a, n) for n, a in sorted(self.names.items())]
        with open(self.hosts_file, "w") as f:  # truncates: same inode
            f.write("\n".join(lines) + "\n")

    def destroy(self):
        """Delete every namespace we made (hosts first, the hub last) and our
        /etc/netns entries. Returns the problems met (strings)."""
        problems = []
        for ns in reversed(list(self.namespaces)):
            p = ip("netns", "del", ns, check=False)
            if p.returncode != 0:
                problems.append("ip netns del %s: %s" % (ns, p.stderr.strip()))
            shutil.rmtree(os.path.join(NETNS_ETC, ns), ignore_errors=True)
        self.namespaces = []
        if self._etc_created:
            try:
                os.rmdir(NETNS_ETC)
            except OSError:
                pass  # someone else put something there meanwhile: keep it
        return problems
