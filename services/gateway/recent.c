/* The gateway's side of the recent history (see recent.h): the decisions on a snapshot of a
 * room's set (common/recent_read.h) and the WATCHed fill of a room from MongoDB's answer. */
#include "services/gateway/recent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

const char *gw_recent_fill_result_name(gw_recent_fill_result_t r)
{
    static const char *const names[] = {
        [GW_RECENT_FILL_WRITTEN] = "written",
        [GW_RECENT_FILL_RACED] = "raced",
        [GW_RECENT_FILL_FAILED] = "failed",
    };
    return r >= 0 && r < GW_RECENT_FILL__COUNT ? names[r] : "unknown";
}

/* ---- decisions ---- */

/* Whether v's first count entries are first, first - 1, ... without a hole. */
static bool view_runs_down(const chat_recent_view_t *v, int64_t first, size_t count)
{
    if (v->n < count)
        return false;
    for (size_t i = 0; i < count; i++)
        if (v->entries[i].seq != first - (int64_t)i)
            return false;
    return true;
}

chat_recent_result_t gw_recent_decide_join(const chat_recent_view_t *v, bool has_since,
                                           int64_t since, size_t replay_max, int64_t *latest,
                                           size_t *count)
{
    chat_recent_result_t why = chat_recent_view_trust(v);
    if (why != CHAT_RECENT_HIT)
        return why;
    size_t need = 0;
    if (has_since && v->top > since) {
        uint64_t missed = (uint64_t)(v->top - (since > 0 ? since : 0));
        need = missed < replay_max ? (size_t)missed : replay_max;
    }
    if (!view_runs_down(v, v->top, need))
        return CHAT_RECENT_GAP;
    *latest = v->top;
    *count = need;
    return CHAT_RECENT_HIT;
}

chat_recent_result_t gw_recent_decide_page(const chat_recent_view_t *v, int64_t before,
                                           int64_t limit, size_t *count, bool *more)
{
    chat_recent_result_t why = chat_recent_view_trust(v);
    if (why != CHAT_RECENT_HIT)
        return why;
    if (limit < 1)
        return CHAT_RECENT_GAP;
    int64_t first = before > 0 && before - 1 < v->top ? before - 1 : v->top;
    if (first < 1) { /* nothing below before, or an empty room */
        *count = 0;
        *more = false;
        return CHAT_RECENT_HIT;
    }
    /* limit + 1 messages without a hole: a full page and the proof of an older one; fewer,
     * down to seq 1: the last page. */
    size_t full = (size_t)limit + 1;
    if (view_runs_down(v, first, full)) {
        *count = (size_t)limit;
        *more = true;
        return CHAT_RECENT_HIT;
    }
    if (first <= limit && view_runs_down(v, first, (size_t)first)) {
        *count = (size_t)first;
        *more = false;
        return CHAT_RECENT_HIT;
    }
    return CHAT_RECENT_GAP;
}

chat_recent_result_t gw_recent_join(chat_redis_t *r, const char *tenant, const char *room,
                                    bool has_since, int64_t since, size_t replay_max,
                                    int64_t *latest, gw_outq_entry_t **replay, size_t *nreplay)
{
    *replay = NULL;
    *nreplay = 0;
    chat_recent_snapshot_t *s = NULL;
    if (chat_recent_snapshot_read(r, tenant, room, has_since && since > 0 ? since : 0, 0,
                                  has_since ? replay_max : 0, &s) != CHAT_OK)
        return CHAT_RECENT_ERROR;
    const chat_recent_view_t *view = chat_recent_snapshot_view(s);
    size_t count = 0;
    int64_t top = 0;
    chat_recent_result_t res =
        gw_recent_decide_join(view, has_since, since, replay_max, &top, &count);
    gw_outq_entry_t *out = NULL;
    if (res == CHAT_RECENT_HIT && count > 0) {
        out = calloc(count, sizeof *out);
        for (size_t i = 0; out != NULL && i < count; i++) {
            const chat_recent_entry_t *e = &view->entries[count - 1 - i];
            out[i] = (gw_outq_entry_t){.buf = gw_buf_new(e->frame, e->len), .seq = e->seq};
            if (out[i].buf == NULL) {
                for (size_t k = 0; k < i; k++)
                    gw_buf_unref(out[k].buf);
                free(out);
                out = NULL;
            }
        }
        if (out == NULL)
            res = CHAT_RECENT_ERROR; /* out of memory: MongoDB will not do better, but tries */
    }
    if (res == CHAT_RECENT_HIT) {
        *latest = top;
        *replay = out;
        *nreplay = count;
    }
    chat_recent_snapshot_free(s);
    return res;
}

