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
#include "common/reactions.h"

struct message_store {
    chat_store_t *store;
    char last_error[sizeof(((bson_error_t *)0)->message) + 96];
};

static const chat_store_index_t message_indexes[] = {
    {MESSAGE_COLLECTION, "room_seq", true, {"tenant", "room", "seq", NULL}},
    {MESSAGE_COLLECTION, "room_sender_cid", true, {"tenant", "room", "from", "cid", NULL}},
    /* A resume's changed messages: {tenant, room, useq: {$gt: usince}} by useq. */
    {MESSAGE_COLLECTION, "room_useq", false, {"tenant", "room", "useq", NULL}},
    /* One change per useq of a room (a second writer collides), one per request. */
    {MESSAGE_UPDATES_COLLECTION, "room_useq", true, {"tenant", "room", "useq", NULL}},
    {MESSAGE_UPDATES_COLLECTION, "room_user_req", true, {"tenant", "room", "user", "req", NULL}},
};

chat_err_t message_store_open(chat_store_t *store, message_store_t **out)
{
    *out = NULL;
    chat_err_t err = chat_store_ensure_indexes(store, message_indexes,
                                               sizeof message_indexes / sizeof message_indexes[0]);
    if (err != CHAT_OK)
        return err;
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

/* Runs find(filter, opts) on collection and calls each(doc, ud) per result. Returns the
 * cursor's error. */
static chat_err_t store_find_in(message_store_t *ms, const char *collection, const char *op,
                                const bson_t *filter, const bson_t *opts,
                                chat_err_t (*each)(const bson_t *doc, void *ud), void *ud)
{
    mongoc_client_t *client = chat_store_acquire(ms->store);
    mongoc_collection_t *col = chat_store_collection(ms->store, client, collection);
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

/* store_find_in on `messages`. */
static chat_err_t store_find(message_store_t *ms, const char *op, const bson_t *filter,
                             const bson_t *opts, chat_err_t (*each)(const bson_t *doc, void *ud),
                             void *ud)
{
    return store_find_in(ms, MESSAGE_COLLECTION, op, filter, opts, each, ud);
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
        } else if (strcmp(k, "notice") == 0) {
            d->notice = iter_utf8(&it);
        } else if (strcmp(k, "target") == 0) {
            d->target = iter_utf8(&it);
        } else if (strcmp(k, "src") == 0) {
            d->src = iter_utf8(&it);
        } else if (strcmp(k, "edited") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            d->edited = bson_iter_as_int64(&it);
        } else if (strcmp(k, "deleted") == 0 && BSON_ITER_HOLDS_BOOL(&it)) {
            d->deleted = bson_iter_bool(&it);
        } else if (strcmp(k, "removed") == 0 && BSON_ITER_HOLDS_BOOL(&it)) {
            d->removed = bson_iter_bool(&it);
        } else if (strcmp(k, "reason") == 0) {
            d->reason = iter_utf8(&it);
        } else if (strcmp(k, "useq") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
            d->useq = bson_iter_as_int64(&it);
        } else if (strcmp(k, "uop") == 0) {
            d->uop = iter_utf8(&it);
        } else if (strcmp(k, "reactions") == 0 && d->reactions == NULL) {
            d->reactions = chat_reactions_from_bson(&it);
        }
    }
    return has_id && has_seq && d->seq > 0 && d->tenant != NULL && d->room != NULL &&
           d->from != NULL && d->cid != NULL && (d->text != NULL || d->deleted || d->removed);
}

/* Appends a document read by doc_from_bson to the list ud (a message_doc_list_t, which copies
 * it) and frees what the read allocated. store_find's callback. */
