/*
 * main: parse the configuration, open the listeners (one SO_REUSEPORT
 * socket per worker and --bind address, the unix socket on worker 0), start
 * the control thread and the workers, then run the main loop:
 *
 *   poll ─┬─ signalfd  SIGTERM/SIGINT  stop accepting, let workers finish
 *         │                            what is in flight (bounded), exit 0
 *         │            second signal   exit at once
 *         │            SIGHUP          reopen the log file (logrotate), reload
 *         │                            the TLS certificates (tlsglue.c)
 *         ├─ log ring  write the lines the other threads queued (log.h)
 *         ├─ console   --console-port HTTP: /metrics /healthz /readyz /info
 *         └─ systemd   $NOTIFY_SOCKET (sdnotify.h): READY=1 once the first
 *                      topology is loaded (when /readyz turns 200),
 *                      STOPPING=1 on SIGTERM/SIGINT, WATCHDOG=1 every
 *                      WATCHDOG_USEC/2 from this loop, so a stuck main
 *                      thread is what the watchdog catches
 *
 * SIGPIPE is ignored (sends use MSG_NOSIGNAL anyway).
 *
 * --daemonize: the process forks; the parent waits on a pipe until the
 * child listens and has started its threads (one byte: exit 0), or until
 * the child dies (the child's exit code). The child writes the pidfile
 * once it listens and removes it on a clean exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"
#include "sdnotify.h"

#define MAIN_POLL_MAX 64
#define LOG_DRAIN_MS 200 /* bound on a log line's wait, should a wakeup be missed */

static void *worker_thread(void *arg)
{
    struct worker *w = arg;
    worker_main(w);
    atomic_fetch_add(&w->rt->workers_done, 1);
    return NULL;
}

/*
 * --io-backend: auto takes io_uring when this process may use it, epoll
 * otherwise (one warning naming the cause); uring that is refused is fatal.
 * Returns the backend, or -1 after logging why not.
 */
