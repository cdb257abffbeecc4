/*
 * test_tls.c — the TLS module (core/tls/tls.h) with a server and a client
 * tls_conn pumped against each other in memory, no sockets: handshake and
 * data both ways at every kind of split point, large transfers, session
 * resumption, mutual TLS refused (no certificate, another CA, expired) with
 * the reason classified, the server's certificate checked by the client,
 * plaintext on the TLS side, protocol mismatch, close_notify, the handshake
 * deadline, context errors and a reload while an old connection goes on.
 *
 * Certificates are made at setup with OpenSSL's API (EC P-256 keys: fast)
 * into a temporary directory, which teardown removes:
 *
 *   ca ──┬─ server (SAN IP:127.0.0.1, DNS:localhost), server-enc (key
 *        │  under a passphrase)
 *        ├─ client, expired (client, valid two days ago to yesterday)
 *   ca2 ─┴─ other (client), server2 (SAN IP:127.0.0.1)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "../../core/tls/tls.h"

#define KEY_PASS "s3cret pass"

static char dir[64];

/* ---- certificates ------------------------------------------------------- */

static const char *path(const char *name)
{
    static char bufs[8][256];
    static int next;
    char *b = bufs[next++ % 8];

    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/*
 * A certificate for key, signed by issuer/issuer_key (self-signed when
 * NULL), valid from `from` to `to` seconds around now; san may be NULL.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
                       EVP_PKEY *issuer_key, bool ca, long from, long to,
                       const char *san)
{
    static long serial = 1;
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(cert);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
    X509_gmtime_adj(X509_getm_notBefore(cert), from);
    X509_gmtime_adj(X509_getm_notAfter(cert), to);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer)
                                              : name);
    X509_NAME_free(name);
    if (issuer == NULL)
        issuer = cert;
    add_ext(cert, issuer, NID_basic_constraints,
            ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(cert, issuer, NID_subject_key_identifier, "hash");
    add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always");
    if (ca)
        add_ext(cert, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san != NULL)
        add_ext(cert, issuer, NID_subject_alt_name, san);
    assert_true(X509_sign(cert, issuer_key != NULL ? issuer_key : key,
                          EVP_sha256()) > 0);
    return cert;
}

static void write_cert(const char *name, X509 *cert)
{
    FILE *f = fopen(path(name), "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, cert), 1);
    fclose(f);
}

static void write_key(const char *name, EVP_PKEY *key, const char *pass)
{
    FILE *f = fopen(path(name), "w");

    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key,
                         pass != NULL ? EVP_aes_128_cbc() : NULL,
                         (const unsigned char *)pass,
                         pass != NULL ? (int)strlen(pass) : 0, NULL, NULL), 1);
    fclose(f);
}

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

/* Leaf "name" (name.crt, name.key) signed by the CA given. */
static void make_leaf(const char *name, X509 *ca, EVP_PKEY *ca_key,
                      long from, long to, const char *san, const char *pass)
{
    char file[64];
    EVP_PKEY *key = new_key();
    X509 *cert = make_cert(key, name, ca, ca_key, false, from, to, san);

    snprintf(file, sizeof(file), "%s.crt", name);
    write_cert(file, cert);
    snprintf(file, sizeof(file), "%s.key", name);
    write_key(file, key, pass);
    X509_free(cert);
    EVP_PKEY_free(key);
}

static int setup_certs(void **state)
{
    const long day = 24 * 3600;
    EVP_PKEY *ca_key = new_key(), *ca2_key = new_key();
    X509 *ca = make_cert(ca_key, "Test CA", NULL, NULL, true, -day, 30 * day,
                         NULL);
    X509 *ca2 = make_cert(ca2_key, "Other CA", NULL, NULL, true, -day,
                          30 * day, NULL);
    const char *san = "IP:127.0.0.1,DNS:localhost";

    snprintf(dir, sizeof(dir), "/tmp/ringslot-tls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_cert("ca.crt", ca);
    write_cert("ca2.crt", ca2);
    make_leaf("server", ca, ca_key, -day, 30 * day, san, NULL);
    make_leaf("server-enc", ca, ca_key, -day, 30 * day, san, KEY_PASS);
    make_leaf("client", ca, ca_key, -day, 30 * day, NULL, NULL);
    make_leaf("expired", ca, ca_key, -2 * day, -day, NULL, NULL);
    make_leaf("other", ca2, ca2_key, -day, 30 * day, NULL, NULL);
    make_leaf("server2", ca2, ca2_key, -day, 30 * day, san, NULL);
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ca2_key);
    return 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    return remove(p);
}

static int teardown_certs(void **state)
{
    return nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- contexts ----------------------------------------------------------- */

static struct tls_options server_opts(void)
{
    return (struct tls_options){
        .server = true, .cert_file = path("server.crt"),
        .key_file = path("server.key"), .ca_file = path("ca.crt"),
        .auth_clients = TLS_AUTH_CLIENTS_YES, .session_caching = true,
        .session_cache_size = 100, .session_cache_timeout = 300,
    };
}

/* A client with the certificate "name" (NULL: none), trusting ca_file. */
static struct tls_options client_opts(const char *name, const char *ca_file)
{
    static char cert[8][256], key[8][256];
    static int next;
    struct tls_options o = {
        .ca_file = path(ca_file), .session_caching = true,
        .check_host = true,
    };

    if (name != NULL) {
        int i = next++ % 8;
        snprintf(cert[i], 256, "%s/%s.crt", dir, name);
        snprintf(key[i], 256, "%s/%s.key", dir, name);
        o.cert_file = cert[i];
        o.key_file = key[i];
    }
    return o;
}

static struct tls_ctx *ctx_of(const struct tls_options *o)
{
    char err[256];
    struct tls_ctx *ctx = tls_ctx_new(o, err, sizeof(err));

    if (ctx == NULL)
        fail_msg("tls_ctx_new: %s", err);
    return ctx;
}

/* ---- pumping ------------------------------------------------------------ */

struct sink {
    unsigned char *data;
    size_t len, cap;
    bool eof;      /* TLS_EOF seen */
    bool error;    /* TLS_ERROR seen */
};

static void sink_free(struct sink *s)
{
    free(s->data);
    memset(s, 0, sizeof(*s));
}

/* Read all the plaintext there is into s. */
static void drain(struct tls_conn *c, struct sink *s)
{
    for (;;) {
        if (s->cap - s->len < 4096) {
            s->cap = s->cap * 2 + 8192;
            s->data = realloc(s->data, s->cap);
            assert_non_null(s->data);
        }
        ssize_t n = tls_conn_read(c, s->data + s->len, s->cap - s->len);
        if (n > 0) {
            s->len += (size_t)n;
            continue;
        }
        s->eof |= n == TLS_EOF;
        s->error |= n == TLS_ERROR;
        return;
    }
}

static unsigned seed = 12345;

/* 1..max, from the test's own generator (reproducible). */
static size_t rnd(size_t max)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % max + 1;
}

/* Move from's output into to's input in pieces of `chunk` bytes (0: random
 * sizes 1..600). Returns the bytes moved. */
static size_t move(struct tls_conn *from, struct tls_conn *to, size_t chunk)
{
    unsigned char buf[4096];
    size_t total = 0, n;

    for (;;) {
        size_t want = chunk != 0 ? chunk : rnd(600);
        n = tls_conn_output(from, buf, want < sizeof(buf) ? want : sizeof(buf));
        if (n == 0)
            return total;
        tls_conn_feed(to, buf, n);
        total += n;
    }
}

/* Exchange until nothing moves; plaintext goes to the sinks. */
static void pump(struct tls_conn *a, struct tls_conn *b, size_t chunk,
                 struct sink *sa, struct sink *sb)
{
    struct sink tmp_a = { 0 }, tmp_b = { 0 };
    size_t moved;

    if (sa == NULL)
        sa = &tmp_a;
    if (sb == NULL)
        sb = &tmp_b;
    do {
        moved = move(a, b, chunk) + move(b, a, chunk);
        drain(a, sa);
        drain(b, sb);
        moved += tls_conn_output_pending(a) + tls_conn_output_pending(b);
    } while (moved > 0);
    sink_free(&tmp_a);
    sink_free(&tmp_b);
}

struct pair {
    struct tls_ctx *sctx, *cctx;
    struct tls_conn *s, *c;
};

static void pair_open(struct pair *p, const struct tls_options *so,
                      const struct tls_options *co, const char *host, int port)
{
    p->sctx = ctx_of(so);
    p->cctx = ctx_of(co);
    p->s = tls_conn_accept(p->sctx, 0);
    p->c = tls_conn_connect(p->cctx, host, port, 0);
    assert_non_null(p->s);
    assert_non_null(p->c);
}

static void pair_close(struct pair *p)
{
    tls_conn_free(p->s);
    tls_conn_free(p->c);
    tls_ctx_unref(p->sctx);
    tls_ctx_unref(p->cctx);
}

/* Write all of msg (in pieces of at most `piece`, 0 = random) from one side
 * and pump after each piece. */
static void send_all(struct tls_conn *from, struct tls_conn *to,
                     const unsigned char *msg, size_t len, size_t piece,
                     struct sink *got)
{
    size_t off = 0;

    while (off < len) {
        size_t want = piece != 0 ? piece : rnd(3000);
        if (want > len - off)
            want = len - off;
        ssize_t n = tls_conn_write(from, msg + off, want);
        assert_true(n > 0);
        off += (size_t)n;
        pump(from, to, piece, NULL, got);
    }
}

/* ---- tests -------------------------------------------------------------- */

static void test_handshake_and_data(void **state)
{
    struct tls_options so = server_opts(), co = client_opts("client", "ca.crt");
    struct pair p;
    struct sink s = { 0 }, c = { 0 };

    pair_open(&p, &so, &co, "127.0.0.1", 7000);
    assert_int_equal(tls_conn_state(p.s), TLS_HANDSHAKING);
    assert_true(tls_conn_output_pending(p.c) > 0); /* ClientHello */
    /* plaintext waits for the handshake */
    assert_int_equal(tls_conn_write(p.c, "x", 1), TLS_AGAIN);
    pump(p.s, p.c, 0, &s, &c);
    assert_int_equal(tls_conn_state(p.s), TLS_OPEN);
    assert_int_equal(tls_conn_state(p.c), TLS_OPEN);
    assert_string_equal(tls_conn_version(p.s), "TLSv1.3");
    assert_string_equal(tls_conn_version(p.c), "TLSv1.3");
    assert_true(strlen(tls_conn_cipher(p.c)) > 0);
    assert_false(tls_conn_resumed(p.c));
    assert_int_equal(tls_conn_failure(p.c), TLS_FAIL_NONE);

    send_all(p.c, p.s, (const unsigned char *)"*1\r\n$4\r\nPING\r\n", 14, 14,
             &s);
    assert_int_equal(s.len, 14);
    assert_memory_equal(s.data, "*1\r\n$4\r\nPING\r\n", 14);
    send_all(p.s, p.c, (const unsigned char *)"+PONG\r\n", 7, 7, &c);
    assert_int_equal(c.len, 7);
    assert_memory_equal(c.data, "+PONG\r\n", 7);
    assert_ptr_equal(tls_conn_ctx(p.c), p.cctx);
    sink_free(&s);
    sink_free(&c);
    pair_close(&p);
}

/* Every way of cutting the stream: fixed chunks from 1 byte up, and random
 * sizes from several seeds, for the handshake and for the data. */
static void test_split_points(void **state)
{
    static const size_t chunks[] = { 1, 2, 3, 5, 7, 13, 64, 100, 517, 0 };
    unsigned char msg[5000];

    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)(i * 31 + 7);
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        for (unsigned s0 = 1; s0 <= (chunks[k] == 0 ? 5u : 1u); s0++) {
            struct tls_options so = server_opts();
            struct tls_options co = client_opts("client", "ca.crt");
            struct pair p;
            struct sink s = { 0 }, c = { 0 };

            seed = s0;
            pair_open(&p, &so, &co, "127.0.0.1", 7000);
            pump(p.s, p.c, chunks[k], NULL, NULL);
            assert_int_equal(tls_conn_state(p.s), TLS_OPEN);
            assert_int_equal(tls_conn_state(p.c), TLS_OPEN);
            send_all(p.c, p.s, msg, sizeof(msg), chunks[k], &s);
            send_all(p.s, p.c, msg, sizeof(msg), chunks[k], &c);
            assert_int_equal(s.len, sizeof(msg));
            assert_int_equal(c.len, sizeof(msg));
            assert_memory_equal(s.data, msg, sizeof(msg));
            assert_memory_equal(c.data, msg, sizeof(msg));
            sink_free(&s);
            sink_free(&c);
            pair_close(&p);
        }
    }
}

