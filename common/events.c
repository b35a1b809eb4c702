/* The Kafka event codec (see events.h): one table per event type lists its JSON fields (key,
 * place in chat_event_t, kind, required, value rule), and one decode and one encode routine
 * walk those tables, so every type obeys the same rules as proto/events/<type>.schema.json. */
#include "common/events.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/names.h"

#define MAX_FIELDS 20 /* of one event type, "v" and "type" included */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef enum field_kind {
    KIND_VERSION, /* "v": always CHAT_EVENT_VERSION, no struct field */
    KIND_TYPE,    /* "type": the type's name, no struct field */
    KIND_STRING,  /* const char * */
    KIND_INT,     /* int64_t + has_* flag */
    KIND_BOOL,    /* bool + has_* flag */
    KIND_OBJECT,  /* cJSON * (borrowed subtree) */
    KIND_ORIGIN   /* {"gw","conn"} <-> origin_gw, origin_conn */
} field_kind_t;

/* One JSON field of an event type. The key must stay the first member: members_map reads
 * tables of different row types through it. */
typedef struct field_spec {
    const char *key;
    field_kind_t kind;
    bool required;
    size_t offset;                       /* of the value in chat_event_t */
    size_t has_offset;                   /* of the has_* flag (KIND_INT, KIND_BOOL) */
    bool (*str_valid)(const char *s);    /* KIND_STRING */
    bool (*obj_valid)(const cJSON *obj); /* KIND_OBJECT */
    int64_t min;                         /* KIND_INT; the maximum is CHAT_JSON_INT_MAX */
} field_spec_t;

typedef struct type_spec {
    const char *name;
    const field_spec_t *fields;
    size_t nfields;
    /* Rules across fields; returns NULL or why ev breaks them. */
    const char *(*check)(const chat_event_t *ev);
} type_spec_t;

/* ---- value rules (the same as proto/defs.schema.json) ---- */

/* True if s is valid UTF-8 of lo..hi characters. */
static bool chars_between(const char *s, long lo, long hi)
{
    long n = chat_utf8_chars(s, strlen(s));
    return n >= lo && n <= hi;
}

static bool text_valid(const char *s)
{
    return chars_between(s, 1, CHAT_TEXT_MAX_CHARS);
}

/* The text of a send or msg: empty only on a notice, which send_check and msg_check see. */
static bool text_or_empty_valid(const char *s)
{
    return chars_between(s, 0, CHAT_TEXT_MAX_CHARS);
}

static bool display_name_valid(const char *s)
{
    return chars_between(s, 1, CHAT_DISPLAY_NAME_MAX_CHARS);
}

/* Free human-readable text (messages, reasons, rule names): non-empty UTF-8. */
static bool note_valid(const char *s)
{
    return chars_between(s, 1, LONG_MAX);
}

/* True if s is one of the NULL-terminated words. */
static bool one_of(const char *s, const char *const *words)
{
    for (; *words != NULL; words++) {
        if (strcmp(s, *words) == 0)
            return true;
    }
    return false;
}

static bool op_valid(const char *s)
{
    static const char *const ops[] = {"edit", "delete", "react", "moderate", NULL};
    return one_of(s, ops);
}

bool chat_event_notice_valid(const char *s)
{
    static const char *const notices[] = {"room_created", "member_added", "member_removed",
                                          "room_renamed", "room_deleted", NULL};
    return s != NULL && one_of(s, notices);
}

static bool error_code_valid(const char *s)
{
    static const char *const codes[] = {"bad_request", "unauthorized", "forbidden", "not_found",
                                        "too_large",   "rate_limited", "internal",  NULL};
    return one_of(s, codes);
}

static bool action_valid(const char *s)
{
    static const char *const actions[] = {"remove", "flag", NULL};
    return one_of(s, actions);
}

static bool channel_valid(const char *s)
{
    static const char *const channels[] = {"webpush", "webhook", "email", NULL};
    return one_of(s, channels);
}

