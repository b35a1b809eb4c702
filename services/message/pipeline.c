/* The batch of the message service, in the order the design requires: decode and validate
 * every record, group the sends by room, then plan (load each room's seq on first touch, one
 * dedup query for the batch, assign seqs), store (one unordered insert; MongoDB failures are
 * retried with the same plan, duplicate-key conflicts redo the room), publish every outcome
 * to chat.messages, flush, and only then commit. */
#include "services/message/pipeline.h"

#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/codec.h"
#include "common/log.h"
#include "common/names.h"
#include "services/message/inbound.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define SLEEP_SLICE_MS 100 /* a stop request interrupts a backoff within this */
#define ROOM_KEY_MAX (CHAT_TENANT_MAX + 1 + CHAT_ROOM_MAX + 1)

typedef enum item_kind {
    ITEM_FOREIGN, /* its partition is not ours (revoked meanwhile): neither handled nor committed */
    ITEM_INVALID, /* undecodable or unexpected: logged, counted, committed */
    ITEM_REJECT,  /* refused: a reject event goes to its origin */
    ITEM_SEND,    /* a valid send */
} item_kind_t;

typedef enum doc_state { DOC_PENDING, DOC_STORED, DOC_CONFLICT } doc_state_t;

typedef struct item {
    const chat_bus_record_t *rec;
    message_inbound_t in;
    const chat_event_t *ev; /* &in.ev */
    item_kind_t kind;
    char src[MESSAGE_SRC_MAX];
    size_t room; /* index in batch_t.rooms (REJECT, SEND) */
    /* SEND: the plan */
    message_dedup_kind_t decision;
    size_t ref;        /* RESEND, REPUBLISH: index in existing; REPEAT: item index */
    message_doc_t doc; /* NEW: the document to store */
    doc_state_t state; /* NEW: where its insert stands */
    bool ambiguous;    /* an insert of doc failed without telling whether it was stored */
} item_t;

typedef struct batch_room {
    const char *tenant;
    const char *room;
    int32_t partition;
    bool has_sends;
    bool pending;  /* planned and stored in the current round */
    bool conflict; /* another writer holds one of its planned seqs */
} batch_room_t;

typedef struct batch {
    item_t *items;
    size_t n;
    batch_room_t *rooms;
    size_t nrooms;
    size_t *room_slots; /* 0 or 1 + room index, open addressing over "tenant/room" */
    size_t room_mask;
    message_doc_list_t existing; /* what the dedup queries of the batch returned */
    int64_t store_deadline;
} batch_t;

typedef struct pipeline_metrics {
    chat_counter_t *stored;
    chat_counter_t *duplicates;
    chat_counter_t *republished;
    chat_counter_t *invalid;
    chat_counter_t *rejected[MESSAGE_REJECT__COUNT];
    chat_counter_t *store_retries;
    chat_counter_t *conflicts;
    chat_histogram_t *batch_records;
    chat_histogram_t *batch_seconds;
    chat_histogram_t *store_seconds;
    chat_gauge_t *rooms;
} pipeline_metrics_t;

struct message_pipeline {
    message_pipeline_conf_t conf;
    chat_metrics_t *own_metrics; /* when conf.metrics is NULL */
    pipeline_metrics_t m;
};

/* ---- environment defaults ---- */

