/* The contract's keys, ids and the start-up check of topics (see contract.h). */
#include "common/contract.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/log.h"

chat_err_t chat_topics_check(const char *brokers, const chat_topic_use_t *topics, size_t n,
                             int timeout_ms, int *partitions, const char **bad_var)
{
    const char *ignored;
    if (bad_var == NULL)
        bad_var = &ignored;
    *bad_var = NULL;
    const char **names = calloc(n > 0 ? n : 1, sizeof *names);
    int *counts = calloc(n > 0 ? n : 1, sizeof *counts);
    chat_err_t err = names != NULL && counts != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    for (size_t i = 0; err == CHAT_OK && i < n; i++)
        names[i] = topics[i].name;
    if (err == CHAT_OK)
        err = chat_bus_topics_partitions(brokers, names, n, timeout_ms, counts);
    if (err == CHAT_ERR_CONFIG) {
        *bad_var = "KAFKA_*"; /* the bus logged which variable librdkafka refused */
    } else if (err != CHAT_OK && err != CHAT_ERR_NOMEM) {
        chat_log_error("cannot read the topics from Kafka (brokers unreachable?)",
                       CHAT_F_STR("var", "CHAT_KAFKA_BROKERS"), CHAT_F_STR("value", brokers),
                       CHAT_F_ERR(err));
        *bad_var = "CHAT_KAFKA_BROKERS";
        err = CHAT_ERR_KAFKA;
    }
    for (size_t i = 0; err == CHAT_OK && i < n; i++) {
        if (counts[i] > 0)
            continue;
        chat_log_error("kafka topic does not exist (create it: config/topics.conf)",
                       CHAT_F_STR("var", topics[i].var), CHAT_F_STR("topic", topics[i].name));
        *bad_var = topics[i].var;
        err = CHAT_ERR_CONFIG;
    }
    if (err == CHAT_OK && partitions != NULL)
        memcpy(partitions, counts, n * sizeof *counts);
    free(names);
    free(counts);
    return err;
}

int chat_room_key(const char *tenant, const char *room, char *buf, size_t buflen)
{
    if (tenant == NULL || room == NULL || *tenant == '\0' || *room == '\0' || buf == NULL)
        return -1;
    int n = snprintf(buf, buflen, "%s/%s", tenant, room);
    return n >= 0 && (size_t)n < buflen ? n : -1;
}

int chat_gateway_id(int64_t index, char *buf, size_t buflen)
{
    if (index < 0 || index > CHAT_GATEWAY_INDEX_MAX || buf == NULL)
        return -1;
    int n = snprintf(buf, buflen, "%lld", (long long)index);
    return n >= 0 && (size_t)n < buflen ? n : -1;
}

int32_t chat_gateway_index_partition(int64_t index)
{
    return index >= 0 && index <= CHAT_GATEWAY_INDEX_MAX ? (int32_t)index : -1;
}

int32_t chat_gateway_partition(const char *s)
{
    if (s == NULL || s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
        return -1;
    int64_t v = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
        if (v > INT32_MAX)
            return -1;
    }
    return (int32_t)v;
}

/* Writes "chat:room:{tenant/room}:<suffix>", the form of every Redis key about a room (the
 * hash tag keeps a room's keys in one cluster slot). Returns its length, or -1. */
static int room_redis_key(const char *tenant, const char *room, const char *suffix, char *buf,
                          size_t buflen)
{
    if (tenant == NULL || room == NULL || *tenant == '\0' || *room == '\0' || buf == NULL)
        return -1;
    int n = snprintf(buf, buflen, "chat:room:{%s/%s}:%s", tenant, room, suffix);
    return n >= 0 && (size_t)n < buflen ? n : -1;
}

int chat_registry_key(const char *tenant, const char *room, chat_registry_set_t set, char *buf,
                      size_t buflen)
{
    static const char *const suffix[] = {[CHAT_REGISTRY_GWS] = "gws",
                                         [CHAT_REGISTRY_ONLINE] = "online",
                                         [CHAT_REGISTRY_PRESENCE] = "presence"};
    if (set != CHAT_REGISTRY_GWS && set != CHAT_REGISTRY_ONLINE && set != CHAT_REGISTRY_PRESENCE)
        return -1;
    return room_redis_key(tenant, room, suffix[set], buf, buflen);
}

int chat_recent_key(const char *tenant, const char *room, char *buf, size_t buflen)
{
    return room_redis_key(tenant, room, "recent", buf, buflen);
}

int chat_useq_key(const char *tenant, const char *room, char *buf, size_t buflen)
{
    return room_redis_key(tenant, room, "useq", buf, buflen);
}

int chat_useq_value(const char *run_id, int64_t useq, char *buf, size_t buflen)
{
    int n = snprintf(buf, buflen, "%s:%lld", run_id, (long long)useq);
    return n >= 0 && (size_t)n < buflen ? n : -1;
}

bool chat_useq_value_parse(const char *value, size_t len, const char *run_id, int64_t *useq)
{
    size_t n = strlen(run_id);
    if (n == 0 || len <= n + 1 || len >= 64 || strncmp(value, run_id, n) != 0 || value[n] != ':')
        return false;
    char digits[64];
    memcpy(digits, value + n + 1, len - n - 1);
    digits[len - n - 1] = '\0';
    char *end = NULL;
    long long v = strtoll(digits, &end, 10);
    if (end == digits || *end != '\0' || v < 0)
        return false;
    *useq = v;
    return true;
}

int chat_room_summary_key(const char *tenant, const char *room, char *buf, size_t buflen)
{
    return room_redis_key(tenant, room, "summary", buf, buflen);
}

int chat_user_rooms_key(const char *tenant, const char *user, char *buf, size_t buflen)
{
    if (tenant == NULL || user == NULL || *tenant == '\0' || *user == '\0' || buf == NULL)
        return -1;
    int n = snprintf(buf, buflen, "chat:user:{%s/%s}:rooms", tenant, user);
    return n >= 0 && (size_t)n < buflen ? n : -1;
}

bool chat_origin_is_api(const char *origin_gw)
{
    return origin_gw != NULL && strcmp(origin_gw, CHAT_API_ORIGIN) == 0;
}

int chat_api_reply_key(const char *conn, char *buf, size_t buflen)
{
    if (conn == NULL || *conn == '\0' || buf == NULL)
        return -1;
    int n = snprintf(buf, buflen, "chat:api:reply:{%s}", conn);
    return n >= 0 && (size_t)n < buflen ? n : -1;
}

int chat_member_id(const char *tenant, const char *room, const char *user, char *buf, size_t buflen)
{
    if (tenant == NULL || room == NULL || user == NULL || *tenant == '\0' || *room == '\0' ||
        *user == '\0' || buf == NULL)
        return -1;
    int n = snprintf(buf, buflen, "%s/%s/%s", tenant, room, user);
    return n >= 0 && (size_t)n < buflen ? n : -1;
}
