/* GET/PATCH /v1/settings: a tenant's settings, one `settings` document per tenant ({_id:
 * tenant, allowed_origins, limits, push, email, updated}); a tenant without one has the
 * defaults. A PATCH is validated and merged into the current settings (read, merge, replace:
 * of two concurrent PATCHes the later write wins whole), then announced to the gateways and
 * notify (revision bumps in Redis). The document's format is common/tenant_settings.h's.
 * api_settings_get serves enforcement from a short per-process cache. */
#include "services/api/settings.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/tenant_settings.h"

void api_settings_from_json(const cJSON *settings, api_settings_t *out)
{
    *out = (api_settings_t){0};
    chat_settings_limits_t limits;
    chat_settings_limits_from_json(settings, &limits);
    out->connections = limits.connections;
    out->messages_per_s = limits.messages_per_s;
    out->api_calls_per_s = limits.api_calls_per_s;
    out->members_per_room = limits.members_per_room;
    out->rooms = limits.rooms;
    const cJSON *push = cJSON_GetObjectItemCaseSensitive(settings, "push");
    /* On unless the tenant turned it off: a user still has to subscribe. */
    out->push_enabled = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(push, "enabled"));
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(settings, "allowed_origins");
    out->allowed_origins = cJSON_IsArray(origins) ? (size_t)cJSON_GetArraySize(origins) : 0;
}

/* ---- storage ---- */

/* The settings in effect: what the tenant set (stored, may be NULL) over the defaults, a new
 * object (NULL if out of memory). The limits a tenant set none of are the service's
 * (CHAT_API_MAX_MEMBERS, CHAT_API_RATE), which rooms.c and http.c enforce: shown as they are
 * enforced. */
static cJSON *settings_effective(api_ctx_t *ctx, const char *tenant, const cJSON *stored)
{
    cJSON *defaults = chat_settings_defaults();
    if (defaults == NULL)
        return NULL;
    chat_settings_limit_default(defaults, "members_per_room", ctx->max_members);
    chat_settings_limit_default(defaults, "api_calls_per_s", ctx->api_rate);
    cJSON *out = chat_settings_effective(defaults, tenant, stored);
    cJSON_Delete(defaults);
    return out;
}

/* The tenant's settings in effect (*out, a new object) and when they were set. */
static chat_err_t settings_load(api_ctx_t *ctx, const char *tenant, cJSON **out, int64_t *updated)
{
    cJSON *stored = NULL;
    chat_err_t err = chat_settings_read(ctx->store, tenant, &stored, updated);
    *out = settings_effective(ctx, tenant, err == CHAT_OK ? stored : NULL);
    cJSON_Delete(stored);
    if (*out == NULL && err == CHAT_OK)
        err = CHAT_ERR_NOMEM;
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

/* api_announce_fn of the settings revision (a counter: rev unused). */
static chat_err_t settings_bump(chat_redis_t *r, const char *tenant, int64_t rev)
{
    (void)rev;
    return chat_settings_rev_bump(r, tenant);
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
    chat_err_t err = chat_settings_read(req->ctx->store, req->tenant, &stored, &updated);
    if (err != CHAT_OK) {
        cJSON_Delete(stored);
        api_error_from(req, resp, err, "reading the settings");
        return;
    }
    char error[200];
    if (!chat_settings_merge(stored, req->body, error, sizeof error)) {
        cJSON_Delete(stored);
        api_error(req, resp, 400, "%s", error);
        return;
    }
    updated = chat_clock_wall_ms();
    err = chat_settings_write(req->ctx->store, req->tenant, stored, updated);
    cJSON *settings = err == CHAT_OK ? settings_effective(req->ctx, req->tenant, stored) : NULL;
    cJSON_Delete(stored);
    if (err == CHAT_OK && settings == NULL)
        err = CHAT_ERR_NOMEM;
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "writing the settings");
        return;
    }
    cache_put(req->tenant, NULL, true); /* this instance sees the change at once */
    /* The gateways (origins, limits) reload the tenant on the settings revision; push and
     * email settings are notify's too: it reloads on its own revision. */
    const char *to = "the gateways";
    err = api_announce(req->ctx, req->tenant, settings_bump, 0);
    if (err == CHAT_OK) {
        to = "the notify service";
        err = api_notify_announce(req->ctx, req->tenant);
    }
    if (err != CHAT_OK) {
        cJSON_Delete(settings);
        api_error(req, resp, 503,
                  "the settings are stored but not yet announced to %s (Redis: %s); repeat the "
                  "PATCH",
                  to, chat_err_str(err));
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
