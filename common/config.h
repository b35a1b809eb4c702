/* Configuration from environment variables, described by one table per service.
 * Each entry names its variable, type, default, bounds and a one-line help; `--help`
 * prints the table; a missing required variable or a bad value stops start-up with a log
 * line naming the variable. Values land in a service-defined struct at the entry's offset.
 *
 *   struct cfg { char *brokers; long long ops_port; bool debug; };
 *   static const chat_cfg_entry_t table[] = {
 *       CHAT_CFG_STRING("CHAT_KAFKA_BROKERS", struct cfg, brokers, "127.0.0.1:9092",
 *                       "Kafka bootstrap servers"),
 *       CHAT_CFG_INTEGER("CHAT_OPS_PORT", struct cfg, ops_port, "9100", 1, 65535,
 *                        "port of /healthz, /readyz, /metrics"),
 *       CHAT_CFG_END};
 */
#ifndef CHAT_COMMON_CONFIG_H
#define CHAT_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"
#include "common/names.h"

typedef enum chat_cfg_type {
    CHAT_CFG_T_END = 0,
    CHAT_CFG_T_STRING,   /* char * (heap copy, freed by chat_cfg_free) */
    CHAT_CFG_T_INTEGER,  /* long long, within [min, max] */
    CHAT_CFG_T_BOOL,     /* bool: true/false/1/0/yes/no/on/off */
    CHAT_CFG_T_ENUM,     /* char * holding one of the '|'-separated choices */
    CHAT_CFG_T_DURATION, /* long long milliseconds: "250ms", "10s", "5m", "1h" or bare ms */
} chat_cfg_type_t;

typedef struct chat_cfg_entry {
    const char *name; /* environment variable, e.g. "CHAT_OPS_PORT" */
    chat_cfg_type_t type;
    size_t offset;       /* where the value goes in the service's struct */
    const char *def;     /* default as text; NULL means the variable is required */
    long long min, max;  /* bounds for INTEGER and DURATION (inclusive) */
    const char *choices; /* for ENUM: "debug|info|warn|error" */
    const char *help;    /* one line */
    bool secret;         /* never printed (values of --help and the start-up log) */
} chat_cfg_entry_t;

#define CHAT_CFG_STRING(n, st, field, d, h)                                                        \
    {                                                                                              \
        .name = (n), .type = CHAT_CFG_T_STRING, .offset = offsetof(st, field), .def = (d),         \
        .help = (h)                                                                                \
    }
#define CHAT_CFG_SECRET(n, st, field, d, h)                                                        \
    {                                                                                              \
        .name = (n), .type = CHAT_CFG_T_STRING, .offset = offsetof(st, field), .def = (d),         \
        .help = (h), .secret = true                                                                \
    }
#define CHAT_CFG_INTEGER(n, st, field, d, lo, hi, h)                                               \
    {                                                                                              \
        .name = (n), .type = CHAT_CFG_T_INTEGER, .offset = offsetof(st, field), .def = (d),        \
        .min = (lo), .max = (hi), .help = (h)                                                      \
    }
#define CHAT_CFG_DURATION(n, st, field, d, lo, hi, h)                                              \
    {                                                                                              \
        .name = (n), .type = CHAT_CFG_T_DURATION, .offset = offsetof(st, field), .def = (d),       \
        .min = (lo), .max = (hi), .help = (h)                                                      \
    }
#define CHAT_CFG_BOOL(n, st, field, d, h)                                                          \
    {                                                                                              \
        .name = (n), .type = CHAT_CFG_T_BOOL, .offset = offsetof(st, field), .def = (d),           \
        .help = (h)                                                                                \
    }
#define CHAT_CFG_ENUM(n, st, field, d, ch, h)                                                      \
    {                                                                                              \
        .name = (n), .type = CHAT_CFG_T_ENUM, .offset = offsetof(st, field), .def = (d),           \
        .choices = (ch), .help = (h)                                                               \
    }
#define CHAT_CFG_END                                                                               \
    {                                                                                              \
        .name = NULL, .type = CHAT_CFG_T_END                                                       \
    }

/* The entries every program shares, so that a variable has one default, one range and one
 * help text everywhere. URLs that may carry a password are SECRET. The ops port's default
 * differs per service; what the connect timeout waits for (and its upper bound) too. */
#define CHAT_CFG_KAFKA_BROKERS(st, field)                                                          \
    CHAT_CFG_STRING("CHAT_KAFKA_BROKERS", st, field, "127.0.0.1:7400",                             \
                    "Kafka bootstrap servers (host:port,...)")
