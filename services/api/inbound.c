/* The api service's way into the room's stream: events produced to chat.inbound keyed
 * tenant/room like a gateway's (and moderators' and rescans' verdicts to chat.moderation), each
 * call waiting for Kafka's acknowledgement; the answers (ack or error frames) read back from
 * the Redis reply list of the request's origin conn. */
#include "services/api/inbound.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/json.h"
#include "common/log.h"
#include "common/names.h"
#include "common/redis.h"

#define INSTANCE_PREFIX_MAX 24 /* of the instance id in an origin conn */
#define PRODUCE_BATCH_MAX 1024 /* notices produced before their acknowledgements are awaited */

/* Kafka's acknowledgements of a group of produced records. */
typedef struct delivery_wait {
    pthread_mutex_t lock;
    pthread_cond_t done;
    size_t pending;
    chat_err_t err; /* the first failure */
} delivery_wait_t;

static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static char conn_prefix[INSTANCE_PREFIX_MAX + 16]; /* "<instance>.<boot id>", set once */
static atomic_uint_fast64_t conn_counter;

static pthread_once_t redis_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t redis_key;

/* Kafka's report of one record (poll thread): counts it off its group's wait, keeping the
 * first failure. */
static void on_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                        int32_t partition, int64_t offset)
{
    (void)ud;
    (void)partition;
    (void)offset;
    delivery_wait_t *w = opaque;
    if (err != CHAT_OK)
        chat_log_warn("record not delivered", CHAT_F_ERR(err),
                      CHAT_F_STR("reason", reason != NULL ? reason : ""));
    pthread_mutex_lock(&w->lock);
    if (err != CHAT_OK && w->err == CHAT_OK)
        w->err = err;
    w->pending--;
    pthread_cond_broadcast(&w->done);
    pthread_mutex_unlock(&w->lock);
}

chat_err_t api_inbound_open(api_ctx_t *ctx, const char *brokers, int linger_ms,
                            int connect_timeout_ms)
{
    chat_bus_producer_conf_t conf = {
        .brokers = brokers,
        .client_id = "chat-api",
        .linger_ms = linger_ms,
        .poll_thread = true,
        .on_delivery = on_delivery,
        .connect_timeout_ms = connect_timeout_ms,
        .metrics = ctx->metrics,
    };
    return chat_bus_producer_new(&conf, &ctx->producer);
}

void api_inbound_close(api_ctx_t *ctx)
{
    chat_bus_producer_destroy(ctx->producer);
    ctx->producer = NULL;
}

/* Produces one record of w (pending counted before, so that its report cannot come first). */
static chat_err_t produce_one(api_ctx_t *ctx, const char *topic, const char *key, int keylen,
                              const void *json, size_t len, delivery_wait_t *w)
{
    pthread_mutex_lock(&w->lock);
    w->pending++;
    pthread_mutex_unlock(&w->lock);
    chat_err_t err = chat_bus_produce(ctx->producer, topic, CHAT_BUS_PARTITION_ANY, key,
                                      (size_t)keylen, json, len, w);
    if (err != CHAT_OK) {
        pthread_mutex_lock(&w->lock);
        w->pending--;
        pthread_mutex_unlock(&w->lock);
    }
    return err;
}

/* Waits for every report of w (librdkafka reports each record within its message timeout) and
 * returns the first failure. */
static chat_err_t wait_all(delivery_wait_t *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->pending > 0)
        pthread_cond_wait(&w->done, &w->lock);
    chat_err_t err = w->err;
    pthread_mutex_unlock(&w->lock);
    return err;
}

/* An empty group of records to wait for; wait_destroy releases it. */
static void wait_init(delivery_wait_t *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->done, NULL);
}

static void wait_destroy(delivery_wait_t *w)
{
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->lock);
}

/* Waits for the group's records and releases it: returns err when producing failed, else the
 * outcome of the deliveries. */
static chat_err_t wait_end(delivery_wait_t *w, chat_err_t err)
{
    chat_err_t delivered = wait_all(w);
    wait_destroy(w);
    return err != CHAT_OK ? err : delivered;
}

/* The partition key of the room into key (CHAT_ROOM_KEY_MAX bytes): its length, or -1 when
 * the room makes no key or there is no producer. */
static int produce_key(const api_ctx_t *ctx, const char *tenant, const char *room, char *key)
{
    int keylen = chat_room_key(tenant, room, key, CHAT_ROOM_KEY_MAX);
    return keylen < 0 || ctx->producer == NULL ? -1 : keylen;
}

