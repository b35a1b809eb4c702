/* A user's room list, one page (see room_list.h): the user's entries of `user_rooms`, the
 * rooms' summaries in Redis, the order and the page, then for the page only the newest message
 * of rooms without a summary, the read marks and the unread counts. */
#include "common/room_list.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/contract.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/stored_msg.h"
#include "common/unread.h"

const char *chat_room_list_kind(const char *room)
{
    return chat_room_is_dm(room) ? "dm" : "public";
}

/* The user's entries of user_rooms into p->entries. */
static chat_err_t read_index(chat_room_list_page_t *p, chat_store_t *st, mongoc_client_t *client,
                             const char *tenant, const char *user)
{
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_USER_ROOMS_COLLECTION);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(CHAT_ROOM_LIST_MAX), "sort", "{", "joined",
                            BCON_INT32(-1), "}");
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    size_t cap = 0;
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc)) {
        const char *room = chat_bson_str(doc, "room"), *kind = chat_bson_str(doc, "kind");
        if (room == NULL || !chat_name_room_valid(room))
            continue;
        if (kind == NULL || (strcmp(kind, "public") != 0 && strcmp(kind, "private") != 0 &&
                             strcmp(kind, "dm") != 0))
            kind = chat_room_list_kind(room);
        if (p->n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            chat_room_list_entry_t *entries = realloc(p->entries, ncap * sizeof *entries);
            if (entries == NULL) {
                err = CHAT_ERR_NOMEM;
                break;
            }
            p->entries = entries;
            cap = ncap;
        }
        chat_room_list_entry_t *it = &p->entries[p->n];
        const char *name = chat_bson_str(doc, "name");
        *it = (chat_room_list_entry_t){.room = strdup(room),
                                       .kind = strdup(kind),
                                       .name = name != NULL && *name != '\0' ? strdup(name) : NULL,
                                       .joined = chat_bson_int64_or(doc, "joined", 0)};
        p->n++;
        if (it->room == NULL || it->kind == NULL || (name != NULL && *name && it->name == NULL))
            err = CHAT_ERR_NOMEM;
    }
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cursor, &error)) {
        chat_log_warn("room list not read", CHAT_F_STR("tenant", tenant),
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
static chat_err_t read_summaries(chat_room_list_page_t *p, chat_redis_t *redis, const char *tenant)
{
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    for (; queued < p->n; queued++) {
        char key[CHAT_ROOM_SUMMARY_KEY_MAX];
        if (chat_room_summary_key(tenant, p->entries[queued].room, key, sizeof key) < 0) {
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
            chat_room_list_entry_t *it = &p->entries[i];
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
static chat_err_t fill_from_store(chat_room_list_entry_t *it, chat_store_t *st,
                                  mongoc_client_t *client, const char *tenant)
{
    mongoc_collection_t *col = chat_store_collection(st, client, "messages");
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(it->room));
    bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64(1));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_next(cursor, &doc)) {
        cJSON *frame = chat_stored_msg_frame(doc);
        if (frame == NULL) {
            chat_log_warn("stored message skipped: missing fields");
        } else {
            chat_json_read_int(cJSON_GetObjectItemCaseSensitive(frame, "seq"), &it->seq);
            it->last = cJSON_PrintUnformatted(frame);
            if (it->last == NULL)
                err = CHAT_ERR_NOMEM;
            cJSON_Delete(frame);
        }
    }
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cursor, &error)) {
        chat_log_error("mongodb read failed", CHAT_F_STR("op", "room list's newest message"),
                       CHAT_F_INT("code", error.code), CHAT_F_STR("reason", error.message));
        err = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    return err;
}

/* The user's read marks of the page's rooms (one query). */
static chat_err_t read_marks(chat_room_list_page_t *p, chat_store_t *st, mongoc_client_t *client,
                             const char *tenant, const char *user)
{
    if (p->count == 0)
        return CHAT_OK;
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_READS_COLLECTION);
    bson_t filter = BSON_INITIALIZER, in, arr;
    BSON_APPEND_UTF8(&filter, "tenant", tenant);
    BSON_APPEND_UTF8(&filter, "user", user);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "room", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    for (size_t i = 0; i < p->count; i++) {
        char idx[24];
        snprintf(idx, sizeof idx, "%zu", i);
        BSON_APPEND_UTF8(&arr, idx, p->page[i]->room);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, &filter, NULL, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cursor, &doc)) {
        const char *room = chat_bson_str(doc, "room");
        for (size_t i = 0; room != NULL && i < p->count; i++)
            if (strcmp(p->page[i]->room, room) == 0)
                p->page[i]->read = chat_bson_int64_or(doc, "seq", 0);
    }
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cursor, &error)) {
        chat_log_warn("read marks not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(&filter);
    mongoc_collection_destroy(col);
    return err;
}

/* The unread counts of the page: one Redis round trip for all, MongoDB for the rest. */
static chat_err_t count_unread(chat_room_list_page_t *p, chat_redis_t *redis, int64_t recent_max,
                               chat_store_t *st, mongoc_client_t *client, const char *tenant,
                               const char *user)
{
    chat_unread_item_t *unread = calloc(p->count > 0 ? p->count : 1, sizeof *unread);
    if (unread == NULL)
        return CHAT_ERR_NOMEM;
    for (size_t i = 0; i < p->count; i++)
        unread[i] = (chat_unread_item_t){
            .room = p->page[i]->room, .read = p->page[i]->read, .latest = p->page[i]->seq};
    chat_err_t err = chat_unread_count_many(recent_max > 0 ? redis : NULL, recent_max, st, client,
                                            tenant, user, unread, p->count);
    for (size_t i = 0; err == CHAT_OK && i < p->count; i++) {
        p->page[i]->unread = unread[i].unread;
        p->page[i]->unread_source = unread[i].source;
    }
    free(unread);
    return err;
}

chat_err_t chat_room_list_read(chat_store_t *st, mongoc_client_t *client, chat_redis_t *redis,
                               int64_t recent_max, const char *tenant, const char *user,
                               const char *cursor, size_t limit, chat_room_list_page_t *out)
{
    *out = (chat_room_list_page_t){0};
    chat_room_rank_t *ranks = NULL;
    chat_err_t err = read_index(out, st, client, tenant, user);
    if (err == CHAT_OK && redis == NULL)
        err = CHAT_ERR_REDIS; /* the summaries are the order: no list without them */
    if (err == CHAT_OK)
        err = read_summaries(out, redis, tenant);
    if (err == CHAT_OK) {
        ranks = calloc(out->n > 0 ? out->n : 1, sizeof *ranks);
        out->page = calloc(limit > 0 ? limit : 1, sizeof *out->page);
        err = ranks != NULL && out->page != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    }
    size_t first = 0;
    bool more = false;
    if (err == CHAT_OK) {
        for (size_t i = 0; i < out->n; i++) {
            const chat_room_list_entry_t *e = &out->entries[i];
            ranks[i] =
                (chat_room_rank_t){.room = e->room, .activity = e->summary ? e->ts : e->joined};
        }
        chat_room_page_sort(ranks, out->n);
        if (!chat_room_page_select(ranks, out->n, cursor, limit, &first, &out->count, &more))
            err = CHAT_ERR_INVALID;
    }
    for (size_t i = 0; err == CHAT_OK && i < out->count; i++) {
        /* ranks point at the entries' rooms: find each page room's entry again */
        for (size_t k = 0; k < out->n; k++)
            if (out->entries[k].room == ranks[first + i].room)
                out->page[i] = &out->entries[k];
        if (!out->page[i]->summary)
            err = fill_from_store(out->page[i], st, client, tenant);
    }
    if (err == CHAT_OK)
        err = read_marks(out, st, client, tenant, user);
    if (err == CHAT_OK)
        err = count_unread(out, redis, recent_max, st, client, tenant, user);
    if (err == CHAT_OK && more)
        chat_room_page_cursor_make(&ranks[first + out->count - 1], out->next, sizeof out->next);
    free(ranks);
    if (err != CHAT_OK)
        chat_room_list_page_clear(out);
    return err;
}

cJSON *chat_room_list_json(const chat_room_list_page_t *p)
{
    cJSON *arr = cJSON_CreateArray();
    bool ok = arr != NULL;
    for (size_t i = 0; ok && i < p->count; i++) {
        const chat_room_list_entry_t *it = p->page[i];
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
    if (!ok) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

void chat_room_list_page_clear(chat_room_list_page_t *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->entries[i].room);
        free(p->entries[i].kind);
        free(p->entries[i].name);
        free(p->entries[i].last);
    }
    free(p->entries);
    free(p->page);
    *p = (chat_room_list_page_t){0};
}
