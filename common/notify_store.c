/* Push subscriptions and preferences in MongoDB, the webhook event names, and the gateways'
 * online hashes in Redis (notify_store.h; docs/notify.md). FerretDB evaluates every filter by
 * scanning the collection, so each call keeps to one query where it can: a put is an upsert
 * and one find of what is over the limit, the effective preferences of a batch one find. */
#include "common/notify_store.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "common/log.h"
#include "common/names.h"
#include "common/strmap.h"

/* "<tenant>/<user>/<32 hex>" or "<tenant>/<user>/<room>", with its NUL; user ids are up to 64
 * characters of UTF-8, so up to 4 bytes each. */
#define NS_USER_BYTES (CHAT_USER_MAX * 4)
#define NS_ID_MAX (CHAT_TENANT_MAX + NS_USER_BYTES + CHAT_ROOM_MAX + 3)
#define NS_SUB_HASH_HEX 32
/* "<tenant>/<user>", a field of an online hash. */
#define NS_FIELD_MAX (CHAT_TENANT_MAX + NS_USER_BYTES + 2)
#define NS_ONLINE_KEY_MAX (CHAT_ENDPOINT_ID_MAX_CHARS * 4 + 32)

const chat_store_index_t chat_notify_store_indexes[] = {
    {CHAT_PUSH_SUBS_COLLECTION, "tenant_user", false, {"tenant", "user", NULL}},
    {CHAT_PUSH_PREFS_COLLECTION, "tenant_user", false, {"tenant", "user", NULL}},
    {CHAT_USER_CONTACTS_COLLECTION, "tenant_user", false, {"tenant", "user", NULL}},
    {CHAT_WEBHOOKS_COLLECTION, "tenant", false, {"tenant", NULL}},
};
const size_t chat_notify_store_nindexes =
    sizeof chat_notify_store_indexes / sizeof chat_notify_store_indexes[0];

/* True for a tenant and user that may form an id (names.h); the store refuses anything else
 * rather than write a document nobody can find again. */
static bool ns_owner_valid(const char *tenant, const char *user)
{
    return chat_name_tenant_valid(tenant) && chat_name_user_valid(user);
}

/* Writes tenant/user/<32 hex of SHA-256(endpoint)> into buf (NS_ID_MAX). Returns false if the
 * names or the endpoint are not acceptable. */
static bool ns_sub_id(const char *tenant, const char *user, const char *endpoint, char *buf,
                      size_t len)
{
    if (!ns_owner_valid(tenant, user) || endpoint == NULL || endpoint[0] == '\0' ||
        strlen(endpoint) > CHAT_PUSH_ENDPOINT_MAX)
        return false;
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)endpoint, strlen(endpoint), md);
    char hex[NS_SUB_HASH_HEX + 1];
    for (int i = 0; i < NS_SUB_HASH_HEX / 2; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    int n = snprintf(buf, len, "%s/%s/%s", tenant, user, hex);
    return n > 0 && (size_t)n < len;
}

/* Writes tenant/user/room into buf. Returns false if a name is not acceptable. */
static bool ns_pref_id(const char *tenant, const char *user, const char *room, char *buf,
                       size_t len)
{
    if (!ns_owner_valid(tenant, user) || room == NULL ||
        (strcmp(room, CHAT_PUSH_PREFS_ALL_ROOMS) != 0 && !chat_name_room_valid(room)))
        return false;
    int n = snprintf(buf, len, "%s/%s/%s", tenant, user, room);
    return n > 0 && (size_t)n < len;
}

/* Logs a failed operation on collection and maps the driver's error. */
static chat_err_t ns_fail(const char *what, const char *collection, const char *tenant,
                          const char *user, const bson_error_t *error)
{
    chat_log_error(what, CHAT_F_STR("collection", collection), CHAT_F_STR("tenant", tenant),
                   CHAT_F_STR("user", user), CHAT_F_INT("code", error->code),
                   CHAT_F_STR("error", error->message));
    chat_err_t err = chat_store_err(error);
    return err == CHAT_OK || err == CHAT_ERR_DUPLICATE ? CHAT_ERR_MONGO : err;
}

