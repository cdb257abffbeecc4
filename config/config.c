/*
 * config.c — the option table and everything that reads or writes an
 * option through it: defaults, values, the command line, PROXY CONFIG
 * GET/SET and the --check-config dump (config.h). Files are read by
 * config_file.c, which hands each directive to config_apply here.
 *
 * Options come from one table (name, spellings, kind, field, bounds, INI
 * section, runtime flags), so adding an option is one row there plus one
 * in the usage text. The command-line parser is a plain loop over argv,
 * not getopt: it keeps no state between calls (the tests call it many
 * times) and accepts both "--opt value" and "--opt=value", "-p 7000" and
 * "-p7000". Everything that is not an option is a list of entry points;
 * "--" ends the options.
 *
 *   argv[i] ─ identify ─► opt_def ─┬─ set_value ─► field      (one value)
 *   file line ─ config_apply ──────┘  (a directive may carry several)
 *   field ─ describe ─► config_value ─┬─ config_get (PROXY CONFIG GET)
 *                                     └─ config_dump (--check-config)
 *
 * Errors are reported as text in the caller's buffer; nothing here prints
 * (except config_dump, to the stream it is given) or exits. A password
 * never appears in a message or an output: values of secret options are
 * not echoed, and they read back as "********".
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "../cluster/cluster.h"

#define MAX_THREADS 256
#define MAX_DIRECTIVE_VALUES 64 /* words after a directive's name */

_Static_assert(sizeof(enum log_level) == sizeof(int), "enum options are ints");
_Static_assert(sizeof(enum config_moved_mode) == sizeof(int), "enum options");
_Static_assert(sizeof(enum config_multiplexing) == sizeof(int), "enum options");
_Static_assert(sizeof(enum config_read_from) == sizeof(int), "enum options");
_Static_assert(sizeof(enum config_io_backend) == sizeof(int), "enum options");
_Static_assert(sizeof(enum config_tls_auth) == sizeof(int), "enum options");

enum opt_kind {
    OPT_FLAG,    /* bool; no value on the command line, yes/no in files */
    OPT_BOOL,    /* bool that always takes yes/no, as Redis's options (for
                    those that default to yes: --tls-session-caching no) */
    OPT_INT,     /* int within [min, max] */
    OPT_INT_AUTO, /* OPT_INT, or "auto" (CONFIG_AUTO) */
    OPT_BYTES,   /* long long with Redis memory units, within [min, max] */
    OPT_ENUM,    /* int-sized enum, by one of names[] */
    OPT_STRING,  /* char[size] */
    OPT_OCTAL,   /* int from octal digits, within [min, max] */
    OPT_BIND,    /* appended to binds[] */
    OPT_ENTRY,   /* appended to entry_points[] */
    OPT_SEEDS,   /* cluster_seeds[]: the whole list, replaced */
    OPT_OBUF,    /* obuf_limits[]: Redis's client-output-buffer-limit */
    OPT_URI,     /* struct config_redis_uri */
    OPT_CONFIG,  /* -c: read a file */
};

enum opt_flag {
    OPTF_RW = 1 << 0,      /* config_set may change it at runtime */
    OPTF_SECRET = 1 << 1,  /* a password: never echoed or shown */
    OPTF_CLI = 1 << 2,     /* command line only: no directive, not shown */
    OPTF_NO_LONG = 1 << 3, /* no "--name" form (-c) */
    OPTF_WORDS = 1 << 4,   /* a file's several words are one value, joined
                              by spaces (tls-protocols TLSv1.2 TLSv1.3) */
};

/* INI sections; SEC_NONE for command-line-only options. */
enum opt_section { SEC_PROXY, SEC_BACKEND, SEC_CLUSTER, SEC_NONE };

static const char *const section_names[] = {
    [SEC_PROXY] = "proxy", [SEC_BACKEND] = "backend",
    [SEC_CLUSTER] = "cluster",
};

struct opt_def {
    const char *name;   /* "--name" and the file directive */
    const char *alias;  /* redis-cluster-proxy's or Redis's spelling */
    char short_name;    /* 0 if none */
    enum opt_kind kind;
    unsigned flags;     /* enum opt_flag */
    enum opt_section section;
    size_t offset;      /* field in struct config */
    size_t size;        /* the field's size (OPT_STRING: buffer size) */
    long long min, max;
    const char *what;   /* noun for "Invalid <what> '<value>'"; NULL: name */
    const char *const *names; /* OPT_ENUM: value names by number, NULL-ended */
    bool (*valid)(const char *value); /* OPT_STRING: extra check, or NULL */
    const char *hint;   /* why `valid` refused */
};

static const char *const log_level_names[] = {
    [LOG_DEBUG] = "debug", [LOG_INFO] = "info", [LOG_SUCCESS] = "success",
    [LOG_WARNING] = "warning", [LOG_ERROR] = "error", NULL,
};

static const char *const multiplexing_names[] = {
    [CONFIG_MULTIPLEXING_AUTO] = "auto",
    [CONFIG_MULTIPLEXING_ALWAYS] = "always", NULL,
};

static const char *const moved_mode_names[] = {
    [CONFIG_MOVED_HINT] = "hint", [CONFIG_MOVED_ALWAYS] = "always",
    [CONFIG_MOVED_NEVER] = "never", NULL,
};

static const char *const read_from_names[] = {
    [CONFIG_READ_MASTER] = "no", [CONFIG_READ_SPREAD] = "yes",
    [CONFIG_READ_REPLICA] = "replica", NULL,
};

static const char *const io_backend_names[] = {
    [CONFIG_IO_AUTO] = "auto", [CONFIG_IO_URING] = "uring", [CONFIG_IO_EPOLL] = "epoll", NULL,
};

static const char *const tls_auth_names[] = {
    [CONFIG_TLS_AUTH_NO] = "no", [CONFIG_TLS_AUTH_YES] = "yes",
    [CONFIG_TLS_AUTH_OPTIONAL] = "optional", NULL,
};

static bool valid_cluster_name(const char *v);
static bool valid_announce_ip(const char *v);
static bool valid_tls_protocols(const char *v);

#define FIELD(f) .offset = offsetof(struct config, f), \
                 .size = sizeof(((struct config *)0)->f)
#define MS_MAX INT_MAX

