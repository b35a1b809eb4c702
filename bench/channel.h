/* The coordinator and its workers talk over one stream socket pair each: a message is a
 * header (type, length) and a fixed struct of that type. Both ends are forks of one binary,
 * so structs travel as they are. Writes block (the messages are small or rare); reads wait
 * with a timeout. */
#ifndef BENCH_CHANNEL_H
#define BENCH_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum bench_msg {
    /* coordinator -> worker */
    BENCH_CMD_CONNECT = 1, /* bench_cmd_connect_t: start connecting */
    BENCH_CMD_PHASE,       /* bench_cmd_phase_t: from now on send at this rate */
    BENCH_CMD_STATUS,      /* (none): answer BENCH_EV_STATUS */
    BENCH_CMD_PHASE_STATS, /* uint32_t phase: answer BENCH_EV_PHASE for it */
    BENCH_CMD_STORM,       /* bench_cmd_storm_t: drop every member, reconnect with since */
    BENCH_CMD_REPORT,      /* (none): answer BENCH_EV_COUNTERS, a BENCH_EV_PHASE per phase used,
                            * BENCH_EV_END */
    BENCH_CMD_QUIT,
    /* worker -> coordinator */
    BENCH_EV_STATUS, /* bench_status_t */
    BENCH_EV_PHASE,  /* bench_ev_phase_t */
    BENCH_EV_COUNTERS,
    BENCH_EV_END,
} bench_msg_t;

typedef struct bench_cmd_connect {
    double rate;       /* new connections/s of this worker */
    uint32_t inflight; /* connections in set-up at once */
} bench_cmd_connect_t;

typedef struct bench_cmd_phase {
    uint32_t phase;
    double rate; /* messages/s per room; 0 stops sending */
} bench_cmd_phase_t;

typedef struct bench_cmd_storm {
    int64_t start_ns;  /* CLOCK_MONOTONIC of the first reconnect */
    int64_t spread_ns; /* the last one this much later */
} bench_cmd_storm_t;

/* Sends one message; false if the peer is gone. */
bool bench_chan_send(int fd, bench_msg_t type, const void *payload, size_t len);

/* Waits up to timeout_ms (< 0: no limit) for one message; its payload goes into buf (cap
 * bytes; a larger payload is an error). Returns 1 with *type and *len set, 0 on timeout, -1 if
 * the peer is gone or broke the framing. */
int bench_chan_recv(int fd, int timeout_ms, bench_msg_t *type, void *buf, size_t cap, size_t *len);

#endif
