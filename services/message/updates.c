/* Update records and the rules of edit, delete, react and moderation's removal (see
 * updates.h). */
#include "services/message/updates.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/reactions.h"

void message_update_rec_clear(message_update_rec_t *r)
{
    if (r == NULL)
        return;
    free(r->tenant);
    free(r->room);
    free(r->user);
    free(r->req);
    free(r->src);
    free(r->id);
    free(r->op);
    free(r->text);
    free(r->reason);
    cJSON_Delete(r->reactions);
    memset(r, 0, sizeof *r);
}

static char *dup_opt(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *c = strdup(s);
    *ok = *ok && c != NULL;
    return c;
}

chat_err_t message_update_rec_copy(message_update_rec_t *dst, const message_update_rec_t *src)
{
    bool ok = true;
    *dst = *src;
    dst->tenant = dup_opt(src->tenant, &ok);
    dst->room = dup_opt(src->room, &ok);
    dst->user = dup_opt(src->user, &ok);
    dst->req = dup_opt(src->req, &ok);
    dst->src = dup_opt(src->src, &ok);
    dst->id = dup_opt(src->id, &ok);
    dst->op = dup_opt(src->op, &ok);
    dst->text = dup_opt(src->text, &ok);
    dst->reason = dup_opt(src->reason, &ok);
    dst->reactions = src->reactions != NULL ? cJSON_Duplicate(src->reactions, true) : NULL;
    ok = ok && (src->reactions == NULL || dst->reactions != NULL);
    if (!ok) {
        message_update_rec_clear(dst);
        return CHAT_ERR_NOMEM;
    }
    return CHAT_OK;
}

void message_update_req_key(const chat_event_t *ev, const char *src, char *buf, size_t len)
{
    if (ev->type == CHAT_EV_VERDICT)
        snprintf(buf, len, "mod:%s", ev->id);
    else if (ev->rid != NULL)
        snprintf(buf, len, "rid:%s", ev->rid);
    else
        snprintf(buf, len, "src:%s", src);
}

const char *message_update_op(chat_event_type_t type)
{
    switch (type) {
    case CHAT_EV_EDIT:
        return "edit";
    case CHAT_EV_DELETE:
        return "delete";
    case CHAT_EV_REACT:
        return "react";
    case CHAT_EV_VERDICT:
        return "moderate";
    default:
        return NULL;
    }
}

/* out's state = msg's current state (copies). */
static bool state_copy(message_update_rec_t *out, const message_doc_t *msg)
{
    bool ok = true;
    out->text = dup_opt(msg->text, &ok);
    out->edited = msg->edited;
    out->deleted = msg->deleted;
    out->removed = msg->removed;
    out->reason = dup_opt(msg->reason, &ok);
    out->reactions = msg->reactions != NULL ? cJSON_Duplicate(msg->reactions, true) : NULL;
    return ok && (msg->reactions == NULL || out->reactions != NULL);
}

/* A verdict about msg: removes it (the reason kept, the rest of its content gone, as a
 * delete), once: a message already gone, deleted or removed, is left as it is. */
static message_update_verdict_t moderate(const chat_event_t *ev, const message_doc_t *msg,
                                         message_update_rec_t *out)
{
    if (msg->deleted || msg->removed)
        return MESSAGE_UPDATE_NOOP;
    out->removed = true;
    out->reason = strdup(ev->reason != NULL ? ev->reason : "removed by moderation");
    return out->reason != NULL ? MESSAGE_UPDATE_CHANGE : MESSAGE_UPDATE_NOMEM;
}

static message_update_verdict_t refuse(message_update_verdict_t v, const char **reason,
                                       const char *why)
{
    *reason = why;
    return v;
}

/* The react rule on out's copy of the reactions. */
static message_update_verdict_t react(const chat_event_t *ev, message_update_rec_t *out,
                                      const char **reason)
{
    if (out->reactions == NULL && (out->reactions = cJSON_CreateObject()) == NULL)
        return MESSAGE_UPDATE_NOMEM;
    switch (chat_reactions_apply(out->reactions, ev->emoji, ev->user, ev->on,
                                 CHAT_REACTIONS_MAX_EMOJI)) {
    case CHAT_REACTIONS_CHANGED:
        break;
    case CHAT_REACTIONS_UNCHANGED:
        return MESSAGE_UPDATE_NOOP;
    case CHAT_REACTIONS_TOO_MANY:
        return refuse(MESSAGE_UPDATE_TOO_MANY, reason, "a message holds at most 20 distinct emoji");
    case CHAT_REACTIONS_NOMEM:
        return MESSAGE_UPDATE_NOMEM;
    }
    if (out->reactions->child == NULL) {
        cJSON_Delete(out->reactions);
        out->reactions = NULL;
    }
    return MESSAGE_UPDATE_CHANGE;
}

/* The rules of an edit, delete or react by ev->user (see message_update_decide). */
static message_update_verdict_t request_decide(const chat_event_t *ev, const message_doc_t *msg,
                                               int64_t now, message_update_rec_t *out,
                                               const char **reason)
{
    /* The tenant (the server API, as "system") may change any message of the room. */
    bool author = strcmp(msg->from, ev->user) == 0 || strcmp(ev->user, CHAT_SYSTEM_USER) == 0;
    if (ev->type != CHAT_EV_REACT && !author)
        return refuse(MESSAGE_UPDATE_FORBIDDEN, reason,
                      ev->type == CHAT_EV_EDIT ? "only its author edits a message"
                                               : "only its author deletes a message");
    if (msg->deleted || msg->removed) {
        if (ev->type == CHAT_EV_DELETE)
            return MESSAGE_UPDATE_NOOP;
        return refuse(MESSAGE_UPDATE_NOT_FOUND, reason,
                      msg->removed ? "the message was removed" : "the message was deleted");
    }
    if (ev->type == CHAT_EV_DELETE) {
        out->deleted = true;
        return MESSAGE_UPDATE_CHANGE;
    }
    if (!state_copy(out, msg))
        return MESSAGE_UPDATE_NOMEM;
    if (ev->type == CHAT_EV_REACT)
        return react(ev, out, reason);
    free(out->text);
    out->text = strdup(ev->text);
    out->edited = now;
    return out->text != NULL ? MESSAGE_UPDATE_CHANGE : MESSAGE_UPDATE_NOMEM;
}

message_update_verdict_t message_update_decide(const chat_event_t *ev, const message_doc_t *msg,
                                               int64_t now, message_update_rec_t *out,
                                               const char **reason)
{
    memset(out, 0, sizeof *out);
    *reason = NULL;
    const char *op = message_update_op(ev->type);
    if (op == NULL)
        return refuse(MESSAGE_UPDATE_FORBIDDEN, reason, "not an update");
    message_update_verdict_t v = ev->type == CHAT_EV_VERDICT
                                     ? moderate(ev, msg, out)
                                     : request_decide(ev, msg, now, out, reason);
    if (v == MESSAGE_UPDATE_CHANGE) {
        out->op = strdup(op);
        out->id = strdup(msg->id);
        if (out->op == NULL || out->id == NULL)
            v = MESSAGE_UPDATE_NOMEM;
    }
    if (v != MESSAGE_UPDATE_CHANGE) {
        message_update_rec_clear(out);
        return v;
    }
    out->seq = msg->seq;
    out->ts = now;
    return v;
}
