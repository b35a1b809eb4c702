/* Fault: kill -9 of gateway 0 while its clients chat with clients of gateway 1: alice and
 * carol, on gateway 0, have sends out and not yet acked when it dies. They reconnect to
 * gateway 1, join with since (the last seq they hold) and resend what was not acked: they miss
 * nothing that was sent meanwhile, get nothing twice, every message is stored once whether or
 * not its first send got through, and traffic sent while they rejoin arrives too. Gateway 0 is
 * restarted with scripts/up for the tests that follow. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define SERVICE "gateway-0"
#define QUIET_MS 1000
#define IN_FLIGHT 3 /* sends each client of gateway 0 has out when it dies */
#define MAX_MSGS 40 /* per member */
#define MAX_SEQ 128

/* One message of a member: its ack's seq once acked. */
typedef struct sent_msg {
    char cid[32];
    char text[192];
    int64_t seq; /* 0 until acked */
} sent_msg_t;

/* A test user with its connection, what it sent and the last seq it received in order. */
typedef struct member {
    chat_tc_t *c;
    char user[64];
    sent_msg_t msgs[MAX_MSGS];
    int nsent;
    int64_t last;
} member_t;

static char room[96];
/* The text of each seq of the room, learnt from acks and msgs (which must agree). */
static char seq_text[MAX_SEQ + 1][192];
static member_t bob, alice, carol, dave;

/* Restores gateway 0 if a test left it dead (runs even when the test failed). */
static void restore_gateway(void)
{
    if (chat_test_service_pid(SERVICE) < 0)
        chat_test_stack_up();
    ck_assert_msg(chat_test_wait_ready(chat_test_ops_port_gateway(0), 60000),
                  "gateway 0 is not ready again");
}

static void member_connect(member_t *m, size_t gw)
{
    m->c = chat_tc_connect_demo(gw, m->user);
}

/* Records that seq holds text; fails if it was seen holding another text. */
static void learn(int64_t seq, const char *text, const char *what)
{
    ck_assert_msg(seq >= 1 && seq <= MAX_SEQ, "%s: seq %lld", what, (long long)seq);
    if (seq_text[seq][0] == '\0')
        snprintf(seq_text[seq], sizeof seq_text[seq], "%s", text);
    ck_assert_msg(strcmp(seq_text[seq], text) == 0, "%s: seq %lld holds \"%s\" and \"%s\"", what,
                  (long long)seq, seq_text[seq], text);
}

/* The highest seq an ack or msg has shown so far. */
static int64_t room_latest(void)
{
    int64_t latest = 0;
    for (int64_t seq = 1; seq <= MAX_SEQ; seq++)
        latest = seq_text[seq][0] != '\0' ? seq : latest;
    return latest;
}

/* Sends n new messages from m without waiting for their acks. */
static void issue(member_t *m, int n)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_lt(m->nsent, MAX_MSGS);
        sent_msg_t *s = &m->msgs[m->nsent++];
        snprintf(s->cid, sizeof s->cid, "n%d", m->nsent);
        snprintf(s->text, sizeof s->text, "%s: %s no. %d", room, m->user, m->nsent);
        chat_tc_send_frame(m->c, chat_client_frame_send(room, s->cid, s->text));
    }
}

/* Sends again, under the same cids, every message of m not acked yet. */
static void resend_unacked(member_t *m)
{
    for (int i = 0; i < m->nsent; i++) {
        if (m->msgs[i].seq == 0)
            chat_tc_send_frame(m->c, chat_client_frame_send(room, m->msgs[i].cid, m->msgs[i].text));
    }
}

static void record_ack(member_t *m, sent_msg_t *s, const cJSON *ack)
{
    s->seq = chat_json_int(ack, "seq");
    char what[128];
    snprintf(what, sizeof what, "%s's ack of %s", m->user, s->cid);
    learn(s->seq, s->text, what);
}

/* Waits for the ack of every message of m not acked yet, in the order they were issued. */
static void await_acks(member_t *m)
{
    for (int i = 0; i < m->nsent; i++) {
        sent_msg_t *s = &m->msgs[i];
        if (s->seq != 0)
            continue;
        cJSON *ack = chat_tc_expect_ack(m->c, s->cid, CHAT_TC_TIMEOUT_MS);
        record_ack(m, s, ack);
        cJSON_Delete(ack);
    }
}

/* Takes the acks that reached m before its connection ended (a real client knows those
 * messages are stored); returns how many of its messages are still unacked. */
