/* Unit tests of tools/client/chat_token: minted tokens verify with common/jwt and carry
 * exactly the claims asked for; malformed input and lifetimes out of range are refused
 * before signing. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/jwt.h"
#include "tools/client/chat_token.h"
#include "tests/support/util.h"

static const char secret[] = "s3cret-of-acme";

/* Mints spec and verifies the result with secret; returns the verification result. */
static chat_err_t mint_verify(const chat_token_spec_t *spec, const char *key,
                              chat_jwt_claims_t *claims)
{
    char *tok = NULL;
    ck_assert_int_eq(chat_token_mint(spec, &tok), CHAT_OK);
    ck_assert_ptr_nonnull(tok);
    char reason[128] = "";
    chat_err_t rc = chat_jwt_verify(tok, key, strlen(key), (int64_t)time(NULL), 0, claims, reason,
                                    sizeof reason);
    free(tok);
    return rc;
}

START_TEST(test_claims_round_trip)
{
    chat_token_spec_t spec = {.tenant = "acme",
                              .secret = secret,
                              .user = "alice",
                              .name = "Alice \xc3\x85ngstr\xc3\xb6m",
                              .rooms = "general,dm:alice:bob",
                              .ttl_s = 600};
    chat_jwt_claims_t c;
    ck_assert_int_eq(mint_verify(&spec, secret, &c), CHAT_OK);
    ck_assert_str_eq(c.tenant, "acme");
    ck_assert_str_eq(c.user, "alice");
    ck_assert_str_eq(c.name, spec.name);
    int64_t now = (int64_t)time(NULL);
    ck_assert(c.exp >= now + 598 && c.exp <= now + 600);
    ck_assert(c.has_rooms);
    ck_assert_uint_eq(c.nrooms, 2);
    ck_assert_str_eq(c.rooms[0], "general");
    ck_assert_str_eq(c.rooms[1], "dm:alice:bob");
    ck_assert(chat_jwt_claims_allow_room(&c, "general"));
    ck_assert(!chat_jwt_claims_allow_room(&c, "random"));
    chat_jwt_claims_clear(&c);
}
END_TEST

START_TEST(test_rooms_claim_absent_or_empty)
{
    chat_token_spec_t spec = {.tenant = "acme", .secret = secret, .user = "bob", .ttl_s = 60};
    chat_jwt_claims_t c;
    ck_assert_int_eq(mint_verify(&spec, secret, &c), CHAT_OK);
    ck_assert(!c.has_rooms);
    ck_assert_str_eq(c.name, "");
    ck_assert(chat_jwt_claims_allow_room(&c, "anything"));
    chat_jwt_claims_clear(&c);
    spec.rooms = "";
    ck_assert_int_eq(mint_verify(&spec, secret, &c), CHAT_OK);
    ck_assert(c.has_rooms);
    ck_assert_uint_eq(c.nrooms, 0);
    ck_assert(!chat_jwt_claims_allow_room(&c, "anything"));
    chat_jwt_claims_clear(&c);
}
END_TEST

START_TEST(test_expired_and_wrong_secret_fail)
{
    chat_token_spec_t spec = {.tenant = "acme", .secret = secret, .user = "bob", .ttl_s = -120};
    chat_jwt_claims_t c;
    ck_assert_int_eq(mint_verify(&spec, secret, &c), CHAT_ERR_UNAUTHORIZED);
    spec.ttl_s = 60;
    ck_assert_int_eq(mint_verify(&spec, "another-secret", &c), CHAT_ERR_UNAUTHORIZED);
}
END_TEST

/* The longest lifetime mints a token that verifies, expiring that far ahead. */
START_TEST(test_longest_lifetime)
{
    chat_token_spec_t spec = {
        .tenant = "acme", .secret = secret, .user = "bob", .ttl_s = CHAT_TOKEN_TTL_MAX_S};
    chat_jwt_claims_t c;
    int64_t before = (int64_t)time(NULL);
    ck_assert_int_eq(mint_verify(&spec, secret, &c), CHAT_OK);
    ck_assert_int_ge(c.exp, before + CHAT_TOKEN_TTL_MAX_S);
    chat_jwt_claims_clear(&c);
}
END_TEST

START_TEST(test_malformed_input_refused)
{
    static const chat_token_spec_t bad[] = {
        {.tenant = "ac me", .secret = secret, .user = "bob", .ttl_s = 60},
        {.tenant = "acme", .secret = secret, .user = "", .ttl_s = 60},
        {.tenant = NULL, .secret = secret, .user = "bob", .ttl_s = 60},
        {.tenant = "acme", .secret = NULL, .user = "bob", .ttl_s = 60},
        {.tenant = "acme", .secret = secret, .user = "bob", .rooms = "a,,b", .ttl_s = 60},
        {.tenant = "acme", .secret = secret, .user = "bob", .rooms = "a,", .ttl_s = 60},
        {.tenant = "acme", .secret = secret, .user = "bob", .rooms = "room one", .ttl_s = 60},
        {.tenant = "acme", .secret = secret, .user = "bob", .name = "a\nb", .ttl_s = 60},
        /* lifetimes beyond the bound (the largest would overflow exp) */
        {.tenant = "acme", .secret = secret, .user = "bob", .ttl_s = INT64_MAX},
        {.tenant = "acme", .secret = secret, .user = "bob", .ttl_s = INT64_MIN},
        {.tenant = "acme", .secret = secret, .user = "bob", .ttl_s = CHAT_TOKEN_TTL_MAX_S + 1},
        {.tenant = "acme", .secret = secret, .user = "bob", .ttl_s = -CHAT_TOKEN_TTL_MAX_S - 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *tok = (char *)1;
        ck_assert_msg(chat_token_mint(&bad[i], &tok) == CHAT_ERR_INVALID, "case %zu minted", i);
        ck_assert_ptr_null(tok);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chat_token");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_claims_round_trip);
    tcase_add_test(tc, test_rooms_claim_absent_or_empty);
    tcase_add_test(tc, test_expired_and_wrong_secret_fail);
    tcase_add_test(tc, test_longest_lifetime);
    tcase_add_test(tc, test_malformed_input_refused);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
