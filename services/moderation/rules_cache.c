/* The tenants' rule sets (see rules_cache.h). Entries are reference counted: a swap by the
 * refresher drops the cache's reference, and the old set lives until the last check that holds
 * it releases it. One mutex guards the map and the counts; it is never held while loading,
 * compiling or talking to Redis. */
#include "services/moderation/rules_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mod_record.h"
#include "common/redis.h"
#include "common/strmap.h"

struct mod_rules {
    chat_mod_rules_t *rules; /* NULL: the tenant has no rules */
    int64_t rev;             /* of the stored document; 0 when there is none */
    int refs;                /* under the cache's mutex */
    mod_rules_cache_t *cache;
};

struct mod_rules_cache {
    mod_rules_cache_conf_t conf;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chat_strmap_t *tenants; /* tenant -> mod_rules_t (one reference held by the map) */
    bool stopping;
    pthread_t thread;
    bool started;
    atomic_bool healthy;
    chat_redis_t *redis; /* the refresher's */
    chat_counter_t *reloads, *load_errors;
    chat_gauge_t *tenants_cached;
};

const chat_mod_rules_t *mod_rules_compiled(const mod_rules_t *r)
{
    return r != NULL ? r->rules : NULL;
}

int64_t mod_rules_rev(const mod_rules_t *r)
{
    return r != NULL ? r->rev : 0;
}

/* Drops one reference; the caller holds the mutex. */
static void unref_locked(mod_rules_t *r)
{
    if (r != NULL && --r->refs == 0) {
        chat_mod_rules_free(r->rules);
        free(r);
    }
}

void mod_rules_release(mod_rules_t *r)
{
    if (r == NULL)
        return;
    mod_rules_cache_t *c = r->cache;
    pthread_mutex_lock(&c->mu);
    unref_locked(r);
    pthread_mutex_unlock(&c->mu);
}

/* Compiles the `rules` member of a stored document. NULL rules (logged) if it does not
 * compile: rules are validated when written, so this is a document from elsewhere. */
static chat_err_t compile_stored(const char *tenant, const bson_t *doc, chat_mod_rules_t **out)
{
    *out = NULL;
    bson_iter_t it;
    uint32_t len = 0;
    const uint8_t *data = NULL;
    if (!bson_iter_init_find(&it, doc, "rules") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return CHAT_OK;
    bson_iter_document(&it, &len, &data);
    bson_t rules;
    if (!bson_init_static(&rules, data, len))
        return CHAT_OK;
    char *json = bson_as_relaxed_extended_json(&rules, NULL);
    if (json == NULL)
        return CHAT_ERR_NOMEM;
    cJSON *parsed = cJSON_Parse(json);
    bson_free(json);
    if (parsed == NULL)
        return CHAT_ERR_NOMEM;
    char field[CHAT_MOD_FIELD_MAX] = "", why[CHAT_MOD_WHY_MAX] = "";
    chat_err_t err = CHAT_OK;
    *out = chat_mod_rules_compile(parsed, field, why, &err);
    cJSON_Delete(parsed);
    if (err == CHAT_ERR_INVALID) {
        chat_log_error("stored moderation rules do not compile; the tenant is checked by none",
                       CHAT_F_STR("tenant", tenant), CHAT_F_STR("field", field),
                       CHAT_F_STR("reason", why));
        return CHAT_OK;
    }
    return err;
}

/* Reads and compiles tenant's stored rules into a new entry (one reference, the caller's). */
static chat_err_t load(mod_rules_cache_t *c, const char *tenant, mod_rules_t **out)
{
    mod_rules_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CHAT_ERR_NOMEM;
    r->cache = c;
    r->refs = 1;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    bson_t *doc = NULL;
    chat_err_t err = chat_store_find_one(c->conf.store, CHAT_MOD_RULES_COLLECTION, filter, &doc);
    bson_destroy(filter);
    if (err == CHAT_OK) {
        r->rev = chat_bson_number_or(doc, "rev", 0);
        err = compile_stored(tenant, doc, &r->rules);
        bson_destroy(doc);
    } else if (err == CHAT_ERR_NOT_FOUND) {
        err = CHAT_OK; /* a tenant without rules */
    } else {
        chat_log_warn("moderation rules not read", CHAT_F_STR("tenant", tenant), CHAT_F_ERR(err));
    }
    if (err != CHAT_OK) {
        chat_counter_inc(c->load_errors);
        chat_mod_rules_free(r->rules);
        free(r);
        return err;
    }
    chat_counter_inc(c->reloads);
    *out = r;
    return CHAT_OK;
}

/* Puts r (whose reference the map takes) in place of tenant's entry, unless the entry there is
 * already as new; returns the entry now in the map, with one more reference for the caller if
 * hold. */
static mod_rules_t *install(mod_rules_cache_t *c, const char *tenant, mod_rules_t *r, bool hold)
{
    pthread_mutex_lock(&c->mu);
    mod_rules_t *old = chat_strmap_get(c->tenants, tenant);
    mod_rules_t *kept = r;
    if (old != NULL && old->rev >= r->rev && old->rev != 0) {
        kept = old; /* someone else loaded this revision (or a newer one) first */
        unref_locked(r);
    } else if (chat_strmap_put(c->tenants, tenant, r)) {
        unref_locked(old);
    } else {
        kept = old; /* out of memory: keep what there was (may be NULL) */
        unref_locked(r);
    }
    if (kept != NULL && hold)
        kept->refs++;
    chat_gauge_set(c->tenants_cached, (double)chat_strmap_count(c->tenants));
    pthread_mutex_unlock(&c->mu);
    return kept;
}

chat_err_t mod_rules_cache_get(mod_rules_cache_t *c, const char *tenant, mod_rules_t **out)
{
    *out = NULL;
    pthread_mutex_lock(&c->mu);
    mod_rules_t *r = chat_strmap_get(c->tenants, tenant);
    if (r != NULL)
        r->refs++;
    pthread_mutex_unlock(&c->mu);
    if (r == NULL) {
        mod_rules_t *loaded = NULL;
        chat_err_t err = load(c, tenant, &loaded);
        if (err != CHAT_OK)
            return err;
        r = install(c, tenant, loaded, true);
        if (r == NULL)
            return CHAT_ERR_NOMEM;
    }
    if (r->rules == NULL || chat_mod_rules_empty(r->rules)) {
        mod_rules_release(r);
        return CHAT_OK;
    }
    *out = r;
    return CHAT_OK;
}

typedef struct stale {
    char **tenants;
    size_t n, cap;
    const chat_strmap_t *revs; /* tenant -> its revision (a string of the HGETALL reply) */
} stale_t;

static void collect_stale(const char *tenant, void *value, void *ud)
{
    stale_t *s = ud;
    const mod_rules_t *r = value;
    const char *rev = chat_strmap_get(s->revs, tenant);
    if ((rev != NULL ? strtoll(rev, NULL, 10) : 0) == r->rev)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **t = realloc(s->tenants, cap * sizeof *t);
        if (t == NULL)
            return;
        s->tenants = t;
        s->cap = cap;
    }
    if ((s->tenants[s->n] = strdup(tenant)) != NULL)
        s->n++;
}

