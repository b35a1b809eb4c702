/* How the api tells other services that a tenant's configuration changed: a revision of the
 * tenant in a Redis hash that their instances poll (common/tenant_cache.h) -- moderation's rule
 * sets (chat:rules:rev) and notify's webhooks and settings (chat:notify:rev). The write is
 * retried a few times: the change is stored already, only its announcement is missing. */
#include <unistd.h>

#include "common/log.h"
#include "common/notify_store.h"
#include "services/api/api.h"

#define ANNOUNCE_TRIES 3      /* Redis writes of a change's revision */
#define ANNOUNCE_RETRY_MS 200 /* between them */

chat_err_t api_announce(api_ctx_t *ctx, const char *tenant, api_announce_fn write, int64_t rev)
{
    chat_err_t err = CHAT_ERR_REDIS;
    for (int attempt = 0; attempt < ANNOUNCE_TRIES && err != CHAT_OK; attempt++) {
        if (attempt > 0)
            usleep(ANNOUNCE_RETRY_MS * 1000);
        chat_redis_t *r = api_redis_take(ctx);
        err = r != NULL ? write(r, tenant, rev) : CHAT_ERR_REDIS;
    }
    if (err != CHAT_OK)
        chat_log_warn("a configuration change not announced", CHAT_F_STR("tenant", tenant),
                      CHAT_F_ERR(err));
    return err;
}

/* api_announce_fn of notify's revision, which is a counter (rev unused). */
static chat_err_t notify_bump(chat_redis_t *r, const char *tenant, int64_t rev)
{
    (void)rev;
    return chat_notify_rev_bump(r, tenant);
}

chat_err_t api_notify_announce(api_ctx_t *ctx, const char *tenant)
{
    return api_announce(ctx, tenant, notify_bump, 0);
}
