/* How a webhook delivery's answer is judged (docs/notify.md, "Sending"). Pure; the sender
 * signs and posts (sender.c). */
#ifndef CHAT_NOTIFY_WEBHOOK_H
#define CHAT_NOTIFY_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#define NS_WEBHOOK_TIMEOUT_MS 10000
#define NS_WEBHOOK_FAILING_MAX_MS (24LL * 3600 * 1000) /* then the endpoint is disabled */

typedef enum ns_webhook_outcome {
    NS_WEBHOOK_DELIVERED, /* 2xx */
    NS_WEBHOOK_GONE,      /* 410: the endpoint is disabled */
    NS_WEBHOOK_RETRY,     /* anything else, no answer within the timeout included */
} ns_webhook_outcome_t;

/* status: the HTTP status, 0 if there was none. */
ns_webhook_outcome_t ns_webhook_judge(long status);

/* True if an endpoint failing since failing_since (ms, 0: not failing) has failed long enough
 * at now_ms to be disabled. */
bool ns_webhook_failing_too_long(int64_t failing_since, int64_t now_ms);

#endif
