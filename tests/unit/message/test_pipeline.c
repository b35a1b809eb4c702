/* Unit tests of services/message/pipeline: the decisions of a batch against an in-memory
 * MongoDB (unique indexes enforced, inserts ordered: they stop at the first duplicate, failures
 * injectable), an in-memory recent history (Redis) and an in-memory chat.messages: seqs without
 * a read on the hot path, acks for resends, republish after a crash, repeats, rejects, retries
 * with the same plan, ambiguous inserts, seq collisions with another writer, the recent history
 * written after the store and before anything is published (and retried), and that nothing is
 * committed unless every outcome was published; read marks checked in the room's order;
 * moderation's verdicts applied as updates, once per message; muted users' sends refused. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/events.h"
#include "common/frames.h"
#include "common/metrics.h"
#include "services/message/pipeline.h"
#include "tests/support/util.h"

#define MAX_OUT 64
#define MAX_RECS 64

/* ---- fake MongoDB ---- */

typedef struct fake_store fake_store_t;
struct fake_store {
    message_doc_list_t docs;
    int fail_highest;            /* next highest_seqs calls that fail */
    int fail_finds;              /* next find_existing calls that fail */
    int fail_inserts;            /* next inserts that store nothing and fail every document */
    int store_then_fail;         /* next inserts that store a prefix but report a network error */
    size_t store_then_fail_docs; /* how many documents those store (at most) */
    int inject_before_insert;    /* next inserts preceded by another writer's document */
    message_doc_t injected;      /* that document (its seq is the next free one when 0) */
    int highest_calls, find_calls, insert_calls, find_ids_calls;
    size_t highest_rooms; /* rooms asked for over all highest_seqs calls */
};

static bool doc_conflicts(const message_doc_t *a, const message_doc_t *b)
{
    bool same_room = strcmp(a->tenant, b->tenant) == 0 && strcmp(a->room, b->room) == 0;
    return strcmp(a->id, b->id) == 0 || (same_room && a->seq == b->seq) ||
           (same_room && strcmp(a->from, b->from) == 0 && strcmp(a->cid, b->cid) == 0);
}

/* Inserts d unless a unique index refuses it. */
static chat_err_t fake_put(fake_store_t *f, const message_doc_t *d)
{
    for (size_t i = 0; i < f->docs.n; i++)
        if (doc_conflicts(&f->docs.docs[i], d))
            return CHAT_ERR_DUPLICATE;
    return message_doc_list_add(&f->docs, d);
}

static int64_t fake_highest(const fake_store_t *f, const char *tenant, const char *room)
{
    int64_t h = 0;
    for (size_t i = 0; i < f->docs.n; i++) {
        const message_doc_t *d = &f->docs.docs[i];
        if (strcmp(d->tenant, tenant) == 0 && strcmp(d->room, room) == 0 && d->seq > h)
            h = d->seq;
    }
    return h;
}

static chat_err_t fs_highest(void *ctx, const message_room_ref_t *rooms, size_t n, int64_t *highest)
{
    fake_store_t *f = ctx;
    f->highest_calls++;
    f->highest_rooms += n;
    if (f->fail_highest > 0) {
        f->fail_highest--;
        return CHAT_ERR_TIMEOUT;
    }
    for (size_t i = 0; i < n; i++)
        highest[i] = fake_highest(f, rooms[i].tenant, rooms[i].room);
    return CHAT_OK;
}

static bool key_listed(const message_dedup_send_t *keys, size_t n, size_t field, const char *v)
{
    for (size_t i = 0; i < n; i++) {
        const char *k = field == 0   ? keys[i].tenant
                        : field == 1 ? keys[i].room
                        : field == 2 ? keys[i].from
                                     : keys[i].cid;
        if (strcmp(k, v) == 0)
            return true;
    }
    return false;
}

/* Like the real query: every document whose tenant, room, from and cid each appear among the
 * keys, which is a superset of the exact pairs. */
static chat_err_t fs_find(void *ctx, const message_dedup_send_t *keys, size_t n,
                          message_doc_list_t *out)
{
    fake_store_t *f = ctx;
    f->find_calls++;
    if (f->fail_finds > 0) {
        f->fail_finds--;
        return CHAT_ERR_TIMEOUT;
    }
    for (size_t i = 0; i < f->docs.n; i++) {
        const message_doc_t *d = &f->docs.docs[i];
        if (key_listed(keys, n, 0, d->tenant) && key_listed(keys, n, 1, d->room) &&
            key_listed(keys, n, 2, d->from) && key_listed(keys, n, 3, d->cid))
            ck_assert_int_eq(message_doc_list_add(out, d), CHAT_OK);
    }
    return CHAT_OK;
}

/* Another writer stores the injected document (cid z<n>, next free seq unless set). */
static void fake_inject(fake_store_t *f)
{
    message_doc_t z = f->injected;
    char cid[16];
    if (z.cid == NULL) {
        snprintf(cid, sizeof cid, "z%d", f->insert_calls);
        z.cid = cid;
    }
    if (z.seq == 0)
        z.seq = fake_highest(f, z.tenant, z.room) + 1;
    snprintf(z.id, sizeof z.id, "ffffffffffffffff%08x", (unsigned)f->insert_calls);
    ck_assert_int_eq(fake_put(f, &z), CHAT_OK);
}

/* An ordered insert: documents in order until the first failure, the rest not attempted. */
static chat_err_t fs_insert(void *ctx, const message_doc_t *docs, size_t n, chat_err_t *results)
{
    fake_store_t *f = ctx;
    f->insert_calls++;
    if (f->inject_before_insert > 0) {
        f->inject_before_insert--;
        fake_inject(f);
    }
    if (f->fail_inserts > 0) {
        f->fail_inserts--;
        for (size_t i = 0; i < n; i++)
            results[i] = CHAT_ERR_MONGO;
        return CHAT_ERR_MONGO;
    }
    size_t limit = n;
    bool lost_reply = f->store_then_fail > 0;
    if (lost_reply) {
        f->store_then_fail--;
        limit = f->store_then_fail_docs < n ? f->store_then_fail_docs : n;
    }
    chat_err_t overall = CHAT_OK;
    size_t i = 0;
    while (i < limit && overall == CHAT_OK) {
        results[i] = fake_put(f, &docs[i]);
        overall = results[i++];
    }
    for (; i < n; i++)
        results[i] = CHAT_ERR_STOPPED;
    if (lost_reply) {
        for (i = 0; i < n; i++)
            results[i] = CHAT_ERR_IO;
        return CHAT_ERR_IO;
    }
    return overall;
}

static chat_err_t fs_find_ids(void *ctx, const char *const *ids, size_t n, bool *found)
{
    fake_store_t *f = ctx;
    f->find_ids_calls++;
    for (size_t i = 0; i < n; i++) {
        found[i] = false;
        for (size_t j = 0; j < f->docs.n; j++)
            found[i] = found[i] || strcmp(f->docs.docs[j].id, ids[i]) == 0;
    }
    return CHAT_OK;
}

/* ---- fake recent history (Redis) ---- */

#define MAX_RECENT 64

/* What the pipeline wrote, in the order written, and what had happened at each attempt. */
typedef struct fake_recent {
    char *room[MAX_RECENT];
    int64_t seq[MAX_RECENT];
    char *frame[MAX_RECENT];
    bool fresh[MAX_RECENT];     /* the entry's room was written as fresh (may renew the marker) */
    int64_t top_ts[MAX_RECENT]; /* the entry's room's top_ts */
    size_t n;
    int fail_writes; /* next writes that fail */
    int attempts;
    int writes;        /* successful ones */
    size_t rooms;      /* rooms over all successful writes */
    bool out_of_order; /* an attempt saw something published, or an entry not stored yet */
} fake_recent_t;

static fake_recent_t recent;
static fake_store_t store;
static struct fake_bus *bus_seen; /* the fake bus, for the order check */
static size_t bus_produced(void);

static const message_doc_t *stored_doc(const char *room, int64_t seq);

static chat_err_t fr_write(void *ctx, const message_recent_room_t *rooms, size_t n)
{
    fake_recent_t *r = ctx;
    r->attempts++;
    /* The order the design requires: every entry stored in MongoDB, nothing published yet. */
    if (bus_produced() > 0)
        r->out_of_order = true;
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_eq(rooms[i].tenant, "acme");
        ck_assert_uint_gt(rooms[i].n, 0);
        for (size_t k = 0; k < rooms[i].n; k++) {
            if (stored_doc(rooms[i].room, rooms[i].entries[k].seq) == NULL)
                r->out_of_order = true;
            ck_assert(k == 0 || rooms[i].entries[k].seq > rooms[i].entries[k - 1].seq);
        }
    }
    if (r->fail_writes > 0) {
        r->fail_writes--;
        return CHAT_ERR_REDIS;
    }
    r->writes++;
    r->rooms += n;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < rooms[i].n; k++) {
            ck_assert_uint_lt(r->n, MAX_RECENT);
            r->room[r->n] = strdup(rooms[i].room);
            r->seq[r->n] = rooms[i].entries[k].seq;
            r->frame[r->n] = strndup(rooms[i].entries[k].frame, rooms[i].entries[k].len);
            r->fresh[r->n] = rooms[i].fresh;
            r->top_ts[r->n] = rooms[i].top_ts;
            r->n++;
        }
    }
    return CHAT_OK;
}

static void recent_clear(void)
{
    for (size_t i = 0; i < recent.n; i++) {
        free(recent.room[i]);
        free(recent.frame[i]);
    }
    memset(&recent, 0, sizeof recent);
}

/* ---- fake chat.messages ---- */

typedef struct fake_bus {
    char *keys[MAX_OUT];
    char *values[MAX_OUT];
    size_t n;
    bool fail_flush;
    int flushes;
    int commits;
    chat_bus_record_t committed[MAX_RECS];
    size_t ncommitted;
} fake_bus_t;

static chat_err_t fb_produce(void *ctx, const char *key, size_t keylen, const char *value,
                             size_t len)
{
    fake_bus_t *b = ctx;
    ck_assert_uint_lt(b->n, MAX_OUT);
    b->keys[b->n] = strndup(key, keylen);
    b->values[b->n] = strndup(value, len);
    b->n++;
    return CHAT_OK;
}

static size_t bus_produced(void)
{
    return bus_seen->n;
}

static chat_err_t fb_flush(void *ctx)
{
    fake_bus_t *b = ctx;
    b->flushes++;
    return b->fail_flush ? CHAT_ERR_KAFKA : CHAT_OK;
}

static chat_err_t fb_commit(void *ctx, const chat_bus_record_t *recs, size_t n)
{
    fake_bus_t *b = ctx;
    b->commits++;
    for (size_t i = 0; i < n && b->ncommitted < MAX_RECS; i++)
        b->committed[b->ncommitted++] = recs[i];
    return CHAT_OK;
}

/* ---- fake environment ---- */

typedef struct fake_env {
    int64_t mono;
    int64_t wall;
    unsigned ids;
    int sleeps;
    int stop_after_sleeps; /* 0: never */
} fake_env_t;

static int64_t fe_wall(void *ctx)
{
    fake_env_t *e = ctx;
    return e->wall++;
}

static int64_t fe_mono(void *ctx)
{
    return ((fake_env_t *)ctx)->mono;
}

static void fe_sleep(void *ctx, int64_t ms)
{
    fake_env_t *e = ctx;
    e->mono += ms;
    e->sleeps++;
}

static void fe_new_id(void *ctx, char id[MESSAGE_ID_LEN + 1])
{
    fake_env_t *e = ctx;
    snprintf(id, MESSAGE_ID_LEN + 1, "%024x", ++e->ids);
}

static bool fe_stop(void *ctx)
{
    fake_env_t *e = ctx;
    return e->stop_after_sleeps > 0 && e->sleeps >= e->stop_after_sleeps;
}

/* ---- fake MongoDB reads ---- */

#define MAX_MARKS 16

typedef struct fake_reads {
    struct {
        char room[32], user[32];
        int64_t seq;
    } marks[MAX_MARKS];
    size_t n;
    int fail; /* next store calls that fail */
    int calls;
} fake_reads_t;

static fake_reads_t reads;

/* Forward only, as the conditional upsert: equal or higher moves (and counts as moved). */
static chat_err_t frd_store(void *ctx, const message_read_mark_t *marks, size_t n, bool *moved)
{
    fake_reads_t *f = ctx;
    f->calls++;
    if (f->fail > 0) {
        f->fail--;
        return CHAT_ERR_MONGO;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < f->n && !(strcmp(f->marks[k].room, marks[i].room) == 0 &&
                             strcmp(f->marks[k].user, marks[i].user) == 0))
            k++;
        if (k == f->n) {
            ck_assert_uint_lt(f->n, MAX_MARKS);
            snprintf(f->marks[k].room, sizeof f->marks[k].room, "%s", marks[i].room);
            snprintf(f->marks[k].user, sizeof f->marks[k].user, "%s", marks[i].user);
            f->n++;
        } else if (f->marks[k].seq > marks[i].seq) {
            moved[i] = false;
            continue;
        }
        f->marks[k].seq = marks[i].seq;
        moved[i] = true;
    }
    return CHAT_OK;
}

/* ---- fixture ---- */

static fake_bus_t bus;
static fake_env_t env;
static chat_metrics_t *metrics;
static message_sequencer_t *sequencer;
static message_pipeline_t *pipeline;
static chat_bus_record_t recs[MAX_RECS];
static char *values[MAX_RECS];
static size_t nrecs;

static chat_tenant_labels_t *tenant_labels; /* NULL unless a test sets it */

