/* Unit tests of common/tenant_label: the allowlist and the first `max` tenants get their own
 * label, every other tenant _other; series exist from the start for the allowlist and
 * _other; sums stay exact; a gauge goes up and down; concurrent use from several threads. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/tenant_label.h"
#include "tests/support/util.h"

static chat_metrics_t *m;

static void setup(void)
{
    m = chat_metrics_new();
    ck_assert_ptr_nonnull(m);
}

static void teardown(void)
{
    chat_metrics_destroy(m);
    m = NULL;
}

static bool rendered_has(const char *line)
{
    char *text = chat_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    bool found = strstr(text, line) != NULL;
    free(text);
    return found;
}

START_TEST(test_slots)
{
    chat_tenant_labels_t *t = chat_tenant_labels_new(" big , huge,big,,_other", 2);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(chat_tenant_labels_capacity(t), 5); /* big, huge, 2 more, _other */
    ck_assert_uint_eq(chat_tenant_labels_slot(t, "huge"), 1);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, "big"), 0);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, "a"), 2);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, "b"), 3);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, "a"), 2);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, "c"), 4);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, "d"), 4);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, NULL), 4);
    ck_assert_uint_eq(chat_tenant_labels_slot(t, ""), 4);
    ck_assert_str_eq(chat_tenant_labels_name(t, 0), "big");
    ck_assert_str_eq(chat_tenant_labels_name(t, 3), "b");
    ck_assert_str_eq(chat_tenant_labels_name(t, 4), CHAT_TENANT_LABEL_OTHER);
    chat_tenant_labels_destroy(t);
    chat_tenant_labels_destroy(NULL);
    ck_assert_ptr_null(chat_tenant_labels_new("", -1));
}
END_TEST

START_TEST(test_counter_family)
{
    chat_tenant_labels_t *t = chat_tenant_labels_new("vip", 1);
    chat_tenant_counter_t *c =
        chat_tenant_counter_new(t, m, "x_stored_total", "stored", "kind=\"msg\"");
    ck_assert_ptr_nonnull(c);
    /* The allowlist and _other exist before any event; other tenants only once seen. */
    ck_assert(rendered_has("x_stored_total{tenant=\"vip\",kind=\"msg\"} 0\n"));
    ck_assert(rendered_has("x_stored_total{tenant=\"_other\",kind=\"msg\"} 0\n"));
    ck_assert(!rendered_has("tenant=\"a\""));
    chat_tenant_counter_add(c, "a", 2);
    chat_tenant_counter_add(c, "b", 3); /* beyond max: _other */
    chat_tenant_counter_add(c, "c", 4);
    chat_tenant_counter_add(c, "vip", 1);
    chat_tenant_counter_add(NULL, "a", 1);
    ck_assert(rendered_has("x_stored_total{tenant=\"a\",kind=\"msg\"} 2\n"));
    ck_assert(rendered_has("x_stored_total{tenant=\"_other\",kind=\"msg\"} 7\n"));
    ck_assert(rendered_has("x_stored_total{tenant=\"vip\",kind=\"msg\"} 1\n"));
    /* Label values are escaped. */
    chat_tenant_labels_t *t2 = chat_tenant_labels_new("q\"t", 0);
    chat_tenant_counter_t *c2 = chat_tenant_counter_new(t2, m, "y_total", "y", NULL);
    chat_tenant_counter_add(c2, "q\"t", 1);
    ck_assert(rendered_has("y_total{tenant=\"q\\\"t\"} 1\n"));
    chat_tenant_labels_destroy(t2);
    chat_tenant_labels_destroy(t);
}
END_TEST

START_TEST(test_gauge_family)
{
    chat_tenant_labels_t *t = chat_tenant_labels_new(NULL, 5);
    chat_tenant_gauge_t *g = chat_tenant_gauge_new(t, m, "x_connections", "open", NULL);
    ck_assert_ptr_nonnull(g);
    chat_tenant_gauge_add(g, "a", 1);
    chat_tenant_gauge_add(g, "a", 1);
    chat_tenant_gauge_add(g, "a", -1);
    ck_assert(rendered_has("x_connections{tenant=\"a\"} 1\n"));
    ck_assert(rendered_has("x_connections{tenant=\"_other\"} 0\n"));
    chat_tenant_labels_destroy(t);
}
END_TEST

enum { THREADS = 4, TENANTS = 50, ROUNDS = 2000 };

static chat_tenant_counter_t *shared;

static void *worker(void *arg)
{
    (void)arg;
    char name[16];
    for (int r = 0; r < ROUNDS; r++) {
        snprintf(name, sizeof name, "t%d", r % TENANTS);
        chat_tenant_counter_add(shared, name, 1);
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    chat_tenant_labels_t *t = chat_tenant_labels_new(NULL, 10);
    shared = chat_tenant_counter_new(t, m, "z_total", "z", NULL);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, NULL), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    /* Ten tenants labelled, forty under _other: the sum is exact. */
    char *text = chat_metrics_render(m, NULL);
    unsigned long long sum = 0;
    int series = 0;
    for (char *line = strstr(text, "z_total{"); line != NULL; line = strstr(line + 1, "z_total{")) {
        unsigned long long v = 0;
        ck_assert_int_eq(sscanf(strchr(line, '}') + 1, " %llu", &v), 1);
        sum += v;
        series++;
    }
    free(text);
    ck_assert_int_eq(series, 11);
    ck_assert_uint_eq(sum, (unsigned long long)THREADS * ROUNDS);
    chat_tenant_labels_destroy(t);
}
END_TEST

int main(void)
{
    chat_log_set_level(CHAT_LOG_ERROR);
    Suite *s = suite_create("tenant_label");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_slots);
    tcase_add_test(tc, test_counter_family);
    tcase_add_test(tc, test_gauge_family);
    tcase_add_test(tc, test_concurrent);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
