/* Sending to chat.inbound and chat.events (see inbound.h): the producer with its delivery
 * reports, and the loop's handling of a send that failed. */
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
    char *events_topic;
    chat_counter_t *events_failed;
    chat_counter_t *stall_refusals; /* sends, edits and reactions refused while stalled */
    int64_t stall_ms;
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
    char *rid; /* edit, delete, react (may be NULL) */
    char *cid; /* send */
} send_ticket_t;

static void ticket_destroy(gw_task_t *t)
{
    send_ticket_t *k = (send_ticket_t *)t;
    free(k->conn);
    free(k->rid);
    free(k->cid);
    free(k);
}

static void ticket_complete(gw_task_t *t, void *loop_ctx)
{
    send_ticket_t *k = (send_ticket_t *)t;
    k->on_failed(loop_ctx, k->conn, k->rid, k->cid);
}

static send_ticket_t *ticket_new(gw_inbound_failed_fn on_failed, const char *conn, const char *rid,
                                 const char *cid)
{
    send_ticket_t *k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->task.complete = ticket_complete;
    k->task.destroy = ticket_destroy;
    k->on_failed = on_failed;
    k->conn = strdup(conn);
    k->rid = rid != NULL ? strdup(rid) : NULL;
    k->cid = cid != NULL ? strdup(cid) : NULL;
    if (k->conn == NULL || (rid != NULL && k->rid == NULL) || (cid != NULL && k->cid == NULL)) {
        ticket_destroy(&k->task);
        return NULL;
    }
    return k;
}

/* The opaque of every chat.events record: nobody waits for them. */
static char event_record;

/* Delivery report, on the producer's poll thread. */
static void on_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                        int32_t partition, int64_t offset)
{
    (void)partition;
    (void)offset;
    gw_inbound_t *in = ud;
    if (opaque == &event_record) {
        if (err != CHAT_OK) {
            chat_counter_inc(in->events_failed);
            chat_log_warn("room event not delivered to chat.events",
                          CHAT_F_STR("topic", in->events_topic), CHAT_F_STR("reason", reason),
                          CHAT_F_ERR(err));
        }
        return;
    }
    send_ticket_t *k = opaque;
    if (k == NULL)
        return;
    if (err == CHAT_OK) {
        ticket_destroy(&k->task);
        return;
    }
    chat_log_warn("send not delivered to chat.inbound", CHAT_F_STR("conn", k->conn),
                  CHAT_F_STR("cid", k->cid), CHAT_F_STR("rid", k->rid),
                  CHAT_F_STR("reason", reason), CHAT_F_ERR(err));
    gw_inbox_push(in->inbox, &k->task);
}

