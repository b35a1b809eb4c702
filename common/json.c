/* JSON helpers of the codecs (see json.h): exact integers, whole-buffer parsing, member
 * tables, error reasons. */
#include "common/json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"

/* Writes the reason into errbuf (if any) and returns CHAT_ERR_INVALID. */
chat_err_t chat_json_fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return CHAT_ERR_INVALID;
}

/* Parses exactly len bytes as one JSON value (trailing whitespace allowed). */
cJSON *chat_json_parse_exact(const void *buf, size_t len, char *errbuf, size_t errlen)
{
    if (buf == NULL || len == 0) {
        chat_json_fail(errbuf, errlen, "empty record");
        return NULL;
    }
    const char *text = buf;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (root == NULL) {
        chat_json_fail(errbuf, errlen, "not JSON");
        return NULL;
    }
    while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
        end++;
    if (end != text + len) {
        cJSON_Delete(root);
        chat_json_fail(errbuf, errlen, "data after the JSON value");
        return NULL;
    }
    return root;
}

/* Points slots[i] at the member of obj whose key is the i-th row's key. Rows are `stride`
 * bytes apart and begin with their key (const char *), so this serves field_spec_t tables
 * and plain key lists alike. Fails on a member whose key is unknown or repeated (cJSON keeps
 * duplicates; a schema validator would see only one of them). */
chat_err_t chat_json_map_members(const cJSON *obj, const void *rows, size_t stride, size_t nrows,
                                 cJSON **slots, const char *where, char *errbuf, size_t errlen)
{
    memset(slots, 0, nrows * sizeof *slots);
    for (cJSON *m = obj->child; m != NULL; m = m->next) {
        size_t i = 0;
        while (i < nrows &&
               strcmp(m->string, *(const char *const *)((const char *)rows + i * stride)) != 0)
            i++;
        if (i == nrows)
            return chat_json_fail(errbuf, errlen, "%s: unknown field '%s'", where, m->string);
        if (slots[i] != NULL)
            return chat_json_fail(errbuf, errlen, "%s: repeated field '%s'", where, m->string);
        slots[i] = m;
    }
    return CHAT_OK;
}

/* True if item is an integral JSON number within +-(2^53 - 1); stores it in *out. */
bool chat_json_read_int(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    /* The range test comes first: it also rejects NaN, and makes the cast defined. */
    if (!(d >= -(double)CHAT_JSON_INT_MAX && d <= (double)CHAT_JSON_INT_MAX))
        return false;
    int64_t v = (int64_t)d;
    if ((double)v != d)
        return false;
    *out = v;
    return true;
}

/* Adds an integer as its exact decimal digits (cJSON would print large doubles with an
 * exponent). */
bool chat_json_add_int(cJSON *obj, const char *key, int64_t v)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRId64, v);
    return cJSON_AddRawToObject(obj, key, digits) != NULL;
}

/* Prints root compactly into *out (malloc'd) and deletes root. */
chat_err_t chat_json_print(cJSON *root, char **out, size_t *len)
{
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (text == NULL)
        return CHAT_ERR_NOMEM;
    *out = text;
    if (len != NULL)
        *len = strlen(text);
    return CHAT_OK;
}
