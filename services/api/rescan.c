/* POST /v1/moderation/rescan starts a rescan job; GET /v1/moderation/rescan/{id} reads it. The
 * job applies the tenant's current rules (compiled once) to its stored messages of a time range,
 * a page at a time in (room, seq) order: each hit is recorded (common/mod_record.h, by
 * "rescan") and each removal is produced to chat.moderation as a verdict, exactly as the
 * moderation service does for new messages; a repeated run changes nothing (the recorder keeps
 * what is there, a verdict applied twice changes nothing). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/clock.h"
#include "common/events.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mod_record.h"
#include "common/names.h"
#include "services/api/jobs.h"
#include "services/api/moderation.h"

#define RESCAN_BATCH 500 /* messages a page */

/* ---- pure pieces ---- */

bool api_rescan_params_parse(const cJSON *body, int64_t now_ms, api_rescan_params_t *out,
                             char *error, size_t errlen)
{
    *out = (api_rescan_params_t){0};
    const cJSON *room = body != NULL ? cJSON_GetObjectItemCaseSensitive(body, "room") : NULL;
    const cJSON *since = body != NULL ? cJSON_GetObjectItemCaseSensitive(body, "since") : NULL;
    const cJSON *until = body != NULL ? cJSON_GetObjectItemCaseSensitive(body, "until") : NULL;
    if (room != NULL && !cJSON_IsNull(room)) {
        if (!cJSON_IsString(room) || !chat_name_room_valid(room->valuestring)) {
            snprintf(error, errlen, "room must be a room name");
            return false;
        }
        out->room = room->valuestring;
    }
    if (since == NULL || cJSON_IsNull(since)) {
        snprintf(error, errlen, "missing field: since");
        return false;
    }
    if (!chat_json_read_int(since, &out->since) ||
        out->since < now_ms - API_MOD_RESCAN_MAX_AGE_MS || out->since > now_ms) {
        snprintf(error, errlen,
                 "since must be a time in ms since the epoch within the last 7 days, not in the "
                 "future");
        return false;
    }
    out->until = now_ms;
    if (until != NULL && !cJSON_IsNull(until)) {
        int64_t v;
        if (!chat_json_read_int(until, &v) || v < out->since) {
            snprintf(error, errlen, "until must be a time in ms since the epoch, not before since");
            return false;
        }
        out->until = v < now_ms ? v : now_ms;
    }
    return true;
}

