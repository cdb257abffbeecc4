/*
 * test_config.c — the config module (config.h): defaults, every option in
 * both "--opt value" and "--opt=value" form, bad values and their
 * messages, entry points; both file formats (written to a temporary
 * directory), include, errors naming file and line, command-line options
 * overriding a file; config_dump's redaction and round trip; the PROXY
 * CONFIG GET/SET matrix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../config/config.h"

/* argv[0] plus the NULL-terminated `args`; returns config_parse_args's
 * result, with its message in err. The config starts from the defaults. */
static int parse(struct config *c, char *err, size_t errlen,
                 const char *const *args)
{
    char *argv[160] = { "ringslot" };
    int argc = 1;

    while (args[argc - 1] != NULL) {
        assert_true(argc < 160);
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    config_defaults(c);
    err[0] = '\0';
    return config_parse_args(c, argc, argv, err, errlen);
}

/* Parse must fail with a message starting with `want`. */
static void assert_parse_error(const char *const *args, const char *want)
{
    struct config c;
    char err[512];

    assert_int_equal(parse(&c, err, sizeof(err), args), -1);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error '%s', wanted '%s...'", err, want);
}

static void assert_parse_ok(struct config *c, const char *const *args)
{
    char err[512];
    if (parse(c, err, sizeof(err), args) != 0)
        fail_msg("unexpected error: %s", err);
}

static void test_defaults(void **state)
{
    struct config c;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    config_defaults(&c);
    assert_int_equal(c.port, 7777);
    assert_int_equal(c.nbinds, 0);
    assert_int_equal(c.threads, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(c.log_level, LOG_INFO);
    assert_string_equal(c.logfile, "");
    assert_int_equal(c.nentry_points, 0);
    assert_int_equal(c.maxclients, 10000);
    assert_int_equal(c.tcpkeepalive, 300);
    assert_int_equal(c.tcp_backlog, 511);
    assert_int_equal(c.proto_max_bulk_len, 512LL * 1024 * 1024);
    assert_int_equal(c.client_query_buffer_limit, 1024LL * 1024 * 1024);
    assert_int_equal(c.connect_timeout_ms, 1000);
    assert_int_equal(c.backend_timeout_ms, 0);
    assert_false(c.help);
    assert_false(c.version);
}

static void assert_all_options_set(const struct config *c)
{
    assert_int_equal(c->port, 7001);
    assert_int_equal(c->nbinds, 2);
    assert_string_equal(c->binds[0], "127.0.0.1");
    assert_string_equal(c->binds[1], "::1");
    assert_int_equal(c->threads, 3);
    assert_int_equal(c->log_level, LOG_WARNING);
    assert_string_equal(c->logfile, "/tmp/ringslot.log");
    assert_int_equal(c->maxclients, 50);
    assert_int_equal(c->tcpkeepalive, 0);
    assert_int_equal(c->tcp_backlog, 128);
    assert_int_equal(c->connect_timeout_ms, 250);
    assert_int_equal(c->backend_timeout_ms, 5000);
    assert_int_equal(c->proto_max_bulk_len, 1024 * 1024);
    assert_int_equal(c->client_query_buffer_limit, 2LL * 1024 * 1024 * 1024);
    assert_int_equal(c->nentry_points, 1);
    assert_string_equal(c->entry_points[0].host, "10.0.0.1");
    assert_int_equal(c->entry_points[0].port, 7000);
    assert_false(c->help);
    assert_false(c->version);
}

static void test_every_option(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){
        "--port", "7001", "--bind", "127.0.0.1", "--bind", "::1",
        "--threads", "3", "--log-level", "warning",
        "--logfile", "/tmp/ringslot.log", "--maxclients", "50",
        "--tcpkeepalive", "0", "--tcp-backlog", "128",
        "--connect-timeout", "250", "--backend-timeout", "5000",
        "--proto-max-bulk-len", "1mb", "--client-query-buffer-limit", "2gb",
        "10.0.0.1:7000", NULL });
    assert_all_options_set(&c);
}

static void test_every_option_equals_form(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){
        "--port=7001", "--bind=127.0.0.1", "--bind=::1", "--threads=3",
        "--log-level=warning", "--logfile=/tmp/ringslot.log",
        "--maxclients=50", "--tcpkeepalive=0", "--tcp-backlog=128",
        "--connect-timeout=250", "--backend-timeout=5000",
        "--proto-max-bulk-len=1mb", "--client-query-buffer-limit=2gb",
        "10.0.0.1:7000", NULL });
    assert_all_options_set(&c);
}

static void test_short_options(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "-p", "6000", NULL });
    assert_int_equal(c.port, 6000);
    assert_parse_ok(&c, (const char *[]){ "-p6001", NULL });
    assert_int_equal(c.port, 6001);
    assert_parse_ok(&c, (const char *[]){ "-h", NULL });
    assert_true(c.help);
}

static void test_help_and_version(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "--help", NULL });
    assert_true(c.help);
    /* Help wins over whatever follows. */
    assert_parse_ok(&c, (const char *[]){ "--help", "--bogus", NULL });
    assert_true(c.help);
    assert_parse_ok(&c, (const char *[]){ "--version", NULL });
    assert_true(c.version);
    assert_false(c.help);
    assert_parse_error((const char *[]){ "--help=yes", NULL },
                       "Option '--help' takes no value");
}

static void test_value_that_looks_like_equals(void **state)
{
    struct config c;

    /* Only the first '=' splits: the rest belongs to the value. */
    assert_parse_ok(&c, (const char *[]){ "--logfile=/tmp/a=b.log", NULL });
    assert_string_equal(c.logfile, "/tmp/a=b.log");
    assert_parse_ok(&c, (const char *[]){ "--logfile=", NULL });
    assert_string_equal(c.logfile, "");
}

static void test_log_levels(void **state)
{
    static const char *names[] = { "debug", "info", "success", "warning",
                                   "error" };
    struct config c;

    for (int i = 0; i < 5; i++) {
        assert_parse_ok(&c, (const char *[]){ "--log-level", names[i], NULL });
        assert_int_equal(c.log_level, i);
    }
    assert_parse_ok(&c, (const char *[]){ "--log-level", "DEBUG", NULL });
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_parse_error((const char *[]){ "--log-level", "verbose", NULL },
                       "Invalid log level 'verbose'");
}

static void test_memory_units(void **state)
{
    static const struct { const char *in; long long want; } ok[] = {
        { "42", 42 }, { "42b", 42 }, { "100k", 100000 }, { "100kb", 102400 },
        { "1m", 1000000 }, { "512mb", 512LL << 20 }, { "1g", 1000000000 },
        { "1gb", 1LL << 30 }, { "1GB", 1LL << 30 }, { "3Mb", 3LL << 20 },
    };
    static const char *bad[] = { "", "mb", "-1", "0", "12xb", "1 mb",
                                 "1.5gb", "99999999999gb",
                                 "99999999999999999999" };
    struct config c;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_parse_ok(&c, (const char *[]){ "--proto-max-bulk-len",
                                               ok[i].in, NULL });
        assert_int_equal(c.proto_max_bulk_len, ok[i].want);
        assert_parse_ok(&c, (const char *[]){ "--client-query-buffer-limit",
                                               ok[i].in, NULL });
        assert_int_equal(c.client_query_buffer_limit, ok[i].want);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_parse_error((const char *[]){ "--proto-max-bulk-len", bad[i],
                                             NULL },
                           "Invalid proto-max-bulk-len");
}

static void test_bad_numbers(void **state)
{
    assert_parse_error((const char *[]){ "--port", "99999", NULL },
                       "Invalid port '99999'");
    assert_parse_error((const char *[]){ "--port", "0", NULL },
                       "Invalid port '0'");
    assert_parse_error((const char *[]){ "-p", "http", NULL },
                       "Invalid port 'http'");
    assert_parse_error((const char *[]){ "--port=", NULL }, "Invalid port ''");
    assert_parse_error((const char *[]){ "--port", "+7000", NULL },
                       "Invalid port '+7000'");
    assert_parse_error((const char *[]){ "--port", "7000x", NULL },
                       "Invalid port '7000x'");
    assert_parse_error((const char *[]){ "--threads", "0", NULL },
                       "Invalid number of threads '0'");
    assert_parse_error((const char *[]){ "--threads", "257", NULL },
                       "Invalid number of threads '257'");
    assert_parse_error((const char *[]){ "--maxclients", "0", NULL },
                       "Invalid maxclients '0'");
    assert_parse_error((const char *[]){ "--maxclients", "99999999999", NULL },
                       "Invalid maxclients '99999999999'");
    assert_parse_error((const char *[]){ "--tcpkeepalive", "-1", NULL },
                       "Invalid tcpkeepalive '-1'");
    assert_parse_error((const char *[]){ "--tcp-backlog", "x", NULL },
                       "Invalid tcp-backlog 'x'");
    assert_parse_error((const char *[]){ "--connect-timeout", "0", NULL },
                       "Invalid connect-timeout '0'");
    assert_parse_error((const char *[]){ "--backend-timeout", "-5", NULL },
                       "Invalid backend-timeout '-5'");
}

static void test_number_bounds(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "--threads", "1", "--port", "1",
                                           NULL });
    assert_int_equal(c.threads, 1);
    assert_int_equal(c.port, 1);
    assert_parse_ok(&c, (const char *[]){ "--threads", "256", "--port",
                                           "65535", NULL });
    assert_int_equal(c.threads, 256);
    assert_int_equal(c.port, 65535);
}

static void test_bad_options(void **state)
{
    assert_parse_error((const char *[]){ "--foo", NULL },
                       "Invalid option '--foo'");
    assert_parse_error((const char *[]){ "--foo=bar", NULL },
                       "Invalid option '--foo'");
    assert_parse_error((const char *[]){ "-x", NULL }, "Invalid option '-x'");
    assert_parse_error((const char *[]){ "-", NULL }, "Invalid option '-");
    assert_parse_error((const char *[]){ "--Port", "1", NULL },
                       "Invalid option '--Port'");
    assert_parse_error((const char *[]){ "--port", NULL },
                       "Missing value for option '--port'");
    assert_parse_error((const char *[]){ "10.0.0.1:7000", "-p", NULL },
                       "Missing value for option '-p'");
    assert_parse_error((const char *[]){ "--threads", "2", "--logfile", NULL },
                       "Missing value for option '--logfile'");
}

static void test_binds(void **state)
{
    struct config c;
    const char *args[2 * CONFIG_MAX_BINDS + 3];
    char names[CONFIG_MAX_BINDS + 1][24];

    for (int i = 0; i <= CONFIG_MAX_BINDS; i++) {
        snprintf(names[i], sizeof(names[i]), "10.0.0.%d", i);
        args[2 * i] = "--bind";
        args[2 * i + 1] = names[i];
    }
    args[2 * CONFIG_MAX_BINDS] = NULL;
    assert_parse_ok(&c, args);
    assert_int_equal(c.nbinds, CONFIG_MAX_BINDS);
    assert_string_equal(c.binds[CONFIG_MAX_BINDS - 1], "10.0.0.15");
    args[2 * CONFIG_MAX_BINDS] = "--bind"; /* one more than allowed */
    args[2 * CONFIG_MAX_BINDS + 2] = NULL;
    assert_parse_error(args, "Too many --bind addresses");

    char longname[80];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_parse_error((const char *[]){ "--bind", longname, NULL },
                       "Invalid bind address");
    assert_parse_error((const char *[]){ "--bind", "", NULL },
                       "Invalid bind address ''");
}

static void test_logfile_too_long(void **state)
{
    struct config c;
    char *path = malloc(sizeof(c.logfile) + 1);

    assert_non_null(path);
    memset(path, 'x', sizeof(c.logfile));
    path[sizeof(c.logfile)] = '\0';
    assert_parse_error((const char *[]){ "--logfile", path, NULL },
                       "Invalid logfile");
    path[sizeof(c.logfile) - 1] = '\0'; /* exactly fits */
    assert_parse_ok(&c, (const char *[]){ "--logfile", path, NULL });
    assert_int_equal(strlen(c.logfile), sizeof(c.logfile) - 1);
    free(path);
}

/* ---- addresses ---------------------------------------------------------- */

static void assert_address(const char *in, const char *host, int port)
{
    struct entry_point ep;
    if (config_parse_address(in, &ep) != 0)
        fail_msg("'%s' rejected", in);
    assert_string_equal(ep.host, host);
    assert_int_equal(ep.port, port);
}

