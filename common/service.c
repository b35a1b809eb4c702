/* Shared start-up of the services (see service.h): configuration, log level, the
 * configuration log line and signals, in the order every service needs them. */
#include "common/service.h"

#include <string.h>

#include "common/log.h"
#include "common/signals.h"

/* The level named by the table's CHAT_LOG_LEVEL entry; info without one. The entry is an
 * ENUM of the level names, so a loaded value always parses. */
static chat_log_level_t configured_level(const chat_cfg_entry_t *table, const void *cfg)
{
    chat_log_level_t level = CHAT_LOG_INFO;
    for (const chat_cfg_entry_t *e = table; e->name != NULL; e++) {
        if (strcmp(e->name, "CHAT_LOG_LEVEL") == 0) {
            const char *name = *(char *const *)((const char *)cfg + e->offset);
            chat_log_level_parse(name, &level);
            break;
        }
    }
    return level;
}

chat_cfg_result_t chat_service_configure(const chat_cfg_entry_t *table, void *cfg, int argc,
                                         char **argv, const char *program, const char *summary)
{
    chat_cfg_result_t res = chat_cfg_load(table, cfg, argc, argv, program, summary);
    if (res != CHAT_CFG_LOADED) {
        chat_cfg_free(table, cfg);
        return res;
    }
    chat_log_set_level(configured_level(table, cfg));
    chat_cfg_log(table, cfg);
    chat_signals_install();
    return CHAT_CFG_LOADED;
}

/* Logs what failed with var and err. */
void chat_service_start_failed(const char *var, const char *what, chat_err_t err)
{
    chat_log_error(what, CHAT_F_STR("var", var), CHAT_F_ERR(err));
}

/* Creates and pings the pool; false (logged) on a bad URI or no answer. */
bool chat_service_store_open(const char *uri, const char *program, int timeout_ms,
                             chat_store_t **store)
{
    chat_err_t err = chat_store_new(uri, program, store);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_MONGO_URI", "bad MongoDB URI", err);
        return false;
    }
    err = chat_store_ping(*store, timeout_ms);
    if (err != CHAT_OK) {
        chat_service_start_failed("CHAT_MONGO_URI", "MongoDB unreachable", err);
        return false;
    }
    return true;
}

bool chat_service_retry_wait(chat_backoff_t *b, const char *step, chat_err_t err, bool *logged)
{
    if (!*logged)
        chat_log_error("batch step failed; retrying the batch", CHAT_F_STR("step", step),
                       CHAT_F_ERR(err));
    *logged = true;
    return !chat_signals_wait_stop(chat_backoff_next(b));
}