static message_pipeline_t *pipeline_make(long max_text, int64_t retry_ms, int rounds)
{
    message_pipeline_conf_t conf = {
        .tenant_labels = tenant_labels,
        .store = {&store, fs_highest, fs_find, fs_insert, fs_find_ids, NULL},
        .recent = {&recent, fr_write, NULL},
        .reads = {&reads, frd_store, NULL},
        .bus = {&bus, fb_produce, fb_flush, fb_commit},
        .env = {&env, fe_wall, fe_mono, fe_sleep, fe_new_id, fe_stop},
        .sequencer = sequencer,
        .metrics = metrics,
        .max_text_chars = max_text,
        .store_retry_ms = retry_ms,
        .max_conflict_rounds = rounds,
    };
    return message_pipeline_new(&conf);
}

static void setup(void)
{
    memset(&store, 0, sizeof store);
    memset(&bus, 0, sizeof bus);
    memset(&recent, 0, sizeof recent);
    memset(&reads, 0, sizeof reads);
    bus_seen = &bus;
    env = (fake_env_t){.mono = 1000, .wall = 1700000000000};
    metrics = chat_metrics_new();
    sequencer = message_sequencer_new(1000);
    const int32_t owned[] = {0, 1};
    ck_assert_int_eq(message_sequencer_assign(sequencer, owned, 2), CHAT_OK);
    pipeline = pipeline_make(4000, 10000, 3);
    ck_assert_ptr_nonnull(pipeline);
    nrecs = 0;
}

static void records_clear(void)
{
    for (size_t i = 0; i < nrecs; i++)
        free(values[i]);
    nrecs = 0;
}

static void bus_clear(void)
{
    for (size_t i = 0; i < bus.n; i++) {
        free(bus.keys[i]);
        free(bus.values[i]);
    }
    bus.n = 0;
    bus.ncommitted = 0;
    bus.commits = 0;
}

static void teardown(void)
{
    message_pipeline_destroy(pipeline);
    chat_tenant_labels_destroy(tenant_labels);
    tenant_labels = NULL;
    message_sequencer_destroy(sequencer);
    chat_metrics_destroy(metrics);
    message_doc_list_clear(&store.docs);
    bus_clear();
    records_clear();
    recent_clear();
}

/* Adds a chat.inbound record holding a send. */
static void add_send(int32_t partition, int64_t offset, const char *room, const char *user,
                     const char *cid, const char *text)
{
    ck_assert_uint_lt(nrecs, MAX_RECS);
    chat_event_t ev = {.type = CHAT_EV_SEND,
                       .tenant = "acme",
                       .room = room,
                       .user = user,
                       .name = "Alice A.",
                       .cid = cid,
                       .text = text,
                       .ts = 5,
                       .has_ts = true,
                       .origin_gw = "1",
                       .origin_conn = "1.boot.7"};
    char *value = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
    values[nrecs] = value;
    recs[nrecs] = (chat_bus_record_t){.topic = "chat.inbound",
                                      .partition = partition,
                                      .offset = offset,
                                      .value = value,
                                      .len = len};
    nrecs++;
}

/* Adds a chat.inbound record holding user's read of room up to seq (rid "r<offset>"). */
static void add_read(int32_t partition, int64_t offset, const char *room, const char *user,
                     int64_t seq)
{
    ck_assert_uint_lt(nrecs, MAX_RECS);
    char rid[24];
    snprintf(rid, sizeof rid, "r%lld", (long long)offset);
    chat_event_t ev = {.type = CHAT_EV_READ,
                       .tenant = "acme",
                       .room = room,
                       .user = user,
                       .seq = seq,
                       .has_seq = true,
                       .rid = rid,
                       .ts = 7,
                       .has_ts = true,
                       .origin_gw = "1",
                       .origin_conn = "1.boot.8"};
    char *value = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
    values[nrecs] = value;
    recs[nrecs] = (chat_bus_record_t){.topic = "chat.inbound",
                                      .partition = partition,
                                      .offset = offset,
                                      .value = value,
                                      .len = len};
    nrecs++;
}

static void add_raw(int32_t partition, int64_t offset, const char *value)
{
    values[nrecs] = strdup(value);
    recs[nrecs] = (chat_bus_record_t){.topic = "chat.inbound",
                                      .partition = partition,
                                      .offset = offset,
                                      .value = values[nrecs],
                                      .len = strlen(value)};
    nrecs++;
}

/* A document stored before the batch (by an earlier record src). */
static void add_stored(const char *room, const char *from, const char *cid, int64_t seq,
                       const char *src)
{
    message_doc_t d = {.tenant = "acme",
                       .room = room,
                       .from = from,
                       .cid = cid,
                       .text = "old",
                       .src = src,
                       .seq = seq,
                       .ts = 1600000000000 + seq};
    snprintf(d.id, sizeof d.id, "eeeeeeeeeeeeeeee%08x", (unsigned)seq);
    ck_assert_int_eq(fake_put(&store, &d), CHAT_OK);
}

static chat_err_t run(void)
{
    return message_pipeline_process(pipeline, recs, nrecs);
}

/* Decodes produced event i (caller clears). */
static chat_event_t produced(size_t i)
{
    ck_assert_uint_lt(i, bus.n);
    chat_event_t ev;
    char why[128];
    ck_assert_msg(chat_event_decode(bus.values[i], strlen(bus.values[i]), &ev, why, sizeof why) ==
                      CHAT_OK,
                  "produced event does not decode: %s: %s", why, bus.values[i]);
    return ev;
}

/* Value of a counter series (labels NULL: none) read from the rendered registry; fails the
 * test if the registry does not render that series (a renamed or unregistered metric must not
 * read as 0). */
static uint64_t counter(const char *name, const char *labels)
{
    char series[160];
    if (labels != NULL)
        snprintf(series, sizeof series, "%s{%s}", name, labels);
    else
        snprintf(series, sizeof series, "%s", name);
    char *text = chat_metrics_render(metrics, NULL);
    ck_assert_ptr_nonnull(text);
    uint64_t v = 0;
    bool found = chat_test_metric_find(text, series, &v);
    free(text);
    ck_assert_msg(found, "metric series %s not rendered", series);
    return v;
}

static const message_doc_t *stored_doc(const char *room, int64_t seq)
{
    for (size_t i = 0; i < store.docs.n; i++)
        if (strcmp(store.docs.docs[i].room, room) == 0 && store.docs.docs[i].seq == seq)
            return &store.docs.docs[i];
    return NULL;
}

/* Asserts room holds exactly seqs 1..n. */
static void assert_gapless(const char *room, int64_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < store.docs.n; i++)
        count += strcmp(store.docs.docs[i].room, room) == 0;
    ck_assert_uint_eq(count, (size_t)n);
    for (int64_t s = 1; s <= n; s++)
        ck_assert_msg(stored_doc(room, s) != NULL, "room %s misses seq %lld", room, (long long)s);
}

/* Asserts every produced event of room carries the expected (type, seq), in this order. */
typedef struct want_event {
    chat_event_type_t type;
    int64_t seq;
    const char *cid;
} want_event_t;

static void assert_room_events(const char *room, const want_event_t *want, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < bus.n; i++) {
        chat_event_t ev = produced(i);
        if (strcmp(ev.room, room) == 0) {
            ck_assert_msg(k < n, "room %s: more than %zu events", room, n);
            ck_assert_msg(ev.type == want[k].type && ev.seq == want[k].seq &&
                              strcmp(ev.cid, want[k].cid) == 0,
                          "room %s event %zu: %s seq %lld cid %s, want %s seq %lld cid %s", room, k,
                          chat_event_type_name(ev.type), (long long)ev.seq, ev.cid,
                          chat_event_type_name(want[k].type), (long long)want[k].seq, want[k].cid);
            if (ev.type == CHAT_EV_MSG || ev.type == CHAT_EV_ACK) {
                const message_doc_t *d = stored_doc(room, ev.seq);
                ck_assert_ptr_nonnull(d);
                ck_assert_str_eq(ev.id, d->id);
                ck_assert_int_eq(ev.ts, d->ts);
            }
            k++;
        }
        chat_event_clear(&ev);
    }
    ck_assert_uint_eq(k, n);
}

/* A fresh pipeline, sequencer and metrics registry: a restart of the service. */
static void restart(void)
{
    message_pipeline_destroy(pipeline);
    message_sequencer_destroy(sequencer);
    sequencer = message_sequencer_new(1000);
    const int32_t owned[] = {0, 1};
    ck_assert_int_eq(message_sequencer_assign(sequencer, owned, 2), CHAT_OK);
    chat_metrics_destroy(metrics);
    metrics = chat_metrics_new();
    pipeline = pipeline_make(4000, 10000, 3);
    ck_assert_ptr_nonnull(pipeline);
}

/* ---- tests ---- */

START_TEST(test_new_messages_gapless_per_room)
{
    add_send(0, 10, "a", "alice", "c1", "one");
    add_send(1, 20, "b", "bob", "c1", "uno");
    add_send(0, 11, "a", "alice", "c2", "two");
    add_send(0, 12, "a", "bob", "c1", "three");
    add_send(1, 21, "b", "bob", "c2", "dos");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 3);
    assert_gapless("b", 2);
    ck_assert_uint_eq(bus.n, 5);
    const char *texts[] = {"one", "two", "three", "uno", "dos"}; /* grouped by room */
    const char *rooms[] = {"a", "a", "a", "b", "b"};
    const int64_t seqs[] = {1, 2, 3, 1, 2};
    for (size_t i = 0; i < 5; i++) {
        chat_event_t ev = produced(i);
        ck_assert_int_eq(ev.type, CHAT_EV_MSG);
        ck_assert_str_eq(ev.room, rooms[i]);
        ck_assert_int_eq(ev.seq, seqs[i]);
        ck_assert_str_eq(ev.text, texts[i]);
        ck_assert_str_eq(ev.name, "Alice A.");
        ck_assert_str_eq(ev.origin_conn, "1.boot.7");
        ck_assert_int_ge(ev.ts, 1700000000000);
        /* sent: the send's ts (when the gateway received it), for send -> deliver */
        ck_assert(ev.has_sent);
        ck_assert_int_eq(ev.sent, 5);
        const message_doc_t *d = stored_doc(ev.room, ev.seq);
        ck_assert_str_eq(d->id, ev.id);
        ck_assert_int_eq(d->ts, ev.ts);
        char key[64];
        snprintf(key, sizeof key, "acme/%s", rooms[i]);
        ck_assert_str_eq(bus.keys[i], key);
        chat_event_clear(&ev);
    }
    ck_assert_str_eq(stored_doc("a", 2)->src, "0:11");
    ck_assert_int_eq(store.highest_calls, 1); /* both rooms' first touch in one query */
    ck_assert_uint_eq(store.highest_rooms, 2);
    ck_assert_int_eq(store.find_calls, 0); /* no dedup read: the insert decides */
    ck_assert_int_eq(store.insert_calls, 1);
    ck_assert_int_eq(bus.flushes, 1);
    ck_assert_int_eq(bus.commits, 1);
    ck_assert_uint_eq(bus.ncommitted, 5);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 5);

    /* The next batch continues from memory: no read at all. */
    bus_clear();
    records_clear();
    add_send(0, 13, "a", "alice", "c3", "four");
    add_send(1, 22, "b", "bob", "c3", "tres");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 4);
    assert_gapless("b", 3);
    ck_assert_int_eq(store.highest_calls, 1);
    ck_assert_int_eq(store.find_calls, 0);
    ck_assert_int_eq(store.find_ids_calls, 0);
    ck_assert_int_eq(store.insert_calls, 2);
}
END_TEST

/* chat_message_tenant_stored_total counts what was stored, by tenant, within the bound: a
 * resend is not stored again; a tenant beyond the bound counts under _other, and an
 * allowlisted tenant's series exists (0) before its first message. */
START_TEST(test_tenant_stored_counted_within_bound)
{
    for (int round = 0; round < 2; round++) {
        message_pipeline_destroy(pipeline);
        chat_tenant_labels_destroy(tenant_labels);
        /* round 0: acme takes a free slot; round 1: no free slot, only globex is labelled */
        tenant_labels = chat_tenant_labels_new(round == 0 ? "" : "globex", round == 0 ? 20 : 0);
        ck_assert_ptr_nonnull(tenant_labels);
        chat_metrics_destroy(metrics);
        metrics = chat_metrics_new();
        pipeline = pipeline_make(4000, 10000, 3);
        ck_assert_ptr_nonnull(pipeline);
        bus_clear();
        records_clear();
        const char *room = round == 0 ? "r" : "s";
        if (round == 0) {
            add_stored(room, "alice", "c1", 1, "0:3");
            add_send(0, 9, room, "alice", "c1", "again"); /* a resend: not stored */
        }
        add_send(0, 10 + 10 * round, room, "alice", "c2", "two");
        add_send(0, 11 + 10 * round, room, "bob", "c1", "three");
        ck_assert_int_eq(run(), CHAT_OK);
        ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 2);
        if (round == 0) {
            ck_assert_uint_eq(counter("chat_message_tenant_stored_total", "tenant=\"acme\""), 2);
            ck_assert_uint_eq(counter("chat_message_tenant_stored_total", "tenant=\"_other\""), 0);
        } else {
            ck_assert_uint_eq(counter("chat_message_tenant_stored_total", "tenant=\"_other\""), 2);
            ck_assert_uint_eq(counter("chat_message_tenant_stored_total", "tenant=\"globex\""), 0);
        }
    }
}
END_TEST

