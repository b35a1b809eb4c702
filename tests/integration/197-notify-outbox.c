/* The outbox of notify (services/notify/outbox.c) against the stack's real Redis, in a db of
 * its own (no notify sender of the stack may claim these jobs): idempotent push notes and the
 * collapse window, a push's sent range and the window that a note during the claim starts,
 * claims racing from two connections, the lease (a dead sender's job comes back; a late sender
 * changes nothing), retries, webhook done markers, recalls on read and on removal, digests. */
#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/redis_int.h"
#include "services/notify/outbox.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define OUTBOX_DB 11
#define WINDOW 5000

static chat_redis_t *redis;
static char db_url[512];
static char tenant[64];
static const char *USER = "ann|x"; /* a user id may hold '|': the job id must still parse */
static const char *ROOM = "lobby";

/* ---- helpers ---- */

/* Deletes every key of the outbox in the test's db. */
static void delete_outbox_keys(void)
{
    chat_err_t err;
    redisReply *keys = chat_redis_command(redis, &err, "KEYS chat:notify:*");
    ck_assert_ptr_nonnull(keys);
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *del =
            chat_redis_command(redis, &err, "DEL %b", keys->element[i]->str, keys->element[i]->len);
        ck_assert_ptr_nonnull(del);
        freeReplyObject(del);
    }
    freeReplyObject(keys);
}

static void setup(void)
{
    chat_redis_url_t url;
    ck_assert_int_eq(chat_redis__parse_url(chat_test_stack_get("CHAT_REDIS_URL"), &url), CHAT_OK);
    snprintf(db_url, sizeof db_url, "redis://[%s]:%d/%d", url.host, url.port, OUTBOX_DB);
    ck_assert_int_eq(chat_redis_connect(db_url, 2000, &redis), CHAT_OK);
    delete_outbox_keys();
    chat_test_unique(tenant, sizeof tenant, "it197");
}

static void teardown(void)
{
    delete_outbox_keys();
    chat_redis_free(redis);
    redis = NULL;
}

/* A string reply of a command (one %s argument) into buf, "" for nil. */
static const char *get_str(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
    chat_err_t err;
    redisReply *r = b != NULL ? chat_redis_command(redis, &err, fmt, a, b)
                              : chat_redis_command(redis, &err, fmt, a);
    ck_assert_ptr_nonnull(r);
    if (r->type == REDIS_REPLY_STRING)
        snprintf(buf, len, "%s", r->str);
    else if (r->type == REDIS_REPLY_INTEGER)
        snprintf(buf, len, "%lld", r->integer);
    else
        buf[0] = '\0';
    freeReplyObject(r);
    return buf;
}

static char *id_of(const char *kind)
{
    static char buf[256];
    if (strcmp(kind, "email") == 0)
        snprintf(buf, sizeof buf, "email|%s|%s", tenant, USER);
    else
        snprintf(buf, sizeof buf, "%s|%s|%s|%s", kind, tenant, USER, ROOM);
    return buf;
}

/* The field of job id's hash, "" if absent. */
static const char *job_field(const char *id, const char *field)
{
    static char buf[4096];
    char key[300];
    snprintf(key, sizeof key, "chat:notify:job:%s", id);
    return get_str(buf, sizeof buf, "HGET %s %s", key, field);
}

static bool job_exists(const char *id)
{
    char key[300], buf[32];
    snprintf(key, sizeof key, "chat:notify:job:%s", id);
    return strcmp(get_str(buf, sizeof buf, "EXISTS %s", key, NULL), "1") == 0;
}

/* The job's score in the due set, -1 if it is not there. */
static int64_t due_of(const char *id)
{
    char buf[64];
    get_str(buf, sizeof buf, "ZSCORE " NQ_DUE_KEY " %s", id, NULL);
    return buf[0] != '\0' ? (int64_t)strtod(buf, NULL) : -1;
}

static const char *sent_field(const char *user)
{
    static char buf[128];
    char key[256];
    snprintf(key, sizeof key, "chat:notify:sent:{%s/%s}", tenant, user);
    return get_str(buf, sizeof buf, "HGET %s %s", key, ROOM);
}

