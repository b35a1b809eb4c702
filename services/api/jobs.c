/* The job runner (see jobs.h): one thread per api instance that claims a queued job, or a
 * running one whose lease expired (its runner died), with one atomic findAndModify, runs its
 * kind's function, renews the lease with each progress write and finishes the job as done or
 * failed. Stopping releases the job in hand, so another instance takes it at once. */
#include "services/api/jobs.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"

#define JOBS_POLL_MS 1000 /* how often an idle runner looks for work of other instances */
/* Claims of one job before it is failed without running again: a job that brings its runner
 * down every time must not take every instance down in turn, forever. */
#define JOBS_ATTEMPTS_MAX 10

#define JOB_KINDS 3 /* entries of job_kinds */

/* How a run of a job ended: the outcome label of chat_api_jobs_total. */
typedef enum job_outcome {
    JOB_DONE,
    JOB_FAILED,
    JOB_RELEASED, /* the instance stopped, or the lease was lost: another run follows */
    JOB_OUTCOMES
} job_outcome_t;
static const char *const job_outcome_names[JOB_OUTCOMES] = {"done", "failed", "released"};

typedef struct jobs_runner {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    bool stopping; /* under mu */
    bool poked;    /* under mu: a job was created here */
    /* The owner of the jobs this runner holds: the instance's name and a random id of this
     * start, so that neither a restart nor another instance configured with the same name
     * takes a held job for its own. */
    char owner[128];
    /* The tenant of the last job claimed: the next claim takes the next tenant's oldest job,
     * so that one tenant's many jobs do not hold up another's (runner thread only). */
    char last_tenant[CHAT_TENANT_MAX + 1];
    /* chat_api_jobs_total by kind (job_kinds, then "other") and job_outcome_t */
    chat_counter_t *ended[JOB_KINDS + 1][JOB_OUTCOMES];
} jobs_runner_t;

struct api_job {
    api_ctx_t *ctx;
    jobs_runner_t *runner;
    mongoc_client_t *client;
    mongoc_collection_t *col;
    char id[API_JOB_ID_LEN + 1];
    char *tenant;
    char *kind;
    bson_t params;
    int64_t attempt; /* the claim's attempts count: unique to this run of the job */
    int64_t done, total;
    int64_t written_ms; /* monotonic time of the last progress write */
    bool lost;          /* the lease went to another instance */
    char *path;         /* result */
    struct {
        const char *key;
        int64_t value;
    } counts[API_JOB_COUNTS_MAX];
    size_t ncounts;
};

static const struct {
    const char *kind;
    api_job_fn run;
} job_kinds[JOB_KINDS] = {
    {"export", api_export_run},
    {"erase", api_erase_run},
    {"rescan", api_rescan_run},
};

/* Registers chat_api_jobs_total{kind,outcome}, every pair at once. */
static void jobs_metrics_register(jobs_runner_t *r, chat_metrics_t *m)
{
    for (size_t k = 0; m != NULL && k <= JOB_KINDS; k++)
        for (int o = 0; o < JOB_OUTCOMES; o++) {
            char labels[64];
            snprintf(labels, sizeof labels, "kind=\"%s\",outcome=\"%s\"",
                     k < JOB_KINDS ? job_kinds[k].kind : "other", job_outcome_names[o]);
            r->ended[k][o] = chat_metrics_counter(
                m, "chat_api_jobs_total",
                "Runs of jobs (exports, erasures, rescans) by kind and how they ended", labels);
        }
}

/* Counts a run of kind that ended with err (after runner_finish). */
static void jobs_count(jobs_runner_t *r, const api_job_t *job, chat_err_t err)
{
    size_t k = 0;
    while (k < JOB_KINDS && (job->kind == NULL || strcmp(job_kinds[k].kind, job->kind) != 0))
        k++;
    job_outcome_t o = job->lost || err == CHAT_ERR_STOPPED ? JOB_RELEASED
                      : err == CHAT_OK                     ? JOB_DONE
                                                           : JOB_FAILED;
    chat_counter_inc(r->ended[k][o]);
}

static const chat_store_index_t job_indexes[] = {
    {API_JOBS_COLLECTION, "tenant_id", false, {"tenant", "_id", NULL}},
    {API_JOBS_COLLECTION, "state_lease", false, {"state", "lease_until", NULL}},
};

