/* Client frames that more than one service builds (see frames.h). Integers are written as
 * exact digits where they may exceed what a double prints without an exponent. */
#include "common/frames.h"

#include <stdbool.h>

#include "common/json.h"

/* Adds the current state of a message that the event carries: edited (ts of the last edit),
 * deleted, removed, reason (of a moderation or of a deletion that gave one), reactions (a copy: the
 * frame outlives the event, it is queued to sockets). */
static bool add_state(cJSON *f, const chat_event_t *ev)
{
    bool ok = (!ev->has_edited || chat_json_add_int(f, "edited", ev->edited)) &&
              (!ev->has_deleted || !ev->deleted || cJSON_AddTrueToObject(f, "deleted") != NULL) &&
              (!ev->has_removed || !ev->removed || cJSON_AddTrueToObject(f, "removed") != NULL) &&
              (ev->reason == NULL || !chat_event_msg_gone(ev) ||
               cJSON_AddStringToObject(f, "reason", ev->reason) != NULL);
    if (ok && ev->reactions != NULL) {
        cJSON *copy = cJSON_Duplicate(ev->reactions, true);
        ok = copy != NULL && cJSON_AddItemToObject(f, "reactions", copy);
        if (!ok)
            cJSON_Delete(copy);
    }
    return ok;
}

cJSON *chat_frame_msg_new(const chat_event_t *msg)
{
    if (msg == NULL || msg->type != CHAT_EV_MSG || msg->room == NULL || !msg->has_seq ||
        msg->id == NULL || msg->user == NULL || (msg->text == NULL && !chat_event_msg_gone(msg)) ||
        !msg->has_ts)
        return NULL;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL && cJSON_AddStringToObject(f, "type", "msg") != NULL &&
              cJSON_AddStringToObject(f, "room", msg->room) != NULL &&
              cJSON_AddNumberToObject(f, "seq", (double)msg->seq) != NULL &&
              cJSON_AddStringToObject(f, "id", msg->id) != NULL &&
              cJSON_AddStringToObject(f, "from", msg->user) != NULL &&
              (msg->name == NULL || cJSON_AddStringToObject(f, "name", msg->name) != NULL) &&
              (chat_event_msg_gone(msg) || cJSON_AddStringToObject(f, "text", msg->text) != NULL) &&
              (msg->notice == NULL || cJSON_AddStringToObject(f, "notice", msg->notice) != NULL) &&
              (msg->target == NULL || cJSON_AddStringToObject(f, "target", msg->target) != NULL) &&
              cJSON_AddNumberToObject(f, "ts", (double)msg->ts) != NULL &&
              (msg->cid == NULL || cJSON_AddStringToObject(f, "cid", msg->cid) != NULL) &&
              add_state(f, msg);
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

cJSON *chat_frame_update_new(const chat_event_t *ev)
{
    if (ev == NULL || ev->type != CHAT_EV_UPDATE || ev->room == NULL || ev->id == NULL ||
        !ev->has_seq || !ev->has_useq || ev->op == NULL)
        return NULL;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL && cJSON_AddStringToObject(f, "type", "update") != NULL &&
              cJSON_AddStringToObject(f, "room", ev->room) != NULL &&
              cJSON_AddStringToObject(f, "id", ev->id) != NULL &&
              chat_json_add_int(f, "seq", ev->seq) && chat_json_add_int(f, "useq", ev->useq) &&
              cJSON_AddStringToObject(f, "op", ev->op) != NULL &&
              (chat_event_msg_gone(ev) || ev->text == NULL ||
               cJSON_AddStringToObject(f, "text", ev->text) != NULL) &&
              add_state(f, ev) &&
              (ev->user == NULL || cJSON_AddStringToObject(f, "user", ev->user) != NULL) &&
              (!ev->has_ts || chat_json_add_int(f, "ts", ev->ts));
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

/* The ack of an edit, delete or react: {"type":"ack","rid"?,"room","id","seq","op","useq"?}. */
static cJSON *update_ack_new(const chat_event_t *ev)
{
    if (ev->room == NULL || !ev->has_seq || ev->id == NULL || ev->op == NULL)
        return NULL;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL && cJSON_AddStringToObject(f, "type", "ack") != NULL &&
              (ev->rid == NULL || cJSON_AddStringToObject(f, "rid", ev->rid) != NULL) &&
              cJSON_AddStringToObject(f, "room", ev->room) != NULL &&
              cJSON_AddStringToObject(f, "id", ev->id) != NULL &&
              chat_json_add_int(f, "seq", ev->seq) &&
              cJSON_AddStringToObject(f, "op", ev->op) != NULL &&
              (!ev->has_useq || chat_json_add_int(f, "useq", ev->useq));
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

cJSON *chat_frame_ack_new(const chat_event_t *ev)
{
    if (ev != NULL && (ev->type == CHAT_EV_UPDATE || (ev->type == CHAT_EV_ACK && ev->op != NULL)))
        return update_ack_new(ev);
    if (ev == NULL || (ev->type != CHAT_EV_MSG && ev->type != CHAT_EV_ACK) || ev->cid == NULL ||
        ev->room == NULL || !ev->has_seq || ev->id == NULL || !ev->has_ts)
        return NULL;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL && cJSON_AddStringToObject(f, "type", "ack") != NULL &&
              cJSON_AddStringToObject(f, "cid", ev->cid) != NULL &&
              cJSON_AddStringToObject(f, "room", ev->room) != NULL &&
              chat_json_add_int(f, "seq", ev->seq) &&
              cJSON_AddStringToObject(f, "id", ev->id) != NULL &&
              chat_json_add_int(f, "ts", ev->ts);
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

cJSON *chat_frame_error_new(const char *code, const char *message, const char *rid, const char *cid)
{
    if (code == NULL || *code == '\0' || message == NULL || *message == '\0')
        return NULL;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL && cJSON_AddStringToObject(f, "type", "error") != NULL &&
              cJSON_AddStringToObject(f, "code", code) != NULL &&
              cJSON_AddStringToObject(f, "message", message) != NULL &&
              (rid == NULL || cJSON_AddStringToObject(f, "rid", rid) != NULL) &&
              (cid == NULL || cJSON_AddStringToObject(f, "cid", cid) != NULL);
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

cJSON *chat_frame_read_new(const chat_event_t *ev)
{
    if (ev == NULL || ev->type != CHAT_EV_READ || ev->room == NULL || ev->user == NULL ||
        !ev->has_seq)
        return NULL;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL && cJSON_AddStringToObject(f, "type", "read") != NULL &&
              cJSON_AddStringToObject(f, "room", ev->room) != NULL &&
              cJSON_AddStringToObject(f, "user", ev->user) != NULL &&
              chat_json_add_int(f, "seq", ev->seq);
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}
