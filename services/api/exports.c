/* POST /v1/exports starts an export job; GET /v1/exports/{id} reads it. The job pages through
 * the tenant's `messages` in (room, seq) order, a bounded batch at a time, writes one line per
 * message to <export dir>/<tenant>/<id>.<attempt>.jsonl.part, fsyncs it and renames it to
 * <id>.jsonl; any failure removes the partial file and fails the job. */
#include "services/api/exports.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bson_fields.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/reactions.h"
#include "services/api/jobs.h"

#define EXPORT_BATCH 1000
#define EXPORT_PATH_MAX 4096

/* ---- lines ---- */

cJSON *api_export_line(const bson_t *doc)
{
    char id[25];
    int64_t seq, ts, edited;
    const char *room = chat_bson_str(doc, "room"), *from = chat_bson_str(doc, "from");
    if (room == NULL || from == NULL || !chat_bson_message_id(doc, id) ||
        !chat_bson_int64(doc, "seq", &seq) || !chat_bson_int64(doc, "ts", &ts))
        return NULL;
    const char *name = chat_bson_str(doc, "name"), *text = chat_bson_str(doc, "text");
    const char *notice = chat_bson_str(doc, "notice"), *target = chat_bson_str(doc, "target");
    bool deleted = chat_bson_true(doc, "deleted"), removed = chat_bson_true(doc, "removed");
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && cJSON_AddStringToObject(o, "room", room) != NULL &&
              chat_json_add_int(o, "seq", seq) && cJSON_AddStringToObject(o, "id", id) != NULL &&
              cJSON_AddStringToObject(o, "from", from) != NULL &&
              (name == NULL || cJSON_AddStringToObject(o, "name", name) != NULL);
    if (ok && deleted)
        ok = cJSON_AddTrueToObject(o, "deleted") != NULL;
    else if (ok && !removed)
        ok = cJSON_AddStringToObject(o, "text", text != NULL ? text : "") != NULL;
    ok = ok && chat_json_add_int(o, "ts", ts) &&
         (!chat_bson_int64(doc, "edited", &edited) || chat_json_add_int(o, "edited", edited)) &&
         (!removed || cJSON_AddTrueToObject(o, "removed") != NULL) &&
         (notice == NULL || cJSON_AddStringToObject(o, "notice", notice) != NULL) &&
         (target == NULL || cJSON_AddStringToObject(o, "target", target) != NULL);
    bson_iter_t it;
    if (ok && !deleted && !removed && bson_iter_init_find(&it, doc, "reactions")) {
        cJSON *reactions = chat_reactions_from_bson(&it);
        if (reactions != NULL && cJSON_GetArraySize(reactions) > 0)
            ok = cJSON_AddItemToObject(o, "reactions", reactions);
        else
            cJSON_Delete(reactions);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

bool api_export_params_parse(const cJSON *body, api_export_params_t *out, char *error,
                             size_t errlen)
{
    *out = (api_export_params_t){0};
    if (body == NULL)
        return true;
    if (!cJSON_IsObject(body)) {
        snprintf(error, errlen, "the body must be an object");
        return false;
    }
    const cJSON *room = cJSON_GetObjectItemCaseSensitive(body, "room");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(body, "from");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(body, "to");
    if (room != NULL && !cJSON_IsNull(room)) {
        if (!cJSON_IsString(room) || !chat_name_room_valid(room->valuestring)) {
            snprintf(error, errlen, "room must be a room name");
            return false;
        }
        out->room = room->valuestring;
    }
    if (from != NULL && (!chat_json_read_int(from, &out->from) || out->from < 0)) {
        snprintf(error, errlen, "from must be a timestamp in ms (an integer >= 0)");
        return false;
    }
    if (to != NULL && (!chat_json_read_int(to, &out->to) || out->to <= 0)) {
        snprintf(error, errlen, "to must be a timestamp in ms (an integer > 0)");
        return false;
    }
    if (out->to > 0 && out->from >= out->to) {
        snprintf(error, errlen, "from must be before to");
        return false;
    }
    return true;
}

/* ---- the job ---- */

/* The messages of the export after (room, seq) (room NULL: from the start). */
static bson_t *export_filter(const char *tenant, const api_export_params_t *p,
                             const char *after_room, int64_t after_seq)
{
    bson_t *f = bson_new(), range, gt;
    BSON_APPEND_UTF8(f, "tenant", tenant);
    if (p->room != NULL)
        BSON_APPEND_UTF8(f, "room", p->room);
    if (p->from > 0 || p->to > 0) {
        BSON_APPEND_DOCUMENT_BEGIN(f, "ts", &range);
        if (p->from > 0)
            BSON_APPEND_INT64(&range, "$gte", p->from);
        if (p->to > 0)
            BSON_APPEND_INT64(&range, "$lt", p->to);
        bson_append_document_end(f, &range);
    }
    if (after_room != NULL && p->room != NULL) {
        BSON_APPEND_DOCUMENT_BEGIN(f, "seq", &gt);
        BSON_APPEND_INT64(&gt, "$gt", after_seq);
        bson_append_document_end(f, &gt);
    } else if (after_room != NULL) {
        api_filter_after_room_seq(f, after_room, after_seq);
    }
    return f;
}

/* The params document of a job as api_export_params_t (strings borrowed from it). */
static void params_read(const bson_t *doc, api_export_params_t *p)
{
    *p = (api_export_params_t){.room = chat_bson_str(doc, "room")};
    chat_bson_int64(doc, "from", &p->from);
    chat_bson_int64(doc, "to", &p->to);
}

/* Creates dir (and its parent) if missing. */
static bool dir_make(const char *dir)
{
    return mkdir(dir, 0750) == 0 || errno == EEXIST;
}

/* Writes the messages of the export to out, a batch at a time. */
static chat_err_t export_write(api_job_t *job, mongoc_collection_t *col,
                               const api_export_params_t *p, FILE *out, char *error, size_t errlen)
{
    const char *tenant = api_job_tenant(job);
    bson_t *all = export_filter(tenant, p, NULL, 0);
    bson_error_t berr;
    int64_t total = mongoc_collection_count_documents(col, all, NULL, NULL, NULL, &berr);
    bson_destroy(all);
    if (total < 0) {
        snprintf(error, errlen, "messages could not be counted: %s", berr.message);
        return chat_store_err(&berr);
    }
    bson_t *opts = BCON_NEW("sort", "{", "room", BCON_INT32(1), "seq", BCON_INT32(1), "}", "limit",
                            BCON_INT64(EXPORT_BATCH));
    char last_room[CHAT_ROOM_MAX + 1] = "";
    int64_t last_seq = 0, done = 0;
    bool positioned = false;
    chat_err_t err = CHAT_OK;
    for (;;) {
        bson_t *filter = export_filter(tenant, p, positioned ? last_room : NULL, last_seq);
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
        const bson_t *doc;
        int64_t fetched = 0, n = 0;
        while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc)) {
            fetched++;
            const char *room = chat_bson_str(doc, "room");
            int64_t seq;
            if (room != NULL &&
                chat_bson_int64(doc, "seq", &seq)) { /* the next batch starts after it */
                snprintf(last_room, sizeof last_room, "%s", room);
                last_seq = seq;
                positioned = true;
            }
            cJSON *line = api_export_line(doc);
            if (line == NULL) { /* not a message document: skipped, as the history does */
                chat_log_warn("export: stored message skipped: missing fields",
                              CHAT_F_STR("tenant", tenant), CHAT_F_STR("job", api_job_id(job)));
                continue;
            }
            char *text = cJSON_PrintUnformatted(line);
            cJSON_Delete(line);
            if (text == NULL) {
                err = CHAT_ERR_NOMEM;
                snprintf(error, errlen, "out of memory");
            } else if (fputs(text, out) == EOF || fputc('\n', out) == EOF) {
                err = CHAT_ERR_IO;
                snprintf(error, errlen, "the export file could not be written: %s",
                         strerror(errno));
            }
            free(text);
            n++;
        }
        if (err == CHAT_OK && mongoc_cursor_error(cursor, &berr)) {
            err = chat_store_err(&berr);
            snprintf(error, errlen, "messages could not be read: %s", berr.message);
        }
        mongoc_cursor_destroy(cursor);
        bson_destroy(filter);
        done += n;
        if (err != CHAT_OK)
            break;
        if (!api_job_progress(job, done, total > done ? total : done)) {
            err = CHAT_ERR_STOPPED;
            break;
        }
        if (fetched < EXPORT_BATCH)
            break;
    }
    bson_destroy(opts);
    return err;
}

