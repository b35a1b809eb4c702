/* Paging a room's history (see history.h): the page is read (from the room's recent history
 * in Redis when it holds the page exactly, from MongoDB otherwise) and its frame built on any
 * worker, so the loop only queues the finished frame. A connection that has not joined the
 * room (nor a dm room of its user) gets the page only if the room is public or the user a
 * member (room_access.h). */
#include "services/gateway/history.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "services/gateway/frames.h"
#include "services/gateway/recent.h"
#include "services/gateway/request.h"
#include "services/gateway/room_access.h"
#include "services/gateway/store_reads.h"

typedef struct history_job {
    gw_request_t base;
    int64_t before, limit;
    char *user;
    bool allowed;        /* no access check */
    gw_room_kind_t kind; /* what the loop knows */
    gw_access_t verdict; /* result of the check */
    gw_buf_t *frame;     /* result; NULL on failure or refusal */
} history_job_t;

static void history_destroy(gw_task_t *t)
{
    history_job_t *j = (history_job_t *)t;
    gw_buf_unref(j->frame);
    free(j->user);
    gw_request_clear(&j->base);
    free(j);
}

/* The page from the room's recent history if it holds it exactly; *msgs NULL otherwise. */
static void history_read_recent(history_job_t *j, chat_redis_t *redis, cJSON **msgs, bool *more)
{
    gw_gateway_t *gw = j->base.gw;
    *msgs = NULL;
    if (gw->cfg->recent_max == 0)
        return;
    chat_recent_result_t res =
        gw_recent_page(redis, j->base.tenant, j->base.room, j->before, j->limit, msgs, more);
    chat_counter_inc(gw->stats.recent_reads[GW_RECENT_OP_HISTORY][res]);
}

static void history_run(gw_task_t *t, void *wctx)
{
    history_job_t *j = (history_job_t *)t;
    gw_gateway_t *gw = j->base.gw;
    if (gw_workers_stopping(gw->workers))
        return;
    cJSON *msgs = NULL;
    bool more = false;
    chat_err_t err = CHAT_OK;
    if (!j->allowed) {
        gw_room_kind_t kind;
        err = gw_access_check(gw->store, j->base.tenant, j->base.room, j->user, j->kind, &kind,
                              &j->verdict);
        if (err != CHAT_OK || j->verdict != GW_ACCESS_OK)
            return;
    }
    history_read_recent(j, wctx, &msgs, &more);
    if (msgs == NULL) {
        chat_store_t *st = gw->store;
        mongoc_client_t *client = chat_store_acquire(st);
        err = gw_reads_page(st, client, j->base.tenant, j->base.room, j->before, j->limit, &msgs,
                            &more);
        chat_store_release(st, client);
    }
    if (err == CHAT_OK)
        j->frame = gw_frame_history(j->base.room, j->base.rid, msgs, more);
    else
        chat_log_warn("history read failed", CHAT_F_STR("tenant", j->base.tenant),
                      CHAT_F_STR("room", j->base.room), CHAT_F_ERR(err));
}

static void history_complete(gw_task_t *t, void *loop_ctx)
{
    history_job_t *j = (history_job_t *)t;
    (void)loop_ctx;
    gw_session_t *s = gw_request_session(&j->base);
    if (s == NULL)
        return;
    if (j->verdict != GW_ACCESS_OK) {
        gw_code_t code;
        const char *message;
        gw_access_refusal(j->verdict, &code, &message);
        gw_session_refused(s, code, message, j->base.rid, NULL);
        return;
    }
    gw_buf_t *frame = j->frame;
    j->frame = NULL;
    gw_session_history_done(s, j->base.rid, frame);
}

chat_err_t gw_history_submit(gw_gateway_t *gw, const gw_history_req_t *req)
{
    history_job_t *j =
        gw_request_new(sizeof *j, gw, req->conn, history_run, history_complete, history_destroy);
    if (j == NULL)
        return CHAT_ERR_NOMEM;
    j->before = req->before;
    j->limit = req->limit;
    j->allowed = req->allowed;
    j->kind = req->kind;
    j->user = strdup(req->user != NULL ? req->user : "");
    if (!gw_request_copy_room(&j->base, req->tenant, req->room, req->rid) || j->user == NULL)
        j->base.task.run = NULL; /* answered as a failed lookup */
    gw_workers_submit(gw->readers, &j->base.task, -1);
    return CHAT_OK;
}
