/* Unit tests of common/webpush: the RFC 8291 Appendix A example byte for byte; a round trip
 * through a decryption written here (HKDF by hand with HMAC, the receiving side's ECDH, AES-GCM
 * open), so a mistake shared by both directions of webpush.c cannot pass; the subscription
 * keys refused; VAPID tokens checked with OpenSSL against the public key in k=; the keys
 * loaded, refused and generated; the Topic. */
#include <check.h>
#include <cjson/cJSON.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jwt.h"
#include "common/webpush.h"
#include "tests/support/util.h"

/* RFC 8291 Appendix A (the values as printed there, base64url). */
#define RFC_PLAINTEXT "When I grow up, I want to be a watermelon"
#define RFC_AUTH "BTBZMqHH6r4Tts7J_aSIgg"
#define RFC_UA_PUBLIC                                                                              \
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define RFC_UA_PRIVATE "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
#define RFC_AS_PUBLIC                                                                              \
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
#define RFC_AS_PRIVATE "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
#define RFC_SALT "DGv6ra1nlYgDCS1FRnbzlw"
#define RFC_BODY                                                                                   \
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml"                             \
    "mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT"                             \
    "pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

static unsigned char *dec(const char *b64, size_t expect_len)
{
    size_t len = 0;
    unsigned char *p = chat_jwt_b64url_decode(b64, strlen(b64), &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, expect_len);
    return p;
}

/* ---- the receiving side, written for the test ---- */

/* A P-256 key from raw octets: the public point, and the private scalar if priv32 is set. */
static EVP_PKEY *test_key(const unsigned char *pub65, const unsigned char *priv32)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    BIGNUM *bn = priv32 != NULL ? BN_bin2bn(priv32, 32, NULL) : NULL;
    ck_assert(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0));
    ck_assert(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub65, 65));
    if (bn != NULL)
        ck_assert(OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn));
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    ck_assert_int_eq(EVP_PKEY_fromdata_init(ctx), 1);
    ck_assert_int_eq(
        EVP_PKEY_fromdata(ctx, &k, bn != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    return k;
}

static void test_key_public(EVP_PKEY *k, unsigned char out[65])
{
    size_t len = 0;
    ck_assert_int_eq(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, out, 65, &len), 1);
    ck_assert_uint_eq(len, 65);
}

static void hmac256(const unsigned char *key, size_t key_len, const unsigned char *data, size_t len,
                    unsigned char out[32])
{
    unsigned int n = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n));
    ck_assert_uint_eq(n, 32);
}

/* RFC 5869 for an output of at most 32 bytes: PRK = HMAC(salt, ikm), T(1) = HMAC(PRK, info ||
 * 0x01). */
static void test_hkdf(const unsigned char *salt, size_t salt_len, const unsigned char *ikm,
                      size_t ikm_len, const unsigned char *info, size_t info_len,
                      unsigned char *out, size_t len)
{
    unsigned char prk[32], t[32], buf[256];
    ck_assert_uint_le(len, 32);
    ck_assert_uint_lt(info_len, sizeof buf);
    hmac256(salt, salt_len, ikm, ikm_len, prk);
    memcpy(buf, info, info_len);
    buf[info_len] = 0x01;
    hmac256(prk, sizeof prk, buf, info_len + 1, t);
    memcpy(out, t, len);
}

/* Opens an aes128gcm body of one record as the user agent does, with its key pair ua and
 * auth secret. Returns the plaintext (malloc'd, *len bytes), NULL if it does not open. */
