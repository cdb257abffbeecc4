/*
 * resp/reply.c — finds where one backend reply ends, for every RESP2 and
 * RESP3 type at any depth, without recursion and without a stack.
 *
 * The whole state is one counter, `owed`: elements still to read before the
 * reply is complete. A reply starts owing 1 (itself). Each element header
 * pays 1 and adds what it announces:
 *
 *     "*n" "~n" ">n"  +n          "%n"  +2n (keys and values)
 *     "|n"            +2n + 1     (an attribute is not an element: its n
 *                                  pairs, then the element it annotates)
 *     "$-1" "*-1"     +0          (RESP2 nulls are complete elements)
 *
 * and the reply is complete when owed drops to 0 outside a blob payload.
 *
 *   TYPE --type byte--> LINE --CRLF--+--blob length--> BLOB --payload+CRLF--+
 *    ^                               |                                      |
 *    +------- owed > 0 --------------+------------- owed > 0 ---------------+
 *                                    owed == 0: RESP_OK
 *
 * Resuming: `pos` is where the next call continues; no byte is examined
 * twice, so feeding a reply 1 byte at a time costs O(total bytes). This is
 * a framer, not a validator: simple lines (+ - : , ( _ #) are only checked
 * for their CRLF; lengths and counts are checked because framing depends
 * on them.
 */
#include <assert.h>
#include <limits.h>
#include <string.h>

#include "resp.h"

static const char E_TYPE[] = "unknown RESP type byte";
static const char E_CRLF[] = "line not terminated by CRLF";
static const char E_LEN[] = "invalid length or count";
static const char E_LEN_LINE[] = "length line too long";
static const char E_STREAMED[] = "streamed RESP3 types are not supported";
static const char E_COUNT[] = "aggregate count too large";
static const char E_BLOB_END[] = "bulk payload not terminated by CRLF";

/* Past 2^32 elements a count is garbage, and the cap keeps `owed` far
 * from overflowing (and the sum is checked anyway). */
#define MAX_COUNT (1ll << 32)
/* Type byte + "-9223372036854775808": nothing valid is longer. */
#define MAX_LEN_LINE 21

enum step { STEP_CONTINUE, STEP_DONE, STEP_NEED_MORE, STEP_ERROR };

static enum step fail(struct resp_reply_parser *p, const char *text)
{
    p->error = text;
    return STEP_ERROR;
}

static bool is_blob(char t)
{
    return t == '$' || t == '!' || t == '=';
}

static bool is_aggregate(char t)
{
    return t == '*' || t == '%' || t == '~' || t == '>' || t == '|';
}

static bool is_simple(char t)
{
    return t == '+' || t == '-' || t == ':' || t == '_' || t == '#' ||
           t == ',' || t == '(';
}

/* An element's bytes are all consumed: is that the end of the reply? */
static enum step element_done(struct resp_reply_parser *p)
{
    p->state = RESP_REPLY_TYPE;
    if (p->owed > 0)
        return STEP_CONTINUE;
    p->len = p->pos;
    return STEP_DONE;
}

static enum step step_type(struct resp_reply_parser *p, const char *buf,
                           size_t len)
{
    char t;

    if (p->pos >= len)
        return STEP_NEED_MORE;
    t = buf[p->pos];
    if (!is_blob(t) && !is_aggregate(t) && !is_simple(t))
        return fail(p, E_TYPE);
    /* Inside a top-level attribute, owed stays >= 2 (the attribute's
     * elements plus the reply proper), so owed == 1 before `first` is set
     * means this is the reply proper, or one more attribute before it. */
    if (p->owed == 1 && p->first == 0 && t != '|') {
        p->first = t;
        p->first_off = p->pos;
    }
    p->type = t;
    p->line_start = p->pos;
    p->pos++;
    p->state = RESP_REPLY_LINE;
    return STEP_CONTINUE;
}