/* 8 MB each way; tls_conn_write takes at most TLS_WRITE_MAX a call. */
static void test_large_transfer(void **state)
{
    const size_t len = 8u << 20;
    unsigned char *msg = malloc(len);
    struct tls_options so = server_opts(), co = client_opts("client", "ca.crt");
    struct pair p;
    struct sink s = { 0 }, c = { 0 };
    size_t off = 0;

    assert_non_null(msg);
    for (size_t i = 0; i < len; i++)
        msg[i] = (unsigned char)(i ^ (i >> 11));
    pair_open(&p, &so, &co, "127.0.0.1", 7000);
    pump(p.s, p.c, 0, NULL, NULL);
    while (off < len) { /* both ways at once */
        ssize_t a = tls_conn_write(p.c, msg + off, len - off);
        ssize_t b = tls_conn_write(p.s, msg + off, len - off);
        assert_int_equal(a, b);
        assert_true(a > 0 && a <= TLS_WRITE_MAX);
        assert_true(tls_conn_output_pending(p.c) < TLS_WRITE_MAX + 4096);
        off += (size_t)a;
        pump(p.s, p.c, 16384, &s, &c);
    }
    assert_int_equal(s.len, len);
    assert_int_equal(c.len, len);
    assert_memory_equal(s.data, msg, len);
    assert_memory_equal(c.data, msg, len);
    sink_free(&s);
    sink_free(&c);
    pair_close(&p);
    free(msg);
}