static void test_parse_address(void **state)
{
    assert_address("127.0.0.1:7000", "127.0.0.1", 7000);
    assert_address("redis-1.example:6379", "redis-1.example", 6379);
    assert_address("[::1]:7000", "::1", 7000);
    assert_address("[fe80::1%eth0]:7001", "fe80::1%eth0", 7001);
    assert_address(":7000", "127.0.0.1", 7000);
    assert_address("/tmp/redis.sock", "/tmp/redis.sock", 0);
    assert_address("./r:1.sock", "./r:1.sock", 0);
    assert_address("h:65535", "h", 65535);
}

static void test_parse_address_bad(void **state)
{
    static const char *bad[] = {
        "", "localhost", "::1:7000", "[::1]7000", "[::1]", "[]:7000",
        "[::1:7000", "h:0", "h:65536", "h:", "h:-1", "h:70a", ":", "[::1]:",
        "h]:1",
    };
    struct entry_point ep = { .host = "untouched", .port = 9 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (config_parse_address(bad[i], &ep) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_string_equal(ep.host, "untouched"); /* no partial writes */
    }
    char longhost[300];
    memset(longhost, 'h', 280);
    strcpy(longhost + 280, ":7000");
    assert_int_equal(config_parse_address(longhost, &ep), -1);
}

static void test_entry_point_lists(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){
        "a:1,b:2,[::1]:3", "--threads", "2", "/tmp/redis.sock", ":4", NULL });
    assert_int_equal(c.nentry_points, 5);
    assert_string_equal(c.entry_points[0].host, "a");
    assert_int_equal(c.entry_points[0].port, 1);
    assert_string_equal(c.entry_points[1].host, "b");
    assert_string_equal(c.entry_points[2].host, "::1");
    assert_int_equal(c.entry_points[2].port, 3);
    assert_string_equal(c.entry_points[3].host, "/tmp/redis.sock");
    assert_int_equal(c.entry_points[3].port, 0);
    assert_string_equal(c.entry_points[4].host, "127.0.0.1");
    assert_int_equal(c.threads, 2);

    /* After "--" everything is an entry point, even "-x". */
    assert_parse_error((const char *[]){ "--", "a:1", "-p", NULL },
                       "Invalid address '-p'");
    assert_parse_ok(&c, (const char *[]){ "--", "a:1", NULL });
    assert_int_equal(c.nentry_points, 1);

    assert_parse_error((const char *[]){ "a:1,,b:2", NULL },
                       "Invalid address ''");
    assert_parse_error((const char *[]){ "a:1,", NULL }, "Invalid address ''");
    assert_parse_error((const char *[]){ "a:1,nope", NULL },
                       "Invalid address 'nope'");
    assert_parse_error((const char *[]){ "localhost", NULL },
                       "Invalid address 'localhost'");
}

static void test_too_many_entry_points(void **state)
{
    struct config c;
    char list[CONFIG_MAX_ENTRY_POINTS * 8 + 16];
    char *p = list;

    for (int i = 1; i <= CONFIG_MAX_ENTRY_POINTS; i++)
        p += sprintf(p, "%sh:%d", i > 1 ? "," : "", i);
    assert_parse_ok(&c, (const char *[]){ list, NULL });
    assert_int_equal(c.nentry_points, CONFIG_MAX_ENTRY_POINTS);
    strcpy(p, ",h:65");
    assert_parse_error((const char *[]){ list, NULL }, "Too many entry points");
    /* The limit holds across separate arguments too. */
    *p = '\0';
    assert_parse_error((const char *[]){ list, "x:1", NULL },
                       "Too many entry points");
}

/* ---- misc --------------------------------------------------------------- */

static void test_parse_twice(void **state)
{
    struct config c;

    /* No hidden parser state between calls (the reason not to use getopt). */
    assert_parse_ok(&c, (const char *[]){ "--port", "1000", "a:1", NULL });
    assert_parse_ok(&c, (const char *[]){ "--threads", "4", "b:2", NULL });
    assert_int_equal(c.port, 7777);
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.nentry_points, 1);
    assert_string_equal(c.entry_points[0].host, "b");
}

static void test_null_error_buffer(void **state)
{
    struct config c;
    char *argv[] = { "ringslot", "--foo", NULL };

    config_defaults(&c);
    assert_int_equal(config_parse_args(&c, 2, argv, NULL, 0), -1);
}

static void test_usage_lists_every_option(void **state)
{
    static const char *opts[] = {
        "-c <file>", "--check-config", "-p, --port", "--bind", "--unixsocket",
        "--unixsocketperm", "--threads", "--maxclients", "--max-clients",
        "--tcpkeepalive", "--tcp-backlog", "--daemonize", "--pidfile",
        "--timeout", "--proto-max-bulk-len", "--client-query-buffer-limit",
        "--client-reply-budget", "--client-output-buffer-limit",
        "--requirepass", "--admin-password", "--console-port",
        "--enable-cross-slot", "--log-level", "--logfile", "--disable-colors",
        "--dump-queries", "--dump-buffer", "--dump-queues", "-a, --auth",
        "--auth-user", "--connections-pool-size",
        "--connections-pool-min-size", "--connections-pool-spawn-every",
        "--connections-pool-spawn-rate", "--disable-multiplexing",
        "--connect-timeout", "--backend-timeout", "--cluster-down-timeout",
        "--wait-timeout-cap", "--read-from-replicas", "--replica-max-lag",
        "--replica-read-after-write", "no|yes|replica",
        "--cluster-mode", "--cport", "--cluster-name",
        "--cluster-password", "--announce-ip", "--announce-port",
        "--cluster-seeds", "--node-id-file", "--lease-redis",
        "--leader-lease", "--heartbeat-interval", "--proxy-node-timeout",
        "--moved-mode", "-h, --help", "--version",
        "--tls-port", "--tls-cert-file", "--tls-key-file",
        "--tls-key-file-pass", "--tls-ca-cert-file", "--tls-ca-cert-dir",
        "--tls-auth-clients", "--tls-protocols", "--tls-ciphers",
        "--tls-ciphersuites", "--tls-prefer-server-ciphers",
        "--tls-session-caching", "--tls-session-cache-size",
        "--tls-session-cache-timeout", "--tls ", "--tls-cacert", "--tls-cert ",
        "--tls-key ", "--tls-insecure", "--tls-cluster", "--tls-handshake-timeout",
        "online CPUs", "debug|info|success|warning|error", "Usage:",
        "auto|always", "hint|always|never",
    };
    const char *u = config_usage();

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (strstr(u, opts[i]) == NULL)
            fail_msg("usage lacks '%s'", opts[i]);
}

/* ---- options added for redis-cluster-proxy parity and ringslot ---------- */

static void test_new_defaults(void **state)
{
    struct config c;

    config_defaults(&c);
    assert_string_equal(c.unixsocket, "");
    assert_int_equal(c.unixsocketperm, 0);
    assert_false(c.daemonize);
    assert_string_equal(c.pidfile, "");
    assert_int_equal(c.timeout, 0);
    assert_int_equal(c.client_reply_budget, 256LL << 20);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].hard_bytes, 0);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].soft_bytes, 0);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].soft_seconds, 0);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_PUBSUB].hard_bytes, 32LL << 20);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_PUBSUB].soft_bytes, 8LL << 20);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_PUBSUB].soft_seconds, 60);
    assert_string_equal(c.requirepass, "");
    assert_string_equal(c.admin_password, "");
    assert_int_equal(c.console_port, 0);
    assert_false(c.disable_colors);
    assert_false(c.dump_queries);
    assert_false(c.dump_buffer);
    assert_false(c.dump_queues);
    assert_string_equal(c.auth, "");
    assert_string_equal(c.auth_user, "");
    assert_int_equal(c.connections_pool_size, 10);
    assert_int_equal(c.connections_pool_min_size, 10);
    assert_int_equal(c.connections_pool_spawn_every_ms, 50);
    assert_int_equal(c.connections_pool_spawn_rate, 2);
    assert_int_equal(c.disable_multiplexing, CONFIG_MULTIPLEXING_AUTO);
    assert_false(c.enable_cross_slot);
    assert_int_equal(c.cluster_down_timeout_ms, CONFIG_AUTO);
    assert_int_equal(c.wait_timeout_cap_ms, 100);
    assert_int_equal(c.read_from_replicas, CONFIG_READ_MASTER);
    assert_int_equal(c.replica_max_lag_ms, 1000);
    assert_int_equal(c.replica_read_after_write_ms, 0);
    assert_false(c.cluster_mode);
    assert_int_equal(c.cport, 0);
    assert_string_equal(c.cluster_name, "ringslot");
    assert_string_equal(c.cluster_password, "");
    assert_false(c.cluster_password_set);
    assert_string_equal(c.announce_ip, "");
    assert_int_equal(c.announce_port, 0);
    assert_int_equal(c.ncluster_seeds, 0);
    assert_string_equal(c.node_id_file, "");
    assert_false(c.lease_redis.set);
    assert_int_equal(c.leader_lease_ms, 3000);
    assert_int_equal(c.heartbeat_interval_ms, 500);
    assert_int_equal(c.proxy_node_timeout_ms, 3000);
    assert_int_equal(c.moved_mode, CONFIG_MOVED_HINT);
    assert_false(c.check_config);
    /* TLS: Redis's defaults; redis-cli's for the backend side */
    assert_int_equal(c.tls_port, 0);
    assert_string_equal(c.tls_cert_file, "");
    assert_string_equal(c.tls_key_file_pass, "");
    assert_int_equal(c.tls_auth_clients, CONFIG_TLS_AUTH_YES);
    assert_string_equal(c.tls_protocols, "");
    assert_false(c.tls_prefer_server_ciphers);
    assert_true(c.tls_session_caching);
    assert_int_equal(c.tls_session_cache_size, 20480);
    assert_int_equal(c.tls_session_cache_timeout, 300);
    assert_false(c.tls_cluster);
    assert_false(c.tls);
    assert_false(c.tls_insecure);
    assert_string_equal(c.tls_cacert, "");
}

/* Every option with a non-default value; the same as ALL_RCP and ALL_INI. */
static const char *const all_args[] = {
    "--port", "7001", "--bind", "127.0.0.1", "--bind", "::1",
    "--unixsocket", "/tmp/rs.sock", "--unixsocketperm", "760",
    "--threads", "3", "--maxclients", "50", "--tcpkeepalive", "0",
    "--tcp-backlog", "128", "--daemonize", "--pidfile", "/tmp/rs.pid",
    "--timeout", "30", "--proto-max-bulk-len", "1mb",
    "--client-query-buffer-limit", "2gb", "--client-reply-budget", "0",
    "--client-output-buffer-limit", "normal 1mb 512kb 10 pubsub 64mb 16mb 90",
    "--requirepass", "clientpw", "--admin-password", "adminpw",
    "--console-port", "9121", "--enable-cross-slot", "--log-level", "warning",
    "--logfile", "/tmp/ringslot.log", "--disable-colors", "--dump-queries",
    "--dump-buffer", "--dump-queues", "-a", "backendpw",
    "--auth-user", "proxyuser", "--connections-pool-size", "20",
    "--connections-pool-min-size", "15", "--connections-pool-spawn-every",
    "500", "--connections-pool-spawn-rate", "3",
    "--disable-multiplexing", "always", "--connect-timeout", "250",
    "--backend-timeout", "5000", "--cluster-down-timeout", "0",
    "--wait-timeout-cap", "50", "--read-from-replicas", "replica",
    "--replica-max-lag", "300", "--replica-read-after-write", "20",
    "--cluster-mode", "--cport", "17100",
    "--cluster-name", "prod", "--cluster-password", "clusterpw",
    "--announce-ip", "10.1.2.3", "--announce-port", "7101",
    "--cluster-seeds", "10.1.2.4:17100,[::1]:17101",
    "--node-id-file", "/var/lib/ringslot/id",
    "--lease-redis", "redis://:leasepw@10.0.0.9:6379",
    "--leader-lease", "4000", "--heartbeat-interval", "400",
    "--proxy-node-timeout", "5000", "--moved-mode", "never",
    "--tls-cert-file", "/etc/rs/s.crt", "--tls-key-file", "/etc/rs/s.key",
    "--tls-key-file-pass", "keypw", "--tls-ca-cert-file", "/etc/rs/ca.crt",
    "--tls-ca-cert-dir", "/etc/rs/ca", "--tls-auth-clients", "optional",
    "--tls-protocols", "TLSv1.2 TLSv1.3", "--tls-ciphers", "HIGH:!aNULL",
    "--tls-ciphersuites", "TLS_AES_256_GCM_SHA384",
    "--tls-prefer-server-ciphers", "yes", "--tls-session-caching", "no",
    "--tls-session-cache-size", "100", "--tls-session-cache-timeout", "60",
    "--tls-cacert", "/etc/rs/nodes-ca.crt", "--tls-cert", "/etc/rs/c.crt",
    "--tls-key", "/etc/rs/c.key", "--tls-insecure",
    "10.0.0.1:7000", NULL,
};

