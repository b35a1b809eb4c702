/* The notify loop (see pipeline.h and docs/notify.md). Per batch: decode; the tenants'
 * configurations (cached); the member lists of the rooms with new messages (cached for a few
 * seconds, dropped on a member notice; one MongoDB query for the rooms missing); who of them is
 * online (one pipelined Redis round trip per tenant); the preferences of the offline ones and
 * their addresses (one query each per room); then every outbox entry of the batch in one Redis
 * pipeline, and the commit. MongoDB and Redis failures are retried with backoff: a skipped
 * batch would lose notifications. */
#include "services/notify/pipeline.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>

#include "common/array.h"
#include "common/backoff.h"
#include "common/bson_fields.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/frames.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/notify_store.h"
#include "common/redis.h"
#include "common/room_list.h"
#include "common/service.h"
#include "common/signals.h"
#include "common/strmap.h"
#include "common/whsign.h"
#include "services/notify/outbox.h"

#define POLL_TIMEOUT_MS 200
#define MEMBERS_MAX 100000 /* the most members of one room considered */

/* A room's members as notify last read them. */
typedef struct room_members {
    char **users;
    size_t n;
    size_t parties; /* the first users: a dm's parties, from its name */
    char kind[8];   /* "public", "private", "dm" */
    int64_t loaded; /* monotonic ms */
} room_members_t;

typedef struct item {
    chat_event_t ev;
    bool ok;                 /* decoded and of a type notify handles */
    const nt_tenant_t *cfg;  /* held */
    room_members_t *members; /* borrowed from the cache; msg items that notify members */
} item_t;

typedef struct pipeline_metrics {
    chat_counter_t *records, *invalid, *push_notes, *digest_notes, *webhooks, *recalls, *offline,
        *online, *muted, *store_errors, *redis_errors;
    chat_histogram_t *batch_seconds, *lag_seconds;
} pipeline_metrics_t;

struct nf_pipeline {
    nf_pipeline_conf_t conf;
    chat_bus_consumer_t *consumer;
    chat_redis_t *redis;
    chat_bus_record_t *records;
    item_t *items;
    nq_batch_t *outbox;
    chat_strmap_t *rooms; /* "tenant/room" -> room_members_t */
    atomic_bool assigned;
    atomic_bool redis_ok;
    pipeline_metrics_t m;
};

/* ---- pure parts ---- */

static bool user_char(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '-';
}

bool nf_mentions(const char *text, const char *user)
{
    size_t ulen = strlen(user);
    if (text == NULL || ulen == 0)
        return false;
    for (const char *at = strchr(text, '@'); at != NULL; at = strchr(at + 1, '@')) {
        if (at > text && user_char((unsigned char)at[-1]))
            continue;
        if (strncmp(at + 1, user, ulen) == 0 && !user_char((unsigned char)at[1 + ulen]))
            return true;
    }
    return false;
}

/* The data of a message webhook: the client frame of the message without its "type". */
static cJSON *frame_data(cJSON *frame)
{
    if (frame != NULL)
        cJSON_DeleteItemFromObjectCaseSensitive(frame, "type");
    return frame;
}

char *nf_webhook_body(const chat_event_t *ev, const char *to, unsigned *type, char *identity,
                      size_t identity_len)
{
    cJSON *data = NULL;
    *type = 0;
    if (ev->type == CHAT_EV_MSG && to != NULL) {
        *type = CHAT_WH_USER_OFFLINE_MESSAGE;
        data = cJSON_CreateObject();
        if (data != NULL) {
            cJSON_AddStringToObject(data, "user", to);
            cJSON_AddItemToObject(data, "message", frame_data(chat_frame_msg_new(ev)));
        }
        snprintf(identity, identity_len, "%s/user.offline_message/%s/%lld/%s", ev->tenant, ev->room,
                 (long long)ev->seq, to);
    } else if (ev->type == CHAT_EV_MSG && ev->notice != NULL &&
               (strcmp(ev->notice, "member_added") == 0 ||
                strcmp(ev->notice, "member_removed") == 0)) {
        bool added = strcmp(ev->notice, "member_added") == 0;
        *type = added ? CHAT_WH_ROOM_MEMBER_ADDED : CHAT_WH_ROOM_MEMBER_REMOVED;
        data = cJSON_CreateObject();
        if (data != NULL) {
            cJSON_AddStringToObject(data, "room", ev->room);
            if (ev->target != NULL)
                cJSON_AddStringToObject(data, "user", ev->target);
            chat_json_add_int(data, "seq", ev->seq);
        }
        snprintf(identity, identity_len, "%s/%s/%s/%lld", ev->tenant,
                 chat_webhook_event_name(*type), ev->room, (long long)ev->seq);
    } else if (ev->type == CHAT_EV_MSG) {
        *type = CHAT_WH_MESSAGE_NEW;
        data = frame_data(chat_frame_msg_new(ev));
        snprintf(identity, identity_len, "%s/message.new/%s/%lld", ev->tenant, ev->room,
                 (long long)ev->seq);
    } else if (ev->type == CHAT_EV_UPDATE && ev->op != NULL) {
        *type = strcmp(ev->op, "moderate") == 0 ? CHAT_WH_MESSAGE_REMOVED : CHAT_WH_MESSAGE_UPDATED;
        data = frame_data(chat_frame_update_new(ev));
        snprintf(identity, identity_len, "%s/%s/%s/u%lld", ev->tenant,
                 chat_webhook_event_name(*type), ev->room, (long long)ev->useq);
    } else {
        return NULL;
    }
    cJSON *body = cJSON_CreateObject();
    char *out = NULL;
    if (body != NULL && data != NULL &&
        cJSON_AddStringToObject(body, "type", chat_webhook_event_name(*type)) &&
        cJSON_AddStringToObject(body, "tenant", ev->tenant)) {
        cJSON_AddItemToObject(body, "data", data);
        data = NULL;
        /* The event's own time, so that a replay sends the same body. */
        if (chat_json_add_int(body, "ts", ev->ts))
            out = cJSON_PrintUnformatted(body);
    }
    cJSON_Delete(data);
    cJSON_Delete(body);
    return out;
}

