/* Client frame validation and server frame encoding (see frames.h). Each client frame
 * type has a table row listing its allowed and required fields; each field has one
 * validator, so the rules of proto/frames/client.*.schema.json live in one place. */
#include "services/gateway/frames.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/frames.h"
#include "common/jwt.h"
#include "common/names.h"
#include "common/notify_store.h"
#include "common/room_list_page.h"

#define SEQ_MAX ((double)CHAT_JSON_INT_MAX)

static const char *const ctype_names[GW_C__COUNT] = {
    [GW_C_INVALID] = "invalid",
    [GW_C_AUTH] = "auth",
    [GW_C_JOIN] = "join",
    [GW_C_LEAVE] = "leave",
    [GW_C_SEND] = "send",
    [GW_C_HISTORY] = "history",
    [GW_C_PING] = "ping",
    [GW_C_TYPING] = "typing",
    [GW_C_READ] = "read",
    [GW_C_EDIT] = "edit",
    [GW_C_DELETE] = "delete",
    [GW_C_REACT] = "react",
    [GW_C_ROOMS] = "rooms",
    [GW_C_PUSH_SUBSCRIBE] = "push_subscribe",
    [GW_C_PUSH_UNSUBSCRIBE] = "push_unsubscribe",
    [GW_C_PUSH_PREFS] = "push_prefs",
    [GW_C_REFRESH] = "refresh",
};

static const char *const code_names[GW_E__COUNT] = {
    [GW_E_BAD_REQUEST] = "bad_request", [GW_E_UNAUTHORIZED] = "unauthorized",
    [GW_E_FORBIDDEN] = "forbidden",     [GW_E_NOT_FOUND] = "not_found",
    [GW_E_TOO_LARGE] = "too_large",     [GW_E_RATE_LIMITED] = "rate_limited",
    [GW_E_INTERNAL] = "internal",
};

const char *gw_ctype_name(gw_ctype_t type)
{
    return type > GW_C_INVALID && type < GW_C__COUNT ? ctype_names[type] : "invalid";
}

const char *gw_code_name(gw_code_t code)
{
    return code < GW_E__COUNT ? code_names[code] : "internal";
}

/* ---- field table ---- */

typedef enum field_id {
    F_TYPE = 0,
    F_TOKEN,
    F_ROOM,
    F_CID,
    F_TEXT,
    F_RID,
    F_ID,
    F_EMOJI,
    F_SINCE,
    F_USINCE,
    F_BEFORE,
    F_LIMIT,
    F_SEQ,
    F_ON,
    F_CURSOR,
    F_ENDPOINT,
    F_KEYS,
    F_MODE,
    F__COUNT
} field_id_t;

#define B(f) (1u << (f))

static const char *const field_names[F__COUNT] = {
    [F_TYPE] = "type",   [F_TOKEN] = "token",   [F_ROOM] = "room",     [F_CID] = "cid",
    [F_TEXT] = "text",   [F_RID] = "rid",       [F_ID] = "id",         [F_EMOJI] = "emoji",
    [F_SINCE] = "since", [F_USINCE] = "usince", [F_BEFORE] = "before", [F_LIMIT] = "limit",
    [F_SEQ] = "seq",     [F_ON] = "on",         [F_CURSOR] = "cursor", [F_ENDPOINT] = "endpoint",
    [F_KEYS] = "keys",   [F_MODE] = "mode",
};

typedef struct frame_rule {
    unsigned allowed;  /* fields the type may carry (type and rid always may) */
    unsigned required; /* fields it must carry */
} frame_rule_t;

