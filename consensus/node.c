/*
 * consensus/node.c — the consensus thread: lease, membership, map.
 *
 *   every lease tick (min(heartbeat, lease/4)):
 *     follower: GET {ringslot:<name>}:leader
 *                 nil ─► ELECT script (SET NX PX, term = max(INCR, seen)+1)
 *                 ours but stale (restart) ─► RELEASE it, elect next tick
 *     leader:   RENEW script (compare-and-extend); STORE the map (compare-
 *               and-set on the lease value = (leader, term)) when changed
 *   every heartbeat:
 *     follower: HEARTBEAT (or LEAVE) to the leader's cport; a newer
 *               (term, version) in the reply ─► GETMAP ─► accept if newer
 *     leader:   PROBE every member in parallel; a member silent for
 *               --proxy-node-timeout is removed; joins/leaves/removals
 *               recompute the map (proxy_map_assign + defrag), publish it,
 *               store it
 *   a leader whose last good renewal was sent more than 3/4 of the lease
 *   ago steps down (its lease may be about to expire elsewhere).
 *
 * The lease store is --lease-redis, or the backend cluster: commands go to
 * an entry point and follow -MOVED to the master of the keys' slot (all
 * keys share the {ringslot:<name>} hash tag).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "node.h"

enum tag {
    TAG_GET_LEADER, TAG_ELECT, TAG_RENEW, TAG_GET_MAP, TAG_STORE_MAP, TAG_RELEASE,
    TAG_STALE_RELEASE, TAG_HEARTBEAT, TAG_PULL_MAP, TAG_PROBE, TAG_SEED_LEADER, TAG_SEED_MAP,
};

static const char ELECT_LUA[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur then return {0, cur} end\n"
    "local t = redis.call('INCR', KEYS[2])\n"
    "local seen = tonumber(ARGV[2])\n"
    "if seen > t then t = seen end\n"
    "t = t + 1\n"
    "redis.call('SET', KEYS[2], string.format('%d', t))\n"
    "local v = ARGV[1] .. ' ' .. string.format('%d', t) .. ' ' .. ARGV[3]\n"
    "redis.call('SET', KEYS[1], v, 'NX', 'PX', ARGV[4])\n"
    "return {1, v}\n";
static const char RENEW_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "end\n"
    "return 0\n";
static const char STORE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('SET', KEYS[2], ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";
static const char RELEASE_LUA[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

static void node_log(struct consensus *c, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void node_log(struct consensus *c, enum log_level level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    if (!c->hooks.log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->hooks.log(c->hooks.arg, level, msg);
}

/* ------------------------------------------------------------------------ */
/* The map                                                                   */

static void note_map(struct consensus *c, const struct proxy_map *m)
{
    if (m->term > c->max_term_seen)
        c->max_term_seen = m->term;
    if (m->version > c->max_version_seen)
        c->max_version_seen = m->version;
}

/* Take ownership of m as the current map and publish a copy. */
static void install_map(struct consensus *c, struct proxy_map *m)
{
    proxy_map_set_self(m, &c->me);
    note_map(c, m);
    proxy_map_free(c->map);
    c->map = m;
    struct proxy_map *pub = proxy_map_dup(m);
    if (pub && c->hooks.publish)
        c->hooks.publish(c->hooks.arg, pub);
    else
        proxy_map_free(pub);
    node_log(c, LOG_INFO, "cluster map term %llu version %llu: %zu proxies, %u slots here",
         (unsigned long long)m->term, (unsigned long long)m->version, m->nmembers,
         m->self >= 0 ? proxy_map_count(m, (unsigned)m->self) : 0);
}

void node_accept_map(struct consensus *c, const struct proxy_map *m)
{
    if (!proxy_map_newer(m, c->map))
        return;
    struct proxy_map *copy = proxy_map_dup(m);
    if (copy)
        install_map(c, copy);
}

/* Leader: recompute the map for the live members and publish it. */
static void leader_recompute(struct consensus *c)
{
    struct proxy_member live[PROXY_MAP_MAX_MEMBERS];
    size_t n = 0;
    if (!c->leaving)
        live[n++] = c->me;
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS && n < PROXY_MAP_MAX_MEMBERS; i++)
        if (c->members[i].used)
            live[n++] = c->members[i].info;
    if (n == 0)
        return;
    struct proxy_map *m = malloc(sizeof *m);
    if (!m)
        return;
    int moved = proxy_map_assign(c->map, live, n, m);
    if (moved < 0) {
        proxy_map_free(m);
        return;
    }
    int extra = proxy_map_defrag(m, PROXY_MAP_RANGE_LIMIT(n), PROXY_MAP_DEFRAG_BUDGET(n));
    m->term = c->term;
    m->version = (c->map->version > c->max_version_seen ? c->map->version
                                                        : c->max_version_seen) + 1;
    node_log(c, LOG_INFO, "leader: %zu proxies, %d slots moved (+%d defragmenting)", n, moved,
         extra > 0 ? extra : 0);
    install_map(c, m);
    c->map_stored_dirty = true;
}

