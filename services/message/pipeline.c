/* The batch of the message service, in the order the design requires: decode and validate
 * every record (chat.inbound's requests, chat.moderation's verdicts), group them by room,
 * refuse the sends of muted users, plan each send as a new message with the room's next seq
 * (sequencer.c assigns it from what it remembers; a room's first touch loads its last seq
 * from MongoDB, one query for the batch), store the plan with one ordered insert (MongoDB failures
 * are retried with the same plan; a duplicate key is looked up, resolved and the rest planned
 * again), write the messages into their rooms' recent history in Redis (retried like MongoDB),
 * publish every outcome to chat.messages, flush, and only then commit. A verdict that removes a
 * message is one more update of the message, applied in the room's order with the edits, deletes
 * and reactions. */
#include "services/message/pipeline.h"

#include <bson/bson.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/frames.h"
#include "common/log.h"
#include "common/strmap.h"
#include "services/message/inbound.h"

#define SLEEP_SLICE_MS 100 /* a stop request interrupts a backoff within this */

typedef enum item_kind {
    ITEM_FOREIGN, /* its partition is not ours (revoked meanwhile): neither handled nor committed */
    ITEM_INVALID, /* undecodable or unexpected: logged, counted, committed */
    ITEM_REJECT,  /* refused: a reject event goes to its origin */
    ITEM_SEND,    /* a valid send */
    ITEM_UPDATE,  /* a valid edit, delete or react, or a verdict that removes a message */
    ITEM_READ,    /* a valid read mark (reads.h); an ITEM_REJECT if beyond the room's latest */
    ITEM_SKIP,    /* a verdict that changes nothing (a flag, an unknown message, a message
                     already gone, a verdict already applied): committed, nothing published */
} item_kind_t;

/* Where a send stands. Sends start as NEW; the store and the duplicate lookups move them. */
typedef enum send_state {
    SEND_NEW,       /* planned as a new message (doc: seq, id, ts); not known to be stored */
    SEND_STORED,    /* doc is in MongoDB */
    SEND_RESEND,    /* another record stored its (tenant, room, from, cid): ack existing[ref] */
    SEND_REPUBLISH, /* this very record stored it before a crash: msg existing[ref] again */
    SEND_REPEAT,    /* an earlier send of the batch has its key: ack items[ref]'s message */
} send_state_t;

/* Where an edit, delete or react stands once decided (store_updates). */
typedef enum update_state {
    UPDATE_APPLIED,   /* a change with the room's next useq: update event (urec) */
    UPDATE_REPUBLISH, /* this very record made the change before a crash: update event again */
    UPDATE_RESEND,    /* another record made this request's change: ack with its useq (urec) */
    UPDATE_NOOP,      /* nothing to change: ack (urec: id, seq, op; useq the message's, if any) */
} update_state_t;

typedef struct item {
    const chat_bus_record_t *rec;
    message_inbound_t in;
    const chat_event_t *ev; /* &in.ev */
    item_kind_t kind;
    char src[MESSAGE_SRC_MAX];
    size_t room; /* index in batch_t.rooms (REJECT, SEND) */
    /* SEND */
    send_state_t state;
    size_t ref;        /* RESEND, REPUBLISH: index in existing; REPEAT: item index */
    message_doc_t doc; /* NEW, STORED: the document */
    bool ambiguous;    /* NEW: an insert failed without saying whether it stored doc */
    /* UPDATE (and a REJECT that was one: published in the updates' order) */
    bool is_update;
    update_state_t ustate;
    message_update_rec_t urec; /* owned */
    char *frame;               /* APPLIED, REPUBLISH: the message's msg frame now (cJSON_free) */
    int64_t msg_ts;            /* APPLIED: the changed message's ts (moderation's latency) */
    cJSON *no_reactions;       /* an empty object for a react that removed the last emoji */
    bool read_moved;           /* READ: the stored mark moved to it: published */
} item_t;

typedef struct batch_room {
    const char *tenant;
    const char *room;
    int32_t partition;
    bool has_sends;
    bool has_reads;
    message_seq_plan_t seq; /* what is known taken, what the current plan handed out */
    bool has_updates;
    bool useq_loaded;  /* useq_last is known (from the sequencer or MongoDB) */
    int64_t useq_last; /* highest useq known to be taken */
} batch_room_t;

/* The server a phase of the batch is retrying, for the retry loop and its logs. */
typedef struct retry_phase {
    const char *server; /* "MongoDB", "Redis" */
    const char *(*last_error)(void *ctx);
    void *ctx;
    chat_counter_t *retries;
    int64_t deadline; /* monotonic ms: give up on the batch after this */
} retry_phase_t;

typedef struct batch {
    item_t *items;
    size_t n;
    size_t sends;
    size_t updates;
    batch_room_t *rooms;
    size_t nrooms;
    chat_strmap_t *room_index;   /* "tenant/room" -> 1 + index in rooms */
    message_doc_list_t existing; /* stored messages the duplicate lookups returned */
    retry_phase_t phase;
} batch_t;

typedef struct pipeline_metrics {
    chat_counter_t *stored;
    chat_counter_t *updates;
    chat_counter_t *duplicates;
    chat_counter_t *republished;
    chat_counter_t *invalid;            /* chat.inbound's */
    chat_counter_t *invalid_moderation; /* chat.moderation's */
    chat_counter_t *verdicts[2];        /* by action: remove, flag */
    chat_counter_t *removals;
    chat_histogram_t *moderation_seconds;
    chat_counter_t *mute_checks;
    chat_counter_t *mute_retries;
    chat_counter_t *muted;
    chat_histogram_t *mute_seconds;
    chat_counter_t *rejected[MESSAGE_REJECT__COUNT];
    chat_counter_t *store_retries;
    chat_counter_t *conflicts;
    chat_counter_t *recent_writes;
    chat_counter_t *recent_retries;
    chat_histogram_t *recent_seconds;
    chat_histogram_t *batch_records;
    chat_histogram_t *batch_seconds;
    chat_histogram_t *store_seconds;
    chat_gauge_t *rooms;
    chat_counter_t *reads[3]; /* by message_read_fate_t */
    chat_counter_t *reads_ignored;
    chat_tenant_counter_t *tenant_stored; /* NULL without tenant labels */
} pipeline_metrics_t;

/* What the pipeline last heard of whether a tenant has any block (store port
 * tenant_has_blocks) or any mute (mutes port tenant_has_mutes). */
typedef struct tenant_hint {
    int64_t asked_ms; /* monotonic */
    bool has;
} tenant_hint_t;

#define HINT_TENANTS_MAX 100000 /* more tenants than this: the hints start over */

struct message_pipeline {
    message_pipeline_conf_t conf;
    chat_strmap_t *blocks_hints; /* tenant -> tenant_hint_t (malloc'd) */
    chat_strmap_t *mutes_hints;  /* tenant -> tenant_hint_t (malloc'd) */
    chat_metrics_t *own_metrics; /* when conf.metrics is NULL */
    pipeline_metrics_t m;
};

/* ---- environment defaults ---- */

/* The real clock and sleep behind the env's function pointers (they take the test's ctx). */
static int64_t real_wall_ms(void *ctx)
{
    (void)ctx;
    return chat_clock_wall_ms();
}

static int64_t real_monotonic_ms(void *ctx)
{
    (void)ctx;
    return chat_clock_mono_ms();
}

static void real_sleep_ms(void *ctx, int64_t ms)
{
    (void)ctx;
    chat_clock_sleep_ms(ms);
}

static void real_new_id(void *ctx, char id[MESSAGE_ID_LEN + 1])
{
    (void)ctx;
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, id);
}

static bool never_stop(void *ctx)
{
    (void)ctx;
    return false;
}

static void env_fill_defaults(message_env_t *env)
{
    if (env->wall_ms == NULL)
        env->wall_ms = real_wall_ms;
    if (env->monotonic_ms == NULL)
        env->monotonic_ms = real_monotonic_ms;
    if (env->sleep_ms == NULL)
        env->sleep_ms = real_sleep_ms;
    if (env->new_id == NULL)
        env->new_id = real_new_id;
    if (env->stop_requested == NULL)
        env->stop_requested = never_stop;
}

/* ---- metrics ---- */

static const double batch_record_buckets[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000};

