/* Web Push with OpenSSL 3 (see webpush.h): the aes128gcm message encryption of RFC 8291 and
 * the VAPID authorization of RFC 8292. Keys are EVP_PKEYs built from raw octets with
 * EVP_PKEY_fromdata (no deprecated EC_KEY); a private scalar's public point is derived with
 * EC_POINT_mul, as VAPID keys are stored as the bare scalar. */
#include "common/webpush.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/jwt.h"
#include "common/log.h"

#define P256_SCALAR_LEN 32
#define GCM_TAG_LEN 16
#define GCM_NONCE_LEN 12
#define CEK_LEN 16
#define IKM_LEN 32
#define PAD_DELIMITER 0x02 /* RFC 8188: the last (here the only) record */
#define PUB_B64_LEN 87     /* 65 bytes, unpadded base64url */
#define ORIGIN_MAX 1024

struct chat_vapid {
    EVP_PKEY *key;
    char public_b64[PUB_B64_LEN + 1];
};

static void set_reason(char *buf, size_t len, const char *field, const char *text)
{
    if (buf != NULL && len > 0)
        snprintf(buf, len, "%s%s%s", field != NULL ? field : "", field != NULL ? ": " : "", text);
}

/* Logs what failed with OpenSSL's first queued error, and empties the queue so that the next
 * caller on this thread does not see a stale one. */
static void log_ossl(const char *what)
{
    char detail[256] = "";
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    chat_log_error("Web Push crypto failed", CHAT_F_STR("step", what),
                   CHAT_F_STR("openssl", detail));
}

/* Decodes base64url with or without its '=' padding (browsers leave it out, some libraries
 * put it in) into a malloc'd buffer. Returns NULL if s is not base64url. */
static unsigned char *b64url_decode_any(const char *s, size_t *out_len)
{
    size_t len = strlen(s);
    size_t pad = 0;
    while (pad < 2 && len > pad && s[len - 1 - pad] == '=')
        pad++;
    /* Padding completes a group of four: it is there only if it does. */
    if (pad > 0 && len % 4 != 0)
        return NULL;
    return chat_jwt_b64url_decode(s, len - pad, out_len);
}

/* An EC key on P-256 from its uncompressed public point and, if priv is not NULL, its private
 * scalar. Returns NULL if OpenSSL refuses it: fromdata decodes the point, which fails for one
 * that is not on the curve. */
static EVP_PKEY *p256_key(const unsigned char pub[CHAT_WEBPUSH_P256DH_LEN], const BIGNUM *priv)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) !=
            1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
                                         CHAT_WEBPUSH_P256DH_LEN) != 1 ||
        (priv != NULL && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv) != 1))
        goto done;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, priv != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* True if pub is a P-256 point OpenSSL accepts as a peer's public key (on the curve, not
 * the point at infinity). */
static bool p256_public_valid(const unsigned char pub[CHAT_WEBPUSH_P256DH_LEN])
{
    EVP_PKEY *pkey = p256_key(pub, NULL);
    if (pkey == NULL) {
        ERR_clear_error();
        return false;
    }
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    bool ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
    ERR_clear_error();
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

/* The key pair of a private scalar (32 bytes, big-endian): the public point is scalar × G.
 * Returns NULL with *why set if the scalar is not in [1, n-1], or OpenSSL failed (why:
 * NULL, logged). */
static EVP_PKEY *p256_from_scalar(const unsigned char scalar[P256_SCALAR_LEN], const char **why)
{
    *why = NULL;
    EVP_PKEY *pkey = NULL;
    BN_CTX *bnctx = BN_CTX_new();
    EC_GROUP *group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *priv = BN_bin2bn(scalar, P256_SCALAR_LEN, NULL);
    EC_POINT *point = group != NULL ? EC_POINT_new(group) : NULL;
    if (bnctx == NULL || group == NULL || priv == NULL || point == NULL) {
        log_ossl("P-256 group");
        goto done;
    }
    if (BN_is_zero(priv) || BN_cmp(priv, EC_GROUP_get0_order(group)) >= 0) {
        *why = "not a P-256 private key (zero, or not below the group order)";
        goto done;
    }
    unsigned char pub[CHAT_WEBPUSH_P256DH_LEN];
    if (EC_POINT_mul(group, point, priv, NULL, NULL, bnctx) != 1 ||
        EC_POINT_point2oct(group, point, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof pub, bnctx) !=
            sizeof pub) {
        log_ossl("public key derivation");
        goto done;
    }
    pkey = p256_key(pub, priv);
    if (pkey == NULL)
        log_ossl("key pair import");
done:
    EC_POINT_free(point);
    BN_clear_free(priv);
    EC_GROUP_free(group);
    BN_CTX_free(bnctx);
    return pkey;
}

/* A new random P-256 key pair, NULL if OpenSSL failed (logged). */
static EVP_PKEY *p256_generate(void)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", SN_X9_62_prime256v1);
    if (pkey == NULL)
        log_ossl("key generation");
    return pkey;
}

