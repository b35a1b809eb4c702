/* The libwebsockets side of the gateway (server.c): the listener, the service loop that owns
 * every socket and session, its timers and the graceful shutdown. */
#ifndef CHAT_GATEWAY_SERVER_H
#define CHAT_GATEWAY_SERVER_H

#include "common/err.h"
#include "services/gateway/gateway.h"

/* Sets up the session environment and the room table's sink. Call before gw_server_run. */
chat_err_t gw_server_prepare(gw_gateway_t *gw);

/* Listens on cfg addr:port and serves until a stop is requested (SIGTERM/SIGINT), then
 * closes every socket with 1001 and destroys the context. CHAT_ERR_IO if the listener could
 * not be set up. */
chat_err_t gw_server_run(gw_gateway_t *gw);

/* Frees what gw_server_prepare created (after gw_server_run returned). */
void gw_server_release(gw_gateway_t *gw);

#endif
