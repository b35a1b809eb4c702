/* Unit tests of tools/client/ws_client: URL parsing, the opening handshake and the framing
 * in both directions, against a scripted fake server on the other end of a socketpair
 * (a thread answers the handshake; the test then plays the server frame by frame). */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "tools/client/ws_client.h"
#include "tests/support/util.h"

/* How the fake server answers the handshake. */
typedef enum fake_mode {
    FAKE_OK,
    FAKE_BAD_ACCEPT,
    FAKE_REFUSE,
    FAKE_SILENT,
    FAKE_HANG_UP
} fake_mode_t;

typedef struct fake_server {
    int fd;
    fake_mode_t mode;
    const unsigned char *extra; /* bytes sent right after the 101 answer */
    size_t extra_len;
    char request[4096]; /* what the client sent */
} fake_server_t;

/* Reads from fd until the end of an HTTP header; returns its length (0 on EOF). */
static size_t read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, 1);
        if (n <= 0)
            break;
        len++;
        buf[len] = '\0';
        if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
            return len;
    }
    return 0;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        ck_assert_int_gt(n, 0);
        p += n;
        len -= (size_t)n;
    }
}

static void *fake_handshake(void *arg)
{
    fake_server_t *fs = arg;
    if (read_request(fs->fd, fs->request, sizeof fs->request) == 0 || fs->mode == FAKE_SILENT)
        return NULL;
    if (fs->mode == FAKE_HANG_UP) {
        shutdown(fs->fd, SHUT_WR);
        return NULL;
    }
    char key[64] = "", accept[CHAT_WS_ACCEPT_LEN + 1];
    const char *k = strstr(fs->request, "Sec-WebSocket-Key: ");
    if (k != NULL)
        sscanf(k + 19, "%63[^\r]", key);
    chat_ws_accept_key(key, accept);
    if (fs->mode == FAKE_BAD_ACCEPT)
        accept[0] = accept[0] == 'A' ? 'B' : 'A';
    char resp[1024];
    int n = fs->mode == FAKE_REFUSE
                ? snprintf(resp, sizeof resp, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                : snprintf(resp, sizeof resp,
                           "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\n"
                           "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                           accept);
    /* One write, so that the extra bytes reach the client together with the header. */
    ck_assert_uint_lt((size_t)n + fs->extra_len, sizeof resp);
    if (fs->extra_len > 0)
        memcpy(resp + n, fs->extra, fs->extra_len);
    write_all(fs->fd, resp, (size_t)n + fs->extra_len);
    return NULL;
}

/* Runs the client handshake against a fake server in mode. Returns the client's result;
 * *ws is the client (on success) and *srv the server's end of the pair (always; the caller
 * closes it). */
static chat_err_t open_fake(fake_mode_t mode, const void *extra, size_t extra_len, int timeout_ms,
                            chat_ws_t **ws, int *srv, fake_server_t *seen)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int big = 1 << 20; /* room for the large frames of the tests without a reader thread */
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    fake_server_t fs = {.fd = sv[1], .mode = mode, .extra = extra, .extra_len = extra_len};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fake_handshake, &fs), 0);
    char err[256] = "";
    chat_err_t rc =
        chat_ws_attach(sv[0], "example.test:7410", "/v1/ws", timeout_ms, ws, err, sizeof err);
    if (mode == FAKE_SILENT)
        shutdown(sv[1], SHUT_RD); /* releases the thread if the client gave up early */
    pthread_join(t, NULL);
    if (seen != NULL)
        *seen = fs;
    *srv = sv[1];
    ck_assert_msg(rc == CHAT_OK || err[0] != '\0', "a failure must come with a reason");
    return rc;
}

static chat_ws_t *open_ok(int *srv)
{
    chat_ws_t *ws = NULL;
    ck_assert_int_eq(open_fake(FAKE_OK, NULL, 0, 2000, &ws, srv, NULL), CHAT_OK);
    ck_assert_ptr_nonnull(ws);
    return ws;
}