static void run(nq_batch_t *b)
{
    ck_assert_int_eq(nq_batch_run(b, redis), CHAT_OK);
    ck_assert_uint_eq(nq_batch_size(b), 0);
}

/* Notes seq of USER in ROOM at now. */
static void note_push(int64_t seq, int64_t now, const char *text, bool urgent)
{
    nq_batch_t *b = nq_batch_new();
    char id[32];
    snprintf(id, sizeof id, "%024lld", (long long)seq);
    nq_push_note_t n = {.tenant = tenant,
                        .user = USER,
                        .room = ROOM,
                        .seq = seq,
                        .ts = now,
                        .id = id,
                        .from = "bob",
                        .name = "Bob",
                        .text = text,
                        .urgent = urgent};
    ck_assert_int_eq(nq_note_push(b, &n, now, WINDOW), CHAT_OK);
    ck_assert_uint_eq(nq_batch_size(b), 1);
    run(b);
    nq_batch_free(b);
}

/* Claims at now and expects exactly one job, id. */
static nq_job_t *claim_one(const char *id, int64_t now)
{
    nq_job_t *jobs = NULL;
    size_t n = 0;
    ck_assert_int_eq(nq_claim(redis, now, 10, &jobs, &n), CHAT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(jobs[0].id, id);
    return jobs;
}

static size_t claim_count(int64_t now)
{
    nq_job_t *jobs = NULL;
    size_t n = 0;
    ck_assert_int_eq(nq_claim(redis, now, 100, &jobs, &n), CHAT_OK);
    nq_jobs_free(jobs, n);
    return n;
}

/* ---- push windows ---- */

START_TEST(push_note_opens_a_window_and_is_idempotent)
{
    int64_t t = 1000000;
    const char *id = id_of("push");
    note_push(10, t, "first", false);
    ck_assert_int_eq(due_of(id), t + WINDOW);
    note_push(11, t + 100, "second", true);
    note_push(11, t + 200, "replayed", false); /* a replay: changes nothing */
    note_push(9, t + 300, "older", false);
    ck_assert_int_eq(due_of(id), t + WINDOW); /* notes do not push the window out */
    ck_assert_str_eq(job_field(id, "seq"), "11");
    ck_assert_str_eq(job_field(id, "first"), "10");
    ck_assert_str_eq(job_field(id, "count"), "2");
    ck_assert_str_eq(job_field(id, "text"), "second");
    ck_assert_str_eq(job_field(id, "urgent"), "1");
    ck_assert_str_eq(job_field(id, "name"), "Bob");

    ck_assert_uint_eq(claim_count(t + WINDOW - 1), 0); /* not due yet */
    nq_job_t *j = claim_one(id, t + WINDOW);
    ck_assert_int_eq(j->kind, NQ_PUSH);
    ck_assert_str_eq(j->tenant, tenant);
    ck_assert_str_eq(j->user, USER);
    ck_assert_str_eq(j->room, ROOM);
    ck_assert_str_eq(nq_job_field(j, "text"), "second");
    ck_assert_int_eq(j->lease, t + WINDOW + NQ_LEASE_MS);
    ck_assert_int_eq(due_of(id), j->lease);
    ck_assert_uint_eq(claim_count(t + WINDOW), 0); /* claimed: nobody else gets it */

    int64_t sent_at = t + WINDOW + 50;
    ck_assert_int_eq(nq_push_sent(redis, j, 10, 11, sent_at), CHAT_OK);
    ck_assert(!job_exists(id));
    ck_assert_int_eq(due_of(id), -1);
    char want[64];
    snprintf(want, sizeof want, "10:11:%lld", (long long)sent_at);
    ck_assert_str_eq(sent_field(USER), want);
    char key[256], buf[16];
    snprintf(key, sizeof key, "chat:notify:shown:{%s/%s}", tenant, ROOM);
    ck_assert_str_eq(get_str(buf, sizeof buf, "SISMEMBER %s %s", key, USER), "1");

    /* A replay of what was sent opens no window; a new message opens one a window from now. */
    note_push(11, sent_at + 10, "replayed", false);
    ck_assert(!job_exists(id));
    note_push(12, sent_at + 10, "third", false);
    ck_assert_int_eq(due_of(id), sent_at + 10 + WINDOW);
    nq_jobs_free(j, 1);
    j = claim_one(id, sent_at + 10 + WINDOW);
    ck_assert_int_eq(nq_finish(redis, j, false), CHAT_OK);
    ck_assert(!job_exists(id));
    nq_jobs_free(j, 1);
}
END_TEST

START_TEST(push_window_waits_a_window_after_the_last_push)
{
    int64_t t = 2000000;
    const char *id = id_of("push");
    note_push(1, t, "a", false);
    nq_job_t *j = claim_one(id, t + WINDOW);
    ck_assert_int_eq(nq_push_sent(redis, j, 1, 1, t + WINDOW), CHAT_OK);
    nq_jobs_free(j, 1);
    /* A note stamped before the push (a clock behind): due a window after the push. */
    note_push(2, t + WINDOW - 3000, "b", false);
    ck_assert_int_eq(due_of(id), t + 2 * WINDOW);
}
END_TEST

START_TEST(note_during_the_claim_starts_a_new_window)
{
    int64_t t = 3000000;
    const char *id = id_of("push");
    note_push(5, t, "a", false);
    note_push(6, t + 10, "b", false);
    nq_job_t *j = claim_one(id, t + WINDOW);
    note_push(7, t + WINDOW + 20, "c", false); /* arrives while the sender works */
    ck_assert_int_eq(nq_push_sent(redis, j, 5, 6, t + WINDOW + 30), CHAT_OK);
    ck_assert(job_exists(id));
    ck_assert_str_eq(job_field(id, "first"), "7");
    ck_assert_str_eq(job_field(id, "seq"), "7");
    ck_assert_str_eq(job_field(id, "count"), "1");
    ck_assert_str_eq(job_field(id, "text"), "c");
    ck_assert_str_eq(job_field(id, "lease"), "");
    ck_assert_int_eq(due_of(id), t + WINDOW + 30 + WINDOW);
    ck_assert_str_ne(sent_field(USER), "");
    nq_jobs_free(j, 1);

    /* A job finished without a push (the user was online) also keeps what came after. */
    j = claim_one(id, t + 3 * WINDOW);
    note_push(8, t + 3 * WINDOW + 1, "d", false);
    ck_assert_int_eq(nq_finish(redis, j, false), CHAT_OK);
    ck_assert_str_eq(job_field(id, "first"), "8");
    nq_jobs_free(j, 1);
    int64_t due = due_of(id); /* nq_finish takes its own clock: a window from the wall time */
    ck_assert_int_ge(due, chat_clock_wall_ms() + WINDOW - 10000);
    j = claim_one(id, due);
    ck_assert_int_eq(nq_finish(redis, j, false), CHAT_OK);
    ck_assert(!job_exists(id));
    nq_jobs_free(j, 1);
}
END_TEST

/* ---- claims and leases ---- */

#define RACE_JOBS 40

typedef struct racer {
    int64_t now;
    char *ids[RACE_JOBS];
    size_t n;
    chat_err_t err;
} racer_t;

static void *race(void *arg)
{
    racer_t *rc = arg;
    chat_redis_t *r = NULL;
    rc->err = chat_redis_connect(db_url, 2000, &r);
    for (;;) {
        nq_job_t *jobs = NULL;
        size_t n = 0;
        if (rc->err != CHAT_OK || (rc->err = nq_claim(r, rc->now, 3, &jobs, &n)) != CHAT_OK)
            break;
        for (size_t i = 0; i < n && rc->n < RACE_JOBS; i++)
            rc->ids[rc->n++] = strdup(jobs[i].id);
        nq_jobs_free(jobs, n);
        if (n == 0)
            break;
    }
    chat_redis_free(r);
    return NULL;
}

START_TEST(two_senders_racing_never_claim_the_same_job)
{
    int64_t t = 4000000;
    nq_batch_t *b = nq_batch_new();
    for (int i = 0; i < RACE_JOBS; i++) {
        char msg[40], ep[16];
        snprintf(msg, sizeof msg, "msg_%032d", i);
        snprintf(ep, sizeof ep, "wh_%d", i % 3);
        ck_assert_int_eq(nq_webhook_add(b, tenant, ep, msg, ROOM, NULL, "message.new", "{}", t),
                         CHAT_OK);
    }
    run(b);
    nq_batch_free(b);

    racer_t a = {.now = t}, c = {.now = t};
    pthread_t ta, tc;
    ck_assert_int_eq(pthread_create(&ta, NULL, race, &a), 0);
    ck_assert_int_eq(pthread_create(&tc, NULL, race, &c), 0);
    pthread_join(ta, NULL);
    pthread_join(tc, NULL);
    ck_assert_int_eq(a.err, CHAT_OK);
    ck_assert_int_eq(c.err, CHAT_OK);
    ck_assert_uint_eq(a.n + c.n, RACE_JOBS);
    for (size_t i = 0; i < a.n; i++) {
        for (size_t k = 0; k < c.n; k++)
            ck_assert_str_ne(a.ids[i], c.ids[k]);
        for (size_t k = i + 1; k < a.n; k++)
            ck_assert_str_ne(a.ids[i], a.ids[k]);
    }
    for (size_t i = 0; i < a.n; i++)
        free(a.ids[i]);
    for (size_t i = 0; i < c.n; i++)
        free(c.ids[i]);
}
END_TEST

START_TEST(a_dead_senders_job_comes_back_after_the_lease)
{
    const char *id = id_of("push");
    int64_t t = chat_clock_wall_ms();
    note_push(3, t - WINDOW, "x", false); /* due now */
    nq_job_t *jobs = NULL;
    size_t n = 0;
    ck_assert_int_eq(nq_claim_lease(redis, chat_clock_wall_ms(), 10, 300, &jobs, &n), CHAT_OK);
    ck_assert_uint_eq(n, 1);
    nq_job_t *dead = jobs; /* this sender "dies": it never ends the job */
    ck_assert_uint_eq(claim_count(chat_clock_wall_ms()), 0);
    chat_clock_sleep_ms(400);

    nq_job_t *again = NULL;
    ck_assert_int_eq(nq_claim_lease(redis, chat_clock_wall_ms(), 10, 300, &again, &n), CHAT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(again->id, id);
    ck_assert_int_gt(again->lease, dead->lease);

    /* The late sender wakes up: its finish, retry and push_sent change nothing. */
    ck_assert_int_eq(nq_retry(redis, dead, t + 99999, 1, "late"), CHAT_ERR_NOT_FOUND);
    ck_assert_int_eq(nq_push_sent(redis, dead, 3, 3, t), CHAT_ERR_NOT_FOUND);
    ck_assert_int_eq(nq_finish(redis, dead, false), CHAT_ERR_NOT_FOUND);
    ck_assert(job_exists(id));
    ck_assert_int_eq(due_of(id), again->lease);
    ck_assert_str_eq(sent_field(USER), "");

    ck_assert_int_eq(nq_push_sent(redis, again, 3, 3, t), CHAT_OK);
    ck_assert(!job_exists(id));
    nq_jobs_free(dead, 1);
    nq_jobs_free(again, 1);
}
END_TEST

START_TEST(a_restarted_owner_takes_its_jobs_back_at_once)
{
    const char *id = id_of("push");
    int64_t t = chat_clock_wall_ms();
    note_push(4, t - WINDOW, "x", false); /* due now */
    nq_job_t *jobs = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        nq_claim_owned(redis, chat_clock_wall_ms(), 10, NQ_LEASE_MS, "notify-7", &jobs, &n),
        CHAT_OK);
    ck_assert_uint_eq(n, 1);
    nq_job_t *dead = jobs; /* notify-7 is killed holding it, for a whole lease */
    ck_assert_uint_eq(claim_count(chat_clock_wall_ms()), 0);

    /* Another instance's start releases nothing of notify-7's. */
    int64_t released = -1;
    ck_assert_int_eq(nq_release_owner(redis, "notify-8", chat_clock_wall_ms(), &released), CHAT_OK);
    ck_assert_int_eq(released, 0);
    ck_assert_uint_eq(claim_count(chat_clock_wall_ms()), 0);

    /* notify-7 restarted: the job is due at once, and the dead run's lease no longer holds. */
    ck_assert_int_eq(nq_release_owner(redis, "notify-7", chat_clock_wall_ms(), &released), CHAT_OK);
    ck_assert_int_eq(released, 1);
    nq_job_t *again = NULL;
    ck_assert_int_eq(
        nq_claim_owned(redis, chat_clock_wall_ms(), 10, NQ_LEASE_MS, "notify-7", &again, &n),
        CHAT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(again->id, id);
    /* Claimed again within the same millisecond or not, the new claim's lease is its own. */
    ck_assert_int_ne(again->lease, dead->lease);
    ck_assert_int_eq(nq_finish(redis, dead, false), CHAT_ERR_NOT_FOUND);
    ck_assert_int_eq(nq_push_sent(redis, again, 4, 4, t), CHAT_OK);
    ck_assert(!job_exists(id));

    /* A finished job is not brought back by a later release. */
    ck_assert_int_eq(nq_release_owner(redis, "notify-7", chat_clock_wall_ms(), &released), CHAT_OK);
    ck_assert_int_eq(released, 0);
    ck_assert(!job_exists(id));
    nq_jobs_free(dead, 1);
    nq_jobs_free(again, 1);
}
END_TEST

START_TEST(retry_reschedules_with_attempts_and_fields)
{
    const char *id = id_of("push");
    int64_t t = 5000000;
    note_push(4, t, "x", false);
    nq_job_t *j = claim_one(id, t + WINDOW);
    const char *fields[] = {NQ_PUSH_SENT_SUBS, "sub1,sub2"};
    ck_assert_int_eq(nq_retry_fields(redis, j, t + WINDOW + 5000, 1, "http 503", fields, 1),
                     CHAT_OK);
    ck_assert_int_eq(due_of(id), t + WINDOW + 5000);
    ck_assert_uint_eq(claim_count(t + WINDOW + 4999), 0);
    /* The old claim is gone with the retry. */
    ck_assert_int_eq(nq_finish(redis, j, false), CHAT_ERR_NOT_FOUND);
    nq_jobs_free(j, 1);
    j = claim_one(id, t + WINDOW + 5000);
    ck_assert_str_eq(nq_job_field(j, "attempts"), "1");
    ck_assert_str_eq(nq_job_field(j, "error"), "http 503");
    ck_assert_str_eq(nq_job_field(j, NQ_PUSH_SENT_SUBS), "sub1,sub2");
    ck_assert_int_eq(nq_finish(redis, j, false), CHAT_OK);
    ck_assert(!job_exists(id));
    nq_jobs_free(j, 1);
}
END_TEST

/* ---- webhooks ---- */

START_TEST(webhook_job_is_added_once_and_leaves_a_done_marker)
{
    int64_t t = 6000000;
    char id[128], done[160], buf[64];
    snprintf(id, sizeof id, "wh|wh_abc|msg_%032d", 1);
    snprintf(done, sizeof done, "chat:notify:done:%s", id);
    nq_batch_t *b = nq_batch_new();
    for (int i = 0; i < 2; i++) {
        char msg[48];
        snprintf(msg, sizeof msg, "msg_%032d", 1);
        ck_assert_int_eq(nq_webhook_add(b, tenant, "wh_abc", msg, ROOM, "bob", "message.new",
                                        i == 0 ? "{\"a\":1}" : "{\"a\":2}", t + i),
                         CHAT_OK);
    }
    run(b);
    ck_assert_int_eq(due_of(id), t);
    ck_assert_str_eq(job_field(id, "body"), "{\"a\":1}");
    ck_assert_str_eq(job_field(id, "attempts"), "0");
    ck_assert_str_eq(job_field(id, "first"), "6000000");

    nq_job_t *j = claim_one(id, t);
    ck_assert_int_eq(j->kind, NQ_WEBHOOK);
    ck_assert_str_eq(j->endpoint_id, "wh_abc");
    ck_assert_str_eq(j->msg_id, "msg_00000000000000000000000000000001");
    ck_assert_ptr_null(j->user);
    ck_assert_str_eq(nq_job_field(j, "type"), "message.new");
    ck_assert_str_eq(nq_job_field(j, "tenant"), tenant);
    ck_assert_str_eq(nq_job_field(j, "user"), "bob");
    ck_assert_int_eq(nq_finish(redis, j, true), CHAT_OK);
    nq_jobs_free(j, 1);
    ck_assert(!job_exists(id));
    ck_assert_str_eq(get_str(buf, sizeof buf, "EXISTS %s", done, NULL), "1");
    int64_t ttl = strtoll(get_str(buf, sizeof buf, "PTTL %s", done, NULL), NULL, 10);
    ck_assert_int_gt(ttl, 86400000 - 60000);

    /* A replay after delivery adds nothing. */
    char msg[48];
    snprintf(msg, sizeof msg, "msg_%032d", 1);
    ck_assert_int_eq(
        nq_webhook_add(b, tenant, "wh_abc", msg, ROOM, "bob", "message.new", "{}", t + 10),
        CHAT_OK);
    run(b);
    ck_assert(!job_exists(id));

    /* A job dropped undelivered leaves no marker: a replay adds it again. */
    snprintf(msg, sizeof msg, "msg_%032d", 2);
    ck_assert_int_eq(nq_webhook_add(b, tenant, "wh_abc", msg, ROOM, NULL, "message.new", "{}", t),
                     CHAT_OK);
    run(b);
    snprintf(id, sizeof id, "wh|wh_abc|%s", msg);
    j = claim_one(id, t);
    ck_assert_int_eq(nq_finish(redis, j, false), CHAT_OK);
    nq_jobs_free(j, 1);
    ck_assert_int_eq(nq_webhook_add(b, tenant, "wh_abc", msg, ROOM, NULL, "message.new", "{}", t),
                     CHAT_OK);
    run(b);
    ck_assert(job_exists(id));
    nq_batch_free(b);
}
END_TEST

/* ---- recalls ---- */

static void recall_read(int64_t seq, int64_t now)
{
    nq_batch_t *b = nq_batch_new();
    ck_assert_int_eq(nq_recall_read(b, tenant, USER, ROOM, seq, now), CHAT_OK);
    run(b);
    nq_batch_free(b);
}

static void recall_gone(int64_t seq, int64_t now)
{
    nq_batch_t *b = nq_batch_new();
    ck_assert_int_eq(nq_recall_gone(b, tenant, ROOM, seq, now), CHAT_OK);
    run(b);
    nq_batch_free(b);
}

/* A push of first..last sent at now (noted, claimed, sent). */
static void push_sent(int64_t first, int64_t last, int64_t now)
{
    for (int64_t s = first; s <= last; s++)
        note_push(s, now - WINDOW, "t", false);
    nq_job_t *j = claim_one(id_of("push"), now);
    ck_assert_int_eq(nq_push_sent(redis, j, first, last, now), CHAT_OK);
    nq_jobs_free(j, 1);
}

START_TEST(read_drops_a_pending_window_it_covers)
{
    int64_t t = 7000000;
    const char *id = id_of("push");
    note_push(20, t, "a", false);
    note_push(21, t, "b", false);
    recall_read(20, t + 1); /* not the newest: the window stays */
    ck_assert(job_exists(id));
    recall_read(21, t + 2);
    ck_assert(!job_exists(id));
    ck_assert_int_eq(due_of(id), -1);
    ck_assert(!job_exists(id_of("close"))); /* nothing was shown: nothing to withdraw */
}
END_TEST

START_TEST(read_withdraws_a_sent_push_once)
{
    int64_t t = 8000000;
    push_sent(30, 32, t);
    recall_read(31, t + 10); /* below the range's end: the notification stays */
    ck_assert(!job_exists(id_of("close")));
    recall_read(32, t + 20);
    const char *cid = id_of("close");
    ck_assert_int_eq(due_of(cid), t + 20);
    ck_assert_str_eq(job_field(cid, "seq"), "32");
    nq_job_t *j = claim_one(cid, t + 20);
    ck_assert_int_eq(j->kind, NQ_CLOSE);
    ck_assert_str_eq(j->user, USER);
    ck_assert_str_eq(j->room, ROOM);
    ck_assert_int_eq(nq_finish(redis, j, true), CHAT_OK);
    nq_jobs_free(j, 1);
    ck_assert(!job_exists(cid));
    recall_read(33, t + 30); /* withdrawn already */
    ck_assert(!job_exists(cid));
}
END_TEST

START_TEST(read_during_the_send_withdraws_it_right_after)
{
    int64_t t = 9000000;
    note_push(40, t, "a", false);
    nq_job_t *j = claim_one(id_of("push"), t + WINDOW);
    recall_read(40, t + WINDOW + 5); /* the sender checked the mark before this */
    ck_assert(job_exists(id_of("push")));
    ck_assert_int_eq(nq_push_sent(redis, j, 40, 40, t + WINDOW + 10), CHAT_OK);
    nq_jobs_free(j, 1);
    ck_assert(!job_exists(id_of("push")));
    ck_assert_int_eq(due_of(id_of("close")), t + WINDOW + 10);
    char want[64];
    snprintf(want, sizeof want, "40:40:%lld:c", (long long)(t + WINDOW + 10));
    ck_assert_str_eq(sent_field(USER), want);
}
END_TEST

START_TEST(removal_withdraws_the_pushes_that_showed_it)
{
    int64_t t = 10000000;
    push_sent(50, 52, t);   /* USER was shown 50..52 */
    recall_gone(53, t + 1); /* not in the range */
    ck_assert(!job_exists(id_of("close")));
    recall_gone(51, t + 2);
    ck_assert_int_eq(due_of(id_of("close")), t + 2);
    ck_assert_str_eq(job_field(id_of("close"), "seq"), "52");
    ck_assert_str_ne(sent_field(USER), "");
    ck_assert_ptr_nonnull(strstr(sent_field(USER), ":c"));
}
END_TEST

START_TEST(removal_of_a_windows_newest_drops_its_text)
{
    int64_t t = 11000000;
    const char *id = id_of("push");
    note_push(60, t, "keep", false);
    note_push(61, t, "secret", false);
    recall_gone(59, t + 1); /* before the window: nothing */
    ck_assert_str_eq(job_field(id, "text"), "secret");
    recall_gone(61, t + 2);
    ck_assert_str_eq(job_field(id, "text"), "");
    ck_assert_str_eq(job_field(id, "gone"), "1");
    ck_assert_str_eq(job_field(id, "removals"), "1");

    /* A removal while the window is being sent: withdrawn right after the push. */
    nq_job_t *j = claim_one(id, t + WINDOW);
    recall_gone(60, t + WINDOW + 1);
    ck_assert_int_eq(nq_push_sent(redis, j, 60, 61, t + WINDOW + 2), CHAT_OK);
    nq_jobs_free(j, 1);
    ck_assert_int_eq(due_of(id_of("close")), t + WINDOW + 2);
}
END_TEST

/* ---- digests ---- */

static void note_digest(const char *room, int64_t seq, int64_t now, int64_t delay)
{
    nq_batch_t *b = nq_batch_new();
    ck_assert_int_eq(nq_note_digest(b, tenant, USER, room, seq, now, delay), CHAT_OK);
    run(b);
    nq_batch_free(b);
}

START_TEST(digest_collects_rooms_and_remembers_what_it_mailed)
{
    int64_t t = 12000000, delay = 600000;
    const char *id = id_of("email");
    note_digest("a", 5, t, delay);
    note_digest("b", 7, t + 10, delay);
    note_digest("a", 4, t + 20, delay); /* older: nothing */
    ck_assert_int_eq(due_of(id), t + delay);
    ck_assert_str_eq(job_field(id, "r:a"), "5");
    ck_assert_str_eq(job_field(id, "r:b"), "7");
    char ver[16];
    snprintf(ver, sizeof ver, "%s", job_field(id, "ver"));
    note_digest("b", 7, t + 30, delay); /* replay */
    ck_assert_str_eq(job_field(id, "ver"), ver);

    nq_job_t *j = claim_one(id, t + delay);
    ck_assert_int_eq(j->kind, NQ_EMAIL);
    ck_assert_str_eq(j->user, USER);
    ck_assert_ptr_null(j->room);
    ck_assert_ptr_null(nq_job_field(j, "m:a"));
    const char *rooms[] = {"a", "b"};
    int64_t seqs[] = {5, 7};
    int64_t sent_at = t + delay + 100;
    ck_assert_int_eq(nq_email_sent(redis, j, rooms, seqs, 2, sent_at), CHAT_OK);
    nq_jobs_free(j, 1);
    ck_assert(!job_exists(id));

    note_digest("a", 5, sent_at + 1, delay); /* mailed already */
    ck_assert(!job_exists(id));
    note_digest("a", 6, sent_at + 1, delay);
    ck_assert_int_eq(due_of(id), sent_at + 1 + delay);
    j = claim_one(id, sent_at + 1 + delay);
    ck_assert_str_eq(nq_job_field(j, "m:a"), "5");
    ck_assert_str_eq(nq_job_field(j, "m:b"), "7");
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)sent_at);
    ck_assert_str_eq(nq_job_field(j, "m:@"), want);

    /* A note during the claim keeps the job, a delay from the end. */
    note_digest("c", 1, sent_at + delay + 2, delay);
    ck_assert_int_eq(nq_finish(redis, j, false), CHAT_OK);
    nq_jobs_free(j, 1);
    ck_assert(job_exists(id));
    int64_t due = due_of(id);
    ck_assert_int_ge(due, chat_clock_wall_ms() + delay - 60000);
    ck_assert_str_eq(job_field(id, "r:c"), "1");
}
END_TEST

