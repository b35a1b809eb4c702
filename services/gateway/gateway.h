/* What the gateway's parts share: its configuration and the object that ties the loop's
 * tables (sessions, rooms) to the other threads (workers, chat.deliver consumer, producer).
 * Internal to services/gateway. */
#ifndef CHAT_GATEWAY_GATEWAY_H
#define CHAT_GATEWAY_GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/metrics.h"
#include "common/store.h"
#include "services/gateway/auth.h"
#include "services/gateway/deliver.h"
#include "services/gateway/inbound.h"
#include "services/gateway/inbox.h"
#include "services/gateway/rooms.h"
#include "services/gateway/session.h"
#include "services/gateway/stats.h"
#include "common/strmap.h"
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
    long long max_frame_bytes;
    long long max_text_chars;
    long long rate_per_sec;
    long long rate_burst;
    long long rate_close_after;
    long long auth_timeout_ms;
    long long send_queue;
    long long heartbeat_ms;
    long long replay_max;
    long long history_default;
    long long tenant_cache_ttl_ms;
    long long connect_timeout_ms;
    char *log_level;
} gw_config_t;

#define GW_ID_MAX 24
#define GW_BOOT_ID_MAX 20
#define GW_CONN_ID_MAX 64

typedef struct gw_gateway {
    const gw_config_t *cfg;
    char id[GW_ID_MAX];        /* gateway id: the index in decimal */
    char boot[GW_BOOT_ID_MAX]; /* random per process start */
    uint64_t conn_seq;         /* connections accepted so far */

    chat_metrics_t *metrics;
    gw_stats_t stats;
    chat_store_t *store;
    gw_auth_t *auth;
    gw_inbox_t *inbox;
    gw_workers_t *workers;
    gw_inbound_t *inbound;
    gw_deliver_t *deliver;

    /* loop-owned */
    gw_rooms_t *rooms;
    chat_strmap_t *sessions; /* connection id -> gw_session_t */
    gw_session_ops_t session_ops;
    gw_session_env_t session_env;
    bool prepared; /* gw_server_prepare ran: gw_server_release must run */
    bool shutting_down;

    /* the libwebsockets context, guarded for wakes from other threads */
    pthread_mutex_t lws_lock;
    void *lws;
    atomic_bool listening;
    bool uv_loop; /* the libuv event library is in use */
} gw_gateway_t;

/* ---- jobs.c: work for the worker pool and the loop-side handlers of its results ---- */

/* Worker context (one Redis connection per worker): gw_workers_conf_t.ctx_new/ctx_free,
 * with ud = the gateway. */
void *gw_jobs_worker_ctx_new(size_t index, void *gateway);
void gw_jobs_worker_ctx_free(void *ctx, void *gateway);

void gw_jobs_auth(gw_gateway_t *gw, gw_session_t *s, const char *token);
/* CHAT_ERR_NOMEM if the job could not be made (nothing was submitted). */
chat_err_t gw_jobs_join(gw_gateway_t *gw, const gw_join_req_t *req);
chat_err_t gw_jobs_history(gw_gateway_t *gw, const gw_history_req_t *req);
/* A subscription went away (gw_rooms_sink_t.released). */
void gw_jobs_release(gw_gateway_t *gw, const char *tenant, const char *room, const char *user,
                     bool room_gone, bool user_gone);
/* Refreshes every room's registration (heartbeat). */
void gw_jobs_heartbeat(gw_gateway_t *gw);
/* Removes every registration of this gateway (shutdown, best effort). */
void gw_jobs_unregister_all(gw_gateway_t *gw);

/* Loop handlers: a chat.deliver item (gw_deliver_conf_t.complete) and a failed send
 * (gw_inbound_conf_t.on_failed). loop_ctx is the gateway. */
void gw_jobs_on_delivery(gw_task_t *t, void *loop_ctx);
void gw_jobs_on_send_failed(void *loop_ctx, const char *conn, const char *cid);

/* ---- server.c: the libwebsockets side ---- */

/* Sets up the session environment and the room table's sink. Call before gw_server_run. */
chat_err_t gw_server_prepare(gw_gateway_t *gw);

/* Listens on cfg addr:port and serves until a stop is requested (SIGTERM/SIGINT), then
 * closes every socket with 1001 and destroys the context. CHAT_ERR_IO if the listener could
 * not be set up. */
chat_err_t gw_server_run(gw_gateway_t *gw);

/* Frees what gw_server_prepare created (after gw_server_run returned). */
void gw_server_release(gw_gateway_t *gw);

#endif
