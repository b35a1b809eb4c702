/* chat-api: the tenant server API. Reads its configuration, connects MongoDB, Redis and Kafka,
 * serves the ops endpoints, registers the resource modules' routes and serves HTTP until
 * SIGTERM; requests are handled by http.c and the modules (docs/server-api.md). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/contract.h"
#include "common/egress.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/ops_http.h"
#include "common/redis.h"
#include "common/service.h"
#include "common/service_metrics.h"
#include "common/signals.h"
#include "common/store.h"
#include "common/tenant_label.h"
#include "common/tls.h"
#include "services/api/api.h"
#include "services/api/http.h"
#include "services/api/inbound.h"
#include "services/api/jobs.h"
#include "services/api/tls.h"

#define PROGRAM "chat-api"
#define SUMMARY                                                                                    \
    "chat-api: the tenant server API (HTTP + JSON under /v1): private rooms and members, "         \
    "system messages, the tenant's edits and deletes, blocks, users, exports, stats, settings, "   \
    "moderation rules, review queue and rescans, webhook endpoints, users' notification "          \
    "settings"
#define REDIS_TIMEOUT_MARGIN_MS 5000 /* a BLPOP of the reply timeout must not time out first */

typedef struct api_cfg {
    char *brokers;
    char *mongo_uri;
    char *redis_url;
    char *ops_addr;
    long long ops_port;
    char *addr;
    long long port;
    long long threads;
    long long max_body;
    long long rate;
    long long burst;
    long long reply_timeout_ms;
    long long max_members;
    long long secret_ttl_ms;
    long long linger_ms;
    char *export_dir;
    char *instance_id;
    long long max_text_chars;
    long long connect_timeout_ms;
    char *log_level;
    char *inbound_topic;
    char *moderation_topic;
    bool egress_allow_http;
    bool egress_allow_private;
    char *metrics_tenants;
    long long metrics_tenants_max;
    char *tls_cert; /* CHAT_API_TLS_CERT: "" for plain HTTP */
    char *tls_key;
    long long per_ip_max;      /* CHAT_API_PER_IP_MAX */
    long long idle_timeout_ms; /* CHAT_API_IDLE_TIMEOUT */
} api_cfg_t;

