/* The api service's HTTP core on libmicrohttpd (internal polling, a thread pool): every
 * request gets an id, is authenticated with a server token, rate limited per tenant, has its
 * JSON body read within the size limit, is routed to a resource module's handler and answered
 * with JSON (errors as SERVER-API says); a POST with Idempotency-Key answers its first answer
 * again. Counted per route and status class, and logged once. */
#include "services/api/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/contract.h"
#include "common/json.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/names.h"
#include "common/ops_http.h"
#include "common/strmap.h"
#include "common/tenants.h"
#include "common/token_bucket.h"
#include "services/api/tls.h"

#define JSON_TYPE "application/json"
#define IDEMPOTENCY_COLLECTION "idempotency"
#define IDEMPOTENCY_TTL_MS (24LL * 3600 * 1000)
#define IDEMPOTENCY_KEY_MAX 255
#define IDEMPOTENCY_SWEEP_MS (3600LL * 1000) /* how often expired answers are deleted */
#define CONNECTION_LIMIT 1024u
#define CONNECTION_TIMEOUT_S 60u   /* without conf->idle_timeout_s */
#define MISSING_TENANT_TTL_MS 2000 /* an unknown tenant is asked again after this */
/* Secrets cached at most: the tid of an unverified token picks the entry, so a flood of
 * made-up tenants empties the cache rather than growing it. */
#define SECRETS_MAX 10000
#define STATUS_CLASSES 5 /* 1xx .. 5xx */
#define MAX_ROUTES 128
#define RATE_REFRESH_MS 2000 /* a tenant's api_calls_per_s applies within this */
#define MAX_QUERY_VALUES 16

/* One registered route with its series. */
typedef struct route {
    api_method_t method;
    char *pattern; /* "/v1/..." */
    api_handler_fn handler;
    size_t max_body; /* 0: the service's limit */
    chat_counter_t *requests[STATUS_CLASSES];
    chat_histogram_t *latency;
} route_t;

/* A tenant's rate limit: its bucket, and when its rate was last read from its settings. */
typedef struct rate_bucket {
    chat_token_bucket_t tb;
    int64_t checked_us; /* monotonic */
} rate_bucket_t;

/* A tenant's cached secret (missing: the tenant does not exist). */
typedef struct secret_entry {
    char *secret;
    size_t len;
    bool missing;
    int64_t fetched_ms;
} secret_entry_t;

typedef struct api_core {
    api_ctx_t *ctx;
    route_t routes[MAX_ROUTES];
    size_t nroutes;
    route_t unmatched; /* the series of requests no route took */
    api_http_conf_t conf;
    struct MHD_Daemon *daemon;
    pthread_mutex_t lock; /* secrets and buckets */
    chat_strmap_t *secrets;
    chat_strmap_t *buckets;
    atomic_llong idempotency_swept_ms;      /* wall clock of the last sweep of expired answers */
    chat_tenant_counter_t *tenant_requests; /* NULL without ctx->tenant_labels */
    chat_counter_t *rate_limited;
} api_core_t;

/* What one request holds between libmicrohttpd's calls. */
typedef struct req_state {
    struct MHD_Connection *conn;
    char request_id[CHAT_ORIGIN_CONN_MAX];
    int64_t start_us;
    char *body;
    size_t len, cap;
    size_t max_body; /* this request's limit: its route's, else the service's */
    bool too_large;
    bool replayed;                 /* the answer is an Idempotency-Key's stored one */
    bool answered;                 /* refused before its body was read */
    char *query[MAX_QUERY_VALUES]; /* decoded values handed out by api_req_query */
    size_t nquery;
} req_state_t;

static const char *const method_names[API_METHOD__COUNT] = {"GET", "POST", "PATCH", "PUT",
                                                            "DELETE"};

/* ---- pure pieces ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *api_percent_decode(const char *s, size_t len, bool plus)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
            int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus) {
            out[n++] = ' ';
        } else if (c == '\0') {
            free(out);
            return NULL;
        } else {
            out[n++] = c;
        }
    }
    out[n] = '\0';
    return out;
}

bool api_pattern_match(const char *pattern, const char *path, char **params, size_t *nparams)
{
    *nparams = 0;
    const char *p = pattern, *u = path;
    while (*p != '\0' && *u != '\0') {
        if (*p != '/' || *u != '/')
            return false;
        p++;
        u++;
        const char *pend = strchr(p, '/'), *uend = strchr(u, '/');
        size_t plen = pend != NULL ? (size_t)(pend - p) : strlen(p);
        size_t ulen = uend != NULL ? (size_t)(uend - u) : strlen(u);
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (ulen == 0 || *nparams >= API_MAX_PARAMS)
                return false;
            char *value = api_percent_decode(u, ulen, false);
            if (value == NULL)
                return false;
            params[(*nparams)++] = value;
        } else if (plen != ulen || memcmp(p, u, plen) != 0) {
            return false;
        }
        p += plen;
        u += ulen;
    }
    return *p == '\0' && *u == '\0';
}

const char *api_status_code_word(int status)
{
    switch (status) {
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 409:
        return "conflict";
    case 413:
        return "too_large";
    case 429:
        return "rate_limited";
    default:
        return status >= 500 ? "internal" : "bad_request";
    }
}

bool api_cursor_decode(const char *cursor, char *raw, size_t len)
{
    size_t n = 0;
    unsigned char *bytes = chat_jwt_b64url_decode(cursor, strlen(cursor), &n);
    bool ok =
        bytes != NULL && n > 0 && n < len && chat_utf8_chars_printable((const char *)bytes, n) > 0;
    if (ok)
        memcpy(raw, bytes, n + 1);
    free(bytes);
    return ok;
}

bool api_limit_parse(const char *text, int *limit)
{
    if (text == NULL) {
        *limit = 50;
        return true;
    }
    size_t len = strlen(text);
    if (len == 0 || len > 3)
        return false;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            return false;
        v = v * 10 + (text[i] - '0');
    }
    if (v < 1 || v > 100)
        return false;
    *limit = v;
    return true;
}

const char *api_bearer_token(const char *header)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    const char *token = header + 7;
    while (*token == ' ')
        token++;
    return *token != '\0' ? token : NULL;
}

/* ---- answers ---- */

