/* One WebSocket connection's protocol state machine, without I/O: it assembles frames
 * (size limit), enforces auth-first, the token bucket and the access rules, answers what
 * it can itself (pong, left, errors), asks its environment for the rest (auth, join and
 * history lookups, produce to chat.inbound and chat.events) and owns the bounded write queue that
 * the server drains in LWS_CALLBACK_SERVER_WRITEABLE. Lives on the event loop only. */
#ifndef CHAT_GATEWAY_SESSION_H
#define CHAT_GATEWAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/jwt.h"
#include "services/gateway/frames.h"
#include "services/gateway/outq.h"
#include "services/gateway/rooms.h"

/* WebSocket close codes the gateway uses. */
#define GW_CLOSE_GOING_AWAY 1001
#define GW_CLOSE_POLICY 1008 /* "too slow" */
#define GW_CLOSE_TOO_BIG 1009
#define GW_CLOSE_INTERNAL 1011
#define GW_CLOSE_SERVICE_RESTART 1012 /* the gateway drains (SIGTERM): reconnect, elsewhere */
#define GW_CLOSE_TRY_AGAIN 1013       /* the gateway is overloaded: reconnect (with backoff) */
#define GW_CLOSE_UNAUTHORIZED 4001
#define GW_CLOSE_TENANT_LIMIT 4003 /* the tenant's concurrent connections limit is reached */
#define GW_CLOSE_ORIGIN 4004       /* the page's origin is not in the tenant's allowed_origins */
#define GW_CLOSE_RATE_LIMIT 4008
/* How fast rate-limited frames are forgiven (see rate_close_after). */
#define GW_RATE_STRIKES_FORGIVEN_PER_SEC 1.0

typedef struct gw_session gw_session_t;

typedef struct gw_limits {
    size_t max_frame_bytes; /* a message (all its fragments) above this closes with 1009 */
    size_t max_text_chars;  /* longer texts get too_large */
    size_t send_queue;      /* frames queued per socket; overflow closes with 1008 */
    double rate_per_sec;    /* token bucket */
    double rate_burst;
    unsigned rate_close_after;  /* rate-limited frames (forgiven at
                                   GW_RATE_STRIKES_FORGIVEN_PER_SEC) that close with 4008 */
    int64_t history_default;    /* limit of a history request without one */
    int auth_timeout_s;         /* for the message of the auth timeout error */
    int64_t typing_interval_us; /* a user's typing in a room is forwarded at most this often */
} gw_limits_t;

/* A join the environment must carry out (Redis registration, then MongoDB reads).
 * Strings live for the call only. */
typedef struct gw_join_req {
    const char *conn;
    const char *tenant;
    const char *room;
    const char *user;
    const char *rid;
    int64_t since;
    bool has_since;
    int64_t usince; /* last useq held: the changes after it are replayed as updates */
    bool has_usince;
    uint32_t gen; /* echoed in the result, so a stale answer is recognised */
    /* The room's kind if the gateway knows it (a subscription's cache), else UNKNOWN; dm rooms
     * are not looked up (the token's user is one of their members). */
    gw_room_kind_t kind;
    bool dm;
} gw_join_req_t;

typedef struct gw_history_req {
    const char *conn;
    const char *tenant;
    const char *room;
    const char *user;
    const char *rid;
    /* true: no access check (a dm room, or one the connection joined); else kind is what the
     * gateway knows of the room (UNKNOWN: read it) */
    bool allowed;
    gw_room_kind_t kind;
    int64_t before; /* 0: the newest */
    int64_t limit;
} gw_history_req_t;

/* An action in a room (send, edit, delete, react, read) on a connection that did not join the
 * room, whose kind the gateway does not know: the room's kind is read first
 * (services/gateway/act_check.c), then the frame is acted on; a private or deleted room refuses
 * it. frame is the client frame as received (valid; parsed again after the lookup). */
typedef struct gw_act_req {
    const char *conn;
    const char *tenant;
    const char *room;
    const char *cid; /* NULL unless a send */
    const char *rid;
    const char *frame;
    size_t frame_len;
} gw_act_req_t;

