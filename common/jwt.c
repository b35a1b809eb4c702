/* HS256 JSON Web Tokens (RFC 7519) for client authentication: strict base64url (no padding),
 * a header that can only say HS256, HMAC-SHA256 compared in constant time, and claims checked
 * against the naming rules of common/names.h. Failure reasons are fixed strings, so neither
 * the token nor the secret can end up in a log line. */
#include "common/jwt.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LEN 32                               /* HMAC-SHA256 */
#define NAME_BUF_LEN (CHAT_JWT_NAME_MAX * 4 + 1) /* as chat_jwt_claims_t.name */

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* A token split into its three base64url parts (pointers into the token). */
typedef struct jwt_parts {
    const char *header;
    size_t header_len;
    const char *payload;
    size_t payload_len;
    const char *sig;
    size_t sig_len;
} jwt_parts_t;

/* The decoded header and payload of a token. */
typedef struct jwt_doc {
    jwt_parts_t parts;
    cJSON *header;
    cJSON *payload;
} jwt_doc_t;

static void set_reason(char *reason, size_t reason_len, const char *text)
{
    if (reason != NULL && reason_len > 0)
        snprintf(reason, reason_len, "%s", text);
}

/* Value of one base64url character, or -1. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url src[0..len) into a malloc'd, NUL-terminated buffer (*out_len
 * bytes without the NUL). Returns NULL on any character outside the alphabet (padding
 * included), an impossible length, non-zero unused trailing bits (a second spelling of
 * the same bytes) or allocation failure. */
static unsigned char *b64url_decode(const char *src, size_t len, size_t *out_len)
{
    if (len % 4 == 1)
        return NULL;
    size_t cap = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    unsigned char *out = malloc(cap + 1);
    if (out == NULL)
        return NULL;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)src[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) {
        free(out);
        return NULL;
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

/* Encodes src[0..len) as unpadded base64url at dst (room for 4 * ceil(len / 3) + 1 bytes).
 * Returns the length written, without the NUL. */
static size_t b64url_encode(const unsigned char *src, size_t len, char *dst)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 8) | src[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            dst[n++] = b64url_alphabet[(acc >> bits) & 0x3f];
        }
        acc &= (1u << bits) - 1;
    }
    if (bits > 0)
        dst[n++] = b64url_alphabet[(acc << (6 - bits)) & 0x3f];
    dst[n] = '\0';
    return n;
}

/* Splits token into three non-empty parts at its two dots. Returns false if the token is
 * NULL, longer than CHAT_JWT_MAX_LEN or not of the form a.b.c. */
static bool jwt_split(const char *token, jwt_parts_t *p)
{
    if (token == NULL)
        return false;
    size_t len = strnlen(token, CHAT_JWT_MAX_LEN + 1);
    if (len > CHAT_JWT_MAX_LEN)
        return false;
    const char *dot1 = memchr(token, '.', len);
    if (dot1 == NULL)
        return false;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL)
        return false;
    p->header = token;
    p->header_len = (size_t)(dot1 - token);
    p->payload = dot1 + 1;
    p->payload_len = (size_t)(dot2 - p->payload);
    p->sig = dot2 + 1;
    p->sig_len = len - (size_t)(p->sig - token);
    return p->header_len > 0 && p->payload_len > 0 && p->sig_len > 0;
}

/* Decodes one base64url part and parses it as a JSON object. Returns NULL if it is not
 * valid base64url, contains a NUL byte or an escaped NUL, or is not a JSON object. */
