/*
 * Commands the proxy answers itself, from a sorted table.
 *
 * Dispatch looks every command up here first (a hash index over a few
 * dozen names, probed with argv[0] folded to lower case and hashed in one
 * pass, bounded length); a hit never reaches a backend link. Everything
 * else is routed by the command table the backend described (cluster/).
 *
 * Handlers read their arguments from a->argv / a->lens and answer through
 * client_reply_*, which keeps the reply in request order.
 */
#include <assert.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cmd.h"

#define NAME_MAX_LEN 32

/* ASKING: the proxy follows redirections itself, so it is accepted and
 * changes nothing (READONLY / READWRITE: replica.c). */
static void reply_ok(struct client *c, const struct cmd_args *a)
{
    client_reply_bytes(c, "+OK\r\n", 5);
}

static void reply_bulk(struct client *c, const char *s, size_t len)
{
    struct resp_buf b = {0};
    resp_write_bulk(&b, s, len);
    client_reply_buf(c, &b);
}

/* ------------------------------------------------------------------------ */
/* Connection commands                                                       */

static void cmd_ping(struct client *c, const struct cmd_args *a)
{
    if (a->argc > 2)
        dispatch_wrong_arity(c, a);
    else if (a->argc == 2)
        reply_bulk(c, a->argv[1], a->lens[1]);
    else
        client_reply_bytes(c, "+PONG\r\n", 7);
}

/* PING while subscribed, in RESP2: Redis answers in pub/sub form (RESP3
 * gets +PONG). The state is settled: PING waits while it changes. */
static void cmd_ping_maybe_subscribed(struct client *c, const struct cmd_args *a)
{
    if (a->argc > 2 || c->pubsub != PUBSUB_SUBSCRIBED || c->proto != 2) {
        cmd_ping(c, a);
        return;
    }
    struct resp_buf b = {0};
    resp_write_array_head(&b, 2);
    resp_write_bulk(&b, "pong", 4);
    resp_write_bulk(&b, a->argc == 2 ? a->argv[1] : "", a->argc == 2 ? a->lens[1] : 0);
    client_reply_buf(c, &b);
}

static void cmd_echo(struct client *c, const struct cmd_args *a)
{
    if (a->argc != 2)
        dispatch_wrong_arity(c, a);
    else
        reply_bulk(c, a->argv[1], a->lens[1]);
}

static void cmd_quit(struct client *c, const struct cmd_args *a)
{
    client_reply_bytes(c, "+OK\r\n", 5);
    c->close_after_reply = true;
    c->reading_stopped = true;
}

static void cmd_select(struct client *c, const struct cmd_args *a)
{
    if (a->argc != 2)
        dispatch_wrong_arity(c, a);
    else if (a->lens[1] == 1 && a->argv[1][0] == '0')
        client_reply_bytes(c, "+OK\r\n", 5);
    else
        client_reply_error(c, "ERR SELECT is not allowed in cluster mode");
}

static void write_str_field(struct resp_buf *b, const char *k, const char *v)
{
    resp_write_bulk(b, k, strlen(k));
    resp_write_bulk(b, v, strlen(v));
}

/* HELLO [protover [AUTH user pass] [SETNAME name]]: the proxy answers with
 * a Redis 7-like map and from now on speaks that protocol to this client
 * (its calls go over links that speak it too). */
static void cmd_hello(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    int proto = c->proto;
    size_t i = 1;
    if (a->argc >= 2) {
        long long ver;
        if (!resp_string2ll(a->argv[1], a->lens[1], &ver)) {
            client_reply_error(c, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            client_reply_error(c, "NOPROTO unsupported protocol version");
            return;
        }
        proto = (int)ver;
        i = 2;
    }
    for (; i < a->argc; i++) {
        if (arg_is(a, i, "auth") && i + 2 < a->argc) {
            i += 2; /* checked by the requirepass gate before we get here */
        } else if (arg_is(a, i, "setname") && i + 1 < a->argc) {
            i++;
            client_set_name(c, a->argv[i], a->lens[i]);
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "ERR Syntax error in HELLO option '%.*s'",
                     (int)(a->lens[i] > 32 ? 32 : a->lens[i]), a->argv[i]);
            client_reply_error(c, msg);
            return;
        }
    }
    c->proto = proto;
    struct resp_buf b = {0};
    resp_write_map_head(&b, proto, 7);
    write_str_field(&b, "server", "ringslot");
    /* the backend's version, as INFO's redis_version: clients gate
     * features on it (ringslot's own is INFO's ringslot_version) */
    write_str_field(&b, "version", info_redis_version(w->topo));
    resp_write_bulk(&b, "proto", 5);
    resp_write_integer(&b, proto);
    resp_write_bulk(&b, "id", 2);
    resp_write_integer(&b, (long long)c->id);
    write_str_field(&b, "mode", "cluster");
    write_str_field(&b, "role", "master");
    resp_write_bulk(&b, "modules", 7);
    resp_write_array_head(&b, 0);
    client_reply_buf(c, &b);
}

/* ------------------------------------------------------------------------ */
/* INFO and PROXY INFO                                                       */



/* Which sections INFO's arguments name (Redis 7: several, any case;
 * unknown names add nothing). */
