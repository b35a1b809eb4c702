/* Tenant records in MongoDB (`tenants`: {_id: id, secret, name?, created}): what gateways
 * verify tokens against. */
#ifndef CHAT_ADMIN_TENANTS_H
#define CHAT_ADMIN_TENANTS_H

#include <stddef.h>

#include "common/err.h"
#include "common/store.h"

/* Creates the tenant or replaces its secret and name (name may be NULL: left as it is).
 * Returns CHAT_ERR_INVALID for a bad id or an empty secret. */
chat_err_t chat_tenant_put(chat_store_t *s, const char *id, const char *secret, const char *name);

/* Copies the tenant's secret into buf. CHAT_ERR_NOT_FOUND if there is no such tenant,
 * CHAT_ERR_TOO_LARGE if buf is too small. */
chat_err_t chat_tenant_secret(chat_store_t *s, const char *id, char *buf, size_t len);

#endif
