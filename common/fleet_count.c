/* Per-tenant counts over every instance (see fleet_count.h). One mutex guards the local and
 * the others' counts; it is never held while talking to Redis: a round copies the local counts
 * out, publishes them, reads the others' into a new map and swaps it in. */
#include "common/fleet_count.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/redis.h"

#define KEY_MAX 256

struct chat_fleet {
    chat_fleet_conf_t conf;
    char *prefix, *instance;
    char key[KEY_MAX], set_key[KEY_MAX]; /* this instance's string, the set of instances */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_mutex_t round_mu; /* one round at a time (the thread's, or chat_fleet_sync's) */
    chat_strmap_t *local;     /* tenant -> int64_t * */
    chat_strmap_t *others;    /* tenant -> int64_t *: the other instances' sums at the last read */
    int64_t others_read_ms;   /* monotonic time of that read; 0: never */
    int instances;
    bool stopping;
    pthread_t thread;
    bool started;
    chat_redis_t *redis; /* the thread's */
    chat_counter_t *errors;
    bool failing; /* the last round failed (logged once per outage) */
};

/* ---- the string format ---- */

typedef struct encode_ctx {
    char *buf;
    size_t len, cap;
    bool nomem;
} encode_ctx_t;

static void encode_cb(const char *key, void *value, void *ud)
{
    encode_ctx_t *e = ud;
    int64_t n = *(const int64_t *)value;
    if (n <= 0 || e->nomem)
        return;
    size_t need = strlen(key) + 24;
    if (e->len + need + 1 > e->cap) {
        size_t cap = (e->cap + need + 1) * 2;
        char *grown = realloc(e->buf, cap);
        if (grown == NULL) {
            e->nomem = true;
            return;
        }
        e->buf = grown;
        e->cap = cap;
    }
    e->len += (size_t)snprintf(e->buf + e->len, e->cap - e->len, "%s=%lld\n", key, (long long)n);
}

char *chat_fleet_encode(const chat_strmap_t *counts)
{
    encode_ctx_t e = {.buf = malloc(64), .cap = 64};
    if (e.buf == NULL)
        return NULL;
    e.buf[0] = '\0';
    chat_strmap_foreach(counts, encode_cb, &e);
    if (e.nomem) {
        free(e.buf);
        return NULL;
    }
    return e.buf;
}

/* Adds n to tenant's value in m (allocated if absent). False if out of memory. */
static bool count_add(chat_strmap_t *m, const char *tenant, int64_t n)
{
    int64_t *v = chat_strmap_get(m, tenant);
    if (v == NULL) {
        if ((v = calloc(1, sizeof *v)) == NULL)
            return false;
        if (!chat_strmap_put(m, tenant, v)) {
            free(v);
            return false;
        }
    }
    *v += n;
    if (*v < 0)
        *v = 0;
    return true;
}

int chat_fleet_decode_add(const char *s, size_t len, chat_strmap_t *sums)
{
    int added = 0;
    const char *end = s + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *line_end = nl != NULL ? nl : end;
        const char *eq = memchr(s, '=', (size_t)(line_end - s));
        char tenant[KEY_MAX], digits[24];
        size_t tlen = eq != NULL ? (size_t)(eq - s) : 0;
        size_t dlen = eq != NULL ? (size_t)(line_end - eq - 1) : 0;
        if (eq != NULL && tlen > 0 && tlen < sizeof tenant && dlen > 0 && dlen < sizeof digits) {
            memcpy(tenant, s, tlen);
            tenant[tlen] = '\0';
            memcpy(digits, eq + 1, dlen);
            digits[dlen] = '\0';
            char *stop;
            errno = 0;
            long long n = strtoll(digits, &stop, 10);
            if (*stop == '\0' && errno == 0 && n > 0) {
                if (!count_add(sums, tenant, n))
                    return -1;
                added++;
            }
        }
        s = line_end + 1;
    }
    return added;
}

void chat_fleet_counts_clear(chat_strmap_t *counts)
{
    if (counts == NULL)
        return;
    chat_strmap_foreach(counts, chat_strmap_free_value, NULL);
    chat_strmap_clear(counts);
}

/* ---- counts ---- */

void chat_fleet_add(chat_fleet_t *f, const char *tenant, int64_t delta)
{
    pthread_mutex_lock(&f->mu);
    if (!count_add(f->local, tenant, delta))
        chat_log_warn("out of memory counting", CHAT_F_STR("what", f->prefix));
    pthread_mutex_unlock(&f->mu);
}