static cJSON *jwt_decode_object(const char *part, size_t part_len)
{
    size_t len;
    unsigned char *text = b64url_decode(part, part_len, &len);
    if (text == NULL)
        return NULL;
    cJSON *obj = NULL;
    if (memchr(text, '\0', len) == NULL && !chat_json_has_escaped_nul((const char *)text, len))
        obj = cJSON_ParseWithOpts((const char *)text, NULL, 1);
    free(text);
    if (obj != NULL && !cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/* Number of members of obj named key (case-sensitive). */
static int member_count(const cJSON *obj, const char *key)
{
    int n = 0;
    for (const cJSON *it = obj->child; it != NULL; it = it->next) {
        if (it->string != NULL && strcmp(it->string, key) == 0)
            n++;
    }
    return n;
}

/* True if any of keys (NULL-terminated) appears more than once in obj: libraries disagree
 * on which duplicate wins, so a token with one is ambiguous. */
static bool has_duplicate(const cJSON *obj, const char *const *keys)
{
    for (; *keys != NULL; keys++) {
        if (member_count(obj, *keys) > 1)
            return true;
    }
    return false;
}

static void jwt_doc_free(jwt_doc_t *doc)
{
    cJSON_Delete(doc->header);
    cJSON_Delete(doc->payload);
    doc->header = doc->payload = NULL;
}

/* Splits and decodes token into doc (header and payload as JSON objects; the signature is
 * left encoded). Returns false with a reason on any structural problem. */
static bool jwt_doc_parse(const char *token, jwt_doc_t *doc, const char **why)
{
    memset(doc, 0, sizeof *doc);
    if (!jwt_split(token, &doc->parts)) {
        *why = "malformed token";
        return false;
    }
    doc->header = jwt_decode_object(doc->parts.header, doc->parts.header_len);
    if (doc->header == NULL) {
        *why = "malformed header";
        return false;
    }
    doc->payload = jwt_decode_object(doc->parts.payload, doc->parts.payload_len);
    if (doc->payload == NULL) {
        jwt_doc_free(doc);
        *why = "malformed payload";
        return false;
    }
    return true;
}

/* The string member key of obj, or NULL if it is absent or not a string. */
static const char *string_member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* Checks that the header says HS256 (typ JWT if present) and asks for no extension. */
static bool header_check(const cJSON *header, const char **why)
{
    static const char *const keys[] = {"alg", "typ", "crit", NULL};
    if (has_duplicate(header, keys)) {
        *why = "duplicate header field";
        return false;
    }
    const char *alg = string_member(header, "alg");
    if (alg == NULL || strcmp(alg, "HS256") != 0) {
        *why = "unsupported alg";
        return false;
    }
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
    if (typ != NULL && !(cJSON_IsString(typ) && strcmp(typ->valuestring, "JWT") == 0)) {
        *why = "unsupported typ";
        return false;
    }
    /* RFC 7515 4.1.11: extensions listed in crit must be understood; we know none. */
    if (cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL) {
        *why = "unsupported crit";
        return false;
    }
    return true;
}

/* HMAC-SHA256 of data with secret into mac (SIG_LEN bytes). Returns false on failure. */
static bool hs256(const void *secret, size_t secret_len, const char *data, size_t len,
                  unsigned char mac[SIG_LEN])
{
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)data, len, mac,
             &mac_len) == NULL)
        return false;
    return mac_len == SIG_LEN;
}

/* Checks the signature of the parts against secret, comparing in constant time. */
static bool signature_check(const jwt_parts_t *p, const void *secret, size_t secret_len,
                            const char **why)
{
    size_t sig_len;
    unsigned char *sig = b64url_decode(p->sig, p->sig_len, &sig_len);
    if (sig == NULL || sig_len != SIG_LEN) {
        free(sig);
        *why = "malformed signature";
        return false;
    }
    unsigned char mac[SIG_LEN];
    size_t signed_len = p->header_len + 1 + p->payload_len;
    bool ok = hs256(secret, secret_len, p->header, signed_len, mac) &&
              CRYPTO_memcmp(mac, sig, SIG_LEN) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    free(sig);
    if (!ok)
        *why = "bad signature";
    return ok;
}

/* Reads an integral numeric claim within the exactly representable range. Returns false
 * if it is absent (*present = false) or not such a number. */
