/* GET/PUT /v1/moderation/rules: the tenant's rule set, validated by the rule engine's compile
 * (common/modrules.h), stored in MongoDB `rules` with a growing revision and then announced in
 * Redis, where every moderation instance looks for changes each second. GET
 * /v1/moderation/flags and POST /v1/moderation/flags/{id}: the review queue (`moderation_flags`,
 * written by common/mod_record.c); a removal goes to chat.moderation as a verdict, like the
 * moderation service's own. */
#include "services/api/moderation.h"

#include <inttypes.h>
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
#include "services/api/api.h"

#define RULES_WRITE_TRIES 5 /* optimistic writes of the rule set before giving up (503) */
#define FLAGS_CURSOR_MAX 64 /* "<ts>.<24 hex digits>" */
#define MOD_BY_MAX (10 + 4 * API_MOD_MODERATOR_MAX_CHARS + 1)

/* ---- pure pieces ---- */

int64_t api_mod_rules_rev_next(int64_t now_ms, int64_t prev)
{
    return now_ms > prev ? now_ms : prev + 1;
}

void api_mod_rules_error(const char *field, const char *why, char *buf, size_t len)
{
    if (field == NULL || field[0] == '\0')
        snprintf(buf, len, "the rule set: %s", why != NULL && why[0] ? why : "not valid");
    else
        snprintf(buf, len, "%s: %s", field, why != NULL && why[0] ? why : "not valid");
}

bool api_mod_review_parse(const cJSON *body, api_mod_review_t *out, char *error, size_t errlen)
{
    *out = (api_mod_review_t){0};
    const cJSON *action = body != NULL ? cJSON_GetObjectItemCaseSensitive(body, "action") : NULL;
    const cJSON *mod = body != NULL ? cJSON_GetObjectItemCaseSensitive(body, "moderator") : NULL;
    if (action == NULL || cJSON_IsNull(action)) {
        snprintf(error, errlen, "missing field: action");
        return false;
    }
    if (!cJSON_IsString(action) || (strcmp(action->valuestring, "remove") != 0 &&
                                    strcmp(action->valuestring, "dismiss") != 0)) {
        snprintf(error, errlen, "action must be \"remove\" or \"dismiss\"");
        return false;
    }
    out->remove = strcmp(action->valuestring, "remove") == 0;
    if (mod != NULL && !cJSON_IsNull(mod)) {
        long chars = cJSON_IsString(mod)
                         ? chat_utf8_chars_printable(mod->valuestring, strlen(mod->valuestring))
                         : -1;
        if (chars < 1 || chars > API_MOD_MODERATOR_MAX_CHARS) {
            snprintf(error, errlen, "moderator must be 1-%d characters without control characters",
                     API_MOD_MODERATOR_MAX_CHARS);
            return false;
        }
        out->moderator = mod->valuestring;
    }
    return true;
}

void api_mod_review_by(const api_mod_review_t *r, char *buf, size_t len)
{
    if (r->moderator != NULL)
        snprintf(buf, len, "moderator:%s", r->moderator);
    else
        snprintf(buf, len, "moderator");
}

const char *api_mod_review_state(const api_mod_review_t *r)
{
    return r->remove ? "removed" : "dismissed";
}

const char *api_mod_flags_state(const char *param, bool *valid)
{
    static const char *const states[] = {"pending", "removed", "dismissed"};
    *valid = true;
    if (param == NULL)
        return states[0];
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strcmp(param, states[i]) == 0)
            return states[i];
    *valid = false;
    return NULL;
}

void api_mod_flags_pos_format(int64_t ts, const char *id, char *buf, size_t len)
{
    snprintf(buf, len, "%" PRId64 ".%s", ts, id);
}

bool api_mod_flags_pos_parse(const char *raw, int64_t *ts, char id[25])
{
    const char *dot = strchr(raw, '.');
    /* what format writes: no leading zero, at most INT64_MAX (19 digits can exceed it) */
    if (dot == NULL || dot == raw || dot - raw > 19 || (raw[0] == '0' && dot - raw > 1) ||
        !chat_name_message_id_valid(dot + 1))
        return false;
    int64_t v = 0;
    for (const char *p = raw; p < dot; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - (*p - '0')) / 10)
            return false;
        v = v * 10 + (*p - '0');
    }
    *ts = v;
    memcpy(id, dot + 1, 25);
    return true;
}

