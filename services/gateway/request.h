/* What the jobs that answer a client's request (auth, join, history) share: the task, the
 * gateway, the connection the answer goes back to and copies of the tenant, room and rid
 * the request is about. The answer finds its session again by connection id on the loop,
 * so the answer to a connection that closed meanwhile is dropped. */
#ifndef CHAT_GATEWAY_REQUEST_H
#define CHAT_GATEWAY_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "services/gateway/gateway.h"

/* The first member of each request job. */
typedef struct gw_request {
    gw_task_t task;
    gw_gateway_t *gw;
    char conn[GW_CONN_ID_MAX];
    char *tenant, *room, *rid; /* NULL where the request names none (auth) */
} gw_request_t;

/* A zeroed job of size bytes (a struct that starts with gw_request_t) answering connection
 * conn, with its task's halves set. NULL if out of memory. */
void *gw_request_new(size_t size, gw_gateway_t *gw, const char *conn,
                     void (*run)(gw_task_t *t, void *worker_ctx),
                     void (*complete)(gw_task_t *t, void *loop_ctx), void (*destroy)(gw_task_t *t));

/* Copies tenant, room and rid (NULL: "") into r. False if out of memory: what was copied
 * is freed by gw_request_clear all the same. */
bool gw_request_copy_room(gw_request_t *r, const char *tenant, const char *room, const char *rid);

/* Frees the copies (the job's destroy calls it; the job itself is the caller's). */
void gw_request_clear(gw_request_t *r);

/* On the loop: the session to answer, or NULL if it closed meanwhile. */
gw_session_t *gw_request_session(const gw_request_t *r);

#endif
