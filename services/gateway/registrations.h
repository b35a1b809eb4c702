/* This gateway's registrations in Redis kept up to date from the loop: a subscription that
 * went away releases its room and user, a heartbeat refreshes every room, the shutdown
 * removes them all. The jobs run the commands of registry.h on the worker of the room's
 * shard, so one room's registration changes (the join's too) reach Redis in the order the
 * loop decided them. Each worker's context is its own Redis connection. */
#ifndef CHAT_GATEWAY_REGISTRATIONS_H
#define CHAT_GATEWAY_REGISTRATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/gateway/gateway.h"

/* Worker context (gw_workers_conf_t.ctx_new/ctx_free, ud = the gateway): a chat_redis_t
 * connected to CHAT_REDIS_URL, or NULL (logged) if Redis is unreachable. */
void *gw_registrations_ctx_new(size_t index, void *gateway);
void gw_registrations_ctx_free(void *ctx, void *gateway);

/* How long a registration lives without a refresh. */
int64_t gw_registrations_ttl_ms(const gw_gateway_t *gw);

/* A subscription went away (gw_rooms_sink_t.released): removes the room (room_gone) and/or
 * the user (user_gone) from this gateway's registrations. */
void gw_registrations_release(gw_gateway_t *gw, const char *tenant, const char *room,
                              const char *user, bool room_gone, bool user_gone);

/* Refreshes the registration of every room of the table (heartbeat). */
void gw_registrations_refresh_all(gw_gateway_t *gw);

/* Removes every registration of this gateway (shutdown, best effort). */
void gw_registrations_remove_all(gw_gateway_t *gw);

#endif
