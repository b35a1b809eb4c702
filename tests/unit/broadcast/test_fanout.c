/* Unit tests of the broadcast fan-out: which gateway gets which item, in which order, and
 * how records are split. Events are decoded from JSON with the real codec; the records are
 * read back with plain cJSON, independently of the deliver decoder. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/events.h"
#include "common/frames.h"
#include "common/contract.h"
#include "services/broadcast/fanout.h"
#include "tests/support/util.h"

#define MAX_EVENTS 512
#define MAX_RECORDS 1024

/* The events of one test batch: decoded events borrow from their parse trees, so they live
 * until the test ends. */
static chat_event_t events[MAX_EVENTS];
static size_t nevents;

typedef struct record {
    int32_t gw;
    cJSON *value;
    size_t len;
    size_t nitems;
} record_t;

static record_t records[MAX_RECORDS];
static size_t nrecords;
static broadcast_fanout_t *fan;

static void setup(void)
{
    nevents = 0;
    nrecords = 0;
    fan = broadcast_fanout_new();
    ck_assert_ptr_nonnull(fan);
    ck_assert_int_eq(broadcast_fanout_reset(fan, 4), CHAT_OK);
}

static void teardown(void)
{
    for (size_t i = 0; i < nevents; i++)
        chat_event_clear(&events[i]);
    for (size_t i = 0; i < nrecords; i++)
        cJSON_Delete(records[i].value);
    broadcast_fanout_free(fan);
}

static const chat_event_t *decode(const char *json)
{
    ck_assert_uint_lt(nevents, MAX_EVENTS);
    char why[160] = "";
    chat_event_t *ev = &events[nevents];
    ck_assert_msg(chat_event_decode(json, strlen(json), ev, why, sizeof why) == CHAT_OK,
                  "decode failed (%s): %s", why, json);
    nevents++;
    return ev;
}

/* A msg event of tenant t, room r, seq; origin gw/conn unless gw is NULL. */
static const chat_event_t *msg(const char *room, int seq, const char *gw, const char *conn)
{
    char json[512];
    char origin[128] = "";
    if (gw != NULL)
        snprintf(origin, sizeof origin, ",\"origin\":{\"gw\":\"%s\",\"conn\":\"%s\"}", gw, conn);
    snprintf(json, sizeof json,
             "{\"v\":1,\"type\":\"msg\",\"tenant\":\"acme\",\"room\":\"%s\",\"seq\":%d,"
             "\"id\":\"65f1c0ffee0123456789ab%02x\",\"from\":\"alice\",\"name\":\"Alice\","
             "\"text\":\"hello %d\",\"ts\":1732406400%03d,\"cid\":\"c-%d\"%s}",
             room, seq, seq & 0xff, seq, seq % 1000, seq, origin);
    return decode(json);
}

static const chat_event_t *ack(const char *room, int seq, const char *gw, const char *conn)
{
    char json[512];
    snprintf(json, sizeof json,
             "{\"v\":1,\"type\":\"ack\",\"tenant\":\"acme\",\"room\":\"%s\",\"seq\":%d,"
             "\"id\":\"65f1c0ffee0123456789ab%02x\",\"ts\":1732406400%03d,\"cid\":\"c-%d\","
             "\"origin\":{\"gw\":\"%s\",\"conn\":\"%s\"}}",
             room, seq, seq & 0xff, seq % 1000, seq, gw, conn);
    return decode(json);
}

static chat_err_t capture(void *ud, int32_t gw, const char *value, size_t len, size_t nitems)
{
    (void)ud;
    ck_assert_uint_lt(nrecords, MAX_RECORDS);
    ck_assert_uint_eq(strlen(value), len);
    cJSON *root = cJSON_Parse(value);
    ck_assert_ptr_nonnull(root);
    records[nrecords++] = (record_t){.gw = gw, .value = root, .len = len, .nitems = nitems};
    return CHAT_OK;
}

static void add(const chat_event_t *ev, const int32_t *gws, size_t n)
{
    ck_assert_int_eq(broadcast_fanout_add(fan, ev, gws, n), CHAT_OK);
}

static void emit(size_t max_bytes)
{
    ck_assert_int_eq(broadcast_fanout_emit(fan, max_bytes, capture, NULL), CHAT_OK);
}

/* The items of every record of gateway gw, in order, as one new array (items detached from
 * the records). */
