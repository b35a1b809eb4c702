/* Sends to chat.inbound: each client `send` becomes a `send` event (key tenant/room, origin
 * = this gateway and connection). The gateway answers nothing itself: the ack comes back
 * through chat.deliver once the message is stored. A record that librdkafka finally fails
 * to deliver is reported to the loop, which tells the client (error internal with the cid)
 * so that it resends. The same producer writes the room events of chat.events (typing,
 * presence): best effort, never told to a client. */
#ifndef CHAT_GATEWAY_INBOUND_H
#define CHAT_GATEWAY_INBOUND_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/events.h"
#include "common/metrics.h"
#include "services/gateway/inbox.h"

typedef struct gw_inbound gw_inbound_t;

/* Runs on the loop for a failed send (cid) or edit, delete or react (rid, maybe NULL). */
typedef void (*gw_inbound_failed_fn)(void *loop_ctx, const char *conn, const char *rid,
                                     const char *cid);

typedef struct gw_inbound_conf {
    const char *brokers;
    const char *topic;        /* chat.inbound as configured; copied */
    const char *events_topic; /* chat.events as configured; copied */
    const char *gw_id;        /* origin.gw */
    int connect_timeout_ms;
    /* Records outstanding this long without any acknowledged (Kafka unreachable): sends,
     * edits and reactions are refused at once (0: never) */
    int64_t stall_ms;
    chat_metrics_t *metrics;
    gw_inbox_t *inbox;
    gw_inbound_failed_fn on_failed; /* gw_inbound_on_failed (tests pass their own) */
} gw_inbound_conf_t;

/* Creates the producer; fails with its error if Kafka is unreachable within the timeout. */
chat_err_t gw_inbound_new(const gw_inbound_conf_t *conf, gw_inbound_t **out);

/* One client send. name may be NULL or "". ts is the gateway's receive time (ms). Returns
 * the produce error if the record could not be queued, CHAT_ERR_KAFKA without producing it
 * while Kafka is stalled (gw_inbound_stalled_ms at stall_ms or more). */
chat_err_t gw_inbound_send(gw_inbound_t *in, const char *tenant, const char *room, const char *user,
                           const char *name, const char *cid, const char *text, const char *conn,
                           int64_t ts);

/* One client edit, delete or react (type CHAT_EV_EDIT, CHAT_EV_DELETE or CHAT_EV_REACT; text
 * for an edit, emoji and on for a react; rid may be NULL), produced like a send: key
 * tenant/room, origin this gateway and conn. Returns the produce error if the record could not
 * be queued. */
typedef struct gw_inbound_update {
    int type; /* chat_event_type_t */
    const char *tenant;
    const char *room;
    const char *user;
    const char *id;
    const char *text;
    const char *emoji;
    bool on;
    const char *rid;
    const char *conn;
    int64_t ts;
} gw_inbound_update_t;

chat_err_t gw_inbound_update(gw_inbound_t *in, const gw_inbound_update_t *u);
/* One room event (typing, presence) to chat.events with key tenant/room. Safe from any
 * thread (the loop, the workers), never blocks: a full local queue fails at once. A record
 * that is not delivered later is logged and counted (chat_gateway_events_failed_total).
 * Returns the encode or produce error. */
chat_err_t gw_inbound_event(gw_inbound_t *in, const chat_event_t *ev);
/* One client read mark (a `read` event, key tenant/room, origin this connection). A record
 * that is finally not delivered is dropped (librdkafka logs it): the client's next read
 * moves the mark. Returns the produce error if the record could not be queued. */
chat_err_t gw_inbound_read(gw_inbound_t *in, const char *tenant, const char *room, const char *user,
                           int64_t seq, const char *rid, const char *conn, int64_t ts);

/* How long records have been outstanding without any acknowledged (0: none outstanding or
 * progress). Any thread; accepts NULL (0). */
int64_t gw_inbound_stalled_ms(gw_inbound_t *in);

/* Flushes (delivery reports still reach the inbox) and frees. Accepts NULL. */
void gw_inbound_free(gw_inbound_t *in);

/* The gateway's failed-send handler (gw_inbound_conf_t.on_failed; loop_ctx is the gateway):
 * counts the failure and tells the connection, if still open, to resend cid (or rid). */
void gw_inbound_on_failed(void *loop_ctx, const char *conn, const char *rid, const char *cid);

#endif
