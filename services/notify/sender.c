/* The sender thread of notify (see sender.h): claims due jobs while fewer than `concurrency`
 * are in flight, prepares each one's requests (reads what it needs from the tenant cache,
 * Redis and MongoDB, then adds its transfers to one libcurl multi handle), and when the last
 * transfer of a job is over judges the outcomes and ends the job in the outbox. Preparing
 * blocks the thread for a few queries; transfers in flight wait meanwhile, which their
 * timeouts absorb. */
#include "services/notify/sender.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <mongoc/mongoc.h>

#include "common/backoff.h"
#include "common/bson_fields.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/json.h"
#include "common/log.h"
#include "common/notify_store.h"
#include "common/recent_read.h"
#include "common/redis.h"
#include "common/unread.h"
#include "common/whsign.h"
#include "services/notify/email.h"
#include "services/notify/outbox.h"
#include "services/notify/push.h"
#include "services/notify/retry.h"
#include "services/notify/webhook.h"

#define IDLE_WAIT_MS 250    /* the longest wait for a due job while nothing is in flight */
#define GAUGE_EVERY_MS 5000 /* ZCARD of the due set */
#define STOP_GRACE_MS 3000  /* in-flight transfers at stop */
#define INFRA_RETRY_MS 5000 /* a job whose reads failed (Redis, MongoDB) is due again then */
#define PUSH_TIMEOUT_MS 10000
#define SMTP_TIMEOUT_MS 30000
#define VAPID_EXP_S (12 * 3600)
#define SUB_KEY_LEN 32 /* the hex hash at the end of a subscription id */

typedef struct run run_t;

/* One request of a job. */
typedef struct xfer {
    run_t *run;
    CURL *easy;
    struct curl_slist *headers, *rcpt;
    unsigned char *body;
    size_t len, off;
    chat_egress_conn_t conn;
    char *sub_id; /* push: the subscription's id */
    long status;
    CURLcode code;
    int64_t retry_after_ms; /* -1: none given */
    char errbuf[CURL_ERROR_SIZE];
} xfer_t;

/* The channel and outcome labels of chat_notify_sends_total (docs/metrics.md). */
typedef enum send_channel { SEND_PUSH, SEND_EMAIL, SEND_WEBHOOK, SEND_CHANNELS } send_channel_t;
typedef enum send_outcome {
    SEND_OK,
    SEND_RETRY,
    SEND_GONE,   /* the subscription or endpoint is dead */
    SEND_FAILED, /* given up: dead-lettered */
    SEND_OUTCOMES
} send_outcome_t;
static const char *const send_channel_names[SEND_CHANNELS] = {"push", "email", "webhook"};
static const char *const send_outcome_names[SEND_OUTCOMES] = {"ok", "retry", "gone", "failed"};

/* A message read for a push or a digest. */
typedef struct msg {
    char *id, *from, *name, *text;
    int64_t seq, ts;
} msg_t;

/* A claimed job being sent. */
struct run {
    nq_job_t *job;
    xfer_t *x;
    size_t nx, pending;
    cJSON *payload; /* what a dead letter carries */
    char *dlq_room; /* the room of its dead letters */
    char *dlq_user;
    int64_t msg_ts;     /* the message's store ts, for chat_notify_delay_seconds */
    char *endpoint_url; /* webhooks */
    int64_t failing_since;
    /* emails: the rooms mailed and the newest seq of each */
    char *rooms[NS_EMAIL_ROOMS_MAX];
    int64_t seqs[NS_EMAIL_ROOMS_MAX];
    size_t nrooms;
};

struct ns_sender {
    ns_sender_conf_t conf;
    char *redis_url, *vapid_subject, *smtp_url, *smtp_user, *smtp_password, *dlq_topic;
    char *owner;   /* conf.owner copied: the claims this instance takes back at start */
    bool released; /* done once Redis answered */
    ns_schedule_t push_sched, webhook_sched;
    chat_redis_t *redis;
    chat_bus_producer_t *dlq;
    CURLM *multi;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool healthy;
    run_t **active;
    size_t nactive;
    bool failing;      /* in a streak of Redis or MongoDB failures (logged once) */
    uint64_t failures; /* counted by infra_failed: a claim round that added none recovered */
    chat_backoff_t backoff;
    unsigned rnd;
    chat_gauge_t *outbox_jobs;
    /* docs/metrics.md: every attempt by channel and outcome, its duration, the dead letters */
    chat_counter_t *sends[SEND_CHANNELS][SEND_OUTCOMES];
    chat_histogram_t *send_seconds[SEND_CHANNELS];
    chat_histogram_t *delay_seconds[SEND_CHANNELS];
    chat_counter_t *dlq_total;
    chat_tenant_counter_t *tenant_sends;
};

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static double rnd01(ns_sender_t *s)
{
    return (double)rand_r(&s->rnd) / ((double)RAND_MAX + 1.0);
}

static void count(ns_sender_t *s, const char *family, const char *help, const char *outcome)
{
    if (s->conf.metrics == NULL)
        return;
    char labels[96];
    snprintf(labels, sizeof labels, "outcome=\"%s\"", outcome);
    chat_counter_inc(chat_metrics_counter(s->conf.metrics, family, help, labels));
}

static void count_push(ns_sender_t *s, const char *outcome)
{
    count(s, "chat_notify_pushes_total", "Web Push requests and push jobs by outcome", outcome);
}

static void count_webhook(ns_sender_t *s, const char *outcome)
{
    count(s, "chat_notify_webhooks_total", "Webhook deliveries by outcome", outcome);
}

static void count_email(ns_sender_t *s, const char *outcome)
{
    count(s, "chat_notify_emails_total", "Email digests by outcome", outcome);
}

/* The time from a message's store ts to its send. */
static void observe_send(ns_sender_t *s, send_channel_t channel, int64_t ts)
{
    if (ts <= 0)
        return;
    int64_t d = chat_clock_wall_ms() - ts;
    chat_histogram_observe(s->delay_seconds[channel], d > 0 ? (double)d / 1000.0 : 0.0);
}

static send_channel_t job_channel(const nq_job_t *j)
{
    return j->kind == NQ_WEBHOOK ? SEND_WEBHOOK : j->kind == NQ_EMAIL ? SEND_EMAIL : SEND_PUSH;
}

/* One delivery attempt of r's job (a request, or a job that cannot be sent and is given up)
 * with its outcome: chat_notify_sends_total and, by the job's tenant, tenant_sends_total. */
static void count_send(ns_sender_t *s, const run_t *r, send_outcome_t outcome)
{
    const nq_job_t *j = r->job;
    chat_counter_inc(s->sends[job_channel(j)][outcome]);
    chat_tenant_counter_add(s->tenant_sends,
                            j->tenant != NULL ? j->tenant : nq_job_field(j, "tenant"), 1);
}