/* One connection to host:port on cctx against sctx: pumped, then closed.
 * Returns whether the client's session was resumed. */
static bool connect_once(struct tls_ctx *sctx, struct tls_ctx *cctx,
                         const char *host, int port)
{
    struct tls_conn *s = tls_conn_accept(sctx, 0);
    struct tls_conn *c = tls_conn_connect(cctx, host, port, 0);
    bool resumed;

    pump(s, c, 0, NULL, NULL); /* the client reads the tickets too */
    assert_int_equal(tls_conn_state(s), TLS_OPEN);
    assert_int_equal(tls_conn_state(c), TLS_OPEN);
    resumed = tls_conn_resumed(c);
    assert_int_equal(resumed, tls_conn_resumed(s));
    tls_conn_close(c);
    pump(s, c, 0, NULL, NULL);
    tls_conn_free(s);
    tls_conn_free(c);
    return resumed;
}

static void resumption_with(const char *protocols, bool server_cache,
                            bool expect)
{
    struct tls_options so = server_opts(), co = client_opts("client", "ca.crt");
    struct tls_ctx *sctx, *cctx;

    so.protocols = co.protocols = protocols;
    so.session_caching = server_cache;
    sctx = ctx_of(&so);
    cctx = ctx_of(&co);
    assert_false(connect_once(sctx, cctx, "127.0.0.1", 7000));
    assert_int_equal(connect_once(sctx, cctx, "127.0.0.1", 7000), expect);
    assert_int_equal(connect_once(sctx, cctx, "127.0.0.1", 7000), expect);
    /* another node: no session of its own yet */
    assert_false(connect_once(sctx, cctx, "127.0.0.1", 7001));
    assert_int_equal(connect_once(sctx, cctx, "127.0.0.1", 7001), expect);
    tls_ctx_unref(sctx);
    tls_ctx_unref(cctx);
}

