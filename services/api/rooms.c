/* The api's rooms: POST /rooms creates a private room (its `rooms` document, its members, then
 * the notices room_created and member_added), GET lists and reads them, PATCH renames, DELETE
 * leaves a tombstone (and with ?purge=true drops the history), then room_deleted cuts the
 * subscribers off. Also what the room resources share (rooms.h). */
#include "services/api/rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/redis.h"
#include "common/store.h"

#define MAX_CREATE_MEMBERS 1000

/* ---- shared (rooms.h) ---- */

/* Runs a find on collection and calls each() for every document until it returns false.
 * Returns true, or false with *error set when the find failed (nothing logged). */
bool api_find_each(api_ctx_t *ctx, const char *collection, const bson_t *filter, const bson_t *opts,
                   bool (*each)(const bson_t *doc, void *ud), void *ud, bson_error_t *error)
{
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, collection);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        if (!each(doc, ud))
            break;
    }
    bool ok = !mongoc_cursor_error(cur, error);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    return ok;
}

/* Adds {key: {$gt: after}} to filter unless after is empty (the first page). */
void api_filter_after(bson_t *filter, const char *key, const char *after)
{
    if (after[0] == '\0')
        return;
    bson_t range;
    BSON_APPEND_DOCUMENT_BEGIN(filter, key, &range);
    BSON_APPEND_UTF8(&range, "$gt", after);
    bson_append_document_end(filter, &range);
}

/* Takes key onto the page; false once it is full (more set). */
bool api_page_take(api_page_t *p, const char *key)
{
    if (p->count == p->limit) {
        p->more = true;
        return false;
    }
    snprintf(p->last, p->last_len, "%s", key);
    p->count++;
    return true;
}

/* Adds "next" (the cursor, or null) to body; a failure to add is not reported, as cJSON's. */
void api_page_next(cJSON *body, const api_page_t *p)
{
    char *next = p->more ? api_cursor_encode(p->last) : NULL;
    if (next != NULL)
        cJSON_AddStringToObject(body, "next", next);
    else
        cJSON_AddNullToObject(body, "next");
    free(next);
}

/* Logs a failed MongoDB operation and returns its code. */
static chat_err_t mongo_failed(const char *what, const char *tenant, const char *room,
                               const bson_error_t *error)
{
    chat_log_warn("MongoDB operation failed", CHAT_F_STR("what", what),
                  CHAT_F_STR("tenant", tenant), CHAT_F_STR("room", room),
                  CHAT_F_INT("code", error->code), CHAT_F_STR("error", error->message));
    return chat_store_err(error);
}

/* Finds the first document of collection matching filter; *found and a copy in *out. */
static chat_err_t find_one(api_ctx_t *ctx, const char *collection, const bson_t *filter,
                           bson_t *out, bool *found)
{
    *found = false;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, collection);
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    if (mongoc_cursor_next(cur, &doc)) {
        bson_copy_to(doc, out);
        *found = true;
    }
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cur, &error)) {
        err = mongo_failed(collection, "", "", &error);
        if (*found)
            bson_destroy(out);
        *found = false;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(opts);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    return err;
}

chat_err_t api_room_read(api_ctx_t *ctx, const char *tenant, const char *room, api_room_t *out)
{
    memset(out, 0, sizeof *out);
    out->kind = API_ROOM_PUBLIC;
    char id[CHAT_ROOM_KEY_MAX];
    chat_room_key(tenant, room, id, sizeof id);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t doc;
    bool found;
    chat_err_t err = find_one(ctx, API_ROOMS_COLLECTION, filter, &doc, &found);
    bson_destroy(filter);
    if (err != CHAT_OK || !found)
        return err;
    const char *kind = chat_bson_str(&doc, "kind");
    if (chat_bson_true(&doc, "deleted"))
        out->kind = API_ROOM_DELETED;
    else if (kind != NULL && strcmp(kind, "private") == 0)
        out->kind = API_ROOM_PRIVATE;
    const char *name = chat_bson_str(&doc, "name");
    snprintf(out->name, sizeof out->name, "%s", name != NULL ? name : "");
    out->created = chat_bson_number_or(&doc, "created", 0);
    bson_destroy(&doc);
    return CHAT_OK;
}

