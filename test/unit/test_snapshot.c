/*
 * test_snapshot.c — the snapshot domain and the control message queue
 * (core.h): deterministic unit tests, then two multi-threaded stress tests.
 *
 * The stress tests run ~2 s each with RINGSLOT_STRESS=1 (`make tsan-test`,
 * built with -fsanitize=thread) and ~0.2 s otherwise, so the ASan build also
 * covers them. Readers read every field of objects the writer frees as fast
 * as it can: a reclaim too early is a use-after-free under ASan, a data race
 * under TSan, and a bad magic/checksum (destroy poisons) without either.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../core/core.h"

/* ---- deterministic snapshot tests -------------------------------------- */

#define TOBJ_MAGIC 0x5a17c0de

struct tobj {
    unsigned magic;
    int id;
    int *destroyed; /* counter bumped by tobj_destroy */
};

static void tobj_destroy(void *p)
{
    struct tobj *o = p;
    assert_int_equal(o->magic, TOBJ_MAGIC);
    (*o->destroyed)++;
    o->magic = 0;
    free(o);
}

static struct tobj *tobj_new(int id, int *destroyed)
{
    struct tobj *o = malloc(sizeof(*o));
    assert_non_null(o);
    *o = (struct tobj){ .magic = TOBJ_MAGIC, .id = id, .destroyed = destroyed };
    return o;
}

struct fixture {
    struct snapshot_domain d;
    struct snapshot_slot slot;
    int destroyed;
};

static int fixture_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snapshot_domain_init(&f->d, 4);
    atomic_init(&f->slot.ptr, NULL);
    f->slot.destroy = tobj_destroy;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    snapshot_domain_destroy(&f->d, &f->slot, 1);
    free(f);
    return 0;
}

static void test_idle_readers_free_at_once(void **state)
{
    struct fixture *f = *state;

    snapshot_publish(&f->d, &f->slot, tobj_new(1, &f->destroyed));
    assert_int_equal(snapshot_reclaim(&f->d), 0); /* nothing was retired */
    snapshot_publish(&f->d, &f->slot, tobj_new(2, &f->destroyed));
    snapshot_publish(&f->d, &f->slot, tobj_new(3, &f->destroyed));
    assert_int_equal(f->d.nretired, 2);
    assert_int_equal(snapshot_reclaim(&f->d), 0);
    assert_int_equal(f->destroyed, 2);
    assert_int_equal(((struct tobj *)snapshot_load(&f->slot))->id, 3);
}

static void test_busy_reader_holds_back(void **state)
{
    struct fixture *f = *state;

    snapshot_publish(&f->d, &f->slot, tobj_new(1, &f->destroyed));
    snapshot_reader_enter(&f->d, 2);
    struct tobj *seen = snapshot_load(&f->slot);
    assert_int_equal(seen->id, 1);

    snapshot_publish(&f->d, &f->slot, tobj_new(2, &f->destroyed));
    assert_int_equal(snapshot_reclaim(&f->d), 1);
    assert_int_equal(f->destroyed, 0);
    assert_int_equal(seen->magic, TOBJ_MAGIC); /* still readable */

    /* Still busy from the old generation: a later retirement waits too. */
    snapshot_publish(&f->d, &f->slot, tobj_new(3, &f->destroyed));
    assert_int_equal(snapshot_reclaim(&f->d), 2);

    /* A new batch observes the current generation: both may go. */
    snapshot_reader_enter(&f->d, 2);
    assert_int_equal(snapshot_reclaim(&f->d), 0);
    assert_int_equal(f->destroyed, 2);
    snapshot_reader_idle(&f->d, 2);
}

