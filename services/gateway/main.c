/* chat-gateway: the WebSocket edge of the message path. This file holds the configuration
 * table, connects the parts in order (each failure exits naming its variable) and tears
 * them down in reverse after SIGTERM. The protocol lives in session.c, the sockets in
 * server.c; auth.c verifies tokens, join.c joins and resumes, history.c pages, inbound.c
 * sends, deliver.c delivers to the sockets, registrations.c keeps Redis up to date; the
 * blocking work runs on workers.c's threads and comes back through inbox.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/egress.h"
#include "common/jwt.h"
#include "common/log.h"
#include "common/ops_http.h"
#include "common/service.h"
#include "common/service_metrics.h"
#include "common/signals.h"
#include "common/notify_store.h"
#include "common/tenants.h"
#include "common/tls.h"
#include "services/gateway/gateway.h"
#include "services/gateway/online.h"
#include "services/gateway/registrations.h"
#include "services/gateway/room_list.h"
#include "services/gateway/server.h"
#include "services/gateway/store_reads.h"

#define SERVICE "gateway"
#define SUMMARY "chat-gateway: WebSocket gateway (client protocol v1 on /v1/ws)"
#define INBOX_BOUND 65536 /* chat.deliver items waiting for the loop */
#define AUTH_WORKERS 2    /* threads for the tenant lookups of auth frames */