static unsigned info_sections(struct worker *w, size_t first, const struct cmd_args *a, bool proxy)
{
    static const struct { const char *name; unsigned bits; } names[] = {
        {"server", INFO_SERVER}, {"proxy", INFO_SERVER}, {"clients", INFO_CLIENTS},
        {"memory", INFO_MEMORY}, {"stats", INFO_STATS}, {"cluster", INFO_CLUSTER},
        {"keyspace", INFO_KEYSPACE}, {"default", INFO_ALL}, {"all", INFO_ALL},
        {"everything", INFO_ALL},
    };
    unsigned bits = a->argc > first ? 0 : INFO_ALL;
    for (size_t i = first; i < a->argc; i++)
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (arg_is(a, i, names[k].name))
                bits |= names[k].bits;
    return proxy ? bits & ~(unsigned)INFO_KEYSPACE : bits;
}

/* INFO [section …]: the proxy's sections; keyspace is the masters' INFO
 * keyspace summed (fanout.c). */
static void cmd_info(struct client *c, const struct cmd_args *a)
{
    unsigned bits = info_sections(c->w, 1, a, false);
    struct resp_buf text = {0};
    info_write(&(struct info_view){c->w->rt, c->w->topo, c->w->cfg, c->w->cmd_hooks->tls_stats_sum}, bits, false, &text);
    if (bits & INFO_KEYSPACE) {
        fanout_info(c, text.data ? text.data : "", text.len);
    } else {
        struct resp_buf b = {0};
        fanout_write_text(&b, c->proto, text.data ? text.data : "", text.len);
        client_reply_buf(c, &b);
    }
    resp_buf_free(&text);
}

/* ------------------------------------------------------------------------ */
/* CLIENT (the proxy's own clients)                                          */

static void client_help(struct client *c)
{
    static const char *lines[] = {
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME", "    Return the name of the current connection.",
        "ID", "    Return the ID of the current connection.",
        "INFO", "    Return information about the current client connection.",
        "KILL <ip:port>", "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options: ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE.",
        "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
        "    Return information about client connections of every proxy thread.",
        "NO-EVICT (ON|OFF)", "    Accepted; the proxy's clients are never evicted.",
        "NO-TOUCH (ON|OFF)", "    Accepted; keys are touched by the nodes as usual.",
        "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
        "SETINFO <option> <value>", "    Set LIB-NAME or LIB-VER of the current connection.",
        "SETNAME <name>", "    Assign the name <name> to the current connection.",
        "HELP", "    Print this help.",
    };
    struct resp_buf b = {0};
    resp_write_array_head(&b, (long long)(sizeof lines / sizeof lines[0]));
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        resp_write_simple(&b, lines[i]);
    client_reply_buf(c, &b);
}

/* Redis's rule for names and SETINFO values: printable, no spaces. */
static bool name_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '!' || s[i] > '~')
            return false;
    return true;
}

static void client_setname(struct client *c, const struct cmd_args *a)
{
    if (!name_ok(a->argv[2], a->lens[2])) {
        client_reply_error(c, "ERR Client names cannot contain spaces, newlines or "
                              "special characters.");
        return;
    }
    client_set_name(c, a->argv[2], a->lens[2]);
    reply_ok(c, a);
}

static void client_setinfo(struct client *c, const struct cmd_args *a)
{
    char **field = arg_is(a, 2, "lib-name") ? &c->lib_name
                 : arg_is(a, 2, "lib-ver") ? &c->lib_ver : NULL;
    if (!field) {
        char msg[128];
        snprintf(msg, sizeof msg, "ERR Unrecognized option '%.*s'",
                 (int)(a->lens[2] > 64 ? 64 : a->lens[2]), a->argv[2]);
        client_reply_error(c, msg);
        return;
    }
    if (!name_ok(a->argv[3], a->lens[3])) {
        client_reply_error(c, "ERR lib-name and lib-ver cannot contain spaces, newlines "
                              "or special characters.");
        return;
    }
    free(*field);
    *field = strndup(a->argv[3], a->lens[3]);
    reply_ok(c, a);
}

/* CLIENT REPLY OFF and SKIP are not answered themselves (client.c drops
 * the replies of the requests they cover). */
static void client_reply_mode(struct client *c, const struct cmd_args *a)
{
    if (arg_is(a, 2, "on")) {
        c->reply_mode = CLIENT_REPLY_ON;
        reply_ok(c, a);
    } else if (arg_is(a, 2, "off")) {
        c->reply_mode = CLIENT_REPLY_OFF;
    } else if (arg_is(a, 2, "skip")) {
        if (c->reply_mode != CLIENT_REPLY_OFF)
            c->reply_mode = CLIENT_REPLY_SKIP;
    } else {
        client_reply_error(c, "ERR syntax error");
    }
}

static void client_on_off(struct client *c, const struct cmd_args *a)
{
    if (arg_is(a, 2, "on") || arg_is(a, 2, "off"))
        reply_ok(c, a);
    else
        client_reply_error(c, "ERR syntax error");
}

static void client_info_reply(struct client *c)
{
    struct resp_buf line = {0}, b = {0};
    client_info_line(c, &line, "client|info");
    resp_buf_append(&line, "\n", 1);
    fanout_write_text(&b, c->proto, line.data, line.len);
    resp_buf_free(&line);
    client_reply_buf(c, &b);
}

