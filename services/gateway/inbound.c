/* Sending to chat.inbound (see inbound.h): the producer with its delivery reports, and the
 * loop's handling of a send that failed. */
#include "services/gateway/inbound.h"

#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/events.h"
#include "common/contract.h"
#include "common/log.h"
#include "services/gateway/gateway.h"

struct gw_inbound {
    chat_bus_producer_t *producer;
    char *topic;
    char *gw_id;
    gw_inbox_t *inbox;
    gw_inbound_failed_fn on_failed;
};

/* Travels with each record as the delivery report's opaque; becomes a loop task if the
 * record failed. */
typedef struct send_ticket {
    gw_task_t task;
    gw_inbound_failed_fn on_failed;
    char *conn;
    char *cid;
} send_ticket_t;

static void ticket_destroy(gw_task_t *t)
{
    send_ticket_t *k = (send_ticket_t *)t;
    free(k->conn);
    free(k->cid);
    free(k);
}

static void ticket_complete(gw_task_t *t, void *loop_ctx)
{
    send_ticket_t *k = (send_ticket_t *)t;
    k->on_failed(loop_ctx, k->conn, k->cid);
}

static send_ticket_t *ticket_new(gw_inbound_failed_fn on_failed, const char *conn, const char *cid)
{
    send_ticket_t *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->task.complete = ticket_complete;
    k->task.destroy = ticket_destroy;
    k->on_failed = on_failed;
    k->conn = strdup(conn);
    k->cid = strdup(cid);
    if (k->conn == NULL || k->cid == NULL) {
        ticket_destroy(&k->task);
        return NULL;
    }
    return k;
}

/* Delivery report, on the producer's poll thread. */
static void on_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                        int32_t partition, int64_t offset)
{
    (void)partition;
    (void)offset;
    gw_inbound_t *in = ud;
    send_ticket_t *k = opaque;
    if (k == NULL)
        return;
    if (err == CHAT_OK) {
        ticket_destroy(&k->task);
        return;
    }
    chat_log_warn("send not delivered to chat.inbound", CHAT_F_STR("conn", k->conn),
                  CHAT_F_STR("cid", k->cid), CHAT_F_STR("reason", reason), CHAT_F_ERR(err));
    gw_inbox_push(in->inbox, &k->task);
}

chat_err_t gw_inbound_new(const gw_inbound_conf_t *conf, gw_inbound_t **out)
{
    gw_inbound_t *in = calloc(1, sizeof *in);
    if (in == NULL)
        return CHAT_ERR_NOMEM;
    in->gw_id = strdup(conf->gw_id);
    in->topic = strdup(conf->topic);
    in->inbox = conf->inbox;
    in->on_failed = conf->on_failed;
    chat_bus_producer_conf_t pc = {
        .brokers = conf->brokers,
        .client_id = "chat-gateway",
        /* linger.ms 0: a send is one small record and the client waits for its ack, so the
         * gateway hop adds no batching delay; records that arrive while a request is in
         * flight are still batched by librdkafka. */
        .linger_ms = 0,
        .poll_thread = true,
        .on_delivery = on_delivery,
        .ud = in,
        .connect_timeout_ms = conf->connect_timeout_ms,
        .metrics = conf->metrics,
        /* Sends are produced on the event loop: waiting for room would freeze every socket.
         * A full queue fails the send at once (the client is told to resend). */
        .queue_full_wait_ms = CHAT_BUS_NO_WAIT,
    };
    chat_err_t err = in->gw_id != NULL && in->topic != NULL
                         ? chat_bus_producer_new(&pc, &in->producer)
                         : CHAT_ERR_NOMEM;
    if (err != CHAT_OK) {
        free(in->gw_id);
        free(in->topic);
        free(in);
        return err;
    }
    *out = in;
    return CHAT_OK;
}

chat_err_t gw_inbound_send(gw_inbound_t *in, const char *tenant, const char *room, const char *user,
                           const char *name, const char *cid, const char *text, const char *conn,
                           int64_t ts)
{
    chat_event_t ev = {
        .type = CHAT_EV_SEND,
        .tenant = tenant,
        .room = room,
        .user = user,
        .name = name != NULL && *name != '\0' ? name : NULL,
        .cid = cid,
        .text = text,
        .ts = ts,
        .has_ts = true,
        .origin_gw = in->gw_id,
        .origin_conn = conn,
    };
    char key[CHAT_ROOM_KEY_MAX];
    int keylen = chat_room_key(tenant, room, key, sizeof key);
    char *value = NULL;
    size_t len = 0;
    chat_err_t err = keylen > 0 ? chat_event_encode(&ev, &value, &len) : CHAT_ERR_INVALID;
    if (err != CHAT_OK) {
        chat_log_error("send event not encoded", CHAT_F_ERR(err));
        return err;
    }
    send_ticket_t *k = ticket_new(in->on_failed, conn, cid);
    err = k != NULL ? chat_bus_produce(in->producer, in->topic, CHAT_BUS_PARTITION_ANY, key,
                                       (size_t)keylen, value, len, k)
                    : CHAT_ERR_NOMEM;
    if (err != CHAT_OK && k != NULL)
        ticket_destroy(&k->task);
    free(value);
    return err;
}

chat_err_t gw_inbound_read(gw_inbound_t *in, const char *tenant, const char *room, const char *user,
                           int64_t seq, const char *rid, const char *conn, int64_t ts)
{
    chat_event_t ev = {
        .type = CHAT_EV_READ,
        .tenant = tenant,
        .room = room,
        .user = user,
        .seq = seq,
        .has_seq = true,
        .rid = rid,
        .ts = ts,
        .has_ts = true,
        .origin_gw = in->gw_id,
        .origin_conn = conn,
    };
    char key[CHAT_ROOM_KEY_MAX];
    int keylen = chat_room_key(tenant, room, key, sizeof key);
    char *value = NULL;
    size_t len = 0;
    chat_err_t err = keylen > 0 ? chat_event_encode(&ev, &value, &len) : CHAT_ERR_INVALID;
    if (err != CHAT_OK) {
        chat_log_error("read event not encoded", CHAT_F_ERR(err));
        return err;
    }
    /* No ticket: on_delivery logs nothing for a read; a lost mark is overtaken by the next. */
    err = chat_bus_produce(in->producer, in->topic, CHAT_BUS_PARTITION_ANY, key, (size_t)keylen,
                           value, len, NULL);
    free(value);
    return err;
}

void gw_inbound_free(gw_inbound_t *in)
{
    if (in == NULL)
        return;
    chat_bus_producer_destroy(in->producer);
    free(in->gw_id);
    free(in->topic);
    free(in);
}

void gw_inbound_on_failed(void *loop_ctx, const char *conn, const char *cid)
{
    gw_gateway_t *gw = loop_ctx;
    chat_counter_inc(gw->stats.send_failures);
    gw_session_t *s = gw_gateway_session(gw, conn);
    if (s != NULL)
        gw_session_send_failed(s, cid);
}
