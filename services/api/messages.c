/* The api's messages of a room: POST sends as a user or as "system" and answers with the
 * stored message's seq and id (the message service's ack, read from the reply channel), GET
 * pages the history in its current state from MongoDB, PATCH and DELETE edit and delete as
 * the tenant ("system") and answer with the change's useq. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/contract.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/reactions.h"
#include "common/store.h"
#include "services/api/api.h"
#include "services/api/http.h"
#include "services/api/rooms.h"

#define REASON_MAX_CHARS 256 /* ?reason= of a delete */

/* The HTTP status of an error frame's code (client protocol code words). */
static int reply_status(const char *code)
{
    static const struct {
        const char *code;
        int status;
    } map[] = {
        {"bad_request", 400}, {"unauthorized", 401}, {"forbidden", 403}, {"not_found", 404},
        {"too_large", 413},   {"rate_limited", 429}, {"internal", 500},
    };
    for (size_t i = 0; code != NULL && i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(map[i].code, code) == 0)
            return map[i].status;
    }
    return 502;
}

/* Checks params[0] as a room the tenant may write to or read: any valid name but a deleted
 * room. False when answered (400, 404, 5xx). */
static bool room_usable(const api_req_t *req, api_resp_t *resp)
{
    const char *room = req->params[0];
    if (!chat_name_room_valid(room) || (chat_room_is_dm(room) && !chat_room_dm_valid(room))) {
        api_error(req, resp, 400, "invalid room name");
        return false;
    }
    if (chat_room_is_dm(room))
        return true;
    api_room_t r;
    chat_err_t err = api_room_read(req->ctx, req->tenant, room, &r);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "reading the room");
        return false;
    }
    if (r.kind == API_ROOM_DELETED) {
        api_error(req, resp, 404, "room not found");
        return false;
    }
    return true;
}

/* Produces ev (into the request's tenant and room, with the request's origin) and waits for
 * its answer: *frame is an ack, or the request was answered (error frame mapped to its status,
 * 504 on timeout, 503 when Kafka or Redis fail). */
static bool produce_and_wait(const api_req_t *req, api_resp_t *resp, chat_event_t *ev,
                             cJSON **frame)
{
    *frame = NULL;
    ev->tenant = req->tenant;
    ev->room = req->params[0];
    ev->origin_conn = req->origin_conn;
    chat_err_t err = api_event_produce(req->ctx, ev);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "producing to chat.inbound");
        return false;
    }
    err = api_reply_wait(req->ctx, req->origin_conn, req->ctx->reply_timeout_ms, frame);
    if (err == CHAT_ERR_TIMEOUT) {
        api_error(req, resp, 504,
                  "no answer from the message service in time (the request may "
                  "still be applied; repeat it with the same cid or "
                  "Idempotency-Key)");
        return false;
    }
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "waiting for the answer");
        return false;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(*frame, "type");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "ack") == 0)
        return true;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(*frame, "code");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(*frame, "message");
    const char *code_s = cJSON_IsString(code) ? code->valuestring : NULL;
    api_error(req, resp, reply_status(code_s), "%s",
              cJSON_IsString(message) ? message->valuestring
                                      : (code_s != NULL ? code_s : "unexpected answer"));
    cJSON_Delete(*frame);
    *frame = NULL;
    return false;
}

/* Copies the members named in keys (NULL-terminated) from frame into a new object. */
static cJSON *pick(const cJSON *frame, const char *const *keys)
{
    cJSON *out = cJSON_CreateObject();
    for (; *keys != NULL; keys++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(frame, *keys);
        if (it != NULL)
            cJSON_AddItemToObject(out, *keys, cJSON_Duplicate(it, true));
    }
    return out;
}

/* True if text is a message text: valid UTF-8 of 1..max characters. Answers 400/413. */
static bool text_check(const api_req_t *req, api_resp_t *resp, const char *text)
{
    long chars = chat_utf8_chars(text, strlen(text));
    if (chars < 0) {
        api_error(req, resp, 400, "text must be valid UTF-8");
        return false;
    }
    if (chars == 0) {
        api_error(req, resp, 400, "text must not be empty");
        return false;
    }
    if (chars > req->ctx->max_text_chars) {
        api_error(req, resp, 413, "text longer than %ld characters", req->ctx->max_text_chars);
        return false;
    }
    return true;
}

