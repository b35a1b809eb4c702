/* Prints what common/codec.c produces, one "<schema-name>\t<json>" line per document: an
 * example of every event type (optional fields set, so that they are checked too), the
 * `msg`, `update`, `ack` and `error` client frames and a chat.deliver batch.
 * tests/unit/proto/validate.py checks each line against proto/, so the codec and the
 * schemas cannot drift apart. */
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "common/events.h"
#include "common/frames.h"
#include "common/deliver_codec.h"

#define ID "65f1c0ffee0123456789abcd"
#define TS INT64_C(1732406400123)
#define ORIGIN .origin_gw = "gw-0", .origin_conn = "c-17"

static int failures;

static void print_line(const char *schema, const char *json)
{
    printf("%s\t%s\n", schema, json);
}

static void dump_event(const chat_event_t *ev)
{
    char *json = NULL;
    chat_err_t err = chat_event_encode(ev, &json, NULL);
    if (err != CHAT_OK) {
        fprintf(stderr, "codec_dump: %s not encoded: %s\n", chat_event_type_name(ev->type),
                chat_err_str(err));
        failures++;
        return;
    }
    print_line(chat_event_type_name(ev->type), json);
    free(json);
}

/* Prints a cJSON document (a frame) and deletes it. */
static void dump_tree(const char *schema, cJSON *doc)
{
    char *json = doc != NULL ? cJSON_PrintUnformatted(doc) : NULL;
    if (json == NULL) {
        fprintf(stderr, "codec_dump: no %s document\n", schema);
        failures++;
    } else {
        print_line(schema, json);
    }
    free(json);
    cJSON_Delete(doc);
}

static void dump_deliver(cJSON *msg_frame)
{
    cJSON *ack = cJSON_Parse("{\"type\":\"ack\",\"cid\":\"c-0001\",\"room\":\"general\","
                             "\"seq\":42,\"id\":\"" ID "\",\"ts\":1732406400123}");
    cJSON *typing = cJSON_Parse("{\"type\":\"typing\",\"room\":\"general\",\"user\":\"bob\"}");
    const char *conns[] = {"c-17", "c-18"};
    chat_deliver_item_t items[] = {
        {.tenant = "acme", .room = "general", .seq = 42, .frame = msg_frame},
        {.tenant = "acme", .room = "general", .seq = 42, .frame = ack, .conns = conns, .nconns = 2},
        {.tenant = "acme", .room = "general", .frame = typing},
    };
    char *json = NULL;
    if (chat_deliver_encode(items, sizeof items / sizeof items[0], &json, NULL) != CHAT_OK) {
        fprintf(stderr, "codec_dump: deliver not encoded\n");
        failures++;
    } else {
        print_line("deliver", json);
    }
    free(json);
    cJSON_Delete(ack);
    cJSON_Delete(typing);
}

