/* Per-connection protocol state machine (see session.h): AWAIT_AUTH -> AUTHENTICATING ->
 * READY, with a close request that can arrive in any state. Requests that need I/O leave
 * through the ops table; their answers come back through the *_done functions. */
#include "services/gateway/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/hash.h"
#include "common/names.h"
#include "common/token_bucket.h"
#include "common/room_list_page.h"

#define SESSION_ID_MAX 64
#define SESSION_RID_MAX (CHAT_CID_MAX + 1)
#define RX_KEEP_BYTES 16384 /* a larger assembly buffer is freed after its message */
#define DEFERRED_MAX 8      /* messages accepted while the auth lookup runs */

/* A complete message that arrived while authenticating (only if the socket kept
 * delivering although reading was paused). */
typedef struct deferred_msg {
    char *data;
    size_t len;
    bool binary;
} deferred_msg_t;

struct gw_session {
    const gw_session_env_t *env;
    char id[SESSION_ID_MAX];
    void *io;
    gw_session_state_t state;
    chat_jwt_claims_t claims;
    char auth_rid[SESSION_RID_MAX];
    /* A refresh frame's token is being verified (gw_session_refresh_done answers refresh_rid). */
    bool refreshing;
    char refresh_rid[SESSION_RID_MAX];

    chat_token_bucket_t bucket;
    /* Rate-limited frames the client may still send before 4008; refills slowly, so a
     * short burst past the rate is forgiven and a client that keeps on is closed even if
     * some of its frames get through. */
    chat_token_bucket_t strikes;

    /* message assembly */
    char *rx;
    size_t rx_len, rx_cap;
    /* The client frame being dispatched, as received (an action that needs a lookup keeps a
     * copy); NULL outside dispatch. */
    const char *cur_frame;
    size_t cur_frame_len;
    bool rx_binary, in_msg;
    deferred_msg_t deferred[DEFERRED_MAX];
    size_t ndeferred;

    gw_outq_t out;
    gw_sub_t *subs;

    /* From the upgrade (policy.c): the Origin header and the ?tenant= parameter, NULL if
     * absent; checked against the tenant's settings at auth. */
    char *origin;
    char *asked_tenant;

    bool online;        /* counted +1 in the online users (ops.online): -1 when it goes */
    bool start_counted; /* ops.count_connect was called */

    /* Sends received and not answered yet, by hash of cid (0: free slot); allocated at the
     * first send, GW_PENDING_SENDS slots. */
    struct pending_send {
        uint64_t cid_hash;
        int64_t received_us;
    } * pending;

    /* Rooms with action checks under way (act_now), by hash of the room's name: while a room
     * has any, its later actions take the same way, behind them (the checks of a room run in
     * order on its shard), so a connection's sends are stored in the order it sent them even
     * when it joins the room meanwhile. A collision only sends an action the slow way. */
    struct room_checks {
        uint64_t room_hash;
        size_t n;
    } * checks;
    size_t nchecks, checks_cap;

    bool closing;
    bool close_flush;
    int close_code;
    const char *close_reason;
};

/* ---- small helpers ---- */

static void count_error(gw_session_t *s, gw_code_t code)
{
    if (s->env->ops->count_error != NULL)
        s->env->ops->count_error(s->env->ud, code);
}

static void count_frame(gw_session_t *s, gw_ctype_t type)
{
    if (s->env->ops->count_frame != NULL)
        s->env->ops->count_frame(s->env->ud, type);
}

/* Counts how the connection's start ended, the first time only. */
static void count_connect(gw_session_t *s, gw_connect_result_t result)
{
    if (s->start_counted)
        return;
    s->start_counted = true;
    if (s->env->ops->count_connect != NULL)
        s->env->ops->count_connect(s->env->ud, result);
}

/* The hash a pending send is found by; never 0 (the free slot). */
static uint64_t cid_hash(const char *cid)
{
    uint64_t h = chat_hash(cid);
    return h != 0 ? h : 1;
}

/* Remembers that the send with cid was received now; the oldest pending one makes room. */
static void pending_add(gw_session_t *s, const char *cid)
{
    if (cid == NULL)
        return;
    if (s->pending == NULL && (s->pending = calloc(GW_PENDING_SENDS, sizeof *s->pending)) == NULL)
        return; /* only the latency goes unmeasured */
    uint64_t h = cid_hash(cid);
    size_t slot = 0;
    for (size_t i = 0; i < GW_PENDING_SENDS; i++) {
        if (s->pending[i].cid_hash == 0 || s->pending[i].cid_hash == h) {
            slot = i;
            break;
        }
        if (s->pending[i].received_us < s->pending[slot].received_us)
            slot = i;
    }
    s->pending[slot].cid_hash = h;
    s->pending[slot].received_us = s->env->now_us();
}

int64_t gw_session_send_answered(gw_session_t *s, const char *cid)
{
    if (s->pending == NULL || cid == NULL)
        return -1;
    uint64_t h = cid_hash(cid);
    for (size_t i = 0; i < GW_PENDING_SENDS; i++) {
        if (s->pending[i].cid_hash == h) {
            s->pending[i].cid_hash = 0;
            return s->pending[i].received_us;
        }
    }
    return -1;
}

size_t gw_session_sends_pending(const gw_session_t *s)
{
    size_t n = 0;
    for (size_t i = 0; s->pending != NULL && i < GW_PENDING_SENDS; i++)
        n += s->pending[i].cid_hash != 0;
    return n;
}