/* In config_dump's order; a section's options together. */
static const struct opt_def opt_table[] = {
    /* [proxy]: listening, clients, logging */
    { "port", NULL, 'p', OPT_INT, 0, SEC_PROXY, FIELD(port), 0, 65535,
      .what = "port" },
    { "bind", NULL, 0, OPT_BIND, 0, SEC_PROXY, FIELD(binds),
      .what = "bind address" },
    { "unixsocket", NULL, 0, OPT_STRING, 0, SEC_PROXY, FIELD(unixsocket) },
    { "unixsocketperm", NULL, 0, OPT_OCTAL, 0, SEC_PROXY,
      FIELD(unixsocketperm), 0, 0777 },
    { "threads", NULL, 0, OPT_INT, 0, SEC_PROXY, FIELD(threads),
      1, MAX_THREADS, .what = "number of threads" },
    { "maxclients", "max-clients", 0, OPT_INT, OPTF_RW, SEC_PROXY,
      FIELD(maxclients), 1, INT_MAX },
    { "tcpkeepalive", "tcp-keepalive", 0, OPT_INT, 0, SEC_PROXY,
      FIELD(tcpkeepalive), 0, INT_MAX },
    { "tcp-backlog", NULL, 0, OPT_INT, 0, SEC_PROXY, FIELD(tcp_backlog),
      0, INT_MAX },
    { "daemonize", NULL, 0, OPT_FLAG, 0, SEC_PROXY, FIELD(daemonize) },
    { "pidfile", NULL, 0, OPT_STRING, 0, SEC_PROXY, FIELD(pidfile) },
    { "timeout", NULL, 0, OPT_INT, OPTF_RW, SEC_PROXY, FIELD(timeout),
      0, INT_MAX },
    { "proto-max-bulk-len", NULL, 0, OPT_BYTES, 0, SEC_PROXY,
      FIELD(proto_max_bulk_len), 1, LLONG_MAX },
    { "client-query-buffer-limit", NULL, 0, OPT_BYTES, 0, SEC_PROXY,
      FIELD(client_query_buffer_limit), 1, LLONG_MAX },
    { "client-reply-budget", NULL, 0, OPT_BYTES, OPTF_RW, SEC_PROXY,
      FIELD(client_reply_budget), 0, LLONG_MAX },
    { "client-output-buffer-limit", NULL, 0, OPT_OBUF, OPTF_RW, SEC_PROXY,
      FIELD(obuf_limits) },
    { "requirepass", NULL, 0, OPT_STRING, OPTF_SECRET | OPTF_RW, SEC_PROXY,
      FIELD(requirepass) },
    { "admin-password", NULL, 0, OPT_STRING, OPTF_SECRET, SEC_PROXY,
      FIELD(admin_password) },
    { "console-port", NULL, 0, OPT_INT, 0, SEC_PROXY, FIELD(console_port),
      0, 65535 },
    /* TLS towards clients: Redis's names, meanings and defaults */
    { "tls-port", NULL, 0, OPT_INT, 0, SEC_PROXY, FIELD(tls_port), 0, 65535,
      .what = "port" },
    { "tls-cert-file", NULL, 0, OPT_STRING, OPTF_RW, SEC_PROXY,
      FIELD(tls_cert_file) },
    { "tls-key-file", NULL, 0, OPT_STRING, OPTF_RW, SEC_PROXY,
      FIELD(tls_key_file) },
    { "tls-key-file-pass", NULL, 0, OPT_STRING, OPTF_SECRET | OPTF_RW, SEC_PROXY,
      FIELD(tls_key_file_pass) },
    { "tls-ca-cert-file", NULL, 0, OPT_STRING, OPTF_RW, SEC_PROXY,
      FIELD(tls_ca_cert_file) },
    { "tls-ca-cert-dir", NULL, 0, OPT_STRING, OPTF_RW, SEC_PROXY,
      FIELD(tls_ca_cert_dir) },
    { "tls-auth-clients", NULL, 0, OPT_ENUM, OPTF_RW, SEC_PROXY,
      FIELD(tls_auth_clients), .names = tls_auth_names },
    { "tls-protocols", NULL, 0, OPT_STRING, OPTF_WORDS, SEC_PROXY,
      FIELD(tls_protocols), .valid = valid_tls_protocols,
      .hint = "space-separated TLSv1, TLSv1.1, TLSv1.2, TLSv1.3" },
    { "tls-ciphers", NULL, 0, OPT_STRING, 0, SEC_PROXY, FIELD(tls_ciphers) },
    { "tls-ciphersuites", NULL, 0, OPT_STRING, 0, SEC_PROXY,
      FIELD(tls_ciphersuites) },
    { "tls-prefer-server-ciphers", NULL, 0, OPT_BOOL, 0, SEC_PROXY,
      FIELD(tls_prefer_server_ciphers) },
    { "tls-session-caching", NULL, 0, OPT_BOOL, 0, SEC_PROXY,
      FIELD(tls_session_caching) },
    { "tls-session-cache-size", NULL, 0, OPT_INT, 0, SEC_PROXY,
      FIELD(tls_session_cache_size), 1, INT_MAX },
    { "tls-session-cache-timeout", NULL, 0, OPT_INT, 0, SEC_PROXY,
      FIELD(tls_session_cache_timeout), 1, INT_MAX },
    { "tls-handshake-timeout", NULL, 0, OPT_INT, 0, SEC_PROXY,
      FIELD(tls_handshake_timeout_ms), 1, MS_MAX },
    { "enable-cross-slot", NULL, 0, OPT_FLAG, OPTF_RW, SEC_PROXY,
      FIELD(enable_cross_slot) },
    { "log-level", NULL, 0, OPT_ENUM, OPTF_RW, SEC_PROXY, FIELD(log_level),
      .what = "log level", .names = log_level_names },
    { "logfile", NULL, 0, OPT_STRING, 0, SEC_PROXY, FIELD(logfile) },
    { "disable-colors", NULL, 0, OPT_FLAG, 0, SEC_PROXY,
      FIELD(disable_colors) },
    { "io-backend", NULL, 0, OPT_ENUM, 0, SEC_PROXY, FIELD(io_backend),
      .what = "I/O backend", .names = io_backend_names },
    { "dump-queries", NULL, 0, OPT_FLAG, OPTF_RW, SEC_PROXY,
      FIELD(dump_queries) },
    { "dump-buffer", NULL, 0, OPT_FLAG, OPTF_RW, SEC_PROXY,
      FIELD(dump_buffer) },
    /* rcp's PROXY CONFIG calls it dump-replies */
    { "dump-queues", "dump-replies", 0, OPT_FLAG, OPTF_RW, SEC_PROXY,
      FIELD(dump_queues) },

    /* [backend]: the Redis Cluster behind the proxy */
    { "entry-point", "cluster", 0, OPT_ENTRY, 0, SEC_BACKEND,
      FIELD(entry_points), .what = "address" },
    { "auth", NULL, 'a', OPT_STRING, OPTF_SECRET, SEC_BACKEND, FIELD(auth) },
    { "auth-user", NULL, 0, OPT_STRING, 0, SEC_BACKEND, FIELD(auth_user) },
    { "connections-pool-size", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(connections_pool_size), 0, INT_MAX },
    { "connections-pool-min-size", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(connections_pool_min_size), 0, INT_MAX },
    { "connections-pool-spawn-every", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(connections_pool_spawn_every_ms), 0, MS_MAX },
    { "connections-pool-spawn-rate", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(connections_pool_spawn_rate), 0, INT_MAX },
    { "disable-multiplexing", NULL, 0, OPT_ENUM, 0, SEC_BACKEND,
      FIELD(disable_multiplexing), .names = multiplexing_names },
    { "connect-timeout", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(connect_timeout_ms), 1, MS_MAX },
    { "backend-timeout", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(backend_timeout_ms), 0, MS_MAX },
    { "cluster-down-timeout", NULL, 0, OPT_INT_AUTO, OPTF_RW, SEC_BACKEND,
      FIELD(cluster_down_timeout_ms), 0, MS_MAX },
    /* 0 would turn a client's WAIT into "block forever" on a shared link */
    { "wait-timeout-cap", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(wait_timeout_cap_ms), 1, MS_MAX },
    { "read-from-replicas", NULL, 0, OPT_ENUM, OPTF_RW, SEC_BACKEND,
      FIELD(read_from_replicas), .names = read_from_names },
    { "replica-max-lag", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(replica_max_lag_ms), 10, MS_MAX },
    { "replica-read-after-write", NULL, 0, OPT_INT, OPTF_RW, SEC_BACKEND,
      FIELD(replica_read_after_write_ms), 0, MS_MAX },
    /* TLS towards the nodes: redis-cli's --tls options */
    { "tls", NULL, 0, OPT_FLAG, 0, SEC_BACKEND, FIELD(tls) },
    { "tls-cacert", NULL, 0, OPT_STRING, OPTF_RW, SEC_BACKEND, FIELD(tls_cacert) },
    { "tls-cert", NULL, 0, OPT_STRING, OPTF_RW, SEC_BACKEND, FIELD(tls_cert) },
    { "tls-key", NULL, 0, OPT_STRING, OPTF_RW, SEC_BACKEND, FIELD(tls_key) },
    { "tls-insecure", NULL, 0, OPT_FLAG, 0, SEC_BACKEND,
      FIELD(tls_insecure) },

    /* [cluster]: ringslot processes forming a cluster of their own */
    { "cluster-mode", NULL, 0, OPT_FLAG, 0, SEC_CLUSTER, FIELD(cluster_mode) },
    { "cport", NULL, 0, OPT_INT, 0, SEC_CLUSTER, FIELD(cport), 0, 65535 },
    { "cluster-name", NULL, 0, OPT_STRING, 0, SEC_CLUSTER,
      FIELD(cluster_name), .valid = valid_cluster_name,
      .hint = "1..64 printable characters, no spaces or braces" },
    { "cluster-password", NULL, 0, OPT_STRING, OPTF_SECRET, SEC_CLUSTER,
      FIELD(cluster_password) },
    { "announce-ip", NULL, 0, OPT_STRING, 0, SEC_CLUSTER, FIELD(announce_ip),
      .valid = valid_announce_ip,
      .hint = "an address clients can reach, not a wildcard" },
    { "announce-port", NULL, 0, OPT_INT, 0, SEC_CLUSTER,
      FIELD(announce_port), 0, 65535 },
    { "cluster-seeds", NULL, 0, OPT_SEEDS, 0, SEC_CLUSTER,
      FIELD(cluster_seeds) },
    { "node-id-file", NULL, 0, OPT_STRING, 0, SEC_CLUSTER,
      FIELD(node_id_file) },
    { "lease-redis", NULL, 0, OPT_URI, 0, SEC_CLUSTER, FIELD(lease_redis) },
    { "leader-lease", NULL, 0, OPT_INT, 0, SEC_CLUSTER,
      FIELD(leader_lease_ms), 1, MS_MAX },
    { "heartbeat-interval", NULL, 0, OPT_INT, 0, SEC_CLUSTER,
      FIELD(heartbeat_interval_ms), 1, MS_MAX },
    { "proxy-node-timeout", NULL, 0, OPT_INT, 0, SEC_CLUSTER,
      FIELD(proxy_node_timeout_ms), 1, MS_MAX },
    { "moved-mode", NULL, 0, OPT_ENUM, OPTF_RW, SEC_CLUSTER,
      FIELD(moved_mode), .names = moved_mode_names },
    { "tls-cluster", NULL, 0, OPT_BOOL, 0, SEC_CLUSTER, FIELD(tls_cluster) },

    /* command line only */
    { "c", NULL, 'c', OPT_CONFIG, OPTF_CLI | OPTF_NO_LONG, SEC_NONE,
      .what = "config file" },
    { "check-config", NULL, 0, OPT_FLAG, OPTF_CLI, SEC_NONE,
      FIELD(check_config) },
    { "help", NULL, 'h', OPT_FLAG, OPTF_CLI, SEC_NONE, FIELD(help) },
    { "version", NULL, 0, OPT_FLAG, OPTF_CLI, SEC_NONE, FIELD(version) },
};

