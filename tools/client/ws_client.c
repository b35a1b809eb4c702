/* The WebSocket client of tools and tests (RFC 6455, client side, no extensions): URL
 * parsing, the opening handshake, masked frame output and a buffered frame parser that
 * keeps partial input between calls so that receive timeouts never lose bytes. */
#define _GNU_SOURCE /* memmem */
#include "tools/client/ws_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/array.h"
#include "common/clock.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_HANDSHAKE_MAX 16384 /* a longer answer header is not a WebSocket server's */
#define WS_SEND_TIMEOUT_S 30   /* a peer that takes nothing for this long is gone */
#define WS_READ_CHUNK 16384

struct chat_ws {
    int fd;
    unsigned char *rbuf; /* bytes read and not yet consumed: [roff, rlen) */
    size_t roff, rlen, rcap;
    char *frag; /* data message being reassembled from fragments */
    size_t frag_len, frag_cap;
    int frag_opcode; /* opcode of the first fragment; 0 when no message is open */
    bool close_sent;
    bool closed;       /* a CLOSE was returned: the conversation is over */
    chat_err_t failed; /* sticky protocol or socket failure */
    char err[256];
};

/* A frame header as parsed from the wire. */
typedef struct ws_frame {
    bool fin;
    int rsv;
    int opcode;
    bool masked;
    uint64_t payload_len;
    size_t header_len; /* including the masking key, if any */
    unsigned char mask[4];
} ws_frame_t;

typedef enum ws_parse { WS_PARSE_OK, WS_PARSE_MORE, WS_PARSE_BAD } ws_parse_t;

typedef enum ws_fill { WS_FILL_DATA, WS_FILL_EOF, WS_FILL_TIMEOUT, WS_FILL_ERROR } ws_fill_t;

/* Deadline for a timeout in ms; -1 means none. */
static int64_t deadline_after(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : chat_clock_mono_ms() + timeout_ms;
}

/* Timeout for poll() until deadline: -1 without deadline, 0 once passed. */
static int poll_timeout_ms(int64_t deadline)
{
    return deadline < 0 ? -1 : chat_clock_remaining_ms(deadline);
}

static void set_err(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *buf, size_t len, const char *fmt, ...)
{
    if (buf == NULL || len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Records a sticky failure on ws and returns it. what NULL keeps the reason in ws->err. */
static chat_err_t ws_fail(chat_ws_t *ws, chat_err_t rc, const char *what)
{
    ws->failed = rc;
    if (what != NULL)
        snprintf(ws->err, sizeof ws->err, "%s", what);
    return rc;
}

void chat_ws_accept_key(const char *key, char out[CHAT_WS_ACCEPT_LEN + 1])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    char joined[256];
    int n = snprintf(joined, sizeof joined, "%s%s", key, WS_GUID);
    size_t jlen = n < 0 ? 0 : ((size_t)n < sizeof joined ? (size_t)n : sizeof joined - 1);
    if (EVP_Digest(joined, jlen, digest, &dlen, EVP_sha1(), NULL) != 1 || dlen != 20) {
        out[0] = '\0';
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, digest, 20);
    out[CHAT_WS_ACCEPT_LEN] = '\0';
}

/* Copies [s, s+n) into dst of size cap; false if it does not fit. */
static bool copy_part(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* Parses the port text p of n bytes into out; false unless it is a number 1-65535. */
static bool parse_port(const char *p, size_t n, char *out, size_t cap)
{
    if (n == 0 || n > 5)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    snprintf(out, cap, "%ld", v);
    return true;
}

chat_err_t chat_ws_url_parse(const char *url, chat_ws_url_t *out)
{
    if (url == NULL || out == NULL || strncasecmp(url, "ws://", 5) != 0)
        return CHAT_ERR_INVALID;
    memset(out, 0, sizeof *out);
    const char *p = url + 5;
    const char *host_end;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL ||
            !copy_part(out->host, sizeof out->host, p + 1, (size_t)(host_end - p - 1)))
            return CHAT_ERR_INVALID;
        p = host_end + 1;
    } else {
        size_t n = strcspn(p, ":/?#@");
        if (p[n] == '@' || !copy_part(out->host, sizeof out->host, p, n))
            return CHAT_ERR_INVALID;
        p += n;
    }
    if (out->host[0] == '\0')
        return CHAT_ERR_INVALID;
    if (*p == ':') {
        size_t n = strcspn(p + 1, "/?#");
        if (!parse_port(p + 1, n, out->port, sizeof out->port))
            return CHAT_ERR_INVALID;
        p += 1 + n;
    } else {
        snprintf(out->port, sizeof out->port, "80");
    }
    if (*p != '\0' && *p != '/' && *p != '?')
        return CHAT_ERR_INVALID;
    size_t plen = strcspn(p, "#");
    if (*p == '/')
        return copy_part(out->path, sizeof out->path, p, plen) ? CHAT_OK : CHAT_ERR_INVALID;
    out->path[0] = '/';
    return copy_part(out->path + 1, sizeof out->path - 1, p, plen) ? CHAT_OK : CHAT_ERR_INVALID;
}

