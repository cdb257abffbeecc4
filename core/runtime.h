/*
 * core/ root — the process: main, the worker loop (worker.c), the control
 * thread (control.c, replica_health.c), cluster mode's consensus
 * (clustermode.c), the console, snapshots, queues, log and metrics.
 *
 * This header is the root layer's own: it includes every layer below
 * (cmd/cmd.h, and through it route/, net/, io/) and declares what only the
 * root implements: the worker's life (worker.c installs the hooks through
 * which net/ and route/ call upward), the control thread, cluster mode's
 * lifecycle. Files of the layers below never include it (the build's
 * include-check rejects that); tests may.
 */
#ifndef RINGSLOT_CORE_RUNTIME_H
#define RINGSLOT_CORE_RUNTIME_H

#include <poll.h>

#include "base.h"
#include "cmd/cmd.h"
#include "log.h"
#include "metrics.h"

/* runtime.c: set rt up for cfg (no threads, no workers yet: rt->workers is
 * [threads] NULLs) with this io backend; 0 or -errno. runtime_destroy
 * frees it, and the workers it holds. */
int runtime_init(struct runtime *rt, const struct config *cfg, enum io_backend io);
void runtime_destroy(struct runtime *rt);

/* Set the snapshot slots' destructors (before any publish). */
void control_init_slots(struct runtime *rt);
/* The control thread's body; returns when rt->stopping is set. */
void *control_main(void *rt);
/* The control thread's blocking client (control.c): a connection to addr,
 * authenticated like the links, or -1; one command's reply by deadline. */
int control_dial(struct runtime *rt, const char *addr, int64_t deadline);
int control_call(struct runtime *rt, int fd, const char *cmd, struct resp_value *out, char **buf,
                 int64_t deadline);

/* TLS in the runtime (tlsglue.c) */
int tls_runtime_init(struct runtime *rt);          /* 0 or -1, logged */
/* --check-config: build each context cfg asks for (files load, key
 * matches); 0, or -1 with the first error in err. */
int tls_check_config(const struct config *cfg, char *err, size_t errlen);
void tls_runtime_destroy(struct runtime *rt);
/* Rebuild the ctx of each side that is on from cfg's files: 0, or -1 with
 * err (the old ctx stays). */
int tls_runtime_reload(struct runtime *rt, const struct config *cfg, char *err,
                       size_t errlen);
/* config_set, and for a TLS file option a reload; a failed reload undoes
 * the change and returns -1 with the reason (cmd/ calls it through
 * struct cmd_hooks). */
int tls_config_set(struct runtime *rt, struct config *latest, const char *name,
                   const char *value, char *err, size_t errlen);
/* SIGHUP (main thread): reload from the current config's files. */
void tls_sighup(struct runtime *rt);
void tls_stats_sum(const struct runtime *rt, struct tls_totals *t);
/* The consensus thread's TLS (tls-cluster, and --tls for the lease store),
 * or NULL when neither is on. */
const struct consensus_stream *tls_consensus_stream(const struct runtime *rt);
/* The control thread's connections (control.c, replica_health.c): after
 * the TCP connect, the TLS handshake when --tls (0 or -1); then whole
 * sends, receives of what is there (> 0, 0 EOF, -1 error or deadline), and
 * a close that also frees the TLS state. Plain fds work the same. */
int bconn_start(struct runtime *rt, int fd, const char *host, int port, int64_t deadline);
int bconn_send(struct runtime *rt, int fd, const char *buf, size_t len, int64_t deadline);
ssize_t bconn_recv(struct runtime *rt, int fd, char *buf, size_t cap, int64_t deadline);
void bconn_close(struct runtime *rt, int fd);
/* Workers (worker.c): a TLS listener's new client, before client_accepted;
 * TLS for a link's new socket when --tls (false: none could be set up;
 * net/ calls it through struct net_hooks); the worker's TLS stats. */
void tls_accepted(struct worker *w, int fd);
bool tls_link_attach(struct worker *w, int fd, const char *addr);
void tls_worker_setup(struct worker *w);

int worker_create(struct runtime *rt, int id, struct worker **out);
void *worker_main(void *w);
/* worker_main in parts, for tests that drive a worker themselves (on the
 * fake io backend): start once; step runs one loop iteration (waiting at
 * most timeout_ms) and returns 1 to go on, 0 once drained after stopping,
 * -errno on a backend failure; finish cancels and reaps what is left. */
int worker_start(struct worker *w);
int worker_step(struct worker *w, int timeout_ms);
void worker_finish(struct worker *w);
void worker_destroy(struct worker *w);

/* cluster mode (clustermode.c) */
#define CLUSTER_LEAVE_GRACE_MS 1000
int clustermode_start(struct runtime *rt);       /* main, before threads */
void clustermode_publish_pending(struct runtime *rt); /* control thread */
void clustermode_leave(struct runtime *rt);      /* SIGTERM: slots move first */
void clustermode_stop(struct runtime *rt);

/* The control thread's replica health checks: probes replicas' INFO
 * replication while anyone may read from them, and publishes the healthy
 * ones in the topology. */
struct replica_health;
struct replica_health *replica_health_new(struct runtime *rt);
void replica_health_free(struct replica_health *h);
/* Probe if due; a topology to publish when the healthy set changed (the
 * caller sets its version), else NULL. *wait_ms: until the next round. */
struct cluster_topology *replica_health_check(struct replica_health *h, int *wait_ms);
/* Fill t's readers from the last probes (a topology about to be published). */
void replica_health_fill(const struct replica_health *h, struct cluster_topology *t);

/* The HTTP console (--console-port), served by the main thread's poll
 * loop. console_open: 0, or -errno if the port cannot be bound. */
struct console;
int console_open(struct runtime *rt, struct console **out);
/* Fill pfds with what to poll (at most max); returns the count. */
int console_pollfds(struct console *c, struct pollfd *pfds, int max);
/* After poll(): handle the entries console_pollfds filled. */
void console_handle(struct console *c, const struct pollfd *pfds, int n);
void console_close(struct console *c);

#endif
