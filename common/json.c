/* JSON helpers of the codecs (see json.h): exact integers, whole-buffer parsing, member
 * tables, error reasons. */
#include "common/json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
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

/* ---- reading JSON text in place ---- */

static void cur_ws(chat_json_cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

char chat_json_cur_peek(chat_json_cur_t *c)
{
    cur_ws(c);
    return c->p < c->end ? *c->p : '\0';
}

bool chat_json_cur_take(chat_json_cur_t *c, char ch)
{
    if (chat_json_cur_peek(c) != ch || ch == '\0')
        return false;
    c->p++;
    return true;
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

bool chat_json_cur_string(chat_json_cur_t *c, const char **s, size_t *len, bool *escaped)
{
    if (!chat_json_cur_take(c, '"'))
        return false;
    const char *start = c->p;
    bool esc = false;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            *s = start;
            *len = (size_t)(c->p - start);
            *escaped = esc;
            c->p++;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            esc = true;
            if (c->p + 1 >= c->end)
                return false;
            char e = c->p[1];
            if (e == 'u') {
                if (c->end - c->p < 6 || !is_hex(c->p[2]) || !is_hex(c->p[3]) || !is_hex(c->p[4]) ||
                    !is_hex(c->p[5]))
                    return false;
                c->p += 6;
                continue;
            }
            if (strchr("\"\\/bfnrt", e) == NULL || e == '\0')
                return false;
            c->p += 2;
            continue;
        }
        c->p++;
    }
    return false;
}

/* A number by the JSON grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool cur_number(chat_json_cur_t *c)
{
    const char *p = c->p;
    if (p < c->end && *p == '-')
        p++;
    if (p >= c->end || *p < '0' || *p > '9')
        return false;
    if (*p == '0')
        p++;
    else
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    if (p < c->end && *p == '.') {
        p++;
        if (p >= c->end || *p < '0' || *p > '9')
            return false;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < c->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < c->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= c->end || *p < '0' || *p > '9')
            return false;
        while (p < c->end && *p >= '0' && *p <= '9')
            p++;
    }
    c->p = p;
    return true;
}

static bool cur_literal(chat_json_cur_t *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    c->p += n;
    return true;
}

bool chat_json_cur_skip(chat_json_cur_t *c, int max_depth)
{
    const char *s;
    size_t len;
    bool esc;
    switch (chat_json_cur_peek(c)) {
    case '"':
        return chat_json_cur_string(c, &s, &len, &esc);
    case '{':
    case '[': {
        if (max_depth <= 0)
            return false;
        char close = *c->p == '{' ? '}' : ']';
        bool object = close == '}';
        c->p++;
        if (chat_json_cur_take(c, close))
            return true;
        do {
            if (object && !(chat_json_cur_string(c, &s, &len, &esc) && chat_json_cur_take(c, ':')))
                return false;
            if (!chat_json_cur_skip(c, max_depth - 1))
                return false;
        } while (chat_json_cur_take(c, ','));
        return chat_json_cur_take(c, close);
    }
    case 't':
        return cur_literal(c, "true");
    case 'f':
        return cur_literal(c, "false");
    case 'n':
        return cur_literal(c, "null");
    default:
        return cur_number(c);
    }
}

static unsigned hex4(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v = v * 16 + (unsigned)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t utf8_put(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t chat_json_unescape(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (s[i] != '\\') {
            out[n++] = s[i++];
            continue;
        }
        if (i + 1 >= len)
            return SIZE_MAX;
        char e = s[i + 1];
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e != '\0' ? strchr(from, e) : NULL;
        if (k != NULL) {
            out[n++] = to[k - from];
            i += 2;
            continue;
        }
        if (e != 'u' || i + 6 > len)
            return SIZE_MAX;
        unsigned cp = hex4(s + i + 2);
        i += 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (i + 6 > len || s[i] != '\\' || s[i + 1] != 'u')
                return SIZE_MAX;
            unsigned lo = hex4(s + i + 2);
            if (lo < 0xdc00 || lo > 0xdfff)
                return SIZE_MAX;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            i += 6;
        } else if ((cp >= 0xdc00 && cp <= 0xdfff) || cp == 0) {
            return SIZE_MAX;
        }
        n += utf8_put(out + n, cp);
    }
    return n;
}