static void test_reader_entered_after_publish(void **state)
{
    struct fixture *f = *state;

    snapshot_publish(&f->d, &f->slot, tobj_new(1, &f->destroyed));
    snapshot_publish(&f->d, &f->slot, tobj_new(2, &f->destroyed));
    /* Entered after #1 was retired: it cannot hold #1, so #1 goes. */
    snapshot_reader_enter(&f->d, 0);
    assert_int_equal(snapshot_reclaim(&f->d), 0);
    assert_int_equal(f->destroyed, 1);
    /* ...but what it may load now (#2) stays once retired. */
    snapshot_publish(&f->d, &f->slot, tobj_new(3, &f->destroyed));
    assert_int_equal(snapshot_reclaim(&f->d), 1);
    snapshot_reader_idle(&f->d, 0);
    assert_int_equal(snapshot_reclaim(&f->d), 0);
    assert_int_equal(f->destroyed, 2);
}

static void test_oldest_busy_reader_decides(void **state)
{
    struct fixture *f = *state;

    snapshot_publish(&f->d, &f->slot, tobj_new(1, &f->destroyed));
    snapshot_reader_enter(&f->d, 0);                      /* seen = 1 */
    snapshot_publish(&f->d, &f->slot, tobj_new(2, &f->destroyed)); /* #1 @2 */
    snapshot_reader_enter(&f->d, 1);                      /* seen = 2 */
    snapshot_publish(&f->d, &f->slot, tobj_new(3, &f->destroyed)); /* #2 @3 */
    assert_int_equal(snapshot_reclaim(&f->d), 2);
    snapshot_reader_idle(&f->d, 0);                       /* min = 2 */
    assert_int_equal(snapshot_reclaim(&f->d), 1);         /* #1 freed */
    assert_int_equal(f->destroyed, 1);
    snapshot_reader_enter(&f->d, 1);                      /* seen = 3 */
    assert_int_equal(snapshot_reclaim(&f->d), 0);
    assert_int_equal(f->destroyed, 2);
    snapshot_reader_idle(&f->d, 1);
}

static void test_publish_null(void **state)
{
    struct fixture *f = *state;

    snapshot_publish(&f->d, &f->slot, tobj_new(1, &f->destroyed));
    snapshot_publish(&f->d, &f->slot, NULL);
    assert_null(snapshot_load(&f->slot));
    assert_int_equal(snapshot_reclaim(&f->d), 0);
    assert_int_equal(f->destroyed, 1);
    snapshot_publish(&f->d, &f->slot, NULL); /* NULL is never retired */
    assert_int_equal(f->d.nretired, 0);
}

static void test_domain_destroy_frees_all(void **state)
{
    struct snapshot_domain d;
    struct snapshot_slot slots[2];
    int destroyed = 0;

    snapshot_domain_init(&d, 1);
    for (int i = 0; i < 2; i++) {
        atomic_init(&slots[i].ptr, NULL);
        slots[i].destroy = tobj_destroy;
    }
    snapshot_publish(&d, &slots[0], tobj_new(1, &destroyed));
    snapshot_reader_enter(&d, 0);
    snapshot_publish(&d, &slots[0], tobj_new(2, &destroyed));
    snapshot_publish(&d, &slots[1], tobj_new(3, &destroyed));
    assert_int_equal(snapshot_reclaim(&d), 1); /* #1 held by reader 0 */
    snapshot_reader_idle(&d, 0);               /* readers stopped */
    snapshot_domain_destroy(&d, slots, 2);
    assert_int_equal(destroyed, 3);
    assert_null(snapshot_load(&slots[0]));
    assert_null(snapshot_load(&slots[1]));
    assert_int_equal(d.nretired, 0);
}

/* ---- deterministic queue tests ----------------------------------------- */

static struct ctl_msg msg_n(unsigned n)
{
    struct ctl_msg m = { .type = CTL_MSG_REFRESH, .worker = (uint16_t)n,
                         .slot = (uint16_t)(n * 7) };
    snprintf(m.addr, sizeof(m.addr), "10.0.0.%u:%u", n % 256, 7000 + n);
    return m;
}

static void assert_msg_n(const struct ctl_msg *m, unsigned n)
{
    struct ctl_msg want = msg_n(n);
    assert_int_equal(m->type, want.type);
    assert_int_equal(m->worker, want.worker);
    assert_int_equal(m->slot, want.slot);
    assert_string_equal(m->addr, want.addr);
}