void api_json(api_resp_t *resp, int status, cJSON *body)
{
    cJSON_Delete(resp->body);
    resp->status = status;
    resp->body = body != NULL ? body : cJSON_CreateObject();
}

/* The error body of status with message for request_id. */
static cJSON *error_body(int status, const char *message, const char *request_id)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "code", api_status_code_word(status));
    cJSON_AddStringToObject(err, "message", message);
    cJSON_AddNumberToObject(err, "status", status);
    cJSON_AddStringToObject(err, "request_id", request_id != NULL ? request_id : "");
    return root;
}

void api_error(const api_req_t *req, api_resp_t *resp, int status, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    api_json(resp, status, error_body(status, message, req->request_id));
}

void api_error_from(const api_req_t *req, api_resp_t *resp, chat_err_t err, const char *what)
{
    switch (err) {
    case CHAT_ERR_NOT_FOUND:
        api_error(req, resp, 404, "%s: not found", what);
        return;
    case CHAT_ERR_DUPLICATE:
        api_error(req, resp, 409, "%s: already exists", what);
        return;
    case CHAT_ERR_TIMEOUT:
    case CHAT_ERR_IO:
    case CHAT_ERR_KAFKA:
    case CHAT_ERR_MONGO:
    case CHAT_ERR_REDIS:
        chat_log_warn("request failed: service unavailable", CHAT_F_STR("what", what),
                      CHAT_F_STR("request_id", req->request_id), CHAT_F_STR("tenant", req->tenant),
                      CHAT_F_ERR(err));
        api_error(req, resp, 503, "%s failed: %s (retry later)", what, chat_err_str(err));
        return;
    default:
        chat_log_error("request failed", CHAT_F_STR("what", what),
                       CHAT_F_STR("request_id", req->request_id), CHAT_F_STR("tenant", req->tenant),
                       CHAT_F_ERR(err));
        api_error(req, resp, 500, "%s failed: %s", what, chat_err_str(err));
    }
}

/* ---- request bodies and lists ---- */

bool api_body_fields(const api_req_t *req, api_resp_t *resp, const char *const *allowed)
{
    if (req->body == NULL)
        return true;
    for (const cJSON *it = req->body->child; it != NULL; it = it->next) {
        bool known = false;
        for (const char *const *a = allowed; *a != NULL && !known; a++)
            known = strcmp(*a, it->string) == 0;
        if (!known) {
            api_error(req, resp, 400, "unknown field: %s", it->string);
            return false;
        }
        for (const cJSON *other = it->next; other != NULL; other = other->next) {
            if (strcmp(other->string, it->string) == 0) {
                api_error(req, resp, 400, "repeated field: %s", it->string);
                return false;
            }
        }
    }
    return true;
}

bool api_body_string(const api_req_t *req, api_resp_t *resp, const char *field, bool required,
                     const char **out)
{
    *out = NULL;
    const cJSON *it = req->body != NULL ? cJSON_GetObjectItemCaseSensitive(req->body, field) : NULL;
    if (it == NULL || cJSON_IsNull(it)) {
        if (required)
            api_error(req, resp, 400, "missing field: %s", field);
        return !required;
    }
    if (!cJSON_IsString(it)) {
        api_error(req, resp, 400, "%s must be a string", field);
        return false;
    }
    *out = it->valuestring;
    return true;
}

bool api_page_params(const api_req_t *req, api_resp_t *resp, int *limit, char *cursor,
                     size_t cursor_len)
{
    if (!api_limit_parse(api_req_query(req, "limit"), limit)) {
        api_error(req, resp, 400, "limit must be an integer from 1 to 100");
        return false;
    }
    const char *c = api_req_query(req, "cursor");
    if (cursor_len > 0)
        cursor[0] = '\0';
    if (c == NULL || c[0] == '\0')
        return true;
    if (!api_cursor_decode(c, cursor, cursor_len)) {
        api_error(req, resp, 400, "malformed cursor");
        return false;
    }
    return true;
}

char *api_cursor_encode(const char *raw)
{
    return chat_jwt_b64url_encode(raw, strlen(raw));
}