/* ---- set-up ---- */

static void metrics_register(nf_pipeline_t *p)
{
    chat_metrics_t *mx = p->conf.metrics;
    pipeline_metrics_t *m = &p->m;
    m->records = chat_metrics_counter(mx, "chat_notify_records_total",
                                      "chat.messages records read by notify.", NULL);
    m->invalid = chat_metrics_counter(mx, "chat_notify_invalid_records_total",
                                      "chat.messages records that did not decode (logged, "
                                      "skipped).",
                                      NULL);
    m->push_notes = chat_metrics_counter(mx, "chat_notify_push_notes_total",
                                         "Messages noted for an offline member's push (before "
                                         "collapsing).",
                                         NULL);
    m->digest_notes =
        chat_metrics_counter(mx, "chat_notify_digest_notes_total",
                             "Messages noted for an offline member's email digest.", NULL);
    m->webhooks = chat_metrics_counter(mx, "chat_notify_webhooks_queued_total",
                                       "Webhook events queued (one per endpoint and event).", NULL);
    m->recalls = chat_metrics_counter(mx, "chat_notify_recalls_total",
                                      "Reads, deletes and removals checked against sent "
                                      "notifications.",
                                      NULL);
    m->offline =
        chat_metrics_counter(mx, "chat_notify_recipients_total",
                             "Recipients of new messages, by presence.", "presence=\"offline\"");
    m->online =
        chat_metrics_counter(mx, "chat_notify_recipients_total",
                             "Recipients of new messages, by presence.", "presence=\"online\"");
    m->muted = chat_metrics_counter(mx, "chat_notify_muted_total",
                                    "Offline recipients whose preference skipped a message.", NULL);
    m->store_errors = chat_metrics_counter(mx, "chat_notify_store_errors_total",
                                           "Failed MongoDB reads of members, preferences, "
                                           "addresses or configuration (retried).",
                                           NULL);
    m->redis_errors =
        chat_metrics_counter(mx, "chat_notify_redis_errors_total",
                             "Failed presence reads or outbox writes (retried).", NULL);
    m->batch_seconds = chat_metrics_histogram(
        mx, "chat_notify_batch_seconds", "Time from poll to committed of a batch.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->lag_seconds = chat_metrics_histogram(
        mx, "chat_notify_lag_seconds",
        "From a message's stored ts to its notifications queued in the outbox.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
}

static void on_rebalance(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n)
{
    (void)tps;
    (void)n;
    nf_pipeline_t *p = ud;
    if (assigned)
        atomic_store(&p->assigned, true);
}

bool nf_pipeline_ready(void *pipeline, char *reason, size_t reason_len)
{
    nf_pipeline_t *p = pipeline;
    const char *why = NULL;
    if (!atomic_load(&p->assigned))
        why = "waiting for the consumer group assignment";
    else if (!atomic_load(&p->redis_ok))
        why = "redis unavailable";
    if (why != NULL)
        snprintf(reason, reason_len, "%s", why);
    return why == NULL;
}

chat_err_t nf_pipeline_new(const nf_pipeline_conf_t *conf, nf_pipeline_t **out,
                           const char **bad_var)
{
    const char *ignored;
    if (bad_var == NULL)
        bad_var = &ignored;
    *bad_var = NULL;
    if (conf == NULL || out == NULL || conf->batch_max == 0 || conf->metrics == NULL ||
        conf->store == NULL || conf->tenants == NULL)
        return CHAT_ERR_INVALID;
    nf_pipeline_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    p->conf = *conf;
    atomic_init(&p->assigned, false);
    atomic_init(&p->redis_ok, true);
    metrics_register(p);
    p->records = calloc(conf->batch_max, sizeof *p->records);
    p->items = calloc(conf->batch_max, sizeof *p->items);
    p->outbox = nq_batch_new();
    p->rooms = chat_strmap_new();
    if (p->records == NULL || p->items == NULL || p->outbox == NULL || p->rooms == NULL) {
        nf_pipeline_free(p);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = chat_redis_connect(conf->redis_url, conf->connect_timeout_ms, &p->redis);
    if (err != CHAT_OK) {
        *bad_var = "CHAT_REDIS_URL";
        nf_pipeline_free(p);
        return err;
    }
    const char *topics[] = {conf->messages_topic, NULL};
    chat_bus_consumer_conf_t cc = {
        .brokers = conf->brokers,
        .client_id = "chat-notify",
        .group_id = conf->group,
        .group_instance_id = conf->instance_id,
        .topics = topics,
        .on_rebalance = on_rebalance,
        .ud = p,
        /* A new group starts at the end: notifying a week of history at first start would
         * page every user for what is long over. */
        .auto_offset_reset = "latest",
        .commit_interval_ms = conf->commit_interval_ms,
        .connect_timeout_ms = conf->connect_timeout_ms,
        .metrics = conf->metrics,
    };
    if ((err = chat_bus_consumer_new(&cc, &p->consumer)) != CHAT_OK) {
        *bad_var = err == CHAT_ERR_CONFIG ? "KAFKA_*" : "CHAT_KAFKA_BROKERS";
        nf_pipeline_free(p);
        return err;
    }
    *out = p;
    return CHAT_OK;
}

static void members_free(room_members_t *rm)
{
    if (rm == NULL)
        return;
    for (size_t i = 0; i < rm->n; i++)
        free(rm->users[i]);
    free(rm->users);
    free(rm);
}

static void members_drop(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    members_free(value);
}

void nf_pipeline_free(nf_pipeline_t *p)
{
    if (p == NULL)
        return;
    chat_bus_consumer_close(p->consumer);
    chat_redis_free(p->redis);
    if (p->rooms != NULL) {
        chat_strmap_foreach(p->rooms, members_drop, NULL);
        chat_strmap_free(p->rooms);
    }
    nq_batch_free(p->outbox);
    free(p->records);
    free(p->items);
    free(p);
}

/* ---- one batch ---- */

static void items_clear(nf_pipeline_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        item_t *it = &p->items[i];
        nt_tenant_release(p->conf.tenants, it->cfg);
        chat_event_clear(&it->ev);
        memset(it, 0, sizeof *it);
    }
}

/* Whether a new message notifies members (push, email or offline webhooks) under cfg. */
static bool notifies_members(const nf_pipeline_t *p, const item_t *it)
{
    const chat_event_t *ev = &it->ev;
    if (ev->type != CHAT_EV_MSG || ev->user == NULL || strcmp(ev->user, CHAT_SYSTEM_USER) == 0 ||
        chat_event_msg_gone(ev))
        return false;
    if ((p->conf.push_on && it->cfg->push_enabled) ||
        (p->conf.email_on && it->cfg->email_from != NULL))
        return true;
    for (size_t e = 0; e < it->cfg->nendpoints; e++)
        if (it->cfg->endpoints[e].events & CHAT_WH_USER_OFFLINE_MESSAGE)
            return true;
    return false;
}

/* Decodes the records and holds each one's tenant configuration (a first use reads MongoDB:
 * retried while it fails). */
static chat_err_t batch_decode(nf_pipeline_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const chat_bus_record_t *rec = &p->records[i];
        item_t *it = &p->items[i];
        char why[160];
        chat_counter_inc(p->m.records);
        if (chat_event_decode(rec->value, rec->len, &it->ev, why, sizeof why) != CHAT_OK) {
            chat_log_warn("invalid record skipped", CHAT_F_STR("topic", rec->topic),
                          CHAT_F_INT("partition", rec->partition),
                          CHAT_F_INT("offset", rec->offset), CHAT_F_STR("reason", why));
            chat_counter_inc(p->m.invalid);
            continue;
        }
        chat_event_type_t t = it->ev.type;
        if (t != CHAT_EV_MSG && t != CHAT_EV_UPDATE && t != CHAT_EV_READ)
            continue;
        chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
        bool logged = false;
        chat_err_t err;
        while ((err = nt_cache_get(p->conf.tenants, it->ev.tenant, &it->cfg)) != CHAT_OK) {
            if (err == CHAT_ERR_NOMEM)
                return err;
            chat_counter_inc(p->m.store_errors);
            if (!chat_service_retry_wait(&b, "read tenant configuration", err, &logged))
                return CHAT_ERR_STOPPED;
        }
        it->ok = true;
    }
    return CHAT_OK;
}

