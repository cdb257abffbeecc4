/*
 * fuzz_request.c — libFuzzer target for the client command parser
 * (resp_parse_request), with an oracle: a transcription of Redis 7.0's
 * own parser (networking.c processInlineBuffer / processMultibulkBuffer,
 * sds.c sdssplitargs) run over a NUL-terminated copy of the input, as
 * Redis's query buffer is.
 *
 *   input ─┬─► ringslot parser, whole ─────────┐
 *          ├─► ringslot parser, fed in pieces ─┼─ same commands, same
 *          └─► Redis 7.0's parser (reference) ─┘  error text, same leftover
 *
 *   every accepted command ─► resp_write_command ─► parses back to the same
 *   arguments; a multibulk command re-encodes to its own bytes except where
 *   Redis does not look (the byte after a header's '\r', the two bytes
 *   after an argument)
 *
 *   arguments made from the input ─► encoded (multibulk, and inline when
 *   they allow it) ─► must be accepted with the same arguments: a parser
 *   that rejects everything fails here
 *
 * So what the parser accepts, Redis accepts (same arguments) and what it
 * rejects, Redis rejects with the same text. Excluded on purpose: Redis
 * closes a client past client-query-buffer-limit without a reply, ringslot
 * replies first (see resp/request.c); the limit is 1 GB here, so inputs
 * never reach it. An input starting with 0xFF gets 70000 copies of its
 * last byte in the middle, so the "too big" paths are reached without
 * huge corpus files.
 *
 * Build and run: `make fuzz` (FUZZ_SECONDS=…), or
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=gnu11 \
 *       -D_GNU_SOURCE test/fuzz/fuzz_request.c resp/[a-z]*.c -o build/fuzz/fuzz_request
 *   build/fuzz/fuzz_request -max_total_time=30 test/fuzz/corpus/request
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../resp/resp.h"
#include "check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CMDS 512
#define AMPLIFY 70000 /* past PROTO_INLINE_MAX_SIZE */


/* ------------------------------------------------------------------------ */
/* What a parse produced                                                     */

struct arg {
    char *s;
    size_t n;
};

struct cmd {
    struct arg *argv;
    size_t argc;
};

struct outcome {
    struct cmd cmds[MAX_CMDS]; /* commands with argc > 0 */
    size_t ncmds;
    bool error;                /* else: the rest is incomplete (or empty) */
    char errtext[128];
    size_t consumed;           /* bytes of complete commands */
};

static void add_cmd(struct outcome *o, size_t argc, const char *const *s, const size_t *n)
{
    if (o->ncmds == MAX_CMDS)
        return;
    struct cmd *c = &o->cmds[o->ncmds++];
    c->argc = argc;
    c->argv = calloc(argc ? argc : 1, sizeof *c->argv);
    for (size_t i = 0; i < argc; i++) {
        c->argv[i].s = malloc(n[i] ? n[i] : 1);
        memcpy(c->argv[i].s, s[i], n[i]);
        c->argv[i].n = n[i];
    }
}

static void outcome_free(struct outcome *o)
{
    for (size_t i = 0; i < o->ncmds; i++) {
        for (size_t j = 0; j < o->cmds[i].argc; j++)
            free(o->cmds[i].argv[j].s);
        free(o->cmds[i].argv);
    }
    o->ncmds = 0;
}

static bool same_cmd(const struct cmd *a, const struct cmd *b)
{
    if (a->argc != b->argc)
        return false;
    for (size_t i = 0; i < a->argc; i++)
        if (a->argv[i].n != b->argv[i].n || memcmp(a->argv[i].s, b->argv[i].s, a->argv[i].n))
            return false;
    return true;
}

static void same_outcome(const struct outcome *a, const struct outcome *b, const char *what)
{
    CHECK(a->ncmds == b->ncmds, "%s: %zu vs %zu commands", what, a->ncmds, b->ncmds);
    for (size_t i = 0; i < a->ncmds; i++)
        CHECK(same_cmd(&a->cmds[i], &b->cmds[i]), "%s: command %zu differs", what, i);
    CHECK(a->error == b->error, "%s: error %d vs %d (%s | %s)", what, a->error, b->error,
          a->errtext, b->errtext);
    CHECK(!a->error || strcmp(a->errtext, b->errtext) == 0, "%s: '%s' vs '%s'", what,
          a->errtext, b->errtext);
    CHECK(a->consumed == b->consumed, "%s: consumed %zu vs %zu", what, a->consumed,
          b->consumed);
}

