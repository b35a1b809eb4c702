/* Snapshots of a room's recent history (see recent_read.h). */
#include "common/recent_read.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"

#define NUM_MAX 24

const char *chat_recent_result_name(chat_recent_result_t r)
{
    static const char *const names[] = {
        [CHAT_RECENT_HIT] = "hit",
        [CHAT_RECENT_MISS] = "miss",
        [CHAT_RECENT_UNTRUSTED] = "untrusted",
        [CHAT_RECENT_GAP] = "gap",
        [CHAT_RECENT_ERROR] = "error",
    };
    return r >= 0 && r < CHAT_RECENT__COUNT ? names[r] : "unknown";
}

/* Whether v exists and may be trusted; the result to give up with otherwise. */
static bool view_trusted(const chat_recent_view_t *v, chat_recent_result_t *why)
{
    if (!v->exists) {
        *why = CHAT_RECENT_MISS;
        return false;
    }
    if (v->marker == NULL || v->run_id == NULL || v->run_id[0] == '\0' ||
        strcmp(v->marker, v->run_id) != 0) {
        *why = CHAT_RECENT_UNTRUSTED;
        return false;
    }
    return true;
}

/* ---- snapshots ---- */

typedef struct snapshot {
    redisReply *exec; /* owns the strings the view points to */
    chat_recent_entry_t *entries;
    char run_id[48];
    char key[CHAT_RECENT_KEY_MAX]; /* for the logs */
    chat_recent_view_t view;
} snapshot_t;

static void snapshot_free(snapshot_t *s)
{
    if (s->exec != NULL)
        freeReplyObject(s->exec);
    free(s->entries);
    memset(s, 0, sizeof *s);
}

/* A score as Redis prints it, if it is an integer >= 0. */
static bool parse_score(const redisReply *r, int64_t *out)
{
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= NUM_MAX)
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(r->str, &end, 10);
    if (errno != 0 || end != r->str + r->len || v < 0)
        return false;
    *out = v;
    return true;
}

/* Fills s->view from the EXEC reply of snapshot_read. false if its shape is not what the
 * commands answer, or a score is not a seq (a set written by something else). */
static bool snapshot_parse(snapshot_t *s, bool with_range)
{
    const redisReply *x = s->exec;
    size_t want = with_range ? 3 : 2;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != want)
        return false;
    for (size_t i = 0; i < want; i++)
        if (x->element[i]->type != REDIS_REPLY_ARRAY)
            return false;
    const redisReply *markers = x->element[0], *top = x->element[1];
    chat_recent_view_t *v = &s->view;
    v->exists = markers->elements > 0 || top->elements > 0;
    if (markers->elements == 1 && markers->element[0]->type == REDIS_REPLY_STRING)
        v->marker = markers->element[0]->str;
    if (top->elements == 2 && !parse_score(top->element[1], &v->top))
        return false;
    if (!with_range)
        return true;
    const redisReply *range = x->element[2];
    if (range->elements % 2 != 0)
        return false;
    size_t n = range->elements / 2;
    s->entries = calloc(n > 0 ? n : 1, sizeof *s->entries);
    if (s->entries == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        const redisReply *member = range->element[2 * i];
        if (member->type != REDIS_REPLY_STRING ||
            !parse_score(range->element[2 * i + 1], &s->entries[i].seq))
            return false;
        s->entries[i].frame = member->str;
        s->entries[i].len = member->len;
    }
    v->entries = s->entries;
    v->n = n;
    return true;
}

/* Queues the transaction that reads tenant/room's marker, top and, if limit > 0, the newest
 * up to limit members with seq in (lo, hi) (hi 0: no bound). *queued gets how many replies
 * to read (snapshot_collect), even on failure: CHAT_ERR_INVALID for names that make no key,
 * CHAT_ERR_REDIS or CHAT_ERR_NOMEM. run_id is the server's (chat_redis_run_id). */
static chat_err_t snapshot_queue(chat_redis_t *r, const char *run_id, const char *tenant,
                                 const char *room, int64_t lo, int64_t hi, size_t limit,
                                 snapshot_t *s, size_t *queued)
{
    memset(s, 0, sizeof *s);
    *queued = 0;
    char *key = s->key, min[NUM_MAX], max[NUM_MAX], count[NUM_MAX];
    if (chat_recent_key(tenant, room, key, sizeof s->key) < 0)
        return CHAT_ERR_INVALID;
    snprintf(s->run_id, sizeof s->run_id, "%s", run_id);
    s->view.run_id = s->run_id;
    snprintf(min, sizeof min, "(%" PRId64, lo);
    if (hi > 0)
        snprintf(max, sizeof max, "(%" PRId64, hi);
    else
        snprintf(max, sizeof max, "+inf");
    snprintf(count, sizeof count, "%zu", limit);
    chat_err_t err = chat_redis_append(r, "MULTI");
    *queued += err == CHAT_OK;
    if (err == CHAT_OK &&
        (err = chat_redis_append(r, "ZRANGEBYSCORE %s %d %d", key, CHAT_RECENT_MARKER_SCORE,
                                 CHAT_RECENT_MARKER_SCORE)) == CHAT_OK)
        (*queued)++;
    if (err == CHAT_OK &&
        (err = chat_redis_append(r, "ZREVRANGE %s 0 0 WITHSCORES", key)) == CHAT_OK)
        (*queued)++;
    if (err == CHAT_OK && limit > 0 &&
        (err = chat_redis_append(r, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT 0 %s", key, max,
                                 min, count)) == CHAT_OK)
        (*queued)++;
    if (err == CHAT_OK && (err = chat_redis_append(r, "EXEC")) == CHAT_OK)
        (*queued)++;
    else if (*queued > 0 && chat_redis_append(r, "DISCARD") == CHAT_OK)
        (*queued)++; /* out of memory mid-way: close the transaction, or it swallows what follows */
    return err;
}

