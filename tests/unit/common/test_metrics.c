/* Unit tests of common/metrics: values of counters, gauges and histograms, the exact text
 * exposition of a small registry, series identity, registration conflicts, name and bucket
 * validation, and concurrent updates from several threads. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/metrics.h"
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

/* The rendered registry; checks that *len agrees with the string. Caller frees. */
static char *render(void)
{
    size_t len = 12345;
    char *text = chat_metrics_render(m, &len);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(len, strlen(text));
    return text;
}

START_TEST(test_counter)
{
    chat_counter_t *c = chat_metrics_counter(m, "requests_total", "Requests.", NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(chat_counter_value(c), 0);
    chat_counter_inc(c);
    chat_counter_add(c, 41);
    ck_assert_uint_eq(chat_counter_value(c), 42);
    chat_counter_add(c, UINT64_C(10000000000));
    ck_assert_uint_eq(chat_counter_value(c), UINT64_C(10000000042));
}
END_TEST

START_TEST(test_gauge)
{
    chat_gauge_t *g = chat_metrics_gauge(m, "connections", "Open connections.", NULL);
    ck_assert_ptr_nonnull(g);
    ck_assert(chat_gauge_value(g) == 0.0);
    chat_gauge_set(g, 3.5);
    chat_gauge_add(g, -1.25);
    ck_assert(chat_gauge_value(g) == 2.25);
    chat_gauge_add(g, -10);
    ck_assert(chat_gauge_value(g) == -7.75);
    chat_gauge_set(g, 0);
    ck_assert(chat_gauge_value(g) == 0.0);
}
END_TEST

START_TEST(test_histogram)
{
    static const double bounds[] = {0.25, 1, 10};
    chat_histogram_t *h = chat_metrics_histogram(m, "op_seconds", "Op time.", NULL, bounds, 3);
    ck_assert_ptr_nonnull(h);
    const double values[] = {0.125, 0.25 /* on the bound: le is inclusive */, 0.5, 5, 50, -1};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        chat_histogram_observe(h, values[i]);
    chat_histogram_observe(h, NAN); /* dropped */
    ck_assert_uint_eq(chat_histogram_count(h), 6);
    char *text = render();
    ck_assert_ptr_nonnull(strstr(text, "op_seconds_bucket{le=\"0.25\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(text, "op_seconds_bucket{le=\"1\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(text, "op_seconds_bucket{le=\"10\"} 5\n"));
    ck_assert_ptr_nonnull(strstr(text, "op_seconds_bucket{le=\"+Inf\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(text, "op_seconds_sum 54.875\n"));
    ck_assert_ptr_nonnull(strstr(text, "op_seconds_count 6\n"));
    free(text);
}
END_TEST

START_TEST(test_render_exact)
{
    static const double lat_bounds[] = {0.25, 1, 2.5};
    static const double size_bounds[] = {10};
    chat_counter_t *ok = chat_metrics_counter(m, "chat_messages_total", "Messages handled.",
                                              "topic=\"chat.inbound\",result=\"ok\"");
    chat_counter_t *err = chat_metrics_counter(m, "chat_messages_total", "Messages handled.",
                                               "topic=\"chat.inbound\",result=\"error\"");
    chat_gauge_t *conns = chat_metrics_gauge(m, "chat_connections", "Open connections.", NULL);
    chat_histogram_t *lat =
        chat_metrics_histogram(m, "chat_latency_seconds", "Latency.", "op=\"send\"", lat_bounds, 3);
    chat_gauge_t *ratio =
        chat_metrics_gauge(m, "chat_connections", "Open connections.", "gw=\"b\"");
    chat_histogram_t *size =
        chat_metrics_histogram(m, "chat_batch_size", "Batch size.", NULL, size_bounds, 1);
    chat_counter_add(ok, 3);
    chat_counter_inc(err);
    chat_gauge_set(conns, 7);
    chat_gauge_set(ratio, 0.1);
    const double observed[] = {0.25, 0.5, 0.5, 2, 4};
    for (size_t i = 0; i < sizeof observed / sizeof observed[0]; i++)
        chat_histogram_observe(lat, observed[i]);
    chat_histogram_observe(size, 3);

    static const char expected[] =
        "# HELP chat_messages_total Messages handled.\n"
        "# TYPE chat_messages_total counter\n"
        "chat_messages_total{topic=\"chat.inbound\",result=\"ok\"} 3\n"
        "chat_messages_total{topic=\"chat.inbound\",result=\"error\"} 1\n"
        "# HELP chat_connections Open connections.\n"
        "# TYPE chat_connections gauge\n"
        "chat_connections 7\n"
        "chat_connections{gw=\"b\"} 0.1\n"
        "# HELP chat_latency_seconds Latency.\n"
        "# TYPE chat_latency_seconds histogram\n"
        "chat_latency_seconds_bucket{op=\"send\",le=\"0.25\"} 1\n"
        "chat_latency_seconds_bucket{op=\"send\",le=\"1\"} 3\n"
        "chat_latency_seconds_bucket{op=\"send\",le=\"2.5\"} 4\n"
        "chat_latency_seconds_bucket{op=\"send\",le=\"+Inf\"} 5\n"
        "chat_latency_seconds_sum{op=\"send\"} 7.25\n"
        "chat_latency_seconds_count{op=\"send\"} 5\n"
        "# HELP chat_batch_size Batch size.\n"
        "# TYPE chat_batch_size histogram\n"
        "chat_batch_size_bucket{le=\"10\"} 1\n"
        "chat_batch_size_bucket{le=\"+Inf\"} 1\n"
        "chat_batch_size_sum 3\n"
        "chat_batch_size_count 1\n";
    char *text = render();
    ck_assert_str_eq(text, expected);
    free(text);
}
END_TEST

START_TEST(test_render_empty_and_special_values)
{
    char *text = render();
    ck_assert_str_eq(text, "");
    free(text);
    chat_gauge_t *g = chat_metrics_gauge(m, "g", "Multi\nline \\ help.", NULL);
    chat_gauge_set(g, -INFINITY);
    text = render();
    ck_assert_str_eq(text, "# HELP g Multi\\nline \\\\ help.\n# TYPE g gauge\ng -Inf\n");
    free(text);
    chat_gauge_set(g, 1e-7);
    text = render();
    ck_assert_ptr_nonnull(strstr(text, "\ng 1e-07\n"));
    free(text);
}
END_TEST

START_TEST(test_same_series_same_metric)
{
    chat_counter_t *a = chat_metrics_counter(m, "c_total", "C.", "k=\"1\"");
    ck_assert_ptr_eq(chat_metrics_counter(m, "c_total", "C.", "k=\"1\""), a);
    chat_counter_t *b = chat_metrics_counter(m, "c_total", "C.", "k=\"2\"");
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    chat_counter_t *none = chat_metrics_counter(m, "c_total", "C.", NULL);
    ck_assert_ptr_eq(chat_metrics_counter(m, "c_total", "C.", ""), none);
    chat_histogram_t *h = chat_metrics_histogram(m, "h", "H.", NULL, chat_metrics_latency_buckets,
                                                 chat_metrics_latency_nbuckets);
    ck_assert_ptr_eq(chat_metrics_histogram(m, "h", "H.", NULL, chat_metrics_latency_buckets,
                                            chat_metrics_latency_nbuckets),
                     h);
    chat_counter_inc(a);
    chat_counter_inc(chat_metrics_counter(m, "c_total", "C.", "k=\"1\""));
    ck_assert_uint_eq(chat_counter_value(a), 2);
    /* One family, printed once. */
    char *text = render();
    ck_assert_ptr_eq(strstr(text, "# TYPE c_total"), strstr(text, "# TYPE c_total counter"));
    ck_assert_ptr_null(strstr(strstr(text, "# TYPE c_total") + 1, "# TYPE c_total"));
    free(text);
}
END_TEST

START_TEST(test_conflicts)
{
    static const double b1[] = {1, 2}, b2[] = {1, 3};
    ck_assert_ptr_nonnull(chat_metrics_counter(m, "x_total", "X.", NULL));
    ck_assert_ptr_null(chat_metrics_gauge(m, "x_total", "X.", NULL));
    ck_assert_ptr_null(chat_metrics_histogram(m, "x_total", "X.", NULL, b1, 2));
    ck_assert_ptr_null(chat_metrics_counter(m, "x_total", "Other help.", NULL));
    ck_assert_ptr_null(chat_metrics_counter(m, "x_total", "Other help.", "k=\"v\""));
    ck_assert_ptr_nonnull(chat_metrics_histogram(m, "y", "Y.", NULL, b1, 2));
    ck_assert_ptr_null(chat_metrics_histogram(m, "y", "Y.", NULL, b2, 2));
    ck_assert_ptr_null(chat_metrics_histogram(m, "y", "Y.", NULL, b1, 1));
    char *text = render();
    ck_assert_ptr_null(strstr(text, "gauge"));
    ck_assert_ptr_null(strstr(text, "Other help"));
    ck_assert_ptr_null(strstr(text, "k=\"v\""));
    free(text);
}
END_TEST

START_TEST(test_names_and_labels_validated)
{
    const char *bad[] = {"", "1abc", "a-b", "a b", "a.b", "caf\xc3\xa9", "a{b}", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(chat_metrics_counter(m, bad[i], "h", NULL) == NULL, "name \"%s\" accepted",
                      bad[i] ? bad[i] : "(null)");
    const char *good[] = {"a", "_x", ":x", "a:b_c9", "ABC_total"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(chat_metrics_gauge(m, good[i], "h", NULL) != NULL, "name \"%s\" rejected",
                      good[i]);
    ck_assert_ptr_null(chat_metrics_counter(m, "nl_total", "h", "k=\"a\nb\""));
    ck_assert_ptr_null(chat_metrics_counter(NULL, "n_total", "h", NULL));
}
END_TEST

START_TEST(test_buckets_validated)
{
    static const double dup[] = {1, 1}, down[] = {2, 1}, nan_b[] = {NAN}, inf_b[] = {1, INFINITY};
    ck_assert_ptr_null(chat_metrics_histogram(m, "h1", "h", NULL, dup, 2));
    ck_assert_ptr_null(chat_metrics_histogram(m, "h2", "h", NULL, down, 2));
    ck_assert_ptr_null(chat_metrics_histogram(m, "h3", "h", NULL, nan_b, 1));
    ck_assert_ptr_null(chat_metrics_histogram(m, "h4", "h", NULL, inf_b, 2));
    ck_assert_ptr_null(chat_metrics_histogram(m, "h5", "h", NULL, NULL, 1));
    /* No bounds: only the +Inf bucket. */
    chat_histogram_t *h = chat_metrics_histogram(m, "h6", "h", NULL, NULL, 0);
    ck_assert_ptr_nonnull(h);
    chat_histogram_observe(h, 1e9);
    char *text = render();
    ck_assert_ptr_nonnull(strstr(text, "h6_bucket{le=\"+Inf\"} 1\nh6_sum 1000000000\n"));
    free(text);
}
END_TEST

START_TEST(test_latency_buckets)
{
    ck_assert_uint_eq(chat_metrics_latency_nbuckets, 14);
    ck_assert(chat_metrics_latency_buckets[0] == 0.0005);
    ck_assert(chat_metrics_latency_buckets[13] == 10);
    for (size_t i = 1; i < chat_metrics_latency_nbuckets; i++)
        ck_assert(chat_metrics_latency_buckets[i] > chat_metrics_latency_buckets[i - 1]);
    chat_histogram_t *h = chat_metrics_histogram(m, "lat", "h", NULL, chat_metrics_latency_buckets,
                                                 chat_metrics_latency_nbuckets);
    ck_assert_ptr_nonnull(h);
    char *text = render();
    ck_assert_ptr_nonnull(strstr(text, "lat_bucket{le=\"0.0005\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_bucket{le=\"0.0025\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "lat_bucket{le=\"10\"} 0\n"));
    free(text);
}
END_TEST

START_TEST(test_null_handles_ignored)
{
    chat_counter_inc(NULL);
    chat_gauge_add(NULL, 1);
    chat_histogram_observe(NULL, 1);
    ck_assert_uint_eq(chat_counter_value(NULL), 0);
    chat_metrics_destroy(NULL);
}
END_TEST

#define THREADS 4
#define PER_THREAD 50000

typedef struct worker_args {
    chat_counter_t *c;
    chat_gauge_t *g;
    chat_histogram_t *h;
} worker_args_t;

static void *worker(void *arg)
{
    worker_args_t *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        chat_counter_inc(w->c);
        chat_gauge_add(w->g, 1.0);
        chat_histogram_observe(w->h, (i % 2) ? 0.5 : 2.0);
    }
    return NULL;
}

START_TEST(test_concurrent_updates)
{
    static const double bounds[] = {1};
    worker_args_t w = {
        .c = chat_metrics_counter(m, "n_total", "N.", NULL),
        .g = chat_metrics_gauge(m, "g", "G.", NULL),
        .h = chat_metrics_histogram(m, "h", "H.", NULL, bounds, 1),
    };
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, worker, &w), 0);
    /* Rendering while writers run must be safe (ASan/TSan-clean) too. */
    free(render());
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    ck_assert_uint_eq(chat_counter_value(w.c), THREADS * PER_THREAD);
    ck_assert(chat_gauge_value(w.g) == (double)(THREADS * PER_THREAD));
    ck_assert_uint_eq(chat_histogram_count(w.h), THREADS * PER_THREAD);
    char *text = render();
    ck_assert_ptr_nonnull(strstr(text, "h_bucket{le=\"1\"} 100000\n"));
    ck_assert_ptr_nonnull(strstr(text, "h_sum 250000\n"));
    free(text);
}
END_TEST

START_TEST(test_float_counter)
{
    chat_float_counter_t *c = chat_metrics_float_counter(m, "cpu_seconds_total", "CPU.", NULL);
    ck_assert_ptr_nonnull(c);
    ck_assert(chat_float_counter_value(c) == 0.0);
    chat_float_counter_add(c, 0.25);
    chat_float_counter_add(c, -1); /* a counter never goes down */
    chat_float_counter_add(c, NAN);
    ck_assert(chat_float_counter_value(c) == 0.25);
    chat_float_counter_set(c, 1.5);
    ck_assert(chat_float_counter_value(c) == 1.5);
    chat_float_counter_set(c, 1.0); /* an older reading is ignored */
    chat_float_counter_set(c, NAN);
    ck_assert(chat_float_counter_value(c) == 1.5);
    /* The same name as a gauge or an integer counter is another type: refused. */
    ck_assert_ptr_null(chat_metrics_gauge(m, "cpu_seconds_total", "CPU.", NULL));
    ck_assert_ptr_null(chat_metrics_counter(m, "cpu_seconds_total", "CPU.", NULL));
    ck_assert_ptr_eq(chat_metrics_float_counter(m, "cpu_seconds_total", "CPU.", NULL), c);
    char *text = render();
    ck_assert_str_eq(text, "# HELP cpu_seconds_total CPU.\n"
                           "# TYPE cpu_seconds_total counter\n"
                           "cpu_seconds_total 1.5\n");
    free(text);
}
END_TEST

typedef struct collect_state {
    int calls;
    chat_gauge_t *g;
    char *order;
} collect_state_t;

/* Sets its gauge to the number of calls, registers a series of its own on the first call, and
 * notes that it ran in order. */
static void collect_first(void *ud)
{
    collect_state_t *st = ud;
    st->calls++;
    chat_gauge_set(st->g, st->calls);
    chat_gauge_set(chat_metrics_gauge(m, "late", "Registered by a collector.", NULL), 7);
    strcat(st->order, "1");
}

static void collect_second(void *ud)
{
    strcat(ud, "2");
}

START_TEST(test_collectors_run_before_render)
{
    char order[16] = "";
    collect_state_t st = {.g = chat_metrics_gauge(m, "reads", "Reads.", NULL), .order = order};
    ck_assert_int_eq(chat_metrics_add_collector(m, collect_first, &st), CHAT_OK);
    ck_assert_int_eq(chat_metrics_add_collector(m, collect_second, order), CHAT_OK);
    ck_assert_int_eq(chat_metrics_add_collector(NULL, collect_second, order), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_metrics_add_collector(m, NULL, order), CHAT_ERR_INVALID);
    ck_assert_int_eq(st.calls, 0);
    char *text = render();
    ck_assert_int_eq(st.calls, 1);
    ck_assert_str_eq(order, "12");
    ck_assert_ptr_nonnull(strstr(text, "reads 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "late 7\n"));
    free(text);
    text = render();
    ck_assert_int_eq(st.calls, 2);
    ck_assert_str_eq(order, "1212");
    ck_assert_ptr_nonnull(strstr(text, "reads 2\n"));
    free(text);
}
END_TEST

/* More collectors than the render's stack copy holds: every one still runs. */
static void collect_count(void *ud)
{
    (*(int *)ud)++;
}

START_TEST(test_many_collectors)
{
    int calls = 0;
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(chat_metrics_add_collector(m, collect_count, &calls), CHAT_OK);
    free(render());
    ck_assert_int_eq(calls, 20);
}
END_TEST

/* The SLO buckets register (strictly increasing) and hold a bound at each objective. */
START_TEST(test_slo_buckets)
{
    ck_assert_ptr_nonnull(chat_metrics_histogram(
        m, "slo_seconds", "h", NULL, chat_metrics_slo_buckets, chat_metrics_slo_nbuckets));
    const double objectives[] = {0.1, 0.2, 0.5};
    for (size_t i = 0; i < 3; i++) {
        bool found = false;
        for (size_t b = 0; b < chat_metrics_slo_nbuckets; b++)
            found = found || chat_metrics_slo_buckets[b] == objectives[i];
        ck_assert_msg(found, "no bound at %g", objectives[i]);
    }
}
END_TEST

/* n observations at once count as n of the same value. */
START_TEST(test_histogram_observe_n)
{
    const double b[] = {0.1, 1};
    chat_histogram_t *h = chat_metrics_histogram(m, "n_seconds", "h", NULL, b, 2);
    chat_histogram_observe_n(h, 0.5, 1000);
    chat_histogram_observe_n(h, 0.05, 0);
    chat_histogram_observe_n(NULL, 0.05, 3);
    ck_assert_uint_eq(chat_histogram_count(h), 1000);
    char *text = render();
    ck_assert_ptr_nonnull(strstr(text, "n_seconds_bucket{le=\"0.1\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(text, "n_seconds_bucket{le=\"1\"} 1000\n"));
    ck_assert_ptr_nonnull(strstr(text, "n_seconds_sum 500\n"));
    free(text);
}
END_TEST

START_TEST(test_label_escape)
{
    char out[16];
    chat_metrics_label_escape("a\\b\"c\nd", out, sizeof out);
    ck_assert_str_eq(out, "a\\\\b\\\"c\\nd");
    chat_metrics_label_escape("0123456789abcdefghij", out, sizeof out); /* cut, terminated */
    ck_assert_uint_lt(strlen(out), sizeof out);
    ck_assert(strncmp(out, "0123456789", 10) == 0);
    chat_metrics_label_escape("\"\"\"\"\"\"\"\"", out, 6); /* never half an escape */
    ck_assert_str_eq(out, "\\\"\\\"");
}
END_TEST

int main(void)
{
    /* Rejected registrations log warnings; the tests check the return values instead. */
    chat_log_set_level(CHAT_LOG_ERROR);
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_counter);
    tcase_add_test(tc, test_gauge);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_render_exact);
    tcase_add_test(tc, test_render_empty_and_special_values);
    tcase_add_test(tc, test_same_series_same_metric);
    tcase_add_test(tc, test_conflicts);
    tcase_add_test(tc, test_names_and_labels_validated);
    tcase_add_test(tc, test_buckets_validated);
    tcase_add_test(tc, test_latency_buckets);
    tcase_add_test(tc, test_null_handles_ignored);
    tcase_add_test(tc, test_concurrent_updates);
    tcase_add_test(tc, test_label_escape);
    tcase_add_test(tc, test_slo_buckets);
    tcase_add_test(tc, test_histogram_observe_n);
    tcase_add_test(tc, test_float_counter);
    tcase_add_test(tc, test_collectors_run_before_render);
    tcase_add_test(tc, test_many_collectors);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
