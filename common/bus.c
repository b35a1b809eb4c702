/* Kafka producer and consumer over librdkafka, with the project's settings, KAFKA_*
 * environment overrides, librdkafka's logs routed into the JSON logger and optional
 * metrics. The topic administration that shares this set-up lives in bus_admin.c. */
#include "common/bus.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/bus_int.h"
#include "common/clock.h"
#include "common/kafka_stats.h"
#include "common/log.h"

extern char **environ;

#define BUS_ERRSTR_LEN 512
#define BUS_QUEUE_FULL_WAIT_MS 5000 /* chat_bus_producer_conf_t.queue_full_wait_ms 0 */
#define BUS_DESTROY_FLUSH_MS 10000
#define BUS_PURGE_FLUSH_MS 2000
#define BUS_WATERMARK_TIMEOUT_MS 5000
/* "topic=\"<249 chars>\",partition=\"<int32>\"": Kafka topic names are at most 249
 * characters. */
#define BUS_LABELS_LEN 320
/* statistics.interval.ms of a consumer with metrics (KAFKA_STATISTICS_INTERVAL_MS overrides). */
#define BUS_STATS_INTERVAL_MS "5000"

/* ---- callbacks every handle shares ---- */

/* librdkafka logs from its own threads, where no librdkafka call is allowed; the JSON
 * logger is thread-safe. Syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug.
 * "FAIL" lines (a broker connection failed) are the same events the error callback
 * reports at warn, so they are kept at debug to avoid a second, louder copy. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    chat_log_level_t lvl;
    if (level >= 7 || (fac != NULL && strcmp(fac, "FAIL") == 0))
        lvl = CHAT_LOG_DEBUG;
    else if (level >= 5)
        lvl = CHAT_LOG_INFO;
    else if (level == 4)
        lvl = CHAT_LOG_WARN;
    else
        lvl = CHAT_LOG_ERROR;
    CHAT_LOG_(lvl, "librdkafka", CHAT_F_STR("facility", fac), CHAT_F_STR("text", buf), CHAT_F_END);
}

/* Transport and broker errors are usually transient (librdkafka retries): warn. A fatal
 * error (e.g. the idempotent producer lost its guarantees) leaves the handle unusable. */
static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[BUS_ERRSTR_LEN];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        chat_log_error("kafka fatal error", CHAT_F_STR("client", rd_kafka_name(rk)),
                       CHAT_F_STR("kafka_err", rd_kafka_err2name(orig)),
                       CHAT_F_STR("reason", fatal));
        return;
    }
    chat_log_warn("kafka error", CHAT_F_STR("client", rd_kafka_name(rk)),
                  CHAT_F_STR("kafka_err", rd_kafka_err2name((rd_kafka_resp_err_t)err)),
                  CHAT_F_STR("reason", reason));
}

/* ---- configuration ---- */

/* Sets one property the project chose; a failure is a programming or version error. */
static chat_err_t conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[BUS_ERRSTR_LEN];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) == RD_KAFKA_CONF_OK)
        return CHAT_OK;
    chat_log_error("kafka property rejected", CHAT_F_STR("property", name),
                   CHAT_F_STR("value", value), CHAT_F_STR("reason", errstr));
    return CHAT_ERR_CONFIG;
}

typedef struct conf_pair {
    const char *name;
    const char *value;
} conf_pair_t;

static chat_err_t conf_set_pairs(rd_kafka_conf_t *conf, const conf_pair_t *pairs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        chat_err_t err = conf_set(conf, pairs[i].name, pairs[i].value);
        if (err != CHAT_OK)
            return err;
    }
    return CHAT_OK;
}

/* Applies every KAFKA_X_Y=value of the environment as librdkafka property "x.y", after the
 * project's settings so that an operator can override them. Producers and consumers get
 * the same variables: a property of the other kind is accepted by rd_kafka_conf_set and
 * only draws a warning ("... is a consumer property and will be ignored by this producer
 * instance") from rd_kafka_new, which goes to the log like any librdkafka line.
 * Variables that env_is_foreign recognises are skipped.
 * Values are never logged: they may be credentials (sasl.password). Returns
 * CHAT_ERR_CONFIG, logged with the variable name, on the first rejected variable. */
/* True for KAFKA_* variables that are not librdkafka settings but are common where Kafka
 * runs: Kubernetes service links of a Service named "kafka" (KAFKA_PORT,
 * KAFKA_PORT_9092_TCP_ADDR, KAFKA_SERVICE_HOST, ...) and the JVM options of Kafka's own
 * scripts (KAFKA_HEAP_OPTS, KAFKA_OPTS, ...). Failing on them would stop every service in
 * such an environment; no librdkafka property is named port*, service.* or *.opts. */
static bool env_is_foreign(const char *var, size_t namelen)
{
    const char *name = var + 6; /* after "KAFKA_" */
    size_t n = namelen - 6;
    if ((n >= 4 && strncmp(name, "PORT", 4) == 0 && (n == 4 || name[4] == '_')) ||
        (n >= 8 && strncmp(name, "SERVICE_", 8) == 0))
        return true;
    return n >= 4 && strncmp(name + n - 4, "OPTS", 4) == 0;
}