static void test_resumption(void **state)
{
    resumption_with(NULL, true, true);          /* TLS 1.3 tickets */
    resumption_with("TLSv1.2", true, true);     /* TLS 1.2 */
    resumption_with(NULL, false, false);        /* tls-session-caching no */
    resumption_with("TLSv1.2", false, false);
}

/* The handshake of a client (certificate `name`, trusting ca_file) with a
 * server of so: both sides' states and reasons. */
struct outcome {
    enum tls_state s_state, c_state;
    enum tls_fail s_fail, c_fail;
};

static struct outcome handshake_with(const struct tls_options *so,
                                     const struct tls_options *co,
                                     const char *host)
{
    struct pair p;
    struct outcome o;

    pair_open(&p, so, co, host, 7000);
    pump(p.s, p.c, 0, NULL, NULL);
    o = (struct outcome){ tls_conn_state(p.s), tls_conn_state(p.c),
                          tls_conn_failure(p.s), tls_conn_failure(p.c) };
    if (o.s_state == TLS_FAILED)
        assert_true(strlen(tls_conn_error(p.s)) > 0);
    pair_close(&p);
    return o;
}

static void assert_refused(const char *client, const char *protocols,
                           enum tls_fail want)
{
    struct tls_options so = server_opts(), co = client_opts(client, "ca.crt");
    struct outcome o;