/* The uncompressed public point of pkey. Returns false if OpenSSL failed. */
static bool p256_public_octets(EVP_PKEY *pkey, unsigned char out[CHAT_WEBPUSH_P256DH_LEN])
{
    size_t len = 0;
    return EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, out,
                                           CHAT_WEBPUSH_P256DH_LEN, &len) == 1 &&
           len == CHAT_WEBPUSH_P256DH_LEN && out[0] == POINT_CONVERSION_UNCOMPRESSED;
}

chat_err_t chat_webpush_keys_parse(const char *p256dh_b64, const char *auth_b64,
                                   chat_webpush_keys_t *out, char *errbuf, size_t errlen)
{
    static const char f_p256dh[] = "keys.p256dh", f_auth[] = "keys.auth";
    if (p256dh_b64 == NULL || auth_b64 == NULL) {
        set_reason(errbuf, errlen, p256dh_b64 == NULL ? f_p256dh : f_auth, "missing");
        return CHAT_ERR_INVALID;
    }
    size_t len = 0;
    unsigned char *p = b64url_decode_any(p256dh_b64, &len);
    if (p == NULL) {
        set_reason(errbuf, errlen, f_p256dh, "not base64url");
        return CHAT_ERR_INVALID;
    }
    const char *why = NULL;
    char text[64];
    if (len != CHAT_WEBPUSH_P256DH_LEN) {
        snprintf(text, sizeof text, "%zu bytes, not %d", len, CHAT_WEBPUSH_P256DH_LEN);
        why = text;
    } else if (p[0] != POINT_CONVERSION_UNCOMPRESSED) {
        why = "not an uncompressed point (0x04 first)";
    } else if (!p256_public_valid(p)) {
        why = "not a P-256 point";
    }
    if (why == NULL)
        memcpy(out->p256dh, p, CHAT_WEBPUSH_P256DH_LEN);
    free(p);
    if (why != NULL) {
        set_reason(errbuf, errlen, f_p256dh, why);
        return CHAT_ERR_INVALID;
    }
    unsigned char *a = b64url_decode_any(auth_b64, &len);
    if (a == NULL) {
        set_reason(errbuf, errlen, f_auth, "not base64url");
        return CHAT_ERR_INVALID;
    }
    if (len != CHAT_WEBPUSH_AUTH_LEN) {
        snprintf(text, sizeof text, "%zu bytes, not %d", len, CHAT_WEBPUSH_AUTH_LEN);
        set_reason(errbuf, errlen, f_auth, text);
        free(a);
        return CHAT_ERR_INVALID;
    }
    memcpy(out->auth, a, CHAT_WEBPUSH_AUTH_LEN);
    free(a);
    return CHAT_OK;
}