static chat_err_t conf_apply_env(rd_kafka_conf_t *conf)
{
    static const char prefix[] = "KAFKA_";
    for (char **env = environ; env != NULL && *env != NULL; env++) {
        const char *var = *env;
        const char *eq = strchr(var, '=');
        if (strncmp(var, prefix, sizeof prefix - 1) != 0 || eq == NULL)
            continue;
        if (env_is_foreign(var, (size_t)(eq - var))) {
            char skipped[128];
            snprintf(skipped, sizeof skipped, "%.*s", (int)(eq - var), var);
            chat_log_debug("kafka environment variable ignored (not a librdkafka setting)",
                           CHAT_F_STR("var", skipped));
            continue;
        }
        char name[256];
        char varname[256];
        size_t namelen = (size_t)(eq - var) - (sizeof prefix - 1);
        if (namelen >= sizeof name) {
            chat_log_error("kafka environment variable name too long",
                           CHAT_F_INT("length", namelen));
            return CHAT_ERR_CONFIG;
        }
        for (size_t i = 0; i < namelen; i++) {
            char ch = var[sizeof prefix - 1 + i];
            name[i] = ch == '_' ? '.' : (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
        }
        name[namelen] = '\0';
        snprintf(varname, sizeof varname, "%.*s", (int)(eq - var), var);

        char errstr[BUS_ERRSTR_LEN];
        if (rd_kafka_conf_set(conf, name, eq + 1, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
            chat_log_error("kafka environment variable rejected", CHAT_F_STR("var", varname),
                           CHAT_F_STR("property", name), CHAT_F_STR("reason", errstr));
            return CHAT_ERR_CONFIG;
        }
        chat_log_debug("kafka property from environment", CHAT_F_STR("var", varname),
                       CHAT_F_STR("property", name));
    }
    return CHAT_OK;
}

/* A configuration with what every handle needs: brokers, name and our callbacks.
 * Returns NULL (logged) if a value is rejected. */
static rd_kafka_conf_t *conf_base(const char *brokers, const char *client_id)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const conf_pair_t pairs[] = {
        {"bootstrap.servers", brokers},
        {"client.id", client_id != NULL ? client_id : "chat"},
        /* Brokers close idle connections routinely; that is not worth a log line. */
        {"log.connection.close", "false"},
        /* librdkafka leaves Nagle on: a request written while an earlier one is not yet
         * acknowledged (a produce behind a produce, a commit behind a fetch) would wait for
         * that ACK, which the broker may delay. Every hop of a message is latency. */
        {"socket.nagle.disable", "true"},
    };
    if (conf_set_pairs(conf, pairs, sizeof pairs / sizeof pairs[0]) != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    return conf;
}

/* Requests broker metadata until one answers or timeout_ms passes. Returns CHAT_OK or
 * CHAT_ERR_TIMEOUT (logged with the brokers). */
static chat_err_t wait_for_brokers(rd_kafka_t *rk, const char *brokers, int timeout_ms)
{
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    rd_kafka_resp_err_t err;
    do {
        const struct rd_kafka_metadata *md = NULL;
        int wait = chat_clock_remaining_ms(deadline);
        err = rd_kafka_metadata(rk, 0, NULL, &md, wait > 0 ? wait : 1);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_metadata_destroy(md);
            return CHAT_OK;
        }
        /* With every broker down the request can fail at once: do not spin. */
        wait = chat_clock_remaining_ms(deadline);
        if (wait > 0)
            chat_clock_sleep_ms(wait < 100 ? wait : 100);
    } while (chat_clock_remaining_ms(deadline) > 0);
    chat_log_error("kafka brokers unreachable", CHAT_F_STR("brokers", brokers),
                   CHAT_F_INT("timeout_ms", timeout_ms),
                   CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
    return CHAT_ERR_TIMEOUT;
}

/* Applies the KAFKA_* variables, creates the handle (taking conf in every case) and, if
 * connect_timeout_ms > 0, waits for the brokers. Returns CHAT_ERR_CONFIG or
 * CHAT_ERR_KAFKA (rd_kafka_new failed) or CHAT_ERR_TIMEOUT, all logged. */
static chat_err_t handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *brokers,
                             int connect_timeout_ms, rd_kafka_t **out)
{
    chat_err_t err = conf_apply_env(conf);
    if (err != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        return err;
    }
    char errstr[BUS_ERRSTR_LEN];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        chat_log_error("kafka client creation failed", CHAT_F_STR("brokers", brokers),
                       CHAT_F_STR("reason", errstr));
        return CHAT_ERR_KAFKA;
    }
    if (connect_timeout_ms > 0) {
        err = wait_for_brokers(rk, brokers, connect_timeout_ms);
        if (err != CHAT_OK) {
            rd_kafka_destroy(rk);
            return err;
        }
    }
    *out = rk;
    return CHAT_OK;
}

chat_err_t chat_bus__admin_handle_new(const char *brokers, int timeout_ms, rd_kafka_t **out)
{
    if (brokers == NULL || *brokers == '\0' || out == NULL)
        return CHAT_ERR_INVALID;
    rd_kafka_conf_t *conf = conf_base(brokers, "chat-admin");
    if (conf == NULL)
        return CHAT_ERR_CONFIG;
    if (conf_set(conf, "allow.auto.create.topics", "false") != CHAT_OK) {
        rd_kafka_conf_destroy(conf);
        return CHAT_ERR_CONFIG;
    }
    return handle_new(RD_KAFKA_PRODUCER, conf, brokers, timeout_ms > 0 ? timeout_ms : 1, out);
}

/* Project error for a librdkafka error: timeouts are told apart, the rest is Kafka's. */
static chat_err_t err_from_kafka(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return CHAT_OK;
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return CHAT_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        return CHAT_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return CHAT_ERR_INVALID;
    default:
        return CHAT_ERR_KAFKA;
    }
}

/* ---- metrics: per topic, its counters resolved once ----
 * A record's cost is a walk over the handle's few topics and an atomic add: the label text
 * is formatted, and the registry's lock taken, only when a topic is first seen. */

typedef enum series_result { SERIES_OK, SERIES_ERROR } series_result_t;

/* One topic's counters. Entries are only ever prepended, never changed or removed before
 * the cache is destroyed, so readers walk the list without a lock. */
typedef struct topic_series {
    struct topic_series *next;
    char *topic;
    chat_counter_t *counters[2]; /* by series_result_t; [SERIES_ERROR] only with err_name */
} topic_series_t;

typedef struct series_cache {
    pthread_mutex_t lock; /* serialises additions */
    chat_metrics_t *metrics;
    const char *name; /* SERIES_OK's family, label topic */
    const char *help;
    const char *err_name; /* SERIES_ERROR's family (registered with the first), or NULL */
    const char *err_help;
    _Atomic(topic_series_t *) head;
} series_cache_t;

/* Returns NULL without metrics. Names and helps must be string literals; err_name may be
 * NULL (a cache of one family). */
static series_cache_t *series_cache_new(chat_metrics_t *metrics, const char *name, const char *help,
                                        const char *err_name, const char *err_help)
{
    if (metrics == NULL)
        return NULL;
    series_cache_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->metrics = metrics;
    c->name = name;
    c->help = help;
    c->err_name = err_name;
    c->err_help = err_help;
    atomic_init(&c->head, NULL);
    return c;
}

