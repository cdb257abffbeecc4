/*
 * resp/number.c — decimal integers as Redis reads them off the wire.
 *
 * Every length and count in RESP goes through this one function so that the
 * proxy accepts exactly the spellings Redis 7.0's string2ll() accepts: what
 * Redis would reject as "invalid bulk length", the proxy rejects too.
 */
#include <limits.h>

#include "resp.h"

/* Redis's LONG_STR_SIZE: "-9223372036854775808" plus one. */
#define LL_STR_MAX 21

bool resp_string2ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    bool negative = false;
    unsigned long long v;

    if (len == 0 || len >= LL_STR_MAX)
        return false;
    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (s[0] == '-') {
        negative = true;
        if (++i == len)
            return false;
    }
    /* After the sign the first digit must be 1-9: this rejects "-0", "00"
     * and "+1" as Redis does. */
    if (s[i] < '1' || s[i] > '9')
        return false;
    v = (unsigned long long)(s[i++] - '0');
    for (; i < len; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > ULLONG_MAX / 10 || v * 10 > ULLONG_MAX - d)
            return false;
        v = v * 10 + d;
    }
    if (negative) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        /* Negate in unsigned arithmetic: -(LLONG_MIN) does not fit. */
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
                                                      : -(long long)v;
    } else {
        if (v > LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}
