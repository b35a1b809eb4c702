/* MongoDB reads of the gateway (see store_reads.h). Queries use the (tenant, room, seq)
 * index the message service creates; every failure is logged with the driver's code. */
#include "services/gateway/store_reads.h"

#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/log.h"
#include "common/stored_msg.h"
#include "services/gateway/frames.h"

#define COLL_MESSAGES "messages"

static void log_failure(const char *what, const bson_error_t *error)
{
    chat_log_error("mongodb read failed", CHAT_F_STR("op", what), CHAT_F_INT("code", error->code),
                   CHAT_F_STR("reason", error->message));
}

/* Runs a find on `messages` and calls each() for every document; returns the cursor's
 * outcome. each returns false to stop. */
static chat_err_t messages_find(chat_store_t *st, mongoc_client_t *client, const char *what,
                                const bson_t *filter, const bson_t *opts,
                                bool (*each)(const bson_t *doc, void *ud), void *ud)
{
    mongoc_collection_t *coll = chat_store_collection(st, client, COLL_MESSAGES);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
    const bson_t *doc;
    while (mongoc_cursor_next(cur, &doc)) {
        if (!each(doc, ud))
            break;
    }
    bson_error_t error;
    chat_err_t rc = CHAT_OK;
    if (mongoc_cursor_error(cur, &error)) {
        log_failure(what, &error);
        rc = chat_store_err(&error);
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    return rc;
}

static bool latest_each(const bson_t *doc, void *ud)
{
    int64_t *latest = ud;
    chat_bson_number_or_date(doc, "seq", latest);
    return false;
}

chat_err_t gw_reads_latest(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                           const char *room, int64_t *latest)
{
    *latest = 0;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room));
    bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                            "projection", "{", "seq", BCON_INT32(1), "}");
    chat_err_t rc = messages_find(st, client, "latest", filter, opts, latest_each, latest);
    bson_destroy(opts);
    bson_destroy(filter);
    return rc;
}

static bool latest_useq_each(const bson_t *doc, void *ud)
{
    int64_t *latest = ud;
    chat_bson_number_or_date(doc, "useq", latest);
    return false;
}

chat_err_t gw_reads_latest_useq(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                                const char *room, int64_t *useq)
{
    *useq = 0;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "useq", "{",
                              "$gt", BCON_INT64(0), "}");
    bson_t *opts = BCON_NEW("sort", "{", "useq", BCON_INT32(-1), "}", "limit", BCON_INT64(1),
                            "projection", "{", "useq", BCON_INT32(1), "}");
    chat_err_t rc = messages_find(st, client, "latest useq", filter, opts, latest_useq_each, useq);
    bson_destroy(opts);
    bson_destroy(filter);
    return rc;
}

typedef struct updates_collect {
    gw_outq_entry_t *entries;
    size_t n, max;
    chat_err_t err;
} updates_collect_t;

static bool updates_each(const bson_t *doc, void *ud)
{
    updates_collect_t *c = ud;
    int64_t useq = 0;
    cJSON *frame = chat_stored_update_frame(doc);
    if (frame == NULL || !chat_bson_number_or_date(doc, "useq", &useq)) {
        cJSON_Delete(frame);
        chat_log_warn("changed message skipped: missing fields");
        return true;
    }
    gw_buf_t *b = gw_frame_from_json(frame);
    cJSON_Delete(frame);
    if (b == NULL) {
        c->err = CHAT_ERR_NOMEM;
        return false;
    }
    c->entries[c->n++] = (gw_outq_entry_t){.buf = b, .seq = useq};
    return c->n < c->max;
}

chat_err_t gw_reads_updates(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                            const char *room, int64_t since, int64_t usince, int64_t upto,
                            size_t max, gw_outq_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (max == 0 || upto <= usince)
        return CHAT_OK;
    updates_collect_t c = {.entries = calloc(max, sizeof *c.entries), .max = max};
    if (c.entries == NULL)
        return CHAT_ERR_NOMEM;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "seq", "{",
                              "$lte", BCON_INT64(since), "}", "useq", "{", "$gt",
                              BCON_INT64(usince), "$lte", BCON_INT64(upto), "}");
    bson_t *opts =
        BCON_NEW("sort", "{", "useq", BCON_INT32(1), "}", "limit", BCON_INT64((int64_t)max));
    chat_err_t rc = messages_find(st, client, "updates", filter, opts, updates_each, &c);
    bson_destroy(opts);
    bson_destroy(filter);
    if (rc == CHAT_OK)
        rc = c.err;
    if (rc != CHAT_OK) {
        for (size_t i = 0; i < c.n; i++)
            gw_buf_unref(c.entries[i].buf);
        free(c.entries);
        return rc;
    }
    *out = c.entries;
    *n = c.n;
    return CHAT_OK;
}

