/*
 * tls.c — contexts, the reload slot and connections (tls.h).
 *
 * A connection is an SSL object between two memory BIOs:
 *
 *   tls_conn_feed ─BIO_write─► rbio ─► SSL ─► SSL_read ─► tls_conn_read
 *   tls_conn_output ◄─BIO_read─ wbio ◄─ SSL ◄─ SSL_write ◄─ tls_conn_write
 *
 * Memory BIOs never say "retry" on write, so SSL_write takes all it is
 * given and the only "would block" left is SSL_ERROR_WANT_READ: more
 * ciphertext is needed. OpenSSL's error queue is per thread and shared by
 * every connection of a worker, so it is cleared before each SSL call and
 * read (for the failure reason) right after one that failed.
 *
 * Failure reasons come, in this order, from our own verification of the
 * peer's certificate (SSL_get_verify_result), from the alert the peer sent
 * us (the info callback records it), and from OpenSSL's reason code.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls.h"

#define CLIENT_SESSIONS 256   /* saved sessions of a client ctx (slots) */
#define PEER_KEY 64           /* "host:port" */

/* The last session a client ctx got from one node. */
struct saved_session {
    char key[PEER_KEY];       /* "" = free */
    SSL_SESSION *sess;
};

struct tls_ctx {
    atomic_int refs;
    SSL_CTX *ssl;
    bool server;
    bool check_host;
    bool keep_sessions;       /* client: save sessions per node */
    pthread_mutex_t lock;     /* sessions[]: workers share a ctx */
    struct saved_session sessions[CLIENT_SESSIONS];
};

struct tls_conn {
    struct tls_ctx *ctx;      /* one reference */
    SSL *ssl;
    BIO *rbio, *wbio;         /* owned by ssl */
    enum tls_state state;
    enum tls_fail fail;
    uint64_t started_ms;
    int peer_alert;           /* last alert received, -1 = none */
    char peer[PEER_KEY];      /* client: "host:port" for sessions, or "" */
    char error[160];
};

static const char *const fail_names[TLS_FAIL_COUNT] = {
    [TLS_FAIL_NONE] = "none",
    [TLS_FAIL_NO_CLIENT_CERT] = "no_client_cert",
    [TLS_FAIL_UNKNOWN_CA] = "unknown_ca",
    [TLS_FAIL_EXPIRED] = "expired",
    [TLS_FAIL_HOSTNAME] = "hostname",
    [TLS_FAIL_PROTOCOL] = "protocol",
    [TLS_FAIL_PLAINTEXT] = "plaintext",
    [TLS_FAIL_TIMEOUT] = "timeout",
    [TLS_FAIL_OTHER] = "other",
};

const char *tls_fail_name(enum tls_fail f)
{
    return (unsigned)f < TLS_FAIL_COUNT ? fail_names[f] : "other";
}

/* ---- options from the configuration -------------------------------------- */

static const char *given(const char *s)
{
    return s[0] != '\0' ? s : NULL;
}

void tls_options_server(const struct config *c, struct tls_options *o)
{
    static const enum tls_auth_clients auth[] = {
        [CONFIG_TLS_AUTH_NO] = TLS_AUTH_CLIENTS_NO,
        [CONFIG_TLS_AUTH_YES] = TLS_AUTH_CLIENTS_YES,
        [CONFIG_TLS_AUTH_OPTIONAL] = TLS_AUTH_CLIENTS_OPTIONAL,
    };

    *o = (struct tls_options){
        .server = true,
        .cert_file = given(c->tls_cert_file),
        .key_file = given(c->tls_key_file),
        .key_pass = given(c->tls_key_file_pass),
        .ca_file = given(c->tls_ca_cert_file),
        .ca_dir = given(c->tls_ca_cert_dir),
        .protocols = given(c->tls_protocols),
        .ciphers = given(c->tls_ciphers),
        .ciphersuites = given(c->tls_ciphersuites),
        .auth_clients = auth[c->tls_auth_clients],
        .prefer_server_ciphers = c->tls_prefer_server_ciphers,
        .session_caching = c->tls_session_caching,
        .session_cache_size = c->tls_session_cache_size,
        .session_cache_timeout = c->tls_session_cache_timeout,
    };
}

