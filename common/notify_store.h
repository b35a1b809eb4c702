/* What notifications know about users, shared by the gateway (writes subscriptions and
 * preferences from client frames, keeps the users it holds online), the api (email addresses,
 * erasure, reads) and notify (reads; drops dead subscriptions): docs/notify.md, "MongoDB
 * collections" and "Who is notified". Blocking calls: worker or request threads. */
#ifndef CHAT_COMMON_NOTIFY_STORE_H
#define CHAT_COMMON_NOTIFY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/redis.h"
#include "common/store.h"

#define CHAT_PUSH_SUBS_COLLECTION "push_subscriptions"
#define CHAT_PUSH_PREFS_COLLECTION "push_prefs"
#define CHAT_USER_CONTACTS_COLLECTION "user_contacts"
#define CHAT_WEBHOOKS_COLLECTION "webhooks"

#define CHAT_PUSH_SUBS_PER_USER 10    /* a user's 11th subscription drops the oldest */
#define CHAT_PUSH_ENDPOINT_MAX 2048   /* characters of a push endpoint URL */
#define CHAT_PUSH_PREFS_ALL_ROOMS "*" /* the room of a preference for every room */

/* The indexes of the four collections ({tenant, user} on the first three, {tenant} on
 * webhooks), for chat_store_ensure_indexes by the services that create them at start. */
extern const chat_store_index_t chat_notify_store_indexes[];
extern const size_t chat_notify_store_nindexes;

/* ---- push subscriptions ---- */

typedef struct chat_push_sub {
    char *id; /* "<tenant>/<user>/<32 hex of SHA-256(endpoint)>" */
    char *endpoint;
    char *p256dh; /* base64url, as the browser gave it */
    char *auth;
    int64_t created; /* ms */
} chat_push_sub_t;

/* Stores (or renews: same endpoint, same id) a subscription of tenant/user, then drops the
 * user's oldest while they have more than CHAT_PUSH_SUBS_PER_USER. The caller has validated
 * the endpoint (common/egress.h) and keys (common/webpush.h). */
chat_err_t chat_push_sub_put(chat_store_t *st, const char *tenant, const char *user,
                             const char *endpoint, const char *p256dh, const char *auth,
                             int64_t now_ms);

/* Removes tenant/user's subscription of endpoint (no error if there is none). */
chat_err_t chat_push_sub_delete(chat_store_t *st, const char *tenant, const char *user,
                                const char *endpoint);

/* Removes one subscription by id (notify, on 404/410). */
chat_err_t chat_push_sub_delete_id(chat_store_t *st, const char *id);

/* tenant/user's subscriptions, newest first: *subs (malloc'd, *n entries; free with
 * chat_push_subs_free). */
chat_err_t chat_push_subs_list(chat_store_t *st, const char *tenant, const char *user,
                               chat_push_sub_t **subs, size_t *n);
void chat_push_subs_free(chat_push_sub_t *subs, size_t n);

/* ---- preferences ---- */

typedef enum chat_push_mode {
    CHAT_PUSH_MODE_DEFAULT = 0, /* nothing stored */
    CHAT_PUSH_MODE_ALL,
    CHAT_PUSH_MODE_MENTIONS, /* mentions of the user, and dms */
    CHAT_PUSH_MODE_NONE,
} chat_push_mode_t;

/* "all" | "mentions" | "none" -> the mode; CHAT_PUSH_MODE_DEFAULT for anything else. */
chat_push_mode_t chat_push_mode_parse(const char *s);
const char *chat_push_mode_name(chat_push_mode_t m); /* "default" for DEFAULT */

/* Sets tenant/user's mode for room (CHAT_PUSH_PREFS_ALL_ROOMS: every room);
 * CHAT_PUSH_MODE_DEFAULT removes the stored preference. */
chat_err_t chat_push_pref_set(chat_store_t *st, const char *tenant, const char *user,
                              const char *room, chat_push_mode_t mode, int64_t now_ms);

