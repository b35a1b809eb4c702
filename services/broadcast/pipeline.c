/* The broadcast loop (docs/message-path.md, "Broadcast service"): per batch one Redis round
 * trip, one produce of every gateway's records, one flush, then the commit. Nothing is
 * committed before its output is on chat.deliver, so a crash anywhere replays the batch
 * (gateways drop the seqs they already sent). A batch mixes chat.messages and chat.events
 * records (one subscription to both); each topic keeps its per-room order within it. */
#include "services/broadcast/pipeline.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/signals.h"
#include "services/broadcast/fanout.h"
#include "services/broadcast/followers.h"

#define POLL_TIMEOUT_MS 200         /* how often an idle loop checks for a stop */
#define FLUSH_TIMEOUT_MS 60000      /* > message.timeout.ms (30 s): every report arrives */
#define PARTITIONS_REFRESH_MS 60000 /* chat.deliver grows when gateways are added */
#define PARTITIONS_RECHECK_MS 5000  /* sooner after a batch named an unknown gateway */
#define PARTITIONS_TIMEOUT_MS 5000
/* A typing event older than this is not delivered: clients show typing for 5 s, so a late
 * one (a replay after a restart, a backlog) would only show something that is over. */
#define TYPING_STALE_MS 10000

typedef struct pipeline_metrics {
    chat_counter_t *deliveries_msg, *deliveries_update, *deliveries_ack, *deliveries_error,
        *deliveries_read;
    chat_counter_t *deliveries_typing, *deliveries_presence;
    chat_counter_t *events_typing, *events_presence, *typing_stale;
    chat_counter_t *records_produced;
    chat_counter_t *api_replies, *api_reply_errors;
    chat_counter_t *invalid_records;
    chat_counter_t *skipped_unknown_gateway, *skipped_unhandled, *skipped_incomplete;
    chat_counter_t *redis_errors;
    chat_histogram_t *batch_seconds;
    chat_histogram_t *redis_seconds;
    chat_gauge_t *deliver_partitions;
} pipeline_metrics_t;

struct broadcast_pipeline {
    broadcast_pipeline_conf_t conf;
    chat_bus_consumer_t *consumer;
    chat_bus_producer_t *producer;
    chat_redis_t *redis;
    broadcast_fanout_t *fanout;
    broadcast_followers_t *followers;
    chat_bus_record_t *records; /* conf.batch_max */
    chat_event_t *events;       /* conf.batch_max; type CHAT_EV_INVALID: skipped record */
    int32_t partitions;         /* of the deliver topic */
    int64_t partitions_next_ms; /* monotonic time of the next refresh */
    bool delivery_failed;       /* a record of the current batch was not delivered */
    size_t produced;            /* records of the current batch */
    atomic_bool assigned;       /* the consumer joined its group */
    atomic_bool redis_ok;
    pipeline_metrics_t m;
};

/* Registers the service's series; a series the registry refuses stays NULL, which the
 * update functions of common/metrics skip. */
