/* The chat.deliver record codec (see deliver_codec.h): an envelope {"v":1,"type":"deliver",
 * "items":[...]} of items, each a frame for one room's subscribers or for named connections.
 * Encoding builds a cJSON tree (frames are raw nodes, printed once by their producer);
 * decoding reads the record in place and passes each frame on as the bytes it is, so a
 * gateway never parses or prints the frames it forwards. */
#include "common/deliver_codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const deliver_keys[] = {"v", "type", "items"};
static const char *const item_keys[] = {"tenant",      "room", "seq",      "frame", "conns",
                                        "except_user", "end",  "end_user", "sent"};
enum {
    ITEM_TENANT,
    ITEM_ROOM,
    ITEM_SEQ,
    ITEM_FRAME,
    ITEM_CONNS,
    ITEM_EXCEPT_USER,
    ITEM_END,
    ITEM_END_USER,
    ITEM_SENT
};

/* Returns NULL if end/end_user (either may be NULL) of an item with or without conns
 * agree: "removed" with a user, "deleted" without, neither in an item with conns. */
static const char *end_problem(const char *end, const char *end_user, bool has_conns)
{
    if (end == NULL)
        return end_user == NULL ? NULL : "end_user without end";
    if (has_conns)
        return "end only in items without conns";
    if (strcmp(end, "removed") == 0)
        return end_user != NULL && chat_name_user_valid(end_user) ? NULL
                                                                  : "end removed needs end_user";
    if (strcmp(end, "deleted") == 0)
        return end_user == NULL ? NULL : "end deleted takes no end_user";
    return "end must be removed or deleted";
}

/* A frame object with a string type, or a frame its producer already serialised (a cJSON
 * raw node, trusted to hold one JSON object). */
static bool frame_valid(const cJSON *frame)
{
    if (cJSON_IsRaw(frame))
        return frame->valuestring != NULL && frame->valuestring[0] == '{';
    return cJSON_IsObject(frame) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(frame, "type"));
}

/* Returns NULL if item can be encoded, else why not. */
static const char *item_problem(const chat_deliver_item_t *item)
{
    if (item->tenant == NULL || !chat_name_tenant_valid(item->tenant))
        return "invalid tenant";
    if (item->room == NULL || !chat_name_room_valid(item->room))
        return "invalid room";
    if (item->seq < 0 || item->seq > CHAT_JSON_INT_MAX)
        return "seq out of range";
    if (item->sent < 0 || item->sent > CHAT_JSON_INT_MAX)
        return "sent out of range";
    if (!frame_valid(item->frame))
        return "frame is not an object with a string type";
    if (item->conns != NULL && item->nconns == 0)
        return "empty conns: omit conns to reach every subscriber";
    for (size_t i = 0; item->conns != NULL && i < item->nconns; i++) {
        if (item->conns[i] == NULL || !chat_name_endpoint_valid(item->conns[i]))
            return "invalid conn id";
    }
    if (item->except_user != NULL &&
        (item->conns != NULL || !chat_name_user_valid(item->except_user)))
        return "except_user must be a user id, in an item without conns";
    return end_problem(item->end, item->end_user, item->conns != NULL);
}

static cJSON *item_new(const chat_deliver_item_t *item)
{
    cJSON *obj = cJSON_CreateObject();
    bool ok = obj != NULL && cJSON_AddStringToObject(obj, "tenant", item->tenant) != NULL &&
              cJSON_AddStringToObject(obj, "room", item->room) != NULL &&
              (item->seq == 0 || chat_json_add_int(obj, "seq", item->seq)) &&
              (item->sent == 0 || chat_json_add_int(obj, "sent", item->sent)) &&
              cJSON_AddItemReferenceToObject(obj, "frame", item->frame);
    cJSON *conns = NULL;
    if (ok && item->conns != NULL)
        ok = (conns = cJSON_AddArrayToObject(obj, "conns")) != NULL;
    for (size_t i = 0; ok && conns != NULL && i < item->nconns; i++) {
        cJSON *conn = cJSON_CreateStringReference(item->conns[i]);
        ok = conn != NULL && cJSON_AddItemToArray(conns, conn);
    }
    if (ok && item->except_user != NULL)
        ok = cJSON_AddStringToObject(obj, "except_user", item->except_user) != NULL;
    if (ok && item->end != NULL)
        ok = cJSON_AddStringToObject(obj, "end", item->end) != NULL;
    if (ok && item->end_user != NULL)
        ok = cJSON_AddStringToObject(obj, "end_user", item->end_user) != NULL;
    if (!ok) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

chat_err_t chat_deliver_encode(const chat_deliver_item_t *items, size_t n, char **out, size_t *len)
{
    if (items == NULL || n == 0 || out == NULL)
        return CHAT_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        const char *problem = item_problem(&items[i]);
        if (problem != NULL) {
            chat_log_warn("deliver batch not encoded", CHAT_F_INT("item", i),
                          CHAT_F_STR("reason", problem));
            return CHAT_ERR_INVALID;
        }
    }
    cJSON *root = cJSON_CreateObject();
    cJSON *array = NULL;
    bool ok = root != NULL && chat_json_add_int(root, "v", CHAT_DELIVER_VERSION) &&
              cJSON_AddStringToObject(root, "type", "deliver") != NULL &&
              (array = cJSON_AddArrayToObject(root, "items")) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        cJSON *item = item_new(&items[i]);
        ok = item != NULL && cJSON_AddItemToArray(array, item);
    }
    if (!ok) {
        cJSON_Delete(root);
        return CHAT_ERR_NOMEM;
    }
    return chat_json_print(root, out, len);
}

