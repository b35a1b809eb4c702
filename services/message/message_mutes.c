/* The mutes reader of the message service (see message_mutes.h). */
#include "services/message/message_mutes.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/mutes.h"
#include "common/redis.h"

struct message_mutes {
    chat_redis_t *redis;
    char last_error[160];
};

chat_err_t message_mutes_open(const char *url, int timeout_ms, message_mutes_t **out)
{
    *out = NULL;
    message_mutes_t *mm = calloc(1, sizeof *mm);
    if (mm == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = chat_redis_connect(url, timeout_ms, &mm->redis);
    if (err != CHAT_OK) {
        free(mm);
        return err;
    }
    *out = mm;
    return CHAT_OK;
}

void message_mutes_close(message_mutes_t *mm)
{
    if (mm == NULL)
        return;
    chat_redis_free(mm->redis);
    free(mm);
}

/* Remembers what failed for the pipeline's retry log; returns err. */
static chat_err_t failed(message_mutes_t *mm, const char *what, const char *tenant, chat_err_t err)
{
    snprintf(mm->last_error, sizeof mm->last_error, "%s of tenant %s: %s", what, tenant,
             chat_err_str(err));
    return err;
}

static chat_err_t mutes_check(void *ctx, const char *tenant, const char *const *users, size_t n,
                              int64_t now_ms, bool *muted)
{
    message_mutes_t *mm = ctx;
    chat_err_t err = chat_mute_check(mm->redis, tenant, users, n, now_ms, muted);
    return err == CHAT_OK ? CHAT_OK : failed(mm, "HMGET of mutes", tenant, err);
}

/* The tenant's hash exists while any of its mutes lasts (it expires with the last one). */
static chat_err_t mutes_tenant_has(void *ctx, const char *tenant, bool *has)
{
    message_mutes_t *mm = ctx;
    char key[160];
    *has = true;
    if (chat_mute_key(tenant, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command(mm->redis, &err, "EXISTS %s", key);
    if (reply == NULL)
        return failed(mm, "EXISTS of mutes", tenant, err);
    *has = reply->type != REDIS_REPLY_INTEGER || reply->integer != 0;
    freeReplyObject(reply);
    return CHAT_OK;
}

static const char *mutes_last_error(void *ctx)
{
    message_mutes_t *mm = ctx;
    return mm->last_error[0] != '\0' ? mm->last_error : NULL;
}

void message_mutes_port(message_mutes_t *mm, message_mutes_port_t *port)
{
    *port = (message_mutes_port_t){.ctx = mm,
                                   .check = mutes_check,
                                   .tenant_has_mutes = mutes_tenant_has,
                                   .last_error = mutes_last_error};
}