/* Reads the queued replies of one snapshot_queue (every one, whatever happened, so the
 * connection stays in step) and parses the snapshot. err is the queue's outcome. Returns
 * CHAT_OK, or the error (CHAT_ERR_REDIS, logged, if Redis failed or answered out of shape);
 * the snapshot is freed then. */
static chat_err_t snapshot_collect(chat_redis_t *r, size_t queued, bool with_range, chat_err_t err,
                                   snapshot_t *s)
{
    for (size_t i = 0; i < queued; i++) {
        redisReply *reply = NULL;
        chat_err_t rerr = chat_redis_reply(r, &reply);
        if (rerr != CHAT_OK && err == CHAT_OK)
            err = rerr;
        if (i + 1 == queued && err == CHAT_OK)
            s->exec = reply;
        else if (reply != NULL)
            freeReplyObject(reply);
    }
    if (err == CHAT_OK && (s->exec == NULL || !snapshot_parse(s, with_range))) {
        chat_log_error("recent history read answered out of shape", CHAT_F_STR("key", s->key));
        err = CHAT_ERR_REDIS;
    }
    if (err != CHAT_OK)
        snapshot_free(s);
    return err;
}

/* One snapshot (snapshot_queue, snapshot_collect) in one round trip. */
static chat_err_t snapshot_read(chat_redis_t *r, const char *tenant, const char *room, int64_t lo,
                                int64_t hi, size_t limit, snapshot_t *s)
{
    memset(s, 0, sizeof *s);
    const char *run_id = NULL;
    chat_err_t err = chat_redis_run_id(r, &run_id);
    if (err != CHAT_OK)
        return err;
    size_t queued = 0;
    err = snapshot_queue(r, run_id, tenant, room, lo, hi, limit, s, &queued);
    return snapshot_collect(r, queued, limit > 0, err, s);
}

/* ---- snapshots for other readers ---- */

struct chat_recent_snapshot {
    snapshot_t s;
};

chat_err_t chat_recent_snapshot_read(chat_redis_t *r, const char *tenant, const char *room,
                                     int64_t lo, int64_t hi, size_t limit,
                                     chat_recent_snapshot_t **out)
{
    *out = NULL;
    chat_recent_snapshot_t *snap = calloc(1, sizeof *snap);
    if (snap == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = snapshot_read(r, tenant, room, lo, hi, limit, &snap->s);
    if (err != CHAT_OK) {
        free(snap);
        return err;
    }
    *out = snap;
    return CHAT_OK;
}

chat_err_t chat_recent_snapshots_read(chat_redis_t *r, const char *tenant,
                                      const chat_recent_range_t *ranges, size_t n,
                                      chat_recent_snapshot_t **out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    const char *run_id = NULL;
    chat_err_t err = chat_redis_run_id(r, &run_id);
    size_t *queued = err == CHAT_OK ? calloc(n > 0 ? n : 1, sizeof *queued) : NULL;
    chat_err_t *qerr = queued != NULL ? calloc(n > 0 ? n : 1, sizeof *qerr) : NULL;
    if (err == CHAT_OK && (queued == NULL || qerr == NULL))
        err = CHAT_ERR_NOMEM;
    size_t k = 0; /* snapshots queued, in full or in part */
    for (; err == CHAT_OK && k < n; k++) {
        out[k] = calloc(1, sizeof *out[k]);
        if (out[k] == NULL) {
            err = CHAT_ERR_NOMEM;
            break;
        }
        const chat_recent_range_t *g = &ranges[k];
        qerr[k] = snapshot_queue(r, run_id, tenant, g->room, g->lo, g->hi, g->limit, &out[k]->s,
                                 &queued[k]);
        if (qerr[k] == CHAT_ERR_REDIS || qerr[k] == CHAT_ERR_NOMEM) {
            err = qerr[k];
            k++;
            break;
        }
    }
    /* Every queued reply is read, in order; a snapshot that failed is NULL. */
    for (size_t i = 0; i < k; i++) {
        chat_err_t rerr = snapshot_collect(r, queued[i], ranges[i].limit > 0, qerr[i], &out[i]->s);
        if (rerr != CHAT_OK) {
            free(out[i]);
            out[i] = NULL;
            if (rerr == CHAT_ERR_REDIS && err == CHAT_OK)
                err = rerr;
        }
    }
    for (size_t i = k; i < n; i++) {
        free(out[i]);
        out[i] = NULL;
    }
    free(queued);
    free(qerr);
    return err;
}

const chat_recent_view_t *chat_recent_snapshot_view(const chat_recent_snapshot_t *s)
{
    return &s->s.view;
}

void chat_recent_snapshot_free(chat_recent_snapshot_t *s)
{
    if (s == NULL)
        return;
    snapshot_free(&s->s);
    free(s);
}

chat_recent_result_t chat_recent_view_trust(const chat_recent_view_t *v)
{
    chat_recent_result_t why = CHAT_RECENT_HIT;
    return view_trusted(v, &why) ? CHAT_RECENT_HIT : why;
}