static cJSON *items_of(int32_t gw)
{
    cJSON *all = cJSON_CreateArray();
    for (size_t i = 0; i < nrecords; i++) {
        if (records[i].gw != gw)
            continue;
        ck_assert_int_eq(cJSON_GetObjectItem(records[i].value, "v")->valueint, 1);
        ck_assert_str_eq(cJSON_GetObjectItem(records[i].value, "type")->valuestring, "deliver");
        cJSON *items = cJSON_GetObjectItem(records[i].value, "items");
        ck_assert_int_eq(cJSON_GetArraySize(items), (int)records[i].nitems);
        for (cJSON *it = items->child; it != NULL; it = it->next)
            cJSON_AddItemToArray(all, cJSON_Duplicate(it, true));
    }
    return all;
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", key);
    return v->valuestring;
}

static double num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", key);
    return v->valuedouble;
}

/* Checks a msg item for everyone in the room: seq, no conns, and the msg frame. */
static void check_msg_item(const cJSON *item, const char *room, int seq)
{
    ck_assert_str_eq(str(item, "tenant"), "acme");
    ck_assert_str_eq(str(item, "room"), room);
    ck_assert_int_eq((int)num(item, "seq"), seq);
    ck_assert_ptr_null(cJSON_GetObjectItem(item, "conns"));
    const cJSON *frame = cJSON_GetObjectItem(item, "frame");
    ck_assert_str_eq(str(frame, "type"), "msg");
    ck_assert_str_eq(str(frame, "room"), room);
    ck_assert_int_eq((int)num(frame, "seq"), seq);
    ck_assert_str_eq(str(frame, "from"), "alice");
    ck_assert_str_eq(str(frame, "name"), "Alice");
    char text[32];
    snprintf(text, sizeof text, "hello %d", seq);
    ck_assert_str_eq(str(frame, "text"), text);
    ck_assert_ptr_null(cJSON_GetObjectItem(frame, "tenant"));
    ck_assert_ptr_null(cJSON_GetObjectItem(frame, "origin"));
}

/* Checks an item that targets exactly one connection and returns its frame. */
static const cJSON *check_conn_item(const cJSON *item, const char *room, const char *conn,
                                    const char *frame_type)
{
    ck_assert_str_eq(str(item, "tenant"), "acme");
    ck_assert_str_eq(str(item, "room"), room);
    /* Only msg items carry seq: the gateway's per-subscription filter is for msg frames. */
    ck_assert_ptr_null(cJSON_GetObjectItem(item, "seq"));
    const cJSON *conns = cJSON_GetObjectItem(item, "conns");
    ck_assert_int_eq(cJSON_GetArraySize(conns), 1);
    ck_assert_str_eq(cJSON_GetArrayItem(conns, 0)->valuestring, conn);
    const cJSON *frame = cJSON_GetObjectItem(item, "frame");
    ck_assert_str_eq(str(frame, "type"), frame_type);
    return frame;
}

static void check_ack_frame(const cJSON *frame, const char *room, int seq)
{
    char cid[16];
    snprintf(cid, sizeof cid, "c-%d", seq);
    ck_assert_str_eq(str(frame, "cid"), cid);
    ck_assert_str_eq(str(frame, "room"), room);
    ck_assert_int_eq((int)num(frame, "seq"), seq);
    ck_assert_uint_eq(strlen(str(frame, "id")), 24);
    ck_assert(num(frame, "ts") >= 1732406400000.0);
    ck_assert_int_eq(cJSON_GetArraySize(frame), 6); /* type cid room seq id ts, nothing else */
}

static int count_records(int32_t gw)
{
    int n = 0;
    for (size_t i = 0; i < nrecords; i++)
        n += records[i].gw == gw;
    return n;
}

START_TEST(test_msg_to_followers_and_ack_to_origin)
{
    /* The sender is on gateway 0, which does not follow the room: it still gets the ack. */
    const int32_t gws[] = {1, 3};
    add(msg("general", 7, "0", "0.b1.5"), gws, 2);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 3);
    ck_assert_int_eq(count_records(2), 0);

    cJSON *g0 = items_of(0);
    ck_assert_int_eq(cJSON_GetArraySize(g0), 1);
    check_ack_frame(check_conn_item(cJSON_GetArrayItem(g0, 0), "general", "0.b1.5", "ack"),
                    "general", 7);
    for (int32_t gw = 1; gw <= 3; gw += 2) {
        cJSON *items = items_of(gw);
        ck_assert_int_eq(cJSON_GetArraySize(items), 1);
        check_msg_item(cJSON_GetArrayItem(items, 0), "general", 7);
        cJSON_Delete(items);
    }
    /* Both gateways got the same frame, byte for byte, and the codec's own msg frame. */
    char *f1 = cJSON_PrintUnformatted(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(records[1].value, "items"), 0), "frame"));
    char *f3 = cJSON_PrintUnformatted(cJSON_GetObjectItem(
        cJSON_GetArrayItem(cJSON_GetObjectItem(records[2].value, "items"), 0), "frame"));
    cJSON *expected = chat_frame_msg_new(&events[0]);
    char *fe = cJSON_PrintUnformatted(expected);
    ck_assert_str_eq(f1, f3);
    ck_assert_str_eq(f1, fe);
    free(f1);
    free(f3);
    free(fe);
    cJSON_Delete(expected);
    cJSON_Delete(g0);

    const broadcast_fanout_stats_t *s = broadcast_fanout_stats(fan);
    ck_assert_uint_eq(s->msg_items, 2);
    ck_assert_uint_eq(s->ack_items, 1);
    ck_assert_uint_eq(s->unknown_gateway, 0);
}
END_TEST