/* Registers the attempt metrics, every label value at once. */
static void send_metrics_register(ns_sender_t *s)
{
    chat_metrics_t *m = s->conf.metrics;
    static const double delay_bounds[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
    for (int c = 0; c < SEND_CHANNELS; c++) {
        char labels[96];
        for (int o = 0; o < SEND_OUTCOMES; o++) {
            snprintf(labels, sizeof labels, "channel=\"%s\",outcome=\"%s\"", send_channel_names[c],
                     send_outcome_names[o]);
            s->sends[c][o] = chat_metrics_counter(
                m, "chat_notify_sends_total",
                "Delivery attempts by channel and result (gone: dead subscription or endpoint; "
                "failed: given up and dead-lettered)",
                labels);
        }
        snprintf(labels, sizeof labels, "channel=\"%s\"", send_channel_names[c]);
        s->send_seconds[c] = chat_metrics_histogram(
            m, "chat_notify_send_seconds", "One delivery attempt (request)", labels,
            chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
        s->delay_seconds[c] =
            chat_metrics_histogram(m, "chat_notify_delay_seconds",
                                   "From the message's store ts to its notification's send", labels,
                                   delay_bounds, sizeof delay_bounds / sizeof delay_bounds[0]);
    }
    s->dlq_total = chat_metrics_counter(m, "chat_notify_dlq_total",
                                        "Records written to the dead-letter topic", NULL);
    if (s->conf.tenant_labels != NULL)
        s->tenant_sends = chat_tenant_counter_new(
            s->conf.tenant_labels, m, "chat_notify_tenant_sends_total",
            "Delivery attempts by tenant (bounded: see CHAT_METRICS_TENANTS_MAX)", NULL);
}

/* A failure of Redis or MongoDB: logged once per streak; the loop backs off. */
static void infra_failed(ns_sender_t *s, const char *what, chat_err_t err)
{
    if (!s->failing)
        chat_log_error("notify sender: backing off", CHAT_F_STR("what", what),
                       CHAT_F_STR("error", chat_err_name(err)));
    s->failing = true;
    s->failures++;
}

static void infra_ok(ns_sender_t *s)
{
    if (s->failing)
        chat_log_info("notify sender: recovered");
    s->failing = false;
    chat_backoff_reset(&s->backoff);
}

static void msgs_free(msg_t *m, size_t n)
{
    for (size_t i = 0; m != NULL && i < n; i++) {
        free(m[i].id);
        free(m[i].from);
        free(m[i].name);
        free(m[i].text);
    }
    free(m);
}

/* ---- dead letters ---- */

/* Sends a notify_failed for the job (channel "webpush", "webhook" or "email"). Logged either
 * way: a dead letter that cannot be produced is lost, and the log is what remains. */
static void dead_letter(ns_sender_t *s, const run_t *r, const char *channel, const char *error,
                        int64_t attempts)
{
    const nq_job_t *j = r->job;
    const char *tenant = j->tenant != NULL ? j->tenant : nq_job_field(j, "tenant");
    const char *room = r->dlq_room != NULL ? r->dlq_room : "-";
    const char *user = r->dlq_user != NULL ? r->dlq_user : CHAT_SYSTEM_USER;
    chat_log_warn("notify gave up", CHAT_F_STR("channel", channel), CHAT_F_STR("job", j->id),
                  CHAT_F_STR("error", error), CHAT_F_INT("attempts", attempts));
    if (s->dlq == NULL || tenant == NULL)
        return;
    cJSON *empty = NULL;
    chat_event_t ev = {.type = CHAT_EV_NOTIFY_FAILED,
                       .tenant = tenant,
                       .room = room,
                       .user = user,
                       .channel = channel,
                       .error = error != NULL && error[0] != '\0' ? error : "failed",
                       .attempts = attempts > 0 ? attempts : 1,
                       .has_attempts = true,
                       .ts = chat_clock_wall_ms(),
                       .has_ts = true,
                       .payload = r->payload != NULL ? r->payload : (empty = cJSON_CreateObject())};
    char *value = NULL;
    size_t len = 0;
    chat_err_t err = chat_event_encode(&ev, &value, &len);
    if (err == CHAT_OK) {
        char key[CHAT_TENANT_MAX + CHAT_ROOM_MAX + 2];
        int klen = snprintf(key, sizeof key, "%s/%s", tenant, room);
        err = chat_bus_produce(s->dlq, s->dlq_topic, CHAT_BUS_PARTITION_ANY, key, (size_t)klen,
                               value, len, NULL);
    }
    if (err != CHAT_OK)
        chat_log_error("notify dead letter not produced", CHAT_F_STR("job", j->id),
                       CHAT_F_STR("error", chat_err_name(err)));
    else
        chat_counter_inc(s->dlq_total);
    free(value);
    cJSON_Delete(empty);
}

/* ---- runs ---- */

static void xfer_clear(ns_sender_t *s, xfer_t *x)
{
    if (x->easy != NULL) {
        curl_multi_remove_handle(s->multi, x->easy);
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->rcpt);
    free(x->body);
    free(x->sub_id);
    memset(x, 0, sizeof *x);
}

static void run_free(ns_sender_t *s, run_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nx; i++)
        xfer_clear(s, &r->x[i]);
    free(r->x);
    cJSON_Delete(r->payload);
    free(r->dlq_room);
    free(r->dlq_user);
    free(r->endpoint_url);
    for (size_t i = 0; i < r->nrooms; i++)
        free(r->rooms[i]);
    nq_jobs_free(r->job, 1);
    free(r);
}

/* A new transfer slot of r (zeroed), NULL if out of memory. */
static xfer_t *xfer_add(run_t *r)
{
    xfer_t *grown = realloc(r->x, (r->nx + 1) * sizeof *grown);
    if (grown == NULL)
        return NULL;
    r->x = grown;
    xfer_t *x = &r->x[r->nx++];
    memset(x, 0, sizeof *x);
    x->run = r;
    x->retry_after_ms = -1;
    return x;
}

/* Starts x's prepared easy handle on the multi handle. */
static chat_err_t xfer_start(ns_sender_t *s, xfer_t *x)
{
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    if (curl_multi_add_handle(s->multi, x->easy) != CURLM_OK)
        return CHAT_ERR_IO;
    x->run->pending++;
    return CHAT_OK;
}

/* Keeps Retry-After of a response (header callback). */
static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(buf, name, sizeof name - 1) == 0) {
        char v[128];
        size_t vlen = len - (sizeof name - 1);
        if (vlen >= sizeof v)
            vlen = sizeof v - 1;
        memcpy(v, buf + sizeof name - 1, vlen);
        v[vlen] = '\0';
        v[strcspn(v, "\r\n")] = '\0';
        x->retry_after_ms = ns_retry_after_ms(v, chat_clock_wall_ms());
    }
    return len;
}

/* Discards response bodies. */
static size_t on_body(char *buf, size_t size, size_t n, void *ud)
{
    (void)buf;
    (void)ud;
    return size * n;
}

/* Feeds an SMTP upload. */
static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t room = size * n, left = x->len - x->off;
    size_t k = left < room ? left : room;
    memcpy(buf, x->body + x->off, k);
    x->off += k;
    return k;
}

/* A POST of x->body to url with x->headers under the egress policy. CHAT_ERR_INVALID (reason in
 * why) if the URL is refused. */
static chat_err_t xfer_post(ns_sender_t *s, xfer_t *x, const char *url, long timeout_ms, char *why,
                            size_t whylen)
{
    x->easy = curl_easy_init();
    if (x->easy == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err =
        chat_egress_prepare(x->easy, &s->conf.egress, &x->conn, url, timeout_ms, why, whylen);
    if (err != CHAT_OK)
        return err;
    curl_easy_setopt(x->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, (const char *)x->body);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->len);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    return CHAT_OK;
}