chat_err_t api_export_run(api_job_t *job, char *error, size_t errlen)
{
    api_ctx_t *ctx = api_job_ctx(job);
    const char *tenant = api_job_tenant(job);
    if (ctx->export_dir == NULL || ctx->export_dir[0] == '\0') {
        snprintf(error, errlen, "exports are not configured on this server");
        return CHAT_ERR_CONFIG;
    }
    api_export_params_t p;
    params_read(api_job_params(job), &p);
    char dir[EXPORT_PATH_MAX], part[EXPORT_PATH_MAX], final[EXPORT_PATH_MAX], rel[256];
    int dlen = snprintf(dir, sizeof dir, "%s/%s", ctx->export_dir, tenant);
    if (dlen < 0 || (size_t)dlen + 1 + API_JOB_ID_LEN + 22 + sizeof ".jsonl.part" > sizeof dir) {
        snprintf(error, errlen, "the export directory's path is too long");
        return CHAT_ERR_CONFIG;
    }
    /* The attempt's own part file: a runner that lost its lease removes only its own. */
    snprintf(part, sizeof part, "%.*s/%s.%lld.jsonl.part", dlen, dir, api_job_id(job),
             (long long)api_job_attempt(job));
    snprintf(final, sizeof final, "%.*s/%s.jsonl", dlen, dir, api_job_id(job));
    snprintf(rel, sizeof rel, "%s/%s.jsonl", tenant, api_job_id(job));
    if (!dir_make(ctx->export_dir) || !dir_make(dir)) {
        snprintf(error, errlen, "the export directory could not be created: %s", strerror(errno));
        return CHAT_ERR_IO;
    }
    int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    FILE *out = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (out == NULL) {
        snprintf(error, errlen, "the export file could not be created: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(part);
        return CHAT_ERR_IO;
    }
    mongoc_collection_t *col = chat_store_collection(ctx->store, api_job_client(job), "messages");
    chat_err_t err = export_write(job, col, &p, out, error, errlen);
    mongoc_collection_destroy(col);
    if (err == CHAT_OK && (fflush(out) != 0 || fsync(fileno(out)) != 0)) {
        err = CHAT_ERR_IO;
        snprintf(error, errlen, "the export file could not be written: %s", strerror(errno));
    }
    if (fclose(out) != 0 && err == CHAT_OK) {
        err = CHAT_ERR_IO;
        snprintf(error, errlen, "the export file could not be written: %s", strerror(errno));
    }
    if (err == CHAT_OK && rename(part, final) != 0) {
        err = CHAT_ERR_IO;
        snprintf(error, errlen, "the export file could not be completed: %s", strerror(errno));
    }
    if (err != CHAT_OK) {
        unlink(part); /* never a partial file */
        return err;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself durable */
        fsync(dfd);
        close(dfd);
    }
    return api_job_set_result(job, "path", rel);
}

/* ---- handlers ---- */

/* POST /v1/exports {room?, from?, to?} -> 202 {id, state: "queued"}. */
static void export_create(const api_req_t *req, api_resp_t *resp)
{
    static const char *const allowed[] = {"room", "from", "to", NULL};
    if (req->body != NULL && !api_body_fields(req, resp, allowed))
        return;
    api_export_params_t p;
    char error[128];
    if (!api_export_params_parse(req->body, &p, error, sizeof error)) {
        api_error(req, resp, 400, "%s", error);
        return;
    }
    bson_t params = BSON_INITIALIZER;
    if (p.room != NULL)
        BSON_APPEND_UTF8(&params, "room", p.room);
    if (p.from > 0)
        BSON_APPEND_INT64(&params, "from", p.from);
    if (p.to > 0)
        BSON_APPEND_INT64(&params, "to", p.to);
    api_job_answer_created(req, resp, "export", &params, "/v1/exports", "export");
    bson_destroy(&params);
}

/* GET /v1/exports/{id} -> the job (jobs.h: api_job_json); 404 for an id of another tenant. */
static void export_read(const api_req_t *req, api_resp_t *resp)
{
    api_job_answer_read(req, resp, "export", api_job_json, "export");
}

chat_err_t api_exports_register(api_ctx_t *ctx)
{
    chat_err_t err = api_route(ctx, API_POST, "/exports", export_create);
    if (err == CHAT_OK)
        err = api_route(ctx, API_GET, "/exports/{id}", export_read);
    return err;
}
