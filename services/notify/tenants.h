/* Per-tenant configuration notify needs, cached (docs/notify.md, "Tenant configuration in
 * notify"): the settings (push enabled, email sender, digest delay) and the webhook endpoints.
 * Loaded from MongoDB on a tenant's first use; a refresher thread reads the Redis hash
 * chat:notify:rev every refresh period and reloads the tenants whose revision changed. Shared
 * by the pipeline and the senders (thread-safe). The api bumps the revisions
 * (chat_notify_rev_bump, common/notify_store.h). */
#ifndef CHAT_NOTIFY_TENANTS_H
#define CHAT_NOTIFY_TENANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "common/store.h"
#include "common/whsign.h"

typedef struct nt_endpoint {
    char *id; /* "wh_..." */
    char *url;
    unsigned events; /* chat_webhook_event_t bits */
    bool enabled;
    char *secrets[CHAT_WHSIGN_SECRETS_MAX]; /* newest first, only those still valid */
    size_t nsecrets;
    int64_t failing_since; /* ms, 0 if not failing */
} nt_endpoint_t;

typedef struct nt_tenant {
    char *tenant;
    bool push_enabled;
    char *email_from;         /* NULL: no emails */
    int64_t digest_delay_ms;  /* email.digest_delay_s * 1000 */
    nt_endpoint_t *endpoints; /* enabled ones only */
    size_t nendpoints;
    int64_t rev;
} nt_tenant_t;

typedef struct nt_cache nt_cache_t;

typedef struct nt_cache_conf {
    chat_store_t *store;   /* borrowed */
    const char *redis_url; /* the refresher's own connection */
    int timeout_ms;
    int refresh_ms;
    chat_metrics_t *metrics;
} nt_cache_conf_t;

chat_err_t nt_cache_new(const nt_cache_conf_t *conf, nt_cache_t **out);
void nt_cache_free(nt_cache_t *c);

/* tenant's configuration, held until nt_tenant_release (valid even if it is reloaded
 * meanwhile). Loads it on first use: the MongoDB failure's code then. */
chat_err_t nt_cache_get(nt_cache_t *c, const char *tenant, const nt_tenant_t **out);
void nt_tenant_release(nt_cache_t *c, const nt_tenant_t *t);

/* The endpoint id of tenant's configuration, NULL if it is not (or no longer) enabled. */
const nt_endpoint_t *nt_tenant_endpoint(const nt_tenant_t *t, const char *id);

/* Forget tenant's configuration now (a sender disabled one of its endpoints). */
void nt_cache_invalidate(nt_cache_t *c, const char *tenant);

bool nt_cache_healthy(nt_cache_t *c);

#endif
