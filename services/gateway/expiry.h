/* Token expiry deadlines of the connections, on a wheel of one-second slots: a connection
 * whose token expires without a refresh is closed within about a second of its exp, at O(1)
 * per connect, refresh and close whatever the mix of token lifetimes (the FIFOs of
 * timeouts.c assume one duration per kind; tokens differ per tenant). A deadline more than a
 * turn of the wheel ahead stays in its slot and is passed over until its turn comes. Nodes
 * are gw_timeout_t inside the connection's data; loop thread only. */
#ifndef CHAT_GATEWAY_EXPIRY_H
#define CHAT_GATEWAY_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "services/gateway/timeouts.h"

#define GW_EXPIRY_SLOTS 4096 /* seconds per turn: a little over an hour */

typedef struct gw_expiry {
    gw_timeout_t *slot[GW_EXPIRY_SLOTS];
    int64_t next_s; /* the first second not processed yet */
    size_t count;
} gw_expiry_t;

/* An empty wheel whose first second to process is now_s (wall clock, seconds). */
void gw_expiry_init(gw_expiry_t *w, int64_t now_s);

/* Queues t (taking it out of the wheel if it is in) to expire at exp_s (wall clock seconds);
 * an exp already past expires at the next processing. t must have been gw_timeout_init'ed. */
void gw_expiry_set(gw_expiry_t *w, gw_timeout_t *t, int64_t exp_s);

/* Takes t out of the wheel; no-op if it is not in. */
void gw_expiry_clear(gw_expiry_t *w, gw_timeout_t *t);

/* A node whose exp is at or before now_s, taken out of the wheel, or NULL once none is left. */
gw_timeout_t *gw_expiry_expired(gw_expiry_t *w, int64_t now_s);

#endif
