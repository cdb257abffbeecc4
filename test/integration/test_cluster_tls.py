"""Cluster mode with the cluster port over TLS (tls-cluster yes, issue 12).

Three proxies in cluster mode whose cports speak only TLS with the tls-*
certificate, as Redis's cluster bus does with tls-cluster: each presents it
as a client certificate to the others and requires one from them. They
must agree on one map (heartbeats, joins and map pulls all cross TLS), a
graceful leave must hand the slots over, a client that speaks plaintext
or TLS without a certificate to a cport is refused without disturbing the
members, and SIGHUP reloads the certificate files.
"""
import signal
import socket
import ssl
import uuid

import pytest

from helpers import HOST, authed_command, wait_until
from test_cluster_mode import PASSWORD, SLOTS, cluster_args, cport, slot_table
import tls_certs


def tls_args(certs):
    cert, key = certs.pair("server")
    return ["--tls-cluster", "yes", "--tls-cert-file", cert, "--tls-key-file", key,
            "--tls-ca-cert-file", certs.ca]


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    return tls_certs.make_certs(d)


def tls_cport_cmd(rs, certs, *args, client="client"):
    return authed_command(tls_certs.tls_resp_client(cport(rs), certs, client=client, timeout=5),
                          PASSWORD, *args)


def tls_members(rs, certs):
    return [m.decode().split(" ") for m in tls_cport_cmd(rs, certs, "PROXY", "CLUSTER", "MEMBERS")]


def start(make_ringslot, tmp_path, certs, n, name):
    tmp_path.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        rs = make_ringslot(extra_args=cluster_args(name, tmp_path / ("id-%d" % i),
                                                   extra=tls_args(certs)))
        out.append(rs)
    return out


def test_cluster_port_over_tls(make_ringslot, tmp_path, certs):
    name = "tls-" + uuid.uuid4().hex[:8]
    proxies = start(make_ringslot, tmp_path, certs, 3, name)
    wait_converged_tls(proxies, certs)

    # plaintext to a cport: no reply, the connection is closed
    with socket.create_connection((HOST, cport(proxies[0])), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(PASSWORD), PASSWORD.encode()))
        s.settimeout(5)
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"+OK"), data
    # TLS without a client certificate: refused (Redis's cluster bus asks
    # every peer for one)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, EOFError)):
        tls_cport_cmd(proxies[0], certs, "PROXY", "CLUSTER", "MEMBERS", client=None)
    # a certificate from another CA: refused too
    with pytest.raises((ssl.SSLError, ConnectionError, OSError, EOFError)):
        tls_cport_cmd(proxies[0], certs, "PROXY", "CLUSTER", "MEMBERS", client="other")
    assert len(tls_members(proxies[1], certs)) == 3

    # SIGHUP: the certificate files are read again; connections made after
    # it (a client's, a new peer's) work with them
    proxies[0].proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "SIGHUP: TLS certificates reloaded" in proxies[0].log_tail(20000), 10,
               what="the reload to be logged")
    assert len(tls_members(proxies[0], certs)) == 3
    proxies += start(make_ringslot, tmp_path / "late", certs, 1, name)
    wait_converged_tls(proxies, certs)

    # a graceful leave over TLS: the others take its slots
    gone = proxies.pop()
    gone.stop()
    wait_converged_tls(proxies, certs)


def converged_tls(proxies, certs):
    """One map (term, version) listing exactly these proxies on every
    cport, and the same full slot table through every client port."""
    headers = set()
    for rs in proxies:
        text = tls_cport_cmd(rs, certs, "PROXY", "CLUSTER", "MAP").decode()
        _magic, _v, term, version, n = text.split("\n", 1)[0].split(" ")
        headers.add((term, version, int(n)))
    if len(headers) != 1 or next(iter(headers))[2] != len(proxies):
        return False
    tables = [slot_table(rs) for rs in proxies]
    return all(t == tables[0] for t in tables) and set(tables[0]) == {rs.port for rs in proxies}


def wait_converged_tls(proxies, certs, timeout=20.0):
    wait_until(lambda: converged_tls(proxies, certs), timeout, interval=0.2,
               what="%d proxies to agree over TLS" % len(proxies))
    assert len(slot_table(proxies[0])) == SLOTS


def test_plain_peer_cannot_join_a_tls_cluster(make_ringslot, tmp_path, certs):
    name = "tlsx-" + uuid.uuid4().hex[:8]
    tls_proxies = start(make_ringslot, tmp_path, certs, 2, name)
    wait_converged_tls(tls_proxies, certs)
    plain = make_ringslot(extra_args=cluster_args(name, tmp_path / "id-plain"))
    # it cannot talk to the leader's cport: it never becomes a member
    wait_until(lambda: "cluster" in plain.log_tail(20000), 5, what="its log")
    for rs in tls_proxies:
        assert len(tls_members(rs, certs)) == 2
    assert set(slot_table(tls_proxies[0])) == {rs.port for rs in tls_proxies}
