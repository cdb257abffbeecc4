/*
 * config — the only reader of argv and configuration files. It produces one
 * struct config, read-only once parsing is done; nothing else in ringslot
 * parses options.
 *
 * The command line follows redis-cluster-proxy (same names, arguments and
 * defaults) so ringslot can replace it without changing a flag; positional
 * arguments are entry points of the backend cluster ("host:port", ":port",
 * "[::1]:port", or comma-separated lists of those).
 *
 *   argv ──► config_parse_args ──┬─ --opt value ──────────────┐
 *                                └─ -c FILE ─► config_load_file│
 *                                     (rcp lines or INI, include)
 *                                               │ config_apply ▼
 *                                                        struct config
 *   PROXY CONFIG GET/SET ─► config_get / config_set (on a copy, then RCU)
 *   --check-config ───────► config_dump (passwords as "********")
 *
 * struct config owns no heap memory (every string is a fixed array), so a
 * copy is a plain assignment: a runtime change copies the published config,
 * calls config_set on the copy and publishes the copy. No config_free is
 * needed for the same reason.
 */
#ifndef RINGSLOT_CONFIG_H
#define RINGSLOT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_ENTRY_POINTS 64
#define CONFIG_MAX_BINDS 16
#define CONFIG_MAX_SEEDS 32
#define CONFIG_MAX_INCLUDE_DEPTH 16  /* nested `include`s, the top file is 1 */
#define CONFIG_MAX_POOL_SIZE 50      /* redis-cluster-proxy's MAX_POOL_SIZE */
#define CONFIG_PASSWORD_MAX 512      /* buffer size, so 511 bytes at most */
#define CONFIG_PATH_MAX 1024
#define CONFIG_REDACTED "********"   /* what a password reads back as */
/* The pidfile a daemonized redis-cluster-proxy writes when none is given;
 * kept so init scripts written for it find ringslot's pid. */
#define CONFIG_DEFAULT_PIDFILE "/var/run/redis-cluster-proxy.pid"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_SUCCESS, LOG_WARNING, LOG_ERROR };

/* A millisecond option given as "auto" (cluster-down-timeout): the proxy
 * works the value out itself; PROXY CONFIG GET reads "auto". */
#define CONFIG_AUTO (-1)

/* --disable-multiplexing: "auto" (private link only when a command needs
 * one) or "always" (every client gets a private link). */
enum config_multiplexing { CONFIG_MULTIPLEXING_AUTO, CONFIG_MULTIPLEXING_ALWAYS };

/* tls-auth-clients, as Redis's. */
enum config_tls_auth { CONFIG_TLS_AUTH_NO, CONFIG_TLS_AUTH_YES,
                       CONFIG_TLS_AUTH_OPTIONAL };

/* --moved-mode in cluster mode (issue 5). */
enum config_moved_mode { CONFIG_MOVED_HINT, CONFIG_MOVED_ALWAYS, CONFIG_MOVED_NEVER };

/* --read-from-replicas: where read-only commands go (core/route/replica.c). */
enum config_read_from {
    CONFIG_READ_MASTER,  /* "no": always the slot's master */
    CONFIG_READ_SPREAD,  /* "yes": the master and its healthy replicas */
    CONFIG_READ_REPLICA, /* "replica": healthy replicas, else the master */
};

/* How workers do I/O (core/io): io_uring if usable, else epoll; or forced. */
enum config_io_backend {
    CONFIG_IO_AUTO,
    CONFIG_IO_URING,
    CONFIG_IO_EPOLL,
};

/* Classes of client-output-buffer-limit; Redis's "replica"/"slave" class is
 * accepted and ignored (the proxy has no replicas). */
enum config_obuf_class { CONFIG_OBUF_NORMAL, CONFIG_OBUF_PUBSUB, CONFIG_OBUF_CLASSES };

struct config_obuf_limit {
    long long hard_bytes;  /* unsent replies past this: disconnect; 0 = none */
    long long soft_bytes;  /* past this for soft_seconds: disconnect; 0 = none */
    int soft_seconds;
};

