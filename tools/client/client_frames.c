/* Client frames in and out as text. Builders use cJSON so that any string is escaped
 * correctly; the renderer writes into a growing buffer and escapes control characters of
 * user-supplied text, keeping one frame on one line. */
#include "tools/client/client_frames.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/array.h"

/* ---- builders ---- */

/* Starts a frame object of the given type; NULL if memory ran out. */
static cJSON *frame_new(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o != NULL && cJSON_AddStringToObject(o, "type", type) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Adds key: value unless value is NULL; false if memory ran out. */
static bool add_str(cJSON *o, const char *key, const char *value)
{
    return value == NULL || cJSON_AddStringToObject(o, key, value) != NULL;
}

static bool add_int(cJSON *o, const char *key, int64_t value)
{
    return cJSON_AddNumberToObject(o, key, (double)value) != NULL;
}

/* Prints and deletes o. ok false (a failed add) gives NULL. */
static char *frame_finish(cJSON *o, bool ok)
{
    char *s = ok && o != NULL ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

char *chat_client_frame_auth(const char *token)
{
    cJSON *o = frame_new("auth");
    return frame_finish(o, o && add_str(o, "token", token));
}

char *chat_client_frame_join(const char *room, int64_t since, const char *rid)
{
    cJSON *o = frame_new("join");
    bool ok = o && add_str(o, "room", room) && (since < 0 || add_int(o, "since", since)) &&
              add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_leave(const char *room, const char *rid)
{
    cJSON *o = frame_new("leave");
    return frame_finish(o, o && add_str(o, "room", room) && add_str(o, "rid", rid));
}

char *chat_client_frame_send(const char *room, const char *cid, const char *text)
{
    cJSON *o = frame_new("send");
    bool ok = o && add_str(o, "room", room) && add_str(o, "cid", cid) && add_str(o, "text", text);
    return frame_finish(o, ok);
}

char *chat_client_frame_history(const char *room, int64_t before, int64_t limit, const char *rid)
{
    cJSON *o = frame_new("history");
    bool ok = o && add_str(o, "room", room) && (before <= 0 || add_int(o, "before", before)) &&
              (limit <= 0 || add_int(o, "limit", limit)) && add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_edit(const char *room, const char *id, const char *text, const char *rid)
{
    cJSON *o = frame_new("edit");
    bool ok = o && add_str(o, "room", room) && add_str(o, "id", id) && add_str(o, "text", text) &&
              add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_delete(const char *room, const char *id, const char *rid)
{
    cJSON *o = frame_new("delete");
    bool ok = o && add_str(o, "room", room) && add_str(o, "id", id) && add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_react(const char *room, const char *id, const char *emoji, bool on,
                              const char *rid)
{
    cJSON *o = frame_new("react");
    bool ok = o && add_str(o, "room", room) && add_str(o, "id", id) && add_str(o, "emoji", emoji) &&
              cJSON_AddBoolToObject(o, "on", on) != NULL && add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_ping(const char *rid)
{
    cJSON *o = frame_new("ping");
    return frame_finish(o, o && add_str(o, "rid", rid));
}

char *chat_client_frame_typing(const char *room, const char *rid)
{
    cJSON *o = frame_new("typing");
    return frame_finish(o, o && add_str(o, "room", room) && add_str(o, "rid", rid));
}

char *chat_client_frame_read(const char *room, int64_t seq, const char *rid)
{
    cJSON *o = frame_new("read");
    bool ok = o && add_str(o, "room", room) && add_int(o, "seq", seq) && add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_rooms(int64_t limit, const char *cursor, const char *rid)
{
    cJSON *o = frame_new("rooms");
    bool ok = o && (limit <= 0 || add_int(o, "limit", limit)) &&
              (cursor == NULL || add_str(o, "cursor", cursor)) && add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_push_subscribe(const char *endpoint, const char *p256dh, const char *auth,
                                       const char *rid)
{
    cJSON *o = frame_new("push_subscribe");
    cJSON *keys = o != NULL ? cJSON_CreateObject() : NULL;
    bool ok = keys != NULL && add_str(o, "endpoint", endpoint) && add_str(keys, "p256dh", p256dh) &&
              add_str(keys, "auth", auth);
    if (keys != NULL && !cJSON_AddItemToObject(o, "keys", keys)) {
        cJSON_Delete(keys);
        ok = false;
    }
    return frame_finish(o, ok && add_str(o, "rid", rid));
}

char *chat_client_frame_push_unsubscribe(const char *endpoint, const char *rid)
{
    cJSON *o = frame_new("push_unsubscribe");
    return frame_finish(o, o && add_str(o, "endpoint", endpoint) && add_str(o, "rid", rid));
}

char *chat_client_frame_push_prefs(const char *room, const char *mode, const char *rid)
{
    cJSON *o = frame_new("push_prefs");
    bool ok = o && add_str(o, "room", room) && add_str(o, "mode", mode) && add_str(o, "rid", rid);
    return frame_finish(o, ok);
}

char *chat_client_frame_refresh(const char *token, const char *rid)
{
    cJSON *o = frame_new("refresh");
    return frame_finish(o, o && add_str(o, "token", token) && add_str(o, "rid", rid));
}

/* ---- renderer ---- */

typedef struct line_buf {
    char *s;
    size_t len, cap;
    bool oom;
} line_buf_t;

static bool lb_reserve(line_buf_t *b, size_t more)
{
    if (b->oom)
        return false;
    if (b->cap - b->len > more)
        return true;
    char *ns = chat_array_grow(b->s, &b->cap, b->len + more + 1, 1);
    if (ns == NULL) {
        b->oom = true;
        return false;
    }
    b->s = ns;
    return true;
}

static void lb_putn(line_buf_t *b, const char *s, size_t n)
{
    if (!lb_reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void lb_printf(line_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void lb_printf(line_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !lb_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Appends user text with control characters escaped (\n, \t, \r, \xNN). */
static void lb_text(line_buf_t *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            lb_putn(b, "\\n", 2);
        else if (*p == '\r')
            lb_putn(b, "\\r", 2);
        else if (*p == '\t')
            lb_putn(b, "\\t", 2);
        else if (*p < 0x20 || *p == 0x7f)
            lb_printf(b, "\\x%02x", *p);
        else
            lb_putn(b, (const char *)p, 1);
    }
}

/* String member key of o, or def. */
static const char *str_of(const cJSON *o, const char *key, const char *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

/* Number member key of o as an integer, or -1. */
static long long num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (long long)v->valuedouble : -1;
}

/* " (key X)" for each of cid and rid present in o. */
static void render_refs(line_buf_t *b, const cJSON *o)
{
    static const char *const keys[] = {"cid", "rid"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = str_of(o, keys[i], NULL);
        if (v != NULL) {
            lb_printf(b, " (%s ", keys[i]);
            lb_text(b, v);
            lb_putn(b, ")", 1);
        }
    }
}

/* " (edited)", " (deleted)", " (removed: reason)" and the reactions of a message's state. */
static void render_state(line_buf_t *b, const cJSON *o)
{
    const cJSON *edited = cJSON_GetObjectItemCaseSensitive(o, "edited");
    if (cJSON_IsTrue(edited) || cJSON_IsNumber(edited))
        lb_putn(b, " (edited)", 9);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "deleted"))) {
        const char *reason = str_of(o, "reason", NULL);
        lb_putn(b, "(deleted", 8);
        if (reason != NULL) {
            lb_putn(b, ": ", 2);
            lb_text(b, reason);
        }
        lb_putn(b, ")", 1);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "removed"))) {
        lb_putn(b, "(removed: ", 10);
        lb_text(b, str_of(o, "reason", ""));
        lb_putn(b, ")", 1);
    }
    const cJSON *reactions = cJSON_GetObjectItemCaseSensitive(o, "reactions");
    const cJSON *r;
    cJSON_ArrayForEach(r, reactions)
    {
        lb_putn(b, " [", 2);
        lb_text(b, r->string);
        const cJSON *u;
        const char *sep = " ";
        cJSON_ArrayForEach(u, r)
        {
            lb_putn(b, sep, strlen(sep));
            lb_text(b, cJSON_IsString(u) ? u->valuestring : "?");
            sep = ",";
        }
        lb_putn(b, "]", 1);
    }
}

/* " (id X)" if o has an id: what /edit, /delete and /react take. */
static void render_id(line_buf_t *b, const cJSON *o)
{
    const char *id = str_of(o, "id", NULL);
    if (id != NULL) {
        lb_putn(b, " (id ", 5);
        lb_text(b, id);
        lb_putn(b, ")", 1);
    }
}

/* A system notice as a sentence: "* bob was added to team", "* carol was removed",
 * "* room renamed to X", "* room deleted", "* room created"; false for another notice (shown
 * as a message). */
static bool render_notice(line_buf_t *b, const cJSON *o, const char *notice)
{
    const char *target = str_of(o, "target", "?");
    if (strcmp(notice, "member_added") == 0) {
        lb_putn(b, "* ", 2);
        lb_text(b, target);
        lb_putn(b, " was added to ", 14);
        lb_text(b, str_of(o, "room", "?"));
    } else if (strcmp(notice, "member_removed") == 0) {
        lb_putn(b, "* ", 2);
        lb_text(b, target);
        lb_putn(b, " was removed", 12);
    } else if (strcmp(notice, "room_renamed") == 0) {
        lb_putn(b, "* room renamed to ", 18);
        lb_text(b, str_of(o, "text", ""));
    } else if (strcmp(notice, "room_deleted") == 0) {
        lb_putn(b, "* room deleted", 14);
    } else if (strcmp(notice, "room_created") == 0) {
        lb_putn(b, "* room created", 14);
    } else {
        return false;
    }
    return true;
}

static void render_msg(line_buf_t *b, const cJSON *o)
{
    lb_putn(b, "[", 1);
    lb_text(b, str_of(o, "room", "?"));
    lb_printf(b, " #%lld] ", num_of(o, "seq"));
    const char *notice = str_of(o, "notice", NULL);
    if (notice != NULL && render_notice(b, o, notice)) {
        render_id(b, o);
        return;
    }
    lb_text(b, str_of(o, "from", "?"));
    lb_putn(b, ": ", 2);
    lb_text(b, str_of(o, "text", ""));
    render_state(b, o);
    render_id(b, o);
}

static void render_welcome(line_buf_t *b, const cJSON *o)
{
    lb_putn(b, "welcome ", 8);
    lb_text(b, str_of(o, "user", "?"));
    lb_putn(b, " of tenant ", 11);
    lb_text(b, str_of(o, "tenant", "?"));
    lb_putn(b, " (session ", 10);
    lb_text(b, str_of(o, "session", "?"));
    lb_putn(b, ")", 1);
}

static void render_joined(line_buf_t *b, const cJSON *o)
{
    lb_putn(b, "joined ", 7);
    lb_text(b, str_of(o, "room", "?"));
    lb_printf(b, ": latest #%lld", num_of(o, "seq"));
    if (num_of(o, "useq") >= 0)
        lb_printf(b, " (useq %lld%s)", num_of(o, "useq"),
                  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "stale")) ? ", stale" : "");
    lb_printf(b, ", %lld unread, online:", num_of(o, "unread"));
    const cJSON *online = cJSON_GetObjectItemCaseSensitive(o, "online");
    const cJSON *u;
    const char *sep = " ";
    cJSON_ArrayForEach(u, online)
    {
        if (cJSON_IsString(u)) {
            lb_putn(b, sep, strlen(sep));
            lb_text(b, u->valuestring);
            sep = ", ";
        }
    }
    if (sep[0] == ' ')
        lb_putn(b, " -", 2);
}

static void render_error(line_buf_t *b, const cJSON *o)
{
    lb_putn(b, "error ", 6);
    lb_text(b, str_of(o, "code", "?"));
    lb_putn(b, ": ", 2);
    lb_text(b, str_of(o, "message", ""));
    render_refs(b, o);
}

static void render_history(line_buf_t *b, const cJSON *o)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "msgs");
    lb_putn(b, "history ", 8);
    lb_text(b, str_of(o, "room", "?"));
    lb_printf(b, ": %d messages%s", cJSON_GetArraySize(msgs),
              cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "more")) ? ", more before" : "");
    render_refs(b, o);
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        lb_putn(b, "\n", 1);
        render_msg(b, m);
    }
}