/* Upserts the document of _id id in collection with the fields of set. */
static chat_err_t ns_upsert(chat_store_t *st, const char *collection, const char *id,
                            const bson_t *set, const char *tenant, const char *user)
{
    bson_t *selector = BCON_NEW("_id", BCON_UTF8(id));
    bson_t update = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT(&update, "$set", set);
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *col = chat_store_collection(st, client, collection);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_update_one(col, selector, &update, opts, NULL, &error))
        err = ns_fail("mongo upsert failed", collection, tenant, user, &error);
    mongoc_collection_destroy(col);
    chat_store_release(st, client);
    bson_destroy(opts);
    bson_destroy(&update);
    bson_destroy(selector);
    return err;
}

/* Deletes what filter matches in collection (one document unless many). */
static chat_err_t ns_delete(chat_store_t *st, const char *collection, const bson_t *filter,
                            bool many, const char *tenant, const char *user)
{
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *col = chat_store_collection(st, client, collection);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    bool ok = many ? mongoc_collection_delete_many(col, filter, NULL, NULL, &error)
                   : mongoc_collection_delete_one(col, filter, NULL, NULL, &error);
    if (!ok)
        err = ns_fail("mongo delete failed", collection, tenant, user, &error);
    mongoc_collection_destroy(col);
    chat_store_release(st, client);
    return err;
}

/* ---- push subscriptions ---- */

/* Deletes tenant/user's subscriptions beyond the newest CHAT_PUSH_SUBS_PER_USER: one find of
 * the surplus ids (sorted newest first, skipping the ones kept), then one delete if any. */
static chat_err_t ns_subs_trim(chat_store_t *st, const char *tenant, const char *user)
{
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user));
    bson_t *opts = BCON_NEW("projection", "{", "_id", BCON_INT32(1), "}", "sort", "{", "created",
                            BCON_INT32(-1), "_id", BCON_INT32(-1), "}", "skip",
                            BCON_INT64(CHAT_PUSH_SUBS_PER_USER));
    bson_t ids = BSON_INITIALIZER, in;
    BSON_APPEND_ARRAY_BEGIN(&ids, "$in", &in);
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_PUSH_SUBS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    size_t n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        if (!bson_iter_init_find(&it, doc, "_id") || !BSON_ITER_HOLDS_UTF8(&it))
            continue;
        char key[24];
        const char *k;
        bson_uint32_to_string((uint32_t)n++, &k, key, sizeof key);
        bson_append_utf8(&in, k, -1, bson_iter_utf8(&it, NULL), -1);
    }
    bson_append_array_end(&ids, &in);
    bson_error_t error;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_error(cur, &error))
        err = ns_fail("mongo find of push subscriptions failed", CHAT_PUSH_SUBS_COLLECTION, tenant,
                      user, &error);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(col);
    chat_store_release(st, client);
    if (err == CHAT_OK && n > 0) {
        bson_t del = BSON_INITIALIZER;
        BSON_APPEND_DOCUMENT(&del, "_id", &ids);
        err = ns_delete(st, CHAT_PUSH_SUBS_COLLECTION, &del, true, tenant, user);
        bson_destroy(&del);
    }
    bson_destroy(&ids);
    bson_destroy(opts);
    bson_destroy(filter);
    return err;
}

/* A renewal sets created again: the browser that subscribes again is in use, so it is the
 * last one the limit should drop. */
