/* Unit tests of common/codec.c: round trips of every event type, every rule decode enforces,
 * encode's refusals, the msg, ack and error client frames, chat.deliver batches, record
 * keys and the Redis registration keys. The field lists below are proto/README.md's
 * catalogue, written out independently of the codec's own tables. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/codec.h"
#include "common/log.h"
#include "common/names.h"

#define ID "65f1c0ffee0123456789abcd"
#define TS INT64_C(1732406400123)
#define THUMBS "\xf0\x9f\x91\x8d"

/* proto/README.md: the JSON keys of each type, "v" and "type" left out. */
static const struct {
    chat_event_type_t type;
    const char *required;
    const char *optional;
} catalogue[] = {
    {CHAT_EV_SEND, "tenant room user cid text ts origin", "name"},
    {CHAT_EV_EDIT, "tenant room user id text ts origin", "rid"},
    {CHAT_EV_DELETE, "tenant room user id ts origin", "rid"},
    {CHAT_EV_REACT, "tenant room user id emoji on ts origin", "rid"},
    {CHAT_EV_READ, "tenant room user seq ts", ""},
    {CHAT_EV_MSG, "tenant room seq id from text ts cid", "name edited reactions origin"},
    {CHAT_EV_ACK, "tenant room seq id ts cid origin", ""},
    {CHAT_EV_UPDATE, "tenant room id seq op ts", "text reactions removed reason user rid origin"},
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
    STR_FIELD("action", action, "remove")
    STR_FIELD("rule", rule, "words")
    STR_FIELD("channel", channel, "webpush")
    STR_FIELD("error", error, "410 Gone")
    STR_FIELD("origin", origin_gw, "gw-0")
    STR_FIELD("reactions", reactions, s->reactions)
    STR_FIELD("payload", payload, s->payload)
    NUM_FIELD("seq", seq, 42)
    NUM_FIELD("ts", ts, TS)
    NUM_FIELD("attempts", attempts, 3)
    NUM_FIELD("on", on, true)
    NUM_FIELD("online", online, true)
    NUM_FIELD("removed", removed, true)
    NUM_FIELD("edited", edited, true)
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
#undef SAME_STR
#define SAME_NUM(f) ck_assert_msg(a->has_##f == b->has_##f && a->f == b->f, "field " #f " differs")
    SAME_NUM(seq), SAME_NUM(ts), SAME_NUM(attempts), SAME_NUM(on), SAME_NUM(online);
    SAME_NUM(removed), SAME_NUM(edited);
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
    {CHAT_EV_READ, "origin", "{\"gw\":\"g\",\"conn\":\"c\"}", false},
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
    {CHAT_EV_SEND, "text", "\"\"", false},
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

/* ---- record keys ---- */

START_TEST(test_event_key)
{
    char buf[32];
    ck_assert_int_eq(chat_event_key("acme", "general", buf, sizeof buf), 12);
    ck_assert_str_eq(buf, "acme/general");
    ck_assert_int_eq(chat_event_key("acme", "general", buf, 13), 12);
    ck_assert_int_eq(chat_event_key("acme", "general", buf, 12), -1);
    ck_assert_int_eq(chat_event_key("acme", "dm:a:b", buf, sizeof buf), 11);
    ck_assert_str_eq(buf, "acme/dm:a:b");
    ck_assert_int_eq(chat_event_key(NULL, "general", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_event_key("acme", NULL, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_event_key("", "general", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_event_key("acme", "", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_event_key("acme", "general", NULL, 0), -1);
}
END_TEST

/* ---- the msg frame ---- */

static char *frame_text(const chat_event_t *msg)
{
    cJSON *frame = chat_frame_msg_new(msg);
    ck_assert_ptr_nonnull(frame);
    char *text = cJSON_PrintUnformatted(frame);
    cJSON_Delete(frame);
    return text;
}

START_TEST(test_frame_msg)
{
    sample_t s;
    sample_init(&s, 5, true);
    ck_assert_int_eq(s.ev.type, CHAT_EV_MSG);
    cJSON *frame = chat_frame_msg_new(&s.ev);
    sample_free(&s); /* the frame owns its copy of the reactions */
    char *text = cJSON_PrintUnformatted(frame);
    ck_assert_str_eq(text, "{\"type\":\"msg\",\"room\":\"general\",\"seq\":42,\"id\":\"" ID "\","
                           "\"from\":\"alice\",\"name\":\"Alice\",\"text\":\"hello\","
                           "\"ts\":1732406400123,\"cid\":\"c-0001\",\"edited\":true,"
                           "\"reactions\":{\"" THUMBS "\":[\"alice\",\"bob\"],"
                           "\"\xf0\x9f\x8e\x89\":[]}}");
    free(text);
    cJSON_Delete(frame);

    chat_event_t bare = {.type = CHAT_EV_MSG,
                         .room = "r",
                         .seq = 1,
                         .has_seq = true,
                         .id = ID,
                         .user = "u",
                         .text = "hi",
                         .ts = 0,
                         .has_ts = true};
    text = frame_text(&bare);
    ck_assert_str_eq(text, "{\"type\":\"msg\",\"room\":\"r\",\"seq\":1,\"id\":\"" ID
                           "\",\"from\":\"u\",\"text\":\"hi\",\"ts\":0}");
    free(text);
}
END_TEST

START_TEST(test_frame_msg_incomplete)
{
    chat_event_t bare = {.type = CHAT_EV_MSG,
                         .room = "r",
                         .seq = 1,
                         .has_seq = true,
                         .id = ID,
                         .user = "u",
                         .text = "hi",
                         .ts = 5,
                         .has_ts = true};
    ck_assert_ptr_null(chat_frame_msg_new(NULL));
    chat_event_t e = bare;
    e.type = CHAT_EV_SEND;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.text = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.has_seq = false;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.has_ts = false;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.user = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.room = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.id = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
}
END_TEST

/* Prints frame compactly, deletes it and compares the bytes. */
static void expect_frame(cJSON *frame, const char *want)
{
    ck_assert_ptr_nonnull(frame);
    char *text = cJSON_PrintUnformatted(frame);
    ck_assert_str_eq(text, want);
    free(text);
    cJSON_Delete(frame);
}

/* The ack of a send, from the msg event or the ack of a resent cid: the same bytes, the
 * schema's member order, integers exact even at 2^53 - 1. */
START_TEST(test_frame_ack)
{
    chat_event_t ev = {.type = CHAT_EV_MSG,
                       .tenant = "acme",
                       .room = "general",
                       .user = "alice",
                       .text = "hi",
                       .cid = "c-1",
                       .id = ID,
                       .seq = CHAT_JSON_INT_MAX,
                       .has_seq = true,
                       .ts = TS,
                       .has_ts = true};
    const char *want = "{\"type\":\"ack\",\"cid\":\"c-1\",\"room\":\"general\","
                       "\"seq\":9007199254740991,\"id\":\"" ID "\",\"ts\":1732406400123}";
    expect_frame(chat_frame_ack_new(&ev), want);
    ev.type = CHAT_EV_ACK;
    expect_frame(chat_frame_ack_new(&ev), want);
    chat_event_t e = ev;
    e.type = CHAT_EV_SEND;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.cid = NULL;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.has_seq = false;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.has_ts = false;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.id = NULL;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.room = NULL;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    ck_assert_ptr_null(chat_frame_ack_new(NULL));
}
END_TEST

START_TEST(test_frame_error)
{
    expect_frame(chat_frame_error_new("forbidden", "not a member", "r-1", "c-1"),
                 "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"not a member\","
                 "\"rid\":\"r-1\",\"cid\":\"c-1\"}");
    expect_frame(chat_frame_error_new("internal", "retry", NULL, NULL),
                 "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"retry\"}");
    expect_frame(
        chat_frame_error_new("too_large", "long", NULL, "c-2"),
        "{\"type\":\"error\",\"code\":\"too_large\",\"message\":\"long\",\"cid\":\"c-2\"}");
    ck_assert_ptr_null(chat_frame_error_new(NULL, "m", NULL, NULL));
    ck_assert_ptr_null(chat_frame_error_new("internal", NULL, NULL, NULL));
    ck_assert_ptr_null(chat_frame_error_new("", "m", NULL, NULL));
    ck_assert_ptr_null(chat_frame_error_new("internal", "", NULL, NULL));
}
END_TEST

/* ---- chat.deliver ---- */

static void assert_items_equal(const chat_deliver_item_t *a, const chat_deliver_item_t *b)
{
    ck_assert_str_eq(a->tenant, b->tenant);
    ck_assert_str_eq(a->room, b->room);
    ck_assert(a->seq == b->seq);
    ck_assert(cJSON_Compare(a->frame, b->frame, true));
    ck_assert_uint_eq(a->nconns, b->nconns);
    ck_assert((a->conns == NULL) == (b->conns == NULL));
    for (size_t i = 0; i < a->nconns; i++)
        ck_assert_str_eq(a->conns[i], b->conns[i]);
}

START_TEST(test_deliver_round_trip)
{
    cJSON *msg = cJSON_Parse("{\"type\":\"msg\",\"room\":\"general\",\"seq\":42,\"id\":\"" ID
                             "\",\"from\":\"alice\",\"text\":\"hi\",\"ts\":1}");
    cJSON *ack = cJSON_Parse("{\"type\":\"ack\",\"cid\":\"c\",\"room\":\"general\",\"seq\":42,"
                             "\"id\":\"" ID "\",\"ts\":1}");
    const char *conns[] = {"c-17", "c-18"};
    chat_deliver_item_t items[] = {
        {.tenant = "acme", .room = "general", .seq = 42, .frame = msg},
        {.tenant = "acme", .room = "general", .frame = ack, .conns = conns, .nconns = 2},
    };
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_deliver_encode(items, 2, &json, &len), CHAT_OK);
    ck_assert_uint_eq(len, strlen(json));
    ck_assert_msg(strncmp(json, "{\"v\":1,\"type\":\"deliver\",\"items\":[", 33) == 0, "%s", json);
    chat_deliver_t d;
    char why[128] = "";
    ck_assert_msg(chat_deliver_decode(json, len, &d, why, sizeof why) == CHAT_OK, "%s", why);
    ck_assert_uint_eq(d.nitems, 2);
    assert_items_equal(&items[0], &d.items[0]);
    assert_items_equal(&items[1], &d.items[1]);
    ck_assert_ptr_null(d.items[0].conns); /* no conns: every subscriber */
    chat_deliver_clear(&d);
    ck_assert_ptr_null(d.items);
    ck_assert_uint_eq(d.nitems, 0);
    chat_deliver_clear(&d);
    chat_deliver_clear(NULL);

    cJSON *doc = cJSON_Parse(json);
    cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), 0);
    cJSON *second = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "items"), 1);
    ck_assert(!cJSON_HasObjectItem(first, "conns"));
    ck_assert(!cJSON_HasObjectItem(second, "seq")); /* seq 0: absent */
    cJSON_Delete(doc);
    free(json);
    cJSON_Delete(msg);
    cJSON_Delete(ack);
}
END_TEST

