/* Webhook outcomes (see webhook.h). */
#include "services/notify/webhook.h"

ns_webhook_outcome_t ns_webhook_judge(long status)
{
    if (status >= 200 && status <= 299)
        return NS_WEBHOOK_DELIVERED;
    if (status == 410)
        return NS_WEBHOOK_GONE;
    return NS_WEBHOOK_RETRY;
}

bool ns_webhook_failing_too_long(int64_t failing_since, int64_t now_ms)
{
    return failing_since > 0 && now_ms - failing_since >= NS_WEBHOOK_FAILING_MAX_MS;
}
