/* A tenant's settings (GET/PATCH /v1/settings; MongoDB `settings`, one document per tenant):
 * the pure parts, unit-tested: the defaults, the validation and merge of a PATCH, and the
 * typed view (api.h: api_settings_t) of a settings object. */
#ifndef CHAT_API_SETTINGS_H
#define CHAT_API_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "services/api/api.h"

#define API_SETTINGS_COLLECTION "settings"
#define API_SETTINGS_ORIGINS_MAX 100 /* allowed_origins entries */
#define API_SETTINGS_ORIGIN_MAX 255  /* bytes of one origin */
#define API_SETTINGS_CACHE_MS 2000   /* api_settings_get answers from a copy at most this old */

/* The settings of a tenant that never set any: {allowed_origins: [], limits: {...}, push:
 * {enabled}, email: {from: null, digest_delay_s}}. A new object (caller deletes); NULL if out
 * of memory. */
cJSON *api_settings_defaults(void);

/* Validates patch (a PATCH body) and merges it into settings (a whole settings object,
 * changed in place only on success): allowed_origins replaced, limits, push and email merged
 * field by field (email.from null clears it). Returns false with the reason, naming the field
 * ("limits.connections must be an integer from 1 to 1000000", "unknown field push.x"), in
 * error; settings is then unchanged. */
bool api_settings_merge(cJSON *settings, const cJSON *patch, char *error, size_t errlen);

/* "scheme://host[:port]": a lowercase scheme and host (a DNS name, an IPv4 address or a
 * bracketed IPv6 address), an optional port 1-65535, no path, no trailing slash. */
bool api_settings_origin_valid(const char *s);

/* local@domain: at most 254 bytes, printable, no spaces, a domain with a dot. */
bool api_settings_email_valid(const char *s);

/* The typed view of a whole settings object (missing parts take the defaults). */
void api_settings_from_json(const cJSON *settings, api_settings_t *out);

#endif
