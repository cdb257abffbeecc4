/*
 * main: parse the configuration, open the listeners (one SO_REUSEPORT
 * socket per worker), start the control thread and the workers, then wait
 * on a signalfd.
 *
 *   SIGTERM/SIGINT  stop accepting, let workers finish what is in flight
 *                   (bounded), exit 0
 *   second signal   exit at once
 *   SIGPIPE         ignored (sends use MSG_NOSIGNAL anyway)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "runtime.h"

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    worker_main(w);
    atomic_fetch_add(&w->rt->workers_done, 1);
    return NULL;
}

/* Can this process use io_uring at all (seccomp, sysctl, old kernel)? */
static int probe_io_uring(void)
{
    struct io_uring ring;
    int ret = io_uring_queue_init(8, &ring, 0);
    if (ret < 0)
        return ret;
    io_uring_queue_exit(&ring);
    return 0;
}

static int open_log(const struct config *cfg)
{
    if (!cfg->logfile[0])
        return STDOUT_FILENO;
    int fd = open(cfg->logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "Can't open the log file %s: %s\n", cfg->logfile, strerror(errno));
        exit(1);
    }
    return fd;
}

static int runtime_init(struct runtime *rt, const struct config *cfg)
{
    memset(rt, 0, sizeof *rt);
    rt->cfg = cfg;
    rt->nworkers = cfg->threads;
    rt->start_ms = clock_ms();
    snapshot_domain_init(&rt->snap, (size_t)cfg->threads);
    control_init_slots(rt);
    if (mq_init(&rt->ctl_queue, 1024) < 0)
        return -ENOMEM;
    rt->ctl_wakeup_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rt->stats = calloc((size_t)cfg->threads, sizeof *rt->stats);
    rt->workers = calloc((size_t)cfg->threads, sizeof *rt->workers);
    if (rt->ctl_wakeup_fd < 0 || !rt->stats || !rt->workers)
        return -ENOMEM;
    return 0;
}

static void runtime_destroy(struct runtime *rt)
{
    clustermode_stop(rt);
    for (int i = 0; i < rt->nworkers; i++)
        if (rt->workers[i])
            worker_destroy(rt->workers[i]);
    snapshot_domain_destroy(&rt->snap, rt->slots, SLOT_COUNT);
    mq_destroy(&rt->ctl_queue);
    close(rt->ctl_wakeup_fd);
    free(rt->workers);
    free(rt->stats);
}

/* Cluster mode: hand our slots over, then keep answering MOVED for them
 * for a grace period so clients move before we close. A second signal
 * still exits at once. */
static void leave_cluster(struct runtime *rt, int sfd)
{
    atomic_store(&rt->leaving, true);
    clustermode_leave(rt);
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};
    if (poll(&pfd, 1, CLUSTER_LEAVE_GRACE_MS) == 1) {
        log_warn("second signal: exiting now");
        _exit(1);
    }
}

/* Block until SIGTERM/SIGINT; then until the workers are done (or a second
 * signal). */
static void wait_for_shutdown(struct runtime *rt, int sfd)
{
    int signals = 0;
    for (;;) {
        struct pollfd pfd = {.fd = sfd, .events = POLLIN};
        int timeout = signals ? 100 : -1;
        if (poll(&pfd, 1, timeout) == 1) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == sizeof si && si.ssi_signo != SIGHUP) {
                if (++signals > 1) {
                    log_warn("second signal: exiting now");
                    _exit(1);
                }
                log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
                if (rt->consensus)
                    leave_cluster(rt, sfd);
                atomic_store(&rt->stopping, true);
                uint64_t one = 1;
                ssize_t n = write(rt->ctl_wakeup_fd, &one, sizeof one);
                (void)n;
            }
        }
        if (signals && atomic_load(&rt->workers_done) == rt->nworkers)
            return;
    }
}

static int start_workers(struct runtime *rt)
{
    int ret = worker_probe_port(rt->cfg);
    if (ret < 0) {
        log_error("Could not listen on port %d: %s", rt->cfg->port, strerror(-ret));
        return -1;
    }
    for (int i = 0; i < rt->nworkers; i++) {
        ret = worker_create(rt, i, &rt->workers[i]);
        if (ret < 0) {
            log_error("Could not listen on port %d: %s", rt->cfg->port, strerror(-ret));
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    char err[256];
    config_defaults(&cfg);
    if (config_parse_args(&cfg, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n\n%s", err, config_usage());
        return 1;
    }
    if (cfg.help) {
        fputs(config_usage(), stdout);
        return 0;
    }
    if (cfg.version) {
        printf("ringslot %s\n", RINGSLOT_VERSION);
        return 0;
    }
    if (cfg.nentry_points == 0) {
        fprintf(stderr, "Usage: ringslot [OPTIONS] CLUSTER_HOST:PORT [...]\n\n%s", config_usage());
        return 1;
    }
    log_setup(cfg.log_level, open_log(&cfg));
    int ret = probe_io_uring();
    if (ret < 0) {
        log_error("io_uring is not available (%s): the kernel is too old, or it is "
                  "disabled (sysctl kernel.io_uring_disabled, or a container's seccomp "
                  "profile refuses io_uring_setup)", strerror(-ret));
        return 1;
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL); /* threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

    static struct runtime rt;
    if (runtime_init(&rt, &cfg) < 0 || start_workers(&rt) < 0 ||
        clustermode_start(&rt) < 0) {
        runtime_destroy(&rt);
        return 1;
    }
    log_info("ringslot %s listening on port %d, %d threads", RINGSLOT_VERSION, cfg.port,
             cfg.threads);
    pthread_t control;
    pthread_create(&control, NULL, control_main, &rt);
    for (int i = 0; i < rt.nworkers; i++)
        pthread_create(&rt.workers[i]->thread, NULL, worker_thread, rt.workers[i]);

    wait_for_shutdown(&rt, sfd);
    for (int i = 0; i < rt.nworkers; i++)
        pthread_join(rt.workers[i]->thread, NULL);
    pthread_join(control, NULL);
    runtime_destroy(&rt);
    close(sfd);
    log_info("bye");
    return 0;
}