/* A msg event's sent (when its send was received) goes with its msg items, not with the ack. */
START_TEST(test_msg_sent_passed_on)
{
    const int32_t gws[] = {1};
    add(decode("{\"v\":1,\"type\":\"msg\",\"tenant\":\"acme\",\"room\":\"general\",\"seq\":8,"
               "\"id\":\"65f1c0ffee0123456789ab08\",\"from\":\"alice\",\"text\":\"hi\","
               "\"ts\":1732406400100,\"sent\":1732406400090,\"cid\":\"c-8\","
               "\"origin\":{\"gw\":\"0\",\"conn\":\"0.b1.5\"}}"),
        gws, 1);
    emit(BROADCAST_RECORD_MAX);
    cJSON *g1 = items_of(1);
    ck_assert(cJSON_GetObjectItem(cJSON_GetArrayItem(g1, 0), "sent")->valuedouble ==
              1732406400090.0);
    cJSON *g0 = items_of(0);
    ck_assert(!cJSON_HasObjectItem(cJSON_GetArrayItem(g0, 0), "sent")); /* the ack */
    cJSON_Delete(g0);
    cJSON_Delete(g1);
}
END_TEST

START_TEST(test_origin_follows_room)
{
    /* Sender's gateway follows too: the msg (for its sockets in the room), then the ack. */
    const int32_t gws[] = {0, 1};
    add(msg("general", 1, "1", "1.x.9"), gws, 2);
    emit(BROADCAST_RECORD_MAX);
    cJSON *g1 = items_of(1);
    ck_assert_int_eq(cJSON_GetArraySize(g1), 2);
    check_msg_item(cJSON_GetArrayItem(g1, 0), "general", 1);
    check_ack_frame(check_conn_item(cJSON_GetArrayItem(g1, 1), "general", "1.x.9", "ack"),
                    "general", 1);
    cJSON *g0 = items_of(0);
    ck_assert_int_eq(cJSON_GetArraySize(g0), 1);
    check_msg_item(cJSON_GetArrayItem(g0, 0), "general", 1);
    ck_assert_int_eq(count_records(1), 1); /* one record per gateway per batch */
    cJSON_Delete(g0);
    cJSON_Delete(g1);
}
END_TEST

START_TEST(test_msg_without_origin_or_followers)
{
    add(msg("general", 3, NULL, NULL), NULL, 0);
    const int32_t gws[] = {2};
    add(msg("general", 4, NULL, NULL), gws, 1);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 1);
    ck_assert_int_eq(records[0].gw, 2);
    cJSON *g2 = items_of(2);
    ck_assert_int_eq(cJSON_GetArraySize(g2), 1);
    check_msg_item(cJSON_GetArrayItem(g2, 0), "general", 4);
    cJSON_Delete(g2);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->ack_items, 0);
}
END_TEST