/* Builds an unmasked server frame into buf; returns its length. */
static size_t server_frame(unsigned char *buf, int byte0, const void *payload, size_t len)
{
    size_t i = 0;
    buf[i++] = (unsigned char)byte0;
    if (len < 126) {
        buf[i++] = (unsigned char)len;
    } else if (len <= 0xffff) {
        buf[i++] = 126;
        buf[i++] = (unsigned char)(len >> 8);
        buf[i++] = (unsigned char)len;
    } else {
        buf[i++] = 127;
        for (int s = 56; s >= 0; s -= 8)
            buf[i++] = (unsigned char)((uint64_t)len >> s);
    }
    memcpy(buf + i, payload, len);
    return i + len;
}

static void send_server_frame(int fd, int byte0, const void *payload, size_t len)
{
    unsigned char *buf = malloc(len + 16);
    ck_assert_ptr_nonnull(buf);
    write_all(fd, buf, server_frame(buf, byte0, payload, len));
    free(buf);
}

static void read_exact(int fd, void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        ck_assert_int_gt(n, 0);
        p += n;
        len -= (size_t)n;
    }
}

/* A frame as the fake server read it. */
typedef struct client_frame {
    int byte0;
    int len_form; /* 7, 16 or 64: how the length was encoded */
    size_t len;
    unsigned char *payload; /* unmasked, malloc'd, NUL-terminated */
} client_frame_t;

/* Reads one client frame, checking that it is masked. */
static client_frame_t read_client_frame(int fd)
{
    unsigned char h[2];
    read_exact(fd, h, 2);
    ck_assert_msg(h[1] & 0x80, "client frames must be masked");
    client_frame_t f = {.byte0 = h[0], .len_form = 7, .len = h[1] & 0x7f};
    if (f.len == 126) {
        unsigned char e[2];
        read_exact(fd, e, 2);
        f.len = ((size_t)e[0] << 8) | e[1];
        f.len_form = 16;
    } else if (f.len == 127) {
        unsigned char e[8];
        read_exact(fd, e, 8);
        f.len = 0;
        for (int i = 0; i < 8; i++)
            f.len = (f.len << 8) | e[i];
        f.len_form = 64;
    }
    unsigned char mask[4];
    read_exact(fd, mask, 4);
    f.payload = malloc(f.len + 1);
    ck_assert_ptr_nonnull(f.payload);
    read_exact(fd, f.payload, f.len);
    for (size_t i = 0; i < f.len; i++)
        f.payload[i] ^= mask[i & 3];
    f.payload[f.len] = '\0';
    return f;
}

