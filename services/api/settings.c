/* GET/PATCH /v1/settings: a tenant's settings, one `settings` document per tenant ({_id:
 * tenant, allowed_origins, limits, push, email, updated}); a tenant without one has the
 * defaults. A PATCH is validated and merged into the current settings (read, merge, replace:
 * of two concurrent PATCHes the later write wins whole), then announced to notify (a revision
 * bump in Redis). api_settings_get serves enforcement from a short per-process cache. */
#include "services/api/settings.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"

/* One integer setting: its object, name, bounds and default. */
typedef struct int_setting {
    const char *group;
    const char *name;
    int64_t min, max, def;
} int_setting_t;

static const int_setting_t int_settings[] = {
    {"limits", "connections", 1, 1000000, 10000}, {"limits", "messages_per_s", 1, 100000, 1000},
    {"limits", "api_calls_per_s", 1, 10000, 100}, {"limits", "members_per_room", 1, 100000, 1000},
    {"email", "digest_delay_s", 60, 86400, 600},
};
#define INT_SETTINGS (sizeof int_settings / sizeof int_settings[0])

static const int_setting_t *int_setting_find(const char *group, const char *name)
{
    for (size_t i = 0; i < INT_SETTINGS; i++)
        if (strcmp(int_settings[i].group, group) == 0 && strcmp(int_settings[i].name, name) == 0)
            return &int_settings[i];
    return NULL;
}

cJSON *api_settings_defaults(void)
{
    cJSON *o = cJSON_CreateObject(), *limits = NULL, *push = NULL, *email = NULL;
    bool ok = o != NULL && cJSON_AddArrayToObject(o, "allowed_origins") != NULL &&
              (limits = cJSON_AddObjectToObject(o, "limits")) != NULL &&
              (push = cJSON_AddObjectToObject(o, "push")) != NULL &&
              cJSON_AddTrueToObject(push, "enabled") != NULL &&
              (email = cJSON_AddObjectToObject(o, "email")) != NULL &&
              cJSON_AddNullToObject(email, "from") != NULL;
    /* Numbers, not chat_json_add_int's raw digits: merges and readers take them as numbers
     * (every bound is far below 2^53). */
    for (size_t i = 0; ok && i < INT_SETTINGS; i++)
        ok = cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(o, int_settings[i].group),
                                     int_settings[i].name, (double)int_settings[i].def) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- validation ---- */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool api_settings_origin_valid(const char *s)
{
    if (s == NULL || strlen(s) > API_SETTINGS_ORIGIN_MAX)
        return false;
    const char *p = s;
    if (!(*p >= 'a' && *p <= 'z'))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
           *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return false;
    p += 3;
    const char *host = p;
    if (*p == '[') { /* an IPv6 address */
        p++;
        while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == ':' || *p == '.')
            p++;
        if (*p != ']' || p - host < 3)
            return false;
        p++;
    } else {
        while (host_char(*p))
            p++;
        if (p == host || *host == '.' || *host == '-' || p[-1] == '.' || p[-1] == '-' ||
            strstr(host, "..") != NULL)
            return false;
    }
    if (*p == ':') {
        p++;
        long port = 0;
        const char *digits = p;
        while (*p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (*p++ - '0');
        if (p == digits || *digits == '0' || port < 1 || port > 65535)
            return false;
    }
    return *p == '\0';
}

bool api_settings_email_valid(const char *s)
{
    if (s == NULL || strlen(s) > 254)
        return false;
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at - s > 64 || strchr(at + 1, '@') != NULL)
        return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p > '~' || *p == '<' || *p == '>' || *p == ',' || *p == ';')
            return false;
    const char *domain = at + 1, *dot = strrchr(domain, '.');
    return *domain != '\0' && *domain != '.' && dot != NULL && dot[1] != '\0' &&
           strstr(domain, "..") == NULL;
}

/* Validates one object of the patch (limits, push or email) against the current one; fills
 * error and returns false on the first bad field. */
