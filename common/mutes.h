/* Mutes: a user moderation muted cannot send in that tenant until the mute ends. Kept in
 * Redis (hash chat:mute:{<tenant>}: field user = until, ms since the epoch; the hash expires
 * with its last mute), written by moderation (common/mod_record.c) and read by the message
 * service, which refuses a muted user's sends (`forbidden`, "muted"). */
#ifndef CHAT_COMMON_MUTES_H
#define CHAT_COMMON_MUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/redis.h"

/* Writes the Redis key of tenant's mutes into buf. Returns its length, or -1. */
int chat_mute_key(const char *tenant, char *buf, size_t len);

/* Mutes user in tenant until until_ms: a later end extends a mute, an earlier one does not
 * shorten it (a replayed decision changes nothing). CHAT_ERR_REDIS on a Redis failure. */
chat_err_t chat_mute_set(chat_redis_t *redis, const char *tenant, const char *user,
                         int64_t until_ms);

/* For each of the n users, muted[i] = whether they are muted in tenant at now_ms, in one
 * round trip (HMGET). CHAT_ERR_REDIS on a Redis failure (muted untouched). */
chat_err_t chat_mute_check(chat_redis_t *redis, const char *tenant, const char *const *users,
                           size_t n, int64_t now_ms, bool *muted);

#endif
