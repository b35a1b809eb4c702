/* A binary min-heap of (time, id) pairs: what a worker does next and when (a room's next send,
 * a connection's next attempt). The caller sizes it for every id it may hold at once. */
#ifndef BENCH_TIMER_HEAP_H
#define BENCH_TIMER_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bench_timer {
    int64_t at_ns; /* CLOCK_MONOTONIC */
    uint32_t id;
} bench_timer_t;

typedef struct bench_timer_heap {
    bench_timer_t *v; /* owned: bench_timer_heap_free */
    size_t n, cap;
} bench_timer_heap_t;

/* Makes room for cap entries; false if out of memory. */
bool bench_timer_heap_init(bench_timer_heap_t *h, size_t cap);
void bench_timer_heap_free(bench_timer_heap_t *h);

/* Adds (at_ns, id); false if the heap is full. */
bool bench_timer_heap_push(bench_timer_heap_t *h, int64_t at_ns, uint32_t id);

/* The earliest entry, or NULL if empty. */
const bench_timer_t *bench_timer_heap_peek(const bench_timer_heap_t *h);

/* Removes the earliest entry into *out; false if empty. */
bool bench_timer_heap_pop(bench_timer_heap_t *h, bench_timer_t *out);

#endif
