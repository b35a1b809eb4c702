/* The spam rules that need memory across messages: the same text repeated by one user
 * (spam.repeat) and a user's message rate across the tenant (spam.rate). Their windows live in
 * Redis (shared by every moderation instance: a user's rooms may be in different partitions),
 * as sorted sets of message ids scored by the messages' stored ts: adding a message twice (a
 * replay after a crash) counts it once, and the count at a message only includes messages
 * stored up to it, so a replay decides the same. */
#ifndef CHAT_MODERATION_SPAM_H
#define CHAT_MODERATION_SPAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/modrules.h"
#include "common/redis.h"

typedef struct mod_spam_item {
    /* in (borrowed) */
    const char *tenant, *user, *id;
    int64_t ts;                  /* the message's stored ts */
    const chat_mod_spam_t *spam; /* the tenant's spam rules */
    const char *norm;            /* normalised text (chat_mod_normalize), for repeat */
    /* out */
    bool repeat_fired, rate_fired;
} mod_spam_item_t;

/* Counts each item into its windows and decides its repeat and rate rules, in one pipelined
 * round trip for all n. CHAT_ERR_REDIS (the caller retries the batch; the windows absorb the
 * replay), CHAT_ERR_NOMEM. */
chat_err_t mod_spam_check(chat_redis_t *redis, mod_spam_item_t *items, size_t n);

#endif
