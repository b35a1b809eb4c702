/* The api service's way into the room's stream (inbound.c): its chat.inbound producer. The
 * functions handlers use (api_inbound_produce, api_reply_wait, api_origin_conn_new,
 * api_redis_take, api_event_new/produce, api_notices_produce) are declared in api.h. */
#ifndef CHAT_API_INBOUND_H
#define CHAT_API_INBOUND_H

#include "common/err.h"
#include "common/metrics.h"
#include "services/api/api.h"

/* Creates ctx->producer (idempotent, acks=all, a small linger, delivery reports on its own
 * thread). Returns CHAT_ERR_CONFIG on a bad KAFKA_* variable, CHAT_ERR_TIMEOUT if no broker
 * answered within connect_timeout_ms. */
chat_err_t api_inbound_open(api_ctx_t *ctx, const char *brokers, int linger_ms,
                            int connect_timeout_ms);

/* Flushes and destroys ctx->producer. Accepts a ctx without one. */
void api_inbound_close(api_ctx_t *ctx);

/* Frees the calling thread's Redis connection (api_redis_take), for threads that end without
 * going through pthread_exit's destructors (main). */
void api_redis_release(void);

#endif