void tls_options_backend(const struct config *c, struct tls_options *o)
{
    *o = (struct tls_options){
        .cert_file = given(c->tls_cert),
        .key_file = given(c->tls_key),
        .ca_file = given(c->tls_cacert),
        .session_caching = true,
        .insecure = c->tls_insecure,
        .check_host = !c->tls_insecure,
    };
}

void tls_options_cluster_client(const struct config *c, struct tls_options *o)
{
    /* Redis's tls-cluster: the node's own certificate is its client
     * certificate towards the other nodes, verified against the same CAs,
     * with the same protocols and ciphers. */
    tls_options_server(c, o);
    o->server = false;
    o->auth_clients = TLS_AUTH_CLIENTS_NO;
    o->prefer_server_ciphers = false;
    o->session_cache_size = 0;
    o->session_cache_timeout = 0;
    o->check_host = true;
}

/* ---- contexts ------------------------------------------------------------- */

static int fail_text(char *err, size_t errlen, const char *what,
                     const char *arg)
{
    unsigned long e = ERR_peek_last_error();
    char reason[160] = "unknown error";

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    if (arg != NULL)
        snprintf(err, errlen, "%s '%s': %s", what, arg, reason);
    else
        snprintf(err, errlen, "%s: %s", what, reason);
    ERR_clear_error();
    return -1;
}

/* Redis's tls-protocols: the versions not named are switched off. */
static int set_protocols(SSL_CTX *ssl, const char *list, char *err,
                         size_t errlen)
{
    static const struct { const char *name; uint64_t off; } known[] = {
        { "TLSv1", SSL_OP_NO_TLSv1 }, { "TLSv1.1", SSL_OP_NO_TLSv1_1 },
        { "TLSv1.2", SSL_OP_NO_TLSv1_2 }, { "TLSv1.3", SSL_OP_NO_TLSv1_3 },
    };
    uint64_t off = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2 |
                   SSL_OP_NO_TLSv1_3;
    char buf[128], *save = NULL;

    if (list == NULL)
        list = "TLSv1.2 TLSv1.3";
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *t = strtok_r(buf, " \t", &save); t != NULL;
         t = strtok_r(NULL, " \t", &save)) {
        size_t i = 0;
        while (i < 4 && strcasecmp(t, known[i].name) != 0)
            i++;
        if (i == 4) {
            snprintf(err, errlen, "tls-protocols: unknown protocol '%s'", t);
            return -1;
        }
        off &= ~known[i].off;
    }
    /* TLS 1.0 and 1.1 need security level 0 in OpenSSL 3 */
    if (!(off & SSL_OP_NO_TLSv1) || !(off & SSL_OP_NO_TLSv1_1)) {
        SSL_CTX_set_min_proto_version(ssl, TLS1_VERSION);
        SSL_CTX_set_security_level(ssl, 0);
    }
    SSL_CTX_set_options(ssl, off);
    return 0;
}

struct pass_arg { const char *pass; };

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    const struct pass_arg *a = u;
    size_t len = a->pass != NULL ? strlen(a->pass) : 0;

    if (len >= (size_t)size)
        return 0;
    memcpy(buf, a->pass != NULL ? a->pass : "", len);
    return (int)len;
}