int main(void)
{
    cJSON *reactions = cJSON_Parse("{\"\xf0\x9f\x91\x8d\":[\"alice\",\"bob\"],"
                                   "\"\xf0\x9f\x8e\x89\":[\"carol\"]}");
    cJSON *payload = cJSON_Parse("{\"v\":1,\"type\":\"msg\",\"tenant\":\"acme\"}");
    const chat_event_t examples[] = {
        {.type = CHAT_EV_SEND,
         .tenant = "acme",
         .room = "general",
         .user = "alice",
         .name = "Alice",
         .cid = "c-0001",
         .text = "hello \"world\"\n",
         .ts = TS,
         .has_ts = true,
         ORIGIN},
        {.type = CHAT_EV_EDIT,
         .tenant = "acme",
         .room = "general",
         .user = "alice",
         .id = ID,
         .text = "hello, fixed",
         .rid = "e-1",
         .ts = TS,
         .has_ts = true,
         ORIGIN},
        {.type = CHAT_EV_DELETE,
         .tenant = "acme",
         .room = "general",
         .user = "alice",
         .id = ID,
         .rid = "d-1",
         .ts = TS,
         .has_ts = true,
         ORIGIN},
        {.type = CHAT_EV_REACT,
         .tenant = "acme",
         .room = "general",
         .user = "bob",
         .id = ID,
         .emoji = "\xf0\x9f\x91\x8d",
         .on = true,
         .has_on = true,
         .rid = "x-1",
         .ts = TS,
         .has_ts = true,
         ORIGIN},
        {.type = CHAT_EV_READ,
         .tenant = "acme",
         .room = "dm:alice:bob",
         .user = "bob",
         .seq = 42,
         .has_seq = true,
         .ts = TS,
         .has_ts = true},
        {.type = CHAT_EV_MSG,
         .tenant = "acme",
         .room = "general",
         .seq = 42,
         .has_seq = true,
         .id = ID,
         .user = "alice",
         .name = "Alice",
         .text = "hello",
         .ts = TS,
         .has_ts = true,
         .cid = "c-0001",
         .edited = TS + 1000,
         .has_edited = true,
         .reactions = reactions,
         ORIGIN},
        {.type = CHAT_EV_ACK,
         .tenant = "acme",
         .room = "general",
         .seq = 42,
         .has_seq = true,
         .id = ID,
         .ts = TS,
         .has_ts = true,
         .cid = "c-0001",
         ORIGIN},
        {.type = CHAT_EV_UPDATE,
         .tenant = "acme",
         .room = "general",
         .id = ID,
         .seq = 42,
         .has_seq = true,
         .useq = 7,
         .has_useq = true,
         .op = "edit",
         .ts = TS,
         .has_ts = true,
         .text = "fixed",
         .edited = TS,
         .has_edited = true,
         .reactions = reactions,
         .user = "alice",
         .rid = "e-1",
         ORIGIN},
        {.type = CHAT_EV_UPDATE,
         .tenant = "acme",
         .room = "general",
         .id = ID,
         .seq = 42,
         .has_seq = true,
         .useq = 8,
         .has_useq = true,
         .op = "react",
         .ts = TS,
         .has_ts = true,
         .text = "fixed",
         .reactions = reactions,
         .user = "bob"},
        {.type = CHAT_EV_UPDATE,
         .tenant = "acme",
         .room = "general",
         .id = ID,
         .seq = 42,
         .has_seq = true,
         .useq = 9,
         .has_useq = true,
         .op = "delete",
         .ts = TS,
         .has_ts = true,
         .deleted = true,
         .has_deleted = true,
         .user = "alice",
         .rid = "d-1",
         ORIGIN},
        {.type = CHAT_EV_ACK,
         .tenant = "acme",
         .room = "general",
         .seq = 42,
         .has_seq = true,
         .id = ID,
         .rid = "x-1",
         .op = "react",
         .useq = 8,
         .has_useq = true,
         ORIGIN},
        {.type = CHAT_EV_UPDATE,
         .tenant = "acme",
         .room = "general",
         .id = ID,
         .seq = 42,
         .has_seq = true,
         .useq = 10,
         .has_useq = true,
         .op = "moderate",
         .ts = TS,
         .has_ts = true,
         .removed = true,
         .has_removed = true,
         .reason = "banned word"},
        {.type = CHAT_EV_REJECT,
         .tenant = "acme",
         .room = "general",
         .code = "forbidden",
         .message = "not a member",
         .cid = "c-0001",
         .rid = "r-1",
         ORIGIN},
        {.type = CHAT_EV_READ,
         .tenant = "acme",
         .room = "general",
         .user = "bob",
         .seq = 7,
         .has_seq = true,
         .rid = "r-1",
         .ts = TS,
         .has_ts = true,
         ORIGIN},
        {.type = CHAT_EV_TYPING,
         .tenant = "acme",
         .room = "general",
         .user = "bob",
         .ts = TS,
         .has_ts = true},
        {.type = CHAT_EV_PRESENCE,
         .tenant = "acme",
         .room = "general",
         .user = "bob",
         .online = false,
         .has_online = true,
         .ts = TS,
         .has_ts = true},
        {.type = CHAT_EV_VERDICT,
         .tenant = "acme",
         .room = "general",
         .id = ID,
         .seq = 42,
         .has_seq = true,
         .action = "remove",
         .reason = "banned word",
         .rule = "words",
         .ts = TS,
         .has_ts = true},
        {.type = CHAT_EV_SEND,
         .tenant = "acme",
         .room = "team",
         .user = "system",
         .cid = "n-0001",
         .text = "",
         .notice = "member_removed",
         .target = "carol",
         .ts = TS,
         .has_ts = true,
         .origin_gw = "api",
         .origin_conn = "r-1"},
        {.type = CHAT_EV_MSG,
         .tenant = "acme",
         .room = "team",
         .seq = 43,
         .has_seq = true,
         .id = ID,
         .user = "system",
         .text = "Team Rocket",
         .notice = "room_renamed",
         .ts = TS,
         .has_ts = true,
         .cid = "n-0002"},
        {.type = CHAT_EV_DELETE,
         .tenant = "acme",
         .room = "general",
         .user = "system",
         .id = ID,
         .reason = "spam",
         .ts = TS,
         .has_ts = true,
         .origin_gw = "api",
         .origin_conn = "r-2"},
        {.type = CHAT_EV_UPDATE,
         .tenant = "acme",
         .room = "general",
         .id = ID,
         .seq = 42,
         .has_seq = true,
         .useq = 11,
         .has_useq = true,
         .op = "delete",
         .ts = TS,
         .has_ts = true,
         .deleted = true,
         .has_deleted = true,
         .reason = "spam",
         .user = "system"},
        {.type = CHAT_EV_NOTIFY_FAILED,
         .tenant = "acme",
         .room = "general",
         .user = "carol",
         .channel = "webpush",
         .attempts = 5,
         .has_attempts = true,
         .error = "410 Gone",
         .ts = TS,
         .has_ts = true,
         .payload = payload},
    };
    bool covered[CHAT_EV__COUNT] = {false};
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        dump_event(&examples[i]);
        covered[examples[i].type] = true;
    }
    for (int t = CHAT_EV_INVALID + 1; t < CHAT_EV__COUNT; t++) {
        if (!covered[t]) {
            fprintf(stderr, "codec_dump: no example of event type %d\n", t);
            failures++;
        }
    }

    const chat_event_t *msg = &examples[5];
    if (msg->type != CHAT_EV_MSG) {
        fprintf(stderr, "codec_dump: examples[5] is not the msg example\n");
        return 1;
    }
    dump_tree("server.msg", chat_frame_msg_new(msg));
    chat_event_t bare = {.type = CHAT_EV_MSG,
                         .room = "general",
                         .seq = 1,
                         .has_seq = true,
                         .id = ID,
                         .user = "alice",
                         .text = "hi",
                         .ts = 0,
                         .has_ts = true};
    dump_tree("server.msg", chat_frame_msg_new(&bare));

    chat_event_t notice = bare;
    notice.user = "system";
    notice.text = "";
    notice.notice = "member_added";
    notice.target = "bob";
    dump_tree("server.msg", chat_frame_msg_new(&notice));

    chat_event_t gone = bare;
    gone.text = NULL;
    gone.deleted = gone.has_deleted = true;
    dump_tree("server.msg", chat_frame_msg_new(&gone));

    chat_event_t ack = *msg;
    ack.type = CHAT_EV_ACK;
    dump_tree("server.ack", chat_frame_ack_new(msg));
    dump_tree("server.ack", chat_frame_ack_new(&ack));
    for (size_t i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        if (examples[i].type == CHAT_EV_UPDATE) {
            dump_tree("server.update", chat_frame_update_new(&examples[i]));
            if (examples[i].origin_gw != NULL)
                dump_tree("server.ack", chat_frame_ack_new(&examples[i]));
        } else if (examples[i].type == CHAT_EV_ACK && examples[i].op != NULL) {
            dump_tree("server.ack", chat_frame_ack_new(&examples[i]));
        }
    }
    dump_tree("server.error", chat_frame_error_new("forbidden", "not a member", "r-1", "c-1"));
    dump_tree("server.error", chat_frame_error_new("internal", "retry", NULL, NULL));
    chat_event_t read = {.type = CHAT_EV_READ,
                         .tenant = "acme",
                         .room = "general",
                         .user = "bob",
                         .seq = 7,
                         .has_seq = true};
    dump_tree("server.read", chat_frame_read_new(&read));

    cJSON *frame = chat_frame_msg_new(msg);
    dump_deliver(frame);
    cJSON_Delete(frame);

    cJSON_Delete(reactions);
    cJSON_Delete(payload);
    return failures == 0 ? 0 : 1;
}