static void test_mq_fifo(void **state)
{
    struct mq q;
    struct ctl_msg m;

    assert_int_equal(mq_init(&q, 8), 0);
    assert_false(mq_pop(&q, &m));
    for (unsigned i = 0; i < 5; i++) {
        struct ctl_msg in = msg_n(i);
        assert_true(mq_push(&q, &in));
    }
    for (unsigned i = 0; i < 5; i++) {
        assert_true(mq_pop(&q, &m));
        assert_msg_n(&m, i);
    }
    assert_false(mq_pop(&q, &m));
    mq_destroy(&q);
}

static void test_mq_full(void **state)
{
    struct mq q;
    struct ctl_msg m = msg_n(0);

    assert_int_equal(mq_init(&q, 5), 0); /* rounded up to 8 */
    assert_int_equal(q.mask, 7);
    for (unsigned i = 0; i < 8; i++) {
        m = msg_n(i);
        assert_true(mq_push(&q, &m));
    }
    m = msg_n(99);
    assert_false(mq_push(&q, &m));
    assert_true(mq_pop(&q, &m));
    assert_msg_n(&m, 0);
    m = msg_n(8);
    assert_true(mq_push(&q, &m)); /* one freed cell, one more fits */
    assert_false(mq_push(&q, &m));
    for (unsigned i = 1; i <= 8; i++) {
        assert_true(mq_pop(&q, &m));
        assert_msg_n(&m, i);
    }
    mq_destroy(&q);
}

static void test_mq_small_capacities(void **state)
{
    struct mq q;
    struct ctl_msg m = msg_n(1);

    for (size_t cap = 0; cap <= 2; cap++) {
        assert_int_equal(mq_init(&q, cap), 0);
        assert_int_equal(q.mask, 1); /* minimum of two cells */
        assert_true(mq_push(&q, &m));
        assert_true(mq_push(&q, &m));
        assert_false(mq_push(&q, &m));
        mq_destroy(&q);
    }
}

static void test_mq_wraparound(void **state)
{
    struct mq q;
    struct ctl_msg m;
    unsigned next_in = 0, next_out = 0;

    assert_int_equal(mq_init(&q, 4), 0);
    /* Many laps of the ring with a varying fill level. */
    for (unsigned round = 0; round < 1000; round++) {
        unsigned burst = 1 + round % 4;
        for (unsigned i = 0; i < burst; i++) {
            m = msg_n(next_in++);
            assert_true(mq_push(&q, &m));
        }
        for (unsigned i = 0; i < burst; i++) {
            assert_true(mq_pop(&q, &m));
            assert_msg_n(&m, next_out++);
        }
        assert_false(mq_pop(&q, &m));
    }
    mq_destroy(&q);
}

/* ---- stress: snapshots --------------------------------------------------- */

#define SOBJ_MAGIC 0xfeedfacecafebeefULL
#define SOBJ_WORDS 13
#define NREADERS 4

/* A published object: every field is checked by readers. */
struct sobj {
    uint64_t magic;   /* SOBJ_MAGIC; 0 once destroyed */
    uint64_t id;      /* publication number, increasing */
    uint64_t words[SOBJ_WORDS];
    uint64_t sum;     /* checksum of id and words */
};

static uint64_t sobj_sum(const struct sobj *o)
{
    uint64_t s = o->id * 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < SOBJ_WORDS; i++)
        s = (s ^ o->words[i]) * 0x100000001b3ULL;
    return s;
}

static struct sobj *sobj_new(uint64_t id)
{
    struct sobj *o = malloc(sizeof(*o));
    if (o == NULL)
        abort();
    o->magic = SOBJ_MAGIC;
    o->id = id;
    for (int i = 0; i < SOBJ_WORDS; i++)
        o->words[i] = id * 31 + (uint64_t)i;
    o->sum = sobj_sum(o);
    return o;
}

