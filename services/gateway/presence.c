/* Room events to chat.events (see presence.h): presence changes the registry found, and
 * typing. */
#include "services/gateway/presence.h"

#include "common/clock.h"
#include "common/events.h"
#include "common/log.h"

gw_registry_presence_t gw_presence_listener(gw_gateway_t *gw)
{
    return (gw_registry_presence_t){.changed = gw_presence_changed, .ud = gw};
}

void gw_presence_changed(void *gateway, const char *tenant, const char *room, const char *user,
                         bool online, bool expired)
{
    gw_gateway_t *gw = gateway;
    chat_event_t ev = {
        .type = CHAT_EV_PRESENCE,
        .tenant = tenant,
        .room = room,
        .user = user,
        .online = online,
        .has_online = true,
        .ts = chat_clock_wall_ms(),
        .has_ts = true,
    };
    chat_err_t err = gw->inbound != NULL ? gw_inbound_event(gw->inbound, &ev) : CHAT_ERR_INVALID;
    if (err == CHAT_OK)
        chat_counter_inc(gw->stats.presence_events[online ? 1 : 0]);
    if (expired) {
        chat_counter_inc(gw->stats.presence_expired);
        /* Only after a gateway died or lost Redis: rare, and what an operator looks for. */
        chat_log_info("user offline: their gateways stopped refreshing the registration",
                      CHAT_F_STR("tenant", tenant), CHAT_F_STR("room", room),
                      CHAT_F_STR("user", user), CHAT_F_ERR(err));
    } else if (err != CHAT_OK) {
        chat_log_warn("presence event not produced", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("room", room), CHAT_F_STR("user", user),
                      CHAT_F_BOOL("online", online), CHAT_F_ERR(err));
    }
}

chat_err_t gw_presence_typing(gw_gateway_t *gw, const char *tenant, const char *room,
                              const char *user, const char *name)
{
    chat_event_t ev = {
        .type = CHAT_EV_TYPING,
        .tenant = tenant,
        .room = room,
        .user = user,
        .name = name != NULL && *name != '\0' ? name : NULL,
        .ts = chat_clock_wall_ms(),
        .has_ts = true,
    };
    chat_err_t err = gw_inbound_event(gw->inbound, &ev);
    chat_counter_inc(err == CHAT_OK ? gw->stats.typing_forwarded : gw->stats.typing_failed);
    return err;
}
