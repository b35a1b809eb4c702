/* The api's members of a private room: GET lists them (by user id, cursor paged), POST adds
 * (members, user_rooms, the users' known rooms, then a member_added notice each), DELETE
 * removes one (then member_removed, which cuts the user's subscriptions off); and the notice
 * producer the other modules share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/contract.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/store.h"
#include "services/api/api.h"
#include "services/api/rooms.h"

#define MAX_ADD_USERS 100

chat_err_t api_notice_produce(api_ctx_t *ctx, const char *tenant, const char *room,
                              const char *notice, const char *target, const char *text)
{
    api_notice_t n = {.notice = notice, .target = target, .text = text};
    return api_notices_produce(ctx, tenant, room, &n, 1);
}

/* Deletes the one document of collection matching filter; *deleted tells whether there was
 * one. */
static chat_err_t delete_one(api_ctx_t *ctx, const char *collection, const bson_t *filter,
                             bool *deleted)
{
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, collection);
    bson_t reply;
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    *deleted = false;
    if (mongoc_collection_delete_one(coll, filter, NULL, &reply, &error))
        *deleted = chat_bson_number_or(&reply, "deletedCount", 0) > 0;
    else
        err = chat_store_err(&error);
    if (err != CHAT_OK)
        chat_log_warn("MongoDB delete failed", CHAT_F_STR("collection", collection),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    bson_destroy(&reply);
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    return err;
}

chat_err_t api_member_remove(api_ctx_t *ctx, const char *tenant, const char *room, const char *user)
{
    bson_t *filter =
        BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "user", BCON_UTF8(user));
    bool member = false, listed = false;
    chat_err_t err = delete_one(ctx, API_MEMBERS_COLLECTION, filter, &member);
    /* The entry goes even when the member was gone already: a retry after a failure ends
     * the job. */
    if (err == CHAT_OK)
        err = delete_one(ctx, API_USER_ROOMS_COLLECTION, filter, &listed);
    bson_destroy(filter);
    const char *users[] = {user};
    if (err == CHAT_OK)
        err = api_known_rooms_write(ctx, tenant, room, users, 1, false);
    if (err == CHAT_OK && !member && !listed)
        return CHAT_ERR_NOT_FOUND;
    /* After the writes: a gateway that sees the notice finds the user gone in MongoDB. */
    if (err == CHAT_OK)
        err = api_notice_produce(ctx, tenant, room, "member_removed", user, NULL);
    return err;
}

/* How many of the n users are members of tenant/room already. */
static chat_err_t members_among(api_ctx_t *ctx, const char *tenant, const char *room,
                                const char *const *users, size_t n, int64_t *count)
{
    bson_t filter = BSON_INITIALIZER, in, list;
    BSON_APPEND_UTF8(&filter, "tenant", tenant);
    BSON_APPEND_UTF8(&filter, "room", room);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "user", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &list);
    for (size_t i = 0; i < n; i++) {
        char idx[16];
        const char *key;
        bson_uint32_to_string((uint32_t)i, &key, idx, sizeof idx);
        bson_append_utf8(&list, key, -1, users[i], -1);
    }
    bson_append_array_end(&in, &list);
    bson_append_document_end(&filter, &in);
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *coll = chat_store_collection(ctx->store, client, API_MEMBERS_COLLECTION);
    bson_error_t error;
    *count = mongoc_collection_count_documents(coll, &filter, NULL, NULL, NULL, &error);
    chat_err_t err = *count >= 0 ? CHAT_OK : chat_store_err(&error);
    if (err != CHAT_OK)
        chat_log_warn("MongoDB count failed", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("room", room), CHAT_F_STR("error", error.message));
    mongoc_collection_destroy(coll);
    chat_store_release(ctx->store, client);
    bson_destroy(&filter);
    return err;
}

/* A page of members_list being filled. */
typedef struct members_page {
    cJSON *members;
    api_page_t page;
} members_page_t;

/* Adds a member document to the page (one without a user is skipped); returns false, to stop,
 * once the page is full. */
static bool members_page_add(const bson_t *doc, void *ud)
{
    members_page_t *p = ud;
    const char *user = chat_bson_str(doc, "user");
    if (user == NULL)
        return true;
    if (!api_page_take(&p->page, user))
        return false;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "user", user);
    chat_json_add_int(m, "added", chat_bson_number_or(doc, "added", 0));
    cJSON_AddItemToArray(p->members, m);
    return true;
}

