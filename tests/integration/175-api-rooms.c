/* The server API (chat-api) over HTTP against the stack: server tokens only (a user token, a
 * token of another secret, a rotated secret are 401), errors with X-Request-Id, 404/405, body
 * limits and JSON checks, the per-tenant rate limit, Idempotency-Key; private rooms created
 * with members, listed and read, renamed, members added, paged and removed, the room deleted
 * (a tombstone: its name stays taken); a system message sent and found in the history. */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/jwt.h"
#include "common/store.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

/* One answer of the api. */
typedef struct answer {
    long status;
    cJSON *body; /* NULL when the body is empty or not JSON */
    char request_id[80];
    char retry_after[16];
    char replayed[16]; /* Idempotent-Replayed */
    char content_type[64];
} answer_t;

typedef struct buf {
    char *data;
    size_t len;
} buf_t;

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    buf_t *b = ud;
    char *grown = realloc(b->data, b->len + size * n + 1);
    ck_assert_ptr_nonnull(grown);
    b->data = grown;
    memcpy(b->data + b->len, ptr, size * n);
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

/* Copies the value of header name (case-insensitive) into out when line is that header. */
static void header_take(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    const char *v = line + n + 1;
    while (*v == ' ')
        v++;
    size_t vlen = len - (size_t)(v - line);
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    snprintf(out, outlen, "%.*s", (int)vlen, v);
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    answer_t *a = ud;
    header_take(ptr, size * n, "X-Request-Id", a->request_id, sizeof a->request_id);
    header_take(ptr, size * n, "Retry-After", a->retry_after, sizeof a->retry_after);
    header_take(ptr, size * n, "Content-Type", a->content_type, sizeof a->content_type);
    header_take(ptr, size * n, "Idempotent-Replayed", a->replayed, sizeof a->replayed);
    return size * n;
}

/* A server token of tenant signed with secret, valid for 5 minutes. */
static char *server_token(const char *tenant, const char *secret)
{
    chat_jwt_server_claims_t c = {.iat = (int64_t)time(NULL)};
    snprintf(c.tenant, sizeof c.tenant, "%s", tenant);
    c.exp = c.iat + 300;
    char *tok = NULL;
    ck_assert_int_eq(chat_jwt_server_sign(&c, secret, strlen(secret), &tok), CHAT_OK);
    return tok;
}

static char *demo_token(void)
{
    return server_token(chat_test_demo_tenant(), chat_test_demo_secret());
}

/* Sends method path (under CHAT_API_URL) with body (JSON text or NULL) and extra headers
 * (NULL-terminated, may be NULL); token NULL sends no Authorization. */
static answer_t call_ex(const char *method, const char *path, const char *token, const char *body,
                        const char *const *extra)
{
    answer_t a = {0};
    buf_t b = {0};
    char url[1024], auth[8300];
    snprintf(url, sizeof url, "%s%s", chat_test_stack_get("CHAT_API_URL"), path);
    CURL *curl = curl_easy_init();
    ck_assert_ptr_nonnull(curl);
    struct curl_slist *headers = NULL;
    if (token != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    bool typed = false;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        typed = typed || strncasecmp(extra[i], "Content-Type:", 13) == 0;
    if (body != NULL && !typed)
        headers = curl_slist_append(headers, "Content-Type: application/json");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        headers = curl_slist_append(headers, extra[i]);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(curl);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    a.body = b.data != NULL ? cJSON_Parse(b.data) : NULL;
    free(b.data);
    ck_assert_msg(a.request_id[0] != '\0', "%s %s: no X-Request-Id", method, path);
    return a;
}

static answer_t call(const char *method, const char *path, const char *token, const char *body)
{
    return call_ex(method, path, token, body, NULL);
}

/* Asserts an error answer of status with the body SERVER-API specifies; frees it. */
static void expect_error(answer_t a, long status, const char *code)
{
    ck_assert_int_eq(a.status, status);
    ck_assert_ptr_nonnull(a.body);
    const cJSON *err = cJSON_GetObjectItem(a.body, "error");
    ck_assert_ptr_nonnull(err);
    ck_assert_str_eq(cJSON_GetObjectItem(err, "code")->valuestring, code);
    ck_assert_int_eq(cJSON_GetObjectItem(err, "status")->valueint, status);
    /* a stored answer is the first one, with the first request's id */
    if (a.replayed[0] == '\0')
        ck_assert_str_eq(cJSON_GetObjectItem(err, "request_id")->valuestring, a.request_id);
    ck_assert(cJSON_IsString(cJSON_GetObjectItem(err, "message")));
    ck_assert_str_eq(a.content_type, "application/json");
    cJSON_Delete(a.body);
}

/* Asserts status and returns the body (the caller deletes it). */
static cJSON *expect_ok(answer_t a, long status)
{
    char *text = a.body != NULL ? cJSON_PrintUnformatted(a.body) : NULL;
    ck_assert_msg(a.status == status, "status %ld, expected %ld: %s", a.status, status,
                  text != NULL ? text : "");
    free(text);
    return a.body;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);
    ck_assert_msg(cJSON_IsString(it), "no string %s", key);
    return it->valuestring;
}

