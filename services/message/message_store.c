/* MongoDB side of the message service. Query shapes are chosen for both MongoDB and FerretDB
 * 1.24 (SQLite), which evaluates every filter but a lone _id in Go after reading the whole
 * table: every read here is a scan there, so reads are kept off the hot path (a batch of known
 * rooms only inserts), and each read the service does need is one flat query for the whole
 * batch ({field: {$in: distinct values}}, matched exactly in code) rather than one query per
 * room or an $or of rooms, which FerretDB evaluates branch by branch for every document. */
#include "services/message/message_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct message_store {
    chat_store_t *store;
    char last_error[sizeof(((bson_error_t *)0)->message) + 96];
};

/* Index definitions: name, unique, fields (NULL-terminated). */
typedef struct index_spec {
    const char *name;
    const char *fields[5];
} index_spec_t;

static const index_spec_t message_indexes[] = {
    {"room_seq", {"tenant", "room", "seq", NULL}},
    {"room_sender_cid", {"tenant", "room", "from", "cid", NULL}},
};

chat_err_t message_store_open(chat_store_t *store, message_store_t **out)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof message_indexes / sizeof message_indexes[0]; i++) {
        bson_t keys = BSON_INITIALIZER;
        for (const char *const *f = message_indexes[i].fields; *f != NULL; f++)
            BSON_APPEND_INT32(&keys, *f, 1);
        chat_err_t err = chat_store_ensure_index(store, MESSAGE_COLLECTION, &keys,
                                                 message_indexes[i].name, true);
        bson_destroy(&keys);
        if (err != CHAT_OK)
            return err;
    }
    message_store_t *ms = calloc(1, sizeof *ms);
    if (ms == NULL)
        return CHAT_ERR_NOMEM;
    ms->store = store;
    *out = ms;
    return CHAT_OK;
}

void message_store_close(message_store_t *ms)
{
    free(ms);
}

/* Remembers and logs a failed operation; returns its mapped error. */
static chat_err_t store_failed(message_store_t *ms, const char *op, const bson_error_t *error)
{
    snprintf(ms->last_error, sizeof ms->last_error, "%s: %s (code %u)", op, error->message,
             error->code);
    chat_log_warn("mongo operation failed", CHAT_F_STR("op", op),
                  CHAT_F_STR("collection", MESSAGE_COLLECTION), CHAT_F_INT("code", error->code),
                  CHAT_F_STR("error", error->message));
    return chat_store_err(error);
}

/* Runs find(filter, opts) and calls each(doc, ud) per result. Returns the cursor's error. */
static chat_err_t store_find(message_store_t *ms, const char *op, const bson_t *filter,
                             const bson_t *opts, chat_err_t (*each)(const bson_t *doc, void *ud),
                             void *ud)
{
    mongoc_client_t *client = chat_store_acquire(ms->store);
    mongoc_collection_t *col = chat_store_collection(ms->store, client, MESSAGE_COLLECTION);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc))
        err = each(doc, ud);
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cursor, &error))
        err = store_failed(ms, op, &error);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(col);
    chat_store_release(ms->store, client);
    return err;
}

/* ---- existing (from, cid) pairs ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends field: value when the n strings are all equal, else field: {$in: [distinct]}.
 * vals is sorted in place. */
static void append_match(bson_t *filter, const char *field, const char **vals, size_t n)
{
    qsort(vals, n, sizeof *vals, cmp_str);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(vals[i], vals[distinct - 1]) != 0)
            vals[distinct++] = vals[i];
    if (distinct == 1) {
        BSON_APPEND_UTF8(filter, field, vals[0]);
        return;
    }
    bson_t cond, list;
    BSON_APPEND_DOCUMENT_BEGIN(filter, field, &cond);
    BSON_APPEND_ARRAY_BEGIN(&cond, "$in", &list);
    for (size_t i = 0; i < distinct; i++) {
        char idx[16];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, idx, sizeof idx);
        BSON_APPEND_UTF8(&list, key, vals[i]);
    }
    bson_append_array_end(&cond, &list);
    bson_append_document_end(filter, &cond);
}