START_TEST(test_seq_continues_after_stored)
{
    for (int s = 1; s <= 5; s++) {
        char cid[8];
        snprintf(cid, sizeof cid, "o%d", s);
        add_stored("a", "alice", cid, s, "0:1");
    }
    add_send(0, 30, "a", "alice", "c1", "six");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 6);
    chat_event_t ev = produced(0);
    ck_assert_int_eq(ev.seq, 6);
    chat_event_clear(&ev);
    ck_assert_uint_eq(store.highest_rooms, 1);
}
END_TEST

/* The insert meets the duplicate cid; one lookup finds the original: its ack, nothing stored. */
START_TEST(test_resend_gets_original_ack)
{
    add_stored("a", "alice", "c1", 1, "0:3");
    add_send(0, 9, "a", "alice", "c1", "again");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(store.docs.n, 1);
    ck_assert_uint_eq(bus.n, 1);
    chat_event_t ev = produced(0);
    ck_assert_int_eq(ev.type, CHAT_EV_ACK);
    ck_assert_int_eq(ev.seq, 1);
    ck_assert_str_eq(ev.id, stored_doc("a", 1)->id);
    ck_assert_int_eq(ev.ts, stored_doc("a", 1)->ts);
    ck_assert_str_eq(ev.cid, "c1");
    ck_assert_str_eq(ev.origin_conn, "1.boot.7");
    chat_event_clear(&ev);
    ck_assert_int_eq(store.insert_calls, 1); /* nothing was left to insert */
    ck_assert_int_eq(store.find_calls, 1);
    ck_assert_uint_eq(counter("chat_message_duplicates_total", NULL), 1);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 0);
    ck_assert_uint_eq(counter("chat_message_seq_conflicts_total", NULL), 0);
    ck_assert_uint_eq(bus.ncommitted, 1);

    /* The room's seq is still known: the next message takes 2 without a read. */
    bus_clear();
    records_clear();
    add_send(0, 10, "a", "alice", "c2", "next");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 2);
    ck_assert_int_eq(store.highest_calls, 1);
    ck_assert_int_eq(store.find_calls, 1);
}
END_TEST

/* 10 sends alternating between two rooms; the 5th (room a) resends a stored cid. The ordered
 * insert stores the 4 before it and stops; after the lookup the rest is planned again: both
 * rooms stay gapless and the resend gets the original's ack. */
START_TEST(test_resend_mid_batch_two_rooms)
{
    add_stored("a", "alice", "o1", 1, "0:1");
    add_stored("a", "alice", "o2", 2, "0:2");
    for (int i = 0; i < 10; i++) {
        char cid[8];
        snprintf(cid, sizeof cid, "c%d", i);
        bool in_a = i % 2 == 0;
        add_send(in_a ? 0 : 1, 100 + i, in_a ? "a" : "b", "alice", i == 4 ? "o1" : cid, "text");
    }
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 6);
    assert_gapless("b", 5);
    const want_event_t a[] = {{CHAT_EV_ACK, 1, "o1"},
                              {CHAT_EV_MSG, 3, "c0"},
                              {CHAT_EV_MSG, 4, "c2"},
                              {CHAT_EV_MSG, 5, "c6"},
                              {CHAT_EV_MSG, 6, "c8"}};
    assert_room_events("a", a, 5);
    const want_event_t bw[] = {{CHAT_EV_MSG, 1, "c1"},
                               {CHAT_EV_MSG, 2, "c3"},
                               {CHAT_EV_MSG, 3, "c5"},
                               {CHAT_EV_MSG, 4, "c7"},
                               {CHAT_EV_MSG, 5, "c9"}};
    assert_room_events("b", bw, 5);
    ck_assert_int_eq(store.insert_calls, 2);
    ck_assert_int_eq(store.find_calls, 1);
    ck_assert_int_eq(store.highest_calls, 1);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 9);
    ck_assert_uint_eq(counter("chat_message_duplicates_total", NULL), 1);
    ck_assert_uint_eq(bus.ncommitted, 10);
}
END_TEST

/* Several resends in one batch are resolved by the same lookup: one extra round in all. */
START_TEST(test_many_resends_one_batch)
{
    for (int i = 1; i <= 4; i++) {
        char cid[8], src[8];
        snprintf(cid, sizeof cid, "o%d", i);
        snprintf(src, sizeof src, "0:%d", i);
        add_stored("a", "alice", cid, i, src);
    }
    for (int i = 1; i <= 4; i++) {
        char cid[8], old[8];
        snprintf(cid, sizeof cid, "c%d", i);
        snprintf(old, sizeof old, "o%d", i);
        add_send(0, 20 + 2 * i, "a", "alice", cid, "new");
        add_send(0, 21 + 2 * i, "a", "alice", old, "resent");
    }
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 8);
    const want_event_t want[] = {{CHAT_EV_ACK, 1, "o1"}, {CHAT_EV_ACK, 2, "o2"},
                                 {CHAT_EV_ACK, 3, "o3"}, {CHAT_EV_ACK, 4, "o4"},
                                 {CHAT_EV_MSG, 5, "c1"}, {CHAT_EV_MSG, 6, "c2"},
                                 {CHAT_EV_MSG, 7, "c3"}, {CHAT_EV_MSG, 8, "c4"}};
    assert_room_events("a", want, 8);
    ck_assert_int_eq(store.insert_calls, 2);
    ck_assert_int_eq(store.find_calls, 1);
    ck_assert_uint_eq(counter("chat_message_duplicates_total", NULL), 4);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 4);
}
END_TEST

/* A record replayed after a crash finds the document it created: published again as msg with
 * the same seq, id and ts; the next new message follows it. */
START_TEST(test_replayed_record_republished)
{
    add_stored("a", "alice", "c1", 1, "0:7");
    add_stored("a", "alice", "c2", 2, "0:8");
    add_send(0, 7, "a", "alice", "c1", "one");
    add_send(0, 8, "a", "alice", "c2", "two");
    add_send(0, 9, "a", "alice", "c3", "three");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 3);
    ck_assert_str_eq(stored_doc("a", 3)->src, "0:9");
    const want_event_t want[] = {
        {CHAT_EV_MSG, 1, "c1"}, {CHAT_EV_MSG, 2, "c2"}, {CHAT_EV_MSG, 3, "c3"}};
    assert_room_events("a", want, 3);
    ck_assert_int_eq(store.insert_calls, 2);
    ck_assert_int_eq(store.find_calls, 1);
    ck_assert_uint_eq(counter("chat_message_republished_total", NULL), 2);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 1);
}
END_TEST

/* The service dies while its ordered insert had stored the first half of a batch (3 of 6
 * sends, two rooms): nothing was published or committed. The restarted service gets the same
 * records: the stored half is republished as it is, the rest stored after it, gapless. */
START_TEST(test_replay_after_crash_half_stored)
{
    const char *rooms[] = {"a", "b", "a", "b", "a", "b"};
    const char *cids[] = {"c1", "c1", "c2", "c2", "c3", "c3"};
    for (int i = 0; i < 6; i++)
        add_send(i % 2, 40 + i, rooms[i], "alice", cids[i], "text");
    store.store_then_fail = 1;
    store.store_then_fail_docs = 3;
    env.stop_after_sleeps = 1; /* the kill: while the failed insert waits for its retry */
    ck_assert_int_eq(run(), CHAT_ERR_STOPPED);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_int_eq(bus.commits, 0);
    ck_assert_uint_eq(store.docs.n, 3);
    char first_ids[3][MESSAGE_ID_LEN + 1];
    for (int i = 0; i < 3; i++)
        memcpy(first_ids[i], store.docs.docs[i].id, sizeof first_ids[i]);

    restart();
    env.stop_after_sleeps = 0;
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 3);
    assert_gapless("b", 3);
    ck_assert_str_eq(stored_doc("a", 1)->id, first_ids[0]);
    ck_assert_str_eq(stored_doc("b", 1)->id, first_ids[1]);
    ck_assert_str_eq(stored_doc("a", 2)->id, first_ids[2]);
    const want_event_t a[] = {
        {CHAT_EV_MSG, 1, "c1"}, {CHAT_EV_MSG, 2, "c2"}, {CHAT_EV_MSG, 3, "c3"}};
    const want_event_t bw[] = {
        {CHAT_EV_MSG, 1, "c1"}, {CHAT_EV_MSG, 2, "c2"}, {CHAT_EV_MSG, 3, "c3"}};
    assert_room_events("a", a, 3);
    assert_room_events("b", bw, 3);
    ck_assert_int_eq(store.insert_calls, 1 + 2);
    ck_assert_int_eq(store.find_calls, 1);
    ck_assert_int_eq(store.find_ids_calls, 0);
    ck_assert_uint_eq(counter("chat_message_republished_total", NULL), 3);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 3);
    ck_assert_uint_eq(bus.ncommitted, 6);
}
END_TEST

/* Another writer (the previous owner, still running during a rebalance) processed the same
 * records past what our sequencer knows: the lookup that resolves them as ours also moves the
 * room past their seqs, so the new send after them does not collide. */
START_TEST(test_other_writer_stored_same_records)
{
    add_send(0, 1, "a", "alice", "c1", "one");
    add_send(0, 2, "a", "alice", "c2", "two");
    ck_assert_int_eq(run(), CHAT_OK);
    add_stored("a", "alice", "c3", 3, "0:3");
    add_stored("a", "alice", "c4", 4, "0:4");
    bus_clear();
    records_clear();
    add_send(0, 3, "a", "alice", "c3", "three");
    add_send(0, 4, "a", "alice", "c4", "four");
    add_send(0, 5, "a", "alice", "c5", "five");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 5);
    const want_event_t want[] = {
        {CHAT_EV_MSG, 3, "c3"}, {CHAT_EV_MSG, 4, "c4"}, {CHAT_EV_MSG, 5, "c5"}};
    assert_room_events("a", want, 3);
    ck_assert_uint_eq(counter("chat_message_seq_conflicts_total", NULL), 0);
    ck_assert_int_eq(store.highest_calls, 1);
    ck_assert_int_eq(store.insert_calls, 1 + 2);
}
END_TEST

START_TEST(test_repeat_within_batch_acked)
{
    add_send(0, 1, "a", "alice", "c1", "hello");
    add_send(0, 2, "a", "alice", "c1", "hello");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 1);
    ck_assert_uint_eq(bus.n, 2);
    chat_event_t msg = produced(0), ack = produced(1);
    ck_assert_int_eq(msg.type, CHAT_EV_MSG);
    ck_assert_int_eq(ack.type, CHAT_EV_ACK);
    ck_assert_int_eq(ack.seq, 1);
    ck_assert_str_eq(ack.id, msg.id);
    ck_assert_int_eq(ack.ts, msg.ts);
    chat_event_clear(&msg);
    chat_event_clear(&ack);
    ck_assert_int_eq(store.find_calls, 0);
}
END_TEST

/* A repeat follows what its first send turns out to be: here a resend of a stored message. */
START_TEST(test_repeat_of_resend_acks_the_original)
{
    add_stored("a", "alice", "c1", 1, "0:3");
    add_send(0, 9, "a", "alice", "c1", "again");
    add_send(0, 10, "a", "alice", "c1", "and again");
    add_send(0, 11, "a", "alice", "c2", "new");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 2);
    const want_event_t want[] = {
        {CHAT_EV_ACK, 1, "c1"}, {CHAT_EV_ACK, 1, "c1"}, {CHAT_EV_MSG, 2, "c2"}};
    assert_room_events("a", want, 3);
    ck_assert_uint_eq(counter("chat_message_duplicates_total", NULL), 2);
}
END_TEST

START_TEST(test_rejects_and_invalid_records)
{
    message_pipeline_destroy(pipeline);
    pipeline = pipeline_make(5, 10000, 3);
    add_send(0, 1, "a", "alice", "c1", "too long");
    add_raw(0, 2, "{\"not\":\"an event\"}");
    add_send(0, 3, "a", "alice", "c2", "ok");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 1);
    ck_assert_uint_eq(bus.n, 2);
    chat_event_t rej = produced(0), msg = produced(1);
    ck_assert_int_eq(rej.type, CHAT_EV_REJECT);
    ck_assert_str_eq(rej.code, "too_large");
    ck_assert_str_eq(rej.cid, "c1");
    ck_assert_str_eq(rej.origin_gw, "1");
    ck_assert_int_eq(msg.type, CHAT_EV_MSG);
    ck_assert_str_eq(msg.cid, "c2");
    chat_event_clear(&rej);
    chat_event_clear(&msg);
    ck_assert_uint_eq(bus.ncommitted, 3); /* the invalid record is skipped for good */
    ck_assert_uint_eq(counter("chat_message_invalid_records_total", "topic=\"chat.inbound\""), 1);
    ck_assert_uint_eq(counter("chat_message_rejected_total", "code=\"too_large\""), 1);
}
END_TEST

/* Reads in the room's order: a read of a message stored earlier in the same batch is valid, one
 * of a message stored after it is beyond (reject with its rid); a user's reads collapse to the
 * highest; a mark behind the stored one is not published; a read of a room the batch did not
 * write loads the room's latest; a failing store is retried. */