#define N_OPTS (sizeof(opt_table) / sizeof(opt_table[0]))

static const char usage_text[] =
"Usage: ringslot [OPTIONS] [node1_host:node1_port,node2_host:node2_port,...]\n"
"\n"
"A Redis Cluster proxy; its options are those of redis-cluster-proxy, plus\n"
"the ones marked (ringslot). Entry points: host:port, [ipv6]:port, :port\n"
"(meaning 127.0.0.1:port), a unix socket path (anything containing '/'),\n"
"or comma-separated lists of those. Several may be given.\n"
"\n"
"  -c <file>                  Configuration file: redis-cluster-proxy's\n"
"                             format (`name value` lines, include, cluster\n"
"                             host:port) or INI ([proxy], [backend],\n"
"                             [cluster] with name = value). Options after\n"
"                             -c override the file\n"
"  --check-config             Print the effective configuration (passwords\n"
"                             hidden) and exit (ringslot)\n"
"  -p, --port <port>          TCP port to listen on (default: 7777); 0\n"
"                             disables TCP (needs --unixsocket or\n"
"                             --tls-port)\n"
"  --bind <address>           Address to listen on; repeat the option for\n"
"                             several (default: all interfaces)\n"
"  --unixsocket <path>        Also listen on this unix socket\n"
"  --unixsocketperm <mode>    Its permissions, octal (default: 0)\n"
"  --threads <n>              Number of worker threads, 1..256\n"
"                             (default: the number of online CPUs;\n"
"                             redis-cluster-proxy's default is 8)\n"
"  --maxclients <n>           Maximum number of clients (default: 10000);\n"
"                             --max-clients is accepted too\n"
"  --tcpkeepalive <seconds>   TCP keepalive interval, 0 = off (default: 300)\n"
"  --tcp-backlog <n>          TCP listen backlog (default: 511)\n"
"  --daemonize                Run in the background\n"
"  --pidfile <path>           Write the pid here (daemonized default:\n"
"                             " CONFIG_DEFAULT_PIDFILE ")\n"
"  --timeout <seconds>        Close clients idle this long, 0 = never\n"
"                             (default: 0) (ringslot)\n"
"  --proto-max-bulk-len <bytes>\n"
"                             Largest bulk string a client may send\n"
"                             (default: 512mb) (ringslot)\n"
"  --client-query-buffer-limit <bytes>\n"
"                             Largest pending query of a client\n"
"                             (default: 1gb) (ringslot)\n"
"  --client-reply-budget <bytes>\n"
"                             Stop reading a client's requests while this\n"
"                             much of its replies is unsent, 0 = off\n"
"                             (default: 256mb) (ringslot)\n"
"  --client-output-buffer-limit \"<class> <hard> <soft> <seconds> ...\"\n"
"                             Disconnect a client past these (classes:\n"
"                             normal, pubsub; default: normal 0 0 0\n"
"                             pubsub 32mb 8mb 60) (ringslot)\n"
"  --requirepass <password>   Clients must AUTH with it (ringslot)\n"
"  --admin-password <password>\n"
"                             PROXY AUTH password for admin commands from\n"
"                             non-local clients (ringslot)\n"
"  --console-port <port>      HTTP /metrics, /healthz, /readyz, /info;\n"
"                             0 = off (default: 0) (ringslot)\n"
"  --enable-cross-slot        Enable cross-slot queries (warning: cross-slot\n"
"                             queries routed to multiple nodes cannot be\n"
"                             atomic)\n"
"  --io-backend <kind>        auto|uring|epoll: io_uring if usable, else\n"
"                             epoll (default: auto) (ringslot)\n"
"  --log-level <level>        Minimum log level (default: info)\n"
"                             (debug|info|success|warning|error)\n"
"  --logfile <path>           Log to this file (default: stdout)\n"
"  --disable-colors           Disable colorized output\n"
"  --dump-queries             Dump query args (log level debug only)\n"
"  --dump-buffer              Dump query buffer (log level debug only)\n"
"  --dump-queues              Dump request queues (log level debug only)\n"
"\n"
"TLS towards clients (ringslot; Redis's options, names and defaults):\n"
"  --tls-port <port>          TLS port to listen on, 0 = none (default: 0)\n"
"  --tls-cert-file <path>     Server certificate (PEM chain)\n"
"  --tls-key-file <path>      Its private key (PEM)\n"
"  --tls-key-file-pass <pass> The key's passphrase\n"
"  --tls-ca-cert-file <path>  CAs that sign client certificates\n"
"  --tls-ca-cert-dir <path>   Directory of such CAs (c_rehash)\n"
"  --tls-auth-clients <mode>  Client certificates: yes (required), no,\n"
"                             optional (default: yes)\n"
"  --tls-protocols \"<list>\"   Among TLSv1 TLSv1.1 TLSv1.2 TLSv1.3\n"
"                             (default: \"TLSv1.2 TLSv1.3\")\n"
"  --tls-ciphers <list>       TLS <= 1.2 ciphers (OpenSSL's syntax)\n"
"  --tls-ciphersuites <list>  TLS 1.3 cipher suites\n"
"  --tls-prefer-server-ciphers yes|no\n"
"                             Server's cipher order (default: no)\n"
"  --tls-session-caching yes|no\n"
"                             Session cache and tickets (default: yes)\n"
"  --tls-session-cache-size <n>\n"
"                             Cached sessions (default: 20480)\n"
"  --tls-session-cache-timeout <seconds>\n"
"                             Cached sessions' lifetime (default: 300)\n"
"  --tls-handshake-timeout <ms>\n"
"                             A TLS handshake not done after this closes its\n"
"                             connection (default: 10000) (ringslot)\n"
"\n"
"  -a, --auth <password>      Password of the cluster's nodes\n"
"  --auth-user <name>         ACL user of the cluster's nodes\n"
"  --connections-pool-size <size>\n"
"                             Ready private connections per thread, 0 = no\n"
"                             pool (default: 10, max: 50)\n"
"  --connections-pool-min-size <size>\n"
"                             Refill the pool below this (default: 10)\n"
"  --connections-pool-spawn-every <ms>\n"
"                             Refill interval (default: 50)\n"
"  --connections-pool-spawn-rate <num>\n"
"                             Connections per refill (default: 2)\n"
"  --disable-multiplexing <opt>\n"
"                             When should multiplexing be disabled\n"
"                             (auto|always) (default: auto)\n"
"  --connect-timeout <ms>     Timeout for connecting to a cluster node\n"
"                             (default: 1000) (ringslot)\n"
"  --backend-timeout <ms>     A link making no reply progress this long\n"
"                             fails, 0 = off (default: 0) (ringslot)\n"
"  --cluster-down-timeout <ms|auto>\n"
"                             Hold requests for a lost master's slots this\n"
"                             long, 0 = fail at once. auto (the default):\n"
"                             2 x the nodes' cluster-node-timeout + 2000\n"
"                             when the master has a replica, else 0\n"
"                             (ringslot)\n"
"  --wait-timeout-cap <ms>    Cap on WAIT's timeout (default: 100)\n"
"                             (ringslot)\n"
"  --read-from-replicas <mode>\n"
"                             Where read-only commands go: no (the\n"
"                             master), yes (the master and its healthy\n"
"                             replicas), replica (healthy replicas, else\n"
"                             the master) (no|yes|replica) (default: no)\n"
"                             (ringslot)\n"
"  --replica-max-lag <ms>     A replica further behind its master than\n"
"                             this serves no reads (default: 1000)\n"
"                             (ringslot)\n"
"  --replica-read-after-write <ms>\n"
"                             A client's reads go to the master this long\n"
"                             after its own write, 0 = off (default: 0)\n"
"                             (ringslot)\n"
"  --tls                      Reach the cluster's nodes over TLS, as\n"
"                             redis-cli --tls (ringslot)\n"
"  --tls-cacert <path>        CAs for the nodes' certificates (default:\n"
"                             the system's) (ringslot)\n"
"  --tls-cert <path>          Client certificate for the nodes (ringslot)\n"
"  --tls-key <path>           Its private key (ringslot)\n"
"  --tls-insecure             Do not verify the nodes' certificates\n"
"                             (ringslot)\n"
"\n"
"Cluster mode (ringslot): several ringslot processes present themselves as\n"
"one Redis Cluster.\n"
"  --cluster-mode             Enable it\n"
"  --cport <port>             Cluster bus port (default: port + 10000)\n"
"  --cluster-name <name>      Proxies with the same name form one cluster\n"
"                             (default: ringslot)\n"
"  --cluster-password <pass>  Required on the cluster port; give \"\" to\n"
"                             run without one\n"
"  --announce-ip <ip>         Address told to clients (default: the bound\n"
"                             address)\n"
"  --announce-port <port>     Port told to clients (default: port)\n"
"  --cluster-seeds <host:cport,...>\n"
"                             Proxies asked for the leader and the map\n"
"                             when the lease store is out of reach\n"
"  --node-id-file <path>      Keep the node id here across restarts\n"
"  --lease-redis redis://[[user]:password@]host:port\n"
"                             Where the leader lease lives (default: the\n"
"                             backend cluster)\n"
"  --leader-lease <ms>        Leader lease (default: 3000)\n"
"  --heartbeat-interval <ms>  Heartbeat interval (default: 500)\n"
"  --proxy-node-timeout <ms>  Remove a silent proxy after (default: 3000)\n"
"  --moved-mode <mode>        hint|always|never (default: hint)\n"
"  --tls-cluster yes|no       The cluster port over TLS, with the tls-*\n"
"                             certificate, key and CAs (default: no)\n"
"\n"
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
    c->maxclients = 10000;
    c->tcpkeepalive = 300;
    c->tcp_backlog = 511;
    c->proto_max_bulk_len = 512LL * 1024 * 1024;
    c->client_query_buffer_limit = 1024LL * 1024 * 1024;
    c->client_reply_budget = 256LL * 1024 * 1024;
    c->obuf_limits[CONFIG_OBUF_PUBSUB] = (struct config_obuf_limit){
        .hard_bytes = 32LL * 1024 * 1024, .soft_bytes = 8LL * 1024 * 1024,
        .soft_seconds = 60 };
    c->log_level = LOG_INFO;
    c->connections_pool_size = 10;
    c->connections_pool_min_size = 10;
    c->connections_pool_spawn_every_ms = 50;
    c->connections_pool_spawn_rate = 2;
    c->disable_multiplexing = CONFIG_MULTIPLEXING_AUTO;
    c->connect_timeout_ms = 1000;
    c->backend_timeout_ms = 0;
    c->cluster_down_timeout_ms = CONFIG_AUTO;
    c->wait_timeout_cap_ms = 100;
    c->read_from_replicas = CONFIG_READ_MASTER;
    c->replica_max_lag_ms = 1000;
    c->replica_read_after_write_ms = 0;
    strcpy(c->cluster_name, "ringslot");
    c->leader_lease_ms = 3000;
    c->heartbeat_interval_ms = 500;
    c->proxy_node_timeout_ms = 3000;
    c->moved_mode = CONFIG_MOVED_HINT;
    c->tls_auth_clients = CONFIG_TLS_AUTH_YES;
    c->tls_session_caching = true;
    c->tls_session_cache_size = 20480;
    c->tls_session_cache_timeout = 300;
    c->tls_handshake_timeout_ms = 10000;
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