/* ---- the sender's view of the due set ---- */

START_TEST(pending_and_next_due)
{
    int64_t n = -1, due = 0;
    bool found = true;
    ck_assert_int_eq(nq_next_due(redis, &due, &found), CHAT_OK);
    ck_assert(!found);
    ck_assert_int_eq(nq_pending(redis, &n), CHAT_OK);
    ck_assert_int_eq(n, 0);
    note_push(1, 13000000, "a", false);
    note_digest("a", 1, 12000000, 600000);
    ck_assert_int_eq(nq_pending(redis, &n), CHAT_OK);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(nq_next_due(redis, &due, &found), CHAT_OK);
    ck_assert(found);
    ck_assert_int_eq(due, 12000000 + 600000); /* the digest's, before the push's */
}
END_TEST

START_TEST(bad_notes_are_refused_without_queueing)
{
    nq_batch_t *b = nq_batch_new();
    nq_push_note_t n = {.tenant = tenant, .user = USER, .room = ROOM, .seq = 0};
    ck_assert_int_eq(nq_note_push(b, &n, 1, WINDOW), CHAT_ERR_INVALID);
    ck_assert_int_eq(nq_note_digest(b, tenant, NULL, ROOM, 1, 1, 1), CHAT_ERR_INVALID);
    ck_assert_int_eq(nq_webhook_add(b, tenant, "wh_a", NULL, ROOM, NULL, "x", "{}", 1),
                     CHAT_ERR_INVALID);
    ck_assert_uint_eq(nq_batch_size(b), 0);
    nq_batch_free(b);
}
END_TEST