START_TEST(test_ack_and_reject_routing)
{
    /* Followers are ignored for ack and reject: only the origin connection gets them. */
    const int32_t gws[] = {0, 1, 2, 3};
    add(ack("general", 42, "2", "2.q.1"), gws, 4);
    add(decode("{\"v\":1,\"type\":\"reject\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"code\":\"too_large\",\"message\":\"text over 4000 characters\","
               "\"cid\":\"c-9\",\"origin\":{\"gw\":\"3\",\"conn\":\"3.q.7\"}}"),
        gws, 4);
    add(decode("{\"v\":1,\"type\":\"reject\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"code\":\"not_found\",\"message\":\"no such message\","
               "\"rid\":\"r-1\",\"origin\":{\"gw\":\"3\",\"conn\":\"3.q.8\"}}"),
        gws, 4);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 2);
    cJSON *g2 = items_of(2);
    ck_assert_int_eq(cJSON_GetArraySize(g2), 1);
    check_ack_frame(check_conn_item(cJSON_GetArrayItem(g2, 0), "general", "2.q.1", "ack"),
                    "general", 42);
    cJSON *g3 = items_of(3);
    ck_assert_int_eq(cJSON_GetArraySize(g3), 2);
    const cJSON *e1 = check_conn_item(cJSON_GetArrayItem(g3, 0), "general", "3.q.7", "error");
    ck_assert_str_eq(str(e1, "code"), "too_large");
    ck_assert_str_eq(str(e1, "message"), "text over 4000 characters");
    ck_assert_str_eq(str(e1, "cid"), "c-9");
    ck_assert_ptr_null(cJSON_GetObjectItem(e1, "rid"));
    ck_assert_int_eq(cJSON_GetArraySize(e1), 4);
    const cJSON *e2 = check_conn_item(cJSON_GetArrayItem(g3, 1), "general", "3.q.8", "error");
    ck_assert_str_eq(str(e2, "code"), "not_found");
    ck_assert_str_eq(str(e2, "rid"), "r-1");
    ck_assert_ptr_null(cJSON_GetObjectItem(e2, "cid"));
    cJSON_Delete(g2);
    cJSON_Delete(g3);
    const broadcast_fanout_stats_t *s = broadcast_fanout_stats(fan);
    ck_assert_uint_eq(s->ack_items, 1);
    ck_assert_uint_eq(s->error_items, 2);
    ck_assert_uint_eq(s->msg_items, 0);
}
END_TEST

START_TEST(test_read_to_followers)
{
    /* A read mark goes to every following gateway once, to all of the room's subscribers
     * (no conns), without a seq (the gateways' msg filter must not drop it). */
    const int32_t gws[] = {1, 3, 1};
    add(decode("{\"v\":1,\"type\":\"read\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"user\":\"bob\",\"seq\":7,\"ts\":1}"),
        gws, 3);
    add(decode("{\"v\":1,\"type\":\"read\",\"tenant\":\"acme\",\"room\":\"quiet\","
               "\"user\":\"bob\",\"seq\":2,\"ts\":1}"),
        NULL, 0);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 2);
    for (int32_t gw = 1; gw <= 3; gw += 2) {
        cJSON *items = items_of(gw);
        ck_assert_int_eq(cJSON_GetArraySize(items), 1);
        const cJSON *item = cJSON_GetArrayItem(items, 0);
        ck_assert_ptr_null(cJSON_GetObjectItem(item, "conns"));
        ck_assert_ptr_null(cJSON_GetObjectItem(item, "seq"));
        const cJSON *frame = cJSON_GetObjectItem(item, "frame");
        ck_assert_str_eq(str(frame, "type"), "read");
        ck_assert_str_eq(str(frame, "room"), "general");
        ck_assert_str_eq(str(frame, "user"), "bob");
        ck_assert_int_eq(cJSON_GetObjectItem(frame, "seq")->valueint, 7);
        ck_assert_int_eq(cJSON_GetArraySize(frame), 4);
        cJSON_Delete(items);
    }
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->read_items, 2);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->unhandled, 0);
}
END_TEST

START_TEST(test_order_kept)
{
    /* Two rooms interleaved; gateway 1 follows both, gateway 2 only "b". */
    const int32_t both[] = {1}, b_gws[] = {2, 1};
    for (int seq = 1; seq <= 20; seq++) {
        add(msg("a", seq, NULL, NULL), both, 1);
        add(msg("b", seq, seq % 5 == 0 ? "2" : NULL, "2.c.1"), b_gws, 2);
    }
    emit(BROADCAST_RECORD_MAX);
    cJSON *g1 = items_of(1);
    ck_assert_int_eq(cJSON_GetArraySize(g1), 40);
    for (int i = 0; i < 40; i++)
        check_msg_item(cJSON_GetArrayItem(g1, i), i % 2 == 0 ? "a" : "b", i / 2 + 1);
    cJSON *g2 = items_of(2);
    ck_assert_int_eq(cJSON_GetArraySize(g2), 24);
    int pos = 0;
    for (int seq = 1; seq <= 20; seq++) {
        check_msg_item(cJSON_GetArrayItem(g2, pos++), "b", seq);
        if (seq % 5 == 0)
            check_ack_frame(check_conn_item(cJSON_GetArrayItem(g2, pos++), "b", "2.c.1", "ack"),
                            "b", seq);
    }
    cJSON_Delete(g1);
    cJSON_Delete(g2);
}
END_TEST

