/*
 * test_resp.c — unit tests of the resp module: request parser (split
 * points, pipelining, inline quoting, every Redis error text, limits and
 * linear cost), reply parser (every type, nesting, attributes, split points,
 * garbage), the tree reader and the writers.
 *
 * Inputs are always copied into a heap block of exactly the length given to
 * the parser, so that ASan reports any read past `len`; growing prefixes
 * get a fresh block each time, which also checks that the parsers keep no
 * pointer into the caller's bytes between calls.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../resp/resp.h"

/* A string literal with its length (literals may hold NUL bytes). */
#define LIT(s) (s), (sizeof(s) - 1)

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n ? n : 1);

    assert_non_null(d);
    if (n)
        memcpy(d, s, n);
    return d;
}

static double now_sec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ======================================================================== */
/* Request parser helpers                                                   */

struct arg {
    const char *s;
    size_t n;
};

#define MAX_ARGS 8

struct req_case {
    const char *in;
    size_t in_len;
    bool is_inline;
    size_t argc;
    struct arg args[MAX_ARGS];
};

#define A(s) { (s), sizeof(s) - 1 }

static enum resp_result req_parse_copy(struct resp_req_parser *p,
                                       const char *in, size_t n)
{
    char *c = dup_n(in, n);
    enum resp_result r = resp_parse_request(p, c, n);

    free(c);
    return r;
}

static void check_args(const struct resp_req_parser *p, const char *buf,
                       const struct req_case *c)
{
    assert_int_equal(p->argc, c->argc);
    assert_int_equal(p->is_inline, c->is_inline);
    for (size_t i = 0; i < c->argc; i++) {
        assert_int_equal(p->argv[i].len, c->args[i].n);
        assert_memory_equal(resp_req_arg(p, buf, i), c->args[i].s,
                            c->args[i].n);
    }
}

/* Full parse of c->in (plus `extra` trailing bytes of a next command):
 * OK, p->len == c->in_len, the expected arguments. */
static void expect_req(const struct req_case *c, const char *extra,
                       size_t extra_len)
{
    struct resp_req_parser p;
    size_t n = c->in_len + extra_len;
    char *buf = malloc(n ? n : 1);

    memcpy(buf, c->in, c->in_len);
    memcpy(buf + c->in_len, extra, extra_len);
    resp_req_init(&p);
    assert_int_equal(resp_parse_request(&p, buf, n), RESP_OK);
    assert_int_equal(p.len, c->in_len);
    check_args(&p, buf, c);
    resp_req_free(&p);
    free(buf);
}

/* Every split point, two ways: a fresh parser on each proper prefix (must
 * say NEED_MORE), then one parser fed every growing prefix in turn. */
static void expect_req_splits(const struct req_case *c)
{
    struct resp_req_parser p;
    char *buf;

    for (size_t k = 0; k < c->in_len; k++) {
        resp_req_init(&p);
        assert_int_equal(req_parse_copy(&p, c->in, k), RESP_NEED_MORE);
        resp_req_free(&p);
    }
    resp_req_init(&p);
    for (size_t k = 0; k < c->in_len; k++)
        assert_int_equal(req_parse_copy(&p, c->in, k), RESP_NEED_MORE);
    buf = dup_n(c->in, c->in_len);
    assert_int_equal(resp_parse_request(&p, buf, c->in_len), RESP_OK);
    assert_int_equal(p.len, c->in_len);
    check_args(&p, buf, c);
    free(buf);
    resp_req_free(&p);
    expect_req(c, "", 0);
    expect_req(c, LIT("*1\r\n$4\r\nPING\r\n"));
}

/* The error text after feeding all of `in` at once, and after feeding it
 * one growing prefix at a time (the error must come out the same; before
 * it every prefix is NEED_MORE). */
static void expect_req_error_max(const char *in, size_t n, const char *text,
                                 long long max_bulk, long long max_query)
{
    struct resp_req_parser p;
    enum resp_result r = RESP_NEED_MORE;
    size_t k;

    resp_req_init(&p);
    p.max_bulk = max_bulk;
    p.max_query = max_query;
    assert_int_equal(req_parse_copy(&p, in, n), RESP_ERROR);
    assert_string_equal(p.error, text);
    /* Sticky until resp_req_next(). */
    assert_int_equal(req_parse_copy(&p, in, n), RESP_ERROR);
    resp_req_next(&p);
    /* Long inputs in strides (copying every prefix would be quadratic). */
    for (k = 0; k < n && r == RESP_NEED_MORE; k += n > 4096 ? 1021 : 1)
        r = req_parse_copy(&p, in, k);
    if (r == RESP_NEED_MORE)
        r = req_parse_copy(&p, in, n);
    assert_int_equal(r, RESP_ERROR);
    assert_string_equal(p.error, text);
    resp_req_free(&p);
}

static void expect_req_error(const char *in, size_t n, const char *text)
{
    expect_req_error_max(in, n, text, RESP_DEFAULT_MAX_BULK,
                         RESP_DEFAULT_MAX_QUERY);
}

/* ======================================================================== */
/* Request parser: multibulk                                                */

static const struct req_case multibulk_cases[] = {
    { LIT("*1\r\n$4\r\nPING\r\n"), false, 1, { A("PING") } },
    { LIT("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"), false, 3,
      { A("SET"), A("key"), A("value") } },
    /* Empty bulk strings. */
    { LIT("*2\r\n$0\r\n\r\n$0\r\n\r\n"), false, 2, { A(""), A("") } },
    /* Binary data, CRLF and NUL inside a bulk. */
    { LIT("*2\r\n$3\r\nGET\r\n$8\r\na\r\n\0b\r\n\n\r\n"), false, 2,
      { A("GET"), A("a\r\n\0b\r\n\n") } },
    { LIT("*1\r\n$3\r\n*1\r\r\n"), false, 1, { A("*1\r") } },
    /* Empty commands: count <= 0. */
    { LIT("*0\r\n"), false, 0, { { 0 } } },
    { LIT("*-1\r\n"), false, 0, { { 0 } } },
    { LIT("*-42\r\n"), false, 0, { { 0 } } },
    /* Redis never looks at the byte after '\r', nor at the two bytes
     * after an argument. */
    { LIT("*1\rX$3\rYfooZZ"), false, 1, { A("foo") } },
    { LIT("*2\r\r$1\r\ra\r\n$1\r\nb\n\n"), false, 2, { A("a"), A("b") } },
    /* Large-ish counts and lengths are fine. */
    { LIT("*1\r\n$12\r\n0123456789ab\r\n"), false, 1, { A("0123456789ab") } },
};

