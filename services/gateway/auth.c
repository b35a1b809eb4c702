/* Verifying a client's JWT (see auth.h): the tenant secret cache with its shared lookups,
 * gw_auth_verify over common/jwt.c, and the worker job that runs it for an auth frame. */
#include "services/gateway/auth.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/strmap.h"
#include "services/gateway/gateway.h"
#include "services/gateway/request.h"
#include "services/gateway/workers.h"

/* Past this many cached tenants, expired entries are purged on insert (and everything if
 * that is not enough), so tokens naming random tenants cannot grow the cache forever. */
#define CACHE_MAX 10000

typedef struct cache_entry {
    char *secret; /* NULL for a cached miss */
    size_t len;
    int64_t expires_ms;
} cache_entry_t;

/* A store lookup in progress. Threads that miss the same tenant meanwhile wait for its
 * outcome instead of querying too; the last one to let go frees it. */
typedef struct lookup {
    bool done;
    chat_err_t err;
    char *secret; /* on CHAT_OK */
    size_t len;
    size_t refs; /* the thread looking up and its waiters */
} lookup_t;

struct gw_auth {
    pthread_mutex_t lock;
    pthread_cond_t looked_up; /* a lookup of some tenant is done */
    chat_strmap_t *cache;     /* tenant -> cache_entry_t */
    chat_strmap_t *lookups;   /* tenant -> lookup_t in progress */
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
    a->cache = chat_strmap_new();
    a->lookups = chat_strmap_new();
    if (a->cache == NULL || a->lookups == NULL) {
        chat_strmap_free(a->cache);
        chat_strmap_free(a->lookups);
        free(a);
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->looked_up, NULL);
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
    chat_strmap_foreach(a->cache, entry_free_cb, NULL);
    chat_strmap_free(a->cache);
    chat_strmap_free(a->lookups); /* empty: no verification runs any more */
    pthread_cond_destroy(&a->looked_up);
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
    purge_ctx_t p = {.now_ms = now_ms, .keys = calloc(chat_strmap_count(a->cache), sizeof(char *))};
    chat_strmap_foreach(a->cache, expired_collect_cb, &p);
    for (size_t i = 0; i < p.n; i++) {
        if (p.keys[i] != NULL)
            entry_free(chat_strmap_remove(a->cache, p.keys[i]));
        free(p.keys[i]);
    }
    free(p.keys);
    if (chat_strmap_count(a->cache) >= CACHE_MAX) {
        chat_strmap_foreach(a->cache, entry_free_cb, NULL);
        chat_strmap_free(a->cache);
        a->cache = chat_strmap_new();
    }
}

/* A copy of len bytes of secret and its NUL, or NULL if out of memory. */
static char *secret_copy(const char *secret, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy != NULL)
        memcpy(copy, secret, len + 1);
    return copy;
}

/* Under the lock: looks tenant up in the cache. Returns true on a fresh entry: *secret is
 * a copy (NULL for a cached miss). */
static bool cache_get(gw_auth_t *a, const char *tenant, int64_t now_ms, char **secret, size_t *len)
{
    const cache_entry_t *e = a->cache != NULL ? chat_strmap_get(a->cache, tenant) : NULL;
    if (e == NULL || e->expires_ms <= now_ms)
        return false;
    *secret = NULL;
    *len = e->len;
    if (e->secret != NULL && (*secret = secret_copy(e->secret, e->len)) == NULL)
        return false;
    return true;
}

/* Under the lock: stores a lookup's outcome (secret NULL: a miss); copies secret. */
static void cache_put(gw_auth_t *a, const char *tenant, const char *secret, size_t len,
                      int64_t now_ms)
{
    cache_entry_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return;
    if (secret != NULL && (e->secret = secret_copy(secret, len)) == NULL) {
        free(e);
        return;
    }
    e->len = len;
    e->expires_ms = now_ms + (secret != NULL ? a->hit_ttl_ms : a->miss_ttl_ms);
    if (a->cache != NULL && chat_strmap_count(a->cache) >= CACHE_MAX)
        cache_purge(a, now_ms);
    cache_entry_t *old = a->cache != NULL ? chat_strmap_get(a->cache, tenant) : NULL;
    if (a->cache != NULL && chat_strmap_put(a->cache, tenant, e)) {
        entry_free(old);
        e = NULL;
    }
    entry_free(e);
}

/* Under the lock: drops one reference to l. */
static void lookup_release(lookup_t *l)
{
    if (--l->refs > 0)
        return;
    free(l->secret);
    free(l);
}

