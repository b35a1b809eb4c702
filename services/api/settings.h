/* A tenant's settings (GET/PATCH /v1/settings; MongoDB `settings`, one document per tenant):
 * the api's typed view (api.h: api_settings_t) of a settings object, unit-tested. */
#ifndef CHAT_API_SETTINGS_H
#define CHAT_API_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "services/api/api.h"

#define API_SETTINGS_CACHE_MS 2000 /* api_settings_get answers from a copy at most this old */

/* The typed view of a whole settings object (missing parts take the defaults); the document
 * itself (defaults, validation, merge) is common/tenant_settings.h's. */
void api_settings_from_json(const cJSON *settings, api_settings_t *out);

#endif