static bool metrics_register(pipeline_metrics_t *m, chat_metrics_t *reg)
{
    m->stored =
        chat_metrics_counter(reg, "chat_message_stored_total", "Messages stored in MongoDB", NULL);
    m->updates = chat_metrics_counter(
        reg, "chat_message_updates_total",
        "Edits, deletes, reactions and removals applied to stored messages (one useq each)", NULL);
    m->duplicates = chat_metrics_counter(
        reg, "chat_message_duplicates_total",
        "Sends whose cid the room already had (resends, repeats within a batch): acked", NULL);
    m->republished = chat_metrics_counter(
        reg, "chat_message_republished_total",
        "Stored messages published again because their record was replayed (crash recovery)", NULL);
    m->invalid = chat_metrics_counter(reg, "chat_message_invalid_records_total",
                                      "Records skipped as undecodable or unexpected",
                                      "topic=\"" CHAT_TOPIC_INBOUND "\"");
    m->invalid_moderation = chat_metrics_counter(reg, "chat_message_invalid_records_total",
                                                 "Records skipped as undecodable or unexpected",
                                                 "topic=\"" CHAT_TOPIC_MODERATION "\"");
    static const char *const actions[] = {"remove", "flag"};
    for (int i = 0; i < 2; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "action=\"%s\"", actions[i]);
        m->verdicts[i] = chat_metrics_counter(
            reg, "chat_message_verdicts_total",
            "Valid verdicts of chat.moderation by action (a flag changes nothing here)", labels);
    }
    m->removals = chat_metrics_counter(
        reg, "chat_message_moderation_removals_total",
        "Messages removed by a verdict (one useq each; repeated verdicts are not counted)", NULL);
    m->moderation_seconds = chat_metrics_histogram(
        reg, "chat_message_moderation_seconds",
        "From a message's stored ts to the production of the update that removes it", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->mute_checks = chat_metrics_counter(
        reg, "chat_message_mute_checks_total",
        "Mute lookups in Redis (one HMGET per tenant with sends in a batch, unless the tenant "
        "has no mute)",
        NULL);
    m->mute_retries = chat_metrics_counter(reg, "chat_message_mute_retries_total",
                                           "Mute lookups retried after a Redis failure", NULL);
    m->muted = chat_metrics_counter(reg, "chat_message_muted_sends_total",
                                    "Sends refused because their sender is muted", NULL);
    m->mute_seconds =
        chat_metrics_histogram(reg, "chat_message_mute_seconds",
                               "Time spent on mute lookups per batch that made one (retries "
                               "included)",
                               NULL, chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    for (int i = 0; i < MESSAGE_REJECT__COUNT; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "code=\"%s\"", message_reject_code_name(i));
        m->rejected[i] = chat_metrics_counter(reg, "chat_message_rejected_total",
                                              "Sends refused with a reject event", labels);
    }
    m->store_retries = chat_metrics_counter(reg, "chat_message_store_retries_total",
                                            "MongoDB operations retried after a failure", NULL);
    m->conflicts = chat_metrics_counter(
        reg, "chat_message_seq_conflicts_total",
        "Seq collisions on insert (another writer took a planned seq): room reloaded", NULL);
    m->recent_writes = chat_metrics_counter(
        reg, "chat_message_recent_writes_total",
        "Rooms whose recent history in Redis a batch wrote (once per room and batch)", NULL);
    m->recent_retries = chat_metrics_counter(reg, "chat_message_recent_retries_total",
                                             "Recent-history writes retried after a failure", NULL);
    m->recent_seconds =
        chat_metrics_histogram(reg, "chat_message_recent_seconds",
                               "Time spent writing the recent history per batch (retries included)",
                               NULL, chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->batch_records = chat_metrics_histogram(
        reg, "chat_message_batch_records", "Records per processed batch", NULL,
        batch_record_buckets, sizeof batch_record_buckets / sizeof batch_record_buckets[0]);
    m->batch_seconds = chat_metrics_histogram(
        reg, "chat_message_batch_seconds", "Time from poll to commit of a batch", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->store_seconds = chat_metrics_histogram(
        reg, "chat_message_store_seconds",
        "Time spent on MongoDB per batch (seq loads, insert, duplicate lookups, retries)", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->rooms = chat_metrics_gauge(reg, "chat_message_rooms",
                                  "Rooms whose last seq is held in memory", NULL);
    static const char *const read_fates[] = {"beyond", "stored", "superseded"};
    for (int i = 0; i < 3; i++) {
        char labels[48];
        snprintf(labels, sizeof labels, "outcome=\"%s\"", read_fates[i]);
        m->reads[i] = chat_metrics_counter(
            reg, "chat_message_reads_total",
            "Read marks by outcome: beyond the room's latest (rejected), stored, or superseded "
            "by a higher one of the same user in the batch",
            labels);
    }
    m->reads_ignored = chat_metrics_counter(reg, "chat_message_reads_behind_total",
                                            "Read marks stored but behind the user's stored mark "
                                            "(ignored: no event)",
                                            NULL);
    bool ok = m->reads[0] && m->reads[1] && m->reads[2] && m->reads_ignored && m->stored &&
              m->updates && m->duplicates && m->republished && m->invalid && m->store_retries &&
              m->conflicts && m->recent_writes && m->recent_retries && m->recent_seconds &&
              m->batch_records && m->batch_seconds && m->store_seconds && m->rooms &&
              m->invalid_moderation && m->verdicts[0] && m->verdicts[1] && m->removals &&
              m->moderation_seconds && m->mute_checks && m->mute_retries && m->muted &&
              m->mute_seconds;
    for (int i = 0; i < MESSAGE_REJECT__COUNT; i++)
        ok = ok && m->rejected[i] != NULL;
    return ok;
}

/* Forgets every tenant's hint kept in hints. */
static void hints_clear(chat_strmap_t *hints)
{
    if (hints == NULL)
        return;
    chat_strmap_foreach(hints, chat_strmap_free_value, NULL);
    chat_strmap_clear(hints);
}

message_pipeline_t *message_pipeline_new(const message_pipeline_conf_t *conf)
{
    message_pipeline_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->conf = *conf;
    env_fill_defaults(&p->conf.env);
    if (p->conf.max_conflict_rounds < 1)
        p->conf.max_conflict_rounds = 1;
    p->blocks_hints = chat_strmap_new();
    p->mutes_hints = chat_strmap_new();
    if (p->blocks_hints == NULL || p->mutes_hints == NULL) {
        chat_strmap_free(p->blocks_hints);
        chat_strmap_free(p->mutes_hints);
        free(p);
        return NULL;
    }
    chat_metrics_t *reg = conf->metrics;
    if (reg == NULL)
        reg = p->own_metrics = chat_metrics_new();
    if (reg == NULL || !metrics_register(&p->m, reg)) {
        message_pipeline_destroy(p);
        return NULL;
    }
    if (conf->tenant_labels != NULL &&
        (p->m.tenant_stored = chat_tenant_counter_new(
             conf->tenant_labels, reg, "chat_message_tenant_stored_total",
             "Messages stored in MongoDB, by tenant (bounded: see CHAT_METRICS_TENANTS_MAX)",
             NULL)) == NULL) {
        message_pipeline_destroy(p);
        return NULL;
    }
    return p;
}

void message_pipeline_destroy(message_pipeline_t *p)
{
    if (p == NULL)
        return;
    chat_metrics_destroy(p->own_metrics);
    hints_clear(p->blocks_hints);
    chat_strmap_free(p->blocks_hints);
    hints_clear(p->mutes_hints);
    chat_strmap_free(p->mutes_hints);
    free(p);
}

/* ---- parsing and validation ---- */

/* Index of tenant/room in b->rooms, added on first sight. A room's records all come from one
 * partition (key tenant/room), so the first record's partition is the room's. CHAT_ERR_NOMEM,
 * or CHAT_ERR_INVALID for names too long for a key (the codec refuses those first). */
static chat_err_t batch_room_index(batch_t *b, const char *tenant, const char *room,
                                   int32_t partition, size_t *index)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    uintptr_t slot = (uintptr_t)chat_strmap_get(b->room_index, key);
    if (slot != 0) {
        *index = (size_t)slot - 1;
        return CHAT_OK;
    }
    size_t idx = b->nrooms;
    if (!chat_strmap_put(b->room_index, key, (void *)(uintptr_t)(idx + 1)))
        return CHAT_ERR_NOMEM;
    b->rooms[idx] = (batch_room_t){.tenant = tenant, .room = room, .partition = partition};
    b->nrooms++;
    *index = idx;
    return CHAT_OK;
}

/* True if rec is a chat.moderation record (a verdict). */
static bool record_is_verdict(const message_pipeline_t *p, const chat_bus_record_t *rec)
{
    return p->conf.moderation_topic != NULL && rec->topic != NULL &&
           strcmp(rec->topic, p->conf.moderation_topic) == 0;
}

/* A chat.moderation record: a verdict that removes a message becomes an update of it (its
 * src "mod:<partition>:<offset>", apart from chat.inbound's); a flag is counted and skipped
 * (moderation recorded it for the tenant's moderators); anything else is invalid. */
static chat_err_t parse_verdict(message_pipeline_t *p, batch_t *b, item_t *it)
{
    const chat_bus_record_t *rec = it->rec;
    message_inbound_t *in = &it->in;
    memset(in, 0, sizeof *in);
    const char *why = in->reason;
    if (rec->value == NULL || rec->len == 0) {
        why = "empty record";
    } else if (chat_event_decode(rec->value, rec->len, &in->ev, in->reason, sizeof in->reason) ==
               CHAT_OK) {
        if (in->ev.type != CHAT_EV_VERDICT) {
            snprintf(in->reason, sizeof in->reason, "event type %s is not expected on %s",
                     chat_event_type_name(in->ev.type), CHAT_TOPIC_MODERATION);
            chat_event_clear(&in->ev);
        } else {
            why = NULL;
        }
    }
    if (why != NULL) {
        it->kind = ITEM_INVALID;
        chat_counter_inc(p->m.invalid_moderation);
        chat_log_warn("invalid chat.moderation record skipped", CHAT_F_STR("topic", rec->topic),
                      CHAT_F_INT("partition", rec->partition), CHAT_F_INT("offset", rec->offset),
                      CHAT_F_STR("reason", why));
        return CHAT_OK;
    }
    bool remove = strcmp(in->ev.action, "remove") == 0;
    chat_counter_inc(p->m.verdicts[remove ? 0 : 1]);
    if (!remove) {
        it->kind = ITEM_SKIP;
        return CHAT_OK;
    }
    it->kind = p->conf.store.find_update != NULL ? ITEM_UPDATE : ITEM_SKIP;
    it->is_update = it->kind == ITEM_UPDATE;
    snprintf(it->src, sizeof it->src, "mod:%" PRId32 ":%" PRId64, rec->partition, rec->offset);
    chat_err_t err = batch_room_index(b, in->ev.tenant, in->ev.room, rec->partition, &it->room);
    if (err == CHAT_OK && it->kind == ITEM_UPDATE) {
        b->rooms[it->room].has_updates = true;
        b->updates++;
    }
    return err;
}

static chat_err_t parse_record(message_pipeline_t *p, batch_t *b, item_t *it)
{
    const chat_bus_record_t *rec = it->rec;
    it->ev = &it->in.ev;
    if (!message_sequencer_owns(p->conf.sequencer, rec->partition)) {
        it->kind = ITEM_FOREIGN;
        chat_log_debug("record of a partition not assigned to us skipped",
                       CHAT_F_STR("topic", rec->topic), CHAT_F_INT("partition", rec->partition),
                       CHAT_F_INT("offset", rec->offset));
        return CHAT_OK;
    }
    if (record_is_verdict(p, rec))
        return parse_verdict(p, b, it);
    message_inbound_parse(rec->value, rec->len, p->conf.max_text_chars, &it->in);
    switch (it->in.kind) {
    case MESSAGE_INBOUND_INVALID:
        it->kind = ITEM_INVALID;
        chat_counter_inc(p->m.invalid);
        chat_log_warn("invalid chat.inbound record skipped",
                      CHAT_F_INT("partition", rec->partition), CHAT_F_INT("offset", rec->offset),
                      CHAT_F_STR("reason", it->in.reason));
        return CHAT_OK;
    case MESSAGE_INBOUND_REJECT:
        it->kind = ITEM_REJECT;
        chat_log_info("send rejected", CHAT_F_STR("tenant", it->ev->tenant),
                      CHAT_F_STR("room", it->ev->room),
                      CHAT_F_STR("code", message_reject_code_name(it->in.code)),
                      CHAT_F_STR("reason", it->in.reason), CHAT_F_INT("partition", rec->partition),
                      CHAT_F_INT("offset", rec->offset));
        break;
    case MESSAGE_INBOUND_SEND:
        it->kind = ITEM_SEND;
        break;
    case MESSAGE_INBOUND_UPDATE:
        it->kind = ITEM_UPDATE;
        it->is_update = true;
        if (p->conf.store.find_update == NULL) {
            it->kind = ITEM_REJECT;
            it->in.code = MESSAGE_REJECT_BAD_REQUEST;
            snprintf(it->in.reason, sizeof it->in.reason, "this operation is not supported");
        }
        break;
    case MESSAGE_INBOUND_READ:
        it->kind = p->conf.reads.store != NULL ? ITEM_READ : ITEM_INVALID;
        if (it->kind == ITEM_INVALID) {
            chat_counter_inc(p->m.invalid);
            return CHAT_OK;
        }
        break;
    }
    message_src_format(it->src, sizeof it->src, rec->partition, rec->offset);
    chat_err_t err = batch_room_index(b, it->ev->tenant, it->ev->room, rec->partition, &it->room);
    if (err != CHAT_OK)
        return err;
    if (it->kind == ITEM_SEND) {
        b->rooms[it->room].has_sends = true;
        b->sends++;
    } else if (it->kind == ITEM_UPDATE) {
        b->rooms[it->room].has_updates = true;
        b->updates++;
    }
    b->rooms[it->room].has_reads |= it->kind == ITEM_READ;
    return CHAT_OK;
}

static chat_err_t batch_init(batch_t *b, const chat_bus_record_t *recs, size_t n)
{
    memset(b, 0, sizeof *b);
    b->items = calloc(n, sizeof *b->items);
    b->rooms = calloc(n, sizeof *b->rooms);
    b->room_index = chat_strmap_new();
    if (b->items == NULL || b->rooms == NULL || b->room_index == NULL)
        return CHAT_ERR_NOMEM;
    b->n = n;
    for (size_t i = 0; i < n; i++)
        b->items[i].rec = &recs[i];
    return CHAT_OK;
}

/* Drops what an update item's decision holds (before a retry of its step, and at the end). */
static void item_update_clear(item_t *it)
{
    message_update_rec_clear(&it->urec);
    cJSON_free(it->frame);
    it->frame = NULL;
    cJSON_Delete(it->no_reactions);
    it->no_reactions = NULL;
}

static void batch_free(batch_t *b)
{
    for (size_t i = 0; b->items != NULL && i < b->n; i++) {
        item_update_clear(&b->items[i]);
        message_inbound_clear(&b->items[i].in);
    }
    free(b->items);
    free(b->rooms);
    chat_strmap_free(b->room_index);
    message_doc_list_clear(&b->existing);
}

/* ---- retries ---- */

static bool err_retryable(chat_err_t err)
{
    return err == CHAT_ERR_MONGO || err == CHAT_ERR_TIMEOUT || err == CHAT_ERR_IO ||
           err == CHAT_ERR_REDIS;
}

/* Starts a phase of the batch that retries server's failures for store_retry_ms from now. */
static void phase_begin(message_pipeline_t *p, batch_t *b, const char *server,
                        const char *(*last_error)(void *ctx), void *ctx, chat_counter_t *retries)
{
    const message_env_t *env = &p->conf.env;
    b->phase = (retry_phase_t){.server = server,
                               .last_error = last_error,
                               .ctx = ctx,
                               .retries = retries,
                               .deadline = env->monotonic_ms(env->ctx) + p->conf.store_retry_ms};
}

/* Sleeps before the next attempt of a failed step of the current phase. Returns CHAT_OK to
 * retry, or the error to give up with: err itself if it is not retryable or the phase's
 * deadline passed, CHAT_ERR_STOPPED if a stop was requested. */
static chat_err_t retry_wait(message_pipeline_t *p, batch_t *b, chat_backoff_t *r, chat_err_t err,
                             const char *step)
{
    const message_env_t *env = &p->conf.env;
    const retry_phase_t *ph = &b->phase;
    const char *detail = ph->last_error != NULL ? ph->last_error(ph->ctx) : NULL;
    if (!err_retryable(err))
        return err;
    int64_t now = env->monotonic_ms(env->ctx);
    if (now >= ph->deadline) {
        chat_log_error("server still failing, giving up on the batch",
                       CHAT_F_STR("server", ph->server), CHAT_F_STR("step", step), CHAT_F_ERR(err),
                       CHAT_F_STR("error", detail), CHAT_F_INT("attempts", r->attempts + 1),
                       CHAT_F_INT("retry_ms", p->conf.store_retry_ms));
        return err;
    }
    int64_t delay = chat_backoff_next(r);
    int64_t wait = delay < ph->deadline - now ? delay : ph->deadline - now;
    chat_counter_inc(ph->retries);
    chat_log_warn("server failed, retrying", CHAT_F_STR("server", ph->server),
                  CHAT_F_STR("step", step), CHAT_F_ERR(err), CHAT_F_STR("error", detail),
                  CHAT_F_INT("attempt", r->attempts), CHAT_F_INT("delay_ms", wait));
    while (wait > 0) {
        if (env->stop_requested(env->ctx))
            return CHAT_ERR_STOPPED;
        int64_t slice = wait < SLEEP_SLICE_MS ? wait : SLEEP_SLICE_MS;
        env->sleep_ms(env->ctx, slice);
        wait -= slice;
    }
    return env->stop_requested(env->ctx) ? CHAT_ERR_STOPPED : CHAT_OK;
}

/* One step of a phase (MongoDB or Redis); arg is the step's own. */
typedef chat_err_t (*store_step_fn)(message_pipeline_t *p, batch_t *b, void *arg);

/* Runs fn until it succeeds, retrying the phase's server failures (retry_wait). Returns
 * CHAT_OK or what retry_wait gave up with (a non-retryable error comes back at once). */
static chat_err_t with_retry(message_pipeline_t *p, batch_t *b, const char *step, store_step_fn fn,
                             void *arg)
{
    chat_backoff_t r = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    for (;;) {
        chat_err_t err = fn(p, b, arg);
        if (err == CHAT_OK)
            return CHAT_OK;
        err = retry_wait(p, b, &r, err, step);
        if (err != CHAT_OK)
            return err;
    }
}

/* ---- direct rooms' blocks ---- */

/* True for a send that a block can refuse: by a member of a direct room ("system" writes
 * whatever the members blocked). */
static bool item_dm_send(const item_t *it)
{
    return it->kind == ITEM_SEND && chat_room_is_dm(it->ev->room) &&
           strcmp(it->ev->user, CHAT_SYSTEM_USER) != 0;
}

/* Writes the member of the direct room "dm:A:B" that is not user into buf (inbound.c made sure
 * the room is valid and user one of its members). */
static void dm_other(const char *room, const char *user, char *buf, size_t len)
{
    const char *a = room + 3;
    const char *colon = strchr(a, ':');
    size_t alen = colon != NULL ? (size_t)(colon - a) : strlen(a);
    if (colon != NULL && strlen(user) == alen && memcmp(user, a, alen) == 0)
        snprintf(buf, len, "%s", colon + 1);
    else
        snprintf(buf, len, "%.*s", (int)alen, a);
}

typedef struct blocks_arg {
    message_block_pair_t *pairs;
    size_t *map; /* item of pairs[j] */
    bool *blocked;
    size_t k;
} blocks_arg_t;

/* Step: whether the batch's direct-room sends are blocked, one query. */
static chat_err_t blocks_load(message_pipeline_t *p, batch_t *b, void *arg)
{
    (void)b;
    blocks_arg_t *ba = arg;
    return p->conf.store.find_blocks(p->conf.store.ctx, ba->pairs, ba->k, ba->blocked);
}

/* Whether a tenant has any of something (blocks, mutes), asked of a port. */
typedef chat_err_t (*tenant_has_fn)(void *ctx, const char *tenant, bool *has);

/* True if tenant may have what ask tells (hints: the answers kept): it had some when last
 * asked, it was asked longer than ttl_ms ago and has some now, or the answer could not be had
 * (then the exact lookup decides, with its retries). ask NULL: always true. */
static bool tenant_may_have(message_pipeline_t *p, chat_strmap_t *hints, int64_t ttl_ms,
                            tenant_has_fn ask, void *ctx, const char *tenant)
{
    if (ask == NULL)
        return true;
    int64_t now = p->conf.env.monotonic_ms(p->conf.env.ctx);
    tenant_hint_t *h = chat_strmap_get(hints, tenant);
    if (h != NULL && now - h->asked_ms < ttl_ms)
        return h->has;
    bool has = true;
    if (ask(ctx, tenant, &has) != CHAT_OK)
        return true;
    if (h == NULL) {
        if (chat_strmap_count(hints) >= HINT_TENANTS_MAX)
            hints_clear(hints);
        h = malloc(sizeof *h);
        if (h == NULL || !chat_strmap_put(hints, tenant, h)) {
            free(h);
            return has;
        }
    }
    h->asked_ms = now;
    h->has = has;
    return has;
}

/* True if tenant may have blocks (asked at most every MESSAGE_BLOCKS_HINT_MS). */
static bool tenant_may_block(message_pipeline_t *p, const char *tenant)
{
    return tenant_may_have(p, p->blocks_hints, MESSAGE_BLOCKS_HINT_MS,
                           p->conf.store.tenant_has_blocks, p->conf.store.ctx, tenant);
}

/* True for a direct-room send whose tenant may have blocks (tenant_may_block). */
static bool item_block_candidate(message_pipeline_t *p, const item_t *it)
{
    return item_dm_send(it) && tenant_may_block(p, it->ev->tenant);
}

/* Refuses (forbidden, "blocked") every direct-room send whose members blocked each other
 * either way. Batches without such sends cost nothing, nor do tenants without any block
 * (asked every MESSAGE_BLOCKS_HINT_MS): the pair query runs only for the others. */
static chat_err_t check_blocks(message_pipeline_t *p, batch_t *b)
{
    if (p->conf.store.find_blocks == NULL)
        return CHAT_OK;
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        k += item_block_candidate(p, &b->items[i]);
    if (k == 0)
        return CHAT_OK;
    blocks_arg_t ba = {.pairs = calloc(k, sizeof *ba.pairs),
                       .map = calloc(k, sizeof *ba.map),
                       .blocked = calloc(k, sizeof *ba.blocked)};
    char(*others)[CHAT_USER_MAX + 1] = calloc(k, sizeof *others);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (ba.pairs == NULL || ba.map == NULL || ba.blocked == NULL || others == NULL)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (ba.k == k || !item_block_candidate(p, it))
            continue;
        dm_other(it->ev->room, it->ev->user, others[ba.k], sizeof others[ba.k]);
        ba.pairs[ba.k] = (message_block_pair_t){it->ev->tenant, it->ev->user, others[ba.k]};
        ba.map[ba.k++] = i;
    }
    phase_begin(p, b, "MongoDB", p->conf.store.last_error, p->conf.store.ctx, p->m.store_retries);
    err = with_retry(p, b, "load blocks", blocks_load, &ba);
    for (size_t j = 0; err == CHAT_OK && j < ba.k; j++) {
        if (!ba.blocked[j])
            continue;
        item_t *it = &b->items[ba.map[j]];
        it->kind = ITEM_REJECT;
        it->in.code = MESSAGE_REJECT_FORBIDDEN;
        snprintf(it->in.reason, sizeof it->in.reason, "blocked");
        b->sends--;
    }
out:
    free(ba.pairs);
    free(ba.map);
    free(ba.blocked);
    free(others);
    return err;
}

/* ---- mutes ---- */

/* True for a send a mute can refuse: a user's ("system" is the tenant itself, through the
 * api; inbound.c lets no one else speak as it). */
static bool item_user_send(const item_t *it)
{
    return it->kind == ITEM_SEND && strcmp(it->ev->user, CHAT_SYSTEM_USER) != 0;
}

typedef struct mutes_arg {
    const char *tenant;
    const char **users; /* the tenant's distinct senders */
    size_t n;
    bool *muted;
    int64_t now_ms;
} mutes_arg_t;

/* Step: one tenant's senders' mutes, one round trip. */
static chat_err_t mutes_load(message_pipeline_t *p, batch_t *b, void *arg)
{
    (void)b;
    mutes_arg_t *ma = arg;
    chat_counter_inc(p->m.mute_checks);
    return p->conf.mutes.check(p->conf.mutes.ctx, ma->tenant, ma->users, ma->n, ma->now_ms,
                               ma->muted);
}

/* Fills ma with the distinct senders among the user sends of items[from..] in tenant, and
 * marks those items done. */
static void mutes_collect(batch_t *b, size_t from, bool *done, mutes_arg_t *ma)
{
    ma->tenant = b->items[from].ev->tenant;
    ma->n = 0;
    for (size_t i = from; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (done[i] || !item_user_send(it) || strcmp(it->ev->tenant, ma->tenant) != 0)
            continue;
        done[i] = true;
        bool seen = false;
        for (size_t k = 0; k < ma->n && !seen; k++)
            seen = strcmp(ma->users[k], it->ev->user) == 0;
        if (!seen)
            ma->users[ma->n++] = it->ev->user;
    }
}

/* Refuses (forbidden, "muted") every send of a user muted in its tenant. Per tenant with user
 * sends in the batch, one HMGET for its distinct senders, skipped for a tenant without any
 * mute (asked at most every MESSAGE_MUTES_HINT_MS). A Redis failure is retried like the
 * recent history's writes, not waved through: the same Redis takes the batch's recent
 * history right after, so letting the sends pass would not keep the batch going, and a
 * failing-open check would let a muted user post exactly when moderation matters (a raid
 * that also loads Redis). Nothing is stored before this step, so a retry or a give-up loses
 * nothing (the batch is not committed; its replay checks again). */
static chat_err_t check_mutes(message_pipeline_t *p, batch_t *b)
{
    const message_env_t *env = &p->conf.env;
    if (p->conf.mutes.check == NULL || b->sends == 0)
        return CHAT_OK;
    bool *done = calloc(b->n, sizeof *done);
    mutes_arg_t ma = {.users = calloc(b->n, sizeof *ma.users),
                      .muted = calloc(b->n, sizeof *ma.muted),
                      .now_ms = env->wall_ms(env->ctx)};
    chat_err_t err =
        done != NULL && ma.users != NULL && ma.muted != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    int64_t start = env->monotonic_ms(env->ctx);
    bool asked = false;
    for (size_t i = 0; err == CHAT_OK && i < b->n; i++) {
        if (done[i] || !item_user_send(&b->items[i]))
            continue;
        mutes_collect(b, i, done, &ma);
        if (!tenant_may_have(p, p->mutes_hints, MESSAGE_MUTES_HINT_MS,
                             p->conf.mutes.tenant_has_mutes, p->conf.mutes.ctx, ma.tenant))
            continue;
        if (!asked)
            phase_begin(p, b, "Redis", p->conf.mutes.last_error, p->conf.mutes.ctx,
                        p->m.mute_retries);
        asked = true;
        err = with_retry(p, b, "mutes", mutes_load, &ma);
        for (size_t j = i; err == CHAT_OK && j < b->n; j++) {
            item_t *it = &b->items[j];
            if (!item_user_send(it) || strcmp(it->ev->tenant, ma.tenant) != 0)
                continue;
            size_t k = 0;
            while (k < ma.n && strcmp(ma.users[k], it->ev->user) != 0)
                k++;
            if (k == ma.n || !ma.muted[k])
                continue;
            it->kind = ITEM_REJECT;
            it->in.code = MESSAGE_REJECT_FORBIDDEN;
            snprintf(it->in.reason, sizeof it->in.reason, "muted");
            b->sends--;
            chat_counter_inc(p->m.muted);
            chat_log_info("send of a muted user refused", CHAT_F_STR("tenant", it->ev->tenant),
                          CHAT_F_STR("room", it->ev->room), CHAT_F_STR("user", it->ev->user),
                          CHAT_F_STR("src", it->src));
        }
    }
    if (asked)
        chat_histogram_observe(p->m.mute_seconds,
                               (double)(env->monotonic_ms(env->ctx) - start) / 1000.0);
    free(done);
    free(ma.users);
    free(ma.muted);
    return err;
}

/* ---- plan: repeats, seqs, documents ---- */

static bool item_new(const item_t *it)
{
    return it->kind == ITEM_SEND && it->state == SEND_NEW;
}

static message_dedup_send_t item_key(const item_t *it)
{
    return (message_dedup_send_t){it->ev->tenant, it->ev->room, it->ev->user, it->ev->cid, it->src};
}

/* The sends matching keep, as dedup keys in batch order; map[j] is the item of keys[j].
 * Returns how many, or SIZE_MAX if out of memory (nothing to free then). */
static size_t collect_keys(const batch_t *b, bool (*keep)(const item_t *),
                           message_dedup_send_t **keys, size_t **map)
{
    *keys = calloc(b->n, sizeof **keys);
    *map = calloc(b->n, sizeof **map);
    if (*keys == NULL || *map == NULL) {
        free(*keys);
        free(*map);
        return SIZE_MAX;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!keep(&b->items[i]))
            continue;
        (*keys)[k] = item_key(&b->items[i]);
        (*map)[k++] = i;
    }
    return k;
}