/* "rooms: N" then one line per room: name, kind, latest seq, an unread badge, the last
 * message; and the cursor of the next page. */
static void render_rooms(line_buf_t *b, const cJSON *o)
{
    const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(o, "rooms");
    lb_printf(b, "rooms: %d", cJSON_GetArraySize(rooms));
    render_refs(b, o);
    const cJSON *r;
    cJSON_ArrayForEach(r, rooms)
    {
        lb_putn(b, "\n  ", 3);
        lb_text(b, str_of(r, "room", "?"));
        lb_putn(b, " (", 2);
        lb_text(b, str_of(r, "kind", "?"));
        lb_printf(b, ") #%lld", num_of(r, "seq"));
        long long unread = num_of(r, "unread");
        if (unread > 0)
            lb_printf(b, " [%lld unread]", unread);
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(r, "last");
        if (cJSON_IsObject(last)) {
            lb_putn(b, " ", 1);
            lb_text(b, str_of(last, "from", "?"));
            lb_putn(b, ": ", 2);
            lb_text(b, str_of(last, "text", ""));
        }
    }
    const char *next = str_of(o, "next", NULL);
    if (next != NULL) {
        static const char more[] = "\n  more: /rooms ";
        lb_putn(b, more, sizeof more - 1);
        lb_text(b, next);
    }
}

