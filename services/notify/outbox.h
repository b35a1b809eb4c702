/* The outbox of notify in Redis (docs/notify.md, "The outbox in Redis"): what the pipeline
 * decided to send, as jobs due at a time, and what the senders claim, retry and finish.
 *
 * Pipeline side: the nq_note_* and nq_*_add calls queue one script each onto a batch
 * (nq_batch_t, no I/O); nq_batch_run sends the whole batch as one pipeline and reads every
 * reply. Every call is idempotent (a replayed Kafka batch changes nothing it already did), so
 * the pipeline commits its offsets only after nq_batch_run returned CHAT_OK.
 *
 * Sender side: nq_claim takes due jobs (moving their score to now + lease, one script), and
 * each claimed job ends with nq_finish (gone), nq_retry (due again later) or, for a push,
 * nq_push_sent. */
#ifndef CHAT_NOTIFY_OUTBOX_H
#define CHAT_NOTIFY_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/redis.h"

#define NQ_DUE_KEY "chat:notify:due"
#define NQ_LEASE_MS 60000
/* chat:notify:claims:<owner>: the jobs an instance (CHAT_INSTANCE_ID) holds, by lease. */
#define NQ_CLAIMS_PREFIX "chat:notify:claims:"
/* The field of a push job's hash that lists the subscriptions a retried push already reached
 * (set with nq_retry_fields; cleared when a new window starts). */
#define NQ_PUSH_SENT_SUBS "subs_sent"

typedef struct nq_batch nq_batch_t;

nq_batch_t *nq_batch_new(void);
void nq_batch_free(nq_batch_t *b);
size_t nq_batch_size(const nq_batch_t *b);
/* Drops everything queued (a pass that failed half-way). */
void nq_batch_clear(nq_batch_t *b);
/* Sends every queued script in one pipeline and reads the replies; the batch is empty again
 * after it (whatever the outcome). CHAT_ERR_REDIS: the caller retries the whole Kafka batch. */
chat_err_t nq_batch_run(nq_batch_t *b, chat_redis_t *r);

/* A message for an offline user's push: creates or extends the collapse window of
 * tenant/user/room (job push|tenant|user|room, due at now + window_ms, or a window after the
 * previous push if that is later); only a seq above the window's newest changes it. urgent:
 * a dm or a mention (Urgency: high). */
typedef struct nq_push_note {
    const char *tenant, *user, *room;
    int64_t seq, ts;
    const char *id, *from, *name, *text; /* name may be NULL */
    bool urgent;
} nq_push_note_t;
chat_err_t nq_note_push(nq_batch_t *b, const nq_push_note_t *n, int64_t now_ms, int64_t window_ms);

/* A message for an offline user's email digest: room joins the user's digest set; the job
 * email|tenant|user is created, if not there, due at max(now + delay_ms, last digest +
 * delay_ms). */
chat_err_t nq_note_digest(nq_batch_t *b, const char *tenant, const char *user, const char *room,
                          int64_t seq, int64_t now_ms, int64_t delay_ms);

/* One event to one endpoint: job wh|endpoint_id|msg_id with {tenant, room, user, type, body,
 * attempts: 0, first: now}, due now; nothing if the job exists or was delivered (done
 * marker). user: the event's user (for the dead letter). */
chat_err_t nq_webhook_add(nq_batch_t *b, const char *tenant, const char *endpoint_id,
                          const char *msg_id, const char *room, const char *user, const char *type,
                          const char *body, int64_t now_ms);

/* tenant/user read room up to seq: a sent notification whose range ends at or below seq is
 * withdrawn (job close|tenant|user|room due now); a pending window whose newest seq is at or
 * below seq is dropped. */
chat_err_t nq_recall_read(nq_batch_t *b, const char *tenant, const char *user, const char *room,
                          int64_t seq, int64_t now_ms);

/* Message seq of tenant/room was deleted or removed: every user whose sent notification's
 * range holds seq gets a close job; a pending window's text is dropped if seq is its newest. */
chat_err_t nq_recall_gone(nq_batch_t *b, const char *tenant, const char *room, int64_t seq,
                          int64_t now_ms);

/* ---- sender side ---- */

typedef enum nq_kind { NQ_PUSH, NQ_CLOSE, NQ_EMAIL, NQ_WEBHOOK } nq_kind_t;

