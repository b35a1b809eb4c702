/* Fuzz target deliver: the chat.deliver codec (common/deliver_codec.c), a broadcast batch as a
 * gateway consumes it. Round trip: a batch that decodes encodes (each item's frame passed on
 * as the raw JSON it was), the encoding decodes to the same items. */
#include <cjson/cJSON.h>

#include "common/deliver_codec.h"
#include "tests/fuzz/fuzz.h"

FUZZ_QUIET_INIT

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* decode reads the frames' bytes from the buffer: give it a copy of exactly size bytes */
    char *buf = fuzz_strndup(data, size);
    chat_deliver_t d = {0};
    char why[256];
    if (chat_deliver_decode(buf, size, &d, why, sizeof why) != CHAT_OK) {
        free(buf);
        return 0;
    }
    chat_deliver_item_t *items = calloc(d.nitems + 1, sizeof *items);
    if (items == NULL)
        abort();
    for (size_t i = 0; i < d.nitems; i++) {
        const chat_deliver_item_t *it = &d.items[i];
        FUZZ_ASSERT(it->frame_json != NULL && it->frame_type != NULL, "item %zu", i);
        FUZZ_ASSERT(it->frame_json >= buf && it->frame_json + it->frame_len <= buf + size,
                    "frame of item %zu outside the buffer", i);
        items[i] = *it;
        char *raw = fuzz_strndup((const uint8_t *)it->frame_json, it->frame_len);
        items[i].frame = cJSON_CreateRaw(raw);
        free(raw);
        if (items[i].frame == NULL)
            abort();
    }
    char *enc = NULL;
    size_t len = 0;
    chat_err_t rc = chat_deliver_encode(items, d.nitems, &enc, &len);
    FUZZ_ASSERT(rc == CHAT_OK, "a decoded batch does not encode (%d)", (int)rc);
    chat_deliver_t d2 = {0};
    rc = chat_deliver_decode(enc, len, &d2, why, sizeof why);
    FUZZ_ASSERT(rc == CHAT_OK, "encoding does not decode: %s: %s", why, enc);
    FUZZ_ASSERT(d2.nitems == d.nitems, "items %zu -> %zu", d.nitems, d2.nitems);
    for (size_t i = 0; i < d.nitems; i++) {
        const chat_deliver_item_t *a = &d.items[i], *b = &d2.items[i];
        FUZZ_ASSERT(str_eq(a->tenant, b->tenant) && str_eq(a->room, b->room) && a->seq == b->seq,
                    "item %zu changed", i);
        FUZZ_ASSERT(a->frame_len == b->frame_len &&
                        memcmp(a->frame_json, b->frame_json, a->frame_len) == 0,
                    "frame of item %zu changed", i);
        FUZZ_ASSERT(str_eq(a->frame_type, b->frame_type), "frame type of item %zu", i);
        FUZZ_ASSERT(a->nconns == b->nconns && (a->conns == NULL) == (b->conns == NULL),
                    "conns of item %zu", i);
        for (size_t c = 0; c < a->nconns; c++)
            FUZZ_ASSERT(str_eq(a->conns[c], b->conns[c]), "conn %zu of item %zu", c, i);
        FUZZ_ASSERT(str_eq(a->except_user, b->except_user) && str_eq(a->end, b->end) &&
                        str_eq(a->end_user, b->end_user),
                    "except/end of item %zu", i);
    }
    chat_deliver_clear(&d2);
    free(enc);
    for (size_t i = 0; i < d.nitems; i++)
        cJSON_Delete(items[i].frame);
    free(items);
    chat_deliver_clear(&d);
    free(buf);
    return 0;
}