static const char *what(const struct opt_def *o)
{
    return o->what != NULL ? o->what : o->name;
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

/* yes/no as in redis-cluster-proxy's files; 1/0 as its PROXY CONFIG SET
 * takes them; true/false and on/off because INI files use them. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "yes", "1", "true", "on" };
    static const char *const no[] = { "no", "0", "false", "off" };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

static int parse_enum(const char *s, const char *const *names, int *out)
{
    for (int i = 0; names[i] != NULL; i++) {
        if (strcasecmp(s, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

/* "debug|info|..." for a message. */
static const char *enum_choices(const char *const *names, char *buf,
                                size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; names[i] != NULL && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                 i > 0 ? "|" : "", names[i]);
    return buf;
}

/* Octal digits only, as Redis's and rcp's unixsocketperm. */
static int parse_octal(const char *s, long long *out)
{
    long long n = 0;

    if (*s == '\0' || strlen(s) > 12)
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '7')
            return -1;
        n = n * 8 + (*s - '0');
    }
    *out = n;
    return 0;
}

static bool valid_cluster_name(const char *v)
{
    size_t len = strlen(v);

    /* It becomes part of a hash-tagged key: "{ringslot:<name>}:leader". */
    if (len == 0 || len > 64)
        return false;
    for (; *v != '\0'; v++)
        if (!isgraph((unsigned char)*v) || *v == '{' || *v == '}')
            return false;
    return true;
}