/* ------------------------------------------------------------------------ */
/* ringslot's parser                                                         */

static void record(struct outcome *o, struct resp_req_parser *p, const char *cmd)
{
    if (p->argc == 0)
        return;
    const char **s = malloc(p->argc * sizeof *s);
    size_t *n = malloc(p->argc * sizeof *n);
    for (size_t i = 0; i < p->argc; i++) {
        s[i] = resp_req_arg(p, cmd, i);
        n[i] = p->argv[i].len;
    }
    add_cmd(o, p->argc, s, n);
    free(s);
    free(n);
}

/* Parse buf the way client.c does, the bytes arriving `step(i)` at a time
 * (0 = all at once): each call sees the command's start and every byte so
 * far. */
static void ringslot_parse(const char *buf, size_t len, const uint8_t *steps, size_t nsteps,
                           long long max_bulk, struct outcome *o)
{
    struct resp_req_parser p;
    resp_req_init(&p);
    p.max_bulk = max_bulk;
    size_t start = 0, have = nsteps ? 0 : len, k = 0;
    memset(o, 0, sizeof *o);
    for (;;) {
        enum resp_result r = resp_parse_request(&p, buf + start, have - start);
        if (r == RESP_OK) {
            record(o, &p, buf + start);
            start += p.len;
            resp_req_next(&p);
            continue;
        }
        if (r == RESP_ERROR) {
            o->error = true;
            snprintf(o->errtext, sizeof o->errtext, "%s", p.error);
            break;
        }
        if (have == len)
            break;
        size_t add = 1 + steps[k++ % nsteps] % (len > 4096 ? 8192 : 64);
        have = have + add < len ? have + add : len;
    }
    o->consumed = start;
    resp_req_free(&p);
}

/* ------------------------------------------------------------------------ */
/* Redis 7.0's parser (reference)                                            */

#define PROTO_INLINE_MAX_SIZE (1024 * 64)

static bool ref_isspace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool ref_ishex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int ref_hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* sdssplitargs(), over a NUL-terminated line. Returns false on
 * unbalanced quotes. Args are appended to (s, n) with storage in out. */
static bool ref_splitargs(const char *p, char *out, const char **s, size_t *n, size_t *argc)
{
    size_t o = 0;
    *argc = 0;
    for (;;) {
        while (*p && ref_isspace(*p))
            p++;
        if (!*p)
            return true;
        int inq = 0, insq = 0, done = 0;
        size_t start = o;
        while (!done) {
            if (inq) {
                if (*p == '\\' && p[1] == 'x' && ref_ishex(p[2]) && ref_ishex(p[3])) {
                    out[o++] = (char)(ref_hexval(p[2]) * 16 + ref_hexval(p[3]));
                    p += 3;
                } else if (*p == '\\' && p[1]) {
                    p++;
                    char c;
                    switch (*p) {
                    case 'n': c = '\n'; break;
                    case 'r': c = '\r'; break;
                    case 't': c = '\t'; break;
                    case 'b': c = '\b'; break;
                    case 'a': c = '\a'; break;
                    default: c = *p; break;
                    }
                    out[o++] = c;
                } else if (*p == '"') {
                    if (p[1] && !ref_isspace(p[1]))
                        return false;
                    done = 1;
                } else if (!*p) {
                    return false;
                } else {
                    out[o++] = *p;
                }
            } else if (insq) {
                if (*p == '\\' && p[1] == '\'') {
                    p++;
                    out[o++] = '\'';
                } else if (*p == '\'') {
                    if (p[1] && !ref_isspace(p[1]))
                        return false;
                    done = 1;
                } else if (!*p) {
                    return false;
                } else {
                    out[o++] = *p;
                }
            } else {
                switch (*p) {
                case ' ': case '\n': case '\r': case '\t': case '\0':
                    done = 1;
                    break;
                case '"':
                    inq = 1;
                    break;
                case '\'':
                    insq = 1;
                    break;
                default:
                    out[o++] = *p;
                    break;
                }
            }
            if (*p)
                p++;
        }
        s[*argc] = out + start;
        n[*argc] = o - start;
        (*argc)++;
    }
}

