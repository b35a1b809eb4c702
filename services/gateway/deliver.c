/* Delivering to the sockets (see deliver.h): the chat.deliver consumer thread, which turns
 * each item into a delivery for the loop, and the loop's routing of each delivery to the
 * sockets of its room or to the connections it names. Invalid records are logged, counted
 * and skipped: the producer (broadcast) validated them, so retrying cannot help. */
#include "services/gateway/deliver.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/log.h"
#include "services/gateway/gateway.h"

#define POLL_BATCH 64
#define POLL_TIMEOUT_MS 200
#define DELIVER_ERR_MAX 160

struct gw_deliver {
    chat_bus_consumer_t *consumer;
    pthread_t thread;
    atomic_bool stop;
    gw_inbox_t *inbox;
    void (*complete)(gw_task_t *t, void *loop_ctx);
    chat_counter_t *items;
    chat_counter_t *invalid;
};

static void delivery_destroy(gw_task_t *t)
{
    gw_delivery_t *d = (gw_delivery_t *)t;
    for (size_t i = 0; i < d->nconns; i++)
        free(d->conns[i]);
    free(d->conns);
    free(d->tenant);
    free(d->room);
    free(d->except_user);
    free(d->end_user);
    free(d->cid);
    gw_buf_unref(d->buf);
    free(d);
}

/* What the room table's filters order the item by (gw_rooms_deliver): a msg's seq, minus an
 * update's useq (broadcast puts the useq in an update item's seq), 0 for anything else. An ack
 * may carry the seq of a message that was already sent (proto/topics/chat.deliver.md), and
 * must not be filtered away by it. */
static int64_t item_order(const chat_deliver_item_t *item)
{
    if (strcmp(item->frame_type, "msg") == 0)
        return item->seq;
    if (strcmp(item->frame_type, "update") == 0)
        return -item->seq;
    return 0;
}

static bool conns_copy(gw_delivery_t *d, const chat_deliver_item_t *item)
{
    if (item->nconns == 0)
        return true;
    d->conns = calloc(item->nconns, sizeof *d->conns);
    if (d->conns == NULL)
        return false;
    for (size_t i = 0; i < item->nconns; i++) {
        d->conns[i] = strdup(item->conns[i]);
        if (d->conns[i] == NULL)
            return false;
        d->nconns++;
    }
    return true;
}

/* What the metrics need of an item, read on the consumer thread: when a msg item's send was
 * received (its sent; from older producers, the frame's ts: when it was stored), the cid of
 * an ack or error addressed to connections (the send it answers). False if out of memory. */
static bool timing_fields(gw_delivery_t *d, const chat_deliver_item_t *item)
{
    bool msg = strcmp(item->frame_type, "msg") == 0;
    bool answer = item->nconns > 0 &&
                  (strcmp(item->frame_type, "ack") == 0 || strcmp(item->frame_type, "error") == 0);
    if (msg && item->sent > 0) {
        d->ts_ms = item->sent; /* no need to parse the frame */
        return true;
    }
    if (!msg && !answer)
        return true;
    cJSON *f = cJSON_ParseWithLength(item->frame_json, item->frame_len);
    if (f == NULL)
        return true; /* only the timing is lost; the frame goes out as it is */
    bool ok = true;
    if (msg) {
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(f, "ts");
        if (cJSON_IsNumber(ts))
            d->ts_ms = (int64_t)ts->valuedouble;
    } else {
        const cJSON *cid = cJSON_GetObjectItemCaseSensitive(f, "cid");
        if (cJSON_IsString(cid) && (d->cid = strdup(cid->valuestring)) == NULL)
            ok = false;
    }
    cJSON_Delete(f);
    return ok;
}

gw_delivery_t *gw_delivery_new(const chat_deliver_item_t *item,
                               void (*complete)(gw_task_t *t, void *loop_ctx))
{
    gw_delivery_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->task.complete = complete;
    d->task.destroy = delivery_destroy;
    d->tenant = strdup(item->tenant);
    d->room = strdup(item->room);
    d->msg_seq = item_order(item);
    d->buf = gw_buf_new(item->frame_json, item->frame_len); /* as broadcast wrote it */
    if (item->except_user != NULL)
        d->except_user = strdup(item->except_user);
    if (item->end != NULL) {
        d->end = strcmp(item->end, "removed") == 0 ? "removed" : "deleted";
        if (item->end_user != NULL)
            d->end_user = strdup(item->end_user);
    }
    if (d->tenant == NULL || d->room == NULL || d->buf == NULL || !conns_copy(d, item) ||
        (item->except_user != NULL && d->except_user == NULL) ||
        (item->end_user != NULL && d->end_user == NULL) || !timing_fields(d, item)) {
        delivery_destroy(&d->task);
        return NULL;
    }
    return d;
}

/* Decodes one record and queues its items; false if the gateway is stopping. */
static bool record_handle(gw_deliver_t *dl, const chat_bus_record_t *rec)
{
    chat_deliver_t batch;
    char why[DELIVER_ERR_MAX];
    if (chat_deliver_decode(rec->value, rec->len, &batch, why, sizeof why) != CHAT_OK) {
        chat_counter_inc(dl->invalid);
        chat_log_warn("invalid chat.deliver record skipped", CHAT_F_INT("offset", rec->offset),
                      CHAT_F_STR("reason", why));
        return true;
    }
    bool running = true;
    for (size_t i = 0; i < batch.nitems && running; i++) {
        gw_delivery_t *d = gw_delivery_new(&batch.items[i], dl->complete);
        if (d == NULL) {
            chat_log_error("delivery dropped: out of memory");
            continue;
        }
        chat_counter_inc(dl->items);
        running = gw_inbox_push_bounded(dl->inbox, &d->task, &dl->stop);
    }
    chat_deliver_clear(&batch);
    return running;
}

