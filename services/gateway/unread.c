/* Read marks and unread counts (see unread.h). The recent history holds each message's msg
 * frame; the fields `deleted` and `removed` may be set on it (and on the stored document) by
 * edits, deletes and moderation: such a message is not counted. */
#include "services/gateway/unread.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"

bool gw_unread_frame_counts(const char *frame, size_t len, const char *user)
{
    cJSON *root = cJSON_ParseWithLength(frame, len);
    if (root == NULL)
        return true;
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(root, "from");
    bool counts = !(cJSON_IsString(from) && strcmp(from->valuestring, user) == 0) &&
                  !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "deleted")) &&
                  !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "removed"));
    cJSON_Delete(root);
    return counts;
}

gw_recent_result_t gw_unread_decide(const gw_recent_view_t *v, int64_t read, int64_t latest,
                                    const char *user, int64_t *unread)
{
    gw_recent_result_t trust = gw_recent_view_trust(v);
    if (trust != GW_RECENT_HIT)
        return trust;
    int64_t want = latest - read;
    if (want < 0)
        want = 0;
    if (v->top < latest || v->n < (size_t)want)
        return GW_RECENT_GAP;
    for (int64_t i = 0; i < want; i++)
        if (v->entries[i].seq != latest - i)
            return GW_RECENT_GAP;
    int64_t n = 0;
    for (int64_t i = 0; i < want; i++)
        n += gw_unread_frame_counts(v->entries[i].frame, v->entries[i].len, user);
    *unread = n;
    return GW_RECENT_HIT;
}

chat_err_t gw_unread_read_mark(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                               const char *room, const char *user, int64_t *read)
{
    *read = 0;
    mongoc_collection_t *col = chat_store_collection(st, client, GW_READS_COLLECTION);
    bson_t *filter =
        BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "user", BCON_UTF8(user));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1), "projection", "{", "seq", BCON_INT32(1), "}");
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    bson_iter_t it;
    if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, "seq") &&
        (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it)))
        *read = bson_iter_as_int64(&it);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cursor, &error)) {
        chat_log_warn("read mark not read", CHAT_F_STR("tenant", tenant), CHAT_F_STR("room", room),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    return err;
}

/* The count on MongoDB: others' messages in (read, latest], not deleted, not removed. */
static chat_err_t count_store(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                              const char *room, const char *user, int64_t read, int64_t latest,
                              int64_t *unread)
{
    mongoc_collection_t *col = chat_store_collection(st, client, "messages");
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "seq", "{",
                              "$gt", BCON_INT64(read), "$lte", BCON_INT64(latest), "}", "from", "{",
                              "$ne", BCON_UTF8(user), "}", "deleted", "{", "$ne", BCON_BOOL(true),
                              "}", "removed", "{", "$ne", BCON_BOOL(true), "}");
    bson_error_t error;
    int64_t n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &error);
    chat_err_t err = CHAT_OK;
    if (n < 0) {
        chat_log_warn("unread count failed", CHAT_F_STR("tenant", tenant), CHAT_F_STR("room", room),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    } else {
        *unread = n;
    }
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    return err;
}

chat_err_t gw_unread_count(chat_redis_t *redis, int64_t recent_max, chat_store_t *st,
                           mongoc_client_t *client, const char *tenant, const char *room,
                           const char *user, int64_t read, int64_t latest, int64_t *unread,
                           gw_recent_result_t *source)
{
    gw_recent_result_t res = GW_RECENT_MISS;
    *unread = 0;
    if (source != NULL)
        *source = GW_RECENT_HIT;
    if (latest <= read)
        return CHAT_OK;
    if (redis != NULL && latest - read <= recent_max) {
        gw_recent_snapshot_t *snap = NULL;
        if (gw_recent_snapshot_read(redis, tenant, room, read, latest + 1, (size_t)(latest - read),
                                    &snap) == CHAT_OK)
            res = gw_unread_decide(gw_recent_snapshot_view(snap), read, latest, user, unread);
        else
            res = GW_RECENT_ERROR;
        gw_recent_snapshot_free(snap);
    }
    if (source != NULL)
        *source = res;
    if (res == GW_RECENT_HIT)
        return CHAT_OK;
    return count_store(st, client, tenant, room, user, read, latest, unread);
}
