/* Thin layer over clock_gettime and nanosleep, so that deadlines and timestamps are computed
 * the same way everywhere (one rounding, one clock per purpose). */
#include "common/clock.h"

#include <errno.h>
#include <limits.h>
#include <time.h>

static struct timespec clock_now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts;
}

int64_t chat_clock_mono_ms(void)
{
    struct timespec ts = clock_now(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t chat_clock_mono_us(void)
{
    struct timespec ts = clock_now(CLOCK_MONOTONIC);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double chat_clock_seconds_since(int64_t start_mono_us)
{
    return (double)(chat_clock_mono_us() - start_mono_us) / 1e6;
}

int64_t chat_clock_wall_ms(void)
{
    struct timespec ts = clock_now(CLOCK_REALTIME);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* nanosleep leaves the time still to sleep in its second argument when a signal interrupts
 * it, so the loop resumes with what is left rather than starting over. */
void chat_clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec left = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        continue;
}

int chat_clock_remaining_ms(int64_t deadline_mono_ms)
{
    int64_t left = deadline_mono_ms - chat_clock_mono_ms();
    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}
