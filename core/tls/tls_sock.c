/*
 * tls_sock: a tls_conn driven by a poll loop over a non-blocking socket
 * (tls.h). The connection's own output BIO holds ciphertext until
 * tls_conn_output moves it out; what send(2) does not take at once waits
 * here (out, out_off) and leaves first on the next call, so records never
 * interleave.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "tls.h"

#define SOCK_CHUNK 16384

struct tls_sock {
    struct tls_conn *conn;     /* owned */
    char out[SOCK_CHUNK];      /* ciphertext taken from conn, not yet sent */
    size_t out_len, out_off;
};

struct tls_sock *tls_sock_new(struct tls_conn *conn)
{
    struct tls_sock *s = calloc(1, sizeof *s);
    if (s)
        s->conn = conn;
    return s;
}

struct tls_conn *tls_sock_conn(const struct tls_sock *s)
{
    return s->conn;
}

/* Send what is waiting: 0 when all of it went, -1 with errno otherwise
 * (EAGAIN: the socket is full, the rest waits). */
static int flush(struct tls_sock *s, int fd)
{
    for (;;) {
        if (s->out_off == s->out_len) {
            s->out_off = 0;
            s->out_len = tls_conn_output(s->conn, s->out, sizeof s->out);
            if (s->out_len == 0)
                return 0;
        }
        ssize_t n = send(fd, s->out + s->out_off, s->out_len - s->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        s->out_off += (size_t)n;
    }
}

static bool output_waits(const struct tls_sock *s)
{
    return s->out_off < s->out_len || tls_conn_output_pending(s->conn) > 0;
}

ssize_t tls_sock_recv(struct tls_sock *s, int fd, void *buf, size_t cap)
{
    for (;;) {
        ssize_t got = tls_conn_read(s->conn, buf, cap);
        /* a read may answer the peer (handshake, tickets, close_notify) */
        if (flush(s, fd) < 0 && errno != EAGAIN)
            return -1;
        if (got > 0)
            return got;
        if (got == TLS_EOF)
            return 0;
        if (got == TLS_ERROR) {
            errno = ECONNRESET;
            return -1;
        }
        char raw[SOCK_CHUNK];
        ssize_t n = recv(fd, raw, sizeof raw, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n;
        tls_conn_feed(s->conn, raw, (size_t)n);
    }
}

ssize_t tls_sock_send(struct tls_sock *s, int fd, const void *buf, size_t len)
{
    if (flush(s, fd) < 0)
        return -1;
    if (tls_conn_state(s->conn) == TLS_HANDSHAKING) {
        errno = EAGAIN; /* plaintext waits for the handshake */
        return -1;
    }
    ssize_t taken = tls_conn_write(s->conn, buf, len);
    if (taken < 0) {
        errno = taken == TLS_AGAIN ? EAGAIN : ECONNRESET;
        return -1;
    }
    /* the records are ours now: whatever the socket does not take waits */
    if (flush(s, fd) < 0 && errno != EAGAIN)
        return -1;
    return taken;
}

short tls_sock_events(const struct tls_sock *s, bool have_output)
{
    bool open = tls_conn_state(s->conn) == TLS_OPEN;
    return (short)(POLLIN | (output_waits(s) || (have_output && open) ? POLLOUT : 0));
}

void tls_sock_free(struct tls_sock *s, int fd)
{
    if (!s)
        return;
    if (fd >= 0 && tls_conn_state(s->conn) == TLS_OPEN) {
        tls_conn_close(s->conn);
        flush(s, fd);
    }
    tls_conn_free(s->conn);
    free(s);
}