static bool valid_announce_ip(const char *v)
{
    /* Clients cannot connect to a wildcard address. */
    return strcmp(v, "0.0.0.0") != 0 && strcmp(v, "::") != 0 &&
           strcmp(v, "*") != 0;
}

/* Redis's tls-protocols words, case-insensitive, at least one. */
static bool valid_tls_protocols(const char *v)
{
    static const char *const known[] = { "tlsv1", "tlsv1.1", "tlsv1.2",
                                         "tlsv1.3", NULL };
    char buf[64], *save = NULL;
    int n = 0, dummy;

    if (strlen(v) >= sizeof(buf))
        return false;
    strcpy(buf, v);
    for (char *t = strtok_r(buf, " \t", &save); t != NULL;
         t = strtok_r(NULL, " \t", &save), n++)
        if (parse_enum(t, known, &dummy) != 0)
            return false;
    /* "" is the default (TLSv1.2 TLSv1.3), so a dump reads back */
    return n > 0 || v[strspn(v, " \t")] == '\0';
}

static int copy_span(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* ---- entry points and lists of addresses --------------------------------- */

/* What config accepts beyond cluster_addr_split: a unix path, ":port" for
 * 127.0.0.1; and what it refuses: an unbracketed IPv6 address (ambiguous
 * with the port). */
int config_parse_address(const char *s, struct entry_point *out)
{
    struct entry_point ep = { .port = 0 };

    if (strchr(s, '/') != NULL) { /* unix socket path, port 0 */
        if (copy_span(ep.host, sizeof(ep.host), s, strlen(s)) != 0)
            return -1;
        *out = ep;
        return 0;
    }
    if (!cluster_addr_split(s, ep.host, sizeof(ep.host), &ep.port))
        return -1;
    if (*s != '[' && strpbrk(ep.host, ":]") != NULL)
        return -1;
    if (ep.host[0] == '\0')
        snprintf(ep.host, sizeof(ep.host), "127.0.0.1");
    *out = ep;
    return 0;
}

/*
 * Split a comma-separated list of addresses into list[*n...], at most max
 * in all. With tcp_only, a unix path is refused. On error *n may have
 * grown; the caller decides whether to keep it.
 */
static int parse_address_list(const char *arg, struct entry_point *list,
                              size_t *n, size_t max, bool tcp_only,
                              char *err, size_t errlen)
{
    char item[512];

    for (const char *p = arg;; ) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

        if (copy_span(item, sizeof(item), p, len) != 0)
            return fail(err, errlen, "Invalid address '%.*s'", (int)len, p);
        if (*n >= max)
            return fail(err, errlen, "Too many %s (max %zu)",
                        tcp_only ? "cluster seeds" : "entry points", max);
        if (config_parse_address(item, &list[*n]) != 0 ||
            (tcp_only && list[*n].port == 0))
            return fail(err, errlen, "Invalid address '%s'", item);
        (*n)++;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* A positional argument: one entry point or a comma-separated list. */
static int add_entry_points(struct config *c, const char *arg,
                            char *err, size_t errlen)
{
    return parse_address_list(arg, c->entry_points, &c->nentry_points,
                              CONFIG_MAX_ENTRY_POINTS, false, err, errlen);
}

/* --cluster-seeds replaces the whole list, so a later one overrides. */
static int set_seeds(struct config *c, const char *arg,
                     char *err, size_t errlen)
{
    struct entry_point seeds[CONFIG_MAX_SEEDS];
    size_t n = 0;

    if (*arg != '\0' && parse_address_list(arg, seeds, &n, CONFIG_MAX_SEEDS,
                                           true, err, errlen) != 0)
        return -1;
    memcpy(c->cluster_seeds, seeds, n * sizeof(seeds[0]));
    c->ncluster_seeds = n;
    return 0;
}

/* redis://[[user]:password@]host:port. The password may hold '@' and ':'
 * (the last '@' ends it, the first ':' starts it). */
static int parse_redis_uri(const char *s, struct config_redis_uri *out)
{
    static const char scheme[] = "redis://";
    struct config_redis_uri u = { .set = true };
    const char *at;

    if (strncasecmp(s, scheme, sizeof(scheme) - 1) != 0)
        return -1;
    s += sizeof(scheme) - 1;
    at = strrchr(s, '@');
    if (at != NULL) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (colon == NULL ||
            copy_span(u.user, sizeof(u.user), s, (size_t)(colon - s)) != 0 ||
            copy_span(u.password, sizeof(u.password), colon + 1,
                      (size_t)(at - colon - 1)) != 0)
            return -1;
        s = at + 1;
    }
    if (strchr(s, '/') != NULL || config_parse_address(s, &u.addr) != 0)
        return -1;
    *out = u;
    return 0;
}

/* ---- client-output-buffer-limit ------------------------------------------ */

/* One "<class> <hard> <soft> <seconds>" group into limits[] (Redis's
 * syntax; the replica class is checked and dropped). */
static int parse_obuf_group(char **w, struct config_obuf_limit *limits)
{
    static const char *const classes[] = { "normal", "pubsub", "replica",
                                           "slave", NULL };
    struct config_obuf_limit l;
    long long secs;
    int cls;

    if (parse_enum(w[0], classes, &cls) != 0 ||
        parse_memory(w[1], &l.hard_bytes) != 0 ||
        parse_memory(w[2], &l.soft_bytes) != 0 ||
        parse_number(w[3], &secs) != 0 || secs > INT_MAX)
        return -1;
    l.soft_seconds = (int)secs;
    if (cls <= CONFIG_OBUF_PUBSUB)
        limits[cls] = l;
    return 0;
}

static int parse_obuf(const char *v, struct config_obuf_limit *limits)
{
    struct config_obuf_limit next[CONFIG_OBUF_CLASSES];
    char buf[512], *w[MAX_DIRECTIVE_VALUES], *save = NULL;
    size_t n = 0;

    if (copy_span(buf, sizeof(buf), v, strlen(v)) != 0)
        return -1;
    for (char *t = strtok_r(buf, " \t", &save); t != NULL;
         t = strtok_r(NULL, " \t", &save)) {
        if (n == MAX_DIRECTIVE_VALUES)
            return -1;
        w[n++] = t;
    }
    if (n == 0 || n % 4 != 0)
        return -1;
    /* All groups are checked before any is applied, as Redis does. */
    memcpy(next, limits, sizeof(next));
    for (size_t i = 0; i < n; i += 4)
        if (parse_obuf_group(w + i, next) != 0)
            return -1;
    memcpy(limits, next, sizeof(next));
    return 0;
}

/* ---- setting one value --------------------------------------------------- */

static int set_string(char *field, const struct opt_def *o, const char *v,
                      char *err, size_t errlen)
{
    size_t len = strlen(v);

    if (o->flags & OPTF_SECRET) { /* never echo a password */
        if (len >= o->size)
            return fail(err, errlen, "Invalid %s (longer than %zu)",
                        what(o), o->size - 1);
    } else if (len >= o->size) {
        return fail(err, errlen, "Invalid %s '%s' (longer than %zu)",
                    what(o), v, o->size - 1);
    } else if (o->valid != NULL && !o->valid(v)) {
        return fail(err, errlen, "Invalid %s '%s' (%s)", what(o), v, o->hint);
    }
    memcpy(field, v, len + 1);
    return 0;
}

static int set_number(char *field, const struct opt_def *o, const char *v,
                      char *err, size_t errlen)
{
    long long n;

    switch (o->kind) {
    case OPT_INT_AUTO:
        if (strcasecmp(v, "auto") == 0) {
            *(int *)field = CONFIG_AUTO;
            return 0;
        }
        /* fall through */
    case OPT_INT:
        if (parse_number(v, &n) != 0 || n < o->min || n > o->max)
            return fail(err, errlen, "Invalid %s '%s' (%lld..%lld)",
                        what(o), v, o->min, o->max);
        *(int *)field = (int)n;
        return 0;
    case OPT_OCTAL:
        if (parse_octal(v, &n) != 0 || n < o->min || n > o->max)
            return fail(err, errlen, "Invalid %s '%s' (octal, %llo..%llo)",
                        what(o), v, o->min, o->max);
        *(int *)field = (int)n;
        return 0;
    default: /* OPT_BYTES */
        if (parse_memory(v, &n) != 0 || n < o->min || n > o->max)
            return fail(err, errlen, "Invalid %s '%s' (bytes, or with a "
                        "unit: 100k, 512mb, 1gb)", what(o), v);
        *(long long *)field = n;
        return 0;
    }
}

static int set_bind(struct config *c, const struct opt_def *o, const char *v,
                    char *err, size_t errlen)
{
    if (c->nbinds >= CONFIG_MAX_BINDS)
        return fail(err, errlen, "Too many --bind addresses (max %d)",
                    CONFIG_MAX_BINDS);
    if (*v == '\0' || copy_span(c->binds[c->nbinds], sizeof(c->binds[0]),
                                v, strlen(v)) != 0)
        return fail(err, errlen, "Invalid %s '%s'", what(o), v);
    c->nbinds++;
    return 0;
}

/* Check `v` and store it into the option's field; on error, say why and
 * leave the field as it was. */
static int set_value(struct config *c, const struct opt_def *o,
                     const char *v, char *err, size_t errlen)
{
    char *field = (char *)c + o->offset;
    char choices[64];
    bool b;

    switch (o->kind) {
    case OPT_FLAG: case OPT_BOOL:
        if (parse_bool(v, &b) != 0)
            return fail(err, errlen, "Invalid %s '%s' (yes|no)", what(o), v);
        *(bool *)field = b;
        return 0;
    case OPT_INT: case OPT_INT_AUTO: case OPT_OCTAL: case OPT_BYTES:
        return set_number(field, o, v, err, errlen);
    case OPT_ENUM:
        if (parse_enum(v, o->names, (int *)field) != 0)
            return fail(err, errlen, "Invalid %s '%s' (%s)", what(o), v,
                        enum_choices(o->names, choices, sizeof(choices)));
        return 0;
    case OPT_STRING:
        if (set_string(field, o, v, err, errlen) != 0)
            return -1;
        if (field == c->cluster_password) /* "" given means "no password" */
            c->cluster_password_set = true;
        return 0;
    case OPT_BIND:
        return set_bind(c, o, v, err, errlen);
    case OPT_ENTRY:
        return add_entry_points(c, v, err, errlen);
    case OPT_SEEDS:
        return set_seeds(c, v, err, errlen);
    case OPT_OBUF:
        if (parse_obuf(v, c->obuf_limits) != 0)
            return fail(err, errlen, "Invalid %s '%s' (<class> <hard> <soft> "
                        "<soft-seconds> ...; classes normal, pubsub)",
                        what(o), v);
        return 0;
    case OPT_URI: /* not echoed: it may hold a password */
        if (parse_redis_uri(v, &c->lease_redis) != 0)
            return fail(err, errlen, "Invalid %s (expected redis://"
                        "[[user]:password@]host:port)", what(o));
        return 0;
    case OPT_CONFIG:
        return config_load_file(c, v, err, errlen);
    }
    return fail(err, errlen, "internal error: option '--%s'", o->name);
}

/* ---- looking options up -------------------------------------------------- */

/* A directive or PROXY CONFIG name: case-insensitive, either spelling.
 * *spelling is set to the name as matched. */
static const struct opt_def *find_name(const char *name, const char **spelling)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt_def *o = &opt_table[i];
        if (o->flags & OPTF_CLI)
            continue;
        if (strcasecmp(o->name, name) == 0 ||
            (o->alias != NULL && strcasecmp(o->alias, name) == 0)) {
            if (spelling != NULL)
                *spelling = strcasecmp(o->name, name) == 0 ? o->name : o->alias;
            return o;
        }
    }
    return NULL;
}