/* string2ll() as Redis has it (util.c). */
static bool ref_string2ll(const char *s, size_t slen, long long *value)
{
    const char *p = s;
    size_t plen = 0;
    int negative = 0;
    unsigned long long v;
    if (plen == slen || slen >= 21)
        return false;
    if (slen == 1 && p[0] == '0') {
        *value = 0;
        return true;
    }
    if (p[0] == '-') {
        negative = 1;
        p++;
        plen++;
        if (plen == slen)
            return false;
    }
    if (p[0] >= '1' && p[0] <= '9') {
        v = (unsigned long long)(p[0] - '0');
        p++;
        plen++;
    } else {
        return false;
    }
    while (plen < slen && p[0] >= '0' && p[0] <= '9') {
        if (v > (ULLONG_MAX / 10))
            return false;
        v *= 10;
        if (v > (ULLONG_MAX - (unsigned long long)(p[0] - '0')))
            return false;
        v += (unsigned long long)(p[0] - '0');
        p++;
        plen++;
    }
    if (plen < slen)
        return false;
    if (negative) {
        if (v > ((unsigned long long)(-(LLONG_MIN + 1)) + 1))
            return false;
        *value = -(long long)v;
    } else {
        if (v > LLONG_MAX)
            return false;
        *value = (long long)v;
    }
    return true;
}

struct ref {
    const char *q;     /* NUL-terminated query buffer */
    size_t len, pos;   /* sdslen(querybuf), qb_pos */
    long long max_bulk;
    struct outcome *o;
    char *scratch;     /* inline decoding */
    const char **s;
    size_t *n;
};

enum ref_res { REF_OK, REF_MORE, REF_ERR };

static enum ref_res ref_error(struct ref *r, const char *text)
{
    r->o->error = true;
    snprintf(r->o->errtext, sizeof r->o->errtext, "ERR Protocol error: %s", text);
    return REF_ERR;
}

static enum ref_res ref_inline(struct ref *r)
{
    const char *start = r->q + r->pos;
    const char *newline = strchr(start, '\n');
    if (!newline) {
        if (r->len - r->pos > PROTO_INLINE_MAX_SIZE)
            return ref_error(r, "too big inline request");
        return REF_MORE;
    }
    size_t linefeed = 1;
    if (newline != start && newline[-1] == '\r') {
        newline--;
        linefeed++;
    }
    size_t querylen = (size_t)(newline - start);
    char *aux = malloc(querylen + 1);
    memcpy(aux, start, querylen);
    aux[querylen] = '\0';
    size_t argc;
    bool ok = ref_splitargs(aux, r->scratch, r->s, r->n, &argc);
    free(aux);
    if (!ok)
        return ref_error(r, "unbalanced quotes in request");
    r->pos += querylen + linefeed;
    if (argc)
        add_cmd(r->o, argc, r->s, r->n);
    return REF_OK;
}

static enum ref_res ref_multibulk(struct ref *r)
{
    const char *newline = strchr(r->q + r->pos, '\r');
    long long ll;
    if (!newline) {
        if (r->len - r->pos > PROTO_INLINE_MAX_SIZE)
            return ref_error(r, "too big mbulk count string");
        return REF_MORE;
    }
    if (newline - (r->q + r->pos) > (ssize_t)(r->len - r->pos - 2))
        return REF_MORE;
    if (!ref_string2ll(r->q + 1 + r->pos, (size_t)(newline - (r->q + 1 + r->pos)), &ll) ||
        ll > INT_MAX)
        return ref_error(r, "invalid multibulk length");
    size_t pos = (size_t)(newline - r->q) + 2;
    if (ll <= 0) {
        r->pos = pos;
        return REF_OK;
    }
    long long multibulklen = ll;
    size_t argc = 0;
    while (multibulklen) {
        newline = strchr(r->q + pos, '\r');
        if (!newline) {
            if (r->len - pos > PROTO_INLINE_MAX_SIZE)
                return ref_error(r, "too big bulk count string");
            return REF_MORE;
        }
        if (newline - (r->q + pos) > (ssize_t)(r->len - pos - 2))
            return REF_MORE;
        if (r->q[pos] != '$') {
            r->o->error = true;
            snprintf(r->o->errtext, sizeof r->o->errtext,
                     "ERR Protocol error: expected '$', got '%c'", r->q[pos]);
            return REF_ERR;
        }
        if (!ref_string2ll(r->q + pos + 1, (size_t)(newline - (r->q + pos + 1)), &ll) ||
            ll < 0 || ll > r->max_bulk)
            return ref_error(r, "invalid bulk length");
        pos = (size_t)(newline - r->q) + 2;
        if (r->len - pos < (size_t)(ll + 2))
            return REF_MORE;
        r->s[argc] = r->q + pos;
        r->n[argc++] = (size_t)ll;
        pos += (size_t)ll + 2;
        multibulklen--;
    }
    r->pos = pos;
    add_cmd(r->o, argc, r->s, r->n);
    return REF_OK;
}

