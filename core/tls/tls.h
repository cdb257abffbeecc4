/*
 * tls — TLS as a byte-stream transform (OpenSSL 3 on memory BIOs), for the
 * client port, the links to the backend nodes and the cluster port. It never
 * touches a socket and never blocks: the caller moves ciphertext between its
 * socket buffers and a struct tls_conn, and plaintext between the tls_conn
 * and its parsers, so the same code runs on every I/O backend (io_uring,
 * epoll, the fake one of the tests).
 *
 *   socket ─recv─► tls_conn_feed ──► [rbio] ─SSL─► tls_conn_read ─► parser
 *   socket ◄─send─ tls_conn_output ◄─ [wbio] ◄─SSL─ tls_conn_write ◄─ replies
 *
 * After every feed or write the caller drains tls_conn_output (handshake
 * messages, alerts and session tickets appear there too, not only records
 * of its own data) and sends it. A connection's state is an enum:
 * HANDSHAKING → OPEN → CLOSING, or FAILED from anywhere with a reason for
 * the metrics (enum tls_fail). No renegotiation, no early data.
 *
 * A struct tls_ctx holds what is loaded from files (certificates, key, CAs)
 * and the settings; it is reference-counted: each tls_conn keeps a
 * reference to the ctx it started with, so a reload (a new ctx swapped into
 * a struct tls_slot) changes only connections made after it. Contexts are
 * shared by all workers (OpenSSL's SSL_CTX is thread-safe for that); a
 * tls_conn belongs to one worker.
 *
 * Session resumption: a server ctx with session caching on keeps a session
 * cache and issues tickets; a client ctx keeps the last session of each
 * node address ("host:port") and offers it on the next connect there.
 *
 * The handshake deadline is the caller's: tls_conn_* take "now" in
 * milliseconds from the caller's clock, and tls_conn_handshake_expired
 * tells when to give up (then tls_conn_timeout records it).
 */
#ifndef RINGSLOT_CORE_TLS_H
#define RINGSLOT_CORE_TLS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../config/config.h"

/* tls-auth-clients, as Redis's. */
enum tls_auth_clients {
    TLS_AUTH_CLIENTS_NO,       /* no client certificate asked for */
    TLS_AUTH_CLIENTS_YES,      /* required and verified */
    TLS_AUTH_CLIENTS_OPTIONAL, /* verified when the client sends one */
};

/*
 * What a ctx is built from. Strings are read during tls_ctx_new only (the
 * ctx keeps no pointer into them); NULL or "" means "not given".
 */
struct tls_options {
    bool server;                 /* accepting side (client port, cluster
                                    port); else connecting side */
    const char *cert_file;       /* PEM chain; server: required */
    const char *key_file;        /* PEM key; required with cert_file */
    const char *key_pass;        /* the key's passphrase */
    const char *ca_file;         /* CAs to verify the peer with */
    const char *ca_dir;          /* c_rehash'ed directory of CAs */
    const char *protocols;       /* "TLSv1.2 TLSv1.3" (Redis's
                                    tls-protocols); NULL: TLSv1.2+1.3 */
    const char *ciphers;         /* TLS <= 1.2 cipher list */
    const char *ciphersuites;    /* TLS 1.3 suites */
    /* server side */
    enum tls_auth_clients auth_clients;
    bool prefer_server_ciphers;
    bool session_caching;        /* server: cache + tickets; client: keep
                                    the last session per node */
    long session_cache_size;     /* entries; 0 = OpenSSL's default */
    long session_cache_timeout;  /* seconds; 0 = OpenSSL's default */
    /* client side */
    bool insecure;               /* no verification of the server at all */
    bool check_host;             /* the certificate must name the host given
                                    to tls_conn_connect (IP SAN for an IP) */
};

/* Options from the configuration: the client port (tls-*), the links to
 * the backend (--tls-*), the cluster port's outgoing side (the tls-*
 * certificate, key and CAs used as a client, as Redis's tls-cluster).
 * The strings point into *c, which must outlive the tls_ctx_new call. */
void tls_options_server(const struct config *c, struct tls_options *o);
void tls_options_backend(const struct config *c, struct tls_options *o);
void tls_options_cluster_client(const struct config *c, struct tls_options *o);

struct tls_ctx;

/*
 * Build a ctx: load and check certificate, key and CAs, apply protocols and
 * ciphers. Returns it with one reference, or NULL with a message in err
 * naming the option and the file or value, then OpenSSL's reason
 * ("tls-cert-file '/x': error:...:No such file or directory", "tls-key-file
 * '/k' does not match tls-cert-file '/c'", "tls-ciphers 'FOO': ...").
 */
struct tls_ctx *tls_ctx_new(const struct tls_options *o, char *err,
                            size_t errlen);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);   /* returns ctx */
void tls_ctx_unref(struct tls_ctx *ctx);            /* NULL is fine */

/*
 * Where the current ctx of one side lives, so that a reload swaps it while
 * workers take references for new connections (a mutex held for a pointer
 * copy and a reference increment, once per new connection).
 */
struct tls_slot {
    pthread_mutex_t lock;
    struct tls_ctx *ctx;         /* NULL: TLS off on this side */
    uint64_t generation;         /* +1 per successful reload */
};

void tls_slot_init(struct tls_slot *s, struct tls_ctx *ctx); /* takes ctx's
                                                                reference */
