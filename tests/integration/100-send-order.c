/* End to end: messages of one sender reach every subscriber of the room on both gateways
 * (the sender's own devices included) exactly once, in seq order, without gaps, and each
 * ack carries the seq and id the message has in history. Also measures the latency from
 * send on gateway 0 to msg on gateway 1 (printed; only a sanity bound is asserted). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define ORDER_COUNT 200
#define LATENCY_COUNT 1000
#define LATENCY_SENDERS 8 /* connections share the sends: each stays under the rate limit */
#define QUIET_MS 500      /* how long "nothing more arrives" is watched */

/* What the sender learnt from the acks. */
typedef struct sent {
    char cid[32];
    char text[96];
    int64_t seq;
    char id[32];
} sent_t;

/* Checks that c receives exactly the messages of sent, in order, and nothing after. */
static void check_stream(chat_tc_t *c, const char *who, const char *room, const char *from,
                         const sent_t *sent, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *m = chat_tc_wait_for(c, "msg", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "%s: msg %zu of %zu missing", who, i + 1, n);
        ck_assert_msg(chat_json_int(m, "seq") == sent[i].seq, "%s: msg %zu has seq %lld, not %lld",
                      who, i + 1, (long long)chat_json_int(m, "seq"), (long long)sent[i].seq);
        ck_assert_str_eq(chat_json_str(m, "text"), sent[i].text);
        ck_assert_str_eq(chat_json_str(m, "id"), sent[i].id);
        ck_assert_str_eq(chat_json_str(m, "from"), from);
        cJSON_Delete(m);
    }
    cJSON *extra = chat_tc_wait_for(c, "msg", "room", room, QUIET_MS);
    ck_assert_msg(extra == NULL, "%s: a message arrived twice or out of nowhere (seq %lld)", who,
                  (long long)chat_json_int(extra, "seq"));
    ck_assert_uint_eq(chat_tc_queued(c, "error"), 0);
}

/* Pages the room's history backwards (limit 100) and checks it against sent. */
static void check_history(chat_tc_t *c, const char *room, const sent_t *sent, size_t n)
{
    int64_t before = 0;
    size_t seen = 0;
    for (;;) {
        cJSON *h = chat_tc_history(c, room, before, 100);
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(h, "msgs");
        int count = cJSON_GetArraySize(msgs);
        ck_assert_int_gt(count, 0);
        int64_t first = chat_json_int(cJSON_GetArrayItem(msgs, 0), "seq");
        for (int k = 0; k < count; k++) {
            const cJSON *m = cJSON_GetArrayItem(msgs, k);
            int64_t seq = chat_json_int(m, "seq");
            ck_assert_msg(seq == first + k, "history is not ascending and gapless at %lld",
                          (long long)seq);
            ck_assert_msg(seq >= 1 && (size_t)seq <= n, "history has seq %lld", (long long)seq);
            const sent_t *s = &sent[seq - 1];
            ck_assert_str_eq(chat_json_str(m, "id"), s->id);
            ck_assert_str_eq(chat_json_str(m, "text"), s->text);
            seen++;
        }
        bool more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "more"));
        cJSON_Delete(h);
        ck_assert_msg(more == (first > 1), "more is %d with the oldest seq %lld", more,
                      (long long)first);
        if (!more)
            break;
        before = first;
    }
    ck_assert_uint_eq(seen, n);
}

