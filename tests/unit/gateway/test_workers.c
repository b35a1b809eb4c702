/* Unit tests of services/gateway/workers: the worker pool (run -> complete on the
 * draining thread, per-shard order, contexts, stop runs what is queued, forwarding). */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "services/gateway/workers.h"
#include "tests/support/util.h"

typedef struct test_task {
    gw_task_t task;
    int id;
    int *log; /* completions append their id here */
    size_t *nlog;
    int ran_on; /* context value the run half saw */
    atomic_int *destroyed;
} test_task_t;

static void tt_destroy(gw_task_t *t)
{
    test_task_t *tt = (test_task_t *)t;
    if (tt->destroyed != NULL)
        atomic_fetch_add(tt->destroyed, 1);
    free(tt);
}

static void tt_run(gw_task_t *t, void *ctx)
{
    test_task_t *tt = (test_task_t *)t;
    tt->ran_on = *(int *)ctx;
    /* A little work, so that ordering problems would show. */
    usleep((useconds_t)(rand() % 200));
}

/* Completion that checks the run half happened on the expected worker. */
static void tt_complete_ctx(gw_task_t *t, void *loop_ctx)
{
    test_task_t *tt = (test_task_t *)t;
    (void)loop_ctx;
    tt->log[(*tt->nlog)++] = tt->id * 100 + tt->ran_on;
}

static test_task_t *tt_new(int id, int *log, size_t *nlog, atomic_int *destroyed)
{
    test_task_t *tt = calloc(1, sizeof *tt);
    ck_assert_ptr_nonnull(tt);
    tt->task.complete = tt_complete_ctx;
    tt->task.destroy = tt_destroy;
    tt->id = id;
    tt->log = log;
    tt->nlog = nlog;
    tt->destroyed = destroyed;
    return tt;
}

static int ctx_values[3] = {10, 11, 12};

static void *ctx_new(size_t index, void *ud)
{
    (void)ud;
    return &ctx_values[index];
}

START_TEST(test_pool_shard_order_and_contexts)
{
    gw_inbox_t *in = gw_inbox_new(1000);
    gw_workers_conf_t conf = {.nthreads = 3, .ctx_new = ctx_new, .inbox = in};
    gw_workers_t *w = NULL;
    ck_assert_int_eq(gw_workers_new(&conf, &w), CHAT_OK);
    ck_assert_uint_eq(gw_workers_count(w), 3);
    int log[200];
    size_t nlog = 0;
    atomic_int destroyed = 0;
    /* 60 tasks on shard 4 (worker 1) must complete in submission order. */
    for (int i = 0; i < 60; i++) {
        test_task_t *tt = tt_new(i, log, &nlog, &destroyed);
        tt->task.run = tt_run;
        tt->task.complete = tt_complete_ctx;
        gw_workers_submit(w, &tt->task, 4);
    }
    gw_workers_stop(w); /* runs what is queued first */
    ck_assert(gw_workers_stopping(w));
    gw_inbox_drain(in, 1000, NULL);
    ck_assert_uint_eq(nlog, 60);
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(log[i], i * 100 + 11);
    ck_assert_int_eq(atomic_load(&destroyed), 60);
    /* After the stop a task is destroyed without running. */
    test_task_t *late = tt_new(1, log, &nlog, &destroyed);
    late->task.run = tt_run;
    gw_workers_submit(w, &late->task, -1);
    ck_assert_int_eq(atomic_load(&destroyed), 61);
    gw_workers_free(w);
    gw_inbox_free(in);
}
END_TEST

START_TEST(test_pool_round_robin_all_complete)
{
    gw_inbox_t *in = gw_inbox_new(1000);
    gw_workers_conf_t conf = {.nthreads = 3, .ctx_new = ctx_new, .inbox = in};
    gw_workers_t *w = NULL;
    ck_assert_int_eq(gw_workers_new(&conf, &w), CHAT_OK);
    int log[100];
    size_t nlog = 0;
    int seen[3] = {0};
    for (int i = 0; i < 30; i++) {
        test_task_t *tt = tt_new(i, log, &nlog, NULL);
        tt->task.run = tt_run;
        tt->task.complete = tt_complete_ctx;
        gw_workers_submit(w, &tt->task, -1);
    }
    gw_workers_free(w);
    gw_inbox_drain(in, 1000, NULL);
    ck_assert_uint_eq(nlog, 30);
    for (size_t i = 0; i < nlog; i++)
        seen[log[i] % 100 - 10]++;
    ck_assert_int_eq(seen[0] + seen[1] + seen[2], 30);
    /* round robin spreads evenly */
    ck_assert_int_eq(seen[0], 10);
    ck_assert_int_eq(seen[1], 10);
    ck_assert_int_eq(seen[2], 10);
    gw_inbox_free(in);
}
END_TEST