static void members_list(const api_req_t *req, api_resp_t *resp)
{
    int limit;
    char after[CHAT_USER_MAX * 4 + 1];
    api_room_t r;
    if (!api_page_params(req, resp, &limit, after, sizeof after) ||
        !api_private_room(req, resp, &r))
        return;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant), "room", BCON_UTF8(req->params[0]));
    api_filter_after(filter, "user", after);
    bson_t *opts =
        BCON_NEW("sort", "{", "user", BCON_INT32(1), "}", "limit", BCON_INT64((int64_t)limit + 1));
    cJSON *body = cJSON_CreateObject();
    char last[sizeof after] = "";
    members_page_t page = {.members = cJSON_AddArrayToObject(body, "members"),
                           .page = {.limit = limit, .last = last, .last_len = sizeof last}};
    bson_error_t error;
    bool failed = !api_find_each(req->ctx, API_MEMBERS_COLLECTION, filter, opts, members_page_add,
                                 &page, &error);
    bson_destroy(opts);
    bson_destroy(filter);
    if (failed) {
        cJSON_Delete(body);
        api_error_from(req, resp, chat_store_err(&error), "listing members");
        return;
    }
    api_page_next(body, &page.page);
    api_json(resp, 200, body);
}

/* Adds the checked users to a private room named params[0]: 200 with who was added. */
static void members_add_run(const api_req_t *req, api_resp_t *resp, const api_room_t *r,
                            const char *const *users, size_t n, bool *added)
{
    const char *room = req->params[0];
    int64_t current = 0, already = 0;
    chat_err_t err = api_members_count(req->ctx, req->tenant, room, &current);
    if (err == CHAT_OK)
        err = members_among(req->ctx, req->tenant, room, users, n, &already);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "reading members");
        return;
    }
    long limit = api_members_limit(req->ctx, req->tenant);
    if (current + ((int64_t)n - already) > limit) {
        api_error(req, resp, 409, "a room has at most %ld members (it has %lld)", limit,
                  (long long)current);
        return;
    }
    err = api_members_add(req->ctx, req->tenant, room, r->name, users, n, added);
    api_notice_t *notices = calloc(n, sizeof *notices);
    size_t k = 0;
    if (err == CHAT_OK && notices == NULL)
        err = CHAT_ERR_NOMEM;
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        if (added[i])
            notices[k++] = (api_notice_t){.notice = "member_added", .target = users[i]};
    }
    if (err == CHAT_OK && k > 0)
        err = api_notices_produce(req->ctx, req->tenant, room, notices, k);
    free(notices);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "adding members");
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(body, "added");
    cJSON *kept = cJSON_AddArrayToObject(body, "already");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(added[i] ? list : kept, cJSON_CreateString(users[i]));
    cJSON_AddStringToObject(body, "room", room);
    api_json(resp, 200, body);
}

static void members_add(const api_req_t *req, api_resp_t *resp)
{
    static const char *const fields[] = {"users", NULL};
    api_room_t r;
    const char **users;
    size_t n;
    if (!api_body_fields(req, resp, fields) ||
        !api_body_users(req, resp, "users", true, MAX_ADD_USERS, &users, &n))
        return;
    bool *added = calloc(n, sizeof *added);
    if (added == NULL)
        api_error(req, resp, 500, "out of memory");
    else if (api_private_room(req, resp, &r))
        members_add_run(req, resp, &r, users, n, added);
    free(added);
    free(users);
}

static void members_remove(const api_req_t *req, api_resp_t *resp)
{
    api_room_t r;
    const char *user = req->params[1];
    if (!api_private_room(req, resp, &r))
        return;
    if (!chat_name_user_valid(user)) {
        api_error(req, resp, 400, "invalid user id");
        return;
    }
    chat_err_t err = api_member_remove(req->ctx, req->tenant, req->params[0], user);
    if (err == CHAT_ERR_NOT_FOUND) {
        api_error(req, resp, 404, "%s is not a member of the room", user);
        return;
    }
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "removing the member");
        return;
    }
    resp->status = 204;
}

chat_err_t api_members_register(api_ctx_t *ctx)
{
    chat_err_t err;
    if ((err = api_route(ctx, API_GET, "/rooms/{room}/members", members_list)) != CHAT_OK ||
        (err = api_route(ctx, API_POST, "/rooms/{room}/members", members_add)) != CHAT_OK ||
        (err = api_route(ctx, API_DELETE, "/rooms/{room}/members/{user}", members_remove)) !=
            CHAT_OK)
        return err;
    return CHAT_OK;
}