/* Sends all of buf. Returns CHAT_ERR_IO on failure, with the reason in ws->err. */
static chat_err_t write_all(chat_ws_t *ws, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = send(ws->fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            snprintf(ws->err, sizeof ws->err, "send: no progress for %d s", WS_SEND_TIMEOUT_S);
            return CHAT_ERR_IO;
        }
        if (n <= 0) {
            snprintf(ws->err, sizeof ws->err, "send: %s", strerror(errno));
            return CHAT_ERR_IO;
        }
        p += n;
        len -= (size_t)n;
    }
    return CHAT_OK;
}

/* Makes room for at least want more bytes after rlen, dropping consumed bytes first. */
static bool rbuf_reserve(chat_ws_t *ws, size_t want)
{
    if (ws->roff > 0) {
        memmove(ws->rbuf, ws->rbuf + ws->roff, ws->rlen - ws->roff);
        ws->rlen -= ws->roff;
        ws->roff = 0;
    }
    if (ws->rcap - ws->rlen >= want)
        return true;
    unsigned char *nb = chat_array_grow(ws->rbuf, &ws->rcap, ws->rlen + want, 1);
    if (nb == NULL)
        return false;
    ws->rbuf = nb;
    return true;
}

/* Waits until deadline for input and appends what arrives to rbuf (at least want bytes of
 * space are made). */
static ws_fill_t fill(chat_ws_t *ws, int64_t deadline, size_t want)
{
    if (!rbuf_reserve(ws, want < WS_READ_CHUNK ? WS_READ_CHUNK : want)) {
        snprintf(ws->err, sizeof ws->err, "out of memory");
        return WS_FILL_ERROR;
    }
    for (;;) {
        struct pollfd pfd = {.fd = ws->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, poll_timeout_ms(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            snprintf(ws->err, sizeof ws->err, "poll: %s", strerror(errno));
            return WS_FILL_ERROR;
        }
        if (pr == 0)
            return WS_FILL_TIMEOUT;
        ssize_t n = recv(ws->fd, ws->rbuf + ws->rlen, ws->rcap - ws->rlen, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            snprintf(ws->err, sizeof ws->err, "%s",
                     n == 0 ? "connection closed by peer" : "connection reset by peer");
            return WS_FILL_EOF;
        }
        if (n < 0) {
            snprintf(ws->err, sizeof ws->err, "recv: %s", strerror(errno));
            return WS_FILL_ERROR;
        }
        ws->rlen += (size_t)n;
        return WS_FILL_DATA;
    }
}

/* ---- opening handshake ---- */

/* Finds header name (case-insensitive) in the header block hdr and copies its trimmed value
 * into val. False if absent. */
static bool header_value(const char *hdr, const char *name, char *val, size_t cap)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(hdr, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
            continue;
        const char *v = line + nlen + 1;
        v += strspn(v, " \t");
        size_t n = strcspn(v, "\r\n");
        while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        return copy_part(val, cap, v, n);
    }
    return false;
}