/* ------------------------------------------------------------------------ */
/* Members (leader)                                                          */

static struct member_state *member_find(struct consensus *c, const char *id)
{
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS; i++)
        if (c->members[i].used && strcmp(c->members[i].info.id, id) == 0)
            return &c->members[i];
    return NULL;
}

static void on_reply(struct consensus *c, struct rconn *rc, int tag, const struct resp_value *v);

static struct member_state *member_add(struct consensus *c, const struct proxy_member *m,
                                       int64_t seen)
{
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS; i++) {
        struct member_state *ms = &c->members[i];
        if (ms->used)
            continue;
        memset(ms, 0, sizeof *ms);
        ms->used = true;
        ms->info = *m;
        ms->last_seen = seen;
        int timeout = c->hb_ms < 200 ? 200 : c->hb_ms;
        rconn_init(&ms->probe, on_reply, ms, timeout);
        ms->probe.pass = c->cfg->cluster_password;
        rconn_target(&ms->probe, m->ip, m->cport);
        return ms;
    }
    return NULL;
}

static void member_remove(struct consensus *c, struct member_state *ms)
{
    ms->used = false; /* first: the close callbacks then see it gone */
    rconn_close(c, &ms->probe);
    resp_buf_free(&ms->probe.out);
    free(ms->probe.in);
    ms->probe.in = NULL;
    ms->probe.in_cap = 0;
}

static void members_clear(struct consensus *c)
{
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS; i++)
        if (c->members[i].used)
            member_remove(c, &c->members[i]);
}

static void write_leader_reply(struct consensus *c, struct resp_buf *out)
{
    resp_write_array_head(out, 3);
    resp_write_bulk(out, c->me.id, strlen(c->me.id));
    resp_write_integer(out, (long long)c->map->term);
    resp_write_integer(out, (long long)c->map->version);
}

void node_on_heartbeat(struct consensus *c, const struct proxy_member *m, bool leaving,
                       struct resp_buf *out)
{
    if (c->role != ROLE_LEADER || !c->leader_ready) {
        resp_write_error(out, "NOTLEADER");
        return;
    }
    if (c->leaving) { /* members still pull our last map; nobody joins */
        write_leader_reply(c, out);
        return;
    }
    if (strcmp(m->id, c->me.id) == 0) {
        resp_write_error(out, "ERR that is my own node id");
        return;
    }
    struct member_state *ms = member_find(c, m->id);
    int64_t now = consensus_clock_ms();
    if (leaving) {
        if (ms) {
            node_log(c, LOG_INFO, "leader: proxy %.8s %s:%u leaves", m->id, m->ip, m->port);
            member_remove(c, ms);
            leader_recompute(c);
        }
    } else if (!ms) {
        if (member_add(c, m, now)) {
            node_log(c, LOG_INFO, "leader: proxy %.8s %s:%u joins", m->id, m->ip, m->port);
            leader_recompute(c);
        }
    } else {
        ms->last_seen = now;
        if (memcmp(&ms->info, m, sizeof *m) != 0) {
            ms->info = *m;
            rconn_close(c, &ms->probe);
            rconn_target(&ms->probe, m->ip, m->cport);
            leader_recompute(c);
        }
    }
    write_leader_reply(c, out);
}

void node_write_members(struct consensus *c, struct resp_buf *out)
{
    const struct proxy_map *m = c->map;
    int64_t now = consensus_clock_ms();
    resp_write_array_head(out, (long long)m->nmembers);
    for (size_t i = 0; i < m->nmembers; i++) {
        const struct proxy_member *p = &m->members[i];
        bool leader = c->leader_known && strcmp(p->id, c->leader_id) == 0;
        char line[256];
        int n = snprintf(line, sizeof line, "%s %s:%u@%u %s%s slots=%u ranges=%u", p->id,
                         p->ip, p->port, p->cport, leader ? "leader" : "follower",
                         (int)i == m->self ? ",myself" : "",
                         proxy_map_count(m, (unsigned)i), proxy_map_member_ranges(m, (unsigned)i));
        struct member_state *ms = c->role == ROLE_LEADER ? member_find(c, p->id) : NULL;
        if (ms)
            n += snprintf(line + n, sizeof line - (size_t)n, " seen_ms_ago=%lld",
                          (long long)(now - ms->last_seen));
        resp_write_bulk(out, line, (size_t)n);
    }
}

/* ------------------------------------------------------------------------ */
/* Lease store                                                               */