static bool group_check(const char *group, const cJSON *patch, char *error, size_t errlen)
{
    if (!cJSON_IsObject(patch)) {
        snprintf(error, errlen, "%s must be an object", group);
        return false;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, patch)
    {
        const int_setting_t *is = int_setting_find(group, f->string);
        int64_t v;
        if (is != NULL) {
            if (!chat_json_read_int(f, &v) || v < is->min || v > is->max) {
                snprintf(error, errlen, "%s.%s must be an integer from %lld to %lld", group,
                         f->string, (long long)is->min, (long long)is->max);
                return false;
            }
        } else if (strcmp(group, "push") == 0 && strcmp(f->string, "enabled") == 0) {
            if (!cJSON_IsBool(f)) {
                snprintf(error, errlen, "push.enabled must be true or false");
                return false;
            }
        } else if (strcmp(group, "email") == 0 && strcmp(f->string, "from") == 0) {
            if (!cJSON_IsNull(f) &&
                !(cJSON_IsString(f) && api_settings_email_valid(f->valuestring))) {
                snprintf(error, errlen, "email.from must be an email address (or null)");
                return false;
            }
        } else {
            snprintf(error, errlen, "unknown field %s.%.64s", group, f->string);
            return false;
        }
    }
    return true;
}

static bool origins_check(const cJSON *origins, char *error, size_t errlen)
{
    if (!cJSON_IsArray(origins) || cJSON_GetArraySize(origins) > API_SETTINGS_ORIGINS_MAX) {
        snprintf(error, errlen, "allowed_origins must be an array of at most %d origins",
                 API_SETTINGS_ORIGINS_MAX);
        return false;
    }
    const cJSON *o;
    int i = 0;
    cJSON_ArrayForEach(o, origins)
    {
        if (!cJSON_IsString(o) || !api_settings_origin_valid(o->valuestring)) {
            snprintf(error, errlen,
                     "allowed_origins[%d] must be an origin: scheme://host[:port] in lowercase, "
                     "without a path",
                     i);
            return false;
        }
        i++;
    }
    return true;
}

bool api_settings_merge(cJSON *settings, const cJSON *patch, char *error, size_t errlen)
{
    if (!cJSON_IsObject(patch)) {
        snprintf(error, errlen, "the body must be an object");
        return false;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, patch)
    {
        bool ok;
        if (strcmp(f->string, "allowed_origins") == 0)
            ok = origins_check(f, error, errlen);
        else if (strcmp(f->string, "limits") == 0 || strcmp(f->string, "push") == 0 ||
                 strcmp(f->string, "email") == 0)
            ok = group_check(f->string, f, error, errlen);
        else {
            snprintf(error, errlen, "unknown field %.64s", f->string);
            ok = false;
        }
        if (!ok)
            return false;
    }
    /* Valid: merge. Each replaced item is a copy, so a failed allocation leaves a whole
     * object behind (the caller answers 500 from a NULL check of its own, never a half). */
    cJSON_ArrayForEach(f, patch)
    {
        if (strcmp(f->string, "allowed_origins") == 0) {
            cJSON *copy = cJSON_Duplicate(f, true);
            if (copy == NULL)
                continue;
            if (cJSON_GetObjectItemCaseSensitive(settings, f->string) != NULL)
                cJSON_ReplaceItemInObjectCaseSensitive(settings, f->string, copy);
            else
                cJSON_AddItemToObject(settings, f->string, copy);
            continue;
        }
        cJSON *group = cJSON_GetObjectItemCaseSensitive(settings, f->string);
        if (!cJSON_IsObject(group)) {
            cJSON_DeleteItemFromObjectCaseSensitive(settings, f->string);
            group = cJSON_AddObjectToObject(settings, f->string);
        }
        const cJSON *v;
        cJSON_ArrayForEach(v, f)
        {
            cJSON *copy = cJSON_Duplicate(v, true);
            if (copy == NULL)
                continue;
            if (cJSON_GetObjectItemCaseSensitive(group, v->string) != NULL)
                cJSON_ReplaceItemInObjectCaseSensitive(group, v->string, copy);
            else
                cJSON_AddItemToObject(group, v->string, copy);
        }
    }
    return true;
}

void api_settings_from_json(const cJSON *settings, api_settings_t *out)
{
    long long *slots[] = {&out->connections, &out->messages_per_s, &out->api_calls_per_s,
                          &out->members_per_room};
    *out = (api_settings_t){0};
    for (size_t i = 0; i < INT_SETTINGS; i++) {
        if (strcmp(int_settings[i].group, "limits") != 0)
            continue;
        int64_t v = int_settings[i].def;
        const cJSON *group = cJSON_GetObjectItemCaseSensitive(settings, "limits");
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(group, int_settings[i].name);
        if (item != NULL && !chat_json_read_int(item, &v))
            v = int_settings[i].def;
        *slots[i] = v;
    }
    const cJSON *push = cJSON_GetObjectItemCaseSensitive(settings, "push");
    /* On unless the tenant turned it off: a user still has to subscribe. */
    out->push_enabled = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(push, "enabled"));
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(settings, "allowed_origins");
    out->allowed_origins = cJSON_IsArray(origins) ? (size_t)cJSON_GetArraySize(origins) : 0;
}

