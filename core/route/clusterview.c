/*
 * clusterview.c — cluster mode, as routing sees it: MOVED hints for slots
 * another proxy owns (clustermode_moved, asked by dispatch.c) and this
 * proxy's per-node view of the keyspace (its own slots, which bound what
 * DBSIZE, KEYS, SCAN and RANDOMKEY cover: fanout.c, cmd/cluster.c). Reads
 * the SLOT_PROXYMAP snapshot (w->pmap); the consensus thread's hand-over
 * is clustermode.c's (the root).
 */
#include <stdatomic.h>

#include "../../consensus/consensus.h"
#include "route.h"

/*
 * Should this call be answered with -MOVED to the proxy that owns its slot
 * (cluster mode)? always: yes; hint: at most once per connection every few
 * seconds, so cluster clients learn the map without being bounced; never
 * inside MULTI, a blocking call or pub/sub (the caller checks those).
 */
bool clustermode_moved(struct client *c, int slot)
{
    struct worker *w = c->w;
    const struct proxy_map *m = w->pmap;
    const struct config *cfg = w->rt->cfg;
    if (!cfg->cluster_mode || !m || slot < 0 || cfg->moved_mode == CONFIG_MOVED_NEVER)
        return false;
    const struct proxy_member *owner = consensus_slot_owner(m, (unsigned)slot);
    if (!owner || (m->self >= 0 && owner == &m->members[m->self]))
        return false;
    if (cfg->moved_mode == CONFIG_MOVED_HINT && !atomic_load(&w->rt->leaving)) {
        /* the first foreign call is served; a later one gets the hint */
        if (!c->foreign_seen) {
            c->foreign_seen = true;
            return false;
        }
        if (c->last_moved_ms && w->now_ms - c->last_moved_ms < CLUSTER_MOVED_HINT_MS)
            return false;
        c->last_moved_ms = w->now_ms;
    }
    struct resp_buf b = {0};
    consensus_reply_moved(m, (unsigned)slot, &b);
    client_reply_buf(c, &b);
    return true;
}

/* ------------------------------------------------------------------------ */
/* A proxy's per-node view: its own slots                                    */

/*
 * In cluster mode each proxy is a node of the logical cluster, and a Redis
 * node's DBSIZE, KEYS, SCAN and RANDOMKEY cover the slots it owns: summed or
 * merged over the nodes (redis-cli --cluster info, per-node SCAN in ioredis
 * and node-redis) they give the keyspace exactly once. The backend masters'
 * slots do not line up with the proxies', so:
 *
 *   DBSIZE     CLUSTER COUNTKEYSINSLOT for each own slot, on the master
 *              serving it, summed (16384 / members commands, pipelined per
 *              master — an admin command)
 *   RANDOMKEY  CLUSTER GETKEYSINSLOT <slot> 1 for each own slot; one key of
 *              a random non-empty slot (null only when the own slots hold
 *              no key, as Redis answers for an empty node)
 *   KEYS       every master as before; keys outside the own slots are
 *              dropped from the replies (fanout.c)
 *   SCAN       the masters in turn as before, skipping those that serve
 *              none of the own slots; keys outside them are dropped from
 *              each page (fanout.c), so a page may be short or empty and
 *              its cursor stays valid
 *
 * A proxy alone in its map owns every slot: nothing changes, nor outside
 * cluster mode.
 */
const struct proxy_map *clustermode_own_view(const struct worker *w)
{
    const struct proxy_map *m = w->pmap;
    if (!w->rt->cfg->cluster_mode || !m)
        return NULL;
    /* every slot is assigned to a live member: alone means all of them */
    return m->nmembers == 1 && m->self == 0 ? NULL : m;
}

bool clustermode_master_in_view(const struct worker *w, unsigned master)
{
    const struct proxy_map *m = clustermode_own_view(w);
    if (!m)
        return true;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        if (w->topo->slot_master[s] == master && consensus_owns_slot(m, s))
            return true;
    return false;
}