chat_err_t api_inbound_produce(api_ctx_t *ctx, const char *tenant, const char *room,
                               const void *event_json, size_t len)
{
    char key[CHAT_ROOM_KEY_MAX];
    int keylen = produce_key(ctx, tenant, room, key);
    if (keylen < 0)
        return CHAT_ERR_INVALID;
    delivery_wait_t w;
    wait_init(&w);
    chat_err_t err = produce_one(ctx, ctx->topic_inbound, key, keylen, event_json, len, &w);
    err = wait_end(&w, err);
    if (err != CHAT_OK)
        chat_log_warn("produce to chat.inbound failed", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("room", room), CHAT_F_ERR(err));
    return err;
}

/* Sets conn_prefix once: the instance id (its characters that are safe in a cid) and a random
 * boot id, so that tokens never repeat across restarts (a notice's cid is its token, and the
 * message service deduplicates cids forever). */
static void conn_prefix_init(const char *instance)
{
    pthread_mutex_lock(&conn_lock);
    if (conn_prefix[0] == '\0') {
        char safe[INSTANCE_PREFIX_MAX + 1];
        size_t n = 0;
        for (const char *p = instance != NULL ? instance : ""; *p && n < INSTANCE_PREFIX_MAX; p++) {
            char c = *p;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-')
                safe[n++] = c;
        }
        safe[n] = '\0';
        unsigned char boot[5];
        if (RAND_bytes(boot, sizeof boot) != 1) {
            uint64_t t = (uint64_t)chat_clock_wall_ms() ^ (uint64_t)chat_clock_mono_us();
            memcpy(boot, &t, sizeof boot);
        }
        snprintf(conn_prefix, sizeof conn_prefix, "%s.%02x%02x%02x%02x%02x", n > 0 ? safe : "api",
                 boot[0], boot[1], boot[2], boot[3], boot[4]);
    }
    pthread_mutex_unlock(&conn_lock);
}

void api_origin_conn_new(api_ctx_t *ctx, char *conn, size_t len)
{
    conn_prefix_init(ctx->instance);
    unsigned long long n = (unsigned long long)atomic_fetch_add(&conn_counter, 1) + 1;
    snprintf(conn, len, "%s-%llu", conn_prefix, n); /* set once, before: read-only now */
}

chat_err_t api_event_encode(chat_event_t *ev, char **json, size_t *len)
{
    ev->origin_gw = CHAT_API_ORIGIN;
    if (!ev->has_ts) {
        ev->ts = chat_clock_wall_ms();
        ev->has_ts = true;
    }
    return chat_event_encode(ev, json, len);
}

chat_err_t api_event_produce(api_ctx_t *ctx, chat_event_t *ev)
{
    char *json = NULL;
    size_t len = 0;
    chat_err_t err = api_event_encode(ev, &json, &len);
    if (err == CHAT_OK)
        err = api_inbound_produce(ctx, ev->tenant, ev->room, json, len);
    free(json);
    return err;
}

/* Encodes the send event of one notice, with a fresh origin conn that is also its cid. */
static chat_err_t notice_encode(api_ctx_t *ctx, const char *tenant, const char *room,
                                const api_notice_t *n, char **json, size_t *len)
{
    char conn[CHAT_ORIGIN_CONN_MAX];
    api_origin_conn_new(ctx, conn, sizeof conn);
    chat_event_t ev = {.type = CHAT_EV_SEND,
                       .tenant = tenant,
                       .room = room,
                       .user = CHAT_SYSTEM_USER,
                       .cid = conn,
                       .text = n->text != NULL ? n->text : "",
                       .notice = n->notice,
                       .target = n->target,
                       .origin_conn = conn};
    return api_event_encode(&ev, json, len);
}