/* ---- storage ---- */

/* What the tenant set: the stored document without _id and updated (*stored, a new object;
 * empty if it set nothing), and when (*updated, 0 if never). */
static chat_err_t settings_stored(api_ctx_t *ctx, const char *tenant, cJSON **stored,
                                  int64_t *updated)
{
    *stored = NULL;
    *updated = 0;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, API_SETTINGS_COLLECTION);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, NULL, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_next(cursor, &doc)) {
        char *json = bson_as_relaxed_extended_json(doc, NULL);
        *stored = json != NULL ? cJSON_Parse(json) : NULL;
        bson_free(json);
        const cJSON *up = cJSON_GetObjectItemCaseSensitive(*stored, "updated");
        int64_t v;
        if (up != NULL && chat_json_read_int(up, &v))
            *updated = v;
        cJSON_DeleteItemFromObjectCaseSensitive(*stored, "_id");
        cJSON_DeleteItemFromObjectCaseSensitive(*stored, "updated");
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("settings not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    if (*stored == NULL)
        *stored = cJSON_CreateObject();
    if (*stored == NULL && err == CHAT_OK)
        err = CHAT_ERR_NOMEM;
    return err;
}

/* Makes the service's own value (configured) the default of limits.name, when it is within the
 * setting's bounds. */
static void limit_default_set(cJSON *settings, const char *name, long value)
{
    const int_setting_t *def = int_setting_find("limits", name);
    if (value >= def->min && value <= def->max)
        cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(settings, "limits"),
                                               name, cJSON_CreateNumber((double)value));
}

/* The settings in effect: what the tenant set (stored, may be NULL) over the defaults, a new
 * object (NULL if out of memory). The limits a tenant set none of are the service's
 * (CHAT_API_MAX_MEMBERS, CHAT_API_RATE), which rooms.c and http.c enforce: shown as they are
 * enforced. */
static cJSON *settings_effective(api_ctx_t *ctx, const char *tenant, const cJSON *stored)
{
    cJSON *out = api_settings_defaults();
    if (out == NULL)
        return NULL;
    limit_default_set(out, "members_per_room", ctx->max_members);
    limit_default_set(out, "api_calls_per_s", ctx->api_rate);
    char error[160];
    /* What is stored passed this validation when it was written; a document that does not
     * any more (written by hand, or the rules changed) leaves the defaults in effect rather
     * than failing reads. */
    if (stored != NULL && !api_settings_merge(out, stored, error, sizeof error))
        chat_log_warn("stored settings not valid: defaults used", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("reason", error));
    return out;
}

/* The tenant's settings in effect (*out, a new object) and when they were set. */
static chat_err_t settings_load(api_ctx_t *ctx, const char *tenant, cJSON **out, int64_t *updated)
{
    cJSON *stored = NULL;
    chat_err_t err = settings_stored(ctx, tenant, &stored, updated);
    *out = settings_effective(ctx, tenant, err == CHAT_OK ? stored : NULL);
    cJSON_Delete(stored);
    if (*out == NULL && err == CHAT_OK)
        err = CHAT_ERR_NOMEM;
    return err;
}