START_TEST(test_two_gateways_order_once_gapless)
{
    char room[96], alice[64], bob[64];
    chat_test_unique(room, sizeof room, "order");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    chat_tc_t *a1 = chat_tc_connect_demo(0, alice);
    chat_tc_t *a2 = chat_tc_connect_demo(1, alice);
    chat_tc_t *b = chat_tc_connect_demo(1, bob);
    chat_tc_t *all[] = {a1, a2, b};
    for (size_t i = 0; i < 3; i++) {
        cJSON *j = chat_tc_join(all[i], room, -1);
        ck_assert_int_eq(chat_json_int(j, "seq"), 0); /* a fresh room */
        cJSON_Delete(j);
    }
    static sent_t sent[ORDER_COUNT];
    /* All sends go out before any ack is awaited: order must hold for a pipeline too. */
    for (size_t i = 0; i < ORDER_COUNT; i++) {
        snprintf(sent[i].cid, sizeof sent[i].cid, "order-%zu", i);
        snprintf(sent[i].text, sizeof sent[i].text, "message %zu of %s", i, alice);
        chat_tc_send_frame(a1, chat_client_frame_send(room, sent[i].cid, sent[i].text));
    }
    for (size_t i = 0; i < ORDER_COUNT; i++) {
        cJSON *ack = chat_tc_expect_ack(a1, sent[i].cid, CHAT_TC_TIMEOUT_MS);
        sent[i].seq = chat_json_int(ack, "seq");
        snprintf(sent[i].id, sizeof sent[i].id, "%s", chat_json_str(ack, "id") ?: "");
        ck_assert_str_eq(chat_json_str(ack, "room"), room);
        cJSON_Delete(ack);
        ck_assert_msg(sent[i].seq == (int64_t)i + 1, "send %zu was acked with seq %lld", i,
                      (long long)sent[i].seq);
    }
    check_stream(b, "bob on gateway 1", room, alice, sent, ORDER_COUNT);
    check_stream(a2, "alice's second device", room, alice, sent, ORDER_COUNT);
    check_stream(a1, "alice's sending device", room, alice, sent, ORDER_COUNT);
    check_history(b, room, sent, ORDER_COUNT);
    for (size_t i = 0; i < 3; i++)
        chat_tc_close(all[i]);
}
END_TEST

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(test_latency_send_to_other_gateway)
{
    char room[96], sender[64], reader[64];
    chat_test_unique(room, sizeof room, "latency");
    chat_test_unique(sender, sizeof sender, "sender");
    chat_test_unique(reader, sizeof reader, "reader");
    chat_tc_t *r = chat_tc_connect_demo(1, reader);
    cJSON_Delete(chat_tc_join(r, room, -1));
    chat_tc_t *senders[LATENCY_SENDERS];
    for (size_t k = 0; k < LATENCY_SENDERS; k++)
        senders[k] = chat_tc_connect_demo(0, sender);
    static int64_t lat_us[LATENCY_COUNT];
    for (size_t i = 0; i < LATENCY_COUNT; i++) {
        chat_tc_t *s = senders[i % LATENCY_SENDERS];
        char cid[32], text[64];
        snprintf(cid, sizeof cid, "lat-%zu", i);
        snprintf(text, sizeof text, "latency probe %zu", i);
        chat_tc_pace(s);
        int64_t t0 = chat_clock_mono_us();
        chat_tc_send_frame(s, chat_client_frame_send(room, cid, text));
        cJSON *m = chat_tc_wait_for(r, "msg", "text", text, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "probe %zu did not arrive on the other gateway", i);
        lat_us[i] = chat_clock_mono_us() - t0;
        ck_assert_int_eq(chat_json_int(m, "seq"), (int64_t)i + 1);
        cJSON_Delete(m);
    }
    for (size_t i = 0; i < LATENCY_COUNT; i++) {
        char cid[32];
        snprintf(cid, sizeof cid, "lat-%zu", i);
        cJSON_Delete(chat_tc_expect_ack(senders[i % LATENCY_SENDERS], cid, CHAT_TC_TIMEOUT_MS));
    }
    qsort(lat_us, LATENCY_COUNT, sizeof lat_us[0], cmp_i64);
    double p50 = lat_us[LATENCY_COUNT / 2] / 1000.0;
    double p99 = lat_us[LATENCY_COUNT * 99 / 100] / 1000.0;
    double max = lat_us[LATENCY_COUNT - 1] / 1000.0;
    printf("send on gateway 0 -> msg on gateway 1, %d messages one at a time: "
           "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           LATENCY_COUNT, p50, p99, max);
    fflush(stdout);
    ck_assert_msg(p99 < 2000.0, "p99 latency %.1f ms is beyond any reason", p99);
    for (size_t k = 0; k < LATENCY_SENDERS; k++)
        chat_tc_close(senders[k]);
    chat_tc_close(r);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("send-order");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_two_gateways_order_once_gapless);
    tcase_add_test(tc, test_latency_send_to_other_gateway);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
