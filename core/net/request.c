/*
 * request.c — requests: their lifetime (request_new, request_adopt,
 * request_free) and what they carry. A request made for a parsed client
 * command carries its command table flags and slot, set by dispatch
 * (request_set_command); one made from bytes alone (a MULTI block, a
 * link's own HELLO or AUTH) has them worked out from its bytes when asked
 * (request_flags). And the argument scratch space parsing needs (struct
 * arg_scratch: the worker's for dispatch, a private one here, since it may
 * run while dispatch uses the worker's).
 */
#include <stdlib.h>
#include <string.h>

#include "net.h"

struct request *request_new(const char *bytes, size_t len)
{
    struct request *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->buf = len > REQ_INLINE_BYTES ? malloc(len) : r->inline_bytes;
    if (!r->buf)
        abort();
    if (len)
        memcpy(r->buf, bytes, len);
    r->len = len;
    r->slot = REQ_SLOT_UNKNOWN;
    return r;
}

struct request *request_adopt(struct resp_buf *b)
{
    if (b->len <= REQ_INLINE_BYTES) {
        struct request *r = request_new(b->data, b->len);
        resp_buf_free(b);
        return r;
    }
    struct request *r = request_new(NULL, 0);
    r->buf = b->data;
    r->len = b->len;
    memset(b, 0, sizeof *b);
    return r;
}

void request_free(struct request *r)
{
    if (r->fan)
        r->fan_worker->net_hooks->fanout_free(r);
    auth_put(r->auth_result);
    if (r->buf != r->inline_bytes)
        free(r->buf);
    free(r->reply);
    free(r);
}

void request_set_command(struct request *r, uint32_t flags, int slot)
{
    r->cmd_flags = flags;
    r->slot = slot;
}

/* Make sure the worker's scratch arrays hold n arguments. */
void arg_scratch_reserve(struct arg_scratch *s, size_t n)
{
    if (n <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    s->argv = realloc(s->argv, cap * sizeof *s->argv);
    s->lens = realloc(s->lens, cap * sizeof *s->lens);
    s->keys = realloc(s->keys, cap * sizeof *s->keys);
    if (!s->argv || !s->lens || !s->keys)
        abort();
    s->cap = cap;
}

void arg_scratch_free(struct arg_scratch *s)
{
    free(s->argv);
    free(s->lens);
    free(s->keys);
    *s = (struct arg_scratch){0};
}

/* ------------------------------------------------------------------------ */
/* What a request carries                                                    */

/* Flags and first-key slot of one parsed command; *slot untouched when it
 * has no key. */
static uint32_t one_command(struct worker *w, struct resp_req_parser *p, const char *buf,
                            struct arg_scratch *s, int *slot)
{
    arg_scratch_reserve(s, p->argc);
    for (size_t i = 0; i < p->argc; i++) {
        s->argv[i] = resp_req_arg(p, buf, i);
        s->lens[i] = p->argv[i].len;
    }
    const struct command_info *ci = command_lookup(w->cmds, (int)p->argc, s->argv, s->lens);
    if (!ci)
        return 0;
    int n = command_key_positions(ci, (int)p->argc, s->argv, s->lens, s->keys, (int)p->argc);
    if (n > 0 && *slot < 0)
        *slot = (int)cluster_keyslot(s->argv[s->keys[0]], s->lens[s->keys[0]]);
    return ci->flags;
}

/*
 * The command table flags of the command r carries (0 if unknown, and for
 * a MULTI block), and the slot of its first key (-1 if none; for a block,
 * that of the first command in it with a key). Parses r's bytes (which the
 * proxy wrote or checked, so they parse) with its own scratch space: it may
 * run while dispatch uses the worker's.
 */
uint32_t request_flags(struct worker *w, const struct request *r, int *slot)
{
    if (r->slot != REQ_SLOT_UNKNOWN) { /* set by dispatch */
        *slot = r->slot;
        return r->cmd_flags;
    }
    struct resp_req_parser p;
    struct arg_scratch s = {0};
    uint32_t flags = 0;
    size_t off = 0;
    resp_req_init(&p);
    p.max_bulk = p.max_query = (long long)r->len;
    *slot = -1;
    while (off < r->len && resp_parse_request(&p, r->buf + off, r->len - off) == RESP_OK) {
        if (p.argc > 0)
            flags = one_command(w, &p, r->buf + off, &s, slot);
        if (!r->is_block || *slot >= 0)
            break;
        off += p.len;
        resp_req_next(&p);
    }
    resp_req_free(&p);
    arg_scratch_free(&s);
    return r->is_block ? 0 : flags;
}

bool request_readonly(struct worker *w, const struct request *r, int *slot)
{
    uint32_t flags = request_flags(w, r, slot);
    return (flags & CMD_READONLY) && !(flags & CMD_WRITE);
}
