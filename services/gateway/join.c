/* Joining a room and resuming after a reconnect (see join.h): the join job, run twice on
 * workers (the access check and the registration on the room's shard, then the reads on any
 * worker: the room's recent history in Redis, MongoDB when that cannot answer exactly), and its
 * answer on the loop, which hands `joined` and the replay to the session. Access (room_access.h)
 * is checked before the registration, so that a refused user never shows in the room, and a
 * private room's membership once more after it: a member removed after that check hears it as
 * a notice in the room's stream, one removed before is not a member in MongoDB. */
#include "services/gateway/join.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/redis.h"
#include "services/gateway/presence.h"
#include "services/gateway/recent.h"
#include "services/gateway/registrations.h"
#include "services/gateway/registry.h"
#include "services/gateway/request.h"
#include "services/gateway/room_access.h"
#include "services/gateway/room_list.h"
#include "services/gateway/store_reads.h"
#include "common/unread.h"

typedef struct join_job {
    gw_request_t base;
    char *user;
    int64_t since;
    bool has_since;
    int64_t usince;
    bool has_usince;
    uint32_t gen;
    gw_room_kind_t kind; /* known by the loop, then as checked */
    bool dm;
    bool refused;
    gw_access_t verdict; /* refused: why */
    int64_t started_us;
    bool registered; /* step (1) done; the task was forwarded for step (2) */
    /* A catch-up after a lapse (gw_join_catch_up): the updates are read for the messages up
     * to this seq (the highest any subscription holds) instead of since; 0: since. */
    int64_t updates_seq;
    bool catch_up; /* no session waits: the result goes to the room's subscriptions */
    /* result */
    chat_err_t err;
    int64_t latest;
    int64_t useq;
    bool stale;
    int64_t unread;
    int64_t read;
    char **online;
    size_t nonline;
    gw_outq_entry_t *replay;
    size_t nreplay;
    gw_outq_entry_t *updates;
    size_t nupdates;
} join_job_t;

static void join_destroy(gw_task_t *t)
{
    join_job_t *j = (join_job_t *)t;
    for (size_t i = 0; i < j->nreplay; i++)
        gw_buf_unref(j->replay[i].buf);
    free(j->replay);
    for (size_t i = 0; i < j->nupdates; i++)
        gw_buf_unref(j->updates[i].buf);
    free(j->updates);
    gw_registry_users_free(j->online, j->nonline);
    free(j->user);
    gw_request_clear(&j->base);
    free(j);
}

/* unread: latest minus since if the client gave since, else 0 (never negative); replaced by
 * the exact count of join_read_unread once the reads are done. */
static int64_t unread_count(int64_t latest, bool has_since, int64_t since)
{
    return has_since && latest > since ? latest - since : 0;
}

/* Step (2) of a join, after the registration: the MongoDB reads. With since, the replay
 * (the newest messages above since) comes first: its newest seq is the room's latest, so
 * the latest-seq query (a second read of `messages`, a full scan on FerretDB) is needed
 * only when nothing was missed. A message stored between an empty replay and that query
 * would become `joined.seq` without being replayed (and its live copy, held for the pending
 * subscription, would be dropped as not newer than it): then the replay is read again. */
static chat_err_t join_read_store(join_job_t *j)
{
    gw_gateway_t *gw = j->base.gw;
    chat_store_t *st = gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    chat_err_t err = CHAT_OK;
    if (j->has_since)
        err = gw_reads_replay(st, client, j->base.tenant, j->base.room, j->since,
                              (size_t)gw->cfg->replay_max, &j->replay, &j->nreplay);
    if (err == CHAT_OK && j->nreplay == 0)
        err = gw_reads_latest(st, client, j->base.tenant, j->base.room, &j->latest);
    if (err == CHAT_OK && j->has_since && j->nreplay == 0 && j->latest > j->since)
        err = gw_reads_replay(st, client, j->base.tenant, j->base.room, j->since,
                              (size_t)gw->cfg->replay_max, &j->replay, &j->nreplay);
    if (err == CHAT_OK && j->nreplay > 0)
        j->latest = j->replay[j->nreplay - 1].seq;
    chat_store_release(st, client);
    j->unread = unread_count(j->latest, j->has_since, j->since);
    return err;
}

