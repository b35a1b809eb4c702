/* Unit tests of common/events.c: round trips of every event type, every rule decode enforces,
 * and encode's refusals. The field lists below are proto/README.md's catalogue, written out
 * independently of the codec's own tables. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/events.h"
#include "common/log.h"
#include "common/names.h"
#include "tests/support/util.h"

#define ID "65f1c0ffee0123456789abcd"
#define TS INT64_C(1732406400123)
#define THUMBS "\xf0\x9f\x91\x8d"

/* proto/README.md: the JSON keys of each type, "v" and "type" left out. */
static const struct {
    chat_event_type_t type;
    const char *required;
    const char *optional;
} catalogue[] = {
    {CHAT_EV_SEND, "tenant room user cid text ts origin", "name notice target"},
    {CHAT_EV_EDIT, "tenant room user id text ts origin", "rid"},
    {CHAT_EV_DELETE, "tenant room user id ts origin", "rid reason"},
    {CHAT_EV_REACT, "tenant room user id emoji on ts origin", "rid"},
    {CHAT_EV_READ, "tenant room user seq ts", ""},
    {CHAT_EV_MSG, "tenant room seq id from text ts cid",
     "name notice target edited deleted reactions origin"},
    {CHAT_EV_ACK, "tenant room seq id ts cid origin", "rid"},
    {CHAT_EV_UPDATE, "tenant room id seq useq op ts",
     "text edited deleted reactions removed reason user rid origin"},
    {CHAT_EV_REJECT, "tenant room code message origin", "cid rid"},
    {CHAT_EV_TYPING, "tenant room user ts", ""},
    {CHAT_EV_PRESENCE, "tenant room user online ts", ""},
    {CHAT_EV_VERDICT, "tenant room id seq action reason ts", "rule"},
    {CHAT_EV_NOTIFY_FAILED, "tenant room user channel attempts error ts payload", ""},
};
#define NTYPES (sizeof catalogue / sizeof catalogue[0])

/* An event with the cJSON subtrees it borrows. */
typedef struct sample {
    chat_event_t ev;
    cJSON *reactions;
    cJSON *payload;
} sample_t;

/* Sets (on) or clears (!on) the struct field behind JSON key. */
static void field_set(sample_t *s, const char *key, bool on)
{
    chat_event_t *ev = &s->ev;
#define STR_FIELD(k, field, value)                                                                 \
    if (strcmp(key, k) == 0) {                                                                     \
        ev->field = on ? (value) : NULL;                                                           \
        return;                                                                                    \
    }
#define NUM_FIELD(k, field, value)                                                                 \
    if (strcmp(key, k) == 0) {                                                                     \
        ev->field = on ? (value) : 0;                                                              \
        ev->has_##field = on;                                                                      \
        return;                                                                                    \
    }
    STR_FIELD("tenant", tenant, "acme")
    STR_FIELD("room", room, "general")
    STR_FIELD("user", user, "alice")
    STR_FIELD("from", user, "alice")
    STR_FIELD("name", name, "Alice")
    STR_FIELD("cid", cid, "c-0001")
    STR_FIELD("rid", rid, "r-1")
    STR_FIELD("id", id, ID)
    STR_FIELD("text", text, "hello")
    STR_FIELD("emoji", emoji, THUMBS)
    STR_FIELD("op", op, "delete") /* the op that needs no optional field */
    STR_FIELD("code", code, "forbidden")
    STR_FIELD("message", message, "not a member")
    STR_FIELD("reason", reason, "spam")
    STR_FIELD("notice", notice, "member_added")
    STR_FIELD("target", target, "bob")
    STR_FIELD("action", action, "remove")
    STR_FIELD("rule", rule, "words")
    STR_FIELD("channel", channel, "webpush")
    STR_FIELD("error", error, "410 Gone")
    STR_FIELD("origin", origin_gw, "gw-0")
    STR_FIELD("reactions", reactions, s->reactions)
    STR_FIELD("payload", payload, s->payload)
    NUM_FIELD("seq", seq, 42)
    NUM_FIELD("useq", useq, 7)
    NUM_FIELD("ts", ts, TS)
    NUM_FIELD("attempts", attempts, 3)
    NUM_FIELD("on", on, true)
    NUM_FIELD("online", online, true)
    NUM_FIELD("removed", removed, true)
    NUM_FIELD("edited", edited, TS)
    NUM_FIELD("deleted", deleted, false) /* true would forbid the text of the full samples */
#undef STR_FIELD
#undef NUM_FIELD
    ck_abort_msg("test has no field %s", key);
}

