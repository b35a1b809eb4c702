/* Room kinds and membership from MongoDB (see room_access.h). Both documents are found by
 * their _id ("<tenant>/<room>" and "<tenant>/<room>/<user>", docs/server-api.md): a lone _id
 * is the one filter FerretDB answers without reading the whole collection. */
#include "services/gateway/room_access.h"

#include <stdio.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/names.h"

/* Size of "<tenant>/<room>/<user>" of valid names and its NUL. */

/* Finds the document with _id id in collection; *doc is a copy (bson_destroy) or NULL if
 * there is none. */
static chat_err_t find_by_id(chat_store_t *st, mongoc_client_t *client, const char *collection,
                             const char *id, const char *const *fields, bson_t **doc)
{
    *doc = NULL;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t opts = BSON_INITIALIZER, projection;
    BSON_APPEND_INT64(&opts, "limit", 1);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &projection);
    for (; fields != NULL && *fields != NULL; fields++)
        BSON_APPEND_INT32(&projection, *fields, 1);
    bson_append_document_end(&opts, &projection);
    mongoc_collection_t *coll = chat_store_collection(st, client, collection);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, &opts, NULL);
    const bson_t *found;
    if (mongoc_cursor_next(cur, &found))
        *doc = bson_copy(found);
    bson_error_t error;
    chat_err_t rc = CHAT_OK;
    if (mongoc_cursor_error(cur, &error)) {
        chat_log_error("mongodb read failed", CHAT_F_STR("collection", collection),
                       CHAT_F_STR("id", id), CHAT_F_INT("code", error.code),
                       CHAT_F_STR("reason", error.message));
        rc = chat_store_err(&error);
        bson_destroy(*doc);
        *doc = NULL;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    bson_destroy(&opts);
    bson_destroy(filter);
    return rc;
}

chat_err_t gw_access_room_kind(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                               const char *room, gw_room_kind_t *kind, bool *gone)
{
    static const char *const fields[] = {"kind", "deleted", NULL};
    *kind = GW_ROOM_KIND_PUBLIC;
    *gone = false;
    char id[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, id, sizeof id) < 0)
        return CHAT_ERR_INVALID;
    bson_t *doc = NULL;
    chat_err_t err = find_by_id(st, client, GW_ROOMS_COLLECTION, id, fields, &doc);
    if (err != CHAT_OK || doc == NULL)
        return err;
    const char *k = chat_bson_str(doc, "kind");
    if (k != NULL && strcmp(k, "private") == 0)
        *kind = GW_ROOM_KIND_PRIVATE;
    *gone = chat_bson_true(doc, "deleted");
    bson_destroy(doc);
    return CHAT_OK;
}

/* *member = user has a `members` document in tenant/room. */
static chat_err_t is_member(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                            const char *room, const char *user, bool *member)
{
    static const char *const fields[] = {"_id", NULL};
    *member = false;
    char id[CHAT_MEMBER_ID_MAX];
    if (chat_member_id(tenant, room, user, id, sizeof id) < 0)
        return CHAT_ERR_INVALID;
    bson_t *doc = NULL;
    chat_err_t err = find_by_id(st, client, GW_MEMBERS_COLLECTION, id, fields, &doc);
    *member = doc != NULL;
    bson_destroy(doc);
    return err;
}

chat_err_t gw_access_check(chat_store_t *st, const char *tenant, const char *room, const char *user,
                           gw_room_kind_t known, gw_room_kind_t *kind, gw_access_t *verdict)
{
    mongoc_client_t *client = chat_store_acquire(st);
    bool gone = false, member = false;
    chat_err_t err = CHAT_OK;
    *kind = known;
    if (known == GW_ROOM_KIND_UNKNOWN)
        err = gw_access_room_kind(st, client, tenant, room, kind, &gone);
    if (err == CHAT_OK && !gone && *kind == GW_ROOM_KIND_PRIVATE)
        err = is_member(st, client, tenant, room, user, &member);
    chat_store_release(st, client);
    if (err != CHAT_OK)
        return err;
    *verdict = gone                                       ? GW_ACCESS_GONE
               : *kind == GW_ROOM_KIND_PRIVATE && !member ? GW_ACCESS_NOT_MEMBER
                                                          : GW_ACCESS_OK;
    return CHAT_OK;
}

void gw_access_refusal(gw_access_t verdict, gw_code_t *code, const char **message)
{
    *code = verdict == GW_ACCESS_GONE ? GW_E_NOT_FOUND : GW_E_FORBIDDEN;
    *message = verdict == GW_ACCESS_GONE ? "room not found" : "not a member";
}
