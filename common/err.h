/* One status type for the whole project: 0 is success, every failure has a code and a
 * fixed description. Library-specific detail (librdkafka, mongoc, hiredis error text) goes
 * into the log line of whoever saw it, not into this enum. */
#ifndef CHAT_COMMON_ERR_H
#define CHAT_COMMON_ERR_H

typedef enum chat_err {
    CHAT_OK = 0,
    CHAT_ERR_INVALID,      /* bad argument or malformed input */
    CHAT_ERR_NOMEM,        /* allocation failed */
    CHAT_ERR_IO,           /* system call or socket failure */
    CHAT_ERR_CONFIG,       /* a configuration value is missing or out of bounds */
    CHAT_ERR_KAFKA,        /* Kafka client or broker failure */
    CHAT_ERR_MONGO,        /* MongoDB failure other than the cases below */
    CHAT_ERR_REDIS,        /* Redis failure */
    CHAT_ERR_DUPLICATE,    /* unique key violation (MongoDB error 11000) */
    CHAT_ERR_NOT_FOUND,    /* the document, tenant or key does not exist */
    CHAT_ERR_TIMEOUT,      /* the operation did not finish in time */
    CHAT_ERR_UNAUTHORIZED, /* bad signature, unknown tenant, expired token */
    CHAT_ERR_FORBIDDEN,    /* authenticated but not allowed */
    CHAT_ERR_TOO_LARGE,    /* over a configured size limit */
    CHAT_ERR_STOPPED,      /* shutting down, or not attempted after an earlier failure */
    CHAT_ERR__COUNT
} chat_err_t;

/* Returns a static, human-readable description of err ("unknown error" if out of range). */
const char *chat_err_str(chat_err_t err);

/* Returns the short snake_case name of err ("ok", "invalid", "duplicate", ...). */
const char *chat_err_name(chat_err_t err);

#endif
