/* The api's moderation resources (moderation.c: the rule set and the review queue; rescan.c:
 * rescans as jobs): the pure parts, unit-tested: request bodies and query parameters, a rule
 * set's revision, the error of a refused rule set, a flag as the tenant sees it. */
#ifndef CHAT_API_MODERATION_H
#define CHAT_API_MODERATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>

#include "common/modrules.h"

/* PUT /v1/moderation/rules takes bodies up to this size (the service's CHAT_API_MAX_BODY when
 * that is larger): a rule set at its limits (20 lists of 10,000 entries) of ordinary words is a
 * few MiB of JSON; a document MongoDB cannot store (16 MiB of BSON) is 413 anyway. */
#define API_MOD_RULES_MAX_BODY (16u * 1024 * 1024)
/* The largest stored `rules` document (MongoDB's 16 MiB, less room for the other fields). */
#define API_MOD_RULES_MAX_BSON (16 * 1024 * 1024 - 64 * 1024)
#define API_MOD_MODERATOR_MAX_CHARS 64
#define API_MOD_RESCAN_MAX_AGE_MS (7LL * 24 * 3600 * 1000) /* since: at most 7 days ago */
#define API_MOD_REMOVE_REASON "removed by a moderator"

/* The next revision of a tenant's rule set: max(now_ms, prev + 1), so that revisions grow
 * strictly even when the clock steps back or two PUTs fall in one millisecond. */
int64_t api_mod_rules_rev_next(int64_t now_ms, int64_t prev);

/* The message of a refused rule set into buf: "<field>: <why>", or "the rule set: <why>" when
 * field is "" (the document itself). */
void api_mod_rules_error(const char *field, const char *why, char *buf, size_t len);

/* A review of a flag (POST /v1/moderation/flags/{id}). */
typedef struct api_mod_review {
    bool remove;           /* action "remove"; false: "dismiss" */
    const char *moderator; /* borrowed from the body; NULL when not given */
} api_mod_review_t;

/* Reads a review body {action: "remove"|"dismiss", moderator?: 1-64 characters without
 * control characters}. Returns false with the reason, naming the field, in error. Unknown
 * fields are the caller's (api_body_fields). */
bool api_mod_review_parse(const cJSON *body, api_mod_review_t *out, char *error, size_t errlen);

/* The `by` of a moderator's decision: "moderator:<name>", or "moderator" without a name. */
void api_mod_review_by(const api_mod_review_t *r, char *buf, size_t len);

/* The flag state a review leads to: "removed" or "dismissed". */
const char *api_mod_review_state(const api_mod_review_t *r);

/* ?state= of GET /v1/moderation/flags: NULL (absent) is "pending"; "pending", "removed" or
 * "dismissed" are themselves; anything else NULL. */
const char *api_mod_flags_state(const char *param, bool *valid);

/* The position a page of flags ends at (newest first: by ts, then id, descending), as the raw
 * cursor "<ts>.<id>" and back. Parse returns false for anything but what format wrote. */
void api_mod_flags_pos_format(int64_t ts, const char *id, char *buf, size_t len);
bool api_mod_flags_pos_parse(const char *raw, int64_t *ts, char id[25]);

/* A moderation_flags document (common/mod_record.h) as the tenant sees it: {id, room, message,
 * seq, from, text, rule, kind, state, ts, reviewed_by?, reviewed_at?}. NULL if a field it needs
 * is missing, or out of memory. */
cJSON *api_mod_flag_json(const bson_t *doc);

/* The rule kind named name ("blocklist", ... as chat_mod_kind_name): false for another name. */
bool api_mod_kind_parse(const char *name, chat_mod_kind_t *out);

/* What a rescan covers: one room or all, messages with since <= ts <= until. */
typedef struct api_rescan_params {
    const char *room; /* borrowed from the body; NULL: every room */
    int64_t since;
    int64_t until;
} api_rescan_params_t;

/* Reads a rescan body {room?, since, until?} at now_ms: since is required, at most 7 days
 * before now and not after it; until defaults to now, may not be before since, and one in the
 * future is taken as now. Returns false with the reason, naming the field, in error. */
bool api_rescan_params_parse(const cJSON *body, int64_t now_ms, api_rescan_params_t *out,
                             char *error, size_t errlen);

/* A rescan job's document (jobs.h) as the tenant sees it: {id, state, scanned, matched,
 * removed, flagged, room?, since, until, error?}. NULL if out of memory. */
cJSON *api_rescan_json(const bson_t *doc);

#endif
