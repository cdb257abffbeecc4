/*
 * fuzz_reply.c — libFuzzer target for the backend reply parser
 * (resp_parse_reply, the framer on every link) and the tree reader
 * (resp_read_value, the control thread's), against each other.
 *
 *   input ─┬─► framer, whole ──────────┐ same boundaries, same type byte,
 *          ├─► framer, fed in pieces ──┘ error at the same reply
 *          └─► for each framed reply: the tree reader
 *                 accepts ⇒ same length, and the tree re-encodes to the
 *                 very bytes (when no attribute was dropped)
 *                 rejects ⇒ only for what the framer does not validate
 *                 (the text of ':' '#' '_' lines), never a framing matter
 *
 *   a reply generated from the input (every RESP2/RESP3 type, attributes,
 *   nesting; or 0xFE: an array nested up to 10^5 deep) ─► the framer
 *   frames it whole, with its type byte; the reader re-encodes it (minus
 *   attributes) to the same bytes: a parser that rejects everything fails
 *
 * Redis itself never parses replies, so "what it rejects, Redis rejects"
 * is read here as: what the framer rejects, the reader rejects too.
 *
 * Build and run: `make fuzz`, or
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 \
 *       -D_GNU_SOURCE test/fuzz/fuzz_reply.c resp/[a-z]*.c -o build/fuzz/fuzz_reply
 *   build/fuzz/fuzz_reply -max_total_time=30 test/fuzz/corpus/reply
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../resp/resp.h"
#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_REPLIES 256
#define MAX_DEPTH 6


/* ------------------------------------------------------------------------ */
/* Framing                                                                   */

struct framed {
    size_t n;
    size_t len[MAX_REPLIES], first_off[MAX_REPLIES];
    char first[MAX_REPLIES];
    size_t total;          /* replies framed (the first MAX_REPLIES recorded) */
    size_t end;            /* where framing stopped */
    enum resp_result last; /* RESP_NEED_MORE (incomplete or empty) or RESP_ERROR */
};

/* Frame every reply in buf, the bytes arriving in pieces of 1..64 taken
 * from steps (none: all at once). */
static void frame(const char *buf, size_t len, const uint8_t *steps, size_t nsteps,
                  struct framed *f)
{
    struct resp_reply_parser p;
    size_t start = 0, have = nsteps ? 0 : len, k = 0;
    resp_reply_init(&p);
    f->n = f->total = 0;
    for (;;) {
        enum resp_result r = resp_parse_reply(&p, buf + start, have - start);
        if (r == RESP_OK) {
            if (f->n < MAX_REPLIES) {
                f->len[f->n] = p.len;
                f->first[f->n] = p.first;
                f->first_off[f->n] = p.first_off;
                f->n++;
            }
            f->total++;
            start += p.len;
            resp_reply_next(&p);
            continue;
        }
        if (r == RESP_ERROR || have == len) {
            f->last = r;
            f->end = start;
            return;
        }
        size_t add = 1 + steps[k++ % nsteps] % 64;
        have = have + add < len ? have + add : len;
    }
}

static void same_framing(const struct framed *a, const struct framed *b)
{
    CHECK(a->total == b->total && a->end == b->end && a->last == b->last, "%zu/%d vs %zu/%d",
          a->total, a->last, b->total, b->last);
    for (size_t i = 0; i < a->n; i++)
        CHECK(a->len[i] == b->len[i] && a->first[i] == b->first[i] &&
              a->first_off[i] == b->first_off[i], "reply %zu framed differently", i);
}

/* ------------------------------------------------------------------------ */
/* Re-encoding a tree                                                        */

static void line(struct resp_buf *b, char t, const char *s, size_t n)
{
    resp_buf_append(b, &t, 1);
    resp_buf_append(b, s, n);
    resp_buf_append(b, "\r\n", 2);
}

static void number(struct resp_buf *b, char t, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    line(b, t, tmp, (size_t)n);
}

/* The wire form of v (attributes were dropped by the reader). Recursive:
 * trees from inputs of a few KB are shallow enough. */