/* Subcommands with a fixed number of arguments: name, a->argc, handler. */
static bool client_simple(struct client *c, const struct cmd_args *a)
{
    if (a->argc == 2 && arg_is(a, 1, "id")) {
        struct resp_buf b = {0};
        resp_write_integer(&b, (long long)c->id);
        client_reply_buf(c, &b);
    } else if (a->argc == 2 && arg_is(a, 1, "getname")) {
        if (c->name) {
            reply_bulk(c, c->name, strlen(c->name));
        } else {
            struct resp_buf b = {0};
            resp_write_null(&b, c->proto);
            client_reply_buf(c, &b);
        }
    } else if (a->argc == 3 && arg_is(a, 1, "setname")) {
        client_setname(c, a);
    } else if (a->argc == 4 && arg_is(a, 1, "setinfo")) {
        client_setinfo(c, a);
    } else if (a->argc == 2 && arg_is(a, 1, "info")) {
        client_info_reply(c);
    } else if (a->argc == 3 && arg_is(a, 1, "reply")) {
        client_reply_mode(c, a);
    } else if (a->argc == 3 && (arg_is(a, 1, "no-evict") || arg_is(a, 1, "no-touch"))) {
        client_on_off(c, a);
    } else if (a->argc == 2 && arg_is(a, 1, "help")) {
        client_help(c);
    } else {
        return false;
    }
    return true;
}

/* Features that need a connection of the client's own to every node. */
static bool client_refused(struct client *c, const struct cmd_args *a)
{
    if (arg_is(a, 1, "tracking") || arg_is(a, 1, "caching") ||
        arg_is(a, 1, "trackinginfo") || arg_is(a, 1, "getredir")) {
        client_reply_error(c, "ERR CLIENT TRACKING is not supported by ringslot: "
                              "client-side caching needs the client's own connection "
                              "to every node");
        return true;
    }
    if (arg_is(a, 1, "pause") || arg_is(a, 1, "unpause") || arg_is(a, 1, "unblock")) {
        char msg[160];
        snprintf(msg, sizeof msg, "ERR CLIENT %.*s is not supported by ringslot",
                 (int)(a->lens[1] > 32 ? 32 : a->lens[1]), a->argv[1]);
        client_reply_error(c, msg);
        return true;
    }
    return false;
}

static void cmd_client(struct client *c, const struct cmd_args *a)
{
    if (a->argc < 2) {
        dispatch_wrong_arity(c, a);
    } else if (client_simple(c, a) || client_refused(c, a)) {
        return;
    } else if (arg_is(a, 1, "list")) {
        xworker_client_list(c, a);
    } else if (arg_is(a, 1, "kill") && a->argc >= 3) {
        xworker_client_kill(c, a);
    } else {
        char msg[200];
        /* Redis 7's text: a known subcommand's arity was checked before */
        snprintf(msg, sizeof msg, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
                 (int)(a->lens[1] > 128 ? 128 : a->lens[1]), a->argv[1]);
        client_reply_error(c, msg);
    }
}

/*
 * Container commands whose subcommands differ in where they go:
 *
 *   SUB_NODES         every node, replicas too: state that must survive a
 *                     failover (ACL users, CONFIG SET / REWRITE)
 *   SUB_MASTERS       every master: what changes or reports the keyspace
 *                     side (SCRIPT, FUNCTION, PUBSUB, SLOWLOG, RESETSTAT)
 *   SUB_FIRST_MASTER  the first master only, every time, so two reads
 *                     agree (ACL GETUSER/LIST/USERS, CONFIG GET)
 *
 * merged as given; any other subcommand (SCRIPT DEBUG, FUNCTION LIST,
 * PUBSUB HELP, ACL CAT …) goes to any one master.
 */
static const struct proxy_subcommand acl_subs[] = {
    {"deluser", MERGE_MAX, FAN_NODES}, {"load", MERGE_OK, FAN_NODES},
    {"save", MERGE_OK, FAN_NODES}, {"setuser", MERGE_OK, FAN_NODES},
    {"dryrun", MERGE_FIRST, FAN_FIRST_MASTER}, {"getuser", MERGE_FIRST, FAN_FIRST_MASTER},
    {"list", MERGE_FIRST, FAN_FIRST_MASTER}, {"users", MERGE_FIRST, FAN_FIRST_MASTER},
    {NULL, 0, 0},
};
static const struct proxy_subcommand config_subs[] = {
    {"set", MERGE_OK, FAN_NODES}, {"rewrite", MERGE_OK, FAN_NODES},
    {"resetstat", MERGE_OK, FAN_MASTERS}, {"get", MERGE_CONFIG_GET, FAN_FIRST_MASTER},
    {NULL, 0, 0},
};
static const struct proxy_subcommand function_subs[] = {
    {"load", MERGE_FIRST, FAN_MASTERS}, {"delete", MERGE_OK, FAN_MASTERS},
    {"flush", MERGE_OK, FAN_MASTERS}, {"restore", MERGE_OK, FAN_MASTERS},
    {NULL, 0, 0},
};
static const struct proxy_subcommand pubsub_subs[] = {
    {"numsub", MERGE_PAIRS, FAN_MASTERS}, {"shardnumsub", MERGE_PAIRS, FAN_MASTERS},
    {"numpat", MERGE_SUM, FAN_MASTERS}, {"channels", MERGE_UNION, FAN_MASTERS},
    {"shardchannels", MERGE_UNION, FAN_MASTERS},
    {NULL, 0, 0},
};
static const struct proxy_subcommand script_subs[] = {
    {"exists", MERGE_AND_ARRAY, FAN_MASTERS}, {"load", MERGE_FIRST, FAN_MASTERS},
    {"flush", MERGE_OK, FAN_MASTERS}, {"kill", MERGE_OK, FAN_MASTERS},
    {NULL, 0, 0},
};
static const struct proxy_subcommand slowlog_subs[] = {
    {"get", MERGE_SLOWLOG, FAN_MASTERS}, {"len", MERGE_SUM, FAN_MASTERS},
    {"reset", MERGE_OK, FAN_MASTERS},
    {NULL, 0, 0},
};