static void lease_retarget_default(struct consensus *c)
{
    const struct config *cfg = c->cfg;
    if (cfg->lease_redis.set) {
        rconn_target(&c->lease, cfg->lease_redis.addr.host, cfg->lease_redis.addr.port);
        return;
    }
    const struct entry_point *ep = &cfg->entry_points[c->entry_index % cfg->nentry_points];
    c->entry_index++;
    rconn_target(&c->lease, ep->host, ep->port);
}

static void lease_cmd(struct consensus *c, int tag, int argc, const char **argv)
{
    if (rconn_send(c, &c->lease, tag, argc, argv)) {
        c->lease_busy = true;
        return;
    }
    lease_retarget_default(c);
}

static void eval(struct consensus *c, int tag, const char *script, const char *k2,
                 const char *a1, const char *a2, const char *a3, const char *a4)
{
    const char *argv[10] = {"EVAL", script, k2 ? "2" : "1", c->key_leader};
    int n = 4;
    if (k2)
        argv[n++] = k2;
    argv[n++] = a1;
    if (a2)
        argv[n++] = a2;
    if (a3)
        argv[n++] = a3;
    if (a4)
        argv[n++] = a4;
    lease_cmd(c, tag, n, argv);
}

static void parse_leader_value(struct consensus *c, const char *v, size_t len)
{
    char buf[256], id[PROXY_ID_LEN + 1] = "", host[PROXY_IP_MAX] = "";
    unsigned long long term = 0;
    int cport = 0, at = 0;
    if (len >= sizeof buf)
        return;
    memcpy(buf, v, len);
    buf[len] = '\0';
    /* "<id> <term> <ip>:<cport>", the ip bare even when it is IPv6 */
    if (sscanf(buf, "%40s %llu %n", id, &term, &at) != 2 || at == 0 ||
        !proxy_id_valid(id, strlen(id)) ||
        !cluster_addr_split(buf + at, host, sizeof host, &cport))
        return;
    if (!c->leader_known || strlen(c->leader_value) != len ||
        memcmp(c->leader_value, v, len) != 0) {
        snprintf(c->leader_value, sizeof c->leader_value, "%.*s", (int)len, v);
        node_log(c, LOG_INFO, "leader is %.8s (term %llu) at %s:%d", id, term, host, cport);
    }
    c->leader_known = true;
    memcpy(c->leader_id, id, sizeof id);
    if (strcmp(id, c->me.id) != 0) /* leader_start ages it by our last contact */
        memcpy(c->prev_leader_id, id, sizeof id);
    snprintf(c->leader_host, sizeof c->leader_host, "%s", host);
    c->leader_cport = cport;
    if (term > c->max_term_seen)
        c->max_term_seen = term;
}

static bool can_campaign(struct consensus *c)
{
    return !c->auth_rejected && !c->leaving && !atomic_load(&c->leave_req) &&
           !atomic_load(&c->left);
}

static void campaign(struct consensus *c)
{
    char seen[32], ttl[32], addr[PROXY_IP_MAX + 16];
    snprintf(seen, sizeof seen, "%llu", (unsigned long long)c->max_term_seen);
    snprintf(ttl, sizeof ttl, "%d", c->lease_ms);
    snprintf(addr, sizeof addr, "%s:%u", c->me.ip, c->me.cport);
    c->renew_sent_ms = consensus_clock_ms();
    eval(c, TAG_ELECT, ELECT_LUA, c->key_term, c->me.id, seen, addr, ttl);
}

static void become_leader(struct consensus *c, const char *value, size_t len)
{
    parse_leader_value(c, value, len);
    c->role = ROLE_LEADER;
    c->leader_ready = false; /* until the stored map is read */
    c->term = c->max_term_seen;
    snprintf(c->lease_value, sizeof c->lease_value, "%.*s", (int)len, value);
    c->renew_ok_sent_ms = c->renew_sent_ms;
    rconn_close(c, &c->to_leader);
    node_log(c, LOG_INFO, "elected leader, term %llu", (unsigned long long)c->term);
    const char *argv[2] = {"GET", c->key_map};
    lease_cmd(c, TAG_GET_MAP, 2, argv);
}

/* The stored map (or nil) arrived: start leading from the newest map. */
static void leader_start(struct consensus *c, const struct resp_value *v)
{
    if (v && v->type == RESP_T_BULK && !v->is_null) {
        struct proxy_map *stored = malloc(sizeof *stored);
        if (stored && proxy_map_decode(v->str, v->len, stored) == 0) {
            note_map(c, stored);
            if (proxy_map_newer(stored, c->map)) {
                proxy_map_set_self(stored, &c->me);
                proxy_map_free(c->map);
                c->map = stored;
                stored = NULL;
            }
        }
        proxy_map_free(stored);
    }
    int64_t now = consensus_clock_ms();
    members_clear(c);
    for (size_t i = 0; i < c->map->nmembers; i++) {
        const struct proxy_member *p = &c->map->members[i];
        if (strcmp(p->id, c->me.id) == 0)
            continue;
        /* the leader we followed: silent since our last contact with it */
        bool old_leader = strcmp(p->id, c->prev_leader_id) == 0 && c->last_leader_contact_ms;
        member_add(c, p, old_leader ? c->last_leader_contact_ms : now);
    }
    snprintf(c->leader_value, sizeof c->leader_value, "%s", c->lease_value);
    memcpy(c->leader_id, c->me.id, sizeof c->leader_id);
    c->leader_ready = true;
    leader_recompute(c);
}