static void encode(struct resp_buf *b, const struct resp_value *v)
{
    char t = (char)v->type;
    switch (t) {
    case '$': case '!': case '=':
        if (v->is_null) {
            line(b, t, "-1", 2);
            return;
        }
        number(b, t, (long long)v->len);
        resp_buf_append(b, v->str, v->len);
        resp_buf_append(b, "\r\n", 2);
        return;
    case '*': case '~': case '>': case '%':
        if (v->is_null) {
            line(b, t, "-1", 2);
            return;
        }
        number(b, t, (long long)(t == '%' ? v->count / 2 : v->count));
        for (size_t i = 0; i < v->count; i++)
            encode(b, &v->elems[i]);
        return;
    case ':':
        number(b, t, v->integer);
        return;
    case '#':
        line(b, t, v->integer ? "t" : "f", 1);
        return;
    case '_':
        line(b, t, "", 0);
        return;
    default: /* + - , ( */
        line(b, t, v->str, v->len);
        return;
    }
}

/* Does the reply hold a line that only the reader checks (":x", "#x",
 * "_x")? Then the reader may refuse what the framer framed. */
static bool reader_may_refuse(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || s[i - 1] == '\n') && (s[i] == ':' || s[i] == '#' || s[i] == '_'))
            return true;
    return false;
}

/* One framed reply through the reader. */
static void read_back(const char *s, size_t n)
{
    struct resp_value v;
    size_t used = 0;
    enum resp_result r = resp_read_value(s, n, &v, &used);
    if (r != RESP_OK) {
        CHECK(r == RESP_ERROR && reader_may_refuse(s, n),
              "the reader says %d for a reply the framer framed", r);
        return;
    }
    CHECK(used == n, "reader used %zu of %zu bytes", used, n);
    if (!memchr(s, '|', n)) {
        struct resp_buf b = {0};
        encode(&b, &v);
        CHECK(b.len == n && memcmp(b.data, s, n) == 0, "re-encoding differs");
        resp_buf_free(&b);
    }
    resp_value_free(&v);
}

/* ------------------------------------------------------------------------ */
/* Generated replies                                                         */

struct src {
    const uint8_t *p;
    size_t n, i;
};

static uint8_t next(struct src *s)
{
    return s->i < s->n ? s->p[s->i++] : 0;
}

/* Bytes from the input for a string; no CR or LF where a line holds it. */
static void text(struct src *s, struct resp_buf *b, size_t len, bool in_line)
{
    for (size_t i = 0; i < len; i++) {
        char c = (char)next(s);
        if (in_line && (c == '\r' || c == '\n'))
            c = ' ';
        resp_buf_append(b, &c, 1);
    }
}

/* Append one generated value to wire (and, attributes left out, to
 * plain). Returns its type byte. */
static char gen(struct src *s, struct resp_buf *wire, struct resp_buf *plain, int depth)
{
    static const char types[] = "+-:$*%~>_#,(!=|";
    char t = types[next(s) % (sizeof types - 1)];
    if (depth >= MAX_DEPTH && (t == '*' || t == '%' || t == '~' || t == '>' || t == '|'))
        t = ':';
    struct resp_buf one = {0};
    size_t n = next(s) % 6;
    switch (t) {
    case '*': case '~': case '>': case '%':
        number(&one, t, (long long)n);
        resp_buf_append(wire, one.data, one.len);
        resp_buf_append(plain, one.data, one.len);
        for (size_t i = 0; i < (t == '%' ? 2 * n : n); i++)
            gen(s, wire, plain, depth + 1);
        break;
    case '|': { /* attributes travel on the wire only */
        struct resp_buf skip = {0};
        number(wire, '|', (long long)n);
        for (size_t i = 0; i < 2 * n; i++)
            gen(s, wire, &skip, depth + 1);
        resp_buf_free(&skip);
        resp_buf_free(&one);
        return gen(s, wire, plain, depth + 1);
    }
    case '$': case '!': case '=':
        if (t == '$' && n == 5) {
            line(&one, '$', "-1", 2);
        } else {
            n = next(s) % 40 + (t == '=' ? 4 : 0);
            number(&one, t, (long long)n);
            if (t == '=') {
                resp_buf_append(&one, "txt:", 4);
                n -= 4;
            }
            text(s, &one, n, false);
            resp_buf_append(&one, "\r\n", 2);
        }
        break;
    case ':': { /* any 64-bit value, LLONG_MIN and LLONG_MAX included */
        uint64_t u = (uint64_t)next(s) << 56 | (uint64_t)next(s) << 8 | next(s);
        number(&one, t, (long long)(u - (n == 3 ? 1ull << 62 : 0)));
        break;
    }
    case '#':
        line(&one, t, n & 1 ? "t" : "f", 1);
        break;
    case '_':
        line(&one, t, "", 0);
        break;
    case ',':
        line(&one, t, n & 1 ? "3.14" : "-inf", n & 1 ? 4 : 4);
        break;
    case '(':
        line(&one, t, "3492890328409238509324850943850943825024385", 43);
        break;
    default: { /* + - */
        struct resp_buf s1 = {0};
        text(s, &s1, next(s) % 30, true);
        line(&one, t, s1.data ? s1.data : "", s1.len);
        resp_buf_free(&s1);
    }
    }
    if (t != '*' && t != '~' && t != '>' && t != '%') {
        resp_buf_append(wire, one.data, one.len);
        resp_buf_append(plain, one.data, one.len);
    }
    resp_buf_free(&one);
    return t;
}