const char *api_req_query(const api_req_t *req, const char *name)
{
    req_state_t *st = req->conn_;
    if (st == NULL)
        return NULL;
    const char *raw = MHD_lookup_connection_value(st->conn, MHD_GET_ARGUMENT_KIND, name);
    if (raw == NULL || st->nquery >= MAX_QUERY_VALUES)
        return NULL;
    char *value = api_percent_decode(raw, strlen(raw), true);
    if (value != NULL)
        st->query[st->nquery++] = value;
    return value;
}

/* ---- routes ---- */

chat_err_t api_route(api_ctx_t *ctx, api_method_t method, const char *pattern,
                     api_handler_fn handler)
{
    api_core_t *core = ctx->core;
    if (core == NULL || core->nroutes >= MAX_ROUTES || method >= API_METHOD__COUNT ||
        pattern == NULL || pattern[0] != '/' || handler == NULL)
        return CHAT_ERR_INVALID;
    route_t *r = &core->routes[core->nroutes];
    size_t len = strlen(pattern) + 4;
    r->pattern = malloc(len);
    if (r->pattern == NULL)
        return CHAT_ERR_NOMEM;
    snprintf(r->pattern, len, "/v1%s", pattern);
    r->method = method;
    r->handler = handler;
    r->max_body = 0;
    core->nroutes++;
    return CHAT_OK;
}

chat_err_t api_route_body(api_ctx_t *ctx, api_method_t method, const char *pattern,
                          api_handler_fn handler, size_t max_body)
{
    chat_err_t err = api_route(ctx, method, pattern, handler);
    if (err == CHAT_OK) {
        api_core_t *core = ctx->core;
        core->routes[core->nroutes - 1].max_body = max_body;
    }
    return err;
}

/* Registers the request counters (one per status class) and the latency histogram of r,
 * labelled with label. */
