/* A user's room list (see room_list.h): the index in MongoDB `user_rooms`, kept on join and
 * leave, and the `rooms` job that builds one page from it, the rooms' summaries in Redis, the
 * user's read marks and the unread counts. */
#include "services/gateway/room_list.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "services/gateway/frames.h"
#include "services/gateway/registrations.h"
#include "services/gateway/request.h"
#include "common/room_list_page.h"
#include "services/gateway/store_reads.h"
#include "services/gateway/unread.h"

chat_err_t gw_room_list_open(chat_store_t *st)
{
    static const chat_store_index_t user_room = {
        GW_USER_ROOMS_COLLECTION, "user_room", true, {"tenant", "user", "room", NULL}};
    return chat_store_ensure_indexes(st, &user_room, 1);
}

static const char *room_kind(const char *room)
{
    return chat_room_is_dm(room) ? "dm" : "public";
}

/* ---- the index: join and leave ---- */

/* Inserts (tenant, user, room); an entry already there (the unique index says so) is kept
 * as it is, with its first joined time. An insert, not an upsert: MongoDB answers both from
 * the index, but FerretDB's SQLite backend scans the collection for an upsert's filter, and
 * this runs on every first join of a user to a room. */
static chat_err_t index_insert(mongoc_collection_t *col, const char *tenant, const char *user,
                               const char *room, int64_t now)
{
    bson_t *doc =
        BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user), "room", BCON_UTF8(room),
                 "kind", BCON_UTF8(room_kind(room)), "joined", BCON_INT64(now));
    bson_error_t error;
    bool ok = mongoc_collection_insert_one(col, doc, NULL, NULL, &error);
    chat_err_t err = ok ? CHAT_OK : chat_store_err(&error);
    if (err == CHAT_ERR_DUPLICATE) /* listed already (an earlier join, or the dm's other member) */
        err = CHAT_OK;
    if (err != CHAT_OK)
        chat_log_warn("room list entry not written", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("room", room), CHAT_F_STR("user", user),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    bson_destroy(doc);
    return err;
}

