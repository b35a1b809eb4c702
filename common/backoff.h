/* The platform's retry delays: exponential backoff from a first delay, doubling up to a
 * ceiling (100 ms to 5 s by default), for a service that retries a failing server (MongoDB,
 * Redis) with the same work in hand. Plain value type, no state elsewhere: one per retry
 * loop, on the loop's thread. */
#ifndef CHAT_COMMON_BACKOFF_H
#define CHAT_COMMON_BACKOFF_H

#include <stdint.h>

#define CHAT_BACKOFF_FIRST_MS 100
#define CHAT_BACKOFF_MAX_MS 5000

typedef struct chat_backoff {
    int64_t first_ms;
    int64_t max_ms;
    int64_t last_ms; /* the delay handed out last; 0 before the first */
    int attempts;    /* delays handed out since the start or the last reset */
} chat_backoff_t;

/* A backoff that starts at first_ms and never exceeds max_ms (both at least 1; max below
 * first is raised to first). */
chat_backoff_t chat_backoff_make(int64_t first_ms, int64_t max_ms);

/* The next delay: first_ms, then twice the previous one, at most max_ms. Counts an attempt. */
int64_t chat_backoff_next(chat_backoff_t *b);

/* Starts over at first_ms (after a success). */
void chat_backoff_reset(chat_backoff_t *b);

#endif