/* Adds user to rm unless one of its first `known` users is that user. user_rooms holds a
 * (tenant, user, room) once, so only the dm parties taken from the name, which come first, can
 * repeat what the index says: comparing with them alone keeps a big room's read linear. */
static bool members_add(room_members_t *rm, size_t *cap, size_t known, const char *user)
{
    for (size_t i = 0; i < known && i < rm->n; i++)
        if (strcmp(rm->users[i], user) == 0)
            return true;
    if (rm->n >= MEMBERS_MAX)
        return true;
    char **grown = chat_array_grow(rm->users, cap, rm->n + 1, sizeof *grown);
    if (grown == NULL)
        return false;
    rm->users = grown;
    if ((rm->users[rm->n] = strdup(user)) == NULL)
        return false;
    rm->n++;
    return true;
}

/* The dm parties of room into rm. */
static bool dm_parties(room_members_t *rm, size_t *cap, const char *room)
{
    char a[CHAT_USER_MAX + 1], b[CHAT_USER_MAX + 1];
    if (!chat_room_dm_valid(room) || sscanf(room, "dm:%64[^:]:%64s", a, b) != 2)
        return true;
    bool ok = members_add(rm, cap, rm->n, a) && members_add(rm, cap, rm->n, b);
    rm->parties = rm->n;
    return ok;
}

/* Reads the members of the rooms in keys (tenant/room strings, n of them; at most one tenant
 * per call keeps the filter exact) from user_rooms, one query, into fresh entries of out. */
