/* When notify tries a failed send again (docs/notify.md, "Sending"): the retry schedules of
 * pushes, webhooks and emails, with jitter, and a Retry-After header (seconds or HTTP-date).
 * Pure; thread-safe. */
#ifndef CHAT_NOTIFY_RETRY_H
#define CHAT_NOTIFY_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define NS_SCHEDULE_MAX 16
/* Pushes and emails: then the dead-letter queue. */
#define NS_PUSH_SCHEDULE "5s,30s,2m,10m"
/* Webhooks (CHAT_NOTIFY_WEBHOOK_SCHEDULE), each delay ±10 %. */
#define NS_WEBHOOK_SCHEDULE "5s,5m,30m,2h,5h,10h,24h"
#define NS_WEBHOOK_JITTER 0.10

typedef struct ns_schedule {
    int64_t delays_ms[NS_SCHEDULE_MAX];
    size_t n;
} ns_schedule_t;

/* Parses comma-separated durations ("5s,5m,30m,2h"; units ms, s, m, h, d; a bare number is
 * milliseconds), each above 0, at most NS_SCHEDULE_MAX. CHAT_ERR_CONFIG with the reason in
 * errbuf otherwise. */
chat_err_t ns_schedule_parse(const char *text, ns_schedule_t *out, char *errbuf, size_t errlen);

/* The delay before the next attempt after `failures` failed ones (1 = the first failure):
 * the schedule's entry, scaled by 1 + jitter * (2 * rnd - 1) (rnd in [0, 1)); -1 once the
 * schedule is exhausted (give up). */
int64_t ns_schedule_delay(const ns_schedule_t *s, int64_t failures, double jitter, double rnd);

/* A Retry-After value: delay-seconds or an HTTP-date (IMF-fixdate, e.g. "Wed, 21 Oct 2015
 * 07:28:00 GMT"), as milliseconds from now_ms (0 for a date in the past); -1 if value is
 * NULL or neither. */
int64_t ns_retry_after_ms(const char *value, int64_t now_ms);

#endif