static void step_down(struct consensus *c, const char *why)
{
    if (c->role != ROLE_LEADER)
        return;
    node_log(c, LOG_WARNING, "stepping down as leader: %s", why);
    c->role = ROLE_FOLLOWER;
    c->leader_known = false;
    members_clear(c);
}

static void on_lease_moved(struct consensus *c, const struct resp_value *v)
{
    char addr[300], host[300];
    int port;
    const char *sp = memchr(v->str, ' ', v->len);
    sp = sp ? memchr(sp + 1, ' ', v->len - (size_t)(sp + 1 - v->str)) : NULL;
    if (!sp)
        return;
    size_t alen = v->len - (size_t)(sp + 1 - v->str);
    snprintf(addr, sizeof addr, "%.*s", (int)alen, sp + 1);
    if (!cluster_addr_split(addr, host, sizeof host, &port))
        return;
    rconn_close(c, &c->lease);
    rconn_target(&c->lease, host, port);
    c->next_lease_ms = 0; /* retry at once */
}

static void on_lease_reply(struct consensus *c, int tag, const struct resp_value *v)
{
    if (!c->lease.npend)
        c->lease_busy = false;
    if (!v) {
        if (tag != -1 && c->lease.state == RCONN_CLOSED && !c->cfg->lease_redis.set)
            lease_retarget_default(c);
        return;
    }
    if (v->type == RESP_T_ERROR) {
        if (v->len > 6 && memcmp(v->str, "MOVED ", 6) == 0)
            on_lease_moved(c, v);
        else
            node_log(c, LOG_WARNING, "lease store: %.*s", (int)v->len, v->str);
        return;
    }
    c->lease_ok_ms = consensus_clock_ms();
    switch (tag) {
    case TAG_GET_LEADER:
        if (v->is_null || v->type != RESP_T_BULK) {
            c->leader_known = false;
            if (can_campaign(c))
                campaign(c);
        } else if (v->len > PROXY_ID_LEN && memcmp(v->str, c->me.id, PROXY_ID_LEN) == 0 &&
                   c->role != ROLE_LEADER) {
            /* our own lease from before a restart: free it, elect next tick */
            const char *argv[6] = {"EVAL", RELEASE_LUA, "1", c->key_leader, NULL};
            char val[256];
            snprintf(val, sizeof val, "%.*s", (int)v->len, v->str);
            argv[4] = val;
            lease_cmd(c, TAG_STALE_RELEASE, 5, argv);
            c->next_lease_ms = 0;
        } else {
            parse_leader_value(c, v->str, v->len);
        }
        break;
    case TAG_ELECT:
        if (v->type == RESP_T_ARRAY && v->count == 2 && v->elems[1].type == RESP_T_BULK) {
            if (v->elems[0].integer == 1)
                become_leader(c, v->elems[1].str, v->elems[1].len);
            else
                parse_leader_value(c, v->elems[1].str, v->elems[1].len);
        }
        break;
    case TAG_GET_MAP:
        if (c->role == ROLE_LEADER)
            leader_start(c, v);
        break;
    case TAG_RENEW:
        if (v->type == RESP_T_INTEGER && v->integer == 1)
            c->renew_ok_sent_ms = c->renew_sent_ms;
        else if (v->type == RESP_T_INTEGER)
            step_down(c, "the lease is gone or held by another proxy");
        break;
    case TAG_STORE_MAP:
        if (v->type == RESP_T_INTEGER && v->integer == 1)
            c->map_stored_dirty = false;
        else if (v->type == RESP_T_INTEGER)
            step_down(c, "could not store the map: no longer the lease holder");
        break;
    case TAG_RELEASE:
        c->released = true;
        break;
    default:
        break;
    }
}