bool api_job_id_valid(const char *s)
{
    if (s == NULL || strlen(s) != API_JOB_ID_LEN)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static bool runner_stopping(jobs_runner_t *r)
{
    pthread_mutex_lock(&r->mu);
    bool stopping = r->stopping;
    pthread_mutex_unlock(&r->mu);
    return stopping;
}

/* ---- reading documents ---- */

cJSON *api_job_json(const bson_t *doc)
{
    cJSON *o = cJSON_CreateObject(), *progress = NULL;
    const char *id = chat_bson_str(doc, "_id"), *state = chat_bson_str(doc, "state");
    const char *path = chat_bson_str(doc, "path"), *error = chat_bson_str(doc, "error");
    int64_t done = 0, total = 0;
    bson_iter_t it, sub;
    if (bson_iter_init_find(&it, doc, "progress") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub)) {
            if (strcmp(bson_iter_key(&sub), "done") == 0)
                done = bson_iter_as_int64(&sub);
            else if (strcmp(bson_iter_key(&sub), "total") == 0)
                total = bson_iter_as_int64(&sub);
        }
    }
    bool ok = o != NULL && cJSON_AddStringToObject(o, "id", id != NULL ? id : "") != NULL &&
              cJSON_AddStringToObject(o, "state", state != NULL ? state : "queued") != NULL &&
              (progress = cJSON_AddObjectToObject(o, "progress")) != NULL &&
              chat_json_add_int(progress, "done", done) &&
              chat_json_add_int(progress, "total", total) &&
              (path == NULL || cJSON_AddStringToObject(o, "path", path) != NULL) &&
              (error == NULL || cJSON_AddStringToObject(o, "error", error) != NULL) &&
              chat_json_add_int(o, "created", chat_bson_number_or(doc, "created", 0)) &&
              chat_json_add_int(o, "updated", chat_bson_number_or(doc, "updated", 0));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- resources ---- */

chat_err_t api_job_create(api_ctx_t *ctx, const char *tenant, const char *kind,
                          const bson_t *params, char id[API_JOB_ID_LEN + 1])
{
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    bson_oid_to_string(&oid, id);
    int64_t now = chat_clock_wall_ms();
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant), "kind", BCON_UTF8(kind),
                 "state", BCON_UTF8("queued"), "params", BCON_DOCUMENT(params), "progress", "{",
                 "done", BCON_INT64(0), "total", BCON_INT64(0), "}", "created", BCON_INT64(now),
                 "updated", BCON_INT64(now), "lease_until", BCON_INT64(0));
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, API_JOBS_COLLECTION);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_insert_one(col, doc, NULL, NULL, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("job not created", CHAT_F_STR("tenant", tenant), CHAT_F_STR("kind", kind),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(doc);
    jobs_runner_t *r = ctx->jobs;
    if (err == CHAT_OK && r != NULL) {
        pthread_mutex_lock(&r->mu);
        r->poked = true;
        pthread_cond_signal(&r->wake);
        pthread_mutex_unlock(&r->mu);
    }
    return err;
}

chat_err_t api_job_find(api_ctx_t *ctx, const char *tenant, const char *kind, const char *id,
                        bson_t **doc)
{
    *doc = NULL;
    if (!api_job_id_valid(id))
        return CHAT_ERR_NOT_FOUND;
    bson_t *filter =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant), "kind", BCON_UTF8(kind));
    chat_err_t err = chat_store_find_one(ctx->store, API_JOBS_COLLECTION, filter, doc);
    bson_destroy(filter);
    return err;
}

/* ---- inside a job ---- */

api_ctx_t *api_job_ctx(const api_job_t *job)
{
    return job->ctx;
}

const char *api_job_id(const api_job_t *job)
{
    return job->id;
}

const char *api_job_tenant(const api_job_t *job)
{
    return job->tenant;
}

const bson_t *api_job_params(const api_job_t *job)
{
    return &job->params;
}

mongoc_client_t *api_job_client(const api_job_t *job)
{
    return job->client;
}

int64_t api_job_attempt(const api_job_t *job)
{
    return job->attempt;
}

