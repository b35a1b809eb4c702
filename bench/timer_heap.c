/* The textbook array heap: children of i at 2i+1 and 2i+2. */
#include "bench/timer_heap.h"

#include <stdlib.h>

bool bench_timer_heap_init(bench_timer_heap_t *h, size_t cap)
{
    h->n = 0;
    h->cap = cap;
    h->v = calloc(cap ? cap : 1, sizeof *h->v);
    return h->v != NULL;
}

void bench_timer_heap_free(bench_timer_heap_t *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

bool bench_timer_heap_push(bench_timer_heap_t *h, int64_t at_ns, uint32_t id)
{
    if (h->n == h->cap)
        return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent].at_ns <= at_ns)
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = (bench_timer_t){.at_ns = at_ns, .id = id};
    return true;
}

const bench_timer_t *bench_timer_heap_peek(const bench_timer_heap_t *h)
{
    return h->n ? &h->v[0] : NULL;
}

bool bench_timer_heap_pop(bench_timer_heap_t *h, bench_timer_t *out)
{
    if (h->n == 0)
        return false;
    *out = h->v[0];
    bench_timer_t last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->v[child + 1].at_ns < h->v[child].at_ns)
            child++;
        if (last.at_ns <= h->v[child].at_ns)
            break;
        h->v[i] = h->v[child];
        i = child;
    }
    if (h->n)
        h->v[i] = last;
    return true;
}
