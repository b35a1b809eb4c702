/* Notify's per-tenant configuration (see tenants.h): the tenant's settings document (only what
 * the tenant set is stored; the rest are defaults) and its enabled webhook endpoints, read in
 * two queries on first use and after each revision change (common/tenant_cache.h). */
#include "services/notify/tenants.h"

#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/notify_store.h"
#include "common/tenant_cache.h"

#define SETTINGS_COLLECTION "settings" /* the api's (services/api/settings.h) */
#define DIGEST_DELAY_DEFAULT_S 600
#define PUSH_ENABLED_DEFAULT true

struct nt_cache {
    nt_cache_conf_t conf;
    chat_tcache_t *cache;
};

static void endpoint_clear(nt_endpoint_t *e)
{
    free(e->id);
    free(e->url);
    for (size_t i = 0; i < e->nsecrets; i++)
        free(e->secrets[i]);
}

static void tenant_free(void *ud, void *value)
{
    (void)ud;
    nt_tenant_t *t = value;
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nendpoints; i++)
        endpoint_clear(&t->endpoints[i]);
    free(t->endpoints);
    free(t->email_from);
    free(t->tenant);
    free(t);
}

/* The sub-document key of doc into *sub (static, borrowing doc): false if absent or not one. */
static bool sub_document(const bson_t *doc, const char *key, bson_t *sub)
{
    bson_iter_t it;
    uint32_t len = 0;
    const uint8_t *data = NULL;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return false;
    bson_iter_document(&it, &len, &data);
    return bson_init_static(sub, data, len);
}

/* The settings a tenant stored, over the defaults. */
static chat_err_t settings_read(nt_cache_t *c, const char *tenant, nt_tenant_t *t)
{
    t->push_enabled = PUSH_ENABLED_DEFAULT;
    t->digest_delay_ms = (int64_t)DIGEST_DELAY_DEFAULT_S * 1000;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    bson_t *doc = NULL;
    chat_err_t err = chat_store_find_one(c->conf.store, SETTINGS_COLLECTION, filter, &doc);
    bson_destroy(filter);
    if (err == CHAT_ERR_NOT_FOUND)
        return CHAT_OK;
    if (err != CHAT_OK)
        return err;
    bson_t sub;
    if (sub_document(doc, "push", &sub)) {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &sub, "enabled") && BSON_ITER_HOLDS_BOOL(&it))
            t->push_enabled = bson_iter_bool(&it);
    }
    if (sub_document(doc, "email", &sub)) {
        const char *from = chat_bson_str(&sub, "from");
        if (from != NULL && (t->email_from = strdup(from)) == NULL)
            err = CHAT_ERR_NOMEM;
        int64_t delay = chat_bson_number_or(&sub, "digest_delay_s", DIGEST_DELAY_DEFAULT_S);
        if (delay > 0)
            t->digest_delay_ms = delay * 1000;
    }
    bson_destroy(doc);
    return err;
}

/* The secrets of an endpoint document still valid at now, newest first (as stored). */
static bool secrets_read(const bson_t *doc, int64_t now, nt_endpoint_t *e)
{
    bson_iter_t it, arr;
    if (!bson_iter_init_find(&it, doc, "secrets") || !BSON_ITER_HOLDS_ARRAY(&it) ||
        !bson_iter_recurse(&it, &arr))
        return true;
    while (bson_iter_next(&arr) && e->nsecrets < CHAT_WHSIGN_SECRETS_MAX) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&arr))
            continue;
        uint32_t len = 0;
        const uint8_t *data = NULL;
        bson_iter_document(&arr, &len, &data);
        bson_t s;
        if (!bson_init_static(&s, data, len))
            continue;
        const char *secret = chat_bson_str(&s, "secret");
        int64_t until = 0;
        if (secret == NULL || (chat_bson_number_or_date(&s, "until", &until) && until <= now))
            continue;
        if ((e->secrets[e->nsecrets] = strdup(secret)) == NULL)
            return false;
        e->nsecrets++;
    }
    return true;
}

/* The event bits of an endpoint document's `events`. */
static unsigned events_read(const bson_t *doc)
{
    unsigned bits = 0;
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, doc, "events") && BSON_ITER_HOLDS_ARRAY(&it) &&
        bson_iter_recurse(&it, &arr))
        while (bson_iter_next(&arr))
            if (BSON_ITER_HOLDS_UTF8(&arr))
                bits |= chat_webhook_event_parse(bson_iter_utf8(&arr, NULL));
    return bits;
}