/* processInputBuffer(): commands until an error or an incomplete one. */
static void redis_parse(const char *buf, size_t len, long long max_bulk, struct outcome *o)
{
    char *q = malloc(len + 1);
    memcpy(q, buf, len);
    q[len] = '\0';
    struct ref r = {.q = q, .len = len, .max_bulk = max_bulk, .o = o};
    r.scratch = malloc(len + 1);
    r.s = malloc((len + 1) * sizeof *r.s);
    r.n = malloc((len + 1) * sizeof *r.n);
    memset(o, 0, sizeof *o);
    while (r.pos < len) {
        enum ref_res res = q[r.pos] == '*' ? ref_multibulk(&r) : ref_inline(&r);
        if (res != REF_OK)
            break;
    }
    o->consumed = r.pos;
    free(q);
    free(r.scratch);
    free(r.s);
    free(r.n);
}

/* ------------------------------------------------------------------------ */
/* Round trips                                                               */

/* Re-encode every command ringslot accepted from buf: it parses back the
 * same; a multibulk one matches its own bytes where Redis looks. */
static void round_trip(const char *buf, size_t len)
{
    struct resp_req_parser p;
    resp_req_init(&p);
    size_t off = 0;
    while (off < len && resp_parse_request(&p, buf + off, len - off) == RESP_OK) {
        size_t argc = p.argc;
        const char **s = malloc((argc + 1) * sizeof *s);
        size_t *n = malloc((argc + 1) * sizeof *n);
        for (size_t i = 0; i < argc; i++) {
            s[i] = resp_req_arg(&p, buf + off, i);
            n[i] = p.argv[i].len;
        }
        struct resp_buf enc = {0};
        resp_write_command(&enc, (int)argc, s, n);
        if (argc > 0 && !p.is_inline) {
            CHECK(enc.len == p.len, "multibulk re-encodes to %zu bytes, was %zu", enc.len, p.len);
            /* where they may differ: '\n' after a header's '\r', the CRLF
             * after an argument (Redis skips them unseen) */
            for (size_t i = 0; i < enc.len; i++)
                CHECK(enc.data[i] == buf[off + i] || enc.data[i] == '\n' ||
                      (enc.data[i] == '\r' && i + 1 < enc.len && enc.data[i + 1] == '\n'),
                      "byte %zu differs", i);
        }
        if (argc > 0) {
            struct resp_req_parser q;
            resp_req_init(&q);
            CHECK(resp_parse_request(&q, enc.data, enc.len) == RESP_OK, "re-encoding refused");
            CHECK(q.len == enc.len && q.argc == argc, "re-encoding parses differently");
            for (size_t i = 0; i < argc; i++)
                CHECK(q.argv[i].len == n[i] && !memcmp(enc.data + q.argv[i].off, s[i], n[i]),
                      "argument %zu differs after a round trip", i);
            resp_req_free(&q);
        }
        resp_buf_free(&enc);
        free(s);
        free(n);
        off += p.len;
        resp_req_next(&p);
    }
    resp_req_free(&p);
}

/* Arguments taken from the input: encoded as multibulk (and inline when no
 * byte needs quoting) they must be accepted as they are. */