static int absorb_queued_acks(member_t *m)
{
    int unacked = 0;
    for (int i = 0; i < m->nsent; i++) {
        sent_msg_t *s = &m->msgs[i];
        cJSON *ack = s->seq == 0 ? chat_tc_wait_for(m->c, "ack", "cid", s->cid, 0) : NULL;
        if (ack != NULL)
            record_ack(m, s, ack);
        unacked += ack == NULL && s->seq == 0;
        cJSON_Delete(ack);
    }
    return unacked;
}

/* Takes the msgs of the room that c received, waiting up to timeout_ms for each until m holds
 * upto (timeout 0: only those already received): each must be the seq after the last one. */
static void take_msgs(member_t *m, int64_t upto, int timeout_ms, const char *who)
{
    while (m->last < upto) {
        cJSON *f = chat_tc_wait_for(m->c, "msg", "room", room, timeout_ms);
        if (f == NULL) {
            ck_assert_msg(timeout_ms == 0, "%s: msg %lld missing", who, (long long)m->last + 1);
            return;
        }
        int64_t seq = chat_json_int(f, "seq");
        ck_assert_msg(seq == m->last + 1, "%s: seq %lld where %lld was due", who, (long long)seq,
                      (long long)m->last + 1);
        learn(seq, chat_json_str(f, "text") ?: "", who);
        m->last = seq;
        cJSON_Delete(f);
    }
}

/* Expects that m has received no further msg (call after the quiet period: nothing is waited
 * for). */
static void expect_quiet(member_t *m, const char *who)
{
    cJSON *f = chat_tc_wait_for(m->c, "msg", "room", room, 0);
    ck_assert_msg(f == NULL, "%s: extra msg seq %lld", who, (long long)chat_json_int(f, "seq"));
}

/* m's connection to the killed gateway must end as a lost one; what arrived before is taken.
 * Returns how many of m's messages are unacked. */
static int lose_connection(member_t *m)
{
    int code = chat_tc_wait_close(m->c, CHAT_TC_TIMEOUT_MS, NULL, 0);
    ck_assert_msg(code == 1006, "%s's connection: close code %d, expected a lost one", m->user,
                  code);
    take_msgs(m, MAX_SEQ, 0, m->user);
    int unacked = absorb_queued_acks(m);
    chat_tc_free(m->c);
    m->c = NULL;
    return unacked;
}

static void member_init(member_t *m, const char *prefix)
{
    memset(m, 0, sizeof *m);
    chat_test_unique(m->user, sizeof m->user, prefix);
}

