/* Worker jobs of the gateway and the loop-side handlers of their results (see gateway.h).
 * Jobs about a room's Redis registration (joins, releases, heartbeats) go to the worker
 * shard of tenant/room, so they reach Redis in the order the loop decided them; auth and
 * history jobs go to any worker. Results find their session again by connection id: a
 * session that closed meanwhile is simply not found. */
#include "services/gateway/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/redis.h"
#include "services/gateway/frames.h"
#include "services/gateway/registry.h"
#include "services/gateway/store_reads.h"

typedef struct worker_ctx {
    gw_gateway_t *gw;
    chat_redis_t *redis;
} worker_ctx_t;

void *gw_jobs_worker_ctx_new(size_t index, void *gateway)
{
    gw_gateway_t *gw = gateway;
    worker_ctx_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->gw = gw;
    if (chat_redis_connect(gw->cfg->redis_url, (int)gw->cfg->connect_timeout_ms, &w->redis) !=
        CHAT_OK) {
        chat_log_error("redis unreachable", CHAT_F_STR("var", "CHAT_REDIS_URL"),
                       CHAT_F_INT("worker", index));
        free(w);
        return NULL;
    }
    return w;
}

void gw_jobs_worker_ctx_free(void *ctx, void *gateway)
{
    (void)gateway;
    worker_ctx_t *w = ctx;
    chat_redis_free(w->redis);
    free(w);
}

static int64_t room_shard(const char *tenant, const char *room)
{
    char key[CHAT_ROOM_KEY_MAX];
    chat_room_key(tenant, room, key, sizeof key); /* names of a session: they fit */
    return gw_workers_shard(key);
}

/* The expiry of registrations: three heartbeats, so a gateway killed with -9 stops
 * receiving a room within that time. */
static int64_t registry_ttl_ms(const gw_gateway_t *gw)
{
    return 3 * gw->cfg->heartbeat_ms;
}

static gw_session_t *session_find(gw_gateway_t *gw, const char *conn)
{
    return chat_strmap_get(gw->sessions, conn);
}

/* ---- auth ---- */

typedef struct auth_job {
    gw_task_t task;
    gw_gateway_t *gw;
    char conn[GW_CONN_ID_MAX];
    char *token;
    int64_t started_us;
    chat_err_t err;
    chat_jwt_claims_t claims;
    char reason[GW_AUTH_REASON_MAX];
} auth_job_t;

static void auth_destroy(gw_task_t *t)
{
    auth_job_t *j = (auth_job_t *)t;
    chat_jwt_claims_clear(&j->claims);
    free(j->token);
    free(j);
}

static void auth_run(gw_task_t *t, void *wctx)
{
    (void)wctx;
    auth_job_t *j = (auth_job_t *)t;
    j->err = gw_auth_verify(j->gw->auth, j->token, chat_clock_wall_ms(), &j->claims, j->reason,
                            sizeof j->reason);
    if (j->err != CHAT_OK && j->err != CHAT_ERR_UNAUTHORIZED)
        chat_log_warn("auth lookup failed", CHAT_F_STR("conn", j->conn), CHAT_F_ERR(j->err));
}

static void auth_complete(gw_task_t *t, void *loop_ctx)
{
    auth_job_t *j = (auth_job_t *)t;
    gw_gateway_t *gw = loop_ctx;
    chat_histogram_observe(gw->stats.auth_seconds, chat_clock_seconds_since(j->started_us));
    gw_session_t *s = session_find(gw, j->conn);
    if (s == NULL)
        return;
    if (j->err == CHAT_OK)
        chat_log_debug("authenticated", CHAT_F_STR("conn", j->conn),
                       CHAT_F_STR("tenant", j->claims.tenant), CHAT_F_STR("user", j->claims.user));
    else
        chat_log_debug("auth refused", CHAT_F_STR("conn", j->conn),
                       CHAT_F_STR("reason", j->reason));
    gw_session_auth_done(s, j->err, &j->claims, j->reason);
}

void gw_jobs_auth(gw_gateway_t *gw, gw_session_t *s, const char *token)
{
    auth_job_t *j = calloc(1, sizeof *j);
    if (j != NULL)
        j->token = strdup(token);
    if (j == NULL || j->token == NULL) {
        free(j);
        chat_jwt_claims_t none = {0};
        gw_session_auth_done(s, CHAT_ERR_NOMEM, &none, NULL);
        return;
    }
    j->task.run = auth_run;
    j->task.complete = auth_complete;
    j->task.destroy = auth_destroy;
    j->gw = gw;
    snprintf(j->conn, sizeof j->conn, "%s", gw_session_id(s));
    j->started_us = chat_clock_mono_us();
    gw_workers_submit(gw->workers, &j->task, -1);
}

