/*
 * core/cmd — what the proxy answers itself: its command table and handlers
 * (commands.c), security and administration (admin.c), INFO (info.c),
 * questions about every worker's clients (xworker.c: CLIENT LIST/KILL, the
 * workers' inboxes), pub/sub (pubsub.c) and CLUSTER replies in cluster
 * mode (cluster.c).
 *
 * Invariants: handlers run on their client's worker, answer through
 * client_reply_* or a fan-out (in request order), and take their arguments
 * as a struct cmd_args (valid while they run); what they share with other threads goes through snapshots,
 * the control queue and the workers' inboxes only.
 *
 * Layering: cmd/ includes only route/route.h (and what it includes); the
 * lower layers call into it only through the hooks worker.c installs
 * (struct net_hooks, struct route_hooks).
 */
#ifndef RINGSLOT_CORE_CMD_H
#define RINGSLOT_CORE_CMD_H

#include "../route/route.h"

/* The proxy's own commands (commands.c). */
const struct proxy_command *proxy_command_lookup(const char *name, size_t len);

/* What cmd/ asks the root (worker.c installs them): TLS's part of CONFIG
 * SET and its counters (tlsglue.c). */
struct cmd_hooks {
    int (*tls_config_set)(struct runtime *rt, struct config *latest, const char *name,
                          const char *value, char *err, size_t errlen);
    void (*tls_stats_sum)(const struct runtime *rt, struct tls_totals *t);
};

/* INFO text (info.c): the snapshots a caller holds, and which sections. */
struct info_view {
    struct runtime *rt;
    const struct cluster_topology *topo; /* may be NULL */
    const struct config *cfg;            /* the runtime config */
    /* TLS counters (the root's tlsglue.c; a worker's cmd_hooks) */
    void (*tls_stats_sum)(const struct runtime *rt, struct tls_totals *t);
};
enum info_section {
    INFO_SERVER = 1, INFO_CLIENTS = 2, INFO_MEMORY = 4, INFO_STATS = 8, INFO_CLUSTER = 16,
    INFO_KEYSPACE = 32, INFO_ALL = 63,
};
/* Appends the proxy's own sections (keyspace is the caller's: it needs the
 * masters). */
void info_write(const struct info_view *v, unsigned sections, bool proxy, struct resp_buf *b);
/* The Redis version ringslot claims (INFO, HELLO): the lowest among the
 * masters of t, a compatible constant until it is known. */
const char *info_redis_version(const struct cluster_topology *t);

/* CLUSTER replies in cluster mode (cluster.c). */
void clustermode_command(struct client *c, const struct cmd_args *a); /* CLUSTER … */
/* DBSIZE / RANDOMKEY over this proxy's own slots; false when its view is
 * the whole keyspace (the caller asks every master as before). */
bool clustermode_dbsize(struct client *c, const struct cmd_args *a);
bool clustermode_randomkey(struct client *c, const struct cmd_args *a);

/* Cross-worker requests (xworker.c): questions about every worker's
 * clients, asked of each worker through its inbox and gathered into the
 * asking client's reply, in request order. */
int xworker_init(struct worker *w);
void xworker_arm(struct worker *w);
/* Worker 0: hand a unix-socket client to the least-loaded worker (this
 * one included); fd is theirs from now on. */
void xworker_adopt(struct worker *w, int fd);
/* Any thread: make w's inbox read complete (a batch runs soon). */
void xworker_wake(struct worker *w);
void xworker_handle(struct worker *w, int res);
void xworker_destroy(struct worker *w);
/* CLIENT LIST [TYPE t] [ID id …] and CLIENT KILL (both forms), argv in
 * w->argv. */
void xworker_client_list(struct client *c, const struct cmd_args *a);
void xworker_client_kill(struct client *c, const struct cmd_args *a);
/* One CLIENT LIST line for c (no CRLF) appended to b. */
void client_info_line(struct client *c, struct resp_buf *b, const char *cmd);

/*
 * Security and administration security and administration (admin.c).
 *
 *   - the requirepass gate: before AUTH, a client may only send AUTH,
 *     HELLO … AUTH, QUIT and RESET (Redis 7's rules and error texts);
 *   - AUTH and HELLO's AUTH option; CONFIG SET requirepass (the proxy's own
 *     password) and ACL calls that would change ringslot's node credentials;
 *   - PROXY CONFIG GET|SET, PROXY SHUTDOWN [ASAP], PROXY DEBUG
 *     SEGFAULT|ASSERT, PROXY AUTH; CONFIG SET, SHUTDOWN and DEBUG are for
 *     admin connections only (loopback, the unix socket, or PROXY AUTH
 *     <admin-password>);
 *   - the runtime config: PROXY CONFIG SET edits the latest config under a
 *     mutex (admin commands only, never the request path) and the control
 *     thread publishes a copy as the SLOT_CONFIG snapshot the workers read
 *     (w->cfg);
 *   - the backend credentials (--auth, --auth-user) as one AUTH command
 *     every new backend connection sends first;
 *   - --dump-queries / --dump-buffer / --dump-queues (debug level), with
 *     passwords replaced by "(redacted)".
 */
struct config;
struct runtime;
struct client;
struct worker;

/* Main, before any thread starts: the lock, the first config snapshot, the
 * backend AUTH command. 0 or -ENOMEM. */
