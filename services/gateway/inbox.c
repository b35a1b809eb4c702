/* The loop's inbox (see inbox.h): a mutex-guarded task list with a condition for the bounded
 * pushers, and at most one wake outstanding, so a burst of pushes costs the loop one wake-up.
 * Also the intrusive task list the worker queues use. */
#include "services/gateway/inbox.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define BOUNDED_WAIT_NS (100 * 1000 * 1000) /* re-checks the stop flag this often */

void gw_task_list_push(gw_task_list_t *l, gw_task_t *t)
{
    t->next = NULL;
    if (l->tail != NULL)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
}

gw_task_t *gw_task_list_pop(gw_task_list_t *l)
{
    gw_task_t *t = l->head;
    if (t != NULL) {
        l->head = t->next;
        if (l->head == NULL)
            l->tail = NULL;
        t->next = NULL;
    }
    return t;
}

void gw_task_list_destroy(gw_task_list_t *l)
{
    gw_task_t *t;
    while ((t = gw_task_list_pop(l)) != NULL)
        t->destroy(t);
}

struct gw_inbox {
    pthread_mutex_t lock;
    pthread_cond_t room; /* signalled when bounded tasks are drained */
    gw_task_list_t tasks;
    size_t bounded; /* bounded tasks queued */
    size_t bound;
    bool wake_sent; /* a wake is outstanding: the loop will drain */
    void (*wake)(void *ud);
    void *wake_ud;
};

gw_inbox_t *gw_inbox_new(size_t bound)
{
    gw_inbox_t *in = calloc(1, sizeof *in);
    if (in == NULL)
        return NULL;
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->room, NULL);
    in->bound = bound > 0 ? bound : 1;
    return in;
}

/* Releases the lock, then wakes the loop if wake is true. The wake function is read under
 * the lock (gw_inbox_set_wake may change it) but called outside it: it takes the loop's own
 * lock and must not hold up the other pushers and the drain meanwhile. */
static void inbox_unlock_and_wake(gw_inbox_t *in, bool wake)
{
    void (*fn)(void *ud) = wake ? in->wake : NULL;
    void *ud = in->wake_ud;
    pthread_mutex_unlock(&in->lock);
    if (fn != NULL)
        fn(ud);
}

void gw_inbox_set_wake(gw_inbox_t *in, void (*wake)(void *ud), void *ud)
{
    pthread_mutex_lock(&in->lock);
    in->wake = wake;
    in->wake_ud = ud;
    in->wake_sent = false;
    inbox_unlock_and_wake(in, in->tasks.head != NULL);
}

void gw_inbox_free(gw_inbox_t *in)
{
    if (in == NULL)
        return;
    gw_task_list_destroy(&in->tasks);
    pthread_cond_destroy(&in->room);
    pthread_mutex_destroy(&in->lock);
    free(in);
}

/* Under the lock: appends t. Returns true if the loop must be woken (no wake outstanding
 * yet); the wake then counts as sent. */
static bool inbox_append(gw_inbox_t *in, gw_task_t *t)
{
    gw_task_list_push(&in->tasks, t);
    if (in->wake_sent || in->wake == NULL)
        return false;
    in->wake_sent = true;
    return true;
}

void gw_inbox_push(gw_inbox_t *in, gw_task_t *t)
{
    t->bounded_ = false;
    pthread_mutex_lock(&in->lock);
    inbox_unlock_and_wake(in, inbox_append(in, t));
}

bool gw_inbox_push_bounded(gw_inbox_t *in, gw_task_t *t, const atomic_bool *stop)
{
    t->bounded_ = true;
    pthread_mutex_lock(&in->lock);
    while (in->bounded >= in->bound && !atomic_load(stop)) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += BOUNDED_WAIT_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&in->room, &in->lock, &until);
    }
    if (atomic_load(stop)) {
        pthread_mutex_unlock(&in->lock);
        t->destroy(t);
        return false;
    }
    in->bounded++;
    inbox_unlock_and_wake(in, inbox_append(in, t));
    return true;
}

size_t gw_inbox_drain(gw_inbox_t *in, size_t max, void *loop_ctx)
{
    gw_task_list_t batch = {0};
    size_t n = 0;
    size_t freed = 0;
    pthread_mutex_lock(&in->lock);
    gw_task_t *t;
    while (n < max && (t = gw_task_list_pop(&in->tasks)) != NULL) {
        gw_task_list_push(&batch, t);
        freed += t->bounded_;
        n++;
    }
    in->bounded -= freed;
    bool more = in->tasks.head != NULL;
    /* With tasks left, the wake stays "sent" and is repeated once the batch is done. */
    in->wake_sent = more;
    void (*wake)(void *ud) = more ? in->wake : NULL;
    void *ud = in->wake_ud;
    if (freed > 0)
        pthread_cond_broadcast(&in->room);
    pthread_mutex_unlock(&in->lock);
    while ((t = gw_task_list_pop(&batch)) != NULL) {
        if (t->complete != NULL)
            t->complete(t, loop_ctx);
        t->destroy(t);
    }
    if (wake != NULL)
        wake(ud);
    return n;
}