static bool header_add(struct curl_slist **list, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static bool header_add(struct curl_slist **list, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return false;
    struct curl_slist *grown = curl_slist_append(*list, line);
    if (grown == NULL)
        return false;
    *list = grown;
    return true;
}

/* The reason of a transfer that failed, for logs and dead letters. */
static void xfer_reason(const xfer_t *x, char *buf, size_t len)
{
    char addr[64];
    if (chat_egress_refused(&x->conn, addr, sizeof addr))
        snprintf(buf, len, "refused address %s", addr);
    else if (x->code != CURLE_OK)
        snprintf(buf, len, "%s", x->errbuf[0] != '\0' ? x->errbuf : curl_easy_strerror(x->code));
    else
        snprintf(buf, len, "http %ld", x->status);
}

/* ---- ending a job ---- */

/* The outbox's answer to an end: a lost lease is logged (another sender holds the job now). */
static void ended(ns_sender_t *s, const nq_job_t *j, chat_err_t err)
{
    if (err == CHAT_ERR_NOT_FOUND)
        chat_log_warn("notify job's lease ran out before it ended", CHAT_F_STR("job", j->id));
    else if (err != CHAT_OK)
        infra_failed(s, "redis", err);
}

static void finish(ns_sender_t *s, run_t *r, bool delivered)
{
    ended(s, r->job, nq_finish(s->redis, r->job, delivered));
}

/* The job's reads failed: due again in a few seconds, attempts unchanged. */
static void retry_soon(ns_sender_t *s, run_t *r, const char *what, chat_err_t err)
{
    infra_failed(s, what, err);
    ended(s, r->job,
          nq_retry(s->redis, r->job, chat_clock_wall_ms() + INFRA_RETRY_MS,
                   nq_job_int(r->job, "attempts", 0), what));
}

/* ---- reading messages ---- */

static bool msg_from_frame(const chat_recent_entry_t *e, msg_t *m)
{
    cJSON *f = cJSON_ParseWithLength(e->frame, e->len);
    if (f == NULL)
        return false;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(f, "text");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(f, "from");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(f, "name");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(f, "id");
    bool ok = cJSON_IsString(from);
    if (ok) {
        m->seq = e->seq;
        chat_json_read_int(cJSON_GetObjectItemCaseSensitive(f, "ts"), &m->ts);
        m->from = strdup(from->valuestring);
        m->text = cJSON_IsString(text) ? strdup(text->valuestring) : NULL;
        m->name = cJSON_IsString(name) ? strdup(name->valuestring) : NULL;
        m->id = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    }
    cJSON_Delete(f);
    return ok;
}

static bool msg_from_doc(const bson_t *doc, msg_t *m)
{
    const char *from = chat_bson_str(doc, "from");
    if (from == NULL || !chat_bson_number_or_date(doc, "seq", &m->seq))
        return false;
    chat_bson_number_or_date(doc, "ts", &m->ts);
    bool gone = chat_bson_true(doc, "deleted") || chat_bson_true(doc, "removed");
    const char *text = gone ? NULL : chat_bson_str(doc, "text");
    const char *name = chat_bson_str(doc, "name");
    char id[25];
    m->from = strdup(from);
    m->text = text != NULL ? strdup(text) : NULL;
    m->name = name != NULL ? strdup(name) : NULL;
    m->id = chat_bson_message_id(doc, id) ? strdup(id) : NULL;
    return true;
}

/* Whether m belongs in a notification for user: someone else's (not the system's), with text. */
static bool msg_notifies(const msg_t *m, const char *user)
{
    return m->text != NULL && m->from != NULL && strcmp(m->from, user) != 0 &&
           strcmp(m->from, CHAT_SYSTEM_USER) != 0;
}

/* Keeps in (m, *n) only what msg_notifies. */
static void msgs_filter(msg_t *m, size_t *n, const char *user)
{
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        if (msg_notifies(&m[i], user)) {
            m[kept++] = m[i];
        } else {
            free(m[i].id);
            free(m[i].from);
            free(m[i].name);
            free(m[i].text);
        }
    }
    *n = kept;
}

/* The recent history's answer for (after, upto], newest first, if it holds that range whole
 * (or the newest limit of it). True with *out (maybe none) if it did. */
static bool msgs_from_recent(ns_sender_t *s, const char *tenant, const char *room, int64_t after,
                             int64_t upto, size_t limit, msg_t **out, size_t *n)
{
    if (s->conf.recent_max <= 0)
        return false;
    chat_recent_snapshot_t *snap = NULL;
    if (chat_recent_snapshot_read(s->redis, tenant, room, after, upto > 0 ? upto + 1 : 0, limit,
                                  &snap) != CHAT_OK)
        return false;
    const chat_recent_view_t *v = chat_recent_snapshot_view(snap);
    bool whole = chat_recent_view_trust(v) == CHAT_RECENT_HIT;
    int64_t top = upto > 0 && upto < v->top ? upto : v->top;
    for (size_t i = 0; whole && i < v->n; i++)
        whole = v->entries[i].seq == top - (int64_t)i;
    whole = whole && (v->n == limit || top - (int64_t)v->n <= after);
    msg_t *m = whole ? calloc(v->n > 0 ? v->n : 1, sizeof *m) : NULL;
    size_t got = 0;
    for (size_t i = 0; m != NULL && i < v->n; i++) {
        if (msg_from_frame(&v->entries[i], &m[got]))
            got++;
    }
    chat_recent_snapshot_free(snap);
    if (m == NULL)
        return false;
    *out = m;
    *n = got;
    return true;
}

/* The newest up to limit messages of tenant/room with seq in (after, upto] (upto 0: no bound)
 * that would notify user, newest first: from the recent history when it holds them, else
 * MongoDB `messages`. */
static chat_err_t msgs_read(ns_sender_t *s, mongoc_client_t *client, const char *tenant,
                            const char *room, const char *user, int64_t after, int64_t upto,
                            size_t limit, msg_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (msgs_from_recent(s, tenant, room, after, upto, limit, out, n)) {
        msgs_filter(*out, n, user);
        return CHAT_OK;
    }
    mongoc_collection_t *col = chat_store_collection(s->conf.store, client, "messages");
    bson_t *filter = upto > 0
                         ? BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "seq",
                                    "{", "$gt", BCON_INT64(after), "$lte", BCON_INT64(upto), "}")
                         : BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "seq",
                                    "{", "$gt", BCON_INT64(after), "}");
    bson_t *opts =
        BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64((int64_t)limit));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    msg_t *m = calloc(limit > 0 ? limit : 1, sizeof *m);
    size_t got = 0;
    const bson_t *doc;
    while (m != NULL && got < limit && mongoc_cursor_next(cursor, &doc)) {
        if (msg_from_doc(doc, &m[got]))
            got++;
    }
    bson_error_t error;
    chat_err_t err = m == NULL ? CHAT_ERR_NOMEM : CHAT_OK;
    if (mongoc_cursor_error(cursor, &error)) {
        chat_log_warn("notify: messages not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("room", room), CHAT_F_STR("error", error.message));
        err = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    if (err != CHAT_OK) {
        msgs_free(m, got);
        return err;
    }
    msgs_filter(m, &got, user);
    *out = m;
    *n = got;
    return CHAT_OK;
}

/* ---- Web Push ---- */

/* The hash part of a subscription id (what a push job's subs_sent lists). */
static const char *sub_key(const char *id)
{
    size_t len = strlen(id);
    return len > SUB_KEY_LEN ? id + len - SUB_KEY_LEN : id;
}

/* True if the comma-separated list holds key. */
static bool list_has(const char *list, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = list; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == klen && strncmp(p, key, len) == 0)
            return true;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return false;
}

/* Adds one push request of payload to sub. CHAT_ERR_INVALID (why) for a subscription that
 * cannot be sent to (its keys or its URL). */
static chat_err_t push_xfer(ns_sender_t *s, run_t *r, const chat_push_sub_t *sub,
                            const char *payload, size_t plen, bool urgent, char *why, size_t whylen)
{
    const nq_job_t *j = r->job;
    xfer_t *x = xfer_add(r);
    if (x == NULL)
        return CHAT_ERR_NOMEM;
    x->sub_id = strdup(sub->id);
    chat_webpush_keys_t keys;
    chat_err_t err = chat_webpush_keys_parse(sub->p256dh, sub->auth, &keys, why, whylen);
    if (err == CHAT_OK)
        err = chat_webpush_encrypt(&keys, payload, plen, NULL, &x->body, &x->len);
    char *auth = NULL;
    if (err == CHAT_OK)
        err = chat_vapid_authorization(s->conf.vapid, sub->endpoint, s->vapid_subject,
                                       chat_clock_wall_ms() / 1000 + VAPID_EXP_S, &auth);
    char topic[33];
    chat_webpush_topic(j->tenant, j->room, topic);
    if (err == CHAT_OK && !(header_add(&x->headers, "Content-Encoding: aes128gcm") &&
                            header_add(&x->headers, "Content-Type: application/octet-stream") &&
                            header_add(&x->headers, "TTL: %" PRId64, s->conf.push_ttl_s) &&
                            header_add(&x->headers, "Urgency: %s", urgent ? "high" : "normal") &&
                            header_add(&x->headers, "Topic: %s", topic) &&
                            header_add(&x->headers, "Authorization: %s", auth)))
        err = CHAT_ERR_NOMEM;
    free(auth);
    if (err == CHAT_OK)
        err = xfer_post(s, x, sub->endpoint, PUSH_TIMEOUT_MS, why, whylen);
    if (err == CHAT_OK)
        err = xfer_start(s, x);
    if (err != CHAT_OK) {
        if (why[0] == '\0')
            snprintf(why, whylen, "%s", chat_err_str(err));
        xfer_clear(s, x);
        r->nx--;
    }
    return err;
}

