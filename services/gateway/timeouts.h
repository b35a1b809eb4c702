/* The gateway's per-connection deadlines in O(1): the auth deadline, the keepalive check and
 * the close grace period. Every deadline of one kind has the same duration, so a FIFO per
 * kind is sorted by construction: adding appends, removing unlinks, expiry pops heads.
 * libwebsockets 4.1 keeps its timers in one sorted list and inserts by walking it from the
 * head, so with tens of thousands of connections that each carried a timer (ours, and its
 * own idle-ping timer, re-armed on every frame received), every connect and every frame paid
 * a walk of the whole list. Nodes live inside the connection's data; loop thread only. */
#ifndef CHAT_GATEWAY_TIMEOUTS_H
#define CHAT_GATEWAY_TIMEOUTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum gw_timeout_kind {
    GW_TIMEOUT_AUTH = 0,  /* the auth frame, then its verification */
    GW_TIMEOUT_KEEPALIVE, /* idle check: ping, then hang up */
    GW_TIMEOUT_CLOSE,     /* a closing socket that could not flush its close */
    GW_TIMEOUT__COUNT
} gw_timeout_kind_t;

typedef struct gw_timeout {
    struct gw_timeout *prev, *next;
    int64_t due_ms; /* monotonic */
    int kind;       /* gw_timeout_kind_t, or -1 when not queued */
} gw_timeout_t;

typedef struct gw_timeouts {
    gw_timeout_t *head[GW_TIMEOUT__COUNT], *tail[GW_TIMEOUT__COUNT];
    size_t count[GW_TIMEOUT__COUNT];
} gw_timeouts_t;

/* An empty set of queues. */
void gw_timeouts_init(gw_timeouts_t *q);

/* A node that is in no queue (call once on a zeroed node). */
void gw_timeout_init(gw_timeout_t *t);

/* Queues t (taking it out of any queue it is in) as a deadline of kind at due_ms. O(1) when
 * due_ms is not earlier than the kind's last deadline (always, for one duration per kind). */
void gw_timeouts_set(gw_timeouts_t *q, gw_timeout_t *t, gw_timeout_kind_t kind, int64_t due_ms);

/* Takes t out of its queue; no-op if it is in none. */
void gw_timeouts_clear(gw_timeouts_t *q, gw_timeout_t *t);

/* The earliest deadline due at now_ms (taken out of its queue; *kind says which it was), or
 * NULL. */
gw_timeout_t *gw_timeouts_expired(gw_timeouts_t *q, int64_t now_ms, gw_timeout_kind_t *kind);

#endif
