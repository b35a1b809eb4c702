/* A small Prometheus metrics registry: counters, gauges and histograms, each a series of a
 * family (name, help, type) with a fixed label set chosen at registration. Updates are
 * lock-free atomics, safe from any thread; rendering takes the registry lock only to walk
 * the list. Metrics live as long as the registry; callers never free them. */
#ifndef CHAT_COMMON_METRICS_H
#define CHAT_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct chat_metrics chat_metrics_t;
typedef struct chat_counter chat_counter_t;
typedef struct chat_gauge chat_gauge_t;
typedef struct chat_histogram chat_histogram_t;
typedef struct chat_float_counter chat_float_counter_t;

/* Returns a new empty registry or NULL on allocation failure. Free with chat_metrics_destroy. */
chat_metrics_t *chat_metrics_new(void);

/* Frees the registry and every metric in it. Accepts NULL. */
void chat_metrics_destroy(chat_metrics_t *m);

/* Registers (or returns the existing) series name{labels}. labels is Prometheus label text
 * without braces, e.g. "topic=\"chat.inbound\",result=\"ok\"", or NULL for none; it is
 * copied. Registering the same name with another type or help returns NULL.
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*. Returns NULL on bad input or no memory. */
chat_counter_t *chat_metrics_counter(chat_metrics_t *m, const char *name, const char *help,
                                     const char *labels);
chat_gauge_t *chat_metrics_gauge(chat_metrics_t *m, const char *name, const char *help,
                                 const char *labels);
/* A counter whose value is a double (TYPE counter), for totals that are not whole numbers,
 * e.g. CPU seconds read from the kernel. */
chat_float_counter_t *chat_metrics_float_counter(chat_metrics_t *m, const char *name,
                                                 const char *help, const char *labels);
/* bounds: strictly increasing upper bounds (the +Inf bucket is implicit); copied. */
chat_histogram_t *chat_metrics_histogram(chat_metrics_t *m, const char *name, const char *help,
                                         const char *labels, const double *bounds, size_t nbounds);

/* Default latency buckets in seconds: 0.0005 .. 10. */
extern const double chat_metrics_latency_buckets[];
extern const size_t chat_metrics_latency_nbuckets;
/* Finer buckets for the latencies with an SLO (send -> ack, send -> deliver, moderation
 * verdicts): bounds at 50, 75, 100, 150, 200, 250, 300, 400, 500 ms, so that a p99 near a
 * 100, 200 or 500 ms objective is read from neighbouring bounds, not interpolated across a
 * bucket 150 ms wide. 0.001 .. 10 s. */
extern const double chat_metrics_slo_buckets[];
extern const size_t chat_metrics_slo_nbuckets;

/* Writes in as a label value of the text format into out (cap bytes, always terminated):
 * backslash, double quote and newline escaped; a value too long is cut. */
void chat_metrics_label_escape(const char *in, char *out, size_t cap);

/* Updates accept NULL (a series the registry refused) and then do nothing. */
void chat_counter_inc(chat_counter_t *c);
void chat_counter_add(chat_counter_t *c, uint64_t n);
uint64_t chat_counter_value(const chat_counter_t *c);

void chat_gauge_set(chat_gauge_t *g, double v);
void chat_gauge_add(chat_gauge_t *g, double delta);
double chat_gauge_value(const chat_gauge_t *g);

void chat_float_counter_add(chat_float_counter_t *c, double delta);
/* Sets the total read from a cumulative source (the kernel's CPU time); a smaller value than
 * the current one is ignored, so the counter never goes back. */
void chat_float_counter_set(chat_float_counter_t *c, double total);
double chat_float_counter_value(const chat_float_counter_t *c);

void chat_histogram_observe(chat_histogram_t *h, double v);
/* n observations of the same value v at once (a message delivered to n sockets). */
void chat_histogram_observe_n(chat_histogram_t *h, double v, uint64_t n);
uint64_t chat_histogram_count(const chat_histogram_t *h);

/* A collector refreshes metrics whose values are read, not counted (process memory, open
 * files): chat_metrics_render calls every collector, in the order added, before it renders,
 * outside the registry lock (a collector may register series). ud is borrowed and must
 * outlive the registry. Returns CHAT_ERR_NOMEM or CHAT_ERR_INVALID (m or fn NULL). */
typedef void (*chat_metrics_collect_fn)(void *ud);
chat_err_t chat_metrics_add_collector(chat_metrics_t *m, chat_metrics_collect_fn fn, void *ud);

/* Renders all series in the Prometheus text exposition format (version 0.0.4), families
 * in registration order, one HELP and TYPE line per family. Returns a malloc'd string the
 * caller frees, and its length in *len (if len is not NULL); NULL if out of memory. */
char *chat_metrics_render(chat_metrics_t *m, size_t *len);

#endif
