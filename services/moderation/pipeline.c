/* The moderation loop (see pipeline.h and docs/moderation.md). Moderation never delays a
 * message: it reads chat.messages after the message service stored and published it, and what
 * it finds reaches clients as an update in the room's order. Per batch: checks (CPU only), one
 * Redis round trip for the spam windows, one MongoDB write of the decisions, one produce and
 * flush of the verdicts. MongoDB and Redis failures are retried with backoff (a skipped batch
 * would leave messages unchecked); a produce failure stops the service uncommitted. */
#include "services/moderation/pipeline.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/backoff.h"
#include "common/bus.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/log.h"
#include "common/mod_record.h"
#include "common/redis.h"
#include "common/service.h"
#include "common/signals.h"
#include "services/moderation/rules_cache.h"
#include "services/moderation/spam.h"

#define POLL_TIMEOUT_MS 200
#define FLUSH_TIMEOUT_MS 60000 /* > message.timeout.ms: every report arrives */

typedef struct item {
    chat_event_t ev;
    bool check;  /* a new message or an edit, by a user, with text */
    int64_t ver; /* 0: as sent; the edit's useq */
    mod_rules_t *rules;
    chat_mod_hit_t hits[CHAT_MOD_HITS_MAX + 2]; /* + repeat and rate */
    size_t nhits;
    char *norm; /* for the repeat rule */
} item_t;

typedef struct pipeline_metrics {
    chat_counter_t *checked, *skipped, *invalid, *verdicts_produced;
    chat_counter_t *decisions[3][6]; /* action x kind */
    chat_counter_t *store_errors, *redis_errors;
    chat_histogram_t *check_seconds, *lag_seconds, *batch_seconds;
    chat_tenant_counter_t *tenant_decisions; /* NULL without tenant labels */
} pipeline_metrics_t;

struct mod_pipeline {
    mod_pipeline_conf_t conf;
    chat_bus_consumer_t *consumer;
    chat_bus_producer_t *producer;
    chat_redis_t *redis;
    mod_rules_cache_t *rules;
    chat_bus_record_t *records;
    item_t *items;
    bool delivery_failed;
    atomic_bool assigned;
    atomic_bool redis_ok;
    pipeline_metrics_t m;
};

static void metrics_register(mod_pipeline_t *p)
{
    chat_metrics_t *mx = p->conf.metrics;
    pipeline_metrics_t *m = &p->m;
    m->checked =
        chat_metrics_counter(mx, "chat_moderation_checked_total",
                             "Messages and edits checked against their tenant's rules.", NULL);
    m->skipped = chat_metrics_counter(mx, "chat_moderation_skipped_total",
                                      "chat.messages records with nothing to check (other "
                                      "events, system messages, tenants without rules).",
                                      NULL);
    m->invalid = chat_metrics_counter(mx, "chat_moderation_invalid_records_total",
                                      "chat.messages records that did not decode (logged, "
                                      "skipped).",
                                      NULL);
    m->verdicts_produced =
        chat_metrics_counter(mx, "chat_moderation_verdicts_produced_total",
                             "remove verdicts produced to chat.moderation.", NULL);
    static const char dname[] = "chat_moderation_decisions_total";
    static const char dhelp[] = "Rules that fired, by action and rule kind.";
    for (int a = 0; a < 3; a++)
        for (int k = 0; k < 6; k++) {
            char labels[96];
            snprintf(labels, sizeof labels, "action=\"%s\",kind=\"%s\"",
                     chat_mod_action_name((chat_mod_action_t)a),
                     chat_mod_kind_name((chat_mod_kind_t)k));
            m->decisions[a][k] = chat_metrics_counter(mx, dname, dhelp, labels);
        }
    m->store_errors =
        chat_metrics_counter(mx, "chat_moderation_store_errors_total",
                             "Failed writes of decisions or rule reads (retried).", NULL);
    m->redis_errors = chat_metrics_counter(mx, "chat_moderation_redis_errors_total",
                                           "Failed spam window updates (retried).", NULL);
    m->check_seconds = chat_metrics_histogram(
        mx, "chat_moderation_check_seconds", "CPU time of checking one message or edit.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    m->lag_seconds = chat_metrics_histogram(
        mx, "chat_moderation_lag_seconds",
        "From a message's stored ts to its verdicts produced (queue lag and checking).", NULL,
        chat_metrics_slo_buckets, chat_metrics_slo_nbuckets);
    m->batch_seconds = chat_metrics_histogram(
        mx, "chat_moderation_batch_seconds", "Time from poll to finished of a batch.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    if (p->conf.tenant_labels != NULL)
        m->tenant_decisions = chat_tenant_counter_new(
            p->conf.tenant_labels, mx, "chat_moderation_tenant_decisions_total",
            "Rules that fired, by tenant (bounded: see CHAT_METRICS_TENANTS_MAX).", NULL);
}

static void on_rebalance(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n)
{
    (void)tps;
    (void)n;
    mod_pipeline_t *p = ud;
    if (assigned)
        atomic_store(&p->assigned, true);
}

static void on_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                        int32_t partition, int64_t offset)
{
    (void)opaque;
    (void)offset;
    mod_pipeline_t *p = ud;
    if (err == CHAT_OK)
        return;
    if (!p->delivery_failed)
        chat_log_error("verdict not delivered", CHAT_F_STR("topic", p->conf.moderation_topic),
                       CHAT_F_INT("partition", partition), CHAT_F_ERR(err),
                       CHAT_F_STR("reason", reason));
    p->delivery_failed = true;
}

