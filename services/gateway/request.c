/* The common part of the auth, join and history jobs (see request.h). */
#include "services/gateway/request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *gw_request_new(size_t size, gw_gateway_t *gw, const char *conn,
                     void (*run)(gw_task_t *t, void *worker_ctx),
                     void (*complete)(gw_task_t *t, void *loop_ctx), void (*destroy)(gw_task_t *t))
{
    gw_request_t *r = calloc(1, size);
    if (r == NULL)
        return NULL;
    r->task.run = run;
    r->task.complete = complete;
    r->task.destroy = destroy;
    r->gw = gw;
    snprintf(r->conn, sizeof r->conn, "%s", conn);
    return r;
}

bool gw_request_copy_room(gw_request_t *r, const char *tenant, const char *room, const char *rid)
{
    r->tenant = strdup(tenant);
    r->room = strdup(room);
    r->rid = strdup(rid != NULL ? rid : "");
    return r->tenant != NULL && r->room != NULL && r->rid != NULL;
}

void gw_request_clear(gw_request_t *r)
{
    free(r->tenant);
    free(r->room);
    free(r->rid);
}

gw_session_t *gw_request_session(const gw_request_t *r)
{
    return gw_gateway_session(r->gw, r->conn);
}
