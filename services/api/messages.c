/* The api's /rooms resources (skeleton: routes come next). */
#include "services/api/api.h"

chat_err_t api_messages_register(api_ctx_t *ctx)
{
    (void)ctx;
    return CHAT_OK;
}
