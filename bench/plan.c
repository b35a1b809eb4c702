/* Scenarios, options and the plan of a run (see plan.h). */
#include "bench/plan.h"

#include <arpa/inet.h>
#include <math.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/procstat.h"
#include "bench/scan.h"
#include "tools/client/ws_client.h"

#define PEAK_STEPS_DEFAULT "200,400,600,800,1000,1200,1500,1800,2000,2400,2800,3200,4000"
#define SENDER_RATE_MAX 12.0          /* per connection, under the gateway's 20 frames/s */
#define BENCH_BAD_WORD "benchbadword" /* bench/run --moderation puts it in the blocklist */

static const bench_scenario_t scenarios[] = {
    {"smoke",
     "2 rooms x 5 members, 5 msg/s per room, each member types every 2.5 s, 3 s, no warm-up: "
     "the ctest check",
     BENCH_FLOW_STEADY, 2, 5, 5.0, 1, false, false, 3, 0, 2.5},
    {"small",
     "20 rooms x 50 members, 20 msg/s per room (one sender each), each member types once per "
     "10 s, 30 s",
     BENCH_FLOW_STEADY, 20, 50, 20.0, 1, false, false, 30, 60, 10.0},
    {"wide", "40 rooms x 100 members, 20 msg/s per room (two senders each), 30 s",
     BENCH_FLOW_STEADY, 40, 100, 20.0, 2, false, false, 30, 60, 0},
    {"peak",
     "40 rooms x 50 members; total rate stepped (--peak-steps) until p99 > --p99-target; "
     "the knee held for --hold s",
     BENCH_FLOW_PEAK, 40, 50, 10.0, 0, false, false, 60, 60, 0},
    {"idle",
     "1,000 rooms x 100 members = 100,000 connections, a message per room every 5 s; "
     "RSS per connection (needs scripts/up --gateways 6)",
     BENCH_FLOW_STEADY, 1000, 100, 0.2, 1, false, false, 60, 20, 0},
    {"storm",
     "500 rooms x 20 members (10,000 clients) disconnect and reconnect within 10 s with "
     "their since while one sender per room keeps sending; time until all resumed",
     BENCH_FLOW_STORM, 500, 20, 0.2, 1, false, true, 0, 0, 0},
    {"dm", "2,000 dm rooms of two users, 1 msg/s per room (the two take turns), 30 s",
     BENCH_FLOW_STEADY, 2000, 2, 1.0, 2, true, false, 30, 60, 0},
};

const bench_scenario_t *bench_scenarios(size_t *n)
{
    *n = sizeof scenarios / sizeof scenarios[0];
    return scenarios;
}

const bench_scenario_t *bench_scenario_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof scenarios / sizeof scenarios[0]; i++)
        if (strcmp(scenarios[i].name, name) == 0)
            return &scenarios[i];
    return NULL;
}

/* ---- options ---- */

typedef enum opt_type { OPT_DBL, OPT_INT, OPT_STR, OPT_FLAG, OPT_BUF } opt_type_t;

typedef struct opt {
    const char *name;
    opt_type_t type;
    size_t off;
    const char *arg;
    const char *help;
} opt_t;

