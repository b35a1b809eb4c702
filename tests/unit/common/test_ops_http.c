/* Unit tests of common/ops_http: a server on an ephemeral port, spoken to over a raw TCP
 * socket: /healthz, /readyz (ready and not ready), /metrics, 404, 405, HEAD, and the
 * failure to bind a port that is already taken. */
#define _GNU_SOURCE /* strcasestr */
#include <check.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ops_http.h"
#include "tests/support/util.h"

/* The value of header name in r (first occurrence), or NULL; malloc'd. */
static char *header_value(const chat_test_http_reply_t *r, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *at = strcasestr(r->headers, key);
    if (at == NULL)
        return NULL;
    at += strlen(key);
    at += strspn(at, " \t");
    return strndup(at, strcspn(at, "\r\n"));
}

static void assert_header(const chat_test_http_reply_t *r, const char *name, const char *want)
{
    char *value = header_value(r, name);
    ck_assert_msg(value != NULL, "no %s header in %s", name, r->headers);
    ck_assert_str_eq(value, want);
    free(value);
}

/* Sends request as is and reads the reply until the server closes the connection; fails
 * the test unless a complete HTTP reply comes. */
static chat_test_http_reply_t http_raw(int port, const char *request)
{
    chat_test_http_reply_t r;
    ck_assert_msg(chat_test_http_raw(port, request, 3000, &r), "no complete reply to: %s", request);
    return r;
}

/* One HTTP/1.0 request without a body. */
static chat_test_http_reply_t http_get(int port, const char *method, const char *path)
{
    chat_test_http_reply_t r;
    ck_assert_msg(chat_test_http_request(port, method, path, 3000, &r),
                  "no complete reply to %s %s", method, path);
    return r;
}

/* Ready callback: ud points at an atomic_int, 1 = ready, 0 = not ready with a reason,
 * 2 = not ready without one. */
static bool ready_from_flag(void *ud, char *reason, size_t reason_len)
{
    int state = atomic_load((atomic_int *)ud);
    if (state == 1)
        return true;
    if (state == 0)
        snprintf(reason, reason_len, "kafka not connected");
    return false;
}

static chat_ops_t *start(chat_metrics_t *metrics, chat_ops_ready_fn ready, void *ud)
{
    chat_ops_t *ops = NULL;
    ck_assert_int_eq(chat_ops_start("127.0.0.1", 0, metrics, ready, ud, &ops), CHAT_OK);
    ck_assert_ptr_nonnull(ops);
    ck_assert_int_gt(chat_ops_port(ops), 0);
    return ops;
}

START_TEST(test_healthz)
{
    chat_ops_t *ops = start(NULL, NULL, NULL);
    chat_test_http_reply_t r = http_get(chat_ops_port(ops), "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ok\n");
    assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
    chat_test_http_reply_free(&r);
    /* The query string is not part of the path. */
    r = http_get(chat_ops_port(ops), "GET", "/healthz?verbose=1");
    ck_assert_int_eq(r.status, 200);
    chat_test_http_reply_free(&r);
    chat_ops_stop(ops);
}
END_TEST

START_TEST(test_readyz)
{
    atomic_int state = 1;
    chat_ops_t *ops = start(NULL, ready_from_flag, &state);
    int port = chat_ops_port(ops);
    chat_test_http_reply_t r = http_get(port, "GET", "/readyz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ready\n");
    chat_test_http_reply_free(&r);

    atomic_store(&state, 0);
    r = http_get(port, "GET", "/readyz");
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "kafka not connected\n");
    chat_test_http_reply_free(&r);

    atomic_store(&state, 2);
    r = http_get(port, "GET", "/readyz");
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(r.body, "not ready\n");
    chat_test_http_reply_free(&r);

    /* Liveness does not depend on readiness. */
    r = http_get(port, "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    chat_test_http_reply_free(&r);
    chat_ops_stop(ops);
}
END_TEST

START_TEST(test_readyz_without_callback)
{
    chat_ops_t *ops = start(NULL, NULL, NULL);
    chat_test_http_reply_t r = http_get(chat_ops_port(ops), "GET", "/readyz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "ready\n");
    chat_test_http_reply_free(&r);
    chat_ops_stop(ops);
}
END_TEST

START_TEST(test_metrics)
{
    chat_metrics_t *metrics = chat_metrics_new();
    chat_counter_add(chat_metrics_counter(metrics, "ops_test_total", "Test counter.", NULL), 5);
    chat_ops_t *ops = start(metrics, NULL, NULL);
    chat_test_http_reply_t r = http_get(chat_ops_port(ops), "GET", "/metrics");
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(r.body, "# TYPE ops_test_total counter\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nops_test_total 5\n"));
    chat_test_http_reply_free(&r);
    /* The body is rendered per request. */
    chat_counter_inc(chat_metrics_counter(metrics, "ops_test_total", "Test counter.", NULL));
    r = http_get(chat_ops_port(ops), "GET", "/metrics");
    ck_assert_ptr_nonnull(strstr(r.body, "\nops_test_total 6\n"));
    chat_test_http_reply_free(&r);
    chat_ops_stop(ops);
    chat_metrics_destroy(metrics);
}
END_TEST

