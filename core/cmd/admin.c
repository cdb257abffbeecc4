/*
 * Security and administration (cmd/cmd.h).
 *
 *   client command ─► admin_gate ──NOAUTH / WRONGPASS──► reply, stop
 *                        │ dump-queries (passwords redacted)
 *                        ▼
 *                     dispatch ─► AUTH, PROXY CONFIG|SHUTDOWN|DEBUG|AUTH here
 *
 *   PROXY CONFIG SET ─► lock; latest' = config_set(copy of latest);
 *                       seq = ++set_seq; unlock; dirty = true; wake control
 *                       placeholder reply, waiting for `seq` (w->config_waits)
 *   control thread ───► admin_publish_pending: copy latest → SLOT_CONFIG,
 *                       published = seq copied; wake every worker's inbox
 *   workers ──────────► w->cfg, loaded once per batch; waits whose seq is
 *                       published get their +OK
 *
 * The +OK goes out only once the snapshot is published, so any command the
 * client (or anyone it tells) sends after it, on any connection and any
 * worker, runs under the new config, as after Redis's CONFIG SET. PROXY
 * CONFIG GET reads `latest` (under the lock).
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd.h"

struct admin {
    pthread_mutex_t lock;
    struct config *latest;     /* under lock */
    uint64_t set_seq;          /* under lock: successful SETs so far */
    _Atomic uint64_t published; /* set_seq of the last published snapshot */
    _Atomic bool dirty;        /* latest is newer than the snapshot */
    _Atomic bool shutdown_asap;
    char *backend_auth;        /* RESP "AUTH [user] pass", or NULL */
    size_t backend_auth_len;
};

#define NOAUTH "NOAUTH Authentication required."
#define WRONGPASS "WRONGPASS invalid username-password pair or user is disabled."
#define NOPASS_CONFIGURED "ERR AUTH <password> called without any password configured " \
    "for the default user. Are you sure your configuration is correct?"
#define HELLO_NOAUTH "NOAUTH HELLO must be called with the client already " \
    "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be " \
    "used to authenticate the client and select the RESP protocol version at the " \
    "same time"
#define NOT_ADMIN "NOPERM PROXY CONFIG SET, PROXY SHUTDOWN and PROXY DEBUG are only " \
    "accepted from loopback and unix socket clients, or after PROXY AUTH <admin-password>"

static void config_free(void *p)
{
    free(p);
}

static void build_backend_auth(struct admin *a, const struct config *cfg)
{
    if (!cfg->auth[0])
        return;
    const char *argv[3] = {"AUTH"};
    size_t lens[3] = {4};
    int argc = 1;
    if (cfg->auth_user[0])
        argv[argc++] = cfg->auth_user;
    argv[argc++] = cfg->auth;
    for (int i = 1; i < argc; i++)
        lens[i] = strlen(argv[i]);
    struct resp_buf b = {0};
    resp_write_command(&b, argc, argv, lens);
    resp_buf_append(&b, "", 1); /* NUL-terminated for the control thread */
    a->backend_auth = b.data;
    a->backend_auth_len = b.len - 1;
}

int admin_init(struct runtime *rt)
{
    struct admin *a = calloc(1, sizeof *a);
    struct config *first = malloc(sizeof *first);
    if (a)
        a->latest = malloc(sizeof *a->latest);
    if (!a || !first || !a->latest) {
        free(first);
        if (a)
            free(a->latest);
        free(a);
        return -ENOMEM;
    }
    pthread_mutex_init(&a->lock, NULL);
    *a->latest = *rt->cfg;
    *first = *rt->cfg;
    build_backend_auth(a, rt->cfg);
    rt->admin = a;
    rt->slots[SLOT_CONFIG].destroy = config_free;
    snapshot_publish(&rt->snap, &rt->slots[SLOT_CONFIG], first);
    return 0;
}

void admin_destroy(struct runtime *rt)
{
    struct admin *a = rt->admin;
    if (!a)
        return;
    pthread_mutex_destroy(&a->lock);
    free(a->latest);
    free(a->backend_auth);
    free(a);
    rt->admin = NULL;
}