START_TEST(test_accept_key_rfc_example)
{
    char out[CHAT_WS_ACCEPT_LEN + 1];
    chat_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(test_url_parse)
{
    chat_ws_url_t u;
    ck_assert_int_eq(chat_ws_url_parse("ws://127.0.0.1:7410/v1/ws", &u), CHAT_OK);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_str_eq(u.port, "7410");
    ck_assert_str_eq(u.path, "/v1/ws");
    ck_assert_int_eq(chat_ws_url_parse("WS://localhost", &u), CHAT_OK);
    ck_assert_str_eq(u.host, "localhost");
    ck_assert_str_eq(u.port, "80");
    ck_assert_str_eq(u.path, "/");
    ck_assert_int_eq(chat_ws_url_parse("ws://[::1]:9000?x=1", &u), CHAT_OK);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_str_eq(u.port, "9000");
    ck_assert_str_eq(u.path, "/?x=1");
    static const char *const bad[] = {
        "wss://h/x",   "http://h/", "ws://",      "ws://:80/", "ws://h:0/", "ws://h:65536/",
        "ws://h:12a/", "ws://u@h/", "ws://[::1/", "ws://h:/",  NULL,
    };
    for (size_t i = 0; bad[i] != NULL; i++)
        ck_assert_msg(chat_ws_url_parse(bad[i], &u) == CHAT_ERR_INVALID, "%s must be refused",
                      bad[i]);
}
END_TEST

START_TEST(test_handshake_request_and_leftover_bytes)
{
    /* The server's first frame arrives in the same segment as its 101 answer. */
    unsigned char first[16];
    size_t n = server_frame(first, 0x81, "hi", 2);
    chat_ws_t *ws = NULL;
    int srv;
    fake_server_t seen;
    ck_assert_int_eq(open_fake(FAKE_OK, first, n, 2000, &ws, &srv, &seen), CHAT_OK);
    ck_assert_msg(strncmp(seen.request, "GET /v1/ws HTTP/1.1\r\n", 21) == 0, "%s", seen.request);
    ck_assert_ptr_nonnull(strstr(seen.request, "\r\nHost: example.test:7410\r\n"));
    ck_assert_ptr_nonnull(strstr(seen.request, "\r\nSec-WebSocket-Version: 13\r\n"));
    char key[64] = "";
    const char *k = strstr(seen.request, "Sec-WebSocket-Key: ");
    ck_assert_ptr_nonnull(k);
    sscanf(k + 19, "%63[^\r]", key);
    ck_assert_int_eq(strlen(key), 24); /* base64 of 16 random bytes */
    ck_assert_msg(chat_ws_pending(ws), "the frame after the header is buffered");
    chat_ws_msg_t m;
    ck_assert_int_eq(chat_ws_recv(ws, 0, &m), CHAT_OK);
    ck_assert_int_eq(m.opcode, CHAT_WS_OP_TEXT);
    ck_assert_str_eq(m.data, "hi");
    ck_assert_uint_eq(m.len, 2);
    chat_ws_msg_clear(&m);
    ck_assert(!chat_ws_pending(ws));
    chat_ws_free(ws);
    close(srv);
}
END_TEST

START_TEST(test_handshake_failures)
{
    chat_ws_t *ws = (chat_ws_t *)1;
    int srv;
    ck_assert_int_eq(open_fake(FAKE_BAD_ACCEPT, NULL, 0, 2000, &ws, &srv, NULL), CHAT_ERR_INVALID);
    ck_assert_ptr_null(ws);
    close(srv);
    ck_assert_int_eq(open_fake(FAKE_REFUSE, NULL, 0, 2000, &ws, &srv, NULL), CHAT_ERR_INVALID);
    close(srv);
    ck_assert_int_eq(open_fake(FAKE_HANG_UP, NULL, 0, 2000, &ws, &srv, NULL), CHAT_ERR_IO);
    close(srv);
    int64_t t0 = chat_clock_mono_ms();
    ck_assert_int_eq(open_fake(FAKE_SILENT, NULL, 0, 200, &ws, &srv, NULL), CHAT_ERR_TIMEOUT);
    int64_t took = chat_clock_mono_ms() - t0;
    ck_assert_msg(took >= 190 && took < 2000, "timeout took %lld ms", (long long)took);
    close(srv);
}
END_TEST

START_TEST(test_connect_refused_and_bad_url)
{
    chat_ws_t *ws = NULL;
    char err[256] = "";
    ck_assert_int_eq(chat_ws_connect("http://127.0.0.1/", 1000, &ws, err, sizeof err),
                     CHAT_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "ws://"));
    /* Port 1 on loopback: nothing listens there, the kernel refuses at once. */
    ck_assert_int_eq(chat_ws_connect("ws://127.0.0.1:1/v1/ws", 1000, &ws, err, sizeof err),
                     CHAT_ERR_IO);
    ck_assert_ptr_null(ws);
    ck_assert_ptr_nonnull(strstr(err, "connect"));
}
END_TEST

/* Sends a frame of len bytes and checks what arrives at the server. */
static void check_sent_frame(chat_ws_t *ws, int srv, int opcode, bool fin, size_t len, int len_form)
{
    unsigned char *payload = malloc(len + 1);
    ck_assert_ptr_nonnull(payload);
    for (size_t i = 0; i < len; i++)
        payload[i] = (unsigned char)('a' + i % 26);
    ck_assert_int_eq(chat_ws_send_raw(ws, opcode, fin, payload, len), CHAT_OK);
    client_frame_t f = read_client_frame(srv);
    ck_assert_int_eq(f.byte0, (fin ? 0x80 : 0) | opcode);
    ck_assert_int_eq(f.len_form, len_form);
    ck_assert_uint_eq(f.len, len);
    ck_assert_msg(memcmp(f.payload, payload, len) == 0, "payload of %zu bytes differs", len);
    free(f.payload);
    free(payload);
}

