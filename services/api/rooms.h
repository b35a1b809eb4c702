/* What the room resources share (rooms.c, members.c, messages.c): the collections of
 * docs/server-api.md, a room's kind as the gateway decides it, and the writes of adding
 * members. Every function takes and gives back its own MongoDB client and Redis connection. */
#ifndef CHAT_API_ROOMS_H
#define CHAT_API_ROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>

#include "common/err.h"
#include "common/tenant_settings.h"
#include "services/api/api.h"

#define API_ROOMS_COLLECTION "rooms"
#define API_MEMBERS_COLLECTION "members"
#define API_USER_ROOMS_COLLECTION "user_rooms"
#define API_MESSAGES_COLLECTION "messages"
#define API_UPDATES_COLLECTION "updates"
#define API_SETTINGS_COLLECTION CHAT_SETTINGS_COLLECTION
#define API_NAME_MAX_CHARS 128 /* a room's display name */

/* A room as the gateway sees it: no `rooms` document is a public room (or a dm: room), one of
 * kind private a private room, a tombstone a room that is gone. */
typedef enum api_room_kind {
    API_ROOM_PUBLIC,
    API_ROOM_PRIVATE,
    API_ROOM_DELETED,
} api_room_kind_t;

/* A `rooms` document read back. */
typedef struct api_room {
    api_room_kind_t kind;
    char name[API_NAME_MAX_CHARS * 4 + 1]; /* "" if none */
    int64_t created;
} api_room_t;

/* Reads tenant/room's document into *out (kind public when there is none). A MongoDB failure's
 * code otherwise (logged). */
chat_err_t api_room_read(api_ctx_t *ctx, const char *tenant, const char *room, api_room_t *out);

/* Reads req->params[0] as a room name and its document into *r: false (answered 400, 404 or
 * 5xx) unless it is a private room that exists. */
bool api_private_room(const api_req_t *req, api_resp_t *resp, api_room_t *r);

/* The room's latest seq from its Redis summary, 0 if it has none. CHAT_ERR_REDIS when Redis
 * cannot answer. */
chat_err_t api_room_seq(api_ctx_t *ctx, const char *tenant, const char *room, int64_t *seq);

/* True if name is a valid display name: valid UTF-8, no control characters, at most
 * API_NAME_MAX_CHARS characters. */
bool api_room_name_valid(const char *name);

/* The most members a room of tenant may have: the tenant's settings (limits.members_per_room)
 * or ctx->max_members. */
long api_members_limit(api_ctx_t *ctx, const char *tenant);

/* The number of members of tenant/room into *count. */
chat_err_t api_members_count(api_ctx_t *ctx, const char *tenant, const char *room, int64_t *count);

/* Adds the n users to tenant/room (private, display name name or NULL): `members`, their
 * `user_rooms` entries (kind private) and their Redis sets of known rooms. added[i] tells
 * whether users[i] was not a member before (only those need a notice). Returns the first
 * failure; what was written before it stays. */
chat_err_t api_members_add(api_ctx_t *ctx, const char *tenant, const char *room, const char *name,
                           const char *const *users, size_t n, bool *added);

/* SADD (add true) or SREM of room in each of the n users' Redis sets of known rooms,
 * pipelined. CHAT_ERR_REDIS when Redis cannot answer. */
chat_err_t api_known_rooms_write(api_ctx_t *ctx, const char *tenant, const char *room,
                                 const char *const *users, size_t n, bool add);

/* Runs a find on collection (opts may be NULL) and calls each(doc, ud) for every document
 * until it returns false; doc is valid during the call only. Returns true, or false with
 * *error set when the find failed (nothing logged: the caller says what failed). */
bool api_find_each(api_ctx_t *ctx, const char *collection, const bson_t *filter, const bson_t *opts,
                   bool (*each)(const bson_t *doc, void *ud), void *ud, bson_error_t *error);

/* Adds {key: {$gt: after}} to filter unless after is empty: a list page after a cursor. */
void api_filter_after(bson_t *filter, const char *key, const char *after);

/* A list page in key order being filled: up to limit items, more once one is left over, last
 * (the caller's buffer of last_len bytes) the key of the last item taken. */
typedef struct api_page {
    int limit, count;
    bool more;
    char *last;
    size_t last_len;
} api_page_t;

/* Whether the item with key goes on the page: true (counted, its key kept as last), or false
 * once the page is full (more is set and the caller stops). */
bool api_page_take(api_page_t *p, const char *key);

/* Adds "next" to body: the cursor after the last key when more is left, else null (also when
 * the cursor cannot be encoded). */
void api_page_next(cJSON *body, const api_page_t *p);

/* Reads a body field that is an array of user ids (1..max entries unless empty_ok, each a
 * valid user id other than "system", duplicates dropped) into *users (a malloc'd array of
 * borrowed strings, *n of them; the caller frees the array). Answers 400 itself and returns
 * false otherwise; absent with required false gives *n = 0. */
bool api_body_users(const api_req_t *req, api_resp_t *resp, const char *field, bool required,
                    size_t max, const char ***users, size_t *n);

#endif