#define ALL_RCP \
    "port 7001\n" "bind 127.0.0.1 ::1\n" "unixsocket /tmp/rs.sock\n" \
    "unixsocketperm 760\n" "threads 3\n" "max-clients 50\n" \
    "tcpkeepalive 0\n" "tcp-backlog 128\n" "daemonize yes\n" \
    "pidfile /tmp/rs.pid\n" "timeout 30\n" "proto-max-bulk-len 1mb\n" \
    "client-query-buffer-limit 2gb\n" "client-reply-budget 0\n" \
    "client-output-buffer-limit normal 1mb 512kb 10 pubsub 64mb 16mb 90\n" \
    "requirepass clientpw\n" "admin-password adminpw\n" \
    "console-port 9121\n" "enable-cross-slot yes\n" "log-level warning\n" \
    "logfile /tmp/ringslot.log\n" "disable-colors yes\n" \
    "dump-queries yes\n" "dump-buffer yes\n" "dump-queues yes\n" \
    "auth backendpw\n" "auth-user proxyuser\n" \
    "connections-pool-size 20\n" "connections-pool-min-size 15\n" \
    "connections-pool-spawn-every 500\n" "connections-pool-spawn-rate 3\n" \
    "disable-multiplexing always\n" "connect-timeout 250\n" \
    "backend-timeout 5000\n" "cluster-down-timeout 0\n" \
    "wait-timeout-cap 50\n" "read-from-replicas replica\n" \
    "replica-max-lag 300\n" "replica-read-after-write 20\n" \
    "cluster-mode yes\n" "cport 17100\n" \
    "cluster-name prod\n" "cluster-password clusterpw\n" \
    "announce-ip 10.1.2.3\n" "announce-port 7101\n" \
    "cluster-seeds 10.1.2.4:17100,[::1]:17101\n" \
    "node-id-file /var/lib/ringslot/id\n" \
    "lease-redis redis://:leasepw@10.0.0.9:6379\n" "leader-lease 4000\n" \
    "heartbeat-interval 400\n" "proxy-node-timeout 5000\n" \
    "moved-mode never\n" "cluster 10.0.0.1:7000\n" \
    "tls-cert-file /etc/rs/s.crt\n" "tls-key-file /etc/rs/s.key\n" \
    "tls-key-file-pass keypw\n" "tls-ca-cert-file /etc/rs/ca.crt\n" \
    "tls-ca-cert-dir /etc/rs/ca\n" "tls-auth-clients optional\n" \
    "tls-protocols TLSv1.2 TLSv1.3\n" "tls-ciphers HIGH:!aNULL\n" \
    "tls-ciphersuites TLS_AES_256_GCM_SHA384\n" \
    "tls-prefer-server-ciphers yes\n" "tls-session-caching no\n" \
    "tls-session-cache-size 100\n" "tls-session-cache-timeout 60\n" \
    "tls-cacert /etc/rs/nodes-ca.crt\n" "tls-cert /etc/rs/c.crt\n" \
    "tls-key /etc/rs/c.key\n" "tls-insecure yes\n"

#define ALL_INI \
    "; ringslot.ini\n" "[proxy]\n" "port = 7001\n" "bind = 127.0.0.1\n" \
    "bind = ::1\n" "unixsocket = /tmp/rs.sock\n" "unixsocketperm = 760\n" \
    "threads = 3\n" "maxclients = 50\n" "tcpkeepalive = 0\n" \
    "tcp-backlog = 128\n" "daemonize = yes\n" "pidfile = /tmp/rs.pid\n" \
    "timeout = 30\n" "proto-max-bulk-len = 1mb\n" \
    "client-query-buffer-limit = 2gb\n" "client-reply-budget = 0\n" \
    "client-output-buffer-limit = normal 1mb 512kb 10 pubsub 64mb 16mb 90\n" \
    "requirepass = clientpw\n" "admin-password = adminpw\n" \
    "console-port = 9121\n" "enable-cross-slot = true\n" \
    "log-level = warning\n" "logfile = /tmp/ringslot.log\n" \
    "disable-colors = yes\n" "dump-queries = yes\n" "dump-buffer = on\n" \
    "dump-queues = 1\n" \
    "tls-cert-file = /etc/rs/s.crt\n" "tls-key-file = /etc/rs/s.key\n" \
    "tls-key-file-pass = keypw\n" "tls-ca-cert-file = /etc/rs/ca.crt\n" \
    "tls-ca-cert-dir = /etc/rs/ca\n" "tls-auth-clients = optional\n" \
    "tls-protocols = \"TLSv1.2 TLSv1.3\"\n" "tls-ciphers = HIGH:!aNULL\n" \
    "tls-ciphersuites = TLS_AES_256_GCM_SHA384\n" \
    "tls-prefer-server-ciphers = yes\n" "tls-session-caching = no\n" \
    "tls-session-cache-size = 100\n" "tls-session-cache-timeout = 60\n" \
    "[backend]\n" \
    "tls-cacert = /etc/rs/nodes-ca.crt\n" "tls-cert = /etc/rs/c.crt\n" \
    "tls-key = /etc/rs/c.key\n" "tls-insecure = on\n" "entry-point = 10.0.0.1:7000\n" "auth = backendpw\n" \
    "auth-user = proxyuser\n" "connections-pool-size = 20\n" \
    "connections-pool-min-size = 15\n" \
    "connections-pool-spawn-every = 500\n" \
    "connections-pool-spawn-rate = 3\n" "disable-multiplexing = always\n" \
    "connect-timeout = 250\n" "backend-timeout = 5000\n" \
    "cluster-down-timeout = 0\n" "wait-timeout-cap = 50\n" \
    "read-from-replicas = replica\n" "replica-max-lag = 300\n" \
    "replica-read-after-write = 20\n" \
    "[cluster]\n" "cluster-mode = yes\n" "cport = 17100\n" \
    "cluster-name = prod\n" "cluster-password = clusterpw\n" \
    "announce-ip = 10.1.2.3\n" "announce-port = 7101\n" \
    "cluster-seeds = 10.1.2.4:17100,[::1]:17101\n" \
    "node-id-file = /var/lib/ringslot/id\n" \
    "lease-redis = redis://:leasepw@10.0.0.9:6379\n" "leader-lease = 4000\n" \
    "heartbeat-interval = 400\n" "proxy-node-timeout = 5000\n" \
    "moved-mode = never\n"

static void assert_all_new_options_set(const struct config *c)
{
    assert_int_equal(c->port, 7001);
    assert_int_equal(c->nbinds, 2);
    assert_string_equal(c->binds[1], "::1");
    assert_string_equal(c->unixsocket, "/tmp/rs.sock");
    assert_int_equal(c->unixsocketperm, 0760);
    assert_int_equal(c->threads, 3);
    assert_int_equal(c->maxclients, 50);
    assert_int_equal(c->tcpkeepalive, 0);
    assert_int_equal(c->tcp_backlog, 128);
    assert_true(c->daemonize);
    assert_string_equal(c->pidfile, "/tmp/rs.pid");
    assert_int_equal(c->timeout, 30);
    assert_int_equal(c->proto_max_bulk_len, 1 << 20);
    assert_int_equal(c->client_query_buffer_limit, 2LL << 30);
    assert_int_equal(c->client_reply_budget, 0);
    assert_int_equal(c->obuf_limits[CONFIG_OBUF_NORMAL].hard_bytes, 1 << 20);
    assert_int_equal(c->obuf_limits[CONFIG_OBUF_NORMAL].soft_bytes, 512 << 10);
    assert_int_equal(c->obuf_limits[CONFIG_OBUF_NORMAL].soft_seconds, 10);
    assert_int_equal(c->obuf_limits[CONFIG_OBUF_PUBSUB].hard_bytes, 64 << 20);
    assert_int_equal(c->obuf_limits[CONFIG_OBUF_PUBSUB].soft_bytes, 16 << 20);
    assert_int_equal(c->obuf_limits[CONFIG_OBUF_PUBSUB].soft_seconds, 90);
    assert_string_equal(c->requirepass, "clientpw");
    assert_string_equal(c->admin_password, "adminpw");
    assert_int_equal(c->console_port, 9121);
    assert_true(c->enable_cross_slot);
    assert_int_equal(c->log_level, LOG_WARNING);
    assert_string_equal(c->logfile, "/tmp/ringslot.log");
    assert_true(c->disable_colors);
    assert_true(c->dump_queries && c->dump_buffer && c->dump_queues);
    assert_string_equal(c->auth, "backendpw");
    assert_string_equal(c->auth_user, "proxyuser");
    assert_int_equal(c->connections_pool_size, 20);
    assert_int_equal(c->connections_pool_min_size, 15);
    assert_int_equal(c->connections_pool_spawn_every_ms, 500);
    assert_int_equal(c->connections_pool_spawn_rate, 3);
    assert_int_equal(c->disable_multiplexing, CONFIG_MULTIPLEXING_ALWAYS);
    assert_int_equal(c->connect_timeout_ms, 250);
    assert_int_equal(c->backend_timeout_ms, 5000);
    assert_int_equal(c->cluster_down_timeout_ms, 0);
    assert_int_equal(c->wait_timeout_cap_ms, 50);
    assert_int_equal(c->read_from_replicas, CONFIG_READ_REPLICA);
    assert_int_equal(c->replica_max_lag_ms, 300);
    assert_int_equal(c->replica_read_after_write_ms, 20);
    assert_true(c->cluster_mode);
    assert_int_equal(c->cport, 17100);
    assert_string_equal(c->cluster_name, "prod");
    assert_string_equal(c->cluster_password, "clusterpw");
    assert_true(c->cluster_password_set);
    assert_string_equal(c->announce_ip, "10.1.2.3");
    assert_int_equal(c->announce_port, 7101);
    assert_int_equal(c->ncluster_seeds, 2);
    assert_string_equal(c->cluster_seeds[0].host, "10.1.2.4");
    assert_int_equal(c->cluster_seeds[0].port, 17100);
    assert_string_equal(c->cluster_seeds[1].host, "::1");
    assert_int_equal(c->cluster_seeds[1].port, 17101);
    assert_string_equal(c->node_id_file, "/var/lib/ringslot/id");
    assert_true(c->lease_redis.set);
    assert_string_equal(c->lease_redis.addr.host, "10.0.0.9");
    assert_int_equal(c->lease_redis.addr.port, 6379);
    assert_string_equal(c->lease_redis.user, "");
    assert_string_equal(c->lease_redis.password, "leasepw");
    assert_int_equal(c->leader_lease_ms, 4000);
    assert_int_equal(c->heartbeat_interval_ms, 400);
    assert_int_equal(c->proxy_node_timeout_ms, 5000);
    assert_int_equal(c->moved_mode, CONFIG_MOVED_NEVER);
    assert_int_equal(c->nentry_points, 1);
    assert_string_equal(c->entry_points[0].host, "10.0.0.1");
    assert_int_equal(c->entry_points[0].port, 7000);
    assert_string_equal(c->tls_cert_file, "/etc/rs/s.crt");
    assert_string_equal(c->tls_key_file, "/etc/rs/s.key");
    assert_string_equal(c->tls_key_file_pass, "keypw");
    assert_string_equal(c->tls_ca_cert_file, "/etc/rs/ca.crt");
    assert_string_equal(c->tls_ca_cert_dir, "/etc/rs/ca");
    assert_int_equal(c->tls_auth_clients, CONFIG_TLS_AUTH_OPTIONAL);
    assert_string_equal(c->tls_protocols, "TLSv1.2 TLSv1.3");
    assert_string_equal(c->tls_ciphers, "HIGH:!aNULL");
    assert_string_equal(c->tls_ciphersuites, "TLS_AES_256_GCM_SHA384");
    assert_true(c->tls_prefer_server_ciphers);
    assert_false(c->tls_session_caching);
    assert_int_equal(c->tls_session_cache_size, 100);
    assert_int_equal(c->tls_session_cache_timeout, 60);
    assert_string_equal(c->tls_cacert, "/etc/rs/nodes-ca.crt");
    assert_string_equal(c->tls_cert, "/etc/rs/c.crt");
    assert_string_equal(c->tls_key, "/etc/rs/c.key");
    assert_true(c->tls_insecure);
}