START_TEST(test_unknown_gateway_skipped)
{
    /* 4 partitions: gateways 0..3. 7 is skipped, the others still get their items. */
    const int32_t gws[] = {1, 7, -3};
    add(msg("general", 1, "9", "9.a.1"), gws, 3);
    add(msg("general", 2, "gw-0", "x"), gws, 1);
    add(msg("general", 3, "01", "x"), gws, 1);
    add(ack("general", 1, "4", "4.a.1"), NULL, 0);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 1);
    ck_assert_int_eq(records[0].gw, 1);
    ck_assert_uint_eq(records[0].nitems, 3);
    const broadcast_fanout_stats_t *s = broadcast_fanout_stats(fan);
    ck_assert_uint_eq(s->msg_items, 3);
    ck_assert_uint_eq(s->ack_items, 0);
    /* 7 and -3, three bad origins (9, gw-0, 01) and the ack's 4. */
    ck_assert_uint_eq(s->unknown_gateway, 6);
}
END_TEST

START_TEST(test_duplicate_followers)
{
    const int32_t gws[] = {1, 1, 2, 1};
    add(msg("general", 1, NULL, NULL), gws, 4);
    add(msg("general", 2, NULL, NULL), gws, 4);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->msg_items, 4);
    cJSON *g1 = items_of(1);
    ck_assert_int_eq(cJSON_GetArraySize(g1), 2);
    cJSON_Delete(g1);
}
END_TEST

START_TEST(test_other_types_skipped)
{
    const int32_t gws[] = {0};
    /* a verdict belongs to chat.moderation: nothing broadcast routes */
    add(decode("{\"v\":1,\"type\":\"verdict\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"id\":\"65f1c0ffee0123456789abcd\",\"seq\":4,\"action\":\"remove\","
               "\"reason\":\"banned word\",\"ts\":1}"),
        gws, 1);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 0);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->unhandled, 1);
}
END_TEST

/* An update goes to every follower as one shared frame whose item seq is the useq (what the
 * gateways filter updates by), then its ack {rid, room, id, seq, op, useq} to the actor; the
 * ack of an update that changed nothing goes to the actor alone. */
START_TEST(test_update_routed)
{
    const int32_t gws[] = {1, 2};
    add(decode("{\"v\":1,\"type\":\"update\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"id\":\"65f1c0ffee0123456789abcd\",\"seq\":4,\"useq\":9,\"op\":\"edit\","
               "\"ts\":1,\"text\":\"fixed\",\"edited\":1,\"user\":\"alice\",\"rid\":\"e-1\","
               "\"origin\":{\"gw\":\"3\",\"conn\":\"3.x.1\"}}"),
        gws, 2);
    add(decode("{\"v\":1,\"type\":\"ack\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"id\":\"65f1c0ffee0123456789abcd\",\"seq\":4,\"op\":\"react\",\"useq\":9,"
               "\"rid\":\"r-1\",\"origin\":{\"gw\":\"2\",\"conn\":\"2.x.1\"}}"),
        NULL, 0);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->update_items, 2);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->ack_items, 2);
    cJSON *g1 = items_of(1);
    ck_assert_int_eq(cJSON_GetArraySize(g1), 1);
    cJSON *item = cJSON_GetArrayItem(g1, 0);
    ck_assert_int_eq(cJSON_GetObjectItem(item, "seq")->valueint, 9);
    ck_assert_ptr_null(cJSON_GetObjectItem(item, "conns"));
    cJSON *frame = cJSON_GetObjectItem(item, "frame");
    ck_assert_str_eq(cJSON_GetObjectItem(frame, "type")->valuestring, "update");
    ck_assert_int_eq(cJSON_GetObjectItem(frame, "useq")->valueint, 9);
    ck_assert_int_eq(cJSON_GetObjectItem(frame, "seq")->valueint, 4);
    ck_assert_str_eq(cJSON_GetObjectItem(frame, "text")->valuestring, "fixed");
    ck_assert_ptr_null(cJSON_GetObjectItem(frame, "rid"));
    cJSON_Delete(g1);
    cJSON *g2 = items_of(2);
    ck_assert_int_eq(cJSON_GetArraySize(g2), 2); /* the update, then the other ack */
    frame = cJSON_GetObjectItem(cJSON_GetArrayItem(g2, 1), "frame");
    ck_assert_str_eq(cJSON_GetObjectItem(frame, "type")->valuestring, "ack");
    ck_assert_str_eq(cJSON_GetObjectItem(frame, "rid")->valuestring, "r-1");
    ck_assert_str_eq(cJSON_GetObjectItem(frame, "op")->valuestring, "react");
    cJSON_Delete(g2);
    cJSON *g3 = items_of(3);
    ck_assert_int_eq(cJSON_GetArraySize(g3), 1);
    item = cJSON_GetArrayItem(g3, 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(item, "seq"));
    frame = cJSON_GetObjectItem(item, "frame");
    ck_assert_str_eq(cJSON_GetObjectItem(frame, "type")->valuestring, "ack");
    ck_assert_str_eq(cJSON_GetObjectItem(frame, "rid")->valuestring, "e-1");
    ck_assert_int_eq(cJSON_GetObjectItem(frame, "useq")->valueint, 9);
    ck_assert_ptr_null(cJSON_GetObjectItem(frame, "cid"));
    cJSON_Delete(g3);
}
END_TEST