/* SADD/SREM of room in user's set of known rooms; the integer reply in *added (may be NULL). */
static chat_err_t known_set(chat_redis_t *redis, const char *cmd, const char *tenant,
                            const char *user, const char *room, long long *added)
{
    char key[CHAT_USER_ROOMS_KEY_MAX];
    if (chat_user_rooms_key(tenant, user, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command(redis, &err, "%s %s %s", cmd, key, room);
    if (added != NULL)
        *added = err == CHAT_OK && reply != NULL && reply->type == REDIS_REPLY_INTEGER
                     ? reply->integer
                     : 0;
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}

void gw_room_list_note_join(gw_gateway_t *gw, chat_redis_t *redis, const char *tenant,
                            const char *room, const char *user)
{
    long long added = 0;
    chat_err_t err = known_set(redis, "SADD", tenant, user, room, &added);
    if (err != CHAT_OK || added == 0)
        return; /* known (or Redis down: the next join tries again) */
    chat_store_t *st = gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *col = chat_store_collection(st, client, GW_USER_ROOMS_COLLECTION);
    int64_t now = chat_clock_wall_ms();
    err = index_insert(col, tenant, user, room, now);
    /* A dm room is listed for both its members as soon as one of them opens it. */
    if (err == CHAT_OK && chat_room_is_dm(room) && chat_room_dm_valid(room)) {
        const char *a = room + 3, *colon = strchr(a, ':');
        if (colon != NULL) {
            char other[CHAT_USER_MAX + 1];
            bool first = (size_t)(colon - a) == strlen(user) && strncmp(a, user, strlen(user)) == 0;
            snprintf(other, sizeof other, "%.*s", first ? (int)strlen(colon + 1) : (int)(colon - a),
                     first ? colon + 1 : a);
            if (strcmp(other, user) != 0)
                err = index_insert(col, tenant, other, room, now);
        }
    }
    mongoc_collection_destroy(col);
    chat_store_release(st, client);
    chat_counter_inc(gw->stats.room_index_writes);
    if (err != CHAT_OK) {
        chat_counter_inc(gw->stats.room_index_errors);
        known_set(redis, "SREM", tenant, user, room, NULL); /* retried on the next join */
    }
}

typedef struct leave_job {
    gw_request_t base;
    char *user;
} leave_job_t;

static void leave_destroy(gw_task_t *t)
{
    leave_job_t *j = (leave_job_t *)t;
    free(j->user);
    gw_request_clear(&j->base);
    free(j);
}

static void leave_run(gw_task_t *t, void *wctx)
{
    leave_job_t *j = (leave_job_t *)t;
    gw_gateway_t *gw = j->base.gw;
    chat_redis_t *redis = wctx;
    if (gw_workers_stopping(gw->workers))
        return;
    chat_store_t *st = gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *col = chat_store_collection(st, client, GW_USER_ROOMS_COLLECTION);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(j->base.tenant), "user", BCON_UTF8(j->user),
                              "room", BCON_UTF8(j->base.room), "kind", BCON_UTF8("public"));
    bson_error_t error;
    if (!mongoc_collection_delete_one(col, filter, NULL, NULL, &error)) {
        chat_counter_inc(gw->stats.room_index_errors);
        chat_log_warn("room list entry not removed", CHAT_F_STR("tenant", j->base.tenant),
                      CHAT_F_STR("room", j->base.room), CHAT_F_INT("code", error.code),
                      CHAT_F_STR("error", error.message));
    } else {
        known_set(redis, "SREM", j->base.tenant, j->user, j->base.room, NULL);
    }
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    chat_store_release(st, client);
}

void gw_room_list_note_leave(gw_gateway_t *gw, const char *tenant, const char *room,
                             const char *user)
{
    if (chat_room_is_dm(room))
        return;
    leave_job_t *j = gw_request_new(sizeof *j, gw, "", leave_run, NULL, leave_destroy);
    if (j == NULL)
        return;
    j->user = strdup(user);
    if (j->user == NULL || !gw_request_copy_room(&j->base, tenant, room, NULL)) {
        leave_destroy(&j->base.task);
        return;
    }
    gw_workers_submit(gw->workers, &j->base.task, gw_registrations_shard(tenant, room));
}

/* ---- the rooms job ---- */

typedef struct room_item {
    char *room;
    char *kind;
    char *name;
    int64_t joined;
    int64_t seq, ts, useq, read, unread;
    char *last;   /* msg frame JSON, or NULL */
    bool summary; /* the summary hash exists */
} room_item_t;

typedef struct rooms_job {
    gw_request_t base;
    char *user;
    char *cursor;
    int64_t limit;
    int64_t started_us;
    room_item_t *items;
    size_t n;
    /* result */
    gw_buf_t *frame;
    gw_code_t code;
    const char *message;
} rooms_job_t;

static void rooms_destroy(gw_task_t *t)
{
    rooms_job_t *j = (rooms_job_t *)t;
    for (size_t i = 0; i < j->n; i++) {
        free(j->items[i].room);
        free(j->items[i].kind);
        free(j->items[i].name);
        free(j->items[i].last);
    }
    free(j->items);
    gw_buf_unref(j->frame);
    free(j->user);
    free(j->cursor);
    gw_request_clear(&j->base);
    free(j);
}

static const char *doc_str(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)
               ? bson_iter_utf8(&it, NULL)
               : NULL;
}

static int64_t doc_int(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) &&
                   (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it))
               ? bson_iter_as_int64(&it)
               : 0;
}