static void test_every_new_option(void **state)
{
    struct config c;

    assert_parse_ok(&c, all_args);
    assert_all_new_options_set(&c);
}

static void test_rcp_spellings(void **state)
{
    struct config c;

    /* redis-cluster-proxy's own --max-clients; Redis's tcp-keepalive */
    assert_parse_ok(&c, (const char *[]){ "--max-clients", "77",
                                           "--tcp-keepalive", "12", NULL });
    assert_int_equal(c.maxclients, 77);
    assert_int_equal(c.tcpkeepalive, 12);
    assert_parse_ok(&c, (const char *[]){ "--auth", "x", "--cluster", "h:1",
                                           "--entry-point", "h:2", NULL });
    assert_string_equal(c.auth, "x");
    assert_int_equal(c.nentry_points, 2);
    assert_parse_ok(&c, (const char *[]){ "-asecret", NULL });
    assert_string_equal(c.auth, "secret");
    assert_parse_error((const char *[]){ "--daemonize=yes", NULL },
                       "Option '--daemonize' takes no value");
    assert_parse_error((const char *[]){ "--c", "x", NULL },
                       "Invalid option '--c'");
}

static void test_enum_options(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "--disable-multiplexing", "AUTO",
                                           "--moved-mode", "always", NULL });
    assert_int_equal(c.disable_multiplexing, CONFIG_MULTIPLEXING_AUTO);
    assert_int_equal(c.moved_mode, CONFIG_MOVED_ALWAYS);
    assert_parse_error((const char *[]){ "--disable-multiplexing", "never",
                                         NULL },
                       "Invalid disable-multiplexing 'never' (auto|always)");
    assert_parse_error((const char *[]){ "--moved-mode", "sometimes", NULL },
                       "Invalid moved-mode 'sometimes' (hint|always|never)");
    assert_parse_ok(&c, (const char *[]){ "--read-from-replicas", "YES", NULL });
    assert_int_equal(c.read_from_replicas, CONFIG_READ_SPREAD);
    assert_parse_error((const char *[]){ "--read-from-replicas", "some", NULL },
                       "Invalid read-from-replicas 'some' (no|yes|replica)");
    assert_parse_error((const char *[]){ "--replica-max-lag", "5", NULL },
                       "Invalid replica-max-lag '5' (10..");
}

static void test_unixsocketperm(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "--unixsocketperm", "0777", NULL });
    assert_int_equal(c.unixsocketperm, 0777);
    assert_parse_ok(&c, (const char *[]){ "--unixsocketperm", "0", NULL });
    assert_int_equal(c.unixsocketperm, 0);
    assert_parse_error((const char *[]){ "--unixsocketperm", "778", NULL },
                       "Invalid unixsocketperm '778' (octal, 0..777)");
    assert_parse_error((const char *[]){ "--unixsocketperm", "1000", NULL },
                       "Invalid unixsocketperm '1000'");
    assert_parse_error((const char *[]){ "--unixsocketperm", "", NULL },
                       "Invalid unixsocketperm ''");
}

static void test_output_buffer_limit(void **state)
{
    struct config c;

    /* Only the classes given change; the replica class is accepted and
     * ignored, as ringslot has no replicas. */
    assert_parse_ok(&c, (const char *[]){ "--client-output-buffer-limit",
                    "replica 256mb 64mb 60 normal 1k 2k 3", NULL });
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].hard_bytes, 1000);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].soft_bytes, 2000);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].soft_seconds, 3);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_PUBSUB].hard_bytes, 32 << 20);
    assert_parse_ok(&c, (const char *[]){ "--client-output-buffer-limit",
                    "slave 0 0 0", "--client-output-buffer-limit",
                    "PubSub 0 0 0", NULL });
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_PUBSUB].hard_bytes, 0);

    static const char *bad[] = {
        "", "normal", "normal 0 0", "normal 0 0 0 pubsub", "master 0 0 0",
        "normal -1 0 0", "normal 0 0 x", "normal 1xb 0 0",
        "normal 0 0 99999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_parse_error((const char *[]){ "--client-output-buffer-limit",
                                             bad[i], NULL },
                           "Invalid client-output-buffer-limit");
    /* A bad group changes nothing, not even the good groups before it. */
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "client-output-buffer-limit",
                                "normal 1 1 1 pubsub x 0 0", err, sizeof(err)),
                     -1);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].hard_bytes, 0);
}

static void test_lease_redis(void **state)
{
    struct config c;
    char err[512];

    assert_parse_ok(&c, (const char *[]){ "--lease-redis",
                    "redis://10.0.0.1:6380", NULL });
    assert_true(c.lease_redis.set);
    assert_string_equal(c.lease_redis.addr.host, "10.0.0.1");
    assert_int_equal(c.lease_redis.addr.port, 6380);
    assert_string_equal(c.lease_redis.password, "");
    assert_parse_ok(&c, (const char *[]){ "--lease-redis",
                    "REDIS://lease:p@ss:w@[::1]:6379", NULL });
    assert_string_equal(c.lease_redis.user, "lease");
    assert_string_equal(c.lease_redis.password, "p@ss:w");
    assert_string_equal(c.lease_redis.addr.host, "::1");

    static const char *bad[] = {
        "10.0.0.1:6379", "redis://", "redis://host", "redis://pw@h:1",
        "redis://:pw@h", "redis:///tmp/x.sock", "redis://:pw@h:1/0",
        "http://h:1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(&c, err, sizeof(err), (const char *[]){
                         "--lease-redis", bad[i], NULL }), -1);
        assert_string_equal(err, "Invalid lease-redis (expected "
                            "redis://[[user]:password@]host:port)");
    }
    assert_false(c.lease_redis.set); /* a refused URI leaves it unset */
}

static void test_cluster_seeds(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "--cluster-seeds", "a:1,b:2",
                                           "--cluster-seeds", "c:3", NULL });
    assert_int_equal(c.ncluster_seeds, 1); /* the last list wins */
    assert_string_equal(c.cluster_seeds[0].host, "c");
    assert_parse_ok(&c, (const char *[]){ "--cluster-seeds", "a:1",
                                           "--cluster-seeds", "", NULL });
    assert_int_equal(c.ncluster_seeds, 0);
    assert_parse_error((const char *[]){ "--cluster-seeds", "/tmp/x.sock",
                                         NULL },
                       "Invalid address '/tmp/x.sock'");
    assert_parse_error((const char *[]){ "--cluster-seeds", "a:1,b", NULL },
                       "Invalid address 'b'");

    char list[CONFIG_MAX_SEEDS * 8 + 16], *p = list;
    for (int i = 1; i <= CONFIG_MAX_SEEDS + 1; i++)
        p += sprintf(p, "%sh:%d", i > 1 ? "," : "", i);
    assert_parse_error((const char *[]){ "--cluster-seeds", list, NULL },
                       "Too many cluster seeds (max 32)");
}

static void test_strings_checked(void **state)
{
    struct config c;
    char err[1024], longpw[CONFIG_PASSWORD_MAX + 1];

    assert_parse_error((const char *[]){ "--cluster-name", "a b", NULL },
                       "Invalid cluster-name 'a b' (1..64 printable");
    assert_parse_error((const char *[]){ "--cluster-name", "{x}", NULL },
                       "Invalid cluster-name '{x}'");
    assert_parse_error((const char *[]){ "--cluster-name", "", NULL },
                       "Invalid cluster-name ''");
    assert_parse_error((const char *[]){ "--announce-ip", "0.0.0.0", NULL },
                       "Invalid announce-ip '0.0.0.0' (an address clients");
    assert_parse_ok(&c, (const char *[]){ "--announce-ip", "", NULL });
    /* A password that does not fit is refused without being echoed. */
    memset(longpw, 'S', sizeof(longpw) - 1);
    longpw[sizeof(longpw) - 1] = '\0';
    static const char *const secret_opts[] = {
        "--requirepass", "--admin-password", "--auth", "--cluster-password",
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(parse(&c, err, sizeof(err), (const char *[]){
                         secret_opts[i], longpw, NULL }), -1);
        assert_null(strstr(err, "SSSS"));
        assert_non_null(strstr(err, "(longer than 511)"));
    }
    longpw[CONFIG_PASSWORD_MAX - 1] = '\0'; /* exactly fits */
    assert_parse_ok(&c, (const char *[]){ "--requirepass", longpw, NULL });
    assert_int_equal(strlen(c.requirepass), CONFIG_PASSWORD_MAX - 1);
}

static void test_new_number_bounds(void **state)
{
    assert_parse_error((const char *[]){ "--wait-timeout-cap", "0", NULL },
                       "Invalid wait-timeout-cap '0' (1..");
    assert_parse_error((const char *[]){ "--console-port", "65536", NULL },
                       "Invalid console-port '65536'");
    assert_parse_error((const char *[]){ "--timeout", "-1", NULL },
                       "Invalid timeout '-1'");
    assert_parse_error((const char *[]){ "--leader-lease", "0", NULL },
                       "Invalid leader-lease '0'");
    assert_parse_error((const char *[]){ "--client-reply-budget", "1tb",
                                         NULL },
                       "Invalid client-reply-budget '1tb'");
    assert_parse_error((const char *[]){ "--cport", "70000", NULL },
                       "Invalid cport '70000'");
}

static void test_port_zero_needs_unixsocket(void **state)
{
    struct config c;

    /* redis-cluster-proxy: "-p 0" disables TCP, serving the unix socket. */
    assert_parse_error((const char *[]){ "-p", "0", NULL },
                       "Invalid port '0': 0 disables TCP and needs "
                       "--unixsocket or --tls-port");
    assert_parse_ok(&c, (const char *[]){ "-p", "0", "--unixsocket",
                                           "/tmp/rs.sock", NULL });
    assert_int_equal(c.port, 0);
}

static void test_pool_limits_as_rcp(void **state)
{
    struct config c;

    /* rcp limits these instead of refusing to start. */
    assert_parse_ok(&c, (const char *[]){ "--connections-pool-size", "100",
                                           "--connections-pool-min-size",
                                           "80", NULL });
    assert_int_equal(c.connections_pool_size, CONFIG_MAX_POOL_SIZE);
    assert_int_equal(c.connections_pool_min_size, CONFIG_MAX_POOL_SIZE);
    assert_parse_ok(&c, (const char *[]){ "--connections-pool-size", "0",
                                           NULL });
    assert_int_equal(c.connections_pool_size, 0);
    assert_int_equal(c.connections_pool_min_size, 0);
}

static void test_daemonize_pidfile(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "--daemonize", NULL });
    assert_string_equal(c.pidfile, CONFIG_DEFAULT_PIDFILE);
    assert_parse_ok(&c, (const char *[]){ "--daemonize", "--pidfile",
                                           "/tmp/p", NULL });
    assert_string_equal(c.pidfile, "/tmp/p");
    assert_parse_ok(&c, (const char *[]){ NULL });
    assert_string_equal(c.pidfile, "");
}

static void test_cluster_mode_checks(void **state)
{
    struct config c;

    assert_parse_error((const char *[]){ "--cluster-mode", NULL },
                       "Cluster mode needs --cluster-password");
    /* An explicit empty password is a choice, and is remembered. */
    assert_parse_ok(&c, (const char *[]){ "--cluster-mode",
                                           "--cluster-password", "", NULL });
    assert_true(c.cluster_password_set);
    assert_string_equal(c.cluster_password, "");
    assert_int_equal(c.cport, 7777 + 10000);
    assert_parse_ok(&c, (const char *[]){ "--cluster-password=", "-p", "7000",
                                           "--cluster-mode", NULL });
    assert_int_equal(c.cport, 17000);
    assert_parse_error((const char *[]){ "--cluster-mode", "-p", "60000",
                                         "--cluster-password", "x", NULL },
                       "Cluster mode: --port + 10000 is past 65535");
    assert_parse_ok(&c, (const char *[]){ "--cluster-mode", "-p", "60000",
                                           "--cport", "1000",
                                           "--cluster-password", "x", NULL });
    assert_parse_error((const char *[]){ "--cluster-mode", "-p", "7000",
                                         "--cport", "7000",
                                         "--cluster-password", "x", NULL },
                       "Cluster mode: --cport must differ");
    assert_parse_error((const char *[]){ "--cluster-mode",
                                         "--cluster-password", "x",
                                         "--heartbeat-interval", "3000",
                                         NULL },
                       "Cluster mode: --heartbeat-interval (3000 ms) must be "
                       "shorter");
    /* Outside cluster mode none of that is checked. */
    assert_parse_ok(&c, (const char *[]){ "--heartbeat-interval", "9000",
                                           NULL });
    assert_false(c.cluster_password_set);
}

