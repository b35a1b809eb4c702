/* GET/POST /v1/users/{user}/blocks and DELETE /v1/users/{user}/blocks/{target}: the users a
 * user blocked, one `blocks` document each ({_id: "<tenant>/<user>/<target>", tenant, user,
 * target, created}). The message service reads them to refuse dm sends between the two.
 * Blocking someone already blocked answers 200 with the existing block (idempotent). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/contract.h"
#include "services/api/api.h"

#define BLOCKS_COLLECTION "blocks"
/* A user id is at most CHAT_USER_MAX characters of up to 4 bytes each. */
#define USER_BYTES_MAX (CHAT_USER_MAX * 4)
#define BLOCK_ID_MAX (CHAT_TENANT_MAX + 2 * USER_BYTES_MAX + 3)

static const chat_store_index_t block_indexes[] = {
    {BLOCKS_COLLECTION, "user_target", true, {"tenant", "user", "target", NULL}},
    {BLOCKS_COLLECTION, "target", false, {"tenant", "target", NULL}},
};

/* The {user} of the path if valid; otherwise answers 400 and returns NULL. */
static const char *path_user(const api_req_t *req, api_resp_t *resp, size_t i, const char *what)
{
    const char *user = req->nparams > i ? req->params[i] : NULL;
    if (user == NULL || !chat_name_user_valid(user)) {
        api_error(req, resp, 400, "%s is not a valid user id", what);
        return NULL;
    }
    return user;
}

static cJSON *block_json(const char *user, const char *target, int64_t created)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "user", user) == NULL ||
        cJSON_AddStringToObject(o, "target", target) == NULL ||
        !chat_json_add_int(o, "created", created)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* GET /v1/users/{user}/blocks -> {blocks: [{user, target, created}], next}, by target. */
static void blocks_list(const api_req_t *req, api_resp_t *resp)
{
    const char *user = path_user(req, resp, 0, "user");
    int limit;
    char after[USER_BYTES_MAX + 1];
    if (user == NULL || !api_page_params(req, resp, &limit, after, sizeof after))
        return;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant), "user", BCON_UTF8(user));
    if (after[0] != '\0') {
        bson_t gt;
        BSON_APPEND_DOCUMENT_BEGIN(filter, "target", &gt);
        BSON_APPEND_UTF8(&gt, "$gt", after);
        bson_append_document_end(filter, &gt);
    }
    bson_t *opts =
        BCON_NEW("sort", "{", "target", BCON_INT32(1), "}", "limit", BCON_INT64(limit + 1));
    api_ctx_t *ctx = req->ctx;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, BLOCKS_COLLECTION);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "blocks");
    const bson_t *doc;
    int n = 0;
    bool more = false, ok = arr != NULL;
    char last[USER_BYTES_MAX + 1] = "";
    while (ok && mongoc_cursor_next(cursor, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "target") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        if (n == limit) {
            more = true;
            break;
        }
        const char *target = bson_iter_utf8(&it, NULL);
        cJSON *b = block_json(user, target, chat_bson_int64_or(doc, "created", 0));
        ok = b != NULL && cJSON_AddItemToArray(arr, b);
        snprintf(last, sizeof last, "%s", target);
        n++;
    }
    bson_error_t error;
    chat_err_t err = ok ? CHAT_OK : CHAT_ERR_NOMEM;
    if (mongoc_cursor_error(cursor, &error))
        err = chat_store_err(&error);
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(filter);
    bson_destroy(opts);
    char *next = more ? api_cursor_encode(last) : NULL;
    if (err == CHAT_OK &&
        ((more && next == NULL) || (more ? cJSON_AddStringToObject(o, "next", next)
                                         : cJSON_AddNullToObject(o, "next")) == NULL))
        err = CHAT_ERR_NOMEM;
    free(next);
    if (err != CHAT_OK) {
        cJSON_Delete(o);
        api_error_from(req, resp, err, "reading blocks");
        return;
    }
    api_json(resp, 200, o);
}

/* Whether user blocked target (*found), and when (*created). */
static chat_err_t block_created(mongoc_collection_t *col, const char *tenant, const char *user,
                                const char *target, bool *found, int64_t *created)
{
    bson_t *filter =
        BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user), "target", BCON_UTF8(target));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, NULL, NULL);
    const bson_t *doc;
    *found = mongoc_cursor_next(cursor, &doc);
    if (*found)
        *created = chat_bson_int64_or(doc, "created", 0);
    bson_error_t error;
    chat_err_t err = mongoc_cursor_error(cursor, &error) ? chat_store_err(&error) : CHAT_OK;
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    return err;
}