chat_err_t api_room_seq(api_ctx_t *ctx, const char *tenant, const char *room, int64_t *seq)
{
    *seq = 0;
    char key[CHAT_ROOM_SUMMARY_KEY_MAX];
    if (chat_room_summary_key(tenant, room, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    chat_redis_t *r = api_redis_take(ctx);
    if (r == NULL)
        return CHAT_ERR_REDIS;
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command(r, &err, "HGET %s seq", key);
    if (reply == NULL)
        return err != CHAT_OK ? err : CHAT_ERR_REDIS;
    if (reply->type == REDIS_REPLY_STRING)
        *seq = strtoll(reply->str, NULL, 10);
    freeReplyObject(reply);
    return CHAT_OK;
}

bool api_room_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len > API_NAME_MAX_CHARS * 4)
        return false;
    long chars = chat_utf8_chars_printable(name, len);
    return chars >= 0 && chars <= API_NAME_MAX_CHARS;
}

bool api_body_users(const api_req_t *req, api_resp_t *resp, const char *field, bool required,
                    size_t max, const char ***users, size_t *n)
{
    *users = NULL;
    *n = 0;
    const cJSON *arr =
        req->body != NULL ? cJSON_GetObjectItemCaseSensitive(req->body, field) : NULL;
    if (arr == NULL) {
        if (required)
            api_error(req, resp, 400, "missing field: %s", field);
        return !required;
    }
    if (!cJSON_IsArray(arr)) {
        api_error(req, resp, 400, "%s must be an array of user ids", field);
        return false;
    }
    size_t count = (size_t)cJSON_GetArraySize(arr);
    if (count > max || (required && count == 0)) {
        api_error(req, resp, 400, "%s must hold %d to %zu user ids", field, required ? 1 : 0, max);
        return false;
    }
    const char **list = calloc(count > 0 ? count : 1, sizeof *list);
    if (list == NULL) {
        api_error(req, resp, 500, "out of memory");
        return false;
    }
    for (const cJSON *it = arr->child; it != NULL; it = it->next) {
        if (!cJSON_IsString(it) || !chat_name_user_valid(it->valuestring) ||
            strcmp(it->valuestring, CHAT_SYSTEM_USER) == 0) {
            api_error(req, resp, 400,
                      "%s: every entry must be a user id (1-64 characters, not \"system\")", field);
            free(list);
            return false;
        }
        bool seen = false;
        for (size_t i = 0; i < *n && !seen; i++)
            seen = strcmp(list[i], it->valuestring) == 0;
        if (!seen)
            list[(*n)++] = it->valuestring;
    }
    *users = list;
    return true;
}

long api_members_limit(api_ctx_t *ctx, const char *tenant)
{
    api_settings_t st;
    api_settings_get(ctx, tenant, &st); /* its defaults (the service's limit) on a failure */
    return st.members_per_room > 0 ? (long)st.members_per_room : ctx->max_members;
}

chat_err_t api_members_count(api_ctx_t *ctx, const char *tenant, const char *room, int64_t *count)
{
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, API_MEMBERS_COLLECTION);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room));
    bson_error_t error;
    *count = mongoc_collection_count_documents(coll, filter, NULL, NULL, NULL, &error);
    chat_err_t err = *count >= 0 ? CHAT_OK : mongo_failed("count members", tenant, room, &error);
    bson_destroy(filter);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    return err;
}

/* Inserts the user_rooms entries of the n users (kind private); an entry already there (the
 * room was public and joined before) is turned private and renamed instead. */
