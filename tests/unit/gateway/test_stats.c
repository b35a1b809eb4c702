/* Unit tests of the gateway's metric helpers (services/gateway/stats.c, outq.c): every label
 * value registered at start with 0 (docs/metrics.md), close codes and frame types mapped to
 * their bounded label sets, durations clamped at 0, the tenant labels bounded. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/stats.h"
#include "tests/support/util.h"

static char *render(chat_metrics_t *m)
{
    char *text = chat_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    return text;
}

static void expect_line(const char *text, const char *line)
{
    ck_assert_msg(strstr(text, line) != NULL, "missing: %s", line);
}

START_TEST(test_series_registered_with_zero)
{
    chat_metrics_t *m = chat_metrics_new();
    gw_stats_t st;
    ck_assert_int_eq(gw_stats_init(&st, m, "acme, big", 2), CHAT_OK);
    char *text = render(m);
    static const char *const lines[] = {
        "chat_gateway_connects_total{result=\"welcome\"} 0",
        "chat_gateway_connects_total{result=\"auth_failed\"} 0",
        "chat_gateway_connects_total{result=\"auth_timeout\"} 0",
        "chat_gateway_connects_total{result=\"overload\"} 0",
        "chat_gateway_connects_total{result=\"draining\"} 0",
        "chat_gateway_disconnects_total{code=\"1000\"} 0",
        "chat_gateway_disconnects_total{code=\"1001\"} 0",
        "chat_gateway_disconnects_total{code=\"1006\"} 0",
        "chat_gateway_disconnects_total{code=\"1008\"} 0",
        "chat_gateway_disconnects_total{code=\"1009\"} 0",
        "chat_gateway_disconnects_total{code=\"1011\"} 0",
        "chat_gateway_disconnects_total{code=\"1012\"} 0",
        "chat_gateway_disconnects_total{code=\"4001\"} 0",
        "chat_gateway_disconnects_total{code=\"4009\"} 0",
        "chat_gateway_disconnects_total{code=\"other\"} 0",
        "chat_gateway_frames_sent_total{type=\"welcome\"} 0",
        "chat_gateway_frames_sent_total{type=\"ack\"} 0",
        "chat_gateway_frames_sent_total{type=\"message\"} 0",
        "chat_gateway_frames_sent_total{type=\"notice\"} 0",
        "chat_gateway_frames_sent_total{type=\"other\"} 0",
        "chat_gateway_send_ack_seconds_count 0",
        "chat_gateway_deliver_seconds_count 0",
        "chat_gateway_draining 0",
        "chat_gateway_drain_closes_total 0",
        "chat_gateway_tenant_connections{tenant=\"acme\"} 0",
        "chat_gateway_tenant_connections{tenant=\"big\"} 0",
        "chat_gateway_tenant_connections{tenant=\"_other\"} 0",
        "# TYPE chat_gateway_send_ack_seconds histogram",
        "# TYPE chat_gateway_tenant_connections gauge",
    };
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        expect_line(text, lines[i]);
    free(text);

    /* bounded tenants: two labelled by name besides the allowlist, the rest _other */
    chat_tenant_gauge_add(st.tenant_connections, "t1", 1);
    chat_tenant_gauge_add(st.tenant_connections, "t2", 1);
    chat_tenant_gauge_add(st.tenant_connections, "t3", 1);
    chat_tenant_gauge_add(st.tenant_connections, "t4", 1);
    chat_tenant_gauge_add(st.tenant_connections, "t4", -1);
    text = render(m);
    expect_line(text, "chat_gateway_tenant_connections{tenant=\"t1\"} 1");
    expect_line(text, "chat_gateway_tenant_connections{tenant=\"t2\"} 1");
    expect_line(text, "chat_gateway_tenant_connections{tenant=\"_other\"} 1");
    ck_assert_ptr_null(strstr(text, "tenant=\"t3\""));
    free(text);

    /* negative durations (clocks of two hosts) are clamped to 0 */
    gw_stats_observe_seconds(st.deliver_seconds, -2.5);
    gw_stats_observe_seconds(st.deliver_seconds, 0.02);
    ck_assert_uint_eq(chat_histogram_count(st.deliver_seconds), 2);
    text = render(m);
    expect_line(text, "chat_gateway_deliver_seconds_sum 0.02");
    free(text);

    gw_stats_free(&st);
    gw_stats_free(&st); /* twice is harmless */
    chat_metrics_destroy(m);
}
END_TEST

