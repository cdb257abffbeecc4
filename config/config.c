/*
 * config.c — defaults and the command line (config.h).
 *
 * Options come from one table (name, short name, kind, field, bounds), so
 * adding an option is one line there plus one in the usage text. The parser
 * is a plain loop over argv, not getopt: it keeps no state between calls
 * (the tests call it many times) and accepts both "--opt value" and
 * "--opt=value", "-p 7000" and "-p7000". Everything that is not an option
 * is a list of entry points; "--" ends the options.
 *
 * Errors are reported as text in the caller's buffer; nothing here prints
 * or exits.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"

#define MAX_THREADS 256

enum opt_kind {
    OPT_FLAG,     /* bool, no value */
    OPT_INT,      /* int within [min, max] */
    OPT_BYTES,    /* long long with Redis memory units, within [min, max] */
    OPT_LOGLEVEL, /* enum log_level by name */
    OPT_STRING,   /* char[size] */
    OPT_BIND,     /* appended to binds[] */
};

struct opt_def {
    const char *name;  /* long name, without "--" */
    char short_name;   /* 0 if none */
    enum opt_kind kind;
    size_t offset;     /* field in struct config */
    size_t size;       /* OPT_STRING: the buffer's size */
    long long min, max;
    const char *what;  /* noun for "Invalid <what> '<value>'" */
};

#define FIELD(f) offsetof(struct config, f)

static const struct opt_def opt_table[] = {
    { "port", 'p', OPT_INT, FIELD(port), 0, 1, 65535, "port" },
    { "bind", 0, OPT_BIND, FIELD(binds), 0, 0, 0, "bind address" },
    { "threads", 0, OPT_INT, FIELD(threads), 0, 1, MAX_THREADS,
      "number of threads" },
    { "log-level", 0, OPT_LOGLEVEL, FIELD(log_level), 0, 0, 0, "log level" },
    { "logfile", 0, OPT_STRING, FIELD(logfile),
      sizeof(((struct config *)0)->logfile), 0, 0, "logfile" },
    { "maxclients", 0, OPT_INT, FIELD(maxclients), 0, 1, INT_MAX,
      "maxclients" },
    { "tcpkeepalive", 0, OPT_INT, FIELD(tcpkeepalive), 0, 0, INT_MAX,
      "tcpkeepalive" },
    { "tcp-backlog", 0, OPT_INT, FIELD(tcp_backlog), 0, 0, INT_MAX,
      "tcp-backlog" },
    { "connect-timeout", 0, OPT_INT, FIELD(connect_timeout_ms), 0, 1, INT_MAX,
      "connect-timeout" },
    { "backend-timeout", 0, OPT_INT, FIELD(backend_timeout_ms), 0, 0, INT_MAX,
      "backend-timeout" },
    { "proto-max-bulk-len", 0, OPT_BYTES, FIELD(proto_max_bulk_len), 0,
      1, LLONG_MAX, "proto-max-bulk-len" },
    { "client-query-buffer-limit", 0, OPT_BYTES,
      FIELD(client_query_buffer_limit), 0, 1, LLONG_MAX,
      "client-query-buffer-limit" },
    { "help", 'h', OPT_FLAG, FIELD(help), 0, 0, 0, NULL },
    { "version", 0, OPT_FLAG, FIELD(version), 0, 0, 0, NULL },
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))

static const char *const log_level_names[] = {
    [LOG_DEBUG] = "debug", [LOG_INFO] = "info", [LOG_SUCCESS] = "success",
    [LOG_WARNING] = "warning", [LOG_ERROR] = "error",
};

static const char usage_text[] =
"Usage: ringslot [OPTIONS] [node1_host:node1_port,node2_host:node2_port,...]\n"
"\n"
"A Redis Cluster proxy; its options are those of redis-cluster-proxy.\n"
"Entry points: host:port, [ipv6]:port, :port (meaning 127.0.0.1:port), a\n"
"unix socket path (anything containing '/'), or comma-separated lists of\n"
"those. Several may be given.\n"
"\n"
"  -p, --port <port>          TCP port to listen on (default: 7777)\n"
"  --bind <address>           Address to listen on; repeat the option for\n"
"                             several (default: all interfaces)\n"
"  --threads <n>              Number of worker threads, 1..256\n"
"                             (default: the number of online CPUs)\n"
"  --maxclients <n>           Maximum number of clients (default: 10000)\n"
"  --tcpkeepalive <seconds>   TCP keepalive interval, 0 = off (default: 300)\n"
"  --tcp-backlog <n>          TCP listen backlog (default: 511)\n"
"  --connect-timeout <ms>     Timeout for connecting to a cluster node\n"
"                             (default: 1000)\n"
"  --backend-timeout <ms>     Timeout for a cluster node's reply, 0 = off\n"
"                             (default: 0)\n"
"  --proto-max-bulk-len <bytes>\n"
"                             Largest bulk string a client may send\n"
"                             (default: 512mb)\n"
"  --client-query-buffer-limit <bytes>\n"
"                             Largest pending query of a client\n"
"                             (default: 1gb)\n"
"  --log-level <level>        Minimum log level (default: info)\n"
"                             (debug|info|success|warning|error)\n"
"  --logfile <path>           Log to this file (default: stdout)\n"
"  -h, --help                 Print this help and exit\n"
"  --version                  Print the version and exit\n"
"\n"
"Sizes take Redis memory units: 100k, 100kb, 512mb, 1gb (k = 1000,\n"
"kb = 1024). Any option may also be written --option=value.\n";

