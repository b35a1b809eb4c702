/* Mutes in Redis (see mutes.h): one hash per tenant, field user = until (ms since the epoch).
 * A set is one script, so that a replayed or older decision never shortens a mute and the
 * hash lives as long as its longest mute; a check is one HMGET for any number of users. */
#include "common/mutes.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* KEYS[1] the tenant's hash; ARGV[1] the user, ARGV[2] until. A mute that already ended changes
 * nothing (it must not expire the hash, which holds the others' mutes too); a later until
 * replaces an earlier one; the hash expires at its latest until. Returns 1 if the user's until
 * moved, else 0. */
static const char set_script[] =
    "local u = tonumber(ARGV[2]) "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "if u <= now then return 0 end "
    "local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0') "
    "local moved = 0 "
    "if u > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) moved = 1 end "
    "local ttl = redis.call('PTTL', KEYS[1]) "
    "if ttl < 0 or now + ttl < u then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end "
    "return moved";

int chat_mute_key(const char *tenant, char *buf, size_t len)
{
    if (tenant == NULL || tenant[0] == '\0' || buf == NULL)
        return -1;
    int n = snprintf(buf, len, "chat:mute:{%s}", tenant);
    return n > 0 && (size_t)n < len ? n : -1;
}

/* Room for any valid tenant's key (names.h bounds tenants well below this). */
#define MUTE_KEY_MAX 160

chat_err_t chat_mute_set(chat_redis_t *redis, const char *tenant, const char *user,
                         int64_t until_ms)
{
    char key[MUTE_KEY_MAX], until[24];
    if (redis == NULL || user == NULL || user[0] == '\0' ||
        chat_mute_key(tenant, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    snprintf(until, sizeof until, "%" PRId64, until_ms);
    const char *argv[] = {"EVAL", set_script, "1", key, user, until};
    size_t lens[] = {4, sizeof set_script - 1, 1, strlen(key), strlen(user), strlen(until)};
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command_argv(redis, &err, 6, argv, lens);
    if (reply == NULL) {
        chat_log_warn("mute not written", CHAT_F_STR("tenant", tenant), CHAT_F_STR("user", user),
                      CHAT_F_ERR(err));
        return CHAT_ERR_REDIS;
    }
    freeReplyObject(reply);
    return CHAT_OK;
}

chat_err_t chat_mute_check(chat_redis_t *redis, const char *tenant, const char *const *users,
                           size_t n, int64_t now_ms, bool *muted)
{
    char key[MUTE_KEY_MAX];
    if (n == 0)
        return CHAT_OK;
    if (redis == NULL || users == NULL || muted == NULL || n > INT_MAX - 2 ||
        chat_mute_key(tenant, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    const char **argv = calloc(n + 2, sizeof *argv);
    size_t *lens = calloc(n + 2, sizeof *lens);
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return CHAT_ERR_NOMEM;
    }
    argv[0] = "HMGET";
    argv[1] = key;
    for (size_t i = 0; i < n; i++)
        argv[i + 2] = users[i];
    for (size_t i = 0; i < n + 2; i++)
        lens[i] = strlen(argv[i]);
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command_argv(redis, &err, (int)(n + 2), argv, lens);
    free(argv);
    free(lens);
    if (reply == NULL)
        return CHAT_ERR_REDIS;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
        chat_log_warn("unexpected reply to HMGET of mutes", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("type", reply->type));
        freeReplyObject(reply);
        return CHAT_ERR_REDIS;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];
        /* A field that is not a number is no mute: only chat_mute_set writes the hash. */
        int64_t until = e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
        muted[i] = until > now_ms;
    }
    freeReplyObject(reply);
    return CHAT_OK;
}
