/* Topic administration for start-up and tests: creating topics, growing their partition
 * counts and reading them back through librdkafka's Admin API, over a short-lived handle
 * that bus.c sets up like every other (KAFKA_* variables, logging). Depends on bus.c through
 * bus_int.h; bus.c does not depend on this file. */
#include "common/bus.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus_int.h"
#include "common/clock.h"
#include "common/log.h"

#define ADMIN_ERRSTR_LEN 512
/* Extra wait for a result event after the request timeout: librdkafka emits a timed-out
 * result itself, this only guards against waiting forever. */
#define ADMIN_RESULT_GRACE_MS 2000
#define ADMIN_READY_POLL_MS 100

/* A librdkafka timeout for what is left until deadline, at least 1 ms so that the call is
 * still made once and stays bounded (0 would mean "do not wait" or "no timeout"). */
static int request_timeout_ms(int64_t deadline)
{
    int left = chat_clock_remaining_ms(deadline);
    return left > 1 ? left : 1;
}

static bool spec_valid(const chat_bus_topic_spec_t *spec)
{
    if (spec->name == NULL || *spec->name == '\0' || spec->partitions < 1 ||
        (spec->replication < 1 && spec->replication != -1))
        return false;
    for (const char *const *kv = spec->configs; kv != NULL && *kv != NULL; kv++) {
        const char *eq = strchr(*kv, '=');
        if (eq == NULL || eq == *kv)
            return false;
    }
    return true;
}

static int spec_find(const chat_bus_topic_spec_t *specs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(specs[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- requests ---- */

/* Options bounding the request (and, for creations, the controller's work) by deadline. */
static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                              int64_t deadline)
{
    char errstr[ADMIN_ERRSTR_LEN];
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, op);
    rd_kafka_AdminOptions_set_request_timeout(opts, request_timeout_ms(deadline), errstr,
                                              sizeof errstr);
    rd_kafka_AdminOptions_set_operation_timeout(opts, request_timeout_ms(deadline), errstr,
                                                sizeof errstr);
    return opts;
}

/* Per-topic results of a CreateTopics or CreatePartitions result event. */
static const rd_kafka_topic_result_t **admin_topic_results(rd_kafka_event_t *ev, size_t *cnt)
{
    *cnt = 0;
    switch (rd_kafka_event_type(ev)) {
    case RD_KAFKA_EVENT_CREATETOPICS_RESULT:
        return rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), cnt);
    case RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT:
        return rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev),
                                                       cnt);
    default:
        return NULL;
    }
}

static chat_err_t err_from_admin(rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
        return CHAT_ERR_TIMEOUT;
    return CHAT_ERR_KAFKA;
}

/* Waits for the result on q and checks it topic by topic. A topic that already exists
 * counts as success and is flagged in existing (may be NULL). Returns the first failure,
 * each one logged with the topic and Kafka's reason. */
static chat_err_t admin_results(rd_kafka_queue_t *q, const char *what, int64_t deadline,
                                const chat_bus_topic_spec_t *specs, size_t n, bool *existing)
{
    rd_kafka_event_t *ev =
        rd_kafka_queue_poll(q, request_timeout_ms(deadline) + ADMIN_RESULT_GRACE_MS);
    if (ev == NULL) {
        chat_log_error("kafka admin request timed out", CHAT_F_STR("request", what));
        return CHAT_ERR_TIMEOUT;
    }
    chat_err_t first = CHAT_OK;
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_log_error("kafka admin request failed", CHAT_F_STR("request", what),
                       CHAT_F_STR("kafka_err", rd_kafka_err2name(rd_kafka_event_error(ev))),
                       CHAT_F_STR("reason", rd_kafka_event_error_string(ev)));
        first = err_from_admin(rd_kafka_event_error(ev));
    }
    size_t cnt;
    const rd_kafka_topic_result_t **results = admin_topic_results(ev, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        const char *name = rd_kafka_topic_result_name(results[i]);
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && existing != NULL) {
            int idx = spec_find(specs, n, name);
            if (idx >= 0)
                existing[idx] = true;
            continue;
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            chat_log_info("kafka topic changed", CHAT_F_STR("request", what),
                          CHAT_F_STR("topic", name));
            continue;
        }
        chat_log_error("kafka topic request failed", CHAT_F_STR("request", what),
                       CHAT_F_STR("topic", name), CHAT_F_STR("kafka_err", rd_kafka_err2name(err)),
                       CHAT_F_STR("reason", rd_kafka_topic_result_error_string(results[i])));
        if (first == CHAT_OK)
            first = err_from_admin(err);
    }
    rd_kafka_event_destroy(ev);
    return first;
}

