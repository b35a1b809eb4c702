/* Small helpers that unit and integration tests share and that need no stack: a test
 * program's run of its suite, a free local port, an HTTP request to an ops endpoint on
 * 127.0.0.1, and metric values read from the Prometheus text that /metrics or
 * chat_metrics_render() returns. */
#ifndef CHAT_TESTS_SUPPORT_UTIL_H
#define CHAT_TESTS_SUPPORT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>

#include "common/metrics.h"

/* Runs every test of s (forking per test as Check's CK_FORK says, or in this process when
 * in_process), frees the runner and s, and returns main()'s exit status: EXIT_SUCCESS if
 * all passed. */
int chat_test_suite_run(Suite *s, bool in_process);

/* A TCP port of 127.0.0.1 that was free a moment ago (bound, then released): for a process
 * to listen on, or as a closed port to connect to. Fails the test if none can be bound. */
int chat_test_free_port(void);

/* ---- HTTP ---- */

/* A reply as received; raw owns the memory the other fields point into. */
typedef struct chat_test_http_reply {
    int status;    /* from the status line */
    char *headers; /* status line and headers, without the blank line */
    char *body;    /* everything after the blank line */
    char *raw;
} chat_test_http_reply_t;

/* Sends request (the text as is) to 127.0.0.1:port and reads the reply until the server closes
 * the connection; timeout_ms bounds each send and receive. Returns false, with *out empty, if
 * nothing listens, the reply does not end cleanly in time, or it has no HTTP status line or no
 * end of headers. On success the caller frees *out with chat_test_http_reply_free. */
bool chat_test_http_raw(int port, const char *request, int timeout_ms, chat_test_http_reply_t *out);
/* One HTTP/1.0 request without a body (method "GET", "HEAD", ...) through chat_test_http_raw. */
bool chat_test_http_request(int port, const char *method, const char *path, int timeout_ms,
                            chat_test_http_reply_t *out);
/* Frees what a reply holds and empties it. Accepts NULL and an empty reply. */
void chat_test_http_reply_free(chat_test_http_reply_t *r);

/* ---- metrics (Prometheus text format) ---- */

/* Finds the sample of series (name, or name{labels} exactly as rendered) at the start of a
 * line of text and stores its integer value in *value. False if there is no such line. */
bool chat_test_metric_find(const char *text, const char *series, uint64_t *value);
/* The value of series in text; fails the test if text has no such sample, so that a renamed
 * or unregistered metric does not read as 0. */
uint64_t chat_test_metric_value(const char *text, const char *series);
/* The value of series in the /metrics of the ops server on 127.0.0.1:port; fails the test if
 * /metrics does not answer 200 or lacks the series. */
uint64_t chat_test_ops_metric(int port, const char *series);
/* The value (a double: histogram sums too) of series in m's rendering; fails the test if m
 * has no such sample. */
double chat_test_registry_value(chat_metrics_t *m, const char *series);

#endif