chat_err_t api_job_set_result(api_job_t *job, const char *key, const char *value)
{
    if (strcmp(key, "path") != 0)
        return CHAT_ERR_INVALID;
    char *copy = strdup(value);
    if (copy == NULL)
        return CHAT_ERR_NOMEM;
    free(job->path);
    job->path = copy;
    return CHAT_OK;
}

chat_err_t api_job_set_count(api_job_t *job, const char *key, int64_t value)
{
    for (size_t i = 0; i < job->ncounts; i++) {
        if (strcmp(job->counts[i].key, key) == 0) {
            job->counts[i].value = value;
            return CHAT_OK;
        }
    }
    if (job->ncounts >= API_JOB_COUNTS_MAX)
        return CHAT_ERR_INVALID;
    job->counts[job->ncounts].key = key;
    job->counts[job->ncounts++].value = value;
    return CHAT_OK;
}

/* Appends the job's counters as the document `counts` of set (nothing without counters). */
static void counts_append(const api_job_t *job, bson_t *set)
{
    if (job->ncounts == 0)
        return;
    bson_t counts;
    BSON_APPEND_DOCUMENT_BEGIN(set, "counts", &counts);
    for (size_t i = 0; i < job->ncounts; i++)
        BSON_APPEND_INT64(&counts, job->counts[i].key, job->counts[i].value);
    bson_append_document_end(set, &counts);
}

/* The filter that matches the job only while this instance holds it. */
static bson_t *held_filter(const api_job_t *job)
{
    return BCON_NEW("_id", BCON_UTF8(job->id), "state", BCON_UTF8("running"), "owner",
                    BCON_UTF8(job->runner->owner));
}

/* Applies update to the job while this instance holds it. CHAT_ERR_NOT_FOUND if it does not
 * any more (the lease expired and another instance claimed the job). */
static chat_err_t held_update(api_job_t *job, const bson_t *update)
{
    bson_t *filter = held_filter(job);
    bson_t reply;
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_update_one(job->col, filter, update, NULL, &reply, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("job not updated", CHAT_F_STR("tenant", job->tenant),
                      CHAT_F_STR("job", job->id), CHAT_F_INT("code", error.code),
                      CHAT_F_STR("error", error.message));
    } else if (chat_bson_number_or(&reply, "matchedCount", 0) == 0) {
        err = CHAT_ERR_NOT_FOUND;
    }
    bson_destroy(&reply);
    bson_destroy(filter);
    return err;
}

bool api_job_progress(api_job_t *job, int64_t done, int64_t total)
{
    job->done = done;
    job->total = total;
    if (job->lost || runner_stopping(job->runner))
        return false;
    int64_t now = chat_clock_mono_ms();
    if (now - job->written_ms < API_JOB_PROGRESS_EVERY_MS)
        return true;
    int64_t wall = chat_clock_wall_ms();
    bson_t update = BSON_INITIALIZER, set, progress;
    BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
    BSON_APPEND_DOCUMENT_BEGIN(&set, "progress", &progress);
    BSON_APPEND_INT64(&progress, "done", done);
    BSON_APPEND_INT64(&progress, "total", total);
    bson_append_document_end(&set, &progress);
    counts_append(job, &set);
    BSON_APPEND_INT64(&set, "updated", wall);
    BSON_APPEND_INT64(&set, "lease_until", wall + API_JOB_LEASE_MS);
    bson_append_document_end(&update, &set);
    chat_err_t err = held_update(job, &update);
    bson_destroy(&update);
    if (err == CHAT_ERR_NOT_FOUND) {
        job->lost = true;
        chat_log_warn("job lease lost: another instance runs it", CHAT_F_STR("tenant", job->tenant),
                      CHAT_F_STR("job", job->id));
        return false;
    }
    /* A failed write is retried with the next progress; the lease has some seconds left. */
    if (err == CHAT_OK)
        job->written_ms = now;
    return true;
}

/* Adds the $or of the messages after (after_room, after_seq). */
void api_filter_after_room_seq(bson_t *filter, const char *after_room, int64_t after_seq)
{
    bson_t or, a, b, gt;
    BSON_APPEND_ARRAY_BEGIN(filter, "$or", & or);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &a);
    BSON_APPEND_DOCUMENT_BEGIN(&a, "room", &gt);
    BSON_APPEND_UTF8(&gt, "$gt", after_room);
    bson_append_document_end(&a, &gt);
    bson_append_document_end(& or, &a);
    BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &b);
    BSON_APPEND_UTF8(&b, "room", after_room);
    BSON_APPEND_DOCUMENT_BEGIN(&b, "seq", &gt);
    BSON_APPEND_INT64(&gt, "$gt", after_seq);
    bson_append_document_end(&b, &gt);
    bson_append_document_end(& or, &b);
    bson_append_array_end(filter, & or);
}

