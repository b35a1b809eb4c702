/* An action (send, edit, delete, react, read) in a room that the connection did not join and
 * whose kind the gateway does not know (no subscription of it here): the room's kind is read on
 * a worker (room_access.h), then the session acts on the frame or refuses it on the loop
 * (gw_session_act_checked). */
#ifndef CHAT_GATEWAY_ACT_CHECK_H
#define CHAT_GATEWAY_ACT_CHECK_H

#include "common/err.h"
#include "services/gateway/gateway.h"

/* Carries out req (gw_session_ops_t.submit_act_check). CHAT_ERR_NOMEM if the job could not
 * be made (nothing was submitted). */
chat_err_t gw_act_check_submit(gw_gateway_t *gw, const gw_act_req_t *req);

#endif
