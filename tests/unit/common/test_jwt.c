/* Unit tests of common/jwt: a known-answer token computed outside this code base, the
 * sign/verify round trip, and one test per way a token must be refused; the same for server
 * tokens (scope server, iat, exp at most 300 s later, never sub). Tokens with chosen
 * headers and payloads are built here with OpenSSL directly, not with chat_jwt_sign. */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jwt.h"
#include "tests/support/util.h"

#define SECRET "kat-secret"
#define NOW 1700000000 /* the tests' clock, seconds since the epoch */

/* Made with python3's standard library (no JWT package):
 *   import hmac, hashlib, base64
 *   b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
 *   h = b64(b'{"alg":"HS256","typ":"JWT"}')
 *   p = b64(b'{"tid":"acme","sub":"alice","exp":4102444800,"name":"Alice",'
 *           b'"rooms":["general","dm:alice:bob"]}')
 *   s = b64(hmac.new(b'kat-secret', (h + '.' + p).encode(), hashlib.sha256).digest())
 *   print(h + '.' + p + '.' + s) */
static const char kat_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJ0aWQiOiJhY21lIiwic3ViIjoiYWxpY2UiLCJleHAiOjQxMDI0NDQ4MDAsIm5hbWUiOiJBbGljZSIsInJvb21zIjpb"
    "ImdlbmVyYWwiLCJkbTphbGljZTpib2IiXX0."
    "OUkuZB9n41kEqcZPn3Z1p-ZXp-C32oZFIoCB8ssjdM8";

static const char hs256_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Unpadded base64url of data (len bytes), malloc'd: standard base64 from OpenSSL, then the
 * URL alphabet and no '='. */
static char *b64url(const void *data, size_t len)
{
    char *out = malloc(len / 3 * 4 + 8);
    ck_assert_ptr_nonnull(out);
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

/* "<b64url(header)>.<b64url(payload)>.<signature>" signed with secret, malloc'd; payload is
 * payload_len bytes (it may hold NUL bytes). With keep_padding, the two first parts keep their
 * '=' (signed that way, so only the encoding is wrong). */
static char *make_token_ex(const char *header, const char *payload, size_t payload_len,
                           const char *secret, bool keep_padding)
{
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, payload_len);
    size_t cap = strlen(h) + strlen(p) + 64;
    char *tok = malloc(cap);
    ck_assert_ptr_nonnull(tok);
    const char *pad_h = "", *pad_p = "";
    if (keep_padding) {
        pad_h = strlen(header) % 3 == 1 ? "==" : strlen(header) % 3 == 2 ? "=" : "";
        pad_p = payload_len % 3 == 1 ? "==" : payload_len % 3 == 2 ? "=" : "";
    }
    int n = snprintf(tok, cap, "%s%s.%s%s", h, pad_h, p, pad_p);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)tok,
                               (size_t)n, mac, &mac_len));
    char *s = b64url(mac, mac_len);
    snprintf(tok + n, cap - (size_t)n, ".%s", s);
    free(h);
    free(p);
    free(s);
    return tok;
}

static char *make_token(const char *header, const char *payload)
{
    return make_token_ex(header, payload, strlen(payload), SECRET, false);
}

/* Verifies tok at NOW with SECRET and expects success; the caller clears *c. */
static void expect_accept(const char *tok, chat_jwt_claims_t *c)
{
    char reason[128];
    chat_err_t err = chat_jwt_verify(tok, SECRET, strlen(SECRET), NOW, 0, c, reason, sizeof reason);
    ck_assert_msg(err == CHAT_OK, "rejected (%s): %s", reason, tok);
}

/* Expects tok to be refused with CHAT_ERR_UNAUTHORIZED, empty claims and a non-empty reason
 * that mentions neither the secret nor any part of the token. */
static void expect_reject_with(const char *tok, const char *secret, const char *what)
{
    chat_jwt_claims_t c;
    char reason[128] = "";
    chat_err_t err =
        chat_jwt_verify(tok, secret, strlen(secret), NOW, 0, &c, reason, sizeof reason);
    ck_assert_msg(err == CHAT_ERR_UNAUTHORIZED, "%s: accepted", what);
    ck_assert_msg(reason[0] != '\0', "%s: no reason", what);
    ck_assert_msg(strstr(reason, secret) == NULL, "%s: reason has the secret", what);
    if (tok != NULL && strlen(tok) >= 8) {
        char head[9];
        memcpy(head, tok, 8);
        head[8] = '\0';
        ck_assert_msg(strstr(reason, head) == NULL, "%s: reason quotes the token", what);
    }
    ck_assert_ptr_null(c.rooms);
    ck_assert_str_eq(c.tenant, "");
    ck_assert_str_eq(c.user, "");
}

