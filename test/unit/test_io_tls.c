/*
 * test_io_tls.c — core/io's TLS filter (tls_filter.c) on the real backends
 * (epoll always, io_uring when the kernel lets us), over socketpairs. The
 * test is the owner of the filtered fd: it arms io_recv / io_read / io_send
 * / io_connect and handles their completions as a client or link would;
 * the peer is a plain tls_conn driven by hand on the other end, in the same
 * thread, non-blocking.
 *
 *   echo        handshake, then messages of random sizes (up to 300 KB)
 *               both ways, byte for byte, through io_recv (filter buffers)
 *   read        the same through io_read into the owner's buffer
 *   pause       the owner cancels its recv (backpressure) while the peer
 *               keeps sending, then re-arms: nothing lost or reordered
 *   deadline    a silent peer: the owner's recv ends with -ETIMEDOUT after
 *               the handshake timeout, counted as "timeout"
 *   plaintext   RESP instead of a ClientHello: -EPROTO, "plaintext"
 *   connect     io_tls_connect + io_connect: completes after the handshake;
 *               a node that never answers the handshake: -ETIMEDOUT after
 *               io_connect's timeout
 *   close       io_shutdown + io_close with the filter's raw ops in
 *               flight, then io_destroy: nothing leaks (ASan)
 *
 * The certificate is made at setup with OpenSSL's API (EC P-256,
 * self-signed); the peer does not verify it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "../../core/io/io.h"

#define TAG_RECV 1
#define TAG_SEND 2
#define TAG_CONN 3

static char dir[64];
static char cert_path[128], key_path[128];
static struct tls_ctx *server_ctx, *client_ctx;

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ringslot-iotls-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cert_path, sizeof cert_path, "%s/s.crt", dir);
    snprintf(key_path, sizeof key_path, "%s/s.key", dir);
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    assert_non_null(key);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1,
                               0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, name);
    X509_NAME_free(name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    FILE *f = fopen(cert_path, "w");
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    f = fopen(key_path, "w");
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);

    char err[256];
    struct tls_options so = {.server = true, .cert_file = cert_path, .key_file = key_path,
                             .auth_clients = TLS_AUTH_CLIENTS_NO};
    server_ctx = tls_ctx_new(&so, err, sizeof err);
    assert_non_null(server_ctx);
    struct tls_options co = {.insecure = true};
    client_ctx = tls_ctx_new(&co, err, sizeof err);
    assert_non_null(client_ctx);
    return 0;
}

static int teardown(void **state)
{
    tls_ctx_unref(server_ctx);
    tls_ctx_unref(client_ctx);
    unlink(cert_path);
    unlink(key_path);
    rmdir(dir);
    return 0;
}

/* ---- the harness ---------------------------------------------------------- */

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

struct harness {
    struct io *io;
    struct io_tls_stats stats;
    int fd;                    /* the filtered end */
    int peer_fd;               /* the hand-driven end */
    struct tls_conn *peer;
    struct io_op recv_op, send_op, conn_op;
    bool recv_armed, send_armed, use_read, paused;
    int recv_end;              /* the final result of the owner's recv */
    bool recv_ended;
    char rbuf[7000];           /* io_read's buffer */
    struct buf got;            /* plaintext the owner received */
    struct buf to_send;        /* plaintext the owner still sends */
    size_t send_off, sending;
    struct buf peer_got;       /* plaintext the peer received */
    struct buf peer_out;       /* ciphertext the peer's socket did not take */
};

static unsigned seed = 4242;

static size_t rnd(size_t max)
{
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % max;
}