void admin_publish_pending(struct runtime *rt)
{
    struct admin *a = rt->admin;
    if (!a || !atomic_exchange(&a->dirty, false))
        return;
    struct config *next = malloc(sizeof *next);
    if (!next) {
        atomic_store(&a->dirty, true); /* try again next time */
        return;
    }
    pthread_mutex_lock(&a->lock);
    *next = *a->latest;
    uint64_t seq = a->set_seq;
    pthread_mutex_unlock(&a->lock);
    snapshot_publish(&rt->snap, &rt->slots[SLOT_CONFIG], next);
    atomic_store(&a->published, seq); /* after the swap: see admin_worker_poll */
    for (int i = 0; i < rt->nworkers; i++)
        xworker_wake(rt->workers[i]);
}

/* A PROXY CONFIG SET whose +OK waits for its snapshot (worker-owned). */
struct config_wait {
    struct config_wait *next;
    struct request *slot;      /* placeholder in the client's FIFO */
    uint64_t seq;
};

void admin_worker_poll(struct worker *w)
{
    if (!w->config_waits)
        return;
    uint64_t published = atomic_load(&w->rt->admin->published);
    struct config_wait **pp = &w->config_waits;
    while (*pp) {
        struct config_wait *cw = *pp;
        if (cw->seq > published) {
            pp = &cw->next;
            continue;
        }
        *pp = cw->next;
        fanout_placeholder_done(cw->slot, "+OK\r\n", 5);
        free(cw);
    }
}

void admin_worker_destroy(struct worker *w)
{
    while (w->config_waits) {
        struct config_wait *cw = w->config_waits;
        w->config_waits = cw->next;
        request_free(cw->slot); /* orphaned: every client is gone */
        free(cw);
    }
}

const struct config *admin_config(struct runtime *rt)
{
    const struct config *c = snapshot_load(&rt->slots[SLOT_CONFIG]);
    return c ? c : rt->cfg;
}

bool admin_shutdown_asap(struct runtime *rt)
{
    return rt->admin && atomic_load(&rt->admin->shutdown_asap);
}

const char *admin_backend_auth(const struct runtime *rt, size_t *len)
{
    if (!rt->admin || !rt->admin->backend_auth)
        return NULL;
    *len = rt->admin->backend_auth_len;
    return rt->admin->backend_auth;
}

/* ------------------------------------------------------------------------ */
/* Credentials                                                               */

/* Does the argument equal the secret? Time independent of where they
 * differ, so a client cannot find a password byte by byte. */
static bool secret_eq(const char *secret, const char *arg, size_t len)
{
    size_t slen = strlen(secret);
    unsigned char diff = slen != len;
    for (size_t i = 0; i < len; i++)
        diff |= (unsigned char)arg[i] ^ (unsigned char)secret[slen ? i % slen : 0];
    return diff == 0 && slen > 0;
}

static bool is_default_user(const char *user, size_t len)
{
    return len == 7 && strncmp(user, "default", 7) == 0;
}

enum auth_result { AUTH_OK, AUTH_WRONGPASS, AUTH_NOPASS };

/*
 * Check AUTH [user] pass against what the proxy knows (user NULL: the
 * one-argument form). With --requirepass: only the default user with that
 * password. Without it, clients are authenticated implicitly: the backend
 * credentials (--auth, --auth-user) are accepted as they are, the default
 * user needs none (as Redis's "nopass" default user).
 */
static enum auth_result check_auth(const struct config *cfg, const char *user, size_t ulen,
                                   const char *pass, size_t plen)
{
    if (cfg->requirepass[0]) {
        bool user_ok = !user || is_default_user(user, ulen);
        return user_ok && secret_eq(cfg->requirepass, pass, plen) ? AUTH_OK : AUTH_WRONGPASS;
    }
    if (cfg->auth[0]) {
        const char *want = cfg->auth_user[0] ? cfg->auth_user : "default";
        bool user_ok = user ? (ulen == strlen(want) && memcmp(user, want, ulen) == 0)
                            : !cfg->auth_user[0];
        return user_ok && secret_eq(cfg->auth, pass, plen) ? AUTH_OK : AUTH_WRONGPASS;
    }
    if (!user)
        return AUTH_NOPASS;
    return is_default_user(user, ulen) ? AUTH_OK : AUTH_WRONGPASS;
}

