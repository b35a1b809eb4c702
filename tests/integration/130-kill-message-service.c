/* Fault: kill -9 of the message service in the middle of a stream of sends, then restart
 * with scripts/up. Clients resend unacked cids until acked; afterwards every acked message
 * is in history exactly once, seqs are gapless, each cid is stored once, and a subscriber
 * saw every message once and in order. The test restores the service whatever happens. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define SENDERS 3
#define PER_SENDER 40
#define TOTAL (SENDERS * PER_SENDER)
#define KILL_AFTER 30      /* messages issued before the kill */
#define OUTAGE_MS 3000     /* sends keep coming for this long before the restart */
#define RESEND_MS 3000     /* an unacked cid is sent again after this (times sends) */
#define ISSUE_EVERY_MS 120 /* per sender; under the rate limit with resends on top */
#define DEADLINE_MS 180000
#define SERVICE "message"

typedef struct pending_msg {
    char cid[32];
    char text[96];
    int64_t last_send_ms;
    int64_t seq; /* from the first ack; 0 until acked */
    char id[32];
    int sends;
} pending_msg_t;

typedef struct sender {
    chat_tc_t *c;
    char user[64];
    pending_msg_t msgs[PER_SENDER];
    size_t issued;
    size_t acked;
    int64_t next_issue_ms;
} sender_t;

static sender_t senders[SENDERS];
static char room[96];

/* Restores the message service if a test left it dead (runs even when the test failed). */
static void restore_message_service(void)
{
    if (chat_test_service_pid(SERVICE) < 0)
        chat_test_stack_up();
    ck_assert_msg(chat_test_wait_ready(chat_test_ops_port_message(), 60000),
                  "the message service is not ready again");
}

static void send_msg(sender_t *s, pending_msg_t *m)
{
    chat_tc_send_frame(s->c, chat_client_frame_send(room, m->cid, m->text));
    m->last_send_ms = chat_clock_mono_ms();
    m->sends++;
}

static pending_msg_t *find_cid(sender_t *s, const char *cid)
{
    for (size_t i = 0; i < s->issued; i++) {
        if (strcmp(s->msgs[i].cid, cid) == 0)
            return &s->msgs[i];
    }
    return NULL;
}

/* Handles every ack and error that has arrived for s: records first acks, checks that
 * repeated acks agree, and makes errored cids due for a resend. */
static void absorb_answers(sender_t *s)
{
    chat_tc_wait_close(s->c, 0, NULL, 0); /* pulls everything available into the queue */
    ck_assert_msg(!chat_tc_closed(s->c), "%s lost its connection (code %d)", s->user,
                  chat_tc_close_code(s->c));
    cJSON *f;
    while ((f = chat_tc_wait(s->c, "ack", 0)) != NULL) {
        pending_msg_t *m = find_cid(s, chat_json_str(f, "cid") ?: "");
        ck_assert_msg(m != NULL, "%s: ack of a cid never sent", s->user);
        int64_t seq = chat_json_int(f, "seq");
        if (m->seq == 0) {
            m->seq = seq;
            snprintf(m->id, sizeof m->id, "%s", chat_json_str(f, "id") ?: "");
            s->acked++;
        } else {
            ck_assert_msg(m->seq == seq && strcmp(m->id, chat_json_str(f, "id") ?: "") == 0,
                          "%s: cid %s acked as seq %lld and as seq %lld", s->user, m->cid,
                          (long long)m->seq, (long long)seq);
        }
        cJSON_Delete(f);
    }
    while ((f = chat_tc_wait(s->c, "error", 0)) != NULL) {
        pending_msg_t *m = find_cid(s, chat_json_str(f, "cid") ?: "");
        ck_assert_msg(m != NULL, "%s: error %s (%s) not about a send", s->user,
                      chat_json_str(f, "code"), chat_json_str(f, "message"));
        if (m->seq == 0)
            m->last_send_ms = 0; /* resend at once */
        cJSON_Delete(f);
    }
    chat_tc_drop(s->c, "msg");
}

/* One round of the stream for s: a new message when due, resends of overdue cids. */
static void drive(sender_t *s, int64_t now)
{
    if (s->issued < PER_SENDER && now >= s->next_issue_ms) {
        pending_msg_t *m = &s->msgs[s->issued++];
        send_msg(s, m);
        s->next_issue_ms = now + ISSUE_EVERY_MS;
    }
    for (size_t i = 0; i < s->issued; i++) {
        pending_msg_t *m = &s->msgs[i];
        /* Backing off like a real client: 3 s, 6 s, 9 s, then every 12 s. */
        int64_t wait = RESEND_MS * (m->sends < 4 ? m->sends : 4);
        if (m->seq == 0 && now - m->last_send_ms >= wait)
            send_msg(s, m);
    }
}

static size_t total_issued(void)
{
    size_t n = 0;
    for (size_t k = 0; k < SENDERS; k++)
        n += senders[k].issued;
    return n;
}

static size_t total_acked(void)
{
    size_t n = 0;
    for (size_t k = 0; k < SENDERS; k++)
        n += senders[k].acked;
    return n;
}

/* Takes the msgs the watcher has received within wait_ms: they must continue its seq
 * sequence without gaps or repeats. */
static void watch(chat_tc_t *watcher, int64_t *last, int wait_ms)
{
    chat_tc_wait_close(watcher, wait_ms, NULL, 0); /* pulls frames in for wait_ms */
    ck_assert_msg(!chat_tc_closed(watcher), "the watcher lost its connection");
    cJSON *m;
    while ((m = chat_tc_wait_for(watcher, "msg", "room", room, 0)) != NULL) {
        int64_t seq = chat_json_int(m, "seq");
        ck_assert_msg(seq == *last + 1, "watcher got seq %lld after %lld", (long long)seq,
                      (long long)*last);
        *last = seq;
        cJSON_Delete(m);
    }
}