static void fan_out(struct client *c, const struct cmd_args *a, enum fan_target to,
                    enum merge_kind kind)
{
    if (to == FAN_NODES)
        fanout_all_nodes(c, a, kind);
    else if (to == FAN_MASTERS)
        fanout_all_masters(c, a, kind);
    else
        fanout_first_master(c, a, kind);
}

/* The row's subcommand, where it goes and how it merges; or any master. */
static void by_subcommand(struct client *c, const struct cmd_args *a)
{
    const struct proxy_command *pc = proxy_command_lookup(a->argv[0], a->lens[0]);
    for (const struct proxy_subcommand *sub = pc->subs; a->argc >= 2 && sub && sub->name; sub++)
        if (arg_is(a, 1, sub->name)) {
            fan_out(c, a, sub->to, sub->merge);
            return;
        }
    dispatch_forward_any(c, a);
}

/* CONFIG: requirepass is the proxy's own (admin.c); RESETSTAT also starts
 * the proxy's INFO counters again; the rest as the table's row says. */
static void cmd_config(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    if (a->argc >= 2 && arg_is(a, 1, "set") && admin_config_set(c, a))
        return;
    if (a->argc == 2 && arg_is(a, 1, "resetstat"))
        stats_reset(w->rt);
    by_subcommand(c, a);
}

/* ACL: WHOAMI is the proxy's answer; changing the user ringslot connects
 * as is refused (admin.c); the rest as the table's row says. */
static void cmd_acl(struct client *c, const struct cmd_args *a)
{
    if (a->argc >= 2 && arg_is(a, 1, "whoami"))
        admin_acl_whoami(c, a);
    else if (a->argc < 2 || !admin_acl_refused(c, a))
        by_subcommand(c, a);
}

/* ------------------------------------------------------------------------ */
/* PROXY                                                                     */

/* redis-cluster-proxy's error for a bad PROXY call. */
static void unknown_subcommand(struct client *c, const char *cmd, const char *help)
{
    char msg[200];
    snprintf(msg, sizeof msg, "ERR Unknown subcommand or wrong number of arguments for "
             "'%s'. Try %s", cmd, help);
    client_reply_error(c, msg);
}

static void reply_status_array(struct client *c, const char *const *lines, size_t n)
{
    struct resp_buf b = {0};
    resp_write_array_head(&b, (long long)n);
    for (size_t i = 0; i < n; i++)
        resp_write_simple(&b, lines[i]);
    client_reply_buf(c, &b);
}

static void proxy_help(struct client *c)
{
    static const char *const lines[] = {
        "PROXY <subcommand> arg arg ... arg",
        "INFO   [section]           -- Get info about Proxy",
        "CONFIG GET <param>         -- Get Proxy's configuration value for <param>",
        "CONFIG SET <param> <value> -- Set Proxy's configuration value for <param> to <value>",
        "MULTIPLEXING STATUS|OFF    -- Get current client's multiplexing status or turn it "
        "off (private cluster connection)",
        "COMMAND [type]             -- List commands currently known by the Proxy. type can "
        "be used to filter commands (unsupported|crossslots-unsupported)",
        "CLIENT <subcmd>            -- Execute client specific actions (type `PROXY CLIENT "
        "HELP` for more info)",
        "CLUSTER [subcmd]           -- Execute cluster specific actions (type `PROXY CLUSTER "
        "HELP` for more info)",
        "DEBUG <subcmd>             -- Utilities for debugging the proxy (type `PROXY DEBUG "
        "HELP` for more info)",
        "SHUTDOWN [ASAP]            -- Shutdown the proxy. If `ASAP` is used, exit at once, "
        "otherwise finish what is in flight first.",
        "LOG [level] <message>      -- Log message to Proxy's log, for debugging purpose",
        "PING                       -- Reply PONG",
    };
    reply_status_array(c, lines, sizeof lines / sizeof lines[0]);
}

static void proxy_info(struct client *c, const struct cmd_args *a)
{
    if (a->argc > 3) {
        unknown_subcommand(c, "PROXY INFO", "PROXY HELP");
        return;
    }
    struct resp_buf text = {0}, b = {0};
    info_write(&(struct info_view){c->w->rt, c->w->topo, c->w->cfg, c->w->cmd_hooks->tls_stats_sum},
               info_sections(c->w, 2, a, true), true, &text);
    resp_write_bulk(&b, text.data ? text.data : "", text.len);
    resp_buf_free(&text);
    client_reply_buf(c, &b);
}

static void proxy_multiplexing(struct client *c, const struct cmd_args *a)
{
    if (a->argc == 3 && arg_is(a, 2, "off")) {
        c->multiplex_off = true;
        client_reply_bytes(c, "+OK\r\n", 5);
    } else if (a->argc == 3 && arg_is(a, 2, "status")) {
        if (c->multiplex_off)
            client_reply_bytes(c, "+off\r\n", 6);
        else
            client_reply_bytes(c, "+on\r\n", 5);
    } else {
        unknown_subcommand(c, "PROXY MULTIPLEXING", "PROXY HELP");
    }
}

static bool proxy_refuses(const char *name);

/* Commands with several keys that cannot be split across slots (the
 * table's rows say which can). */
