/* The erase job of DELETE /v1/users/{user} (GDPR): the user's private memberships end (each a
 * member_removed notice that cuts live sessions), every message of theirs becomes deleted
 * through a `delete` event from "system" in the room's stream (ordered and resumable like any
 * change; the message service applies them, this job re-reads MongoDB until none is left),
 * then their read marks, push subscriptions, push preferences and contacts
 * (common/notify_store.h), room list entries (and the Redis set of known rooms) and blocks by
 * or of them go. Every step is idempotent: a re-run redoes what is left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/log.h"
#include "common/names.h"
#include "common/notify_store.h"
#include "services/api/jobs.h"

#define ERASE_BATCH 500
#define ERASE_PASSES 3             /* produce-and-verify rounds before the job fails */
#define ERASE_VERIFY_WAIT_MS 60000 /* how long a round waits for the deletes to be applied */

typedef struct erase {
    api_job_t *job;
    api_ctx_t *ctx;
    const char *tenant;
    const char *user;
    mongoc_client_t *client;
    int64_t done, total;
    char *error;
    size_t errlen;
} erase_t;

/* Records progress; CHAT_ERR_STOPPED if the job must stop. */
static chat_err_t erase_step(erase_t *e, int64_t n)
{
    e->done += n;
    if (e->done > e->total)
        e->total = e->done;
    return api_job_progress(e->job, e->done, e->total) ? CHAT_OK : CHAT_ERR_STOPPED;
}

/* The user's messages not deleted yet (after room/seq when after_room is set). */
static bson_t *messages_filter(const erase_t *e, const char *after_room, int64_t after_seq)
{
    bson_t *f = BCON_NEW("tenant", BCON_UTF8(e->tenant), "from", BCON_UTF8(e->user), "deleted", "{",
                         "$ne", BCON_BOOL(true), "}");
    if (after_room != NULL)
        api_filter_after_room_seq(f, after_room, after_seq);
    return f;
}

static chat_err_t count(erase_t *e, const char *collection, const bson_t *filter, int64_t *n)
{
    mongoc_collection_t *col = chat_store_collection(e->ctx->store, e->client, collection);
    bson_error_t error;
    *n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &error);
    mongoc_collection_destroy(col);
    if (*n < 0) {
        *n = 0;
        snprintf(e->error, e->errlen, "%s could not be counted: %s", collection, error.message);
        return chat_store_err(&error);
    }
    return CHAT_OK;
}

/* Produces the delete of message id in room as "system". The rid makes a repeat (a re-run
 * of the job) recognisable to the message service. */
static chat_err_t delete_produce(erase_t *e, const char *room, const char *id, const char *conn)
{
    char rid[8 + CHAT_MESSAGE_ID_LEN + 1];
    snprintf(rid, sizeof rid, "erase:%s", id);
    chat_event_t ev = {.type = CHAT_EV_DELETE,
                       .tenant = e->tenant,
                       .room = room,
                       .user = CHAT_SYSTEM_USER,
                       .id = id,
                       .rid = rid,
                       .origin_conn = conn};
    chat_err_t err = api_event_produce(e->ctx, &ev);
    if (err != CHAT_OK)
        snprintf(e->error, e->errlen, "a delete could not be produced (%s)", chat_err_str(err));
    return err;
}

/* One round: a delete for every message of the user not deleted yet, a batch at a time
 * (one origin conn per batch). *produced gets how many. */
static chat_err_t messages_round(erase_t *e, int64_t *produced)
{
    *produced = 0;
    mongoc_collection_t *col = chat_store_collection(e->ctx->store, e->client, "messages");
    bson_t *opts = BCON_NEW("sort", "{", "room", BCON_INT32(1), "seq", BCON_INT32(1), "}", "limit",
                            BCON_INT64(ERASE_BATCH), "projection", "{", "room", BCON_INT32(1),
                            "seq", BCON_INT32(1), "}");
    char last_room[CHAT_ROOM_MAX + 1] = "";
    int64_t last_seq = 0;
    bool positioned = false;
    chat_err_t err = CHAT_OK;
    for (;;) {
        char conn[CHAT_ORIGIN_CONN_MAX];
        api_origin_conn_new(e->ctx, conn, sizeof conn);
        bson_t *filter = messages_filter(e, positioned ? last_room : NULL, last_seq);
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
        const bson_t *doc;
        int64_t fetched = 0, n = 0;
        while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc)) {
            fetched++;
            const char *room = chat_bson_str(doc, "room");
            int64_t seq;
            char id[25];
            if (room == NULL || !chat_bson_int64(doc, "seq", &seq) ||
                !chat_bson_message_id(doc, id) || !chat_name_room_valid(room))
                continue;
            snprintf(last_room, sizeof last_room, "%s", room);
            last_seq = seq;
            positioned = true;
            err = delete_produce(e, room, id, conn);
            n += err == CHAT_OK;
        }
        bson_error_t error;
        if (err == CHAT_OK && mongoc_cursor_error(cursor, &error)) {
            err = chat_store_err(&error);
            snprintf(e->error, e->errlen, "messages could not be read: %s", error.message);
        }
        mongoc_cursor_destroy(cursor);
        bson_destroy(filter);
        *produced += n;
        if (err == CHAT_OK)
            err = erase_step(e, n);
        if (err != CHAT_OK || fetched < ERASE_BATCH || !positioned)
            break;
    }
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    return err;
}