/* ---- join ---- */

typedef struct join_job {
    gw_task_t task;
    gw_gateway_t *gw;
    char conn[GW_CONN_ID_MAX];
    char *tenant, *room, *user, *rid;
    int64_t since;
    bool has_since;
    uint32_t gen;
    int64_t started_us;
    bool registered; /* step (1) done; the task was forwarded for step (2) */
    /* result */
    chat_err_t err;
    int64_t latest;
    int64_t unread;
    char **online;
    size_t nonline;
    gw_outq_entry_t *replay;
    size_t nreplay;
} join_job_t;

static void join_destroy(gw_task_t *t)
{
    join_job_t *j = (join_job_t *)t;
    for (size_t i = 0; i < j->nreplay; i++)
        gw_buf_unref(j->replay[i].buf);
    free(j->replay);
    gw_registry_users_free(j->online, j->nonline);
    free(j->tenant);
    free(j->room);
    free(j->user);
    free(j->rid);
    free(j);
}

/* unread: latest minus since if the client gave since, else 0 (never negative). Read marks
 * are not stored yet (read frames are refused), so there is none to count from. */
static int64_t unread_count(int64_t latest, bool has_since, int64_t since)
{
    return has_since && latest > since ? latest - since : 0;
}

/* Step (2) of a join, after the registration: the MongoDB reads. With since, the replay
 * (the newest messages above since) comes first: its newest seq is the room's latest, so
 * the latest-seq query (a second read of `messages`, a full scan on FerretDB) is needed
 * only when nothing was missed. */
static chat_err_t join_read_store(join_job_t *j)
{
    chat_store_t *st = j->gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    chat_err_t err = CHAT_OK;
    if (j->has_since)
        err = gw_reads_replay(st, client, j->tenant, j->room, j->since,
                              (size_t)j->gw->cfg->replay_max, &j->replay, &j->nreplay);
    if (err == CHAT_OK && j->nreplay > 0)
        j->latest = j->replay[j->nreplay - 1].seq;
    else if (err == CHAT_OK)
        err = gw_reads_latest(st, client, j->tenant, j->room, &j->latest);
    chat_store_release(st, client);
    j->unread = unread_count(j->latest, j->has_since, j->since);
    return err;
}

/* Runs twice: first on the room's shard worker, (1) the registration, in order with the
 * room's other registration changes; then, forwarded to any worker, (2) the MongoDB reads,
 * so that many joins of one room do not queue behind each other's reads. */
static void join_run(gw_task_t *t, void *wctx)
{
    join_job_t *j = (join_job_t *)t;
    worker_ctx_t *w = wctx;
    if (gw_workers_stopping(j->gw->workers)) {
        j->err = CHAT_ERR_STOPPED;
        return;
    }
    if (!j->registered) {
        j->err = gw_registry_join(w->redis, j->gw->id, chat_clock_wall_ms(), registry_ttl_ms(j->gw),
                                  j->tenant, j->room, j->user, &j->online, &j->nonline);
        if (j->err != CHAT_OK) {
            chat_counter_inc(j->gw->stats.registry_errors);
            chat_log_warn("join registration failed", CHAT_F_STR("tenant", j->tenant),
                          CHAT_F_STR("room", j->room), CHAT_F_ERR(j->err));
            return;
        }
        j->registered = true;
        gw_task_forward(t, -1);
        return;
    }
    j->err = join_read_store(j);
    if (j->err != CHAT_OK)
        chat_log_warn("join reads failed", CHAT_F_STR("tenant", j->tenant),
                      CHAT_F_STR("room", j->room), CHAT_F_ERR(j->err));
}

static void join_complete(gw_task_t *t, void *loop_ctx)
{
    join_job_t *j = (join_job_t *)t;
    gw_gateway_t *gw = loop_ctx;
    gw_session_t *s = session_find(gw, j->conn);
    if (s == NULL)
        return;
    if (j->err == CHAT_OK)
        chat_histogram_observe(gw->stats.join_seconds, chat_clock_seconds_since(j->started_us));
    gw_join_result_t res = {
        .room = j->room,
        .rid = j->rid,
        .gen = j->gen,
        .err = j->err,
        .latest = j->latest,
        .unread = j->unread,
        .online = (const char *const *)j->online,
        .nonline = j->nonline,
        .replay = j->replay,
        .nreplay = j->nreplay,
    };
    /* The session takes the replay's references. */
    j->nreplay = 0;
    gw_session_join_done(s, &res);
}

