/* Report of a run (see report.h). Latencies are reported in milliseconds, CPU in seconds
 * and cores (seconds per second of the window), memory in KiB. */
#include "bench/report.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Cores of other work during a phase above which the report says its figures are off. */
#define OTHER_CORES_NOTED 0.2

/* What a phase's stats and window come to. */
typedef struct summary {
    double seconds, in_per_s, deliveries_per_s, delivered_pct;
    uint64_t errors, lost;
    double server_cpu_s, server_us_per_delivery, bench_cores;
    double other_cores; /* the machine's busy cores that were neither the stack nor the bench */
    bool cpu_known;
} summary_t;

static uint64_t send_errors(const bench_phase_stats_t *s)
{
    uint64_t n = s->unacked_closed + s->skipped_backlog + s->skipped_not_ready;
    for (int e = 0; e < BENCH_E_COUNT; e++)
        n += s->errors[e];
    return n;
}

static summary_t summarize(const bench_result_t *r, uint32_t phase)
{
    const bench_phase_stats_t *s = &r->ph[phase];
    const bench_window_t *w = &r->win[phase];
    summary_t m = {.seconds = w->seconds};
    double secs = w->seconds > 0 ? w->seconds : 1;
    m.in_per_s = (double)s->acked / secs;
    m.deliveries_per_s = (double)s->delivered / secs;
    m.delivered_pct = s->expected ? 100.0 * (double)s->delivered / (double)s->expected : 100.0;
    m.lost = s->expected > s->delivered ? s->expected - s->delivered : 0;
    m.errors = send_errors(s);
    m.cpu_known = r->nprocs > 0;
    for (size_t i = 0; i < r->nprocs; i++) {
        if (w->cpu_s[i] < 0)
            m.cpu_known = false;
        else
            m.server_cpu_s += w->cpu_s[i];
    }
    m.server_us_per_delivery = s->delivered ? m.server_cpu_s * 1e6 / (double)s->delivered : 0;
    m.bench_cores = w->bench_cpu_s / secs;
    m.other_cores = w->machine_busy_s < 0 || !m.cpu_known
                        ? -1
                        : (w->machine_busy_s - m.server_cpu_s - w->bench_cpu_s) / secs;
    if (m.other_cores < 0 && m.other_cores > -0.05)
        m.other_cores = 0; /* tick rounding */
    return m;
}

/* ---- problems ---- */

typedef struct problems {
    char text[64][200];
    int n;
    bool strict; /* one that --strict fails on */
} problems_t;

static void problem(problems_t *p, bool strict, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(problems_t *p, bool strict, const char *fmt, ...)
{
    if (p->n == 64)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->text[p->n++], sizeof p->text[0], fmt, ap);
    va_end(ap);
    p->strict |= strict;
}

static void phase_problems(const bench_result_t *r, uint32_t phase, problems_t *p)
{
    const bench_phase_stats_t *s = &r->ph[phase];
    const char *name = bench_phase_name(r->plan, phase);
    /* A peak step is meant to find where the stack breaks: its failures are the finding. */
    bool strict = phase < BENCH_PHASE_STEP0;
    char buf[32];
    snprintf(buf, sizeof buf, "%s", name);
    for (int e = 0; e < BENCH_E_COUNT; e++)
        if (s->errors[e])
            problem(p, strict, "%s: %llu sends answered error %s", buf,
                    (unsigned long long)s->errors[e], bench_err_code_name((bench_err_code_t)e));
    if (s->unacked_closed)
        problem(p, strict, "%s: %llu sends without answer when their connection closed", buf,
                (unsigned long long)s->unacked_closed);
    if (s->skipped_not_ready)
        problem(p, strict, "%s: %llu sends skipped: the sender was not connected", buf,
                (unsigned long long)s->skipped_not_ready);
    if (s->skipped_backlog)
        problem(p, strict, "%s: %llu sends skipped: %d sends of the sender awaited an answer", buf,
                (unsigned long long)s->skipped_backlog, 64);
    if (s->late)
        problem(p, false, "%s: the bench fell behind its send schedule %llu times", buf,
                (unsigned long long)s->late);
    if (s->expected > s->delivered)
        problem(p, strict, "%s: %llu deliveries lost (of %llu expected)", buf,
                (unsigned long long)(s->expected - s->delivered), (unsigned long long)s->expected);
    if (s->duplicates)
        problem(p, strict, "%s: %llu duplicate deliveries", buf, (unsigned long long)s->duplicates);
    if (s->reordered)
        problem(p, strict, "%s: %llu deliveries out of seq order", buf,
                (unsigned long long)s->reordered);
    if (r->plan->moderation && s->removals_expected > s->removals_delivered)
        problem(p, strict, "%s: %llu removals not delivered (of %llu expected)", buf,
                (unsigned long long)(s->removals_expected - s->removals_delivered),
                (unsigned long long)s->removals_expected);
    summary_t m = summarize(r, phase);
    if (phase != BENCH_PHASE_SETUP && m.other_cores > OTHER_CORES_NOTED)
        problem(p, false, "%s: other work used %.2f cores of the machine: figures not comparable",
                buf, m.other_cores);
}