/* "* user <what> room" lines of the ephemeral events. */
static void render_event(line_buf_t *b, const cJSON *o, const char *type)
{
    lb_putn(b, "* ", 2);
    lb_text(b, str_of(o, "user", "?"));
    const char *name = str_of(o, "name", NULL);
    if (name != NULL) {
        lb_putn(b, " (", 2);
        lb_text(b, name);
        lb_putn(b, ")", 1);
    }
    if (strcmp(type, "presence") == 0)
        lb_printf(b, " is %s in ",
                  cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "online")) ? "online"
                                                                              : "offline");
    else if (strcmp(type, "typing") == 0)
        lb_putn(b, " is typing in ", 14);
    else
        lb_putn(b, " read ", 6);
    lb_text(b, str_of(o, "room", "?"));
    if (strcmp(type, "read") == 0)
        lb_printf(b, " up to #%lld", num_of(o, "seq"));
}

/* "[room #seq] id op by user: text (edited) [emoji users] (useq N)": the message's state
 * after the change. */
static void render_update(line_buf_t *b, const cJSON *o)
{
    lb_putn(b, "[", 1);
    lb_text(b, str_of(o, "room", "?"));
    if (num_of(o, "seq") >= 0)
        lb_printf(b, " #%lld", num_of(o, "seq"));
    lb_putn(b, "] ", 2);
    lb_text(b, str_of(o, "id", "?"));
    lb_putn(b, " ", 1);
    lb_text(b, str_of(o, "op", "?"));
    if (str_of(o, "user", NULL) != NULL) {
        lb_putn(b, " by ", 4);
        lb_text(b, str_of(o, "user", NULL));
    }
    lb_putn(b, ": ", 2);
    lb_text(b, str_of(o, "text", ""));
    render_state(b, o);
    if (num_of(o, "useq") >= 0)
        lb_printf(b, " (useq %lld)", num_of(o, "useq"));
}