const char *gw_connect_result_name(gw_connect_result_t result)
{
    static const char *const names[GW_CONNECT__COUNT] = {
        [GW_CONNECT_WELCOME] = "welcome",           [GW_CONNECT_AUTH_FAILED] = "auth_failed",
        [GW_CONNECT_AUTH_TIMEOUT] = "auth_timeout", [GW_CONNECT_OVERLOAD] = "overload",
        [GW_CONNECT_DRAINING] = "draining",
    };
    return result < GW_CONNECT__COUNT ? names[result] : "auth_failed";
}

static void count_refresh(gw_session_t *s, gw_refresh_result_t result)
{
    if (s->env->ops->count_refresh != NULL)
        s->env->ops->count_refresh(s->env->ud, result);
}

/* Queues an error frame about the request with rid/cid (either may be NULL). */
static void send_error(gw_session_t *s, gw_code_t code, const char *message, const char *rid,
                       const char *cid)
{
    count_error(s, code);
    if (cid != NULL)
        gw_session_send_answered(s, cid);
    gw_buf_t *b = gw_frame_error(code, message, rid, cid);
    if (b == NULL) {
        gw_session_close(s, GW_CLOSE_INTERNAL, "out of memory", false);
        return;
    }
    gw_session_enqueue(s, b);
}

/* Queues a frame built by the caller; NULL (out of memory) closes the connection. */
static void send_frame(gw_session_t *s, gw_buf_t *b)
{
    if (b == NULL) {
        gw_session_close(s, GW_CLOSE_INTERNAL, "out of memory", false);
        return;
    }
    gw_session_enqueue(s, b);
}

static const char *rid_or_null(const char *rid)
{
    return rid != NULL && *rid != '\0' ? rid : NULL;
}

/* ---- life cycle ---- */

gw_session_t *gw_session_new(const gw_session_env_t *env, const char *conn_id, void *io)
{
    gw_session_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->env = env;
    snprintf(s->id, sizeof s->id, "%s", conn_id);
    s->io = io;
    gw_outq_init(&s->out, env->limits.send_queue);
    return s;
}

static void deferred_clear(gw_session_t *s)
{
    for (size_t i = 0; i < s->ndeferred; i++)
        free(s->deferred[i].data);
    s->ndeferred = 0;
}

void gw_session_free(gw_session_t *s)
{
    if (s == NULL)
        return;
    gw_rooms_leave_all(s->env->rooms, &s->subs);
    /* Still unauthenticated: the client went, or a drain closed it. */
    count_connect(s, s->closing && s->close_code == GW_CLOSE_SERVICE_RESTART
                         ? GW_CONNECT_DRAINING
                         : GW_CONNECT_AUTH_FAILED);
    free(s->pending);
    free(s->checks);
    if (s->online)
        s->env->ops->online(s->env->ud, s->claims.tenant, s->claims.user, -1);
    gw_outq_clear(&s->out);
    deferred_clear(s);
    chat_jwt_claims_clear(&s->claims);
    free(s->origin);
    free(s->asked_tenant);
    free(s->rx);
    free(s);
}

bool gw_session_set_upgrade(gw_session_t *s, const char *origin, const char *asked_tenant)
{
    free(s->origin);
    free(s->asked_tenant);
    s->origin = origin != NULL ? strdup(origin) : NULL;
    s->asked_tenant = asked_tenant != NULL ? strdup(asked_tenant) : NULL;
    return (origin == NULL || s->origin != NULL) &&
           (asked_tenant == NULL || s->asked_tenant != NULL);
}

const char *gw_session_origin(const gw_session_t *s)
{
    return s->origin;
}

const char *gw_session_asked_tenant(const gw_session_t *s)
{
    return s->asked_tenant;
}

const char *gw_session_id(const gw_session_t *s)
{
    return s->id;
}

void *gw_session_io(const gw_session_t *s)
{
    return s->io;
}

gw_session_state_t gw_session_state(const gw_session_t *s)
{
    return s->state;
}

const char *gw_session_tenant(const gw_session_t *s)
{
    return s->state == GW_SESS_READY ? s->claims.tenant : "";
}

const char *gw_session_user(const gw_session_t *s)
{
    return s->state == GW_SESS_READY ? s->claims.user : "";
}

const char *gw_session_name(const gw_session_t *s)
{
    return s->state == GW_SESS_READY ? s->claims.name : "";
}

int64_t gw_session_exp(const gw_session_t *s)
{
    return s->state == GW_SESS_READY ? s->claims.exp : 0;
}

bool gw_session_refreshing(const gw_session_t *s)
{
    return s->refreshing;
}

const char *gw_refresh_result_name(gw_refresh_result_t result)
{
    static const char *const names[GW_REFRESH__COUNT] = {
        [GW_REFRESH_OK] = "ok",
        [GW_REFRESH_INVALID] = "invalid",
        [GW_REFRESH_OTHER_USER] = "other_user",
        [GW_REFRESH_FAILED] = "failed",
        [GW_REFRESH_BUSY] = "busy",
    };
    return result < GW_REFRESH__COUNT ? names[result] : "invalid";
}

size_t gw_session_queued(const gw_session_t *s)
{
    return gw_outq_len(&s->out);
}

/* ---- output ---- */

static void count_drops(gw_session_t *s, size_t n)
{
    if (n > 0 && s->env->ops->count_drops != NULL)
        s->env->ops->count_drops(s->env->ud, n);
}