static bool int_claim(const cJSON *payload, const char *key, int64_t *out, bool *present)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(payload, key);
    *present = it != NULL;
    if (!cJSON_IsNumber(it))
        return false;
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > (double)CHAT_JSON_INT_MAX)
        return false;
    *out = (int64_t)d;
    return true;
}

/* True if name is valid UTF-8 of at most CHAT_JWT_NAME_MAX characters without control
 * characters (C0, DEL and C1). */
static bool display_name_valid(const char *name)
{
    size_t len = strnlen(name, NAME_BUF_LEN);
    long chars = len < NAME_BUF_LEN ? chat_utf8_chars_printable(name, len) : -1;
    return chars >= 0 && chars <= CHAT_JWT_NAME_MAX;
}

/* Copies the rooms claim (an array of valid room names) into c. */
static bool rooms_claim(const cJSON *rooms, chat_jwt_claims_t *c, const char **why)
{
    if (!cJSON_IsArray(rooms)) {
        *why = "rooms is not an array";
        return false;
    }
    int n = cJSON_GetArraySize(rooms);
    if (n > CHAT_JWT_ROOMS_MAX) {
        *why = "too many rooms";
        return false;
    }
    c->has_rooms = true;
    c->rooms = calloc(n > 0 ? (size_t)n : 1, sizeof *c->rooms);
    if (c->rooms == NULL) {
        *why = "out of memory";
        return false;
    }
    for (const cJSON *it = rooms->child; it != NULL; it = it->next) {
        if (!cJSON_IsString(it) || !chat_name_room_valid(it->valuestring)) {
            *why = "invalid room in rooms";
            return false;
        }
        c->rooms[c->nrooms] = strdup(it->valuestring);
        if (c->rooms[c->nrooms] == NULL) {
            *why = "out of memory";
            return false;
        }
        c->nrooms++;
    }
    return true;
}

/* Reads the tid claim into tenant (tenant_len bytes). */
static bool tenant_claim(const cJSON *payload, char *tenant, size_t tenant_len, const char **why)
{
    const char *tid = string_member(payload, "tid");
    if (tid == NULL || !chat_name_tenant_valid(tid)) {
        *why = tid == NULL ? "missing tid" : "invalid tid";
        return false;
    }
    if (tenant != NULL && snprintf(tenant, tenant_len, "%s", tid) >= (int)tenant_len) {
        *why = "tid too long for buffer";
        return false;
    }
    return true;
}

/* True if exp (and nbf, if present) allow now_s with leeway_s of clock skew. */
static bool time_check(const cJSON *payload, int64_t now_s, int64_t leeway_s, int64_t *exp,
                       const char **why)
{
    bool present;
    if (!int_claim(payload, "exp", exp, &present)) {
        *why = present ? "invalid exp" : "missing exp";
        return false;
    }
    if (leeway_s < 0)
        leeway_s = 0;
    int64_t earliest, latest;
    if (__builtin_sub_overflow(now_s, leeway_s, &earliest))
        earliest = INT64_MIN;
    if (__builtin_add_overflow(now_s, leeway_s, &latest))
        latest = INT64_MAX;
    if (*exp <= earliest) {
        *why = "expired";
        return false;
    }
    /* nbf is optional, but a token that carries it must be honoured (RFC 7519 4.1.5). */
    int64_t nbf;
    if (!int_claim(payload, "nbf", &nbf, &present) && present) {
        *why = "invalid nbf";
        return false;
    }
    if (present && nbf > latest) {
        *why = "not yet valid";
        return false;
    }
    return true;
}