static bool open_io(struct harness *h, enum io_backend kind)
{
    char why[160];
    memset(h, 0, sizeof *h);
    if (io_create(kind, &h->io, why, sizeof why) < 0)
        return false;
    assert_int_equal(io_start(h->io), 0);
    io_tls_setup(h->io, &h->stats, 300, NULL, NULL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    h->fd = sv[0];
    h->peer_fd = sv[1];
    fcntl(h->peer_fd, F_SETFL, O_NONBLOCK);
    h->recv_op.tag = TAG_RECV;
    h->send_op.tag = TAG_SEND;
    h->conn_op.tag = TAG_CONN;
    return true;
}

static void arm_recv(struct harness *h)
{
    if (h->recv_armed || h->recv_ended || h->paused)
        return;
    if (h->use_read)
        io_read(h->io, &h->recv_op, h->fd, h->rbuf, sizeof h->rbuf);
    else
        io_recv(h->io, &h->recv_op, h->fd);
    h->recv_armed = true;
}

static void arm_send(struct harness *h)
{
    if (h->send_armed || h->send_off == h->to_send.len)
        return;
    /* two iovecs, as a client's chain of chunks */
    size_t left = h->to_send.len - h->send_off, first = left / 2;
    struct iovec iov[2] = {{h->to_send.p + h->send_off, first},
                           {h->to_send.p + h->send_off + first, left - first}};
    io_send(h->io, &h->send_op, h->fd, first ? iov : iov + 1, first ? 2 : 1);
    h->send_armed = true;
}

static void handle(struct harness *h, const struct io_event *ev)
{
    if (ev->op->tag == TAG_RECV) {
        if (!(ev->flags & IO_EV_MORE))
            h->recv_armed = false;
        if (ev->res > 0) {
            buf_add(&h->got, h->use_read ? h->rbuf : ev->data, (size_t)ev->res);
            if (ev->flags & IO_EV_BUF)
                io_buf_return(h->io, ev->buf);
        } else if (ev->res == -ECANCELED && h->paused) {
            /* backpressure: not an end */
        } else if (ev->res != -ENOBUFS) {
            h->recv_ended = true;
            h->recv_end = ev->res;
        }
        arm_recv(h);
    } else if (ev->op->tag == TAG_SEND) {
        h->send_armed = false;
        assert_true(ev->res > 0);
        h->send_off += (size_t)ev->res;
        arm_send(h);
    } else {
        assert_int_equal(ev->res, 0);
    }
}

/* The peer: ciphertext out (as far as the socket takes it), ciphertext in,
 * plaintext read. */
static void peer_pump(struct harness *h)
{
    char b[16384];
    size_t n;
    while ((n = tls_conn_output(h->peer, b, sizeof b)) > 0)
        buf_add(&h->peer_out, b, n);
    while (h->peer_out.len) {
        ssize_t w = send(h->peer_fd, h->peer_out.p, h->peer_out.len, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        memmove(h->peer_out.p, h->peer_out.p + w, h->peer_out.len - (size_t)w);
        h->peer_out.len -= (size_t)w;
    }
    ssize_t r;
    while ((r = recv(h->peer_fd, b, sizeof b, 0)) > 0)
        tls_conn_feed(h->peer, b, (size_t)r);
    ssize_t p;
    while ((p = tls_conn_read(h->peer, b, sizeof b)) > 0)
        buf_add(&h->peer_got, b, (size_t)p);
    while ((n = tls_conn_output(h->peer, b, sizeof b)) > 0)
        buf_add(&h->peer_out, b, n);
}

static void step(struct harness *h)
{
    struct io_event ev[64];
    if (h->peer)
        peer_pump(h);
    int n = io_wait(h->io, ev, 64, 5);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++)
        handle(h, &ev[i]);
}

static void run_until(struct harness *h, bool (*done)(struct harness *), int max_steps)
{
    for (int i = 0; i < max_steps && !done(h); i++)
        step(h);
    assert_true(done(h));
}

static void peer_write(struct harness *h, const char *p, size_t len)
{
    while (len) {
        ssize_t n = tls_conn_write(h->peer, p, len);
        if (n == TLS_AGAIN) { /* still handshaking */
            step(h);
            continue;
        }
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
        peer_pump(h);
    }
}

/* Quiet down: shut, wait for every owner op, close, destroy. */
static void close_io(struct harness *h)
{
    io_shutdown(h->io, h->fd);
    for (int i = 0; i < 2000 && (h->recv_armed || h->send_armed); i++) {
        struct io_event ev[64];
        int n = io_wait(h->io, ev, 64, 5);
        for (int k = 0; k < n; k++) {
            if (ev[k].op->tag == TAG_RECV) {
                if (!(ev[k].flags & IO_EV_MORE))
                    h->recv_armed = false;
                if (ev[k].flags & IO_EV_BUF)
                    io_buf_return(h->io, ev[k].buf);
            } else if (ev[k].op->tag == TAG_SEND) {
                h->send_armed = false;
            }
        }
    }
    assert_false(h->recv_armed || h->send_armed);
    io_close(h->io, h->fd); /* raw ops may still be in flight: the filter waits */
    for (int i = 0; i < 20; i++) {
        struct io_event ev[64];
        assert_int_equal(io_wait(h->io, ev, 64, 2), 0); /* nothing for the owner */
    }
    io_destroy(h->io);
    tls_conn_free(h->peer);
    close(h->peer_fd);
    free(h->got.p);
    free(h->to_send.p);
    free(h->peer_got.p);
    free(h->peer_out.p);
}

/* ---- the cases -------------------------------------------------------------- */

static struct buf expect_in, expect_out;

static bool all_in(struct harness *h)
{
    return h->got.len >= expect_in.len;
}

static bool all_out(struct harness *h)
{
    return h->peer_got.len >= expect_out.len && !h->send_armed;
}

static void echo_on(enum io_backend kind, bool use_read)
{
    struct harness h;
    if (!open_io(&h, kind)) {
        print_message("(%s backend unavailable: skipped)\n", io_backend_name(kind));
        return;
    }
    h.use_read = use_read;
    assert_int_equal(io_tls_accept(h.io, h.fd, server_ctx), 0);
    h.peer = tls_conn_connect(client_ctx, NULL, 0, 0);
    assert_non_null(h.peer);
    arm_recv(&h);
    for (int round = 0; round < 12; round++) {
        size_t n = 1 + rnd(round % 4 == 3 ? 300000 : 5000);
        char *in = malloc(n), *out = malloc(n);
        for (size_t i = 0; i < n; i++) {
            in[i] = (char)rnd(256);
            out[i] = (char)rnd(256);
        }
        buf_add(&expect_in, in, n);
        buf_add(&expect_out, out, n);
        peer_write(&h, in, n);
        buf_add(&h.to_send, out, n);
        arm_send(&h);
        run_until(&h, all_in, 20000);
        run_until(&h, all_out, 20000);
        free(in);
        free(out);
    }
    assert_int_equal(h.got.len, expect_in.len);
    assert_memory_equal(h.got.p, expect_in.p, expect_in.len);
    assert_int_equal(h.peer_got.len, expect_out.len);
    assert_memory_equal(h.peer_got.p, expect_out.p, expect_out.len);
    assert_int_equal(atomic_load(&h.stats.handshakes[IO_TLS_ACCEPTED]), 1);
    assert_false(h.recv_ended);
    close_io(&h);
    free(expect_in.p);
    free(expect_out.p);
    memset(&expect_in, 0, sizeof expect_in);
    memset(&expect_out, 0, sizeof expect_out);
}

static void test_echo(void **state)
{
    echo_on(IO_BACKEND_EPOLL, false);
    echo_on(IO_BACKEND_URING, false);
}

static void test_read(void **state)
{
    echo_on(IO_BACKEND_EPOLL, true);
    echo_on(IO_BACKEND_URING, true);
}

static void pause_on(enum io_backend kind)
{
    struct harness h;
    if (!open_io(&h, kind))
        return;
    assert_int_equal(io_tls_accept(h.io, h.fd, server_ctx), 0);
    h.peer = tls_conn_connect(client_ctx, NULL, 0, 0);
    arm_recv(&h);
    char chunk[3000];
    for (int i = 0; i < 60; i++) {
        for (size_t k = 0; k < sizeof chunk; k++)
            chunk[k] = (char)(i * 7 + k);
        buf_add(&expect_in, chunk, sizeof chunk);
        peer_write(&h, chunk, sizeof chunk);
        if (i % 10 == 3 && h.recv_armed) { /* backpressure */
            h.paused = true;
            io_cancel(h.io, &h.recv_op);
        }
        step(&h);
        if (i % 10 == 7 && h.paused) {
            h.paused = false;
            arm_recv(&h);
        }
    }
    h.paused = false;
    arm_recv(&h);
    run_until(&h, all_in, 20000);
    assert_int_equal(h.got.len, expect_in.len);
    assert_memory_equal(h.got.p, expect_in.p, expect_in.len);
    close_io(&h);
    free(expect_in.p);
    memset(&expect_in, 0, sizeof expect_in);
}

static void test_pause(void **state)
{
    pause_on(IO_BACKEND_EPOLL);
    pause_on(IO_BACKEND_URING);
}

static bool ended(struct harness *h)
{
    return h->recv_ended;
}

static void test_deadline_and_plaintext(void **state)
{
    enum io_backend kinds[] = {IO_BACKEND_EPOLL, IO_BACKEND_URING};
    for (int k = 0; k < 2; k++) {
        struct harness h;
        if (!open_io(&h, kinds[k]))
            continue;
        assert_int_equal(io_tls_accept(h.io, h.fd, server_ctx), 0);
        arm_recv(&h);
        run_until(&h, ended, 2000); /* 300 ms deadline; 5 ms steps */
        assert_int_equal(h.recv_end, -ETIMEDOUT);
        assert_int_equal(atomic_load(&h.stats.failures[IO_TLS_ACCEPTED][TLS_FAIL_TIMEOUT]), 1);
        close_io(&h);

        assert_true(open_io(&h, kinds[k]));
        assert_int_equal(io_tls_accept(h.io, h.fd, server_ctx), 0);
        arm_recv(&h);
        static const char resp[] = "*1\r\n$4\r\nPING\r\n";
        assert_int_equal(send(h.peer_fd, resp, sizeof resp - 1, 0), (ssize_t)sizeof resp - 1);
        run_until(&h, ended, 2000);
        assert_int_equal(h.recv_end, -EPROTO);
        assert_int_equal(
            atomic_load(&h.stats.failures[IO_TLS_ACCEPTED][TLS_FAIL_PLAINTEXT]), 1);
        close_io(&h);
    }
}

/* A listening socket on a free 127.0.0.1 port (non-blocking); sa gets
 * its address. */
static int loopback_listener(struct sockaddr_in *sa)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof *sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)sa, sizeof *sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    getsockname(lfd, (struct sockaddr *)sa, &sl);
    return lfd;
}