/* POST /v1/users/{user}/blocks {user: target} -> 201 the block; 200 if it existed already. */
static void blocks_add(const api_req_t *req, api_resp_t *resp)
{
    static const char *const allowed[] = {"user", NULL};
    const char *user = path_user(req, resp, 0, "user"), *target = NULL;
    if (user == NULL || !api_body_fields(req, resp, allowed) ||
        !api_body_string(req, resp, "user", true, &target))
        return;
    if (!chat_name_user_valid(target) || strcmp(target, CHAT_SYSTEM_USER) == 0) {
        api_error(req, resp, 400, "user is not a valid user id");
        return;
    }
    if (strcmp(target, user) == 0) {
        api_error(req, resp, 400, "a user cannot block themselves");
        return;
    }
    char id[BLOCK_ID_MAX];
    snprintf(id, sizeof id, "%s/%s/%s", req->tenant, user, target);
    int64_t now = chat_clock_wall_ms();
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(req->tenant), "user", BCON_UTF8(user),
                 "target", BCON_UTF8(target), "created", BCON_INT64(now));
    api_ctx_t *ctx = req->ctx;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, BLOCKS_COLLECTION);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    int status = 201;
    if (!mongoc_collection_insert_one(col, doc, NULL, NULL, &error))
        err = chat_store_err(&error);
    if (err == CHAT_ERR_DUPLICATE) { /* blocked already: answer the existing block */
        bool found = false;
        err = block_created(col, req->tenant, user, target, &found, &now);
        if (err == CHAT_OK && found) {
            status = 200;
        } else if (err == CHAT_OK) {
            /* Ids may hold '/': "a/b" blocking "c" and "a" blocking "b/c" make the same _id.
             * The unique (tenant, user, target) is the block's identity: this one gets an
             * ObjectId. */
            bson_t *again = BCON_NEW("tenant", BCON_UTF8(req->tenant), "user", BCON_UTF8(user),
                                     "target", BCON_UTF8(target), "created", BCON_INT64(now));
            if (!mongoc_collection_insert_one(col, again, NULL, NULL, &error))
                err = chat_store_err(&error);
            bson_destroy(again);
        }
    }
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(doc);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "writing the block");
        return;
    }
    cJSON *o = block_json(user, target, now);
    if (o == NULL) {
        api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the block");
        return;
    }
    api_json(resp, status, o);
}

/* DELETE /v1/users/{user}/blocks/{target} -> 204; 404 if user had not blocked target. */
static void blocks_remove(const api_req_t *req, api_resp_t *resp)
{
    const char *user = path_user(req, resp, 0, "user");
    const char *target = user != NULL ? path_user(req, resp, 1, "target") : NULL;
    if (target == NULL)
        return;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant), "user", BCON_UTF8(user), "target",
                              BCON_UTF8(target));
    api_ctx_t *ctx = req->ctx;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, BLOCKS_COLLECTION);
    bson_t reply;
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_delete_one(col, filter, NULL, &reply, &error))
        err = chat_store_err(&error);
    else if (chat_bson_int64_or(&reply, "deletedCount", 0) == 0)
        err = CHAT_ERR_NOT_FOUND;
    bson_destroy(&reply);
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(filter);
    if (err == CHAT_ERR_NOT_FOUND)
        api_error(req, resp, 404, "block not found");
    else if (err != CHAT_OK)
        api_error_from(req, resp, err, "removing the block");
    else
        resp->status = 204; /* no body */
}

chat_err_t api_blocks_register(api_ctx_t *ctx)
{
    chat_err_t err = chat_store_ensure_indexes(ctx->store, block_indexes,
                                               sizeof block_indexes / sizeof block_indexes[0]);
    if (err == CHAT_OK)
        err = api_route(ctx, API_GET, "/users/{user}/blocks", blocks_list);
    if (err == CHAT_OK)
        err = api_route(ctx, API_POST, "/users/{user}/blocks", blocks_add);
    if (err == CHAT_OK)
        err = api_route(ctx, API_DELETE, "/users/{user}/blocks/{target}", blocks_remove);
    return err;
}