static const chat_cfg_entry_t cfg_table[] = {
    CHAT_CFG_INTEGER("CHAT_GATEWAY_INDEX", gw_config_t, index, "0", 0, CHAT_GATEWAY_INDEX_MAX,
                     "this gateway's partition of chat.deliver and its id (unique per gateway)"),
    CHAT_CFG_STRING("CHAT_GATEWAY_ADDR", gw_config_t, addr, "0.0.0.0",
                    "address the WebSocket listener binds"),
    CHAT_CFG_INTEGER("CHAT_GATEWAY_PORT", gw_config_t, port, "7410", 1, 65535,
                     "WebSocket port (endpoint ws://host:port/v1/ws)"),
    CHAT_CFG_OPS_ADDR(gw_config_t, ops_addr),
    CHAT_CFG_OPS_PORT(gw_config_t, ops_port, "7430"),
    CHAT_CFG_KAFKA_BROKERS(gw_config_t, brokers),
    CHAT_CFG_MONGO_URI(gw_config_t, mongo_uri),
    CHAT_CFG_REDIS_URL(gw_config_t, redis_url),
    CHAT_CFG_INTEGER("CHAT_GATEWAY_WORKERS", gw_config_t, workers, "4", 1, 256,
                     "threads for the MongoDB reads of joins, history and room lists"),
    CHAT_CFG_INTEGER("CHAT_GATEWAY_REGISTRATION_WORKERS", gw_config_t, registration_workers, "2", 1,
                     64,
                     "threads that keep the Redis registrations in order per room (joins, "
                     "leaves, heartbeats); never behind a MongoDB read"),
    CHAT_CFG_ENUM("CHAT_GATEWAY_WRITE_MODE", gw_config_t, write_mode, "direct", "direct|writable",
                  "direct: frames go out as soon as an event is handled, the socket's queue in "
                  "one write; writable: only when lws calls back (its rule), for comparison"),
    CHAT_CFG_INTEGER("CHAT_MAX_FRAME_BYTES", gw_config_t, max_frame_bytes, "65536", 1024, 16777216,
                     "largest client message (all fragments); larger ones close with 1009"),
    CHAT_CFG_MAX_TEXT_CHARS(gw_config_t, max_text_chars),
    CHAT_CFG_INTEGER("CHAT_RATE_PER_SEC", gw_config_t, rate_per_sec, "20", 1, 100000,
                     "frames per second a connection may send after auth (token bucket rate)"),
    CHAT_CFG_INTEGER("CHAT_RATE_BURST", gw_config_t, rate_burst, "40", 1, 1000000,
                     "token bucket size"),
    CHAT_CFG_INTEGER(
        "CHAT_RATE_CLOSE_AFTER", gw_config_t, rate_close_after, "20", 1, 1000000,
        "rate-limited frames (forgiven at 1/s) after which the connection closes with 4008"),
    CHAT_CFG_DURATION("CHAT_AUTH_TIMEOUT", gw_config_t, auth_timeout_ms, "10s", 1000, 600000,
                      "time to authenticate before close 4001"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_IDLE_PING", gw_config_t, idle_ping_ms, "30s", 1000, 3600000,
                      "a client silent this long is pinged (keeps proxies' idle timers alive)"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_IDLE_HANGUP", gw_config_t, idle_hangup_ms, "70s", 2000, 7200000,
                      "a client silent this long (no frame, no pong) is dropped"),
    CHAT_CFG_INTEGER("CHAT_GATEWAY_SEND_QUEUE", gw_config_t, send_queue, "1024", 16, 1000000,
                     "frames queued per socket; a full queue closes it with 1008 (too slow)"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_HEARTBEAT", gw_config_t, heartbeat_ms, "5s", 1000, 600000,
                      "refresh period of the Redis registrations (expiry: 3 periods; a dead "
                      "gateway's users go offline within 4)"),
    CHAT_CFG_INTEGER("CHAT_REPLAY_MAX", gw_config_t, replay_max, "500", 0, 100000,
                     "most messages a join with since replays"),
    CHAT_CFG_RECENT_MAX(gw_config_t, recent_max),
    CHAT_CFG_RECENT_TTL(gw_config_t, recent_ttl_ms),
    CHAT_CFG_INTEGER("CHAT_HISTORY_DEFAULT", gw_config_t, history_default, "50", 1, 100,
                     "messages of a history request without limit"),
    CHAT_CFG_DURATION("CHAT_TENANT_CACHE_TTL", gw_config_t, tenant_cache_ttl_ms, "30s", 0, 3600000,
                      "how long a tenant's secret is cached (unknown tenants: 5s)"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_SETTINGS_REFRESH", gw_config_t, settings_refresh_ms, "1s", 100,
                      60000,
                      "how often the tenants' settings revisions are read (a change of "
                      "allowed_origins or limits applies within about this long)"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_QUOTA_PERIOD", gw_config_t, quota_period_ms, "1s", 100, 60000,
                      "how often each gateway shares its per-tenant connection counts through "
                      "Redis (the others' counts are about this old when a limit is checked; a "
                      "dead gateway's stop counting after 5 periods)"),
    CHAT_CFG_CONNECT_TIMEOUT(gw_config_t, connect_timeout_ms, 600000,
                             "how long start-up waits for Kafka, MongoDB and Redis"),
    CHAT_CFG_LOG_LEVEL(gw_config_t, log_level),
    CHAT_CFG_TOPIC_INBOUND(gw_config_t, inbound_topic),
    CHAT_CFG_TOPIC_DELIVER(gw_config_t, deliver_topic),
    CHAT_CFG_TOPIC_EVENTS(gw_config_t, events_topic),
    CHAT_CFG_STRING("CHAT_VAPID_PUBLIC_KEY", gw_config_t, vapid_public, "",
                    "the deployment's VAPID public key (base64url of the 65-byte point, as "
                    "`chat-admin vapid generate` prints it), sent in welcome; empty: no Web Push"),
    CHAT_CFG_EGRESS(gw_config_t, egress_allow_http, egress_allow_private),
    CHAT_CFG_STRING("CHAT_WIDGET_DIR", gw_config_t, widget_dir, "",
                    "directory of the built widget (<build dir>/widget), served on /v1/widget.js "
                    "and the other widget paths; a file missing there stops start-up; empty: "
                    "those paths answer 404"),
    CHAT_CFG_STRING("CHAT_DEMO_TENANT", gw_config_t, demo_tenant, "",
                    "local demo only: with CHAT_DEMO_SECRET, serves /v1/demo and tokens for any "
                    "user of this tenant on /v1/demo/token; never set in production"),
    CHAT_CFG_SECRET("CHAT_DEMO_SECRET", gw_config_t, demo_secret, "",
                    "local demo only: the demo tenant's HS256 secret, signs /v1/demo/token"),
    CHAT_CFG_STRING("CHAT_DEMO_GATEWAYS", gw_config_t, demo_gateways, "",
                    "local demo only: comma-separated ws:// URLs /v1/demo/config lists; empty: "
                    "this gateway's own /v1/ws (from the request's Host)"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_DRAIN", gw_config_t, drain_ms, "10s", 0, 600000,
                      "on SIGTERM, the open connections are closed with 1012 (reconnect "
                      "elsewhere) spread over this window, new ones refused with 503; 0: all "
                      "at once"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_KAFKA_STALL", gw_config_t, kafka_stall_ms, "5s", 1000, 600000,
                      "records to chat.inbound outstanding this long without any acknowledged: "
                      "Kafka counts as unreachable, /readyz answers 503 and new sends, edits "
                      "and reactions get error internal at once (resend) until one is "
                      "acknowledged again"),
    CHAT_CFG_METRICS_TENANTS(gw_config_t, metrics_tenants),
    CHAT_CFG_METRICS_TENANTS_MAX(gw_config_t, metrics_tenants_max),
    CHAT_CFG_STRING("CHAT_GATEWAY_TLS_CERT", gw_config_t, tls_cert, "",
                    "PEM certificate chain (leaf first) to serve wss:// on CHAT_GATEWAY_PORT; "
                    "reloaded on SIGHUP; empty: plain ws:// (TLS ends at a proxy)"),
    CHAT_CFG_STRING("CHAT_GATEWAY_TLS_KEY", gw_config_t, tls_key, "",
                    "PEM private key of CHAT_GATEWAY_TLS_CERT (reloaded with it)"),
    CHAT_CFG_DURATION("CHAT_GATEWAY_HANDSHAKE_TIMEOUT", gw_config_t, handshake_timeout_ms, "10s",
                      1000, 120000,
                      "time a new socket has to complete its TLS and HTTP upgrade handshake "
                      "(whole seconds); a slower one is closed"),
    CHAT_CFG_INTEGER("CHAT_GATEWAY_HTTP_HEADER_MAX", gw_config_t, header_max, "8192", 1024, 65535,
                     "bytes of HTTP request headers kept per socket; a request with more is "
                     "refused and closed"),
    CHAT_CFG_INTEGER("CHAT_GATEWAY_UNAUTH_MAX", gw_config_t, unauth_max, "20000", 1, 10000000,
                     "WebSockets open without auth yet; upgrades beyond it get 503"),
    CHAT_CFG_INTEGER("CHAT_GATEWAY_UNAUTH_PER_IP_MAX", gw_config_t, unauth_per_ip_max, "0", 0,
                     10000000,
                     "of them, from one peer address; upgrades beyond it get 503; 0: no "
                     "per-address cap (the address a proxy connects from counts for all)"),
    CHAT_CFG_END,
};

