/* Latency histograms of the bench: log-linear buckets (HDR style) over microseconds, exact
 * below 256 µs and within 0.4 % (half a bucket) up to 2^27 µs (134 s), so that percentiles of
 * the whole run are exact to that precision however many processes recorded them: histograms
 * merge by adding their buckets. Fixed size, no allocation: a worker records every delivery. */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 8
#define BENCH_HIST_SUB (1 << BENCH_HIST_SUB_BITS) /* values below this are their own bucket */
#define BENCH_HIST_OCTAVES 19                     /* 2^8 .. 2^27 µs, half-SUB buckets each */
#define BENCH_HIST_BUCKETS (BENCH_HIST_SUB + BENCH_HIST_OCTAVES * (BENCH_HIST_SUB / 2))
#define BENCH_HIST_MAX_US ((INT64_C(1) << 27) - 1) /* larger values count as this */

typedef struct bench_hist {
    uint64_t count;
    int64_t max_us; /* exact, not bucketed */
    double sum_us;  /* for the mean */
    uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist_t;

/* Records one value in microseconds (negative counts as 0, above the range as the top). */
void bench_hist_record(bench_hist_t *h, int64_t us);

/* Adds the counts of from into into. */
void bench_hist_merge(bench_hist_t *into, const bench_hist_t *from);

/* The value at quantile q (0..1) in microseconds: the middle of the bucket holding the
 * ceil(q * count)-th value, at most max_us; q >= 1 gives max_us exactly. 0 when empty. */
int64_t bench_hist_quantile(const bench_hist_t *h, double q);

/* Mean in microseconds; 0 when empty. */
double bench_hist_mean(const bench_hist_t *h);

#endif