START_TEST(test_read_marks_in_room_order)
{
    add_stored("quiet", "bob", "q1", 1, "0:1");
    add_stored("quiet", "bob", "q2", 2, "0:2");
    add_send(0, 10, "a", "alice", "c1", "one");
    add_read(0, 11, "a", "bob", 1);   /* valid: seq 1 is stored before it */
    add_read(0, 12, "a", "carol", 2); /* beyond: seq 2 comes after it */
    add_send(0, 13, "a", "alice", "c2", "two");
    add_read(0, 14, "a", "bob", 2); /* bob's highest: 1 is superseded */
    add_read(1, 15, "quiet", "dave", 2);
    reads.fail = 1;
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(reads.calls, 2);
    ck_assert_uint_eq(bus.n, 5);
    /* room a in seq order: msg 1, reject (seq 0 sorts first), msg 2, read 2; then quiet */
    chat_event_t e[5];
    for (size_t i = 0; i < 5; i++)
        e[i] = produced(i);
    ck_assert_int_eq(e[0].type, CHAT_EV_REJECT);
    ck_assert_str_eq(e[0].code, "bad_request");
    ck_assert_str_eq(e[0].rid, "r12");
    ck_assert_str_eq(e[0].origin_conn, "1.boot.8");
    ck_assert_int_eq(e[1].type, CHAT_EV_MSG);
    ck_assert_int_eq(e[1].seq, 1);
    ck_assert_int_eq(e[2].type, CHAT_EV_MSG);
    ck_assert_int_eq(e[2].seq, 2);
    ck_assert_int_eq(e[3].type, CHAT_EV_READ);
    ck_assert_str_eq(e[3].user, "bob");
    ck_assert_int_eq(e[3].seq, 2);
    ck_assert_ptr_null(e[3].origin_gw);
    ck_assert_ptr_null(e[3].rid);
    ck_assert_int_eq(e[4].type, CHAT_EV_READ);
    ck_assert_str_eq(e[4].room, "quiet");
    ck_assert_int_eq(e[4].seq, 2);
    for (size_t i = 0; i < 5; i++)
        chat_event_clear(&e[i]);
    ck_assert_uint_eq(bus.ncommitted, 6);
    ck_assert_uint_eq(counter("chat_message_reads_total", "outcome=\"stored\""), 2);
    ck_assert_uint_eq(counter("chat_message_reads_total", "outcome=\"beyond\""), 1);
    ck_assert_uint_eq(counter("chat_message_reads_total", "outcome=\"superseded\""), 1);

    /* A lower mark next batch: stored nowhere, published nothing. */
    bus_clear();
    records_clear();
    add_read(0, 16, "a", "bob", 1);
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_uint_eq(bus.ncommitted, 1);
    ck_assert_uint_eq(counter("chat_message_reads_behind_total", NULL), 1);
}
END_TEST

/* MongoDB fails twice: the same plan is inserted again; seqs, ids and ts do not move. */
START_TEST(test_insert_failure_retried_with_same_plan)
{
    store.fail_inserts = 2;
    add_send(0, 1, "a", "alice", "c1", "one");
    add_send(0, 2, "a", "alice", "c2", "two");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 2);
    ck_assert_int_eq(store.insert_calls, 3);
    ck_assert_int_eq(env.mono, 1000 + 100 + 200); /* backoff doubles */
    ck_assert_uint_eq(counter("chat_message_store_retries_total", NULL), 2);
    chat_event_t ev = produced(1);
    ck_assert_int_eq(ev.seq, 2);
    ck_assert_str_eq(ev.id, stored_doc("a", 2)->id);
    chat_event_clear(&ev);
    ck_assert_uint_eq(env.ids, 2); /* no new ids: same plan */
}
END_TEST

/* An insert that stored every document but answered with an error: the retry meets its own
 * documents at the first position, finds their ids and carries on without a round. */
START_TEST(test_ambiguous_insert_resolved_by_ids)
{
    store.store_then_fail = 1;
    store.store_then_fail_docs = 100;
    add_send(0, 1, "a", "alice", "c1", "one");
    add_send(0, 2, "a", "alice", "c2", "two");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 2);
    ck_assert_int_eq(store.find_ids_calls, 1);
    ck_assert_int_eq(store.find_calls, 0);
    ck_assert_int_eq(store.highest_calls, 1);
    ck_assert_int_eq(store.insert_calls, 2);
    ck_assert_uint_eq(counter("chat_message_seq_conflicts_total", NULL), 0);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 2);
    ck_assert_uint_eq(bus.n, 2);
    ck_assert_int_eq(bus.commits, 1);
}
END_TEST

/* A network error after the ordered insert stored a prefix (2 of 5): the retry of the same plan
 * hits our own first document; the ids show which were stored, the rest goes in with the same
 * seqs and ids. */
START_TEST(test_retry_after_network_error_stored_prefix)
{
    store.store_then_fail = 1;
    store.store_then_fail_docs = 2;
    for (int i = 0; i < 5; i++) {
        char cid[8];
        snprintf(cid, sizeof cid, "c%d", i + 1);
        add_send(i % 2, 60 + i, i % 2 ? "b" : "a", "alice", cid, "text");
    }
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 3);
    assert_gapless("b", 2);
    ck_assert_int_eq(store.insert_calls, 3); /* prefix + error, own duplicate, the rest */
    ck_assert_int_eq(store.find_ids_calls, 1);
    ck_assert_int_eq(store.find_calls, 0);
    ck_assert_uint_eq(env.ids, 5); /* same plan throughout */
    const want_event_t a[] = {
        {CHAT_EV_MSG, 1, "c1"}, {CHAT_EV_MSG, 2, "c3"}, {CHAT_EV_MSG, 3, "c5"}};
    const want_event_t bw[] = {{CHAT_EV_MSG, 1, "c2"}, {CHAT_EV_MSG, 2, "c4"}};
    assert_room_events("a", a, 3);
    assert_room_events("b", bw, 2);
    ck_assert_uint_eq(counter("chat_message_stored_total", NULL), 5);
    ck_assert_uint_eq(counter("chat_message_republished_total", NULL), 0);
    ck_assert_uint_eq(counter("chat_message_store_retries_total", NULL), 1);
}
END_TEST

START_TEST(test_load_failure_retried)
{
    store.fail_highest = 1;
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 1);
    ck_assert_int_eq(store.highest_calls, 2);
    ck_assert_int_eq(env.sleeps, 1);
}
END_TEST

START_TEST(test_lookup_failure_retried)
{
    store.fail_finds = 1;
    add_stored("a", "alice", "c1", 1, "0:3");
    add_send(0, 9, "a", "alice", "c1", "again");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(store.find_calls, 2);
    ck_assert_int_eq(env.sleeps, 1);
    chat_event_t ev = produced(0);
    ck_assert_int_eq(ev.type, CHAT_EV_ACK);
    ck_assert_int_eq(ev.seq, 1);
    chat_event_clear(&ev);
}
END_TEST

START_TEST(test_persistent_failure_gives_up_without_commit)
{
    message_pipeline_destroy(pipeline);
    pipeline = pipeline_make(4000, 2000, 3);
    store.fail_inserts = 1000;
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_ERR_MONGO);
    ck_assert_int_eq(bus.commits, 0);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_int_ge(env.mono, 1000 + 2000);
    ck_assert_int_lt(env.mono, 1000 + 2000 + 1000);
    ck_assert_uint_eq(message_sequencer_rooms(sequencer), 0); /* unknown now: reload */
}
END_TEST

START_TEST(test_stop_during_retry)
{
    store.fail_inserts = 1000;
    env.stop_after_sleeps = 3;
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_ERR_STOPPED);
    ck_assert_int_eq(bus.commits, 0);
    ck_assert_uint_eq(bus.n, 0);
}
END_TEST

/* Another writer takes seq 1 of room a just before our insert: the lookup finds none of our
 * cids, so the seq collided; the room is reloaded and planned again, in offset order. Room b,
 * not stored in the first round either (ordered insert), keeps its seq. */
START_TEST(test_seq_collision_reloads_the_room)
{
    store.inject_before_insert = 1;
    store.injected = (message_doc_t){.tenant = "acme",
                                     .room = "a",
                                     .from = "zed",
                                     .cid = "z1",
                                     .text = "zombie",
                                     .src = "0:99",
                                     .ts = 1};
    add_send(0, 1, "a", "alice", "c1", "one");
    add_send(0, 2, "a", "alice", "c2", "two");
    add_send(1, 5, "b", "bob", "c1", "other room");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 3);
    assert_gapless("b", 1);
    ck_assert_str_eq(stored_doc("a", 1)->cid, "z1");
    const want_event_t a[] = {{CHAT_EV_MSG, 2, "c1"}, {CHAT_EV_MSG, 3, "c2"}};
    const want_event_t bw[] = {{CHAT_EV_MSG, 1, "c1"}};
    assert_room_events("a", a, 2);
    assert_room_events("b", bw, 1);
    ck_assert_uint_eq(counter("chat_message_seq_conflicts_total", NULL), 1);
    ck_assert_int_eq(store.highest_calls, 2); /* a and b at first touch, then a again */
    ck_assert_uint_eq(store.highest_rooms, 3);
    ck_assert_int_eq(store.find_calls, 1);
    ck_assert_int_eq(store.insert_calls, 2);

    /* The sequencer holds what was stored: the next message of a is 4. */
    bus_clear();
    records_clear();
    add_send(0, 3, "a", "alice", "c3", "three");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 4);
    ck_assert_int_eq(store.highest_calls, 2);
}
END_TEST

/* The other writer processed the same record: its document is ours to publish. */
START_TEST(test_conflict_with_same_record_republishes_it)
{
    store.inject_before_insert = 1;
    store.injected = (message_doc_t){.tenant = "acme",
                                     .room = "a",
                                     .from = "alice",
                                     .cid = "c1",
                                     .text = "one",
                                     .src = "0:1",
                                     .ts = 42};
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 1);
    chat_event_t ev = produced(0);
    ck_assert_int_eq(ev.type, CHAT_EV_MSG);
    ck_assert_int_eq(ev.ts, 42);
    ck_assert_str_eq(ev.id, stored_doc("a", 1)->id);
    chat_event_clear(&ev);
    ck_assert_int_eq(store.find_calls, 1);
    ck_assert_uint_eq(counter("chat_message_republished_total", NULL), 1);
}
END_TEST

/* Another writer keeps taking the room's next seq: after max_conflict_rounds collisions the
 * batch fails, nothing is published or committed, and the room is forgotten. */
START_TEST(test_conflicts_persist_gives_up)
{
    message_pipeline_destroy(pipeline);
    pipeline = pipeline_make(4000, 10000, 2);
    store.inject_before_insert = 100;
    store.injected = (message_doc_t){.tenant = "acme",
                                     .room = "a",
                                     .from = "zed",
                                     .text = "z",
                                     .src = "0:99",
                                     .ts = 1}; /* cid: z<n> */
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_ERR_DUPLICATE);
    ck_assert_int_eq(store.insert_calls, 2);
    ck_assert_int_eq(bus.commits, 0);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_uint_eq(message_sequencer_rooms(sequencer), 0);
}
END_TEST

START_TEST(test_flush_failure_no_commit)
{
    bus.fail_flush = true;
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_ERR_KAFKA);
    ck_assert_int_eq(bus.commits, 0);
}
END_TEST

START_TEST(test_foreign_partition_ignored)
{
    add_send(0, 1, "a", "alice", "c1", "one");
    add_send(7, 1, "x", "alice", "c1", "not ours");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(store.docs.n, 1);
    ck_assert_uint_eq(bus.n, 1);
    ck_assert_uint_eq(bus.ncommitted, 1);
    ck_assert_int_eq(bus.committed[0].partition, 0);
    ck_assert_uint_eq(store.highest_rooms, 1);
}
END_TEST

/* After a revoke and a new assignment, the room is loaded again from the store. */
START_TEST(test_revoke_reloads)
{
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_OK);
    const int32_t p0 = 0;
    message_sequencer_revoke(sequencer, &p0, 1);
    message_sequencer_assign(sequencer, &p0, 1);
    add_stored("a", "other", "x", 2, "0:50"); /* written by the previous owner meanwhile */
    records_clear();
    bus_clear();
    add_send(0, 2, "a", "alice", "c2", "two");
    ck_assert_int_eq(run(), CHAT_OK);
    assert_gapless("a", 3);
    ck_assert_int_eq(store.highest_calls, 2);
    ck_assert_int_eq(store.find_calls, 0);
}
END_TEST

/* ---- recent history ---- */

/* The msg frame broadcast builds for produced event i (chat_frame_msg_new, printed compactly):
 * what the recent history must hold byte for byte. malloc'd. */
static char *broadcast_frame(size_t i)
{
    chat_event_t ev = produced(i);
    cJSON *f = chat_frame_msg_new(&ev);
    ck_assert_ptr_nonnull(f);
    char *text = cJSON_PrintUnformatted(f);
    cJSON_Delete(f);
    chat_event_clear(&ev);
    return text;
}

/* Asserts that the written entries are exactly the msg events produced, room by room in
 * ascending seq (the publishing order), with broadcast's bytes. */
static void assert_recent_matches_msgs(void)
{
    size_t k = 0;
    for (size_t i = 0; i < bus.n; i++) {
        chat_event_t ev = produced(i);
        bool msg = ev.type == CHAT_EV_MSG;
        if (msg) {
            ck_assert_uint_lt(k, recent.n);
            ck_assert_str_eq(recent.room[k], ev.room);
            ck_assert_int_eq(recent.seq[k], ev.seq);
            char *want = broadcast_frame(i);
            ck_assert_str_eq(recent.frame[k], want);
            cJSON_free(want);
            k++;
        }
        chat_event_clear(&ev);
    }
    ck_assert_uint_eq(k, recent.n);
}

/* Store, then the recent history (one write for the batch, every room with messages), then
 * publish and commit; the entries are broadcast's frames of the same messages. */
