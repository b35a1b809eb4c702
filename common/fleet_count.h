/* Per-tenant counts summed over every instance of a service through Redis (e.g. the open
 * connections of each tenant over all gateways, for limits.connections). Each instance keeps
 * its own counts (exact, changed by the caller) and a thread publishes them every period as
 * one Redis string, <prefix>:<instance> = "tenant=count\n...", that expires after ttl, listed
 * in the set <prefix>:instances; the same thread reads the other instances' strings and sums
 * them. So a check (chat_fleet_total) never waits for Redis: it adds the local count, exact,
 * to the others' as of the last read.
 *
 * Accuracy: the others' counts are at most about a period old (plus a Redis round trip): a
 * burst of increments on several instances within one period can pass a limit by what the
 * other instances added in that period. Crash-safe: a dead instance's string expires after
 * ttl, and its counts stop counting then (an instance the set lists without a string is
 * removed from the set). Redis down: the others' counts are kept for ttl after the last good
 * read, then only the local ones count (fail open: a limit is never enforced by a Redis
 * outage; the errors are counted). Thread-safe. */
#ifndef CHAT_COMMON_FLEET_COUNT_H
#define CHAT_COMMON_FLEET_COUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/metrics.h"
#include "common/strmap.h"

typedef struct chat_fleet chat_fleet_t;

typedef struct chat_fleet_conf {
    const char *redis_url;
    int timeout_ms;            /* Redis connect and command timeout */
    const char *prefix;        /* e.g. "chat:conns" */
    const char *instance;      /* unique among the instances, e.g. the gateway id */
    int period_ms;             /* publish and read every period (1000 if <= 0) */
    int ttl_ms;                /* an instance's string lives this long (5 periods if <= period) */
    chat_metrics_t *metrics;   /* borrowed; NULL: no metrics */
    const char *errors_metric; /* counter of failed publish-and-read rounds */
} chat_fleet_conf_t;

/* Creates the counts and starts the thread (which connects to Redis itself: an unreachable
 * Redis is retried every period, not a failure here). CHAT_ERR_NOMEM, CHAT_ERR_CONFIG. */
chat_err_t chat_fleet_new(const chat_fleet_conf_t *conf, chat_fleet_t **out);

/* Stops the thread and removes this instance's string (its counts stop counting at once).
 * Accepts NULL. */
void chat_fleet_free(chat_fleet_t *f);

/* Adds delta to tenant's local count (a count never goes below 0). */
void chat_fleet_add(chat_fleet_t *f, const char *tenant, int64_t delta);

/* tenant's local count. */
int64_t chat_fleet_local(chat_fleet_t *f, const char *tenant);

/* tenant's count over every instance: the local count plus the others' as last read. */
int64_t chat_fleet_total(chat_fleet_t *f, const char *tenant);

/* How many instances were alive at the last read, this one included (at least 1). */
int chat_fleet_instances(chat_fleet_t *f);

/* Runs one publish-and-read round now (tests; the thread does it every period). */
chat_err_t chat_fleet_sync(chat_fleet_t *f);

/* ---- the string format (pure; unit-tested) ---- */

/* "tenant=count\n" for each tenant of counts (tenant -> int64_t *) with a count above 0, a
 * new string (caller frees); NULL if out of memory. */
char *chat_fleet_encode(const chat_strmap_t *counts);

/* Adds the counts of an encoded string to sums (tenant -> int64_t *, allocated as needed).
 * Malformed lines are skipped. Returns how many lines were added, or -1 if out of memory. */
int chat_fleet_decode_add(const char *s, size_t len, chat_strmap_t *sums);

/* Frees the int64_t values of a counts map and clears it. */
void chat_fleet_counts_clear(chat_strmap_t *counts);

#endif