/* Calls fn(s, key, arg) for each space-separated key of list. */
static void each_key(const char *list, void (*fn)(sample_t *, const char *, bool), sample_t *s,
                     bool arg)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *k = strtok_r(buf, " ", &save); k; k = strtok_r(NULL, " ", &save))
        fn(s, k, arg);
}

/* The i-th catalogue type with its required fields, and the optional ones if full. */
static void sample_init(sample_t *s, size_t i, bool full)
{
    memset(s, 0, sizeof *s);
    s->reactions = cJSON_Parse("{\"" THUMBS "\":[\"alice\",\"bob\"],\"\xf0\x9f\x8e\x89\":[]}");
    s->payload = cJSON_Parse("{\"v\":1,\"type\":\"msg\",\"nested\":{\"a\":[1,2]}}");
    ck_assert_ptr_nonnull(s->reactions);
    ck_assert_ptr_nonnull(s->payload);
    s->ev.type = catalogue[i].type;
    each_key(catalogue[i].required, field_set, s, true);
    if (full)
        each_key(catalogue[i].optional, field_set, s, true);
    if (s->ev.origin_gw != NULL)
        s->ev.origin_conn = "c-17";
}

static void sample_free(sample_t *s)
{
    cJSON_Delete(s->reactions);
    cJSON_Delete(s->payload);
}

static char *encode_ok(const chat_event_t *ev)
{
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(ev, &json, &len), CHAT_OK);
    ck_assert_ptr_nonnull(json);
    ck_assert_uint_eq(len, strlen(json));
    return json;
}

static void assert_str_same(const char *a, const char *b, const char *what)
{
    if (a == NULL || b == NULL)
        ck_assert_msg(a == b, "%s: one side absent", what);
    else
        ck_assert_msg(strcmp(a, b) == 0, "%s: '%s' != '%s'", what, a, b);
}

static void assert_events_equal(const chat_event_t *a, const chat_event_t *b)
{
    ck_assert_int_eq(a->type, b->type);
#define SAME_STR(f) assert_str_same(a->f, b->f, #f)
    SAME_STR(tenant), SAME_STR(room), SAME_STR(user), SAME_STR(name), SAME_STR(cid);
    SAME_STR(rid), SAME_STR(id), SAME_STR(text), SAME_STR(emoji), SAME_STR(op);
    SAME_STR(code), SAME_STR(message), SAME_STR(reason), SAME_STR(action), SAME_STR(rule);
    SAME_STR(channel), SAME_STR(error), SAME_STR(origin_gw), SAME_STR(origin_conn);
    SAME_STR(notice), SAME_STR(target);
#undef SAME_STR
#define SAME_NUM(f) ck_assert_msg(a->has_##f == b->has_##f && a->f == b->f, "field " #f " differs")
    SAME_NUM(seq), SAME_NUM(ts), SAME_NUM(attempts), SAME_NUM(on), SAME_NUM(online);
    SAME_NUM(removed), SAME_NUM(edited), SAME_NUM(useq), SAME_NUM(deleted);
#undef SAME_NUM
    ck_assert_msg((a->reactions == NULL) == (b->reactions == NULL), "reactions presence");
    ck_assert_msg(a->reactions == NULL || cJSON_Compare(a->reactions, b->reactions, true),
                  "reactions differ");
    ck_assert_msg((a->payload == NULL) == (b->payload == NULL), "payload presence");
    ck_assert_msg(a->payload == NULL || cJSON_Compare(a->payload, b->payload, true),
                  "payload differs");
}

static void assert_zeroed(const chat_event_t *ev)
{
    static const chat_event_t zero;
    ck_assert_msg(memcmp(ev, &zero, sizeof zero) == 0, "event not cleared");
}

/* Encodes and decodes s and checks that the result equals s. Returns the JSON (to free). */
static char *round_trip(const sample_t *s)
{
    char *json = encode_ok(&s->ev);
    chat_event_t back;
    char why[200] = "";
    ck_assert_msg(chat_event_decode(json, strlen(json), &back, why, sizeof why) == CHAT_OK,
                  "%s: %s", json, why);
    assert_events_equal(&s->ev, &back);
    chat_event_clear(&back);
    assert_zeroed(&back);
    return json;
}

/* ---- type names ---- */

START_TEST(test_type_names)
{
    for (size_t i = 0; i < NTYPES; i++) {
        const char *name = chat_event_type_name(catalogue[i].type);
        ck_assert_ptr_nonnull(name);
        ck_assert_int_eq(chat_event_type_parse(name), catalogue[i].type);
    }
    ck_assert_uint_eq(NTYPES, CHAT_EV__COUNT - 1);
    ck_assert_str_eq(chat_event_type_name(CHAT_EV_NOTIFY_FAILED), "notify_failed");
    ck_assert_ptr_null(chat_event_type_name(CHAT_EV_INVALID));
    ck_assert_ptr_null(chat_event_type_name(CHAT_EV__COUNT));
    ck_assert_int_eq(chat_event_type_parse("deliver"), CHAT_EV_INVALID);
    ck_assert_int_eq(chat_event_type_parse("Send"), CHAT_EV_INVALID);
    ck_assert_int_eq(chat_event_type_parse(NULL), CHAT_EV_INVALID);
}
END_TEST