static int section_of(const char *name, enum opt_section *out)
{
    for (int s = SEC_PROXY; s < SEC_NONE; s++) {
        if (strcasecmp(name, section_names[s]) == 0) {
            *out = (enum opt_section)s;
            return 0;
        }
    }
    return -1;
}

/* A directive's words joined by spaces: client-output-buffer-limit's
 * groups may be written as separate words. */
static int join_values(const char *const *values, size_t n, char *buf,
                       size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? " " : "",
                         values[i]);
        if (w < 0 || (size_t)w >= len - used)
            return -1;
        used += (size_t)w;
    }
    return 0;
}

static int apply_values(struct config *c, const struct opt_def *o,
                        const char *const *values, size_t n,
                        char *err, size_t errlen)
{
    char joined[512];

    if (o->kind == OPT_FLAG && n == 0) { /* "daemonize" alone means yes */
        *(bool *)((char *)c + o->offset) = true;
        return 0;
    }
    if ((o->kind == OPT_OBUF || (o->flags & OPTF_WORDS)) && n > 0) {
        if (join_values(values, n, joined, sizeof(joined)) != 0)
            return fail(err, errlen, "Invalid %s (too long)", what(o));
        return set_value(c, o, joined, err, errlen);
    }
    if (n == 0 || (n > 1 && o->kind != OPT_BIND && o->kind != OPT_ENTRY))
        return fail(err, errlen, "wrong number of arguments for '%s'",
                    o->name);
    for (size_t i = 0; i < n; i++) /* bind a b, cluster a:1 b:2 */
        if (set_value(c, o, values[i], err, errlen) != 0)
            return -1;
    return 0;
}

int config_apply(struct config *c, const char *section, const char *name,
                 const char *const *values, size_t nvalues,
                 char *err, size_t errlen)
{
    const struct opt_def *o = find_name(name, NULL);
    enum opt_section sec;

    if (section != NULL && section_of(section, &sec) != 0)
        return fail(err, errlen, "unknown section [%s]", section);
    if (o == NULL)
        return fail(err, errlen, "unknown directive '%s'", name);
    if (section != NULL && sec != o->section)
        return fail(err, errlen, "'%s' belongs in section [%s]", o->name,
                    section_names[o->section]);
    return apply_values(c, o, values, nvalues, err, errlen);
}

/* ---- the command line ---------------------------------------------------- */

/* One option as written: its definition, the name as spelled (for
 * messages), and a value given in the same argument ("--port=1", "-p1"). */
struct opt_use {
    const struct opt_def *def;
    char spelled[64];
    const char *inline_value; /* NULL if none */
};

static bool span_is(const char *s, const char *name, size_t len)
{
    return s != NULL && strlen(s) == len && memcmp(s, name, len) == 0;
}

/* "--name": exact case, as redis-cluster-proxy; either spelling. */
static const struct opt_def *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (!(opt_table[i].flags & OPTF_NO_LONG) &&
            (span_is(opt_table[i].name, name, len) ||
             span_is(opt_table[i].alias, name, len)))
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

/* What only makes sense across options, checked once everything is read. */
static int check_cluster_mode(const struct config *c, char *err, size_t errlen)
{
    if (c->port == 0 && c->tls_port == 0)
        return fail(err, errlen, "Cluster mode needs a TCP port (--port or --tls-port)");
    if (c->cport == 0)
        return fail(err, errlen, "Cluster mode: --port + 10000 is past "
                    "65535; give --cport");
    if (c->cport == c->port)
        return fail(err, errlen, "Cluster mode: --cport must differ from "
                    "--port");
    if (!c->cluster_password_set)
        return fail(err, errlen, "Cluster mode needs --cluster-password "
                    "(give --cluster-password \"\" to run the cluster port "
                    "without one)");
    if (c->heartbeat_interval_ms >= c->leader_lease_ms ||
        c->heartbeat_interval_ms >= c->proxy_node_timeout_ms)
        return fail(err, errlen, "Cluster mode: --heartbeat-interval (%d ms) "
                    "must be shorter than --leader-lease (%d ms) and "
                    "--proxy-node-timeout (%d ms)", c->heartbeat_interval_ms,
                    c->leader_lease_ms, c->proxy_node_timeout_ms);
    return 0;
}

