/* JSON Web Tokens as the client protocol uses them: HS256 only, signed by a tenant's backend
 * with the tenant's secret. Claims: tid (tenant), sub (user), exp (required), name and
 * rooms (optional). Server tokens (the tenant's backend calling the server API) carry tid,
 * scope "server", iat and exp instead, and never sub. Verification is constant-time in the
 * signature and rejects every other algorithm, including "none". */
#ifndef CHAT_COMMON_JWT_H
#define CHAT_COMMON_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/names.h"

#define CHAT_JWT_MAX_LEN 8192 /* longer tokens are rejected before any decoding */
#define CHAT_JWT_NAME_MAX CHAT_DISPLAY_NAME_MAX_CHARS /* the name claim, in characters */
#define CHAT_JWT_ROOMS_MAX 256

typedef struct chat_jwt_claims {
    char tenant[CHAT_TENANT_MAX + 1];
    char user[CHAT_USER_MAX * 4 + 1];     /* up to 64 UTF-8 characters */
    char name[CHAT_JWT_NAME_MAX * 4 + 1]; /* "" if absent */
    int64_t exp;                          /* seconds since the epoch */
    bool has_rooms;                       /* false: the token may join any room */
    size_t nrooms;
    char **rooms; /* owned; freed by chat_jwt_claims_clear */
} chat_jwt_claims_t;

/* Reads the tid claim without verifying anything, so the caller can look up that tenant's
 * secret. Returns CHAT_ERR_UNAUTHORIZED if the token is not a well-formed JWT with a valid
 * tid. */
chat_err_t chat_jwt_peek_tenant(const char *token, char *tenant, size_t tenant_len);

/* Verifies token with secret at time now_s (seconds since the epoch): header alg HS256
 * (typ JWT if present), signature, exp > now_s - leeway_s, tid/sub well-formed, name and
 * rooms (array of valid room names) well-formed if present. On success fills *out (caller
 * calls chat_jwt_claims_clear). Every failure is CHAT_ERR_UNAUTHORIZED with a reason in
 * reason (may be NULL) that is safe to log (never the token or the secret). */
chat_err_t chat_jwt_verify(const char *token, const void *secret, size_t secret_len, int64_t now_s,
                           int64_t leeway_s, chat_jwt_claims_t *out, char *reason,
                           size_t reason_len);

/* True if the claims allow room: no rooms claim, or room is listed. */
bool chat_jwt_claims_allow_room(const chat_jwt_claims_t *c, const char *room);

/* Frees rooms and zeroes the struct. */
void chat_jwt_claims_clear(chat_jwt_claims_t *c);

/* Signs claims (tid, sub, exp, name if not empty, rooms if has_rooms) with HS256.
 * *out is malloc'd; the caller frees it. For tools, tests and benchmarks. */
chat_err_t chat_jwt_sign(const chat_jwt_claims_t *c, const void *secret, size_t secret_len,
                         char **out);

/* ---- server tokens (the server API) ---- */

#define CHAT_JWT_SERVER_SCOPE "server"
#define CHAT_JWT_SERVER_TTL_MAX 300 /* exp may be at most this many seconds after iat */

typedef struct chat_jwt_server_claims {
    char tenant[CHAT_TENANT_MAX + 1];
    int64_t iat; /* seconds since the epoch */
    int64_t exp;
} chat_jwt_server_claims_t;

/* Verifies a server token with secret at time now_s: header and signature as chat_jwt_verify,
 * then scope "server", no sub (a user token never acts as the server), a valid tid, integral
 * iat and exp with iat < exp <= iat + CHAT_JWT_SERVER_TTL_MAX, exp > now_s - leeway_s,
 * iat <= now_s + leeway_s (not issued in the future), nbf honoured if present. Fills *out.
 * Every failure is CHAT_ERR_UNAUTHORIZED with a reason safe to log (reason may be NULL). */
chat_err_t chat_jwt_server_verify(const char *token, const void *secret, size_t secret_len,
                                  int64_t now_s, int64_t leeway_s, chat_jwt_server_claims_t *out,
                                  char *reason, size_t reason_len);

/* Signs a server token {tid, scope: "server", iat, exp} with HS256. CHAT_ERR_INVALID for a bad
 * tenant, an empty secret or exp outside (iat, iat + CHAT_JWT_SERVER_TTL_MAX]. *out is
 * malloc'd; the caller frees it. For the tenant's backend, tools and tests. */
chat_err_t chat_jwt_server_sign(const chat_jwt_server_claims_t *c, const void *secret,
                                size_t secret_len, char **out);

/* ---- unpadded base64url (RFC 4648 section 5), as tokens use it ---- */

/* Encodes src[0..len) into a malloc'd NUL-terminated string; NULL when out of memory. */
char *chat_jwt_b64url_encode(const void *src, size_t len);

/* Decodes strict unpadded base64url (no padding, no other characters, unused bits zero)
 * into a malloc'd buffer of *out_len bytes plus a NUL; NULL if src is not such a text or
 * memory runs out. */
unsigned char *chat_jwt_b64url_decode(const char *src, size_t len, size_t *out_len);

#endif