/* The user's entries of user_rooms into j->items. */
static chat_err_t rooms_read_index(rooms_job_t *j, chat_store_t *st, mongoc_client_t *client)
{
    mongoc_collection_t *col = chat_store_collection(st, client, GW_USER_ROOMS_COLLECTION);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(j->base.tenant), "user", BCON_UTF8(j->user));
    bson_t *opts =
        BCON_NEW("limit", BCON_INT64(GW_ROOM_LIST_MAX), "sort", "{", "joined", BCON_INT32(-1), "}");
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    size_t cap = 0;
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc)) {
        const char *room = doc_str(doc, "room"), *kind = doc_str(doc, "kind");
        if (room == NULL || !chat_name_room_valid(room))
            continue;
        if (kind == NULL || (strcmp(kind, "public") != 0 && strcmp(kind, "private") != 0 &&
                             strcmp(kind, "dm") != 0))
            kind = room_kind(room);
        if (j->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            room_item_t *items = realloc(j->items, ncap * sizeof *items);
            if (items == NULL) {
                err = CHAT_ERR_NOMEM;
                break;
            }
            j->items = items;
            cap = ncap;
        }
        room_item_t *it = &j->items[j->n];
        const char *name = doc_str(doc, "name");
        *it = (room_item_t){.room = strdup(room),
                            .kind = strdup(kind),
                            .name = name != NULL && *name != '\0' ? strdup(name) : NULL,
                            .joined = doc_int(doc, "joined")};
        j->n++;
        if (it->room == NULL || it->kind == NULL || (name != NULL && *name && it->name == NULL))
            err = CHAT_ERR_NOMEM;
    }
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cursor, &error)) {
        chat_log_warn("room list not read", CHAT_F_STR("tenant", j->base.tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    return err;
}

static int64_t reply_int(const redisReply *r)
{
    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 20)
        return 0;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(r->str, &end, 10);
    return errno == 0 && end == r->str + r->len && v > 0 ? v : 0;
}

/* Every room's summary, one HMGET each, all in one round trip. */
static chat_err_t rooms_read_summaries(rooms_job_t *j, chat_redis_t *redis)
{
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    for (; queued < j->n; queued++) {
        char key[CHAT_ROOM_SUMMARY_KEY_MAX];
        if (chat_room_summary_key(j->base.tenant, j->items[queued].room, key, sizeof key) < 0) {
            err = CHAT_ERR_INVALID;
            break;
        }
        err = chat_redis_append(redis, "HMGET %s seq ts useq last", key);
        if (err != CHAT_OK)
            break;
    }
    for (size_t i = 0; i < queued; i++) {
        redisReply *reply = NULL;
        chat_err_t rerr = chat_redis_reply(redis, &reply);
        if (rerr != CHAT_OK && err == CHAT_OK)
            err = rerr;
        if (rerr == CHAT_OK && reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
            reply->elements == 4) {
            room_item_t *it = &j->items[i];
            it->seq = reply_int(reply->element[0]);
            it->ts = reply_int(reply->element[1]);
            it->useq = reply_int(reply->element[2]);
            it->summary = it->seq > 0;
            const redisReply *last = reply->element[3];
            if (last->type == REDIS_REPLY_STRING && last->len > 0) {
                it->last = strndup(last->str, last->len);
                if (it->last == NULL && err == CHAT_OK)
                    err = CHAT_ERR_NOMEM;
            }
        }
        if (reply != NULL)
            freeReplyObject(reply);
    }
    return err;
}

/* A page room without a summary (none written since the room's last message: Redis lost it,
 * or the room predates summaries): its newest message from MongoDB. */
static chat_err_t rooms_fill_from_store(rooms_job_t *j, room_item_t *it, chat_store_t *st,
                                        mongoc_client_t *client)
{
    gw_outq_entry_t *newest = NULL;
    size_t n = 0;
    chat_err_t err = gw_reads_replay(st, client, j->base.tenant, it->room, 0, 1, &newest, &n);
    if (err == CHAT_OK && n > 0) {
        it->seq = newest[0].seq;
        it->last = strndup((const char *)gw_buf_payload(newest[0].buf), newest[0].buf->len);
        if (it->last == NULL)
            err = CHAT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        gw_buf_unref(newest[i].buf);
    free(newest);
    return err;
}

/* The user's read marks of the page's rooms (one query). */
static chat_err_t rooms_read_marks(rooms_job_t *j, room_item_t **page, size_t n, chat_store_t *st,
                                   mongoc_client_t *client)
{
    if (n == 0)
        return CHAT_OK;
    mongoc_collection_t *col = chat_store_collection(st, client, GW_READS_COLLECTION);
    bson_t filter = BSON_INITIALIZER, in, arr;
    BSON_APPEND_UTF8(&filter, "tenant", j->base.tenant);
    BSON_APPEND_UTF8(&filter, "user", j->user);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "room", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    for (size_t i = 0; i < n; i++) {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        BSON_APPEND_UTF8(&arr, idx, page[i]->room);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, &filter, NULL, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cursor, &doc)) {
        const char *room = doc_str(doc, "room");
        for (size_t i = 0; room != NULL && i < n; i++)
            if (strcmp(page[i]->room, room) == 0)
                page[i]->read = doc_int(doc, "seq");
    }
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cursor, &error)) {
        chat_log_warn("read marks not read", CHAT_F_STR("tenant", j->base.tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    mongoc_collection_destroy(col);
    return err;
}

/* The rooms frame of the page. */
static gw_buf_t *rooms_frame(const rooms_job_t *j, room_item_t **page, size_t n, const char *next)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = NULL;
    bool ok = o != NULL && cJSON_AddStringToObject(o, "type", "rooms") != NULL &&
              cJSON_AddStringToObject(o, "rid", j->base.rid) != NULL &&
              (arr = cJSON_AddArrayToObject(o, "rooms")) != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const room_item_t *it = page[i];
        cJSON *e = cJSON_CreateObject();
        ok = e != NULL && cJSON_AddItemToArray(arr, e) &&
             cJSON_AddStringToObject(e, "room", it->room) != NULL &&
             cJSON_AddStringToObject(e, "kind", it->kind) != NULL &&
             (it->name == NULL || cJSON_AddStringToObject(e, "name", it->name) != NULL) &&
             chat_json_add_int(e, "seq", it->seq) && chat_json_add_int(e, "useq", it->useq) &&
             chat_json_add_int(e, "read", it->read) && chat_json_add_int(e, "unread", it->unread);
        if (ok && it->last != NULL) {
            cJSON *raw = cJSON_CreateRaw(it->last); /* the cached bytes, as they are */
            ok = raw != NULL && cJSON_AddItemToObject(e, "last", raw);
        }
    }
    ok = ok && (next == NULL || cJSON_AddStringToObject(o, "next", next) != NULL);
    gw_buf_t *b = ok ? gw_frame_from_json(o) : NULL;
    cJSON_Delete(o);
    return b;
}

