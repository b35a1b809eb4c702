/* Reading one field of a BSON document (a MongoDB reply): each function looks `key` up at the
 * top level of `doc` and accepts only the types it names; any other type counts as absent.
 * Nothing is allocated: a returned string points into doc and lives as long as doc does. */
#ifndef CHAT_COMMON_BSON_FIELDS_H
#define CHAT_COMMON_BSON_FIELDS_H

#include <stdbool.h>
#include <stdint.h>

#include <bson/bson.h>

/* The UTF-8 string of key (owned by doc), or NULL if absent or not a string. */
const char *chat_bson_str(const bson_t *doc, const char *key);

/* Whether key holds the boolean true (false if absent, false or not a boolean). */
bool chat_bson_true(const bson_t *doc, const char *key);

/* An int32 or int64 key into *out: true; false (and *out untouched) if absent or another
 * type. */
bool chat_bson_int64(const bson_t *doc, const char *key, int64_t *out);

/* An int32 or int64 key's value, or def if absent or another type. */
int64_t chat_bson_int64_or(const bson_t *doc, const char *key, int64_t def);

/* An int32, int64 or double key's value (a double truncated toward zero), or def if absent or
 * another type. */
int64_t chat_bson_number_or(const bson_t *doc, const char *key, int64_t def);

/* An int32, int64 or double (truncated) key, or a date (milliseconds since the epoch), into
 * *out: true; false (and *out untouched) if absent or another type. */
bool chat_bson_number_or_date(const bson_t *doc, const char *key, int64_t *out);

/* The document's _id as a message id (24 lowercase hex digits and a NUL) into id: an ObjectId,
 * or a string that is a valid message id (common/names.h). Returns true; false (id unspecified)
 * if _id is absent or neither. */
bool chat_bson_message_id(const bson_t *doc, char id[25]);

#endif