int admin_init(struct runtime *rt);
void admin_destroy(struct runtime *rt);
/* Control thread, every loop: publish the config if PROXY CONFIG SET
 * changed it, then wake the workers so waiting SETs get their +OK. */
void admin_publish_pending(struct runtime *rt);
/* Worker, once per batch after loading the snapshots: answer the PROXY
 * CONFIG SETs whose config is now published. */
void admin_worker_poll(struct worker *w);
/* Worker teardown (clients gone): free the waits. */
void admin_worker_destroy(struct worker *w);
/* The runtime config as last published (control thread: it publishes, so
 * the pointer stays valid for it). */
const struct config *admin_config(struct runtime *rt);
/* PROXY SHUTDOWN ASAP was asked (main, after the signal). */
bool admin_shutdown_asap(struct runtime *rt);

/* "AUTH [user] pass\r\n" in RESP for the backend (NUL-terminated), or NULL
 * without --auth. */
const char *admin_backend_auth(const struct runtime *rt, size_t *len);

/* Dispatch, before anything else looks at the command (w->argv): false if
 * the command was answered here (NOAUTH, HELLO's AUTH refused). */
bool admin_gate(struct client *c, const char *buf, const struct cmd_args *a);
/* PROXY subcommands handled here (CONFIG, SHUTDOWN, DEBUG, AUTH); false if
 * argv[1] is none of them. */
bool admin_proxy_command(struct client *c, const struct cmd_args *a);
/* The AUTH command. */
void admin_cmd_auth(struct client *c, const struct cmd_args *a);
/* CONFIG SET naming requirepass (the proxy's own client password): answered
 * here, true; false for any other CONFIG SET (it goes to the nodes). */
bool admin_config_set(struct client *c, const struct cmd_args *a);
/* ACL SETUSER / DELUSER of the user ringslot's links authenticate as: true
 * once refused (it would cut ringslot off the nodes). */
bool admin_acl_refused(struct client *c, const struct cmd_args *a);
/* ACL WHOAMI: the client's identity as ringslot knows it (the user it AUTHed
 * as on the nodes, else the one ringslot's links use). */
void admin_acl_whoami(struct client *c, const struct cmd_args *a);

/*
 * Pub/sub pub/sub through the proxy (pubsub.c).
 *
 *   - the commands: (P)SUBSCRIBE, SSUBSCRIBE, (P)UNSUBSCRIBE, SUNSUBSCRIBE
 *     and PUBLISH (sent to the pub/sub home node, where every subscription
 *     made through the proxy lives, so its count is Redis's);
 *   - the client's pub/sub state (enum client_pubsub): which commands it
 *     may run (RESP2 only: Redis 7 lets RESP3 clients run any), and which
 *     must wait until the confirmations in flight settle it;
 *   - the reply accounting of subscriber links (link.c): a command there is
 *     answered by one confirmation per channel, messages come in between.
 */
struct client;
struct cluster_topology;
struct link;
struct request;
struct resp_buf;
struct worker;
struct sub_counts;

/* Commands (commands.c's table). */
void pubsub_cmd_subscribe(struct client *c, const struct cmd_args *a);   /* and PSUBSCRIBE */
void pubsub_cmd_ssubscribe(struct client *c, const struct cmd_args *a);
void pubsub_cmd_unsubscribe(struct client *c, const struct cmd_args *a); /* and PUNSUBSCRIBE */
void pubsub_cmd_sunsubscribe(struct client *c, const struct cmd_args *a);
void pubsub_cmd_publish(struct client *c, const struct cmd_args *a);

/* Is a a (P|S)SUBSCRIBE or (P|S)UNSUBSCRIBE? */
bool pubsub_is_subscribe_command(const struct cmd_args *a);
/* What c is subscribed to (CLIENT LIST's sub=, psub=, ssub=). */
struct sub_counts pubsub_client_counts(const struct client *c);

enum pubsub_gate pubsub_gate(struct client *c, const struct cmd_args *a);
/* The refusal, naming the command as Redis does (lower case,
 * "container|subcommand"). */
void pubsub_refuse(struct client *c, const char *name);

/* Subscriber links (link.c). A published message ("message", "pmessage",
 * "smessage") rather than an answer to the link's FIFO head? */
bool pubsub_is_message(const char *data, size_t len);
/* The reply `data` answers r, the head of subscriber link l (its counts
 * are updated): true if it is r's last. */
bool pubsub_reply_is_last(struct link *l, struct request *r, const char *data, size_t len,
                          char first);
/* A shard confirmation carries its node's count; the client is told its
 * total (Redis's count, 0 only once it has no shard channel left, which
 * clients rely on): true if `data` was rewritten so into `out`. Call it
 * after pubsub_reply_is_last, which counted this confirmation of r. */
bool pubsub_client_count(const struct link *l, const struct request *r, const char *data,
                         size_t len, struct resp_buf *out);
/* The worker loaded a new topology: subscribers whose links are no longer
 * where their subscriptions belong are closed, to start over. */
void pubsub_topology_changed(struct worker *w);
/* The slot whose master is the pub/sub home (PUBLISH and SUBSCRIBE go
 * there). */
int pubsub_home_slot(const struct cluster_topology *t);
/* A subscriber link of c has nothing in flight any more: once none has,
 * links left without subscriptions go back and c's state settles. */
void pubsub_settle(struct client *c);

#endif
