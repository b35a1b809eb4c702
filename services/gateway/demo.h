/* The local demo's endpoints (docs/widget.md, "The demo"): tokens for any user of the demo
 * tenant, signed with its secret, and the list of gateways the demo page connects to. Only
 * the local stack configures it (CHAT_DEMO_TENANT and CHAT_DEMO_SECRET, both); everywhere
 * else the demo does not exist and its paths are unknown URLs. Read-only after creation;
 * internal to services/gateway. */
#ifndef CHAT_GATEWAY_DEMO_H
#define CHAT_GATEWAY_DEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define GW_DEMO_USER_MAX 32      /* a demo user: [a-z0-9_-]{1,32} */
#define GW_DEMO_TOKEN_TTL_S 3600 /* a demo token's lifetime */

typedef struct gw_demo gw_demo_t;

/* Sets up the demo from its variables (copied). Both tenant and secret empty, or either
 * one empty (logged as a warning): *out is NULL, the demo is off. A tenant that is not a
 * valid tenant id, or a gateways list (comma-separated) with an entry that is not a ws:// or
 * wss:// URL, is logged as an error naming its variable and returns CHAT_ERR_CONFIG. When
 * on, logs once at warn level that the demo endpoints are enabled (never the secret). *out
 * is freed with gw_demo_free. */
chat_err_t gw_demo_new(const char *tenant, const char *secret, const char *gateways,
                       gw_demo_t **out);

/* Frees d; accepts NULL. */
void gw_demo_free(gw_demo_t *d);

/* True if user is a demo user name: 1 to GW_DEMO_USER_MAX of [a-z0-9_-]. */
bool gw_demo_user_valid(const char *user);

/* The answer of /v1/demo/token?user=user at now_s (seconds since the epoch):
 * {"token", "exp", "user", "tenant"}, token an HS256 JWT with tid = the demo tenant, sub =
 * user, name = user capitalised, exp = now_s + GW_DEMO_TOKEN_TTL_S. CHAT_ERR_INVALID if user
 * is not gw_demo_user_valid; CHAT_ERR_NOMEM. *out (malloc'd, *len bytes plus a NUL) is the
 * caller's to free. */
chat_err_t gw_demo_token_json(const gw_demo_t *d, const char *user, int64_t now_s, char **out,
                              size_t *len);

/* The answer of /v1/demo/config: {"tenant", "gateways": [...]}, the configured gateways or,
 * without them, ws://<host>/v1/ws with host the request's Host (used only if it looks like a
 * host[:port]) or else fallback_host. *out (malloc'd, *len bytes plus a NUL) is the caller's
 * to free. CHAT_ERR_NOMEM. */
chat_err_t gw_demo_config_json(const gw_demo_t *d, const char *host, const char *fallback_host,
                               char **out, size_t *len);

#endif
