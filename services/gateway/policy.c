/* A tenant's policy at the gateway (see policy.h): the settings cache, the origin checks at the
 * upgrade and at auth, and their refusals. */
#include "services/gateway/policy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "common/fleet_count.h"
#include "common/log.h"
#include "common/names.h"
#include "common/clock.h"
#include "common/token_bucket.h"
#include "common/tenant_cache.h"
#include "common/tenant_settings.h"
#include "services/gateway/gateway.h"
#include "services/gateway/http.h"

#define GW_POLICY_CONNS_PREFIX "chat:conns" /* chat:conns:<gateway>, chat:conns:instances */
#define ORIGIN_HEADER_MAX 512 /* a longer Origin is no origin a tenant can list: refused */

struct gw_policy {
    gw_policy_conf_t conf;
    chat_tcache_t *cache;                      /* tenant -> chat_settings_policy_t */
    chat_tenant_counter_t *origin_refusals[2]; /* [0] at the upgrade (403), [1] at auth */
    chat_tenant_counter_t *tenant_mismatches;  /* ?tenant= not the token's */
    chat_tenant_counter_t *conn_refusals;      /* limits.connections reached */
    chat_tenant_counter_t *send_refusals;      /* limits.messages_per_s reached */
    chat_strmap_t *buckets; /* loop only: tenant -> chat_token_bucket_t (its send rate here) */
    chat_fleet_t *conns;    /* authenticated connections per tenant, over the gateways */
    pthread_t warm;         /* loads the tenants that list origins, once, at start */
    bool warm_started;
};

#define WARM_MAX 100000 /* tenants loaded at start; the others on their first auth */

/* The warm-up thread: every tenant whose settings list allowed origins goes into the cache, so
 * that the upgrade refuses a foreign Origin with 403 from the start, not only once the tenant's
 * first connection has loaded it. Tenants without a list allow any origin: nothing to load. */
static void *warm_main(void *arg)
{
    gw_policy_t *p = arg;
    int64_t start = chat_clock_mono_ms();
    bson_t *filter = BCON_NEW("allowed_origins.0", "{", "$exists", BCON_BOOL(true), "}");
    bson_t *opts =
        BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "limit", BCON_INT64(WARM_MAX));
    mongoc_client_t *client = chat_store_acquire(p->conf.store);
    mongoc_collection_t *col =
        chat_store_collection(p->conf.store, client, CHAT_SETTINGS_COLLECTION);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    size_t loaded = 0, failed = 0;
    while (mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        chat_tcache_ref_t *ref = NULL;
        if (chat_tcache_get(p->cache, bson_iter_utf8(&it, NULL), &ref) == CHAT_OK)
            loaded++;
        else
            failed++;
        chat_tcache_release(ref);
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error))
        chat_log_warn("tenant settings warm-up stopped: their tenants load on first use",
                      CHAT_F_STR("error", error.message));
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(col);
    chat_store_release(p->conf.store, client);
    bson_destroy(opts);
    bson_destroy(filter);
    chat_log_info("tenant settings warmed: tenants listing allowed origins loaded",
                  CHAT_F_INT("tenants", loaded), CHAT_F_INT("failed", failed),
                  CHAT_F_INT("ms", chat_clock_mono_ms() - start));
    return NULL;
}

/* chat_tcache_load_fn: the tenant's settings in effect. */
static chat_err_t settings_load(void *ud, const char *tenant, void **value)
{
    gw_policy_t *p = ud;
    cJSON *stored = NULL, *defaults = NULL, *effective = NULL;
    int64_t updated;
    chat_err_t err = chat_settings_read(p->conf.store, tenant, &stored, &updated);
    chat_settings_policy_t *policy = NULL;
    if (err == CHAT_OK &&
        ((defaults = chat_settings_defaults()) == NULL ||
         (effective = chat_settings_effective(defaults, tenant, stored)) == NULL ||
         (policy = calloc(1, sizeof *policy)) == NULL))
        err = CHAT_ERR_NOMEM;
    if (err == CHAT_OK && (err = chat_settings_policy_from_json(effective, policy)) != CHAT_OK) {
        free(policy);
        policy = NULL;
    }
    cJSON_Delete(stored);
    cJSON_Delete(defaults);
    cJSON_Delete(effective);
    if (err != CHAT_OK) {
        chat_log_warn("tenant settings not read", CHAT_F_STR("tenant", tenant), CHAT_F_ERR(err));
        return err;
    }
    *value = policy;
    return CHAT_OK;
}

