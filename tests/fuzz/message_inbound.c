/* Fuzz target message_inbound: the message service's reading of a chat.inbound record
 * (services/message/inbound.c, message_inbound_parse: the event codec, then the service's own
 * rules, and the salvage of a refused send's origin so that its client still hears why). A
 * send, update or read comes out valid; a reject names its origin and a reason; an invalid
 * record has a reason for the log. */
#include "common/names.h"
#include "services/message/inbound.h"
#include "tests/fuzz/fuzz.h"

FUZZ_QUIET_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (long max = 10; max <= 4000; max += 3990) {
        message_inbound_t in;
        memset(&in, 0xa5, sizeof in); /* parse fills it whatever it held */
        message_inbound_parse(data, size, max, &in);
        FUZZ_ASSERT(memchr(in.reason, 0, sizeof in.reason) != NULL, "reason unterminated");
        switch (in.kind) {
        case MESSAGE_INBOUND_INVALID:
            FUZZ_ASSERT(in.reason[0] != '\0', "invalid without a reason");
            break;
        case MESSAGE_INBOUND_REJECT:
            FUZZ_ASSERT(in.reason[0] != '\0', "reject without a reason");
            FUZZ_ASSERT(in.code < MESSAGE_REJECT__COUNT, "code %d", (int)in.code);
            FUZZ_ASSERT(message_reject_code_name(in.code) != NULL, "code name");
            FUZZ_ASSERT(in.ev.origin_gw != NULL && in.ev.origin_conn != NULL,
                        "reject without an origin");
            break;
        case MESSAGE_INBOUND_SEND:
            FUZZ_ASSERT(in.ev.type == CHAT_EV_SEND && in.ev.text != NULL, "send");
            FUZZ_ASSERT(chat_name_tenant_valid(in.ev.tenant) && chat_name_room_valid(in.ev.room),
                        "send's tenant/room");
            FUZZ_ASSERT(chat_utf8_chars(in.ev.text, strlen(in.ev.text)) <= max,
                        "send over the text limit %ld", max);
            break;
        case MESSAGE_INBOUND_UPDATE:
            FUZZ_ASSERT(in.ev.type == CHAT_EV_EDIT || in.ev.type == CHAT_EV_DELETE ||
                            in.ev.type == CHAT_EV_REACT,
                        "update of type %d", (int)in.ev.type);
            break;
        case MESSAGE_INBOUND_READ:
            FUZZ_ASSERT(in.ev.type == CHAT_EV_READ, "read of type %d", (int)in.ev.type);
            break;
        default:
            FUZZ_ASSERT(0, "kind %d", (int)in.kind);
        }
        message_inbound_clear(&in);
    }
    return 0;
}
