/* Delivering chat.deliver to the sockets. A consumer thread reads this gateway's own
 * partition (manual assignment, no group, from the end: a restarted gateway has no
 * subscribers and clients resume with since), decodes each batch, serialises every item's
 * frame once into a shared buffer and hands the items to the loop through the inbox
 * (bounded, so a stalled loop slows the consumer instead of growing memory). On the loop,
 * gw_deliver_route queues each item to the sockets of its room, or to the connections it
 * names. */
#ifndef CHAT_GATEWAY_DELIVER_H
#define CHAT_GATEWAY_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "common/deliver_codec.h"
#include "common/err.h"
#include "common/metrics.h"
#include "services/gateway/outq.h"
#include "services/gateway/inbox.h"

/* One item for the loop. The loop's handler (conf.complete) reads the fields; destroy
 * frees everything. */
typedef struct gw_delivery {
    gw_task_t task;
    char *tenant;
    char *room;
    int64_t msg_seq;   /* gw_rooms_deliver's order: a msg's seq, minus an update's useq, else 0 */
    char *except_user; /* NULL, or the user whose sockets skip it (a typing frame) */
    char **conns;      /* NULL: every subscriber of tenant/room */
    size_t nconns;
    gw_buf_t *buf; /* the serialised frame */
    int64_t ts_ms; /* a msg item's sent, else its frame's ts (ms since the epoch), else 0 */
    char *cid;     /* an ack's or error's cid (the send it answers), else NULL */
    /* NULL, or "removed" / "deleted": after the frame, the subscriptions to the room of
     * end_user (removed) or of everyone (deleted) end with `left` {room, reason: end} */
    const char *end; /* static */
    char *end_user;
} gw_delivery_t;

/* Builds a delivery from a decoded item, serialising its frame. NULL if out of memory.
 * The task's complete is set to complete. */
gw_delivery_t *gw_delivery_new(const chat_deliver_item_t *item,
                               void (*complete)(gw_task_t *t, void *loop_ctx));

typedef struct gw_deliver gw_deliver_t;

typedef struct gw_deliver_conf {
    const char *brokers;
    const char *topic; /* chat.deliver as configured */
    int32_t partition; /* the gateway's (chat_gateway_index_partition) */
    int connect_timeout_ms;
    chat_metrics_t *metrics;
    gw_inbox_t *inbox;
    void (*complete)(gw_task_t *t, void *loop_ctx); /* the loop's handler: gw_deliver_route */
} gw_deliver_conf_t;

/* Creates the consumer (failing with its error if Kafka is unreachable within the
 * timeout) and starts the thread. */
chat_err_t gw_deliver_start(const gw_deliver_conf_t *conf, gw_deliver_t **out);

/* Stops the thread (within a poll interval) and closes the consumer. Accepts NULL. */
void gw_deliver_stop(gw_deliver_t *d);

/* The gateway's delivery handler (gw_deliver_conf_t.complete; loop_ctx is the gateway): an
 * item without conns goes to every subscription of its room (through the room table's
 * pending/active state and seq filter), one with conns to those connections of its tenant.
 * Counts what was queued, or the item as unrouted. */
void gw_deliver_route(gw_task_t *t, void *loop_ctx);

#endif