/* typing and presence: one shared frame per event to every follower, once per gateway;
 * both skip the sockets of the user they are about (except_user); typing carries the name;
 * nothing without followers. */
START_TEST(test_typing_and_presence_to_followers)
{
    const int32_t gws[] = {1, 3, 1};
    add(decode("{\"v\":1,\"type\":\"typing\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"user\":\"bob\",\"name\":\"Bob\",\"ts\":1}"),
        gws, 3);
    add(decode("{\"v\":1,\"type\":\"presence\",\"tenant\":\"acme\",\"room\":\"general\","
               "\"user\":\"carol\",\"online\":false,\"ts\":1}"),
        gws, 2);
    add(decode("{\"v\":1,\"type\":\"typing\",\"tenant\":\"acme\",\"room\":\"quiet\","
               "\"user\":\"bob\",\"ts\":1}"),
        NULL, 0);
    emit(BROADCAST_RECORD_MAX);
    const broadcast_fanout_stats_t *st = broadcast_fanout_stats(fan);
    ck_assert_uint_eq(st->typing_items, 2);
    ck_assert_uint_eq(st->presence_items, 2);
    ck_assert_uint_eq(st->unhandled, 0);
    ck_assert_int_eq(count_records(0), 0);
    ck_assert_int_eq(count_records(2), 0);
    for (int32_t gw = 1; gw <= 3; gw += 2) {
        cJSON *items = items_of(gw);
        ck_assert_int_eq(cJSON_GetArraySize(items), 2);
        const cJSON *t = cJSON_GetArrayItem(items, 0);
        ck_assert_str_eq(str(t, "room"), "general");
        ck_assert_str_eq(str(t, "except_user"), "bob");
        ck_assert_ptr_null(cJSON_GetObjectItem(t, "seq"));
        ck_assert_ptr_null(cJSON_GetObjectItem(t, "conns"));
        char *frame = cJSON_PrintUnformatted(cJSON_GetObjectItem(t, "frame"));
        ck_assert_str_eq(frame, "{\"type\":\"typing\",\"room\":\"general\",\"user\":\"bob\","
                                "\"name\":\"Bob\"}");
        cJSON_free(frame);
        const cJSON *p = cJSON_GetArrayItem(items, 1);
        ck_assert_str_eq(str(p, "except_user"), "carol");
        frame = cJSON_PrintUnformatted(cJSON_GetObjectItem(p, "frame"));
        ck_assert_str_eq(frame, "{\"type\":\"presence\",\"room\":\"general\","
                                "\"user\":\"carol\",\"online\":false}");
        cJSON_free(frame);
        cJSON_Delete(items);
    }
}
END_TEST

START_TEST(test_split_large_batches)
{
    const int32_t gws[] = {0, 2};
    for (int seq = 1; seq <= 300; seq++)
        add(msg("general", seq, seq % 7 == 0 ? "2" : NULL, "2.s.1"), gws, 2);
    /* One record with everything, for the size of a single record. */
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 2);
    size_t whole = records[1].len;
    for (size_t i = 0; i < nrecords; i++)
        cJSON_Delete(records[i].value);
    nrecords = 0;

    size_t max = 4096;
    ck_assert_uint_gt(whole, 8 * max);
    emit(max);
    ck_assert_int_gt(count_records(2), (int)(whole / max));
    for (size_t i = 0; i < nrecords; i++)
        ck_assert_msg(records[i].len <= max, "record %zu: %zu bytes", i, records[i].len);
    /* The pieces, in order, are exactly the batch. */
    cJSON *g2 = items_of(2);
    ck_assert_int_eq(cJSON_GetArraySize(g2), 300 + 300 / 7);
    int pos = 0;
    for (int seq = 1; seq <= 300; seq++) {
        check_msg_item(cJSON_GetArrayItem(g2, pos++), "general", seq);
        if (seq % 7 == 0)
            check_ack_frame(
                check_conn_item(cJSON_GetArrayItem(g2, pos++), "general", "2.s.1", "ack"),
                "general", seq);
    }
    cJSON *g0 = items_of(0);
    ck_assert_int_eq(cJSON_GetArraySize(g0), 300);
    cJSON_Delete(g0);
    cJSON_Delete(g2);

    /* An item bigger than the limit goes alone into one record. */
    for (size_t i = 0; i < nrecords; i++)
        cJSON_Delete(records[i].value);
    nrecords = 0;
    emit(10);
    ck_assert_uint_eq(nrecords, 300 + 300 + 300 / 7);
    for (size_t i = 0; i < nrecords; i++)
        ck_assert_uint_eq(records[i].nitems, 1);
}
END_TEST

