/*
 * resp/value.c — the tree reader: one whole reply into a struct resp_value
 * tree, for the control thread (CLUSTER SLOTS, COMMAND) and the tests. Not
 * on the request path, so it is not incremental: it rereads from buf[0] on
 * every call and says RESP_NEED_MORE until the whole reply is there.
 *
 * No recursion, in either direction. Reading keeps an explicit heap stack
 * of open aggregates; each frame points at the aggregate whose elements are
 * being filled:
 *
 *     slot = out
 *     loop: read the header at pos into *slot
 *           aggregate with elements -> push it
 *           attribute               -> move it aside, push it; when it is
 *                                      complete, free it and read the real
 *                                      value into the same slot
 *           pop finished frames; slot = next unfilled element of the top
 *           stack empty -> done
 *
 * Memory is bounded by the input, never by a count off the wire: `owed`
 * counts elements promised but not yet started, and since every element
 * takes at least 3 bytes ("_\r\n"), a header that makes owed exceed the
 * remaining bytes / 3 cannot be complete yet, so we say RESP_NEED_MORE
 * before allocating anything for it.
 */
#include <stdlib.h>
#include <string.h>

#include "resp.h"

#define MIN_ELEM_BYTES 3
/* Same cap as the reply parser: counts beyond it are garbage. */
#define MAX_COUNT (1ll << 32)

struct frame {
    struct resp_value *agg;    /* aggregate being filled */
    size_t next;               /* its next unfilled element */
    struct resp_value *target; /* attribute only: agg is a detached heap
                                  copy; the annotated value goes here */
};

struct stack {
    struct frame *f;
    size_t n, cap;
};

static void *xrealloc(void *p, size_t size)
{
    p = realloc(p, size);
    if (p == NULL)
        abort(); /* as Redis's zmalloc: no recovery from OOM */
    return p;
}

static void push(struct stack *st, struct frame fr)
{
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->f = xrealloc(st->f, st->cap * sizeof(*st->f));
    }
    st->f[st->n++] = fr;
}

static bool is_aggregate(char t)
{
    return t == '*' || t == '%' || t == '~' || t == '>' || t == '|';
}

/* The line starting at buf[pos] (type byte included) ends with the CRLF at
 * *eol. RESP_ERROR if a '\r' is not followed by '\n'. */
static enum resp_result find_line(const char *buf, size_t len, size_t pos,
                                  size_t *eol)
{
    const char *cr = memchr(buf + pos, '\r', len - pos);

    if (cr == NULL || (size_t)(cr - buf) + 1 >= len)
        return RESP_NEED_MORE;
    if (cr[1] != '\n')
        return RESP_ERROR;
    *eol = (size_t)(cr - buf);
    return RESP_OK;
}

/* '$', '!', '=': the payload follows the length line. */
static enum resp_result read_blob(const char *buf, size_t len, size_t *pos,
                                  long long n, struct resp_value *v)
{
    if (n == -1 && v->type == RESP_T_BULK) {
        v->is_null = true;
        return RESP_OK;
    }
    if (n < 0)
        return RESP_ERROR;
    if ((unsigned long long)n > len - *pos || len - *pos - (size_t)n < 2)
        return RESP_NEED_MORE;
    if (buf[*pos + (size_t)n] != '\r' || buf[*pos + (size_t)n + 1] != '\n')
        return RESP_ERROR;
    v->str = buf + *pos;
    v->len = (size_t)n;
    *pos += (size_t)n + 2;
    return RESP_OK;
}

/* '*', '%', '~', '>', '|': allocate the elements once the bytes left can
 * hold them (see the file comment). */
static enum resp_result read_agg(size_t left, long long n, uint64_t *owed,
                                 struct resp_value *v)
{
    if (n == -1 && v->type == RESP_T_ARRAY) {
        v->is_null = true;
        return RESP_OK;
    }
    if (n < 0 || n > MAX_COUNT)
        return RESP_ERROR;
    v->count = (size_t)n;
    if (v->type == RESP_T_MAP || v->type == RESP_T_ATTRIBUTE)
        v->count *= 2;
    *owed += v->count + (v->type == RESP_T_ATTRIBUTE); /* + annotated value */
    if (*owed > (left / MIN_ELEM_BYTES)) {
        v->count = 0; /* nothing allocated: keep *v freeable */
        return RESP_NEED_MORE;
    }
    if (v->count > 0) {
        v->elems = calloc(v->count, sizeof(*v->elems));
        if (v->elems == NULL)
            abort();
    }
    return RESP_OK;
}

