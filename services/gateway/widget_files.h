/* The built widget files the gateway serves over HTTP (docs/widget.md, "What the gateway
 * serves"): read once at start from CHAT_WIDGET_DIR into memory, each with its ETag and its
 * SRI hash, plus integrity.json made from the bytes held here (never read from the
 * directory, so that it always matches what is served). The set of names is fixed: nothing
 * a request says ever becomes a path. Read-only after loading; internal to services/gateway. */
#ifndef CHAT_GATEWAY_WIDGET_FILES_H
#define CHAT_GATEWAY_WIDGET_FILES_H

#include <stddef.h>

#include "common/err.h"

typedef enum gw_widget_file_id {
    GW_WIDGET_JS = 0,    /* widget.js */
    GW_WIDGET_SDK,       /* chat-sdk.mjs */
    GW_WIDGET_SDK_TYPES, /* chat-sdk.d.ts */
    GW_WIDGET_SW,        /* chat-sw.js */
    GW_WIDGET_DEMO,      /* demo.html */
    GW_WIDGET_INTEGRITY, /* integrity.json: computed, not read */
    GW_WIDGET__COUNT
} gw_widget_file_id_t;

#define GW_WIDGET_ETAG_LEN 34 /* '"' + 32 hex digits of SHA-256 + '"' */
#define GW_WIDGET_SRI_LEN 71  /* "sha384-" + 64 characters of base64 */

typedef struct gw_widget_file {
    const char *name; /* "widget.js", ...: static */
    const unsigned char *data;
    size_t len;
    char etag[GW_WIDGET_ETAG_LEN + 1];
    char sri[GW_WIDGET_SRI_LEN + 1];
} gw_widget_file_t;

typedef struct gw_widget_files gw_widget_files_t;

/* Reads every file of the built widget from dir. A directory that is missing or lacks a
 * file (or one that cannot be read) is logged as an error naming CHAT_WIDGET_DIR and the
 * file, and returns CHAT_ERR_CONFIG; CHAT_ERR_NOMEM when memory runs out. On success *out
 * is the caller's, freed with gw_widget_files_free. */
chat_err_t gw_widget_files_load(const char *dir, gw_widget_files_t **out);

/* Frees what gw_widget_files_load made; accepts NULL. */
void gw_widget_files_free(gw_widget_files_t *w);

/* File id of w (never NULL for a loaded set); owned by w. */
const gw_widget_file_t *gw_widget_files_get(const gw_widget_files_t *w, gw_widget_file_id_t id);

/* The file name of id ("widget.js"); NULL if id is out of range. */
const char *gw_widget_file_name(gw_widget_file_id_t id);

/* Writes the quoted first 32 hex digits of SHA-256(data) into etag (GW_WIDGET_ETAG_LEN + 1
 * bytes) and "sha384-" + base64 of SHA-384(data) into sri (GW_WIDGET_SRI_LEN + 1 bytes). */
void gw_widget_digests(const void *data, size_t len, char *etag, char *sri);

#endif