bool gw_session_enqueue(gw_session_t *s, gw_buf_t *buf)
{
    if (s->closing) {
        gw_buf_unref(buf);
        count_drops(s, 1);
        return false;
    }
    if (!gw_outq_push(&s->out, buf, 0)) {
        count_drops(s, 1);
        if (s->env->ops->count_slow_close != NULL)
            s->env->ops->count_slow_close(s->env->ud);
        gw_session_close(s, GW_CLOSE_POLICY, "too slow", false);
        return false;
    }
    if (s->env->ops->count_sent != NULL) /* the queue holds a reference: buf is alive */
        s->env->ops->count_sent(s->env->ud, buf);
    s->env->ops->want_write(s->env->ud, s);
    return true;
}

void gw_session_close(gw_session_t *s, int code, const char *reason, bool flush)
{
    if (s->closing)
        return;
    s->closing = true;
    s->close_flush = flush;
    s->close_code = code;
    s->close_reason = reason;
    if (!flush) {
        count_drops(s, gw_outq_len(&s->out));
        gw_outq_clear(&s->out);
    }
    deferred_clear(s);
    s->env->ops->want_write(s->env->ud, s);
}

bool gw_session_closing(const gw_session_t *s)
{
    return s->closing;
}

int gw_session_close_code(const gw_session_t *s)
{
    return s->close_code;
}

const char *gw_session_close_reason(const gw_session_t *s)
{
    return s->close_reason != NULL ? s->close_reason : "";
}

gw_write_t gw_session_next_write(gw_session_t *s, gw_buf_t **buf)
{
    gw_outq_entry_t e;
    if (gw_outq_pop(&s->out, &e)) {
        *buf = e.buf;
        return GW_WRITE_FRAME;
    }
    return s->closing ? GW_WRITE_CLOSE : GW_WRITE_NONE;
}

/* ---- access rules ---- */

/* True if the session's token may use room; otherwise *why says why not. */
static bool room_allowed(const gw_session_t *s, const char *room, const char **why)
{
    if (!chat_jwt_claims_allow_room(&s->claims, room)) {
        *why = "the token does not allow this room";
        return false;
    }
    if (chat_room_is_dm(room) &&
        !(chat_room_dm_valid(room) && chat_room_dm_has(room, s->claims.user))) {
        *why = "direct rooms are open to their two members only";
        return false;
    }
    return true;
}

/* ---- requests of an authenticated session ---- */

static void on_join(gw_session_t *s, const gw_cframe_t *f)
{
    gw_sub_t *sub =
        gw_rooms_join(s->env->rooms, &s->subs, s, s->claims.tenant, f->room, s->claims.user);
    if (sub == NULL) {
        send_error(s, GW_E_INTERNAL, "out of memory", f->rid, NULL);
        return;
    }
    gw_join_req_t req = {
        .conn = s->id,
        .tenant = s->claims.tenant,
        .room = f->room,
        .user = s->claims.user,
        .rid = f->rid,
        .since = f->since,
        .has_since = f->has_since,
        .usince = f->usince,
        .has_usince = f->has_usince,
        .gen = gw_sub_gen(sub),
        .kind = gw_rooms_kind(s->env->rooms, s->claims.tenant, f->room),
        .dm = chat_room_is_dm(f->room),
    };
    if (s->env->ops->submit_join(s->env->ud, &req) != CHAT_OK) {
        gw_rooms_leave(s->env->rooms, &s->subs, sub);
        send_error(s, GW_E_INTERNAL, "join not accepted; retry", f->rid, NULL);
    }
}

/* Leaving a room that is not joined is answered with `left` as well: the client's goal
 * (not subscribed) holds, so leave is idempotent. */
static void on_leave(gw_session_t *s, const gw_cframe_t *f)
{
    gw_sub_t *sub = gw_rooms_find(s->subs, f->room);
    if (sub != NULL)
        gw_rooms_leave(s->env->rooms, &s->subs, sub);
    if (s->env->ops->note_leave != NULL)
        s->env->ops->note_leave(s->env->ud, s->claims.tenant, f->room, s->claims.user);
    send_frame(s, gw_frame_left(f->room, f->rid, NULL));
}

/* Produces the send; a produce that cannot even be queued is answered error internal. */
static void send_produce(gw_session_t *s, const char *room, const char *cid, const char *text,
                         const char *rid)
{
    if (s->env->ops->send(s->env->ud, s, room, cid, text) != CHAT_OK)
        send_error(s, GW_E_INTERNAL, "message was not accepted; resend it", rid, cid);
}

/* True if the connection's subscription to room finished its join (which checked access). */
static bool joined(const gw_session_t *s, const char *room)
{
    const gw_sub_t *sub = gw_rooms_find(s->subs, room);
    return sub != NULL && gw_sub_active(sub);
}

/* Acts on a valid send, edit, delete, react or read whose access is settled. */
static void act(gw_session_t *s, const gw_cframe_t *f);

/* The entry of room's action checks under way, NULL if none. */
static struct room_checks *checks_find(gw_session_t *s, const char *room)
{
    uint64_t h = chat_hash(room);
    for (size_t i = 0; i < s->nchecks; i++)
        if (s->checks[i].room_hash == h)
            return &s->checks[i];
    return NULL;
}

/* One more action check of room under way; false if out of memory. */
static bool checks_add(gw_session_t *s, const char *room)
{
    struct room_checks *c = checks_find(s, room);
    if (c == NULL) {
        struct room_checks *grown =
            chat_array_grow(s->checks, &s->checks_cap, s->nchecks + 1, sizeof *s->checks);
        if (grown == NULL)
            return false;
        s->checks = grown;
        c = &s->checks[s->nchecks++];
        *c = (struct room_checks){.room_hash = chat_hash(room), .n = 0};
    }
    c->n++;
    return true;
}

