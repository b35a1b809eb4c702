/* chat-broadcast: reads chat.messages and chat.events, finds the gateways that follow each room in
 * Redis and produces per-gateway batches to chat.deliver. This file is the wiring: configuration,
 * ops server, signals; the work is in pipeline.c. */
#include <stdlib.h>

#include "common/config.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/ops_http.h"
#include "common/service.h"
#include "common/service_metrics.h"
#include "services/broadcast/pipeline.h"

#define EXIT_CONFIG 2

typedef struct broadcast_cfg {
    char *brokers;
    char *redis_url;
    char *ops_addr;
    long long ops_port;
    char *group;
    char *instance_id;
    long long batch;
    long long connect_timeout_ms;
    long long commit_interval_ms;
    char *log_level;
    char *messages_topic;
    char *deliver_topic;
    char *events_topic;
} broadcast_cfg_t;

static const chat_cfg_entry_t cfg_table[] = {
    CHAT_CFG_KAFKA_BROKERS(broadcast_cfg_t, brokers),
    CHAT_CFG_REDIS_URL(broadcast_cfg_t, redis_url),
    CHAT_CFG_OPS_ADDR(broadcast_cfg_t, ops_addr),
    CHAT_CFG_OPS_PORT(broadcast_cfg_t, ops_port, "7421"),
    CHAT_CFG_STRING("CHAT_BROADCAST_GROUP", broadcast_cfg_t, group, "chat-broadcast",
                    "Kafka consumer group on chat.messages and chat.events"),
    CHAT_CFG_INSTANCE_ID(broadcast_cfg_t, instance_id),
    CHAT_CFG_INTEGER("CHAT_BROADCAST_BATCH", broadcast_cfg_t, batch, "1000", 1, 100000,
                     "most records handled as one batch (a batch never waits to fill up)"),
    CHAT_CFG_CONNECT_TIMEOUT(broadcast_cfg_t, connect_timeout_ms, 300000,
                             "time to reach Kafka and Redis at start; Redis command timeout"),
    CHAT_CFG_COMMIT_INTERVAL(broadcast_cfg_t, commit_interval_ms),
    CHAT_CFG_LOG_LEVEL(broadcast_cfg_t, log_level),
    CHAT_CFG_TOPIC_MESSAGES(broadcast_cfg_t, messages_topic),
    CHAT_CFG_TOPIC_DELIVER(broadcast_cfg_t, deliver_topic),
    CHAT_CFG_TOPIC_EVENTS(broadcast_cfg_t, events_topic),
    CHAT_CFG_END,
};

/* Starts the pipeline and the ops server, runs until SIGTERM/SIGINT or a fatal error, and
 * returns the exit status. */
static int run(const broadcast_cfg_t *cfg, chat_metrics_t *metrics)
{
    broadcast_pipeline_conf_t pc = {
        .brokers = cfg->brokers,
        .redis_url = cfg->redis_url,
        .group = cfg->group,
        .instance_id = cfg->instance_id,
        .messages_topic = cfg->messages_topic,
        .deliver_topic = cfg->deliver_topic,
        .events_topic = cfg->events_topic,
        .batch_max = (size_t)cfg->batch,
        .connect_timeout_ms = (int)cfg->connect_timeout_ms,
        .commit_interval_ms = (int)cfg->commit_interval_ms,
        .metrics = metrics,
    };
    broadcast_pipeline_t *pipeline = NULL;
    const char *bad_var = NULL;
    chat_err_t err = broadcast_pipeline_new(&pc, &pipeline, &bad_var);
    if (err != CHAT_OK) {
        chat_log_error("start-up failed", CHAT_F_STR("var", bad_var), CHAT_F_ERR(err),
                       CHAT_F_STR("reason", chat_err_str(err)));
        return EXIT_FAILURE;
    }
    chat_ops_t *ops = NULL;
    err = chat_ops_start(cfg->ops_addr, (int)cfg->ops_port, metrics, broadcast_pipeline_ready,
                         pipeline, &ops);
    if (err != CHAT_OK) {
        chat_log_error("start-up failed", CHAT_F_STR("var", "CHAT_OPS_PORT"), CHAT_F_ERR(err),
                       CHAT_F_STR("addr", cfg->ops_addr), CHAT_F_INT("port", cfg->ops_port));
        broadcast_pipeline_free(pipeline);
        return EXIT_FAILURE;
    }
    err = broadcast_pipeline_run(pipeline);
    /* The pipeline goes first: leaving the group and flushing happen while /healthz still
     * answers. */
    broadcast_pipeline_free(pipeline);
    chat_ops_stop(ops);
    chat_log_info("broadcast stopped", CHAT_F_ERR(err));
    return err == CHAT_OK || err == CHAT_ERR_STOPPED ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    chat_log_init("broadcast", CHAT_LOG_INFO);
    broadcast_cfg_t cfg = {0};
    chat_cfg_result_t loaded = chat_service_configure(
        cfg_table, &cfg, argc, argv, "chat-broadcast",
        "chat-broadcast: fans chat.messages and chat.events out to the gateways (chat.deliver)");
    if (loaded != CHAT_CFG_LOADED)
        return loaded == CHAT_CFG_HELP ? EXIT_SUCCESS : EXIT_CONFIG;
    chat_metrics_t *metrics = chat_metrics_new();
    int status = EXIT_FAILURE;
    if (metrics == NULL || chat_service_metrics_attach(metrics, "broadcast") != CHAT_OK)
        chat_log_error("out of memory");
    else
        status = run(&cfg, metrics);
    chat_metrics_destroy(metrics);
    chat_cfg_free(cfg_table, &cfg);
    return status;
}