static problems_t *find_problems(const bench_result_t *r)
{
    static problems_t p;
    memset(&p, 0, sizeof p);
    const bench_counters_t *c = &r->c;
    if (r->aborted)
        problem(&p, true, "run aborted: %s", r->abort_reason);
    for (int s = 0; s < BENCH_STEP_COUNT; s++) {
        const char *step = bench_step_name((bench_step_t)s);
        if (c->fail_timeout[s])
            problem(&p, false, "set-up: %llu attempts timed out at %s",
                    (unsigned long long)c->fail_timeout[s], step);
        if (c->fail_closed[s])
            problem(&p, false, "set-up: %llu attempts closed by the server at %s",
                    (unsigned long long)c->fail_closed[s], step);
        if (c->fail_error[s])
            problem(&p, false, "set-up: %llu attempts failed at %s",
                    (unsigned long long)c->fail_error[s], step);
    }
    if (c->gave_up)
        problem(&p, true, "%llu connections gave up after %lld attempts",
                (unsigned long long)c->gave_up, (long long)r->opts->connect_retries);
    for (int k = 0; k < BENCH_CLOSE_COUNT; k++)
        if (c->closes[k])
            problem(&p, k != BENCH_CLOSE_1000, "%llu connections closed by the server with %s",
                    (unsigned long long)c->closes[k], bench_close_name((bench_close_t)k));
    if (c->no_auth_closes)
        problem(&p, true,
                "%llu clients told 'no auth within' the deadline although they had sent auth",
                (unsigned long long)c->no_auth_closes);
    for (int e = 0; e < BENCH_E_COUNT; e++)
        if (c->errors_other[e])
            problem(&p, true, "%llu error frames %s about auth or join",
                    (unsigned long long)c->errors_other[e],
                    bench_err_code_name((bench_err_code_t)e));
    if (c->gaps)
        problem(&p, true, "%llu seqs skipped between two msg frames of a connection",
                (unsigned long long)c->gaps);
    if (c->behind)
        problem(&p, true, "at the end, members lacked %llu acked messages of their room",
                (unsigned long long)c->behind);
    if (c->protocol_errors)
        problem(&p, true, "%llu WebSocket protocol errors of the server",
                (unsigned long long)c->protocol_errors);
    if (c->foreign)
        problem(&p, false, "%llu msg frames not from this run", (unsigned long long)c->foreign);
    if (c->unexpected_acks)
        problem(&p, false, "%llu acks of no pending send", (unsigned long long)c->unexpected_acks);
    /* Removals of messages that did not carry the bad word: the rule set hit bench text. */
    if (c->removals_unmatched)
        problem(&p, r->plan->moderation, "%llu removals of messages that were not bad%s",
                (unsigned long long)c->removals_unmatched,
                r->plan->moderation ? " (a rule hits the bench's text?)"
                                    : " although no rule set was given");
    if (c->removed_msgs)
        problem(&p, false, "%llu msg frames arrived already removed (not counted as delivered)",
                (unsigned long long)c->removed_msgs);
    if (c->storm_clients && c->storm_resumed < c->storm_clients)
        problem(&p, true, "storm: only %llu of %llu clients resumed",
                (unsigned long long)c->storm_resumed, (unsigned long long)c->storm_clients);
    for (uint32_t ph = 0; ph < BENCH_MAX_PHASES; ph++)
        if (r->win[ph].used)
            phase_problems(r, ph, &p);
    return &p;
}

/* ---- JSON ---- */

static double round3(double v)
{
    return (double)(long long)(v * 1000 + (v >= 0 ? 0.5 : -0.5)) / 1000;
}

static cJSON *hist_json(const bench_hist_t *h)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)h->count);
    cJSON_AddNumberToObject(o, "p50", round3(bench_hist_quantile(h, 0.50) / 1000.0));
    cJSON_AddNumberToObject(o, "p99", round3(bench_hist_quantile(h, 0.99) / 1000.0));
    cJSON_AddNumberToObject(o, "p999", round3(bench_hist_quantile(h, 0.999) / 1000.0));
    cJSON_AddNumberToObject(o, "max", round3(h->max_us / 1000.0));
    cJSON_AddNumberToObject(o, "mean", round3(bench_hist_mean(h) / 1000.0));
    return o;
}

