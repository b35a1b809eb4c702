/* A tenant's policy at the gateway: its settings (common/tenant_settings.h) in a per-tenant
 * cache kept fresh by the settings revision (common/tenant_cache.h), and the checks made with
 * them. Allowed origins: at the upgrade, when the client names its tenant (?tenant=<id>) and
 * that tenant's settings are cached, a foreign Origin is refused with HTTP 403 before any
 * frame; at auth, always (the parameter may be omitted), the Origin kept from the upgrade is
 * checked against the token's tenant (error forbidden, close 4004), and a ?tenant= that is not
 * the token's is refused (error unauthorized, close 4001). A request without Origin (not a
 * browser) passes; an empty list allows any origin. The loop never reads MongoDB: it only
 * peeks at the cache, and a tenant not cached is loaded by the auth workers.
 * Connections quota (limits.connections): the tenant's authenticated connections over every
 * gateway, counted through Redis (common/fleet_count.h: each gateway's exact count, the
 * others' about a period old), checked before welcome: at the limit, error rate_limited and
 * close 4003. Messages (limits.messages_per_s): each gateway takes the share of the rate its
 * connections of the tenant make of all of them, so no send waits for Redis. */
#ifndef CHAT_GATEWAY_POLICY_H
#define CHAT_GATEWAY_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/store.h"
#include "common/tenant_label.h"
#include "services/gateway/session.h"

struct lws;
struct gw_gateway;

typedef struct gw_policy gw_policy_t;

typedef struct gw_policy_conf {
    const char *redis_url; /* the cache's revision poll */
    int timeout_ms;
    int refresh_ms; /* CHAT_GATEWAY_SETTINGS_REFRESH */
    chat_store_t *store;
    chat_metrics_t *metrics;
    chat_tenant_labels_t *labels; /* the gateway's tenant labels */
    const char *instance;         /* the gateway id: its counts in Redis */
    int count_period_ms;          /* CHAT_GATEWAY_QUOTA_PERIOD: counts shared this often */
} gw_policy_conf_t;

chat_err_t gw_policy_new(const gw_policy_conf_t *conf, gw_policy_t **out);
void gw_policy_free(gw_policy_t *p); /* accepts NULL */
bool gw_policy_healthy(gw_policy_t *p);

/* The outcome of a check at auth. */
typedef enum gw_admit {
    GW_ADMIT_OK = 0,
    GW_ADMIT_UNKNOWN,        /* cached_only and the tenant is not cached: ask a worker */
    GW_ADMIT_TENANT_DIFFERS, /* ?tenant= is not the token's tenant */
    GW_ADMIT_ORIGIN,         /* the Origin is not allowed */
    GW_ADMIT_UNAVAILABLE,    /* the settings could not be read (an Origin needs them) */
    GW_ADMIT_CONNECTIONS,    /* the tenant's limits.connections is reached */
} gw_admit_t;

/* Checks a verified token's tenant against what the upgrade carried (origin, asked_tenant:
 * NULL if absent). cached_only: never reads the store (the loop). Any thread. */
gw_admit_t gw_policy_admit(gw_policy_t *p, const char *tenant, const char *origin,
                           const char *asked_tenant, bool cached_only);

/* The tenant's connections quota, for a verified token about to be welcomed: CONNECTIONS
 * when its open connections over all gateways (chat_fleet_total: this gateway's exact, the
 * others' as of the last round) are at limits.connections already, else OK (also when its
 * settings are not cached: never on a first connection of a tenant here). Loop only. */
gw_admit_t gw_policy_quota(gw_policy_t *p, const char *tenant);

/* Whether tenant may send one more message now: a token bucket per tenant whose rate is this
 * gateway's share of limits.messages_per_s, in proportion to the tenant's connections here
 * among all of them (all of it when the counts show none elsewhere); burst: one second of
 * that share, at least 1. Counted per tenant when false. Loop only. */
bool gw_policy_send(gw_policy_t *p, const char *tenant);

/* An authenticated connection of tenant opened (+1) or closed (-1) here. Loop only. */
void gw_policy_conn_note(gw_policy_t *p, const char *tenant, int delta);

/* Refuses session s (authenticating) for outcome a (not OK, not UNKNOWN) of tenant: the
 * error frame, the close and the count. Loop only. */
void gw_policy_refuse(gw_policy_t *p, gw_session_t *s, const char *tenant, gw_admit_t a);

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE of /v1/ws: 0 to go on, 1 when a 403 was sent (a foreign
 * Origin for the cached settings of ?tenant=), -1 to drop the socket. Loop only. */
int gw_policy_upgrade(struct gw_gateway *gw, struct lws *wsi);

/* LWS_CALLBACK_ESTABLISHED: keeps the upgrade's Origin and ?tenant= in session s for the
 * check at auth. False if out of memory. */
bool gw_policy_conn_open(struct lws *wsi, gw_session_t *s);

#endif