static int64_t real_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_monotonic_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void real_sleep_ms(void *ctx, int64_t ms)
{
    (void)ctx;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
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
    m->duplicates = chat_metrics_counter(
        reg, "chat_message_duplicates_total",
        "Sends whose cid the room already had (resends, repeats within a batch): acked", NULL);
    m->republished = chat_metrics_counter(
        reg, "chat_message_republished_total",
        "Stored messages published again because their record was replayed (crash recovery)", NULL);
    m->invalid =
        chat_metrics_counter(reg, "chat_message_invalid_records_total",
                             "chat.inbound records skipped as undecodable or unexpected", NULL);
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
        "Rooms redone after a duplicate key on insert (another writer took a seq)", NULL);
    m->batch_records = chat_metrics_histogram(
        reg, "chat_message_batch_records", "Records per processed batch", NULL,
        batch_record_buckets, sizeof batch_record_buckets / sizeof batch_record_buckets[0]);
    m->batch_seconds = chat_metrics_histogram(
        reg, "chat_message_batch_seconds", "Time from poll to commit of a batch", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->store_seconds = chat_metrics_histogram(
        reg, "chat_message_store_seconds",
        "Time spent on MongoDB per batch (seq loads, dedup query, insert, retries)", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->rooms = chat_metrics_gauge(reg, "chat_message_rooms",
                                  "Rooms whose last seq is held in memory", NULL);
    bool ok = m->stored && m->duplicates && m->republished && m->invalid && m->store_retries &&
              m->conflicts && m->batch_records && m->batch_seconds && m->store_seconds && m->rooms;
    for (int i = 0; i < MESSAGE_REJECT__COUNT; i++)
        ok = ok && m->rejected[i] != NULL;
    return ok;
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
    chat_metrics_t *reg = conf->metrics;
    if (reg == NULL)
        reg = p->own_metrics = chat_metrics_new();
    if (reg == NULL || !metrics_register(&p->m, reg)) {
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
    free(p);
}

/* ---- parsing and validation ---- */

static uint64_t room_hash(const char *tenant, const char *room)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *s = (const unsigned char *)tenant; *s != '\0'; s++)
        h = (h ^ *s) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const unsigned char *s = (const unsigned char *)room; *s != '\0'; s++)
        h = (h ^ *s) * 1099511628211ULL;
    return h;
}

/* Index of tenant/room in b->rooms, added on first sight. A room's records all come from one
 * partition (key tenant/room), so the first record's partition is the room's. */
static size_t batch_room_index(batch_t *b, const char *tenant, const char *room, int32_t partition)
{
    size_t i = room_hash(tenant, room) & b->room_mask;
    for (;;) {
        size_t slot = b->room_slots[i];
        if (slot == 0)
            break;
        batch_room_t *r = &b->rooms[slot - 1];
        if (strcmp(r->room, room) == 0 && strcmp(r->tenant, tenant) == 0)
            return slot - 1;
        i = (i + 1) & b->room_mask;
    }
    size_t idx = b->nrooms++;
    b->rooms[idx] = (batch_room_t){.tenant = tenant, .room = room, .partition = partition};
    b->room_slots[i] = idx + 1;
    return idx;
}

static void parse_record(message_pipeline_t *p, batch_t *b, item_t *it)
{
    const chat_bus_record_t *rec = it->rec;
    it->ev = &it->in.ev;
    if (!message_sequencer_owns(p->conf.sequencer, rec->partition)) {
        it->kind = ITEM_FOREIGN;
        chat_log_debug("record of a partition not assigned to us skipped",
                       CHAT_F_INT("partition", rec->partition), CHAT_F_INT("offset", rec->offset));
        return;
    }
    message_inbound_parse(rec->value, rec->len, p->conf.max_text_chars, &it->in);
    switch (it->in.kind) {
    case MESSAGE_INBOUND_INVALID:
        it->kind = ITEM_INVALID;
        chat_counter_inc(p->m.invalid);
        chat_log_warn("invalid chat.inbound record skipped",
                      CHAT_F_INT("partition", rec->partition), CHAT_F_INT("offset", rec->offset),
                      CHAT_F_STR("reason", it->in.reason));
        return;
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
    }
    message_src_format(it->src, sizeof it->src, rec->partition, rec->offset);
    it->room = batch_room_index(b, it->ev->tenant, it->ev->room, rec->partition);
    if (it->kind == ITEM_SEND)
        b->rooms[it->room].has_sends = true;
}

static chat_err_t batch_init(batch_t *b, const chat_bus_record_t *recs, size_t n)
{
    memset(b, 0, sizeof *b);
    size_t slots = 16;
    while (slots < 2 * n)
        slots *= 2;
    b->items = calloc(n, sizeof *b->items);
    b->rooms = calloc(n, sizeof *b->rooms);
    b->room_slots = calloc(slots, sizeof *b->room_slots);
    if (b->items == NULL || b->rooms == NULL || b->room_slots == NULL)
        return CHAT_ERR_NOMEM;
    b->room_mask = slots - 1;
    b->n = n;
    for (size_t i = 0; i < n; i++)
        b->items[i].rec = &recs[i];
    return CHAT_OK;
}