/* ---- files -------------------------------------------------------------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    strcpy(tmpdir, "/tmp/ringslot-test-config-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    return remove(path);
}

static int remove_tmpdir(void **state)
{
    return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write `text` to tmpdir/name (creating tmpdir/sub as needed); the full
 * path goes to `path`. */
static void write_file(const char *name, const char *text, char *path,
                       size_t len)
{
    char dir[PATH_MAX];

    snprintf(path, len, "%s/%s", tmpdir, name);
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *p = dir + strlen(tmpdir) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0'; /* mkdir -p */
        mkdir(dir, 0700);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Load one file over the defaults. */
static int load(struct config *c, const char *name, const char *text,
                char *err, size_t errlen)
{
    char path[PATH_MAX];

    write_file(name, text, path, sizeof(path));
    config_defaults(c);
    return config_load_file(c, path, err, errlen);
}

static void assert_load_ok(struct config *c, const char *name,
                           const char *text)
{
    char err[512];
    if (load(c, name, text, err, sizeof(err)) != 0)
        fail_msg("unexpected error: %s", err);
}

/* Loading fails with exactly "<tmpdir>/<name>:<want>". */
static void assert_load_error(const char *name, const char *text,
                              const char *want)
{
    struct config c;
    char err[512], full[600];

    assert_int_equal(load(&c, name, text, err, sizeof(err)), -1);
    snprintf(full, sizeof(full), "%s/%s:%s", tmpdir, name, want);
    assert_string_equal(err, full);
}

/* config_dump's text (the caller frees it). */
static char *dump_text(const struct config *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(config_dump(c, f), 0);
    fclose(f);
    return buf;
}

static void assert_same_config(const struct config *a, const struct config *b)
{
    char *da = dump_text(a), *db = dump_text(b);
    assert_string_equal(da, db);
    free(da);
    free(db);
}

static void test_file_every_option(void **state)
{
    struct config cli, rcp, ini;

    assert_parse_ok(&cli, all_args);
    assert_load_ok(&rcp, "all.conf", ALL_RCP);
    assert_load_ok(&ini, "all.ini", ALL_INI);
    /* Files are not checked as a whole until config_parse_args ends; the
     * values given are what the command line gave. */
    assert_all_new_options_set(&rcp);
    assert_all_new_options_set(&ini);
    assert_same_config(&cli, &rcp);
    assert_same_config(&cli, &ini);
}

static void test_rcp_words(void **state)
{
    struct config c;

    assert_load_ok(&c, "words.conf",
        "# comment line\n"
        "   # indented comment\n"
        "\n"
        "logfile \"/tmp/a b\\x41\\n\\t\\\"#\"   # trailing comment\n"
        "requirepass 'it\\'s #1'\n"
        "auth-user us\"e r\"\n"
        "admin-password \"\"\n"
        "PORT 7005\r\n"
        "Log-Level DEBUG\n"
        "pidfile /tmp/p#comment\n");
    assert_string_equal(c.logfile, "/tmp/a bA\n\t\"#");
    assert_string_equal(c.requirepass, "it's #1");
    assert_string_equal(c.auth_user, "use r");
    assert_string_equal(c.admin_password, "");
    assert_int_equal(c.port, 7005);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_string_equal(c.pidfile, "/tmp/p");
}

static void test_rcp_directives(void **state)
{
    struct config c;

    assert_load_ok(&c, "dir.conf",
        "\xEF\xBB\xBF" "daemonize\n"            /* alone: yes */
        "enable-cross-slot yes\n"
        "enable-cross-slot no\n"                /* later lines win */
        "dump-queries YES\n"
        "bind 10.0.0.1 10.0.0.2\n"
        "bind ::1\n"
        "cluster a:1 b:2,c:3\n"
        "entry-point /tmp/redis.sock\n"
        "help\n"                                /* rcp skips it */
        "client-output-buffer-limit pubsub 1mb 1mb 1\n");
    assert_true(c.daemonize);
    assert_false(c.enable_cross_slot);
    assert_true(c.dump_queries);
    assert_int_equal(c.nbinds, 3);
    assert_string_equal(c.binds[2], "::1");
    assert_int_equal(c.nentry_points, 4);
    assert_string_equal(c.entry_points[2].host, "c");
    assert_int_equal(c.entry_points[3].port, 0);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_PUBSUB].soft_seconds, 1);
}

static void test_rcp_errors(void **state)
{
    assert_load_error("e1.conf", "port 1\n\nfoo bar\n",
                      "3: unknown directive 'foo'");
    assert_load_error("e2.conf", "--port 1\n",
                      "1: unknown directive '--port'");
    assert_load_error("e3.conf", "port 1 2\n",
                      "1: wrong number of arguments for 'port'");
    assert_load_error("e4.conf", "port\n",
                      "1: wrong number of arguments for 'port'");
    assert_load_error("e5.conf", "# x\nlogfile \"abc\n",
                      "2: unbalanced quotes");
    assert_load_error("e6.conf", "logfile \"a\"b\n",
                      "1: closing quote must be followed by a space");
    assert_load_error("e7.conf", "port 99999\n",
                      "1: Invalid port '99999' (0..65535)");
    assert_load_error("e8.conf", "daemonize maybe\n",
                      "1: Invalid daemonize 'maybe' (yes|no)");
    assert_load_error("e9.conf", "help\nversion\n",
                      "2: unknown directive 'version'");
    assert_load_error("e10.conf", "check-config yes\n",
                      "1: unknown directive 'check-config'");
}

/* A NUL byte cannot be written with write_file's strlen. */
static void test_nul_byte(void **state)
{
    char path[PATH_MAX], err[PATH_MAX + 64], want[PATH_MAX + 64];
    struct config c;

    snprintf(path, sizeof(path), "%s/nul.conf", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite("port 1\nthreads 2\0x\n", 1, 19, f);
    fclose(f);
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: NUL byte (not a text file?)", path);
    assert_string_equal(err, want);
}

static void test_ini_format(void **state)
{
    struct config c;

    assert_load_ok(&c, "fmt.ini",
        "\n# leading comments and blank lines do not decide the format\n"
        "; either kind\n"
        "  [Proxy]\n"
        "PORT = 7010 ; inline comment\n"
        "requirepass = a;b\n"
        "logfile=/tmp/x.log\n"
        "bind = 10.0.0.1 10.0.0.2\n"
        "[cluster]\n"
        "cluster-password =\n"
        "[backend]\n"
        "cluster = a:1\n");
    assert_int_equal(c.port, 7010);
    assert_string_equal(c.requirepass, "a;b"); /* only " ;" is a comment */
    assert_string_equal(c.logfile, "/tmp/x.log");
    assert_int_equal(c.nbinds, 2);
    assert_true(c.cluster_password_set);
    assert_string_equal(c.cluster_password, "");
    assert_int_equal(c.nentry_points, 1);
}

static void test_ini_quoted_values(void **state)
{
    struct config c;

    assert_load_ok(&c, "q.ini",
        "[proxy]\nrequirepass = \"two words\\x21\"\nadmin-password = 'x#y'\n");
    assert_string_equal(c.requirepass, "two words!");
    assert_string_equal(c.admin_password, "x#y");
}

static void test_ini_errors(void **state)
{
    assert_load_error("i1.ini", "[proxy]\nport = 1\n\nfoo = 2\n",
                      "4: unknown directive 'foo'");
    assert_load_error("i2.ini", "[backend]\nport = 1\n",
                      "2: 'port' belongs in section [proxy]");
    assert_load_error("i3.ini", "[proxy]\nport = 1\n[frontend]\nport = 2\n",
                      "4: unknown section [frontend]");
    assert_load_error("i4.ini", "[proxy]\nport 1\n",
                      "2: syntax error (expected [section] or name = value)");
    assert_load_error("i5.ini", "[proxy\nport = 1\n",
                      "1: syntax error (expected [section] or name = value)");
    assert_load_error("i6.ini", "[proxy]\nport = 1 2\n",
                      "2: wrong number of arguments for 'port'");
    assert_load_error("i7.ini", "[proxy]\nthreads = x\n",
                      "2: Invalid number of threads 'x' (1..256)");
    /* inih cuts " ;..." before the value is split, even inside quotes */
    assert_load_error("i10.ini", "[proxy]\nrequirepass = \"a ; b\"\n",
                      "2: unbalanced quotes");

    char text[6000], want[64];
    snprintf(text, sizeof(text), "[proxy]\nlogfile = /%05000d\n", 0);
    snprintf(want, sizeof(want),
             "2: line too long for the INI format (max 4093 bytes)");
    assert_load_error("i8.ini", text, want);
    /* A long value that fits the buffer is fine. */
    struct config c;
    snprintf(text, sizeof(text), "[proxy]\nlogfile = /%01000d\n", 0);
    assert_load_ok(&c, "i9.ini", text);
    assert_int_equal(strlen(c.logfile), 1001);
}

static void test_format_detection(void **state)
{
    struct config c;

    /* rcp's format: the first directive is a name, not a section. */
    assert_load_ok(&c, "d1.conf", "# [not a section]\nport 7020\n");
    assert_int_equal(c.port, 7020);
    assert_load_error("d2.conf", "port 1\n[proxy]\n",
                      "2: unknown directive '[proxy]'");
    assert_load_ok(&c, "d3.conf", "");
    assert_load_ok(&c, "d4.ini", "\r\n\t\n; only\n[proxy]\n");
}

static void test_include(void **state)
{
    struct config c;
    char path[PATH_MAX], err[512];

    /* Relative to the including file's directory, at any depth. */
    write_file("inc/a/base.conf", "port 7030\ninclude ../b/more.conf\n",
               path, sizeof(path));
    write_file("inc/b/more.conf", "threads 5\ninclude last.ini\n",
               path, sizeof(path));
    write_file("inc/b/last.ini", "[backend]\nentry-point = z:1\n",
               path, sizeof(path));
    assert_load_ok(&c, "inc/main.conf",
                   "threads 1\ninclude a/base.conf\nmaxclients 9\n");
    assert_int_equal(c.port, 7030);
    assert_int_equal(c.threads, 5);
    assert_int_equal(c.maxclients, 9);
    assert_int_equal(c.nentry_points, 1);

    /* The same file twice in a row is not a cycle. */
    write_file("inc/bind.conf", "bind 10.0.0.1\n", path, sizeof(path));
    assert_load_ok(&c, "inc/twice.conf",
                   "include bind.conf\ninclude bind.conf\n");
    assert_int_equal(c.nbinds, 2);

    /* An INI file may include too; an absolute path is taken as is. */
    write_file("inc/abs.conf", "tcp-backlog 77\n", path, sizeof(path));
    char text[PATH_MAX + 64];
    snprintf(text, sizeof(text), "[proxy]\ninclude = %s\n", path);
    assert_load_ok(&c, "inc/abs.ini", text);
    assert_int_equal(c.tcp_backlog, 77);

    /* An error in an included file names that file and its line. */
    write_file("inc/bad.conf", "port 1\nnope 2\n", path, sizeof(path));
    assert_int_equal(load(&c, "inc/top.conf", "include bad.conf\n", err,
                          sizeof(err)), -1);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s:2: unknown directive 'nope'", path);
    assert_string_equal(err, want);
}

static void test_include_error_texts(void **state)
{
    struct config c;
    char path[PATH_MAX], err[1024], want[PATH_MAX * 2];

    assert_int_equal(load(&c, "ie/missing.conf", "\ninclude nothere.conf\n",
                          err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s/ie/missing.conf:2: cannot read included "
             "file '%s/ie/nothere.conf': No such file or directory",
             tmpdir, tmpdir);
    assert_string_equal(err, want);

    assert_load_error("ie/noarg.conf", "include\n",
                      "1: 'include' needs one file name");
    assert_load_error("ie/twoargs.conf", "include a b\n",
                      "1: 'include' needs one file name");
    /* A directory, a device: only regular files are read. */
    mkdir(strcat(strcpy(path, tmpdir), "/ie/adir"), 0700);
    assert_int_equal(load(&c, "ie/dir.conf", "include adir\n", err,
                          sizeof(err)), -1);
    assert_non_null(strstr(err, "adir': not a regular file"));
    assert_int_equal(load(&c, "ie/dev.conf", "include /dev/zero\n", err,
                          sizeof(err)), -1);
    assert_non_null(strstr(err, "'/dev/zero': not a regular file"));
}

static void test_include_cycle_texts(void **state)
{
    struct config c;
    char path[PATH_MAX], err[1024], want[PATH_MAX * 2];

    assert_int_equal(load(&c, "cy/self.conf", "port 1\ninclude self.conf\n",
                          err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s/cy/self.conf:2: include cycle: "
             "'%s/cy/self.conf' is already being read", tmpdir, tmpdir);
    assert_string_equal(err, want);

    write_file("cy/b.conf", "include c.conf\n", path, sizeof(path));
    write_file("cy/c.conf", "\n\ninclude a.conf\n", path, sizeof(path));
    assert_int_equal(load(&c, "cy/a.conf", "include b.conf\n", err,
                          sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s/cy/c.conf:3: include cycle: "
             "'%s/cy/a.conf' is already being read", tmpdir, tmpdir);
    assert_string_equal(err, want);
}

static void test_include_depth(void **state)
{
    struct config c;
    char name[64], text[64], path[PATH_MAX], err[1024];

    /* d1 includes d2 ... d16 sets a value: 16 files deep is allowed. */
    for (int i = 1; i <= CONFIG_MAX_INCLUDE_DEPTH + 1; i++) {
        snprintf(name, sizeof(name), "deep/d%d.conf", i);
        snprintf(text, sizeof(text), "include d%d.conf\n", i + 1);
        write_file(name, text, path, sizeof(path));
    }
    write_file("deep/d16.conf", "threads 7\n", path, sizeof(path));
    snprintf(path, sizeof(path), "%s/deep/d1.conf", tmpdir);
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), 0);
    assert_int_equal(c.threads, 7);
    /* One more level is refused, naming the 16th file. */
    write_file("deep/d16.conf", "include d17.conf\n", path, sizeof(path));
    write_file("deep/d17.conf", "threads 8\n", path, sizeof(path));
    snprintf(path, sizeof(path), "%s/deep/d1.conf", tmpdir);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/deep/d16.conf:1: include nesting deeper "
                           "than 16"));
}