/* A user's room list (the `rooms` frame; services/gateway/room_list.c). */
typedef struct gw_rooms_req {
    const char *conn;
    const char *tenant;
    const char *user;
    const char *rid;
    const char *cursor; /* NULL: the first page */
    int64_t limit;
} gw_rooms_req_t;

/* A push frame (push_subscribe, push_unsubscribe, push_prefs) of the session's user
 * (services/gateway/push.c). Strings live for the call only. */
typedef struct gw_push_req {
    const char *conn;
    const char *tenant;
    const char *user;
    const char *rid;
    gw_ctype_t type;
    const char *endpoint; /* subscribe, unsubscribe */
    const char *p256dh;   /* subscribe */
    const char *auth;     /* subscribe */
    const char *room;     /* prefs: NULL for every room */
    const char *mode;     /* prefs: "all", "mentions", "none" or "default" */
} gw_push_req_t;

/* How a refresh frame ended (gw_session_ops_t.count_refresh). */
typedef enum gw_refresh_result {
    GW_REFRESH_OK = 0,     /* the new token's claims replaced the session's */
    GW_REFRESH_INVALID,    /* malformed, forged or expired token, unknown tenant */
    GW_REFRESH_OTHER_USER, /* a valid token of another tenant or user */
    GW_REFRESH_FAILED,     /* the tenant's secret could not be read (store failure) */
    GW_REFRESH_BUSY,       /* another refresh of the session was being verified */
    GW_REFRESH__COUNT
} gw_refresh_result_t;

/* "ok", "invalid", "other_user", "failed", "busy". */
const char *gw_refresh_result_name(gw_refresh_result_t result);

/* How a connection's start ended (gw_session_ops_t.count_connect), once per connection. */
typedef enum gw_connect_result {
    GW_CONNECT_WELCOME = 0,  /* authenticated */
    GW_CONNECT_AUTH_FAILED,  /* bad token, unknown tenant, auth unavailable, or the socket
                                ended before its auth was answered (client gone, bad frame) */
    GW_CONNECT_AUTH_TIMEOUT, /* no auth frame within CHAT_AUTH_TIMEOUT (4001) */
    GW_CONNECT_OVERLOAD,     /* the token was not verified in time (1013) */
    GW_CONNECT_DRAINING,     /* refused or closed unauthenticated by a drain */
    GW_CONNECT__COUNT
} gw_connect_result_t;

/* "welcome", "auth_failed", "auth_timeout", "overload", "draining". */
const char *gw_connect_result_name(gw_connect_result_t result);

/* Sends remembered per session until their ack (older ones are forgotten when more are in
 * flight: only their latency goes unmeasured). */
#define GW_PENDING_SENDS 16