bool mod_pipeline_ready(void *pipeline, char *reason, size_t reason_len)
{
    mod_pipeline_t *p = pipeline;
    const char *why = NULL;
    if (!atomic_load(&p->assigned))
        why = "waiting for the consumer group assignment";
    else if (!atomic_load(&p->redis_ok))
        why = "redis unavailable";
    if (why != NULL)
        snprintf(reason, reason_len, "%s", why);
    return why == NULL;
}

static chat_err_t pipeline_connect(mod_pipeline_t *p, const char **bad_var)
{
    const mod_pipeline_conf_t *c = &p->conf;
    chat_err_t err = chat_redis_connect(c->redis_url, c->connect_timeout_ms, &p->redis);
    if (err != CHAT_OK) {
        *bad_var = "CHAT_REDIS_URL";
        return err;
    }
    mod_rules_cache_conf_t rc = {.store = c->store,
                                 .redis_url = c->redis_url,
                                 .timeout_ms = c->connect_timeout_ms,
                                 .refresh_ms = c->rules_refresh_ms,
                                 .metrics = c->metrics};
    if ((err = mod_rules_cache_new(&rc, &p->rules)) != CHAT_OK) {
        *bad_var = "CHAT_REDIS_URL";
        return err;
    }
    chat_bus_producer_conf_t pc = {
        .brokers = c->brokers,
        .client_id = "chat-moderation",
        /* A batch's verdicts are produced together and flushed at once. */
        .linger_ms = CHAT_BUS_LINGER_UNTIL_FLUSH,
        .on_delivery = on_delivery,
        .ud = p,
        .connect_timeout_ms = c->connect_timeout_ms,
        .metrics = c->metrics,
    };
    if ((err = chat_bus_producer_new(&pc, &p->producer)) != CHAT_OK) {
        *bad_var = err == CHAT_ERR_CONFIG ? "KAFKA_*" : "CHAT_KAFKA_BROKERS";
        return err;
    }
    const chat_topic_use_t uses[] = {
        {"CHAT_TOPIC_MESSAGES", c->messages_topic},
        {"CHAT_TOPIC_MODERATION", c->moderation_topic},
    };
    err = chat_topics_check(c->brokers, uses, 2, c->connect_timeout_ms, NULL, bad_var);
    if (err != CHAT_OK)
        return err == CHAT_ERR_KAFKA || err == CHAT_ERR_CONFIG ? err : CHAT_ERR_CONFIG;
    const char *topics[] = {c->messages_topic, NULL};
    chat_bus_consumer_conf_t cc = {
        .brokers = c->brokers,
        .client_id = "chat-moderation",
        .group_id = c->group,
        .group_instance_id = c->instance_id,
        .topics = topics,
        .on_rebalance = on_rebalance,
        .ud = p,
        /* A new group starts at the end: checking a week of history at first start would
         * remove old messages under rules written today (that is what a rescan is for). */
        .auto_offset_reset = "latest",
        .commit_interval_ms = c->commit_interval_ms,
        .connect_timeout_ms = c->connect_timeout_ms,
        .metrics = c->metrics,
    };
    if ((err = chat_bus_consumer_new(&cc, &p->consumer)) != CHAT_OK) {
        *bad_var = err == CHAT_ERR_CONFIG ? "KAFKA_*" : "CHAT_KAFKA_BROKERS";
        return err;
    }
    return CHAT_OK;
}

