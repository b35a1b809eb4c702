/* Field scanning of server frames (see scan.h). */
#define _GNU_SOURCE /* memmem */
#include "bench/scan.h"

#include <string.h>

/* Start of the value after "key": in p[0..n), or NULL. */
static const char *value_of(const char *p, size_t n, const char *key)
{
    char pat[40];
    size_t klen = strlen(key);
    if (klen + 3 > sizeof pat)
        return NULL;
    pat[0] = '"';
    memcpy(pat + 1, key, klen);
    pat[klen + 1] = '"';
    pat[klen + 2] = ':';
    const char *at = memmem(p, n, pat, klen + 3);
    return at ? at + klen + 3 : NULL;
}

size_t bench_scan_digits(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    size_t i = 0;
    while (i < len && i < 18 && s[i] >= '0' && s[i] <= '9')
        v = v * 10 + (s[i++] - '0');
    *out = v;
    return i;
}

bool bench_scan_int(const char *p, size_t n, const char *key, int64_t *out)
{
    const char *v = value_of(p, n, key);
    if (v == NULL)
        return false;
    const char *end = p + n;
    bool neg = v < end && *v == '-';
    v += neg;
    if (bench_scan_digits(v, (size_t)(end - v), out) == 0)
        return false;
    if (neg)
        *out = -*out;
    return true;
}

bool bench_scan_str(const char *p, size_t n, const char *key, const char **s, size_t *len)
{
    const char *v = value_of(p, n, key);
    const char *end = p + n;
    if (v == NULL || v >= end || *v != '"')
        return false;
    v++;
    const char *q = memchr(v, '"', (size_t)(end - v));
    while (q != NULL && q[-1] == '\\') /* an escaped quote; texts of others may have them */
        q = memchr(q + 1, '"', (size_t)(end - q - 1));
    if (q == NULL)
        return false;
    *s = v;
    *len = (size_t)(q - v);
    return true;
}

bench_frame_type_t bench_scan_type(const char *p, size_t n)
{
    const char *t;
    size_t len;
    if (!bench_scan_str(p, n, "type", &t, &len))
        return BENCH_FRAME_OTHER;
    switch (len) {
    case 3:
        if (memcmp(t, "msg", 3) == 0)
            return BENCH_FRAME_MSG;
        if (memcmp(t, "ack", 3) == 0)
            return BENCH_FRAME_ACK;
        break;
    case 5:
        if (memcmp(t, "error", 5) == 0)
            return BENCH_FRAME_ERROR;
        break;
    case 6:
        if (memcmp(t, "joined", 6) == 0)
            return BENCH_FRAME_JOINED;
        if (memcmp(t, "typing", 6) == 0)
            return BENCH_FRAME_TYPING;
        if (memcmp(t, "update", 6) == 0)
            return BENCH_FRAME_UPDATE;
        break;
    case 7:
        if (memcmp(t, "welcome", 7) == 0)
            return BENCH_FRAME_WELCOME;
        break;
    }
    return BENCH_FRAME_OTHER;
}