/* ---- round trips ---- */

START_TEST(test_round_trip_full)
{
    for (size_t i = 0; i < NTYPES; i++) {
        sample_t s;
        sample_init(&s, i, true);
        char *json = round_trip(&s);
        char head[64];
        snprintf(head, sizeof head, "{\"v\":1,\"type\":\"%s\",",
                 chat_event_type_name(catalogue[i].type));
        ck_assert_msg(strncmp(json, head, strlen(head)) == 0, "%s", json);
        free(json);
        sample_free(&s);
    }
}
END_TEST

/* Only the required fields: optional ones must not appear in the JSON at all. */
START_TEST(test_round_trip_required_only)
{
    for (size_t i = 0; i < NTYPES; i++) {
        sample_t s;
        sample_init(&s, i, false);
        char *json = round_trip(&s);
        cJSON *doc = cJSON_Parse(json);
        char opt[256];
        snprintf(opt, sizeof opt, "%s", catalogue[i].optional);
        for (char *save = NULL, *k = strtok_r(opt, " ", &save); k; k = strtok_r(NULL, " ", &save))
            ck_assert_msg(!cJSON_HasObjectItem(doc, k), "%s has %s", json, k);
        cJSON_Delete(doc);
        free(json);
        sample_free(&s);
    }
}
END_TEST

START_TEST(test_encode_exact_bytes)
{
    sample_t s;
    sample_init(&s, 0, true); /* send */
    s.ev.text = "say \"hi\"\n";
    s.ev.notice = s.ev.target = NULL;
    char *json = encode_ok(&s.ev);
    ck_assert_str_eq(json, "{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"general\","
                           "\"user\":\"alice\",\"name\":\"Alice\",\"cid\":\"c-0001\","
                           "\"text\":\"say \\\"hi\\\"\\n\",\"ts\":1732406400123,"
                           "\"origin\":{\"gw\":\"gw-0\",\"conn\":\"c-17\"}}");
    free(json);
    sample_free(&s);
}
END_TEST

/* Integers are printed as exact digits up to 2^53 - 1, never with an exponent. */
START_TEST(test_encode_exact_integers)
{
    chat_event_t ev = {.type = CHAT_EV_READ,
                       .tenant = "a",
                       .room = "r",
                       .user = "u",
                       .seq = INT64_C(9007199254740991),
                       .has_seq = true,
                       .ts = INT64_C(1000000000000000),
                       .has_ts = true};
    char *json = encode_ok(&ev);
    ck_assert_ptr_nonnull(strstr(json, "\"seq\":9007199254740991,"));
    ck_assert_ptr_nonnull(strstr(json, "\"ts\":1000000000000000}"));
    chat_event_t back;
    ck_assert_int_eq(chat_event_decode(json, strlen(json), &back, NULL, 0), CHAT_OK);
    ck_assert(back.seq == INT64_C(9007199254740991) && back.ts == INT64_C(1000000000000000));
    chat_event_clear(&back);
    free(json);
}
END_TEST

/* ---- encode refusals ---- */

static void encode_without(sample_t *s, const char *key, bool unused)
{
    (void)unused;
    chat_event_t saved = s->ev;
    field_set(s, key, false);
    if (strcmp(key, "origin") == 0)
        s->ev.origin_conn = NULL;
    char *json = NULL;
    ck_assert_msg(chat_event_encode(&s->ev, &json, NULL) == CHAT_ERR_INVALID,
                  "%s encoded without %s", chat_event_type_name(s->ev.type), key);
    ck_assert_ptr_null(json);
    s->ev = saved;
}

/* A text of CHAT_TEXT_MAX_CHARS characters (the most CHAT_MAX_TEXT_CHARS allows) encodes;
 * one more does not. */
START_TEST(test_encode_text_limit)
{
    sample_t s;
    sample_init(&s, 0, true); /* send */
    const char *euro = "\xe2\x82\xac";
    char *text = malloc(3 * (CHAT_TEXT_MAX_CHARS + 1) + 1);
    ck_assert_ptr_nonnull(text);
    for (int i = 0; i <= CHAT_TEXT_MAX_CHARS; i++)
        memcpy(text + 3 * i, euro, 3);
    text[3 * CHAT_TEXT_MAX_CHARS] = '\0';
    s.ev.text = text;
    free(encode_ok(&s.ev));
    text[3 * CHAT_TEXT_MAX_CHARS] = euro[0];
    text[3 * (CHAT_TEXT_MAX_CHARS + 1)] = '\0';
    char *json = NULL;
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_ptr_null(json);
    free(text);
    sample_free(&s);
}
END_TEST