static void route_series(chat_metrics_t *m, route_t *r, const char *label)
{
    char labels[320];
    for (int c = 0; c < STATUS_CLASSES; c++) {
        snprintf(labels, sizeof labels, "route=\"%s\",class=\"%dxx\"", label, c + 1);
        r->requests[c] = chat_metrics_counter(m, "chat_api_requests_total",
                                              "API requests by route and status class", labels);
    }
    snprintf(labels, sizeof labels, "route=\"%s\"", label);
    r->latency =
        chat_metrics_histogram(m, "chat_api_request_seconds", "API request latency by route",
                               labels, chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
}

/* The route of method and path: *found_path tells whether any route has the path (a 405
 * rather than a 404). params as api_pattern_match. */
static route_t *route_find(api_core_t *core, api_method_t method, const char *path, char **params,
                           size_t *nparams, bool *found_path)
{
    *found_path = false;
    for (size_t i = 0; i < core->nroutes; i++) {
        route_t *r = &core->routes[i];
        char *tmp[API_MAX_PARAMS];
        size_t n = 0;
        bool match = api_pattern_match(r->pattern, path, tmp, &n);
        if (match && r->method == method) {
            memcpy(params, tmp, n * sizeof *tmp);
            *nparams = n;
            return r;
        }
        for (size_t k = 0; k < n; k++)
            free(tmp[k]);
        *found_path = *found_path || match;
    }
    return NULL;
}

/* The body limit of a request to method and path (still percent-encoded): its route's when it
 * has a larger one, else the service's. Called before the request is authenticated, so a
 * larger limit is a property of the path alone. */
static size_t route_body_limit(api_core_t *core, const char *method, const char *path)
{
    size_t limit = core->conf.max_body;
    for (size_t i = 0; i < core->nroutes; i++) {
        route_t *r = &core->routes[i];
        if (r->max_body <= limit || strcmp(method_names[r->method], method) != 0)
            continue;
        char *params[API_MAX_PARAMS];
        size_t n = 0;
        if (api_pattern_match(r->pattern, path, params, &n))
            limit = r->max_body;
        for (size_t k = 0; k < n; k++)
            free(params[k]);
    }
    return limit;
}

/* The method named name (GET, POST, PATCH, PUT, DELETE) into *out; false for any other. */
static bool method_parse(const char *name, api_method_t *out)
{
    for (int m = 0; m < API_METHOD__COUNT; m++) {
        if (strcmp(name, method_names[m]) == 0) {
            *out = (api_method_t)m;
            return true;
        }
    }
    return false;
}

/* ---- auth and rate ---- */

static void secret_free(const char *key, void *value, void *ud);

/* The secret of tenant from the cache or MongoDB into a malloc'd copy. CHAT_ERR_NOT_FOUND for
 * an unknown tenant, a MongoDB failure's code otherwise. */
static chat_err_t secret_get(api_core_t *core, const char *tenant, char **secret, size_t *len)
{
    int64_t now = chat_clock_mono_ms();
    pthread_mutex_lock(&core->lock);
    secret_entry_t *e = chat_strmap_get(core->secrets, tenant);
    chat_err_t err = CHAT_ERR_TIMEOUT; /* "not cached" */
    if (e != NULL) {
        int64_t ttl = e->missing ? MISSING_TENANT_TTL_MS : core->conf.secret_ttl_ms;
        if (now - e->fetched_ms < ttl) {
            err = e->missing ? CHAT_ERR_NOT_FOUND : CHAT_OK;
            if (err == CHAT_OK) {
                *secret = malloc(e->len + 1);
                if (*secret == NULL)
                    err = CHAT_ERR_NOMEM;
                else
                    memcpy(*secret, e->secret, e->len + 1);
                *len = e->len;
            }
        }
    }
    pthread_mutex_unlock(&core->lock);
    if (err != CHAT_ERR_TIMEOUT)
        return err;
    err = chat_tenant_secret(core->ctx->store, tenant, secret, len);
    if (err != CHAT_OK && err != CHAT_ERR_NOT_FOUND)
        return err;
    secret_entry_t *fresh = calloc(1, sizeof *fresh);
    if (fresh == NULL)
        return err;
    fresh->missing = err == CHAT_ERR_NOT_FOUND;
    fresh->fetched_ms = now;
    if (!fresh->missing) {
        fresh->secret = malloc(*len + 1);
        if (fresh->secret == NULL) {
            free(fresh);
            return err;
        }
        memcpy(fresh->secret, *secret, *len + 1);
        fresh->len = *len;
    }
    pthread_mutex_lock(&core->lock);
    if (chat_strmap_count(core->secrets) >= SECRETS_MAX) {
        chat_strmap_foreach(core->secrets, secret_free, NULL);
        chat_strmap_clear(core->secrets);
    }
    secret_entry_t *old = chat_strmap_get(core->secrets, tenant);
    if (chat_strmap_put(core->secrets, tenant, fresh)) {
        if (old != NULL) {
            free(old->secret);
            free(old);
        }
    } else {
        free(fresh->secret);
        free(fresh);
    }
    pthread_mutex_unlock(&core->lock);
    return err;
}

/* Authenticates the Authorization header: the tenant into tenant. Returns 0, or the status
 * to answer (401, 503) with the reason in why. */
static int auth_check(api_core_t *core, struct MHD_Connection *conn, char *tenant,
                      size_t tenant_len, char *why, size_t why_len)
{
    const char *token = api_bearer_token(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    if (token == NULL) {
        snprintf(why, why_len, "missing bearer token");
        return 401;
    }
    if (chat_jwt_peek_tenant(token, tenant, tenant_len) != CHAT_OK) {
        snprintf(why, why_len, "malformed token");
        return 401;
    }
    char *secret = NULL;
    size_t len = 0;
    chat_err_t err = secret_get(core, tenant, &secret, &len);
    if (err == CHAT_ERR_NOT_FOUND) {
        snprintf(why, why_len, "unknown tenant");
        return 401;
    }
    if (err != CHAT_OK) {
        chat_log_warn("tenant secret not readable", CHAT_F_STR("tenant", tenant), CHAT_F_ERR(err));
        snprintf(why, why_len, "tenant lookup failed (retry later)");
        return 503;
    }
    chat_jwt_server_claims_t claims;
    char reason[96];
    err = chat_jwt_server_verify(token, secret, len, chat_clock_wall_ms() / 1000,
                                 core->conf.leeway_s, &claims, reason, sizeof reason);
    free(secret);
    if (err != CHAT_OK) {
        snprintf(why, why_len, "invalid server token: %s", reason);
        return 401;
    }
    return 0;
}

/* This instance's share of the tenant's rate: its settings' limits.api_calls_per_s
 * (docs/server-api.md), or def when they cannot be read (api_settings_get logs it), divided
 * among the api instances alive. */
static double tenant_rate(api_core_t *core, const char *tenant, double def)
{
    api_settings_t st;
    api_settings_get(core->ctx, tenant, &st);
    double rate = st.api_calls_per_s > 0 ? (double)st.api_calls_per_s : def;
    int instances = core->ctx->fleet != NULL ? chat_fleet_instances(core->ctx->fleet) : 1;
    return rate / (double)instances;
}

/* Takes a token of tenant's bucket. Returns 0 or the seconds to wait (Retry-After). The
 * bucket's rate follows the tenant's settings, read again every RATE_REFRESH_MS by one of the
 * requests (outside the lock); the burst keeps the configured ratio to the rate. */
static int rate_take(api_core_t *core, const char *tenant)
{
    int64_t now = chat_clock_mono_us();
    int wait = 0;
    bool refresh = false;
    pthread_mutex_lock(&core->lock);
    rate_bucket_t *b = chat_strmap_get(core->buckets, tenant);
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b != NULL) {
            chat_token_bucket_init(&b->tb, core->conf.rate, core->conf.burst, now);
            b->checked_us = now - RATE_REFRESH_MS * 1000;
            if (!chat_strmap_put(core->buckets, tenant, b)) {
                free(b);
                b = NULL;
            }
        }
    }
    if (b != NULL && now - b->checked_us >= RATE_REFRESH_MS * 1000) {
        b->checked_us = now;
        refresh = true;
    }
    pthread_mutex_unlock(&core->lock);
    if (refresh) {
        double rate = tenant_rate(core, tenant, core->conf.rate);
        double burst = rate * core->conf.burst / core->conf.rate;
        pthread_mutex_lock(&core->lock);
        chat_token_bucket_set(&b->tb, rate, burst < 1 ? 1 : burst);
        pthread_mutex_unlock(&core->lock);
    }
    pthread_mutex_lock(&core->lock);
    if (b != NULL && !chat_token_bucket_take(&b->tb, now)) {
        wait = (int)ceil((1.0 - b->tb.tokens) / b->tb.rate);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&core->lock);
    return wait;
}

