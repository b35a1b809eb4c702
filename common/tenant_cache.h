/* A per-tenant cache of configuration read from MongoDB, kept fresh by revisions in Redis: the
 * service that writes a tenant's configuration bumps field <tenant> of a Redis hash after the
 * write; a refresher thread reads the whole hash every period and reloads the cached tenants
 * whose revision changed, so a change applies on every instance within about a period without
 * a MongoDB query per message. A tenant is loaded on its first use. Values are reference
 * counted: a reload swaps the cache's reference, and the old value lives until the last holder
 * releases it. What a value is belongs to the user (moderation rule sets, notify's settings and
 * webhook endpoints): a load and a free callback. Thread-safe. */
#ifndef CHAT_COMMON_TENANT_CACHE_H
#define CHAT_COMMON_TENANT_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/metrics.h"

typedef struct chat_tcache chat_tcache_t;
/* A held value: valid until chat_tcache_release, even if the tenant is reloaded meanwhile. */
typedef struct chat_tcache_ref chat_tcache_ref_t;

/* Reads tenant's configuration into *value (NULL is a valid value: "nothing configured").
 * Returns CHAT_OK, or the failure's code (logged by the callback; the caller of
 * chat_tcache_get gets it, a refresh keeps the old value). Called without the cache's lock,
 * from the thread of chat_tcache_get or the refresher. */
typedef chat_err_t (*chat_tcache_load_fn)(void *ud, const char *tenant, void **value);
typedef void (*chat_tcache_free_fn)(void *ud, void *value);

typedef struct chat_tcache_conf {
    const char *redis_url; /* the refresher's own connection */
    int timeout_ms;        /* Redis connect and command timeout */
    int refresh_ms;        /* revision poll period (1000 if <= 0) */
    const char *rev_key;   /* the Redis hash of revisions, e.g. "chat:rules:rev" */
    const char *what;      /* for the logs: "moderation rules" */
    chat_tcache_load_fn load;
    chat_tcache_free_fn free;
    void *ud;
    chat_metrics_t *metrics; /* borrowed */
    /* metric names: loads counter, load errors counter, cached tenants gauge */
    const char *loads_metric, *errors_metric, *tenants_metric;
} chat_tcache_conf_t;

/* Creates the cache and starts its refresher. CHAT_ERR_REDIS if Redis cannot be reached
 * (logged), CHAT_ERR_NOMEM. */
chat_err_t chat_tcache_new(const chat_tcache_conf_t *conf, chat_tcache_t **out);

/* Stops the refresher and frees every value. Every reference must have been released. Accepts
 * NULL. */
void chat_tcache_free(chat_tcache_t *c);

/* tenant's value, held (*out). Loads it on the tenant's first use: the load's failure then. */
chat_err_t chat_tcache_get(chat_tcache_t *c, const char *tenant, chat_tcache_ref_t **out);

/* tenant's value, held (*out), only if it is loaded already: never reads the store, so an
 * event loop may call it. CHAT_ERR_NOT_FOUND (*out NULL) if it is not loaded. */
chat_err_t chat_tcache_peek(chat_tcache_t *c, const char *tenant, chat_tcache_ref_t **out);

/* The value of a held reference (may be NULL). */
void *chat_tcache_value(const chat_tcache_ref_t *r);

/* Gives a reference back. Accepts NULL. */
void chat_tcache_release(chat_tcache_ref_t *r);

/* Forgets tenant's value now: the next get loads it again. */
void chat_tcache_invalidate(chat_tcache_t *c, const char *tenant);

/* True while the last revision poll worked (readiness). */
bool chat_tcache_healthy(chat_tcache_t *c);

#endif