/* Each worker sleeps on its own condition: a task for worker 1 must run while worker 0 is
 * busy (no wake-up lost to the wrong worker), and stopping wakes idle workers too. */
static atomic_bool blocker_release;
static atomic_bool blocker_running;

static void blocker_run(gw_task_t *t, void *ctx)
{
    (void)t;
    (void)ctx;
    atomic_store(&blocker_running, true);
    while (!atomic_load(&blocker_release))
        usleep(1000);
}

START_TEST(test_pool_busy_worker_does_not_hold_others)
{
    gw_inbox_t *in = gw_inbox_new(100);
    gw_workers_conf_t conf = {.nthreads = 2, .ctx_new = ctx_new, .inbox = in};
    gw_workers_t *w = NULL;
    ck_assert_int_eq(gw_workers_new(&conf, &w), CHAT_OK);
    atomic_store(&blocker_release, false);
    atomic_store(&blocker_running, false);
    int log[4];
    size_t nlog = 0;
    test_task_t *block = tt_new(1, log, &nlog, NULL);
    block->task.run = blocker_run;
    block->task.complete = tt_complete_ctx;
    gw_workers_submit(w, &block->task, 0);
    while (!atomic_load(&blocker_running))
        usleep(1000);
    test_task_t *other = tt_new(2, log, &nlog, NULL);
    other->task.run = tt_run;
    other->task.complete = tt_complete_ctx;
    gw_workers_submit(w, &other->task, 1);
    for (int i = 0; i < 2000 && nlog == 0; i++) {
        gw_inbox_drain(in, 10, NULL);
        usleep(1000);
    }
    ck_assert_uint_eq(nlog, 1);
    ck_assert_int_eq(log[0], 2 * 100 + 11); /* ran on worker 1 while worker 0 was busy */
    atomic_store(&blocker_release, true);
    gw_workers_free(w);
    gw_inbox_drain(in, 10, NULL);
    ck_assert_uint_eq(nlog, 2);
    gw_inbox_free(in);
}
END_TEST

/* Pools whose workers are idle, or were just handed one task, always stop (the test's
 * timeout catches a worker that sleeps through the stop). */
START_TEST(test_pool_stop_wakes_idle_workers)
{
    for (int round = 0; round < 50; round++) {
        gw_inbox_t *in = gw_inbox_new(100);
        gw_workers_conf_t conf = {.nthreads = 3, .ctx_new = ctx_new, .inbox = in};
        gw_workers_t *w = NULL;
        ck_assert_int_eq(gw_workers_new(&conf, &w), CHAT_OK);
        int log[2];
        size_t nlog = 0;
        if (round % 2 == 1) {
            test_task_t *tt = tt_new(round, log, &nlog, NULL);
            tt->task.run = tt_run;
            tt->task.complete = tt_complete_ctx;
            gw_workers_submit(w, &tt->task, round % 3);
        }
        gw_workers_free(w);
        gw_inbox_drain(in, 10, NULL);
        ck_assert_uint_eq(nlog, (size_t)(round % 2));
        gw_inbox_free(in);
    }
}
END_TEST

/* First run on its shard, then forwarded to another worker: runs twice, completes once. */
typedef struct two_step {
    gw_task_t task;
    int first, second, completions;
    int *done;
    gw_workers_t *to; /* the pool of the second run; NULL: the same */
    bool block;       /* the second run waits for blocker_release */
} two_step_t;

static void two_run(gw_task_t *t, void *ctx)
{
    two_step_t *ts = (two_step_t *)t;
    if (ts->first == 0) {
        ts->first = *(int *)ctx;
        gw_task_forward(t, ts->to, 2);
    } else {
        ts->second = *(int *)ctx;
        if (ts->block)
            blocker_run(t, ctx);
    }
}

static void two_complete(gw_task_t *t, void *loop_ctx)
{
    (void)loop_ctx;
    two_step_t *ts = (two_step_t *)t;
    ts->completions++;
    *ts->done = ts->first * 100 + ts->second + 1000 * ts->completions;
}

static void two_destroy(gw_task_t *t)
{
    free(t);
}

