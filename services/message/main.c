/* chat-message: the message service. Reads its configuration, connects to MongoDB, Redis and
 * Kafka, serves the ops endpoints, and runs the poll -> pipeline loop until SIGTERM; the batch
 * logic lives in pipeline.c and the modules it calls. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/config.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/ops_http.h"
#include "common/service.h"
#include "common/service_metrics.h"
#include "common/signals.h"
#include "common/store.h"
#include "common/tenant_label.h"
#include "services/message/message_bus.h"
#include "services/message/message_mutes.h"
#include "services/message/message_recent.h"
#include "services/message/message_store.h"
#include "services/message/reads_store.h"
#include "services/message/pipeline.h"
#include "services/message/sequencer.h"

#define PROGRAM "chat-message"
#define SUMMARY                                                                                    \
    "chat-message: validates sends from chat.inbound, deduplicates them by cid, assigns each "     \
    "room's seq, stores them in MongoDB, keeps each room's recent history in Redis and publishes " \
    "them to chat.messages; applies moderation's verdicts from chat.moderation and refuses muted " \
    "users' sends"
#define POLL_TIMEOUT_MS 100
#define FLUSH_TIMEOUT_MS 40000 /* librdkafka gives up on a record after 30 s itself */
#define MAX_ROOMS 100000       /* rooms whose last seq stays in memory between batches */
#define MAX_CONFLICT_ROUNDS 5  /* seq collisions (another writer) per batch before exiting */

typedef struct message_cfg {
    char *brokers;
    char *mongo_uri;
    char *redis_url;
    char *ops_addr;
    long long ops_port;
    char *group;
    char *instance_id;
    long long batch;
    long long max_text_chars;
    long long store_retry_ms;
    long long recent_max;
    long long recent_ttl_ms;
    long long connect_timeout_ms;
    long long commit_interval_ms;
    char *log_level;
    char *inbound_topic;
    char *messages_topic;
    char *moderation_topic;
    char *metrics_tenants;
    long long metrics_tenants_max;
} message_cfg_t;

static const chat_cfg_entry_t cfg_table[] = {
    CHAT_CFG_KAFKA_BROKERS(message_cfg_t, brokers),
    CHAT_CFG_MONGO_URI(message_cfg_t, mongo_uri),
    CHAT_CFG_REDIS_URL(message_cfg_t, redis_url),
    CHAT_CFG_OPS_ADDR(message_cfg_t, ops_addr),
    CHAT_CFG_OPS_PORT(message_cfg_t, ops_port, "7420"),
    CHAT_CFG_STRING("CHAT_MESSAGE_GROUP", message_cfg_t, group, "chat-message",
                    "Kafka consumer group on chat.inbound"),
    CHAT_CFG_INSTANCE_ID(message_cfg_t, instance_id),
    CHAT_CFG_INTEGER("CHAT_MESSAGE_BATCH", message_cfg_t, batch, "500", 1, 10000,
                     "most records handled as one batch (a poll never waits to fill it)"),
    CHAT_CFG_MAX_TEXT_CHARS(message_cfg_t, max_text_chars),
    CHAT_CFG_DURATION("CHAT_MESSAGE_STORE_RETRY", message_cfg_t, store_retry_ms, "60s", 0, 3600000,
                      "how long a failing MongoDB (or Redis) is retried before exiting (the "
                      "restart replays the uncommitted batch)"),
    CHAT_CFG_RECENT_MAX(message_cfg_t, recent_max),
    CHAT_CFG_RECENT_TTL(message_cfg_t, recent_ttl_ms),
    CHAT_CFG_CONNECT_TIMEOUT(message_cfg_t, connect_timeout_ms, 600000,
                             "how long Kafka, MongoDB and Redis may take to answer at start; "
                             "the Redis command timeout"),
    CHAT_CFG_COMMIT_INTERVAL(message_cfg_t, commit_interval_ms),
    CHAT_CFG_LOG_LEVEL(message_cfg_t, log_level),
    CHAT_CFG_TOPIC_INBOUND(message_cfg_t, inbound_topic),
    CHAT_CFG_TOPIC_MESSAGES(message_cfg_t, messages_topic),
    CHAT_CFG_TOPIC_MODERATION(message_cfg_t, moderation_topic),
    CHAT_CFG_METRICS_TENANTS(message_cfg_t, metrics_tenants),
    CHAT_CFG_METRICS_TENANTS_MAX(message_cfg_t, metrics_tenants_max),
    CHAT_CFG_END};

/* Everything the running service holds; released in reverse order by service_stop. */
typedef struct service {
    chat_metrics_t *metrics;
    chat_tenant_labels_t *tenant_labels;
    chat_ops_t *ops;
    chat_store_t *store;
    message_store_t *messages;
    message_reads_store_t *reads;
    message_recent_t *recent;
    message_mutes_t *mutes;
    message_sequencer_t *sequencer;
    message_bus_t *bus;
    message_pipeline_t *pipeline;
    chat_bus_record_t *recs;
    atomic_bool ready;
} service_t;

