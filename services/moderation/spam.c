/* Spam windows in Redis (see spam.h). Per rule and message: ZADD the message id at its ts,
 * drop what fell out of the window, count the window up to the message, refresh the expiry. */
#include "services/moderation/spam.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#define RATE_WINDOW_MS 60000
#define CMDS_PER_RULE 4

/* Key of a window: chat:mod:<what>:{tenant}:<user>[:<text hash>]; the braces keep one
 * tenant's keys in one Redis Cluster slot. */
static int window_key(char *buf, size_t len, const char *what, const mod_spam_item_t *it)
{
    if (strcmp(what, "rate") == 0)
        return snprintf(buf, len, "chat:mod:rate:{%s}:%s", it->tenant, it->user);
    unsigned char md[SHA256_DIGEST_LENGTH];
    const char *t = it->norm != NULL ? it->norm : "";
    SHA256((const unsigned char *)t, strlen(t), md);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return snprintf(buf, len, "chat:mod:rep:{%s}:%s:%s", it->tenant, it->user, hex);
}

/* Queues the four commands of one window. */
static chat_err_t queue_window(chat_redis_t *r, const char *key, const mod_spam_item_t *it,
                               int64_t window_ms)
{
    char ts[24], low[24], high[24], ttl[24];
    snprintf(ts, sizeof ts, "%" PRId64, it->ts);
    snprintf(low, sizeof low, "(%" PRId64, it->ts - window_ms);
    snprintf(high, sizeof high, "%" PRId64, it->ts - window_ms);
    snprintf(ttl, sizeof ttl, "%" PRId64, window_ms + 60000);
    const char *zadd[] = {"ZADD", key, ts, it->id};
    const char *trim[] = {"ZREMRANGEBYSCORE", key, "-inf", high};
    const char *count[] = {"ZCOUNT", key, low, ts};
    const char *expire[] = {"PEXPIRE", key, ttl};
    chat_err_t err = chat_redis_append_argv(r, 4, zadd, NULL);
    if (err == CHAT_OK)
        err = chat_redis_append_argv(r, 4, trim, NULL);
    if (err == CHAT_OK)
        err = chat_redis_append_argv(r, 4, count, NULL);
    if (err == CHAT_OK)
        err = chat_redis_append_argv(r, 3, expire, NULL);
    return err;
}

typedef struct pending {
    size_t item;
    bool rate; /* else repeat */
} pending_t;

chat_err_t mod_spam_check(chat_redis_t *redis, mod_spam_item_t *items, size_t n)
{
    pending_t *p = calloc(n * 2 + 1, sizeof *p);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    size_t np = 0;
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        mod_spam_item_t *it = &items[i];
        it->repeat_fired = it->rate_fired = false;
        char key[512];
        if (it->spam->rate.per_min > 0 &&
            window_key(key, sizeof key, "rate", it) < (int)sizeof key) {
            if ((err = queue_window(redis, key, it, RATE_WINDOW_MS)) == CHAT_OK)
                p[np++] = (pending_t){i, true};
        }
        if (err == CHAT_OK && it->spam->repeat.count > 0 &&
            window_key(key, sizeof key, "repeat", it) < (int)sizeof key) {
            if ((err = queue_window(redis, key, it, it->spam->repeat.window_s * 1000)) == CHAT_OK)
                p[np++] = (pending_t){i, false};
        }
    }
    /* Every queued reply is read, even after a failure, so the connection stays in step. */
    for (size_t j = 0; j < np; j++) {
        for (int k = 0; k < CMDS_PER_RULE; k++) {
            redisReply *reply = NULL;
            chat_err_t rerr = chat_redis_reply(redis, &reply);
            if (rerr == CHAT_OK && (reply == NULL || reply->type == REDIS_REPLY_ERROR))
                rerr = CHAT_ERR_REDIS;
            if (err == CHAT_OK)
                err = rerr;
            if (rerr == CHAT_OK && k == 2 && reply->type == REDIS_REPLY_INTEGER) {
                mod_spam_item_t *it = &items[p[j].item];
                if (p[j].rate)
                    it->rate_fired = reply->integer > it->spam->rate.per_min;
                else
                    it->repeat_fired = reply->integer >= it->spam->repeat.count;
            }
            if (reply != NULL)
                freeReplyObject(reply);
        }
    }
    free(p);
    return err;
}
