/* Descriptions and names of chat_err_t. */
#include "common/err.h"

static const struct {
    const char *name;
    const char *text;
} err_table[CHAT_ERR__COUNT] = {
    [CHAT_OK] = {"ok", "success"},
    [CHAT_ERR_INVALID] = {"invalid", "invalid argument or malformed input"},
    [CHAT_ERR_NOMEM] = {"nomem", "out of memory"},
    [CHAT_ERR_IO] = {"io", "input/output error"},
    [CHAT_ERR_CONFIG] = {"config", "bad configuration value"},
    [CHAT_ERR_KAFKA] = {"kafka", "Kafka failure"},
    [CHAT_ERR_MONGO] = {"mongo", "MongoDB failure"},
    [CHAT_ERR_REDIS] = {"redis", "Redis failure"},
    [CHAT_ERR_DUPLICATE] = {"duplicate", "duplicate key"},
    [CHAT_ERR_NOT_FOUND] = {"not_found", "not found"},
    [CHAT_ERR_TIMEOUT] = {"timeout", "timed out"},
    [CHAT_ERR_UNAUTHORIZED] = {"unauthorized", "unauthorized"},
    [CHAT_ERR_FORBIDDEN] = {"forbidden", "forbidden"},
    [CHAT_ERR_TOO_LARGE] = {"too_large", "over the size limit"},
    [CHAT_ERR_STOPPED] = {"stopped", "stopped before it was done"},
};

const char *chat_err_str(chat_err_t err)
{
    if ((unsigned)err >= CHAT_ERR__COUNT)
        return "unknown error";
    return err_table[err].text;
}

const char *chat_err_name(chat_err_t err)
{
    if ((unsigned)err >= CHAT_ERR__COUNT)
        return "unknown";
    return err_table[err].name;
}
