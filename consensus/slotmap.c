/*
 * consensus/slotmap.c — the proxy slot map and the slot assigner (pure).
 *
 * proxy_map_assign() works in three steps:
 *
 *   old map ─► re-index owners onto the new (id-sorted) member list;
 *              slots of departed members become "unowned" (a pseudo donor)
 *           ─► targets: 16384/n each, the 16384%n extra slots to the members
 *              already holding the most (ties: lower id), so
 *              excess(donors) = deficit(receivers) is the minimum movement
 *           ─► transfer, run by run (a run = maximal range of one owner):
 *                A. grow: a donor run next to a receiver's run gives its
 *                   slots from that edge (the receiver's range just grows);
 *                B. seed: when no such pair is left, a receiver starts a new
 *                   range at the edge of a donor run, preferring a run whose
 *                   other side is also a donor (A then eats both ways) and
 *                   small runs that are consumed whole (one range fewer).
 *
 * Only excess moves, so the count of moved slots is the minimum; the choice
 * of *which* slots is where defragmentation happens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "consensus.h"

#define S CLUSTER_SLOTS

void proxy_map_init_single(struct proxy_map *m, const struct proxy_member *only)
{
    memset(m, 0, sizeof *m);
    m->nmembers = 1;
    m->members[0] = *only;
    for (unsigned s = 0; s < S; s++)
        m->owner[s] = 0;
    m->me = *only;
    m->self = 0;
}

struct proxy_map *proxy_map_dup(const struct proxy_map *m)
{
    struct proxy_map *c = malloc(sizeof *c);
    if (c)
        memcpy(c, m, sizeof *c);
    return c;
}

void proxy_map_free(struct proxy_map *m)
{
    free(m);
}

int proxy_map_find(const struct proxy_map *m, const char *id)
{
    for (size_t i = 0; i < m->nmembers; i++)
        if (strcmp(m->members[i].id, id) == 0)
            return (int)i;
    return -1;
}

void proxy_map_set_self(struct proxy_map *m, const struct proxy_member *me)
{
    m->me = *me;
    m->self = proxy_map_find(m, me->id);
}

bool proxy_map_newer(const struct proxy_map *a, const struct proxy_map *b)
{
    return a->term > b->term || (a->term == b->term && a->version > b->version);
}

/* ------------------------------------------------------------------------ */
/* Assigner                                                                  */

struct run {
    unsigned start, len;
    unsigned owner; /* new member index, or n for unowned */
};

struct transfer {
    unsigned n;                     /* members; n = "unowned" pseudo donor */
    uint16_t *owner;                /* the out map's owner array */
    unsigned excess[PROXY_MAP_MAX_MEMBERS + 1];
    unsigned deficit[PROXY_MAP_MAX_MEMBERS + 1];
    unsigned left;                  /* total deficit still to fill */
    struct run runs[S];
    unsigned nruns;
};

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const struct proxy_member *)a)->id, ((const struct proxy_member *)b)->id);
}

static void build_runs(struct transfer *t)
{
    t->nruns = 0;
    for (unsigned s = 0; s < S;) {
        unsigned e = s;
        while (e + 1 < S && t->owner[e + 1] == t->owner[s])
            e++;
        t->runs[t->nruns++] = (struct run){s, e - s + 1, t->owner[s]};
        s = e + 1;
    }
}

/* Move k slots of donor run j (from its left or right edge) to r. */
static void move_edge(struct transfer *t, unsigned j, bool from_left, unsigned r, unsigned k)
{
    struct run *rj = &t->runs[j];
    unsigned first = from_left ? rj->start : rj->start + rj->len - k;
    for (unsigned s = first; s < first + k; s++)
        t->owner[s] = (uint16_t)r;
    t->excess[rj->owner] -= k;
    t->deficit[r] -= k;
    t->left -= k;
    if (from_left)
        rj->start += k;
    rj->len -= k;
}

static bool is_donor(const struct transfer *t, const struct run *r)
{
    return r->len > 0 && t->excess[r->owner] > 0;
}

