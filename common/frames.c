/* Client frames that more than one service builds (see frames.h). Integers are written as
 * exact digits where they may exceed what a double prints without an exponent. */
#include "common/frames.h"

#include <stdbool.h>

#include "common/json.h"

cJSON *chat_frame_msg_new(const chat_event_t *msg)
{
    if (msg == NULL || msg->type != CHAT_EV_MSG || msg->room == NULL || !msg->has_seq ||
        msg->id == NULL || msg->user == NULL || msg->text == NULL || !msg->has_ts)
        return NULL;
    cJSON *f = cJSON_CreateObject();
    bool ok = f != NULL && cJSON_AddStringToObject(f, "type", "msg") != NULL &&
              cJSON_AddStringToObject(f, "room", msg->room) != NULL &&
              cJSON_AddNumberToObject(f, "seq", (double)msg->seq) != NULL &&
              cJSON_AddStringToObject(f, "id", msg->id) != NULL &&
              cJSON_AddStringToObject(f, "from", msg->user) != NULL &&
              (msg->name == NULL || cJSON_AddStringToObject(f, "name", msg->name) != NULL) &&
              cJSON_AddStringToObject(f, "text", msg->text) != NULL &&
              cJSON_AddNumberToObject(f, "ts", (double)msg->ts) != NULL &&
              (msg->cid == NULL || cJSON_AddStringToObject(f, "cid", msg->cid) != NULL) &&
              (!msg->has_edited || cJSON_AddBoolToObject(f, "edited", msg->edited) != NULL);
    if (ok && msg->reactions != NULL) {
        /* A copy: the frame outlives the event (it is queued to sockets). */
        cJSON *copy = cJSON_Duplicate(msg->reactions, true);
        ok = copy != NULL && cJSON_AddItemToObject(f, "reactions", copy);
        if (!ok)
            cJSON_Delete(copy);
    }
    if (!ok) {
        cJSON_Delete(f);
        return NULL;
    }
    return f;
}

cJSON *chat_frame_ack_new(const chat_event_t *ev)
{
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