static void check_generated(const char *wire, size_t wlen, const char *plain, size_t plen,
                            char type, const uint8_t *steps, size_t nsteps)
{
    struct framed whole, pieces;
    frame(wire, wlen, NULL, 0, &whole);
    CHECK(whole.total == 1 && whole.len[0] == wlen && whole.first[0] == type,
          "a well-formed reply (%zu bytes, '%c') was not framed as one", wlen, type);
    frame(wire, wlen, steps, nsteps, &pieces);
    same_framing(&whole, &pieces);
    struct resp_value v;
    size_t used;
    CHECK(resp_read_value(wire, wlen, &v, &used) == RESP_OK && used == wlen,
          "the reader refused a well-formed reply");
    struct resp_buf b = {0};
    encode(&b, &v);
    CHECK(b.len == plen && memcmp(b.data, plain, plen) == 0, "re-encoding differs");
    resp_buf_free(&b);
    resp_value_free(&v);
}

/* 0xFE: an array nested `depth` deep around one integer (up to 2000, or
 * 10^5 for exactly 0xFE 0xFF 0xFF, which the seed corpus has: deep ones
 * are slow to fuzz). */
static void check_deep(const uint8_t *data, size_t size)
{
    size_t sel = (size_t)data[1] << 8 | data[2];
    size_t depth = sel == 0xFFFF && size == 3 ? 100000 : sel % 2000 + 1;
    struct resp_buf b = {0};
    for (size_t i = 0; i < depth; i++)
        resp_buf_append(&b, "*1\r\n", 4);
    resp_buf_append(&b, ":1\r\n", 4);
    struct framed f;
    frame(b.data, b.len, data, size, &f);
    CHECK(f.total == 1 && f.len[0] == b.len && f.first[0] == '*', "deep reply framed wrong");
    struct resp_value v;
    size_t used;
    CHECK(resp_read_value(b.data, b.len, &v, &used) == RESP_OK && used == b.len,
          "deep reply refused by the reader");
    resp_value_free(&v);
    resp_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct framed whole, pieces;
    const char *buf = (const char *)data;
    if (size >= 3 && data[0] == 0xFE) {
        check_deep(data, size);
        return 0;
    }
    frame(buf, size, NULL, 0, &whole);
    frame(buf, size, data, size ? size : 1, &pieces);
    same_framing(&whole, &pieces);
    size_t off = 0;
    for (size_t i = 0; i < whole.n; i++) {
        read_back(buf + off, whole.len[i]);
        off += whole.len[i];
    }
    if (whole.last == RESP_ERROR) { /* what the framer refuses, the reader does too */
        struct resp_value v;
        size_t used;
        CHECK(resp_read_value(buf + whole.end, size - whole.end, &v, &used) != RESP_OK,
              "the reader accepts a reply the framer refused");
    }
    struct src s = {data, size, 0};
    struct resp_buf wire = {0}, plain = {0};
    char type = gen(&s, &wire, &plain, 0);
    check_generated(wire.data, wire.len, plain.data, plain.len, type, data, size ? size : 1);
    resp_buf_free(&wire);
    resp_buf_free(&plain);
    return 0;
}