struct entry_point {
    char host[256]; /* "127.0.0.1", "::1" (no brackets), or a unix path */
    int port;       /* 0 for a unix socket */
};

/* --lease-redis redis://[[user]:password@]host:port */
struct config_redis_uri {
    bool set;                           /* given; else the backend itself */
    struct entry_point addr;
    char user[128];                     /* "" = default user */
    char password[CONFIG_PASSWORD_MAX]; /* "" = none */
};

struct config {
    /* --- listening and clients --- */
    int port;                     /* -p/--port, default 7777; 0 = no TCP
                                     (needs --unixsocket or tls-port) */
    size_t nbinds;
    char binds[CONFIG_MAX_BINDS][64]; /* --bind (repeatable); none = all */
    char unixsocket[108];         /* --unixsocket path, "" = none */
    int unixsocketperm;           /* --unixsocketperm, octal, default 0 */
    int threads;                  /* --threads; default online CPUs */
    int maxclients;               /* --maxclients (rcp: --max-clients),
                                     default 10000 */
    int tcpkeepalive;             /* --tcpkeepalive seconds, default 300 */
    int tcp_backlog;              /* --tcp-backlog, default 511 */
    bool daemonize;               /* --daemonize */
    char pidfile[CONFIG_PATH_MAX]; /* --pidfile; "" = none unless
                                      daemonized (CONFIG_DEFAULT_PIDFILE) */
    int timeout;                  /* --timeout: idle client seconds, 0 = off */
    long long proto_max_bulk_len; /* default 512 MB */
    long long client_query_buffer_limit; /* default 1 GB */
    long long client_reply_budget; /* unsent reply bytes before a client's
                                      reading pauses; 256 MB, 0 = off */
    struct config_obuf_limit obuf_limits[CONFIG_OBUF_CLASSES];
                                  /* --client-output-buffer-limit: normal
                                     0 0 0, pubsub 32mb 8mb 60 */
    char requirepass[CONFIG_PASSWORD_MAX];    /* clients' AUTH; "" = none */
    char admin_password[CONFIG_PASSWORD_MAX]; /* PROXY AUTH; "" = none */
    int console_port;             /* --console-port HTTP, 0 = off */

    /* --- TLS for clients (issue 12), Redis's options and defaults --- */
    int tls_port;                 /* tls-port, 0 = no TLS listener */
    char tls_cert_file[CONFIG_PATH_MAX];   /* tls-cert-file */
    char tls_key_file[CONFIG_PATH_MAX];    /* tls-key-file */
    char tls_key_file_pass[CONFIG_PASSWORD_MAX]; /* tls-key-file-pass */
    char tls_ca_cert_file[CONFIG_PATH_MAX]; /* tls-ca-cert-file */
    char tls_ca_cert_dir[CONFIG_PATH_MAX];  /* tls-ca-cert-dir */
    enum config_tls_auth tls_auth_clients; /* default yes */
    char tls_protocols[64];       /* "TLSv1.2 TLSv1.3"; "" = those two */
    char tls_ciphers[512];        /* TLS <= 1.2; "" = OpenSSL's default */
    char tls_ciphersuites[512];   /* TLS 1.3; "" = OpenSSL's default */
    bool tls_prefer_server_ciphers; /* default no */
    bool tls_session_caching;     /* default yes */
    int tls_session_cache_size;   /* default 20480 */
    int tls_session_cache_timeout; /* seconds, default 300 */
    int tls_handshake_timeout_ms; /* tls-handshake-timeout (ringslot), both
                                     sides, default 10000 */

    /* --- logging --- */
    enum log_level log_level;     /* --log-level, default info */
    char logfile[CONFIG_PATH_MAX]; /* --logfile, "" = stdout */
    bool disable_colors;          /* --disable-colors */
    bool dump_queries;            /* --dump-queries (debug level only) */
    bool dump_buffer;             /* --dump-buffer */
    bool dump_queues;             /* --dump-queues */