/* A frame serialised by its producer (a raw node) is written as it is and decodes to the
 * same frame; a raw node that is not a JSON object is refused. */
START_TEST(test_deliver_raw_frame)
{
    const char *text = "{\"type\":\"msg\",\"room\":\"general\",\"seq\":7,\"id\":\"" ID
                       "\",\"from\":\"alice\",\"text\":\"hi\",\"ts\":1}";
    cJSON *raw = cJSON_CreateRaw(text);
    chat_deliver_item_t item = {.tenant = "acme", .room = "general", .seq = 7, .frame = raw};
    char *json = NULL;
    ck_assert_int_eq(chat_deliver_encode(&item, 1, &json, NULL), CHAT_OK);
    ck_assert_ptr_nonnull(strstr(json, text));
    chat_deliver_t d;
    char why[128] = "";
    ck_assert_msg(chat_deliver_decode(json, strlen(json), &d, why, sizeof why) == CHAT_OK, "%s",
                  why);
    ck_assert_uint_eq(d.nitems, 1);
    cJSON *expected = cJSON_Parse(text);
    ck_assert(cJSON_Compare(expected, d.items[0].frame, true));
    cJSON_Delete(expected);
    chat_deliver_clear(&d);
    free(json);
    cJSON_Delete(raw);

    cJSON *not_object = cJSON_CreateRaw("[1]");
    item.frame = not_object;
    json = NULL;
    ck_assert_int_eq(chat_deliver_encode(&item, 1, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_ptr_null(json);
    cJSON_Delete(not_object);
}
END_TEST

START_TEST(test_deliver_encode_rejects)
{
    cJSON *frame = cJSON_Parse("{\"type\":\"pong\"}");
    cJSON *untyped = cJSON_Parse("{\"room\":\"r\"}");
    const char *conns[] = {"c-1", ""};
    const chat_deliver_item_t good = {.tenant = "acme", .room = "general", .frame = frame};
    chat_deliver_item_t bad[8];
    for (size_t i = 0; i < 8; i++)
        bad[i] = good;
    bad[0].tenant = "a b";
    bad[1].room = NULL;
    bad[2].frame = NULL;
    bad[3].frame = untyped;
    bad[4].conns = conns, bad[4].nconns = 0;
    bad[5].conns = conns, bad[5].nconns = 2; /* "" is not a connection id */
    bad[6].seq = -1;
    bad[7].seq = INT64_C(9007199254740992);
    char *json = NULL;
    for (size_t i = 0; i < 8; i++) {
        chat_deliver_item_t batch[2] = {good, bad[i]};
        ck_assert_msg(chat_deliver_encode(batch, 2, &json, NULL) == CHAT_ERR_INVALID,
                      "bad item %zu encoded", i);
    }
    ck_assert_int_eq(chat_deliver_encode(&good, 0, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_deliver_encode(NULL, 1, &json, NULL), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_deliver_encode(&good, 1, NULL, NULL), CHAT_ERR_INVALID);
    ck_assert_ptr_null(json);
    cJSON_Delete(frame);
    cJSON_Delete(untyped);
}
END_TEST

static const char *const bad_deliveries[] = {
    "",
    "[]",
    "{\"v\":1,\"type\":\"deliver\"}",
    "{\"v\":2,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"msg\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"key\":\"a/r\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":{}}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[7]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"room\":\"r\",\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"a b\","
    "\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\",\"gw\":\"g\","
    "\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\",\"seq\":0,"
    "\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\",\"seq\":\"1\","
    "\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\"}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\",\"frame\":[]}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"room\":\"r\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":5}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"},\"conns\":[]}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"},\"conns\":\"c\"}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"},\"conns\":[\"c\",1]}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"},\"conns\":[\"\"]}]}",
    /* a bad item after good ones that allocated their conns */
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"},\"conns\":[\"c1\",\"c2\"]},{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"},\"conns\":[\"c3\"]},{\"tenant\":\"a\",\"room\":\"r\"}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"frame\":{\"type\":\"pong\"},\"conns\":[\"c1\",5]}]}",
};