static chat_err_t take_doc(const bson_t *doc, void *ud)
{
    message_doc_list_t *list = ud;
    message_doc_t d;
    chat_err_t err = CHAT_OK;
    if (!doc_from_bson(doc, &d)) {
        char *json = bson_as_relaxed_extended_json(doc, NULL);
        chat_log_warn("malformed messages document ignored", CHAT_F_STR("doc", json));
        bson_free(json);
    } else {
        err = message_doc_list_add(list, &d);
    }
    cJSON_Delete(d.reactions);
    return err;
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
                 "notice", BCON_INT32(1), "target", BCON_INT32(1), "ts", BCON_INT32(1), "cid",
                 BCON_INT32(1), "src", BCON_INT32(1), "edited", BCON_INT32(1), "deleted",
                 BCON_INT32(1), "removed", BCON_INT32(1), "reason", BCON_INT32(1), "reactions",
                 BCON_INT32(1), "useq", BCON_INT32(1), "uop", BCON_INT32(1), "}");
    chat_err_t err = store_find(ms, "find existing cids", &filter, opts, take_doc, out);
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
    const char *field; /* "seq" or "useq" */
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
        else if (strcmp(k, m->field) == 0 && BSON_ITER_HOLDS_NUMBER(&it))
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
static chat_err_t store_highest_many(message_store_t *ms, const char *collection, const char *field,
                                     const message_room_ref_t *rooms, size_t n, int64_t *highest)
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
                            "room", BCON_INT32(1), field, BCON_INT32(1), "}");
    seq_max_t m = {slots, n, highest, field};
    chat_err_t err =
        store_find_in(ms, collection, "highest per room", &filter, opts, take_room_seq, &m);
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
    return store_highest_many(ms, MESSAGE_COLLECTION, "seq", rooms, n, highest);
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
    if (d->notice != NULL)
        BSON_APPEND_UTF8(b, "notice", d->notice);
    if (d->target != NULL)
        BSON_APPEND_UTF8(b, "target", d->target);
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

/* ---- edits, deletes, reactions ---- */

/* The rooms' highest useqs from their update records (ahead of the messages' own useq if the
 * service died between a record and its message's write: the record's useq is taken). One
 * query for the n rooms, the maximum taken in code as for the seqs; `updates` holds one
 * document per change, far fewer than `messages`. */
static chat_err_t store_highest_useqs(void *ctx, const message_room_ref_t *rooms, size_t n,
                                      int64_t *highest)
{
    message_store_t *ms = ctx;
    if (n == 0)
        return CHAT_OK;
    return store_highest_many(ms, MESSAGE_UPDATES_COLLECTION, "useq", rooms, n, highest);
}

typedef struct message_find {
    const char *tenant;
    const char *room;
    message_doc_list_t *out;
} message_find_t;

static chat_err_t take_message(const bson_t *doc, void *ud)
{
    message_find_t *f = ud;
    bson_iter_t it;
    /* The query is by _id alone (the cheapest on FerretDB); the room is checked here, so that
     * an id of another room or tenant is not found. */
    if (!bson_iter_init_find(&it, doc, "tenant") || iter_utf8(&it) == NULL ||
        strcmp(iter_utf8(&it), f->tenant) != 0)
        return CHAT_OK;
    if (!bson_iter_init_find(&it, doc, "room") || iter_utf8(&it) == NULL ||
        strcmp(iter_utf8(&it), f->room) != 0)
        return CHAT_OK;
    return take_doc(doc, f->out);
}

static chat_err_t store_find_message(void *ctx, const char *tenant, const char *room,
                                     const char *id, message_doc_list_t *out)
{
    message_store_t *ms = ctx;
    if (!bson_oid_is_valid(id, strlen(id)))
        return CHAT_OK;
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, id);
    bson_t *filter = BCON_NEW("_id", BCON_OID(&oid));
    message_find_t f = {tenant, room, out};
    chat_err_t err = store_find(ms, "find message", filter, NULL, take_message, &f);
    bson_destroy(filter);
    return err;
}

static char *iter_dup(const bson_iter_t *it, bool *ok)
{
    const char *s = iter_utf8(it);
    if (s == NULL)
        return NULL;
    char *c = strdup(s);
    *ok = *ok && c != NULL;
    return c;
}

