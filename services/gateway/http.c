/* Plain HTTP on the WebSocket port (see http.h): a fixed table of paths, so no part of a
 * request ever becomes a file name; answers from the widget files held in memory or computed
 * by the demo; written with lws in chunks. */
#include "services/gateway/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "common/clock.h"

#define CHUNK 16384 /* body bytes per writable callback */
#define HEADERS_MAX 1024
#define PATH_MAX_ 256
#define ARG_MAX 256
#define INM_MAX 1024
#define HOST_MAX 256

#define TYPE_JS "text/javascript; charset=utf-8"
#define TYPE_TS "application/typescript; charset=utf-8"
#define TYPE_JSON "application/json"
#define TYPE_HTML "text/html; charset=utf-8"
#define TYPE_TEXT "text/plain; charset=utf-8"
#define CACHE_FILES "public, max-age=300"

static const char not_allowed[] = "method not allowed\n";
static const char bad_user[] =
    "{\"error\":{\"code\":\"bad_request\",\"message\":\"user must be 1 to 32 characters of a-z, "
    "0-9, _ and -\",\"status\":400}}";

typedef enum route_kind {
    ROUTE_FILE,      /* a widget file, cached for a while */
    ROUTE_INTEGRITY, /* integrity.json: revalidated each time */
    ROUTE_DEMO_PAGE,
    ROUTE_DEMO_TOKEN,
    ROUTE_DEMO_CONFIG,
} route_kind_t;

typedef struct route {
    const char *path;
    route_kind_t kind;
    gw_widget_file_id_t file;
    const char *content_type;
} route_t;

static const route_t routes[] = {
    {"/v1/widget.js", ROUTE_FILE, GW_WIDGET_JS, TYPE_JS},
    {"/v1/chat-sdk.mjs", ROUTE_FILE, GW_WIDGET_SDK, TYPE_JS},
    {"/v1/chat-sdk.d.ts", ROUTE_FILE, GW_WIDGET_SDK_TYPES, TYPE_TS},
    {"/v1/chat-sw.js", ROUTE_FILE, GW_WIDGET_SW, TYPE_JS},
    {"/v1/integrity.json", ROUTE_INTEGRITY, GW_WIDGET_INTEGRITY, TYPE_JSON},
    {"/v1/demo", ROUTE_DEMO_PAGE, GW_WIDGET_DEMO, TYPE_HTML},
    {"/v1/demo/", ROUTE_DEMO_PAGE, GW_WIDGET_DEMO, TYPE_HTML},
    {"/v1/demo/token", ROUTE_DEMO_TOKEN, GW_WIDGET__COUNT, TYPE_JSON},
    {"/v1/demo/config", ROUTE_DEMO_CONFIG, GW_WIDGET__COUNT, TYPE_JSON},
};

static const route_t *route_find(const char *path)
{
    for (size_t i = 0; path != NULL && i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
    return NULL;
}

static bool route_is_demo(const route_t *rt)
{
    return rt->kind == ROUTE_DEMO_PAGE || rt->kind == ROUTE_DEMO_TOKEN ||
           rt->kind == ROUTE_DEMO_CONFIG;
}

/* True if the entity tag tag (n bytes, blanks trimmed) names etag: "*", or etag itself,
 * weak or not (If-None-Match compares weakly, RFC 9110 13.1.2). */
static bool etag_one_matches(const char *tag, size_t n, const char *etag, size_t elen)
{
    if (n == 1 && tag[0] == '*')
        return true;
    if (n >= 2 && tag[0] == 'W' && tag[1] == '/') {
        tag += 2;
        n -= 2;
    }
    return n == elen && memcmp(tag, etag, elen) == 0;
}

bool gw_http_etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL || etag == NULL)
        return false;
    size_t elen = strlen(etag);
    const char *p = inm;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t trimmed = n;
        while (trimmed > 0 && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed > 0 && etag_one_matches(p, trimmed, etag, elen))
            return true;
        p += n;
    }
    return false;
}

static void answer_static(gw_http_answer_t *a, unsigned status, const char *type, const char *body)
{
    a->status = status;
    a->content_type = type;
    a->body = (const unsigned char *)body;
    a->len = strlen(body);
}

