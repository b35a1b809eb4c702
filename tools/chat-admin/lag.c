/* chat-admin lag serve (see lag.h). Every --interval seconds it reads the brokers and sets
 * gauges in a metrics registry that the ops HTTP server (common/ops_http.c) renders on each
 * scrape, so a scrape never waits for Kafka and many scrapers cost the brokers nothing more:
 *   chat_kafka_group_lag{group,topic}      sum over the topic's partitions of
 *                                          high watermark - committed offset; a partition the
 *                                          group never committed counts from its low watermark
 *   chat_kafka_group_lag_max{group,topic}  the worst partition
 *   chat_kafka_topic_high_watermark{topic}  every platform topic (records ever written,
 *                                          so rate() is its write rate, e.g. of the DLQ)
 *   chat_kafka_lag_scrape_errors_total     collections with a failed request
 *   chat_kafka_lag_scrape_seconds          how long the last collection took
 * The registry cannot delete a series: a group, or a topic of a group, that is no longer
 * there (deleted, or its offsets expired) is set to 0 and stays at 0 until the process
 * restarts. Values of a group whose offsets could not be read keep their last value. */
#include "tools/chat-admin/lag.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/kafka_stats.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/ops_http.h"
#include "common/signals.h"

#define LAG_DEFAULT_PORT 9308
#define LAG_DEFAULT_INTERVAL_S 10
/* Short enough that a stop (SIGTERM) while Kafka is away is not held up for long. */
#define LAG_CONNECT_TIMEOUT_MS 5000
#define LAG_REQUEST_TIMEOUT_MS 10000
#define LAG_GROUP_PREFIX "chat-"
/* Groups of the bus's manual readers (common/bus.c): never joined, never committed. */
#define LAG_MANUAL_PREFIX "chat-manual-"
#define LAG_LABELS_LEN 640

/* One group/topic pair served, kept to zero it once it is gone. */
typedef struct lag_pair {
    struct lag_pair *next;
    char *group;
    char *topic;
    chat_gauge_t *sum;
    chat_gauge_t *max;
    bool seen; /* set in the current collection */
} lag_pair_t;

typedef struct lag_exporter {
    chat_bus_admin_t *admin;
    chat_metrics_t *metrics;
    const char *const *topics;
    size_t ntopics;
    char **groups; /* --groups, or NULL: every group named chat-* */
    size_t ngroups;
    lag_pair_t *pairs;
    chat_counter_t *errors;
    chat_gauge_t *seconds;
    atomic_bool ready; /* a collection succeeded */
} lag_exporter_t;

/* Splits "a,b,c" into malloc'd names (empty items skipped). */
static char **split_list(const char *s, size_t *n)
{
    size_t cap = 1;
    for (const char *p = s; *p != '\0'; p++)
        cap += *p == ',';
    char **out = calloc(cap, sizeof *out);
    *n = 0;
    if (out == NULL)
        return NULL;
    const char *p = s;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (len > 0 && (out[*n] = strndup(p, len)) != NULL)
            (*n)++;
        p += len;
        if (*p == ',')
            p++;
    }
    return out;
}

static lag_pair_t *pair_get(lag_exporter_t *x, const char *group, const char *topic)
{
    for (lag_pair_t *p = x->pairs; p != NULL; p = p->next)
        if (strcmp(p->group, group) == 0 && strcmp(p->topic, topic) == 0)
            return p;
    lag_pair_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    char g[256], t[256], labels[LAG_LABELS_LEN];
    chat_metrics_label_escape(group, g, sizeof g);
    chat_metrics_label_escape(topic, t, sizeof t);
    snprintf(labels, sizeof labels, "group=\"%s\",topic=\"%s\"", g, t);
    p->group = strdup(group);
    p->topic = strdup(topic);
    p->sum = chat_metrics_gauge(x->metrics, "chat_kafka_group_lag",
                                "Records the consumer group has not committed yet, summed over "
                                "the topic's partitions (high watermark - committed offset; a "
                                "partition without a commit counts from its low watermark).",
                                labels);
    p->max =
        chat_metrics_gauge(x->metrics, "chat_kafka_group_lag_max",
                           "The consumer group's lag on its worst partition of the topic.", labels);
    if (p->group == NULL || p->topic == NULL || p->sum == NULL || p->max == NULL) {
        free(p->group);
        free(p->topic);
        free(p);
        return NULL;
    }
    p->next = x->pairs;
    x->pairs = p;
    return p;
}