static chat_err_t user_rooms_write(api_ctx_t *ctx, const char *tenant, const char *room,
                                   const char *name, const char *const *users, size_t n)
{
    if (n == 0)
        return CHAT_OK;
    int64_t now = chat_clock_wall_ms();
    bson_t **docs = calloc(n, sizeof *docs);
    chat_err_t *results = calloc(n, sizeof *results);
    if (docs == NULL || results == NULL) {
        free(docs);
        free(results);
        return CHAT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        docs[i] =
            BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(users[i]), "room",
                     BCON_UTF8(room), "kind", BCON_UTF8("private"), "joined", BCON_INT64(now));
        if (name != NULL && name[0] != '\0')
            BSON_APPEND_UTF8(docs[i], "name", name);
    }
    chat_err_t err = chat_store_insert_many(ctx->store, API_USER_ROOMS_COLLECTION,
                                            (const bson_t *const *)docs, n, false, results);
    if (err == CHAT_ERR_DUPLICATE) {
        err = CHAT_OK;
        mongoc_client_t *client = chat_store_acquire(ctx->store);
        mongoc_collection_t *coll =
            chat_store_collection(ctx->store, client, API_USER_ROOMS_COLLECTION);
        for (size_t i = 0; i < n && err == CHAT_OK; i++) {
            if (results[i] != CHAT_ERR_DUPLICATE)
                continue;
            bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(users[i]),
                                      "room", BCON_UTF8(room));
            bson_t *update = name != NULL && name[0] != '\0'
                                 ? BCON_NEW("$set", "{", "kind", BCON_UTF8("private"), "name",
                                            BCON_UTF8(name), "}")
                                 : BCON_NEW("$set", "{", "kind", BCON_UTF8("private"), "}");
            bson_error_t error;
            if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL, &error))
                err = mongo_failed("user_rooms entry made private", tenant, room, &error);
            bson_destroy(update);
            bson_destroy(filter);
        }
        mongoc_collection_destroy(coll);
        chat_store_release(ctx->store, client);
    }
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
    free(docs);
    free(results);
    return err;
}

chat_err_t api_known_rooms_write(api_ctx_t *ctx, const char *tenant, const char *room,
                                 const char *const *users, size_t n, bool add)
{
    if (n == 0)
        return CHAT_OK;
    chat_redis_t *r = api_redis_take(ctx);
    if (r == NULL)
        return CHAT_ERR_REDIS;
    chat_err_t err = CHAT_OK;
    size_t queued = 0;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        char key[CHAT_USER_ROOMS_KEY_MAX];
        if (chat_user_rooms_key(tenant, users[i], key, sizeof key) < 0)
            continue;
        err = chat_redis_append(r, "%s %s %s", add ? "SADD" : "SREM", key, room);
        if (err == CHAT_OK)
            queued++;
    }
    for (size_t i = 0; i < queued; i++) {
        redisReply *reply = NULL;
        chat_err_t e = chat_redis_reply(r, &reply);
        if (reply != NULL)
            freeReplyObject(reply);
        if (e != CHAT_OK && err == CHAT_OK)
            err = e;
    }
    return err;
}

chat_err_t api_members_add(api_ctx_t *ctx, const char *tenant, const char *room, const char *name,
                           const char *const *users, size_t n, bool *added)
{
    if (n == 0)
        return CHAT_OK;
    int64_t now = chat_clock_wall_ms();
    bson_t **docs = calloc(n, sizeof *docs);
    chat_err_t *results = calloc(n, sizeof *results);
    const char **fresh = calloc(n, sizeof *fresh);
    if (docs == NULL || results == NULL || fresh == NULL) {
        free(docs);
        free(results);
        free(fresh);
        return CHAT_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        char id[CHAT_MEMBER_ID_MAX];
        chat_member_id(tenant, room, users[i], id, sizeof id);
        docs[i] = BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant), "room",
                           BCON_UTF8(room), "user", BCON_UTF8(users[i]), "added", BCON_INT64(now));
    }
    chat_err_t err = chat_store_insert_many(ctx->store, API_MEMBERS_COLLECTION,
                                            (const bson_t *const *)docs, n, false, results);
    size_t nfresh = 0;
    for (size_t i = 0; i < n; i++) {
        added[i] = results[i] == CHAT_OK;
        if (added[i])
            fresh[nfresh++] = users[i];
    }
    if (err == CHAT_ERR_DUPLICATE)
        err = CHAT_OK; /* members already */
    /* Every user gets the entry (a retry after a failure completes it); the sets only matter
     * to the gateway's join, which writes them itself when missing. */
    if (err == CHAT_OK)
        err = user_rooms_write(ctx, tenant, room, name, users, n);
    if (err == CHAT_OK)
        err = api_known_rooms_write(ctx, tenant, room, users, n, true);
    for (size_t i = 0; i < n; i++)
        bson_destroy(docs[i]);
    free(docs);
    free(results);
    free(fresh);
    return err;
}

