/* Unit tests of services/gateway/http's router (gw_http_route, no sockets): which paths are
 * answered and how with the widget installed or not and the demo on or off (off: its paths
 * are unknown URLs), methods, If-None-Match and HEAD. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/gateway/http.h"
#include "tests/support/util.h"

#define NOW 1800000000

static const char *const all_files[] = {"widget.js", "chat-sdk.mjs", "chat-sdk.d.ts", "chat-sw.js",
                                        "demo.html"};
static char dir[512];
static gw_widget_files_t *widget;
static gw_demo_t *demo;

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/gw-http.XXXXXX", tmp != NULL ? tmp : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, all_files[i]);
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "/* %s */", all_files[i]);
        fclose(f);
    }
    ck_assert_int_eq(gw_widget_files_load(dir, &widget), CHAT_OK);
    ck_assert_int_eq(gw_demo_new("demo", "secret", "", &demo), CHAT_OK);
}

static void teardown(void)
{
    gw_widget_files_free(widget);
    gw_demo_free(demo);
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, all_files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static gw_http_answer_t route(gw_widget_files_t *w, gw_demo_t *d, gw_http_method_t method,
                              const char *path, const char *user, const char *inm)
{
    gw_http_site_t site = {.widget = w, .demo = d, .self_host = "127.0.0.1:7410"};
    gw_http_request_t req = {
        .method = method, .path = path, .user = user, .host = "h:1", .if_none_match = inm};
    gw_http_answer_t a;
    ck_assert_int_eq(gw_http_route(&site, &req, NOW, &a), CHAT_OK);
    return a;
}

START_TEST(test_widget_files)
{
    const struct {
        const char *path;
        gw_widget_file_id_t id;
        const char *type;
    } cases[] = {
        {"/v1/widget.js", GW_WIDGET_JS, "text/javascript; charset=utf-8"},
        {"/v1/chat-sdk.mjs", GW_WIDGET_SDK, "text/javascript; charset=utf-8"},
        {"/v1/chat-sdk.d.ts", GW_WIDGET_SDK_TYPES, "application/typescript; charset=utf-8"},
        {"/v1/chat-sw.js", GW_WIDGET_SW, "text/javascript; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gw_widget_file_t *f = gw_widget_files_get(widget, cases[i].id);
        gw_http_answer_t a = route(widget, demo, GW_HTTP_GET, cases[i].path, NULL, NULL);
        ck_assert_uint_eq(a.status, 200);
        ck_assert_str_eq(a.content_type, cases[i].type);
        ck_assert_str_eq(a.cache_control, "public, max-age=300");
        ck_assert_str_eq(a.etag, f->etag);
        ck_assert(a.cross_origin && a.send_body);
        ck_assert_ptr_eq(a.body, f->data);
        ck_assert_uint_eq(a.len, f->len);
        gw_http_answer_clear(&a);

        a = route(widget, demo, GW_HTTP_HEAD, cases[i].path, NULL, NULL);
        ck_assert_uint_eq(a.status, 200);
        ck_assert(!a.send_body);
        ck_assert_uint_eq(a.len, f->len); /* the content-length of the GET */

        a = route(widget, demo, GW_HTTP_GET, cases[i].path, NULL, f->etag);
        ck_assert_uint_eq(a.status, 304);
        ck_assert(!a.send_body);
        ck_assert_str_eq(a.etag, f->etag);

        a = route(widget, demo, GW_HTTP_GET, cases[i].path, NULL, "\"other\"");
        ck_assert_uint_eq(a.status, 200);

        a = route(widget, demo, GW_HTTP_OTHER, cases[i].path, NULL, NULL);
        ck_assert_uint_eq(a.status, 405);
        ck_assert_str_eq(a.allow, "GET, HEAD");
        ck_assert(a.send_body);
    }
    gw_http_answer_t a = route(widget, NULL, GW_HTTP_GET, "/v1/integrity.json", NULL, NULL);
    const gw_widget_file_t *ij = gw_widget_files_get(widget, GW_WIDGET_INTEGRITY);
    ck_assert_uint_eq(a.status, 200);
    ck_assert_str_eq(a.content_type, "application/json");
    ck_assert_str_eq(a.cache_control, "no-cache");
    ck_assert_ptr_eq(a.body, ij->data);
    ck_assert(a.cross_origin);
}
END_TEST

START_TEST(test_widget_not_installed)
{
    const char *paths[] = {"/v1/widget.js", "/v1/chat-sdk.mjs", "/v1/chat-sdk.d.ts",
                           "/v1/chat-sw.js", "/v1/integrity.json"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        gw_http_answer_t a = route(NULL, NULL, GW_HTTP_GET, paths[i], NULL, NULL);
        ck_assert_uint_eq(a.status, 404);
        ck_assert_uint_eq(a.len, strlen(GW_HTTP_NO_WIDGET));
        ck_assert_mem_eq(a.body, GW_HTTP_NO_WIDGET, a.len);
    }
    /* the demo on but no widget: its page is not there, its endpoints are */
    gw_http_answer_t a = route(NULL, demo, GW_HTTP_GET, "/v1/demo", NULL, NULL);
    ck_assert_uint_eq(a.status, 404);
    a = route(NULL, demo, GW_HTTP_GET, "/v1/demo/token", "alice", NULL);
    ck_assert_uint_eq(a.status, 200);
    gw_http_answer_clear(&a);
}
END_TEST

START_TEST(test_unknown_paths)
{
    const char *paths[] = {"/",
                           "/v1/x.js",
                           "/v1/widget.js/",
                           "/v1/Widget.js",
                           "/widget.js",
                           "/v1/demo.html",
                           "/v1/demo/x",
                           "/v1/ws",
                           "/v1/demo//",
                           "/v1/../widget.js",
                           "",
                           NULL};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        gw_http_answer_t a = route(widget, demo, GW_HTTP_GET, paths[i], NULL, NULL);
        ck_assert_msg(a.status == 0, "%s answered %u", paths[i] ? paths[i] : "(null)", a.status);
        a = route(widget, demo, GW_HTTP_OTHER, paths[i], NULL, NULL);
        ck_assert_uint_eq(a.status, 0);
    }
}
END_TEST

START_TEST(test_demo_off_is_unknown)
{
    const char *paths[] = {"/v1/demo", "/v1/demo/", "/v1/demo/token", "/v1/demo/config"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        gw_http_answer_t a = route(widget, NULL, GW_HTTP_GET, paths[i], "alice", NULL);
        ck_assert_msg(a.status == 0, "%s answered %u without the demo", paths[i], a.status);
        a = route(widget, NULL, GW_HTTP_OTHER, paths[i], "alice", NULL);
        ck_assert_uint_eq(a.status, 0);
    }
}
END_TEST

START_TEST(test_demo_on)
{
    const gw_widget_file_t *page = gw_widget_files_get(widget, GW_WIDGET_DEMO);
    const char *pages[] = {"/v1/demo", "/v1/demo/"};
    for (size_t i = 0; i < 2; i++) {
        gw_http_answer_t a = route(widget, demo, GW_HTTP_GET, pages[i], NULL, NULL);
        ck_assert_uint_eq(a.status, 200);
        ck_assert_str_eq(a.content_type, "text/html; charset=utf-8");
        ck_assert_str_eq(a.cache_control, "no-store");
        ck_assert_ptr_eq(a.body, page->data);
    }
    gw_http_answer_t a = route(widget, demo, GW_HTTP_GET, "/v1/demo/token", "alice", NULL);
    ck_assert_uint_eq(a.status, 200);
    ck_assert_str_eq(a.content_type, "application/json");
    ck_assert_str_eq(a.cache_control, "no-store");
    ck_assert_ptr_nonnull(a.owned);
    ck_assert_ptr_eq(a.body, (const unsigned char *)a.owned);
    ck_assert_ptr_nonnull(strstr(a.owned, "\"user\":\"alice\""));
    gw_http_answer_clear(&a);
    ck_assert_ptr_null(a.owned);

    const char *bad[] = {NULL, "", "Alice", "a b", "../etc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a = route(widget, demo, GW_HTTP_GET, "/v1/demo/token", bad[i], NULL);
        ck_assert_uint_eq(a.status, 400);
        ck_assert_ptr_nonnull(strstr((const char *)a.body, "\"code\":\"bad_request\""));
        ck_assert_ptr_null(a.owned);
    }
    a = route(widget, demo, GW_HTTP_OTHER, "/v1/demo/token", "alice", NULL);
    ck_assert_uint_eq(a.status, 405);
    ck_assert_ptr_null(a.owned);

    a = route(widget, demo, GW_HTTP_GET, "/v1/demo/config", NULL, NULL);
    ck_assert_uint_eq(a.status, 200);
    ck_assert_str_eq(a.owned, "{\"tenant\":\"demo\",\"gateways\":[\"ws://h:1/v1/ws\"]}");
    gw_http_answer_clear(&a);
}
END_TEST

START_TEST(test_etag_matching)
{
    const char *tag = "\"0123456789abcdef0123456789abcdef\"";
    ck_assert(gw_http_etag_matches(tag, tag));
    ck_assert(gw_http_etag_matches("W/\"0123456789abcdef0123456789abcdef\"", tag));
    ck_assert(gw_http_etag_matches("\"a\", \"0123456789abcdef0123456789abcdef\"", tag));
    ck_assert(gw_http_etag_matches("\"a\",W/\"0123456789abcdef0123456789abcdef\" ", tag));
    ck_assert(gw_http_etag_matches("*", tag));
    ck_assert(!gw_http_etag_matches(NULL, tag));
    ck_assert(!gw_http_etag_matches("", tag));
    ck_assert(!gw_http_etag_matches("\"a\", \"b\"", tag));
    ck_assert(!gw_http_etag_matches("0123456789abcdef0123456789abcdef", tag)); /* unquoted */
    ck_assert(!gw_http_etag_matches("\"0123456789abcdef0123456789abcde\"", tag));
    ck_assert(!gw_http_etag_matches("**", tag));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_http");
    TCase *tc = tcase_create("http");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_widget_files);
    tcase_add_test(tc, test_widget_not_installed);
    tcase_add_test(tc, test_unknown_paths);
    tcase_add_test(tc, test_demo_off_is_unknown);
    tcase_add_test(tc, test_demo_on);
    tcase_add_test(tc, test_etag_matching);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
