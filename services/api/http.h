/* The api service's HTTP core (http.c): the libmicrohttpd server and what every request goes
 * through before and after its handler (request id, auth, rate limit, body, idempotency,
 * routing, errors, metrics, the log line). The pure pieces are declared here for unit tests. */
#ifndef CHAT_API_HTTP_H
#define CHAT_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "services/api/api.h"

typedef struct api_http_conf {
    const char *addr; /* numeric IPv4 or IPv6 address */
    int port;         /* 0: any free port (api_http_port) */
    int threads;      /* libmicrohttpd's thread pool */
    size_t max_body;  /* bytes of a request body; more is 413 */
    double rate;      /* requests per second per tenant */
    double burst;
    int64_t secret_ttl_ms;   /* how long a tenant's secret is cached */
    int64_t leeway_s;        /* clock skew allowed on iat and exp */
    bool tls;                /* serve HTTPS with services/api/tls.c's credentials (opened) */
    unsigned per_ip_max;     /* connections from one address; 0: no cap */
    unsigned idle_timeout_s; /* a connection silent this long is closed; 0: the default */
} api_http_conf_t;

/* Creates the core in ctx->core (routes can then be registered). CHAT_ERR_NOMEM. */
chat_err_t api_http_new(api_ctx_t *ctx);

/* Starts serving with the routes registered so far. The idempotency index is created first
 * (a MongoDB failure is returned); CHAT_ERR_IO if the port cannot be bound (logged). */
chat_err_t api_http_start(api_ctx_t *ctx, const api_http_conf_t *conf);

/* The port actually bound, or -1 when not started. */
int api_http_port(const api_ctx_t *ctx);

/* Stops the server (requests in hand finish first) and frees the core. Accepts a ctx whose
 * core is NULL. */
void api_http_destroy(api_ctx_t *ctx);

/* ---- pure pieces ---- */

/* True if path (a URL path, still percent-encoded) matches pattern ("/v1/rooms/{room}").
 * Each {name} segment matches one non-empty segment, which is percent-decoded into
 * params[i] (malloc'd; the caller frees the *nparams entries, also on a false return). A
 * segment whose decoding holds a NUL byte or a malformed escape does not match. */
bool api_pattern_match(const char *pattern, const char *path, char **params, size_t *nparams);

/* Percent-decodes s (and '+' as a space when plus is true) into a malloc'd string. NULL on a
 * malformed escape, an escaped NUL or no memory. */
char *api_percent_decode(const char *s, size_t len, bool plus);

/* The error code word of an HTTP status (400 bad_request ... 5xx internal). */
const char *api_status_code_word(int status);

/* Parses a cursor (?cursor=): base64url of 1..len-1 bytes of valid UTF-8 without control
 * characters, written into raw.
 * False if it is anything else. */
bool api_cursor_decode(const char *cursor, char *raw, size_t len);

/* Parses ?limit: NULL gives 50, otherwise a decimal 1..100. False if it is anything else. */
bool api_limit_parse(const char *text, int *limit);

/* Reads "Bearer <token>" (scheme case-insensitive) from an Authorization header value;
 * returns the token or NULL. */
const char *api_bearer_token(const char *header);

#endif