/* ---- handlers ---- */

/* delete_many of filter on collection. */
static chat_err_t delete_many(api_ctx_t *ctx, const char *collection, const bson_t *filter,
                              const char *tenant, const char *room)
{
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, collection);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_delete_many(coll, filter, NULL, NULL, &error))
        err = mongo_failed(collection, tenant, room, &error);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    return err;
}

/* The answer object of a room. */
static cJSON *room_json(const char *room, const api_room_t *r, int64_t members, int64_t seq,
                        bool with_counts)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "room", room);
    cJSON_AddStringToObject(o, "kind", "private");
    if (r->name[0] != '\0')
        cJSON_AddStringToObject(o, "name", r->name);
    if (with_counts) {
        chat_json_add_int(o, "members", members);
        chat_json_add_int(o, "seq", seq);
    }
    chat_json_add_int(o, "created", r->created);
    return o;
}

bool api_private_room(const api_req_t *req, api_resp_t *resp, api_room_t *r)
{
    const char *room = req->params[0];
    if (!chat_name_room_valid(room)) {
        api_error(req, resp, 400, "invalid room name");
        return false;
    }
    chat_err_t err = api_room_read(req->ctx, req->tenant, room, r);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "reading the room");
        return false;
    }
    if (r->kind != API_ROOM_PRIVATE) {
        api_error(req, resp, 404, "room not found");
        return false;
    }
    return true;
}

/* True if a public room of that name already has messages (Redis summary, else MongoDB). */
static chat_err_t public_has_messages(api_ctx_t *ctx, const char *tenant, const char *room,
                                      bool *has)
{
    int64_t seq = 0;
    chat_err_t err = api_room_seq(ctx, tenant, room, &seq);
    if (err != CHAT_OK)
        return err;
    *has = seq > 0;
    if (*has)
        return CHAT_OK;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room));
    bson_t doc;
    err = find_one(ctx, API_MESSAGES_COLLECTION, filter, &doc, has);
    if (*has)
        bson_destroy(&doc);
    bson_destroy(filter);
    return err;
}

/* Inserts the rooms document; CHAT_ERR_DUPLICATE if one exists (deleted or not). */
static chat_err_t room_insert(api_ctx_t *ctx, const char *tenant, const char *room,
                              const char *name, int64_t created)
{
    char id[CHAT_ROOM_KEY_MAX];
    chat_room_key(tenant, room, id, sizeof id);
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "kind",
                 BCON_UTF8("private"), "created", BCON_INT64(created));
    if (name != NULL && name[0] != '\0')
        BSON_APPEND_UTF8(doc, "name", name);
    chat_err_t result;
    const bson_t *docs[] = {doc};
    chat_store_insert_many(ctx->store, API_ROOMS_COLLECTION, docs, 1, true, &result);
    bson_destroy(doc);
    return result;
}

/* Produces room_created (when first) and member_added for each added user, in order. */
static chat_err_t notices_members_added(api_ctx_t *ctx, const char *tenant, const char *room,
                                        bool first, const char *const *users, size_t n,
                                        const bool *added)
{
    api_notice_t *notices = calloc(n + 1, sizeof *notices);
    if (notices == NULL)
        return CHAT_ERR_NOMEM;
    size_t k = 0;
    if (first)
        notices[k++] = (api_notice_t){.notice = "room_created"};
    for (size_t i = 0; i < n; i++) {
        if (added[i])
            notices[k++] = (api_notice_t){.notice = "member_added", .target = users[i]};
    }
    chat_err_t err = k > 0 ? api_notices_produce(ctx, tenant, room, notices, k) : CHAT_OK;
    free(notices);
    return err;
}