/* Under the lock: waits for the lookup l of another thread and takes its outcome. */
static chat_err_t lookup_wait(gw_auth_t *a, lookup_t *l, char **secret, size_t *len)
{
    l->refs++;
    while (!l->done)
        pthread_cond_wait(&a->looked_up, &a->lock);
    chat_err_t err = l->err;
    if (err == CHAT_OK) {
        *len = l->len;
        if ((*secret = secret_copy(l->secret, l->len)) == NULL)
            err = CHAT_ERR_NOMEM;
    }
    lookup_release(l);
    return err;
}

/* Asks the store (outside the lock), caches the outcome and hands it to the waiters. l (may
 * be NULL if out of memory: then nobody waits) is registered for tenant. */
static chat_err_t lookup_run(gw_auth_t *a, lookup_t *l, const char *tenant, int64_t now_ms,
                             char **secret, size_t *len)
{
    chat_err_t err = a->lookup(a->ud, tenant, secret, len);
    pthread_mutex_lock(&a->lock);
    if (err == CHAT_OK)
        cache_put(a, tenant, *secret, *len, now_ms);
    else if (err == CHAT_ERR_NOT_FOUND)
        cache_put(a, tenant, NULL, 0, now_ms);
    if (l != NULL) {
        chat_strmap_remove(a->lookups, tenant);
        l->err = err;
        if (err == CHAT_OK && (l->secret = secret_copy(*secret, *len)) == NULL)
            l->err = CHAT_ERR_NOMEM;
        l->len = *len;
        l->done = true;
        pthread_cond_broadcast(&a->looked_up);
        lookup_release(l);
    }
    pthread_mutex_unlock(&a->lock);
    return err;
}

/* The secret of tenant from the cache or the store; concurrent misses of one tenant share
 * one store lookup. CHAT_ERR_NOT_FOUND for an unknown tenant; other errors are store
 * failures (or CHAT_ERR_NOMEM). */
static chat_err_t secret_get(gw_auth_t *a, const char *tenant, int64_t now_ms, char **secret,
                             size_t *len)
{
    pthread_mutex_lock(&a->lock);
    if (cache_get(a, tenant, now_ms, secret, len)) {
        pthread_mutex_unlock(&a->lock);
        return *secret != NULL ? CHAT_OK : CHAT_ERR_NOT_FOUND;
    }
    lookup_t *l = chat_strmap_get(a->lookups, tenant);
    if (l != NULL) {
        chat_err_t err = lookup_wait(a, l, secret, len);
        pthread_mutex_unlock(&a->lock);
        return err;
    }
    l = calloc(1, sizeof *l);
    if (l != NULL) {
        l->refs = 1;
        if (!chat_strmap_put(a->lookups, tenant, l)) {
            free(l);
            l = NULL;
        }
    }
    pthread_mutex_unlock(&a->lock);
    return lookup_run(a, l, tenant, now_ms, secret, len);
}

/* The cached secret of tenant: CHAT_OK (*secret a copy), CHAT_ERR_NOT_FOUND (a cached
 * miss), or CHAT_ERR_TIMEOUT if the cache does not know (a lookup is needed). */
static chat_err_t secret_cached(gw_auth_t *a, const char *tenant, int64_t now_ms, char **secret,
                                size_t *len)
{
    pthread_mutex_lock(&a->lock);
    bool known = cache_get(a, tenant, now_ms, secret, len);
    pthread_mutex_unlock(&a->lock);
    if (!known)
        return CHAT_ERR_TIMEOUT;
    return *secret != NULL ? CHAT_OK : CHAT_ERR_NOT_FOUND;
}

/* Verifies token with its tenant's secret: from the cache only (cached_only: CHAT_ERR_TIMEOUT
 * when it is not there), or looked up when it is not. */
static chat_err_t verify_with(gw_auth_t *a, const char *token, int64_t now_ms, bool cached_only,
                              chat_jwt_claims_t *out, char *reason, size_t reason_len)
{
    char tenant[CHAT_TENANT_MAX + 1];
    if (chat_jwt_peek_tenant(token, tenant, sizeof tenant) != CHAT_OK) {
        snprintf(reason, reason_len, "malformed token");
        return CHAT_ERR_UNAUTHORIZED;
    }
    char *secret = NULL;
    size_t len = 0;
    chat_err_t err = cached_only ? secret_cached(a, tenant, now_ms, &secret, &len)
                                 : secret_get(a, tenant, now_ms, &secret, &len);
    if (err == CHAT_ERR_TIMEOUT && cached_only)
        return CHAT_ERR_TIMEOUT;
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
    /* "system" speaks only through the server API (contract.h): no user token may carry it. */
    if (err == CHAT_OK && strcmp(out->user, CHAT_SYSTEM_USER) == 0) {
        snprintf(reason, reason_len, "reserved user id");
        err = CHAT_ERR_UNAUTHORIZED;
    }
    return err == CHAT_OK ? CHAT_OK : CHAT_ERR_UNAUTHORIZED;
}

