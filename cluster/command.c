/*
 * command.c — the command table: building it (from the generated built-in
 * list or from a backend's COMMAND reply) and looking commands up.
 *
 *   command_builtin.c ───────────────┐
 *                                    ├─► command_info arrays ─► index
 *   COMMAND reply ─► read_entry… ────┘    (top level +            (open
 *                    (arena copies)        subcommands)            addressing)
 *
 *   command_lookup: argv[0] folded to lower case in a stack buffer (hashed
 *   and checked for '|' in the same pass) → index; if the command has
 *   subcommands, "name|argv[1]" (the hash carried on) → index again.
 *
 * The index holds every name, subcommands as "container|sub", hashed with
 * FNV-1a over the lower-case bytes. Names never contain '|' at the top
 * level, so a client's argv[0] with a '|' is simply unknown (as in Redis)
 * and can never hit a subcommand. Lookups allocate nothing.
 *
 * A table built from a reply owns one arena that holds every array and
 * string, so freeing it is freeing the arena. Strings in a resp_value point
 * into the reply buffer and are copied; nothing here keeps a pointer into
 * the reply. Key positions live in command_keys.c.
 */
#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"

/* Longest name the index can hold, "container|sub" included. Longer names
 * (only a module could have them) are left out and so are unknown. */
#define NAME_MAX_LEN 127
/* Key-spec numbers beyond this are nonsense; bounding them keeps every
 * position computation far from int overflow. */
#define SPEC_NUM_MAX (1 << 24)

/* Defined in the generated command_builtin.c (there is no private header). */
extern const struct command_info command_builtin_list[];
extern const size_t command_builtin_count;

struct index_slot {
    const struct command_info *info; /* NULL = empty */
    uint32_t hash;
    uint32_t len;
};

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

struct command_table {
    size_t ncommands;                    /* top level only */
    const struct command_info *commands;
    struct index_slot *index;
    size_t index_mask;
    struct arena_chunk *arena;           /* NULL for the built-in table */
};

/* ------------------------------------------------------------------------ */
/* Names and the index                                                      */

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = FNV_OFFSET;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h;
}

/* A client's name on its way into the index: folded to lower case in buf
 * (NAME_MAX_LEN + 1 bytes), hashed as name_hash would hash the folded
 * bytes, and searched for '|', all in the one pass lookups make over it. */
struct folded {
    char buf[NAME_MAX_LEN + 1];
    size_t len;
    uint32_t hash;
    bool has_bar;
};

/* Appends s to f (FNV-1a continues over the appended bytes). False when it
 * would not fit, so the name cannot be in the index. */
static bool fold_append(struct folded *f, const char *s, size_t len)
{
    if (f->len > NAME_MAX_LEN || len > NAME_MAX_LEN - f->len)
        return false;
    uint32_t h = f->hash;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        ch = ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
        f->has_bar |= ch == '|';
        f->buf[f->len + i] = ch;
        h = (h ^ (unsigned char)ch) * FNV_PRIME;
    }
    f->len += len;
    f->hash = h;
    return true;
}

static const struct command_info *index_find_hashed(const struct command_table *t,
                                                    const char *name, size_t len, uint32_t h)
{
    for (size_t i = h & t->index_mask;; i = (i + 1) & t->index_mask) {
        const struct index_slot *s = &t->index[i];
        if (s->info == NULL)
            return NULL;
        if (s->hash == h && s->len == len && memcmp(s->info->name, name, len) == 0)
            return s->info;
    }
}

static const struct command_info *index_find(const struct command_table *t,
                                             const char *name, size_t len)
{
    return index_find_hashed(t, name, len, name_hash(name, len));
}

/* Insert c (whose name is already lower case). Returns false for a
 * duplicate name. The index is sized so it never fills up. */