chat_err_t gw_inbound_new(const gw_inbound_conf_t *conf, gw_inbound_t **out)
{
    gw_inbound_t *in = calloc(1, sizeof *in);
    if (in == NULL)
        return CHAT_ERR_NOMEM;
    in->gw_id = strdup(conf->gw_id);
    in->topic = strdup(conf->topic);
    in->events_topic = strdup(conf->events_topic != NULL ? conf->events_topic : "");
    if (conf->metrics != NULL)
        in->events_failed = chat_metrics_counter(
            conf->metrics, "chat_gateway_events_failed_total",
            "Typing and presence events chat.events did not take (logged; never retried).", NULL);
    if (conf->metrics != NULL)
        in->stall_refusals = chat_metrics_counter(
            conf->metrics, "chat_gateway_kafka_stall_refusals_total",
            "Sends, edits and reactions answered error internal at once because Kafka had "
            "acknowledged nothing for CHAT_GATEWAY_KAFKA_STALL.",
            NULL);
    in->stall_ms = conf->stall_ms;
    in->inbox = conf->inbox;
    in->on_failed = conf->on_failed;
    chat_bus_producer_conf_t pc = {
        .brokers = conf->brokers,
        .client_id = "chat-gateway",
        /* linger.ms 0: a send is one small record and the client waits for its ack, so the
         * gateway hop adds no batching delay; records that arrive while a request is in
         * flight are still batched by librdkafka. Typing and presence share the producer
         * (the topic is chosen per record): they would tolerate a linger, but a second
         * producer would cost its own broker connections and thread for records that are a
         * small part of the traffic (at most one typing per user and room every 2 s). */
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
    chat_err_t err = in->gw_id != NULL && in->topic != NULL && in->events_topic != NULL
                         ? chat_bus_producer_new(&pc, &in->producer)
                         : CHAT_ERR_NOMEM;
    if (err != CHAT_OK) {
        free(in->gw_id);
        free(in->topic);
        free(in->events_topic);
        free(in);
        return err;
    }
    *out = in;
    return CHAT_OK;
}

/* Encodes ev and produces it to topic with key tenant/room and opaque as the delivery
 * report's (still the caller's if this fails); a produce that fails is counted in
 * produce_failed (may be NULL), an event that does not encode is not. */
static chat_err_t produce_encoded(gw_inbound_t *in, const char *topic, const chat_event_t *ev,
                                  void *opaque, chat_counter_t *produce_failed)
{
    char key[CHAT_ROOM_KEY_MAX];
    int keylen = chat_room_key(ev->tenant, ev->room, key, sizeof key);
    char *value = NULL;
    size_t len = 0;
    chat_err_t err = keylen > 0 ? chat_event_encode(ev, &value, &len) : CHAT_ERR_INVALID;
    if (err != CHAT_OK) {
        chat_log_error("event not encoded", CHAT_F_STR("type", chat_event_type_name(ev->type)),
                       CHAT_F_ERR(err));
        return err;
    }
    err = chat_bus_produce(in->producer, topic, CHAT_BUS_PARTITION_ANY, key, (size_t)keylen, value,
                           len, opaque);
    free(value);
    if (err != CHAT_OK && produce_failed != NULL)
        chat_counter_inc(produce_failed);
    return err;
}

/* Produces ev to chat.inbound with a ticket that reports its failure to conn with rid or
 * cid. */
static chat_err_t produce_event(gw_inbound_t *in, const chat_event_t *ev, const char *rid,
                                const char *cid)
{
    if (in->stall_ms > 0 && chat_bus_producer_stalled_ms(in->producer) >= in->stall_ms) {
        /* Kafka has acknowledged nothing for stall_ms: queueing more only delays the client's
         * answer (error internal, resend) by librdkafka's message timeout. */
        chat_counter_inc(in->stall_refusals);
        return CHAT_ERR_KAFKA;
    }
    send_ticket_t *k = ticket_new(in->on_failed, ev->origin_conn, rid, cid);
    if (k == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = produce_encoded(in, in->topic, ev, k, NULL);
    if (err != CHAT_OK)
        ticket_destroy(&k->task);
    return err;
}

chat_err_t gw_inbound_update(gw_inbound_t *in, const gw_inbound_update_t *u)
{
    chat_event_t ev = {
        .type = (chat_event_type_t)u->type,
        .tenant = u->tenant,
        .room = u->room,
        .user = u->user,
        .id = u->id,
        .rid = u->rid,
        .ts = u->ts,
        .has_ts = true,
        .origin_gw = in->gw_id,
        .origin_conn = u->conn,
    };
    if (ev.type == CHAT_EV_EDIT) {
        ev.text = u->text;
    } else if (ev.type == CHAT_EV_REACT) {
        ev.emoji = u->emoji;
        ev.on = u->on;
        ev.has_on = true;
    } else if (ev.type != CHAT_EV_DELETE) {
        return CHAT_ERR_INVALID;
    }
    return produce_event(in, &ev, u->rid, NULL);
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
    return produce_event(in, &ev, NULL, cid);
}

chat_err_t gw_inbound_event(gw_inbound_t *in, const chat_event_t *ev)
{
    return produce_encoded(in, in->events_topic, ev, &event_record, in->events_failed);
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
    /* No ticket: on_delivery logs nothing for a read; a lost mark is overtaken by the next. */
    return produce_encoded(in, in->topic, &ev, NULL, NULL);
}

int64_t gw_inbound_stalled_ms(gw_inbound_t *in)
{
    return in != NULL ? chat_bus_producer_stalled_ms(in->producer) : 0;
}

void gw_inbound_free(gw_inbound_t *in)
{
    if (in == NULL)
        return;
    chat_bus_producer_destroy(in->producer);
    free(in->gw_id);
    free(in->topic);
    free(in->events_topic);
    free(in);
}

void gw_inbound_on_failed(void *loop_ctx, const char *conn, const char *rid, const char *cid)
{
    gw_gateway_t *gw = loop_ctx;
    chat_counter_inc(gw->stats.send_failures);
    gw_session_t *s = gw_gateway_session(gw, conn);
    if (s != NULL)
        gw_session_send_failed(s, rid, cid);
}