static void series_cache_destroy(series_cache_t *c)
{
    if (c == NULL)
        return;
    topic_series_t *t = atomic_load(&c->head);
    while (t != NULL) {
        topic_series_t *next = t->next;
        free(t->topic);
        free(t);
        t = next;
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static topic_series_t *series_find(topic_series_t *t, const char *topic)
{
    for (; t != NULL; t = t->next) {
        if (strcmp(t->topic, topic) == 0)
            return t;
    }
    return NULL;
}

/* Registers topic's counters (both families at once, so the error series reads 0 as soon as
 * the topic is known); topic names are [a-zA-Z0-9._-], so they need no label escaping.
 * NULL if out of memory or the registry refused a series. */
static topic_series_t *series_register(series_cache_t *c, const char *topic)
{
    topic_series_t *t = calloc(1, sizeof *t);
    if (t == NULL || (t->topic = strdup(topic)) == NULL) {
        free(t);
        return NULL;
    }
    char labels[BUS_LABELS_LEN];
    snprintf(labels, sizeof labels, "topic=\"%s\"", topic);
    t->counters[SERIES_OK] = chat_metrics_counter(c->metrics, c->name, c->help, labels);
    if (c->err_name != NULL)
        t->counters[SERIES_ERROR] =
            chat_metrics_counter(c->metrics, c->err_name, c->err_help, labels);
    if (t->counters[SERIES_OK] == NULL ||
        (c->err_name != NULL && t->counters[SERIES_ERROR] == NULL)) {
        free(t->topic);
        free(t);
        return NULL;
    }
    return t;
}

/* The counters of topic, registered on first use; NULL if that failed (retried next time). */
static topic_series_t *series_topic(series_cache_t *c, const char *topic)
{
    topic_series_t *t = series_find(atomic_load_explicit(&c->head, memory_order_acquire), topic);
    if (t != NULL)
        return t;
    pthread_mutex_lock(&c->lock);
    topic_series_t *head = atomic_load_explicit(&c->head, memory_order_relaxed);
    t = series_find(head, topic); /* another thread may have added it meanwhile */
    if (t == NULL && (t = series_register(c, topic)) != NULL) {
        t->next = head;
        atomic_store_explicit(&c->head, t, memory_order_release);
    }
    pthread_mutex_unlock(&c->lock);
    return t;
}

/* Adds n to topic's series of result (a cache without err_name counts only SERIES_OK). */
static void series_add(series_cache_t *c, const char *topic, series_result_t result, uint64_t n)
{
    if (c == NULL || topic == NULL)
        return;
    topic_series_t *t = series_topic(c, topic);
    if (t != NULL)
        chat_counter_add(t->counters[result], n);
}

/* Creates the series of topics known up front (NULL-terminated list, may be NULL), so that
 * they read 0 before the first record. */
static void series_preregister(series_cache_t *c, const char *const *topics)
{
    for (; c != NULL && topics != NULL && *topics != NULL; topics++)
        series_topic(c, *topics);
}

/* ---- producer ---- */

struct chat_bus_producer {
    rd_kafka_t *rk;
    chat_bus_delivery_fn on_delivery;
    void *ud;
    atomic_int outstanding;  /* produced, delivery callback not finished */
    atomic_ullong delivered; /* delivery callbacks run, for chat_bus_producer_poll */
    /* Monotonic ms of the last progress: a record acknowledged by the broker, or a record
     * produced while none was outstanding (chat_bus_producer_stalled_ms). */
    atomic_llong progress_ms;
    pthread_mutex_t idle_lock;
    pthread_cond_t idle_cond; /* outstanding reached 0 */
    bool has_thread;
    atomic_bool stopping;
    pthread_t thread;
    /* chat_kafka_produced_total{topic} and chat_kafka_produce_errors_total{topic}, or NULL */
    series_cache_t *produced;
    int queue_full_wait_ms; /* resolved: 0 = fail at once */
};

static void producer_outstanding_sub(chat_bus_producer_t *p)
{
    if (atomic_fetch_sub(&p->outstanding, 1) == 1) {
        pthread_mutex_lock(&p->idle_lock);
        pthread_cond_broadcast(&p->idle_cond);
        pthread_mutex_unlock(&p->idle_lock);
    }
}

/* One delivery report; the per-record opaque travels as the message's _private. Failures
 * are not logged one by one (a broker outage would flood the log): the callback and the
 * error series carry them. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    chat_bus_producer_t *p = opaque;
    bool ok = m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (ok)
        atomic_store(&p->progress_ms, chat_clock_mono_ms());
    series_add(p->produced, rd_kafka_topic_name(m->rkt), ok ? SERIES_OK : SERIES_ERROR, 1);
    if (p->on_delivery != NULL) {
        chat_err_t err = ok ? CHAT_OK : CHAT_ERR_KAFKA;
        if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
            err = CHAT_ERR_TIMEOUT;
        p->on_delivery(p->ud, m->_private, err, rd_kafka_err2str(m->err), m->partition, m->offset);
    }
    atomic_fetch_add(&p->delivered, 1);
    producer_outstanding_sub(p);
}

static void *producer_poll_thread(void *arg)
{
    chat_bus_producer_t *p = arg;
    while (!atomic_load(&p->stopping))
        rd_kafka_poll(p->rk, 100);
    return NULL;
}

static rd_kafka_conf_t *producer_conf(const chat_bus_producer_conf_t *conf, chat_bus_producer_t *p)
{
    rd_kafka_conf_t *kconf = conf_base(conf->brokers, conf->client_id);
    if (kconf == NULL)
        return NULL;
    char linger[16];
    snprintf(linger, sizeof linger, "%d", conf->linger_ms > 0 ? conf->linger_ms : 0);
    const conf_pair_t pairs[] = {
        /* No duplicates or reordering on retries; implies acks=all. */
        {"enable.idempotence", "true"},
        {"acks", "all"},
        /* Same key -> same partition as the Java client, so tools agree with us. */
        {"partitioner", "murmur2_random"},
        {"linger.ms", linger},
        /* A record not on the brokers after 30 s is reported as failed. */
        {"message.timeout.ms", "30000"},
        {"queue.buffering.max.messages", "100000"},
        {"queue.buffering.max.kbytes", "131072"},
    };
    if (conf_set_pairs(kconf, pairs, sizeof pairs / sizeof pairs[0]) != CHAT_OK) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
    rd_kafka_conf_set_opaque(kconf, p);
    return kconf;
}

/* The conf's queue_full_wait_ms as chat_bus_produce uses it: 0 is the default wait and
 * CHAT_BUS_NO_WAIT (any negative value) none. */
static int queue_full_wait(int conf_ms)
{
    if (conf_ms == 0)
        return BUS_QUEUE_FULL_WAIT_MS;
    return conf_ms < 0 ? 0 : conf_ms;
}

/* Frees what chat_bus_producer_new allocated before the handle exists. */
static void producer_free(chat_bus_producer_t *p)
{
    series_cache_destroy(p->produced);
    pthread_cond_destroy(&p->idle_cond);
    pthread_mutex_destroy(&p->idle_lock);
    free(p);
}

/* Returns CHAT_ERR_INVALID without brokers, otherwise as documented in bus.h. */
chat_err_t chat_bus_producer_new(const chat_bus_producer_conf_t *conf, chat_bus_producer_t **out)
{
    if (conf == NULL || out == NULL || conf->brokers == NULL || *conf->brokers == '\0')
        return CHAT_ERR_INVALID;
    chat_bus_producer_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    p->on_delivery = conf->on_delivery;
    p->ud = conf->ud;
    p->queue_full_wait_ms = queue_full_wait(conf->queue_full_wait_ms);
    pthread_mutex_init(&p->idle_lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->idle_cond, &attr);
    pthread_condattr_destroy(&attr);
    p->produced =
        series_cache_new(conf->metrics, "chat_kafka_produced_total",
                         "Records the Kafka brokers acknowledged (delivery reports).",
                         "chat_kafka_produce_errors_total",
                         "Records that failed delivery to Kafka, or were refused before sending.");
    series_preregister(p->produced, conf->topics);

    rd_kafka_conf_t *kconf = producer_conf(conf, p);
    chat_err_t err = kconf != NULL ? handle_new(RD_KAFKA_PRODUCER, kconf, conf->brokers,
                                                conf->connect_timeout_ms, &p->rk)
                                   : CHAT_ERR_CONFIG;
    if (err != CHAT_OK) {
        producer_free(p);
        return err;
    }
    if (conf->poll_thread) {
        if (pthread_create(&p->thread, NULL, producer_poll_thread, p) != 0) {
            chat_log_error("kafka producer poll thread failed to start");
            rd_kafka_destroy(p->rk);
            producer_free(p);
            return CHAT_ERR_IO;
        }
        p->has_thread = true;
    }
    *out = p;
    return CHAT_OK;
}

