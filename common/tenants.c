/* Reads and writes tenant documents. */
#include "common/tenants.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/log.h"
#include "common/names.h"

#define TENANTS_COLLECTION "tenants"

chat_err_t chat_tenant_put(chat_store_t *s, const char *id, const char *secret, const char *name)
{
    if (!chat_name_tenant_valid(id) || secret == NULL || secret[0] == '\0')
        return CHAT_ERR_INVALID;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    bson_t *selector = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *update = bson_new();
    bson_t set, on_insert;
    BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
    BSON_APPEND_UTF8(&set, "secret", secret);
    if (name != NULL)
        BSON_APPEND_UTF8(&set, "name", name);
    bson_append_document_end(update, &set);
    BSON_APPEND_DOCUMENT_BEGIN(update, "$setOnInsert", &on_insert);
    BSON_APPEND_DATE_TIME(&on_insert, "created", (int64_t)tv.tv_sec * 1000);
    bson_append_document_end(update, &on_insert);
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    mongoc_client_t *client = chat_store_acquire(s);
    mongoc_collection_t *coll = chat_store_collection(s, client, TENANTS_COLLECTION);
    bson_error_t error;
    chat_err_t rc = CHAT_OK;
    if (!mongoc_collection_update_one(coll, selector, update, opts, NULL, &error)) {
        rc = chat_store_err(&error);
        chat_log_error("tenant not stored", CHAT_F_STR("tenant", id),
                       CHAT_F_INT("code", error.code), CHAT_F_STR("reason", error.message));
    }
    mongoc_collection_destroy(coll);
    chat_store_release(s, client);
    bson_destroy(opts);
    bson_destroy(update);
    bson_destroy(selector);
    return rc;
}

chat_err_t chat_tenant_secret(chat_store_t *s, const char *id, char **secret, size_t *len)
{
    *secret = NULL;
    *len = 0;
    if (!chat_name_tenant_valid(id))
        return CHAT_ERR_NOT_FOUND;
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    mongoc_client_t *client = chat_store_acquire(s);
    mongoc_collection_t *coll = chat_store_collection(s, client, TENANTS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
    const bson_t *doc;
    chat_err_t rc = CHAT_ERR_NOT_FOUND;
    if (mongoc_cursor_next(cur, &doc)) {
        bson_iter_t it;
        uint32_t n = 0;
        if (bson_iter_init_find(&it, doc, "secret") && BSON_ITER_HOLDS_UTF8(&it)) {
            const char *value = bson_iter_utf8(&it, &n);
            if (n > 0 && (*secret = malloc(n + 1)) == NULL) {
                rc = CHAT_ERR_NOMEM;
            } else if (n > 0) {
                memcpy(*secret, value, n + 1);
                *len = n;
                rc = CHAT_OK;
            }
        }
    }
    bson_error_t error;
    if (mongoc_cursor_error(cur, &error)) {
        rc = chat_store_err(&error);
        if (rc == CHAT_ERR_NOT_FOUND)
            rc = CHAT_ERR_MONGO;
        chat_log_error("tenant lookup failed", CHAT_F_STR("tenant", id),
                       CHAT_F_INT("code", error.code), CHAT_F_STR("reason", error.message));
        free(*secret);
        *secret = NULL;
        *len = 0;
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(coll);
    chat_store_release(s, client);
    bson_destroy(filter);
    return rc;
}
