/* Kafka for the message service through common/bus: a group consumer on chat.inbound and
 * chat.moderation and an idempotent producer to chat.messages served on this thread (no poll
 * thread: the pipeline flushes after every batch, which runs the delivery callbacks here). */
#include "services/message/message_bus.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct message_bus {
    char *inbound_topic;
    char *messages_topic;
    chat_bus_producer_t *producer;
    chat_bus_consumer_t *consumer;
    message_sequencer_t *sequencer;
    int flush_timeout_ms;
    atomic_size_t failed; /* deliveries failed since the last flush */
    char first_failure[160];
};

/* Delivery failures are counted here and reported once per flush. */
static void on_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                        int32_t partition, int64_t offset)
{
    (void)opaque;
    (void)partition;
    (void)offset;
    message_bus_t *b = ud;
    if (err == CHAT_OK)
        return;
    if (atomic_fetch_add(&b->failed, 1) == 0) {
        strncpy(b->first_failure, reason != NULL ? reason : chat_err_str(err),
                sizeof b->first_failure - 1);
        b->first_failure[sizeof b->first_failure - 1] = '\0';
    }
}

/* Tells the sequencer which chat.inbound partitions this process now owns (chat.moderation's
 * are not recorded: a verdict's partition is owned when chat.inbound's of that number is, which
 * the range assignor makes the same assignment). A revoke forgets
 * their rooms: the next owner (maybe us again) reloads them from MongoDB. A partition that
 * cannot be recorded (out of memory) is simply not owned: its records are neither processed
 * nor committed, which is safe. */
static void on_rebalance(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n)
{
    message_bus_t *b = ud;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(tps[i].topic, b->inbound_topic) != 0)
            continue;
        k++;
        if (!assigned) {
            message_sequencer_revoke(b->sequencer, &tps[i].partition, 1);
        } else if (message_sequencer_assign(b->sequencer, &tps[i].partition, 1) != CHAT_OK) {
            chat_log_error("partition left unowned: out of memory",
                           CHAT_F_INT("partition", tps[i].partition));
        }
    }
    chat_log_info(assigned ? "partitions assigned" : "partitions revoked",
                  CHAT_F_INT("partitions", k),
                  CHAT_F_INT("rooms_kept", message_sequencer_rooms(b->sequencer)));
}

chat_err_t message_bus_open(const message_bus_conf_t *conf, message_bus_t **out)
{
    *out = NULL;
    message_bus_t *b = calloc(1, sizeof *b);
    if (b == NULL)
        return CHAT_ERR_NOMEM;
    b->sequencer = conf->sequencer;
    b->flush_timeout_ms = conf->flush_timeout_ms;
    atomic_init(&b->failed, 0);
    b->inbound_topic = strdup(conf->inbound_topic);
    b->messages_topic = strdup(conf->messages_topic);
    if (b->inbound_topic == NULL || b->messages_topic == NULL) {
        message_bus_close(b);
        return CHAT_ERR_NOMEM;
    }
    chat_bus_producer_conf_t pc = {
        .brokers = conf->brokers,
        .client_id = conf->client_id,
        /* The pipeline produces a whole batch and then flushes: the batch leaves in one
         * request when the flush comes, never piecemeal. */
        .linger_ms = CHAT_BUS_LINGER_UNTIL_FLUSH,
        .poll_thread = false,
        .on_delivery = on_delivery,
        .ud = b,
        .connect_timeout_ms = conf->connect_timeout_ms,
        .metrics = conf->metrics,
    };
    chat_err_t err = chat_bus_producer_new(&pc, &b->producer);
    if (err == CHAT_OK) {
        /* One group for both: the range assignor (common/bus.c) hands the same partition
         * numbers of two topics with as many partitions to the same member, so the process
         * that sequences a room also applies its verdicts. */
        const char *const topics[] = {b->inbound_topic, conf->moderation_topic, NULL};
        chat_bus_consumer_conf_t cc = {
            .brokers = conf->brokers,
            .client_id = conf->client_id,
            .group_id = conf->group,
            .group_instance_id = conf->instance_id,
            .topics = topics,
            .on_rebalance = on_rebalance,
            .ud = b,
            .auto_offset_reset = "earliest",
            .commit_interval_ms = conf->commit_interval_ms,
            .connect_timeout_ms = conf->connect_timeout_ms,
            .metrics = conf->metrics,
        };
        err = chat_bus_consumer_new(&cc, &b->consumer);
    }
    if (err != CHAT_OK) {
        message_bus_close(b);
        return err;
    }
    *out = b;
    return CHAT_OK;
}

size_t message_bus_poll(message_bus_t *b, chat_bus_record_t *recs, size_t max, int timeout_ms)
{
    return chat_bus_consumer_poll(b->consumer, recs, max, timeout_ms);
}

static chat_err_t bus_produce(void *ctx, const char *key, size_t keylen, const char *value,
                              size_t len)
{
    message_bus_t *b = ctx;
    chat_err_t err = chat_bus_produce(b->producer, b->messages_topic, CHAT_BUS_PARTITION_ANY, key,
                                      keylen, value, len, NULL);
    if (err != CHAT_OK)
        chat_log_error("produce to chat.messages failed", CHAT_F_STR("topic", b->messages_topic),
                       CHAT_F_ERR(err));
    return err == CHAT_OK ? CHAT_OK : CHAT_ERR_KAFKA;
}

/* Returns CHAT_ERR_KAFKA if a record of the batch was not delivered (librdkafka has already
 * retried it for message.timeout.ms) or the flush timed out. */
static chat_err_t bus_flush(void *ctx)
{
    message_bus_t *b = ctx;
    chat_err_t err = chat_bus_producer_flush(b->producer, b->flush_timeout_ms);
    size_t failed = atomic_exchange(&b->failed, 0);
    if (err != CHAT_OK) {
        chat_log_error("flush of chat.messages timed out", CHAT_F_ERR(err),
                       CHAT_F_INT("in_flight", chat_bus_producer_outstanding(b->producer)));
        return CHAT_ERR_KAFKA;
    }
    if (failed > 0) {
        chat_log_error("delivery to chat.messages failed", CHAT_F_INT("records", failed),
                       CHAT_F_STR("reason", b->first_failure));
        return CHAT_ERR_KAFKA;
    }
    return CHAT_OK;
}

/* Marks the batch finished: its offsets go out with the next periodic commit (or before a
 * revoke, or at shutdown). A crash before that replays the batch, which dedup absorbs. */
static chat_err_t bus_commit(void *ctx, const chat_bus_record_t *recs, size_t n)
{
    message_bus_t *b = ctx;
    return chat_bus_consumer_store(b->consumer, recs, n);
}

void message_bus_port(message_bus_t *b, message_bus_port_t *port)
{
    *port = (message_bus_port_t){
        .ctx = b, .produce = bus_produce, .flush = bus_flush, .commit = bus_commit};
}

void message_bus_close(message_bus_t *b)
{
    if (b == NULL)
        return;
    chat_bus_consumer_close(b->consumer);
    chat_bus_producer_destroy(b->producer);
    free(b->inbound_topic);
    free(b->messages_topic);
    free(b);
}