/* The NewTopic for spec with its configs, or NULL (logged) if librdkafka refuses it. */
static rd_kafka_NewTopic_t *new_topic(const chat_bus_topic_spec_t *spec)
{
    char errstr[ADMIN_ERRSTR_LEN];
    /* Replication -1 lets the broker apply default.replication.factor (brokers >= 2.4). */
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(spec->name, spec->partitions, spec->replication,
                                                    errstr, sizeof errstr);
    if (nt == NULL) {
        chat_log_error("kafka topic spec refused", CHAT_F_STR("topic", spec->name),
                       CHAT_F_STR("reason", errstr));
        return NULL;
    }
    for (const char *const *kv = spec->configs; kv != NULL && *kv != NULL; kv++) {
        const char *eq = strchr(*kv, '=');
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - *kv), *kv);
        if (rd_kafka_NewTopic_set_config(nt, key, eq + 1) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            chat_log_error("kafka topic config refused", CHAT_F_STR("topic", spec->name),
                           CHAT_F_STR("config", key));
            rd_kafka_NewTopic_destroy(nt);
            return NULL;
        }
    }
    return nt;
}

/* Creates every topic in one request; existing[i] is set for those already there. */
static chat_err_t topics_create(rd_kafka_t *rk, const chat_bus_topic_spec_t *specs, size_t n,
                                int64_t deadline, bool *existing)
{
    rd_kafka_NewTopic_t **topics = calloc(n, sizeof *topics);
    if (topics == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < n && err == CHAT_OK; i++) {
        topics[i] = new_topic(&specs[i]);
        if (topics[i] == NULL)
            err = CHAT_ERR_INVALID;
    }
    if (err == CHAT_OK) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, deadline);
        rd_kafka_CreateTopics(rk, topics, n, opts, q);
        err = admin_results(q, "create_topics", deadline, specs, n, existing);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
    }
    rd_kafka_NewTopic_destroy_array(topics, n);
    free(topics);
    return err;
}

/* Metadata of every topic, or NULL (logged) if no broker answered in time. */
static const struct rd_kafka_metadata *metadata_all(rd_kafka_t *rk, int64_t deadline)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, request_timeout_ms(deadline));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return md;
    chat_log_error("kafka metadata request failed",
                   CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
    return NULL;
}

/* Raises the partition count of existing topics that have fewer than asked; more than
 * asked is logged and left alone (Kafka cannot remove partitions). */
static chat_err_t topics_grow(rd_kafka_t *rk, const chat_bus_topic_spec_t *specs, size_t n,
                              const bool *existing, int64_t deadline)
{
    const struct rd_kafka_metadata *md = metadata_all(rk, deadline);
    if (md == NULL)
        return CHAT_ERR_TIMEOUT;
    rd_kafka_NewPartitions_t **grow = calloc(n, sizeof *grow);
    if (grow == NULL) {
        rd_kafka_metadata_destroy(md);
        return CHAT_ERR_NOMEM;
    }
    size_t ngrow = 0;
    char errstr[ADMIN_ERRSTR_LEN];
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_metadata_topic_t *t =
            existing[i] ? chat_bus__metadata_topic(md, specs[i].name) : NULL;
        if (t == NULL || t->partition_cnt == specs[i].partitions)
            continue;
        if (t->partition_cnt > specs[i].partitions) {
            chat_log_warn("kafka topic has more partitions than asked; left as is",
                          CHAT_F_STR("topic", specs[i].name),
                          CHAT_F_INT("partitions", t->partition_cnt),
                          CHAT_F_INT("asked", specs[i].partitions));
            continue;
        }
        chat_log_info("kafka topic grows", CHAT_F_STR("topic", specs[i].name),
                      CHAT_F_INT("from", t->partition_cnt), CHAT_F_INT("to", specs[i].partitions));
        grow[ngrow] = rd_kafka_NewPartitions_new(specs[i].name, (size_t)specs[i].partitions, errstr,
                                                 sizeof errstr);
        if (grow[ngrow] != NULL)
            ngrow++;
    }
    rd_kafka_metadata_destroy(md);
    chat_err_t err = CHAT_OK;
    if (ngrow > 0) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_AdminOptions_t *opts =
            admin_options(rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS, deadline);
        rd_kafka_CreatePartitions(rk, grow, ngrow, opts, q);
        err = admin_results(q, "create_partitions", deadline, specs, n, NULL);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_queue_destroy(q);
    }
    rd_kafka_NewPartitions_destroy_array(grow, ngrow);
    free(grow);
    return err;
}

