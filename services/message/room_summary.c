/* The room summary write (see room_summary.h): one EVAL per room that sets seq, ts and last
 * only if seq is above what the hash holds, so that a batch replayed after a crash (or a
 * zombie writer) never moves a room's summary back. */
#include "services/message/room_summary.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"

/* ARGV: seq, ts, frame of the batch's highest entry of the room ('' when it has none), useq
 * ('' when none of its messages changed), fresh ("1": that entry is a new message). A new
 * message above the summary's becomes the room's last; a changed frame of the summary's own
 * message (an edit, a delete, a reaction of the last message) replaces its frame. useq moves
 * forward only. */
static const char summary_script[] =
    "local r = 0 "
    "if ARGV[1] ~= '' then "
    "local cur = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') "
    "local s = tonumber(ARGV[1]) "
    "if s > cur and ARGV[5] == '1' then "
    "redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'ts', ARGV[2], 'last', ARGV[3]) r = 1 "
    "elseif s == cur then redis.call('HSET', KEYS[1], 'last', ARGV[3]) r = 1 end end "
    "if ARGV[4] ~= '' and tonumber(ARGV[4]) > tonumber(redis.call('HGET', KEYS[1], 'useq') or "
    "'0') then redis.call('HSET', KEYS[1], 'useq', ARGV[4]) r = 1 end "
    "return r";

chat_err_t message_room_summary_queue(chat_redis_t *r, const message_recent_room_t *room)
{
    char key[CHAT_ROOM_SUMMARY_KEY_MAX], seq[24] = "", ts[24] = "", useq[24] = "";
    if ((room->n == 0 && !room->has_useq) ||
        chat_room_summary_key(room->tenant, room->room, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    const char *last = "";
    size_t last_len = 0;
    if (room->n > 0) {
        const chat_recent_entry_t *e = &room->entries[room->n - 1];
        snprintf(seq, sizeof seq, "%" PRId64, e->seq);
        snprintf(ts, sizeof ts, "%" PRId64, room->top_ts); /* used when fresh only */
        last = e->frame;
        last_len = e->len;
    }
    if (room->has_useq)
        snprintf(useq, sizeof useq, "%" PRId64, room->useq);
    const char *fresh = room->fresh ? "1" : "0";
    const char *argv[] = {"EVAL", summary_script, "1", key, seq, ts, last, useq, fresh};
    size_t lens[] = {4,        strlen(summary_script), 1, strlen(key), strlen(seq), strlen(ts),
                     last_len, strlen(useq),           1};
    return chat_redis_append_argv(r, 9, argv, lens);
}

chat_err_t message_room_summary_result(chat_redis_t *r)
{
    redisReply *reply = NULL;
    chat_err_t err = chat_redis_reply(r, &reply);
    if (err == CHAT_OK && reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        chat_log_error("room summary not written", CHAT_F_STR("error", reply->str));
        err = CHAT_ERR_REDIS;
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}