START_TEST(test_send_lengths_and_flags)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    check_sent_frame(ws, srv, CHAT_WS_OP_TEXT, true, 0, 7);
    check_sent_frame(ws, srv, CHAT_WS_OP_TEXT, true, 125, 7);
    check_sent_frame(ws, srv, CHAT_WS_OP_TEXT, true, 126, 16);
    check_sent_frame(ws, srv, CHAT_WS_OP_BINARY, true, 65535, 16);
    check_sent_frame(ws, srv, CHAT_WS_OP_TEXT, true, 65536, 64);
    check_sent_frame(ws, srv, CHAT_WS_OP_TEXT, true, 70 * 1024, 64);
    /* Odd frames for server tests go out exactly as asked. */
    check_sent_frame(ws, srv, CHAT_WS_OP_TEXT, false, 10, 7);
    check_sent_frame(ws, srv, CHAT_WS_OP_CONTINUATION, true, 10, 7);
    check_sent_frame(ws, srv, 0x3, true, 5, 7);
    check_sent_frame(ws, srv, CHAT_WS_OP_PING, true, 200, 16);
    ck_assert_int_eq(chat_ws_send_raw(ws, 16, true, "x", 1), CHAT_ERR_INVALID);

    const char *text = "{\"type\":\"ping\"}";
    ck_assert_int_eq(chat_ws_send_text(ws, text, strlen(text)), CHAT_OK);
    client_frame_t f = read_client_frame(srv);
    ck_assert_int_eq(f.byte0, 0x81);
    ck_assert_str_eq((char *)f.payload, text);
    free(f.payload);
    chat_ws_free(ws);
    close(srv);
}
END_TEST

START_TEST(test_masks_differ_between_frames)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    unsigned char raw1[10], raw2[10];
    ck_assert_int_eq(chat_ws_send_raw(ws, CHAT_WS_OP_TEXT, true, "abcd", 4), CHAT_OK);
    read_exact(srv, raw1, 10);
    ck_assert_int_eq(chat_ws_send_raw(ws, CHAT_WS_OP_TEXT, true, "abcd", 4), CHAT_OK);
    read_exact(srv, raw2, 10);
    ck_assert_msg(memcmp(raw1 + 2, raw2 + 2, 8) != 0, "every frame needs a fresh mask");
    chat_ws_free(ws);
    close(srv);
}
END_TEST

START_TEST(test_recv_fragments_with_ping_between)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    send_server_frame(srv, 0x01, "Hel", 3);      /* text, not final */
    send_server_frame(srv, 0x89, "p1", 2);       /* ping between fragments */
    send_server_frame(srv, 0x00, "lo ", 3);      /* continuation */
    send_server_frame(srv, 0x8A, "stray", 5);    /* unsolicited pong: ignored */
    send_server_frame(srv, 0x80, "world", 5);    /* final continuation */
    send_server_frame(srv, 0x82, "\x00\x01", 2); /* then a binary message */
    chat_ws_msg_t m;
    ck_assert_int_eq(chat_ws_recv(ws, 1000, &m), CHAT_OK);
    ck_assert_int_eq(m.opcode, CHAT_WS_OP_TEXT);
    ck_assert_str_eq(m.data, "Hello world");
    chat_ws_msg_clear(&m);
    client_frame_t pong = read_client_frame(srv);
    ck_assert_int_eq(pong.byte0, 0x8A);
    ck_assert_str_eq((char *)pong.payload, "p1");
    free(pong.payload);
    ck_assert_int_eq(chat_ws_recv(ws, 1000, &m), CHAT_OK);
    ck_assert_int_eq(m.opcode, CHAT_WS_OP_BINARY);
    ck_assert_uint_eq(m.len, 2);
    ck_assert_int_eq(m.data[1], 1);
    chat_ws_msg_clear(&m);
    chat_ws_free(ws);
    close(srv);
}
END_TEST