/* True if the topic has at least the partitions asked, each with a leader. */
static bool topic_ready(const rd_kafka_metadata_topic_t *t, int partitions)
{
    if (t == NULL || t->err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partition_cnt < partitions)
        return false;
    for (int i = 0; i < t->partition_cnt; i++)
        if (t->partitions[i].leader < 0)
            return false;
    return true;
}

/* Brokers learn of new topics and partitions a little after the controller answers:
 * waits until metadata shows them all, so callers can produce and subscribe at once. */
static chat_err_t topics_wait_ready(rd_kafka_t *rk, const chat_bus_topic_spec_t *specs, size_t n,
                                    int64_t deadline)
{
    const char *missing = NULL;
    do {
        const struct rd_kafka_metadata *md = metadata_all(rk, deadline);
        if (md == NULL)
            return CHAT_ERR_TIMEOUT;
        missing = NULL;
        for (size_t i = 0; i < n && missing == NULL; i++)
            if (!topic_ready(chat_bus__metadata_topic(md, specs[i].name), specs[i].partitions))
                missing = specs[i].name;
        rd_kafka_metadata_destroy(md);
        if (missing == NULL)
            return CHAT_OK;
        chat_clock_sleep_ms(ADMIN_READY_POLL_MS);
    } while (chat_clock_remaining_ms(deadline) > 0);
    chat_log_error("kafka topic not visible in metadata in time", CHAT_F_STR("topic", missing));
    return CHAT_ERR_TIMEOUT;
}

/* Returns CHAT_ERR_INVALID for bad arguments or specs (partitions < 1, replication 0 or
 * < -1, a config without '='), otherwise the first failure of creation, growth or the
 * wait for metadata (CHAT_ERR_TIMEOUT, CHAT_ERR_KAFKA), all logged. */
chat_err_t chat_bus_topics_ensure(const char *brokers, const chat_bus_topic_spec_t *specs, size_t n,
                                  int timeout_ms)
{
    if (brokers == NULL || *brokers == '\0' || (specs == NULL && n > 0) || timeout_ms <= 0)
        return CHAT_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!spec_valid(&specs[i]))
            return CHAT_ERR_INVALID;
    if (n == 0)
        return CHAT_OK;
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    rd_kafka_t *rk;
    chat_err_t err = chat_bus__admin_handle_new(brokers, timeout_ms, &rk);
    if (err != CHAT_OK)
        return err;
    bool *existing = calloc(n, sizeof *existing);
    if (existing == NULL) {
        rd_kafka_destroy(rk);
        return CHAT_ERR_NOMEM;
    }
    err = topics_create(rk, specs, n, deadline, existing);
    chat_err_t grow_err = topics_grow(rk, specs, n, existing, deadline);
    if (err == CHAT_OK)
        err = grow_err;
    if (err == CHAT_OK)
        err = topics_wait_ready(rk, specs, n, deadline);
    free(existing);
    rd_kafka_destroy(rk);
    return err;
}

int chat_bus_topic_partitions(const char *brokers, const char *topic, int timeout_ms)
{
    if (brokers == NULL || topic == NULL || *topic == '\0' || timeout_ms <= 0)
        return -1;
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    rd_kafka_t *rk;
    if (chat_bus__admin_handle_new(brokers, timeout_ms, &rk) != CHAT_OK)
        return -1;
    int partitions = chat_bus__partitions(rk, topic, request_timeout_ms(deadline));
    rd_kafka_destroy(rk);
    return partitions > 0 ? partitions : -1;
}