#define O(field) offsetof(bench_opts_t, field)
static const opt_t opts[] = {
    {"--duration", OPT_DBL, O(duration_s), "S", "measured window (default: the scenario's)"},
    {"--warmup", OPT_DBL, O(warmup_s), "S",
     "warm-up at the scenario's load before measuring; 0: none (default: the scenario's)"},
    {"--cold", OPT_DBL, O(cold_s), "S",
     "the first S s of the warm-up are reported as the cold start (default 10)"},
    {"--drain", OPT_DBL, O(drain_s), "S",
     "after the last send, wait at most S s for acks and deliveries (default 30)"},
    {"--settle", OPT_DBL, O(settle_s), "S",
     "idle time after set-up before RSS is read and sending starts (default 3)"},
    {"--rooms", OPT_INT, O(rooms), "N", "rooms (default: the scenario's)"},
    {"--members", OPT_INT, O(members), "N", "members per room (default: the scenario's)"},
    {"--senders", OPT_INT, O(senders), "N", "members per room that send, in turn"},
    {"--rate", OPT_DBL, O(rate), "R", "messages/s per room (default: the scenario's)"},
    {"--typing", OPT_DBL, O(typing_s), "S",
     "each member sends typing once per S s while messages flow; 0: none (default: the "
     "scenario's: small 10, smoke 2.5, others 0)"},
    {"--text-bytes", OPT_INT, O(text_bytes), "N", "length of a message's text, 32-3900 (64)"},
    {"--bad-every", OPT_INT, O(bad_every), "N",
     "every Nth message of each sender carries --bad-word, for moderation to remove (0: none; "
     "default 0, bench/run --moderation: 20)"},
    {"--bad-word", OPT_STR, O(bad_word), "WORD",
     "the word of --bad-every: 3-30 lower-case letters (default " BENCH_BAD_WORD ")"},
    {"--mod-words", OPT_INT, O(mod_words), "N",
     "moderation: blocklist entries of the rule set in force (bench/run --moderation sets it "
     "and --mod-regexes); either > 0: moderation is on, removals are expected and waited for"},
    {"--mod-regexes", OPT_INT, O(mod_regexes), "N", "moderation: regexes of the rule set in force"},
    {"--workers", OPT_INT, O(workers), "N",
     "worker processes (default: as few as --conns-per-worker allows)"},
    {"--conns-per-worker", OPT_INT, O(conns_per_worker), "N",
     "connections one worker holds at most (default 19000: a process may open 20000 files)"},
    {"--conns-per-gateway", OPT_INT, O(conns_per_gateway), "N",
     "connections one gateway takes at most (default 19000)"},
    {"--connect-rate", OPT_DBL, O(connect_rate), "N", "new connections/s in all (default 2000)"},
    {"--inflight", OPT_INT, O(inflight), "N",
     "connections in set-up at once per worker (default 64; the storm has no limit)"},
    {"--connect-retries", OPT_INT, O(connect_retries), "N",
     "attempts of a connection that fails or is closed (default 3)"},
    {"--op-timeout", OPT_DBL, O(op_timeout_s), "S",
     "limit of each set-up step: connect, upgrade, auth, join (default 30)"},
    {"--setup-timeout", OPT_DBL, O(setup_timeout_s), "S",
     "limit of the whole set-up (default: 120 + 3 x connections / connect rate)"},
    {"--peak-steps", OPT_BUF, O(peak_steps), "LIST",
     "peak: total messages/s of each step (default " PEAK_STEPS_DEFAULT ")"},
    {"--step", OPT_DBL, O(step_s), "S", "peak: seconds per step (default 15)"},
    {"--hold", OPT_DBL, O(hold_s), "S", "peak: seconds at the knee after the steps (default 60)"},
    {"--hold-rate", OPT_DBL, O(hold_rate), "R",
     "peak: total messages/s to hold instead of the knee (e.g. the 2000 target)"},
    {"--warmup-rate", OPT_DBL, O(warmup_rate), "R",
     "peak: total messages/s of the warm-up (default 400)"},
    {"--p99-target", OPT_DBL, O(p99_target_ms), "MS", "peak: the p99 a step must meet (100)"},
    {"--storm-spread", OPT_DBL, O(storm_spread_s), "S",
     "storm: reconnects spread evenly over S s (default 10)"},
    {"--storm-timeout", OPT_DBL, O(storm_timeout_s), "S",
     "storm: give up waiting for resumes after S s (default 300)"},
    {"--storm-pre", OPT_DBL, O(storm_pre_s), "S",
     "storm: seconds of sending (1 msg/s per room) before the storm, so that every client "
     "holds a since (default 3)"},
    {"--storm-after", OPT_DBL, O(storm_after_s), "S",
     "storm: seconds of sending after all resumed (default 3)"},
    {"--out", OPT_STR, O(out_json), "FILE", "write the JSON report there"},
    {"--md", OPT_STR, O(out_md), "FILE", "append the markdown row there"},
    {"--label", OPT_STR, O(label), "TEXT", "what the row measures, e.g. \"before\""},
    {"--bench-commit", OPT_STR, O(bench_commit), "REV", "commit of the bench (for the report)"},
    {"--stack-commit", OPT_STR, O(stack_commit), "REV", "commit of the measured stack"},
    {"--threads", OPT_FLAG, O(threads), NULL,
     "also report the busiest threads of each server process (/proc/PID/task)"},
    {"--strict", OPT_FLAG, O(strict), NULL,
     "exit 3 if a message was lost or duplicated, a send failed or a connection failed"},
    {"--allow-partial", OPT_FLAG, O(allow_partial), NULL,
     "measure even if some connections could not be set up (default: stop after set-up)"},
    {"--quiet", OPT_FLAG, O(quiet), NULL, "no progress lines on stderr"},
};
#undef O