START_TEST(test_encode_missing_required)
{
    for (size_t i = 0; i < NTYPES; i++) {
        sample_t s;
        sample_init(&s, i, true);
        each_key(catalogue[i].required, encode_without, &s, false);
        sample_free(&s);
    }
}
END_TEST

START_TEST(test_encode_invalid_values)
{
    sample_t s;
    sample_init(&s, 0, true); /* send */
    char *json = NULL;
    s.ev.room = "a room";
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    s.ev.room = "general";
    s.ev.origin_conn = NULL; /* half an origin */
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    s.ev.origin_conn = "c-17";
    s.ev.ts = -1;
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    s.ev.ts = INT64_C(9007199254740992);
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_ptr_null(json);

    ck_assert_int_eq(chat_event_encode(NULL, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_event_encode(&s.ev, NULL, NULL), CHAT_ERR_INVALID);
    s.ev.ts = TS;
    s.ev.type = CHAT_EV_INVALID;
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    s.ev.type = CHAT_EV__COUNT;
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_ptr_null(json);
    sample_free(&s);
}
END_TEST

/* ---- decode rules ---- */

/* Decodes text; checks the verdict, and on failure that a reason was given and *out is
 * cleared. */
static void expect_decode(const char *text, size_t len, bool ok)
{
    chat_event_t ev;
    memset(&ev, 0xa5, sizeof ev);
    char why[200] = "";
    chat_err_t err = chat_event_decode(text, len, &ev, why, sizeof why);
    if (ok) {
        ck_assert_msg(err == CHAT_OK, "rejected %.300s: %s", text, why);
        chat_event_clear(&ev);
    } else {
        ck_assert_msg(err == CHAT_ERR_INVALID, "accepted %.300s", text);
        ck_assert_msg(why[0] != '\0', "no reason for %.300s", text);
        assert_zeroed(&ev);
    }
}

/* The full example of type, encoded, with member key replaced by the raw JSON value (added if
 * absent; removed if value is NULL), decoded: expects ok or a rejection. */
static void expect_patched(chat_event_type_t type, const char *key, const char *value, bool ok)
{
    size_t i = 0;
    while (catalogue[i].type != type)
        i++;
    sample_t s;
    sample_init(&s, i, true);
    char *json = encode_ok(&s.ev);
    cJSON *doc = cJSON_Parse(json);
    cJSON_DeleteItemFromObjectCaseSensitive(doc, key);
    if (value != NULL)
        cJSON_AddRawToObject(doc, key, value);
    char *patched = cJSON_PrintUnformatted(doc);
    expect_decode(patched, strlen(patched), ok);
    free(patched);
    cJSON_Delete(doc);
    free(json);
    sample_free(&s);
}

START_TEST(test_decode_missing_required)
{
    for (size_t i = 0; i < NTYPES; i++) {
        char keys[256];
        snprintf(keys, sizeof keys, "v type %s", catalogue[i].required);
        for (char *save = NULL, *k = strtok_r(keys, " ", &save); k; k = strtok_r(NULL, " ", &save))
            expect_patched(catalogue[i].type, k, NULL, false);
    }
}
END_TEST

static const struct patch {
    chat_event_type_t type;
    const char *key;
    const char *value; /* raw JSON */
    bool ok;
} patches[] = {
    /* envelope */
    {CHAT_EV_SEND, "v", "2", false},
    {CHAT_EV_SEND, "v", "\"1\"", false},
    {CHAT_EV_SEND, "v", "1.0", true},
    {CHAT_EV_SEND, "v", "0", false},
    {CHAT_EV_SEND, "type", "\"bogus\"", false},
    {CHAT_EV_SEND, "type", "\"deliver\"", false},
    {CHAT_EV_SEND, "type", "7", false},
    /* unknown members: additionalProperties false */
    {CHAT_EV_SEND, "rid", "\"r-1\"", false},
    {CHAT_EV_MSG, "user", "\"alice\"", false},
    {CHAT_EV_READ, "origin", "{\"gw\":\"g\",\"conn\":\"c\"}", true},
    {CHAT_EV_READ, "origin", "{\"gw\":\"g\"}", false},
    {CHAT_EV_READ, "rid", "\"r-1\"", true},
    {CHAT_EV_READ, "cid", "\"c-1\"", false},
    {CHAT_EV_TYPING, "extra", "null", false},
    /* names */
    {CHAT_EV_SEND, "tenant", "\"acme corp\"", false},
    {CHAT_EV_SEND, "tenant", "\"ac:me\"", false},
    {CHAT_EV_SEND, "tenant", "\"\"", false},
    {CHAT_EV_SEND, "tenant", "7", false},
    {CHAT_EV_SEND, "room", "\"my room\"", false},
    {CHAT_EV_SEND, "room", "\"a/b\"", false},
    {CHAT_EV_SEND, "room", "\"dm:alice:bob\"", true},
    {CHAT_EV_SEND, "room", "null", false},
    {CHAT_EV_SEND, "user", "\"\"", false},
    {CHAT_EV_SEND, "user", "\"a\\u0001b\"", false},
    {CHAT_EV_SEND, "user", "\"a\\u0085b\"", false},
    {CHAT_EV_SEND, "user", "\"Zo\xc3\xab \xc5\x81ukasz\"", true},
    {CHAT_EV_SEND, "cid", "\"a\\tb\"", false},
    {CHAT_EV_SEND, "cid", "\"\xd0\xba\xd0\xbb\"", false},
    {CHAT_EV_SEND, "cid", "\"web 1\"", true},
    {CHAT_EV_SEND, "cid", "\"\"", false},
    {CHAT_EV_EDIT, "rid", "\"\"", false},
    {CHAT_EV_EDIT, "rid", "\"r\\n\"", false},
    {CHAT_EV_SEND, "name", "\"\"", false},
    {CHAT_EV_SEND, "text", "42", false},
    {CHAT_EV_SEND, "text", "\"bad \xff byte\"", false},
    {CHAT_EV_SEND, "text", "\"line\\nbreak\"", true},
    /* numbers */
    {CHAT_EV_SEND, "ts", "-1", false},
    {CHAT_EV_SEND, "ts", "0", true},
    {CHAT_EV_SEND, "ts", "1.5", false},
    {CHAT_EV_SEND, "ts", "1732406400123.0", true},
    {CHAT_EV_SEND, "ts", "\"1\"", false},
    {CHAT_EV_SEND, "ts", "true", false},
    {CHAT_EV_SEND, "ts", "9007199254740991", true},
    {CHAT_EV_SEND, "ts", "9007199254740992", false},
    {CHAT_EV_SEND, "ts", "1e400", false},
    {CHAT_EV_SEND, "ts", "-1e400", false},
    {CHAT_EV_MSG, "seq", "0", false},
    {CHAT_EV_MSG, "seq", "-1", false},
    {CHAT_EV_MSG, "seq", "1", true},
    {CHAT_EV_MSG, "seq", "42.5", false},
    {CHAT_EV_NOTIFY_FAILED, "attempts", "0", false},
    {CHAT_EV_NOTIFY_FAILED, "attempts", "1", true},
    /* ids and enums */
    {CHAT_EV_EDIT, "id", "\"65F1C0FFEE0123456789ABCD\"", false},
    {CHAT_EV_EDIT, "id", "\"65f1c0ffee0123456789abc\"", false},
    {CHAT_EV_EDIT, "id", "\"65f1c0ffee0123456789abcde\"", false},
    {CHAT_EV_EDIT, "id", "\"gggggggggggggggggggggggg\"", false},
    {CHAT_EV_UPDATE, "op", "\"pin\"", false},
    {CHAT_EV_UPDATE, "op", "\"EDIT\"", false},
    {CHAT_EV_UPDATE, "op", "\"edit\"", true},
    {CHAT_EV_UPDATE, "op", "\"react\"", true},
    {CHAT_EV_UPDATE, "op", "\"moderate\"", true},
    {CHAT_EV_REJECT, "code", "\"teapot\"", false},
    {CHAT_EV_REJECT, "code", "\"rate_limited\"", true},
    {CHAT_EV_REJECT, "code", "\"unauthorized\"", true},
    {CHAT_EV_REJECT, "message", "\"\"", false},
    {CHAT_EV_VERDICT, "action", "\"ban\"", false},
    {CHAT_EV_VERDICT, "action", "\"flag\"", true},
    {CHAT_EV_NOTIFY_FAILED, "channel", "\"sms\"", false},
    {CHAT_EV_NOTIFY_FAILED, "channel", "\"email\"", true},
    {CHAT_EV_NOTIFY_FAILED, "channel", "\"webhook\"", true},
    /* booleans and objects */
    {CHAT_EV_REACT, "on", "\"true\"", false},
    {CHAT_EV_REACT, "on", "1", false},
    {CHAT_EV_REACT, "on", "false", true},
    {CHAT_EV_REACT, "emoji", "\"\"", false},
    {CHAT_EV_PRESENCE, "online", "null", false},
    {CHAT_EV_MSG, "edited", "\"yes\"", false},
    {CHAT_EV_MSG, "reactions", "[]", false},
    {CHAT_EV_MSG, "reactions", "{}", true},
    {CHAT_EV_MSG, "reactions", "{\"" THUMBS "\":\"alice\"}", false},
    {CHAT_EV_MSG, "reactions", "{\"" THUMBS "\":[\"\"]}", false},
    {CHAT_EV_MSG, "reactions", "{\"" THUMBS "\":[7]}", false},
    {CHAT_EV_MSG, "reactions", "{\"\":[\"alice\"]}", false},
    {CHAT_EV_MSG, "reactions", "{\"" THUMBS "\":[]}", true},
    {CHAT_EV_NOTIFY_FAILED, "payload", "\"{}\"", false},
    {CHAT_EV_NOTIFY_FAILED, "payload", "[]", false},
    {CHAT_EV_NOTIFY_FAILED, "payload", "{}", true},
    /* origin */
    {CHAT_EV_SEND, "origin", "\"gw-0\"", false},
    {CHAT_EV_SEND, "origin", "{\"gw\":\"g\"}", false},
    {CHAT_EV_SEND, "origin", "{\"gw\":\"g\",\"conn\":\"c\",\"port\":1}", false},
    {CHAT_EV_SEND, "origin", "{\"gw\":\"\",\"conn\":\"c\"}", false},
    {CHAT_EV_SEND, "origin", "{\"gw\":1,\"conn\":\"c\"}", false},
    {CHAT_EV_SEND, "origin", "{\"gw\":\"g\",\"gw\":\"g\",\"conn\":\"c\"}", false},
    {CHAT_EV_SEND, "origin", "{\"conn\":\"c\",\"gw\":\"g\"}", true},
    {CHAT_EV_MSG, "origin", NULL, true},
};

START_TEST(test_decode_patched)
{
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++)
        expect_patched(patches[i].type, patches[i].key, patches[i].value, patches[i].ok);
}
END_TEST