static void expect_reject(const char *tok, const char *what)
{
    expect_reject_with(tok, SECRET, what);
}

/* Builds a token with the standard header and payload, expects rejection, frees it. */
static void reject_payload(const char *payload)
{
    char *tok = make_token(hs256_header, payload);
    expect_reject(tok, payload);
    free(tok);
}

static void accept_payload(const char *payload)
{
    char *tok = make_token(hs256_header, payload);
    chat_jwt_claims_t c;
    expect_accept(tok, &c);
    chat_jwt_claims_clear(&c);
    free(tok);
}

START_TEST(test_known_answer_verify)
{
    chat_jwt_claims_t c;
    expect_accept(kat_token, &c);
    ck_assert_str_eq(c.tenant, "acme");
    ck_assert_str_eq(c.user, "alice");
    ck_assert_str_eq(c.name, "Alice");
    ck_assert_int_eq(c.exp, 4102444800LL);
    ck_assert(c.has_rooms);
    ck_assert_uint_eq(c.nrooms, 2);
    ck_assert_str_eq(c.rooms[0], "general");
    ck_assert_str_eq(c.rooms[1], "dm:alice:bob");
    chat_jwt_claims_clear(&c);
    ck_assert_ptr_null(c.rooms);
    ck_assert_uint_eq(c.nrooms, 0);
}
END_TEST

START_TEST(test_known_answer_sign)
{
    char *rooms[] = {"general", "dm:alice:bob"};
    chat_jwt_claims_t c = {.tenant = "acme",
                           .user = "alice",
                           .name = "Alice",
                           .exp = 4102444800LL,
                           .has_rooms = true,
                           .nrooms = 2,
                           .rooms = rooms};
    char *tok = NULL;
    ck_assert_int_eq(chat_jwt_sign(&c, SECRET, strlen(SECRET), &tok), CHAT_OK);
    ck_assert_str_eq(tok, kat_token);
    free(tok);
}
END_TEST

START_TEST(test_round_trip)
{
    chat_jwt_claims_t in = {.tenant = "t-1", .user = "\xc3\x89milie b", .exp = NOW + 60};
    char *tok = NULL;
    ck_assert_int_eq(chat_jwt_sign(&in, SECRET, strlen(SECRET), &tok), CHAT_OK);
    chat_jwt_claims_t out;
    expect_accept(tok, &out);
    ck_assert_str_eq(out.tenant, "t-1");
    ck_assert_str_eq(out.user, "\xc3\x89milie b");
    ck_assert_str_eq(out.name, "");
    ck_assert_int_eq(out.exp, NOW + 60);
    ck_assert(!out.has_rooms);
    chat_jwt_claims_clear(&out);
    char tenant[CHAT_TENANT_MAX + 1];
    ck_assert_int_eq(chat_jwt_peek_tenant(tok, tenant, sizeof tenant), CHAT_OK);
    ck_assert_str_eq(tenant, "t-1");
    free(tok);

    char *rooms[] = {"a"};
    chat_jwt_claims_t with_rooms = {
        .tenant = "t", .user = "u", .exp = NOW + 1, .has_rooms = true, .nrooms = 1, .rooms = rooms};
    ck_assert_int_eq(chat_jwt_sign(&with_rooms, SECRET, strlen(SECRET), &tok), CHAT_OK);
    expect_accept(tok, &out);
    ck_assert(out.has_rooms);
    ck_assert_uint_eq(out.nrooms, 1);
    ck_assert_str_eq(out.rooms[0], "a");
    chat_jwt_claims_clear(&out);
    free(tok);
}
END_TEST

