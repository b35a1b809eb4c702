/* This gateway's online users in Redis (see online.h). The jobs run on the workers, whose
 * context is their Redis connection (registrations.c); a failed +1 or -1 is logged and
 * counted with the registry errors: the hash is only as good as Redis lets it be, and a user
 * it misses is at worst notified while online. */
#include "services/gateway/online.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/names.h"
#include "common/notify_store.h"
#include "common/redis.h"
#include "services/gateway/registrations.h"

/* "<tenant>/<user>": names of a session, up to 4 bytes per user character */
#define ONLINE_KEY_MAX (CHAT_TENANT_MAX + 4 * CHAT_USER_MAX + 2)

int64_t gw_online_shard(const char *tenant, const char *user)
{
    char key[ONLINE_KEY_MAX];
    snprintf(key, sizeof key, "%s/%s", tenant, user);
    return gw_workers_shard(key);
}

chat_err_t gw_online_reset(gw_gateway_t *gw)
{
    chat_redis_t *redis = NULL;
    chat_err_t err =
        chat_redis_connect(gw->cfg->redis_url, (int)gw->cfg->connect_timeout_ms, &redis);
    if (err == CHAT_OK)
        err = chat_online_reset(redis, gw->id);
    chat_redis_free(redis);
    if (err != CHAT_OK)
        chat_log_error("cannot reset this gateway's online users in redis",
                       CHAT_F_STR("var", "CHAT_REDIS_URL"), CHAT_F_ERR(err));
    return err;
}

/* ---- jobs ---- */

typedef enum online_op { ONLINE_ADD, ONLINE_REFRESH, ONLINE_REMOVE } online_op_t;

typedef struct online_job {
    gw_task_t task;
    gw_gateway_t *gw;
    online_op_t op;
    int delta;
    char *tenant, *user;
} online_job_t;

static void online_destroy(gw_task_t *t)
{
    online_job_t *j = (online_job_t *)t;
    free(j->tenant);
    free(j->user);
    free(j);
}

static void online_run(gw_task_t *t, void *wctx)
{
    online_job_t *j = (online_job_t *)t;
    chat_redis_t *redis = wctx;
    gw_gateway_t *gw = j->gw;
    chat_err_t err = CHAT_OK;
    switch (j->op) {
    case ONLINE_ADD:
        err = chat_online_add(redis, gw->id, j->tenant, j->user, j->delta);
        break;
    case ONLINE_REFRESH:
        err = chat_online_refresh(redis, gw->id, gw_registrations_ttl_ms(gw));
        break;
    case ONLINE_REMOVE:
        err = chat_online_reset(redis, gw->id);
        break;
    }
    if (err != CHAT_OK)
        chat_counter_inc(gw->stats.registry_errors);
}

/* Queues one job on shard (-1: any worker). */
static void online_submit(gw_gateway_t *gw, online_op_t op, const char *tenant, const char *user,
                          int delta, int64_t shard)
{
    online_job_t *j = calloc(1, sizeof *j);
    if (j == NULL) {
        chat_log_error("online users not updated: out of memory");
        return;
    }
    j->task.run = online_run;
    j->task.destroy = online_destroy;
    j->gw = gw;
    j->op = op;
    j->delta = delta;
    if (tenant != NULL &&
        ((j->tenant = strdup(tenant)) == NULL || (j->user = strdup(user)) == NULL)) {
        chat_log_error("online users not updated: out of memory", CHAT_F_STR("tenant", tenant));
        online_destroy(&j->task);
        return;
    }
    gw_workers_submit(gw->workers, &j->task, shard);
}

void gw_online_note(gw_gateway_t *gw, const char *tenant, const char *user, int delta)
{
    online_submit(gw, ONLINE_ADD, tenant, user, delta, gw_online_shard(tenant, user));
}

void gw_online_refresh(gw_gateway_t *gw)
{
    online_submit(gw, ONLINE_REFRESH, NULL, NULL, 0, -1);
}

void gw_online_remove(gw_gateway_t *gw)
{
    online_submit(gw, ONLINE_REMOVE, NULL, NULL, 0, -1);
}