static long long num(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItem(o, key);
    ck_assert_msg(cJSON_IsNumber(it), "no number %s", key);
    return (long long)it->valuedouble;
}

START_TEST(test_auth)
{
    expect_error(call("GET", "/v1/rooms", NULL, NULL), 401, "unauthorized");
    /* a user token of the same tenant and secret */
    char *user =
        chat_test_token(chat_test_demo_tenant(), chat_test_demo_secret(), "alice", NULL, 3600);
    expect_error(call("GET", "/v1/rooms", user, NULL), 401, "unauthorized");
    free(user);
    char *other = server_token(chat_test_demo_tenant(), "not-the-secret");
    expect_error(call("GET", "/v1/rooms", other, NULL), 401, "unauthorized");
    free(other);
    char *unknown = server_token("no-such-tenant", "x");
    expect_error(call("GET", "/v1/rooms", unknown, NULL), 401, "unauthorized");
    free(unknown);
    expect_error(call("GET", "/v1/rooms", "a.b.c", NULL), 401, "unauthorized");

    char *tok = demo_token();
    expect_error(call("GET", "/v1/nothing", tok, NULL), 404, "not_found");
    expect_error(call("PUT", "/v1/rooms", tok, NULL), 405, "bad_request");
    expect_error(call("GET", "/v2/rooms", tok, NULL), 404, "not_found");
    answer_t a = call("GET", "/v1/rooms?limit=1", tok, NULL);
    cJSON_Delete(expect_ok(a, 200));
    ck_assert_str_eq(a.content_type, "application/json");
    answer_t b = call("GET", "/v1/rooms?limit=1", tok, NULL);
    cJSON_Delete(b.body);
    ck_assert_str_ne(a.request_id, b.request_id);
    free(tok);
}
END_TEST

START_TEST(test_bodies)
{
    char *tok = demo_token();
    expect_error(call("POST", "/v1/rooms", tok, "{\"room\":"), 400, "bad_request");
    expect_error(call("POST", "/v1/rooms", tok, "[1]"), 400, "bad_request");
    expect_error(call("POST", "/v1/rooms", tok, "{\"room\":\"x\",\"color\":1}"), 400,
                 "bad_request");
    expect_error(call("POST", "/v1/rooms", tok, "{\"room\":\"a b\"}"), 400, "bad_request");
    expect_error(call("POST", "/v1/rooms", tok, "{\"room\":\"dm:a:b\"}"), 409, "conflict");
    expect_error(call("GET", "/v1/rooms?limit=0", tok, NULL), 400, "bad_request");
    expect_error(call("GET", "/v1/rooms?cursor=%21%21", tok, NULL), 400, "bad_request");
    const char *text_plain[] = {"Content-Type: text/plain", NULL};
    expect_error(call_ex("POST", "/v1/rooms", tok, "{\"room\":\"x\"}", text_plain), 415,
                 "bad_request");
    /* over CHAT_API_MAX_BODY (1 MiB): refused on its Content-Length */
    size_t big = 1024 * 1024 + 10;
    char *body = malloc(big + 1);
    ck_assert_ptr_nonnull(body);
    memset(body, ' ', big);
    memcpy(body, "{\"room\":\"x\"}", 12);
    body[big] = '\0';
    expect_error(call("POST", "/v1/rooms", tok, body), 413, "too_large");
    free(body);
    free(tok);
}
END_TEST