cJSON *api_mod_flag_json(const bson_t *doc)
{
    const char *id = chat_bson_str(doc, "_id"), *room = chat_bson_str(doc, "room");
    const char *msg = chat_bson_str(doc, "msg"), *from = chat_bson_str(doc, "from");
    const char *text = chat_bson_str(doc, "text"), *rule = chat_bson_str(doc, "rule");
    const char *kind = chat_bson_str(doc, "kind"), *state = chat_bson_str(doc, "state");
    const char *by = chat_bson_str(doc, "reviewed_by");
    int64_t seq, ts, at;
    if (id == NULL || room == NULL || msg == NULL || from == NULL || rule == NULL || kind == NULL ||
        state == NULL || !chat_bson_int64(doc, "seq", &seq) || !chat_bson_int64(doc, "ts", &ts))
        return NULL;
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o != NULL && cJSON_AddStringToObject(o, "id", id) != NULL &&
        cJSON_AddStringToObject(o, "room", room) != NULL &&
        cJSON_AddStringToObject(o, "message", msg) != NULL && chat_json_add_int(o, "seq", seq) &&
        cJSON_AddStringToObject(o, "from", from) != NULL &&
        cJSON_AddStringToObject(o, "text", text != NULL ? text : "") != NULL &&
        cJSON_AddStringToObject(o, "rule", rule) != NULL &&
        cJSON_AddStringToObject(o, "kind", kind) != NULL &&
        cJSON_AddStringToObject(o, "state", state) != NULL && chat_json_add_int(o, "ts", ts) &&
        (by == NULL || cJSON_AddStringToObject(o, "reviewed_by", by) != NULL) &&
        (!chat_bson_int64(doc, "reviewed_at", &at) || chat_json_add_int(o, "reviewed_at", at));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

bool api_mod_kind_parse(const char *name, chat_mod_kind_t *out)
{
    for (int k = CHAT_MOD_KIND_BLOCKLIST; k <= CHAT_MOD_KIND_RATE; k++) {
        if (name != NULL && strcmp(chat_mod_kind_name((chat_mod_kind_t)k), name) == 0) {
            *out = (chat_mod_kind_t)k;
            return true;
        }
    }
    return false;
}

/* ---- the rule set ---- */

/* The stored rule set of tenant: *rules (a new object; NULL when the tenant has none) and its
 * revision (*rev, 0 when none). */
static chat_err_t rules_read(api_ctx_t *ctx, const char *tenant, cJSON **rules, int64_t *rev)
{
    *rules = NULL;
    *rev = 0;
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, CHAT_MOD_RULES_COLLECTION);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_next(cursor, &doc)) {
        *rev = chat_bson_number_or(doc, "rev", 0);
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "rules") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            const uint8_t *data;
            uint32_t len;
            bson_iter_document(&it, &len, &data);
            bson_t sub;
            char *json = NULL;
            if (bson_init_static(&sub, data, len))
                json = bson_as_relaxed_extended_json(&sub, NULL);
            *rules = json != NULL ? cJSON_Parse(json) : NULL;
            bson_free(json);
            if (*rules == NULL)
                err = CHAT_ERR_NOMEM;
        }
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("rules not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(opts);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    return err;
}

/* Writes rules (BSON) as tenant's rule set with a revision above the stored one (*rev gets it).
 * Optimistic: the write only replaces the revision it read, so of two PUTs at once each gets
 * its own revision and the later revision holds the later document. CHAT_ERR_DUPLICATE when the
 * revision kept moving (RULES_WRITE_TRIES times), a MongoDB code otherwise. */