static const char *iter_utf8(const bson_iter_t *it)
{
    return BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : NULL;
}

/* Reads a messages document; false if a field the service relies on is missing or mistyped. */
static bool doc_from_bson(const bson_t *b, message_doc_t *d)
{
    memset(d, 0, sizeof *d);
    bool has_id = false, has_seq = false;
    bson_iter_t it;
    if (!bson_iter_init(&it, b))
        return false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcmp(k, "_id") == 0 && BSON_ITER_HOLDS_OID(&it)) {
            bson_oid_to_string(bson_iter_oid(&it), d->id);
            has_id = true;
        } else if (strcmp(k, "seq") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            d->seq = bson_iter_as_int64(&it);
            has_seq = true;
        } else if (strcmp(k, "ts") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            d->ts = bson_iter_as_int64(&it);
        } else if (strcmp(k, "tenant") == 0) {
            d->tenant = iter_utf8(&it);
        } else if (strcmp(k, "room") == 0) {
            d->room = iter_utf8(&it);
        } else if (strcmp(k, "from") == 0) {
            d->from = iter_utf8(&it);
        } else if (strcmp(k, "cid") == 0) {
            d->cid = iter_utf8(&it);
        } else if (strcmp(k, "text") == 0) {
            d->text = iter_utf8(&it);
        } else if (strcmp(k, "name") == 0) {
            d->name = iter_utf8(&it);
        } else if (strcmp(k, "src") == 0) {
            d->src = iter_utf8(&it);
        }
    }
    return has_id && has_seq && d->seq > 0 && d->tenant != NULL && d->room != NULL &&
           d->from != NULL && d->cid != NULL && d->text != NULL;
}

static chat_err_t take_existing(const bson_t *doc, void *ud)
{
    message_doc_t d;
    if (!doc_from_bson(doc, &d)) {
        char *json = bson_as_relaxed_extended_json(doc, NULL);
        chat_log_warn("malformed messages document ignored", CHAT_F_STR("doc", json));
        bson_free(json);
        return CHAT_OK;
    }
    return message_doc_list_add(ud, &d);
}

static chat_err_t store_find_existing(void *ctx, const message_dedup_send_t *keys, size_t n,
                                      message_doc_list_t *out)
{
    if (n == 0)
        return CHAT_OK;
    message_store_t *ms = ctx;
    const char **vals = calloc(n, sizeof *vals);
    if (vals == NULL)
        return CHAT_ERR_NOMEM;
    bson_t filter = BSON_INITIALIZER;
    static const char *const fields[] = {"tenant", "room", "from", "cid"};
    for (size_t f = 0; f < 4; f++) {
        for (size_t i = 0; i < n; i++) {
            const message_dedup_send_t *k = &keys[i];
            vals[i] = f == 0 ? k->tenant : f == 1 ? k->room : f == 2 ? k->from : k->cid;
        }
        append_match(&filter, fields[f], vals, n);
    }
    free(vals);
    bson_t *opts =
        BCON_NEW("projection", "{", "tenant", BCON_INT32(1), "room", BCON_INT32(1), "seq",
                 BCON_INT32(1), "from", BCON_INT32(1), "name", BCON_INT32(1), "text", BCON_INT32(1),
                 "ts", BCON_INT32(1), "cid", BCON_INT32(1), "src", BCON_INT32(1), "}");
    chat_err_t err = store_find(ms, "find existing cids", &filter, opts, take_existing, out);
    bson_destroy(&filter);
    bson_destroy(opts);
    return err;
}

/* ---- highest seqs ---- */

static chat_err_t take_seq(const bson_t *doc, void *ud)
{
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "seq") && BSON_ITER_HOLDS_NUMBER(&it))
        *(int64_t *)ud = bson_iter_as_int64(&it);
    return CHAT_OK;
}

/* One room: {tenant, room} sorted by seq descending, limit 1. On MongoDB the room_seq index
 * answers it with one key; FerretDB 1.24 reads and sorts the whole collection. */
