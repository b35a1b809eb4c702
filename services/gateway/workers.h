/* The worker pool: threads for the gateway's blocking work (MongoDB reads, Redis
 * registrations, tenant lookups). Each thread has its own FIFO and context (a Redis
 * connection), so tasks sent to one shard (e.g. all registrations of one room) run in
 * submission order; a finished task with a complete half goes to the loop's inbox. */
#ifndef CHAT_GATEWAY_WORKERS_H
#define CHAT_GATEWAY_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "services/gateway/inbox.h"

typedef struct gw_workers gw_workers_t;

typedef struct gw_workers_conf {
    size_t nthreads;
    /* Creates thread i's context on the caller's thread (e.g. connects to Redis); NULL is a
     * failure that fails gw_workers_new. May be NULL (contexts are NULL). */
    void *(*ctx_new)(size_t index, void *ud);
    void (*ctx_free)(void *ctx, void *ud);
    void *ud;
    gw_inbox_t *inbox; /* finished tasks with a complete half go here */
} gw_workers_conf_t;

/* Creates the contexts and starts the threads. CHAT_ERR_IO if a context or thread failed
 * (what was started is stopped again). */
chat_err_t gw_workers_new(const gw_workers_conf_t *conf, gw_workers_t **out);

/* Queues t on thread shard % nthreads, or round robin if shard < 0. After gw_workers_stop
 * the task is destroyed instead. Any thread. */
void gw_workers_submit(gw_workers_t *w, gw_task_t *t, int64_t shard);

/* True once stopping: long tasks may skip their work. */
bool gw_workers_stopping(const gw_workers_t *w);

size_t gw_workers_count(const gw_workers_t *w);

/* Runs what is queued already, then ends the threads. Idempotent. */
void gw_workers_stop(gw_workers_t *w);

/* Stops, frees the contexts and the pool. Accepts NULL. */
void gw_workers_free(gw_workers_t *w);

/* Called from a run half: once run returns, t is queued again on shard of pool (as with
 * gw_workers_submit; pool NULL: the pool that ran it) instead of being completed; its next
 * run sees it as it was left. Lets a task do an ordered step on its shard's worker, then the
 * rest on any worker, of this pool or another (a read that must not hold up the ordered
 * steps behind it). pool must outlive the pool that runs t. */
void gw_task_forward(gw_task_t *t, gw_workers_t *pool, int64_t shard);

/* A stable shard for a string key (e.g. "tenant/room"). */
int64_t gw_workers_shard(const char *key);

/* The shard of tenant/room: in the registration workers, its registration changes (in the
 * order the loop decided them); in the readers, its action checks (answered in order). */
int64_t gw_workers_room_shard(const char *tenant, const char *room);

#endif
