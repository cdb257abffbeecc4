"""TLS for the integration tests: certificates made with the `openssl` CLI,
and a Redis Cluster that speaks only TLS.

    certs = make_certs(tmpdir)      CA, server (SAN IP:127.0.0.1), client,
                                    a client from another CA, an expired
                                    client; certs.path("server.crt") ...
    TlsRedisCluster(tmpdir, certs)  helpers.RedisCluster with `port 0`,
                                    `tls-port`, `tls-cluster yes`,
                                    `tls-replication yes`; execute(),
                                    client() and redis-cli go over TLS
    tls_resp_client(port, certs)    helpers.RespClient over TLS
    redis_cli_tls_args(certs)       --tls --cacert ... --cert ... --key ...

Keys are EC P-256 (made in milliseconds, unlike RSA). Every file lives in
the directory given; nothing is written elsewhere. The nodes require client
certificates (Redis's default tls-auth-clients yes) and present the server
certificate to each other on the bus and for replication.
"""

import os
import ssl
import subprocess

from helpers import HOST, REDIS_CLI, RedisCluster, RespClient, RespError

OPENSSL = os.environ.get("OPENSSL", "openssl")

SERVER_SAN = "IP:127.0.0.1,DNS:localhost"


class Certs:
    """Paths of the files make_certs() wrote, by role:

        ca.crt / ca.key               the test CA
        server.crt / server.key       signed by ca, SAN IP:127.0.0.1
        client.crt / client.key       signed by ca
        other-ca.crt                  another CA
        other.crt / other.key         a client signed by other-ca
        expired.crt / expired.key     signed by ca, expired yesterday
    """

    def __init__(self, directory):
        self.dir = str(directory)

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def ca(self):
        return self.path("ca.crt")

    def pair(self, name):
        """(cert, key) of a leaf: "server", "client", "other", "expired"."""
        return self.path(name + ".crt"), self.path(name + ".key")

    def ssl_context(self, client="client", verify=True):
        """A client-side ssl.SSLContext trusting ca, presenting `client`'s
        certificate (None: none)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if client is not None:
            ctx.load_cert_chain(*self.pair(client))
        return ctx


def _openssl(args, cwd):
    p = subprocess.run([OPENSSL] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s" % (
            " ".join(args), p.returncode, p.stdout.decode(errors="replace")))


_NEWKEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _make_ca(d, name, cn):
    _openssl(["req", "-x509", "-new"] + _NEWKEY + [
        "-keyout", name + ".key", "-out", name + ".crt", "-days", "365",
        "-subj", "/CN=" + cn], d)


def _make_leaf(d, name, ca, days=365, san=None):
    """name.key + name.crt signed by ca ("ca" or "other-ca"); days < 0 gives
    a certificate whose notAfter is already past (openssl x509 -days -1)."""
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = CA:FALSE\n")
        f.write("keyUsage = digitalSignature, keyEncipherment\n")
        if san:
            f.write("subjectAltName = %s\n" % san)
    _openssl(["req", "-new"] + _NEWKEY + [
        "-keyout", name + ".key", "-out", name + ".csr",
        "-subj", "/CN=ringslot-test-" + name], d)
    _openssl(["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt",
              "-CAkey", ca + ".key", "-CAcreateserial", "-out", name + ".crt",
              "-days", str(days), "-extfile", ext], d)
    os.unlink(os.path.join(d, name + ".csr"))


def make_certs(directory):
    """Write the CA, server, client, other-CA client and expired client
    certificates into `directory` (created if needed); returns Certs."""
    d = str(directory)
    os.makedirs(d, exist_ok=True)
    _make_ca(d, "ca", "ringslot-test-ca")
    _make_ca(d, "other-ca", "ringslot-other-ca")
    _make_leaf(d, "server", "ca", san=SERVER_SAN)
    _make_leaf(d, "client", "ca")
    _make_leaf(d, "other", "other-ca")
    _make_leaf(d, "expired", "ca", days=-1)
    return Certs(d)


def redis_cli_tls_args(certs, client="client"):
    """redis-cli's (and ringslot's backend) TLS options for these certs."""
    args = ["--tls", "--cacert", certs.ca]
    if client is not None:
        cert, key = certs.pair(client)
        args += ["--cert", cert, "--key", key]
    return args


class TlsRespClient(RespClient):
    """helpers.RespClient over TLS (verifying the server against certs.ca
    and its IP SAN, presenting `client`'s certificate)."""

    def __init__(self, host=HOST, port=None, timeout=10.0, certs=None,
                 client="client"):
        super().__init__(host, port, timeout)
        ctx = certs.ssl_context(client)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_hostname=host)
        except BaseException:
            self.close()
            raise


def tls_resp_client(port, certs, client="client", timeout=10.0):
    return TlsRespClient(HOST, port, timeout, certs=certs, client=client)


class TlsRedisCluster(RedisCluster):
    """helpers.RedisCluster whose nodes listen only on TLS: `port 0`,
    `tls-port` on the node's port (so the bus is that port + 10000, as for
    plain nodes), `tls-cluster yes`, `tls-replication yes`. Everything the
    base class does to a node (PING probes, CLUSTER INFO/SLOTS, redis-cli
    --cluster create, client()) goes over TLS with the client certificate.
    """

    def __init__(self, workdir, certs, **kw):
        self.certs = certs
        super().__init__(workdir, **kw)

    def _server_args(self, port):
        args = super()._server_args(port)
        i = args.index("--port")
        cert, key = self.certs.pair("server")
        args[i:i + 2] = [
            "--port", "0", "--tls-port", str(port),
            "--tls-cert-file", cert, "--tls-key-file", key,
            "--tls-ca-cert-file", self.certs.ca,
            "--tls-cluster", "yes", "--tls-replication", "yes",
        ]
        return args

    def _cli_options(self):
        return redis_cli_tls_args(self.certs)

    def execute(self, port, *args):
        with tls_resp_client(port, self.certs, timeout=5) as c:
            reply = c.command(*args)
        if isinstance(reply, RespError):
            raise reply
        return reply

    def client(self, port, **kw):
        kw.setdefault("ssl", True)
        kw.setdefault("ssl_ca_certs", self.certs.ca)
        cert, key = self.certs.pair("client")
        kw.setdefault("ssl_certfile", cert)
        kw.setdefault("ssl_keyfile", key)
        return super().client(port, **kw)

    def redis_cli(self, port, *args, client="client", timeout=30):
        """Run redis-cli --tls against one node; returns CompletedProcess
        (text, stdout and stderr together)."""
        cmd = [REDIS_CLI, "-h", HOST, "-p", str(port)] + \
            redis_cli_tls_args(self.certs, client) + [str(a) for a in args]
        return subprocess.run(cmd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout)


def start_tls_cluster(workdir, certs=None, masters=3, replicas=1, **kw):
    """Start a TLS-only Redis Cluster under workdir (certificates made in
    workdir/certs unless given) and wait until it is stable; returns the
    TlsRedisCluster, which the caller stops. For a fixture:

        @pytest.fixture(scope="module")
        def tls_cluster(tmp_path_factory):
            c = start_tls_cluster(tmp_path_factory.mktemp("tls"))
            yield c
            c.stop()
    """
    workdir = str(workdir)
    if certs is None:
        certs = make_certs(os.path.join(workdir, "certs"))
    c = TlsRedisCluster(os.path.join(workdir, "cluster"), certs,
                        masters=masters, replicas=replicas, **kw)
    c.start()
    return c