static const chat_cfg_entry_t cfg_table[] = {
    CHAT_CFG_KAFKA_BROKERS(api_cfg_t, brokers),
    CHAT_CFG_MONGO_URI(api_cfg_t, mongo_uri),
    CHAT_CFG_REDIS_URL(api_cfg_t, redis_url),
    CHAT_CFG_OPS_ADDR(api_cfg_t, ops_addr),
    CHAT_CFG_OPS_PORT(api_cfg_t, ops_port, "7422"),
    CHAT_CFG_STRING("CHAT_API_ADDR", api_cfg_t, addr, "127.0.0.1",
                    "address of the HTTP listener (numeric IPv4 or IPv6)"),
    CHAT_CFG_INTEGER("CHAT_API_PORT", api_cfg_t, port, "7405", 0, 65535,
                     "port of the HTTP listener (0: any free port)"),
    CHAT_CFG_INTEGER("CHAT_API_THREADS", api_cfg_t, threads, "8", 1, 256,
                     "HTTP threads; a request waiting for the message service holds one"),
    CHAT_CFG_INTEGER("CHAT_API_MAX_BODY", api_cfg_t, max_body, "1048576", 1024, 67108864,
                     "largest request body in bytes; larger ones get 413"),
    CHAT_CFG_INTEGER("CHAT_API_RATE", api_cfg_t, rate, "100", 1, 1000000,
                     "requests per second per tenant; more get 429 with Retry-After"),
    CHAT_CFG_INTEGER("CHAT_API_BURST", api_cfg_t, burst, "200", 1, 1000000,
                     "requests per tenant allowed at once above the rate"),
    CHAT_CFG_DURATION("CHAT_API_REPLY_TIMEOUT", api_cfg_t, reply_timeout_ms, "10s", 100, 60000,
                      "how long a send, edit or delete waits for the message service's answer "
                      "(then 504)"),
    CHAT_CFG_INTEGER("CHAT_API_MAX_MEMBERS", api_cfg_t, max_members, "1000", 1, 100000,
                     "members of a room unless the tenant's settings (limits.members_per_room) "
                     "say otherwise"),
    CHAT_CFG_DURATION("CHAT_API_SECRET_TTL", api_cfg_t, secret_ttl_ms, "2s", 0, 600000,
                      "how long a tenant's secret is cached (a rotated secret applies after "
                      "this)"),
    CHAT_CFG_INTEGER("CHAT_API_LINGER_MS", api_cfg_t, linger_ms, "1", 0, 1000,
                     "linger.ms of the chat.inbound producer"),
    CHAT_CFG_STRING("CHAT_API_EXPORT_DIR", api_cfg_t, export_dir, "exports",
                    "directory exports are written under"),
    CHAT_CFG_STRING("CHAT_INSTANCE_ID", api_cfg_t, instance_id, "",
                    "name of this instance in request ids and job leases (a random id of the "
                    "process is added; empty: \"api\")"),
    CHAT_CFG_MAX_TEXT_CHARS(api_cfg_t, max_text_chars),
    CHAT_CFG_CONNECT_TIMEOUT(api_cfg_t, connect_timeout_ms, 600000,
                             "how long Kafka, MongoDB and Redis may take to answer at start"),
    CHAT_CFG_LOG_LEVEL(api_cfg_t, log_level),
    CHAT_CFG_TOPIC_INBOUND(api_cfg_t, inbound_topic),
    CHAT_CFG_TOPIC_MODERATION(api_cfg_t, moderation_topic),
    CHAT_CFG_EGRESS(api_cfg_t, egress_allow_http, egress_allow_private),
    CHAT_CFG_METRICS_TENANTS(api_cfg_t, metrics_tenants),
    CHAT_CFG_METRICS_TENANTS_MAX(api_cfg_t, metrics_tenants_max),
    CHAT_CFG_STRING("CHAT_API_TLS_CERT", api_cfg_t, tls_cert, "",
                    "PEM certificate chain (leaf first) to serve HTTPS on CHAT_API_PORT; "
                    "reloaded on SIGHUP; empty: plain HTTP (TLS ends at a proxy)"),
    CHAT_CFG_STRING("CHAT_API_TLS_KEY", api_cfg_t, tls_key, "",
                    "PEM private key of CHAT_API_TLS_CERT (reloaded with it)"),
    CHAT_CFG_INTEGER("CHAT_API_PER_IP_MAX", api_cfg_t, per_ip_max, "0", 0, 1024,
                     "open connections from one address (of 1024 in all); a further one is "
                     "closed at once; 0: no per-address cap"),
    CHAT_CFG_DURATION("CHAT_API_IDLE_TIMEOUT", api_cfg_t, idle_timeout_ms, "60s", 1000, 3600000,
                      "a connection that sends nothing this long (whole seconds) is closed"),
    CHAT_CFG_END};

/* Everything the running service holds; released in reverse order by service_stop. */
typedef struct service {
    api_ctx_t ctx;
    chat_metrics_t *metrics;
    chat_tenant_labels_t *tenant_labels;
    chat_ops_t *ops;
    chat_store_t *store;
    chat_fleet_t *fleet; /* the api instances alive: shares of api_calls_per_s */
    char fleet_id[96];
    atomic_bool ready;
} service_t;

static bool ops_ready(void *ud, char *reason, size_t reason_len)
{
    service_t *s = ud;
    if (atomic_load(&s->ready))
        return true;
    snprintf(reason, reason_len, "not serving HTTP yet");
    return false;
}

static bool start_store(service_t *s, const api_cfg_t *cfg)
{
    return chat_service_store_open(cfg->mongo_uri, PROGRAM, (int)cfg->connect_timeout_ms,
                                   &s->store);
}

/* Redis must answer at start; handlers then keep one connection per thread. */
static bool start_redis(const api_cfg_t *cfg)
{
    chat_redis_t *r = NULL;
    chat_err_t err = chat_redis_connect(cfg->redis_url, (int)cfg->connect_timeout_ms, &r);
    chat_redis_free(r);
    if (err != CHAT_OK) {
        chat_service_start_failed(
            "CHAT_REDIS_URL", err == CHAT_ERR_CONFIG ? "bad Redis URL" : "Redis unreachable", err);
        return false;
    }
    return true;
}

