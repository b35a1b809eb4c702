/* The chat.deliver record codec (see deliver_codec.h): an envelope {"v":1,"type":"deliver",
 * "items":[...]} of items, each a frame for one room's subscribers or for named connections. */
#include "common/deliver_codec.h"

#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/names.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const deliver_keys[] = {"v", "type", "items"};
static const char *const item_keys[] = {"tenant", "room", "seq", "frame", "conns"};
enum { ITEM_TENANT, ITEM_ROOM, ITEM_SEQ, ITEM_FRAME, ITEM_CONNS };

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
    if (!frame_valid(item->frame))
        return "frame is not an object with a string type";
    if (item->conns != NULL && item->nconns == 0)
        return "empty conns: omit conns to reach every subscriber";
    for (size_t i = 0; item->conns != NULL && i < item->nconns; i++) {
        if (item->conns[i] == NULL || !chat_name_endpoint_valid(item->conns[i]))
            return "invalid conn id";
    }
    return NULL;
}

static cJSON *item_new(const chat_deliver_item_t *item)
{
    cJSON *obj = cJSON_CreateObject();
    bool ok = obj != NULL && cJSON_AddStringToObject(obj, "tenant", item->tenant) != NULL &&
              cJSON_AddStringToObject(obj, "room", item->room) != NULL &&
              (item->seq == 0 || chat_json_add_int(obj, "seq", item->seq)) &&
              cJSON_AddItemReferenceToObject(obj, "frame", item->frame);
    cJSON *conns = NULL;
    if (ok && item->conns != NULL)
        ok = (conns = cJSON_AddArrayToObject(obj, "conns")) != NULL;
    for (size_t i = 0; ok && conns != NULL && i < item->nconns; i++) {
        cJSON *conn = cJSON_CreateStringReference(item->conns[i]);
        ok = conn != NULL && cJSON_AddItemToArray(conns, conn);
    }
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

/* Fills *out from a conns array; the array of pointers is malloc'd, the strings stay in the
 * parse tree. */
static chat_err_t conns_read(const cJSON *array, size_t index, chat_deliver_item_t *out,
                             char *errbuf, size_t errlen)
{
    if (!cJSON_IsArray(array) || array->child == NULL)
        return chat_json_fail(errbuf, errlen, "deliver item %zu: conns must be a non-empty array",
                              index);
    out->conns = calloc((size_t)cJSON_GetArraySize(array), sizeof *out->conns);
    if (out->conns == NULL)
        return CHAT_ERR_NOMEM;
    for (const cJSON *c = array->child; c != NULL; c = c->next) {
        if (!cJSON_IsString(c) || !chat_name_endpoint_valid(c->valuestring))
            return chat_json_fail(errbuf, errlen, "deliver item %zu: invalid conn id", index);
        out->conns[out->nconns++] = c->valuestring;
    }
    return CHAT_OK;
}

static chat_err_t item_read(const cJSON *obj, size_t index, chat_deliver_item_t *out, char *errbuf,
                            size_t errlen)
{
    cJSON *m[ARRAY_LEN(item_keys)];
    if (!cJSON_IsObject(obj))
        return chat_json_fail(errbuf, errlen, "deliver item %zu: not an object", index);
    chat_err_t err = chat_json_map_members(obj, item_keys, sizeof item_keys[0],
                                           ARRAY_LEN(item_keys), m, "deliver item", errbuf, errlen);
    if (err != CHAT_OK)
        return err;
    if (!cJSON_IsString(m[ITEM_TENANT]) || !chat_name_tenant_valid(m[ITEM_TENANT]->valuestring))
        return chat_json_fail(errbuf, errlen, "deliver item %zu: invalid tenant", index);
    if (!cJSON_IsString(m[ITEM_ROOM]) || !chat_name_room_valid(m[ITEM_ROOM]->valuestring))
        return chat_json_fail(errbuf, errlen, "deliver item %zu: invalid room", index);
    if (m[ITEM_SEQ] != NULL && !(chat_json_read_int(m[ITEM_SEQ], &out->seq) && out->seq >= 1))
        return chat_json_fail(errbuf, errlen, "deliver item %zu: seq must be an integer >= 1",
                              index);
    if (!frame_valid(m[ITEM_FRAME]))
        return chat_json_fail(errbuf, errlen, "deliver item %zu: frame needs a string type", index);
    out->tenant = m[ITEM_TENANT]->valuestring;
    out->room = m[ITEM_ROOM]->valuestring;
    out->frame = m[ITEM_FRAME];
    return m[ITEM_CONNS] != NULL ? conns_read(m[ITEM_CONNS], index, out, errbuf, errlen) : CHAT_OK;
}

static bool deliver_version_valid(const cJSON *item)
{
    int64_t v;
    return chat_json_read_int(item, &v) && v == CHAT_DELIVER_VERSION;
}

/* Checks the batch envelope {"v":1,"type":"deliver","items":[...]} and returns its items. */
static const cJSON *deliver_items(const cJSON *root, char *errbuf, size_t errlen)
{
    cJSON *m[ARRAY_LEN(deliver_keys)];
    if (!cJSON_IsObject(root)) {
        chat_json_fail(errbuf, errlen, "not a JSON object");
        return NULL;
    }
    if (chat_json_map_members(root, deliver_keys, sizeof deliver_keys[0], ARRAY_LEN(deliver_keys),
                              m, "deliver", errbuf, errlen) != CHAT_OK)
        return NULL;
    if (!deliver_version_valid(m[0]) || !cJSON_IsString(m[1]) ||
        strcmp(m[1]->valuestring, "deliver") != 0) {
        chat_json_fail(errbuf, errlen, "not a version 1 deliver record");
        return NULL;
    }
    if (!cJSON_IsArray(m[2]) || m[2]->child == NULL) {
        chat_json_fail(errbuf, errlen, "deliver: items must be a non-empty array");
        return NULL;
    }
    return m[2];
}

chat_err_t chat_deliver_decode(const void *buf, size_t len, chat_deliver_t *out, char *errbuf,
                               size_t errlen)
{
    if (out == NULL)
        return chat_json_fail(errbuf, errlen, "no output batch");
    memset(out, 0, sizeof *out);
    cJSON *root = chat_json_parse_exact(buf, len, errbuf, errlen);
    if (root == NULL)
        return CHAT_ERR_INVALID;
    out->priv_ = root;
    const cJSON *array = deliver_items(root, errbuf, errlen);
    chat_err_t err = CHAT_ERR_INVALID;
    if (array != NULL) {
        size_t n = (size_t)cJSON_GetArraySize(array);
        out->items = calloc(n, sizeof *out->items);
        err = out->items != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
        for (const cJSON *it = array->child; err == CHAT_OK && it != NULL; it = it->next) {
            err = item_read(it, out->nitems, &out->items[out->nitems], errbuf, errlen);
            out->nitems++; /* counted even on failure, so that clear frees its conns */
        }
    }
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
    cJSON_Delete(d->priv_);
    memset(d, 0, sizeof *d);
}