/* Step (2) from MongoDB for a room whose recent history could not answer, filling it with
 * what was read (fill: Redis works and keeps recent history). One read whatever since is: the
 * newest replay_max messages, whose newest is the room's latest and whose part above since is
 * the replay the query with since would have returned (the newest up to replay_max above it).
 * The fill's WATCH comes before the read, so that a message stored after the read makes the
 * fill give way (docs/message-path.md). */
static chat_err_t join_read_store_fill(join_job_t *j, chat_redis_t *redis, bool fill)
{
    gw_gateway_t *gw = j->base.gw;
    chat_store_t *st = gw->store;
    gw_recent_fill_t f;
    bool filling = fill && gw_recent_fill_begin(redis, j->base.tenant, j->base.room, &f);
    gw_outq_entry_t *newest = NULL;
    size_t n = 0;
    mongoc_client_t *client = chat_store_acquire(st);
    chat_err_t err = gw_reads_replay(st, client, j->base.tenant, j->base.room, 0,
                                     (size_t)gw->cfg->replay_max, &newest, &n);
    chat_store_release(st, client);
    if (filling && err == CHAT_OK) {
        gw_recent_fill_result_t fr =
            gw_recent_fill_end(redis, &f, newest, n, gw->cfg->recent_max, gw->cfg->recent_ttl_ms);
        chat_counter_inc(gw->stats.recent_fills[fr]);
    } else if (filling) {
        gw_recent_fill_cancel(redis, &f);
    }
    if (err != CHAT_OK)
        return err;
    j->latest = n > 0 ? newest[n - 1].seq : 0;
    size_t skip = 0; /* what the client holds already (all of it without since) */
    while (skip < n && (!j->has_since || newest[skip].seq <= j->since))
        gw_buf_unref(newest[skip++].buf);
    if (skip == n) {
        free(newest);
    } else {
        memmove(newest, newest + skip, (n - skip) * sizeof *newest);
        j->replay = newest;
        j->nreplay = n - skip;
    }
    j->unread = unread_count(j->latest, j->has_since, j->since);
    return CHAT_OK;
}

static chat_err_t join_read_messages(join_job_t *j, chat_redis_t *redis, bool store_only);

/* The room's latest useq from MongoDB, and, when Redis works (watched: WATCH was answered),
 * the room's useq key filled with it: the WATCH comes before the read, so a change stored
 * after the read (whose key write follows) makes the fill give way, as the recent history's
 * fills do. */
static chat_err_t join_useq_store(join_job_t *j, chat_redis_t *redis, const char *key, bool watched)
{
    gw_gateway_t *gw = j->base.gw;
    const char *run_id = NULL;
    char fill_run_id[64] = "";
    if (watched && chat_redis_run_id(redis, &run_id) == CHAT_OK && run_id[0] != '\0')
        snprintf(fill_run_id, sizeof fill_run_id, "%s", run_id);
    mongoc_client_t *client = chat_store_acquire(gw->store);
    chat_err_t err =
        gw_reads_latest_useq(gw->store, client, j->base.tenant, j->base.room, &j->useq);
    chat_store_release(gw->store, client);
    redisReply *reply = NULL;
    if (watched && err == CHAT_OK && fill_run_id[0] != '\0') {
        char value[CHAT_USEQ_VALUE_MAX];
        size_t queued = 0;
        bool ok = chat_useq_value(fill_run_id, j->useq, value, sizeof value) >= 0 &&
                  chat_redis_append(redis, "MULTI") == CHAT_OK;
        queued += ok;
        ok = ok && chat_redis_append(redis, "SET %s %s PX %lld", key, value,
                                     (long long)gw->cfg->recent_ttl_ms) == CHAT_OK;
        queued += ok;
        ok = ok && chat_redis_append(redis, "EXEC") == CHAT_OK;
        queued += ok;
        /* Out of memory mid-way: close the transaction, or it swallows what follows. */
        if (!ok && queued > 0 && chat_redis_append(redis, "DISCARD") == CHAT_OK)
            queued++;
        /* Every queued reply is read, so the connection stays in step. */
        for (size_t i = 0; i < queued; i++) {
            if (chat_redis_reply(redis, &reply) != CHAT_OK)
                ok = false;
            if (reply != NULL)
                freeReplyObject(reply);
            reply = NULL;
        }
        watched = !ok; /* EXEC or DISCARD ended the WATCH */
    }
    if (watched && (reply = chat_redis_command(redis, NULL, "UNWATCH")) != NULL)
        freeReplyObject(reply);
    return err;
}

