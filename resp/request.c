/*
 * resp/request.c — the client command parser. It accepts and rejects
 * exactly what Redis 7.0's processInlineBuffer() / processMultibulkBuffer()
 * (networking.c) accept and reject, with the same error texts, so a client
 * cannot tell the proxy's parser from the server's.
 *
 *   START --'*'--> COUNT --"*<n>\r?"--+--n <= 0--> OK, argc 0
 *     |                               |
 *     |                               v
 *     |                      +--> BULK_HEAD --"$<len>\r?"--> BULK_DATA
 *     |                      |                                   |
 *     |                      +------ arguments left <------------+
 *     |                                                          |
 *     |                                        last argument --> OK
 *     +--other--> INLINE --'\n'--> split like sdssplitargs() --> OK
 *
 * Resuming: `pos` is where the next call continues (the '\r' scan of a
 * header line resumes there; in BULK_DATA it is where the argument's bytes
 * start and only the byte count is compared), so no byte is looked at twice
 * and a 32 MB argument arriving in 16 KB pieces costs O(total).
 *
 * Redis quirks kept on purpose (each is observable by a client):
 *  - A header line ends at the first '\r'; the byte after it must exist but
 *    is never checked. The two bytes after an argument are skipped unseen.
 *  - Redis searches its NUL-terminated query buffer with strchr(), so a NUL
 *    byte before the '\n' (inline) or '\r' (header) hides the terminator for
 *    good: the command never completes and, past RESP_INLINE_MAX bytes, gets
 *    the "too big" error. We stop our scans at a NUL for the same result.
 *  - An empty inline line, a line of blanks, or "*<n>" with n <= 0 is an
 *    empty command (argc 0) that is consumed and skipped.
 *
 * Our own choice: Redis closes a client whose query buffer passes
 * client-query-buffer-limit without replying. We fail the command instead,
 * with "ERR Protocol error: client query buffer limit exceeded", as soon as
 * more than max_query bytes of one command have been seen, so the caller can
 * reply before closing. The limit is also capped at UINT32_MAX because argv
 * offsets are 32-bit.
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define PFX "ERR Protocol error: "
static const char E_BIG_INLINE[] = PFX "too big inline request";
static const char E_QUOTES[] = PFX "unbalanced quotes in request";
static const char E_BIG_MBULK[] = PFX "too big mbulk count string";
static const char E_MBULK_LEN[] = PFX "invalid multibulk length";
static const char E_BIG_BULK[] = PFX "too big bulk count string";
static const char E_BULK_LEN[] = PFX "invalid bulk length";
static const char E_QUERY_LIMIT[] = PFX "client query buffer limit exceeded";

#define ARGV_FIRST 8          /* first argv allocation, at most (an idle
                                 connection keeps it: small) */
#define ARGV_KEEP 1024        /* larger argv arrays are freed between commands */

/* What one state step did; the driver loops while a step CONTINUEs. */
enum step { STEP_CONTINUE, STEP_DONE, STEP_NEED_MORE, STEP_ERROR };

/* What a scan for a terminator found (see the strchr() quirk above). */
enum scan { SCAN_FOUND, SCAN_NONE, SCAN_BLOCKED };

static enum step fail(struct resp_req_parser *p, const char *text)
{
    p->error = text;
    return STEP_ERROR;
}

static void *xrealloc(void *ptr, size_t size)
{
    ptr = realloc(ptr, size);
    if (ptr == NULL)
        abort(); /* as Redis's zmalloc: no recovery from OOM */
    return ptr;
}

static size_t query_limit(const struct resp_req_parser *p)
{
    if (p->max_query < 0)
        return 0;
    return (unsigned long long)p->max_query < UINT32_MAX ? (size_t)p->max_query
                                                         : UINT32_MAX;
}

/* Header lines ("*3\r\n", "$16\r\n") end within a few bytes: scan_for
 * looks at this many itself, and leaves longer lines (inline commands) to
 * memchr, which is faster there but costs two calls for every line. */
#define SCAN_NEAR 16

/* Looks for c in buf[from, len) the way strchr() would see it: a NUL first
 * means BLOCKED. *at is the hit, the NUL, or len. */