static void metrics_register(broadcast_pipeline_t *p)
{
    chat_metrics_t *mx = p->conf.metrics;
    pipeline_metrics_t *m = &p->m;
    static const char deliveries[] = "chat_broadcast_deliveries_total";
    static const char deliveries_help[] = "Items queued for gateways on chat.deliver, by frame.";
    m->deliveries_msg = chat_metrics_counter(mx, deliveries, deliveries_help, "frame=\"msg\"");
    m->deliveries_update =
        chat_metrics_counter(mx, deliveries, deliveries_help, "frame=\"update\"");
    m->deliveries_ack = chat_metrics_counter(mx, deliveries, deliveries_help, "frame=\"ack\"");
    m->deliveries_error = chat_metrics_counter(mx, deliveries, deliveries_help, "frame=\"error\"");
    m->deliveries_typing =
        chat_metrics_counter(mx, deliveries, deliveries_help, "frame=\"typing\"");
    m->deliveries_presence =
        chat_metrics_counter(mx, deliveries, deliveries_help, "frame=\"presence\"");
    static const char events[] = "chat_broadcast_events_total";
    static const char events_help[] = "chat.events records consumed, by type.";
    m->events_typing = chat_metrics_counter(mx, events, events_help, "type=\"typing\"");
    m->events_presence = chat_metrics_counter(mx, events, events_help, "type=\"presence\"");
    m->deliveries_read = chat_metrics_counter(mx, deliveries, deliveries_help, "frame=\"read\"");
    m->records_produced = chat_metrics_counter(mx, "chat_broadcast_records_produced_total",
                                               "Records produced to chat.deliver.", NULL);
    m->api_replies = chat_metrics_counter(mx, "chat_broadcast_api_replies_total",
                                          "Answers (ack, error) pushed to the api service's "
                                          "reply lists in Redis.",
                                          NULL);
    m->api_reply_errors =
        chat_metrics_counter(mx, "chat_broadcast_api_reply_errors_total",
                             "Failed writes of a batch's api replies (retried).", NULL);
    m->invalid_records = chat_metrics_counter(mx, "chat_broadcast_invalid_records_total",
                                              "chat.messages and chat.events records that did "
                                              "not decode (logged and skipped).",
                                              NULL);
    static const char skipped[] = "chat_broadcast_skipped_total";
    static const char skipped_help[] = "Deliveries or events not routed, by reason.";
    m->skipped_unknown_gateway =
        chat_metrics_counter(mx, skipped, skipped_help, "reason=\"unknown_gateway\"");
    m->skipped_unhandled =
        chat_metrics_counter(mx, skipped, skipped_help, "reason=\"unhandled_type\"");
    m->skipped_incomplete =
        chat_metrics_counter(mx, skipped, skipped_help, "reason=\"incomplete\"");
    m->typing_stale = chat_metrics_counter(mx, skipped, skipped_help, "reason=\"stale_typing\"");
    m->redis_errors = chat_metrics_counter(mx, "chat_broadcast_redis_errors_total",
                                           "Failed follower lookups (retried).", NULL);
    m->batch_seconds = chat_metrics_histogram(
        mx, "chat_broadcast_batch_seconds", "Time from poll to commit of a batch.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->redis_seconds = chat_metrics_histogram(
        mx, "chat_broadcast_redis_lookup_seconds", "Round trip of a batch's follower lookup.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->deliver_partitions = chat_metrics_gauge(mx, "chat_broadcast_deliver_partitions",
                                               "Partitions of chat.deliver (gateway slots).", NULL);
}

static void set_partitions(broadcast_pipeline_t *p, int32_t n)
{
    p->partitions = n;
    chat_gauge_set(p->m.deliver_partitions, n);
}

static void on_rebalance(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n)
{
    (void)tps;
    (void)n;
    broadcast_pipeline_t *p = ud;
    /* Ready from the first assignment on (even an empty one: more instances than
     * partitions); a later revoke is the group at work, not a reason to be unready. */
    if (assigned)
        atomic_store(&p->assigned, true);
}

/* Delivery reports arrive in chat_bus_producer_flush, on the pipeline's thread. */
static void on_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                        int32_t partition, int64_t offset)
{
    (void)opaque;
    (void)offset;
    broadcast_pipeline_t *p = ud;
    if (err == CHAT_OK)
        return;
    if (!p->delivery_failed)
        chat_log_error(
            "chat.deliver record not delivered", CHAT_F_STR("topic", p->conf.deliver_topic),
            CHAT_F_INT("partition", partition), CHAT_F_ERR(err), CHAT_F_STR("reason", reason));
    p->delivery_failed = true;
}

bool broadcast_pipeline_ready(void *pipeline, char *reason, size_t reason_len)
{
    broadcast_pipeline_t *p = pipeline;
    const char *why = NULL;
    if (!atomic_load(&p->assigned))
        why = "waiting for the consumer group assignment";
    else if (!atomic_load(&p->redis_ok))
        why = "redis unavailable";
    if (why != NULL)
        snprintf(reason, reason_len, "%s", why);
    return why == NULL;
}

