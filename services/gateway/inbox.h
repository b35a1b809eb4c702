/* Hand-over to the event loop. A task is work with up to two halves: `run` on a worker
 * thread (workers.h: blocking MongoDB/Redis calls) and `complete` back on the loop. The
 * inbox is the loop's queue of tasks to complete: finished worker tasks, chat.deliver items
 * (deliver.c) and failed sends (inbound.c). Pushing wakes the loop (lws_cancel_service), the
 * loop drains. Other threads never touch a session: this queue is their only way in. */
#ifndef CHAT_GATEWAY_INBOX_H
#define CHAT_GATEWAY_INBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    bool forward_; /* run asked to be queued again (gw_task_forward, workers.h) */
    int64_t forward_shard_;
    struct gw_workers *forward_pool_; /* NULL: the pool that ran it */
};

/* A FIFO of tasks linked through their next field, so queueing allocates nothing. The
 * inbox and each worker's queue are one; the caller does the locking. */
typedef struct gw_task_list {
    gw_task_t *head, *tail;
} gw_task_list_t;

void gw_task_list_push(gw_task_list_t *l, gw_task_t *t);

/* The oldest task (unlinked), or NULL if the list is empty. */
gw_task_t *gw_task_list_pop(gw_task_list_t *l);

/* Destroys every task of the list without running or completing it. */
void gw_task_list_destroy(gw_task_list_t *l);

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

#endif