/* Waits until the message service applied the deletes: *left = the user's messages still
 * not deleted after at most ERASE_VERIFY_WAIT_MS. */
static chat_err_t messages_verify(erase_t *e, int64_t *left)
{
    bson_t *filter = messages_filter(e, NULL, 0);
    int64_t deadline = chat_clock_mono_ms() + ERASE_VERIFY_WAIT_MS;
    chat_err_t err;
    for (;;) {
        err = count(e, "messages", filter, left);
        if (err != CHAT_OK || *left == 0 || chat_clock_mono_ms() >= deadline)
            break;
        if ((err = erase_step(e, 0)) != CHAT_OK) /* keeps the lease */
            break;
        chat_clock_sleep_ms(500);
    }
    bson_destroy(filter);
    return err;
}

static chat_err_t erase_messages(erase_t *e)
{
    int64_t left = 0;
    chat_err_t err = CHAT_OK;
    for (int pass = 0; err == CHAT_OK && pass < ERASE_PASSES; pass++) {
        int64_t produced;
        err = messages_round(e, &produced);
        if (err == CHAT_OK)
            err = messages_verify(e, &left);
        if (err == CHAT_OK && left == 0)
            return CHAT_OK;
        if (err == CHAT_OK)
            chat_log_warn("erase: messages not deleted yet, producing their deletes again",
                          CHAT_F_STR("tenant", e->tenant), CHAT_F_STR("job", api_job_id(e->job)),
                          CHAT_F_INT("left", left));
    }
    if (err == CHAT_OK) {
        snprintf(e->error, e->errlen, "%lld messages could not be deleted", (long long)left);
        err = CHAT_ERR_TIMEOUT;
    }
    return err;
}

/* Ends every private membership of the user (api_member_remove: members, user_rooms, the
 * Redis set, the member_removed notice that cuts live sessions). */
static chat_err_t erase_memberships(erase_t *e)
{
    mongoc_collection_t *col = chat_store_collection(e->ctx->store, e->client, "members");
    bson_t *opts = BCON_NEW("sort", "{", "room", BCON_INT32(1), "}", "limit",
                            BCON_INT64(ERASE_BATCH), "projection", "{", "room", BCON_INT32(1), "}");
    char last[CHAT_ROOM_MAX + 1] = "";
    chat_err_t err = CHAT_OK;
    for (;;) {
        bson_t *filter = BCON_NEW("tenant", BCON_UTF8(e->tenant), "user", BCON_UTF8(e->user),
                                  "room", "{", "$gt", BCON_UTF8(last), "}");
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
        const bson_t *doc;
        size_t cap = 0, n = 0, fetched = 0;
        char **rooms = NULL;
        while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc)) {
            fetched++;
            const char *room = chat_bson_str(doc, "room");
            if (room == NULL || !chat_name_room_valid(room))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                char **grown = realloc(rooms, cap * sizeof *grown);
                if (grown == NULL) {
                    err = CHAT_ERR_NOMEM;
                    break;
                }
                rooms = grown;
            }
            if ((rooms[n] = strdup(room)) == NULL)
                err = CHAT_ERR_NOMEM;
            else
                n++;
        }
        bson_error_t error;
        if (err == CHAT_OK && mongoc_cursor_error(cursor, &error)) {
            err = chat_store_err(&error);
            snprintf(e->error, e->errlen, "memberships could not be read: %s", error.message);
        }
        mongoc_cursor_destroy(cursor);
        bson_destroy(filter);
        /* The cursor is done before the removals write the collection it read. */
        for (size_t i = 0; i < n; i++) {
            if (err == CHAT_OK) {
                chat_err_t rerr = api_member_remove(e->ctx, e->tenant, rooms[i], e->user);
                if (rerr != CHAT_OK && rerr != CHAT_ERR_NOT_FOUND) {
                    err = rerr;
                    snprintf(e->error, e->errlen, "the membership of room %s could not end (%s)",
                             rooms[i], chat_err_str(rerr));
                } else {
                    err = erase_step(e, 1);
                }
            }
            snprintf(last, sizeof last, "%s", rooms[i]);
            free(rooms[i]);
        }
        free(rooms);
        if (err != CHAT_OK || fetched < ERASE_BATCH)
            break;
    }
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    return err;
}