static int choose_io_backend(const struct config *cfg)
{
    if (cfg->io_backend == CONFIG_IO_EPOLL)
        return IO_BACKEND_EPOLL;
    char why[200];
    int ret = io_uring_usable(why, sizeof why);
    if (ret == 0)
        return IO_BACKEND_URING;
    if (cfg->io_backend == CONFIG_IO_URING) {
        log_error("io_uring is not available (%s): the kernel is too old, or it is "
                  "disabled (sysctl kernel.io_uring_disabled, or a container's seccomp "
                  "profile refuses io_uring_setup)", why);
        return -1;
    }
    log_warn("io_uring is not available (%s): using epoll", why);
    return IO_BACKEND_EPOLL;
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

/* --check-config: the effective configuration, passwords redacted. */
static int check_config(const struct config *cfg)
{
    if (config_dump(cfg, stdout) < 0)
        return 1;
    if (cfg->nentry_points == 0) {
        fprintf(stderr, "no entry point: give at least one cluster node (host:port)\n");
        return 1;
    }
    char err[512];
    if (tls_check_config(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Daemon and pidfile                                                        */

/* Fork. The parent never returns: it exits 0 when the child reports that it
 * is ready, else with the child's exit code. The child returns the pipe to
 * report on. */
static int daemonize(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        perror("pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid > 0) {
        close(p[1]);
        char b;
        ssize_t n;
        do
            n = read(p[0], &b, 1);
        while (n < 0 && errno == EINTR);
        if (n == 1)
            _exit(0);
        int st = 0;
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) == 0)
            _exit(1);
        _exit(WEXITSTATUS(st));
    }
    close(p[0]);
    setsid();
    return p[1];
}

/* The daemon is up: tell the parent, and stop writing on its terminal
 * (startup errors still went there). */
static void daemon_ready(int fd)
{
    if (fd < 0)
        return;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    ssize_t n = write(fd, "", 1);
    (void)n;
    close(fd);
}

static bool write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        log_warn("Could not write the pidfile %s: %s", path, strerror(errno));
        return false;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
    return true;
}

/* Files this process made that must not outlive it. */
static void remove_files(const struct config *cfg, bool pidfile)
{
    if (pidfile)
        unlink(cfg->pidfile);
    if (cfg->unixsocket[0])
        unlink(cfg->unixsocket);
}

static int start_workers(struct runtime *rt)
{
    const struct config *cfg = rt->cfg;
    int ret = listen_probe(cfg);
    for (int i = 0; ret == 0 && i < rt->nworkers; i++)
        ret = worker_create(rt, i, &rt->workers[i]);
    if (ret < 0) {
        if (cfg->port)
            log_error("Could not listen on port %d: %s", cfg->port, strerror(-ret));
        else
            log_error("Could not listen on %s: %s", cfg->unixsocket, strerror(-ret));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The main loop                                                             */

struct main_loop {
    struct runtime *rt;
    int sfd;                /* signalfd */
    int log_fd;             /* the log ring's eventfd, or -1 */
    struct console *console;
    struct sd_notifier notify;
    int signals;            /* SIGTERM/SIGINT seen */
};

/* Cluster mode: hand our slots over, then keep answering MOVED for them
 * for a grace period so clients move before we close. A second signal
 * still exits at once. `leaving` (MOVED for every call of a slot not ours)
 * is raised only once the hand-off is over: while it runs our map may be
 * older than a peer's, and when the whole tier stops at once that peer is
 * leaving too, so two proxies answering MOVED without exception would
 * bounce a client between them until its redirection limit (seen as
 * redis-py's "TTL exhausted" in test_netns.py); in hint mode the one with
 * the older map serves the call instead. */
static void leave_cluster(struct runtime *rt, int sfd)
{
    clustermode_leave(rt);
    atomic_store(&rt->leaving, true);
    struct pollfd pfd = {.fd = sfd, .events = POLLIN};
    if (poll(&pfd, 1, CLUSTER_LEAVE_GRACE_MS) == 1) {
        log_warn("second signal: exiting now");
        _exit(1);
    }
}

static void on_signal(struct main_loop *m)
{
    struct runtime *rt = m->rt;
    struct signalfd_siginfo si;
    if (read(m->sfd, &si, sizeof si) != sizeof si)
        return;
    if (si.ssi_signo == SIGHUP) {
        int ret = log_reopen();
        if (ret < 0)
            log_warn("Could not reopen the log file %s: %s", rt->cfg->logfile, strerror(-ret));
        else
            log_info("SIGHUP: log file reopened");
        tls_sighup(rt);
        return;
    }
    if (++m->signals > 1 || admin_shutdown_asap(rt)) {
        log_now(LOG_WARNING, "%s: exiting now",
                m->signals > 1 ? "second signal" : "PROXY SHUTDOWN ASAP");
        log_drain();
        remove_files(rt->cfg, rt->cfg->pidfile[0]);
        _exit(m->signals > 1 ? 1 : 0);
    }
    log_info("received %s, shutting down", strsignal((int)si.ssi_signo));
    sd_notifier_send(&m->notify, "STOPPING=1");
    if (rt->consensus)
        leave_cluster(rt, m->sfd);
    atomic_store(&rt->stopping, true);
    uint64_t one = 1;
    ssize_t n = write(rt->ctl_wakeup_fd, &one, sizeof one);
    (void)n;
}

/* Until SIGTERM/SIGINT, and then until the workers are done (or a second
 * signal): signals, log lines, console requests. */
static void main_loop(struct main_loop *m)
{
    struct pollfd pfds[MAIN_POLL_MAX];
    for (;;) {
        int n = 0;
        pfds[n++] = (struct pollfd){.fd = m->sfd, .events = POLLIN};
        pfds[n++] = (struct pollfd){.fd = m->log_fd, .events = POLLIN};
        int first_console = n;
        if (m->console)
            n += console_pollfds(m->console, pfds + n, MAIN_POLL_MAX - n);
        int timeout = m->signals ? 100 : LOG_DRAIN_MS;
        bool ready = !m->signals && atomic_load(&m->rt->topology_ready);
        int watchdog = sd_notifier_tick(&m->notify, ready, clock_ms());
        if (watchdog >= 0 && watchdog < timeout)
            timeout = watchdog;
        if (poll(pfds, (nfds_t)n, timeout) > 0 && (pfds[0].revents & POLLIN))
            on_signal(m);
        log_drain();
        if (m->console)
            console_handle(m->console, pfds + first_console, n - first_console);
        if (m->signals && atomic_load(&m->rt->workers_done) == m->rt->nworkers)
            return;
    }
}

/* ------------------------------------------------------------------------ */

static int block_signals(void)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL); /* threads inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &mask, SFD_CLOEXEC);
}

/* Parse; --help, --version, --check-config. Returns -1 to go on, else the
 * exit code. */
static int parse(struct config *cfg, int argc, char **argv)
{
    char err[256];
    config_defaults(cfg);
    if (config_parse_args(cfg, argc, argv, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n\n%s", err, config_usage());
        return 1;
    }
    if (cfg->help) {
        fputs(config_usage(), stdout);
        return 0;
    }
    if (cfg->version) {
        printf("ringslot %s\n", RINGSLOT_VERSION);
        return 0;
    }
    if (cfg->check_config)
        return check_config(cfg);
    if (cfg->nentry_points == 0) {
        fprintf(stderr, "Usage: ringslot [OPTIONS] CLUSTER_HOST:PORT [...]\n\n%s", config_usage());
        return 1;
    }
    return -1;
}

/* maxclients connections, plus backend links, need file descriptors: raise
 * the soft limit to the hard one (as Redis adjusts its own), and say so if
 * maxclients still cannot fit. */
static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)cfg->maxclients + 64 > rl.rlim_cur)
        log_warn("open files limit %llu is lower than maxclients %d + 64",
                 (unsigned long long)rl.rlim_cur, cfg->maxclients);
}