static void test_missing_file(void **state)
{
    struct config c;
    char err[512];

    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "/nonexistent/r.conf", err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "Failed to open config file '/nonexistent/r.conf':"
                        " No such file or directory");
    assert_parse_error((const char *[]){ "-c", "/nonexistent/r.conf", NULL },
                       "Failed to open config file '/nonexistent/r.conf'");
    assert_parse_error((const char *[]){ "-c", NULL },
                       "Missing value for option '-c'");
}

static void test_file_too_large(void **state)
{
    struct config c;
    char path[PATH_MAX], err[1024];

    snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < (5 << 20) / 8; i++)
        fputs("# xxxxx\n", f);
    fclose(f);
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "larger than 4 MB"));
}

static void test_stdin(void **state)
{
    struct config c;
    char path[PATH_MAX], err[512];
    int saved = dup(0);

    write_file("stdin.conf", "port 7040\n", path, sizeof(path));
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 0);
    close(fd);
    clearerr(stdin);
    config_defaults(&c);
    int rc = config_load_file(&c, "-", err, sizeof(err));
    dup2(saved, 0);
    close(saved);
    clearerr(stdin);
    assert_int_equal(rc, 0);
    assert_int_equal(c.port, 7040);
}

static void test_cli_overrides_file(void **state)
{
    struct config c;
    char path[PATH_MAX], err[512];

    write_file("ov.conf", "port 7050\nthreads 4\ncluster a:1\n"
               "log-level error\n", path, sizeof(path));
    /* In order: the file overrides what came before -c, options after
     * it override the file; entry points add up. */
    assert_parse_ok(&c, (const char *[]){ "--threads", "2", "-c", path,
                                           "-p", "7051", "b:2", NULL });
    assert_int_equal(c.port, 7051);
    assert_int_equal(c.threads, 4);
    assert_int_equal(c.log_level, LOG_ERROR);
    assert_int_equal(c.nentry_points, 2);
    assert_string_equal(c.entry_points[0].host, "a");
    assert_string_equal(c.entry_points[1].host, "b");
    /* -cFILE and a second -c */
    char arg[PATH_MAX + 4];
    snprintf(arg, sizeof(arg), "-c%s", path);
    assert_parse_ok(&c, (const char *[]){ arg, "--log-level", "debug",
                                           "-c", path, NULL });
    assert_int_equal(c.log_level, LOG_ERROR);
    assert_int_equal(c.nentry_points, 2);

    /* The file's error stops the parse, naming file and line. */
    write_file("ov-bad.conf", "port 1\nbogus yes\n", path, sizeof(path));
    assert_int_equal(parse(&c, err, sizeof(err), (const char *[]){
                     "-c", path, NULL }), -1);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s:2: unknown directive 'bogus'", path);
    assert_string_equal(err, want);

    /* Checks across options run after the file and the rest. */
    write_file("ov-cm.conf", "cluster-mode yes\n", path, sizeof(path));
    assert_parse_error((const char *[]){ "-c", path, NULL },
                       "Cluster mode needs --cluster-password");
    assert_parse_ok(&c, (const char *[]){ "-c", path, "--cluster-password",
                                           "", "--check-config", NULL });
    assert_true(c.check_config);
}

/* ---- dump, redaction ------------------------------------------------------ */

static const char *const passwords[] = {
    "clientpw", "adminpw", "backendpw", "clusterpw", "leasepw",
};

static void assert_no_password(const char *text)
{
    for (size_t i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++)
        if (strstr(text, passwords[i]) != NULL)
            fail_msg("'%s' shows password '%s'", text, passwords[i]);
}

static void test_dump_redacts(void **state)
{
    struct config c;

    assert_parse_ok(&c, all_args);
    char *text = dump_text(&c);
    assert_no_password(text);
    assert_non_null(strstr(text, "\nrequirepass ********\n"));
    assert_non_null(strstr(text, "\nadmin-password ********\n"));
    assert_non_null(strstr(text, "\nauth ********\n"));
    assert_non_null(strstr(text, "\ncluster-password ********\n"));
    assert_non_null(strstr(text, "\ntls-key-file-pass ********\n"));
    assert_non_null(strstr(text, "\ntls-protocols \"TLSv1.2 TLSv1.3\"\n"));
    assert_non_null(strstr(text, "\ntls-auth-clients optional\n"));
    assert_non_null(strstr(text, "\ntls-session-caching no\n"));
    assert_non_null(strstr(text, "\ntls-insecure yes\n"));
    assert_non_null(strstr(text,
                    "\nlease-redis redis://:********@10.0.0.9:6379\n"));
    assert_non_null(strstr(text, "\nport 7001\n"));
    assert_non_null(strstr(text, "\nbind ::1\n"));
    assert_non_null(strstr(text, "\nentry-point 10.0.0.1:7000\n"));
    assert_non_null(strstr(text, "\nenable-cross-slot yes\n"));
    assert_non_null(strstr(text, "\nunixsocketperm 760\n"));
    assert_non_null(strstr(text, "\nclient-output-buffer-limit normal "
                           "1048576 524288 10 pubsub 67108864 16777216 90\n"));
    assert_non_null(strstr(text, "\ncluster-seeds \"10.1.2.4:17100,"
                           "[::1]:17101\"\n"));
    free(text);

    /* Unset passwords are left out; an explicit empty cluster password is
     * shown, since it changes what cluster mode does. */
    config_defaults(&c);
    text = dump_text(&c);
    assert_null(strstr(text, "requirepass"));
    assert_null(strstr(text, "\nauth "));
    assert_null(strstr(text, "cluster-password"));
    assert_null(strstr(text, "lease-redis"));
    free(text);
    c.cluster_password_set = true;
    text = dump_text(&c);
    assert_non_null(strstr(text, "\ncluster-password \"\"\n"));
    free(text);
}

static void test_dump_round_trip(void **state)
{
    struct config c, back;
    char path[PATH_MAX], err[512];

    assert_parse_ok(&c, all_args);
    strcpy(c.logfile, "/tmp/odd \"name\" #1\\\x01.log");
    strcpy(c.auth_user, "");
    c.entry_points[c.nentry_points++] = (struct entry_point){ "/tmp/r.sock", 0 };
    c.entry_points[c.nentry_points++] = (struct entry_point){ "::1", 7 };
    c.cluster_password_set = true;
    c.cluster_password[0] = '\0';
    c.lease_redis.user[0] = '\0';
    c.lease_redis.password[0] = '\0';
    char *text = dump_text(&c);
    write_file("dump.conf", text, path, sizeof(path));
    config_defaults(&back);
    if (config_load_file(&back, path, err, sizeof(err)) != 0)
        fail_msg("dump not readable: %s\n%s", err, text);
    free(text);
    assert_string_equal(back.logfile, c.logfile);
    assert_true(back.cluster_password_set);
    assert_same_config(&c, &back);
}

static void test_redact(void **state)
{
    struct config c;

    assert_parse_ok(&c, all_args);
    strcpy(c.admin_password, "");
    config_redact(&c);
    assert_string_equal(c.requirepass, CONFIG_REDACTED);
    assert_string_equal(c.admin_password, "");
    assert_string_equal(c.auth, CONFIG_REDACTED);
    assert_string_equal(c.cluster_password, CONFIG_REDACTED);
    assert_string_equal(c.lease_redis.password, CONFIG_REDACTED);
    assert_string_equal(c.tls_key_file_pass, CONFIG_REDACTED);
    assert_string_equal(c.auth_user, "proxyuser");
}

/* ---- PROXY CONFIG GET / SET ----------------------------------------------- */

/* Runtime read-write options: redis-cluster-proxy's, then ringslot's. */
static const char *const rw_options[] = {
    "log-level", "dump-queries", "dump-buffer", "dump-queues",
    "enable-cross-slot", "connections-pool-size", "connections-pool-min-size",
    "connections-pool-spawn-every", "connections-pool-spawn-rate",
    "maxclients", "timeout", "connect-timeout", "backend-timeout",
    "cluster-down-timeout", "client-reply-budget",
    "client-output-buffer-limit", "moved-mode", "wait-timeout-cap",
    "requirepass", /* CONFIG SET requirepass: the proxy's own client password */
    "read-from-replicas", "replica-max-lag", "replica-read-after-write",
    /* TLS files: setting one reloads the certificates (core/tlsglue.c) */
    "tls-cert-file", "tls-key-file", "tls-key-file-pass", "tls-ca-cert-file",
    "tls-ca-cert-dir", "tls-auth-clients", "tls-cacert", "tls-cert", "tls-key",
};

static const char *const ro_options[] = {
    "port", "bind", "unixsocket", "unixsocketperm", "threads", "tcpkeepalive",
    "tcp-backlog", "daemonize", "pidfile", "proto-max-bulk-len",
    "client-query-buffer-limit", "admin-password", "io-backend",
    "console-port", "logfile", "disable-colors", "entry-point", "auth",
    "auth-user", "disable-multiplexing", "cluster-mode", "cport",
    "cluster-name", "cluster-password", "announce-ip", "announce-port",
    "cluster-seeds", "node-id-file", "lease-redis", "leader-lease",
    "heartbeat-interval", "proxy-node-timeout",
    "tls-port", "tls-handshake-timeout", "tls-protocols", "tls-ciphers", "tls-ciphersuites",
    "tls-prefer-server-ciphers", "tls-session-caching",
    "tls-session-cache-size", "tls-session-cache-timeout", "tls",
    "tls-insecure", "tls-cluster",
};

#define N_RW (sizeof(rw_options) / sizeof(rw_options[0]))
#define N_RO (sizeof(ro_options) / sizeof(ro_options[0]))

/* What config_get reported. */
struct got {
    size_t n;
    char names[80][64];
    struct config_value values[80];
    char strings[80][512];
    char items[80][256]; /* items joined by ',' */
};

static void collect(void *arg, const char *name, const struct config_value *v)
{
    struct got *g = arg;

    assert_true(g->n < 80);
    snprintf(g->names[g->n], sizeof(g->names[0]), "%s", name);
    g->values[g->n] = *v;
    g->strings[g->n][0] = '\0';
    if (v->kind == CONFIG_VALUE_STRING)
        snprintf(g->strings[g->n], sizeof(g->strings[0]), "%s", v->string);
    g->items[g->n][0] = '\0';
    for (size_t i = 0; v->kind == CONFIG_VALUE_LIST && i < v->nitems; i++) {
        size_t used = strlen(g->items[g->n]);
        snprintf(g->items[g->n] + used, sizeof(g->items[0]) - used, "%s%s",
                 i ? "," : "", v->items[i]);
    }
    g->n++;
}

