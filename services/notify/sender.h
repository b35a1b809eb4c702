/* The senders of notify (docs/notify.md, "Sending"): one thread that claims due jobs from the
 * outbox, runs their requests concurrently on a libcurl multi handle (Web Push, webhooks,
 * SMTP), judges each outcome and ends, retries or dead-letters the job. Every instance runs
 * one; the outbox's claims keep them from sending a job twice.
 * The process calls curl_global_init before ns_sender_new (it is not thread-safe). */
#ifndef CHAT_NOTIFY_SENDER_H
#define CHAT_NOTIFY_SENDER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/egress.h"
#include "common/err.h"
#include "common/metrics.h"
#include "common/store.h"
#include "common/tenant_label.h"
#include "common/webpush.h"
#include "services/notify/tenants.h"

typedef struct ns_sender_conf {
    chat_store_t *store;       /* borrowed */
    const char *redis_url;     /* the sender's own connection */
    int redis_timeout_ms;      /* 0: 2000 */
    nt_cache_t *tenants;       /* borrowed */
    const chat_vapid_t *vapid; /* borrowed; NULL: Web Push is off (push jobs end unsent) */
    const char *vapid_subject; /* the JWT's sub: a mailto: or https: URL */
    int64_t push_ttl_s;        /* the TTL header */
    chat_egress_policy_t egress;
    const char *smtp_url;  /* smtp:// or smtps://; NULL or "": no emails */
    const char *smtp_user; /* NULL or "": no login */
    const char *smtp_password;
    bool smtp_tls_required;       /* STARTTLS required (else used when offered) */
    int gateways;                 /* partitions of chat.deliver: the online hashes to read */
    int64_t recent_max;           /* CHAT_RECENT_MAX: the rooms' recent history in Redis */
    const char *brokers;          /* Kafka, for the dead letters; NULL or "": none are sent */
    const char *dlq_topic;        /* "chat.notify.dlq" */
    int concurrency;              /* jobs in flight at most (each may hold several requests) */
    const char *webhook_schedule; /* NULL: NS_WEBHOOK_SCHEDULE (retry.h) */
    const char *owner;            /* CHAT_INSTANCE_ID ("" or NULL: none): claims recorded under
                                     it are taken back at once when the instance restarts */
    chat_metrics_t *metrics;      /* may be NULL */
    chat_tenant_labels_t *tenant_labels; /* borrowed, outlives the sender; NULL: no
                                            chat_notify_tenant_sends_total */
} ns_sender_conf_t;

typedef struct ns_sender ns_sender_t;

/* Checks the configuration (the webhook schedule; a subject with a VAPID key), connects the
 * dead-letter producer and starts the thread; Redis is connected by the thread (and reconnected
 * while it fails). CHAT_ERR_CONFIG (logged) for a bad schedule, the producer's error,
 * CHAT_ERR_NOMEM, or CHAT_ERR_IO if the thread or the curl handle could not be made. */
chat_err_t ns_sender_new(const ns_sender_conf_t *conf, ns_sender_t **out);

/* Stops the thread: requests in flight get up to 3 s to finish; what is left is abandoned
 * (its jobs come back when their lease runs out). Frees. Accepts NULL. */
void ns_sender_free(ns_sender_t *s);

/* True while the sender's Redis answers. */
bool ns_sender_ready(ns_sender_t *s);

#endif
