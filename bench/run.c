/* The coordinator (see run.h): forks the workers, sets up the connections, runs the
 * scenario's flow (steady, peak or storm), samples /proc around each phase, drains, and
 * merges what the workers report. */
#include "bench/run.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/channel.h"
#include "bench/worker.h"
#include "common/clock.h"

#define STATUS_TIMEOUT_MS 30000 /* a worker that does not answer for this long is stuck */
#define QUIET_S 3.0             /* no new delivery for this long: the rest is lost */
#define STEP_GAP_MAX_S 10.0     /* peak: the longest pause between steps for their deliveries */

typedef struct coord {
    const bench_plan_t *plan;
    const bench_opts_t *opts;
    bench_result_t *r;
    uint32_t nw;
    int chan[256];
    pid_t pid[256];
    uint32_t phase; /* the phase being sent */
    double thread_start[BENCH_MAX_PROCS][256];
    int thread_tid[BENCH_MAX_PROCS][256];
    size_t thread_n[BENCH_MAX_PROCS];
} coord_t;

static void say(const coord_t *co, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const coord_t *co, const char *fmt, ...)
{
    if (co->opts->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[bench] ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void fail(coord_t *co, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(coord_t *co, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(co->r->abort_reason, sizeof co->r->abort_reason, fmt, ap);
    va_end(ap);
    co->r->aborted = true;
    fprintf(stderr, "[bench] error: %s\n", co->r->abort_reason);
}

const char *bench_phase_name(const bench_plan_t *p, uint32_t phase)
{
    static char step[32];
    switch (phase) {
    case BENCH_PHASE_COLD:
        return "cold";
    case BENCH_PHASE_WARM:
        return "warm";
    case BENCH_PHASE_MAIN:
        return p->flow == BENCH_FLOW_PEAK    ? "hold"
               : p->flow == BENCH_FLOW_STORM ? "storm"
                                             : "measured";
    case BENCH_PHASE_PRE:
        return "pre";
    case BENCH_PHASE_SETUP:
        return "setup";
    default:
        snprintf(step, sizeof step, "step-%u", phase - BENCH_PHASE_STEP0 + 1);
        return step;
    }
}

/* ---- workers ---- */

static bool spawn_workers(coord_t *co)
{
    fflush(stdout);
    fflush(stderr);
    for (uint32_t w = 0; w < co->plan->workers; w++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
            fail(co, "socketpair: %s", strerror(errno));
            return false;
        }
        pid_t pid = fork();
        if (pid < 0) {
            fail(co, "fork: %s", strerror(errno));
            close(sv[0]);
            close(sv[1]);
            return false;
        }
        if (pid == 0) {
            for (uint32_t k = 0; k < co->nw; k++)
                close(co->chan[k]);
            close(sv[0]);
            _exit(bench_worker_run(co->plan, co->opts, w, sv[1]));
        }
        close(sv[1]);
        co->chan[co->nw] = sv[0];
        co->pid[co->nw] = pid;
        co->nw++;
    }
    return true;
}

static void stop_workers(coord_t *co)
{
    for (uint32_t w = 0; w < co->nw; w++)
        (void)bench_chan_send(co->chan[w], BENCH_CMD_QUIT, NULL, 0);
    for (uint32_t w = 0; w < co->nw; w++) {
        int status;
        int64_t deadline = chat_clock_mono_ms() + 10000;
        while (waitpid(co->pid[w], &status, WNOHANG) == 0) {
            if (chat_clock_mono_ms() > deadline) {
                kill(co->pid[w], SIGKILL);
                (void)waitpid(co->pid[w], &status, 0);
                break;
            }
            chat_clock_sleep_ms(20);
        }
        close(co->chan[w]);
    }
    co->nw = 0;
}

static bool to_all(coord_t *co, bench_msg_t type, const void *payload, size_t len)
{
    for (uint32_t w = 0; w < co->nw; w++) {
        if (!bench_chan_send(co->chan[w], type, payload, len)) {
            fail(co, "worker %u is gone", w);
            return false;
        }
    }
    return true;
}

/* Waits for a message of type from worker w into buf. */
static bool expect(coord_t *co, uint32_t w, bench_msg_t type, void *buf, size_t cap)
{
    bench_msg_t got;
    size_t len;
    int rc = bench_chan_recv(co->chan[w], STATUS_TIMEOUT_MS, &got, buf, cap, &len);
    if (rc != 1 || got != type) {
        fail(co, "worker %u %s", w, rc == 0 ? "does not answer" : "is gone or confused");
        return false;
    }
    return true;
}

/* The workers' statuses, added up. */
static bool workers_status(coord_t *co, bench_status_t *sum)
{
    memset(sum, 0, sizeof *sum);
    if (!to_all(co, BENCH_CMD_STATUS, NULL, 0))
        return false;
    for (uint32_t w = 0; w < co->nw; w++) {
        bench_status_t s;
        if (!expect(co, w, BENCH_EV_STATUS, &s, sizeof s))
            return false;
        sum->ready += s.ready;
        sum->gave_up += s.gave_up;
        sum->in_setup += s.in_setup;
        sum->outstanding += s.outstanding;
        sum->expected += s.expected;
        sum->delivered += s.delivered;
        sum->removals_expected += s.removals_expected;
        sum->removals_delivered += s.removals_delivered;
        sum->storm_clients += s.storm_clients;
        sum->storm_resumed += s.storm_resumed;
        for (int g = 0; g < BENCH_MAX_GATEWAYS; g++)
            sum->ready_per_gw[g] += s.ready_per_gw[g];
    }
    return true;
}

/* The stats of one phase so far, added up over the workers. */
static bool phase_stats(coord_t *co, uint32_t phase, bench_phase_stats_t *out)
{
    static bench_ev_phase_t ev;
    memset(out, 0, sizeof *out);
    if (!to_all(co, BENCH_CMD_PHASE_STATS, &phase, sizeof phase))
        return false;
    for (uint32_t w = 0; w < co->nw; w++) {
        if (!expect(co, w, BENCH_EV_PHASE, &ev, sizeof ev))
            return false;
        bench_phase_stats_merge(out, &ev.stats);
    }
    return true;
}

static bool gather(coord_t *co)
{
    static bench_ev_phase_t ev;
    bench_result_t *r = co->r;
    if (!to_all(co, BENCH_CMD_REPORT, NULL, 0))
        return false;
    for (uint32_t w = 0; w < co->nw; w++) {
        static bench_counters_t c;
        if (!expect(co, w, BENCH_EV_COUNTERS, &c, sizeof c))
            return false;
        bench_counters_merge(&r->c, &c);
        for (;;) {
            bench_msg_t type;
            size_t len;
            if (bench_chan_recv(co->chan[w], STATUS_TIMEOUT_MS, &type, &ev, sizeof ev, &len) != 1) {
                fail(co, "worker %u broke off its report", w);
                return false;
            }
            if (type == BENCH_EV_END)
                break;
            if (type == BENCH_EV_PHASE && ev.phase < BENCH_MAX_PHASES)
                bench_phase_stats_merge(&r->ph[ev.phase], &ev.stats);
        }
    }
    return true;
}

/* ---- measuring ---- */

static double bench_cpu(coord_t *co)
{
    double s = bench_proc_cpu_s(getpid());
    for (uint32_t w = 0; w < co->nw; w++) {
        double x = bench_proc_cpu_s(co->pid[w]);
        s += x > 0 ? x : 0;
    }
    return s;
}

static bool want_threads(const coord_t *co, uint32_t phase)
{
    return co->opts->threads && phase == BENCH_PHASE_MAIN;
}

static int64_t window_start_ns;

/* Samples what a window starts from: CPU of every process, the load. The CPU of the start is
 * kept in the window's own fields and replaced by the difference at its end. */
static void window_begin(coord_t *co, uint32_t phase, double rate)
{
    bench_result_t *r = co->r;
    bench_window_t *win = &r->win[phase];
    memset(win, 0, sizeof *win);
    win->used = true;
    win->rate = rate;
    bench_loadavg(win->load_start, sizeof win->load_start);
    for (size_t i = 0; i < r->nprocs; i++) {
        win->cpu_s[i] = bench_proc_cpu_s(r->procs[i].pid);
        if (want_threads(co, phase)) {
            bench_thread_t t[256];
            size_t n = bench_proc_threads(r->procs[i].pid, t, 256);
            co->thread_n[i] = n;
            for (size_t k = 0; k < n; k++) {
                co->thread_tid[i][k] = t[k].tid;
                co->thread_start[i][k] = t[k].cpu_s;
            }
        }
    }
    win->bench_cpu_s = bench_cpu(co);
    win->machine_busy_s = bench_machine_busy_s();
    window_start_ns = chat_clock_mono_us() * 1000;
}

static int cmp_thread(const void *a, const void *b)
{
    const bench_thread_t *x = a, *y = b;
    return (y->cpu_s > x->cpu_s) - (y->cpu_s < x->cpu_s);
}

static void window_end(coord_t *co, uint32_t phase)
{
    bench_result_t *r = co->r;
    bench_window_t *win = &r->win[phase];
    win->seconds = (double)(chat_clock_mono_us() * 1000 - window_start_ns) / 1e9;
    bench_loadavg(win->load_end, sizeof win->load_end);
    for (size_t i = 0; i < r->nprocs; i++) {
        double now = bench_proc_cpu_s(r->procs[i].pid);
        win->cpu_s[i] = now >= 0 && win->cpu_s[i] >= 0 ? now - win->cpu_s[i] : -1;
        if (!want_threads(co, phase))
            continue;
        bench_thread_t t[256];
        size_t n = bench_proc_threads(r->procs[i].pid, t, 256);
        for (size_t k = 0; k < n; k++) {
            double start = 0; /* a thread born in the window started at 0 */
            for (size_t j = 0; j < co->thread_n[i]; j++)
                if (co->thread_tid[i][j] == t[k].tid)
                    start = co->thread_start[i][j];
            t[k].cpu_s -= start;
        }
        qsort(t, n, sizeof *t, cmp_thread);
        win->nthreads[i] = n < BENCH_TOP_THREADS ? n : BENCH_TOP_THREADS;
        memcpy(win->threads[i], t, win->nthreads[i] * sizeof *t);
    }
    win->bench_cpu_s = bench_cpu(co) - win->bench_cpu_s;
    double busy = bench_machine_busy_s();
    win->machine_busy_s = busy >= 0 && win->machine_busy_s >= 0 ? busy - win->machine_busy_s : -1;
}

static void read_rss(coord_t *co, long long *out)
{
    bench_result_t *r = co->r;
    for (uint32_t g = 0; g < co->plan->ngw; g++) {
        char part[32];
        snprintf(part, sizeof part, "gateway-%u", g);
        out[g] = -1;
        for (size_t i = 0; i < r->nprocs; i++)
            if (strcmp(r->procs[i].part, part) == 0)
                out[g] = bench_proc_rss_kib(r->procs[i].pid);
    }
}

/* ---- phases ---- */

/* Starts sending phase at rate messages/s per room, opening its window. */
static bool phase_begin(coord_t *co, uint32_t phase, double rate_per_room)
{
    co->phase = phase;
    window_begin(co, phase, rate_per_room * co->plan->rooms);
    bench_cmd_phase_t cmd = {.phase = phase, .rate = rate_per_room};
    say(co, "%s: %.0f msg/s in", bench_phase_name(co->plan, phase),
        rate_per_room * co->plan->rooms);
    return to_all(co, BENCH_CMD_PHASE, &cmd, sizeof cmd);
}

static bool stop_sending(coord_t *co)
{
    bench_cmd_phase_t cmd = {.phase = co->phase, .rate = 0};
    return to_all(co, BENCH_CMD_PHASE, &cmd, sizeof cmd);
}

static void sleep_s(double s)
{
    chat_clock_sleep_ms((int64_t)(s * 1000));
}

/* Sends phase for seconds and closes its window (sending goes on until the next command). */
static bool run_phase(coord_t *co, uint32_t phase, double rate_per_room, double seconds)
{
    if (!phase_begin(co, phase, rate_per_room))
        return false;
    sleep_s(seconds);
    window_end(co, phase);
    return true;
}

/* After the sends stopped: waits until every send has its answer and every acked message has
 * reached every member (and, with moderation on, every bad message's removal too), until
 * nothing arrived for QUIET_S, or until max_s passed. */
static bool drain(coord_t *co, double max_s)
{
    int64_t start = chat_clock_mono_ms(), last_change = start;
    uint64_t last_delivered = 0;
    bench_status_t s;
    bool removals = co->plan->moderation && co->plan->bad_every > 0;
    for (;;) {
        if (!workers_status(co, &s))
            return false;
        int64_t now = chat_clock_mono_ms();
        uint64_t delivered = s.delivered + (removals ? s.removals_delivered : 0);
        if (delivered != last_delivered) {
            last_delivered = delivered;
            last_change = now;
        }
        if (s.outstanding == 0 && s.delivered >= s.expected &&
            (!removals || s.removals_delivered >= s.removals_expected))
            return true;
        if (s.outstanding == 0 && now - last_change > QUIET_S * 1000) {
            say(co, "drain: %llu deliveries and %llu removals missing after %.0f s without one",
                (unsigned long long)(s.expected > s.delivered ? s.expected - s.delivered : 0),
                (unsigned long long)(removals && s.removals_expected > s.removals_delivered
                                         ? s.removals_expected - s.removals_delivered
                                         : 0),
                QUIET_S);
            return true;
        }
        if (now - start > max_s * 1000) {
            say(co,
                "drain: gave up after %.0f s: %llu sends without answer, %llu deliveries "
                "missing",
                max_s, (unsigned long long)s.outstanding,
                (unsigned long long)(s.expected > s.delivered ? s.expected - s.delivered : 0));
            return true;
        }
        chat_clock_sleep_ms(200);
    }
}

static bool setup(coord_t *co)
{
    const bench_opts_t *o = co->opts;
    const bench_plan_t *p = co->plan;
    bench_cmd_connect_t cmd = {.rate = o->connect_rate / p->workers,
                               .inflight = (uint32_t)o->inflight};
    double limit = o->setup_timeout_s > 0
                       ? o->setup_timeout_s
                       : 120 + 3.0 * p->conns / (o->connect_rate > 0 ? o->connect_rate : 1000);
    say(co, "connecting %u clients (%u rooms x %u members%s) over %u gateways from %u worker%s",
        p->conns, p->rooms, p->members, p->extra_senders ? ", senders of their own" : "", p->ngw,
        p->workers, p->workers > 1 ? "s" : "");
    int64_t start = chat_clock_mono_ms(), last_say = start;
    window_begin(co, BENCH_PHASE_SETUP, 0);
    if (!to_all(co, BENCH_CMD_CONNECT, &cmd, sizeof cmd))
        return false;
    bench_status_t s;
    for (;;) {
        chat_clock_sleep_ms(250);
        if (!workers_status(co, &s))
            return false;
        int64_t now = chat_clock_mono_ms();
        if (s.in_setup == 0)
            break;
        if (now - last_say >= 5000) {
            say(co, "set-up: %llu ready, %llu given up, %llu in progress",
                (unsigned long long)s.ready, (unsigned long long)s.gave_up,
                (unsigned long long)s.in_setup);
            last_say = now;
        }
        if (now - start > limit * 1000) {
            say(co, "set-up: stopped waiting after %.0f s", limit);
            break;
        }
    }
    window_end(co, BENCH_PHASE_SETUP);
    co->r->setup_s = (double)(chat_clock_mono_ms() - start) / 1000;
    /* What the gateways hold per connection, also of a set-up that fell short. */
    sleep_s(o->settle_s);
    read_rss(co, co->r->rss_after_kib);
    if (!workers_status(co, &s))
        return false;
    memcpy(co->r->rss_conns, s.ready_per_gw, sizeof co->r->rss_conns);
    say(co, "set-up: %llu of %u ready in %.1f s%s", (unsigned long long)s.ready, p->conns,
        co->r->setup_s, s.gave_up ? " (some gave up: see the report)" : "");
    if (s.ready == 0) {
        fail(co, "no connection could be set up (is the stack running? see the report's "
                 "set-up failures)");
        return false;
    }
    if (s.ready < p->conns && !o->allow_partial) {
        fail(co,
             "set-up incomplete: %llu of %u connections ready after %.0f s (see the set-up "
             "failures; --allow-partial measures anyway)",
             (unsigned long long)s.ready, p->conns, co->r->setup_s);
        return false;
    }
    return true;
}

static bool warm_up(coord_t *co, double rate_per_room)
{
    double warm = co->plan->warmup_s;
    if (warm <= 0)
        return true;
    double cold = co->opts->cold_s < warm ? co->opts->cold_s : warm;
    if (cold > 0 && !run_phase(co, BENCH_PHASE_COLD, rate_per_room, cold))
        return false;
    if (warm - cold > 0 && !run_phase(co, BENCH_PHASE_WARM, rate_per_room, warm - cold))
        return false;
    return true;
}

static bool flow_steady(coord_t *co)
{
    const bench_plan_t *p = co->plan;
    return warm_up(co, p->rate) && run_phase(co, BENCH_PHASE_MAIN, p->rate, p->duration_s) &&
           stop_sending(co) && drain(co, co->opts->drain_s);
}

/* Whether a peak step met the target: p99, nothing lost, no error, the rate achieved. */
static bool step_ok(const coord_t *co, const bench_phase_stats_t *s, double rate, double seconds,
                    const char **why)
{
    uint64_t errors = s->unacked_closed + s->skipped_backlog + s->skipped_not_ready;
    for (int e = 0; e < BENCH_E_COUNT; e++)
        errors += s->errors[e];
    *why = "";
    if (bench_hist_quantile(&s->latency, 0.99) > (int64_t)(co->opts->p99_target_ms * 1000))
        *why = "p99 over the target";
    else if (s->delivered < s->expected)
        *why = "deliveries missing";
    else if (errors > 0)
        *why = "sends failed or skipped";
    else if ((double)s->acked < 0.95 * rate * seconds)
        *why = "under 95% of the rate acked";
    return **why == '\0';
}

static bool flow_peak(coord_t *co)
{
    const bench_plan_t *p = co->plan;
    const bench_opts_t *o = co->opts;
    bench_result_t *r = co->r;
    if (!warm_up(co, o->warmup_rate / p->rooms) || !stop_sending(co) || !drain(co, o->drain_s))
        return false;
    r->knee_step = -1;
    for (uint32_t k = 0; k < p->nsteps; k++) {
        uint32_t phase = BENCH_PHASE_STEP0 + k;
        if (!run_phase(co, phase, p->steps[k] / p->rooms, o->step_s) || !stop_sending(co) ||
            !drain(co, STEP_GAP_MAX_S))
            return false;
        r->steps_run = k + 1;
        bench_phase_stats_t s;
        if (!phase_stats(co, phase, &s))
            return false;
        const char *why;
        bool ok = step_ok(co, &s, p->steps[k], r->win[phase].seconds, &why);
        say(co, "step %u: %.0f msg/s: p99 %.1f ms, %llu of %llu delivered%s%s", k + 1, p->steps[k],
            bench_hist_quantile(&s.latency, 0.99) / 1000.0, (unsigned long long)s.delivered,
            (unsigned long long)s.expected, ok ? "" : ": ", why);
        if (!ok)
            break;
        r->knee_step = (int)k;
    }
    double hold = o->hold_rate > 0 ? o->hold_rate : r->knee_step >= 0 ? p->steps[r->knee_step] : 0;
    if (hold <= 0) {
        say(co, "no step met the target: nothing to hold (give --hold-rate to hold a rate)");
        return true;
    }
    return run_phase(co, BENCH_PHASE_MAIN, hold / p->rooms, p->duration_s) && stop_sending(co) &&
           drain(co, o->drain_s);
}

static bool flow_storm(coord_t *co)
{
    const bench_plan_t *p = co->plan;
    const bench_opts_t *o = co->opts;
    bench_result_t *r = co->r;
    /* Every room gets messages first, so that every client holds a since. */
    if (!run_phase(co, BENCH_PHASE_PRE, 1.0, o->storm_pre_s) || !stop_sending(co) ||
        !drain(co, o->drain_s))
        return false;
    if (!phase_begin(co, BENCH_PHASE_MAIN, p->rate))
        return false;
    sleep_s(1.0);
    int64_t start_ns = chat_clock_mono_us() * 1000 + 100000000;
    bench_cmd_storm_t cmd = {.start_ns = start_ns, .spread_ns = (int64_t)(o->storm_spread_s * 1e9)};
    say(co, "storm: every member hangs up and reconnects within %.0f s", o->storm_spread_s);
    if (!to_all(co, BENCH_CMD_STORM, &cmd, sizeof cmd))
        return false;
    int64_t begin = chat_clock_mono_ms(), last_say = begin;
    bench_status_t s;
    r->storm_s = -1;
    for (;;) {
        chat_clock_sleep_ms(200);
        if (!workers_status(co, &s))
            return false;
        int64_t now = chat_clock_mono_ms();
        if (s.storm_clients > 0 && s.storm_resumed == s.storm_clients)
            break;
        if (now - last_say >= 5000) {
            say(co, "storm: %llu of %llu resumed", (unsigned long long)s.storm_resumed,
                (unsigned long long)s.storm_clients);
            last_say = now;
        }
        if (now - begin > o->storm_timeout_s * 1000) {
            say(co, "storm: stopped waiting after %.0f s: %llu of %llu resumed", o->storm_timeout_s,
                (unsigned long long)s.storm_resumed, (unsigned long long)s.storm_clients);
            break;
        }
    }
    window_end(co, BENCH_PHASE_MAIN);
    sleep_s(o->storm_after_s);
    return stop_sending(co) && drain(co, o->drain_s);
}

bool bench_run(const bench_plan_t *p, const bench_opts_t *o, bench_result_t *r)
{
    static coord_t co;
    memset(&co, 0, sizeof co);
    co.plan = p;
    co.opts = o;
    co.r = r;
    r->plan = p;
    r->opts = o;
    r->knee_step = -1;
    r->storm_s = -1;
    for (int g = 0; g < BENCH_MAX_GATEWAYS; g++)
        r->rss_before_kib[g] = r->rss_after_kib[g] = -1;
    time_t now = time(NULL);
    strftime(r->date, sizeof r->date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    r->nprocs = bench_procs_find(r->procs, BENCH_MAX_PROCS, r->pid_dir, sizeof r->pid_dir);
    if (r->nprocs == 0)
        say(&co, "warning: no running process in the stack's pid files (%s): no server CPU",
            r->pid_dir[0] ? r->pid_dir : "CHAT_STACK_PIDS and CHAT_STACK_DIR unset");
    read_rss(&co, r->rss_before_kib);
    if (!spawn_workers(&co))
        return false;
    bool ok = setup(&co);
    if (ok) {
        switch (p->flow) {
        case BENCH_FLOW_STEADY:
            ok = flow_steady(&co);
            break;
        case BENCH_FLOW_PEAK:
            ok = flow_peak(&co);
            break;
        case BENCH_FLOW_STORM:
            ok = flow_storm(&co);
            break;
        }
    }
    bool gathered = gather(&co);
    stop_workers(&co);
    if (gathered && r->c.storm_clients > 0 && r->c.storm_resumed == r->c.storm_clients)
        r->storm_s = (double)(r->c.storm_last_resumed_ns - r->c.storm_first_ns) / 1e9;
    (void)ok; /* a flow that failed midway still reports what it measured */
    return gathered;
}