static bool crossslot_unsupported(const struct command_info *ci)
{
    bool multi = (ci->flags & CMD_MOVABLE_KEYS) ||
                 (ci->first_key > 0 && (ci->last_key < 0 || ci->last_key > ci->first_key));
    const struct proxy_command *pc = proxy_command_lookup(ci->name, strlen(ci->name));
    return multi && !(pc && pc->split);
}

/* PROXY COMMAND [UNSUPPORTED|CROSSSLOTS-UNSUPPORTED]: redis-cluster-proxy's
 * rows [name, arity, first key, last key, step, unsupported]. */
static void proxy_command(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    bool only_unsupported = a->argc == 3 && arg_is(a, 2, "unsupported");
    bool only_cross = a->argc == 3 && arg_is(a, 2, "crossslots-unsupported");
    if (a->argc > 3 || (a->argc == 3 && !only_unsupported && !only_cross)) {
        client_reply_error(c, "ERR Invalid argument `TYPE` for `PROXY COMMAND`. Supported "
                              "types: unsupported, crossslots-unsupported");
        return;
    }
    struct resp_buf rows = {0}, b = {0};
    long long n = 0;
    for (size_t i = 0; i < command_table_size(w->cmds); i++) {
        const struct command_info *ci = command_table_at(w->cmds, i);
        bool unsupported = proxy_refuses(ci->name);
        if ((only_unsupported && !unsupported) || (only_cross && !crossslot_unsupported(ci)))
            continue;
        resp_write_array_head(&rows, 6);
        resp_write_simple(&rows, ci->name);
        resp_write_integer(&rows, ci->arity);
        resp_write_integer(&rows, ci->first_key);
        resp_write_integer(&rows, ci->last_key);
        resp_write_integer(&rows, ci->key_step);
        resp_write_integer(&rows, unsupported);
        n++;
    }
    resp_write_array_head(&b, n);
    resp_buf_append(&b, rows.data, rows.len);
    resp_buf_free(&rows);
    client_reply_buf(c, &b);
}

/* PROXY CLIENT ID|THREAD|HELP: ids as redis-cluster-proxy shows them,
 * "thread:id". */
static void proxy_client(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    struct resp_buf b = {0};
    if (a->argc == 3 && arg_is(a, 2, "id")) {
        char id[48];
        snprintf(id, sizeof id, "%d:%llu", w->id, (unsigned long long)c->id);
        resp_write_simple(&b, id);
    } else if (a->argc == 3 && arg_is(a, 2, "thread")) {
        resp_write_integer(&b, w->id);
    } else if (a->argc == 3 && arg_is(a, 2, "help")) {
        static const char *const lines[] = {
            "PROXY CLIENT <subcommand> [arg arg ... arg]",
            "ID     -- Get current client's internal id",
            "THREAD -- Get current client's thread id",
        };
        reply_status_array(c, lines, 3);
        return;
    } else {
        unknown_subcommand(c, "PROXY CLIENT", "PROXY CLIENT HELP");
        return;
    }
    client_reply_buf(c, &b);
}

/* One master as redis-cluster-proxy lists it: name ip port slots replicas
 * connected (is this worker's shared link to it up). */
static void cluster_node_row(struct worker *w, struct resp_buf *b, unsigned m)
{
    const struct cluster_topology *t = w->topo;
    const struct cluster_node *n = &t->nodes[m];
    long long slots = 0, replicas = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        slots += t->slot_master[s] == m;
    for (size_t i = t->nmasters; i < t->nnodes; i++)
        replicas += !t->nodes[i].is_master && t->nodes[i].master == m;
    bool connected = false;
    for (struct link *l = w->links; l; l = l->next)
        connected = connected || (l->kind == LINK_SHARED && l->state == LINK_READY &&
                                  strcmp(l->addr, n->addr) == 0);
    resp_write_array_head(b, 12);
    resp_write_simple(b, "name");
    resp_write_simple(b, n->id[0] ? n->id : n->addr);
    resp_write_simple(b, "ip");
    resp_write_simple(b, n->host);
    resp_write_simple(b, "port");
    resp_write_integer(b, n->port);
    resp_write_simple(b, "slots");
    resp_write_integer(b, slots);
    resp_write_simple(b, "replicas");
    resp_write_integer(b, replicas);
    resp_write_simple(b, "connected");
    resp_write_integer(b, connected);
}

/* PROXY CLUSTER [INFO|STATUS|CONNECTION|NODES]: a flat array of
 * name/value pairs, as redis-cluster-proxy replies. */
static void proxy_cluster_info(struct client *c, bool status, bool conn, bool nodes)
{
    struct worker *w = c->w;
    const struct cluster_topology *t = w->topo;
    struct resp_buf b = {0};
    resp_write_array_head(&b, 2 * (status + conn + nodes));
    if (status) {
        resp_write_simple(&b, "status");
        resp_write_simple(&b, !t || cluster_topology_covered(t) < CLUSTER_SLOTS
                                  ? "broken" : "updated");
    }
    if (conn) {
        resp_write_simple(&b, "connection");
        resp_write_simple(&b, c->multiplex_off || c->plinks ? "private" : "shared");
    }
    if (nodes) {
        resp_write_simple(&b, "nodes");
        if (!t) {
            resp_write_null(&b, c->proto);
        } else {
            resp_write_array_head(&b, (long long)t->nmasters);
            for (unsigned m = 0; m < t->nmasters; m++)
                cluster_node_row(w, &b, m);
        }
    }
    client_reply_buf(c, &b);
}

