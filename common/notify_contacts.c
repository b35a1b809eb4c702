/* The users' contacts (`user_contacts`: the email address notify's digests go to), the erasure
 * of everything notifications keep of a user, and the revision bump that tells every notify
 * instance to reload a tenant's configuration (common/notify_store.h; docs/notify.md). Written
 * by the api; notify reads what it writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bson_fields.h"
#include "common/log.h"
#include "common/notify_store.h"

/* "<tenant>/<user>": the _id of a contact. NULL if out of memory. */
static char *contact_id(const char *tenant, const char *user)
{
    size_t len = strlen(tenant) + strlen(user) + 2;
    char *id = malloc(len);
    if (id != NULL)
        snprintf(id, len, "%s/%s", tenant, user);
    return id;
}

chat_err_t chat_user_email_set(chat_store_t *st, const char *tenant, const char *user,
                               const char *email, int64_t now_ms)
{
    char *id = contact_id(tenant, user);
    if (id == NULL)
        return CHAT_ERR_NOMEM;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    mongoc_client_t *client = chat_store_acquire(st);
    mongoc_collection_t *col = chat_store_collection(st, client, CHAT_USER_CONTACTS_COLLECTION);
    bson_error_t error;
    bool ok;
    if (email != NULL) {
        /* The whole document: a contact holds nothing else yet, and a replace needs no
         * operator the SQLite backend of FerretDB might treat differently. */
        bson_t *doc =
            BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user),
                     "email", BCON_UTF8(email), "updated", BCON_INT64(now_ms));
        bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
        ok = mongoc_collection_replace_one(col, filter, doc, opts, NULL, &error);
        bson_destroy(opts);
        bson_destroy(doc);
    } else {
        ok = mongoc_collection_delete_one(col, filter, NULL, NULL, &error);
    }
    chat_err_t err = CHAT_OK;
    if (!ok) {
        err = chat_store_err(&error);
        chat_log_warn("contact not written", CHAT_F_STR("tenant", tenant), CHAT_F_STR("user", user),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_collection_destroy(col);
    chat_store_release(st, client);
    bson_destroy(filter);
    free(id);
    return err;
}

chat_err_t chat_user_email_get(chat_store_t *st, const char *tenant, const char *user, char **email)
{
    *email = NULL;
    char *id = contact_id(tenant, user);
    if (id == NULL)
        return CHAT_ERR_NOMEM;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *doc = NULL;
    chat_err_t err = chat_store_find_one(st, CHAT_USER_CONTACTS_COLLECTION, filter, &doc);
    bson_destroy(filter);
    free(id);
    if (err == CHAT_ERR_NOT_FOUND)
        return CHAT_OK;
    if (err != CHAT_OK)
        return err;
    const char *e = chat_bson_str(doc, "email");
    if (e != NULL && (*email = strdup(e)) == NULL)
        err = CHAT_ERR_NOMEM;
    bson_destroy(doc);
    return err;
}

chat_err_t chat_notify_user_erase(chat_store_t *st, const char *tenant, const char *user)
{
    static const char *const collections[] = {CHAT_PUSH_SUBS_COLLECTION, CHAT_PUSH_PREFS_COLLECTION,
                                              CHAT_USER_CONTACTS_COLLECTION};
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(tenant), "user", BCON_UTF8(user));
    mongoc_client_t *client = chat_store_acquire(st);
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < sizeof collections / sizeof collections[0] && err == CHAT_OK; i++) {
        mongoc_collection_t *col = chat_store_collection(st, client, collections[i]);
        bson_error_t error;
        if (!mongoc_collection_delete_many(col, filter, NULL, NULL, &error)) {
            err = chat_store_err(&error);
            chat_log_warn("notification data of a user not erased",
                          CHAT_F_STR("collection", collections[i]), CHAT_F_STR("tenant", tenant),
                          CHAT_F_STR("user", user), CHAT_F_INT("code", error.code),
                          CHAT_F_STR("error", error.message));
        }
        mongoc_collection_destroy(col);
    }
    chat_store_release(st, client);
    bson_destroy(filter);
    return err;
}

chat_err_t chat_notify_rev_bump(chat_redis_t *r, const char *tenant)
{
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command(r, &err, "HINCRBY %s %s 1", CHAT_NOTIFY_REV_KEY, tenant);
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}