static chat_err_t rules_write(api_ctx_t *ctx, const char *tenant, const bson_t *rules, int64_t *rev)
{
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, CHAT_MOD_RULES_COLLECTION);
    chat_err_t err = CHAT_ERR_DUPLICATE;
    for (int attempt = 0; attempt < RULES_WRITE_TRIES && err == CHAT_ERR_DUPLICATE; attempt++) {
        bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
        bson_t *opts =
            BCON_NEW("limit", BCON_INT64(1), "projection", "{", "rev", BCON_INT32(1), "}");
        mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
        const bson_t *found;
        bool exists = mongoc_cursor_next(cursor, &found);
        int64_t prev = exists ? chat_bson_number_or(found, "rev", 0) : 0;
        bson_error_t error;
        bool read_failed = mongoc_cursor_error(cursor, &error);
        mongoc_cursor_destroy(cursor);
        bson_destroy(opts);
        if (read_failed) {
            err = chat_store_err(&error);
            chat_log_warn("rules not read", CHAT_F_STR("tenant", tenant),
                          CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
            bson_destroy(filter);
            break;
        }
        int64_t now = chat_clock_wall_ms();
        *rev = api_mod_rules_rev_next(now, prev);
        bson_t *doc = BCON_NEW("_id", BCON_UTF8(tenant), "rules", BCON_DOCUMENT(rules), "rev",
                               BCON_INT64(*rev), "updated", BCON_INT64(now));
        bool written;
        bson_t reply;
        if (!exists) {
            written = mongoc_collection_insert_one(col, doc, NULL, &reply, &error);
        } else {
            BSON_APPEND_INT64(filter, "rev", prev);
            written = mongoc_collection_replace_one(col, filter, doc, NULL, &reply, &error);
        }
        if (written)
            err = !exists || chat_bson_number_or(&reply, "matchedCount", 0) > 0
                      ? CHAT_OK
                      : CHAT_ERR_DUPLICATE; /* the revision moved: read it again */
        else
            err = chat_store_err(&error);
        /* CHAT_ERR_DUPLICATE from the insert: another PUT stored the first rule set meanwhile */
        if (!written && err != CHAT_ERR_DUPLICATE)
            chat_log_warn("rules not written", CHAT_F_STR("tenant", tenant),
                          CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
        bson_destroy(&reply);
        bson_destroy(doc);
        bson_destroy(filter);
    }
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    return err;
}

/* GET /v1/moderation/rules -> the tenant's rule set, {} if it has none. */
static void rules_get(const api_req_t *req, api_resp_t *resp)
{
    cJSON *rules = NULL;
    int64_t rev;
    chat_err_t err = rules_read(req->ctx, req->tenant, &rules, &rev);
    if (err != CHAT_OK) {
        cJSON_Delete(rules);
        api_error_from(req, resp, err, "reading the rules");
        return;
    }
    api_json(resp, 200, rules); /* NULL answers {} */
}

/* The 400 of a rule set compile refused: the message names the field, which `field` repeats. */
static void rules_refused(const api_req_t *req, api_resp_t *resp, const char *field,
                          const char *why)
{
    char message[CHAT_MOD_FIELD_MAX + CHAT_MOD_WHY_MAX + 16];
    api_mod_rules_error(field, why, message, sizeof message);
    api_error(req, resp, 400, "%s", message);
    cJSON *err = cJSON_GetObjectItemCaseSensitive(resp->body, "error");
    if (err != NULL)
        cJSON_AddStringToObject(err, "field", field != NULL ? field : "");
}

/* PUT /v1/moderation/rules (the whole rule set) -> 200 with it, once stored and announced. */
static void rules_put(const api_req_t *req, api_resp_t *resp)
{
    if (req->body == NULL) {
        api_error(req, resp, 400, "the body must be the rule set (a JSON object)");
        return;
    }
    char field[CHAT_MOD_FIELD_MAX] = "", why[CHAT_MOD_WHY_MAX] = "";
    chat_err_t err = CHAT_OK;
    chat_mod_rules_t *compiled = chat_mod_rules_compile(req->body, field, why, &err);
    chat_mod_rules_free(compiled);
    if (compiled == NULL && err == CHAT_ERR_INVALID) {
        rules_refused(req, resp, field, why);
        return;
    }
    if (compiled == NULL) {
        api_error_from(req, resp, err != CHAT_OK ? err : CHAT_ERR_NOMEM, "compiling the rules");
        return;
    }
    char *json = cJSON_PrintUnformatted(req->body);
    if (json == NULL) {
        api_error_from(req, resp, CHAT_ERR_NOMEM, "storing the rules");
        return;
    }
    bson_error_t berr;
    bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &berr);
    cJSON_free(json);
    if (doc == NULL) {
        api_error(req, resp, 400, "the rule set cannot be stored: %s", berr.message);
        return;
    }
    if (doc->len > API_MOD_RULES_MAX_BSON) {
        bson_destroy(doc);
        api_error(req, resp, 413, "the rule set is larger than can be stored (%d bytes as BSON)",
                  API_MOD_RULES_MAX_BSON);
        return;
    }
    int64_t rev = 0;
    err = rules_write(req->ctx, req->tenant, doc, &rev);
    bson_destroy(doc);
    if (err == CHAT_ERR_DUPLICATE) {
        api_error(req, resp, 503, "the rules kept changing while they were written (retry)");
        return;
    }
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "storing the rules");
        return;
    }
    err = api_announce(req->ctx, req->tenant, chat_mod_rules_rev_set, rev);
    if (err != CHAT_OK) {
        chat_log_warn("rules stored but not announced", CHAT_F_STR("tenant", req->tenant),
                      CHAT_F_INT("rev", rev), CHAT_F_ERR(err));
        api_error(req, resp, 503,
                  "the rules are stored but not yet announced to moderation (Redis: %s); "
                  "repeat the PUT",
                  chat_err_str(err));
        return;
    }
    api_json(resp, 200, cJSON_Duplicate(req->body, true));
}