START_TEST(test_recent_written_between_store_and_publish)
{
    add_send(0, 10, "a", "alice", "c1", "one \"quoted\" \u00e9");
    add_send(1, 20, "b", "bob", "c1", "uno");
    add_send(0, 11, "a", "alice", "c2", "two");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(recent.attempts, 1);
    ck_assert_int_eq(recent.writes, 1);
    ck_assert_uint_eq(recent.rooms, 2);
    ck_assert(!recent.out_of_order);
    ck_assert_uint_eq(bus.n, 3);
    ck_assert_int_eq(bus.commits, 1);
    assert_recent_matches_msgs();
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"type\":\"msg\""));
    ck_assert_uint_eq(counter("chat_message_recent_writes_total", NULL), 2);
    ck_assert_uint_eq(counter("chat_message_recent_retries_total", NULL), 0);
}
END_TEST

/* A replayed batch: the republished messages are written again (same bytes, idempotent) with
 * the new one; the ack of a resend and a reject write nothing. */
START_TEST(test_recent_republished_written_acks_not)
{
    add_stored("a", "alice", "c1", 1, "0:7");
    add_stored("a", "alice", "c2", 2, "0:8");
    add_stored("b", "bob", "r1", 5, "1:3"); /* ids follow seqs: not 1 */
    add_send(0, 7, "a", "alice", "c1", "one");
    add_send(0, 8, "a", "alice", "c2", "two");
    add_send(0, 9, "a", "alice", "c3", "three");
    add_send(1, 30, "b", "bob", "r1", "resent"); /* a resend: ack only */
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert(!recent.out_of_order);
    ck_assert_uint_eq(recent.rooms, 1); /* b has no message in this batch */
    ck_assert_uint_eq(recent.n, 3);
    const int64_t seqs[] = {1, 2, 3};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_str_eq(recent.room[i], "a");
        ck_assert_int_eq(recent.seq[i], seqs[i]);
        ck_assert(recent.fresh[i]); /* seq 3 is new: the write carries the room's top */
    }
    /* the room's top_ts is the ts of its newest message (the room summary's activity) */
    cJSON *top = cJSON_Parse(recent.frame[2]);
    ck_assert_ptr_nonnull(top);
    ck_assert_int_eq(recent.top_ts[2], (int64_t)cJSON_GetObjectItem(top, "ts")->valuedouble);
    cJSON_Delete(top);
    assert_recent_matches_msgs();
}
END_TEST

/* A replayed batch that only republishes (here its room already holds a newer message, stored
 * by a later batch whose commit was lost too): written, but not as fresh, so the set's marker
 * is not renewed by a write that may not carry the room's top. */
START_TEST(test_recent_republish_only_not_fresh)
{
    add_stored("a", "alice", "c1", 1, "0:7");
    add_stored("a", "alice", "c2", 2, "0:9");
    add_send(0, 7, "a", "alice", "c1", "one");
    add_send(1, 5, "b", "bob", "n1", "new in b");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(recent.n, 2);
    ck_assert_str_eq(recent.room[0], "a");
    ck_assert_int_eq(recent.seq[0], 1);
    ck_assert(!recent.fresh[0]);
    ck_assert_str_eq(recent.room[1], "b");
    ck_assert(recent.fresh[1]);
    assert_recent_matches_msgs();
}
END_TEST

START_TEST(test_recent_not_written_without_messages)
{
    message_pipeline_destroy(pipeline);
    pipeline = pipeline_make(5, 10000, 3);
    add_send(0, 1, "a", "alice", "c1", "too long");
    add_raw(0, 2, "{\"not\":\"an event\"}");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(recent.attempts, 0);
    ck_assert_uint_eq(bus.n, 1); /* the reject */
    ck_assert_int_eq(bus.commits, 1);
}
END_TEST

/* Redis fails twice: the write is retried with MongoDB's backoff; nothing is published before
 * it succeeded, and MongoDB is not written again. */
START_TEST(test_recent_failure_retried_before_publish)
{
    recent.fail_writes = 2;
    add_send(0, 1, "a", "alice", "c1", "one");
    add_send(0, 2, "a", "alice", "c2", "two");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(recent.attempts, 3);
    ck_assert(!recent.out_of_order);
    ck_assert_int_eq(env.mono, 1000 + 100 + 200);
    ck_assert_int_eq(store.insert_calls, 1);
    ck_assert_uint_eq(bus.n, 2);
    ck_assert_int_eq(bus.commits, 1);
    assert_recent_matches_msgs();
    ck_assert_uint_eq(counter("chat_message_recent_retries_total", NULL), 2);
    ck_assert_uint_eq(counter("chat_message_store_retries_total", NULL), 0);
}
END_TEST

/* Redis keeps failing: after the retry time (counted from the start of the write, not of the
 * batch) the batch fails, stored but neither published nor committed: the restart replays it
 * and republishes (and writes) the stored messages. */
START_TEST(test_recent_persistent_failure_no_publish)
{
    message_pipeline_destroy(pipeline);
    pipeline = pipeline_make(4000, 2000, 3);
    store.fail_inserts = 1; /* MongoDB's retry takes 100 ms of the batch first */
    recent.fail_writes = 1000;
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_ERR_REDIS);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_int_eq(bus.commits, 0);
    ck_assert_uint_eq(store.docs.n, 1);
    ck_assert_int_ge(env.mono, 1000 + 100 + 2000);
    ck_assert_int_lt(env.mono, 1000 + 100 + 2000 + 1000);

    restart();
    recent.fail_writes = 0;
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 1);
    ck_assert_uint_eq(counter("chat_message_republished_total", NULL), 1);
    assert_recent_matches_msgs();
}
END_TEST

START_TEST(test_recent_stop_during_retry)
{
    recent.fail_writes = 1000;
    env.stop_after_sleeps = 2;
    add_send(0, 1, "a", "alice", "c1", "one");
    ck_assert_int_eq(run(), CHAT_ERR_STOPPED);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_int_eq(bus.commits, 0);
}
END_TEST

/* ---- edits, deletes, reactions ---- */

/* The fake `updates` collection (unique (tenant, room, useq) and (tenant, room, user, req)),
 * and the writes of the changes into the fake `messages`. */
#define MAX_UPDATES 32
static struct {
    message_update_rec_t recs[MAX_UPDATES];
    size_t n;
    int fail_apply;    /* next apply_update calls that fail after doing nothing */
    int highest_calls; /* highest_useqs calls */
    int insert_calls;
} upd;

static bool same_room(const message_update_rec_t *r, const char *tenant, const char *room)
{
    return strcmp(r->tenant, tenant) == 0 && strcmp(r->room, room) == 0;
}

static chat_err_t fu_highest(void *ctx, const message_room_ref_t *rooms, size_t n, int64_t *highest)
{
    (void)ctx;
    upd.highest_calls++;
    for (size_t i = 0; i < n; i++) {
        highest[i] = 0;
        for (size_t k = 0; k < upd.n; k++)
            if (same_room(&upd.recs[k], rooms[i].tenant, rooms[i].room) &&
                upd.recs[k].useq > highest[i])
                highest[i] = upd.recs[k].useq;
    }
    return CHAT_OK;
}

static chat_err_t fu_find_message(void *ctx, const char *tenant, const char *room, const char *id,
                                  message_doc_list_t *out)
{
    (void)ctx;
    for (size_t i = 0; i < store.docs.n; i++) {
        const message_doc_t *d = &store.docs.docs[i];
        if (strcmp(d->id, id) == 0 && strcmp(d->tenant, tenant) == 0 && strcmp(d->room, room) == 0)
            return message_doc_list_add(out, d);
    }
    return CHAT_OK;
}

static chat_err_t fu_find_update(void *ctx, const char *tenant, const char *room, const char *user,
                                 const char *req, message_update_rec_t *out, bool *found)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    *found = false;
    for (size_t k = 0; k < upd.n; k++) {
        const message_update_rec_t *r = &upd.recs[k];
        if (same_room(r, tenant, room) && strcmp(r->user, user) == 0 && strcmp(r->req, req) == 0) {
            *found = true;
            return message_update_rec_copy(out, r);
        }
    }
    return CHAT_OK;
}

static chat_err_t fu_insert_update(void *ctx, const message_update_rec_t *rec)
{
    (void)ctx;
    upd.insert_calls++;
    for (size_t k = 0; k < upd.n; k++) {
        const message_update_rec_t *r = &upd.recs[k];
        if (same_room(r, rec->tenant, rec->room) &&
            (r->useq == rec->useq ||
             (strcmp(r->user, rec->user) == 0 && strcmp(r->req, rec->req) == 0)))
            return CHAT_ERR_DUPLICATE;
    }
    ck_assert_uint_lt(upd.n, MAX_UPDATES);
    return message_update_rec_copy(&upd.recs[upd.n++], rec);
}

static chat_err_t fu_apply_update(void *ctx, const message_update_rec_t *rec)
{
    (void)ctx;
    if (upd.fail_apply > 0) {
        upd.fail_apply--;
        return CHAT_ERR_MONGO;
    }
    for (size_t i = 0; i < store.docs.n; i++) {
        message_doc_t *d = &store.docs.docs[i];
        if (strcmp(d->id, rec->id) != 0)
            continue;
        free((char *)d->text);
        free((char *)d->uop);
        free((char *)d->reason);
        cJSON_Delete(d->reactions);
        d->text = rec->text != NULL ? strdup(rec->text) : NULL;
        d->uop = strdup(rec->op);
        d->removed = rec->removed;
        d->reason = rec->reason != NULL ? strdup(rec->reason) : NULL;
        d->reactions = rec->reactions != NULL ? cJSON_Duplicate(rec->reactions, true) : NULL;
        d->edited = rec->edited;
        d->deleted = rec->deleted;
        d->useq = rec->useq;
        return CHAT_OK;
    }
    return CHAT_OK;
}

static void updates_setup_pipeline_only(void)
{
    message_pipeline_conf_t conf = {
        .store = {.ctx = &store,
                  .highest_seqs = fs_highest,
                  .find_existing = fs_find,
                  .insert = fs_insert,
                  .find_ids = fs_find_ids,
                  .highest_useqs = fu_highest,
                  .find_message = fu_find_message,
                  .find_update = fu_find_update,
                  .insert_update = fu_insert_update,
                  .apply_update = fu_apply_update},
        .recent = {&recent, fr_write, NULL},
        .bus = {&bus, fb_produce, fb_flush, fb_commit},
        .env = {&env, fe_wall, fe_mono, fe_sleep, fe_new_id, fe_stop},
        .sequencer = sequencer,
        .metrics = metrics,
        .max_text_chars = 4000,
        .store_retry_ms = 10000,
        .max_conflict_rounds = 3,
    };
    pipeline = message_pipeline_new(&conf);
    ck_assert_ptr_nonnull(pipeline);
}

static void updates_setup(void)
{
    setup();
    memset(&upd, 0, sizeof upd);
    message_pipeline_destroy(pipeline);
    updates_setup_pipeline_only();
}

static void updates_teardown(void)
{
    for (size_t k = 0; k < upd.n; k++)
        message_update_rec_clear(&upd.recs[k]);
    teardown();
}

#define STORED_ID "eeeeeeeeeeeeeeee00000001" /* add_stored's id of seq 1 */

/* Adds a chat.inbound record holding an edit (text), delete or react (emoji, on) by user. */
static void add_update(int64_t offset, chat_event_type_t type, const char *user, const char *id,
                       const char *arg, bool on, const char *rid)
{
    ck_assert_uint_lt(nrecs, MAX_RECS);
    chat_event_t ev = {.type = type,
                       .tenant = "acme",
                       .room = "a",
                       .user = user,
                       .id = id,
                       .text = type == CHAT_EV_EDIT ? arg : NULL,
                       .emoji = type == CHAT_EV_REACT ? arg : NULL,
                       .on = on,
                       .has_on = type == CHAT_EV_REACT,
                       .rid = rid,
                       .ts = 5,
                       .has_ts = true,
                       .origin_gw = "1",
                       .origin_conn = "1.boot.7"};
    char *value = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
    values[nrecs] = value;
    recs[nrecs] = (chat_bus_record_t){
        .topic = "chat.inbound", .partition = 0, .offset = offset, .value = value, .len = len};
    nrecs++;
}

/* Checks produced event i: its type, op and useq (0: none), and for rejects the code. */
static void expect_event(size_t i, chat_event_type_t type, const char *op_or_code, int64_t useq)
{
    chat_event_t ev = produced(i);
    ck_assert_msg(ev.type == type, "event %zu is %s", i, chat_event_type_name(ev.type));
    if (type == CHAT_EV_REJECT) {
        ck_assert_str_eq(ev.code, op_or_code);
    } else {
        ck_assert_str_eq(ev.op, op_or_code);
        ck_assert_int_eq(ev.has_useq ? ev.useq : 0, useq);
        ck_assert_str_eq(ev.id, STORED_ID);
        ck_assert_int_eq(ev.seq, 1);
    }
    ck_assert_str_eq(ev.origin_conn, "1.boot.7");
    chat_event_clear(&ev);
}

/* Replaces the pipeline by one whose store takes updates (after restart()). */
static void updates_setup_pipeline_only(void);

