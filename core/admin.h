/*
 * Private to core/: security and administration (admin.c).
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
#ifndef RINGSLOT_CORE_ADMIN_H
#define RINGSLOT_CORE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

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
bool admin_gate(struct client *c, const char *buf, size_t argc);
/* PROXY subcommands handled here (CONFIG, SHUTDOWN, DEBUG, AUTH); false if
 * argv[1] is none of them. */
bool admin_proxy_command(struct client *c, size_t argc);
/* The AUTH command. */
void admin_cmd_auth(struct client *c, size_t argc);
/* CONFIG SET naming requirepass (the proxy's own client password): answered
 * here, true; false for any other CONFIG SET (it goes to the nodes). */
bool admin_config_set(struct client *c, size_t argc);
/* ACL SETUSER / DELUSER of the user ringslot's links authenticate as: true
 * once refused (it would cut ringslot off the nodes). */
bool admin_acl_refused(struct client *c, size_t argc);
/* ACL WHOAMI: the client's identity as ringslot knows it (the user it AUTHed
 * as on the nodes, else the one ringslot's links use). */
void admin_acl_whoami(struct client *c, size_t argc);

#endif
