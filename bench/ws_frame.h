/* The client side of WebSocket (RFC 6455) as the bench's event loop needs it: the upgrade
 * request and the check of its answer, masked frames written into a caller's buffer, and
 * server frames parsed in place. Nothing here reads or writes sockets or allocates, so a
 * connection's buffers are the only memory it uses. */
#ifndef BENCH_WS_FRAME_H
#define BENCH_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tools/client/ws_client.h"

#define BENCH_WS_KEY_LEN 24 /* base64 of 16 random bytes */
#define BENCH_WS_FRAME_HEADER_MAX 14

/* Writes a fresh Sec-WebSocket-Key (from 16 bytes of nonce) into key and the Accept value
 * the server must answer with into accept. */
void bench_ws_key_new(const unsigned char nonce[16], char key[BENCH_WS_KEY_LEN + 1],
                      char accept[CHAT_WS_ACCEPT_LEN + 1]);

/* Writes the upgrade request for host ("127.0.0.1:7410") and path into buf. Returns its length,
 * or 0 if it does not fit in cap. */
size_t bench_ws_upgrade_request(char *buf, size_t cap, const char *host, const char *path,
                                const char *key);

/* Checks the server's answer to the upgrade in buf[0..len): > 0 is the length of a complete,
 * valid 101 answer with the expected accept value (frames may follow it); 0 means the header
 * is not complete yet; < 0 means it is not an upgrade (wrong status or accept value). */
long bench_ws_upgrade_check(const char *buf, size_t len, const char *accept);

/* Writes one masked frame with opcode and payload into out (cap bytes; needs len +
 * BENCH_WS_FRAME_HEADER_MAX). Returns the frame's length, or 0 if it does not fit. */
size_t bench_ws_frame_encode(unsigned char *out, size_t cap, int opcode, const void *payload,
                             size_t len, uint32_t mask);

/* A server frame found in a buffer. */
typedef struct bench_ws_frame {
    int opcode;
    bool fin;
    const unsigned char *payload; /* points into the buffer */
    size_t payload_len;
    size_t frame_len; /* header and payload */
} bench_ws_frame_t;

typedef enum bench_ws_parse {
    BENCH_WS_FRAME_OK,   /* *f describes a complete frame */
    BENCH_WS_FRAME_MORE, /* incomplete: *need is the frame's total length once known, else 0 */
    BENCH_WS_FRAME_BAD,  /* a masked frame, reserved bits or an impossible length */
} bench_ws_parse_t;

/* Parses the frame at the start of buf[0..len). */
bench_ws_parse_t bench_ws_frame_parse(const unsigned char *buf, size_t len, bench_ws_frame_t *f,
                                      size_t *need);

#endif