#define EXPECT_TEXT(text, ok) expect_decode((text), strlen(text), (ok))

START_TEST(test_decode_not_an_event)
{
    EXPECT_TEXT("", false);
    EXPECT_TEXT("{", false);
    EXPECT_TEXT("[]", false);
    EXPECT_TEXT("\"typing\"", false);
    EXPECT_TEXT("42", false);
    EXPECT_TEXT("null", false);
    EXPECT_TEXT("{}", false);
    EXPECT_TEXT("{\"v\":1}", false);
    EXPECT_TEXT("{\"type\":\"typing\",\"tenant\":\"a\",\"room\":\"r\",\"user\":\"u\",\"ts\":1}",
                false);
    const char *ok = "{\"v\":1,\"type\":\"typing\",\"tenant\":\"a\",\"room\":\"r\","
                     "\"user\":\"u\",\"ts\":1}";
    EXPECT_TEXT(ok, true);
    char buf[256];
    snprintf(buf, sizeof buf, "%s \r\n", ok);
    EXPECT_TEXT(buf, true);
    snprintf(buf, sizeof buf, "%s x", ok);
    EXPECT_TEXT(buf, false);
    snprintf(buf, sizeof buf, "%s{}", ok);
    EXPECT_TEXT(buf, false);
    chat_event_t ev;
    ck_assert_int_eq(chat_event_decode(NULL, 3, &ev, NULL, 0), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_event_decode(ok, strlen(ok), NULL, NULL, 0), CHAT_ERR_INVALID);
}
END_TEST

