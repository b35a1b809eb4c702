/* End to end: every kind of bad input gets the error or close code of the client protocol
 * (malformed frames, bad fields and names, text length counted in characters, frames
 * before auth, no auth in time, bad tokens, oversized frames, floods), and through all of
 * it the gateway keeps serving its other clients. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define CLOSE_UNAUTHORIZED 4001
#define CLOSE_RATE_LIMIT 4008
#define CLOSE_TOO_BIG 1009
#define FRAME_LIMIT (64 * 1024)
#define TEXT_LIMIT 4000

static const char *tenant, *secret;

/* A demo-tenant user with a fresh name starting with prefix, on gateway gw. */
static chat_tc_t *connect_user(size_t gw, const char *prefix)
{
    char user[64];
    chat_test_unique(user, sizeof user, prefix);
    return chat_tc_connect_demo(gw, user);
}

/* A string of n copies of unit, malloc'd. */
static char *repeat(const char *unit, size_t n)
{
    size_t len = strlen(unit);
    char *s = malloc(len * n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * len, unit, len);
    s[len * n] = '\0';
    return s;
}

/* Checks that error frame e has code and echoes ref_key = ref (if given); frees e. */
static void check_error(cJSON *e, const char *code, const char *ref_key, const char *ref,
                        const char *what)
{
    ck_assert_msg(strcmp(chat_json_str(e, "code") ?: "", code) == 0, "%s: error %s, expected %s",
                  what, chat_json_str(e, "code"), code);
    ck_assert_msg(chat_json_str(e, "message") != NULL, "%s: error without a message", what);
    if (ref_key != NULL)
        ck_assert_msg(strcmp(chat_json_str(e, ref_key) ?: "", ref) == 0,
                      "%s: the error does not echo %s %s", what, ref_key, ref);
    cJSON_Delete(e);
}