static void usage(FILE *f)
{
    size_t n;
    const bench_scenario_t *sc = bench_scenarios(&n);
    fprintf(f, "usage: chat-bench SCENARIO [options]\n"
               "Load generator of the chat platform: connects, joins, sends and measures against "
               "the stack\nof the environment (stack.env: CHAT_GATEWAY_URLS, CHAT_DEMO_TENANT, "
               "CHAT_DEMO_SECRET,\nCHAT_STACK_PIDS or CHAT_STACK_DIR). bench/run sets it up.\n\n"
               "scenarios:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-7s %s\n", sc[i].name, sc[i].about);
    fprintf(f, "\noptions:\n");
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        fprintf(f, "  %-24s %s\n", left, opts[i].help);
    }
}

static void defaults(bench_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->cold_s = 10;
    o->drain_s = 30;
    o->settle_s = 3;
    o->text_bytes = 64;
    o->conns_per_worker = 19000;
    o->conns_per_gateway = 19000;
    o->connect_rate = 2000;
    o->inflight = 64;
    o->connect_retries = 3;
    o->op_timeout_s = 30;
    snprintf(o->peak_steps, sizeof o->peak_steps, "%s", PEAK_STEPS_DEFAULT);
    o->step_s = 15;
    o->hold_s = -1;
    o->warmup_rate = 400;
    o->p99_target_ms = 100;
    o->storm_spread_s = 10;
    o->storm_timeout_s = 300;
    o->storm_pre_s = 3;
    o->storm_after_s = 3;
    o->duration_s = -1;
    o->warmup_s = -1;
    o->typing_s = -1;
    o->rate = -1;
    o->bad_word = BENCH_BAD_WORD;
}

/* Stores the text v of option op into o; false if it is not a valid value. */
static bool set_opt(bench_opts_t *o, const opt_t *op, const char *v)
{
    char *end = NULL;
    void *field = (char *)o + op->off;
    switch (op->type) {
    case OPT_DBL: {
        double d = strtod(v, &end);
        if (end == v || *end != '\0' || !isfinite(d) || d < 0)
            return false;
        *(double *)field = d;
        return true;
    }
    case OPT_INT: {
        long long i = strtoll(v, &end, 10);
        if (end == v || *end != '\0' || i < 0)
            return false;
        *(int64_t *)field = i;
        return true;
    }
    case OPT_STR:
        *(const char **)field = v;
        return true;
    case OPT_BUF:
        if (strlen(v) >= sizeof o->peak_steps)
            return false;
        snprintf(field, sizeof o->peak_steps, "%s", v);
        return true;
    case OPT_FLAG:
        *(bool *)field = true;
        return true;
    }
    return false;
}

int bench_opts_parse(int argc, char **argv, bench_opts_t *o)
{
    defaults(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 2;
        }
        if (a[0] != '-') {
            if (o->scenario != NULL) {
                fprintf(stderr, "chat-bench: one scenario only (got %s and %s)\n", o->scenario, a);
                return 1;
            }
            o->scenario = a;
            continue;
        }
        const opt_t *op = NULL;
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && op == NULL; k++)
            if (strcmp(a, opts[k].name) == 0)
                op = &opts[k];
        if (op == NULL) {
            fprintf(stderr, "chat-bench: unknown option %s (see --help)\n", a);
            return 1;
        }
        const char *v = "";
        if (op->type != OPT_FLAG) {
            if (i + 1 >= argc) {
                fprintf(stderr, "chat-bench: %s needs a value\n", a);
                return 1;
            }
            v = argv[++i];
        }
        if (!set_opt(o, op, v)) {
            fprintf(stderr, "chat-bench: bad value for %s: '%s'\n", a, v);
            return 1;
        }
    }
    if (o->scenario == NULL) {
        usage(stderr);
        return 1;
    }
    return 0;
}