/* cJSON keeps both members of a repeated key; decode must refuse what a schema validator
 * would see only once. */
START_TEST(test_decode_repeated_member)
{
    EXPECT_TEXT("{\"v\":1,\"type\":\"typing\",\"tenant\":\"a\",\"room\":\"r\",\"user\":\"u\","
                "\"ts\":1,\"ts\":2}",
                false);
    EXPECT_TEXT("{\"v\":1,\"type\":\"typing\",\"type\":\"typing\",\"tenant\":\"a\",\"room\":\"r\","
                "\"user\":\"u\",\"ts\":1}",
                false);
    EXPECT_TEXT("{\"v\":1,\"v\":1,\"type\":\"typing\",\"tenant\":\"a\",\"room\":\"r\","
                "\"user\":\"u\",\"ts\":1}",
                false);
}
END_TEST

/* The record value is not NUL-terminated (as a Kafka payload is): decode must stay inside. */
START_TEST(test_decode_unterminated_buffer)
{
    const char *ok = "{\"v\":1,\"type\":\"typing\",\"tenant\":\"a\",\"room\":\"r\","
                     "\"user\":\"u\",\"ts\":1}";
    size_t len = strlen(ok);
    char *exact = malloc(len);
    memcpy(exact, ok, len);
    expect_decode(exact, len, true);
    expect_decode(exact, len - 1, false);
    free(exact);
}
END_TEST

