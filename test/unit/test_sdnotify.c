/*
 * test_sdnotify.c — unit tests of core/sdnotify.h: the datagrams a
 * Type=notify unit's process sends, read back from a unix datagram socket
 * the test binds itself (a path, and the abstract namespace), and the
 * READY/WATCHDOG schedule of sd_notifier_tick.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../core/sdnotify.h"

/* A bound datagram socket standing in for systemd's. */
struct listener {
    int fd;
    char addr[108]; /* as $NOTIFY_SOCKET would name it */
    char dir[64];
};

static void listen_at(struct listener *l, bool abstract)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    l->dir[0] = '\0';
    if (abstract) {
        snprintf(l->addr, sizeof l->addr, "@ringslot-test-%d", (int)getpid());
        memcpy(sa.sun_path, l->addr, strlen(l->addr));
        sa.sun_path[0] = '\0';
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(l->addr));
    } else {
        strcpy(l->dir, "/tmp/ringslot-sdnotify-XXXXXX");
        assert_non_null(mkdtemp(l->dir));
        snprintf(l->addr, sizeof l->addr, "%s/notify", l->dir);
        strcpy(sa.sun_path, l->addr);
        len = sizeof sa;
    }
    l->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(l->fd >= 0);
    assert_int_equal(bind(l->fd, (struct sockaddr *)&sa, len), 0);
}

static void listen_close(struct listener *l)
{
    close(l->fd);
    if (l->dir[0]) {
        unlink(l->addr);
        rmdir(l->dir);
    }
}

/* The next datagram, or "" if none is waiting. */
static const char *next_msg(struct listener *l)
{
    static char buf[256];
    ssize_t n = recv(l->fd, buf, sizeof buf - 1, 0);
    if (n < 0) {
        assert_int_equal(errno, EAGAIN);
        n = 0;
    }
    buf[n] = '\0';
    return buf;
}

static void sends_to(bool abstract)
{
    struct listener l;
    struct sd_notifier n;
    listen_at(&l, abstract);
    assert_int_equal(sd_notifier_init(&n, l.addr, NULL, NULL, getpid()), 0);
    assert_int_equal(sd_notifier_send(&n, "STOPPING=1"), 0);
    assert_string_equal(next_msg(&l), "STOPPING=1");
    assert_string_equal(next_msg(&l), "");
    sd_notifier_close(&n);
    listen_close(&l);
}

static void test_path_socket(void **state)
{
    sends_to(false);
}

static void test_abstract_socket(void **state)
{
    sends_to(true);
}

static void test_no_socket_is_a_no_op(void **state)
{
    struct sd_notifier n;
    assert_int_equal(sd_notifier_init(&n, NULL, "200000", NULL, getpid()), 0);
    assert_int_equal(n.fd, -1);
    assert_int_equal(sd_notifier_send(&n, "READY=1"), 0);
    assert_int_equal(sd_notifier_tick(&n, true, 0), -1);
    assert_int_equal(sd_notifier_init(&n, "relative/path", NULL, NULL, getpid()), -EINVAL);
    assert_int_equal(n.fd, -1);
}

/* READY=1 once, when `ready` first holds; WATCHDOG=1 every USEC/2. */
static void test_tick_schedule(void **state)
{
    struct listener l;
    struct sd_notifier n;
    listen_at(&l, true);
    assert_int_equal(sd_notifier_init(&n, l.addr, "200000", NULL, getpid()), 0);
    assert_int_equal(sd_notifier_tick(&n, false, 1000), 100);
    assert_string_equal(next_msg(&l), "WATCHDOG=1");
    assert_string_equal(next_msg(&l), "");
    assert_int_equal(sd_notifier_tick(&n, false, 1050), 50);
    assert_string_equal(next_msg(&l), "");
    assert_int_equal(sd_notifier_tick(&n, true, 1060), 40);
    assert_string_equal(next_msg(&l), "READY=1");
    assert_string_equal(next_msg(&l), "");
    assert_int_equal(sd_notifier_tick(&n, true, 1100), 100);
    assert_string_equal(next_msg(&l), "WATCHDOG=1");
    assert_string_equal(next_msg(&l), "");
    sd_notifier_close(&n);
    listen_close(&l);
}

/* WATCHDOG_PID names another process: no watchdog for this one. */
static void test_watchdog_pid(void **state)
{
    struct listener l;
    struct sd_notifier n;
    listen_at(&l, true);
    assert_int_equal(sd_notifier_init(&n, l.addr, "200000", "1", getpid()), 0);
    assert_int_equal(sd_notifier_tick(&n, true, 0), -1);
    assert_string_equal(next_msg(&l), "READY=1");
    assert_string_equal(next_msg(&l), "");
    sd_notifier_close(&n);
    char self[16];
    snprintf(self, sizeof self, "%d", (int)getpid());
    assert_int_equal(sd_notifier_init(&n, l.addr, "200000", self, getpid()), 0);
    assert_int_equal(n.watchdog_ms, 100);
    sd_notifier_close(&n);
    listen_close(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_no_socket_is_a_no_op),
        cmocka_unit_test(test_tick_schedule),
        cmocka_unit_test(test_watchdog_pid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
