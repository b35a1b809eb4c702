/* Standard Webhooks signing (https://www.standardwebhooks.com, docs/notify.md): secrets
 * "whsec_<base64 of 24..64 random bytes>", the signature "v1,<base64 of HMAC-SHA256(key,
 * "<id>.<timestamp>.<body>")>", several space-separated while a rotated secret still signs, and
 * the webhook-id of an event. What any Standard Webhooks library verifies. Pure; thread-safe. */
#ifndef CHAT_COMMON_WHSIGN_H
#define CHAT_COMMON_WHSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CHAT_WHSIGN_SECRET_PREFIX "whsec_"
#define CHAT_WHSIGN_SECRET_BYTES 32 /* what chat_whsign_secret_new draws */
#define CHAT_WHSIGN_SECRETS_MAX 2   /* the current one and, for a day after a rotation, the old */

/* A new secret "whsec_<base64 of 32 random bytes>" (malloc'd), NULL if out of memory or the
 * random source failed (logged). */
char *chat_whsign_secret_new(void);

/* True if s is a secret this module can sign with: the prefix and standard base64 of 24 to 64
 * bytes. */
bool chat_whsign_secret_valid(const char *s);

/* The webhook-signature header value for body signed with each of the n secrets (newest
 * first): "v1,<sig> v1,<sig>" (malloc'd). CHAT_ERR_INVALID if a secret is not valid or n is 0
 * or more than CHAT_WHSIGN_SECRETS_MAX. */
chat_err_t chat_whsign_sign(const char *const *secrets, size_t n, const char *msg_id,
                            int64_t timestamp, const void *body, size_t len, char **out);

/* The webhook-id of an event: "msg_" and 32 hex characters of SHA-256 of the identity string
 * (e.g. "acme/message.new/lobby/42"), so that every replay and every instance gives the same
 * id. buf: at least 37 bytes. */
void chat_whsign_msg_id(const char *identity, char buf[37]);

#endif