    so.protocols = co.protocols = protocols;
    o = handshake_with(&so, &co, "127.0.0.1");
    assert_int_equal(o.s_state, TLS_FAILED);
    if (o.s_fail != want)
        fail_msg("server: %s, wanted %s", tls_fail_name(o.s_fail),
                 tls_fail_name(want));
    /* the client learns it from the server's alert */
    assert_int_equal(o.c_state, TLS_FAILED);
    if (o.c_fail != want && !(protocols != NULL && want ==
                              TLS_FAIL_NO_CLIENT_CERT))
        fail_msg("client: %s, wanted %s", tls_fail_name(o.c_fail),
                 tls_fail_name(want));
}

static void test_mutual_tls_refused(void **state)
{
    assert_refused(NULL, NULL, TLS_FAIL_NO_CLIENT_CERT);
    assert_refused("other", NULL, TLS_FAIL_UNKNOWN_CA);
    assert_refused("expired", NULL, TLS_FAIL_EXPIRED);
    /* TLS 1.2 has no certificate_required alert: the client sees a
     * handshake failure (only the server's reason is exact) */
    assert_refused(NULL, "TLSv1.2", TLS_FAIL_NO_CLIENT_CERT);
    assert_refused("other", "TLSv1.2", TLS_FAIL_UNKNOWN_CA);
    assert_refused("expired", "TLSv1.2", TLS_FAIL_EXPIRED);
}

static void test_auth_clients_modes(void **state)
{
    struct tls_options so = server_opts(), co = client_opts(NULL, "ca.crt");
    struct outcome o;

    so.auth_clients = TLS_AUTH_CLIENTS_OPTIONAL;
    o = handshake_with(&so, &co, "127.0.0.1");
    assert_int_equal(o.s_state, TLS_OPEN);
    assert_int_equal(o.c_state, TLS_OPEN);
    co = client_opts("other", "ca.crt"); /* sent, so verified */
    o = handshake_with(&so, &co, "127.0.0.1");
    assert_int_equal(o.s_state, TLS_FAILED);
    assert_int_equal(o.s_fail, TLS_FAIL_UNKNOWN_CA);

    so.auth_clients = TLS_AUTH_CLIENTS_NO;
    so.ca_file = NULL;
    o = handshake_with(&so, &co, "127.0.0.1"); /* not asked for */
    assert_int_equal(o.s_state, TLS_OPEN);
    assert_int_equal(o.c_state, TLS_OPEN);
}

/* The client verifies the server: its CA, its name, unless insecure. */
static void test_server_verified(void **state)
{
    struct tls_options so = server_opts(), co = client_opts("client", "ca2.crt");
    struct outcome o;

    o = handshake_with(&so, &co, "127.0.0.1");
    assert_int_equal(o.c_state, TLS_FAILED);
    assert_int_equal(o.c_fail, TLS_FAIL_UNKNOWN_CA);
    assert_int_equal(o.s_fail, TLS_FAIL_UNKNOWN_CA); /* from the alert */

    co = client_opts("client", "ca.crt");
    o = handshake_with(&so, &co, "127.0.0.2"); /* not in the SAN */
    assert_int_equal(o.c_state, TLS_FAILED);
    assert_int_equal(o.c_fail, TLS_FAIL_HOSTNAME);
    o = handshake_with(&so, &co, "localhost"); /* DNS SAN, and SNI */
    assert_int_equal(o.c_state, TLS_OPEN);
    o = handshake_with(&so, &co, "otherhost");
    assert_int_equal(o.c_fail, TLS_FAIL_HOSTNAME);
    co.check_host = false;
    o = handshake_with(&so, &co, "127.0.0.2");
    assert_int_equal(o.c_state, TLS_OPEN);

    co = client_opts("client", "ca2.crt");
    co.insecure = true;
    o = handshake_with(&so, &co, "127.0.0.2");
    assert_int_equal(o.c_state, TLS_OPEN);
    assert_int_equal(o.s_state, TLS_OPEN);
}

