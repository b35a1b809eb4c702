/* Unit tests of the api's HTTP core (services/api/http.c) without a server: route patterns and
 * their parameters, percent-decoding, the error code words, cursors and limits, the bearer
 * header, and the checks of request bodies (unknown fields, strings, user lists). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/api/api.h"
#include "services/api/http.h"
#include "services/api/rooms.h"
#include "tests/support/util.h"

/* Matches path against pattern; on a match checks the parameters against want (n of them). */
static bool match(const char *pattern, const char *path, const char *const *want, size_t n)
{
    char *params[API_MAX_PARAMS];
    size_t got = 0;
    bool ok = api_pattern_match(pattern, path, params, &got);
    if (ok) {
        ck_assert_uint_eq(got, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_eq(params[i], want[i]);
    }
    for (size_t i = 0; i < got; i++)
        free(params[i]);
    return ok;
}

START_TEST(test_pattern_literal)
{
    ck_assert(match("/v1/rooms", "/v1/rooms", NULL, 0));
    ck_assert(!match("/v1/rooms", "/v1/rooms/", NULL, 0));
    ck_assert(!match("/v1/rooms", "/v1/room", NULL, 0));
    ck_assert(!match("/v1/rooms", "/v1/roomsx", NULL, 0));
    ck_assert(!match("/v1/rooms", "/v1", NULL, 0));
    ck_assert(!match("/v1/rooms", "/v2/rooms", NULL, 0));
    ck_assert(!match("/v1/rooms", "", NULL, 0));
}
END_TEST

START_TEST(test_pattern_params)
{
    const char *one[] = {"lobby"};
    ck_assert(match("/v1/rooms/{room}", "/v1/rooms/lobby", one, 1));
    ck_assert(!match("/v1/rooms/{room}", "/v1/rooms/", NULL, 0));
    ck_assert(!match("/v1/rooms/{room}", "/v1/rooms", NULL, 0));
    ck_assert(!match("/v1/rooms/{room}", "/v1/rooms/lobby/members", NULL, 0));
    const char *two[] = {"dm:a:b", "a/b c"};
    ck_assert(match("/v1/rooms/{room}/members/{user}", "/v1/rooms/dm%3Aa%3Ab/members/a%2Fb+c",
                    (const char *const[]){"dm:a:b", "a/b+c"}, 2));
    ck_assert(
        match("/v1/rooms/{room}/members/{user}", "/v1/rooms/dm:a:b/members/a%2Fb%20c", two, 2));
    ck_assert(!match("/v1/rooms/{room}/members/{user}", "/v1/rooms/x/members", NULL, 0));
    ck_assert(!match("/v1/rooms/{room}/members/{user}", "/v1/rooms/x/member/y", NULL, 0));
    /* a malformed escape or an escaped NUL matches nothing */
    ck_assert(!match("/v1/rooms/{room}", "/v1/rooms/a%2", NULL, 0));
    ck_assert(!match("/v1/rooms/{room}", "/v1/rooms/a%zz", NULL, 0));
    ck_assert(!match("/v1/rooms/{room}", "/v1/rooms/a%00b", NULL, 0));
}
END_TEST

START_TEST(test_percent_decode)
{
    char *s = api_percent_decode("a+b%41%e2%82%ac", 15, true);
    ck_assert_str_eq(s, "a bA\xe2\x82\xac");
    free(s);
    s = api_percent_decode("a+b", 3, false);
    ck_assert_str_eq(s, "a+b");
    free(s);
    ck_assert_ptr_null(api_percent_decode("%", 1, true));
    ck_assert_ptr_null(api_percent_decode("%4", 2, true));
    ck_assert_ptr_null(api_percent_decode("%g0", 3, true));
    ck_assert_ptr_null(api_percent_decode("%00", 3, true));
    /* a length shorter than the string: only that much is read */
    s = api_percent_decode("ab%41", 2, false);
    ck_assert_str_eq(s, "ab");
    free(s);
}
END_TEST

START_TEST(test_status_code_words)
{
    ck_assert_str_eq(api_status_code_word(400), "bad_request");
    ck_assert_str_eq(api_status_code_word(401), "unauthorized");
    ck_assert_str_eq(api_status_code_word(403), "forbidden");
    ck_assert_str_eq(api_status_code_word(404), "not_found");
    ck_assert_str_eq(api_status_code_word(405), "bad_request");
    ck_assert_str_eq(api_status_code_word(409), "conflict");
    ck_assert_str_eq(api_status_code_word(413), "too_large");
    ck_assert_str_eq(api_status_code_word(415), "bad_request");
    ck_assert_str_eq(api_status_code_word(429), "rate_limited");
    ck_assert_str_eq(api_status_code_word(500), "internal");
    ck_assert_str_eq(api_status_code_word(503), "internal");
    ck_assert_str_eq(api_status_code_word(504), "internal");
}
END_TEST

START_TEST(test_cursor_round_trip)
{
    const char *raws[] = {"lobby", "a", "dm:alice:bob", "\xc3\xa9l\xc3\xa8ve", "x y"};
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        char *c = api_cursor_encode(raws[i]);
        ck_assert_ptr_nonnull(c);
        for (const char *p = c; *p; p++) /* safe in a query string as it is */
            ck_assert_msg(strchr("+/=&?% ", *p) == NULL, "cursor %s", c);
        char raw[64];
        ck_assert(api_cursor_decode(c, raw, sizeof raw));
        ck_assert_str_eq(raw, raws[i]);
        free(c);
    }
}
END_TEST

