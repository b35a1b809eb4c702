/* Client protocol frames: strict parsing of what clients send (one JSON object per text
 * frame, exactly the fields of proto/frames/client.*.schema.json) and building of the
 * server frames the gateway answers with itself (welcome, joined, left, history, error,
 * pong, ok). acks, msgs and rejects come ready-made through chat.deliver. */
#ifndef CHAT_GATEWAY_FRAMES_H
#define CHAT_GATEWAY_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "services/gateway/outq.h"

#define GW_HISTORY_LIMIT_MAX 100
#define GW_ERROR_MESSAGE_MAX 160

typedef enum gw_ctype {
    GW_C_INVALID = 0, /* unparsable, or no known type */
    GW_C_AUTH,
    GW_C_JOIN,
    GW_C_LEAVE,
    GW_C_SEND,
    GW_C_HISTORY,
    GW_C_PING,
    GW_C_TYPING,
    GW_C_READ,
    GW_C_EDIT,
    GW_C_DELETE,
    GW_C_REACT,
    GW_C_ROOMS,
    GW_C_PUSH_SUBSCRIBE,
    GW_C_PUSH_UNSUBSCRIBE,
    GW_C_PUSH_PREFS,
    GW_C_REFRESH,
    GW_C__COUNT
} gw_ctype_t;

/* Error codes of the client protocol. */
typedef enum gw_code {
    GW_E_BAD_REQUEST = 0,
    GW_E_UNAUTHORIZED,
    GW_E_FORBIDDEN,
    GW_E_NOT_FOUND,
    GW_E_TOO_LARGE,
    GW_E_RATE_LIMITED,
    GW_E_INTERNAL,
    GW_E__COUNT
} gw_code_t;

/* A parsed client frame. Strings point into the parse tree and live until gw_cframe_clear.
 * After a failed parse, type/rid/cid are still set when they could be read (so the error
 * can echo them), everything else is unspecified. */
typedef struct gw_cframe {
    gw_ctype_t type;
    const char *token;
    const char *room;
    const char *cid;
    const char *text;
    const char *rid;
    const char *id;
    const char *emoji;
    const char *cursor; /* rooms */
    /* push_subscribe (all three), push_unsubscribe (endpoint): as the client sent them; the
     * endpoint starts with http:// or https://, the keys are base64url text (decoded and
     * checked by the push module) */
    const char *endpoint;
    const char *p256dh;
    const char *auth;
    const char *mode; /* push_prefs: "all", "mentions", "none" or "default" */
    int64_t since;    /* join: last seq held (has_since) */
    int64_t usince;   /* join: last useq held (has_usince) */
    int64_t before;   /* history (has_before) */
    int64_t limit;    /* history, rooms (has_limit) */
    int64_t seq;      /* read */
    bool has_since, has_usince, has_before, has_limit;
    bool on; /* react */
    cJSON *root_;
} gw_cframe_t;

typedef struct gw_cframe_error {
    gw_code_t code;
    char message[GW_ERROR_MESSAGE_MAX];
} gw_cframe_error_t;

/* "auth", "join", ... ; "invalid" for GW_C_INVALID. */
const char *gw_ctype_name(gw_ctype_t type);

/* "bad_request", "unauthorized", ... */
const char *gw_code_name(gw_code_t code);

/* Parses one text frame of len bytes: valid UTF-8, a JSON object and nothing after it,
 * a known string `type`, only that type's fields, each present when required and
 * well-formed. A text of more than max_text_chars Unicode characters is GW_E_TOO_LARGE;
 * every other problem is GW_E_BAD_REQUEST. Returns CHAT_OK, or CHAT_ERR_INVALID with *err
 * filled. The caller calls gw_cframe_clear in both cases. */
chat_err_t gw_cframe_parse(const void *data, size_t len, size_t max_text_chars, gw_cframe_t *out,
                           gw_cframe_error_t *err);

/* Frees the parse tree and zeroes f. Accepts a zeroed frame. */
void gw_cframe_clear(gw_cframe_t *f);

/* ---- server frames: each returns a new buffer (one reference) or NULL if out of memory.
 * rid/cid/name arguments may be NULL (left out). ---- */

/* vapid: the deployment's VAPID public key (NULL: Web Push is not configured, left out);
 * exp: the token's expiry (seconds since the epoch). */
gw_buf_t *gw_frame_welcome(const char *user, const char *tenant, const char *session,
                           const char *vapid, int64_t exp, const char *rid);
/* The generic answer to a request that returns nothing else (push frames). */
gw_buf_t *gw_frame_ok(const char *rid);
/* useq: the room's latest useq; stale: more messages changed since the join's usince than the
 * gateway sends as updates (left out when false); read: the user's own read mark (0: none). */
gw_buf_t *gw_frame_joined(const char *room, int64_t seq, int64_t useq, bool stale, int64_t unread,
                          int64_t read, const char *const *online, size_t nonline, const char *rid);
/* reason: NULL for the answer to a leave; "removed" or "deleted" when a notice ended the
 * subscription. */
gw_buf_t *gw_frame_left(const char *room, const char *rid, const char *reason);
gw_buf_t *gw_frame_pong(const char *rid);
gw_buf_t *gw_frame_error(gw_code_t code, const char *message, const char *rid, const char *cid);
/* msgs is an array of msg frame objects in ascending seq; it is taken over (freed) even on
 * failure. */
gw_buf_t *gw_frame_history(const char *room, const char *rid, cJSON *msgs, bool more);

/* Serialises obj compactly into a buffer. obj stays the caller's. */
gw_buf_t *gw_frame_from_json(const cJSON *obj);

#endif