/* A length or count line is complete: account for what it announces. */
static enum step header_done(struct resp_reply_parser *p, const char *s,
                             size_t n)
{
    long long v;
    uint64_t add;

    if (n == 1 && s[0] == '?')
        return fail(p, E_STREAMED);
    if (!resp_string2ll(s, n, &v))
        return fail(p, E_LEN);
    p->owed--;
    if (v == -1 && (p->type == '$' || p->type == '*'))
        return element_done(p); /* RESP2 null bulk / null array */
    if (v < 0)
        return fail(p, E_LEN);
    if (is_blob(p->type)) {
        if (v > LLONG_MAX - 2)
            return fail(p, E_LEN);
        p->blob_left = v + 2; /* payload and its CRLF */
        p->state = RESP_REPLY_BLOB;
        return STEP_CONTINUE;
    }
    if (v > MAX_COUNT)
        return fail(p, E_COUNT);
    add = (uint64_t)v;
    if (p->type == '%' || p->type == '|')
        add *= 2;
    add += p->type == '|';
    if (add > UINT64_MAX - p->owed)
        return fail(p, E_COUNT);
    p->owed += add;
    return element_done(p);
}

static enum step step_line(struct resp_reply_parser *p, const char *buf,
                           size_t len)
{
    bool counted = !is_simple(p->type);
    const char *cr = p->pos < len ? memchr(buf + p->pos, '\r', len - p->pos)
                                  : NULL;
    size_t r;

    if (cr == NULL) {
        p->pos = len;
        if (counted && len - p->line_start > MAX_LEN_LINE)
            return fail(p, E_LEN_LINE);
        return STEP_NEED_MORE;
    }
    r = (size_t)(cr - buf);
    p->pos = r; /* if the '\n' is not there yet, resume at the '\r' */
    /* Checked before waiting for the '\n', so the verdict does not depend
     * on where the bytes were split (found by test/fuzz/fuzz_reply.c). */
    if (counted && r - p->line_start > MAX_LEN_LINE)
        return fail(p, E_LEN_LINE);
    if (r + 1 >= len)
        return STEP_NEED_MORE;
    if (buf[r + 1] != '\n')
        return fail(p, E_CRLF);
    p->pos = r + 2;
    if (counted)
        return header_done(p, buf + p->line_start + 1, r - p->line_start - 1);
    p->owed--;
    return element_done(p);
}

static enum step step_blob(struct resp_reply_parser *p, const char *buf,
                           size_t len)
{
    size_t avail = len - p->pos;

    if ((unsigned long long)p->blob_left > avail) {
        p->blob_left -= (long long)avail;
        p->pos = len;
        return STEP_NEED_MORE;
    }
    p->pos += (size_t)p->blob_left;
    p->blob_left = 0;
    if (buf[p->pos - 2] != '\r' || buf[p->pos - 1] != '\n')
        return fail(p, E_BLOB_END);
    return element_done(p);
}

void resp_reply_init(struct resp_reply_parser *p)
{
    memset(p, 0, sizeof(*p));
    resp_reply_next(p);
}

void resp_reply_next(struct resp_reply_parser *p)
{
    p->state = RESP_REPLY_TYPE;
    p->pos = 0;
    p->type = 0;
    p->blob_left = 0;
    p->owed = 1; /* the reply itself */
    p->line_start = 0;
    p->len = 0;
    p->first = 0;
    p->first_off = 0;
    p->error = NULL;
}

enum resp_result resp_parse_reply(struct resp_reply_parser *p,
                                  const char *buf, size_t len)
{
    enum step s = STEP_CONTINUE;

    if (p->error != NULL)
        return RESP_ERROR; /* sticky until resp_reply_next() */
    if (p->state == RESP_REPLY_TYPE && p->owed == 0)
        return RESP_OK; /* already complete: the result stands */
    assert(len >= p->pos); /* same start, never fewer bytes than before */
    while (s == STEP_CONTINUE) {
        switch (p->state) {
        case RESP_REPLY_TYPE: s = step_type(p, buf, len); break;
        case RESP_REPLY_LINE: s = step_line(p, buf, len); break;
        case RESP_REPLY_BLOB: s = step_blob(p, buf, len); break;
        }
    }
    if (s == STEP_DONE)
        return RESP_OK;
    return s == STEP_NEED_MORE ? RESP_NEED_MORE : RESP_ERROR;
}
