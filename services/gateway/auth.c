/* Tenant secret cache and JWT verification (see auth.h). */
#include "services/gateway/auth.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "services/gateway/strmap.h"

/* Past this many cached tenants, expired entries are purged on insert (and everything if
 * that is not enough), so tokens naming random tenants cannot grow the cache forever. */
#define CACHE_MAX 10000

typedef struct cache_entry {
    char *secret; /* NULL for a cached miss */
    size_t len;
    int64_t expires_ms;
} cache_entry_t;

struct gw_auth {
    pthread_mutex_t lock;
    gw_strmap_t *cache; /* tenant -> cache_entry_t */
    int64_t hit_ttl_ms, miss_ttl_ms;
    gw_secret_lookup_fn lookup;
    void *ud;
};

gw_auth_t *gw_auth_new(int64_t hit_ttl_ms, int64_t miss_ttl_ms, gw_secret_lookup_fn lookup,
                       void *ud)
{
    gw_auth_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->cache = gw_strmap_new();
    if (a->cache == NULL) {
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->hit_ttl_ms = hit_ttl_ms;
    a->miss_ttl_ms = miss_ttl_ms;
    a->lookup = lookup;
    a->ud = ud;
    return a;
}

static void entry_free(cache_entry_t *e)
{
    if (e == NULL)
        return;
    free(e->secret);
    free(e);
}

static void entry_free_cb(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    entry_free(value);
}

void gw_auth_free(gw_auth_t *a)
{
    if (a == NULL)
        return;
    gw_strmap_foreach(a->cache, entry_free_cb, NULL);
    gw_strmap_free(a->cache);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

typedef struct purge_ctx {
    int64_t now_ms;
    char **keys;
    size_t n;
} purge_ctx_t;

static void expired_collect_cb(const char *key, void *value, void *ud)
{
    purge_ctx_t *p = ud;
    const cache_entry_t *e = value;
    if (e->expires_ms <= p->now_ms && p->keys != NULL)
        p->keys[p->n++] = strdup(key);
}

/* Under the lock: drops expired entries, or all of them if none had expired. */
static void cache_purge(gw_auth_t *a, int64_t now_ms)
{
    purge_ctx_t p = {.now_ms = now_ms, .keys = calloc(gw_strmap_count(a->cache), sizeof(char *))};
    gw_strmap_foreach(a->cache, expired_collect_cb, &p);
    for (size_t i = 0; i < p.n; i++) {
        if (p.keys[i] != NULL)
            entry_free(gw_strmap_remove(a->cache, p.keys[i]));
        free(p.keys[i]);
    }
    free(p.keys);
    if (gw_strmap_count(a->cache) >= CACHE_MAX) {
        gw_strmap_foreach(a->cache, entry_free_cb, NULL);
        gw_strmap_free(a->cache);
        a->cache = gw_strmap_new();
    }
}

/* Looks tenant up in the cache. Returns true on a fresh entry: *secret is a copy (NULL
 * for a cached miss). */
static bool cache_get(gw_auth_t *a, const char *tenant, int64_t now_ms, char **secret, size_t *len)
{
    bool hit = false;
    pthread_mutex_lock(&a->lock);
    const cache_entry_t *e = a->cache != NULL ? gw_strmap_get(a->cache, tenant) : NULL;
    if (e != NULL && e->expires_ms > now_ms) {
        hit = true;
        *secret = NULL;
        *len = e->len;
        if (e->secret != NULL) {
            *secret = malloc(e->len + 1);
            if (*secret != NULL)
                memcpy(*secret, e->secret, e->len + 1);
            else
                hit = false;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return hit;
}

/* Stores a lookup's outcome (secret NULL: a miss); copies secret. */
static void cache_put(gw_auth_t *a, const char *tenant, const char *secret, size_t len,
                      int64_t now_ms)
{
    cache_entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return;
    if (secret != NULL) {
        e->secret = malloc(len + 1);
        if (e->secret == NULL) {
            free(e);
            return;
        }
        memcpy(e->secret, secret, len + 1);
    }
    e->len = len;
    e->expires_ms = now_ms + (secret != NULL ? a->hit_ttl_ms : a->miss_ttl_ms);
    pthread_mutex_lock(&a->lock);
    if (a->cache != NULL && gw_strmap_count(a->cache) >= CACHE_MAX)
        cache_purge(a, now_ms);
    cache_entry_t *old = a->cache != NULL ? gw_strmap_get(a->cache, tenant) : NULL;
    if (a->cache != NULL && gw_strmap_put(a->cache, tenant, e)) {
        entry_free(old);
        e = NULL;
    }
    pthread_mutex_unlock(&a->lock);
    entry_free(e);
}

/* The secret of tenant from the cache or the store. CHAT_ERR_NOT_FOUND for an unknown
 * tenant; other errors are store failures. */
static chat_err_t secret_get(gw_auth_t *a, const char *tenant, int64_t now_ms, char **secret,
                             size_t *len)
{
    if (cache_get(a, tenant, now_ms, secret, len))
        return *secret != NULL ? CHAT_OK : CHAT_ERR_NOT_FOUND;
    chat_err_t err = a->lookup(a->ud, tenant, secret, len);
    if (err == CHAT_OK)
        cache_put(a, tenant, *secret, *len, now_ms);
    else if (err == CHAT_ERR_NOT_FOUND)
        cache_put(a, tenant, NULL, 0, now_ms);
    return err;
}

chat_err_t gw_auth_verify(gw_auth_t *a, const char *token, int64_t now_ms, chat_jwt_claims_t *out,
                          char *reason, size_t reason_len)
{
    char tenant[CHAT_TENANT_MAX + 1];
    if (chat_jwt_peek_tenant(token, tenant, sizeof tenant) != CHAT_OK) {
        snprintf(reason, reason_len, "malformed token");
        return CHAT_ERR_UNAUTHORIZED;
    }
    char *secret = NULL;
    size_t len = 0;
    chat_err_t err = secret_get(a, tenant, now_ms, &secret, &len);
    if (err == CHAT_ERR_NOT_FOUND) {
        snprintf(reason, reason_len, "unknown tenant");
        return CHAT_ERR_UNAUTHORIZED;
    }
    if (err != CHAT_OK) {
        snprintf(reason, reason_len, "tenant lookup failed");
        return err;
    }
    /* No leeway: an expired token is refused to the second, as the protocol says. */
    err = chat_jwt_verify(token, secret, len, now_ms / 1000, 0, out, reason, reason_len);
    free(secret);
    return err == CHAT_OK ? CHAT_OK : CHAT_ERR_UNAUTHORIZED;
}