/* Step (2a): the room's latest useq (joined.useq, and what the subscription's update filter
 * starts from), read before the messages are: every change up to it is in what is read next
 * (MongoDB is written first, then the recent history, then the useq key). From the room's
 * useq key when its run_id is the answering server's (*from_store false); else from MongoDB
 * (*from_store true: the messages must then be read from MongoDB too, whose changes are all
 * in before the useq they carry; the recent history may lag behind it). */
static chat_err_t join_read_useq(join_job_t *j, chat_redis_t *redis, bool *from_store)
{
    gw_gateway_t *gw = j->base.gw;
    char key[CHAT_RECENT_KEY_MAX];
    *from_store = true;
    if (gw->cfg->recent_max == 0 ||
        chat_useq_key(j->base.tenant, j->base.room, key, sizeof key) < 0)
        return join_useq_store(j, redis, key, false);
    chat_err_t err;
    redisReply *reply = chat_redis_command(redis, &err, "GET %s", key);
    const char *run_id = NULL;
    bool trusted = false, answered = reply != NULL;
    if (reply != NULL && reply->type == REDIS_REPLY_STRING &&
        chat_redis_run_id(redis, &run_id) == CHAT_OK)
        trusted = chat_useq_value_parse(reply->str, reply->len, run_id, &j->useq);
    if (reply != NULL)
        freeReplyObject(reply);
    if (trusted) {
        *from_store = false;
        return CHAT_OK;
    }
    bool watched = false;
    if (answered) {
        redisReply *w = chat_redis_command(redis, NULL, "WATCH %s", key);
        watched = w != NULL;
        if (w != NULL)
            freeReplyObject(w);
    }
    return join_useq_store(j, redis, key, watched);
}

/* Step (2c), with since and usince: the update frames of the messages up to since whose last
 * change came after usince and up to the room's latest useq read before (later ones arrive
 * live), at most replay_max; more set joined.stale. */
static chat_err_t join_read_updates(join_job_t *j)
{
    gw_gateway_t *gw = j->base.gw;
    int64_t upto_seq = j->updates_seq > 0 ? j->updates_seq : j->since;
    if (!j->has_since || !j->has_usince || j->useq <= j->usince || upto_seq == 0)
        return CHAT_OK;
    size_t max = (size_t)gw->cfg->replay_max;
    mongoc_client_t *client = chat_store_acquire(gw->store);
    chat_err_t err = gw_reads_updates(gw->store, client, j->base.tenant, j->base.room, upto_seq,
                                      j->usince, j->useq, max + 1, &j->updates, &j->nupdates);
    chat_store_release(gw->store, client);
    if (err == CHAT_OK && j->nupdates > max) {
        j->stale = true;
        for (size_t i = max; i < j->nupdates; i++)
            gw_buf_unref(j->updates[i].buf);
        j->nupdates = max;
    }
    return err;
}

