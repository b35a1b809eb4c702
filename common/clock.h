/* The process's clocks in the units the code uses: monotonic milliseconds and microseconds
 * for deadlines, timeouts and latencies, wall-clock milliseconds since the epoch for what is
 * stored or exchanged (message ts, expiry scores, token exp), and a sleep that really sleeps.
 * No state: every function is thread-safe. */
#ifndef CHAT_COMMON_CLOCK_H
#define CHAT_COMMON_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: never goes back, unrelated to the date. */
int64_t chat_clock_mono_ms(void);

/* CLOCK_MONOTONIC in microseconds. */
int64_t chat_clock_mono_us(void);

/* Seconds elapsed since start_mono_us (a chat_clock_mono_us value), for latency histograms
 * (Prometheus measures in seconds). */
double chat_clock_seconds_since(int64_t start_mono_us);

/* CLOCK_REALTIME in milliseconds since the epoch; may step when the system time is set. */
int64_t chat_clock_wall_ms(void);

/* Sleeps ms milliseconds (nothing for ms <= 0); a signal does not cut the sleep short. */
void chat_clock_sleep_ms(int64_t ms);

/* Milliseconds from now until deadline_mono_ms (a chat_clock_mono_ms value): 0 once it has
 * passed, at most INT_MAX, so the result fits a poll()-style int timeout. */
int chat_clock_remaining_ms(int64_t deadline_mono_ms);

#endif