/* ---- idempotency ---- */

/* True if key is a usable Idempotency-Key: 1..255 printable ASCII characters. */
static bool idempotency_key_valid(const char *key)
{
    size_t len = strlen(key);
    if (len == 0 || len > IDEMPOTENCY_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < 0x21 || key[i] > 0x7e)
            return false;
    }
    return true;
}

/* Looks up the stored answer of id. Returns CHAT_OK with *found (and, when found within 24 h,
 * the answer in resp unless the method or path differ: then *conflict), or a MongoDB code. */
static chat_err_t idempotency_find(api_ctx_t *ctx, const char *id, const char *method,
                                   const char *path, bool *found, bool *conflict, api_resp_t *resp)
{
    *found = *conflict = false;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, IDEMPOTENCY_COLLECTION);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    int64_t oldest = chat_clock_wall_ms() - IDEMPOTENCY_TTL_MS;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        int64_t created = 0, status = 0;
        const char *m = NULL, *p = NULL, *body = NULL, *location = NULL;
        if (bson_iter_init_find(&it, doc, "created") && BSON_ITER_HOLDS_NUMBER(&it))
            created = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "status") && BSON_ITER_HOLDS_NUMBER(&it))
            status = bson_iter_as_int64(&it);
        if (bson_iter_init_find(&it, doc, "method") && BSON_ITER_HOLDS_UTF8(&it))
            m = bson_iter_utf8(&it, NULL);
        if (bson_iter_init_find(&it, doc, "path") && BSON_ITER_HOLDS_UTF8(&it))
            p = bson_iter_utf8(&it, NULL);
        if (bson_iter_init_find(&it, doc, "body") && BSON_ITER_HOLDS_UTF8(&it))
            body = bson_iter_utf8(&it, NULL);
        if (bson_iter_init_find(&it, doc, "location") && BSON_ITER_HOLDS_UTF8(&it))
            location = bson_iter_utf8(&it, NULL);
        if (created < oldest || m == NULL || p == NULL || status < 200 || status > 499)
            continue; /* expired (or not ours): the request runs again */
        *found = true;
        if (strcmp(m, method) != 0 || strcmp(p, path) != 0) {
            *conflict = true;
        } else {
            resp->status = (int)status;
            resp->body = body != NULL && body[0] != '\0' ? cJSON_Parse(body) : NULL;
            snprintf(resp->location, sizeof resp->location, "%s", location != NULL ? location : "");
        }
    }
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cur, &error)) {
        chat_log_warn("idempotency lookup failed", CHAT_F_STR("id", id),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    return err;
}

/* Stores the answer of id (status, Location and body text); a failure is logged and otherwise
 * ignored: the answer goes out, a repeat would run again. */
static void idempotency_store(api_ctx_t *ctx, const char *id, const char *tenant,
                              const char *method, const char *path, const api_resp_t *resp,
                              const char *body)
{
    int status = resp->status;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, IDEMPOTENCY_COLLECTION);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant), "method", BCON_UTF8(method),
                 "path", BCON_UTF8(path), "status", BCON_INT32(status), "body",
                 BCON_UTF8(body != NULL ? body : ""), "created", BCON_INT64(chat_clock_wall_ms()));
    if (resp->location[0] != '\0')
        BSON_APPEND_UTF8(doc, "location", resp->location); /* a 202's job */
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t error;
    if (!mongoc_collection_replace_one(coll, filter, doc, opts, NULL, &error))
        chat_log_warn("idempotent answer not stored", CHAT_F_STR("id", id),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    bson_destroy(opts);
    bson_destroy(doc);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
}

/* Deletes the stored answers older than 24 h, at most once an hour per instance (one request
 * pays for it; every instance sweeps, which deletes the same documents). */
static void idempotency_sweep(api_core_t *core)
{
    long long now = chat_clock_wall_ms();
    long long last = atomic_load(&core->idempotency_swept_ms);
    if (now - last < IDEMPOTENCY_SWEEP_MS ||
        !atomic_compare_exchange_strong(&core->idempotency_swept_ms, &last, now))
        return;
    mongoc_client_t *client = chat_store_acquire(core->ctx->store);
    mongoc_collection_t *coll =
        chat_store_collection(core->ctx->store, client, IDEMPOTENCY_COLLECTION);
    bson_t *filter = BCON_NEW("created", "{", "$lt", BCON_INT64(now - IDEMPOTENCY_TTL_MS), "}");
    bson_error_t error;
    if (!mongoc_collection_delete_many(coll, filter, NULL, NULL, &error))
        chat_log_warn("expired idempotent answers not deleted", CHAT_F_INT("code", error.code),
                      CHAT_F_STR("error", error.message));
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    chat_store_release(core->ctx->store, client);
}

/* ---- the request ---- */

/* The body text of resp (malloc'd, NULL for none), freeing resp's cJSON body. */
static char *resp_text(api_resp_t *resp, size_t *len)
{
    char *text = NULL;
    *len = 0;
    if (resp->body != NULL && chat_json_print(resp->body, &text, len) != CHAT_OK)
        text = NULL;
    resp->body = NULL;
    return text;
}