/* The tenant's private rooms not deleted (what limits.rooms bounds; GET /v1/stats' rooms).
 * Checked before an insert, not with it: creates racing each other may pass the limit by as
 * many as race. */
static chat_err_t private_rooms_count(api_ctx_t *ctx, const char *tenant, int64_t *out)
{
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "kind", BCON_UTF8("private"), "deleted",
                              "{", "$ne", BCON_BOOL(true), "}");
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, API_ROOMS_COLLECTION);
    bson_error_t error;
    int64_t n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &error);
    chat_err_t err = CHAT_OK;
    if (n < 0) {
        err = chat_store_err(&error);
        chat_log_warn("rooms not counted", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("error", error.message));
    }
    *out = n < 0 ? 0 : n;
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(filter);
    return err;
}

/* The writes and notices of a new room whose request was checked: 201, or the error. */
static void room_create_run(const api_req_t *req, api_resp_t *resp, const char *room,
                            const char *name, const char *const *users, size_t n, bool *added)
{
    long limit = api_members_limit(req->ctx, req->tenant);
    if ((long)n > limit) {
        api_error(req, resp, 409, "a room has at most %ld members", limit);
        return;
    }
    api_settings_t st;
    api_settings_get(req->ctx, req->tenant, &st); /* the defaults on a failure */
    int64_t rooms = 0;
    chat_err_t err = private_rooms_count(req->ctx, req->tenant, &rooms);
    if (err == CHAT_OK && rooms >= st.rooms) {
        api_error(req, resp, 409, "the tenant has %lld rooms, its limit (limits.rooms)",
                  (long long)rooms);
        return;
    }
    bool has = false;
    if (err == CHAT_OK)
        err = public_has_messages(req->ctx, req->tenant, room, &has);
    if (err == CHAT_OK && has) {
        api_error(req, resp, 409, "a public room of that name already has messages");
        return;
    }
    int64_t created = chat_clock_wall_ms();
    if (err == CHAT_OK)
        err = room_insert(req->ctx, req->tenant, room, name, created);
    if (err == CHAT_ERR_DUPLICATE) {
        api_error(req, resp, 409, "room exists (or existed: names of deleted rooms stay taken)");
        return;
    }
    /* The document first: from then on the gateway treats the room as private. Entries in
     * the room lists of users who joined the public room of that name (no message was sent)
     * go: they are no members. */
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant), "room", BCON_UTF8(room));
    if (err == CHAT_OK)
        err = delete_many(req->ctx, API_USER_ROOMS_COLLECTION, filter, req->tenant, room);
    bson_destroy(filter);
    if (err == CHAT_OK)
        err = api_members_add(req->ctx, req->tenant, room, name, users, n, added);
    if (err == CHAT_OK)
        err = notices_members_added(req->ctx, req->tenant, room, true, users, n, added);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "creating the room");
        return;
    }
    api_room_t r = {.kind = API_ROOM_PRIVATE, .created = created};
    snprintf(r.name, sizeof r.name, "%s", name != NULL ? name : "");
    api_json(resp, 201, room_json(room, &r, (int64_t)n, 0, true));
}

