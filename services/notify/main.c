/* chat-notify: tells members who are not there about what they missed -- Web Push, email
 * digests -- and the tenants' backends about what happens in their rooms (webhooks). The
 * pipeline (pipeline.c) reads chat.messages and fills the outbox in Redis; the sender
 * (sender.c) sends what falls due. This file is the wiring. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common/config.h"
#include "common/contract.h"
#include "common/egress.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/notify_store.h"
#include "common/ops_http.h"
#include "common/room_list.h"
#include "common/service.h"
#include "common/service_metrics.h"
#include "common/store.h"
#include "common/tenant_label.h"
#include "common/webpush.h"
#include "services/notify/pipeline.h"
#include "services/notify/sender.h"
#include "services/notify/tenants.h"

#define EXIT_CONFIG 2
#define PROGRAM "chat-notify"

typedef struct notify_cfg {
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
    long long refresh_ms;
    long long push_window_ms;
    long long members_ttl_ms;
    long long concurrency;
    char *vapid_private;
    char *vapid_subject;
    long long push_ttl_ms;
    char *smtp_url;
    char *smtp_user;
    char *smtp_password;
    char *smtp_tls;
    char *webhook_schedule;
    bool egress_http;
    bool egress_private;
    long long recent_max;
    char *log_level;
    char *messages_topic;
    char *deliver_topic;
    char *dlq_topic;
    char *metrics_tenants;
    long long metrics_tenants_max;
} notify_cfg_t;

static const chat_cfg_entry_t cfg_table[] = {
    CHAT_CFG_KAFKA_BROKERS(notify_cfg_t, brokers),
    CHAT_CFG_MONGO_URI(notify_cfg_t, mongo_uri),
    CHAT_CFG_REDIS_URL(notify_cfg_t, redis_url),
    CHAT_CFG_OPS_ADDR(notify_cfg_t, ops_addr),
    CHAT_CFG_OPS_PORT(notify_cfg_t, ops_port, "7424"),
    CHAT_CFG_STRING("CHAT_NOTIFY_GROUP", notify_cfg_t, group, "chat-notify",
                    "Kafka consumer group on chat.messages"),
    CHAT_CFG_INSTANCE_ID(notify_cfg_t, instance_id),
    CHAT_CFG_INTEGER("CHAT_NOTIFY_BATCH", notify_cfg_t, batch, "500", 1, 100000,
                     "most records handled as one batch (a batch never waits to fill up)"),
    CHAT_CFG_CONNECT_TIMEOUT(notify_cfg_t, connect_timeout_ms, 300000,
                             "time to reach Kafka, MongoDB and Redis at start; Redis command "
                             "timeout"),
    CHAT_CFG_COMMIT_INTERVAL(notify_cfg_t, commit_interval_ms),
    CHAT_CFG_DURATION("CHAT_NOTIFY_REFRESH", notify_cfg_t, refresh_ms, "1s", 100, 60000,
                      "how often the tenants' notify revisions are read (a settings or webhook "
                      "change applies within about this long)"),
    CHAT_CFG_DURATION("CHAT_NOTIFY_PUSH_WINDOW", notify_cfg_t, push_window_ms, "5s", 100, 3600000,
                      "collapse window: at most one push per user and room this often, with "
                      "the newest message and the count"),
    CHAT_CFG_DURATION("CHAT_NOTIFY_MEMBERS_TTL", notify_cfg_t, members_ttl_ms, "10s", 0, 600000,
                      "how long a room's member list is reused (member notices drop it at "
                      "once)"),
    CHAT_CFG_INTEGER("CHAT_NOTIFY_CONCURRENCY", notify_cfg_t, concurrency, "64", 1, 10000,
                     "notification jobs in flight at once (pushes, webhooks, emails)"),
    CHAT_CFG_SECRET("CHAT_VAPID_PRIVATE_KEY", notify_cfg_t, vapid_private, "",
                    "the deployment's VAPID private key (base64url; chat-admin vapid generate); "
                    "empty: no Web Push"),
    CHAT_CFG_STRING("CHAT_VAPID_SUBJECT", notify_cfg_t, vapid_subject, "",
                    "the VAPID subject push services may contact: mailto: or https: URL "
                    "(required with a key)"),
    CHAT_CFG_DURATION("CHAT_PUSH_TTL", notify_cfg_t, push_ttl_ms, "24h", 0, 2419200000LL,
                      "how long a push service keeps an undelivered notification (TTL)"),
    CHAT_CFG_SECRET("CHAT_SMTP_URL", notify_cfg_t, smtp_url, "",
                    "SMTP server of the email digests: smtp://host:port (STARTTLS when "
                    "offered) or smtps://; empty: no emails"),
    CHAT_CFG_STRING("CHAT_SMTP_USER", notify_cfg_t, smtp_user, "", "SMTP login (empty: none)"),
    CHAT_CFG_SECRET("CHAT_SMTP_PASSWORD", notify_cfg_t, smtp_password, "", "SMTP password"),
    CHAT_CFG_ENUM("CHAT_SMTP_TLS", notify_cfg_t, smtp_tls, "try", "try|required",
                  "STARTTLS: used when the server offers it, or required"),
    CHAT_CFG_STRING("CHAT_NOTIFY_WEBHOOK_SCHEDULE", notify_cfg_t, webhook_schedule, "",
                    "webhook retry delays, comma-separated durations (empty: 5s,5m,30m,2h,5h,"
                    "10h,24h)"),
    CHAT_CFG_EGRESS(notify_cfg_t, egress_http, egress_private),
    CHAT_CFG_RECENT_MAX(notify_cfg_t, recent_max),
    CHAT_CFG_LOG_LEVEL(notify_cfg_t, log_level),
    CHAT_CFG_TOPIC_MESSAGES(notify_cfg_t, messages_topic),
    CHAT_CFG_TOPIC_DELIVER(notify_cfg_t, deliver_topic),
    CHAT_CFG_TOPIC_NOTIFY_DLQ(notify_cfg_t, dlq_topic),
    CHAT_CFG_METRICS_TENANTS(notify_cfg_t, metrics_tenants),
    CHAT_CFG_METRICS_TENANTS_MAX(notify_cfg_t, metrics_tenants_max),
    CHAT_CFG_END,
};

/* The parts that run together, for readiness. */
typedef struct notify_parts {
    nf_pipeline_t *pipeline;
    ns_sender_t *sender;
    nt_cache_t *tenants;
} notify_parts_t;