static bool item_send(const item_t *it)
{
    return it->kind == ITEM_SEND;
}

/* Resolves the batch's own repeats in memory: a send whose (tenant, room, from, cid) an earlier
 * send of the batch has acks that one's message; every other send starts as NEW. */
static chat_err_t plan_repeats(batch_t *b)
{
    message_dedup_send_t *keys;
    size_t *map;
    size_t k = collect_keys(b, item_send, &keys, &map);
    if (k == SIZE_MAX)
        return CHAT_ERR_NOMEM;
    message_dedup_decision_t *dec = calloc(k > 0 ? k : 1, sizeof *dec);
    chat_err_t err = dec == NULL ? CHAT_ERR_NOMEM : message_dedup_decide(keys, k, NULL, 0, dec);
    for (size_t j = 0; err == CHAT_OK && j < k; j++) {
        item_t *it = &b->items[map[j]];
        it->state = dec[j].kind == MESSAGE_DEDUP_REPEAT ? SEND_REPEAT : SEND_NEW;
        it->ref = dec[j].kind == MESSAGE_DEDUP_REPEAT ? map[dec[j].ref] : 0;
    }
    free(keys);
    free(map);
    free(dec);
    return err;
}

/* Step: the last seq of every room with sends, from the sequencer or, for the rooms it does not
 * remember (first touch since the assignment), from MongoDB in one query. */