/* An `updates` document into rec (owned copies). False if malformed or out of memory. */
static bool update_from_bson(const bson_t *b, message_update_rec_t *rec)
{
    bson_iter_t it;
    bool ok = true;
    memset(rec, 0, sizeof *rec);
    if (!bson_iter_init(&it, b))
        return false;
    while (bson_iter_next(&it)) {
        const char *k = bson_iter_key(&it);
        char **str = strcmp(k, "tenant") == 0   ? &rec->tenant
                     : strcmp(k, "room") == 0   ? &rec->room
                     : strcmp(k, "user") == 0   ? &rec->user
                     : strcmp(k, "req") == 0    ? &rec->req
                     : strcmp(k, "src") == 0    ? &rec->src
                     : strcmp(k, "id") == 0     ? &rec->id
                     : strcmp(k, "op") == 0     ? &rec->op
                     : strcmp(k, "text") == 0   ? &rec->text
                     : strcmp(k, "reason") == 0 ? &rec->reason
                                                : NULL;
        if (str != NULL && *str == NULL)
            *str = iter_dup(&it, &ok);
        else if (strcmp(k, "seq") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            rec->seq = bson_iter_as_int64(&it);
        else if (strcmp(k, "useq") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            rec->useq = bson_iter_as_int64(&it);
        else if (strcmp(k, "ts") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            rec->ts = bson_iter_as_int64(&it);
        else if (strcmp(k, "edited") == 0 && BSON_ITER_HOLDS_NUMBER(&it))
            rec->edited = bson_iter_as_int64(&it);
        else if (strcmp(k, "deleted") == 0 && BSON_ITER_HOLDS_BOOL(&it))
            rec->deleted = bson_iter_bool(&it);
        else if (strcmp(k, "removed") == 0 && BSON_ITER_HOLDS_BOOL(&it))
            rec->removed = bson_iter_bool(&it);
        else if (strcmp(k, "reactions") == 0 && rec->reactions == NULL)
            ok = ok && (rec->reactions = chat_reactions_from_bson(&it)) != NULL;
    }
    return ok && rec->tenant != NULL && rec->room != NULL && rec->src != NULL && rec->id != NULL &&
           rec->op != NULL && rec->seq > 0 && rec->useq > 0;
}

typedef struct update_find {
    message_update_rec_t *out;
    bool *found;
} update_find_t;

static chat_err_t take_update(const bson_t *doc, void *ud)
{
    update_find_t *f = ud;
    if (*f->found)
        return CHAT_OK;
    if (!update_from_bson(doc, f->out)) {
        message_update_rec_clear(f->out);
        char *json = bson_as_relaxed_extended_json(doc, NULL);
        chat_log_warn("malformed updates document ignored", CHAT_F_STR("doc", json));
        bson_free(json);
        return CHAT_OK;
    }
    *f->found = true;
    return CHAT_OK;
}

static chat_err_t store_find_update(void *ctx, const char *tenant, const char *room,
                                    const char *user, const char *req, message_update_rec_t *out,
                                    bool *found)
{
    message_store_t *ms = ctx;
    *found = false;
    memset(out, 0, sizeof *out);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "user",
                              BCON_UTF8(user), "req", BCON_UTF8(req));
    update_find_t f = {out, found};
    chat_err_t err =
        store_find_in(ms, MESSAGE_UPDATES_COLLECTION, "find update", filter, NULL, take_update, &f);
    bson_destroy(filter);
    if (err != CHAT_OK) {
        message_update_rec_clear(out);
        *found = false;
    }
    return err;
}

/* Appends the state after a change (text, edited, deleted, removed and reason, reactions) to
 * b. */
static bool state_to_bson(bson_t *b, const message_update_rec_t *rec)
{
    bool ok = true;
    if (rec->text != NULL)
        ok = ok && BSON_APPEND_UTF8(b, "text", rec->text);
    if (rec->edited > 0)
        ok = ok && BSON_APPEND_INT64(b, "edited", rec->edited);
    if (rec->deleted)
        ok = ok && BSON_APPEND_BOOL(b, "deleted", true);
    if (rec->removed)
        ok = ok && BSON_APPEND_BOOL(b, "removed", true) &&
             BSON_APPEND_UTF8(b, "reason", rec->reason != NULL ? rec->reason : "");
    if (rec->reactions != NULL && rec->reactions->child != NULL)
        ok = ok && chat_reactions_to_bson(b, "reactions", rec->reactions);
    return ok;
}

static chat_err_t store_insert_update(void *ctx, const message_update_rec_t *rec)
{
    message_store_t *ms = ctx;
    bson_t doc = BSON_INITIALIZER;
    bool ok =
        BSON_APPEND_UTF8(&doc, "tenant", rec->tenant) &&
        BSON_APPEND_UTF8(&doc, "room", rec->room) && BSON_APPEND_INT64(&doc, "useq", rec->useq) &&
        BSON_APPEND_UTF8(&doc, "user", rec->user) && BSON_APPEND_UTF8(&doc, "req", rec->req) &&
        BSON_APPEND_UTF8(&doc, "src", rec->src) && BSON_APPEND_UTF8(&doc, "id", rec->id) &&
        BSON_APPEND_INT64(&doc, "seq", rec->seq) && BSON_APPEND_UTF8(&doc, "op", rec->op) &&
        BSON_APPEND_INT64(&doc, "ts", rec->ts) && state_to_bson(&doc, rec);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (ok) {
        mongoc_client_t *client = chat_store_acquire(ms->store);
        mongoc_collection_t *col =
            chat_store_collection(ms->store, client, MESSAGE_UPDATES_COLLECTION);
        bson_error_t error;
        err = CHAT_OK;
        if (!mongoc_collection_insert_one(col, &doc, NULL, NULL, &error)) {
            err = chat_store_err(&error);
            if (err != CHAT_ERR_DUPLICATE)
                err = store_failed(ms, "insert update", &error);
        }
        mongoc_collection_destroy(col);
        chat_store_release(ms->store, client);
    }
    bson_destroy(&doc);
    return err;
}

/* The message's document takes the state after the change: $set of what it has, $unset of
 * what it lost (text once deleted or removed, reactions once none are left). Nothing gives
 * `removed` back, so it is never unset. */
static chat_err_t store_apply_update(void *ctx, const message_update_rec_t *rec)
{
    message_store_t *ms = ctx;
    if (!bson_oid_is_valid(rec->id, strlen(rec->id)))
        return CHAT_ERR_INVALID;
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, rec->id);
    bson_t *filter = BCON_NEW("_id", BCON_OID(&oid));
    bson_t update = BSON_INITIALIZER, set, unset;
    bool has_reactions = rec->reactions != NULL && rec->reactions->child != NULL;
    bool ok = BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set) &&
              BSON_APPEND_INT64(&set, "useq", rec->useq) &&
              BSON_APPEND_UTF8(&set, "uop", rec->op) && state_to_bson(&set, rec) &&
              bson_append_document_end(&update, &set);
    if (ok && (rec->text == NULL || rec->edited == 0 || !has_reactions)) {
        ok = BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset) &&
             (rec->text != NULL || BSON_APPEND_UTF8(&unset, "text", "")) &&
             (rec->edited > 0 || BSON_APPEND_UTF8(&unset, "edited", "")) &&
             (has_reactions || BSON_APPEND_UTF8(&unset, "reactions", "")) &&
             bson_append_document_end(&update, &unset);
    }
    chat_err_t err = CHAT_ERR_NOMEM;
    if (ok) {
        mongoc_client_t *client = chat_store_acquire(ms->store);
        mongoc_collection_t *col = chat_store_collection(ms->store, client, MESSAGE_COLLECTION);
        bson_error_t error;
        err = CHAT_OK;
        if (!mongoc_collection_update_one(col, filter, &update, NULL, NULL, &error))
            err = store_failed(ms, "apply update", &error);
        mongoc_collection_destroy(col);
        chat_store_release(ms->store, client);
    }
    bson_destroy(&update);
    bson_destroy(filter);
    return err;
}

