/* The api's /rooms resources (skeleton: routes come next). */
#include "services/api/api.h"

chat_err_t api_members_register(api_ctx_t *ctx)
{
    (void)ctx;
    return CHAT_OK;
}

chat_err_t api_notice_produce(api_ctx_t *ctx, const char *tenant, const char *room,
                              const char *notice, const char *target, const char *text)
{
    api_notice_t n = {.notice = notice, .target = target, .text = text};
    return api_notices_produce(ctx, tenant, room, &n, 1);
}

chat_err_t api_member_remove(api_ctx_t *ctx, const char *tenant, const char *room, const char *user)
{
    (void)ctx;
    (void)tenant;
    (void)room;
    (void)user;
    return CHAT_ERR_NOT_FOUND;
}