/* Fills c from a payload whose signature has been checked. */
static bool claims_read(const cJSON *payload, int64_t now_s, int64_t leeway_s, chat_jwt_claims_t *c,
                        const char **why)
{
    static const char *const keys[] = {"tid", "sub", "exp", "nbf", "name", "rooms", NULL};
    if (has_duplicate(payload, keys)) {
        *why = "duplicate claim";
        return false;
    }
    if (!tenant_claim(payload, c->tenant, sizeof c->tenant, why))
        return false;
    const char *sub = string_member(payload, "sub");
    if (sub == NULL || !chat_name_user_valid(sub)) {
        *why = sub == NULL ? "missing sub" : "invalid sub";
        return false;
    }
    snprintf(c->user, sizeof c->user, "%s", sub);
    if (!time_check(payload, now_s, leeway_s, &c->exp, why))
        return false;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(payload, "name");
    if (name != NULL) {
        if (!cJSON_IsString(name) || !display_name_valid(name->valuestring)) {
            *why = "invalid name";
            return false;
        }
        snprintf(c->name, sizeof c->name, "%s", name->valuestring);
    }
    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(payload, "rooms");
    return rooms == NULL || rooms_claim(rooms, c, why);
}

chat_err_t chat_jwt_peek_tenant(const char *token, char *tenant, size_t tenant_len)
{
    jwt_doc_t doc;
    const char *why = NULL;
    if (tenant == NULL || tenant_len == 0 || !jwt_doc_parse(token, &doc, &why))
        return CHAT_ERR_UNAUTHORIZED;
    bool ok = tenant_claim(doc.payload, tenant, tenant_len, &why);
    jwt_doc_free(&doc);
    if (!ok)
        tenant[0] = '\0';
    return ok ? CHAT_OK : CHAT_ERR_UNAUTHORIZED;
}

/* The common start of both verifies: clears reason and the claims at out (out_size bytes),
 * then parses token and checks its header (which decides the algorithm) and then its signature
 * with secret. True with *doc (the caller frees it); false with the reason set and nothing to
 * free (out NULL, no secret, a malformed token, a bad header or signature). */
static bool jwt_verify_start(const char *token, const void *secret, size_t secret_len, void *out,
                             size_t out_size, jwt_doc_t *doc, char *reason, size_t reason_len)
{
    set_reason(reason, reason_len, "");
    if (out == NULL) {
        set_reason(reason, reason_len, "no output");
        return false;
    }
    memset(out, 0, out_size);
    if (secret == NULL || secret_len == 0 || secret_len > INT32_MAX) {
        set_reason(reason, reason_len, "no secret");
        return false;
    }
    const char *why = NULL;
    if (!jwt_doc_parse(token, doc, &why)) {
        set_reason(reason, reason_len, why);
        return false;
    }
    if (header_check(doc->header, &why) && signature_check(&doc->parts, secret, secret_len, &why))
        return true;
    jwt_doc_free(doc);
    set_reason(reason, reason_len, why);
    return false;
}

chat_err_t chat_jwt_verify(const char *token, const void *secret, size_t secret_len, int64_t now_s,
                           int64_t leeway_s, chat_jwt_claims_t *out, char *reason,
                           size_t reason_len)
{
    jwt_doc_t doc;
    if (!jwt_verify_start(token, secret, secret_len, out, sizeof *out, &doc, reason, reason_len))
        return CHAT_ERR_UNAUTHORIZED;
    const char *why = NULL;
    /* The claims are only believed once the signature is. */
    bool ok = claims_read(doc.payload, now_s, leeway_s, out, &why);
    jwt_doc_free(&doc);
    if (!ok) {
        chat_jwt_claims_clear(out);
        set_reason(reason, reason_len, why);
        return CHAT_ERR_UNAUTHORIZED;
    }
    return CHAT_OK;
}

bool chat_jwt_claims_allow_room(const chat_jwt_claims_t *c, const char *room)
{
    if (c == NULL || room == NULL)
        return false;
    if (!c->has_rooms)
        return true;
    for (size_t i = 0; i < c->nrooms; i++) {
        if (strcmp(c->rooms[i], room) == 0)
            return true;
    }
    return false;
}