static chat_err_t members_read(nf_pipeline_t *p, const char *tenant, const char *const *rooms,
                               size_t n, room_members_t **out)
{
    size_t *caps = calloc(n, sizeof *caps);
    if (caps == NULL)
        return CHAT_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((out[i] = calloc(1, sizeof *out[i])) == NULL) {
            free(caps);
            return CHAT_ERR_NOMEM;
        }
        snprintf(out[i]->kind, sizeof out[i]->kind, "%s",
                 chat_room_is_dm(rooms[i]) ? "dm" : "public");
        if (!dm_parties(out[i], &caps[i], rooms[i])) {
            free(caps);
            return CHAT_ERR_NOMEM;
        }
    }
    bson_t filter = BSON_INITIALIZER, in, arr;
    BSON_APPEND_UTF8(&filter, "tenant", tenant);
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "room", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    for (size_t i = 0; i < n; i++) {
        char idx[16];
        const char *k;
        bson_uint32_to_string((uint32_t)i, &k, idx, sizeof idx);
        bson_append_utf8(&arr, k, -1, rooms[i], -1);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    bson_t *opts = BCON_NEW("projection", "{", "user", BCON_INT32(1), "room", BCON_INT32(1), "kind",
                            BCON_INT32(1), "}");
    mongoc_client_t *client = chat_store_acquire(p->conf.store);
    mongoc_collection_t *col =
        chat_store_collection(p->conf.store, client, CHAT_USER_ROOMS_COLLECTION);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, &filter, opts, NULL);
    const bson_t *doc;
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && mongoc_cursor_next(cur, &doc)) {
        const char *room = chat_bson_str(doc, "room"), *user = chat_bson_str(doc, "user");
        const char *kind = chat_bson_str(doc, "kind");
        for (size_t i = 0; room != NULL && user != NULL && i < n; i++) {
            if (strcmp(rooms[i], room) != 0)
                continue;
            if (kind != NULL && strcmp(kind, "private") == 0)
                snprintf(out[i]->kind, sizeof out[i]->kind, "private");
            if (!members_add(out[i], &caps[i], out[i]->parties, user))
                err = CHAT_ERR_NOMEM;
        }
    }
    bson_error_t error;
    if (err == CHAT_OK && mongoc_cursor_error(cur, &error)) {
        err = chat_store_err(&error);
        chat_log_warn("room members not read", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("error", error.message));
    }
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(col);
    chat_store_release(p->conf.store, client);
    bson_destroy(opts);
    bson_destroy(&filter);
    free(caps);
    return err;
}

/* Drops the cached member list of a room whose membership changed (a member notice). */
static void members_forget(nf_pipeline_t *p, const chat_event_t *ev)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(ev->tenant, ev->room, key, sizeof key) > 0)
        members_free(chat_strmap_remove(p->rooms, key));
}

/* Makes sure every msg item that notifies members has its room's member list: the fresh ones
 * from the cache, the rest read (one query per tenant of the batch). */
static chat_err_t batch_members(nf_pipeline_t *p, size_t n)
{
    int64_t now = chat_clock_mono_ms();
    for (size_t i = 0; i < n; i++) {
        item_t *it = &p->items[i];
        if (!it->ok || it->ev.type != CHAT_EV_MSG)
            continue;
        if (it->ev.notice != NULL) /* member_added, member_removed, room_deleted, ... */
            members_forget(p, &it->ev);
    }
    for (size_t i = 0; i < n; i++) {
        item_t *it = &p->items[i];
        if (!it->ok || it->members != NULL || !notifies_members(p, it))
            continue;
        /* Every room of this tenant in the batch that is missing or stale, in one query. */
        const char *tenant = it->ev.tenant;
        const char **rooms = calloc(n, sizeof *rooms);
        room_members_t **read = calloc(n, sizeof *read);
        size_t nr = 0;
        chat_err_t err = rooms != NULL && read != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
        for (size_t j = i; err == CHAT_OK && j < n; j++) {
            item_t *o = &p->items[j];
            if (!o->ok || o->members != NULL || strcmp(o->ev.tenant, tenant) != 0 ||
                !notifies_members(p, o))
                continue;
            char key[CHAT_ROOM_KEY_MAX];
            if (chat_room_key(tenant, o->ev.room, key, sizeof key) < 0)
                continue;
            room_members_t *rm = chat_strmap_get(p->rooms, key);
            if (rm != NULL && now - rm->loaded < p->conf.members_ttl_ms) {
                o->members = rm;
                continue;
            }
            bool listed = false;
            for (size_t k = 0; k < nr; k++)
                listed = listed || strcmp(rooms[k], o->ev.room) == 0;
            if (!listed)
                rooms[nr++] = o->ev.room;
        }
        chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
        bool logged = false;
        while (err == CHAT_OK && nr > 0 &&
               (err = members_read(p, tenant, rooms, nr, read)) != CHAT_OK) {
            for (size_t k = 0; k < nr; k++) {
                members_free(read[k]);
                read[k] = NULL;
            }
            if (err == CHAT_ERR_NOMEM)
                break;
            chat_counter_inc(p->m.store_errors);
            if (!chat_service_retry_wait(&b, "read room members", err, &logged))
                err = CHAT_ERR_STOPPED;
            else
                err = CHAT_OK;
            if (err != CHAT_OK)
                break;
        }
        for (size_t k = 0; err == CHAT_OK && k < nr; k++) {
            char key[CHAT_ROOM_KEY_MAX];
            chat_room_key(tenant, rooms[k], key, sizeof key);
            read[k]->loaded = now;
            members_free(chat_strmap_remove(p->rooms, key));
            if (!chat_strmap_put(p->rooms, key, read[k])) {
                err = CHAT_ERR_NOMEM;
                break;
            }
            read[k] = NULL;
        }
        for (size_t k = 0; read != NULL && k < nr; k++)
            members_free(read[k]);
        free(rooms);
        free(read);
        if (err != CHAT_OK)
            return err;
        for (size_t j = i; j < n; j++) {
            item_t *o = &p->items[j];
            char key[CHAT_ROOM_KEY_MAX];
            if (o->ok && o->members == NULL && strcmp(o->ev.tenant, tenant) == 0 &&
                notifies_members(p, o) && chat_room_key(tenant, o->ev.room, key, sizeof key) > 0)
                o->members = chat_strmap_get(p->rooms, key);
        }
    }
    return CHAT_OK;
}