/* ---- decoding: read in place, frames passed on as the bytes they are ---- */

#define FRAME_DEPTH_MAX 64 /* nesting inside a frame (reactions, nested payloads) */
#define KEY_MAX 32         /* longer keys are none of ours */

typedef struct reader {
    chat_json_cur_t c;
    char *arena; /* unescaped, NUL-terminated copies of the small strings */
    size_t used, cap;
    char *errbuf;
    size_t errlen;
} reader_t;

/* Copies string s (as written, len bytes) into the arena, unescaped and NUL-terminated. */
static const char *arena_string(reader_t *r, const char *s, size_t len, bool escaped)
{
    if (r->used + len + 1 > r->cap)
        return NULL; /* cannot happen: the arena is sized for every string of the record */
    char *out = r->arena + r->used;
    size_t n = len;
    if (escaped)
        n = chat_json_unescape(s, len, out);
    else
        memcpy(out, s, len);
    if (n == SIZE_MAX || memchr(out, '\0', n) != NULL)
        return NULL;
    out[n] = '\0';
    r->used += n + 1;
    return out;
}

/* Reads a string value into the arena; NULL if the next value is not a (valid) string. */
static const char *read_string(reader_t *r)
{
    const char *s;
    size_t len;
    bool esc;
    if (!chat_json_cur_string(&r->c, &s, &len, &esc))
        return NULL;
    return arena_string(r, s, len, esc);
}

/* Reads a member key and its colon: its index in keys (n of them), or -1 for another key
 * (*ok false on a syntax error). */
static int read_key(reader_t *r, const char *const *keys, size_t n, bool *ok)
{
    const char *s;
    size_t len;
    bool esc;
    char buf[KEY_MAX];
    *ok = chat_json_cur_string(&r->c, &s, &len, &esc) && chat_json_cur_take(&r->c, ':');
    if (!*ok || len >= KEY_MAX)
        return -1;
    if (esc) {
        size_t m = chat_json_unescape(s, len, buf);
        if (m == SIZE_MAX)
            return -1;
        s = buf;
        len = m;
    }
    for (size_t i = 0; i < n; i++)
        if (strlen(keys[i]) == len && memcmp(keys[i], s, len) == 0)
            return (int)i;
    return -1;
}

/* Reads an integer value within +-CHAT_JSON_INT_MAX (as cJSON would: integral doubles). */
static bool read_int(reader_t *r, int64_t *out)
{
    chat_json_cur_peek(&r->c);
    const char *start = r->c.p;
    if (!chat_json_cur_skip(&r->c, 0))
        return false;
    char num[40];
    size_t len = (size_t)(r->c.p - start);
    if (len == 0 || len >= sizeof num || strchr("-0123456789", start[0]) == NULL)
        return false;
    memcpy(num, start, len);
    num[len] = '\0';
    double d = strtod(num, NULL);
    if (!(d >= -(double)CHAT_JSON_INT_MAX && d <= (double)CHAT_JSON_INT_MAX) ||
        (double)(int64_t)d != d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* A frame: an object whose "type" is a string. Its bytes are passed on as they stand;
 * only its type is read. */
static chat_err_t frame_read(reader_t *r, size_t index, chat_deliver_item_t *out)
{
    static const char *const type_key[] = {"type"};
    if (chat_json_cur_peek(&r->c) != '{')
        return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: frame is not an object",
                              index);
    const char *start = r->c.p++;
    const char *type = NULL;
    bool ok = true;
    if (!chat_json_cur_take(&r->c, '}')) {
        do {
            int k = read_key(r, type_key, 1, &ok);
            if (ok && k == 0 && type == NULL && chat_json_cur_peek(&r->c) == '"')
                ok = (type = read_string(r)) != NULL;
            else if (ok)
                ok = chat_json_cur_skip(&r->c, FRAME_DEPTH_MAX);
        } while (ok && chat_json_cur_take(&r->c, ','));
        ok = ok && chat_json_cur_take(&r->c, '}');
    }
    if (!ok)
        return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: frame is not valid JSON",
                              index);
    if (type == NULL)
        return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: frame needs a string type",
                              index);
    out->frame_json = start;
    out->frame_len = (size_t)(r->c.p - start);
    out->frame_type = type;
    return CHAT_OK;
}

