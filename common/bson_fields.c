/* Reading one field of a BSON document (see bson_fields.h). */
#include "common/bson_fields.h"

#include <stdio.h>

#include "common/names.h"

/* The string of key, or NULL if absent or not UTF-8. */
const char *chat_bson_str(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)
               ? bson_iter_utf8(&it, NULL)
               : NULL;
}

/* Whether key holds true; false otherwise. */
bool chat_bson_true(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

/* An int32/int64 key into *out; false if absent or another type. */
bool chat_bson_int64(const bson_t *doc, const char *key, int64_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) ||
        !(BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it)))
        return false;
    *out = bson_iter_as_int64(&it);
    return true;
}

/* An int32/int64 key, or def if absent or another type. */
int64_t chat_bson_int64_or(const bson_t *doc, const char *key, int64_t def)
{
    int64_t v;
    return chat_bson_int64(doc, key, &v) ? v : def;
}

/* An int32/int64/double key, or def if absent or another type. */
int64_t chat_bson_number_or(const bson_t *doc, const char *key, int64_t def)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_NUMBER(&it)
               ? bson_iter_as_int64(&it)
               : def;
}

/* A number or date key into *out; false if absent or another type. */
bool chat_bson_number_or_date(const bson_t *doc, const char *key, int64_t *out)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key))
        return false;
    switch (bson_iter_type(&it)) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
        *out = bson_iter_as_int64(&it);
        return true;
    case BSON_TYPE_DATE_TIME:
        *out = bson_iter_date_time(&it);
        return true;
    default:
        return false;
    }
}

/* _id as 24 hex digits (ObjectId or valid string); false otherwise. */
bool chat_bson_message_id(const bson_t *doc, char id[25])
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id"))
        return false;
    if (BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_to_string(bson_iter_oid(&it), id);
        return true;
    }
    if (BSON_ITER_HOLDS_UTF8(&it) && chat_name_message_id_valid(bson_iter_utf8(&it, NULL))) {
        snprintf(id, 25, "%s", bson_iter_utf8(&it, NULL));
        return true;
    }
    return false;
}