/* The subscriptions of the job's user, and a request to each one not reached yet. Ends the job
 * if there is none. Returns false if the job ended here. */
static bool push_start_all(ns_sender_t *s, run_t *r, const char *payload, size_t plen, bool urgent)
{
    const nq_job_t *j = r->job;
    chat_push_sub_t *subs = NULL;
    size_t nsubs = 0;
    chat_err_t err = chat_push_subs_list(s->conf.store, j->tenant, j->user, &subs, &nsubs);
    if (err != CHAT_OK) {
        retry_soon(s, r, "mongodb: push subscriptions", err);
        return false;
    }
    const char *done = nq_job_field(j, NQ_PUSH_SENT_SUBS);
    for (size_t i = 0; i < nsubs; i++) {
        if (list_has(done, sub_key(subs[i].id)))
            continue;
        char why[256] = "";
        err = push_xfer(s, r, &subs[i], payload, plen, urgent, why, sizeof why);
        if (err == CHAT_ERR_INVALID) {
            /* A subscription that can never be sent to (bad keys, a URL the policy refuses). */
            chat_log_warn("push subscription dropped", CHAT_F_STR("tenant", j->tenant),
                          CHAT_F_STR("user", j->user), CHAT_F_STR("reason", why));
            chat_push_sub_delete_id(s->conf.store, subs[i].id);
            count_push(s, "gone");
        } else if (err != CHAT_OK) {
            chat_log_error("push request not started", CHAT_F_STR("job", j->id),
                           CHAT_F_STR("reason", why));
        }
    }
    bool none = nsubs == 0;
    chat_push_subs_free(subs, nsubs);
    if (r->nx > 0)
        return true;
    if (j->kind == NQ_PUSH && done != NULL && done[0] != '\0') {
        ended(s, j,
              nq_push_sent(s->redis, j, nq_job_int(j, "first", 0), nq_job_int(j, "seq", 0),
                           chat_clock_wall_ms()));
    } else {
        if (none)
            count_push(s, "unsubscribed");
        finish(s, r, false);
    }
    return false;
}

/* Whether the tenant sends pushes. False (the job ended) if not, or if the cache failed. */
static bool push_enabled(ns_sender_t *s, run_t *r)
{
    if (s->conf.vapid == NULL) {
        count_push(s, "disabled");
        finish(s, r, false);
        return false;
    }
    const nt_tenant_t *t = NULL;
    chat_err_t err = nt_cache_get(s->conf.tenants, r->job->tenant, &t);
    if (err != CHAT_OK) {
        retry_soon(s, r, "tenants", err);
        return false;
    }
    bool on = t->push_enabled;
    nt_tenant_release(s->conf.tenants, t);
    if (!on) {
        count_push(s, "disabled");
        finish(s, r, false);
    }
    return on;
}

/* Whether the job's user is online now. False with the job ended if so or if Redis failed. */
static bool user_offline(ns_sender_t *s, run_t *r, void (*counter)(ns_sender_t *, const char *))
{
    const char *user = r->job->user;
    bool online = false;
    chat_err_t err =
        chat_online_users(s->redis, s->conf.gateways, r->job->tenant, &user, 1, &online);
    if (err != CHAT_OK) {
        retry_soon(s, r, "redis: online users", err);
        return false;
    }
    if (online) {
        counter(s, "online");
        finish(s, r, false);
        return false;
    }
    return true;
}

/* A push job: the checks of docs/notify.md, then one request per subscription. False if it
 * ended without requests. */
static bool push_start(ns_sender_t *s, run_t *r)
{
    const nq_job_t *j = r->job;
    if (!push_enabled(s, r) || !user_offline(s, r, count_push))
        return false;
    int64_t newest = nq_job_int(j, "seq", 0);
    mongoc_client_t *client = chat_store_acquire(s->conf.store);
    int64_t read = 0, unread = 0;
    chat_err_t err =
        chat_unread_read_mark(s->conf.store, client, j->tenant, j->room, j->user, &read);
    if (err == CHAT_OK && read < newest)
        err = chat_unread_count(s->conf.recent_max > 0 ? s->redis : NULL, s->conf.recent_max,
                                s->conf.store, client, j->tenant, j->room, j->user, read, newest,
                                &unread, NULL);
    msg_t *m = NULL;
    size_t nm = 0;
    bool gone = strcmp(nq_job_field(j, "gone") ? nq_job_field(j, "gone") : "0", "1") == 0;
    if (err == CHAT_OK && unread > 0 && gone)
        err = msgs_read(s, client, j->tenant, j->room, j->user, read, newest, 20, &m, &nm);
    chat_store_release(s->conf.store, client);
    if (err != CHAT_OK) {
        retry_soon(s, r, "mongodb: read mark", err);
        msgs_free(m, nm);
        return false;
    }
    if (read >= newest || unread == 0) {
        count_push(s, "read");
        finish(s, r, false);
        msgs_free(m, nm);
        return false;
    }
    /* The newest noted message was removed: the notification shows the newest one still
     * there (unread, someone else's); none left, nothing is sent. */
    if (gone && nm == 0) {
        count_push(s, "removed");
        finish(s, r, false);
        return false;
    }
    ns_push_msg_t pm = {.tenant = j->tenant,
                        .room = j->room,
                        .id = gone ? m[0].id : nq_job_field(j, "id"),
                        .from = gone ? m[0].from : nq_job_field(j, "from"),
                        .name = gone ? m[0].name : nq_job_field(j, "name"),
                        .text = gone ? m[0].text : nq_job_field(j, "text"),
                        .seq = gone ? m[0].seq : newest,
                        .count = unread,
                        .ts = gone ? m[0].ts : nq_job_int(j, "ts", 0)};
    size_t plen = 0;
    char *payload = ns_push_payload(&pm, &plen);
    r->msg_ts = pm.ts;
    r->dlq_room = strdup(j->room);
    r->dlq_user = strdup(j->user);
    r->payload = payload != NULL ? cJSON_Parse(payload) : NULL;
    msgs_free(m, nm);
    if (payload == NULL) {
        retry_soon(s, r, "out of memory", CHAT_ERR_NOMEM);
        return false;
    }
    const char *urgent = nq_job_field(j, "urgent");
    bool started = push_start_all(s, r, payload, plen, urgent != NULL && strcmp(urgent, "1") == 0);
    free(payload);
    return started;
}

/* A close job: the data push that withdraws the room's notification. */
static bool close_start(ns_sender_t *s, run_t *r)
{
    const nq_job_t *j = r->job;
    if (!push_enabled(s, r))
        return false;
    size_t plen = 0;
    char *payload = ns_push_close_payload(j->tenant, j->room, nq_job_int(j, "seq", 0), &plen);
    if (payload == NULL) {
        retry_soon(s, r, "out of memory", CHAT_ERR_NOMEM);
        return false;
    }
    r->dlq_room = strdup(j->room);
    r->dlq_user = strdup(j->user);
    bool started = push_start_all(s, r, payload, plen, false);
    free(payload);
    return started;
}