/* ---- the review queue ---- */

/* GET /v1/moderation/flags?state=&limit=&cursor= -> {flags: [...], next}, newest first. */
static void flags_list(const api_req_t *req, api_resp_t *resp)
{
    bool valid;
    const char *state = api_mod_flags_state(api_req_query(req, "state"), &valid);
    if (!valid) {
        api_error(req, resp, 400, "state must be pending, removed or dismissed");
        return;
    }
    int limit;
    char raw[FLAGS_CURSOR_MAX + 1];
    if (!api_page_params(req, resp, &limit, raw, sizeof raw))
        return;
    int64_t after_ts = 0;
    char after_id[25] = "";
    if (raw[0] != '\0' && !api_mod_flags_pos_parse(raw, &after_ts, after_id)) {
        api_error(req, resp, 400, "malformed cursor");
        return;
    }
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(req->tenant), "state", BCON_UTF8(state));
    if (raw[0] != '\0') {
        bson_t *older =
            BCON_NEW("$or", "[", "{", "ts", "{", "$lt", BCON_INT64(after_ts), "}", "}", "{", "ts",
                     BCON_INT64(after_ts), "_id", "{", "$lt", BCON_UTF8(after_id), "}", "}", "]");
        bson_concat(filter, older);
        bson_destroy(older);
    }
    bson_t *opts = BCON_NEW("sort", "{", "ts", BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "limit",
                            BCON_INT64(limit + 1));
    mongoc_client_t *client = chat_store_acquire(req->ctx->store);
    mongoc_collection_t *col =
        chat_store_collection(req->ctx->store, client, CHAT_MOD_FLAGS_COLLECTION);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    cJSON *body = cJSON_CreateObject();
    cJSON *flags = body != NULL ? cJSON_AddArrayToObject(body, "flags") : NULL;
    const bson_t *doc;
    int n = 0;
    char last[FLAGS_CURSOR_MAX + 1] = "";
    bool more = false;
    while (flags != NULL && mongoc_cursor_next(cursor, &doc)) {
        if (n == limit) {
            more = true;
            break;
        }
        cJSON *f = api_mod_flag_json(doc);
        if (f == NULL) {
            chat_log_warn("flag skipped: missing fields", CHAT_F_STR("tenant", req->tenant));
            continue;
        }
        cJSON_AddItemToArray(flags, f);
        n++;
        int64_t ts = 0;
        chat_bson_int64(doc, "ts", &ts);
        api_mod_flags_pos_format(ts, chat_bson_str(doc, "_id"), last, sizeof last);
    }
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cursor, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("flags not read", CHAT_F_STR("tenant", req->tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cursor);
    mongoc_collection_destroy(col);
    chat_store_release(req->ctx->store, client);
    bson_destroy(opts);
    bson_destroy(filter);
    if (err != CHAT_OK || flags == NULL) {
        cJSON_Delete(body);
        api_error_from(req, resp, err != CHAT_OK ? err : CHAT_ERR_NOMEM, "reading the flags");
        return;
    }
    char *next = more && last[0] != '\0' ? api_cursor_encode(last) : NULL;
    if (next != NULL)
        cJSON_AddStringToObject(body, "next", next);
    else
        cJSON_AddNullToObject(body, "next");
    free(next);
    api_json(resp, 200, body);
}