static const frame_rule_t frame_rules[GW_C__COUNT] = {
    [GW_C_AUTH] = {B(F_TOKEN), B(F_TOKEN)},
    [GW_C_JOIN] = {B(F_ROOM) | B(F_SINCE) | B(F_USINCE), B(F_ROOM)},
    [GW_C_LEAVE] = {B(F_ROOM), B(F_ROOM)},
    [GW_C_SEND] = {B(F_ROOM) | B(F_CID) | B(F_TEXT), B(F_ROOM) | B(F_CID) | B(F_TEXT)},
    [GW_C_HISTORY] = {B(F_ROOM) | B(F_BEFORE) | B(F_LIMIT), B(F_ROOM) | B(F_RID)},
    [GW_C_PING] = {0, 0},
    [GW_C_TYPING] = {B(F_ROOM), B(F_ROOM)},
    [GW_C_READ] = {B(F_ROOM) | B(F_SEQ), B(F_ROOM) | B(F_SEQ)},
    [GW_C_EDIT] = {B(F_ROOM) | B(F_ID) | B(F_TEXT), B(F_ROOM) | B(F_ID) | B(F_TEXT)},
    [GW_C_DELETE] = {B(F_ROOM) | B(F_ID), B(F_ROOM) | B(F_ID)},
    [GW_C_REACT] = {B(F_ROOM) | B(F_ID) | B(F_EMOJI) | B(F_ON),
                    B(F_ROOM) | B(F_ID) | B(F_EMOJI) | B(F_ON)},
    [GW_C_ROOMS] = {B(F_LIMIT) | B(F_CURSOR), B(F_RID)},
    [GW_C_PUSH_SUBSCRIBE] = {B(F_ENDPOINT) | B(F_KEYS), B(F_RID) | B(F_ENDPOINT) | B(F_KEYS)},
    [GW_C_PUSH_UNSUBSCRIBE] = {B(F_ENDPOINT), B(F_RID) | B(F_ENDPOINT)},
    [GW_C_PUSH_PREFS] = {B(F_ROOM) | B(F_MODE), B(F_RID) | B(F_MODE)},
    [GW_C_REFRESH] = {B(F_TOKEN), B(F_RID) | B(F_TOKEN)},
};

