/*
 * consensus/cport.c — the cluster port: RESP over TCP, password first.
 *
 *   AUTH [user] <password>        required before anything else (unless the
 *                                 cluster password was explicitly "")
 *   PING | QUIT
 *   RINGSLOT HEARTBEAT <name> <id> <ip> <port> <cport>
 *                                 follower → leader; also how a proxy joins.
 *                                 → [leader-id, term, version] of the
 *                                 leader's map, or -NOTLEADER
 *   RINGSLOT LEAVE <name> <id> <ip> <port> <cport>
 *                                 graceful leave; same reply
 *   RINGSLOT PROBE <leader-id> <term> <version>
 *                                 leader → member: → [id, term, version]
 *   RINGSLOT GETMAP               → this proxy's map, text form (bulk)
 *   PROXY CLUSTER MEMBERS|LEADER|MAP   for operators
 *
 * Non-blocking; bounded connections and input per connection.
 *
 * Strangers never crowd out members: a connection that has not run a
 * command authenticated is "unproven". Unproven connections are at most
 * SCONN_UNAUTH_MAX, may buffer only SCONN_UNAUTH_IN bytes, and are closed
 * after auth_window_ms; a new connection closes the oldest unproven one
 * when that cap is reached or no place is free, so the newest — a member's
 * reconnect — always gets in. Only proven connections (members, operators
 * with the password) can ever refuse a newcomer, by holding every place.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "node.h"

int cport_listen(struct consensus *c, char *err, size_t errlen)
{
    const struct config *cfg = c->cfg;
    const char *bind_ip = cfg->nbinds ? cfg->binds[0] : "0.0.0.0";
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bind_ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)cfg->cport);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, bind_ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)cfg->cport);
        sl = sizeof *s6;
    } else {
        snprintf(err, errlen, "cport: cannot bind to '%s'", bind_ip);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
        snprintf(err, errlen, "Could not listen on cluster port %d: %s", cfg->cport,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    c->listen_fd = fd;
    return 0;
}

static void sconn_free(struct consensus *c, int i)
{
    struct sconn *s = c->conns[i];
    if (s->tls)
        c->hooks.stream->close(s->tls, s->fd);
    close(s->fd);
    free(s->in);
    resp_buf_free(&s->out);
    resp_req_free(&s->parser);
    free(s);
    c->conns[i] = NULL;
}

void cport_close_all(struct consensus *c)
{
    for (int i = 0; i < SCONN_MAX; i++)
        if (c->conns[i])
            sconn_free(c, i);
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    c->listen_fd = -1;
}

/*
 * How long a connection may stay unproven. A member sends AUTH and its
 * heartbeat in its first write, so one round trip is all it needs; a
 * stranger gets two heartbeat intervals, kept within 1–2 s.
 */
static int64_t auth_window_ms(const struct consensus *c)
{
    int64_t ms = 2 * (int64_t)c->hb_ms;
    return ms < 1000 ? 1000 : ms > 2000 ? 2000 : ms;
}

/* Make room for one more unproven connection: when SCONN_UNAUTH_MAX are
 * open, or no place is free, close the oldest (earliest deadline). */
static void evict_unproven(struct consensus *c)
{
    int n = 0, used = 0, oldest = -1;
    for (int i = 0; i < SCONN_MAX; i++) {
        const struct sconn *s = c->conns[i];
        used += s != NULL;
        if (!s || !s->auth_deadline)
            continue;
        n++;
        if (oldest < 0 || s->auth_deadline < c->conns[oldest]->auth_deadline)
            oldest = i;
    }
    if (n >= SCONN_UNAUTH_MAX || (n > 0 && used == SCONN_MAX))
        sconn_free(c, oldest);
}

/* Called after this iteration's connections were handled: eviction frees
 * sconns, so no pollset entry may still point at them. */
void cport_accept(struct consensus *c)
{
    for (;;) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        evict_unproven(c);
        int i = 0;
        while (i < SCONN_MAX && c->conns[i])
            i++;
        struct sconn *s = i < SCONN_MAX ? calloc(1, sizeof *s) : NULL;
        const struct consensus_stream *st = c->hooks.stream;
        if (s && st && st->server(c->hooks.arg, fd, &s->tls) < 0) {
            free(s);
            s = NULL;
        }
        if (!s) { /* every place is a proven connection's */
            close(fd);
            continue;
        }
        s->fd = fd;
        s->poll_index = -1;
        s->authed = c->cfg->cluster_password[0] == '\0';
        s->auth_deadline = consensus_clock_ms() + auth_window_ms(c);
        resp_req_init(&s->parser);
        s->parser.max_bulk = 1 << 20;
        s->parser.max_query = SCONN_MAX_IN;
        c->conns[i] = s;
    }
}

