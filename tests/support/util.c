/* Test helpers without a stack: free local ports, HTTP to ops endpoints on 127.0.0.1, and
 * metric values from Prometheus text. */
#include "tests/support/util.h"

#include <check.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int chat_test_suite_run(Suite *s, bool in_process)
{
    SRunner *sr = srunner_create(s);
    if (in_process)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int chat_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}

/* ---- HTTP ---- */

/* A socket connected to 127.0.0.1:port whose sends and receives give up after timeout_ms;
 * -1 if nothing accepts the connection. */
static int connect_local(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* Everything fd receives until the peer closes, malloc'd and NUL-terminated; NULL if a
 * receive fails or times out first. */
static char *recv_all(int fd)
{
    size_t cap = 1 << 14, used = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL)
        return NULL;
    for (;;) {
        if (used == cap) {
            char *bigger = realloc(buf, 2 * cap + 1);
            if (bigger == NULL)
                break;
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + used, cap - used, 0);
        if (n == 0) {
            buf[used] = '\0';
            return buf;
        }
        if (n < 0)
            break;
        used += (size_t)n;
    }
    free(buf);
    return NULL;
}

bool chat_test_http_raw(int port, const char *request, int timeout_ms, chat_test_http_reply_t *out)
{
    memset(out, 0, sizeof *out);
    int fd = connect_local(port, timeout_ms);
    if (fd < 0)
        return false;
    char *raw = send_all(fd, request, strlen(request)) ? recv_all(fd) : NULL;
    close(fd);
    if (raw == NULL)
        return false;
    int status = 0;
    char *end = strstr(raw, "\r\n\r\n");
    if (sscanf(raw, "HTTP/1.%*d %d", &status) != 1 || end == NULL) {
        free(raw);
        return false;
    }
    *end = '\0';
    *out = (chat_test_http_reply_t){.status = status, .headers = raw, .body = end + 4, .raw = raw};
    return true;
}

bool chat_test_http_request(int port, const char *method, const char *path, int timeout_ms,
                            chat_test_http_reply_t *out)
{
    char request[512];
    snprintf(request, sizeof request, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    return chat_test_http_raw(port, request, timeout_ms, out);
}

void chat_test_http_reply_free(chat_test_http_reply_t *r)
{
    if (r == NULL)
        return;
    free(r->raw);
    memset(r, 0, sizeof *r);
}

/* ---- metrics ---- */

bool chat_test_metric_find(const char *text, const char *series, uint64_t *value)
{
    size_t len = strlen(series);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, series, len) == 0 && line[len] == ' ') {
            char *end;
            unsigned long long v = strtoull(line + len + 1, &end, 10);
            if (end == line + len + 1)
                return false;
            *value = v;
            return true;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return false;
}

uint64_t chat_test_metric_value(const char *text, const char *series)
{
    uint64_t v = 0;
    ck_assert_msg(chat_test_metric_find(text, series, &v), "no sample of %s in:\n%.4000s", series,
                  text);
    return v;
}

uint64_t chat_test_ops_metric(int port, const char *series)
{
    chat_test_http_reply_t r;
    ck_assert_msg(chat_test_http_request(port, "GET", "/metrics", 5000, &r),
                  "no /metrics on port %d", port);
    int status = r.status;
    uint64_t v = 0;
    bool found = status == 200 && chat_test_metric_find(r.body, series, &v);
    chat_test_http_reply_free(&r); /* before any failure: a failed test must not leak it */
    ck_assert_msg(status == 200, "/metrics on port %d: status %d", port, status);
    ck_assert_msg(found, "no sample of %s in the /metrics of port %d", series, port);
    return v;
}

double chat_test_registry_value(chat_metrics_t *m, const char *series)
{
    char *text = chat_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    size_t n = strlen(series);
    const char *p = text;
    while (p != NULL && !(strncmp(p, series, n) == 0 && p[n] == ' '))
        p = (p = strchr(p, '\n')) != NULL ? p + 1 : NULL;
    bool found = p != NULL;
    double v = found ? strtod(p + n + 1, NULL) : 0;
    free(text); /* before any failure: a failed test must not leak it */
    ck_assert_msg(found, "no sample of %s", series);
    return v;
}