START_TEST(test_cursor_refused)
{
    char raw[8];
    ck_assert(!api_cursor_decode("", raw, sizeof raw));      /* empty */
    ck_assert(!api_cursor_decode("bG9i=", raw, sizeof raw)); /* padding */
    ck_assert(!api_cursor_decode("bG9!", raw, sizeof raw));  /* alphabet */
    ck_assert(!api_cursor_decode("AAE", raw, sizeof raw));   /* control bytes */
    ck_assert(!api_cursor_decode("_w", raw, sizeof raw));    /* not UTF-8 */
    char *c = api_cursor_encode("12345678");                 /* too long for raw */
    ck_assert(!api_cursor_decode(c, raw, sizeof raw));
    free(c);
    c = api_cursor_encode("1234567");
    ck_assert(api_cursor_decode(c, raw, sizeof raw));
    free(c);
}
END_TEST

START_TEST(test_limit)
{
    int limit = 0;
    ck_assert(api_limit_parse(NULL, &limit));
    ck_assert_int_eq(limit, 50);
    ck_assert(api_limit_parse("1", &limit));
    ck_assert_int_eq(limit, 1);
    ck_assert(api_limit_parse("100", &limit));
    ck_assert_int_eq(limit, 100);
    const char *bad[] = {"0", "101", "", "-1", "+5", " 5", "5 ", "1e2", "0100", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!api_limit_parse(bad[i], &limit), "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_bearer)
{
    ck_assert_str_eq(api_bearer_token("Bearer abc.def.ghi"), "abc.def.ghi");
    ck_assert_str_eq(api_bearer_token("bearer  abc"), "abc");
    ck_assert_ptr_null(api_bearer_token(NULL));
    ck_assert_ptr_null(api_bearer_token("Bearer "));
    ck_assert_ptr_null(api_bearer_token("Basic dXNlcjpwYXNz"));
    ck_assert_ptr_null(api_bearer_token("Bearerabc"));
}
END_TEST

/* A request with body (JSON text, or NULL) for the body checks; resp gets what they answer. */
static api_req_t body_req(const char *json)
{
    api_req_t req = {.tenant = "acme", .request_id = "r-1"};
    req.body = json != NULL ? cJSON_Parse(json) : NULL;
    return req;
}

/* The error code and status in resp (asserting it is an error answer). */
static void expect_error(api_resp_t *resp, int status, const char *needle)
{
    ck_assert_int_eq(resp->status, status);
    const cJSON *err = cJSON_GetObjectItem(resp->body, "error");
    ck_assert_ptr_nonnull(err);
    ck_assert_int_eq(cJSON_GetObjectItem(err, "status")->valueint, status);
    ck_assert_str_eq(cJSON_GetObjectItem(err, "request_id")->valuestring, "r-1");
    const char *message = cJSON_GetObjectItem(err, "message")->valuestring;
    ck_assert_msg(strstr(message, needle) != NULL, "message: %s", message);
    cJSON_Delete(resp->body);
    resp->body = NULL;
    resp->status = 0;
}

START_TEST(test_body_fields)
{
    static const char *const allowed[] = {"room", "name", NULL};
    api_resp_t resp = {0};
    api_req_t req = body_req("{\"room\":\"a\",\"name\":\"b\"}");
    ck_assert(api_body_fields(&req, &resp, allowed));
    ck_assert_int_eq(resp.status, 0);
    cJSON_Delete(req.body);
    req = body_req("{\"room\":\"a\",\"extra\":1}");
    ck_assert(!api_body_fields(&req, &resp, allowed));
    expect_error(&resp, 400, "unknown field: extra");
    cJSON_Delete(req.body);
    req = body_req("{\"room\":\"a\",\"room\":\"b\"}");
    ck_assert(!api_body_fields(&req, &resp, allowed));
    expect_error(&resp, 400, "repeated field: room");
    cJSON_Delete(req.body);
    req = body_req(NULL); /* no body: nothing unknown */
    ck_assert(api_body_fields(&req, &resp, allowed));
}
END_TEST

START_TEST(test_body_string)
{
    api_resp_t resp = {0};
    const char *v = "unset";
    api_req_t req = body_req("{\"room\":\"lobby\",\"n\":5,\"z\":null}");
    ck_assert(api_body_string(&req, &resp, "room", true, &v));
    ck_assert_str_eq(v, "lobby");
    ck_assert(api_body_string(&req, &resp, "name", false, &v));
    ck_assert_ptr_null(v);
    ck_assert(api_body_string(&req, &resp, "z", false, &v)); /* null reads as absent */
    ck_assert_ptr_null(v);
    ck_assert(!api_body_string(&req, &resp, "name", true, &v));
    expect_error(&resp, 400, "missing field: name");
    ck_assert(!api_body_string(&req, &resp, "n", false, &v));
    expect_error(&resp, 400, "n must be a string");
    cJSON_Delete(req.body);
    req = body_req(NULL);
    ck_assert(!api_body_string(&req, &resp, "room", true, &v));
    expect_error(&resp, 400, "missing field: room");
}
END_TEST

START_TEST(test_body_users)
{
    api_resp_t resp = {0};
    const char **users;
    size_t n;
    api_req_t req = body_req("{\"users\":[\"alice\",\"bob\",\"alice\"]}");
    ck_assert(api_body_users(&req, &resp, "users", true, 3, &users, &n));
    ck_assert_uint_eq(n, 2); /* the repeat dropped, the order kept */
    ck_assert_str_eq(users[0], "alice");
    ck_assert_str_eq(users[1], "bob");
    free(users);
    ck_assert(!api_body_users(&req, &resp, "users", true, 2, &users, &n));
    expect_error(&resp, 400, "1 to 2");
    cJSON_Delete(req.body);
    const char *bad[] = {"{\"users\":[]}", "{\"users\":\"alice\"}", "{\"users\":[1]}",
                         "{\"users\":[\"system\"]}", "{\"users\":[\"\"]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req = body_req(bad[i]);
        ck_assert_msg(!api_body_users(&req, &resp, "users", true, 10, &users, &n), "%s", bad[i]);
        ck_assert_int_eq(resp.status, 400);
        cJSON_Delete(resp.body);
        resp = (api_resp_t){0};
        cJSON_Delete(req.body);
    }
    req = body_req("{}"); /* optional and absent */
    ck_assert(api_body_users(&req, &resp, "members", false, 10, &users, &n));
    ck_assert_uint_eq(n, 0);
    free(users);
    cJSON_Delete(req.body);
}
END_TEST

START_TEST(test_error_body)
{
    api_resp_t resp = {0};
    api_req_t req = body_req(NULL);
    api_error(&req, &resp, 404, "room %s not found", "x");
    const cJSON *err = cJSON_GetObjectItem(resp.body, "error");
    ck_assert_str_eq(cJSON_GetObjectItem(err, "code")->valuestring, "not_found");
    expect_error(&resp, 404, "room x not found");
    api_error_from(&req, &resp, CHAT_ERR_MONGO, "reading");
    expect_error(&resp, 503, "reading");
    api_error_from(&req, &resp, CHAT_ERR_NOMEM, "reading");
    expect_error(&resp, 500, "reading");
    api_json(&resp, 200, NULL); /* an empty object */
    ck_assert(cJSON_IsObject(resp.body));
    ck_assert_ptr_null(resp.body->child);
    cJSON_Delete(resp.body);
}
END_TEST

START_TEST(test_room_name_valid)
{
    ck_assert(api_room_name_valid(""));
    ck_assert(api_room_name_valid("Team \xc3\xa9"));
    char name[200];
    memset(name, 'a', 128);
    name[128] = '\0';
    ck_assert(api_room_name_valid(name));
    name[128] = 'a';
    name[129] = '\0';
    ck_assert(!api_room_name_valid(name));
    ck_assert(!api_room_name_valid("a\nb"));
    ck_assert(!api_room_name_valid("\xff"));
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("api_http");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_pattern_literal);
    tcase_add_test(tc, test_pattern_params);
    tcase_add_test(tc, test_percent_decode);
    tcase_add_test(tc, test_status_code_words);
    tcase_add_test(tc, test_cursor_round_trip);
    tcase_add_test(tc, test_cursor_refused);
    tcase_add_test(tc, test_limit);
    tcase_add_test(tc, test_bearer);
    tcase_add_test(tc, test_body_fields);
    tcase_add_test(tc, test_body_string);
    tcase_add_test(tc, test_body_users);
    tcase_add_test(tc, test_error_body);
    tcase_add_test(tc, test_room_name_valid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(http_suite(), false);
}