static void settings_free(void *ud, void *value)
{
    (void)ud;
    chat_settings_policy_clear(value);
    free(value);
}

chat_err_t gw_policy_new(const gw_policy_conf_t *conf, gw_policy_t **out)
{
    gw_policy_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    p->conf = *conf;
    static const char origin_help[] =
        "Connections refused because their Origin is not in the tenant's allowed_origins, by "
        "stage (upgrade: HTTP 403; auth: error forbidden and close 4004).";
    p->origin_refusals[0] =
        chat_tenant_counter_new(conf->labels, conf->metrics, "chat_gateway_origin_refusals_total",
                                origin_help, "stage=\"upgrade\"");
    p->origin_refusals[1] =
        chat_tenant_counter_new(conf->labels, conf->metrics, "chat_gateway_origin_refusals_total",
                                origin_help, "stage=\"auth\"");
    p->tenant_mismatches = chat_tenant_counter_new(
        conf->labels, conf->metrics, "chat_gateway_tenant_param_mismatches_total",
        "Auth frames refused (4001) because the upgrade's ?tenant= is not the token's tenant.",
        NULL);
    static const char limit_help[] =
        "Refused because a tenant limit is reached: limit=\"connections\" (an auth: error "
        "rate_limited, close 4003), limit=\"messages_per_s\" (a send: error rate_limited).";
    p->conn_refusals = chat_tenant_counter_new(conf->labels, conf->metrics,
                                               "chat_gateway_tenant_limit_refusals_total",
                                               limit_help, "limit=\"connections\"");
    p->send_refusals = chat_tenant_counter_new(conf->labels, conf->metrics,
                                               "chat_gateway_tenant_limit_refusals_total",
                                               limit_help, "limit=\"messages_per_s\"");
    if ((p->buckets = chat_strmap_new()) == NULL) {
        free(p);
        return CHAT_ERR_NOMEM;
    }
    chat_fleet_conf_t fc = {.redis_url = conf->redis_url,
                            .timeout_ms = conf->timeout_ms,
                            .prefix = GW_POLICY_CONNS_PREFIX,
                            .instance = conf->instance,
                            .period_ms = conf->count_period_ms,
                            .metrics = conf->metrics,
                            .errors_metric = "chat_gateway_tenant_count_errors_total"};
    chat_err_t ferr = chat_fleet_new(&fc, &p->conns);
    if (ferr != CHAT_OK) {
        chat_strmap_free(p->buckets);
        free(p);
        return ferr;
    }
    chat_tcache_conf_t tc = {.redis_url = conf->redis_url,
                             .timeout_ms = conf->timeout_ms,
                             .refresh_ms = conf->refresh_ms,
                             .rev_key = CHAT_SETTINGS_REV_KEY,
                             .what = "tenant settings",
                             .load = settings_load,
                             .free = settings_free,
                             .ud = p,
                             .metrics = conf->metrics,
                             .loads_metric = "chat_gateway_settings_loads_total",
                             .errors_metric = "chat_gateway_settings_load_errors_total",
                             .tenants_metric = "chat_gateway_settings_tenants"};
    chat_err_t err = chat_tcache_new(&tc, &p->cache);
    if (err != CHAT_OK) {
        chat_fleet_free(p->conns);
        chat_strmap_free(p->buckets);
        free(p);
        return err;
    }
    p->warm_started = pthread_create(&p->warm, NULL, warm_main, p) == 0;
    if (!p->warm_started)
        chat_log_warn("tenant settings warm-up not started: their tenants load on first use");
    *out = p;
    return CHAT_OK;
}