/* Judges a push or close job's requests and ends it. */
static void push_done(ns_sender_t *s, run_t *r)
{
    const nq_job_t *j = r->job;
    bool closing = j->kind == NQ_CLOSE;
    const char *prev = nq_job_field(j, NQ_PUSH_SENT_SUBS);
    size_t cap = (prev != NULL ? strlen(prev) : 0) + r->nx * (SUB_KEY_LEN + 1) + 1;
    char *sent = calloc(1, cap);
    if (sent == NULL) {
        chat_log_error("notify: out of memory judging a push", CHAT_F_STR("job", j->id));
        return; /* the lease brings the job back */
    }
    if (prev != NULL)
        strcat(sent, prev);
    size_t retry = 0;
    int64_t retry_after = -1;
    char reason[CURL_ERROR_SIZE + 64] = "";
    for (size_t i = 0; i < r->nx; i++) {
        xfer_t *x = &r->x[i];
        char addr[64];
        bool refused = chat_egress_refused(&x->conn, addr, sizeof addr);
        ns_push_outcome_t o = ns_push_judge(x->code == CURLE_OK ? x->status : 0, refused);
        char why[CURL_ERROR_SIZE + 64];
        xfer_reason(x, why, sizeof why);
        switch (o) {
        case NS_PUSH_SENT:
            if (sent[0] != '\0')
                strcat(sent, ",");
            strcat(sent, sub_key(x->sub_id));
            count_push(s, closing ? "closed" : "sent");
            count_send(s, r, SEND_OK);
            if (!closing)
                observe_send(s, SEND_PUSH, r->msg_ts);
            break;
        case NS_PUSH_GONE:
            chat_push_sub_delete_id(s->conf.store, x->sub_id);
            count_push(s, "gone");
            count_send(s, r, SEND_GONE);
            break;
        case NS_PUSH_RETRY:
            retry++;
            if (x->retry_after_ms > retry_after)
                retry_after = x->retry_after_ms;
            snprintf(reason, sizeof reason, "%s", why);
            break;
        case NS_PUSH_FAILED:
            count_push(s, "failed");
            count_send(s, r, SEND_FAILED);
            if (closing)
                chat_log_warn("close push failed", CHAT_F_STR("job", j->id),
                              CHAT_F_STR("error", why));
            else
                dead_letter(s, r, "webpush", why, nq_job_int(j, "attempts", 0) + 1);
            break;
        }
    }
    int64_t now = chat_clock_wall_ms();
    if (retry > 0) {
        int64_t attempts = nq_job_int(j, "attempts", 0) + 1;
        int64_t delay = ns_schedule_delay(&s->push_sched, attempts, 0, 0);
        if (delay >= 0) {
            if (retry_after >= 0)
                delay = retry_after;
            const char *fields[] = {NQ_PUSH_SENT_SUBS, sent};
            for (size_t i = 0; i < retry; i++) {
                count_push(s, "retry");
                count_send(s, r, SEND_RETRY);
            }
            ended(s, j, nq_retry_fields(s->redis, j, now + delay, attempts, reason, fields, 1));
            free(sent);
            return;
        }
        for (size_t i = 0; i < retry; i++) {
            count_push(s, "failed");
            count_send(s, r, SEND_FAILED);
        }
        if (closing)
            chat_log_warn("close push given up", CHAT_F_STR("job", j->id),
                          CHAT_F_STR("error", reason), CHAT_F_INT("attempts", attempts));
        else
            dead_letter(s, r, "webpush", reason, attempts);
    }
    if (!closing && sent[0] != '\0')
        ended(s, j,
              nq_push_sent(s->redis, j, nq_job_int(j, "first", 0), nq_job_int(j, "seq", 0), now));
    else
        finish(s, r, closing);
    free(sent);
}

/* ---- webhooks ---- */

/* Sets fields of endpoint id in MongoDB `webhooks` ($set of set), then has every instance
 * reload the tenant. */
static void endpoint_update(ns_sender_t *s, const char *tenant, const char *id,
                            bson_t *filter_extra, bson_t *set)
{
    mongoc_client_t *client = chat_store_acquire(s->conf.store);
    mongoc_collection_t *col =
        chat_store_collection(s->conf.store, client, CHAT_WEBHOOKS_COLLECTION);
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "_id", id);
    BSON_APPEND_UTF8(&filter, "tenant", tenant);
    if (filter_extra != NULL)
        bson_concat(&filter, filter_extra);
    bson_t update = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT(&update, "$set", set);
    bson_error_t error;
    bson_t reply;
    bool ok = mongoc_collection_update_one(col, &filter, &update, NULL, &reply, &error);
    int64_t modified = 0;
    if (ok)
        chat_bson_number_or_date(&reply, "modifiedCount", &modified);
    bson_destroy(&reply);
    bson_destroy(&filter);
    bson_destroy(&update);
    mongoc_collection_destroy(col);
    chat_store_release(s->conf.store, client);
    if (!ok) {
        chat_log_error("webhook endpoint not updated", CHAT_F_STR("tenant", tenant),
                       CHAT_F_STR("endpoint", id), CHAT_F_STR("error", error.message));
        return;
    }
    if (modified > 0) {
        chat_err_t err = chat_notify_rev_bump(s->redis, tenant);
        if (err != CHAT_OK)
            chat_log_warn("notify revision not bumped", CHAT_F_STR("tenant", tenant),
                          CHAT_F_STR("error", chat_err_name(err)));
        nt_cache_invalidate(s->conf.tenants, tenant);
    }
}

static void endpoint_disable(ns_sender_t *s, const char *tenant, const char *id, const char *reason)
{
    bson_t *set = BCON_NEW("enabled", BCON_BOOL(false), "disabled_reason", BCON_UTF8(reason),
                           "updated", BCON_INT64(chat_clock_wall_ms()));
    chat_log_warn("webhook endpoint disabled", CHAT_F_STR("tenant", tenant),
                  CHAT_F_STR("endpoint", id), CHAT_F_STR("reason", reason));
    endpoint_update(s, tenant, id, NULL, set);
    bson_destroy(set);
}

/* failing_since: set at the first failure (only if not set), cleared (0) on success. */
static void endpoint_failing(ns_sender_t *s, const char *tenant, const char *id, int64_t since)
{
    bson_t *set = since > 0 ? BCON_NEW("failing_since", BCON_INT64(since))
                            : BCON_NEW("failing_since", BCON_NULL);
    bson_t *extra = since > 0 ? BCON_NEW("failing_since", BCON_NULL) : NULL;
    endpoint_update(s, tenant, id, extra, set);
    bson_destroy(set);
    if (extra != NULL)
        bson_destroy(extra);
}

static bool webhook_start(ns_sender_t *s, run_t *r)
{
    const nq_job_t *j = r->job;
    const char *tenant = nq_job_field(j, "tenant");
    const char *body = nq_job_field(j, "body");
    if (tenant == NULL || body == NULL) {
        count_webhook(s, "dropped");
        finish(s, r, false);
        return false;
    }
    const char *room = nq_job_field(j, "room"), *user = nq_job_field(j, "user");
    r->dlq_room = dup_or_null(room);
    r->dlq_user = dup_or_null(user);
    r->payload = cJSON_Parse(body);
    const cJSON *ts =
        r->payload != NULL ? cJSON_GetObjectItemCaseSensitive(r->payload, "ts") : NULL;
    if (!chat_json_read_int(ts, &r->msg_ts))
        r->msg_ts = nq_job_int(j, "first", 0);

    const nt_tenant_t *t = NULL;
    chat_err_t err = nt_cache_get(s->conf.tenants, tenant, &t);
    if (err != CHAT_OK) {
        retry_soon(s, r, "tenants", err);
        return false;
    }
    const nt_endpoint_t *ep = nt_tenant_endpoint(t, j->endpoint_id);
    if (ep == NULL || !ep->enabled || ep->nsecrets == 0) {
        nt_tenant_release(s->conf.tenants, t);
        count_webhook(s, "dropped");
        finish(s, r, false);
        return false;
    }
    char why[256] = "";
    xfer_t *x = xfer_add(r);
    char *sig = NULL;
    int64_t now_s = chat_clock_wall_ms() / 1000;
    r->endpoint_url = strdup(ep->url);
    r->failing_since = ep->failing_since;
    if (x == NULL || r->endpoint_url == NULL)
        err = CHAT_ERR_NOMEM;
    else
        err = chat_whsign_sign((const char *const *)ep->secrets, ep->nsecrets, j->msg_id, now_s,
                               body, strlen(body), &sig);
    nt_tenant_release(s->conf.tenants, t);
    if (err == CHAT_OK) {
        x->len = strlen(body);
        x->body = (unsigned char *)strdup(body);
        if (x->body == NULL || !(header_add(&x->headers, "webhook-id: %s", j->msg_id) &&
                                 header_add(&x->headers, "webhook-timestamp: %" PRId64, now_s) &&
                                 header_add(&x->headers, "webhook-signature: %s", sig) &&
                                 header_add(&x->headers, "Content-Type: application/json")))
            err = CHAT_ERR_NOMEM;
    }
    free(sig);
    if (err == CHAT_OK)
        err = xfer_post(s, x, r->endpoint_url, NS_WEBHOOK_TIMEOUT_MS, why, sizeof why);
    if (err == CHAT_OK)
        err = xfer_start(s, x);
    if (err == CHAT_OK)
        return true;
    /* The URL no longer passes the egress policy, or nothing could be built: a failure like
     * any other (retried; the endpoint's failing streak counts it). */
    if (x != NULL) {
        xfer_clear(s, x);
        r->nx--;
    }
    x = xfer_add(r);
    if (x == NULL) {
        retry_soon(s, r, "out of memory", CHAT_ERR_NOMEM);
        return false;
    }
    x->code = CURLE_COULDNT_CONNECT;
    snprintf(x->errbuf, sizeof x->errbuf, "%s", why[0] != '\0' ? why : chat_err_str(err));
    return false; /* judged at once by the caller */
}