/* What the environment (server.c; fakes in tests) provides. ud is gw_session_env_t.ud. */
typedef struct gw_session_ops {
    /* The session has something to write (or wants to close): call back when writable. */
    void (*want_write)(void *ud, gw_session_t *s);
    /* Stop (pause=true) or resume reading the socket. */
    void (*rx_pause)(void *ud, gw_session_t *s, bool pause);
    /* Whether the tenant may send one more message now (its limits.messages_per_s over all
     * gateways); NULL: no tenant limit. A refusal is error rate_limited, not a strike. */
    bool (*tenant_send)(void *ud, const char *tenant);
    /* Verify token; the answer comes back through gw_session_auth_done. */
    void (*submit_auth)(void *ud, gw_session_t *s, const char *token);
    /* Verify the token of a refresh frame of a READY session like an auth token; the answer
     * comes back through gw_session_refresh_done, maybe before this returns (a cached
     * tenant secret), always exactly once. NULL: refresh is not supported (bad_request). */
    void (*submit_refresh)(void *ud, gw_session_t *s, const char *token);
    /* Answer through gw_session_join_done / gw_session_history_done. A non-OK return
     * means the request was not taken (out of memory): no answer will come. */
    chat_err_t (*submit_join)(void *ud, const gw_join_req_t *req);
    chat_err_t (*submit_history)(void *ud, const gw_history_req_t *req);
    /* Look up the kind of the room of an action (gw_act_req_t); the answer comes through
     * gw_session_act_checked, exactly once per lookup taken, and one room's answers in the
     * order its lookups were submitted (the session keeps a connection's actions in order on
     * it). NULL: such actions go ahead without a lookup. */
    chat_err_t (*submit_act_check)(void *ud, const gw_act_req_t *req);
    /* Produce a send to chat.inbound; failures reported later come through
     * gw_session_send_failed. Returns non-OK if it could not even be queued. */
    chat_err_t (*send)(void *ud, gw_session_t *s, const char *room, const char *cid,
                       const char *text);
    /* Produce an edit, delete or react (f, valid, of that type) to chat.inbound; a failure
     * reported later comes through gw_session_send_failed with f's rid. NULL: the gateway
     * answers them bad_request. */
    chat_err_t (*update)(void *ud, gw_session_t *s, const gw_cframe_t *f);
    /* Produce a typing event of the session's user in room (joined, not throttled): best
     * effort, nothing is told to the client. May be NULL (typing is dropped). */
    void (*typing)(void *ud, gw_session_t *s, const char *room);
    /* A typing frame was dropped by the throttle. May be NULL. */
    void (*count_typing_throttled)(void *ud);
    /* Produce a read mark to chat.inbound (the message service answers a bad one with an
     * error to this connection). NULL: read is not supported. */
    chat_err_t (*send_read)(void *ud, gw_session_t *s, const char *room, int64_t seq,
                            const char *rid);
    /* Answer through gw_session_rooms_done. NULL: rooms is not supported. */
    chat_err_t (*submit_rooms)(void *ud, const gw_rooms_req_t *req);
    /* Checks and stores a push frame; the answer comes through gw_session_push_done.
     * CHAT_ERR_INVALID: refused (bad_request with the reason written to why); another non-OK:
     * not taken (error internal). NULL: the push frames are not supported. */
    chat_err_t (*submit_push)(void *ud, const gw_push_req_t *req, char *why, size_t whylen);
    /* The user of an authenticated session has one more (delta +1, after welcome) or one
     * fewer (-1, when the session that counted +1 goes) connection here. May be NULL. */
    void (*online)(void *ud, const char *tenant, const char *user, int delta);
    /* The user left room (their room list forgets it). May be NULL. */
    void (*note_leave)(void *ud, const char *tenant, const char *room, const char *user);
    /* Metrics hooks; may be NULL. */
    void (*count_frame)(void *ud, gw_ctype_t type);
    void (*count_error)(void *ud, gw_code_t code);
    void (*count_slow_close)(void *ud);
    /* The token arrived but was not verified in time (the gateway's fault). */
    void (*count_auth_overload)(void *ud);
    /* A refresh frame was answered, with this outcome. */
    void (*count_refresh)(void *ud, gw_refresh_result_t result);
    /* n queued or offered frames were discarded (closing or overflowing socket). */
    void (*count_drops)(void *ud, size_t n);
    /* buf was queued to the socket (every server frame queued passes here, once per
     * socket; frames dropped by a closing or full queue do not). */
    void (*count_sent)(void *ud, const gw_buf_t *buf);
    /* The connection's start ended with result (called once per session, at the latest
     * when it is freed). */
    void (*count_connect)(void *ud, gw_connect_result_t result);
    /* The session's token expires at exp_s (seconds since the epoch): at welcome, and again
     * after each accepted refresh. The caller calls gw_session_token_expired then. May be
     * NULL (no expiry enforced). */
    void (*expiry)(void *ud, gw_session_t *s, int64_t exp_s);
} gw_session_ops_t;

typedef struct gw_session_env {
    gw_limits_t limits;
    const gw_session_ops_t *ops;
    void *ud;
    gw_rooms_t *rooms;
    int64_t (*now_us)(void); /* monotonic clock */
    const char *vapid;       /* welcome.vapid; NULL: Web Push is not configured */
} gw_session_env_t;

typedef enum gw_session_state {
    GW_SESS_AWAIT_AUTH = 0,
    GW_SESS_AUTHENTICATING,
    GW_SESS_READY,
} gw_session_state_t;

typedef enum gw_rx_result {
    GW_RX_CONTINUE = 0,
    GW_RX_CLOSE, /* close now with gw_session_close_code (nothing is flushed) */
} gw_rx_result_t;