chat_err_t mod_pipeline_new(const mod_pipeline_conf_t *conf, mod_pipeline_t **out,
                            const char **bad_var)
{
    const char *ignored;
    if (bad_var == NULL)
        bad_var = &ignored;
    *bad_var = NULL;
    if (conf == NULL || out == NULL || conf->batch_max == 0 || conf->metrics == NULL ||
        conf->store == NULL)
        return CHAT_ERR_INVALID;
    mod_pipeline_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    p->conf = *conf;
    atomic_init(&p->assigned, false);
    atomic_init(&p->redis_ok, true);
    metrics_register(p);
    p->records = calloc(conf->batch_max, sizeof *p->records);
    p->items = calloc(conf->batch_max, sizeof *p->items);
    if (p->records == NULL || p->items == NULL) {
        mod_pipeline_free(p);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = pipeline_connect(p, bad_var);
    if (err != CHAT_OK) {
        mod_pipeline_free(p);
        return err;
    }
    *out = p;
    return CHAT_OK;
}

void mod_pipeline_free(mod_pipeline_t *p)
{
    if (p == NULL)
        return;
    chat_bus_consumer_close(p->consumer);
    chat_bus_producer_destroy(p->producer);
    mod_rules_cache_free(p->rules);
    chat_redis_free(p->redis);
    free(p->records);
    free(p->items);
    free(p);
}

/* What a record asks of moderation: a new message or an edit by a user, with its text. */
static bool wants_check(const chat_event_t *ev)
{
    if (ev->text == NULL || ev->user == NULL || strcmp(ev->user, CHAT_SYSTEM_USER) == 0 ||
        chat_event_msg_gone(ev))
        return false;
    if (ev->type == CHAT_EV_MSG)
        return true;
    return ev->type == CHAT_EV_UPDATE && ev->op != NULL && strcmp(ev->op, "edit") == 0;
}

static void items_clear(mod_pipeline_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        item_t *it = &p->items[i];
        mod_rules_release(it->rules);
        free(it->norm);
        chat_event_clear(&it->ev);
        memset(it, 0, sizeof *it);
    }
}

/* Decodes the records; for each message to check, its tenant's rules (a first use reads
 * MongoDB: retried while it fails). */
static chat_err_t batch_decode(mod_pipeline_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const chat_bus_record_t *rec = &p->records[i];
        item_t *it = &p->items[i];
        char why[160];
        if (chat_event_decode(rec->value, rec->len, &it->ev, why, sizeof why) != CHAT_OK) {
            chat_log_warn("invalid record skipped", CHAT_F_STR("topic", rec->topic),
                          CHAT_F_INT("partition", rec->partition),
                          CHAT_F_INT("offset", rec->offset), CHAT_F_STR("reason", why));
            chat_counter_inc(p->m.invalid);
            continue;
        }
        if (!wants_check(&it->ev)) {
            chat_counter_inc(p->m.skipped);
            continue;
        }
        chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
        bool logged = false;
        chat_err_t err;
        while ((err = mod_rules_cache_get(p->rules, it->ev.tenant, &it->rules)) != CHAT_OK) {
            if (err == CHAT_ERR_NOMEM)
                return err;
            chat_counter_inc(p->m.store_errors);
            if (!chat_service_retry_wait(&b, "read rules", err, &logged))
                return CHAT_ERR_STOPPED;
        }
        if (it->rules == NULL) {
            chat_counter_inc(p->m.skipped);
            continue;
        }
        it->check = true;
        it->ver = it->ev.type == CHAT_EV_UPDATE ? it->ev.useq : 0;
    }
    return CHAT_OK;
}

static void hit_add(item_t *it, chat_mod_kind_t kind, chat_mod_action_t action, int64_t mute_s)
{
    static const char *const names[] = {
        [CHAT_MOD_KIND_REPEAT] = "repeat", [CHAT_MOD_KIND_RATE] = "rate"};
    it->hits[it->nhits++] =
        (chat_mod_hit_t){.action = action, .kind = kind, .rule = names[kind], .mute_s = mute_s};
}