static void rooms_create(const api_req_t *req, api_resp_t *resp)
{
    static const char *const fields[] = {"room", "name", "members", NULL};
    const char *room, *name;
    if (!api_body_fields(req, resp, fields) || !api_body_string(req, resp, "room", true, &room) ||
        !api_body_string(req, resp, "name", false, &name))
        return;
    if (!chat_name_room_valid(room)) {
        api_error(req, resp, 400, "room must match [A-Za-z0-9._:-]{1,128}");
        return;
    }
    if (chat_room_is_dm(room)) {
        api_error(req, resp, 409, "dm: rooms are direct rooms and cannot be created");
        return;
    }
    if (name != NULL && !api_room_name_valid(name)) {
        api_error(req, resp, 400, "name must be at most 128 characters without control characters");
        return;
    }
    const char **users;
    size_t n;
    if (!api_body_users(req, resp, "members", false, MAX_CREATE_MEMBERS, &users, &n))
        return;
    bool *added = calloc(n > 0 ? n : 1, sizeof *added);
    if (added == NULL)
        api_error(req, resp, 500, "out of memory");
    else
        room_create_run(req, resp, room, name, users, n, added);
    free(added);
    free(users);
}

/* A page of rooms_list being filled. */
typedef struct rooms_page {
    cJSON *rooms;
    api_page_t page;
} rooms_page_t;

/* Adds a room document to the page (one without a room id is skipped); returns false, to stop,
 * once the page is full. */
static bool rooms_page_add(const bson_t *doc, void *ud)
{
    rooms_page_t *p = ud;
    const char *room = chat_bson_str(doc, "room");
    if (room == NULL)
        return true;
    if (!api_page_take(&p->page, room))
        return false;
    api_room_t r = {.kind = API_ROOM_PRIVATE, .created = chat_bson_number_or(doc, "created", 0)};
    const char *name = chat_bson_str(doc, "name");
    snprintf(r.name, sizeof r.name, "%s", name != NULL ? name : "");
    cJSON_AddItemToArray(p->rooms, room_json(room, &r, 0, 0, false));
    return true;
}

static void rooms_list(const api_req_t *req, api_resp_t *resp)
{
    int limit;
    char after[CHAT_ROOM_MAX + 1];
    if (!api_page_params(req, resp, &limit, after, sizeof after))
        return;
    bson_t *filter =
        BCON_NEW("tenant", BCON_UTF8(req->tenant), "deleted", "{", "$ne", BCON_BOOL(true), "}");
    api_filter_after(filter, "room", after);
    bson_t *opts =
        BCON_NEW("sort", "{", "room", BCON_INT32(1), "}", "limit", BCON_INT64((int64_t)limit + 1));
    cJSON *body = cJSON_CreateObject();
    char last[CHAT_ROOM_MAX + 1] = "";
    rooms_page_t page = {.rooms = cJSON_AddArrayToObject(body, "rooms"),
                         .page = {.limit = limit, .last = last, .last_len = sizeof last}};
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!api_find_each(req->ctx, API_ROOMS_COLLECTION, filter, opts, rooms_page_add, &page, &error))
        err = mongo_failed("list rooms", req->tenant, "", &error);
    bson_destroy(opts);
    bson_destroy(filter);
    if (err != CHAT_OK) {
        cJSON_Delete(body);
        api_error_from(req, resp, err, "listing rooms");
        return;
    }
    api_page_next(body, &page.page);
    api_json(resp, 200, body);
}

/* The answer of GET and PATCH: the room with its member count and latest seq. */
static void room_answer(const api_req_t *req, api_resp_t *resp, const api_room_t *r)
{
    int64_t members = 0, seq = 0;
    chat_err_t err = api_members_count(req->ctx, req->tenant, req->params[0], &members);
    if (err == CHAT_OK)
        err = api_room_seq(req->ctx, req->tenant, req->params[0], &seq);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "reading the room");
        return;
    }
    api_json(resp, 200, room_json(req->params[0], r, members, seq, true));
}

static void rooms_get(const api_req_t *req, api_resp_t *resp)
{
    api_room_t r;
    if (api_private_room(req, resp, &r))
        room_answer(req, resp, &r);
}

