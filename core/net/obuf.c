/*
 * obuf.c — output buffers (struct obuf, net.h): a chain of chunks waiting
 * for a socket, gathered into one vectored send; drained chunks are freed
 * as the kernel takes their bytes.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "net.h"

#define OBUF_CHUNK 16384
#define OBUF_FIRST_CHUNK 512

void obuf_append(struct obuf *o, const void *data, size_t len)
{
    struct obuf_chunk *t = o->tail;
    if (t && t->cap - t->len >= len) {
        memcpy(t->data + t->len, data, len);
        t->len += len;
        o->bytes += len;
        return;
    }
    if (t && t->cap > t->len) { /* fill the tail first */
        size_t n = t->cap - t->len;
        memcpy(t->data + t->len, data, n);
        t->len += n;
        o->bytes += n;
        data = (const char *)data + n;
        len -= n;
    }
    /* Most replies are small and leave at once: start an empty chain with a
     * small chunk, so a connection's reply does not pin 16 KB. Sizes are
     * allocator size classes, header included. */
    size_t want = (o->tail ? OBUF_CHUNK : OBUF_FIRST_CHUNK) - sizeof(struct obuf_chunk);
    size_t cap = len > want ? len : want;
    struct obuf_chunk *c = malloc(sizeof *c + cap);
    if (!c)
        abort();
    c->next = NULL;
    c->len = len;
    c->cap = cap;
    c->sent = 0;
    memcpy(c->data, data, len);
    if (o->tail)
        o->tail->next = c;
    else
        o->head = c;
    o->tail = c;
    o->bytes += len;
}

int obuf_iov(const struct obuf *o, struct iovec *iov, int max)
{
    int n = 0;
    for (struct obuf_chunk *c = o->head; c && n < max; c = c->next) {
        if (c->len == c->sent)
            continue;
        iov[n].iov_base = c->data + c->sent;
        iov[n].iov_len = c->len - c->sent;
        n++;
    }
    return n;
}

void obuf_consume(struct obuf *o, size_t n)
{
    assert(n <= o->bytes);
    o->bytes -= n;
    while (o->head) {
        struct obuf_chunk *c = o->head;
        size_t left = c->len - c->sent;
        if (n < left) {
            c->sent += n;
            return;
        }
        n -= left;
        o->head = c->next;
        if (!o->head)
            o->tail = NULL;
        free(c);
    }
}

void obuf_free(struct obuf *o)
{
    while (o->head) {
        struct obuf_chunk *c = o->head;
        o->head = c->next;
        free(c);
    }
    o->tail = NULL;
    o->bytes = 0;
}