static void batch_free(batch_t *b)
{
    for (size_t i = 0; b->items != NULL && i < b->n; i++)
        message_inbound_clear(&b->items[i].in);
    free(b->items);
    free(b->rooms);
    free(b->room_slots);
    message_doc_list_clear(&b->existing);
}

/* ---- retries ---- */

typedef struct retry {
    int attempt;
    int64_t delay_ms;
} retry_t;

static bool err_retryable(chat_err_t err)
{
    return err == CHAT_ERR_MONGO || err == CHAT_ERR_TIMEOUT || err == CHAT_ERR_IO;
}

/* Sleeps before the next attempt of a failed MongoDB step. Returns CHAT_OK to retry, or the
 * error to give up with: err itself if it is not retryable or the batch's store deadline
 * passed, CHAT_ERR_STOPPED if a stop was requested. */
static chat_err_t retry_wait(message_pipeline_t *p, batch_t *b, retry_t *r, chat_err_t err,
                             const char *step)
{
    const message_env_t *env = &p->conf.env;
    const char *detail =
        p->conf.store.last_error != NULL ? p->conf.store.last_error(p->conf.store.ctx) : NULL;
    if (!err_retryable(err))
        return err;
    int64_t now = env->monotonic_ms(env->ctx);
    if (now >= b->store_deadline) {
        chat_log_error("MongoDB still failing, giving up on the batch", CHAT_F_STR("step", step),
                       CHAT_F_ERR(err), CHAT_F_STR("error", detail),
                       CHAT_F_INT("attempts", r->attempt + 1),
                       CHAT_F_INT("retry_ms", p->conf.store_retry_ms));
        return err;
    }
    r->attempt++;
    r->delay_ms = r->delay_ms == 0
                      ? BACKOFF_FIRST_MS
                      : (r->delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->delay_ms * 2);
    int64_t wait = r->delay_ms < b->store_deadline - now ? r->delay_ms : b->store_deadline - now;
    chat_counter_inc(p->m.store_retries);
    chat_log_warn("MongoDB failed, retrying", CHAT_F_STR("step", step), CHAT_F_ERR(err),
                  CHAT_F_STR("error", detail), CHAT_F_INT("attempt", r->attempt),
                  CHAT_F_INT("delay_ms", wait));
    while (wait > 0) {
        if (env->stop_requested(env->ctx))
            return CHAT_ERR_STOPPED;
        int64_t slice = wait < SLEEP_SLICE_MS ? wait : SLEEP_SLICE_MS;
        env->sleep_ms(env->ctx, slice);
        wait -= slice;
    }
    return env->stop_requested(env->ctx) ? CHAT_ERR_STOPPED : CHAT_OK;
}

/* ---- plan: seqs, dedup, documents ---- */

static bool item_planned(const batch_t *b, const item_t *it)
{
    return it->kind == ITEM_SEND && b->rooms[it->room].pending;
}

/* Loads the last seq of every pending room that is touched for the first time. */
static chat_err_t plan_load_rooms(message_pipeline_t *p, batch_t *b)
{
    for (size_t i = 0; i < b->nrooms; i++) {
        const batch_room_t *r = &b->rooms[i];
        if (!r->pending)
            continue;
        int64_t last;
        chat_err_t err =
            message_sequencer_last(p->conf.sequencer, r->tenant, r->room, r->partition, &last);
        if (err != CHAT_OK)
            return err;
    }
    return CHAT_OK;
}

/* Acts on one dedup decision: NEW takes the room's next seq, a fresh id and the current time. */
static void plan_apply(message_pipeline_t *p, batch_t *b, item_t *it,
                       const message_dedup_decision_t *d, const size_t *map)
{
    const message_env_t *env = &p->conf.env;
    const chat_event_t *ev = it->ev;
    it->decision = d->kind;
    it->ref = d->kind == MESSAGE_DEDUP_REPEAT ? map[d->ref] : d->ref;
    if (d->kind == MESSAGE_DEDUP_REPUBLISH) {
        message_sequencer_observe(p->conf.sequencer, ev->tenant, ev->room,
                                  b->existing.docs[d->ref].seq);
        return;
    }
    if (d->kind != MESSAGE_DEDUP_NEW)
        return;
    it->doc = (message_doc_t){.tenant = ev->tenant,
                              .room = ev->room,
                              .from = ev->user,
                              .name = ev->name,
                              .text = ev->text,
                              .cid = ev->cid,
                              .src = it->src};
    it->doc.seq = message_sequencer_next(p->conf.sequencer, ev->tenant, ev->room);
    it->doc.ts = env->wall_ms(env->ctx);
    env->new_id(env->ctx, it->doc.id);
    it->state = DOC_PENDING;
    it->ambiguous = false;
}