static void add_u64(cJSON *o, const char *k, uint64_t v)
{
    cJSON_AddNumberToObject(o, k, (double)v);
}

/* A histogram with p90 as well: the verdict figures. */
static cJSON *hist90_json(const bench_hist_t *h)
{
    cJSON *o = hist_json(h);
    cJSON_AddNumberToObject(o, "p90", round3(bench_hist_quantile(h, 0.90) / 1000.0));
    return o;
}

/* A phase's bad messages and their removals (--bad-every). */
static cJSON *phase_moderation_json(const bench_phase_stats_t *s)
{
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "bad_sent", s->bad_sent);
    add_u64(o, "bad_acked", s->bad_acked);
    add_u64(o, "removals_expected", s->removals_expected);
    add_u64(o, "removals_delivered", s->removals_delivered);
    cJSON_AddNumberToObject(o, "removals_delivered_pct",
                            round3(s->removals_expected ? 100.0 * (double)s->removals_delivered /
                                                              (double)s->removals_expected
                                                        : 100.0));
    /* At the sender: the ack's ts (stored) -> the removal's arrival (wall clock). */
    cJSON_AddItemToObject(o, "verdict_ms", hist90_json(&s->verdict));
    cJSON_AddItemToObject(o, "send_to_removal_ms", hist90_json(&s->removal));
    cJSON_AddItemToObject(o, "verdict_at_members_ms", hist90_json(&s->verdict_members));
    return o;
}

/* The run's moderation: the rule set, the bad word, what no phase can be told for. */
static cJSON *moderation_json(const bench_result_t *r)
{
    const bench_plan_t *p = r->plan;
    const bench_counters_t *c = &r->c;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "on", p->moderation);
    cJSON *rules = cJSON_AddObjectToObject(o, "rules");
    cJSON_AddNumberToObject(rules, "blocklist_words", p->mod_words);
    cJSON_AddNumberToObject(rules, "regexes", p->mod_regexes);
    cJSON_AddNumberToObject(o, "bad_every", p->bad_every);
    cJSON_AddStringToObject(o, "bad_word", p->bad_word);
    add_u64(o, "removals_unmatched", c->removals_unmatched);
    add_u64(o, "msgs_arrived_removed", c->removed_msgs);
    add_u64(o, "updates_other_ops", c->updates_other);
    add_u64(o, "removals_forgotten", c->removals_forgotten);
    return o;
}

/* {"bad_request": n, ...} of counts indexed by bench_err_code_t, into o. */
static void add_error_counts(cJSON *o, const uint64_t *counts)
{
    for (int k = 0; k < BENCH_E_COUNT; k++)
        add_u64(o, bench_err_code_name((bench_err_code_t)k), counts[k]);
}

static cJSON *cpu_json(const bench_result_t *r, uint32_t phase, const summary_t *m)
{
    const bench_window_t *w = &r->win[phase];
    cJSON *o = cJSON_CreateObject();
    cJSON *by = cJSON_AddObjectToObject(o, "by_process");
    for (size_t i = 0; i < r->nprocs; i++)
        cJSON_AddNumberToObject(by, r->procs[i].part, round3(w->cpu_s[i]));
    cJSON_AddNumberToObject(o, "seconds", round3(m->server_cpu_s));
    cJSON_AddNumberToObject(o, "cores",
                            round3(m->server_cpu_s / (m->seconds > 0 ? m->seconds : 1)));
    cJSON_AddNumberToObject(o, "us_per_delivery", round3(m->server_us_per_delivery));
    cJSON_AddBoolToObject(o, "complete", m->cpu_known);
    bool any_threads = false;
    for (size_t i = 0; i < r->nprocs; i++)
        any_threads |= w->nthreads[i] > 0;
    if (any_threads) {
        cJSON *t = cJSON_AddObjectToObject(o, "threads");
        for (size_t i = 0; i < r->nprocs; i++) {
            cJSON *a = cJSON_AddArrayToObject(t, r->procs[i].part);
            for (size_t k = 0; k < w->nthreads[i]; k++) {
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "name", w->threads[i][k].comm);
                cJSON_AddNumberToObject(e, "tid", w->threads[i][k].tid);
                cJSON_AddNumberToObject(e, "seconds", round3(w->threads[i][k].cpu_s));
                cJSON_AddItemToArray(a, e);
            }
        }
    }
    return o;
}