static void pairs_free(lag_exporter_t *x)
{
    lag_pair_t *p = x->pairs;
    while (p != NULL) {
        lag_pair_t *next = p->next;
        free(p->group);
        free(p->topic);
        free(p);
        p = next;
    }
}

/* Watermarks read in this collection, by topic (a group's topics repeat across groups). */
typedef struct wm_entry {
    char *topic;
    chat_err_t err;
    chat_bus_watermarks_t wm;
} wm_entry_t;

typedef struct wm_cache {
    wm_entry_t *e;
    size_t n, cap;
} wm_cache_t;

static const wm_entry_t *wm_get(lag_exporter_t *x, wm_cache_t *c, const char *topic)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].topic, topic) == 0)
            return &c->e[i];
    if (c->n == c->cap) {
        size_t cap = c->cap > 0 ? c->cap * 2 : 8;
        wm_entry_t *e = realloc(c->e, cap * sizeof *e);
        if (e == NULL)
            return NULL;
        c->e = e;
        c->cap = cap;
    }
    wm_entry_t *e = &c->e[c->n];
    *e = (wm_entry_t){.topic = strdup(topic)};
    if (e->topic == NULL)
        return NULL;
    e->err = chat_bus_topic_watermarks(x->admin, topic, LAG_REQUEST_TIMEOUT_MS, &e->wm);
    c->n++;
    return e;
}

static void wm_cache_free(wm_cache_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].topic);
        chat_bus_watermarks_free(&c->e[i].wm);
    }
    free(c->e);
}

/* Sets the gauges of one group from its committed offsets. Returns false if something
 * could not be read (the series concerned keep their last value). */
static bool collect_group(lag_exporter_t *x, wm_cache_t *wc, const char *group)
{
    chat_bus_offset_t *offs = NULL;
    size_t n = 0;
    chat_err_t err = chat_bus_group_offsets(x->admin, group, LAG_REQUEST_TIMEOUT_MS, &offs, &n);
    bool ok = err == CHAT_OK;
    if (err != CHAT_OK) {
        /* Not all read: series of the group that are not set below keep their values. */
        for (lag_pair_t *p = x->pairs; p != NULL; p = p->next)
            if (strcmp(p->group, group) == 0)
                p->seen = true;
        if (offs == NULL)
            return false;
    }
    for (size_t i = 0; i < n; i++) {
        const char *topic = offs[i].topic;
        bool done = false; /* topic handled at an earlier index */
        for (size_t j = 0; j < i && !done; j++)
            done = strcmp(offs[j].topic, topic) == 0;
        if (done)
            continue;
        lag_pair_t *pair = pair_get(x, group, topic);
        const wm_entry_t *w = wm_get(x, wc, topic);
        if (pair == NULL || w == NULL) {
            ok = false;
            continue;
        }
        pair->seen = true;
        if (w->err != CHAT_OK) {
            /* A deleted topic reads 0; a failed read keeps the last value. */
            if (w->err == CHAT_ERR_NOT_FOUND) {
                chat_gauge_set(pair->sum, 0);
                chat_gauge_set(pair->max, 0);
            } else {
                ok = false;
            }
            continue;
        }
        size_t np = (size_t)w->wm.partitions;
        int64_t *committed = malloc(np * sizeof *committed);
        if (committed == NULL) {
            ok = false;
            continue;
        }
        for (size_t p = 0; p < np; p++)
            committed[p] = -1;
        for (size_t j = i; j < n; j++)
            if (strcmp(offs[j].topic, topic) == 0 && offs[j].partition >= 0 &&
                (size_t)offs[j].partition < np)
                committed[offs[j].partition] = offs[j].offset;
        chat_kafka_topic_lag_t lag = chat_kafka_topic_lag(w->wm.low, w->wm.high, committed, np);
        free(committed);
        chat_gauge_set(pair->sum, (double)lag.sum);
        chat_gauge_set(pair->max, (double)lag.max);
    }
    chat_bus_offsets_free(offs, n);
    return ok;
}

