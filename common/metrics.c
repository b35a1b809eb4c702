/* Prometheus registry: families (name, help, type) in registration order, each with its
 * series (one per label set). Updates are lock-free C11 atomics; doubles (gauges, histogram
 * sums) are stored as their bit pattern in a uint64 and updated with a CAS loop, so no
 * metric has a mutex. The registry mutex guards only the lists (registration, render). */
#include "common/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/log.h"

typedef enum metric_kind {
    KIND_COUNTER,
    KIND_GAUGE,
    KIND_HISTOGRAM,
    KIND_FLOAT_COUNTER,
} metric_kind_t;

/* The TYPE line's word of each kind: a float counter is a counter to Prometheus. */
static const char *const kind_names[] = {"counter", "gauge", "histogram", "counter"};

/* First member of every metric, so a series_t * is also a chat_counter_t * etc. */
typedef struct series {
    struct series *next;
    char *labels; /* "" for none */
} series_t;

struct chat_counter {
    series_t base;
    _Atomic uint64_t value;
};

struct chat_gauge {
    series_t base;
    _Atomic uint64_t bits; /* the double's bit pattern */
};

struct chat_float_counter {
    series_t base;
    _Atomic uint64_t bits; /* the double's bit pattern */
};

/* Buckets hold per-bucket (not cumulative) counts: an observation touches one bucket, and
 * rendering accumulates them. buckets has nbounds + 1 entries, the last one is +Inf. */
struct chat_histogram {
    series_t base;
    double *bounds;
    size_t nbounds;
    _Atomic uint64_t *buckets;
    _Atomic uint64_t sum_bits;
};

typedef struct family {
    struct family *next;
    char *name;
    char *help;
    metric_kind_t kind;
    series_t *first, *last;
} family_t;

typedef struct collector {
    chat_metrics_collect_fn fn;
    void *ud;
} collector_t;

struct chat_metrics {
    pthread_mutex_t lock;
    family_t *first, *last;
    collector_t *collectors; /* under lock; called without it */
    size_t ncollectors, collectors_cap;
};

const double chat_metrics_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const size_t chat_metrics_latency_nbuckets =
    sizeof chat_metrics_latency_buckets / sizeof chat_metrics_latency_buckets[0];

void chat_metrics_label_escape(const char *in, char *out, size_t cap)
{
    size_t w = 0;
    if (cap == 0)
        return;
    for (const char *p = in; *p != '\0' && w + 3 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[w++] = '\\';
            out[w++] = *p;
        } else if (*p == '\n') {
            out[w++] = '\\';
            out[w++] = 'n';
        } else {
            out[w++] = *p;
        }
    }
    out[w] = '\0';
}

const double chat_metrics_slo_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05,
                                           0.075, 0.1,    0.15,  0.2,  0.25, 0.3,  0.4,
                                           0.5,   0.75,   1,     2,    5,    10};
const size_t chat_metrics_slo_nbuckets =
    sizeof chat_metrics_slo_buckets / sizeof chat_metrics_slo_buckets[0];

/* ---- atomic doubles ---- */

static uint64_t double_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