typedef enum gw_write {
    GW_WRITE_NONE = 0, /* nothing to do */
    GW_WRITE_FRAME,    /* write *buf (the caller owns the reference) */
    GW_WRITE_CLOSE,    /* queue drained and a close was requested */
} gw_write_t;

/* The result of a join, handed to the session on the loop. Strings and the online array
 * live for the call; the replay buffers (nreplay entries in ascending seq) and the update
 * buffers are taken over by the session in every case. */
typedef struct gw_join_result {
    const char *room;
    const char *rid;
    uint32_t gen;
    chat_err_t err; /* non-OK: the join failed (error internal) */
    /* The user may not use the room: error refuse_code with refuse_message (static), and the
     * subscription ends. */
    bool refused;
    gw_code_t refuse_code;
    const char *refuse_message;
    gw_room_kind_t kind; /* the room's kind as the join found it (UNKNOWN for dm rooms) */
    int64_t latest;
    int64_t useq; /* the room's latest useq: update frames at or below it were replayed */
    bool stale;   /* more messages changed since usince than updates were replayed */
    int64_t unread;
    int64_t read; /* the user's read mark (0: none) */
    const char *const *online;
    size_t nonline;
    gw_outq_entry_t *replay;
    size_t nreplay;
    gw_outq_entry_t *updates; /* after the replay: the changed messages' update frames, in
                                 ascending useq (entry seq: the useq) */
    size_t nupdates;
} gw_join_result_t;

/* env must outlive the session. conn_id is copied; io is the server's handle (the wsi).
 * NULL if out of memory. */
gw_session_t *gw_session_new(const gw_session_env_t *env, const char *conn_id, void *io);

/* Leaves every room (reporting releases), drops the queue and frees. Accepts NULL. */
void gw_session_free(gw_session_t *s);

const char *gw_session_id(const gw_session_t *s);
void *gw_session_io(const gw_session_t *s);
gw_session_state_t gw_session_state(const gw_session_t *s);
/* Tenant and user of an authenticated session; "" before. */
const char *gw_session_tenant(const gw_session_t *s);
const char *gw_session_user(const gw_session_t *s);
/* Display name from the token's name claim; "" if none. */
const char *gw_session_name(const gw_session_t *s);
/* The current token's exp (seconds since the epoch; a refresh moves it); 0 before auth. */
int64_t gw_session_exp(const gw_session_t *s);
/* True while the token of a refresh frame is being verified. */
bool gw_session_refreshing(const gw_session_t *s);
size_t gw_session_queued(const gw_session_t *s);

/* Feeds one received chunk. binary: the message is binary; final: this chunk ends the
 * message; remaining: bytes of the current frame still to come (for the early size check).
 * Processes the message once complete. */
gw_rx_result_t gw_session_rx(gw_session_t *s, const void *data, size_t len, bool binary, bool final,
                             size_t remaining);

/* What the upgrade carried (copied): the Origin header and the ?tenant= parameter, each NULL
 * if absent. False if out of memory. */
bool gw_session_set_upgrade(gw_session_t *s, const char *origin, const char *asked_tenant);
const char *gw_session_origin(const gw_session_t *s);       /* NULL: none */
const char *gw_session_asked_tenant(const gw_session_t *s); /* NULL: none */

/* A verified token refused by the tenant's policy (policy.c): an error frame (code, message),
 * then the close (close_code, close_reason). Counted as a failed auth. */
void gw_session_auth_refuse(gw_session_t *s, gw_code_t code, const char *message, int close_code,
                            const char *close_reason);

/* Results coming back to the loop. claims are moved into the session on success (the
 * source is left cleared). reason is the verification failure text. */
void gw_session_auth_done(gw_session_t *s, chat_err_t err, chat_jwt_claims_t *claims,
                          const char *reason);