/* Reads the deliver topic's partition count again when it is due, over the producer's own
 * connections (no client of its own on this thread); keeps the old count if the brokers
 * do not answer. */
static void partitions_refresh(broadcast_pipeline_t *p)
{
    if (chat_clock_mono_ms() < p->partitions_next_ms)
        return;
    p->partitions_next_ms = chat_clock_mono_ms() + PARTITIONS_REFRESH_MS;
    int n = chat_bus_producer_partitions(p->producer, p->conf.deliver_topic, PARTITIONS_TIMEOUT_MS);
    if (n <= 0) {
        chat_log_warn("partition count refresh failed; keeping the old one",
                      CHAT_F_STR("topic", p->conf.deliver_topic),
                      CHAT_F_INT("partitions", p->partitions));
        return;
    }
    if (n != p->partitions) {
        chat_log_info("deliver topic partition count changed",
                      CHAT_F_STR("topic", p->conf.deliver_topic), CHAT_F_INT("from", p->partitions),
                      CHAT_F_INT("to", n));
        set_partitions(p, n);
    }
}

/* Opens the clients one by one; the first failure names its variable. */
static chat_err_t pipeline_connect(broadcast_pipeline_t *p, const char **bad_var)
{
    const broadcast_pipeline_conf_t *c = &p->conf;
    chat_err_t err = chat_redis_connect(c->redis_url, c->connect_timeout_ms, &p->redis);
    if (err != CHAT_OK) {
        *bad_var = "CHAT_REDIS_URL";
        return err;
    }
    chat_bus_producer_conf_t pc = {
        .brokers = c->brokers,
        .client_id = "chat-broadcast",
        /* A batch is produced as a whole and then flushed: its records for every gateway
         * leave in one request when the flush comes, never piecemeal. */
        .linger_ms = CHAT_BUS_LINGER_UNTIL_FLUSH,
        .on_delivery = on_delivery,
        .ud = p,
        .connect_timeout_ms = c->connect_timeout_ms,
        .metrics = c->metrics,
    };
    if ((err = chat_bus_producer_new(&pc, &p->producer)) != CHAT_OK) {
        *bad_var = err == CHAT_ERR_CONFIG ? "KAFKA_*" : "CHAT_KAFKA_BROKERS";
        return err;
    }
    const chat_topic_use_t uses[] = {
        {"CHAT_TOPIC_MESSAGES", c->messages_topic},
        {"CHAT_TOPIC_DELIVER", c->deliver_topic},
        {"CHAT_TOPIC_EVENTS", c->events_topic},
    };
    int partitions[3];
    err = chat_topics_check(c->brokers, uses, 3, c->connect_timeout_ms, partitions, bad_var);
    if (err != CHAT_OK)
        return err == CHAT_ERR_KAFKA || err == CHAT_ERR_CONFIG ? err : CHAT_ERR_CONFIG;
    set_partitions(p, partitions[1]);
    p->partitions_next_ms = chat_clock_mono_ms() + PARTITIONS_REFRESH_MS;
    /* One subscription to both topics: one poll, one batch, one Redis round trip and one
     * produce for both; a room's order holds within each topic (one partition per room),
     * which is all either needs (typing and presence are not ordered against messages). */
    const char *topics[] = {c->messages_topic, c->events_topic, NULL};
    chat_bus_consumer_conf_t cc = {
        .brokers = c->brokers,
        .client_id = "chat-broadcast",
        .group_id = c->group,
        .group_instance_id = c->instance_id,
        .topics = topics,
        .on_rebalance = on_rebalance,
        .ud = p,
        /* A new group starts at the beginning: delivery is at-least-once like everything
         * else here, and gateways drop what their sockets already had. */
        .auto_offset_reset = "earliest",
        .commit_interval_ms = c->commit_interval_ms,
        .connect_timeout_ms = c->connect_timeout_ms,
        .metrics = c->metrics,
    };
    if ((err = chat_bus_consumer_new(&cc, &p->consumer)) != CHAT_OK) {
        *bad_var = err == CHAT_ERR_CONFIG ? "KAFKA_*" : "CHAT_KAFKA_BROKERS";
        return err;
    }
    return CHAT_OK;
}

