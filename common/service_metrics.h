/* The metrics every service exposes besides its own (docs/metrics.md, "Every service"): the
 * process (CPU, memory, file descriptors, start time, read from the kernel at each scrape),
 * chat_build_info{version,service}, and the MongoDB and Redis op latency and errors of
 * common/store and common/redis. One call in each service's main wires all of them. */
#ifndef CHAT_COMMON_SERVICE_METRICS_H
#define CHAT_COMMON_SERVICE_METRICS_H

#include "common/err.h"
#include "common/metrics.h"

/* The version of this build ("0.1.0+g<commit>" when built from a git checkout). */
extern const char chat_build_version[];

/* Registers the process metrics (refreshed by a collector at every render) and
 * chat_build_info{version,service} = 1 in m, and attaches m to MongoDB and Redis for the whole
 * process (chat_store_metrics_attach, chat_redis_metrics_attach). Call it right after
 * creating the service's registry, before opening any store (a store's pool is monitored
 * only if created after) or Redis connection; m must outlive them. service is the service's
 * short name ("message", "gateway"). Returns CHAT_ERR_NOMEM if a series could not be
 * registered (the others still work), CHAT_ERR_INVALID for NULL arguments. */
chat_err_t chat_service_metrics_attach(chat_metrics_t *m, const char *service);

/* Registers only the process metrics and their collector (what chat_service_metrics_attach
 * starts with). */
chat_err_t chat_process_metrics_register(chat_metrics_t *m);

#endif
