/* /v1/webhooks: a tenant's webhook endpoints (MongoDB `webhooks`, docs/notify.md), at most 10,
 * each with its Standard Webhooks signing secrets (shown once, on create and rotate). Every
 * change is announced to the notify instances by a revision bump in Redis (chat:notify:rev),
 * which they poll each second. POST .../test signs and sends one test event at once, through
 * the same server-side request forgery guard notify uses (common/egress.h). */
#include "services/api/webhooks.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/rand.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/names.h"
#include "common/notify_store.h"
#include "services/api/api.h"

#define ROTATE_TRIES 3   /* optimistic writes of a rotation */
#define WH_CURSOR_MAX 64 /* "<created>.<id>" */
#define WH_ERROR_MAX 300

/* ---- pure pieces ---- */

const char *const api_webhook_outcome_names[API_WEBHOOK_OUTCOMES] = {"ok", "retry", "failed"};

api_webhook_outcome_t api_webhook_outcome(long status, bool refused)
{
    if (refused)
        return API_WEBHOOK_FAILED;
    if (status >= 200 && status < 300)
        return API_WEBHOOK_OK;
    if (status == 0 || status == 408 || status == 429 || status >= 500)
        return API_WEBHOOK_RETRY;
    return API_WEBHOOK_FAILED;
}

/* Reads events (an array of 1..6 distinct event type names) into *bits. */
static bool events_parse(const cJSON *events, unsigned *bits, char *error, size_t errlen)
{
    *bits = 0;
    int n = cJSON_IsArray(events) ? cJSON_GetArraySize(events) : -1;
    if (n < 1 || n > 6) {
        snprintf(error, errlen, "events must be an array of 1 to 6 event types");
        return false;
    }
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, events)
    {
        unsigned bit = cJSON_IsString(e) ? chat_webhook_event_parse(e->valuestring) : 0;
        if (bit == 0) {
            snprintf(error, errlen,
                     "events[%d]: not an event type (message.new, message.updated, "
                     "message.removed, room.member_added, room.member_removed, "
                     "user.offline_message)",
                     i);
            return false;
        }
        if (*bits & bit) {
            snprintf(error, errlen, "events[%d]: %s is listed twice", i, e->valuestring);
            return false;
        }
        *bits |= bit;
        i++;
    }
    return true;
}

bool api_webhook_parse(const cJSON *body, bool create, const chat_egress_policy_t *policy,
                       api_webhook_input_t *out, char *error, size_t errlen)
{
    *out = (api_webhook_input_t){.enabled = true, .has_enabled = create};
    if (!cJSON_IsObject(body)) {
        snprintf(error, errlen, "the body must be a JSON object");
        return false;
    }
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(body, "url");
    const cJSON *events = cJSON_GetObjectItemCaseSensitive(body, "events");
    const cJSON *enabled = cJSON_GetObjectItemCaseSensitive(body, "enabled");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(body, "description");
    if (url != NULL) {
        char why[200] = "";
        if (!cJSON_IsString(url)) {
            snprintf(error, errlen, "url must be a string");
            return false;
        }
        if (chat_egress_url_check(policy, url->valuestring, why, sizeof why) != CHAT_OK) {
            snprintf(error, errlen, "url: %s", why[0] != '\0' ? why : "not a usable URL");
            return false;
        }
        out->url = url->valuestring;
    } else if (create) {
        snprintf(error, errlen, "missing field: url");
        return false;
    }
    if (events != NULL) {
        if (!events_parse(events, &out->events, error, errlen))
            return false;
    } else if (create) {
        snprintf(error, errlen, "missing field: events");
        return false;
    }
    if (enabled != NULL) {
        if (!cJSON_IsBool(enabled)) {
            snprintf(error, errlen, "enabled must be true or false");
            return false;
        }
        out->has_enabled = true;
        out->enabled = cJSON_IsTrue(enabled);
    }
    if (desc != NULL) {
        out->has_description = true;
        if (!cJSON_IsNull(desc)) {
            long chars = cJSON_IsString(desc) ? chat_utf8_chars_printable(desc->valuestring,
                                                                          strlen(desc->valuestring))
                                              : -1;
            if (chars < 0 || chars > API_WEBHOOK_DESCRIPTION_MAX) {
                snprintf(error, errlen,
                         "description must be at most %d characters without control characters "
                         "(or null)",
                         API_WEBHOOK_DESCRIPTION_MAX);
                return false;
            }
            out->description = desc->valuestring;
        }
    }
    return true;
}