static unsigned char *test_decrypt(const unsigned char *body, size_t body_len, EVP_PKEY *ua,
                                   const unsigned char auth[16], size_t *len)
{
    ck_assert_uint_ge(body_len, 86 + 17);
    const unsigned char *salt = body;
    uint32_t rs =
        (uint32_t)body[16] << 24 | (uint32_t)body[17] << 16 | (uint32_t)body[18] << 8 | body[19];
    ck_assert_uint_eq(rs, 4096);
    ck_assert_uint_eq(body[20], 65);
    ck_assert_uint_le(body_len - 86, rs);
    EVP_PKEY *as = test_key(body + 21, NULL);
    unsigned char ua_pub[65], secret[32];
    test_key_public(ua, ua_pub);
    size_t secret_len = sizeof secret;
    EVP_PKEY_CTX *dctx = EVP_PKEY_CTX_new_from_pkey(NULL, ua, NULL);
    ck_assert_int_eq(EVP_PKEY_derive_init(dctx), 1);
    ck_assert_int_eq(EVP_PKEY_derive_set_peer(dctx, as), 1);
    ck_assert_int_eq(EVP_PKEY_derive(dctx, secret, &secret_len), 1);
    EVP_PKEY_CTX_free(dctx);

    unsigned char key_info[14 + 130], ikm[32], cek[16], nonce[12];
    memcpy(key_info, "WebPush: info", 14);
    memcpy(key_info + 14, ua_pub, 65);
    memcpy(key_info + 79, body + 21, 65);
    test_hkdf(auth, 16, secret, 32, key_info, sizeof key_info, ikm, 32);
    test_hkdf(salt, 16, ikm, 32, (const unsigned char *)"Content-Encoding: aes128gcm", 28, cek, 16);
    test_hkdf(salt, 16, ikm, 32, (const unsigned char *)"Content-Encoding: nonce", 24, nonce, 12);

    const unsigned char *ct = body + 86;
    size_t ct_len = body_len - 86 - 16;
    unsigned char *plain = malloc(ct_len + 1);
    int n = 0, m = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    ck_assert_int_eq(EVP_DecryptInit_ex(c, EVP_aes_128_gcm(), NULL, cek, nonce), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(c, plain, &n, ct, (int)ct_len), 1);
    ck_assert_int_eq(
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, (void *)(body + body_len - 16)), 1);
    int ok = EVP_DecryptFinal_ex(c, plain + n, &m);
    EVP_CIPHER_CTX_free(c);
    EVP_PKEY_free(as);
    if (ok != 1) {
        free(plain);
        return NULL;
    }
    /* RFC 8188: padding zeros after the delimiter, 0x02 for the last record. */
    size_t end = (size_t)(n + m);
    while (end > 0 && plain[end - 1] == 0)
        end--;
    ck_assert_uint_gt(end, 0);
    ck_assert_uint_eq(plain[end - 1], 0x02);
    *len = end - 1;
    return plain;
}

/* ---- encryption ---- */

START_TEST(test_rfc8291_vector)
{
    chat_webpush_keys_t keys;
    char err[128] = "";
    ck_assert_int_eq(chat_webpush_keys_parse(RFC_UA_PUBLIC, RFC_AUTH, &keys, err, sizeof err),
                     CHAT_OK);
    unsigned char *as_priv = dec(RFC_AS_PRIVATE, 32), *salt = dec(RFC_SALT, 16);
    chat_webpush_fixed_t fixed = {.sender_private = as_priv, .salt = salt};
    unsigned char *body = NULL;
    size_t body_len = 0;
    ck_assert_int_eq(
        chat_webpush_encrypt(&keys, RFC_PLAINTEXT, strlen(RFC_PLAINTEXT), &fixed, &body, &body_len),
        CHAT_OK);
    size_t expect_len = 0;
    unsigned char *expect = chat_jwt_b64url_decode(RFC_BODY, strlen(RFC_BODY), &expect_len);
    ck_assert_ptr_nonnull(expect);
    ck_assert_uint_eq(body_len, expect_len);
    ck_assert_mem_eq(body, expect, expect_len);
    char *text = chat_jwt_b64url_encode(body, body_len);
    ck_assert_str_eq(text, RFC_BODY);

    /* The test's decryption opens the RFC's body with the RFC's user agent key. */
    unsigned char *ua_pub = dec(RFC_UA_PUBLIC, 65), *ua_priv = dec(RFC_UA_PRIVATE, 32);
    EVP_PKEY *ua = test_key(ua_pub, ua_priv);
    size_t plain_len = 0;
    unsigned char *plain = test_decrypt(expect, expect_len, ua, keys.auth, &plain_len);
    ck_assert_ptr_nonnull(plain);
    ck_assert_uint_eq(plain_len, strlen(RFC_PLAINTEXT));
    ck_assert_mem_eq(plain, RFC_PLAINTEXT, plain_len);
    /* ... and refuses it with one bit of the tag changed. */
    expect[expect_len - 1] ^= 0x01;
    ck_assert_ptr_null(test_decrypt(expect, expect_len, ua, keys.auth, &plain_len));

    EVP_PKEY_free(ua);
    free(plain);
    free(ua_pub);
    free(ua_priv);
    free(text);
    free(expect);
    free(body);
    free(as_priv);
    free(salt);
}
END_TEST

/* A random subscription as a browser makes it: its key pair and the keys in base64url. */
typedef struct test_sub {
    EVP_PKEY *ua;
    unsigned char auth[16];
    chat_webpush_keys_t keys;
} test_sub_t;