static void auth_reply(struct client *c, enum auth_result r)
{
    if (r == AUTH_OK) {
        c->authenticated = true;
        client_reply_bytes(c, "+OK\r\n", 5);
    } else {
        client_reply_error(c, r == AUTH_NOPASS ? NOPASS_CONFIGURED : WRONGPASS);
    }
}

/*
 * Without --requirepass, a client may AUTH as another ACL user of the
 * backend: the backend decides, over a link that authenticates as that
 * user; on +OK the client's calls use such links from then on (auth.c).
 */
static void auth_as_backend_user(struct client *c, const char *user, size_t ulen,
                                 const char *pass, size_t plen)
{
    struct worker *w = c->w;
    struct auth_id *a = auth_intern(w, user, ulen, pass, plen);
    struct link_key key = {.proto = c->proto, .auth = a};
    const char *argv[3] = {"AUTH", user, pass};
    size_t lens[3] = {4, ulen, plen};
    struct request *r = request_from_args(w, 3, argv, lens);
    r->auth_result = a; /* our reference moves to the request */
    client_append(c, r);
    route_to_slot(w, r, -1, key);
}

void admin_cmd_auth(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    if (a->argc < 2) {
        client_reply_error(c, "ERR wrong number of arguments for 'auth' command");
        return;
    }
    if (a->argc > 3) {
        client_reply_error(c, "ERR syntax error");
        return;
    }
    const char *user = a->argc == 3 ? a->argv[1] : NULL;
    size_t ulen = a->argc == 3 ? a->lens[1] : 0;
    const char *pass = a->argv[a->argc - 1];
    size_t plen = a->lens[a->argc - 1];
    enum auth_result r = check_auth(w->cfg, user, ulen, pass, plen);
    if (r == AUTH_WRONGPASS && !w->cfg->requirepass[0]) {
        auth_as_backend_user(c, user ? user : "default", user ? ulen : 7, pass, plen);
        return;
    }
    if (r == AUTH_OK) { /* the configured identity again */
        auth_put(c->auth);
        c->auth = NULL;
    }
    auth_reply(c, r);
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]: check AUTH here (the
 * HELLO handler skips it). False if answered (refused). */
static bool hello_gate(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const char *proto = a->argc >= 2 ? a->argv[1] : NULL;
    if (proto && (a->lens[1] != 1 || (proto[0] != '2' && proto[0] != '3')))
        return true; /* NOPROTO from the handler, before anything else */
    for (size_t i = 2; i + 2 < a->argc; i++) {
        if (!arg_is(a, i, "auth"))
            continue;
        enum auth_result r = check_auth(w->cfg, a->argv[i + 1], a->lens[i + 1],
                                        a->argv[i + 2], a->lens[i + 2]);
        if (r != AUTH_OK) {
            client_reply_error(c, WRONGPASS);
            return false;
        }
        c->authenticated = true;
        return true;
    }
    if (w->cfg->requirepass[0] && !c->authenticated) {
        client_reply_error(c, HELLO_NOAUTH);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* --dump-queries, --dump-buffer, --dump-queues                              */

/* Argument i (>= 1) may hold a password: everything after AUTH and PROXY
 * AUTH, the two after an AUTH or AUTH2 option (HELLO, MIGRATE), and in
 * [PROXY] CONFIG SET the value after a *pass* / *auth* name. */
static bool secret_arg(const struct cmd_args *a, size_t i)
{
    if (arg_is(a, 0, "auth"))
        return true;
    if (arg_is(a, 0, "proxy") && arg_is(a, 1, "auth"))
        return i >= 2;
    for (size_t back = 1; back <= 2 && back <= i; back++) /* AUTH[2] [user] pass */
        if (arg_is(a, i - back, "auth") || arg_is(a, i - back, "auth2"))
            return true;
    if (!arg_is(a, 0, "config") && !(arg_is(a, 0, "proxy") && arg_is(a, 1, "config")))
        return false;
    char name[64];
    cluster_lower(name, sizeof name, a->argv[i - 1], a->lens[i - 1]);
    return strstr(name, "pass") != NULL || strstr(name, "auth") != NULL;
}

static bool any_secret(const struct worker *w, const struct cmd_args *a)
{
    for (size_t i = 1; i < a->argc; i++)
        if (secret_arg(a, i))
            return true;
    return false;
}

/* Printable, bounded rendering of bytes ("\x0d" for the rest). */
static size_t repr(char *out, size_t cap, const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 5 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isprint(ch) && ch != '\\')
            out[n++] = (char)ch;
        else
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", ch);
    }
    if (n < cap)
        out[n] = '\0';
    return n;
}