static void sobj_destroy(void *p)
{
    struct sobj *o = p;
    o->magic = 0; /* poison: a late reader sees it if nothing else does */
    o->sum = ~o->sum;
    free(o);
}

struct stress {
    struct snapshot_domain d;
    struct snapshot_slot slot;
    atomic_bool stop;
};

struct reader_arg {
    struct stress *s;
    size_t index;
    uint64_t loads;  /* out */
    uint64_t errors; /* out */
};

static bool sobj_ok(const struct sobj *o)
{
    return o != NULL && o->magic == SOBJ_MAGIC && o->sum == sobj_sum(o);
}

/* One reader batch: a few loads, each checked; ids never go backwards. */
static void reader_batch(struct reader_arg *a, uint64_t *last_id)
{
    for (int k = 0; k < 3; k++) {
        const struct sobj *o = snapshot_load(&a->s->slot);
        a->loads++;
        if (!sobj_ok(o) || o->id < *last_id)
            a->errors++;
        else
            *last_id = o->id;
    }
}

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    uint64_t last_id = 0;
    unsigned n = 0;

    while (!atomic_load(&a->s->stop)) {
        snapshot_reader_enter(&a->s->d, a->index);
        reader_batch(a, &last_id);
        /* Sometimes go idle (as before a blocking wait), sometimes stay
         * busy across batches (enter again directly). */
        if (++n % 4 == 0) {
            snapshot_reader_idle(&a->s->d, a->index);
            if (n % 64 == 0)
                sched_yield();
        }
    }
    snapshot_reader_idle(&a->s->d, a->index);
    return NULL;
}

