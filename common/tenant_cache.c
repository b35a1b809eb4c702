/* The per-tenant configuration cache (see tenant_cache.h). One mutex guards the map and the
 * reference counts; it is never held while loading or talking to Redis. Each entry remembers
 * the revision the refresher saw before it was loaded (-1 for a first-use load, which the next
 * poll therefore reloads once, since the revision it was loaded at is unknown): a change that
 * lands during a load shows as a different revision at the next poll and loads again. */
#include "common/tenant_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/strmap.h"

#define REV_UNKNOWN (-1)

struct chat_tcache_ref {
    void *value;
    int64_t rev; /* the revision seen before the load; REV_UNKNOWN after a first-use load */
    int refs;    /* under the cache's mutex */
    chat_tcache_t *cache;
};

struct chat_tcache {
    chat_tcache_conf_t conf;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chat_strmap_t *tenants; /* tenant -> chat_tcache_ref_t (one reference held by the map) */
    bool stopping;
    pthread_t thread;
    bool started;
    atomic_bool healthy;
    chat_redis_t *redis; /* the refresher's */
    chat_counter_t *loads, *load_errors;
    chat_gauge_t *cached;
};

void *chat_tcache_value(const chat_tcache_ref_t *r)
{
    return r != NULL ? r->value : NULL;
}

/* Drops one reference; the caller holds the mutex. */
static void unref_locked(chat_tcache_ref_t *r)
{
    if (r != NULL && --r->refs == 0) {
        r->cache->conf.free(r->cache->conf.ud, r->value);
        free(r);
    }
}

void chat_tcache_release(chat_tcache_ref_t *r)
{
    if (r == NULL)
        return;
    chat_tcache_t *c = r->cache;
    pthread_mutex_lock(&c->mu);
    unref_locked(r);
    pthread_mutex_unlock(&c->mu);
}

/* Loads tenant into a new entry with one reference (the caller's). */
static chat_err_t load(chat_tcache_t *c, const char *tenant, int64_t rev, chat_tcache_ref_t **out)
{
    chat_tcache_ref_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CHAT_ERR_NOMEM;
    r->cache = c;
    r->refs = 1;
    r->rev = rev;
    chat_err_t err = c->conf.load(c->conf.ud, tenant, &r->value);
    if (err != CHAT_OK) {
        chat_counter_inc(c->load_errors);
        free(r);
        return err;
    }
    chat_counter_inc(c->loads);
    *out = r;
    return CHAT_OK;
}

/* Puts r in tenant's place (the map takes r's reference). A first-use load (replace false)
 * yields to an entry that appeared meanwhile. Returns the entry now in the map, with one more
 * reference for the caller if hold; NULL if out of memory and there was none. */
static chat_tcache_ref_t *install(chat_tcache_t *c, const char *tenant, chat_tcache_ref_t *r,
                                  bool replace, bool hold)
{
    pthread_mutex_lock(&c->mu);
    chat_tcache_ref_t *old = chat_strmap_get(c->tenants, tenant);
    chat_tcache_ref_t *kept = r;
    if (old != NULL && !replace) {
        kept = old;
        unref_locked(r);
    } else if (chat_strmap_put(c->tenants, tenant, r)) {
        unref_locked(old);
    } else {
        kept = old; /* out of memory: keep what there was (may be NULL) */
        unref_locked(r);
    }
    if (kept != NULL && hold)
        kept->refs++;
    chat_gauge_set(c->cached, (double)chat_strmap_count(c->tenants));
    pthread_mutex_unlock(&c->mu);
    return kept;
}

chat_err_t chat_tcache_get(chat_tcache_t *c, const char *tenant, chat_tcache_ref_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    chat_tcache_ref_t *r = chat_strmap_get(c->tenants, tenant);
    if (r != NULL)
        r->refs++;
    pthread_mutex_unlock(&c->mu);
    if (r == NULL) {
        chat_tcache_ref_t *loaded = NULL;
        chat_err_t err = load(c, tenant, REV_UNKNOWN, &loaded);
        if (err != CHAT_OK)
            return err;
        if ((r = install(c, tenant, loaded, false, true)) == NULL)
            return CHAT_ERR_NOMEM;
    }
    *out = r;
    return CHAT_OK;
}

chat_err_t chat_tcache_peek(chat_tcache_t *c, const char *tenant, chat_tcache_ref_t **out)
{
    pthread_mutex_lock(&c->mu);
    chat_tcache_ref_t *r = chat_strmap_get(c->tenants, tenant);
    if (r != NULL)
        r->refs++;
    pthread_mutex_unlock(&c->mu);
    *out = r;
    return r != NULL ? CHAT_OK : CHAT_ERR_NOT_FOUND;
}

void chat_tcache_invalidate(chat_tcache_t *c, const char *tenant)
{
    pthread_mutex_lock(&c->mu);
    unref_locked(chat_strmap_remove(c->tenants, tenant));
    chat_gauge_set(c->cached, (double)chat_strmap_count(c->tenants));
    pthread_mutex_unlock(&c->mu);
}

typedef struct stale {
    char **tenants;
    int64_t *revs;
    size_t n, cap;
    const chat_strmap_t *hash; /* tenant -> its revision (a string of the HGETALL reply) */
} stale_t;