chat_err_t chat_push_sub_put(chat_store_t *st, const char *tenant, const char *user,
                             const char *endpoint, const char *p256dh, const char *auth,
                             int64_t now_ms)
{
    char id[NS_ID_MAX];
    if (st == NULL || p256dh == NULL || auth == NULL ||
        !ns_sub_id(tenant, user, endpoint, id, sizeof id))
        return CHAT_ERR_INVALID;
    bson_t set = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&set, "tenant", tenant);
    BSON_APPEND_UTF8(&set, "user", user);
    BSON_APPEND_UTF8(&set, "endpoint", endpoint);
    BSON_APPEND_UTF8(&set, "p256dh", p256dh);
    BSON_APPEND_UTF8(&set, "auth", auth);
    BSON_APPEND_INT64(&set, "created", now_ms);
    chat_err_t err = ns_upsert(st, CHAT_PUSH_SUBS_COLLECTION, id, &set, tenant, user);
    bson_destroy(&set);
    return err == CHAT_OK ? ns_subs_trim(st, tenant, user) : err;
}

chat_err_t chat_push_sub_delete(chat_store_t *st, const char *tenant, const char *user,
                                const char *endpoint)
{
    char id[NS_ID_MAX];
    if (st == NULL || !ns_sub_id(tenant, user, endpoint, id, sizeof id))
        return CHAT_ERR_INVALID;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    chat_err_t err = ns_delete(st, CHAT_PUSH_SUBS_COLLECTION, filter, false, tenant, user);
    bson_destroy(filter);
    return err;
}

chat_err_t chat_push_sub_delete_id(chat_store_t *st, const char *id)
{
    if (st == NULL || id == NULL || id[0] == '\0')
        return CHAT_ERR_INVALID;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    chat_err_t err = ns_delete(st, CHAT_PUSH_SUBS_COLLECTION, filter, false, "", id);
    bson_destroy(filter);
    return err;
}

/* A malloc'd copy of the string field key of doc, "" if absent; NULL if out of memory. */
static char *ns_dup_field(const bson_t *doc, const char *key)
{
    bson_iter_t it;
    const char *s = bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it)
                        ? bson_iter_utf8(&it, NULL)
                        : "";
    return strdup(s);
}

void chat_push_subs_free(chat_push_sub_t *subs, size_t n)
{
    if (subs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(subs[i].id);
        free(subs[i].endpoint);
        free(subs[i].p256dh);
        free(subs[i].auth);
    }
    free(subs);
}

chat_err_t chat_push_subs_list(chat_store_t *st, const char *tenant, const char *user,
                               chat_push_sub_t **subs, size_t *n)
{
    *subs = NULL;
    *n = 0;
    if (st == NULL || !ns_owner_valid(tenant, user))
        return CHAT_ERR_INVALID;
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user));
    bson_t *opts = BCON_NEW("sort", "{", "created", BCON_INT32(-1), "_id", BCON_INT32(-1), "}");
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_PUSH_SUBS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    chat_push_sub_t *out = NULL;
    size_t count = 0, cap = 0;
    chat_err_t err = CHAT_OK;
    const bson_t *doc;
    while (err == CHAT_OK && mongoc_cursor_next(cur, &doc)) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : CHAT_PUSH_SUBS_PER_USER + 1;
            chat_push_sub_t *grown = realloc(out, ncap * sizeof *out);
            if (grown == NULL) {
                err = CHAT_ERR_NOMEM;
                break;
            }
            out = grown;
            cap = ncap;
        }
        chat_push_sub_t *s = &out[count++];
        s->id = ns_dup_field(doc, "_id");
        s->endpoint = ns_dup_field(doc, "endpoint");
        s->p256dh = ns_dup_field(doc, "p256dh");
        s->auth = ns_dup_field(doc, "auth");
        bson_iter_t it;
        s->created = bson_iter_init_find(&it, doc, "created") ? bson_iter_as_int64(&it) : 0;
        if (s->id == NULL || s->endpoint == NULL || s->p256dh == NULL || s->auth == NULL)
            err = CHAT_ERR_NOMEM;
    }
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cur, &error))
        err = ns_fail("mongo find of push subscriptions failed", CHAT_PUSH_SUBS_COLLECTION, tenant,
                      user, &error);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(col);
    chat_store_release(st, client);
    bson_destroy(opts);
    bson_destroy(filter);
    if (err != CHAT_OK) {
        chat_push_subs_free(out, count);
        return err;
    }
    *subs = out;
    *n = count;
    return CHAT_OK;
}