/* ---- the plan ---- */

static bool parse_gateways(bench_plan_t *p)
{
    const char *urls = getenv("CHAT_GATEWAY_URLS");
    if (urls == NULL || *urls == '\0') {
        fprintf(stderr, "chat-bench: CHAT_GATEWAY_URLS is not set: point bench/run at the "
                        "stack.env that scripts/up wrote (--stack-env FILE)\n");
        return false;
    }
    const char *s = urls;
    p->ngw = 0;
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        if (p->ngw == BENCH_MAX_GATEWAYS) {
            fprintf(stderr, "chat-bench: more than %d gateway URLs\n", BENCH_MAX_GATEWAYS);
            return false;
        }
        bench_gateway_t *g = &p->gw[p->ngw];
        snprintf(g->url, sizeof g->url, "%.*s", (int)n, s);
        chat_ws_url_t u;
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        if (chat_ws_url_parse(g->url, &u) != CHAT_OK ||
            getaddrinfo(u.host, u.port, &hints, &res) != 0) {
            fprintf(stderr, "chat-bench: not a ws:// URL with an IPv4 host: %s\n", g->url);
            return false;
        }
        const struct sockaddr_in *sin = (const struct sockaddr_in *)res->ai_addr;
        g->addr = sin->sin_addr.s_addr;
        g->port = sin->sin_port;
        freeaddrinfo(res);
        snprintf(g->host, sizeof g->host, "%s:%s", u.host, u.port);
        if (strlen(u.path) >= sizeof g->path) {
            fprintf(stderr, "chat-bench: gateway URL path too long: %s\n", g->url);
            return false;
        }
        memcpy(g->path, u.path, strlen(u.path) + 1);
        p->ngw++;
        s += n + (s[n] == ',');
    }
    if (p->ngw == 0) {
        fprintf(stderr, "chat-bench: CHAT_GATEWAY_URLS holds no URL\n");
        return false;
    }
    return true;
}

static bool parse_steps(const char *list, bench_plan_t *p)
{
    p->nsteps = 0;
    const char *s = list;
    while (*s != '\0') {
        char *end = NULL;
        double v = strtod(s, &end);
        if (end == s || v <= 0 || p->nsteps == BENCH_MAX_STEPS || (*end != ',' && *end != '\0'))
            return false;
        p->steps[p->nsteps++] = v;
        s = *end == ',' ? end + 1 : end;
    }
    return p->nsteps > 0;
}