START_TEST(test_deliver_decode_rejects)
{
    for (size_t i = 0; i < sizeof bad_deliveries / sizeof bad_deliveries[0]; i++) {
        const char *text = bad_deliveries[i];
        chat_deliver_t d;
        memset(&d, 0xa5, sizeof d);
        char why[128] = "";
        ck_assert_msg(chat_deliver_decode(text, strlen(text), &d, why, sizeof why) ==
                          CHAT_ERR_INVALID,
                      "accepted %s", text);
        ck_assert_msg(why[0] != '\0', "no reason for %s", text);
        ck_assert(d.items == NULL && d.nitems == 0 && d.priv_ == NULL);
    }
}
END_TEST

START_TEST(test_deliver_decode_accepts)
{
    const char *text = "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"conns\":[\"c1\"],"
                       "\"frame\":{\"type\":\"pong\"},\"room\":\"r\",\"tenant\":\"a\"}]}\n";
    chat_deliver_t d;
    ck_assert_int_eq(chat_deliver_decode(text, strlen(text), &d, NULL, 0), CHAT_OK);
    ck_assert_uint_eq(d.nitems, 1);
    ck_assert(d.items[0].seq == 0);
    ck_assert_uint_eq(d.items[0].nconns, 1);
    ck_assert_str_eq(d.items[0].conns[0], "c1");
    ck_assert_str_eq(cJSON_GetObjectItem(d.items[0].frame, "type")->valuestring, "pong");
    chat_deliver_clear(&d);
    ck_assert_int_eq(chat_deliver_decode(text, strlen(text), NULL, NULL, 0), CHAT_ERR_INVALID);
}
END_TEST