chat_err_t api_notices_produce(api_ctx_t *ctx, const char *tenant, const char *room,
                               const api_notice_t *notices, size_t n)
{
    char key[CHAT_ROOM_KEY_MAX];
    int keylen = produce_key(ctx, tenant, room, key);
    if (keylen < 0)
        return CHAT_ERR_INVALID;
    chat_err_t err = CHAT_OK;
    for (size_t start = 0; start < n && err == CHAT_OK; start += PRODUCE_BATCH_MAX) {
        delivery_wait_t w;
        wait_init(&w);
        for (size_t i = start; i < n && i < start + PRODUCE_BATCH_MAX && err == CHAT_OK; i++) {
            char *text = NULL;
            size_t len = 0;
            err = notice_encode(ctx, tenant, room, &notices[i], &text, &len);
            if (err == CHAT_OK)
                err = produce_one(ctx, ctx->topic_inbound, key, keylen, text, len, &w);
            free(text);
        }
        err = wait_end(&w, err);
    }
    if (err != CHAT_OK)
        chat_log_warn("notices not produced", CHAT_F_STR("tenant", tenant),
                      CHAT_F_STR("room", room), CHAT_F_INT("notices", n), CHAT_F_ERR(err));
    return err;
}

chat_err_t api_verdicts_produce(api_ctx_t *ctx, const chat_event_t *verdicts, size_t n)
{
    if (ctx->producer == NULL || ctx->topic_moderation == NULL)
        return CHAT_ERR_INVALID;
    chat_err_t err = CHAT_OK;
    for (size_t start = 0; start < n && err == CHAT_OK; start += PRODUCE_BATCH_MAX) {
        delivery_wait_t w;
        wait_init(&w);
        for (size_t i = start; i < n && i < start + PRODUCE_BATCH_MAX && err == CHAT_OK; i++) {
            const chat_event_t *v = &verdicts[i];
            char key[CHAT_ROOM_KEY_MAX];
            int keylen =
                v->type == CHAT_EV_VERDICT ? produce_key(ctx, v->tenant, v->room, key) : -1;
            char *json = NULL;
            size_t len = 0;
            err = keylen < 0 ? CHAT_ERR_INVALID : chat_event_encode(v, &json, &len);
            if (err == CHAT_OK)
                err = produce_one(ctx, ctx->topic_moderation, key, keylen, json, len, &w);
            free(json);
        }
        err = wait_end(&w, err);
    }
    if (err != CHAT_OK)
        chat_log_warn("verdicts not produced", CHAT_F_STR("topic", ctx->topic_moderation),
                      CHAT_F_INT("verdicts", n), CHAT_F_ERR(err));
    return err;
}

/* ---- Redis ---- */

static void redis_key_free(void *value)
{
    chat_redis_free(value);
}

static void redis_key_create(void)
{
    pthread_key_create(&redis_key, redis_key_free);
}

chat_redis_t *api_redis_take(api_ctx_t *ctx)
{
    pthread_once(&redis_key_once, redis_key_create);
    chat_redis_t *r = pthread_getspecific(redis_key);
    if (r != NULL)
        return r;
    chat_err_t err = chat_redis_connect(ctx->redis_uri, ctx->redis_timeout_ms, &r);
    if (err != CHAT_OK) {
        chat_log_warn("Redis unreachable", CHAT_F_ERR(err));
        return NULL;
    }
    if (pthread_setspecific(redis_key, r) != 0) {
        chat_redis_free(r);
        return NULL;
    }
    return r;
}

void api_redis_release(void)
{
    pthread_once(&redis_key_once, redis_key_create);
    chat_redis_t *r = pthread_getspecific(redis_key);
    pthread_setspecific(redis_key, NULL);
    chat_redis_free(r);
}

chat_err_t api_reply_wait(api_ctx_t *ctx, const char *conn, int64_t timeout_ms, cJSON **frame)
{
    *frame = NULL;
    char key[CHAT_API_REPLY_KEY_MAX];
    if (chat_api_reply_key(conn, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    chat_redis_t *r = api_redis_take(ctx);
    if (r == NULL)
        return CHAT_ERR_REDIS;
    char seconds[32];
    snprintf(seconds, sizeof seconds, "%.3f", (double)(timeout_ms > 1 ? timeout_ms : 1) / 1000.0);
    chat_err_t err = CHAT_OK;
    redisReply *reply = chat_redis_command(r, &err, "BLPOP %s %s", key, seconds);
    if (reply == NULL)
        return err != CHAT_OK ? err : CHAT_ERR_REDIS;
    if (reply->type == REDIS_REPLY_NIL) {
        err = CHAT_ERR_TIMEOUT;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
               reply->element[1]->type == REDIS_REPLY_STRING) {
        *frame = chat_json_parse_exact(reply->element[1]->str, reply->element[1]->len, NULL, 0);
        err = *frame != NULL ? CHAT_OK : CHAT_ERR_INVALID;
    } else {
        err = CHAT_ERR_REDIS;
    }
    freeReplyObject(reply);
    return err;
}
