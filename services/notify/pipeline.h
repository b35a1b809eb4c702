/* The notify loop (docs/notify.md): poll a batch of chat.messages, decide who hears about each
 * record and how -- webhooks for the tenant's endpoints, a push note and a digest note for each
 * offline member whose preference asks for it, a recall for reads, deletes and removals -- and
 * put all of it into the Redis outbox (services/notify/outbox.h) in one pipeline; only then is
 * the batch committed. Nothing is sent here: the senders (sender.h) send what falls due. A
 * crash replays the batch, and every outbox entry is idempotent. */
#ifndef CHAT_NOTIFY_PIPELINE_H
#define CHAT_NOTIFY_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/events.h"
#include "common/metrics.h"
#include "common/store.h"
#include "services/notify/tenants.h"

typedef struct nf_pipeline nf_pipeline_t;

typedef struct nf_pipeline_conf {
    const char *brokers;
    const char *redis_url;
    chat_store_t *store;        /* borrowed */
    nt_cache_t *tenants;        /* borrowed: settings and endpoints */
    const char *group;          /* consumer group on messages_topic */
    const char *instance_id;    /* static membership id, "" for none */
    const char *messages_topic; /* chat.messages */
    int gateways;               /* partitions of chat.deliver: the gateways' online hashes */
    size_t batch_max;
    int connect_timeout_ms;
    int commit_interval_ms;
    int64_t push_window_ms;  /* collapse window of pushes per user and room */
    int64_t members_ttl_ms;  /* how long a room's member list is reused */
    bool push_on;            /* a VAPID key is configured */
    bool email_on;           /* an SMTP server is configured */
    chat_metrics_t *metrics; /* borrowed */
} nf_pipeline_conf_t;

/* Connects (Redis, consumer group); on failure returns the error (logged) and *bad_var names
 * the variable to look at. */
chat_err_t nf_pipeline_new(const nf_pipeline_conf_t *conf, nf_pipeline_t **out,
                           const char **bad_var);

/* Runs until a stop is requested. CHAT_OK after the last batch; CHAT_ERR_STOPPED if the stop
 * came while MongoDB or Redis were failing (that batch comes again on the next start). */
chat_err_t nf_pipeline_run(nf_pipeline_t *p);

/* chat_ops_ready_fn: ready once the consumer joined its group and while Redis answers. */
bool nf_pipeline_ready(void *pipeline, char *reason, size_t reason_len);

void nf_pipeline_free(nf_pipeline_t *p);

/* ---- pure parts, for the unit tests ---- */

/* True if text mentions user: "@<user>" not preceded by a user-name character and not
 * followed by one. */
bool nf_mentions(const char *text, const char *user);

/* The webhook body {"type", "tenant", "data", "ts"} of a chat.messages event, or NULL if the
 * event has no webhook of that type (*type gets the chat_webhook_event_t bit, *identity the
 * string the webhook-id is derived from, at most 300 bytes). For user.offline_message pass the
 * offline user as `to`, else NULL. */
char *nf_webhook_body(const chat_event_t *ev, const char *to, unsigned *type, char *identity,
                      size_t identity_len);

#endif
