/* Unit tests of services/gateway/deliver, its I/O-free part: a decoded chat.deliver item
 * becomes one serialised frame plus routing data; msg frames carry the seq the subscription
 * filter uses, update frames minus their useq (the item's seq), anything else 0 (an ack with
 * a seq must not be filtered away). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/deliver.h"
#include "tests/support/util.h"

static const char batch[] =
    "{\"v\":1,\"type\":\"deliver\",\"items\":["
    "{\"tenant\":\"acme\",\"room\":\"general\",\"seq\":42,\"frame\":{\"type\":\"msg\","
    "\"room\":\"general\",\"seq\":42,\"id\":\"65f1c0ffee0123456789abcd\",\"from\":\"alice\","
    "\"text\":\"hello\",\"ts\":1732406400123}},"
    "{\"tenant\":\"acme\",\"room\":\"general\",\"seq\":43,\"sent\":1732406400200,"
    "\"frame\":{\"type\":\"msg\",\"room\":\"general\",\"seq\":43,"
    "\"id\":\"65f1c0ffee0123456789abce\",\"from\":\"alice\",\"text\":\"hi\","
    "\"ts\":1732406400210}},"
    "{\"tenant\":\"acme\",\"room\":\"general\",\"seq\":42,\"frame\":{\"type\":\"ack\","
    "\"cid\":\"c-1\",\"room\":\"general\",\"seq\":42,\"id\":\"65f1c0ffee0123456789abcd\","
    "\"ts\":1732406400123},\"conns\":[\"0.ab.17\",\"0.ab.18\"]},"
    "{\"tenant\":\"acme\",\"room\":\"general\",\"frame\":{\"type\":\"typing\","
    "\"room\":\"general\",\"user\":\"bob\"}},"
    "{\"tenant\":\"acme\",\"room\":\"general\",\"seq\":7,\"frame\":{\"type\":\"update\","
    "\"room\":\"general\",\"id\":\"65f1c0ffee0123456789abcd\",\"seq\":42,\"useq\":7,"
    "\"op\":\"delete\",\"deleted\":true}}]}";

static void noop_complete(gw_task_t *t, void *loop_ctx)
{
    (void)t;
    (void)loop_ctx;
}

START_TEST(test_items_to_deliveries)
{
    chat_deliver_t d;
    char why[160];
    ck_assert_int_eq(chat_deliver_decode(batch, strlen(batch), &d, why, sizeof why), CHAT_OK);
    ck_assert_uint_eq(d.nitems, 5);

    gw_delivery_t *msg = gw_delivery_new(&d.items[0], noop_complete);
    ck_assert_ptr_nonnull(msg);
    ck_assert_str_eq(msg->tenant, "acme");
    ck_assert_str_eq(msg->room, "general");
    ck_assert_int_eq(msg->msg_seq, 42);
    ck_assert_uint_eq(msg->nconns, 0);
    ck_assert_ptr_eq(msg->task.complete, noop_complete);
    cJSON *f = cJSON_ParseWithLength((const char *)gw_buf_payload(msg->buf), msg->buf->len);
    ck_assert_str_eq(cJSON_GetObjectItem(f, "text")->valuestring, "hello");
    cJSON_Delete(f);
    /* the metrics' fields: a msg's ts (deliver_seconds), its buffer's type */
    ck_assert_int_eq(msg->ts_ms, 1732406400123);
    ck_assert_ptr_null(msg->cid);
    ck_assert_int_eq(msg->buf->stype, GW_S_MESSAGE);
    /* With sent (when the send was received), that is the start of send -> deliver. */
    gw_delivery_t *sent = gw_delivery_new(&d.items[1], noop_complete);
    ck_assert_int_eq(sent->ts_ms, 1732406400200);
    ck_assert_int_eq(sent->msg_seq, 43);
    sent->task.destroy(&sent->task);

    gw_delivery_t *ack = gw_delivery_new(&d.items[2], noop_complete);
    ck_assert_int_eq(ack->msg_seq, 0);
    ck_assert_uint_eq(ack->nconns, 2);
    ck_assert_str_eq(ack->conns[1], "0.ab.18");
    ck_assert_str_eq(ack->cid, "c-1"); /* the send it answers (send_ack_seconds) */
    ck_assert_int_eq(ack->ts_ms, 0);
    ck_assert_int_eq(ack->buf->stype, GW_S_ACK);

    gw_delivery_t *typing = gw_delivery_new(&d.items[3], noop_complete);
    ck_assert_int_eq(typing->msg_seq, 0);
    ck_assert_ptr_null(typing->conns);
    ck_assert_ptr_null(typing->cid);
    ck_assert_int_eq(typing->ts_ms, 0);
    ck_assert_int_eq(typing->buf->stype, GW_S_TYPING);

    gw_delivery_t *update = gw_delivery_new(&d.items[4], noop_complete);
    ck_assert_int_eq(update->msg_seq, -7);
    update->task.destroy(&update->task);

    chat_deliver_clear(&d);
    /* Deliveries own their data: usable after the batch is gone, freed by destroy. */
    ck_assert_str_eq(ack->conns[0], "0.ab.17");
    msg->task.destroy(&msg->task);
    ack->task.destroy(&ack->task);
    typing->task.destroy(&typing->task);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_deliver");
    TCase *tc = tcase_create("deliver");
    tcase_add_test(tc, test_items_to_deliveries);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
