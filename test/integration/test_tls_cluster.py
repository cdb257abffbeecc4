"""The TLS test harness (tls_certs.py), before ringslot speaks TLS: the
certificates are what they claim to be, and a TLS-only Redis Cluster (port 0,
tls-port, tls-cluster, tls-replication) forms and serves redis-cli --tls and
redis-py ssl=True, while refusing plaintext and bad client certificates."""

import subprocess

import pytest

from helpers import HOST, ConnectionClosed, RespClient, closed_by_peer, keyslot, wait_until
from tls_certs import OPENSSL, tls_resp_client


def _verify(certs, name, ca="ca.crt"):
    p = subprocess.run([OPENSSL, "verify", "-CAfile", certs.path(ca),
                        certs.path(name + ".crt")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def test_certificates(tls_cluster):
    certs = tls_cluster.certs
    assert _verify(certs, "server")[0] == 0
    assert _verify(certs, "client")[0] == 0
    rc, out = _verify(certs, "other")
    assert rc != 0 and "unable to get local issuer" in out
    assert _verify(certs, "other", "other-ca.crt")[0] == 0
    rc, out = _verify(certs, "expired")
    assert rc != 0 and "expired" in out
    text = subprocess.run([OPENSSL, "x509", "-noout", "-text", "-in", certs.path("server.crt")],
                          stdout=subprocess.PIPE, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in text


def test_redis_cli_tls(tls_cluster):
    masters = tls_cluster.masters()
    assert len(masters) == 3
    for port in tls_cluster.ports:
        r = tls_cluster.redis_cli(port, "PING")
        assert r.returncode == 0 and r.stdout.strip() == "PONG", r.stdout
    r = tls_cluster.redis_cli(masters[0], "CLUSTER", "INFO")
    assert "cluster_state:ok" in r.stdout
    # -c follows MOVED over TLS: keys on every master
    keys = ["tls-key-%d" % i for i in range(30)]
    assert len({tls_cluster.master_for_key(k) for k in keys}) == 3
    for k in keys:
        r = tls_cluster.redis_cli(masters[0], "-c", "SET", k, k + "-v")
        assert r.stdout.strip() == "OK", r.stdout
    for k in keys:
        r = tls_cluster.redis_cli(masters[1], "-c", "GET", k)
        assert r.stdout.strip() == k + "-v", r.stdout


def test_redis_py_ssl_and_replication(tls_cluster):
    master = tls_cluster.master_for_slot(keyslot("{py}x"))
    r = tls_cluster.client(master)
    assert r.ping()
    r.set("{py}x", "1")
    assert r.get("{py}x") == b"1"
    # the replica got it over TLS replication
    replica = tls_cluster.replicas(master)[0]
    rep = tls_cluster.client(replica)
    wait_until(lambda: rep.execute_command("READONLY") and rep.get("{py}x") == b"1",
               10, what="replica to have the key")


def test_plaintext_refused(tls_cluster):
    port = tls_cluster.masters()[0]
    with RespClient(HOST, port, timeout=5) as c:
        c.send(b"PING\r\n")
        with pytest.raises((ConnectionClosed, OSError)):
            c.read_reply()
        wait_until(lambda: closed_by_peer(c.sock), 5, what="node to close")


@pytest.mark.parametrize("client", [None, "other", "expired"])
def test_bad_client_certificates_refused(tls_cluster, client):
    port = tls_cluster.masters()[0]
    r = tls_cluster.redis_cli(port, "PING", client=client)
    assert "PONG" not in r.stdout
    with pytest.raises((ConnectionClosed, OSError)):
        with tls_resp_client(port, tls_cluster.certs, client=client, timeout=5) as c:
            c.command("PING")
    # the good certificate still works
    with tls_resp_client(port, tls_cluster.certs, timeout=5) as c:
        assert c.command("PING") == "PONG"