static bool is_receiver(const struct transfer *t, const struct run *r)
{
    return r->len > 0 && r->owner < t->n && t->deficit[r->owner] > 0;
}

static unsigned min3(unsigned a, unsigned b, unsigned c)
{
    unsigned m = a < b ? a : b;
    return m < c ? m : c;
}

/* Step A over the current runs. Donor runs with a receiver neighbour give
 * from that edge, smallest runs first (a run eaten whole is a range less).
 * Returns whether anything moved. */
static bool grow_pass(struct transfer *t)
{
    bool moved = false;
    for (;;) {
        int best = -1;
        for (unsigned j = 0; j < t->nruns; j++) {
            struct run *rj = &t->runs[j];
            if (!is_donor(t, rj))
                continue;
            bool l = j > 0 && is_receiver(t, &t->runs[j - 1]);
            bool r = j + 1 < t->nruns && is_receiver(t, &t->runs[j + 1]);
            if ((l || r) && (best < 0 || rj->len < t->runs[best].len))
                best = (int)j;
        }
        if (best < 0)
            return moved;
        unsigned j = (unsigned)best;
        for (int side = 0; side < 2 && t->runs[j].len > 0; side++) {
            bool from_left = side == 0;
            if (from_left ? j == 0 : j + 1 >= t->nruns)
                continue;
            struct run *nb = &t->runs[from_left ? j - 1 : j + 1];
            if (!is_receiver(t, nb) || !is_donor(t, &t->runs[j]))
                continue;
            unsigned k = min3(t->excess[t->runs[j].owner], t->deficit[nb->owner],
                              t->runs[j].len);
            unsigned r = nb->owner;
            move_edge(t, j, from_left, r, k);
            nb->len += k;
            if (!from_left)
                nb->start -= k;
            moved = true;
        }
    }
}

/* Step B: start a new range for the receiver with the largest deficit. */
static void seed(struct transfer *t)
{
    unsigned r = 0;
    for (unsigned i = 1; i < t->n; i++)
        if (t->deficit[i] > t->deficit[r])
            r = i;
    int best = -1, best_score = -1;
    for (unsigned j = 0; j < t->nruns; j++) {
        struct run *rj = &t->runs[j];
        if (!is_donor(t, rj))
            continue;
        unsigned k = min3(t->excess[rj->owner], t->deficit[r], rj->len);
        bool nb = (j > 0 && is_donor(t, &t->runs[j - 1])) ||
                  (j + 1 < t->nruns && is_donor(t, &t->runs[j + 1]));
        /* whole run taken: +4; donor neighbour to grow into: +2 */
        int score = (k == rj->len ? 4 : 0) + (nb ? 2 : 0);
        if (score > best_score || (score == best_score && rj->len < t->runs[best].len)) {
            best = (int)j;
            best_score = score;
        }
    }
    unsigned j = (unsigned)best;
    struct run *rj = &t->runs[j];
    unsigned k = min3(t->excess[rj->owner], t->deficit[r], rj->len);
    bool left_donor = j > 0 && is_donor(t, &t->runs[j - 1]);
    move_edge(t, j, left_donor || j + 1 >= t->nruns, r, k);
}

