/* Fuzz target events: the Kafka event codec (common/events.c) on every record value a topic
 * may carry (chat.inbound, chat.messages, chat.events, chat.moderation, chat.notify.dlq: send,
 * edit, delete, react, msg, ack, update, reject, typing, presence, read, verdict,
 * notify_failed), and the client frames built from decoded events (common/frames.c: msg,
 * update, ack, read). Round trip: an event that decodes encodes, its encoding decodes, and
 * encoding that again gives the same bytes. */
#include <cjson/cJSON.h>

#include "common/events.h"
#include "common/frames.h"
#include "tests/fuzz/fuzz.h"

FUZZ_QUIET_INIT

static void frame_check(cJSON *frame)
{
    if (frame == NULL)
        return;
    char *text = cJSON_PrintUnformatted(frame);
    if (text != NULL) {
        cJSON *again = cJSON_Parse(text);
        FUZZ_ASSERT(again != NULL, "frame does not parse back: %s", text);
        cJSON_Delete(again);
        free(text);
    }
    cJSON_Delete(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chat_event_t ev = {0};
    char why[256];
    if (chat_event_decode(data, size, &ev, why, sizeof why) != CHAT_OK) {
        FUZZ_ASSERT(ev.priv_ == NULL && ev.type == CHAT_EV_INVALID, "failed decode left state");
        return 0;
    }
    FUZZ_ASSERT(chat_event_type_name(ev.type) != NULL, "decoded type %d", (int)ev.type);
    FUZZ_ASSERT(chat_event_type_parse(chat_event_type_name(ev.type)) == ev.type, "type name");

    frame_check(chat_frame_msg_new(&ev));
    frame_check(chat_frame_update_new(&ev));
    frame_check(chat_frame_ack_new(&ev));
    frame_check(chat_frame_read_new(&ev));
    (void)chat_event_msg_gone(&ev);

    char *enc1 = NULL, *enc2 = NULL;
    size_t len1 = 0, len2 = 0;
    chat_err_t rc = chat_event_encode(&ev, &enc1, &len1);
    FUZZ_ASSERT(rc == CHAT_OK, "a decoded %s event does not encode (%d)",
                chat_event_type_name(ev.type), (int)rc);
    chat_event_t ev2 = {0};
    rc = chat_event_decode(enc1, len1, &ev2, why, sizeof why);
    FUZZ_ASSERT(rc == CHAT_OK, "encoding does not decode: %s: %s", why, enc1);
    FUZZ_ASSERT(ev2.type == ev.type, "type changed");
    rc = chat_event_encode(&ev2, &enc2, &len2);
    FUZZ_ASSERT(rc == CHAT_OK, "re-decoded event does not encode");
    FUZZ_ASSERT(len1 == len2 && memcmp(enc1, enc2, len1) == 0, "round trip differs:\n%s\n%s", enc1,
                enc2);
    free(enc1);
    free(enc2);
    chat_event_clear(&ev2);
    chat_event_clear(&ev);
    return 0;
}
