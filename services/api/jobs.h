/* The api's jobs (exports, user erasure, moderation rescans): documents in MongoDB `jobs` that the
 * runner thread of any api instance claims with a lease, runs and finishes (docs/server-api.md,
 * "Jobs"). A job kind is a function that does its work from the start every time it runs: a job
 * whose runner died is run again, whole, by the next instance that claims it. */
#ifndef CHAT_API_JOBS_H
#define CHAT_API_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <cjson/cJSON.h>
#include <mongoc/mongoc.h>

#include "common/err.h"
#include "services/api/api.h"

#define API_JOBS_COLLECTION "jobs"
#define API_JOB_ID_LEN 24              /* an ObjectId's hex digits */
#define API_JOB_LEASE_MS 30000         /* a claim or a renewal holds the job this long */
#define API_JOB_PROGRESS_EVERY_MS 1000 /* progress (and the lease) written at most this often */

/* A job being run: handed to its kind's function by the runner, valid during the call. */
typedef struct api_job api_job_t;

/* A kind's work. Returns CHAT_OK when done (result fields set with api_job_set_result), or an
 * error with a reason for the tenant in error (the job is failed with it); CHAT_ERR_STOPPED
 * when api_job_progress said to stop (the job is released, not failed). */
typedef chat_err_t (*api_job_fn)(api_job_t *job, char *error, size_t errlen);

/* The kinds (exports.c, erasure.c, rescan.c). */
chat_err_t api_export_run(api_job_t *job, char *error, size_t errlen);
chat_err_t api_erase_run(api_job_t *job, char *error, size_t errlen);
chat_err_t api_rescan_run(api_job_t *job, char *error, size_t errlen);

/* ---- the runner (main.c) ---- */

/* Creates the indexes of jobs and starts the runner thread; ctx->jobs holds its state.
 * CHAT_ERR_MONGO (indexes), CHAT_ERR_NOMEM, CHAT_ERR_IO (thread). */
chat_err_t api_jobs_start(api_ctx_t *ctx);

/* Stops the runner: a running job is told to stop at its next progress call and released
 * (queued again for any instance). Waits for the thread. Accepts a ctx whose runner never
 * started. */
void api_jobs_stop(api_ctx_t *ctx);

/* ---- jobs as resources (handlers) ---- */

/* Inserts a queued job of kind for tenant with params (copied; a document) and wakes this
 * instance's runner. id gets its id. CHAT_ERR_MONGO and the like (logged). */
chat_err_t api_job_create(api_ctx_t *ctx, const char *tenant, const char *kind,
                          const bson_t *params, char id[API_JOB_ID_LEN + 1]);

/* The job document id of tenant and kind: *doc (caller bson_destroys) or CHAT_ERR_NOT_FOUND
 * (also for an id of another tenant, another kind, or one that is no job id). */
chat_err_t api_job_find(api_ctx_t *ctx, const char *tenant, const char *kind, const char *id,
                        bson_t **doc);

/* A job document as the tenant sees it: {id, state, progress: {done, total}, path?, error?,
 * created, updated}. NULL if out of memory. Pure. */
cJSON *api_job_json(const bson_t *doc);

/* A handler's whole answer to a request that starts a job: creates the job of kind with params
 * for the request's tenant and answers 202 {id, state: "queued"} with Location
 * location_prefix/<id> ("/v1/exports"); on failure the error answer ("creating the <what>"). */
void api_job_answer_created(const api_req_t *req, api_resp_t *resp, const char *kind,
                            const bson_t *params, const char *location_prefix, const char *what);

/* A handler's whole answer to GET of job req->params[0] of kind: 200 with render(doc) (the
 * kind's view of its document, NULL when out of memory), 404 "<what> not found" for an id of
 * another tenant or kind. */
void api_job_answer_read(const api_req_t *req, api_resp_t *resp, const char *kind,
                         cJSON *(*render)(const bson_t *doc), const char *what);

/* True if s can be a job id (24 lowercase hex digits). Pure. */
bool api_job_id_valid(const char *s);

/* ---- inside a kind's function ---- */

api_ctx_t *api_job_ctx(const api_job_t *job);
const char *api_job_id(const api_job_t *job);
const char *api_job_tenant(const api_job_t *job);
/* The job's params document as created. */
const bson_t *api_job_params(const api_job_t *job);
/* The MongoDB client the job works with (the runner's; never released by the kind). */
mongoc_client_t *api_job_client(const api_job_t *job);
/* Which claim of the job this run is (1, 2, ...): a runner whose lease was taken over may still
 * be running its attempt while the next one runs, so what an attempt writes aside carries it. */
int64_t api_job_attempt(const api_job_t *job);

/* Records progress done of total; written (with the lease renewed) at most every
 * API_JOB_PROGRESS_EVERY_MS. Returns false when the kind must stop now: the service is
 * stopping, or the lease was lost (another instance took the job over). */
bool api_job_progress(api_job_t *job, int64_t done, int64_t total);

/* Sets a string result field (e.g. "path") stored with state done. CHAT_ERR_NOMEM,
 * CHAT_ERR_INVALID (key not a result field: "path" only). */
chat_err_t api_job_set_result(api_job_t *job, const char *key, const char *value);

#define API_JOB_COUNTS_MAX 8 /* named counters of a job (api_job_set_count) */

/* Sets the counter key (a static string, e.g. "scanned") of the job's document field `counts`,
 * written with each progress write and when the job ends (a claim starts them over: a job runs
 * from the start). CHAT_ERR_INVALID beyond API_JOB_COUNTS_MAX distinct keys. */
chat_err_t api_job_set_count(api_job_t *job, const char *key, int64_t value);

/* Adds to filter the messages after (after_room, after_seq) in (room, seq) order:
 * {$or: [{room: {$gt: after_room}}, {room: after_room, seq: {$gt: after_seq}}]}. For jobs
 * that page through messages and resume where the last batch ended. */
void api_filter_after_room_seq(bson_t *filter, const char *after_room, int64_t after_seq);

#endif