static bool ops_ready(void *ud, char *reason, size_t reason_len)
{
    service_t *s = ud;
    if (atomic_load(&s->ready))
        return true;
    snprintf(reason, reason_len, "not consuming chat.inbound yet");
    return false;
}

static bool stop_requested(void *ctx)
{
    (void)ctx;
    return chat_signals_stop_requested();
}

/* Connects MongoDB: pool, ping within the timeout, indexes. */
static bool start_store(service_t *s, const message_cfg_t *cfg)
{
    if (!chat_service_store_open(cfg->mongo_uri, PROGRAM, (int)cfg->connect_timeout_ms, &s->store))
        return false;
    chat_err_t err = message_store_open(s->store, &s->messages);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_MONGO_URI", "cannot create the indexes of messages", err);
        return false;
    }
    err = message_reads_store_open(s->store, &s->reads);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_MONGO_URI", "cannot create the indexes of reads", err);
        return false;
    }
    return true;
}

/* Connects Redis, where each room's recent history is written. */
static bool start_recent(service_t *s, const message_cfg_t *cfg)
{
    chat_err_t err = message_recent_open(cfg->redis_url, (int)cfg->connect_timeout_ms,
                                         cfg->recent_max, cfg->recent_ttl_ms, &s->recent);
    if (err != CHAT_OK) {
        chat_service_start_failed(
            "CHAT_REDIS_URL", err == CHAT_ERR_CONFIG ? "bad Redis URL" : "Redis unreachable", err);
        return false;
    }
    /* Mutes on a connection of their own: read before a batch is stored, not pipelined with
     * the recent history's writes after it. */
    err = message_mutes_open(cfg->redis_url, (int)cfg->connect_timeout_ms, &s->mutes);
    if (err != CHAT_OK) {
        chat_service_start_failed(
            "CHAT_REDIS_URL", err == CHAT_ERR_CONFIG ? "bad Redis URL" : "Redis unreachable", err);
        return false;
    }
    return true;
}

static bool start_bus(service_t *s, const message_cfg_t *cfg)
{
    if (cfg->brokers[0] == '\0' || cfg->group[0] == '\0') {
        chat_service_start_failed(cfg->brokers[0] == '\0' ? "CHAT_KAFKA_BROKERS"
                                                          : "CHAT_MESSAGE_GROUP",
                                  "empty value", CHAT_ERR_CONFIG);
        return false;
    }
    const chat_topic_use_t topics[] = {
        {"CHAT_TOPIC_INBOUND", cfg->inbound_topic},
        {"CHAT_TOPIC_MESSAGES", cfg->messages_topic},
        {"CHAT_TOPIC_MODERATION", cfg->moderation_topic},
    };
    int partitions[3] = {0};
    const char *bad_var = NULL;
    chat_err_t err = chat_topics_check(cfg->brokers, topics, sizeof topics / sizeof topics[0],
                                       (int)cfg->connect_timeout_ms, partitions, &bad_var);
    if (err != CHAT_OK) {
        chat_service_start_failed(bad_var, "Kafka topics not usable", err);
        return false;
    }
    /* A room's verdicts must reach the process that sequences it: the range assignor gives
     * the same partition numbers of both topics to one member only if they have as many
     * partitions (and the same key then picks the same number in both). */
    if (partitions[2] != partitions[0]) {
        chat_log_error("the moderation topic must have as many partitions as the inbound topic",
                       CHAT_F_STR("var", "CHAT_TOPIC_MODERATION"),
                       CHAT_F_STR("topic", cfg->moderation_topic),
                       CHAT_F_INT("partitions", partitions[2]),
                       CHAT_F_STR("inbound_topic", cfg->inbound_topic),
                       CHAT_F_INT("inbound_partitions", partitions[0]));
        return false;
    }
    message_bus_conf_t bc = {
        .brokers = cfg->brokers,
        .inbound_topic = cfg->inbound_topic,
        .moderation_topic = cfg->moderation_topic,
        .messages_topic = cfg->messages_topic,
        .group = cfg->group,
        .instance_id = cfg->instance_id,
        .client_id = PROGRAM,
        .connect_timeout_ms = (int)cfg->connect_timeout_ms,
        .flush_timeout_ms = FLUSH_TIMEOUT_MS,
        .commit_interval_ms = (int)cfg->commit_interval_ms,
        .sequencer = s->sequencer,
        .metrics = s->metrics,
    };
    err = message_bus_open(&bc, &s->bus);
    if (err == CHAT_ERR_CONFIG) {
        chat_log_error("Kafka client configuration refused (see the line above)", CHAT_F_ERR(err));
        return false;
    }
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_KAFKA_BROKERS", "Kafka unreachable", err);
        return false;
    }
    return true;
}