static void assert_plaintext(const char *bytes)
{
    struct tls_options so = server_opts();
    struct tls_ctx *sctx = ctx_of(&so);
    struct tls_conn *s = tls_conn_accept(sctx, 0);
    char buf[64];

    assert_int_equal(tls_conn_feed(s, bytes, strlen(bytes)), TLS_FAILED);
    assert_int_equal(tls_conn_failure(s), TLS_FAIL_PLAINTEXT);
    assert_int_equal(tls_conn_read(s, buf, sizeof(buf)), TLS_ERROR);
    assert_int_equal(tls_conn_write(s, "x", 1), TLS_ERROR);
    /* more input changes nothing */
    assert_int_equal(tls_conn_feed(s, bytes, strlen(bytes)), TLS_FAILED);
    tls_conn_close(s);
    assert_int_equal(tls_conn_state(s), TLS_FAILED);
    tls_conn_free(s);
    tls_ctx_unref(sctx);
}

static void test_plaintext_on_tls_port(void **state)
{
    assert_plaintext("PING\r\n");
    assert_plaintext("*1\r\n$4\r\nPING\r\n");
    assert_plaintext("GET / HTTP/1.1\r\n\r\n");
}

static void test_protocol_mismatch(void **state)
{
    struct tls_options so = server_opts(), co = client_opts("client", "ca.crt");
    struct outcome o;

    so.protocols = "TLSv1.3";
    co.protocols = "TLSv1.2";
    o = handshake_with(&so, &co, "127.0.0.1");
    assert_int_equal(o.s_state, TLS_FAILED);
    assert_int_equal(o.s_fail, TLS_FAIL_PROTOCOL);
    assert_int_equal(o.c_state, TLS_FAILED);
    assert_int_equal(o.c_fail, TLS_FAIL_PROTOCOL);

    so.protocols = "tlsv1.2"; /* case-insensitive, as Redis */
    o = handshake_with(&so, &co, "127.0.0.1");
    assert_int_equal(o.s_state, TLS_OPEN);
}

static void test_close_notify(void **state)
{
    struct tls_options so = server_opts(), co = client_opts("client", "ca.crt");
    struct pair p;
    struct sink s = { 0 };

    pair_open(&p, &so, &co, "127.0.0.1", 7000);
    pump(p.s, p.c, 0, NULL, NULL);
    assert_int_equal(tls_conn_write(p.c, "last", 4), 4);
    tls_conn_close(p.c);
    assert_int_equal(tls_conn_state(p.c), TLS_CLOSING);
    assert_true(tls_conn_output_pending(p.c) > 0); /* data + close_notify */
    assert_int_equal(tls_conn_write(p.c, "more", 4), TLS_ERROR);
    pump(p.s, p.c, 0, &s, NULL);
    assert_int_equal(s.len, 4);
    assert_memory_equal(s.data, "last", 4);
    assert_true(s.eof);
    assert_false(s.error);
    assert_int_equal(tls_conn_state(p.s), TLS_CLOSING);
    assert_int_equal(tls_conn_failure(p.s), TLS_FAIL_NONE);
    /* the server answers with its own close_notify, once */
    assert_int_equal(tls_conn_output_pending(p.s), 0);
    tls_conn_close(p.s);
    size_t answer = tls_conn_output_pending(p.s);
    assert_true(answer > 0);
    tls_conn_close(p.s);
    assert_int_equal(tls_conn_output_pending(p.s), answer);
    sink_free(&s);
    pair_close(&p);

    /* closing during the handshake: CLOSING, no close_notify */
    pair_open(&p, &so, &co, "127.0.0.1", 7000);
    tls_conn_close(p.s);
    assert_int_equal(tls_conn_state(p.s), TLS_CLOSING);
    assert_int_equal(tls_conn_output_pending(p.s), 0);
    pair_close(&p);
}