chat_err_t broadcast_pipeline_new(const broadcast_pipeline_conf_t *conf, broadcast_pipeline_t **out,
                                  const char **bad_var)
{
    const char *ignored;
    if (bad_var == NULL)
        bad_var = &ignored;
    *bad_var = NULL;
    if (conf == NULL || out == NULL || conf->batch_max == 0 || conf->metrics == NULL ||
        conf->events_topic == NULL)
        return CHAT_ERR_INVALID;
    broadcast_pipeline_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    p->conf = *conf;
    atomic_init(&p->assigned, false);
    atomic_init(&p->redis_ok, true);
    metrics_register(p);
    p->fanout = broadcast_fanout_new();
    p->followers = broadcast_followers_new();
    p->records = calloc(conf->batch_max, sizeof *p->records);
    p->events = calloc(conf->batch_max, sizeof *p->events);
    if (p->fanout == NULL || p->followers == NULL || p->records == NULL || p->events == NULL) {
        broadcast_pipeline_free(p);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = pipeline_connect(p, bad_var);
    if (err != CHAT_OK) {
        broadcast_pipeline_free(p);
        return err;
    }
    *out = p;
    return CHAT_OK;
}

void broadcast_pipeline_free(broadcast_pipeline_t *p)
{
    if (p == NULL)
        return;
    chat_bus_consumer_close(p->consumer);
    chat_bus_producer_destroy(p->producer);
    chat_redis_free(p->redis);
    broadcast_fanout_free(p->fanout);
    broadcast_followers_free(p->followers);
    free(p->records);
    free(p->events);
    free(p);
}

/* True for a typing event too old to show (TYPING_STALE_MS): it is dropped, counted. */
static bool typing_stale(broadcast_pipeline_t *p, const chat_event_t *ev, int64_t now_ms)
{
    if (ev->type != CHAT_EV_TYPING || ev->ts >= now_ms - TYPING_STALE_MS)
        return false;
    chat_counter_inc(p->m.typing_stale);
    return true;
}

/* Events that go to every gateway following their room (acks and errors go to one). */
static bool to_room(chat_event_type_t type)
{
    return type == CHAT_EV_MSG || type == CHAT_EV_UPDATE || type == CHAT_EV_TYPING ||
           type == CHAT_EV_PRESENCE || type == CHAT_EV_READ;
}

/* Decodes the n records into p->events; invalid ones are logged, counted and left
 * CHAT_EV_INVALID, and so are stale typing events. Rooms of msg, update, typing, presence
 * and read events are added to the follower lookup. */
static chat_err_t batch_decode(broadcast_pipeline_t *p, size_t n)
{
    broadcast_followers_reset(p->followers);
    int64_t now_ms = chat_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const chat_bus_record_t *rec = &p->records[i];
        chat_event_t *ev = &p->events[i];
        char why[160];
        if (chat_event_decode(rec->value, rec->len, ev, why, sizeof why) != CHAT_OK) {
            chat_log_warn("invalid record skipped", CHAT_F_STR("topic", rec->topic),
                          CHAT_F_INT("partition", rec->partition),
                          CHAT_F_INT("offset", rec->offset), CHAT_F_STR("reason", why));
            chat_counter_add(p->m.invalid_records, 1);
            memset(ev, 0, sizeof *ev);
            continue;
        }
        if (ev->type == CHAT_EV_TYPING)
            chat_counter_inc(p->m.events_typing);
        else if (ev->type == CHAT_EV_PRESENCE)
            chat_counter_inc(p->m.events_presence);
        if (typing_stale(p, ev, now_ms)) {
            chat_event_clear(ev);
            continue;
        }
        if (to_room(ev->type)) {
            chat_err_t err = broadcast_followers_add(p->followers, ev->tenant, ev->room);
            if (err != CHAT_OK)
                return err;
        }
    }
    return CHAT_OK;
}