/* ---- preferences ---- */

static const char *const ns_mode_names[] = {
    [CHAT_PUSH_MODE_DEFAULT] = "default",
    [CHAT_PUSH_MODE_ALL] = "all",
    [CHAT_PUSH_MODE_MENTIONS] = "mentions",
    [CHAT_PUSH_MODE_NONE] = "none",
};

chat_push_mode_t chat_push_mode_parse(const char *s)
{
    if (s == NULL)
        return CHAT_PUSH_MODE_DEFAULT;
    for (int m = CHAT_PUSH_MODE_ALL; m <= CHAT_PUSH_MODE_NONE; m++)
        if (strcmp(s, ns_mode_names[m]) == 0)
            return (chat_push_mode_t)m;
    return CHAT_PUSH_MODE_DEFAULT;
}

const char *chat_push_mode_name(chat_push_mode_t m)
{
    return (int)m >= CHAT_PUSH_MODE_ALL && m <= CHAT_PUSH_MODE_NONE ? ns_mode_names[m]
                                                                    : ns_mode_names[0];
}

chat_err_t chat_push_pref_set(chat_store_t *st, const char *tenant, const char *user,
                              const char *room, chat_push_mode_t mode, int64_t now_ms)
{
    char id[NS_ID_MAX];
    if (st == NULL || !ns_pref_id(tenant, user, room, id, sizeof id) ||
        (int)mode < CHAT_PUSH_MODE_DEFAULT || mode > CHAT_PUSH_MODE_NONE)
        return CHAT_ERR_INVALID;
    if (mode == CHAT_PUSH_MODE_DEFAULT) {
        bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
        chat_err_t err = ns_delete(st, CHAT_PUSH_PREFS_COLLECTION, filter, false, tenant, user);
        bson_destroy(filter);
        return err;
    }
    bson_t set = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&set, "tenant", tenant);
    BSON_APPEND_UTF8(&set, "user", user);
    BSON_APPEND_UTF8(&set, "room", room);
    BSON_APPEND_UTF8(&set, "mode", chat_push_mode_name(mode));
    BSON_APPEND_INT64(&set, "updated", now_ms);
    chat_err_t err = ns_upsert(st, CHAT_PUSH_PREFS_COLLECTION, id, &set, tenant, user);
    bson_destroy(&set);
    return err;
}

/* The mode of a room without a stored preference: a busy public room would notify everyone
 * who ever joined it, so public rooms (and kinds this code does not know) notify mentions. */
static chat_push_mode_t ns_default_mode(const char *room, const char *kind)
{
    if (kind != NULL && (strcmp(kind, "dm") == 0 || strcmp(kind, "private") == 0))
        return CHAT_PUSH_MODE_ALL;
    if (kind == NULL && chat_room_is_dm(room))
        return CHAT_PUSH_MODE_ALL;
    return CHAT_PUSH_MODE_MENTIONS;
}

/* Appends the ids of user's room and every-room preferences to the $in array arr. */
static bool ns_append_pref_ids(bson_t *arr, size_t *k, const char *tenant, const char *user,
                               const char *room)
{
    const char *rooms[2] = {room, CHAT_PUSH_PREFS_ALL_ROOMS};
    for (int r = 0; r < 2; r++) {
        char id[NS_ID_MAX], key[24];
        const char *kstr;
        if (!ns_pref_id(tenant, user, rooms[r], id, sizeof id))
            return false;
        bson_uint32_to_string((uint32_t)(*k)++, &kstr, key, sizeof key);
        if (!bson_append_utf8(arr, kstr, -1, id, -1))
            return false;
    }
    return true;
}