/* Step (2): the room's latest useq first (join_read_useq), then the messages: the room's recent
 * history in Redis answers when it holds the answer exactly (one round trip); MongoDB otherwise
 * (join_read_store_fill), or always when the gateway keeps no recent history or replays
 * nothing, or when the useq came from MongoDB (then the messages are read from MongoDB and
 * fill the recent history); then the updates of a resume with usince. */
static chat_err_t join_read(join_job_t *j, chat_redis_t *redis)
{
    bool useq_from_store = true;
    chat_err_t err = join_read_useq(j, redis, &useq_from_store);
    if (err == CHAT_OK)
        err = join_read_messages(j, redis, useq_from_store);
    if (err == CHAT_OK)
        err = join_read_updates(j);
    return err;
}

/* The messages of step (2). */
static chat_err_t join_read_messages(join_job_t *j, chat_redis_t *redis, bool store_only)
{
    gw_gateway_t *gw = j->base.gw;
    if (gw->cfg->recent_max == 0)
        return join_read_store(j);
    chat_recent_result_t res =
        gw_recent_join(redis, j->base.tenant, j->base.room, j->has_since, j->since,
                       (size_t)gw->cfg->replay_max, &j->latest, &j->replay, &j->nreplay);
    if (res == CHAT_RECENT_HIT && store_only) {
        /* The set itself is fine, but with a useq from MongoDB its frames may lag a change
         * the useq counts: the whole snapshot cannot be trusted. */
        for (size_t i = 0; i < j->nreplay; i++)
            gw_buf_unref(j->replay[i].buf);
        free(j->replay);
        j->replay = NULL;
        j->nreplay = 0;
        res = CHAT_RECENT_UNTRUSTED;
    }
    chat_counter_inc(gw->stats.recent_reads[GW_RECENT_OP_JOIN][res]);
    if (res == CHAT_RECENT_HIT) {
        j->unread = unread_count(j->latest, j->has_since, j->since);
        return CHAT_OK;
    }
    if (gw->cfg->replay_max == 0)
        return join_read_store(j);
    return join_read_store_fill(j, redis, res != CHAT_RECENT_ERROR);
}

/* After the reads: the user's read mark and the exact unread count above it (unread.h). With
 * no stored mark, the join's since stands in for it (what the client holds), else 0. If
 * MongoDB cannot tell (down), the join still succeeds, as one answered from the recent
 * history would without read marks: read 0 and unread counted from since (logged). */
static void join_read_unread(join_job_t *j, chat_redis_t *redis)
{
    gw_gateway_t *gw = j->base.gw;
    int64_t since_unread = j->unread;
    chat_store_t *st = gw->store;
    mongoc_client_t *client = chat_store_acquire(st);
    chat_err_t err =
        chat_unread_read_mark(st, client, j->base.tenant, j->base.room, j->user, &j->read);
    int64_t mark = j->read > 0 || !j->has_since ? j->read : j->since;
    chat_recent_result_t source = CHAT_RECENT_HIT;
    if (err == CHAT_OK)
        err = chat_unread_count(gw->cfg->recent_max > 0 ? redis : NULL, gw->cfg->recent_max, st,
                                client, j->base.tenant, j->base.room, j->user, mark, j->latest,
                                &j->unread, &source);
    chat_store_release(st, client);
    if (err == CHAT_OK && j->latest > mark)
        chat_counter_inc(gw->stats.unread_counts[source == CHAT_RECENT_HIT]);
    if (err != CHAT_OK) {
        chat_log_warn("read mark or unread count unavailable: joined without them",
                      CHAT_F_STR("tenant", j->base.tenant), CHAT_F_STR("room", j->base.room),
                      CHAT_F_ERR(err));
        j->read = 0;
        j->unread = since_unread;
    }
}

/* Checks the user's access to the room (known: the kind already known, or
 * GW_ROOM_KIND_UNKNOWN); true if granted. On false, j->err (a failed read) or j->refused with
 * j->verdict says why. */