/* The content rules of every item, then the spam windows in one Redis round trip. */
static chat_err_t batch_check(mod_pipeline_t *p, size_t n)
{
    mod_spam_item_t *spam = NULL;
    size_t *spam_of = NULL, nspam = 0;
    for (size_t i = 0; i < n; i++) {
        item_t *it = &p->items[i];
        if (!it->check)
            continue;
        const chat_mod_rules_t *rules = mod_rules_compiled(it->rules);
        int64_t start = chat_clock_mono_us();
        it->nhits = chat_mod_rules_check(rules, it->ev.text, strlen(it->ev.text), it->hits,
                                         CHAT_MOD_HITS_MAX);
        const chat_mod_spam_t *s = chat_mod_rules_spam(rules);
        /* Spam rules count new messages; an edit is not another message. */
        if (it->ev.type == CHAT_EV_MSG && (s->repeat.count > 0 || s->rate.per_min > 0)) {
            if (spam == NULL && ((spam = calloc(n, sizeof *spam)) == NULL ||
                                 (spam_of = calloc(n, sizeof *spam_of)) == NULL)) {
                free(spam);
                return CHAT_ERR_NOMEM;
            }
            if (s->repeat.count > 0 &&
                (it->norm = chat_mod_normalize(it->ev.text, strlen(it->ev.text))) == NULL) {
                free(spam);
                free(spam_of);
                return CHAT_ERR_NOMEM;
            }
            spam[nspam] = (mod_spam_item_t){.tenant = it->ev.tenant,
                                            .user = it->ev.user,
                                            .id = it->ev.id,
                                            .ts = it->ev.ts,
                                            .spam = s,
                                            .norm = it->norm};
            spam_of[nspam++] = i;
        }
        chat_histogram_observe(p->m.check_seconds, chat_clock_seconds_since(start));
        chat_counter_inc(p->m.checked);
    }
    chat_err_t err = CHAT_OK;
    if (nspam > 0) {
        chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
        bool logged = false;
        while ((err = mod_spam_check(p->redis, spam, nspam)) != CHAT_OK) {
            atomic_store(&p->redis_ok, false);
            chat_counter_inc(p->m.redis_errors);
            if (err == CHAT_ERR_NOMEM)
                break;
            if (!chat_service_retry_wait(&b, "spam windows", err, &logged)) {
                err = CHAT_ERR_STOPPED;
                break;
            }
        }
        if (err == CHAT_OK) {
            atomic_store(&p->redis_ok, true);
            for (size_t j = 0; j < nspam; j++) {
                item_t *it = &p->items[spam_of[j]];
                const chat_mod_spam_t *s = spam[j].spam;
                if (spam[j].repeat_fired)
                    hit_add(it, CHAT_MOD_KIND_REPEAT, s->repeat.action, s->repeat.mute_s);
                if (spam[j].rate_fired)
                    hit_add(it, CHAT_MOD_KIND_RATE, s->rate.action, s->rate.mute_s);
            }
        }
    }
    free(spam);
    free(spam_of);
    return err;
}

/* Records every decision of the batch once (retried while MongoDB or Redis fail). */
static chat_err_t batch_record(mod_pipeline_t *p, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += p->items[i].nhits;
    if (total == 0)
        return CHAT_OK;
    chat_mod_decision_t *d = calloc(total, sizeof *d);
    if (d == NULL)
        return CHAT_ERR_NOMEM;
    size_t nd = 0;
    int64_t now = chat_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const item_t *it = &p->items[i];
        for (size_t h = 0; h < it->nhits; h++)
            d[nd++] = (chat_mod_decision_t){.tenant = it->ev.tenant,
                                            .room = it->ev.room,
                                            .id = it->ev.id,
                                            .seq = it->ev.seq,
                                            .ver = it->ver,
                                            .from = it->ev.user,
                                            .text = it->ev.text,
                                            .action = it->hits[h].action,
                                            .kind = it->hits[h].kind,
                                            .rule = it->hits[h].rule,
                                            .mute_s = it->hits[h].mute_s,
                                            .by = "rules",
                                            .ts = now};
    }
    /* Decisions of one call share a tenant in the log line only; the writes are per document. */
    chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    bool logged = false;
    chat_err_t err;
    while ((err = chat_mod_record(p->conf.store, p->redis, d, nd)) != CHAT_OK) {
        chat_counter_inc(p->m.store_errors);
        if (err == CHAT_ERR_NOMEM || err == CHAT_ERR_INVALID)
            break;
        if (!chat_service_retry_wait(&b, "record decisions", err, &logged)) {
            err = CHAT_ERR_STOPPED;
            break;
        }
    }
    if (err == CHAT_OK)
        for (size_t i = 0; i < nd; i++) {
            chat_counter_inc(p->m.decisions[d[i].action][d[i].kind]);
            chat_tenant_counter_add(p->m.tenant_decisions, d[i].tenant, 1);
            chat_log_info("moderation decision", CHAT_F_STR("tenant", d[i].tenant),
                          CHAT_F_STR("room", d[i].room), CHAT_F_STR("id", d[i].id),
                          CHAT_F_INT("ver", d[i].ver), CHAT_F_STR("rule", d[i].rule),
                          CHAT_F_STR("action", chat_mod_action_name(d[i].action)),
                          CHAT_F_STR("user", d[i].from));
        }
    free(d);
    return err;
}

