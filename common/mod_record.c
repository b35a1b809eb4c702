/* Moderation decisions recorded once (see mod_record.h): every document has an _id derived
 * from what was decided, so a replay (a restarted consumer, a rescan run twice) meets a
 * duplicate key and changes nothing. */
#include "common/mod_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>
#include <openssl/sha.h>

#include "common/log.h"

/* "tenant/id/ver/rule" (without by): what a flag and a rule's decision are keyed by. */
static int decision_base_key(const chat_mod_decision_t *d, char *buf, size_t len)
{
    if (d->tenant == NULL || d->id == NULL || d->rule == NULL)
        return -1;
    int n = snprintf(buf, len, "%s/%s/%" PRId64 "/%s", d->tenant, d->id, d->ver, d->rule);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

static bool by_moderator(const chat_mod_decision_t *d)
{
    return d->by != NULL && strncmp(d->by, "moderator", 9) == 0;
}

int chat_mod_log_key(const chat_mod_decision_t *d, char *buf, size_t len)
{
    int n = decision_base_key(d, buf, len);
    if (n < 0 || !by_moderator(d))
        return n;
    int m = snprintf(buf + n, len - (size_t)n, "/%s", d->by);
    return m < 0 || (size_t)m >= len - (size_t)n ? -1 : n + m;
}

void chat_mod_flag_id(const chat_mod_decision_t *d, char out[CHAT_MOD_FLAG_ID_LEN + 1])
{
    char key[1024];
    int n = decision_base_key(d, key, sizeof key);
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)key, n > 0 ? (size_t)n : 0, md);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < CHAT_MOD_FLAG_ID_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[CHAT_MOD_FLAG_ID_LEN] = '\0';
}

/* The fields a log entry and a flag share. */
static bool append_common(bson_t *doc, const chat_mod_decision_t *d)
{
    return BSON_APPEND_UTF8(doc, "tenant", d->tenant) &&
           BSON_APPEND_UTF8(doc, "room", d->room != NULL ? d->room : "") &&
           BSON_APPEND_UTF8(doc, "msg", d->id) && BSON_APPEND_INT64(doc, "seq", d->seq) &&
           BSON_APPEND_INT64(doc, "ver", d->ver) &&
           BSON_APPEND_UTF8(doc, "from", d->from != NULL ? d->from : "") &&
           BSON_APPEND_UTF8(doc, "rule", d->rule) &&
           BSON_APPEND_UTF8(doc, "kind", chat_mod_kind_name(d->kind)) &&
           BSON_APPEND_INT64(doc, "ts", d->ts);
}

static bson_t *log_doc(const chat_mod_decision_t *d)
{
    char key[1024];
    if (chat_mod_log_key(d, key, sizeof key) < 0)
        return NULL;
    bson_t *doc = bson_new();
    bool ok = doc != NULL && BSON_APPEND_UTF8(doc, "_id", key) && append_common(doc, d) &&
              BSON_APPEND_UTF8(doc, "action", chat_mod_action_name(d->action)) &&
              (d->action != CHAT_MOD_MUTE || BSON_APPEND_INT64(doc, "mute_s", d->mute_s)) &&
              BSON_APPEND_UTF8(doc, "by", d->by != NULL ? d->by : "rules");
    if (!ok) {
        bson_destroy(doc);
        return NULL;
    }
    return doc;
}

static bson_t *flag_doc(const chat_mod_decision_t *d)
{
    char id[CHAT_MOD_FLAG_ID_LEN + 1];
    chat_mod_flag_id(d, id);
    bson_t *doc = bson_new();
    bool ok = doc != NULL && BSON_APPEND_UTF8(doc, "_id", id) && append_common(doc, d) &&
              BSON_APPEND_UTF8(doc, "text", d->text != NULL ? d->text : "") &&
              BSON_APPEND_UTF8(doc, "state", "pending");
    if (!ok) {
        bson_destroy(doc);
        return NULL;
    }
    return doc;
}

/* Inserts docs unordered; duplicates (a replay) are success. */
static chat_err_t insert_once(chat_store_t *store, const char *collection, bson_t **docs, size_t n)
{
    if (n == 0)
        return CHAT_OK;
    chat_err_t *results = calloc(n, sizeof *results);
    if (results == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = chat_store_insert_many(store, collection, (const bson_t *const *)docs, n,
                                            false, results);
    if (err == CHAT_ERR_DUPLICATE)
        err = CHAT_OK;
    free(results);
    return err;
}

chat_err_t chat_mod_record(chat_store_t *store, chat_redis_t *redis, const chat_mod_decision_t *d,
                           size_t n)
{
    if (n == 0)
        return CHAT_OK;
    bson_t **logs = calloc(n, sizeof *logs), **flags = calloc(n, sizeof *flags);
    size_t nlogs = 0, nflags = 0;
    chat_err_t err = logs != NULL && flags != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        if ((logs[nlogs] = log_doc(&d[i])) == NULL) {
            err = CHAT_ERR_NOMEM;
            break;
        }
        nlogs++;
        if (d[i].action == CHAT_MOD_FLAG) {
            if ((flags[nflags] = flag_doc(&d[i])) == NULL)
                err = CHAT_ERR_NOMEM;
            else
                nflags++;
        }
    }
    /* Mutes first: the log says a user was muted only once the mute holds. */
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        if (d[i].action != CHAT_MOD_MUTE)
            continue;
        if (redis == NULL || d[i].from == NULL) {
            err = CHAT_ERR_INVALID;
            break;
        }
        err = chat_mute_set(redis, d[i].tenant, d[i].from, d[i].ts + d[i].mute_s * 1000);
    }
    if (err == CHAT_OK && (nlogs > 0 || nflags > 0) && store == NULL)
        err = CHAT_ERR_INVALID;
    if (err == CHAT_OK)
        err = insert_once(store, CHAT_MOD_FLAGS_COLLECTION, flags, nflags);
    if (err == CHAT_OK)
        err = insert_once(store, CHAT_MOD_LOG_COLLECTION, logs, nlogs);
    for (size_t i = 0; i < nlogs; i++)
        bson_destroy(logs[i]);
    for (size_t i = 0; i < nflags; i++)
        bson_destroy(flags[i]);
    free(logs);
    free(flags);
    if (err != CHAT_OK)
        chat_log_warn("moderation decisions not recorded", CHAT_F_STR("tenant", d[0].tenant),
                      CHAT_F_INT("decisions", (int64_t)n), CHAT_F_ERR(err));
    return err;
}

chat_err_t chat_mod_rules_rev_set(chat_redis_t *redis, const char *tenant, int64_t rev)
{
    chat_err_t err = CHAT_OK;
    redisReply *r = chat_redis_command(redis, &err, "HSET %s %s %lld", CHAT_MOD_RULES_REV_KEY, tenant,
                                       (long long)rev);
    if (r != NULL)
        freeReplyObject(r);
    return err;
}