void tls_slot_destroy(struct tls_slot *s);
/* A new reference to the current ctx (NULL if none); tls_ctx_unref it. */
struct tls_ctx *tls_slot_get(struct tls_slot *s);
/* Build a ctx from o and swap it in. On failure the old ctx stays and err
 * says why; returns 0 or -1. Connections keep the ctx they started with. */
int tls_slot_reload(struct tls_slot *s, const struct tls_options *o,
                    char *err, size_t errlen);

enum tls_state {
    TLS_HANDSHAKING, /* no plaintext in or out yet */
    TLS_OPEN,        /* data both ways */
    TLS_CLOSING,     /* close_notify sent or received: flush the output,
                        then close the socket */
    TLS_FAILED,      /* fatal; an alert may wait in the output (send it if
                        convenient), then close */
};

/* Why a connection failed, for logs and per-reason metrics. */
enum tls_fail {
    TLS_FAIL_NONE,
    TLS_FAIL_NO_CLIENT_CERT, /* certificate required, none sent */
    TLS_FAIL_UNKNOWN_CA,     /* certificate not from a trusted CA */
    TLS_FAIL_EXPIRED,        /* certificate expired or not yet valid */
    TLS_FAIL_HOSTNAME,       /* certificate does not name the node */
    TLS_FAIL_PROTOCOL,       /* no common protocol version or cipher */
    TLS_FAIL_PLAINTEXT,      /* the peer does not speak TLS (e.g. RESP) */
    TLS_FAIL_TIMEOUT,        /* handshake deadline passed */
    TLS_FAIL_OTHER,
};
#define TLS_FAIL_COUNT (TLS_FAIL_OTHER + 1)

/* "no_client_cert", "unknown_ca", ... : stable names for metric labels. */
const char *tls_fail_name(enum tls_fail f);

/* Results of tls_conn_read and tls_conn_write below 0. */
#define TLS_AGAIN  (-1)  /* need more ciphertext (or the handshake first) */
#define TLS_EOF    (-2)  /* the peer's close_notify: no more plaintext */
#define TLS_ERROR  (-3)  /* FAILED, or CLOSING for a write; see
                            tls_conn_failure */

/* Plaintext one tls_conn_write call takes at most, so the output a caller
 * must drain after a write stays bounded (a 16 KB record's overhead is
 * small: about 30 bytes). */
#define TLS_WRITE_MAX (64 * 1024)

struct tls_conn;

/*
 * A connection on ctx (which gets a reference): tls_conn_accept for the
 * server side, tls_conn_connect for the client side, which offers the last
 * session saved for host:port, sets SNI when host is a name and, with
 * check_host, verifies that the certificate names host (host may be NULL:
 * no name check, no session reuse). The client's first flight is in the
 * output at once. now_ms starts the handshake clock. NULL: out of memory.
 */
struct tls_conn *tls_conn_accept(struct tls_ctx *ctx, uint64_t now_ms);
struct tls_conn *tls_conn_connect(struct tls_ctx *ctx, const char *host,
                                  int port, uint64_t now_ms);
void tls_conn_free(struct tls_conn *c);             /* NULL is fine */

/* Ciphertext received from the socket; all of it is taken (kept until
 * tls_conn_read consumes it: a caller that stops reading plaintext should
 * stop receiving too). Moves the handshake on; returns the state. */
enum tls_state tls_conn_feed(struct tls_conn *c, const void *buf, size_t len);

/* Up to cap bytes of plaintext into buf: > 0 bytes, or TLS_AGAIN, TLS_EOF,
 * TLS_ERROR. Call until it returns < 0 after each feed. */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t cap);

/* Encrypt up to min(len, TLS_WRITE_MAX) bytes of plaintext: returns the
 * bytes taken (all of them up to the cap), TLS_AGAIN while HANDSHAKING
 * (keep them; write again when OPEN), or TLS_ERROR. */
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len);

/* Ciphertext waiting to be sent. */
size_t tls_conn_output_pending(const struct tls_conn *c);
/* Move up to cap bytes of it into buf; returns how many. */
size_t tls_conn_output(struct tls_conn *c, void *buf, size_t cap);

/* Send close_notify (into the output; also in answer to the peer's) and
 * go to CLOSING; nothing is awaited from the peer. A FAILED connection
 * stays FAILED; one still HANDSHAKING just goes to CLOSING. */
void tls_conn_close(struct tls_conn *c);

enum tls_state tls_conn_state(const struct tls_conn *c);
enum tls_fail tls_conn_failure(const struct tls_conn *c);
/* A line for the log: OpenSSL's reason and the verification error, or "". */
const char *tls_conn_error(const struct tls_conn *c);

/* The handshake deadline: true when still HANDSHAKING timeout_ms after the
 * now_ms given at creation. */
bool tls_conn_handshake_expired(const struct tls_conn *c, uint64_t now_ms,
                                uint64_t timeout_ms);
/* Give up on the handshake: FAILED with TLS_FAIL_TIMEOUT. */
void tls_conn_timeout(struct tls_conn *c);

/* After the handshake: whether the session was resumed, the protocol
 * ("TLSv1.3") and cipher names (static strings, "" before OPEN). */
bool tls_conn_resumed(const struct tls_conn *c);
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_cipher(const struct tls_conn *c);
/* The ctx the connection started with (no new reference). */
struct tls_ctx *tls_conn_ctx(const struct tls_conn *c);

#endif