static bool join_access(join_job_t *j, gw_room_kind_t known)
{
    gw_gateway_t *gw = j->base.gw;
    j->err = gw_access_check(gw->store, j->base.tenant, j->base.room, j->user, known, &j->kind,
                             &j->verdict);
    j->refused = j->err == CHAT_OK && j->verdict != GW_ACCESS_OK;
    return j->err == CHAT_OK && !j->refused;
}

/* Runs twice: first on the room's shard of the registration workers, (1) the registration,
 * in order with the room's other registration changes; then, forwarded to any reader, (2) the
 * reads, so that many joins of one room do not queue behind each other's reads, and no
 * heartbeat queues behind a read (gateway.h). */
static void join_run(gw_task_t *t, void *wctx)
{
    join_job_t *j = (join_job_t *)t;
    chat_redis_t *redis = wctx;
    gw_gateway_t *gw = j->base.gw;
    if (gw_workers_stopping(gw->workers)) {
        j->err = CHAT_ERR_STOPPED;
        return;
    }
    if (!j->registered) {
        /* (a) Before the registration, so that a refused user never shows in the room (no
         * presence); free for a room known to be public. */
        if (!j->dm && !join_access(j, j->kind))
            return; /* the loop ends the subscription; nothing was registered */
        gw_registry_presence_t pres = gw_presence_listener(gw);
        j->err =
            gw_registry_join(redis, gw->id, chat_clock_wall_ms(), gw_registrations_ttl_ms(gw),
                             j->base.tenant, j->base.room, j->user, &j->online, &j->nonline, &pres);
        if (j->err != CHAT_OK) {
            chat_counter_inc(gw->stats.registry_errors);
            chat_log_warn("join registration failed", CHAT_F_STR("tenant", j->base.tenant),
                          CHAT_F_STR("room", j->base.room), CHAT_F_ERR(j->err));
            return;
        }
        j->registered = true;
        /* (b) A private room's membership again, now that the room's stream reaches this
         * gateway: a removal after this check arrives as a notice, one before it is in
         * MongoDB. */
        if (!j->dm && j->kind == GW_ROOM_KIND_PRIVATE && !join_access(j, GW_ROOM_KIND_PRIVATE))
            return; /* the loop ends the subscription, which releases the registration */
        gw_room_list_note_join(gw, redis, j->base.tenant, j->base.room, j->user);
        gw_task_forward(t, gw->readers, -1);
        return;
    }
    j->err = join_read(j, redis);
    if (j->err == CHAT_OK && !j->catch_up)
        join_read_unread(j, redis);
    if (j->err != CHAT_OK)
        chat_log_warn("join reads failed", CHAT_F_STR("tenant", j->base.tenant),
                      CHAT_F_STR("room", j->base.room), CHAT_F_ERR(j->err));
}

static void join_complete(gw_task_t *t, void *loop_ctx)
{
    join_job_t *j = (join_job_t *)t;
    gw_gateway_t *gw = loop_ctx;
    gw_session_t *s = gw_request_session(&j->base);
    if (s == NULL)
        return;
    if (j->err == CHAT_OK)
        chat_histogram_observe(gw->stats.join_seconds, chat_clock_seconds_since(j->started_us));
    gw_join_result_t res = {
        .room = j->base.room,
        .rid = j->base.rid,
        .gen = j->gen,
        .err = j->err,
        .refused = j->refused,
        .kind = j->dm ? GW_ROOM_KIND_UNKNOWN : j->kind,
        .latest = j->latest,
        .useq = j->useq,
        .stale = j->stale,
        .unread = j->unread,
        .read = j->read,
        .online = (const char *const *)j->online,
        .nonline = j->nonline,
        .replay = j->replay,
        .nreplay = j->nreplay,
        .updates = j->updates,
        .nupdates = j->nupdates,
    };
    if (j->refused)
        gw_access_refusal(j->verdict, &res.refuse_code, &res.refuse_message);
    /* The session takes the replay's and the updates' references. */
    j->nreplay = 0;
    j->nupdates = 0;
    gw_session_join_done(s, &res);
}