static void test_sub_new(test_sub_t *s)
{
    s->ua = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(s->ua);
    unsigned char pub[65];
    test_key_public(s->ua, pub);
    ck_assert_int_eq(RAND_bytes(s->auth, sizeof s->auth), 1);
    char *p = chat_jwt_b64url_encode(pub, sizeof pub), *a = chat_jwt_b64url_encode(s->auth, 16);
    char err[128];
    ck_assert_int_eq(chat_webpush_keys_parse(p, a, &s->keys, err, sizeof err), CHAT_OK);
    ck_assert_mem_eq(s->keys.p256dh, pub, 65);
    ck_assert_mem_eq(s->keys.auth, s->auth, 16);
    free(p);
    free(a);
}

static void round_trip(const test_sub_t *s, size_t len)
{
    unsigned char *msg = malloc(len + 1);
    ck_assert_int_eq(RAND_bytes(msg, (int)len + 1), 1);
    unsigned char *body = NULL;
    size_t body_len = 0;
    ck_assert_int_eq(chat_webpush_encrypt(&s->keys, msg, len, NULL, &body, &body_len), CHAT_OK);
    ck_assert_uint_eq(body_len, CHAT_WEBPUSH_HEADER_LEN + len + 1 + 16);
    size_t plain_len = 0;
    unsigned char *plain = test_decrypt(body, body_len, s->ua, s->auth, &plain_len);
    ck_assert_ptr_nonnull(plain);
    ck_assert_uint_eq(plain_len, len);
    ck_assert_mem_eq(plain, msg, len);
    /* Another encryption of the same text: a new salt and sender key, another body. */
    unsigned char *again = NULL;
    size_t again_len = 0;
    ck_assert_int_eq(chat_webpush_encrypt(&s->keys, msg, len, NULL, &again, &again_len), CHAT_OK);
    ck_assert_uint_eq(again_len, body_len);
    ck_assert(memcmp(again, body, 16) != 0);
    ck_assert(memcmp(again + 21, body + 21, 65) != 0);
    free(again);
    free(plain);
    free(body);
    free(msg);
}

START_TEST(test_round_trip)
{
    test_sub_t s;
    test_sub_new(&s);
    round_trip(&s, 3000);
    round_trip(&s, CHAT_WEBPUSH_PLAINTEXT_MAX);
    round_trip(&s, 1);
    EVP_PKEY_free(s.ua);
}
END_TEST

START_TEST(test_too_large)
{
    test_sub_t s;
    test_sub_new(&s);
    static unsigned char big[CHAT_WEBPUSH_PLAINTEXT_MAX + 1];
    unsigned char *body = (unsigned char *)"untouched";
    size_t body_len = 7;
    ck_assert_int_eq(chat_webpush_encrypt(&s.keys, big, sizeof big, NULL, &body, &body_len),
                     CHAT_ERR_TOO_LARGE);
    ck_assert_ptr_null(body);
    ck_assert_uint_eq(body_len, 0);
    EVP_PKEY_free(s.ua);
}
END_TEST

/* Parses and expects a refusal whose reason starts with prefix. */
static void refused(const char *p256dh, const char *auth, const char *prefix)
{
    chat_webpush_keys_t keys;
    char err[128] = "";
    ck_assert_int_eq(chat_webpush_keys_parse(p256dh, auth, &keys, err, sizeof err),
                     CHAT_ERR_INVALID);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "reason '%s', not '%s...'", err,
                  prefix);
}