chat_err_t gw_jobs_join(gw_gateway_t *gw, const gw_join_req_t *req)
{
    join_job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return CHAT_ERR_NOMEM;
    j->task.run = join_run;
    j->task.complete = join_complete;
    j->task.destroy = join_destroy;
    j->gw = gw;
    snprintf(j->conn, sizeof j->conn, "%s", req->conn);
    j->tenant = strdup(req->tenant);
    j->room = strdup(req->room);
    j->user = strdup(req->user);
    j->rid = strdup(req->rid != NULL ? req->rid : "");
    j->since = req->since;
    j->has_since = req->has_since;
    j->gen = req->gen;
    j->started_us = chat_clock_mono_us();
    if (j->tenant == NULL || j->room == NULL || j->user == NULL || j->rid == NULL)
        j->err = CHAT_ERR_NOMEM;
    if (j->err != CHAT_OK) {
        /* Answered on the loop's next drain, like any failed join. */
        j->task.run = NULL;
        gw_inbox_push(gw->inbox, &j->task);
        return CHAT_OK;
    }
    gw_workers_submit(gw->workers, &j->task, room_shard(req->tenant, req->room));
    return CHAT_OK;
}

/* ---- history ---- */

typedef struct history_job {
    gw_task_t task;
    gw_gateway_t *gw;
    char conn[GW_CONN_ID_MAX];
    char *tenant, *room, *rid;
    int64_t before, limit;
    gw_buf_t *frame; /* result; NULL on failure */
} history_job_t;

static void history_destroy(gw_task_t *t)
{
    history_job_t *j = (history_job_t *)t;
    gw_buf_unref(j->frame);
    free(j->tenant);
    free(j->room);
    free(j->rid);
    free(j);
}

static void history_run(gw_task_t *t, void *wctx)
{
    (void)wctx;
    history_job_t *j = (history_job_t *)t;
    if (gw_workers_stopping(j->gw->workers))
        return;
    chat_store_t *st = j->gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    cJSON *msgs = NULL;
    bool more = false;
    chat_err_t err =
        gw_reads_page(st, client, j->tenant, j->room, j->before, j->limit, &msgs, &more);
    chat_store_release(st, client);
    if (err == CHAT_OK)
        j->frame = gw_frame_history(j->room, j->rid, msgs, more);
    else
        chat_log_warn("history read failed", CHAT_F_STR("tenant", j->tenant),
                      CHAT_F_STR("room", j->room), CHAT_F_ERR(err));
}

static void history_complete(gw_task_t *t, void *loop_ctx)
{
    history_job_t *j = (history_job_t *)t;
    gw_session_t *s = session_find(loop_ctx, j->conn);
    if (s == NULL)
        return;
    gw_buf_t *frame = j->frame;
    j->frame = NULL;
    gw_session_history_done(s, j->rid, frame);
}

chat_err_t gw_jobs_history(gw_gateway_t *gw, const gw_history_req_t *req)
{
    history_job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return CHAT_ERR_NOMEM;
    j->task.run = history_run;
    j->task.complete = history_complete;
    j->task.destroy = history_destroy;
    j->gw = gw;
    snprintf(j->conn, sizeof j->conn, "%s", req->conn);
    j->tenant = strdup(req->tenant);
    j->room = strdup(req->room);
    j->rid = strdup(req->rid);
    j->before = req->before;
    j->limit = req->limit;
    if (j->tenant == NULL || j->room == NULL || j->rid == NULL)
        j->task.run = NULL; /* answered as a failed lookup */
    gw_workers_submit(gw->workers, &j->task, -1);
    return CHAT_OK;
}

/* ---- registrations ---- */

typedef struct release_job {
    gw_task_t task;
    gw_gateway_t *gw;
    char *tenant, *room, *user;
    bool room_gone, user_gone;
} release_job_t;

static void release_destroy(gw_task_t *t)
{
    release_job_t *j = (release_job_t *)t;
    free(j->tenant);
    free(j->room);
    free(j->user);
    free(j);
}

static void release_run(gw_task_t *t, void *wctx)
{
    release_job_t *j = (release_job_t *)t;
    worker_ctx_t *w = wctx;
    if (gw_registry_release(w->redis, j->gw->id, j->tenant, j->room, j->user, j->room_gone,
                            j->user_gone) != CHAT_OK)
        chat_counter_inc(j->gw->stats.registry_errors);
}

void gw_jobs_release(gw_gateway_t *gw, const char *tenant, const char *room, const char *user,
                     bool room_gone, bool user_gone)
{
    if (!room_gone && !user_gone)
        return;
    release_job_t *j = calloc(1, sizeof *j);
    if (j == NULL)
        return;
    j->task.run = release_run;
    j->task.destroy = release_destroy;
    j->gw = gw;
    j->tenant = strdup(tenant);
    j->room = strdup(room);
    j->user = strdup(user);
    j->room_gone = room_gone;
    j->user_gone = user_gone;
    if (j->tenant == NULL || j->room == NULL || j->user == NULL) {
        release_destroy(&j->task);
        return;
    }
    gw_workers_submit(gw->workers, &j->task, room_shard(tenant, room));
}