static void proxy_cluster(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    if (a->argc == 2 || (a->argc == 3 && arg_is(a, 2, "info"))) {
        proxy_cluster_info(c, true, true, true);
    } else if (a->argc == 3 && arg_is(a, 2, "status")) {
        proxy_cluster_info(c, true, false, false);
    } else if (a->argc == 3 && arg_is(a, 2, "connection")) {
        proxy_cluster_info(c, false, true, false);
    } else if (a->argc == 3 && arg_is(a, 2, "nodes")) {
        proxy_cluster_info(c, false, false, true);
    } else if (a->argc == 3 && arg_is(a, 2, "update")) {
        /* The control thread refreshes in the background; rcp's "started". */
        control_request_refresh(w->rt, w->id, NULL);
        client_reply_bytes(c, "+started\r\n", 10);
    } else if (a->argc == 3 && arg_is(a, 2, "help")) {
        static const char *const lines[] = {
            "PROXY CLUSTER [subcommand]",
            "-,INFO     -- Get info for the cluster associated with the calling client",
            "STATUS     -- Get status for the cluster associated with the calling client. "
            "Status can be: updated|updating|broken",
            "CONNECTION -- Get the connection type for the cluster associated with the "
            "calling client. Type can be: shared|private",
            "NODES      -- Get a list of the master nodes of the cluster associated with "
            "the calling client.",
            "UPDATE     -- Request an update of the configuration for the cluster.",
        };
        reply_status_array(c, lines, sizeof lines / sizeof lines[0]);
    } else {
        unknown_subcommand(c, "PROXY CLUSTER", "PROXY CLUSTER HELP");
    }
}

#define PROXY_LOG_MAX_LEN 4096

/* PROXY LOG [level] message: written to the proxy's log at that level
 * (default debug, as redis-cluster-proxy). */
static void proxy_log(struct client *c, const struct cmd_args *a)
{
    static const char *const levels[] = {"debug", "info", "success", "warning", "error"};
    if (a->argc != 3 && a->argc != 4) {
        unknown_subcommand(c, "PROXY LOG", "PROXY HELP");
        return;
    }
    int level = LOG_DEBUG;
    if (a->argc == 4) {
        level = -1;
        for (int i = 0; i < 5; i++)
            if (arg_is(a, 2, levels[i]))
                level = i;
        if (level < 0) {
            client_reply_error(c, "ERR Invalid log level, valid level names: debug, info, "
                                  "success, warning, error");
            return;
        }
    }
    size_t mi = a->argc - 1;
    if (a->lens[mi] > PROXY_LOG_MAX_LEN) {
        client_reply_error(c, "ERR Log message too long!");
        return;
    }
    if ((enum log_level)level >= log_get_level())
        log_msg((enum log_level)level, "%.*s", (int)a->lens[mi], a->argv[mi]);
    reply_ok(c, a);
}

static void cmd_proxy(struct client *c, const struct cmd_args *a)
{
    if (admin_proxy_command(c, a)) /* CONFIG, SHUTDOWN, DEBUG, AUTH */
        return;
    if (a->argc < 2)
        unknown_subcommand(c, "PROXY", "PROXY HELP");
    else if (arg_is(a, 1, "multiplexing"))
        proxy_multiplexing(c, a);
    else if (arg_is(a, 1, "info"))
        proxy_info(c, a);
    else if (arg_is(a, 1, "ping") && a->argc == 2)
        client_reply_bytes(c, "+PONG\r\n", 7);
    else if (arg_is(a, 1, "command"))
        proxy_command(c, a);
    else if (arg_is(a, 1, "client") && a->argc >= 3)
        proxy_client(c, a);
    else if (arg_is(a, 1, "cluster"))
        proxy_cluster(c, a);
    else if (arg_is(a, 1, "log"))
        proxy_log(c, a);
    else if (arg_is(a, 1, "help") && a->argc == 2)
        proxy_help(c);
    else if (arg_is(a, 1, "client"))
        unknown_subcommand(c, "PROXY CLIENT", "PROXY CLIENT HELP");
    else
        unknown_subcommand(c, "PROXY", "PROXY HELP");
}

/* ------------------------------------------------------------------------ */
/* Every master                                                              */

/* Every master, merged as the table's row says. */
static void all_masters(struct client *c, const struct cmd_args *a)
{
    const struct proxy_command *pc = proxy_command_lookup(a->argv[0], a->lens[0]);
    fanout_all_masters(c, a, pc->merge);
}

/* In cluster mode, DBSIZE and RANDOMKEY cover this proxy's own slots
 * (clustermode.c); KEYS and SCAN are filtered by fanout.c. */
static void cmd_dbsize(struct client *c, const struct cmd_args *a)
{
    if (!clustermode_dbsize(c, a))
        fanout_all_masters(c, a, MERGE_SUM);
}

static void cmd_randomkey(struct client *c, const struct cmd_args *a)
{
    if (!clustermode_randomkey(c, a))
        fanout_all_masters(c, a, MERGE_FIRST_NONNULL);
}



static void cmd_scan(struct client *c, const struct cmd_args *a)
{
    if (a->argc < 2)
        dispatch_wrong_arity(c, a);
    else
        fanout_scan(c, a);
}

/* WAIT covers the writes of the connection it runs on: ask every shared
 * link this client wrote through, with the timeout capped so the link's
 * other clients are never held up for long; the minimum is the answer
 * (it may under-report durability, never over-report it). */