static void compute_targets(struct transfer *t, const unsigned *cur, unsigned *target)
{
    unsigned n = t->n, base = S / n, extra = S % n;
    unsigned order[PROXY_MAP_MAX_MEMBERS];
    for (unsigned i = 0; i < n; i++) {
        /* insertion sort by (cur desc, index asc): n is small */
        unsigned j = i;
        while (j > 0 && cur[order[j - 1]] < cur[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (unsigned i = 0; i < n; i++)
        target[order[i]] = base + (i < extra ? 1 : 0);
}

static bool members_ok(const struct proxy_member *live, size_t n)
{
    if (n == 0 || n > PROXY_MAP_MAX_MEMBERS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!proxy_id_valid(live[i].id, strlen(live[i].id)))
            return false;
    return true;
}

int proxy_map_assign(const struct proxy_map *old, const struct proxy_member *live,
                     size_t nlive, struct proxy_map *out)
{
    if (!members_ok(live, nlive))
        return -1;
    memset(out, 0, sizeof *out);
    out->term = old->term;
    out->version = old->version;
    out->nmembers = nlive;
    memcpy(out->members, live, nlive * sizeof *live);
    qsort(out->members, nlive, sizeof *live, cmp_member);
    for (size_t i = 1; i < nlive; i++)
        if (strcmp(out->members[i - 1].id, out->members[i].id) == 0)
            return -1;

    struct transfer *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->n = (unsigned)nlive;
    t->owner = out->owner;
    int remap[PROXY_MAP_MAX_MEMBERS];
    for (size_t i = 0; i < old->nmembers; i++)
        remap[i] = proxy_map_find(out, old->members[i].id);
    unsigned cur[PROXY_MAP_MAX_MEMBERS + 1] = {0};
    for (unsigned s = 0; s < S; s++) {
        unsigned o = old->owner[s];
        int nw = o < old->nmembers ? remap[o] : -1;
        out->owner[s] = (uint16_t)(nw >= 0 ? (unsigned)nw : t->n);
        cur[out->owner[s]]++;
    }
    unsigned target[PROXY_MAP_MAX_MEMBERS];
    compute_targets(t, cur, target);
    t->excess[t->n] = cur[t->n];
    for (unsigned i = 0; i < t->n; i++) {
        t->excess[i] = cur[i] > target[i] ? cur[i] - target[i] : 0;
        t->deficit[i] = cur[i] < target[i] ? target[i] - cur[i] : 0;
        t->left += t->deficit[i];
    }
    while (t->left > 0) {
        build_runs(t);
        if (!grow_pass(t))
            seed(t);
    }
    free(t);
    out->me = old->me;
    out->self = proxy_map_find(out, out->me.id);

    int moved = 0;
    for (unsigned s = 0; s < S; s++) {
        unsigned o = old->owner[s];
        if (o >= old->nmembers ||
            strcmp(old->members[o].id, out->members[out->owner[s]].id) != 0)
            moved++;
    }
    return moved;
}

int proxy_map_join(const struct proxy_map *old, const struct proxy_member *m,
                   struct proxy_map *out)
{
    if (old->nmembers >= PROXY_MAP_MAX_MEMBERS || proxy_map_find(old, m->id) >= 0)
        return -1;
    struct proxy_member live[PROXY_MAP_MAX_MEMBERS];
    memcpy(live, old->members, old->nmembers * sizeof *live);
    live[old->nmembers] = *m;
    return proxy_map_assign(old, live, old->nmembers + 1, out);
}

int proxy_map_leave(const struct proxy_map *old, const char *id, struct proxy_map *out)
{
    struct proxy_member live[PROXY_MAP_MAX_MEMBERS];
    size_t n = 0;
    for (size_t i = 0; i < old->nmembers; i++)
        if (strcmp(old->members[i].id, id) != 0)
            live[n++] = old->members[i];
    if (n == old->nmembers)
        return -1;
    return proxy_map_assign(old, live, n, out);
}

/* ------------------------------------------------------------------------ */
/* Defragmentation                                                           */

/*
 * One step: the member A with the most ranges (above max_ranges) gives its
 * smallest run X (L slots) to a neighbour B, and takes L slots back from a
 * run Y of B at another B|A boundary. Counts do not change; A loses a
 * range, B merges two, nobody gains one. Costs 2L moved slots. Returns the
 * slots moved, 0 when nothing fits the budget.
 */
static unsigned defrag_step(struct proxy_map *m, struct transfer *t, unsigned max_ranges,
                            unsigned budget)
{
    unsigned nr[PROXY_MAP_MAX_MEMBERS] = {0}, a = 0;
    build_runs(t);
    for (unsigned j = 0; j < t->nruns; j++)
        nr[t->runs[j].owner]++;
    for (unsigned i = 1; i < m->nmembers; i++)
        if (nr[i] > nr[a])
            a = i;
    if (nr[a] <= max_ranges)
        return 0;
    int best_x = -1, best_y = -1;
    bool y_from_left = false;
    for (unsigned x = 0; x < t->nruns; x++) {
        struct run *rx = &t->runs[x];
        if (rx->owner != a || 2 * rx->len > budget ||
            (best_x >= 0 && rx->len >= t->runs[best_x].len))
            continue;
        for (int side = 0; side < 2; side++) {
            if (side == 0 ? x == 0 : x + 1 >= t->nruns)
                continue;
            unsigned b = t->runs[side == 0 ? x - 1 : x + 1].owner;
            for (unsigned y = 0; y < t->nruns; y++) {
                struct run *ry = &t->runs[y];
                if (ry->owner != b || ry->len <= rx->len)
                    continue;
                bool l = y > 0 && y - 1 != x && t->runs[y - 1].owner == a;
                bool r = y + 1 < t->nruns && y + 1 != x && t->runs[y + 1].owner == a;
                if (l || r) {
                    best_x = (int)x;
                    best_y = (int)y;
                    y_from_left = l;
                    break;
                }
            }
            if (best_x == (int)x)
                break;
        }
    }
    if (best_x < 0)
        return 0;
    struct run *rx = &t->runs[best_x], *ry = &t->runs[best_y];
    unsigned len = rx->len;
    unsigned b = ry->owner;
    for (unsigned s = rx->start; s < rx->start + len; s++)
        m->owner[s] = (uint16_t)b;
    unsigned first = y_from_left ? ry->start : ry->start + ry->len - len;
    for (unsigned s = first; s < first + len; s++)
        m->owner[s] = (uint16_t)a;
    return 2 * len;
}

int proxy_map_defrag(struct proxy_map *m, unsigned max_ranges, unsigned budget)
{
    struct transfer *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    t->n = (unsigned)m->nmembers;
    t->owner = m->owner;
    unsigned moved = 0;
    for (;;) {
        unsigned k = defrag_step(m, t, max_ranges, budget - moved);
        if (k == 0)
            break;
        moved += k;
    }
    free(t);
    return (int)moved;
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                   */

size_t proxy_map_ranges(const struct proxy_map *m, struct proxy_range *out, size_t max)
{
    size_t n = 0;
    for (unsigned s = 0; s < S;) {
        unsigned e = s;
        while (e + 1 < S && m->owner[e + 1] == m->owner[s])
            e++;
        if (n < max)
            out[n] = (struct proxy_range){(uint16_t)s, (uint16_t)e, m->owner[s]};
        n++;
        s = e + 1;
    }
    return n;
}

unsigned proxy_map_count(const struct proxy_map *m, unsigned idx)
{
    unsigned c = 0;
    for (unsigned s = 0; s < S; s++)
        c += m->owner[s] == idx;
    return c;
}

unsigned proxy_map_member_ranges(const struct proxy_map *m, unsigned idx)
{
    unsigned c = 0;
    for (unsigned s = 0; s < S; s++)
        c += m->owner[s] == idx && (s == 0 || m->owner[s - 1] != idx);
    return c;
}

/* ------------------------------------------------------------------------ */
/* Ids and text form                                                         */

bool proxy_id_valid(const char *s, size_t len)
{
    if (len != PROXY_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

void proxy_id_random(char out[PROXY_ID_LEN + 1])
{
    unsigned char raw[PROXY_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

void proxy_map_encode(const struct proxy_map *m, struct resp_buf *out)
{
    char line[256];
    int n = snprintf(line, sizeof line, "ringslot-map 1 %llu %llu %zu\n",
                     (unsigned long long)m->term, (unsigned long long)m->version,
                     m->nmembers);
    resp_buf_append(out, line, (size_t)n);
    for (size_t i = 0; i < m->nmembers; i++) {
        const struct proxy_member *p = &m->members[i];
        n = snprintf(line, sizeof line, "%s %s %u %u\n", p->id, p->ip, p->port, p->cport);
        resp_buf_append(out, line, (size_t)n);
    }
    for (unsigned s = 0; s < S;) {
        unsigned e = s;
        while (e + 1 < S && m->owner[e + 1] == m->owner[s])
            e++;
        n = snprintf(line, sizeof line, "%s%u-%u=%u", s ? " " : "", s, e, m->owner[s]);
        resp_buf_append(out, line, (size_t)n);
        s = e + 1;
    }
    resp_buf_append(out, "\n", 1);
}

/* A bounded cursor over untrusted text. */
struct cursor {
    const char *p, *end;
};

static bool cur_u64(struct cursor *c, unsigned long long *v, unsigned long long max)
{
    unsigned long long x = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (x > (max - (unsigned)(*c->p - '0')) / 10)
            return false;
        x = x * 10 + (unsigned)(*c->p++ - '0');
    }
    *v = x;
    return c->p > start;
}

static bool cur_char(struct cursor *c, char ch)
{
    if (c->p >= c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* A token up to the next ' ' into out (NUL-terminated, < cap). */
static bool cur_word(struct cursor *c, char *out, size_t cap)
{
    size_t n = 0;
    while (c->p < c->end && *c->p != ' ' && *c->p != '\n') {
        if (n + 1 >= cap)
            return false;
        out[n++] = *c->p++;
    }
    out[n] = '\0';
    return n > 0;
}

static bool decode_member(struct cursor *c, struct proxy_member *p)
{
    unsigned long long port, cport;
    if (!cur_word(c, p->id, sizeof p->id) || !proxy_id_valid(p->id, strlen(p->id)) ||
        !cur_char(c, ' ') || !cur_word(c, p->ip, sizeof p->ip) || !cur_char(c, ' ') ||
        !cur_u64(c, &port, 65535) || !cur_char(c, ' ') || !cur_u64(c, &cport, 65535) ||
        !cur_char(c, '\n'))
        return false;
    p->port = (uint16_t)port;
    p->cport = (uint16_t)cport;
    return true;
}

static bool decode_ranges(struct cursor *c, struct proxy_map *m)
{
    unsigned long long next = 0;
    while (next < S) {
        unsigned long long a, b, o;
        if ((next && !cur_char(c, ' ')) || !cur_u64(c, &a, S) || a != next ||
            !cur_char(c, '-') || !cur_u64(c, &b, S - 1) || b < a || !cur_char(c, '=') ||
            !cur_u64(c, &o, PROXY_NO_OWNER) || (o >= m->nmembers && o != PROXY_NO_OWNER))
            return false;
        for (unsigned long long s = a; s <= b; s++)
            m->owner[s] = (uint16_t)o;
        next = b + 1;
    }
    return cur_char(c, '\n');
}

int proxy_map_decode(const char *buf, size_t len, struct proxy_map *m)
{
    static const char magic[] = "ringslot-map 1 ";
    struct cursor c = {buf, buf + len};
    unsigned long long term, version, n;
    memset(m, 0, sizeof *m);
    m->self = -1;
    if (len < sizeof magic - 1 || memcmp(buf, magic, sizeof magic - 1) != 0)
        return -1;
    c.p += sizeof magic - 1;
    if (!cur_u64(&c, &term, UINT64_MAX) || !cur_char(&c, ' ') ||
        !cur_u64(&c, &version, UINT64_MAX) || !cur_char(&c, ' ') ||
        !cur_u64(&c, &n, PROXY_MAP_MAX_MEMBERS) || n == 0 || !cur_char(&c, '\n'))
        return -1;
    m->term = term;
    m->version = version;
    m->nmembers = n;
    for (size_t i = 0; i < n; i++) {
        if (!decode_member(&c, &m->members[i]))
            return -1;
        if (i > 0 && strcmp(m->members[i - 1].id, m->members[i].id) >= 0)
            return -1;
    }
    if (!decode_ranges(&c, m) || c.p != c.end)
        return -1;
    return 0;
}