/* Queues resp with its body text (len bytes; NULL: none) and the core's headers. */
static enum MHD_Result respond_with(struct MHD_Connection *conn, const req_state_t *st,
                                    const api_resp_t *resp, const char *text, size_t len)
{
    struct MHD_Response *r =
        text != NULL ? MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY)
                     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    if (text != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, JSON_TYPE);
    MHD_add_response_header(r, "X-Request-Id", st->request_id);
    if (st->replayed)
        MHD_add_response_header(r, "Idempotent-Replayed", "true");
    if (resp->retry_after[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, resp->retry_after);
    if (resp->location[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, resp->location);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned int)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Queues resp (freeing its body). */
static enum MHD_Result respond(struct MHD_Connection *conn, const req_state_t *st, api_resp_t *resp)
{
    size_t len;
    char *text = resp_text(resp, &len);
    enum MHD_Result ret = respond_with(conn, st, resp, text, len);
    free(text);
    return ret;
}

/* Counts and logs the answer of a request. */
static void request_done(route_t *r, const req_state_t *st, const char *method, const char *label,
                         const char *tenant, int status)
{
    int cls = status / 100 - 1;
    if (cls >= 0 && cls < STATUS_CLASSES)
        chat_counter_inc(r->requests[cls]);
    double seconds = chat_clock_seconds_since(st->start_us);
    chat_histogram_observe(r->latency, seconds);
    chat_log_info("request", CHAT_F_STR("request_id", st->request_id), CHAT_F_STR("tenant", tenant),
                  CHAT_F_STR("method", method), CHAT_F_STR("route", label),
                  CHAT_F_INT("status", status), CHAT_F_INT("ms", llround(seconds * 1000.0)));
}

/* True if the request's Content-Type is JSON (parameters such as charset allowed). */
static bool content_is_json(struct MHD_Connection *conn)
{
    const char *ct =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct == NULL)
        return false;
    size_t n = strlen(JSON_TYPE);
    return strncasecmp(ct, JSON_TYPE, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Parses the body of st into *body (NULL when empty). Returns 0 or the status to answer with
 * the reason in why. */
static int body_parse(struct MHD_Connection *conn, const req_state_t *st, cJSON **body, char *why,
                      size_t why_len)
{
    *body = NULL;
    if (st->too_large) {
        snprintf(why, why_len, "request body too large");
        return 413;
    }
    if (st->len == 0)
        return 0;
    if (!content_is_json(conn)) {
        snprintf(why, why_len, "the body must be application/json");
        return 415;
    }
    char reason[64];
    if (chat_json_has_escaped_nul(st->body, st->len)) {
        snprintf(why, why_len, "malformed JSON: escaped NUL");
        return 400;
    }
    *body = chat_json_parse_exact(st->body, st->len, reason, sizeof reason);
    if (*body == NULL) {
        snprintf(why, why_len, "malformed JSON: %s", reason);
        return 400;
    }
    if (!cJSON_IsObject(*body)) {
        cJSON_Delete(*body);
        *body = NULL;
        snprintf(why, why_len, "the body must be a JSON object");
        return 400;
    }
    return 0;
}

/* Runs the handler of r for an authenticated request (with idempotency for POST). */
static void request_run(api_core_t *core, route_t *r, req_state_t *st, api_req_t *req,
                        const char *path, api_resp_t *resp, bool *stored_replay, char *idem_id,
                        size_t idem_len)
{
    *stored_replay = false;
    idem_id[0] = '\0';
    const char *key =
        req->method == API_POST
            ? MHD_lookup_connection_value(st->conn, MHD_HEADER_KIND, "Idempotency-Key")
            : NULL;
    if (key != NULL) {
        if (!idempotency_key_valid(key)) {
            api_error(req, resp, 400, "Idempotency-Key must be 1 to 255 printable characters");
            return;
        }
        snprintf(idem_id, idem_len, "%s/%s", req->tenant, key);
        bool found, conflict;
        chat_err_t err = idempotency_find(core->ctx, idem_id, method_names[req->method], path,
                                          &found, &conflict, resp);
        if (err != CHAT_OK) {
            idem_id[0] = '\0';
            api_error_from(req, resp, err, "reading the Idempotency-Key");
            return;
        }
        if (found) {
            idem_id[0] = '\0';
            if (conflict)
                api_error(req, resp, 409, "Idempotency-Key was used for another request");
            *stored_replay = !conflict;
            return;
        }
    }
    r->handler(req, resp);
    if (resp->status == 0)
        api_error(req, resp, 500, "no answer");
}

/* The final call of a request: everything but reading the body. */
static enum MHD_Result request_handle(api_core_t *core, struct MHD_Connection *conn,
                                      req_state_t *st, const char *url, const char *method_name)
{
    api_resp_t resp = {0};
    api_req_t req = {.ctx = core->ctx,
                     .request_id = st->request_id,
                     .origin_conn = st->request_id,
                     .conn_ = st,
                     .tenant = ""};
    char tenant[CHAT_TENANT_MAX + 1] = "";
    char why[160] = "";
    route_t *r = &core->unmatched;
    const char *label = "unmatched";
    char *params[API_MAX_PARAMS];
    size_t nparams = 0;
    bool known_method = method_parse(method_name, &req.method);
    int status = auth_check(core, conn, tenant, sizeof tenant, why, sizeof why);
    if (status == 0) {
        req.tenant = tenant;
        chat_tenant_counter_add(core->tenant_requests, tenant, 1);
        int wait = rate_take(core, tenant);
        if (wait > 0) {
            chat_counter_inc(core->rate_limited);
            status = 429;
            snprintf(why, sizeof why, "rate limit of the tenant exceeded");
            snprintf(resp.retry_after, sizeof resp.retry_after, "%d", wait);
        }
    }
    if (status == 0) {
        bool found_path = false;
        route_t *found =
            known_method ? route_find(core, req.method, url, params, &nparams, &found_path) : NULL;
        if (found == NULL && !known_method) {
            bool dummy;
            for (int m = 0; m < API_METHOD__COUNT && !found_path; m++) {
                size_t n = 0;
                found_path = route_find(core, (api_method_t)m, url, params, &n, &dummy) != NULL;
                for (size_t k = 0; k < n; k++)
                    free(params[k]);
            }
            nparams = 0;
        }
        if (found == NULL) {
            status = found_path ? 405 : 404;
            snprintf(why, sizeof why, found_path ? "method not allowed" : "no such resource");
        } else {
            r = found;
            label = r->pattern;
        }
    }
    cJSON *body = NULL;
    if (status == 0)
        status = body_parse(conn, st, &body, why, sizeof why);
    bool replay = false;
    char idem_id[CHAT_TENANT_MAX + IDEMPOTENCY_KEY_MAX + 2] = "";
    if (status == 0) {
        for (size_t i = 0; i < nparams; i++)
            req.params[i] = params[i];
        req.nparams = nparams;
        req.body = body;
        request_run(core, r, st, &req, url, &resp, &replay, idem_id, sizeof idem_id);
        st->replayed = replay;
        status = resp.status;
    } else {
        api_error(&req, &resp, status, "%s", why);
    }
    size_t len;
    char *text = resp_text(&resp, &len);
    /* Stored before the answer leaves: a repeat sent right after it finds it. */
    if (idem_id[0] != '\0' && !replay && status < 500) {
        idempotency_store(core->ctx, idem_id, tenant, method_names[req.method], url, &resp, text);
        idempotency_sweep(core);
    }
    enum MHD_Result ret = respond_with(conn, st, &resp, text, len);
    free(text);
    request_done(r, st, method_name, label, tenant, status);
    cJSON_Delete(body);
    for (size_t i = 0; i < nparams; i++)
        free(params[i]);
    return ret;
}

/* A body chunk: kept while within the limit, dropped (and remembered) beyond it. */
static void body_append(req_state_t *st, const char *data, size_t len)
{
    if (st->too_large || st->len + len > st->max_body) {
        st->too_large = true;
        return;
    }
    if (st->len + len + 1 > st->cap) {
        size_t cap = st->cap > 0 ? st->cap : 4096;
        while (cap < st->len + len + 1)
            cap *= 2;
        char *grown = realloc(st->body, cap);
        if (grown == NULL) {
            st->too_large = true;
            return;
        }
        st->body = grown;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, len);
    st->len += len;
    st->body[st->len] = '\0';
}

/* The answer of a request refused before its body is read (413 on Content-Length). */
static enum MHD_Result respond_early(struct MHD_Connection *conn, const req_state_t *st, int status,
                                     const char *message)
{
    api_resp_t resp = {.status = status, .body = error_body(status, message, st->request_id)};
    return respond(conn, st, &resp);
}

/* libmicrohttpd's access handler: the first call of a request sets up its state (and refuses
 * a Content-Length over the limit at once), the next ones take body chunks, the last one
 * (no more data) answers it. MHD_NO (the connection is closed) when out of memory. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **request_state)
{
    (void)version;
    api_core_t *core = cls;
    req_state_t *st = *request_state;
    if (st == NULL) {
        st = calloc(1, sizeof *st);
        if (st == NULL)
            return MHD_NO;
        st->conn = conn;
        st->start_us = chat_clock_mono_us();
        api_origin_conn_new(core->ctx, st->request_id, sizeof st->request_id);
        *request_state = st;
        st->max_body = route_body_limit(core, method, url);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > st->max_body) {
            st->too_large = st->answered = true;
            enum MHD_Result ret = respond_early(conn, st, 413, "request body too large");
            request_done(&core->unmatched, st, method, "unmatched", "", 413);
            return ret;
        }
        return MHD_YES;
    }
    if (st->answered) { /* whatever still comes is dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        body_append(st, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    return request_handle(core, conn, st, url, method);
}

/* Frees a request's state once libmicrohttpd is done with it (answered or broken off). */
static void on_completed(void *cls, struct MHD_Connection *conn, void **request_state,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)conn;
    (void)code;
    req_state_t *st = *request_state;
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->nquery; i++)
        free(st->query[i]);
    free(st->body);
    free(st);
    *request_state = NULL;
}