/* ECDH on P-256: the 32-byte x coordinate of mine × peer. Returns false if OpenSSL failed. */
static bool ecdh(EVP_PKEY *mine, EVP_PKEY *peer, unsigned char out[32])
{
    size_t len = 32;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
    bool ok = ctx != NULL && EVP_PKEY_derive_init(ctx) == 1 &&
              EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, out, &len) == 1 &&
              len == 32;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

/* HKDF-SHA-256 (RFC 5869, extract then expand) of ikm with salt and info into out[0..len).
 * Returns false if OpenSSL failed. */
static bool hkdf(const unsigned char *salt, size_t salt_len, const unsigned char *ikm,
                 size_t ikm_len, const unsigned char *info, size_t info_len, unsigned char *out,
                 size_t len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len),
        OSSL_PARAM_construct_end(),
    };
    bool ok = ctx != NULL && EVP_KDF_derive(ctx, out, len, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok;
}

/* The content encryption key and nonce of RFC 8291 section 3.4 for the ECDH secret between
 * the sender's key and the subscription's. Returns false if OpenSSL failed. */
static bool derive_cek_nonce(const chat_webpush_keys_t *keys, const unsigned char *ecdh_secret,
                             const unsigned char as_public[CHAT_WEBPUSH_P256DH_LEN],
                             const unsigned char salt[CHAT_WEBPUSH_SALT_LEN],
                             unsigned char cek[CEK_LEN], unsigned char nonce[GCM_NONCE_LEN])
{
    /* key_info = "WebPush: info" || 0x00 || ua_public || as_public */
    static const char key_label[] = "WebPush: info"; /* sizeof counts the 0x00 */
    unsigned char key_info[sizeof key_label + 2 * CHAT_WEBPUSH_P256DH_LEN];
    memcpy(key_info, key_label, sizeof key_label);
    memcpy(key_info + sizeof key_label, keys->p256dh, CHAT_WEBPUSH_P256DH_LEN);
    memcpy(key_info + sizeof key_label + CHAT_WEBPUSH_P256DH_LEN, as_public,
           CHAT_WEBPUSH_P256DH_LEN);
    static const char cek_info[] = "Content-Encoding: aes128gcm";
    static const char nonce_info[] = "Content-Encoding: nonce";
    unsigned char ikm[IKM_LEN];
    bool ok = hkdf(keys->auth, CHAT_WEBPUSH_AUTH_LEN, ecdh_secret, 32, key_info, sizeof key_info,
                   ikm, sizeof ikm) &&
              hkdf(salt, CHAT_WEBPUSH_SALT_LEN, ikm, sizeof ikm, (const unsigned char *)cek_info,
                   sizeof cek_info, cek, CEK_LEN) &&
              hkdf(salt, CHAT_WEBPUSH_SALT_LEN, ikm, sizeof ikm, (const unsigned char *)nonce_info,
                   sizeof nonce_info, nonce, GCM_NONCE_LEN);
    OPENSSL_cleanse(ikm, sizeof ikm);
    return ok;
}

/* AES-128-GCM of plaintext || 0x02 into out (len + 1 bytes), then the tag (16). Returns false
 * if OpenSSL failed. */
static bool seal_record(const unsigned char cek[CEK_LEN], const unsigned char nonce[GCM_NONCE_LEN],
                        const void *plaintext, size_t len, unsigned char *out)
{
    static const unsigned char delimiter = PAD_DELIMITER;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0, n3 = 0;
    bool ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, NULL, NULL) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) == 1 &&
              EVP_EncryptInit_ex(ctx, NULL, NULL, cek, nonce) == 1 &&
              (len == 0 || EVP_EncryptUpdate(ctx, out, &n1, plaintext, (int)len) == 1) &&
              EVP_EncryptUpdate(ctx, out + n1, &n2, &delimiter, 1) == 1 &&
              EVP_EncryptFinal_ex(ctx, out + n1 + n2, &n3) == 1 &&
              (size_t)(n1 + n2 + n3) == len + 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, out + len + 1) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok;
}