static chat_err_t plan_load_rooms(message_pipeline_t *p, batch_t *b, void *arg)
{
    (void)arg;
    message_room_ref_t *refs = calloc(b->nrooms, sizeof *refs);
    size_t *idx = calloc(b->nrooms, sizeof *idx);
    int64_t *highest = calloc(b->nrooms, sizeof *highest);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (refs == NULL || idx == NULL || highest == NULL)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < b->nrooms; i++) {
        batch_room_t *r = &b->rooms[i];
        if (r->has_sends &&
            !message_sequencer_plan_begin(p->conf.sequencer, r->tenant, r->room, &r->seq)) {
            refs[k] = (message_room_ref_t){r->tenant, r->room};
            idx[k++] = i;
        }
    }
    err = k > 0 ? p->conf.store.highest_seqs(p->conf.store.ctx, refs, k, highest) : CHAT_OK;
    for (size_t j = 0; err == CHAT_OK && j < k; j++)
        message_seq_plan_taken(&b->rooms[idx[j]].seq, highest[j]);
out:
    free(refs);
    free(idx);
    free(highest);
    return err;
}

/* Plans every send still NEW, in batch order: its room's next seq after what the room is known
 * to hold, a fresh ObjectId and ts = now. Sends of a room thus take consecutive seqs in offset
 * order, and the ordered insert stores a prefix of each room's plan. */
static void plan_assign(message_pipeline_t *p, batch_t *b)
{
    const message_env_t *env = &p->conf.env;
    for (size_t i = 0; i < b->nrooms; i++)
        message_seq_plan_restart(&b->rooms[i].seq);
    for (size_t i = 0; i < b->n; i++) {
        item_t *it = &b->items[i];
        if (!item_new(it))
            continue;
        const chat_event_t *ev = it->ev;
        it->doc = (message_doc_t){.tenant = ev->tenant,
                                  .room = ev->room,
                                  .from = ev->user,
                                  .name = ev->name,
                                  .text = ev->text,
                                  .notice = ev->notice,
                                  .target = ev->target,
                                  .cid = ev->cid,
                                  .src = it->src};
        it->doc.seq = message_seq_plan_next(&b->rooms[it->room].seq);
        it->doc.ts = env->wall_ms(env->ctx);
        env->new_id(env->ctx, it->doc.id);
        it->ambiguous = false;
    }
}

/* ---- store ---- */

static void item_stored(batch_t *b, item_t *it)
{
    batch_room_t *r = &b->rooms[it->room];
    it->state = SEND_STORED;
    it->ambiguous = false;
    message_seq_plan_taken(&r->seq, it->doc.seq);
}

static bool item_ambiguous(const item_t *it)
{
    return item_new(it) && it->ambiguous;
}

/* Item dup met a duplicate key after an earlier insert failed without saying what it stored:
 * asks which of the ambiguous documents exist by _id (ours: that insert stored them, a prefix of
 * its plan); the others certainly are not stored. Returns CHAT_OK if dup's own document was
 * among them (progress: insert the rest), CHAT_ERR_DUPLICATE if not (a real duplicate), or the
 * lookup's error (nothing changed). */
static chat_err_t store_resolve_ambiguous(message_pipeline_t *p, batch_t *b, size_t dup)
{
    size_t *idx = calloc(b->n, sizeof *idx);
    const char **ids = calloc(b->n, sizeof *ids);
    bool *found = calloc(b->n, sizeof *found);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (idx == NULL || ids == NULL || found == NULL)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!item_ambiguous(&b->items[i]))
            continue;
        ids[k] = b->items[i].doc.id;
        idx[k++] = i;
    }
    err = p->conf.store.find_ids(p->conf.store.ctx, ids, k, found);
    if (err != CHAT_OK)
        goto out;
    for (size_t j = 0; j < k; j++) {
        if (found[j])
            item_stored(b, &b->items[idx[j]]);
        else
            b->items[idx[j]].ambiguous = false;
    }
    err = b->items[dup].state == SEND_STORED ? CHAT_OK : CHAT_ERR_DUPLICATE;
out:
    free(idx);
    free(ids);
    free(found);
    return err;
}

/* One ordered insert of the NEW documents, in batch order. Returns CHAT_OK if every one was
 * stored or an ambiguous duplicate turned out to be ours (call again for the rest),
 * CHAT_ERR_DUPLICATE with *dup = the item whose document met a duplicate key that is not its
 * own, or a failure to retry with the same plan (the documents it may have stored are marked
 * ambiguous). */
static chat_err_t store_insert_once(message_pipeline_t *p, batch_t *b, size_t *dup)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        k += item_new(&b->items[i]);
    message_doc_t *docs = calloc(k, sizeof *docs);
    size_t *idx = calloc(k, sizeof *idx);
    chat_err_t *results = calloc(k, sizeof *results);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (docs == NULL || idx == NULL || results == NULL)
        goto out;
    k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!item_new(&b->items[i]))
            continue;
        docs[k] = b->items[i].doc;
        results[k] = CHAT_ERR_MONGO;
        idx[k++] = i;
    }
    p->conf.store.insert(p->conf.store.ctx, docs, k, results);
    err = CHAT_OK;
    size_t failed = k;
    for (size_t j = 0; j < k; j++) {
        item_t *it = &b->items[idx[j]];
        if (results[j] == CHAT_OK) {
            item_stored(b, it);
            continue;
        }
        if (results[j] == CHAT_ERR_STOPPED)
            continue;
        if (results[j] != CHAT_ERR_DUPLICATE)
            it->ambiguous = true;
        if (failed == k) {
            failed = j;
            err = results[j];
        }
    }
    if (err == CHAT_ERR_DUPLICATE) {
        *dup = idx[failed];
        if (b->items[*dup].ambiguous)
            err = store_resolve_ambiguous(p, b, *dup);
    }
out:
    free(docs);
    free(idx);
    free(results);
    return err;
}

static bool any_new(const batch_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (item_new(&b->items[i]))
            return true;
    return false;
}

/* Step: inserts until no send is NEW; stops with CHAT_ERR_DUPLICATE (arg: the item) when one
 * meets a duplicate key that is not its own. */
static chat_err_t store_insert_all(message_pipeline_t *p, batch_t *b, void *arg)
{
    while (any_new(b)) {
        chat_err_t err = store_insert_once(p, b, arg);
        if (err != CHAT_OK)
            return err;
    }
    return CHAT_OK;
}

typedef struct lookup_arg {
    size_t dup;
    bool collision; /* out: dup's key is not stored, so its seq is what collided */
} lookup_arg_t;

/* Step (the rare path: one query, a scan on FerretDB): which NEW sends, the one that met the
 * duplicate and every one after it, already have their (tenant, room, from, cid) stored. Those
 * stored by their own record (src) become REPUBLISH, the others RESEND. Asking for all of them
 * at once resolves in one round a batch replayed after a crash or holding several resends. */
