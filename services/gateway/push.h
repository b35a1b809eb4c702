/* The push frames of the client protocol (push_subscribe, push_unsubscribe, push_prefs):
 * checked on the loop (the endpoint against the egress policy, the keys as Web Push needs
 * them), then stored in MongoDB (common/notify_store.h) on the worker of the user's shard,
 * so that one user's frames are stored in the order they came; answered `ok` on the loop. */
#ifndef CHAT_GATEWAY_PUSH_H
#define CHAT_GATEWAY_PUSH_H

#include <stddef.h>

#include "services/gateway/gateway.h"

/* gw_session_ops_t.submit_push: CHAT_ERR_INVALID with the reason in why for a frame that
 * cannot be stored (bad endpoint, keys or room), CHAT_ERR_NOMEM if the job could not be made;
 * else CHAT_OK and the answer comes through gw_session_push_done. Loop only. */
chat_err_t gw_push_submit(gw_gateway_t *gw, const gw_push_req_t *req, char *why, size_t whylen);

#endif
