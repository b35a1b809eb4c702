/* What the worker's loop (worker.c) and its connections' protocol (conn.c) share. */
#ifndef BENCH_WORKER_INT_H
#define BENCH_WORKER_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/plan.h"
#include "bench/stats.h"
#include "bench/timer_heap.h"
#include "tools/client/ws_client.h"

#define BENCH_RING 64 /* sends of one connection awaiting their answer, at most */
/* Bad messages (--bad-every) awaiting their removal: a member remembers the last few it
 * received, a sender the last few it got the ack of. Full tables forget the oldest. */
#define BENCH_MOD_SEEN 32
#define BENCH_MOD_ACKED 64
#define BENCH_MSG_ID_MAX 32 /* a message id longer than this is matched by seq alone */

typedef enum conn_state {
    CS_IDLE,       /* not started */
    CS_WAIT,       /* its start (or restart) is scheduled */
    CS_CONNECTING, /* TCP connect in progress */
    CS_UPGRADING,  /* upgrade request sent */
    CS_AUTHING,    /* auth sent */
    CS_JOINING,    /* join sent (senders of their own skip it) */
    CS_READY,
    CS_DONE, /* gave up */
} conn_state_t;

typedef struct out_slot {
    int64_t sent_ns;
    uint32_t n; /* the cid */
    uint8_t phase;
    bool used;
    bool bad; /* carries the bad word */
} out_slot_t;

/* A bad message a member received: the seq its removal will name. */
typedef struct mod_seen {
    int64_t seq;
    int64_t ts_ms; /* stored, wall clock (the msg frame's ts) */
    uint8_t phase;
    bool used;
} mod_seen_t;

/* A bad message a sender got the ack of. */
typedef struct mod_acked {
    int64_t seq;
    int64_t ts_ms;   /* stored, wall clock (the ack's ts) */
    int64_t sent_ns; /* CLOCK_MONOTONIC of the send */
    char id[BENCH_MSG_ID_MAX];
    uint8_t id_len; /* 0: matched by seq alone */
    uint8_t phase;
    bool used;
} mod_acked_t;

typedef struct conn {
    int fd;
    uint32_t id;   /* in the plan */
    uint32_t room; /* in the plan */
    uint8_t state, gw, attempts;
    bool member, sender;
    bool synced;    /* joined arrived: gaps count from here */
    bool has_since; /* the next join carries since = last_seq */
    bool want_out;  /* EPOLLOUT is on */
    bool storm;     /* waiting to resume after the storm */
    int64_t deadline_ns, start_ns, join_ns, storm_at_ns;
    int64_t last_seq, replay_until;
    uint64_t seen; /* bit i: last_seq - i was received */
    unsigned char *rbuf, *wbuf;
    size_t rcap, wcap; /* for chat_array_grow */
    uint32_t rlen, wlen;
    char accept[CHAT_WS_ACCEPT_LEN + 1];
    out_slot_t *ring; /* senders only */
    uint32_t next_n, outstanding;
    mod_seen_t *mod_seen;   /* members, with --bad-every: BENCH_MOD_SEEN entries */
    mod_acked_t *mod_acked; /* senders that are members, with --bad-every: BENCH_MOD_ACKED */
    uint32_t mod_seen_next, mod_acked_next; /* where the next entry goes (round) */
} conn_t;

typedef struct room {
    int64_t max_acked; /* highest seq acked to our senders */
    uint32_t rr;       /* next sender, round robin */
    int64_t next_ns;
    uint32_t typing_rr; /* next member to type, round robin */
    int64_t typing_next_ns;
} room_t;

typedef struct worker {
    const bench_plan_t *plan;
    const bench_opts_t *opts;
    uint32_t index;
    int chan, ep;
    uint32_t room_lo, room_hi, conn_lo, nconns;
    conn_t *conns;
    room_t *rooms; /* room_lo .. room_hi */
    bench_timer_heap_t sends, starts, typings;
    double typing_interval_ns; /* per room: a member's typing period / members */
    uint32_t phase;
    double rate, interval_ns;
    uint32_t inflight, inflight_max;
    bool storm_active, quit;
    int64_t now;
    int64_t op_timeout_ns;
    uint64_t rng;
    struct sockaddr_in src;
    bench_counters_t c;
    bench_phase_stats_t *ph; /* BENCH_MAX_PHASES */
    uint64_t phases_used;    /* bit per phase */
    char pad[4000];          /* the filler of message texts */
} worker_t;

/* conn.c */
int64_t bench_now_ns(void);
uint64_t bench_rng_next(worker_t *w);
void bench_conn_start(worker_t *w, conn_t *c);
void bench_conn_on_event(worker_t *w, conn_t *c, uint32_t events);
void bench_conn_send_msg(worker_t *w, conn_t *c);
/* A typing frame in c's room (a member that is ready; counted in the phase). */
void bench_conn_send_typing(worker_t *w, conn_t *c);
/* Closes c at the client's will (the storm): a close frame, then the socket. */
void bench_conn_hang_up(worker_t *w, conn_t *c);
/* Ends set-up steps that ran out of time. */
void bench_conn_check_timeout(worker_t *w, conn_t *c);

#endif