static void messages_send(const api_req_t *req, api_resp_t *resp)
{
    static const char *const fields[] = {"from", "text", "cid", NULL};
    static const char *const answer[] = {"room", "seq", "id", "ts", "cid", NULL};
    const char *from, *text, *cid;
    if (!api_body_fields(req, resp, fields) || !api_body_string(req, resp, "from", false, &from) ||
        !api_body_string(req, resp, "text", true, &text) ||
        !api_body_string(req, resp, "cid", true, &cid))
        return;
    if (from != NULL && (!chat_name_user_valid(from) || strcmp(from, CHAT_SYSTEM_USER) == 0)) {
        api_error(req, resp, 400,
                  "from must be a user id (1-64 characters); leave it out to send as the system");
        return;
    }
    if (!chat_name_cid_valid(cid)) {
        api_error(req, resp, 400, "cid must be 1-64 printable ASCII characters");
        return;
    }
    if (!text_check(req, resp, text) || !room_usable(req, resp))
        return;
    if (from != NULL && chat_room_is_dm(req->params[0]) &&
        !chat_room_dm_has(req->params[0], from)) {
        api_error(req, resp, 403, "only the two members of a dm room send in it");
        return;
    }
    const char *user = from != NULL ? from : CHAT_SYSTEM_USER;
    chat_event_t ev = {.type = CHAT_EV_SEND, .user = user, .cid = cid, .text = text};
    cJSON *frame;
    if (!produce_and_wait(req, resp, &ev, &frame))
        return;
    cJSON *body = pick(frame, answer);
    cJSON_AddStringToObject(body, "from", user);
    cJSON_Delete(frame);
    api_json(resp, 201, body);
}

/* The answer object of a stored message in its current state. */
static cJSON *message_json(const bson_t *doc)
{
    bson_iter_t it;
    char id[CHAT_MESSAGE_ID_LEN + 1] = "";
    if (bson_iter_init_find(&it, doc, "_id")) {
        if (BSON_ITER_HOLDS_OID(&it))
            bson_oid_to_string(bson_iter_oid(&it), id);
        else if (BSON_ITER_HOLDS_UTF8(&it))
            snprintf(id, sizeof id, "%s", bson_iter_utf8(&it, NULL));
    }
    const char *from = chat_bson_str(doc, "from");
    int64_t seq = chat_bson_number_or(doc, "seq", 0);
    if (id[0] == '\0' || from == NULL || seq <= 0)
        return NULL;
    bool deleted = bson_iter_init_find(&it, doc, "deleted") && BSON_ITER_HOLDS_BOOL(&it) &&
                   bson_iter_bool(&it);
    bool removed = bson_iter_init_find(&it, doc, "removed") && BSON_ITER_HOLDS_BOOL(&it) &&
                   bson_iter_bool(&it);
    cJSON *m = cJSON_CreateObject();
    chat_json_add_int(m, "seq", seq);
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "from", from);
    const char *optional[] = {"name", "cid", "notice", "target", NULL};
    for (const char **k = optional; *k != NULL; k++) {
        const char *v = chat_bson_str(doc, *k);
        if (v != NULL)
            cJSON_AddStringToObject(m, *k, v);
    }
    const char *text = chat_bson_str(doc, "text");
    if (!deleted && !removed && text != NULL)
        cJSON_AddStringToObject(m, "text", text);
    chat_json_add_int(m, "ts", chat_bson_number_or(doc, "ts", 0));
    int64_t edited = chat_bson_number_or(doc, "edited", 0);
    if (edited > 0)
        chat_json_add_int(m, "edited", edited);
    if (deleted)
        cJSON_AddBoolToObject(m, "deleted", true);
    if (removed) {
        cJSON_AddBoolToObject(m, "removed", true);
        const char *reason = chat_bson_str(doc, "reason");
        if (reason != NULL)
            cJSON_AddStringToObject(m, "reason", reason);
    }
    if (bson_iter_init_find(&it, doc, "reactions")) {
        cJSON *r = chat_reactions_from_bson(&it);
        if (r != NULL && r->child != NULL)
            cJSON_AddItemToObject(m, "reactions", r);
        else
            cJSON_Delete(r);
    }
    return m;
}

/* Parses ?before: absent is 0 (the newest), else a positive integer. */
static bool before_parse(const char *text, int64_t *before)
{
    *before = 0;
    if (text == NULL)
        return true;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < 1 || text[0] == '+' || text[0] == ' ')
        return false;
    *before = v;
    return true;
}

/* A page of messages_history being filled, newest first: up to limit messages; more once one
 * is left over. */
typedef struct history_page {
    cJSON *newest_first;
    int limit, count;
    bool more;
} history_page_t;

/* Adds a message document to the page (one that does not make a message is skipped); returns
 * false, to stop, once the page is full. */