static void dump_query(struct client *c, const struct cmd_args *a)
{
    char line[768];
    size_t n = 0;
    for (size_t i = 0; i < a->argc && i < 16 && n + 80 < sizeof line; i++) {
        line[n++] = ' ';
        if (i > 0 && secret_arg(a, i))
            n += (size_t)snprintf(line + n, sizeof line - n, "(redacted)");
        else
            n += repr(line + n, 72, a->argv[i], a->lens[i] > 64 ? 64 : a->lens[i]);
    }
    line[n] = '\0';
    log_debug("query from client %llu:%s%s", (unsigned long long)c->id, line,
              a->argc > 16 ? " …" : "");
}

static void dump(struct client *c, const char *buf, const struct cmd_args *a)
{
    const struct config *cfg = c->w->cfg;
    if (cfg->dump_queries)
        dump_query(c, a);
    if (cfg->dump_buffer) {
        char raw[512];
        if (any_secret(c->w, a) || c->parser.is_inline)
            snprintf(raw, sizeof raw, "(%zu bytes, not shown)", c->parser.len);
        else
            repr(raw, sizeof raw, buf, c->parser.len > 120 ? 120 : c->parser.len);
        log_debug("buffer from client %llu: %s", (unsigned long long)c->id, raw);
    }
    if (cfg->dump_queues)
        log_debug("client %llu: %zu requests waiting for replies",
                  (unsigned long long)c->id, c->nreqs);
}

/* ------------------------------------------------------------------------ */
/* The gate                                                                  */

bool admin_gate(struct client *c, const char *buf, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const struct config *cfg = w->cfg; /* requirepass may change (CONFIG SET) */
    if (log_get_level() <= LOG_DEBUG && (w->cfg->dump_queries || w->cfg->dump_buffer ||
                                         w->cfg->dump_queues))
        dump(c, buf, a);
    if (arg_is(a, 0, "hello"))
        return hello_gate(c, a);
    if (arg_is(a, 0, "reset")) {
        /* RESET signs the connection out, as in Redis (and at once in again
         * when no password is required) */
        c->authenticated = !cfg->requirepass[0];
        if (cfg->requirepass[0])
            c->admin = false;
        return true;
    }
    if (!cfg->requirepass[0] || c->authenticated)
        return true;
    if (arg_is(a, 0, "auth") || arg_is(a, 0, "quit") || arg_is(a, 0, "reset"))
        return true;
    client_reply_error(c, NOAUTH);
    return false;
}

/* ------------------------------------------------------------------------ */
/* PROXY CONFIG                                                              */

