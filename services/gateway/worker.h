/* Hand-off between the event loop and the gateway's other threads. A task is work with
 * up to two halves: `run` on a worker thread (blocking MongoDB/Redis calls) and `complete`
 * back on the loop. The inbox is the loop's queue of finished tasks (also used directly by
 * the chat.deliver consumer and the producer's delivery reports); pushing wakes the loop
 * (lws_cancel_service). The worker pool gives each thread its own FIFO, so tasks sent to one
 * shard (e.g. all Redis registrations of one room) run in submission order. */
#ifndef CHAT_GATEWAY_WORKER_H
#define CHAT_GATEWAY_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct gw_task gw_task_t;

struct gw_task {
    gw_task_t *next;
    /* On a worker thread with that thread's context; NULL for loop-only tasks. */
    void (*run)(gw_task_t *t, void *worker_ctx);
    /* On the loop with the inbox's loop context; NULL if nothing is left to do there. */
    void (*complete)(gw_task_t *t, void *loop_ctx);
    /* Frees the task; any thread. Required. */
    void (*destroy)(gw_task_t *t);
    bool bounded_; /* counted against the inbox's bound */
    bool forward_; /* run asked to be queued again (gw_task_forward) */
    int64_t forward_shard_;
};

/* Called from a run half: once run returns, t is queued again on shard (as with
 * gw_workers_submit) instead of being completed; its next run sees it as it was left.
 * Lets a task do an ordered step on its shard's worker, then the rest on any worker. */
void gw_task_forward(gw_task_t *t, int64_t shard);

typedef struct gw_inbox gw_inbox_t;

/* bound limits the tasks pushed with gw_inbox_push_bounded that are not drained yet.
 * NULL if out of memory. */
gw_inbox_t *gw_inbox_new(size_t bound);

/* wake(ud) is called (from the pushing thread, outside the inbox lock) when the inbox
 * turns non-empty. NULL stops waking. */
void gw_inbox_set_wake(gw_inbox_t *in, void (*wake)(void *ud), void *ud);

/* Destroys undrained tasks without completing them, and frees. Accepts NULL. */
void gw_inbox_free(gw_inbox_t *in);

/* Queues t for the loop. Never blocks. */
void gw_inbox_push(gw_inbox_t *in, gw_task_t *t);

/* Queues t, first waiting while the bound is reached, unless *stop becomes true: then t
 * is destroyed and false returned. */
bool gw_inbox_push_bounded(gw_inbox_t *in, gw_task_t *t, const atomic_bool *stop);

/* On the loop: completes and destroys up to max tasks in push order. If more are left it
 * wakes the loop again, so sockets get served in between. Returns how many ran. */
size_t gw_inbox_drain(gw_inbox_t *in, size_t max, void *loop_ctx);

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

/* A stable shard for a string key (e.g. "tenant/room"). */
int64_t gw_workers_shard(const char *key);

#endif