chat_err_t gw_join_submit(gw_gateway_t *gw, const gw_join_req_t *req)
{
    join_job_t *j = gw_request_new(sizeof *j, gw, req->conn, join_run, join_complete, join_destroy);
    if (j == NULL)
        return CHAT_ERR_NOMEM;
    bool copied = gw_request_copy_room(&j->base, req->tenant, req->room, req->rid);
    j->user = strdup(req->user);
    j->since = req->since;
    j->has_since = req->has_since;
    j->usince = req->usince;
    j->has_usince = req->has_usince;
    j->gen = req->gen;
    j->kind = req->kind;
    j->dm = req->dm;
    j->started_us = chat_clock_mono_us();
    if (!copied || j->user == NULL) {
        /* Answered on the loop's next drain, like any failed join. */
        j->err = CHAT_ERR_NOMEM;
        j->base.task.run = NULL;
        gw_inbox_push(gw->inbox, &j->base.task);
        return CHAT_OK;
    }
    gw_workers_submit(gw->workers, &j->base.task, gw_workers_room_shard(req->tenant, req->room));
    return CHAT_OK;
}

/* ---- catching up after a lapse ---- */

/* On the loop: the catch-up's messages, then its updates, go to the room's subscriptions
 * through their seq and useq filters (each gets what it lacks; live frames that came first
 * stay first, and a gap they left is the client's to fill from history, as always). */
static void catch_up_complete(gw_task_t *t, void *loop_ctx)
{
    join_job_t *j = (join_job_t *)t;
    gw_gateway_t *gw = loop_ctx;
    if (j->err != CHAT_OK) {
        chat_log_warn("catch-up after a lapsed registration failed: the room's members here "
                      "see the gap at its next message",
                      CHAT_F_STR("tenant", j->base.tenant), CHAT_F_STR("room", j->base.room),
                      CHAT_F_ERR(j->err));
        return;
    }
    size_t sent = 0;
    for (size_t i = 0; i < j->nreplay; i++)
        sent += gw_rooms_deliver(gw->rooms, j->base.tenant, j->base.room, j->replay[i].buf,
                                 j->replay[i].seq);
    for (size_t i = 0; i < j->nupdates; i++)
        sent += gw_rooms_deliver(gw->rooms, j->base.tenant, j->base.room, j->updates[i].buf,
                                 -j->updates[i].seq);
    chat_counter_add(gw->stats.lapse_frames, sent);
    chat_log_info("caught up a room after a lapsed registration",
                  CHAT_F_STR("tenant", j->base.tenant), CHAT_F_STR("room", j->base.room),
                  CHAT_F_INT("since", j->since), CHAT_F_INT("messages", j->nreplay),
                  CHAT_F_INT("updates", j->nupdates), CHAT_F_INT("frames_sent", sent));
}

void gw_join_catch_up(gw_gateway_t *gw, const char *tenant, const char *room)
{
    int64_t since = 0, upto = 0, usince = 0;
    if (!gw_rooms_marks(gw->rooms, tenant, room, &since, &upto, &usince))
        return; /* nobody here holds the room any more */
    join_job_t *j = gw_request_new(sizeof *j, gw, "", join_run, catch_up_complete, join_destroy);
    if (j == NULL)
        return;
    if (!gw_request_copy_room(&j->base, tenant, room, NULL)) {
        join_destroy(&j->base.task);
        return;
    }
    /* No user: step (2) reads the room, not a member's read mark (catch_up). */
    j->registered = true; /* the heartbeat has registered the gateway again: step (2) only */
    j->catch_up = true;
    j->has_since = true;
    j->since = since;
    j->updates_seq = upto;
    j->has_usince = true;
    j->usince = usince;
    gw_workers_submit(gw->readers, &j->base.task, -1);
}
