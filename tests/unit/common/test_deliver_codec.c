/* Unit tests of common/deliver_codec.c: chat.deliver batches round trip, frames serialised
 * by their producer pass as they are, and every malformed envelope or item is refused with
 * a reason and nothing left to free. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/deliver_codec.h"
#include "common/log.h"
#include "tests/support/util.h"

#define ID "65f1c0ffee0123456789abcd"

/* The decoded item's frame, parsed from the bytes it points at (caller deletes). */
static cJSON *frame_of(const chat_deliver_item_t *decoded)
{
    ck_assert_ptr_nonnull(decoded->frame_json);
    cJSON *f = cJSON_ParseWithLength(decoded->frame_json, decoded->frame_len);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(cJSON_GetObjectItem(f, "type")->valuestring, decoded->frame_type);
    return f;
}

/* a: the encoded item, b: the decoded one. */
static void assert_items_equal(const chat_deliver_item_t *a, const chat_deliver_item_t *b)
{
    ck_assert_str_eq(a->tenant, b->tenant);
    ck_assert_str_eq(a->room, b->room);
    ck_assert(a->seq == b->seq);
    ck_assert(a->sent == b->sent);
    cJSON *frame = frame_of(b);
    ck_assert(cJSON_Compare(a->frame, frame, true));
    cJSON_Delete(frame);
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
        {.tenant = "acme", .room = "general", .seq = 42, .sent = 1732406400007, .frame = msg},
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
    ck_assert(!cJSON_HasObjectItem(second, "seq"));  /* seq 0: absent */
    ck_assert(!cJSON_HasObjectItem(second, "sent")); /* sent 0: absent */
    ck_assert(cJSON_GetObjectItem(first, "sent")->valuedouble == 1732406400007.0);
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
    cJSON *frame = frame_of(&d.items[0]);
    ck_assert(cJSON_Compare(expected, frame, true));
    /* Passed on as the producer wrote it, byte for byte. */
    ck_assert_uint_eq(d.items[0].frame_len, strlen(text));
    ck_assert(memcmp(d.items[0].frame_json, text, strlen(text)) == 0);
    cJSON_Delete(frame);
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
    chat_deliver_item_t bad[9];
    for (size_t i = 0; i < 9; i++)
        bad[i] = good;
    bad[0].tenant = "a b";
    bad[1].room = NULL;
    bad[2].frame = NULL;
    bad[3].frame = untyped;
    bad[4].conns = conns, bad[4].nconns = 0;
    bad[5].conns = conns, bad[5].nconns = 2; /* "" is not a connection id */
    bad[6].seq = -1;
    bad[7].seq = INT64_C(9007199254740992);
    bad[8].sent = -5;
    char *json = NULL;
    for (size_t i = 0; i < 9; i++) {
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
    /* sent: a positive integer */
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"sent\":0,\"frame\":{\"type\":\"pong\"}}]}",
    "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
    "\"sent\":\"1\",\"frame\":{\"type\":\"pong\"}}]}",
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

/* Valid JSON in every form the producer does not use: escaped keys and values, whitespace,
 * members in any order, a frame whose type is not its first member and whose strings hold
 * braces and quotes: decoded exactly, frame bytes untouched. */
START_TEST(test_deliver_decode_any_json)
{
    const char *frame = "{ \"text\" : \"a } \\\" { [\", \"n\":[1,{\"x\":[]},true,null,-2.5e3],"
                        "\"type\":\"msg\", \"type2\":\"x\"}";
    char text[1024];
    snprintf(text, sizeof text,
             " { \"items\" : [ { \"\\u0074enant\" : \"ac\\u006De\", \"frame\" : %s ,"
             "\"room\":\"gen\\u0065ral\", \"seq\" : 4.2e1, \"conns\" : [ \"c\\u00e9-1\" ] } ] ,"
             "\"type\":\"deliver\", \"v\" : 1.0 } \r\n",
             frame);
    chat_deliver_t d;
    char why[128] = "";
    ck_assert_msg(chat_deliver_decode(text, strlen(text), &d, why, sizeof why) == CHAT_OK, "%s",
                  why);
    ck_assert_uint_eq(d.nitems, 1);
    ck_assert_str_eq(d.items[0].tenant, "acme");
    ck_assert_str_eq(d.items[0].room, "general");
    ck_assert(d.items[0].seq == 42);
    ck_assert_str_eq(d.items[0].conns[0], "c\xc3\xa9-1");
    ck_assert_str_eq(d.items[0].frame_type, "msg");
    ck_assert_uint_eq(d.items[0].frame_len, strlen(frame));
    ck_assert(memcmp(d.items[0].frame_json, frame, strlen(frame)) == 0);
    chat_deliver_clear(&d);
}
END_TEST

/* What the in-place reader must refuse besides bad_deliveries: broken JSON inside a frame,
 * a frame whose type is not a string, an escaped NUL in a name, nesting beyond its bound. */
START_TEST(test_deliver_decode_rejects_in_place)
{
    char deep[512] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    char deep_record[1024];
    snprintf(deep_record, sizeof deep_record,
             "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
             "\"frame\":{\"type\":\"pong\",\"x\":%s}}]}",
             deep);
    const char *bad[] = {
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"pong\",}}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"pong\",\"t\":tru}}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":[\"pong\"]}}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\\u0000\",\"room\":\"r\","
        "\"frame\":{\"type\":\"pong\"}}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"pong\\uD800\"}}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"pong\"}}]} x",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"pong\"}}]",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"pong\"},\"seq\":1.5}]}",
        deep_record,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chat_deliver_t d;
        char why[128] = "";
        ck_assert_msg(chat_deliver_decode(bad[i], strlen(bad[i]), &d, why, sizeof why) ==
                          CHAT_ERR_INVALID,
                      "accepted %s", bad[i]);
        ck_assert_msg(why[0] != '\0', "no reason for %s", bad[i]);
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
    ck_assert_str_eq(d.items[0].frame_type, "pong");
    cJSON *frame = frame_of(&d.items[0]);
    cJSON_Delete(frame);
    chat_deliver_clear(&d);
    ck_assert_int_eq(chat_deliver_decode(text, strlen(text), NULL, NULL, 0), CHAT_ERR_INVALID);
}
END_TEST

/* except_user round trips in an item without conns; it is refused with conns, empty, or
 * not a valid user id, in either direction. */
START_TEST(test_deliver_except_user)
{
    cJSON *typing = cJSON_Parse("{\"type\":\"typing\",\"room\":\"general\",\"user\":\"bob\"}");
    chat_deliver_item_t item = {
        .tenant = "acme", .room = "general", .frame = typing, .except_user = "bob"};
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_deliver_encode(&item, 1, &json, &len), CHAT_OK);
    chat_deliver_t d;
    char why[128] = "";
    ck_assert_msg(chat_deliver_decode(json, len, &d, why, sizeof why) == CHAT_OK, "%s", why);
    ck_assert_str_eq(d.items[0].except_user, "bob");
    ck_assert_ptr_null(d.items[0].conns);
    chat_deliver_clear(&d);
    free(json);

    const char *conns[] = {"c-1"};
    chat_deliver_item_t with_conns = item;
    with_conns.conns = conns;
    with_conns.nconns = 1;
    chat_deliver_item_t empty = item;
    empty.except_user = "";
    ck_assert_int_eq(chat_deliver_encode(&with_conns, 1, &json, &len), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_deliver_encode(&empty, 1, &json, &len), CHAT_ERR_INVALID);
    cJSON_Delete(typing);

    const char *bad[] = {
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"typing\"},\"except_user\":\"\"}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"typing\"},\"except_user\":7}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"typing\"},\"except_user\":\"b\",\"conns\":[\"c\"]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(chat_deliver_decode(bad[i], strlen(bad[i]), &d, why, sizeof why) ==
                          CHAT_ERR_INVALID,
                      "accepted %s", bad[i]);
        ck_assert(d.items == NULL && d.nitems == 0 && d.priv_ == NULL);
    }
}
END_TEST

/* end (and end_user) round trip on items without conns: "removed" needs end_user, "deleted"
 * takes none, no other value, never with conns; refused alike by encode and decode. */
START_TEST(test_deliver_end)
{
    cJSON *msg = cJSON_Parse("{\"type\":\"msg\",\"room\":\"team\",\"seq\":4}");
    chat_deliver_item_t items[] = {
        {.tenant = "acme",
         .room = "team",
         .seq = 4,
         .frame = msg,
         .end = "removed",
         .end_user = "carol"},
        {.tenant = "acme", .room = "team", .seq = 5, .frame = msg, .end = "deleted"},
        {.tenant = "acme", .room = "team", .seq = 6, .frame = msg},
    };
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_deliver_encode(items, 3, &json, &len), CHAT_OK);
    chat_deliver_t d;
    char why[128] = "";
    ck_assert_msg(chat_deliver_decode(json, len, &d, why, sizeof why) == CHAT_OK, "%s", why);
    ck_assert_str_eq(d.items[0].end, "removed");
    ck_assert_str_eq(d.items[0].end_user, "carol");
    ck_assert_str_eq(d.items[1].end, "deleted");
    ck_assert_ptr_null(d.items[1].end_user);
    ck_assert_ptr_null(d.items[2].end);
    chat_deliver_clear(&d);
    free(json);

    const char *conns[] = {"c-1"};
    chat_deliver_item_t bad_items[] = {
        {.tenant = "acme", .room = "team", .frame = msg, .end = "removed"},
        {.tenant = "acme", .room = "team", .frame = msg, .end = "deleted", .end_user = "x"},
        {.tenant = "acme", .room = "team", .frame = msg, .end = "kicked", .end_user = "x"},
        {.tenant = "acme", .room = "team", .frame = msg, .end_user = "x"},
        {.tenant = "acme",
         .room = "team",
         .frame = msg,
         .end = "deleted",
         .conns = conns,
         .nconns = 1},
    };
    for (size_t i = 0; i < sizeof bad_items / sizeof bad_items[0]; i++)
        ck_assert_msg(chat_deliver_encode(&bad_items[i], 1, &json, &len) == CHAT_ERR_INVALID,
                      "encoded bad item %zu", i);
    cJSON_Delete(msg);

    const char *bad[] = {
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"msg\"},\"end\":\"removed\"}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"msg\"},\"end\":\"deleted\",\"end_user\":\"b\"}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"msg\"},\"end\":\"gone\"}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"msg\"},\"end\":7}]}",
        "{\"v\":1,\"type\":\"deliver\",\"items\":[{\"tenant\":\"a\",\"room\":\"r\","
        "\"frame\":{\"type\":\"msg\"},\"end\":\"deleted\",\"conns\":[\"c\"]}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(chat_deliver_decode(bad[i], strlen(bad[i]), &d, why, sizeof why) ==
                          CHAT_ERR_INVALID,
                      "accepted %s", bad[i]);
}
END_TEST

static Suite *deliver_codec_suite(void)
{
    Suite *s = suite_create("deliver_codec");
    TCase *deliver = tcase_create("deliver");
    tcase_add_test(deliver, test_deliver_round_trip);
    tcase_add_test(deliver, test_deliver_raw_frame);
    tcase_add_test(deliver, test_deliver_encode_rejects);
    tcase_add_test(deliver, test_deliver_decode_rejects);
    tcase_add_test(deliver, test_deliver_decode_accepts);
    tcase_add_test(deliver, test_deliver_decode_any_json);
    tcase_add_test(deliver, test_deliver_decode_rejects_in_place);
    tcase_add_test(deliver, test_deliver_except_user);
    tcase_add_test(deliver, test_deliver_end);
    suite_add_tcase(s, deliver);
    return s;
}

int main(void)
{
    chat_log_set_level(CHAT_LOG_OFF); /* refusals are logged; expected here */
    return chat_test_suite_run(deliver_codec_suite(), false);
}