static chat_err_t store_lookup_existing(message_pipeline_t *p, batch_t *b, void *arg)
{
    lookup_arg_t *la = arg;
    message_dedup_send_t *keys;
    size_t *map;
    size_t k = collect_keys(b, item_new, &keys, &map);
    if (k == SIZE_MAX)
        return CHAT_ERR_NOMEM;
    message_dedup_decision_t *dec = calloc(k > 0 ? k : 1, sizeof *dec);
    chat_err_t err = dec == NULL
                         ? CHAT_ERR_NOMEM
                         : p->conf.store.find_existing(p->conf.store.ctx, keys, k, &b->existing);
    if (err == CHAT_OK)
        err = message_dedup_decide(keys, k, b->existing.docs, b->existing.n, dec);
    size_t resends = 0, republished = 0;
    for (size_t j = 0; err == CHAT_OK && j < k; j++) {
        item_t *it = &b->items[map[j]];
        if (dec[j].kind == MESSAGE_DEDUP_RESEND || dec[j].kind == MESSAGE_DEDUP_REPUBLISH) {
            bool again = dec[j].kind == MESSAGE_DEDUP_REPUBLISH;
            it->state = again ? SEND_REPUBLISH : SEND_RESEND;
            it->ref = dec[j].ref;
            republished += again;
            resends += !again;
            /* Its seq is taken, and so is every lower one (stored documents are prefixes of
             * plans): another writer may have stored past what this batch knew. */
            batch_room_t *r = &b->rooms[it->room];
            message_seq_plan_taken(&r->seq, b->existing.docs[it->ref].seq);
        }
    }
    if (err == CHAT_OK) {
        la->collision = b->items[la->dup].state == SEND_NEW;
        chat_log_info("duplicate key on insert: stored sends looked up",
                      CHAT_F_STR("tenant", b->items[la->dup].ev->tenant),
                      CHAT_F_STR("room", b->items[la->dup].ev->room),
                      CHAT_F_STR("src", b->items[la->dup].src), CHAT_F_INT("sends", k),
                      CHAT_F_INT("resends", resends), CHAT_F_INT("republished", republished),
                      CHAT_F_BOOL("seq_collision", la->collision));
    }
    free(keys);
    free(map);
    free(dec);
    return err;
}

/* Step: the highest seq of room *arg read again from MongoDB (another writer took seqs). */
static chat_err_t store_reload_room(message_pipeline_t *p, batch_t *b, void *arg)
{
    batch_room_t *r = &b->rooms[*(const size_t *)arg];
    message_room_ref_t ref = {r->tenant, r->room};
    int64_t highest = 0;
    chat_err_t err = p->conf.store.highest_seqs(p->conf.store.ctx, &ref, 1, &highest);
    if (err == CHAT_OK)
        message_seq_plan_taken(&r->seq, highest);
    return err;
}

/* A seq collision: another writer holds the planned seq of lookup's send. Returns CHAT_OK after
 * reloading its room, CHAT_ERR_DUPLICATE once collisions reached max_conflict_rounds, or the
 * reload's error. */
static chat_err_t store_on_collision(message_pipeline_t *p, batch_t *b, const lookup_arg_t *la,
                                     int *collisions)
{
    size_t room = b->items[la->dup].room;
    const batch_room_t *r = &b->rooms[room];
    chat_counter_inc(p->m.conflicts);
    if (++*collisions >= p->conf.max_conflict_rounds) {
        chat_log_error("seq collisions persist, giving up on the batch",
                       CHAT_F_INT("collisions", *collisions), CHAT_F_STR("tenant", r->tenant),
                       CHAT_F_STR("room", r->room));
        return CHAT_ERR_DUPLICATE;
    }
    chat_log_warn("seq collision on insert (another writer in the room?), reloading the room",
                  CHAT_F_STR("tenant", r->tenant), CHAT_F_STR("room", r->room),
                  CHAT_F_INT("partition", r->partition),
                  CHAT_F_INT("seq", b->items[la->dup].doc.seq));
    return with_retry(p, b, "reload room", store_reload_room, &room);
}

/* Plans and inserts until every send is stored or resolved. Each duplicate key costs a round
 * (lookup, maybe a reload, plan again from what is stored) that resolves at least the send that
 * met it, unless its seq collided; so the rounds are bounded by the sends plus the collisions,
 * and the bound below only guards against a store that contradicts itself. */
static chat_err_t store_rounds(message_pipeline_t *p, batch_t *b)
{
    size_t max_rounds = b->sends + (size_t)p->conf.max_conflict_rounds;
    int collisions = 0;
    plan_assign(p, b);
    for (size_t round = 1;; round++) {
        lookup_arg_t la = {0};
        chat_err_t err = with_retry(p, b, "insert", store_insert_all, &la.dup);
        if (err != CHAT_ERR_DUPLICATE)
            return err;
        if (round >= max_rounds) {
            chat_log_error("duplicate keys persist, giving up on the batch",
                           CHAT_F_INT("rounds", round));
            return CHAT_ERR_DUPLICATE;
        }
        err = with_retry(p, b, "duplicate lookup", store_lookup_existing, &la);
        if (err == CHAT_OK && la.collision)
            err = store_on_collision(p, b, &la, &collisions);
        if (err != CHAT_OK)
            return err;
        plan_assign(p, b);
    }
}

/* After the batch's store phase: the sequencer learns each room's last stored seq, or, if the
 * phase failed, forgets the rooms (what they hold is no longer known). */
static void store_update_sequencer(message_pipeline_t *p, const batch_t *b, bool stored)
{
    for (size_t i = 0; i < b->nrooms; i++) {
        const batch_room_t *r = &b->rooms[i];
        if (!r->has_sends)
            continue;
        message_sequencer_plan_end(p->conf.sequencer, r->tenant, r->room, r->partition, &r->seq,
                                   stored);
    }
}

static chat_err_t store_sends(message_pipeline_t *p, batch_t *b)
{
    const message_env_t *env = &p->conf.env;
    if (b->sends == 0)
        return CHAT_OK;
    int64_t start = env->monotonic_ms(env->ctx);
    phase_begin(p, b, "MongoDB", p->conf.store.last_error, p->conf.store.ctx, p->m.store_retries);
    chat_err_t err = plan_repeats(b);
    if (err == CHAT_OK)
        err = with_retry(p, b, "load rooms", plan_load_rooms, NULL);
    if (err == CHAT_OK)
        err = store_rounds(p, b);
    store_update_sequencer(p, b, err == CHAT_OK);
    chat_histogram_observe(p->m.store_seconds,
                           (double)(env->monotonic_ms(env->ctx) - start) / 1000.0);
    return err;
}

/* ---- edits, deletes, reactions ---- */

/* The msg event of a stored message in its current state (strings borrowed from d). */
static void doc_msg_event(const message_doc_t *d, chat_event_t *ev)
{
    ev->seq = d->seq;
    ev->has_seq = true;
    ev->ts = d->ts;
    ev->has_ts = true;
    ev->cid = d->cid;
    ev->id = d->id;
    ev->user = d->from;
    ev->name = d->name;
    ev->text = d->deleted || d->removed ? NULL : d->text;
    ev->notice = d->notice;
    ev->target = d->target;
    ev->edited = d->edited;
    ev->has_edited = d->edited > 0;
    ev->deleted = d->deleted;
    ev->has_deleted = d->deleted;
    ev->removed = d->removed;
    ev->has_removed = d->removed;
    ev->reason = d->removed ? d->reason : NULL;
    ev->reactions = d->reactions != NULL && d->reactions->child != NULL ? d->reactions : NULL;
}

/* The msg frame (printed compactly, cJSON_free) of message msg with the state of rec: what
 * the recent history holds for it from now on. NULL if out of memory. */
static char *changed_frame(const message_doc_t *msg, const message_update_rec_t *rec)
{
    message_doc_t now = *msg;
    now.text = rec->text;
    now.edited = rec->edited;
    now.deleted = rec->deleted;
    now.removed = rec->removed;
    now.reason = rec->reason;
    now.reactions = rec->reactions;
    chat_event_t ev = {.type = CHAT_EV_MSG, .tenant = msg->tenant, .room = msg->room};
    doc_msg_event(&now, &ev);
    cJSON *frame = chat_frame_msg_new(&ev);
    char *text = frame != NULL ? cJSON_PrintUnformatted(frame) : NULL;
    cJSON_Delete(frame);
    return text;
}

/* An update refused after looking at the message: a reject to its origin, published in the
 * room's order of updates. */
static void update_refuse(item_t *it, message_reject_code_t code, const char *why)
{
    it->kind = ITEM_REJECT;
    it->in.code = code;
    snprintf(it->in.reason, sizeof it->in.reason, "%s", why);
}

/* True if the update item is a verdict (chat.moderation's), not a user's request. */
static bool item_verdict(const item_t *it)
{
    return it->ev->type == CHAT_EV_VERDICT;
}

/* Who acts in an update item's record: its user, or moderation for a verdict. */
static const char *update_actor(const item_t *it)
{
    return item_verdict(it) ? MESSAGE_UPDATE_MODERATION_USER : it->ev->user;
}

/* A verdict that changes nothing: nobody is answered (it has no origin); committed. */
static void verdict_skip(item_t *it, const char *why)
{
    chat_log_info("verdict changes nothing", CHAT_F_STR("tenant", it->ev->tenant),
                  CHAT_F_STR("room", it->ev->room), CHAT_F_STR("id", it->ev->id),
                  CHAT_F_STR("src", it->src), CHAT_F_STR("why", why));
    item_update_clear(it);
    it->kind = ITEM_SKIP;
}

/* Copies the strings of a new change into rec (owned). */
static bool update_rec_fill(message_update_rec_t *rec, const item_t *it, const char *req)
{
    const chat_event_t *ev = it->ev;
    rec->tenant = strdup(ev->tenant);
    rec->room = strdup(ev->room);
    rec->user = strdup(update_actor(it));
    rec->req = strdup(req);
    rec->src = strdup(it->src);
    return rec->tenant != NULL && rec->room != NULL && rec->user != NULL && rec->req != NULL &&
           rec->src != NULL;
}

/* The request's change is already recorded (old, taken over): by another record (a resend:
 * its original answer) or by this one before a crash or a failed write (its message gets the
 * change if it lacks it, and the change is published again). */
static chat_err_t update_known(message_pipeline_t *p, batch_t *b, item_t *it,
                               message_update_rec_t *old)
{
    const message_store_port_t *st = &p->conf.store;
    batch_room_t *r = &b->rooms[it->room];
    it->urec = *old;
    memset(old, 0, sizeof *old);
    if (r->useq_last < it->urec.useq)
        r->useq_last = it->urec.useq;
    if (strcmp(it->urec.src, it->src) != 0) {
        it->ustate = UPDATE_RESEND;
        if (item_verdict(it))
            verdict_skip(it, "the message was removed by an earlier verdict");
        return CHAT_OK;
    }
    message_doc_list_t msgs = MESSAGE_DOC_LIST_INIT;
    chat_err_t err = st->find_message(st->ctx, it->ev->tenant, it->ev->room, it->urec.id, &msgs);
    if (err == CHAT_OK && msgs.n > 0 && msgs.docs[0].useq < it->urec.useq)
        err = st->apply_update(st->ctx, &it->urec);
    if (err == CHAT_OK && msgs.n > 0) {
        /* A later change already in the message (it is replayed after this one) is what the
         * recent history must hold. */
        const message_doc_t *m = &msgs.docs[0];
        message_update_rec_t cur = {.text = (char *)m->text,
                                    .edited = m->edited,
                                    .deleted = m->deleted,
                                    .removed = m->removed,
                                    .reason = (char *)m->reason,
                                    .reactions = m->reactions};
        it->frame = changed_frame(m, m->useq > it->urec.useq ? &cur : &it->urec);
        if (it->frame == NULL)
            err = CHAT_ERR_NOMEM;
    }
    message_doc_list_clear(&msgs);
    if (err != CHAT_OK)
        return err;
    it->ustate = UPDATE_REPUBLISH;
    return CHAT_OK;
}