static bool peer_is_local(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return false;
    if (ss.ss_family == AF_UNIX)
        return true;
    if (ss.ss_family == AF_INET) {
        uint32_t a = ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr);
        return (a >> 24) == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static bool is_admin(struct client *c)
{
    if (c->admin)
        return true;
    if (c->peer_local == 0)
        c->peer_local = peer_is_local(c->fd) ? 1 : -1;
    return c->peer_local > 0;
}

struct get_reply {
    struct resp_buf items;
    size_t n;
};

static void get_one(void *arg, const char *name, const struct config_value *v)
{
    struct get_reply *g = arg;
    struct resp_buf *b = &g->items;
    resp_write_bulk(b, name, strlen(name));
    switch (v->kind) {
    case CONFIG_VALUE_INT:
        resp_write_integer(b, v->integer);
        break;
    case CONFIG_VALUE_STRING:
        resp_write_bulk(b, v->string, strlen(v->string));
        break;
    case CONFIG_VALUE_NULL:
        resp_write_null(b, 2);
        break;
    case CONFIG_VALUE_LIST:
        resp_write_array_head(b, (long long)v->nitems);
        for (size_t i = 0; i < v->nitems; i++)
            resp_write_bulk(b, v->items[i], strlen(v->items[i]));
        break;
    }
    g->n++;
}

/* Copy an argument into a NUL-terminated buffer; false if too long. */
static bool arg_copy(const struct cmd_args *a, size_t i, char *out, size_t cap)
{
    if (a->lens[i] >= cap || memchr(a->argv[i], '\0', a->lens[i]))
        return false;
    memcpy(out, a->argv[i], a->lens[i]);
    out[a->lens[i]] = '\0';
    return true;
}

/* PROXY CONFIG GET pattern: [name, value, …] like rcp (a list value is an
 * array); an exact name that matches nothing is rcp's error. */
static void config_get_cmd(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    struct admin *adm = w->rt->admin;
    char pattern[128];
    if (!arg_copy(a, 3, pattern, sizeof pattern)) {
        client_reply_error(c, "ERR Invalid config option");
        return;
    }
    struct get_reply g = {{0}, 0};
    pthread_mutex_lock(&adm->lock);
    config_get(adm->latest, pattern, get_one, &g);
    pthread_mutex_unlock(&adm->lock);
    if (g.n == 0 && !strpbrk(pattern, "*?[")) {
        resp_buf_free(&g.items);
        client_reply_error(c, "ERR Invalid config option");
        return;
    }
    struct resp_buf b = {0};
    resp_write_array_head(&b, (long long)g.n * 2);
    resp_buf_append(&b, g.items.data, g.items.len);
    resp_buf_free(&g.items);
    client_reply_buf(c, &b);
}

/* PROXY CONFIG SET (name in argument 3) or CONFIG SET requirepass (2):
 * change the runtime config; +OK once it is published. */
static void config_set_cmd(struct client *c, const struct cmd_args *a, size_t name_arg)
{
    struct worker *w = c->w;
    struct admin *adm = w->rt->admin;
    char name[128], value[1024], err[256];
    if (!arg_copy(a, name_arg, name, sizeof name)) {
        client_reply_error(c, "ERR Invalid config option");
        return;
    }
    if (!arg_copy(a, name_arg + 1, value, sizeof value)) {
        client_reply_error(c, "ERR Invalid value");
        return;
    }
    struct config_wait *cw = malloc(sizeof *cw);
    if (!cw) {
        client_reply_error(c, "ERR out of memory");
        return;
    }
    pthread_mutex_lock(&adm->lock);
    int ret = w->cmd_hooks->tls_config_set(w->rt, adm->latest, name, value, err, sizeof err);
    enum log_level level = adm->latest->log_level;
    cw->seq = ret < 0 ? 0 : ++adm->set_seq;
    pthread_mutex_unlock(&adm->lock);
    if (ret < 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "ERR %s", err);
        client_reply_error(c, msg);
        free(cw);
        return;
    }
    log_set_level(level); /* the log module is shared by every thread */
    cw->slot = fanout_placeholder(c);
    cw->next = w->config_waits;
    w->config_waits = cw;
    atomic_store(&adm->dirty, true);
    uint64_t one = 1;
    ssize_t n = write(w->rt->ctl_wakeup_fd, &one, sizeof one);
    (void)n;
    log_info("PROXY CONFIG SET %s by client %llu", name, (unsigned long long)c->id);
}

static void proxy_config(struct client *c, const struct cmd_args *a)
{
    if (a->argc == 4 && arg_is(a, 2, "get")) {
        config_get_cmd(c, a);
    } else if (a->argc == 5 && arg_is(a, 2, "set")) {
        if (is_admin(c))
            config_set_cmd(c, a, 3);
        else
            client_reply_error(c, NOT_ADMIN);
    } else {
        client_reply_error(c, "ERR Unknown subcommand or wrong number of arguments for "
                              "'PROXY CONFIG'. Try PROXY HELP");
    }
}

/* ------------------------------------------------------------------------ */
/* CONFIG and ACL through the proxy: the proxy's own credentials             */

/* CONFIG SET … requirepass …: the proxy's own client password (as PROXY
 * CONFIG SET requirepass, and gated the same way); never the nodes', whose
 * password is ringslot's backend credential (--auth). */
bool admin_config_set(struct client *c, const struct cmd_args *a)
{
    bool ours = false;
    if (a->argc < 4 || a->argc % 2) /* malformed: the nodes' own arity error */
        return false;
    for (size_t i = 2; i < a->argc; i += 2)
        ours = ours || arg_is(a, i, "requirepass");
    if (!ours)
        return false;
    if (a->argc != 4)
        client_reply_error(c, "ERR requirepass is ringslot's own client password: "
                              "CONFIG SET it alone, without other parameters");
    else if (!is_admin(c))
        client_reply_error(c, NOT_ADMIN);
    else
        config_set_cmd(c, a, 2);
    return true;
}

