/* chat-moderation: checks every new message and edit on chat.messages against its tenant's
 * rules (word lists, regexes, links, spam) right after it was stored and delivered, records
 * the decisions (audit log, review queue, mutes) and sends removals to the message service on
 * chat.moderation. This file is the wiring; the work is in pipeline.c. */
#include <stdlib.h>

#include "common/config.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/ops_http.h"
#include "common/service.h"
#include "common/service_metrics.h"
#include "common/store.h"
#include "common/tenant_label.h"
#include "services/moderation/pipeline.h"

#define EXIT_CONFIG 2
#define PROGRAM "chat-moderation"

typedef struct moderation_cfg {
    char *brokers;
    char *mongo_uri;
    char *redis_url;
    char *ops_addr;
    long long ops_port;
    char *group;
    char *instance_id;
    long long batch;
    long long connect_timeout_ms;
    long long commit_interval_ms;
    long long rules_refresh_ms;
    char *log_level;
    char *messages_topic;
    char *moderation_topic;
    char *metrics_tenants;
    long long metrics_tenants_max;
} moderation_cfg_t;

static const chat_cfg_entry_t cfg_table[] = {
    CHAT_CFG_KAFKA_BROKERS(moderation_cfg_t, brokers),
    CHAT_CFG_MONGO_URI(moderation_cfg_t, mongo_uri),
    CHAT_CFG_REDIS_URL(moderation_cfg_t, redis_url),
    CHAT_CFG_OPS_ADDR(moderation_cfg_t, ops_addr),
    CHAT_CFG_OPS_PORT(moderation_cfg_t, ops_port, "7423"),
    CHAT_CFG_STRING("CHAT_MODERATION_GROUP", moderation_cfg_t, group, "chat-moderation",
                    "Kafka consumer group on chat.messages"),
    CHAT_CFG_INSTANCE_ID(moderation_cfg_t, instance_id),
    CHAT_CFG_INTEGER("CHAT_MODERATION_BATCH", moderation_cfg_t, batch, "500", 1, 100000,
                     "most records checked as one batch (a batch never waits to fill up)"),
    CHAT_CFG_CONNECT_TIMEOUT(moderation_cfg_t, connect_timeout_ms, 300000,
                             "time to reach Kafka, MongoDB and Redis at start; Redis command "
                             "timeout"),
    CHAT_CFG_COMMIT_INTERVAL(moderation_cfg_t, commit_interval_ms),
    CHAT_CFG_DURATION("CHAT_MODERATION_RULES_REFRESH", moderation_cfg_t, rules_refresh_ms, "1s",
                      100, 60000,
                      "how often the tenants' rule revisions are read (a rule change applies "
                      "within about this long)"),
    CHAT_CFG_LOG_LEVEL(moderation_cfg_t, log_level),
    CHAT_CFG_TOPIC_MESSAGES(moderation_cfg_t, messages_topic),
    CHAT_CFG_TOPIC_MODERATION(moderation_cfg_t, moderation_topic),
    CHAT_CFG_METRICS_TENANTS(moderation_cfg_t, metrics_tenants),
    CHAT_CFG_METRICS_TENANTS_MAX(moderation_cfg_t, metrics_tenants_max),
    CHAT_CFG_END,
};

static int run(const moderation_cfg_t *cfg, chat_metrics_t *metrics, chat_store_t *store,
               chat_tenant_labels_t *tenant_labels)
{
    mod_pipeline_conf_t pc = {
        .brokers = cfg->brokers,
        .redis_url = cfg->redis_url,
        .store = store,
        .group = cfg->group,
        .instance_id = cfg->instance_id,
        .messages_topic = cfg->messages_topic,
        .moderation_topic = cfg->moderation_topic,
        .batch_max = (size_t)cfg->batch,
        .connect_timeout_ms = (int)cfg->connect_timeout_ms,
        .commit_interval_ms = (int)cfg->commit_interval_ms,
        .rules_refresh_ms = (int)cfg->rules_refresh_ms,
        .metrics = metrics,
        .tenant_labels = tenant_labels,
    };
    mod_pipeline_t *pipeline = NULL;
    const char *bad_var = NULL;
    chat_err_t err = mod_pipeline_new(&pc, &pipeline, &bad_var);
    if (err != CHAT_OK) {
        chat_service_start_failed(bad_var, "pipeline not started", err);
        return EXIT_FAILURE;
    }
    chat_ops_t *ops = NULL;
    err = chat_ops_start(cfg->ops_addr, (int)cfg->ops_port, metrics, mod_pipeline_ready, pipeline,
                         &ops);
    if (err != CHAT_OK) {
        chat_log_error("start-up failed", CHAT_F_STR("var", "CHAT_OPS_PORT"), CHAT_F_ERR(err),
                       CHAT_F_STR("addr", cfg->ops_addr), CHAT_F_INT("port", cfg->ops_port));
        mod_pipeline_free(pipeline);
        return EXIT_FAILURE;
    }
    err = mod_pipeline_run(pipeline);
    mod_pipeline_free(pipeline);
    chat_ops_stop(ops);
    chat_log_info("moderation stopped", CHAT_F_ERR(err));
    return err == CHAT_OK || err == CHAT_ERR_STOPPED ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    chat_log_init("moderation", CHAT_LOG_INFO);
    moderation_cfg_t cfg = {0};
    chat_cfg_result_t loaded = chat_service_configure(
        cfg_table, &cfg, argc, argv, PROGRAM,
        "chat-moderation: checks messages against the tenants' rules after delivery; removals "
        "go to the message service on chat.moderation");
    if (loaded != CHAT_CFG_LOADED)
        return loaded == CHAT_CFG_HELP ? EXIT_SUCCESS : EXIT_CONFIG;
    chat_metrics_t *metrics = chat_metrics_new();
    chat_tenant_labels_t *tenant_labels =
        chat_tenant_labels_new(cfg.metrics_tenants, (int)cfg.metrics_tenants_max);
    chat_store_t *store = NULL;
    int status = EXIT_FAILURE;
    if (metrics == NULL || tenant_labels == NULL ||
        chat_service_metrics_attach(metrics, "moderation") != CHAT_OK)
        chat_log_error("out of memory");
    else if (chat_service_store_open(cfg.mongo_uri, PROGRAM, (int)cfg.connect_timeout_ms, &store))
        status = run(&cfg, metrics, store, tenant_labels);
    chat_store_destroy(store);
    chat_tenant_labels_destroy(tenant_labels);
    chat_metrics_destroy(metrics);
    chat_cfg_free(cfg_table, &cfg);
    return status;
}