START_TEST(test_reset_forgets_batch)
{
    const int32_t gws[] = {1};
    add(msg("general", 1, "0", "0.r.1"), gws, 1);
    ck_assert_int_eq(broadcast_fanout_reset(fan, 2), CHAT_OK);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->msg_items, 0);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 0);
    /* Fewer gateways than before: index 3 is now unknown. */
    const int32_t gws3[] = {3, 1};
    add(msg("general", 2, NULL, NULL), gws3, 2);
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 1);
    ck_assert_int_eq(records[0].gw, 1);
    ck_assert_uint_eq(broadcast_fanout_stats(fan)->unknown_gateway, 1);
    ck_assert_int_eq(broadcast_fanout_stats(fan)->unknown_gateway_example, 3);
    /* More gateways than ever before. */
    ck_assert_int_eq(broadcast_fanout_reset(fan, 64), CHAT_OK);
    const int32_t gws63[] = {63};
    add(msg("general", 3, NULL, NULL), gws63, 1);
    for (size_t i = 0; i < nrecords; i++)
        cJSON_Delete(records[i].value);
    nrecords = 0;
    emit(BROADCAST_RECORD_MAX);
    ck_assert_uint_eq(nrecords, 1);
    ck_assert_int_eq(records[0].gw, 63);
    ck_assert_int_eq(broadcast_fanout_reset(fan, -1), CHAT_ERR_INVALID);
}
END_TEST

static chat_err_t fail_second(void *ud, int32_t gw, const char *value, size_t len, size_t nitems)
{
    (void)gw;
    (void)value;
    (void)len;
    (void)nitems;
    int *calls = ud;
    return ++*calls == 2 ? CHAT_ERR_KAFKA : CHAT_OK;
}

START_TEST(test_emit_error_stops)
{
    const int32_t gws[] = {0, 1, 2, 3};
    add(msg("general", 1, NULL, NULL), gws, 4);
    int calls = 0;
    ck_assert_int_eq(broadcast_fanout_emit(fan, BROADCAST_RECORD_MAX, fail_second, &calls),
                     CHAT_ERR_KAFKA);
    ck_assert_int_eq(calls, 2);
}
END_TEST

/* Answers to the api service (origin gw "api") go to the api replies, not to any gateway: the
 * same ack frame a gateway client gets for a send, the update's ack with rid and useq, the
 * error frame of a reject; the msg itself still reaches the room's followers; a reset
 * forgets them. */