/* Certificate chain and key; the passphrase is used only here. */
static int load_identity(SSL_CTX *ssl, const struct tls_options *o,
                         char *err, size_t errlen)
{
    const char *cert_opt = o->server ? "tls-cert-file" : "tls-cert";
    const char *key_opt = o->server ? "tls-key-file" : "tls-key";
    struct pass_arg pa = { o->key_pass };
    int ok;

    if (o->cert_file == NULL && o->key_file == NULL && !o->server)
        return 0;
    if (o->cert_file == NULL || o->key_file == NULL) {
        snprintf(err, errlen, "%s and %s go together", cert_opt, key_opt);
        return -1;
    }
    if (SSL_CTX_use_certificate_chain_file(ssl, o->cert_file) != 1)
        return fail_text(err, errlen, cert_opt, o->cert_file);
    SSL_CTX_set_default_passwd_cb(ssl, pass_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ssl, &pa);
    ok = SSL_CTX_use_PrivateKey_file(ssl, o->key_file, SSL_FILETYPE_PEM);
    SSL_CTX_set_default_passwd_cb(ssl, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(ssl, NULL);
    if ((ok != 1 && ERR_GET_REASON(ERR_peek_last_error()) ==
                    X509_R_KEY_VALUES_MISMATCH) ||
        (ok == 1 && SSL_CTX_check_private_key(ssl) != 1)) {
        snprintf(err, errlen, "%s '%s' does not match %s '%s'", key_opt,
                 o->key_file, cert_opt, o->cert_file);
        ERR_clear_error();
        return -1;
    }
    if (ok != 1)
        return fail_text(err, errlen, key_opt, o->key_file);
    return 0;
}

static int load_cas(SSL_CTX *ssl, const struct tls_options *o, char *err,
                    size_t errlen)
{
    if (o->ca_file == NULL && o->ca_dir == NULL) {
        /* redis-cli's default: the system's CAs */
        if (!o->server && SSL_CTX_set_default_verify_paths(ssl) != 1)
            return fail_text(err, errlen, "system CAs", NULL);
        return 0;
    }
    if (SSL_CTX_load_verify_locations(ssl, o->ca_file, o->ca_dir) != 1)
        return fail_text(err, errlen, o->server ? "tls-ca-cert-file/dir" :
                         "tls-cacert", o->ca_file ? o->ca_file : o->ca_dir);
    /* A server names its acceptable CAs in its certificate request. */
    if (o->server && o->ca_file != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ssl, names);
        ERR_clear_error();
    }
    return 0;
}

static int set_ciphers(SSL_CTX *ssl, const struct tls_options *o, char *err,
                       size_t errlen)
{
    if (o->ciphers != NULL && SSL_CTX_set_cipher_list(ssl, o->ciphers) != 1)
        return fail_text(err, errlen, "tls-ciphers", o->ciphers);
    if (o->ciphersuites != NULL &&
        SSL_CTX_set_ciphersuites(ssl, o->ciphersuites) != 1)
        return fail_text(err, errlen, "tls-ciphersuites", o->ciphersuites);
    return 0;
}

static int new_session_cb(SSL *ssl, SSL_SESSION *sess);

static void setup_server(SSL_CTX *ssl, const struct tls_options *o)
{
    static const int verify[] = {
        [TLS_AUTH_CLIENTS_NO] = SSL_VERIFY_NONE,
        [TLS_AUTH_CLIENTS_YES] = SSL_VERIFY_PEER |
                                 SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        [TLS_AUTH_CLIENTS_OPTIONAL] = SSL_VERIFY_PEER,
    };

    SSL_CTX_set_verify(ssl, verify[o->auth_clients], NULL);
    if (o->prefer_server_ciphers)
        SSL_CTX_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (o->session_caching) {
        SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_SERVER);
        if (o->session_cache_size > 0)
            SSL_CTX_sess_set_cache_size(ssl, o->session_cache_size);
        if (o->session_cache_timeout > 0)
            SSL_CTX_set_timeout(ssl, o->session_cache_timeout);
        SSL_CTX_set_session_id_context(ssl, (const unsigned char *)"ringslot",
                                       8);
    } else {
        /* off means off: no cache and no tickets (TLS 1.3 resumes with
         * tickets even without a cache) */
        SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ssl, 0);
    }
}

