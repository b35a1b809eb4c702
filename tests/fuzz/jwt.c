/* Fuzz target jwt: JWT parsing and verification (common/jwt.c). The first byte picks what the
 * rest is:
 *   0 mod 3: a token as a client or a tenant's backend sends it: chat_jwt_peek_tenant,
 *            chat_jwt_verify and chat_jwt_server_verify with a fixed secret;
 *   1 mod 3: a header and a claims JSON text (split at the first NUL) that the target signs
 *            with the secret, so the claims checks behind the signature are reached too;
 *   2 mod 3: base64url text: what decodes encodes back to the same text (strict, unpadded).
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/jwt.h"
#include "tests/fuzz/fuzz.h"

#define SECRET "fuzz-secret-0123456789"
#define NOW_S 1700000000

FUZZ_QUIET_INIT

static void verify_all(const char *token)
{
    char tenant[CHAT_TENANT_MAX + 1];
    if (chat_jwt_peek_tenant(token, tenant, sizeof tenant) == CHAT_OK)
        FUZZ_ASSERT(chat_name_tenant_valid(tenant), "peeked tenant %s", tenant);

    chat_jwt_claims_t c = {0};
    char reason[128];
    if (chat_jwt_verify(token, SECRET, strlen(SECRET), NOW_S, 5, &c, reason, sizeof reason) ==
        CHAT_OK) {
        FUZZ_ASSERT(chat_name_tenant_valid(c.tenant), "tenant %s", c.tenant);
        FUZZ_ASSERT(chat_name_user_valid(c.user), "user %s", c.user);
        FUZZ_ASSERT(c.exp > NOW_S - 5, "exp %lld", (long long)c.exp);
        for (size_t i = 0; i < c.nrooms; i++)
            FUZZ_ASSERT(chat_name_room_valid(c.rooms[i]), "room %s", c.rooms[i]);
        if (c.nrooms > 0)
            FUZZ_ASSERT(chat_jwt_claims_allow_room(&c, c.rooms[0]), "listed room refused");
        /* what verifies signs again, and that verifies */
        char *again = NULL;
        if (chat_jwt_sign(&c, SECRET, strlen(SECRET), &again) == CHAT_OK) {
            chat_jwt_claims_t c2 = {0};
            FUZZ_ASSERT(chat_jwt_verify(again, SECRET, strlen(SECRET), NOW_S, 5, &c2, reason,
                                        sizeof reason) == CHAT_OK,
                        "re-signed claims refused: %s", reason);
            FUZZ_ASSERT(strcmp(c.user, c2.user) == 0 && strcmp(c.name, c2.name) == 0 &&
                            c.exp == c2.exp && c.nrooms == c2.nrooms,
                        "re-signed claims differ");
            chat_jwt_claims_clear(&c2);
            free(again);
        }
    }
    chat_jwt_claims_clear(&c);

    chat_jwt_server_claims_t s = {0};
    if (chat_jwt_server_verify(token, SECRET, strlen(SECRET), NOW_S, 5, &s, reason,
                               sizeof reason) == CHAT_OK) {
        FUZZ_ASSERT(chat_name_tenant_valid(s.tenant), "server tenant %s", s.tenant);
        FUZZ_ASSERT(s.iat < s.exp && s.exp <= s.iat + CHAT_JWT_SERVER_TTL_MAX, "iat/exp");
    }
}

/* header.payload signed with SECRET (HS256) */
static char *sign_raw(const char *header, const char *payload)
{
    char *h = chat_jwt_b64url_encode(header, strlen(header));
    char *p = chat_jwt_b64url_encode(payload, strlen(payload));
    if (h == NULL || p == NULL)
        abort();
    size_t n = strlen(h) + 1 + strlen(p);
    char *tok = malloc(n + 1 + 64);
    if (tok == NULL)
        abort();
    snprintf(tok, n + 1, "%s.%s", h, p);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok, n, mac,
             &maclen) == NULL)
        abort();
    char *sig = chat_jwt_b64url_encode(mac, maclen);
    if (sig == NULL)
        abort();
    snprintf(tok + n, 1 + 64, ".%s", sig);
    free(sig);
    free(h);
    free(p);
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode = fuzz_take_byte(&data, &size) % 3;
    if (mode == 0) {
        char *token = fuzz_strndup(data, size);
        verify_all(token);
        free(token);
    } else if (mode == 1) {
        char *header = fuzz_take_str(&data, &size);
        char *payload = fuzz_take_str(&data, &size);
        char *token = sign_raw(header, payload);
        verify_all(token);
        free(token);
        free(header);
        free(payload);
    } else {
        size_t n = 0;
        unsigned char *bin = chat_jwt_b64url_decode((const char *)data, size, &n);
        if (bin != NULL) {
            char *back = chat_jwt_b64url_encode(bin, n);
            FUZZ_ASSERT(back != NULL && strlen(back) == size && memcmp(back, data, size) == 0,
                        "base64url round trip differs");
            free(back);
            free(bin);
        }
    }
    return 0;
}