static void lease_tick(struct consensus *c, int64_t now)
{
    if (c->lease_busy)
        return;
    if (c->role == ROLE_LEADER) {
        if (c->released)
            return;
        char ttl[32];
        snprintf(ttl, sizeof ttl, "%d", c->lease_ms);
        c->renew_sent_ms = now;
        eval(c, TAG_RENEW, RENEW_LUA, NULL, c->lease_value, ttl, NULL, NULL);
        if (c->map_stored_dirty && c->lease_busy) {
            struct resp_buf enc = {0};
            proxy_map_encode(c->map, &enc);
            resp_buf_append(&enc, "", 1);
            eval(c, TAG_STORE_MAP, STORE_LUA, c->key_map, c->lease_value, enc.data, NULL,
                 NULL);
            resp_buf_free(&enc);
        }
        return;
    }
    const char *argv[2] = {"GET", c->key_leader};
    lease_cmd(c, TAG_GET_LEADER, 2, argv);
}

/* ------------------------------------------------------------------------ */
/* Seeds                                                                     */

/* A RINGSLOT GETMAP reply (the encoded map) from a peer: taken if newer. */
static void accept_map_reply(struct consensus *c, const struct resp_value *v)
{
    struct proxy_map *m = v && v->type == RESP_T_BULK && !v->is_null ? malloc(sizeof *m)
                                                                      : NULL;
    if (m && proxy_map_decode(v->str, v->len, m) == 0)
        node_accept_map(c, m);
    proxy_map_free(m);
}

static bool lease_store_silent(const struct consensus *c, int64_t now)
{
    return now - c->lease_ok_ms > c->lease_ms;
}

/* Follower, every heartbeat interval: with no map yet, or while the lease
 * store does not answer us (others may still reach it), ask a seed who
 * leads and for its map. Only a newer map is taken, so a stale seed cannot
 * set us back; the leader it names must still accept our heartbeats. */
static void seed_tick(struct consensus *c, int64_t now)
{
    const struct config *cfg = c->cfg;
    if (!cfg->ncluster_seeds || c->seed_inflight || atomic_load(&c->left))
        return;
    if (c->map->version != 0 && !lease_store_silent(c, now))
        return;
    const struct entry_point *seed = &cfg->cluster_seeds[c->seed_index % cfg->ncluster_seeds];
    if (strcmp(c->to_seed.host, seed->host) != 0 || c->to_seed.port != seed->port) {
        rconn_close(c, &c->to_seed);
        rconn_target(&c->to_seed, seed->host, seed->port);
    }
    const char *leader[3] = {"PROXY", "CLUSTER", "LEADER"};
    const char *getmap[2] = {"RINGSLOT", "GETMAP"};
    if (!rconn_send(c, &c->to_seed, TAG_SEED_LEADER, 3, leader)) {
        c->seed_index++;
        return;
    }
    c->seed_inflight = true;
    if (!rconn_send(c, &c->to_seed, TAG_SEED_MAP, 2, getmap))
        rconn_close(c, &c->to_seed); /* fails both: the next seed next time */
}

static void on_seed_reply(struct consensus *c, int tag, const struct resp_value *v)
{
    if (tag == TAG_SEED_MAP)
        c->seed_inflight = false;
    if (!v || v->type == RESP_T_ERROR) {
        if (tag == TAG_SEED_LEADER)
            c->seed_index++; /* unreachable or refused: try the next seed */
        if (v)
            node_log(c, LOG_WARNING, "cluster seed %s:%d: %.*s", c->to_seed.host,
                     c->to_seed.port, (int)v->len, v->str);
        return;
    }
    int64_t now = consensus_clock_ms();
    if (tag == TAG_SEED_LEADER && v->type == RESP_T_BULK && !v->is_null &&
        (!c->leader_known || lease_store_silent(c, now)))
        parse_leader_value(c, v->str, v->len);
    if (tag == TAG_SEED_MAP)
        accept_map_reply(c, v);
}

/* ------------------------------------------------------------------------ */
/* Heartbeats                                                                */

static void on_peer_reply(struct consensus *c, struct rconn *rc, int tag,
                          const struct resp_value *v)
{
    if (tag == -1) {
        bool refused = v && v->type == RESP_T_ERROR;
        if (refused && !c->auth_rejected && rc == &c->to_leader)
            node_log(c, LOG_WARNING, "the leader refused our cluster password: %.*s",
                 (int)v->len, v->str);
        if (rc == &c->to_leader && v)
            c->auth_rejected = refused;
        return;
    }
    if (tag == TAG_HEARTBEAT) {
        c->hb_inflight = false;
        if (!v || v->type != RESP_T_ARRAY || v->count != 3)
            return;
        c->last_leader_contact_ms = consensus_clock_ms();
        uint64_t term = (uint64_t)v->elems[1].integer;
        uint64_t version = (uint64_t)v->elems[2].integer;
        bool newer = term > c->map->term || (term == c->map->term && version > c->map->version);
        if (newer && !c->getmap_inflight) {
            const char *argv[2] = {"RINGSLOT", "GETMAP"};
            c->getmap_inflight = rconn_send(c, rc, TAG_PULL_MAP, 2, argv);
        }
        return;
    }
    if (tag == TAG_PULL_MAP) {
        c->getmap_inflight = false;
        accept_map_reply(c, v);
        return;
    }
    if (tag == TAG_SEED_LEADER || tag == TAG_SEED_MAP) {
        on_seed_reply(c, tag, v);
        return;
    }
    if (tag == TAG_PROBE) {
        struct member_state *ms = rc->owner;
        if (!ms || !ms->used || !v || v->type != RESP_T_ARRAY || v->count != 3)
            return;
        ms->last_seen = consensus_clock_ms();
        ms->acked_term = (uint64_t)v->elems[1].integer;
        ms->acked_version = (uint64_t)v->elems[2].integer;
    }
}