#define CHAT_CFG_MONGO_URI(st, field)                                                              \
    CHAT_CFG_SECRET("CHAT_MONGO_URI", st, field, "mongodb://127.0.0.1:7402/chat",                  \
                    "MongoDB URI; its path names the database")
#define CHAT_CFG_REDIS_URL(st, field)                                                              \
    CHAT_CFG_SECRET("CHAT_REDIS_URL", st, field, "redis://127.0.0.1:7403/0",                       \
                    "Redis URL: redis://[:password@]host:port[/db]")
#define CHAT_CFG_OPS_ADDR(st, field)                                                               \
    CHAT_CFG_STRING("CHAT_OPS_ADDR", st, field, "127.0.0.1",                                       \
                    "address of /healthz, /readyz and /metrics")
#define CHAT_CFG_OPS_PORT(st, field, default_port)                                                 \
    CHAT_CFG_INTEGER("CHAT_OPS_PORT", st, field, default_port, 0, 65535,                           \
                     "port of /healthz, /readyz and /metrics (0: any free port)")
#define CHAT_CFG_LOG_LEVEL(st, field)                                                              \
    CHAT_CFG_ENUM("CHAT_LOG_LEVEL", st, field, "info", "debug|info|warn|error",                    \
                  "minimum level of the JSON log lines on stderr")
#define CHAT_CFG_CONNECT_TIMEOUT(st, field, max_ms, h)                                             \
    CHAT_CFG_DURATION("CHAT_CONNECT_TIMEOUT", st, field, "10s", 100, max_ms, h)
/* Bounded by what the event codec can carry: a longer limit would let texts through that
 * no service can encode. */
#define CHAT_CFG_MAX_TEXT_CHARS(st, field)                                                         \
    CHAT_CFG_INTEGER("CHAT_MAX_TEXT_CHARS", st, field, CHAT_CFG_QUOTE(CHAT_TEXT_MAX_CHARS), 1,     \
                     CHAT_TEXT_MAX_CHARS,                                                          \
                     "longest message text in Unicode characters; longer sends get too_large")
#define CHAT_CFG_QUOTE(x) CHAT_CFG_QUOTE_(x)
#define CHAT_CFG_QUOTE_(x) #x
/* Offsets of finished records are committed on this cadence (and on revoke and shutdown),
 * not per batch: a crash replays at most this much, which idempotent consumers absorb. */
#define CHAT_CFG_COMMIT_INTERVAL(st, field)                                                        \
    CHAT_CFG_DURATION("CHAT_COMMIT_INTERVAL", st, field, "200ms", 10, 60000,                       \
                      "how often consumed offsets are committed to Kafka (also on revoke and "     \
                      "at shutdown); a crash replays at most this much, idempotently")
#define CHAT_CFG_INSTANCE_ID(st, field)                                                            \
    CHAT_CFG_STRING("CHAT_INSTANCE_ID", st, field, "",                                             \
                    "static group membership id, unique per instance (e.g. the pod name of a "     \
                    "StatefulSet): a restart takes its partitions back at once; empty: dynamic")

typedef enum chat_cfg_result {
    CHAT_CFG_LOADED = 0, /* values are in *out */
    CHAT_CFG_HELP,       /* --help was given and printed: exit 0 */
    CHAT_CFG_FAILED,     /* a value was bad; the reason was logged: exit non-zero */
} chat_cfg_result_t;

/* Fills *out from the environment according to table. argv may hold "--help"/"-h" (prints
 * chat_cfg_print_help to stdout) and nothing else; any other argument fails.
 * On CHAT_CFG_FAILED, the error log line carries "var" (the variable) and "value".
 * summary is the first line of --help. Strings in *out are freed by chat_cfg_free. */
chat_cfg_result_t chat_cfg_load(const chat_cfg_entry_t *table, void *out, int argc, char **argv,
                                const char *program, const char *summary);

/* Loads without argv handling and without logging: returns CHAT_OK or CHAT_ERR_CONFIG and,
 * on failure, the offending variable name in *bad_var (static, from the table) and a
 * reason in errbuf. */
chat_err_t chat_cfg_load_env(const chat_cfg_entry_t *table, void *out, const char **bad_var,
                             char *errbuf, size_t errlen);

/* Prints the table (variable, type, default, bounds, help; secrets' defaults hidden). */
void chat_cfg_print_help(const chat_cfg_entry_t *table, FILE *f, const char *program,
                         const char *summary);

/* Logs the effective configuration at info level, secrets masked. */
void chat_cfg_log(const chat_cfg_entry_t *table, const void *cfg);

/* Frees the strings that chat_cfg_load* stored in cfg. Accepts a partially loaded struct. */
void chat_cfg_free(const chat_cfg_entry_t *table, void *cfg);

#endif