static chat_err_t settings_save(api_ctx_t *ctx, const char *tenant, const cJSON *settings,
                                int64_t updated)
{
    char *json = cJSON_PrintUnformatted(settings);
    if (json == NULL)
        return CHAT_ERR_NOMEM;
    bson_error_t error;
    bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
    free(json);
    if (doc == NULL)
        return CHAT_ERR_INVALID;
    BSON_APPEND_UTF8(doc, "_id", tenant);
    BSON_APPEND_INT64(doc, "updated", updated);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, API_SETTINGS_COLLECTION);
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_replace_one(col, filter, doc, opts, NULL, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("settings not written", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(doc);
    bson_destroy(filter);
    bson_destroy(opts);
    return err;
}

/* ---- the cache of api_settings_get ---- */

#define CACHE_SLOTS 64

static struct {
    pthread_mutex_t mu;
    struct {
        char tenant[CHAT_TENANT_MAX + 1];
        int64_t read_ms; /* monotonic; 0: empty */
        api_settings_t s;
    } slots[CACHE_SLOTS];
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Puts (or, with drop, removes) tenant's entry. */
static void cache_put(const char *tenant, const api_settings_t *s, bool drop)
{
    pthread_mutex_lock(&cache.mu);
    size_t slot = 0;
    bool found = false;
    for (size_t i = 0; i < CACHE_SLOTS && !found; i++) {
        if (strcmp(cache.slots[i].tenant, tenant) == 0) {
            slot = i;
            found = true;
        } else if (cache.slots[i].read_ms < cache.slots[slot].read_ms) {
            slot = i; /* the oldest goes */
        }
    }
    if (drop && !found) {
        pthread_mutex_unlock(&cache.mu);
        return;
    }
    snprintf(cache.slots[slot].tenant, sizeof cache.slots[slot].tenant, "%s", tenant);
    cache.slots[slot].read_ms = drop ? 0 : chat_clock_mono_ms();
    if (!drop)
        cache.slots[slot].s = *s;
    pthread_mutex_unlock(&cache.mu);
}

chat_err_t api_settings_get(api_ctx_t *ctx, const char *tenant, api_settings_t *out)
{
    int64_t now = chat_clock_mono_ms();
    pthread_mutex_lock(&cache.mu);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (cache.slots[i].read_ms > 0 && now - cache.slots[i].read_ms <= API_SETTINGS_CACHE_MS &&
            strcmp(cache.slots[i].tenant, tenant) == 0) {
            *out = cache.slots[i].s;
            pthread_mutex_unlock(&cache.mu);
            return CHAT_OK;
        }
    }
    pthread_mutex_unlock(&cache.mu);
    cJSON *settings = NULL;
    int64_t updated;
    chat_err_t err = settings_load(ctx, tenant, &settings, &updated);
    api_settings_from_json(settings, out); /* the defaults when nothing could be read */
    cJSON_Delete(settings);
    if (err == CHAT_OK)
        cache_put(tenant, out, false);
    return err;
}

/* ---- handlers ---- */

/* The answer: the settings with updated (0: never set). */
static void settings_answer(const api_req_t *req, api_resp_t *resp, cJSON *settings,
                            int64_t updated)
{
    if (!chat_json_add_int(settings, "updated", updated)) {
        cJSON_Delete(settings);
        api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the settings");
        return;
    }
    api_json(resp, 200, settings);
}

/* GET /v1/settings -> the tenant's settings (the defaults if it set none). */
static void settings_read(const api_req_t *req, api_resp_t *resp)
{
    cJSON *settings = NULL;
    int64_t updated;
    chat_err_t err = settings_load(req->ctx, req->tenant, &settings, &updated);
    if (err != CHAT_OK) {
        cJSON_Delete(settings);
        api_error_from(req, resp, err, "reading the settings");
        return;
    }
    settings_answer(req, resp, settings, updated);
}

/* PATCH /v1/settings {allowed_origins?, limits?, push?, email?} -> the settings in effect.
 * The patch merges into what the tenant set (the stored document holds only that), so a
 * default it never set follows the service's configuration. */
static void settings_patch(const api_req_t *req, api_resp_t *resp)
{
    if (req->body == NULL) {
        api_error(req, resp, 400, "a JSON object is required");
        return;
    }
    cJSON *stored = NULL;
    int64_t updated;
    chat_err_t err = settings_stored(req->ctx, req->tenant, &stored, &updated);
    if (err != CHAT_OK) {
        cJSON_Delete(stored);
        api_error_from(req, resp, err, "reading the settings");
        return;
    }
    char error[200];
    if (!api_settings_merge(stored, req->body, error, sizeof error)) {
        cJSON_Delete(stored);
        api_error(req, resp, 400, "%s", error);
        return;
    }
    updated = chat_clock_wall_ms();
    err = settings_save(req->ctx, req->tenant, stored, updated);
    cJSON *settings = err == CHAT_OK ? settings_effective(req->ctx, req->tenant, stored) : NULL;
    cJSON_Delete(stored);
    if (err == CHAT_OK && settings == NULL)
        err = CHAT_ERR_NOMEM;
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "writing the settings");
        return;
    }
    cache_put(req->tenant, NULL, true); /* this instance sees the change at once */
    /* push and email settings are notify's too: it reloads the tenant on the bump. */
    err = api_notify_announce(req->ctx, req->tenant);
    if (err != CHAT_OK) {
        cJSON_Delete(settings);
        api_error(req, resp, 503,
                  "the settings are stored but not yet announced to the notify service (Redis: "
                  "%s); repeat the PATCH",
                  chat_err_str(err));
        return;
    }
    settings_answer(req, resp, settings, updated);
}

chat_err_t api_settings_register(api_ctx_t *ctx)
{
    chat_err_t err = api_route(ctx, API_GET, "/settings", settings_read);
    if (err == CHAT_OK)
        err = api_route(ctx, API_PATCH, "/settings", settings_patch);
    return err;
}
