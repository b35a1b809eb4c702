/* Token bucket rate limiter: refills continuously at `rate` per second up to `burst`, one
 * token per allowed event. Time only moves it forward: a clock that steps back adds nothing,
 * and the lost interval is not counted twice when the clock catches up. */
#include "common/token_bucket.h"

/* Refills add up in floating point: without a little slack, rate x elapsed that is exactly
 * one token on paper could come out as 0.9999999 and refuse a request at the allowed rate. */
#define TOKEN_EPSILON 1e-9

void chat_token_bucket_init(chat_token_bucket_t *tb, double rate, double burst, int64_t now_us)
{
    tb->rate = rate > 0 ? rate : 0;
    tb->burst = burst > 0 ? burst : 0;
    tb->tokens = tb->burst;
    tb->last_us = now_us;
}

/* Adds the tokens earned since last_us, capped at burst. */
static void refill(chat_token_bucket_t *tb, int64_t now_us)
{
    if (now_us <= tb->last_us)
        return;
    double earned = ((double)now_us - (double)tb->last_us) / 1e6 * tb->rate;
    tb->tokens = tb->tokens + earned < tb->burst ? tb->tokens + earned : tb->burst;
    tb->last_us = now_us;
}

void chat_token_bucket_set(chat_token_bucket_t *tb, double rate, double burst)
{
    tb->rate = rate > 0 ? rate : 0;
    tb->burst = burst > 0 ? burst : 0;
    if (tb->tokens > tb->burst)
        tb->tokens = tb->burst;
}

bool chat_token_bucket_take(chat_token_bucket_t *tb, int64_t now_us)
{
    refill(tb, now_us);
    if (tb->tokens < 1.0 - TOKEN_EPSILON)
        return false;
    tb->tokens -= 1.0;
    return true;
}
