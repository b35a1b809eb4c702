/* Paging a room's history (see history.h): the page is read and its frame built on any
 * worker, so the loop only queues the finished frame. */
#include "services/gateway/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "services/gateway/frames.h"
#include "services/gateway/store_reads.h"

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
    gw_session_t *s = gw_gateway_session(loop_ctx, j->conn);
    if (s == NULL)
        return;
    gw_buf_t *frame = j->frame;
    j->frame = NULL;
    gw_session_history_done(s, j->rid, frame);
}

chat_err_t gw_history_submit(gw_gateway_t *gw, const gw_history_req_t *req)
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