chat_err_t chat_bus_topics_partitions(const char *brokers, const char *const *topics, size_t n,
                                      int timeout_ms, int *partitions)
{
    if (brokers == NULL || topics == NULL || partitions == NULL || timeout_ms <= 0)
        return CHAT_ERR_INVALID;
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    rd_kafka_t *rk;
    chat_err_t err = chat_bus__admin_handle_new(brokers, timeout_ms, &rk);
    if (err != CHAT_OK)
        return err;
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        int count = topics[i] != NULL && *topics[i] != '\0'
                        ? chat_bus__partitions(rk, topics[i], request_timeout_ms(deadline))
                        : -1;
        if (count == CHAT_BUS__NO_ANSWER)
            err = CHAT_ERR_TIMEOUT;
        partitions[i] = count > 0 ? count : -1;
    }
    rd_kafka_destroy(rk);
    return err;
}

/* ---- consumer groups, from the brokers' side ---- */

struct chat_bus_admin {
    rd_kafka_t *rk;
};

chat_err_t chat_bus_admin_new(const char *brokers, int timeout_ms, chat_bus_admin_t **out)
{
    if (brokers == NULL || *brokers == '\0' || out == NULL)
        return CHAT_ERR_INVALID;
    chat_bus_admin_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = chat_bus__admin_handle_new(brokers, timeout_ms, &a->rk);
    if (err != CHAT_OK) {
        free(a);
        return err;
    }
    *out = a;
    return CHAT_OK;
}

void chat_bus_admin_destroy(chat_bus_admin_t *a)
{
    if (a == NULL)
        return;
    rd_kafka_destroy(a->rk);
    free(a);
}

/* Waits for the result event of one admin request on q (the caller destroys it), NULL on a
 * timeout or a request-level error (logged). */