START_TEST(test_keys_parse)
{
    chat_webpush_keys_t a, b;
    char err[128];
    /* Padded and unpadded give the same keys. */
    ck_assert_int_eq(chat_webpush_keys_parse(RFC_UA_PUBLIC, RFC_AUTH, &a, err, sizeof err),
                     CHAT_OK);
    ck_assert_int_eq(chat_webpush_keys_parse(RFC_UA_PUBLIC "=", RFC_AUTH "==", &b, err, sizeof err),
                     CHAT_OK);
    ck_assert_mem_eq(&a, &b, sizeof a);
    unsigned char *pub = dec(RFC_UA_PUBLIC, 65);
    ck_assert_mem_eq(a.p256dh, pub, 65);

    refused(RFC_UA_PUBLIC "==", RFC_AUTH, "keys.p256dh: not base64url"); /* too much padding */
    refused(RFC_UA_PUBLIC, RFC_AUTH "=", "keys.auth: not base64url");
    refused("BCVx+r7N", RFC_AUTH, "keys.p256dh: not base64url");
    refused(NULL, RFC_AUTH, "keys.p256dh: missing");
    refused(RFC_UA_PUBLIC, NULL, "keys.auth: missing");
    refused("", RFC_AUTH, "keys.p256dh: 0 bytes, not 65");

    char *text = chat_jwt_b64url_encode(pub, 64);
    refused(text, RFC_AUTH, "keys.p256dh: 64 bytes, not 65");
    free(text);
    /* The x coordinate alone with a compressed point's prefix: 33 bytes. */
    unsigned char compressed[33];
    compressed[0] = 0x02 | (pub[64] & 1);
    memcpy(compressed + 1, pub + 1, 32);
    text = chat_jwt_b64url_encode(compressed, sizeof compressed);
    refused(text, RFC_AUTH, "keys.p256dh: 33 bytes, not 65");
    free(text);

    unsigned char bad[65];
    memcpy(bad, pub, 65);
    bad[0] = 0x05;
    text = chat_jwt_b64url_encode(bad, 65);
    refused(text, RFC_AUTH, "keys.p256dh: not an uncompressed point");
    free(text);
    /* y changed: (x, y+1) is not on the curve. */
    memcpy(bad, pub, 65);
    bad[64] ^= 0x01;
    text = chat_jwt_b64url_encode(bad, 65);
    refused(text, RFC_AUTH, "keys.p256dh: not a P-256 point");
    free(text);
    memset(bad + 1, 0, 64);
    text = chat_jwt_b64url_encode(bad, 65);
    refused(text, RFC_AUTH, "keys.p256dh: not a P-256 point");
    free(text);

    refused(RFC_UA_PUBLIC, "BTBZMqHH6r4Tts7J_aSI", "keys.auth: 15 bytes, not 16");
    refused(RFC_UA_PUBLIC, "BTBZMqHH6r4Tts7J_aSIgg8", "keys.auth: 17 bytes, not 16");
    free(pub);
}
END_TEST

/* ---- VAPID ---- */

/* The parts of a VAPID header value, checked and decoded. */
typedef struct vapid_token {
    cJSON *header, *claims;
    char *signing_input;
    unsigned char sig[64];
    char k[128];
} vapid_token_t;

static cJSON *json_part(const char *b64, size_t len)
{
    size_t n = 0;
    unsigned char *text = chat_jwt_b64url_decode(b64, len, &n);
    ck_assert_ptr_nonnull(text);
    cJSON *j = cJSON_ParseWithLength((const char *)text, n);
    ck_assert_ptr_nonnull(j);
    free(text);
    return j;
}

static void vapid_token_parse(const char *value, vapid_token_t *t)
{
    ck_assert_int_eq(strncmp(value, "vapid t=", 8), 0);
    const char *jwt = value + 8, *comma = strstr(jwt, ", k=");
    ck_assert_ptr_nonnull(comma);
    snprintf(t->k, sizeof t->k, "%s", comma + 4);
    const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    ck_assert_ptr_nonnull(dot2);
    ck_assert(dot2 < comma);
    t->header = json_part(jwt, (size_t)(dot1 - jwt));
    t->claims = json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    t->signing_input = strndup(jwt, (size_t)(dot2 - jwt));
    size_t n = 0;
    unsigned char *sig = chat_jwt_b64url_decode(dot2 + 1, (size_t)(comma - dot2 - 1), &n);
    ck_assert_ptr_nonnull(sig);
    ck_assert_uint_eq(n, 64); /* raw r || s, not DER */
    memcpy(t->sig, sig, 64);
    free(sig);
}

static void vapid_token_clear(vapid_token_t *t)
{
    cJSON_Delete(t->header);
    cJSON_Delete(t->claims);
    free(t->signing_input);
}

/* ES256 verification with OpenSSL: r || s back to DER, then ECDSA-SHA256 with the point in
 * pub_b64. */
static bool es256_verify(const char *pub_b64, const char *input, const unsigned char sig[64])
{
    unsigned char *pub = dec(pub_b64, 65);
    EVP_PKEY *k = test_key(pub, NULL);
    ECDSA_SIG *es = ECDSA_SIG_new();
    ck_assert_int_eq(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)),
                     1);
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    ck_assert_int_gt(der_len, 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
    int rc =
        EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)input, strlen(input));
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    EVP_PKEY_free(k);
    free(pub);
    return rc == 1;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", key);
    return v->valuestring;
}