chat_err_t gw_auth_verify(gw_auth_t *a, const char *token, int64_t now_ms, chat_jwt_claims_t *out,
                          char *reason, size_t reason_len)
{
    return verify_with(a, token, now_ms, false, out, reason, reason_len);
}

chat_err_t gw_auth_verify_cached(gw_auth_t *a, const char *token, int64_t now_ms,
                                 chat_jwt_claims_t *out, char *reason, size_t reason_len)
{
    return verify_with(a, token, now_ms, true, out, reason, reason_len);
}

/* ---- the auth job: verification on a worker, the answer on the loop ---- */

typedef struct auth_job {
    gw_request_t base; /* names no room */
    bool refresh;      /* the token of a refresh frame, not of the auth frame */
    char *token;
    char *origin, *asked_tenant; /* the upgrade's (NULL if absent): the policy check */
    gw_admit_t admit;            /* the policy's outcome for a verified auth token */
    int64_t started_us;
    chat_err_t err;
    chat_jwt_claims_t claims;
    char reason[GW_AUTH_REASON_MAX];
} auth_job_t;

static void auth_destroy(gw_task_t *t)
{
    auth_job_t *j = (auth_job_t *)t;
    chat_jwt_claims_clear(&j->claims);
    free(j->token);
    free(j->origin);
    free(j->asked_tenant);
    gw_request_clear(&j->base);
    free(j);
}

static void auth_run(gw_task_t *t, void *wctx)
{
    (void)wctx;
    auth_job_t *j = (auth_job_t *)t;
    j->err = gw_auth_verify(j->base.gw->auth, j->token, chat_clock_wall_ms(), &j->claims, j->reason,
                            sizeof j->reason);
    /* The tenant's settings are read here, off the loop, when the loop did not have them. */
    if (j->err == CHAT_OK && !j->refresh)
        j->admit = gw_policy_admit(j->base.gw->policy, j->claims.tenant, j->origin, j->asked_tenant,
                                   false);
    if (j->err != CHAT_OK && j->err != CHAT_ERR_UNAUTHORIZED)
        chat_log_warn("auth lookup failed", CHAT_F_STR("conn", j->base.conn),
                      CHAT_F_STR("frame", j->refresh ? "refresh" : "auth"), CHAT_F_ERR(j->err));
}

/* On the loop: hands the outcome to session s (claims are moved into it). */
static void auth_answer(gw_gateway_t *gw, gw_session_t *s, int64_t started_us, chat_err_t err,
                        gw_admit_t admit, chat_jwt_claims_t *claims, const char *reason)
{
    chat_histogram_observe(gw->stats.auth_seconds, chat_clock_seconds_since(started_us));
    if (err == CHAT_OK && admit == GW_ADMIT_OK) /* on the loop: the local count is exact */
        admit = gw_policy_quota(gw->policy, claims->tenant);
    if (err == CHAT_OK && admit != GW_ADMIT_OK) {
        gw_policy_refuse(gw->policy, s, claims->tenant, admit);
        return;
    }
    if (err == CHAT_OK)
        chat_log_debug("authenticated", CHAT_F_STR("conn", gw_session_id(s)),
                       CHAT_F_STR("tenant", claims->tenant), CHAT_F_STR("user", claims->user));
    else
        chat_log_debug("auth refused", CHAT_F_STR("conn", gw_session_id(s)),
                       CHAT_F_STR("reason", reason));
    gw_session_auth_done(s, err, claims, reason);
}

/* On the loop: hands the outcome of a refresh frame's verification to session s (claims are
 * moved into it if it takes them); the session counts it (ops.count_refresh). */
static void refresh_answer(gw_session_t *s, chat_err_t err, chat_jwt_claims_t *claims,
                           const char *reason)
{
    gw_refresh_result_t result = gw_session_refresh_done(s, err, claims, reason);
    if (result == GW_REFRESH__COUNT)
        return; /* closing meanwhile */
    if (result == GW_REFRESH_OK)
        chat_log_debug("token refreshed", CHAT_F_STR("conn", gw_session_id(s)),
                       CHAT_F_STR("tenant", gw_session_tenant(s)),
                       CHAT_F_STR("user", gw_session_user(s)),
                       CHAT_F_INT("exp", gw_session_exp(s)));
    else
        chat_log_debug("token refresh refused", CHAT_F_STR("conn", gw_session_id(s)),
                       CHAT_F_STR("tenant", gw_session_tenant(s)),
                       CHAT_F_STR("user", gw_session_user(s)),
                       CHAT_F_STR("result", gw_refresh_result_name(result)),
                       CHAT_F_STR("reason", reason != NULL ? reason : ""));
}