START_TEST(test_task_forward)
{
    gw_inbox_t *in = gw_inbox_new(10);
    gw_workers_conf_t conf = {.nthreads = 3, .ctx_new = ctx_new, .inbox = in};
    gw_workers_t *w = NULL;
    ck_assert_int_eq(gw_workers_new(&conf, &w), CHAT_OK);
    int done = 0;
    two_step_t *ts = calloc(1, sizeof *ts);
    ts->task.run = two_run;
    ts->task.complete = two_complete;
    ts->task.destroy = two_destroy;
    ts->done = &done;
    gw_workers_submit(w, &ts->task, 1);
    for (int tries = 0; tries < 200 && done == 0; tries++) {
        gw_inbox_drain(in, 10, NULL);
        usleep(5000);
    }
    ck_assert_int_eq(done, 1000 + 11 * 100 + 12); /* once, on worker 1 then worker 2 */
    gw_workers_free(w);
    gw_inbox_free(in);
}
END_TEST

static int other_ctx_value = 20;

static void *ctx_other(size_t index, void *ud)
{
    (void)index;
    (void)ud;
    return &other_ctx_value;
}

/* Forwarded to another pool, the second run happens there, and while it is stuck (a slow
 * read) the first pool's worker takes its next task (a heartbeat) at once. */
START_TEST(test_task_forward_to_other_pool)
{
    gw_inbox_t *in = gw_inbox_new(10);
    gw_workers_conf_t conf = {.nthreads = 1, .ctx_new = ctx_new, .inbox = in};
    gw_workers_conf_t other_conf = {.nthreads = 1, .ctx_new = ctx_other, .inbox = in};
    gw_workers_t *w = NULL, *other = NULL;
    ck_assert_int_eq(gw_workers_new(&conf, &w), CHAT_OK);
    ck_assert_int_eq(gw_workers_new(&other_conf, &other), CHAT_OK);
    atomic_store(&blocker_release, false);
    atomic_store(&blocker_running, false);
    int done = 0;
    two_step_t *ts = calloc(1, sizeof *ts);
    ck_assert_ptr_nonnull(ts);
    ts->task.run = two_run;
    ts->task.complete = two_complete;
    ts->task.destroy = two_destroy;
    ts->done = &done;
    ts->to = other;
    ts->block = true;
    gw_workers_submit(w, &ts->task, 0);
    while (!atomic_load(&blocker_running))
        usleep(1000);
    int log[2];
    size_t nlog = 0;
    test_task_t *next = tt_new(3, log, &nlog, NULL);
    next->task.run = tt_run;
    gw_workers_submit(w, &next->task, 0);
    for (int i = 0; i < 2000 && nlog == 0; i++) {
        gw_inbox_drain(in, 10, NULL);
        usleep(1000);
    }
    ck_assert_uint_eq(nlog, 1);
    ck_assert_int_eq(log[0], 3 * 100 + 10); /* on the first pool, its forwarded task stuck */
    ck_assert_int_eq(done, 0);
    atomic_store(&blocker_release, true);
    for (int i = 0; i < 2000 && done == 0; i++) {
        gw_inbox_drain(in, 10, NULL);
        usleep(1000);
    }
    ck_assert_int_eq(done, 1000 + 10 * 100 + 20); /* once: pool 1's worker, then the other's */
    gw_workers_free(w);
    gw_workers_free(other);
    gw_inbox_free(in);
}
END_TEST

static void *ctx_fail(size_t index, void *ud)
{
    (void)ud;
    return index == 1 ? NULL : &ctx_values[index];
}

START_TEST(test_pool_context_failure)
{
    gw_workers_conf_t conf = {.nthreads = 3, .ctx_new = ctx_fail};
    gw_workers_t *w = NULL;
    ck_assert_int_eq(gw_workers_new(&conf, &w), CHAT_ERR_IO);
    ck_assert_ptr_null(w);
}
END_TEST

START_TEST(test_shard_is_stable)
{
    ck_assert_int_eq(gw_workers_shard("acme/general"), gw_workers_shard("acme/general"));
    ck_assert_int_ge(gw_workers_shard("x"), 0);
    ck_assert_int_ne(gw_workers_shard("acme/general"), gw_workers_shard("acme/random"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_workers");
    TCase *tc = tcase_create("workers");
    tcase_add_test(tc, test_pool_shard_order_and_contexts);
    tcase_add_test(tc, test_pool_round_robin_all_complete);
    tcase_add_test(tc, test_pool_busy_worker_does_not_hold_others);
    tcase_add_test(tc, test_pool_stop_wakes_idle_workers);
    tcase_add_test(tc, test_pool_context_failure);
    tcase_add_test(tc, test_task_forward);
    tcase_add_test(tc, test_task_forward_to_other_pool);
    tcase_add_test(tc, test_shard_is_stable);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
