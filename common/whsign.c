/* Standard Webhooks signing (see whsign.h): the HMAC key is the decoded secret, not its text,
 * and the signed content is "<id>.<timestamp>.<body>" with the body's bytes as sent, so that
 * any Standard Webhooks library (which does exactly this) verifies our requests. */
#include "common/whsign.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/log.h"

#define SECRET_MIN_BYTES 24
#define SECRET_MAX_BYTES 64
#define MAC_LEN 32                          /* HMAC-SHA256 */
#define MAC_B64_LEN ((MAC_LEN + 2) / 3 * 4) /* 44 */
#define PREFIX_LEN (sizeof CHAT_WHSIGN_SECRET_PREFIX - 1)

/* The value of a standard base64 character, -1 for anything else (including '='). */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes strict padded standard base64 (RFC 4648 section 4: groups of four, '=' only to
 * complete the last one, unused bits zero, so one text per byte string) into out, which has
 * room for cap bytes. Returns the number of bytes, or -1 if src is not such a text or does
 * not fit. */
static long b64_decode(const char *src, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    size_t pad = src[len - 1] == '=' ? (src[len - 2] == '=' ? 2 : 1) : 0;
    size_t n = len / 4 * 3 - pad;
    if (n > cap)
        return -1;
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < len - pad; i++) {
        int v = b64_value((unsigned char)src[i]);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    /* The last, incomplete group: 2 characters carry one byte (4 unused bits), 3 carry two
     * (2 unused bits). */
    if (pad == 2) {
        if ((acc & 0x0f) != 0)
            return -1;
        out[o++] = (unsigned char)(acc >> 4);
    } else if (pad == 1) {
        if ((acc & 0x03) != 0)
            return -1;
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    return (long)o;
}

/* Decodes a secret's key into key (SECRET_MAX_BYTES). Returns its length, -1 if s is not a
 * secret of this module. */
static long secret_key(const char *s, unsigned char key[SECRET_MAX_BYTES])
{
    if (s == NULL || strncmp(s, CHAT_WHSIGN_SECRET_PREFIX, PREFIX_LEN) != 0)
        return -1;
    long n = b64_decode(s + PREFIX_LEN, strlen(s + PREFIX_LEN), key, SECRET_MAX_BYTES);
    return n >= SECRET_MIN_BYTES ? n : -1;
}

char *chat_whsign_secret_new(void)
{
    unsigned char key[CHAT_WHSIGN_SECRET_BYTES];
    if (RAND_bytes(key, sizeof key) != 1) {
        chat_log_error("no random bytes for a webhook secret");
        return NULL;
    }
    char *out = malloc(PREFIX_LEN + (sizeof key + 2) / 3 * 4 + 1);
    if (out != NULL) {
        memcpy(out, CHAT_WHSIGN_SECRET_PREFIX, PREFIX_LEN);
        EVP_EncodeBlock((unsigned char *)out + PREFIX_LEN, key, (int)sizeof key);
    }
    OPENSSL_cleanse(key, sizeof key);
    return out;
}

bool chat_whsign_secret_valid(const char *s)
{
    unsigned char key[SECRET_MAX_BYTES];
    bool ok = secret_key(s, key) > 0;
    OPENSSL_cleanse(key, sizeof key);
    return ok;
}

/* HMAC-SHA256 keyed with key over "<msg_id>.<timestamp>.<body>", fed in pieces so the body
 * is not copied. Returns false if OpenSSL failed. */
static bool signature(EVP_MAC *mac, const unsigned char *key, size_t key_len, const char *msg_id,
                      const char *ts, const void *body, size_t len, unsigned char out[MAC_LEN])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL)
        return false;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    size_t out_len = 0;
    bool ok = EVP_MAC_init(ctx, key, key_len, params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)".", 1) == 1 &&
              (len == 0 || EVP_MAC_update(ctx, body, len) == 1) &&
              EVP_MAC_final(ctx, out, &out_len, MAC_LEN) == 1 && out_len == MAC_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok;
}

chat_err_t chat_whsign_sign(const char *const *secrets, size_t n, const char *msg_id,
                            int64_t timestamp, const void *body, size_t len, char **out)
{
    *out = NULL;
    if (secrets == NULL || n == 0 || n > CHAT_WHSIGN_SECRETS_MAX || msg_id == NULL ||
        (body == NULL && len > 0))
        return CHAT_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!chat_whsign_secret_valid(secrets[i]))
            return CHAT_ERR_INVALID;
    char ts[24];
    snprintf(ts, sizeof ts, "%" PRId64, timestamp);
    /* "v1," + 44 characters per signature, a space between two, the NUL. */
    char *buf = malloc(n * (3 + MAC_B64_LEN + 1));
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (buf == NULL || mac == NULL) {
        free(buf);
        EVP_MAC_free(mac);
        if (mac == NULL)
            chat_log_error("OpenSSL has no HMAC");
        return mac == NULL ? CHAT_ERR_IO : CHAT_ERR_NOMEM;
    }
    size_t o = 0;
    chat_err_t rc = CHAT_OK;
    for (size_t i = 0; i < n && rc == CHAT_OK; i++) {
        unsigned char key[SECRET_MAX_BYTES], sig[MAC_LEN];
        long key_len = secret_key(secrets[i], key);
        if (!signature(mac, key, (size_t)key_len, msg_id, ts, body, len, sig)) {
            chat_log_error("webhook signature failed in OpenSSL");
            rc = CHAT_ERR_IO;
        } else {
            if (i > 0)
                buf[o++] = ' ';
            memcpy(buf + o, "v1,", 3);
            o += 3;
            o += (size_t)EVP_EncodeBlock((unsigned char *)buf + o, sig, MAC_LEN);
        }
        OPENSSL_cleanse(key, sizeof key);
    }
    EVP_MAC_free(mac);
    if (rc != CHAT_OK) {
        free(buf);
        return rc;
    }
    buf[o] = '\0';
    *out = buf;
    return CHAT_OK;
}

void chat_whsign_msg_id(const char *identity, char buf[37])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)identity, strlen(identity), md);
    static const char hex[] = "0123456789abcdef";
    memcpy(buf, "msg_", 4);
    for (size_t i = 0; i < 16; i++) {
        buf[4 + 2 * i] = hex[md[i] >> 4];
        buf[4 + 2 * i + 1] = hex[md[i] & 15];
    }
    buf[36] = '\0';
}