static bool start_pipeline(service_t *s, const message_cfg_t *cfg)
{
    message_pipeline_conf_t pc = {
        .sequencer = s->sequencer,
        .metrics = s->metrics,
        .tenant_labels = s->tenant_labels,
        .max_text_chars = (long)cfg->max_text_chars,
        .store_retry_ms = cfg->store_retry_ms,
        .max_conflict_rounds = MAX_CONFLICT_ROUNDS,
        .moderation_topic = cfg->moderation_topic,
        .env = {.stop_requested = stop_requested},
    };
    message_store_port(s->messages, &pc.store);
    message_recent_port(s->recent, &pc.recent);
    message_reads_store_port(s->reads, &pc.reads);
    message_mutes_port(s->mutes, &pc.mutes);
    message_bus_port(s->bus, &pc.bus);
    s->pipeline = message_pipeline_new(&pc);
    s->recs = calloc((size_t)cfg->batch, sizeof *s->recs);
    if (s->pipeline == NULL || s->recs == NULL) {
        chat_log_error("out of memory at start");
        return false;
    }
    return true;
}

static bool service_start(service_t *s, const message_cfg_t *cfg)
{
    s->metrics = chat_metrics_new();
    s->tenant_labels = chat_tenant_labels_new(cfg->metrics_tenants, (int)cfg->metrics_tenants_max);
    if (s->metrics == NULL || s->tenant_labels == NULL ||
        chat_service_metrics_attach(s->metrics, "message") != CHAT_OK) {
        chat_log_error("out of memory at start");
        return false;
    }
    chat_err_t err =
        chat_ops_start(cfg->ops_addr, (int)cfg->ops_port, s->metrics, ops_ready, s, &s->ops);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_OPS_PORT", "cannot serve the ops endpoints", err);
        return false;
    }
    if (!start_store(s, cfg) || !start_recent(s, cfg))
        return false;
    s->sequencer = message_sequencer_new(MAX_ROOMS);
    if (s->sequencer == NULL) {
        chat_log_error("out of memory at start");
        return false;
    }
    return start_bus(s, cfg) && start_pipeline(s, cfg);
}

/* Polls and processes until a stop is requested. Returns the exit status: 1 when a batch
 * could not be completed (nothing of it was committed: the next owner replays it). */
static int service_loop(service_t *s, const message_cfg_t *cfg)
{
    chat_log_info("consuming", CHAT_F_STR("topic", cfg->inbound_topic),
                  CHAT_F_STR("group", cfg->group), CHAT_F_INT("ops_port", chat_ops_port(s->ops)));
    while (!chat_signals_stop_requested()) {
        size_t n = message_bus_poll(s->bus, s->recs, (size_t)cfg->batch, POLL_TIMEOUT_MS);
        atomic_store(&s->ready, true);
        if (n == 0)
            continue;
        chat_err_t err = message_pipeline_process(s->pipeline, s->recs, n);
        chat_bus_records_release(s->recs, n);
        if (err == CHAT_ERR_STOPPED) {
            chat_log_info("stop requested while MongoDB or Redis was failing; the batch stays "
                          "uncommitted");
            break;
        }
        if (err != CHAT_OK) {
            chat_log_error("batch failed; exiting without committing it (it will be replayed)",
                           CHAT_F_ERR(err), CHAT_F_INT("records", n));
            return 1;
        }
    }
    chat_log_info("stopping");
    return 0;
}

static void service_stop(service_t *s)
{
    atomic_store(&s->ready, false);
    message_bus_close(s->bus); /* leaves the group: its revoke still updates the sequencer */
    message_pipeline_destroy(s->pipeline);
    chat_tenant_labels_destroy(s->tenant_labels);
    message_sequencer_destroy(s->sequencer);
    message_mutes_close(s->mutes);
    message_recent_close(s->recent);
    message_reads_store_close(s->reads);
    message_store_close(s->messages);
    chat_store_destroy(s->store);
    chat_ops_stop(s->ops);
    chat_metrics_destroy(s->metrics);
    free(s->recs);
}

int main(int argc, char **argv)
{
    chat_log_init("message", CHAT_LOG_INFO);
    message_cfg_t cfg = {0};
    chat_cfg_result_t loaded =
        chat_service_configure(cfg_table, &cfg, argc, argv, PROGRAM, SUMMARY);
    if (loaded != CHAT_CFG_LOADED)
        return loaded == CHAT_CFG_HELP ? 0 : 1;
    service_t s = {0};
    atomic_init(&s.ready, false);
    int rc = service_start(&s, &cfg) ? service_loop(&s, &cfg) : 1;
    service_stop(&s);
    chat_cfg_free(cfg_table, &cfg);
    return rc;
}