/* ---- the runner ---- */

/* Claims the oldest job that is queued, or running under an expired lease (its runner died
 * or stopped without releasing it), of the first tenant after after_tenant (NULL: of any
 * tenant, the first in order). *doc (caller destroys) is NULL if there is none. */
static chat_err_t runner_claim_after(jobs_runner_t *r, mongoc_collection_t *col,
                                     const char *after_tenant, bson_t **doc)
{
    *doc = NULL;
    int64_t now = chat_clock_wall_ms();
    bson_t *query =
        BCON_NEW("$or", "[", "{", "state", BCON_UTF8("queued"), "}", "{", "state",
                 BCON_UTF8("running"), "lease_until", "{", "$lt", BCON_INT64(now), "}", "}", "]");
    if (after_tenant != NULL) {
        bson_t gt;
        BSON_APPEND_DOCUMENT_BEGIN(query, "tenant", &gt);
        BSON_APPEND_UTF8(&gt, "$gt", after_tenant);
        bson_append_document_end(query, &gt);
    }
    bson_t *sort = BCON_NEW("tenant", BCON_INT32(1), "created", BCON_INT32(1));
    bson_t *update =
        BCON_NEW("$set", "{", "state", BCON_UTF8("running"), "owner", BCON_UTF8(r->owner),
                 "lease_until", BCON_INT64(now + API_JOB_LEASE_MS), "updated", BCON_INT64(now),
                 "progress", "{", "done", BCON_INT64(0), "total", BCON_INT64(0), "}", "counts", "{",
                 "}", "}", "$inc", "{", "attempts", BCON_INT32(1), "}");
    mongoc_find_and_modify_opts_t *opts = mongoc_find_and_modify_opts_new();
    mongoc_find_and_modify_opts_set_sort(opts, sort);
    mongoc_find_and_modify_opts_set_update(opts, update);
    mongoc_find_and_modify_opts_set_flags(opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
    bson_t reply;
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_find_and_modify_with_opts(col, query, opts, &reply, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("jobs not claimed", CHAT_F_INT("code", error.code),
                      CHAT_F_STR("error", error.message));
    } else {
        bson_iter_t it;
        if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            const uint8_t *data;
            uint32_t len;
            bson_iter_document(&it, &len, &data);
            *doc = bson_new_from_data(data, len);
            if (*doc == NULL)
                err = CHAT_ERR_NOMEM;
        }
    }
    bson_destroy(&reply);
    mongoc_find_and_modify_opts_destroy(opts);
    bson_destroy(query);
    bson_destroy(sort);
    bson_destroy(update);
    return err;
}

/* Claims the next job, taking the tenants in turn (the one after the last claimed, wrapping
 * around): a tenant with many jobs waits for the others' oldest ones. */
static chat_err_t runner_claim(jobs_runner_t *r, mongoc_collection_t *col, bson_t **doc)
{
    chat_err_t err = CHAT_OK;
    if (r->last_tenant[0] != '\0')
        err = runner_claim_after(r, col, r->last_tenant, doc);
    if (err == CHAT_OK && *doc == NULL)
        err = runner_claim_after(r, col, NULL, doc);
    const char *tenant = *doc != NULL ? chat_bson_str(*doc, "tenant") : NULL;
    if (tenant != NULL)
        snprintf(r->last_tenant, sizeof r->last_tenant, "%s", tenant);
    return err;
}

static api_job_fn kind_fn(const char *kind)
{
    for (size_t i = 0; kind != NULL && i < JOB_KINDS; i++)
        if (strcmp(job_kinds[i].kind, kind) == 0)
            return job_kinds[i].run;
    return NULL;
}

