/* What a run does: the scenarios (their rooms, members, rates and flow), the options that
 * change them, and the plan made of both: which connection is which user in which room on
 * which gateway, held by which worker process. Every process computes names from the plan
 * alone, so nothing but indices crosses between them. */
#ifndef BENCH_PLAN_H
#define BENCH_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_GATEWAYS 10 /* scripts/up's layout */
#define BENCH_MAX_PHASES 40
#define BENCH_MAX_STEPS 32

typedef enum bench_flow {
    BENCH_FLOW_STEADY, /* warm-up, then one measured window at a fixed rate */
    BENCH_FLOW_PEAK,   /* warm-up, rate steps until p99 passes its target, then hold the knee */
    BENCH_FLOW_STORM,  /* every member disconnects and reconnects with its since */
} bench_flow_t;

typedef struct bench_scenario {
    const char *name;
    const char *about; /* for --help */
    bench_flow_t flow;
    uint32_t rooms, members;
    double rate;        /* messages/s per room (storm: while the storm lasts) */
    uint32_t senders;   /* per room, round robin */
    bool dm;            /* rooms are dm:A:B pairs */
    bool extra_senders; /* senders are connections of their own that do not join (storm) */
    double duration_s, warmup_s;
    double typing_s; /* each member types once per typing_s while messages flow; 0: never */
} bench_scenario_t;

/* The scenario called name, or NULL. */
const bench_scenario_t *bench_scenario_find(const char *name);
/* The table, for --help: n entries. */
const bench_scenario_t *bench_scenarios(size_t *n);

/* Options of chat-bench; zero or negative numbers mean "the scenario's default". */
typedef struct bench_opts {
    const char *scenario;
    double duration_s, warmup_s, cold_s, drain_s, settle_s;
    int64_t rooms, members, senders, text_bytes;
    double rate;
    int64_t workers, conns_per_worker, conns_per_gateway, inflight, connect_retries;
    double connect_rate, op_timeout_s, setup_timeout_s;
    char peak_steps[256]; /* "200,400,..." total messages/s */
    double step_s, hold_s, hold_rate, warmup_rate, p99_target_ms;
    double storm_spread_s, storm_timeout_s, storm_pre_s, storm_after_s;
    double typing_s;                /* < 0: the scenario's typing period; 0: no typing */
    int64_t bad_every;              /* every Nth message of a sender carries bad_word; 0: none */
    const char *bad_word;           /* lower-case letters */
    int64_t mod_words, mod_regexes; /* the rule set bench/run put in place (for the report) */
    const char *out_json, *out_md, *label, *bench_commit, *stack_commit;
    bool threads, strict, quiet, allow_partial;
} bench_opts_t;

/* Parses argv into *o (defaults first). Returns 0 on success, 1 after printing an error, 2 if
 * --help was printed. */
int bench_opts_parse(int argc, char **argv, bench_opts_t *o);

/* One gateway of CHAT_GATEWAY_URLS. */
typedef struct bench_gateway {
    char url[300];
    char host[300]; /* Host header: "127.0.0.1:7410" */
    char path[256];
    uint32_t addr; /* IPv4, network order */
    uint16_t port; /* network order */
} bench_gateway_t;

typedef struct bench_plan {
    const bench_scenario_t *sc;
    bench_flow_t flow;
    char run[16]; /* prefix of this run's rooms and users: fresh rooms, fresh seqs */
    bool dm, extra_senders;
    uint32_t rooms, members, senders;
    uint32_t conns_per_room; /* members, plus the senders when they do not join */
    uint32_t conns;
    uint32_t workers;
    double rate; /* per room in the measured window */
    double duration_s, warmup_s;
    double typing_s; /* as the scenario's, or --typing */
    uint32_t text_bytes;
    uint32_t bad_every; /* every Nth message of a sender carries bad_word; 0: none */
    char bad_word[32];
    uint32_t bad_word_len;
    bool moderation; /* a rule set is in force: removals of bad messages are expected */
    uint32_t mod_words, mod_regexes;
    uint32_t ngw;
    bench_gateway_t gw[BENCH_MAX_GATEWAYS];
    char tenant[65];
    char secret[256];
    uint32_t nsteps;
    double steps[BENCH_MAX_STEPS]; /* peak: total messages/s of each step */
} bench_plan_t;

/* Makes the plan from the options and the stack's environment (CHAT_GATEWAY_URLS,
 * CHAT_DEMO_TENANT, CHAT_DEMO_SECRET). Returns false after printing why it cannot run: an
 * unknown scenario, a missing variable, or a stack or machine too small for it (naming the
 * scripts/up command that gives enough gateways). */
bool bench_plan_make(const bench_opts_t *o, bench_plan_t *p);

/* Rooms [*lo, *hi) belong to worker w (whole rooms: a room's senders and members are in one
 * process); its connections are the rooms' connections. */
void bench_plan_worker_rooms(const bench_plan_t *p, uint32_t w, uint32_t *lo, uint32_t *hi);

/* A connection's role within its room. */
static inline uint32_t bench_plan_room_of(const bench_plan_t *p, uint32_t conn)
{
    return conn / p->conns_per_room;
}
static inline bool bench_plan_is_member(const bench_plan_t *p, uint32_t conn)
{
    return conn % p->conns_per_room < p->members;
}
/* The first sender of room r; sender i is this + i. */
static inline uint32_t bench_plan_first_sender(const bench_plan_t *p, uint32_t r)
{
    return r * p->conns_per_room + (p->extra_senders ? p->members : 0);
}
static inline uint32_t bench_plan_gateway_of(const bench_plan_t *p, uint32_t conn)
{
    return conn % p->ngw;
}

/* The user id of conn and the name of room r, NUL-terminated in buf. */
void bench_plan_user(const bench_plan_t *p, uint32_t conn, char *buf, size_t cap);
void bench_plan_room(const bench_plan_t *p, uint32_t r, char *buf, size_t cap);
/* The index of the room named s[0..len), or -1 if it is none of this run's. */
int64_t bench_plan_room_index(const bench_plan_t *p, const char *s, size_t len);

#endif