bool api_webhook_id_new(char id[API_WEBHOOK_ID_LEN + 1])
{
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return false;
    char *b64 = chat_jwt_b64url_encode(raw, sizeof raw);
    if (b64 == NULL)
        return false;
    snprintf(id, API_WEBHOOK_ID_LEN + 1, "wh_%s", b64);
    free(b64);
    return strlen(id) == API_WEBHOOK_ID_LEN;
}

bool api_webhook_id_valid(const char *s)
{
    if (s == NULL || strlen(s) != API_WEBHOOK_ID_LEN || strncmp(s, "wh_", 3) != 0)
        return false;
    for (const char *p = s + 3; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

cJSON *api_webhook_events_json(unsigned bits)
{
    cJSON *a = cJSON_CreateArray();
    for (unsigned bit = 1; a != NULL && bit <= CHAT_WH_EVENTS_ALL; bit <<= 1) {
        const char *name = (bits & bit) ? chat_webhook_event_name(bit) : NULL;
        if (name == NULL)
            continue;
        cJSON *s = cJSON_CreateString(name);
        if (s == NULL) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, s);
    }
    return a;
}

/* One stored secret: its value, and until (ms; *forever when it is null or absent). */
typedef struct stored_secret {
    const char *secret;
    int64_t until;
    bool forever;
} stored_secret_t;

/* The secrets of doc, in stored order (newest first), at most max. */
static size_t secrets_read(const bson_t *doc, stored_secret_t *out, size_t max)
{
    bson_iter_t it, arr;
    size_t n = 0;
    if (!bson_iter_init_find(&it, doc, "secrets") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return 0;
    while (n < max && bson_iter_next(&arr)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
            continue;
        const uint8_t *data;
        uint32_t len;
        bson_iter_document(&arr, &len, &data);
        bson_iter_t f;
        stored_secret_t s = {.forever = true};
        if (!bson_iter_init_from_data(&f, data, len))
            continue;
        while (bson_iter_next(&f)) {
            const char *key = bson_iter_key(&f);
            if (strcmp(key, "secret") == 0 && BSON_ITER_HOLDS_UTF8(&f))
                s.secret = bson_iter_utf8(&f, NULL);
            else if (strcmp(key, "until") == 0 && BSON_ITER_HOLDS_NUMBER(&f)) {
                s.until = bson_iter_as_int64(&f);
                s.forever = false;
            }
        }
        if (s.secret != NULL)
            out[n++] = s;
    }
    return n;
}

#define SECRETS_READ_MAX 8 /* more than are ever stored (2) */

bool api_webhook_secrets_rotated(const bson_t *doc, const char *secret, int64_t now_ms, bson_t *out)
{
    stored_secret_t stored[SECRETS_READ_MAX];
    size_t n = secrets_read(doc, stored, SECRETS_READ_MAX);
    const stored_secret_t *current = NULL;
    for (size_t i = 0; i < n && current == NULL; i++)
        if (stored[i].forever)
            current = &stored[i];
    if (current == NULL && n > 0)
        current = &stored[0];
    bson_t item;
    bool ok = BSON_APPEND_DOCUMENT_BEGIN(out, "0", &item) &&
              BSON_APPEND_UTF8(&item, "secret", secret) && BSON_APPEND_NULL(&item, "until") &&
              bson_append_document_end(out, &item);
    if (ok && current != NULL)
        ok = BSON_APPEND_DOCUMENT_BEGIN(out, "1", &item) &&
             BSON_APPEND_UTF8(&item, "secret", current->secret) &&
             BSON_APPEND_INT64(&item, "until", now_ms + API_WEBHOOK_ROTATION_MS) &&
             bson_append_document_end(out, &item);
    return ok;
}

size_t api_webhook_secrets_live(const bson_t *doc, int64_t now_ms,
                                const char *secrets[CHAT_WHSIGN_SECRETS_MAX])
{
    stored_secret_t stored[SECRETS_READ_MAX];
    size_t n = secrets_read(doc, stored, SECRETS_READ_MAX), live = 0;
    for (size_t i = 0; i < n && live < CHAT_WHSIGN_SECRETS_MAX; i++)
        if (stored[i].forever || stored[i].until > now_ms)
            secrets[live++] = stored[i].secret;
    return live;
}

/* Adds key of doc to o as an integer, or null when absent or null. */
static bool add_int_or_null(cJSON *o, const bson_t *doc, const char *key)
{
    int64_t v;
    if (chat_bson_int64(doc, key, &v))
        return chat_json_add_int(o, key, v);
    return cJSON_AddNullToObject(o, key) != NULL;
}

/* Adds key of doc to o as a string, or null when absent or not a string. */
static bool add_str_or_null(cJSON *o, const bson_t *doc, const char *key)
{
    const char *s = chat_bson_str(doc, key);
    return s != NULL ? cJSON_AddStringToObject(o, key, s) != NULL
                     : cJSON_AddNullToObject(o, key) != NULL;
}

cJSON *api_webhook_json(const bson_t *doc)
{
    const char *id = chat_bson_str(doc, "_id"), *url = chat_bson_str(doc, "url");
    int64_t created, updated;
    if (id == NULL || url == NULL || !chat_bson_int64(doc, "created", &created) ||
        !chat_bson_int64(doc, "updated", &updated))
        return NULL;
    unsigned bits = 0;
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, doc, "events") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            if (BSON_ITER_HOLDS_UTF8(&arr))
                bits |= chat_webhook_event_parse(bson_iter_utf8(&arr, NULL));
    cJSON *o = cJSON_CreateObject();
    cJSON *events = api_webhook_events_json(bits);
    bool ok = o != NULL && events != NULL && cJSON_AddStringToObject(o, "id", id) != NULL &&
              cJSON_AddStringToObject(o, "url", url) != NULL &&
              cJSON_AddItemToObject(o, "events", events);
    if (!ok)
        cJSON_Delete(events);
    ok = ok && cJSON_AddBoolToObject(o, "enabled", chat_bson_true(doc, "enabled")) != NULL &&
         add_str_or_null(o, doc, "description") && chat_json_add_int(o, "created", created) &&
         chat_json_add_int(o, "updated", updated) && add_str_or_null(o, doc, "disabled_reason") &&
         add_int_or_null(o, doc, "failing_since");
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

char *api_webhook_test_body(const char *tenant, const char *endpoint, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject(), *data = NULL;
    bool ok = o != NULL && cJSON_AddStringToObject(o, "type", API_WEBHOOK_TEST_TYPE) != NULL &&
              cJSON_AddStringToObject(o, "tenant", tenant) != NULL &&
              (data = cJSON_AddObjectToObject(o, "data")) != NULL &&
              cJSON_AddStringToObject(data, "endpoint", endpoint) != NULL &&
              chat_json_add_int(o, "ts", now_ms);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

void api_webhook_pos_format(int64_t created, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRId64 ".%s", created, id);
}

bool api_webhook_pos_parse(const char *raw, int64_t *created, char id[API_WEBHOOK_ID_LEN + 1])
{
    const char *dot = strchr(raw, '.');
    /* what format writes: no leading zero (18 digits cannot overflow) */
    if (dot == NULL || dot == raw || dot - raw > 18 || (raw[0] == '0' && dot - raw > 1) ||
        !api_webhook_id_valid(dot + 1))
        return false;
    int64_t v = 0;
    for (const char *p = raw; p < dot; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    *created = v;
    memcpy(id, dot + 1, API_WEBHOOK_ID_LEN + 1);
    return true;
}

/* The 503 of a change that is stored but whose announcement to notify failed. */
static void not_announced(const api_req_t *req, api_resp_t *resp, chat_err_t err)
{
    api_error(req, resp, 503,
              "the change is stored but not yet announced to the notify service (Redis: %s); "
              "repeat the call",
              chat_err_str(err));
}

/* ---- storage ---- */

/* The endpoint id of tenant: *doc (caller destroys) or CHAT_ERR_NOT_FOUND. */
static chat_err_t wh_find(api_ctx_t *ctx, const char *tenant, const char *id, bson_t **doc)
{
    *doc = NULL;
    if (!api_webhook_id_valid(id))
        return CHAT_ERR_NOT_FOUND;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant));
    chat_err_t err = chat_store_find_one(ctx->store, CHAT_WEBHOOKS_COLLECTION, filter, doc);
    bson_destroy(filter);
    return err;
}

/* How many endpoints tenant has. */
static chat_err_t wh_count(api_ctx_t *ctx, const char *tenant, int64_t *n)
{
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant));
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, CHAT_WEBHOOKS_COLLECTION);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    *n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &error);
    if (*n < 0) {
        err = chat_store_err(&error);
        chat_log_warn("webhooks not counted", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(filter);
    return err;
}

/* insert_one, update_one (with *matched), delete_one (with *matched) of the collection. */
static chat_err_t wh_write(api_ctx_t *ctx, const char *what, const bson_t *filter,
                           const bson_t *update, const bson_t *insert, bool *matched)
{
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, CHAT_WEBHOOKS_COLLECTION);
    bson_error_t error;
    bson_t reply;
    bool ok;
    if (insert != NULL)
        ok = mongoc_collection_insert_one(col, insert, NULL, &reply, &error);
    else if (update != NULL)
        ok = mongoc_collection_update_one(col, filter, update, NULL, &reply, &error);
    else
        ok = mongoc_collection_delete_one(col, filter, NULL, &reply, &error);
    chat_err_t err = CHAT_OK;
    if (!ok) {
        err = chat_store_err(&error);
        chat_log_warn("webhook not written", CHAT_F_STR("what", what),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    } else if (matched != NULL) {
        *matched =
            chat_bson_number_or(&reply, update != NULL ? "matchedCount" : "deletedCount", 0) > 0;
    }
    bson_destroy(&reply);
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    return err;
}

/* The next `updated` of a document: later than the stored one even within one millisecond
 * (a rotation writes only over the `updated` it read). */
static int64_t updated_next(const bson_t *doc)
{
    int64_t now = chat_clock_wall_ms(), prev = chat_bson_int64_or(doc, "updated", 0);
    return now > prev ? now : prev + 1;
}

/* Appends the events of bits to doc as the array "events". */
static bool append_events(bson_t *doc, unsigned bits)
{
    bson_t arr;
    char key[16];
    const char *k;
    uint32_t i = 0;
    if (!BSON_APPEND_ARRAY_BEGIN(doc, "events", &arr))
        return false;
    for (unsigned bit = 1; bit <= CHAT_WH_EVENTS_ALL; bit <<= 1) {
        const char *name = (bits & bit) ? chat_webhook_event_name(bit) : NULL;
        if (name == NULL)
            continue;
        bson_uint32_to_string(i++, &k, key, sizeof key);
        BSON_APPEND_UTF8(&arr, k, name);
    }
    return bson_append_array_end(doc, &arr);
}

/* ---- handlers ---- */

static const char *const wh_fields[] = {"url", "events", "enabled", "description", NULL};

/* Answers the stored endpoint (200, or status), with secret when given. */
static void wh_answer(const api_req_t *req, api_resp_t *resp, int status, const bson_t *doc,
                      const char *secret)
{
    cJSON *o = api_webhook_json(doc);
    if (o == NULL || (secret != NULL && cJSON_AddStringToObject(o, "secret", secret) == NULL)) {
        cJSON_Delete(o);
        api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the webhook");
        return;
    }
    api_json(resp, status, o);
}

/* A body's validation, with the 400 on failure. */
static bool wh_body(const api_req_t *req, api_resp_t *resp, bool create, api_webhook_input_t *in)
{
    if (req->body == NULL) {
        api_error(req, resp, 400, "a JSON object is required");
        return false;
    }
    if (!api_body_fields(req, resp, wh_fields))
        return false;
    char error[WH_ERROR_MAX];
    if (!api_webhook_parse(req->body, create, &req->ctx->egress, in, error, sizeof error)) {
        api_error(req, resp, 400, "%s", error);
        return false;
    }
    return true;
}

/* POST /v1/webhooks {url, events, enabled?, description?} -> 201 the endpoint with its secret
 * (the only answer but rotate's that shows it). */
static void wh_create(const api_req_t *req, api_resp_t *resp)
{
    api_webhook_input_t in;
    if (!wh_body(req, resp, true, &in))
        return;
    int64_t n = 0;
    chat_err_t err = wh_count(req->ctx, req->tenant, &n);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "counting the webhooks");
        return;
    }
    /* Counted before the insert: two creates at the same moment may both pass at 9. */
    if (n >= API_WEBHOOKS_MAX) {
        api_error(req, resp, 400, "at most %d webhook endpoints", API_WEBHOOKS_MAX);
        return;
    }
    char id[API_WEBHOOK_ID_LEN + 1];
    char *secret = chat_whsign_secret_new();
    if (secret == NULL || !api_webhook_id_new(id)) {
        free(secret);
        api_error_from(req, resp, CHAT_ERR_NOMEM, "making the webhook's id and secret");
        return;
    }
    int64_t now = chat_clock_wall_ms();
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(req->tenant), "url", BCON_UTF8(in.url));
    bool ok = append_events(doc, in.events) && BSON_APPEND_BOOL(doc, "enabled", in.enabled) &&
              (in.description != NULL ? BSON_APPEND_UTF8(doc, "description", in.description)
                                      : BSON_APPEND_NULL(doc, "description"));
    bson_t secrets, item;
    ok = ok && BSON_APPEND_ARRAY_BEGIN(doc, "secrets", &secrets) &&
         BSON_APPEND_DOCUMENT_BEGIN(&secrets, "0", &item) &&
         BSON_APPEND_UTF8(&item, "secret", secret) && BSON_APPEND_NULL(&item, "until") &&
         bson_append_document_end(&secrets, &item) && bson_append_array_end(doc, &secrets) &&
         BSON_APPEND_INT64(doc, "created", now) && BSON_APPEND_INT64(doc, "updated", now) &&
         BSON_APPEND_NULL(doc, "disabled_reason") && BSON_APPEND_NULL(doc, "failing_since");
    err = ok ? wh_write(req->ctx, "create", NULL, NULL, doc, NULL) : CHAT_ERR_NOMEM;
    if (err == CHAT_OK) {
        err = api_notify_announce(req->ctx, req->tenant);
        if (err != CHAT_OK) {
            /* Unannounced, the endpoint would get nothing until another change: taken back,
             * so that the 503 means nothing was made and a repeat makes one. */
            bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
            wh_write(req->ctx, "create taken back", filter, NULL, NULL, NULL);
            bson_destroy(filter);
            api_error(req, resp, 503,
                      "the endpoint could not be announced to the notify service (Redis: %s) "
                      "and was not created; retry",
                      chat_err_str(err));
        } else {
            wh_answer(req, resp, 201, doc, secret);
        }
    } else {
        api_error_from(req, resp, err, "storing the webhook");
    }
    bson_destroy(doc);
    free(secret);
}