/* The registration keys gateways write and broadcast reads: one cluster slot per room
 * (hash tag), and room for the longest names. */
START_TEST(test_registry_keys)
{
    char buf[CHAT_REGISTRY_KEY_MAX];
    ck_assert_int_eq(chat_registry_key("acme", "general", CHAT_REGISTRY_GWS, buf, sizeof buf),
                     (int)strlen("chat:room:{acme/general}:gws"));
    ck_assert_str_eq(buf, "chat:room:{acme/general}:gws");
    chat_registry_key("acme", "dm:a:b", CHAT_REGISTRY_ONLINE, buf, sizeof buf);
    ck_assert_str_eq(buf, "chat:room:{acme/dm:a:b}:online");
    char small[10];
    ck_assert_int_eq(chat_registry_key("acme", "general", CHAT_REGISTRY_GWS, small, sizeof small),
                     -1);
    ck_assert_int_eq(chat_registry_key(NULL, "general", CHAT_REGISTRY_GWS, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_registry_key("acme", "", CHAT_REGISTRY_GWS, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_registry_key("acme", "general", (chat_registry_set_t)7, buf, sizeof buf),
                     -1);
    char tenant[CHAT_TENANT_MAX + 1], room[CHAT_ROOM_MAX + 1];
    memset(tenant, 't', CHAT_TENANT_MAX);
    tenant[CHAT_TENANT_MAX] = '\0';
    memset(room, 'r', CHAT_ROOM_MAX);
    room[CHAT_ROOM_MAX] = '\0';
    ck_assert_int_eq(chat_registry_key(tenant, room, CHAT_REGISTRY_ONLINE, buf, sizeof buf),
                     (int)sizeof buf - 1);
    char key[CHAT_ROOM_KEY_MAX];
    ck_assert_int_eq(chat_event_key(tenant, room, key, sizeof key), (int)sizeof key - 1);
}
END_TEST

static Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
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
    tcase_add_test(tc, test_decode_errbuf);
    tcase_add_test(tc, test_clear);
    tcase_add_test(tc, test_event_key);
    tcase_add_test(tc, test_registry_keys);
    suite_add_tcase(s, tc);

    TCase *frames = tcase_create("frames");
    tcase_add_test(frames, test_frame_msg);
    tcase_add_test(frames, test_frame_msg_incomplete);
    tcase_add_test(frames, test_frame_ack);
    tcase_add_test(frames, test_frame_error);
    suite_add_tcase(s, frames);

    TCase *deliver = tcase_create("deliver");
    tcase_add_test(deliver, test_deliver_round_trip);
    tcase_add_test(deliver, test_deliver_raw_frame);
    tcase_add_test(deliver, test_deliver_encode_rejects);
    tcase_add_test(deliver, test_deliver_decode_rejects);
    tcase_add_test(deliver, test_deliver_decode_accepts);
    suite_add_tcase(s, deliver);
    return s;
}

int main(void)
{
    chat_log_set_level(CHAT_LOG_OFF); /* encode's refusals are logged; expected here */
    SRunner *sr = srunner_create(codec_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