static double bits_double(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void atomic_double_add(_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, double_bits(bits_double(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* ---- registry ---- */

chat_metrics_t *chat_metrics_new(void)
{
    chat_metrics_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void series_free(series_t *s, metric_kind_t kind)
{
    if (kind == KIND_HISTOGRAM) {
        chat_histogram_t *h = (chat_histogram_t *)s;
        free(h->bounds);
        free((void *)h->buckets);
    }
    free(s->labels);
    free(s);
}

static void family_free(family_t *f)
{
    series_t *s = f->first;
    while (s != NULL) {
        series_t *next = s->next;
        series_free(s, f->kind);
        s = next;
    }
    free(f->name);
    free(f->help);
    free(f);
}

void chat_metrics_destroy(chat_metrics_t *m)
{
    if (m == NULL)
        return;
    family_t *f = m->first;
    while (f != NULL) {
        family_t *next = f->next;
        family_free(f);
        f = next;
    }
    free(m->collectors);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool metric_name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p != name && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* Bounds must be finite and strictly increasing: +Inf is always the implicit last bucket. */
static bool bounds_valid(const double *bounds, size_t nbounds)
{
    if (nbounds > 0 && bounds == NULL)
        return false;
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return false;
    }
    return true;
}

typedef struct bucket_spec {
    const double *bounds;
    size_t nbounds;
} bucket_spec_t;

static series_t *histogram_new(const bucket_spec_t *spec)
{
    chat_histogram_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->nbounds = spec->nbounds;
    h->bounds = malloc((spec->nbounds ? spec->nbounds : 1) * sizeof *h->bounds);
    h->buckets = malloc((spec->nbounds + 1) * sizeof *h->buckets);
    if (h->bounds == NULL || h->buckets == NULL) {
        free(h->bounds);
        free((void *)h->buckets);
        free(h);
        return NULL;
    }
    if (spec->nbounds > 0)
        memcpy(h->bounds, spec->bounds, spec->nbounds * sizeof *h->bounds);
    for (size_t i = 0; i <= spec->nbounds; i++)
        atomic_init(&h->buckets[i], 0);
    atomic_init(&h->sum_bits, double_bits(0.0));
    return &h->base;
}

/* Allocates an empty series of kind with a copy of labels. NULL if out of memory. */
static series_t *series_new(metric_kind_t kind, const char *labels, const bucket_spec_t *spec)
{
    series_t *s = NULL;
    if (kind == KIND_COUNTER) {
        chat_counter_t *c = calloc(1, sizeof *c);
        if (c != NULL) {
            atomic_init(&c->value, 0);
            s = &c->base;
        }
    } else if (kind == KIND_GAUGE) {
        chat_gauge_t *g = calloc(1, sizeof *g);
        if (g != NULL) {
            atomic_init(&g->bits, double_bits(0.0));
            s = &g->base;
        }
    } else if (kind == KIND_FLOAT_COUNTER) {
        chat_float_counter_t *fc = calloc(1, sizeof *fc);
        if (fc != NULL) {
            atomic_init(&fc->bits, double_bits(0.0));
            s = &fc->base;
        }
    } else {
        s = histogram_new(spec);
    }
    if (s == NULL)
        return NULL;
    s->labels = strdup(labels);
    if (s->labels == NULL) {
        series_free(s, kind);
        return NULL;
    }
    return s;
}

static family_t *family_find(const chat_metrics_t *m, const char *name)
{
    for (family_t *f = m->first; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}

static series_t *series_find(const family_t *f, const char *labels)
{
    for (series_t *s = f->first; s != NULL; s = s->next) {
        if (strcmp(s->labels, labels) == 0)
            return s;
    }
    return NULL;
}

static family_t *family_new(const char *name, const char *help, metric_kind_t kind)
{
    family_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->name = strdup(name);
    f->help = strdup(help);
    f->kind = kind;
    if (f->name == NULL || f->help == NULL) {
        family_free(f);
        return NULL;
    }
    return f;
}

static bool same_buckets(const series_t *s, const bucket_spec_t *spec)
{
    const chat_histogram_t *h = (const chat_histogram_t *)s;
    return h->nbounds == spec->nbounds &&
           (spec->nbounds == 0 ||
            memcmp(h->bounds, spec->bounds, spec->nbounds * sizeof *spec->bounds) == 0);
}

/* Finds or adds name{labels} under the registry lock. Returns NULL and sets *why on a
 * conflict with the existing family or series, or when out of memory. */
static series_t *series_get_locked(chat_metrics_t *m, const char *name, const char *help,
                                   const char *labels, metric_kind_t kind,
                                   const bucket_spec_t *spec, const char **why)
{
    family_t *f = family_find(m, name);
    if (f != NULL && (f->kind != kind || strcmp(f->help, help) != 0)) {
        *why = "registered before with another type or help";
        return NULL;
    }
    series_t *s = f != NULL ? series_find(f, labels) : NULL;
    if (s != NULL) {
        if (kind == KIND_HISTOGRAM && !same_buckets(s, spec)) {
            *why = "registered before with other buckets";
            return NULL;
        }
        return s;
    }
    *why = "out of memory";
    family_t *created = NULL;
    if (f == NULL && (f = created = family_new(name, help, kind)) == NULL)
        return NULL;
    if ((s = series_new(kind, labels, spec)) == NULL) {
        if (created != NULL)
            family_free(created);
        return NULL;
    }
    if (created != NULL) {
        if (m->last != NULL)
            m->last->next = created;
        else
            m->first = created;
        m->last = created;
    }
    if (f->last != NULL)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    return s;
}

/* Validates the request, then finds or adds the series. NULL (logged) on bad input,
 * conflict or no memory. */
static series_t *metrics_register(chat_metrics_t *m, const char *name, const char *help,
                                  const char *labels, metric_kind_t kind, const bucket_spec_t *spec)
{
    const char *why = NULL;
    series_t *s = NULL;
    if (labels == NULL)
        labels = "";
    if (help == NULL)
        help = "";
    if (m == NULL || !metric_name_valid(name))
        why = "bad metric name";
    else if (strchr(labels, '\n') != NULL)
        why = "labels contain a newline";
    else if (kind == KIND_HISTOGRAM && !bounds_valid(spec->bounds, spec->nbounds))
        why = "bucket bounds are not finite and strictly increasing";
    if (why == NULL) {
        pthread_mutex_lock(&m->lock);
        s = series_get_locked(m, name, help, labels, kind, spec, &why);
        pthread_mutex_unlock(&m->lock);
    }
    if (s == NULL)
        chat_log_warn("metric not registered", CHAT_F_STR("name", name),
                      CHAT_F_STR("labels", labels), CHAT_F_STR("type", kind_names[kind]),
                      CHAT_F_STR("reason", why));
    return s;
}

chat_counter_t *chat_metrics_counter(chat_metrics_t *m, const char *name, const char *help,
                                     const char *labels)
{
    return (chat_counter_t *)metrics_register(m, name, help, labels, KIND_COUNTER, NULL);
}

chat_gauge_t *chat_metrics_gauge(chat_metrics_t *m, const char *name, const char *help,
                                 const char *labels)
{
    return (chat_gauge_t *)metrics_register(m, name, help, labels, KIND_GAUGE, NULL);
}

chat_float_counter_t *chat_metrics_float_counter(chat_metrics_t *m, const char *name,
                                                 const char *help, const char *labels)
{
    return (chat_float_counter_t *)metrics_register(m, name, help, labels, KIND_FLOAT_COUNTER,
                                                    NULL);
}

chat_histogram_t *chat_metrics_histogram(chat_metrics_t *m, const char *name, const char *help,
                                         const char *labels, const double *bounds, size_t nbounds)
{
    bucket_spec_t spec = {.bounds = bounds, .nbounds = nbounds};
    return (chat_histogram_t *)metrics_register(m, name, help, labels, KIND_HISTOGRAM, &spec);
}

/* ---- updates: NULL handles (a failed registration) are ignored ---- */

void chat_counter_inc(chat_counter_t *c)
{
    chat_counter_add(c, 1);
}

void chat_counter_add(chat_counter_t *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t chat_counter_value(const chat_counter_t *c)
{
    return c != NULL ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

void chat_gauge_set(chat_gauge_t *g, double v)
{
    if (g != NULL)
        atomic_store_explicit(&g->bits, double_bits(v), memory_order_relaxed);
}

void chat_gauge_add(chat_gauge_t *g, double delta)
{
    if (g != NULL)
        atomic_double_add(&g->bits, delta);
}

double chat_gauge_value(const chat_gauge_t *g)
{
    return g != NULL ? bits_double(atomic_load_explicit(&g->bits, memory_order_relaxed)) : 0.0;
}

/* A negative or NaN delta is dropped: a counter only goes up. */
void chat_float_counter_add(chat_float_counter_t *c, double delta)
{
    if (c != NULL && delta > 0)
        atomic_double_add(&c->bits, delta);
}

/* Raises the value to total with a CAS loop, so that two renders setting it concurrently
 * never move it back. */
void chat_float_counter_set(chat_float_counter_t *c, double total)
{
    if (c == NULL || isnan(total))
        return;
    uint64_t old = atomic_load_explicit(&c->bits, memory_order_relaxed);
    while (bits_double(old) < total &&
           !atomic_compare_exchange_weak_explicit(&c->bits, &old, double_bits(total),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

double chat_float_counter_value(const chat_float_counter_t *c)
{
    return c != NULL ? bits_double(atomic_load_explicit(&c->bits, memory_order_relaxed)) : 0.0;
}

/* NaN is dropped: it would turn the sum into NaN for the life of the process. */
void chat_histogram_observe(chat_histogram_t *h, double v)
{
    chat_histogram_observe_n(h, v, 1);
}

void chat_histogram_observe_n(chat_histogram_t *h, double v, uint64_t n)
{
    if (h == NULL || isnan(v) || n == 0)
        return;
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], n, memory_order_relaxed);
    atomic_double_add(&h->sum_bits, v * (double)n);
}

uint64_t chat_histogram_count(const chat_histogram_t *h)
{
    uint64_t total = 0;
    for (size_t i = 0; h != NULL && i <= h->nbounds; i++)
        total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
    return total;
}

/* ---- rendering ---- */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text_t;

static bool text_reserve(text_t *t, size_t extra)
{
    if (t->failed)
        return false;
    if (t->len + extra + 1 <= t->cap)
        return true;
    char *grown = chat_array_grow(t->buf, &t->cap, t->len + extra + 1, 1);
    if (grown == NULL) {
        t->failed = true;
        return false;
    }
    t->buf = grown;
    return true;
}

static void text_put(text_t *t, const char *s, size_t n)
{
    if (!text_reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void text_puts(text_t *t, const char *s)
{
    text_put(t, s, strlen(s));
}

/* Shortest of %.15g / %.17g that reads back as v; Prometheus spellings of the
 * non-finite values. */
static void format_double(char *out, size_t len, double v)
{
    if (isnan(v) || isinf(v)) {
        snprintf(out, len, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(out, len, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, len, "%.17g", v);
}

/* HELP text escapes backslash and newline (text format 0.0.4). */
static void put_help(text_t *t, const family_t *f)
{
    text_puts(t, "# HELP ");
    text_puts(t, f->name);
    if (f->help[0] != '\0')
        text_puts(t, " ");
    for (const char *p = f->help; *p; p++) {
        if (*p == '\\')
            text_puts(t, "\\\\");
        else if (*p == '\n')
            text_puts(t, "\\n");
        else
            text_put(t, p, 1);
    }
    text_puts(t, "\n# TYPE ");
    text_puts(t, f->name);
    text_puts(t, " ");
    text_puts(t, kind_names[f->kind]);
    text_puts(t, "\n");
}

/* name<suffix>{labels,extra} value */
static void put_sample(text_t *t, const family_t *f, const char *suffix, const series_t *s,
                       const char *extra, const char *value)
{
    text_puts(t, f->name);
    text_puts(t, suffix);
    bool has_labels = s->labels[0] != '\0';
    if (has_labels || extra != NULL) {
        text_puts(t, "{");
        text_puts(t, s->labels);
        if (has_labels && extra != NULL)
            text_puts(t, ",");
        if (extra != NULL)
            text_puts(t, extra);
        text_puts(t, "}");
    }
    text_puts(t, " ");
    text_puts(t, value);
    text_puts(t, "\n");
}

/* _count and the +Inf bucket come from the same snapshot of the buckets, so they always
 * agree; _sum is read separately and may lag or lead by an observation in flight. */
static void put_histogram(text_t *t, const family_t *f, const chat_histogram_t *h)
{
    char value[32], bound[32], le[48];
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        format_double(bound, sizeof bound, i < h->nbounds ? h->bounds[i] : INFINITY);
        snprintf(le, sizeof le, "le=\"%s\"", bound);
        snprintf(value, sizeof value, "%" PRIu64, cumulative);
        put_sample(t, f, "_bucket", &h->base, le, value);
    }
    format_double(value, sizeof value,
                  bits_double(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    put_sample(t, f, "_sum", &h->base, NULL, value);
    snprintf(value, sizeof value, "%" PRIu64, cumulative);
    put_sample(t, f, "_count", &h->base, NULL, value);
}

static void put_series(text_t *t, const family_t *f, const series_t *s)
{
    char value[32];
    switch (f->kind) {
    case KIND_COUNTER:
        snprintf(value, sizeof value, "%" PRIu64, chat_counter_value((const chat_counter_t *)s));
        put_sample(t, f, "", s, NULL, value);
        break;
    case KIND_GAUGE:
        format_double(value, sizeof value, chat_gauge_value((const chat_gauge_t *)s));
        put_sample(t, f, "", s, NULL, value);
        break;
    case KIND_HISTOGRAM:
        put_histogram(t, f, (const chat_histogram_t *)s);
        break;
    case KIND_FLOAT_COUNTER:
        format_double(value, sizeof value,
                      chat_float_counter_value((const chat_float_counter_t *)s));
        put_sample(t, f, "", s, NULL, value);
        break;
    }
}

chat_err_t chat_metrics_add_collector(chat_metrics_t *m, chat_metrics_collect_fn fn, void *ud)
{
    if (m == NULL || fn == NULL)
        return CHAT_ERR_INVALID;
    pthread_mutex_lock(&m->lock);
    collector_t *grown = chat_array_grow(m->collectors, &m->collectors_cap, m->ncollectors + 1,
                                         sizeof *m->collectors);
    if (grown != NULL) {
        m->collectors = grown;
        m->collectors[m->ncollectors++] = (collector_t){.fn = fn, .ud = ud};
    }
    pthread_mutex_unlock(&m->lock);
    return grown != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

/* Calls the collectors without holding the lock (they may register series); the list is
 * copied first, so a collector added meanwhile waits for the next render. */
static void run_collectors(chat_metrics_t *m)
{
    collector_t local[8];
    pthread_mutex_lock(&m->lock);
    size_t n = m->ncollectors;
    collector_t *list = n <= sizeof local / sizeof local[0] ? local : malloc(n * sizeof *list);
    if (list != NULL && n > 0)
        memcpy(list, m->collectors, n * sizeof *list);
    pthread_mutex_unlock(&m->lock);
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        list[i].fn(list[i].ud);
    if (list != local)
        free(list);
}

char *chat_metrics_render(chat_metrics_t *m, size_t *len)
{
    text_t t = {0};
    text_reserve(&t, 0);
    if (m != NULL) {
        run_collectors(m);
        pthread_mutex_lock(&m->lock);
        for (const family_t *f = m->first; f != NULL; f = f->next) {
            put_help(&t, f);
            for (const series_t *s = f->first; s != NULL; s = s->next)
                put_series(&t, f, s);
        }
        pthread_mutex_unlock(&m->lock);
    }
    if (t.failed) {
        free(t.buf);
        return NULL;
    }
    t.buf[t.len] = '\0';
    if (len != NULL)
        *len = t.len;
    return t.buf;
}
