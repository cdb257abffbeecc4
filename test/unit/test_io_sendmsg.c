/*
 * test_io_sendmsg.c — vectored sends on the real backends (io_uring when the
 * kernel lets us, epoll always) over socketpairs.
 *
 *   arena   more two-iovec sends than io_uring's send arena holds, all
 *           prepared before one wait: the arena submits what is prepared
 *           when it fills, and an SQE taken for a send whose msghdr is not
 *           written yet must not go with it (every peer must get exactly
 *           its own bytes, and every send must complete once)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../core/io/io.h"

#define NSENDS 1300 /* above uring.c's SEND_ARENA_MSGS (1024) */
#define MAXEV 512

static int pairs[NSENDS][2];
static struct io_op ops[NSENDS];

static void run_arena(enum io_backend kind)
{
    char why[256];
    struct io *io;
    if (io_create(kind, &io, why, sizeof why) < 0)
        skip();
    assert_int_equal(io_start(io), 0);
    char heads[NSENDS][24];
    struct iovec iov[2];
    for (int i = 0; i < NSENDS; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pairs[i]), 0);
        snprintf(heads[i], sizeof heads[i], "%05d:", i);
        iov[0] = (struct iovec){.iov_base = heads[i], .iov_len = 6};
        iov[1] = (struct iovec){.iov_base = "tail", .iov_len = 4};
        ops[i].tag = 1;
        io_send(io, &ops[i], pairs[i][0], iov, 2); /* the iovecs are copied */
    }
    int done = 0;
    struct io_event ev[MAXEV];
    for (int k = 0; k < 200 && done < NSENDS; k++) {
        int n = io_wait(io, ev, MAXEV, 100);
        for (int i = 0; i < n; i++) {
            assert_int_equal(ev[i].res, 10);
            done++;
        }
    }
    assert_int_equal(done, NSENDS);
    for (int i = 0; i < NSENDS; i++) {
        char got[32] = {0}, want[32];
        snprintf(want, sizeof want, "%05d:tail", i);
        assert_int_equal(read(pairs[i][1], got, sizeof got), 10);
        assert_string_equal(got, want);
        io_close(io, pairs[i][0]);
        close(pairs[i][1]);
    }
    io_destroy(io);
}

static void test_arena_uring(void **state)
{
    char why[256];
    if (io_uring_usable(why, sizeof why) < 0)
        skip();
    run_arena(IO_BACKEND_URING);
}

static void test_arena_epoll(void **state)
{
    run_arena(IO_BACKEND_EPOLL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_uring),
        cmocka_unit_test(test_arena_epoll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
