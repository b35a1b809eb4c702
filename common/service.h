/* The start-up steps every service's main() takes before its own wiring: load the
 * configuration table (or print --help), apply CHAT_LOG_LEVEL, log the effective
 * configuration and install the stop signals; then the start-failure log line and opening
 * MongoDB, which the services that use it do alike. Metrics, the ops server and the other
 * connections differ per service (order, readiness, log lines) and stay in each main.c. */
#ifndef CHAT_COMMON_SERVICE_H
#define CHAT_COMMON_SERVICE_H

#include <stdbool.h>

#include "common/backoff.h"
#include "common/config.h"
#include "common/err.h"
#include "common/store.h"

/* Loads table into cfg like chat_cfg_load (argv may hold only --help/-h). On CHAT_CFG_LOADED
 * the table's CHAT_LOG_LEVEL (if it has one) is the log level, the configuration has been
 * logged (secrets masked) and SIGTERM/SIGINT request a stop; the caller frees cfg with
 * chat_cfg_free when done. On CHAT_CFG_HELP (help printed) and CHAT_CFG_FAILED (reason
 * logged) cfg has already been freed and the caller only exits. */
chat_cfg_result_t chat_service_configure(const chat_cfg_entry_t *table, void *cfg, int argc,
                                         char **argv, const char *program, const char *summary);

/* Logs a failed start-up step as an error line: what failed, the variable to look at (var)
 * and the code. */
void chat_service_start_failed(const char *var, const char *what, chat_err_t err);

/* Opens the MongoDB pool of uri (client name program) into *store and pings it within
 * timeout_ms. Returns true; false with the failure logged against CHAT_MONGO_URI ("bad MongoDB
 * URI" or "MongoDB unreachable"). *store may hold the pool even then: the caller destroys it
 * (chat_store_destroy). */
bool chat_service_store_open(const char *uri, const char *program, int timeout_ms,
                             chat_store_t **store);

/* Waits out a failing step of a consumer's batch (a MongoDB or Redis call the batch cannot do
 * without): logs the failure once per streak (*logged, false at the streak's start), then
 * sleeps the backoff's next delay. True to try again; false if a stop was requested. */
bool chat_service_retry_wait(chat_backoff_t *b, const char *step, chat_err_t err, bool *logged);

#endif
