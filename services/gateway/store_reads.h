/* The gateway's MongoDB reads (worker threads only): a room's latest seq, the replay of a
 * join (the newest messages after `since`) and a history page. Stored messages become `msg`
 * frames through common/stored_msg.h, so a replayed or paged message is byte-for-byte the
 * frame live subscribers got. */
#ifndef CHAT_GATEWAY_STORE_READS_H
#define CHAT_GATEWAY_STORE_READS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>
#include <mongoc/mongoc.h>

#include "common/err.h"
#include "common/store.h"
#include "services/gateway/outq.h"

/* The highest seq stored in tenant/room, 0 for an empty room. */
chat_err_t gw_reads_latest(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                           const char *room, int64_t *latest);

/* The newest max messages with seq > since, in ascending seq, as msg frame buffers: *out is
 * a malloc'd array of *n entries (each one reference) that the caller frees. */
chat_err_t gw_reads_replay(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                           const char *room, int64_t since, size_t max, gw_outq_entry_t **out,
                           size_t *n);

/* The replay entries of msg frames given newest first (as the replay's query returns them):
 * *out gets them in ascending seq, each a serialised buffer (one reference) with its seq;
 * the caller frees the array. Returns CHAT_ERR_INVALID if a frame has no seq, CHAT_ERR_NOMEM;
 * nothing is returned then. Pure: used by gw_reads_replay and the unit tests. */
chat_err_t gw_reads_replay_entries(const cJSON *frames, gw_outq_entry_t **out, size_t *n);

/* A history page: the limit messages below before (0: the newest), ascending, as a cJSON
 * array of msg frames (*msgs, caller deletes), and whether older ones exist. */
chat_err_t gw_reads_page(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                         const char *room, int64_t before, int64_t limit, cJSON **msgs, bool *more);

/* The highest useq of tenant/room's messages (the room's latest change), 0 if none. */
chat_err_t gw_reads_latest_useq(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                                const char *room, int64_t *useq);

/* The update frames of a resume: the messages with seq <= since whose last change has a useq in
 * (usince, upto], in ascending useq, at most max (the caller asks for one more than it sends
 * to learn that there are more). *out is a malloc'd array of *n entries (each one reference;
 * the entry's seq is the useq) that the caller frees. */
chat_err_t gw_reads_updates(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                            const char *room, int64_t since, int64_t usince, int64_t upto,
                            size_t max, gw_outq_entry_t **out, size_t *n);

#endif