static void setup_client(struct tls_ctx *ctx, const struct tls_options *o)
{
    SSL_CTX_set_verify(ctx->ssl, o->insecure ? SSL_VERIFY_NONE :
                       SSL_VERIFY_PEER, NULL);
    ctx->check_host = o->check_host && !o->insecure;
    ctx->keep_sessions = o->session_caching;
    if (ctx->keep_sessions) {
        /* sessions are kept per node in ctx->sessions, not in OpenSSL's
         * internal cache (a client's is keyed by nothing useful) */
        SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_CLIENT |
                                       SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx->ssl, new_session_cb);
    } else {
        SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
    }
}

static int configure(struct tls_ctx *ctx, const struct tls_options *o,
                     char *err, size_t errlen)
{
    SSL_CTX *ssl = ctx->ssl;

    /* Renegotiation-free: a peer cannot make a worker redo a handshake.
     * RELEASE_BUFFERS: an idle connection holds no 2 x 17 KB record
     * buffers (10,000 idle clients would pin 340 MB). */
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    if (set_protocols(ssl, o->protocols, err, errlen) != 0 ||
        set_ciphers(ssl, o, err, errlen) != 0 ||
        load_identity(ssl, o, err, errlen) != 0 ||
        load_cas(ssl, o, err, errlen) != 0)
        return -1;
    if (o->server)
        setup_server(ssl, o);
    else
        setup_client(ctx, o);
    return 0;
}