static void cmd_wait(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    if (a->argc != 3) {
        dispatch_wrong_arity(c, a);
        return;
    }
    char *end;
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)(a->lens[2] < 31 ? a->lens[2] : 31),
             a->argv[2]);
    long long timeout = strtoll(num, &end, 10);
    if (*end || timeout < 0) {
        client_reply_error(c, "ERR timeout is not an integer or out of range");
        return;
    }
    long long cap = w->cfg->wait_timeout_cap_ms;
    if (timeout == 0 || timeout > cap)
        timeout = cap;
    int n = snprintf(num, sizeof num, "%lld", timeout);
    /* the same call with the capped timeout */
    const char *argv[3] = {a->argv[0], a->argv[1], num};
    size_t lens[3] = {a->lens[0], a->lens[1], (size_t)n};
    const struct cmd_args capped = {.argc = 3, .argv = argv, .lens = lens};
    a = &capped;
    if (c->written_all) {
        /* wrote through more links than remembered: ask every master, so
         * the answer can only under-report */
        fanout_all_masters(c, a, MERGE_MIN);
    } else if (c->nwritten == 0) {
        dispatch_forward_any(c, a);
    } else {
        fanout_to_links(c, a, c->written, c->nwritten, MERGE_MIN);
    }
    c->nwritten = 0;
    c->written_all = false;
}

static void refused(struct client *c, const struct cmd_args *a)
{
    char name[33], msg[160];
    cluster_lower(name, sizeof name, a->argv[0], a->lens[0]);
    snprintf(msg, sizeof msg, "ERR command '%s' is not supported by ringslot", name);
    client_reply_error(c, msg);
}

/* ------------------------------------------------------------------------ */
/* MULTI / EXEC                                                              */

static void multi_reset(struct client *c)
{
    c->in_multi = false;
    c->multi_abort = false;
    c->multi_slot = -1;
    c->multi_cmds = 0;
    c->multi_buf.len = 0;
}

static void cmd_multi(struct client *c, const struct cmd_args *a)
{
    if (c->in_multi) {
        client_reply_error(c, "ERR MULTI calls can not be nested");
        return;
    }
    multi_reset(c);
    c->in_multi = true;
    client_reply_bytes(c, "+OK\r\n", 5);
}

/* Forward a fixed command on link l, in the client's FIFO. */
static void forward_words(struct client *c, struct link *l, const char *word)
{
    const char *av[1] = {word};
    size_t al[1] = {strlen(word)};
    struct request *r = request_from_args(c->w, 1, av, al);
    client_append(c, r);
    link_enqueue(l, r);
}

static void cmd_discard(struct client *c, const struct cmd_args *a)
{
    if (!c->in_multi) {
        client_reply_error(c, "ERR DISCARD without MULTI");
        return;
    }
    multi_reset(c);
    if (c->watch_link) { /* DISCARD unwatches: UNWATCH answers +OK too */
        struct link *l = c->watch_link;
        c->watch_link = NULL;
        forward_words(c, l, "UNWATCH");
        return;
    }
    client_reply_bytes(c, "+OK\r\n", 5);
}

static void cmd_unwatch(struct client *c, const struct cmd_args *a)
{
    if (c->watch_link) {
        struct link *l = c->watch_link;
        c->watch_link = NULL; /* given back once the reply is in */
        dispatch_forward_on(c, a, l);
        return;
    }
    client_reply_bytes(c, "+OK\r\n", 5);
}

/* RESET: back to a fresh connection's state. Links holding WATCH or
 * subscriptions are closed rather than cleaned. */
static void cmd_reset(struct client *c, const struct cmd_args *a)
{
    multi_reset(c);
    c->multiplex_off = c->w->rt->cfg->disable_multiplexing == CONFIG_MULTIPLEXING_ALWAYS;
    c->watch_link = NULL;
    while (c->plinks)
        link_giveback(c->plinks);
    c->pubsub = PUBSUB_NONE; /* its subscriber links were closed */
    c->nwritten = 0;
    c->written_all = false;
    /* as Redis's RESET: RESP2, no name, replies on */
    c->proto = 2;
    auth_put(c->auth); /* back to the configured backend identity */
    c->auth = NULL;
    client_set_name(c, NULL, 0);
    c->reply_mode = CLIENT_REPLY_ON;
    c->reads = CLIENT_READS_DEFAULT; /* as Redis's RESET: READWRITE's state */
    client_reply_bytes(c, "+RESET\r\n", 8);
}

