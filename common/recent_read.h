/* Reads of a room's recent history in Redis (the sorted set of chat_recent_key,
 * common/contract.h; written by common/recent.h): one atomic snapshot (MULTI: the marker, the
 * top, the members asked for, EXEC) in one round trip, or those of many rooms in one, and
 * whether a snapshot may be trusted. The gateway answers joins, resumes and history pages
 * from them; unread counts (common/unread.h) are taken from them. */
#ifndef CHAT_COMMON_RECENT_READ_H
#define CHAT_COMMON_RECENT_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/recent.h"
#include "common/redis.h"

/* Why an answer came (or did not come) from the recent history; the label of
 * chat_gateway_recent_reads_total. */
typedef enum chat_recent_result {
    CHAT_RECENT_HIT,       /* answered from Redis */
    CHAT_RECENT_MISS,      /* cold: the room has no key (never written, expired) */
    CHAT_RECENT_UNTRUSTED, /* the marker is not the run_id of the server answering now */
    CHAT_RECENT_GAP,       /* trusted, but it does not hold the answer's range contiguously */
    CHAT_RECENT_ERROR,     /* Redis failed (logged) */
    CHAT_RECENT__COUNT
} chat_recent_result_t;

/* "hit", "miss", "untrusted", "gap", "error". */
const char *chat_recent_result_name(chat_recent_result_t r);

/* One snapshot of a room's set, as one transaction read it. */
typedef struct chat_recent_view {
    bool exists;        /* the key exists */
    const char *marker; /* the member at score 0; NULL if none, or more than one */
    const char *run_id; /* of the server that answered ("": it did not tell) */
    int64_t top;        /* the highest seq in the set; 0 if it holds only the marker */
    /* The messages asked for (seq in a range, at most a limit), newest first. */
    const chat_recent_entry_t *entries;
    size_t n;
} chat_recent_view_t;

typedef struct chat_recent_snapshot chat_recent_snapshot_t;

/* Reads tenant/room's marker, top and the newest up to limit messages with seq in (lo, hi)
 * (hi 0: no bound) in one transaction. *out (free with chat_recent_snapshot_free) owns what
 * its view points to. CHAT_ERR_REDIS (logged), CHAT_ERR_INVALID, CHAT_ERR_NOMEM. */
chat_err_t chat_recent_snapshot_read(chat_redis_t *r, const char *tenant, const char *room,
                                     int64_t lo, int64_t hi, size_t limit,
                                     chat_recent_snapshot_t **out);

/* One room's range of chat_recent_snapshots_read. */
typedef struct chat_recent_range {
    const char *room;
    int64_t lo, hi;
    size_t limit;
} chat_recent_range_t;

/* The snapshots of n rooms of tenant (as chat_recent_snapshot_read each), all in one round
 * trip: out[i] (n entries; free each with chat_recent_snapshot_free) is NULL for a room whose
 * snapshot failed. Returns CHAT_ERR_REDIS (logged) if Redis failed (out[] all NULL or some),
 * CHAT_ERR_NOMEM; CHAT_OK otherwise (single rooms may still be NULL: names that make no key). */
chat_err_t chat_recent_snapshots_read(chat_redis_t *r, const char *tenant,
                                      const chat_recent_range_t *ranges, size_t n,
                                      chat_recent_snapshot_t **out);

/* The snapshot's view: entries newest first. */
const chat_recent_view_t *chat_recent_snapshot_view(const chat_recent_snapshot_t *s);

/* Accepts NULL. */
void chat_recent_snapshot_free(chat_recent_snapshot_t *s);

/* Whether v exists and its marker is the run_id of the server that answered (HIT), else MISS
 * or UNTRUSTED. */
chat_recent_result_t chat_recent_view_trust(const chat_recent_view_t *v);

#endif