/* Ends the job after its kind returned err: done, failed (with error), or released. */
static void runner_finish(api_job_t *job, chat_err_t err, const char *error)
{
    if (job->lost)
        return;
    int64_t now = chat_clock_wall_ms();
    bson_t update = BSON_INITIALIZER, set, progress, unset;
    if (err == CHAT_ERR_STOPPED) {
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
        BSON_APPEND_UTF8(&set, "state", "queued");
        BSON_APPEND_INT64(&set, "lease_until", 0);
        BSON_APPEND_INT64(&set, "updated", now);
        bson_append_document_end(&update, &set);
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$unset", &unset);
        BSON_APPEND_UTF8(&unset, "owner", "");
        bson_append_document_end(&update, &unset);
    } else {
        BSON_APPEND_DOCUMENT_BEGIN(&update, "$set", &set);
        BSON_APPEND_UTF8(&set, "state", err == CHAT_OK ? "done" : "failed");
        BSON_APPEND_DOCUMENT_BEGIN(&set, "progress", &progress);
        BSON_APPEND_INT64(&progress, "done", job->done);
        BSON_APPEND_INT64(&progress, "total", job->total);
        bson_append_document_end(&set, &progress);
        if (err == CHAT_OK && job->path != NULL)
            BSON_APPEND_UTF8(&set, "path", job->path);
        counts_append(job, &set);
        if (err != CHAT_OK)
            BSON_APPEND_UTF8(&set, "error", error[0] ? error : chat_err_str(err));
        BSON_APPEND_INT64(&set, "updated", now);
        BSON_APPEND_INT64(&set, "lease_until", 0);
        bson_append_document_end(&update, &set);
    }
    chat_err_t werr = held_update(job, &update);
    bson_destroy(&update);
    if (werr == CHAT_ERR_NOT_FOUND)
        chat_log_warn("job finished after its lease was lost", CHAT_F_STR("tenant", job->tenant),
                      CHAT_F_STR("job", job->id));
    else if (werr != CHAT_OK)
        chat_log_warn("job end not written: it runs again when its lease expires",
                      CHAT_F_STR("tenant", job->tenant), CHAT_F_STR("job", job->id),
                      CHAT_F_ERR(werr));
}

/* Runs one claimed job document. */
static void runner_run(api_ctx_t *ctx, jobs_runner_t *r, mongoc_client_t *client,
                       mongoc_collection_t *col, const bson_t *doc)
{
    api_job_t job = {.ctx = ctx, .runner = r, .client = client, .col = col};
    const char *id = chat_bson_str(doc, "_id"), *tenant = chat_bson_str(doc, "tenant");
    const char *kind = chat_bson_str(doc, "kind");
    snprintf(job.id, sizeof job.id, "%s", id != NULL ? id : "");
    job.tenant = strdup(tenant != NULL ? tenant : "");
    job.kind = strdup(kind != NULL ? kind : "");
    job.written_ms = chat_clock_mono_ms();
    job.attempt = chat_bson_number_or(doc, "attempts", 0);
    bson_init(&job.params);
    bson_iter_t it;
    if (bson_iter_init_find(&it, doc, "params") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        const uint8_t *data;
        uint32_t len;
        bson_iter_document(&it, &len, &data);
        bson_destroy(&job.params);
        bson_init_static(&job.params, data, len); /* lives as long as doc */
    }
    char error[256] = "";
    chat_err_t err;
    api_job_fn run = kind_fn(kind);
    int64_t started = chat_clock_mono_ms();
    chat_log_info("job started", CHAT_F_STR("tenant", job.tenant), CHAT_F_STR("job", job.id),
                  CHAT_F_STR("kind", job.kind));
    if (job.tenant == NULL || job.kind == NULL) {
        err = CHAT_ERR_NOMEM;
    } else if (run == NULL) {
        err = CHAT_ERR_INVALID;
        snprintf(error, sizeof error, "unknown job kind");
    } else if (job.attempt > JOBS_ATTEMPTS_MAX) {
        err = CHAT_ERR_IO;
        snprintf(error, sizeof error, "given up after %d attempts", JOBS_ATTEMPTS_MAX);
    } else {
        err = run(&job, error, sizeof error);
    }
    runner_finish(&job, err, error);
    jobs_count(r, &job, err);
    chat_log_info("job ended", CHAT_F_STR("tenant", job.tenant ? job.tenant : ""),
                  CHAT_F_STR("job", job.id), CHAT_F_STR("kind", job.kind ? job.kind : ""),
                  CHAT_F_ERR(err), CHAT_F_STR("error", error),
                  CHAT_F_INT("ms", chat_clock_mono_ms() - started));
    free(job.tenant);
    free(job.kind);
    free(job.path);
}

