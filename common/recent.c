/* The recent-history write (see recent.h): the transaction's commands built as argument
 * vectors (frames are binary-safe members) and queued on the connection's pipeline. */
#include "common/recent.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"

#define NUM_MAX 24 /* an int64 in decimal, its sign and the NUL */

/* Queues one command; counts it in *queued if it was queued. */
static chat_err_t queue(chat_redis_t *r, size_t *queued, int argc, const char **argv,
                        const size_t *lens)
{
    chat_err_t err = chat_redis_append_argv(r, argc, argv, lens);
    if (err == CHAT_OK)
        (*queued)++;
    return err;
}

/* Queues a command of up to four plain-text arguments. */
static chat_err_t queue_text(chat_redis_t *r, size_t *queued, int argc, const char *a0,
                             const char *a1, const char *a2, const char *a3)
{
    const char *argv[] = {a0, a1, a2, a3};
    size_t lens[4];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return queue(r, queued, argc, argv, lens);
}

/* The ZADD of the marker (unless run_id is NULL) and every entry, as one command. */
static chat_err_t queue_add(chat_redis_t *r, size_t *queued, const char *key, const char *marker,
                            const char *run_id, const chat_recent_entry_t *entries, size_t n,
                            char (*seqs)[NUM_MAX])
{
    size_t head = run_id != NULL ? 4 : 2, argc = head + 2 * n;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (argv != NULL && lens != NULL) {
        argv[0] = "ZADD";
        argv[1] = key;
        if (run_id != NULL) {
            argv[2] = marker;
            argv[3] = run_id;
        }
        for (size_t i = 0; i < head; i++)
            lens[i] = strlen(argv[i]);
        for (size_t i = 0; i < n; i++) {
            argv[head + 2 * i] = seqs[i];
            lens[head + 2 * i] = strlen(seqs[i]);
            argv[head + 1 + 2 * i] = entries[i].frame;
            lens[head + 1 + 2 * i] = entries[i].len;
        }
        err = queue(r, queued, (int)argc, argv, lens);
    }
    free(argv);
    free(lens);
    return err;
}

/* Queues the transaction's body after MULTI: marker out (if renewed), runs out, everything
 * in, trim, expiry. */
static chat_err_t queue_body(chat_redis_t *r, size_t *queued, const char *key, const char *run_id,
                             const chat_recent_entry_t *entries, size_t n, int64_t max,
                             int64_t ttl_ms, char (*seqs)[NUM_MAX])
{
    char marker[NUM_MAX], keep[NUM_MAX], ttl[NUM_MAX];
    snprintf(marker, sizeof marker, "%d", CHAT_RECENT_MARKER_SCORE);
    snprintf(keep, sizeof keep, "%" PRId64, -(max + 1)); /* rank 0 is the marker */
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    chat_err_t err = CHAT_OK;
    if (run_id != NULL)
        err = queue_text(r, queued, 4, "ZREMRANGEBYSCORE", key, marker, marker);
    for (size_t lo = 0; err == CHAT_OK && lo < n;) {
        size_t hi = lo;
        while (hi + 1 < n && entries[hi + 1].seq == entries[hi].seq + 1)
            hi++;
        err = queue_text(r, queued, 4, "ZREMRANGEBYSCORE", key, seqs[lo], seqs[hi]);
        lo = hi + 1;
    }
    if (err == CHAT_OK)
        err = queue_add(r, queued, key, marker, run_id, entries, n, seqs);
    if (err == CHAT_OK)
        err = queue_text(r, queued, 4, "ZREMRANGEBYRANK", key, "1", keep);
    if (err == CHAT_OK)
        err = queue_text(r, queued, 3, "PEXPIRE", key, ttl, NULL);
    return err;
}

chat_err_t chat_recent_queue_merge(chat_redis_t *r, const char *key, const char *run_id,
                                   const chat_recent_entry_t *entries, size_t n, int64_t max,
                                   int64_t ttl_ms, size_t *replies)
{
    *replies = 0;
    if (max < 1 || ttl_ms < 1 || key == NULL || (n > 0 && entries == NULL) ||
        (n == 0 && run_id == NULL))
        return CHAT_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (entries[i].seq <= 0 || (i > 0 && entries[i].seq <= entries[i - 1].seq))
            return CHAT_ERR_INVALID;
    char(*seqs)[NUM_MAX] = calloc(n > 0 ? n : 1, sizeof *seqs);
    if (seqs == NULL)
        return CHAT_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        snprintf(seqs[i], sizeof seqs[i], "%" PRId64, entries[i].seq);
    chat_err_t err = queue_text(r, replies, 1, "MULTI", NULL, NULL, NULL);
    if (err == CHAT_OK)
        err = queue_body(r, replies, key, run_id, entries, n, max, ttl_ms, seqs);
    if (err == CHAT_OK) {
        err = queue_text(r, replies, 1, "EXEC", NULL, NULL, NULL);
    } else if (*replies > 0 && queue_text(r, replies, 1, "DISCARD", NULL, NULL, NULL) != CHAT_OK) {
        /* The transaction stays open on the connection: the next commands would only be
         * QUEUED. Out of memory twice in a row; say so. */
        chat_log_error("redis transaction left open (out of memory)", CHAT_F_STR("key", key));
    }
    free(seqs);
    return err;
}

chat_err_t chat_recent_merge_result(chat_redis_t *r, size_t replies, bool *applied)
{
    *applied = false;
    if (replies == 0)
        return CHAT_ERR_INVALID;
    chat_err_t result = CHAT_OK;
    for (size_t i = 0; i < replies; i++) {
        redisReply *reply = NULL;
        chat_err_t err = chat_redis_reply(r, &reply);
        if (err != CHAT_OK) {
            result = err; /* logged by common/redis; the rest is read all the same */
            continue;
        }
        if (i + 1 == replies && reply->type == REDIS_REPLY_ARRAY) {
            for (size_t k = 0; k < reply->elements; k++) {
                if (reply->element[k]->type != REDIS_REPLY_ERROR)
                    continue;
                chat_log_error("redis recent-history write failed",
                               CHAT_F_STR("error", reply->element[k]->str));
                result = CHAT_ERR_REDIS;
            }
            *applied = result == CHAT_OK;
        } else if (i + 1 == replies && reply->type != REDIS_REPLY_NIL) {
            result = CHAT_ERR_REDIS; /* not the answer of an EXEC: the pipeline is out of step */
        }
        freeReplyObject(reply);
    }
    if (result != CHAT_OK)
        *applied = false;
    return result;
}
