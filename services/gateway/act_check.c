/* The room-kind lookup of an action outside a joined room (see act_check.h). A lookup that
 * fails answers the action with error internal, like a produce that fails: the client resends. */
#include "services/gateway/act_check.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "services/gateway/request.h"
#include "services/gateway/room_access.h"

typedef struct act_check_job {
    gw_request_t base;
    char *cid; /* NULL unless a send */
    char *frame;
    size_t frame_len;
    chat_err_t err;
    gw_room_kind_t kind;
    bool gone;
} act_check_job_t;

/* Frees the job and its copies. */
static void act_check_destroy(gw_task_t *t)
{
    act_check_job_t *j = (act_check_job_t *)t;
    free(j->cid);
    free(j->frame);
    gw_request_clear(&j->base);
    free(j);
}

/* On a worker: reads the room's kind (j->err: the driver's error, or CHAT_ERR_STOPPED). */
static void act_check_run(gw_task_t *t, void *wctx)
{
    (void)wctx;
    act_check_job_t *j = (act_check_job_t *)t;
    gw_gateway_t *gw = j->base.gw;
    if (gw_workers_stopping(gw->workers)) {
        j->err = CHAT_ERR_STOPPED;
        return;
    }
    mongoc_client_t *client = chat_store_acquire(gw->store);
    j->err =
        gw_access_room_kind(gw->store, client, j->base.tenant, j->base.room, &j->kind, &j->gone);
    chat_store_release(gw->store, client);
}

/* On the loop: the session acts on the frame or refuses it; a failed lookup is answered like a
 * failed produce (error internal: resend). Nothing if the connection closed meanwhile. */
static void act_check_complete(gw_task_t *t, void *loop_ctx)
{
    (void)loop_ctx;
    act_check_job_t *j = (act_check_job_t *)t;
    gw_session_t *s = gw_request_session(&j->base);
    if (s == NULL)
        return;
    const char *rid = j->base.rid != NULL && *j->base.rid != '\0' ? j->base.rid : NULL;
    if (j->err != CHAT_OK) {
        gw_session_send_failed(s, rid, j->cid);
        return;
    }
    gw_act_req_t req = {.conn = j->base.conn,
                        .tenant = j->base.tenant,
                        .room = j->base.room,
                        .cid = j->cid,
                        .rid = rid,
                        .frame = j->frame,
                        .frame_len = j->frame_len};
    gw_session_act_checked(s, &req, j->kind, j->gone);
}

chat_err_t gw_act_check_submit(gw_gateway_t *gw, const gw_act_req_t *req)
{
    act_check_job_t *j = gw_request_new(sizeof *j, gw, req->conn, act_check_run, act_check_complete,
                                        act_check_destroy);
    if (j == NULL)
        return CHAT_ERR_NOMEM;
    bool copied = gw_request_copy_room(&j->base, req->tenant, req->room, req->rid);
    j->cid = req->cid != NULL ? strdup(req->cid) : NULL;
    j->frame = malloc(req->frame_len + 1);
    if (j->frame != NULL) {
        memcpy(j->frame, req->frame, req->frame_len);
        j->frame[req->frame_len] = '\0';
        j->frame_len = req->frame_len;
    }
    if (!copied || (req->cid != NULL && j->cid == NULL) || j->frame == NULL) {
        act_check_destroy(&j->base.task);
        return CHAT_ERR_NOMEM;
    }
    /* On the room's shard: one room's checks are answered in the order they came (the session
     * counts on it to keep a connection's sends in order). */
    gw_workers_submit(gw->readers, &j->base.task, gw_workers_room_shard(req->tenant, req->room));
    return CHAT_OK;
}