static bool fail(gw_cframe_error_t *err, gw_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills *err and returns false, so validators can `return fail(...)`. */
static bool fail(gw_cframe_error_t *err, gw_code_t code, const char *fmt, ...)
{
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return false;
}

static field_id_t field_lookup(const char *name)
{
    for (int f = 0; f < F__COUNT; f++) {
        if (strcmp(field_names[f], name) == 0)
            return (field_id_t)f;
    }
    return F__COUNT;
}

/* Reads an integral JSON number within [lo, hi]. */
static bool int_field(const cJSON *v, const char *name, double lo, double hi, int64_t *out,
                      gw_cframe_error_t *err)
{
    if (!cJSON_IsNumber(v))
        return fail(err, GW_E_BAD_REQUEST, "%s must be an integer", name);
    double d = v->valuedouble;
    if (!isfinite(d) || floor(d) != d || d < lo || d > hi)
        return fail(err, GW_E_BAD_REQUEST, "%s must be an integer from %.0f to %.0f", name, lo, hi);
    *out = (int64_t)d;
    return true;
}

static bool string_field(const cJSON *v, const char *name, const char **out, gw_cframe_error_t *err)
{
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return fail(err, GW_E_BAD_REQUEST, "%s must be a string", name);
    *out = v->valuestring;
    return true;
}

static bool text_field(const cJSON *v, size_t max_chars, gw_cframe_t *f, gw_cframe_error_t *err)
{
    if (!string_field(v, "text", &f->text, err))
        return false;
    long chars = chat_utf8_chars(f->text, strlen(f->text));
    if (chars <= 0)
        return fail(err, GW_E_BAD_REQUEST, "text must not be empty");
    if ((size_t)chars > max_chars)
        return fail(err, GW_E_TOO_LARGE, "text over %zu characters", max_chars);
    return true;
}

/* Stores the string in *out only if it is valid, so that an error never echoes a
 * malformed rid or cid. */
static bool named_field(const cJSON *v, const char *name, bool (*valid)(const char *),
                        const char *rule, const char **out, gw_cframe_error_t *err)
{
    const char *s = NULL;
    if (!string_field(v, name, &s, err))
        return false;
    if (!valid(s))
        return fail(err, GW_E_BAD_REQUEST, "%s must be %s", name, rule);
    *out = s;
    return true;
}

/* "http(s)://" then printable ASCII without spaces (URLs as browsers give them, encoded), at
 * most CHAT_PUSH_ENDPOINT_MAX characters: the schema's rule; the push module checks the rest
 * with the egress policy. */
static bool endpoint_valid(const char *s)
{
    size_t n = strnlen(s, CHAT_PUSH_ENDPOINT_MAX + 1);
    size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    if (scheme == 0 || n <= scheme || n > CHAT_PUSH_ENDPOINT_MAX)
        return false;
    for (size_t i = scheme; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    }
    return true;
}

/* base64url text, padded or not, of at most 128 characters (a P-256 point is 87). */
static bool b64url_valid(const char *s)
{
    size_t n = strlen(s), pad = 0;
    while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
        pad++;
    if (n == pad || n > 128)
        return false;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* keys {p256dh, auth}: exactly those two, each base64url text. */
static bool keys_field(const cJSON *v, gw_cframe_t *f, gw_cframe_error_t *err)
{
    if (!cJSON_IsObject(v))
        return fail(err, GW_E_BAD_REQUEST, "keys must be an object {p256dh, auth}");
    const cJSON *k;
    cJSON_ArrayForEach(k, v)
    {
        const char **out = strcmp(k->string, "p256dh") == 0 ? &f->p256dh
                           : strcmp(k->string, "auth") == 0 ? &f->auth
                                                            : NULL;
        if (out == NULL)
            return fail(err, GW_E_BAD_REQUEST, "unknown field %.40s in keys", k->string);
        if (*out != NULL)
            return fail(err, GW_E_BAD_REQUEST, "duplicate field keys.%s", k->string);
        char name[16];
        snprintf(name, sizeof name, "keys.%s", k->string);
        if (!cJSON_IsString(k) || k->valuestring == NULL || !b64url_valid(k->valuestring))
            return fail(err, GW_E_BAD_REQUEST, "%s must be base64url text", name);
        *out = k->valuestring;
    }
    if (f->p256dh == NULL || f->auth == NULL)
        return fail(err, GW_E_BAD_REQUEST, "keys needs %s", f->p256dh == NULL ? "p256dh" : "auth");
    return true;
}

static bool mode_valid(const char *s)
{
    return strcmp(s, "default") == 0 || chat_push_mode_parse(s) != CHAT_PUSH_MODE_DEFAULT;
}

static bool token_valid(const char *s)
{
    size_t n = strnlen(s, CHAT_JWT_MAX_LEN + 1);
    return n > 0 && n <= CHAT_JWT_MAX_LEN;
}

/* Validates one field's value and stores it in f. */
static bool field_read(field_id_t id, const cJSON *v, size_t max_text, gw_cframe_t *f,
                       gw_cframe_error_t *err)
{
    switch (id) {
    case F_TOKEN:
        return named_field(v, "token", token_valid, "a non-empty JWT", &f->token, err);
    case F_ROOM:
        return named_field(v, "room", chat_name_room_valid, "1-128 of [A-Za-z0-9._:-]", &f->room,
                           err);
    case F_CID:
        return named_field(v, "cid", chat_name_cid_valid, "1-64 printable ASCII characters",
                           &f->cid, err);
    case F_RID:
        return named_field(v, "rid", chat_name_cid_valid, "1-64 printable ASCII characters",
                           &f->rid, err);
    case F_TEXT:
        return text_field(v, max_text, f, err);
    case F_ID:
        return named_field(v, "id", chat_name_message_id_valid, "24 lowercase hex digits", &f->id,
                           err);
    case F_EMOJI:
        return named_field(v, "emoji", chat_name_emoji_valid, "1-32 characters", &f->emoji, err);
    case F_SINCE:
        return (f->has_since = int_field(v, "since", 0, SEQ_MAX, &f->since, err));
    case F_USINCE:
        return (f->has_usince = int_field(v, "usince", 0, SEQ_MAX, &f->usince, err));
    case F_BEFORE:
        return (f->has_before = int_field(v, "before", 1, SEQ_MAX, &f->before, err));
    case F_LIMIT:
        return (f->has_limit = int_field(v, "limit", 1, GW_HISTORY_LIMIT_MAX, &f->limit, err));
    case F_SEQ:
        return int_field(v, "seq", 1, SEQ_MAX, &f->seq, err);
    case F_CURSOR:
        return named_field(v, "cursor", chat_room_page_cursor_valid, "a cursor from a rooms answer",
                           &f->cursor, err);
    case F_ENDPOINT:
        return named_field(v, "endpoint", endpoint_valid,
                           "an http(s) URL of at most 2048 characters", &f->endpoint, err);
    case F_KEYS:
        return keys_field(v, f, err);
    case F_MODE:
        return named_field(v, "mode", mode_valid, "all, mentions, none or default", &f->mode, err);
    case F_ON:
        if (!cJSON_IsBool(v))
            return fail(err, GW_E_BAD_REQUEST, "on must be a boolean");
        f->on = cJSON_IsTrue(v);
        return true;
    case F_TYPE:
    case F__COUNT:
        break;
    }
    return true;
}

/* rid and cid are read before anything else is checked, so that errors can echo them;
 * a malformed one is not echoed (and fails validation later). */
static void echo_fields_read(gw_cframe_t *f)
{
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(f->root_, "rid");
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(f->root_, "cid");
    if (cJSON_IsString(rid) && chat_name_cid_valid(rid->valuestring))
        f->rid = rid->valuestring;
    if (cJSON_IsString(cid) && chat_name_cid_valid(cid->valuestring))
        f->cid = cid->valuestring;
}

static gw_ctype_t ctype_parse(const char *name)
{
    for (int t = GW_C_INVALID + 1; t < GW_C__COUNT; t++) {
        if (strcmp(ctype_names[t], name) == 0)
            return (gw_ctype_t)t;
    }
    return GW_C_INVALID;
}

/* Checks every member against the type's rule and reads the values. */
static bool members_read(gw_cframe_t *f, size_t max_text, gw_cframe_error_t *err)
{
    const frame_rule_t *rule = &frame_rules[f->type];
    unsigned allowed = rule->allowed | B(F_TYPE) | B(F_RID);
    unsigned seen = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, f->root_)
    {
        field_id_t id = field_lookup(v->string);
        if (id == F__COUNT || !(allowed & B(id)))
            return fail(err, GW_E_BAD_REQUEST, "unknown field %.40s in %s", v->string,
                        gw_ctype_name(f->type));
        if (seen & B(id))
            return fail(err, GW_E_BAD_REQUEST, "duplicate field %s", field_names[id]);
        seen |= B(id);
    }
    for (int id = 0; id < F__COUNT; id++) {
        if ((rule->required & B(id)) && !(seen & B(id)))
            return fail(err, GW_E_BAD_REQUEST, "%s needs %s", gw_ctype_name(f->type),
                        field_names[id]);
    }
    /* Text last: a frame with several problems reports the structural ones first. */
    cJSON_ArrayForEach(v, f->root_)
    {
        field_id_t id = field_lookup(v->string);
        if (id != F_TEXT && !field_read(id, v, max_text, f, err))
            return false;
    }
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(f->root_, "text");
    return text == NULL || field_read(F_TEXT, text, max_text, f, err);
}

static bool root_parse(const char *s, size_t len, gw_cframe_t *f, gw_cframe_error_t *err)
{
    if (chat_utf8_chars(s, len) < 0)
        return fail(err, GW_E_BAD_REQUEST, "frame is not valid UTF-8");
    const char *end = NULL;
    f->root_ = cJSON_ParseWithLengthOpts(s, len, &end, false);
    if (f->root_ == NULL)
        return fail(err, GW_E_BAD_REQUEST, "frame is not JSON");
    for (; end != NULL && end < s + len; end++) {
        if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n')
            return fail(err, GW_E_BAD_REQUEST, "trailing data after the JSON object");
    }
    if (!cJSON_IsObject(f->root_))
        return fail(err, GW_E_BAD_REQUEST, "frame must be a JSON object");
    return true;
}

/* The whole check after the root object is known; false with *err filled on failure. */
static bool frame_check(gw_cframe_t *f, size_t max_text_chars, gw_cframe_error_t *err)
{
    echo_fields_read(f);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(f->root_, "type");
    if (type == NULL)
        return fail(err, GW_E_BAD_REQUEST, "frame needs a string type");
    if (!cJSON_IsString(type))
        return fail(err, GW_E_BAD_REQUEST, "type must be a string");
    f->type = ctype_parse(type->valuestring);
    if (f->type == GW_C_INVALID)
        return fail(err, GW_E_BAD_REQUEST, "unknown type %.40s", type->valuestring);
    return members_read(f, max_text_chars, err);
}

chat_err_t gw_cframe_parse(const void *data, size_t len, size_t max_text_chars, gw_cframe_t *out,
                           gw_cframe_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (!root_parse(data, len, out, err) || !frame_check(out, max_text_chars, err))
        return CHAT_ERR_INVALID;
    if (chat_json_has_escaped_nul(data, len)) {
        fail(err, GW_E_BAD_REQUEST, "strings must not contain NUL");
        return CHAT_ERR_INVALID;
    }
    return CHAT_OK;
}

void gw_cframe_clear(gw_cframe_t *f)
{
    cJSON_Delete(f->root_);
    memset(f, 0, sizeof *f);
}

/* ---- server frames ---- */

gw_buf_t *gw_frame_from_json(const cJSON *obj)
{
    return gw_buf_take_text(cJSON_PrintUnformatted(obj));
}

static cJSON *frame_begin(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    if (o != NULL && cJSON_AddStringToObject(o, "type", type) == NULL) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Adds key: value unless value is NULL. Returns false if out of memory. */
static bool add_opt_string(cJSON *o, const char *key, const char *value)
{
    return value == NULL || cJSON_AddStringToObject(o, key, value) != NULL;
}

/* Adds an integer exactly: cJSON prints numbers above 10^15 in exponent form with 15
 * significant digits, which would round large seqs. */
static bool add_int(cJSON *o, const char *key, int64_t v)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%lld", (long long)v);
    return cJSON_AddRawToObject(o, key, digits) != NULL;
}

/* Serialises o and frees it; NULL if any step before failed (ok false) or out of memory. */
static gw_buf_t *frame_end(cJSON *o, bool ok)
{
    gw_buf_t *b = ok && o != NULL ? gw_frame_from_json(o) : NULL;
    cJSON_Delete(o);
    return b;
}

gw_buf_t *gw_frame_welcome(const char *user, const char *tenant, const char *session,
                           const char *vapid, int64_t exp, const char *rid)
{
    cJSON *o = frame_begin("welcome");
    bool ok = o != NULL && add_opt_string(o, "user", user) && add_opt_string(o, "tenant", tenant) &&
              add_opt_string(o, "session", session) && add_opt_string(o, "vapid", vapid) &&
              add_int(o, "exp", exp) && add_opt_string(o, "rid", rid);
    return frame_end(o, ok);
}

gw_buf_t *gw_frame_ok(const char *rid)
{
    cJSON *o = frame_begin("ok");
    return frame_end(o, o != NULL && add_opt_string(o, "rid", rid));
}

gw_buf_t *gw_frame_joined(const char *room, int64_t seq, int64_t useq, bool stale, int64_t unread,
                          int64_t read, const char *const *online, size_t nonline, const char *rid)
{
    cJSON *o = frame_begin("joined");
    bool ok = o != NULL && add_opt_string(o, "room", room) && add_int(o, "seq", seq) &&
              add_int(o, "useq", useq) && (!stale || cJSON_AddTrueToObject(o, "stale") != NULL) &&
              add_int(o, "unread", unread) && add_int(o, "read", read);
    cJSON *arr = ok ? cJSON_AddArrayToObject(o, "online") : NULL;
    ok = ok && arr != NULL;
    for (size_t i = 0; ok && i < nonline; i++) {
        cJSON *u = cJSON_CreateString(online[i]);
        ok = u != NULL && cJSON_AddItemToArray(arr, u);
    }
    ok = ok && add_opt_string(o, "rid", rid);
    return frame_end(o, ok);
}

gw_buf_t *gw_frame_left(const char *room, const char *rid, const char *reason)
{
    cJSON *o = frame_begin("left");
    bool ok = o != NULL && add_opt_string(o, "room", room) && add_opt_string(o, "rid", rid) &&
              add_opt_string(o, "reason", reason);
    return frame_end(o, ok);
}

gw_buf_t *gw_frame_pong(const char *rid)
{
    cJSON *o = frame_begin("pong");
    return frame_end(o, o != NULL && add_opt_string(o, "rid", rid));
}

gw_buf_t *gw_frame_error(gw_code_t code, const char *message, const char *rid, const char *cid)
{
    cJSON *o = chat_frame_error_new(gw_code_name(code),
                                    message != NULL && *message ? message : "error", rid, cid);
    return frame_end(o, o != NULL);
}

gw_buf_t *gw_frame_history(const char *room, const char *rid, cJSON *msgs, bool more)
{
    cJSON *o = frame_begin("history");
    bool ok = o != NULL && add_opt_string(o, "rid", rid) && add_opt_string(o, "room", room);
    if (ok && msgs != NULL && cJSON_AddItemToObject(o, "msgs", msgs))
        msgs = NULL;
    else
        ok = false;
    ok = ok && cJSON_AddBoolToObject(o, "more", more) != NULL;
    cJSON_Delete(msgs);
    return frame_end(o, ok);
}