/* Looks up the followers of the batch's rooms, retrying with backoff while Redis fails:
 * skipping a batch would lose live messages, committing it unrouted too. Returns
 * CHAT_ERR_STOPPED if a stop was requested meanwhile. */
static chat_err_t batch_lookup(broadcast_pipeline_t *p)
{
    if (broadcast_followers_count(p->followers) == 0)
        return CHAT_OK;
    chat_backoff_t backoff = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    for (;;) {
        int64_t start = chat_clock_mono_us();
        chat_err_t err = broadcast_followers_lookup(p->followers, p->redis, chat_clock_wall_ms());
        if (err == CHAT_OK) {
            chat_histogram_observe(p->m.redis_seconds, chat_clock_seconds_since(start));
            if (!atomic_exchange(&p->redis_ok, true))
                chat_log_info("redis follower lookups work again");
            return CHAT_OK;
        }
        if (err == CHAT_ERR_NOMEM)
            return err;
        chat_counter_add(p->m.redis_errors, 1);
        if (atomic_exchange(&p->redis_ok, false))
            chat_log_error("redis follower lookup failed; retrying the batch", CHAT_F_ERR(err),
                           CHAT_F_INT("rooms", broadcast_followers_count(p->followers)));
        if (chat_signals_wait_stop(chat_backoff_next(&backoff)))
            return CHAT_ERR_STOPPED;
    }
}

/* Presence events carry what their gateway decided in Redis, but two gateways deciding about
 * one user at nearly the same moment (a last tab closed here, a new one opened there) may
 * produce in the other order. So each presence frame tells the user's state at the time
 * broadcast sends it: whether the room's presence hash (common/contract.h) still counts the
 * user, read in one pipelined round trip for the batch's presence events. Reordered events
 * then both say the final state. If Redis fails here, the events keep their own value. */
static void batch_presence_now(broadcast_pipeline_t *p, size_t n)
{
    size_t *asked = NULL; /* the events queued, in order; made at the batch's first presence */
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        const chat_event_t *ev = &p->events[i];
        char key[CHAT_REGISTRY_KEY_MAX];
        if (ev->type != CHAT_EV_PRESENCE ||
            chat_registry_key(ev->tenant, ev->room, CHAT_REGISTRY_PRESENCE, key, sizeof key) < 0)
            continue;
        if (asked == NULL && (asked = calloc(n, sizeof *asked)) == NULL)
            err = CHAT_ERR_NOMEM;
        else if ((err = chat_redis_append(p->redis, "HEXISTS %s %s", key, ev->user)) == CHAT_OK)
            asked[queued++] = i;
    }
    for (size_t j = 0; j < queued; j++) {
        redisReply *reply = NULL;
        if (chat_redis_reply(p->redis, &reply) == CHAT_OK && reply != NULL &&
            reply->type == REDIS_REPLY_INTEGER)
            p->events[asked[j]].online = reply->integer == 1;
        else
            err = CHAT_ERR_REDIS;
        if (reply != NULL)
            freeReplyObject(reply);
    }
    free(asked);
    if (err != CHAT_OK)
        chat_log_warn("presence state not read; events keep their own", CHAT_F_ERR(err));
}

/* broadcast_record_fn: one chat.deliver record to the gateway's partition, without key. */
static chat_err_t produce_record(void *ud, int32_t gateway, const char *value, size_t len,
                                 size_t nitems)
{
    (void)nitems;
    broadcast_pipeline_t *p = ud;
    chat_err_t err =
        chat_bus_produce(p->producer, p->conf.deliver_topic, gateway, NULL, 0, value, len, NULL);
    if (err == CHAT_OK)
        p->produced++;
    return err;
}