    /* --- backend cluster --- */
    size_t nentry_points;
    struct entry_point entry_points[CONFIG_MAX_ENTRY_POINTS];
    char auth[CONFIG_PASSWORD_MAX]; /* -a/--auth: backend password */
    char auth_user[128];          /* --auth-user: backend ACL user */
    int connections_pool_size;    /* private links kept ready, default 10,
                                     at most CONFIG_MAX_POOL_SIZE */
    int connections_pool_min_size; /* refill below this, default 10 */
    int connections_pool_spawn_every_ms; /* refill interval, default 50 */
    int connections_pool_spawn_rate; /* links per refill, default 2 */
    enum config_multiplexing disable_multiplexing; /* default auto */
    bool enable_cross_slot;       /* --enable-cross-slot */
    int connect_timeout_ms;       /* --connect-timeout, default 1000 */
    int backend_timeout_ms;       /* --backend-timeout, default 0 (off) */
    int cluster_down_timeout_ms;  /* hold requests for a lost master's
                                     slots this long, 0 = fail at once;
                                     default CONFIG_AUTO: follow the
                                     backend (core/route/hold.c) */
    int wait_timeout_cap_ms;      /* cap on WAIT's timeout, default 100 */
    enum config_read_from read_from_replicas; /* default no */
    enum config_io_backend io_backend;  /* default auto; fixed at start */
    int replica_max_lag_ms;       /* a replica further behind serves no
                                     reads, default 1000 */
    int replica_read_after_write_ms; /* a client's reads go to the master
                                     this long after its write, 0 = off */
    bool tls;                     /* --tls: reach the nodes over TLS */
    char tls_cacert[CONFIG_PATH_MAX]; /* --tls-cacert; "" = system CAs */
    char tls_cert[CONFIG_PATH_MAX];   /* --tls-cert: client certificate */
    char tls_key[CONFIG_PATH_MAX];    /* --tls-key: its key */
    bool tls_insecure;            /* --tls-insecure: no verification */

    /* --- cluster mode (issue 5) --- */
    bool cluster_mode;            /* --cluster-mode */
    int cport;                    /* --cport; after parsing: port + 10000
                                     unless given */
    char cluster_name[65];        /* --cluster-name, default "ringslot" */
    char cluster_password[CONFIG_PASSWORD_MAX]; /* --cluster-password */
    bool cluster_password_set;    /* given, even as "" (allows no password) */
    char announce_ip[64];         /* --announce-ip, "" = the bound address */
    int announce_port;            /* --announce-port, 0 = port */
    size_t ncluster_seeds;
    struct entry_point cluster_seeds[CONFIG_MAX_SEEDS]; /* --cluster-seeds */
    char node_id_file[CONFIG_PATH_MAX]; /* "" = a new node id per start */
    struct config_redis_uri lease_redis; /* --lease-redis */
    int leader_lease_ms;          /* --leader-lease, default 3000 */
    int heartbeat_interval_ms;    /* --heartbeat-interval, default 500 */
    int proxy_node_timeout_ms;    /* --proxy-node-timeout, default 3000 */
    enum config_moved_mode moved_mode; /* --moved-mode, default hint */
    bool tls_cluster;             /* tls-cluster: the cluster port over TLS
                                     with the tls-* certificate */

    /* --- what to do instead of running --- */
    bool check_config;            /* --check-config: print config_dump, exit */
    bool help;                    /* -h/--help seen: print usage, exit 0 */
    bool version;                 /* --version seen */
};

/* Defaults, as redis-cluster-proxy's (threads = online CPUs). */
void config_defaults(struct config *c);

/*
 * Parse the command line into *c (which holds the defaults), in order: -c
 * FILE loads the file at its position, so options after it override the
 * file. Then checks what spans options (port 0 needs --unixsocket or
 * tls-port, tls-port needs a readable certificate and key, cluster
 * mode needs a cluster password, ...) and fills derived values (cport, the
 * daemon's pidfile). Returns 0, or -1 with a message in err (e.g. "Invalid
 * option '--foo'", "proxy.conf:3: unknown directive 'foo'"). Does not exit
 * or print.
 */