/* chat_ops_ready_fn: the pipeline's readiness, then the sender's and the cache's Redis. */
static bool notify_ready(void *ud, char *reason, size_t reason_len)
{
    notify_parts_t *p = ud;
    if (!nf_pipeline_ready(p->pipeline, reason, reason_len))
        return false;
    if (!ns_sender_ready(p->sender) || !nt_cache_healthy(p->tenants)) {
        snprintf(reason, reason_len, "redis unavailable");
        return false;
    }
    return true;
}

/* The topics notify uses, and the gateways it reads presence of (partitions of chat.deliver). */
static chat_err_t topics_check(const notify_cfg_t *cfg, int *gateways, const char **bad_var)
{
    const chat_topic_use_t uses[] = {
        {"CHAT_TOPIC_MESSAGES", cfg->messages_topic},
        {"CHAT_TOPIC_DELIVER", cfg->deliver_topic},
        {"CHAT_TOPIC_NOTIFY_DLQ", cfg->dlq_topic},
    };
    int partitions[3] = {0};
    chat_err_t err =
        chat_topics_check(cfg->brokers, uses, 3, (int)cfg->connect_timeout_ms, partitions, bad_var);
    *gateways = partitions[1];
    return err;
}

static int run(const notify_cfg_t *cfg, chat_metrics_t *metrics, chat_store_t *store,
               const chat_vapid_t *vapid, chat_tenant_labels_t *tenant_labels)
{
    const char *bad_var = NULL;
    int gateways = 0;
    chat_err_t err = topics_check(cfg, &gateways, &bad_var);
    if (err != CHAT_OK) {
        chat_service_start_failed(bad_var, "topics not usable", err);
        return EXIT_FAILURE;
    }
    /* The room's users are read by room (the list's own index starts with the user). */
    static const chat_store_index_t room_users = {
        CHAT_USER_ROOMS_COLLECTION, "room_users", false, {"tenant", "room", NULL}};
    err = chat_store_ensure_indexes(store, chat_notify_store_indexes, chat_notify_store_nindexes);
    if (err == CHAT_OK)
        err = chat_store_ensure_indexes(store, &room_users, 1);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_MONGO_URI", "indexes not created", err);
        return EXIT_FAILURE;
    }
    notify_parts_t parts = {0};
    nt_cache_conf_t tc = {.store = store,
                          .redis_url = cfg->redis_url,
                          .timeout_ms = (int)cfg->connect_timeout_ms,
                          .refresh_ms = (int)cfg->refresh_ms,
                          .metrics = metrics};
    if ((err = nt_cache_new(&tc, &parts.tenants)) != CHAT_OK) {
        chat_service_start_failed("CHAT_REDIS_URL", "tenant cache not started", err);
        return EXIT_FAILURE;
    }
    bool email_on = cfg->smtp_url[0] != '\0';
    ns_sender_conf_t sc = {
        .store = store,
        .redis_url = cfg->redis_url,
        .redis_timeout_ms = (int)cfg->connect_timeout_ms,
        .tenants = parts.tenants,
        .vapid = vapid,
        .vapid_subject = cfg->vapid_subject,
        .push_ttl_s = cfg->push_ttl_ms / 1000,
        .egress = {.allow_http = cfg->egress_http, .allow_private = cfg->egress_private},
        .smtp_url = cfg->smtp_url,
        .smtp_user = cfg->smtp_user,
        .smtp_password = cfg->smtp_password,
        .smtp_tls_required = strcmp(cfg->smtp_tls, "required") == 0,
        .gateways = gateways,
        .recent_max = cfg->recent_max,
        .brokers = cfg->brokers,
        .dlq_topic = cfg->dlq_topic,
        .concurrency = (int)cfg->concurrency,
        .webhook_schedule = cfg->webhook_schedule[0] != '\0' ? cfg->webhook_schedule : NULL,
        .owner = cfg->instance_id,
        .metrics = metrics,
        .tenant_labels = tenant_labels,
    };
    int status = EXIT_FAILURE;
    if ((err = ns_sender_new(&sc, &parts.sender)) != CHAT_OK) {
        chat_service_start_failed(err == CHAT_ERR_CONFIG ? "CHAT_NOTIFY_WEBHOOK_SCHEDULE"
                                                         : "CHAT_KAFKA_BROKERS",
                                  "sender not started", err);
        goto out;
    }
    nf_pipeline_conf_t pc = {
        .brokers = cfg->brokers,
        .redis_url = cfg->redis_url,
        .store = store,
        .tenants = parts.tenants,
        .group = cfg->group,
        .instance_id = cfg->instance_id,
        .messages_topic = cfg->messages_topic,
        .gateways = gateways,
        .batch_max = (size_t)cfg->batch,
        .connect_timeout_ms = (int)cfg->connect_timeout_ms,
        .commit_interval_ms = (int)cfg->commit_interval_ms,
        .push_window_ms = cfg->push_window_ms,
        .members_ttl_ms = cfg->members_ttl_ms,
        .push_on = vapid != NULL,
        .email_on = email_on,
        .metrics = metrics,
    };
    if ((err = nf_pipeline_new(&pc, &parts.pipeline, &bad_var)) != CHAT_OK) {
        chat_service_start_failed(bad_var, "pipeline not started", err);
        goto out;
    }
    chat_ops_t *ops = NULL;
    err = chat_ops_start(cfg->ops_addr, (int)cfg->ops_port, metrics, notify_ready, &parts, &ops);
    if (err != CHAT_OK) {
        chat_log_error("start-up failed", CHAT_F_STR("var", "CHAT_OPS_PORT"), CHAT_F_ERR(err),
                       CHAT_F_STR("addr", cfg->ops_addr), CHAT_F_INT("port", cfg->ops_port));
        goto out;
    }
    err = nf_pipeline_run(parts.pipeline);
    chat_ops_stop(ops);
    chat_log_info("notify stopped", CHAT_F_ERR(err));
    status = err == CHAT_OK || err == CHAT_ERR_STOPPED ? EXIT_SUCCESS : EXIT_FAILURE;
