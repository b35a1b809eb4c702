/* Joining a room, and resuming after a reconnect (a join with `since`): the registration in
 * Redis on the room's shard worker, then the MongoDB reads (the room's latest seq and the
 * replay of the messages after `since`), then `joined` and the replay on the loop. Because
 * the registration comes first, every message is either in the replay or arrives live. */
#ifndef CHAT_GATEWAY_JOIN_H
#define CHAT_GATEWAY_JOIN_H

#include "common/err.h"
#include "services/gateway/gateway.h"

/* Carries out req (gw_session_ops_t.submit_join); the answer comes through
 * gw_session_join_done. CHAT_ERR_NOMEM if the job could not be made (nothing was
 * submitted). */
chat_err_t gw_join_submit(gw_gateway_t *gw, const gw_join_req_t *req);

/* On the loop, after a heartbeat found the gateway's registration of tenant/room lapsed (and
 * renewed it): broadcast did not send the room here for a while, so its members here may lack
 * messages and updates. Reads what the active subscriptions lack (step (2) of a join, with
 * since = the lowest seq any of them holds, at most CHAT_REPLAY_MAX messages) on a reader and
 * hands it to them through their seq and useq filters; nothing if none holds the room. */
void gw_join_catch_up(gw_gateway_t *gw, const char *tenant, const char *room);

#endif