short cport_events(struct consensus *c, const struct sconn *s)
{
    short want = (short)((s->closing ? 0 : POLLIN) | (s->out_off < s->out.len ? POLLOUT : 0));
    return consensus_events(c, s->tls, want);
}

static bool arg_is(const char *a, size_t len, const char *s)
{
    return len == strlen(s) && strncasecmp(a, s, len) == 0;
}

/* Copy argument i into out (NUL-terminated); false if it does not fit. */
static bool arg_copy(const struct sconn *s, size_t i, char *out, size_t cap)
{
    const char *a = resp_req_arg(&s->parser, s->in, i);
    size_t len = s->parser.argv[i].len;
    if (len >= cap)
        return false;
    memcpy(out, a, len);
    out[len] = '\0';
    return true;
}

static bool arg_u64(const struct sconn *s, size_t i, unsigned long long *v)
{
    char tmp[32];
    char *end;
    if (!arg_copy(s, i, tmp, sizeof tmp) || !tmp[0])
        return false;
    *v = strtoull(tmp, &end, 10);
    return *end == '\0';
}

static bool password_ok(struct consensus *c, const struct sconn *s)
{
    size_t argc = s->parser.argc;
    const char *pw = c->cfg->cluster_password;
    size_t i = argc == 3 ? 2 : 1;
    if (argc == 3 && !arg_is(resp_req_arg(&s->parser, s->in, 1), s->parser.argv[1].len,
                             "default"))
        return false;
    return s->parser.argv[i].len == strlen(pw) &&
           memcmp(resp_req_arg(&s->parser, s->in, i), pw, strlen(pw)) == 0;
}

/* RINGSLOT HEARTBEAT|LEAVE <name> <id> <ip> <port> <cport> */
static void cmd_heartbeat(struct consensus *c, struct sconn *s, bool leaving)
{
    struct proxy_member m = {0};
    char name[sizeof c->cfg->cluster_name];
    unsigned long long port, cport;
    if (s->parser.argc != 7 || !arg_copy(s, 2, name, sizeof name) ||
        !arg_copy(s, 3, m.id, sizeof m.id) || !proxy_id_valid(m.id, strlen(m.id)) ||
        !arg_copy(s, 4, m.ip, sizeof m.ip) || !arg_u64(s, 5, &port) || port > 65535 ||
        !arg_u64(s, 6, &cport) || cport == 0 || cport > 65535) {
        resp_write_error(&s->out, "ERR malformed RINGSLOT HEARTBEAT");
        return;
    }
    if (strcmp(name, c->cfg->cluster_name) != 0) {
        resp_write_error(&s->out, "ERR wrong cluster name");
        return;
    }
    m.port = (uint16_t)port;
    m.cport = (uint16_t)cport;
    node_on_heartbeat(c, &m, leaving, &s->out);
}

static void cmd_probe(struct consensus *c, struct sconn *s)
{
    unsigned long long term, version;
    if (s->parser.argc != 5 || !arg_u64(s, 3, &term) || !arg_u64(s, 4, &version)) {
        resp_write_error(&s->out, "ERR malformed RINGSLOT PROBE");
        return;
    }
    if (term > c->map->term || (term == c->map->term && version > c->map->version))
        c->next_hb_ms = 0; /* pull the newer map on our next turn */
    resp_write_array_head(&s->out, 3);
    resp_write_bulk(&s->out, c->me.id, strlen(c->me.id));
    resp_write_integer(&s->out, (long long)c->map->term);
    resp_write_integer(&s->out, (long long)c->map->version);
}

static void write_map(struct consensus *c, struct resp_buf *out)
{
    struct resp_buf t = {0};
    proxy_map_encode(c->map, &t);
    resp_write_bulk(out, t.data, t.len);
    resp_buf_free(&t);
}

static void cmd_proxy_cluster(struct consensus *c, struct sconn *s)
{
    const char *a = resp_req_arg(&s->parser, s->in, 2);
    size_t len = s->parser.argv[2].len;
    if (arg_is(a, len, "members")) {
        node_write_members(c, &s->out);
    } else if (arg_is(a, len, "leader")) {
        if (c->leader_known)
            resp_write_bulk(&s->out, c->leader_value, strlen(c->leader_value));
        else
            resp_write_null(&s->out, 2);
    } else if (arg_is(a, len, "map")) {
        write_map(c, &s->out);
    } else {
        resp_write_error(&s->out, "ERR PROXY CLUSTER MEMBERS|LEADER|MAP");
    }
}