/* On the loop: the answer of an auth or refresh frame. */
static void verified(gw_gateway_t *gw, gw_session_t *s, bool refresh, int64_t started_us,
                     chat_err_t err, gw_admit_t admit, chat_jwt_claims_t *claims,
                     const char *reason)
{
    if (refresh)
        refresh_answer(s, err, claims, reason);
    else
        auth_answer(gw, s, started_us, err, admit, claims, reason);
}

static void auth_complete(gw_task_t *t, void *loop_ctx)
{
    auth_job_t *j = (auth_job_t *)t;
    gw_gateway_t *gw = loop_ctx;
    if (!j->refresh)
        chat_gauge_add(gw->stats.auth_pending, -1);
    gw_session_t *s = gw_request_session(&j->base);
    if (s == NULL)
        return; /* the connection closed meanwhile: nobody to answer */
    verified(gw, s, j->refresh, j->started_us, j->err, j->admit, &j->claims, j->reason);
}

/* Verifies token for session s (an auth frame's, or a refresh frame's) and answers on the
 * loop, now or after a worker's lookup. */
static void verify_submit(gw_gateway_t *gw, gw_session_t *s, const char *token, bool refresh)
{
    /* A token of a tenant whose secret is cached (nearly every one) is verified here on the
     * loop, in microseconds: a burst of reconnects never waits behind the workers' MongoDB
     * reads. Only a lookup goes to the auth workers, which do nothing else. */
    int64_t started_us = chat_clock_mono_us();
    chat_jwt_claims_t claims = {0};
    char reason[GW_AUTH_REASON_MAX] = "";
    chat_err_t err = gw_auth_verify_cached(gw->auth, token, chat_clock_wall_ms(), &claims, reason,
                                           sizeof reason);
    /* An auth token's tenant policy (policy.h) from the cache too; not cached: the worker. */
    gw_admit_t admit = err == CHAT_OK && !refresh
                           ? gw_policy_admit(gw->policy, claims.tenant, gw_session_origin(s),
                                             gw_session_asked_tenant(s), true)
                           : GW_ADMIT_OK;
    if (err != CHAT_ERR_TIMEOUT && admit != GW_ADMIT_UNKNOWN) {
        verified(gw, s, refresh, started_us, err, admit, &claims, reason);
        chat_jwt_claims_clear(&claims);
        return;
    }
    chat_jwt_claims_clear(&claims);
    if (!refresh)
        chat_counter_inc(gw->stats.auth_lookups);
    auth_job_t *j =
        gw_request_new(sizeof *j, gw, gw_session_id(s), auth_run, auth_complete, auth_destroy);
    bool copied = false;
    if (j != NULL) {
        const char *origin = gw_session_origin(s), *asked = gw_session_asked_tenant(s);
        j->token = strdup(token);
        j->origin = origin != NULL ? strdup(origin) : NULL;
        j->asked_tenant = asked != NULL ? strdup(asked) : NULL;
        copied = j->token != NULL && (origin == NULL || j->origin != NULL) &&
                 (asked == NULL || j->asked_tenant != NULL);
    }
    if (j == NULL || !copied) {
        if (j != NULL) {
            free(j->token);
            free(j->origin);
            free(j->asked_tenant);
        }
        free(j);
        chat_jwt_claims_t none = {0};
        if (refresh)
            refresh_answer(s, CHAT_ERR_NOMEM, &none, NULL);
        else
            gw_session_auth_done(s, CHAT_ERR_NOMEM, &none, NULL);
        return;
    }
    j->refresh = refresh;
    j->started_us = started_us;
    if (!refresh)
        chat_gauge_add(gw->stats.auth_pending, 1);
    gw_workers_submit(gw->auth_workers, &j->base.task, -1);
}

void gw_auth_submit(gw_gateway_t *gw, gw_session_t *s, const char *token)
{
    verify_submit(gw, s, token, false);
}

void gw_auth_refresh_submit(gw_gateway_t *gw, gw_session_t *s, const char *token)
{
    verify_submit(gw, s, token, true);
}
