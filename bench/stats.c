/* Names and merging of the workers' counters. */
#include "bench/stats.h"

#include <stddef.h>
#include <string.h>

static const char *const err_names[BENCH_E_COUNT] = {
    "bad_request", "unauthorized", "forbidden", "not_found",
    "too_large",   "rate_limited", "internal",  "other",
};

const char *bench_err_code_name(bench_err_code_t c)
{
    return c < BENCH_E_COUNT ? err_names[c] : "other";
}

bench_err_code_t bench_err_code_parse(const char *s, uint64_t len)
{
    for (int i = 0; i < BENCH_E_OTHER; i++)
        if (strlen(err_names[i]) == len && memcmp(err_names[i], s, len) == 0)
            return (bench_err_code_t)i;
    return BENCH_E_OTHER;
}

static const int close_codes[BENCH_CLOSE_OTHER] = {1000, 1001, 1006, 1008, 1009,
                                                   1011, 4001, 4003, 4008};

const char *bench_close_name(bench_close_t c)
{
    static const char *const names[BENCH_CLOSE_COUNT] = {"1000", "1001", "1006", "1008", "1009",
                                                         "1011", "4001", "4003", "4008", "other"};
    return c < BENCH_CLOSE_COUNT ? names[c] : "other";
}

bench_close_t bench_close_of(int code)
{
    for (int i = 0; i < BENCH_CLOSE_OTHER; i++)
        if (close_codes[i] == code)
            return (bench_close_t)i;
    return BENCH_CLOSE_OTHER;
}

const char *bench_step_name(bench_step_t s)
{
    static const char *const names[BENCH_STEP_COUNT] = {"connect", "upgrade", "auth", "join"};
    return s < BENCH_STEP_COUNT ? names[s] : "?";
}

/* Adds n uint64_t counters of from to into. */
static void add_u64(uint64_t *into, const uint64_t *from, size_t n)
{
    for (size_t i = 0; i < n; i++)
        into[i] += from[i];
}

void bench_phase_stats_merge(bench_phase_stats_t *into, const bench_phase_stats_t *from)
{
    /* Every member before the histograms is a uint64_t counter. */
    add_u64(&into->sent, &from->sent, offsetof(bench_phase_stats_t, latency) / sizeof(uint64_t));
    bench_hist_merge(&into->latency, &from->latency);
    bench_hist_merge(&into->ack, &from->ack);
    bench_hist_merge(&into->verdict, &from->verdict);
    bench_hist_merge(&into->removal, &from->removal);
    bench_hist_merge(&into->verdict_members, &from->verdict_members);
}

/* The earliest of two CLOCK_MONOTONIC times, 0 meaning none. */
static int64_t earliest(int64_t a, int64_t b)
{
    return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

static int64_t latest(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

void bench_counters_merge(bench_counters_t *into, const bench_counters_t *from)
{
    add_u64(&into->conns, &from->conns, offsetof(bench_counters_t, join) / sizeof(uint64_t));
    bench_hist_merge(&into->join, &from->join);
    bench_hist_merge(&into->setup, &from->setup);
    add_u64(into->ready_per_gw, from->ready_per_gw, BENCH_MAX_GATEWAYS);
    into->storm_clients += from->storm_clients;
    into->storm_resumed += from->storm_resumed;
    into->storm_reconnects += from->storm_reconnects;
    into->storm_first_ns = earliest(into->storm_first_ns, from->storm_first_ns);
    into->storm_last_joined_ns = latest(into->storm_last_joined_ns, from->storm_last_joined_ns);
    into->storm_last_resumed_ns = latest(into->storm_last_resumed_ns, from->storm_last_resumed_ns);
    bench_hist_merge(&into->storm_resume, &from->storm_resume);
}