/* Queues every endpoint's copy of one webhook event. */
static chat_err_t queue_webhook(nf_pipeline_t *p, const item_t *it, const char *to, int64_t now)
{
    unsigned type = 0;
    char identity[320];
    char *body = NULL;
    for (size_t e = 0; e < it->cfg->nendpoints; e++) {
        const nt_endpoint_t *ep = &it->cfg->endpoints[e];
        if (body == NULL) {
            /* Built once, for the first endpoint that wants this type. */
            unsigned want = 0;
            char *b = nf_webhook_body(&it->ev, to, &want, identity, sizeof identity);
            if (b == NULL || (ep->events & want) == 0) {
                free(b);
                if (want == 0)
                    return CHAT_OK;
                continue;
            }
            body = b;
            type = want;
        }
        if ((ep->events & type) == 0)
            continue;
        char msg_id[37];
        chat_whsign_msg_id(identity, msg_id);
        chat_err_t err =
            nq_webhook_add(p->outbox, it->ev.tenant, ep->id, msg_id, it->ev.room,
                           to != NULL ? to : it->ev.user, chat_webhook_event_name(type), body, now);
        if (err != CHAT_OK) {
            free(body);
            return err;
        }
        chat_counter_inc(p->m.webhooks);
    }
    free(body);
    return CHAT_OK;
}

/* The webhooks of every record and the recalls of reads, deletes and removals. */
static chat_err_t batch_events(nf_pipeline_t *p, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        const item_t *it = &p->items[i];
        if (!it->ok)
            continue;
        const chat_event_t *ev = &it->ev;
        chat_err_t err = CHAT_OK;
        if (ev->type != CHAT_EV_READ && it->cfg->nendpoints > 0)
            err = queue_webhook(p, it, NULL, now);
        if (err == CHAT_OK && ev->type == CHAT_EV_READ && ev->user != NULL) {
            err = nq_recall_read(p->outbox, ev->tenant, ev->user, ev->room, ev->seq, now);
            chat_counter_inc(p->m.recalls);
        } else if (err == CHAT_OK && ev->type == CHAT_EV_UPDATE && ev->op != NULL &&
                   (strcmp(ev->op, "delete") == 0 || strcmp(ev->op, "moderate") == 0)) {
            err = nq_recall_gone(p->outbox, ev->tenant, ev->room, ev->seq, now);
            chat_counter_inc(p->m.recalls);
        }
        if (err != CHAT_OK)
            return err;
    }
    return CHAT_OK;
}

/* ---- recipients ---- */

/* What is known of one recipient of the batch: "tenant/user" -> a small record. */
typedef struct person {
    bool online;
    bool has_email;
    bool asked; /* queued for the gateways' online hashes */
} person_t;

typedef struct recipients {
    chat_strmap_t *people; /* "tenant/user" -> person_t */
} recipients_t;

static void person_drop(const char *key, void *value, void *ud)
{
    (void)key;
    (void)ud;
    free(value);
}

static person_t *person_of(recipients_t *r, const char *tenant, const char *user)
{
    char key[CHAT_TENANT_MAX + CHAT_USER_MAX + 2];
    snprintf(key, sizeof key, "%s/%s", tenant, user);
    return chat_strmap_get(r->people, key);
}

/* Registers every member of every notifying item (the sender excluded). */
static chat_err_t recipients_register(nf_pipeline_t *p, size_t n, recipients_t *r)
{
    for (size_t i = 0; i < n; i++) {
        const item_t *it = &p->items[i];
        if (it->members == NULL)
            continue;
        for (size_t u = 0; u < it->members->n; u++) {
            const char *user = it->members->users[u];
            if (strcmp(user, it->ev.user) == 0 || person_of(r, it->ev.tenant, user) != NULL)
                continue;
            char key[CHAT_TENANT_MAX + CHAT_USER_MAX + 2];
            snprintf(key, sizeof key, "%s/%s", it->ev.tenant, user);
            person_t *pp = calloc(1, sizeof *pp);
            if (pp == NULL || !chat_strmap_put(r->people, key, pp)) {
                free(pp);
                return CHAT_ERR_NOMEM;
            }
        }
    }
    return CHAT_OK;
}