static bool gateway_ready(void *ud, char *reason, size_t reason_len)
{
    gw_gateway_t *gw = ud;
    /* At once on SIGTERM, before the loop's next tick starts the drain: the load balancer
     * stops sending new connections here. */
    if (atomic_load(&gw->draining) || chat_signals_stop_requested()) {
        snprintf(reason, reason_len, "draining");
        return false;
    }
    int64_t stalled = gw_inbound_stalled_ms(gw->inbound);
    if (stalled >= gw->cfg->kafka_stall_ms) {
        snprintf(reason, reason_len, "kafka: no record acknowledged for %lld ms",
                 (long long)stalled);
        return false;
    }
    if (atomic_load(&gw->listening))
        return true;
    snprintf(reason, reason_len, "WebSocket listener not up");
    return false;
}

static void boot_id_make(char *out, size_t len)
{
    unsigned char raw[6];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        uint64_t fallback = (uint64_t)chat_clock_mono_us() ^ ((uint64_t)getpid() << 32);
        memcpy(raw, &fallback, sizeof raw);
    }
    size_t n = 0;
    for (size_t i = 0; i < sizeof raw && n + 2 < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%02x", raw[i]);
}

/* The topics must exist, and the index must name a partition of chat.deliver. */
static chat_err_t topics_check(const gw_config_t *cfg)
{
    const chat_topic_use_t topics[] = {
        {"CHAT_TOPIC_INBOUND", cfg->inbound_topic},
        {"CHAT_TOPIC_DELIVER", cfg->deliver_topic},
        {"CHAT_TOPIC_EVENTS", cfg->events_topic},
    };
    int parts[3];
    chat_err_t err =
        chat_topics_check(cfg->brokers, topics, 3, (int)cfg->connect_timeout_ms, parts, NULL);
    if (err != CHAT_OK)
        return err;
    if (chat_gateway_index_partition(cfg->index) >= parts[1]) {
        chat_log_error("gateway index is not a partition of chat.deliver",
                       CHAT_F_STR("var", "CHAT_GATEWAY_INDEX"), CHAT_F_INT("value", cfg->index),
                       CHAT_F_INT("partitions", parts));
        return CHAT_ERR_CONFIG;
    }
    return CHAT_OK;
}

