/* A run of a scenario: the coordinator forks the workers, takes them through the scenario's
 * phases, measures the stack's processes around each phase, and gathers the workers' results
 * into one bench_result_t for the report. */
#ifndef BENCH_RUN_H
#define BENCH_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/plan.h"
#include "bench/procstat.h"
#include "bench/stats.h"

/* Phases: a message belongs to the phase it was sent in. */
enum {
    BENCH_PHASE_COLD = 0,  /* the first --cold seconds of the warm-up */
    BENCH_PHASE_WARM = 1,  /* the rest of the warm-up */
    BENCH_PHASE_MAIN = 2,  /* the measured window; peak: the hold; storm: the storm */
    BENCH_PHASE_PRE = 3,   /* storm: the sends that give every client a since */
    BENCH_PHASE_STEP0 = 4, /* peak: step k is phase 4 + k */
    /* Not a phase of messages: the window of the set-up, for its CPU. */
    BENCH_PHASE_SETUP = BENCH_MAX_PHASES - 1
};

#define BENCH_TOP_THREADS 6

/* CPU and load over the time a phase was sending. */
typedef struct bench_window {
    bool used;
    double seconds;
    double rate; /* target messages/s in, all rooms */
    char load_start[32], load_end[32];
    double cpu_s[BENCH_MAX_PROCS]; /* of each stack process (bench_result_t.procs) */
    double bench_cpu_s;            /* the coordinator and its workers */
    double machine_busy_s;         /* every process of the machine */
    size_t nthreads[BENCH_MAX_PROCS];
    bench_thread_t threads[BENCH_MAX_PROCS][BENCH_TOP_THREADS]; /* busiest first, cpu_s of
                                                                 * the window */
} bench_window_t;

typedef struct bench_result {
    const bench_plan_t *plan;
    const bench_opts_t *opts;
    char date[32]; /* UTC, ISO 8601, at the start */
    char pid_dir[512];
    size_t nprocs;
    bench_proc_t procs[BENCH_MAX_PROCS];
    double setup_s;
    long long rss_before_kib[BENCH_MAX_GATEWAYS], rss_after_kib[BENCH_MAX_GATEWAYS]; /* -1: not
                                                                                      * read */
    uint64_t rss_conns[BENCH_MAX_GATEWAYS]; /* connections of each gateway at rss_after_kib */
    bench_counters_t c;
    bench_phase_stats_t ph[BENCH_MAX_PHASES];
    bench_window_t win[BENCH_MAX_PHASES];
    uint32_t steps_run;
    int knee_step;  /* -1: no step met the target */
    double storm_s; /* first reconnect -> last client resumed; < 0 if not all resumed */
    bool aborted;
    char abort_reason[256];
} bench_result_t;

/* Runs the plan; fills *r (which the caller zeroed). Returns false if the run could not be
 * done at all (no worker, no connection): r->abort_reason says why. A run that went wrong
 * midway still returns true with what was measured, and r->aborted set. */
bool bench_run(const bench_plan_t *p, const bench_opts_t *o, bench_result_t *r);

/* The name of a phase in reports: "cold", "warm", "measured", "hold", "storm", "pre",
 * "step-3"... (static storage for steps, overwritten by the next call). */
const char *bench_phase_name(const bench_plan_t *p, uint32_t phase);

#endif
