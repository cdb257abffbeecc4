/*
 * test_io_fake.c — the fake io backend itself (core/io/io.h, last
 * section): deterministic from its seed, receives split but whole and in
 * order, partial sends that add up, reordering that keeps each op's own
 * order, connect rules, virtual timers, cancel, shutdown and injected
 * errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "../../core/io/io.h"

static struct io *fake(uint64_t seed)
{
    struct io *io;
    char why[64];
    assert_int_equal(io_create(IO_BACKEND_FAKE, &io, why, sizeof why), 0);
    assert_int_equal(io_kind(io), IO_BACKEND_FAKE);
    assert_int_equal(io_start(io), 0);
    io_fake_seed(io, seed);
    return io;
}

/* An accepted connection on a fresh listener. */
static int accepted(struct io *io, struct io_op *acc, int *lfd)
{
    *lfd = io_fake_listener(io);
    io_accept(io, acc, *lfd);
    int fd = io_fake_conn_new(io, *lfd);
    struct io_event ev[4];
    assert_int_equal(io_wait(io, ev, 4, 0), 1);
    assert_int_equal(ev[0].res, fd);
    assert_true(ev[0].flags & IO_EV_MORE);
    return fd;
}

/* Receives of two connections at once: each one's bytes arrive whole and
 * in order; the record of (op, length) is the same for the same seed. */