int config_parse_args(struct config *c, int argc, char **argv,
                      char *err, size_t errlen);

/*
 * Read a configuration file into *c: redis-cluster-proxy's format (`name
 * value...` lines) or INI (`[section]`, `name = value`), told apart by the
 * first line that is not blank or a comment ('[' means INI). "-" reads
 * stdin. `include` paths are relative to the including file's directory.
 * Returns 0, or -1 with "FILE:LINE: message" in err; *c may then be
 * partly updated.
 */
int config_load_file(struct config *c, const char *path,
                     char *err, size_t errlen);

/*
 * Apply one directive as a file states it: `name` without dashes (case-
 * insensitive; redis-cluster-proxy's and Redis's spellings such as
 * "max-clients" and "tcp-keepalive" accepted) with nvalues values. `section`
 * is the INI section it appeared in ("proxy", "backend", "cluster") or NULL
 * for a format without sections. Flags take yes/no. Returns 0 or -1 with a
 * message in err ("unknown directive 'foo'", "Invalid port 'x' ...").
 */
int config_apply(struct config *c, const char *section, const char *name,
                 const char *const *values, size_t nvalues,
                 char *err, size_t errlen);

/* Split "host:port", "[v6]:port", ":port" (host 127.0.0.1) or a path
 * (contains '/', port 0). Returns 0 or -1. */
int config_parse_address(const char *s, struct entry_point *out);

/* The usage text for -h. */
const char *config_usage(void);

/*
 * PROXY CONFIG SET: change one runtime option (`name` as config_apply
 * takes it). Only read-write options change (redis-cluster-proxy's
 * log-level, dump-queries, dump-buffer, dump-queues, enable-cross-slot,
 * connections-pool-*; ringslot's maxclients, timeout, connect-timeout,
 * backend-timeout, cluster-down-timeout, client-reply-budget,
 * client-output-buffer-limit, moved-mode, wait-timeout-cap,
 * read-from-replicas, replica-max-lag, replica-read-after-write). Returns 0, or
 * -1 with redis-cluster-proxy's text in err ("Invalid config option",
 * "This config option is read-only", "Maximum value for '...' is N") or
 * the value's error; *c is unchanged on error.
 */
int config_set(struct config *c, const char *name, const char *value,
               char *err, size_t errlen);

/* One option's value as PROXY CONFIG GET replies it. */
enum config_value_kind {
    CONFIG_VALUE_INT,    /* integer: numbers, flags as 0/1 */
    CONFIG_VALUE_STRING, /* string */
    CONFIG_VALUE_NULL,   /* an unset string option (rcp replies null) */
    CONFIG_VALUE_LIST,   /* items: bind, entry-point */
};

struct config_value {
    enum config_value_kind kind;
    long long integer;
    const char *string;
    const char *const *items;
    size_t nitems;
    bool read_only;      /* config_set refuses it */
};

/* Called once per matching option; name and value are valid only during
 * the call. */
typedef void (*config_get_fn)(void *arg, const char *name,
                              const struct config_value *value);

/*
 * PROXY CONFIG GET: call fn for every option whose name matches the glob
 * `pattern` (fnmatch, case-insensitive), in the order of config_dump. An
 * alternative spelling ("max-clients") matches when given exactly, and is
 * then the name reported. Passwords read "********". Returns the number of
 * options reported.
 */
size_t config_get(const struct config *c, const char *pattern,
                  config_get_fn fn, void *arg);

/*
 * Print the effective configuration in redis-cluster-proxy's file format,
 * one directive a line, readable back by config_load_file; passwords are
 * printed as "********". Returns 0, or -1 if writing failed.
 */
int config_dump(const struct config *c, FILE *out);

/* Replace every password in *c (a copy meant for display) with
 * "********"; an empty password stays empty. */
void config_redact(struct config *c);

#endif