struct tls_ctx *tls_ctx_new(const struct tls_options *o, char *err,
                            size_t errlen)
{
    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

    ERR_clear_error();
    if (ctx == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&ctx->refs, 1);
    ctx->server = o->server;
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->ssl = SSL_CTX_new(o->server ? TLS_server_method() :
                           TLS_client_method());
    if (ctx->ssl == NULL) {
        fail_text(err, errlen, "SSL_CTX_new", NULL);
        tls_ctx_unref(ctx);
        return NULL;
    }
    if (configure(ctx, o, err, errlen) != 0) {
        tls_ctx_unref(ctx);
        return NULL;
    }
    return ctx;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void tls_ctx_unref(struct tls_ctx *ctx)
{
    if (ctx == NULL ||
        atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < CLIENT_SESSIONS; i++)
        SSL_SESSION_free(ctx->sessions[i].sess);
    SSL_CTX_free(ctx->ssl);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/* ---- the reload slot ------------------------------------------------------ */

void tls_slot_init(struct tls_slot *s, struct tls_ctx *ctx)
{
    pthread_mutex_init(&s->lock, NULL);
    s->ctx = ctx;
    s->generation = 0;
}

void tls_slot_destroy(struct tls_slot *s)
{
    tls_ctx_unref(s->ctx);
    s->ctx = NULL;
    pthread_mutex_destroy(&s->lock);
}

struct tls_ctx *tls_slot_get(struct tls_slot *s)
{
    struct tls_ctx *ctx;

    pthread_mutex_lock(&s->lock);
    ctx = s->ctx != NULL ? tls_ctx_ref(s->ctx) : NULL;
    pthread_mutex_unlock(&s->lock);
    return ctx;
}

int tls_slot_reload(struct tls_slot *s, const struct tls_options *o,
                    char *err, size_t errlen)
{
    struct tls_ctx *next = tls_ctx_new(o, err, errlen), *old;

    if (next == NULL)
        return -1;
    pthread_mutex_lock(&s->lock);
    old = s->ctx;
    s->ctx = next;
    s->generation++;
    pthread_mutex_unlock(&s->lock);
    tls_ctx_unref(old); /* freed when its last connection goes */
    return 0;
}

/* ---- client sessions per node --------------------------------------------- */

static struct saved_session *session_slot(struct tls_ctx *ctx, const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const char *p = key; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return &ctx->sessions[h % CLIENT_SESSIONS];
}

/* OpenSSL hands over a new session (after the handshake in TLS 1.2, with
 * each ticket in TLS 1.3); returning 1 keeps its reference. The newest one
 * wins: a slot shared by two nodes holds the last of them. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *c = SSL_get_app_data(ssl);
    struct saved_session *slot;
    SSL_SESSION *old;

    if (c == NULL || c->peer[0] == '\0')
        return 0;
    slot = session_slot(c->ctx, c->peer);
    pthread_mutex_lock(&c->ctx->lock);
    old = slot->sess;
    slot->sess = sess;
    memcpy(slot->key, c->peer, sizeof(slot->key));
    pthread_mutex_unlock(&c->ctx->lock);
    SSL_SESSION_free(old);
    return 1;
}

/* Offer the node's last session, if any. */
static void offer_session(struct tls_conn *c)
{
    struct saved_session *slot = session_slot(c->ctx, c->peer);
    SSL_SESSION *sess = NULL;

    pthread_mutex_lock(&c->ctx->lock);
    if (slot->sess != NULL && strcmp(slot->key, c->peer) == 0) {
        sess = slot->sess;
        SSL_SESSION_up_ref(sess);
    }
    pthread_mutex_unlock(&c->ctx->lock);
    if (sess != NULL) {
        SSL_set_session(c->ssl, sess);
        SSL_SESSION_free(sess);
    }
}

/* A failed handshake may be due to the saved session: do not offer it
 * again. */
static void forget_session(struct tls_conn *c)
{
    struct saved_session *slot;
    SSL_SESSION *old = NULL;

    if (c->ctx->server || c->peer[0] == '\0')
        return;
    slot = session_slot(c->ctx, c->peer);
    pthread_mutex_lock(&c->ctx->lock);
    if (strcmp(slot->key, c->peer) == 0) {
        old = slot->sess;
        slot->sess = NULL;
        slot->key[0] = '\0';
    }
    pthread_mutex_unlock(&c->ctx->lock);
    SSL_SESSION_free(old);
}

/* ---- failures -------------------------------------------------------------- */

static void info_cb(const SSL *ssl, int where, int ret)
{
    struct tls_conn *c = SSL_get_app_data(ssl);

    if (c != NULL && (where & SSL_CB_READ_ALERT) &&
        (ret >> 8) == SSL3_AL_FATAL)
        c->peer_alert = ret & 0xff;
}

static enum tls_fail from_verify(long v)
{
    switch (v) {
    case X509_V_OK:
        return TLS_FAIL_NONE;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return TLS_FAIL_EXPIRED;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return TLS_FAIL_HOSTNAME;
    default: /* no issuer, self-signed, untrusted, bad signature, ... */
        return TLS_FAIL_UNKNOWN_CA;
    }
}

static enum tls_fail from_alert(int alert)
{
    switch (alert) {
    case -1: return TLS_FAIL_NONE;
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_BAD_CERTIFICATE: return TLS_FAIL_UNKNOWN_CA;
    case SSL_AD_CERTIFICATE_EXPIRED: return TLS_FAIL_EXPIRED;
    case SSL_AD_CERTIFICATE_REQUIRED: return TLS_FAIL_NO_CLIENT_CERT;
    case SSL_AD_PROTOCOL_VERSION:
    case SSL_AD_INSUFFICIENT_SECURITY: return TLS_FAIL_PROTOCOL;
    default: return TLS_FAIL_OTHER;
    }
}

static enum tls_fail from_reason(int reason)
{
    switch (reason) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return TLS_FAIL_NO_CLIENT_CERT;
    case SSL_R_WRONG_VERSION_NUMBER: /* the first bytes are no TLS record */
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
        return TLS_FAIL_PLAINTEXT;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return TLS_FAIL_PROTOCOL;
    default:
        return TLS_FAIL_OTHER;
    }
}

/* Go to FAILED after an SSL call failed: classify and keep a log line. */
static void set_failed(struct tls_conn *c)
{
    unsigned long e = ERR_peek_error();
    long v = SSL_get_verify_result(c->ssl);
    enum tls_fail f = TLS_FAIL_NONE;
    char reason[120] = "";

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    if (e != 0 && ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
        f = from_verify(v);
    if (f == TLS_FAIL_NONE)
        f = from_alert(c->peer_alert);
    if (f == TLS_FAIL_NONE || f == TLS_FAIL_OTHER) {
        enum tls_fail r = e != 0 ? from_reason(ERR_GET_REASON(e)) :
                                   TLS_FAIL_OTHER;
        f = f == TLS_FAIL_NONE || r != TLS_FAIL_OTHER ? r : f;
    }
    snprintf(c->error, sizeof(c->error), "%s%s%s",
             reason[0] != '\0' ? reason : "connection failed",
             v != X509_V_OK ? ": " : "",
             v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    ERR_clear_error();
    if (c->state == TLS_HANDSHAKING)
        forget_session(c);
    c->fail = f;
    c->state = TLS_FAILED;
}

/* ---- connections ----------------------------------------------------------- */

static struct tls_conn *conn_new(struct tls_ctx *ctx, uint64_t now_ms)
{
    struct tls_conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->ssl = SSL_new(ctx->ssl);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        SSL_free(c->ssl);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    /* an empty memory BIO reads as "retry", not as end of file */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_app_data(c->ssl, c);
    SSL_set_info_callback(c->ssl, info_cb);
    c->ctx = tls_ctx_ref(ctx);
    c->state = TLS_HANDSHAKING;
    c->started_ms = now_ms;
    c->peer_alert = -1;
    return c;
}

/* Run the handshake as far as the input allows. */
static enum tls_state handshake(struct tls_conn *c)
{
    int rc;

    ERR_clear_error();
    rc = SSL_do_handshake(c->ssl);
    if (rc == 1)
        c->state = TLS_OPEN;
    else if (SSL_get_error(c->ssl, rc) != SSL_ERROR_WANT_READ)
        set_failed(c);
    return c->state;
}

struct tls_conn *tls_conn_accept(struct tls_ctx *ctx, uint64_t now_ms)
{
    struct tls_conn *c = conn_new(ctx, now_ms);

    if (c != NULL)
        SSL_set_accept_state(c->ssl);
    return c;
}

/* Name checks and SNI for host: an IP literal is checked against the
 * certificate's IP SANs and not sent as SNI (RFC 6066). */
static void set_peer_name(struct tls_conn *c, const char *host)
{
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, host, addr) == 1 ||
                 inet_pton(AF_INET6, host, addr) == 1;

    if (!is_ip)
        SSL_set_tlsext_host_name(c->ssl, host);
    if (!c->ctx->check_host)
        return;
    if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
    else
        SSL_set1_host(c->ssl, host);
}

struct tls_conn *tls_conn_connect(struct tls_ctx *ctx, const char *host,
                                  int port, uint64_t now_ms)
{
    struct tls_conn *c = conn_new(ctx, now_ms);

    if (c == NULL)
        return NULL;
    SSL_set_connect_state(c->ssl);
    if (host != NULL && host[0] != '\0') {
        set_peer_name(c, host);
        if (ctx->keep_sessions &&
            snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port) <
            (int)sizeof(c->peer))
            offer_session(c);
        else
            c->peer[0] = '\0';
    }
    handshake(c); /* the ClientHello goes to the output now */
    return c;
}

void tls_conn_free(struct tls_conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl); /* and both BIOs */
    tls_ctx_unref(c->ctx);
    free(c);
}

