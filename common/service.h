/* The start-up steps every service's main() takes before its own wiring: load the
 * configuration table (or print --help), apply CHAT_LOG_LEVEL, log the effective
 * configuration and install the stop signals. Metrics, the ops server and the connections
 * differ per service (order, readiness, log lines) and stay in each main.c. */
#ifndef CHAT_COMMON_SERVICE_H
#define CHAT_COMMON_SERVICE_H

#include "common/config.h"

/* Loads table into cfg like chat_cfg_load (argv may hold only --help/-h). On CHAT_CFG_LOADED
 * the table's CHAT_LOG_LEVEL (if it has one) is the log level, the configuration has been
 * logged (secrets masked) and SIGTERM/SIGINT request a stop; the caller frees cfg with
 * chat_cfg_free when done. On CHAT_CFG_HELP (help printed) and CHAT_CFG_FAILED (reason
 * logged) cfg has already been freed and the caller only exits. */
chat_cfg_result_t chat_service_configure(const chat_cfg_entry_t *table, void *cfg, int argc,
                                         char **argv, const char *program, const char *summary);

#endif