static void on_reply(struct consensus *c, struct rconn *rc, int tag, const struct resp_value *v)
{
    if (rc == &c->lease)
        on_lease_reply(c, tag, v);
    else
        on_peer_reply(c, rc, tag, v);
}

static void follower_tick(struct consensus *c)
{
    if (!c->leader_known || strcmp(c->leader_id, c->me.id) == 0 || atomic_load(&c->left))
        return;
    if (strcmp(c->to_leader.host, c->leader_host) != 0 || c->to_leader.port != c->leader_cport) {
        rconn_close(c, &c->to_leader);
        rconn_target(&c->to_leader, c->leader_host, c->leader_cport);
    }
    if (c->hb_inflight)
        return;
    char port[16], cport[16];
    snprintf(port, sizeof port, "%u", c->me.port);
    snprintf(cport, sizeof cport, "%u", c->me.cport);
    const char *argv[7] = {"RINGSLOT", atomic_load(&c->leave_req) ? "LEAVE" : "HEARTBEAT",
                           c->cfg->cluster_name, c->me.id, c->me.ip, port, cport};
    c->hb_inflight = rconn_send(c, &c->to_leader, TAG_HEARTBEAT, 7, argv);
}

static void leader_tick(struct consensus *c, int64_t now)
{
    bool changed = false;
    char term[32], version[32];
    snprintf(term, sizeof term, "%llu", (unsigned long long)c->map->term);
    snprintf(version, sizeof version, "%llu", (unsigned long long)c->map->version);
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS; i++) {
        struct member_state *ms = &c->members[i];
        if (!ms->used)
            continue;
        if (now - ms->last_seen > c->node_timeout_ms) {
            node_log(c, LOG_WARNING, "leader: proxy %.8s %s:%u silent for %lld ms, removed",
                 ms->info.id, ms->info.ip, ms->info.port, (long long)(now - ms->last_seen));
            member_remove(c, ms);
            changed = true;
            continue;
        }
        if (rconn_idle(&ms->probe)) {
            const char *argv[5] = {"RINGSLOT", "PROBE", c->me.id, term, version};
            rconn_send(c, &ms->probe, TAG_PROBE, 5, argv);
        }
    }
    if (changed)
        leader_recompute(c);
}

/* A leaving leader: once the members have our last map (or after a bound),
 * release the lease so a successor is elected at once. */
static void leader_leave_tick(struct consensus *c, int64_t now)
{
    bool all_acked = !c->map_stored_dirty;
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS; i++) {
        struct member_state *ms = &c->members[i];
        if (ms->used && (ms->acked_term != c->map->term || ms->acked_version != c->map->version))
            all_acked = false;
    }
    if (c->released) {
        c->role = ROLE_FOLLOWER;
        c->leader_known = false;
        members_clear(c);
        atomic_store(&c->left, true);
        node_log(c, LOG_INFO, "left the cluster (lease released)");
        return;
    }
    if ((all_acked || now - c->leave_started_ms > 4 * c->hb_ms + 1000) && !c->lease_busy) {
        const char *argv[5] = {"EVAL", RELEASE_LUA, "1", c->key_leader, c->lease_value};
        lease_cmd(c, TAG_RELEASE, 5, argv);
    }
}

static void leave_tick(struct consensus *c, int64_t now)
{
    if (atomic_load(&c->left))
        return;
    if (c->role == ROLE_LEADER && !c->leaving) {
        c->leaving = true;
        c->leave_started_ms = now;
        leader_recompute(c);
    }
    if (c->role == ROLE_LEADER) {
        leader_leave_tick(c, now);
    } else if (c->map->self < 0 && c->map->term > 0) {
        atomic_store(&c->left, true);
        node_log(c, LOG_INFO, "left the cluster: map version %llu no longer lists us",
             (unsigned long long)c->map->version);
    }
}

/* ------------------------------------------------------------------------ */
/* The loop                                                                  */

#define MAX_POLL (4 + SCONN_MAX + PROXY_MAP_MAX_MEMBERS)

struct pollset {
    struct pollfd fds[MAX_POLL];
    struct rconn *rcs[MAX_POLL];
    struct sconn *scs[MAX_POLL];
    int n;
};