static bool start_bus(service_t *s, const api_cfg_t *cfg)
{
    if (cfg->brokers[0] == '\0') {
        chat_service_start_failed("CHAT_KAFKA_BROKERS", "empty value", CHAT_ERR_CONFIG);
        return false;
    }
    const chat_topic_use_t topics[] = {{"CHAT_TOPIC_INBOUND", cfg->inbound_topic},
                                       {"CHAT_TOPIC_MODERATION", cfg->moderation_topic}};
    const char *bad_var = NULL;
    chat_err_t err = chat_topics_check(cfg->brokers, topics, sizeof topics / sizeof topics[0],
                                       (int)cfg->connect_timeout_ms, NULL, &bad_var);
    if (err != CHAT_OK) {
        chat_service_start_failed(bad_var, "Kafka topics not usable", err);
        return false;
    }
    err =
        api_inbound_open(&s->ctx, cfg->brokers, (int)cfg->linger_ms, (int)cfg->connect_timeout_ms);
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

/* Every module's routes. */
static bool register_modules(api_ctx_t *ctx)
{
    chat_err_t err = api_rooms_register(ctx);
    if (err == CHAT_OK)
        err = api_members_register(ctx);
    if (err == CHAT_OK)
        err = api_messages_register(ctx);
    if (err == CHAT_OK)
        err = api_blocks_register(ctx);
    if (err == CHAT_OK)
        err = api_users_register(ctx);
    if (err == CHAT_OK)
        err = api_exports_register(ctx);
    if (err == CHAT_OK)
        err = api_stats_register(ctx);
    if (err == CHAT_OK)
        err = api_settings_register(ctx);
    if (err == CHAT_OK)
        err = api_moderation_register(ctx);
    if (err == CHAT_OK)
        err = api_rescan_register(ctx);
    if (err == CHAT_OK)
        err = api_webhooks_register(ctx);
    if (err == CHAT_OK)
        err = api_notifications_register(ctx);
    if (err != CHAT_OK)
        chat_log_error("cannot register the routes", CHAT_F_ERR(err));
    return err == CHAT_OK;
}

static bool service_start(service_t *s, const api_cfg_t *cfg)
{
    s->metrics = chat_metrics_new();
    s->tenant_labels = chat_tenant_labels_new(cfg->metrics_tenants, (int)cfg->metrics_tenants_max);
    if (s->metrics == NULL || s->tenant_labels == NULL ||
        chat_service_metrics_attach(s->metrics, "api") != CHAT_OK) {
        chat_log_error("out of memory at start");
        return false;
    }
    /* A bad certificate stops start-up before anything is connected. */
    bool tls = cfg->tls_cert[0] != '\0' || cfg->tls_key[0] != '\0';
    if (tls && api_tls_open(cfg->tls_cert, cfg->tls_key) != CHAT_OK)
        return false;
    chat_err_t err =
        chat_ops_start(cfg->ops_addr, (int)cfg->ops_port, s->metrics, ops_ready, s, &s->ops);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_OPS_PORT", "cannot serve the ops endpoints", err);
        return false;
    }
    if (!start_store(s, cfg) || !start_redis(cfg))
        return false;
    s->ctx = (api_ctx_t){
        .store = s->store,
        .redis_uri = cfg->redis_url,
        .topic_inbound = cfg->inbound_topic,
        .topic_moderation = cfg->moderation_topic,
        .metrics = s->metrics,
        .tenant_labels = s->tenant_labels,
        .instance = cfg->instance_id,
        .export_dir = cfg->export_dir,
        .reply_timeout_ms = cfg->reply_timeout_ms,
        .max_text_chars = (long)cfg->max_text_chars,
        .max_members = (long)cfg->max_members,
        .api_rate = (long)cfg->rate,
        .redis_timeout_ms = (int)(cfg->reply_timeout_ms + REDIS_TIMEOUT_MARGIN_MS),
        .egress = {.allow_http = cfg->egress_allow_http,
                   .allow_private = cfg->egress_allow_private},
    };
    /* Each instance announces itself (chat:api:<id>, refreshed every second, expiring 5 s
     * after it stops) so that every instance takes 1/n of a tenant's api_calls_per_s. */
    snprintf(s->fleet_id, sizeof s->fleet_id, "%.64s-%ld-%08lx",
             cfg->instance_id[0] != '\0' ? cfg->instance_id : "api", (long)getpid(),
             (unsigned long)(chat_clock_wall_ms() ^ (int64_t)(uintptr_t)s) & 0xffffffffUL);
    chat_fleet_conf_t fc = {.redis_url = cfg->redis_url,
                            .timeout_ms = s->ctx.redis_timeout_ms,
                            .prefix = "chat:api",
                            .instance = s->fleet_id,
                            .period_ms = 1000,
                            .metrics = s->metrics,
                            .errors_metric = "chat_api_instance_count_errors_total"};
    if (chat_fleet_new(&fc, &s->fleet) != CHAT_OK) {
        chat_log_error("out of memory at start");
        return false;
    }
    s->ctx.fleet = s->fleet;
    if (!start_bus(s, cfg))
        return false;
    err = api_http_new(&s->ctx);
    if (err != CHAT_OK) {
        chat_log_error("out of memory at start");
        return false;
    }
    if (!register_modules(&s->ctx))
        return false;
    api_http_conf_t hc = {
        .addr = cfg->addr,
        .port = (int)cfg->port,
        .threads = (int)cfg->threads,
        .max_body = (size_t)cfg->max_body,
        .rate = (double)cfg->rate,
        .burst = (double)cfg->burst,
        .secret_ttl_ms = cfg->secret_ttl_ms,
        .leeway_s = 30,
        .tls = tls,
        .per_ip_max = (unsigned)cfg->per_ip_max,
        .idle_timeout_s = (unsigned)((cfg->idle_timeout_ms + 999) / 1000),
    };
    err = api_http_start(&s->ctx, &hc);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_API_PORT", "cannot serve HTTP", err);
        return false;
    }
    err = api_jobs_start(&s->ctx);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_MONGO_URI", "cannot start the jobs runner", err);
        return false;
    }
    return true;
}