/* Finds the message with text among all senders' messages. */
static pending_msg_t *find_text(const char *text)
{
    for (size_t k = 0; k < SENDERS; k++) {
        for (size_t i = 0; i < PER_SENDER; i++) {
            if (strcmp(senders[k].msgs[i].text, text) == 0)
                return &senders[k].msgs[i];
        }
    }
    return NULL;
}

/* Pages history back from the newest and checks it against what was acked. */
static void check_history(chat_tc_t *c)
{
    static bool seen[TOTAL + 1];
    memset(seen, 0, sizeof seen);
    int64_t before = 0, count = 0;
    bool more = true;
    while (more) {
        cJSON *h = chat_tc_history(c, room, before, 100);
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(h, "msgs");
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            int64_t seq = chat_json_int(m, "seq");
            ck_assert_msg(seq >= 1 && seq <= TOTAL, "history holds seq %lld of %d messages",
                          (long long)seq, TOTAL);
            ck_assert_msg(!seen[seq], "seq %lld twice in history", (long long)seq);
            seen[seq] = true;
            pending_msg_t *p = find_text(chat_json_str(m, "text") ?: "");
            ck_assert_msg(p != NULL, "history holds a message nobody sent");
            ck_assert_msg(p->seq == seq, "%s: acked as seq %lld, stored as seq %lld", p->cid,
                          (long long)p->seq, (long long)seq);
            ck_assert_str_eq(chat_json_str(m, "id"), p->id);
            count++;
        }
        int n = cJSON_GetArraySize(msgs);
        more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "more"));
        if (n > 0)
            before = chat_json_int(cJSON_GetArrayItem(msgs, 0), "seq");
        cJSON_Delete(h);
        ck_assert_msg(n > 0 || !more, "an empty history page with more");
    }
    /* Every acked cid is stored exactly once (texts are unique per cid), seqs 1..TOTAL. */
    ck_assert_int_eq(count, TOTAL);
}

START_TEST(test_kill_message_service_mid_stream)
{
    chat_test_unique(room, sizeof room, "crash");
    char watcher_user[64];
    chat_test_unique(watcher_user, sizeof watcher_user, "watcher");
    chat_tc_t *watcher = chat_tc_connect_demo(1, watcher_user);
    cJSON_Delete(chat_tc_join(watcher, room, -1));
    for (size_t k = 0; k < SENDERS; k++) {
        sender_t *s = &senders[k];
        memset(s, 0, sizeof *s);
        chat_test_unique(s->user, sizeof s->user, "streamer");
        s->c = chat_tc_connect_demo(k % 2, s->user);
        /* A copy: GCC's -Wrestrict takes s->user and s->msgs[i].text for one object. */
        char user[sizeof s->user];
        memcpy(user, s->user, sizeof user);
        for (size_t i = 0; i < PER_SENDER; i++) {
            snprintf(s->msgs[i].cid, sizeof s->msgs[i].cid, "s%zu-%zu", k, i);
            snprintf(s->msgs[i].text, sizeof s->msgs[i].text, "%s says %zu", user, i);
        }
    }
    int64_t start = chat_clock_mono_ms(), killed_at = -1;
    bool restarted = false;
    int64_t last_watched = 0;
    while (total_acked() < TOTAL) {
        int64_t now = chat_clock_mono_ms();
        ck_assert_msg(now - start < DEADLINE_MS, "only %zu of %d messages acked in time",
                      total_acked(), TOTAL);
        for (size_t k = 0; k < SENDERS; k++) {
            drive(&senders[k], now);
            absorb_answers(&senders[k]);
        }
        if (killed_at < 0 && total_issued() >= KILL_AFTER) {
            chat_test_service_kill9(SERVICE);
            killed_at = chat_clock_mono_ms();
            printf("message service killed after %zu sends (%zu acked)\n", total_issued(),
                   total_acked());
        }
        if (killed_at >= 0 && !restarted && now - killed_at >= OUTAGE_MS) {
            chat_test_stack_up();
            ck_assert(chat_test_wait_ready(chat_test_ops_port_message(), 60000));
            restarted = true;
            printf("message service restarted after %lld ms\n",
                   (long long)(chat_clock_mono_ms() - killed_at));
        }
        watch(watcher, &last_watched, 20);
    }
    ck_assert_msg(restarted, "the stream ended before the restart");
    int resends = 0;
    for (size_t k = 0; k < SENDERS; k++) {
        for (size_t i = 0; i < PER_SENDER; i++)
            resends += senders[k].msgs[i].sends - 1;
    }
    printf("%d messages acked %lld ms after the kill, with %d resends\n", TOTAL,
           (long long)(chat_clock_mono_ms() - killed_at), resends);
    ck_assert_msg(resends > 0, "the outage did not hit any send: the test proved nothing");
    while (last_watched < TOTAL && chat_clock_mono_ms() - start < DEADLINE_MS)
        watch(watcher, &last_watched, 100);
    ck_assert_int_eq(last_watched, TOTAL);
    watch(watcher, &last_watched, 1000); /* fails on any repeat */
    check_history(watcher);
    for (size_t k = 0; k < SENDERS; k++)
        chat_tc_close(senders[k].c);
    chat_tc_close(watcher);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("kill-message-service");
    TCase *tc = tcase_create("fault");
    tcase_set_timeout(tc, 400);
    tcase_add_checked_fixture(tc, NULL, restore_message_service);
    tcase_add_test(tc, test_kill_message_service_mid_stream);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