/* Sets (or, for "", removes) the name of tenant/room in rooms and every user_rooms entry. */
static chat_err_t room_rename(api_ctx_t *ctx, const char *tenant, const char *room,
                              const char *name)
{
    char id[CHAT_ROOM_KEY_MAX];
    chat_room_key(tenant, room, id, sizeof id);
    bool unset = name[0] == '\0';
    bson_t *update = unset ? BCON_NEW("$unset", "{", "name", BCON_UTF8(""), "}")
                           : BCON_NEW("$set", "{", "name", BCON_UTF8(name), "}");
    bson_t *by_id = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *by_room = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room));
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *rooms = chat_store_collection(ctx->store, client, API_ROOMS_COLLECTION);
    mongoc_collection_t *entries =
        chat_store_collection(ctx->store, client, API_USER_ROOMS_COLLECTION);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_update_one(rooms, by_id, update, NULL, NULL, &error))
        err = mongo_failed("rename room", tenant, room, &error);
    else if (!mongoc_collection_update_many(entries, by_room, update, NULL, NULL, &error))
        err = mongo_failed("rename user_rooms entries", tenant, room, &error);
    mongoc_collection_destroy(entries);
    mongoc_collection_destroy(rooms);
    chat_store_release(ctx->store, client);
    bson_destroy(by_room);
    bson_destroy(by_id);
    bson_destroy(update);
    return err;
}

static void rooms_patch(const api_req_t *req, api_resp_t *resp)
{
    static const char *const fields[] = {"name", NULL};
    api_room_t r;
    const char *name;
    if (!api_body_fields(req, resp, fields) || !api_body_string(req, resp, "name", true, &name) ||
        !api_private_room(req, resp, &r))
        return;
    if (!api_room_name_valid(name)) {
        api_error(req, resp, 400,
                  "name must be at most 128 characters without control "
                  "characters");
        return;
    }
    chat_err_t err = room_rename(req->ctx, req->tenant, req->params[0], name);
    if (err == CHAT_OK)
        err = api_notice_produce(req->ctx, req->tenant, req->params[0], "room_renamed", NULL, name);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "renaming the room");
        return;
    }
    snprintf(r.name, sizeof r.name, "%s", name);
    room_answer(req, resp, &r);
}

/* The users who are members of tenant/room (malloc'd strings in a malloc'd array). */
static chat_err_t members_all(api_ctx_t *ctx, const char *tenant, const char *room, char ***out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room));
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, API_MEMBERS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && mongoc_cursor_next(cur, &doc)) {
        const char *user = chat_bson_str(doc, "user");
        if (user == NULL)
            continue;
        if (*n == cap) {
            cap = cap > 0 ? cap * 2 : 64;
            char **grown = realloc(*out, cap * sizeof *grown);
            if (grown == NULL) {
                err = CHAT_ERR_NOMEM;
                break;
            }
            *out = grown;
        }
        (*out)[*n] = strdup(user);
        if ((*out)[*n] == NULL)
            err = CHAT_ERR_NOMEM;
        else
            (*n)++;
    }
    bson_error_t error;
    if (mongoc_cursor_error(cur, &error))
        err = mongo_failed("read members", tenant, room, &error);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    bson_destroy(filter);
    return err;
}

/* The tombstone: deleted true, deleted_at now. */
static chat_err_t room_tombstone(api_ctx_t *ctx, const char *tenant, const char *room)
{
    char id[CHAT_ROOM_KEY_MAX];
    chat_room_key(tenant, room, id, sizeof id);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *update = BCON_NEW("$set", "{", "deleted", BCON_BOOL(true), "deleted_at",
                              BCON_INT64(chat_clock_wall_ms()), "}");
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, API_ROOMS_COLLECTION);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_update_one(coll, filter, update, NULL, NULL, &error))
        err = mongo_failed("room tombstone", tenant, room, &error);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    bson_destroy(update);
    bson_destroy(filter);
    return err;
}

/* Drops the room's history: messages and updates in MongoDB, its recent history, summary and
 * useq in Redis. */