static int start_console(struct main_loop *m)
{
    const struct config *cfg = m->rt->cfg;
    int ret = cfg->console_port ? console_open(m->rt, &m->console) : 0;
    if (ret < 0)
        log_error("Could not listen on the console port %d: %s", cfg->console_port,
                  strerror(-ret));
    return ret;
}

static void start_threads(struct runtime *rt, pthread_t *control)
{
    pthread_create(control, NULL, control_main, rt);
    for (int i = 0; i < rt->nworkers; i++)
        pthread_create(&rt->workers[i]->thread, NULL, worker_thread, rt->workers[i]);
}

int main(int argc, char **argv)
{
    static struct config cfg;
    int ret = parse(&cfg, argc, argv);
    if (ret >= 0)
        return ret;
    int ready_fd = cfg.daemonize ? daemonize() : -1;
    log_setup(cfg.log_level, open_log(&cfg), cfg.logfile, !cfg.disable_colors);
    raise_nofile(&cfg);
    int backend = choose_io_backend(&cfg);
    if (backend < 0)
        return 1;
    struct main_loop m = {.sfd = block_signals(), .log_fd = -1};
    static struct runtime rt;
    m.rt = &rt;
    ret = sd_notifier_init(&m.notify, getenv("NOTIFY_SOCKET"), getenv("WATCHDOG_USEC"),
                           getenv("WATCHDOG_PID"), getpid());
    if (ret < 0)
        log_warn("NOTIFY_SOCKET %s unusable: %s", getenv("NOTIFY_SOCKET"), strerror(-ret));
    if (runtime_init(&rt, &cfg, (enum io_backend)backend) < 0 || start_workers(&rt) < 0 ||
        clustermode_start(&rt) < 0 || start_console(&m) < 0) {
        runtime_destroy(&rt);
        return 1;
    }
    bool pidfile = cfg.pidfile[0] && write_pidfile(cfg.pidfile);
    m.log_fd = log_start_async();
    log_success("ringslot %s listening on port %d%s%s, %d threads%s", RINGSLOT_VERSION,
                cfg.port, cfg.unixsocket[0] ? " and " : "", cfg.unixsocket, cfg.threads,
                m.console ? ", console on its own port" : "");
    pthread_t control;
    start_threads(&rt, &control);
    daemon_ready(ready_fd);

    main_loop(&m);
    for (int i = 0; i < rt.nworkers; i++)
        pthread_join(rt.workers[i]->thread, NULL);
    pthread_join(control, NULL);
    console_close(m.console);
    sd_notifier_close(&m.notify);
    runtime_destroy(&rt);
    log_info("bye");
    log_stop_async();
    remove_files(&cfg, pidfile);
    close(m.sfd);
    return 0;
}