/* conns: a non-empty array of connection ids; the pointer array is malloc'd. */
static chat_err_t conns_read(reader_t *r, size_t index, chat_deliver_item_t *out)
{
    const char *bad = "deliver item %zu: conns must be a non-empty array of connection ids";
    if (!chat_json_cur_take(&r->c, '[') || chat_json_cur_peek(&r->c) == ']')
        return chat_json_fail(r->errbuf, r->errlen, bad, index);
    size_t cap = 0;
    do {
        const char **conns = chat_array_grow(out->conns, &cap, out->nconns + 1, sizeof *conns);
        if (conns == NULL)
            return CHAT_ERR_NOMEM;
        out->conns = conns;
        const char *conn = chat_json_cur_peek(&r->c) == '"' ? read_string(r) : NULL;
        if (conn == NULL || !chat_name_endpoint_valid(conn))
            return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: invalid conn id", index);
        out->conns[out->nconns++] = conn;
    } while (chat_json_cur_take(&r->c, ','));
    return chat_json_cur_take(&r->c, ']') ? CHAT_OK
                                          : chat_json_fail(r->errbuf, r->errlen, bad, index);
}

static chat_err_t item_read(reader_t *r, size_t index, chat_deliver_item_t *out)
{
    if (!chat_json_cur_take(&r->c, '{'))
        return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: not an object", index);
    bool seen[ARRAY_LEN(item_keys)] = {false};
    chat_err_t err = CHAT_OK;
    bool ok = true;
    if (!chat_json_cur_take(&r->c, '}')) {
        do {
            int k = read_key(r, item_keys, ARRAY_LEN(item_keys), &ok);
            if (!ok)
                break;
            if (k < 0 || seen[k])
                return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: %s field", index,
                                      k < 0 ? "unknown" : "repeated");
            seen[k] = true;
            switch (k) {
            case ITEM_TENANT:
                out->tenant = chat_json_cur_peek(&r->c) == '"' ? read_string(r) : NULL;
                if (out->tenant == NULL || !chat_name_tenant_valid(out->tenant))
                    return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: invalid tenant",
                                          index);
                break;
            case ITEM_ROOM:
                out->room = chat_json_cur_peek(&r->c) == '"' ? read_string(r) : NULL;
                if (out->room == NULL || !chat_name_room_valid(out->room))
                    return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: invalid room",
                                          index);
                break;
            case ITEM_SEQ:
                if (!read_int(r, &out->seq) || out->seq < 1)
                    return chat_json_fail(r->errbuf, r->errlen,
                                          "deliver item %zu: seq must be an integer >= 1", index);
                break;
            case ITEM_SENT:
                if (!read_int(r, &out->sent) || out->sent < 1)
                    return chat_json_fail(r->errbuf, r->errlen,
                                          "deliver item %zu: sent must be an integer >= 1", index);
                break;
            case ITEM_FRAME:
                err = frame_read(r, index, out);
                break;
            case ITEM_CONNS:
                err = conns_read(r, index, out);
                break;
            case ITEM_EXCEPT_USER:
                out->except_user = chat_json_cur_peek(&r->c) == '"' ? read_string(r) : NULL;
                if (out->except_user == NULL || !chat_name_user_valid(out->except_user))
                    return chat_json_fail(r->errbuf, r->errlen,
                                          "deliver item %zu: invalid except_user", index);
                break;
            case ITEM_END:
            case ITEM_END_USER: {
                const char *v = chat_json_cur_peek(&r->c) == '"' ? read_string(r) : NULL;
                if (v == NULL)
                    return chat_json_fail(r->errbuf, r->errlen,
                                          "deliver item %zu: %s must be a string", index,
                                          item_keys[k]);
                *(k == ITEM_END ? &out->end : &out->end_user) = v;
                break;
            }
            }
            if (err != CHAT_OK)
                return err;
        } while (chat_json_cur_take(&r->c, ','));
        ok = ok && chat_json_cur_take(&r->c, '}');
    }
    if (!ok)
        return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: not valid JSON", index);
    if (!seen[ITEM_TENANT] || !seen[ITEM_ROOM] || !seen[ITEM_FRAME])
        return chat_json_fail(r->errbuf, r->errlen,
                              "deliver item %zu: needs tenant, room and frame", index);
    if (seen[ITEM_CONNS] && seen[ITEM_EXCEPT_USER])
        return chat_json_fail(r->errbuf, r->errlen,
                              "deliver item %zu: except_user only without conns", index);
    const char *bad_end = end_problem(out->end, out->end_user, seen[ITEM_CONNS]);
    if (bad_end != NULL)
        return chat_json_fail(r->errbuf, r->errlen, "deliver item %zu: %s", index, bad_end);
    return CHAT_OK;
}