START_TEST(test_updates_take_useqs_in_order)
{
    add_stored("a", "alice", "c1", 1, "0:1");
    add_update(10, CHAT_EV_EDIT, "alice", STORED_ID, "fixed", false, "e1");
    add_update(11, CHAT_EV_REACT, "bob", STORED_ID, "x", true, "r1");
    add_update(12, CHAT_EV_REACT, "bob", STORED_ID, "x", true, "r2");    /* already there */
    add_update(13, CHAT_EV_EDIT, "bob", STORED_ID, "mine", false, "e2"); /* not the author */
    add_update(14, CHAT_EV_DELETE, "alice", "eeeeeeeeeeeeeeee000000ff", NULL, false, NULL);
    add_send(0, 15, "a", "carol", "c2", "new");
    ck_assert_int_eq(run(), CHAT_OK);
    /* The new message first, then the updates' outcomes in offset order. */
    ck_assert_uint_eq(bus.n, 6);
    chat_event_t m = produced(0);
    ck_assert_int_eq(m.type, CHAT_EV_MSG);
    ck_assert_int_eq(m.seq, 2);
    chat_event_clear(&m);
    expect_event(1, CHAT_EV_UPDATE, "edit", 1);
    expect_event(2, CHAT_EV_UPDATE, "react", 2);
    expect_event(3, CHAT_EV_ACK, "react", 2);
    expect_event(4, CHAT_EV_REJECT, "forbidden", 0);
    expect_event(5, CHAT_EV_REJECT, "not_found", 0);
    chat_event_t u = produced(2);
    ck_assert_str_eq(u.text, "fixed");
    ck_assert_int_gt(u.edited, 0);
    char *r = cJSON_PrintUnformatted(u.reactions);
    ck_assert_str_eq(r, "{\"x\":[\"bob\"]}");
    free(r);
    ck_assert_str_eq(u.rid, "r1");
    chat_event_clear(&u);
    /* The message holds the last state; the recent history got it (after the new message). */
    const message_doc_t *d = stored_doc("a", 1);
    ck_assert_str_eq(d->text, "fixed");
    ck_assert_int_eq(d->useq, 2);
    ck_assert_uint_eq(recent.n, 2);
    ck_assert_int_eq(recent.seq[0], 1);
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"text\":\"fixed\""));
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"reactions\":{\"x\":[\"bob\"]}"));
    ck_assert_uint_eq(upd.n, 2);
    ck_assert_uint_eq(counter("chat_message_updates_total", NULL), 2);
    ck_assert_int_eq(bus.commits, 1);

    /* The next batch continues the room's useq from memory. */
    bus_clear();
    records_clear();
    int calls = upd.highest_calls;
    add_update(16, CHAT_EV_REACT, "bob", STORED_ID, "x", false, "r3");
    ck_assert_int_eq(run(), CHAT_OK);
    expect_event(0, CHAT_EV_UPDATE, "react", 3);
    ck_assert_int_eq(upd.highest_calls, calls);
    chat_event_t last = produced(0);
    ck_assert_int_eq(cJSON_GetArraySize(last.reactions), 0); /* none left: {} */
    chat_event_clear(&last);
}
END_TEST

/* The same rid again is answered with the original useq, nothing changes; a record replayed
 * after its change was recorded but not written into the message finishes it, same useq. */
START_TEST(test_update_resend_and_replay)
{
    add_stored("a", "alice", "c1", 1, "0:1");
    add_update(10, CHAT_EV_EDIT, "alice", STORED_ID, "fixed", false, "e1");
    ck_assert_int_eq(run(), CHAT_OK);
    expect_event(0, CHAT_EV_UPDATE, "edit", 1);

    bus_clear();
    records_clear();
    add_update(11, CHAT_EV_EDIT, "alice", STORED_ID, "fixed", false, "e1");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 1);
    expect_event(0, CHAT_EV_ACK, "edit", 1);
    ck_assert_uint_eq(upd.n, 1);

    /* A change whose message write fails: retried, it finishes through its own record. */
    bus_clear();
    records_clear();
    upd.fail_apply = 1;
    add_update(12, CHAT_EV_DELETE, "alice", STORED_ID, NULL, false, NULL);
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 1);
    expect_event(0, CHAT_EV_UPDATE, "delete", 2);
    ck_assert(stored_doc("a", 1)->deleted);
    ck_assert_uint_eq(upd.n, 2);

    /* After a restart (the sequencer forgot the room) the whole batch comes again: the
     * changes are published again with their useqs, none is made twice. */
    bus_clear();
    records_clear();
    restart();
    message_pipeline_destroy(pipeline);
    updates_setup_pipeline_only();
    add_update(10, CHAT_EV_EDIT, "alice", STORED_ID, "fixed", false, "e1");
    add_update(12, CHAT_EV_DELETE, "alice", STORED_ID, NULL, false, NULL);
    add_update(13, CHAT_EV_REACT, "bob", STORED_ID, "x", true, "r9");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 3);
    expect_event(0, CHAT_EV_UPDATE, "edit", 1);
    expect_event(1, CHAT_EV_UPDATE, "delete", 2);
    expect_event(2, CHAT_EV_REJECT, "not_found", 0); /* a react on the deleted message */
    ck_assert_uint_eq(upd.n, 2);
    /* The recent history holds the message's current state: deleted, whatever replays. */
    ck_assert_ptr_nonnull(strstr(recent.frame[recent.n - 1], "\"deleted\":true"));
}
END_TEST

/* ---- the server API: system sends, notices, the tenant's edits and deletes, blocks ---- */

/* blocks documents {tenant "acme", user, target} of the fake store */
static struct {
    const char *user[4];
    const char *target[4];
    size_t n;
    int calls;    /* find_blocks calls */
    size_t pairs; /* pairs asked for over all calls */
    int hints;    /* tenant_has_blocks calls */
} blk;

/* The tenant acme has blocks when the fake store holds any. */
static chat_err_t fb_tenant_has_blocks(void *ctx, const char *tenant, bool *has)
{
    (void)ctx;
    blk.hints++;
    *has = strcmp(tenant, "acme") == 0 && blk.n > 0;
    return CHAT_OK;
}

static chat_err_t fb_find_blocks(void *ctx, const message_block_pair_t *pairs, size_t n,
                                 bool *blocked)
{
    (void)ctx;
    blk.calls++;
    blk.pairs += n;
    for (size_t i = 0; i < n; i++) {
        blocked[i] = false;
        for (size_t k = 0; k < blk.n; k++) {
            bool fwd = strcmp(blk.user[k], pairs[i].user) == 0 &&
                       strcmp(blk.target[k], pairs[i].other) == 0;
            bool back = strcmp(blk.user[k], pairs[i].other) == 0 &&
                        strcmp(blk.target[k], pairs[i].user) == 0;
            blocked[i] |= strcmp(pairs[i].tenant, "acme") == 0 && (fwd || back);
        }
    }
    return CHAT_OK;
}

static void system_setup(void)
{
    updates_setup();
    memset(&blk, 0, sizeof blk);
    message_pipeline_destroy(pipeline);
    message_pipeline_conf_t conf = {
        .store = {.ctx = &store,
                  .highest_seqs = fs_highest,
                  .find_existing = fs_find,
                  .insert = fs_insert,
                  .find_ids = fs_find_ids,
                  .highest_useqs = fu_highest,
                  .find_message = fu_find_message,
                  .find_update = fu_find_update,
                  .insert_update = fu_insert_update,
                  .apply_update = fu_apply_update,
                  .find_blocks = fb_find_blocks,
                  .tenant_has_blocks = fb_tenant_has_blocks},
        .recent = {&recent, fr_write, NULL},
        .bus = {&bus, fb_produce, fb_flush, fb_commit},
        .env = {&env, fe_wall, fe_mono, fe_sleep, fe_new_id, fe_stop},
        .sequencer = sequencer,
        .metrics = metrics,
        .max_text_chars = 4000,
        .store_retry_ms = 10000,
        .max_conflict_rounds = 3,
    };
    pipeline = message_pipeline_new(&conf);
    ck_assert_ptr_nonnull(pipeline);
}

/* Adds a chat.inbound record holding ev (tenant acme, ts set here) at partition 0. */
static void add_event(int64_t offset, chat_event_t ev)
{
    ck_assert_uint_lt(nrecs, MAX_RECS);
    ev.tenant = "acme";
    ev.ts = 5;
    ev.has_ts = true;
    char *value = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
    values[nrecs] = value;
    recs[nrecs] = (chat_bus_record_t){
        .topic = "chat.inbound", .partition = 0, .offset = offset, .value = value, .len = len};
    nrecs++;
}

/* Checks that produced event i is a reject with code and message. */
static void expect_reject(size_t i, const char *code, const char *message)
{
    chat_event_t ev = produced(i);
    ck_assert_int_eq(ev.type, CHAT_EV_REJECT);
    ck_assert_str_eq(ev.code, code);
    ck_assert_str_eq(ev.message, message);
    chat_event_clear(&ev);
}

/* "system" sends only from the api origin; notices (and targets) only from "system"; a
 * notice is stored with its notice and target and reaches chat.messages and the recent
 * history with them; a bot's send from the api is like anyone's. */
START_TEST(test_system_sends_and_notices)
{
    add_event(1, (chat_event_t){.type = CHAT_EV_SEND,
                                .room = "team",
                                .user = "system",
                                .cid = "n1",
                                .text = "hi",
                                .origin_gw = "1",
                                .origin_conn = "c1"});
    add_event(2, (chat_event_t){.type = CHAT_EV_SEND,
                                .room = "team",
                                .user = "alice",
                                .cid = "n2",
                                .text = "",
                                .notice = "member_added",
                                .target = "bob",
                                .origin_gw = "api",
                                .origin_conn = "r2"});
    add_event(3, (chat_event_t){.type = CHAT_EV_SEND,
                                .room = "team",
                                .user = "system",
                                .cid = "n3",
                                .text = "",
                                .notice = "member_removed",
                                .target = "carol",
                                .origin_gw = "api",
                                .origin_conn = "r3"});
    add_event(4, (chat_event_t){.type = CHAT_EV_SEND,
                                .room = "team",
                                .user = "helpbot",
                                .cid = "n4",
                                .text = "beep",
                                .origin_gw = "api",
                                .origin_conn = "r4"});
    add_event(5, (chat_event_t){.type = CHAT_EV_SEND,
                                .room = "dm:alice:bob",
                                .user = "system",
                                .cid = "n5",
                                .text = "welcome",
                                .origin_gw = "api",
                                .origin_conn = "r5"});
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 5);
    /* per room: the messages in seq order, then the rejects */
    size_t seen_rejects = 0, seen_msgs = 0;
    for (size_t i = 0; i < bus.n; i++) {
        chat_event_t ev = produced(i);
        if (ev.type == CHAT_EV_REJECT) {
            seen_rejects++;
            if (strcmp(ev.cid, "n1") == 0) {
                ck_assert_str_eq(ev.code, "forbidden");
                ck_assert_str_eq(ev.message, "reserved user id");
            } else {
                ck_assert_str_eq(ev.cid, "n2");
                ck_assert_str_eq(ev.code, "bad_request");
                ck_assert_str_eq(ev.origin_gw, "api");
            }
        } else {
            ck_assert_int_eq(ev.type, CHAT_EV_MSG);
            seen_msgs++;
            if (strcmp(ev.cid, "n3") == 0) {
                ck_assert_str_eq(ev.user, "system");
                ck_assert_str_eq(ev.notice, "member_removed");
                ck_assert_str_eq(ev.target, "carol");
                ck_assert_str_eq(ev.text, "");
                ck_assert_str_eq(ev.origin_gw, "api");
                ck_assert_str_eq(ev.origin_conn, "r3");
            } else if (strcmp(ev.cid, "n4") == 0) {
                ck_assert_str_eq(ev.user, "helpbot");
                ck_assert_ptr_null(ev.notice);
            } else {
                ck_assert_str_eq(ev.cid, "n5");
                ck_assert_str_eq(ev.user, "system");
            }
        }
        chat_event_clear(&ev);
    }
    ck_assert_uint_eq(seen_rejects, 2);
    ck_assert_uint_eq(seen_msgs, 3);
    const message_doc_t *d = stored_doc("team", 1);
    ck_assert_str_eq(d->notice, "member_removed");
    ck_assert_str_eq(d->target, "carol");
    ck_assert_ptr_null(stored_doc("team", 2)->notice);
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"notice\":\"member_removed\""));
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"target\":\"carol\""));
    ck_assert_int_eq(blk.calls, 0); /* "system" in a direct room is never blocked */
}
END_TEST

/* "system" (the tenant, from the api) edits and deletes anyone's message, the delete's reason
 * rides in the update; "system" from a gateway origin is refused. */
START_TEST(test_system_edits_and_deletes_any_message)
{
    add_stored("a", "alice", "c1", 1, "0:1");
    add_update(10, CHAT_EV_EDIT, "bob", STORED_ID, "bob's", false, "e0");
    add_event(11, (chat_event_t){.type = CHAT_EV_EDIT,
                                 .room = "a",
                                 .user = "system",
                                 .id = STORED_ID,
                                 .text = "redacted",
                                 .rid = "e1",
                                 .origin_gw = "api",
                                 .origin_conn = "r1"});
    add_event(12, (chat_event_t){.type = CHAT_EV_DELETE,
                                 .room = "a",
                                 .user = "system",
                                 .id = STORED_ID,
                                 .rid = "d0",
                                 .origin_gw = "1",
                                 .origin_conn = "1.boot.7"});
    add_event(13, (chat_event_t){.type = CHAT_EV_DELETE,
                                 .room = "a",
                                 .user = "system",
                                 .id = STORED_ID,
                                 .rid = "d1",
                                 .reason = "spam",
                                 .origin_gw = "api",
                                 .origin_conn = "r2"});
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 4);
    /* the request refused before the message is looked at comes first, then the updates' */
    expect_reject(0, "forbidden", "reserved user id");
    expect_reject(1, "forbidden", "only its author edits a message");
    chat_event_t ed = produced(2), del = produced(3);
    ck_assert_int_eq(ed.type, CHAT_EV_UPDATE);
    ck_assert_str_eq(ed.text, "redacted");
    ck_assert_str_eq(ed.user, "system");
    ck_assert_ptr_null(ed.reason);
    ck_assert_int_eq(del.type, CHAT_EV_UPDATE);
    ck_assert_str_eq(del.op, "delete");
    ck_assert(del.deleted);
    ck_assert_str_eq(del.reason, "spam");
    ck_assert_str_eq(del.origin_gw, "api");
    ck_assert_str_eq(del.rid, "d1");
    chat_event_clear(&ed);
    chat_event_clear(&del);
    ck_assert(stored_doc("a", 1)->deleted);
}
END_TEST