START_TEST(test_sign_refuses_invalid_claims)
{
    char *tok = (char *)"unchanged";
    chat_jwt_claims_t bad_tenant = {.tenant = "a/b", .user = "u", .exp = NOW};
    ck_assert_int_eq(chat_jwt_sign(&bad_tenant, SECRET, strlen(SECRET), &tok), CHAT_ERR_INVALID);
    ck_assert_ptr_null(tok);
    chat_jwt_claims_t no_user = {.tenant = "t", .exp = NOW};
    ck_assert_int_eq(chat_jwt_sign(&no_user, SECRET, strlen(SECRET), &tok), CHAT_ERR_INVALID);
    char *rooms[] = {"bad room"};
    chat_jwt_claims_t bad_room = {
        .tenant = "t", .user = "u", .exp = NOW, .has_rooms = true, .nrooms = 1, .rooms = rooms};
    ck_assert_int_eq(chat_jwt_sign(&bad_room, SECRET, strlen(SECRET), &tok), CHAT_ERR_INVALID);
    chat_jwt_claims_t ok = {.tenant = "t", .user = "u", .exp = NOW};
    ck_assert_int_eq(chat_jwt_sign(&ok, "", 0, &tok), CHAT_ERR_INVALID);

    /* 256 rooms of 128 characters do not fit in CHAT_JWT_MAX_LEN: verify would refuse it. */
    char long_room[CHAT_ROOM_MAX + 1];
    memset(long_room, 'r', CHAT_ROOM_MAX);
    long_room[CHAT_ROOM_MAX] = '\0';
    char *many[CHAT_JWT_ROOMS_MAX];
    for (size_t i = 0; i < CHAT_JWT_ROOMS_MAX; i++)
        many[i] = long_room;
    chat_jwt_claims_t big = {.tenant = "t",
                             .user = "u",
                             .exp = NOW,
                             .has_rooms = true,
                             .nrooms = CHAT_JWT_ROOMS_MAX,
                             .rooms = many};
    ck_assert_int_eq(chat_jwt_sign(&big, SECRET, strlen(SECRET), &tok), CHAT_ERR_TOO_LARGE);
    ck_assert_ptr_null(tok);
}
END_TEST

START_TEST(test_bad_signature)
{
    char *tok = strdup(kat_token);
    char *sig = strrchr(tok, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    expect_reject(tok, "flipped signature");
    /* A changed payload with the original signature. */
    free(tok);
    tok = strdup(kat_token);
    char *payload = strchr(tok, '.') + 1;
    payload[2] = payload[2] == 'A' ? 'B' : 'A';
    expect_reject(tok, "changed payload");
    free(tok);
    /* Signature cut short, or empty. */
    tok = strdup(kat_token);
    tok[strlen(tok) - 4] = '\0';
    expect_reject(tok, "short signature");
    strrchr(tok, '.')[1] = '\0';
    expect_reject(tok, "empty signature");
    free(tok);
}
END_TEST

START_TEST(test_other_secret)
{
    expect_reject_with(kat_token, "other-secret", "other secret");
    expect_reject_with(kat_token, "kat-secreT", "secret differing in case");
    chat_jwt_claims_t c;
    char reason[64];
    ck_assert_int_eq(chat_jwt_verify(kat_token, "", 0, NOW, 0, &c, reason, sizeof reason),
                     CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(chat_jwt_verify(kat_token, NULL, 4, NOW, 0, &c, NULL, 0),
                     CHAT_ERR_UNAUTHORIZED);
}
END_TEST

START_TEST(test_alg_rejected)
{
    static const char *const headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"typ\":1}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}",
        "{\"alg\":\"none\",\"alg\":\"HS256\"}",
        "[\"HS256\"]",
        "\"HS256\"",
        "not json",
    };
    const char *payload = "{\"tid\":\"acme\",\"sub\":\"alice\",\"exp\":4102444800}";
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        char *tok = make_token(headers[i], payload);
        expect_reject(tok, headers[i]);
        free(tok);
    }
    /* The classic "alg none" token: no signature at all. */
    char *h = b64url("{\"alg\":\"none\"}", 14);
    char *p = b64url(payload, strlen(payload));
    char tok[512];
    snprintf(tok, sizeof tok, "%s.%s.", h, p);
    expect_reject(tok, "unsigned alg none");
    free(h);
    free(p);
    /* Without typ, and with an extra header field such as kid: fine. */
    char *ok = make_token("{\"alg\":\"HS256\"}", payload);
    chat_jwt_claims_t c;
    expect_accept(ok, &c);
    chat_jwt_claims_clear(&c);
    free(ok);
    ok = make_token("{\"typ\":\"JWT\",\"kid\":\"k1\",\"alg\":\"HS256\"}", payload);
    expect_accept(ok, &c);
    chat_jwt_claims_clear(&c);
    free(ok);
}
END_TEST