chat_recent_result_t gw_recent_page(chat_redis_t *r, const char *tenant, const char *room,
                                    int64_t before, int64_t limit, cJSON **msgs, bool *more)
{
    *msgs = NULL;
    *more = false;
    chat_recent_snapshot_t *s = NULL;
    if (limit < 1 ||
        chat_recent_snapshot_read(r, tenant, room, 0, before, (size_t)limit + 1, &s) != CHAT_OK)
        return CHAT_RECENT_ERROR;
    const chat_recent_view_t *view = chat_recent_snapshot_view(s);
    size_t count = 0;
    bool older = false;
    chat_recent_result_t res = gw_recent_decide_page(view, before, limit, &count, &older);
    if (res == CHAT_RECENT_HIT) {
        /* Raw items: the history frame prints the cached bytes as they are. */
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = count; arr != NULL && i-- > 0;) {
            cJSON *item = cJSON_CreateRaw(view->entries[i].frame);
            if (item == NULL || !cJSON_AddItemToArray(arr, item)) {
                cJSON_Delete(item);
                cJSON_Delete(arr);
                arr = NULL;
            }
        }
        if (arr == NULL) {
            res = CHAT_RECENT_ERROR;
        } else {
            *msgs = arr;
            *more = older;
        }
    }
    chat_recent_snapshot_free(s);
    return res;
}

/* ---- fills ---- */

bool gw_recent_fill_begin(chat_redis_t *r, const char *tenant, const char *room,
                          gw_recent_fill_t *f)
{
    memset(f, 0, sizeof *f);
    if (chat_recent_key(tenant, room, f->key, sizeof f->key) < 0)
        return false;
    chat_err_t err;
    redisReply *reply = chat_redis_command(r, &err, "WATCH %s", f->key);
    if (reply == NULL)
        return false;
    freeReplyObject(reply);
    f->watching = true;
    const char *run_id = NULL;
    /* No command since the WATCH: this is the server that WATCHes. */
    if (chat_redis_run_id(r, &run_id) != CHAT_OK || run_id[0] == '\0') {
        gw_recent_fill_cancel(r, f);
        return false;
    }
    snprintf(f->run_id, sizeof f->run_id, "%s", run_id);
    return true;
}

void gw_recent_fill_cancel(chat_redis_t *r, gw_recent_fill_t *f)
{
    if (!f->watching)
        return;
    f->watching = false;
    chat_err_t err;
    redisReply *reply = chat_redis_command(r, &err, "UNWATCH");
    if (reply != NULL)
        freeReplyObject(reply);
}

gw_recent_fill_result_t gw_recent_fill_end(chat_redis_t *r, gw_recent_fill_t *f,
                                           const gw_outq_entry_t *entries, size_t n, int64_t max,
                                           int64_t ttl_ms)
{
    if (!f->watching)
        return GW_RECENT_FILL_FAILED;
    chat_recent_entry_t *e = calloc(n > 0 ? n : 1, sizeof *e);
    if (e == NULL) {
        gw_recent_fill_cancel(r, f);
        return GW_RECENT_FILL_FAILED;
    }
    for (size_t i = 0; i < n; i++)
        e[i] = (chat_recent_entry_t){.seq = entries[i].seq,
                                     .frame = (const char *)gw_buf_payload(entries[i].buf),
                                     .len = entries[i].buf->len};
    size_t replies = 0;
    bool applied = false;
    chat_err_t err = chat_recent_queue_merge(r, f->key, f->run_id, e, n, max, ttl_ms, &replies);
    if (replies > 0) {
        chat_err_t rerr = chat_recent_merge_result(r, replies, &applied);
        err = err != CHAT_OK ? err : rerr;
    }
    free(e);
    if (replies > 0)
        f->watching = false; /* EXEC and DISCARD both end the WATCH */
    gw_recent_fill_cancel(r, f);
    if (err != CHAT_OK) {
        chat_log_warn("recent history not filled", CHAT_F_STR("key", f->key), CHAT_F_ERR(err));
        return GW_RECENT_FILL_FAILED;
    }
    return applied ? GW_RECENT_FILL_WRITTEN : GW_RECENT_FILL_RACED;
}
