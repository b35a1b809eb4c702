/* A message's reactions (see reactions.h): the change rule and the MongoDB array form. */
#include "common/reactions.h"

#include <string.h>

/* The user's entry in list, or NULL. */
static cJSON *user_in(const cJSON *list, const char *user)
{
    cJSON *u;
    cJSON_ArrayForEach(u, list)
    {
        if (cJSON_IsString(u) && strcmp(u->valuestring, user) == 0)
            return u;
    }
    return NULL;
}

chat_reactions_change_t chat_reactions_apply(cJSON *reactions, const char *emoji, const char *user,
                                             bool on, size_t max_emoji)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(reactions, emoji);
    cJSON *entry = list != NULL ? user_in(list, user) : NULL;
    if (!on) {
        if (entry == NULL)
            return CHAT_REACTIONS_UNCHANGED;
        cJSON_Delete(cJSON_DetachItemViaPointer(list, entry));
        if (list->child == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(reactions, emoji);
        return CHAT_REACTIONS_CHANGED;
    }
    if (entry != NULL)
        return CHAT_REACTIONS_UNCHANGED;
    if (list == NULL) {
        if ((size_t)cJSON_GetArraySize(reactions) >= max_emoji)
            return CHAT_REACTIONS_TOO_MANY;
        list = cJSON_AddArrayToObject(reactions, emoji);
        if (list == NULL)
            return CHAT_REACTIONS_NOMEM;
    }
    cJSON *u = cJSON_CreateString(user);
    if (u == NULL || !cJSON_AddItemToArray(list, u)) {
        cJSON_Delete(u);
        if (list->child == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(reactions, emoji);
        return CHAT_REACTIONS_NOMEM;
    }
    return CHAT_REACTIONS_CHANGED;
}

/* One {e, u} entry into out; false if malformed (skipped) or out of memory (*nomem). */
static bool entry_read(bson_iter_t *entry, cJSON *out, bool *nomem)
{
    bson_iter_t f, users;
    const char *emoji = NULL;
    bool has_users = false;
    if (!BSON_ITER_HOLDS_DOCUMENT(entry) || !bson_iter_recurse(entry, &f))
        return false;
    while (bson_iter_next(&f)) {
        if (strcmp(bson_iter_key(&f), "e") == 0 && BSON_ITER_HOLDS_UTF8(&f))
            emoji = bson_iter_utf8(&f, NULL);
        else if (strcmp(bson_iter_key(&f), "u") == 0 && BSON_ITER_HOLDS_ARRAY(&f))
            has_users = bson_iter_recurse(&f, &users);
    }
    if (emoji == NULL || !has_users || cJSON_GetObjectItemCaseSensitive(out, emoji) != NULL)
        return false;
    cJSON *list = cJSON_CreateArray();
    while (list != NULL && bson_iter_next(&users)) {
        if (!BSON_ITER_HOLDS_UTF8(&users))
            continue;
        cJSON *u = cJSON_CreateString(bson_iter_utf8(&users, NULL));
        if (u == NULL || !cJSON_AddItemToArray(list, u)) {
            cJSON_Delete(u);
            cJSON_Delete(list);
            list = NULL;
        }
    }
    if (list == NULL || list->child == NULL || !cJSON_AddItemToObject(out, emoji, list)) {
        *nomem = list == NULL;
        cJSON_Delete(list);
        return false;
    }
    return true;
}

cJSON *chat_reactions_from_bson(const bson_iter_t *it)
{
    bson_iter_t arr;
    if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &arr))
        return NULL;
    cJSON *out = cJSON_CreateObject();
    bool nomem = false;
    while (out != NULL && !nomem && bson_iter_next(&arr))
        entry_read(&arr, out, &nomem);
    if (nomem) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

bool chat_reactions_to_bson(bson_t *doc, const char *key, const cJSON *reactions)
{
    bson_t arr;
    if (!cJSON_IsObject(reactions) || !BSON_APPEND_ARRAY_BEGIN(doc, key, &arr))
        return false;
    uint32_t i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, reactions)
    {
        char idx[16];
        const char *ikey;
        bson_uint32_to_string(i++, &ikey, idx, sizeof idx);
        bson_t entry, users;
        bool ok = cJSON_IsArray(r) && BSON_APPEND_DOCUMENT_BEGIN(&arr, ikey, &entry) &&
                  BSON_APPEND_UTF8(&entry, "e", r->string) &&
                  BSON_APPEND_ARRAY_BEGIN(&entry, "u", &users);
        uint32_t j = 0;
        const cJSON *u;
        cJSON_ArrayForEach(u, r)
        {
            char uidx[16];
            const char *ukey;
            bson_uint32_to_string(j++, &ukey, uidx, sizeof uidx);
            ok = ok && cJSON_IsString(u) && BSON_APPEND_UTF8(&users, ukey, u->valuestring);
        }
        /* On failure doc is left half-built: the caller discards it. */
        if (!ok || !bson_append_array_end(&entry, &users) ||
            !bson_append_document_end(&arr, &entry))
            return false;
    }
    return bson_append_array_end(doc, &arr);
}
