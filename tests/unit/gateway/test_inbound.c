/* Unit tests of services/gateway/inbound without a broker: a send whose record cannot even
 * be queued (the local queue is full) fails at once instead of holding the event loop, and
 * a queued record that librdkafka finally fails reaches the loop as a failed send with its
 * connection and cid; room events (chat.events) share the producer, are never told to the
 * loop, and their failures are counted. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/contract.h"
#include "common/metrics.h"
#include "services/gateway/inbound.h"
#include "tests/support/util.h"

/* Nothing listens there (port 1 needs root to bind); connections are refused at once. */
#define DEAD_BROKER "127.0.0.1:1"
/* Far below the default wait of a producer for room in a full queue (5 s). */
#define QUEUE_FULL_MAX_MS 1000

typedef struct failures {
    int n;
    char conn[32], cid[32];
} failures_t;

static void on_failed(void *loop_ctx, const char *conn, const char *rid, const char *cid)
{
    (void)rid;
    failures_t *f = loop_ctx;
    f->n++;
    snprintf(f->conn, sizeof f->conn, "%s", conn);
    snprintf(f->cid, sizeof f->cid, "%s", cid);
}

static chat_err_t send_one(gw_inbound_t *in, const char *cid)
{
    return gw_inbound_send(in, "acme", "general", "alice", "Alice", cid, "hello", "conn-1",
                           chat_clock_wall_ms());
}

START_TEST(test_full_queue_fails_at_once)
{
    /* A local queue of one record, and records given up after 300 ms without a broker. */
    setenv("KAFKA_QUEUE_BUFFERING_MAX_MESSAGES", "1", 1);
    setenv("KAFKA_MESSAGE_TIMEOUT_MS", "300", 1);
    gw_inbox_t *inbox = gw_inbox_new(16);
    ck_assert_ptr_nonnull(inbox);
    gw_inbound_conf_t conf = {.brokers = DEAD_BROKER,
                              .topic = CHAT_TOPIC_INBOUND,
                              .gw_id = "7",
                              .inbox = inbox,
                              .on_failed = on_failed};
    gw_inbound_t *in = NULL;
    ck_assert_int_eq(gw_inbound_new(&conf, &in), CHAT_OK);

    ck_assert_int_eq(send_one(in, "c-1"), CHAT_OK);
    int64_t start = chat_clock_mono_ms();
    ck_assert_int_ne(send_one(in, "c-2"), CHAT_OK);
    int64_t took = chat_clock_mono_ms() - start;
    ck_assert_msg(took < QUEUE_FULL_MAX_MS, "a send into a full queue took %lld ms",
                  (long long)took);

    /* The queued record times out: its failure comes through the inbox, once. */
    gw_inbound_free(in);
    failures_t f = {0};
    gw_inbox_drain(inbox, 16, &f);
    ck_assert_int_eq(f.n, 1);
    ck_assert_str_eq(f.conn, "conn-1");
    ck_assert_str_eq(f.cid, "c-1");
    gw_inbox_free(inbox);
    unsetenv("KAFKA_QUEUE_BUFFERING_MAX_MESSAGES");
    unsetenv("KAFKA_MESSAGE_TIMEOUT_MS");
}
END_TEST

/* A typing event: queued to chat.events (no broker: it fails after 300 ms, counted, and the
 * loop hears nothing); one that does not encode is refused at once; with the queue full,
 * the next one fails at once too. */
START_TEST(test_room_events_best_effort)
{
    setenv("KAFKA_QUEUE_BUFFERING_MAX_MESSAGES", "1", 1);
    setenv("KAFKA_MESSAGE_TIMEOUT_MS", "300", 1);
    chat_metrics_t *m = chat_metrics_new();
    gw_inbox_t *inbox = gw_inbox_new(16);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(inbox);
    gw_inbound_conf_t conf = {.brokers = DEAD_BROKER,
                              .topic = CHAT_TOPIC_INBOUND,
                              .events_topic = CHAT_TOPIC_EVENTS,
                              .gw_id = "7",
                              .metrics = m,
                              .inbox = inbox,
                              .on_failed = on_failed};
    gw_inbound_t *in = NULL;
    ck_assert_int_eq(gw_inbound_new(&conf, &in), CHAT_OK);
    chat_event_t ev = {.type = CHAT_EV_TYPING,
                       .tenant = "acme",
                       .room = "general",
                       .user = "alice",
                       .ts = chat_clock_wall_ms(),
                       .has_ts = true};
    ck_assert_int_eq(gw_inbound_event(in, &ev), CHAT_OK);
    ck_assert_int_ne(gw_inbound_event(in, &ev), CHAT_OK); /* the queue holds one */
    chat_event_t bad = ev;
    bad.user = NULL;
    ck_assert_int_eq(gw_inbound_event(in, &bad), CHAT_ERR_INVALID);
    gw_inbound_free(in); /* flushes: the queued one fails */
    failures_t f = {0};
    gw_inbox_drain(inbox, 16, &f);
    ck_assert_int_eq(f.n, 0);
    chat_counter_t *failed = chat_metrics_counter(m, "chat_gateway_events_failed_total",
                                                  "Typing and presence events chat.events did "
                                                  "not take (logged; never retried).",
                                                  NULL);
    ck_assert_uint_eq(chat_counter_value(failed), 2); /* the full queue's and the timed out */
    gw_inbox_free(inbox);
    chat_metrics_destroy(m);
    unsetenv("KAFKA_QUEUE_BUFFERING_MAX_MESSAGES");
    unsetenv("KAFKA_MESSAGE_TIMEOUT_MS");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_inbound");
    TCase *tc = tcase_create("inbound");
    tcase_add_test(tc, test_full_queue_fails_at_once);
    tcase_add_test(tc, test_room_events_best_effort);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
