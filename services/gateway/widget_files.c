/* The built widget files (see widget_files.h): loaded whole at start, digested once, served
 * from memory, freed at shutdown. */
#include "services/gateway/widget_files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "common/json.h"
#include "common/log.h"

#define VAR "CHAT_WIDGET_DIR"
#define FILE_MAX (64 * 1024 * 1024) /* far above any budget of docs/widget.md: a wrong dir */

struct gw_widget_files {
    gw_widget_file_t files[GW_WIDGET__COUNT];
    unsigned char *owned[GW_WIDGET__COUNT];
};

static const char *const names[GW_WIDGET__COUNT] = {
    [GW_WIDGET_JS] = "widget.js",
    [GW_WIDGET_SDK] = "chat-sdk.mjs",
    [GW_WIDGET_SDK_TYPES] = "chat-sdk.d.ts",
    [GW_WIDGET_SW] = "chat-sw.js",
    [GW_WIDGET_DEMO] = "demo.html",
    [GW_WIDGET_INTEGRITY] = "integrity.json",
};

/* The scripts integrity.json lists: the ones a page loads with SRI. */
static const gw_widget_file_id_t integrity_files[] = {GW_WIDGET_JS, GW_WIDGET_SDK, GW_WIDGET_SW};

const char *gw_widget_file_name(gw_widget_file_id_t id)
{
    return (unsigned)id < GW_WIDGET__COUNT ? names[id] : NULL;
}

void gw_widget_digests(const void *data, size_t len, char *etag, char *sri)
{
    unsigned char sha256[32], sha384[48];
    unsigned int n;
    EVP_Digest(data, len, sha256, &n, EVP_sha256(), NULL);
    EVP_Digest(data, len, sha384, &n, EVP_sha384(), NULL);
    static const char hex[] = "0123456789abcdef";
    etag[0] = '"';
    for (size_t i = 0; i < 16; i++) {
        etag[1 + 2 * i] = hex[sha256[i] >> 4];
        etag[2 + 2 * i] = hex[sha256[i] & 0xf];
    }
    etag[33] = '"';
    etag[34] = '\0';
    memcpy(sri, "sha384-", 7);
    EVP_EncodeBlock((unsigned char *)sri + 7, sha384, (int)sizeof sha384); /* NUL-terminates */
}

/* Logs why file name of dir cannot be served; returns CHAT_ERR_CONFIG. */
static chat_err_t file_fail(const char *dir, const char *name, const char *why, int err)
{
    chat_log_error("the widget directory lacks a file the gateway serves (build the widget, or "
                   "unset CHAT_WIDGET_DIR)",
                   CHAT_F_STR("var", VAR), CHAT_F_STR("dir", dir), CHAT_F_STR("file", name),
                   CHAT_F_STR("reason", err != 0 ? strerror(err) : why));
    return CHAT_ERR_CONFIG;
}

/* Reads dir/name whole into *data (malloc'd, at least one byte so that an empty file is not
 * NULL) and *len. */
static chat_err_t file_read(const char *dir, const char *name, unsigned char **data, size_t *len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return file_fail(dir, name, "path too long", 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return file_fail(dir, name, NULL, errno);
    struct stat st;
    chat_err_t err = CHAT_OK;
    unsigned char *buf = NULL;
    size_t got = 0;
    if (fstat(fd, &st) != 0)
        err = file_fail(dir, name, NULL, errno);
    else if (!S_ISREG(st.st_mode))
        err = file_fail(dir, name, "not a regular file", 0);
    else if (st.st_size > FILE_MAX)
        err = file_fail(dir, name, "larger than 64 MiB", 0);
    else if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        err = CHAT_ERR_NOMEM;
    while (err == CHAT_OK && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = file_fail(dir, name, NULL, errno);
        else if (n == 0)
            err = file_fail(dir, name, "shrank while being read", 0);
        else
            got += (size_t)n;
    }
    close(fd);
    if (err != CHAT_OK) {
        free(buf);
        return err;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return CHAT_OK;
}

/* integrity.json: {"widget.js": "sha384-...", "chat-sdk.mjs": ..., "chat-sw.js": ...}. */
static chat_err_t integrity_make(gw_widget_files_t *w)
{
    cJSON *root = cJSON_CreateObject();
    if (root == NULL)
        return CHAT_ERR_NOMEM;
    for (size_t i = 0; i < sizeof integrity_files / sizeof integrity_files[0]; i++) {
        const gw_widget_file_t *f = &w->files[integrity_files[i]];
        if (cJSON_AddStringToObject(root, f->name, f->sri) == NULL) {
            cJSON_Delete(root);
            return CHAT_ERR_NOMEM;
        }
    }
    char *text = NULL;
    size_t len = 0;
    chat_err_t err = chat_json_print(root, &text, &len);
    if (err != CHAT_OK)
        return err;
    w->owned[GW_WIDGET_INTEGRITY] = (unsigned char *)text;
    w->files[GW_WIDGET_INTEGRITY].data = (unsigned char *)text;
    w->files[GW_WIDGET_INTEGRITY].len = len;
    return CHAT_OK;
}

chat_err_t gw_widget_files_load(const char *dir, gw_widget_files_t **out)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        chat_log_error("not a directory", CHAT_F_STR("var", VAR), CHAT_F_STR("dir", dir));
        return CHAT_ERR_CONFIG;
    }
    gw_widget_files_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = CHAT_OK;
    for (int i = 0; i < GW_WIDGET__COUNT && err == CHAT_OK; i++) {
        gw_widget_file_t *f = &w->files[i];
        f->name = names[i];
        if (i != GW_WIDGET_INTEGRITY) {
            err = file_read(dir, f->name, &w->owned[i], &f->len);
            f->data = w->owned[i];
        } else {
            err = integrity_make(w);
        }
        if (err == CHAT_OK)
            gw_widget_digests(f->data, f->len, f->etag, f->sri);
    }
    if (err != CHAT_OK) {
        gw_widget_files_free(w);
        return err;
    }
    chat_log_info("serving the widget", CHAT_F_STR("dir", dir),
                  CHAT_F_INT("widget_js_bytes", w->files[GW_WIDGET_JS].len),
                  CHAT_F_STR("widget_js_integrity", w->files[GW_WIDGET_JS].sri));
    *out = w;
    return CHAT_OK;
}

void gw_widget_files_free(gw_widget_files_t *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < GW_WIDGET__COUNT; i++)
        free(w->owned[i]);
    free(w);
}

const gw_widget_file_t *gw_widget_files_get(const gw_widget_files_t *w, gw_widget_file_id_t id)
{
    return (unsigned)id < GW_WIDGET__COUNT ? &w->files[id] : NULL;
}
