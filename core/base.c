/*
 * base.c — what base.h declares beside the snapshots and queues: the one
 * clock, and the two messages a worker sends the control thread (a push on
 * rt->ctl_queue, then a write on its eventfd). Includes nothing of core/
 * above base.h.
 */
#include <stdio.h>
#include <unistd.h>

#include "../consensus/consensus.h"
#include "base.h"

int64_t clock_ms(void)
{
    return consensus_clock_ms(); /* the one clock (consensus.h) */
}

void control_request_refresh(struct runtime *rt, int worker, const char *addr)
{
    struct ctl_msg m = {.type = CTL_MSG_REFRESH, .worker = (uint16_t)worker};
    if (addr)
        snprintf(m.addr, sizeof m.addr, "%s", addr);
    if (mq_push(&rt->ctl_queue, &m)) {
        uint64_t one = 1;
        ssize_t n = write(rt->ctl_wakeup_fd, &one, sizeof one);
        (void)n;
    }
}

static void push_msg(struct runtime *rt, const struct ctl_msg *m)
{
    if (mq_push(&rt->ctl_queue, m)) {
        uint64_t one = 1;
        ssize_t n = write(rt->ctl_wakeup_fd, &one, sizeof one);
        (void)n;
    }
}

void control_report_lost(struct runtime *rt, int worker, const char *addr)
{
    struct ctl_msg m = {.type = CTL_MSG_LINK_LOST, .worker = (uint16_t)worker};
    snprintf(m.addr, sizeof m.addr, "%s", addr);
    push_msg(rt, &m);
}