/* One find over the _ids of the users' room and "*" preferences; the room's wins. Users that
 * are not valid ids get the default (no document can exist for them). */
chat_err_t chat_push_prefs_effective(chat_store_t *st, const char *tenant, const char *room,
                                     const char *kind, const char *const *users, size_t n,
                                     chat_push_mode_t *modes)
{
    if (n == 0)
        return CHAT_OK;
    if (st == NULL || users == NULL || modes == NULL || !chat_name_tenant_valid(tenant) ||
        room == NULL || !chat_name_room_valid(room))
        return CHAT_ERR_INVALID;
    chat_push_mode_t dflt = ns_default_mode(room, kind);
    /* Per distinct user: index + 1 of its first occurrence in users (0 is no entry). */
    chat_strmap_t *first = chat_strmap_new();
    chat_push_mode_t *room_mode = calloc(n, sizeof *room_mode);
    chat_push_mode_t *all_mode = calloc(n, sizeof *all_mode);
    bson_t filter = BSON_INITIALIZER, idq, in;
    chat_err_t err = first && room_mode && all_mode ? CHAT_OK : CHAT_ERR_NOMEM;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &idq);
    BSON_APPEND_ARRAY_BEGIN(&idq, "$in", &in);
    size_t k = 0;
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        if (!chat_name_user_valid(users[i]) || chat_strmap_get(first, users[i]) != NULL)
            continue;
        if (!chat_strmap_put(first, users[i], (void *)(uintptr_t)(i + 1)))
            err = CHAT_ERR_NOMEM;
        else if (!ns_append_pref_ids(&in, &k, tenant, users[i], room))
            err = CHAT_ERR_NOMEM;
    }
    bson_append_array_end(&idq, &in);
    bson_append_document_end(&filter, &idq);
    if (err == CHAT_OK && k > 0) {
        bson_t *opts = BCON_NEW("projection", "{", "user", BCON_INT32(1), "room", BCON_INT32(1),
                                "mode", BCON_INT32(1), "}");
        mongoc_client_t *client = chat_store_acquire(st);
        mongoc_collection_t *col = chat_store_collection(st, client, CHAT_PUSH_PREFS_COLLECTION);
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, &filter, opts, NULL);
        const bson_t *doc;
        while (mongoc_cursor_next(cur, &doc)) {
            bson_iter_t it;
            const char *u = NULL, *r = NULL, *m = NULL;
            if (bson_iter_init_find(&it, doc, "user") && BSON_ITER_HOLDS_UTF8(&it))
                u = bson_iter_utf8(&it, NULL);
            if (bson_iter_init_find(&it, doc, "room") && BSON_ITER_HOLDS_UTF8(&it))
                r = bson_iter_utf8(&it, NULL);
            if (bson_iter_init_find(&it, doc, "mode") && BSON_ITER_HOLDS_UTF8(&it))
                m = bson_iter_utf8(&it, NULL);
            uintptr_t at = u != NULL ? (uintptr_t)chat_strmap_get(first, u) : 0;
            if (at == 0 || r == NULL)
                continue;
            chat_push_mode_t mode = chat_push_mode_parse(m);
            if (strcmp(r, room) == 0)
                room_mode[at - 1] = mode;
            else if (strcmp(r, CHAT_PUSH_PREFS_ALL_ROOMS) == 0)
                all_mode[at - 1] = mode;
        }
        bson_error_t error;
        if (mongoc_cursor_error(cur, &error))
            err = ns_fail("mongo find of push preferences failed", CHAT_PUSH_PREFS_COLLECTION,
                          tenant, room, &error);
        mongoc_cursor_destroy(cur);
        mongoc_collection_destroy(col);
        chat_store_release(st, client);
        bson_destroy(opts);
    }
    if (err == CHAT_OK) {
        for (size_t i = 0; i < n; i++) {
            uintptr_t at = (uintptr_t)chat_strmap_get(first, users[i]);
            chat_push_mode_t mode = CHAT_PUSH_MODE_DEFAULT;
            if (at != 0)
                mode = room_mode[at - 1] != CHAT_PUSH_MODE_DEFAULT ? room_mode[at - 1]
                                                                   : all_mode[at - 1];
            modes[i] = mode != CHAT_PUSH_MODE_DEFAULT ? mode : dflt;
        }
    }
    bson_destroy(&filter);
    free(all_mode);
    free(room_mode);
    chat_strmap_free(first);
    return err;
}

