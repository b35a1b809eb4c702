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

/* ---- reading JSON text in place ----
 * For decoders that take what they need by position instead of building a tree: a record's
 * small fields are read, its large sub-objects are only checked and passed on as the bytes
 * they are (chat.deliver's frames). Strict RFC 8259 syntax; strings are returned as written
 * (escapes unresolved) with a flag saying whether they hold any. */

typedef struct chat_json_cur {
    const char *p;   /* next byte to read */
    const char *end; /* one past the text */
} chat_json_cur_t;

/* Skips whitespace; returns the next byte, or 0 at the end. */
char chat_json_cur_peek(chat_json_cur_t *c);

/* Consumes ch after whitespace; false (nothing consumed) if the next byte is not ch. */
bool chat_json_cur_take(chat_json_cur_t *c, char ch);

/* Reads a string after whitespace: *s points at its first byte inside the text, *len bytes
 * long, *escaped is true if it contains backslash escapes (then chat_json_unescape gives
 * its value). False on a syntax error (unterminated, control character, bad escape). */
bool chat_json_cur_string(chat_json_cur_t *c, const char **s, size_t *len, bool *escaped);

/* Skips one value of any kind after whitespace, checking its syntax, at most max_depth
 * arrays/objects deep. False on a syntax error or deeper nesting. */
bool chat_json_cur_skip(chat_json_cur_t *c, int max_depth);

/* Writes the value of the string s (len bytes as written between the quotes) into out,
 * which has room for len bytes (a value is never longer than its escaped form), and returns
 * its length; SIZE_MAX for an invalid escape or a \u escape of a lone surrogate. \u0000
 * is refused too (the value would not be a C string). */
size_t chat_json_unescape(const char *s, size_t len, char *out);

#endif