/* Lets the local queue drain a little: delivery reports free room in it. */
static void producer_wait_for_room(chat_bus_producer_t *p, int ms)
{
    if (p->has_thread)
        chat_clock_sleep_ms(ms < 10 ? ms : 10);
    else
        rd_kafka_poll(p->rk, ms < 100 ? ms : 100);
}

/* Returns CHAT_OK once queued; CHAT_ERR_TIMEOUT if the queue stayed full for the wait;
 * CHAT_ERR_TOO_LARGE, CHAT_ERR_INVALID (unknown partition) or CHAT_ERR_KAFKA otherwise,
 * logged with librdkafka's error. A record that was not queued gets no delivery report. */
chat_err_t chat_bus_produce(chat_bus_producer_t *p, const char *topic, int32_t partition,
                            const void *key, size_t keylen, const void *value, size_t len,
                            void *opaque)
{
    if (p == NULL || topic == NULL || (value == NULL && len > 0) || (key == NULL && keylen > 0))
        return CHAT_ERR_INVALID;
    /* Counted before the call: the delivery report may run before producev returns. */
    if (atomic_fetch_add(&p->outstanding, 1) == 0)
        atomic_store(&p->progress_ms, chat_clock_mono_ms());
    int64_t deadline = chat_clock_mono_ms() + p->queue_full_wait_ms;
    rd_kafka_resp_err_t err;
    for (;;) {
        err = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(opaque),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || chat_clock_remaining_ms(deadline) == 0)
            break;
        producer_wait_for_room(p, chat_clock_remaining_ms(deadline));
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return CHAT_OK;
    producer_outstanding_sub(p);
    series_add(p->produced, topic, SERIES_ERROR, 1);
    chat_log_error("kafka produce failed", CHAT_F_STR("topic", topic),
                   CHAT_F_INT("partition", partition),
                   CHAT_F_STR("kafka_err", rd_kafka_err2name(err)),
                   CHAT_F_STR("reason", rd_kafka_err2str(err)));
    return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? CHAT_ERR_TIMEOUT : err_from_kafka(err);
}

int chat_bus_producer_poll(chat_bus_producer_t *p, int timeout_ms)
{
    if (p == NULL || p->has_thread)
        return 0;
    unsigned long long before = atomic_load(&p->delivered);
    rd_kafka_poll(p->rk, timeout_ms);
    return (int)(atomic_load(&p->delivered) - before);
}

/* Waits on the condition variable until no record is outstanding or deadline passes. */
static bool producer_wait_idle(chat_bus_producer_t *p, int64_t deadline)
{
    struct timespec until = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
    pthread_mutex_lock(&p->idle_lock);
    int rc = 0;
    while (atomic_load(&p->outstanding) > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->idle_cond, &p->idle_lock, &until);
    bool idle = atomic_load(&p->outstanding) == 0;
    pthread_mutex_unlock(&p->idle_lock);
    return idle;
}

/* rd_kafka_flush sends lingering batches at once and serves reports on this thread. With
 * the poll thread it may have taken a report off the queue that it has not finished
 * yet, hence the wait on our own count, which drops only after the user callback. */
chat_err_t chat_bus_producer_flush(chat_bus_producer_t *p, int timeout_ms)
{
    if (p == NULL)
        return CHAT_ERR_INVALID;
    int64_t deadline = chat_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    rd_kafka_flush(p->rk, timeout_ms > 0 ? timeout_ms : 0);
    if (!p->has_thread) {
        while (atomic_load(&p->outstanding) > 0 && chat_clock_remaining_ms(deadline) > 0)
            rd_kafka_poll(p->rk, chat_clock_remaining_ms(deadline));
        return atomic_load(&p->outstanding) > 0 ? CHAT_ERR_TIMEOUT : CHAT_OK;
    }
    return producer_wait_idle(p, deadline) ? CHAT_OK : CHAT_ERR_TIMEOUT;
}

/* ---- metadata (also for bus_admin.c, through bus_int.h) ---- */

const rd_kafka_metadata_topic_t *chat_bus__metadata_topic(const struct rd_kafka_metadata *md,
                                                          const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0)
            return &md->topics[i];
    return NULL;
}

/* Asks for this topic's metadata only: listing every topic of a big cluster is not
 * needed, and the admin handle never auto-creates the topic it asks about. */
int chat_bus__partitions(rd_kafka_t *rk, const char *topic, int timeout_ms)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int partitions = -1;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const rd_kafka_metadata_topic_t *t = chat_bus__metadata_topic(md, topic);
        /* A topic just created may not have its leaders yet; its count is known. */
        if (t != NULL && t->partition_cnt > 0 &&
            (t->err == RD_KAFKA_RESP_ERR_NO_ERROR ||
             t->err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE))
            partitions = t->partition_cnt;
        rd_kafka_metadata_destroy(md);
    } else {
        chat_log_warn("kafka metadata request failed", CHAT_F_STR("topic", topic),
                      CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
        partitions = CHAT_BUS__NO_ANSWER;
    }
    if (rkt != NULL)
        rd_kafka_topic_destroy(rkt);
    return partitions;
}

int chat_bus_producer_partitions(chat_bus_producer_t *p, const char *topic, int timeout_ms)
{
    if (p == NULL || topic == NULL || *topic == '\0' || timeout_ms <= 0)
        return -1;
    int partitions = chat_bus__partitions(p->rk, topic, timeout_ms);
    return partitions > 0 ? partitions : -1;
}

int chat_bus_producer_outstanding(chat_bus_producer_t *p)
{
    return p != NULL ? atomic_load(&p->outstanding) : 0;
}

int64_t chat_bus_producer_stalled_ms(chat_bus_producer_t *p)
{
    if (p == NULL || atomic_load(&p->outstanding) == 0)
        return 0;
    int64_t since = chat_clock_mono_ms() - atomic_load(&p->progress_ms);
    return since > 0 ? since : 0;
}

/* Records still undelivered after the flush are purged so that every record still gets
 * its one delivery callback (with an error), letting the owner free its opaque. */
void chat_bus_producer_destroy(chat_bus_producer_t *p)
{
    if (p == NULL)
        return;
    if (chat_bus_producer_flush(p, BUS_DESTROY_FLUSH_MS) != CHAT_OK) {
        chat_log_error("kafka producer closed with undelivered records",
                       CHAT_F_STR("client", rd_kafka_name(p->rk)),
                       CHAT_F_INT("lost", atomic_load(&p->outstanding)));
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        chat_bus_producer_flush(p, BUS_PURGE_FLUSH_MS);
    }
    if (p->has_thread) {
        atomic_store(&p->stopping, true);
        pthread_join(p->thread, NULL);
    }
    rd_kafka_destroy(p->rk);
    producer_free(p);
}

/* ---- consumer ---- */