/* A recent history smaller than a replay answers long resumes from MongoDB: allowed (Redis
 * memory is the operator's to spend), but said. */
static void recent_check(const gw_config_t *cfg)
{
    if (cfg->recent_max > 0 && cfg->recent_max < cfg->replay_max)
        chat_log_warn("CHAT_RECENT_MAX is below CHAT_REPLAY_MAX: resumes that miss more than it "
                      "are read from MongoDB",
                      CHAT_F_STR("var", "CHAT_RECENT_MAX"), CHAT_F_INT("value", cfg->recent_max),
                      CHAT_F_INT("replay_max", cfg->replay_max));
}

/* True if CHAT_VAPID_PUBLIC_KEY is empty or a public key a browser takes: unpadded base64url
 * of an uncompressed P-256 point (65 bytes, 0x04 first). Logs the error otherwise. */
static bool vapid_check(const char *key)
{
    size_t n = strlen(key), len = 0;
    if (n == 0)
        return true;
    unsigned char *raw = chat_jwt_b64url_decode(key, n, &len);
    bool ok = raw != NULL && len == 65 && raw[0] == 0x04;
    free(raw);
    if (!ok)
        chat_log_error("not a VAPID public key: expected unpadded base64url of a 65-byte "
                       "uncompressed P-256 point (0x04 first)",
                       CHAT_F_STR("var", "CHAT_VAPID_PUBLIC_KEY"), CHAT_F_INT("bytes", len));
    return ok;
}

static chat_err_t store_open(gw_gateway_t *gw)
{
    chat_err_t err = chat_store_new(gw->cfg->mongo_uri, "chat-gateway", &gw->store);
    if (err == CHAT_OK)
        err = chat_store_ping(gw->store, (int)gw->cfg->connect_timeout_ms);
    if (err == CHAT_OK && (err = gw_room_list_open(gw->store)) != CHAT_OK)
        chat_log_error("cannot create the indexes of user_rooms", CHAT_F_ERR(err));
    else if (err == CHAT_OK &&
             (err = chat_store_ensure_indexes(gw->store, chat_notify_store_indexes,
                                              chat_notify_store_nindexes)) != CHAT_OK)
        chat_log_error("cannot create the indexes of the notification collections",
                       CHAT_F_ERR(err));
    else if (err != CHAT_OK)
        chat_log_error("mongodb unreachable", CHAT_F_STR("var", "CHAT_MONGO_URI"), CHAT_F_ERR(err));
    return err;
}

static chat_err_t kafka_open(gw_gateway_t *gw)
{
    gw_inbound_conf_t ic = {
        .brokers = gw->cfg->brokers,
        .topic = gw->cfg->inbound_topic,
        .events_topic = gw->cfg->events_topic,
        .gw_id = gw->id,
        .connect_timeout_ms = (int)gw->cfg->connect_timeout_ms,
        .stall_ms = gw->cfg->kafka_stall_ms,
        .metrics = gw->metrics,
        .inbox = gw->inbox,
        .on_failed = gw_inbound_on_failed,
    };
    chat_err_t err = gw_inbound_new(&ic, &gw->inbound);
    if (err == CHAT_OK) {
        gw_deliver_conf_t dc = {
            .brokers = gw->cfg->brokers,
            .topic = gw->cfg->deliver_topic,
            .partition = chat_gateway_index_partition(gw->cfg->index),
            .connect_timeout_ms = (int)gw->cfg->connect_timeout_ms,
            .metrics = gw->metrics,
            .inbox = gw->inbox,
            .complete = gw_deliver_route,
        };
        err = gw_deliver_start(&dc, &gw->deliver);
    }
    if (err != CHAT_OK)
        chat_log_error("kafka unreachable", CHAT_F_STR("var", "CHAT_KAFKA_BROKERS"),
                       CHAT_F_ERR(err));
    return err;
}

/* gw_secret_lookup_fn over the tenants collection; ud is the chat_store_t. */
static chat_err_t tenant_secret(void *store, const char *tenant, char **secret, size_t *len)
{
    return chat_tenant_secret(store, tenant, secret, len);
}

