/* This gateway's registrations in Redis kept up to date (see registrations.h): the
 * per-worker Redis connection, the shard and expiry every registration job uses, and the
 * release, refresh and removal jobs. The Redis commands themselves are in registry.c. */
#include "services/gateway/registrations.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/redis.h"
#include "services/gateway/presence.h"
#include "services/gateway/join.h"
#include "services/gateway/registry.h"

void *gw_registrations_ctx_new(size_t index, void *gateway)
{
    gw_gateway_t *gw = gateway;
    chat_redis_t *redis = NULL;
    if (chat_redis_connect(gw->cfg->redis_url, (int)gw->cfg->connect_timeout_ms, &redis) !=
        CHAT_OK) {
        chat_log_error("redis unreachable", CHAT_F_STR("var", "CHAT_REDIS_URL"),
                       CHAT_F_INT("worker", index));
        return NULL;
    }
    return redis;
}

void gw_registrations_ctx_free(void *ctx, void *gateway)
{
    (void)gateway;
    chat_redis_free(ctx);
}

/* Three heartbeats, so a gateway killed with -9 stops receiving a room within that time; its
 * users go offline at the next heartbeat (or join) of another gateway in the room after
 * that. */
int64_t gw_registrations_ttl_ms(const gw_gateway_t *gw)
{
    return 3 * gw->cfg->heartbeat_ms;
}

/* ---- release ---- */

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
    chat_redis_t *redis = wctx;
    gw_registry_presence_t pres = gw_presence_listener(j->gw);
    if (gw_registry_release(redis, j->gw->id, j->tenant, j->room, j->user, j->room_gone,
                            j->user_gone, &pres) != CHAT_OK)
        chat_counter_inc(j->gw->stats.registry_errors);
}

void gw_registrations_release(gw_gateway_t *gw, const char *tenant, const char *room,
                              const char *user, bool room_gone, bool user_gone)
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
    gw_workers_submit(gw->workers, &j->task, gw_workers_room_shard(tenant, room));
}

/* ---- every room: refresh (heartbeat) and removal (shutdown) ---- */

/* A batch of rooms (deep copies) to refresh or remove, for one worker shard. */
typedef struct rooms_job {
    gw_task_t task;
    gw_gateway_t *gw;
    bool remove;
    gw_registry_room_t *rooms;
    size_t n, cap;
    bool *lapsed;      /* a refresh's: per room, whether the gateway's registration had expired */
    int64_t queued_us; /* when the loop submitted it (a refresh's wait is logged if late) */
} rooms_job_t;

static void rooms_destroy(gw_task_t *t)
{
    rooms_job_t *j = (rooms_job_t *)t;
    gw_registry_rooms_free(j->rooms, j->n);
    free(j->lapsed);
    free(j);
}

static void rooms_run(gw_task_t *t, void *wctx)
{
    rooms_job_t *j = (rooms_job_t *)t;
    chat_redis_t *redis = wctx;
    gw_registry_presence_t pres = gw_presence_listener(j->gw);
    if (!j->remove)
        j->lapsed = calloc(j->n > 0 ? j->n : 1, sizeof *j->lapsed);
    chat_err_t err = j->remove ? gw_registry_remove(redis, j->gw->id, j->rooms, j->n, &pres)
                               : gw_registry_refresh(redis, j->gw->id, chat_clock_wall_ms(),
                                                     gw_registrations_ttl_ms(j->gw), j->rooms, j->n,
                                                     &pres, j->lapsed);
    size_t lapsed = 0;
    for (size_t i = 0; j->lapsed != NULL && i < j->n; i++)
        lapsed += j->lapsed[i];
    if (lapsed > 0) {
        /* Broadcast sent these rooms elsewhere only, for a while: their members here may
         * have missed messages; the loop catches them up (rooms_complete). */
        chat_counter_add(j->gw->stats.registrations_lapsed, lapsed);
        chat_log_warn(
            "registrations had lapsed before their heartbeat: rooms' messages may "
            "have missed this gateway's members",
            CHAT_F_INT("rooms", lapsed), CHAT_F_INT("of", j->n),
            CHAT_F_INT("heartbeat_waited_ms", (chat_clock_mono_us() - j->queued_us) / 1000));
    }
    if (err != CHAT_OK) {
        chat_counter_inc(j->gw->stats.registry_errors);
        chat_log_warn(j->remove ? "registration removal failed" : "registration refresh failed",
                      CHAT_F_INT("rooms", j->n), CHAT_F_ERR(err));
    }
}

/* On the loop, after a refresh: each room whose registration had lapsed is caught up. */
static void rooms_complete(gw_task_t *t, void *loop_ctx)
{
    rooms_job_t *j = (rooms_job_t *)t;
    for (size_t i = 0; j->lapsed != NULL && i < j->n; i++)
        if (j->lapsed[i])
            gw_join_catch_up(loop_ctx, j->rooms[i].tenant, j->rooms[i].room);
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
    size_t shard = (size_t)gw_workers_room_shard(tenant, room) % b->njobs;
    rooms_job_t *j = b->jobs[shard];
    if (j == NULL) {
        j = calloc(1, sizeof *j);
        if (j == NULL)
            return;
        j->task.run = rooms_run;
        j->task.complete = b->remove ? NULL : rooms_complete;
        j->task.destroy = rooms_destroy;
        j->gw = b->gw;
        j->remove = b->remove;
        j->queued_us = chat_clock_mono_us();
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

void gw_registrations_refresh_all(gw_gateway_t *gw)
{
    rooms_submit_all(gw, false);
}

void gw_registrations_remove_all(gw_gateway_t *gw)
{
    rooms_submit_all(gw, true);
}