void chat_jwt_claims_clear(chat_jwt_claims_t *c)
{
    if (c == NULL)
        return;
    if (c->rooms != NULL) {
        for (size_t i = 0; i < c->nrooms; i++)
            free(c->rooms[i]);
        free(c->rooms);
    }
    memset(c, 0, sizeof *c);
}

/* True if c holds claims that chat_jwt_verify would accept (apart from time). */
static bool claims_signable(const chat_jwt_claims_t *c)
{
    if (!chat_name_tenant_valid(c->tenant) || !chat_name_user_valid(c->user) ||
        fabs((double)c->exp) > (double)CHAT_JSON_INT_MAX || !display_name_valid(c->name))
        return false;
    if (!c->has_rooms)
        return true;
    if (c->nrooms > CHAT_JWT_ROOMS_MAX || (c->nrooms > 0 && c->rooms == NULL))
        return false;
    for (size_t i = 0; i < c->nrooms; i++) {
        if (!chat_name_room_valid(c->rooms[i]))
            return false;
    }
    return true;
}

/* The payload JSON text of c, malloc'd, or NULL when out of memory. */
static char *claims_json(const chat_jwt_claims_t *c)
{
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL)
        return NULL;
    bool ok = cJSON_AddStringToObject(obj, "tid", c->tenant) != NULL &&
              cJSON_AddStringToObject(obj, "sub", c->user) != NULL &&
              cJSON_AddNumberToObject(obj, "exp", (double)c->exp) != NULL &&
              (c->name[0] == '\0' || cJSON_AddStringToObject(obj, "name", c->name) != NULL);
    if (ok && c->has_rooms) {
        cJSON *rooms = cJSON_AddArrayToObject(obj, "rooms");
        ok = rooms != NULL;
        for (size_t i = 0; ok && i < c->nrooms; i++) {
            cJSON *room = cJSON_CreateString(c->rooms[i]);
            ok = room != NULL && cJSON_AddItemToArray(rooms, room);
        }
    }
    char *text = ok ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return text;
}

/* The token of payload (JSON text) signed with secret: header.payload.signature, malloc'd
 * into *out. CHAT_ERR_TOO_LARGE if it would be longer than verification accepts. */
static chat_err_t token_sign(const char *payload, const void *secret, size_t secret_len, char **out)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t header_len = sizeof header - 1, payload_len = strlen(payload);
    size_t cap = (header_len + 2) / 3 * 4 + (payload_len + 2) / 3 * 4 + (SIG_LEN + 2) / 3 * 4 + 3;
    char *token = malloc(cap);
    if (token == NULL)
        return CHAT_ERR_NOMEM;
    size_t n = b64url_encode((const unsigned char *)header, header_len, token);
    token[n++] = '.';
    n += b64url_encode((const unsigned char *)payload, payload_len, token + n);
    unsigned char mac[SIG_LEN];
    if (!hs256(secret, secret_len, token, n, mac)) {
        free(token);
        return CHAT_ERR_INVALID;
    }
    token[n++] = '.';
    n += b64url_encode(mac, SIG_LEN, token + n);
    OPENSSL_cleanse(mac, sizeof mac);
    if (n > CHAT_JWT_MAX_LEN) { /* e.g. many long rooms: verify would refuse it */
        free(token);
        return CHAT_ERR_TOO_LARGE;
    }
    *out = token;
    return CHAT_OK;
}