/* A batch of rooms (deep copies) to refresh or remove, for one worker shard. */
typedef struct rooms_job {
    gw_task_t task;
    gw_gateway_t *gw;
    bool remove;
    gw_registry_room_t *rooms;
    size_t n, cap;
} rooms_job_t;

static void rooms_destroy(gw_task_t *t)
{
    rooms_job_t *j = (rooms_job_t *)t;
    gw_registry_rooms_free(j->rooms, j->n);
    free(j);
}

static void rooms_run(gw_task_t *t, void *wctx)
{
    rooms_job_t *j = (rooms_job_t *)t;
    worker_ctx_t *w = wctx;
    chat_err_t err = j->remove ? gw_registry_remove(w->redis, j->gw->id, j->rooms, j->n)
                               : gw_registry_refresh(w->redis, j->gw->id, chat_clock_wall_ms(),
                                                     registry_ttl_ms(j->gw), j->rooms, j->n);
    if (err != CHAT_OK) {
        chat_counter_inc(j->gw->stats.registry_errors);
        chat_log_warn(j->remove ? "registration removal failed" : "registration refresh failed",
                      CHAT_F_INT("rooms", j->n), CHAT_F_ERR(err));
    }
}

typedef struct rooms_batch {
    gw_gateway_t *gw;
    rooms_job_t **jobs; /* one per worker */
    size_t njobs;
    bool remove;
} rooms_batch_t;

static void rooms_batch_cb(const char *tenant, const char *room, const char *const *users,
                           size_t nusers, void *ud)
{
    rooms_batch_t *b = ud;
    size_t shard = (size_t)room_shard(tenant, room) % b->njobs;
    rooms_job_t *j = b->jobs[shard];
    if (j == NULL) {
        j = calloc(1, sizeof *j);
        if (j == NULL)
            return;
        j->task.run = rooms_run;
        j->task.destroy = rooms_destroy;
        j->gw = b->gw;
        j->remove = b->remove;
        b->jobs[shard] = j;
    }
    if (!gw_registry_rooms_append(&j->rooms, &j->n, &j->cap, tenant, room, users, nusers))
        chat_log_error("registration batch incomplete: out of memory", CHAT_F_STR("tenant", tenant),
                       CHAT_F_STR("room", room));
}

/* Splits every room of the table into per-shard jobs and submits them. */
static void rooms_submit_all(gw_gateway_t *gw, bool remove)
{
    size_t n = gw_workers_count(gw->workers);
    rooms_batch_t b = {
        .gw = gw, .jobs = calloc(n, sizeof(rooms_job_t *)), .njobs = n, .remove = remove};
    if (b.jobs == NULL)
        return;
    gw_rooms_foreach(gw->rooms, rooms_batch_cb, &b);
    for (size_t i = 0; i < n; i++) {
        if (b.jobs[i] != NULL)
            gw_workers_submit(gw->workers, &b.jobs[i]->task, (int64_t)i);
    }
    free(b.jobs);
}

void gw_jobs_heartbeat(gw_gateway_t *gw)
{
    rooms_submit_all(gw, false);
}

void gw_jobs_unregister_all(gw_gateway_t *gw)
{
    rooms_submit_all(gw, true);
}

/* ---- loop handlers ---- */

void gw_jobs_on_delivery(gw_task_t *t, void *loop_ctx)
{
    gw_delivery_t *d = (gw_delivery_t *)t;
    gw_gateway_t *gw = loop_ctx;
    size_t taken = 0;
    if (d->nconns == 0) {
        taken = gw_rooms_deliver(gw->rooms, d->tenant, d->room, d->buf, d->msg_seq);
    } else {
        for (size_t i = 0; i < d->nconns; i++) {
            gw_session_t *s = session_find(gw, d->conns[i]);
            /* Nothing crosses tenants, not even a misaddressed ack. */
            if (s == NULL || strcmp(gw_session_tenant(s), d->tenant) != 0)
                continue;
            taken += gw_session_enqueue(s, gw_buf_ref(d->buf));
        }
    }
    if (taken > 0)
        chat_counter_add(gw->stats.deliveries, taken);
    else
        chat_counter_inc(gw->stats.unrouted);
}

void gw_jobs_on_send_failed(void *loop_ctx, const char *conn, const char *cid)
{
    gw_gateway_t *gw = loop_ctx;
    chat_counter_inc(gw->stats.send_failures);
    gw_session_t *s = session_find(gw, conn);
    if (s != NULL)
        gw_session_send_failed(s, cid);
}