START_TEST(test_rate_limit_and_rotation)
{
    char tenant[96], secret[64];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    char *tok = server_token(tenant, secret);
    /* 200 at once and 100/s: 600 quick requests cannot all pass. */
    int limited = 0, passed = 0;
    for (int i = 0; i < 600 && limited == 0; i++) {
        answer_t a = call("GET", "/v1/nothing", tok, NULL);
        if (a.status == 429) {
            limited++;
            ck_assert_msg(atoi(a.retry_after) >= 1, "Retry-After '%s'", a.retry_after);
            expect_error(a, 429, "rate_limited");
        } else {
            passed++;
            expect_error(a, 404, "not_found");
        }
    }
    ck_assert_msg(limited > 0, "no 429 after %d requests", passed);
    ck_assert_int_ge(passed, 200);
    /* another tenant is not limited by this one */
    char *demo = demo_token();
    cJSON_Delete(expect_ok(call("GET", "/v1/rooms?limit=1", demo, NULL), 200));
    free(demo);

    /* a rotated secret applies within the cache's 2 s */
    sleep(2);
    char admin[4096];
    snprintf(admin, sizeof admin, "%s/tools/chat-admin/chat-admin",
             chat_test_stack_get("CHAT_BUILD_DIR"));
    const char *const argv[] = {admin, "tenant", "put", tenant, "rotated-secret", NULL};
    ck_assert_int_eq(chat_test_run(argv), 0);
    sleep(3);
    expect_error(call("GET", "/v1/rooms", tok, NULL), 401, "unauthorized");
    free(tok);
    tok = server_token(tenant, "rotated-secret");
    cJSON *page = expect_ok(call("GET", "/v1/rooms", tok, NULL), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(page, "rooms")), 0);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(page, "next")));
    cJSON_Delete(page);
    free(tok);
}
END_TEST

START_TEST(test_rate_from_settings)
{
    /* limits.api_calls_per_s of the tenant's settings document (docs/server-api.md) is its
     * rate, with a burst in the configured proportion (2 s): 20 calls at once over 1/s. */
    char tenant[96], secret[64];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    chat_store_t *st = NULL;
    ck_assert_int_eq(chat_store_new(chat_test_stack_get("CHAT_MONGO_URI"), "test-175", &st),
                     CHAT_OK);
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *coll = chat_store_collection(st, client, "settings");
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(tenant), "limits", "{", "api_calls_per_s", BCON_INT32(1), "}");
    bson_error_t error;
    ck_assert_msg(mongoc_collection_insert_one(coll, doc, NULL, NULL, &error), "%s", error.message);
    bson_destroy(doc);
    mongoc_collection_destroy(coll);
    chat_store_release(st, client);
    chat_store_destroy(st);
    char *tok = server_token(tenant, secret);
    int limited = 0;
    for (int i = 0; i < 20; i++) {
        answer_t a = call("GET", "/v1/rooms", tok, NULL);
        if (a.status == 429)
            limited++;
        else
            ck_assert_int_eq(a.status, 200);
        cJSON_Delete(a.body);
    }
    ck_assert_int_ge(limited, 15);
    free(tok);
}
END_TEST

