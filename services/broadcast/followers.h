/* Which gateways follow each room of a batch: the distinct rooms of the batch and, after
 * one pipelined Redis round trip, the live members of each room's gws set
 * (chat_registry_key of common/contract.h, score = expiry in ms). Never cached across batches: a
 * join registered just before must be seen by the very next batch. */
#ifndef CHAT_BROADCAST_FOLLOWERS_H
#define CHAT_BROADCAST_FOLLOWERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/redis.h"

typedef struct broadcast_followers broadcast_followers_t;

/* Returns an empty room table or NULL when out of memory. Free with broadcast_followers_free. */
broadcast_followers_t *broadcast_followers_new(void);

/* Frees f. Accepts NULL. */
void broadcast_followers_free(broadcast_followers_t *f);

/* Forgets the rooms of the previous batch (keeps the memory for the next one). */
void broadcast_followers_reset(broadcast_followers_t *f);

/* Adds tenant/room to the batch (a room already there is not added twice); both copied.
 * Returns CHAT_ERR_INVALID if the key does not fit, CHAT_ERR_NOMEM. */
chat_err_t broadcast_followers_add(broadcast_followers_t *f, const char *tenant, const char *room);

/* Number of distinct rooms added since the last reset. */
size_t broadcast_followers_count(const broadcast_followers_t *f);

/* Reads the gateways of every added room whose registration expires after now_ms, with one
 * pipelined ZRANGEBYSCORE per room in a single round trip. Members that are not gateway
 * indexes are logged and skipped. Returns CHAT_ERR_REDIS (the connection's failure is
 * logged by common/redis) if any reply is missing or an error: the caller retries the
 * whole lookup; CHAT_ERR_NOMEM. */
chat_err_t broadcast_followers_lookup(broadcast_followers_t *f, chat_redis_t *r, int64_t now_ms);

/* Sets the gateways of tenant/room as a lookup would (adding the room if needed); for
 * tests and tools. */
chat_err_t broadcast_followers_set(broadcast_followers_t *f, const char *tenant, const char *room,
                                   const int32_t *gws, size_t n);

/* The gateways following tenant/room (from the last lookup or set), *n of them; NULL with
 * *n = 0 for a room with none or one not added. Valid until the next add, set, lookup or
 * reset. */
const int32_t *broadcast_followers_get(const broadcast_followers_t *f, const char *tenant,
                                       const char *room, size_t *n);

#endif