chat_err_t chat_webpush_encrypt(const chat_webpush_keys_t *keys, const void *plaintext, size_t len,
                                const chat_webpush_fixed_t *fixed, unsigned char **out,
                                size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (len > CHAT_WEBPUSH_PLAINTEXT_MAX)
        return CHAT_ERR_TOO_LARGE;
    if (plaintext == NULL && len > 0)
        return CHAT_ERR_INVALID;
    EVP_PKEY *ua = p256_key(keys->p256dh, NULL);
    if (ua == NULL) {
        ERR_clear_error();
        return CHAT_ERR_INVALID; /* keys that did not come through chat_webpush_keys_parse */
    }
    chat_err_t rc = CHAT_ERR_IO;
    const char *why = NULL;
    EVP_PKEY *as = fixed != NULL && fixed->sender_private != NULL
                       ? p256_from_scalar(fixed->sender_private, &why)
                       : p256_generate();
    size_t body_len = CHAT_WEBPUSH_HEADER_LEN + len + 1 + GCM_TAG_LEN;
    unsigned char *body = malloc(body_len);
    unsigned char secret[32], cek[CEK_LEN], nonce[GCM_NONCE_LEN];
    if (as == NULL) {
        rc = why != NULL ? CHAT_ERR_INVALID : CHAT_ERR_IO;
        goto done;
    }
    if (body == NULL) {
        rc = CHAT_ERR_NOMEM;
        goto done;
    }
    /* Header (RFC 8188 section 2.1): salt, record size, key id length, key id = as_public. */
    unsigned char *salt = body, *as_public = body + CHAT_WEBPUSH_SALT_LEN + 5;
    if (fixed != NULL && fixed->salt != NULL)
        memcpy(salt, fixed->salt, CHAT_WEBPUSH_SALT_LEN);
    else if (RAND_bytes(salt, CHAT_WEBPUSH_SALT_LEN) != 1) {
        log_ossl("salt");
        goto done;
    }
    body[16] = (unsigned char)(CHAT_WEBPUSH_RECORD_MAX >> 24);
    body[17] = (unsigned char)(CHAT_WEBPUSH_RECORD_MAX >> 16);
    body[18] = (unsigned char)(CHAT_WEBPUSH_RECORD_MAX >> 8);
    body[19] = (unsigned char)CHAT_WEBPUSH_RECORD_MAX;
    body[20] = CHAT_WEBPUSH_P256DH_LEN;
    if (!p256_public_octets(as, as_public)) {
        log_ossl("sender public key");
        goto done;
    }
    if (!ecdh(as, ua, secret)) {
        log_ossl("ECDH");
        goto done;
    }
    if (!derive_cek_nonce(keys, secret, as_public, salt, cek, nonce)) {
        log_ossl("HKDF");
        goto done;
    }
    if (!seal_record(cek, nonce, plaintext, len, body + CHAT_WEBPUSH_HEADER_LEN)) {
        log_ossl("AES-128-GCM");
        goto done;
    }
    *out = body;
    *outlen = body_len;
    body = NULL;
    rc = CHAT_OK;
done:
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(cek, sizeof cek);
    free(body);
    EVP_PKEY_free(as);
    EVP_PKEY_free(ua);
    return rc;
}

/* ---- VAPID ---- */

