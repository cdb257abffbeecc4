/*
 * resp/write.c — writers for the replies and commands the proxy builds
 * itself (errors, CLUSTER-ish answers, commands sent to backends). They
 * append to a caller-owned struct resp_buf that grows geometrically; an
 * allocation failure aborts, as Redis's zmalloc does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

void resp_buf_free(struct resp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

static void reserve(struct resp_buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 64;
    char *data;

    if (extra <= b->cap - b->len)
        return;
    while (cap - b->len < extra)
        cap *= 2;
    data = realloc(b->data, cap);
    if (data == NULL)
        abort(); /* as Redis's zmalloc: no recovery from OOM */
    b->data = data;
    b->cap = cap;
}

void resp_buf_append(struct resp_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    reserve(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

/* <prefix><v>\r\n: every header and integer line. Formatted by hand:
 * snprintf was the top user-space cost of cross-slot splits (every child
 * command and every merged reply is a run of these lines). */
static void write_ll_line(struct resp_buf *b, char prefix, long long v)
{
    char tmp[32];
    char *end = tmp + sizeof(tmp), *p = end;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;

    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    *--p = prefix;
    resp_buf_append(b, p, (size_t)(end - p));
}

/* A simple line may not contain CR or LF or the peer would lose framing;
 * like Redis's addReplyErrorFormat(), turn them into spaces. */
static void write_simple_line(struct resp_buf *b, char prefix, const char *s)
{
    size_t n = strlen(s);
    char *dst;

    reserve(b, n + 3);
    dst = b->data + b->len;
    *dst++ = prefix;
    for (size_t i = 0; i < n; i++)
        *dst++ = (s[i] == '\r' || s[i] == '\n') ? ' ' : s[i];
    *dst++ = '\r';
    *dst++ = '\n';
    b->len += n + 3;
}

void resp_write_simple(struct resp_buf *b, const char *s)
{
    write_simple_line(b, '+', s);
}

void resp_write_error(struct resp_buf *b, const char *s)
{
    write_simple_line(b, '-', s);
}

void resp_write_integer(struct resp_buf *b, long long v)
{
    write_ll_line(b, ':', v);
}

void resp_write_bulk(struct resp_buf *b, const void *s, size_t len)
{
    write_ll_line(b, '$', (long long)len);
    resp_buf_append(b, s, len);
    resp_buf_append(b, "\r\n", 2);
}

void resp_write_null(struct resp_buf *b, int proto)
{
    if (proto >= 3)
        resp_buf_append(b, "_\r\n", 3);
    else
        resp_buf_append(b, "$-1\r\n", 5);
}

void resp_write_array_head(struct resp_buf *b, long long n)
{
    write_ll_line(b, '*', n);
}

/* RESP3 sends pub/sub confirmations and messages as pushes. */
void resp_write_push_head(struct resp_buf *b, int proto, long long n)
{
    write_ll_line(b, proto >= 3 ? '>' : '*', n);
}

/* RESP2 has no map type: a map is a flat array of 2n elements there. */
void resp_write_map_head(struct resp_buf *b, int proto, long long pairs)
{
    if (proto >= 3)
        write_ll_line(b, '%', pairs);
    else
        write_ll_line(b, '*', pairs * 2);
}

/* lens may be NULL: then every argv[i] is a C string. */
void resp_write_command(struct resp_buf *b, int argc, const char *const *argv,
                        const size_t *lens)
{
    write_ll_line(b, '*', argc);
    for (int i = 0; i < argc; i++)
        resp_write_bulk(b, argv[i], lens ? lens[i] : strlen(argv[i]));
}
