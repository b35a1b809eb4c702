/* GET /v1/stats: the tenant's counts. connections: the distinct users online now in any room
 * of the tenant (the gateways' online sets in Redis, chat_registry_key; a user counts once
 * however many sockets and rooms; a socket that joined no room is not counted): the keys are
 * found with SCAN, which walks Redis's whole keyspace, so the walk is bounded. messages_today:
 * messages stored since UTC midnight (notices included); rooms: private rooms not deleted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/contract.h"
#include "common/json.h"
#include "common/log.h"
#include "common/strmap.h"
#include "services/api/api.h"

#define STATS_SCAN_CALLS_MAX 2000 /* SCAN steps of COUNT 1000 one call may take */
#define MS_PER_DAY INT64_C(86400000)

/* Adds the users of one online set (members "<gateway>:<user>" with an expiry score after
 * now) to users. */
static chat_err_t online_users(chat_redis_t *redis, const char *key, int64_t now,
                               chat_strmap_t *users)
{
    chat_err_t err = CHAT_OK;
    redisReply *r =
        chat_redis_command(redis, &err, "ZRANGEBYSCORE %s (%lld +inf", key, (long long)now);
    if (err == CHAT_OK && r != NULL && r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *m = r->element[i];
            if (m->type != REDIS_REPLY_STRING)
                continue;
            const char *colon = memchr(m->str, ':', m->len);
            if (colon == NULL)
                continue;
            char user[CHAT_USER_MAX * 4 + 1]; /* characters of up to 4 bytes */
            size_t len = m->len - (size_t)(colon + 1 - m->str);
            if (len == 0 || len >= sizeof user)
                continue;
            memcpy(user, colon + 1, len);
            user[len] = '\0';
            if (chat_strmap_get(users, user) == NULL && !chat_strmap_put(users, user, users))
                err = CHAT_ERR_NOMEM;
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    return err;
}

/* The distinct users online in the tenant's rooms. */
static chat_err_t stats_connections(api_ctx_t *ctx, const char *tenant, int64_t *out)
{
    chat_redis_t *redis = api_redis_take(ctx);
    if (redis == NULL)
        return CHAT_ERR_REDIS;
    char pattern[CHAT_REGISTRY_KEY_MAX + 8];
    snprintf(pattern, sizeof pattern, "chat:room:{%s/*}:online", tenant);
    chat_strmap_t *users = chat_strmap_new();
    if (users == NULL)
        return CHAT_ERR_NOMEM;
    int64_t now = chat_clock_wall_ms();
    char cursor[32] = "0";
    chat_err_t err = CHAT_OK;
    int calls = 0;
    do {
        redisReply *r =
            chat_redis_command(redis, &err, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (err == CHAT_OK && (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                               r->element[0]->type != REDIS_REPLY_STRING))
            err = CHAT_ERR_REDIS;
        if (err == CHAT_OK) {
            snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
            const redisReply *keys = r->element[1];
            for (size_t i = 0; err == CHAT_OK && i < keys->elements; i++)
                if (keys->element[i]->type == REDIS_REPLY_STRING)
                    err = online_users(redis, keys->element[i]->str, now, users);
        }
        if (r != NULL)
            freeReplyObject(r);
    } while (err == CHAT_OK && strcmp(cursor, "0") != 0 && ++calls < STATS_SCAN_CALLS_MAX);
    if (calls >= STATS_SCAN_CALLS_MAX)
        chat_log_warn("stats: connections counted from part of Redis's keyspace",
                      CHAT_F_STR("tenant", tenant));
    *out = (int64_t)chat_strmap_count(users);
    chat_strmap_free(users);
    return err;
}

/* The number of documents of collection that match filter. */
static chat_err_t stats_count(api_ctx_t *ctx, const char *collection, const bson_t *filter,
                              int64_t *out)
{
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, collection);
    bson_error_t error;
    int64_t n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &error);
    chat_err_t err = CHAT_OK;
    if (n < 0) {
        err = chat_store_err(&error);
        chat_log_warn("stats: count failed", CHAT_F_STR("collection", collection),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    *out = n < 0 ? 0 : n;
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    return err;
}

/* GET /v1/stats -> {connections, messages_today, rooms}. */
static void stats_read(const api_req_t *req, api_resp_t *resp)
{
    int64_t connections = 0, messages = 0, rooms = 0;
    int64_t midnight = chat_clock_wall_ms() / MS_PER_DAY * MS_PER_DAY;
    bson_t *today =
        BCON_NEW("tenant", BCON_UTF8(req->tenant), "ts", "{", "$gte", BCON_INT64(midnight), "}");
    bson_t *private = BCON_NEW("tenant", BCON_UTF8(req->tenant), "kind", BCON_UTF8("private"),
                               "deleted", "{", "$ne", BCON_BOOL(true), "}");
    chat_err_t err = stats_connections(req->ctx, req->tenant, &connections);
    const char *what = "counting connections";
    if (err == CHAT_OK && (err = stats_count(req->ctx, "messages", today, &messages)) != CHAT_OK)
        what = "counting messages";
    if (err == CHAT_OK && (err = stats_count(req->ctx, "rooms", private, &rooms)) != CHAT_OK)
        what = "counting rooms";
    bson_destroy(today);
    bson_destroy(private);
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, what);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !chat_json_add_int(o, "connections", connections) ||
        !chat_json_add_int(o, "messages_today", messages) ||
        !chat_json_add_int(o, "rooms", rooms)) {
        cJSON_Delete(o);
        api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the stats");
        return;
    }
    api_json(resp, 200, o);
}

chat_err_t api_stats_register(api_ctx_t *ctx)
{
    return api_route(ctx, API_GET, "/stats", stats_read);
}
