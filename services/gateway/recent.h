/* The recent history of rooms in Redis (key and contents: common/contract.h), as the gateway
 * uses it: joins, resumes and history pages are answered from it when it holds their answer
 * exactly, MongoDB otherwise; a join that had to read MongoDB fills the room's history with
 * what it read, so that the next joins of a cold room do not read MongoDB again.
 *
 * The decisions are pure functions of one snapshot (gw_recent_decide_join/_page, unit-tested);
 * the reads and fills run on worker threads, on the worker's Redis connection. */
#ifndef CHAT_GATEWAY_RECENT_H
#define CHAT_GATEWAY_RECENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/contract.h"
#include "common/recent.h"
#include "common/recent_read.h"
#include "common/redis.h"
#include "services/gateway/outq.h"

/* A join: whether v answers it exactly, as the MongoDB reads would: *latest = the room's
 * latest seq and, with since, the replay = entries[0..*count) (newest first): the newest up
 * to replay_max messages above since. v's entries must be the newest up to replay_max with
 * seq > since (any with seq > 0 without since). HIT only if the marker is v->run_id (not "")
 * and the entries run down from top without a hole to max(since + 1, top - replay_max + 1);
 * a room whose top is at or below since missed nothing (HIT, no replay). Nothing is set
 * unless HIT. */
chat_recent_result_t gw_recent_decide_join(const chat_recent_view_t *v, bool has_since,
                                           int64_t since, size_t replay_max, int64_t *latest,
                                           size_t *count);

/* A history page: whether v answers it exactly: the limit messages below before (0: the
 * newest) = entries[0..*count) (newest first) and *more (older ones exist). v's entries must
 * be the newest up to limit + 1 below before (any, without before). HIT only if trusted and
 * the entries run without a hole from min(before - 1, top) down to either limit + 1 messages
 * (more) or seq 1 (no more). Nothing is set unless HIT. */
chat_recent_result_t gw_recent_decide_page(const chat_recent_view_t *v, int64_t before,
                                           int64_t limit, size_t *count, bool *more);

/* ---- Redis (worker threads) ---- */

/* A join answered from the recent history: on HIT, *latest and the replay (ascending seq,
 * buffers of the cached bytes, one reference each; *replay malloc'd, the caller frees);
 * otherwise why not, and nothing returned. replay_max as for gw_recent_decide_join. */
chat_recent_result_t gw_recent_join(chat_redis_t *r, const char *tenant, const char *room,
                                    bool has_since, int64_t since, size_t replay_max,
                                    int64_t *latest, gw_outq_entry_t **replay, size_t *nreplay);

/* A history page answered from the recent history: on HIT, *msgs is a cJSON array (caller
 * deletes) of the cached frames as raw items, ascending, so that the history frame holds their
 * bytes unchanged, and *more; otherwise why not, and nothing returned. */
chat_recent_result_t gw_recent_page(chat_redis_t *r, const char *tenant, const char *room,
                                    int64_t before, int64_t limit, cJSON **msgs, bool *more);

/* A fill in progress: the key WATCHed before MongoDB is read, and the run_id of the server at
 * that moment. */
typedef struct gw_recent_fill {
    char key[CHAT_RECENT_KEY_MAX];
    char run_id[48];
    bool watching;
} gw_recent_fill_t;

/* The outcome of a fill; the label of chat_gateway_recent_fills_total. */
typedef enum gw_recent_fill_result {
    GW_RECENT_FILL_WRITTEN, /* merged into the room's set */
    GW_RECENT_FILL_RACED,   /* the set changed since the WATCH: nothing written (harmless) */
    GW_RECENT_FILL_FAILED,  /* Redis failed, or the server tells no run_id: nothing written */
    GW_RECENT_FILL__COUNT
} gw_recent_fill_result_t;

/* "written", "raced", "failed". */
const char *gw_recent_fill_result_name(gw_recent_fill_result_t r);

/* Starts a fill of tenant/room: WATCHes its key, before the MongoDB read whose answer will
 * fill it. Returns false (nothing to undo) if Redis failed or its server tells no run_id. */
bool gw_recent_fill_begin(chat_redis_t *r, const char *tenant, const char *room,
                          gw_recent_fill_t *f);

/* Ends a fill begun with gw_recent_fill_begin: merges the n entries (ascending seq: the room's
 * newest messages as MongoDB answered after the WATCH, all of them down to some seq, so that
 * the set's top is the room's latest at that read; n = 0 for a room without messages) into
 * the set with the run_id of the WATCH, kept to the newest max (>= 1) and expiring after
 * ttl_ms; written only if nothing touched the key since the WATCH (a write of the message
 * service in between could make this answer stale, a deletion could hide a lost write). The
 * WATCH is over in every case. */
gw_recent_fill_result_t gw_recent_fill_end(chat_redis_t *r, gw_recent_fill_t *f,
                                           const gw_outq_entry_t *entries, size_t n, int64_t max,
                                           int64_t ttl_ms);

/* Ends a fill without writing (the MongoDB read failed): UNWATCH. No-op if not watching. */
void gw_recent_fill_cancel(chat_redis_t *r, gw_recent_fill_t *f);

#endif
