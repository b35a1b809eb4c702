/* How the api tells the notify instances that a tenant's webhooks or settings changed: a bump
 * of the tenant's revision in Redis (chat:notify:rev, common/notify_store.h), which every
 * notify instance polls each second (docs/notify.md, "Tenant configuration in notify"). */
#include <unistd.h>

#include "common/log.h"
#include "common/notify_store.h"
#include "services/api/api.h"

#define ANNOUNCE_TRIES 3      /* Redis bumps of a change's revision */
#define ANNOUNCE_RETRY_MS 200 /* between them */

chat_err_t api_notify_announce(api_ctx_t *ctx, const char *tenant)
{
    chat_err_t err = CHAT_ERR_REDIS;
    for (int attempt = 0; attempt < ANNOUNCE_TRIES && err != CHAT_OK; attempt++) {
        if (attempt > 0)
            usleep(ANNOUNCE_RETRY_MS * 1000);
        chat_redis_t *r = api_redis_take(ctx);
        err = r != NULL ? chat_notify_rev_bump(r, tenant) : CHAT_ERR_REDIS;
    }
    if (err != CHAT_OK)
        chat_log_warn("a notify configuration change not announced", CHAT_F_STR("tenant", tenant),
                      CHAT_F_ERR(err));
    return err;
}
