/* Stored messages as client frames (see stored_msg.h): the fields of a `messages` document
 * into a chat_event_t, then the shared frame builders of common/frames.h. */
#include "common/stored_msg.h"

#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/events.h"
#include "common/frames.h"
#include "common/reactions.h"

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

/* The current state of a stored message into ev: text (left out once deleted or removed),
 * edited, deleted, removed and reason, reactions (allocated: the caller deletes
 * ev->reactions). */
static void doc_state(const bson_t *doc, chat_event_t *ev)
{
    ev->deleted = ev->has_deleted = chat_bson_true(doc, "deleted");
    ev->removed = ev->has_removed = chat_bson_true(doc, "removed");
    ev->text = ev->deleted || ev->removed ? NULL : chat_bson_str(doc, "text");
    ev->reason = ev->removed ? chat_bson_str(doc, "reason") : NULL;
    ev->has_edited = chat_bson_number_or_date(doc, "edited", &ev->edited) && ev->edited > 0;
    ev->reactions = doc_reactions(doc);
}

cJSON *chat_stored_msg_frame(const bson_t *doc)
{
    char id[25];
    chat_event_t ev = {.type = CHAT_EV_MSG};
    ev.tenant = chat_bson_str(doc, "tenant");
    ev.room = chat_bson_str(doc, "room");
    ev.user = chat_bson_str(doc, "from");
    ev.name = chat_bson_str(doc, "name");
    ev.notice = chat_bson_str(doc, "notice"); /* a system notice (docs/server-api.md) */
    ev.target = chat_bson_str(doc, "target");
    ev.cid = chat_bson_str(doc, "cid");
    ev.has_seq = chat_bson_number_or_date(doc, "seq", &ev.seq);
    ev.has_ts = chat_bson_number_or_date(doc, "ts", &ev.ts);
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
    ev.room = chat_bson_str(doc, "room");
    ev.op = chat_bson_str(doc, "uop");
    ev.has_seq = chat_bson_number_or_date(doc, "seq", &ev.seq);
    ev.has_useq = chat_bson_number_or_date(doc, "useq", &ev.useq) && ev.useq > 0;
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