out:
    nf_pipeline_free(parts.pipeline);
    ns_sender_free(parts.sender);
    nt_cache_free(parts.tenants);
    return status;
}

/* The VAPID key pair, if one is configured: *vapid NULL without one. False (logged) for a key
 * that is not one, or a key without a subject. */
static bool vapid_load(const notify_cfg_t *cfg, chat_vapid_t **vapid)
{
    *vapid = NULL;
    if (cfg->vapid_private[0] == '\0') {
        chat_log_warn("no VAPID key (CHAT_VAPID_PRIVATE_KEY): Web Push is off");
        return true;
    }
    char why[160] = "";
    if (chat_vapid_load(cfg->vapid_private, vapid, why, sizeof why) != CHAT_OK) {
        chat_log_error("configuration error", CHAT_F_STR("var", "CHAT_VAPID_PRIVATE_KEY"),
                       CHAT_F_STR("reason", why));
        return false;
    }
    if (strncmp(cfg->vapid_subject, "mailto:", 7) != 0 &&
        strncmp(cfg->vapid_subject, "https:", 6) != 0) {
        chat_log_error("configuration error", CHAT_F_STR("var", "CHAT_VAPID_SUBJECT"),
                       CHAT_F_STR("reason", "a mailto: or https: URL is required with a VAPID "
                                            "key"));
        chat_vapid_free(*vapid);
        *vapid = NULL;
        return false;
    }
    chat_log_info("Web Push on", CHAT_F_STR("vapid_public_key", chat_vapid_public_b64(*vapid)));
    return true;
}