static double secs_of(const bench_window_t *w)
{
    return w->seconds > 0 ? w->seconds : 1;
}

static cJSON *phase_json(const bench_result_t *r, uint32_t phase)
{
    const bench_phase_stats_t *s = &r->ph[phase];
    const bench_window_t *w = &r->win[phase];
    summary_t m = summarize(r, phase);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "phase", bench_phase_name(r->plan, phase));
    cJSON_AddNumberToObject(o, "seconds", round3(w->seconds));
    cJSON_AddNumberToObject(o, "target_msgs_per_s", round3(w->rate));
    add_u64(o, "sent", s->sent);
    add_u64(o, "acked", s->acked);
    cJSON_AddNumberToObject(o, "msgs_in_per_s", round3(m.in_per_s));
    add_u64(o, "expected_deliveries", s->expected);
    add_u64(o, "delivered", s->delivered);
    cJSON_AddNumberToObject(o, "deliveries_per_s", round3(m.deliveries_per_s));
    cJSON_AddNumberToObject(o, "delivered_pct", round3(m.delivered_pct));
    add_u64(o, "lost", m.lost);
    add_u64(o, "duplicates", s->duplicates);
    add_u64(o, "reordered", s->reordered);
    add_u64(o, "replayed", s->replayed);
    if (r->plan->typing_s > 0) {
        /* in: typing frames the members sent; out: typing frames they received (each typing
         * goes to the room's other members, less what the gateway throttled). */
        cJSON *t = cJSON_AddObjectToObject(o, "typing");
        add_u64(t, "sent", s->typing_sent);
        add_u64(t, "received", s->typing_received);
        add_u64(t, "skipped_not_ready", s->typing_skipped);
        cJSON_AddNumberToObject(t, "in_per_s", round3((double)s->typing_sent / secs_of(w)));
        cJSON_AddNumberToObject(t, "out_per_s", round3((double)s->typing_received / secs_of(w)));
    }
    cJSON_AddItemToObject(o, "latency_ms", hist_json(&s->latency));
    cJSON_AddItemToObject(o, "ack_ms", hist_json(&s->ack));
    if (r->plan->bad_every > 0 || r->plan->moderation)
        cJSON_AddItemToObject(o, "moderation", phase_moderation_json(s));
    cJSON *e = cJSON_AddObjectToObject(o, "send_errors");
    add_error_counts(e, s->errors);
    add_u64(e, "unacked_at_close", s->unacked_closed);
    add_u64(e, "skipped_not_ready", s->skipped_not_ready);
    add_u64(e, "skipped_backlog", s->skipped_backlog);
    add_u64(e, "total", m.errors);
    add_u64(o, "schedule_late", s->late);
    cJSON_AddItemToObject(o, "server_cpu", cpu_json(r, phase, &m));
    cJSON *b = cJSON_AddObjectToObject(o, "bench_cpu");
    cJSON_AddNumberToObject(b, "seconds", round3(w->bench_cpu_s));
    cJSON_AddNumberToObject(b, "cores", round3(m.bench_cores));
    cJSON *l = cJSON_AddObjectToObject(o, "load");
    cJSON_AddStringToObject(l, "start", w->load_start);
    cJSON_AddStringToObject(l, "end", w->load_end);
    cJSON_AddNumberToObject(l, "machine_busy_cores", round3(w->machine_busy_s / secs_of(w)));
    cJSON_AddNumberToObject(l, "other_cores", round3(m.other_cores));
    return o;
}