/* delete_many of filter on collection. */
static chat_err_t remove_all(erase_t *e, const char *collection, const bson_t *filter)
{
    mongoc_collection_t *col = chat_store_collection(e->ctx->store, e->client, collection);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_delete_many(col, filter, NULL, NULL, &error)) {
        err = chat_store_err(&error);
        snprintf(e->error, e->errlen, "%s could not be removed: %s", collection, error.message);
    }
    mongoc_collection_destroy(col);
    return err;
}

/* Read marks, what notifications keep of the user (push subscriptions, preferences, contacts),
 * room list entries and the Redis set, blocks. */
static chat_err_t erase_rest(erase_t *e)
{
    bson_t *mine = BCON_NEW("tenant", BCON_UTF8(e->tenant), "user", BCON_UTF8(e->user));
    bson_t *blocks = BCON_NEW("tenant", BCON_UTF8(e->tenant), "$or", "[", "{", "user",
                              BCON_UTF8(e->user), "}", "{", "target", BCON_UTF8(e->user), "}", "]");
    chat_err_t err = remove_all(e, "reads", mine);
    if (err == CHAT_OK &&
        (err = chat_notify_user_erase(e->ctx->store, e->tenant, e->user)) != CHAT_OK)
        snprintf(e->error, e->errlen, "the user's notification data could not be removed (%s)",
                 chat_err_str(err));
    if (err == CHAT_OK)
        err = remove_all(e, "user_rooms", mine);
    if (err == CHAT_OK) {
        char key[CHAT_USER_ROOMS_KEY_MAX];
        chat_redis_t *redis = api_redis_take(e->ctx);
        if (redis == NULL || chat_user_rooms_key(e->tenant, e->user, key, sizeof key) < 0) {
            err = CHAT_ERR_REDIS;
        } else {
            redisReply *r = chat_redis_command(redis, &err, "DEL %s", key);
            if (r != NULL)
                freeReplyObject(r);
        }
        if (err != CHAT_OK)
            snprintf(e->error, e->errlen, "the user's set of known rooms could not be removed");
    }
    if (err == CHAT_OK)
        err = remove_all(e, "blocks", blocks);
    bson_destroy(mine);
    bson_destroy(blocks);
    return err == CHAT_OK ? erase_step(e, 1) : err;
}

chat_err_t api_erase_run(api_job_t *job, char *error, size_t errlen)
{
    bson_iter_t it;
    const char *user =
        bson_iter_init_find(&it, api_job_params(job), "user") && BSON_ITER_HOLDS_UTF8(&it)
            ? bson_iter_utf8(&it, NULL)
            : NULL;
    if (user == NULL || !chat_name_user_valid(user)) {
        snprintf(error, errlen, "the job names no valid user");
        return CHAT_ERR_INVALID;
    }
    erase_t e = {.job = job,
                 .ctx = api_job_ctx(job),
                 .tenant = api_job_tenant(job),
                 .user = user,
                 .client = api_job_client(job),
                 .error = error,
                 .errlen = errlen};
    bson_t *messages = messages_filter(&e, NULL, 0);
    bson_t *members = BCON_NEW("tenant", BCON_UTF8(e.tenant), "user", BCON_UTF8(user));
    int64_t nmessages = 0, nmembers = 0;
    chat_err_t err = count(&e, "messages", messages, &nmessages);
    if (err == CHAT_OK)
        err = count(&e, "members", members, &nmembers);
    bson_destroy(messages);
    bson_destroy(members);
    e.total = nmessages + nmembers + 1; /* + 1: the rest, at the end */
    if (err == CHAT_OK)
        err = erase_step(&e, 0);
    if (err == CHAT_OK)
        err = erase_memberships(&e);
    if (err == CHAT_OK)
        err = erase_messages(&e);
    if (err == CHAT_OK)
        err = erase_rest(&e);
    return err;
}