/* "ack cid -> #seq (id X)" for a send, "ack rid: op #seq (useq N)" for an update. */
static void render_ack(line_buf_t *b, const cJSON *o)
{
    lb_putn(b, "ack ", 4);
    const char *op = str_of(o, "op", NULL);
    if (op == NULL) {
        lb_text(b, str_of(o, "cid", "?"));
        lb_printf(b, " -> #%lld", num_of(o, "seq"));
        render_id(b, o);
        return;
    }
    lb_text(b, str_of(o, "rid", "-"));
    lb_putn(b, ": ", 2);
    lb_text(b, op);
    lb_printf(b, " #%lld", num_of(o, "seq"));
    if (num_of(o, "useq") >= 0)
        lb_printf(b, " (useq %lld)", num_of(o, "useq"));
}

/* Renders o of type into b; false for a type this renderer does not know. */
static bool render_known(line_buf_t *b, const cJSON *o, const char *type)
{
    if (strcmp(type, "msg") == 0) {
        render_msg(b, o);
    } else if (strcmp(type, "ack") == 0) {
        render_ack(b, o);
    } else if (strcmp(type, "error") == 0) {
        render_error(b, o);
    } else if (strcmp(type, "welcome") == 0) {
        render_welcome(b, o);
    } else if (strcmp(type, "joined") == 0) {
        render_joined(b, o);
    } else if (strcmp(type, "left") == 0) {
        lb_putn(b, "left ", 5);
        lb_text(b, str_of(o, "room", "?"));
        const char *reason = str_of(o, "reason", NULL);
        if (reason != NULL) {
            lb_putn(b, " (", 2);
            lb_text(b, strcmp(reason, "removed") == 0   ? "you were removed"
                       : strcmp(reason, "deleted") == 0 ? "the room was deleted"
                                                        : reason);
            lb_putn(b, ")", 1);
        }
    } else if (strcmp(type, "history") == 0) {
        render_history(b, o);
    } else if (strcmp(type, "rooms") == 0) {
        render_rooms(b, o);
    } else if (strcmp(type, "pong") == 0 || strcmp(type, "ok") == 0) {
        lb_text(b, type);
        render_refs(b, o);
    } else if (strcmp(type, "presence") == 0 || strcmp(type, "typing") == 0 ||
               strcmp(type, "read") == 0) {
        render_event(b, o, type);
    } else if (strcmp(type, "update") == 0) {
        render_update(b, o);
    } else {
        return false;
    }
    return true;
}

char *chat_client_render(const char *json, size_t len)
{
    line_buf_t b = {0};
    cJSON *o = cJSON_ParseWithLength(json, len);
    const char *type = str_of(o, "type", NULL);
    if (!cJSON_IsObject(o) || type == NULL || !render_known(&b, o, type)) {
        free(b.s);
        b = (line_buf_t){0};
        char *raw = strndup(json, len);
        if (raw != NULL)
            lb_text(&b, raw);
        free(raw);
        if (b.s == NULL && !b.oom)
            lb_putn(&b, "", 0);
    }
    cJSON_Delete(o);
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
