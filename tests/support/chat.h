/* Integration-test helpers on top of tools/client: the stack's gateways and demo tenant,
 * extra tenants, tokens, and test clients (chat_tc_t) that connect, authenticate, join,
 * send and fetch history, waiting for the frames they expect while keeping the others in
 * arrival order for later waits. Helpers that cannot do their job fail the running Check
 * test (ck_assert), so tests read as the scenario they check. Single-threaded use. */
#ifndef CHAT_TESTS_SUPPORT_CHAT_H
#define CHAT_TESTS_SUPPORT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "tools/client/ws_client.h"

#define CHAT_TC_TIMEOUT_MS 10000 /* default wait for an answer of the stack */

/* ---- the stack (loads CHAT_STACK_ENV on first use) ---- */

/* Number of URLs in CHAT_GATEWAY_URLS; fails the test if there is none. */
size_t chat_test_gateway_count(void);
/* The i-th gateway URL (static storage); fails the test if i is out of range. */
const char *chat_test_gateway_url(size_t i);
/* CHAT_DEMO_TENANT and CHAT_DEMO_SECRET of the stack. */
const char *chat_test_demo_tenant(void);
const char *chat_test_demo_secret(void);

/* Runs argv[0] with argv (NULL-terminated) and the test's environment (chat_test_spawn) and
 * waits for it; returns its exit status (128 + signal if killed; 127 if it could not be
 * executed; -1 if it was lost). Output goes to the test's stdout/stderr. */
int chat_test_run(const char *const argv[]);

/* Creates a tenant with a fresh id and secret through `chat-admin tenant put` (from
 * CHAT_BUILD_DIR) and writes them into id/secret. */
void chat_test_tenant_create(char *id, size_t id_len, char *secret, size_t secret_len);

/* ---- faults (tests that kill and restart parts of the shared stack) ---- */

/* Parts of the stack are named as scripts/up names them: "redis", "ferretdb", "kafka",
 * "message", "broadcast", "gateway-0", "gateway-1", ... */

/* Pid of part, from its pid file in CHAT_STACK_PIDS (stack.env); -1 if absent or dead (a
 * zombie counts as dead). */
int chat_test_service_pid(const char *part);
/* kill -9 of part, waiting until the process is gone. Fails the test if it does not run. */
void chat_test_service_kill9(const char *part);
/* Runs scripts/up --no-build on the stack's state dir (it starts only what is not
 * running), once killed services are reaped (up to 10 s); fails the test if it exits
 * non-zero. */
void chat_test_stack_up(void);
/* Polls http://127.0.0.1:port/readyz until it answers 200; false after timeout_ms. */
bool chat_test_wait_ready(int port, int timeout_ms);
/* Ops ports of message, broadcast and gateway i, from CHAT_OPS_MESSAGE, CHAT_OPS_BROADCAST
 * and CHAT_OPS_GATEWAYS of stack.env (the port layout is scripts/up's alone). Fail the test if
 * stack.env has no such URL (a stack started with --infra-only, or fewer gateways). */
int chat_test_ops_port_message(void);
int chat_test_ops_port_broadcast(void);
int chat_test_ops_port_gateway(size_t i);

/* ---- tokens ---- */

/* A token for user of tenant; rooms as in chat_token_spec_t (NULL: no claim); ttl_s
 * negative for an expired one. malloc'd; fails the test if minting fails. */
char *chat_test_token(const char *tenant, const char *secret, const char *user, const char *rooms,
                      int64_t ttl_s);

/* ---- test clients ---- */

typedef struct chat_tc chat_tc_t;

/* Connects to url without authenticating. Fails the test if the connection fails. */
chat_tc_t *chat_tc_open(const char *url);
/* Connects and authenticates with token; waits for welcome. */
chat_tc_t *chat_tc_connect_token(const char *url, const char *token);
/* Connects and authenticates as user of tenant (token minted with secret and the rooms
 * claim rooms, NULL for none). */
chat_tc_t *chat_tc_connect(const char *url, const char *tenant, const char *secret,
                           const char *user, const char *rooms);
/* chat_tc_connect to gateway gw, dropping presence frames (chat_tc_ignore): for tests that
 * wait for other frames and do not want other users' comings and goings in between. */
chat_tc_t *chat_tc_connect_user(size_t gw, const char *tenant, const char *secret, const char *user,
                                const char *rooms);
/* chat_tc_connect_user as user of the stack's demo tenant, without a rooms claim. */
chat_tc_t *chat_tc_connect_demo(size_t gw, const char *user);
/* Drops the TCP connection without a close frame (a crash) and frees. Accepts NULL. */
void chat_tc_free(chat_tc_t *c);
/* Close handshake (code 1000), then frees. Accepts NULL. */
void chat_tc_close(chat_tc_t *c);

/* welcome.session, welcome.user and welcome.tenant of this connection ("" before welcome;
 * the user is "(anonymous)" then). */
const char *chat_tc_session(const chat_tc_t *c);
const char *chat_tc_user(const chat_tc_t *c);
const char *chat_tc_tenant(const chat_tc_t *c);
/* The underlying WebSocket, for raw frames. */
chat_ws_t *chat_tc_ws(chat_tc_t *c);

/* Frames per second a test client sends at most (chat_tc_set_rate); under the gateway's
 * default limit (20/s, burst 40) so that only tests that mean to see rate_limited do. */
#define CHAT_TC_DEFAULT_RATE 18.0

/* Paces this client's frames to at most per_sec (0: no pacing, for flood tests). */
void chat_tc_set_rate(chat_tc_t *c, double per_sec);
/* Sleeps until the pacing allows the next frame (the send functions call it themselves;
 * call it first to keep the wait out of a latency measurement). */
