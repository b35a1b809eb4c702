/* The drain schedule (see drain.h). */
#include "services/gateway/drain.h"

size_t gw_drain_batch(size_t total, size_t done, size_t open, int64_t elapsed_ms, int64_t window_ms,
                      int64_t tick_ms)
{
    if (open == 0)
        return 0;
    if (tick_ms < 1)
        tick_ms = 1;
    if (elapsed_ms < 0)
        elapsed_ms = 0;
    int64_t by = elapsed_ms + tick_ms; /* the end of this step */
    if (by >= window_ms)
        return open;
    /* total * by may not fit in 64 bits only for absurd counts: then close them all */
    if (total > (size_t)(UINT64_MAX / 2 / (uint64_t)by))
        return open;
    uint64_t due = ((uint64_t)total * (uint64_t)by + (uint64_t)window_ms - 1) / (uint64_t)window_ms;
    if (due <= done)
        return 0;
    uint64_t k = due - done;
    return k > open ? open : (size_t)k;
}
