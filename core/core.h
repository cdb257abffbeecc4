/*
 * core — the runtime: main, the per-core io_uring workers, client
 * connections, backend links, routing, the control thread.
 *
 * This header is what core offers to the other modules (and to the tests):
 * the snapshot domain through which the control thread publishes immutable
 * shared state (topology, command table, runtime config) to the workers,
 * and the message queue through which workers talk to the control thread.
 * Everything else in core/ is private to it (see the other headers in core/, included
 * only from core/).
 *
 * Snapshots (DESIGN §2): a small epoch scheme on C11 atomics.
 *
 *   control thread                         worker i
 *   --------------                         --------
 *   snapshot_publish(slot, new)            snapshot_reader_enter(r)  (batch start)
 *     old = exchange(slot, new)            p = snapshot_load(slot)   (use p …)
 *     gen = ++domain generation            snapshot_reader_idle(r)   (before blocking)
 *     retire(old, gen)
 *   snapshot_reclaim()
 *     frees every retired object whose gen is ≤ every busy reader's
 *     observed generation; idle readers never hold anything up, and the
 *     control thread never waits for a reader.
 *
 * Rules: a pointer loaded after snapshot_reader_enter() is valid until the
 * reader's next snapshot_reader_enter() or snapshot_reader_idle(); nothing
 * loaded from a snapshot may be kept past that. Only one thread (the control
 * thread) publishes and reclaims.
 */
#ifndef RINGSLOT_CORE_H
#define RINGSLOT_CORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_MAX_READERS 256
#define SNAPSHOT_READER_IDLE UINT64_MAX

struct snapshot_reader {
    _Atomic uint64_t seen; /* generation observed at batch start, or IDLE */
    char pad[64 - sizeof(uint64_t)];
};

struct snapshot_retired; /* private list node */

struct snapshot_domain {
    _Atomic uint64_t generation;
    size_t nreaders;
    struct snapshot_reader readers[SNAPSHOT_MAX_READERS];
    struct snapshot_retired *retired; /* control thread only */
    size_t nretired;                  /* control thread only */
};

/* A published pointer. The destructor frees what was published. */
struct snapshot_slot {
    _Atomic(void *) ptr;
    void (*destroy)(void *);
};

void snapshot_domain_init(struct snapshot_domain *d, size_t nreaders);
/* Frees everything still retired and every slot's current object. Call
 * once no reader runs any more. */
void snapshot_domain_destroy(struct snapshot_domain *d,
                             struct snapshot_slot *slots, size_t nslots);

void snapshot_reader_enter(struct snapshot_domain *d, size_t reader);
void snapshot_reader_idle(struct snapshot_domain *d, size_t reader);
static inline void *snapshot_load(struct snapshot_slot *s)
{
    return atomic_load_explicit(&s->ptr, memory_order_seq_cst);
}

/* Control thread: swap in `obj` (may be NULL), retire the previous one. */
void snapshot_publish(struct snapshot_domain *d, struct snapshot_slot *s, void *obj);
/* Control thread: free what no reader can still see; returns how many
 * objects are still waiting. */
size_t snapshot_reclaim(struct snapshot_domain *d);

/* ------------------------------------------------------------------------ */
/*
 * Message queue: bounded, lock-free, many producers (workers), one consumer
 * (the control thread). Fixed-size messages; a full queue refuses
 * (mq_push returns false) and the producer decides (a refresh request may be
 * dropped: another is already queued). The wakeup is the caller's business
 * (an eventfd written after a successful push).
 */
enum ctl_msg_type {
    CTL_MSG_REFRESH,      /* topology looks stale (MOVED seen, link lost) */
    CTL_MSG_LINK_LOST,    /* a link to `addr` was lost */
};

struct ctl_msg {
    enum ctl_msg_type type;
    uint16_t worker;
    uint16_t slot;
    char addr[64];
};

struct mq_cell;
struct mq {
    size_t mask;
    struct mq_cell *cells; /* owned */
    char pad0[64];
    _Atomic size_t head;   /* producers */
    char pad1[64];
    _Atomic size_t tail;   /* consumer */
};

/* capacity is rounded up to a power of two. Returns -ENOMEM or 0. */
int mq_init(struct mq *q, size_t capacity);
void mq_destroy(struct mq *q);
bool mq_push(struct mq *q, const struct ctl_msg *m);
bool mq_pop(struct mq *q, struct ctl_msg *out);

#endif