static void test_handshake_deadline(void **state)
{
    struct tls_options so = server_opts();
    struct tls_ctx *sctx = ctx_of(&so);
    struct tls_conn *s = tls_conn_accept(sctx, 1000);

    assert_false(tls_conn_handshake_expired(s, 1000, 500));
    assert_false(tls_conn_handshake_expired(s, 1499, 500));
    assert_true(tls_conn_handshake_expired(s, 1500, 500));
    tls_conn_feed(s, "\x16\x03\x01", 3); /* a record header, then stall */
    assert_int_equal(tls_conn_state(s), TLS_HANDSHAKING);
    tls_conn_timeout(s);
    assert_int_equal(tls_conn_state(s), TLS_FAILED);
    assert_int_equal(tls_conn_failure(s), TLS_FAIL_TIMEOUT);
    assert_string_equal(tls_fail_name(TLS_FAIL_TIMEOUT), "timeout");
    assert_false(tls_conn_handshake_expired(s, 9999, 500)); /* not any more */
    tls_conn_free(s);
    tls_ctx_unref(sctx);
}

static void assert_ctx_error(const struct tls_options *o, const char *want)
{
    char err[256] = "";

    assert_null(tls_ctx_new(o, err, sizeof(err)));
    if (strstr(err, want) == NULL)
        fail_msg("error '%s', wanted '%s'", err, want);
}

static void test_ctx_errors(void **state)
{
    struct tls_options o = server_opts();
    struct tls_ctx *ctx;

    o.cert_file = path("missing.crt");
    assert_ctx_error(&o, "tls-cert-file '");
    assert_ctx_error(&o, "missing.crt");
    o = server_opts();
    o.key_file = path("client.key"); /* another certificate's key */
    assert_ctx_error(&o, "does not match");
    o = server_opts();
    o.key_file = NULL;
    assert_ctx_error(&o, "tls-cert-file and tls-key-file go together");
    o = server_opts();
    o.ciphers = "NO-SUCH-CIPHER";
    assert_ctx_error(&o, "tls-ciphers 'NO-SUCH-CIPHER'");
    o = server_opts();
    o.ciphersuites = "TLS_NOPE";
    assert_ctx_error(&o, "tls-ciphersuites");
    o = server_opts();
    o.protocols = "SSLv3";
    assert_ctx_error(&o, "unknown protocol 'SSLv3'");
    o = server_opts();
    o.ca_file = path("missing-ca.crt");
    assert_ctx_error(&o, "missing-ca.crt");

    /* the passphrase-protected key: wrong, then right */
    o = server_opts();
    o.cert_file = path("server-enc.crt");
    o.key_file = path("server-enc.key");
    assert_ctx_error(&o, "tls-key-file '");
    o.key_pass = "wrong";
    assert_ctx_error(&o, "tls-key-file '");
    o.key_pass = KEY_PASS;
    ctx = ctx_of(&o);
    tls_ctx_unref(ctx);

    /* the CAs of a directory */
    o = server_opts();
    o.ca_file = NULL;
    o.ca_dir = dir;
    ctx = ctx_of(&o);
    tls_ctx_unref(ctx);
}

/* A reload swaps the certificate for new connections; an old connection
 * goes on with the old context; a failed reload keeps the current one. */