/* A claimed job: its id, kind and the fields of its hash (names and values, NUL-terminated). */
typedef struct nq_job {
    char *id;
    nq_kind_t kind;
    char *tenant, *user, *room; /* from the id (room: NULL for email; user NULL for webhooks) */
    char *endpoint_id, *msg_id; /* webhooks */
    char **fields;              /* name, value, name, value, ... */
    size_t nfields;             /* count of strings (2 per field) */
    int64_t lease;              /* the claim's score: finish/retry only act while it holds */
} nq_job_t;

/* The value of field name of job, NULL if absent. */
const char *nq_job_field(const nq_job_t *j, const char *name);
/* The field as a number, def if absent. */
int64_t nq_job_int(const nq_job_t *j, const char *name, int64_t def);
/* Frees what one job holds (not the job itself) and zeroes it. */
void nq_job_clear(nq_job_t *j);

/* Claims at most max jobs due at now. *jobs malloc'd (free with nq_jobs_free). An email job
 * also carries, as fields "m:<room>", the highest seq a digest already mailed per room. */
chat_err_t nq_claim(chat_redis_t *r, int64_t now_ms, size_t max, nq_job_t **jobs, size_t *n);
/* nq_claim with a lease of lease_ms instead of NQ_LEASE_MS (tests of the lease's expiry). */
chat_err_t nq_claim_lease(chat_redis_t *r, int64_t now_ms, size_t max, int64_t lease_ms,
                          nq_job_t **jobs, size_t *n);
void nq_jobs_free(nq_job_t *jobs, size_t n);
/* nq_claim_lease with an owner (an instance id; NULL or "" for none): the claims are recorded
 * under it, so that the same instance restarted takes them back (nq_release_owner) instead of
 * waiting out the lease. */
chat_err_t nq_claim_owned(chat_redis_t *r, int64_t now_ms, size_t max, int64_t lease_ms,
                          const char *owner, nq_job_t **jobs, size_t *n);
/* At an instance's start: every job its previous run still held (killed in the middle of
 * sending) is due now. *released: how many. Nothing for an empty owner. */
chat_err_t nq_release_owner(chat_redis_t *r, const char *owner, int64_t now_ms, int64_t *released);

/* finish, retry, push_sent and email_sent act only while the claim's lease holds (the job's
 * score is still j->lease): else they change nothing and return CHAT_ERR_NOT_FOUND (the lease
 * ran out and another sender may hold the job now). */

/* The job is over: removed with its hash; a delivered webhook leaves its done marker (1 day).
 * A push or email job that got a new note since the claim stays, due a window (push) or a
 * delay (email) from now, with only what is new. */
chat_err_t nq_finish(chat_redis_t *r, const nq_job_t *j, bool delivered);
/* The job is due again at due_ms, with attempts and the last error recorded in its hash. */
chat_err_t nq_retry(chat_redis_t *r, const nq_job_t *j, int64_t due_ms, int64_t attempts,
                    const char *error);
/* nq_retry that also sets the n (name, value) pairs of fields in the job's hash (a push keeps
 * the subscriptions already sent). */
chat_err_t nq_retry_fields(chat_redis_t *r, const nq_job_t *j, int64_t due_ms, int64_t attempts,
                           const char *error, const char *const *fields, size_t n);
/* A digest was mailed with the messages up to seqs[i] of rooms[i]: recorded (a week) so that
 * no later digest mails them again and the next one waits a delay from now; the job ends as
 * nq_finish. */
chat_err_t nq_email_sent(chat_redis_t *r, const nq_job_t *j, const char *const *rooms,
                         const int64_t *seqs, size_t n, int64_t now_ms);
/* A push was sent for first..last of tenant/user/room: records the sent range (1 day) and
 * the user in the room's shown set, and ends the job (a note that arrived since the claim
 * starts a new window instead). */
chat_err_t nq_push_sent(chat_redis_t *r, const nq_job_t *j, int64_t first, int64_t last,
                        int64_t now_ms);

/* Jobs waiting (ZCARD of the due set), for the metrics. */
chat_err_t nq_pending(chat_redis_t *r, int64_t *n);

/* When the earliest job is due (ms; claimed ones count at their lease's end): *due_ms, or
 * *found false if there is no job. */
chat_err_t nq_next_due(chat_redis_t *r, int64_t *due_ms, bool *found);

#endif