/* True if the comma-separated list contains token, case-insensitively. */
static bool list_has_token(const char *list, const char *token)
{
    size_t tlen = strlen(token);
    const char *p = list;
    while (*p != '\0') {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m > 0 && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tlen && strncasecmp(p, token, tlen) == 0)
            return true;
        p += n;
    }
    return false;
}

/* Checks the server's answer header (NUL-terminated) against the key we sent. */
static chat_err_t check_upgrade(const char *hdr, const char *key, char *errbuf, size_t errlen)
{
    int status = 0;
    if (sscanf(hdr, "HTTP/%*d.%*d %d", &status) != 1 || status != 101) {
        size_t n = strcspn(hdr, "\r\n");
        set_err(errbuf, errlen, "handshake refused: %.*s", (int)(n > 200 ? 200 : n), hdr);
        return CHAT_ERR_INVALID;
    }
    char val[512], expect[CHAT_WS_ACCEPT_LEN + 1];
    if (!header_value(hdr, "Upgrade", val, sizeof val) || strcasecmp(val, "websocket") != 0) {
        set_err(errbuf, errlen, "handshake: no 'Upgrade: websocket' header");
        return CHAT_ERR_INVALID;
    }
    if (!header_value(hdr, "Connection", val, sizeof val) || !list_has_token(val, "upgrade")) {
        set_err(errbuf, errlen, "handshake: no 'Connection: upgrade' header");
        return CHAT_ERR_INVALID;
    }
    chat_ws_accept_key(key, expect);
    if (!header_value(hdr, "Sec-WebSocket-Accept", val, sizeof val) || strcmp(val, expect) != 0) {
        set_err(errbuf, errlen, "handshake: wrong or missing Sec-WebSocket-Accept");
        return CHAT_ERR_INVALID;
    }
    return CHAT_OK;
}

/* Sends the upgrade request and reads the answer until deadline. Bytes after the answer's
 * header stay in rbuf: they are the first frames. */
static chat_err_t handshake(chat_ws_t *ws, const char *host, const char *path, int64_t deadline,
                            char *errbuf, size_t errlen)
{
    unsigned char nonce[16];
    char key[32];
    if (RAND_bytes(nonce, sizeof nonce) != 1) {
        set_err(errbuf, errlen, "no random bytes for the handshake key");
        return CHAT_ERR_IO;
    }
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: chat-client/1\r\n\r\n",
                     path, host, key);
    if (n < 0 || (size_t)n >= sizeof req) {
        set_err(errbuf, errlen, "handshake: host or path too long");
        return CHAT_ERR_INVALID;
    }
    if (write_all(ws, req, (size_t)n) != CHAT_OK) {
        set_err(errbuf, errlen, "handshake: %s", ws->err);
        return CHAT_ERR_IO;
    }
    for (;;) {
        unsigned char *end = ws->rlen ? memmem(ws->rbuf, ws->rlen, "\r\n\r\n", 4) : NULL;
        if (end != NULL) {
            size_t hlen = (size_t)(end - ws->rbuf) + 4;
            char *hdr = strndup((const char *)ws->rbuf, hlen);
            if (hdr == NULL)
                return CHAT_ERR_NOMEM;
            chat_err_t rc = check_upgrade(hdr, key, errbuf, errlen);
            free(hdr);
            ws->roff = hlen;
            return rc;
        }
        if (ws->rlen > WS_HANDSHAKE_MAX) {
            set_err(errbuf, errlen, "handshake: answer header over %d bytes", WS_HANDSHAKE_MAX);
            return CHAT_ERR_INVALID;
        }
        switch (fill(ws, deadline, 1)) {
        case WS_FILL_DATA:
            break;
        case WS_FILL_TIMEOUT:
            set_err(errbuf, errlen, "handshake: no answer in time");
            return CHAT_ERR_TIMEOUT;
        case WS_FILL_EOF:
        case WS_FILL_ERROR:
            set_err(errbuf, errlen, "handshake: %s", ws->err);
            return CHAT_ERR_IO;
        }
    }
}