static Suite *outbox_suite(void)
{
    Suite *s = suite_create("notify-outbox");
    TCase *tc = tcase_create("redis");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, push_note_opens_a_window_and_is_idempotent);
    tcase_add_test(tc, push_window_waits_a_window_after_the_last_push);
    tcase_add_test(tc, note_during_the_claim_starts_a_new_window);
    tcase_add_test(tc, two_senders_racing_never_claim_the_same_job);
    tcase_add_test(tc, a_dead_senders_job_comes_back_after_the_lease);
    tcase_add_test(tc, a_restarted_owner_takes_its_jobs_back_at_once);
    tcase_add_test(tc, retry_reschedules_with_attempts_and_fields);
    tcase_add_test(tc, webhook_job_is_added_once_and_leaves_a_done_marker);
    tcase_add_test(tc, read_drops_a_pending_window_it_covers);
    tcase_add_test(tc, read_withdraws_a_sent_push_once);
    tcase_add_test(tc, read_during_the_send_withdraws_it_right_after);
    tcase_add_test(tc, removal_withdraws_the_pushes_that_showed_it);
    tcase_add_test(tc, removal_of_a_windows_newest_drops_its_text);
    tcase_add_test(tc, digest_collects_rooms_and_remembers_what_it_mailed);
    tcase_add_test(tc, pending_and_next_due);
    tcase_add_test(tc, bad_notes_are_refused_without_queueing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    chat_test_stack_load();
    chat_log_init("it-197", CHAT_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    return chat_test_suite_run(outbox_suite(), false);
}
