/* /v1/users/{user}: the user's room list with unread counts (GET .../rooms, the gateway's
 * `rooms` page: common/room_list.h), and the erasure of a user (DELETE: an erase job, 202;
 * GET .../erasure/{job} follows it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/names.h"
#include "common/room_list.h"
#include "services/api/jobs.h"

/* The {user} of the path if valid (and not the reserved system user); otherwise answers 400
 * and returns NULL. */
static const char *path_user(const api_req_t *req, api_resp_t *resp)
{
    const char *user = req->nparams > 0 ? req->params[0] : NULL;
    if (user == NULL || !chat_name_user_valid(user) || strcmp(user, CHAT_SYSTEM_USER) == 0) {
        api_error(req, resp, 400, "user is not a valid user id");
        return NULL;
    }
    return user;
}

/* GET /v1/users/{user}/rooms -> {rooms: [{room, kind, name?, seq, useq, read, unread,
 * last?}], next}: the page the user's `rooms` frame shows (most recent activity first). The
 * unread counts ask the recent history for at most CHAT_RECENT_MAX_DEFAULT messages a room
 * (a bound, not an assumption: a shorter or absent history is answered by MongoDB). */
static void user_rooms(const api_req_t *req, api_resp_t *resp)
{
    const char *user = path_user(req, resp);
    int limit;
    char cursor[CHAT_ROOM_CURSOR_MAX];
    if (user == NULL || !api_page_params(req, resp, &limit, cursor, sizeof cursor))
        return;
    chat_redis_t *redis = api_redis_take(req->ctx);
    if (redis == NULL) {
        api_error_from(req, resp, CHAT_ERR_REDIS, "reading the rooms");
        return;
    }
    chat_store_t *st = req->ctx->store;
    mongoc_client_t *client = chat_store_acquire(st);
    chat_room_list_page_t page;
    chat_err_t err =
        chat_room_list_read(st, client, redis, CHAT_RECENT_MAX_DEFAULT, req->tenant, user,
                            cursor[0] != '\0' ? cursor : NULL, (size_t)limit, &page);
    chat_store_release(st, client);
    if (err == CHAT_ERR_INVALID) {
        api_error(req, resp, 400, "cursor is not valid");
        return;
    }
    cJSON *o = NULL, *rooms = NULL;
    char *next = NULL;
    if (err == CHAT_OK) {
        o = cJSON_CreateObject();
        rooms = chat_room_list_json(&page);
        next = page.next[0] != '\0' ? api_cursor_encode(page.next) : NULL;
        bool ok = o != NULL && rooms != NULL && cJSON_AddItemToObject(o, "rooms", rooms);
        if (!ok)
            cJSON_Delete(rooms);
        ok = ok && (page.next[0] != '\0'
                        ? next != NULL && cJSON_AddStringToObject(o, "next", next) != NULL
                        : cJSON_AddNullToObject(o, "next") != NULL);
        if (!ok)
            err = CHAT_ERR_NOMEM;
    }
    free(next);
    chat_room_list_page_clear(&page);
    if (err != CHAT_OK) {
        cJSON_Delete(o);
        api_error_from(req, resp, err, "reading the rooms");
        return;
    }
    api_json(resp, 200, o);
}

/* Location: /v1/users/{user}/erasure/{id}, the user percent-encoded (ids may hold any
 * printable character). API_LOCATION_MAX holds it for every valid user id; left out only for
 * one that does not fit (the body has the job's id). */
static void erasure_location(api_resp_t *resp, const char *user, const char *id)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = resp->location, *end = resp->location + sizeof resp->location;
    int n = snprintf(out, (size_t)(end - out), "/v1/users/");
    out += n;
    for (const unsigned char *c = (const unsigned char *)user; *c != '\0'; c++) {
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~';
        if (end - out < 4) {
            resp->location[0] = '\0';
            return;
        }
        if (plain) {
            *out++ = (char)*c;
        } else {
            *out++ = '%';
            *out++ = hex[*c >> 4];
            *out++ = hex[*c & 15];
        }
    }
    n = snprintf(out, (size_t)(end - out), "/erasure/%s", id);
    if (n < 0 || n >= end - out)
        resp->location[0] = '\0';
}

/* DELETE /v1/users/{user} -> 202 {job, state: "queued"}, Location: its erasure resource. */
static void user_erase(const api_req_t *req, api_resp_t *resp)
{
    const char *user = path_user(req, resp);
    if (user == NULL)
        return;
    bson_t *params = BCON_NEW("user", BCON_UTF8(user));
    char id[API_JOB_ID_LEN + 1];
    chat_err_t err = api_job_create(req->ctx, req->tenant, "erase", params, id);
    bson_destroy(params);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "starting the erasure");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "job", id) == NULL ||
        cJSON_AddStringToObject(o, "state", "queued") == NULL) {
        cJSON_Delete(o);
        api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the erasure");
        return;
    }
    erasure_location(resp, user, id);
    api_json(resp, 202, o);
}

/* GET /v1/users/{user}/erasure/{job} -> {id, user, state, progress, error?, created, updated};
 * 404 unless job is an erasure of this user in this tenant. */
static void user_erasure_read(const api_req_t *req, api_resp_t *resp)
{
    const char *user = path_user(req, resp);
    if (user == NULL)
        return;
    bson_t *doc = NULL;
    chat_err_t err = api_job_find(req->ctx, req->tenant, "erase", req->params[1], &doc);
    bson_iter_t it, found;
    if (err == CHAT_OK &&
        !(bson_iter_init(&it, doc) && bson_iter_find_descendant(&it, "params.user", &found) &&
          BSON_ITER_HOLDS_UTF8(&found) && strcmp(bson_iter_utf8(&found, NULL), user) == 0))
        err = CHAT_ERR_NOT_FOUND;
    cJSON *o = err == CHAT_OK ? api_job_json(doc) : NULL;
    bson_destroy(doc);
    if (err == CHAT_ERR_NOT_FOUND) {
        api_error(req, resp, 404, "erasure not found");
        return;
    }
    if (err == CHAT_OK && (o == NULL || cJSON_AddStringToObject(o, "user", user) == NULL))
        err = CHAT_ERR_NOMEM;
    if (err != CHAT_OK) {
        cJSON_Delete(o);
        api_error_from(req, resp, err, "reading the erasure");
        return;
    }
    api_json(resp, 200, o);
}

chat_err_t api_users_register(api_ctx_t *ctx)
{
    chat_err_t err = api_route(ctx, API_GET, "/users/{user}/rooms", user_rooms);
    if (err == CHAT_OK)
        err = api_route(ctx, API_DELETE, "/users/{user}", user_erase);
    if (err == CHAT_OK)
        err = api_route(ctx, API_GET, "/users/{user}/erasure/{job}", user_erasure_read);
    return err;
}