static chat_err_t rooms_build(rooms_job_t *j, chat_redis_t *redis)
{
    gw_gateway_t *gw = j->base.gw;
    chat_store_t *st = gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    chat_room_rank_t *ranks = NULL;
    room_item_t **page = NULL;
    chat_err_t err = rooms_read_index(j, st, client);
    if (err == CHAT_OK)
        err = rooms_read_summaries(j, redis);
    if (err == CHAT_OK) {
        ranks = calloc(j->n > 0 ? j->n : 1, sizeof *ranks);
        page = calloc(j->limit > 0 ? (size_t)j->limit : 1, sizeof *page);
        err = ranks != NULL && page != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    }
    size_t first = 0, count = 0;
    bool more = false;
    if (err == CHAT_OK) {
        for (size_t i = 0; i < j->n; i++)
            ranks[i] = (chat_room_rank_t){.room = j->items[i].room,
                                          .activity = j->items[i].summary ? j->items[i].ts
                                                                          : j->items[i].joined};
        chat_room_page_sort(ranks, j->n);
        if (!chat_room_page_select(ranks, j->n, j->cursor, (size_t)j->limit, &first, &count,
                                   &more)) {
            j->code = GW_E_BAD_REQUEST;
            j->message = "cursor is not valid";
            err = CHAT_ERR_INVALID;
        }
    }
    for (size_t i = 0; err == CHAT_OK && i < count; i++) {
        /* ranks point at the items' rooms: find each page room's item again */
        for (size_t k = 0; k < j->n; k++)
            if (j->items[k].room == ranks[first + i].room)
                page[i] = &j->items[k];
        if (!page[i]->summary)
            err = rooms_fill_from_store(j, page[i], st, client);
    }
    if (err == CHAT_OK)
        err = rooms_read_marks(j, page, count, st, client);
    /* The unread counts of the page: one Redis round trip for all, MongoDB for the rest. */
    gw_unread_item_t *unread =
        err == CHAT_OK ? calloc(count > 0 ? count : 1, sizeof *unread) : NULL;
    if (err == CHAT_OK && unread == NULL)
        err = CHAT_ERR_NOMEM;
    for (size_t i = 0; err == CHAT_OK && i < count; i++)
        unread[i] = (gw_unread_item_t){
            .room = page[i]->room, .read = page[i]->read, .latest = page[i]->seq};
    if (err == CHAT_OK)
        err = gw_unread_count_many(gw->cfg->recent_max > 0 ? redis : NULL, gw->cfg->recent_max, st,
                                   client, j->base.tenant, j->user, unread, count);
    for (size_t i = 0; err == CHAT_OK && i < count; i++) {
        page[i]->unread = unread[i].unread;
        if (page[i]->seq > page[i]->read)
            chat_counter_inc(gw->stats.unread_counts[unread[i].source == CHAT_RECENT_HIT]);
    }
    free(unread);
    chat_store_release(st, client);
    if (err == CHAT_OK) {
        char next[CHAT_ROOM_CURSOR_MAX];
        if (more)
            chat_room_page_cursor_make(&ranks[first + count - 1], next, sizeof next);
        j->frame = rooms_frame(j, page, count, more ? next : NULL);
        if (j->frame == NULL)
            err = CHAT_ERR_NOMEM;
    }
    free(ranks);
    free(page);
    return err;
}