START_TEST(test_not_found)
{
    chat_ops_t *ops = start(NULL, NULL, NULL);
    const char *paths[] = {"/", "/nope", "/healthz/", "/metricsx", "/HEALTHZ"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        chat_test_http_reply_t r = http_get(chat_ops_port(ops), "GET", paths[i]);
        ck_assert_msg(r.status == 404, "%s: %d", paths[i], r.status);
        chat_test_http_reply_free(&r);
    }
    chat_ops_stop(ops);
}
END_TEST

START_TEST(test_method_not_allowed)
{
    chat_ops_t *ops = start(NULL, NULL, NULL);
    int port = chat_ops_port(ops);
    chat_test_http_reply_t r =
        http_raw(port, "POST /healthz HTTP/1.1\r\nHost: localhost\r\n"
                       "Connection: close\r\nContent-Length: 5\r\n\r\nhello");
    ck_assert_int_eq(r.status, 405);
    assert_header(&r, "Allow", "GET, HEAD");
    chat_test_http_reply_free(&r);
    const char *methods[] = {"PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        r = http_get(port, methods[i], "/metrics");
        ck_assert_msg(r.status == 405, "%s: %d", methods[i], r.status);
        chat_test_http_reply_free(&r);
    }
    chat_ops_stop(ops);
}
END_TEST

START_TEST(test_head_and_http11)
{
    chat_ops_t *ops = start(NULL, NULL, NULL);
    int port = chat_ops_port(ops);
    chat_test_http_reply_t r = http_get(port, "HEAD", "/healthz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "");
    chat_test_http_reply_free(&r);
    r = http_raw(port, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.raw, "HTTP/1.1 200"));
    ck_assert_str_eq(r.body, "ok\n");
    chat_test_http_reply_free(&r);
    chat_ops_stop(ops);
}
END_TEST

START_TEST(test_port_taken)
{
    chat_ops_t *first = start(NULL, NULL, NULL);
    int port = chat_ops_port(first);
    int log_pipe[2];
    ck_assert_int_eq(pipe(log_pipe), 0);
    ck_assert_int_eq(fcntl(log_pipe[0], F_SETFL, O_NONBLOCK), 0);
    chat_log_set_fd(log_pipe[1]);
    chat_ops_t *second = (chat_ops_t *)&second; /* must be reset to NULL */
    chat_err_t err = chat_ops_start("127.0.0.1", port, NULL, NULL, NULL, &second);
    chat_log_set_fd(2);
    ck_assert_int_eq(err, CHAT_ERR_IO);
    ck_assert_ptr_null(second);
    char logged[8192] = "";
    ssize_t n = read(log_pipe[0], logged, sizeof logged - 1);
    ck_assert_int_gt(n, 0);
    char port_field[32];
    snprintf(port_field, sizeof port_field, "\"port\":%d", port);
    ck_assert_msg(strstr(logged, "\"level\":\"error\"") && strstr(logged, port_field) &&
                      strstr(logged, "\"addr\":\"127.0.0.1\"") && strstr(logged, "in use"),
                  "error line: %s", logged);
    close(log_pipe[0]);
    close(log_pipe[1]);
    /* The first server is unaffected. */
    chat_test_http_reply_t r = http_get(port, "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    chat_test_http_reply_free(&r);
    chat_ops_stop(first);
}
END_TEST

START_TEST(test_bad_arguments)
{
    chat_ops_t *ops = NULL;
    ck_assert_int_eq(chat_ops_start("not-an-address", 0, NULL, NULL, NULL, &ops), CHAT_ERR_INVALID);
    ck_assert_ptr_null(ops);
    ck_assert_int_eq(chat_ops_start("127.0.0.1", 70000, NULL, NULL, NULL, &ops), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_ops_start("127.0.0.1", -1, NULL, NULL, NULL, &ops), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_ops_start("127.0.0.1", 0, NULL, NULL, NULL, NULL), CHAT_ERR_INVALID);
    chat_ops_stop(NULL);
}
END_TEST

int main(void)
{
    chat_log_set_level(CHAT_LOG_WARN);
    Suite *s = suite_create("ops_http");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_healthz);
    tcase_add_test(tc, test_readyz);
    tcase_add_test(tc, test_readyz_without_callback);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_not_found);
    tcase_add_test(tc, test_method_not_allowed);
    tcase_add_test(tc, test_head_and_http11);
    tcase_add_test(tc, test_port_taken);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
