/* What the gateway's parts share: its configuration and the object that ties the loop's
 * tables (sessions, rooms) to the other threads (workers, chat.deliver consumer, producer).
 * Internal to services/gateway. */
#ifndef CHAT_GATEWAY_GATEWAY_H
#define CHAT_GATEWAY_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/contract.h"
#include "common/egress.h"
#include "common/metrics.h"
#include "common/store.h"
#include "common/strmap.h"
#include "services/gateway/auth.h"
#include "services/gateway/deliver.h"
#include "services/gateway/expiry.h"
#include "services/gateway/http.h"
#include "services/gateway/inbound.h"
#include "services/gateway/inbox.h"
#include "services/gateway/policy.h"
#include "services/gateway/rooms.h"
#include "services/gateway/session.h"
#include "services/gateway/stats.h"
#include "services/gateway/timeouts.h"
#include "services/gateway/workers.h"

/* Filled from the environment by main.c's table (types as common/config.h stores them;
 * durations in ms). */
typedef struct gw_config {
    long long index;
    char *addr;
    long long port;
    char *ops_addr;
    long long ops_port;
    char *brokers;
    char *mongo_uri;
    char *redis_url;
    long long workers;
    long long registration_workers;
    char *write_mode; /* CHAT_GATEWAY_WRITE_MODE: "direct" or "writable" */
    long long max_frame_bytes;
    long long max_text_chars;
    long long rate_per_sec;
    long long rate_burst;
    long long rate_close_after;
    long long auth_timeout_ms;
    long long idle_ping_ms;
    long long idle_hangup_ms;
    long long send_queue;
    long long heartbeat_ms;
    long long replay_max;
    long long recent_max;
    long long recent_ttl_ms;
    long long history_default;
    long long tenant_cache_ttl_ms;
    long long settings_refresh_ms; /* CHAT_GATEWAY_SETTINGS_REFRESH */
    long long quota_period_ms;     /* CHAT_GATEWAY_QUOTA_PERIOD */
    long long connect_timeout_ms;
    char *log_level;
    char *inbound_topic;
    char *deliver_topic;
    char *events_topic;
    char *vapid_public; /* CHAT_VAPID_PUBLIC_KEY: "" if Web Push is not configured */
    bool egress_allow_http;
    bool egress_allow_private;
    char *widget_dir;         /* CHAT_WIDGET_DIR: "" if the widget is not served */
    char *demo_tenant;        /* CHAT_DEMO_TENANT: "" if the demo is off */
    char *demo_secret;        /* CHAT_DEMO_SECRET (never logged) */
    char *demo_gateways;      /* CHAT_DEMO_GATEWAYS: comma-separated ws URLs, "" for the own one */
    long long drain_ms;       /* CHAT_GATEWAY_DRAIN: window the closes of a stop spread over */
    long long kafka_stall_ms; /* CHAT_GATEWAY_KAFKA_STALL: no ack from Kafka this long: unready */
    char *metrics_tenants;    /* CHAT_METRICS_TENANTS */
    long long metrics_tenants_max; /* CHAT_METRICS_TENANTS_MAX */
    /* the edge (server.c): TLS and the limits of connections not yet authenticated */
    char *tls_cert;                 /* CHAT_GATEWAY_TLS_CERT: PEM chain; "" plain ws:// */
    char *tls_key;                  /* CHAT_GATEWAY_TLS_KEY */
    long long handshake_timeout_ms; /* CHAT_GATEWAY_HANDSHAKE_TIMEOUT */
    long long header_max;           /* CHAT_GATEWAY_HTTP_HEADER_MAX */
    long long unauth_max;           /* CHAT_GATEWAY_UNAUTH_MAX */
    long long unauth_per_ip_max;    /* CHAT_GATEWAY_UNAUTH_PER_IP_MAX; 0: no per-address cap */
} gw_config_t;

#define GW_BOOT_ID_MAX 20
#define GW_CONN_ID_MAX 64

typedef struct gw_gateway {
    const gw_config_t *cfg;
    char id[CHAT_GATEWAY_ID_MAX]; /* gateway id: the index in decimal (common/contract.h) */
    char boot[GW_BOOT_ID_MAX];    /* random per process start */
    uint64_t conn_seq;            /* connections accepted so far */

    chat_metrics_t *metrics;
    gw_stats_t stats;
    chat_store_t *store;
    gw_auth_t *auth;
    gw_policy_t *policy; /* tenant settings: origins (policy.h) */
    gw_inbox_t *inbox;
    /* Registrations in Redis, in order per room (joins' step 1, leaves, heartbeats), and the
     * writes that must keep that order; never a MongoDB read that can take seconds, so a
     * heartbeat never waits behind one (a late heartbeat lets the room's registration lapse
     * and broadcast stops sending the room here). */
    gw_workers_t *workers;
    gw_workers_t *readers;      /* MongoDB reads: joins' step 2, history, rooms, lookups */
    gw_workers_t *auth_workers; /* tenant lookups of auth frames only */
    gw_inbound_t *inbound;
    gw_deliver_t *deliver;
    chat_egress_policy_t egress; /* what push_subscribe accepts as an endpoint */
    gw_http_site_t http;         /* the widget files and the demo (http.c); owned here */

    /* loop-owned */
    gw_rooms_t *rooms;
    chat_strmap_t *sessions; /* connection id -> gw_session_t */
    gw_session_ops_t session_ops;
    gw_session_env_t session_env;
    bool prepared;            /* gw_server_prepare ran: gw_server_release must run */
    bool write_direct;        /* write_mode "direct" */
    void *dirty;              /* server.c: sockets with frames to flush (its conn_data) */
    gw_timeouts_t timeouts;   /* server.c: every connection's deadline */
    gw_expiry_t expiries;     /* server.c: every authenticated connection's token exp */
    unsigned char *write_buf; /* server.c: frames of one socket gathered for one send() */
    bool shutting_down;
    /* A stop was asked: the connections are being closed over CHAT_GATEWAY_DRAIN, new
     * upgrades are refused (503) and /readyz says so (read by the ops thread). */
    atomic_bool draining;
    uint64_t auth_overloads_unlogged; /* 1013 closes since the last overload log line */
    int64_t auth_overload_logged_ms;

    /* the libwebsockets context, guarded for wakes from other threads */
    pthread_mutex_t lws_lock;
    void *lws;
    atomic_bool listening;
    bool uv_loop; /* the libuv event library is in use */
    /* the edge (server.c) */
    struct chat_tls_cert *tls;  /* the certificate served; NULL without TLS */
    void *ssl_ctx;              /* the listening vhost's OpenSSL SSL_CTX (lws owns it) */
    size_t unauth;              /* WebSockets open and not authenticated yet */
    chat_strmap_t *unauth_ips;  /* peer address -> its unauthenticated count (per-IP cap) */
    chat_gauge_t *unauth_gauge; /* chat_gateway_unauthenticated_connections */
    chat_counter_t *upgrades_refused[2]; /* chat_gateway_upgrades_refused_total by reason */
    chat_counter_t *tls_reloads[2];      /* chat_gateway_tls_reloads_total: ok, failed */
    uint64_t tls_stamp;                  /* chat_tls_files_stamp at the last (re)load */
    int64_t tls_watched_ms;              /* when the files were last looked at */
} gw_gateway_t;

/* The session of connection conn, or NULL once it closed. Loop only: answers of other
 * threads carry the connection id rather than the session, and a session that closed
 * while its answer was under way is simply not found. */
static inline gw_session_t *gw_gateway_session(gw_gateway_t *gw, const char *conn)
{
    return chat_strmap_get(gw->sessions, conn);
}

#endif