const char *config_usage(void)
{
    return usage_text;
}

void config_defaults(struct config *c)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    memset(c, 0, sizeof(*c));
    c->port = 7777;
    c->threads = cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
    c->log_level = LOG_INFO;
    c->maxclients = 10000;
    c->tcpkeepalive = 300;
    c->tcp_backlog = 511;
    c->proto_max_bulk_len = 512LL * 1024 * 1024;
    c->client_query_buffer_limit = 1024LL * 1024 * 1024;
    c->connect_timeout_ms = 1000;
    c->backend_timeout_ms = 0;
}

/* ---- values ------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Decimal digits only (no sign, no spaces) into *out; -1 on overflow.
 * *end is set to the first non-digit. */
static int parse_digits(const char *s, long long *out, const char **end)
{
    char *e;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    *out = strtoll(s, &e, 10);
    *end = e;
    return errno == ERANGE ? -1 : 0;
}

static int parse_number(const char *s, long long *out)
{
    const char *end;
    return parse_digits(s, out, &end) == 0 && *end == '\0' ? 0 : -1;
}

/* "512mb", "1gb", "100k", "42": Redis's memtoll units (k/m/g are powers of
 * 1000, kb/mb/gb of 1024), case-insensitive. */
static int parse_memory(const char *s, long long *out)
{
    static const struct { const char *unit; long long mul; } units[] = {
        { "", 1 }, { "b", 1 },
        { "k", 1000 }, { "kb", 1024 },
        { "m", 1000 * 1000 }, { "mb", 1024 * 1024 },
        { "g", 1000 * 1000 * 1000 }, { "gb", 1024LL * 1024 * 1024 },
    };
    const char *unit;
    long long n;

    if (parse_digits(s, &n, &unit) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(unit, units[i].unit) != 0)
            continue;
        if (n > LLONG_MAX / units[i].mul)
            return -1;
        *out = n * units[i].mul;
        return 0;
    }
    return -1;
}

