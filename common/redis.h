/* Redis for every service: a hiredis connection with timeouts, a reconnect on a lost
 * connection, URL parsing (redis://[:password@]host:port[/db]) and pipelining.
 * A chat_redis_t is used by one thread at a time. */
#ifndef CHAT_COMMON_REDIS_H
#define CHAT_COMMON_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "common/err.h"
#include "common/metrics.h"

typedef struct chat_redis chat_redis_t;

/* Times every Redis round trip of every connection of the process from now on:
 * chat_redis_op_seconds (one command, or one pipeline from its first reply read to its last)
 * and chat_redis_errors_total (a failed connect, a lost connection, an error reply), both
 * registered now. Process-wide because the connections are opened by many modules and
 * threads; call it once at start-up with the registry /metrics renders, which must outlive
 * the connections. NULL stops the timing. CHAT_ERR_NOMEM if a series could not be made. */
chat_err_t chat_redis_metrics_attach(chat_metrics_t *m);

/* Connects (and AUTH/SELECTs as the URL says) within timeout_ms, which also becomes the
 * command timeout. Returns CHAT_ERR_CONFIG for a bad URL, CHAT_ERR_REDIS (logged) if the
 * server cannot be reached. */
chat_err_t chat_redis_connect(const char *url, int timeout_ms, chat_redis_t **out);

/* Closes and frees. Accepts NULL. */
void chat_redis_free(chat_redis_t *r);

/* Runs one command (hiredis format: "SADD %s %s"). If the connection was lost it
 * reconnects once and retries. Returns the reply (free with freeReplyObject) or NULL with
 * *err set: CHAT_ERR_REDIS for an error reply or a connection failure (logged).
 * err may be NULL. */
redisReply *chat_redis_command(chat_redis_t *r, chat_err_t *err, const char *fmt, ...);

/* The same with argument vectors (binary-safe). */
redisReply *chat_redis_command_argv(chat_redis_t *r, chat_err_t *err, int argc, const char **argv,
                                    const size_t *argvlen);

/* Pipelining: queue commands with chat_redis_append*, then read exactly as many replies
 * with chat_redis_reply, in order. A lost connection fails the whole pipeline
 * (CHAT_ERR_REDIS); the next call reconnects. */
chat_err_t chat_redis_append(chat_redis_t *r, const char *fmt, ...);
chat_err_t chat_redis_append_argv(chat_redis_t *r, int argc, const char **argv,
                                  const size_t *argvlen);
chat_err_t chat_redis_reply(chat_redis_t *r, redisReply **out);

/* The run_id of the server this connection talks to (INFO server, read once per (re)connect):
 * 40 hex digits, different after every restart of the server and on another server (a
 * failover). "" if the server did not tell (INFO refused): then nothing can be vouched for by
 * it. Reconnects first if the connection was lost, so that the run_id is the one of the
 * server the next commands go to; CHAT_ERR_REDIS (logged) if that fails. *run_id lives until
 * the next call on r. Not while pipelined replies are unread after a lost connection. */
chat_err_t chat_redis_run_id(chat_redis_t *r, const char **run_id);

/* PING; CHAT_OK if the answer is PONG. */
chat_err_t chat_redis_ping(chat_redis_t *r);

#endif