/* A widget file or integrity.json: 304 if the client holds this version. */
static void answer_file(gw_http_answer_t *a, const route_t *rt, const gw_widget_file_t *f,
                        const char *inm)
{
    a->content_type = rt->content_type;
    a->cache_control = rt->kind == ROUTE_FILE ? CACHE_FILES : "no-cache";
    a->etag = f->etag;
    a->body = f->data;
    a->len = f->len;
    a->status = gw_http_etag_matches(inm, f->etag) ? HTTP_STATUS_NOT_MODIFIED : HTTP_STATUS_OK;
}

/* The demo's computed answers. */
static chat_err_t answer_demo(gw_http_answer_t *a, const gw_http_site_t *site, const route_t *rt,
                              const gw_http_request_t *req, int64_t now_s)
{
    a->cache_control = "no-store";
    if (rt->kind == ROUTE_DEMO_PAGE) {
        const gw_widget_file_t *f = gw_widget_files_get(site->widget, GW_WIDGET_DEMO);
        a->status = HTTP_STATUS_OK;
        a->content_type = rt->content_type;
        a->body = f->data;
        a->len = f->len;
        return CHAT_OK;
    }
    chat_err_t err;
    if (rt->kind == ROUTE_DEMO_TOKEN) {
        if (!gw_demo_user_valid(req->user)) {
            answer_static(a, HTTP_STATUS_BAD_REQUEST, TYPE_JSON, bad_user);
            return CHAT_OK;
        }
        err = gw_demo_token_json(site->demo, req->user, now_s, &a->owned, &a->len);
    } else {
        err = gw_demo_config_json(site->demo, req->host, site->self_host, &a->owned, &a->len);
    }
    if (err != CHAT_OK)
        return err;
    a->status = HTTP_STATUS_OK;
    a->content_type = rt->content_type;
    a->body = (const unsigned char *)a->owned;
    return CHAT_OK;
}

chat_err_t gw_http_route(const gw_http_site_t *site, const gw_http_request_t *req, int64_t now_s,
                         gw_http_answer_t *a)
{
    memset(a, 0, sizeof *a);
    const route_t *rt = route_find(req->path);
    bool demo = rt != NULL && route_is_demo(rt);
    if (rt == NULL || (demo && site->demo == NULL))
        return CHAT_OK; /* an unknown URL, like any other */
    a->cross_origin = !demo;
    if (rt->file != GW_WIDGET__COUNT && site->widget == NULL) {
        answer_static(a, HTTP_STATUS_NOT_FOUND, TYPE_TEXT, GW_HTTP_NO_WIDGET);
    } else if (req->method == GW_HTTP_OTHER) {
        answer_static(a, HTTP_STATUS_METHOD_NOT_ALLOWED, TYPE_TEXT, not_allowed);
        a->allow = "GET, HEAD";
    } else if (!demo) {
        answer_file(a, rt, gw_widget_files_get(site->widget, rt->file), req->if_none_match);
    } else {
        chat_err_t err = answer_demo(a, site, rt, req, now_s);
        if (err != CHAT_OK) {
            gw_http_answer_clear(a);
            return err;
        }
    }
    a->send_body = req->method != GW_HTTP_HEAD && a->status != HTTP_STATUS_NOT_MODIFIED;
    return CHAT_OK;
}

void gw_http_answer_clear(gw_http_answer_t *a)
{
    free(a->owned);
    memset(a, 0, sizeof *a);
}

/* ---- libwebsockets side ---- */

/* Every other path: lws's own 404, as before this module existed. */
static int answer_unknown(struct lws *wsi)
{
    if (lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL))
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int header_add(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    if (value == NULL)
        return 0;
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Writes the status line and headers of a. Nonzero if lws failed. */
static int headers_write(struct lws *wsi, const gw_http_answer_t *a)
{
    unsigned char buf[LWS_PRE + HEADERS_MAX];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    bool full = a->status != HTTP_STATUS_NOT_MODIFIED; /* a 304 has no representation */
    if (lws_add_http_header_status(wsi, a->status, &p, end))
        return 1;
    if (full && (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                              (const unsigned char *)a->content_type,
                                              (int)strlen(a->content_type), &p, end) ||
                 lws_add_http_header_content_length(wsi, a->len, &p, end)))
        return 1;
    if (header_add(wsi, "cache-control:", a->cache_control, &p, end) ||
        header_add(wsi, "etag:", a->etag, &p, end) || header_add(wsi, "allow:", a->allow, &p, end))
        return 1;
    if (a->cross_origin &&
        (header_add(wsi, "access-control-allow-origin:", "*", &p, end) ||
         header_add(wsi, "cross-origin-resource-policy:", "cross-origin", &p, end)))
        return 1;
    if (header_add(wsi, "x-content-type-options:", "nosniff", &p, end))
        return 1;
    return lws_finalize_write_http_header(wsi, start, &p, end);
}

