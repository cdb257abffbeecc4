/*
 * Text helpers the modules above share: splitting "host:port" (config,
 * consensus, the links and the control thread all read addresses) and
 * ASCII lower-casing (command names, config directives), a field of an
 * INFO reply (the control thread's node facts and replica checks). Pure
 * functions, no allocation.
 */
#include <string.h>

#include "cluster.h"

/* Decimal digits only (leading zeros allowed, as atoi and strtoll take
 * them), 1..65535. */
static bool parse_port(const char *s, int *out)
{
    long v = 0;
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (*s - '0');
        if (v > 65535)
            return false;
    }
    if (v == 0)
        return false;
    *out = (int)v;
    return true;
}

bool cluster_addr_split(const char *addr, char *host, size_t host_len, int *port)
{
    const char *h = addr, *colon;
    size_t n;
    if (addr[0] == '[') { /* "[v6]:port" */
        const char *close = strchr(addr, ']');
        if (close == NULL || close == addr + 1 || close[1] != ':')
            return false;
        h = addr + 1;
        n = (size_t)(close - h);
        colon = close + 1;
    } else { /* the last ':' ends the host, so a bare v6 address passes */
        colon = strrchr(addr, ':');
        if (colon == NULL)
            return false;
        n = (size_t)(colon - addr);
    }
    if (n >= host_len || !parse_port(colon + 1, port))
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    return true;
}

bool cluster_info_field(const char *text, size_t len, const char *name, char *out,
                        size_t cap)
{
    size_t kl = strlen(name);
    out[0] = '\0';
    for (const char *p = text, *end = text + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((eol ? eol : end) - p);
        if (n > kl && memcmp(p, name, kl) == 0 && p[kl] == ':') {
            size_t vl = n - kl - 1 - (p[n - 1] == '\r');
            if (vl >= cap)
                return false;
            memcpy(out, p + kl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        p += n + 1;
    }
    return false;
}

size_t cluster_lower(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        dst[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + ('a' - 'A')) : ch;
    }
    dst[n] = '\0';
    return n;
}
