/* The schedule of a gateway's drain (SIGTERM with CHAT_GATEWAY_DRAIN > 0): the open
 * connections are closed with 1012 a few at a time, spread evenly over the drain window, so
 * that their clients reconnect (to the other gateways) over that window rather than all at
 * once. server.c runs it; this is the arithmetic, without I/O. */
#ifndef CHAT_GATEWAY_DRAIN_H
#define CHAT_GATEWAY_DRAIN_H

#include <stddef.h>
#include <stdint.h>

/* The drain's step: a batch of closes every this many ms. */
#define GW_DRAIN_TICK_MS 100

/* How many connections to close at the drain step that starts elapsed_ms after the drain
 * began (a step every tick_ms, window_ms in all), so that the closes spread evenly over the
 * window: as many as bring the closes made so far (done) up to the share of total (the
 * connections open when the drain began) due by the end of this step,
 * ceil(total * (elapsed + tick) / window); at the last step (elapsed + tick >= window),
 * every one still open. Never more than open (clients may leave by themselves meanwhile). */
size_t gw_drain_batch(size_t total, size_t done, size_t open, int64_t elapsed_ms, int64_t window_ms,
                      int64_t tick_ms);

#endif
