/* The tenants' compiled rule sets, shared by the checking thread and a refresher thread. A
 * tenant's set is loaded from MongoDB `rules` the first time one of its messages is checked
 * (a tenant without rules is remembered as such); the refresher reads the revision hash in
 * Redis (common/mod_record.h) every second and reloads the tenants whose revision changed, so a
 * `PUT /v1/moderation/rules` applies on every instance within about a second, without a
 * MongoDB query per message. Compiling happens on the refresher, off the checking path. */
#ifndef CHAT_MODERATION_RULES_CACHE_H
#define CHAT_MODERATION_RULES_CACHE_H

#include <stdint.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/modrules.h"
#include "common/store.h"

typedef struct mod_rules_cache mod_rules_cache_t;
/* A held rule set: valid until mod_rules_release, even if the tenant's rules change meanwhile. */
typedef struct mod_rules mod_rules_t;

typedef struct mod_rules_cache_conf {
    chat_store_t *store;     /* borrowed, thread-safe pool */
    const char *redis_url;   /* the refresher opens its own connection */
    int timeout_ms;          /* Redis connect and command timeout */
    int refresh_ms;          /* revision poll period (1000) */
    chat_metrics_t *metrics; /* borrowed */
} mod_rules_cache_conf_t;

/* Creates the cache and starts its refresher thread. CHAT_ERR_REDIS if Redis cannot be
 * reached (logged), CHAT_ERR_NOMEM. */
chat_err_t mod_rules_cache_new(const mod_rules_cache_conf_t *conf, mod_rules_cache_t **out);

/* Stops the refresher and frees. Every held rule set must have been released. Accepts NULL. */
void mod_rules_cache_free(mod_rules_cache_t *c);

/* The tenant's rule set, held (*out = NULL: the tenant has no rules, nothing to check). Loads it
 * from MongoDB on the tenant's first use; returns the MongoDB failure's code then (the caller
 * retries the batch). A stored rule set that no longer compiles (rules written by an older
 * version) is logged and treated as none. */
chat_err_t mod_rules_cache_get(mod_rules_cache_t *c, const char *tenant, mod_rules_t **out);

const chat_mod_rules_t *mod_rules_compiled(const mod_rules_t *r);
int64_t mod_rules_rev(const mod_rules_t *r);

/* Gives a held rule set back. Accepts NULL. */
void mod_rules_release(mod_rules_t *r);

/* True while the last revision poll worked (readiness). */
bool mod_rules_cache_healthy(mod_rules_cache_t *c);

#endif
