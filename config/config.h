/*
 * config — the only reader of argv and configuration files. It produces one
 * struct config, read-only once parsing is done; nothing else in ringslot
 * parses options.
 *
 * The command line follows redis-cluster-proxy (same names, arguments and
 * defaults) so ringslot can replace it without changing a flag; positional
 * arguments are entry points of the backend cluster ("host:port", ":port",
 * "[::1]:port", or comma-separated lists of those).
 */
#ifndef RINGSLOT_CONFIG_H
#define RINGSLOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_ENTRY_POINTS 64
#define CONFIG_MAX_BINDS 16

enum log_level { LOG_DEBUG, LOG_INFO, LOG_SUCCESS, LOG_WARNING, LOG_ERROR };

struct entry_point {
    char host[256]; /* "127.0.0.1", "::1" (no brackets), or a unix path */
    int port;       /* 0 for a unix socket */
};

struct config {
    int port;                     /* -p/--port, default 7777 */
    size_t nbinds;
    char binds[CONFIG_MAX_BINDS][64]; /* --bind (repeatable); none = all */
    int threads;                  /* --threads; default online CPUs */
    enum log_level log_level;     /* --log-level, default info */
    char logfile[1024];           /* --logfile, "" = stdout */
    size_t nentry_points;
    struct entry_point entry_points[CONFIG_MAX_ENTRY_POINTS];
    int maxclients;               /* --maxclients, default 10000 */
    int tcpkeepalive;             /* --tcpkeepalive, default 300 */
    int tcp_backlog;              /* --tcp-backlog, default 511 */
    long long proto_max_bulk_len; /* default 512 MB */
    long long client_query_buffer_limit; /* default 1 GB */
    int connect_timeout_ms;       /* --connect-timeout, default 1000 */
    int backend_timeout_ms;       /* --backend-timeout, default 0 (off) */
    bool help;                    /* -h/--help seen: print usage, exit 0 */
    bool version;                 /* --version seen */
};

/* Defaults, as redis-cluster-proxy's (threads = online CPUs). */
void config_defaults(struct config *c);

/*
 * Parse the command line into *c (which holds the defaults). Returns 0, or
 * -1 with a message in err (e.g. "Invalid option '--foo'"). Does not exit
 * or print.
 */
int config_parse_args(struct config *c, int argc, char **argv,
                      char *err, size_t errlen);

/* Split "host:port", "[v6]:port", ":port" (host 127.0.0.1) or a path
 * (contains '/', port 0). Returns 0 or -1. */
int config_parse_address(const char *s, struct entry_point *out);

/* The usage text for -h. */
const char *config_usage(void);

#endif