static void test_reload(void **state)
{
    struct tls_options so = server_opts(), co1 = client_opts("client", "ca.crt");
    struct tls_options co2 = client_opts("client", "ca2.crt");
    struct tls_ctx *c1 = ctx_of(&co1), *c2 = ctx_of(&co2), *cur;
    struct tls_slot slot;
    struct tls_conn *old_s, *old_c, *s, *c;
    struct sink got = { 0 };
    char err[256];

    tls_slot_init(&slot, ctx_of(&so));
    cur = tls_slot_get(&slot);
    old_s = tls_conn_accept(cur, 0);
    tls_ctx_unref(cur); /* the connection holds its own reference */
    old_c = tls_conn_connect(c1, "127.0.0.1", 7000, 0);
    pump(old_s, old_c, 0, NULL, NULL);
    assert_int_equal(tls_conn_state(old_s), TLS_OPEN);

    /* a reload that fails: the error, and the old ctx stays */
    so.cert_file = path("nope.crt");
    assert_int_equal(tls_slot_reload(&slot, &so, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nope.crt"));
    assert_int_equal(slot.generation, 0);

    /* the server now presents server2 (from ca2) */
    so.cert_file = path("server2.crt");
    so.key_file = path("server2.key");
    assert_int_equal(tls_slot_reload(&slot, &so, err, sizeof(err)), 0);
    assert_int_equal(slot.generation, 1);

    cur = tls_slot_get(&slot);
    assert_ptr_not_equal(cur, tls_conn_ctx(old_s));
    s = tls_conn_accept(cur, 0);
    c = tls_conn_connect(c2, "127.0.0.1", 7000, 0);
    pump(s, c, 0, NULL, NULL);
    assert_int_equal(tls_conn_state(c), TLS_OPEN);
    tls_conn_free(s);
    tls_conn_free(c);
    s = tls_conn_accept(cur, 0); /* a client trusting only ca: refused */
    c = tls_conn_connect(c1, "127.0.0.1", 7001, 0);
    pump(s, c, 0, NULL, NULL);
    assert_int_equal(tls_conn_failure(c), TLS_FAIL_UNKNOWN_CA);
    tls_conn_free(s);
    tls_conn_free(c);
    tls_ctx_unref(cur);

    /* the old connection still works, both ways */
    send_all(old_c, old_s, (const unsigned char *)"GET k\r\n", 7, 0, &got);
    assert_int_equal(got.len, 7);
    sink_free(&got);
    send_all(old_s, old_c, (const unsigned char *)"$1\r\nv\r\n", 7, 0, &got);
    assert_int_equal(got.len, 7);
    sink_free(&got);

    tls_slot_destroy(&slot);   /* the old ctx goes with old_s */
    tls_conn_free(old_s);
    tls_conn_free(old_c);
    tls_ctx_unref(c1);
    tls_ctx_unref(c2);
}

static void test_options_from_config(void **state)
{
    struct config cfg;
    struct tls_options o;

    config_defaults(&cfg);
    strcpy(cfg.tls_cert_file, "/c.crt");
    strcpy(cfg.tls_key_file, "/c.key");
    strcpy(cfg.tls_protocols, "TLSv1.3");
    cfg.tls_auth_clients = CONFIG_TLS_AUTH_OPTIONAL;
    tls_options_server(&cfg, &o);
    assert_true(o.server);
    assert_string_equal(o.cert_file, "/c.crt");
    assert_string_equal(o.protocols, "TLSv1.3");
    assert_null(o.key_pass);
    assert_null(o.ca_file);
    assert_int_equal(o.auth_clients, TLS_AUTH_CLIENTS_OPTIONAL);
    assert_true(o.session_caching);
    assert_int_equal(o.session_cache_size, 20480);
    assert_int_equal(o.session_cache_timeout, 300);

    cfg.tls = true;
    strcpy(cfg.tls_cacert, "/ca.crt");
    tls_options_backend(&cfg, &o);
    assert_false(o.server);
    assert_string_equal(o.ca_file, "/ca.crt");
    assert_null(o.cert_file);
    assert_true(o.check_host);
    assert_false(o.insecure);
    cfg.tls_insecure = true;
    tls_options_backend(&cfg, &o);
    assert_true(o.insecure);

    tls_options_cluster_client(&cfg, &o);
    assert_false(o.server);
    assert_string_equal(o.cert_file, "/c.crt");
    assert_string_equal(o.key_file, "/c.key");
    for (int f = 0; f <= TLS_FAIL_COUNT; f++) /* one past: "other" */
        assert_non_null(tls_fail_name((enum tls_fail)f));
    assert_string_equal(tls_fail_name(TLS_FAIL_NO_CLIENT_CERT),
                        "no_client_cert");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_split_points),
        cmocka_unit_test(test_large_transfer),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_mutual_tls_refused),
        cmocka_unit_test(test_auth_clients_modes),
        cmocka_unit_test(test_server_verified),
        cmocka_unit_test(test_plaintext_on_tls_port),
        cmocka_unit_test(test_protocol_mismatch),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_handshake_deadline),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_options_from_config),
    };
    return cmocka_run_group_tests(tests, setup_certs, teardown_certs);
}