static bool history_page_add(const bson_t *doc, void *ud)
{
    history_page_t *p = ud;
    if (p->count == p->limit) {
        p->more = true;
        return false;
    }
    cJSON *m = message_json(doc);
    if (m == NULL)
        return true;
    cJSON_AddItemToArray(p->newest_first, m);
    p->count++;
    return true;
}

static void messages_history(const api_req_t *req, api_resp_t *resp)
{
    int limit;
    int64_t before;
    if (!api_limit_parse(api_req_query(req, "limit"), &limit)) {
        api_error(req, resp, 400, "limit must be an integer from 1 to 100");
        return;
    }
    if (!before_parse(api_req_query(req, "before"), &before)) {
        api_error(req, resp, 400, "before must be a positive integer (a seq)");
        return;
    }
    if (!room_usable(req, resp))
        return;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant), "room", BCON_UTF8(req->params[0]));
    if (before > 0) {
        bson_t range;
        BSON_APPEND_DOCUMENT_BEGIN(filter, "seq", &range);
        BSON_APPEND_INT64(&range, "$lt", before);
        bson_append_document_end(filter, &range);
    }
    bson_t *opts =
        BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64((int64_t)limit + 1));
    history_page_t page = {.newest_first = cJSON_CreateArray(), .limit = limit};
    bson_error_t error;
    bool failed = !api_find_each(req->ctx, API_MESSAGES_COLLECTION, filter, opts, history_page_add,
                                 &page, &error);
    cJSON *newest_first = page.newest_first;
    int count = page.count;
    bool more = page.more;
    bson_destroy(opts);
    bson_destroy(filter);
    if (failed) {
        cJSON_Delete(newest_first);
        chat_log_warn("history read failed", CHAT_F_STR("tenant", req->tenant),
                      CHAT_F_STR("room", req->params[0]), CHAT_F_STR("error", error.message));
        api_error_from(req, resp, chat_store_err(&error), "reading the history");
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "room", req->params[0]);
    cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
    for (int i = count - 1; i >= 0; i--) /* ascending seq */
        cJSON_AddItemToArray(msgs, cJSON_DetachItemFromArray(newest_first, i));
    cJSON_Delete(newest_first);
    cJSON_AddBoolToObject(body, "more", more);
    api_json(resp, 200, body);
}

/* The edit or delete of message params[1] as "system" (text for an edit, reason for a
 * delete): 200 with the change's ack. */
static void message_change(const api_req_t *req, api_resp_t *resp, chat_event_type_t type,
                           const char *text, const char *reason)
{
    static const char *const answer[] = {"room", "id", "seq", "op", "useq", NULL};
    if (!chat_name_message_id_valid(req->params[1])) {
        api_error(req, resp, 404, "message not found");
        return;
    }
    if (!room_usable(req, resp))
        return;
    chat_event_t ev = {.type = type,
                       .user = CHAT_SYSTEM_USER,
                       .id = req->params[1],
                       .rid = req->origin_conn,
                       .text = text,
                       .reason = reason};
    cJSON *frame;
    if (!produce_and_wait(req, resp, &ev, &frame))
        return;
    cJSON *body = pick(frame, answer);
    cJSON_Delete(frame);
    api_json(resp, 200, body);
}

static void messages_edit(const api_req_t *req, api_resp_t *resp)
{
    static const char *const fields[] = {"text", NULL};
    const char *text;
    if (api_body_fields(req, resp, fields) && api_body_string(req, resp, "text", true, &text) &&
        text_check(req, resp, text))
        message_change(req, resp, CHAT_EV_EDIT, text, NULL);
}

static void messages_delete(const api_req_t *req, api_resp_t *resp)
{
    const char *reason = api_req_query(req, "reason");
    if (reason != NULL) {
        long chars = chat_utf8_chars_printable(reason, strlen(reason));
        if (chars < 1 || chars > REASON_MAX_CHARS) {
            api_error(req, resp, 400, "reason must be 1-%d characters without control characters",
                      REASON_MAX_CHARS);
            return;
        }
    }
    message_change(req, resp, CHAT_EV_DELETE, NULL, reason);
}

chat_err_t api_messages_register(api_ctx_t *ctx)
{
    chat_err_t err;
    if ((err = api_route(ctx, API_POST, "/rooms/{room}/messages", messages_send)) != CHAT_OK ||
        (err = api_route(ctx, API_GET, "/rooms/{room}/messages", messages_history)) != CHAT_OK ||
        (err = api_route(ctx, API_PATCH, "/rooms/{room}/messages/{id}", messages_edit)) !=
            CHAT_OK ||
        (err = api_route(ctx, API_DELETE, "/rooms/{room}/messages/{id}", messages_delete)) !=
            CHAT_OK)
        return err;
    return CHAT_OK;
}