struct chat_bus_consumer {
    rd_kafka_t *rk;
    bool group_mode;
    bool auto_commit; /* commit_interval_ms > 0: stored offsets, committed by librdkafka */
    chat_bus_rebalance_fn on_rebalance;
    void *ud;
    series_cache_t *consumed; /* chat_kafka_consumed_total{topic}, or NULL */
    chat_counter_t *errors;   /* chat_kafka_consume_errors_total, or NULL */
    chat_counter_t *commits;  /* chat_kafka_commits_total: commit requests answered OK */
    chat_counter_t *renewals; /* chat_kafka_consumer_renewals_total, or NULL */
    chat_metrics_t *metrics;  /* for the lag gauges, or NULL */
    pthread_mutex_t lag_lock; /* lags: the polling thread, and close */
    struct lag_series *lags;  /* chat_kafka_consumer_lag series, by topic and partition */
    /* Group mode: the settings, owned, to replace a handle a fatal error left unusable
     * (consumer_renew); NULL strings where the caller gave none. */
    chat_bus_consumer_conf_t saved;
    char **saved_topics;
    /* Group mode: the partitions the service was last told it owns (rebalance callback),
     * NULL when none: a fatal error ends the handle without a revocation of its own. */
    rd_kafka_topic_partition_list_t *owned;
};

/* ---- consumer lag: chat_kafka_consumer_lag{topic,partition} ----
 * librdkafka's statistics (every statistics.interval.ms, served by the consumer's poll on the
 * polling thread like every other callback) carry each partition's lag. Only the partitions
 * this consumer has assigned are reported; the registry cannot delete a series, so a
 * partition revoked (or the consumer closed) is set to 0 and stays at 0: another member of
 * the group reports it from then on, and a sum over the group's processes stays right. */

typedef struct lag_series {
    struct lag_series *next;
    char *topic;
    int32_t partition;
    chat_gauge_t *gauge;
    bool assigned;
} lag_series_t;

/* The series of topic/partition, registered on first use (lag_lock held); NULL if that failed. */
static lag_series_t *lag_series(chat_bus_consumer_t *c, const char *topic, int32_t partition,
                                bool create)
{
    for (lag_series_t *l = c->lags; l != NULL; l = l->next)
        if (l->partition == partition && strcmp(l->topic, topic) == 0)
            return l;
    if (!create)
        return NULL;
    lag_series_t *l = calloc(1, sizeof *l);
    if (l == NULL || (l->topic = strdup(topic)) == NULL) {
        free(l);
        return NULL;
    }
    char labels[BUS_LABELS_LEN];
    snprintf(labels, sizeof labels, "topic=\"%s\",partition=\"%d\"", topic, (int)partition);
    l->partition = partition;
    l->gauge = chat_metrics_gauge(c->metrics, "chat_kafka_consumer_lag",
                                  "Records between the partition's high watermark and the "
                                  "committed offset (without a commit: the consumer's "
                                  "position), for the partitions this consumer has assigned "
                                  "(0 once revoked).",
                                  labels);
    if (l->gauge == NULL) {
        free(l->topic);
        free(l);
        return NULL;
    }
    l->next = c->lags;
    c->lags = l;
    return l;
}

/* Marks a partition assigned (its series exists from then on, at its last value or 0) or
 * revoked (set to 0). */
static void lag_mark(chat_bus_consumer_t *c, const char *topic, int32_t partition, bool assigned)
{
    if (c->metrics == NULL || topic == NULL || partition < 0)
        return;
    pthread_mutex_lock(&c->lag_lock);
    lag_series_t *l = lag_series(c, topic, partition, true);
    if (l != NULL) {
        l->assigned = assigned;
        if (!assigned)
            chat_gauge_set(l->gauge, 0);
    }
    pthread_mutex_unlock(&c->lag_lock);
}

static void lag_mark_list(chat_bus_consumer_t *c, const rd_kafka_topic_partition_list_t *parts,
                          bool assigned)
{
    for (int i = 0; parts != NULL && i < parts->cnt; i++)
        lag_mark(c, parts->elems[i].topic, parts->elems[i].partition, assigned);
}

/* Every partition revoked: the assignment was dropped, or the consumer is closing. */
static void lag_unassign_all(chat_bus_consumer_t *c)
{
    pthread_mutex_lock(&c->lag_lock);
    for (lag_series_t *l = c->lags; l != NULL; l = l->next) {
        l->assigned = false;
        chat_gauge_set(l->gauge, 0);
    }
    pthread_mutex_unlock(&c->lag_lock);
}

/* chat_kafka_stats_lags callback, lag_lock held: sets assigned partitions only. */
static void lag_from_stats(void *ud, const char *topic, int32_t partition, int64_t lag)
{
    chat_bus_consumer_t *c = ud;
    lag_series_t *l = lag_series(c, topic, partition, false);
    if (l != NULL && l->assigned)
        chat_gauge_set(l->gauge, (double)lag);
}

/* librdkafka's statistics callback. Returning 0 lets librdkafka free json. */
static int on_stats(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    chat_bus_consumer_t *c = opaque;
    if (c == NULL || c->metrics == NULL)
        return 0;
    pthread_mutex_lock(&c->lag_lock);
    int n = chat_kafka_stats_lags(json, json_len, lag_from_stats, c);
    pthread_mutex_unlock(&c->lag_lock);
    if (n < 0)
        chat_log_debug("kafka statistics not parsed", CHAT_F_INT("length", json_len));
    return 0;
}

static void lag_free(chat_bus_consumer_t *c)
{
    lag_series_t *l = c->lags;
    while (l != NULL) {
        lag_series_t *next = l->next;
        free(l->topic);
        free(l);
        l = next;
    }
    c->lags = NULL;
    pthread_mutex_destroy(&c->lag_lock);
}