static void generated(const uint8_t *data, size_t size)
{
    const char *s[8];
    size_t n[8], argc = 0, off = 1;
    bool inline_ok = true;
    while (argc < 8 && off < size) {
        size_t len = data[off - 1] % 24;
        if (len > size - off)
            len = size - off;
        s[argc] = (const char *)data + off;
        n[argc] = len;
        for (size_t i = 0; i < len; i++) {
            char c = s[argc][i];
            inline_ok = inline_ok && c > ' ' && c < 127 && c != '"' && c != '\'';
        }
        inline_ok = inline_ok && len > 0;
        argc++;
        off += len + 1;
    }
    if (argc == 0)
        return;
    struct resp_buf mb = {0}, in = {0};
    resp_write_command(&mb, (int)argc, s, n);
    for (size_t i = 0; i < argc; i++) {
        if (i)
            resp_buf_append(&in, " ", 1);
        resp_buf_append(&in, s[i], n[i]);
    }
    resp_buf_append(&in, "\r\n", 2);
    struct outcome o;
    struct cmd want = {.argc = argc, .argv = calloc(argc, sizeof(struct arg))};
    for (size_t i = 0; i < argc; i++)
        want.argv[i] = (struct arg){(char *)s[i], n[i]};
    ringslot_parse(mb.data, mb.len, NULL, 0, RESP_DEFAULT_MAX_BULK, &o);
    CHECK(o.ncmds == 1 && !o.error && o.consumed == mb.len && same_cmd(&o.cmds[0], &want),
          "a well-formed multibulk command was not accepted as is");
    outcome_free(&o);
    if (inline_ok && in.data[0] != '*') {
        ringslot_parse(in.data, in.len, NULL, 0, RESP_DEFAULT_MAX_BULK, &o);
        CHECK(o.ncmds == 1 && !o.error && same_cmd(&o.cmds[0], &want),
              "a plain inline command was not accepted as is");
        outcome_free(&o);
    }
    free(want.argv);
    resp_buf_free(&mb);
    resp_buf_free(&in);
}

/* ------------------------------------------------------------------------ */

static void compare(const char *buf, size_t len, const uint8_t *steps, size_t nsteps,
                    long long max_bulk)
{
    static struct outcome whole, pieces, redis;
    ringslot_parse(buf, len, NULL, 0, max_bulk, &whole);
    ringslot_parse(buf, len, steps, nsteps, max_bulk, &pieces);
    redis_parse(buf, len, max_bulk, &redis);
    same_outcome(&whole, &redis, "ringslot vs Redis");
    if (pieces.error && strstr(pieces.errtext, "too big")) {
        /* A line past 64 KB whose end comes later: fed in pieces, the
         * parser (like Redis reading packets) gives up before seeing the
         * end; whole, it may not. Everything before must agree. */
        CHECK(whole.ncmds >= pieces.ncmds, "in pieces: more commands before 'too big'");
        for (size_t i = 0; i < pieces.ncmds; i++)
            CHECK(same_cmd(&whole.cmds[i], &pieces.cmds[i]), "command %zu differs", i);
    } else {
        same_outcome(&whole, &pieces, "whole vs in pieces");
    }
    outcome_free(&whole);
    outcome_free(&pieces);
    outcome_free(&redis);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t len = size;
    char *big = NULL;
    if (size >= 3 && data[0] == 0xFF) {
        /* rest + its last byte × AMPLIFY + rest: a line longer than 64 KB,
         * with or without an end, in few commands */
        size_t n = size - 2;
        char fill = (char)data[size - 1];
        big = malloc(AMPLIFY + 2 * n);
        memcpy(big, data + 1, n);
        memset(big + n, fill == '\r' || fill == '\n' ? 'x' : fill, AMPLIFY);
        memcpy(big + n + AMPLIFY, data + 1, n);
        len = AMPLIFY + 2 * n;
        buf = big;
    }
    compare(buf, len, data, size ? size : 1, RESP_DEFAULT_MAX_BULK);
    if (big) { /* the big-buffer paths only: the rest is covered unamplified */
        free(big);
        return 0;
    }
    compare(buf, len, data, size ? size : 1, size ? data[size - 1] % 32 : 0);
    round_trip(buf, len);
    generated(data, size);
    return 0;
}
