/*
 * The runtime's life: what main builds before the threads start and frees
 * after they end (and what unit tests build to drive a worker themselves).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime.h"

int runtime_init(struct runtime *rt, const struct config *cfg, enum io_backend io)
{
    memset(rt, 0, sizeof *rt);
    rt->cfg = cfg;
    rt->io_backend = io;
    rt->nworkers = cfg->threads;
    rt->start_ms = clock_ms();
    /* readers: the workers, and the main thread (console) last */
    snapshot_domain_init(&rt->snap, (size_t)cfg->threads + 1);
    control_init_slots(rt);
    if (mq_init(&rt->ctl_queue, 1024) < 0)
        return -ENOMEM;
    rt->ctl_wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rt->stats = calloc((size_t)cfg->threads, sizeof *rt->stats);
    rt->metrics = calloc((size_t)cfg->threads, sizeof *rt->metrics);
    rt->workers = calloc((size_t)cfg->threads, sizeof *rt->workers);
    if (rt->ctl_wakeup_fd < 0 || !rt->stats || !rt->metrics || !rt->workers)
        return -ENOMEM;
    rt->tls_stats = calloc((size_t)cfg->threads, sizeof *rt->tls_stats);
    if (!rt->tls_stats || tls_runtime_init(rt) < 0)
        return -1;
    for (int i = 0; i < cfg->threads; i++)
        metrics_init(&rt->metrics[i]);
    return admin_init(rt);
}

void runtime_destroy(struct runtime *rt)
{
    clustermode_stop(rt);
    for (int i = 0; i < rt->nworkers; i++)
        if (rt->workers && rt->workers[i])
            worker_destroy(rt->workers[i]);
    snapshot_domain_destroy(&rt->snap, rt->slots, SLOT_COUNT);
    admin_destroy(rt);
    mq_destroy(&rt->ctl_queue);
    close(rt->ctl_wakeup_fd);
    free(rt->workers);
    free(rt->metrics);
    free(rt->stats);
    tls_runtime_destroy(rt);
    free(rt->tls_stats);
}