static void webhook_done(ns_sender_t *s, run_t *r)
{
    const nq_job_t *j = r->job;
    const char *tenant = nq_job_field(j, "tenant");
    xfer_t *x = &r->x[0];
    ns_webhook_outcome_t o = ns_webhook_judge(x->code == CURLE_OK ? x->status : 0);
    int64_t now = chat_clock_wall_ms();
    int64_t attempts = nq_job_int(j, "attempts", 0) + 1;
    char why[CURL_ERROR_SIZE + 64];
    xfer_reason(x, why, sizeof why);
    if (o == NS_WEBHOOK_DELIVERED) {
        count_webhook(s, "delivered");
        count_send(s, r, SEND_OK);
        observe_send(s, SEND_WEBHOOK, r->msg_ts);
        if (r->failing_since > 0)
            endpoint_failing(s, tenant, j->endpoint_id, 0);
        finish(s, r, true);
        return;
    }
    if (o == NS_WEBHOOK_GONE) {
        count_webhook(s, "gone");
        count_send(s, r, SEND_GONE);
        endpoint_disable(s, tenant, j->endpoint_id, "410 Gone");
        dead_letter(s, r, "webhook", "410 Gone: endpoint disabled", attempts);
        finish(s, r, false);
        return;
    }
    int64_t since = r->failing_since;
    if (since == 0) {
        since = now;
        endpoint_failing(s, tenant, j->endpoint_id, since);
    }
    if (ns_webhook_failing_too_long(since, now)) {
        count_webhook(s, "disabled");
        count_send(s, r, SEND_FAILED);
        endpoint_disable(s, tenant, j->endpoint_id, "failing for 24 h");
        dead_letter(s, r, "webhook", why, attempts);
        finish(s, r, false);
        return;
    }
    int64_t delay = ns_schedule_delay(&s->webhook_sched, attempts, NS_WEBHOOK_JITTER, rnd01(s));
    if (delay < 0) {
        count_webhook(s, "failed");
        count_send(s, r, SEND_FAILED);
        dead_letter(s, r, "webhook", why, attempts);
        finish(s, r, false);
        return;
    }
    count_webhook(s, "retry");
    count_send(s, r, SEND_RETRY);
    ended(s, j, nq_retry(s->redis, j, now + delay, attempts, why));
}

/* ---- email ---- */

/* A Message-ID and a MIME boundary of random hex. */
static void email_ids(ns_sender_t *s, const char *from_addr, char *mid, size_t midlen,
                      char *boundary, size_t blen)
{
    unsigned a = (unsigned)rand_r(&s->rnd), b = (unsigned)rand_r(&s->rnd);
    const char *at = strchr(from_addr, '@');
    snprintf(mid, midlen, "<%" PRId64 ".%08x%08x@%s>", chat_clock_wall_ms(), a, b,
             at != NULL ? at + 1 : "localhost");
    snprintf(boundary, blen, "chat%08x%08x", b, a);
}

/* The digest's rooms and messages; false with the job ended if there is nothing to send. */
static bool email_start(ns_sender_t *s, run_t *r)
{
    const nq_job_t *j = r->job;
    if (s->smtp_url == NULL) {
        count_email(s, "dropped");
        finish(s, r, false);
        return false;
    }
    const nt_tenant_t *t = NULL;
    chat_err_t err = nt_cache_get(s->conf.tenants, j->tenant, &t);
    if (err != CHAT_OK) {
        retry_soon(s, r, "tenants", err);
        return false;
    }
    char *from = dup_or_null(t->email_from);
    nt_tenant_release(s->conf.tenants, t);
    char *to = NULL;
    if (from != NULL &&
        (err = chat_user_email_get(s->conf.store, j->tenant, j->user, &to)) != CHAT_OK) {
        free(from);
        retry_soon(s, r, "mongodb: user contacts", err);
        return false;
    }
    if (from == NULL || to == NULL) {
        free(from);
        free(to);
        count_email(s, "dropped");
        finish(s, r, false);
        return false;
    }
    if (!user_offline(s, r, count_email)) {
        free(from);
        free(to);
        return false;
    }
    ns_email_room_t rooms[NS_EMAIL_ROOMS_MAX];
    msg_t *msgs[NS_EMAIL_ROOMS_MAX] = {0};
    ns_email_msg_t *items[NS_EMAIL_ROOMS_MAX] = {0};
    size_t nmsgs[NS_EMAIL_ROOMS_MAX] = {0};
    size_t nrooms = 0;
    mongoc_client_t *client = chat_store_acquire(s->conf.store);
    for (size_t i = 0; i + 1 < j->nfields && nrooms < NS_EMAIL_ROOMS_MAX && err == CHAT_OK;
         i += 2) {
        if (strncmp(j->fields[i], "r:", 2) != 0)
            continue;
        const char *room = j->fields[i] + 2;
        char mk[CHAT_ROOM_MAX + 3];
        snprintf(mk, sizeof mk, "m:%s", room);
        const char *mailed = nq_job_field(j, mk);
        int64_t read = 0, after = mailed != NULL ? strtoll(mailed, NULL, 10) : 0;
        err = chat_unread_read_mark(s->conf.store, client, j->tenant, room, j->user, &read);
        if (read > after)
            after = read;
        msg_t *m = NULL;
        size_t nm = 0;
        if (err == CHAT_OK)
            err = msgs_read(s, client, j->tenant, room, j->user, after, 0, NS_EMAIL_PER_ROOM_MAX,
                            &m, &nm);
        if (err != CHAT_OK || nm == 0) {
            msgs_free(m, nm);
            continue;
        }
        ns_email_msg_t *it = calloc(nm, sizeof *it);
        if (it == NULL) {
            msgs_free(m, nm);
            err = CHAT_ERR_NOMEM;
            break;
        }
        for (size_t k = 0; k < nm; k++) /* oldest first */
            it[k] = (ns_email_msg_t){.from = m[nm - 1 - k].from,
                                     .name = m[nm - 1 - k].name,
                                     .text = m[nm - 1 - k].text,
                                     .seq = m[nm - 1 - k].seq,
                                     .ts = m[nm - 1 - k].ts};
        msgs[nrooms] = m;
        nmsgs[nrooms] = nm;
        items[nrooms] = it;
        rooms[nrooms] = (ns_email_room_t){.room = room, .msgs = it, .n = nm};
        r->rooms[nrooms] = strdup(room);
        r->seqs[nrooms] = m[0].seq;
        if (r->msg_ts == 0 || (m[nm - 1].ts > 0 && m[nm - 1].ts < r->msg_ts))
            r->msg_ts = m[nm - 1].ts;
        nrooms++;
    }
    r->nrooms = nrooms;
    chat_store_release(s->conf.store, client);
    bool started = false;
    if (err != CHAT_OK) {
        retry_soon(s, r, "mongodb: digest messages", err);
    } else if (nrooms == 0) {
        count_email(s, "read");
        finish(s, r, false);
    } else {
        char mid[128], boundary[64];
        char *from_addr = ns_email_address(from);
        char *to_addr = ns_email_address(to);
        email_ids(s, from_addr != NULL ? from_addr : "", mid, sizeof mid, boundary,
                  sizeof boundary);
        ns_email_t e = {.from = from,
                        .to = to,
                        .tenant = j->tenant,
                        .rooms = rooms,
                        .nrooms = nrooms,
                        .now_ms = chat_clock_wall_ms(),
                        .boundary = boundary,
                        .message_id = mid};
        /* The dead letter's summary: who, and which rooms. */
        r->dlq_room = strdup(rooms[0].room);
        r->dlq_user = strdup(j->user);
        r->payload = cJSON_CreateObject();
        cJSON *list = cJSON_AddArrayToObject(r->payload, "rooms");
        cJSON_AddStringToObject(r->payload, "user", j->user);
        for (size_t i = 0; list != NULL && i < nrooms; i++)
            cJSON_AddItemToArray(list, cJSON_CreateString(rooms[i].room));
        xfer_t *x = xfer_add(r);
        size_t len = 0;
        char *text = x != NULL ? ns_email_render(&e, &len) : NULL;
        char mailfrom[512], rcpt[512];
        if (x != NULL && text != NULL && from_addr != NULL && to_addr != NULL &&
            (size_t)snprintf(mailfrom, sizeof mailfrom, "<%s>", from_addr) < sizeof mailfrom &&
            (size_t)snprintf(rcpt, sizeof rcpt, "<%s>", to_addr) < sizeof rcpt &&
            (x->rcpt = curl_slist_append(NULL, rcpt)) != NULL &&
            (x->easy = curl_easy_init()) != NULL) {
            x->body = (unsigned char *)text;
            x->len = len;
            text = NULL;
            CURL *c = x->easy;
            curl_easy_setopt(c, CURLOPT_URL, s->smtp_url);
            curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)SMTP_TIMEOUT_MS);
            curl_easy_setopt(c, CURLOPT_MAIL_FROM, mailfrom);
            curl_easy_setopt(c, CURLOPT_MAIL_RCPT, x->rcpt);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, x);
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
            curl_easy_setopt(c, CURLOPT_USE_SSL,
                             s->conf.smtp_tls_required ? (long)CURLUSESSL_ALL
                                                       : (long)CURLUSESSL_TRY);
            if (s->smtp_user != NULL) {
                curl_easy_setopt(c, CURLOPT_USERNAME, s->smtp_user);
                curl_easy_setopt(c, CURLOPT_PASSWORD,
                                 s->smtp_password != NULL ? s->smtp_password : "");
            }
            started = xfer_start(s, x) == CHAT_OK;
        }
        bool addressed = from_addr != NULL && to_addr != NULL;
        free(text);
        free(from_addr);
        free(to_addr);
        if (!started) {
            /* An address that makes no SMTP envelope, or no memory: the digest cannot go. */
            count_email(s, "failed");
            count_send(s, r, SEND_FAILED);
            dead_letter(s, r, "email", addressed ? "not built" : "no usable address", 1);
            finish(s, r, false);
        }
    }
    for (size_t i = 0; i < nrooms; i++) {
        msgs_free(msgs[i], nmsgs[i]);
        free(items[i]);
    }
    free(from);
    free(to);
    return started;
}

