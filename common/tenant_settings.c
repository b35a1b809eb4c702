/* A tenant's settings document (see tenant_settings.h): validation and merge (pure, unit
 * tested in tests/unit/common/test_tenant_settings.c), typed views, and the document's storage. */
#include "common/tenant_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "common/log.h"

/* One integer setting: its object, name, bounds and default. */
typedef struct int_setting {
    const char *group;
    const char *name;
    int64_t min, max, def;
} int_setting_t;

static const int_setting_t int_settings[] = {
    {"limits", "connections", 1, 1000000, 10000}, {"limits", "messages_per_s", 1, 100000, 1000},
    {"limits", "api_calls_per_s", 1, 10000, 100}, {"limits", "members_per_room", 1, 100000, 1000},
    {"limits", "rooms", 1, 1000000, 10000},       {"email", "digest_delay_s", 60, 86400, 600},
};
#define INT_SETTINGS (sizeof int_settings / sizeof int_settings[0])

static const int_setting_t *int_setting_find(const char *group, const char *name)
{
    for (size_t i = 0; i < INT_SETTINGS; i++)
        if (strcmp(int_settings[i].group, group) == 0 && strcmp(int_settings[i].name, name) == 0)
            return &int_settings[i];
    return NULL;
}

cJSON *chat_settings_defaults(void)
{
    cJSON *o = cJSON_CreateObject(), *limits = NULL, *push = NULL, *email = NULL;
    bool ok = o != NULL && cJSON_AddArrayToObject(o, "allowed_origins") != NULL &&
              (limits = cJSON_AddObjectToObject(o, "limits")) != NULL &&
              (push = cJSON_AddObjectToObject(o, "push")) != NULL &&
              cJSON_AddTrueToObject(push, "enabled") != NULL &&
              (email = cJSON_AddObjectToObject(o, "email")) != NULL &&
              cJSON_AddNullToObject(email, "from") != NULL;
    /* Numbers, not chat_json_add_int's raw digits: merges and readers take them as numbers
     * (every bound is far below 2^53). */
    for (size_t i = 0; ok && i < INT_SETTINGS; i++)
        ok = cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(o, int_settings[i].group),
                                     int_settings[i].name, (double)int_settings[i].def) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- validation ---- */

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

bool chat_settings_origin_valid(const char *s)
{
    if (s == NULL || strlen(s) > CHAT_SETTINGS_ORIGIN_MAX)
        return false;
    const char *p = s;
    if (!(*p >= 'a' && *p <= 'z'))
        return false;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
           *p == '.')
        p++;
    if (strncmp(p, "://", 3) != 0)
        return false;
    p += 3;
    const char *host = p;
    if (*p == '[') { /* an IPv6 address */
        p++;
        while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == ':' || *p == '.')
            p++;
        if (*p != ']' || p - host < 3)
            return false;
        p++;
    } else {
        while (host_char(*p))
            p++;
        if (p == host || *host == '.' || *host == '-' || p[-1] == '.' || p[-1] == '-' ||
            strstr(host, "..") != NULL)
            return false;
    }
    if (*p == ':') {
        p++;
        long port = 0;
        const char *digits = p;
        while (*p >= '0' && *p <= '9' && p - digits < 6)
            port = port * 10 + (*p++ - '0');
        if (p == digits || *digits == '0' || port < 1 || port > 65535)
            return false;
    }
    return *p == '\0';
}

bool chat_settings_email_valid(const char *s)
{
    if (s == NULL || strlen(s) > 254)
        return false;
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at - s > 64 || strchr(at + 1, '@') != NULL)
        return false;
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p > '~' || *p == '<' || *p == '>' || *p == ',' || *p == ';')
            return false;
    const char *domain = at + 1, *dot = strrchr(domain, '.');
    return *domain != '\0' && *domain != '.' && dot != NULL && dot[1] != '\0' &&
           strstr(domain, "..") == NULL;
}

/* Validates one object of the patch (limits, push or email) against the current one; fills
 * error and returns false on the first bad field. */
static bool group_check(const char *group, const cJSON *patch, char *error, size_t errlen)
{
    if (!cJSON_IsObject(patch)) {
        snprintf(error, errlen, "%s must be an object", group);
        return false;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, patch)
    {
        const int_setting_t *is = int_setting_find(group, f->string);
        int64_t v;
        if (is != NULL) {
            if (!chat_json_read_int(f, &v) || v < is->min || v > is->max) {
                snprintf(error, errlen, "%s.%s must be an integer from %lld to %lld", group,
                         f->string, (long long)is->min, (long long)is->max);
                return false;
            }
        } else if (strcmp(group, "push") == 0 && strcmp(f->string, "enabled") == 0) {
            if (!cJSON_IsBool(f)) {
                snprintf(error, errlen, "push.enabled must be true or false");
                return false;
            }
        } else if (strcmp(group, "email") == 0 && strcmp(f->string, "from") == 0) {
            if (!cJSON_IsNull(f) &&
                !(cJSON_IsString(f) && chat_settings_email_valid(f->valuestring))) {
                snprintf(error, errlen, "email.from must be an email address (or null)");
                return false;
            }
        } else {
            snprintf(error, errlen, "unknown field %s.%.64s", group, f->string);
            return false;
        }
    }
    return true;
}