/* The client side: io_connect completes once the handshake did. */
static void test_connect(void **state)
{
    enum io_backend kinds[] = {IO_BACKEND_EPOLL, IO_BACKEND_URING};
    for (int k = 0; k < 2; k++) {
        struct harness h;
        if (!open_io(&h, kinds[k]))
            continue;
        /* a loopback listener; the peer is the accepted socket */
        struct sockaddr_in sa;
        int lfd = loopback_listener(&sa);
        close(h.fd);
        close(h.peer_fd);
        h.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(io_tls_connect(h.io, h.fd, client_ctx, "127.0.0.1",
                                        ntohs(sa.sin_port)), 0);
        io_connect(h.io, &h.conn_op, h.fd, (struct sockaddr *)&sa, sizeof sa, 1000);
        struct io_event ev[8];
        for (int i = 0; i < 50 && (h.peer_fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) < 0; i++)
            assert_int_equal(io_wait(h.io, ev, 8, 5), 0); /* not before the handshake */
        assert_true(h.peer_fd >= 0);
        close(lfd);
        h.peer = tls_conn_accept(server_ctx, 0);
        bool done = false;
        for (int i = 0; i < 2000 && !done; i++) {
            peer_pump(&h);
            int n = io_wait(h.io, ev, 8, 5);
            for (int e = 0; e < n; e++) {
                assert_int_equal(ev[e].op->tag, TAG_CONN);
                assert_int_equal(ev[e].res, 0);
                done = true;
            }
        }
        assert_true(done);
        for (int i = 0; i < 100 && tls_conn_state(h.peer) != TLS_OPEN; i++)
            step(&h); /* the client's Finished on its way */
        assert_int_equal(tls_conn_state(h.peer), TLS_OPEN);
        assert_int_equal(atomic_load(&h.stats.handshakes[IO_TLS_CONNECTED]), 1);
        /* and data both ways through io_read / io_send */
        h.use_read = true;
        arm_recv(&h);
        buf_add(&expect_in, "hello", 5);
        peer_write(&h, "hello", 5);
        run_until(&h, all_in, 2000);
        assert_memory_equal(h.got.p, "hello", 5);
        buf_add(&expect_out, "world", 5);
        buf_add(&h.to_send, "world", 5);
        arm_send(&h);
        run_until(&h, all_out, 2000);
        assert_memory_equal(h.peer_got.p, "world", 5);
        close_io(&h);
        free(expect_in.p);
        free(expect_out.p);
        memset(&expect_in, 0, sizeof expect_in);
        memset(&expect_out, 0, sizeof expect_out);
    }
}

