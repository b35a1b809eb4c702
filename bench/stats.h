/* What workers count and measure, in plain structs that a worker sends to the coordinator as
 * they are (the processes are forks of one binary) and that the coordinator adds up. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stdint.h>

#include "bench/hist.h"
#include "bench/plan.h"

/* Error codes of the protocol's error frames. */
typedef enum bench_err_code {
    BENCH_E_BAD_REQUEST,
    BENCH_E_UNAUTHORIZED,
    BENCH_E_FORBIDDEN,
    BENCH_E_NOT_FOUND,
    BENCH_E_TOO_LARGE,
    BENCH_E_RATE_LIMITED,
    BENCH_E_INTERNAL,
    BENCH_E_OTHER,
    BENCH_E_COUNT
} bench_err_code_t;

/* WebSocket close codes the stack uses, and 1006 for a connection that ended without one. */
typedef enum bench_close {
    BENCH_CLOSE_1000,
    BENCH_CLOSE_1001,
    BENCH_CLOSE_1006,
    BENCH_CLOSE_1008,
    BENCH_CLOSE_1009,
    BENCH_CLOSE_1011,
    BENCH_CLOSE_4001,
    BENCH_CLOSE_4003,
    BENCH_CLOSE_4008,
    BENCH_CLOSE_OTHER,
    BENCH_CLOSE_COUNT
} bench_close_t;

/* The steps of a connection's set-up, for counting where it failed. */
typedef enum bench_step {
    BENCH_STEP_CONNECT,
    BENCH_STEP_UPGRADE,
    BENCH_STEP_AUTH,
    BENCH_STEP_JOIN,
    BENCH_STEP_COUNT
} bench_step_t;

const char *bench_err_code_name(bench_err_code_t c);
bench_err_code_t bench_err_code_parse(const char *s, uint64_t len);
const char *bench_close_name(bench_close_t c);
bench_close_t bench_close_of(int code);
const char *bench_step_name(bench_step_t s);

/* Messages sent in one phase, and what became of them; a message belongs to the phase it was
 * sent in, wherever its acks and deliveries arrive. */
typedef struct bench_phase_stats {
    uint64_t sent, acked, errors[BENCH_E_COUNT];
    uint64_t unacked_closed;    /* the sender's connection closed before the answer */
    uint64_t skipped_not_ready; /* the sender was not connected when its turn came */
    uint64_t skipped_backlog;   /* the sender had too many sends without an answer */
    uint64_t late;              /* the schedule fell more than two intervals behind */
    uint64_t expected;          /* acked x the room's members */
    uint64_t delivered;         /* distinct (connection, seq) msg frames */
    uint64_t replayed;          /* of those, in a join's replay (not in latency) */
    uint64_t duplicates;        /* a seq a connection had seen */
    uint64_t reordered;         /* a seq below one seen, not seen before */
    uint64_t typing_sent;       /* typing frames the members sent */
    uint64_t typing_received;   /* typing frames the members received (of others) */
    uint64_t typing_skipped;    /* a member's typing turn came while it was not connected */
    /* Moderation (--bad-every): messages that carry the bad word, and their removals. */
    uint64_t bad_sent, bad_acked;
    uint64_t removals_expected;   /* bad_acked x the room's members */
    uint64_t removals_delivered;  /* distinct (connection, seq) `update` op moderate of a bad
                                   * message the member had received */
    bench_hist_t latency;         /* send -> msg, live deliveries */
    bench_hist_t ack;             /* send -> ack */
    bench_hist_t verdict;         /* at the sender: the ack's ts (stored) -> its removal, wall
                                   * clock (ms resolution of ts) */
    bench_hist_t removal;         /* at the sender: send -> its removal, monotonic */
    bench_hist_t verdict_members; /* at every member: the msg's ts (stored) -> its removal */
} bench_phase_stats_t;

/* Everything else a worker counts. */
typedef struct bench_counters {
    uint64_t conns, members, ready;
    uint64_t attempts, gave_up;
    uint64_t fail_timeout[BENCH_STEP_COUNT], fail_closed[BENCH_STEP_COUNT],
        fail_error[BENCH_STEP_COUNT];
    uint64_t closes[BENCH_CLOSE_COUNT];   /* by the server, at any time */
    uint64_t closes_ready;                /* of those, of connections that were ready */
    uint64_t errors_other[BENCH_E_COUNT]; /* error frames about no send of ours (auth, join) */
    uint64_t no_auth_closes; /* "no auth within ..." although the bench had sent its auth */
    uint64_t gaps;           /* seqs skipped between two msg frames of a connection */
    uint64_t behind;         /* at the end: seqs a member had not got of its room's acked */
    uint64_t unexpected_acks, foreign, protocol_errors, pings;
    /* Moderation: what the phase of a message cannot be told for. */
    uint64_t removals_unmatched; /* op moderate of a message the member had no bad message of
                                  * (a false hit, a second removal, or one it had forgotten) */
    uint64_t removed_msgs;       /* msg frames that arrived already removed (no text) */
    uint64_t updates_other;      /* update frames of another op (edit, delete, react) */
    uint64_t removals_forgotten; /* bad messages pushed out of a member's table unremoved */
    bench_hist_t join;           /* join -> joined */
    bench_hist_t setup;          /* start of connect -> joined */
    uint64_t ready_per_gw[BENCH_MAX_GATEWAYS];
    /* storm */
    uint64_t storm_clients, storm_resumed, storm_reconnects;
    int64_t storm_first_ns, storm_last_joined_ns, storm_last_resumed_ns; /* CLOCK_MONOTONIC */
    bench_hist_t storm_resume; /* its reconnect time -> joined and replay complete */
} bench_counters_t;

/* What the coordinator asks for while waiting. */
typedef struct bench_status {
    uint64_t ready, gave_up, in_setup;
    uint64_t outstanding; /* sends without an answer */
    uint64_t expected, delivered;
    uint64_t removals_expected, removals_delivered;
    uint64_t storm_clients, storm_resumed;
    uint64_t ready_per_gw[BENCH_MAX_GATEWAYS];
} bench_status_t;

/* A phase's stats as a worker sends them (BENCH_EV_PHASE). */
typedef struct bench_ev_phase {
    uint32_t phase;
    bench_phase_stats_t stats;
} bench_ev_phase_t;

void bench_phase_stats_merge(bench_phase_stats_t *into, const bench_phase_stats_t *from);
void bench_counters_merge(bench_counters_t *into, const bench_counters_t *from);

#endif
