/* The tenants' rule sets (see rules_cache.h), on the per-tenant cache of common/tenant_cache.h
 * (reference counted values, revisions from the Redis hash chat:rules:rev). A held rule set is
 * the cache's reference itself. */
#include "services/moderation/rules_cache.h"

#include <stdlib.h>

#include <bson/bson.h>

#include "common/bson_fields.h"
#include "common/log.h"
#include "common/mod_record.h"
#include "common/tenant_cache.h"

/* A tenant's cached value: its compiled rules (NULL: none) and their stored revision. */
typedef struct rules_value {
    chat_mod_rules_t *rules;
    int64_t rev;
} rules_value_t;

struct mod_rules_cache {
    mod_rules_cache_conf_t conf;
    chat_tcache_t *cache;
};

static const rules_value_t *value_of(const mod_rules_t *r)
{
    return chat_tcache_value((const chat_tcache_ref_t *)r);
}

const chat_mod_rules_t *mod_rules_compiled(const mod_rules_t *r)
{
    const rules_value_t *v = r != NULL ? value_of(r) : NULL;
    return v != NULL ? v->rules : NULL;
}

int64_t mod_rules_rev(const mod_rules_t *r)
{
    const rules_value_t *v = r != NULL ? value_of(r) : NULL;
    return v != NULL ? v->rev : 0;
}

void mod_rules_release(mod_rules_t *r)
{
    chat_tcache_release((chat_tcache_ref_t *)r);
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

/* chat_tcache_load_fn: reads and compiles tenant's stored rules. */
static chat_err_t rules_load(void *ud, const char *tenant, void **value)
{
    mod_rules_cache_t *c = ud;
    rules_value_t *v = calloc(1, sizeof *v);
    if (v == NULL)
        return CHAT_ERR_NOMEM;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    bson_t *doc = NULL;
    chat_err_t err = chat_store_find_one(c->conf.store, CHAT_MOD_RULES_COLLECTION, filter, &doc);
    bson_destroy(filter);
    if (err == CHAT_OK) {
        v->rev = chat_bson_number_or(doc, "rev", 0);
        err = compile_stored(tenant, doc, &v->rules);
        bson_destroy(doc);
    } else if (err == CHAT_ERR_NOT_FOUND) {
        err = CHAT_OK; /* a tenant without rules */
    } else {
        chat_log_warn("moderation rules not read", CHAT_F_STR("tenant", tenant), CHAT_F_ERR(err));
    }
    if (err != CHAT_OK) {
        chat_mod_rules_free(v->rules);
        free(v);
        return err;
    }
    if (v->rev > 0)
        chat_log_info("moderation rules loaded", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("rev", v->rev));
    *value = v;
    return CHAT_OK;
}

static void rules_free(void *ud, void *value)
{
    (void)ud;
    rules_value_t *v = value;
    if (v != NULL)
        chat_mod_rules_free(v->rules);
    free(v);
}

chat_err_t mod_rules_cache_get(mod_rules_cache_t *c, const char *tenant, mod_rules_t **out)
{
    *out = NULL;
    chat_tcache_ref_t *ref = NULL;
    chat_err_t err = chat_tcache_get(c->cache, tenant, &ref);
    if (err != CHAT_OK)
        return err;
    const rules_value_t *v = chat_tcache_value(ref);
    if (v == NULL || v->rules == NULL || chat_mod_rules_empty(v->rules)) {
        chat_tcache_release(ref);
        return CHAT_OK;
    }
    *out = (mod_rules_t *)ref;
    return CHAT_OK;
}

bool mod_rules_cache_healthy(mod_rules_cache_t *c)
{
    return chat_tcache_healthy(c->cache);
}

chat_err_t mod_rules_cache_new(const mod_rules_cache_conf_t *conf, mod_rules_cache_t **out)
{
    mod_rules_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CHAT_ERR_NOMEM;
    c->conf = *conf;
    chat_tcache_conf_t tc = {.redis_url = conf->redis_url,
                             .timeout_ms = conf->timeout_ms,
                             .refresh_ms = conf->refresh_ms,
                             .rev_key = CHAT_MOD_RULES_REV_KEY,
                             .what = "moderation rules",
                             .load = rules_load,
                             .free = rules_free,
                             .ud = c,
                             .metrics = conf->metrics,
                             .loads_metric = "chat_moderation_rules_loads_total",
                             .errors_metric = "chat_moderation_rules_load_errors_total",
                             .tenants_metric = "chat_moderation_tenants"};
    chat_err_t err = chat_tcache_new(&tc, &c->cache);
    if (err != CHAT_OK) {
        free(c);
        return err;
    }
    *out = c;
    return CHAT_OK;
}

void mod_rules_cache_free(mod_rules_cache_t *c)
{
    if (c == NULL)
        return;
    chat_tcache_free(c->cache);
    free(c);
}