/* GET /v1/webhooks?limit=&cursor= -> {webhooks: [...], next}, oldest first. */
static void wh_list(const api_req_t *req, api_resp_t *resp)
{
    int limit;
    char raw[WH_CURSOR_MAX + 1];
    if (!api_page_params(req, resp, &limit, raw, sizeof raw))
        return;
    int64_t after_created = 0;
    char after_id[API_WEBHOOK_ID_LEN + 1] = "";
    if (raw[0] != '\0' && !api_webhook_pos_parse(raw, &after_created, after_id)) {
        api_error(req, resp, 400, "malformed cursor");
        return;
    }
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant));
    if (raw[0] != '\0') {
        bson_t *later = BCON_NEW("$or", "[", "{", "created", "{", "$gt", BCON_INT64(after_created),
                                 "}", "}", "{", "created", BCON_INT64(after_created), "_id", "{",
                                 "$gt", BCON_UTF8(after_id), "}", "}", "]");
        bson_concat(filter, later);
        bson_destroy(later);
    }
    bson_t *opts = BCON_NEW("sort", "{", "created", BCON_INT32(1), "_id", BCON_INT32(1), "}",
                            "limit", BCON_INT64(limit + 1));
    mongoc_client_t *client = chat_store_acquire(req->ctx->store);
    mongoc_collection_t *col =
        chat_store_collection(req->ctx->store, client, CHAT_WEBHOOKS_COLLECTION);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    cJSON *body = cJSON_CreateObject();
    cJSON *items = body != NULL ? cJSON_AddArrayToObject(body, "webhooks") : NULL;
    const bson_t *doc;
    int n = 0;
    char last[WH_CURSOR_MAX + 1] = "";
    bool more = false;
    while (items != NULL && mongoc_cursor_next(cursor, &doc)) {
        if (n == limit) {
            more = true;
            break;
        }
        cJSON *w = api_webhook_json(doc);
        if (w == NULL) {
            chat_log_warn("webhook skipped: missing fields", CHAT_F_STR("tenant", req->tenant));
            continue;
        }
        cJSON_AddItemToArray(items, w);
        n++;
        api_webhook_pos_format(chat_bson_int64_or(doc, "created", 0), chat_bson_str(doc, "_id"),
                               last, sizeof last);
    }
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cursor, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("webhooks not read", CHAT_F_STR("tenant", req->tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(col);
    chat_store_release(req->ctx->store, client);
    bson_destroy(opts);
    bson_destroy(filter);
    char *next = more && last[0] != '\0' ? api_cursor_encode(last) : NULL;
    if (err == CHAT_OK && items != NULL &&
        (next != NULL ? cJSON_AddStringToObject(body, "next", next) == NULL
                      : cJSON_AddNullToObject(body, "next") == NULL))
        err = CHAT_ERR_NOMEM;
    free(next);
    if (err != CHAT_OK || items == NULL) {
        cJSON_Delete(body);
        api_error_from(req, resp, err != CHAT_OK ? err : CHAT_ERR_NOMEM, "reading the webhooks");
        return;
    }
    api_json(resp, 200, body);
}

/* The endpoint of the path, or the 404 / 503 answered. */
static bson_t *wh_path_doc(const api_req_t *req, api_resp_t *resp)
{
    bson_t *doc = NULL;
    chat_err_t err = wh_find(req->ctx, req->tenant, req->params[0], &doc);
    if (err == CHAT_ERR_NOT_FOUND)
        api_error(req, resp, 404, "webhook not found");
    else if (err != CHAT_OK)
        api_error_from(req, resp, err, "reading the webhook");
    return err == CHAT_OK ? doc : NULL;
}

/* GET /v1/webhooks/{id} -> the endpoint (without its secrets). */
static void wh_get(const api_req_t *req, api_resp_t *resp)
{
    bson_t *doc = wh_path_doc(req, resp);
    if (doc == NULL)
        return;
    wh_answer(req, resp, 200, doc, NULL);
    bson_destroy(doc);
}

/* PATCH /v1/webhooks/{id} {url?, events?, enabled?, description?} -> the endpoint as changed.
 * enabled: true also clears disabled_reason and failing_since (notify set them). */
static void wh_patch(const api_req_t *req, api_resp_t *resp)
{
    api_webhook_input_t in;
    if (!wh_body(req, resp, false, &in))
        return;
    const char *id = req->params[0];
    if (!api_webhook_id_valid(id)) {
        api_error(req, resp, 404, "webhook not found");
        return;
    }
    bson_t *update = bson_new(), set;
    bool ok =
        BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set) &&
        (in.url == NULL || BSON_APPEND_UTF8(&set, "url", in.url)) &&
        (in.events == 0 || append_events(&set, in.events)) &&
        (!in.has_enabled || BSON_APPEND_BOOL(&set, "enabled", in.enabled)) &&
        (!in.has_enabled || !in.enabled ||
         (BSON_APPEND_NULL(&set, "disabled_reason") && BSON_APPEND_NULL(&set, "failing_since"))) &&
        (!in.has_description ||
         (in.description != NULL ? BSON_APPEND_UTF8(&set, "description", in.description)
                                 : BSON_APPEND_NULL(&set, "description"))) &&
        BSON_APPEND_INT64(&set, "updated", chat_clock_wall_ms()) &&
        bson_append_document_end(update, &set);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(req->tenant));
    bool matched = false;
    chat_err_t err =
        ok ? wh_write(req->ctx, "patch", filter, update, NULL, &matched) : CHAT_ERR_NOMEM;
    bson_destroy(filter);
    bson_destroy(update);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "changing the webhook");
        return;
    }
    if (!matched) {
        api_error(req, resp, 404, "webhook not found");
        return;
    }
    if ((err = api_notify_announce(req->ctx, req->tenant)) != CHAT_OK) {
        not_announced(req, resp, err);
        return;
    }
    wh_get(req, resp);
}