START_TEST(test_recv_partial_frame_survives_timeout)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    size_t len = 70000; /* 64-bit length form */
    char *payload = malloc(len);
    ck_assert_ptr_nonnull(payload);
    for (size_t i = 0; i < len; i++)
        payload[i] = (char)('A' + i % 26);
    unsigned char *frame = malloc(len + 16);
    ck_assert_ptr_nonnull(frame);
    size_t flen = server_frame(frame, 0x81, payload, len);
    chat_ws_msg_t m;
    size_t cuts[] = {1, 5, 11, 4000, flen};
    size_t sent = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_all(srv, frame + sent, cuts[i] - sent);
        sent = cuts[i];
        chat_err_t rc = chat_ws_recv(ws, 50, &m);
        if (sent < flen) {
            ck_assert_int_eq(rc, CHAT_ERR_TIMEOUT);
            ck_assert_msg(!chat_ws_pending(ws), "a partial frame is not pending");
        } else {
            ck_assert_int_eq(rc, CHAT_OK);
        }
    }
    ck_assert_uint_eq(m.len, len);
    ck_assert(memcmp(m.data, payload, len) == 0);
    chat_ws_msg_clear(&m);
    ck_assert_int_eq(chat_ws_recv(ws, 0, &m), CHAT_ERR_TIMEOUT);
    free(frame);
    free(payload);
    chat_ws_free(ws);
    close(srv);
}
END_TEST

START_TEST(test_recv_close_with_code_is_echoed)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    send_server_frame(srv, 0x88, "\x0f\xa1unauthorized", 14); /* 4001 */
    chat_ws_msg_t m;
    ck_assert_int_eq(chat_ws_recv(ws, 1000, &m), CHAT_OK);
    ck_assert_int_eq(m.opcode, CHAT_WS_OP_CLOSE);
    ck_assert_int_eq(m.close_code, 4001);
    ck_assert_str_eq(m.data, "unauthorized");
    chat_ws_msg_clear(&m);
    client_frame_t echo = read_client_frame(srv);
    ck_assert_int_eq(echo.byte0, 0x88);
    ck_assert_uint_eq(echo.len, 2);
    ck_assert_int_eq((echo.payload[0] << 8) | echo.payload[1], 4001);
    free(echo.payload);
    ck_assert_int_eq(chat_ws_recv(ws, 0, &m), CHAT_ERR_STOPPED);
    chat_ws_free(ws);
    close(srv);
}
END_TEST

START_TEST(test_recv_close_without_code)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    /* Our own close first: the server's empty answer must not be echoed again. */
    ck_assert_int_eq(chat_ws_close(ws, CHAT_WS_CLOSE_NORMAL, "bye"), CHAT_OK);
    client_frame_t f = read_client_frame(srv);
    ck_assert_int_eq(f.byte0, 0x88);
    ck_assert_uint_eq(f.len, 5);
    ck_assert_int_eq((f.payload[0] << 8) | f.payload[1], 1000);
    ck_assert(memcmp(f.payload + 2, "bye", 3) == 0);
    free(f.payload);
    send_server_frame(srv, 0x88, "", 0);
    chat_ws_msg_t m;
    ck_assert_int_eq(chat_ws_recv(ws, 1000, &m), CHAT_OK);
    ck_assert_int_eq(m.opcode, CHAT_WS_OP_CLOSE);
    ck_assert_int_eq(m.close_code, CHAT_WS_CLOSE_NO_STATUS);
    ck_assert_str_eq(m.data, "");
    chat_ws_msg_clear(&m);
    chat_ws_free(ws); /* closes the client's end: the server reads EOF, no second close */
    char c;
    ck_assert_int_eq(read(srv, &c, 1), 0);
    close(srv);
}
END_TEST

