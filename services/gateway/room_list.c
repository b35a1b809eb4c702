/* A user's room list (see room_list.h): the index in MongoDB `user_rooms`, kept on join and
 * leave, and the `rooms` job that answers a page read by common/room_list.c. */
#include "services/gateway/room_list.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "services/gateway/frames.h"
#include "services/gateway/request.h"

chat_err_t gw_room_list_open(chat_store_t *st)
{
    static const chat_store_index_t user_room = {
        CHAT_USER_ROOMS_COLLECTION, "user_room", true, {"tenant", "user", "room", NULL}};
    return chat_store_ensure_indexes(st, &user_room, 1);
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
                 "kind", BCON_UTF8(chat_room_list_kind(room)), "joined", BCON_INT64(now));
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
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_USER_ROOMS_COLLECTION);
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
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_USER_ROOMS_COLLECTION);
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
    gw_workers_submit(gw->workers, &j->base.task, gw_workers_room_shard(tenant, room));
}

/* ---- the rooms job (the page itself: common/room_list.h) ---- */

typedef struct rooms_job {
    gw_request_t base;
    char *user;
    char *cursor;
    int64_t limit;
    int64_t started_us;
    /* result */
    gw_buf_t *frame;
    gw_code_t code;
    const char *message;
} rooms_job_t;

static void rooms_destroy(gw_task_t *t)
{
    rooms_job_t *j = (rooms_job_t *)t;
    gw_buf_unref(j->frame);
    free(j->user);
    free(j->cursor);
    gw_request_clear(&j->base);
    free(j);
}

/* The rooms frame of the page. */
static gw_buf_t *rooms_frame(const rooms_job_t *j, const chat_room_list_page_t *page)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = chat_room_list_json(page);
    bool ok = o != NULL && arr != NULL && cJSON_AddStringToObject(o, "type", "rooms") != NULL &&
              cJSON_AddStringToObject(o, "rid", j->base.rid) != NULL &&
              cJSON_AddItemToObject(o, "rooms", arr);
    if (!ok || o == NULL)
        cJSON_Delete(arr);
    ok = ok && (page->next[0] == '\0' || cJSON_AddStringToObject(o, "next", page->next) != NULL);
    gw_buf_t *b = ok ? gw_frame_from_json(o) : NULL;
    cJSON_Delete(o);
    return b;
}

static chat_err_t rooms_build(rooms_job_t *j, chat_redis_t *redis)
{
    gw_gateway_t *gw = j->base.gw;
    chat_store_t *st = gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    chat_room_list_page_t page;
    chat_err_t err = chat_room_list_read(st, client, redis, gw->cfg->recent_max, j->base.tenant,
                                         j->user, j->cursor, (size_t)j->limit, &page);
    chat_store_release(st, client);
    if (err == CHAT_ERR_INVALID) {
        j->code = GW_E_BAD_REQUEST;
        j->message = "cursor is not valid";
        return err;
    }
    for (size_t i = 0; err == CHAT_OK && i < page.count; i++)
        if (page.page[i]->seq > page.page[i]->read)
            chat_counter_inc(
                gw->stats.unread_counts[page.page[i]->unread_source == CHAT_RECENT_HIT]);
    if (err == CHAT_OK) {
        j->frame = rooms_frame(j, &page);
        if (j->frame == NULL)
            err = CHAT_ERR_NOMEM;
    }
    chat_room_list_page_clear(&page);
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
    gw_workers_submit(gw->readers, &j->base.task, -1);
    return CHAT_OK;
}