/* Logs a partition list as "topic:0,topic:1,..." (cut if very long). */
static void log_partitions(const char *msg, const rd_kafka_topic_partition_list_t *parts)
{
    if (!chat_log_enabled(CHAT_LOG_INFO))
        return;
    char text[1024];
    size_t used = 0;
    text[0] = '\0';
    for (int i = 0; i < parts->cnt && used < sizeof text; i++) {
        int w = snprintf(text + used, sizeof text - used, "%s%s:%d", i ? "," : "",
                         parts->elems[i].topic, (int)parts->elems[i].partition);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    chat_log_info(msg, CHAT_F_INT("count", parts->cnt), CHAT_F_STR("partitions", text));
}

/* Gives the user callback the list as chat_bus_tp_t (topic names borrowed from parts). */
static void rebalance_notify(chat_bus_consumer_t *c, bool assigned,
                             const rd_kafka_topic_partition_list_t *parts)
{
    if (c->on_rebalance == NULL)
        return;
    size_t n = (size_t)parts->cnt;
    chat_bus_tp_t *tps = calloc(n > 0 ? n : 1, sizeof *tps);
    if (tps == NULL) {
        chat_log_error("kafka rebalance callback skipped: out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        tps[i] =
            (chat_bus_tp_t){.topic = parts->elems[i].topic, .partition = parts->elems[i].partition};
    c->on_rebalance(c->ud, assigned, tps, n);
    free(tps);
}

/* Commits the stored offsets now (synchronously); a failure is logged, the records are then
 * read again by whoever owns their partition next. */
static void stored_commit(chat_bus_consumer_t *c, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        chat_log_warn("kafka commit of stored offsets failed", CHAT_F_STR("when", why),
                      CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
}

/* Eager protocol: every rebalance revokes the whole assignment, then assigns the new one.
 * The user sees the assignment before fetching starts, and on revoke still owns the
 * partitions (its commits are accepted) until rd_kafka_assign(NULL) gives them up. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    chat_bus_consumer_t *c = opaque;
    rd_kafka_resp_err_t aerr;
    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        log_partitions("kafka partitions assigned", parts);
        lag_mark_list(c, parts, true);
        if (c->owned != NULL)
            rd_kafka_topic_partition_list_destroy(c->owned);
        c->owned = rd_kafka_topic_partition_list_copy(parts);
        rebalance_notify(c, true, parts);
        aerr = rd_kafka_assign(rk, parts);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        log_partitions("kafka partitions revoked", parts);
        /* What was stored is committed while the partitions are still ours: the next owner
         * starts after the records this consumer finished. */
        if (c->auto_commit)
            stored_commit(c, "revoke");
        rebalance_notify(c, false, parts);
        lag_mark_list(c, parts, false);
        if (c->owned != NULL)
            rd_kafka_topic_partition_list_destroy(c->owned);
        c->owned = NULL;
        aerr = rd_kafka_assign(rk, NULL);
        break;
    default:
        chat_log_error("kafka rebalance failed", CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
        lag_unassign_all(c);
        aerr = rd_kafka_assign(rk, NULL);
        break;
    }
    if (aerr != RD_KAFKA_RESP_ERR_NO_ERROR)
        chat_log_error("kafka assign failed", CHAT_F_STR("kafka_err", rd_kafka_err2name(aerr)));
}

/* Results of commits; a failed commit means records may be read again after a restart. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    chat_bus_consumer_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_log_warn("kafka commit failed", CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
        return;
    }
    if (c->commits != NULL)
        chat_counter_inc(c->commits);
    for (int i = 0; offsets != NULL && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            chat_log_warn("kafka commit failed", CHAT_F_STR("topic", tp->topic),
                          CHAT_F_INT("partition", tp->partition),
                          CHAT_F_STR("kafka_err", rd_kafka_err2name(tp->err)));
    }
}

/* Manual mode still needs a group.id: librdkafka's high-level consumer (consumer_poll,
 * assign) only exists with one. This one is unique, never joined and never committed to. */
static void manual_group_id(char *buf, size_t len, const char *client_id)
{
    static atomic_uint counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, len, "chat-manual-%s-%d-%u-%ld", client_id != NULL ? client_id : "consumer",
             (int)getpid(), atomic_fetch_add(&counter, 1), (long)ts.tv_nsec);
}

static rd_kafka_conf_t *consumer_conf(const chat_bus_consumer_conf_t *conf, chat_bus_consumer_t *c)
{
    rd_kafka_conf_t *kconf = conf_base(conf->brokers, conf->client_id);
    if (kconf == NULL)
        return NULL;
    char manual_group[192];
    if (conf->group_id == NULL)
        manual_group_id(manual_group, sizeof manual_group, conf->client_id);
    bool auto_commit = conf->group_id != NULL && conf->commit_interval_ms > 0;
    char interval[16];
    snprintf(interval, sizeof interval, "%d", auto_commit ? conf->commit_interval_ms : 5000);
    const conf_pair_t pairs[] = {
        {"group.id", conf->group_id != NULL ? conf->group_id : manual_group},
        /* Only offsets the service stored after its output was safe are ever committed:
         * librdkafka never stores on its own. */
        {"enable.auto.commit", auto_commit ? "true" : "false"},
        {"auto.commit.interval.ms", interval},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset",
         conf->auto_offset_reset != NULL ? conf->auto_offset_reset : "earliest"},
        /* Eager protocol (range, not cooperative-sticky): the rebalance callback always gets
         * the complete assignment or revocation, which is what chat_bus_rebalance_fn
         * promises. Range gives one consumer the same partition number of every topic
         * it reads, keeping co-partitioned topics (same key, same count) together. */
        {"partition.assignment.strategy", "range"},
        {"enable.partition.eof", "false"},
        /* A member that died without leaving holds its partitions until this passes:
         * 10 s instead of librdkafka's 45 s bounds the pause of a crashed instance's
         * rooms. (KAFKA_SESSION_TIMEOUT_MS overrides it.) */
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "2000"},
    };
    char wait[16], min_bytes[16];
    snprintf(wait, sizeof wait, "%d", conf->fetch_wait_max_ms);
    snprintf(min_bytes, sizeof min_bytes, "%d", conf->fetch_min_bytes);
    if (conf_set_pairs(kconf, pairs, sizeof pairs / sizeof pairs[0]) != CHAT_OK ||
        (conf->group_instance_id != NULL && conf->group_instance_id[0] != '\0' &&
         conf_set(kconf, "group.instance.id", conf->group_instance_id) != CHAT_OK) ||
        (conf->fetch_wait_max_ms > 0 && conf_set(kconf, "fetch.wait.max.ms", wait) != CHAT_OK) ||
        (conf->fetch_min_bytes > 0 && conf_set(kconf, "fetch.min.bytes", min_bytes) != CHAT_OK)) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    /* Statistics feed the lag gauges; without metrics nobody would read them. */
    if (conf->metrics != NULL) {
        if (conf_set(kconf, "statistics.interval.ms", BUS_STATS_INTERVAL_MS) != CHAT_OK) {
            rd_kafka_conf_destroy(kconf);
            return NULL;
        }
        rd_kafka_conf_set_stats_cb(kconf, on_stats);
    }
    if (conf->group_id != NULL)
        rd_kafka_conf_set_rebalance_cb(kconf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(kconf, on_commit);
    rd_kafka_conf_set_opaque(kconf, c);
    return kconf;
}

static chat_err_t consumer_subscribe(chat_bus_consumer_t *c, const chat_bus_consumer_conf_t *conf)
{
    const char *const *topics = conf->topics;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    for (const char *const *t = topics; *t != NULL; t++)
        rd_kafka_topic_partition_list_add(list, *t, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        chat_log_error("kafka subscribe failed", CHAT_F_STR("topic", topics[0]),
                       CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
    else
        chat_log_info("kafka consumer subscribed", CHAT_F_STR("group", conf->group_id),
                      CHAT_F_INT("topics", list->cnt), CHAT_F_STR("first_topic", topics[0]));
    rd_kafka_topic_partition_list_destroy(list);
    return err != RD_KAFKA_RESP_ERR_NO_ERROR ? CHAT_ERR_KAFKA : CHAT_OK;
}

/* The end offset is looked up now, so that records produced after chat_bus_consumer_new
 * returns are read; librdkafka would resolve a logical END later, when fetching starts,
 * and skip what was produced in between. Falls back to that if the lookup fails. */
static int64_t manual_start_offset(chat_bus_consumer_t *c, const chat_bus_consumer_conf_t *conf)
{
    if (conf->assign_offset != CHAT_BUS_OFFSET_END)
        return conf->assign_offset;
    int64_t low = 0;
    int64_t high = 0;
    int timeout =
        conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : BUS_WATERMARK_TIMEOUT_MS;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        c->rk, conf->assign_topic, conf->assign_partition, &low, &high, timeout);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return high;
    chat_log_warn("kafka end offset lookup failed; starting at the end when fetching starts",
                  CHAT_F_STR("topic", conf->assign_topic),
                  CHAT_F_INT("partition", conf->assign_partition),
                  CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
    return RD_KAFKA_OFFSET_END;
}

static chat_err_t consumer_assign_one(chat_bus_consumer_t *c, const chat_bus_consumer_conf_t *conf)
{
    int64_t offset = manual_start_offset(c, conf);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, conf->assign_topic, conf->assign_partition)->offset =
        offset;
    chat_log_info("kafka partition assigned", CHAT_F_STR("topic", conf->assign_topic),
                  CHAT_F_INT("partition", conf->assign_partition), CHAT_F_INT("offset", offset));
    rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_log_error("kafka assign failed", CHAT_F_STR("topic", conf->assign_topic),
                       CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
        return CHAT_ERR_KAFKA;
    }
    lag_mark(c, conf->assign_topic, conf->assign_partition, true);
    return CHAT_OK;
}

static bool consumer_conf_valid(const chat_bus_consumer_conf_t *conf)
{
    if (conf->brokers == NULL || *conf->brokers == '\0')
        return false;
    if (conf->group_id != NULL)
        return conf->topics != NULL && conf->topics[0] != NULL;
    return conf->assign_topic != NULL && conf->assign_partition >= 0 &&
           (conf->assign_offset >= 0 || conf->assign_offset == CHAT_BUS_OFFSET_END ||
            conf->assign_offset == CHAT_BUS_OFFSET_BEGINNING);
}

static void saved_conf_free(chat_bus_consumer_t *c)
{
    free((char *)c->saved.brokers);
    free((char *)c->saved.client_id);
    free((char *)c->saved.group_id);
    free((char *)c->saved.group_instance_id);
    free((char *)c->saved.auto_offset_reset);
    for (size_t i = 0; c->saved_topics != NULL && c->saved_topics[i] != NULL; i++)
        free(c->saved_topics[i]);
    free(c->saved_topics);
    c->saved_topics = NULL;
    memset(&c->saved, 0, sizeof c->saved);
}

/* strdup of s, NULL for NULL; *ok becomes false if memory ran out. */
static char *dup_opt(const char *s, bool *ok)
{
    if (s == NULL)
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *ok = false;
    return d;
}

/* Keeps a copy of a group consumer's settings (strings and topics owned by c). */
static chat_err_t saved_conf_keep(chat_bus_consumer_t *c, const chat_bus_consumer_conf_t *conf)
{
    bool ok = true;
    c->saved = *conf;
    c->saved.brokers = dup_opt(conf->brokers, &ok);
    c->saved.client_id = dup_opt(conf->client_id, &ok);
    c->saved.group_id = dup_opt(conf->group_id, &ok);
    c->saved.group_instance_id = dup_opt(conf->group_instance_id, &ok);
    c->saved.auto_offset_reset = dup_opt(conf->auto_offset_reset, &ok);
    /* A replacement must not block the polling thread waiting for brokers. */
    c->saved.connect_timeout_ms = 0;
    size_t n = 0;
    while (conf->topics[n] != NULL)
        n++;
    c->saved_topics = calloc(n + 1, sizeof *c->saved_topics);
    if (c->saved_topics == NULL)
        ok = false;
    for (size_t i = 0; ok && i < n; i++)
        c->saved_topics[i] = dup_opt(conf->topics[i], &ok);
    c->saved.topics = (const char *const *)c->saved_topics;
    if (!ok) {
        saved_conf_free(c);
        return CHAT_ERR_NOMEM;
    }
    return CHAT_OK;
}

/* A fatal error leaves a consumer's handle unusable for good: librdkafka raises one when the
 * broker fences a static member (FENCED_INSTANCE_ID: a join with the same group.instance.id
 * under another member id, which librdkafka 2.0 does itself when it rejoins after a broker
 * restart while a commit of the old member is in flight). The service would then poll a dead
 * handle forever while looking alive. So the handle is replaced: what it owned is revoked
 * first (the service forgets those partitions' state, as on a rebalance), then a new handle
 * subscribes with the same settings and gets its partitions through the usual assignment.
 * Offsets stored but not yet committed go with the old handle: those records are read again,
 * as after a crash (at-least-once; the services' output is idempotent). */
static void consumer_renew(chat_bus_consumer_t *c)
{
    if (c->rk != NULL) {
        char reason[BUS_ERRSTR_LEN];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(c->rk, reason, sizeof reason);
        chat_log_error("kafka consumer unusable after a fatal error: replacing its handle",
                       CHAT_F_STR("group", c->saved.group_id),
                       CHAT_F_STR("kafka_err", rd_kafka_err2name(ferr)),
                       CHAT_F_STR("reason", reason));
        /* librdkafka drops the assignment of a fenced member without a revocation. */
        if (c->owned != NULL) {
            if (c->owned->cnt > 0) {
                log_partitions("kafka partitions revoked", c->owned);
                rebalance_notify(c, false, c->owned);
            }
            rd_kafka_topic_partition_list_destroy(c->owned);
            c->owned = NULL;
        }
        lag_unassign_all(c);
        /* The group already dropped this member: no leave, no final commit. */
        rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        c->rk = NULL;
    }
    rd_kafka_conf_t *kconf = consumer_conf(&c->saved, c);
    if (kconf == NULL ||
        handle_new(RD_KAFKA_CONSUMER, kconf, c->saved.brokers, 0, &c->rk) != CHAT_OK) {
        c->rk = NULL; /* logged; tried again at the next poll */
        return;
    }
    rd_kafka_poll_set_consumer(c->rk);
    if (consumer_subscribe(c, &c->saved) != CHAT_OK) {
        rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        c->rk = NULL;
        return;
    }
    if (c->renewals != NULL)
        chat_counter_inc(c->renewals);
}

/* Returns CHAT_ERR_INVALID for an incomplete conf (no brokers; group without topics;
 * manual mode without topic, partition or a valid offset), CHAT_ERR_CONFIG for a rejected
 * setting, CHAT_ERR_TIMEOUT or CHAT_ERR_KAFKA otherwise; all but the first logged. */
chat_err_t chat_bus_consumer_new(const chat_bus_consumer_conf_t *conf, chat_bus_consumer_t **out)
{
    if (conf == NULL || out == NULL || !consumer_conf_valid(conf))
        return CHAT_ERR_INVALID;
    chat_bus_consumer_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CHAT_ERR_NOMEM;
    c->group_mode = conf->group_id != NULL;
    c->auto_commit = c->group_mode && conf->commit_interval_ms > 0;
    c->on_rebalance = conf->on_rebalance;
    c->ud = conf->ud;
    c->metrics = conf->metrics;
    pthread_mutex_init(&c->lag_lock, NULL);
    c->consumed =
        series_cache_new(conf->metrics, "chat_kafka_consumed_total",
                         "Records consumed from Kafka and handed to the service.", NULL, NULL);
    if (conf->group_id != NULL) {
        series_preregister(c->consumed, conf->topics);
    } else {
        const char *const assigned[] = {conf->assign_topic, NULL};
        series_preregister(c->consumed, assigned);
    }
    if (conf->metrics != NULL)
        c->commits = chat_metrics_counter(conf->metrics, "chat_kafka_commits_total",
                                          "Offset commits the broker accepted (each one a "
                                          "request and a write to __consumer_offsets).",
                                          NULL);
    if (conf->metrics != NULL)
        c->errors = chat_metrics_counter(conf->metrics, "chat_kafka_consume_errors_total",
                                         "Consumer error events (logged, not returned).", NULL);

    if (c->group_mode && conf->metrics != NULL)
        c->renewals = chat_metrics_counter(
            conf->metrics, "chat_kafka_consumer_renewals_total",
            "Consumer handles replaced after a fatal error (e.g. the broker fenced this static "
            "group member).",
            NULL);

    chat_err_t err = c->group_mode ? saved_conf_keep(c, conf) : CHAT_OK;
    rd_kafka_conf_t *kconf = err == CHAT_OK ? consumer_conf(conf, c) : NULL;
    if (err == CHAT_OK)
        err = kconf != NULL ? handle_new(RD_KAFKA_CONSUMER, kconf, conf->brokers,
                                         conf->connect_timeout_ms, &c->rk)
                            : CHAT_ERR_CONFIG;
    if (err != CHAT_OK) {
        saved_conf_free(c);
        series_cache_destroy(c->consumed);
        lag_free(c);
        free(c);
        return err;
    }
    rd_kafka_poll_set_consumer(c->rk);
    err = c->group_mode ? consumer_subscribe(c, conf) : consumer_assign_one(c, conf);
    if (err != CHAT_OK) {
        chat_bus_consumer_close(c);
        return err;
    }
    *out = c;
    return CHAT_OK;
}

/* Fills rec from m and returns true, or logs, counts and frees an error event. */
static bool consumer_take(chat_bus_consumer_t *c, rd_kafka_message_t *m, chat_bus_record_t *rec)
{
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            chat_log_warn("kafka consumer error",
                          CHAT_F_STR("topic", m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : NULL),
                          CHAT_F_INT("partition", m->partition),
                          CHAT_F_STR("kafka_err", rd_kafka_err2name(m->err)),
                          CHAT_F_STR("reason", rd_kafka_message_errstr(m)));
            if (c->errors != NULL)
                chat_counter_inc(c->errors);
        }
        rd_kafka_message_destroy(m);
        return false;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    *rec = (chat_bus_record_t){
        .topic = rd_kafka_topic_name(m->rkt),
        .partition = m->partition,
        .offset = m->offset,
        .key = m->key,
        .keylen = m->key != NULL ? m->key_len : 0,
        .value = m->payload,
        .len = m->len,
        .timestamp_ms = tstype == RD_KAFKA_TIMESTAMP_CREATE_TIME ? ts : -1,
        .priv_ = m,
    };
    series_add(c->consumed, rec->topic, SERIES_OK, 1);
    return true;
}

/* A negative timeout_ms waits indefinitely for the first record. */
size_t chat_bus_consumer_poll(chat_bus_consumer_t *c, chat_bus_record_t *recs, size_t max,
                              int timeout_ms)
{
    if (c == NULL || recs == NULL || max == 0)
        return 0;
    size_t n = 0;
    int64_t deadline = chat_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    /* Every record of the last poll has been released (the services poll, handle, release):
     * the moment a handle a fatal error left unusable can be replaced. */
    if (c->group_mode &&
        (c->rk == NULL || rd_kafka_fatal_error(c->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR))
        consumer_renew(c);
    if (c->rk == NULL) {
        int pause = timeout_ms < 0 || timeout_ms > 1000 ? 1000 : timeout_ms;
        struct timespec ts = {.tv_sec = pause / 1000, .tv_nsec = (long)(pause % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        return 0;
    }
    while (n == 0) {
        int wait = timeout_ms < 0 ? -1 : chat_clock_remaining_ms(deadline);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, wait);
        if (m == NULL)
            break;
        if (consumer_take(c, m, &recs[n]))
            n++;
        if (wait == 0)
            break;
    }
    while (n > 0 && n < max) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 0);
        if (m == NULL)
            break;
        if (consumer_take(c, m, &recs[n]))
            n++;
    }
    return n;
}

void chat_bus_records_release(chat_bus_record_t *recs, size_t n)
{
    for (size_t i = 0; recs != NULL && i < n; i++) {
        if (recs[i].priv_ != NULL)
            rd_kafka_message_destroy(recs[i].priv_);
        recs[i].priv_ = NULL;
    }
}

/* Per partition present in recs, the offset after its highest record (caller destroys). */
static rd_kafka_topic_partition_list_t *offsets_after(const chat_bus_record_t *recs, size_t n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, recs[i].topic, recs[i].partition);
        if (tp == NULL)
            tp = rd_kafka_topic_partition_list_add(list, recs[i].topic, recs[i].partition);
        else if (tp->offset > recs[i].offset)
            continue;
        tp->offset = recs[i].offset + 1;
    }
    return list;
}