enum tls_state tls_conn_feed(struct tls_conn *c, const void *buf, size_t len)
{
    if (c->state == TLS_FAILED || len == 0)
        return c->state;
    /* a memory BIO takes all of it (or fails for lack of memory) */
    if (BIO_write(c->rbio, buf, (int)len) != (int)len) {
        snprintf(c->error, sizeof(c->error), "out of memory");
        c->fail = TLS_FAIL_OTHER;
        c->state = TLS_FAILED;
        return c->state;
    }
    return c->state == TLS_HANDSHAKING ? handshake(c) : c->state;
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t cap)
{
    size_t n = 0;
    int rc, e;

    if (c->state == TLS_HANDSHAKING && handshake(c) == TLS_HANDSHAKING)
        return TLS_AGAIN;
    if (c->state == TLS_FAILED)
        return TLS_ERROR;
    if (cap == 0)
        return TLS_AGAIN;
    ERR_clear_error();
    rc = SSL_read_ex(c->ssl, buf, cap, &n);
    if (rc == 1)
        return (ssize_t)n;
    e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return TLS_AGAIN;
    if (e == SSL_ERROR_ZERO_RETURN) { /* the peer's close_notify */
        c->state = TLS_CLOSING;
        return TLS_EOF;
    }
    if (c->state == TLS_CLOSING) /* we closed: the rest is not read */
        return TLS_EOF;
    set_failed(c);
    return TLS_ERROR;
}

ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
    size_t n = 0;
    int rc;

    if (c->state == TLS_HANDSHAKING)
        return TLS_AGAIN;
    if (c->state != TLS_OPEN)
        return TLS_ERROR;
    if (len == 0)
        return 0;
    if (len > TLS_WRITE_MAX)
        len = TLS_WRITE_MAX;
    ERR_clear_error();
    rc = SSL_write_ex(c->ssl, buf, len, &n);
    if (rc == 1)
        return (ssize_t)n;
    set_failed(c);
    return TLS_ERROR;
}

