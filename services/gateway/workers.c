/* The worker pool (see workers.h): one mutex guards every worker's queue; each worker
 * sleeps on a condition of its own, so a submit wakes only the thread that can take the
 * task. */
#include "services/gateway/workers.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "common/contract.h"
#include "common/hash.h"
#include "common/log.h"

typedef struct worker {
    struct gw_workers *pool;
    pthread_t thread;
    bool started;
    void *ctx;
    gw_task_list_t queue;
    /* Signalled when a task joins this worker's queue (or on stop): every task belongs to
     * one worker, so a submit wakes only the thread that can take it. */
    pthread_cond_t wake;
} worker_t;

struct gw_workers {
    pthread_mutex_t lock; /* guards every worker's queue */
    atomic_bool stopping;
    bool stopped;
    size_t n;
    size_t next; /* round robin */
    worker_t *workers;
    gw_workers_conf_t conf;
};

static void task_finish(gw_workers_t *w, gw_task_t *t)
{
    if (t->complete != NULL && w->conf.inbox != NULL)
        gw_inbox_push(w->conf.inbox, t);
    else
        t->destroy(t);
}

static void *worker_main(void *arg)
{
    worker_t *me = arg;
    gw_workers_t *w = me->pool;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        gw_task_t *t = gw_task_list_pop(&me->queue);
        if (t == NULL) {
            if (atomic_load(&w->stopping))
                break;
            pthread_cond_wait(&me->wake, &w->lock);
            continue;
        }
        pthread_mutex_unlock(&w->lock);
        if (t->run != NULL)
            t->run(t, me->ctx);
        if (t->forward_) {
            t->forward_ = false;
            gw_workers_t *to = t->forward_pool_ != NULL ? t->forward_pool_ : w;
            t->forward_pool_ = NULL;
            gw_workers_submit(to, t, t->forward_shard_);
        } else {
            task_finish(w, t);
        }
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void workers_release(gw_workers_t *w)
{
    for (size_t i = 0; i < w->n; i++) {
        gw_task_list_destroy(&w->workers[i].queue);
        if (w->workers[i].ctx != NULL && w->conf.ctx_free != NULL)
            w->conf.ctx_free(w->workers[i].ctx, w->conf.ud);
        pthread_cond_destroy(&w->workers[i].wake);
    }
    free(w->workers);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

/* Creates every context first, so a failure (e.g. Redis unreachable) starts no thread. */
static bool workers_create_ctx(gw_workers_t *w)
{
    for (size_t i = 0; i < w->n; i++) {
        worker_t *me = &w->workers[i];
        me->pool = w;
        if (w->conf.ctx_new != NULL) {
            me->ctx = w->conf.ctx_new(i, w->conf.ud);
            if (me->ctx == NULL)
                return false;
        }
    }
    return true;
}

chat_err_t gw_workers_new(const gw_workers_conf_t *conf, gw_workers_t **out)
{
    if (conf->nthreads == 0)
        return CHAT_ERR_INVALID;
    gw_workers_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return CHAT_ERR_NOMEM;
    pthread_mutex_init(&w->lock, NULL);
    atomic_init(&w->stopping, false);
    w->conf = *conf;
    w->n = conf->nthreads;
    w->workers = calloc(w->n, sizeof *w->workers);
    if (w->workers == NULL) {
        w->n = 0;
        workers_release(w);
        return CHAT_ERR_NOMEM;
    }
    for (size_t i = 0; i < w->n; i++)
        pthread_cond_init(&w->workers[i].wake, NULL);
    if (!workers_create_ctx(w)) {
        workers_release(w);
        return CHAT_ERR_IO;
    }
    for (size_t i = 0; i < w->n; i++) {
        if (pthread_create(&w->workers[i].thread, NULL, worker_main, &w->workers[i]) != 0) {
            chat_log_error("worker thread failed to start", CHAT_F_INT("index", i));
            gw_workers_free(w);
            return CHAT_ERR_IO;
        }
        w->workers[i].started = true;
    }
    *out = w;
    return CHAT_OK;
}

void gw_task_forward(gw_task_t *t, gw_workers_t *pool, int64_t shard)
{
    t->forward_ = true;
    t->forward_pool_ = pool;
    t->forward_shard_ = shard;
}

void gw_workers_submit(gw_workers_t *w, gw_task_t *t, int64_t shard)
{
    pthread_mutex_lock(&w->lock);
    if (w->stopped) {
        pthread_mutex_unlock(&w->lock);
        t->destroy(t);
        return;
    }
    size_t i = shard >= 0 ? (size_t)shard % w->n : w->next++ % w->n;
    gw_task_list_push(&w->workers[i].queue, t);
    pthread_cond_signal(&w->workers[i].wake);
    pthread_mutex_unlock(&w->lock);
}

bool gw_workers_stopping(const gw_workers_t *w)
{
    return atomic_load(&w->stopping);
}

size_t gw_workers_count(const gw_workers_t *w)
{
    return w->n;
}

void gw_workers_stop(gw_workers_t *w)
{
    pthread_mutex_lock(&w->lock);
    if (w->stopped) {
        pthread_mutex_unlock(&w->lock);
        return;
    }
    w->stopped = true;
    atomic_store(&w->stopping, true);
    for (size_t i = 0; i < w->n; i++)
        pthread_cond_signal(&w->workers[i].wake);
    pthread_mutex_unlock(&w->lock);
    for (size_t i = 0; i < w->n; i++) {
        if (w->workers[i].started)
            pthread_join(w->workers[i].thread, NULL);
        w->workers[i].started = false;
    }
}

void gw_workers_free(gw_workers_t *w)
{
    if (w == NULL)
        return;
    gw_workers_stop(w);
    workers_release(w);
}

int64_t gw_workers_shard(const char *key)
{
    return (int64_t)(chat_hash(key) >> 1);
}

int64_t gw_workers_room_shard(const char *tenant, const char *room)
{
    char key[CHAT_ROOM_KEY_MAX];
    chat_room_key(tenant, room, key, sizeof key); /* names of a session: they fit */
    return gw_workers_shard(key);
}
