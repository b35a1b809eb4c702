/* One batch of chat.inbound and chat.moderation records through the message service: decode,
 * validate, group by room, refuse muted senders' sends, plan every send as a new message (seqs
 * from memory), store the plan with one ordered insert, resolve the rare duplicate key, apply
 * edits, deletes, reactions and moderation's removals (verdicts) with the room's useqs, write
 * the messages into each room's recent history in Redis, produce the outcome to chat.messages,
 * flush, commit. MongoDB, Redis and Kafka are reached through the small ports below, so that
 * the decisions can be unit-tested against in-memory fakes; message_store.c,
 * message_recent.c, message_mutes.c and message_bus.c implement them. */
#ifndef CHAT_MESSAGE_PIPELINE_H
#define CHAT_MESSAGE_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/bus.h"
#include "common/err.h"
#include "common/recent.h"
#include "common/metrics.h"
#include "common/tenant_label.h"
#include "services/message/dedup.h"
#include "services/message/message_doc.h"
#include "services/message/reads.h"
#include "services/message/sequencer.h"
#include "services/message/updates.h"

/* How long the pipeline trusts that a tenant has no blocks at all: a tenant's first block
 * refuses sends within this long; later ones at once (docs/server-api.md). */
#define MESSAGE_BLOCKS_HINT_MS 2000
/* How long the pipeline trusts that a tenant has no mute at all: a tenant's first mute refuses
 * sends within this long; later ones at once (docs/moderation.md, "Mutes"). */
#define MESSAGE_MUTES_HINT_MS 1000

/* A room, as the store port's highest_seqs takes it. */
typedef struct message_room_ref {
    const char *tenant;
    const char *room;
} message_room_ref_t;

/* A send in a direct room, as the store port's find_blocks takes it: user writes to other. */
typedef struct message_block_pair {
    const char *tenant;
    const char *user;
    const char *other;
} message_block_pair_t;

/* The MongoDB side. Every function returns CHAT_OK or the mapped driver error; CHAT_ERR_MONGO,
 * CHAT_ERR_TIMEOUT and CHAT_ERR_IO are retried by the pipeline. Only insert is used by a batch
 * whose rooms are remembered and whose sends are all new; the others are for the first touch of
 * a room and for duplicate keys. */
typedef struct message_store_port {
    void *ctx;
    /* highest[i] = the highest seq stored in rooms[i], 0 if none; one query for the n rooms. */
    chat_err_t (*highest_seqs)(void *ctx, const message_room_ref_t *rooms, size_t n,
                               int64_t *highest);
    /* Appends to out the stored messages whose (tenant, room, from, cid) is that of one of the
     * n keys (src of the keys unused); a superset is allowed. */
    chat_err_t (*find_existing)(void *ctx, const message_dedup_send_t *keys, size_t n,
                                message_doc_list_t *out);
    /* Inserts in order and stops at the first failure: results[i] is CHAT_OK (stored), then for
     * the first failing document CHAT_ERR_DUPLICATE or another failure, then CHAT_ERR_STOPPED
     * (not attempted) for the rest. A failure the store cannot attribute (network) marks every
     * document it cannot vouch for with that failure: it may have been stored. */
    chat_err_t (*insert)(void *ctx, const message_doc_t *docs, size_t n, chat_err_t *results);
    /* found[i] = a document with _id ids[i] exists. */
    chat_err_t (*find_ids)(void *ctx, const char *const *ids, size_t n, bool *found);
    /* ---- edits, deletes, reactions (all NULL: the store takes none; they are refused) ---- */
    /* highest[i] = the highest useq of rooms[i]'s update records, 0 if none; one query. */
    chat_err_t (*highest_useqs)(void *ctx, const message_room_ref_t *rooms, size_t n,
                                int64_t *highest);
    /* Appends message id of tenant/room to out (its state included), nothing if none. */
    chat_err_t (*find_message)(void *ctx, const char *tenant, const char *room, const char *id,
                               message_doc_list_t *out);
    /* The update record of (tenant, room, user, req) into *out (caller clears), *found false
     * if there is none. */
    chat_err_t (*find_update)(void *ctx, const char *tenant, const char *room, const char *user,
                              const char *req, message_update_rec_t *out, bool *found);
    /* Inserts an update record: CHAT_ERR_DUPLICATE if its (tenant, room, useq) or (tenant,
     * room, user, req) is taken. */
    chat_err_t (*insert_update)(void *ctx, const message_update_rec_t *rec);
    /* Writes rec's state, useq and op into its message. */
    chat_err_t (*apply_update)(void *ctx, const message_update_rec_t *rec);
    /* ---- direct rooms' blocks (NULL: no send is refused for a block) ---- */
    /* blocked[i] = a `blocks` document {tenant, user, target} exists with pairs[i]'s user and
     * other in either role (docs/server-api.md); one query for the n pairs. */
    chat_err_t (*find_blocks)(void *ctx, const message_block_pair_t *pairs, size_t n,
                              bool *blocked);
    /* *has = tenant has any `blocks` document. The pipeline asks at most once per
     * MESSAGE_BLOCKS_HINT_MS per tenant and skips find_blocks for tenants without blocks
     * (NULL: every batch with direct-room sends asks find_blocks). */
    chat_err_t (*tenant_has_blocks)(void *ctx, const char *tenant, bool *has);
    /* Text of the last failure for logs; may be NULL. */
    const char *(*last_error)(void *ctx);
} message_store_port_t;

/* A room's messages for its recent history (common/recent.h): the msg frames of the messages
 * the batch stored or publishes again, in ascending seq. */