/* Routes the decoded events and produces the records of the batch. */
static chat_err_t batch_fanout(broadcast_pipeline_t *p, size_t n)
{
    chat_err_t err = broadcast_fanout_reset(p->fanout, p->partitions);
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        const chat_event_t *ev = &p->events[i];
        if (ev->type == CHAT_EV_INVALID)
            continue;
        size_t nf = 0;
        const int32_t *gws = NULL;
        if (to_room(ev->type))
            gws = broadcast_followers_get(p->followers, ev->tenant, ev->room, &nf);
        err = broadcast_fanout_add(p->fanout, ev, gws, nf);
    }
    if (err != CHAT_OK)
        return err;
    p->produced = 0;
    p->delivery_failed = false;
    err = broadcast_fanout_emit(p->fanout, BROADCAST_RECORD_MAX, produce_record, p);
    if (err != CHAT_OK)
        return err == CHAT_ERR_NOMEM ? err : CHAT_ERR_KAFKA;
    err = chat_bus_producer_flush(p->producer, FLUSH_TIMEOUT_MS);
    if (err != CHAT_OK || p->delivery_failed) {
        chat_log_error("chat.deliver flush failed", CHAT_F_ERR(err),
                       CHAT_F_INT("records", p->produced),
                       CHAT_F_INT("outstanding", chat_bus_producer_outstanding(p->producer)));
        return CHAT_ERR_KAFKA;
    }
    return CHAT_OK;
}

/* Writes the batch's answers to api origins in one pipelined round trip: per answer RPUSH of
 * its frame onto chat_api_reply_key(conn) and EXPIRE of CHAT_API_REPLY_TTL_S (contract.h). */
static chat_err_t api_replies_write(broadcast_pipeline_t *p, const broadcast_api_reply_t *r,
                                    size_t n)
{
    chat_err_t err = CHAT_OK;
    size_t queued = 0;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        char key[CHAT_API_REPLY_KEY_MAX];
        if (chat_api_reply_key(r[i].conn, key, sizeof key) < 0)
            continue; /* the codec bounds conn: never */
        err = chat_redis_append(p->redis, "RPUSH %s %b", key, r[i].frame, r[i].len);
        queued += err == CHAT_OK;
        if (err == CHAT_OK)
            err = chat_redis_append(p->redis, "EXPIRE %s %d", key, CHAT_API_REPLY_TTL_S);
        queued += err == CHAT_OK;
    }
    for (size_t j = 0; j < queued; j++) {
        redisReply *reply = NULL;
        chat_err_t rerr = chat_redis_reply(p->redis, &reply);
        if (rerr == CHAT_OK && (reply == NULL || reply->type == REDIS_REPLY_ERROR))
            rerr = CHAT_ERR_REDIS;
        if (err == CHAT_OK)
            err = rerr;
        if (reply != NULL)
            freeReplyObject(reply);
    }
    return err;
}

/* Hands the batch's answers to api origins to Redis, retrying with backoff while it fails (the
 * api is waiting; committing without them would lose the answers). A retry may push an answer
 * twice, which the api, taking the first, ignores. Returns CHAT_ERR_STOPPED if a stop was
 * requested meanwhile. */
static chat_err_t batch_api_replies(broadcast_pipeline_t *p)
{
    size_t n = 0;
    const broadcast_api_reply_t *r = broadcast_fanout_api_replies(p->fanout, &n);
    if (n == 0)
        return CHAT_OK;
    chat_backoff_t backoff = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    for (;;) {
        chat_err_t err = api_replies_write(p, r, n);
        if (err == CHAT_OK) {
            chat_counter_add(p->m.api_replies, n);
            return CHAT_OK;
        }
        if (err == CHAT_ERR_NOMEM)
            return err;
        chat_counter_inc(p->m.api_reply_errors);
        chat_log_error("api replies not written to redis; retrying", CHAT_F_ERR(err),
                       CHAT_F_INT("replies", n));
        if (chat_signals_wait_stop(chat_backoff_next(&backoff)))
            return CHAT_ERR_STOPPED;
    }
}