/* The machine: cores, CPU model, memory. */
static void machine(char *model, size_t cap, long *cores, double *mem_gib)
{
    *cores = sysconf(_SC_NPROCESSORS_ONLN);
    *mem_gib = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1 << 30);
    snprintf(model, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            snprintf(model, cap, "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
}

static cJSON *counters_json(const bench_result_t *r)
{
    const bench_counters_t *c = &r->c;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seconds", round3(r->setup_s));
    add_u64(o, "connections", c->conns);
    add_u64(o, "ready_at_end", c->ready);
    add_u64(o, "attempts", c->attempts);
    add_u64(o, "gave_up", c->gave_up);
    cJSON *f = cJSON_AddObjectToObject(o, "failures");
    for (int s = 0; s < BENCH_STEP_COUNT; s++) {
        cJSON *x = cJSON_AddObjectToObject(f, bench_step_name((bench_step_t)s));
        add_u64(x, "timeout", c->fail_timeout[s]);
        add_u64(x, "closed", c->fail_closed[s]);
        add_u64(x, "error", c->fail_error[s]);
    }
    cJSON_AddItemToObject(o, "join_ms", hist_json(&c->join));
    cJSON_AddItemToObject(o, "connect_to_joined_ms", hist_json(&c->setup));
    if (r->win[BENCH_PHASE_SETUP].used) {
        summary_t m = summarize(r, BENCH_PHASE_SETUP);
        cJSON_AddItemToObject(o, "server_cpu", cpu_json(r, BENCH_PHASE_SETUP, &m));
        cJSON_AddNumberToObject(o, "bench_cpu_s", round3(r->win[BENCH_PHASE_SETUP].bench_cpu_s));
    }
    return o;
}

static cJSON *rss_json(const bench_result_t *r, double *per_conn)
{
    cJSON *o = cJSON_CreateObject();
    double grown = 0, conns = 0;
    for (uint32_t g = 0; g < r->plan->ngw; g++) {
        char part[32];
        snprintf(part, sizeof part, "gateway-%u", g);
        cJSON *x = cJSON_AddObjectToObject(o, part);
        uint64_t n = r->rss_conns[g];
        cJSON_AddNumberToObject(x, "before_kib", (double)r->rss_before_kib[g]);
        cJSON_AddNumberToObject(x, "after_kib", (double)r->rss_after_kib[g]);
        add_u64(x, "connections", n);
        add_u64(x, "connections_at_end", r->c.ready_per_gw[g]);
        if (r->rss_before_kib[g] >= 0 && r->rss_after_kib[g] >= 0 && n > 0) {
            double d = (double)(r->rss_after_kib[g] - r->rss_before_kib[g]);
            cJSON_AddNumberToObject(x, "kib_per_connection", round3(d / (double)n));
            grown += d;
            conns += (double)n;
        }
    }
    *per_conn = conns > 0 ? grown / conns : -1;
    cJSON_AddNumberToObject(o, "kib_per_connection", round3(*per_conn));
    return o;
}

static cJSON *errors_json(const bench_result_t *r)
{
    const bench_counters_t *c = &r->c;
    cJSON *o = cJSON_CreateObject();
    cJSON *cl = cJSON_AddObjectToObject(o, "closes_by_server");
    for (int k = 0; k < BENCH_CLOSE_COUNT; k++)
        add_u64(cl, bench_close_name((bench_close_t)k), c->closes[k]);
    add_u64(o, "closes_of_ready_connections", c->closes_ready);
    add_u64(o, "no_auth_within_deadline", c->no_auth_closes);
    add_error_counts(cJSON_AddObjectToObject(o, "error_frames_auth_join"), c->errors_other);
    add_u64(o, "gaps", c->gaps);
    add_u64(o, "behind_at_end", c->behind);
    add_u64(o, "protocol_errors", c->protocol_errors);
    add_u64(o, "foreign_msgs", c->foreign);
    add_u64(o, "unexpected_acks", c->unexpected_acks);
    add_u64(o, "pings_answered", c->pings);
    return o;
}

static cJSON *storm_json(const bench_result_t *r)
{
    const bench_counters_t *c = &r->c;
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "clients", c->storm_clients);
    add_u64(o, "resumed", c->storm_resumed);
    add_u64(o, "attempts", c->storm_reconnects);
    cJSON_AddNumberToObject(o, "spread_s", r->opts->storm_spread_s);
    double joined = c->storm_first_ns && c->storm_last_joined_ns
                        ? (double)(c->storm_last_joined_ns - c->storm_first_ns) / 1e9
                        : -1;
    cJSON_AddNumberToObject(o, "all_joined_s", round3(joined));
    cJSON_AddNumberToObject(o, "all_resumed_s", round3(r->storm_s));
    cJSON_AddItemToObject(o, "resume_ms", hist_json(&c->storm_resume));
    add_u64(o, "missed", c->gaps + c->behind);
    return o;
}