static chat_err_t store_highest_seq(message_store_t *ms, const message_room_ref_t *room,
                                    int64_t *seq)
{
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(room->tenant), "room", BCON_UTF8(room->room));
    bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                            "projection", "{", "seq", BCON_INT32(1), "_id", BCON_INT32(0), "}");
    *seq = 0;
    chat_err_t err = store_find(ms, "highest seq", filter, opts, take_seq, seq);
    bson_destroy(filter);
    bson_destroy(opts);
    return err;
}

typedef struct room_slot {
    const char *tenant;
    const char *room;
    size_t index; /* in the caller's rooms */
} room_slot_t;

static int room_slot_cmp(const void *a, const void *b)
{
    const room_slot_t *x = a, *y = b;
    int c = strcmp(x->tenant, y->tenant);
    return c != 0 ? c : strcmp(x->room, y->room);
}

typedef struct seq_max {
    const room_slot_t *slots; /* sorted */
    size_t n;
    int64_t *highest;
} seq_max_t;

/* Raises the highest seq of the document's room, if it is one of the rooms asked for. */
static chat_err_t take_room_seq(const bson_t *doc, void *ud)
{
    seq_max_t *m = ud;
    room_slot_t key = {0};
    int64_t seq = 0;
    bson_iter_t it;
    if (!bson_iter_init(&it, doc))
        return CHAT_OK;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        if (strcmp(k, "tenant") == 0)
            key.tenant = iter_utf8(&it);
        else if (strcmp(k, "room") == 0)
            key.room = iter_utf8(&it);
        else if (strcmp(k, "seq") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            seq = bson_iter_as_int64(&it);
    }
    if (key.tenant == NULL || key.room == NULL)
        return CHAT_OK;
    const room_slot_t *slot = bsearch(&key, m->slots, m->n, sizeof key, room_slot_cmp);
    if (slot != NULL && m->highest[slot->index] < seq)
        m->highest[slot->index] = seq;
    return CHAT_OK;
}

/* Several rooms in one query: {tenant: {$in}, room: {$in}} projected to (tenant, room, seq), the
 * maximum per room taken here (the $in cross product may return rooms not asked for: they are
 * ignored). FerretDB 1.24 cannot compute it server-side (its $group has neither $max nor $first,
 * and evaluates only the first accumulator of a $group), and on it the cost is one scan of the
 * collection whatever the query. On MongoDB this reads every key of those rooms in room_seq
 * (a covered query), once per room per partition assignment. */
static chat_err_t store_highest_seq_many(message_store_t *ms, const message_room_ref_t *rooms,
                                         size_t n, int64_t *highest)
{
    room_slot_t *slots = calloc(n, sizeof *slots);
    const char **vals = calloc(n, sizeof *vals);
    if (slots == NULL || vals == NULL) {
        free(slots);
        free(vals);
        return CHAT_ERR_NOMEM;
    }
    bson_t filter = BSON_INITIALIZER;
    for (size_t i = 0; i < n; i++)
        vals[i] = rooms[i].tenant;
    append_match(&filter, "tenant", vals, n);
    for (size_t i = 0; i < n; i++)
        vals[i] = rooms[i].room;
    append_match(&filter, "room", vals, n);
    for (size_t i = 0; i < n; i++) {
        slots[i] = (room_slot_t){rooms[i].tenant, rooms[i].room, i};
        highest[i] = 0;
    }
    qsort(slots, n, sizeof *slots, room_slot_cmp);
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "tenant", BCON_INT32(1),
                            "room", BCON_INT32(1), "seq", BCON_INT32(1), "}");
    seq_max_t m = {slots, n, highest};
    chat_err_t err = store_find(ms, "highest seqs", &filter, opts, take_room_seq, &m);
    bson_destroy(&filter);
    bson_destroy(opts);
    free(slots);
    free(vals);
    return err;
}

