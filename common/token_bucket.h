/* A token bucket for rate limits: `rate` tokens per second up to `burst`. A plain struct
 * (no allocation) so it can live inside a per-connection object; not thread-safe. */
#ifndef CHAT_COMMON_TOKEN_BUCKET_H
#define CHAT_COMMON_TOKEN_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

typedef struct chat_token_bucket {
    double rate;   /* tokens per second */
    double burst;  /* capacity */
    double tokens; /* current content */
    int64_t last_us;
} chat_token_bucket_t;

/* Starts full. now_us is any monotonic clock in microseconds. */
void chat_token_bucket_init(chat_token_bucket_t *tb, double rate, double burst, int64_t now_us);

/* Changes the rate and the capacity, for a limit that is read again now and then: the new
 * ones count since the last take (when the limit changed in between is not known), and the
 * content is cut to the new capacity (a lowered limit applies at once). */
void chat_token_bucket_set(chat_token_bucket_t *tb, double rate, double burst);

/* Refills for the time since the last call and takes one token. Returns false (taking
 * nothing) if the bucket is empty. */
bool chat_token_bucket_take(chat_token_bucket_t *tb, int64_t now_us);

#endif