/* Copies header h into buf (size n) and returns buf, or NULL if absent or too long. */
static const char *header_copy(struct lws *wsi, enum lws_token_indexes h, char *buf, int n)
{
    return lws_hdr_copy(wsi, buf, n, h) > 0 ? buf : NULL;
}

int gw_http_on_request(struct lws *wsi, gw_http_reply_t *r, const gw_http_site_t *site,
                       const char *in, size_t len)
{
    char path[PATH_MAX_], arg[ARG_MAX], host[HOST_MAX], inm[INM_MAX];
    if (r == NULL || in == NULL || len == 0 || len >= sizeof path)
        return answer_unknown(wsi);
    memcpy(path, in, len);
    path[len] = '\0';
    if (route_find(path) == NULL) /* most requests that are not ours stop here */
        return answer_unknown(wsi);
    gw_http_request_t req = {
        .method = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0    ? GW_HTTP_GET
                  : lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0 ? GW_HTTP_HEAD
                                                                      : GW_HTTP_OTHER,
        .path = path,
        .user = lws_get_urlarg_by_name(wsi, "user=", arg, sizeof arg),
        .host = header_copy(wsi, WSI_TOKEN_HOST, host, sizeof host),
        .if_none_match = header_copy(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, inm, sizeof inm),
    };
    gw_http_answer_t a;
    if (gw_http_route(site, &req, chat_clock_wall_ms() / 1000, &a) != CHAT_OK)
        return lws_return_http_status(wsi, HTTP_STATUS_INTERNAL_SERVER_ERROR, NULL) ||
                       lws_http_transaction_completed(wsi)
                   ? -1
                   : 0;
    if (a.status == 0)
        return answer_unknown(wsi);
    if (headers_write(wsi, &a)) {
        gw_http_answer_clear(&a);
        return -1;
    }
    if (!a.send_body || a.len == 0) {
        gw_http_answer_clear(&a);
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    r->body = a.body;
    r->len = a.len;
    r->sent = 0;
    r->owned = a.owned; /* the reply frees it now */
    /* The first chunk at once: a small answer is complete before lws reads a request body
     * (which would otherwise end the transaction under the reply). */
    return gw_http_on_writable(wsi, r);
}

int gw_http_on_writable(struct lws *wsi, gw_http_reply_t *r)
{
    if (r == NULL || r->body == NULL)
        return 0; /* no reply of ours under way */
    unsigned char buf[LWS_PRE + CHUNK];
    size_t n = r->len - r->sent < CHUNK ? r->len - r->sent : CHUNK;
    bool last = r->sent + n == r->len;
    /* Copied: lws may write framing into the LWS_PRE bytes before what it sends. */
    memcpy(buf + LWS_PRE, r->body + r->sent, n);
    if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
        return -1; /* the drop callback frees the reply */
    r->sent += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    gw_http_on_drop(r);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int gw_http_on_body_done(struct lws *wsi, gw_http_reply_t *r)
{
    if (r != NULL && r->body != NULL)
        return 0; /* the last chunk completes the transaction */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void gw_http_on_drop(gw_http_reply_t *r)
{
    if (r == NULL)
        return;
    free(r->owned);
    memset(r, 0, sizeof *r);
}

int gw_http_refuse_upgrade(struct lws *wsi, const char *status, int retry_after_s, const char *body)
{
    char retry[48] = "";
    if (retry_after_s > 0)
        snprintf(retry, sizeof retry, "retry-after: %d\r\n", retry_after_s);
    char resp[512];
    int len = snprintf(resp, sizeof resp,
                       "HTTP/1.1 %s\r\n"
                       "content-type: text/plain\r\n"
                       "%s"
                       "content-length: %zu\r\n"
                       "connection: close\r\n\r\n"
                       "%s",
                       status, retry, strlen(body), body);
    if (len < 0 || (size_t)len >= sizeof resp)
        return -1;
    unsigned char buf[LWS_PRE + sizeof resp];
    memcpy(buf + LWS_PRE, resp, (size_t)len);
    return lws_write(wsi, buf + LWS_PRE, (size_t)len, LWS_WRITE_HTTP_HEADERS) < 0 ? -1 : 1;
}
