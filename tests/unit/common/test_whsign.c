/* Unit tests of common/whsign: the Standard Webhooks reference vector (the signature its
 * libraries compute for a published secret, id, timestamp and body), two secrets giving two
 * signatures, a body with NUL bytes checked against HMAC computed here with OpenSSL, new
 * secrets, the secrets refused, and the webhook-id of an identity. */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/whsign.h"
#include "tests/support/util.h"

/* The reference test of the Standard Webhooks libraries (e.g. the Python library's
 * tests/test_webhooks.py and Svix's, whose scheme it is). */
#define REF_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define REF_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define REF_TS 1614265330
#define REF_BODY "{\"test\": 2432232314}"
#define REF_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

/* Another valid secret: 32 bytes 0x00..0x1f, base64 by Python's base64.b64encode. */
#define OTHER_SECRET "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

static char *sign1(const char *secret, const char *id, int64_t ts, const void *body, size_t len)
{
    const char *secrets[] = {secret};
    char *out = NULL;
    ck_assert_int_eq(chat_whsign_sign(secrets, 1, id, ts, body, len, &out), CHAT_OK);
    ck_assert_ptr_nonnull(out);
    return out;
}

START_TEST(test_reference_vector)
{
    char *sig = sign1(REF_SECRET, REF_ID, REF_TS, REF_BODY, strlen(REF_BODY));
    ck_assert_str_eq(sig, REF_SIG);
    free(sig);
    /* Anything signed changes the signature. */
    sig = sign1(REF_SECRET, REF_ID, REF_TS + 1, REF_BODY, strlen(REF_BODY));
    ck_assert_str_ne(sig, REF_SIG);
    free(sig);
    sig = sign1(REF_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJeK", REF_TS, REF_BODY, strlen(REF_BODY));
    ck_assert_str_ne(sig, REF_SIG);
    free(sig);
    sig = sign1(REF_SECRET, REF_ID, REF_TS, REF_BODY, strlen(REF_BODY) - 1);
    ck_assert_str_ne(sig, REF_SIG);
    free(sig);
}
END_TEST

START_TEST(test_two_secrets)
{
    const char *secrets[] = {OTHER_SECRET, REF_SECRET};
    char *both = NULL;
    ck_assert_int_eq(
        chat_whsign_sign(secrets, 2, REF_ID, REF_TS, REF_BODY, strlen(REF_BODY), &both), CHAT_OK);
    char *first = sign1(OTHER_SECRET, REF_ID, REF_TS, REF_BODY, strlen(REF_BODY));
    ck_assert_str_ne(first, REF_SIG);
    char expect[256];
    snprintf(expect, sizeof expect, "%s %s", first, REF_SIG);
    ck_assert_str_eq(both, expect);
    free(first);
    free(both);
}
END_TEST

/* The body is bytes: a NUL inside is signed like any other byte. */
START_TEST(test_binary_body_matches_openssl)
{
    static const unsigned char body[] = {'{', 0, '}', 0xff, '\n'};
    static const unsigned char key[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                          11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                          22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    unsigned char content[64];
    size_t n = (size_t)snprintf((char *)content, sizeof content, "msg_x.-5.");
    memcpy(content + n, body, sizeof body);
    n += sizeof body;
    unsigned char mac[32];
    unsigned int mac_len = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, sizeof key, content, n, mac, &mac_len));
    char expect[64] = "v1,";
    EVP_EncodeBlock((unsigned char *)expect + 3, mac, (int)mac_len);
    char *sig = sign1(OTHER_SECRET, "msg_x", -5, body, sizeof body);
    ck_assert_str_eq(sig, expect);
    free(sig);
}
END_TEST

START_TEST(test_secret_new)
{
    char *a = chat_whsign_secret_new();
    char *b = chat_whsign_secret_new();
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(strncmp(a, "whsec_", 6), 0);
    ck_assert_uint_eq(strlen(a), 6 + 44); /* 32 bytes: 43 characters and one '=' */
    ck_assert_int_eq(a[strlen(a) - 1], '=');
    ck_assert(chat_whsign_secret_valid(a));
    ck_assert(chat_whsign_secret_valid(b));
    ck_assert_str_ne(a, b);
    char *sa = sign1(a, REF_ID, REF_TS, REF_BODY, strlen(REF_BODY));
    char *sb = sign1(b, REF_ID, REF_TS, REF_BODY, strlen(REF_BODY));
    ck_assert_str_ne(sa, sb);
    free(sa);
    free(sb);
    free(a);
    free(b);
}
END_TEST

START_TEST(test_secrets_refused)
{
    static const char *const bad[] = {
        "",
        "whsec_",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",       /* no prefix */
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", /* prefix in the wrong case */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  /* not a multiple of 4 */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w", /* base64url alphabet */
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La aSw", /* a space */
        "whsec_AAECAwQFBgcICQoLDA0ODw==",         /* 16 bytes: too short */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
        "GBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMz"
        "Q1Njc4OTo7PD0+P0A=",                                 /* 65 bytes: too long */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",  /* padding missing */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=", /* unused bits set */
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8===",
        "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=Hh8=", /* '=' inside */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!chat_whsign_secret_valid(bad[i]), "accepted %s", bad[i]);
        const char *secrets[] = {REF_SECRET, bad[i]};
        char *out = (char *)"untouched";
        ck_assert_int_eq(chat_whsign_sign(secrets, 2, REF_ID, REF_TS, "{}", 2, &out),
                         CHAT_ERR_INVALID);
        ck_assert_ptr_null(out);
    }
    ck_assert(!chat_whsign_secret_valid(NULL));
    /* The bounds themselves: 24 and 64 bytes are accepted. */
    ck_assert(chat_whsign_secret_valid(REF_SECRET));
    ck_assert(chat_whsign_secret_valid("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"
                                       "GBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMz"
                                       "Q1Njc4OTo7PD0+Pw=="));
    /* No secret, or more than two. */
    const char *three[] = {REF_SECRET, REF_SECRET, REF_SECRET};
    char *out = NULL;
    ck_assert_int_eq(chat_whsign_sign(three, 0, REF_ID, REF_TS, "{}", 2, &out), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_whsign_sign(three, 3, REF_ID, REF_TS, "{}", 2, &out), CHAT_ERR_INVALID);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_msg_id)
{
    char id[37];
    /* python3 -c "import hashlib; print(hashlib.sha256(b'acme/message.new/lobby/42')
     *             .hexdigest()[:32])" */
    chat_whsign_msg_id("acme/message.new/lobby/42", id);
    ck_assert_str_eq(id, "msg_294ec9eabf7a351aee2871f8f1645a03");
    char again[37];
    chat_whsign_msg_id("acme/message.new/lobby/42", again);
    ck_assert_str_eq(id, again);
    chat_whsign_msg_id("acme/message.new/lobby/43", again);
    ck_assert_str_ne(id, again);
    ck_assert_uint_eq(strlen(again), 36);
}
END_TEST

static Suite *whsign_suite(void)
{
    Suite *s = suite_create("whsign");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_reference_vector);
    tcase_add_test(tc, test_two_secrets);
    tcase_add_test(tc, test_binary_body_matches_openssl);
    tcase_add_test(tc, test_secret_new);
    tcase_add_test(tc, test_secrets_refused);
    tcase_add_test(tc, test_msg_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(whsign_suite(), false);
}