/* An action check of room has been answered. */
static void checks_done(gw_session_t *s, const char *room)
{
    struct room_checks *c = checks_find(s, room);
    if (c == NULL)
        return;
    if (--c->n == 0)
        *c = s->checks[--s->nchecks];
}

/* Whether an action (send, edit, delete, react, read) in f->room may go ahead now: in a dm room
 * (room_allowed checked it), in a room the connection joined, or in a room the gateway knows to
 * be public (a subscription's cache) it may; a known private room wants a join first (answered
 * here); else the room's kind is read on a worker first, and the frame acted on after
 * (gw_session_act_checked). An action in a room where earlier ones of the connection are still
 * being checked goes that way too, behind them, joined or not. True: act now. */
static bool act_now(gw_session_t *s, const gw_cframe_t *f)
{
    if (chat_room_is_dm(f->room))
        return true;
    if (checks_find(s, f->room) == NULL) {
        if (joined(s, f->room))
            return true;
        switch (gw_rooms_kind(s->env->rooms, s->claims.tenant, f->room)) {
        case GW_ROOM_KIND_PUBLIC:
            return true;
        case GW_ROOM_KIND_PRIVATE:
            send_error(s, GW_E_FORBIDDEN, "join the room first", f->rid, f->cid);
            return false;
        case GW_ROOM_KIND_UNKNOWN:
            break;
        }
    }
    if (s->env->ops->submit_act_check == NULL || s->cur_frame == NULL)
        return true;
    gw_act_req_t req = {.conn = s->id,
                        .tenant = s->claims.tenant,
                        .room = f->room,
                        .cid = f->type == GW_C_SEND ? f->cid : NULL,
                        .rid = f->rid,
                        .frame = s->cur_frame,
                        .frame_len = s->cur_frame_len};
    if (!checks_add(s, f->room))
        gw_session_send_failed(s, f->rid, req.cid);
    else if (s->env->ops->submit_act_check(s->env->ud, &req) != CHAT_OK) {
        checks_done(s, f->room);
        gw_session_send_failed(s, f->rid, req.cid);
    }
    return false;
}

static void on_send(gw_session_t *s, const gw_cframe_t *f)
{
    if (s->env->ops->tenant_send != NULL &&
        !s->env->ops->tenant_send(s->env->ud, s->claims.tenant)) {
        /* The tenant's users together are over its rate: not this client's fault (no strike);
         * it resends with the same cid later. */
        send_error(s, GW_E_RATE_LIMITED, "the tenant's message rate is exceeded; resend later",
                   f->rid, f->cid);
        return;
    }
    pending_add(s, f->cid); /* its ack is timed from now (chat_gateway_send_ack_seconds) */
    if (act_now(s, f))
        act(s, f);
}

/* A valid frame this gateway was built without (its op is NULL): bad_request, echoing rid
 * and cid. */
static void unsupported(gw_session_t *s, const gw_cframe_t *f)
{
    char msg[GW_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "%s is not supported by this gateway", gw_ctype_name(f->type));
    send_error(s, GW_E_BAD_REQUEST, msg, f->rid, f->cid);
}

static void on_update(gw_session_t *s, const gw_cframe_t *f)
{
    if (s->env->ops->update == NULL) {
        unsupported(s, f);
        return;
    }
    if (act_now(s, f))
        act(s, f);
}

static void on_history(gw_session_t *s, const gw_cframe_t *f)
{
    gw_history_req_t req = {
        .conn = s->id,
        .tenant = s->claims.tenant,
        .room = f->room,
        .user = s->claims.user,
        .rid = f->rid,
        .allowed = chat_room_is_dm(f->room) || joined(s, f->room),
        .kind = gw_rooms_kind(s->env->rooms, s->claims.tenant, f->room),
        .before = f->has_before ? f->before : 0,
        .limit = f->has_limit ? f->limit : s->env->limits.history_default,
    };
    if (s->env->ops->submit_history(s->env->ud, &req) != CHAT_OK)
        send_error(s, GW_E_INTERNAL, "history not accepted; retry", f->rid, NULL);
}

/* typing: only in a room the connection joined (forbidden otherwise: the client may not act
 * in a room it does not follow, as with the access rules), then at most once per
 * typing_interval_us per user and room on this gateway; extra ones are dropped silently
 * (the client repeats typing anyway while the user types). */
static void on_typing(gw_session_t *s, const gw_cframe_t *f)
{
    gw_sub_t *sub = gw_rooms_find(s->subs, f->room);
    if (sub == NULL) {
        send_error(s, GW_E_FORBIDDEN, "join the room before typing in it", f->rid, NULL);
        return;
    }
    if (!gw_rooms_typing_allow(sub, s->env->now_us(), s->env->limits.typing_interval_us)) {
        if (s->env->ops->count_typing_throttled != NULL)
            s->env->ops->count_typing_throttled(s->env->ud);
        return;
    }
    if (s->env->ops->typing != NULL)
        s->env->ops->typing(s->env->ud, s, f->room);
}

/* A read mark goes to chat.inbound like a send: the message service checks the seq against
 * the room's latest, in the room's order, and answers a bad one. */
static void on_read(gw_session_t *s, const gw_cframe_t *f)
{
    if (act_now(s, f))
        act(s, f);
}

static void act(gw_session_t *s, const gw_cframe_t *f)
{
    switch (f->type) {
    case GW_C_SEND:
        send_produce(s, f->room, f->cid, f->text, f->rid);
        break;
    case GW_C_EDIT:
    case GW_C_DELETE:
    case GW_C_REACT:
        if (s->env->ops->update(s->env->ud, s, f) != CHAT_OK)
            send_error(s, GW_E_INTERNAL, "request was not accepted; send it again", f->rid, NULL);
        break;
    case GW_C_READ:
        if (s->env->ops->send_read(s->env->ud, s, f->room, f->seq, f->rid) != CHAT_OK)
            send_error(s, GW_E_INTERNAL, "read mark was not accepted; retry", f->rid, NULL);
        break;
    default:
        break;
    }
}