static chat_err_t room_purge(api_ctx_t *ctx, const char *tenant, const char *room)
{
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room));
    chat_err_t err = delete_many(ctx, API_MESSAGES_COLLECTION, filter, tenant, room);
    if (err == CHAT_OK)
        err = delete_many(ctx, API_UPDATES_COLLECTION, filter, tenant, room);
    bson_destroy(filter);
    if (err != CHAT_OK)
        return err;
    char recent[CHAT_ROOM_SUMMARY_KEY_MAX], summary[CHAT_ROOM_SUMMARY_KEY_MAX],
        useq[CHAT_ROOM_SUMMARY_KEY_MAX];
    if (chat_recent_key(tenant, room, recent, sizeof recent) < 0 ||
        chat_room_summary_key(tenant, room, summary, sizeof summary) < 0 ||
        chat_useq_key(tenant, room, useq, sizeof useq) < 0)
        return CHAT_ERR_INVALID;
    chat_redis_t *r = api_redis_take(ctx);
    if (r == NULL)
        return CHAT_ERR_REDIS;
    redisReply *reply = chat_redis_command(r, &err, "DEL %s %s %s", recent, summary, useq);
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}

static void rooms_delete(const api_req_t *req, api_resp_t *resp)
{
    api_room_t r;
    const char *purge = api_req_query(req, "purge");
    if (purge != NULL && strcmp(purge, "true") != 0 && strcmp(purge, "false") != 0) {
        api_error(req, resp, 400, "purge must be true or false");
        return;
    }
    if (!api_private_room(req, resp, &r))
        return;
    const char *room = req->params[0];
    char **users = NULL;
    size_t n = 0;
    chat_err_t err = members_all(req->ctx, req->tenant, room, &users, &n);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant), "room", BCON_UTF8(room));
    /* Tombstone first: from then on the gateway refuses joins, whatever else fails. */
    if (err == CHAT_OK)
        err = room_tombstone(req->ctx, req->tenant, room);
    if (err == CHAT_OK)
        err = delete_many(req->ctx, API_MEMBERS_COLLECTION, filter, req->tenant, room);
    if (err == CHAT_OK)
        err = delete_many(req->ctx, API_USER_ROOMS_COLLECTION, filter, req->tenant, room);
    if (err == CHAT_OK)
        err = api_known_rooms_write(req->ctx, req->tenant, room, (const char *const *)users, n,
                                    false);
    if (err == CHAT_OK && purge != NULL && strcmp(purge, "true") == 0)
        err = room_purge(req->ctx, req->tenant, room);
    /* After the writes: a gateway that sees the notice reads the room as gone. */
    if (err == CHAT_OK)
        err = api_notice_produce(req->ctx, req->tenant, room, "room_deleted", NULL, NULL);
    bson_destroy(filter);
    for (size_t i = 0; i < n; i++)
        free(users[i]);
    free(users);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "deleting the room");
        return;
    }
    resp->status = 204;
}

chat_err_t api_rooms_register(api_ctx_t *ctx)
{
    static const chat_store_index_t indexes[] = {
        {API_ROOMS_COLLECTION, "tenant_room", false, {"tenant", "room", NULL}},
        {API_MEMBERS_COLLECTION, "member", true, {"tenant", "room", "user", NULL}},
        {API_MEMBERS_COLLECTION, "user", false, {"tenant", "user", NULL}},
        {API_USER_ROOMS_COLLECTION, "user_room", true, {"tenant", "user", "room", NULL}},
    };
    chat_err_t err =
        chat_store_ensure_indexes(ctx->store, indexes, sizeof indexes / sizeof indexes[0]);
    if (err != CHAT_OK)
        return err;
    if ((err = api_route(ctx, API_POST, "/rooms", rooms_create)) != CHAT_OK ||
        (err = api_route(ctx, API_GET, "/rooms", rooms_list)) != CHAT_OK ||
        (err = api_route(ctx, API_GET, "/rooms/{room}", rooms_get)) != CHAT_OK ||
        (err = api_route(ctx, API_PATCH, "/rooms/{room}", rooms_patch)) != CHAT_OK ||
        (err = api_route(ctx, API_DELETE, "/rooms/{room}", rooms_delete)) != CHAT_OK)
        return err;
    return CHAT_OK;
}
