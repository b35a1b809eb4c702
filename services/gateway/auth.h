/* Verifying a client's JWT (auth and refresh frames): the tenant named by the token's tid is looked
 * up (its HS256 secret, cached: hits for the configured TTL, misses for a few seconds;
 * misses of one tenant that arrive while its lookup runs wait for that lookup, so a burst
 * of reconnects costs one MongoDB read per tenant) and the token is verified with
 * chat_jwt_verify (common/jwt.h). gw_auth_verify is thread-safe: worker threads call it
 * concurrently; gw_auth_submit (auth frames) and gw_auth_refresh_submit (refresh frames) run
 * it on a worker for a session and answer on the loop. */
#ifndef CHAT_GATEWAY_AUTH_H
#define CHAT_GATEWAY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/jwt.h"
#include "services/gateway/session.h"

#define GW_AUTH_MISS_TTL_MS 5000
#define GW_AUTH_REASON_MAX 128

/* Fetches a tenant's secret: CHAT_OK with *secret malloc'd (*len bytes, NUL-terminated),
 * CHAT_ERR_NOT_FOUND if there is no such tenant, any other code if the store failed. */
typedef chat_err_t (*gw_secret_lookup_fn)(void *ud, const char *tenant, char **secret, size_t *len);

typedef struct gw_auth gw_auth_t;

/* NULL if out of memory. lookup runs on the calling (worker) thread, outside the lock. */
gw_auth_t *gw_auth_new(int64_t hit_ttl_ms, int64_t miss_ttl_ms, gw_secret_lookup_fn lookup,
                       void *ud);

void gw_auth_free(gw_auth_t *a);

/* Verifies token at now_ms (ms since the epoch). CHAT_OK fills *out (the caller clears
 * it). CHAT_ERR_UNAUTHORIZED for a malformed, forged or expired token or an unknown tenant,
 * with a client-safe reason. Any other code means the secret could not be read (store
 * failure): the client should retry. */
chat_err_t gw_auth_verify(gw_auth_t *a, const char *token, int64_t now_ms, chat_jwt_claims_t *out,
                          char *reason, size_t reason_len);

/* gw_auth_verify without ever waiting: CHAT_ERR_TIMEOUT if the token's tenant is not in the
 * cache (neither its secret nor a recent miss), so that a lookup is needed. */
chat_err_t gw_auth_verify_cached(gw_auth_t *a, const char *token, int64_t now_ms,
                                 chat_jwt_claims_t *out, char *reason, size_t reason_len);

struct gw_gateway;

/* Verifies the token of session s's auth frame and answers through gw_session_auth_done:
 * at once on the loop if its tenant's secret is cached; otherwise on one of the gateway's
 * auth workers (which do nothing but tenant lookups, so auth never waits behind joins) and
 * then on the loop; at once with CHAT_ERR_NOMEM if the job could not be made. */
void gw_auth_submit(struct gw_gateway *gw, gw_session_t *s, const char *token);

/* The same for the token of a refresh frame of a READY session: verified at once or on an
 * auth worker, answered through gw_session_refresh_done (dropped if the connection closed
 * meanwhile) and logged at debug. */
void gw_auth_refresh_submit(struct gw_gateway *gw, gw_session_t *s, const char *token);

#endif
