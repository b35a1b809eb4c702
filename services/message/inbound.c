/* Classification of chat.inbound records. The codec's schema check comes first; a send it
 * refuses is looked at once more, leniently, only to find where to send the reject. */
#include "services/message/inbound.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/contract.h"
#include "common/names.h"

static const char *const reject_code_names[MESSAGE_REJECT__COUNT] = {"bad_request", "too_large",
                                                                     "forbidden", "not_found"};

const char *message_reject_code_name(message_reject_code_t code)
{
    return code < MESSAGE_REJECT__COUNT ? reject_code_names[code] : "internal";
}

__attribute__((format(printf, 2, 3))) static void set_reason(message_inbound_t *in, const char *fmt,
                                                             ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->reason, sizeof in->reason, fmt, ap);
    va_end(ap);
}

static void set_reject(message_inbound_t *in, message_reject_code_t code, const char *fmt, long n)
{
    in->kind = MESSAGE_INBOUND_REJECT;
    in->code = code;
    set_reason(in, fmt, n);
}

/* True if ev acts as CHAT_SYSTEM_USER, which only the api service may do. */
static bool by_system(const chat_event_t *ev)
{
    return strcmp(ev->user, CHAT_SYSTEM_USER) == 0;
}

/* The service's rules for a send the codec accepted: "system" speaks only through the api
 * service and alone sends notices (docs/server-api.md), the configured text limit (the codec
 * only knows the protocol's CHAT_TEXT_MAX_CHARS, the most the configuration allows) and
 * that only its two members write to a dm room ("system" may write there too). The gateway
 * checks these too; checking again keeps the store clean whoever produced. */
static void check_send(message_inbound_t *in, long max_text_chars)
{
    const chat_event_t *ev = &in->ev;
    long chars = chat_utf8_chars(ev->text, strlen(ev->text));
    bool system = by_system(ev);
    if (system && !chat_origin_is_api(ev->origin_gw))
        set_reject(in, MESSAGE_REJECT_FORBIDDEN, "reserved user id", 0);
    else if ((ev->notice != NULL || ev->target != NULL) && !system)
        set_reject(in, MESSAGE_REJECT_BAD_REQUEST, "only the system sends notices", 0);
    else if (chars < 1 && ev->notice == NULL)
        set_reject(in, MESSAGE_REJECT_BAD_REQUEST, "text must be 1 or more characters of UTF-8", 0);
    else if (chars > max_text_chars)
        set_reject(in, MESSAGE_REJECT_TOO_LARGE, "text is longer than %ld characters",
                   max_text_chars);
    else if (chat_room_is_dm(ev->room) && !chat_room_dm_valid(ev->room))
        set_reject(in, MESSAGE_REJECT_FORBIDDEN, "only its two members write to a direct room", 0);
    else if (chat_room_is_dm(ev->room) && !system && !chat_room_dm_has(ev->room, ev->user))
        set_reject(in, MESSAGE_REJECT_FORBIDDEN, "only its two members write to a direct room", 0);
    else
        in->kind = MESSAGE_INBOUND_SEND;
}

/* The rules of an edit, delete or react the codec accepted, before the stored message is
 * looked at: "system" acts only through the api service, an edit's text within the
 * configured limit, and, as for sends, only its two members (or "system") act in a dm room. */
static void check_update(message_inbound_t *in, long max_text_chars)
{
    const chat_event_t *ev = &in->ev;
    bool system = by_system(ev);
    if (system && !chat_origin_is_api(ev->origin_gw))
        set_reject(in, MESSAGE_REJECT_FORBIDDEN, "reserved user id", 0);
    else if (ev->type == CHAT_EV_EDIT &&
             chat_utf8_chars(ev->text, strlen(ev->text)) > max_text_chars)
        set_reject(in, MESSAGE_REJECT_TOO_LARGE, "text is longer than %ld characters",
                   max_text_chars);
    else if (chat_room_is_dm(ev->room) &&
             !(chat_room_dm_valid(ev->room) && (system || chat_room_dm_has(ev->room, ev->user))))
        set_reject(in, MESSAGE_REJECT_FORBIDDEN, "direct rooms are open to their two members only",
                   0);
    else
        in->kind = MESSAGE_INBOUND_UPDATE;
}

/* A read mark is answered (reject) only when it came from a connection; one without an origin
 * that breaks a rule is invalid. Only its two members read a dm room. */
