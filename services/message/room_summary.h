/* Each room's summary in Redis (chat_room_summary_key, common/contract.h): its latest seq, the
 * ts of that message (the room's last activity) and the message's frame, which the gateways
 * read for a user's room list (`rooms`) without touching the room's messages, and its latest
 * useq. The message service writes it with the recent history, in the same round trip, for
 * every room a batch stored a new message in or changed a message of; a script keeps each
 * part moving forward only. */
#ifndef CHAT_MESSAGE_ROOM_SUMMARY_H
#define CHAT_MESSAGE_ROOM_SUMMARY_H

#include "common/err.h"
#include "common/redis.h"
#include "services/message/pipeline.h"

/* Queues (chat_redis_append) the summary write of room: its newest entry (the room's last
 * message if the batch stored a new one there, room->fresh; a changed frame of the last
 * message otherwise), its useq if it has one: one reply to read with
 * message_room_summary_result. CHAT_ERR_INVALID if there is neither or the names make no key
 * (nothing queued), CHAT_ERR_NOMEM, CHAT_ERR_REDIS. */
chat_err_t message_room_summary_queue(chat_redis_t *r, const message_recent_room_t *room);

/* Reads the reply of one queued summary write. CHAT_ERR_REDIS (logged) if it failed. */
chat_err_t message_room_summary_result(chat_redis_t *r);

#endif
