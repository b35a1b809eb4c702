/* Exponential backoff (see backoff.h). */
#include "common/backoff.h"

chat_backoff_t chat_backoff_make(int64_t first_ms, int64_t max_ms)
{
    if (first_ms < 1)
        first_ms = 1;
    if (max_ms < first_ms)
        max_ms = first_ms;
    return (chat_backoff_t){.first_ms = first_ms, .max_ms = max_ms};
}

int64_t chat_backoff_next(chat_backoff_t *b)
{
    if (b->last_ms == 0)
        b->last_ms = b->first_ms;
    else
        b->last_ms = b->last_ms > b->max_ms / 2 ? b->max_ms : b->last_ms * 2;
    b->attempts++;
    return b->last_ms;
}

void chat_backoff_reset(chat_backoff_t *b)
{
    b->last_ms = 0;
    b->attempts = 0;
}