chat_err_t chat_jwt_sign(const chat_jwt_claims_t *c, const void *secret, size_t secret_len,
                         char **out)
{
    if (out == NULL)
        return CHAT_ERR_INVALID;
    *out = NULL;
    if (c == NULL || secret == NULL || secret_len == 0 || secret_len > INT32_MAX ||
        !claims_signable(c))
        return CHAT_ERR_INVALID;
    char *payload = claims_json(c);
    if (payload == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = token_sign(payload, secret, secret_len, out);
    free(payload);
    return err;
}

/* ---- server tokens ---- */

/* Fills c from the payload of a server token whose signature has been checked. */
static bool server_claims_read(const cJSON *payload, int64_t now_s, int64_t leeway_s,
                               chat_jwt_server_claims_t *c, const char **why)
{
    static const char *const keys[] = {"tid", "sub", "scope", "iat", "exp", "nbf", NULL};
    if (has_duplicate(payload, keys)) {
        *why = "duplicate claim";
        return false;
    }
    if (cJSON_GetObjectItemCaseSensitive(payload, "sub") != NULL) {
        *why = "a user token (sub) is not a server token";
        return false;
    }
    const char *scope = string_member(payload, "scope");
    if (scope == NULL || strcmp(scope, CHAT_JWT_SERVER_SCOPE) != 0) {
        *why = "scope is not server";
        return false;
    }
    if (!tenant_claim(payload, c->tenant, sizeof c->tenant, why))
        return false;
    bool present;
    if (!int_claim(payload, "iat", &c->iat, &present)) {
        *why = present ? "invalid iat" : "missing iat";
        return false;
    }
    if (!time_check(payload, now_s, leeway_s, &c->exp, why))
        return false;
    if (c->exp <= c->iat || c->exp - c->iat > CHAT_JWT_SERVER_TTL_MAX) {
        *why = "exp not within 300 s after iat";
        return false;
    }
    if (c->iat > now_s + (leeway_s > 0 ? leeway_s : 0)) {
        *why = "issued in the future";
        return false;
    }
    return true;
}

chat_err_t chat_jwt_server_verify(const char *token, const void *secret, size_t secret_len,
                                  int64_t now_s, int64_t leeway_s, chat_jwt_server_claims_t *out,
                                  char *reason, size_t reason_len)
{
    jwt_doc_t doc;
    if (!jwt_verify_start(token, secret, secret_len, out, sizeof *out, &doc, reason, reason_len))
        return CHAT_ERR_UNAUTHORIZED;
    const char *why = NULL;
    bool ok = server_claims_read(doc.payload, now_s, leeway_s, out, &why);
    jwt_doc_free(&doc);
    if (!ok) {
        memset(out, 0, sizeof *out);
        set_reason(reason, reason_len, why);
        return CHAT_ERR_UNAUTHORIZED;
    }
    return CHAT_OK;
}

chat_err_t chat_jwt_server_sign(const chat_jwt_server_claims_t *c, const void *secret,
                                size_t secret_len, char **out)
{
    if (out == NULL)
        return CHAT_ERR_INVALID;
    *out = NULL;
    if (c == NULL || secret == NULL || secret_len == 0 || secret_len > INT32_MAX ||
        !chat_name_tenant_valid(c->tenant) || c->exp <= c->iat ||
        c->exp - c->iat > CHAT_JWT_SERVER_TTL_MAX || c->iat < 0 || c->exp > CHAT_JSON_INT_MAX)
        return CHAT_ERR_INVALID;
    cJSON *obj = cJSON_CreateObject();
    bool ok = obj != NULL && cJSON_AddStringToObject(obj, "tid", c->tenant) != NULL &&
              cJSON_AddStringToObject(obj, "scope", CHAT_JWT_SERVER_SCOPE) != NULL &&
              cJSON_AddNumberToObject(obj, "iat", (double)c->iat) != NULL &&
              cJSON_AddNumberToObject(obj, "exp", (double)c->exp) != NULL;
    char *payload = ok ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (payload == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = token_sign(payload, secret, secret_len, out);
    free(payload);
    return err;
}

/* ---- base64url for other users (the server API's cursors) ---- */

char *chat_jwt_b64url_encode(const void *src, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out != NULL)
        b64url_encode(src, len, out);
    return out;
}

unsigned char *chat_jwt_b64url_decode(const char *src, size_t len, size_t *out_len)
{
    if (src == NULL || out_len == NULL)
        return NULL;
    return b64url_decode(src, len, out_len);
}
