/*
 * command_keys.c — which arguments of one call are keys.
 *
 * This is Redis 7's getKeysFromCommandWithSpecs (db.c), over (pointer,
 * length) arguments and without allocating:
 *
 *   key specs? ──no──► legacy first/last/step (Redis 6 tables)
 *      │yes
 *      ▼
 *   each spec: begin_search (index | keyword) → find_keys (range | keynum)
 *      │ a spec is unknown or "incomplete"
 *      ▼
 *   the command's own key finder, as Redis falls back to its getkeys_proc
 *   (SORT, SORT_RO, MIGRATE); with no finder, the usable specs' keys stand
 *      │
 *      ▼
 *   positions sorted ascending, duplicates dropped
 *
 * Where this deliberately differs from Redis:
 *   - numkeys = 0 (EVAL s 0, FCALL f 0) gives no keys for that spec instead
 *     of failing the whole lookup; Redis reaches the same answer through its
 *     getkeys_proc fallback.
 *   - "not_key" specs (SPUBLISH/SSUBSCRIBE channels) are returned: sharded
 *     channels are routed by slot exactly like keys.
 *   - Bad arguments (numkeys not a number, negative, beyond argc; a key
 *     range past the end) give -1 where Redis would give 0 keys and then
 *     an error reply: the caller routes the call anywhere and lets the
 *     backend say what is wrong.
 */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"

enum outcome {
    FOUND,     /* keys (maybe none) appended */
    MALFORMED, /* the arguments do not fit the spec */
    UNUSABLE,  /* the spec cannot say (unknown type, "incomplete") */
    FULL,      /* more keys than the caller's array holds */
};

struct found {
    int *keys;
    int n, max;
};

typedef enum outcome key_finder(int argc, const char *const *argv, const size_t *lens,
                                struct found *o);

static bool arg_is(const char *const *argv, const size_t *lens, long long i, const char *word)
{
    size_t n = strlen(word);

    return lens[i] == n && strncasecmp(argv[i], word, n) == 0;
}

/* Redis's string2ll accepted only as a non-negative count: "0" or
 * [1-9][0-9]*, nothing else (no sign, no spaces, no leading zeros). */
static bool parse_count(const char *s, size_t len, long long *out)
{
    long long v = 0;

    if (len == 0 || (len > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > INT_MAX)
            v = INT_MAX; /* beyond any argc: the range check rejects it */
    }
    *out = v;
    return true;
}

static enum outcome push_range(struct found *o, long long first, long long last,
                               long long step)
{
    for (long long i = first; i <= last; i += step) {
        if (o->n >= o->max)
            return FULL;
        o->keys[o->n++] = (int)i;
    }
    return FOUND;
}

/* begin_search: where the keys start. *first = 0 when the keyword is
 * absent (the spec then has no keys). */
static enum outcome spec_begin(const struct keyspec *ks, int argc, const char *const *argv,
                               const size_t *lens, long long *first)
{
    *first = 0;
    if (ks->begin == KS_BEGIN_INDEX) {
        *first = ks->index;
        return FOUND;
    }
    if (ks->begin != KS_BEGIN_KEYWORD)
        return UNUSABLE;
    /* Exactly Redis's walk, including its quirks: a positive startfrom
     * searches forward up to argc-2, a negative one backward down to 2. */
    long long start = ks->startfrom > 0 ? ks->startfrom : (long long)argc + ks->startfrom;
    long long end = ks->startfrom > 0 ? argc - 1 : 1;
    long long dir = start <= end ? 1 : -1;
    for (long long i = start; i != end; i += dir) {
        if (i >= argc || i < 1)
            break;
        if (arg_is(argv, lens, i, ks->keyword)) {
            *first = i + 1;
            break;
        }
    }
    return FOUND;
}

/* find_keys from `first`: append the spec's key positions to o. */
static enum outcome spec_find(const struct keyspec *ks, long long first, int argc,
                              const char *const *argv, const size_t *lens, struct found *o)
{
    long long last, step, numkeys;

    if (ks->find == KS_FIND_RANGE) {
        step = ks->keystep;
        if (ks->lastkey >= 0)
            last = first + ks->lastkey;
        else if (ks->limit == 0)
            last = argc + ks->lastkey;
        else /* e.g. XREAD STREAMS k1 k2 id1 id2: the first 1/limit of the rest */
            last = first + ((argc - first) / ks->limit + ks->lastkey);
    } else if (ks->find == KS_FIND_KEYNUM) {
        long long at = first + ks->keynumidx;
        step = ks->keynumstep;
        if (at >= argc || !parse_count(argv[at], lens[at], &numkeys))
            return MALFORMED;
        if (numkeys == 0)
            return FOUND;
        first += ks->firstkey;
        last = first + numkeys - 1;
    } else {
        return UNUSABLE;
    }
    if (step < 1)
        return UNUSABLE; /* hand-built spec; a reply's is checked on parse */
    if (last >= argc || last < first || first >= argc || first < 1)
        return MALFORMED;
    return push_range(o, first, last, step);
}

static enum outcome keys_from_specs(const struct command_info *c, int argc,
                                    const char *const *argv, const size_t *lens,
                                    struct found *o)
{
    enum outcome worst = FOUND;

