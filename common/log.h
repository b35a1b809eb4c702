/* Structured logs: one JSON object per line on stderr, written with a single write(2) so
 * lines from different threads never interleave. The level check happens before any
 * formatting, so a disabled debug line costs one comparison.
 *
 *   chat_log_info("consumer assigned", CHAT_F_STR("topic", t), CHAT_F_INT("partitions", n));
 *
 * prints {"ts":"2026-11-24T10:00:00.123Z","level":"info","svc":"message",
 *         "msg":"consumer assigned","topic":"chat.inbound","partitions":4} */
#ifndef CHAT_COMMON_LOG_H
#define CHAT_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum chat_log_level {
    CHAT_LOG_DEBUG = 0,
    CHAT_LOG_INFO,
    CHAT_LOG_WARN,
    CHAT_LOG_ERROR,
    CHAT_LOG_OFF
} chat_log_level_t;

typedef enum chat_log_ftype {
    CHAT_LOG_F_END = 0,
    CHAT_LOG_F_STR,
    CHAT_LOG_F_INT,
    CHAT_LOG_F_DBL,
    CHAT_LOG_F_BOOL
} chat_log_ftype_t;

/* One key/value of a log line. Keys and string values are borrowed for the call only. */
typedef struct chat_log_field {
    const char *key;
    chat_log_ftype_t type;
    union {
        const char *s;
        long long i;
        double d;
        bool b;
    } v;
} chat_log_field_t;

#define CHAT_F_STR(k, val) ((chat_log_field_t){.key = (k), .type = CHAT_LOG_F_STR, .v.s = (val)})
#define CHAT_F_INT(k, val)                                                                         \
    ((chat_log_field_t){.key = (k), .type = CHAT_LOG_F_INT, .v.i = (long long)(val)})
#define CHAT_F_DBL(k, val)                                                                         \
    ((chat_log_field_t){.key = (k), .type = CHAT_LOG_F_DBL, .v.d = (double)(val)})
#define CHAT_F_BOOL(k, val)                                                                        \
    ((chat_log_field_t){.key = (k), .type = CHAT_LOG_F_BOOL, .v.b = (bool)(val)})
/* The project's error code as "err":"<name>". */
#define CHAT_F_ERR(e) CHAT_F_STR("err", chat_err_name(e))
#define CHAT_F_END ((chat_log_field_t){.key = 0, .type = CHAT_LOG_F_END})

/* Sets the service name printed as "svc" and the minimum level. Call once at start-up,
 * before other threads log. service is copied. */
void chat_log_init(const char *service, chat_log_level_t level);

/* Changes the minimum level at run time (thread-safe). */
void chat_log_set_level(chat_log_level_t level);

/* Parses "debug", "info", "warn", "error" or "off". Returns CHAT_ERR_INVALID otherwise. */
chat_err_t chat_log_level_parse(const char *name, chat_log_level_t *out);

/* Returns true if lines of this level are printed. */
bool chat_log_enabled(chat_log_level_t level);

/* Redirects output to fd (default 2). For tests. */
void chat_log_set_fd(int fd);

/* Formats and writes one line. Fields are passed by value and end with CHAT_F_END.
 * Use the macros below, which skip the call when the level is disabled. */
void chat_log__emit(chat_log_level_t level, const char *msg, ...);

/* One line with the n fields of an array, for a number of fields known only at run time
 * (e.g. a configuration table). Checks the level itself; CHAT_F_END entries are skipped. */
void chat_log_fields(chat_log_level_t level, const char *msg, const chat_log_field_t *fields,
                     size_t n);

#define CHAT_LOG_(lvl, ...)                                                                        \
    do {                                                                                           \
        if (chat_log_enabled(lvl))                                                                 \
            chat_log__emit((lvl), __VA_ARGS__);                                                    \
    } while (0)
#define chat_log_debug(...) CHAT_LOG_(CHAT_LOG_DEBUG, __VA_ARGS__, CHAT_F_END)
#define chat_log_info(...) CHAT_LOG_(CHAT_LOG_INFO, __VA_ARGS__, CHAT_F_END)
#define chat_log_warn(...) CHAT_LOG_(CHAT_LOG_WARN, __VA_ARGS__, CHAT_F_END)
#define chat_log_error(...) CHAT_LOG_(CHAT_LOG_ERROR, __VA_ARGS__, CHAT_F_END)

#endif