/* True if item i is the first of the batch with its member list (one pass per room). */
static bool first_of_room(const nf_pipeline_t *p, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (p->items[j].members == p->items[i].members)
            return false;
    return true;
}

/* Who is online in the batch's rooms themselves: the rooms' presence hashes (the gateways'
 * registrations, docs/message-path.md "Presence"), one pipelined HKEYS per room. Someone in
 * the room is online in the tenant, so the usual case -- the members who talk are there --
 * costs one command per room instead of one per gateway. */
static chat_err_t rooms_presence(nf_pipeline_t *p, size_t n, recipients_t *r)
{
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        if (p->items[i].members == NULL || !first_of_room(p, i))
            continue;
        char key[CHAT_REGISTRY_KEY_MAX];
        if (chat_registry_key(p->items[i].ev.tenant, p->items[i].ev.room, CHAT_REGISTRY_PRESENCE,
                              key, sizeof key) < 0)
            continue;
        if ((err = chat_redis_append(p->redis, "HKEYS %s", key)) == CHAT_OK)
            queued++;
    }
    for (size_t i = 0, got = 0; got < queued && i < n; i++) {
        if (p->items[i].members == NULL || !first_of_room(p, i))
            continue;
        redisReply *reply = NULL;
        chat_err_t rerr = chat_redis_reply(p->redis, &reply);
        got++;
        if (rerr != CHAT_OK) {
            err = err == CHAT_OK ? rerr : err;
            continue;
        }
        for (size_t k = 0; reply->type == REDIS_REPLY_ARRAY && k < reply->elements; k++) {
            person_t *pp = reply->element[k]->type == REDIS_REPLY_STRING
                               ? person_of(r, p->items[i].ev.tenant, reply->element[k]->str)
                               : NULL;
            if (pp != NULL)
                pp->online = true;
        }
        freeReplyObject(reply);
    }
    return err;
}

/* The rest of the batch's recipients, those not in their room: the gateways' online hashes,
 * one chat_online_users per tenant. */
static chat_err_t tenants_presence(nf_pipeline_t *p, size_t n, recipients_t *r)
{
    for (size_t i = 0; i < n; i++) {
        const item_t *it = &p->items[i];
        if (it->members == NULL)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = p->items[j].members != NULL && strcmp(p->items[j].ev.tenant, it->ev.tenant) == 0;
        if (seen)
            continue;
        size_t cap = 0, nu = 0;
        const char **users = NULL;
        chat_err_t err = CHAT_OK;
        for (size_t j = i; err == CHAT_OK && j < n; j++) {
            const item_t *o = &p->items[j];
            if (o->members == NULL || strcmp(o->ev.tenant, it->ev.tenant) != 0)
                continue;
            for (size_t u = 0; u < o->members->n; u++) {
                const char *user = o->members->users[u];
                person_t *pp = person_of(r, o->ev.tenant, user);
                if (pp == NULL || pp->online || pp->asked)
                    continue;
                pp->asked = true;
                const char **grown = chat_array_grow(users, &cap, nu + 1, sizeof *grown);
                if (grown == NULL) {
                    err = CHAT_ERR_NOMEM;
                    break;
                }
                users = grown;
                users[nu++] = user;
            }
        }
        bool *online = err == CHAT_OK && nu > 0 ? calloc(nu, sizeof *online) : NULL;
        if (err == CHAT_OK && nu > 0 && online == NULL)
            err = CHAT_ERR_NOMEM;
        if (err == CHAT_OK && nu > 0)
            err = chat_online_users(p->redis, p->conf.gateways, it->ev.tenant, users, nu, online);
        for (size_t k = 0; k < nu; k++) {
            person_t *pp = person_of(r, it->ev.tenant, users[k]);
            if (err == CHAT_OK)
                pp->online = online[k];
            else
                pp->asked = false; /* asked again when the pass is retried */
        }
        free(online);
        free(users);
        if (err != CHAT_OK)
            return err;
    }
    return CHAT_OK;
}

/* Registers the batch's recipients and reads who of them is online (retried while Redis
 * fails). */
static chat_err_t recipients_online(nf_pipeline_t *p, size_t n, recipients_t *r)
{
    chat_err_t err = recipients_register(p, n, r);
    chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    bool logged = false;
    while (err == CHAT_OK) {
        err = rooms_presence(p, n, r);
        if (err == CHAT_OK)
            err = tenants_presence(p, n, r);
        if (err == CHAT_OK || err == CHAT_ERR_NOMEM)
            break;
        atomic_store(&p->redis_ok, false);
        chat_counter_inc(p->m.redis_errors);
        if (!chat_service_retry_wait(&b, "read presence", err, &logged))
            return CHAT_ERR_STOPPED;
        err = CHAT_OK;
    }
    return err;
}

/* Which of the tenant's offline users have an email address: one query of user_contacts by
 * _id for the users of item it's room that are offline. */