/* The widget files and the demo (http.c), first: a wrong directory fails before any
 * connection is made. */
static chat_err_t http_open(gw_gateway_t *gw)
{
    const gw_config_t *cfg = gw->cfg;
    gw_http_site_t *site = &gw->http;
    bool any = cfg->addr[0] == '\0' || strcmp(cfg->addr, "0.0.0.0") == 0;
    bool v6 = strchr(cfg->addr, ':') != NULL;
    snprintf(site->self_host, sizeof site->self_host, "%s%s%s:%lld", v6 ? "[" : "",
             any ? "127.0.0.1" : cfg->addr, v6 ? "]" : "", cfg->port);
    chat_err_t err = CHAT_OK;
    if (cfg->widget_dir[0] != '\0')
        err = gw_widget_files_load(cfg->widget_dir, &site->widget);
    if (err == CHAT_OK)
        err = gw_demo_new(cfg->demo_tenant, cfg->demo_secret, cfg->demo_gateways, &site->demo);
    if (err == CHAT_ERR_NOMEM)
        chat_log_error("out of memory setting up the widget files and the demo");
    return err;
}

/* Creates everything the loop needs, in dependency order. */
static chat_err_t gateway_open(gw_gateway_t *gw)
{
    recent_check(gw->cfg);
    chat_err_t err = http_open(gw);
    if (err != CHAT_OK)
        return err;
    if ((err = topics_check(gw->cfg)) != CHAT_OK)
        return err;
    if ((err = store_open(gw)) != CHAT_OK)
        return err;
    gw->auth =
        gw_auth_new(gw->cfg->tenant_cache_ttl_ms, GW_AUTH_MISS_TTL_MS, tenant_secret, gw->store);
    gw->inbox = gw_inbox_new(INBOX_BOUND);
    if (gw->auth == NULL || gw->inbox == NULL)
        return CHAT_ERR_NOMEM;
    gw_policy_conf_t pc = {.redis_url = gw->cfg->redis_url,
                           .timeout_ms = (int)gw->cfg->connect_timeout_ms,
                           .refresh_ms = (int)gw->cfg->settings_refresh_ms,
                           .store = gw->store,
                           .metrics = gw->metrics,
                           .labels = gw->stats.tenant_labels,
                           .instance = gw->id,
                           .count_period_ms = (int)gw->cfg->quota_period_ms};
    if ((err = gw_policy_new(&pc, &gw->policy)) != CHAT_OK) {
        /* its tenant counts and settings revisions live in Redis */
        if (err == CHAT_ERR_REDIS)
            chat_log_error("redis unreachable", CHAT_F_STR("var", "CHAT_REDIS_URL"),
                           CHAT_F_ERR(err));
        return err;
    }
    gw_workers_conf_t wc = {
        .nthreads = (size_t)gw->cfg->registration_workers,
        .ctx_new = gw_registrations_ctx_new,
        .ctx_free = gw_registrations_ctx_free,
        .ud = gw,
        .inbox = gw->inbox,
    };
    /* before the workers (and any connection): what is in the hash now is a dead run's */
    if ((err = gw_online_reset(gw)) != CHAT_OK)
        return err;
    if ((err = gw_workers_new(&wc, &gw->workers)) != CHAT_OK)
        return err;
    wc.nthreads = (size_t)gw->cfg->workers;
    if ((err = gw_workers_new(&wc, &gw->readers)) != CHAT_OK)
        return err;
    gw_workers_conf_t ac = {.nthreads = AUTH_WORKERS, .inbox = gw->inbox};
    if ((err = gw_workers_new(&ac, &gw->auth_workers)) != CHAT_OK)
        return err;
    if ((err = kafka_open(gw)) != CHAT_OK)
        return err;
    return gw_server_prepare(gw);
}

/* Stops threads first (their tasks may still reach the inbox), then frees. */
static void gateway_close(gw_gateway_t *gw)
{
    gw_deliver_stop(gw->deliver);
    gw_workers_free(gw->auth_workers);
    gw_workers_free(gw->workers); /* runs the queued Redis removals first */
    gw_workers_free(gw->readers); /* after the joins that forward to it */
    gw_inbound_free(gw->inbound); /* flushes pending sends */
    gw_inbox_free(gw->inbox);
    if (gw->prepared)
        gw_server_release(gw);
    gw_auth_free(gw->auth);
    gw_policy_free(gw->policy);
    chat_store_destroy(gw->store);
    gw_demo_free(gw->http.demo);
    gw_widget_files_free(gw->http.widget);
}