/* The groups to report: --groups, or every chat-* group of the cluster. NULL on failure. */
static char **groups_now(lag_exporter_t *x, size_t *n, bool *complete)
{
    *complete = true;
    if (x->groups != NULL) {
        char **copy = calloc(x->ngroups > 0 ? x->ngroups : 1, sizeof *copy);
        for (size_t i = 0; copy != NULL && i < x->ngroups; i++)
            copy[i] = strdup(x->groups[i]);
        *n = x->ngroups;
        return copy;
    }
    char **all = NULL;
    size_t cnt = 0;
    chat_err_t err = chat_bus_groups_list(x->admin, LAG_REQUEST_TIMEOUT_MS, &all, &cnt);
    if (all == NULL)
        return NULL;
    *complete = err == CHAT_OK;
    size_t kept = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (strncmp(all[i], LAG_GROUP_PREFIX, strlen(LAG_GROUP_PREFIX)) == 0 &&
            strncmp(all[i], LAG_MANUAL_PREFIX, strlen(LAG_MANUAL_PREFIX)) != 0)
            all[kept++] = all[i];
        else
            free(all[i]);
    }
    *n = kept;
    return all;
}

/* One collection: groups, then the platform topics. Returns true if everything was read. */
static bool collect(lag_exporter_t *x)
{
    int64_t start = chat_clock_mono_ms();
    bool ok = true;
    for (lag_pair_t *p = x->pairs; p != NULL; p = p->next)
        p->seen = false;
    size_t ng = 0;
    bool complete = true;
    char **groups = groups_now(x, &ng, &complete);
    if (groups == NULL) {
        /* The brokers did not answer: keep the last values, and do not wait for every
         * topic's request to time out as well. */
        chat_counter_inc(x->errors);
        chat_gauge_set(x->seconds, (double)(chat_clock_mono_ms() - start) / 1000.0);
        return false;
    }
    wm_cache_t wc = {0};
    for (size_t i = 0; i < ng && !chat_signals_stop_requested(); i++)
        if (groups[i] != NULL && !collect_group(x, &wc, groups[i]))
            ok = false;
    ok = ok && complete;
    /* Gone since the last collection: 0. With an incomplete listing a group may be missing
     * without being gone, and keeps its values. */
    for (lag_pair_t *p = x->pairs; p != NULL; p = p->next) {
        if (!p->seen && complete) {
            chat_gauge_set(p->sum, 0);
            chat_gauge_set(p->max, 0);
        }
    }
    chat_bus_strings_free(groups, ng);
    for (size_t i = 0; i < x->ntopics && !chat_signals_stop_requested(); i++) {
        const wm_entry_t *w = wm_get(x, &wc, x->topics[i]);
        if (w == NULL || (w->err != CHAT_OK && w->err != CHAT_ERR_NOT_FOUND)) {
            ok = false;
            continue;
        }
        if (w->err == CHAT_ERR_NOT_FOUND)
            continue; /* not created (yet): no series rather than a false 0 */
        int64_t sum = 0;
        for (int p = 0; p < w->wm.partitions; p++)
            sum += w->wm.high[p] > 0 ? w->wm.high[p] : 0;
        char t[256], labels[LAG_LABELS_LEN];
        chat_metrics_label_escape(x->topics[i], t, sizeof t);
        snprintf(labels, sizeof labels, "topic=\"%s\"", t);
        chat_gauge_set(chat_metrics_gauge(x->metrics, "chat_kafka_topic_high_watermark",
                                          "Sum of the high watermarks of the topic's "
                                          "partitions: records ever written to it.",
                                          labels),
                       (double)sum);
    }
    wm_cache_free(&wc);
    if (!ok)
        chat_counter_inc(x->errors);
    else
        atomic_store(&x->ready, true);
    chat_gauge_set(x->seconds, (double)(chat_clock_mono_ms() - start) / 1000.0);
    return ok;
}

static bool lag_ready(void *ud, char *reason, size_t reason_len)
{
    lag_exporter_t *x = ud;
    if (atomic_load(&x->ready))
        return true;
    snprintf(reason, reason_len, "no complete collection from Kafka yet");
    return false;
}