static void on_rooms(gw_session_t *s, const gw_cframe_t *f)
{
    gw_rooms_req_t req = {
        .conn = s->id,
        .tenant = s->claims.tenant,
        .user = s->claims.user,
        .rid = f->rid,
        .cursor = f->cursor,
        .limit = f->has_limit ? f->limit : CHAT_ROOMS_LIMIT_DEFAULT,
    };
    if (s->env->ops->submit_rooms(s->env->ud, &req) != CHAT_OK)
        send_error(s, GW_E_INTERNAL, "rooms not accepted; retry", f->rid, NULL);
}

/* push_subscribe, push_unsubscribe, push_prefs: checked and stored by the environment, which
 * answers through gw_session_push_done; a refusal is bad_request with its reason. */
static void on_push(gw_session_t *s, const gw_cframe_t *f)
{
    gw_push_req_t req = {
        .conn = s->id,
        .tenant = s->claims.tenant,
        .user = s->claims.user,
        .rid = f->rid,
        .type = f->type,
        .endpoint = f->endpoint,
        .p256dh = f->p256dh,
        .auth = f->auth,
        .room = f->room,
        .mode = f->mode,
    };
    char why[GW_ERROR_MESSAGE_MAX] = "";
    chat_err_t err = s->env->ops->submit_push(s->env->ud, &req, why, sizeof why);
    if (err == CHAT_ERR_INVALID)
        send_error(s, GW_E_BAD_REQUEST, why[0] != '\0' ? why : "invalid request", f->rid, NULL);
    else if (err != CHAT_OK)
        send_error(s, GW_E_INTERNAL, "request not accepted; retry", f->rid, NULL);
}

/* refresh: the token is verified like an auth token, and gw_session_refresh_done answers. One
 * at a time: a second one while the first is verified is refused rather than queued (a client
 * refreshes with the newest token it has; a queue would only verify an older one first), and
 * the answer to the first is then unambiguous. */
static void on_refresh(gw_session_t *s, const gw_cframe_t *f)
{
    if (s->refreshing) {
        count_refresh(s, GW_REFRESH_BUSY);
        send_error(s, GW_E_BAD_REQUEST, "a refresh is already in progress", f->rid, NULL);
        return;
    }
    s->refreshing = true;
    snprintf(s->refresh_rid, sizeof s->refresh_rid, "%s", f->rid);
    s->env->ops->submit_refresh(s->env->ud, s, f->token);
}

/* Runs a valid frame of an authenticated session. */
static void dispatch(gw_session_t *s, const gw_cframe_t *f)
{
    const char *why = NULL;
    bool needs_room = f->type == GW_C_JOIN || f->type == GW_C_SEND || f->type == GW_C_HISTORY ||
                      f->type == GW_C_EDIT || f->type == GW_C_DELETE || f->type == GW_C_REACT ||
                      f->type == GW_C_READ;
    if (needs_room && !room_allowed(s, f->room, &why)) {
        send_error(s, GW_E_FORBIDDEN, why, f->rid, f->cid);
        return;
    }
    switch (f->type) {
    case GW_C_JOIN:
        on_join(s, f);
        break;
    case GW_C_LEAVE:
        on_leave(s, f);
        break;
    case GW_C_SEND:
        on_send(s, f);
        break;
    case GW_C_HISTORY:
        on_history(s, f);
        break;
    case GW_C_EDIT:
    case GW_C_DELETE:
    case GW_C_REACT:
        on_update(s, f);
        break;
    case GW_C_TYPING:
        on_typing(s, f);
        break;
    case GW_C_READ:
        if (s->env->ops->send_read != NULL)
            on_read(s, f);
        else
            unsupported(s, f);
        break;
    case GW_C_ROOMS:
        if (s->env->ops->submit_rooms != NULL)
            on_rooms(s, f);
        else
            unsupported(s, f);
        break;
    case GW_C_PUSH_SUBSCRIBE:
    case GW_C_PUSH_UNSUBSCRIBE:
    case GW_C_PUSH_PREFS:
        if (s->env->ops->submit_push != NULL)
            on_push(s, f);
        else
            unsupported(s, f);
        break;
    case GW_C_REFRESH:
        if (s->env->ops->submit_refresh != NULL)
            on_refresh(s, f);
        else
            unsupported(s, f);
        break;
    case GW_C_PING:
        send_frame(s, gw_frame_pong(f->rid));
        break;
    case GW_C_AUTH:
        send_error(s, GW_E_BAD_REQUEST, "already authenticated", f->rid, NULL);
        break;
    default:
        unsupported(s, f);
        break;
    }
}

/* A frame beyond the rate: rate_limited (echoing what can be read), and 4008 once the
 * client has used up its strikes. */
static void rate_limited(gw_session_t *s, const char *data, size_t len, bool binary)
{
    gw_cframe_t f;
    gw_cframe_error_t perr;
    if (!binary)
        gw_cframe_parse(data, len, s->env->limits.max_text_chars, &f, &perr);
    else
        memset(&f, 0, sizeof f);
    send_error(s, GW_E_RATE_LIMITED, "rate limit exceeded; slow down", f.rid, f.cid);
    gw_cframe_clear(&f);
    if (!chat_token_bucket_take(&s->strikes, s->env->now_us()))
        gw_session_close(s, GW_CLOSE_RATE_LIMIT, "rate limit exceeded", true);
}

