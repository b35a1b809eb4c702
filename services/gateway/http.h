/* Plain HTTP on the WebSocket port (docs/widget.md, "What the gateway serves"): the built
 * widget files, integrity.json and the local demo's endpoints. Off the message path: the
 * WebSocket upgrade of /v1/ws never comes here.
 *
 * gw_http_route decides the answer to a request without any I/O (the unit tests call it);
 * gw_http_on_* are the libwebsockets side, called from server.c's callback: the headers are
 * written when the request arrives, the body in chunks each time the socket can take more
 * (LWS_CALLBACK_HTTP_WRITEABLE), so a large file never blocks the loop nor buffers whole in
 * lws. Internal to services/gateway; loop thread only. */
#ifndef CHAT_GATEWAY_HTTP_H
#define CHAT_GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "services/gateway/demo.h"
#include "services/gateway/widget_files.h"

struct lws;

#define GW_HTTP_SELF_HOST_MAX 96
/* The answer of a widget path while CHAT_WIDGET_DIR is unset. */
#define GW_HTTP_NO_WIDGET "the widget is not installed on this gateway (CHAT_WIDGET_DIR)\n"

/* What the answers are made from: the gateway's (main.c makes them at start and frees them
 * after the listener is gone). */
typedef struct gw_http_site {
    gw_widget_files_t *widget;             /* NULL: CHAT_WIDGET_DIR unset */
    gw_demo_t *demo;                       /* NULL: the demo is off */
    char self_host[GW_HTTP_SELF_HOST_MAX]; /* host:port of this gateway for a request without
                                              Host (the demo's default gateway URL) */
} gw_http_site_t;

typedef enum gw_http_method {
    GW_HTTP_GET,
    GW_HTTP_HEAD,
    GW_HTTP_OTHER, /* anything else lws parses (POST, PUT, DELETE, OPTIONS, ...) */
} gw_http_method_t;

/* A request as the router needs it; strings are the caller's, NULL where absent. */
typedef struct gw_http_request {
    gw_http_method_t method;
    const char *path; /* without the query string */
    const char *user; /* the query's user= (demo token) */
    const char *host; /* the Host header */
    const char *if_none_match;
} gw_http_request_t;

typedef struct gw_http_answer {
    unsigned status;           /* 0: not a path of this module; answer as any unknown URL */
    const char *content_type;  /* static */
    const char *cache_control; /* static; NULL: none */
    const char *etag;          /* the site's; NULL: none */
    const char *allow;         /* 405: the methods allowed */
    bool cross_origin;         /* access-control-allow-origin: * and cross-origin-resource-policy */
    bool send_body;            /* false for HEAD and 304 (len is still the content-length) */
    const unsigned char *body; /* the site's bytes or owned */
    size_t len;
    char *owned; /* malloc'd body of a computed answer; freed by gw_http_answer_clear */
} gw_http_answer_t;

/* Fills *a with the answer to req at now_s (seconds since the epoch). Every answer carries
 * x-content-type-options: nosniff. CHAT_ERR_NOMEM when a computed answer could not be made
 * (*a is then cleared). Release with gw_http_answer_clear. */
chat_err_t gw_http_route(const gw_http_site_t *site, const gw_http_request_t *req, int64_t now_s,
                         gw_http_answer_t *a);

/* Frees what *a owns and zeroes it. */
void gw_http_answer_clear(gw_http_answer_t *a);

/* True if the If-None-Match value inm (a list of entity tags, weak ones included, or "*")
 * names etag. */
bool gw_http_etag_matches(const char *inm, const char *etag);

/* ---- libwebsockets side ---- */

/* A connection's reply in progress: lws's per-connection memory of the protocol, zeroed for
 * each HTTP transaction (server.c makes it at least this large). */
typedef struct gw_http_reply {
    const unsigned char *body;
    size_t len, sent;
    char *owned;
} gw_http_reply_t;

/* LWS_CALLBACK_HTTP: in/len are the path lws parsed. Answers the paths of this module (the
 * headers and the first chunk of the body at once) and 404s every other path as lws does.
 * Returns what the callback returns (-1: close). */
int gw_http_on_request(struct lws *wsi, gw_http_reply_t *r, const gw_http_site_t *site,
                       const char *in, size_t len);

/* LWS_CALLBACK_HTTP_WRITEABLE: the next chunk of r's body; completes the transaction after
 * the last. */
int gw_http_on_writable(struct lws *wsi, gw_http_reply_t *r);

/* LWS_CALLBACK_HTTP_BODY_COMPLETION (a request body was read, e.g. a POST's): completes the
 * transaction unless a reply is still being sent, whose last chunk does. */
int gw_http_on_body_done(struct lws *wsi, gw_http_reply_t *r);

/* LWS_CALLBACK_HTTP_DROP_PROTOCOL (end of a transaction, or the connection closed while
 * sending): frees what r holds. Accepts NULL. */
void gw_http_on_drop(gw_http_reply_t *r);

/* Answers a WebSocket upgrade request with an HTTP/1.1 error and closes: status is the status
 * line's rest ("403 Forbidden"), retry_after_s > 0 adds Retry-After, body is text/plain.
 * Written by hand: lws_return_http_status answers an upgrade request as HTTP/1.0, which strict
 * WebSocket clients do not accept as a response. Returns what the lws callback returns (1:
 * answered, -1: the write failed). Loop thread. */
int gw_http_refuse_upgrade(struct lws *wsi, const char *status, int retry_after_s,
                           const char *body);

#endif