void gw_policy_free(gw_policy_t *p)
{
    if (p == NULL)
        return;
    if (p->warm_started)
        pthread_join(p->warm, NULL);
    chat_tcache_free(p->cache);
    chat_fleet_free(p->conns);
    chat_strmap_foreach(p->buckets, chat_strmap_free_value, NULL);
    chat_strmap_free(p->buckets);
    free(p);
}

bool gw_policy_healthy(gw_policy_t *p)
{
    return p != NULL && chat_tcache_healthy(p->cache);
}

gw_admit_t gw_policy_admit(gw_policy_t *p, const char *tenant, const char *origin,
                           const char *asked_tenant, bool cached_only)
{
    if (asked_tenant != NULL && strcmp(asked_tenant, tenant) != 0)
        return GW_ADMIT_TENANT_DIFFERS;
    /* Loaded even without an Origin: the quota check before welcome needs the limits. */
    chat_tcache_ref_t *ref = NULL;
    chat_err_t err = cached_only ? chat_tcache_peek(p->cache, tenant, &ref)
                                 : chat_tcache_get(p->cache, tenant, &ref);
    if (err != CHAT_OK && cached_only)
        return GW_ADMIT_UNKNOWN;
    if (err != CHAT_OK) /* an Origin cannot be vouched for; a quota fails open */
        return origin != NULL ? GW_ADMIT_UNAVAILABLE : GW_ADMIT_OK;
    bool allowed = chat_settings_origin_allowed(chat_tcache_value(ref), origin);
    chat_tcache_release(ref);
    return allowed ? GW_ADMIT_OK : GW_ADMIT_ORIGIN;
}

gw_admit_t gw_policy_quota(gw_policy_t *p, const char *tenant)
{
    chat_tcache_ref_t *ref = NULL;
    if (chat_tcache_peek(p->cache, tenant, &ref) != CHAT_OK)
        return GW_ADMIT_OK;
    const chat_settings_policy_t *policy = chat_tcache_value(ref);
    long long limit = policy->limits.connections;
    chat_tcache_release(ref);
    return chat_fleet_total(p->conns, tenant) >= limit ? GW_ADMIT_CONNECTIONS : GW_ADMIT_OK;
}

bool gw_policy_send(gw_policy_t *p, const char *tenant)
{
    chat_tcache_ref_t *ref = NULL;
    if (chat_tcache_peek(p->cache, tenant, &ref) != CHAT_OK)
        return true; /* not loaded (every auth loads it): no limit known */
    double limit =
        (double)((const chat_settings_policy_t *)chat_tcache_value(ref))->limits.messages_per_s;
    chat_tcache_release(ref);
    int64_t here = chat_fleet_local(p->conns, tenant), all = chat_fleet_total(p->conns, tenant);
    double rate = here > 0 && all > here ? limit * (double)here / (double)all : limit;
    double burst = rate > 1.0 ? rate : 1.0;
    int64_t now = chat_clock_mono_us();
    chat_token_bucket_t *b = chat_strmap_get(p->buckets, tenant);
    if (b == NULL) {
        if ((b = malloc(sizeof *b)) == NULL || !chat_strmap_put(p->buckets, tenant, b)) {
            free(b);
            return true;
        }
        chat_token_bucket_init(b, rate, burst, now);
    }
    chat_token_bucket_set(b, rate, burst); /* follows the share and the setting */
    if (chat_token_bucket_take(b, now))
        return true;
    chat_tenant_counter_add(p->send_refusals, tenant, 1);
    return false;
}

void gw_policy_conn_note(gw_policy_t *p, const char *tenant, int delta)
{
    chat_fleet_add(p->conns, tenant, delta);
}