static int parse_log_level(const char *s, enum log_level *out)
{
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (strcasecmp(s, log_level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Check `v` and store it into the option's field; on error, say why. */
static int set_value(struct config *c, const struct opt_def *o,
                     const char *v, char *err, size_t errlen)
{
    char *field = (char *)c + o->offset;
    long long n;

    switch (o->kind) {
    case OPT_INT:
        if (parse_number(v, &n) != 0 || n < o->min || n > o->max)
            return fail(err, errlen, "Invalid %s '%s' (%lld..%lld)",
                        o->what, v, o->min, o->max);
        *(int *)field = (int)n;
        return 0;
    case OPT_BYTES:
        if (parse_memory(v, &n) != 0 || n < o->min || n > o->max)
            return fail(err, errlen, "Invalid %s '%s' (bytes, or with a "
                        "unit: 100k, 512mb, 1gb)", o->what, v);
        *(long long *)field = n;
        return 0;
    case OPT_LOGLEVEL:
        if (parse_log_level(v, (enum log_level *)field) != 0)
            return fail(err, errlen, "Invalid %s '%s' "
                        "(debug|info|success|warning|error)", o->what, v);
        return 0;
    case OPT_STRING:
        if (strlen(v) >= o->size)
            return fail(err, errlen, "Invalid %s '%s' (longer than %zu)",
                        o->what, v, o->size - 1);
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OPT_BIND:
        if (c->nbinds >= CONFIG_MAX_BINDS)
            return fail(err, errlen, "Too many --bind addresses (max %d)",
                        CONFIG_MAX_BINDS);
        if (*v == '\0' || strlen(v) >= sizeof(c->binds[0]))
            return fail(err, errlen, "Invalid %s '%s'", o->what, v);
        memcpy(c->binds[c->nbinds++], v, strlen(v) + 1);
        return 0;
    case OPT_FLAG:
        break;
    }
    return fail(err, errlen, "internal error: option '--%s'", o->name);
}

/* ---- entry points ------------------------------------------------------- */

/* Port of an entry point: digits only, 1..65535. */
static int parse_port(const char *s, int *out)
{
    long long n;
    if (parse_number(s, &n) != 0 || n < 1 || n > 65535)
        return -1;
    *out = (int)n;
    return 0;
}

static int copy_host(struct entry_point *ep, const char *host, size_t len)
{
    if (len >= sizeof(ep->host))
        return -1;
    memcpy(ep->host, host, len);
    ep->host[len] = '\0';
    return 0;
}

int config_parse_address(const char *s, struct entry_point *out)
{
    struct entry_point ep = { .port = 0 };
    const char *host = s, *colon;
    size_t hostlen;

    if (strchr(s, '/') != NULL) { /* unix socket path, port 0 */
        if (copy_host(&ep, s, strlen(s)) != 0)
            return -1;
        *out = ep;
        return 0;
    }
    if (*s == '[') { /* "[v6]:port" */
        const char *close = strchr(s, ']');
        if (close == NULL || close == s + 1 || close[1] != ':')
            return -1;
        host = s + 1;
        hostlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hostlen = (size_t)(colon - s);
        /* An unbracketed IPv6 address is ambiguous with the port. */
        if (memchr(s, ':', hostlen) != NULL || memchr(s, ']', hostlen) != NULL)
            return -1;
        if (hostlen == 0) {
            host = "127.0.0.1";
            hostlen = strlen(host);
        }
    }
    if (copy_host(&ep, host, hostlen) != 0 || parse_port(colon + 1, &ep.port) != 0)
        return -1;
    *out = ep;
    return 0;
}

/* A positional argument: one entry point or a comma-separated list. */
static int add_entry_points(struct config *c, const char *arg,
                            char *err, size_t errlen)
{
    char item[512];

    for (const char *p = arg;; ) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

        if (len >= sizeof(item))
            return fail(err, errlen, "Invalid address '%.*s'", (int)len, p);
        memcpy(item, p, len);
        item[len] = '\0';
        if (c->nentry_points >= CONFIG_MAX_ENTRY_POINTS)
            return fail(err, errlen, "Too many entry points (max %d)",
                        CONFIG_MAX_ENTRY_POINTS);
        if (config_parse_address(item, &c->entry_points[c->nentry_points]) != 0)
            return fail(err, errlen, "Invalid address '%s'", item);
        c->nentry_points++;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* ---- options ------------------------------------------------------------ */

/* One option as written: its definition, the name as spelled (for
 * messages), and a value given in the same argument ("--port=1", "-p1"). */
struct opt_use {
    const struct opt_def *def;
    char spelled[64];
    const char *inline_value; /* NULL if none */
};

static const struct opt_def *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(opt_table[i].name) == len &&
            memcmp(opt_table[i].name, name, len) == 0)
            return &opt_table[i];
    return NULL;
}

static const struct opt_def *find_short(char ch)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (ch != 0 && opt_table[i].short_name == ch)
            return &opt_table[i];
    return NULL;
}

/* Split "--name[=value]" or "-x[value]" and look the option up. */
static int identify(const char *arg, struct opt_use *u, char *err, size_t errlen)
{
    if (arg[1] == '-') {
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        u->def = find_long(name, len);
        u->inline_value = eq != NULL ? eq + 1 : NULL;
        snprintf(u->spelled, sizeof(u->spelled), "--%.*s", (int)len, name);
    } else {
        u->def = find_short(arg[1]);
        u->inline_value = arg[1] != '\0' && arg[2] != '\0' ? arg + 2 : NULL;
        snprintf(u->spelled, sizeof(u->spelled), "%.2s", arg);
    }
    if (u->def == NULL)
        return fail(err, errlen, "Invalid option '%s'", u->spelled);
    return 0;
}

/* Parse the option at argv[*i], consuming its value (and advancing *i when
 * the value is the next argument). */
static int parse_option(struct config *c, int argc, char **argv, int *i,
                        char *err, size_t errlen)
{
    struct opt_use u;

    if (identify(argv[*i], &u, err, errlen) != 0)
        return -1;
    if (u.def->kind == OPT_FLAG) {
        if (u.inline_value != NULL)
            return fail(err, errlen, "Option '%s' takes no value", u.spelled);
        *(bool *)((char *)c + u.def->offset) = true;
        return 0;
    }
    const char *value = u.inline_value;
    if (value == NULL) {
        if (*i + 1 >= argc)
            return fail(err, errlen, "Missing value for option '%s'", u.spelled);
        value = argv[++*i];
    }
    return set_value(c, u.def, value, err, errlen);
}

int config_parse_args(struct config *c, int argc, char **argv,
                      char *err, size_t errlen)
{
    bool options_done = false;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int rc;

        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (options_done || arg[0] != '-')
            rc = add_entry_points(c, arg, err, errlen);
        else
            rc = parse_option(c, argc, argv, &i, err, errlen);
        if (rc != 0)
            return -1;
        if (c->help || c->version) /* the rest does not matter */
            return 0;
    }
    return 0;
}