START_TEST(test_rooms_and_members)
{
    char *tok = demo_token();
    char room[96], path[1024], body[512];
    chat_test_unique(room, sizeof room, "private");
    snprintf(body, sizeof body,
             "{\"room\":\"%s\",\"name\":\"Team\",\"members\":[\"alice\",\"bob\",\"alice\"]}", room);
    cJSON *r = expect_ok(call("POST", "/v1/rooms", tok, body), 201);
    ck_assert_str_eq(str(r, "room"), room);
    ck_assert_str_eq(str(r, "kind"), "private");
    ck_assert_str_eq(str(r, "name"), "Team");
    ck_assert_int_eq(num(r, "members"), 2);
    ck_assert_int_gt(num(r, "created"), 0);
    cJSON_Delete(r);
    expect_error(call("POST", "/v1/rooms", tok, body), 409, "conflict");

    snprintf(path, sizeof path, "/v1/rooms/%s", room);
    r = expect_ok(call("GET", path, tok, NULL), 200);
    ck_assert_int_eq(num(r, "members"), 2);
    ck_assert_int_ge(num(r, "seq"), 0);
    cJSON_Delete(r);
    /* another tenant does not see it */
    char tenant[96], secret[64];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    char *stranger = server_token(tenant, secret);
    expect_error(call("GET", path, stranger, NULL), 404, "not_found");
    free(stranger);

    snprintf(path, sizeof path, "/v1/rooms/%s/members", room);
    r = expect_ok(call("POST", path, tok, "{\"users\":[\"carol\",\"bob\"]}"), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "added")), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "added"), 0)->valuestring, "carol");
    ck_assert_str_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "already"), 0)->valuestring, "bob");
    cJSON_Delete(r);
    expect_error(call("POST", path, tok, "{\"users\":[]}"), 400, "bad_request");
    expect_error(call("POST", path, tok, "{\"users\":[\"system\"]}"), 400, "bad_request");

    /* members in two pages: alice, bob | carol */
    snprintf(path, sizeof path, "/v1/rooms/%s/members?limit=2", room);
    r = expect_ok(call("GET", path, tok, NULL), 200);
    cJSON *list = cJSON_GetObjectItem(r, "members");
    ck_assert_int_eq(cJSON_GetArraySize(list), 2);
    ck_assert_str_eq(str(cJSON_GetArrayItem(list, 0), "user"), "alice");
    ck_assert_str_eq(str(cJSON_GetArrayItem(list, 1), "user"), "bob");
    snprintf(path, sizeof path, "/v1/rooms/%s/members?limit=2&cursor=%s", room, str(r, "next"));
    cJSON_Delete(r);
    r = expect_ok(call("GET", path, tok, NULL), 200);
    list = cJSON_GetObjectItem(r, "members");
    ck_assert_int_eq(cJSON_GetArraySize(list), 1);
    ck_assert_str_eq(str(cJSON_GetArrayItem(list, 0), "user"), "carol");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r, "next")));
    cJSON_Delete(r);

    snprintf(path, sizeof path, "/v1/rooms/%s/members/bob", room);
    answer_t a = call("DELETE", path, tok, NULL);
    ck_assert_int_eq(a.status, 204);
    ck_assert_ptr_null(a.body);
    expect_error(call("DELETE", path, tok, NULL), 404, "not_found");
    snprintf(path, sizeof path, "/v1/rooms/%s", room);
    r = expect_ok(call("PATCH", path, tok, "{\"name\":\"Renamed team\"}"), 200);
    ck_assert_str_eq(str(r, "name"), "Renamed team");
    ck_assert_int_eq(num(r, "members"), 2);
    cJSON_Delete(r);
    expect_error(call("PATCH", path, tok, "{\"title\":\"x\"}"), 400, "bad_request");

    /* the room list pages through to it */
    bool found = false;
    char cursor[512] = "";
    for (int page = 0; page < 1000 && !found; page++) {
        snprintf(path, sizeof path, "/v1/rooms?limit=100%s%s", cursor[0] ? "&cursor=" : "", cursor);
        r = expect_ok(call("GET", path, tok, NULL), 200);
        cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(r, "rooms"))
        {
            if (strcmp(str(it, "room"), room) == 0) {
                found = true;
                ck_assert_str_eq(str(it, "name"), "Renamed team");
            }
        }
        const cJSON *next = cJSON_GetObjectItem(r, "next");
        bool last = !cJSON_IsString(next);
        if (!last)
            snprintf(cursor, sizeof cursor, "%s", next->valuestring);
        cJSON_Delete(r);
        if (last)
            break;
    }
    ck_assert_msg(found, "%s not in GET /v1/rooms", room);

    /* delete: gone, its name stays taken, its members with it */
    snprintf(path, sizeof path, "/v1/rooms/%s", room);
    a = call("DELETE", path, tok, NULL);
    ck_assert_int_eq(a.status, 204);
    expect_error(call("GET", path, tok, NULL), 404, "not_found");
    expect_error(call("DELETE", path, tok, NULL), 404, "not_found");
    snprintf(body, sizeof body, "{\"room\":\"%s\"}", room);
    expect_error(call("POST", "/v1/rooms", tok, body), 409, "conflict");
    snprintf(path, sizeof path, "/v1/rooms/%s/members", room);
    expect_error(call("GET", path, tok, NULL), 404, "not_found");
    snprintf(path, sizeof path, "/v1/rooms/%s/messages", room);
    expect_error(call("GET", path, tok, NULL), 404, "not_found");
    free(tok);
}
END_TEST