static cJSON *build_json(const bench_result_t *r, const problems_t *pr)
{
    const bench_plan_t *p = r->plan;
    const bench_opts_t *o = r->opts;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "scenario", p->sc->name);
    cJSON_AddStringToObject(j, "label", o->label ? o->label : "");
    cJSON_AddStringToObject(j, "date", r->date);
    cJSON_AddStringToObject(j, "bench_commit", o->bench_commit ? o->bench_commit : "unknown");
    cJSON_AddStringToObject(j, "stack_commit", o->stack_commit ? o->stack_commit : "unknown");
    char model[256];
    long cores;
    double mem;
    machine(model, sizeof model, &cores, &mem);
    cJSON *m = cJSON_AddObjectToObject(j, "machine");
    cJSON_AddNumberToObject(m, "cores", (double)cores);
    cJSON_AddStringToObject(m, "cpu", model);
    cJSON_AddNumberToObject(m, "memory_gib", round3(mem));
    cJSON *pa = cJSON_AddObjectToObject(j, "params");
    cJSON_AddNumberToObject(pa, "rooms", p->rooms);
    cJSON_AddNumberToObject(pa, "members", p->members);
    cJSON_AddNumberToObject(pa, "senders_per_room", p->senders);
    cJSON_AddBoolToObject(pa, "senders_join", !p->extra_senders);
    cJSON_AddNumberToObject(pa, "typing_period_s", p->typing_s);
    cJSON_AddNumberToObject(pa, "connections", p->conns);
    cJSON_AddNumberToObject(pa, "rate_per_room", p->rate);
    cJSON_AddNumberToObject(pa, "duration_s", p->duration_s);
    cJSON_AddNumberToObject(pa, "warmup_s", p->warmup_s);
    cJSON_AddNumberToObject(pa, "text_bytes", p->text_bytes);
    cJSON_AddNumberToObject(pa, "bad_every", p->bad_every);
    cJSON_AddNumberToObject(pa, "gateways", p->ngw);
    cJSON_AddNumberToObject(pa, "workers", p->workers);
    cJSON_AddStringToObject(pa, "run", p->run);
    cJSON *procs = cJSON_AddObjectToObject(j, "server_processes");
    for (size_t i = 0; i < r->nprocs; i++)
        cJSON_AddNumberToObject(procs, r->procs[i].part, r->procs[i].pid);
    cJSON_AddStringToObject(j, "pid_dir", r->pid_dir);
    cJSON_AddItemToObject(j, "setup", counters_json(r));
    double per_conn;
    cJSON_AddItemToObject(j, "gateway_rss", rss_json(r, &per_conn));
    if (r->win[BENCH_PHASE_COLD].used || r->win[BENCH_PHASE_WARM].used) {
        cJSON *w = cJSON_AddObjectToObject(j, "warmup");
        if (r->win[BENCH_PHASE_COLD].used)
            cJSON_AddItemToObject(w, "cold", phase_json(r, BENCH_PHASE_COLD));
        if (r->win[BENCH_PHASE_WARM].used)
            cJSON_AddItemToObject(w, "rest", phase_json(r, BENCH_PHASE_WARM));
    }
    if (r->win[BENCH_PHASE_PRE].used)
        cJSON_AddItemToObject(j, "pre_storm", phase_json(r, BENCH_PHASE_PRE));
    if (r->win[BENCH_PHASE_MAIN].used)
        cJSON_AddItemToObject(j, "measured", phase_json(r, BENCH_PHASE_MAIN));
    if (p->flow == BENCH_FLOW_PEAK) {
        cJSON *pk = cJSON_AddObjectToObject(j, "peak");
        cJSON *steps = cJSON_AddArrayToObject(pk, "steps");
        for (uint32_t k = 0; k < r->steps_run; k++)
            cJSON_AddItemToArray(steps, phase_json(r, BENCH_PHASE_STEP0 + k));
        cJSON_AddNumberToObject(pk, "p99_target_ms", o->p99_target_ms);
        cJSON_AddNumberToObject(pk, "knee_msgs_per_s",
                                r->knee_step >= 0 ? p->steps[r->knee_step] : 0);
    }
    if (p->flow == BENCH_FLOW_STORM)
        cJSON_AddItemToObject(j, "storm", storm_json(r));
    cJSON_AddItemToObject(j, "moderation", moderation_json(r));
    cJSON_AddItemToObject(j, "errors", errors_json(r));
    cJSON *pl = cJSON_AddArrayToObject(j, "problems");
    for (int i = 0; i < pr->n; i++)
        cJSON_AddItemToArray(pl, cJSON_CreateString(pr->text[i]));
    cJSON_AddBoolToObject(j, "aborted", r->aborted);
    return j;
}

/* ---- markdown ---- */

static const char md_header[] =
    "| date | scenario | label | stack | load | msg/s in | deliveries/s | p50 ms | p99 ms | "
    "p999 ms | max ms | delivered | lost | dup | errors | server µs/delivery | server cores "
    "(kafka, ferretdb, redis, message, broadcast, gateways) | bench cores | other cores | gateway "
    "KiB/conn | notes |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