/* Plans the sends of the pending rooms: seqs loaded, one query for the (from, cid) pairs that
 * already exist, decisions, documents. Fails only before any seq is taken, so it can simply
 * be run again. */
static chat_err_t plan(message_pipeline_t *p, batch_t *b)
{
    chat_err_t err = plan_load_rooms(p, b);
    if (err != CHAT_OK)
        return err;
    message_dedup_send_t *keys = calloc(b->n, sizeof *keys);
    size_t *map = calloc(b->n, sizeof *map);
    message_dedup_decision_t *dec = calloc(b->n, sizeof *dec);
    if (keys == NULL || map == NULL || dec == NULL) {
        err = CHAT_ERR_NOMEM;
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (!item_planned(b, it))
            continue;
        keys[k] = (message_dedup_send_t){it->ev->tenant, it->ev->room, it->ev->user, it->ev->cid,
                                         it->src};
        map[k++] = i;
    }
    /* existing accumulates over the rounds of the batch: items of rooms that are not redone
     * keep referring to what earlier rounds found. */
    err = p->conf.store.find_existing(p->conf.store.ctx, keys, k, &b->existing);
    if (err == CHAT_OK)
        err = message_dedup_decide(keys, k, b->existing.docs, b->existing.n, dec);
    if (err != CHAT_OK)
        goto out;
    for (size_t j = 0; j < k; j++)
        plan_apply(p, b, &b->items[map[j]], &dec[j], map);
out:
    free(keys);
    free(map);
    free(dec);
    return err;
}

static chat_err_t plan_with_retry(message_pipeline_t *p, batch_t *b)
{
    retry_t r = {0};
    for (;;) {
        chat_err_t err = plan(p, b);
        if (err == CHAT_OK)
            return CHAT_OK;
        err = retry_wait(p, b, &r, err, "plan");
        if (err != CHAT_OK)
            return err;
    }
}

/* ---- store ---- */

static bool item_unstored(const batch_t *b, const item_t *it)
{
    return item_planned(b, it) && it->decision == MESSAGE_DEDUP_NEW && it->state == DOC_PENDING;
}

/* For documents that hit a duplicate key after an earlier attempt failed ambiguously: the
 * ones whose _id exists were stored by that attempt; the others lost to another writer.
 * Returns the lookup's error (the documents stay pending). */
static chat_err_t store_resolve_ambiguous(message_pipeline_t *p, batch_t *b, const size_t *idx,
                                          size_t n)
{
    const char **ids = calloc(n, sizeof *ids);
    bool *found = calloc(n, sizeof *found);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (ids != NULL && found != NULL) {
        for (size_t j = 0; j < n; j++)
            ids[j] = b->items[idx[j]].doc.id;
        err = p->conf.store.find_ids(p->conf.store.ctx, ids, n, found);
        for (size_t j = 0; err == CHAT_OK && j < n; j++)
            b->items[idx[j]].state = found[j] ? DOC_STORED : DOC_CONFLICT;
    }
    free(ids);
    free(found);
    return err;
}

/* One insert of every pending document. Returns CHAT_OK when none is left pending, else the
 * first retryable failure (those documents stay pending, marked ambiguous). */