static void email_done(ns_sender_t *s, run_t *r)
{
    const nq_job_t *j = r->job;
    xfer_t *x = &r->x[0];
    int64_t now = chat_clock_wall_ms();
    if (x->code == CURLE_OK) {
        count_email(s, "sent");
        count_send(s, r, SEND_OK);
        observe_send(s, SEND_EMAIL, r->msg_ts);
        ended(s, j,
              nq_email_sent(s->redis, j, (const char *const *)r->rooms, r->seqs, r->nrooms, now));
        return;
    }
    char why[CURL_ERROR_SIZE + 64];
    xfer_reason(x, why, sizeof why);
    int64_t attempts = nq_job_int(j, "attempts", 0) + 1;
    int64_t delay = ns_schedule_delay(&s->push_sched, attempts, 0, 0);
    if (delay < 0) {
        count_email(s, "failed");
        count_send(s, r, SEND_FAILED);
        dead_letter(s, r, "email", why, attempts);
        finish(s, r, false);
        return;
    }
    count_email(s, "retry");
    count_send(s, r, SEND_RETRY);
    ended(s, j, nq_retry(s->redis, j, now + delay, attempts, why));
}

/* ---- the loop ---- */

/* Judges and ends a run whose transfers are all over. */
static void run_done(ns_sender_t *s, run_t *r)
{
    switch (r->job->kind) {
    case NQ_PUSH:
    case NQ_CLOSE:
        push_done(s, r);
        break;
    case NQ_WEBHOOK:
        webhook_done(s, r);
        break;
    case NQ_EMAIL:
        email_done(s, r);
        break;
    }
}

/* Prepares a claimed job: its run joins the active ones if it has transfers in flight. */
static void job_start(ns_sender_t *s, nq_job_t *job)
{
    run_t *r = calloc(1, sizeof *r);
    if (r == NULL) {
        nq_jobs_free(job, 1); /* the lease brings it back */
        return;
    }
    r->job = job;
    bool started = false;
    switch (job->kind) {
    case NQ_PUSH:
        started = push_start(s, r);
        break;
    case NQ_CLOSE:
        started = close_start(s, r);
        break;
    case NQ_WEBHOOK:
        started = webhook_start(s, r);
        if (!started && r->nx == 1)
            webhook_done(s, r);
        break;
    case NQ_EMAIL:
        started = email_start(s, r);
        break;
    }
    if (!started) {
        run_free(s, r);
        return;
    }
    s->active[s->nactive++] = r;
}

/* Collects finished transfers; ends the runs whose last one finished. */
static void collect(ns_sender_t *s)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        xfer_t *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x == NULL)
            continue;
        x->code = msg->data.result;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
        curl_off_t us = 0;
        if (curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK)
            chat_histogram_observe(s->send_seconds[job_channel(x->run->job)], (double)us / 1e6);
        curl_multi_remove_handle(s->multi, x->easy);
        x->run->pending--;
    }
    for (size_t i = 0; i < s->nactive;) {
        run_t *r = s->active[i];
        if (r->pending > 0) {
            i++;
            continue;
        }
        run_done(s, r);
        run_free(s, r);
        s->active[i] = s->active[--s->nactive];
    }
}

/* Claims what there is room for. Returns when to claim next (mono ms). */
static int64_t claim_more(ns_sender_t *s)
{
    int64_t mono = chat_clock_mono_ms();
    size_t room = (size_t)s->conf.concurrency - s->nactive;
    if (room == 0)
        return mono + IDLE_WAIT_MS;
    int64_t now = chat_clock_wall_ms();
    nq_job_t *jobs = NULL;
    size_t n = 0;
    chat_err_t err = nq_claim_owned(s->redis, now, room, NQ_LEASE_MS, s->owner, &jobs, &n);
    if (err != CHAT_OK) {
        atomic_store(&s->healthy, false);
        infra_failed(s, "redis: claim", err);
        return mono + chat_backoff_next(&s->backoff);
    }
    atomic_store(&s->healthy, true);
    uint64_t failures = s->failures;
    for (size_t i = 0; i < n; i++) {
        nq_job_t *one = malloc(sizeof *one);
        if (one == NULL) {
            nq_job_clear(&jobs[i]); /* the lease brings it back */
            continue;
        }
        *one = jobs[i];
        job_start(s, one);
    }
    free(jobs); /* the jobs themselves moved into their runs */
    if (s->failures != failures)
        return mono + chat_backoff_next(&s->backoff);
    infra_ok(s);
    if (n == room)
        return mono; /* more may be due */
    int64_t due = 0;
    bool found = false;
    if (nq_next_due(s->redis, &due, &found) != CHAT_OK || !found)
        return mono + IDLE_WAIT_MS;
    int64_t wait = due - chat_clock_wall_ms();
    return mono + (wait < 0 ? 0 : wait < IDLE_WAIT_MS ? wait : IDLE_WAIT_MS);
}