/* The flag id of tenant: *doc (caller destroys) or CHAT_ERR_NOT_FOUND. */
static chat_err_t flag_find(api_ctx_t *ctx, const char *tenant, const char *id, bson_t **doc)
{
    *doc = NULL;
    if (!chat_name_message_id_valid(id)) /* 24 lowercase hex digits, as a flag id */
        return CHAT_ERR_NOT_FOUND;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant));
    chat_err_t err = chat_store_find_one(ctx->store, CHAT_MOD_FLAGS_COLLECTION, filter, doc);
    bson_destroy(filter);
    return err;
}

/* Sets the pending flag id to state, reviewed by by at now. *changed false when it was not
 * pending any more (another review came first). */
static chat_err_t flag_review_write(api_ctx_t *ctx, const char *tenant, const char *id,
                                    const char *state, const char *by, int64_t now, bool *changed)
{
    *changed = false;
    bson_t *filter =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant), "state", BCON_UTF8("pending"));
    bson_t *update = BCON_NEW("$set", "{", "state", BCON_UTF8(state), "reviewed_by", BCON_UTF8(by),
                              "reviewed_at", BCON_INT64(now), "}");
    mongoc_client_t *client = chat_store_acquire(ctx->store);
    mongoc_collection_t *col = chat_store_collection(ctx->store, client, CHAT_MOD_FLAGS_COLLECTION);
    bson_t reply;
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_update_one(col, filter, update, NULL, &reply, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("flag review not written", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("flag", id), CHAT_F_INT("code", error.code),
                      CHAT_F_STR("error", error.message));
    } else {
        *changed = chat_bson_number_or(&reply, "matchedCount", 0) > 0;
    }
    bson_destroy(&reply);
    mongoc_collection_destroy(col);
    chat_store_release(ctx->store, client);
    bson_destroy(update);
    bson_destroy(filter);
    return err;
}

/* A moderator's removal of the flagged message: the verdict to chat.moderation (the message
 * service removes the message), then the decision in the audit log (by, at now). Both are
 * idempotent. *what says which step failed. */
static chat_err_t flag_remove(api_ctx_t *ctx, const char *tenant, const bson_t *flag,
                              const char *by, int64_t now, const char **what)
{
    const char *room = chat_bson_str(flag, "room"), *msg = chat_bson_str(flag, "msg");
    const char *rule = chat_bson_str(flag, "rule"), *kind_name = chat_bson_str(flag, "kind");
    int64_t seq = 0;
    chat_bson_int64(flag, "seq", &seq);
    chat_mod_kind_t kind = CHAT_MOD_KIND_BLOCKLIST;
    api_mod_kind_parse(kind_name, &kind);
    chat_event_t verdict = {.type = CHAT_EV_VERDICT,
                            .tenant = tenant,
                            .room = room,
                            .id = msg,
                            .seq = seq,
                            .has_seq = true,
                            .action = "remove",
                            .reason = API_MOD_REMOVE_REASON,
                            .rule = rule,
                            .ts = now,
                            .has_ts = true};
    *what = "producing the removal";
    chat_err_t err = api_verdicts_produce(ctx, &verdict, 1);
    if (err != CHAT_OK)
        return err;
    chat_mod_decision_t d = {.tenant = tenant,
                             .room = room,
                             .id = msg,
                             .seq = seq,
                             .ver = chat_bson_number_or(flag, "ver", 0),
                             .from = chat_bson_str(flag, "from"),
                             .text = chat_bson_str(flag, "text"),
                             .action = CHAT_MOD_REMOVE,
                             .kind = kind,
                             .rule = rule,
                             .by = by,
                             .ts = now};
    *what = "recording the removal";
    return chat_mod_record(ctx->store, NULL, &d, 1);
}

