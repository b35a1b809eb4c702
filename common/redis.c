/* Redis client shared by the services: URL parsing, a blocking hiredis 0.14 connection with
 * connect and command timeouts, one reconnect-and-retry on a lost connection, and
 * pipelining with the command names remembered for the log. Logs name commands by argv[0]
 * only: arguments may be secrets (tokens, the AUTH password). */
#include "common/redis.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/array.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/redis_int.h"

#define REDIS_SCHEME "redis://"
#define REDIS_DEFAULT_PORT 6379
#define REDIS_NAME_MAX 24

typedef struct command_name {
    char s[REDIS_NAME_MAX];
} command_name_t;

struct chat_redis {
    redisContext *ctx;                  /* NULL after a lost connection: the next call reconnects */
    char run_id[CHAT_REDIS_RUN_ID_MAX]; /* of the server ctx talks to; "" if it did not tell */
    chat_redis_url_t url;
    struct timeval timeout;
    /* Names of the pipelined commands whose replies are not read yet: names[head] is the
     * next reply's, pending of them in a row. */
    command_name_t *names;
    size_t names_cap;
    size_t head;
    size_t pending;
    int64_t pipeline_start_us; /* when its first reply was read; 0 before that */
};

/* ---- metrics ---- */

typedef struct redis_metrics {
    chat_histogram_t *seconds;
    chat_counter_t *errors;
} redis_metrics_t;

/* Two slots so that a new attach never rewrites series a connection may be updating. */
static redis_metrics_t redis_metrics_slots[2];
static _Atomic(redis_metrics_t *) redis_metrics_current;
static atomic_uint redis_metrics_next;