static chat_err_t recipients_email(nf_pipeline_t *p, const item_t *it, recipients_t *r)
{
    bson_t filter = BSON_INITIALIZER, in, arr;
    BSON_APPEND_DOCUMENT_BEGIN(&filter, "_id", &in);
    BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
    uint32_t na = 0;
    for (size_t u = 0; u < it->members->n; u++) {
        person_t *pp = person_of(r, it->ev.tenant, it->members->users[u]);
        if (pp == NULL || pp->online)
            continue;
        char id[CHAT_TENANT_MAX + CHAT_USER_MAX + 2], idx[16];
        const char *k;
        snprintf(id, sizeof id, "%s/%s", it->ev.tenant, it->members->users[u]);
        bson_uint32_to_string(na++, &k, idx, sizeof idx);
        bson_append_utf8(&arr, k, -1, id, -1);
    }
    bson_append_array_end(&in, &arr);
    bson_append_document_end(&filter, &in);
    chat_err_t err = CHAT_OK;
    if (na > 0) {
        bson_t *opts =
            BCON_NEW("projection", "{", "user", BCON_INT32(1), "email", BCON_INT32(1), "}");
        mongoc_client_t *client = chat_store_acquire(p->conf.store);
        mongoc_collection_t *col =
            chat_store_collection(p->conf.store, client, CHAT_USER_CONTACTS_COLLECTION);
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, &filter, opts, NULL);
        const bson_t *doc;
        while (mongoc_cursor_next(cur, &doc)) {
            const char *user = chat_bson_str(doc, "user");
            person_t *pp = user != NULL ? person_of(r, it->ev.tenant, user) : NULL;
            if (pp != NULL && chat_bson_str(doc, "email") != NULL)
                pp->has_email = true;
        }
        bson_error_t error;
        if (mongoc_cursor_error(cur, &error)) {
            err = chat_store_err(&error);
            chat_log_warn("email addresses not read", CHAT_F_STR("tenant", it->ev.tenant),
                          CHAT_F_STR("error", error.message));
        }
        mongoc_cursor_destroy(cur);
        mongoc_collection_destroy(col);
        chat_store_release(p->conf.store, client);
        bson_destroy(opts);
    }
    bson_destroy(&filter);
    return err;
}

/* Whether mode lets a message of this item through to user. */
static bool mode_allows(chat_push_mode_t mode, const item_t *it, const char *user)
{
    switch (mode) {
    case CHAT_PUSH_MODE_NONE:
        return false;
    case CHAT_PUSH_MODE_MENTIONS:
        return strcmp(it->members->kind, "dm") == 0 || nf_mentions(it->ev.text, user);
    default:
        return true;
    }
}

/* The offline members of one room's messages in the batch: preferences (one query), addresses
 * (one query, when the tenant sends email), then a push note, a digest note and the
 * user.offline_message webhook for each message and member it lets through. first: the first
 * item of this room; the others follow in the batch. */
static chat_err_t room_notes(nf_pipeline_t *p, size_t first, size_t n, recipients_t *r, int64_t now)
{
    const item_t *head = &p->items[first];
    const room_members_t *rm = head->members;
    const char **offline = calloc(rm->n > 0 ? rm->n : 1, sizeof *offline);
    chat_push_mode_t *modes = calloc(rm->n > 0 ? rm->n : 1, sizeof *modes);
    chat_err_t err = offline != NULL && modes != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    size_t noff = 0;
    for (size_t u = 0; err == CHAT_OK && u < rm->n; u++) {
        person_t *pp = person_of(r, head->ev.tenant, rm->users[u]);
        if (pp != NULL && !pp->online)
            offline[noff++] = rm->users[u];
    }
    bool email = p->conf.email_on && head->cfg->email_from != NULL;
    chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    bool logged = false;
    while (err == CHAT_OK && noff > 0) {
        err = chat_push_prefs_effective(p->conf.store, head->ev.tenant, head->ev.room, rm->kind,
                                        offline, noff, modes);
        if (err == CHAT_OK && email)
            err = recipients_email(p, head, r);
        if (err == CHAT_OK || err == CHAT_ERR_NOMEM)
            break;
        chat_counter_inc(p->m.store_errors);
        if (!chat_service_retry_wait(&b, "read preferences", err, &logged))
            err = CHAT_ERR_STOPPED;
        else
            err = CHAT_OK;
        if (err != CHAT_OK)
            break;
    }
    for (size_t i = first; err == CHAT_OK && noff > 0 && i < n; i++) {
        const item_t *it = &p->items[i];
        if (it->members != rm)
            continue;
        bool wh_offline = false;
        for (size_t e = 0; e < it->cfg->nendpoints; e++)
            wh_offline =
                wh_offline || (it->cfg->endpoints[e].events & CHAT_WH_USER_OFFLINE_MESSAGE);
        for (size_t u = 0; err == CHAT_OK && u < noff; u++) {
            const char *user = offline[u];
            if (strcmp(user, it->ev.user) == 0)
                continue;
            if (!mode_allows(modes[u], it, user)) {
                chat_counter_inc(p->m.muted);
                continue;
            }
            if (p->conf.push_on && it->cfg->push_enabled) {
                bool dm = strcmp(rm->kind, "dm") == 0;
                nq_push_note_t note = {.tenant = it->ev.tenant,
                                       .user = user,
                                       .room = it->ev.room,
                                       .seq = it->ev.seq,
                                       .ts = it->ev.ts,
                                       .id = it->ev.id,
                                       .from = it->ev.user,
                                       .name = it->ev.name,
                                       .text = it->ev.text,
                                       .urgent = dm || nf_mentions(it->ev.text, user)};
                if ((err = nq_note_push(p->outbox, &note, now, p->conf.push_window_ms)) == CHAT_OK)
                    chat_counter_inc(p->m.push_notes);
            }
            person_t *pp = person_of(r, it->ev.tenant, user);
            if (err == CHAT_OK && email && pp != NULL && pp->has_email) {
                err = nq_note_digest(p->outbox, it->ev.tenant, user, it->ev.room, it->ev.seq, now,
                                     it->cfg->digest_delay_ms);
                if (err == CHAT_OK)
                    chat_counter_inc(p->m.digest_notes);
            }
            if (err == CHAT_OK && wh_offline)
                err = queue_webhook(p, it, user, now);
        }
    }
    free(offline);
    free(modes);
    return err;
}

