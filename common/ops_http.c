/* The ops endpoints (/healthz, /readyz, /metrics) on libmicrohttpd's internal polling
 * thread (epoll where available, poll otherwise). Requests are answered only once the
 * whole request (including any body) has been read, so MHD never sees a half-read one. */
#include "common/ops_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"

#define OPS_TEXT_TYPE "text/plain; charset=utf-8"
#define OPS_METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Scrapers and probes are few; the limits keep a misbehaving client from holding threads. */
#define OPS_CONNECTION_LIMIT 64u
#define OPS_CONNECTION_TIMEOUT_S 10u
#define OPS_REASON_MAX 256

struct chat_ops {
    struct MHD_Daemon *daemon;
    chat_metrics_t *metrics;
    chat_ops_ready_fn ready;
    void *ud;
};

/* Queues a response with body (length len). MHD copies or frees the body as mode says. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned int status,
                               const char *content_type, const char *body, size_t len,
                               enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *conn, unsigned int status,
                                    const char *body)
{
    return respond(conn, status, OPS_TEXT_TYPE, body, strlen(body), MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result serve_readyz(const chat_ops_t *ops, struct MHD_Connection *conn)
{
    char reason[OPS_REASON_MAX] = "";
    if (ops->ready == NULL || ops->ready(ops->ud, reason, sizeof reason))
        return respond_text(conn, MHD_HTTP_OK, "ready\n");
    reason[sizeof reason - 1] = '\0';
    char body[OPS_REASON_MAX + 2];
    snprintf(body, sizeof body, "%s\n", reason[0] != '\0' ? reason : "not ready");
    return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body);
}

static enum MHD_Result serve_metrics(const chat_ops_t *ops, struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text = chat_metrics_render(ops->metrics, &len);
    if (text == NULL)
        return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    return respond(conn, MHD_HTTP_OK, OPS_METRICS_TYPE, text, len, MHD_RESPMEM_MUST_FREE);
}

/* MHD access handler. The first call for a request only marks it as seen; body chunks are
 * discarded; the final call (no more upload data) routes it. */
static enum MHD_Result ops_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **request_state)
{
    (void)version;
    (void)upload_data;
    chat_ops_t *ops = cls;
    if (*request_state == NULL) {
        *request_state = ops;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (strcmp(url, "/healthz") == 0)
        return respond_text(conn, MHD_HTTP_OK, "ok\n");
    if (strcmp(url, "/readyz") == 0)
        return serve_readyz(ops, conn);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(ops, conn);
    return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Logs one diagnostic of MHD as a warn line; cls is the line's message. */
void chat_ops_mhd_log(void *cls, const char *fmt, va_list ap)
{
    const char *what = cls;
    char detail[512];
    vsnprintf(detail, sizeof detail, fmt, ap);
    size_t n = strlen(detail);
    while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == '\r'))
        detail[--n] = '\0';
    chat_log_warn(what, CHAT_F_STR("detail", detail));
}

/* Fills *ss from a numeric address; false if addr is neither IPv4 nor IPv6. */
bool chat_ops_sockaddr(const char *addr, int port, struct sockaddr_storage *ss, unsigned int *flags)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return true;
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *flags |= MHD_USE_IPv6;
        return true;
    }
    return false;
}

/* Returns CHAT_ERR_INVALID for a bad address or port, CHAT_ERR_NOMEM, or CHAT_ERR_IO when
 * MHD cannot start (bind failure: logged with the address, port and errno text). */
chat_err_t chat_ops_start(const char *addr, int port, chat_metrics_t *metrics,
                          chat_ops_ready_fn ready, void *ud, chat_ops_t **out)
{
    if (out == NULL)
        return CHAT_ERR_INVALID;
    *out = NULL;
    if (addr == NULL)
        addr = "0.0.0.0";
    struct sockaddr_storage ss;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (port < 0 || port > 65535 || !chat_ops_sockaddr(addr, port, &ss, &flags)) {
        chat_log_error("bad ops http address or port", CHAT_F_STR("addr", addr),
                       CHAT_F_INT("port", port));
        return CHAT_ERR_INVALID;
    }
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    chat_ops_t *ops = calloc(1, sizeof *ops);
    if (ops == NULL)
        return CHAT_ERR_NOMEM;
    ops->metrics = metrics;
    ops->ready = ready;
    ops->ud = ud;
    errno = 0;
    ops->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, ops_handle, ops, MHD_OPTION_EXTERNAL_LOGGER,
        chat_ops_mhd_log, "ops http server", MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, OPS_CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
        OPS_CONNECTION_TIMEOUT_S, MHD_OPTION_END);
    if (ops->daemon == NULL) {
        int err = errno;
        chat_log_error("cannot start the ops http server", CHAT_F_STR("addr", addr),
                       CHAT_F_INT("port", port),
                       CHAT_F_STR("error", err != 0 ? strerror(err) : "unknown"));
        free(ops);
        return CHAT_ERR_IO;
    }
    chat_log_info("ops http server listening", CHAT_F_STR("addr", addr),
                  CHAT_F_INT("port", chat_ops_port(ops)));
    *out = ops;
    return CHAT_OK;
}

/* The bound port (the real one when started with port 0), or -1 if ops is NULL. */
int chat_ops_port(const chat_ops_t *ops)
{
    if (ops == NULL)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(ops->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info != NULL ? (int)info->port : -1;
}

void chat_ops_stop(chat_ops_t *ops)
{
    if (ops == NULL)
        return;
    MHD_stop_daemon(ops->daemon);
    free(ops);
}