int main(int argc, char **argv)
{
    chat_log_init("notify", CHAT_LOG_INFO);
    notify_cfg_t cfg = {0};
    chat_cfg_result_t loaded = chat_service_configure(
        cfg_table, &cfg, argc, argv, PROGRAM,
        "chat-notify: Web Push and email digests for offline members, webhooks for the "
        "tenants' backends");
    if (loaded != CHAT_CFG_LOADED)
        return loaded == CHAT_CFG_HELP ? EXIT_SUCCESS : EXIT_CONFIG;
    chat_vapid_t *vapid = NULL;
    if (!vapid_load(&cfg, &vapid)) {
        chat_cfg_free(cfg_table, &cfg);
        return EXIT_CONFIG;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    chat_metrics_t *metrics = chat_metrics_new();
    chat_tenant_labels_t *tenant_labels =
        chat_tenant_labels_new(cfg.metrics_tenants, (int)cfg.metrics_tenants_max);
    chat_store_t *store = NULL;
    int status = EXIT_FAILURE;
    if (metrics == NULL || tenant_labels == NULL ||
        chat_service_metrics_attach(metrics, "notify") != CHAT_OK)
        chat_log_error("out of memory");
    else if (chat_service_store_open(cfg.mongo_uri, PROGRAM, (int)cfg.connect_timeout_ms, &store))
        status = run(&cfg, metrics, store, vapid, tenant_labels);
    chat_store_destroy(store);
    chat_tenant_labels_destroy(tenant_labels);
    chat_metrics_destroy(metrics);
    chat_vapid_free(vapid);
    curl_global_cleanup();
    chat_cfg_free(cfg_table, &cfg);
    return status;
}
