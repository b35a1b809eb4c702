/* The recent-history writer of the message service (see message_recent.h). */
#include "services/message/message_recent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"
#include "services/message/room_summary.h"
#include "common/recent.h"
#include "common/redis.h"

struct message_recent {
    chat_redis_t *redis;
    int64_t max;
    int64_t ttl_ms;
    char last_error[192];
};

chat_err_t message_recent_open(const char *url, int timeout_ms, int64_t max, int64_t ttl_ms,
                               message_recent_t **out)
{
    *out = NULL;
    if (max < 0 || ttl_ms < 1)
        return CHAT_ERR_INVALID;
    message_recent_t *mr = calloc(1, sizeof *mr);
    if (mr == NULL)
        return CHAT_ERR_NOMEM;
    mr->max = max;
    mr->ttl_ms = ttl_ms;
    chat_err_t err = chat_redis_connect(url, timeout_ms, &mr->redis);
    if (err != CHAT_OK) {
        free(mr);
        return err;
    }
    *out = mr;
    return CHAT_OK;
}

void message_recent_close(message_recent_t *mr)
{
    if (mr == NULL)
        return;
    chat_redis_free(mr->redis);
    free(mr);
}

static void fail(message_recent_t *mr, const message_recent_room_t *room, const char *what)
{
    snprintf(mr->last_error, sizeof mr->last_error, "%s (%s/%s)", what,
             room != NULL ? room->tenant : "-", room != NULL ? room->room : "-");
}

/* Queues one room's write: the merge, or with a bound of 0 the key's deletion. *replies gets
 * how many replies it queued. */
static chat_err_t queue_room(message_recent_t *mr, const char *run_id,
                             const message_recent_room_t *room, size_t *replies, bool *useq_set)
{
    *useq_set = false;
    char key[CHAT_RECENT_KEY_MAX];
    *replies = 0;
    if (chat_recent_key(room->tenant, room->room, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    if (mr->max > 0) {
        chat_err_t err =
            chat_recent_queue_merge(mr->redis, key, room->fresh ? run_id : NULL, room->entries,
                                    room->n, mr->max, mr->ttl_ms, replies);
        if (err != CHAT_OK || !room->has_useq)
            return err;
        /* After the frames of the changes: a reader that gets this useq gets them too. */
        char ukey[CHAT_RECENT_KEY_MAX];
        if (chat_useq_key(room->tenant, room->room, ukey, sizeof ukey) < 0)
            return CHAT_ERR_INVALID;
        char value[CHAT_USEQ_VALUE_MAX];
        if (chat_useq_value(run_id, room->useq, value, sizeof value) < 0)
            return CHAT_ERR_INVALID;
        err = chat_redis_append(mr->redis, "SET %s %s PX %lld", ukey, value, (long long)mr->ttl_ms);
        *useq_set = err == CHAT_OK;
        *replies += err == CHAT_OK;
        return err;
    }
    chat_err_t err = chat_redis_append(mr->redis, "DEL %s", key);
    *replies = err == CHAT_OK;
    return err;
}

/* Reads one room's replies (every one of them). */
static chat_err_t read_room(message_recent_t *mr, size_t replies, bool useq_set)
{
    if (mr->max > 0) {
        bool applied = false;
        size_t merge = useq_set ? replies - 1 : replies;
        chat_err_t err = chat_recent_merge_result(mr->redis, merge, &applied);
        if (useq_set) {
            redisReply *reply = NULL;
            chat_err_t uerr = chat_redis_reply(mr->redis, &reply);
            if (uerr == CHAT_OK && reply->type == REDIS_REPLY_ERROR)
                uerr = CHAT_ERR_REDIS;
            if (reply != NULL)
                freeReplyObject(reply);
            if (err == CHAT_OK)
                err = uerr;
        }
        /* Nothing is WATCHed on this connection: a discarded transaction is out of step. */
        return err == CHAT_OK && !applied ? CHAT_ERR_REDIS : err;
    }
    redisReply *reply = NULL;
    chat_err_t err = chat_redis_reply(mr->redis, &reply);
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}

/* The port's write: every room queued, then every reply read, in one round trip. */
static chat_err_t recent_write(void *ctx, const message_recent_room_t *rooms, size_t n)
{
    message_recent_t *mr = ctx;
    mr->last_error[0] = '\0';
    const char *run_id = NULL;
    chat_err_t err = chat_redis_run_id(mr->redis, &run_id);
    if (err != CHAT_OK) {
        fail(mr, NULL, "redis unreachable");
        return err;
    }
    size_t *replies = calloc(n > 0 ? n : 1, sizeof *replies);
    bool *useq_set = calloc(n > 0 ? n : 1, sizeof *useq_set);
    bool *summary = calloc(n > 0 ? n : 1, sizeof *summary);
    if (replies == NULL || useq_set == NULL || summary == NULL) {
        free(replies);
        free(useq_set);
        free(summary);
        return CHAT_ERR_NOMEM;
    }
    size_t queued = 0;
    for (; err == CHAT_OK && queued < n; queued++) {
        err = queue_room(mr, run_id, &rooms[queued], &replies[queued], &useq_set[queued]);
        if (err != CHAT_OK)
            fail(mr, &rooms[queued], "recent history not queued");
        /* The room list's summary (room_summary.h) rides along: new messages, changes
         * of the last one, useqs. */
        if (err == CHAT_OK && (rooms[queued].n > 0 || rooms[queued].has_useq)) {
            chat_err_t serr = message_room_summary_queue(mr->redis, &rooms[queued]);
            summary[queued] = serr == CHAT_OK;
            if (serr != CHAT_OK && serr != CHAT_ERR_INVALID)
                err = serr;
        }
    }
    /* What was queued is read in any case, in the order queued, so the connection stays in
     * step. */
    for (size_t i = 0; i < queued; i++) {
        chat_err_t rerr = replies[i] > 0 ? read_room(mr, replies[i], useq_set[i]) : CHAT_OK;
        if (rerr != CHAT_OK && err == CHAT_OK) {
            err = rerr;
            fail(mr, &rooms[i], "recent history not written");
        }
        rerr = summary[i] ? message_room_summary_result(mr->redis) : CHAT_OK;
        if (rerr != CHAT_OK && err == CHAT_OK) {
            err = rerr;
            fail(mr, &rooms[i], "room summary not written");
        }
    }
    free(summary);
    free(replies);
    free(useq_set);
    return err;
}

static const char *recent_last_error(void *ctx)
{
    message_recent_t *mr = ctx;
    return mr->last_error[0] != '\0' ? mr->last_error : NULL;
}

void message_recent_port(message_recent_t *mr, message_recent_port_t *port)
{
    *port =
        (message_recent_port_t){.ctx = mr, .write = recent_write, .last_error = recent_last_error};
}