static void add_rconn(struct consensus *c, struct pollset *ps, struct rconn *rc)
{
    short ev = rconn_events(rc);
    if (ev && rc->state == RCONN_READY)
        ev = consensus_events(c, rc->tls, ev);
    if (!ev)
        return;
    ps->fds[ps->n] = (struct pollfd){.fd = rc->fd, .events = ev};
    ps->rcs[ps->n] = rc;
    ps->scs[ps->n++] = NULL;
}

static void build_pollset(struct consensus *c, struct pollset *ps)
{
    ps->n = 0;
    ps->fds[ps->n] = (struct pollfd){.fd = c->wake_fd, .events = POLLIN};
    ps->rcs[ps->n] = NULL;
    ps->scs[ps->n++] = NULL;
    ps->fds[ps->n] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
    ps->rcs[ps->n] = NULL;
    ps->scs[ps->n++] = NULL;
    add_rconn(c, ps, &c->lease);
    add_rconn(c, ps, &c->to_leader);
    add_rconn(c, ps, &c->to_seed);
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS; i++)
        if (c->members[i].used)
            add_rconn(c, ps, &c->members[i].probe);
    for (int i = 0; i < SCONN_MAX; i++) {
        if (!c->conns[i])
            continue;
        ps->fds[ps->n] = (struct pollfd){.fd = c->conns[i]->fd, .events = cport_events(c, c->conns[i])};
        ps->rcs[ps->n] = NULL;
        ps->scs[ps->n++] = c->conns[i];
    }
}

static void check_timeouts(struct consensus *c, int64_t now)
{
    rconn_check_timeout(c, &c->lease, now);
    rconn_check_timeout(c, &c->to_leader, now);
    rconn_check_timeout(c, &c->to_seed, now);
    for (size_t i = 0; i < PROXY_MAP_MAX_MEMBERS; i++)
        if (c->members[i].used)
            rconn_check_timeout(c, &c->members[i].probe, now);
    cport_check_deadlines(c, now);
}

static void run_timers(struct consensus *c, int64_t now)
{
    if (c->role == ROLE_LEADER && now - c->renew_ok_sent_ms > c->lease_ms * 3 / 4)
        step_down(c, "no lease renewal for 3/4 of the lease");
    if (atomic_load(&c->leave_req))
        leave_tick(c, now);
    if (now >= c->next_lease_ms) {
        int tick = c->lease_ms / 4 < c->hb_ms ? c->lease_ms / 4 : c->hb_ms;
        c->next_lease_ms = now + tick;
        lease_tick(c, now);
    }
    if (now >= c->next_hb_ms) {
        c->next_hb_ms = now + c->hb_ms;
        if (c->role == ROLE_FOLLOWER) {
            seed_tick(c, now);
            follower_tick(c);
        } else if (c->leader_ready) { /* else still reading the stored map */
            leader_tick(c, now);
        }
    }
}