static bool index_add(struct command_table *t, const struct command_info *c)
{
    size_t len = strlen(c->name);

    if (len > NAME_MAX_LEN)
        return true; /* unknown by design, see NAME_MAX_LEN */
    if (index_find(t, c->name, len) != NULL)
        return false;
    uint32_t h = name_hash(c->name, len);
    size_t i = h & t->index_mask;
    while (t->index[i].info != NULL)
        i = (i + 1) & t->index_mask;
    t->index[i] = (struct index_slot){.info = c, .hash = h, .len = (uint32_t)len};
    return true;
}

static size_t count_names(const struct command_info *list, size_t n)
{
    size_t total = n;

    for (size_t i = 0; i < n; i++)
        total += list[i].nsubcommands;
    return total;
}

/* Index size: a power of two at least twice the names (≤ 50% load). */
static size_t index_size(size_t names)
{
    size_t size = 16;

    while (size < 2 * names)
        size *= 2;
    return size;
}

static bool index_all(struct command_table *t)
{
    for (size_t i = 0; i < t->ncommands; i++) {
        const struct command_info *c = &t->commands[i];
        if (!index_add(t, c))
            return false;
        for (size_t j = 0; j < c->nsubcommands; j++)
            if (!index_add(t, &c->subcommands[j]))
                return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/* The built-in table                                                       */

/* Enough for Redis 7.0's 240 commands and 126 subcommands with room to
 * grow; build_builtin asserts the generated list still fits. */
#define BUILTIN_INDEX_SIZE 2048

static struct index_slot builtin_index[BUILTIN_INDEX_SIZE];
static struct command_table builtin_table;
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

/* Runs once; afterwards the table is only read, from any thread. */
static void build_builtin(void)
{
    builtin_table.ncommands = command_builtin_count;
    builtin_table.commands = command_builtin_list;
    builtin_table.index = builtin_index;
    builtin_table.index_mask = BUILTIN_INDEX_SIZE - 1;
    assert(index_size(count_names(command_builtin_list, command_builtin_count)) <=
           BUILTIN_INDEX_SIZE);
    bool unique = index_all(&builtin_table);
    assert(unique); /* the generator sorted and checked the names */
    (void)unique;
}

const struct command_table *command_table_builtin(void)
{
    pthread_once(&builtin_once, build_builtin);
    return &builtin_table;
}

/* ------------------------------------------------------------------------ */
/* Lookup                                                                   */

const struct command_info *command_lookup(const struct command_table *t,
                                          int argc, const char *const *argv,
                                          const size_t *lens)
{
    struct folded f; /* not zeroed: only buf[0, len) is ever read */

    f.len = 0;
    f.hash = FNV_OFFSET;
    f.has_bar = false;
    if (argc < 1 || lens[0] == 0 || !fold_append(&f, argv[0], lens[0]) || f.has_bar)
        return NULL;
    const struct command_info *c = index_find_hashed(t, f.buf, f.len, f.hash);
    if (c == NULL || c->nsubcommands == 0 || argc < 2)
        return c;
    /* "container|sub": the hash goes on over '|' and argv[1] */
    if (!fold_append(&f, "|", 1) || !fold_append(&f, argv[1], lens[1]))
        return c; /* too long to be a subcommand: the container */
    const struct command_info *sub = index_find_hashed(t, f.buf, f.len, f.hash);
    return sub != NULL ? sub : c; /* unknown subcommand: the container */
}

bool command_arity_ok(const struct command_info *c, int argc)
{
    return c->arity >= 0 ? argc == c->arity : argc >= -c->arity;
}

size_t command_table_size(const struct command_table *t)
{
    return t->ncommands;
}

const struct command_info *command_table_at(const struct command_table *t, size_t i)
{
    return &t->commands[i];
}

/* ------------------------------------------------------------------------ */
/* Arena for tables built from a reply                                      */

static void *arena_alloc(struct arena_chunk **head, size_t size)
{
    size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (*head == NULL || (*head)->cap - (*head)->used < size) {
        size_t cap = size > 65536 ? size : 65536;
        struct arena_chunk *c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->next = *head;
        c->used = 0;
        c->cap = cap;
        *head = c;
    }
    void *p = (*head)->data + (*head)->used;
    (*head)->used += size;
    return memset(p, 0, size);
}

static void arena_free(struct arena_chunk *c)
{
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
}

/* ------------------------------------------------------------------------ */
/* Reading a COMMAND reply                                                  */

/* Parsing state: the arena everything goes into, and the first error. */
struct reader {
    struct arena_chunk *arena;
    const char *err;
};

static bool fail(struct reader *r, const char *err)
{
    if (r->err == NULL)
        r->err = err;
    return false;
}

static bool is_string(const struct resp_value *v)
{
    return !v->is_null && (v->type == RESP_T_BULK || v->type == RESP_T_SIMPLE ||
                           v->type == RESP_T_VERBATIM);
}

/* Arrays, sets, and maps all carry a flat elems[] (a map's is name, value…). */
static bool is_list(const struct resp_value *v)
{
    return !v->is_null &&
           (v->type == RESP_T_ARRAY || v->type == RESP_T_SET || v->type == RESP_T_MAP);
}

static bool str_is(const struct resp_value *v, const char *s)
{
    size_t n = strlen(s);

    return v != NULL && is_string(v) && v->len == n && strncasecmp(v->str, s, n) == 0;
}

/* A RESP3 map or a RESP2 flat [name, value, …] array: value of `key`. */
static const struct resp_value *map_get(const struct resp_value *map, const char *key)
{
    if (!is_list(map) || map->count % 2 != 0)
        return NULL;
    for (size_t i = 0; i < map->count; i += 2)
        if (str_is(&map->elems[i], key))
            return &map->elems[i + 1];
    return NULL;
}

static bool get_int(struct reader *r, const struct resp_value *map, const char *key,
                    int *out)
{
    const struct resp_value *v = map_get(map, key);

    if (v == NULL || v->type != RESP_T_INTEGER)
        return fail(r, "key spec number missing or not an integer");
    if (v->integer < -SPEC_NUM_MAX || v->integer > SPEC_NUM_MAX)
        return fail(r, "key spec number out of range");
    *out = (int)v->integer;
    return true;
}

/* Arena copy of a string, lower-cased if asked, NUL-terminated. */
static char *copy_string(struct reader *r, const struct resp_value *v, bool lower)
{
    if (v->len > 0 && memchr(v->str, '\0', v->len) != NULL)
        return fail(r, "NUL byte in a command name or keyword"), NULL;
    char *s = arena_alloc(&r->arena, v->len + 1);
    if (s == NULL)
        return fail(r, "out of memory"), NULL;
    memcpy(s, v->str, v->len);
    s[v->len] = '\0'; /* arena memory is not zeroed */
    if (lower)
        cluster_lower(s, v->len + 1, s, v->len);
    return s;
}

static bool read_begin(struct reader *r, const struct resp_value *bs, struct keyspec *ks)
{
    const struct resp_value *type = map_get(bs, "type");
    const struct resp_value *spec = map_get(bs, "spec");

    ks->begin = KS_BEGIN_UNKNOWN;
    if (str_is(type, "index")) {
        ks->begin = KS_BEGIN_INDEX;
        return get_int(r, spec, "index", &ks->index);
    }
    if (str_is(type, "keyword")) {
        const struct resp_value *kw = map_get(spec, "keyword");
        ks->begin = KS_BEGIN_KEYWORD;
        if (kw == NULL || !is_string(kw))
            return fail(r, "key spec keyword missing");
        return (ks->keyword = copy_string(r, kw, false)) != NULL &&
               get_int(r, spec, "startfrom", &ks->startfrom);
    }
    return type != NULL && is_string(type) ? true : fail(r, "key spec begin_search has no type");
}

static bool read_find(struct reader *r, const struct resp_value *fk, struct keyspec *ks)
{
    const struct resp_value *type = map_get(fk, "type");
    const struct resp_value *spec = map_get(fk, "spec");

    ks->find = KS_FIND_UNKNOWN;
    if (str_is(type, "range")) {
        ks->find = KS_FIND_RANGE;
        if (!get_int(r, spec, "lastkey", &ks->lastkey) ||
            !get_int(r, spec, "keystep", &ks->keystep) ||
            !get_int(r, spec, "limit", &ks->limit))
            return false;
        if (ks->keystep < 1 || ks->limit < 0)
            return fail(r, "key spec range needs keystep >= 1 and limit >= 0");
        return true;
    }
    if (str_is(type, "keynum")) {
        ks->find = KS_FIND_KEYNUM;
        if (!get_int(r, spec, "keynumidx", &ks->keynumidx) ||
            !get_int(r, spec, "firstkey", &ks->firstkey) ||
            !get_int(r, spec, "keystep", &ks->keynumstep))
            return false;
        if (ks->keynumstep < 1 || ks->keynumidx < 0)
            return fail(r, "key spec keynum needs keystep >= 1 and keynumidx >= 0");
        return true;
    }
    return type != NULL && is_string(type) ? true : fail(r, "key spec find_keys has no type");
}

static uint32_t read_spec_flags(const struct resp_value *flags)
{
    uint32_t out = 0;

    for (size_t i = 0; flags != NULL && is_list(flags) && i < flags->count; i++) {
        const struct resp_value *f = &flags->elems[i];
        if (str_is(f, "incomplete"))
            out |= KS_FLAG_INCOMPLETE;
        else if (str_is(f, "not_key"))
            out |= KS_FLAG_NOT_KEY;
        else if (str_is(f, "variable_flags"))
            out |= KS_FLAG_VARIABLE_FLAGS;
    }
    return out;
}

static bool read_specs(struct reader *r, const struct resp_value *v, struct command_info *c)
{
    if (!is_list(v) || v->type == RESP_T_MAP)
        return fail(r, "key specs are not an array");
    if (v->count == 0)
        return true;
    struct keyspec *specs = arena_alloc(&r->arena, v->count * sizeof(*specs));
    if (specs == NULL)
        return fail(r, "out of memory");
    for (size_t i = 0; i < v->count; i++) {
        const struct resp_value *m = &v->elems[i];
        const struct resp_value *bs = map_get(m, "begin_search");
        const struct resp_value *fk = map_get(m, "find_keys");
        if (bs == NULL || fk == NULL)
            return fail(r, "key spec without begin_search or find_keys");
        if (!read_begin(r, bs, &specs[i]) || !read_find(r, fk, &specs[i]))
            return false;
        specs[i].flags = read_spec_flags(map_get(m, "flags"));
    }
    c->specs = specs;
    c->nspecs = v->count;
    return true;
}

static uint32_t read_flags(const struct resp_value *flags)
{
    static const struct { const char *name; uint32_t flag; } map[] = {
        {"write", CMD_WRITE},       {"readonly", CMD_READONLY},
        {"blocking", CMD_BLOCKING}, {"noscript", CMD_NOSCRIPT},
        {"pubsub", CMD_PUBSUB},     {"movablekeys", CMD_MOVABLE_KEYS},
        {"admin", CMD_ADMIN},
    };
    uint32_t out = 0;

    for (size_t i = 0; i < flags->count; i++)
        for (size_t j = 0; j < sizeof(map) / sizeof(map[0]); j++)
            if (str_is(&flags->elems[i], map[j].name))
                out |= map[j].flag;
    return out;
}

static bool get_legacy(struct reader *r, const struct resp_value *v, int *out)
{
    if (v->type != RESP_T_INTEGER || v->integer < -SPEC_NUM_MAX || v->integer > SPEC_NUM_MAX)
        return fail(r, "arity or key range is not a small integer");
    *out = (int)v->integer;
    return true;
}

/* Redis 6 COMMAND has no key specs, so its movable-keys commands would be
 * found by first/last/step only, which is wrong for them. When the built-in
 * table knows the command, borrow its specs (static, never freed). */
static void borrow_builtin_specs(struct command_info *c)
{
    const struct command_table *b = command_table_builtin();
    const struct command_info *known = index_find(b, c->name, strlen(c->name));

    if (known != NULL && known->nspecs > 0) {
        c->specs = known->specs;
        c->nspecs = known->nspecs;
    }
}

static bool read_entries(struct reader *r, const struct resp_value *list,
                         const char *container, struct command_info **out);

/* [name, arity, flags, first, last, step, acl?, tips?, specs?, subcommands?] */
static bool read_entry(struct reader *r, const struct resp_value *e, const char *container,
                       struct command_info *c)
{
    const struct resp_value *f = e->elems;

    if (!is_list(e) || e->type == RESP_T_MAP || e->count < 6)
        return fail(r, "COMMAND entry is not an array of at least 6 fields");
    if (!is_string(&f[0]) || !is_list(&f[2]))
        return fail(r, "COMMAND entry has a bad name or flags");
    if ((c->name = copy_string(r, &f[0], true)) == NULL)
        return false;
    if (container != NULL &&
        (strncmp(c->name, container, strlen(container)) != 0 ||
         c->name[strlen(container)] != '|'))
        return fail(r, "subcommand name does not start with its container's");
    if (!get_legacy(r, &f[1], &c->arity) || !get_legacy(r, &f[3], &c->first_key) ||
        !get_legacy(r, &f[4], &c->last_key) || !get_legacy(r, &f[5], &c->key_step))
        return false;
    c->flags = read_flags(&f[2]);
    if (e->count > 8 && !read_specs(r, &f[8], c))
        return false;
    if (c->nspecs == 0 && (c->flags & CMD_MOVABLE_KEYS))
        borrow_builtin_specs(c);
    /* Redis has one level of subcommands; deeper ones are not looked up. */
    if (e->count > 9 && container == NULL && !f[9].is_null && f[9].type != RESP_T_NULL) {
        struct command_info *subs;
        if (!read_entries(r, &f[9], c->name, &subs))
            return false;
        c->subcommands = subs;
        c->nsubcommands = f[9].count;
    }
    return true;
}

static bool read_entries(struct reader *r, const struct resp_value *list,
                         const char *container, struct command_info **out)
{
    if (!is_list(list) || list->type == RESP_T_MAP)
        return fail(r, container ? "subcommands are not an array" : "COMMAND reply is not an array");
    *out = NULL;
    if (list->count == 0)
        return true;
    struct command_info *cs = arena_alloc(&r->arena, list->count * sizeof(*cs));
    if (cs == NULL)
        return fail(r, "out of memory");
    for (size_t i = 0; i < list->count; i++)
        if (!read_entry(r, &list->elems[i], container, &cs[i]))
            return false;
    *out = cs;
    return true;
}

struct command_table *command_table_from_reply(const struct resp_value *reply,
                                               const char **err)
{
    struct reader r = {0};
    struct command_info *cs = NULL;
    struct command_table *t = NULL;

    if (read_entries(&r, reply, NULL, &cs)) {
        size_t size = index_size(count_names(cs, reply->count));
        t = arena_alloc(&r.arena, sizeof(*t));
        struct index_slot *index = arena_alloc(&r.arena, size * sizeof(*index));
        if (t == NULL || index == NULL) {
            fail(&r, "out of memory");
        } else {
            *t = (struct command_table){.ncommands = reply->count, .commands = cs,
                                        .index = index, .index_mask = size - 1};
            if (!index_all(t))
                fail(&r, "duplicate command name in COMMAND reply");
        }
    }
    if (r.err != NULL) {
        arena_free(r.arena);
        *err = r.err;
        return NULL;
    }
    t->arena = r.arena; /* the table lives inside its own arena */
    return t;
}

void command_table_free(struct command_table *t)
{
    if (t == NULL || t == &builtin_table)
        return;
    arena_free(t->arena);
}