/* The ACL user ringslot's links authenticate as. */
static const char *backend_user(const struct config *cfg)
{
    return cfg->auth_user[0] ? cfg->auth_user : "default";
}

bool admin_acl_refused(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const char *user = backend_user(w->cfg);
    /* SETUSER names one user (argument 2), DELUSER any number (2 …) */
    size_t last = arg_is(a, 1, "setuser") ? 3 : arg_is(a, 1, "deluser") ? a->argc : 0;
    for (size_t i = 2; i < last && i < a->argc; i++)
        if (a->lens[i] == strlen(user) &&
            memcmp(a->argv[i], user, a->lens[i]) == 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "ERR ringslot connects to the nodes as ACL user '%s': "
                     "change that user on the nodes themselves (and ringslot's --auth), "
                     "not through ringslot", user);
            client_reply_error(c, msg);
            return true;
        }
    return false;
}

void admin_acl_whoami(struct client *c, const struct cmd_args *a)
{
    if (a->argc != 2) {
        client_reply_error(c, "ERR wrong number of arguments for 'acl|whoami' command");
        return;
    }
    const char *user = c->auth ? c->auth->user : backend_user(c->w->cfg);
    struct resp_buf b = {0};
    resp_write_bulk(&b, user, strlen(user));
    client_reply_buf(c, &b);
}

/* ------------------------------------------------------------------------ */
/* PROXY SHUTDOWN, DEBUG, AUTH                                               */

/* As redis-cluster-proxy: no reply; the signal path drains the clients (or,
 * with ASAP, main exits at once). */
static void proxy_shutdown(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    bool asap = a->argc >= 3 && arg_is(a, 2, "asap");
    log_warn("PROXY SHUTDOWN%s by client %llu", asap ? " ASAP" : "",
             (unsigned long long)c->id);
    if (asap)
        atomic_store(&w->rt->admin->shutdown_asap, true);
    kill(getpid(), SIGTERM);
}

static void proxy_debug(struct client *c, const struct cmd_args *a)
{
    if (a->argc == 3 && arg_is(a, 2, "segfault")) {
        log_now(LOG_WARNING, "PROXY DEBUG SEGFAULT by client %llu: crashing on purpose",
                (unsigned long long)c->id);
        raise(SIGSEGV);
    } else if (a->argc == 3 && arg_is(a, 2, "assert")) {
        log_now(LOG_WARNING, "PROXY DEBUG ASSERT by client %llu: failing an assertion",
                (unsigned long long)c->id);
        abort(); /* what a failed assert() does, with or without NDEBUG */
    } else {
        client_reply_error(c, "ERR Unknown subcommand or wrong number of arguments for "
                              "'PROXY DEBUG'. Try PROXY DEBUG HELP");
    }
}

static void proxy_auth(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const char *pw = w->rt->cfg->admin_password;
    if (a->argc != 3)
        client_reply_error(c, "ERR wrong number of arguments for 'proxy|auth' command");
    else if (!pw[0])
        client_reply_error(c, "ERR PROXY AUTH called without any admin password "
                              "configured (--admin-password)");
    else if (secret_eq(pw, a->argv[2], a->lens[2])) {
        c->admin = true;
        client_reply_bytes(c, "+OK\r\n", 5);
    } else {
        client_reply_error(c, WRONGPASS);
    }
}

bool admin_proxy_command(struct client *c, const struct cmd_args *a)
{
    if (a->argc < 2)
        return false;
    if (arg_is(a, 1, "config"))
        proxy_config(c, a);
    else if (arg_is(a, 1, "auth"))
        proxy_auth(c, a);
    else if (arg_is(a, 1, "shutdown") || arg_is(a, 1, "debug")) {
        if (!is_admin(c))
            client_reply_error(c, NOT_ADMIN);
        else if (arg_is(a, 1, "shutdown"))
            proxy_shutdown(c, a);
        else
            proxy_debug(c, a);
    } else {
        return false;
    }
    return true;
}