cJSON *api_rescan_json(const bson_t *doc)
{
    static const char *const counts[] = {"scanned", "matched", "removed", "flagged"};
    const char *id = chat_bson_str(doc, "_id"), *state = chat_bson_str(doc, "state");
    const char *error = chat_bson_str(doc, "error");
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && cJSON_AddStringToObject(o, "id", id != NULL ? id : "") != NULL &&
              cJSON_AddStringToObject(o, "state", state != NULL ? state : "queued") != NULL;
    bson_iter_t it, sub;
    bool have_counts = bson_iter_init_find(&it, doc, "counts") && BSON_ITER_HOLDS_DOCUMENT(&it);
    for (size_t i = 0; ok && i < sizeof counts / sizeof counts[0]; i++) {
        int64_t v = 0;
        if (have_counts && bson_iter_recurse(&it, &sub) && bson_iter_find(&sub, counts[i]) &&
            BSON_ITER_HOLDS_NUMBER(&sub))
            v = bson_iter_as_int64(&sub);
        ok = chat_json_add_int(o, counts[i], v);
    }
    const char *room = NULL;
    int64_t since = 0, until = 0;
    if (bson_iter_init_find(&it, doc, "params") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
        bson_iter_recurse(&it, &sub)) {
        while (bson_iter_next(&sub)) {
            const char *key = bson_iter_key(&sub);
            if (strcmp(key, "room") == 0 && BSON_ITER_HOLDS_UTF8(&sub))
                room = bson_iter_utf8(&sub, NULL);
            else if (strcmp(key, "since") == 0 && BSON_ITER_HOLDS_NUMBER(&sub))
                since = bson_iter_as_int64(&sub);
            else if (strcmp(key, "until") == 0 && BSON_ITER_HOLDS_NUMBER(&sub))
                until = bson_iter_as_int64(&sub);
        }
    }
    ok = ok && (room == NULL || cJSON_AddStringToObject(o, "room", room) != NULL) &&
         chat_json_add_int(o, "since", since) && chat_json_add_int(o, "until", until) &&
         (error == NULL || cJSON_AddStringToObject(o, "error", error) != NULL);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- the job ---- */

typedef struct rescan {
    api_job_t *job;
    api_ctx_t *ctx;
    const char *tenant;
    const chat_mod_rules_t *rules;
    int64_t scanned, matched, removed, flagged, total;
    char *error;
    size_t errlen;
} rescan_t;

/* The messages of the rescan after (room, seq) (room NULL: from the start): the tenant's (the
 * room's), in the time range, not deleted or removed already, not notices. */
static bson_t *rescan_filter(const char *tenant, const char *room, int64_t since, int64_t until,
                             const char *after_room, int64_t after_seq)
{
    bson_t *f = BCON_NEW("tenant", BCON_UTF8(tenant));
    if (room != NULL)
        BSON_APPEND_UTF8(f, "room", room);
    bson_t *rest = BCON_NEW("ts", "{", "$gte", BCON_INT64(since), "$lte", BCON_INT64(until), "}",
                            "deleted", "{", "$ne", BCON_BOOL(true), "}", "removed", "{", "$ne",
                            BCON_BOOL(true), "}", "notice", "{", "$exists", BCON_BOOL(false), "}");
    bson_concat(f, rest);
    bson_destroy(rest);
    if (after_room != NULL && room != NULL) {
        bson_t gt;
        BSON_APPEND_DOCUMENT_BEGIN(f, "seq", &gt);
        BSON_APPEND_INT64(&gt, "$gt", after_seq);
        bson_append_document_end(f, &gt);
    } else if (after_room != NULL) {
        api_filter_after_room_seq(f, after_room, after_seq);
    }
    return f;
}

/* The decisions and verdicts of one page, until recorded and produced: room for a whole page
 * (at most CHAT_MOD_HITS_MAX decisions and one verdict per message), allocated once a job. */
typedef struct page {
    struct {
        bson_t *doc; /* a copy of the message the decisions point into */
        char id[25];
    } held[RESCAN_BATCH];
    size_t nheld;
    chat_mod_decision_t decisions[RESCAN_BATCH * CHAT_MOD_HITS_MAX];
    size_t ndecisions;
    chat_event_t verdicts[RESCAN_BATCH];
    size_t nverdicts;
} page_t;

static void page_clear(page_t *p)
{
    for (size_t i = 0; i < p->nheld; i++)
        bson_destroy(p->held[i].doc);
    p->nheld = p->ndecisions = p->nverdicts = 0;
}

/* Checks one stored message against the rules and adds its decisions (and its removal) to p
 * (which has room for one more message). A mute rule's hit is recorded as a flag: a rescan does
 * not mute anyone for an old message. */
static chat_err_t check_message(rescan_t *s, page_t *p, const bson_t *msg, int64_t now)
{
    const char *text = chat_bson_str(msg, "text");
    int64_t seq;
    if (chat_bson_str(msg, "room") == NULL || chat_bson_str(msg, "from") == NULL || text == NULL ||
        !chat_bson_int64(msg, "seq", &seq) || p->nheld >= RESCAN_BATCH)
        return CHAT_OK; /* not a message with text: nothing to check */
    s->scanned++;
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX];
    size_t n = chat_mod_rules_check(s->rules, text, strlen(text), hits, CHAT_MOD_HITS_MAX);
    if (n == 0)
        return CHAT_OK;
    s->matched++;
    bson_t *copy = bson_copy(msg); /* the decisions' strings point into it */
    if (copy == NULL)
        return CHAT_ERR_NOMEM;
    char *id = p->held[p->nheld].id;
    if (!chat_bson_message_id(copy, id)) {
        bson_destroy(copy);
        s->matched--;
        return CHAT_OK;
    }
    p->held[p->nheld++].doc = copy;
    const char *room = chat_bson_str(copy, "room"), *from = chat_bson_str(copy, "from");
    text = chat_bson_str(copy, "text");
    int64_t ver = chat_bson_number_or(copy, "useq", 0);
    bool removed = false;
    for (size_t i = 0; i < n; i++) {
        chat_mod_action_t action = hits[i].action == CHAT_MOD_MUTE ? CHAT_MOD_FLAG : hits[i].action;
        p->decisions[p->ndecisions++] = (chat_mod_decision_t){.tenant = s->tenant,
                                                              .room = room,
                                                              .id = id,
                                                              .seq = seq,
                                                              .ver = ver,
                                                              .from = from,
                                                              .text = text,
                                                              .action = action,
                                                              .kind = hits[i].kind,
                                                              .rule = hits[i].rule,
                                                              .by = "rescan",
                                                              .ts = now};
        if (action == CHAT_MOD_FLAG)
            s->flagged++;
        if (action == CHAT_MOD_REMOVE && !removed) { /* one removal of the message is enough */
            removed = true;
            s->removed++;
            p->verdicts[p->nverdicts++] = (chat_event_t){.type = CHAT_EV_VERDICT,
                                                         .tenant = s->tenant,
                                                         .room = room,
                                                         .id = id,
                                                         .seq = seq,
                                                         .has_seq = true,
                                                         .action = "remove",
                                                         .reason = hits[i].rule,
                                                         .rule = hits[i].rule,
                                                         .ts = now,
                                                         .has_ts = true};
        }
    }
    return CHAT_OK;
}