static void ready_message(gw_session_t *s, const char *data, size_t len, bool binary)
{
    if (!chat_token_bucket_take(&s->bucket, s->env->now_us())) {
        rate_limited(s, data, len, binary);
        return;
    }
    if (binary) {
        count_frame(s, GW_C_INVALID);
        send_error(s, GW_E_BAD_REQUEST, "binary frames are not supported", NULL, NULL);
        return;
    }
    gw_cframe_t f;
    gw_cframe_error_t perr;
    if (gw_cframe_parse(data, len, s->env->limits.max_text_chars, &f, &perr) != CHAT_OK) {
        count_frame(s, f.type);
        send_error(s, perr.code, perr.message, f.rid, f.cid);
    } else {
        count_frame(s, f.type);
        s->cur_frame = data;
        s->cur_frame_len = len;
        dispatch(s, &f);
        s->cur_frame = NULL;
    }
    gw_cframe_clear(&f);
}

/* ---- authentication ---- */

static void reject_auth(gw_session_t *s, const char *message)
{
    count_connect(s, GW_CONNECT_AUTH_FAILED);
    send_error(s, GW_E_UNAUTHORIZED, message, NULL, NULL);
    gw_session_close(s, GW_CLOSE_UNAUTHORIZED, "unauthorized", true);
}

static void first_message(gw_session_t *s, const char *data, size_t len, bool binary)
{
    if (binary) {
        count_frame(s, GW_C_INVALID);
        reject_auth(s, "the first frame must be auth");
        return;
    }
    gw_cframe_t f;
    gw_cframe_error_t perr;
    chat_err_t err = gw_cframe_parse(data, len, s->env->limits.max_text_chars, &f, &perr);
    count_frame(s, f.type);
    if (f.type != GW_C_AUTH) {
        reject_auth(s, "the first frame must be auth");
    } else if (err != CHAT_OK) {
        char msg[GW_ERROR_MESSAGE_MAX + 32];
        snprintf(msg, sizeof msg, "malformed auth: %s", perr.message);
        reject_auth(s, msg);
    } else {
        s->state = GW_SESS_AUTHENTICATING;
        snprintf(s->auth_rid, sizeof s->auth_rid, "%s", f.rid != NULL ? f.rid : "");
        s->env->ops->rx_pause(s->env->ud, s, true);
        s->env->ops->submit_auth(s->env->ud, s, f.token);
    }
    gw_cframe_clear(&f);
}