START_TEST(test_recv_eof_is_abnormal_close)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    send_server_frame(srv, 0x81, "last", 4);
    close(srv);
    chat_ws_msg_t m;
    ck_assert_int_eq(chat_ws_recv(ws, 1000, &m), CHAT_OK);
    ck_assert_str_eq(m.data, "last");
    chat_ws_msg_clear(&m);
    ck_assert_int_eq(chat_ws_recv(ws, 1000, &m), CHAT_OK);
    ck_assert_int_eq(m.opcode, CHAT_WS_OP_CLOSE);
    ck_assert_int_eq(m.close_code, CHAT_WS_CLOSE_ABNORMAL);
    chat_ws_msg_clear(&m);
    ck_assert_int_eq(chat_ws_recv(ws, 1000, &m), CHAT_ERR_STOPPED);
    chat_ws_free(ws);
}
END_TEST

/* A server frame that breaks the protocol fails the connection for good. */
static void check_violation(const unsigned char *frame, size_t len, const char *why)
{
    int srv;
    chat_ws_t *ws = open_ok(&srv);
    write_all(srv, frame, len);
    chat_ws_msg_t m;
    ck_assert_msg(chat_ws_recv(ws, 1000, &m) == CHAT_ERR_INVALID, "%s: accepted", why);
    ck_assert_msg(chat_ws_last_error(ws)[0] != '\0', "%s: no reason", why);
    ck_assert_msg(chat_ws_recv(ws, 0, &m) == CHAT_ERR_INVALID, "%s: not sticky", why);
    chat_ws_free(ws);
    close(srv);
}

START_TEST(test_recv_protocol_violations)
{
    static const unsigned char masked[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2};
    static const unsigned char rsv[] = {0xC1, 0x01, 'x'};
    static const unsigned char orphan_cont[] = {0x80, 0x01, 'x'};
    static const unsigned char frag_ping[] = {0x09, 0x00};
    static const unsigned char big_ping[] = {0x89, 126, 0x00, 0x7e};
    static const unsigned char reserved_op[] = {0x83, 0x00};
    static const unsigned char new_inside[] = {0x01, 0x01, 'a', 0x81, 0x01, 'b'};
    static const unsigned char short_close[] = {0x88, 0x01, 0x03};
    static const unsigned char huge[] = {0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 1};
    check_violation(masked, sizeof masked, "masked frame");
    check_violation(rsv, sizeof rsv, "rsv bit");
    check_violation(orphan_cont, sizeof orphan_cont, "orphan continuation");
    check_violation(frag_ping, sizeof frag_ping, "fragmented ping");
    check_violation(big_ping, sizeof big_ping, "ping over 125 bytes");
    check_violation(reserved_op, sizeof reserved_op, "reserved opcode");
    check_violation(new_inside, sizeof new_inside, "message inside a fragmented one");
    check_violation(short_close, sizeof short_close, "one-byte close payload");
    check_violation(huge, sizeof huge, "message over the size limit");
}
END_TEST

static Suite *ws_client_suite(void)
{
    Suite *s = suite_create("ws_client");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_accept_key_rfc_example);
    tcase_add_test(tc, test_url_parse);
    tcase_add_test(tc, test_handshake_request_and_leftover_bytes);
    tcase_add_test(tc, test_handshake_failures);
    tcase_add_test(tc, test_connect_refused_and_bad_url);
    tcase_add_test(tc, test_send_lengths_and_flags);
    tcase_add_test(tc, test_masks_differ_between_frames);
    tcase_add_test(tc, test_recv_fragments_with_ping_between);
    tcase_add_test(tc, test_recv_partial_frame_survives_timeout);
    tcase_add_test(tc, test_recv_close_with_code_is_echoed);
    tcase_add_test(tc, test_recv_close_without_code);
    tcase_add_test(tc, test_recv_eof_is_abnormal_close);
    tcase_add_test(tc, test_recv_protocol_violations);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(ws_client_suite(), false);
}