static struct got *get(const struct config *c, const char *pattern)
{
    static struct got g;

    memset(&g, 0, sizeof(g));
    size_t n = config_get(c, pattern, collect, &g);
    assert_int_equal(n, g.n);
    return &g;
}

static void test_config_get_all(void **state)
{
    struct config c;
    struct got *g;

    assert_parse_ok(&c, all_args);
    g = get(&c, "*");
    assert_int_equal(g->n, N_RW + N_RO);
    for (size_t i = 0; i < g->n; i++) {
        assert_no_password(g->strings[i]);
        assert_no_password(g->items[i]);
    }
    /* Each name once, with the read-only flag of the matrix. */
    for (size_t i = 0; i < N_RW + N_RO; i++) {
        const char *name = i < N_RW ? rw_options[i] : ro_options[i - N_RW];
        size_t found = 0;
        for (size_t j = 0; j < g->n; j++) {
            if (strcmp(g->names[j], name) != 0)
                continue;
            found++;
            if (g->values[j].read_only != (i >= N_RW))
                fail_msg("'%s' read_only is wrong", name);
        }
        if (found != 1)
            fail_msg("'%s' reported %zu times", name, found);
    }
}

static void test_config_get_values(void **state)
{
    struct config c;
    struct got *g;

    assert_parse_ok(&c, all_args);
    g = get(&c, "port");
    assert_int_equal(g->n, 1);
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_INT);
    assert_int_equal(g->values[0].integer, 7001);
    g = get(&c, "LOG-LEVEL");
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_STRING);
    assert_string_equal(g->strings[0], "warning");
    g = get(&c, "enable-cross-slot");
    assert_int_equal(g->values[0].integer, 1);
    g = get(&c, "bind");
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_LIST);
    assert_string_equal(g->items[0], "127.0.0.1,::1");
    g = get(&c, "entry-point");
    assert_string_equal(g->items[0], "10.0.0.1:7000");
    g = get(&c, "requirepass");
    assert_string_equal(g->strings[0], CONFIG_REDACTED);
    g = get(&c, "client-output-buffer-limit");
    assert_string_equal(g->strings[0], "normal 1048576 524288 10 "
                        "pubsub 67108864 16777216 90");
    g = get(&c, "unixsocketperm");
    assert_int_equal(g->values[0].integer, 760);

    config_defaults(&c);
    g = get(&c, "unixsocket");
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_NULL);
    g = get(&c, "requirepass");
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_NULL);
    g = get(&c, "lease-redis");
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_NULL);
}

static void test_config_get_patterns(void **state)
{
    struct config c;
    struct got *g;

    config_defaults(&c);
    g = get(&c, "connections-pool-*");
    assert_int_equal(g->n, 4);
    assert_string_equal(g->names[0], "connections-pool-size");
    g = get(&c, "dump-*");
    assert_int_equal(g->n, 3);
    g = get(&c, "*timeout*"); /* with tls-session-cache-timeout, tls-handshake-timeout */
    assert_int_equal(g->n, 8);
    g = get(&c, "tls-*");
    assert_int_equal(g->n, 20);
    g = get(&c, "nothing");
    assert_int_equal(g->n, 0);
    /* redis-cluster-proxy's names, reported as asked */
    g = get(&c, "max-clients");
    assert_int_equal(g->n, 1);
    assert_string_equal(g->names[0], "max-clients");
    assert_int_equal(g->values[0].integer, 10000);
    g = get(&c, "dump-replies");
    assert_int_equal(g->n, 1);
    g = get(&c, "max-client?"); /* a glob matches only the ringslot names */
    assert_int_equal(g->n, 0);
    g = get(&c, "help");
    assert_int_equal(g->n, 0);
}

/* A valid value for each read-write option. */
static const char *const rw_values[N_RW] = {
    "debug", "1", "yes", "0", "1", "20", "5", "100", "4", "500", "60",
    "300", "2000", "0", "1mb", "pubsub 1mb 512kb 5", "always", "10", "pw",
    "yes", "200", "50",
    "/c.pem", "/k.pem", "pass", "/ca.pem", "/cadir", "optional", "/ca.pem", "/c.pem",
    "/k.pem",
};

static void test_config_set_matrix(void **state)
{
    struct config c, before;
    char err[256];

    for (size_t i = 0; i < N_RW; i++) {
        config_defaults(&c);
        if (config_set(&c, rw_options[i], rw_values[i], err, sizeof(err)) != 0)
            fail_msg("SET %s %s: %s", rw_options[i], rw_values[i], err);
    }
    for (size_t i = 0; i < N_RO; i++) {
        config_defaults(&c);
        before = c;
        assert_int_equal(config_set(&c, ro_options[i], "1", err, sizeof(err)),
                         -1);
        assert_string_equal(err, "This config option is read-only");
        assert_memory_equal(&c, &before, sizeof(c));
    }
    static const char *unknown[] = { "foo", "help", "version", "c",
                                     "check-config", "" };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_int_equal(config_set(&c, unknown[i], "1", err, sizeof(err)),
                         -1);
        assert_string_equal(err, "Invalid config option");
    }
}

static void test_config_set_values(void **state)
{
    struct config c, before;
    char err[256];

    config_defaults(&c);
    assert_int_equal(config_set(&c, "Log-Level", "debug", err, sizeof(err)), 0);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(config_set(&c, "enable-cross-slot", "1", err,
                                sizeof(err)), 0);
    assert_true(c.enable_cross_slot);
    assert_int_equal(config_set(&c, "enable-cross-slot", "no", err,
                                sizeof(err)), 0);
    assert_false(c.enable_cross_slot);
    assert_int_equal(config_set(&c, "dump-replies", "yes", err, sizeof(err)),
                     0);
    assert_true(c.dump_queues);
    assert_int_equal(config_set(&c, "max-clients", "5", err, sizeof(err)), 0);
    assert_int_equal(c.maxclients, 5);
    assert_int_equal(config_set(&c, "moved-mode", "never", err, sizeof(err)),
                     0);
    assert_int_equal(c.moved_mode, CONFIG_MOVED_NEVER);
    assert_int_equal(config_set(&c, "read-from-replicas", "replica", err,
                                sizeof(err)), 0);
    assert_int_equal(c.read_from_replicas, CONFIG_READ_REPLICA);
    assert_int_equal(config_set(&c, "replica-max-lag", "250", err,
                                sizeof(err)), 0);
    assert_int_equal(c.replica_max_lag_ms, 250);
    assert_int_equal(config_set(&c, "client-output-buffer-limit",
                                "pubsub 1mb 512kb 5", err, sizeof(err)), 0);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_PUBSUB].hard_bytes, 1 << 20);
    assert_int_equal(c.obuf_limits[CONFIG_OBUF_NORMAL].hard_bytes, 0);

    /* Refused values change nothing. */
    before = c;
    assert_int_equal(config_set(&c, "log-level", "loud", err, sizeof(err)),
                     -1);
    assert_string_equal(err, "Invalid log level 'loud' "
                        "(debug|info|success|warning|error)");
    assert_int_equal(config_set(&c, "timeout", "-1", err, sizeof(err)), -1);
    assert_int_equal(config_set(&c, "enable-cross-slot", "2", err,
                                sizeof(err)), -1);
    assert_int_equal(config_set(&c, "wait-timeout-cap", "0", err,
                                sizeof(err)), -1);
    assert_memory_equal(&c, &before, sizeof(c));
}

/* cluster-down-timeout: "auto" (the default) or milliseconds, read back
 * as given, dumped so that the file reads back the same. */
static void test_config_auto_hold(void **state)
{
    struct config c;
    struct got *g;
    char err[256], *text;

    assert_parse_ok(&c, (const char *[]){"--cluster-down-timeout", "0", NULL});
    assert_int_equal(c.cluster_down_timeout_ms, 0);
    g = get(&c, "cluster-down-timeout");
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_INT);
    assert_int_equal(g->values[0].integer, 0);
    assert_int_equal(config_set(&c, "cluster-down-timeout", "AUTO", err, sizeof(err)), 0);
    assert_int_equal(c.cluster_down_timeout_ms, CONFIG_AUTO);
    g = get(&c, "cluster-down-timeout");
    assert_int_equal(g->values[0].kind, CONFIG_VALUE_STRING);
    assert_string_equal(g->strings[0], "auto");
    text = dump_text(&c);
    assert_non_null(strstr(text, "\ncluster-down-timeout auto\n"));
    free(text);
    assert_int_equal(config_set(&c, "cluster-down-timeout", "7000", err, sizeof(err)), 0);
    assert_int_equal(c.cluster_down_timeout_ms, 7000);
    assert_int_equal(config_set(&c, "cluster-down-timeout", "-1", err, sizeof(err)), -1);
    assert_int_equal(config_set(&c, "cluster-down-timeout", "soon", err, sizeof(err)), -1);
    assert_int_equal(c.cluster_down_timeout_ms, 7000);
    assert_parse_ok(&c, (const char *[]){"--cluster-down-timeout=auto", NULL});
    assert_int_equal(c.cluster_down_timeout_ms, CONFIG_AUTO);
}

static void test_config_set_pool(void **state)
{
    struct config c, before;
    char err[256];

    config_defaults(&c);
    before = c;
    assert_int_equal(config_set(&c, "connections-pool-size", "51", err,
                                sizeof(err)), -1);
    assert_string_equal(err, "Maximum value for 'connections-pool-size' is 50");
    assert_int_equal(config_set(&c, "connections-pool-min-size", "11", err,
                                sizeof(err)), -1);
    assert_string_equal(err,
                        "Maximum value for 'connections-pool-min-size' is 10");
    assert_memory_equal(&c, &before, sizeof(c));
    /* Shrinking the pool below its minimum takes the minimum along. */
    assert_int_equal(config_set(&c, "connections-pool-size", "4", err,
                                sizeof(err)), 0);
    assert_int_equal(c.connections_pool_size, 4);
    assert_int_equal(c.connections_pool_min_size, 4);
    assert_int_equal(config_set(&c, "connections-pool-size", "50", err,
                                sizeof(err)), 0);
    assert_int_equal(config_set(&c, "connections-pool-min-size", "50", err,
                                sizeof(err)), 0);
}

static void test_config_apply(void **state)
{
    struct config c;
    char err[256];
    const char *one[] = { "7060" };

    config_defaults(&c);
    assert_int_equal(config_apply(&c, NULL, "port", one, 1, err, sizeof(err)),
                     0);
    assert_int_equal(c.port, 7060);
    assert_int_equal(config_apply(&c, "PROXY", "port", one, 1, err,
                                  sizeof(err)), 0);
    assert_int_equal(config_apply(&c, "cluster", "port", one, 1, err,
                                  sizeof(err)), -1);
    assert_string_equal(err, "'port' belongs in section [proxy]");
    assert_int_equal(config_apply(&c, NULL, "daemonize", NULL, 0, err,
                                  sizeof(err)), 0);
    assert_true(c.daemonize);
    assert_int_equal(config_apply(&c, NULL, "help", NULL, 0, err,
                                  sizeof(err)), -1);
    assert_string_equal(err, "unknown directive 'help'");
}

/* ---- TLS (issue 12) ------------------------------------------------------ */

/* tmpdir/tls/<name>, a file that exists (its contents are core/tls's
 * business; config checks only that it can be read). "cadir/" gives the
 * directory tmpdir/tls/cadir. */
static const char *tls_file(const char *name)
{
    static char paths[8][PATH_MAX];
    static int next;
    char *p = paths[next++ % 8], rel[128];
    bool dir = name[strlen(name) - 1] == '/';

    snprintf(rel, sizeof(rel), "tls/%s%s", name, dir ? "x.pem" : "");
    write_file(rel, "pem\n", p, PATH_MAX);
    if (dir)
        *strrchr(p, '/') = '\0';
    return p;
}

#define CERT "--tls-cert-file", tls_file("s.crt"), \
             "--tls-key-file", tls_file("s.key")

