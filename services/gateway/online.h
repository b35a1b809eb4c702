/* The users this gateway holds, for notify's "is this user online anywhere" (docs/notify.md,
 * "Who is notified"): the Redis hash chat:gw:<id>:users counts each user's authenticated
 * connections here (common/notify_store.h). The +1 and -1 of one user go to the worker of the
 * user's shard, so they reach Redis in the order the loop decided them; the heartbeat
 * re-expires the hash with the registrations, the shutdown deletes it. */
#ifndef CHAT_GATEWAY_ONLINE_H
#define CHAT_GATEWAY_ONLINE_H

#include "services/gateway/gateway.h"

/* The worker shard of tenant/user's jobs (online counts, push frames). */
int64_t gw_online_shard(const char *tenant, const char *user);

/* At start, before any connection: deletes what a previous run of this gateway index left
 * (its own Redis connection, on the calling thread). CHAT_ERR_REDIS if Redis failed. */
chat_err_t gw_online_reset(gw_gateway_t *gw);

/* gw_session_ops_t.online: one more or one fewer connection of tenant/user. Loop. */
void gw_online_note(gw_gateway_t *gw, const char *tenant, const char *user, int delta);

/* Heartbeat: the hash lives as long as the registrations (gw_registrations_ttl_ms). Loop. */
void gw_online_refresh(gw_gateway_t *gw);

/* Shutdown: deletes the hash (best effort). Loop. */
void gw_online_remove(gw_gateway_t *gw);

#endif
