/* Read marks and unread counts (see unread.h). The recent history holds each message's msg
 * frame; the fields `deleted` and `removed` may be set on it (and on the stored document) by
 * edits, deletes and moderation: such a message is not counted. */
#include "common/unread.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/log.h"

bool chat_unread_frame_counts(const char *frame, size_t len, const char *user)
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

chat_recent_result_t chat_unread_decide(const chat_recent_view_t *v, int64_t read, int64_t latest,
                                        const char *user, int64_t *unread)
{
    chat_recent_result_t trust = chat_recent_view_trust(v);
    if (trust != CHAT_RECENT_HIT)
        return trust;
    int64_t want = latest - read;
    if (want < 0)
        want = 0;
    if (v->top < latest || v->n < (size_t)want)
        return CHAT_RECENT_GAP;
    for (int64_t i = 0; i < want; i++)
        if (v->entries[i].seq != latest - i)
            return CHAT_RECENT_GAP;
    int64_t n = 0;
    for (int64_t i = 0; i < want; i++)
        n += chat_unread_frame_counts(v->entries[i].frame, v->entries[i].len, user);
    *unread = n;
    return CHAT_RECENT_HIT;
}

chat_err_t chat_unread_read_mark(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                                 const char *room, const char *user, int64_t *read)
{
    *read = 0;
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_READS_COLLECTION);
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

chat_err_t chat_unread_count_many(chat_redis_t *redis, int64_t recent_max, chat_store_t *st,
                                  mongoc_client_t *client, const char *tenant, const char *user,
                                  chat_unread_item_t *items, size_t n)
{
    chat_recent_range_t *ranges = calloc(n > 0 ? n : 1, sizeof *ranges);
    size_t *of = calloc(n > 0 ? n : 1, sizeof *of);
    chat_recent_snapshot_t **snaps = calloc(n > 0 ? n : 1, sizeof *snaps);
    if (ranges == NULL || of == NULL || snaps == NULL) {
        free(ranges);
        free(of);
        free(snaps);
        return CHAT_ERR_NOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        chat_unread_item_t *it = &items[i];
        it->unread = 0;
        it->source = it->latest > it->read ? CHAT_RECENT_MISS : CHAT_RECENT_HIT;
        if (it->latest <= it->read || redis == NULL || it->latest - it->read > recent_max)
            continue;
        ranges[k] = (chat_recent_range_t){.room = it->room,
                                          .lo = it->read,
                                          .hi = it->latest + 1,
                                          .limit = (size_t)(it->latest - it->read)};
        of[k++] = i;
    }
    if (k > 0 && chat_recent_snapshots_read(redis, tenant, ranges, k, snaps) != CHAT_OK) {
        for (size_t j = 0; j < k; j++)
            items[of[j]].source = CHAT_RECENT_ERROR;
    }
    for (size_t j = 0; j < k; j++) {
        chat_unread_item_t *it = &items[of[j]];
        if (snaps[j] != NULL)
            it->source = chat_unread_decide(chat_recent_snapshot_view(snaps[j]), it->read,
                                            it->latest, user, &it->unread);
        chat_recent_snapshot_free(snaps[j]);
    }
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        chat_unread_item_t *it = &items[i];
        if (it->source != CHAT_RECENT_HIT)
            err =
                count_store(st, client, tenant, it->room, user, it->read, it->latest, &it->unread);
    }
    free(ranges);
    free(of);
    free(snaps);
    return err;
}

chat_err_t chat_unread_count(chat_redis_t *redis, int64_t recent_max, chat_store_t *st,
                             mongoc_client_t *client, const char *tenant, const char *room,
                             const char *user, int64_t read, int64_t latest, int64_t *unread,
                             chat_recent_result_t *source)
{
    chat_unread_item_t it = {.room = room, .read = read, .latest = latest};
    chat_err_t err = chat_unread_count_many(redis, recent_max, st, client, tenant, user, &it, 1);
    *unread = it.unread;
    if (source != NULL)
        *source = it.source;
    return err;
}