START_TEST(test_disconnect_slots)
{
    static const int codes[] = {1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012, 1013, 4001, 4008};
    for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
        size_t slot = gw_stats_disconnect_slot(codes[i]);
        ck_assert_uint_lt(slot, GW_DISCONNECT_SLOTS - 1);
        ck_assert_int_eq(atoi(gw_stats_disconnect_label(slot)), codes[i]);
    }
    ck_assert_str_eq(gw_stats_disconnect_label(gw_stats_disconnect_slot(1002)), "other");
    ck_assert_str_eq(gw_stats_disconnect_label(gw_stats_disconnect_slot(3000)), "other");
    ck_assert_str_eq(gw_stats_disconnect_label(gw_stats_disconnect_slot(-1)), "other");
    ck_assert_str_eq(gw_stats_disconnect_label(99), "other");
    /* every slot's label is distinct */
    for (size_t i = 0; i < GW_DISCONNECT_SLOTS; i++)
        for (size_t j = i + 1; j < GW_DISCONNECT_SLOTS; j++)
            ck_assert_str_ne(gw_stats_disconnect_label(i), gw_stats_disconnect_label(j));
}
END_TEST

static gw_stype_t type_of(const char *json)
{
    return gw_stype_of(json, strlen(json));
}

START_TEST(test_frame_types)
{
    ck_assert_int_eq(type_of("{\"type\":\"msg\",\"room\":\"r\",\"ts\":1}"), GW_S_MESSAGE);
    ck_assert_int_eq(type_of("{\"type\":\"ack\",\"cid\":\"c\"}"), GW_S_ACK);
    ck_assert_int_eq(type_of("{\"type\":\"welcome\"}"), GW_S_WELCOME);
    ck_assert_int_eq(type_of("{\"type\":\"presence\"}"), GW_S_PRESENCE);
    ck_assert_int_eq(type_of("{\"type\":\"pong\"}"), GW_S_PONG);
    ck_assert_int_eq(type_of("{\"type\":\"ok\",\"rid\":\"r\"}"), GW_S_OTHER);
    ck_assert_int_eq(type_of("{\"type\":\"acks\"}"), GW_S_OTHER);
    ck_assert_int_eq(type_of("{\"type\":\"ac"), GW_S_OTHER);
    ck_assert_int_eq(type_of("{\"room\":\"r\"}"), GW_S_OTHER);
    ck_assert_int_eq(type_of(""), GW_S_OTHER);
    ck_assert_int_eq(gw_stype_of(NULL, 0), GW_S_OTHER);
    /* the first type member is the frame's (nested objects come after it) */
    ck_assert_int_eq(type_of("{\"type\":\"update\",\"msg\":{\"type\":\"msg\"}}"), GW_S_UPDATE);
    /* a buffer knows its type from the start */
    gw_buf_t *b = gw_buf_new("{\"type\":\"history\",\"msgs\":[]}", 28);
    ck_assert_int_eq(b->stype, GW_S_HISTORY);
    gw_buf_unref(b);
    ck_assert_str_eq(gw_stype_name(GW_S_MESSAGE), "message");
    ck_assert_str_eq(gw_stype_name(GW_S__COUNT), "other");
    ck_assert_str_eq(gw_connect_result_name(GW_CONNECT_DRAINING), "draining");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_stats");
    TCase *tc = tcase_create("stats");
    tcase_add_test(tc, test_series_registered_with_zero);
    tcase_add_test(tc, test_disconnect_slots);
    tcase_add_test(tc, test_frame_types);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
