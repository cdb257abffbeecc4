/*
 * mq.c — the bounded message queue from the workers to the control thread
 * (core.h). Dmitry Vyukov's bounded MPMC array queue: each cell carries a
 * sequence number that says whose turn the cell is.
 *
 *   cell.seq == pos          free for the producer that claims `pos`
 *   cell.seq == pos + 1      holds the message pushed at `pos`, for the
 *                            consumer whose tail is `pos`
 *   cell.seq == pos + cap    freed again, for the producer one lap later
 *
 * A producer claims a position by advancing `head` with a CAS, writes the
 * message, then publishes it with a release store of seq; the consumer
 * acquires seq before reading the message and hands the cell back with a
 * release store. head/tail themselves only order claims (relaxed); all data
 * is ordered through seq, which ThreadSanitizer follows.
 *
 * Positions are size_t and wrap; differences are taken as signed, which is
 * exact as long as fewer than SIZE_MAX/2 operations are in flight.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "base.h"

struct mq_cell {
    _Atomic size_t seq;
    struct ctl_msg msg;
};

int mq_init(struct mq *q, size_t capacity)
{
    /* One cell would be claimed by the next lap's producer before the
     * consumer could tell it apart from a full queue; 2 is the minimum. */
    size_t cap = 2;
    while (cap < capacity) {
        if (cap > SIZE_MAX / 2 / sizeof(struct mq_cell))
            return -ENOMEM;
        cap *= 2;
    }
    q->cells = malloc(cap * sizeof(*q->cells));
    if (q->cells == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        atomic_init(&q->cells[i].seq, i);
    q->mask = cap - 1;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return 0;
}

void mq_destroy(struct mq *q)
{
    free(q->cells);
    q->cells = NULL;
}

bool mq_push(struct mq *q, const struct ctl_msg *m)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);

    for (;;) {
        struct mq_cell *c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;

        if (diff == 0) {
            /* Our turn for this cell, unless another producer wins it. On
             * failure the CAS reloads pos. */
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                    memory_order_relaxed, memory_order_relaxed)) {
                c->msg = *m;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
        } else if (diff < 0) {
            return false; /* the consumer has not freed this cell yet: full */
        } else {
            /* Another producer claimed pos already; catch up. */
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

bool mq_pop(struct mq *q, struct ctl_msg *out)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);

    for (;;) {
        struct mq_cell *c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)(pos + 1);

        if (diff == 0) {
            /* The CAS only matters if someone breaks the one-consumer rule;
             * it keeps the queue correct even then. */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                    memory_order_relaxed, memory_order_relaxed)) {
                *out = c->msg;
                atomic_store_explicit(&c->seq, pos + q->mask + 1,
                                      memory_order_release);
                return true;
            }
        } else if (diff < 0) {
            return false; /* not yet written (or never pushed): empty */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}
