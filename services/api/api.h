/* The api service's internal interface between its HTTP core (http.c: libmicrohttpd, auth,
 * errors, limits, idempotency, routing) and the resource modules (rooms.c, members.c,
 * messages.c, blocks.c, users.c, exports.c, erasure.c, stats.c, settings.c, moderation.c,
 * rescan.c, webhooks.c, notifications.c). A module
 * registers its routes at start; the core calls a handler on one of its pool threads with a
 * request whose tenant is already authenticated and whose body is already parsed, and sends
 * what the handler put in the response. docs/server-api.md says where the data lives. */
#ifndef CHAT_API_API_H
#define CHAT_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/bus.h"
#include "common/egress.h"
#include "common/err.h"
#include "common/events.h"
#include "common/fleet_count.h"
#include "common/metrics.h"
#include "common/redis.h"
#include "common/store.h"
#include "common/tenant_label.h"

/* Everything a handler may use; shared by every pool thread (each member is thread-safe or
 * read-only after start). Owned by main.c. */
typedef struct api_ctx {
    chat_store_t *store;   /* MongoDB (its client pool) */
    const char *redis_uri; /* handlers that need Redis take a connection with api_redis_take */
    chat_bus_producer_t *producer; /* chat.inbound producer (idempotent, acks=all); inbound.c */
    const char *topic_inbound;
    const char *topic_moderation; /* verdicts of moderators and rescans (moderation.c) */
    chat_metrics_t *metrics;
    chat_tenant_labels_t *tenant_labels; /* chat_api_tenant_requests_total's; NULL: none */
    /* chat_api_webhook_deliveries_total by api_webhook_outcome_t (webhooks.c registers them) */
    chat_counter_t *webhook_deliveries[3];
    const char *instance;     /* CHAT_INSTANCE_ID: in request tokens and job leases */
    const char *export_dir;   /* CHAT_API_EXPORT_DIR: exports are written under it */
    int64_t reply_timeout_ms; /* how long a produced change waits for its answer */
    long max_text_chars;      /* the message service's text limit (CHAT_MAX_TEXT_CHARS) */
    long max_members;         /* members of a room unless the tenant's settings say otherwise */
    long api_rate;            /* calls per second of a tenant unless its settings say otherwise */
    int redis_timeout_ms;     /* connect and command timeout of api_redis_take's connections */
    /* The api instances alive (common/fleet_count.h, "chat:api:instances"): each takes
     * 1/n of a tenant's api_calls_per_s. NULL: this one alone. */
    chat_fleet_t *fleet;
    chat_egress_policy_t egress; /* where webhook URLs may point (webhooks.c) */
    void *core;                  /* http.c's own state */
    void *jobs;                  /* jobs.c's own state */
} api_ctx_t;

typedef enum api_method {
    API_GET,
    API_POST,
    API_PATCH,
    API_PUT,
    API_DELETE,
    API_METHOD__COUNT
} api_method_t;

#define API_MAX_PARAMS 3

/* One request, valid for the duration of the handler call. */
typedef struct api_req {
    api_ctx_t *ctx;
    api_method_t method;
    const char *tenant;     /* the server token's tid */
    const char *request_id; /* also in the X-Request-Id header and every error body */
    /* A token unique to this request across instances ("<instance>-<n>"): the conn of the
     * origin of anything it produces (contract.h: the api's reply channel). */
    const char *origin_conn;
    const char *params[API_MAX_PARAMS]; /* path parameters in order ({room}, {id}, ...), URL-
                                           decoded; validated by the handler */
    size_t nparams;
    cJSON *body; /* the parsed JSON body; NULL when the request had none */
    void *conn_; /* core: for api_req_query */
} api_req_t;

/* Room for any Location the api answers: /v1/users/{user}/erasure/{job} with a user id of 64
 * four-byte characters, each byte percent-encoded. */
#define API_LOCATION_MAX 1024

/* What a handler answers. body is owned by the response (the core frees it); NULL sends no
 * body (204). */
typedef struct api_resp {
    int status;
    cJSON *body;
    char retry_after[16];            /* Retry-After header value when set */
    char location[API_LOCATION_MAX]; /* Location header when set (202 job answers) */
} api_resp_t;

typedef void (*api_handler_fn)(const api_req_t *req, api_resp_t *resp);

/* Registers method + pattern (a path under /v1 with {name} segments, e.g.
 * "/rooms/{room}/members/{user}") -> handler. At start, before api_http_start. */