/* One poll: the revisions of every tenant, and a reload of each cached tenant whose revision
 * differs from its entry's. Tenants nobody checked yet are loaded on first use instead. */
static void refresh_once(mod_rules_cache_t *c)
{
    chat_err_t err = CHAT_OK;
    redisReply *revs = chat_redis_command(c->redis, &err, "HGETALL %s", CHAT_MOD_RULES_REV_KEY);
    if (revs == NULL || revs->type != REDIS_REPLY_ARRAY) {
        if (atomic_exchange(&c->healthy, false))
            chat_log_warn("moderation rule revisions not readable; rule changes wait",
                          CHAT_F_ERR(err != CHAT_OK ? err : CHAT_ERR_REDIS));
        if (revs != NULL)
            freeReplyObject(revs);
        return;
    }
    if (!atomic_exchange(&c->healthy, true))
        chat_log_info("moderation rule revisions readable again");
    /* The reply as a map, so that each cached tenant is one lookup (field, value, ...). */
    chat_strmap_t *by_tenant = chat_strmap_new();
    for (size_t i = 0; by_tenant != NULL && i + 1 < revs->elements; i += 2) {
        const redisReply *f = revs->element[i], *v = revs->element[i + 1];
        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            !chat_strmap_put(by_tenant, f->str, v->str)) {
            chat_strmap_free(by_tenant);
            by_tenant = NULL;
        }
    }
    if (by_tenant == NULL) {
        freeReplyObject(revs);
        return; /* out of memory: the next poll tries again */
    }
    stale_t s = {.revs = by_tenant};
    pthread_mutex_lock(&c->mu);
    chat_strmap_foreach(c->tenants, collect_stale, &s);
    pthread_mutex_unlock(&c->mu);
    chat_strmap_free(by_tenant);
    freeReplyObject(revs);
    for (size_t i = 0; i < s.n; i++) {
        mod_rules_t *r = NULL;
        int64_t start = chat_clock_mono_us();
        if (load(c, s.tenants[i], &r) == CHAT_OK) {
            chat_log_info("moderation rules loaded", CHAT_F_STR("tenant", s.tenants[i]),
                          CHAT_F_INT("rev", r->rev),
                          CHAT_F_DBL("compile_s", chat_clock_seconds_since(start)));
            install(c, s.tenants[i], r, false);
        }
        free(s.tenants[i]);
    }
    free(s.tenants);
}

static void *refresher(void *arg)
{
    mod_rules_cache_t *c = arg;
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

bool mod_rules_cache_healthy(mod_rules_cache_t *c)
{
    return atomic_load(&c->healthy);
}

chat_err_t mod_rules_cache_new(const mod_rules_cache_conf_t *conf, mod_rules_cache_t **out)
{
    mod_rules_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CHAT_ERR_NOMEM;
    c->conf = *conf;
    if (c->conf.refresh_ms <= 0)
        c->conf.refresh_ms = 1000;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    atomic_init(&c->healthy, true);
    c->tenants = chat_strmap_new();
    c->reloads = chat_metrics_counter(conf->metrics, "chat_moderation_rules_loads_total",
                                      "Rule sets read and compiled (first use and changes).", NULL);
    c->load_errors = chat_metrics_counter(conf->metrics, "chat_moderation_rules_load_errors_total",
                                          "Rule sets that could not be read from MongoDB.", NULL);
    c->tenants_cached =
        chat_metrics_gauge(conf->metrics, "chat_moderation_tenants",
                           "Tenants whose rules (or lack of them) are cached.", NULL);
    if (c->tenants == NULL) {
        mod_rules_cache_free(c);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = chat_redis_connect(conf->redis_url, conf->timeout_ms, &c->redis);
    if (err != CHAT_OK) {
        mod_rules_cache_free(c);
        return err;
    }
    if (pthread_create(&c->thread, NULL, refresher, c) != 0) {
        mod_rules_cache_free(c);
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

void mod_rules_cache_free(mod_rules_cache_t *c)
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
