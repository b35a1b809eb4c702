/* Process lifecycle shared by the services: SIGTERM and SIGINT request a clean stop (the
 * main loop notices, flushes producers, commits offsets and exits 0); SIGHUP requests a
 * reload of what a service can reload (the TLS certificates of the gateway and the api;
 * the others ignore it); SIGPIPE is ignored so a closed socket is an error return, not a
 * death. */
#ifndef CHAT_COMMON_SIGNALS_H
#define CHAT_COMMON_SIGNALS_H

#include <stdbool.h>
#include <stdint.h>

/* Installs the handlers. Call once from main before starting threads. */
void chat_signals_install(void);

/* True once a stop was requested by a signal or chat_signals_request_stop. */
bool chat_signals_stop_requested(void);

/* Requests a stop from inside the process (e.g. on a fatal error in a worker thread). */
void chat_signals_request_stop(void);

/* Sleeps up to ms (a retry's backoff), returning early once a stop is requested. Returns
 * true if a stop was requested (before or during the wait). */
bool chat_signals_wait_stop(int64_t ms);

/* Requests a reload from inside the process (the gateway's libuv loop receives SIGHUP). */
void chat_signals_request_reload(void);

/* True once per reload requested since the last call (several SIGHUPs in between: one). */
bool chat_signals_take_reload(void);

/* A file descriptor that becomes readable when a stop is requested, for poll loops. */
int chat_signals_stop_fd(void);

#endif