/* ---- webhook event types ---- */

static const char *const ns_event_names[] = {
    "message.new",       "message.updated",     "message.removed",
    "room.member_added", "room.member_removed", "user.offline_message",
};

unsigned chat_webhook_event_parse(const char *name)
{
    if (name == NULL)
        return 0;
    for (unsigned i = 0; i < sizeof ns_event_names / sizeof ns_event_names[0]; i++)
        if (strcmp(name, ns_event_names[i]) == 0)
            return 1u << i;
    return 0;
}

const char *chat_webhook_event_name(unsigned bit)
{
    for (unsigned i = 0; i < sizeof ns_event_names / sizeof ns_event_names[0]; i++)
        if (bit == 1u << i)
            return ns_event_names[i];
    return NULL;
}

/* ---- who is online ---- */

/* KEYS[1] the gateway's hash, ARGV[1] the field, ARGV[2] the delta. A field never stays at 0
 * or below: readers take presence as "has the field", and a -1 that came without its +1 (a
 * hash deleted in between) must not leave a negative count for the next +1 to cancel. */
static const char add_script[] = "local v = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2]) "
                                 "if v <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end "
                                 "return v";

int chat_online_key(const char *gw, char *buf, size_t buflen)
{
    if (gw == NULL || gw[0] == '\0' || buf == NULL)
        return -1;
    int n = snprintf(buf, buflen, "chat:gw:%s:users", gw);
    return n > 0 && (size_t)n < buflen ? n : -1;
}

/* Writes "<tenant>/<user>" into buf. Returns its length, or -1. */
static int ns_online_field(const char *tenant, const char *user, char *buf, size_t len)
{
    if (!ns_owner_valid(tenant, user))
        return -1;
    int n = snprintf(buf, len, "%s/%s", tenant, user);
    return n > 0 && (size_t)n < len ? n : -1;
}

chat_err_t chat_online_add(chat_redis_t *r, const char *gw, const char *tenant, const char *user,
                           int delta)
{
    char key[NS_ONLINE_KEY_MAX], field[NS_FIELD_MAX], d[16];
    int klen = chat_online_key(gw, key, sizeof key);
    int flen = ns_online_field(tenant, user, field, sizeof field);
    if (r == NULL || klen < 0 || flen < 0 || delta == 0)
        return CHAT_ERR_INVALID;
    int dlen = snprintf(d, sizeof d, "%d", delta);
    const char *argv[] = {"EVAL", add_script, "1", key, field, d};
    size_t lens[] = {4, sizeof add_script - 1, 1, (size_t)klen, (size_t)flen, (size_t)dlen};
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command_argv(r, &err, 6, argv, lens);
    if (reply == NULL) {
        chat_log_warn("online count not written", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("user", user), CHAT_F_INT("delta", delta), CHAT_F_ERR(err));
        return CHAT_ERR_REDIS;
    }
    freeReplyObject(reply);
    return CHAT_OK;
}