static void test_req_multibulk_splits(void **state)
{
    for (size_t i = 0; i < sizeof(multibulk_cases) / sizeof(*multibulk_cases); i++)
        expect_req_splits(&multibulk_cases[i]);
}

static void test_req_pipeline(void **state)
{
    static const char in[] =
        "*1\r\n$4\r\nPING\r\n"
        "PING\r\n"
        "\r\n"
        "*0\r\n"
        "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
        "set a \"b c\"\n"
        "*1\r\n$0\r\n\r\n";
    static const size_t want_argc[] = { 1, 1, 0, 0, 2, 3, 1 };
    static const bool want_inline[] = { false, true, true, false, false,
                                        true, false };
    const size_t n = sizeof(in) - 1;
    char *buf = dup_n(in, n);
    struct resp_req_parser p;
    size_t off = 0, cmd = 0;

    resp_req_init(&p);
    while (off < n) {
        assert_int_equal(resp_parse_request(&p, buf + off, n - off), RESP_OK);
        assert_true(cmd < sizeof(want_argc) / sizeof(*want_argc));
        assert_int_equal(p.argc, want_argc[cmd]);
        assert_int_equal(p.is_inline, want_inline[cmd]);
        if (cmd == 5)
            assert_memory_equal(resp_req_arg(&p, buf + off, 2), "b c", 3);
        off += p.len;
        cmd++;
        resp_req_next(&p);
    }
    assert_int_equal(off, n);
    assert_int_equal(cmd, 7);
    /* Nothing left: NEED_MORE on zero bytes. */
    assert_int_equal(resp_parse_request(&p, buf + n, 0), RESP_NEED_MORE);
    resp_req_free(&p);
    free(buf);
}

/* The bytes of a command may move between calls (ring buffer -> client
 * buffer): offsets are relative, so the result must not change. */
static void test_req_moved_buffer(void **state)
{
    static const char in[] = "*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n";
    struct resp_req_parser p;
    char *a = dup_n(in, 10), *b;

    resp_req_init(&p);
    assert_int_equal(resp_parse_request(&p, a, 10), RESP_NEED_MORE);
    memset(a, 'Z', 10);
    free(a);
    b = dup_n(in, sizeof(in) - 1);
    assert_int_equal(resp_parse_request(&p, b, sizeof(in) - 1), RESP_OK);
    assert_int_equal(p.argc, 2);
    assert_memory_equal(resp_req_arg(&p, b, 1), "hello", 5);
    assert_int_equal(p.argv[1].off, 17);
    free(b);
    resp_req_free(&p);
}