static void rooms_run(gw_task_t *t, void *wctx)
{
    rooms_job_t *j = (rooms_job_t *)t;
    gw_gateway_t *gw = j->base.gw;
    if (gw_workers_stopping(gw->workers))
        return;
    chat_err_t err = rooms_build(j, wctx);
    if (err != CHAT_OK && j->code != GW_E_BAD_REQUEST)
        chat_log_warn("rooms list failed", CHAT_F_STR("tenant", j->base.tenant),
                      CHAT_F_STR("user", j->user), CHAT_F_ERR(err));
}

static void rooms_complete(gw_task_t *t, void *loop_ctx)
{
    rooms_job_t *j = (rooms_job_t *)t;
    gw_gateway_t *gw = loop_ctx;
    gw_session_t *s = gw_request_session(&j->base);
    if (s == NULL)
        return;
    gw_buf_t *frame = j->frame;
    j->frame = NULL;
    if (frame != NULL)
        chat_histogram_observe(gw->stats.rooms_seconds, chat_clock_seconds_since(j->started_us));
    gw_session_rooms_done(s, j->base.rid, frame, j->code,
                          j->message != NULL ? j->message : "rooms are unavailable; retry");
}

chat_err_t gw_room_list_submit(gw_gateway_t *gw, const gw_rooms_req_t *req)
{
    rooms_job_t *j =
        gw_request_new(sizeof *j, gw, req->conn, rooms_run, rooms_complete, rooms_destroy);
    if (j == NULL)
        return CHAT_ERR_NOMEM;
    j->code = GW_E_INTERNAL;
    j->limit = req->limit;
    j->started_us = chat_clock_mono_us();
    j->user = strdup(req->user);
    j->cursor = req->cursor != NULL ? strdup(req->cursor) : NULL;
    /* The request names no room: the tenant goes in the room's place too. */
    if (j->user == NULL || (req->cursor != NULL && j->cursor == NULL) ||
        !gw_request_copy_room(&j->base, req->tenant, req->tenant, req->rid))
        j->base.task.run = NULL; /* answered as a failed lookup */
    gw_workers_submit(gw->workers, &j->base.task, -1);
    return CHAT_OK;
}