/* Replaces member key of the full example of type by a string of n copies of unit. */
static void expect_long_string(chat_event_type_t type, const char *key, const char *unit, size_t n,
                               bool ok)
{
    size_t ulen = strlen(unit);
    char *value = malloc(n * ulen + 3);
    value[0] = '"';
    for (size_t i = 0; i < n; i++)
        memcpy(value + 1 + i * ulen, unit, ulen);
    strcpy(value + 1 + n * ulen, "\"");
    expect_patched(type, key, value, ok);
    free(value);
}

START_TEST(test_decode_lengths)
{
    expect_long_string(CHAT_EV_SEND, "tenant", "t", 64, true);
    expect_long_string(CHAT_EV_SEND, "tenant", "t", 65, false);
    expect_long_string(CHAT_EV_SEND, "room", "r", 128, true);
    expect_long_string(CHAT_EV_SEND, "room", "r", 129, false);
    expect_long_string(CHAT_EV_SEND, "user", "\xc3\xa9", 64, true); /* é: characters count */
    expect_long_string(CHAT_EV_SEND, "user", "\xc3\xa9", 65, false);
    expect_long_string(CHAT_EV_SEND, "cid", "c", 64, true);
    expect_long_string(CHAT_EV_SEND, "cid", "c", 65, false);
    expect_long_string(CHAT_EV_SEND, "text", "\xe2\x82\xac", CHAT_TEXT_MAX_CHARS, true); /* € */
    expect_long_string(CHAT_EV_SEND, "text", "\xe2\x82\xac", CHAT_TEXT_MAX_CHARS + 1, false);
    expect_long_string(CHAT_EV_SEND, "text", "a", CHAT_TEXT_MAX_CHARS + 1, false);
    expect_long_string(CHAT_EV_SEND, "name", "n", 128, true);
    expect_long_string(CHAT_EV_SEND, "name", "n", 129, false);
    expect_long_string(CHAT_EV_REACT, "emoji", THUMBS, 32, true);
    expect_long_string(CHAT_EV_REACT, "emoji", THUMBS, 33, false);
    char origin[160];
    snprintf(origin, sizeof origin, "{\"gw\":\"%064d\",\"conn\":\"c\"}", 0);
    expect_patched(CHAT_EV_SEND, "origin", origin, true);
    snprintf(origin, sizeof origin, "{\"gw\":\"g\",\"conn\":\"%065d\"}", 0);
    expect_patched(CHAT_EV_SEND, "origin", origin, false);
}
END_TEST