static void *runner_main(void *arg)
{
    api_ctx_t *ctx = arg;
    jobs_runner_t *r = ctx->jobs;
    while (!runner_stopping(r)) {
        mongoc_client_t *client = chat_store_acquire(ctx->store);
        mongoc_collection_t *col = chat_store_collection(ctx->store, client, API_JOBS_COLLECTION);
        bson_t *doc = NULL;
        chat_err_t err = runner_claim(r, col, &doc);
        if (doc != NULL)
            runner_run(ctx, r, client, col, doc);
        bson_destroy(doc);
        mongoc_collection_destroy(col);
        chat_store_release(ctx->store, client);
        if (doc != NULL && err == CHAT_OK)
            continue; /* maybe more work waiting */
        pthread_mutex_lock(&r->mu);
        if (!r->stopping && !r->poked) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += JOBS_POLL_MS / 1000;
            pthread_cond_timedwait(&r->wake, &r->mu, &until);
        }
        r->poked = false;
        pthread_mutex_unlock(&r->mu);
    }
    return NULL;
}

chat_err_t api_jobs_start(api_ctx_t *ctx)
{
    chat_err_t err = chat_store_ensure_indexes(ctx->store, job_indexes,
                                               sizeof job_indexes / sizeof job_indexes[0]);
    if (err != CHAT_OK)
        return err;
    jobs_runner_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CHAT_ERR_NOMEM;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->wake, NULL);
    bson_oid_t boot;
    bson_oid_init(&boot, NULL);
    char boot_hex[25];
    bson_oid_to_string(&boot, boot_hex);
    snprintf(r->owner, sizeof r->owner, "%.64s.%s", ctx->instance != NULL ? ctx->instance : "api",
             boot_hex + 16); /* the ObjectId's counter and random bytes */
    jobs_metrics_register(r, ctx->metrics);
    ctx->jobs = r;
    if (pthread_create(&r->thread, NULL, runner_main, ctx) != 0) {
        ctx->jobs = NULL;
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->mu);
        free(r);
        return CHAT_ERR_IO;
    }
    r->started = true;
    return CHAT_OK;
}

void api_jobs_stop(api_ctx_t *ctx)
{
    jobs_runner_t *r = ctx->jobs;
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->mu);
    ctx->jobs = NULL;
    free(r);
}

void api_job_answer_created(const api_req_t *req, api_resp_t *resp, const char *kind,
                            const bson_t *params, const char *location_prefix, const char *what)
{
    char id[API_JOB_ID_LEN + 1], doing[96];
    chat_err_t err = api_job_create(req->ctx, req->tenant, kind, params, id);
    if (err != CHAT_OK) {
        snprintf(doing, sizeof doing, "creating the %s", what);
        api_error_from(req, resp, err, doing);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || cJSON_AddStringToObject(o, "id", id) == NULL ||
        cJSON_AddStringToObject(o, "state", "queued") == NULL) {
        cJSON_Delete(o);
        snprintf(doing, sizeof doing, "answering the %s", what);
        api_error_from(req, resp, CHAT_ERR_NOMEM, doing);
        return;
    }
    snprintf(resp->location, sizeof resp->location, "%s/%s", location_prefix, id);
    api_json(resp, 202, o);
}

void api_job_answer_read(const api_req_t *req, api_resp_t *resp, const char *kind,
                         cJSON *(*render)(const bson_t *doc), const char *what)
{
    bson_t *doc = NULL;
    char doing[96];
    chat_err_t err = api_job_find(req->ctx, req->tenant, kind, req->params[0], &doc);
    if (err == CHAT_ERR_NOT_FOUND) {
        api_error(req, resp, 404, "%s not found", what);
        return;
    }
    if (err != CHAT_OK) {
        snprintf(doing, sizeof doing, "reading the %s", what);
        api_error_from(req, resp, err, doing);
        return;
    }
    cJSON *o = render(doc);
    bson_destroy(doc);
    if (o == NULL) {
        snprintf(doing, sizeof doing, "answering the %s", what);
        api_error_from(req, resp, CHAT_ERR_NOMEM, doing);
        return;
    }
    api_json(resp, 200, o);
}