static int gateway_main(const gw_config_t *cfg)
{
    gw_gateway_t gw;
    memset(&gw, 0, sizeof gw);
    gw.cfg = cfg;
    gw.egress = (chat_egress_policy_t){.allow_http = cfg->egress_allow_http,
                                       .allow_private = cfg->egress_allow_private};
    atomic_init(&gw.listening, false);
    atomic_init(&gw.draining, false);
    chat_gateway_id(cfg->index, gw.id, sizeof gw.id); /* in range: the config table checked */
    boot_id_make(gw.boot, sizeof gw.boot);
    gw.metrics = chat_metrics_new();
    /* Process, build, MongoDB and Redis metrics: before gateway_open() opens the stores. */
    if (gw.metrics == NULL || chat_service_metrics_attach(gw.metrics, "gateway") != CHAT_OK ||
        gw_stats_init(&gw.stats, gw.metrics, cfg->metrics_tenants, (int)cfg->metrics_tenants_max) !=
            CHAT_OK) {
        chat_log_error("out of memory");
        gw_stats_free(&gw.stats);
        chat_metrics_destroy(gw.metrics);
        return 1;
    }
    chat_ops_t *ops = NULL;
    chat_err_t err =
        chat_ops_start(cfg->ops_addr, (int)cfg->ops_port, gw.metrics, gateway_ready, &gw, &ops);
    if (err != CHAT_OK)
        chat_log_error("cannot start the ops server", CHAT_F_STR("var", "CHAT_OPS_PORT"),
                       CHAT_F_INT("value", cfg->ops_port));
    if (err == CHAT_OK)
        err = gateway_open(&gw);
    if (err == CHAT_OK && !chat_signals_stop_requested()) {
        chat_log_info("gateway started", CHAT_F_STR("gateway", gw.id), CHAT_F_STR("boot", gw.boot));
        err = gw_server_run(&gw);
    }
    chat_ops_stop(ops);
    gateway_close(&gw);
    gw_stats_free(&gw.stats);
    chat_metrics_destroy(gw.metrics);
    chat_log_info("gateway stopped", CHAT_F_ERR(err));
    return err == CHAT_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    chat_log_init(SERVICE, CHAT_LOG_INFO);
    gw_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    chat_cfg_result_t loaded =
        chat_service_configure(cfg_table, &cfg, argc, argv, "chat-gateway", SUMMARY);
    if (loaded != CHAT_CFG_LOADED)
        return loaded == CHAT_CFG_HELP ? 0 : 1;
    /* The TLS pair is checked before anything connects (server.c loads it again to serve
     * it): a bad file is the error an operator sees, not a later one. */
    chat_tls_cert_t *tls = NULL;
    if ((cfg.tls_cert[0] != '\0' || cfg.tls_key[0] != '\0') &&
        chat_tls_cert_load(cfg.tls_cert, cfg.tls_key, "CHAT_GATEWAY_TLS_CERT",
                           "CHAT_GATEWAY_TLS_KEY", &tls) != CHAT_OK) {
        chat_cfg_free(cfg_table, &cfg);
        return 1;
    }
    chat_tls_cert_free(tls);
    if (!vapid_check(cfg.vapid_public)) {
        chat_cfg_free(cfg_table, &cfg);
        return 1;
    }
    if (cfg.idle_hangup_ms <= cfg.idle_ping_ms) {
        chat_log_error("CHAT_GATEWAY_IDLE_HANGUP must be longer than CHAT_GATEWAY_IDLE_PING "
                       "(a ping needs time to be answered)",
                       CHAT_F_STR("var", "CHAT_GATEWAY_IDLE_HANGUP"),
                       CHAT_F_INT("hangup_ms", cfg.idle_hangup_ms),
                       CHAT_F_INT("ping_ms", cfg.idle_ping_ms));
        chat_cfg_free(cfg_table, &cfg);
        return 1;
    }
    int rc = gateway_main(&cfg);
    chat_cfg_free(cfg_table, &cfg);
    return rc;
}