/* A send in dm:A:B is refused when A blocked B or B blocked A: one blocks query for all the
 * batch's direct-room sends, none for a batch without any. */
START_TEST(test_dm_blocks_one_query_per_batch)
{
    blk.user[0] = "bob", blk.target[0] = "alice"; /* bob blocked alice */
    blk.user[1] = "erin", blk.target[1] = "dave"; /* erin blocked dave */
    blk.n = 2;
    add_send(0, 1, "dm:alice:bob", "alice", "c1", "hi bob");
    add_send(0, 2, "dm:carol:dave", "carol", "c2", "hi dave");
    add_send(0, 3, "dm:dave:erin", "erin", "c3", "hi dave"); /* the blocker writes: refused too */
    add_send(0, 4, "general", "alice", "c4", "hi all");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(blk.calls, 1);
    ck_assert_uint_eq(blk.pairs, 3);
    ck_assert_uint_eq(bus.n, 4);
    size_t rejects = 0;
    for (size_t i = 0; i < bus.n; i++) {
        chat_event_t ev = produced(i);
        if (ev.type == CHAT_EV_REJECT) {
            rejects++;
            ck_assert(strcmp(ev.cid, "c1") == 0 || strcmp(ev.cid, "c3") == 0);
            chat_event_clear(&ev);
            expect_reject(i, "forbidden", "blocked");
            continue;
        }
        ck_assert_int_eq(ev.type, CHAT_EV_MSG);
        ck_assert(strcmp(ev.cid, "c2") == 0 || strcmp(ev.cid, "c4") == 0);
        chat_event_clear(&ev);
    }
    ck_assert_uint_eq(rejects, 2);
    ck_assert_ptr_null(stored_doc("dm:alice:bob", 1));
    ck_assert_ptr_nonnull(stored_doc("dm:carol:dave", 1));
    ck_assert_uint_eq(counter("chat_message_rejected_total", "code=\"forbidden\""), 2);

    /* no direct-room send: no query */
    bus_clear();
    records_clear();
    add_send(0, 5, "general", "bob", "c5", "hello");
    add_update(6, CHAT_EV_REACT, "bob", "eeeeeeeeeeeeeeee000000ff", "x", true, "r1");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(blk.calls, 1);
}
END_TEST

/* A tenant without any block costs no pair query: the store is asked whether the tenant has
 * blocks at most once per MESSAGE_BLOCKS_HINT_MS; its first block refuses sends once that
 * answer is renewed, and from then on every batch asks for its pairs. */
START_TEST(test_dm_blocks_tenant_hint)
{
    add_send(0, 1, "dm:alice:bob", "alice", "c1", "hi bob");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(blk.hints, 1);
    ck_assert_int_eq(blk.calls, 0);

    bus_clear();
    records_clear();
    blk.user[0] = "bob", blk.target[0] = "alice";
    blk.n = 1;
    env.mono += MESSAGE_BLOCKS_HINT_MS - 1; /* the hint still holds */
    add_send(0, 2, "dm:alice:bob", "alice", "c2", "still there?");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(blk.hints, 1);
    ck_assert_int_eq(blk.calls, 0);
    ck_assert_uint_eq(bus.n, 1);
    chat_event_t ev = produced(0);
    ck_assert_int_eq(ev.type, CHAT_EV_MSG);
    chat_event_clear(&ev);

    bus_clear();
    records_clear();
    env.mono += 1; /* renewed: the tenant has blocks now */
    add_send(0, 3, "dm:alice:bob", "alice", "c3", "hello?");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(blk.hints, 2);
    ck_assert_int_eq(blk.calls, 1);
    expect_reject(0, "forbidden", "blocked");
}
END_TEST

/* ---- moderation: verdicts and mutes ---- */

/* The fake mutes (Redis): the muted users of tenant acme. */
static struct {
    const char *muted[4];
    size_t n;
    int checks;       /* check calls */
    size_t asked;     /* users asked for over all checks */
    int hints;        /* tenant_has_mutes calls */
    int fail;         /* next checks that fail */
    int64_t last_now; /* now_ms of the last check */
} mt;

static chat_err_t fm_check(void *ctx, const char *tenant, const char *const *users, size_t n,
                           int64_t now_ms, bool *muted)
{
    (void)ctx;
    mt.checks++;
    if (mt.fail > 0) {
        mt.fail--;
        return CHAT_ERR_REDIS;
    }
    mt.asked += n;
    mt.last_now = now_ms;
    for (size_t i = 0; i < n; i++) {
        muted[i] = false;
        for (size_t k = 0; k < mt.n; k++)
            muted[i] |= strcmp(tenant, "acme") == 0 && strcmp(users[i], mt.muted[k]) == 0;
    }
    return CHAT_OK;
}

static chat_err_t fm_has(void *ctx, const char *tenant, bool *has)
{
    (void)ctx;
    mt.hints++;
    *has = strcmp(tenant, "acme") == 0 && mt.n > 0;
    return CHAT_OK;
}

/* The pipeline with every port (the store's updates, the mutes with or without the tenant
 * hint) and chat.moderation's records as verdicts. */
static void moderation_pipeline(bool hint)
{
    message_pipeline_destroy(pipeline);
    message_pipeline_conf_t conf = {
        .store = {.ctx = &store,
                  .highest_seqs = fs_highest,
                  .find_existing = fs_find,
                  .insert = fs_insert,
                  .find_ids = fs_find_ids,
                  .highest_useqs = fu_highest,
                  .find_message = fu_find_message,
                  .find_update = fu_find_update,
                  .insert_update = fu_insert_update,
                  .apply_update = fu_apply_update},
        .recent = {&recent, fr_write, NULL},
        .mutes = {.ctx = &mt, .check = fm_check, .tenant_has_mutes = hint ? fm_has : NULL},
        .bus = {&bus, fb_produce, fb_flush, fb_commit},
        .env = {&env, fe_wall, fe_mono, fe_sleep, fe_new_id, fe_stop},
        .moderation_topic = "chat.moderation",
        .sequencer = sequencer,
        .metrics = metrics,
        .max_text_chars = 4000,
        .store_retry_ms = 10000,
        .max_conflict_rounds = 3,
    };
    pipeline = message_pipeline_new(&conf);
    ck_assert_ptr_nonnull(pipeline);
}

static void moderation_setup(void)
{
    updates_setup();
    memset(&mt, 0, sizeof mt);
    moderation_pipeline(false);
}

/* Adds a chat.moderation record: a verdict about message id of room a (value: the raw record
 * instead, when not NULL). */
static void add_verdict(int32_t partition, int64_t offset, const char *id, const char *action,
                        const char *reason, const char *raw)
{
    ck_assert_uint_lt(nrecs, MAX_RECS);
    char *value = NULL;
    size_t len = 0;
    if (raw != NULL) {
        value = strdup(raw);
        len = strlen(raw);
    } else {
        chat_event_t ev = {.type = CHAT_EV_VERDICT,
                           .tenant = "acme",
                           .room = "a",
                           .id = id,
                           .seq = 1,
                           .has_seq = true,
                           .action = action,
                           .reason = reason,
                           .rule = "words",
                           .ts = 9,
                           .has_ts = true};
        ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
    }
    values[nrecs] = value;
    recs[nrecs] = (chat_bus_record_t){.topic = "chat.moderation",
                                      .partition = partition,
                                      .offset = offset,
                                      .value = value,
                                      .len = len};
    nrecs++;
}

/* The count of observations of a histogram (name_count) in the registry. */
static uint64_t histogram_count(const char *name)
{
    char series[128];
    snprintf(series, sizeof series, "%s_count", name);
    return counter(series, NULL);
}

/* A remove verdict: one update (op moderate, removed, reason, the room's next useq, no user,
 * no origin), the message removed in the store and in the recent history, one update record
 * by moderation with the message's request key. The same verdict replayed (its own record) is
 * published again with the same useq; other verdicts about the message change nothing and
 * publish nothing; after it, edit and react are refused and delete is a no-op. */
START_TEST(test_verdict_removes_message_once)
{
    add_stored("a", "alice", "c1", 1, "0:1");
    add_update(10, CHAT_EV_REACT, "bob", STORED_ID, "x", true, "r1");
    add_verdict(0, 4, STORED_ID, "remove", "profanity", NULL);
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 2);
    expect_event(0, CHAT_EV_UPDATE, "react", 1);
    chat_event_t u = produced(1);
    ck_assert_int_eq(u.type, CHAT_EV_UPDATE);
    ck_assert_str_eq(u.op, "moderate");
    ck_assert_int_eq(u.useq, 2);
    ck_assert_int_eq(u.seq, 1);
    ck_assert_str_eq(u.id, STORED_ID);
    ck_assert(u.has_removed && u.removed);
    ck_assert_str_eq(u.reason, "profanity");
    ck_assert_ptr_null(u.text);
    ck_assert_ptr_null(u.user);
    ck_assert_ptr_null(u.origin_gw);
    ck_assert_ptr_null(u.reactions);
    ck_assert_str_eq(bus.keys[1], "acme/a");
    chat_event_clear(&u);
    const message_doc_t *d = stored_doc("a", 1);
    ck_assert(d->removed);
    ck_assert_ptr_null(d->text);
    ck_assert_int_eq(d->useq, 2);
    ck_assert_str_eq(d->uop, "moderate");
    ck_assert_uint_eq(upd.n, 2);
    ck_assert_str_eq(upd.recs[1].user, "moderation");
    ck_assert_str_eq(upd.recs[1].req, "mod:" STORED_ID);
    ck_assert_str_eq(upd.recs[1].src, "mod:0:4");
    ck_assert(upd.recs[1].removed);
    ck_assert_str_eq(upd.recs[1].reason, "profanity");
    /* The recent history holds the removed message: no text, removed, the reason. */
    ck_assert_uint_eq(recent.n, 1);
    ck_assert_ptr_null(strstr(recent.frame[0], "\"text\""));
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"removed\":true"));
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"reason\":\"profanity\""));
    ck_assert_uint_eq(bus.ncommitted, 2);
    ck_assert_str_eq(bus.committed[1].topic, "chat.moderation");
    ck_assert_uint_eq(counter("chat_message_moderation_removals_total", NULL), 1);
    ck_assert_uint_eq(counter("chat_message_verdicts_total", "action=\"remove\""), 1);
    ck_assert_uint_eq(histogram_count("chat_message_moderation_seconds"), 1);

    /* The same record again (a crash before the commit): the same change, published again. */
    bus_clear();
    records_clear();
    recent_clear();
    add_verdict(0, 4, STORED_ID, "remove", "profanity", NULL);
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 1);
    u = produced(0);
    ck_assert_str_eq(u.op, "moderate");
    ck_assert_int_eq(u.useq, 2);
    ck_assert_str_eq(u.reason, "profanity");
    chat_event_clear(&u);
    ck_assert_uint_eq(upd.n, 2);

    /* Other verdicts about it (a rescan, a review): nothing published, nothing recorded. */
    bus_clear();
    records_clear();
    add_verdict(0, 5, STORED_ID, "remove", "rescan", NULL);
    add_verdict(0, 6, STORED_ID, "remove", "moderator", NULL);
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_uint_eq(upd.n, 2);
    ck_assert_uint_eq(bus.ncommitted, 2);
    ck_assert_uint_eq(counter("chat_message_moderation_removals_total", NULL), 1);
    ck_assert_uint_eq(histogram_count("chat_message_moderation_seconds"), 1);

    /* The author's edit and anyone's react are refused; the author's delete is a no-op. */
    bus_clear();
    records_clear();
    add_update(11, CHAT_EV_EDIT, "alice", STORED_ID, "clean now", false, "e1");
    add_update(12, CHAT_EV_REACT, "bob", STORED_ID, "y", true, "r2");
    add_update(13, CHAT_EV_DELETE, "alice", STORED_ID, NULL, false, "d1");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 3);
    expect_event(0, CHAT_EV_REJECT, "not_found", 0);
    expect_reject(0, "not_found", "the message was removed");
    expect_reject(1, "not_found", "the message was removed");
    expect_event(2, CHAT_EV_ACK, "delete", 2);
    ck_assert_uint_eq(upd.n, 2);
    ck_assert_ptr_null(stored_doc("a", 1)->text);
}
END_TEST

/* Verdicts that change nothing are committed and publish nothing: a flag, an unknown message,
 * a deleted message; invalid records are counted under chat.moderation; a verdict of a
 * partition not owned is neither handled nor committed. */
