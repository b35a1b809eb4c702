/* /v1/users/{user}/notifications: what notifications know of a user as the tenant sees it (the
 * address digests go to, how many push subscriptions the user's browsers made, the user's own
 * push preferences) and the one thing the tenant sets there, the email address
 * (common/notify_store.h; docs/notify.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/names.h"
#include "common/notify_store.h"
#include "common/tenant_settings.h"
#include "services/api/api.h"
#include "services/api/settings.h"
#include "services/api/webhooks.h"

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

/* tenant/user's stored preferences as [{room, mode}] by room (at most API_NOTIFY_PREFS_MAX):
 * one query of push_prefs. */
static chat_err_t prefs_read(api_ctx_t *ctx, const char *tenant, const char *user, cJSON *prefs)
{
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user));
    bson_t *opts =
        BCON_NEW("sort", "{", "room", BCON_INT32(1), "}", "limit", BCON_INT64(API_NOTIFY_PREFS_MAX),
                 "projection", "{", "room", BCON_INT32(1), "mode", BCON_INT32(1), "}");
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col =
        chat_store_collection(ctx->store, client, CHAT_PUSH_PREFS_COLLECTION);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc)) {
        const char *room = chat_bson_str(doc, "room"), *mode = chat_bson_str(doc, "mode");
        chat_push_mode_t m = chat_push_mode_parse(mode);
        if (room == NULL || m == CHAT_PUSH_MODE_DEFAULT)
            continue; /* not a preference the gateway writes */
        cJSON *p = cJSON_CreateObject();
        if (p == NULL || cJSON_AddStringToObject(p, "room", room) == NULL ||
            cJSON_AddStringToObject(p, "mode", chat_push_mode_name(m)) == NULL) {
            cJSON_Delete(p);
            err = CHAT_ERR_NOMEM;
        } else {
            cJSON_AddItemToArray(prefs, p);
        }
    }
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cursor, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("push preferences not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("user", user), CHAT_F_INT("code", error.code),
                      CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(opts);
    bson_destroy(filter);
    return err;
}

/* Answers {user, email, push_subscriptions, prefs} of tenant/user. */
static void notifications_answer(const api_req_t *req, api_resp_t *resp, const char *user)
{
    char *email = NULL;
    chat_push_sub_t *subs = NULL;
    size_t nsubs = 0;
    const char *what = "reading the user's address";
    chat_err_t err = chat_user_email_get(req->ctx->store, req->tenant, user, &email);
    if (err == CHAT_OK) {
        what = "reading the user's push subscriptions";
        err = chat_push_subs_list(req->ctx->store, req->tenant, user, &subs, &nsubs);
        chat_push_subs_free(subs, nsubs);
    }
    cJSON *o = err == CHAT_OK ? cJSON_CreateObject() : NULL;
    cJSON *prefs = NULL;
    if (err == CHAT_OK) {
        bool ok = o != NULL && cJSON_AddStringToObject(o, "user", user) != NULL &&
                  (email != NULL ? cJSON_AddStringToObject(o, "email", email)
                                 : cJSON_AddNullToObject(o, "email")) != NULL &&
                  cJSON_AddNumberToObject(o, "push_subscriptions", (double)nsubs) != NULL &&
                  (prefs = cJSON_AddArrayToObject(o, "prefs")) != NULL;
        what = "reading the user's preferences";
        err = ok ? prefs_read(req->ctx, req->tenant, user, prefs) : CHAT_ERR_NOMEM;
    }
    free(email);
    if (err != CHAT_OK) {
        cJSON_Delete(o);
        api_error_from(req, resp, err, what);
        return;
    }
    api_json(resp, 200, o);
}

/* GET /v1/users/{user}/notifications -> {user, email, push_subscriptions, prefs}. A user that
 * notifications know nothing of answers the same with null, 0 and []. */
static void notifications_get(const api_req_t *req, api_resp_t *resp)
{
    const char *user = path_user(req, resp);
    if (user != NULL)
        notifications_answer(req, resp, user);
}

/* PATCH /v1/users/{user}/notifications {email: address | null} -> the same view as GET. */
static void notifications_patch(const api_req_t *req, api_resp_t *resp)
{
    static const char *const allowed[] = {"email", NULL};
    const char *user = path_user(req, resp);
    if (user == NULL)
        return;
    if (req->body == NULL) {
        api_error(req, resp, 400, "a JSON object is required");
        return;
    }
    if (!api_body_fields(req, resp, allowed))
        return;
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(req->body, "email");
    if (email == NULL) {
        api_error(req, resp, 400, "missing field: email");
        return;
    }
    if (!cJSON_IsNull(email) &&
        !(cJSON_IsString(email) && chat_settings_email_valid(email->valuestring))) {
        api_error(req, resp, 400, "email must be an email address (or null)");
        return;
    }
    chat_err_t err =
        chat_user_email_set(req->ctx->store, req->tenant, user,
                            cJSON_IsNull(email) ? NULL : email->valuestring, chat_clock_wall_ms());
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "writing the user's address");
        return;
    }
    notifications_answer(req, resp, user);
}

chat_err_t api_notifications_register(api_ctx_t *ctx)
{
    chat_err_t err = api_route(ctx, API_GET, "/users/{user}/notifications", notifications_get);
    if (err == CHAT_OK)
        err = api_route(ctx, API_PATCH, "/users/{user}/notifications", notifications_patch);
    return err;
}