/* The verification of a refresh frame's token (gw_session_ops_t.submit_refresh) ended. On
 * CHAT_OK with claims of the session's tenant and user, claims are moved into the session (the
 * source is left cleared) and `ok` {rid} is sent; otherwise claims stay the caller's and the
 * client gets error unauthorized (CHAT_ERR_UNAUTHORIZED with reason, or claims of another
 * tenant or user) or internal (any other err), and keeps its current token. Ignored if no
 * refresh is pending or the session is closing (the claims stay the caller's). Returns the
 * outcome told to the client, or GW_REFRESH__COUNT if ignored. */
gw_refresh_result_t gw_session_refresh_done(gw_session_t *s, chat_err_t err,
                                            chat_jwt_claims_t *claims, const char *reason);
void gw_session_join_done(gw_session_t *s, const gw_join_result_t *res);
/* frame is the history frame (taken over), or NULL if the lookup failed. */
void gw_session_history_done(gw_session_t *s, const char *rid, gw_buf_t *frame);
/* frame is the rooms frame (taken over), or NULL: error code with message. */
void gw_session_rooms_done(gw_session_t *s, const char *rid, gw_buf_t *frame, gw_code_t code,
                           const char *message);
/* A push frame's store call finished: `ok` {rid}, or error internal if err is not OK. */
void gw_session_push_done(gw_session_t *s, const char *rid, chat_err_t err);
/* A request that needed a lookup is refused: error code with message (static), echoing rid
 * and cid (either may be NULL). */
void gw_session_refused(gw_session_t *s, gw_code_t code, const char *message, const char *rid,
                        const char *cid);
/* The kind of an action's room was read (gw_session_ops_t.submit_act_check): the action
 * (req->frame) goes ahead if kind is public (or the connection joined the room meanwhile),
 * is refused otherwise (gone: the room was deleted). Strings live for the call. */
void gw_session_act_checked(gw_session_t *s, const gw_act_req_t *req, gw_room_kind_t kind,
                            bool gone);
/* A notice ended the session's subscription to room (member removed, room deleted): it
 * leaves the room (as a leave would, without touching the user's room list) and gets `left`
 * {room, reason}. No-op if it has no subscription to room. */
void gw_session_room_ended(gw_session_t *s, const char *room, const char *reason);
/* The produce of the send with cid (or of the edit, delete or react with rid) failed: error
 * internal echoing them (either may be NULL). */
void gw_session_send_failed(gw_session_t *s, const char *rid, const char *cid);
/* The auth deadline passed. Before the auth frame (the client's fault): error unauthorized,
 * then close 4001. After it, while its verification still runs (the gateway's fault, e.g.
 * overloaded): error internal, then close 1013 (try again later), so that the client
 * reconnects instead of giving up. No-op once authenticated. */
void gw_session_auth_timeout(gw_session_t *s);
/* The token's exp passed (gw_session_ops_t.expiry): error unauthorized "token expired", then
 * close 4001 (PROTOCOL.md v1.1). Returns false, doing nothing, while a refresh is being
 * verified (ask again a little later: it may move the expiry); true otherwise (also for a
 * session already closing or not authenticated, which is left alone). */
bool gw_session_token_expired(gw_session_t *s);

/* The send with cid was acknowledged or refused (an ack or error frame echoing cid came
 * back): returns the monotonic time (now_us) its frame was received, forgetting it, or -1
 * if it is not pending (unknown, already answered, or forgotten). */
int64_t gw_session_send_answered(gw_session_t *s, const char *cid);
/* Sends received and not answered yet (at most GW_PENDING_SENDS). */
size_t gw_session_sends_pending(const gw_session_t *s);

/* Queues buf (taking over the reference). A full queue closes the session with 1008
 * ("too slow") and drops buf; so does any enqueue once closing. Returns true if queued. */
bool gw_session_enqueue(gw_session_t *s, gw_buf_t *buf);

/* Requests a close with code/reason (reason static). flush: write what is queued first;
 * otherwise the queue is dropped. The first request wins. */
void gw_session_close(gw_session_t *s, int code, const char *reason, bool flush);
bool gw_session_closing(const gw_session_t *s);
int gw_session_close_code(const gw_session_t *s);
const char *gw_session_close_reason(const gw_session_t *s);

/* The next thing the server should do for this socket. */
gw_write_t gw_session_next_write(gw_session_t *s, gw_buf_t **buf);

#endif