/* What each update op needs, through encode and decode alike. */
START_TEST(test_update_op_rules)
{
    static const struct {
        const char *op;
        const char *drop; /* the member taken out */
        bool removed;
        bool ok;
    } cases[] = {
        {"edit", NULL, true, true},           {"edit", "text", true, false},
        {"react", NULL, true, true},          {"react", "reactions", true, false},
        {"moderate", NULL, true, true},       {"moderate", "reason", true, false},
        {"moderate", "removed", true, false}, {"moderate", NULL, false, false},
        {"delete", "text", true, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sample_t s;
        sample_init(&s, 7, true);
        ck_assert_int_eq(s.ev.type, CHAT_EV_UPDATE);
        s.ev.op = cases[c].op;
        s.ev.removed = cases[c].removed;
        if (cases[c].drop != NULL)
            field_set(&s, cases[c].drop, false);
        char *json = NULL;
        chat_err_t err = chat_event_encode(&s.ev, &json, NULL);
        ck_assert_msg((err == CHAT_OK) == cases[c].ok, "encode case %zu", c);
        free(json);
        /* the same document, built without the codec, through decode */
        s.ev.op = "delete";
        json = encode_ok(&s.ev);
        cJSON *doc = cJSON_Parse(json);
        cJSON_ReplaceItemInObjectCaseSensitive(doc, "op", cJSON_CreateString(cases[c].op));
        char *patched = cJSON_PrintUnformatted(doc);
        expect_decode(patched, strlen(patched), cases[c].ok);
        free(patched);
        cJSON_Delete(doc);
        free(json);
        sample_free(&s);
    }
}
END_TEST

/* Notices: every notice round-trips in send and msg, an empty text only with a notice, a
 * target only with one, an unknown notice is refused; a delete's reason round-trips. */
START_TEST(test_notice_rules)
{
    static const char *const notices[] = {"room_created", "member_added", "member_removed",
                                          "room_renamed", "room_deleted"};
    for (size_t n = 0; n < sizeof notices / sizeof notices[0]; n++) {
        for (size_t i = 0; i < 2; i++) {
            sample_t s;
            sample_init(&s, i == 0 ? 0 : 5, true);
            s.ev.user = "system";
            s.ev.notice = notices[n];
            s.ev.text = "";
            free(round_trip(&s));
            sample_free(&s);
        }
    }
    expect_patched(CHAT_EV_SEND, "notice", "\"member_banned\"", false);
    expect_patched(CHAT_EV_SEND, "notice", "7", false);
    expect_patched(CHAT_EV_MSG, "notice", "\"\"", false);
    expect_patched(CHAT_EV_SEND, "target", "\"\"", false);
    expect_patched(CHAT_EV_SEND, "text", "\"\"", true); /* the full sample has a notice */
    ck_assert(chat_event_notice_valid("room_deleted"));
    ck_assert(!chat_event_notice_valid("room_deleted "));
    ck_assert(!chat_event_notice_valid(NULL));

    sample_t s;
    sample_init(&s, 0, false);
    s.ev.text = "";
    char *json = NULL;
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    s.ev.text = "hi";
    s.ev.target = "bob";
    ck_assert_int_eq(chat_event_encode(&s.ev, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_ptr_null(json);
    sample_free(&s);
    EXPECT_TEXT("{\"v\":1,\"type\":\"send\",\"tenant\":\"a\",\"room\":\"r\",\"user\":\"u\","
                "\"cid\":\"c\",\"text\":\"\",\"ts\":1,\"origin\":{\"gw\":\"g\",\"conn\":\"c\"}}",
                false);

    sample_init(&s, 2, true);
    ck_assert_int_eq(s.ev.type, CHAT_EV_DELETE);
    ck_assert_str_eq(s.ev.reason, "spam");
    free(round_trip(&s));
    sample_free(&s);
    expect_patched(CHAT_EV_DELETE, "reason", "\"\"", false);
}
END_TEST

START_TEST(test_decode_errbuf)
{
    const char *bad = "{\"v\":1,\"type\":\"typing\",\"tenant\":\"a b\",\"room\":\"r\","
                      "\"user\":\"u\",\"ts\":1}";
    chat_event_t ev;
    ck_assert_int_eq(chat_event_decode(bad, strlen(bad), &ev, NULL, 0), CHAT_ERR_INVALID);
    char tiny[8];
    ck_assert_int_eq(chat_event_decode(bad, strlen(bad), &ev, tiny, sizeof tiny), CHAT_ERR_INVALID);
    ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
    char why[128];
    ck_assert_int_eq(chat_event_decode(bad, strlen(bad), &ev, why, sizeof why), CHAT_ERR_INVALID);
    ck_assert_msg(strstr(why, "tenant") != NULL, "reason '%s' does not name the field", why);
}
END_TEST

START_TEST(test_clear)
{
    chat_event_t ev = {0};
    chat_event_clear(NULL);
    chat_event_clear(&ev);
    chat_event_t built = {.type = CHAT_EV_TYPING, .tenant = "a", .room = "r"};
    chat_event_clear(&built);
    assert_zeroed(&built);
    const char *ok = "{\"v\":1,\"type\":\"typing\",\"tenant\":\"a\",\"room\":\"r\","
                     "\"user\":\"u\",\"ts\":1}";
    ck_assert_int_eq(chat_event_decode(ok, strlen(ok), &ev, NULL, 0), CHAT_OK);
    ck_assert_ptr_nonnull(ev.priv_);
    chat_event_clear(&ev);
    assert_zeroed(&ev);
    chat_event_clear(&ev);
}
END_TEST

static Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("events");
    tcase_add_test(tc, test_type_names);
    tcase_add_test(tc, test_round_trip_full);
    tcase_add_test(tc, test_round_trip_required_only);
    tcase_add_test(tc, test_encode_exact_bytes);
    tcase_add_test(tc, test_encode_exact_integers);
    tcase_add_test(tc, test_encode_missing_required);
    tcase_add_test(tc, test_encode_text_limit);
    tcase_add_test(tc, test_encode_invalid_values);
    tcase_add_test(tc, test_decode_missing_required);
    tcase_add_test(tc, test_decode_patched);
    tcase_add_test(tc, test_decode_not_an_event);
    tcase_add_test(tc, test_decode_repeated_member);
    tcase_add_test(tc, test_decode_unterminated_buffer);
    tcase_add_test(tc, test_decode_lengths);
    tcase_add_test(tc, test_update_op_rules);
    tcase_add_test(tc, test_notice_rules);
    tcase_add_test(tc, test_decode_errbuf);
    tcase_add_test(tc, test_clear);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    chat_log_set_level(CHAT_LOG_OFF); /* refusals are logged; expected here */
    return chat_test_suite_run(events_suite(), false);
}