/* The tenant's enabled endpoints, one query. */
static chat_err_t endpoints_read(nt_cache_t *c, const char *tenant, nt_tenant_t *t)
{
    mongoc_client_t *client = chat_store_acquire(c->conf.store);
    mongoc_collection_t *col =
        chat_store_collection(c->conf.store, client, CHAT_WEBHOOKS_COLLECTION);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "enabled", BCON_BOOL(true));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, NULL, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    int64_t now = chat_clock_wall_ms();
    size_t cap = 0;
    while (err == CHAT_OK && mongoc_cursor_next(cur, &doc)) {
        const char *id = chat_bson_str(doc, "_id"), *url = chat_bson_str(doc, "url");
        if (id == NULL || url == NULL)
            continue;
        if (t->nendpoints == cap) {
            cap = cap ? cap * 2 : 4;
            nt_endpoint_t *grown = realloc(t->endpoints, cap * sizeof *grown);
            if (grown == NULL) {
                err = CHAT_ERR_NOMEM;
                break;
            }
            t->endpoints = grown;
        }
        nt_endpoint_t *e = &t->endpoints[t->nendpoints];
        *e = (nt_endpoint_t){.id = strdup(id), .url = strdup(url), .enabled = true};
        e->events = events_read(doc);
        e->failing_since = chat_bson_int64_or(doc, "failing_since", 0);
        t->nendpoints++;
        if (e->id == NULL || e->url == NULL || !secrets_read(doc, now, e))
            err = CHAT_ERR_NOMEM;
    }
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cur, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("webhook endpoints not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    chat_store_release(c->conf.store, client);
    return err;
}

/* chat_tcache_load_fn: the settings and endpoints of tenant. */
static chat_err_t tenant_load(void *ud, const char *tenant, void **value)
{
    nt_cache_t *c = ud;
    nt_tenant_t *t = calloc(1, sizeof *t);
    if (t == NULL || (t->tenant = strdup(tenant)) == NULL) {
        tenant_free(NULL, t);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = settings_read(c, tenant, t);
    if (err == CHAT_OK)
        err = endpoints_read(c, tenant, t);
    if (err != CHAT_OK) {
        chat_log_warn("notify configuration not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_ERR(err));
        tenant_free(NULL, t);
        return err;
    }
    *value = t;
    return CHAT_OK;
}

chat_err_t nt_cache_new(const nt_cache_conf_t *conf, nt_cache_t **out)
{
    nt_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CHAT_ERR_NOMEM;
    c->conf = *conf;
    chat_tcache_conf_t tc = {.redis_url = conf->redis_url,
                             .timeout_ms = conf->timeout_ms,
                             .refresh_ms = conf->refresh_ms,
                             .rev_key = CHAT_NOTIFY_REV_KEY,
                             .what = "notify settings and webhooks",
                             .load = tenant_load,
                             .free = tenant_free,
                             .ud = c,
                             .metrics = conf->metrics,
                             .loads_metric = "chat_notify_tenant_loads_total",
                             .errors_metric = "chat_notify_tenant_load_errors_total",
                             .tenants_metric = "chat_notify_tenants"};
    chat_err_t err = chat_tcache_new(&tc, &c->cache);
    if (err != CHAT_OK) {
        free(c);
        return err;
    }
    *out = c;
    return CHAT_OK;
}

void nt_cache_free(nt_cache_t *c)
{
    if (c == NULL)
        return;
    chat_tcache_free(c->cache);
    free(c);
}

/* The held tenant is the first member of a small box: the reference travels with it. */
typedef struct held {
    nt_tenant_t view;
    chat_tcache_ref_t *ref;
} held_t;

chat_err_t nt_cache_get(nt_cache_t *c, const char *tenant, const nt_tenant_t **out)
{
    *out = NULL;
    chat_tcache_ref_t *ref = NULL;
    chat_err_t err = chat_tcache_get(c->cache, tenant, &ref);
    if (err != CHAT_OK)
        return err;
    held_t *h = malloc(sizeof *h);
    if (h == NULL) {
        chat_tcache_release(ref);
        return CHAT_ERR_NOMEM;
    }
    h->view = *(const nt_tenant_t *)chat_tcache_value(ref);
    h->ref = ref;
    *out = &h->view;
    return CHAT_OK;
}

void nt_tenant_release(nt_cache_t *c, const nt_tenant_t *t)
{
    (void)c;
    if (t == NULL)
        return;
    held_t *h = (held_t *)(void *)t; /* view is the first member */
    chat_tcache_release(h->ref);
    free(h);
}

const nt_endpoint_t *nt_tenant_endpoint(const nt_tenant_t *t, const char *id)
{
    for (size_t i = 0; t != NULL && i < t->nendpoints; i++)
        if (strcmp(t->endpoints[i].id, id) == 0)
            return &t->endpoints[i];
    return NULL;
}

void nt_cache_invalidate(nt_cache_t *c, const char *tenant)
{
    chat_tcache_invalidate(c->cache, tenant);
}

bool nt_cache_healthy(nt_cache_t *c)
{
    return chat_tcache_healthy(c->cache);
}