/* POST /v1/moderation/flags/{id} {action, moderator?} -> 200 the flag as reviewed; the same
 * review again answers the same; a flag reviewed the other way is 409. */
static void flag_review(const api_req_t *req, api_resp_t *resp)
{
    static const char *const allowed[] = {"action", "moderator", NULL};
    if (!api_body_fields(req, resp, allowed))
        return;
    api_mod_review_t review;
    char error[128];
    if (!api_mod_review_parse(req->body, &review, error, sizeof error)) {
        api_error(req, resp, 400, "%s", error);
        return;
    }
    const char *id = req->params[0];
    bson_t *flag = NULL;
    chat_err_t err = flag_find(req->ctx, req->tenant, id, &flag);
    if (err == CHAT_ERR_NOT_FOUND) {
        api_error(req, resp, 404, "flag not found");
        return;
    }
    if (err != CHAT_OK) {
        api_error_from(req, resp, err, "reading the flag");
        return;
    }
    /* The state changes first (only from pending: of two reviews at once one wins, the other
     * answers by its result); a removal's verdict and log entry follow, and follow again on a
     * repeated removal, with the first reviewer's `by` and time: both are idempotent, so a
     * removal that failed half-way (503) is completed by repeating it. */
    const char *target = api_mod_review_state(&review);
    const char *state = chat_bson_str(flag, "state");
    if (state != NULL && strcmp(state, "pending") == 0) {
        char by[MOD_BY_MAX];
        api_mod_review_by(&review, by, sizeof by);
        bool changed = false;
        err = flag_review_write(req->ctx, req->tenant, id, target, by, chat_clock_wall_ms(),
                                &changed);
        bson_destroy(flag);
        flag = NULL;
        if (err == CHAT_OK)
            err = flag_find(req->ctx, req->tenant, id, &flag); /* as reviewed, by us or another */
        if (err != CHAT_OK) {
            api_error_from(req, resp, err, "reviewing the flag");
            return;
        }
        state = chat_bson_str(flag, "state");
    }
    if (state == NULL || strcmp(state, target) != 0) {
        api_error(req, resp, 409, "the flag was reviewed already: %s",
                  state != NULL ? state : "unknown state");
        bson_destroy(flag);
        return;
    }
    if (review.remove) {
        const char *by = chat_bson_str(flag, "reviewed_by"), *what = "removing the message";
        err = flag_remove(req->ctx, req->tenant, flag, by != NULL ? by : "moderator",
                          chat_bson_number_or(flag, "reviewed_at", chat_clock_wall_ms()), &what);
        if (err != CHAT_OK) {
            bson_destroy(flag);
            api_error_from(req, resp, err, what);
            return;
        }
    }
    cJSON *o = api_mod_flag_json(flag);
    bson_destroy(flag);
    if (o == NULL) {
        api_error_from(req, resp, CHAT_ERR_NOMEM, "answering the flag");
        return;
    }
    api_json(resp, 200, o);
}

chat_err_t api_moderation_register(api_ctx_t *ctx)
{
    /* The review queue is read per tenant and state, newest first; the audit log per tenant
     * and message (what happened to this message). */
    static const chat_store_index_t indexes[] = {
        {CHAT_MOD_FLAGS_COLLECTION, "tenant_state_ts", false, {"tenant", "state", "ts", NULL}},
        {CHAT_MOD_LOG_COLLECTION, "tenant_msg", false, {"tenant", "msg", NULL}},
    };
    chat_err_t err =
        chat_store_ensure_indexes(ctx->store, indexes, sizeof indexes / sizeof indexes[0]);
    if (err != CHAT_OK)
        return err;
    if ((err = api_route(ctx, API_GET, "/moderation/rules", rules_get)) != CHAT_OK ||
        (err = api_route_body(ctx, API_PUT, "/moderation/rules", rules_put,
                              API_MOD_RULES_MAX_BODY)) != CHAT_OK ||
        (err = api_route(ctx, API_GET, "/moderation/flags", flags_list)) != CHAT_OK ||
        (err = api_route(ctx, API_POST, "/moderation/flags/{id}", flag_review)) != CHAT_OK)
        return err;
    return CHAT_OK;
}