void chat_tc_pace(chat_tc_t *c);

/* Sends text as one text frame; fails the test if the socket fails. */
void chat_tc_send_text(chat_tc_t *c, const char *text);
/* Same; returns false instead of failing (for tests where the server may hang up). */
bool chat_tc_try_send_text(chat_tc_t *c, const char *text);
/* Frees frame after sending it (a builder's result from client_frames.h). */
void chat_tc_send_frame(chat_tc_t *c, char *frame);

/* Drops incoming frames of type from now on (e.g. "presence", "typing"). */
void chat_tc_ignore(chat_tc_t *c, const char *type);

/* The next frame of type (NULL: any type) whose string field key equals value (key NULL:
 * no condition), waiting up to timeout_ms; queued frames are searched first, other frames
 * that arrive meanwhile are queued. Returns the frame (caller: cJSON_Delete) or NULL on
 * timeout or when the connection ended (see chat_tc_closed). */
cJSON *chat_tc_wait_for(chat_tc_t *c, const char *type, const char *key, const char *value,
                        int timeout_ms);
/* chat_tc_wait_for without a field condition. */
cJSON *chat_tc_wait(chat_tc_t *c, const char *type, int timeout_ms);
/* chat_tc_wait that fails the test on timeout. */
cJSON *chat_tc_expect(chat_tc_t *c, const char *type, int timeout_ms);
/* Number of queued frames of type (NULL: all), and dropping them. */
size_t chat_tc_queued(const chat_tc_t *c, const char *type);
size_t chat_tc_drop(chat_tc_t *c, const char *type);

/* Waits up to timeout_ms for the connection to end. Returns the close code (1006 if the
 * TCP connection ended without a close frame) or -1 on timeout. Frames before the close are
 * queued. reason (may be NULL) gets the close reason. */
int chat_tc_wait_close(chat_tc_t *c, int timeout_ms, char *reason, size_t reason_len);
/* True once the connection ended; the close code, or 0 while open. */
bool chat_tc_closed(const chat_tc_t *c);
int chat_tc_close_code(const chat_tc_t *c);

/* Joins room (since < 0: without since) and returns the joined frame (caller frees);
 * fails the test on an error or timeout. The replayed msg frames follow in the queue. */
cJSON *chat_tc_join(chat_tc_t *c, const char *room, int64_t since);
/* Sends text to room with cid and returns the ack's seq; fails the test on an error frame
 * for cid or no ack within CHAT_TC_TIMEOUT_MS. */
int64_t chat_tc_send(chat_tc_t *c, const char *room, const char *cid, const char *text);
/* Waits up to timeout_ms for the ack or the error about cid; returns that frame (caller
 * frees) or NULL on timeout or a lost connection. */
cJSON *chat_tc_wait_ack(chat_tc_t *c, const char *cid, int timeout_ms);
/* The ack of cid; fails the test (showing the error frame, if any) unless it arrives
 * within timeout_ms. */
cJSON *chat_tc_expect_ack(chat_tc_t *c, const char *cid, int timeout_ms);
/* Sends and waits up to timeout_ms for the ack or error about cid; returns that frame
 * (caller frees) or NULL on timeout or a lost connection. */
cJSON *chat_tc_send_wait(chat_tc_t *c, const char *room, const char *cid, const char *text,
                         int timeout_ms);
/* The text of message i (from 0) of chat_tc_fill_room, written into buf (len bytes). */
typedef void (*chat_tc_text_fn)(size_t i, char *buf, size_t len, void *ud);

/* Sends n messages to room from a new user of the demo tenant over nconn connections to
 * gateway gw (each paced under the rate limit, so that together they fill a room nconn times
 * faster), the text of each from text(i, ..., ud), and waits for every ack: then every one is
 * stored and published. seqs (may be NULL; n entries) gets message i's seq. Fails the test if
 * an ack does not come. */
void chat_tc_fill_room(size_t gw, const char *room, size_t n, size_t nconn, chat_tc_text_fn text,
                       void *ud, int64_t *seqs);

/* history (before/limit <= 0: left out) and returns the history frame (caller frees);
 * fails the test on an error or timeout. */
cJSON *chat_tc_history(chat_tc_t *c, const char *room, int64_t before, int64_t limit);
/* Sends frame text carrying rid and returns the first frame with that rid (history, error,
 * pong, ...) within timeout_ms, or NULL. */
cJSON *chat_tc_request(chat_tc_t *c, const char *frame, const char *rid, int timeout_ms);
/* chat_tc_request of a frame a client_frames.h builder made (freed here) that must be answered:
 * the answer about rid (caller frees); fails the test if none comes within CHAT_TC_TIMEOUT_MS. */
cJSON *chat_tc_ask(chat_tc_t *c, char *frame, const char *rid);

/* A message a test sent: its id and seq from the ack. */
typedef struct chat_tc_sent {
    char id[32];
    int64_t seq;
} chat_tc_sent_t;

/* Sends text to room with cid and waits for its ack (fails the test without one). */
chat_tc_sent_t chat_tc_post(chat_tc_t *c, const char *room, const char *cid, const char *text);

/* Collects the next n msg frames of room (timeout for each) into seqs (may be NULL);
 * returns how many arrived. */
size_t chat_tc_collect_msgs(chat_tc_t *c, const char *room, size_t n, int64_t *seqs,
                            int timeout_ms);

/* ---- JSON access ---- */

/* Integer field key of o, or -1 if absent or not a number. */
int64_t chat_json_int(const cJSON *o, const char *key);
/* String field key of o, or NULL. */
const char *chat_json_str(const cJSON *o, const char *key);
/* True if o is a frame of type. */
bool chat_json_is(const cJSON *o, const char *type);

#endif