static void test_tls_port_checks(void **state)
{
    struct config c;
    char want[PATH_MAX + 128], none[PATH_MAX];

    assert_parse_error((const char *[]){ "--tls-port", "7443", NULL },
                       "tls-port needs tls-cert-file and tls-key-file");
    assert_parse_error((const char *[]){ "--tls-port", "7443",
                                         "--tls-cert-file", tls_file("s.crt"),
                                         NULL },
                       "tls-port needs tls-cert-file and tls-key-file");
    /* auth-clients yes (the default) needs CAs, as Redis */
    assert_parse_error((const char *[]){ "--tls-port", "7443", CERT, NULL },
                       "Either tls-ca-cert-file or tls-ca-cert-dir must be "
                       "specified");
    assert_parse_ok(&c, (const char *[]){ "--tls-port", "7443", CERT,
                                          "--tls-auth-clients", "no", NULL });
    assert_int_equal(c.tls_port, 7443);
    assert_int_equal(c.port, 7777);
    assert_parse_ok(&c, (const char *[]){ "--tls-port", "7443", CERT,
                                          "--tls-ca-cert-file",
                                          tls_file("ca.crt"), NULL });
    assert_parse_ok(&c, (const char *[]){ "--tls-port", "7443", CERT,
                                          "--tls-ca-cert-dir",
                                          tls_file("cadir/"), NULL });
    /* files that cannot be read now fail now (--check-config too) */
    snprintf(none, sizeof(none), "%s/tls/none.key", tmpdir);
    snprintf(want, sizeof(want), "tls-key-file '%s': No such file or "
             "directory", none);
    assert_parse_error((const char *[]){ "--tls-port", "7443",
                                         "--tls-cert-file", tls_file("s.crt"),
                                         "--tls-key-file", none,
                                         "--tls-auth-clients", "no", NULL },
                       want);
    assert_parse_error((const char *[]){ "--tls-port", "7443", CERT,
                                         "--tls-ca-cert-dir",
                                         tls_file("ca.crt"), NULL },
                       "tls-ca-cert-dir '");
    assert_parse_error((const char *[]){ "--tls-port", "7443",
                                         "--tls-cert-file",
                                         tls_file("cadir/"),
                                         "--tls-key-file", tls_file("s.key"),
                                         "--tls-auth-clients", "no", NULL },
                       "tls-cert-file '");
    assert_parse_error((const char *[]){ "--tls-port", "7777", CERT,
                                         "--tls-auth-clients", "no", NULL },
                       "tls-port 7777 is also the plain port");
    assert_parse_error((const char *[]){ "--tls-port", "70000", NULL },
                       "Invalid port '70000'");
    /* the files are not checked while TLS is off */
    assert_parse_ok(&c, (const char *[]){ "--tls-cert-file", "/nonexistent",
                                          NULL });
}

static void test_port_zero_with_tls_port(void **state)
{
    struct config c;

    assert_parse_error((const char *[]){ "-p", "0", NULL },
                       "Invalid port '0': 0 disables TCP and needs "
                       "--unixsocket or --tls-port");
    assert_parse_ok(&c, (const char *[]){ "-p", "0", "--tls-port", "7443",
                                          CERT, "--tls-auth-clients", "no",
                                          NULL });
    assert_int_equal(c.port, 0);
    assert_int_equal(c.tls_port, 7443);
}

static void test_tls_backend_checks(void **state)
{
    struct config c;

    assert_parse_ok(&c, (const char *[]){ "--tls", "10.0.0.1:7000", NULL });
    assert_true(c.tls);
    assert_false(c.tls_insecure);
    assert_parse_error((const char *[]){ "--tls", "--tls-cert",
                                         tls_file("c.crt"), NULL },
                       "--tls-cert and --tls-key go together");
    assert_parse_error((const char *[]){ "--tls", "--tls-cacert",
                                         "/nonexistent/ca.crt", NULL },
                       "--tls-cacert '/nonexistent/ca.crt': No such file");
    assert_parse_ok(&c, (const char *[]){ "--tls", "--tls-insecure",
                                          "--tls-cacert", tls_file("ca.crt"),
                                          "--tls-cert", tls_file("c.crt"),
                                          "--tls-key", tls_file("c.key"),
                                          NULL });
    assert_true(c.tls_insecure);
    /* without --tls they are not used, so not checked */
    assert_parse_ok(&c, (const char *[]){ "--tls-cacert", "/nonexistent",
                                          NULL });
    assert_parse_error((const char *[]){ "--tls=yes", NULL },
                       "Option '--tls' takes no value");
}

static void test_tls_cluster_checks(void **state)
{
    struct config c;

    assert_parse_error((const char *[]){ "--cluster-mode",
                                         "--cluster-password", "x",
                                         "--tls-cluster", "yes", NULL },
                       "tls-cluster needs tls-cert-file and tls-key-file");
    assert_parse_error((const char *[]){ "--cluster-mode",
                                         "--cluster-password", "x",
                                         "--tls-cluster", "yes", CERT,
                                         "--tls-auth-clients", "no", NULL },
                       "Either tls-ca-cert-file or tls-ca-cert-dir");
    assert_parse_ok(&c, (const char *[]){ "--cluster-mode",
                                          "--cluster-password", "x",
                                          "--tls-cluster", "yes", CERT,
                                          "--tls-ca-cert-file",
                                          tls_file("ca.crt"), NULL });
    assert_true(c.tls_cluster);
    /* outside cluster mode it is not used */
    assert_parse_ok(&c, (const char *[]){ "--tls-cluster", "yes", NULL });
}

static void test_tls_values(void **state)
{
    struct config c;

    assert_parse_error((const char *[]){ "--tls-protocols", "TLSv1.4", NULL },
                       "Invalid tls-protocols 'TLSv1.4' (space-separated "
                       "TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)");
    assert_parse_error((const char *[]){ "--tls-protocols", "SSLv3 TLSv1.3",
                                         NULL }, "Invalid tls-protocols");
    assert_parse_ok(&c, (const char *[]){ "--tls-protocols", "tlsv1.2  TLSv1",
                                          NULL });
    assert_string_equal(c.tls_protocols, "tlsv1.2  TLSv1");
    assert_parse_error((const char *[]){ "--tls-auth-clients", "maybe", NULL },
                       "Invalid tls-auth-clients 'maybe' (no|yes|optional)");
    assert_parse_error((const char *[]){ "--tls-session-caching", "maybe",
                                         NULL },
                       "Invalid tls-session-caching 'maybe' (yes|no)");
    /* Redis's booleans take a value on the command line too */
    assert_parse_ok(&c, (const char *[]){ "--tls-session-caching=no",
                                          "--tls-prefer-server-ciphers", "yes",
                                          NULL });
    assert_false(c.tls_session_caching);
    assert_true(c.tls_prefer_server_ciphers);
    assert_parse_error((const char *[]){ "--tls-session-cache-size", "0",
                                         NULL },
                       "Invalid tls-session-cache-size '0' (1..");
    assert_parse_error((const char *[]){ "--tls-session-cache-timeout", "-1",
                                         NULL },
                       "Invalid tls-session-cache-timeout '-1'");
}

/* Both file formats, then the command line's checks over them. */
static void test_tls_files(void **state)
{
    struct config c;
    char text[4096], path[PATH_MAX], err[512];
    const char *crt = tls_file("s.crt"), *key = tls_file("s.key");
    const char *ca = tls_file("ca.crt");

    snprintf(text, sizeof(text),
             "port 0\n" "tls-port 7443\n" "tls-cert-file %s\n"
             "tls-key-file %s\n" "tls-key-file-pass \"pass word\"\n"
             "tls-ca-cert-file %s\n" "tls-protocols \"TLSv1.3\"\n"
             "tls-auth-clients optional\n" "tls yes\n" "tls-cacert %s\n"
             "cluster 10.0.0.1:7000\n", crt, key, ca, ca);
    write_file("tls.conf", text, path, sizeof(path));
    assert_parse_ok(&c, (const char *[]){ "-c", path, NULL });
    assert_int_equal(c.port, 0);
    assert_int_equal(c.tls_port, 7443);
    assert_string_equal(c.tls_key_file_pass, "pass word");
    assert_string_equal(c.tls_protocols, "TLSv1.3");
    assert_true(c.tls);
    assert_string_equal(c.tls_cacert, ca);
    /* the dump reads back, the passphrase hidden */
    char *d = dump_text(&c);
    assert_non_null(strstr(d, "\ntls-port 7443\n"));
    assert_non_null(strstr(d, "\ntls-key-file-pass ********\n"));
    assert_non_null(strstr(d, "\ntls yes\n"));
    assert_null(strstr(d, "pass word"));
    free(d);

    snprintf(text, sizeof(text),
             "[proxy]\n" "port = 0\n" "tls-port = 7443\n"
             "tls-cert-file = %s\n" "tls-key-file = %s\n"
             "tls-ca-cert-file = %s\n" "tls-protocols = TLSv1.2 TLSv1.3\n"
             "[backend]\n" "entry-point = 10.0.0.1:7000\n" "tls = yes\n"
             "tls-insecure = yes\n"
             "[cluster]\n" "cluster-mode = yes\n" "cluster-password = x\n"
             "port-note-unused = 1\n", crt, key, ca);
    /* an unknown directive names its line */
    write_file("tls.ini", text, path, sizeof(path));
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, ":15: unknown directive 'port-note-unused'"));
    *strstr(text, "port-note-unused") = '\0';
    strcat(text, "tls-cluster = yes\n");
    write_file("tls.ini", text, path, sizeof(path));
    assert_parse_ok(&c, (const char *[]){ "-c", path, "--port", "7001",
                                          NULL });
    assert_string_equal(c.tls_protocols, "TLSv1.2 TLSv1.3");
    assert_true(c.tls && c.tls_insecure && c.tls_cluster);
    assert_int_equal(c.port, 7001);

    assert_load_error("tls2.ini", "[backend]\ntls-port = 7443\n",
                      "2: 'tls-port' belongs in section [proxy]");
    assert_load_error("tls3.ini", "[proxy]\ntls = yes\n",
                      "2: 'tls' belongs in section [backend]");
    assert_load_error("tls4.conf", "tls-session-caching\n",
                      "1: wrong number of arguments for "
                      "'tls-session-caching'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_option),
        cmocka_unit_test(test_every_option_equals_form),
        cmocka_unit_test(test_short_options),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_value_that_looks_like_equals),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_memory_units),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_number_bounds),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_binds),
        cmocka_unit_test(test_logfile_too_long),
        cmocka_unit_test(test_parse_address),
        cmocka_unit_test(test_parse_address_bad),
        cmocka_unit_test(test_entry_point_lists),
        cmocka_unit_test(test_too_many_entry_points),
        cmocka_unit_test(test_parse_twice),
        cmocka_unit_test(test_null_error_buffer),
        cmocka_unit_test(test_usage_lists_every_option),
        cmocka_unit_test(test_new_defaults),
        cmocka_unit_test(test_every_new_option),
        cmocka_unit_test(test_rcp_spellings),
        cmocka_unit_test(test_enum_options),
        cmocka_unit_test(test_unixsocketperm),
        cmocka_unit_test(test_output_buffer_limit),
        cmocka_unit_test(test_lease_redis),
        cmocka_unit_test(test_cluster_seeds),
        cmocka_unit_test(test_strings_checked),
        cmocka_unit_test(test_new_number_bounds),
        cmocka_unit_test(test_port_zero_needs_unixsocket),
        cmocka_unit_test(test_pool_limits_as_rcp),
        cmocka_unit_test(test_daemonize_pidfile),
        cmocka_unit_test(test_cluster_mode_checks),
        cmocka_unit_test(test_file_every_option),
        cmocka_unit_test(test_rcp_words),
        cmocka_unit_test(test_rcp_directives),
        cmocka_unit_test(test_rcp_errors),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_ini_format),
        cmocka_unit_test(test_ini_quoted_values),
        cmocka_unit_test(test_ini_errors),
        cmocka_unit_test(test_format_detection),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_include_error_texts),
        cmocka_unit_test(test_include_cycle_texts),
        cmocka_unit_test(test_include_depth),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_file_too_large),
        cmocka_unit_test(test_stdin),
        cmocka_unit_test(test_cli_overrides_file),
        cmocka_unit_test(test_dump_redacts),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_config_get_all),
        cmocka_unit_test(test_config_get_values),
        cmocka_unit_test(test_config_auto_hold),
        cmocka_unit_test(test_config_get_patterns),
        cmocka_unit_test(test_config_set_matrix),
        cmocka_unit_test(test_config_set_values),
        cmocka_unit_test(test_config_set_pool),
        cmocka_unit_test(test_config_apply),
        cmocka_unit_test(test_tls_port_checks),
        cmocka_unit_test(test_port_zero_with_tls_port),
        cmocka_unit_test(test_tls_backend_checks),
        cmocka_unit_test(test_tls_cluster_checks),
        cmocka_unit_test(test_tls_values),
        cmocka_unit_test(test_tls_files),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