size_t tls_conn_output_pending(const struct tls_conn *c)
{
    return BIO_ctrl_pending(c->wbio);
}

size_t tls_conn_output(struct tls_conn *c, void *buf, size_t cap)
{
    size_t n = 0;

    if (cap == 0 || BIO_ctrl_pending(c->wbio) == 0)
        return 0;
    if (BIO_read_ex(c->wbio, buf, cap, &n) != 1)
        return 0;
    return n;
}

void tls_conn_close(struct tls_conn *c)
{
    if (c->state == TLS_FAILED || c->state == TLS_HANDSHAKING) {
        if (c->state == TLS_HANDSHAKING) /* nothing to notify yet */
            c->state = TLS_CLOSING;
        return;
    }
    /* OPEN, or CLOSING after the peer's close_notify: answer it once */
    if (!(SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(c->ssl); /* close_notify into the output */
        ERR_clear_error();
    }
    c->state = TLS_CLOSING;
}

enum tls_state tls_conn_state(const struct tls_conn *c)
{
    return c->state;
}

enum tls_fail tls_conn_failure(const struct tls_conn *c)
{
    return c->state == TLS_FAILED ? c->fail : TLS_FAIL_NONE;
}

const char *tls_conn_error(const struct tls_conn *c)
{
    return c->error;
}

bool tls_conn_handshake_expired(const struct tls_conn *c, uint64_t now_ms,
                                uint64_t timeout_ms)
{
    return c->state == TLS_HANDSHAKING && now_ms >= c->started_ms &&
           now_ms - c->started_ms >= timeout_ms;
}

void tls_conn_timeout(struct tls_conn *c)
{
    if (c->state != TLS_HANDSHAKING)
        return;
    snprintf(c->error, sizeof(c->error), "handshake timed out");
    c->fail = TLS_FAIL_TIMEOUT;
    c->state = TLS_FAILED;
}

bool tls_conn_resumed(const struct tls_conn *c)
{
    return c->state != TLS_HANDSHAKING && SSL_session_reused(c->ssl);
}

const char *tls_conn_version(const struct tls_conn *c)
{
    return c->state == TLS_HANDSHAKING ? "" : SSL_get_version(c->ssl);
}

const char *tls_conn_cipher(const struct tls_conn *c)
{
    const char *name;

    if (c->state == TLS_HANDSHAKING)
        return "";
    name = SSL_get_cipher_name(c->ssl);
    return name != NULL ? name : "";
}

struct tls_ctx *tls_conn_ctx(const struct tls_conn *c)
{
    return c->ctx;
}
