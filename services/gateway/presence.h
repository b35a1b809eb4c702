/* Presence and typing leave the gateway as room events on chat.events (key tenant/room),
 * which broadcast fans out to the room's gateways like messages. Presence changes are found
 * by the registry's scripts (registry.h) on the worker threads; typing frames come from the
 * loop, already throttled there (rooms.h). Both are best effort: a lost typing is harmless,
 * and a client learns who is online from `joined.online`. */
#ifndef CHAT_GATEWAY_PRESENCE_H
#define CHAT_GATEWAY_PRESENCE_H

#include <stdbool.h>

#include "services/gateway/gateway.h"
#include "services/gateway/registry.h"

/* How often a user's typing in a room is forwarded at most (per gateway). */
#define GW_TYPING_INTERVAL_US (2 * 1000 * 1000)

/* The registry's presence listener of this gateway: every change becomes a presence event. */
gw_registry_presence_t gw_presence_listener(gw_gateway_t *gw);

/* gw_registry_presence_t.changed (ud = the gateway): produces the presence event, counts
 * it, and logs users that went offline because their members expired. Any thread. */
void gw_presence_changed(void *gateway, const char *tenant, const char *room, const char *user,
                         bool online, bool expired);

/* A typing event of user (display name may be NULL or "") in tenant/room, produced now.
 * Loop thread. Returns the produce error (counted). */
chat_err_t gw_presence_typing(gw_gateway_t *gw, const char *tenant, const char *room,
                              const char *user, const char *name);

#endif