/* Leaves the URL and query arguments as sent: path segments and values are decoded one by one
 * (a %2F inside a user id must not split the path). */
static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

/* ---- lifecycle ---- */

chat_err_t api_http_new(api_ctx_t *ctx)
{
    api_core_t *core = calloc(1, sizeof *core);
    if (core == NULL)
        return CHAT_ERR_NOMEM;
    core->ctx = ctx;
    atomic_init(&core->idempotency_swept_ms, 0);
    core->secrets = chat_strmap_new();
    core->buckets = chat_strmap_new();
    if (core->secrets == NULL || core->buckets == NULL ||
        pthread_mutex_init(&core->lock, NULL) != 0) {
        chat_strmap_free(core->secrets);
        chat_strmap_free(core->buckets);
        free(core);
        return CHAT_ERR_NOMEM;
    }
    ctx->core = core;
    return CHAT_OK;
}

chat_err_t api_http_start(api_ctx_t *ctx, const api_http_conf_t *conf)
{
    api_core_t *core = ctx->core;
    if (core == NULL || conf == NULL || conf->threads < 1)
        return CHAT_ERR_INVALID;
    core->conf = *conf;
    const chat_store_index_t indexes[] = {
        {IDEMPOTENCY_COLLECTION, "created", false, {"created", NULL}},
    };
    chat_err_t err = chat_store_ensure_indexes(ctx->store, indexes, 1);
    if (err != CHAT_OK)
        return err;
    for (size_t i = 0; i < core->nroutes; i++) {
        char label[300];
        snprintf(label, sizeof label, "%s %s", method_names[core->routes[i].method],
                 core->routes[i].pattern);
        route_series(ctx->metrics, &core->routes[i], label);
    }
    route_series(ctx->metrics, &core->unmatched, "unmatched");
    if (ctx->metrics != NULL) {
        core->rate_limited =
            chat_metrics_counter(ctx->metrics, "chat_api_rate_limited_total",
                                 "Requests refused with 429 by the tenant's rate limit", NULL);
        if (ctx->tenant_labels != NULL)
            core->tenant_requests = chat_tenant_counter_new(
                ctx->tenant_labels, ctx->metrics, "chat_api_tenant_requests_total",
                "Authenticated API requests by tenant (bounded: see CHAT_METRICS_TENANTS_MAX)",
                NULL);
    }
    struct sockaddr_storage ss;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (!chat_ops_sockaddr(conf->addr, conf->port, &ss, &flags))
        return CHAT_ERR_INVALID;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_POLL;
    /* TLS (CHAT_API_TLS_CERT): GnuTLS asks tls.c for the certificate at every handshake,
     * so that a reload needs no restart; TLS 1.2 and later only. */
    struct MHD_OptionItem opts[4];
    size_t nopts = 0;
    if (conf->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            chat_log_error("this libmicrohttpd has no TLS support",
                           CHAT_F_STR("var", "CHAT_API_TLS_CERT"));
            return CHAT_ERR_CONFIG;
        }
        flags |= MHD_USE_TLS;
        opts[nopts++] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, api_tls_callback()};
        opts[nopts++] =
            (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)API_TLS_PRIORITIES};
    }
    /* CHAT_API_PER_IP_MAX: a further connection from that address is closed at accept */
    if (conf->per_ip_max > 0)
        opts[nopts++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                                (intptr_t)conf->per_ip_max, NULL};
    opts[nopts] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    unsigned idle_s = conf->idle_timeout_s > 0 ? conf->idle_timeout_s : CONNECTION_TIMEOUT_S;
    errno = 0;
    core->daemon = MHD_start_daemon(
        flags, (uint16_t)conf->port, NULL, NULL, on_request, core, MHD_OPTION_EXTERNAL_LOGGER,
        chat_ops_mhd_log, "api http server", MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)conf->threads, MHD_OPTION_CONNECTION_LIMIT,
        CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, core, MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL, MHD_OPTION_ARRAY,
        opts, MHD_OPTION_END);
    if (core->daemon == NULL) {
        int e = errno;
        chat_log_error("cannot start the api http server", CHAT_F_STR("addr", conf->addr),
                       CHAT_F_INT("port", conf->port),
                       CHAT_F_STR("error", e != 0 ? strerror(e) : "unknown"));
        return CHAT_ERR_IO;
    }
    chat_log_info("api http server listening", CHAT_F_STR("scheme", conf->tls ? "https" : "http"),
                  CHAT_F_STR("addr", conf->addr), CHAT_F_INT("port", api_http_port(ctx)),
                  CHAT_F_INT("threads", conf->threads), CHAT_F_INT("routes", core->nroutes));
    return CHAT_OK;
}

int api_http_port(const api_ctx_t *ctx)
{
    const api_core_t *core = ctx != NULL ? ctx->core : NULL;
    if (core == NULL || core->daemon == NULL)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(core->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info != NULL ? (int)info->port : -1;
}

/* chat_strmap_foreach callbacks freeing the caches' entries. */
static void secret_free(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    secret_entry_t *e = value;
    free(e->secret);
    free(e);
}

void api_http_destroy(api_ctx_t *ctx)
{
    api_core_t *core = ctx != NULL ? ctx->core : NULL;
    if (core == NULL)
        return;
    if (core->daemon != NULL)
        MHD_stop_daemon(core->daemon);
    for (size_t i = 0; i < core->nroutes; i++)
        free(core->routes[i].pattern);
    chat_strmap_foreach(core->secrets, secret_free, NULL);
    chat_strmap_foreach(core->buckets, chat_strmap_free_value, NULL);
    chat_strmap_free(core->secrets);
    chat_strmap_free(core->buckets);
    pthread_mutex_destroy(&core->lock);
    free(core);
    ctx->core = NULL;
}
