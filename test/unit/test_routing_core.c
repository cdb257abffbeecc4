/*
 * test_routing_core.c — dispatch.c, fanout.c and hold.c on the fake io
 * backend (harness_core.h): pipelines across nodes, MOVED/ASK, retries,
 * holds for a lost node, MULTI blocks, cross-slot fan-out.
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

static void test_mget_fanout(void **state)
{
    struct harness h;
    h_setup(&h, 1, NULL);
    int c = h_client(&h);
    h_node_set(&h, 0, "a", "1"); /* placement does not matter: set below */
    h_cmd(&h, c, "MSET", h_key_on(&h, 0, 0), "x", "k2", "y");
    h_run(&h);
    H_EXPECT(&h, c, "+OK\r\n");
    h_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mget_fanout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