static void service_stop(service_t *s)
{
    atomic_store(&s->ready, false);
    api_jobs_stop(&s->ctx);    /* the job in hand is released for another instance */
    api_http_destroy(&s->ctx); /* requests in hand finish: they may still produce */
    api_tls_close();
    api_inbound_close(&s->ctx);
    chat_fleet_free(s->fleet); /* the others take this one's share at once */
    api_redis_release();
    chat_store_destroy(s->store);
    chat_ops_stop(s->ops);
    chat_tenant_labels_destroy(s->tenant_labels);
    chat_metrics_destroy(s->metrics);
}

int main(int argc, char **argv)
{
    chat_log_init("api", CHAT_LOG_INFO);
    api_cfg_t cfg = {0};
    chat_cfg_result_t loaded =
        chat_service_configure(cfg_table, &cfg, argc, argv, PROGRAM, SUMMARY);
    if (loaded != CHAT_CFG_LOADED)
        return loaded == CHAT_CFG_HELP ? 0 : 1;
    /* Before any thread: curl_global_init is not thread-safe (POST /v1/webhooks/{id}/test). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        chat_log_error("libcurl could not be initialised");
        chat_cfg_free(cfg_table, &cfg);
        return 1;
    }
    service_t s = {0};
    atomic_init(&s.ready, false);
    int rc = 1;
    if (service_start(&s, &cfg)) {
        atomic_store(&s.ready, true);
        chat_log_info("serving", CHAT_F_INT("port", api_http_port(&s.ctx)),
                      CHAT_F_INT("ops_port", chat_ops_port(s.ops)));
        /* TLS: reloaded within a second of SIGHUP, within CHAT_TLS_WATCH_MS of a change of
         * its files */
        int64_t watched_ms = chat_clock_mono_ms();
        while (!chat_signals_wait_stop(1000)) {
            bool changed = false;
            if (chat_clock_mono_ms() - watched_ms >= CHAT_TLS_WATCH_MS) {
                watched_ms = chat_clock_mono_ms();
                changed = api_tls_files_changed();
            }
            if (chat_signals_take_reload() || changed)
                api_tls_reload();
        }
        chat_log_info("stopping");
        rc = 0;
    }
    service_stop(&s);
    curl_global_cleanup();
    chat_cfg_free(cfg_table, &cfg);
    return rc;
}