chat_err_t chat_redis_metrics_attach(chat_metrics_t *m)
{
    if (m == NULL) {
        atomic_store(&redis_metrics_current, NULL);
        return CHAT_OK;
    }
    redis_metrics_t *rm = &redis_metrics_slots[atomic_fetch_add(&redis_metrics_next, 1) % 2];
    rm->seconds = chat_metrics_histogram(
        m, "chat_redis_op_seconds", "One Redis round trip: a command, or a pipeline's replies.",
        NULL, chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    rm->errors =
        chat_metrics_counter(m, "chat_redis_errors_total",
                             "Redis calls that failed (connection, I/O, error reply).", NULL);
    atomic_store(&redis_metrics_current, rm);
    return rm->seconds != NULL && rm->errors != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

static void redis_metric_time(int64_t start_us)
{
    redis_metrics_t *rm = atomic_load_explicit(&redis_metrics_current, memory_order_acquire);
    if (rm != NULL)
        chat_histogram_observe(rm->seconds, chat_clock_seconds_since(start_us));
}

static void redis_metric_error(void)
{
    redis_metrics_t *rm = atomic_load_explicit(&redis_metrics_current, memory_order_acquire);
    if (rm != NULL)
        chat_counter_inc(rm->errors);
}

static void set_err(chat_err_t *err, chat_err_t value)
{
    if (err != NULL)
        *err = value;
}

/* ---- URL parsing ---- */

static chat_err_t url_fail(const char *reason)
{
    chat_log_error("invalid redis url", CHAT_F_STR("reason", reason));
    return CHAT_ERR_CONFIG;
}

/* Parses len decimal digits (no sign, at least one) into *out if the value is <= max. */
static bool parse_decimal(const char *s, size_t len, long max, long *out)
{
    if (len == 0)
        return false;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Copies len bytes into dst (cap bytes, NUL-terminated), decoding %XX. Fails on a bad escape,
 * an encoded NUL or a result that does not fit. */
static bool percent_decode(const char *s, size_t len, char *dst, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return false;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return false;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (w + 1 >= cap)
            return false;
        dst[w++] = c;
    }
    dst[w] = '\0';
    return true;
}

static bool copy_span(const char *s, size_t len, char *dst, size_t cap)
{
    if (len >= cap)
        return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}

/* Parses "[user]:password" (the part before the last '@'). */
static chat_err_t parse_userinfo(const char *s, size_t len, chat_redis_url_t *out)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return url_fail("credentials must be [user]:password");
    size_t user_len = (size_t)(colon - s);
    if (!percent_decode(s, user_len, out->username, sizeof out->username) ||
        !percent_decode(colon + 1, len - user_len - 1, out->password, sizeof out->password))
        return url_fail("bad or too long user name or password");
    return CHAT_OK;
}

/* Parses "host[:port]" or "[v6]:port" (len bytes). */
static chat_err_t parse_hostport(const char *s, size_t len, chat_redis_url_t *out)
{
    const char *end = s + len, *host = s, *host_end, *rest;
    if (len > 0 && s[0] == '[') {
        host = s + 1;
        host_end = memchr(host, ']', len - 1);
        if (host_end == NULL)
            return url_fail("unterminated IPv6 address");
        rest = host_end + 1;
    } else {
        host_end = memchr(s, ':', len);
        if (host_end == NULL)
            host_end = end;
        rest = host_end;
    }
    if (host_end == host)
        return url_fail("empty host");
    if (!copy_span(host, (size_t)(host_end - host), out->host, sizeof out->host))
        return url_fail("host too long");
    if (rest == end)
        return CHAT_OK;
    long port;
    if (*rest != ':' || !parse_decimal(rest + 1, (size_t)(end - rest - 1), 65535, &port) ||
        port == 0)
        return url_fail("port must be 1..65535");
    out->port = (int)port;
    return CHAT_OK;
}

chat_err_t chat_redis__parse_url(const char *url, chat_redis_url_t *out)
{
    memset(out, 0, sizeof *out);
    out->port = REDIS_DEFAULT_PORT;
    if (url == NULL || strncasecmp(url, REDIS_SCHEME, strlen(REDIS_SCHEME)) != 0)
        return url_fail("scheme must be redis://");
    const char *rest = url + strlen(REDIS_SCHEME);
    /* The last '@' ends the credentials: a password may hold '@' or '/', a host or db not. */
    const char *at = strrchr(rest, '@');
    chat_err_t err;
    if (at != NULL) {
        err = parse_userinfo(rest, (size_t)(at - rest), out);
        if (err != CHAT_OK)
            return err;
        rest = at + 1;
    }
    const char *slash = strchr(rest, '/');
    size_t hostport_len = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    err = parse_hostport(rest, hostport_len, out);
    if (err != CHAT_OK)
        return err;
    long db = 0;
    if (slash != NULL && slash[1] != '\0' &&
        !parse_decimal(slash + 1, strlen(slash + 1), INT_MAX, &db))
        return url_fail("db must be a non-negative integer");
    out->db = (int)db;
    return CHAT_OK;
}

/* ---- connection ---- */

/* Runs one set-up command (AUTH, SELECT) on a fresh connection. Returns CHAT_ERR_REDIS
 * (logged with the server's error text, never the arguments) if it failed. */
static chat_err_t redis_setup_command(chat_redis_t *r, redisContext *ctx, int argc,
                                      const char **argv)
{
    redisReply *reply = redisCommandArgv(ctx, argc, argv, NULL);
    const char *error = NULL;
    if (reply == NULL)
        error = ctx->errstr;
    else if (reply->type == REDIS_REPLY_ERROR)
        error = reply->str;
    if (error != NULL)
        chat_log_error("redis connection set-up failed", CHAT_F_STR("command", argv[0]),
                       CHAT_F_STR("host", r->url.host), CHAT_F_INT("port", r->url.port),
                       CHAT_F_STR("error", error));
    if (reply != NULL)
        freeReplyObject(reply);
    return error == NULL ? CHAT_OK : CHAT_ERR_REDIS;
}

bool chat_redis__info_run_id(const char *info, size_t len, char *out)
{
    static const char field[] = "run_id:";
    const size_t flen = sizeof field - 1, idlen = CHAT_REDIS_RUN_ID_MAX - 1;
    out[0] = '\0';
    for (size_t pos = 0; info != NULL && pos < len;) {
        const char *line = info + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t linelen = nl != NULL ? (size_t)(nl - line) : len - pos;
        pos += linelen + 1;
        if (linelen > 0 && line[linelen - 1] == '\r')
            linelen--;
        if (linelen != flen + idlen || memcmp(line, field, flen) != 0)
            continue;
        for (size_t i = 0; i < idlen; i++)
            if (!isxdigit((unsigned char)line[flen + i]))
                return false;
        memcpy(out, line + flen, idlen);
        out[idlen] = '\0';
        return true;
    }
    return false;
}

/* Reads the server's run_id into r->run_id on a fresh connection. An error reply (INFO
 * renamed or refused) leaves it "" with a warning: the connection still works, only what needs
 * the run_id (the recent-history cache) cannot trust the server. CHAT_ERR_REDIS (logged) if
 * the connection failed. */
static chat_err_t redis_read_run_id(chat_redis_t *r, redisContext *ctx)
{
    r->run_id[0] = '\0';
    redisReply *reply = redisCommand(ctx, "INFO server");
    if (reply == NULL) {
        chat_log_error("redis connection set-up failed", CHAT_F_STR("command", "INFO"),
                       CHAT_F_STR("host", r->url.host), CHAT_F_INT("port", r->url.port),
                       CHAT_F_STR("error", ctx->errstr));
        return CHAT_ERR_REDIS;
    }
    bool ok = reply->type == REDIS_REPLY_STRING &&
              chat_redis__info_run_id(reply->str, reply->len, r->run_id);
    if (!ok)
        chat_log_warn("redis server did not tell its run_id (INFO server)",
                      CHAT_F_STR("host", r->url.host), CHAT_F_INT("port", r->url.port),
                      CHAT_F_STR("error", reply->type == REDIS_REPLY_ERROR ? reply->str : ""));
    freeReplyObject(reply);
    return CHAT_OK;
}

/* Connects, sets the command timeout, AUTHs, SELECTs and reads the server's run_id. Returns
 * CHAT_ERR_REDIS (logged) if any step failed; r->ctx is then still NULL. */
static chat_err_t redis_open(chat_redis_t *r)
{
    redisContext *ctx = redisConnectWithTimeout(r->url.host, r->url.port, r->timeout);
    if (ctx == NULL || ctx->err != 0) {
        chat_log_error("redis connect failed", CHAT_F_STR("host", r->url.host),
                       CHAT_F_INT("port", r->url.port),
                       CHAT_F_STR("error", ctx != NULL ? ctx->errstr : "out of memory"));
        if (ctx != NULL)
            redisFree(ctx);
        return CHAT_ERR_REDIS;
    }
    chat_err_t err = CHAT_OK;
    if (redisSetTimeout(ctx, r->timeout) != REDIS_OK) {
        chat_log_error("redis set timeout failed", CHAT_F_STR("error", ctx->errstr));
        err = CHAT_ERR_REDIS;
    }
    if (err == CHAT_OK && r->url.password[0] != '\0') {
        /* AUTH user password (Redis 6 ACL) only when the URL names a user. */
        const char *auth[] = {"AUTH", r->url.username, r->url.password};
        bool with_user = r->url.username[0] != '\0';
        if (!with_user)
            auth[1] = r->url.password;
        err = redis_setup_command(r, ctx, with_user ? 3 : 2, auth);
    }
    if (err == CHAT_OK && r->url.db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        err = redis_setup_command(r, ctx, 2, (const char *[]){"SELECT", db});
    }
    if (err == CHAT_OK)
        err = redis_read_run_id(r, ctx);
    if (err != CHAT_OK) {
        redisFree(ctx);
        return err;
    }
    r->ctx = ctx;
    return CHAT_OK;
}

/* Closes a connection found broken; queued pipeline replies are lost with it. */
static void redis_drop(chat_redis_t *r)
{
    if (r->ctx != NULL)
        redisFree(r->ctx);
    r->ctx = NULL;
    r->pending = 0;
    r->head = 0;
    r->pipeline_start_us = 0;
}

/* Reconnects if a previous failure dropped the connection. */
static chat_err_t redis_ensure_connected(chat_redis_t *r)
{
    if (r->ctx != NULL)
        return CHAT_OK;
    chat_log_warn("redis reconnecting", CHAT_F_STR("host", r->url.host),
                  CHAT_F_INT("port", r->url.port));
    return redis_open(r);
}

chat_err_t chat_redis_connect(const char *url, int timeout_ms, chat_redis_t **out)
{
    if (out == NULL)
        return CHAT_ERR_INVALID;
    *out = NULL;
    if (timeout_ms <= 0)
        return CHAT_ERR_INVALID;
    chat_redis_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = chat_redis__parse_url(url, &r->url);
    if (err == CHAT_OK) {
        r->timeout.tv_sec = timeout_ms / 1000;
        r->timeout.tv_usec = (timeout_ms % 1000) * 1000;
        err = redis_open(r);
    }
    if (err != CHAT_OK) {
        if (err == CHAT_ERR_REDIS)
            redis_metric_error();
        chat_redis_free(r);
        return err;
    }
    *out = r;
    return CHAT_OK;
}

void chat_redis_free(chat_redis_t *r)
{
    if (r == NULL)
        return;
    if (r->ctx != NULL)
        redisFree(r->ctx);
    free(r->names);
    /* The struct holds the password; explicit_bzero is not optimised away before free. */
    explicit_bzero(r, sizeof *r);
    free(r);
}

/* ---- commands ---- */

/* Writes argv[0] of a RESP-formatted command ("*N\r\n$len\r\nNAME\r\n...") into name,
 * shortened and with unprintable bytes replaced, for log lines. */
static void command_name(const char *cmd, size_t len, command_name_t *name)
{
    snprintf(name->s, sizeof name->s, "?");
    const char *end = cmd + len;
    const char *p = memchr(cmd, '\n', len);
    if (p == NULL || ++p >= end || *p != '$')
        return;
    long arg_len = 0;
    for (p++; p < end && isdigit((unsigned char)*p) && arg_len < INT_MAX / 10; p++)
        arg_len = arg_len * 10 + (*p - '0');
    if (p >= end || *p != '\r')
        return;
    p += 2; /* \r\n */
    if (p > end || arg_len > end - p)
        return;
    size_t n = (size_t)arg_len < sizeof name->s - 1 ? (size_t)arg_len : sizeof name->s - 1;
    for (size_t i = 0; i < n; i++)
        name->s[i] = isprint((unsigned char)p[i]) ? p[i] : '?';
    name->s[n] = '\0';
}

/* Passes a reply on, or turns an error reply into NULL + CHAT_ERR_REDIS (logged). */
static redisReply *redis_check_reply(redisReply *reply, const command_name_t *name, chat_err_t *err)
{
    if (reply->type == REDIS_REPLY_ERROR) {
        redis_metric_error();
        chat_log_error("redis error reply", CHAT_F_STR("command", name->s),
                       CHAT_F_STR("error", reply->str));
        freeReplyObject(reply);
        set_err(err, CHAT_ERR_REDIS);
        return NULL;
    }
    set_err(err, CHAT_OK);
    return reply;
}

/* Sends one formatted command and reads its reply. A connection failure reconnects and
 * retries once; a command whose reply was lost may therefore run twice on the server.
 * Returns the reply or NULL with *err set (CHAT_ERR_REDIS, or CHAT_ERR_INVALID while
 * pipelined replies are still unread). */
static redisReply *redis_exec(chat_redis_t *r, chat_err_t *err, const char *cmd, size_t len)
{
    command_name_t name;
    command_name(cmd, len, &name);
    if (r->pending > 0) {
        chat_log_error("redis command while pipeline replies are unread",
                       CHAT_F_STR("command", name.s), CHAT_F_INT("pending", r->pending));
        set_err(err, CHAT_ERR_INVALID);
        return NULL;
    }
    int64_t start = chat_clock_mono_us();
    for (int attempt = 0; attempt < 2; attempt++) {
        if (redis_ensure_connected(r) != CHAT_OK)
            break;
        void *reply = NULL;
        if (redisAppendFormattedCommand(r->ctx, cmd, len) == REDIS_OK &&
            redisGetReply(r->ctx, &reply) == REDIS_OK && reply != NULL) {
            redis_metric_time(start);
            return redis_check_reply(reply, &name, err);
        }
        if (attempt == 0)
            chat_log_warn("redis connection lost", CHAT_F_STR("command", name.s),
                          CHAT_F_STR("error", r->ctx->errstr));
        else
            chat_log_error("redis command failed after reconnect", CHAT_F_STR("command", name.s),
                           CHAT_F_STR("error", r->ctx->errstr));
        redis_drop(r);
    }
    redis_metric_time(start);
    redis_metric_error();
    set_err(err, CHAT_ERR_REDIS);
    return NULL;
}

redisReply *chat_redis_command(chat_redis_t *r, chat_err_t *err, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        chat_log_error("redis command format failed");
        set_err(err, CHAT_ERR_INVALID);
        return NULL;
    }
    redisReply *reply = redis_exec(r, err, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return reply;
}

redisReply *chat_redis_command_argv(chat_redis_t *r, chat_err_t *err, int argc, const char **argv,
                                    const size_t *argvlen)
{
    char *cmd = NULL;
    int len = argc > 0 && argv != NULL ? redisFormatCommandArgv(&cmd, argc, argv, argvlen) : -1;
    if (len < 0) {
        set_err(err, CHAT_ERR_INVALID);
        return NULL;
    }
    redisReply *reply = redis_exec(r, err, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return reply;
}

/* ---- pipelining ---- */

/* Makes room for one more name at the tail of the pending run. */
static bool names_reserve(chat_redis_t *r)
{
    if (r->head + r->pending < r->names_cap)
        return true;
    if (r->head > 0) {
        memmove(r->names, r->names + r->head, r->pending * sizeof *r->names);
        r->head = 0;
        return true;
    }
    command_name_t *names =
        chat_array_grow(r->names, &r->names_cap, r->names_cap + 1, sizeof *names);
    if (names == NULL)
        return false;
    r->names = names;
    return true;
}

/* Queues a formatted command. Only buffers: the connection is used by chat_redis_reply. */
static chat_err_t redis_queue(chat_redis_t *r, const char *cmd, size_t len)
{
    if (r->pending == 0 && redis_ensure_connected(r) != CHAT_OK) {
        redis_metric_error();
        return CHAT_ERR_REDIS;
    }
    if (!names_reserve(r) || redisAppendFormattedCommand(r->ctx, cmd, len) != REDIS_OK)
        return CHAT_ERR_NOMEM;
    command_name(cmd, len, &r->names[r->head + r->pending]);
    r->pending++;
    return CHAT_OK;
}

chat_err_t chat_redis_append(chat_redis_t *r, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0) {
        chat_log_error("redis command format failed");
        return CHAT_ERR_INVALID;
    }
    chat_err_t err = redis_queue(r, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return err;
}

chat_err_t chat_redis_append_argv(chat_redis_t *r, int argc, const char **argv,
                                  const size_t *argvlen)
{
    char *cmd = NULL;
    int len = argc > 0 && argv != NULL ? redisFormatCommandArgv(&cmd, argc, argv, argvlen) : -1;
    if (len < 0)
        return CHAT_ERR_INVALID;
    chat_err_t err = redis_queue(r, cmd, (size_t)len);
    redisFreeCommand(cmd);
    return err;
}

/* Reads the next pipelined reply. Returns CHAT_OK with *out set, CHAT_ERR_REDIS for an error
 * reply (the pipeline continues) or a lost connection (the rest of the pipeline is gone and
 * every later call fails until new commands are queued), CHAT_ERR_INVALID if nothing was
 * queued. */
chat_err_t chat_redis_reply(chat_redis_t *r, redisReply **out)
{
    *out = NULL;
    if (r->pending == 0) {
        if (r->ctx == NULL)
            return CHAT_ERR_REDIS;
        chat_log_error("redis reply read without a queued command");
        return CHAT_ERR_INVALID;
    }
    command_name_t name = r->names[r->head];
    void *reply = NULL;
    /* The pipeline's round trip starts when its first reply is read, which sends the queued
     * commands, and ends with its last reply. */
    if (r->pipeline_start_us == 0)
        r->pipeline_start_us = chat_clock_mono_us();
    if (redisGetReply(r->ctx, &reply) != REDIS_OK || reply == NULL) {
        chat_log_error("redis pipeline failed", CHAT_F_STR("command", name.s),
                       CHAT_F_INT("lost_replies", r->pending), CHAT_F_STR("error", r->ctx->errstr));
        redis_metric_time(r->pipeline_start_us);
        redis_metric_error();
        redis_drop(r);
        return CHAT_ERR_REDIS;
    }
    r->head++;
    if (--r->pending == 0) {
        r->head = 0;
        redis_metric_time(r->pipeline_start_us);
        r->pipeline_start_us = 0;
    }
    chat_err_t err;
    *out = redis_check_reply(reply, &name, &err);
    return err;
}

chat_err_t chat_redis_run_id(chat_redis_t *r, const char **run_id)
{
    *run_id = "";
    chat_err_t err = redis_ensure_connected(r);
    if (err == CHAT_OK)
        *run_id = r->run_id;
    return err;
}

chat_err_t chat_redis_ping(chat_redis_t *r)
{
    chat_err_t err;
    redisReply *reply = chat_redis_command(r, &err, "PING");
    if (reply == NULL)
        return err;
    bool pong = reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
    freeReplyObject(reply);
    return pong ? CHAT_OK : CHAT_ERR_REDIS;
}
