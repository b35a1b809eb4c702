/* Lag from librdkafka's statistics and from committed offsets (see kafka_stats.h). The
 * statistics layout is librdkafka's STATISTICS.md: topics.<name>.partitions.<id> objects
 * with integer fields; numbers arrive as doubles from cJSON, exact up to 2^53. */
#include "common/kafka_stats.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The integer member name of obj, or false if absent or not a number. */
static bool stats_int(const cJSON *obj, const char *name, int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(item))
        return false;
    *out = (int64_t)item->valuedouble;
    return true;
}

/* The lag of one partition object, or -1 if unknown (see kafka_stats.h for the order). */
static int64_t partition_lag(const cJSON *p)
{
    int64_t lag, hi, app;
    if (stats_int(p, "consumer_lag", &lag) && lag >= 0)
        return lag;
    if (stats_int(p, "consumer_lag_stored", &lag) && lag >= 0)
        return lag;
    if (stats_int(p, "hi_offset", &hi) && stats_int(p, "app_offset", &app) && hi >= 0 && app >= 0)
        return hi >= app ? hi - app : 0;
    return -1;
}

int chat_kafka_stats_lags(const char *json, size_t len, chat_kafka_stats_lag_fn fn, void *ud)
{
    if (json == NULL)
        return -1;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return -1;
    }
    int reported = 0;
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
    if (!cJSON_IsObject(topics))
        topics = NULL;
    const cJSON *topic;
    cJSON_ArrayForEach(topic, topics)
    {
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(topic, "partitions");
        if (!cJSON_IsObject(parts) || topic->string == NULL)
            continue;
        const cJSON *p;
        cJSON_ArrayForEach(p, parts)
        {
            int64_t id;
            if (!cJSON_IsObject(p) || !stats_int(p, "partition", &id) || id < 0 || id > INT32_MAX)
                continue;
            int64_t lag = partition_lag(p);
            if (lag < 0)
                continue;
            if (fn != NULL)
                fn(ud, topic->string, (int32_t)id, lag);
            reported++;
        }
    }
    cJSON_Delete(root);
    return reported;
}

int64_t chat_kafka_partition_lag(int64_t low, int64_t high, int64_t committed)
{
    int64_t from = committed >= 0 ? committed : (low >= 0 ? low : 0);
    return high > from ? high - from : 0;
}

chat_kafka_topic_lag_t chat_kafka_topic_lag(const int64_t *low, const int64_t *high,
                                            const int64_t *committed, size_t n)
{
    chat_kafka_topic_lag_t t = {0, 0};
    for (size_t i = 0; i < n; i++) {
        int64_t lag = chat_kafka_partition_lag(low[i], high[i], committed[i]);
        t.sum += lag;
        if (lag > t.max)
            t.max = lag;
    }
    return t;
}