START_TEST(test_kill_gateway_clients_resume_elsewhere)
{
    chat_test_unique(room, sizeof room, "gwcrash");
    memset(seq_text, 0, sizeof seq_text);
    member_init(&bob, "bob");
    member_init(&alice, "alice");
    member_init(&carol, "carol");
    member_init(&dave, "dave");
    member_connect(&bob, 1);
    member_connect(&alice, 0);
    member_connect(&carol, 0);
    cJSON_Delete(chat_tc_join(bob.c, room, -1));
    cJSON_Delete(chat_tc_join(alice.c, room, -1));
    cJSON_Delete(chat_tc_join(carol.c, room, -1));
    issue(&bob, 10);
    await_acks(&bob);
    for (int i = 0; i < 10; i++) /* a fresh room, one writer */
        ck_assert_int_eq(bob.msgs[i].seq, i + 1);
    take_msgs(&alice, 10, CHAT_TC_TIMEOUT_MS, "alice before the crash");
    take_msgs(&carol, 10, CHAT_TC_TIMEOUT_MS, "carol before the crash");

    /* Gateway 0 dies while its clients chat: depending on the timing, the first of their
     * sends are acked, stored but not acked, or not even in Kafka; the last ones certainly have
     * no ack yet. */
    for (int i = 0; i < IN_FLIGHT; i++) {
        issue(&alice, 1);
        issue(&carol, 1);
    }
    chat_test_service_kill9(SERVICE);
    int unacked = lose_connection(&alice) + lose_connection(&carol);
    printf("gateway 0 killed with %d of %d sends unacked\n", unacked, 2 * IN_FLIGHT);
    ck_assert_msg(unacked > 0, "every send was acked before the kill: the test proved nothing");

    /* Traffic goes on while they are away. bob's sends are stored in his order; a send of
     * gateway 0 that was on its way to the broker at the kill may still be stored among them
     * (the broker handles the requests of one connection one at a time, so a request it had
     * not read yet is appended later), at most one seq per send that was out. */
    int64_t before_gap = room_latest();
    issue(&bob, 15);
    await_acks(&bob);
    ck_assert_int_gt(bob.msgs[10].seq, 10);
    for (int i = 11; i < 25; i++)
        ck_assert_int_gt(bob.msgs[i].seq, bob.msgs[i - 1].seq);
    int64_t latest = bob.msgs[24].seq;
    ck_assert_int_ge(latest, before_gap + 15);
    ck_assert_int_le(latest, 10 + 15 + 2 * IN_FLIGHT);

    /* alice comes back on gateway 1 with the last seq she holds and resends what was not
     * acked: what got through keeps its seq, the rest is stored now. */
    member_connect(&alice, 1);
    cJSON *j = chat_tc_join(alice.c, room, alice.last);
    ck_assert_int_eq(chat_json_int(j, "seq"), latest);
    cJSON_Delete(j);
    take_msgs(&alice, latest, CHAT_TC_TIMEOUT_MS, "alice's replay");
    resend_unacked(&alice);
    await_acks(&alice);
    int through = 0; /* sends out at the kill that were stored before they were resent */
    for (int i = 0; i < alice.nsent; i++)
        through += alice.msgs[i].seq > bob.msgs[9].seq && alice.msgs[i].seq < bob.msgs[24].seq;

    /* carol rejoins and resends while bob is sending: some of bob's next messages are stored
     * before her join's read, some after; each must arrive exactly once either way. */
    issue(&bob, 7);
    member_connect(&carol, 1);
    cJSON_Delete(chat_tc_join(carol.c, room, carol.last));
    resend_unacked(&carol);
    issue(&bob, 8);
    await_acks(&bob);
    for (int i = 26; i < 40; i++) /* one connection: in order (carol's may come between) */
        ck_assert_int_gt(bob.msgs[i].seq, bob.msgs[i - 1].seq);
    await_acks(&carol);
    for (int i = 0; i < carol.nsent; i++)
        through += carol.msgs[i].seq > bob.msgs[9].seq && carol.msgs[i].seq < bob.msgs[24].seq;
    printf("%d of the %d sends out at the kill were stored before it\n", through, 2 * IN_FLIGHT);
    latest = room_latest();
    take_msgs(&carol, latest, CHAT_TC_TIMEOUT_MS, "carol's replay and live");
    take_msgs(&alice, latest, CHAT_TC_TIMEOUT_MS, "alice live");
    chat_clock_sleep_ms(QUIET_MS); /* once for both */
    expect_quiet(&carol, "carol");
    expect_quiet(&alice, "alice");

    /* Gateway 0 comes back and serves again. */
    chat_test_stack_up();
    ck_assert(chat_test_wait_ready(chat_test_ops_port_gateway(0), 60000));
    member_connect(&dave, 0);
    j = chat_tc_join(dave.c, room, 0);
    ck_assert_int_eq(chat_json_int(j, "seq"), latest);
    cJSON_Delete(j);
    take_msgs(&dave, latest, CHAT_TC_TIMEOUT_MS, "dave on the restarted gateway");
    issue(&dave, 1);
    await_acks(&dave);
    ck_assert_int_eq(dave.msgs[0].seq, latest + 1);
    latest++;
    take_msgs(&alice, latest, CHAT_TC_TIMEOUT_MS, "alice from the restarted gateway");
    take_msgs(&bob, latest, CHAT_TC_TIMEOUT_MS, "bob");
    chat_clock_sleep_ms(QUIET_MS);
    expect_quiet(&bob, "bob");

    /* Every message is stored once: as many seqs as messages, each seq holding one of them
     * (learn() checked that acks and msgs agree on each seq's text). */
    ck_assert_int_eq(latest, 40 + 2 * IN_FLIGHT + 1);
    for (int64_t seq = 1; seq <= latest; seq++)
        ck_assert_msg(seq_text[seq][0] != '\0', "seq %lld never seen", (long long)seq);
    chat_tc_close(dave.c);
    chat_tc_close(alice.c);
    chat_tc_close(carol.c);
    chat_tc_close(bob.c);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("kill-gateway");
    TCase *tc = tcase_create("fault");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, restore_gateway);
    tcase_add_test(tc, test_kill_gateway_clients_resume_elsewhere);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