static void *sender_main(void *arg)
{
    ns_sender_t *s = arg;
    int64_t next_claim = 0, next_gauge = 0, stop_at = 0;
    while (true) {
        bool stopping = atomic_load(&s->stop);
        int64_t mono = chat_clock_mono_ms();
        if (stopping) {
            if (stop_at == 0)
                stop_at = mono + STOP_GRACE_MS;
            if (s->nactive == 0 || mono >= stop_at)
                break;
        }
        if (s->redis == NULL && mono >= next_claim) {
            chat_err_t err = chat_redis_connect(s->redis_url, s->conf.redis_timeout_ms, &s->redis);
            if (err != CHAT_OK) {
                s->redis = NULL;
                atomic_store(&s->healthy, false);
                infra_failed(s, "redis: connect", err);
                next_claim = mono + chat_backoff_next(&s->backoff);
            }
        }
        if (s->redis != NULL && !s->released) {
            /* What this instance's previous run held when it died is due again now. */
            int64_t n = 0;
            chat_err_t err = nq_release_owner(s->redis, s->owner, chat_clock_wall_ms(), &n);
            s->released = err == CHAT_OK;
            if (err == CHAT_OK && n > 0)
                chat_log_info("jobs of the previous run taken back", CHAT_F_STR("owner", s->owner),
                              CHAT_F_INT("jobs", n));
        }
        if (s->redis != NULL && !stopping && mono >= next_claim)
            next_claim = claim_more(s);
        if (s->redis != NULL && mono >= next_gauge) {
            int64_t n = 0;
            if (nq_pending(s->redis, &n) == CHAT_OK)
                chat_gauge_set(s->outbox_jobs, (double)n);
            next_gauge = mono + GAUGE_EVERY_MS;
        }
        int running = 0;
        curl_multi_perform(s->multi, &running);
        collect(s);
        int wait = chat_clock_remaining_ms(next_claim);
        if (stopping || wait > IDLE_WAIT_MS)
            wait = stopping ? 50 : IDLE_WAIT_MS;
        if (s->nactive > 0 || wait > 0)
            curl_multi_poll(s->multi, NULL, 0, wait, NULL);
    }
    /* Abandoned: their jobs come back when the lease runs out. */
    if (s->nactive > 0)
        chat_log_warn("notify sender stopped with requests in flight",
                      CHAT_F_INT("jobs", s->nactive));
    for (size_t i = 0; i < s->nactive; i++)
        run_free(s, s->active[i]);
    s->nactive = 0;
    return NULL;
}

chat_err_t ns_sender_new(const ns_sender_conf_t *conf, ns_sender_t **out)
{
    *out = NULL;
    if (conf->store == NULL || conf->redis_url == NULL || conf->tenants == NULL ||
        conf->concurrency < 1)
        return CHAT_ERR_CONFIG;
    if (conf->vapid != NULL && (conf->vapid_subject == NULL || conf->vapid_subject[0] == '\0')) {
        chat_log_error("a VAPID key needs its subject", CHAT_F_STR("var", "CHAT_VAPID_SUBJECT"));
        return CHAT_ERR_CONFIG;
    }
    ns_sender_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CHAT_ERR_NOMEM;
    s->conf = *conf;
    if (s->conf.redis_timeout_ms <= 0)
        s->conf.redis_timeout_ms = 2000;
    if (s->conf.push_ttl_s <= 0)
        s->conf.push_ttl_s = 86400;
    s->redis_url = strdup(conf->redis_url);
    s->vapid_subject = dup_or_null(conf->vapid_subject);
    s->owner = strdup(conf->owner != NULL ? conf->owner : "");
    s->smtp_url = dup_or_null(conf->smtp_url);
    s->smtp_user = dup_or_null(conf->smtp_user);
    s->smtp_password = dup_or_null(conf->smtp_password);
    s->dlq_topic = strdup(conf->dlq_topic != NULL ? conf->dlq_topic : CHAT_TOPIC_NOTIFY_DLQ);
    s->active = calloc((size_t)conf->concurrency, sizeof *s->active);
    s->backoff = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    s->rnd = (unsigned)chat_clock_mono_us() ^ (unsigned)(uintptr_t)s;
    s->conf.redis_url = s->redis_url;
    s->conf.vapid_subject = s->vapid_subject;
    s->conf.smtp_url = s->smtp_url;
    s->conf.smtp_user = s->smtp_user;
    s->conf.smtp_password = s->smtp_password;
    s->conf.dlq_topic = s->dlq_topic;
    s->conf.brokers = NULL;
    s->conf.webhook_schedule = NULL;
    chat_err_t err = CHAT_OK;
    if (s->redis_url == NULL || s->dlq_topic == NULL || s->active == NULL || s->owner == NULL ||
        (conf->vapid_subject != NULL && conf->vapid_subject[0] != '\0' && s->vapid_subject == NULL))
        err = CHAT_ERR_NOMEM;
    char why[128];
    if (err == CHAT_OK &&
        (ns_schedule_parse(NS_PUSH_SCHEDULE, &s->push_sched, why, sizeof why) != CHAT_OK ||
         ns_schedule_parse(conf->webhook_schedule != NULL ? conf->webhook_schedule
                                                          : NS_WEBHOOK_SCHEDULE,
                           &s->webhook_sched, why, sizeof why) != CHAT_OK)) {
        chat_log_error("bad webhook schedule", CHAT_F_STR("var", "CHAT_NOTIFY_WEBHOOK_SCHEDULE"),
                       CHAT_F_STR("reason", why));
        err = CHAT_ERR_CONFIG;
    }
    if (err == CHAT_OK && conf->brokers != NULL && conf->brokers[0] != '\0') {
        chat_bus_producer_conf_t pc = {.brokers = conf->brokers,
                                       .client_id = "chat-notify-dlq",
                                       .linger_ms = 5,
                                       .poll_thread = true,
                                       .metrics = conf->metrics};
        err = chat_bus_producer_new(&pc, &s->dlq);
    }
    if (err == CHAT_OK && (s->multi = curl_multi_init()) == NULL)
        err = CHAT_ERR_IO;
    if (err == CHAT_OK && conf->metrics != NULL)
        send_metrics_register(s);
    if (err == CHAT_OK && conf->metrics != NULL)
        s->outbox_jobs =
            chat_metrics_gauge(conf->metrics, "chat_notify_outbox_jobs",
                               "Jobs in notify's outbox (sent, retried or waiting)", NULL);
    atomic_init(&s->stop, false);
    atomic_init(&s->healthy, false);
    if (err == CHAT_OK && pthread_create(&s->thread, NULL, sender_main, s) != 0)
        err = CHAT_ERR_IO;
    if (err != CHAT_OK) {
        if (s->multi != NULL)
            curl_multi_cleanup(s->multi);
        s->multi = NULL;
        chat_bus_producer_destroy(s->dlq);
        s->dlq = NULL;
        free(s->redis_url);
        free(s->vapid_subject);
        free(s->owner);
        free(s->smtp_url);
        free(s->smtp_user);
        free(s->smtp_password);
        free(s->dlq_topic);
        free(s->active);
        free(s);
        return err;
    }
    *out = s;
    return CHAT_OK;
}

void ns_sender_free(ns_sender_t *s)
{
    if (s == NULL)
        return;
    atomic_store(&s->stop, true);
    curl_multi_wakeup(s->multi);
    pthread_join(s->thread, NULL);
    curl_multi_cleanup(s->multi);
    chat_redis_free(s->redis);
    chat_bus_producer_destroy(s->dlq);
    free(s->redis_url);
    free(s->vapid_subject);
    free(s->owner);
    free(s->smtp_url);
    free(s->smtp_user);
    free(s->smtp_password);
    free(s->dlq_topic);
    free(s->active);
    free(s);
}

bool ns_sender_ready(ns_sender_t *s)
{
    return s != NULL && atomic_load(&s->healthy);
}