/* The RFC 8291 sender key serves as a known VAPID key: its public half is printed too. */
START_TEST(test_vapid_load_derives_public)
{
    chat_vapid_t *v = NULL;
    char err[128] = "";
    ck_assert_int_eq(chat_vapid_load(RFC_AS_PRIVATE, &v, err, sizeof err), CHAT_OK);
    ck_assert_str_eq(chat_vapid_public_b64(v), RFC_AS_PUBLIC);
    chat_vapid_free(v);
    ck_assert_int_eq(chat_vapid_load(RFC_AS_PRIVATE "=", &v, err, sizeof err), CHAT_OK);
    ck_assert_str_eq(chat_vapid_public_b64(v), RFC_AS_PUBLIC);
    chat_vapid_free(v);
    /* n - 1, the largest scalar there is. */
    ck_assert_int_eq(
        chat_vapid_load("_____wAAAAD__________7zm-q2nF56E87nKwvxjJVA", &v, err, sizeof err),
        CHAT_OK);
    chat_vapid_free(v);
    chat_vapid_free(NULL);
}
END_TEST

START_TEST(test_vapid_authorization)
{
    chat_vapid_t *v = NULL;
    char err[128];
    ck_assert_int_eq(chat_vapid_load(RFC_AS_PRIVATE, &v, err, sizeof err), CHAT_OK);
    static const struct {
        const char *endpoint, *aud;
    } cases[] = {
        {"https://updates.push.services.mozilla.com/wpush/v2/gAAAAABm?x=1#f",
         "https://updates.push.services.mozilla.com"},
        {"https://fcm.googleapis.com/fcm/send/abc:def", "https://fcm.googleapis.com"},
        {"https://push.example:8443/p/1", "https://push.example:8443"},
        {"http://127.0.0.1:9100/push/7", "http://127.0.0.1:9100"},
        {"https://[2001:db8::1]/x", "https://[2001:db8::1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *value = NULL;
        ck_assert_int_eq(chat_vapid_authorization(v, cases[i].endpoint, "mailto:ops@example.com",
                                                  1700043200, &value),
                         CHAT_OK);
        vapid_token_t t = {0};
        vapid_token_parse(value, &t);
        ck_assert_str_eq(t.k, RFC_AS_PUBLIC);
        ck_assert_str_eq(str_of(t.header, "typ"), "JWT");
        ck_assert_str_eq(str_of(t.header, "alg"), "ES256");
        ck_assert_str_eq(str_of(t.claims, "aud"), cases[i].aud);
        ck_assert_str_eq(str_of(t.claims, "sub"), "mailto:ops@example.com");
        const cJSON *exp = cJSON_GetObjectItemCaseSensitive(t.claims, "exp");
        ck_assert(cJSON_IsNumber(exp));
        ck_assert(exp->valuedouble == 1700043200.0);
        ck_assert(es256_verify(t.k, t.signing_input, t.sig));
        /* The check can fail: another input, or one bit of s changed. */
        t.signing_input[strlen(t.signing_input) - 1] ^= 0x01;
        ck_assert(!es256_verify(t.k, t.signing_input, t.sig));
        t.signing_input[strlen(t.signing_input) - 1] ^= 0x01;
        t.sig[63] ^= 0x01;
        ck_assert(!es256_verify(t.k, t.signing_input, t.sig));
        vapid_token_clear(&t);
        free(value);
    }
    /* exp printed as an integer, not 1.7e+09. */
    char *value = NULL;
    ck_assert_int_eq(chat_vapid_authorization(v, "https://push.example/x", "https://chat.example",
                                              1700043200, &value),
                     CHAT_OK);
    vapid_token_t t = {0};
    vapid_token_parse(value, &t);
    char *claims = cJSON_PrintUnformatted(t.claims);
    ck_assert_str_eq(claims,
                     "{\"aud\":\"https://push.example\",\"exp\":1700043200,\"sub\":\"https://"
                     "chat.example\"}");
    cJSON_free(claims);
    vapid_token_clear(&t);
    free(value);

    static const char *const bad[] = {
        "ftp://push.example/x", "push.example/x", "/relative", "https://", "", "not a url",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        value = (char *)"untouched";
        ck_assert_msg(chat_vapid_authorization(v, bad[i], "mailto:a@b.c", 1700043200, &value) ==
                          CHAT_ERR_INVALID,
                      "accepted %s", bad[i]);
        ck_assert_ptr_null(value);
    }
    ck_assert_int_eq(chat_vapid_authorization(v, NULL, "mailto:a@b.c", 1700043200, &value),
                     CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_vapid_authorization(v, "https://p.example/", NULL, 1700043200, &value),
                     CHAT_ERR_INVALID);
    chat_vapid_free(v);
}
END_TEST

START_TEST(test_vapid_load_refuses)
{
    static const char *const bad[] = {
        "",
        "not*base64url",
        "yfWPiYE+n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw",  /* '+': standard base64 */
        "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oQ",   /* 31 bytes */
        "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRwA", /* 33 bytes */
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* zero */
        "_____wAAAAD__________7zm-q2nF56E87nKwvxjJVE",  /* the group order n */
        "__________________________________________8",  /* above n */
        RFC_AS_PUBLIC,                                  /* a public key */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        static int sentinel;
        chat_vapid_t *v = (chat_vapid_t *)&sentinel;
        char err[128] = "";
        ck_assert_msg(chat_vapid_load(bad[i], &v, err, sizeof err) == CHAT_ERR_CONFIG,
                      "accepted %s", bad[i]);
        ck_assert_ptr_null(v);
        ck_assert_msg(strncmp(err, "VAPID private key: ", 19) == 0, "reason '%s'", err);
    }
    chat_vapid_t *v = NULL;
    ck_assert_int_eq(chat_vapid_load(NULL, &v, NULL, 0), CHAT_ERR_CONFIG);
}
END_TEST

START_TEST(test_vapid_generate)
{
    char *priv = NULL, *pub = NULL, *priv2 = NULL, *pub2 = NULL;
    ck_assert_int_eq(chat_vapid_generate(&priv, &pub), CHAT_OK);
    ck_assert_int_eq(chat_vapid_generate(&priv2, &pub2), CHAT_OK);
    ck_assert_uint_eq(strlen(priv), 43);
    ck_assert_uint_eq(strlen(pub), 87);
    ck_assert_str_ne(priv, priv2);
    ck_assert_str_ne(pub, pub2);
    chat_vapid_t *v = NULL;
    char err[128];
    ck_assert_int_eq(chat_vapid_load(priv, &v, err, sizeof err), CHAT_OK);
    ck_assert_str_eq(chat_vapid_public_b64(v), pub);
    /* The public key is a subscription key a browser would accept. */
    chat_webpush_keys_t keys;
    ck_assert_int_eq(chat_webpush_keys_parse(pub, RFC_AUTH, &keys, err, sizeof err), CHAT_OK);
    char *value = NULL;
    ck_assert_int_eq(
        chat_vapid_authorization(v, "https://push.example/1", "mailto:a@b.c", 1700043200, &value),
        CHAT_OK);
    vapid_token_t t = {0};
    vapid_token_parse(value, &t);
    ck_assert_str_eq(t.k, pub);
    ck_assert(es256_verify(pub, t.signing_input, t.sig));
    ck_assert(!es256_verify(pub2, t.signing_input, t.sig));
    vapid_token_clear(&t);
    free(value);
    chat_vapid_free(v);
    free(priv);
    free(pub);
    free(priv2);
    free(pub2);
}
END_TEST

START_TEST(test_topic)
{
    char a[33], b[33];
    /* python3: base64.urlsafe_b64encode(hashlib.sha256(b"acme/lobby").digest())[:32] */
    chat_webpush_topic("acme", "lobby", a);
    ck_assert_str_eq(a, "dbrA6oe9k2KALJn2DfXWWySagnKnkg5W");
    chat_webpush_topic("acme", "lobby", b);
    ck_assert_str_eq(a, b);
    chat_webpush_topic("acme", "dm:alice:bob", b);
    ck_assert_str_ne(a, b);
    ck_assert_uint_eq(strlen(b), 32);
    ck_assert_uint_eq(strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                      32);
    chat_webpush_topic("acme2", "lobby", b);
    ck_assert_str_ne(a, b);
    chat_webpush_topic("acme", "lobbY", b);
    ck_assert_str_ne(a, b);
}
END_TEST

static Suite *webpush_suite(void)
{
    Suite *s = suite_create("webpush");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rfc8291_vector);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_keys_parse);
    tcase_add_test(tc, test_vapid_load_derives_public);
    tcase_add_test(tc, test_vapid_authorization);
    tcase_add_test(tc, test_vapid_load_refuses);
    tcase_add_test(tc, test_vapid_generate);
    tcase_add_test(tc, test_topic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(webpush_suite(), false);
}