static enum scan scan_for(const char *buf, size_t len, size_t from, char c,
                          size_t *at)
{
    const char *hit, *nul;
    size_t end, near;

    *at = len;
    if (from >= len)
        return SCAN_NONE;
    near = len - from > SCAN_NEAR ? from + SCAN_NEAR : len;
    for (size_t i = from; i < near; i++) {
        if (buf[i] == c || buf[i] == '\0') {
            *at = i; /* blocked at a NUL: resumed here, not rescanned */
            return buf[i] == c ? SCAN_FOUND : SCAN_BLOCKED;
        }
    }
    from = near;
    if (from == len)
        return SCAN_NONE;
    hit = memchr(buf + from, c, len - from);
    end = hit ? (size_t)(hit - buf) : len;
    nul = memchr(buf + from, '\0', end - from);
    if (nul != NULL) {
        *at = (size_t)(nul - buf);
        return SCAN_BLOCKED;
    }
    *at = end;
    return hit ? SCAN_FOUND : SCAN_NONE;
}

/* Appends a slice to argv. Growth is geometric and capped by `most`, an
 * upper bound on how many arguments this command can still have, so an
 * untrusted count never sizes an allocation by itself. */
static void push_arg(struct resp_req_parser *p, size_t off, size_t len,
                     size_t most)
{
    if (p->argc == p->argv_cap) {
        size_t cap = p->argv_cap ? p->argv_cap * 2 : ARGV_FIRST;

        if (cap > p->argc + most)
            cap = p->argc + most;
        p->argv = xrealloc(p->argv, cap * sizeof(*p->argv));
        p->argv_cap = cap;
    }
    p->argv[p->argc].off = (uint32_t)off;
    p->argv[p->argc].len = (uint32_t)len;
    p->argc++;
}

/* ------------------------------------------------------------------------ */
/* Inline commands: Redis's sdssplitargs()                                  */

enum token { TOKEN_MORE, TOKEN_END, TOKEN_BAD };

struct line {
    const char *s;
    size_t n;
};

/* sdssplitargs() reads a NUL-terminated copy: past the end it sees '\0'. */
static char at(const struct line *l, size_t i)
{
    return i < l->n ? l->s[i] : '\0';
}

/* isspace() in the C locale, which Redis runs its parser in. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
           c == '\r';
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

/* A closing quote must be followed by a blank or the end of the line. */
static enum token close_quote(const struct line *l, size_t *i)
{
    char next = at(l, *i + 1);

    *i += 1;
    return next == '\0' || is_space(next) ? TOKEN_END : TOKEN_BAD;
}

/* One step inside "double quotes": \xHH, the C escapes, or a plain byte. */
static enum token dquote_step(const struct line *l, size_t *i, char *out,
                              size_t *o)
{
    char c = at(l, *i), c1 = at(l, *i + 1);

    if (c == '\\' && c1 == 'x' && is_hex(at(l, *i + 2)) &&
        is_hex(at(l, *i + 3))) {
        out[(*o)++] = (char)(hex_val(at(l, *i + 2)) * 16 +
                             hex_val(at(l, *i + 3)));
        *i += 4;
        return TOKEN_MORE;
    }
    if (c == '\\' && c1 != '\0') {
        switch (c1) {
        case 'n': out[(*o)++] = '\n'; break;
        case 'r': out[(*o)++] = '\r'; break;
        case 't': out[(*o)++] = '\t'; break;
        case 'b': out[(*o)++] = '\b'; break;
        case 'a': out[(*o)++] = '\a'; break;
        default: out[(*o)++] = c1; break;
        }
        *i += 2;
        return TOKEN_MORE;
    }
    if (c == '"')
        return close_quote(l, i);
    if (c == '\0')
        return TOKEN_BAD; /* unterminated */
    out[(*o)++] = c;
    *i += 1;
    return TOKEN_MORE;
}

/* One step inside 'single quotes': only \' is an escape. */
static enum token squote_step(const struct line *l, size_t *i, char *out,
                              size_t *o)
{
    char c = at(l, *i);

    if (c == '\\' && at(l, *i + 1) == '\'') {
        out[(*o)++] = '\'';
        *i += 2;
        return TOKEN_MORE;
    }
    if (c == '\'')
        return close_quote(l, i);
    if (c == '\0')
        return TOKEN_BAD;
    out[(*o)++] = c;
    *i += 1;
    return TOKEN_MORE;
}

/* One token starting at *i (not a blank). A quote may open mid-token
 * (a"b c" is one argument, "ab c"), exactly as in sdssplitargs(). Note the
 * asymmetry Redis has: \v and \f are skipped between tokens but do not end
 * an unquoted one. */