START_TEST(test_expiry)
{
    char payload[128];
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":%d}", NOW - 1);
    reject_payload(payload);
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":%d}", NOW);
    reject_payload(payload); /* exp is the first second the token is no longer valid */
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":%d}", NOW + 1);
    accept_payload(payload);

    /* Leeway forgives a little clock skew, and no more. */
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":%d}", NOW - 10);
    char *tok = make_token(hs256_header, payload);
    chat_jwt_claims_t c;
    ck_assert_int_eq(chat_jwt_verify(tok, SECRET, strlen(SECRET), NOW, 30, &c, NULL, 0), CHAT_OK);
    chat_jwt_claims_clear(&c);
    char reason[64];
    ck_assert_int_eq(
        chat_jwt_verify(tok, SECRET, strlen(SECRET), NOW, 5, &c, reason, sizeof reason),
        CHAT_ERR_UNAUTHORIZED);
    ck_assert_str_eq(reason, "expired");
    free(tok);

    /* nbf in the future. */
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}",
             NOW + 600, NOW + 300);
    reject_payload(payload);
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":%d,\"nbf\":%d}",
             NOW + 600, NOW);
    accept_payload(payload);
}
END_TEST

START_TEST(test_exp_missing_or_invalid)
{
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\"}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":\"4102444800\"}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800.5}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":null}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":1e300}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":true}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"exp\":1}");
    accept_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4.1024448e9}");
}
END_TEST

START_TEST(test_tid_sub)
{
    reject_payload("{\"sub\":\"u\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"\",\"sub\":\"u\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"a/b\",\"sub\":\"u\",\"exp\":4102444800}");
    reject_payload("{\"tid\":7,\"sub\":\"u\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"t\",\"tid\":\"other\",\"sub\":\"u\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"t\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"a\\nb\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"ali\\u0000ce\",\"exp\":4102444800}");
    reject_payload("{\"tid\":\"t\",\"sub\":[\"u\"],\"exp\":4102444800}");
    char payload[256];
    char user[CHAT_USER_MAX + 2];
    memset(user, 'u', CHAT_USER_MAX + 1);
    user[CHAT_USER_MAX + 1] = '\0';
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"%s\",\"exp\":4102444800}", user);
    reject_payload(payload);
    user[CHAT_USER_MAX] = '\0';
    snprintf(payload, sizeof payload, "{\"tid\":\"t\",\"sub\":\"%s\",\"exp\":4102444800}", user);
    accept_payload(payload);
    /* An escaped backslash before u0000 is text, not a NUL. */
    accept_payload("{\"tid\":\"t\",\"sub\":\"a\\\\u0000\",\"exp\":4102444800}");
}
END_TEST

START_TEST(test_name)
{
    char payload[1024];
    char name[CHAT_JWT_NAME_MAX * 2 + 3];
    /* 128 two-byte characters: at the limit; one more: over it. */
    for (size_t i = 0; i < CHAT_JWT_NAME_MAX; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[CHAT_JWT_NAME_MAX * 2] = '\0';
    snprintf(payload, sizeof payload,
             "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,"
             "\"name\":\"%s\"}",
             name);
    char *tok = make_token(hs256_header, payload);
    chat_jwt_claims_t c;
    expect_accept(tok, &c);
    ck_assert_str_eq(c.name, name);
    chat_jwt_claims_clear(&c);
    free(tok);
    strcat(name, "x");
    snprintf(payload, sizeof payload,
             "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,"
             "\"name\":\"%s\"}",
             name);
    reject_payload(payload);
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"name\":\"a\\tb\"}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"name\":\"a\\u0085b\"}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"name\":42}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"name\":\"\xff\"}");
    accept_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"name\":\"\\u00e9 b\"}");
}
END_TEST