/* The mode in effect for each of the n users in tenant/room, one query: the room's own
 * preference, else the user's "*", else the default for the room's kind (kind "public" ->
 * MENTIONS; "dm" and "private" -> ALL). modes: n entries, caller-provided. */
chat_err_t chat_push_prefs_effective(chat_store_t *st, const char *tenant, const char *room,
                                     const char *kind, const char *const *users, size_t n,
                                     chat_push_mode_t *modes);

/* ---- contacts ---- */

/* (common/notify_contacts.c from here to the erasure) */
/* Sets (email non-NULL) or clears (NULL) tenant/user's email address. */
chat_err_t chat_user_email_set(chat_store_t *st, const char *tenant, const char *user,
                               const char *email, int64_t now_ms);
/* tenant/user's address into *email (malloc'd), NULL if none. */
chat_err_t chat_user_email_get(chat_store_t *st, const char *tenant, const char *user,
                               char **email);

/* Erasure: every subscription, preference and contact of tenant/user. */
chat_err_t chat_notify_user_erase(chat_store_t *st, const char *tenant, const char *user);

/* ---- tenant configuration revisions ----
 * The Redis hash chat:notify:rev, field tenant: bumped (HINCRBY) by the api after any change
 * of the tenant's webhooks or settings; notify instances reload a tenant whose revision
 * changed. */
#define CHAT_NOTIFY_REV_KEY "chat:notify:rev"
chat_err_t chat_notify_rev_bump(chat_redis_t *r, const char *tenant);

/* ---- webhook event types (SERVER-API.md, "Events to the tenant") ---- */

typedef enum chat_webhook_event {
    CHAT_WH_MESSAGE_NEW = 1u << 0,          /* "message.new" */
    CHAT_WH_MESSAGE_UPDATED = 1u << 1,      /* "message.updated": edit, delete, react */
    CHAT_WH_MESSAGE_REMOVED = 1u << 2,      /* "message.removed": moderation */
    CHAT_WH_ROOM_MEMBER_ADDED = 1u << 3,    /* "room.member_added" */
    CHAT_WH_ROOM_MEMBER_REMOVED = 1u << 4,  /* "room.member_removed" */
    CHAT_WH_USER_OFFLINE_MESSAGE = 1u << 5, /* "user.offline_message" */
} chat_webhook_event_t;
#define CHAT_WH_EVENTS_ALL 0x3fu

/* The bit of an event type name, 0 for an unknown one; the name of one bit, NULL if none. */
unsigned chat_webhook_event_parse(const char *name);
const char *chat_webhook_event_name(unsigned bit);

/* ---- who is online in a tenant (Redis) ----
 * chat:gw:<gateway id>:users, a hash per gateway: field "<tenant>/<user>", value the user's
 * authenticated connections on that gateway. */

/* Writes the key of gateway gw's hash into buf (at least 32 bytes). Returns its length. */
int chat_online_key(const char *gw, char *buf, size_t buflen);

/* Gateway: one more (delta +1) or one fewer (-1) connection of tenant/user; the field goes at
 * 0. One script, atomic. */
chat_err_t chat_online_add(chat_redis_t *r, const char *gw, const char *tenant, const char *user,
                           int delta);

/* Gateway: at start, DEL of its hash; at each heartbeat, PEXPIRE of it to ttl_ms. */
chat_err_t chat_online_reset(chat_redis_t *r, const char *gw);
chat_err_t chat_online_refresh(chat_redis_t *r, const char *gw, int64_t ttl_ms);

/* Notify: which of the n users of tenant are online on any gateway 0..gateways-1 (one
 * pipelined HMGET per gateway). online: n entries, caller-provided. */
chat_err_t chat_online_users(chat_redis_t *r, int gateways, const char *tenant,
                             const char *const *users, size_t n, bool *online);

#endif