START_TEST(test_verdicts_that_change_nothing)
{
    add_stored("a", "alice", "c1", 1, "0:1");
    add_stored("a", "alice", "c2", 2, "0:2");
    add_update(10, CHAT_EV_DELETE, "alice", "eeeeeeeeeeeeeeee00000002", NULL, false, "d1");
    add_verdict(0, 1, STORED_ID, "flag", "maybe", NULL);
    add_verdict(0, 2, "eeeeeeeeeeeeeeee000000ff", "remove", "unknown", NULL);
    add_verdict(0, 3, "eeeeeeeeeeeeeeee00000002", "remove", "deleted already", NULL);
    add_verdict(0, 4, NULL, NULL, NULL, "not json");
    add_verdict(0, 5, NULL, NULL, NULL,
                "{\"v\":1,\"type\":\"read\",\"tenant\":\"acme\",\"room\":\"a\",\"user\":\"u\","
                "\"seq\":1,\"ts\":1}");
    add_verdict(2, 6, STORED_ID, "remove", "not ours", NULL);
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 1); /* the delete's update */
    chat_event_t del = produced(0);
    ck_assert_str_eq(del.op, "delete");
    ck_assert_int_eq(del.useq, 1);
    chat_event_clear(&del);
    ck_assert_uint_eq(upd.n, 1);
    ck_assert(!stored_doc("a", 1)->removed);
    ck_assert_str_eq(stored_doc("a", 1)->text, "old");
    ck_assert_uint_eq(bus.ncommitted, 6); /* all but the foreign one */
    for (size_t i = 0; i < bus.ncommitted; i++)
        ck_assert_int_ne(bus.committed[i].partition, 2);
    ck_assert_uint_eq(counter("chat_message_invalid_records_total", "topic=\"chat.moderation\""),
                      2);
    ck_assert_uint_eq(counter("chat_message_invalid_records_total", "topic=\"chat.inbound\""), 0);
    ck_assert_uint_eq(counter("chat_message_verdicts_total", "action=\"flag\""), 1);
    ck_assert_uint_eq(counter("chat_message_verdicts_total", "action=\"remove\""), 2);
    ck_assert_uint_eq(counter("chat_message_moderation_removals_total", NULL), 0);
}
END_TEST

/* Verdicts and users' changes of one room take the room's useqs in batch order, after a send
 * of the same batch is stored; a verdict about the batch's own new message finds it. */
START_TEST(test_verdicts_in_room_order)
{
    add_stored("a", "alice", "c1", 1, "0:1");
    add_stored("a", "bob", "c2", 2, "0:2");
    add_update(10, CHAT_EV_EDIT, "alice", STORED_ID, "edited", false, "e1");
    add_verdict(0, 1, "eeeeeeeeeeeeeeee00000002", "remove", "spam", NULL);
    add_verdict(0, 2, STORED_ID, "remove", "after the edit", NULL);
    add_update(11, CHAT_EV_REACT, "bob", STORED_ID, "x", true, "r1");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 4);
    expect_event(0, CHAT_EV_UPDATE, "edit", 1);
    chat_event_t u = produced(1);
    ck_assert_str_eq(u.op, "moderate");
    ck_assert_int_eq(u.useq, 2);
    ck_assert_int_eq(u.seq, 2);
    chat_event_clear(&u);
    u = produced(2);
    ck_assert_str_eq(u.op, "moderate");
    ck_assert_int_eq(u.useq, 3);
    ck_assert_str_eq(u.reason, "after the edit");
    chat_event_clear(&u);
    expect_reject(3, "not_found", "the message was removed");
    ck_assert(stored_doc("a", 1)->removed && stored_doc("a", 2)->removed);
    /* One frame per changed message in the recent history: each in its last state. */
    ck_assert_uint_eq(recent.n, 2);
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"reason\":\"after the edit\""));
    ck_assert_ptr_null(strstr(recent.frame[0], "\"edited\""));
    ck_assert_uint_eq(counter("chat_message_moderation_removals_total", NULL), 2);
}
END_TEST

/* A republished send whose message was removed since goes out removed, with the reason and
 * without text, as the recent history's frame says. */
START_TEST(test_republished_removed_message)
{
    add_send(0, 7, "a", "alice", "c1", "bad");
    ck_assert_int_eq(run(), CHAT_OK);
    chat_event_t m = produced(0);
    char id[MESSAGE_ID_LEN + 1];
    snprintf(id, sizeof id, "%s", m.id);
    chat_event_clear(&m);
    bus_clear();
    records_clear();
    add_verdict(0, 1, id, "remove", "profanity", NULL);
    ck_assert_int_eq(run(), CHAT_OK);
    bus_clear();
    records_clear();
    recent_clear();
    add_send(0, 7, "a", "alice", "c1", "bad"); /* the send replayed */
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_uint_eq(bus.n, 1);
    m = produced(0);
    ck_assert_int_eq(m.type, CHAT_EV_MSG);
    ck_assert(m.has_removed && m.removed && !m.deleted);
    ck_assert_str_eq(m.reason, "profanity");
    ck_assert_ptr_null(m.text);
    chat_event_clear(&m);
    ck_assert_uint_eq(recent.n, 1);
    ck_assert_ptr_nonnull(strstr(recent.frame[0], "\"removed\":true"));
    ck_assert_ptr_null(strstr(recent.frame[0], "\"text\""));
}
END_TEST

/* A muted user's sends are refused (forbidden, "muted") and not stored; the others' are; the
 * tenant's distinct senders are asked for in one check per batch; "system" is not asked for. */
START_TEST(test_muted_sends_refused)
{
    mt.muted[0] = "mallory";
    mt.n = 1;
    add_send(0, 1, "a", "mallory", "m1", "spam");
    add_send(0, 2, "a", "alice", "a1", "hi");
    add_send(0, 3, "a", "mallory", "m2", "more spam");
    add_event(4, (chat_event_t){.type = CHAT_EV_SEND,
                                .room = "a",
                                .user = "system",
                                .cid = "s1",
                                .text = "be nice",
                                .origin_gw = "api",
                                .origin_conn = "r1"});
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(mt.checks, 1);
    ck_assert_uint_eq(mt.asked, 2); /* mallory and alice, once each */
    ck_assert_int_ge(mt.last_now, 1700000000000);
    assert_gapless("a", 2);
    ck_assert_uint_eq(bus.n, 4);
    size_t rejects = 0;
    for (size_t i = 0; i < bus.n; i++) {
        chat_event_t ev = produced(i);
        if (ev.type == CHAT_EV_REJECT) {
            ck_assert(strcmp(ev.cid, "m1") == 0 || strcmp(ev.cid, "m2") == 0);
            ck_assert_str_eq(ev.origin_conn, "1.boot.7");
            rejects++;
            expect_reject(i, "forbidden", "muted");
        } else {
            ck_assert_int_eq(ev.type, CHAT_EV_MSG);
            ck_assert_str_ne(ev.user, "mallory");
        }
        chat_event_clear(&ev);
    }
    ck_assert_uint_eq(rejects, 2);
    ck_assert_uint_eq(counter("chat_message_muted_sends_total", NULL), 2);
    ck_assert_uint_eq(counter("chat_message_mute_checks_total", NULL), 1);
    ck_assert_uint_eq(bus.ncommitted, 4);

    /* A batch without user sends asks nothing. */
    bus_clear();
    records_clear();
    add_update(5, CHAT_EV_REACT, "mallory", "eeeeeeeeeeeeeeee000000ff", "x", true, "r1");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(mt.checks, 1);
}
END_TEST

/* A Redis failure of the check is retried (nothing stored meanwhile); one that lasts fails
 * the batch: nothing stored, published or committed. */
START_TEST(test_mute_check_failure_retried)
{
    mt.muted[0] = "mallory";
    mt.n = 1;
    mt.fail = 2;
    add_send(0, 1, "a", "mallory", "m1", "spam");
    add_send(0, 2, "a", "alice", "a1", "hi");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(mt.checks, 3);
    assert_gapless("a", 1);
    ck_assert_uint_eq(counter("chat_message_mute_retries_total", NULL), 2);
    expect_reject(0, "forbidden", "muted"); /* a room's rejects come before its messages */

    bus_clear();
    records_clear();
    message_pipeline_destroy(pipeline);
    pipeline = NULL;
    mt.fail = 1000;
    message_pipeline_conf_t conf = {
        .store = {&store, fs_highest, fs_find, fs_insert, fs_find_ids, NULL},
        .mutes = {.ctx = &mt, .check = fm_check},
        .bus = {&bus, fb_produce, fb_flush, fb_commit},
        .env = {&env, fe_wall, fe_mono, fe_sleep, fe_new_id, fe_stop},
        .sequencer = sequencer,
        .metrics = NULL,
        .max_text_chars = 4000,
        .store_retry_ms = 3000,
        .max_conflict_rounds = 3,
    };
    pipeline = message_pipeline_new(&conf);
    ck_assert_ptr_nonnull(pipeline);
    add_send(0, 3, "a", "alice", "a2", "still there?");
    ck_assert_int_eq(run(), CHAT_ERR_REDIS);
    assert_gapless("a", 1);
    ck_assert_uint_eq(bus.n, 0);
    ck_assert_int_eq(bus.commits, 0);
}
END_TEST

/* A tenant without mutes costs no check: asked whether it has any at most once per
 * MESSAGE_MUTES_HINT_MS; its first mute refuses sends once that answer is renewed. */
START_TEST(test_mutes_tenant_hint)
{
    moderation_pipeline(true);
    add_send(0, 1, "a", "mallory", "m1", "hi");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(mt.hints, 1);
    ck_assert_int_eq(mt.checks, 0);

    bus_clear();
    records_clear();
    mt.muted[0] = "mallory";
    mt.n = 1;
    env.mono += MESSAGE_MUTES_HINT_MS - 1;
    add_send(0, 2, "a", "mallory", "m2", "spam");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(mt.hints, 1);
    ck_assert_int_eq(mt.checks, 0);
    chat_event_t ev = produced(0);
    ck_assert_int_eq(ev.type, CHAT_EV_MSG);
    chat_event_clear(&ev);

    bus_clear();
    records_clear();
    env.mono += 1;
    add_send(0, 3, "a", "mallory", "m3", "more spam");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(mt.hints, 2);
    ck_assert_int_eq(mt.checks, 1);
    expect_reject(0, "forbidden", "muted");

    /* While the tenant has mutes, every batch with sends checks (the hint is not asked). */
    bus_clear();
    records_clear();
    add_send(0, 4, "a", "mallory", "m4", "again");
    ck_assert_int_eq(run(), CHAT_OK);
    ck_assert_int_eq(mt.hints, 2);
    ck_assert_int_eq(mt.checks, 2);
    expect_reject(0, "forbidden", "muted");
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("message_pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_new_messages_gapless_per_room);
    tcase_add_test(tc, test_seq_continues_after_stored);
    tcase_add_test(tc, test_tenant_stored_counted_within_bound);
    tcase_add_test(tc, test_resend_gets_original_ack);
    tcase_add_test(tc, test_resend_mid_batch_two_rooms);
    tcase_add_test(tc, test_many_resends_one_batch);
    tcase_add_test(tc, test_replayed_record_republished);
    tcase_add_test(tc, test_replay_after_crash_half_stored);
    tcase_add_test(tc, test_other_writer_stored_same_records);
    tcase_add_test(tc, test_repeat_within_batch_acked);
    tcase_add_test(tc, test_repeat_of_resend_acks_the_original);
    tcase_add_test(tc, test_rejects_and_invalid_records);
    tcase_add_test(tc, test_read_marks_in_room_order);
    tcase_add_test(tc, test_insert_failure_retried_with_same_plan);
    tcase_add_test(tc, test_ambiguous_insert_resolved_by_ids);
    tcase_add_test(tc, test_retry_after_network_error_stored_prefix);
    tcase_add_test(tc, test_load_failure_retried);
    tcase_add_test(tc, test_lookup_failure_retried);
    tcase_add_test(tc, test_persistent_failure_gives_up_without_commit);
    tcase_add_test(tc, test_stop_during_retry);
    tcase_add_test(tc, test_seq_collision_reloads_the_room);
    tcase_add_test(tc, test_conflict_with_same_record_republishes_it);
    tcase_add_test(tc, test_conflicts_persist_gives_up);
    tcase_add_test(tc, test_flush_failure_no_commit);
    tcase_add_test(tc, test_foreign_partition_ignored);
    tcase_add_test(tc, test_revoke_reloads);
    tcase_add_test(tc, test_recent_written_between_store_and_publish);
    tcase_add_test(tc, test_recent_republished_written_acks_not);
    tcase_add_test(tc, test_recent_republish_only_not_fresh);
    tcase_add_test(tc, test_recent_not_written_without_messages);
    tcase_add_test(tc, test_recent_failure_retried_before_publish);
    tcase_add_test(tc, test_recent_persistent_failure_no_publish);
    tcase_add_test(tc, test_recent_stop_during_retry);
    suite_add_tcase(suite, tc);
    TCase *tu = tcase_create("updates");
    tcase_add_checked_fixture(tu, updates_setup, updates_teardown);
    tcase_add_test(tu, test_updates_take_useqs_in_order);
    tcase_add_test(tu, test_update_resend_and_replay);
    suite_add_tcase(suite, tu);
    TCase *ts = tcase_create("server api");
    tcase_add_checked_fixture(ts, system_setup, updates_teardown);
    tcase_add_test(ts, test_system_sends_and_notices);
    tcase_add_test(ts, test_system_edits_and_deletes_any_message);
    tcase_add_test(ts, test_dm_blocks_one_query_per_batch);
    tcase_add_test(ts, test_dm_blocks_tenant_hint);
    suite_add_tcase(suite, ts);
    TCase *tm = tcase_create("moderation");
    tcase_add_checked_fixture(tm, moderation_setup, updates_teardown);
    tcase_add_test(tm, test_verdict_removes_message_once);
    tcase_add_test(tm, test_verdicts_that_change_nothing);
    tcase_add_test(tm, test_verdicts_in_room_order);
    tcase_add_test(tm, test_republished_removed_message);
    tcase_add_test(tm, test_muted_sends_refused);
    tcase_add_test(tm, test_mute_check_failure_retried);
    tcase_add_test(tm, test_mutes_tenant_hint);
    suite_add_tcase(suite, tm);
    return chat_test_suite_run(suite, false);
}