static void test_req_multibulk_errors(void **state)
{
    char big[RESP_INLINE_MAX + 16];

    expect_req_error(LIT("*abc\r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("*\r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("*01\r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("*+1\r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("*-0\r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("* 1\r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("*1 \r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("*2147483648\r\n"), "ERR Protocol error: invalid multibulk length");
    expect_req_error(LIT("*99999999999999999999\r\n"), "ERR Protocol error: invalid multibulk length");
    /* '\n' alone does not end the count line: Redis looks for '\r'. */
    expect_req_error(LIT("*1\n$3\r\n"), "ERR Protocol error: invalid multibulk length");

    expect_req_error(LIT("*1\r\n$-1\r\n"), "ERR Protocol error: invalid bulk length");
    expect_req_error(LIT("*1\r\n$-5\r\n"), "ERR Protocol error: invalid bulk length");
    expect_req_error(LIT("*1\r\n$\r\n"), "ERR Protocol error: invalid bulk length");
    expect_req_error(LIT("*1\r\n$03\r\nfoo\r\n"), "ERR Protocol error: invalid bulk length");
    expect_req_error(LIT("*1\r\n$3x\r\nfoo\r\n"), "ERR Protocol error: invalid bulk length");
    expect_req_error(LIT("*1\r\n$536870913\r\n"), "ERR Protocol error: invalid bulk length");
    expect_req_error(LIT("*1\r\n$9223372036854775808\r\n"), "ERR Protocol error: invalid bulk length");

    expect_req_error(LIT("*1\r\nx3\r\nfoo\r\n"), "ERR Protocol error: expected '$', got 'x'");
    expect_req_error(LIT("*2\r\n$1\r\na\r\n:1\r\n"), "ERR Protocol error: expected '$', got ':'");
    expect_req_error(LIT("*1\r\n\r\n"), "ERR Protocol error: expected '$', got '\r'");
    /* After the data Redis skips 2 bytes unseen: here they are "\n$". */
    expect_req_error(LIT("*2\r\n$1\r\na\n$1\r\nb\r\n"), "ERR Protocol error: expected '$', got '1'");

    /* No '\r' within 64 KB of the line start. */
    big[0] = '*';
    memset(big + 1, '1', sizeof(big) - 1);
    expect_req_error(big, RESP_INLINE_MAX + 1, "ERR Protocol error: too big mbulk count string");
    memcpy(big, "*1\r\n$", 5);
    expect_req_error(big, RESP_INLINE_MAX + 5, "ERR Protocol error: too big bulk count string");
    /* With its '\r' already there, an over-long line is just an invalid
     * number (arriving piecemeal it would have been "too big" first). */
    big[RESP_INLINE_MAX + 8] = '\r';
    big[RESP_INLINE_MAX + 9] = '\n';
    {
        struct resp_req_parser p;

        resp_req_init(&p);
        assert_int_equal(req_parse_copy(&p, big, RESP_INLINE_MAX + 10), RESP_ERROR);
        assert_string_equal(p.error, "ERR Protocol error: invalid bulk length");
        resp_req_free(&p);
    }
}

/* Exactly RESP_INLINE_MAX bytes without a terminator is still a prefix. */
static void test_req_header_limit_boundary(void **state)
{
    char *big = malloc(RESP_INLINE_MAX + 1);
    struct resp_req_parser p;

    big[0] = '*';
    memset(big + 1, '1', RESP_INLINE_MAX);
    resp_req_init(&p);
    assert_int_equal(req_parse_copy(&p, big, RESP_INLINE_MAX), RESP_NEED_MORE);
    assert_int_equal(req_parse_copy(&p, big, RESP_INLINE_MAX + 1), RESP_ERROR);
    resp_req_free(&p);
    free(big);
}

static void test_req_max_bulk(void **state)
{
    struct req_case ok = { LIT("*1\r\n$10\r\n0123456789\r\n"), false, 1,
                           { A("0123456789") } };
    struct resp_req_parser p;

    expect_req_error_max(LIT("*1\r\n$11\r\n01234567890\r\n"),
                         "ERR Protocol error: invalid bulk length", 10,
                         RESP_DEFAULT_MAX_QUERY);
    resp_req_init(&p);
    p.max_bulk = 10;
    assert_int_equal(req_parse_copy(&p, ok.in, ok.in_len), RESP_OK);
    resp_req_free(&p);
    /* The default: 512 MB is fine, one more byte is not. */
    resp_req_init(&p);
    assert_int_equal(req_parse_copy(&p, LIT("*1\r\n$536870912\r\n")), RESP_NEED_MORE);
    assert_int_equal(p.state, RESP_REQ_BULK_DATA);
    assert_int_equal(p.bulk_len, 536870912);
    resp_req_free(&p);
}

static void test_req_query_limit(void **state)
{
    static const char text[] =
        "ERR Protocol error: client query buffer limit exceeded";
    struct resp_req_parser p;

    /* 4 + 5 + 32 + 2 = 43 bytes. */
    expect_req_error_max(LIT("*1\r\n$32\r\n0123456789abcdef0123456789abcdef\r\n"),
                         text, RESP_DEFAULT_MAX_BULK, 42);
    expect_req_error_max(LIT("GET 0123456789abcdef0123456789abcdef\r\n"),
                         text, RESP_DEFAULT_MAX_BULK, 20);
    /* A partial command over the limit fails before it completes. */
    resp_req_init(&p);
    p.max_query = 15;
    assert_int_equal(req_parse_copy(&p, LIT("*1\r\n$100\r\n0123456789")), RESP_ERROR);
    assert_string_equal(p.error, text);
    resp_req_next(&p);
    p.max_query = 43;
    assert_int_equal(req_parse_copy(&p, LIT("*1\r\n$32\r\n0123456789abcdef0123456789abcdef\r\n")), RESP_OK);
    resp_req_free(&p);
}

/* A count near INT_MAX allocates nothing until arguments arrive. */
static void test_req_untrusted_count(void **state)
{
    struct resp_req_parser p;

    resp_req_init(&p);
    assert_int_equal(req_parse_copy(&p, LIT("*2147483647\r\n$1\r\na\r\n")), RESP_NEED_MORE);
    assert_int_equal(p.argc, 1);
    assert_true(p.argv_cap <= 64);
    assert_int_equal(p.remaining, 2147483646);
    resp_req_next(&p);
    /* The first allocation is min(count, 64). */
    resp_req_free(&p);
    resp_req_init(&p);
    assert_int_equal(req_parse_copy(&p, LIT("*2\r\n$1\r\na\r\n$1\r\nb\r\n")), RESP_OK);
    assert_int_equal(p.argv_cap, 2);
    resp_req_free(&p);
}

/* ======================================================================== */
/* Request parser: inline                                                   */

static const struct req_case inline_cases[] = {
    { LIT("PING\r\n"), true, 1, { A("PING") } },
    { LIT("PING\n"), true, 1, { A("PING") } },
    /* Only the last '\r' before '\n' is stripped; the other splits. */
    { LIT("PING\r\r\n"), true, 1, { A("PING") } },
    { LIT("SET key value\r\n"), true, 3, { A("SET"), A("key"), A("value") } },
    { LIT("  GET\t\tkey  \r\n"), true, 2, { A("GET"), A("key") } },
    /* Empty and blank lines: empty commands. */
    { LIT("\r\n"), true, 0, { { 0 } } },
    { LIT("\n"), true, 0, { { 0 } } },
    { LIT("     \r\n"), true, 0, { { 0 } } },
    { LIT(" \t \v \f \r\n"), true, 0, { { 0 } } },
    /* \v and \f are skipped between tokens but do not end one. */
    { LIT("a\vb \fc\r\n"), true, 2, { A("a\vb"), A("c") } },
    /* Quotes. */
    { LIT("SET \"a b\" 'c d'\r\n"), true, 3, { A("SET"), A("a b"), A("c d") } },
    { LIT("\"\" ''\r\n"), true, 2, { A(""), A("") } },
    { LIT("\"a\"\t'b'\r\n"), true, 2, { A("a"), A("b") } },
    { LIT("\"a\"\v'b'\n"), true, 2, { A("a"), A("b") } },
    /* A quote may open in the middle of a token. */
    { LIT("ab\"c d\" x'y z'\r\n"), true, 2, { A("abc d"), A("xy z") } },
    /* Double-quote escapes. */
    { LIT("\"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n"), true, 1, { A("\n\r\t\b\a\\\"q") } },
    { LIT("\"\\x41\\x6a\\x4A\\xff\\x00z\"\r\n"), true, 1, { A("AjJ\xff\0z") } },
    /* \x without two hex digits is the escape of 'x'. */
    { LIT("\"\\xzz\\x4\\x\"\r\n"), true, 1, { A("xzzx4x") } },
    /* Single quotes: only \' is special. */
    { LIT("'it\\'s' '\\n\\x41\\q'\r\n"), true, 2, { A("it's"), A("\\n\\x41\\q") } },
    { LIT("'a\"b' \"c'd\"\r\n"), true, 2, { A("a\"b"), A("c'd") } },
    /* A line ending right after a closing quote. */
    { LIT("\"x\"\n"), true, 1, { A("x") } },
    { LIT("'x'\r\n"), true, 1, { A("x") } },
    /* Only one '\r' is stripped; the other is a blank after the quote. */
    { LIT("\"a\"\r\r\n"), true, 1, { A("a") } },
    /* Binary bytes pass through. */
    { LIT("GET \x80\xff\x01\r\n"), true, 2, { A("GET"), A("\x80\xff\x01") } },
};

static void test_req_inline_splits(void **state)
{
    for (size_t i = 0; i < sizeof(inline_cases) / sizeof(*inline_cases); i++)
        expect_req_splits(&inline_cases[i]);
}

static void test_req_inline_errors(void **state)
{
    static const char quotes[] = "ERR Protocol error: unbalanced quotes in request";
    char *big;

    expect_req_error(LIT("\"foo\r\n"), quotes);
    expect_req_error(LIT("'foo\r\n"), quotes);
    expect_req_error(LIT("\"foo\"bar\r\n"), quotes);
    expect_req_error(LIT("'foo'bar\r\n"), quotes);
    expect_req_error(LIT("a\"b c\"d\r\n"), quotes);
    expect_req_error(LIT("\"foo\\\"\r\n"), quotes);
    expect_req_error(LIT("\"foo\\\r\n"), quotes);
    expect_req_error(LIT("'foo\\'\n"), quotes);
    expect_req_error(LIT("SET k \"v\r\n"), quotes);
    expect_req_error(LIT("\"a\"x\n"), quotes);
    /* \\ then \' : the quote is escaped, so the string never closes. */
    expect_req_error(LIT("'a\\\\'\r\n"), quotes);

    big = malloc(RESP_INLINE_MAX + 2);
    memset(big, 'a', RESP_INLINE_MAX + 2);
    expect_req_error(big, RESP_INLINE_MAX + 1, "ERR Protocol error: too big inline request");
    free(big);
}

/* Redis's strchr() stops at a NUL: a NUL before the terminator hides it
 * for good (the command never completes, then is too big). */
static void test_req_nul_hides_terminator(void **state)
{
    struct resp_req_parser p;
    char *big = calloc(1, RESP_INLINE_MAX + 8);

    resp_req_init(&p);
    assert_int_equal(req_parse_copy(&p, LIT("PI\0NG\r\nPING\r\n")), RESP_NEED_MORE);
    resp_req_next(&p);
    assert_int_equal(req_parse_copy(&p, LIT("*1\0\r\n$4\r\nPING\r\n")), RESP_NEED_MORE);
    resp_req_next(&p);
    assert_int_equal(req_parse_copy(&p, LIT("*1\r\n$4\0\r\nPING\r\n")), RESP_NEED_MORE);
    resp_req_next(&p);
    /* the same past the bytes the scanner looks at itself (memchr's part),
     * and right at their end */
    assert_int_equal(req_parse_copy(&p, LIT("GET aaaaaaaaaaaaaaaaaaaaaaaaa\0b\r\nPING\r\n")),
                     RESP_NEED_MORE);
    resp_req_next(&p);
    assert_int_equal(req_parse_copy(&p, LIT("GET aaaaaaaaaaa\0b\r\nPING\r\n")), RESP_NEED_MORE);
    resp_req_next(&p);
    assert_int_equal(req_parse_copy(&p, LIT("GET aaaaaaaaaa\0b\r\nPING\r\n")), RESP_NEED_MORE);
    resp_req_next(&p);
    assert_int_equal(req_parse_copy(&p, LIT("*1\r\n$000000000000000000004\0\r\nPING\r\n")),
                     RESP_NEED_MORE);
    resp_req_next(&p);
    /* and a line found there is a line */
    assert_int_equal(req_parse_copy(&p, LIT("GET aaaaaaaaaaaaaaaaaaaaaaaaa\r\n")), RESP_OK);
    assert_int_equal(p.argc, 2);
    assert_int_equal(p.argv[1].len, 25);
    resp_req_free(&p);
    memcpy(big, "GET a\0b\r\n", 9);
    expect_req_error(big, RESP_INLINE_MAX + 1, "ERR Protocol error: too big inline request");
    memcpy(big, "*1\0\r\n", 5);
    expect_req_error(big, RESP_INLINE_MAX + 1, "ERR Protocol error: too big mbulk count string");
    memcpy(big, "*1\r\n$\0\r\n", 8);
    expect_req_error(big, RESP_INLINE_MAX + 5, "ERR Protocol error: too big bulk count string");
    free(big);
}

/* ======================================================================== */
/* Request parser: size and cost                                            */

static char *build_many_args(size_t nargs, size_t *out_len)
{
    size_t cap = 32 + nargs * 24, n;
    char *buf = malloc(cap);

    n = (size_t)sprintf(buf, "*%zu\r\n", nargs);
    for (size_t i = 0; i < nargs; i++) {
        char arg[24];
        int an = sprintf(arg, "%zu", i);

        n += (size_t)sprintf(buf + n, "$%d\r\n%s\r\n", an, arg);
    }
    *out_len = n;
    return buf;
}

/* Feeds growing prefixes, `chunk` bytes more each time; returns seconds. */
static double feed_in_chunks(struct resp_req_parser *p, const char *buf,
                             size_t n, size_t chunk)
{
    double t0 = now_sec();
    enum resp_result r = RESP_NEED_MORE;
    size_t have = 0;

    while (r == RESP_NEED_MORE) {
        have = have + chunk < n ? have + chunk : n;
        r = resp_parse_request(p, buf, have);
        if (have < n)
            assert_int_equal(r, RESP_NEED_MORE);
    }
    assert_int_equal(r, RESP_OK);
    assert_int_equal(p->len, n);
    return now_sec() - t0;
}

static void test_req_million_args(void **state)
{
    struct resp_req_parser p;
    size_t n_small, n_big;
    char *small = build_many_args(100000, &n_small);
    char *big = build_many_args(1000000, &n_big);
    double t_small = 1e9, t_big;

    resp_req_init(&p);
    for (int i = 0; i < 3; i++) {
        double t = feed_in_chunks(&p, small, n_small, 65536);

        t_small = t < t_small ? t : t_small;
        resp_req_next(&p);
    }
    t_big = feed_in_chunks(&p, big, n_big, 65536);
    assert_int_equal(p.argc, 1000000);
    assert_memory_equal(resp_req_arg(&p, big, 999999), "999999", 6);
    assert_memory_equal(resp_req_arg(&p, big, 0), "0", 1);
    /* 10x the input must cost about 10x, never 100x. Generous bound for
     * noisy machines and sanitizers; the floor absorbs timer noise. */
    assert_true(t_big < 30 * (t_small > 1e-3 ? t_small : 1e-3));
    /* A huge argv is given back between commands. */
    resp_req_next(&p);
    assert_true(p.argv_cap <= 1024);
    resp_req_free(&p);
    free(small);
    free(big);
}

/* A 32 MB argument in 16 KB pieces, and a 1 MB one byte by byte: both must
 * be O(total) (quadratic rescanning would not finish). */
static void test_req_big_bulk_resume(void **state)
{
    const size_t data = 32u << 20;
    size_t n;
    char *buf = malloc(data + 64);
    struct resp_req_parser p;

    n = (size_t)sprintf(buf, "*2\r\n$3\r\nSET\r\n$%zu\r\n", data);
    memset(buf + n, 'v', data);
    n += data;
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    resp_req_init(&p);
    feed_in_chunks(&p, buf, n, 16384);
    assert_int_equal(p.argc, 2);
    assert_int_equal(p.argv[1].len, data);
    resp_req_next(&p);

    n = (size_t)sprintf(buf, "*1\r\n$%d\r\n", 1 << 20);
    memset(buf + n, 'v', 1 << 20);
    n += 1 << 20;
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    feed_in_chunks(&p, buf, n, 1);
    assert_int_equal(p.argv[0].len, 1 << 20);
    resp_req_free(&p);
    free(buf);
}

/* A long inline line and long header lines fed one byte at a time. */
static void test_req_long_lines_bytewise(void **state)
{
    size_t n = 60000;
    char *buf = malloc(n + 2);
    struct resp_req_parser p;

    memset(buf, 'a', n);
    buf[n] = '\n';
    resp_req_init(&p);
    feed_in_chunks(&p, buf, n + 1, 1);
    assert_int_equal(p.argc, 1);
    assert_int_equal(p.argv[0].len, n);
    resp_req_free(&p);
    free(buf);
}

static void test_string2ll(void **state)
{
    static const struct {
        const char *s;
        bool ok;
        long long v;
    } cases[] = {
        { "0", true, 0 }, { "1", true, 1 }, { "-1", true, -1 },
        { "123456", true, 123456 },
        { "9223372036854775807", true, LLONG_MAX },
        { "-9223372036854775808", true, LLONG_MIN },
        { "9223372036854775808", false, 0 },
        { "-9223372036854775809", false, 0 },
        { "18446744073709551616", false, 0 },
        { "", false, 0 }, { "-", false, 0 }, { "+1", false, 0 },
        { "-0", false, 0 }, { "00", false, 0 }, { "01", false, 0 },
        { " 1", false, 0 }, { "1 ", false, 0 }, { "1a", false, 0 },
        { "0x10", false, 0 }, { "000000000000000000001", false, 0 },
    };
    long long v;

    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        v = 42;
        assert_int_equal(resp_string2ll(cases[i].s, strlen(cases[i].s), &v),
                         cases[i].ok);
        if (cases[i].ok)
            assert_true(v == cases[i].v);
    }
}

/* ======================================================================== */
/* Reply parser                                                             */

struct reply_case {
    const char *in;
    size_t in_len;
    char first;
    size_t first_off;
};

static const struct reply_case reply_cases[] = {
    { LIT("+OK\r\n"), '+', 0 },
    { LIT("+\r\n"), '+', 0 },
    { LIT("-ERR unknown command\r\n"), '-', 0 },
    { LIT("-MOVED 3999 127.0.0.1:6381\r\n"), '-', 0 },
    { LIT(":0\r\n"), ':', 0 },
    { LIT(":-1234567890\r\n"), ':', 0 },
    { LIT("$0\r\n\r\n"), '$', 0 },
    { LIT("$5\r\nhello\r\n"), '$', 0 },
    { LIT("$6\r\na\r\n\0\r\n\r\n"), '$', 0 },
    { LIT("$-1\r\n"), '$', 0 },
    { LIT("*-1\r\n"), '*', 0 },
    { LIT("*0\r\n"), '*', 0 },
    { LIT("*3\r\n:1\r\n$1\r\na\r\n+b\r\n"), '*', 0 },
    { LIT("*2\r\n*2\r\n:1\r\n:2\r\n*1\r\n$-1\r\n"), '*', 0 },
    { LIT("*2\r\n*-1\r\n*0\r\n"), '*', 0 },
    { LIT("%2\r\n+a\r\n:1\r\n+b\r\n*2\r\n:1\r\n:2\r\n"), '%', 0 },
    { LIT("%0\r\n"), '%', 0 },
    { LIT("~2\r\n+x\r\n+y\r\n"), '~', 0 },
    { LIT(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nmsg\r\n"), '>', 0 },
    { LIT("_\r\n"), '_', 0 },
    { LIT("#t\r\n"), '#', 0 },
    { LIT("#f\r\n"), '#', 0 },
    { LIT(",3.14\r\n"), ',', 0 },
    { LIT(",-inf\r\n"), ',', 0 },
    { LIT("(3492890328409238509324850943850943825024385\r\n"), '(', 0 },
    { LIT("!21\r\nSYNTAX invalid syntax\r\n"), '!', 0 },
    { LIT("=15\r\ntxt:Some string\r\n"), '=', 0 },
    /* Attributes: not the reply, which follows. */
    { LIT("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.01\r\n"
          "*2\r\n:2039123\r\n:9543892\r\n"), '*', 53 },
    { LIT("|0\r\n+OK\r\n"), '+', 4 },
    { LIT("|1\r\n+a\r\n*1\r\n:1\r\n|1\r\n+b\r\n+c\r\n$2\r\nhi\r\n"), '$', 28 },
    { LIT("|1\r\n|1\r\n+x\r\n+y\r\n+a\r\n+b\r\n:7\r\n"), ':', 24 },
    /* An attribute inside an aggregate. */
    { LIT("*2\r\n|1\r\n+ttl\r\n:3600\r\n+v1\r\n+v2\r\n"), '*', 0 },
    { LIT("*1\r\n%1\r\n|1\r\n+a\r\n+b\r\n+k\r\n~1\r\n_\r\n"), '*', 0 },
};

static enum resp_result reply_parse_copy(struct resp_reply_parser *p,
                                         const char *in, size_t n)
{
    char *c = dup_n(in, n);
    enum resp_result r = resp_parse_reply(p, c, n);

    free(c);
    return r;
}

static void check_reply_result(const struct resp_reply_parser *p,
                               const struct reply_case *c)
{
    assert_int_equal(p->len, c->in_len);
    assert_int_equal(p->first, c->first);
    assert_int_equal(p->first_off, c->first_off);
}

static void expect_reply_splits(const struct reply_case *c)
{
    struct resp_reply_parser p;
    char *buf;
    size_t n = c->in_len + 5;

    for (size_t k = 0; k < c->in_len; k++) {
        resp_reply_init(&p);
        assert_int_equal(reply_parse_copy(&p, c->in, k), RESP_NEED_MORE);
    }
    resp_reply_init(&p);
    for (size_t k = 0; k < c->in_len; k++)
        assert_int_equal(reply_parse_copy(&p, c->in, k), RESP_NEED_MORE);
    assert_int_equal(reply_parse_copy(&p, c->in, c->in_len), RESP_OK);
    check_reply_result(&p, c);
    /* Followed by the next reply: the boundary is exact. */
    buf = malloc(n);
    memcpy(buf, c->in, c->in_len);
    memcpy(buf + c->in_len, "+OK\r\n", 5);
    resp_reply_init(&p);
    assert_int_equal(resp_parse_reply(&p, buf, n), RESP_OK);
    check_reply_result(&p, c);
    resp_reply_next(&p);
    assert_int_equal(resp_parse_reply(&p, buf + c->in_len, 5), RESP_OK);
    assert_int_equal(p.len, 5);
    free(buf);
}

static void test_reply_types_and_splits(void **state)
{
    for (size_t i = 0; i < sizeof(reply_cases) / sizeof(*reply_cases); i++)
        expect_reply_splits(&reply_cases[i]);
}

static void test_reply_pipeline(void **state)
{
    static const char in[] = "+OK\r\n$3\r\nfoo\r\n*2\r\n:1\r\n:2\r\n-ERR x\r\n$-1\r\n";
    static const size_t lens[] = { 5, 9, 12, 8, 5 };
    struct resp_reply_parser p;
    size_t off = 0;

    resp_reply_init(&p);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(resp_parse_reply(&p, in + off, sizeof(in) - 1 - off), RESP_OK);
        assert_int_equal(p.len, lens[i]);
        /* Calling again before next() keeps the result. */
        assert_int_equal(resp_parse_reply(&p, in + off, sizeof(in) - 1 - off), RESP_OK);
        assert_int_equal(p.len, lens[i]);
        off += p.len;
        resp_reply_next(&p);
    }
    assert_int_equal(off, sizeof(in) - 1);
}

static char *nested_arrays(size_t depth, size_t *n)
{
    char *buf = malloc(depth * 4 + 8);

    for (size_t i = 0; i < depth; i++)
        memcpy(buf + i * 4, "*1\r\n", 4);
    memcpy(buf + depth * 4, ":1\r\n", 4);
    *n = depth * 4 + 4;
    return buf;
}

static void test_reply_deep_nesting(void **state)
{
    struct reply_case c;
    size_t n;
    char *buf = nested_arrays(1000, &n);
    struct resp_reply_parser p;
    struct resp_value v;
    size_t used;

    c = (struct reply_case){ buf, n, '*', 0 };
    expect_reply_splits(&c);
    free(buf);

    buf = nested_arrays(100000, &n);
    resp_reply_init(&p);
    assert_int_equal(resp_parse_reply(&p, buf, n), RESP_OK);
    assert_int_equal(p.len, n);
    /* Byte by byte through one parser: linear. */
    resp_reply_init(&p);
    for (size_t k = 1; k < n; k++)
        assert_int_equal(resp_parse_reply(&p, buf, k), RESP_NEED_MORE);
    assert_int_equal(resp_parse_reply(&p, buf, n), RESP_OK);
    assert_int_equal(p.len, n);
    /* And the tree reader (no recursion either way). */
    assert_int_equal(resp_read_value(buf, n, &v, &used), RESP_OK);
    assert_int_equal(used, n);
    resp_value_free(&v);
    assert_int_equal(resp_read_value(buf, n - 1, &v, &used), RESP_NEED_MORE);
    free(buf);
}

static void test_reply_big_bulk_bytewise(void **state)
{
    size_t data = 1 << 20, n;
    char *buf = malloc(data + 32);
    struct resp_reply_parser p;

    n = (size_t)sprintf(buf, "$%zu\r\n", data);
    memset(buf + n, 'x', data);
    n += data;
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    resp_reply_init(&p);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(resp_parse_reply(&p, buf, k), RESP_NEED_MORE);
    assert_int_equal(resp_parse_reply(&p, buf, n), RESP_OK);
    assert_int_equal(p.len, n);
    /* A long simple line too. */
    memset(buf, 'e', data);
    buf[0] = '-';
    memcpy(buf + data, "\r\n", 2);
    resp_reply_init(&p);
    for (size_t k = 0; k < data + 2; k++)
        assert_int_equal(resp_parse_reply(&p, buf, k), RESP_NEED_MORE);
    assert_int_equal(resp_parse_reply(&p, buf, data + 2), RESP_OK);
    free(buf);
}

/* Errors: the whole input at once and byte by byte both fail. */
static void expect_reply_error(const char *in, size_t n)
{
    struct resp_reply_parser p;
    enum resp_result r = RESP_NEED_MORE;

    resp_reply_init(&p);
    assert_int_equal(reply_parse_copy(&p, in, n), RESP_ERROR);
    assert_non_null(p.error);
    assert_int_equal(reply_parse_copy(&p, in, n), RESP_ERROR); /* sticky */
    resp_reply_init(&p);
    for (size_t k = 0; k <= n && r == RESP_NEED_MORE; k++)
        r = reply_parse_copy(&p, in, k);
    assert_int_equal(r, RESP_ERROR);
    assert_non_null(p.error);
}

static void test_reply_errors(void **state)
{
    expect_reply_error(LIT("x"));
    expect_reply_error(LIT("\r\n"));
    expect_reply_error(LIT("\0"));
    expect_reply_error(LIT("OK\r\n"));
    expect_reply_error(LIT(";3\r\n"));    /* streamed chunk */
    expect_reply_error(LIT(".\r\n"));     /* streamed end */
    expect_reply_error(LIT("$?\r\n"));
    expect_reply_error(LIT("*?\r\n"));
    expect_reply_error(LIT("%?\r\n"));
    expect_reply_error(LIT("~?\r\n"));
    expect_reply_error(LIT("$-2\r\n"));
    expect_reply_error(LIT("*-2\r\n"));
    expect_reply_error(LIT("%-1\r\n"));
    expect_reply_error(LIT("!-1\r\n"));
    expect_reply_error(LIT("$\r\n"));
    expect_reply_error(LIT("$abc\r\n"));
    expect_reply_error(LIT("$03\r\nfoo\r\n"));
    expect_reply_error(LIT("*1 \r\n:1\r\n"));
    expect_reply_error(LIT("+OK\rX"));
    expect_reply_error(LIT("*1\r\n+OK\r\r"));
    expect_reply_error(LIT("$3\r\nfooXY"));
    expect_reply_error(LIT("$3\r\nfoo\rX"));
    expect_reply_error(LIT("*4294967297\r\n"));
    expect_reply_error(LIT("%4294967297\r\n"));
    expect_reply_error(LIT("$9223372036854775807\r\n"));
    expect_reply_error(LIT("*99999999999999999999\r\n"));
    expect_reply_error(LIT("$1111111111111111111111111111111"));
    expect_reply_error(LIT("*2\r\n:1\r\nfoo\r\n"));
}

static void test_reply_huge_counts(void **state)
{
    struct resp_reply_parser p;

    /* 2^32 is the largest count accepted: NEED_MORE, no overflow. */
    resp_reply_init(&p);
    assert_int_equal(reply_parse_copy(&p, LIT("*4294967296\r\n")), RESP_NEED_MORE);
    assert_true(p.owed == 4294967296ull);
    resp_reply_init(&p);
    assert_int_equal(reply_parse_copy(&p, LIT("%4294967296\r\n|4294967296\r\n")), RESP_NEED_MORE);
    assert_true(p.owed == 8589934592ull - 1 + 8589934592ull + 1);
    /* Overflow of owed is refused (white box: pretend it is near the
     * top, after a valid prefix). */
    resp_reply_init(&p);
    assert_int_equal(reply_parse_copy(&p, LIT("*2\r\n")), RESP_NEED_MORE);
    p.owed = UINT64_MAX - 10;
    assert_int_equal(reply_parse_copy(&p, LIT("*2\r\n*4294967296\r\n")), RESP_ERROR);
}

/* ======================================================================== */
/* Tree reader                                                              */

static const char cluster_slots[] =
    "*2\r\n"
    "*4\r\n:0\r\n:5460\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:30001\r\n$40\r\n09dbe9720cda62f7865eabc5fd8857c5d2678366\r\n*0\r\n"
    "*3\r\n$9\r\n127.0.0.1\r\n:30004\r\n$40\r\n821d8ca00d7ccf931ed3ffc7e3db0599d2271abf\r\n"
    "*3\r\n:5461\r\n:10922\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:30002\r\n$40\r\nc9d93d9f2c0c524ff34cc11838c2003d8c29e013\r\n"
    "%1\r\n$8\r\nhostname\r\n$-1\r\n";

static void test_value_cluster_slots(void **state)
{
    const size_t n = sizeof(cluster_slots) - 1;
    char *buf = dup_n(cluster_slots, n);
    struct resp_value v, *r0, *m;
    size_t used = 0;

    assert_int_equal(resp_read_value(buf, n, &v, &used), RESP_OK);
    assert_int_equal(used, n);
    assert_int_equal(v.type, RESP_T_ARRAY);
    assert_int_equal(v.count, 2);
    r0 = &v.elems[0];
    assert_int_equal(r0->count, 4);
    assert_int_equal(r0->elems[0].integer, 0);
    assert_int_equal(r0->elems[1].integer, 5460);
    assert_int_equal(r0->elems[2].type, RESP_T_ARRAY);
    assert_int_equal(r0->elems[2].elems[0].len, 9);
    assert_memory_equal(r0->elems[2].elems[0].str, "127.0.0.1", 9);
    assert_int_equal(r0->elems[2].elems[1].integer, 30001);
    assert_int_equal(r0->elems[2].elems[3].type, RESP_T_ARRAY);
    assert_int_equal(r0->elems[2].elems[3].count, 0);
    assert_int_equal(r0->elems[3].elems[1].integer, 30004);
    m = &v.elems[1].elems[2].elems[3];
    assert_int_equal(m->type, RESP_T_MAP);
    assert_int_equal(m->count, 2);
    assert_memory_equal(m->elems[0].str, "hostname", 8);
    assert_true(m->elems[1].is_null);
    assert_int_equal(m->elems[1].type, RESP_T_BULK);
    resp_value_free(&v);

    /* Every proper prefix is incomplete. */
    for (size_t k = 0; k < n; k++) {
        char *c = dup_n(cluster_slots, k);

        assert_int_equal(resp_read_value(c, k, &v, &used), RESP_NEED_MORE);
        free(c);
    }
    free(buf);
}

static void test_value_map_and_scalars(void **state)
{
    static const char in[] =
        "|1\r\n+ttl\r\n*2\r\n:1\r\n|1\r\n+x\r\n+y\r\n:2\r\n"
        "%3\r\n"
        "+server\r\n$5\r\nredis\r\n"
        "+proto\r\n:3\r\n"
        "+flags\r\n~4\r\n#t\r\n#f\r\n_\r\n,1.5\r\n"
        "EXTRA";
    const size_t n = sizeof(in) - 1 - 5;
    struct resp_value v, *s;
    size_t used;

    assert_int_equal(resp_read_value(in, n + 5, &v, &used), RESP_OK);
    assert_int_equal(used, n);
    assert_int_equal(v.type, RESP_T_MAP);
    assert_int_equal(v.count, 6);
    assert_memory_equal(v.elems[0].str, "server", 6);
    assert_int_equal(v.elems[1].type, RESP_T_BULK);
    assert_memory_equal(v.elems[1].str, "redis", 5);
    assert_int_equal(v.elems[3].integer, 3);
    s = &v.elems[5];
    assert_int_equal(s->type, RESP_T_SET);
    assert_int_equal(s->count, 4);
    assert_int_equal(s->elems[0].type, RESP_T_BOOL);
    assert_int_equal(s->elems[0].integer, 1);
    assert_int_equal(s->elems[1].integer, 0);
    assert_true(s->elems[2].is_null);
    assert_int_equal(s->elems[2].type, RESP_T_NULL);
    assert_int_equal(s->elems[3].type, RESP_T_DOUBLE);
    assert_memory_equal(s->elems[3].str, "1.5", 3);
    resp_value_free(&v);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(resp_read_value(in, k, &v, &used), RESP_NEED_MORE);
}

static void test_value_misc(void **state)
{
    struct resp_value v;
    size_t used;

    assert_int_equal(resp_read_value(LIT("*-1\r\n"), &v, &used), RESP_OK);
    assert_true(v.is_null);
    assert_int_equal(v.type, RESP_T_ARRAY);
    resp_value_free(&v);
    assert_int_equal(resp_read_value(LIT("-ERR no\r\n"), &v, &used), RESP_OK);
    assert_int_equal(v.type, RESP_T_ERROR);
    assert_int_equal(v.len, 6);
    resp_value_free(&v);
    assert_int_equal(resp_read_value(LIT("!3\r\nbad\r\n"), &v, &used), RESP_OK);
    assert_int_equal(v.type, RESP_T_BLOB_ERROR);
    resp_value_free(&v);
    assert_int_equal(resp_read_value(LIT(">2\r\n+a\r\n(12\r\n"), &v, &used), RESP_OK);
    assert_int_equal(v.type, RESP_T_PUSH);
    assert_int_equal(v.elems[1].type, RESP_T_BIGNUM);
    resp_value_free(&v);
    assert_int_equal(resp_read_value(LIT("=7\r\ntxt:abc\r\n"), &v, &used), RESP_OK);
    assert_int_equal(v.type, RESP_T_VERBATIM);
    assert_int_equal(v.len, 7);
    resp_value_free(&v);

    /* Garbage. */
    assert_int_equal(resp_read_value(LIT("x\r\n"), &v, &used), RESP_ERROR);
    assert_int_equal(resp_read_value(LIT(":abc\r\n"), &v, &used), RESP_ERROR);
    assert_int_equal(resp_read_value(LIT("#x\r\n"), &v, &used), RESP_ERROR);
    assert_int_equal(resp_read_value(LIT("$?\r\n"), &v, &used), RESP_ERROR);
    assert_int_equal(resp_read_value(LIT("$3\r\nfooXY"), &v, &used), RESP_ERROR);
    assert_int_equal(resp_read_value(LIT("*2\r\n*1\r\n:1\r\n$-2\r\n"), &v, &used), RESP_ERROR);
    assert_int_equal(resp_read_value(LIT("|1\r\n+a\r\n*1\r\n:x\r\n+OK\r\n"), &v, &used), RESP_ERROR);
    assert_int_equal(resp_read_value(LIT("+OK\rX"), &v, &used), RESP_ERROR);
    /* A huge count with few bytes: incomplete, and nothing allocated
     * for it (ASan would see a calloc of 2^32 elements). */
    assert_int_equal(resp_read_value(LIT("*4294967296\r\n:1\r\n"), &v, &used), RESP_NEED_MORE);
    assert_int_equal(resp_read_value(LIT("*4294967297\r\n:1\r\n"), &v, &used), RESP_ERROR);
    /* Freed on failure in the middle of an attribute. */
    assert_int_equal(resp_read_value(LIT("*2\r\n|1\r\n*1\r\n+a\r\n"), &v, &used), RESP_NEED_MORE);
    resp_value_free(&v); /* harmless on the zeroed result */
}

/* ======================================================================== */
/* Writers                                                                  */

static void expect_buf(struct resp_buf *b, const char *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
    b->len = 0;
}

/* resp_req_need: through the end of the argument being read; before its
 * bytes, what was examined. */
static void test_request_need(void **state)
{
    static const char cmd[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\nab";
    struct resp_req_parser p;
    resp_req_init(&p);
    assert_int_equal(resp_parse_request(&p, cmd, 10), RESP_NEED_MORE); /* in "SET" */
    assert_int_equal(resp_req_need(&p), 8 + 3 + 2);
    assert_int_equal(resp_parse_request(&p, cmd, sizeof cmd - 1), RESP_NEED_MORE);
    size_t payload = sizeof cmd - 1 - 2; /* where "ab" starts */
    assert_int_equal(resp_req_need(&p), payload + 100000 + 2);
    resp_req_free(&p);
    resp_req_init(&p);
    assert_int_equal(resp_parse_request(&p, "*3\r\n$3", 7), RESP_NEED_MORE);
    assert_true(resp_req_need(&p) <= 7);
    resp_req_free(&p);
}

static void test_writers(void **state)
{
    struct resp_buf b = { 0 };
    const char *argv[] = { "SET", "key", "a\r\nb" };
    const size_t lens[] = { 3, 3, 4 };
    char big[1000];
    struct resp_value v;
    size_t used;

    resp_write_simple(&b, "OK");
    expect_buf(&b, LIT("+OK\r\n"));
    resp_write_error(&b, "ERR bad\r\nthing");
    expect_buf(&b, LIT("-ERR bad  thing\r\n"));
    resp_write_integer(&b, -42);
    resp_write_integer(&b, LLONG_MIN);
    expect_buf(&b, LIT(":-42\r\n:-9223372036854775808\r\n"));
    resp_write_bulk(&b, "a\0b", 3);
    resp_write_bulk(&b, "", 0);
    expect_buf(&b, LIT("$3\r\na\0b\r\n$0\r\n\r\n"));
    resp_write_null(&b, 2);
    resp_write_null(&b, 3);
    expect_buf(&b, LIT("$-1\r\n_\r\n"));
    resp_write_array_head(&b, 3);
    resp_write_array_head(&b, -1);
    expect_buf(&b, LIT("*3\r\n*-1\r\n"));
    resp_write_map_head(&b, 2, 2);
    resp_write_map_head(&b, 3, 2);
    expect_buf(&b, LIT("*4\r\n%2\r\n"));
    resp_write_command(&b, 3, argv, lens);
    expect_buf(&b, LIT("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\na\r\nb\r\n"));
    resp_write_command(&b, 2, argv, NULL);
    expect_buf(&b, LIT("*2\r\n$3\r\nSET\r\n$3\r\nkey\r\n"));

    /* Growth across many appends, and a round trip through both parsers. */
    memset(big, 'q', sizeof(big));
    for (int i = 0; i < 100; i++)
        resp_write_bulk(&b, big, sizeof(big));
    assert_int_equal(b.len, 100 * (sizeof(big) + 9));
    b.len = 0;
    resp_write_map_head(&b, 3, 1);
    resp_write_simple(&b, "k");
    resp_write_command(&b, 3, argv, lens);
    assert_int_equal(resp_read_value(b.data, b.len, &v, &used), RESP_OK);
    assert_int_equal(used, b.len);
    assert_int_equal(v.elems[1].count, 3);
    assert_memory_equal(v.elems[1].elems[2].str, "a\r\nb", 4);
    resp_value_free(&v);
    {
        struct resp_req_parser p;
        size_t off = 8; /* skip "%1\r\n+k\r\n" */

        resp_req_init(&p);
        assert_int_equal(resp_parse_request(&p, b.data + off, b.len - off), RESP_OK);
        assert_int_equal(p.argc, 3);
        assert_memory_equal(resp_req_arg(&p, b.data + off, 2), "a\r\nb", 4);
        resp_req_free(&p);
    }
    resp_buf_free(&b);
    assert_null(b.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string2ll),
        cmocka_unit_test(test_req_multibulk_splits),
        cmocka_unit_test(test_req_pipeline),
        cmocka_unit_test(test_req_moved_buffer),
        cmocka_unit_test(test_req_multibulk_errors),
        cmocka_unit_test(test_req_header_limit_boundary),
        cmocka_unit_test(test_req_max_bulk),
        cmocka_unit_test(test_req_query_limit),
        cmocka_unit_test(test_req_untrusted_count),
        cmocka_unit_test(test_req_inline_splits),
        cmocka_unit_test(test_req_inline_errors),
        cmocka_unit_test(test_req_nul_hides_terminator),
        cmocka_unit_test(test_req_million_args),
        cmocka_unit_test(test_req_big_bulk_resume),
        cmocka_unit_test(test_req_long_lines_bytewise),
        cmocka_unit_test(test_reply_types_and_splits),
        cmocka_unit_test(test_reply_pipeline),
        cmocka_unit_test(test_reply_deep_nesting),
        cmocka_unit_test(test_reply_big_bulk_bytewise),
        cmocka_unit_test(test_reply_errors),
        cmocka_unit_test(test_reply_huge_counts),
        cmocka_unit_test(test_value_cluster_slots),
        cmocka_unit_test(test_value_map_and_scalars),
        cmocka_unit_test(test_value_misc),
        cmocka_unit_test(test_writers),
        cmocka_unit_test(test_request_need),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