static enum token split_token(const struct line *l, size_t *i, char *out,
                              size_t *o)
{
    enum { BARE, DQUOTE, SQUOTE } q = BARE;
    enum token t = TOKEN_MORE;

    while (t == TOKEN_MORE) {
        char c = at(l, *i);

        if (q == DQUOTE) {
            t = dquote_step(l, i, out, o);
        } else if (q == SQUOTE) {
            t = squote_step(l, i, out, o);
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' ||
                   c == '\0') {
            *i += c != '\0';
            t = TOKEN_END;
        } else {
            if (c == '"')
                q = DQUOTE;
            else if (c == '\'')
                q = SQUOTE;
            else
                out[(*o)++] = c;
            *i += 1;
        }
    }
    return t;
}

/* Splits buf[0, n) into p->inline_buf; argv slices index inline_buf.
 * Decoding never lengthens the text, so n bytes of space suffice. */
static bool split_inline(struct resp_req_parser *p, const char *buf, size_t n)
{
    struct line l = { buf, n };
    size_t i = 0, o = 0;

    if (p->inline_cap < n || p->inline_buf == NULL) {
        p->inline_cap = n > 64 ? n : 64;
        free(p->inline_buf);
        p->inline_buf = xrealloc(NULL, p->inline_cap);
    }
    for (;;) {
        size_t start = o;

        while (at(&l, i) != '\0' && is_space(at(&l, i)))
            i++;
        if (at(&l, i) == '\0')
            return true;
        if (split_token(&l, &i, p->inline_buf, &o) != TOKEN_END)
            return false;
        push_arg(p, start, o - start, SIZE_MAX - p->argc);
    }
}

static enum step parse_inline(struct resp_req_parser *p, const char *buf,
                              size_t len)
{
    size_t nl, end;

    if (scan_for(buf, len, p->pos, '\n', &nl) != SCAN_FOUND) {
        p->pos = nl;
        return len > RESP_INLINE_MAX ? fail(p, E_BIG_INLINE)
                                     : STEP_NEED_MORE;
    }
    p->len = nl + 1;
    if (p->len > query_limit(p))
        return fail(p, E_QUERY_LIMIT);
    end = nl > 0 && buf[nl - 1] == '\r' ? nl - 1 : nl;
    p->is_inline = true;
    if (!split_inline(p, buf, end))
        return fail(p, E_QUOTES);
    return STEP_DONE;
}

/* ------------------------------------------------------------------------ */
/* Multibulk commands                                                       */

/* The "*<n>" / "$<n>" line at p->line_start: complete once its first '\r'
 * and one more byte are there. *cr is the '\r'. */
static enum step find_header(struct resp_req_parser *p, const char *buf,
                             size_t len, size_t *cr, const char *too_big)
{
    if (scan_for(buf, len, p->pos, '\r', cr) != SCAN_FOUND) {
        p->pos = *cr;
        if (len - p->line_start > RESP_INLINE_MAX)
            return fail(p, too_big);
        return STEP_NEED_MORE;
    }
    p->pos = *cr; /* if the byte after '\r' is missing, resume here */
    return len - *cr >= 2 ? STEP_CONTINUE : STEP_NEED_MORE;
}

static enum step parse_count(struct resp_req_parser *p, const char *buf,
                             size_t len)
{
    size_t cr;
    long long n;
    enum step s = find_header(p, buf, len, &cr, E_BIG_MBULK);

    if (s != STEP_CONTINUE)
        return s;
    if (!resp_string2ll(buf + 1, cr - 1, &n) || n > INT_MAX)
        return fail(p, E_MBULK_LEN);
    p->pos = cr + 2;
    if (n <= 0) {
        p->len = p->pos;
        return STEP_DONE;
    }
    p->remaining = n;
    p->line_start = p->pos;
    p->state = RESP_REQ_BULK_HEAD;
    return STEP_CONTINUE;
}

static enum step parse_bulk_head(struct resp_req_parser *p, const char *buf,
                                 size_t len)
{
    size_t cr, ls = p->line_start;
    long long n;
    enum step s = find_header(p, buf, len, &cr, E_BIG_BULK);

    if (s != STEP_CONTINUE)
        return s;
    if (buf[ls] != '$') {
        snprintf(p->error_buf, sizeof(p->error_buf),
                 PFX "expected '$', got '%c'", buf[ls]);
        return fail(p, p->error_buf);
    }
    if (!resp_string2ll(buf + ls + 1, cr - ls - 1, &n) || n < 0 ||
        n > p->max_bulk)
        return fail(p, E_BULK_LEN);
    p->bulk_len = n;
    p->pos = cr + 2;
    p->state = RESP_REQ_BULK_DATA;
    return STEP_CONTINUE;
}