static chat_err_t store_insert_once(message_pipeline_t *p, batch_t *b)
{
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        k += item_unstored(b, &b->items[i]);
    if (k == 0)
        return CHAT_OK;
    message_doc_t *docs = calloc(k, sizeof *docs);
    size_t *idx = calloc(k, sizeof *idx);
    chat_err_t *results = calloc(k, sizeof *results);
    size_t *dups = calloc(k, sizeof *dups);
    chat_err_t first = CHAT_ERR_NOMEM;
    if (docs == NULL || idx == NULL || results == NULL || dups == NULL)
        goto out;
    k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (!item_unstored(b, &b->items[i]))
            continue;
        docs[k] = b->items[i].doc;
        results[k] = CHAT_ERR_MONGO;
        idx[k++] = i;
    }
    p->conf.store.insert(p->conf.store.ctx, docs, k, results);
    first = CHAT_OK;
    size_t ndups = 0;
    for (size_t j = 0; j < k; j++) {
        item_t *it = &b->items[idx[j]];
        if (results[j] == CHAT_OK) {
            it->state = DOC_STORED;
        } else if (results[j] == CHAT_ERR_DUPLICATE) {
            if (it->ambiguous)
                dups[ndups++] = idx[j];
            else
                it->state = DOC_CONFLICT;
        } else {
            it->ambiguous = true;
            if (first == CHAT_OK)
                first = results[j];
        }
    }
    if (ndups > 0) {
        chat_err_t err = store_resolve_ambiguous(p, b, dups, ndups);
        if (err != CHAT_OK && first == CHAT_OK)
            first = err;
    }
out:
    free(docs);
    free(idx);
    free(results);
    free(dups);
    return first;
}

/* Inserts until every planned document is stored or in conflict; marks the rooms with a
 * conflict. */
static chat_err_t store_with_retry(message_pipeline_t *p, batch_t *b, size_t *conflicts)
{
    retry_t r = {0};
    for (;;) {
        chat_err_t err = store_insert_once(p, b);
        if (err == CHAT_OK)
            break;
        err = retry_wait(p, b, &r, err, "insert");
        if (err != CHAT_OK)
            return err;
    }
    *conflicts = 0;
    for (size_t i = 0; i < b->n; i++) {
        item_t *it = &b->items[i];
        if (item_planned(b, it) && it->decision == MESSAGE_DEDUP_NEW && it->state == DOC_CONFLICT &&
            !b->rooms[it->room].conflict) {
            b->rooms[it->room].conflict = true;
            (*conflicts)++;
        }
    }
    return CHAT_OK;
}

/* Only the rooms in conflict are planned again, from what MongoDB now holds: the documents
 * this batch did store come back as republished, the others get new seqs. */
static void store_prepare_redo(message_pipeline_t *p, batch_t *b)
{
    for (size_t i = 0; i < b->nrooms; i++) {
        batch_room_t *r = &b->rooms[i];
        r->pending = r->conflict;
        if (!r->conflict)
            continue;
        r->conflict = false;
        chat_counter_inc(p->m.conflicts);
        chat_log_warn("seq conflict on insert (another writer in the room?), reloading the room",
                      CHAT_F_STR("tenant", r->tenant), CHAT_F_STR("room", r->room),
                      CHAT_F_INT("partition", r->partition));
        message_sequencer_forget(p->conf.sequencer, r->tenant, r->room);
    }
}

static chat_err_t store_sends(message_pipeline_t *p, batch_t *b)
{
    const message_env_t *env = &p->conf.env;
    bool any = false;
    for (size_t i = 0; i < b->nrooms; i++) {
        b->rooms[i].pending = b->rooms[i].has_sends;
        any = any || b->rooms[i].has_sends;
    }
    if (!any)
        return CHAT_OK;
    int64_t start = env->monotonic_ms(env->ctx);
    b->store_deadline = start + p->conf.store_retry_ms;
    chat_err_t err = CHAT_OK;
    for (int round = 1;; round++) {
        size_t conflicts = 0;
        err = plan_with_retry(p, b);
        if (err == CHAT_OK)
            err = store_with_retry(p, b, &conflicts);
        if (err != CHAT_OK || conflicts == 0)
            break;
        if (round >= p->conf.max_conflict_rounds) {
            chat_log_error("seq conflicts persist, giving up on the batch",
                           CHAT_F_INT("rounds", round), CHAT_F_INT("rooms", conflicts));
            err = CHAT_ERR_DUPLICATE;
            break;
        }
        store_prepare_redo(p, b);
    }
    chat_histogram_observe(p->m.store_seconds,
                           (double)(env->monotonic_ms(env->ctx) - start) / 1000.0);
    return err;
}

/* ---- publish ---- */

typedef struct out_event {
    size_t item;
    size_t room;
    int64_t seq; /* 0 for rejects */
} out_event_t;

/* Per room in ascending seq (a redone room may have planned out of offset order), then in
 * batch order. */