chat_err_t chat_ws_attach(int fd, const char *host, const char *path, int timeout_ms,
                          chat_ws_t **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    chat_ws_t *ws = calloc(1, sizeof *ws);
    if (ws == NULL) {
        close(fd);
        set_err(errbuf, errlen, "out of memory");
        return CHAT_ERR_NOMEM;
    }
    ws->fd = fd;
    struct timeval tv = {.tv_sec = WS_SEND_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    chat_err_t rc = handshake(ws, host, path, deadline_after(timeout_ms), errbuf, errlen);
    if (rc != CHAT_OK) {
        chat_ws_free(ws);
        return rc;
    }
    *out = ws;
    return CHAT_OK;
}

/* Connects a TCP socket to one address within deadline. Returns the fd or -1 with errbuf
 * set; *timed_out tells a timeout from a refusal. */
static int connect_addr(const struct addrinfo *ai, int64_t deadline, bool *timed_out, char *errbuf,
                        size_t errlen)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_err(errbuf, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int pr;
        do
            pr = poll(&pfd, 1, poll_timeout_ms(deadline));
        while (pr < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (pr == 0) {
            *timed_out = true;
            soerr = ETIMEDOUT;
        } else if (pr < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
            soerr = errno;
        }
        rc = soerr == 0 ? 0 : -1;
        errno = soerr;
    }
    if (rc < 0) {
        set_err(errbuf, errlen, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    int one = 1;
    /* Frames are small and latency-sensitive: never wait for Nagle's coalescing. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

chat_err_t chat_ws_connect(const char *url, int timeout_ms, chat_ws_t **out, char *errbuf,
                           size_t errlen)
{
    *out = NULL;
    chat_ws_url_t u;
    if (chat_ws_url_parse(url, &u) != CHAT_OK) {
        set_err(errbuf, errlen, "not a ws:// URL: %s", url ? url : "(null)");
        return CHAT_ERR_INVALID;
    }
    int64_t deadline = deadline_after(timeout_ms);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(u.host, u.port, &hints, &res);
    if (gai != 0) {
        set_err(errbuf, errlen, "cannot resolve %s: %s", u.host, gai_strerror(gai));
        return CHAT_ERR_IO;
    }
    int fd = -1;
    bool timed_out = false;
    for (const struct addrinfo *ai = res; ai != NULL && fd < 0 && !timed_out; ai = ai->ai_next)
        fd = connect_addr(ai, deadline, &timed_out, errbuf, errlen);
    freeaddrinfo(res);
    if (fd < 0)
        return timed_out ? CHAT_ERR_TIMEOUT : CHAT_ERR_IO;
    char host[300];
    snprintf(host, sizeof host, strchr(u.host, ':') ? "[%s]:%s" : "%s:%s", u.host, u.port);
    int left = poll_timeout_ms(deadline);
    return chat_ws_attach(fd, host, u.path, left, out, errbuf, errlen);
}

/* ---- frames out ---- */

chat_err_t chat_ws_send_raw(chat_ws_t *ws, int opcode, bool fin, const void *payload, size_t len)
{
    if (opcode < 0 || opcode > 15 || (payload == NULL && len > 0))
        return CHAT_ERR_INVALID;
    unsigned char mask[4];
    if (RAND_bytes(mask, sizeof mask) != 1) {
        snprintf(ws->err, sizeof ws->err, "no random bytes for the frame mask");
        return CHAT_ERR_IO;
    }
    size_t hlen = 2 + (len < 126 ? 0 : len <= 0xffff ? 2 : 8) + 4;
    unsigned char *frame = malloc(hlen + len);
    if (frame == NULL)
        return CHAT_ERR_NOMEM;
    frame[0] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    size_t i = 2;
    if (len < 126) {
        frame[1] = (unsigned char)(0x80 | len);
    } else if (len <= 0xffff) {
        frame[1] = 0x80 | 126;
        frame[i++] = (unsigned char)(len >> 8);
        frame[i++] = (unsigned char)len;
    } else {
        frame[1] = 0x80 | 127;
        for (int shift = 56; shift >= 0; shift -= 8)
            frame[i++] = (unsigned char)((uint64_t)len >> shift);
    }
    memcpy(frame + i, mask, 4);
    i += 4;
    const unsigned char *src = payload;
    for (size_t k = 0; k < len; k++)
        frame[i + k] = src[k] ^ mask[k & 3];
    chat_err_t rc = write_all(ws, frame, hlen + len);
    free(frame);
    return rc;
}

chat_err_t chat_ws_send_text(chat_ws_t *ws, const char *text, size_t len)
{
    return chat_ws_send_raw(ws, CHAT_WS_OP_TEXT, true, text, len);
}

chat_err_t chat_ws_close(chat_ws_t *ws, int code, const char *reason)
{
    /* Zeroed: gcc -O3 (Release builds) warns of a maybe-uninitialized read otherwise. */
    unsigned char payload[125] = {0};
    size_t len = 0;
    if (code > 0) {
        payload[0] = (unsigned char)(code >> 8);
        payload[1] = (unsigned char)code;
        size_t rlen = reason ? strlen(reason) : 0;
        if (rlen > sizeof payload - 2)
            rlen = sizeof payload - 2;
        if (rlen > 0)
            memcpy(payload + 2, reason, rlen);
        len = 2 + rlen;
    }
    ws->close_sent = true;
    return chat_ws_send_raw(ws, CHAT_WS_OP_CLOSE, true, payload, len);
}

/* ---- frames in ---- */

/* Parses the frame header at buf (len bytes available). */
static ws_parse_t parse_header(const unsigned char *buf, size_t len, ws_frame_t *f)
{
    if (len < 2)
        return WS_PARSE_MORE;
    f->fin = (buf[0] & 0x80) != 0;
    f->rsv = (buf[0] >> 4) & 0x7;
    f->opcode = buf[0] & 0x0f;
    f->masked = (buf[1] & 0x80) != 0;
    uint64_t plen = buf[1] & 0x7f;
    size_t need = 2 + (plen == 126 ? 2 : plen == 127 ? 8 : 0) + (f->masked ? 4 : 0);
    if (len < need)
        return WS_PARSE_MORE;
    size_t i = 2;
    if (plen == 126) {
        plen = ((uint64_t)buf[2] << 8) | buf[3];
        i = 4;
    } else if (plen == 127) {
        plen = 0;
        for (i = 2; i < 10; i++)
            plen = (plen << 8) | buf[i];
        if (plen >> 63)
            return WS_PARSE_BAD;
    }
    if (f->masked)
        memcpy(f->mask, buf + i, 4);
    f->payload_len = plen;
    f->header_len = need;
    return WS_PARSE_OK;
}

/* Why the frame f breaks the protocol for a client, or NULL if it is acceptable. */
static const char *frame_violation(const chat_ws_t *ws, const ws_frame_t *f)
{
    if (f->masked)
        return "masked frame from the server";
    if (f->rsv != 0)
        return "reserved bits set without an extension";
    if (f->opcode >= CHAT_WS_OP_CLOSE) {
        if (f->opcode > CHAT_WS_OP_PONG)
            return "reserved control opcode";
        if (!f->fin || f->payload_len > 125)
            return "fragmented or oversized control frame";
        return NULL;
    }
    if (f->opcode > CHAT_WS_OP_BINARY)
        return "reserved data opcode";
    if (f->opcode == CHAT_WS_OP_CONTINUATION && ws->frag_opcode == 0)
        return "continuation without a message to continue";
    if (f->opcode != CHAT_WS_OP_CONTINUATION && ws->frag_opcode != 0)
        return "new message inside a fragmented one";
    if (f->payload_len > CHAT_WS_MAX_MESSAGE || ws->frag_len + f->payload_len > CHAT_WS_MAX_MESSAGE)
        return "message too large";
    return NULL;
}

/* Appends a data frame's payload to the message being reassembled. */
static bool frag_append(chat_ws_t *ws, const unsigned char *p, size_t n)
{
    char *nb = chat_array_grow(ws->frag, &ws->frag_cap, ws->frag_len + n + 1, 1);
    if (nb == NULL)
        return false;
    ws->frag = nb;
    memcpy(ws->frag + ws->frag_len, p, n);
    ws->frag_len += n;
    ws->frag[ws->frag_len] = '\0';
    return true;
}

/* Moves the reassembled message into out. */
static void frag_take(chat_ws_t *ws, chat_ws_msg_t *out)
{
    if (ws->frag == NULL)
        (void)frag_append(ws, (const unsigned char *)"", 0);
    out->opcode = (chat_ws_opcode_t)ws->frag_opcode;
    out->data = ws->frag;
    out->len = ws->frag_len;
    out->close_code = 0;
    ws->frag = NULL;
    ws->frag_len = ws->frag_cap = 0;
    ws->frag_opcode = 0;
}

/* Fills out with a CLOSE message and ends the conversation. */
static chat_err_t make_close(chat_ws_t *ws, int code, const char *reason, size_t rlen,
                             chat_ws_msg_t *out)
{
    char *r = strndup(reason, rlen);
    if (r == NULL)
        return ws_fail(ws, CHAT_ERR_NOMEM, "out of memory");
    out->opcode = CHAT_WS_OP_CLOSE;
    out->data = r;
    out->len = strlen(r);
    out->close_code = code;
    ws->closed = true;
    return CHAT_OK;
}

/* Handles a complete close frame: answers it and reports it. */
static chat_err_t on_close_frame(chat_ws_t *ws, const unsigned char *p, size_t n,
                                 chat_ws_msg_t *out)
{
    if (n == 1)
        return ws_fail(ws, CHAT_ERR_INVALID, "close frame with a one-byte payload");
    int code = n >= 2 ? (p[0] << 8) | p[1] : CHAT_WS_CLOSE_NO_STATUS;
    if (!ws->close_sent) {
        /* Echo the code, as RFC 6455 5.5.1 asks; a failure here changes nothing for us. */
        (void)chat_ws_close(ws, n >= 2 ? code : 0, NULL);
    }
    return make_close(ws, code, n >= 2 ? (const char *)p + 2 : "", n >= 2 ? n - 2 : 0, out);
}

/* What parsing one frame from rbuf led to. */
typedef enum ws_step { WS_STEP_MESSAGE, WS_STEP_AGAIN, WS_STEP_MORE, WS_STEP_FAILED } ws_step_t;

/* Consumes at most one complete frame from rbuf. *need is set to the bytes the frame needs
 * when it is incomplete (WS_STEP_MORE); *rc holds the failure for WS_STEP_FAILED. */
static ws_step_t step(chat_ws_t *ws, chat_ws_msg_t *out, size_t *need, chat_err_t *rc)
{
    const unsigned char *buf = ws->rbuf + ws->roff;
    size_t avail = ws->rlen - ws->roff;
    ws_frame_t f;
    ws_parse_t pr = parse_header(buf, avail, &f);
    *need = 14;
    if (pr == WS_PARSE_MORE)
        return WS_STEP_MORE;
    const char *bad = pr == WS_PARSE_BAD ? "bad payload length" : frame_violation(ws, &f);
    if (bad != NULL) {
        *rc = ws_fail(ws, CHAT_ERR_INVALID, bad);
        return WS_STEP_FAILED;
    }
    if (avail - f.header_len < f.payload_len) {
        *need = f.header_len + (size_t)f.payload_len;
        return WS_STEP_MORE;
    }
    const unsigned char *payload = buf + f.header_len;
    size_t plen = (size_t)f.payload_len;
    ws->roff += f.header_len + plen;
    *rc = CHAT_OK;
    switch (f.opcode) {
    case CHAT_WS_OP_PING:
        *rc = chat_ws_send_raw(ws, CHAT_WS_OP_PONG, true, payload, plen);
        if (*rc == CHAT_OK)
            return WS_STEP_AGAIN;
        *rc = ws_fail(ws, *rc, NULL);
        return WS_STEP_FAILED;
    case CHAT_WS_OP_PONG:
        return WS_STEP_AGAIN;
    case CHAT_WS_OP_CLOSE:
        *rc = on_close_frame(ws, payload, plen, out);
        return *rc == CHAT_OK ? WS_STEP_MESSAGE : WS_STEP_FAILED;
    default:
        if (f.opcode != CHAT_WS_OP_CONTINUATION)
            ws->frag_opcode = f.opcode;
        if (!frag_append(ws, payload, plen)) {
            *rc = ws_fail(ws, CHAT_ERR_NOMEM, "out of memory");
            return WS_STEP_FAILED;
        }
        if (!f.fin)
            return WS_STEP_AGAIN;
        frag_take(ws, out);
        return WS_STEP_MESSAGE;
    }
}

chat_err_t chat_ws_recv(chat_ws_t *ws, int timeout_ms, chat_ws_msg_t *out)
{
    if (ws->failed != CHAT_OK)
        return ws->failed;
    if (ws->closed)
        return CHAT_ERR_STOPPED;
    int64_t deadline = deadline_after(timeout_ms);
    for (;;) {
        size_t need = 0;
        chat_err_t rc = CHAT_OK;
        chat_ws_msg_t msg = {0};
        switch (step(ws, &msg, &need, &rc)) {
        case WS_STEP_MESSAGE:
            *out = msg;
            return CHAT_OK;
        case WS_STEP_AGAIN:
            continue;
        case WS_STEP_FAILED:
            return rc;
        case WS_STEP_MORE:
            break;
        }
        size_t have = ws->rlen - ws->roff;
        switch (fill(ws, deadline, need > have ? need - have : 1)) {
        case WS_FILL_DATA:
            break;
        case WS_FILL_TIMEOUT:
            return CHAT_ERR_TIMEOUT;
        case WS_FILL_EOF:
            return make_close(ws, CHAT_WS_CLOSE_ABNORMAL, ws->err, strlen(ws->err), out);
        case WS_FILL_ERROR:
            return ws_fail(ws, CHAT_ERR_IO, NULL);
        }
    }
}

int chat_ws_fd(const chat_ws_t *ws)
{
    return ws->fd;
}

bool chat_ws_pending(const chat_ws_t *ws)
{
    ws_frame_t f;
    size_t avail = ws->rlen - ws->roff;
    if (avail < 2)
        return false;
    switch (parse_header(ws->rbuf + ws->roff, avail, &f)) {
    case WS_PARSE_MORE:
        return false;
    case WS_PARSE_BAD:
        return true; /* chat_ws_recv reports it at once */
    case WS_PARSE_OK:
        break;
    }
    return avail - f.header_len >= f.payload_len;
}

const char *chat_ws_last_error(const chat_ws_t *ws)
{
    return ws->err;
}

void chat_ws_msg_clear(chat_ws_msg_t *m)
{
    if (m == NULL)
        return;
    free(m->data);
    memset(m, 0, sizeof *m);
}

void chat_ws_free(chat_ws_t *ws)
{
    if (ws == NULL)
        return;
    if (ws->fd >= 0)
        close(ws->fd);
    free(ws->rbuf);
    free(ws->frag);
    free(ws);
}
