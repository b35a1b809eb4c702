/* A tenant's settings document (MongoDB `settings`, one per tenant: {_id: tenant,
 * allowed_origins, limits, push, email, updated}), shared by the api (GET/PATCH /v1/settings),
 * the gateway (allowed origins, limits) and chat-admin: the defaults, the validation and merge
 * of a change, the typed views enforcement reads, the document's read and write, and the
 * revision that announces a change (a field per tenant of the Redis hash CHAT_SETTINGS_REV_KEY,
 * polled by common/tenant_cache.h). */
#ifndef CHAT_COMMON_TENANT_SETTINGS_H
#define CHAT_COMMON_TENANT_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/redis.h"
#include "common/store.h"

#define CHAT_SETTINGS_COLLECTION "settings"
#define CHAT_SETTINGS_REV_KEY "chat:settings:rev" /* tenant -> revision (a counter) */
#define CHAT_SETTINGS_ORIGINS_MAX 100             /* allowed_origins entries */
#define CHAT_SETTINGS_ORIGIN_MAX 255              /* bytes of one origin */

/* The limits of a tenant (settings.limits), each within its bounds. */
typedef struct chat_settings_limits {
    long long connections;      /* open connections of the tenant, all gateways together */
    long long messages_per_s;   /* messages sent by all its users together */
    long long api_calls_per_s;  /* server API calls */
    long long members_per_room; /* checked when members are added */
    long long rooms;            /* private rooms not deleted, checked when one is created */
} chat_settings_limits_t;

/* What a gateway enforces for a tenant: its limits and allowed origins. */
typedef struct chat_settings_policy {
    chat_settings_limits_t limits;
    char **origins; /* allowed_origins (lowercase); none: any origin */
    size_t norigins;
} chat_settings_policy_t;

/* The settings of a tenant that never set any: {allowed_origins: [], limits: {...}, push:
 * {enabled}, email: {from: null, digest_delay_s}}. A new object (caller deletes); NULL if out
 * of memory. */
cJSON *chat_settings_defaults(void);

/* Sets limits.name of settings (a whole settings object) to value when value is within the
 * setting's bounds (a service's own default, e.g. the api's CHAT_API_RATE); else leaves it. */
void chat_settings_limit_default(cJSON *settings, const char *name, long long value);

/* Validates patch (a PATCH body) and merges it into settings (a whole settings object,
 * changed in place only on success): allowed_origins replaced, limits, push and email merged
 * field by field (email.from null clears it). Returns false with the reason, naming the field
 * ("limits.connections must be an integer from 1 to 1000000", "unknown field push.x"), in
 * error; settings is then unchanged. */
bool chat_settings_merge(cJSON *settings, const cJSON *patch, char *error, size_t errlen);

/* "scheme://host[:port]": a lowercase scheme and host (a DNS name, an IPv4 address or a
 * bracketed IPv6 address), an optional port 1-65535, no path, no trailing slash. */
bool chat_settings_origin_valid(const char *s);

/* local@domain: at most 254 bytes, printable, no spaces, a domain with a dot. */
bool chat_settings_email_valid(const char *s);

/* The limits of a whole settings object (missing or bad ones take the defaults). */
void chat_settings_limits_from_json(const cJSON *settings, chat_settings_limits_t *out);

/* The policy of a whole settings object (*out filled; free with chat_settings_policy_clear).
 * CHAT_ERR_NOMEM. */
chat_err_t chat_settings_policy_from_json(const cJSON *settings, chat_settings_policy_t *out);
void chat_settings_policy_clear(chat_settings_policy_t *p);

/* Whether a browser whose page is at origin (the Origin header, as sent) may connect: true
 * when the list is empty (any origin) or holds origin (compared without case). origin NULL
 * (no header: not a browser) is allowed too -- Origin protects browsers' users only. */
bool chat_settings_origin_allowed(const chat_settings_policy_t *p, const char *origin);

/* What tenant stored: its document without _id and updated (*stored, a new object; empty if
 * it set nothing), and when (*updated, 0 if never). CHAT_ERR_MONGO and the like (logged);
 * *stored is then an empty object (NULL only if out of memory). */
chat_err_t chat_settings_read(chat_store_t *store, const char *tenant, cJSON **stored,
                              int64_t *updated);

/* Replaces tenant's document with stored (what it set) at time updated (ms). Logged on a
 * failure. */
chat_err_t chat_settings_write(chat_store_t *store, const char *tenant, const cJSON *stored,
                               int64_t updated);

/* The settings in effect: stored (what the tenant set, may be NULL) over defaults (a whole
 * settings object, unchanged). A new object (NULL if out of memory). What is stored passed the
 * validation when it was written; a document that does not any more leaves the defaults in
 * effect (logged) rather than failing. */
cJSON *chat_settings_effective(const cJSON *defaults, const char *tenant, const cJSON *stored);

/* Announces a change of tenant's settings: bumps its revision (HINCRBY). CHAT_ERR_REDIS. */
chat_err_t chat_settings_rev_bump(chat_redis_t *r, const char *tenant);

#endif