chat_err_t api_route(api_ctx_t *ctx, api_method_t method, const char *pattern,
                     api_handler_fn handler);

/* The same for a route whose bodies may be larger than the service's limit (CHAT_API_MAX_BODY):
 * up to max_body bytes (the service's limit when it is larger). */
chat_err_t api_route_body(api_ctx_t *ctx, api_method_t method, const char *pattern,
                          api_handler_fn handler, size_t max_body);

/* A query parameter of the request, URL-decoded; NULL if absent. */
const char *api_req_query(const api_req_t *req, const char *name);

/* ---- answers ---- */

/* Sets resp to the error body {"error": {code, message, status, request_id}} with the code word
 * of status (400 bad_request, 401 unauthorized, 403 forbidden, 404 not_found, 409 conflict, 413
 * too_large, 429 rate_limited, 500/502/503/504 internal). message is printf-style. */
void api_error(const api_req_t *req, api_resp_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The same for a chat_err_t from MongoDB, Redis or Kafka: logged with the request id and
 * tenant, answered 503 (unavailable, retry) or 500. what says what failed ("reading members"). */
void api_error_from(const api_req_t *req, api_resp_t *resp, chat_err_t err, const char *what);

/* Sets resp to status with body (owned from now on; NULL answers an empty object). */
void api_json(api_resp_t *resp, int status, cJSON *body);

/* ---- request bodies ----
 * Each checks the body against a list of allowed fields (unknown fields are 400, naming the
 * field) and answers 400 itself on failure, returning false. */
bool api_body_fields(const api_req_t *req, api_resp_t *resp, const char *const *allowed);
/* A required (or, with required false, optional: *out NULL when absent) string field. */
bool api_body_string(const api_req_t *req, api_resp_t *resp, const char *field, bool required,
                     const char **out);

/* ---- lists ----
 * ?limit=1..100 (default 50) and ?cursor= (opaque: base64url of what the module encodes).
 * Answers 400 itself on a bad limit or cursor. */
bool api_page_params(const api_req_t *req, api_resp_t *resp, int *limit, char *cursor,
                     size_t cursor_len);
/* Encodes raw (a module's own position, e.g. the last room id) as an opaque cursor. *out is
 * malloc'd. */
char *api_cursor_encode(const char *raw);

/* ---- the room's stream (inbound.c) ---- */

/* Writes a token unique to this instance and call ("<instance>-<n>", at most
 * CHAT_ORIGIN_CONN_MAX bytes) into conn: the origin conn of what one request or job step
 * produces. Any thread. */
void api_origin_conn_new(api_ctx_t *ctx, char *conn, size_t len);

/* Produces one event (JSON; a send, edit or delete whose origin is {gw: "api", conn}) to
 * chat.inbound keyed tenant/room and waits for Kafka's acknowledgement. */
chat_err_t api_inbound_produce(api_ctx_t *ctx, const char *tenant, const char *room,
                               const void *event_json, size_t len);

/* Encodes ev (a send, edit or delete the caller filled in, origin_conn included) with the
 * shared event codec (common/events.h), after setting its origin gw to the api's and its ts to
 * now when unset. *json is malloc'd (caller frees). CHAT_ERR_INVALID if the codec refuses ev. */
chat_err_t api_event_encode(chat_event_t *ev, char **json, size_t *len);

/* api_event_encode's ev and api_inbound_produce's it into its tenant/room. */
chat_err_t api_event_produce(api_ctx_t *ctx, chat_event_t *ev);

/* Produces n verdict events (common/events.h CHAT_EV_VERDICT, each with its tenant, room, id,
 * seq, action, reason, rule and ts filled in) to chat.moderation, each keyed by its tenant/room,
 * and waits for Kafka's acknowledgement of all. CHAT_ERR_INVALID if one does not encode; else
 * the first Kafka failure (some may have been produced: verdicts are idempotent). */
chat_err_t api_verdicts_produce(api_ctx_t *ctx, const chat_event_t *verdicts, size_t n);

/* Waits up to timeout_ms for the answer to what was produced with origin conn (contract.h,
 * the api's reply channel): *frame is the parsed ack or error frame (caller cJSON_Deletes).
 * CHAT_ERR_TIMEOUT if none came. */
chat_err_t api_reply_wait(api_ctx_t *ctx, const char *conn, int64_t timeout_ms, cJSON **frame);

/* One notice of a room (docs/server-api.md): notice, target (member notices, else NULL) and
 * text (the new name of room_renamed, else NULL for ""). */
typedef struct api_notice {
    const char *notice;
    const char *target;
    const char *text;
} api_notice_t;

/* Produces n notices into tenant/room in order (all produced, then Kafka's acknowledgement of
 * all awaited), each from "system" with a fresh origin and cid; does not wait for answers.
 * Returns the first failure (later ones may have been produced). */
chat_err_t api_notices_produce(api_ctx_t *ctx, const char *tenant, const char *room,
                               const api_notice_t *notices, size_t n);

/* members.c: produces a notice (docs/server-api.md: notice, target, text) from "system" into
 * tenant/room with a fresh origin and cid; does not wait for its answer. Used by rooms,
 * members and user erasure. */
chat_err_t api_notice_produce(api_ctx_t *ctx, const char *tenant, const char *room,
                              const char *notice, const char *target, const char *text);

/* members.c: removes user from tenant/room (members, user_rooms, the user's Redis set of known
 * rooms) and produces the member_removed notice. CHAT_ERR_NOT_FOUND if not a member. */
chat_err_t api_member_remove(api_ctx_t *ctx, const char *tenant, const char *room,
                             const char *user);

/* ---- Redis ---- */
/* A connection for this thread (created on first use, kept per thread). NULL (logged) if
 * Redis cannot be reached. */
chat_redis_t *api_redis_take(api_ctx_t *ctx);

/* ---- a tenant's settings (settings.c) ---- */

/* The parts of a tenant's settings (GET/PATCH /v1/settings) that enforcement reads. */
typedef struct api_settings {
    long long connections;      /* limits.connections: open connections of the tenant */
    long long messages_per_s;   /* limits.messages_per_s */
    long long api_calls_per_s;  /* limits.api_calls_per_s: this api's rate limit */
    long long members_per_room; /* limits.members_per_room: checked when members are added */
    long long rooms;            /* limits.rooms: private rooms, checked when one is created */
    bool push_enabled;          /* push.enabled */
    size_t allowed_origins;     /* how many origins allowed_origins lists (0: any) */
} api_settings_t;

/* The tenant's settings (its defaults if it never set any), from a per-process copy at most
 * 2 s old. Any thread. CHAT_ERR_MONGO and the like if they could not be read (out then holds
 * the defaults). */
chat_err_t api_settings_get(api_ctx_t *ctx, const char *tenant, api_settings_t *out);

/* ---- module registration (each module's file) ---- */
chat_err_t api_rooms_register(api_ctx_t *ctx);    /* rooms.c: /rooms, /rooms/{room} */
chat_err_t api_members_register(api_ctx_t *ctx);  /* members.c: /rooms/{room}/members... */
chat_err_t api_messages_register(api_ctx_t *ctx); /* messages.c: /rooms/{room}/messages... */
chat_err_t api_blocks_register(api_ctx_t *ctx);   /* blocks.c: /users/{user}/blocks... */
chat_err_t api_users_register(api_ctx_t *ctx);    /* users.c: /users/{user}/rooms, DELETE user */
chat_err_t api_exports_register(api_ctx_t *ctx);  /* exports.c: /exports... */
chat_err_t api_stats_register(api_ctx_t *ctx);    /* stats.c: /stats */
chat_err_t api_settings_register(api_ctx_t *ctx); /* settings.c: /settings */
/* moderation.c: /moderation/rules, /moderation/flags...; rescan.c: /moderation/rescan... */
chat_err_t api_moderation_register(api_ctx_t *ctx);
chat_err_t api_rescan_register(api_ctx_t *ctx);
/* webhooks.c: /webhooks...; notifications.c: /users/{user}/notifications */
chat_err_t api_webhooks_register(api_ctx_t *ctx);
chat_err_t api_notifications_register(api_ctx_t *ctx);

/* ---- announcements of configuration changes (announce.c) ---- */

/* Writes a revision of tenant (write: one Redis command) for the services that cache its
 * configuration, tried 3 times 200 ms apart; logged when it still fails. A handler whose
 * change is stored but not announced answers 503: the other services would not see it. */
typedef chat_err_t (*api_announce_fn)(chat_redis_t *r, const char *tenant, int64_t rev);
chat_err_t api_announce(api_ctx_t *ctx, const char *tenant, api_announce_fn write, int64_t rev);

/* api_announce of notify's revision (chat_notify_rev_bump): webhooks or settings changed. */
chat_err_t api_notify_announce(api_ctx_t *ctx, const char *tenant);

#endif