static void dispatch(struct consensus *c, struct sconn *s)
{
    size_t argc = s->parser.argc;
    const char *a0 = resp_req_arg(&s->parser, s->in, 0);
    size_t l0 = s->parser.argv[0].len;
    const char *a1 = argc > 1 ? resp_req_arg(&s->parser, s->in, 1) : "";
    size_t l1 = argc > 1 ? s->parser.argv[1].len : 0;
    if (arg_is(a0, l0, "auth") && (argc == 2 || argc == 3)) {
        s->authed = password_ok(c, s);
        if (s->authed)
            resp_write_simple(&s->out, "OK");
        else
            resp_write_error(&s->out, "WRONGPASS invalid username-password pair or user is disabled.");
    } else if (arg_is(a0, l0, "quit")) {
        resp_write_simple(&s->out, "OK");
        s->closing = true;
    } else if (!s->authed) {
        resp_write_error(&s->out, "NOAUTH Authentication required.");
    } else if (arg_is(a0, l0, "ping")) {
        resp_write_simple(&s->out, "PONG");
    } else if (arg_is(a0, l0, "ringslot") && arg_is(a1, l1, "heartbeat")) {
        cmd_heartbeat(c, s, false);
    } else if (arg_is(a0, l0, "ringslot") && arg_is(a1, l1, "leave")) {
        cmd_heartbeat(c, s, true);
    } else if (arg_is(a0, l0, "ringslot") && arg_is(a1, l1, "probe")) {
        cmd_probe(c, s);
    } else if (arg_is(a0, l0, "ringslot") && arg_is(a1, l1, "getmap")) {
        write_map(c, &s->out);
    } else if (arg_is(a0, l0, "proxy") && arg_is(a1, l1, "cluster") && argc == 3) {
        cmd_proxy_cluster(c, s);
    } else {
        resp_write_error(&s->out, "ERR unknown command on the cluster port");
    }
}

/* Cut and answer every complete command in s->in. false: close now. */
static bool process_input(struct consensus *c, struct sconn *s)
{
    size_t off = 0;
    while (off < s->in_len && !s->closing) {
        enum resp_result r = resp_parse_request(&s->parser, s->in + off, s->in_len - off);
        if (r == RESP_NEED_MORE)
            break;
        if (r == RESP_ERROR) {
            resp_write_error(&s->out, s->parser.error);
            s->closing = true;
            break;
        }
        if (s->parser.argc > 0) {
            char *saved = s->in;
            s->in += off; /* resp_req_arg indexes from the command start */
            dispatch(c, s);
            s->in = saved;
            if (s->authed)
                s->auth_deadline = 0; /* proven */
        }
        off += s->parser.len;
        resp_req_next(&s->parser);
    }
    memmove(s->in, s->in + off, s->in_len - off);
    s->in_len -= off;
    return true;
}

static bool read_input(struct consensus *c, struct sconn *s)
{
    for (;;) {
        size_t max = s->auth_deadline ? SCONN_UNAUTH_IN : SCONN_MAX_IN;
        ssize_t n = consensus_recv_more(c, s->tls, s->fd, &s->in, &s->in_len, &s->in_cap, max);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        if (!process_input(c, s))
            return false;
    }
}

static bool write_output(struct consensus *c, struct sconn *s)
{
    while (s->out_off < s->out.len) {
        ssize_t n = consensus_send(c, s->tls, s->fd, s->out.data + s->out_off,
                                   s->out.len - s->out_off);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        s->out_off += (size_t)n;
    }
    s->out.len = s->out_off = 0;
    /* the stream's own bytes (handshake, the rest of a record) */
    return !s->tls || consensus_send(c, s->tls, s->fd, NULL, 0) == 0;
}

void cport_check_deadlines(struct consensus *c, int64_t now)
{
    for (int i = 0; i < SCONN_MAX; i++)
        if (c->conns[i] && c->conns[i]->auth_deadline && now >= c->conns[i]->auth_deadline)
            sconn_free(c, i);
}

void cport_handle(struct consensus *c, struct sconn *s, short revents)
{
    int i = 0;
    while (i < SCONN_MAX && c->conns[i] != s)
        i++;
    if (i == SCONN_MAX)
        return;
    bool ok = true;
    if (revents & (POLLIN | POLLHUP | POLLERR))
        ok = read_input(c, s);
    if (ok)
        ok = write_output(c, s);
    if (!ok || (s->closing && s->out_off == s->out.len))
        sconn_free(c, i);
}
