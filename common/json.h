/* JSON helpers that the codecs share (events.c, frames.c, deliver_codec.c): reasons written
 * into a caller's buffer, a parse of exactly one JSON value, a member table that refuses
 * unknown and repeated keys, and integers kept exact (JSON numbers are doubles to most
 * readers: CHAT_JSON_INT_MAX of names.h bounds them). */
#ifndef CHAT_COMMON_JSON_H
#define CHAT_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"

/* Writes the printf-formatted reason into errbuf (if not NULL) and returns
 * CHAT_ERR_INVALID, so that a check reads `return chat_json_fail(errbuf, len, "...")`. */
chat_err_t chat_json_fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses exactly len bytes (not NUL-terminated) as one JSON value; trailing whitespace is
 * allowed, anything else after the value is not. Returns the tree (caller: cJSON_Delete), or
 * NULL with the reason in errbuf. */
cJSON *chat_json_parse_exact(const void *buf, size_t len, char *errbuf, size_t errlen);

/* Points slots[i] at the member of obj whose key is the i-th row's key, NULL where absent.
 * Rows are `stride` bytes apart and begin with their key (const char *), so this serves
 * struct tables and plain key lists alike. Fails (CHAT_ERR_INVALID, reason naming `where`)
 * on a member whose key is unknown or repeated: cJSON keeps duplicates, a schema validator
 * would see only one of them. */
chat_err_t chat_json_map_members(const cJSON *obj, const void *rows, size_t stride, size_t nrows,
                                 cJSON **slots, const char *where, char *errbuf, size_t errlen);

/* True if item is an integral JSON number within +-CHAT_JSON_INT_MAX; stores it in *out. */
bool chat_json_read_int(const cJSON *item, int64_t *out);

/* Adds v to obj under key as its exact decimal digits (cJSON would print a large double with
 * an exponent). False when out of memory. */
bool chat_json_add_int(cJSON *obj, const char *key, int64_t v);

/* Prints root compactly into *out (malloc'd, NUL-terminated; caller frees; len may be NULL)
 * and deletes root in every case. CHAT_ERR_NOMEM if printing failed. */
chat_err_t chat_json_print(cJSON *root, char **out, size_t *len);

#endif
