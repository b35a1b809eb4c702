/* Unit tests of services/message/dedup: new, resend (ack), same src (republish), repeat within
 * the batch, exact matching on (tenant, room, from, cid) over a superset of stored messages. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "services/message/dedup.h"
#include "tests/support/util.h"

static message_doc_t stored(const char *tenant, const char *room, const char *from, const char *cid,
                            const char *src, int64_t seq)
{
    message_doc_t d = {.tenant = tenant,
                       .room = room,
                       .from = from,
                       .cid = cid,
                       .src = src,
                       .text = "x",
                       .seq = seq,
                       .ts = 1000 + seq};
    memset(d.id, 'a', MESSAGE_ID_LEN);
    return d;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_all_new)
{
    const message_dedup_send_t sends[] = {
        {"t", "r", "alice", "c1", "0:1"},
        {"t", "r", "alice", "c2", "0:2"},
        {"t", "r", "bob", "c1", "0:3"}, /* same cid, other sender: another message */
    };
    message_dedup_decision_t out[N(sends)];
    ck_assert_int_eq(message_dedup_decide(sends, N(sends), NULL, 0, out), CHAT_OK);
    for (size_t i = 0; i < N(sends); i++)
        ck_assert_str_eq(message_dedup_kind_name(out[i].kind), "new");
}
END_TEST

START_TEST(test_resend_and_republish)
{
    const message_doc_t existing[] = {
        stored("t", "r", "alice", "c1", "0:1", 1), stored("t", "r", "alice", "c2", "0:5", 2),
        stored("t", "r", "alice", "c3", NULL, 3), /* a document without src */
    };
    const message_dedup_send_t sends[] = {
        {"t", "r", "alice", "c1", "0:9"}, /* resent by the client: another record */
        {"t", "r", "alice", "c2", "0:5"}, /* the record that stored it, replayed */
        {"t", "r", "alice", "c3", "0:10"},
        {"t", "r", "alice", "c4", "0:11"},
    };
    message_dedup_decision_t out[N(sends)];
    ck_assert_int_eq(message_dedup_decide(sends, N(sends), existing, N(existing), out), CHAT_OK);
    ck_assert_int_eq(out[0].kind, MESSAGE_DEDUP_RESEND);
    ck_assert_uint_eq(out[0].ref, 0);
    ck_assert_int_eq(out[1].kind, MESSAGE_DEDUP_REPUBLISH);
    ck_assert_uint_eq(out[1].ref, 1);
    ck_assert_int_eq(out[2].kind, MESSAGE_DEDUP_RESEND);
    ck_assert_uint_eq(out[2].ref, 2);
    ck_assert_int_eq(out[3].kind, MESSAGE_DEDUP_NEW);
}
END_TEST

START_TEST(test_repeat_within_batch)
{
    const message_doc_t existing[] = {stored("t", "r", "alice", "old", "0:1", 1)};
    const message_dedup_send_t sends[] = {
        {"t", "r", "alice", "c1", "0:2"},  {"t", "r", "alice", "old", "0:3"},
        {"t", "r", "alice", "c1", "0:4"},  /* repeats the first send */
        {"t", "r", "alice", "old", "0:5"}, /* the stored one wins: resend, not repeat */
        {"t", "r", "alice", "c1", "0:6"},
    };
    message_dedup_decision_t out[N(sends)];
    ck_assert_int_eq(message_dedup_decide(sends, N(sends), existing, N(existing), out), CHAT_OK);
    ck_assert_int_eq(out[0].kind, MESSAGE_DEDUP_NEW);
    ck_assert_int_eq(out[1].kind, MESSAGE_DEDUP_RESEND);
    ck_assert_int_eq(out[2].kind, MESSAGE_DEDUP_REPEAT);
    ck_assert_uint_eq(out[2].ref, 0);
    ck_assert_int_eq(out[3].kind, MESSAGE_DEDUP_RESEND);
    ck_assert_uint_eq(out[3].ref, 0);
    ck_assert_int_eq(out[4].kind, MESSAGE_DEDUP_REPEAT);
    ck_assert_uint_eq(out[4].ref, 0);
}
END_TEST

/* The store query returns every combination of the batch's tenants, rooms, senders and cids;
 * only exact matches count. */
START_TEST(test_superset_matches_exactly)
{
    const message_doc_t existing[] = {
        stored("t", "r", "bob", "c1", "0:1", 1),    /* other sender */
        stored("t", "r2", "alice", "c1", "0:2", 1), /* other room */
        stored("t2", "r", "alice", "c1", "0:3", 1), /* other tenant */
        stored("t", "r", "alice", "c10", "0:4", 2), /* other cid */
        stored("t", "r", "alic", "ec1", "0:5", 3),  /* concatenation collides, fields do not */
    };
    const message_dedup_send_t sends[] = {{"t", "r", "alice", "c1", "0:9"}};
    message_dedup_decision_t out[1];
    ck_assert_int_eq(message_dedup_decide(sends, 1, existing, N(existing), out), CHAT_OK);
    ck_assert_int_eq(out[0].kind, MESSAGE_DEDUP_NEW);

    const message_dedup_send_t in_other_room[] = {{"t", "r2", "alice", "c1", "0:9"}};
    ck_assert_int_eq(message_dedup_decide(in_other_room, 1, existing, N(existing), out), CHAT_OK);
    ck_assert_int_eq(out[0].kind, MESSAGE_DEDUP_RESEND);
    ck_assert_uint_eq(out[0].ref, 1);
}
END_TEST

START_TEST(test_large_batch)
{
    enum { SENDS = 500 };
    static char cids[SENDS][16];
    static message_dedup_send_t sends[SENDS];
    static message_doc_t existing[SENDS / 2];
    for (int i = 0; i < SENDS; i++) {
        snprintf(cids[i], sizeof cids[i], "c%d", i % 400); /* 100 repeats */
        sends[i] = (message_dedup_send_t){"t", "r", "u", cids[i], "0:1"};
    }
    for (int i = 0; i < SENDS / 2; i++) /* cids c0..c249 exist (odd ones stored by other src) */
        existing[i] = stored("t", "r", "u", cids[i], i % 2 ? "1:1" : "0:1", i + 1);
    static message_dedup_decision_t out[SENDS];
    ck_assert_int_eq(message_dedup_decide(sends, SENDS, existing, SENDS / 2, out), CHAT_OK);
    for (int i = 0; i < SENDS; i++) {
        int c = i % 400;
        if (c < SENDS / 2)
            ck_assert_int_eq(out[i].kind, c % 2 ? MESSAGE_DEDUP_RESEND : MESSAGE_DEDUP_REPUBLISH);
        else if (i < 400)
            ck_assert_int_eq(out[i].kind, MESSAGE_DEDUP_NEW);
        else
            ck_assert_int_eq(out[i].kind, MESSAGE_DEDUP_REPEAT);
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("message_dedup");
    TCase *tc = tcase_create("dedup");
    tcase_add_test(tc, test_all_new);
    tcase_add_test(tc, test_resend_and_republish);
    tcase_add_test(tc, test_repeat_within_batch);
    tcase_add_test(tc, test_superset_matches_exactly);
    tcase_add_test(tc, test_large_batch);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