    for (size_t i = 0; i < c->nspecs; i++) {
        const struct keyspec *ks = &c->specs[i];
        long long first;
        enum outcome r = spec_begin(ks, argc, argv, lens, &first);

        if (r == FOUND && ks->begin == KS_BEGIN_KEYWORD && first == 0)
            continue; /* optional keyword absent: no keys, and not incomplete */
        if (r == FOUND)
            r = spec_find(ks, first, argc, argv, lens, o);
        if (r == FOUND && (ks->flags & KS_FLAG_INCOMPLETE))
            r = UNUSABLE; /* its keys stay, in case there is no finder */
        if (r == MALFORMED || r == FULL)
            return r;
        if (r == UNUSABLE)
            worst = UNUSABLE;
    }
    return worst;
}

/* Redis 6 style: absolute first/last (negative = from the end) and step. */
static enum outcome keys_from_legacy(const struct command_info *c, int argc, struct found *o)
{
    long long first = c->first_key, last = c->last_key;
    long long step = c->key_step >= 1 ? c->key_step : 1;

    if (first <= 0)
        return FOUND;
    if (last < 0)
        last += argc;
    if (last < first)
        return FOUND;
    if (first + (last - first) / step * step >= argc)
        return MALFORMED; /* Redis: an arity error the command will report */
    return push_range(o, first, last, step);
}

/* ------------------------------------------------------------------------ */
/* Commands whose specs Redis itself marks unknown or incomplete            */

/* sortGetKeys: the key, and the last STORE's argument. Options with
 * arguments are skipped so that e.g. "BY store" is not taken for STORE. */
static enum outcome sort_keys(int argc, const char *const *argv, const size_t *lens,
                              struct found *o)
{
    long long store = 0;

    if (argc < 2)
        return MALFORMED;
    for (long long i = 2; i < argc; i++) {
        if (arg_is(argv, lens, i, "limit"))
            i += 2;
        else if (arg_is(argv, lens, i, "get") || arg_is(argv, lens, i, "by"))
            i += 1;
        else if (arg_is(argv, lens, i, "store") && i + 1 < argc)
            store = i + 1; /* the last STORE wins, as in SORT itself */
    }
    enum outcome r = push_range(o, 1, 1, 1);
    return r == FOUND && store > 0 ? push_range(o, store, store, 1) : r;
}

static enum outcome sort_ro_keys(int argc, const char *const *argv, const size_t *lens,
                                 struct found *o)
{
    return argc < 2 ? MALFORMED : push_range(o, 1, 1, 1);
}

/* migrateGetKeys: argv[3], or with KEYS (and an empty argv[3]) everything
 * after KEYS. AUTH/AUTH2 arguments are skipped so a password "keys" is not
 * taken for the option. */
static enum outcome migrate_keys(int argc, const char *const *argv, const size_t *lens,
                                 struct found *o)
{
    if (argc < 4)
        return MALFORMED;
    for (long long i = 6; i < argc; i++) {
        if (arg_is(argv, lens, i, "keys"))
            return lens[3] != 0 ? MALFORMED : push_range(o, i + 1, argc - 1, 1);
        if (arg_is(argv, lens, i, "auth"))
            i += 1;
        else if (arg_is(argv, lens, i, "auth2"))
            i += 2;
    }
    return push_range(o, 3, 3, 1);
}

static key_finder *own_finder(const char *name)
{
    static const struct { const char *name; key_finder *find; } finders[] = {
        {"sort", sort_keys},
        {"sort_ro", sort_ro_keys},
        {"migrate", migrate_keys},
    };

    for (size_t i = 0; i < sizeof(finders) / sizeof(finders[0]); i++)
        if (strcmp(name, finders[i].name) == 0)
            return finders[i].find;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Result                                                                   */

static void sift_down(int *a, int n, int i)
{
    for (;;) {
        int big = i, l = 2 * i + 1, r = l + 1;
        if (l < n && a[l] > a[big])
            big = l;
        if (r < n && a[r] > a[big])
            big = r;
        if (big == i)
            return;
        int t = a[i];
        a[i] = a[big];
        a[big] = t;
        i = big;
    }
}

/* Sort ascending and drop duplicates in place; returns the new count.
 * Positions almost always come out sorted already (one spec, or specs in
 * argv order), so the heap sort is the rare path; it needs no memory. */
static int sort_unique(int *a, int n)
{
    bool sorted = true;

    for (int i = 1; i < n && sorted; i++)
        sorted = a[i - 1] <= a[i];
    if (!sorted) {
        for (int i = n / 2 - 1; i >= 0; i--)
            sift_down(a, n, i);
        for (int end = n - 1; end > 0; end--) {
            int t = a[0];
            a[0] = a[end];
            a[end] = t;
            sift_down(a, end, 0);
        }
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || a[k - 1] != a[i])
            a[k++] = a[i];
    return k;
}

int command_key_positions(const struct command_info *c, int argc,
                          const char *const *argv, const size_t *lens,
                          int *keys, int max)
{
    struct found o = {.keys = keys, .n = 0, .max = max};
    enum outcome r;
    key_finder *find;

    if (argc < 1)
        return -1;
    if (c->nspecs == 0)
        r = keys_from_legacy(c, argc, &o);
    else
        r = keys_from_specs(c, argc, argv, lens, &o);
    if (r == UNUSABLE && (find = own_finder(c->name)) != NULL) {
        o.n = 0;
        r = find(argc, argv, lens, &o);
    }
    if (r == MALFORMED || r == FULL)
        return -1;
    return sort_unique(keys, o.n);
}