chat_err_t chat_vapid_load(const char *private_b64url, chat_vapid_t **out, char *errbuf,
                           size_t errlen)
{
    *out = NULL;
    size_t len = 0;
    unsigned char *scalar = private_b64url != NULL ? b64url_decode_any(private_b64url, &len) : NULL;
    if (scalar == NULL || len != P256_SCALAR_LEN) {
        char text[96];
        if (scalar == NULL)
            snprintf(text, sizeof text, "not base64url");
        else
            snprintf(text, sizeof text, "%zu bytes, not the %d of a P-256 private key", len,
                     P256_SCALAR_LEN);
        set_reason(errbuf, errlen, "VAPID private key", text);
        if (scalar != NULL)
            OPENSSL_clear_free(scalar, len);
        return CHAT_ERR_CONFIG;
    }
    const char *why = NULL;
    EVP_PKEY *key = p256_from_scalar(scalar, &why);
    OPENSSL_clear_free(scalar, len);
    if (key == NULL) {
        set_reason(errbuf, errlen, "VAPID private key", why != NULL ? why : "OpenSSL failed");
        return why != NULL ? CHAT_ERR_CONFIG : CHAT_ERR_IO;
    }
    unsigned char pub[CHAT_WEBPUSH_P256DH_LEN];
    char *pub_b64 = NULL;
    chat_vapid_t *v = calloc(1, sizeof *v);
    if (v == NULL || !p256_public_octets(key, pub) ||
        (pub_b64 = chat_jwt_b64url_encode(pub, sizeof pub)) == NULL ||
        strlen(pub_b64) != PUB_B64_LEN) {
        set_reason(errbuf, errlen, "VAPID private key", "out of memory or OpenSSL failed");
        free(pub_b64);
        free(v);
        EVP_PKEY_free(key);
        return CHAT_ERR_NOMEM;
    }
    memcpy(v->public_b64, pub_b64, PUB_B64_LEN + 1);
    free(pub_b64);
    v->key = key;
    *out = v;
    return CHAT_OK;
}

void chat_vapid_free(chat_vapid_t *v)
{
    if (v == NULL)
        return;
    EVP_PKEY_free(v->key);
    free(v);
}

const char *chat_vapid_public_b64(const chat_vapid_t *v)
{
    return v->public_b64;
}

/* The origin "scheme://host[:port]" of an absolute http(s) URL into buf (the port only if
 * the URL has one). Returns false for anything else. */
static bool url_origin(const char *url, char *buf, size_t len)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    bool ok = false;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
        goto done;
    if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)
        goto done;
    CURLUcode pc = curl_url_get(u, CURLUPART_PORT, &port, 0);
    if (pc != CURLUE_OK && pc != CURLUE_NO_PORT)
        goto done;
    int n = snprintf(buf, len, "%s://%s%s%s", scheme, host, port != NULL ? ":" : "",
                     port != NULL ? port : "");
    ok = n > 0 && (size_t)n < len;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok;
}

/* ES256 of data: ECDSA-SHA256, converted from OpenSSL's DER to the raw r || s of JWS
 * (RFC 7518 section 3.4), each left-padded to 32 bytes. Returns false if OpenSSL failed. */
static bool es256(EVP_PKEY *key, const char *data, size_t len, unsigned char out[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80]; /* at most 72 for P-256 */
    size_t der_len = sizeof der;
    ECDSA_SIG *sig = NULL;
    bool ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
              EVP_DigestSign(md, der, &der_len, (const unsigned char *)data, len) == 1;
    if (ok) {
        const unsigned char *p = der;
        sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        ok = sig != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32) == 32;
    }
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    return ok;
}

/* The claims {"aud", "exp", "sub"} as JSON (malloc'd), NULL when out of memory. */
static char *vapid_claims(const char *aud, int64_t exp, const char *sub)
{
    cJSON *c = cJSON_CreateObject();
    char *text = NULL;
    if (c != NULL && cJSON_AddStringToObject(c, "aud", aud) != NULL &&
        cJSON_AddNumberToObject(c, "exp", (double)exp) != NULL &&
        cJSON_AddStringToObject(c, "sub", sub) != NULL)
        text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return text;
}

