/*
 * SCAN cursors: the layout is described in cluster.h. Kept apart from the
 * fan-out so the bit layout is one place (and unit-testable), whichever
 * masters a scan covers.
 */
#include "cluster.h"

#define SHARD_SHIFT SCAN_CURSOR_NODE_BITS
#define CHECK_SHIFT (SCAN_CURSOR_NODE_BITS + SCAN_CURSOR_SHARD_BITS)
#define CHECK_MASK ((1u << SCAN_CURSOR_CHECK_BITS) - 1)

_Static_assert(CHECK_SHIFT + SCAN_CURSOR_CHECK_BITS == 53,
               "a cursor must fit a double's 53-bit integers exactly");

bool scan_cursor_decode(uint64_t cursor, struct scan_cursor *out)
{
    if (cursor > SCAN_CURSOR_MAX)
        return false;
    out->node = cursor & SCAN_CURSOR_NODE_MAX;
    out->shard = (unsigned)((cursor >> SHARD_SHIFT) & (SCAN_CURSOR_MAX_SHARDS - 1));
    out->check = (uint8_t)((cursor >> CHECK_SHIFT) & CHECK_MASK);
    return true;
}

bool scan_cursor_encode(const struct scan_cursor *c, uint64_t *out)
{
    if (c->node > SCAN_CURSOR_NODE_MAX || c->shard >= SCAN_CURSOR_MAX_SHARDS ||
        c->check > CHECK_MASK)
        return false;
    *out = ((uint64_t)c->check << CHECK_SHIFT) | ((uint64_t)c->shard << SHARD_SHIFT) | c->node;
    return true;
}

/* FNV-1a over the address, then the id. */
uint8_t scan_cursor_check(const char *addr, const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *s = addr; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    for (const char *s = id; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return (uint8_t)(h & CHECK_MASK);
}