/* ---- direct rooms' blocks ---- */

#define BLOCKS_COLLECTION "blocks" /* written by the server API (docs/server-api.md) */

typedef struct blocks_match {
    const message_block_pair_t *pairs;
    size_t n;
    bool *blocked;
} blocks_match_t;

/* Marks every pair that the blocks document doc joins, either way. */
static chat_err_t take_block(const bson_t *doc, void *ud)
{
    blocks_match_t *m = ud;
    bson_iter_t it;
    const char *tenant = NULL, *user = NULL, *target = NULL;
    if (bson_iter_init(&it, doc)) {
        while (bson_iter_next(&it)) {
            const char *k = bson_iter_key(&it);
            if (strcmp(k, "tenant") == 0)
                tenant = iter_utf8(&it);
            else if (strcmp(k, "user") == 0)
                user = iter_utf8(&it);
            else if (strcmp(k, "target") == 0)
                target = iter_utf8(&it);
        }
    }
    if (tenant == NULL || user == NULL || target == NULL)
        return CHAT_OK;
    for (size_t i = 0; i < m->n; i++) {
        const message_block_pair_t *pr = &m->pairs[i];
        if (strcmp(pr->tenant, tenant) == 0 &&
            ((strcmp(pr->user, user) == 0 && strcmp(pr->other, target) == 0) ||
             (strcmp(pr->other, user) == 0 && strcmp(pr->user, target) == 0)))
            m->blocked[i] = true;
    }
    return CHAT_OK;
}