chat_err_t chat_vapid_authorization(const chat_vapid_t *v, const char *endpoint,
                                    const char *subject, int64_t exp, char **out)
{
    *out = NULL;
    char origin[ORIGIN_MAX];
    /* exp must print as an integer: seconds within what a double holds exactly. */
    if (endpoint == NULL || subject == NULL || subject[0] == '\0' || exp <= 0 ||
        exp > ((int64_t)1 << 53) || !url_origin(endpoint, origin, sizeof origin))
        return CHAT_ERR_INVALID;
    static const char header[] = "{\"typ\":\"JWT\",\"alg\":\"ES256\"}";
    char *claims = vapid_claims(origin, exp, subject);
    char *h64 = chat_jwt_b64url_encode(header, sizeof header - 1);
    char *c64 = claims != NULL ? chat_jwt_b64url_encode(claims, strlen(claims)) : NULL;
    char *input = NULL, *s64 = NULL;
    chat_err_t rc = CHAT_ERR_NOMEM;
    if (h64 == NULL || c64 == NULL)
        goto done;
    size_t input_len = strlen(h64) + 1 + strlen(c64);
    if ((input = malloc(input_len + 1)) == NULL)
        goto done;
    snprintf(input, input_len + 1, "%s.%s", h64, c64);
    unsigned char sig[64];
    if (!es256(v->key, input, input_len, sig)) {
        log_ossl("VAPID signature");
        rc = CHAT_ERR_IO;
        goto done;
    }
    if ((s64 = chat_jwt_b64url_encode(sig, sizeof sig)) == NULL)
        goto done;
    static const char fmt[] = "vapid t=%s.%s, k=%s";
    size_t n = sizeof fmt + input_len + strlen(s64) + PUB_B64_LEN;
    if ((*out = malloc(n)) == NULL)
        goto done;
    snprintf(*out, n, fmt, input, s64, v->public_b64);
    rc = CHAT_OK;
done:
    free(s64);
    free(input);
    free(c64);
    free(h64);
    cJSON_free(claims);
    return rc;
}

chat_err_t chat_vapid_generate(char **private_b64url, char **public_b64url)
{
    *private_b64url = NULL;
    *public_b64url = NULL;
    EVP_PKEY *key = p256_generate();
    if (key == NULL)
        return CHAT_ERR_IO;
    BIGNUM *priv = NULL;
    unsigned char scalar[P256_SCALAR_LEN], pub[CHAT_WEBPUSH_P256DH_LEN];
    chat_err_t rc = CHAT_ERR_IO;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1 ||
        BN_bn2binpad(priv, scalar, sizeof scalar) != (int)sizeof scalar ||
        !p256_public_octets(key, pub)) {
        log_ossl("VAPID key export");
        goto done;
    }
    rc = CHAT_ERR_NOMEM;
    *private_b64url = chat_jwt_b64url_encode(scalar, sizeof scalar);
    *public_b64url = chat_jwt_b64url_encode(pub, sizeof pub);
    if (*private_b64url == NULL || *public_b64url == NULL) {
        free(*private_b64url);
        free(*public_b64url);
        *private_b64url = *public_b64url = NULL;
        goto done;
    }
    rc = CHAT_OK;
done:
    OPENSSL_cleanse(scalar, sizeof scalar);
    BN_clear_free(priv);
    EVP_PKEY_free(key);
    return rc;
}

void chat_webpush_topic(const char *tenant, const char *room, char buf[33])
{
    unsigned char md[SHA256_DIGEST_LENGTH] = {0};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    /* Fed in pieces: neither name's length is bounded here. Only memory can fail this. */
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, tenant, strlen(tenant)) != 1 || EVP_DigestUpdate(ctx, "/", 1) != 1 ||
        EVP_DigestUpdate(ctx, room, strlen(room)) != 1 || EVP_DigestFinal_ex(ctx, md, NULL) != 1)
        log_ossl("Topic digest");
    EVP_MD_CTX_free(ctx);
    /* 32 bytes give 43 base64url characters; the first 32 carry 192 bits. */
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < 8; i++) {
        uint32_t acc = (uint32_t)md[3 * i] << 16 | (uint32_t)md[3 * i + 1] << 8 | md[3 * i + 2];
        for (size_t j = 0; j < 4; j++)
            buf[4 * i + j] = alphabet[(acc >> (18 - 6 * j)) & 0x3f];
    }
    buf[32] = '\0';
}