/* Runs one command on gw's hash: "DEL %s" or "PEXPIRE %s <ttl>". */
static chat_err_t ns_online_key_command(chat_redis_t *r, const char *gw, const char *cmd,
                                        int64_t ttl_ms)
{
    char key[NS_ONLINE_KEY_MAX];
    if (r == NULL || chat_online_key(gw, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    chat_err_t err = CHAT_OK;
    redisReply *reply = ttl_ms > 0 ? chat_redis_command(r, &err, "%s %s %" PRId64, cmd, key, ttl_ms)
                                   : chat_redis_command(r, &err, "%s %s", cmd, key);
    if (reply == NULL) {
        chat_log_warn("online hash not updated", CHAT_F_STR("key", key), CHAT_F_STR("cmd", cmd),
                      CHAT_F_ERR(err));
        return CHAT_ERR_REDIS;
    }
    freeReplyObject(reply);
    return CHAT_OK;
}

chat_err_t chat_online_reset(chat_redis_t *r, const char *gw)
{
    return ns_online_key_command(r, gw, "DEL", 0);
}

chat_err_t chat_online_refresh(chat_redis_t *r, const char *gw, int64_t ttl_ms)
{
    if (ttl_ms <= 0)
        return CHAT_ERR_INVALID;
    return ns_online_key_command(r, gw, "PEXPIRE", ttl_ms);
}

/* One HMGET of every user's field per gateway, pipelined; a user is online if any value is a
 * positive count. Users that are not valid ids ask for an empty field, which never exists. */
chat_err_t chat_online_users(chat_redis_t *r, int gateways, const char *tenant,
                             const char *const *users, size_t n, bool *online)
{
    if (n == 0)
        return CHAT_OK;
    if (r == NULL || users == NULL || online == NULL || gateways < 0 || n > INT_MAX - 2 ||
        !chat_name_tenant_valid(tenant))
        return CHAT_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        online[i] = false;
    if (gateways == 0)
        return CHAT_OK;
    const char **argv = calloc(n + 2, sizeof *argv);
    size_t *lens = calloc(n + 2, sizeof *lens);
    char *fields = calloc(n, NS_FIELD_MAX);
    chat_err_t err = argv && lens && fields ? CHAT_OK : CHAT_ERR_NOMEM;
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        char *f = fields + i * NS_FIELD_MAX;
        int len = ns_online_field(tenant, users[i], f, NS_FIELD_MAX);
        argv[i + 2] = f;
        lens[i + 2] = len > 0 ? (size_t)len : 0;
    }
    char key[NS_ONLINE_KEY_MAX];
    int queued = 0;
    if (err == CHAT_OK) {
        argv[0] = "HMGET";
        lens[0] = 5;
        argv[1] = key;
    }
    for (int g = 0; err == CHAT_OK && g < gateways; g++) {
        char gw[16];
        snprintf(gw, sizeof gw, "%d", g);
        lens[1] = (size_t)chat_online_key(gw, key, sizeof key);
        err = chat_redis_append_argv(r, (int)(n + 2), argv, lens);
        if (err == CHAT_OK)
            queued++;
    }
    /* Every queued reply is read, even after a failure, so that none is left pending on the
     * connection (after a lost connection the reads fail at once). */
    chat_err_t rerr = CHAT_OK;
    for (int q = 0; q < queued; q++) {
        redisReply *reply = NULL;
        chat_err_t e = chat_redis_reply(r, &reply);
        if (e != CHAT_OK || reply == NULL) {
            rerr = CHAT_ERR_REDIS;
        } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != n) {
            chat_log_warn("unexpected reply to HMGET of an online hash",
                          CHAT_F_STR("tenant", tenant), CHAT_F_INT("type", reply->type));
            rerr = CHAT_ERR_REDIS;
        } else {
            for (size_t i = 0; i < n; i++) {
                const redisReply *v = reply->element[i];
                if (v->type == REDIS_REPLY_STRING && strtoll(v->str, NULL, 10) > 0)
                    online[i] = true;
            }
        }
        if (reply != NULL)
            freeReplyObject(reply);
    }
    free(fields);
    free(lens);
    free(argv);
    if (err == CHAT_OK)
        err = rerr;
    if (err != CHAT_OK)
        chat_log_warn("online users not read", CHAT_F_STR("tenant", tenant), CHAT_F_ERR(err));
    return err;
}