/* "0.50, 0.18, 0.01, 0.09, 0.08, 0.45": cores of each part over the window, gateways summed. */
static void cores_text(const bench_result_t *r, uint32_t phase, char *buf, size_t cap)
{
    static const char *const parts[] = {"kafka", "ferretdb", "redis", "message", "broadcast"};
    const bench_window_t *w = &r->win[phase];
    double secs = w->seconds > 0 ? w->seconds : 1, gw = 0;
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof parts / sizeof parts[0]; k++) {
        double v = -1;
        for (size_t i = 0; i < r->nprocs; i++)
            if (strcmp(r->procs[i].part, parts[k]) == 0)
                v = w->cpu_s[i] / secs;
        len += (size_t)snprintf(buf + len, cap - len, v < 0 ? "-, " : "%.2f, ", v);
        if (len >= cap)
            return;
    }
    for (size_t i = 0; i < r->nprocs; i++)
        if (strncmp(r->procs[i].part, "gateway-", 8) == 0)
            gw += w->cpu_s[i] / secs;
    snprintf(buf + len, cap - len, "%.2f", gw);
}

static void md_row(const bench_result_t *r, uint32_t phase, const char *notes, double kib_per_conn,
                   char *buf, size_t cap)
{
    const bench_phase_stats_t *s = &r->ph[phase];
    const bench_opts_t *o = r->opts;
    summary_t m = summarize(r, phase);
    char cores[160], scen[64], errs[64], rss[32], cpu[32], other[16], date[11];
    cores_text(r, phase, cores, sizeof cores);
    snprintf(scen, sizeof scen, "%s%s%s", r->plan->sc->name, phase == BENCH_PHASE_MAIN ? "" : " ",
             phase == BENCH_PHASE_MAIN ? "" : bench_phase_name(r->plan, phase));
    snprintf(errs, sizeof errs, "%llu", (unsigned long long)m.errors);
    for (int e = 0; e < BENCH_E_COUNT; e++)
        if (s->errors[e] && s->errors[e] * 2 >= m.errors) /* name the main kind */
            snprintf(errs, sizeof errs, "%llu (%s)", (unsigned long long)m.errors,
                     bench_err_code_name((bench_err_code_t)e));
    snprintf(rss, sizeof rss, kib_per_conn >= 0 ? "%.1f" : "-", kib_per_conn);
    snprintf(cpu, sizeof cpu, m.cpu_known ? "%.1f" : "-", m.server_us_per_delivery);
    snprintf(other, sizeof other, m.other_cores >= 0 ? "%.2f" : "-", m.other_cores);
    memcpy(date, r->date, sizeof date - 1); /* the day of the ISO date */
    date[sizeof date - 1] = '\0';
    snprintf(buf, cap,
             "| %s | %s | %s | %s | %s | %.0f | %.0f | %.1f | %.1f | %.1f | %.1f | %.2f%% | %llu | "
             "%llu | %s | %s | %s | %.2f | %s | %s | %s |\n",
             date, scen, o->label ? o->label : "", o->stack_commit ? o->stack_commit : "?",
             r->win[phase].load_start, m.in_per_s, m.deliveries_per_s,
             bench_hist_quantile(&s->latency, 0.5) / 1000.0,
             bench_hist_quantile(&s->latency, 0.99) / 1000.0,
             bench_hist_quantile(&s->latency, 0.999) / 1000.0, s->latency.max_us / 1000.0,
             m.delivered_pct, (unsigned long long)m.lost, (unsigned long long)s->duplicates, errs,
             cpu, cores, m.bench_cores, other, rss, notes);
}

static void notes_text(const bench_result_t *r, const problems_t *pr, char *buf, size_t cap)
{
    const bench_counters_t *c = &r->c;
    size_t len = (size_t)snprintf(buf, cap, "%llu/%llu conns", (unsigned long long)c->ready,
                                  (unsigned long long)c->conns);
    if (r->plan->flow == BENCH_FLOW_PEAK)
        len += (size_t)snprintf(buf + len, cap - len, "; knee %.0f msg/s",
                                r->knee_step >= 0 ? r->plan->steps[r->knee_step] : 0);
    if (r->plan->flow == BENCH_FLOW_STORM && len < cap) {
        if (r->storm_s >= 0)
            len += (size_t)snprintf(buf + len, cap - len, "; all %llu resumed in %.1f s",
                                    (unsigned long long)c->storm_clients, r->storm_s);
        else
            len += (size_t)snprintf(buf + len, cap - len, "; %llu of %llu resumed",
                                    (unsigned long long)c->storm_resumed,
                                    (unsigned long long)c->storm_clients);
        if (len < cap)
            len += (size_t)snprintf(buf + len, cap - len, ", %llu missed",
                                    (unsigned long long)(c->gaps + c->behind));
    }
    if (r->plan->typing_s > 0 && r->win[BENCH_PHASE_MAIN].used && len < cap) {
        const bench_phase_stats_t *s = &r->ph[BENCH_PHASE_MAIN];
        double secs = r->win[BENCH_PHASE_MAIN].seconds > 0 ? r->win[BENCH_PHASE_MAIN].seconds : 1;
        len += (size_t)snprintf(buf + len, cap - len, "; typing %.0f/s in, %.0f/s out",
                                (double)s->typing_sent / secs, (double)s->typing_received / secs);
    }
    if (pr->n > 0 && len < cap)
        snprintf(buf + len, cap - len, "; %d problem%s (see JSON)", pr->n, pr->n > 1 ? "s" : "");
}