/* Reads one header (and a blob's payload) at *pos into *v, which is zeroed
 * first. The element itself was already counted in *owed. Doubles and big
 * numbers stay text; a verbatim string's str keeps its "txt:" prefix. */
static enum resp_result read_header(const char *buf, size_t len, size_t *pos,
                                    uint64_t *owed, struct resp_value *v)
{
    size_t eol;
    enum resp_result r;

    memset(v, 0, sizeof(*v));
    if (*pos >= len)
        return RESP_NEED_MORE;
    if ((r = find_line(buf, len, *pos, &eol)) != RESP_OK)
        return r;

    const char *s = buf + *pos + 1;
    size_t n = eol - *pos - 1;
    char t = buf[*pos];
    long long num = 0;

    v->type = (enum resp_type)t;
    *pos = eol + 2;
    (*owed)--;
    if (t == '$' || t == '!' || t == '=' || is_aggregate(t)) {
        if (!resp_string2ll(s, n, &num))
            return RESP_ERROR; /* includes streamed "?" lengths */
        return is_aggregate(t) ? read_agg(len - *pos, num, owed, v)
                               : read_blob(buf, len, pos, num, v);
    }
    switch (t) {
    case '+': case '-': case ',': case '(':
        v->str = s;
        v->len = n;
        return RESP_OK;
    case ':':
        return resp_string2ll(s, n, &v->integer) ? RESP_OK : RESP_ERROR;
    case '#':
        if (n != 1 || (s[0] != 't' && s[0] != 'f'))
            return RESP_ERROR;
        v->integer = s[0] == 't';
        return RESP_OK;
    case '_':
        v->is_null = true;
        return n == 0 ? RESP_OK : RESP_ERROR;
    default:
        return RESP_ERROR;
    }
}

/* Pops finished frames. Returns the next slot to fill, or NULL when the
 * whole reply is complete. */
static struct resp_value *next_slot(struct stack *st)
{
    while (st->n > 0) {
        struct frame *top = &st->f[st->n - 1];

        if (top->next < top->agg->count)
            return &top->agg->elems[top->next++];
        st->n--;
        if (top->target != NULL) {
            resp_value_free(top->agg);
            free(top->agg);
            return top->target;
        }
    }
    return NULL;
}

/* After a failure: free the detached attributes still on the stack (the
 * rest of the partial tree hangs off *out and is freed with it). */
static void drop_stack(struct stack *st)
{
    for (size_t i = 0; i < st->n; i++) {
        if (st->f[i].target != NULL) {
            resp_value_free(st->f[i].agg);
            free(st->f[i].agg);
        }
    }
    free(st->f);
}

enum resp_result resp_read_value(const char *buf, size_t len,
                                 struct resp_value *out, size_t *used)
{
    struct stack st = { 0 };
    struct resp_value *slot = out;
    size_t pos = 0;
    uint64_t owed = 1;
    enum resp_result r;

    memset(out, 0, sizeof(*out));
    while (slot != NULL) {
        if ((r = read_header(buf, len, &pos, &owed, slot)) != RESP_OK) {
            drop_stack(&st);
            resp_value_free(out);
            return r;
        }
        if (slot->type == RESP_T_ATTRIBUTE) {
            /* Park the attribute off the tree; the slot stays for the
             * value it annotates. */
            struct resp_value *attr = xrealloc(NULL, sizeof(*attr));

            *attr = *slot;
            memset(slot, 0, sizeof(*slot));
            push(&st, (struct frame){ .agg = attr, .target = slot });
        } else if (slot->count > 0) {
            push(&st, (struct frame){ .agg = slot });
        }
        slot = next_slot(&st);
    }
    free(st.f);
    *used = pos;
    return RESP_OK;
}

/* Iterative too: a 10^6-deep reply must not exhaust the C stack. */
void resp_value_free(struct resp_value *v)
{
    struct stack st = { 0 };

    if (v == NULL)
        return;
    if (v->elems != NULL)
        push(&st, (struct frame){ .agg = v });
    while (st.n > 0) {
        struct frame *top = &st.f[st.n - 1];
        struct resp_value *e;

        if (top->next == top->agg->count) {
            free(top->agg->elems);
            st.n--;
            continue;
        }
        e = &top->agg->elems[top->next++];
        if (e->elems != NULL)
            push(&st, (struct frame){ .agg = e }); /* may move st.f */
    }
    free(st.f);
    memset(v, 0, sizeof(*v));
}
