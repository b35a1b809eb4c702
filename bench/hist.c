/* Log-linear histogram: bucket i < SUB holds the value i; above, octave [2^k, 2^(k+1)) is cut
 * into SUB/2 buckets of width 2^(k-SUB_BITS+1). */
#include "bench/hist.h"

#include <math.h>

static int bucket_of(int64_t v)
{
    if (v < BENCH_HIST_SUB)
        return (int)v;
    int msb = 63 - __builtin_clzll((unsigned long long)v);
    int shift = msb - (BENCH_HIST_SUB_BITS - 1);
    return BENCH_HIST_SUB + (msb - BENCH_HIST_SUB_BITS) * (BENCH_HIST_SUB / 2) +
           (int)((v >> shift) - BENCH_HIST_SUB / 2);
}

/* Lowest value of bucket i and its width. */
static void bucket_range(int i, int64_t *low, int64_t *width)
{
    if (i < BENCH_HIST_SUB) {
        *low = i;
        *width = 1;
        return;
    }
    int octave = (i - BENCH_HIST_SUB) / (BENCH_HIST_SUB / 2);
    int j = (i - BENCH_HIST_SUB) % (BENCH_HIST_SUB / 2);
    int shift = octave + 1;
    *low = (int64_t)(BENCH_HIST_SUB / 2 + j) << shift;
    *width = INT64_C(1) << shift;
}

void bench_hist_record(bench_hist_t *h, int64_t us)
{
    if (us < 0)
        us = 0;
    if (us > BENCH_HIST_MAX_US)
        us = BENCH_HIST_MAX_US;
    h->buckets[bucket_of(us)]++;
    h->count++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
}

void bench_hist_merge(bench_hist_t *into, const bench_hist_t *from)
{
    for (int i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    into->sum_us += from->sum_us;
    if (from->max_us > into->max_us)
        into->max_us = from->max_us;
}

int64_t bench_hist_quantile(const bench_hist_t *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max_us;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            int64_t low, width;
            bucket_range(i, &low, &width);
            int64_t mid = low + width / 2;
            return mid > h->max_us ? h->max_us : mid;
        }
    }
    return h->max_us;
}

double bench_hist_mean(const bench_hist_t *h)
{
    return h->count ? h->sum_us / (double)h->count : 0.0;
}