/* A file option must name something this process can read now, so that
 * --check-config catches what would stop a start. */
static int check_readable(const char *name, const char *path, bool dir,
                          char *err, size_t errlen)
{
    struct stat st;

    if (path[0] == '\0')
        return 0;
    if (stat(path, &st) != 0 || access(path, dir ? R_OK | X_OK : R_OK) != 0)
        return fail(err, errlen, "%s '%s': %s", name, path, strerror(errno));
    if (dir != S_ISDIR(st.st_mode))
        return fail(err, errlen, "%s '%s': %s", name, path,
                    dir ? "not a directory" : "is a directory");
    return 0;
}

/* What the server side of TLS needs (the client port, the cluster port):
 * Redis's rules; the files are opened for real when the TLS context is
 * built (core/tls). */
static int check_tls_server(const struct config *c, const char *who,
                            char *err, size_t errlen)
{
    if (c->tls_cert_file[0] == '\0' || c->tls_key_file[0] == '\0')
        return fail(err, errlen, "%s needs tls-cert-file and tls-key-file",
                    who);
    if ((c->tls_auth_clients != CONFIG_TLS_AUTH_NO || c->tls_cluster) &&
        c->tls_ca_cert_file[0] == '\0' && c->tls_ca_cert_dir[0] == '\0')
        return fail(err, errlen, "Either tls-ca-cert-file or tls-ca-cert-dir "
                    "must be specified when tls-cluster or tls-auth-clients "
                    "are enabled (%s)", who);
    if (check_readable("tls-cert-file", c->tls_cert_file, false, err,
                       errlen) != 0 ||
        check_readable("tls-key-file", c->tls_key_file, false, err,
                       errlen) != 0 ||
        check_readable("tls-ca-cert-file", c->tls_ca_cert_file, false, err,
                       errlen) != 0)
        return -1;
    return check_readable("tls-ca-cert-dir", c->tls_ca_cert_dir, true, err,
                          errlen);
}

static int check_tls_backend(const struct config *c, char *err, size_t errlen)
{
    if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0'))
        return fail(err, errlen, "--tls-cert and --tls-key go together");
    if (check_readable("--tls-cacert", c->tls_cacert, false, err,
                       errlen) != 0 ||
        check_readable("--tls-cert", c->tls_cert, false, err, errlen) != 0)
        return -1;
    return check_readable("--tls-key", c->tls_key, false, err, errlen);
}

static int check_tls(const struct config *c, char *err, size_t errlen)
{
    if (c->tls_port != 0 && c->tls_port == c->port)
        return fail(err, errlen, "tls-port %d is also the plain port; give "
                    "another one, or --port 0 for TLS only", c->tls_port);
    if (c->tls_port != 0 && check_tls_server(c, "tls-port", err, errlen) != 0)
        return -1;
    if (c->cluster_mode && c->tls_cluster &&
        check_tls_server(c, "tls-cluster", err, errlen) != 0)
        return -1;
    return c->tls ? check_tls_backend(c, err, errlen) : 0;
}

static int finish(struct config *c, char *err, size_t errlen)
{
    if (c->port == 0 && c->unixsocket[0] == '\0' && c->tls_port == 0)
        return fail(err, errlen, "Invalid port '0': 0 disables TCP and "
                    "needs --unixsocket or --tls-port");
    if (check_tls(c, err, errlen) != 0)
        return -1;
    /* redis-cluster-proxy limits these rather than refusing to start, so a
     * configuration it accepted still starts. */
    if (c->connections_pool_size > CONFIG_MAX_POOL_SIZE)
        c->connections_pool_size = CONFIG_MAX_POOL_SIZE;
    if (c->connections_pool_min_size > c->connections_pool_size)
        c->connections_pool_min_size = c->connections_pool_size;
    if (c->daemonize && c->pidfile[0] == '\0')
        strcpy(c->pidfile, CONFIG_DEFAULT_PIDFILE);
    int base = c->port ? c->port : c->tls_port; /* TLS only: as Redis's bus */
    if (c->cport == 0 && base > 0 && base <= 65535 - 10000)
        c->cport = base + 10000;
    return c->cluster_mode ? check_cluster_mode(c, err, errlen) : 0;
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
    return finish(c, err, errlen);
}

/* ---- reading options back ------------------------------------------------ */

#define ITEM_LEN 272 /* "[" host "]:" port */

/* Where describe() formats what it does not point into the config. */
struct scratch {
    char text[1280];
    const char *items[CONFIG_MAX_ENTRY_POINTS];
    char item_text[CONFIG_MAX_ENTRY_POINTS][ITEM_LEN];
};

_Static_assert(CONFIG_MAX_SEEDS <= CONFIG_MAX_ENTRY_POINTS, "scratch items");
_Static_assert(CONFIG_MAX_BINDS <= CONFIG_MAX_ENTRY_POINTS, "scratch items");

/* "host:port", "[v6]:port", or a unix path. */
static void format_address(const struct entry_point *ep, char *buf, size_t len)
{
    /* %.255s: the host is a NUL-terminated host[256]; the precision only
     * tells gcc -O3, which loses track of that. */
    if (ep->port == 0)
        snprintf(buf, len, "%.255s", ep->host);
    else if (strchr(ep->host, ':') != NULL)
        snprintf(buf, len, "[%.255s]:%d", ep->host, ep->port);
    else
        snprintf(buf, len, "%.255s:%d", ep->host, ep->port);
}

static void list_addresses(const struct entry_point *eps, size_t n,
                           struct config_value *v, struct scratch *s)
{
    for (size_t i = 0; i < n; i++) {
        format_address(&eps[i], s->item_text[i], ITEM_LEN);
        s->items[i] = s->item_text[i];
    }
    v->kind = CONFIG_VALUE_LIST;
    v->items = s->items;
    v->nitems = n;
}

static void format_obuf(const struct config_obuf_limit *l, char *buf,
                        size_t len)
{
    snprintf(buf, len, "normal %lld %lld %d pubsub %lld %lld %d",
             l[CONFIG_OBUF_NORMAL].hard_bytes, l[CONFIG_OBUF_NORMAL].soft_bytes,
             l[CONFIG_OBUF_NORMAL].soft_seconds,
             l[CONFIG_OBUF_PUBSUB].hard_bytes, l[CONFIG_OBUF_PUBSUB].soft_bytes,
             l[CONFIG_OBUF_PUBSUB].soft_seconds);
}

/* The lease URI with its password hidden. */
static void format_uri(const struct config_redis_uri *u, char *buf, size_t len)
{
    char addr[ITEM_LEN];

    format_address(&u->addr, addr, sizeof(addr));
    if (u->user[0] != '\0' || u->password[0] != '\0')
        snprintf(buf, len, "redis://%s:%s@%s", u->user,
                 u->password[0] != '\0' ? CONFIG_REDACTED : "", addr);
    else
        snprintf(buf, len, "redis://%s", addr);
}

static void describe_string(const struct config *c, const struct opt_def *o,
                            struct config_value *v)
{
    const char *s = (const char *)c + o->offset;
    bool given = s[0] != '\0' ||
                 (s == c->cluster_password && c->cluster_password_set);

    v->kind = given ? CONFIG_VALUE_STRING : CONFIG_VALUE_NULL;
    v->string = (o->flags & OPTF_SECRET) && s[0] != '\0' ? CONFIG_REDACTED : s;
}

/* The option's current value; strings may point into *s. */
static void describe(const struct config *c, const struct opt_def *o,
                     struct config_value *v, struct scratch *s)
{
    const char *field = (const char *)c + o->offset;

