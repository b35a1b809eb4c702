/* What moderation decided, recorded exactly once however often a decision is replayed (a
 * restarted moderation service, a rescan run twice): the audit log (MongoDB
 * `moderation_log`), the review queue (`moderation_flags`) and mutes (Redis). Shared by the
 * moderation service (decisions of its rules) and the api service (rescans and moderators'
 * reviews). Removals themselves are not written here: they go to chat.moderation as
 * `verdict` events, which the message service applies to the message it owns. */
#ifndef CHAT_COMMON_MOD_RECORD_H
#define CHAT_COMMON_MOD_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/modrules.h"
#include "common/mutes.h"
#include "common/redis.h"
#include "common/store.h"

#define CHAT_MOD_LOG_COLLECTION "moderation_log"
#define CHAT_MOD_FLAGS_COLLECTION "moderation_flags"
/* A flag's id: 24 lowercase hex digits (the first 96 bits of the SHA-256 of its log key). */
#define CHAT_MOD_FLAG_ID_LEN 24

/* One decision about one version of a message. Strings are borrowed. */
typedef struct chat_mod_decision {
    const char *tenant;
    const char *room;
    const char *id;   /* the message */
    int64_t seq;
    int64_t ver;      /* the version checked: 0 = as sent, else the useq of the edit checked */
    const char *from; /* its author */
    const char *text; /* the text checked (kept with a flag for the reviewer; may be NULL) */
    chat_mod_action_t action;
    chat_mod_kind_t kind;
    const char *rule;
    int64_t mute_s;   /* action mute */
    const char *by;   /* "rules" (the moderation service), "rescan", "moderator:<name>" */
    int64_t ts;       /* when it was decided (ms since the epoch) */
} chat_mod_decision_t;

/* The log key of a decision, "tenant/id/ver/rule[/by]" (by only for a moderator's review, so
 * that a review is logged beside the rule's decision), into buf. Returns its length or -1. */
int chat_mod_log_key(const chat_mod_decision_t *d, char *buf, size_t len);

/* The flag id of the decision (its log key without by, hashed): the same message version and
 * rule always give the same flag. */
void chat_mod_flag_id(const chat_mod_decision_t *d, char out[CHAT_MOD_FLAG_ID_LEN + 1]);

/* Records n decisions: one moderation_log document each ({_id: log key, tenant, room, msg,
 * seq, ver, from, rule, kind, action, mute_s?, by, ts}); a flag also a moderation_flags
 * document ({_id: flag id, tenant, room, msg, seq, ver, from, text, rule, kind, state:
 * "pending", ts}); a mute also the author's mute (chat_mute_set, common/mutes.h). Documents already there are
 * kept as they are (a replay changes nothing). store or redis may be NULL only if no decision
 * needs it. Returns CHAT_OK, or the MongoDB/Redis failure's code (nothing is half-known: the
 * caller retries the whole call). */
chat_err_t chat_mod_record(chat_store_t *store, chat_redis_t *redis, const chat_mod_decision_t *d,
                           size_t n);

/* Rule set revisions: the api service stores a tenant's rules in MongoDB `rules` ({_id:
 * tenant, rules: <the document>, rev, updated}) and then sets field tenant of the Redis hash
 * chat:rules:rev to rev; moderation instances read the hash every second and reload the
 * tenants whose rev changed. */
#define CHAT_MOD_RULES_COLLECTION "rules"
#define CHAT_MOD_RULES_REV_KEY "chat:rules:rev"

chat_err_t chat_mod_rules_rev_set(chat_redis_t *redis, const char *tenant, int64_t rev);

#endif
