/* Tenant records in MongoDB (`tenants`: {_id: id, secret, name?, created}): what gateways
 * verify tokens against, written by chat-admin. */
#ifndef CHAT_COMMON_TENANTS_H
#define CHAT_COMMON_TENANTS_H

#include <stddef.h>

#include "common/err.h"
#include "common/store.h"

/* Creates the tenant or replaces its secret and name (name may be NULL: left as it is).
 * Returns CHAT_ERR_INVALID for a bad id or an empty secret. */
chat_err_t chat_tenant_put(chat_store_t *s, const char *id, const char *secret, const char *name);

/* Looks up the tenant's HS256 secret: *secret is malloc'd (the caller frees it), *len its
 * length. CHAT_ERR_NOT_FOUND if there is no such tenant or it has no secret; on a MongoDB
 * failure (logged with the tenant) its mapped code, never CHAT_ERR_NOT_FOUND. */
chat_err_t chat_tenant_secret(chat_store_t *s, const char *id, char **secret, size_t *len);

#endif