static void *consensus_main(void *arg)
{
    struct consensus *c = arg;
    struct pollset *ps = malloc(sizeof *ps);
    if (c->hooks.thread_init)
        c->hooks.thread_init(c->hooks.arg);
    while (ps && !atomic_load(&c->stop_req)) {
        int64_t now = consensus_clock_ms();
        run_timers(c, now);
        build_pollset(c, ps);
        int64_t next = c->next_lease_ms < c->next_hb_ms ? c->next_lease_ms : c->next_hb_ms;
        int wait = (int)(next - consensus_clock_ms());
        wait = wait < 0 ? 0 : wait > 50 ? 50 : wait;
        if (poll(ps->fds, (nfds_t)ps->n, wait) < 0 && errno != EINTR)
            break;
        now = consensus_clock_ms();
        if (ps->fds[0].revents) {
            uint64_t x;
            ssize_t r = read(c->wake_fd, &x, sizeof x);
            (void)r;
        }
        for (int i = 2; i < ps->n; i++) {
            if (!ps->fds[i].revents)
                continue;
            if (ps->rcs[i])
                rconn_handle(c, ps->rcs[i], ps->fds[i].revents, now);
            else
                cport_handle(c, ps->scs[i], ps->fds[i].revents);
        }
        /* after the handlers: accepting may close (evict) an sconn that
         * this iteration's pollset still points at */
        if (ps->fds[1].revents)
            cport_accept(c);
        check_timeouts(c, now);
    }
    free(ps);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Start / leave / stop                                                      */

static int load_node_id(struct consensus *c, char *err, size_t errlen)
{
    const char *path = c->cfg->node_id_file;
    if (path[0] && consensus_read_id_file(path, c->me.id))
        return 0;
    proxy_id_random(c->me.id);
    if (!path[0])
        return 0;
    FILE *f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", c->me.id) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "cannot write --node-id-file %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void set_identity(struct consensus *c)
{
    const struct config *cfg = c->cfg;
    const char *ip = cfg->announce_ip;
    if (!ip[0])
        ip = cfg->nbinds ? cfg->binds[0] : "";
    if (!ip[0] || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0)
        ip = "127.0.0.1";
    snprintf(c->me.ip, sizeof c->me.ip, "%.45s", ip);
    c->me.port = (uint16_t)(cfg->announce_port ? cfg->announce_port
                            : cfg->port ? cfg->port : cfg->tls_port); /* TLS only */
    c->me.cport = (uint16_t)cfg->cport;
    snprintf(c->key_leader, sizeof c->key_leader, "{ringslot:%s}:leader", cfg->cluster_name);
    snprintf(c->key_term, sizeof c->key_term, "{ringslot:%s}:term", cfg->cluster_name);
    snprintf(c->key_map, sizeof c->key_map, "{ringslot:%s}:map", cfg->cluster_name);
    c->lease_ms = cfg->leader_lease_ms > 0 ? cfg->leader_lease_ms : 3000;
    c->hb_ms = cfg->heartbeat_interval_ms > 0 ? cfg->heartbeat_interval_ms : 500;
    c->node_timeout_ms = cfg->proxy_node_timeout_ms > 0 ? cfg->proxy_node_timeout_ms : 3000;
}

static void setup_conns(struct consensus *c)
{
    const struct config *cfg = c->cfg;
    rconn_init(&c->lease, on_reply, NULL, c->lease_ms / 4 > 250 ? c->lease_ms / 4 : 250);
    c->lease.lease = true;
    if (cfg->lease_redis.set) {
        c->lease.user = cfg->lease_redis.user;
        c->lease.pass = cfg->lease_redis.password;
    } else {
        c->lease.user = cfg->auth_user;
        c->lease.pass = cfg->auth;
    }
    lease_retarget_default(c);
    rconn_init(&c->to_leader, on_reply, NULL, c->hb_ms < 250 ? 250 : c->hb_ms);
    c->to_leader.pass = cfg->cluster_password;
    rconn_init(&c->to_seed, on_reply, NULL, c->hb_ms < 250 ? 250 : c->hb_ms);
    c->to_seed.pass = cfg->cluster_password;
}

struct consensus *consensus_start(const struct config *cfg, const struct consensus_hooks *hooks,
                                  char *err, size_t errlen)
{
    if (!cfg->lease_redis.set && cfg->nentry_points == 0) {
        snprintf(err, errlen, "cluster mode needs an entry point or --lease-redis");
        return NULL;
    }
    struct consensus *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    err[0] = '\0';
    c->cfg = cfg;
    c->hooks = *hooks;
    c->listen_fd = -1;
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    set_identity(c);
    setup_conns(c);
    c->map = calloc(1, sizeof *c->map);
    if (c->wake_fd < 0 || !c->map || load_node_id(c, err, errlen) < 0 ||
        cport_listen(c, err, errlen) < 0) {
        if (c->wake_fd >= 0 && !err[0])
            snprintf(err, errlen, "out of memory");
        consensus_stop(c);
        return NULL;
    }
    struct proxy_map *first = malloc(sizeof *first);
    if (first) {
        proxy_map_init_single(first, &c->me);
        install_map(c, first);
    }
    if (pthread_create(&c->thread, NULL, consensus_main, c) != 0) {
        snprintf(err, errlen, "cannot start the consensus thread");
        consensus_stop(c);
        return NULL;
    }
    c->thread_started = true;
    node_log(c, LOG_INFO, "cluster mode: node %s, cport %u, cluster '%s'", c->me.id, c->me.cport,
         cfg->cluster_name);
    return c;
}

const char *consensus_node_id(const struct consensus *c)
{
    return c->me.id;
}

static void wake(struct consensus *c)
{
    uint64_t one = 1;
    ssize_t r = write(c->wake_fd, &one, sizeof one);
    (void)r;
}

int consensus_leave(struct consensus *c, int timeout_ms)
{
    int64_t deadline = consensus_clock_ms() + timeout_ms;
    atomic_store(&c->leave_req, true);
    wake(c);
    while (!atomic_load(&c->left)) {
        if (consensus_clock_ms() >= deadline)
            return -1;
        usleep(10000);
    }
    return 0;
}

void consensus_stop(struct consensus *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        atomic_store(&c->stop_req, true);
        wake(c);
        pthread_join(c->thread, NULL);
    }
    members_clear(c);
    struct rconn *own[] = {&c->lease, &c->to_leader, &c->to_seed};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++) {
        rconn_close(c, own[i]);
        resp_buf_free(&own[i]->out);
        free(own[i]->in);
    }
    cport_close_all(c);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    proxy_map_free(c->map);
    free(c);
}