static chat_err_t items_read(reader_t *r, chat_deliver_t *out)
{
    size_t cap = 0;
    if (!chat_json_cur_take(&r->c, '[') || chat_json_cur_peek(&r->c) == ']')
        return chat_json_fail(r->errbuf, r->errlen, "deliver: items must be a non-empty array");
    do {
        chat_deliver_item_t *items =
            chat_array_grow(out->items, &cap, out->nitems + 1, sizeof *items);
        if (items == NULL)
            return CHAT_ERR_NOMEM;
        out->items = items;
        memset(&out->items[out->nitems], 0, sizeof out->items[0]);
        out->nitems++; /* counted before reading, so that clear frees its conns */
        chat_err_t err = item_read(r, out->nitems - 1, &out->items[out->nitems - 1]);
        if (err != CHAT_OK)
            return err;
    } while (chat_json_cur_take(&r->c, ','));
    return chat_json_cur_take(&r->c, ']')
               ? CHAT_OK
               : chat_json_fail(r->errbuf, r->errlen, "deliver: items must be a non-empty array");
}

/* The envelope {"v":1,"type":"deliver","items":[...]}, members in any order. */
static chat_err_t envelope_read(reader_t *r, chat_deliver_t *out)
{
    if (!chat_json_cur_take(&r->c, '{'))
        return chat_json_fail(r->errbuf, r->errlen, "not a JSON object");
    bool seen[ARRAY_LEN(deliver_keys)] = {false};
    int64_t v = 0;
    const char *type = NULL;
    bool ok = true;
    if (!chat_json_cur_take(&r->c, '}')) {
        do {
            int k = read_key(r, deliver_keys, ARRAY_LEN(deliver_keys), &ok);
            if (!ok)
                break;
            if (k < 0 || seen[k])
                return chat_json_fail(r->errbuf, r->errlen, "deliver: %s field",
                                      k < 0 ? "unknown" : "repeated");
            seen[k] = true;
            chat_err_t err = CHAT_OK;
            if (k == 0)
                ok = read_int(r, &v);
            else if (k == 1)
                ok = chat_json_cur_peek(&r->c) == '"' && (type = read_string(r)) != NULL;
            else
                err = items_read(r, out);
            if (err != CHAT_OK)
                return err;
        } while (ok && chat_json_cur_take(&r->c, ','));
        ok = ok && chat_json_cur_take(&r->c, '}');
    }
    if (!ok || v != CHAT_DELIVER_VERSION || type == NULL || strcmp(type, "deliver") != 0)
        return chat_json_fail(r->errbuf, r->errlen, "not a version 1 deliver record");
    if (!seen[2])
        return chat_json_fail(r->errbuf, r->errlen, "deliver: items must be a non-empty array");
    if (chat_json_cur_peek(&r->c) != '\0')
        return chat_json_fail(r->errbuf, r->errlen, "data after the JSON value");
    return CHAT_OK;
}

chat_err_t chat_deliver_decode(const void *buf, size_t len, chat_deliver_t *out, char *errbuf,
                               size_t errlen)
{
    if (out == NULL)
        return chat_json_fail(errbuf, errlen, "no output batch");
    memset(out, 0, sizeof *out);
    if (buf == NULL || len == 0)
        return chat_json_fail(errbuf, errlen, "empty record");
    /* Every string copied is shorter than its place in the record, plus its NUL. */
    reader_t r = {.c = {.p = buf, .end = (const char *)buf + len},
                  .cap = 2 * len + 1,
                  .errbuf = errbuf,
                  .errlen = errlen};
    r.arena = malloc(r.cap);
    if (r.arena == NULL)
        return CHAT_ERR_NOMEM;
    out->priv_ = r.arena;
    chat_err_t err = envelope_read(&r, out);
    if (err != CHAT_OK)
        chat_deliver_clear(out);
    return err;
}

void chat_deliver_clear(chat_deliver_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nitems; i++)
        free((void *)d->items[i].conns);
    free(d->items);
    free(d->priv_);
    memset(d, 0, sizeof *d);
}