/* Step: one edit, delete or react (arg: the item), in the room's order: the request's own
 * record if it was made before (update_known); else the message as stored, the rules
 * (updates.c), and for a change the room's next useq: the update record first (its unique
 * indexes catch a resend racing in and a second writer), then the message's new state. A
 * failure in between leaves a record whose retry (or replay) finishes the job. */
static chat_err_t update_step(message_pipeline_t *p, batch_t *b, void *arg)
{
    item_t *it = arg;
    const chat_event_t *ev = it->ev;
    const message_store_port_t *st = &p->conf.store;
    const message_env_t *env = &p->conf.env;
    batch_room_t *r = &b->rooms[it->room];
    item_update_clear(it);
    char req[MESSAGE_UPDATE_REQ_MAX];
    message_update_req_key(ev, it->src, req, sizeof req);
    for (int collisions = 0;; collisions++) {
        bool found = false;
        message_update_rec_t rec;
        chat_err_t err =
            st->find_update(st->ctx, ev->tenant, ev->room, update_actor(it), req, &rec, &found);
        if (err != CHAT_OK)
            return err;
        if (found) {
            err = update_known(p, b, it, &rec);
            message_update_rec_clear(&rec);
            return err;
        }
        message_doc_list_t msgs = MESSAGE_DOC_LIST_INIT;
        err = st->find_message(st->ctx, ev->tenant, ev->room, ev->id, &msgs);
        if (err != CHAT_OK || msgs.n == 0) {
            message_doc_list_clear(&msgs);
            if (err == CHAT_OK && item_verdict(it))
                verdict_skip(it, "no message with this id in the room");
            else if (err == CHAT_OK)
                update_refuse(it, MESSAGE_REJECT_NOT_FOUND, "no message with this id in the room");
            return err;
        }
        const message_doc_t *msg = &msgs.docs[0];
        const char *why = NULL;
        switch (message_update_decide(ev, msg, env->wall_ms(env->ctx), &rec, &why)) {
        case MESSAGE_UPDATE_CHANGE:
            break;
        case MESSAGE_UPDATE_NOOP:
            if (item_verdict(it)) {
                verdict_skip(it, msg->removed ? "the message was already removed"
                                              : "the message was deleted");
                message_doc_list_clear(&msgs);
                return CHAT_OK;
            }
            it->ustate = UPDATE_NOOP;
            it->urec.id = strdup(msg->id);
            it->urec.op = strdup(message_update_op(ev->type));
            it->urec.seq = msg->seq;
            it->urec.useq = msg->useq;
            message_doc_list_clear(&msgs);
            return it->urec.id != NULL && it->urec.op != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
        case MESSAGE_UPDATE_FORBIDDEN:
            update_refuse(it, MESSAGE_REJECT_FORBIDDEN, why);
            message_doc_list_clear(&msgs);
            return CHAT_OK;
        case MESSAGE_UPDATE_NOT_FOUND:
            update_refuse(it, MESSAGE_REJECT_NOT_FOUND, why);
            message_doc_list_clear(&msgs);
            return CHAT_OK;
        case MESSAGE_UPDATE_TOO_MANY:
            update_refuse(it, MESSAGE_REJECT_BAD_REQUEST, why);
            message_doc_list_clear(&msgs);
            return CHAT_OK;
        case MESSAGE_UPDATE_NOMEM:
            message_doc_list_clear(&msgs);
            return CHAT_ERR_NOMEM;
        }
        rec.useq = r->useq_last + 1;
        err = update_rec_fill(&rec, it, req) ? st->insert_update(st->ctx, &rec) : CHAT_ERR_NOMEM;
        if (err == CHAT_OK) {
            r->useq_last = rec.useq;
            err = st->apply_update(st->ctx, &rec);
        }
        if (err == CHAT_OK) {
            it->ustate = UPDATE_APPLIED;
            it->msg_ts = msg->ts;
            it->urec = rec;
            memset(&rec, 0, sizeof rec);
            it->frame = changed_frame(msg, &it->urec);
            if (it->frame == NULL)
                err = CHAT_ERR_NOMEM;
        }
        message_update_rec_clear(&rec);
        message_doc_list_clear(&msgs);
        if (err != CHAT_ERR_DUPLICATE)
            return err;
        /* The request's key (a resend that got in first: found by the next lookup) or the
         * useq (another writer of the room, briefly: reload) was taken. */
        chat_counter_inc(p->m.conflicts);
        if (collisions + 1 >= p->conf.max_conflict_rounds) {
            chat_log_error("useq collisions persist, giving up on the batch",
                           CHAT_F_STR("tenant", r->tenant), CHAT_F_STR("room", r->room));
            return CHAT_ERR_DUPLICATE;
        }
        message_room_ref_t ref = {r->tenant, r->room};
        int64_t highest = 0;
        if ((err = st->highest_useqs(st->ctx, &ref, 1, &highest)) != CHAT_OK)
            return err;
        if (r->useq_last < highest)
            r->useq_last = highest;
    }
}

/* Step: the last useq of every room with sends or updates, from the sequencer or, for the rooms
 * it does not remember, from MongoDB in one query for the batch. Every room the batch writes
 * into the recent history gets its useq key written with it. */
static chat_err_t load_useqs(message_pipeline_t *p, batch_t *b, void *arg)
{
    bool *queried = arg;
    message_room_ref_t *refs = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *refs);
    size_t *idx = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *idx);
    int64_t *highest = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *highest);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (refs == NULL || idx == NULL || highest == NULL)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < b->nrooms; i++) {
        batch_room_t *r = &b->rooms[i];
        if ((!r->has_sends && !r->has_updates) || r->useq_loaded)
            continue;
        if (message_sequencer_useq_get(p->conf.sequencer, r->tenant, r->room, &r->useq_last)) {
            r->useq_loaded = true;
            continue;
        }
        refs[k] = (message_room_ref_t){r->tenant, r->room};
        idx[k++] = i;
    }
    *queried = *queried || k > 0;
    err = k > 0 ? p->conf.store.highest_useqs(p->conf.store.ctx, refs, k, highest) : CHAT_OK;
    for (size_t j = 0; err == CHAT_OK && j < k; j++) {
        b->rooms[idx[j]].useq_last = highest[j];
        b->rooms[idx[j]].useq_loaded = true;
    }
out:
    free(refs);
    free(idx);
    free(highest);
    return err;
}

/* ---- read marks ---- */

/* Step: the latest seq of every room with reads that the sequencer does not remember (the
 * others get theirs from it), from MongoDB in one query; remembered from then on. */
static chat_err_t reads_load_rooms(message_pipeline_t *p, batch_t *b, void *arg)
{
    (void)arg;
    message_room_ref_t *refs = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *refs);
    size_t *idx = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *idx);
    int64_t *highest = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *highest);
    chat_err_t err = refs != NULL && idx != NULL && highest != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; err == CHAT_OK && i < b->nrooms; i++) {
        batch_room_t *r = &b->rooms[i];
        if (r->has_reads &&
            !message_sequencer_get(p->conf.sequencer, r->tenant, r->room, &r->seq.last)) {
            refs[k] = (message_room_ref_t){r->tenant, r->room};
            idx[k++] = i;
        }
    }
    if (err == CHAT_OK && k > 0)
        err = p->conf.store.highest_seqs(p->conf.store.ctx, refs, k, highest);
    for (size_t j = 0; err == CHAT_OK && j < k; j++) {
        batch_room_t *r = &b->rooms[idx[j]];
        r->seq.last = highest[j];
        /* Not remembered (out of memory): the next batch loads it again. */
        message_sequencer_set(p->conf.sequencer, r->tenant, r->room, r->partition, highest[j]);
    }
    free(refs);
    free(idx);
    free(highest);
    return err;
}

/* Loads the last useq of the batch's rooms (load_useqs), then decides and stores every edit,
 * delete and react of the batch, in batch order (so each room's useqs ascend in offset order),
 * after the batch's sends are stored (a send and an edit of it in one batch: the message
 * exists). MongoDB failures are retried like the store's. Then the sequencer learns each
 * room's last useq, or forgets the room if the phase failed. */
static chat_err_t store_updates(message_pipeline_t *p, batch_t *b)
{
    const message_env_t *env = &p->conf.env;
    if (p->conf.store.highest_useqs == NULL || (b->updates == 0 && b->sends == 0))
        return CHAT_OK;
    int64_t start = env->monotonic_ms(env->ctx);
    phase_begin(p, b, "MongoDB", p->conf.store.last_error, p->conf.store.ctx, p->m.store_retries);
    bool queried = false;
    chat_err_t err = with_retry(p, b, "load useqs", load_useqs, &queried);
    for (size_t i = 0; err == CHAT_OK && i < b->n; i++) {
        item_t *it = &b->items[i];
        if (it->kind != ITEM_UPDATE)
            continue;
        err = with_retry(p, b, "update", update_step, it);
        bool change = it->kind == ITEM_UPDATE &&
                      (it->ustate == UPDATE_APPLIED || it->ustate == UPDATE_REPUBLISH);
        if (err == CHAT_OK && change && it->urec.reactions == NULL &&
            strcmp(it->urec.op, "react") == 0 && (it->no_reactions = cJSON_CreateObject()) == NULL)
            err = CHAT_ERR_NOMEM;
    }
    for (size_t i = 0; i < b->nrooms; i++) {
        const batch_room_t *r = &b->rooms[i];
        if (!r->has_updates && !r->has_sends)
            continue;
        if (err != CHAT_OK || !r->useq_loaded ||
            message_sequencer_useq_set(p->conf.sequencer, r->tenant, r->room, r->partition,
                                       r->useq_last) != CHAT_OK)
            message_sequencer_forget(p->conf.sequencer, r->tenant, r->room);
    }
    /* A batch of sends whose rooms are remembered did no MongoDB work here. */
    if (queried || b->updates > 0)
        chat_histogram_observe(p->m.store_seconds,
                               (double)(env->monotonic_ms(env->ctx) - start) / 1000.0);
    return err;
}

/* Step: the batch's marks stored (arg: the reads_step_t). */
typedef struct reads_step {
    const message_read_mark_t *marks;
    size_t n;
    bool *moved;
} reads_step_t;

static chat_err_t reads_store_step(message_pipeline_t *p, batch_t *b, void *arg)
{
    (void)b;
    reads_step_t *st = arg;
    return p->conf.reads.store(p->conf.reads.ctx, st->marks, st->n, st->moved);
}

/* After the sends are stored: each read checked against its room's latest seq at its place
 * (reads.h), the beyond ones turned into rejects, the batch's highest mark per user and room
 * stored, the moved ones marked for publishing. Retries MongoDB like the store phase. */