START_TEST(test_rooms)
{
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":\"general\"}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":{\"a\":1}}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":null}");
    reject_payload(
        "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":[\"ok\",\"bad room\"]}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":[\"ok\",3]}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":[\"\"]}");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":[],\"rooms\":[]}");

    /* CHAT_JWT_ROOMS_MAX rooms are fine, one more is not. */
    size_t cap = 64 + (CHAT_JWT_ROOMS_MAX + 1) * 8;
    char *payload = malloc(cap);
    ck_assert_ptr_nonnull(payload);
    for (size_t count = CHAT_JWT_ROOMS_MAX; count <= CHAT_JWT_ROOMS_MAX + 1; count++) {
        size_t n = (size_t)snprintf(payload, cap,
                                    "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,"
                                    "\"rooms\":[");
        for (size_t i = 0; i < count; i++)
            n += (size_t)snprintf(payload + n, cap - n, "%s\"r%zu\"", i ? "," : "", i);
        snprintf(payload + n, cap - n, "]}");
        char *tok = make_token(hs256_header, payload);
        chat_jwt_claims_t c;
        chat_err_t err = chat_jwt_verify(tok, SECRET, strlen(SECRET), NOW, 0, &c, NULL, 0);
        ck_assert_int_eq(err, count <= CHAT_JWT_ROOMS_MAX ? CHAT_OK : CHAT_ERR_UNAUTHORIZED);
        if (err == CHAT_OK) {
            ck_assert_uint_eq(c.nrooms, count);
            ck_assert_str_eq(c.rooms[count - 1], "r255");
        }
        chat_jwt_claims_clear(&c);
        free(tok);
    }
    free(payload);
}
END_TEST

START_TEST(test_allow_room)
{
    chat_jwt_claims_t c;
    expect_accept(kat_token, &c);
    ck_assert(chat_jwt_claims_allow_room(&c, "general"));
    ck_assert(chat_jwt_claims_allow_room(&c, "dm:alice:bob"));
    ck_assert(!chat_jwt_claims_allow_room(&c, "random"));
    ck_assert(!chat_jwt_claims_allow_room(&c, "General"));
    ck_assert(!chat_jwt_claims_allow_room(&c, "gen"));
    ck_assert(!chat_jwt_claims_allow_room(&c, NULL));
    chat_jwt_claims_clear(&c);

    char *tok = make_token(hs256_header, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800}");
    expect_accept(tok, &c);
    ck_assert(chat_jwt_claims_allow_room(&c, "anything"));
    chat_jwt_claims_clear(&c);
    free(tok);

    /* An empty rooms claim allows nothing, unlike an absent one. */
    tok = make_token(hs256_header, "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"rooms\":[]}");
    expect_accept(tok, &c);
    ck_assert(c.has_rooms);
    ck_assert(!chat_jwt_claims_allow_room(&c, "anything"));
    chat_jwt_claims_clear(&c);
    free(tok);
    chat_jwt_claims_clear(NULL);
}
END_TEST

START_TEST(test_padding_and_alphabet)
{
    /* 61 bytes: its base64 needs one '='. Signed over the padded text, so only the
     * encoding is wrong. */
    const char *payload = "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,\"name\":\"paddingx\"}";
    ck_assert_uint_eq(strlen(payload) % 3, 2);
    char *tok = make_token_ex(hs256_header, payload, strlen(payload), SECRET, true);
    ck_assert_ptr_nonnull(strchr(tok, '='));
    expect_reject(tok, "padded payload");
    free(tok);
    tok = make_token_ex(hs256_header, payload, strlen(payload), SECRET, false);
    accept_payload(payload);
    /* A signature with padding. */
    char *padded = malloc(strlen(tok) + 2);
    sprintf(padded, "%s=", tok);
    expect_reject(padded, "padded signature");
    free(padded);
    /* Standard base64 characters instead of the URL ones. */
    char *std = strdup(tok);
    char *sig = strrchr(std, '.') + 1;
    sig[0] = '+';
    expect_reject(std, "plus in signature");
    sig[0] = '/';
    expect_reject(std, "slash in signature");
    free(std);
    /* Unused trailing bits set: another spelling of the same bytes. The KAT signature ends
     * in '8' (60 = 0b111100: the last two bits are unused and zero); '9' sets one. */
    char *alias = strdup(kat_token);
    ck_assert_int_eq(alias[strlen(alias) - 1], '8');
    alias[strlen(alias) - 1] = '9';
    expect_reject(alias, "non-canonical signature");
    free(alias);
    free(tok);
}
END_TEST

START_TEST(test_garbage)
{
    static const char *const tokens[] = {
        "",
        ".",
        "..",
        "...",
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "not a token at all",
        "eyJhbGciOiJIUzI1NiJ9..sig",
        ".eyJ0aWQiOiJ0In0.sig",
        "eyJ0aWQiOiJ0In0..",
        "\xff\xfe.\x01.\x02",
        "Bearer x.y.z",
    };
    for (size_t i = 0; i < sizeof tokens / sizeof tokens[0]; i++)
        expect_reject(tokens[i], tokens[i]);
    chat_jwt_claims_t c;
    ck_assert_int_eq(chat_jwt_verify(NULL, SECRET, strlen(SECRET), NOW, 0, &c, NULL, 0),
                     CHAT_ERR_UNAUTHORIZED);
    /* Payloads that are not JSON objects. */
    reject_payload("[1,2]");
    reject_payload("\"string\"");
    reject_payload("{\"tid\":\"t\"");
    reject_payload("{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800} trailing");
    /* A raw NUL byte after a complete, correctly signed payload: only the NUL rule refuses
     * it. A C-string parser stops at the NUL and would see a valid token, the one accepted
     * first; the reason is the payload decoding's, not the signature's or the claims'. */
    static const char nul_payload[] = "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800}\0x";
    accept_payload(nul_payload);
    char *tok = make_token_ex(hs256_header, nul_payload, sizeof nul_payload - 1, SECRET, false);
    expect_reject(tok, "NUL byte in payload");
    chat_jwt_claims_t nul_claims;
    char reason[64];
    ck_assert_int_eq(
        chat_jwt_verify(tok, SECRET, strlen(SECRET), NOW, 0, &nul_claims, reason, sizeof reason),
        CHAT_ERR_UNAUTHORIZED);
    ck_assert_str_eq(reason, "malformed payload");
    free(tok);
}
END_TEST

/* A valid token of exactly target characters, padded with an extra claim. */
static char *token_of_length(size_t target)
{
    char *payload = malloc(target + 64);
    ck_assert_ptr_nonnull(payload);
    /* The payload part is about 4/3 of the payload: start a little below the target. */
    for (size_t pad = target * 3 / 4 - 200; pad < target; pad++) {
        snprintf(payload, target + 64,
                 "{\"tid\":\"t\",\"sub\":\"u\",\"exp\":4102444800,"
                 "\"pad\":\"%*s\"}",
                 (int)pad, "");
        char *tok = make_token(hs256_header, payload);
        size_t len = strlen(tok);
        if (len == target) {
            free(payload);
            return tok;
        }
        free(tok);
        ck_assert_uint_lt(len, target);
    }
    ck_abort_msg("no token of length %zu", target);
    return NULL;
}

START_TEST(test_too_long)
{
    char *tok = token_of_length(CHAT_JWT_MAX_LEN);
    chat_jwt_claims_t c;
    expect_accept(tok, &c);
    chat_jwt_claims_clear(&c);
    free(tok);
    tok = token_of_length(CHAT_JWT_MAX_LEN + 1);
    expect_reject(tok, "one character too long");
    char tenant[CHAT_TENANT_MAX + 1];
    ck_assert_int_eq(chat_jwt_peek_tenant(tok, tenant, sizeof tenant), CHAT_ERR_UNAUTHORIZED);
    free(tok);
}
END_TEST

START_TEST(test_peek_tenant)
{
    char tenant[CHAT_TENANT_MAX + 1];
    ck_assert_int_eq(chat_jwt_peek_tenant(kat_token, tenant, sizeof tenant), CHAT_OK);
    ck_assert_str_eq(tenant, "acme");
    /* No signature check: a token signed with another secret still names its tenant. */
    const char *beta = "{\"tid\":\"beta\"}";
    char *tok = make_token_ex(hs256_header, beta, strlen(beta), "other", false);
    ck_assert_int_eq(chat_jwt_peek_tenant(tok, tenant, sizeof tenant), CHAT_OK);
    ck_assert_str_eq(tenant, "beta");
    free(tok);
    char small[3];
    ck_assert_int_eq(chat_jwt_peek_tenant(kat_token, small, sizeof small), CHAT_ERR_UNAUTHORIZED);
    tok = make_token(hs256_header, "{\"sub\":\"u\"}");
    ck_assert_int_eq(chat_jwt_peek_tenant(tok, tenant, sizeof tenant), CHAT_ERR_UNAUTHORIZED);
    free(tok);
    tok = make_token(hs256_header, "{\"tid\":\"a b\"}");
    ck_assert_int_eq(chat_jwt_peek_tenant(tok, tenant, sizeof tenant), CHAT_ERR_UNAUTHORIZED);
    free(tok);
    ck_assert_int_eq(chat_jwt_peek_tenant("garbage", tenant, sizeof tenant), CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(chat_jwt_peek_tenant(NULL, tenant, sizeof tenant), CHAT_ERR_UNAUTHORIZED);
}
END_TEST

/* ---- server tokens ---- */

/* Verifies a server token with payload at NOW (leeway 5 s); returns the outcome. */
static chat_err_t server_verify(const char *payload, chat_jwt_server_claims_t *c, char *reason,
                                size_t reason_len)
{
    char *tok = make_token(hs256_header, payload);
    chat_err_t err =
        chat_jwt_server_verify(tok, SECRET, strlen(SECRET), NOW, 5, c, reason, reason_len);
    free(tok);
    return err;
}

static void server_accept(const char *payload)
{
    chat_jwt_server_claims_t c;
    char reason[128] = "";
    ck_assert_msg(server_verify(payload, &c, reason, sizeof reason) == CHAT_OK, "%s: %s", payload,
                  reason);
    ck_assert_str_eq(c.tenant, "acme");
}

static void server_reject(const char *payload)
{
    chat_jwt_server_claims_t c;
    char reason[128] = "";
    ck_assert_msg(server_verify(payload, &c, reason, sizeof reason) == CHAT_ERR_UNAUTHORIZED,
                  "accepted: %s", payload);
    ck_assert_msg(reason[0] != '\0', "no reason: %s", payload);
    ck_assert_str_eq(c.tenant, "");
}

START_TEST(test_server_accepts)
{
    server_accept("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000000,"
                  "\"exp\":1700000300}");
    /* issued a little earlier, still valid; the clock of the caller a little ahead */
    server_accept("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1699999800,"
                  "\"exp\":1700000010}");
    server_accept("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000004,"
                  "\"exp\":1700000060}");
}
END_TEST

START_TEST(test_server_refuses_user_tokens)
{
    /* a user token: sub, no scope; and every mix of the two */
    server_reject("{\"tid\":\"acme\",\"sub\":\"alice\",\"exp\":1700000300}");
    server_reject("{\"tid\":\"acme\",\"sub\":\"alice\",\"scope\":\"server\","
                  "\"iat\":1700000000,\"exp\":1700000300}");
    server_reject("{\"tid\":\"acme\",\"iat\":1700000000,\"exp\":1700000300}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"user\",\"iat\":1700000000,"
                  "\"exp\":1700000300}");
    server_reject("{\"tid\":\"acme\",\"scope\":[\"server\"],\"iat\":1700000000,"
                  "\"exp\":1700000300}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"scope\":\"server\","
                  "\"iat\":1700000000,\"exp\":1700000300}");
    /* and a real user token, as chat_jwt_sign makes them */
    chat_jwt_claims_t u = {.tenant = "acme", .user = "alice", .exp = NOW + 60};
    char *tok = NULL;
    ck_assert_int_eq(chat_jwt_sign(&u, SECRET, strlen(SECRET), &tok), CHAT_OK);
    chat_jwt_server_claims_t c;
    ck_assert_int_eq(chat_jwt_server_verify(tok, SECRET, strlen(SECRET), NOW, 5, &c, NULL, 0),
                     CHAT_ERR_UNAUTHORIZED);
    free(tok);
}
END_TEST

START_TEST(test_server_times)
{
    /* expired (beyond the leeway), exp more than 300 s after iat, exp not after iat, iat in
     * the future, iat or exp missing or not integral, nbf in the future */
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1699999000,"
                  "\"exp\":1699999290}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000000,"
                  "\"exp\":1700000301}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000100,"
                  "\"exp\":1700000100}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000060,"
                  "\"exp\":1700000200}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"exp\":1700000200}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000000}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000000.5,"
                  "\"exp\":1700000200}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":\"1700000000\","
                  "\"exp\":1700000200}");
    server_reject("{\"tid\":\"acme\",\"scope\":\"server\",\"iat\":1700000000,"
                  "\"exp\":1700000200,\"nbf\":1700000100}");
    server_reject("{\"scope\":\"server\",\"iat\":1700000000,\"exp\":1700000200}");
    server_reject("{\"tid\":\"a b\",\"scope\":\"server\",\"iat\":1700000000,"
                  "\"exp\":1700000200}");
}
END_TEST

START_TEST(test_server_signature_and_sign)
{
    chat_jwt_server_claims_t in = {.tenant = "acme", .iat = NOW, .exp = NOW + 300};
    char *tok = NULL;
    ck_assert_int_eq(chat_jwt_server_sign(&in, SECRET, strlen(SECRET), &tok), CHAT_OK);
    chat_jwt_server_claims_t out;
    ck_assert_int_eq(chat_jwt_server_verify(tok, SECRET, strlen(SECRET), NOW, 0, &out, NULL, 0),
                     CHAT_OK);
    ck_assert_str_eq(out.tenant, "acme");
    ck_assert_int_eq(out.iat, NOW);
    ck_assert_int_eq(out.exp, NOW + 300);
    /* another secret; and the user verifier refuses a server token (no sub) */
    ck_assert_int_eq(chat_jwt_server_verify(tok, "other", 5, NOW, 0, &out, NULL, 0),
                     CHAT_ERR_UNAUTHORIZED);
    chat_jwt_claims_t u;
    ck_assert_int_eq(chat_jwt_verify(tok, SECRET, strlen(SECRET), NOW, 0, &u, NULL, 0),
                     CHAT_ERR_UNAUTHORIZED);
    free(tok);
    /* sign refuses what verify would refuse */
    chat_jwt_server_claims_t bad[] = {
        {.tenant = "acme", .iat = NOW, .exp = NOW + 301},
        {.tenant = "acme", .iat = NOW, .exp = NOW},
        {.tenant = "a b", .iat = NOW, .exp = NOW + 10},
        {.tenant = "", .iat = NOW, .exp = NOW + 10},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tok = NULL;
        ck_assert_int_eq(chat_jwt_server_sign(&bad[i], SECRET, strlen(SECRET), &tok),
                         CHAT_ERR_INVALID);
        ck_assert_ptr_null(tok);
    }
    ck_assert_int_eq(chat_jwt_server_sign(&in, "", 0, &tok), CHAT_ERR_INVALID);
}
END_TEST

START_TEST(test_b64url_helpers)
{
    const char *texts[] = {"", "a", "ab", "abc", "abcd", "\xff\xfe\x00z"};
    size_t lens[] = {0, 1, 2, 3, 4, 4};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char *enc = chat_jwt_b64url_encode(texts[i], lens[i]);
        ck_assert_ptr_nonnull(enc);
        ck_assert_ptr_null(strchr(enc, '='));
        size_t n = 0;
        unsigned char *dec = chat_jwt_b64url_decode(enc, strlen(enc), &n);
        ck_assert_ptr_nonnull(dec);
        ck_assert_uint_eq(n, lens[i]);
        ck_assert_mem_eq(dec, texts[i], n);
        free(dec);
        free(enc);
    }
    size_t n;
    ck_assert_ptr_null(chat_jwt_b64url_decode("YQ==", 4, &n));
    ck_assert_ptr_null(chat_jwt_b64url_decode("Y+", 2, &n));
    ck_assert_ptr_null(chat_jwt_b64url_decode("YR", 2, &n)); /* non-zero unused bits */
    ck_assert_ptr_null(chat_jwt_b64url_decode("Y", 1, &n));
}
END_TEST

static Suite *jwt_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_known_answer_verify);
    tcase_add_test(tc, test_known_answer_sign);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_sign_refuses_invalid_claims);
    tcase_add_test(tc, test_bad_signature);
    tcase_add_test(tc, test_other_secret);
    tcase_add_test(tc, test_alg_rejected);
    tcase_add_test(tc, test_expiry);
    tcase_add_test(tc, test_exp_missing_or_invalid);
    tcase_add_test(tc, test_tid_sub);
    tcase_add_test(tc, test_name);
    tcase_add_test(tc, test_rooms);
    tcase_add_test(tc, test_allow_room);
    tcase_add_test(tc, test_padding_and_alphabet);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_too_long);
    tcase_add_test(tc, test_peek_tenant);
    tcase_add_test(tc, test_server_accepts);
    tcase_add_test(tc, test_server_refuses_user_tokens);
    tcase_add_test(tc, test_server_times);
    tcase_add_test(tc, test_server_signature_and_sign);
    tcase_add_test(tc, test_b64url_helpers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(jwt_suite(), false);
}