/* Sets the job's counters and progress. CHAT_ERR_STOPPED if the job must stop. */
static chat_err_t rescan_progress(rescan_t *s)
{
    api_job_set_count(s->job, "scanned", s->scanned);
    api_job_set_count(s->job, "matched", s->matched);
    api_job_set_count(s->job, "removed", s->removed);
    api_job_set_count(s->job, "flagged", s->flagged);
    int64_t total = s->total > s->scanned ? s->total : s->scanned;
    return api_job_progress(s->job, s->scanned, total) ? CHAT_OK : CHAT_ERR_STOPPED;
}

/* Pages through the messages of the rescan (p: the page's room). */
static chat_err_t rescan_pages(rescan_t *s, page_t *p, const char *room, int64_t since,
                               int64_t until)
{
    mongoc_collection_t *col =
        chat_store_collection(s->ctx->store, api_job_client(s->job), "messages");
    bson_t *all = rescan_filter(s->tenant, room, since, until, NULL, 0);
    bson_error_t berr;
    s->total = mongoc_collection_count_documents(col, all, NULL, NULL, NULL, &berr);
    bson_destroy(all);
    chat_err_t err = CHAT_OK;
    if (s->total < 0) {
        s->total = 0;
        snprintf(s->error, s->errlen, "messages could not be counted: %s", berr.message);
        err = chat_store_err(&berr);
    }
    bson_t *opts = BCON_NEW("sort", "{", "room", BCON_INT32(1), "seq", BCON_INT32(1), "}", "limit",
                            BCON_INT64(RESCAN_BATCH));
    char last_room[CHAT_ROOM_MAX + 1] = "";
    int64_t last_seq = 0;
    bool positioned = false;
    while (err == CHAT_OK) {
        bson_t *filter =
            rescan_filter(s->tenant, room, since, until, positioned ? last_room : NULL, last_seq);
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
        const bson_t *doc;
        int64_t fetched = 0, now = chat_clock_wall_ms();
        while (err == CHAT_OK && mongoc_cursor_next(cursor, &doc)) {
            fetched++;
            const char *r = chat_bson_str(doc, "room");
            int64_t seq;
            if (r != NULL && chat_bson_int64(doc, "seq", &seq)) { /* the next page after it */
                snprintf(last_room, sizeof last_room, "%s", r);
                last_seq = seq;
                positioned = true;
            }
            err = check_message(s, p, doc, now);
            if (err == CHAT_ERR_NOMEM)
                snprintf(s->error, s->errlen, "out of memory");
        }
        if (err == CHAT_OK && mongoc_cursor_error(cursor, &berr)) {
            err = chat_store_err(&berr);
            snprintf(s->error, s->errlen, "messages could not be read: %s", berr.message);
        }
        mongoc_cursor_destroy(cursor);
        bson_destroy(filter);
        if (err == CHAT_OK && p->nverdicts > 0) {
            err = api_verdicts_produce(s->ctx, p->verdicts, p->nverdicts);
            if (err != CHAT_OK)
                snprintf(s->error, s->errlen, "removals could not be produced: %s",
                         chat_err_str(err));
        }
        if (err == CHAT_OK && p->ndecisions > 0) {
            err = chat_mod_record(s->ctx->store, NULL, p->decisions, p->ndecisions);
            if (err != CHAT_OK)
                snprintf(s->error, s->errlen, "decisions could not be recorded: %s",
                         chat_err_str(err));
        }
        page_clear(p);
        if (err == CHAT_OK)
            err = rescan_progress(s);
        if (fetched < RESCAN_BATCH)
            break;
    }
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    return err;
}