/* DELETE /v1/webhooks/{id} -> 204. */
static void wh_delete(const api_req_t *req, api_resp_t *resp)
{
    const char *id = req->params[0];
    bool matched = false;
    chat_err_t err = CHAT_OK;
    if (api_webhook_id_valid(id)) {
        bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(req->tenant));
        err = wh_write(req->ctx, "delete", filter, NULL, NULL, &matched);
        bson_destroy(filter);
    }
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "deleting the webhook");
        return;
    }
    /* Announced even when there was nothing to delete: a repeat of a DELETE whose
     * announcement failed (503) announces it then. */
    if ((err = api_notify_announce(req->ctx, req->tenant)) != CHAT_OK) {
        not_announced(req, resp, err);
        return;
    }
    if (!matched) {
        api_error(req, resp, 404, "webhook not found");
        return;
    }
    resp->status = 204;
}

/* POST /v1/webhooks/{id}/rotate-secret -> {secret}: the new secret signs from now on, the
 * previous one as well for 24 h, older ones no more. */
static void wh_rotate(const api_req_t *req, api_resp_t *resp)
{
    if (req->body != NULL && !api_body_fields(req, resp, (const char *const[]){NULL}))
        return;
    char *secret = chat_whsign_secret_new();
    if (secret == NULL) {
        api_error_from(req, resp, CHAT_ERR_NOMEM, "making the new secret");
        return;
    }
    chat_err_t err = CHAT_ERR_DUPLICATE;
    for (int attempt = 0; attempt < ROTATE_TRIES && err == CHAT_ERR_DUPLICATE; attempt++) {
        bson_t *doc = wh_path_doc(req, resp);
        if (doc == NULL) {
            free(secret);
            return;
        }
        int64_t now = chat_clock_wall_ms(), next = updated_next(doc);
        bson_t *update = bson_new(), set, secrets;
        bool ok = BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set) &&
                  BSON_APPEND_ARRAY_BEGIN(&set, "secrets", &secrets) &&
                  api_webhook_secrets_rotated(doc, secret, now, &secrets) &&
                  bson_append_array_end(&set, &secrets) &&
                  BSON_APPEND_INT64(&set, "updated", next) &&
                  bson_append_document_end(update, &set);
        /* Only over the version read: of two rotations at once neither loses the other's
         * secret without the other one seeing it. */
        bson_t *filter =
            BCON_NEW("_id", BCON_UTF8(req->params[0]), "tenant", BCON_UTF8(req->tenant), "updated",
                     BCON_INT64(chat_bson_int64_or(doc, "updated", 0)));
        bool matched = false;
        err = ok ? wh_write(req->ctx, "rotate", filter, update, NULL, &matched) : CHAT_ERR_NOMEM;
        if (err == CHAT_OK && !matched)
            err = CHAT_ERR_DUPLICATE;
        bson_destroy(filter);
        bson_destroy(update);
        bson_destroy(doc);
    }
    if (err == CHAT_ERR_DUPLICATE) {
        api_error(req, resp, 503, "the webhook kept changing during the rotation (retry)");
    } else if (err != CHAT_OK) {
        api_error_from(req, resp, err, "rotating the secret");
    } else if ((err = api_notify_announce(req->ctx, req->tenant)) != CHAT_OK) {
        not_announced(req, resp, err);
    } else {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || cJSON_AddStringToObject(o, "secret", secret) == NULL) {
            cJSON_Delete(o);
            api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the rotation");
        } else {
            api_json(resp, 200, o);
        }
    }
    free(secret);
}

