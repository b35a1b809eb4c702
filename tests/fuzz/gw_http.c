/* Fuzz target gw_http: the gateway's plain HTTP router (services/gateway/http.c,
 * gw_http_route: the widget files, integrity.json and the demo's endpoints) on what a browser
 * sends: the path, the query's user=, the Host and If-None-Match headers (the input split at
 * NUL bytes, the first byte the method), with the widget installed (files of a scratch
 * directory) and the demo on; and If-None-Match lists against an entity tag
 * (gw_http_etag_matches). */
#include <stdlib.h>
#include <unistd.h>

#include "services/gateway/http.h"
#include "tests/fuzz/fuzz.h"

static const char *const files[] = {"widget.js", "chat-sdk.mjs", "chat-sdk.d.ts", "chat-sw.js",
                                    "demo.html"};
static gw_http_site_t site;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/chat-fuzz-widget-XXXXXX", tmp != NULL && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL)
        abort();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            abort();
        fprintf(f, "/* %s */", files[i]);
        fclose(f);
    }
    if (gw_widget_files_load(dir, &site.widget) != CHAT_OK ||
        gw_demo_new("demo", "secret", "", &site.demo) != CHAT_OK)
        abort();
    /* the files are read at load: the directory can go */
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    snprintf(site.self_host, sizeof site.self_host, "127.0.0.1:7410");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t m = fuzz_take_byte(&data, &size);
    char *path = fuzz_take_str(&data, &size);
    char *user = fuzz_take_str(&data, &size);
    char *host = fuzz_take_str(&data, &size);
    char *inm = fuzz_strndup(data, size);
    gw_http_request_t req = {.method = (gw_http_method_t)(m % 3),
                             .path = path,
                             .user = (m & 4) ? user : NULL,
                             .host = (m & 8) ? host : NULL,
                             .if_none_match = (m & 16) ? inm : NULL};
    gw_http_answer_t a;
    if (gw_http_route(&site, &req, 1800000000, &a) == CHAT_OK) {
        if (a.status != 0) {
            FUZZ_ASSERT(a.status >= 200 && a.status < 600, "status %u", a.status);
            FUZZ_ASSERT(a.content_type != NULL || a.status == 304 || a.len == 0,
                        "a body without a content type");
            FUZZ_ASSERT(a.len == 0 || a.body != NULL, "length without a body");
        }
        gw_http_answer_clear(&a);
    }
    (void)gw_http_etag_matches(inm, "\"0123456789abcdef\"");
    free(path);
    free(user);
    free(host);
    free(inm);
    return 0;
}
