/* Internal to the redis module (common/redis.c and its unit test): the parsed form of a
 * redis:// URL. Not for use by services. */
#ifndef CHAT_COMMON_REDIS_INT_H
#define CHAT_COMMON_REDIS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define CHAT_REDIS_HOST_MAX 256
#define CHAT_REDIS_SECRET_MAX 256

typedef struct chat_redis_url {
    char host[CHAT_REDIS_HOST_MAX];       /* without the brackets of an IPv6 literal */
    int port;                             /* 6379 if the URL has none */
    int db;                               /* 0 if the URL has none */
    char username[CHAT_REDIS_SECRET_MAX]; /* "" unless user:password@ (Redis 6 ACL) */
    char password[CHAT_REDIS_SECRET_MAX]; /* percent-decoded; "" if none */
} chat_redis_url_t;

/* Parses redis://[[user]:password@]host[:port][/db]. The password may be percent-encoded
 * (%40 for '@'). Returns CHAT_ERR_CONFIG (logged without the URL, which may hold a secret)
 * for another scheme, an empty host, a port outside 1..65535, a db that is not a
 * non-negative int, or anything else malformed. */
chat_err_t chat_redis__parse_url(const char *url, chat_redis_url_t *out);

/* Size of a buffer for a server's run_id (40 hex digits) and its NUL. */
#define CHAT_REDIS_RUN_ID_MAX 41

/* Copies the run_id field of an INFO server reply (len bytes, "key:value" lines ended by
 * CRLF) into out (CHAT_REDIS_RUN_ID_MAX bytes). Returns false, with out = "", if the reply
 * has no run_id line or its value is not 40 hex digits. */
bool chat_redis__info_run_id(const char *info, size_t len, char *out);

#endif
