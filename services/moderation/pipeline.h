/* The moderation loop: poll a batch of chat.messages, check every new message and every edit
 * against its tenant's rules, count the spam windows (one Redis round trip), record the
 * decisions once (common/mod_record.h), produce a `remove` verdict per removed message to
 * chat.moderation, flush, then mark the input finished. Nothing is committed before its
 * decisions are recorded and its verdicts are on chat.moderation, so a crash replays the batch,
 * and the replay decides the same and records nothing twice. */
#ifndef CHAT_MODERATION_PIPELINE_H
#define CHAT_MODERATION_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/store.h"
#include "common/tenant_label.h"

typedef struct mod_pipeline mod_pipeline_t;

typedef struct mod_pipeline_conf {
    const char *brokers;
    const char *redis_url;
    chat_store_t *store;          /* borrowed: rules, log, flags */
    const char *group;            /* consumer group on messages_topic */
    const char *instance_id;      /* static membership id, "" for none */
    const char *messages_topic;   /* chat.messages */
    const char *moderation_topic; /* chat.moderation */
    size_t batch_max;
    int connect_timeout_ms;
    int commit_interval_ms;
    int rules_refresh_ms;
    chat_metrics_t *metrics; /* borrowed */
    /* Bounded tenant labels of chat_moderation_tenant_decisions_total; borrowed, outlives the
     * pipeline; NULL: no per-tenant count. */
    chat_tenant_labels_t *tenant_labels;
} mod_pipeline_conf_t;

/* Connects (Redis, producer, consumer group), starts the rules cache; on failure returns the
 * error (logged) and *bad_var names the variable to look at. */
chat_err_t mod_pipeline_new(const mod_pipeline_conf_t *conf, mod_pipeline_t **out,
                            const char **bad_var);

/* Runs until a stop is requested. CHAT_OK after the last batch is done; CHAT_ERR_STOPPED if
 * the stop came while MongoDB or Redis were failing (that batch comes again on the next
 * start); CHAT_ERR_KAFKA if verdicts could not be produced (input not committed). */
chat_err_t mod_pipeline_run(mod_pipeline_t *p);

/* chat_ops_ready_fn: ready once the consumer joined its group and while Redis answers. */
bool mod_pipeline_ready(void *pipeline, char *reason, size_t reason_len);

void mod_pipeline_free(mod_pipeline_t *p);

#endif