START_TEST(test_idempotency)
{
    char *tok = demo_token();
    char room[96], body[256], key[160];
    chat_test_unique(room, sizeof room, "idem");
    chat_test_unique(key, sizeof key, "key");
    char header[200];
    snprintf(header, sizeof header, "Idempotency-Key: %s", key);
    const char *extra[] = {header, NULL};
    snprintf(body, sizeof body, "{\"room\":\"%s\",\"members\":[\"dan\"]}", room);
    cJSON *first = expect_ok(call_ex("POST", "/v1/rooms", tok, body, extra), 201);
    /* the repeat answers the first answer (not 409: the room exists by now) */
    answer_t repeat = call_ex("POST", "/v1/rooms", tok, body, extra);
    ck_assert_str_eq(repeat.replayed, "true");
    cJSON *again = expect_ok(repeat, 201);
    ck_assert(cJSON_Compare(first, again, true));
    cJSON_Delete(first);
    cJSON_Delete(again);
    /* the same key for another request */
    char path[1024];
    snprintf(path, sizeof path, "/v1/rooms/%s/members", room);
    expect_error(call_ex("POST", path, tok, "{\"users\":[\"eve\"]}", extra), 409, "conflict");
    /* without the key it is a second create */
    expect_error(call("POST", "/v1/rooms", tok, body), 409, "conflict");
    /* an error answer is stored too */
    char key2[200];
    snprintf(key2, sizeof key2, "Idempotency-Key: %s-2", key);
    const char *extra2[] = {key2, NULL};
    expect_error(call_ex("POST", "/v1/rooms", tok, "{\"room\":\"a b\"}", extra2), 400,
                 "bad_request");
    answer_t stored = call_ex("POST", "/v1/rooms", tok, "{\"room\":\"a b\"}", extra2);
    ck_assert_str_eq(stored.replayed, "true");
    expect_error(stored, 400, "bad_request");
    free(tok);
}
END_TEST

/* The messages of room in the history, polled until one from "system" with text shows up or
 * 15 s pass; returns that message (the caller deletes it) or NULL. */
static cJSON *history_find(const char *tok, const char *room, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "/v1/rooms/%s/messages?limit=100", room);
    for (int i = 0; i < 150; i++) {
        cJSON *page = expect_ok(call("GET", path, tok, NULL), 200);
        ck_assert(cJSON_IsBool(cJSON_GetObjectItem(page, "more")));
        cJSON *m;
        int64_t last = 0;
        cJSON_ArrayForEach(m, cJSON_GetObjectItem(page, "messages"))
        {
            ck_assert_int_gt(num(m, "seq"), last); /* ascending */
            last = num(m, "seq");
            const cJSON *t = cJSON_GetObjectItem(m, "text");
            if (strcmp(str(m, "from"), "system") == 0 && cJSON_IsString(t) &&
                strcmp(t->valuestring, text) == 0) {
                cJSON *found = cJSON_Duplicate(m, true);
                cJSON_Delete(page);
                return found;
            }
        }
        cJSON_Delete(page);
        usleep(100000);
    }
    return NULL;
}