static enum step parse_bulk_data(struct resp_req_parser *p, const char *buf,
                                 size_t len)
{
    size_t need = (size_t)p->bulk_len + 2, limit = query_limit(p);

    if (len - p->pos < need)
        return STEP_NEED_MORE;
    /* Checked before the slice is stored, so offsets always fit 32 bits. */
    if (p->pos > limit || need > limit - p->pos)
        return fail(p, E_QUERY_LIMIT);
    push_arg(p, p->pos, (size_t)p->bulk_len, (size_t)p->remaining);
    p->pos += need;
    if (--p->remaining == 0) {
        p->len = p->pos;
        return STEP_DONE;
    }
    p->line_start = p->pos;
    p->state = RESP_REQ_BULK_HEAD;
    return STEP_CONTINUE;
}

/* ------------------------------------------------------------------------ */

static enum step parse_start(struct resp_req_parser *p, const char *buf,
                             size_t len)
{
    if (len == 0)
        return STEP_NEED_MORE;
    p->argc = 0;
    p->is_inline = false;
    p->line_start = 0;
    if (buf[0] == '*') {
        p->pos = 1;
        p->state = RESP_REQ_COUNT;
    } else {
        p->pos = 0;
        p->state = RESP_REQ_INLINE;
    }
    return STEP_CONTINUE;
}

void resp_req_init(struct resp_req_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->max_bulk = RESP_DEFAULT_MAX_BULK;
    p->max_query = RESP_DEFAULT_MAX_QUERY;
    resp_req_next(p);
}

void resp_req_free(struct resp_req_parser *p)
{
    free(p->argv);
    free(p->inline_buf);
    p->argv = NULL;
    p->inline_buf = NULL;
    p->argv_cap = 0;
    p->inline_cap = 0;
}

/* Also gives back memory a single huge command left behind, so an idle
 * client does not pin it (Redis frees argv after every command). */
void resp_req_next(struct resp_req_parser *p)
{
    if (p->argv_cap > ARGV_KEEP) {
        free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
    }
    if (p->inline_cap > RESP_INLINE_MAX) {
        free(p->inline_buf);
        p->inline_buf = NULL;
        p->inline_cap = 0;
    }
    p->state = RESP_REQ_START;
    p->pos = 0;
    p->remaining = 0;
    p->bulk_len = -1;
    p->line_start = 0;
    p->is_inline = false;
    p->len = 0;
    p->argc = 0;
    p->error = NULL;
}

enum resp_result resp_parse_request(struct resp_req_parser *p,
                                    const char *buf, size_t len)
{
    enum step s = STEP_CONTINUE;

    if (p->error != NULL)
        return RESP_ERROR; /* sticky until resp_req_next() */
    /* The caller must pass the same start and at least the bytes it passed
     * before: pos indexes them. */
    assert(p->state == RESP_REQ_START || len >= p->pos);
    while (s == STEP_CONTINUE) {
        switch (p->state) {
        case RESP_REQ_START: s = parse_start(p, buf, len); break;
        case RESP_REQ_INLINE: s = parse_inline(p, buf, len); break;
        case RESP_REQ_COUNT: s = parse_count(p, buf, len); break;
        case RESP_REQ_BULK_HEAD: s = parse_bulk_head(p, buf, len); break;
        case RESP_REQ_BULK_DATA: s = parse_bulk_data(p, buf, len); break;
        }
    }
    if (s == STEP_NEED_MORE && len > query_limit(p))
        s = fail(p, E_QUERY_LIMIT); /* every byte so far is this command's */
    if (s == STEP_DONE && p->len > query_limit(p))
        s = fail(p, E_QUERY_LIMIT);
    if (s == STEP_DONE) {
        p->state = RESP_REQ_START;
        return RESP_OK;
    }
    return s == STEP_NEED_MORE ? RESP_NEED_MORE : RESP_ERROR;
}

size_t resp_req_need(const struct resp_req_parser *p)
{
    if (p->state == RESP_REQ_BULK_DATA) /* pos: where the argument's bytes start */
        return p->pos + (size_t)p->bulk_len + 2;
    return p->pos;
}
