/* WebSocket framing for the bench (see ws_frame.h); the accept value comes from the tools'
 * client (chat_ws_accept_key), so both clients check servers the same way. */
#define _GNU_SOURCE /* memmem */
#include "bench/ws_frame.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

void bench_ws_key_new(const unsigned char nonce[16], char key[BENCH_WS_KEY_LEN + 1],
                      char accept[CHAT_WS_ACCEPT_LEN + 1])
{
    EVP_EncodeBlock((unsigned char *)key, nonce, 16);
    key[BENCH_WS_KEY_LEN] = '\0';
    chat_ws_accept_key(key, accept);
}

size_t bench_ws_upgrade_request(char *buf, size_t cap, const char *host, const char *path,
                                const char *key)
{
    int n = snprintf(buf, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: chat-bench/1\r\n\r\n",
                     path, host, key);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

long bench_ws_upgrade_check(const char *buf, size_t len, const char *accept)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t hlen = (size_t)(end - buf) + 4;
    if (hlen < 12 || strncmp(buf, "HTTP/1.1 101", 12) != 0)
        return -1;
    /* The accept value is a fixed-length base64 string: finding it after the header's name is
     * enough for a benchmark (the tools' client does the full header check). */
    const char *p = buf;
    static const char name[] = "\r\nsec-websocket-accept:";
    size_t nlen = sizeof name - 1;
    for (; p + nlen <= end; p++) {
        if (strncasecmp(p, name, nlen) != 0)
            continue;
        const char *v = p + nlen;
        while (*v == ' ' || *v == '\t')
            v++;
        if (v + CHAT_WS_ACCEPT_LEN <= end && memcmp(v, accept, CHAT_WS_ACCEPT_LEN) == 0)
            return (long)hlen;
        return -1;
    }
    return -1;
}

size_t bench_ws_frame_encode(unsigned char *out, size_t cap, int opcode, const void *payload,
                             size_t len, uint32_t mask)
{
    if (cap < len + BENCH_WS_FRAME_HEADER_MAX)
        return 0;
    size_t i = 0;
    out[i++] = (unsigned char)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[i++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        out[i++] = 0x80 | 126;
        out[i++] = (unsigned char)(len >> 8);
        out[i++] = (unsigned char)len;
    } else {
        out[i++] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            out[i++] = (unsigned char)((uint64_t)len >> shift);
    }
    unsigned char m[4] = {(unsigned char)(mask >> 24), (unsigned char)(mask >> 16),
                          (unsigned char)(mask >> 8), (unsigned char)mask};
    memcpy(out + i, m, 4);
    i += 4;
    const unsigned char *src = payload;
    for (size_t k = 0; k < len; k++)
        out[i + k] = src[k] ^ m[k & 3];
    return i + len;
}

bench_ws_parse_t bench_ws_frame_parse(const unsigned char *buf, size_t len, bench_ws_frame_t *f,
                                      size_t *need)
{
    *need = 0;
    if (len < 2)
        return BENCH_WS_FRAME_MORE;
    if ((buf[0] & 0x70) != 0 || (buf[1] & 0x80) != 0)
        return BENCH_WS_FRAME_BAD; /* reserved bits, or a masked server frame */
    uint64_t plen = buf[1] & 0x7f;
    size_t hlen = plen == 126 ? 4 : plen == 127 ? 10 : 2;
    if (len < hlen)
        return BENCH_WS_FRAME_MORE;
    if (plen == 126) {
        plen = ((uint64_t)buf[2] << 8) | buf[3];
    } else if (plen == 127) {
        plen = 0;
        for (int i = 2; i < 10; i++)
            plen = (plen << 8) | buf[i];
        if (plen > (UINT64_C(1) << 32))
            return BENCH_WS_FRAME_BAD;
    }
    f->opcode = buf[0] & 0x0f;
    f->fin = (buf[0] & 0x80) != 0;
    f->payload = buf + hlen;
    f->payload_len = (size_t)plen;
    f->frame_len = hlen + (size_t)plen;
    if (len < f->frame_len) {
        *need = f->frame_len;
        return BENCH_WS_FRAME_MORE;
    }
    return BENCH_WS_FRAME_OK;
}