static chat_err_t store_reads(message_pipeline_t *p, batch_t *b)
{
    size_t nreads = 0;
    for (size_t i = 0; i < b->n; i++)
        nreads += b->items[i].kind == ITEM_READ;
    if (nreads == 0)
        return CHAT_OK;
    phase_begin(p, b, "MongoDB", p->conf.store.last_error, p->conf.store.ctx, p->m.store_retries);
    /* Each read room's latest after the batch: remembered, or loaded (one query). */
    message_read_in_t *in = calloc(nreads, sizeof *in);
    int64_t *latest = calloc(nreads, sizeof *latest);
    message_read_fate_t *fate = calloc(nreads, sizeof *fate);
    message_read_mark_t *marks = calloc(nreads, sizeof *marks);
    size_t *mark_of = calloc(nreads, sizeof *mark_of), *item_of = calloc(nreads, sizeof *item_of);
    bool *moved = calloc(nreads, sizeof *moved);
    chat_err_t err =
        in && latest && fate && marks && mark_of && item_of && moved ? CHAT_OK : CHAT_ERR_NOMEM;
    if (err == CHAT_OK)
        err = with_retry(p, b, "load rooms of reads", reads_load_rooms, NULL);
    /* Walking backwards counts the messages each room stored after each read. */
    int64_t *stored_after = err == CHAT_OK ? calloc(b->nrooms, sizeof *stored_after) : NULL;
    if (err == CHAT_OK && stored_after == NULL)
        err = CHAT_ERR_NOMEM;
    size_t k = nreads;
    for (size_t i = b->n; err == CHAT_OK && i-- > 0;) {
        const item_t *it = &b->items[i];
        if (it->kind == ITEM_SEND && it->state == SEND_STORED)
            stored_after[it->room]++;
        if (it->kind != ITEM_READ)
            continue;
        k--;
        item_of[k] = i;
        in[k] = (message_read_in_t){.tenant = it->ev->tenant,
                                    .room = it->ev->room,
                                    .user = it->ev->user,
                                    .seq = it->ev->seq,
                                    .ts = it->ev->ts,
                                    .stored_after = stored_after[it->room]};
        latest[k] = b->rooms[it->room].seq.last;
    }
    free(stored_after);
    size_t nmarks = 0;
    if (err == CHAT_OK)
        err = message_reads_decide(in, latest, nreads, fate, marks, &nmarks, mark_of);
    reads_step_t st = {marks, nmarks, moved};
    if (err == CHAT_OK && nmarks > 0) {
        phase_begin(p, b, "MongoDB", p->conf.reads.last_error, p->conf.reads.ctx,
                    p->m.store_retries);
        err = with_retry(p, b, "read marks", reads_store_step, &st);
    }
    for (size_t j = 0; err == CHAT_OK && j < nreads; j++) {
        item_t *it = &b->items[item_of[j]];
        chat_counter_inc(p->m.reads[fate[j]]);
        if (fate[j] == MESSAGE_READ_MARK) {
            it->read_moved = moved[mark_of[j]];
            if (!it->read_moved)
                chat_counter_inc(p->m.reads_ignored);
        } else if (fate[j] == MESSAGE_READ_BEYOND && it->ev->origin_gw != NULL) {
            it->kind = ITEM_REJECT;
            it->in.code = MESSAGE_REJECT_BAD_REQUEST;
            snprintf(it->in.reason, sizeof it->in.reason,
                     "seq %lld is beyond the room's latest message (%lld)", (long long)it->ev->seq,
                     (long long)(latest[j] - in[j].stored_after));
            chat_log_info("read rejected", CHAT_F_STR("tenant", it->ev->tenant),
                          CHAT_F_STR("room", it->ev->room), CHAT_F_STR("user", it->ev->user),
                          CHAT_F_INT("seq", it->ev->seq),
                          CHAT_F_INT("latest", latest[j] - in[j].stored_after));
        }
    }
    free(in);
    free(latest);
    free(fate);
    free(marks);
    free(mark_of);
    free(item_of);
    free(moved);
    return err;
}

/* ---- publish ---- */

typedef struct out_event {
    size_t item;
    size_t room;
    int update;  /* 1 for the outcomes of edits, deletes and reacts */
    int64_t seq; /* sends: the message's seq, 0 for rejects; updates: the item's index */
} out_event_t;

/* Per room: the sends' outcomes in ascending seq (republished messages and the acks of resends
 * carry older seqs than the batch's new messages), then in batch order; after them the
 * updates' outcomes in batch order, which is their useq order. */
static int out_event_cmp(const void *a, const void *b)
{
    const out_event_t *x = a, *y = b;
    if (x->room != y->room)
        return x->room < y->room ? -1 : 1;
    if (x->update != y->update)
        return x->update < y->update ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->item < y->item ? -1 : (x->item > y->item);
}

/* The stored message an item's outcome refers to (NULL for rejects). */
static const message_doc_t *item_message(const batch_t *b, const item_t *it)
{
    if (it->kind != ITEM_SEND)
        return NULL;
    switch (it->state) {
    case SEND_NEW:
    case SEND_STORED:
        return &it->doc;
    case SEND_RESEND:
    case SEND_REPUBLISH:
        return &b->existing.docs[it->ref];
    case SEND_REPEAT: /* ref is the first send with the key, never itself a repeat */
        return item_message(b, &b->items[it->ref]);
    }
    return NULL;
}

/* Fills ev with the outcome of an update item: the update event (the message's whole state after
 * the change; the actor's ack is made of it by broadcast) or the ack of a resend or no-op.
 * Strings are borrowed from the batch. */
static void update_outcome_event(const item_t *it, chat_event_t *ev)
{
    const message_update_rec_t *u = &it->urec;
    ev->rid = it->ev->rid;
    ev->id = u->id;
    ev->op = u->op;
    ev->seq = u->seq;
    ev->has_seq = true;
    ev->useq = u->useq;
    ev->has_useq = u->useq > 0;
    if (it->ustate == UPDATE_RESEND || it->ustate == UPDATE_NOOP) {
        ev->type = CHAT_EV_ACK;
        return;
    }
    ev->type = CHAT_EV_UPDATE;
    ev->user = item_verdict(it) ? NULL : it->ev->user; /* moderation is nobody */
    ev->ts = u->ts;
    ev->has_ts = true;
    ev->text = u->deleted ? NULL : u->text;
    ev->edited = u->edited;
    ev->has_edited = u->edited > 0;
    ev->deleted = u->deleted;
    ev->has_deleted = u->deleted;
    /* A react that took the last reaction away says so with {} (store_updates made it). */
    ev->reactions = u->reactions != NULL ? u->reactions : it->no_reactions;
    /* The tenant's delete may say why; the update repeats it (the record does not keep it: a
     * republished change is the same record, which still carries it). */
    if (u->deleted && it->ev->type == CHAT_EV_DELETE)
        ev->reason = it->ev->reason;
    if (u->removed) {
        ev->removed = ev->has_removed = true;
        ev->reason = u->reason;
    }
}

/* Fills ev with the outcome of it: msg (stored or republished), ack (resend, repeat), update
 * or reject. Strings are borrowed from the batch. */
static void outcome_event(const batch_t *b, const item_t *it, chat_event_t *ev)
{
    const message_doc_t *d = item_message(b, it);
    if (it->kind == ITEM_READ) {
        /* Everyone in the room hears it; the origin is not the answer's address. */
        *ev = (chat_event_t){.type = CHAT_EV_READ,
                             .tenant = it->ev->tenant,
                             .room = it->ev->room,
                             .user = it->ev->user,
                             .seq = it->ev->seq,
                             .has_seq = true,
                             .ts = it->ev->ts,
                             .has_ts = true};
        return;
    }
    *ev = (chat_event_t){.tenant = it->ev->tenant,
                         .room = it->ev->room,
                         .origin_gw = it->ev->origin_gw,
                         .origin_conn = it->ev->origin_conn};
    if (it->kind == ITEM_UPDATE) {
        update_outcome_event(it, ev);
        return;
    }
    if (d == NULL) {
        ev->type = CHAT_EV_REJECT;
        ev->code = message_reject_code_name(it->in.code);
        ev->message = it->in.reason;
        ev->cid = it->ev->cid;
        ev->rid = it->ev->rid;
        return;
    }
    bool msg = it->state != SEND_RESEND && it->state != SEND_REPEAT;
    ev->type = msg ? CHAT_EV_MSG : CHAT_EV_ACK;
    ev->seq = d->seq;
    ev->has_seq = true;
    ev->ts = d->ts;
    ev->has_ts = true;
    ev->cid = d->cid;
    ev->id = d->id;
    if (msg)
        doc_msg_event(d, ev); /* a republished message may have changed since: removed too */
    if (msg && it->ev->has_ts && it->ev->ts > 0) {
        ev->sent = it->ev->ts; /* when the send was received: send -> deliver at the gateways */
        ev->has_sent = true;
    }
}

static chat_err_t publish_one(message_pipeline_t *p, const batch_t *b, const item_t *it)
{
    chat_event_t ev;
    outcome_event(b, it, &ev);
    char key[CHAT_ROOM_KEY_MAX];
    int keylen = chat_room_key(ev.tenant, ev.room, key, sizeof key);
    char *value = NULL;
    size_t len = 0;
    chat_err_t err = keylen < 0 ? CHAT_ERR_INVALID : chat_event_encode(&ev, &value, &len);
    if (err != CHAT_OK) {
        chat_log_error("cannot encode an outcome event",
                       CHAT_F_STR("type", chat_event_type_name(ev.type)),
                       CHAT_F_STR("tenant", ev.tenant), CHAT_F_STR("room", ev.room),
                       CHAT_F_STR("src", it->src), CHAT_F_ERR(err));
        return err == CHAT_ERR_NOMEM ? err : CHAT_ERR_INVALID;
    }
    err = p->conf.bus.produce(p->conf.bus.ctx, key, (size_t)keylen, value, len);
    free(value);
    return err;
}

/* Every outcome of the batch (sends and rejects) in publishing order (out_event_cmp): a
 * malloc'd array of *k entries, NULL if out of memory. */
static out_event_t *outcomes_sorted(const batch_t *b, size_t *k)
{
    out_event_t *out = calloc(b->n > 0 ? b->n : 1, sizeof *out);
    *k = 0;
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (it->kind == ITEM_READ && it->read_moved) {
            out[(*k)++] = (out_event_t){i, it->room, 0, it->ev->seq};
            continue;
        }
        if (it->kind != ITEM_SEND && it->kind != ITEM_REJECT && it->kind != ITEM_UPDATE)
            continue;
        if (it->is_update) {
            out[(*k)++] = (out_event_t){i, it->room, 1, (int64_t)i};
            continue;
        }
        const message_doc_t *d = item_message(b, it);
        out[(*k)++] = (out_event_t){i, it->room, 0, d != NULL ? d->seq : 0};
    }
    qsort(out, *k, sizeof *out, out_event_cmp);
    return out;
}

/* True for an update item that removed its message now (a verdict applied with a new useq). */
static bool item_removal(const item_t *it)
{
    return it->kind == ITEM_UPDATE && it->ustate == UPDATE_APPLIED && item_verdict(it);
}

/* Moderation's latency of the batch's removals: from each message's stored ts to produced_ms,
 * when the update that removes it was produced. */
static void observe_removals(message_pipeline_t *p, const batch_t *b, int64_t produced_ms)
{
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (!item_removal(it))
            continue;
        int64_t ms = produced_ms - it->msg_ts;
        chat_histogram_observe(p->m.moderation_seconds, (double)(ms > 0 ? ms : 0) / 1000.0);
    }
}