/* The notes of every new message for its offline members. */
static chat_err_t batch_recipients(nf_pipeline_t *p, size_t n, int64_t now)
{
    recipients_t r = {.people = chat_strmap_new()};
    if (r.people == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = recipients_online(p, n, &r);
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        const item_t *it = &p->items[i];
        if (it->members == NULL)
            continue;
        for (size_t u = 0; u < it->members->n; u++) {
            const person_t *pp = person_of(&r, it->ev.tenant, it->members->users[u]);
            if (pp != NULL && strcmp(it->members->users[u], it->ev.user) != 0)
                chat_counter_inc(pp->online ? p->m.online : p->m.offline);
        }
        if (first_of_room(p, i)) /* one pass per room: its first item takes the later ones */
            err = room_notes(p, i, n, &r, now);
    }
    chat_strmap_foreach(r.people, person_drop, NULL);
    chat_strmap_free(r.people);
    return err;
}

/* Sends the batch's outbox entries in one pipeline. The outbox batch is empty afterwards
 * whatever happened; on a Redis failure this waits out the backoff step and returns
 * CHAT_ERR_REDIS: the caller builds the entries again (they are idempotent). */
static chat_err_t batch_outbox(nf_pipeline_t *p, chat_backoff_t *b, bool *logged)
{
    if (nq_batch_size(p->outbox) == 0)
        return CHAT_OK;
    chat_err_t err = nq_batch_run(p->outbox, p->redis);
    if (err == CHAT_OK) {
        atomic_store(&p->redis_ok, true);
        return CHAT_OK;
    }
    if (err == CHAT_ERR_NOMEM)
        return err;
    atomic_store(&p->redis_ok, false);
    chat_counter_inc(p->m.redis_errors);
    return chat_service_retry_wait(b, "write outbox", err, logged) ? CHAT_ERR_REDIS
                                                                   : CHAT_ERR_STOPPED;
}

/* One pass over a batch: everything it queues, then the outbox pipeline. */
static chat_err_t batch_pass(nf_pipeline_t *p, size_t n, chat_backoff_t *b, bool *logged)
{
    int64_t now = chat_clock_wall_ms();
    for (size_t i = 0; i < n; i++)
        p->items[i].members = NULL; /* a pass again may find the cache refreshed */
    chat_err_t err = batch_events(p, n, now);
    if (err == CHAT_OK)
        err = batch_members(p, n);
    if (err == CHAT_OK)
        err = batch_recipients(p, n, now);
    if (err == CHAT_OK)
        return batch_outbox(p, b, logged);
    nq_batch_clear(p->outbox); /* what a failed pass queued is not sent */
    return err;
}

static chat_err_t batch_process(nf_pipeline_t *p, size_t n, int64_t start)
{
    chat_err_t err = batch_decode(p, n);
    chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    bool logged = false;
    while (err == CHAT_OK && (err = batch_pass(p, n, &b, &logged)) == CHAT_ERR_REDIS)
        err = CHAT_OK;
    int64_t now = chat_clock_wall_ms();
    for (size_t i = 0; err == CHAT_OK && i < n; i++)
        if (p->items[i].ok && p->items[i].ev.type == CHAT_EV_MSG)
            chat_histogram_observe(p->m.lag_seconds,
                                   (double)(now > p->items[i].ev.ts ? now - p->items[i].ev.ts : 0) /
                                       1000.0);
    items_clear(p, n);
    if (err != CHAT_OK)
        return err;
    chat_bus_consumer_store(p->consumer, p->records, n);
    chat_histogram_observe(p->m.batch_seconds, chat_clock_seconds_since(start));
    return CHAT_OK;
}

chat_err_t nf_pipeline_run(nf_pipeline_t *p)
{
    chat_log_info("notify running", CHAT_F_STR("group", p->conf.group),
                  CHAT_F_STR("from", p->conf.messages_topic),
                  CHAT_F_INT("batch", (int64_t)p->conf.batch_max),
                  CHAT_F_INT("gateways", p->conf.gateways), CHAT_F_BOOL("push", p->conf.push_on),
                  CHAT_F_BOOL("email", p->conf.email_on));
    chat_err_t err = CHAT_OK;
    while (err == CHAT_OK && !chat_signals_stop_requested()) {
        size_t n =
            chat_bus_consumer_poll(p->consumer, p->records, p->conf.batch_max, POLL_TIMEOUT_MS);
        if (n == 0)
            continue;
        err = batch_process(p, n, chat_clock_mono_us());
        chat_bus_records_release(p->records, n);
    }
    if (err == CHAT_ERR_STOPPED)
        chat_log_warn("stopped while MongoDB or Redis were failing; the last batch was not "
                      "committed and will be notified on the next start");
    else if (err != CHAT_OK)
        chat_log_error("notify stopped", CHAT_F_ERR(err));
    return err;
}