/* The first remove among an item's hits, or NULL. */
static const chat_mod_hit_t *removal(const item_t *it)
{
    for (size_t h = 0; h < it->nhits; h++)
        if (it->hits[h].action == CHAT_MOD_REMOVE)
            return &it->hits[h];
    return NULL;
}

/* One remove verdict per removed message, keyed by its room; then the flush. */
static chat_err_t batch_verdicts(mod_pipeline_t *p, size_t n)
{
    size_t produced = 0;
    p->delivery_failed = false;
    int64_t now = chat_clock_wall_ms();
    for (size_t i = 0; i < n; i++) {
        const item_t *it = &p->items[i];
        if (it->check)
            chat_histogram_observe(p->m.lag_seconds,
                                   (double)(now - it->ev.ts > 0 ? now - it->ev.ts : 0) / 1000.0);
        const chat_mod_hit_t *h = removal(it);
        if (h == NULL)
            continue;
        chat_event_t v = {.type = CHAT_EV_VERDICT,
                          .tenant = it->ev.tenant,
                          .room = it->ev.room,
                          .id = it->ev.id,
                          .seq = it->ev.seq,
                          .has_seq = true,
                          .action = "remove",
                          .reason = h->rule,
                          .rule = h->rule,
                          .ts = now,
                          .has_ts = true};
        char *json = NULL;
        size_t len = 0;
        char key[CHAT_ROOM_KEY_MAX];
        chat_err_t err = chat_event_encode(&v, &json, &len);
        if (err != CHAT_OK)
            return err;
        int klen = chat_room_key(it->ev.tenant, it->ev.room, key, sizeof key);
        err = chat_bus_produce(p->producer, p->conf.moderation_topic, CHAT_BUS_PARTITION_ANY, key,
                               klen > 0 ? (size_t)klen : 0, json, len, NULL);
        free(json);
        if (err != CHAT_OK)
            return CHAT_ERR_KAFKA;
        produced++;
    }
    if (produced == 0)
        return CHAT_OK;
    chat_err_t err = chat_bus_producer_flush(p->producer, FLUSH_TIMEOUT_MS);
    if (err != CHAT_OK || p->delivery_failed) {
        chat_log_error("chat.moderation flush failed", CHAT_F_ERR(err),
                       CHAT_F_INT("verdicts", (int64_t)produced));
        return CHAT_ERR_KAFKA;
    }
    chat_counter_add(p->m.verdicts_produced, produced);
    return CHAT_OK;
}

static chat_err_t batch_process(mod_pipeline_t *p, size_t n, int64_t start)
{
    chat_err_t err = batch_decode(p, n);
    if (err == CHAT_OK)
        err = batch_check(p, n);
    if (err == CHAT_OK)
        err = batch_record(p, n);
    if (err == CHAT_OK)
        err = batch_verdicts(p, n);
    items_clear(p, n);
    if (err != CHAT_OK)
        return err;
    chat_bus_consumer_store(p->consumer, p->records, n);
    chat_histogram_observe(p->m.batch_seconds, chat_clock_seconds_since(start));
    return CHAT_OK;
}

chat_err_t mod_pipeline_run(mod_pipeline_t *p)
{
    chat_log_info("moderation running", CHAT_F_STR("group", p->conf.group),
                  CHAT_F_STR("from", p->conf.messages_topic),
                  CHAT_F_STR("to", p->conf.moderation_topic),
                  CHAT_F_INT("batch", (int64_t)p->conf.batch_max));
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
                      "committed and will be checked on the next start");
    else if (err != CHAT_OK)
        chat_log_error("moderation stopped: verdicts could not be produced; input not committed",
                       CHAT_F_ERR(err));
    return err;
}