static bool origins_check(const cJSON *origins, char *error, size_t errlen)
{
    if (!cJSON_IsArray(origins) || cJSON_GetArraySize(origins) > CHAT_SETTINGS_ORIGINS_MAX) {
        snprintf(error, errlen, "allowed_origins must be an array of at most %d origins",
                 CHAT_SETTINGS_ORIGINS_MAX);
        return false;
    }
    const cJSON *o;
    int i = 0;
    cJSON_ArrayForEach(o, origins)
    {
        if (!cJSON_IsString(o) || !chat_settings_origin_valid(o->valuestring)) {
            snprintf(error, errlen,
                     "allowed_origins[%d] must be an origin: scheme://host[:port] in lowercase, "
                     "without a path",
                     i);
            return false;
        }
        i++;
    }
    return true;
}

bool chat_settings_merge(cJSON *settings, const cJSON *patch, char *error, size_t errlen)
{
    if (!cJSON_IsObject(patch)) {
        snprintf(error, errlen, "the body must be an object");
        return false;
    }
    const cJSON *f;
    cJSON_ArrayForEach(f, patch)
    {
        bool ok;
        if (strcmp(f->string, "allowed_origins") == 0)
            ok = origins_check(f, error, errlen);
        else if (strcmp(f->string, "limits") == 0 || strcmp(f->string, "push") == 0 ||
                 strcmp(f->string, "email") == 0)
            ok = group_check(f->string, f, error, errlen);
        else {
            snprintf(error, errlen, "unknown field %.64s", f->string);
            ok = false;
        }
        if (!ok)
            return false;
    }
    /* Valid: merge. Each replaced item is a copy, so a failed allocation leaves a whole
     * object behind (the caller answers 500 from a NULL check of its own, never a half). */
    cJSON_ArrayForEach(f, patch)
    {
        if (strcmp(f->string, "allowed_origins") == 0) {
            cJSON *copy = cJSON_Duplicate(f, true);
            if (copy == NULL)
                continue;
            if (cJSON_GetObjectItemCaseSensitive(settings, f->string) != NULL)
                cJSON_ReplaceItemInObjectCaseSensitive(settings, f->string, copy);
            else
                cJSON_AddItemToObject(settings, f->string, copy);
            continue;
        }
        cJSON *group = cJSON_GetObjectItemCaseSensitive(settings, f->string);
        if (!cJSON_IsObject(group)) {
            cJSON_DeleteItemFromObjectCaseSensitive(settings, f->string);
            group = cJSON_AddObjectToObject(settings, f->string);
        }
        const cJSON *v;
        cJSON_ArrayForEach(v, f)
        {
            cJSON *copy = cJSON_Duplicate(v, true);
            if (copy == NULL)
                continue;
            if (cJSON_GetObjectItemCaseSensitive(group, v->string) != NULL)
                cJSON_ReplaceItemInObjectCaseSensitive(group, v->string, copy);
            else
                cJSON_AddItemToObject(group, v->string, copy);
        }
    }
    return true;
}

/* ---- storage ---- */

