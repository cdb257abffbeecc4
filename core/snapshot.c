/*
 * snapshot.c — the epoch scheme behind struct snapshot_slot (DESIGN §2).
 *
 * The control thread publishes immutable objects; workers read them between
 * snapshot_reader_enter() and their next enter/idle. Old objects wait on a
 * retired list (control thread only) until no busy reader can hold them.
 *
 *   publish:  old = xchg(slot, new)   W1
 *             r   = ++generation      W2     retire(old, r)
 *   reclaim:  m = min over readers of seen   (IDLE = UINT64_MAX)
 *             free every retired object with r <= m
 *   reader:   g = load(generation)    S1
 *             seen = g                X      (enter)
 *             p = load(slot)          L      ... use p ... seen = IDLE / next g
 *
 * Why it is safe (every access is seq_cst, so all of them sit in one total
 * order S, and each seq_cst store/load pair is also release/acquire):
 * let reclaim free O, retired at r by W1/W2, after reading reader i's `seen`
 * (call that read R). Suppose i read O with L inside a batch begun by store
 * X. L read the value W1 replaced, so L < W1 in S; W1 < W2 < R by program
 * order on the control thread.
 *  - If R read i's store after X (its next enter or idle), i's uses of O are
 *    sequenced before that store, which happens-before R: the free is after.
 *  - If R read X itself: S1 < X < L < W1 < W2, so S1 read a generation
 *    below r, seen < r, and O was not freed. Contradiction.
 *  - If R read a store before X: then R < X < L < W1 in S, yet W1 < R.
 *    Contradiction.
 * A reader that is between S1 and X when the generation moves stores a stale
 * (smaller) seen: that only delays reclamation. An idle reader (IDLE is the
 * largest value) never delays it.
 *
 * Threads: publish, reclaim and destroy run on one thread (the control
 * thread); enter, idle and snapshot_load run on the reader that owns the
 * index.
 */
#include <assert.h>
#include <sched.h>
#include <stdlib.h>

#include "core.h"

struct snapshot_retired {
    struct snapshot_retired *next;
    void *obj;
    void (*destroy)(void *);
    uint64_t gen; /* generation right after `obj` was swapped out */
};

void snapshot_domain_init(struct snapshot_domain *d, size_t nreaders)
{
    assert(nreaders <= SNAPSHOT_MAX_READERS);
    atomic_init(&d->generation, 0);
    d->nreaders = nreaders;
    for (size_t i = 0; i < SNAPSHOT_MAX_READERS; i++)
        atomic_init(&d->readers[i].seen, SNAPSHOT_READER_IDLE);
    d->retired = NULL;
    d->nretired = 0;
}

void snapshot_reader_enter(struct snapshot_domain *d, size_t reader)
{
    assert(reader < d->nreaders);
    uint64_t g = atomic_load_explicit(&d->generation, memory_order_seq_cst);
    atomic_store_explicit(&d->readers[reader].seen, g, memory_order_seq_cst);
}

void snapshot_reader_idle(struct snapshot_domain *d, size_t reader)
{
    assert(reader < d->nreaders);
    atomic_store_explicit(&d->readers[reader].seen, SNAPSHOT_READER_IDLE,
                          memory_order_seq_cst);
}

/* The oldest generation a busy reader may still be using; IDLE when every
 * reader is idle. */
static uint64_t min_seen(struct snapshot_domain *d)
{
    uint64_t min = SNAPSHOT_READER_IDLE;
    for (size_t i = 0; i < d->nreaders; i++) {
        uint64_t s = atomic_load_explicit(&d->readers[i].seen,
                                          memory_order_seq_cst);
        if (s < min)
            min = s;
    }
    return min;
}

/* Out-of-memory path only: without a list node we cannot defer the free, so
 * wait until every busy reader has moved to generation `gen` or beyond. A
 * reader's batch is short and it goes idle before blocking, so this ends. */
static void wait_for_readers(struct snapshot_domain *d, uint64_t gen)
{
    while (min_seen(d) < gen)
        sched_yield();
}

void snapshot_publish(struct snapshot_domain *d, struct snapshot_slot *s, void *obj)
{
    /* Allocate before the swap so a failure cannot lose the old object. */
    struct snapshot_retired *node = malloc(sizeof(*node));
    /* Swap first, then advance the generation: a reader that sees the new
     * generation must also see the new pointer (the proof above needs
     * W1 < W2). The other order lets a reader enter with seen == r and
     * still load `old`. */
    void *old = atomic_exchange_explicit(&s->ptr, obj, memory_order_seq_cst);
    uint64_t gen = atomic_fetch_add_explicit(&d->generation, 1,
                                             memory_order_seq_cst) + 1;

    assert(old == NULL || old != obj); /* republishing would free a live object */
    if (old == NULL) {
        free(node);
        return;
    }
    if (node == NULL) {
        wait_for_readers(d, gen);
        s->destroy(old);
        return;
    }
    *node = (struct snapshot_retired){
        .next = d->retired, .obj = old, .destroy = s->destroy, .gen = gen,
    };
    d->retired = node;
    d->nretired++;
}

size_t snapshot_reclaim(struct snapshot_domain *d)
{
    uint64_t safe = min_seen(d);
    struct snapshot_retired **pp = &d->retired;

    while (*pp != NULL) {
        struct snapshot_retired *n = *pp;
        if (n->gen <= safe) { /* every busy reader has seen >= n->gen */
            *pp = n->next;
            n->destroy(n->obj);
            free(n);
            d->nretired--;
        } else {
            pp = &n->next;
        }
    }
    return d->nretired;
}

void snapshot_domain_destroy(struct snapshot_domain *d,
                             struct snapshot_slot *slots, size_t nslots)
{
    while (d->retired != NULL) {
        struct snapshot_retired *n = d->retired;
        d->retired = n->next;
        n->destroy(n->obj);
        free(n);
    }
    d->nretired = 0;
    for (size_t i = 0; i < nslots; i++) {
        void *obj = atomic_exchange_explicit(&slots[i].ptr, NULL,
                                             memory_order_seq_cst);
        if (obj != NULL)
            slots[i].destroy(obj);
    }
}