typedef struct message_recent_room {
    const char *tenant;
    const char *room;
    const chat_recent_entry_t *entries;
    size_t n;
    /* has_useq: the room's latest useq after the batch (the changes to its messages have their
     * new frames among the entries), written after them as the room's useq key (contract.h). */
    int64_t useq;
    bool has_useq;
    /* The batch stored a new message in the room: its seq was the room's highest when it was
     * inserted (seqs are gapless), so this write carries the room's top and may renew the
     * set's marker. A write of republished messages only may not: newer ones may exist that a
     * restarted Redis lost (docs/message-path.md). */
    bool fresh;
    int64_t top_ts; /* fresh: the ts of the newest message the batch stored in the room */
} message_recent_room_t;

/* The Redis side: each room's recent history, written after the store and before anything of
 * the batch is published, so that a message a client can have seen live is never missing from
 * it (docs/message-path.md). */
typedef struct message_recent_port {
    void *ctx;
    /* Writes the n rooms' entries in one round trip. CHAT_ERR_REDIS is retried by the pipeline
     * (the whole write again: it is idempotent). */
    chat_err_t (*write)(void *ctx, const message_recent_room_t *rooms, size_t n);
    /* Text of the last failure for logs; may be NULL. */
    const char *(*last_error)(void *ctx);
} message_recent_port_t;

/* Mutes (common/mutes.h), read before the sends are stored. */
typedef struct message_mutes_port {
    void *ctx;
    /* muted[i] = users[i] is muted in tenant at now_ms, in one round trip. CHAT_ERR_REDIS is
     * retried by the pipeline like the recent history's writes. */
    chat_err_t (*check)(void *ctx, const char *tenant, const char *const *users, size_t n,
                        int64_t now_ms, bool *muted);
    /* *has = tenant has any mute. The pipeline asks at most once per MESSAGE_MUTES_HINT_MS per
     * tenant and skips check for tenants without mutes (NULL: every batch with sends of the
     * tenant asks check). */
    chat_err_t (*tenant_has_mutes)(void *ctx, const char *tenant, bool *has);
    /* Text of the last failure for logs; may be NULL. */
    const char *(*last_error)(void *ctx);
} message_mutes_port_t;

/* The Kafka side. */
typedef struct message_bus_port {
    void *ctx;
    /* Queues one chat.messages record with key tenant/room. */
    chat_err_t (*produce)(void *ctx, const char *key, size_t keylen, const char *value, size_t len);
    /* Waits for the delivery of everything produced; any failed delivery is an error. */
    chat_err_t (*flush)(void *ctx);
    /* Commits the offsets after the given records. */
    chat_err_t (*commit)(void *ctx, const chat_bus_record_t *recs, size_t n);
} message_bus_port_t;

/* Clock, ids, sleeping and the stop request; NULL members use the real ones. */
typedef struct message_env {
    void *ctx;
    int64_t (*wall_ms)(void *ctx);      /* ms since the epoch: the messages' ts */
    int64_t (*monotonic_ms)(void *ctx); /* for retry deadlines */
    void (*sleep_ms)(void *ctx, int64_t ms);
    void (*new_id)(void *ctx, char id[MESSAGE_ID_LEN + 1]); /* a fresh ObjectId, hex */
    bool (*stop_requested)(void *ctx);
} message_env_t;

typedef struct message_pipeline_conf {
    message_store_port_t store;
    message_recent_port_t recent; /* write NULL: no recent history is kept (unit tests) */
    message_reads_port_t reads;   /* store NULL: read marks are refused (unit tests) */
    message_mutes_port_t mutes;   /* check NULL: no send is refused for a mute */
    message_bus_port_t bus;
    message_env_t env;
    /* Records of this topic are verdicts (chat.moderation), the others chat.inbound's; NULL:
     * every record is chat.inbound's. Borrowed. */
    const char *moderation_topic;
    message_sequencer_t *sequencer; /* borrowed */
    chat_metrics_t *metrics;        /* borrowed; may be NULL */
    /* Bounded tenant labels for chat_message_tenant_stored_total; borrowed, outlives the
     * pipeline; NULL: no per-tenant count. */
    chat_tenant_labels_t *tenant_labels;
    long max_text_chars;     /* longer sends are rejected with too_large */
    int64_t store_retry_ms;  /* how long MongoDB (then Redis) failures are retried per batch */
    int max_conflict_rounds; /* seq collisions (another writer) per batch before giving up */
} message_pipeline_conf_t;

typedef struct message_pipeline message_pipeline_t;

/* Creates a pipeline (copies conf; registers its metrics). NULL on allocation failure. */
message_pipeline_t *message_pipeline_new(const message_pipeline_conf_t *conf);

/* Accepts NULL. */
void message_pipeline_destroy(message_pipeline_t *p);

/* Processes one batch (records of chat.inbound and chat.moderation in the order polled) and
 * commits it. Records of partitions the sequencer does not own (the same partition numbers of
 * both topics: the range assignor gives them to one member) are ignored and not committed. Returns
 * CHAT_OK once committed (a failed commit is only logged: the records are replayed, which dedup
 * makes safe); otherwise nothing was committed and the service must stop: CHAT_ERR_STOPPED (a stop
 * was requested while MongoDB or Redis was being retried), the MongoDB or Redis error that
 * outlasted store_retry_ms, CHAT_ERR_DUPLICATE (seq collisions reached max_conflict_rounds),
 * CHAT_ERR_KAFKA (produce or delivery failed) or CHAT_ERR_NOMEM. */
chat_err_t message_pipeline_process(message_pipeline_t *p, const chat_bus_record_t *recs, size_t n);

#endif