START_TEST(test_api_origin_answers_to_replies)
{
    const int32_t gws[] = {1};
    add(msg("team", 7, "api", "req-1"), gws, 1);
    add(decode("{\"v\":1,\"type\":\"update\",\"tenant\":\"acme\",\"room\":\"team\","
               "\"id\":\"65f1c0ffee0123456789abcd\",\"seq\":4,\"useq\":9,\"op\":\"delete\","
               "\"ts\":1,\"deleted\":true,\"reason\":\"spam\",\"user\":\"system\","
               "\"rid\":\"d-1\",\"origin\":{\"gw\":\"api\",\"conn\":\"req-2\"}}"),
        gws, 1);
    add(decode("{\"v\":1,\"type\":\"reject\",\"tenant\":\"acme\",\"room\":\"dm:a:b\","
               "\"code\":\"forbidden\",\"message\":\"blocked\",\"cid\":\"c-3\","
               "\"origin\":{\"gw\":\"api\",\"conn\":\"req-3\"}}"),
        NULL, 0);
    emit(BROADCAST_RECORD_MAX);
    const broadcast_fanout_stats_t *st = broadcast_fanout_stats(fan);
    ck_assert_uint_eq(st->api_replies, 3);
    ck_assert_uint_eq(st->ack_items, 0);
    ck_assert_uint_eq(st->error_items, 0);
    ck_assert_uint_eq(st->unknown_gateway, 0);
    ck_assert_uint_eq(st->msg_items, 1);
    ck_assert_uint_eq(st->update_items, 1);
    ck_assert_uint_eq(nrecords, 1); /* gateway 1's, with the msg and the update */
    cJSON *g1 = items_of(1);
    ck_assert_int_eq(cJSON_GetArraySize(g1), 2);
    cJSON *uframe = cJSON_GetObjectItem(cJSON_GetArrayItem(g1, 1), "frame");
    ck_assert_str_eq(str(uframe, "reason"), "spam");
    cJSON_Delete(g1);

    size_t n = 0;
    const broadcast_api_reply_t *r = broadcast_fanout_api_replies(fan, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(r[0].conn, "req-1");
    ck_assert_uint_eq(r[0].len, strlen(r[0].frame));
    cJSON *a = cJSON_Parse(r[0].frame);
    check_ack_frame(a, "team", 7);
    cJSON_Delete(a);
    ck_assert_str_eq(r[1].conn, "req-2");
    a = cJSON_Parse(r[1].frame);
    ck_assert_str_eq(str(a, "type"), "ack");
    ck_assert_str_eq(str(a, "rid"), "d-1");
    ck_assert_str_eq(str(a, "op"), "delete");
    ck_assert_int_eq(cJSON_GetObjectItem(a, "useq")->valueint, 9);
    cJSON_Delete(a);
    ck_assert_str_eq(r[2].conn, "req-3");
    ck_assert_str_eq(r[2].frame, "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":"
                                 "\"blocked\",\"cid\":\"c-3\"}");

    ck_assert_int_eq(broadcast_fanout_reset(fan, 4), CHAT_OK);
    ck_assert_ptr_nonnull(broadcast_fanout_api_replies(fan, &n));
    ck_assert_uint_eq(n, 0);
}
END_TEST

/* member_removed and room_deleted notices carry end (and end_user) on their follower items
 * only; other msgs none. */
START_TEST(test_notice_items_end_subscriptions)
{
    const int32_t gws[] = {0, 2};
    add(decode("{\"v\":1,\"type\":\"msg\",\"tenant\":\"acme\",\"room\":\"team\",\"seq\":4,"
               "\"id\":\"65f1c0ffee0123456789abcd\",\"from\":\"system\",\"text\":\"\","
               "\"notice\":\"member_removed\",\"target\":\"carol\",\"ts\":1,\"cid\":\"n1\","
               "\"origin\":{\"gw\":\"api\",\"conn\":\"r1\"}}"),
        gws, 2);
    add(decode("{\"v\":1,\"type\":\"msg\",\"tenant\":\"acme\",\"room\":\"team\",\"seq\":5,"
               "\"id\":\"65f1c0ffee0123456789abce\",\"from\":\"system\",\"text\":\"\","
               "\"notice\":\"member_added\",\"target\":\"dave\",\"ts\":1,\"cid\":\"n2\"}"),
        gws, 2);
    add(decode("{\"v\":1,\"type\":\"msg\",\"tenant\":\"acme\",\"room\":\"team\",\"seq\":6,"
               "\"id\":\"65f1c0ffee0123456789abcf\",\"from\":\"system\",\"text\":\"\","
               "\"notice\":\"room_deleted\",\"ts\":1,\"cid\":\"n3\"}"),
        gws, 2);
    emit(BROADCAST_RECORD_MAX);
    for (int32_t gw = 0; gw <= 2; gw += 2) {
        cJSON *items = items_of(gw);
        ck_assert_int_eq(cJSON_GetArraySize(items), 3);
        const cJSON *i0 = cJSON_GetArrayItem(items, 0), *i1 = cJSON_GetArrayItem(items, 1),
                    *i2 = cJSON_GetArrayItem(items, 2);
        ck_assert_str_eq(str(i0, "end"), "removed");
        ck_assert_str_eq(str(i0, "end_user"), "carol");
        ck_assert_ptr_null(cJSON_GetObjectItem(i1, "end"));
        ck_assert_str_eq(str(i2, "end"), "deleted");
        ck_assert_ptr_null(cJSON_GetObjectItem(i2, "end_user"));
        cJSON_Delete(items);
    }
}
END_TEST

static Suite *fanout_suite(void)
{
    Suite *s = suite_create("broadcast_fanout");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_msg_to_followers_and_ack_to_origin);
    tcase_add_test(tc, test_msg_sent_passed_on);
    tcase_add_test(tc, test_origin_follows_room);
    tcase_add_test(tc, test_msg_without_origin_or_followers);
    tcase_add_test(tc, test_ack_and_reject_routing);
    tcase_add_test(tc, test_read_to_followers);
    tcase_add_test(tc, test_order_kept);
    tcase_add_test(tc, test_unknown_gateway_skipped);
    tcase_add_test(tc, test_duplicate_followers);
    tcase_add_test(tc, test_other_types_skipped);
    tcase_add_test(tc, test_update_routed);
    tcase_add_test(tc, test_split_large_batches);
    tcase_add_test(tc, test_reset_forgets_batch);
    tcase_add_test(tc, test_emit_error_stops);
    tcase_add_test(tc, test_api_origin_answers_to_replies);
    tcase_add_test(tc, test_notice_items_end_subscriptions);
    tcase_add_test(tc, test_typing_and_presence_to_followers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(fanout_suite(), false);
}