static size_t recv_run(uint64_t seed, int *trace, size_t max)
{
    struct io *io = fake(seed);
    struct io_op acc = {0}, r1 = {.tag = 1}, r2 = {.tag = 2};
    int lfd, a = accepted(io, &acc, &lfd), b = io_fake_conn_new(io, lfd);
    struct io_event ev[64];
    assert_int_equal(io_wait(io, ev, 64, 0), 1);
    char in[3000], got1[3000], got2[3000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (char)(i * 7);
    io_fake_feed(io, a, in, sizeof in);
    io_fake_feed(io, b, in, sizeof in);
    io_recv(io, &r1, a);
    io_recv(io, &r2, b);
    size_t n1 = 0, n2 = 0, nt = 0;
    while (n1 < sizeof in || n2 < sizeof in) {
        int n = io_wait(io, ev, 64, 0);
        assert_true(n > 0);
        for (int i = 0; i < n; i++) {
            assert_true(ev[i].flags & IO_EV_BUF && ev[i].res > 0);
            char *dst = ev[i].op == &r1 ? got1 + n1 : got2 + n2;
            memcpy(dst, ev[i].data, (size_t)ev[i].res);
            *(ev[i].op == &r1 ? &n1 : &n2) += (size_t)ev[i].res;
            io_buf_return(io, ev[i].buf);
            if (nt + 2 <= max) {
                trace[nt++] = ev[i].op->tag;
                trace[nt++] = ev[i].res;
            }
        }
    }
    assert_memory_equal(got1, in, sizeof in);
    assert_memory_equal(got2, in, sizeof in);
    io_cancel_all(io);
    assert_int_equal(io_wait(io, ev, 64, 0), 3); /* accept, r1, r2: -ECANCELED */
    for (int i = 0; i < 3; i++)
        assert_int_equal(ev[i].res, -ECANCELED);
    io_close(io, a);
    io_close(io, b);
    io_close(io, lfd);
    io_destroy(io);
    return nt;
}

static void test_recv_deterministic(void **state)
{
    int t1[4000], t2[4000], t3[4000];
    size_t n1 = recv_run(7, t1, 4000), n2 = recv_run(7, t2, 4000), n3 = recv_run(8, t3, 4000);
    assert_int_equal(n1, n2);
    assert_memory_equal(t1, t2, n1 * sizeof *t1);
    assert_true(n1 != n3 || memcmp(t1, t3, n1 * sizeof *t1) != 0);
}

/* Partial sends add up to what was sent; a stalled peer completes
 * nothing; shutdown ends a waiting send with -EPIPE and a recv with EOF. */
static void test_send_partial_and_shutdown(void **state)
{
    struct io *io = fake(3);
    io_fake_set_partial(io, 100);
    struct io_op acc = {0}, s = {0}, r = {0};
    int lfd, fd = accepted(io, &acc, &lfd);
    char msg[500];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    size_t off = 0;
    struct io_event ev[8];
    while (off < sizeof msg) {
        struct iovec iov[2] = {{msg + off, (sizeof msg - off) / 2},
                               {msg + off + (sizeof msg - off) / 2, sizeof msg - off - (sizeof msg - off) / 2}};
        io_send(io, &s, fd, iov, 2);
        assert_int_equal(io_wait(io, ev, 8, 0), 1);
        assert_true(ev[0].res > 0);
        off += (size_t)ev[0].res;
    }
    size_t len;
    const char *out = io_fake_sent(io, fd, &len);
    assert_int_equal(len, sizeof msg);
    assert_memory_equal(out, msg, sizeof msg);
    io_fake_consume(io, fd, len);
    io_fake_stall(io, fd, true);
    struct iovec one = {msg, 10};
    io_send(io, &s, fd, &one, 1);
    io_recv(io, &r, fd);
    assert_int_equal(io_wait(io, ev, 8, 0), 0);
    assert_false(io_fake_busy(io));
    io_shutdown(io, fd);
    assert_true(io_fake_busy(io));
    assert_int_equal(io_wait(io, ev, 8, 0), 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ev[i].res, ev[i].op == &s ? -EPIPE : 0);
    assert_true(io_fake_closed(io, fd));
    io_cancel(io, &acc);
    io_close(io, fd);
    io_close(io, lfd);
    io_destroy(io);
}

/* Connect rules (refused, delayed, never answered: times out), injected
 * receive errors, a virtual timer, an eventfd read for real. */
static void test_connect_timer_errors(void **state)
{
    struct io *io = fake(4);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(7001)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    io_fake_connect_rule(io, "127.0.0.1:7001", -ECONNREFUSED, 0, 1);
    struct io_op c = {0}, t = {0}, r = {0}, e = {0};
    struct io_event ev[8];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    io_connect(io, &c, fd, (struct sockaddr *)&sa, sizeof sa, 1000);
    assert_int_equal(io_wait(io, ev, 8, 0), 1);
    assert_int_equal(ev[0].res, -ECONNREFUSED);
    io_close(io, fd);
    io_fake_connect_rule(io, "127.0.0.1:7001", 0, 50, 1); /* the next after 50 ms */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    io_connect(io, &c, fd, (struct sockaddr *)&sa, sizeof sa, 1000);
    io_timer(io, &t, 100);
    assert_int_equal(io_wait(io, ev, 8, 0), 0);
    assert_int_equal(io_fake_next_timer_ms(io), 50);
    io_fake_advance(io, 50);
    assert_int_equal(io_wait(io, ev, 8, 0), 1);
    assert_true(ev[0].op == &c && ev[0].res == 0);
    assert_string_equal(io_fake_conn_addr(io, fd), "127.0.0.1:7001");
    int fds[2];
    assert_int_equal(io_fake_conns(io, "127.0.0.1:7001", fds, 2), 1);
    io_fake_advance(io, 50);
    assert_int_equal(io_wait(io, ev, 8, 0), 1);
    assert_true(ev[0].op == &t && ev[0].res == 0);
    char buf[16];
    io_fake_feed(io, fd, "hello", 5);
    io_fake_fail(io, fd, IO_FAKE_RECV, -ECONNRESET);
    io_read(io, &r, fd, buf, sizeof buf);
    assert_int_equal(io_wait(io, ev, 8, 0), 1);
    assert_int_equal(ev[0].res, -ECONNRESET);
    io_close(io, fd);
    io_fake_connect_rule(io, "127.0.0.1:7001", 0, -1, -1); /* black hole */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    io_connect(io, &c, fd, (struct sockaddr *)&sa, sizeof sa, 300);
    io_fake_advance(io, 299);
    assert_int_equal(io_wait(io, ev, 8, 0), 0);
    io_fake_advance(io, 1);
    assert_int_equal(io_wait(io, ev, 8, 0), 1);
    assert_int_equal(ev[0].res, -ETIMEDOUT);
    io_close(io, fd);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    uint64_t v = 0, one = 1;
    io_read(io, &e, efd, &v, sizeof v);
    assert_int_equal(io_wait(io, ev, 8, 0), 0);
    assert_int_equal(write(efd, &one, sizeof one), 8);
    assert_int_equal(io_wait(io, ev, 8, 0), 1);
    assert_true(ev[0].res == 8 && v == 1);
    io_close(io, efd);
    io_destroy(io);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recv_deterministic),
        cmocka_unit_test(test_send_partial_and_shutdown),
        cmocka_unit_test(test_connect_timer_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
