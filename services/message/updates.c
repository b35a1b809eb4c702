/* Update records and the rules of edit, delete and react (see updates.h). */
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
    if (ev->rid != NULL)
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
    out->reactions = msg->reactions != NULL ? cJSON_Duplicate(msg->reactions, true) : NULL;
    return ok && (msg->reactions == NULL || out->reactions != NULL);
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

message_update_verdict_t message_update_decide(const chat_event_t *ev, const message_doc_t *msg,
                                               int64_t now, message_update_rec_t *out,
                                               const char **reason)
{
    memset(out, 0, sizeof *out);
    *reason = NULL;
    const char *op = message_update_op(ev->type);
    if (op == NULL)
        return refuse(MESSAGE_UPDATE_FORBIDDEN, reason, "not an update");
    /* The tenant (the server API, as "system") may change any message of the room. */
    bool author = strcmp(msg->from, ev->user) == 0 || strcmp(ev->user, CHAT_SYSTEM_USER) == 0;
    if (ev->type != CHAT_EV_REACT && !author)
        return refuse(MESSAGE_UPDATE_FORBIDDEN, reason,
                      ev->type == CHAT_EV_EDIT ? "only its author edits a message"
                                               : "only its author deletes a message");
    if (msg->deleted) {
        if (ev->type == CHAT_EV_DELETE)
            return MESSAGE_UPDATE_NOOP;
        return refuse(MESSAGE_UPDATE_NOT_FOUND, reason, "the message was deleted");
    }
    message_update_verdict_t v = MESSAGE_UPDATE_CHANGE;
    if (ev->type == CHAT_EV_DELETE) {
        out->deleted = true;
    } else if (!state_copy(out, msg)) {
        v = MESSAGE_UPDATE_NOMEM;
    } else if (ev->type == CHAT_EV_EDIT) {
        free(out->text);
        out->text = strdup(ev->text);
        out->edited = now;
        v = out->text != NULL ? MESSAGE_UPDATE_CHANGE : MESSAGE_UPDATE_NOMEM;
    } else {
        v = react(ev, out, reason);
    }
    bool ok = v == MESSAGE_UPDATE_CHANGE;
    if (ok) {
        out->op = strdup(op);
        out->id = strdup(msg->id);
        ok = out->op != NULL && out->id != NULL;
        if (!ok)
            v = MESSAGE_UPDATE_NOMEM;
    }
    if (!ok) {
        message_update_rec_clear(out);
        return v;
    }
    out->seq = msg->seq;
    out->ts = now;
    return v;
}