START_TEST(test_system_message)
{
    char *tok = demo_token();
    char room[96], path[1024], body[512];
    chat_test_unique(room, sizeof room, "sysmsg");
    snprintf(body, sizeof body, "{\"room\":\"%s\",\"members\":[\"alice\"]}", room);
    cJSON_Delete(expect_ok(call("POST", "/v1/rooms", tok, body), 201));
    snprintf(path, sizeof path, "/v1/rooms/%s/messages", room);
    expect_error(call("POST", path, tok, "{\"text\":\"\",\"cid\":\"c\"}"), 400, "bad_request");
    expect_error(call("POST", path, tok, "{\"text\":\"hi\"}"), 400, "bad_request");
    expect_error(call("POST", path, tok, "{\"text\":\"hi\",\"cid\":\"c\",\"from\":\"system\"}"),
                 400, "bad_request");
    expect_error(call("POST", path, tok, "{\"text\":\"\\u00ff\\ud800\",\"cid\":\"c\"}"), 400,
                 "bad_request");
    char *long_text = malloc(4100 + 64);
    ck_assert_ptr_nonnull(long_text);
    int n = snprintf(long_text, 64, "{\"cid\":\"c\",\"text\":\"");
    memset(long_text + n, 'x', 4001);
    snprintf(long_text + n + 4001, 64, "\"}");
    expect_error(call("POST", path, tok, long_text), 413, "too_large");
    free(long_text);

    /* The answer is the ack (201 with seq and id) once the message service's answers reach
     * the api (the reply channel: broadcast routes an api origin's answer to Redis); without
     * that the wait ends in 504 and the message is stored all the same. */
    answer_t a = call("POST", path, tok, "{\"text\":\"welcome\",\"cid\":\"w-1\"}");
    ck_assert_msg(a.status == 201 || a.status == 504, "POST messages: %ld", a.status);
    if (a.status == 201) {
        ck_assert_int_gt(num(a.body, "seq"), 0);
        ck_assert_str_eq(str(a.body, "from"), "system");
        ck_assert_str_eq(str(a.body, "cid"), "w-1");
        ck_assert_int_eq((int)strlen(str(a.body, "id")), 24);
    }
    cJSON_Delete(a.body);
    cJSON *m = history_find(tok, room, "welcome");
    ck_assert_msg(m != NULL, "the system message is not in the history of %s", room);
    ck_assert_str_eq(str(m, "cid"), "w-1");
    ck_assert_int_gt(num(m, "ts"), 0);
    char id[32];
    snprintf(id, sizeof id, "%s", str(m, "id"));
    cJSON_Delete(m);
    /* The same cid again: the original message, nothing new stored. */
    a = call("POST", path, tok, "{\"text\":\"welcome\",\"cid\":\"w-1\"}");
    ck_assert_msg(a.status == 201 || a.status == 504, "POST messages again: %ld", a.status);
    if (a.status == 201)
        ck_assert_str_eq(str(a.body, "id"), id);
    cJSON_Delete(a.body);

    /* The tenant edits and deletes: bad ids and reasons are refused before anything is
     * produced; an edit is answered from its ack (200 with the change's useq) once answers
     * reach the api, and the history shows the new text. */
    snprintf(path, sizeof path, "/v1/rooms/%s/messages/not-an-id", room);
    expect_error(call("PATCH", path, tok, "{\"text\":\"x\"}"), 404, "not_found");
    snprintf(path, sizeof path, "/v1/rooms/%s/messages/%s", room, id);
    expect_error(call("PATCH", path, tok, "{\"text\":\"\"}"), 400, "bad_request");
    expect_error(call("PATCH", path, tok, "{\"body\":\"x\"}"), 400, "bad_request");
    snprintf(path, sizeof path, "/v1/rooms/%s/messages/%s?reason=%%0A", room, id);
    expect_error(call("DELETE", path, tok, NULL), 400, "bad_request");
    snprintf(path, sizeof path, "/v1/rooms/%s/messages/%s", room, id);
    a = call("PATCH", path, tok, "{\"text\":\"welcome, all\"}");
    ck_assert_msg(a.status == 200 || a.status == 504, "PATCH message: %ld", a.status);
    if (a.status == 200) {
        ck_assert_str_eq(str(a.body, "op"), "edit");
        ck_assert_int_gt(num(a.body, "useq"), 0);
        cJSON_Delete(a.body);
        m = history_find(tok, room, "welcome, all");
        ck_assert_msg(m != NULL, "the edit is not in the history");
        ck_assert_int_gt(num(m, "edited"), 0);
        cJSON_Delete(m);
    } else {
        cJSON_Delete(a.body);
    }
    expect_error(call("GET", "/v1/rooms/x/messages?before=0", tok, NULL), 400, "bad_request");
    free(tok);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("api-rooms");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_auth);
    tcase_add_test(tc, test_bodies);
    tcase_add_test(tc, test_rate_limit_and_rotation);
    tcase_add_test(tc, test_rate_from_settings);
    tcase_add_test(tc, test_rooms_and_members);
    tcase_add_test(tc, test_idempotency);
    tcase_add_test(tc, test_system_message);
    suite_add_tcase(s, tc);
    int rc = chat_test_suite_run(s, false);
    curl_global_cleanup();
    return rc;
}