static void *deliver_main(void *arg)
{
    gw_deliver_t *dl = arg;
    chat_bus_record_t recs[POLL_BATCH];
    while (!atomic_load(&dl->stop)) {
        size_t n = chat_bus_consumer_poll(dl->consumer, recs, POLL_BATCH, POLL_TIMEOUT_MS);
        for (size_t i = 0; i < n; i++) {
            if (!record_handle(dl, &recs[i]))
                break;
        }
        chat_bus_records_release(recs, n);
    }
    return NULL;
}

chat_err_t gw_deliver_start(const gw_deliver_conf_t *conf, gw_deliver_t **out)
{
    gw_deliver_t *dl = calloc(1, sizeof *dl);
    if (dl == NULL)
        return CHAT_ERR_NOMEM;
    atomic_init(&dl->stop, false);
    dl->inbox = conf->inbox;
    dl->complete = conf->complete;
    dl->items =
        chat_metrics_counter(conf->metrics, "chat_gateway_deliver_items_total",
                             "Items read from this gateway's chat.deliver partition.", NULL);
    dl->invalid = chat_metrics_counter(conf->metrics, "chat_gateway_deliver_invalid_total",
                                       "chat.deliver records skipped as invalid.", NULL);
    chat_bus_consumer_conf_t cc = {
        .brokers = conf->brokers,
        .client_id = "chat-gateway",
        .assign_topic = conf->topic,
        .assign_partition = conf->partition,
        .assign_offset = CHAT_BUS_OFFSET_END,
        .connect_timeout_ms = conf->connect_timeout_ms,
        .metrics = conf->metrics,
    };
    chat_err_t err = chat_bus_consumer_new(&cc, &dl->consumer);
    if (err != CHAT_OK) {
        free(dl);
        return err;
    }
    if (pthread_create(&dl->thread, NULL, deliver_main, dl) != 0) {
        chat_bus_consumer_close(dl->consumer);
        free(dl);
        return CHAT_ERR_IO;
    }
    *out = dl;
    return CHAT_OK;
}

void gw_deliver_stop(gw_deliver_t *d)
{
    if (d == NULL)
        return;
    atomic_store(&d->stop, true);
    pthread_join(d->thread, NULL);
    chat_bus_consumer_close(d->consumer);
    free(d);
}

/* ---- on the loop: to the sockets ---- */

/* gw_rooms_end's callback: the owner is a session (server.c subscribes sessions). */
static void subscription_ended(void *ud, void *owner)
{
    const gw_delivery_t *d = ud;
    gw_session_room_ended(owner, d->room, d->end);
}

/* After a notice that ends subscriptions (its item's end): the removed member's, or everyone's
 * in a deleted room, each told with `left` {room, reason}. */
static void deliver_ends(gw_gateway_t *gw, const gw_delivery_t *d)
{
    size_t n =
        gw_rooms_end(gw->rooms, d->tenant, d->room, d->end_user, subscription_ended, (void *)d);
    if (n == SIZE_MAX)
        chat_log_error("subscriptions not ended: out of memory", CHAT_F_STR("tenant", d->tenant),
                       CHAT_F_STR("room", d->room), CHAT_F_STR("end", d->end));
    else if (n > 0)
        chat_log_info("subscriptions ended by a notice", CHAT_F_STR("tenant", d->tenant),
                      CHAT_F_STR("room", d->room), CHAT_F_STR("end", d->end),
                      CHAT_F_INT("subscriptions", (int64_t)n));
}

/* The item's frame queued to a connection it names; an ack of a send the connection is
 * waiting for is timed (chat_gateway_send_ack_seconds). Returns 1 if queued. */
static size_t deliver_to_conn(gw_gateway_t *gw, const gw_delivery_t *d, gw_session_t *s)
{
    int64_t received_us = d->cid != NULL ? gw_session_send_answered(s, d->cid) : -1;
    if (!gw_session_enqueue(s, gw_buf_ref(d->buf)))
        return 0;
    if (received_us >= 0 && d->buf->stype == GW_S_ACK)
        gw_stats_observe_seconds(gw->stats.send_ack_seconds,
                                 (double)(chat_clock_mono_us() - received_us) / 1e6);
    return 1;
}

void gw_deliver_route(gw_task_t *t, void *loop_ctx)
{
    gw_delivery_t *d = (gw_delivery_t *)t;
    gw_gateway_t *gw = loop_ctx;
    size_t taken = 0;
    if (d->nconns == 0) {
        taken = gw_rooms_deliver_except(gw->rooms, d->tenant, d->room, d->buf, d->msg_seq,
                                        d->except_user);
        if (d->ts_ms > 0 && taken > 0) {
            double late = (double)(chat_clock_wall_ms() - d->ts_ms) / 1000.0;
            /* per delivery, as the SLO counts them */
            gw_stats_observe_seconds_n(gw->stats.deliver_seconds, late, taken);
        }
    } else {
        for (size_t i = 0; i < d->nconns; i++) {
            gw_session_t *s = gw_gateway_session(gw, d->conns[i]);
            /* Nothing crosses tenants, not even a misaddressed ack. */
            if (s == NULL || strcmp(gw_session_tenant(s), d->tenant) != 0)
                continue;
            taken += deliver_to_conn(gw, d, s);
        }
    }
    if (taken > 0)
        chat_counter_add(gw->stats.deliveries, taken);
    else
        chat_counter_inc(gw->stats.unrouted);
    if (d->end != NULL)
        deliver_ends(gw, d);
}