/* {"emoji": ["user", ...], ...} */
static bool reactions_valid(const cJSON *obj)
{
    if (!cJSON_IsObject(obj))
        return false;
    for (const cJSON *r = obj->child; r != NULL; r = r->next) {
        if (!chat_name_emoji_valid(r->string) || !cJSON_IsArray(r))
            return false;
        for (const cJSON *u = r->child; u != NULL; u = u->next) {
            if (!cJSON_IsString(u) || !chat_name_user_valid(u->valuestring))
                return false;
        }
    }
    return true;
}

static bool payload_valid(const cJSON *obj)
{
    return cJSON_IsObject(obj);
}

bool chat_event_msg_gone(const chat_event_t *ev)
{
    return (ev->has_deleted && ev->deleted) || (ev->has_removed && ev->removed);
}

/* Text may be empty only on a notice; a target only comes with a notice. */
static const char *notice_check(const chat_event_t *ev)
{
    if (ev->text != NULL && *ev->text == '\0' && ev->notice == NULL)
        return "empty text outside a notice";
    if (ev->target != NULL && ev->notice == NULL)
        return "target without a notice";
    return NULL;
}

/* The cross-field rules of a send: those of notices. NULL or why ev breaks them. */
static const char *send_check(const chat_event_t *ev)
{
    return notice_check(ev);
}

/* A message's text is left out only once it is gone (deleted, or removed by moderation). */
static const char *msg_check(const chat_event_t *ev)
{
    bool gone = chat_event_msg_gone(ev);
    if (ev->text == NULL && !gone)
        return "text missing on a message that is not deleted";
    if (ev->text != NULL && gone)
        return "a deleted message carries no text";
    return notice_check(ev);
}

static const char *update_check(const chat_event_t *ev)
{
    if (strcmp(ev->op, "edit") == 0 && ev->text == NULL)
        return "op edit needs text";
    if (ev->text != NULL && ev->has_deleted && ev->deleted)
        return "a deleted message carries no text";
    if (strcmp(ev->op, "react") == 0 && ev->reactions == NULL)
        return "op react needs reactions";
    if (strcmp(ev->op, "moderate") == 0 && !(ev->has_removed && ev->removed && ev->reason))
        return "op moderate needs removed:true and a reason";
    return NULL;
}

/* The ack of a send carries cid and ts; the ack of an update carries op (and rid if the
 * request had one) and neither of those. */
static const char *ack_check(const chat_event_t *ev)
{
    if (ev->op == NULL)
        return ev->cid != NULL && ev->has_ts ? NULL : "the ack of a send needs cid and ts";
    if (ev->cid != NULL || ev->has_ts)
        return "the ack of an update carries no cid and no ts";
    return NULL;
}

/* ---- the tables: proto/README.md's catalogue, in its field order ---- */

/* Row builders; kept unformatted so that each stays one readable line. */
/* clang-format off */
#define REQ true
#define OPT false
#define AT(field) offsetof(chat_event_t, field)
#define F_STR(k, field, req, valid) \
    {.key = (k), .kind = KIND_STRING, .required = (req), .offset = AT(field), .str_valid = (valid)}
