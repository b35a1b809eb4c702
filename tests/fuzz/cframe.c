/* Fuzz target cframe: the gateway's client frame parser (services/gateway/frames.c,
 * gw_cframe_parse), every byte of a WebSocket text message as a client sends it. A parsed
 * frame's strings are checked against the rules the parser promises (names well-formed, the
 * text within its limit), and the error frame echoing a refused one must be valid JSON. */
#include <cjson/cJSON.h>

#include "common/names.h"
#include "services/gateway/frames.h"
#include "tests/fuzz/fuzz.h"

#define MAX_TEXT_CHARS 4000 /* the gateway's default (CHAT_MAX_TEXT_CHARS) */

FUZZ_QUIET_INIT

static void check_frame(const gw_cframe_t *f)
{
    FUZZ_ASSERT(f->type > GW_C_INVALID && f->type < GW_C__COUNT, "type %d", (int)f->type);
    if (f->room != NULL && f->type != GW_C_PUSH_PREFS)
        FUZZ_ASSERT(chat_name_room_valid(f->room), "room %s", f->room);
    if (f->cid != NULL)
        FUZZ_ASSERT(chat_name_cid_valid(f->cid), "cid %s", f->cid);
    if (f->id != NULL)
        FUZZ_ASSERT(chat_name_message_id_valid(f->id), "id %s", f->id);
    if (f->text != NULL) {
        long n = chat_utf8_chars(f->text, strlen(f->text));
        FUZZ_ASSERT(n >= 0 && n <= MAX_TEXT_CHARS, "text of %ld characters", n);
    }
    if (f->has_limit)
        FUZZ_ASSERT(f->limit >= 1, "limit %lld", (long long)f->limit);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_cframe_t f = {0};
    gw_cframe_error_t err = {0};
    chat_err_t rc = gw_cframe_parse(data, size, MAX_TEXT_CHARS, &f, &err);
    if (rc == CHAT_OK) {
        check_frame(&f);
    } else {
        FUZZ_ASSERT(rc == CHAT_ERR_INVALID, "rc %d", (int)rc);
        FUZZ_ASSERT(memchr(err.message, 0, sizeof err.message) != NULL, "message unterminated");
        gw_buf_t *b = gw_frame_error(err.code, err.message, f.rid, f.cid);
        if (b != NULL) {
            cJSON *j = cJSON_ParseWithLength((const char *)b->data + GW_BUF_PRE, b->len);
            FUZZ_ASSERT(j != NULL, "error frame is not JSON");
            cJSON_Delete(j);
            gw_buf_unref(b);
        }
    }
    gw_cframe_clear(&f);
    return 0;
}