static int64_t value_of(const chat_strmap_t *m, const char *tenant)
{
    const int64_t *v = chat_strmap_get(m, tenant);
    return v != NULL ? *v : 0;
}

int64_t chat_fleet_local(chat_fleet_t *f, const char *tenant)
{
    pthread_mutex_lock(&f->mu);
    int64_t n = value_of(f->local, tenant);
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* Under the lock: whether the others' counts are recent enough to count. */
static bool others_fresh(const chat_fleet_t *f)
{
    return f->others_read_ms > 0 && chat_clock_mono_ms() - f->others_read_ms <= f->conf.ttl_ms;
}

int64_t chat_fleet_total(chat_fleet_t *f, const char *tenant)
{
    pthread_mutex_lock(&f->mu);
    int64_t n = value_of(f->local, tenant);
    if (others_fresh(f))
        n += value_of(f->others, tenant);
    pthread_mutex_unlock(&f->mu);
    return n;
}

int chat_fleet_instances(chat_fleet_t *f)
{
    pthread_mutex_lock(&f->mu);
    int n = others_fresh(f) && f->instances > 0 ? f->instances : 1;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* ---- the round: publish, then read the others ---- */

/* Publishes value as this instance's string and lists it. */
static chat_err_t publish(chat_fleet_t *f, const char *value)
{
    chat_err_t err = chat_redis_append(f->redis, "SET %s %s PX %d", f->key, value, f->conf.ttl_ms);
    if (err == CHAT_OK)
        err = chat_redis_append(f->redis, "SADD %s %s", f->set_key, f->instance);
    for (int i = 0; err == CHAT_OK && i < 2; i++) {
        redisReply *r = NULL;
        err = chat_redis_reply(f->redis, &r);
        if (err == CHAT_OK && r->type == REDIS_REPLY_ERROR)
            err = CHAT_ERR_REDIS;
        freeReplyObject(r);
    }
    return err;
}

/* Reads the other instances' strings into sums; *alive counts the instances with a string
 * (this one included). Instances listed without a string (expired: dead) leave the set. */
static chat_err_t read_others(chat_fleet_t *f, chat_strmap_t *sums, int *alive)
{
    chat_err_t err = CHAT_OK;
    redisReply *members = chat_redis_command(f->redis, &err, "SMEMBERS %s", f->set_key);
    if (members == NULL)
        return err;
    *alive = 1;
    size_t n = members->type == REDIS_REPLY_ARRAY ? members->elements : 0;
    size_t queued = 0;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        const redisReply *m = members->element[i];
        if (m->type != REDIS_REPLY_STRING || strcmp(m->str, f->instance) == 0)
            continue;
        err = chat_redis_append(f->redis, "GET %s:%s", f->prefix, m->str);
        queued++;
    }
    /* The dead leave the set once every queued reply is read: a command in between would
     * find the pipeline's replies still unread (and be refused). */
    bool *dead = calloc(n > 0 ? n : 1, sizeof *dead);
    size_t got = 0;
    for (size_t i = 0; i < n && got < queued; i++) {
        const redisReply *m = members->element[i];
        if (m->type != REDIS_REPLY_STRING || strcmp(m->str, f->instance) == 0)
            continue;
        got++;
        redisReply *r = NULL;
        chat_err_t e = chat_redis_reply(f->redis, &r);
        if (e != CHAT_OK) {
            err = e;
            break;
        }
        if (err == CHAT_OK && r->type == REDIS_REPLY_STRING) {
            (*alive)++;
            if (chat_fleet_decode_add(r->str, r->len, sums) < 0)
                err = CHAT_ERR_NOMEM;
        } else if (r->type == REDIS_REPLY_NIL && dead != NULL) {
            dead[i] = true;
        }
        freeReplyObject(r);
    }
    for (size_t i = 0; dead != NULL && got == queued && i < n; i++) {
        if (dead[i]) {
            redisReply *gone = chat_redis_command(f->redis, NULL, "SREM %s %s", f->set_key,
                                                  members->element[i]->str);
            freeReplyObject(gone);
        }
    }
    free(dead);
    freeReplyObject(members);
    return err;
}

static chat_err_t round_run(chat_fleet_t *f)
{
    if (f->redis == NULL) {
        chat_err_t err = chat_redis_connect(f->conf.redis_url, f->conf.timeout_ms, &f->redis);
        if (err != CHAT_OK)
            return err;
    }
    pthread_mutex_lock(&f->mu);
    char *value = chat_fleet_encode(f->local);
    pthread_mutex_unlock(&f->mu);
    if (value == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = publish(f, value);
    free(value);
    chat_strmap_t *sums = chat_strmap_new();
    int alive = 1;
    if (sums == NULL)
        err = CHAT_ERR_NOMEM;
    if (err == CHAT_OK)
        err = read_others(f, sums, &alive);
    if (err == CHAT_OK) {
        pthread_mutex_lock(&f->mu);
        chat_strmap_t *old = f->others;
        f->others = sums;
        f->others_read_ms = chat_clock_mono_ms();
        f->instances = alive;
        pthread_mutex_unlock(&f->mu);
        sums = old;
    }
    chat_fleet_counts_clear(sums);
    chat_strmap_free(sums);
    return err;
}

chat_err_t chat_fleet_sync(chat_fleet_t *f)
{
    pthread_mutex_lock(&f->round_mu);
    chat_err_t err = round_run(f);
    pthread_mutex_unlock(&f->round_mu);
    return err;
}

static void *fleet_main(void *arg)
{
    chat_fleet_t *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        pthread_mutex_unlock(&f->mu);
        chat_err_t err = chat_fleet_sync(f);
        if (err != CHAT_OK) {
            chat_counter_inc(f->errors);
            if (!f->failing)
                chat_log_warn("counts not shared through Redis: the other instances' counts "
                              "stop counting after the ttl",
                              CHAT_F_STR("what", f->prefix), CHAT_F_ERR(err),
                              CHAT_F_INT("ttl_ms", f->conf.ttl_ms));
        } else if (f->failing) {
            chat_log_info("counts shared through Redis again", CHAT_F_STR("what", f->prefix));
        }
        f->failing = err != CHAT_OK;
        pthread_mutex_lock(&f->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += f->conf.period_ms / 1000;
        until.tv_nsec += (long)(f->conf.period_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!f->stopping && pthread_cond_timedwait(&f->cv, &f->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

chat_err_t chat_fleet_new(const chat_fleet_conf_t *conf, chat_fleet_t **out)
{
    *out = NULL;
    if (conf->prefix == NULL || conf->instance == NULL ||
        strlen(conf->prefix) + strlen(conf->instance) + 16 > KEY_MAX)
        return CHAT_ERR_CONFIG;
    chat_fleet_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return CHAT_ERR_NOMEM;
    f->conf = *conf;
    if (f->conf.period_ms <= 0)
        f->conf.period_ms = 1000;
    if (f->conf.ttl_ms <= f->conf.period_ms)
        f->conf.ttl_ms = 5 * f->conf.period_ms;
    f->prefix = strdup(conf->prefix);
    f->instance = strdup(conf->instance);
    f->local = chat_strmap_new();
    f->others = chat_strmap_new();
    snprintf(f->key, sizeof f->key, "%s:%s", conf->prefix, conf->instance);
    snprintf(f->set_key, sizeof f->set_key, "%s:instances", conf->prefix);
    if (conf->metrics != NULL && conf->errors_metric != NULL)
        f->errors = chat_metrics_counter(
            conf->metrics, conf->errors_metric,
            "Rounds of sharing per-tenant counts through Redis that failed.", NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->round_mu, NULL);
    if (f->prefix == NULL || f->instance == NULL || f->local == NULL || f->others == NULL) {
        chat_fleet_free(f);
        return CHAT_ERR_NOMEM;
    }
    if (pthread_create(&f->thread, NULL, fleet_main, f) != 0) {
        chat_fleet_free(f);
        return CHAT_ERR_NOMEM;
    }
    f->started = true;
    *out = f;
    return CHAT_OK;
}

void chat_fleet_free(chat_fleet_t *f)
{
    if (f == NULL)
        return;
    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->stopping = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
    }
    if (f->redis != NULL) { /* this instance's counts stop counting now, not after the ttl */
        redisReply *r = chat_redis_command(f->redis, NULL, "DEL %s", f->key);
        freeReplyObject(r);
        r = chat_redis_command(f->redis, NULL, "SREM %s %s", f->set_key, f->instance);
        freeReplyObject(r);
    }
    chat_redis_free(f->redis);
    chat_fleet_counts_clear(f->local);
    chat_strmap_free(f->local);
    chat_fleet_counts_clear(f->others);
    chat_strmap_free(f->others);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->round_mu);
    free(f->prefix);
    free(f->instance);
    free(f);
}
