/*
 * consensus/reply.c — what cluster-aware clients see: CLUSTER SLOTS,
 * SHARDS, NODES, INFO, MYID and -MOVED, written from a proxy map in the
 * exact shapes redis-server 7.0 replies (captured from a real 7.0.15,
 * RESP2 and RESP3), with the proxies as masters without replicas and the
 * map version as every node's config epoch. Pure: no I/O, no globals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "consensus.h"

#define S CLUSTER_SLOTS

const struct proxy_member *consensus_slot_owner(const struct proxy_map *m, unsigned slot)
{
    if (!m || slot >= S || m->owner[slot] >= m->nmembers)
        return NULL;
    return &m->members[m->owner[slot]];
}

bool consensus_owns_slot(const struct proxy_map *m, unsigned slot)
{
    return m && m->self >= 0 && slot < S && m->owner[slot] == (unsigned)m->self;
}

bool consensus_reply_moved(const struct proxy_map *m, unsigned slot, struct resp_buf *b)
{
    const struct proxy_member *p = consensus_slot_owner(m, slot);
    char line[128];
    if (!p)
        return false;
    bool v6 = strchr(p->ip, ':') != NULL;
    int n = snprintf(line, sizeof line, "-MOVED %u %s%s%s:%u\r\n", slot, v6 ? "[" : "",
                     p->ip, v6 ? "]" : "", p->port);
    resp_buf_append(b, line, (size_t)n);
    return true;
}

static void write_str(struct resp_buf *b, const char *s)
{
    resp_write_bulk(b, s, strlen(s));
}

/* RESP3 sends long text as a verbatim string ("=<len>\r\ntxt:..."). */
static void write_text(struct resp_buf *b, int proto, const char *s, size_t len)
{
    char head[32];
    if (proto < 3) {
        resp_write_bulk(b, s, len);
        return;
    }
    int n = snprintf(head, sizeof head, "=%zu\r\ntxt:", len + 4);
    resp_buf_append(b, head, (size_t)n);
    resp_buf_append(b, s, len);
    resp_buf_append(b, "\r\n", 2);
}

static size_t all_ranges(const struct proxy_map *m, struct proxy_range **out)
{
    size_t n = proxy_map_ranges(m, NULL, 0);
    *out = malloc(n * sizeof **out);
    if (!*out)
        abort();
    proxy_map_ranges(m, *out, n);
    return n;
}

/* [[start, end, [ip, port, id, {}]], ...] for owned ranges, slot order. */
void consensus_reply_cluster_slots(const struct proxy_map *m, int proto, struct resp_buf *b)
{
    struct proxy_range *r;
    size_t n = all_ranges(m, &r), owned = 0;
    for (size_t i = 0; i < n; i++)
        owned += r[i].owner < m->nmembers;
    resp_write_array_head(b, (long long)owned);
    for (size_t i = 0; i < n; i++) {
        if (r[i].owner >= m->nmembers)
            continue;
        const struct proxy_member *p = &m->members[r[i].owner];
        resp_write_array_head(b, 3);
        resp_write_integer(b, r[i].start);
        resp_write_integer(b, r[i].end);
        resp_write_array_head(b, 4);
        write_str(b, p->ip);
        resp_write_integer(b, p->port);
        write_str(b, p->id);
        resp_write_map_head(b, proto, 0);
    }
    free(r);
}

static void write_shard_node(const struct proxy_member *p, int proto, struct resp_buf *b)
{
    resp_write_map_head(b, proto, 7);
    write_str(b, "id");
    write_str(b, p->id);
    write_str(b, "port");
    resp_write_integer(b, p->port);
    write_str(b, "ip");
    write_str(b, p->ip);
    write_str(b, "endpoint");
    write_str(b, p->ip);
    write_str(b, "role");
    write_str(b, "master");
    write_str(b, "replication-offset");
    resp_write_integer(b, 0);
    write_str(b, "health");
    write_str(b, "online");
}

