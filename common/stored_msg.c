/* Stored messages as client frames (see stored_msg.h): the fields of a `messages` document
 * into a chat_event_t, then the shared frame builders of common/frames.h. */
#include "common/stored_msg.h"

#include <stdlib.h>
#include <string.h>

#include "common/events.h"
#include "common/frames.h"
#include "common/reactions.h"

/* Integer value of a numeric field (int32, int64, integral double or date). */
static bool doc_int(const bson_t *doc, const char *key, int64_t *out)
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

static const char *doc_str(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
        return bson_iter_utf8(&it, NULL);
    return NULL;
}

/* The message id: an ObjectId as 24 lowercase hex digits (a string id is taken as is). */
static bool doc_id(const bson_t *doc, char *buf)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id"))
        return false;
    if (BSON_ITER_HOLDS_OID(&it)) {
        bson_oid_to_string(bson_iter_oid(&it), buf);
        return true;
    }
    if (BSON_ITER_HOLDS_UTF8(&it)) {
        uint32_t n = 0;
        const char *s = bson_iter_utf8(&it, &n);
        if (n != 24)
            return false;
        memcpy(buf, s, 25);
        return true;
    }
    return false;
}

/* {emoji: [users]} of a stored message as cJSON (the array form of common/reactions.h), or
 * NULL if absent, empty or malformed. */
static cJSON *doc_reactions(const bson_t *doc)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "reactions"))
        return NULL;
    cJSON *r = chat_reactions_from_bson(&it);
    if (r != NULL && r->child == NULL) {
        cJSON_Delete(r);
        r = NULL;
    }
    return r;
}

static bool doc_true(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it);
}

/* The current state of a stored message into ev: text (left out once deleted or removed),
 * edited, deleted, removed and reason, reactions (allocated: the caller deletes
 * ev->reactions). */
static void doc_state(const bson_t *doc, chat_event_t *ev)
{
    ev->deleted = ev->has_deleted = doc_true(doc, "deleted");
    ev->removed = ev->has_removed = doc_true(doc, "removed");
    ev->text = ev->deleted || ev->removed ? NULL : doc_str(doc, "text");
    ev->reason = ev->removed ? doc_str(doc, "reason") : NULL;
    ev->has_edited = doc_int(doc, "edited", &ev->edited) && ev->edited > 0;
    ev->reactions = doc_reactions(doc);
}

cJSON *chat_stored_msg_frame(const bson_t *doc)
{
    char id[25];
    chat_event_t ev = {.type = CHAT_EV_MSG};
    ev.tenant = doc_str(doc, "tenant");
    ev.room = doc_str(doc, "room");
    ev.user = doc_str(doc, "from");
    ev.name = doc_str(doc, "name");
    ev.notice = doc_str(doc, "notice"); /* a system notice (docs/server-api.md) */
    ev.target = doc_str(doc, "target");
    ev.cid = doc_str(doc, "cid");
    ev.has_seq = doc_int(doc, "seq", &ev.seq);
    ev.has_ts = doc_int(doc, "ts", &ev.ts);
    if (!doc_id(doc, id) || !ev.has_seq || !ev.has_ts)
        return NULL;
    ev.id = id;
    doc_state(doc, &ev);
    cJSON *frame = chat_frame_msg_new(&ev);
    cJSON_Delete(ev.reactions);
    return frame;
}

cJSON *chat_stored_update_frame(const bson_t *doc)
{
    char id[25];
    chat_event_t ev = {.type = CHAT_EV_UPDATE};
    ev.room = doc_str(doc, "room");
    ev.op = doc_str(doc, "uop");
    ev.has_seq = doc_int(doc, "seq", &ev.seq);
    ev.has_useq = doc_int(doc, "useq", &ev.useq) && ev.useq > 0;
    if (!doc_id(doc, id) || !ev.has_seq || !ev.has_useq || ev.op == NULL)
        return NULL;
    ev.id = id;
    doc_state(doc, &ev);
    bool react = strcmp(ev.op, "react") == 0;
    if (react && ev.reactions == NULL)
        ev.reactions = cJSON_CreateObject(); /* the last reaction went away */
    cJSON *frame = react && ev.reactions == NULL ? NULL : chat_frame_update_new(&ev);
    cJSON_Delete(ev.reactions);
    return frame;
}
