/* The push frames (see push.h): the checks that need the gateway's configuration run on the
 * loop, so a bad frame is answered at once; the MongoDB write runs on the worker of the user's
 * shard and its outcome comes back to the loop as `ok` or error internal. */
#include "services/gateway/push.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/notify_store.h"
#include "common/webpush.h"
#include "services/gateway/online.h"
#include "services/gateway/request.h"

typedef struct push_job {
    gw_request_t base; /* tenant, rid; room NULL */
    gw_ctype_t type;
    char *user, *endpoint, *p256dh, *auth, *room;
    chat_push_mode_t mode;
    chat_err_t err; /* the store call's outcome */
} push_job_t;

static void push_destroy(gw_task_t *t)
{
    push_job_t *j = (push_job_t *)t;
    free(j->user);
    free(j->endpoint);
    free(j->p256dh);
    free(j->auth);
    free(j->room);
    gw_request_clear(&j->base);
    free(j);
}

static void push_run(gw_task_t *t, void *wctx)
{
    push_job_t *j = (push_job_t *)t;
    gw_gateway_t *gw = j->base.gw;
    (void)wctx;
    if (gw_workers_stopping(gw->workers))
        return;
    const char *tenant = j->base.tenant;
    switch (j->type) {
    case GW_C_PUSH_SUBSCRIBE:
        j->err = chat_push_sub_put(gw->store, tenant, j->user, j->endpoint, j->p256dh, j->auth,
                                   chat_clock_wall_ms());
        break;
    case GW_C_PUSH_UNSUBSCRIBE:
        j->err = chat_push_sub_delete(gw->store, tenant, j->user, j->endpoint);
        break;
    case GW_C_PUSH_PREFS:
        j->err = chat_push_pref_set(gw->store, tenant, j->user,
                                    j->room != NULL ? j->room : CHAT_PUSH_PREFS_ALL_ROOMS, j->mode,
                                    chat_clock_wall_ms());
        break;
    default:
        j->err = CHAT_ERR_INVALID;
        break;
    }
    if (j->err != CHAT_OK)
        chat_log_warn("push frame not stored", CHAT_F_STR("frame", gw_ctype_name(j->type)),
                      CHAT_F_STR("tenant", tenant), CHAT_F_STR("user", j->user),
                      CHAT_F_ERR(j->err));
}

static void push_complete(gw_task_t *t, void *loop_ctx)
{
    push_job_t *j = (push_job_t *)t;
    (void)loop_ctx;
    gw_session_t *s = gw_request_session(&j->base);
    if (s != NULL)
        gw_session_push_done(s, j->base.rid, j->err);
}

/* *out = a copy of s (NULL for NULL). False if out of memory. */
static bool dup_opt(char **out, const char *s)
{
    *out = s != NULL ? strdup(s) : NULL;
    return s == NULL || *out != NULL;
}

/* Checks what the frame parser could not: the endpoint against the egress policy, the keys
 * as a push needs them, the mode. False with the reason in why. */
static bool push_check(const gw_gateway_t *gw, const gw_push_req_t *req, chat_push_mode_t *mode,
                       char *why, size_t whylen)
{
    *mode = CHAT_PUSH_MODE_DEFAULT;
    switch (req->type) {
    case GW_C_PUSH_SUBSCRIBE: {
        char reason[GW_ERROR_MESSAGE_MAX];
        if (chat_egress_url_check(&gw->egress, req->endpoint, reason, sizeof reason) != CHAT_OK) {
            snprintf(why, whylen, "endpoint: %s", reason);
            return false;
        }
        chat_webpush_keys_t keys;
        return chat_webpush_keys_parse(req->p256dh, req->auth, &keys, why, whylen) == CHAT_OK;
    }
    case GW_C_PUSH_UNSUBSCRIBE:
        return true;
    case GW_C_PUSH_PREFS:
        /* "default" parses as DEFAULT: the stored preference goes */
        *mode = chat_push_mode_parse(req->mode);
        if (*mode == CHAT_PUSH_MODE_DEFAULT && strcmp(req->mode, "default") != 0) {
            snprintf(why, whylen, "mode must be all, mentions, none or default");
            return false;
        }
        return true;
    default:
        snprintf(why, whylen, "not a push frame");
        return false;
    }
}

chat_err_t gw_push_submit(gw_gateway_t *gw, const gw_push_req_t *req, char *why, size_t whylen)
{
    chat_push_mode_t mode;
    if (!push_check(gw, req, &mode, why, whylen))
        return CHAT_ERR_INVALID;
    push_job_t *j = gw_request_new(sizeof *j, gw, req->conn, push_run, push_complete, push_destroy);
    if (j == NULL)
        return CHAT_ERR_NOMEM;
    j->type = req->type;
    j->mode = mode;
    j->err = CHAT_ERR_STOPPED; /* unless the run stores it */
    j->base.tenant = strdup(req->tenant);
    j->base.rid = strdup(req->rid != NULL ? req->rid : "");
    if (j->base.tenant == NULL || j->base.rid == NULL || !dup_opt(&j->user, req->user) ||
        !dup_opt(&j->endpoint, req->endpoint) || !dup_opt(&j->p256dh, req->p256dh) ||
        !dup_opt(&j->auth, req->auth) || !dup_opt(&j->room, req->room)) {
        push_destroy(&j->base.task);
        return CHAT_ERR_NOMEM;
    }
    gw_workers_submit(gw->workers, &j->base.task, gw_online_shard(req->tenant, req->user));
    return CHAT_OK;
}