/* Returns CHAT_ERR_INVALID in manual mode or for bad arguments, CHAT_ERR_KAFKA (logged)
 * if a synchronous commit failed or an asynchronous one could not be queued. */
chat_err_t chat_bus_consumer_commit(chat_bus_consumer_t *c, const chat_bus_record_t *recs, size_t n,
                                    bool sync)
{
    if (c == NULL || !c->group_mode || (recs == NULL && n > 0))
        return CHAT_ERR_INVALID;
    if (n == 0)
        return CHAT_OK;
    if (c->rk == NULL)
        return CHAT_ERR_KAFKA; /* no handle since a fatal error: read again by the next one */
    rd_kafka_topic_partition_list_t *list = offsets_after(recs, n);
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, list, sync ? 0 : 1);
    rd_kafka_topic_partition_list_destroy(list);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return CHAT_OK;
    chat_log_error("kafka commit failed", CHAT_F_BOOL("sync", sync),
                   CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
    return err_from_kafka(err) == CHAT_ERR_TIMEOUT ? CHAT_ERR_TIMEOUT : CHAT_ERR_KAFKA;
}

chat_err_t chat_bus_consumer_store(chat_bus_consumer_t *c, const chat_bus_record_t *recs, size_t n)
{
    if (c == NULL || !c->auto_commit || (recs == NULL && n > 0))
        return CHAT_ERR_INVALID;
    if (n == 0 || c->rk == NULL)
        return CHAT_OK;
    rd_kafka_topic_partition_list_t *list = offsets_after(recs, n);
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, list);
    /* A partition revoked since its records were polled reports __STATE: its next owner
     * reads those records again, which is what at-least-once means. */
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__STATE &&
        err != RD_KAFKA_RESP_ERR__INVALID_ARG)
        chat_log_warn("kafka offsets not stored", CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
    rd_kafka_topic_partition_list_destroy(list);
    return CHAT_OK;
}

void chat_bus_consumer_close(chat_bus_consumer_t *c)
{
    if (c == NULL)
        return;
    if (c->rk != NULL) {
        if (c->auto_commit)
            stored_commit(c, "close");
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            chat_log_warn("kafka consumer close failed",
                          CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
        rd_kafka_destroy(c->rk);
    }
    saved_conf_free(c);
    if (c->owned != NULL)
        rd_kafka_topic_partition_list_destroy(c->owned);
    lag_unassign_all(c);
    series_cache_destroy(c->consumed);
    lag_free(c);
    free(c);
}