/* Appends the phase's verdict figures to a row's notes (--bad-every): the verdict latency at
 * the senders (stored -> removal) and removals delivered / expected. */
static void mod_note(const bench_result_t *r, uint32_t phase, char *buf, size_t cap)
{
    const bench_phase_stats_t *s = &r->ph[phase];
    size_t len = strlen(buf);
    if (r->plan->bad_every == 0 || len >= cap)
        return;
    if (!r->plan->moderation) {
        snprintf(buf + len, cap - len, "%sno rule set: %llu removals", len ? "; " : "",
                 (unsigned long long)s->removals_delivered);
        return;
    }
    const bench_hist_t *v = &s->verdict;
    snprintf(buf + len, cap - len,
             "%sverdict p50/p90/p99/max %.1f/%.1f/%.1f/%.1f ms, removals %llu/%llu",
             len ? "; " : "", bench_hist_quantile(v, 0.5) / 1000.0,
             bench_hist_quantile(v, 0.9) / 1000.0, bench_hist_quantile(v, 0.99) / 1000.0,
             v->max_us / 1000.0, (unsigned long long)s->removals_delivered,
             (unsigned long long)s->removals_expected);
}

int bench_report(const bench_result_t *r)
{
    const bench_opts_t *o = r->opts;
    problems_t *pr = find_problems(r);
    int rc = 0;
    cJSON *j = build_json(r, pr);
    double per_conn;
    cJSON_Delete(rss_json(r, &per_conn));
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (text != NULL && o->out_json != NULL) {
        FILE *f = fopen(o->out_json, "w");
        if (f == NULL || fputs(text, f) < 0 || fputc('\n', f) < 0) {
            fprintf(stderr, "chat-bench: cannot write %s\n", o->out_json);
            rc = 1;
        }
        if (f != NULL && fclose(f) != 0)
            rc = 1;
    }
    free(text);

    char notes[512], rows[BENCH_MAX_STEPS + 2][1280];
    int nrows = 0;
    if (r->win[BENCH_PHASE_COLD].used) {
        snprintf(notes, sizeof notes, "cold start: the first seconds of the warm-up");
        mod_note(r, BENCH_PHASE_COLD, notes, sizeof notes);
        md_row(r, BENCH_PHASE_COLD, notes, -1, rows[nrows++], sizeof rows[0]);
    }
    for (uint32_t k = 0; k < r->steps_run; k++) {
        snprintf(notes, sizeof notes, "step %u%s", k + 1, (int)k == r->knee_step ? ", knee" : "");
        mod_note(r, BENCH_PHASE_STEP0 + k, notes, sizeof notes);
        md_row(r, BENCH_PHASE_STEP0 + k, notes, -1, rows[nrows++], sizeof rows[0]);
    }
    if (r->win[BENCH_PHASE_MAIN].used) {
        notes_text(r, pr, notes, sizeof notes);
        mod_note(r, BENCH_PHASE_MAIN, notes, sizeof notes);
        md_row(r, BENCH_PHASE_MAIN, notes, per_conn, rows[nrows++], sizeof rows[0]);
    }
    if (o->out_md != NULL) {
        FILE *f = fopen(o->out_md, "a");
        if (f == NULL) {
            fprintf(stderr, "chat-bench: cannot write %s\n", o->out_md);
            rc = 1;
        } else {
            if (ftell(f) == 0)
                fputs(md_header, f);
            for (int i = 0; i < nrows; i++)
                fputs(rows[i], f);
            fclose(f);
        }
    }
    fputs(md_header, stdout);
    for (int i = 0; i < nrows; i++)
        fputs(rows[i], stdout);
    if (pr->n > 0) {
        printf("\nproblems:\n");
        for (int i = 0; i < pr->n; i++)
            printf("  - %s\n", pr->text[i]);
    }
    if (o->out_json != NULL)
        printf("\nreport: %s\n", o->out_json);
    fflush(stdout);
    if (rc == 0 && o->strict && pr->strict)
        rc = 3;
    return rc;
}