static const char lag_usage[] =
    "usage: chat-admin lag serve [--port N] [--addr A] [--groups g1,g2] [--interval S]\n";

/* Whole number from min to max, or -1. */
static long parse_whole(const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    return v;
}

int chat_admin_lag_serve(const char *brokers, const char *const *topics, size_t ntopics, int argc,
                         char **argv)
{
    long port = LAG_DEFAULT_PORT, interval = LAG_DEFAULT_INTERVAL_S;
    const char *addr = "127.0.0.1", *groups = NULL;
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "chat-admin: %s needs a value\n%s", opt, lag_usage);
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(opt, "--port") == 0)
            port = parse_whole(val, 0, 65535);
        else if (strcmp(opt, "--addr") == 0)
            addr = val;
        else if (strcmp(opt, "--groups") == 0)
            groups = val;
        else if (strcmp(opt, "--interval") == 0)
            interval = parse_whole(val, 1, 3600);
        else {
            fprintf(stderr, "chat-admin: unknown option '%s'\n%s", opt, lag_usage);
            return 2;
        }
        if (port < 0 || interval < 0) {
            fprintf(stderr, "chat-admin: %s takes a whole number, not '%s'\n%s", opt, val,
                    lag_usage);
            return 2;
        }
    }

    chat_signals_install();
    lag_exporter_t x = {.topics = topics, .ntopics = ntopics};
    atomic_init(&x.ready, false);
    if (groups != NULL && (x.groups = split_list(groups, &x.ngroups)) == NULL) {
        fprintf(stderr, "chat-admin: out of memory\n");
        return 1;
    }
    x.metrics = chat_metrics_new();
    if (x.metrics == NULL) {
        chat_bus_strings_free(x.groups, x.ngroups);
        return 1;
    }
    x.errors = chat_metrics_counter(x.metrics, "chat_kafka_lag_scrape_errors_total",
                                    "Collections in which a Kafka request failed (their "
                                    "series keep their last values).",
                                    NULL);
    x.seconds = chat_metrics_gauge(x.metrics, "chat_kafka_lag_scrape_seconds",
                                   "How long the last collection from Kafka took.", NULL);
    int rc = 1;
    chat_ops_t *ops = NULL;
    chat_err_t err = chat_ops_start(addr, (int)port, x.metrics, lag_ready, &x, &ops);
    if (err != CHAT_OK) {
        chat_log_error("lag exporter not started", CHAT_F_STR("addr", addr),
                       CHAT_F_INT("port", port), CHAT_F_ERR(err));
        goto out;
    }
    chat_log_info("lag exporter serving", CHAT_F_STR("addr", addr),
                  CHAT_F_INT("port", chat_ops_port(ops)), CHAT_F_INT("interval_s", interval),
                  CHAT_F_STR("groups", groups != NULL ? groups : LAG_GROUP_PREFIX "*"),
                  CHAT_F_STR("brokers", brokers));
    /* Kafka may come up after the exporter: retry the client until a stop. */
    while ((err = chat_bus_admin_new(brokers, LAG_CONNECT_TIMEOUT_MS, &x.admin)) != CHAT_OK) {
        chat_counter_inc(x.errors);
        if (err == CHAT_ERR_CONFIG || chat_signals_wait_stop(interval * 1000))
            goto out;
    }
    bool was_ok = true;
    while (!chat_signals_stop_requested()) {
        bool ok = collect(&x);
        if (ok && !was_ok)
            chat_log_info("lag collection recovered", CHAT_F_STR("brokers", brokers));
        else if (!ok && was_ok)
            chat_log_warn("lag collection failed (see above; retried every interval)",
                          CHAT_F_STR("brokers", brokers));
        was_ok = ok;
        if (chat_signals_wait_stop(interval * 1000))
            break;
    }
    chat_log_info("lag exporter stopped");
    rc = 0;
out:
    chat_ops_stop(ops);
    chat_bus_admin_destroy(x.admin);
    pairs_free(&x);
    chat_metrics_destroy(x.metrics);
    chat_bus_strings_free(x.groups, x.ngroups);
    return rc;
}