static rd_kafka_event_t *admin_event(rd_kafka_queue_t *q, const char *what, int64_t deadline)
{
    rd_kafka_event_t *ev =
        rd_kafka_queue_poll(q, request_timeout_ms(deadline) + ADMIN_RESULT_GRACE_MS);
    if (ev == NULL) {
        chat_log_warn("kafka admin request timed out", CHAT_F_STR("request", what));
        return NULL;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        chat_log_warn("kafka admin request failed", CHAT_F_STR("request", what),
                      CHAT_F_STR("kafka_err", rd_kafka_err2name(rd_kafka_event_error(ev))),
                      CHAT_F_STR("reason", rd_kafka_event_error_string(ev)));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

void chat_bus_strings_free(char **s, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        free(s[i]);
    free(s);
}

chat_err_t chat_bus_groups_list(chat_bus_admin_t *a, int timeout_ms, char ***groups, size_t *n)
{
    if (a == NULL || groups == NULL || n == NULL || timeout_ms <= 0)
        return CHAT_ERR_INVALID;
    *groups = NULL;
    *n = 0;
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_AdminOptions_t *opts =
        admin_options(a->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, deadline);
    rd_kafka_ListConsumerGroups(a->rk, opts, q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_event_t *ev = admin_event(q, "ListConsumerGroups", deadline);
    rd_kafka_queue_destroy(q);
    if (ev == NULL)
        return CHAT_ERR_KAFKA;
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t nerr = 0, cnt = 0;
    const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    const rd_kafka_ConsumerGroupListing_t **list =
        rd_kafka_ListConsumerGroups_result_valid(res, &cnt);
    chat_err_t err = CHAT_OK;
    /* A broker that did not answer leaves its groups out: the list is incomplete. */
    for (size_t i = 0; i < nerr; i++) {
        chat_log_warn("kafka group listing incomplete",
                      CHAT_F_STR("kafka_err", rd_kafka_error_name(errs[i])),
                      CHAT_F_STR("reason", rd_kafka_error_string(errs[i])));
        err = CHAT_ERR_KAFKA;
    }
    char **names = calloc(cnt > 0 ? cnt : 1, sizeof *names);
    if (names == NULL) {
        rd_kafka_event_destroy(ev);
        return CHAT_ERR_NOMEM;
    }
    for (size_t i = 0; i < cnt; i++) {
        if ((names[i] = strdup(rd_kafka_ConsumerGroupListing_group_id(list[i]))) == NULL) {
            chat_bus_strings_free(names, i);
            rd_kafka_event_destroy(ev);
            return CHAT_ERR_NOMEM;
        }
    }
    rd_kafka_event_destroy(ev);
    *groups = names;
    *n = cnt;
    return err;
}

void chat_bus_offsets_free(chat_bus_offset_t *o, size_t n)
{
    for (size_t i = 0; o != NULL && i < n; i++)
        free(o[i].topic);
    free(o);
}

chat_err_t chat_bus_group_offsets(chat_bus_admin_t *a, const char *group, int timeout_ms,
                                  chat_bus_offset_t **out, size_t *n)
{
    if (a == NULL || group == NULL || *group == '\0' || out == NULL || n == NULL || timeout_ms <= 0)
        return CHAT_ERR_INVALID;
    *out = NULL;
    *n = 0;
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_AdminOptions_t *opts =
        admin_options(a->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, deadline);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_ListConsumerGroupOffsets(a->rk, &req, 1, opts, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_event_t *ev = admin_event(q, "ListConsumerGroupOffsets", deadline);
    rd_kafka_queue_destroy(q);
    if (ev == NULL)
        return CHAT_ERR_KAFKA;
    size_t cnt = 0;
    const rd_kafka_group_result_t **groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
    const rd_kafka_error_t *gerr = cnt == 1 ? rd_kafka_group_result_error(groups[0]) : NULL;
    if (cnt != 1 || gerr != NULL) {
        chat_log_warn("kafka group offsets not read", CHAT_F_STR("group", group),
                      CHAT_F_STR("kafka_err", gerr != NULL ? rd_kafka_error_name(gerr) : NULL),
                      CHAT_F_STR("reason", gerr != NULL ? rd_kafka_error_string(gerr) : NULL));
        rd_kafka_event_destroy(ev);
        return CHAT_ERR_KAFKA;
    }
    const rd_kafka_topic_partition_list_t *parts = rd_kafka_group_result_partitions(groups[0]);
    size_t np = parts != NULL ? (size_t)parts->cnt : 0;
    chat_bus_offset_t *offsets = calloc(np > 0 ? np : 1, sizeof *offsets);
    if (offsets == NULL) {
        rd_kafka_event_destroy(ev);
        return CHAT_ERR_NOMEM;
    }
    chat_err_t err = CHAT_OK;
    size_t used = 0;
    for (size_t i = 0; i < np; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            chat_log_warn("kafka group offset not read", CHAT_F_STR("group", group),
                          CHAT_F_STR("topic", tp->topic), CHAT_F_INT("partition", tp->partition),
                          CHAT_F_STR("kafka_err", rd_kafka_err2name(tp->err)));
            err = CHAT_ERR_KAFKA;
            continue;
        }
        if ((offsets[used].topic = strdup(tp->topic)) == NULL) {
            chat_bus_offsets_free(offsets, used);
            rd_kafka_event_destroy(ev);
            return CHAT_ERR_NOMEM;
        }
        offsets[used].partition = tp->partition;
        offsets[used].offset = tp->offset >= 0 ? tp->offset : -1;
        used++;
    }
    rd_kafka_event_destroy(ev);
    *out = offsets;
    *n = used;
    return err;
}

chat_err_t chat_bus_topic_watermarks(chat_bus_admin_t *a, const char *topic, int timeout_ms,
                                     chat_bus_watermarks_t *out)
{
    if (a == NULL || topic == NULL || *topic == '\0' || out == NULL || timeout_ms <= 0)
        return CHAT_ERR_INVALID;
    *out = (chat_bus_watermarks_t){0};
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    int count = chat_bus__partitions(a->rk, topic, request_timeout_ms(deadline));
    if (count == CHAT_BUS__NO_ANSWER)
        return CHAT_ERR_TIMEOUT;
    if (count <= 0)
        return CHAT_ERR_NOT_FOUND;
    out->low = calloc((size_t)count, sizeof *out->low);
    out->high = calloc((size_t)count, sizeof *out->high);
    if (out->low == NULL || out->high == NULL) {
        chat_bus_watermarks_free(out);
        return CHAT_ERR_NOMEM;
    }
    out->partitions = count;
    for (int32_t p = 0; p < count; p++) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            a->rk, topic, p, &out->low[p], &out->high[p], request_timeout_ms(deadline));
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            chat_log_warn("kafka watermarks not read", CHAT_F_STR("topic", topic),
                          CHAT_F_INT("partition", p),
                          CHAT_F_STR("kafka_err", rd_kafka_err2name(err)));
            chat_bus_watermarks_free(out);
            return err_from_admin(err);
        }
    }
    return CHAT_OK;
}

void chat_bus_watermarks_free(chat_bus_watermarks_t *w)
{
    if (w == NULL)
        return;
    free(w->low);
    free(w->high);
    *w = (chat_bus_watermarks_t){0};
}
