/*
 * cluster.c — CLUSTER as clients see it in cluster mode (SLOTS, SHARDS,
 * NODES, INFO, MYID, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, from the
 * SLOT_PROXYMAP snapshot), and DBSIZE / RANDOMKEY over this proxy's own
 * slots (see route/clusterview.c for the per-node view).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../consensus/consensus.h"
#include "cmd.h"

/* ------------------------------------------------------------------------ */
/* CLUSTER, as clients see it                                                */

static void keyslot(struct client *c, const struct cmd_args *a)
{
    if (a->argc != 3) {
        client_reply_error(c, "ERR wrong number of arguments for 'cluster|keyslot' command");
        return;
    }
    char line[32];
    unsigned slot = cluster_keyslot(a->argv[2], a->lens[2]);
    int n = snprintf(line, sizeof line, ":%u\r\n", slot);
    client_reply_bytes(c, line, (size_t)n);
}

/* COUNTKEYSINSLOT / GETKEYSINSLOT: the backend node serving that slot.
 * Redis parses every number before it checks the slot's range. */
static void slot_question(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    long long slot, count = 0;
    if (!resp_string2ll(a->argv[2], a->lens[2], &slot) ||
        (a->argc == 4 && !resp_string2ll(a->argv[3], a->lens[3], &count))) {
        client_reply_error(c, "ERR value is not an integer or out of range");
        return;
    }
    if (slot < 0 || slot >= CLUSTER_SLOTS || count < 0) {
        client_reply_error(c, a->argc == 4 ? "ERR Invalid slot or number of keys"
                                        : "ERR Invalid slot");
        return;
    }
    struct request *r = request_from_args(w, (int)a->argc, a->argv, a->lens);
    client_append(c, r);
    route_to_slot(w, r, (int)slot, client_key(c));
}

void clustermode_command(struct client *c, const struct cmd_args *a)
{
    struct worker *w = c->w;
    const struct proxy_map *m = w->pmap;
    void (*reply)(const struct proxy_map *, int, struct resp_buf *) = NULL;
    if (a->argc < 2) {
        client_reply_error(c, "ERR wrong number of arguments for 'cluster' command");
        return;
    }
    if (arg_is(a, 1, "slots"))
        reply = consensus_reply_cluster_slots;
    else if (arg_is(a, 1, "shards"))
        reply = consensus_reply_cluster_shards;
    else if (arg_is(a, 1, "nodes"))
        reply = consensus_reply_cluster_nodes;
    else if (arg_is(a, 1, "info"))
        reply = consensus_reply_cluster_info;
    else if (arg_is(a, 1, "myid"))
        reply = consensus_reply_cluster_myid;
    if (reply && m) {
        struct resp_buf b = {0};
        reply(m, c->proto, &b);
        client_reply_buf(c, &b);
    } else if (reply) {
        client_reply_error(c, "CLUSTERDOWN The cluster is down");
    } else if (arg_is(a, 1, "keyslot")) {
        keyslot(c, a);
    } else if ((arg_is(a, 1, "countkeysinslot") && a->argc == 3) ||
               (arg_is(a, 1, "getkeysinslot") && a->argc == 4)) {
        slot_question(c, a);
    } else {
        dispatch_forward_any(c, a);
    }
}

/* The slots m->self owns, in order, into out[CLUSTER_SLOTS]; how many. */
static size_t own_slots(const struct proxy_map *m, uint16_t *out)
{
    size_t n = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++)
        if (consensus_owns_slot(m, s))
            out[n++] = (uint16_t)s;
    return n;
}

/* Ask about each own slot (argv[slot_arg] = the slot), merged by kind; or
 * answer `none` at once when this proxy owns no slot. */
static void per_own_slot(struct client *c, const struct proxy_map *m, enum merge_kind kind,
                         int argc, const char **argv, int slot_arg, const char *none)
{
    uint16_t *slots = malloc(CLUSTER_SLOTS * sizeof *slots);
    if (!slots)
        abort();
    size_t n = own_slots(m, slots);
    if (n)
        fanout_per_slot(c, kind, slots, n, argc, argv, slot_arg);
    else
        client_reply_bytes(c, none, strlen(none));
    free(slots);
}

bool clustermode_dbsize(struct client *c, const struct cmd_args *a)
{
    const struct proxy_map *m = clustermode_own_view(c->w);
    if (!m || a->argc != 1) /* a wrong arity gets the backend's own error */
        return false;
    const char *argv[3] = {"CLUSTER", "COUNTKEYSINSLOT", NULL};
    per_own_slot(c, m, MERGE_SUM, 3, argv, 2, ":0\r\n");
    return true;
}

bool clustermode_randomkey(struct client *c, const struct cmd_args *a)
{
    const struct proxy_map *m = clustermode_own_view(c->w);
    if (!m || a->argc != 1)
        return false;
    const char *argv[4] = {"CLUSTER", "GETKEYSINSLOT", NULL, "1"};
    per_own_slot(c, m, MERGE_RANDOM_KEY, 4, argv, 2, c->proto == 3 ? "_\r\n" : "$-1\r\n");
    return true;
}
