/*
 * Backend identities of clients that AUTH as another ACL user.
 *
 * Without --requirepass, ringslot authenticates clients implicitly with the
 * backend credentials (--auth/--auth-user). A client that AUTHs as someone
 * else is checked by the backend itself (its AUTH goes over a link that
 * authenticates with those credentials), and from then on its calls use
 * links keyed by that identity, so the backend applies that user's ACL to
 * everything, fan-outs included.
 *
 * An identity is interned per worker (links compare it by pointer) and
 * reference-counted: by each client that authenticated as it, each link
 * keyed by it, and a pending AUTH request. Worker-owned; no locking.
 */
#include <stdlib.h>
#include <string.h>

#include "net.h"

static char *dup_bytes(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (!d)
        abort();
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

struct auth_id *auth_intern(struct worker *w, const char *user, size_t ulen,
                            const char *pass, size_t plen)
{
    for (struct auth_id *a = w->auths; a; a = a->next)
        if (strlen(a->user) == ulen && memcmp(a->user, user, ulen) == 0 &&
            strlen(a->pass) == plen && memcmp(a->pass, pass, plen) == 0) {
            a->refs++;
            return a;
        }
    struct auth_id *a = calloc(1, sizeof *a);
    if (!a)
        abort();
    a->w = w;
    a->refs = 1;
    a->user = dup_bytes(user, ulen);
    a->pass = dup_bytes(pass, plen);
    a->next = w->auths;
    w->auths = a;
    return a;
}

struct auth_id *auth_get(struct auth_id *a)
{
    if (a)
        a->refs++;
    return a;
}

void auth_put(struct auth_id *a)
{
    if (!a || --a->refs > 0)
        return;
    for (struct auth_id **p = &a->w->auths; *p; p = &(*p)->next)
        if (*p == a) {
            *p = a->next;
            break;
        }
    /* wipe the secret before the memory goes back */
    memset(a->pass, 0, strlen(a->pass));
    free(a->user);
    free(a->pass);
    free(a);
}

/* "AUTH user pass" as RESP, for a link keyed by this identity. */
void auth_command(const struct auth_id *a, struct resp_buf *b)
{
    const char *argv[3] = {"AUTH", a->user, a->pass};
    size_t lens[3] = {4, strlen(a->user), strlen(a->pass)};
    resp_write_command(b, 3, argv, lens);
}