/* A node that completes the TCP handshake (the backlog) and never speaks:
 * io_connect's timeout covers the TLS handshake too. */
static void test_connect_stalled(void **state)
{
    enum io_backend kinds[] = {IO_BACKEND_EPOLL, IO_BACKEND_URING};
    for (int k = 0; k < 2; k++) {
        struct harness h;
        if (!open_io(&h, kinds[k]))
            continue;
        struct sockaddr_in sa;
        int lfd = loopback_listener(&sa);
        close(h.fd);
        h.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(io_tls_connect(h.io, h.fd, client_ctx, "127.0.0.1",
                                        ntohs(sa.sin_port)), 0);
        io_connect(h.io, &h.conn_op, h.fd, (struct sockaddr *)&sa, sizeof sa, 200);
        struct io_event ev[8];
        int res = 1;
        for (int i = 0; i < 400 && res == 1; i++) { /* 5 ms steps: 2 s at most */
            int n = io_wait(h.io, ev, 8, 5);
            for (int e = 0; e < n; e++)
                res = ev[e].res;
        }
        assert_int_equal(res, -ETIMEDOUT);
        assert_int_equal(
            atomic_load(&h.stats.failures[IO_TLS_CONNECTED][TLS_FAIL_TIMEOUT]), 1);
        close_io(&h);
        close(lfd);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_read),
        cmocka_unit_test(test_pause),
        cmocka_unit_test(test_deadline_and_plaintext),
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_connect_stalled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