    memset(v, 0, sizeof(*v));
    v->read_only = !(o->flags & OPTF_RW);
    v->kind = CONFIG_VALUE_INT;
    switch (o->kind) {
    case OPT_FLAG: case OPT_BOOL: v->integer = *(const bool *)field; break;
    case OPT_INT: v->integer = *(const int *)field; break;
    case OPT_INT_AUTO:
        v->integer = *(const int *)field;
        if (v->integer == CONFIG_AUTO) {
            v->kind = CONFIG_VALUE_STRING;
            v->string = "auto";
        }
        break;
    case OPT_BYTES: v->integer = *(const long long *)field; break;
    case OPT_OCTAL: /* reads as written: 760 for 0760 */
        snprintf(s->text, sizeof(s->text), "%o", *(const unsigned *)field);
        v->integer = atoll(s->text);
        break;
    case OPT_ENUM:
        v->kind = CONFIG_VALUE_STRING;
        v->string = o->names[*(const int *)field];
        break;
    case OPT_STRING: describe_string(c, o, v); break;
    case OPT_BIND:
        for (size_t i = 0; i < c->nbinds; i++)
            s->items[i] = c->binds[i];
        v->kind = CONFIG_VALUE_LIST;
        v->items = s->items;
        v->nitems = c->nbinds;
        break;
    case OPT_ENTRY:
        list_addresses(c->entry_points, c->nentry_points, v, s);
        break;
    case OPT_SEEDS:
        list_addresses(c->cluster_seeds, c->ncluster_seeds, v, s);
        break;
    case OPT_OBUF:
        format_obuf(c->obuf_limits, s->text, sizeof(s->text));
        v->kind = CONFIG_VALUE_STRING;
        v->string = s->text;
        break;
    case OPT_URI:
        format_uri(&c->lease_redis, s->text, sizeof(s->text));
        v->kind = c->lease_redis.set ? CONFIG_VALUE_STRING : CONFIG_VALUE_NULL;
        v->string = s->text;
        break;
    case OPT_CONFIG: v->kind = CONFIG_VALUE_NULL; break;
    }
}

static bool has_glob(const char *s)
{
    return strpbrk(s, "*?[\\") != NULL;
}

size_t config_get(const struct config *c, const char *pattern,
                  config_get_fn fn, void *arg)
{
    struct scratch *s = malloc(sizeof(*s)); /* 18 KB: not on the stack */
    struct config_value v;
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (size_t i = 0; i < N_OPTS; i++) {
        const struct opt_def *o = &opt_table[i];
        const char *name = o->name;

        if (o->flags & OPTF_CLI)
            continue;
        if (fnmatch(pattern, o->name, FNM_CASEFOLD) != 0) {
            /* "max-clients" is redis-cluster-proxy's name for it */
            if (o->alias == NULL || has_glob(pattern) ||
                strcasecmp(pattern, o->alias) != 0)
                continue;
            name = o->alias;
        }
        describe(c, o, &v, s);
        fn(arg, name, &v);
        n++;
    }
    free(s);
    return n;
}

/* PROXY CONFIG SET's limits that depend on another option, as rcp's. */
static int check_pool(struct config *next, const struct opt_def *o,
                      char *err, size_t errlen)
{
    if (o->offset != offsetof(struct config, connections_pool_size) &&
        o->offset != offsetof(struct config, connections_pool_min_size))
        return 0;
    if (next->connections_pool_size > CONFIG_MAX_POOL_SIZE)
        return fail(err, errlen, "Maximum value for '%s' is %d", o->name,
                    CONFIG_MAX_POOL_SIZE);
    if (next->connections_pool_min_size > next->connections_pool_size) {
        if (o->offset == offsetof(struct config, connections_pool_min_size))
            return fail(err, errlen, "Maximum value for '%s' is %d", o->name,
                        next->connections_pool_size);
        next->connections_pool_min_size = next->connections_pool_size;
    }
    return 0;
}

int config_set(struct config *c, const char *name, const char *value,
               char *err, size_t errlen)
{
    const struct opt_def *o = find_name(name, NULL);
    struct config *next;
    int rc = -1;

    if (o == NULL)
        return fail(err, errlen, "Invalid config option");
    if (!(o->flags & OPTF_RW))
        return fail(err, errlen, "This config option is read-only");
    /* Work on a copy so that a refused value changes nothing. */
    next = malloc(sizeof(*next));
    if (next == NULL)
        return fail(err, errlen, "Out of memory");
    *next = *c;
    if (set_value(next, o, value, err, errlen) == 0 &&
        check_pool(next, o, err, errlen) == 0) {
        *c = *next;
        rc = 0;
    }
    free(next);
    return rc;
}

/* ---- the dump ------------------------------------------------------------ */

static bool needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (; *s != '\0'; s++)
        if (!isgraph((unsigned char)*s) || strchr("\"'#\\", *s) != NULL)
            return true;
    return false;
}

/* The inside of a double-quoted word. */
static void dump_escaped(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (isprint(ch))
            fputc(ch, out);
        else
            fprintf(out, "\\x%02x", ch);
    }
}

/* A word config_load_file reads back as `s`. */
static void dump_word(FILE *out, const char *s)
{
    if (!needs_quotes(s)) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    dump_escaped(out, s);
    fputc('"', out);
}

static void dump_line(FILE *out, const char *name, const char *word)
{
    fprintf(out, "%s ", name);
    dump_word(out, word);
    fputc('\n', out);
}

static void dump_option(FILE *out, const struct opt_def *o,
                        const struct config_value *v)
{
    switch (v->kind) {
    case CONFIG_VALUE_INT:
        if (o->kind == OPT_FLAG || o->kind == OPT_BOOL)
            fprintf(out, "%s %s\n", o->name, v->integer ? "yes" : "no");
        else
            fprintf(out, "%s %lld\n", o->name, v->integer);
        return;
    case CONFIG_VALUE_STRING:
        if (o->kind == OPT_OBUF) /* several words */
            fprintf(out, "%s %s\n", o->name, v->string);
        else
            dump_line(out, o->name, v->string);
        return;
    case CONFIG_VALUE_NULL: /* an unset password or lease: leave it out */
        if (!(o->flags & OPTF_SECRET) && o->kind != OPT_URI)
            dump_line(out, o->name, "");
        return;
    case CONFIG_VALUE_LIST:
        break;
    }
    if (o->kind == OPT_SEEDS) { /* one directive: a later one replaces it */
        fprintf(out, "%s \"", o->name);
        for (size_t i = 0; i < v->nitems; i++) {
            fputs(i ? "," : "", out);
            dump_escaped(out, v->items[i]);
        }
        fputs("\"\n", out);
        return;
    }
    for (size_t i = 0; i < v->nitems; i++) /* bind and entry-point add up */
        dump_line(out, o->name, v->items[i]);
}

int config_dump(const struct config *c, FILE *out)
{
    struct scratch *s = malloc(sizeof(*s));
    struct config_value v;

    if (s == NULL)
        return -1;
    fputs("# ringslot: effective configuration (passwords shown as "
          CONFIG_REDACTED ")\n", out);
    for (size_t i = 0; i < N_OPTS; i++) {
        if (opt_table[i].flags & OPTF_CLI)
            continue;
        describe(c, &opt_table[i], &v, s);
        dump_option(out, &opt_table[i], &v);
    }
    free(s);
    return fflush(out) == 0 && !ferror(out) ? 0 : -1;
}

void config_redact(struct config *c)
{
    char *secrets[] = { c->auth, c->requirepass, c->admin_password,
                        c->cluster_password, c->lease_redis.password,
                        c->tls_key_file_pass };

    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (secrets[i][0] != '\0')
            strcpy(secrets[i], CONFIG_REDACTED);
}
