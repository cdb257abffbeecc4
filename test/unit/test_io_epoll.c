/*
 * test_io_epoll.c — the epoll backend's io_ready over socketpairs: the hint
 * client.c's coalescing asks before keeping a client's output one more
 * iteration (net/client.c client_flush_all).
 *
 *   idle       nothing queued, nothing to read again: false, and a wait
 *              that finds nothing returns 0 (so the worker flushes all)
 *   send       a send that completed at once queues its completion: true
 *              until io_wait hands it out
 *   burst      a receive that stopped at RECV_BURST buffers leaves its fd
 *              on the ready list: true, and the next wait reads the rest
 *              (every byte once, in order)
 *   held       the worker's pattern: after a send, a wait with timeout 0
 *              returns at once with that completion; then false again
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/io/io.h"

#define MAXEV 64

/* Each test's epoll io and a socketpair: sp[0] is the io's, sp[1] the peer. */
struct pair {
    struct io *io;
    int sp[2];
};

static int pair_setup(void **state)
{
    static struct pair p;
    char why[256];
    assert_int_equal(io_create(IO_BACKEND_EPOLL, &p.io, why, sizeof why), 0);
    assert_int_equal(io_start(p.io), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.sp), 0);
    *state = &p;
    return 0;
}

static int pair_teardown(void **state)
{
    struct pair *p = *state;
    io_close(p->io, p->sp[0]);
    close(p->sp[1]);
    io_destroy(p->io);
    return 0;
}

static void test_idle(void **state)
{
    struct pair *p = *state;
    struct io *io = p->io;
    int *sp = p->sp;
    struct io_op rop = {.tag = 1};
    io_recv(io, &rop, sp[0]);
    assert_false(io_ready(io));
    struct io_event ev[MAXEV];
    assert_int_equal(io_wait(io, ev, MAXEV, 0), 0);
    assert_false(io_ready(io));
    io_cancel(io, &rop);
    assert_true(io_ready(io)); /* the cancellation is a queued completion */
    assert_int_equal(io_wait(io, ev, MAXEV, 0), 1);
    assert_int_equal(ev[0].res, -ECANCELED);
    assert_false(io_ready(io));
}

static void test_send(void **state)
{
    struct pair *p = *state;
    struct io *io = p->io;
    int *sp = p->sp;
    struct io_op sop = {.tag = 2};
    struct iovec iov = {.iov_base = "+OK\r\n", .iov_len = 5};
    io_send(io, &sop, sp[0], &iov, 1);
    assert_true(io_ready(io));
    struct io_event ev[MAXEV];
    assert_int_equal(io_wait(io, ev, MAXEV, 1000), 1);
    assert_ptr_equal(ev[0].op, &sop);
    assert_int_equal(ev[0].res, 5);
    assert_false(io_ready(io));
    char got[8] = {0};
    assert_int_equal(read(sp[1], got, sizeof got), 5);
    assert_string_equal(got, "+OK\r\n");
}

static void test_burst(void **state)
{
    struct pair *p = *state;
    struct io *io = p->io;
    int *sp = p->sp;
    int sz = 1 << 20;
    setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(sp[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    /* more than RECV_BURST (16) small buffers' worth */
    static char data[40 * 4096];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i * 7 + i / 4096);
    size_t sent = 0;
    while (sent < sizeof data) {
        ssize_t n = write(sp[1], data + sent, sizeof data - sent);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    assert_true(sent > 16 * 4096);
    struct io_op rop = {.tag = 1};
    io_recv(io, &rop, sp[0]);
    static char got[sizeof data];
    size_t have = 0;
    bool saw_ready = false;
    struct io_event ev[MAXEV];
    for (int k = 0; k < 100 && have < sent; k++) {
        int n = io_wait(io, ev, MAXEV, 1000);
        for (int i = 0; i < n; i++) {
            assert_ptr_equal(ev[i].op, &rop);
            assert_true(ev[i].res > 0);
            memcpy(got + have, ev[i].data, (size_t)ev[i].res);
            have += (size_t)ev[i].res;
            io_buf_return(io, ev[i].buf);
        }
        if (have < sent && io_ready(io))
            saw_ready = true; /* the rest waits on the ready list */
    }
    assert_true(saw_ready);
    assert_int_equal(have, sent);
    assert_memory_equal(got, data, sent);
    assert_false(io_ready(io));
    io_cancel(io, &rop);
    assert_int_equal(io_wait(io, ev, MAXEV, 0), 1);
}

static void test_held(void **state)
{
    struct pair *p = *state;
    struct io *io = p->io;
    int *sp = p->sp;
    struct io_op rop = {.tag = 1}, sop = {.tag = 2};
    io_recv(io, &rop, sp[0]);
    struct iovec iov = {.iov_base = "x", .iov_len = 1};
    io_send(io, &sop, sp[0], &iov, 1);
    assert_true(io_ready(io));
    /* the wait after a hold: no sleep, what is queued comes out now, and a
     * reply that came in meanwhile with it */
    assert_int_equal(write(sp[1], "+PONG\r\n", 7), 7);
    struct io_event ev[MAXEV];
    int n = io_wait(io, ev, MAXEV, 0);
    assert_int_equal(n, 2);
    bool sent = false, got = false;
    for (int i = 0; i < n; i++) {
        if (ev[i].op == &sop) {
            assert_int_equal(ev[i].res, 1);
            sent = true;
        } else {
            assert_ptr_equal(ev[i].op, &rop);
            assert_int_equal(ev[i].res, 7);
            assert_memory_equal(ev[i].data, "+PONG\r\n", 7);
            io_buf_return(io, ev[i].buf);
            got = true;
        }
    }
    assert_true(sent && got);
    assert_false(io_ready(io));
    assert_int_equal(io_wait(io, ev, MAXEV, 0), 0);
    io_cancel(io, &rop);
    assert_int_equal(io_wait(io, ev, MAXEV, 0), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_send, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_burst, pair_setup, pair_teardown),
        cmocka_unit_test_setup_teardown(test_held, pair_setup, pair_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