/* One flat query over every user involved (a superset), matched exactly in take_block. */
static chat_err_t store_find_blocks(void *ctx, const message_block_pair_t *pairs, size_t n,
                                    bool *blocked)
{
    for (size_t i = 0; i < n; i++)
        blocked[i] = false;
    if (n == 0)
        return CHAT_OK;
    message_store_t *ms = ctx;
    const char **vals = calloc(2 * n, sizeof *vals);
    if (vals == NULL)
        return CHAT_ERR_NOMEM;
    bson_t filter = BSON_INITIALIZER;
    for (size_t i = 0; i < n; i++)
        vals[i] = pairs[i].tenant;
    append_match(&filter, "tenant", vals, n);
    for (size_t f = 0; f < 2; f++) {
        for (size_t i = 0; i < n; i++) {
            vals[2 * i] = pairs[i].user;
            vals[2 * i + 1] = pairs[i].other;
        }
        append_match(&filter, f == 0 ? "user" : "target", vals, 2 * n);
    }
    free(vals);
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(0), "tenant", BCON_INT32(1),
                            "user", BCON_INT32(1), "target", BCON_INT32(1), "}");
    blocks_match_t m = {pairs, n, blocked};
    chat_err_t err =
        store_find_in(ms, BLOCKS_COLLECTION, "find blocks", &filter, opts, take_block, &m);
    bson_destroy(&filter);
    bson_destroy(opts);
    return err;
}

/* Counts the tenant's block (at most one is read). */
static chat_err_t take_any(const bson_t *doc, void *ud)
{
    (void)doc;
    *(bool *)ud = true;
    return CHAT_OK;
}

static chat_err_t store_tenant_has_blocks(void *ctx, const char *tenant, bool *has)
{
    message_store_t *ms = ctx;
    *has = false;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1), "}");
    chat_err_t err = store_find_in(ms, BLOCKS_COLLECTION, "find a block of the tenant", filter,
                                   opts, take_any, has);
    bson_destroy(filter);
    bson_destroy(opts);
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
        .highest_useqs = store_highest_useqs,
        .find_message = store_find_message,
        .find_update = store_find_update,
        .insert_update = store_insert_update,
        .apply_update = store_apply_update,
        .find_blocks = store_find_blocks,
        .tenant_has_blocks = store_tenant_has_blocks,
        .last_error = store_last_error,
    };
}
