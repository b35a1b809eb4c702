/* The codec of chat.deliver records, the batches broadcast sends to one gateway's partition
 * (proto/topics/chat.deliver.md): an envelope of items, each a ready client frame for the
 * subscribers of one room or for named connections. */
#ifndef CHAT_COMMON_DELIVER_CODEC_H
#define CHAT_COMMON_DELIVER_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"

#define CHAT_DELIVER_VERSION 1 /* the envelope's "v" */

/* ---- chat.deliver: broadcast -> one gateway ----
 * {"v":1,"type":"deliver","items":[{"tenant","room","seq"?,"sent"?,"frame":{...},"conns"?:[...],
 *  "except_user"?,"end"?,"end_user"?}]}
 * An item without conns goes to every socket of the gateway subscribed to tenant/room but
 * those of except_user, if given (a typing frame skips the typer's own connections); with
 * conns, only to those connections (acks, rejects). seq orders msg frames per room. end
 * (only without conns): after the frame, the gateway ends the subscriptions to the room of
 * end_user ("removed": a member_removed notice) or of everyone ("deleted": room_deleted). */
typedef struct chat_deliver_item {
    const char *tenant;
    const char *room;
    int64_t seq;  /* 0 when the frame carries no seq */
    int64_t sent; /* msg items: when the send was received, ms since the epoch; 0: absent */
    /* Encoding: the client frame; borrowed. May be a raw node (cJSON_CreateRaw) holding the
     * frame already serialised: a frame shared by several records is then printed once, not
     * once per record. */
    cJSON *frame;
    /* Decoding: the frame's JSON text as it stands in the record (frame_len bytes, not
     * NUL-terminated, borrowed from the decoded buffer) and its "type" member. */
    const char *frame_json;
    size_t frame_len;
    const char *frame_type;
    const char **conns; /* NULL: all subscribers */
    size_t nconns;
    const char *except_user; /* NULL: nobody skipped; only in items without conns */
    const char *end;         /* NULL, "removed" (with end_user) or "deleted" (without) */
    const char *end_user;
} chat_deliver_item_t;

typedef struct chat_deliver {
    chat_deliver_item_t *items;
    size_t nitems;
    void *priv_;
} chat_deliver_t;

/* Encodes items as one chat.deliver value. *out is malloc'd; caller frees. */
chat_err_t chat_deliver_encode(const chat_deliver_item_t *items, size_t n, char **out, size_t *len);

/* Decodes and validates a chat.deliver value: every member and name is checked; of each
 * frame, that it is a JSON object with a string type (its bytes are not parsed further: the
 * producer built it from validated events). The items' frame_json point into buf, which
 * must outlive the use of out; the other strings are out's own. Frees with
 * chat_deliver_clear. */
chat_err_t chat_deliver_decode(const void *buf, size_t len, chat_deliver_t *out, char *errbuf,
                               size_t errlen);
void chat_deliver_clear(chat_deliver_t *d);

#endif