static double stress_seconds(void)
{
    const char *e = getenv("RINGSLOT_STRESS");
    return e != NULL && strcmp(e, "1") == 0 ? 2.0 : 0.2;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The writer runs on the test's thread: publish and reclaim flat out. */
static uint64_t writer_loop(struct stress *s, double seconds)
{
    uint64_t id = 1;
    double end = now_seconds() + seconds;

    for (;;) {
        snapshot_publish(&s->d, &s->slot, sobj_new(++id));
        snapshot_reclaim(&s->d);
        if (id % 256 == 0 && now_seconds() >= end) /* clock read is slow */
            break;
    }
    atomic_store(&s->stop, true);
    return id;
}

static void test_snapshot_stress(void **state)
{
    struct stress *s = calloc(1, sizeof(*s));
    struct reader_arg args[NREADERS];
    pthread_t tids[NREADERS];

    assert_non_null(s);
    snapshot_domain_init(&s->d, NREADERS);
    s->slot.destroy = sobj_destroy;
    atomic_init(&s->slot.ptr, NULL);
    atomic_init(&s->stop, false);
    snapshot_publish(&s->d, &s->slot, sobj_new(1));

    for (size_t i = 0; i < NREADERS; i++) {
        args[i] = (struct reader_arg){ .s = s, .index = i };
        assert_int_equal(pthread_create(&tids[i], NULL, reader_main, &args[i]), 0);
    }
    uint64_t published = writer_loop(s, stress_seconds());
    for (size_t i = 0; i < NREADERS; i++)
        assert_int_equal(pthread_join(tids[i], NULL), 0);
    uint64_t loads = 0;
    for (size_t i = 0; i < NREADERS; i++) {
        assert_int_equal(args[i].errors, 0);
        assert_true(args[i].loads > 0);
        loads += args[i].loads;
    }
    /* Every reader is idle now: everything retired can go. */
    assert_int_equal(snapshot_reclaim(&s->d), 0);
    print_message("snapshot stress: %llu publications, %llu loads\n",
                  (unsigned long long)published, (unsigned long long)loads);
    snapshot_domain_destroy(&s->d, &s->slot, 1);
    free(s);
}

/* ---- stress: message queue ----------------------------------------------- */

#define NPRODUCERS 3

struct mq_stress {
    struct mq q;
    atomic_bool stop;
    atomic_int producers_left;
};

struct producer_arg {
    struct mq_stress *s;
    uint16_t id;
    uint64_t sent; /* out */
};

static void *producer_main(void *p)
{
    struct producer_arg *a = p;

    while (!atomic_load(&a->s->stop)) {
        struct ctl_msg m = { .type = CTL_MSG_LINK_LOST, .worker = a->id };
        memcpy(m.addr, &a->sent, sizeof(a->sent)); /* per-producer sequence */
        if (mq_push(&a->s->q, &m))
            a->sent++;
        else
            sched_yield(); /* full: let the consumer catch up */
    }
    atomic_fetch_sub(&a->s->producers_left, 1);
    return NULL;
}

/* Pop one message if there is one and check that it is the next of its
 * producer's sequence. No cmocka assertion here: failing with producers
 * still running would hang the test, so errors are counted and resynced. */
static bool take_one(struct mq_stress *s, uint64_t next[NPRODUCERS],
                     uint64_t *errors)
{
    struct ctl_msg m;
    uint64_t seq;

    if (!mq_pop(&s->q, &m))
        return false;
    if (m.worker >= NPRODUCERS || m.type != CTL_MSG_LINK_LOST) {
        (*errors)++;
        return true;
    }
    memcpy(&seq, m.addr, sizeof(seq));
    if (seq != next[m.worker])
        (*errors)++;
    next[m.worker] = seq + 1;
    return true;
}

/* Drain until every producer has finished and the queue is empty: each
 * producer's messages arrive in order, none lost or doubled. Returns the
 * number of out-of-order or corrupt messages. */
static uint64_t consume(struct mq_stress *s, uint64_t next[NPRODUCERS],
                        double end)
{
    uint64_t errors = 0;

    for (;;) {
        if (take_one(s, next, &errors))
            continue;
        if (now_seconds() >= end)
            atomic_store(&s->stop, true);
        /* A producer's pushes happen before its decrement: once we read
         * zero, what is queued is all there will ever be. */
        if (atomic_load(&s->producers_left) == 0) {
            while (take_one(s, next, &errors))
                ;
            return errors;
        }
    }
}

static void test_mq_stress(void **state)
{
    struct mq_stress *s = calloc(1, sizeof(*s));
    struct producer_arg args[NPRODUCERS];
    pthread_t tids[NPRODUCERS];
    uint64_t next[NPRODUCERS] = { 0 };

    assert_non_null(s);
    assert_int_equal(mq_init(&s->q, 64), 0); /* small: full and wrap often */
    atomic_init(&s->stop, false);
    atomic_init(&s->producers_left, NPRODUCERS);
    for (uint16_t i = 0; i < NPRODUCERS; i++) {
        args[i] = (struct producer_arg){ .s = s, .id = i };
        assert_int_equal(pthread_create(&tids[i], NULL, producer_main, &args[i]), 0);
    }
    uint64_t errors = consume(s, next, now_seconds() + stress_seconds());
    for (int i = 0; i < NPRODUCERS; i++)
        assert_int_equal(pthread_join(tids[i], NULL), 0);
    uint64_t total = 0;
    for (int i = 0; i < NPRODUCERS; i++) {
        assert_int_equal(next[i], args[i].sent); /* none lost */
        assert_true(args[i].sent > 0);
        total += args[i].sent;
    }
    assert_int_equal(errors, 0);
    print_message("mq stress: %llu messages\n", (unsigned long long)total);
    mq_destroy(&s->q);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_readers_free_at_once,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_busy_reader_holds_back,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_reader_entered_after_publish,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_oldest_busy_reader_decides,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_publish_null,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test(test_domain_destroy_frees_all),
        cmocka_unit_test(test_mq_fifo),
        cmocka_unit_test(test_mq_full),
        cmocka_unit_test(test_mq_small_capacities),
        cmocka_unit_test(test_mq_wraparound),
        cmocka_unit_test(test_snapshot_stress),
        cmocka_unit_test(test_mq_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
