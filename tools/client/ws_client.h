/* A small blocking WebSocket client (RFC 6455) over plain TCP, for chat-cli and the tests:
 * connect and handshake with a timeout, send masked frames (well-formed or deliberately odd),
 * receive whole messages with a timeout. Pings are answered and fragments reassembled inside
 * chat_ws_recv. One handle belongs to one thread at a time. */
#ifndef CHAT_TOOLS_CLIENT_WS_CLIENT_H
#define CHAT_TOOLS_CLIENT_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

typedef struct chat_ws chat_ws_t;

typedef enum chat_ws_opcode {
    CHAT_WS_OP_CONTINUATION = 0x0,
    CHAT_WS_OP_TEXT = 0x1,
    CHAT_WS_OP_BINARY = 0x2,
    CHAT_WS_OP_CLOSE = 0x8,
    CHAT_WS_OP_PING = 0x9,
    CHAT_WS_OP_PONG = 0xA,
} chat_ws_opcode_t;

#define CHAT_WS_CLOSE_NORMAL 1000
#define CHAT_WS_CLOSE_NO_STATUS 1005 /* the close frame carried no code */
#define CHAT_WS_CLOSE_ABNORMAL 1006  /* the TCP connection ended without a close frame */

/* Largest message chat_ws_recv accepts (after reassembly); larger ones fail the connection. */
#define CHAT_WS_MAX_MESSAGE (16u * 1024 * 1024)
/* Length of a Sec-WebSocket-Accept value (base64 of a SHA-1 digest). */
#define CHAT_WS_ACCEPT_LEN 28

/* One received message. data is malloc'd, NUL-terminated (len excludes the NUL) and owned
 * by the caller: release it with chat_ws_msg_clear. */
typedef struct chat_ws_msg {
    chat_ws_opcode_t opcode; /* TEXT, BINARY or CLOSE */
    char *data;              /* payload; for CLOSE the reason ("" if none) */
    size_t len;
    int close_code; /* CLOSE only: the peer's code, CHAT_WS_CLOSE_NO_STATUS or _ABNORMAL */
} chat_ws_msg_t;

/* A parsed ws:// URL. */
typedef struct chat_ws_url {
    char host[256];  /* without the brackets of an IPv6 literal */
    char port[6];    /* "80" if the URL has none */
    char path[1024]; /* "/" if the URL has none; includes any query */
} chat_ws_url_t;

/* Parses ws://host[:port][/path]. Returns CHAT_ERR_INVALID for another scheme (wss is not
 * supported), an empty host, a bad port or a component that does not fit. */
chat_err_t chat_ws_url_parse(const char *url, chat_ws_url_t *out);

/* Connects to url and performs the opening handshake, all within timeout_ms (< 0: no
 * limit). On success *out is a new handle (chat_ws_free). On failure returns
 * CHAT_ERR_INVALID (bad URL), CHAT_ERR_TIMEOUT or CHAT_ERR_IO, with a reason in errbuf
 * (may be NULL). */
chat_err_t chat_ws_connect(const char *url, int timeout_ms, chat_ws_t **out, char *errbuf,
                           size_t errlen);

/* Performs the client handshake on fd, an already connected stream socket, for host (the
 * Host header) and path. Takes ownership of fd in every case (closed on failure). Same
 * results as chat_ws_connect; CHAT_ERR_INVALID also means the server's answer was not a
 * valid 101 upgrade (wrong status, missing headers, wrong Sec-WebSocket-Accept). */
chat_err_t chat_ws_attach(int fd, const char *host, const char *path, int timeout_ms,
                          chat_ws_t **out, char *errbuf, size_t errlen);

/* Sends text as one masked text frame. Returns CHAT_ERR_IO if the socket failed (peer
 * gone, or no progress for 30 s). */
chat_err_t chat_ws_send_text(chat_ws_t *ws, const char *text, size_t len);

/* Sends one masked frame exactly as described, for tests of a server's frame handling: any
 * opcode 0-15 (even reserved ones), fin set or not, any payload length (control frames
 * too). Returns CHAT_ERR_INVALID for an opcode above 15, CHAT_ERR_IO as chat_ws_send_text. */
chat_err_t chat_ws_send_raw(chat_ws_t *ws, int opcode, bool fin, const void *payload, size_t len);

/* Waits up to timeout_ms (0: only what is already there, < 0: no limit) for the next
 * complete text, binary or close message and moves it into *out. Pings are answered with
 * pongs and pongs dropped on the way. A close frame is answered with a close frame (unless
 * one was sent already) and returned as CLOSE; so is the end of the TCP stream
 * (CHAT_WS_CLOSE_ABNORMAL). Returns CHAT_ERR_TIMEOUT if nothing complete arrived in time
 * (partial data is kept for the next call), CHAT_ERR_STOPPED once a CLOSE was returned,
 * CHAT_ERR_INVALID if the server broke the protocol (masked or malformed frame, message
 * over CHAT_WS_MAX_MESSAGE) and CHAT_ERR_IO on a socket error; chat_ws_last_error says
 * more. *out is only written on CHAT_OK. */
chat_err_t chat_ws_recv(chat_ws_t *ws, int timeout_ms, chat_ws_msg_t *out);

/* Sends a close frame with code (0: no code and no reason) and reason (may be NULL).
 * Does not wait for the answer: chat_ws_recv returns it as CLOSE. */
chat_err_t chat_ws_close(chat_ws_t *ws, int code, const char *reason);

/* Closes the socket without a close frame (what a crashing client does) and frees the
 * handle. Accepts NULL. */
void chat_ws_free(chat_ws_t *ws);

/* The socket, for poll(). Read from it only through chat_ws_recv. */
int chat_ws_fd(const chat_ws_t *ws);

/* True if a complete frame already read from the socket waits to be parsed: poll() does
 * not see it, so call chat_ws_recv with timeout 0 before polling. A partial frame does not
 * count (poll() reports the rest when it arrives). */
bool chat_ws_pending(const chat_ws_t *ws);

/* Description of the last failure of this handle ("" if none). Valid until the next call. */
const char *chat_ws_last_error(const chat_ws_t *ws);

/* Frees m->data and zeroes *m. Accepts NULL. */
void chat_ws_msg_clear(chat_ws_msg_t *m);

/* Writes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key into out
 * (CHAT_WS_ACCEPT_LEN characters and a NUL). */
void chat_ws_accept_key(const char *key, char out[CHAT_WS_ACCEPT_LEN + 1]);

#endif