/* libcurl's write callback: the endpoint's answer is not kept. */
static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * nmemb;
}

/* The outcome of a test delivery. */
typedef struct test_result {
    bool delivered;
    bool refused; /* the egress guard refused the URL or its address */
    long status;  /* 0: no HTTP answer */
    char error[CURL_ERROR_SIZE + 64];
} test_result_t;

/* Sends body to url with the Standard Webhooks headers, under policy, within
 * API_WEBHOOK_TEST_TIMEOUT_MS. */
static void test_send(const chat_egress_policy_t *policy, const char *url, const char *msg_id,
                      int64_t ts_s, const char *signature, const char *body, test_result_t *out)
{
    *out = (test_result_t){0};
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *easy = curl_easy_init();
    if (easy == NULL) {
        snprintf(out->error, sizeof out->error, "out of memory");
        return;
    }
    struct curl_slist *headers = NULL;
    char line[512];
    const char *fixed[] = {"Content-Type: application/json", "User-Agent: chat-platform-webhooks"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        headers = curl_slist_append(headers, fixed[i]);
    snprintf(line, sizeof line, "webhook-id: %s", msg_id);
    headers = curl_slist_append(headers, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", (long long)ts_s);
    headers = curl_slist_append(headers, line);
    snprintf(line, sizeof line, "webhook-signature: %s", signature);
    headers = curl_slist_append(headers, line);
    chat_egress_conn_t conn; /* the connect-time check's: in place until the transfer ends */
    chat_err_t err = chat_egress_prepare(easy, policy, &conn, url, API_WEBHOOK_TEST_TIMEOUT_MS,
                                         errbuf, sizeof errbuf);
    if (err != CHAT_OK) {
        out->refused = err == CHAT_ERR_INVALID; /* the URL check's; else libcurl's refusal */
        snprintf(out->error, sizeof out->error, "%s", errbuf[0] ? errbuf : chat_err_str(err));
    } else {
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        CURLcode rc = curl_easy_perform(easy);
        if (rc != CURLE_OK) {
            char addr[64] = "";
            out->refused = chat_egress_refused(&conn, addr, sizeof addr);
            if (out->refused)
                snprintf(out->error, sizeof out->error, "refused address %s", addr);
            else
                snprintf(out->error, sizeof out->error, "%s",
                         errbuf[0] ? errbuf : curl_easy_strerror(rc));
        } else {
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &out->status);
            out->delivered = out->status >= 200 && out->status < 300;
            if (!out->delivered)
                snprintf(out->error, sizeof out->error, "the endpoint answered %ld", out->status);
        }
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
}

/* POST /v1/webhooks/{id}/test -> 200 {delivered, status, error, duration_ms}: one test event,
 * signed with every live secret, sent now (not through notify's outbox). */
static void wh_test(const api_req_t *req, api_resp_t *resp)
{
    if (req->body != NULL && !api_body_fields(req, resp, (const char *const[]){NULL}))
        return;
    bson_t *doc = wh_path_doc(req, resp);
    if (doc == NULL)
        return;
    int64_t now = chat_clock_wall_ms();
    const char *secrets[CHAT_WHSIGN_SECRETS_MAX];
    size_t nsecrets = api_webhook_secrets_live(doc, now, secrets);
    const char *id = req->params[0], *url = chat_bson_str(doc, "url");
    char identity[CHAT_TENANT_MAX + API_WEBHOOK_ID_LEN + 64], msg_id[37];
    snprintf(identity, sizeof identity, "%s/%s/%s/%lld", req->tenant, API_WEBHOOK_TEST_TYPE, id,
             (long long)now);
    chat_whsign_msg_id(identity, msg_id);
    char *body = api_webhook_test_body(req->tenant, id, now), *signature = NULL;
    chat_err_t err = body == NULL  ? CHAT_ERR_NOMEM
                     : url == NULL ? CHAT_ERR_INVALID
                                   : chat_whsign_sign(secrets, nsecrets, msg_id, now / 1000, body,
                                                      strlen(body), &signature);
    if (err != CHAT_OK) {
        free(body);
        bson_destroy(doc);
        api_error_from(req, resp, err, "signing the test event");
        return;
    }
    test_result_t r;
    int64_t start = chat_clock_mono_ms();
    test_send(&req->ctx->egress, url, msg_id, now / 1000, signature, body, &r);
    int64_t took = chat_clock_mono_ms() - start;
    chat_counter_inc(req->ctx->webhook_deliveries[api_webhook_outcome(r.status, r.refused)]);
    chat_log_info("webhook test", CHAT_F_STR("tenant", req->tenant), CHAT_F_STR("webhook", id),
                  CHAT_F_INT("status", r.status), CHAT_F_STR("error", r.error),
                  CHAT_F_INT("ms", took));
    free(signature);
    free(body);
    bson_destroy(doc);
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && cJSON_AddBoolToObject(o, "delivered", r.delivered) != NULL &&
              (r.status > 0 ? cJSON_AddNumberToObject(o, "status", (double)r.status)
                            : cJSON_AddNullToObject(o, "status")) != NULL &&
              (r.error[0] != '\0' ? cJSON_AddStringToObject(o, "error", r.error)
                                  : cJSON_AddNullToObject(o, "error")) != NULL &&
              chat_json_add_int(o, "duration_ms", took);
    if (!ok) {
        cJSON_Delete(o);
        api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the test");
        return;
    }
    api_json(resp, 200, o);
}

chat_err_t api_webhooks_register(api_ctx_t *ctx)
{
    chat_err_t err = chat_store_ensure_indexes(ctx->store, chat_notify_store_indexes,
                                               chat_notify_store_nindexes);
    if (err != CHAT_OK)
        return err;
    for (int o = 0; ctx->metrics != NULL && o < API_WEBHOOK_OUTCOMES; o++) {
        char labels[32];
        snprintf(labels, sizeof labels, "outcome=\"%s\"", api_webhook_outcome_names[o]);
        ctx->webhook_deliveries[o] = chat_metrics_counter(
            ctx->metrics, "chat_api_webhook_deliveries_total",
            "Webhook deliveries the api made (POST /v1/webhooks/{id}/test), by outcome", labels);
    }
    if ((err = api_route(ctx, API_POST, "/webhooks", wh_create)) != CHAT_OK ||
        (err = api_route(ctx, API_GET, "/webhooks", wh_list)) != CHAT_OK ||
        (err = api_route(ctx, API_GET, "/webhooks/{id}", wh_get)) != CHAT_OK ||
        (err = api_route(ctx, API_PATCH, "/webhooks/{id}", wh_patch)) != CHAT_OK ||
        (err = api_route(ctx, API_DELETE, "/webhooks/{id}", wh_delete)) != CHAT_OK ||
        (err = api_route(ctx, API_POST, "/webhooks/{id}/rotate-secret", wh_rotate)) != CHAT_OK ||
        (err = api_route(ctx, API_POST, "/webhooks/{id}/test", wh_test)) != CHAT_OK)
        return err;
    return CHAT_OK;
}