static void check_read(message_inbound_t *in)
{
    const chat_event_t *ev = &in->ev;
    if (!chat_room_is_dm(ev->room) ||
        (chat_room_dm_valid(ev->room) && chat_room_dm_has(ev->room, ev->user)))
        in->kind = MESSAGE_INBOUND_READ;
    else if (ev->origin_gw != NULL)
        set_reject(in, MESSAGE_REJECT_FORBIDDEN, "only its two members read a direct room", 0);
    else
        set_reason(in, "read of a direct room by a user who is not one of its members");
}

static const char *string_member(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* For a record the codec refused: if it is recognisably a send (with a usable cid) or an
 * edit, delete or react (with a usable rid, or none) with a usable tenant, room and origin,
 * turns it into a reject (too_large when only the text is too long) so the client gets an
 * answer instead of resending forever. Otherwise leaves it invalid. */
static void salvage_send(message_inbound_t *in, const void *value, size_t len, long max_text_chars)
{
    cJSON *root = cJSON_ParseWithLength(value, len);
    const char *type = root != NULL ? string_member(root, "type") : NULL;
    const cJSON *origin = root != NULL ? cJSON_GetObjectItemCaseSensitive(root, "origin") : NULL;
    chat_event_t ev = {
        .type = CHAT_EV_REJECT,
        .tenant = root != NULL ? string_member(root, "tenant") : NULL,
        .room = root != NULL ? string_member(root, "room") : NULL,
        .cid = root != NULL ? string_member(root, "cid") : NULL,
        .rid = root != NULL ? string_member(root, "rid") : NULL,
        .origin_gw = cJSON_IsObject(origin) ? string_member(origin, "gw") : NULL,
        .origin_conn = cJSON_IsObject(origin) ? string_member(origin, "conn") : NULL,
    };
    bool is_send = type != NULL && strcmp(type, "send") == 0;
    bool is_update = type != NULL && (strcmp(type, "edit") == 0 || strcmp(type, "delete") == 0 ||
                                      strcmp(type, "react") == 0);
    if (is_send)
        ev.rid = NULL;
    else
        ev.cid = NULL;
    bool echo_ok =
        is_send ? chat_name_cid_valid(ev.cid) : ev.rid == NULL || chat_name_cid_valid(ev.rid);
    if (!(is_send || is_update) || !echo_ok || !chat_name_tenant_valid(ev.tenant) ||
        !chat_name_room_valid(ev.room) || !chat_name_endpoint_valid(ev.origin_gw) ||
        !chat_name_endpoint_valid(ev.origin_conn)) {
        cJSON_Delete(root);
        return;
    }
    const char *text = string_member(root, "text");
    long chars = text != NULL ? chat_utf8_chars(text, strlen(text)) : -1;
    char why[sizeof in->reason];
    snprintf(why, sizeof why, "%s", in->reason);
    in->ev = ev;
    in->salvaged = root;
    if (chars > max_text_chars) {
        set_reject(in, MESSAGE_REJECT_TOO_LARGE, "text is longer than %ld characters",
                   max_text_chars);
        return;
    }
    in->kind = MESSAGE_INBOUND_REJECT;
    in->code = MESSAGE_REJECT_BAD_REQUEST;
    set_reason(in, "invalid %s: %s", type, why);
}

void message_inbound_parse(const void *value, size_t len, long max_text_chars,
                           message_inbound_t *in)
{
    memset(in, 0, sizeof *in);
    in->kind = MESSAGE_INBOUND_INVALID;
    if (value == NULL || len == 0) {
        set_reason(in, "empty record");
        return;
    }
    if (chat_event_decode(value, len, &in->ev, in->reason, sizeof in->reason) != CHAT_OK) {
        salvage_send(in, value, len, max_text_chars);
        return;
    }
    switch (in->ev.type) {
    case CHAT_EV_SEND:
        check_send(in, max_text_chars);
        return;
    case CHAT_EV_READ:
        check_read(in);
        return;
    case CHAT_EV_EDIT:
    case CHAT_EV_DELETE:
    case CHAT_EV_REACT:
        check_update(in, max_text_chars);
        return;
    default:
        set_reason(in, "event type %s is not expected on chat.inbound",
                   chat_event_type_name(in->ev.type));
        return;
    }
}

void message_inbound_clear(message_inbound_t *in)
{
    if (in->salvaged != NULL) {
        cJSON_Delete(in->salvaged);
        in->ev = (chat_event_t){0};
    }
    chat_event_clear(&in->ev);
    memset(in, 0, sizeof *in);
}
