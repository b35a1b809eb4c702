/* Unit tests of services/gateway/widget_files: digests (known SHA-256/SHA-384 values), loading
 * a directory (bytes, ETags, integrity.json made from what was read), and the start failures
 * of a directory that lacks a file or does not exist. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "services/gateway/widget_files.h"
#include "tests/support/util.h"

static const char *const all_files[] = {"widget.js", "chat-sdk.mjs", "chat-sdk.d.ts", "chat-sw.js",
                                        "demo.html"};

/* A fresh directory under TMPDIR; the caller removes it with dir_remove. */
static char *dir_make(void)
{
    const char *tmp = getenv("TMPDIR");
    char *dir = malloc(512);
    ck_assert_ptr_nonnull(dir);
    snprintf(dir, 512, "%s/gw-widget-files.XXXXXX", tmp != NULL ? tmp : P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static void file_put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void dir_remove(char *dir)
{
    char path[1024];
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, all_files[i]);
        unlink(path);
    }
    rmdir(dir);
    free(dir);
}

START_TEST(test_digests_known_values)
{
    char etag[GW_WIDGET_ETAG_LEN + 1], sri[GW_WIDGET_SRI_LEN + 1];
    gw_widget_digests("", 0, etag, sri);
    ck_assert_str_eq(etag, "\"e3b0c44298fc1c149afbf4c8996fb924\"");
    ck_assert_str_eq(sri,
                     "sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb");
    gw_widget_digests("abc", 3, etag, sri);
    ck_assert_str_eq(etag, "\"ba7816bf8f01cfea414140de5dae2223\"");
    ck_assert_str_eq(sri,
                     "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn");
}
END_TEST

START_TEST(test_load_serves_the_bytes_read)
{
    char *dir = dir_make();
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        file_put(dir, all_files[i], all_files[i]); /* each file holds its own name */
    file_put(dir, "chat-sdk.mjs", "");             /* empty is a file too */
    gw_widget_files_t *w = NULL;
    ck_assert_int_eq(gw_widget_files_load(dir, &w), CHAT_OK);
    ck_assert_ptr_nonnull(w);
    const gw_widget_file_t *js = gw_widget_files_get(w, GW_WIDGET_JS);
    ck_assert_str_eq(js->name, "widget.js");
    ck_assert_uint_eq(js->len, 9);
    ck_assert_mem_eq(js->data, "widget.js", 9);
    char etag[GW_WIDGET_ETAG_LEN + 1], sri[GW_WIDGET_SRI_LEN + 1];
    gw_widget_digests("widget.js", 9, etag, sri);
    ck_assert_str_eq(js->etag, etag);
    ck_assert_str_eq(js->sri, sri);
    ck_assert_uint_eq(gw_widget_files_get(w, GW_WIDGET_SDK)->len, 0);
    ck_assert_mem_eq(gw_widget_files_get(w, GW_WIDGET_DEMO)->data, "demo.html", 9);

    /* integrity.json: the three scripts' SRI of the bytes held, nothing else. */
    const gw_widget_file_t *ij = gw_widget_files_get(w, GW_WIDGET_INTEGRITY);
    cJSON *root = cJSON_ParseWithLength((const char *)ij->data, ij->len);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(root), 3);
    const gw_widget_file_id_t ids[] = {GW_WIDGET_JS, GW_WIDGET_SDK, GW_WIDGET_SW};
    for (size_t i = 0; i < 3; i++) {
        const gw_widget_file_t *f = gw_widget_files_get(w, ids[i]);
        cJSON *v = cJSON_GetObjectItemCaseSensitive(root, f->name);
        ck_assert(cJSON_IsString(v));
        ck_assert_str_eq(v->valuestring, f->sri);
    }
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "chat-sdk.mjs")->valuestring,
                     "sha384-OLBgp1GsljhM2TJ+sbHjaiH9txEUvgdDTAzHv2P24donTt6/529l+9Ua0vFImLlb");
    cJSON_Delete(root);
    gw_widget_digests(ij->data, ij->len, etag, sri);
    ck_assert_str_eq(ij->etag, etag);
    gw_widget_files_free(w);
    dir_remove(dir);
}
END_TEST

START_TEST(test_load_fails_on_a_missing_file)
{
    char *dir = dir_make();
    gw_widget_files_t *w = (gw_widget_files_t *)0x1;
    ck_assert_int_eq(gw_widget_files_load(dir, &w), CHAT_ERR_CONFIG); /* empty */
    ck_assert_ptr_null(w);
    for (size_t skip = 0; skip < sizeof all_files / sizeof all_files[0]; skip++) {
        for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
            if (i != skip)
                file_put(dir, all_files[i], "x");
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, all_files[skip]);
        unlink(path);
        ck_assert_int_eq(gw_widget_files_load(dir, &w), CHAT_ERR_CONFIG);
        ck_assert_ptr_null(w);
    }
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/no-such-dir", dir);
    ck_assert_int_eq(gw_widget_files_load(missing, &w), CHAT_ERR_CONFIG);
    dir_remove(dir);
    gw_widget_files_free(NULL);
}
END_TEST

START_TEST(test_file_names)
{
    ck_assert_str_eq(gw_widget_file_name(GW_WIDGET_SDK_TYPES), "chat-sdk.d.ts");
    ck_assert_str_eq(gw_widget_file_name(GW_WIDGET_INTEGRITY), "integrity.json");
    ck_assert_ptr_null(gw_widget_file_name(GW_WIDGET__COUNT));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_widget_files");
    TCase *tc = tcase_create("widget_files");
    tcase_add_test(tc, test_digests_known_values);
    tcase_add_test(tc, test_load_serves_the_bytes_read);
    tcase_add_test(tc, test_load_fails_on_a_missing_file);
    tcase_add_test(tc, test_file_names);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