/* Counts the batch's routing and logs what could not be routed, once per batch. */
static void batch_account(broadcast_pipeline_t *p)
{
    const broadcast_fanout_stats_t *s = broadcast_fanout_stats(p->fanout);
    chat_counter_add(p->m.deliveries_msg, s->msg_items);
    chat_counter_add(p->m.deliveries_update, s->update_items);
    chat_counter_add(p->m.deliveries_ack, s->ack_items);
    chat_counter_add(p->m.deliveries_error, s->error_items);
    chat_counter_add(p->m.deliveries_typing, s->typing_items);
    chat_counter_add(p->m.deliveries_presence, s->presence_items);
    chat_counter_add(p->m.deliveries_read, s->read_items);
    chat_counter_add(p->m.records_produced, p->produced);
    chat_counter_add(p->m.skipped_unhandled, s->unhandled);
    chat_counter_add(p->m.skipped_incomplete, s->incomplete);
    chat_counter_add(p->m.skipped_unknown_gateway, s->unknown_gateway);
    if (s->incomplete > 0)
        chat_log_warn("events without the fields their frame needs skipped",
                      CHAT_F_INT("count", s->incomplete));
    if (s->unknown_gateway > 0) {
        chat_log_warn("deliveries to gateways outside the deliver topic skipped",
                      CHAT_F_INT("count", s->unknown_gateway),
                      CHAT_F_INT("gateway", s->unknown_gateway_example),
                      CHAT_F_INT("partitions", p->partitions));
        /* Perhaps the topic just grew for a new gateway: look again soon. */
        int64_t soon = chat_clock_mono_ms() + PARTITIONS_RECHECK_MS;
        if (p->partitions_next_ms > soon)
            p->partitions_next_ms = soon;
    }
}

static void events_clear(broadcast_pipeline_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        chat_event_clear(&p->events[i]);
}

/* One batch from decode to stored offsets (committed on the cadence). A failed commit is
 * logged (by the bus) and tolerated: the output is out, and replaying it is harmless. */
static chat_err_t batch_process(broadcast_pipeline_t *p, size_t n, int64_t start)
{
    chat_err_t err = batch_decode(p, n);
    if (err == CHAT_OK)
        err = batch_lookup(p);
    if (err == CHAT_OK) {
        batch_presence_now(p, n);
        err = batch_fanout(p, n);
    }
    if (err == CHAT_OK)
        err = batch_api_replies(p);
    events_clear(p, n);
    if (err != CHAT_OK)
        return err;
    batch_account(p);
    chat_bus_consumer_store(p->consumer, p->records, n);
    chat_histogram_observe(p->m.batch_seconds, chat_clock_seconds_since(start));
    return CHAT_OK;
}

chat_err_t broadcast_pipeline_run(broadcast_pipeline_t *p)
{
    chat_log_info("broadcast running", CHAT_F_STR("group", p->conf.group),
                  CHAT_F_STR("from", p->conf.messages_topic),
                  CHAT_F_STR("events", p->conf.events_topic),
                  CHAT_F_STR("to", p->conf.deliver_topic), CHAT_F_INT("gateways", p->partitions),
                  CHAT_F_INT("batch", p->conf.batch_max));
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && !chat_signals_stop_requested()) {
        partitions_refresh(p);
        size_t n =
            chat_bus_consumer_poll(p->consumer, p->records, p->conf.batch_max, POLL_TIMEOUT_MS);
        if (n == 0)
            continue;
        err = batch_process(p, n, chat_clock_mono_us());
        chat_bus_records_release(p->records, n);
    }
    if (err == CHAT_ERR_STOPPED)
        chat_log_warn("stopped while redis was failing; the last batch was not committed "
                      "and will be delivered on the next start");
    else if (err != CHAT_OK)
        chat_log_error("broadcast stopped: output could not be produced; input not committed",
                       CHAT_F_ERR(err));
    return err;
}