/* Produces the k outcomes, then waits for their delivery. */
static chat_err_t publish(message_pipeline_t *p, const batch_t *b, const out_event_t *out, size_t k)
{
    const message_env_t *env = &p->conf.env;
    bool removals = false;
    for (size_t i = 0; i < b->n && !removals; i++)
        removals = item_removal(&b->items[i]);
    int64_t produced_ms = removals ? env->wall_ms(env->ctx) : 0;
    chat_err_t err = CHAT_OK;
    for (size_t j = 0; j < k && err == CHAT_OK; j++) {
        err = publish_one(p, b, &b->items[out[j].item]);
        /* An event that cannot be encoded is a bug for that one record; the others go on. */
        if (err == CHAT_ERR_INVALID)
            err = CHAT_OK;
    }
    if (err == CHAT_OK && k > 0)
        err = p->conf.bus.flush(p->conf.bus.ctx);
    if (err == CHAT_OK && removals)
        observe_removals(p, b, produced_ms);
    return err;
}

/* ---- recent history ---- */

/* The messages of the batch's outcomes, room by room, as the recent-history port takes them;
 * frames owns the printed frames the entries point to. */
typedef struct recent_batch {
    message_recent_room_t *rooms;
    size_t nrooms;
    chat_recent_entry_t *entries;
    size_t nentries;
    char **frames; /* the frames built for the entries (those of changes are the items') */
    size_t nframes;
} recent_batch_t;

static void recent_batch_free(recent_batch_t *rb)
{
    for (size_t i = 0; rb->frames != NULL && i < rb->nframes; i++)
        cJSON_free(rb->frames[i]);
    free(rb->frames);
    free(rb->entries);
    free(rb->rooms);
}

/* The msg frame of it's message printed compactly: the bytes broadcast sends for it (from the
 * same event) and every reader of the recent history gets. NULL if out of memory. */
static char *item_frame(const batch_t *b, const item_t *it)
{
    const message_doc_t *d = item_message(b, it);
    chat_event_t ev = {.type = CHAT_EV_MSG, .tenant = it->ev->tenant, .room = it->ev->room};
    if (d != NULL)
        doc_msg_event(d, &ev);
    cJSON *frame = chat_frame_msg_new(&ev);
    char *text = frame != NULL ? cJSON_PrintUnformatted(frame) : NULL;
    cJSON_Delete(frame);
    return text;
}

/* One message of the recent-history write before it is sorted: its room, seq, frame, and its
 * place among the outcomes (a message changed after it was stored in the same batch appears
 * twice: the later frame, the change's, wins). */
typedef struct recent_pick {
    size_t room;
    int64_t seq;
    size_t order;
    const char *frame;
} recent_pick_t;

static int recent_pick_cmp(const void *a, const void *b)
{
    const recent_pick_t *x = a, *y = b;
    if (x->room != y->room)
        return x->room < y->room ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Collects the messages of the k sorted outcomes into rb, room by room in ascending seq: the
 * msg outcomes (messages stored now or published again; not the acks of resends, whose
 * messages were written when they were stored) and the messages changed by edits, deletes and
 * reactions (their frame in the state after the change). A message whose frame cannot be
 * built is left out and logged: a reader then meets a gap there and reads MongoDB, which is
 * exact. Each room also gets its last useq, when known. */
static chat_err_t recent_collect(const batch_t *b, const out_event_t *out, size_t k,
                                 recent_batch_t *rb)
{
    rb->rooms = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *rb->rooms);
    rb->entries = calloc(k > 0 ? k : 1, sizeof *rb->entries);
    rb->frames = calloc(k > 0 ? k : 1, sizeof *rb->frames);
    recent_pick_t *picks = calloc(k > 0 ? k : 1, sizeof *picks);
    /* per batch room: the ts of the newest message stored now (0: none, the room is not fresh) */
    int64_t *top_ts = calloc(b->nrooms > 0 ? b->nrooms : 1, sizeof *top_ts);
    if (rb->rooms == NULL || rb->entries == NULL || rb->frames == NULL || picks == NULL ||
        top_ts == NULL) {
        free(picks);
        free(top_ts);
        return CHAT_ERR_NOMEM;
    }
    size_t npicks = 0;
    for (size_t j = 0; j < k; j++) {
        const item_t *it = &b->items[out[j].item];
        const char *frame = NULL;
        int64_t seq = out[j].seq;
        if (it->kind == ITEM_UPDATE &&
            (it->ustate == UPDATE_APPLIED || it->ustate == UPDATE_REPUBLISH)) {
            frame = it->frame;
            seq = it->urec.seq;
        } else if (it->kind == ITEM_SEND &&
                   (it->state == SEND_STORED || it->state == SEND_REPUBLISH)) {
            if (it->state == SEND_STORED) /* outcomes ascend in seq: the last is the newest */
                top_ts[out[j].room] = it->doc.ts;
            if (npicks > 0 && picks[npicks - 1].room == out[j].room && picks[npicks - 1].seq == seq)
                continue;
            frame = rb->frames[rb->nframes] = item_frame(b, it);
            if (frame != NULL)
                rb->nframes++;
        } else {
            continue;
        }
        if (frame == NULL) {
            chat_log_error("msg frame not built: left out of the recent history",
                           CHAT_F_STR("tenant", it->ev->tenant), CHAT_F_STR("room", it->ev->room),
                           CHAT_F_INT("seq", seq));
            continue;
        }
        picks[npicks++] = (recent_pick_t){out[j].room, seq, j, frame};
    }
    qsort(picks, npicks, sizeof *picks, recent_pick_cmp);
    size_t cur_room = SIZE_MAX; /* batch room of the last room record */
    for (size_t j = 0; j < npicks; j++) {
        if (j + 1 < npicks && picks[j + 1].room == picks[j].room &&
            picks[j + 1].seq == picks[j].seq)
            continue; /* a later frame of the same message follows */
        const batch_room_t *br = &b->rooms[picks[j].room];
        message_recent_room_t *last = rb->nrooms > 0 ? &rb->rooms[rb->nrooms - 1] : NULL;
        if (cur_room != picks[j].room) {
            cur_room = picks[j].room;
            last = &rb->rooms[rb->nrooms++];
            *last = (message_recent_room_t){.tenant = br->tenant,
                                            .room = br->room,
                                            .entries = &rb->entries[rb->nentries],
                                            .useq = br->useq_last,
                                            .has_useq = br->useq_loaded,
                                            .fresh = top_ts[cur_room] != 0,
                                            .top_ts = top_ts[cur_room]};
        }
        rb->entries[rb->nentries++] = (chat_recent_entry_t){
            .seq = picks[j].seq, .frame = picks[j].frame, .len = strlen(picks[j].frame)};
        last->n++;
    }
    free(top_ts);
    free(picks);
    return CHAT_OK;
}

/* Step: the whole write (one round trip); retried whole, it is idempotent. */
static chat_err_t recent_write_step(message_pipeline_t *p, batch_t *b, void *arg)
{
    (void)b;
    const recent_batch_t *rb = arg;
    return p->conf.recent.write(p->conf.recent.ctx, rb->rooms, rb->nrooms);
}

/* Writes the batch's messages into their rooms' recent history, retrying Redis like MongoDB.
 * Nothing of the batch is published before this succeeded: a message published but missing
 * from the recent history could be missed by a join answered from it. */
static chat_err_t recent_write(message_pipeline_t *p, batch_t *b, const out_event_t *out, size_t k)
{
    const message_env_t *env = &p->conf.env;
    if (p->conf.recent.write == NULL)
        return CHAT_OK;
    recent_batch_t rb = {0};
    chat_err_t err = recent_collect(b, out, k, &rb);
    if (err == CHAT_OK && rb.nrooms > 0) {
        int64_t start = env->monotonic_ms(env->ctx);
        phase_begin(p, b, "Redis", p->conf.recent.last_error, p->conf.recent.ctx,
                    p->m.recent_retries);
        err = with_retry(p, b, "recent history", recent_write_step, &rb);
        chat_histogram_observe(p->m.recent_seconds,
                               (double)(env->monotonic_ms(env->ctx) - start) / 1000.0);
        if (err == CHAT_OK)
            chat_counter_add(p->m.recent_writes, rb.nrooms);
    }
    recent_batch_free(&rb);
    return err;
}

/* ---- commit and bookkeeping ---- */

static void commit(message_pipeline_t *p, const batch_t *b)
{
    chat_bus_record_t *recs = calloc(b->n > 0 ? b->n : 1, sizeof *recs);
    if (recs == NULL) {
        chat_log_warn("commit skipped: out of memory (the batch will be replayed)");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i].kind != ITEM_FOREIGN)
            recs[k++] = *b->items[i].rec;
    chat_err_t err = k > 0 ? p->conf.bus.commit(p->conf.bus.ctx, recs, k) : CHAT_OK;
    if (err != CHAT_OK)
        chat_log_warn("commit failed; the batch will be replayed and deduplicated", CHAT_F_ERR(err),
                      CHAT_F_INT("records", k));
    free(recs);
}

static void count_outcomes(message_pipeline_t *p, const batch_t *b)
{
    size_t stored = 0, dups = 0, republished = 0, updates = 0, removals = 0;
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (it->kind == ITEM_REJECT) {
            chat_counter_inc(p->m.rejected[it->in.code]);
            continue;
        }
        if (it->kind == ITEM_UPDATE) {
            updates += it->ustate == UPDATE_APPLIED;
            removals += item_removal(it);
            continue;
        }
        if (it->kind != ITEM_SEND)
            continue;
        stored += it->state == SEND_STORED;
        if (it->state == SEND_STORED)
            chat_tenant_counter_add(p->m.tenant_stored, it->ev->tenant, 1);
        republished += it->state == SEND_REPUBLISH;
        dups += it->state == SEND_RESEND || it->state == SEND_REPEAT;
    }
    chat_counter_add(p->m.stored, stored);
    chat_counter_add(p->m.updates, updates);
    chat_counter_add(p->m.removals, removals);
    chat_counter_add(p->m.duplicates, dups);
    chat_counter_add(p->m.republished, republished);
    if (republished > 0)
        chat_log_info("stored messages published again (replayed records)",
                      CHAT_F_INT("messages", republished));
}

chat_err_t message_pipeline_process(message_pipeline_t *p, const chat_bus_record_t *recs, size_t n)
{
    const message_env_t *env = &p->conf.env;
    if (n == 0)
        return CHAT_OK;
    int64_t start = env->monotonic_ms(env->ctx);
    batch_t b;
    chat_err_t err = batch_init(&b, recs, n);
    for (size_t i = 0; err == CHAT_OK && i < n; i++)
        err = parse_record(p, &b, &b.items[i]);
    if (err == CHAT_OK)
        err = check_mutes(p, &b);
    if (err == CHAT_OK)
        err = check_blocks(p, &b);
    if (err == CHAT_OK)
        err = store_sends(p, &b);
    if (err == CHAT_OK)
        err = store_updates(p, &b);
    if (err == CHAT_OK)
        err = store_reads(p, &b);
    size_t k = 0;
    out_event_t *out = err == CHAT_OK ? outcomes_sorted(&b, &k) : NULL;
    if (err == CHAT_OK && out == NULL)
        err = CHAT_ERR_NOMEM;
    if (err == CHAT_OK)
        err = recent_write(p, &b, out, k);
    if (err == CHAT_OK)
        err = publish(p, &b, out, k);
    free(out);
    if (err == CHAT_OK) {
        commit(p, &b);
        count_outcomes(p, &b);
        message_sequencer_trim(p->conf.sequencer);
        chat_gauge_set(p->m.rooms, (double)message_sequencer_rooms(p->conf.sequencer));
        chat_histogram_observe(p->m.batch_records, (double)n);
        chat_histogram_observe(p->m.batch_seconds,
                               (double)(env->monotonic_ms(env->ctx) - start) / 1000.0);
    }
    batch_free(&b);
    return err;
}