static chat_err_t store_highest_seqs(void *ctx, const message_room_ref_t *rooms, size_t n,
                                     int64_t *highest)
{
    message_store_t *ms = ctx;
    if (n == 0)
        return CHAT_OK;
    if (n == 1)
        return store_highest_seq(ms, &rooms[0], &highest[0]);
    return store_highest_seq_many(ms, rooms, n, highest);
}

/* ---- ids ---- */

typedef struct ids_found {
    const char *const *ids;
    size_t n;
    bool *found;
} ids_found_t;

static chat_err_t take_id(const bson_t *doc, void *ud)
{
    ids_found_t *f = ud;
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_OID(&it))
        return CHAT_OK;
    char hex[MESSAGE_ID_LEN + 1];
    bson_oid_to_string(bson_iter_oid(&it), hex);
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->ids[i], hex) == 0)
            f->found[i] = true;
    return CHAT_OK;
}

static chat_err_t store_find_ids(void *ctx, const char *const *ids, size_t n, bool *found)
{
    message_store_t *ms = ctx;
    bson_t filter = BSON_INITIALIZER, cond, list;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &cond);
    BSON_APPEND_ARRAY_BEGIN(&cond, "$in", &list);
    for (size_t i = 0; i < n; i++) {
        found[i] = false;
        if (!bson_oid_is_valid(ids[i], strlen(ids[i])))
            continue;
        bson_oid_t oid;
        bson_oid_init_from_string(&oid, ids[i]);
        char idx[16];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, idx, sizeof idx);
        BSON_APPEND_OID(&list, key, &oid);
    }
    bson_append_array_end(&cond, &list);
    bson_append_document_end(&filter, &cond);
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}");
    ids_found_t f = {ids, n, found};
    chat_err_t err = store_find(ms, "find ids", &filter, opts, take_id, &f);
    bson_destroy(&filter);
    bson_destroy(opts);
    return err;
}

/* ---- insert ---- */

static bson_t *doc_to_bson(const message_doc_t *d)
{
    bson_t *b = bson_new();
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, d->id);
    BSON_APPEND_OID(b, "_id", &oid);
    BSON_APPEND_UTF8(b, "tenant", d->tenant);
    BSON_APPEND_UTF8(b, "room", d->room);
    BSON_APPEND_INT64(b, "seq", d->seq);
    BSON_APPEND_UTF8(b, "from", d->from);
    if (d->name != NULL)
        BSON_APPEND_UTF8(b, "name", d->name);
    BSON_APPEND_UTF8(b, "text", d->text);
    BSON_APPEND_INT64(b, "ts", d->ts);
    BSON_APPEND_UTF8(b, "cid", d->cid);
    if (d->src != NULL)
        BSON_APPEND_UTF8(b, "src", d->src);
    return b;
}

static chat_err_t store_insert(void *ctx, const message_doc_t *docs, size_t n, chat_err_t *results)
{
    message_store_t *ms = ctx;
    bson_t **b = calloc(n > 0 ? n : 1, sizeof *b);
    if (b == NULL)
        return CHAT_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        b[i] = doc_to_bson(&docs[i]);
    /* Ordered: what is stored is a prefix of the plan, even if the service or MongoDB dies. */
    chat_err_t err = chat_store_insert_many(ms->store, MESSAGE_COLLECTION, (const bson_t *const *)b,
                                            n, true, results);
    if (err != CHAT_OK && err != CHAT_ERR_DUPLICATE)
        snprintf(ms->last_error, sizeof ms->last_error,
                 "insert_many failed: %s (the mongo log line before says why)", chat_err_str(err));
    for (size_t i = 0; i < n; i++)
        bson_destroy(b[i]);
    free(b);
    return err;
}

static const char *store_last_error(void *ctx)
{
    message_store_t *ms = ctx;
    return ms->last_error[0] != '\0' ? ms->last_error : NULL;
}

void message_store_port(message_store_t *ms, message_store_port_t *port)
{
    *port = (message_store_port_t){
        .ctx = ms,
        .highest_seqs = store_highest_seqs,
        .find_existing = store_find_existing,
        .insert = store_insert,
        .find_ids = store_find_ids,
        .last_error = store_last_error,
    };
}
