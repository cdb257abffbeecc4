/*
 * Private to core/: CLUSTER NODES views and how the control thread merges
 * them into one topology (nodes.c).
 *
 * CLUSTER SLOTS says who serves what but not how fresh that knowledge is;
 * during a failover or a reshard two nodes can disagree for a while.
 * CLUSTER NODES carries each master's config epoch, and Redis Cluster
 * itself settles a conflict for a slot in favour of the higher epoch: the
 * merge does the same across the views the control thread gathered.
 *
 *   view 1 ─┐   per slot: the claim with the highest epoch wins (ties: the
 *   view 2 ─┼─► earlier view); per node: the record from the view that
 *   …      ─┘   knows it with the highest epoch ─► CLUSTER SLOTS-shaped
 *                value ─► cluster_topology_from_slots()
 *
 * Masters flagged `fail` keep their slots (as in CLUSTER SLOTS): whether a
 * node answers is the workers' business, and they hold requests for it for
 * --cluster-down-timeout. Replicas flagged `fail`, and nodes in handshake
 * or without an address, are left out.
 */
#ifndef RINGSLOT_CORE_NODES_H
#define RINGSLOT_CORE_NODES_H

#include <stddef.h>
#include <stdint.h>

#include "../cluster/cluster.h"

struct nodes_view; /* one node's CLUSTER NODES reply, parsed; opaque */

/* Parse the text of a CLUSTER NODES reply. asked_host stands in for an
 * empty ip (a node that does not know its own address yet). Returns NULL
 * and sets *err (static text) on malformed input. */
struct nodes_view *nodes_view_parse(const char *text, size_t len, const char *asked_host,
                                    const char **err);
void nodes_view_free(struct nodes_view *v);
/* How many slots the view assigns. */
unsigned nodes_view_covered(const struct nodes_view *v);

/* Merge n ≥ 1 views (earlier views win ties) into a new topology, or NULL
 * and *err. */
struct cluster_topology *nodes_merge(struct nodes_view *const *views, size_t n,
                                     const char **err);

#endif