/* Reads one number from a /proc file; -1 if it cannot. */
static long long proc_number(const char *path)
{
    FILE *f = fopen(path, "r");
    long long v = -1;
    if (f != NULL) {
        if (fscanf(f, "%lld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* Whether this machine and this stack can hold the plan's connections; says why not. */
static bool check_capacity(const bench_opts_t *o, const bench_plan_t *p, uint32_t per_worker)
{
    uint64_t per_gw = (p->conns + p->ngw - 1) / p->ngw;
    if (per_gw > (uint64_t)o->conns_per_gateway) {
        uint64_t need = (p->conns + (uint64_t)o->conns_per_gateway - 1) / o->conns_per_gateway;
        if (need > BENCH_MAX_GATEWAYS)
            fprintf(stderr,
                    "chat-bench: %u connections need %llu gateways of %lld connections; the "
                    "local layout has %d at most\n",
                    p->conns, (unsigned long long)need, (long long)o->conns_per_gateway,
                    BENCH_MAX_GATEWAYS);
        else
            fprintf(stderr,
                    "chat-bench: %s holds %u connections, %llu per gateway on the %u gateways of "
                    "this stack, over the %lld one gateway takes: start the stack with\n"
                    "    scripts/up --gateways %llu\n",
                    p->sc->name, p->conns, (unsigned long long)per_gw, p->ngw,
                    (long long)o->conns_per_gateway, (unsigned long long)need);
        return false;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
        rl.rlim_max < (rlim_t)per_worker + 64) {
        fprintf(stderr,
                "chat-bench: a worker would hold %u connections but a process may open %llu "
                "files here: use --conns-per-worker %llu\n",
                per_worker, (unsigned long long)rl.rlim_max,
                (unsigned long long)(rl.rlim_max > 64 ? rl.rlim_max - 64 : 1));
        return false;
    }
    /* Both ends of every connection are on this machine. */
    long long file_max = proc_number("/proc/sys/fs/file-max");
    if (file_max > 0 && (long long)p->conns * 2 + 10000 > file_max) {
        fprintf(stderr,
                "chat-bench: %u connections take %u open files on this machine (both ends); "
                "fs.file-max is %lld\n",
                p->conns, p->conns * 2, file_max);
        return false;
    }
    /* About 40 KiB a connection in all: the gateway's state, both sockets' buffers, the
     * bench's buffers. */
    long long avail = bench_proc_kib("/proc/meminfo", "MemAvailable");
    if (avail > 0 && (long long)p->conns * 40 > avail) {
        fprintf(stderr,
                "chat-bench: %u connections need about %lld MiB of memory, %lld MiB are "
                "available\n",
                p->conns, (long long)p->conns * 40 / 1024, avail / 1024);
        return false;
    }
    return true;
}

bool bench_plan_make(const bench_opts_t *o, bench_plan_t *p)
{
    memset(p, 0, sizeof *p);
    p->sc = bench_scenario_find(o->scenario);
    if (p->sc == NULL) {
        fprintf(stderr, "chat-bench: unknown scenario '%s' (see --help)\n", o->scenario);
        return false;
    }
    const bench_scenario_t *sc = p->sc;
    p->flow = sc->flow;
    p->dm = sc->dm;
    p->extra_senders = sc->extra_senders;
    p->rooms = o->rooms > 0 ? (uint32_t)o->rooms : sc->rooms;
    p->members = p->dm ? 2 : o->members > 0 ? (uint32_t)o->members : sc->members;
    p->rate = o->rate >= 0 ? o->rate : sc->rate;
    p->duration_s = o->duration_s >= 0 ? o->duration_s : sc->duration_s;
    if (p->flow == BENCH_FLOW_PEAK && o->hold_s >= 0)
        p->duration_s = o->hold_s;
    p->warmup_s = o->warmup_s >= 0 ? o->warmup_s : sc->warmup_s;
    p->typing_s = o->typing_s >= 0 ? o->typing_s : sc->typing_s;
    p->text_bytes = (uint32_t)o->text_bytes;
    if (p->text_bytes < 32 || p->text_bytes > 3900) {
        fprintf(stderr, "chat-bench: --text-bytes must be 32 to 3900\n");
        return false;
    }
    size_t bw = strlen(o->bad_word);
    if (bw < 3 || bw > 30 || strspn(o->bad_word, "abcdefghijklmnopqrstuvwxyz") != bw ||
        o->bad_every > UINT32_MAX || o->mod_words > UINT32_MAX || o->mod_regexes > UINT32_MAX) {
        fprintf(stderr, "chat-bench: --bad-word must be 3-30 lower-case letters; --bad-every, "
                        "--mod-words and --mod-regexes at most 2^32 - 1\n");
        return false;
    }
    memcpy(p->bad_word, o->bad_word, bw + 1);
    p->bad_word_len = (uint32_t)bw;
    p->bad_every = (uint32_t)o->bad_every;
    p->mod_words = (uint32_t)o->mod_words;
    p->mod_regexes = (uint32_t)o->mod_regexes;
    p->moderation = p->mod_words > 0 || p->mod_regexes > 0;
    if (p->flow == BENCH_FLOW_PEAK && !parse_steps(o->peak_steps, p)) {
        fprintf(stderr,
                "chat-bench: --peak-steps wants up to %d positive numbers, "
                "comma-separated\n",
                BENCH_MAX_STEPS);
        return false;
    }
    uint32_t senders = o->senders > 0 ? (uint32_t)o->senders : sc->senders;
    if (senders == 0) { /* as many as keep each under SENDER_RATE_MAX at the top rate */
        double top = p->rate;
        for (uint32_t i = 0; i < p->nsteps; i++)
            top = fmax(top, p->steps[i] / p->rooms);
        top = fmax(top, fmax(o->hold_rate, o->warmup_rate) / p->rooms);
        senders = (uint32_t)ceil(top / SENDER_RATE_MAX);
    }
    if (senders == 0)
        senders = 1;
    if (!p->extra_senders && senders > p->members)
        senders = p->members;
    p->senders = senders;
    p->conns_per_room = p->members + (p->extra_senders ? p->senders : 0);
    if (p->rooms == 0 || p->members == 0 || (uint64_t)p->rooms * p->conns_per_room > 2000000) {
        fprintf(stderr, "chat-bench: rooms and members must be positive, and at most 2,000,000 "
                        "connections in all\n");
        return false;
    }
    p->conns = p->rooms * p->conns_per_room;
    if (!parse_gateways(p))
        return false;
    const char *tenant = getenv("CHAT_DEMO_TENANT");
    const char *secret = getenv("CHAT_DEMO_SECRET");
    if (tenant == NULL || secret == NULL || *secret == '\0') {
        fprintf(stderr, "chat-bench: CHAT_DEMO_TENANT and CHAT_DEMO_SECRET are not set "
                        "(stack.env of scripts/up)\n");
        return false;
    }
    snprintf(p->tenant, sizeof p->tenant, "%s", tenant);
    snprintf(p->secret, sizeof p->secret, "%s", secret);

    /* Workers: enough for the connections, whole rooms each. */
    uint32_t workers = o->workers > 0 ? (uint32_t)o->workers : 1;
    uint32_t per_worker;
    for (;;) {
        if (workers > p->rooms)
            workers = p->rooms;
        per_worker = (p->rooms + workers - 1) / workers * p->conns_per_room;
        if (per_worker <= (uint64_t)o->conns_per_worker || workers == p->rooms)
            break;
        workers++;
    }
    if (per_worker > (uint64_t)o->conns_per_worker) {
        fprintf(stderr, "chat-bench: a room of %u connections does not fit a worker of %lld\n",
                p->conns_per_room, (long long)o->conns_per_worker);
        return false;
    }
    if (workers > 250) {
        fprintf(stderr, "chat-bench: more than 250 workers (source addresses 127.0.0.2-251)\n");
        return false;
    }
    p->workers = workers;
    if (!check_capacity(o, p, per_worker))
        return false;
    if (p->rate * p->rooms > 0 && p->rate / p->senders > 20.0)
        fprintf(stderr,
                "chat-bench: warning: each sender sends %.1f msg/s, over the gateway's default "
                "limit of 20 frames/s: expect rate_limited errors (raise --senders)\n",
                p->rate / p->senders);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned seed = (unsigned)(ts.tv_nsec ^ ts.tv_sec ^ ((unsigned long)getpid() << 16));
    snprintf(p->run, sizeof p->run, "b%06x", (unsigned)(rand_r(&seed) & 0xffffff));
    return true;
}

void bench_plan_worker_rooms(const bench_plan_t *p, uint32_t w, uint32_t *lo, uint32_t *hi)
{
    *lo = (uint32_t)((uint64_t)p->rooms * w / p->workers);
    *hi = (uint32_t)((uint64_t)p->rooms * (w + 1) / p->workers);
}

void bench_plan_user(const bench_plan_t *p, uint32_t conn, char *buf, size_t cap)
{
    uint32_t k = conn % p->conns_per_room;
    if (p->dm)
        snprintf(buf, cap, "%s%c%u", p->run, k == 0 ? 'a' : 'b', bench_plan_room_of(p, conn));
    else
        snprintf(buf, cap, "%su%u", p->run, conn);
}

void bench_plan_room(const bench_plan_t *p, uint32_t r, char *buf, size_t cap)
{
    if (p->dm)
        snprintf(buf, cap, "dm:%sa%u:%sb%u", p->run, r, p->run, r);
    else
        snprintf(buf, cap, "%s-%u", p->run, r);
}

int64_t bench_plan_room_index(const bench_plan_t *p, const char *s, size_t len)
{
    size_t rl = strlen(p->run);
    size_t skip = p->dm ? 3 + rl + 1 : rl + 1;
    if (len <= skip)
        return -1;
    if (p->dm ? memcmp(s, "dm:", 3) != 0 || memcmp(s + 3, p->run, rl) != 0
              : memcmp(s, p->run, rl) != 0 || s[rl] != '-')
        return -1;
    int64_t r;
    if (bench_scan_digits(s + skip, len - skip, &r) == 0 || r >= p->rooms)
        return -1;
    return r;
}
