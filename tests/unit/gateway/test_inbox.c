/* Unit tests of services/gateway/inbox: the loop's inbox (order, wake-ups, drain limit,
 * bound with a stop flag, undrained tasks freed). */
#define _GNU_SOURCE /* pthread_tryjoin_np */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "services/gateway/inbox.h"
#include "tests/support/util.h"

typedef struct test_task {
    gw_task_t task;
    int id;
    int *log; /* completions append their id here */
    size_t *nlog;
} test_task_t;

static void tt_complete(gw_task_t *t, void *loop_ctx)
{
    test_task_t *tt = (test_task_t *)t;
    ck_assert_ptr_eq(loop_ctx, (void *)0x1234);
    tt->log[(*tt->nlog)++] = tt->id;
}

static void tt_destroy(gw_task_t *t)
{
    free(t);
}

static test_task_t *tt_new(int id, int *log, size_t *nlog)
{
    test_task_t *tt = calloc(1, sizeof *tt);
    ck_assert_ptr_nonnull(tt);
    tt->task.complete = tt_complete;
    tt->task.destroy = tt_destroy;
    tt->id = id;
    tt->log = log;
    tt->nlog = nlog;
    return tt;
}

static atomic_int wakes;

static void count_wake(void *ud)
{
    (void)ud;
    atomic_fetch_add(&wakes, 1);
}

START_TEST(test_inbox_order_and_wakes)
{
    atomic_store(&wakes, 0);
    gw_inbox_t *in = gw_inbox_new(16);
    gw_inbox_set_wake(in, count_wake, NULL);
    int log[16];
    size_t nlog = 0;
    for (int i = 0; i < 5; i++)
        gw_inbox_push(in, &tt_new(i, log, &nlog)->task);
    /* One wake for the whole burst: the loop drains everything it finds. */
    ck_assert_int_eq(atomic_load(&wakes), 1);
    ck_assert_uint_eq(gw_inbox_drain(in, 3, (void *)0x1234), 3);
    /* Tasks left: the drain wakes the loop again. */
    ck_assert_int_eq(atomic_load(&wakes), 2);
    ck_assert_uint_eq(gw_inbox_drain(in, 100, (void *)0x1234), 2);
    ck_assert_int_eq(atomic_load(&wakes), 2);
    ck_assert_uint_eq(nlog, 5);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(log[i], i);
    gw_inbox_push(in, &tt_new(9, log, &nlog)->task);
    ck_assert_int_eq(atomic_load(&wakes), 3);
    gw_inbox_free(in); /* frees the undrained task (ASan checks) */
}
END_TEST

static atomic_bool stop_flag;

static void *bounded_pusher(void *arg)
{
    gw_inbox_t *in = arg;
    static int log[8];
    static size_t nlog;
    /* The bound is 2: the third push waits until the stop flag is raised. */
    for (int i = 0; i < 3; i++) {
        if (!gw_inbox_push_bounded(in, &tt_new(i, log, &nlog)->task, &stop_flag))
            return (void *)1;
    }
    return NULL;
}

START_TEST(test_inbox_bound_and_stop)
{
    atomic_store(&stop_flag, false);
    gw_inbox_t *in = gw_inbox_new(2);
    pthread_t th;
    pthread_create(&th, NULL, bounded_pusher, in);
    usleep(300 * 1000);
    /* Still waiting in its third push: only the stop flag may end it. */
    ck_assert_int_eq(pthread_tryjoin_np(th, NULL), EBUSY);
    atomic_store(&stop_flag, true);
    void *ret = NULL;
    pthread_join(th, &ret);
    ck_assert_ptr_eq(ret, (void *)1); /* gave up: its task was destroyed */
    gw_inbox_free(in);
}
END_TEST

START_TEST(test_inbox_bound_released_by_drain)
{
    atomic_store(&stop_flag, false);
    gw_inbox_t *in = gw_inbox_new(2);
    pthread_t th;
    pthread_create(&th, NULL, bounded_pusher, in);
    size_t drained = 0;
    for (int tries = 0; tries < 200 && drained < 3; tries++) {
        drained += gw_inbox_drain(in, 10, (void *)0x1234);
        usleep(5000);
    }
    void *ret = (void *)1;
    pthread_join(th, &ret);
    ck_assert_ptr_null(ret);
    ck_assert_uint_eq(drained, 3);
    gw_inbox_free(in);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_inbox");
    TCase *tc = tcase_create("inbox");
    tcase_add_test(tc, test_inbox_order_and_wakes);
    tcase_add_test(tc, test_inbox_bound_and_stop);
    tcase_add_test(tc, test_inbox_bound_released_by_drain);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