/* Keeps a message that arrived while the auth lookup runs; too many close the socket. */
static void defer_message(gw_session_t *s, const char *data, size_t len, bool binary)
{
    if (s->ndeferred == DEFERRED_MAX) {
        gw_session_close(s, GW_CLOSE_POLICY, "too many frames before welcome", false);
        return;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        gw_session_close(s, GW_CLOSE_INTERNAL, "out of memory", false);
        return;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    s->deferred[s->ndeferred++] = (deferred_msg_t){.data = copy, .len = len, .binary = binary};
}

static void message(gw_session_t *s, const char *data, size_t len, bool binary)
{
    switch (s->state) {
    case GW_SESS_AWAIT_AUTH:
        first_message(s, data, len, binary);
        break;
    case GW_SESS_AUTHENTICATING:
        defer_message(s, data, len, binary);
        break;
    case GW_SESS_READY:
        ready_message(s, data, len, binary);
        break;
    }
}

void gw_session_auth_done(gw_session_t *s, chat_err_t err, chat_jwt_claims_t *claims,
                          const char *reason)
{
    if (s->state != GW_SESS_AUTHENTICATING || s->closing)
        return;
    s->env->ops->rx_pause(s->env->ud, s, false);
    if (err == CHAT_ERR_UNAUTHORIZED) {
        reject_auth(s, reason != NULL && *reason ? reason : "invalid token");
        return;
    }
    if (err != CHAT_OK) {
        count_connect(s, GW_CONNECT_AUTH_FAILED);
        send_error(s, GW_E_INTERNAL, "authentication is unavailable; retry later", NULL, NULL);
        gw_session_close(s, GW_CLOSE_INTERNAL, "authentication unavailable", true);
        return;
    }
    s->claims = *claims;
    memset(claims, 0, sizeof *claims);
    s->state = GW_SESS_READY;
    count_connect(s, GW_CONNECT_WELCOME);
    chat_token_bucket_init(&s->bucket, s->env->limits.rate_per_sec, s->env->limits.rate_burst,
                           s->env->now_us());
    chat_token_bucket_init(&s->strikes, GW_RATE_STRIKES_FORGIVEN_PER_SEC,
                           s->env->limits.rate_close_after, s->env->now_us());
    send_frame(s, gw_frame_welcome(s->claims.user, s->claims.tenant, s->id, s->env->vapid,
                                   s->claims.exp, rid_or_null(s->auth_rid)));
    if (s->env->ops->expiry != NULL)
        s->env->ops->expiry(s->env->ud, s, s->claims.exp);
    /* Counted after welcome, so that the -1 of a session that goes follows it (both go to
     * one worker of the user's, in this order). */
    if (s->env->ops->online != NULL && !s->closing) {
        s->online = true;
        s->env->ops->online(s->env->ud, s->claims.tenant, s->claims.user, +1);
    }
    size_t n = s->ndeferred;
    s->ndeferred = 0;
    for (size_t i = 0; i < n; i++) {
        if (!s->closing)
            ready_message(s, s->deferred[i].data, s->deferred[i].len, s->deferred[i].binary);
        free(s->deferred[i].data);
    }
}

void gw_session_auth_refuse(gw_session_t *s, gw_code_t code, const char *message, int close_code,
                            const char *close_reason)
{
    if (s->state != GW_SESS_AUTHENTICATING || s->closing)
        return;
    s->env->ops->rx_pause(s->env->ud, s, false);
    count_connect(s, GW_CONNECT_AUTH_FAILED);
    send_error(s, code, message, NULL, NULL);
    gw_session_close(s, close_code, close_reason, true);
}

gw_refresh_result_t gw_session_refresh_done(gw_session_t *s, chat_err_t err,
                                            chat_jwt_claims_t *claims, const char *reason)
{
    if (!s->refreshing || s->closing)
        return GW_REFRESH__COUNT;
    s->refreshing = false;
    gw_refresh_result_t result;
    if (err == CHAT_ERR_UNAUTHORIZED) {
        result = GW_REFRESH_INVALID;
        send_error(s, GW_E_UNAUTHORIZED, reason != NULL && *reason ? reason : "invalid token",
                   s->refresh_rid, NULL);
    } else if (err != CHAT_OK) {
        result = GW_REFRESH_FAILED;
        send_error(s, GW_E_INTERNAL, "token verification is unavailable; retry later",
                   s->refresh_rid, NULL);
    } else if (strcmp(claims->tenant, s->claims.tenant) != 0) {
        result = GW_REFRESH_OTHER_USER;
        send_error(s, GW_E_UNAUTHORIZED, "token is for another tenant", s->refresh_rid, NULL);
    } else if (strcmp(claims->user, s->claims.user) != 0) {
        result = GW_REFRESH_OTHER_USER;
        send_error(s, GW_E_UNAUTHORIZED, "token is for another user", s->refresh_rid, NULL);
    } else {
        /* Tenant and user are unchanged, so the online count and the registrations made under
         * the old claims stay right. Rooms joined under them stay joined; later frames are
         * checked against the new rooms claim. */
        result = GW_REFRESH_OK;
        chat_jwt_claims_clear(&s->claims);
        s->claims = *claims;
        memset(claims, 0, sizeof *claims);
        send_frame(s, gw_frame_ok(s->refresh_rid));
        if (s->env->ops->expiry != NULL)
            s->env->ops->expiry(s->env->ud, s, s->claims.exp);
    }
    count_refresh(s, result);
    return result;
}

bool gw_session_token_expired(gw_session_t *s)
{
    if (s->state != GW_SESS_READY || s->closing)
        return true;
    if (s->refreshing)
        return false;
    send_error(s, GW_E_UNAUTHORIZED, "token expired", NULL, NULL);
    gw_session_close(s, GW_CLOSE_UNAUTHORIZED, "token expired", true);
    return true;
}

void gw_session_auth_timeout(gw_session_t *s)
{
    if (s->state == GW_SESS_READY || s->closing)
        return;
    if (s->state == GW_SESS_AUTHENTICATING) {
        if (s->env->ops->count_auth_overload != NULL)
            s->env->ops->count_auth_overload(s->env->ud);
        count_connect(s, GW_CONNECT_OVERLOAD);
        send_error(s, GW_E_INTERNAL,
                   "the gateway is overloaded: authentication took too long; reconnect and retry",
                   NULL, NULL);
        gw_session_close(s, GW_CLOSE_TRY_AGAIN, "overloaded, try again later", true);
        return;
    }
    char msg[GW_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "no auth within %d s", s->env->limits.auth_timeout_s);
    count_connect(s, GW_CONNECT_AUTH_TIMEOUT);
    reject_auth(s, msg);
}

/* ---- answers ---- */

/* Drops the references of replay entries [from, to). */
static void replay_drop(const gw_join_result_t *res, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        gw_buf_unref(res->replay[i].buf);
}

/* Drops the references of the update entries [from, to). */
static void updates_drop(const gw_join_result_t *res, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        gw_buf_unref(res->updates[i].buf);
}

/* How many replay frames fit: the queue keeps an eighth of its room for live traffic; an
 * older part that does not fit is left out, and the client pages it with history like any
 * gap beyond the replay limit. */
static size_t replay_fit(const gw_session_t *s, size_t held)
{
    size_t room = gw_outq_room(&s->out);
    size_t reserve = 1 + held + s->out.cap / 8;
    return room > reserve ? room - reserve : 0;
}

void gw_session_join_done(gw_session_t *s, const gw_join_result_t *res)
{
    gw_sub_t *sub = gw_rooms_find(s->subs, res->room);
    if (sub == NULL || gw_sub_gen(sub) != res->gen || gw_sub_active(sub) || s->closing) {
        replay_drop(res, 0, res->nreplay);
        updates_drop(res, 0, res->nupdates);
        return;
    }
    if (res->err != CHAT_OK) {
        replay_drop(res, 0, res->nreplay);
        updates_drop(res, 0, res->nupdates);
        gw_rooms_leave(s->env->rooms, &s->subs, sub);
        send_error(s, GW_E_INTERNAL, "join failed; retry", rid_or_null(res->rid), NULL);
        return;
    }
    if (res->refused) {
        replay_drop(res, 0, res->nreplay);
        updates_drop(res, 0, res->nupdates);
        gw_rooms_leave(s->env->rooms, &s->subs, sub);
        send_error(s, res->refuse_code, res->refuse_message, rid_or_null(res->rid), NULL);
        return;
    }
    if (res->kind != GW_ROOM_KIND_UNKNOWN)
        gw_rooms_kind_set(sub, res->kind);
    size_t fit = replay_fit(s, gw_sub_held(sub));
    /* Updates that do not fit are left out like the oldest replayed messages: the client is
     * told to refetch (stale). */
    size_t ufit = res->nupdates < fit ? res->nupdates : fit;
    bool stale = res->stale || ufit < res->nupdates;
    fit -= ufit;
    send_frame(s, gw_frame_joined(res->room, res->latest, res->useq, stale, res->unread, res->read,
                                  res->online, res->nonline, rid_or_null(res->rid)));
    size_t skip = res->nreplay > fit ? res->nreplay - fit : 0;
    replay_drop(res, 0, skip);
    int64_t last = res->latest;
    for (size_t i = skip; i < res->nreplay; i++) {
        if (res->replay[i].seq > last)
            last = res->replay[i].seq;
        gw_session_enqueue(s, res->replay[i].buf);
    }
    /* the updates were read up to res->useq: none is above it */
    for (size_t i = 0; i < ufit; i++)
        gw_session_enqueue(s, res->updates[i].buf);
    updates_drop(res, ufit, res->nupdates);
    gw_rooms_activate(s->env->rooms, sub, last, res->useq);
}

void gw_session_history_done(gw_session_t *s, const char *rid, gw_buf_t *frame)
{
    if (frame == NULL) {
        send_error(s, GW_E_INTERNAL, "history is unavailable; retry", rid_or_null(rid), NULL);
        return;
    }
    gw_session_enqueue(s, frame);
}

void gw_session_rooms_done(gw_session_t *s, const char *rid, gw_buf_t *frame, gw_code_t code,
                           const char *message)
{
    if (frame == NULL) {
        send_error(s, code, message, rid_or_null(rid), NULL);
        return;
    }
    gw_session_enqueue(s, frame);
}

void gw_session_push_done(gw_session_t *s, const char *rid, chat_err_t err)
{
    if (err != CHAT_OK) {
        send_error(s, GW_E_INTERNAL, "not stored; retry", rid_or_null(rid), NULL);
        return;
    }
    send_frame(s, gw_frame_ok(rid_or_null(rid)));
}

void gw_session_refused(gw_session_t *s, gw_code_t code, const char *message, const char *rid,
                        const char *cid)
{
    send_error(s, code, message, rid_or_null(rid), cid);
}

void gw_session_act_checked(gw_session_t *s, const gw_act_req_t *req, gw_room_kind_t kind,
                            bool gone)
{
    checks_done(s, req->room);
    if (s->closing)
        return;
    const char *rid = rid_or_null(req->rid);
    gw_cframe_t f;
    gw_cframe_error_t perr;
    if (gw_cframe_parse(req->frame, req->frame_len, s->env->limits.max_text_chars, &f, &perr) !=
        CHAT_OK) {
        /* it parsed when it arrived: only memory can fail here */
        gw_session_send_failed(s, rid, req->cid);
    } else if (gone) {
        send_error(s, GW_E_NOT_FOUND, "room not found", f.rid, f.cid);
    } else if (kind == GW_ROOM_KIND_PRIVATE && !joined(s, f.room)) {
        send_error(s, GW_E_FORBIDDEN, "join the room first", f.rid, f.cid);
    } else {
        act(s, &f);
    }
    gw_cframe_clear(&f);
}

void gw_session_room_ended(gw_session_t *s, const char *room, const char *reason)
{
    gw_sub_t *sub = gw_rooms_find(s->subs, room);
    if (sub == NULL)
        return;
    gw_rooms_leave(s->env->rooms, &s->subs, sub);
    send_frame(s, gw_frame_left(room, NULL, reason));
}

void gw_session_send_failed(gw_session_t *s, const char *rid, const char *cid)
{
    send_error(s, GW_E_INTERNAL,
               cid != NULL ? "message was not accepted; resend it"
                           : "request was not accepted; send it again",
               rid, cid);
}

/* ---- input ---- */

/* Appends a chunk to the assembly buffer; false if out of memory. */
static bool rx_append(gw_session_t *s, const void *data, size_t len)
{
    char *rx = chat_array_grow(s->rx, &s->rx_cap, s->rx_len + len + 1, 1);
    if (rx == NULL)
        return false;
    s->rx = rx;
    if (len > 0)
        memcpy(s->rx + s->rx_len, data, len);
    s->rx_len += len;
    s->rx[s->rx_len] = '\0';
    return true;
}

gw_rx_result_t gw_session_rx(gw_session_t *s, const void *data, size_t len, bool binary, bool final,
                             size_t remaining)
{
    if (s->closing)
        return s->close_flush ? GW_RX_CONTINUE : GW_RX_CLOSE;
    if (!s->in_msg) {
        s->in_msg = true;
        s->rx_binary = binary;
        s->rx_len = 0;
    }
    if (s->rx_len + len + remaining > s->env->limits.max_frame_bytes) {
        gw_session_close(s, GW_CLOSE_TOO_BIG, "frame too large", false);
        return GW_RX_CLOSE;
    }
    if (!rx_append(s, data, len)) {
        gw_session_close(s, GW_CLOSE_INTERNAL, "out of memory", false);
        return GW_RX_CLOSE;
    }
    if (!final)
        return GW_RX_CONTINUE;
    s->in_msg = false;
    message(s, s->rx, s->rx_len, s->rx_binary);
    if (s->rx_cap > RX_KEEP_BYTES) {
        free(s->rx);
        s->rx = NULL;
        s->rx_cap = 0;
    }
    s->rx_len = 0;
    return s->closing && !s->close_flush ? GW_RX_CLOSE : GW_RX_CONTINUE;
}