/* One shard per member: {slots: [s, e, ...], nodes: [{...}]}. */
void consensus_reply_cluster_shards(const struct proxy_map *m, int proto, struct resp_buf *b)
{
    struct proxy_range *r;
    size_t n = all_ranges(m, &r);
    resp_write_array_head(b, (long long)m->nmembers);
    for (size_t i = 0; i < m->nmembers; i++) {
        long long cnt = 0;
        for (size_t j = 0; j < n; j++)
            cnt += r[j].owner == i;
        resp_write_map_head(b, proto, 2);
        write_str(b, "slots");
        resp_write_array_head(b, 2 * cnt);
        for (size_t j = 0; j < n; j++) {
            if (r[j].owner != i)
                continue;
            resp_write_integer(b, r[j].start);
            resp_write_integer(b, r[j].end);
        }
        write_str(b, "nodes");
        resp_write_array_head(b, 1);
        write_shard_node(&m->members[i], proto, b);
    }
    free(r);
}

static long long wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* "<id> <ip>:<port>@<cport> [myself,]master - 0 <ms> <epoch> connected
 * <ranges>\n" per member. */
void consensus_reply_cluster_nodes(const struct proxy_map *m, int proto, struct resp_buf *b)
{
    struct resp_buf t = {0};
    struct proxy_range *r;
    size_t n = all_ranges(m, &r);
    long long now = wall_ms();
    char line[256];
    for (size_t i = 0; i < m->nmembers; i++) {
        const struct proxy_member *p = &m->members[i];
        bool v6 = strchr(p->ip, ':') != NULL;
        int k = snprintf(line, sizeof line, "%s %s%s%s:%u@%u %smaster - 0 %lld %llu connected",
                         p->id, v6 ? "[" : "", p->ip, v6 ? "]" : "", p->port, p->cport,
                         (int)i == m->self ? "myself," : "", now,
                         (unsigned long long)m->version);
        resp_buf_append(&t, line, (size_t)k);
        for (size_t j = 0; j < n; j++) {
            if (r[j].owner != i)
                continue;
            if (r[j].start == r[j].end)
                k = snprintf(line, sizeof line, " %u", r[j].start);
            else
                k = snprintf(line, sizeof line, " %u-%u", r[j].start, r[j].end);
            resp_buf_append(&t, line, (size_t)k);
        }
        resp_buf_append(&t, "\n", 1);
    }
    write_text(b, proto, t.data ? t.data : "", t.len);
    resp_buf_free(&t);
    free(r);
}

void consensus_reply_cluster_info(const struct proxy_map *m, int proto, struct resp_buf *b)
{
    unsigned assigned = 0, size = 0;
    for (unsigned s = 0; s < S; s++)
        assigned += m->owner[s] < m->nmembers;
    for (unsigned i = 0; i < m->nmembers; i++)
        size += proxy_map_count(m, i) > 0;
    char text[1024];
    int n = snprintf(text, sizeof text,
        "cluster_state:%s\r\ncluster_slots_assigned:%u\r\ncluster_slots_ok:%u\r\n"
        "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:%zu\r\n"
        "cluster_size:%u\r\ncluster_current_epoch:%llu\r\ncluster_my_epoch:%llu\r\n"
        "cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n"
        "total_cluster_links_buffer_limit_exceeded:0\r\n",
        assigned == S ? "ok" : "fail", assigned, assigned, m->nmembers, size,
        (unsigned long long)m->version, (unsigned long long)m->version);
    write_text(b, proto, text, (size_t)n);
}

void consensus_reply_cluster_myid(const struct proxy_map *m, int proto, struct resp_buf *b)
{
    (void)proto;
    write_str(b, m->me.id);
}

/* ------------------------------------------------------------------------ */
/* Outside cluster mode                                                      */

/* Read a 40-hex id from the file's first line; false if absent/invalid. */
bool consensus_read_id_file(const char *path, char out[PROXY_ID_LEN + 1])
{
    char line[128];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    line[strcspn(line, " \r\n")] = '\0';
    if (!proxy_id_valid(line, strlen(line)))
        return false;
    memcpy(out, line, PROXY_ID_LEN + 1);
    return true;
}

struct proxy_map *consensus_single_map(const struct config *cfg, const char *ip, int port)
{
    struct proxy_member me = {0};
    if (!cfg->node_id_file[0] || !consensus_read_id_file(cfg->node_id_file, me.id))
        proxy_id_random(me.id);
    if (!ip || !ip[0] || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0)
        ip = "127.0.0.1";
    snprintf(me.ip, sizeof me.ip, "%s", ip);
    me.port = (uint16_t)port;
    me.cport = (uint16_t)(cfg->cport > 0 ? cfg->cport : port + 10000);
    struct proxy_map *m = malloc(sizeof *m);
    if (m)
        proxy_map_init_single(m, &me);
    return m;
}