static int out_event_cmp(const void *a, const void *b)
{
    const out_event_t *x = a, *y = b;
    if (x->room != y->room)
        return x->room < y->room ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return x->item < y->item ? -1 : (x->item > y->item);
}

/* The stored message an item's outcome refers to (NULL for rejects). */
static const message_doc_t *item_message(const batch_t *b, const item_t *it)
{
    if (it->kind != ITEM_SEND)
        return NULL;
    switch (it->decision) {
    case MESSAGE_DEDUP_NEW:
        return &it->doc;
    case MESSAGE_DEDUP_REPEAT:
        return &b->items[it->ref].doc;
    case MESSAGE_DEDUP_RESEND:
    case MESSAGE_DEDUP_REPUBLISH:
        return &b->existing.docs[it->ref];
    }
    return NULL;
}

/* Fills ev with the outcome of it: msg (new or republished), ack (resend, repeat) or reject.
 * Strings are borrowed from the batch. */
static void outcome_event(const batch_t *b, const item_t *it, chat_event_t *ev)
{
    const message_doc_t *d = item_message(b, it);
    *ev = (chat_event_t){.tenant = it->ev->tenant,
                         .room = it->ev->room,
                         .origin_gw = it->ev->origin_gw,
                         .origin_conn = it->ev->origin_conn};
    if (d == NULL) {
        ev->type = CHAT_EV_REJECT;
        ev->code = message_reject_code_name(it->in.code);
        ev->message = it->in.reason;
        ev->cid = it->ev->cid;
        ev->rid = it->ev->rid;
        return;
    }
    bool msg = it->decision == MESSAGE_DEDUP_NEW || it->decision == MESSAGE_DEDUP_REPUBLISH;
    ev->type = msg ? CHAT_EV_MSG : CHAT_EV_ACK;
    ev->seq = d->seq;
    ev->has_seq = true;
    ev->ts = d->ts;
    ev->has_ts = true;
    ev->cid = d->cid;
    ev->id = d->id;
    if (msg) {
        ev->user = d->from;
        ev->name = d->name;
        ev->text = d->text;
    }
}

static chat_err_t publish_one(message_pipeline_t *p, const batch_t *b, const item_t *it)
{
    chat_event_t ev;
    outcome_event(b, it, &ev);
    char key[ROOM_KEY_MAX];
    int keylen = chat_event_key(ev.tenant, ev.room, key, sizeof key);
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

/* Produces every outcome, then waits for their delivery. */
static chat_err_t publish(message_pipeline_t *p, const batch_t *b)
{
    out_event_t *out = calloc(b->n > 0 ? b->n : 1, sizeof *out);
    if (out == NULL)
        return CHAT_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (it->kind != ITEM_SEND && it->kind != ITEM_REJECT)
            continue;
        const message_doc_t *d = item_message(b, it);
        out[k++] = (out_event_t){i, it->room, d != NULL ? d->seq : 0};
    }
    qsort(out, k, sizeof *out, out_event_cmp);
    chat_err_t err = CHAT_OK;
    for (size_t j = 0; j < k && err == CHAT_OK; j++) {
        err = publish_one(p, b, &b->items[out[j].item]);
        /* An event that cannot be encoded is a bug for that one record; the others go on. */
        if (err == CHAT_ERR_INVALID)
            err = CHAT_OK;
    }
    free(out);
    if (err == CHAT_OK && k > 0)
        err = p->conf.bus.flush(p->conf.bus.ctx);
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
    size_t stored = 0, dups = 0, republished = 0;
    for (size_t i = 0; i < b->n; i++) {
        const item_t *it = &b->items[i];
        if (it->kind == ITEM_REJECT) {
            chat_counter_inc(p->m.rejected[it->in.code]);
            continue;
        }
        if (it->kind != ITEM_SEND)
            continue;
        stored += it->decision == MESSAGE_DEDUP_NEW;
        republished += it->decision == MESSAGE_DEDUP_REPUBLISH;
        dups += it->decision == MESSAGE_DEDUP_RESEND || it->decision == MESSAGE_DEDUP_REPEAT;
    }
    chat_counter_add(p->m.stored, stored);
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
        parse_record(p, &b, &b.items[i]);
    if (err == CHAT_OK)
        err = store_sends(p, &b);
    if (err == CHAT_OK)
        err = publish(p, &b);
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
