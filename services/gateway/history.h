/* Paging a room's history (the history frame): one page of stored messages, read and built
 * into the history frame on a worker, queued to the session on the loop. */
#ifndef CHAT_GATEWAY_HISTORY_H
#define CHAT_GATEWAY_HISTORY_H

#include "common/err.h"
#include "services/gateway/gateway.h"

/* Carries out req (gw_session_ops_t.submit_history); the answer comes through
 * gw_session_history_done. CHAT_ERR_NOMEM if the job could not be made (nothing was
 * submitted). */
chat_err_t gw_history_submit(gw_gateway_t *gw, const gw_history_req_t *req);

#endif
