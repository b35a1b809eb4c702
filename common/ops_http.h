/* The ops HTTP server every service runs (libmicrohttpd, its own thread):
 *   GET /healthz  200 "ok" while the process runs
 *   GET /readyz   200 "ready", or 503 with the reason the ready callback gave
 *   GET /metrics  the registry in Prometheus text format
 * Anything else is 404; methods other than GET/HEAD are 405. */
#ifndef CHAT_COMMON_OPS_HTTP_H
#define CHAT_COMMON_OPS_HTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "common/err.h"
#include "common/metrics.h"

typedef struct chat_ops chat_ops_t;

/* Called on the server thread for each /readyz. Returns true if ready; otherwise writes a
 * short reason into reason (NUL-terminated, at most reason_len bytes). Must be thread-safe. */
typedef bool (*chat_ops_ready_fn)(void *ud, char *reason, size_t reason_len);

/* Starts serving on addr:port ("0.0.0.0" for all interfaces; port 0 picks a free one,
 * see chat_ops_port). metrics is borrowed and must outlive the server; ready may be NULL
 * (always ready). Returns CHAT_ERR_IO if the port cannot be bound (the reason is logged). */
chat_err_t chat_ops_start(const char *addr, int port, chat_metrics_t *metrics,
                          chat_ops_ready_fn ready, void *ud, chat_ops_t **out);

/* The port actually bound. */
int chat_ops_port(const chat_ops_t *ops);

/* Stops the server and frees it. Accepts NULL. */
void chat_ops_stop(chat_ops_t *ops);

/* ---- for other libmicrohttpd servers of the services ---- */

/* Fills *ss with the numeric IPv4 or IPv6 address addr and port (all else zeroed) and adds
 * MHD_USE_IPv6 to *flags for IPv6. Returns false if addr is neither. */
bool chat_ops_sockaddr(const char *addr, int port, struct sockaddr_storage *ss,
                       unsigned int *flags);

/* An MHD_OPTION_EXTERNAL_LOGGER: logs MHD's diagnostic (trailing newlines dropped, at most 511
 * bytes) as a warn line whose message is cls (a const char *, e.g. "api http server"). */
void chat_ops_mhd_log(void *cls, const char *fmt, va_list ap);

#endif