chat_err_t chat_settings_read(chat_store_t *store, const char *tenant, cJSON **stored,
                              int64_t *updated)
{
    *stored = NULL;
    *updated = 0;
    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, CHAT_SETTINGS_COLLECTION);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(col, filter, NULL, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    if (mongoc_cursor_next(cursor, &doc)) {
        char *json = bson_as_relaxed_extended_json(doc, NULL);
        *stored = json != NULL ? cJSON_Parse(json) : NULL;
        bson_free(json);
        const cJSON *up = cJSON_GetObjectItemCaseSensitive(*stored, "updated");
        int64_t v;
        if (up != NULL && chat_json_read_int(up, &v))
            *updated = v;
        cJSON_DeleteItemFromObjectCaseSensitive(*stored, "_id");
        cJSON_DeleteItemFromObjectCaseSensitive(*stored, "updated");
    }
    bson_error_t error;
    if (mongoc_cursor_error(cursor, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("settings not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cursor);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    chat_store_release(store, client);
    if (*stored == NULL)
        *stored = cJSON_CreateObject();
    if (*stored == NULL && err == CHAT_OK)
        err = CHAT_ERR_NOMEM;
    return err;
}

chat_err_t chat_settings_write(chat_store_t *store, const char *tenant, const cJSON *settings,
                               int64_t updated)
{
    char *json = cJSON_PrintUnformatted(settings);
    if (json == NULL)
        return CHAT_ERR_NOMEM;
    bson_error_t error;
    bson_t *doc = bson_new_from_json((const uint8_t *)json, -1, &error);
    free(json);
    if (doc == NULL)
        return CHAT_ERR_INVALID;
    BSON_APPEND_UTF8(doc, "_id", tenant);
    BSON_APPEND_INT64(doc, "updated", updated);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(tenant));
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    mongoc_client_t *client = chat_store_acquire(store);
    mongoc_collection_t *col = chat_store_collection(store, client, CHAT_SETTINGS_COLLECTION);
    chat_err_t err = CHAT_OK;
    if (!mongoc_collection_replace_one(col, filter, doc, opts, NULL, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("settings not written", CHAT_F_STR("tenant", tenant),
                      CHAT_F_INT("code", error.code), CHAT_F_STR("error", error.message));
    }
    mongoc_collection_destroy(col);
    chat_store_release(store, client);
    bson_destroy(doc);
    bson_destroy(filter);
    bson_destroy(opts);
    return err;
}

void chat_settings_limit_default(cJSON *settings, const char *name, long long value)
{
    const int_setting_t *def = int_setting_find("limits", name);
    cJSON *limits = cJSON_GetObjectItemCaseSensitive(settings, "limits");
    if (def == NULL || !cJSON_IsObject(limits) || value < def->min || value > def->max)
        return;
    cJSON *n = cJSON_CreateNumber((double)value);
    if (n == NULL)
        return;
    if (cJSON_GetObjectItemCaseSensitive(limits, name) != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(limits, name, n);
    else
        cJSON_AddItemToObject(limits, name, n);
}

void chat_settings_limits_from_json(const cJSON *settings, chat_settings_limits_t *out)
{
    long long *slots[] = {&out->connections, &out->messages_per_s, &out->api_calls_per_s,
                          &out->members_per_room, &out->rooms};
    const char *names[] = {"connections", "messages_per_s", "api_calls_per_s", "members_per_room",
                           "rooms"};
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(settings, "limits");
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        const int_setting_t *is = int_setting_find("limits", names[i]);
        int64_t v = is->def;
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(group, names[i]);
        if (item != NULL && (!chat_json_read_int(item, &v) || v < is->min || v > is->max))
            v = is->def;
        *slots[i] = v;
    }
}

chat_err_t chat_settings_policy_from_json(const cJSON *settings, chat_settings_policy_t *out)
{
    *out = (chat_settings_policy_t){0};
    chat_settings_limits_from_json(settings, &out->limits);
    const cJSON *origins = cJSON_GetObjectItemCaseSensitive(settings, "allowed_origins");
    int n = cJSON_IsArray(origins) ? cJSON_GetArraySize(origins) : 0;
    if (n == 0)
        return CHAT_OK;
    if ((out->origins = calloc((size_t)n, sizeof *out->origins)) == NULL)
        return CHAT_ERR_NOMEM;
    const cJSON *o;
    cJSON_ArrayForEach(o, origins)
    {
        if (!cJSON_IsString(o))
            continue;
        if ((out->origins[out->norigins] = strdup(o->valuestring)) == NULL) {
            chat_settings_policy_clear(out);
            return CHAT_ERR_NOMEM;
        }
        out->norigins++;
    }
    return CHAT_OK;
}

void chat_settings_policy_clear(chat_settings_policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->norigins; i++)
        free(p->origins[i]);
    free(p->origins);
    p->origins = NULL;
    p->norigins = 0;
}

bool chat_settings_origin_allowed(const chat_settings_policy_t *p, const char *origin)
{
    if (origin == NULL || p->norigins == 0)
        return true;
    for (size_t i = 0; i < p->norigins; i++)
        if (strcasecmp(p->origins[i], origin) == 0)
            return true;
    return false;
}

cJSON *chat_settings_effective(const cJSON *defaults, const char *tenant, const cJSON *stored)
{
    cJSON *out = cJSON_Duplicate(defaults, true);
    if (out == NULL)
        return NULL;
    char error[200];
    if (stored != NULL && !chat_settings_merge(out, stored, error, sizeof error))
        chat_log_warn("stored settings not valid: defaults used", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("reason", error));
    return out;
}

chat_err_t chat_settings_rev_bump(chat_redis_t *r, const char *tenant)
{
    chat_err_t err = CHAT_OK;
    redisReply *reply =
        chat_redis_command(r, &err, "HINCRBY %s %s 1", CHAT_SETTINGS_REV_KEY, tenant);
    freeReplyObject(reply);
    return reply != NULL ? CHAT_OK : err;
}
