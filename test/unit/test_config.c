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
        "-p, --port", "--bind", "--threads", "--log-level", "--logfile",
        "--maxclients", "--tcpkeepalive", "--tcp-backlog", "--connect-timeout",
        "--backend-timeout", "--proto-max-bulk-len",
        "--client-query-buffer-limit", "-h, --help", "--version",
        "online CPUs", "debug|info|success|warning|error", "Usage:",
    };
    const char *u = config_usage();

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        if (strstr(u, opts[i]) == NULL)
            fail_msg("usage lacks '%s'", opts[i]);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