/* Expects the next error frame on c to have code and to echo ref_key = ref (if given). */
static void expect_error(chat_tc_t *c, const char *code, const char *ref_key, const char *ref,
                         const char *what)
{
    cJSON *e = chat_tc_wait(c, "error", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(e != NULL, "%s: no error frame (closed %d, code %d)", what, chat_tc_closed(c),
                  chat_tc_close_code(c));
    check_error(e, code, ref_key, ref, what);
}

/* The connection still works: ping with a rid gets its pong. */
static void expect_alive(chat_tc_t *c, const char *what)
{
    char frame[96];
    snprintf(frame, sizeof frame, "{\"type\":\"ping\",\"rid\":\"alive\"}");
    cJSON *p = chat_tc_request(c, frame, "alive", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(p != NULL && chat_json_is(p, "pong"), "%s: the connection no longer answers",
                  what);
    cJSON_Delete(p);
}

typedef struct bad_case {
    const char *frame;
    const char *code;
    const char *ref_key; /* "rid" or "cid" the error must echo, NULL if none */
    const char *ref;
} bad_case_t;

START_TEST(test_malformed_frames_get_errors)
{
    chat_tc_t *c = connect_user(0, "sloppy");
    static const bad_case_t cases[] = {
        {"not json", "bad_request", NULL, NULL},
        {"{\"type\":\"ping\"", "bad_request", NULL, NULL},
        {"[1,2,3]", "bad_request", NULL, NULL},
        {"\"ping\"", "bad_request", NULL, NULL},
        {"{}", "bad_request", NULL, NULL},
        {"{\"type\":7}", "bad_request", NULL, NULL},
        {"{\"type\":\"dance\",\"rid\":\"r-unknown\"}", "bad_request", "rid", "r-unknown"},
        {"{\"type\":\"join\",\"rid\":\"r-noroom\"}", "bad_request", "rid", "r-noroom"},
        {"{\"type\":\"join\",\"room\":42,\"rid\":\"r-roomnum\"}", "bad_request", "rid",
         "r-roomnum"},
        {"{\"type\":\"join\",\"room\":\"ok\",\"since\":\"5\",\"rid\":\"r-since\"}", "bad_request",
         "rid", "r-since"},
        {"{\"type\":\"join\",\"room\":\"ok\",\"since\":-1,\"rid\":\"r-neg\"}", "bad_request", "rid",
         "r-neg"},
        {"{\"type\":\"join\",\"room\":\"ok\",\"since\":1.5,\"rid\":\"r-frac\"}", "bad_request",
         "rid", "r-frac"},
        {"{\"type\":\"send\",\"room\":\"ok\",\"text\":\"hi\",\"rid\":\"r-nocid\"}", "bad_request",
         "rid", "r-nocid"},
        {"{\"type\":\"send\",\"room\":\"ok\",\"cid\":\"c-notext\"}", "bad_request", "cid",
         "c-notext"},
        {"{\"type\":\"send\",\"room\":\"ok\",\"cid\":\"c-textnum\",\"text\":5}", "bad_request",
         "cid", "c-textnum"},
        {"{\"type\":\"send\",\"room\":\"ok\",\"cid\":\"c-empty\",\"text\":\"\"}", "bad_request",
         "cid", "c-empty"},
        {"{\"type\":\"send\",\"room\":\"ok\",\"cid\":\"12345678901234567890123456789012345678901"
         "234567890123456789012345\",\"text\":\"x\",\"rid\":\"r-longcid\"}",
         "bad_request", "rid", "r-longcid"},
        {"{\"type\":\"join\",\"room\":\"has space\",\"rid\":\"r-space\"}", "bad_request", "rid",
         "r-space"},
        {"{\"type\":\"join\",\"room\":\"a/b\",\"rid\":\"r-slash\"}", "bad_request", "rid",
         "r-slash"},
        {"{\"type\":\"send\",\"room\":\"\",\"cid\":\"c-emptyroom\",\"text\":\"x\"}", "bad_request",
         "cid", "c-emptyroom"},
        {"{\"type\":\"history\",\"room\":\"ok\",\"limit\":1000,\"rid\":\"r-limit\"}", "bad_request",
         "rid", "r-limit"},
        {"{\"type\":\"leave\",\"rid\":\"r-leave\"}", "bad_request", "rid", "r-leave"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        chat_tc_send_text(c, cases[i].frame);
        expect_error(c, cases[i].code, cases[i].ref_key, cases[i].ref, cases[i].frame);
    }
    /* A room name of 129 characters. */
    char *long_room = repeat("r", 129);
    chat_tc_send_frame(c, chat_client_frame_join(long_room, -1, "r-longroom"));
    expect_error(c, "bad_request", "rid", "r-longroom", "join with a 129-character room");
    free(long_room);
    /* Binary frames are not part of the protocol. */
    ck_assert_int_eq(chat_ws_send_raw(chat_tc_ws(c), CHAT_WS_OP_BINARY, true, "{}", 2), CHAT_OK);
    expect_error(c, "bad_request", NULL, NULL, "binary frame");
    expect_alive(c, "after the malformed frames");
    chat_tc_close(c);
}
END_TEST

/* Sends text of n copies of unit and expects an ack (ok) or too_large. */
static void send_text_of(chat_tc_t *c, const char *room, const char *unit, size_t n, bool ok)
{
    char *text = repeat(unit, n);
    char cid[64], what[128];
    snprintf(cid, sizeof cid, "len-%zu-%zu", strlen(unit), n);
    snprintf(what, sizeof what, "%zu x %zu-byte characters", n, strlen(unit));
    cJSON *f = chat_tc_send_wait(c, room, cid, text, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(f != NULL, "%s: no answer", what);
    if (ok) {
        ck_assert_msg(chat_json_is(f, "ack"), "%s: %s instead of ack", what,
                      chat_json_str(f, "code"));
        cJSON *m = chat_tc_wait_for(c, "msg", "cid", cid, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "%s: msg missing", what);
        ck_assert_str_eq(chat_json_str(m, "text"), text);
        cJSON_Delete(m);
    } else {
        ck_assert_msg(chat_json_is(f, "error"), "%s: accepted", what);
        ck_assert_str_eq(chat_json_str(f, "code"), "too_large");
    }
    cJSON_Delete(f);
    free(text);
}

START_TEST(test_text_limit_in_characters)
{
    char room[96];
    chat_test_unique(room, sizeof room, "textlen");
    chat_tc_t *c = connect_user(1, "writer");
    cJSON_Delete(chat_tc_join(c, room, -1));
    send_text_of(c, room, "a", TEXT_LIMIT, true);
    send_text_of(c, room, "a", TEXT_LIMIT + 1, false);
    send_text_of(c, room, "\xc3\xa9", TEXT_LIMIT, true); /* é: 2 bytes */
    send_text_of(c, room, "\xc3\xa9", TEXT_LIMIT + 1, false);
    send_text_of(c, room, "\xe2\x82\xac", TEXT_LIMIT, true);     /* €: 3 bytes */
    send_text_of(c, room, "\xf0\x9f\x98\x80", TEXT_LIMIT, true); /* 😀: 4 bytes */
    send_text_of(c, room, "\xf0\x9f\x98\x80", TEXT_LIMIT + 1, false);
    expect_alive(c, "after too long texts");
    chat_tc_close(c);
}
END_TEST

START_TEST(test_frame_before_auth_closes_4001)
{
    chat_tc_t *c = chat_tc_open(chat_test_gateway_url(0));
    chat_tc_send_text(c, "{\"type\":\"join\",\"room\":\"general\"}");
    int code = chat_tc_wait_close(c, CHAT_TC_TIMEOUT_MS, NULL, 0);
    ck_assert_int_eq(code, CLOSE_UNAUTHORIZED);
    cJSON *e = chat_tc_wait(c, "error", 0);
    if (e != NULL) /* an error frame before the close is allowed; if there is one, it says so */
        ck_assert_str_eq(chat_json_str(e, "code"), "unauthorized");
    cJSON_Delete(e);
    ck_assert_uint_eq(chat_tc_queued(c, "welcome"), 0);
    chat_tc_free(c);
}
END_TEST

START_TEST(test_no_auth_in_time_closes_4001)
{
    chat_tc_t *c = chat_tc_open(chat_test_gateway_url(1));
    int64_t t0 = chat_clock_mono_ms();
    int code = chat_tc_wait_close(c, 20000, NULL, 0);
    int64_t took = chat_clock_mono_ms() - t0;
    ck_assert_int_eq(code, CLOSE_UNAUTHORIZED);
    ck_assert_msg(took >= 9000 && took <= 15000, "closed after %lld ms, not about 10 s",
                  (long long)took);
    chat_tc_free(c);
}
END_TEST

/* Authenticates with token and expects error unauthorized, then close 4001. */
static void expect_rejected_token(const char *token, const char *what)
{
    chat_tc_t *c = chat_tc_open(chat_test_gateway_url(0));
    chat_tc_send_frame(c, chat_client_frame_auth(token));
    expect_error(c, "unauthorized", NULL, NULL, what);
    int code = chat_tc_wait_close(c, CHAT_TC_TIMEOUT_MS, NULL, 0);
    ck_assert_msg(code == CLOSE_UNAUTHORIZED, "%s: close code %d", what, code);
    ck_assert_uint_eq(chat_tc_queued(c, "welcome"), 0);
    chat_tc_free(c);
}

START_TEST(test_bad_tokens_close_4001)
{
    char other_tenant[96], other_secret[64], ghost[96];
    chat_test_tenant_create(other_tenant, sizeof other_tenant, other_secret, sizeof other_secret);
    chat_test_unique(ghost, sizeof ghost, "ghost");
    char *forged = chat_test_token(tenant, "not-the-secret", "mallory", NULL, 600);
    char *expired = chat_test_token(tenant, secret, "late", NULL, -600);
    char *unknown = chat_test_token(ghost, "whatever", "mallory", NULL, 600);
    char *cross = chat_test_token(tenant, other_secret, "mallory", NULL, 600);
    expect_rejected_token(forged, "token signed with a wrong secret");
    expect_rejected_token(expired, "expired token");
    expect_rejected_token(unknown, "token of an unknown tenant");
    expect_rejected_token(cross, "demo token signed with another tenant's secret");
    expect_rejected_token("not-a-jwt", "garbage token");
    /* Tampering with the payload breaks the signature. */
    char *tampered = chat_test_token(tenant, secret, "mallory", NULL, 600);
    char *dot = strchr(tampered, '.');
    ck_assert_ptr_nonnull(dot);
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    expect_rejected_token(tampered, "tampered token");
    /* The other tenant's own token works: its rejection above was about the tenant. */
    chat_tc_close(
        chat_tc_connect(chat_test_gateway_url(0), other_tenant, other_secret, "ok", NULL));
    free(forged);
    free(expired);
    free(unknown);
    free(cross);
    free(tampered);
}
END_TEST

/* Sends a send frame of total bytes (in two fragments if fragmented) and returns the close
 * code it caused, or 0 if the connection stayed open (then it checks the too_large error). */
static int send_sized(chat_tc_t *c, size_t total, bool fragmented)
{
    static const char head[] = "{\"type\":\"send\",\"room\":\"big\",\"cid\":\"big\",\"text\":\"";
    char *frame = malloc(total + 1);
    ck_assert_ptr_nonnull(frame);
    memcpy(frame, head, sizeof head - 1);
    memset(frame + sizeof head - 1, 'x', total - (sizeof head - 1) - 2);
    memcpy(frame + total - 2, "\"}", 2);
    frame[total] = '\0';
    chat_ws_t *ws = chat_tc_ws(c);
    if (fragmented) {
        size_t half = total / 2;
        ck_assert_int_eq(chat_ws_send_raw(ws, CHAT_WS_OP_TEXT, false, frame, half), CHAT_OK);
        /* The server may close before it reads this: a failure here is no finding. */
        (void)chat_ws_send_raw(ws, CHAT_WS_OP_CONTINUATION, true, frame + half, total - half);
    } else {
        (void)chat_ws_send_raw(ws, CHAT_WS_OP_TEXT, true, frame, total);
    }
    free(frame);
    /* Either answer comes at once: an error frame (the wait ends with it) or a close (the wait
     * ends with NULL). */
    cJSON *e = chat_tc_wait(c, "error", CHAT_TC_TIMEOUT_MS);
    if (e == NULL) {
        ck_assert_msg(chat_tc_closed(c), "a frame of %zu bytes: neither an error nor a close",
                      total);
        return chat_tc_close_code(c);
    }
    /* Still open: the frame was accepted, and its text is far over the limit. */
    check_error(e, "too_large", "cid", "big", "frame within the size limit");
    return 0;
}

START_TEST(test_frame_over_64k_closes_1009)
{
    /* Exactly 64 KiB is within the frame limit: only the text is too long. */
    chat_tc_t *c = connect_user(0, "big");
    ck_assert_int_eq(send_sized(c, FRAME_LIMIT, false), 0);
    expect_alive(c, "after a 64 KiB frame");
    chat_tc_close(c);
    c = connect_user(0, "bigger");
    ck_assert_int_eq(send_sized(c, 70 * 1024, false), CLOSE_TOO_BIG);
    chat_tc_free(c);
    c = connect_user(1, "fragments");
    ck_assert_int_eq(send_sized(c, FRAME_LIMIT + 1, true), CLOSE_TOO_BIG);
    chat_tc_free(c);
}
END_TEST

START_TEST(test_flood_is_limited_then_closed_4008)
{
    char room[96];
    chat_test_unique(room, sizeof room, "bystander");
    chat_tc_t *bystander = connect_user(0, "bystander");
    cJSON_Delete(chat_tc_join(bystander, room, -1));
    chat_tc_t *c = connect_user(0, "flooder");
    chat_tc_set_rate(c, 0);
    size_t sent = 0;
    while (sent < 5000 && !chat_tc_closed(c)) {
        bool ok = true;
        for (int k = 0; k < 20 && ok; k++, sent++)
            ok = chat_tc_try_send_text(c, "{\"type\":\"ping\"}");
        if (!ok)
            break;
        /* Read what came back so far (keeps both socket buffers moving). */
        chat_tc_wait_close(c, 0, NULL, 0);
    }
    char reason[128];
    int code = chat_tc_wait_close(c, CHAT_TC_TIMEOUT_MS, reason, sizeof reason);
    ck_assert_msg(code == CLOSE_RATE_LIMIT, "flood of %zu frames: close code %d (%s)", sent, code,
                  reason);
    size_t limited = 0;
    cJSON *e;
    while ((e = chat_tc_wait(c, "error", 0)) != NULL) {
        limited += strcmp(chat_json_str(e, "code") ?: "", "rate_limited") == 0;
        cJSON_Delete(e);
    }
    ck_assert_msg(limited > 0, "no rate_limited error before the close");
    ck_assert_msg(chat_tc_queued(c, "pong") >= 20, "the burst was not served");
    chat_tc_free(c);
    /* The bystander on the same gateway was served all along. */
    ck_assert_int_eq(chat_tc_send(bystander, room, "after-flood", "still here"), 1);
    chat_tc_close(bystander);
}
END_TEST

START_TEST(test_gateways_still_serve_new_clients)
{
    /* Runs last: after all the abuse above, fresh clients on both gateways chat normally. */
    char room[96];
    chat_test_unique(room, sizeof room, "aftermath");
    chat_tc_t *a = connect_user(0, "fresh");
    chat_tc_t *b = connect_user(1, "fresh");
    cJSON_Delete(chat_tc_join(a, room, -1));
    cJSON_Delete(chat_tc_join(b, room, -1));
    ck_assert_int_eq(chat_tc_send(a, room, "c1", "hello"), 1);
    ck_assert_int_eq(chat_tc_send(b, room, "c1", "hello back"), 2);
    ck_assert_uint_eq(chat_tc_collect_msgs(a, room, 2, NULL, CHAT_TC_TIMEOUT_MS), 2);
    ck_assert_uint_eq(chat_tc_collect_msgs(b, room, 2, NULL, CHAT_TC_TIMEOUT_MS), 2);
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    tenant = chat_test_demo_tenant();
    secret = chat_test_demo_secret();
    Suite *s = suite_create("bad-input");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_malformed_frames_get_errors);
    tcase_add_test(tc, test_text_limit_in_characters);
    tcase_add_test(tc, test_frame_before_auth_closes_4001);
    tcase_add_test(tc, test_no_auth_in_time_closes_4001);
    tcase_add_test(tc, test_bad_tokens_close_4001);
    tcase_add_test(tc, test_frame_over_64k_closes_1009);
    tcase_add_test(tc, test_flood_is_limited_then_closed_4008);
    tcase_add_test(tc, test_gateways_still_serve_new_clients);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