/* Newest-first documents collected as msg frames. */
typedef struct frames_collect {
    cJSON *frames; /* array, newest first */
    size_t n;
    size_t max;
} frames_collect_t;

static bool collect_each(const bson_t *doc, void *ud)
{
    frames_collect_t *c = ud;
    cJSON *frame = chat_stored_msg_frame(doc);
    if (frame == NULL) {
        chat_log_warn("stored message skipped: missing fields");
        return true;
    }
    cJSON_AddItemToArray(c->frames, frame);
    return ++c->n < c->max;
}

/* Finds up to max documents of tenant/room with seq in (above, below) (0: unbounded),
 * newest first. */
static chat_err_t frames_find(chat_store_t *st, mongoc_client_t *client, const char *what,
                              const char *tenant, const char *room, int64_t above, int64_t below,
                              size_t max, frames_collect_t *c)
{
    bson_t filter = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&filter, "tenant", tenant);
    BSON_APPEND_UTF8(&filter, "room", room);
    if (above > 0 || below > 0) {
        bson_t range;
        BSON_APPEND_DOCUMENT_BEGIN(&filter, "seq", &range);
        if (above > 0)
            BSON_APPEND_INT64(&range, "$gt", above);
        if (below > 0)
            BSON_APPEND_INT64(&range, "$lt", below);
        bson_append_document_end(&filter, &range);
    }
    bson_t *opts =
        BCON_NEW("sort", "{", "seq", BCON_INT32(-1), "}", "limit", BCON_INT64((int64_t)max));
    c->frames = cJSON_CreateArray();
    c->max = max;
    chat_err_t rc = c->frames != NULL
                        ? messages_find(st, client, what, &filter, opts, collect_each, c)
                        : CHAT_ERR_NOMEM;
    bson_destroy(opts);
    bson_destroy(&filter);
    return rc;
}

chat_err_t gw_reads_replay(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                           const char *room, int64_t since, size_t max, gw_outq_entry_t **out,
                           size_t *n)
{
    *out = NULL;
    *n = 0;
    if (max == 0)
        return CHAT_OK;
    frames_collect_t c = {0};
    chat_err_t rc = frames_find(st, client, "replay", tenant, room, since, 0, max, &c);
    if (rc == CHAT_OK)
        rc = gw_reads_replay_entries(c.frames, out, n);
    cJSON_Delete(c.frames);
    return rc;
}

chat_err_t gw_reads_replay_entries(const cJSON *frames, gw_outq_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t count = (size_t)cJSON_GetArraySize(frames);
    if (count == 0)
        return CHAT_OK;
    gw_outq_entry_t *entries = calloc(count, sizeof *entries);
    if (entries == NULL)
        return CHAT_ERR_NOMEM;
    /* One walk of the list, filling from the end: cJSON_GetArrayItem would walk it again
     * for every entry. */
    size_t done = 0;
    chat_err_t rc = CHAT_OK;
    const cJSON *frame;
    cJSON_ArrayForEach(frame, frames)
    {
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(frame, "seq");
        gw_buf_t *b = NULL;
        if (!cJSON_IsNumber(seq))
            rc = CHAT_ERR_INVALID;
        else if ((b = gw_frame_from_json(frame)) == NULL)
            rc = CHAT_ERR_NOMEM;
        if (rc != CHAT_OK)
            break;
        entries[count - 1 - done++] = (gw_outq_entry_t){.buf = b, .seq = (int64_t)seq->valuedouble};
    }
    if (rc != CHAT_OK) {
        for (size_t i = count - done; i < count; i++)
            gw_buf_unref(entries[i].buf);
        free(entries);
        return rc;
    }
    *out = entries;
    *n = count;
    return CHAT_OK;
}

chat_err_t gw_reads_page(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                         const char *room, int64_t before, int64_t limit, cJSON **msgs, bool *more)
{
    *msgs = NULL;
    *more = false;
    frames_collect_t c = {0};
    /* One extra document tells whether older messages exist. */
    chat_err_t rc =
        frames_find(st, client, "history", tenant, room, 0, before, (size_t)limit + 1, &c);
    if (rc != CHAT_OK) {
        cJSON_Delete(c.frames);
        return rc;
    }
    if (c.n > (size_t)limit) {
        *more = true;
        cJSON_DeleteItemFromArray(c.frames, (int)limit);
    }
    cJSON *asc = cJSON_CreateArray();
    cJSON *item;
    while (asc != NULL && (item = cJSON_DetachItemFromArray(c.frames, 0)) != NULL) {
        /* newest first in c.frames: prepend each to get ascending order */
        if (asc->child == NULL)
            cJSON_AddItemToArray(asc, item);
        else
            cJSON_InsertItemInArray(asc, 0, item);
    }
    cJSON_Delete(c.frames);
    if (asc == NULL)
        return CHAT_ERR_NOMEM;
    *msgs = asc;
    return CHAT_OK;
}
