/* Web Push without a vendor SDK (docs/notify.md, "Sending"): the message encryption of RFC 8291
 * (aes128gcm content coding of RFC 8188: ECDH P-256 with the subscription's p256dh key,
 * HKDF-SHA-256 with its auth secret, one record) and the VAPID authorization of RFC 8292 (an
 * ES256 JWT with the raw r||s signature). OpenSSL 3. Thread-safe: every call uses only its
 * arguments. */
#ifndef CHAT_COMMON_WEBPUSH_H
#define CHAT_COMMON_WEBPUSH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CHAT_WEBPUSH_P256DH_LEN 65 /* uncompressed P-256 point: 0x04 || X || Y */
#define CHAT_WEBPUSH_AUTH_LEN 16   /* the subscription's auth secret */
#define CHAT_WEBPUSH_SALT_LEN 16
#define CHAT_WEBPUSH_RECORD_MAX 4096 /* the one record we send: header excluded */
/* The header of an aes128gcm body: salt (16), record size (4), key id length (1), the
 * sender's public key (65). */
#define CHAT_WEBPUSH_HEADER_LEN (16 + 4 + 1 + 65)
/* The most plaintext one record carries: the record size minus the tag (16) and the padding
 * delimiter (1). */
#define CHAT_WEBPUSH_PLAINTEXT_MAX (CHAT_WEBPUSH_RECORD_MAX - 16 - 1)

/* A subscription's keys, decoded. */
typedef struct chat_webpush_keys {
    unsigned char p256dh[CHAT_WEBPUSH_P256DH_LEN];
    unsigned char auth[CHAT_WEBPUSH_AUTH_LEN];
} chat_webpush_keys_t;

/* Decodes and checks the keys of a push subscription as a browser gives them (base64url,
 * padded or not): p256dh must be an uncompressed point on P-256, auth 16 bytes. Returns
 * CHAT_OK, or CHAT_ERR_INVALID with the reason in errbuf ("keys.p256dh: not a P-256 point"). */
chat_err_t chat_webpush_keys_parse(const char *p256dh_b64, const char *auth_b64,
                                   chat_webpush_keys_t *out, char *errbuf, size_t errlen);

/* Optional fixed inputs of an encryption, for the RFC 8291 test vector: the sender's
 * ephemeral private key (32 bytes) and the salt. Production passes NULL: both random. */
typedef struct chat_webpush_fixed {
    const unsigned char *sender_private; /* 32 bytes */
    const unsigned char *salt;           /* 16 bytes */
} chat_webpush_fixed_t;

/* Encrypts plaintext[0..len) for the subscription: *out (malloc'd, *outlen bytes) is the whole
 * request body (header, then one record: plaintext, the 0x02 delimiter, the tag; record size
 * 4096). CHAT_ERR_TOO_LARGE if len > CHAT_WEBPUSH_PLAINTEXT_MAX; CHAT_ERR_IO if OpenSSL
 * failed (logged). */
chat_err_t chat_webpush_encrypt(const chat_webpush_keys_t *keys, const void *plaintext, size_t len,
                                const chat_webpush_fixed_t *fixed, unsigned char **out,
                                size_t *outlen);

/* ---- VAPID (RFC 8292) ---- */

typedef struct chat_vapid chat_vapid_t;

/* Loads the deployment's key pair from the base64url private key (the 32-byte P-256 scalar,
 * as `chat-admin vapid generate` prints it); the public key is derived. CHAT_ERR_CONFIG with
 * the reason in errbuf for a key that is not one. */
chat_err_t chat_vapid_load(const char *private_b64url, chat_vapid_t **out, char *errbuf,
                           size_t errlen);
void chat_vapid_free(chat_vapid_t *v);

/* The public key, base64url without padding (65-byte uncompressed point): what `welcome.vapid`
 * carries and a browser's PushManager.subscribe takes as applicationServerKey. Borrowed. */
const char *chat_vapid_public_b64(const chat_vapid_t *v);

/* The Authorization header value "vapid t=<jwt>, k=<public key>" for a push to endpoint: the
 * JWT's aud is the endpoint's origin (scheme://host[:port]), sub the subject (a mailto: or
 * https: URL), exp the given time (seconds; at most 24 h ahead). *out malloc'd.
 * CHAT_ERR_INVALID for an endpoint that is not an absolute http(s) URL. */
chat_err_t chat_vapid_authorization(const chat_vapid_t *v, const char *endpoint,
                                    const char *subject, int64_t exp, char **out);

/* Generates a new key pair: both halves base64url (private: 32 bytes, public: 65), malloc'd. */
chat_err_t chat_vapid_generate(char **private_b64url, char **public_b64url);

/* The Topic header of a room's notifications: 32 base64url characters of SHA-256(tenant "/"
 * room), so that the push service keeps one pending notification per room. buf: 33 bytes. */
void chat_webpush_topic(const char *tenant, const char *room, char buf[33]);

#endif