void gw_policy_refuse(gw_policy_t *p, gw_session_t *s, const char *tenant, gw_admit_t a)
{
    const char *origin = gw_session_origin(s);
    switch (a) {
    case GW_ADMIT_TENANT_DIFFERS:
        chat_tenant_counter_add(p->tenant_mismatches, tenant, 1);
        chat_log_info("connection refused: ?tenant= is not the token's tenant",
                      CHAT_F_STR("conn", gw_session_id(s)), CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("asked", gw_session_asked_tenant(s)));
        gw_session_auth_refuse(s, GW_E_UNAUTHORIZED, "token is for another tenant",
                               GW_CLOSE_UNAUTHORIZED, "unauthorized");
        return;
    case GW_ADMIT_ORIGIN:
        chat_tenant_counter_add(p->origin_refusals[1], tenant, 1);
        chat_log_info("connection refused: origin not allowed",
                      CHAT_F_STR("conn", gw_session_id(s)), CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("origin", origin), CHAT_F_STR("stage", "auth"));
        gw_session_auth_refuse(s, GW_E_FORBIDDEN, "origin not allowed", GW_CLOSE_ORIGIN,
                               "origin not allowed");
        return;
    case GW_ADMIT_CONNECTIONS:
        chat_tenant_counter_add(p->conn_refusals, tenant, 1);
        chat_log_info("connection refused: the tenant's connection limit is reached",
                      CHAT_F_STR("conn", gw_session_id(s)), CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("open", chat_fleet_total(p->conns, tenant)));
        gw_session_auth_refuse(s, GW_E_RATE_LIMITED, "the tenant's connection limit is reached",
                               GW_CLOSE_TENANT_LIMIT, "tenant connection limit");
        return;
    default: /* the settings are unreadable: an Origin cannot be vouched for */
        gw_session_auth_refuse(s, GW_E_INTERNAL,
                               "the tenant's settings are unavailable; retry later",
                               GW_CLOSE_INTERNAL, "settings unavailable");
        return;
    }
}

/* Copies header h into buf (NUL-terminated); NULL if absent, "" if longer than buf. */
static const char *header(struct lws *wsi, enum lws_token_indexes h, char *buf, int len)
{
    int n = lws_hdr_total_length(wsi, h);
    if (n <= 0)
        return NULL;
    if (n >= len || lws_hdr_copy(wsi, buf, len, h) < 0) {
        buf[0] = '\0';
        return buf;
    }
    return buf;
}

/* The ?tenant= parameter into buf; NULL if absent. */
static const char *tenant_param(struct lws *wsi, char *buf, int len)
{
    char arg[CHAT_TENANT_MAX + 16];
    const char *v = lws_get_urlarg_by_name(wsi, "tenant=", arg, (int)sizeof arg);
    if (v == NULL)
        return NULL;
    snprintf(buf, (size_t)len, "%s", v);
    return buf;
}

int gw_policy_upgrade(struct gw_gateway *gw, struct lws *wsi)
{
    char origin_buf[ORIGIN_HEADER_MAX], tenant_buf[CHAT_TENANT_MAX + 1];
    const char *origin = header(wsi, WSI_TOKEN_ORIGIN, origin_buf, (int)sizeof origin_buf);
    const char *tenant = tenant_param(wsi, tenant_buf, (int)sizeof tenant_buf);
    if (origin == NULL || tenant == NULL || tenant[0] == '\0')
        return 0; /* checked at auth, against the token's tenant */
    if (gw_policy_admit(gw->policy, tenant, origin, NULL, true) != GW_ADMIT_ORIGIN)
        return 0; /* allowed, or not cached: the workers load it for the check at auth */
    chat_tenant_counter_add(gw->policy->origin_refusals[0], tenant, 1);
    chat_log_info("connection refused: origin not allowed", CHAT_F_STR("tenant", tenant),
                  CHAT_F_STR("origin", origin), CHAT_F_STR("stage", "upgrade"));
    return gw_http_refuse_upgrade(wsi, "403 Forbidden", 0, "origin not allowed\n");
}

bool gw_policy_conn_open(struct lws *wsi, gw_session_t *s)
{
    char origin_buf[ORIGIN_HEADER_MAX], tenant_buf[CHAT_TENANT_MAX + 1];
    const char *origin = header(wsi, WSI_TOKEN_ORIGIN, origin_buf, (int)sizeof origin_buf);
    const char *tenant = tenant_param(wsi, tenant_buf, (int)sizeof tenant_buf);
    return gw_session_set_upgrade(s, origin, tenant != NULL && tenant[0] != '\0' ? tenant : NULL);
}