/* The tenant's current rule set, compiled: *rules NULL when it has none or an empty one. */
static chat_err_t rescan_rules(rescan_t *s, chat_mod_rules_t **rules)
{
    *rules = NULL;
    mongoc_collection_t *col =
        chat_store_collection(s->ctx->store, api_job_client(s->job), CHAT_MOD_RULES_COLLECTION);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(s->tenant));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, NULL, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    bson_iter_t it;
    if (mongoc_cursor_next(cursor, &doc) && bson_iter_init_find(&it, doc, "rules") &&
        BSON_ITER_HOLDS_DOCUMENT(&it)) {
        const uint8_t *data;
        uint32_t len;
        bson_iter_document(&it, &len, &data);
        bson_t sub;
        char *json =
            bson_init_static(&sub, data, len) ? bson_as_relaxed_extended_json(&sub, NULL) : NULL;
        cJSON *doc_json = json != NULL ? cJSON_Parse(json) : NULL;
        bson_free(json);
        char field[CHAT_MOD_FIELD_MAX] = "", why[CHAT_MOD_WHY_MAX] = "";
        *rules = doc_json != NULL ? chat_mod_rules_compile(doc_json, field, why, &err) : NULL;
        cJSON_Delete(doc_json);
        if (doc_json == NULL) {
            err = CHAT_ERR_NOMEM;
            snprintf(s->error, s->errlen, "out of memory");
        } else if (*rules == NULL) {
            char reason[CHAT_MOD_FIELD_MAX + CHAT_MOD_WHY_MAX + 16];
            api_mod_rules_error(field, why, reason, sizeof reason);
            snprintf(s->error, s->errlen, "the stored rules do not compile: %s", reason);
        }
    }
    bson_error_t berr;
    if (mongoc_cursor_error(cursor, &berr)) {
        err = chat_store_err(&berr);
        snprintf(s->error, s->errlen, "the rules could not be read: %s", berr.message);
        chat_mod_rules_free(*rules);
        *rules = NULL;
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    if (err == CHAT_OK && *rules != NULL && chat_mod_rules_empty(*rules)) {
        chat_mod_rules_free(*rules);
        *rules = NULL;
    }
    return err;
}

chat_err_t api_rescan_run(api_job_t *job, char *error, size_t errlen)
{
    rescan_t s = {.job = job,
                  .ctx = api_job_ctx(job),
                  .tenant = api_job_tenant(job),
                  .error = error,
                  .errlen = errlen};
    const bson_t *params = api_job_params(job);
    const char *room = chat_bson_str(params, "room");
    int64_t since = chat_bson_number_or(params, "since", 0);
    int64_t until = chat_bson_number_or(params, "until", 0);
    chat_mod_rules_t *rules = NULL;
    chat_err_t err = rescan_rules(&s, &rules);
    if (err != CHAT_OK)
        return err;
    if (rules == NULL) /* no rules: nothing can match, nothing is read */
        return rescan_progress(&s);
    s.rules = rules;
    page_t *p = calloc(1, sizeof *p);
    if (p == NULL) {
        chat_mod_rules_free(rules);
        snprintf(error, errlen, "out of memory");
        return CHAT_ERR_NOMEM;
    }
    err = rescan_pages(&s, p, room, since, until);
    free(p);
    chat_mod_rules_free(rules);
    return err;
}

/* ---- handlers ---- */

/* POST /v1/moderation/rescan {room?, since, until?} -> 202 {id, state: "queued"}. */
static void rescan_create(const api_req_t *req, api_resp_t *resp)
{
    static const char *const allowed[] = {"room", "since", "until", NULL};
    if (!api_body_fields(req, resp, allowed))
        return;
    api_rescan_params_t p;
    char error[160];
    if (!api_rescan_params_parse(req->body, chat_clock_wall_ms(), &p, error, sizeof error)) {
        api_error(req, resp, 400, "%s", error);
        return;
    }
    bson_t params = BSON_INITIALIZER;
    if (p.room != NULL)
        BSON_APPEND_UTF8(&params, "room", p.room);
    BSON_APPEND_INT64(&params, "since", p.since);
    BSON_APPEND_INT64(&params, "until", p.until);
    api_job_answer_created(req, resp, "rescan", &params, "/v1/moderation/rescan", "rescan");
    bson_destroy(&params);
}

/* GET /v1/moderation/rescan/{id} -> the rescan; 404 for an id of another tenant. */
static void rescan_read(const api_req_t *req, api_resp_t *resp)
{
    api_job_answer_read(req, resp, "rescan", api_rescan_json, "rescan");
}

chat_err_t api_rescan_register(api_ctx_t *ctx)
{
    chat_err_t err = api_route(ctx, API_POST, "/moderation/rescan", rescan_create);
    if (err == CHAT_OK)
        err = api_route(ctx, API_GET, "/moderation/rescan/{id}", rescan_read);
    return err;
}