static void collect_stale(const char *tenant, void *value, void *ud)
{
    stale_t *s = ud;
    const chat_tcache_ref_t *r = value;
    const char *text = chat_strmap_get(s->hash, tenant);
    int64_t rev = text != NULL ? strtoll(text, NULL, 10) : 0;
    if (rev == r->rev)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **t = realloc(s->tenants, cap * sizeof *t);
        if (t == NULL)
            return;
        s->tenants = t;
        int64_t *v = realloc(s->revs, cap * sizeof *v);
        if (v == NULL)
            return;
        s->revs = v;
        s->cap = cap;
    }
    if ((s->tenants[s->n] = strdup(tenant)) != NULL)
        s->revs[s->n++] = rev;
}

/* The HGETALL reply (field, value, ...) as a map, so that each cached tenant is one lookup.
 * NULL if out of memory. */
static chat_strmap_t *reply_map(const redisReply *revs)
{
    chat_strmap_t *m = chat_strmap_new();
    for (size_t i = 0; m != NULL && i + 1 < revs->elements; i += 2) {
        const redisReply *f = revs->element[i], *v = revs->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            !chat_strmap_put(m, f->str, v->str)) {
            chat_strmap_free(m);
            m = NULL;
        }
    }
    return m;
}

/* One poll: the revisions of every tenant, and a reload of each cached tenant whose revision
 * differs from its entry's. Tenants nobody used yet are loaded on first use instead. */
static void refresh_once(chat_tcache_t *c)
{
    chat_err_t err = CHAT_OK;
    redisReply *revs = chat_redis_command(c->redis, &err, "HGETALL %s", c->conf.rev_key);
    if (revs == NULL || revs->type != REDIS_REPLY_ARRAY) {
        if (atomic_exchange(&c->healthy, false))
            chat_log_warn("configuration revisions not readable; changes wait",
                          CHAT_F_STR("what", c->conf.what),
                          CHAT_F_ERR(err != CHAT_OK ? err : CHAT_ERR_REDIS));
        if (revs != NULL)
            freeReplyObject(revs);
        return;
    }
    if (!atomic_exchange(&c->healthy, true))
        chat_log_info("configuration revisions readable again", CHAT_F_STR("what", c->conf.what));
    chat_strmap_t *hash = reply_map(revs);
    if (hash == NULL) {
        freeReplyObject(revs);
        return; /* out of memory: the next poll tries again */
    }
    stale_t s = {.hash = hash};
    pthread_mutex_lock(&c->mu);
    chat_strmap_foreach(c->tenants, collect_stale, &s);
    pthread_mutex_unlock(&c->mu);
    chat_strmap_free(hash);
    freeReplyObject(revs);
    for (size_t i = 0; i < s.n; i++) {
        chat_tcache_ref_t *r = NULL;
        int64_t start = chat_clock_mono_us();
        if (load(c, s.tenants[i], s.revs[i], &r) == CHAT_OK) {
            chat_log_debug("tenant configuration loaded", CHAT_F_STR("what", c->conf.what),
                           CHAT_F_STR("tenant", s.tenants[i]), CHAT_F_INT("rev", s.revs[i]),
                           CHAT_F_DBL("load_s", chat_clock_seconds_since(start)));
            install(c, s.tenants[i], r, true, false);
        }
        free(s.tenants[i]);
    }
    free(s.tenants);
    free(s.revs);
}

static void *refresher(void *arg)
{
    chat_tcache_t *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (int64_t)c->conf.refresh_ms * 1000000;
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&c->cv, &c->mu, &until);
        if (c->stopping)
            break;
        pthread_mutex_unlock(&c->mu);
        refresh_once(c);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

bool chat_tcache_healthy(chat_tcache_t *c)
{
    return atomic_load(&c->healthy);
}

chat_err_t chat_tcache_new(const chat_tcache_conf_t *conf, chat_tcache_t **out)
{
    if (conf == NULL || conf->load == NULL || conf->free == NULL || conf->rev_key == NULL)
        return CHAT_ERR_INVALID;
    chat_tcache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CHAT_ERR_NOMEM;
    c->conf = *conf;
    if (c->conf.refresh_ms <= 0)
        c->conf.refresh_ms = 1000;
    if (c->conf.what == NULL)
        c->conf.what = "tenant configuration";
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    atomic_init(&c->healthy, true);
    c->tenants = chat_strmap_new();
    c->loads = chat_metrics_counter(conf->metrics, conf->loads_metric,
                                    "Tenant configurations read (first use and changes).", NULL);
    c->load_errors = chat_metrics_counter(conf->metrics, conf->errors_metric,
                                          "Tenant configurations that could not be read.", NULL);
    c->cached = chat_metrics_gauge(conf->metrics, conf->tenants_metric,
                                   "Tenants whose configuration is cached.", NULL);
    if (c->tenants == NULL) {
        chat_tcache_free(c);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = chat_redis_connect(conf->redis_url, conf->timeout_ms, &c->redis);
    if (err != CHAT_OK) {
        chat_tcache_free(c);
        return err;
    }
    if (pthread_create(&c->thread, NULL, refresher, c) != 0) {
        chat_tcache_free(c);
        return CHAT_ERR_NOMEM;
    }
    c->started = true;
    *out = c;
    return CHAT_OK;
}

static void drop_entry(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    unref_locked(value);
}

void chat_tcache_free(chat_tcache_t *c)
{
    if (c == NULL)
        return;
    if (c->started) {
        pthread_mutex_lock(&c->mu);
        c->stopping = true;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    if (c->tenants != NULL) {
        pthread_mutex_lock(&c->mu);
        chat_strmap_foreach(c->tenants, drop_entry, NULL);
        pthread_mutex_unlock(&c->mu);
        chat_strmap_free(c->tenants);
    }
    chat_redis_free(c->redis);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