#define F_INT(k, field, req, lo) \
    {.key = (k), .kind = KIND_INT, .required = (req), .offset = AT(field), \
     .has_offset = AT(has_##field), .min = (lo)}
#define F_BOOL(k, field, req) \
    {.key = (k), .kind = KIND_BOOL, .required = (req), .offset = AT(field), \
     .has_offset = AT(has_##field)}
#define F_OBJ(k, field, req, valid) \
    {.key = (k), .kind = KIND_OBJECT, .required = (req), .offset = AT(field), .obj_valid = (valid)}
#define F_ORIGIN(req) {.key = "origin", .kind = KIND_ORIGIN, .required = (req)}
#define F_ENVELOPE \
    {.key = "v", .kind = KIND_VERSION, .required = REQ}, \
    {.key = "type", .kind = KIND_TYPE, .required = REQ}
/* ARRAY_LEN that fails to compile (negative array size) for a table over MAX_FIELDS rows,
 * which the fixed-size slot arrays of decode could not hold. */
#define FIELDS_LEN(a) (ARRAY_LEN(a) + 0 * sizeof(char[ARRAY_LEN(a) <= MAX_FIELDS ? 1 : -1]))
#define TYPE(type_name, table, rules) {(type_name), (table), FIELDS_LEN(table), (rules)}
/* clang-format on */

#define F_TENANT F_STR("tenant", tenant, REQ, chat_name_tenant_valid)
#define F_ROOM F_STR("room", room, REQ, chat_name_room_valid)
#define F_USER(req) F_STR("user", user, req, chat_name_user_valid)
#define F_NAME F_STR("name", name, OPT, display_name_valid)
#define F_CID(req) F_STR("cid", cid, req, chat_name_cid_valid)
#define F_RID F_STR("rid", rid, OPT, chat_name_cid_valid)
#define F_ID F_STR("id", id, REQ, chat_name_message_id_valid)
#define F_TEXT(req) F_STR("text", text, req, text_valid)
#define F_NOTE(k, field, req) F_STR(k, field, req, note_valid)
#define F_NOTICE_TEXT(req) F_STR("text", text, req, text_or_empty_valid)
#define F_NOTICE F_STR("notice", notice, OPT, chat_event_notice_valid)
#define F_TARGET F_STR("target", target, OPT, chat_name_user_valid)
#define F_SEQ F_INT("seq", seq, REQ, 1)
#define F_TS F_INT("ts", ts, REQ, 0)
#define F_REACTIONS F_OBJ("reactions", reactions, OPT, reactions_valid)
#define F_USEQ(req) F_INT("useq", useq, req, 1)
#define F_EDITED F_INT("edited", edited, OPT, 0)
#define F_DELETED F_BOOL("deleted", deleted, OPT)

static const field_spec_t send_fields[] = {
    F_ENVELOPE,         F_TENANT, F_ROOM,   F_USER(REQ), F_NAME,        F_CID(REQ),
    F_NOTICE_TEXT(REQ), F_NOTICE, F_TARGET, F_TS,        F_ORIGIN(REQ),
};
static const field_spec_t edit_fields[] = {
    F_ENVELOPE, F_TENANT, F_ROOM, F_USER(REQ), F_ID, F_TEXT(REQ), F_RID, F_TS, F_ORIGIN(REQ),
};
static const field_spec_t delete_fields[] = {
    F_ENVELOPE, F_TENANT,      F_ROOM, F_USER(REQ), F_ID, F_RID, F_NOTE("reason", reason, OPT),
    F_TS,       F_ORIGIN(REQ),
};
static const field_spec_t react_fields[] = {
    F_ENVELOPE,
    F_TENANT,
    F_ROOM,
    F_USER(REQ),
    F_ID,
    F_STR("emoji", emoji, REQ, chat_name_emoji_valid),
    F_BOOL("on", on, REQ),
    F_RID,
    F_TS,
    F_ORIGIN(REQ),
};
static const field_spec_t read_fields[] = {
    F_ENVELOPE, F_TENANT, F_ROOM, F_USER(REQ), F_SEQ, F_RID, F_TS, F_ORIGIN(OPT),
};
static const field_spec_t msg_fields[] = {
    F_ENVELOPE,
    F_TENANT,
    F_ROOM,
    F_SEQ,
    F_ID,
    F_STR("from", user, REQ, chat_name_user_valid),
    F_NAME,
    F_NOTICE_TEXT(OPT),
    F_NOTICE,
    F_TARGET,
    F_TS,
    F_CID(REQ),
    F_INT("sent", sent, OPT, 0),
    F_EDITED,
    F_DELETED,
    F_BOOL("removed", removed, OPT),
    F_NOTE("reason", reason, OPT),
    F_REACTIONS,
    F_ORIGIN(OPT),
};
/* Two shapes: the ack of a send (cid, ts) and the ack of an edit, delete or react (op, rid?,
 * useq? when the request changed nothing new); ack_check tells them apart. */
static const field_spec_t ack_fields[] = {
    F_ENVELOPE,  F_TENANT,      F_ROOM,
    F_SEQ,       F_ID,          F_INT("ts", ts, OPT, 0),
    F_CID(OPT),  F_RID,         F_STR("op", op, OPT, op_valid),
    F_USEQ(OPT), F_ORIGIN(REQ),
};
static const field_spec_t update_fields[] = {
    F_ENVELOPE,
    F_TENANT,
    F_ROOM,
    F_ID,
    F_SEQ,
    F_USEQ(REQ),
    F_STR("op", op, REQ, op_valid),
    F_TS,
    F_TEXT(OPT),
    F_EDITED,
    F_DELETED,
    F_REACTIONS,
    F_BOOL("removed", removed, OPT),
    F_NOTE("reason", reason, OPT),
    F_USER(OPT),
    F_RID,
    F_ORIGIN(OPT),
};
static const field_spec_t reject_fields[] = {
    F_ENVELOPE,
    F_TENANT,
    F_ROOM,
    F_STR("code", code, REQ, error_code_valid),
    F_NOTE("message", message, REQ),
    F_CID(OPT),
    F_RID,
    F_ORIGIN(REQ),
};
static const field_spec_t typing_fields[] = {
    F_ENVELOPE, F_TENANT, F_ROOM, F_USER(REQ), F_NAME, F_TS,
};
static const field_spec_t presence_fields[] = {
    F_ENVELOPE, F_TENANT, F_ROOM, F_USER(REQ), F_BOOL("online", online, REQ), F_TS,
};
static const field_spec_t verdict_fields[] = {
    F_ENVELOPE,
    F_TENANT,
    F_ROOM,
    F_ID,
    F_SEQ,
    F_STR("action", action, REQ, action_valid),
    F_NOTE("reason", reason, REQ),
    F_NOTE("rule", rule, OPT),
    F_TS,
};
static const field_spec_t notify_failed_fields[] = {
    F_ENVELOPE,
    F_TENANT,
    F_ROOM,
    F_USER(REQ),
    F_STR("channel", channel, REQ, channel_valid),
    F_INT("attempts", attempts, REQ, 1),
    F_NOTE("error", error, REQ),
    F_TS,
    F_OBJ("payload", payload, REQ, payload_valid),
};

static const type_spec_t types[CHAT_EV__COUNT] = {
    [CHAT_EV_SEND] = TYPE("send", send_fields, send_check),
    [CHAT_EV_EDIT] = TYPE("edit", edit_fields, NULL),
    [CHAT_EV_DELETE] = TYPE("delete", delete_fields, NULL),
    [CHAT_EV_REACT] = TYPE("react", react_fields, NULL),
    [CHAT_EV_MSG] = TYPE("msg", msg_fields, msg_check),
    [CHAT_EV_ACK] = TYPE("ack", ack_fields, ack_check),
    [CHAT_EV_UPDATE] = TYPE("update", update_fields, update_check),
    [CHAT_EV_REJECT] = TYPE("reject", reject_fields, NULL),
    [CHAT_EV_TYPING] = TYPE("typing", typing_fields, NULL),
    [CHAT_EV_PRESENCE] = TYPE("presence", presence_fields, NULL),
    [CHAT_EV_READ] = TYPE("read", read_fields, NULL),
    [CHAT_EV_VERDICT] = TYPE("verdict", verdict_fields, NULL),
    [CHAT_EV_NOTIFY_FAILED] = TYPE("notify_failed", notify_failed_fields, NULL),
};

const char *chat_event_type_name(chat_event_type_t type)
{
    if (type <= CHAT_EV_INVALID || type >= CHAT_EV__COUNT)
        return NULL;
    return types[type].name;
}

chat_event_type_t chat_event_type_parse(const char *name)
{
    for (int t = CHAT_EV_INVALID + 1; name != NULL && t < CHAT_EV__COUNT; t++) {
        if (strcmp(name, types[t].name) == 0)
            return (chat_event_type_t)t;
    }
    return CHAT_EV_INVALID;
}

/* ---- struct access through the tables ---- */

static const char **str_at(chat_event_t *ev, const field_spec_t *f)
{
    return (const char **)((char *)ev + f->offset);
}

static int64_t *int_at(chat_event_t *ev, const field_spec_t *f)
{
    return (int64_t *)((char *)ev + f->offset);
}

static bool *bool_at(chat_event_t *ev, const field_spec_t *f)
{
    return (bool *)((char *)ev + f->offset);
}

static bool *has_at(chat_event_t *ev, const field_spec_t *f)
{
    return (bool *)((char *)ev + f->has_offset);
}

static cJSON **obj_at(chat_event_t *ev, const field_spec_t *f)
{
    return (cJSON **)((char *)ev + f->offset);
}

/* The accessors write through non-const pointers; reading a const event is safe. */
#define CONST_EV(ev) ((chat_event_t *)(uintptr_t)(ev))

static bool field_present(const chat_event_t *ev, const field_spec_t *f)
{
    chat_event_t *e = CONST_EV(ev);
    switch (f->kind) {
    case KIND_STRING:
        return *str_at(e, f) != NULL;
    case KIND_INT:
    case KIND_BOOL:
        return *has_at(e, f);
    case KIND_OBJECT:
        return *obj_at(e, f) != NULL;
    case KIND_ORIGIN:
        return ev->origin_gw != NULL || ev->origin_conn != NULL;
    case KIND_VERSION:
    case KIND_TYPE:
        break;
    }
    return true;
}

/* ---- validation of a filled event: shared by encode and decode ---- */

/* Returns NULL if the present value of f is valid, else why not. */
static const char *value_problem(const chat_event_t *ev, const field_spec_t *f)
{
    chat_event_t *e = CONST_EV(ev);
    switch (f->kind) {
    case KIND_STRING:
        return f->str_valid(*str_at(e, f)) ? NULL : "invalid value";
    case KIND_INT:
        return *int_at(e, f) >= f->min && *int_at(e, f) <= CHAT_JSON_INT_MAX ? NULL
                                                                             : "out of range";
    case KIND_OBJECT:
        return f->obj_valid(*obj_at(e, f)) ? NULL : "invalid value";
    case KIND_ORIGIN:
        if (ev->origin_gw == NULL || ev->origin_conn == NULL)
            return "needs gw and conn";
        return chat_name_endpoint_valid(ev->origin_gw) && chat_name_endpoint_valid(ev->origin_conn)
                   ? NULL
                   : "gw and conn must be 1-64 characters";
    case KIND_BOOL:
    case KIND_VERSION:
    case KIND_TYPE:
        break;
    }
    return NULL;
}

/* Checks required fields, value rules and the type's cross-field rules. Returns CHAT_OK or
 * CHAT_ERR_INVALID with the reason in errbuf. */
static chat_err_t event_check(const chat_event_t *ev, const type_spec_t *t, char *errbuf,
                              size_t errlen)
{
    for (size_t i = 0; i < t->nfields; i++) {
        const field_spec_t *f = &t->fields[i];
        if (!field_present(ev, f)) {
            if (f->required)
                return chat_json_fail(errbuf, errlen, "%s: missing field '%s'", t->name, f->key);
            continue;
        }
        const char *problem = value_problem(ev, f);
        if (problem != NULL)
            return chat_json_fail(errbuf, errlen, "%s: field '%s': %s", t->name, f->key, problem);
    }
    const char *broken = t->check != NULL ? t->check(ev) : NULL;
    if (broken != NULL)
        return chat_json_fail(errbuf, errlen, "%s: %s", t->name, broken);
    return CHAT_OK;
}

/* ---- decoding ---- */

static bool version_valid(const cJSON *item)
{
    int64_t v;
    return chat_json_read_int(item, &v) && v == CHAT_EVENT_VERSION;
}

/* {"gw": "...", "conn": "..."} with exactly those two string members. */
static chat_err_t origin_read(const cJSON *item, chat_event_t *ev, char *errbuf, size_t errlen)
{
    static const char *const keys[] = {"gw", "conn"};
    cJSON *slots[ARRAY_LEN(keys)];
    if (!cJSON_IsObject(item))
        return chat_json_fail(errbuf, errlen, "field 'origin': not an object");
    chat_err_t err = chat_json_map_members(item, keys, sizeof keys[0], ARRAY_LEN(keys), slots,
                                           "origin", errbuf, errlen);
    if (err != CHAT_OK)
        return err;
    if (!cJSON_IsString(slots[0]) || !cJSON_IsString(slots[1]))
        return chat_json_fail(errbuf, errlen, "field 'origin': gw and conn must be strings");
    ev->origin_gw = slots[0]->valuestring;
    ev->origin_conn = slots[1]->valuestring;
    return CHAT_OK;
}

/* Stores the JSON member item into the field f of ev after checking its JSON type. */
static chat_err_t field_read(const cJSON *item, const field_spec_t *f, chat_event_t *ev,
                             char *errbuf, size_t errlen)
{
    static const char *const expected[] = {
        [KIND_VERSION] = "the number 1", [KIND_TYPE] = "a string",  [KIND_STRING] = "a string",
        [KIND_INT] = "an integer",       [KIND_BOOL] = "a boolean", [KIND_OBJECT] = "an object",
        [KIND_ORIGIN] = "an object"};
    bool ok = false;
    switch (f->kind) {
    case KIND_VERSION:
        ok = version_valid(item);
        break;
    case KIND_TYPE:
        ok = true; /* the type was read first, to choose this table */
        break;
    case KIND_STRING:
        if ((ok = cJSON_IsString(item)))
            *str_at(ev, f) = item->valuestring;
        break;
    case KIND_INT:
        if ((ok = chat_json_read_int(item, int_at(ev, f))))
            *has_at(ev, f) = true;
        break;
    case KIND_BOOL:
        if ((ok = cJSON_IsBool(item))) {
            *bool_at(ev, f) = cJSON_IsTrue(item);
            *has_at(ev, f) = true;
        }
        break;
    case KIND_OBJECT:
        if ((ok = cJSON_IsObject(item)))
            *obj_at(ev, f) = (cJSON *)(uintptr_t)item;
        break;
    case KIND_ORIGIN:
        return origin_read(item, ev, errbuf, errlen);
    }
    return ok ? CHAT_OK
              : chat_json_fail(errbuf, errlen, "field '%s': not %s", f->key, expected[f->kind]);
}

/* Chooses the table from the "type" member. */
static const type_spec_t *type_of(const cJSON *root, chat_event_type_t *type, char *errbuf,
                                  size_t errlen)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsString(t)) {
        chat_json_fail(errbuf, errlen, "no string field 'type'");
        return NULL;
    }
    *type = chat_event_type_parse(t->valuestring);
    if (*type == CHAT_EV_INVALID) {
        chat_json_fail(errbuf, errlen, "unknown event type '%.32s'", t->valuestring);
        return NULL;
    }
    return &types[*type];
}

/* Fills ev from the members of root following table t; ev's strings point into root. */
static chat_err_t event_read(const cJSON *root, const type_spec_t *t, chat_event_t *ev,
                             char *errbuf, size_t errlen)
{
    cJSON *slots[MAX_FIELDS];
    chat_err_t err = chat_json_map_members(root, t->fields, sizeof t->fields[0], t->nfields, slots,
                                           t->name, errbuf, errlen);
    for (size_t i = 0; err == CHAT_OK && i < t->nfields; i++) {
        if (slots[i] != NULL)
            err = field_read(slots[i], &t->fields[i], ev, errbuf, errlen);
        else if (t->fields[i].kind == KIND_VERSION)
            err = chat_json_fail(errbuf, errlen, "%s: missing field 'v'", t->name);
    }
    return err;
}

chat_err_t chat_event_decode(const void *buf, size_t len, chat_event_t *out, char *errbuf,
                             size_t errlen)
{
    if (out == NULL)
        return chat_json_fail(errbuf, errlen, "no output event");
    memset(out, 0, sizeof *out);
    cJSON *root = chat_json_parse_exact(buf, len, errbuf, errlen);
    if (root == NULL)
        return CHAT_ERR_INVALID;
    out->priv_ = root;
    chat_err_t err = CHAT_ERR_INVALID;
    const type_spec_t *t = NULL;
    if (!cJSON_IsObject(root))
        chat_json_fail(errbuf, errlen, "not a JSON object");
    else if ((t = type_of(root, &out->type, errbuf, errlen)) != NULL &&
             (err = event_read(root, t, out, errbuf, errlen)) == CHAT_OK)
        err = event_check(out, t, errbuf, errlen);
    if (err != CHAT_OK)
        chat_event_clear(out);
    return err;
}

void chat_event_clear(chat_event_t *ev)
{
    if (ev == NULL)
        return;
    cJSON_Delete(ev->priv_);
    memset(ev, 0, sizeof *ev);
}

/* ---- encoding ---- */

static bool add_origin(cJSON *obj, const chat_event_t *ev)
{
    cJSON *origin = cJSON_AddObjectToObject(obj, "origin");
    return origin != NULL && cJSON_AddStringToObject(origin, "gw", ev->origin_gw) != NULL &&
           cJSON_AddStringToObject(origin, "conn", ev->origin_conn) != NULL;
}

/* Adds the present field f of ev to obj. Returns false when out of memory. */
static bool field_write(cJSON *obj, const field_spec_t *f, const type_spec_t *t,
                        const chat_event_t *ev)
{
    chat_event_t *e = CONST_EV(ev);
    switch (f->kind) {
    case KIND_VERSION:
        return chat_json_add_int(obj, f->key, CHAT_EVENT_VERSION);
    case KIND_TYPE:
        return cJSON_AddStringToObject(obj, f->key, t->name) != NULL;
    case KIND_STRING:
        return cJSON_AddStringToObject(obj, f->key, *str_at(e, f)) != NULL;
    case KIND_INT:
        return chat_json_add_int(obj, f->key, *int_at(e, f));
    case KIND_BOOL:
        return cJSON_AddBoolToObject(obj, f->key, *bool_at(e, f)) != NULL;
    case KIND_OBJECT:
        /* A reference: the caller's subtree is printed, not copied, and not freed with obj. */
        return cJSON_AddItemReferenceToObject(obj, f->key, *obj_at(e, f));
    case KIND_ORIGIN:
        return add_origin(obj, ev);
    }
    return false;
}

chat_err_t chat_event_encode(const chat_event_t *ev, char **out, size_t *len)
{
    char why[160];
    if (ev == NULL || out == NULL || chat_event_type_name(ev->type) == NULL)
        return CHAT_ERR_INVALID;
    const type_spec_t *t = &types[ev->type];
    if (event_check(ev, t, why, sizeof why) != CHAT_OK) {
        chat_log_warn("event not encoded", CHAT_F_STR("type", t->name), CHAT_F_STR("reason", why));
        return CHAT_ERR_INVALID;
    }
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    for (size_t i = 0; ok && i < t->nfields; i++) {
        if (field_present(ev, &t->fields[i]))
            ok = field_write(root, &t->fields[i], t, ev);
    }
    if (!ok) {
        cJSON_Delete(root);
        return CHAT_ERR_NOMEM;
    }
    return chat_json_print(root, out, len);
}