static void cmd_exec(struct client *c, const struct cmd_args *a)
{
    if (!c->in_multi) {
        client_reply_error(c, "ERR EXEC without MULTI");
        return;
    }
    if (c->multi_abort) {
        multi_reset(c);
        client_reply_error(c, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    dispatch_exec(c);
    multi_reset(c);
}

/* ------------------------------------------------------------------------ */
/* Table (sorted by name)                                                    */

static const struct proxy_command table[] = {
    {"acl", cmd_acl, .subs = acl_subs},
    {"asking", reply_ok, .flags = 0},
    {"auth", admin_cmd_auth, .flags = 0},
    {"bgrewriteaof", all_masters, .merge = MERGE_OK},
    {"bgsave", all_masters, .merge = MERGE_FIRST},
    {"client", cmd_client, .flags = 0},
    {"cluster", clustermode_command, .flags = 0},
    {"config", cmd_config, .subs = config_subs},
    {"dbsize", cmd_dbsize, .flags = 0},
    {"debug", refused, .flags = PC_REFUSED},
    {"del", NULL, .split = 1, .split_merge = MERGE_SUM},
    {"discard", cmd_discard, .flags = PC_MULTI_CONTROL},
    {"echo", cmd_echo, .flags = 0},
    {"exec", cmd_exec, .flags = PC_MULTI_CONTROL},
    {"exists", NULL, .split = 1, .split_merge = MERGE_SUM},
    {"failover", refused, .flags = PC_REFUSED},
    {"flushall", all_masters, .merge = MERGE_OK},
    {"flushdb", all_masters, .merge = MERGE_OK},
    {"function", by_subcommand, .subs = function_subs},
    {"hello", cmd_hello, .flags = 0},
    {"info", cmd_info, .flags = 0},
    {"keys", all_masters, .merge = MERGE_CONCAT},
    {"lastsave", all_masters, .merge = MERGE_MIN},
    {"mget", NULL, .split = 1, .split_merge = MERGE_MGET},
    {"monitor", refused, .flags = PC_REFUSED},
    {"mset", NULL, .split = 2, .split_merge = MERGE_OK},
    {"multi", cmd_multi, .flags = PC_MULTI_CONTROL},
    {"ping", cmd_ping_maybe_subscribed, .flags = 0},
    {"proxy", cmd_proxy, .flags = 0},
    {"psubscribe", pubsub_cmd_subscribe, .flags = 0},
    {"psync", refused, .flags = PC_REFUSED},
    {"publish", pubsub_cmd_publish, .flags = 0},
    {"pubsub", by_subcommand, .subs = pubsub_subs},
    {"punsubscribe", pubsub_cmd_unsubscribe, .flags = 0},
    {"quit", cmd_quit, .flags = PC_MULTI_CONTROL},
    {"randomkey", cmd_randomkey, .flags = 0},
    {"readonly", replica_command, .flags = 0},
    {"readwrite", replica_command, .flags = 0},
    {"replconf", refused, .flags = PC_REFUSED},
    {"replicaof", refused, .flags = PC_REFUSED},
    {"reset", cmd_reset, .flags = PC_MULTI_CONTROL},
    {"save", all_masters, .merge = MERGE_OK},
    {"scan", cmd_scan, .flags = 0},
    {"script", by_subcommand, .subs = script_subs},
    {"select", cmd_select, .flags = 0},
    {"shutdown", refused, .flags = PC_REFUSED},
    {"slaveof", refused, .flags = PC_REFUSED},
    {"slowlog", by_subcommand, .subs = slowlog_subs},
    {"ssubscribe", pubsub_cmd_ssubscribe, .flags = 0},
    {"subscribe", pubsub_cmd_subscribe, .flags = 0},
    {"sunsubscribe", pubsub_cmd_sunsubscribe, .flags = 0},
    {"sync", refused, .flags = PC_REFUSED},
    {"touch", NULL, .split = 1, .split_merge = MERGE_SUM},
    {"unlink", NULL, .split = 1, .split_merge = MERGE_SUM},
    {"unsubscribe", pubsub_cmd_unsubscribe, .flags = 0},
    {"unwatch", cmd_unwatch, .flags = 0},
    {"wait", cmd_wait, .flags = 0},
};

static bool proxy_refuses(const char *name)
{
    const struct proxy_command *pc = proxy_command_lookup(name, strlen(name));
    return pc && (pc->flags & PC_REFUSED);
}

/*
 * The table's index: open addressing over the names' FNV-1a hashes, built
 * once (the table is constant, and so is its index) and only read after.
 * Every command is looked up here, most of them to miss: a miss usually
 * costs one probe and no string comparison (a binary search made about
 * six strcmp calls).
 */
#define INDEX_SIZE 256 /* a power of two, over twice the table's rows */
#define TABLE_LEN (sizeof table / sizeof table[0])

struct index_slot {
    uint32_t hash;
    uint8_t len;
    uint8_t row; /* table row + 1; 0: empty */
};

static struct index_slot table_index[INDEX_SIZE];
static pthread_once_t table_index_once = PTHREAD_ONCE_INIT;

static uint32_t fnv1a_step(uint32_t h, unsigned char ch)
{
    return (h ^ ch) * 16777619u;
}

static void build_table_index(void)
{
    static_assert(TABLE_LEN * 2 <= INDEX_SIZE && TABLE_LEN < 255, "index too small");
    for (size_t row = 0; row < TABLE_LEN; row++) {
        const char *name = table[row].name;
        uint32_t h = 2166136261u;
        size_t len = strlen(name);
        assert(len > 0 && len < NAME_MAX_LEN);
        for (size_t i = 0; i < len; i++)
            h = fnv1a_step(h, (unsigned char)name[i]);
        size_t i = h & (INDEX_SIZE - 1);
        while (table_index[i].row != 0) {
            assert(strcmp(table[table_index[i].row - 1].name, name) != 0); /* no duplicates */
            i = (i + 1) & (INDEX_SIZE - 1);
        }
        table_index[i] = (struct index_slot){.hash = h, .len = (uint8_t)len,
                                             .row = (uint8_t)(row + 1)};
    }
}

const struct proxy_command *proxy_command_lookup(const char *name, size_t len)
{
    pthread_once(&table_index_once, build_table_index);
    char lower[NAME_MAX_LEN];
    if (len == 0 || len >= sizeof lower)
        return NULL;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
        h = fnv1a_step(h, (unsigned char)lower[i]);
    }
    for (size_t i = h & (INDEX_SIZE - 1);; i = (i + 1) & (INDEX_SIZE - 1)) {
        const struct index_slot *e = &table_index[i];
        if (e->row == 0)
            return NULL;
        if (e->hash == h && e->len == len && memcmp(table[e->row - 1].name, lower, len) == 0)
            return &table[e->row - 1];
    }
}
