/* Unit tests of services/gateway/session: the per-connection state machine with a fake
 * environment and clock: auth first (and its timeout, refusal, store failure), token
 * refresh (claims replaced, refusals that keep the connection, one at a time), frame
 * assembly and the size limit, the token bucket and close 4008, errors that keep the
 * connection open, access rules, join (pending -> replay -> held deliveries), leave, send,
 * history, and the bounded write queue (close 1008). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/room_list_page.h"
#include "services/gateway/session.h"
#include "tests/support/util.h"

#define MAX_FRAME 256
#define SEND_QUEUE 16

/* ---- fake environment ---- */

typedef struct fake {
    int want_writes;
    bool paused;
    int auth_calls;
    char token[128];
    bool refuse_jobs; /* submit_join/submit_history fail as if out of memory */
    int join_calls;
    gw_join_req_t join;
    char join_room[64], join_rid[64];
    int history_calls;
    gw_history_req_t history;
    int sends;
    chat_err_t send_rc;
    char send_room[64], send_cid[64], send_text[64];
    int releases;
    bool last_room_empty;
    int frames[GW_C__COUNT];
    int errors[GW_E__COUNT];
    int slow_closes;
    int auth_overloads;
    size_t drops;
    int typings, typing_throttled;
    char typing_room[64];
    int reads;
    int updates;
    char read_room[64], read_rid[64];
    int64_t read_seq;
    int rooms_calls;
    gw_rooms_req_t rooms;
    char rooms_cursor[64];
    int leaves;
    char leave_room[64];
    int refresh_calls;
    char refresh_token[128];
    int refreshes[GW_REFRESH__COUNT];
    /* set: submit_refresh answers at once with these (as a cached tenant secret does) */
    chat_jwt_claims_t *refresh_now;
    int sent[GW_S__COUNT];
    int connects[GW_CONNECT__COUNT];
    int expiry_calls;
    int64_t expiry_s; /* the last exp handed to ops.expiry */
} fake_t;

static fake_t fake;
static int64_t now_us;

static int64_t fake_now(void)
{
    return now_us;
}

static void op_want_write(void *ud, gw_session_t *s)
{
    (void)ud;
    (void)s;
    fake.want_writes++;
}

static void op_rx_pause(void *ud, gw_session_t *s, bool pause)
{
    (void)ud;
    (void)s;
    fake.paused = pause;
}

static void op_submit_auth(void *ud, gw_session_t *s, const char *token)
{
    (void)ud;
    (void)s;
    fake.auth_calls++;
    snprintf(fake.token, sizeof fake.token, "%s", token);
}

static void op_submit_refresh(void *ud, gw_session_t *s, const char *token)
{
    (void)ud;
    fake.refresh_calls++;
    snprintf(fake.refresh_token, sizeof fake.refresh_token, "%s", token);
    if (fake.refresh_now != NULL)
        gw_session_refresh_done(s, CHAT_OK, fake.refresh_now, NULL);
}

static void op_count_refresh(void *ud, gw_refresh_result_t result)
{
    (void)ud;
    ck_assert_int_lt(result, GW_REFRESH__COUNT);
    fake.refreshes[result]++;
}

static chat_err_t op_submit_join(void *ud, const gw_join_req_t *req)
{
    (void)ud;
    if (fake.refuse_jobs)
        return CHAT_ERR_NOMEM;
    fake.join_calls++;
    fake.join = *req;
    snprintf(fake.join_room, sizeof fake.join_room, "%s", req->room);
    snprintf(fake.join_rid, sizeof fake.join_rid, "%s", req->rid ? req->rid : "");
    return CHAT_OK;
}

static chat_err_t op_submit_history(void *ud, const gw_history_req_t *req)
{
    (void)ud;
    if (fake.refuse_jobs)
        return CHAT_ERR_NOMEM;
    fake.history_calls++;
    fake.history = *req;
    return CHAT_OK;
}

static chat_err_t op_send(void *ud, gw_session_t *s, const char *room, const char *cid,
                          const char *text)
{
    (void)ud;
    (void)s;
    fake.sends++;
    snprintf(fake.send_room, sizeof fake.send_room, "%s", room);
    snprintf(fake.send_cid, sizeof fake.send_cid, "%s", cid);
    snprintf(fake.send_text, sizeof fake.send_text, "%s", text);
    return fake.send_rc;
}

static void op_typing(void *ud, gw_session_t *s, const char *room)
{
    (void)ud;
    (void)s;
    fake.typings++;
    snprintf(fake.typing_room, sizeof fake.typing_room, "%s", room);
}

static void op_count_typing_throttled(void *ud)
{
    (void)ud;
    fake.typing_throttled++;
}

static chat_err_t op_update(void *ud, gw_session_t *s, const gw_cframe_t *f)
{
    (void)ud;
    (void)s;
    (void)f;
    fake.updates++;
    return CHAT_OK;
}

static chat_err_t op_send_read(void *ud, gw_session_t *s, const char *room, int64_t seq,
                               const char *rid)
{
    (void)ud;
    (void)s;
    fake.reads++;
    fake.read_seq = seq;
    snprintf(fake.read_room, sizeof fake.read_room, "%s", room);
    snprintf(fake.read_rid, sizeof fake.read_rid, "%s", rid != NULL ? rid : "");
    return CHAT_OK;
}

static chat_err_t op_submit_rooms(void *ud, const gw_rooms_req_t *req)
{
    (void)ud;
    if (fake.refuse_jobs)
        return CHAT_ERR_NOMEM;
    fake.rooms_calls++;
    fake.rooms = *req;
    snprintf(fake.rooms_cursor, sizeof fake.rooms_cursor, "%s",
             req->cursor != NULL ? req->cursor : "");
    return CHAT_OK;
}

static void op_note_leave(void *ud, const char *tenant, const char *room, const char *user)
{
    (void)ud;
    (void)tenant;
    (void)user;
    fake.leaves++;
    snprintf(fake.leave_room, sizeof fake.leave_room, "%s", room);
}

static void op_count_frame(void *ud, gw_ctype_t type)
{
    (void)ud;
    fake.frames[type]++;
}

static void op_count_error(void *ud, gw_code_t code)
{
    (void)ud;
    fake.errors[code]++;
}

static void op_count_slow_close(void *ud)
{
    (void)ud;
    fake.slow_closes++;
}

static void op_count_auth_overload(void *ud)
{
    (void)ud;
    fake.auth_overloads++;
}

static void op_count_drops(void *ud, size_t n)
{
    (void)ud;
    fake.drops += n;
}

static void op_count_sent(void *ud, const gw_buf_t *buf)
{
    (void)ud;
    fake.sent[buf->stype]++;
}

static void op_count_connect(void *ud, gw_connect_result_t result)
{
    (void)ud;
    fake.connects[result]++;
}

static void op_expiry(void *ud, gw_session_t *s, int64_t exp_s)
{
    (void)ud;
    (void)s;
    fake.expiry_calls++;
    fake.expiry_s = exp_s;
}

static const gw_session_ops_t ops = {
    .want_write = op_want_write,
    .rx_pause = op_rx_pause,
    .submit_auth = op_submit_auth,
    .submit_refresh = op_submit_refresh,
    .submit_join = op_submit_join,
    .submit_history = op_submit_history,
    .send = op_send,
    .typing = op_typing,
    .count_typing_throttled = op_count_typing_throttled,
    .update = op_update,
    .send_read = op_send_read,
    .submit_rooms = op_submit_rooms,
    .note_leave = op_note_leave,
    .count_frame = op_count_frame,
    .count_error = op_count_error,
    .count_slow_close = op_count_slow_close,
    .count_auth_overload = op_count_auth_overload,
    .count_refresh = op_count_refresh,
    .count_drops = op_count_drops,
    .count_sent = op_count_sent,
    .count_connect = op_count_connect,
    .expiry = op_expiry,
};

/* The room table hands deliveries to sessions, as server.c wires it. */
static void sink_deliver(void *ud, void *owner, gw_buf_t *buf, int64_t seq)
{
    (void)ud;
    (void)seq;
    gw_session_enqueue(owner, buf);
}

static void sink_overflow(void *ud, void *owner)
{
    (void)ud;
    gw_session_close(owner, GW_CLOSE_POLICY, "too slow", false);
}

static void sink_released(void *ud, const char *tenant, const char *room, const char *user,
                          bool room_empty, bool user_gone)
{
    (void)ud;
    (void)tenant;
    (void)room;
    (void)user;
    (void)user_gone;
    fake.releases++;
    fake.last_room_empty = room_empty;
}

static gw_session_env_t env;
static gw_session_t *sess;

static void setup(void)
{
    memset(&fake, 0, sizeof fake);
    now_us = 1000000;
    gw_rooms_sink_t sink = {sink_deliver, sink_overflow, sink_released, NULL};
    env = (gw_session_env_t){
        .limits = {.max_frame_bytes = MAX_FRAME,
                   .max_text_chars = 10,
                   .send_queue = SEND_QUEUE,
                   .rate_per_sec = 2,
                   .rate_burst = 3,
                   .rate_close_after = 3,
                   .history_default = 50,
                   .auth_timeout_s = 10,
                   .typing_interval_us = 2000000},
        .ops = &ops,
        .rooms = gw_rooms_new(SEND_QUEUE, &sink),
        .now_us = fake_now,
    };
    sess = gw_session_new(&env, "0.abc.1", NULL);
    ck_assert_ptr_nonnull(sess);
}

static void teardown(void)
{
    gw_session_free(sess);
    gw_rooms_free(env.rooms);
}

/* ---- helpers ---- */

static gw_rx_result_t rx(const char *text)
{
    return gw_session_rx(sess, text, strlen(text), false, true, 0);
}

/* Pops the next queued frame as JSON (caller deletes), or NULL if none. *closed tells
 * whether the session then asks to close. */
static cJSON *next_frame(bool *closed)
{
    gw_buf_t *b = NULL;
    gw_write_t w = gw_session_next_write(sess, &b);
    if (closed != NULL)
        *closed = w == GW_WRITE_CLOSE;
    if (w != GW_WRITE_FRAME)
        return NULL;
    cJSON *o = cJSON_ParseWithLength((const char *)gw_buf_payload(b), b->len);
    gw_buf_unref(b);
    ck_assert_ptr_nonnull(o);
    return o;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Asserts the next frame has the given type (and code/rid/cid if not NULL). */
static void expect(const char *type, const char *code, const char *rid, const char *cid)
{
    cJSON *o = next_frame(NULL);
    ck_assert_msg(o != NULL, "expected %s, queue empty", type);
    ck_assert_str_eq(str_of(o, "type"), type);
    if (code != NULL)
        ck_assert_str_eq(str_of(o, "code"), code);
    if (rid != NULL)
        ck_assert_str_eq(str_of(o, "rid"), rid);
    if (cid != NULL)
        ck_assert_str_eq(str_of(o, "cid"), cid);
    cJSON_Delete(o);
}

static void expect_msg_seq(int64_t seq)
{
    cJSON *o = next_frame(NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(str_of(o, "type"), "msg");
    ck_assert_int_eq((int64_t)cJSON_GetObjectItem(o, "seq")->valuedouble, seq);
    cJSON_Delete(o);
}

static void expect_empty(void)
{
    bool closed;
    cJSON *o = next_frame(&closed);
    ck_assert_msg(o == NULL, "unexpected frame %s", o ? str_of(o, "type") : "");
    ck_assert(!closed);
}

static void expect_close(int code)
{
    bool closed;
    cJSON *o = next_frame(&closed);
    ck_assert_msg(o == NULL, "unexpected frame %s before close", o ? str_of(o, "type") : "");
    ck_assert(closed);
    ck_assert_int_eq(gw_session_close_code(sess), code);
}

/* Claims as chat_jwt_verify fills them; rooms is NULL for "no rooms claim". */
static chat_jwt_claims_t claims_make(const char *tenant, const char *user, const char *const *rooms,
                                     size_t n)
{
    chat_jwt_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf(c.user, sizeof c.user, "%s", user);
    c.exp = 2000000000;
    if (rooms != NULL) {
        c.has_rooms = true;
        c.nrooms = n;
        c.rooms = calloc(n, sizeof *c.rooms);
        for (size_t i = 0; i < n; i++)
            c.rooms[i] = strdup(rooms[i]);
    }
    return c;
}

static void authenticate_as(const char *user, const char *const *rooms, size_t n)
{
    ck_assert_int_eq(rx("{\"type\":\"auth\",\"token\":\"x.y.z\",\"rid\":\"a1\"}"), GW_RX_CONTINUE);
    chat_jwt_claims_t c = claims_make("acme", user, rooms, n);
    gw_session_auth_done(sess, CHAT_OK, &c, NULL);
    chat_jwt_claims_clear(&c);
    expect("welcome", NULL, "a1", NULL);
}

static void authenticate(void)
{
    authenticate_as("alice", NULL, 0);
}

/* A msg frame buffer with seq. */
static gw_buf_t *msg_buf(int64_t seq)
{
    char text[128];
    snprintf(
        text, sizeof text,
        "{\"type\":\"msg\",\"room\":\"general\",\"seq\":%lld,\"id\":\"65f1c0ffee0123456789abcd\","
        "\"from\":\"bob\",\"text\":\"hi\",\"ts\":1}",
        (long long)seq);
    return gw_buf_new(text, strlen(text));
}

static void deliver_live(int64_t seq)
{
    gw_buf_t *b = msg_buf(seq);
    gw_rooms_deliver(env.rooms, "acme", "general", b, seq);
    gw_buf_unref(b);
}

/* ---- auth ---- */

START_TEST(test_first_frame_must_be_auth)
{
    ck_assert_int_eq(rx("{\"type\":\"ping\"}"), GW_RX_CONTINUE);
    ck_assert(gw_session_closing(sess));
    expect("error", "unauthorized", NULL, NULL);
    expect_close(GW_CLOSE_UNAUTHORIZED);
    /* Input after the close request is ignored. */
    ck_assert_int_eq(rx("{\"type\":\"auth\",\"token\":\"a\"}"), GW_RX_CONTINUE);
    ck_assert_int_eq(fake.auth_calls, 0);
}
END_TEST

START_TEST(test_first_frame_garbage_or_binary)
{
    rx("hello");
    expect("error", "unauthorized", NULL, NULL);
    expect_close(GW_CLOSE_UNAUTHORIZED);
    gw_session_free(sess);
    sess = gw_session_new(&env, "0.abc.2", NULL);
    gw_session_rx(sess, "\x01\x02", 2, true, true, 0);
    expect("error", "unauthorized", NULL, NULL);
    expect_close(GW_CLOSE_UNAUTHORIZED);
}
END_TEST

START_TEST(test_malformed_auth)
{
    rx("{\"type\":\"auth\",\"token\":\"a\",\"user\":\"x\"}");
    expect("error", "unauthorized", NULL, NULL);
    expect_close(GW_CLOSE_UNAUTHORIZED);
    ck_assert_int_eq(fake.auth_calls, 0);
}
END_TEST

START_TEST(test_auth_success)
{
    rx("{\"type\":\"auth\",\"token\":\"hdr.body.sig\"}");
    ck_assert_int_eq(gw_session_state(sess), GW_SESS_AUTHENTICATING);
    ck_assert_int_eq(fake.auth_calls, 1);
    ck_assert_str_eq(fake.token, "hdr.body.sig");
    ck_assert(fake.paused);
    expect_empty();
    chat_jwt_claims_t c = claims_make("acme", "alice", NULL, 0);
    snprintf(c.name, sizeof c.name, "Alice");
    gw_session_auth_done(sess, CHAT_OK, &c, NULL);
    ck_assert_str_eq(c.user, ""); /* moved into the session */
    ck_assert(!fake.paused);
    ck_assert_int_eq(gw_session_state(sess), GW_SESS_READY);
    ck_assert_str_eq(gw_session_tenant(sess), "acme");
    ck_assert_str_eq(gw_session_user(sess), "alice");
    ck_assert_str_eq(gw_session_name(sess), "Alice");
    cJSON *w = next_frame(NULL);
    ck_assert_str_eq(str_of(w, "type"), "welcome");
    ck_assert_str_eq(str_of(w, "user"), "alice");
    ck_assert_str_eq(str_of(w, "tenant"), "acme");
    ck_assert_str_eq(str_of(w, "session"), "0.abc.1");
    ck_assert_ptr_null(str_of(w, "rid"));
    cJSON_Delete(w);
    ck_assert_int_eq(fake.frames[GW_C_AUTH], 1);
}
END_TEST

START_TEST(test_auth_refused_and_store_failure)
{
    rx("{\"type\":\"auth\",\"token\":\"t\"}");
    gw_session_auth_done(sess, CHAT_ERR_UNAUTHORIZED, NULL, "expired");
    cJSON *e = next_frame(NULL);
    ck_assert_str_eq(str_of(e, "code"), "unauthorized");
    ck_assert_str_eq(str_of(e, "message"), "expired");
    cJSON_Delete(e);
    expect_close(GW_CLOSE_UNAUTHORIZED);

    gw_session_free(sess);
    sess = gw_session_new(&env, "0.abc.2", NULL);
    rx("{\"type\":\"auth\",\"token\":\"t\"}");
    gw_session_auth_done(sess, CHAT_ERR_MONGO, NULL, "tenant lookup failed");
    expect("error", "internal", NULL, NULL);
    expect_close(GW_CLOSE_INTERNAL);
}
END_TEST

START_TEST(test_auth_timeout)
{
    gw_session_auth_timeout(sess);
    expect("error", "unauthorized", NULL, NULL);
    expect_close(GW_CLOSE_UNAUTHORIZED);
}
END_TEST

/* The token arrived but the gateway did not verify it in time: the gateway's fault, so not
 * "unauthorized" but a retryable close (1013), counted. */
START_TEST(test_auth_timeout_while_verifying)
{
    rx("{\"type\":\"auth\",\"token\":\"t\"}");
    ck_assert_int_eq(gw_session_state(sess), GW_SESS_AUTHENTICATING);
    gw_session_auth_timeout(sess);
    expect("error", "internal", NULL, NULL);
    expect_close(GW_CLOSE_TRY_AGAIN);
    ck_assert_int_eq(fake.auth_overloads, 1);
    ck_assert_int_eq(fake.errors[GW_E_UNAUTHORIZED], 0);
    /* The late answer finds the session closing and changes nothing. */
    chat_jwt_claims_t c = claims_make("acme", "alice", NULL, 0);
    gw_session_auth_done(sess, CHAT_OK, &c, NULL);
    chat_jwt_claims_clear(&c);
    ck_assert_int_ne(gw_session_state(sess), GW_SESS_READY);
}
END_TEST

START_TEST(test_auth_timeout_after_auth_is_noop)
{
    authenticate();
    gw_session_auth_timeout(sess);
    ck_assert(!gw_session_closing(sess));
    expect_empty();
}
END_TEST

START_TEST(test_frames_during_auth_wait)
{
    rx("{\"type\":\"auth\",\"token\":\"t\"}");
    rx("{\"type\":\"ping\",\"rid\":\"p\"}"); /* delivered although reading was paused */
    chat_jwt_claims_t c = claims_make("acme", "alice", NULL, 0);
    gw_session_auth_done(sess, CHAT_OK, &c, NULL);
    expect("welcome", NULL, NULL, NULL);
    expect("pong", NULL, "p", NULL);
}
END_TEST

START_TEST(test_auth_again_is_bad_request)
{
    authenticate();
    rx("{\"type\":\"auth\",\"token\":\"t\",\"rid\":\"x\"}");
    expect("error", "bad_request", "x", NULL);
    ck_assert(!gw_session_closing(sess));
}
END_TEST

/* ---- refresh ---- */

/* Sends a refresh frame with rid and token, within the rate. */
static void refresh_rx(const char *rid, const char *token)
{
    char frame[192];
    snprintf(frame, sizeof frame, "{\"type\":\"refresh\",\"rid\":\"%s\",\"token\":\"%s\"}", rid,
             token);
    now_us += 1000000;
    ck_assert_int_eq(rx(frame), GW_RX_CONTINUE);
}

/* Asserts the next frame is error code about rid (NULL: none) with message. */
static void expect_error_message(const char *code, const char *rid, const char *message)
{
    cJSON *o = next_frame(NULL);
    ck_assert_msg(o != NULL, "expected error %s, queue empty", code);
    ck_assert_str_eq(str_of(o, "type"), "error");
    ck_assert_str_eq(str_of(o, "code"), code);
    if (rid != NULL)
        ck_assert_str_eq(str_of(o, "rid"), rid);
    else
        ck_assert_ptr_null(str_of(o, "rid"));
    ck_assert_str_eq(str_of(o, "message"), message);
    cJSON_Delete(o);
}

/* A valid token of the same tenant and user: the session takes its claims (exp, name, rooms:
 * a room the old token did not allow now may be joined), answered ok {rid}. */
START_TEST(test_refresh_ok_replaces_claims)
{
    const char *old_rooms[] = {"general"};
    authenticate_as("alice", old_rooms, 1);
    ck_assert_int_eq(gw_session_exp(sess), 2000000000);
    now_us += 1000000;
    rx("{\"type\":\"join\",\"room\":\"team\",\"rid\":\"j1\"}");
    expect("error", "forbidden", "j1", NULL);

    refresh_rx("r1", "new.token.sig");
    ck_assert_int_eq(fake.refresh_calls, 1);
    ck_assert_str_eq(fake.refresh_token, "new.token.sig");
    ck_assert(gw_session_refreshing(sess));
    expect_empty(); /* the answer comes after the verification */

    const char *new_rooms[] = {"general", "team"};
    chat_jwt_claims_t c = claims_make("acme", "alice", new_rooms, 2);
    c.exp = 2000003600;
    snprintf(c.name, sizeof c.name, "Alice B.");
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_OK, &c, NULL), GW_REFRESH_OK);
    ck_assert_str_eq(c.user, ""); /* moved into the session */
    ck_assert_ptr_null(c.rooms);
    expect("ok", NULL, "r1", NULL);
    ck_assert(!gw_session_refreshing(sess));
    ck_assert_int_eq(gw_session_exp(sess), 2000003600);
    ck_assert_str_eq(gw_session_name(sess), "Alice B.");
    ck_assert_str_eq(gw_session_user(sess), "alice");
    ck_assert_str_eq(gw_session_tenant(sess), "acme");
    ck_assert_int_eq(fake.refreshes[GW_REFRESH_OK], 1);
    ck_assert_int_eq(fake.frames[GW_C_REFRESH], 1);

    now_us += 1000000;
    rx("{\"type\":\"join\",\"room\":\"team\",\"rid\":\"j2\"}");
    ck_assert_int_eq(fake.join_calls, 1);
    ck_assert_str_eq(fake.join_room, "team");
    expect_empty();

    /* a late second answer (nothing pending) changes nothing */
    chat_jwt_claims_t late = claims_make("acme", "alice", NULL, 0);
    late.exp = 1;
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_OK, &late, NULL), GW_REFRESH__COUNT);
    ck_assert_str_eq(late.user, "alice"); /* still the caller's */
    chat_jwt_claims_clear(&late);
    ck_assert_int_eq(gw_session_exp(sess), 2000003600);
    expect_empty();
}
END_TEST

/* A cached tenant secret answers within submit_refresh: the same ok. */
/* The token's exp goes to the server at welcome and after each accepted refresh; when it
 * passes: error unauthorized "token expired", close 4001; not while a refresh is verified. */
START_TEST(test_token_expiry)
{
    authenticate();
    ck_assert_int_eq(fake.expiry_calls, 1);
    ck_assert_int_eq(fake.expiry_s, gw_session_exp(sess));

    refresh_rx("r1", "a.b.c");
    ck_assert(!gw_session_token_expired(sess)); /* its refresh may move the expiry */
    expect_empty();
    chat_jwt_claims_t c = claims_make("acme", "alice", NULL, 0);
    c.exp = 2000009999;
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_OK, &c, NULL), GW_REFRESH_OK);
    expect("ok", NULL, "r1", NULL);
    ck_assert_int_eq(fake.expiry_calls, 2);
    ck_assert_int_eq(fake.expiry_s, 2000009999);

    ck_assert(gw_session_token_expired(sess));
    expect("error", "unauthorized", NULL, NULL);
    expect_close(GW_CLOSE_UNAUTHORIZED);
    ck_assert(gw_session_token_expired(sess)); /* closing already: nothing more */
    expect_close(GW_CLOSE_UNAUTHORIZED);
}
END_TEST

START_TEST(test_refresh_answered_at_once)
{
    authenticate();
    chat_jwt_claims_t c = claims_make("acme", "alice", NULL, 0);
    c.exp = 2000007200;
    fake.refresh_now = &c;
    refresh_rx("r1", "a.b.c");
    fake.refresh_now = NULL;
    ck_assert_str_eq(c.user, "");
    expect("ok", NULL, "r1", NULL);
    expect_empty();
    ck_assert(!gw_session_refreshing(sess));
    ck_assert_int_eq(gw_session_exp(sess), 2000007200);
    /* and the next refresh is taken */
    refresh_rx("r2", "d.e.f");
    ck_assert_int_eq(fake.refresh_calls, 2);
    ck_assert(gw_session_refreshing(sess));
}
END_TEST

/* A valid token of another user or tenant is refused with unauthorized {rid}; the connection
 * stays open with its claims, and works. */
START_TEST(test_refresh_other_user_refused)
{
    authenticate();
    refresh_rx("r1", "bob.token.sig");
    chat_jwt_claims_t c = claims_make("acme", "bob", NULL, 0);
    c.exp = 2000003600;
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_OK, &c, NULL), GW_REFRESH_OTHER_USER);
    ck_assert_str_eq(c.user, "bob"); /* not taken */
    chat_jwt_claims_clear(&c);
    expect_error_message("unauthorized", "r1", "token is for another user");

    refresh_rx("r2", "other.tenant.sig");
    c = claims_make("globex", "alice", NULL, 0);
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_OK, &c, NULL), GW_REFRESH_OTHER_USER);
    chat_jwt_claims_clear(&c);
    expect_error_message("unauthorized", "r2", "token is for another tenant");

    ck_assert(!gw_session_closing(sess));
    ck_assert_str_eq(gw_session_user(sess), "alice");
    ck_assert_str_eq(gw_session_tenant(sess), "acme");
    ck_assert_int_eq(gw_session_exp(sess), 2000000000);
    ck_assert_int_eq(fake.refreshes[GW_REFRESH_OTHER_USER], 2);
    ck_assert_int_eq(fake.errors[GW_E_UNAUTHORIZED], 2);
    now_us += 1000000;
    rx("{\"type\":\"ping\",\"rid\":\"p\"}");
    expect("pong", NULL, "p", NULL);
}
END_TEST

/* An invalid, expired or forged token is unauthorized with the verification's reason; a store
 * failure is internal; both with the rid, the connection open with its claims. A refresh frame
 * the parser refuses never reaches the verification. */
START_TEST(test_refresh_bad_token_refused)
{
    authenticate();
    refresh_rx("r1", "x.y.z");
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_ERR_UNAUTHORIZED, NULL, "token expired"),
                     GW_REFRESH_INVALID);
    expect_error_message("unauthorized", "r1", "token expired");
    refresh_rx("r2", "x.y.z");
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_ERR_UNAUTHORIZED, NULL, ""),
                     GW_REFRESH_INVALID);
    expect_error_message("unauthorized", "r2", "invalid token");
    refresh_rx("r3", "x.y.z");
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_ERR_MONGO, NULL, "tenant lookup failed"),
                     GW_REFRESH_FAILED);
    expect("error", "internal", "r3", NULL);
    ck_assert_int_eq(fake.refreshes[GW_REFRESH_INVALID], 2);
    ck_assert_int_eq(fake.refreshes[GW_REFRESH_FAILED], 1);

    now_us += 1000000;
    rx("{\"type\":\"refresh\",\"rid\":\"r4\",\"token\":\"\"}");
    expect("error", "bad_request", "r4", NULL);
    now_us += 1000000;
    rx("{\"type\":\"refresh\",\"token\":\"x.y.z\"}");
    expect("error", "bad_request", NULL, NULL);
    ck_assert_int_eq(fake.refresh_calls, 3);
    ck_assert(!gw_session_refreshing(sess));

    ck_assert(!gw_session_closing(sess));
    ck_assert_int_eq(gw_session_exp(sess), 2000000000);
    now_us += 1000000;
    rx("{\"type\":\"ping\",\"rid\":\"p\"}");
    expect("pong", NULL, "p", NULL);
}
END_TEST

/* Before auth a refresh is just not the auth frame; a gateway without the op refuses it. */
START_TEST(test_refresh_before_auth_and_unsupported)
{
    rx("{\"type\":\"refresh\",\"rid\":\"r1\",\"token\":\"x.y.z\"}");
    expect_error_message("unauthorized", NULL, "the first frame must be auth");
    expect_close(GW_CLOSE_UNAUTHORIZED);
    ck_assert_int_eq(fake.refresh_calls, 0);
    ck_assert_int_eq(fake.auth_calls, 0);

    static gw_session_ops_t ops_no_refresh;
    ops_no_refresh = ops;
    ops_no_refresh.submit_refresh = NULL;
    env.ops = &ops_no_refresh;
    gw_session_free(sess);
    sess = gw_session_new(&env, "0.abc.2", NULL);
    authenticate();
    refresh_rx("r2", "x.y.z");
    expect("error", "bad_request", "r2", NULL);
    ck_assert(!gw_session_refreshing(sess));
    ck_assert_int_eq(fake.refresh_calls, 0);
}
END_TEST

/* A second refresh while the first is verified is bad_request with its own rid; the first is
 * answered as usual and then a new one is taken. */
START_TEST(test_refresh_one_at_a_time)
{
    authenticate();
    refresh_rx("r1", "first.token.sig");
    refresh_rx("r2", "second.token.sig");
    expect_error_message("bad_request", "r2", "a refresh is already in progress");
    ck_assert_int_eq(fake.refresh_calls, 1);
    ck_assert_str_eq(fake.refresh_token, "first.token.sig");
    ck_assert_int_eq(fake.refreshes[GW_REFRESH_BUSY], 1);
    ck_assert(!gw_session_closing(sess));

    chat_jwt_claims_t c = claims_make("acme", "alice", NULL, 0);
    c.exp = 2000003600;
    gw_session_refresh_done(sess, CHAT_OK, &c, NULL);
    expect("ok", NULL, "r1", NULL);
    expect_empty();
    refresh_rx("r3", "third.token.sig");
    ck_assert_int_eq(fake.refresh_calls, 2);
    ck_assert_str_eq(fake.refresh_token, "third.token.sig");
}
END_TEST

/* The connection closes while its refresh is verified: the answer is dropped (nothing queued,
 * the claims stay the caller's), and a session freed with a refresh pending leaks nothing. */
START_TEST(test_refresh_closed_while_verifying)
{
    authenticate();
    refresh_rx("r1", "x.y.z");
    gw_session_close(sess, GW_CLOSE_GOING_AWAY, "going away", false);
    const char *rooms[] = {"general"};
    chat_jwt_claims_t c = claims_make("acme", "alice", rooms, 1);
    c.exp = 2000003600;
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_OK, &c, NULL), GW_REFRESH__COUNT);
    ck_assert_str_eq(c.user, "alice");
    ck_assert_ptr_nonnull(c.rooms);
    chat_jwt_claims_clear(&c);
    ck_assert_int_eq(gw_session_refresh_done(sess, CHAT_ERR_UNAUTHORIZED, NULL, "bad signature"),
                     GW_REFRESH__COUNT);
    expect_close(GW_CLOSE_GOING_AWAY);
    ck_assert_int_eq(fake.refreshes[GW_REFRESH_OK] + fake.refreshes[GW_REFRESH_INVALID], 0);

    gw_session_free(sess);
    sess = gw_session_new(&env, "0.abc.2", NULL);
    authenticate();
    refresh_rx("r2", "x.y.z");
    ck_assert(gw_session_refreshing(sess));
    gw_session_free(sess); /* the server forgets the connection: the job's answer finds none */
    sess = NULL;
}
END_TEST

/* ---- frame assembly and size ---- */

START_TEST(test_fragments_assembled)
{
    authenticate();
    const char *part[] = {"{\"type\":", "\"ping\",\"ri", "d\":\"f\"}"};
    ck_assert_int_eq(gw_session_rx(sess, part[0], strlen(part[0]), false, false, 0),
                     GW_RX_CONTINUE);
    ck_assert_int_eq(gw_session_rx(sess, part[1], strlen(part[1]), false, false, 0),
                     GW_RX_CONTINUE);
    expect_empty();
    ck_assert_int_eq(gw_session_rx(sess, part[2], strlen(part[2]), false, true, 0), GW_RX_CONTINUE);
    expect("pong", NULL, "f", NULL);
}
END_TEST

START_TEST(test_frame_too_big_announced)
{
    authenticate();
    /* The first chunk of a frame whose header announces more than the limit. */
    ck_assert_int_eq(gw_session_rx(sess, "{", 1, false, false, MAX_FRAME), GW_RX_CLOSE);
    ck_assert_int_eq(gw_session_close_code(sess), GW_CLOSE_TOO_BIG);
    expect_close(GW_CLOSE_TOO_BIG);
}
END_TEST

START_TEST(test_fragmented_total_too_big)
{
    char chunk[100];
    memset(chunk, 'x', sizeof chunk);
    ck_assert_int_eq(gw_session_rx(sess, chunk, sizeof chunk, false, false, 0), GW_RX_CONTINUE);
    ck_assert_int_eq(gw_session_rx(sess, chunk, sizeof chunk, false, false, 0), GW_RX_CONTINUE);
    ck_assert_int_eq(gw_session_rx(sess, chunk, sizeof chunk, false, false, 0), GW_RX_CLOSE);
    ck_assert_int_eq(gw_session_close_code(sess), GW_CLOSE_TOO_BIG);
}
END_TEST

START_TEST(test_frame_at_limit_accepted)
{
    authenticate();
    char frame[MAX_FRAME + 1];
    int n = snprintf(frame, sizeof frame, "{\"type\":\"ping\",\"rid\":\"r\"}");
    memset(frame + n, ' ', MAX_FRAME - (size_t)n); /* trailing whitespace is allowed */
    ck_assert_int_eq(gw_session_rx(sess, frame, MAX_FRAME, false, true, 0), GW_RX_CONTINUE);
    expect("pong", NULL, "r", NULL);
}
END_TEST

/* ---- errors, rate ---- */

START_TEST(test_bad_requests_keep_connection)
{
    authenticate();
    rx("nope");
    expect("error", "bad_request", NULL, NULL);
    rx("{\"type\":\"bogus\",\"rid\":\"b\"}");
    expect("error", "bad_request", "b", NULL);
    gw_session_rx(sess, "{}", 2, true, true, 0);
    expect("error", "bad_request", NULL, NULL);
    now_us += 10000000; /* refill */
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c9\",\"text\":\"01234567890\"}");
    expect("error", "too_large", NULL, "c9");
    ck_assert(!gw_session_closing(sess));
    ck_assert_int_eq(fake.errors[GW_E_BAD_REQUEST], 3);
    ck_assert_int_eq(fake.errors[GW_E_TOO_LARGE], 1);
    ck_assert_int_eq(fake.frames[GW_C_INVALID], 3);
}
END_TEST

START_TEST(test_rate_limit_and_close)
{
    authenticate();
    /* burst 3: three pongs */
    for (int i = 0; i < 3; i++) {
        rx("{\"type\":\"ping\"}");
        expect("pong", NULL, NULL, NULL);
    }
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c1\",\"text\":\"hi\",\"rid\":\"s1\"}");
    expect("error", "rate_limited", "s1", "c1");
    ck_assert_int_eq(fake.sends, 0);
    /* a token comes back after 0.5 s: the limited streak restarts */
    now_us += 500000;
    rx("{\"type\":\"ping\"}");
    expect("pong", NULL, NULL, NULL);
    rx("{\"type\":\"ping\"}");
    expect("error", "rate_limited", NULL, NULL);
    rx("not even json");
    expect("error", "rate_limited", NULL, NULL);
    ck_assert(!gw_session_closing(sess));
    rx("{\"type\":\"ping\"}"); /* third in a row */
    expect("error", "rate_limited", NULL, NULL);
    expect_close(GW_CLOSE_RATE_LIMIT);
}
END_TEST

/* Reads the frames the session queued (as a client that keeps up would). */
static void drain_frames(void)
{
    cJSON *o;
    while ((o = next_frame(NULL)) != NULL)
        cJSON_Delete(o);
}

/* A client at twice its rate gets half its frames through, but is still closed: strikes
 * are forgiven at 1/s and it earns 2/s. */
START_TEST(test_rate_persistent_excess_closes)
{
    authenticate();
    int seconds = 0;
    while (!gw_session_closing(sess) && seconds < 10) {
        now_us += 1000000;
        seconds++;
        for (int i = 0; i < 4 && !gw_session_closing(sess); i++)
            rx("{\"type\":\"ping\"}");
        if (!gw_session_closing(sess))
            drain_frames();
    }
    ck_assert(gw_session_closing(sess));
    ck_assert_int_eq(gw_session_close_code(sess), GW_CLOSE_RATE_LIMIT);
    ck_assert_int_le(seconds, 4);
}
END_TEST

/* A single burst past the rate is forgiven once the client slows down. */
START_TEST(test_rate_burst_forgiven)
{
    authenticate();
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 5; i++) /* burst 3 + 2 limited */
            rx("{\"type\":\"ping\"}");
        drain_frames();
        now_us += 3000000; /* refills the bucket and forgives the 2 strikes */
    }
    ck_assert(!gw_session_closing(sess));
}
END_TEST

/* ---- access rules ---- */

START_TEST(test_rooms_claim_and_dm_rules)
{
    static const char *const allowed[] = {"general", "dm:alice:bob"};
    authenticate_as("alice", allowed, 2);
    rx("{\"type\":\"join\",\"room\":\"random\",\"rid\":\"j\"}");
    expect("error", "forbidden", "j", NULL);
    rx("{\"type\":\"send\",\"room\":\"random\",\"cid\":\"c\",\"text\":\"x\"}");
    expect("error", "forbidden", NULL, "c");
    rx("{\"type\":\"history\",\"room\":\"random\",\"rid\":\"h\"}");
    expect("error", "forbidden", "h", NULL);
    ck_assert_int_eq(fake.join_calls + fake.sends + fake.history_calls, 0);
    now_us += 10000000;
    rx("{\"type\":\"join\",\"room\":\"dm:alice:bob\"}");
    ck_assert_int_eq(fake.join_calls, 1);
}
END_TEST

START_TEST(test_dm_membership)
{
    authenticate_as("carol", NULL, 0);
    rx("{\"type\":\"join\",\"room\":\"dm:alice:bob\"}");
    expect("error", "forbidden", NULL, NULL);
    rx("{\"type\":\"join\",\"room\":\"dm:carol:alice\"}"); /* not sorted */
    expect("error", "forbidden", NULL, NULL);
    rx("{\"type\":\"join\",\"room\":\"dm:alice:carol\"}");
    ck_assert_int_eq(fake.join_calls, 1);
    expect_empty();
}
END_TEST

/* ---- join ---- */

START_TEST(test_join_replay_then_held)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\",\"since\":2,\"rid\":\"j1\"}");
    ck_assert_int_eq(fake.join_calls, 1);
    ck_assert_str_eq(fake.join_room, "general");
    ck_assert_str_eq(fake.join_rid, "j1");
    ck_assert(fake.join.has_since);
    ck_assert_int_eq(fake.join.since, 2);
    /* Live deliveries while the lookup runs are held. */
    deliver_live(4);
    deliver_live(5);
    expect_empty();
    gw_outq_entry_t replay[] = {{msg_buf(3), 3}, {msg_buf(4), 4}};
    const char *online[] = {"alice", "bob"};
    gw_join_result_t res = {.room = "general",
                            .rid = "j1",
                            .gen = fake.join.gen,
                            .latest = 4,
                            .unread = 2,
                            .online = online,
                            .nonline = 2,
                            .replay = replay,
                            .nreplay = 2};
    gw_session_join_done(sess, &res);
    cJSON *j = next_frame(NULL);
    ck_assert_str_eq(str_of(j, "type"), "joined");
    ck_assert_str_eq(str_of(j, "rid"), "j1");
    ck_assert_int_eq((int)cJSON_GetObjectItem(j, "seq")->valuedouble, 4);
    ck_assert_int_eq((int)cJSON_GetObjectItem(j, "unread")->valuedouble, 2);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "online")), 2);
    cJSON_Delete(j);
    expect_msg_seq(3);
    expect_msg_seq(4);
    expect_msg_seq(5); /* held 4 was a duplicate of the replay */
    expect_empty();
    deliver_live(5);
    deliver_live(6);
    expect_msg_seq(6);
    expect_empty();
}
END_TEST

START_TEST(test_join_stale_or_failed_result)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\"}");
    uint32_t gen1 = fake.join.gen;
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j2\"}"); /* joined again */
    ck_assert_uint_ne(fake.join.gen, gen1);
    gw_outq_entry_t replay[] = {{msg_buf(1), 1}};
    gw_join_result_t stale = {
        .room = "general", .gen = gen1, .latest = 1, .replay = replay, .nreplay = 1};
    gw_session_join_done(sess, &stale); /* the answer to the first join: ignored */
    expect_empty();
    gw_join_result_t failed = {
        .room = "general", .rid = "j2", .gen = fake.join.gen, .err = CHAT_ERR_REDIS};
    gw_session_join_done(sess, &failed);
    expect("error", "internal", "j2", NULL);
    ck_assert_int_eq(fake.releases, 1); /* the subscription is gone again */
    ck_assert(fake.last_room_empty);
    deliver_live(9);
    expect_empty();
    ck_assert(!gw_session_closing(sess));
}
END_TEST

/* join, leave, join: the answer to the first join arrives after the second join started.
 * It must not activate the new subscription (it carries the old rid and a read taken while
 * the socket was not registered). */
START_TEST(test_join_leave_join_stale_answer)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j1\"}");
    uint32_t gen1 = fake.join.gen;
    rx("{\"type\":\"leave\",\"room\":\"general\",\"rid\":\"l1\"}");
    expect("left", NULL, "l1", NULL);
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j2\"}");
    ck_assert_int_eq(fake.join_calls, 2);
    uint32_t gen2 = fake.join.gen;
    gw_outq_entry_t replay[] = {{msg_buf(1), 1}};
    gw_join_result_t stale = {
        .room = "general", .rid = "j1", .gen = gen1, .latest = 1, .replay = replay, .nreplay = 1};
    gw_session_join_done(sess, &stale);
    expect_empty();
    deliver_live(2); /* still pending: held, not sent */
    expect_empty();
    gw_join_result_t res = {.room = "general", .rid = "j2", .gen = gen2, .latest = 1};
    gw_session_join_done(sess, &res);
    cJSON *j = next_frame(NULL);
    ck_assert_str_eq(str_of(j, "type"), "joined");
    ck_assert_str_eq(str_of(j, "rid"), "j2");
    cJSON_Delete(j);
    expect_msg_seq(2);
    expect_empty();
}
END_TEST

/* A join or history request the gateway cannot take (out of memory) is answered at once,
 * never left waiting; the join's subscription is dropped. */
START_TEST(test_refused_requests_are_answered)
{
    authenticate();
    fake.refuse_jobs = true;
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j1\"}");
    expect("error", "internal", "j1", NULL);
    ck_assert_int_eq(fake.releases, 1);
    ck_assert(fake.last_room_empty);
    deliver_live(3);
    expect_empty();
    rx("{\"type\":\"history\",\"room\":\"general\",\"rid\":\"h1\"}");
    expect("error", "internal", "h1", NULL);
    fake.refuse_jobs = false;
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j2\"}");
    ck_assert_int_eq(fake.join_calls, 1);
    ck_assert(!gw_session_closing(sess));
}
END_TEST

START_TEST(test_join_without_since_drops_older_held)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\"}");
    ck_assert(!fake.join.has_since);
    deliver_live(7);
    deliver_live(8);
    gw_join_result_t res = {.room = "general", .gen = fake.join.gen, .latest = 7};
    gw_session_join_done(sess, &res);
    expect("joined", NULL, NULL, NULL);
    expect_msg_seq(8);
    expect_empty();
}
END_TEST

START_TEST(test_replay_trimmed_to_queue_room)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\",\"since\":0}");
    enum { N = 40 };
    gw_outq_entry_t replay[N];
    for (int i = 0; i < N; i++)
        replay[i] = (gw_outq_entry_t){msg_buf(i + 1), i + 1};
    gw_join_result_t res = {
        .room = "general", .gen = fake.join.gen, .latest = N, .replay = replay, .nreplay = N};
    gw_session_join_done(sess, &res);
    ck_assert(!gw_session_closing(sess));
    expect("joined", NULL, NULL, NULL);
    /* 16 slots: joined + an eighth kept free (2) -> the newest 13 messages. */
    for (int seq = N - 12; seq <= N; seq++)
        expect_msg_seq(seq);
    expect_empty();
}
END_TEST

START_TEST(test_leave_is_idempotent)
{
    authenticate();
    rx("{\"type\":\"leave\",\"room\":\"general\",\"rid\":\"l1\"}");
    expect("left", NULL, "l1", NULL);
    rx("{\"type\":\"join\",\"room\":\"general\"}");
    gw_join_result_t res = {.room = "general", .gen = fake.join.gen};
    gw_session_join_done(sess, &res);
    expect("joined", NULL, NULL, NULL);
    rx("{\"type\":\"leave\",\"room\":\"general\"}");
    expect("left", NULL, NULL, NULL);
    ck_assert_int_eq(fake.releases, 1);
    deliver_live(1);
    expect_empty();
}
END_TEST

START_TEST(test_free_releases_subscriptions)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\"}");
    rx("{\"type\":\"join\",\"room\":\"random\"}");
    gw_session_free(sess);
    sess = NULL;
    ck_assert_int_eq(fake.releases, 2);
}
END_TEST

/* ---- send, history ---- */

START_TEST(test_send_and_failures)
{
    authenticate();
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c-1\",\"text\":\"h\xc3\xa9llo\"}");
    ck_assert_int_eq(fake.sends, 1);
    ck_assert_str_eq(fake.send_room, "general");
    ck_assert_str_eq(fake.send_cid, "c-1");
    ck_assert_str_eq(fake.send_text, "h\xc3\xa9llo");
    expect_empty(); /* the ack comes through chat.deliver */
    fake.send_rc = CHAT_ERR_TIMEOUT;
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c-2\",\"text\":\"x\"}");
    expect("error", "internal", NULL, "c-2");
    gw_session_send_failed(sess, NULL, "c-1");
    expect("error", "internal", NULL, "c-1");
    ck_assert(!gw_session_closing(sess));
}
END_TEST

/* Every connection's start is counted exactly once, by how it ended. */
static int connects_total(void)
{
    int n = 0;
    for (int i = 0; i < GW_CONNECT__COUNT; i++)
        n += fake.connects[i];
    return n;
}

/* A fresh session in place of the fixture's (which is freed, counting its own start). */
static void session_renew(void)
{
    gw_session_free(sess);
    memset(fake.connects, 0, sizeof fake.connects);
    sess = gw_session_new(&env, "0.abc.2", NULL);
    ck_assert_ptr_nonnull(sess);
}

START_TEST(test_connect_results_counted_once)
{
    authenticate();
    ck_assert_int_eq(fake.connects[GW_CONNECT_WELCOME], 1);
    ck_assert_int_eq(fake.sent[GW_S_WELCOME], 1);
    gw_session_close(sess, GW_CLOSE_SERVICE_RESTART, "service restart", true);

    session_renew(); /* a bad token */
    rx("{\"type\":\"auth\",\"token\":\"x.y.z\"}");
    gw_session_auth_done(sess, CHAT_ERR_UNAUTHORIZED, NULL, "bad signature");
    ck_assert_int_eq(fake.connects[GW_CONNECT_AUTH_FAILED], 1);

    session_renew(); /* the store failed */
    rx("{\"type\":\"auth\",\"token\":\"x.y.z\"}");
    gw_session_auth_done(sess, CHAT_ERR_IO, NULL, NULL);
    ck_assert_int_eq(fake.connects[GW_CONNECT_AUTH_FAILED], 1);

    session_renew(); /* no auth in time */
    gw_session_auth_timeout(sess);
    ck_assert_int_eq(fake.connects[GW_CONNECT_AUTH_TIMEOUT], 1);
    ck_assert_int_eq(connects_total(), 1);

    session_renew(); /* the token not verified in time */
    rx("{\"type\":\"auth\",\"token\":\"x.y.z\"}");
    gw_session_auth_timeout(sess);
    ck_assert_int_eq(fake.connects[GW_CONNECT_OVERLOAD], 1);
    ck_assert_int_eq(connects_total(), 1);

    session_renew(); /* the client went before authenticating */
    gw_session_free(sess);
    sess = NULL;
    ck_assert_int_eq(fake.connects[GW_CONNECT_AUTH_FAILED], 1);
    ck_assert_int_eq(connects_total(), 1);

    memset(fake.connects, 0, sizeof fake.connects); /* a drain closed it before auth */
    sess = gw_session_new(&env, "0.abc.3", NULL);
    gw_session_close(sess, GW_CLOSE_SERVICE_RESTART, "service restart", true);
    gw_session_free(sess);
    ck_assert_int_eq(fake.connects[GW_CONNECT_DRAINING], 1);
    ck_assert_int_eq(connects_total(), 1);

    /* the fixture's teardown frees sess again: a welcomed session counts nothing more */
    sess = gw_session_new(&env, "0.abc.4", NULL);
    memset(fake.connects, 0, sizeof fake.connects);
    authenticate();
    gw_session_free(sess);
    ck_assert_int_eq(fake.connects[GW_CONNECT_WELCOME], 1);
    ck_assert_int_eq(connects_total(), 1);
    sess = gw_session_new(&env, "0.abc.5", NULL);
}
END_TEST

/* A send is remembered from its frame's arrival until its ack (or an error about it): the
 * time it came in, for chat_gateway_send_ack_seconds, and the drain closes it last. */
START_TEST(test_sends_pending_until_answered)
{
    authenticate();
    ck_assert_uint_eq(gw_session_sends_pending(sess), 0);
    ck_assert_int_eq(gw_session_send_answered(sess, "c-1"), -1);
    int64_t t1 = now_us;
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c-1\",\"text\":\"a\"}");
    now_us += 1000;
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c-2\",\"text\":\"b\"}");
    ck_assert_uint_eq(gw_session_sends_pending(sess), 2);
    ck_assert_int_eq(gw_session_send_answered(sess, "c-1"), t1);
    ck_assert_int_eq(gw_session_send_answered(sess, "c-1"), -1); /* answered once */
    ck_assert_uint_eq(gw_session_sends_pending(sess), 1);
    /* an error about a send answers it too */
    gw_session_send_failed(sess, NULL, "c-2");
    expect("error", "internal", NULL, "c-2");
    ck_assert_uint_eq(gw_session_sends_pending(sess), 0);
    /* a produce refused at once */
    fake.send_rc = CHAT_ERR_TIMEOUT;
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c-3\",\"text\":\"x\"}");
    expect("error", "internal", NULL, "c-3");
    ck_assert_uint_eq(gw_session_sends_pending(sess), 0);
    fake.send_rc = CHAT_OK;
    /* bounded: the oldest is forgotten */
    char frame[128];
    for (int i = 0; i < GW_PENDING_SENDS + 3; i++) {
        now_us += 10000000; /* refills the token bucket */
        snprintf(frame, sizeof frame,
                 "{\"type\":\"send\",\"room\":\"general\",\"cid\":\"b-%d\",\"text\":\"x\"}", i);
        rx(frame);
    }
    ck_assert_uint_eq(gw_session_sends_pending(sess), GW_PENDING_SENDS);
    ck_assert_int_eq(gw_session_send_answered(sess, "b-0"), -1);
    ck_assert_int_ne(gw_session_send_answered(sess, "b-3"), -1);
    ck_assert_int_eq(gw_session_send_answered(sess, (const char *)NULL), -1);
}
END_TEST

/* Every frame queued is counted by its type; msg frames are "message". */
START_TEST(test_frames_sent_by_type)
{
    authenticate();
    rx("{\"type\":\"ping\",\"rid\":\"p\"}");
    expect("pong", NULL, "p", NULL);
    rx("{\"type\":\"join\",\"room\":\"general\"}");
    gw_join_result_t res = {.room = "general", .gen = fake.join.gen, .latest = 0};
    gw_session_join_done(sess, &res);
    expect("joined", NULL, NULL, NULL);
    deliver_live(1);
    expect_msg_seq(1);
    rx("{\"type\":\"nope\"}");
    expect("error", "bad_request", NULL, NULL);
    ck_assert_int_eq(fake.sent[GW_S_WELCOME], 1);
    ck_assert_int_eq(fake.sent[GW_S_PONG], 1);
    ck_assert_int_eq(fake.sent[GW_S_JOINED], 1);
    ck_assert_int_eq(fake.sent[GW_S_MESSAGE], 1);
    ck_assert_int_eq(fake.sent[GW_S_ERROR], 1);
}
END_TEST

/* typing: forbidden outside a joined room; in one, forwarded at most once per interval per
 * user and room (extra ones dropped silently, counted); never answered. */
START_TEST(test_typing_joined_and_throttled)
{
    authenticate();
    rx("{\"type\":\"typing\",\"room\":\"general\",\"rid\":\"t1\"}");
    expect("error", "forbidden", "t1", NULL);
    ck_assert_int_eq(fake.typings, 0);
    rx("{\"type\":\"join\",\"room\":\"general\"}");
    rx("{\"type\":\"typing\",\"room\":\"general\"}");
    ck_assert_int_eq(fake.typings, 1);
    ck_assert_str_eq(fake.typing_room, "general");
    now_us += 1999999;
    rx("{\"type\":\"typing\",\"room\":\"general\"}");
    ck_assert_int_eq(fake.typings, 1);
    ck_assert_int_eq(fake.typing_throttled, 1);
    now_us += 1;
    rx("{\"type\":\"typing\",\"room\":\"general\"}");
    ck_assert_int_eq(fake.typings, 2);
    expect_empty();
    /* Leaving forgets the throttle with the user's last subscription. */
    now_us += 10000000; /* refill the rate bucket (not the throttle's business) */
    rx("{\"type\":\"leave\",\"room\":\"general\"}");
    expect("left", NULL, NULL, NULL);
    rx("{\"type\":\"typing\",\"room\":\"general\"}");
    expect("error", "forbidden", NULL, NULL);
    now_us += 10000000;
    rx("{\"type\":\"join\",\"room\":\"general\"}");
    rx("{\"type\":\"typing\",\"room\":\"general\"}");
    ck_assert_int_eq(fake.typings, 3);
}
END_TEST

START_TEST(test_history_request_and_answer)
{
    authenticate();
    rx("{\"type\":\"history\",\"room\":\"general\",\"rid\":\"h1\"}");
    ck_assert_int_eq(fake.history_calls, 1);
    ck_assert_int_eq(fake.history.limit, 50);
    ck_assert_int_eq(fake.history.before, 0);
    rx("{\"type\":\"history\",\"room\":\"general\",\"rid\":\"h2\",\"before\":9,\"limit\":3}");
    ck_assert_int_eq(fake.history.limit, 3);
    ck_assert_int_eq(fake.history.before, 9);
    gw_session_history_done(sess, "h1", NULL);
    expect("error", "internal", "h1", NULL);
    cJSON *msgs = cJSON_CreateArray();
    gw_session_history_done(sess, "h2", gw_frame_history("general", "h2", msgs, false));
    expect("history", NULL, "h2", NULL);
}
END_TEST

/* ---- write queue ---- */

START_TEST(test_queue_overflow_closes_1008)
{
    authenticate();
    for (int i = 0; i < SEND_QUEUE; i++)
        ck_assert(gw_session_enqueue(sess, msg_buf(i + 1)));
    ck_assert(!gw_session_closing(sess));
    ck_assert(!gw_session_enqueue(sess, msg_buf(99)));
    ck_assert(gw_session_closing(sess));
    ck_assert_int_eq(fake.slow_closes, 1);
    ck_assert_uint_eq(fake.drops, SEND_QUEUE + 1); /* the refused frame and the queue */
    ck_assert_str_eq(gw_session_close_reason(sess), "too slow");
    /* The queue is dropped: the close goes out at once. */
    expect_close(GW_CLOSE_POLICY);
    ck_assert(!gw_session_enqueue(sess, msg_buf(100)));
    ck_assert_uint_eq(fake.drops, SEND_QUEUE + 2);
}
END_TEST

START_TEST(test_close_flush_writes_queue_first)
{
    authenticate();
    gw_session_enqueue(sess, msg_buf(1));
    gw_session_close(sess, GW_CLOSE_GOING_AWAY, "going away", true);
    gw_session_close(sess, GW_CLOSE_POLICY, "later", false); /* first request wins */
    expect_msg_seq(1);
    expect_close(GW_CLOSE_GOING_AWAY);
    ck_assert_str_eq(gw_session_close_reason(sess), "going away");
}
END_TEST

/* ---- read marks, the room list ---- */

START_TEST(test_read_rooms_leave)
{
    authenticate();
    /* read goes out as is (the message service judges the seq); nothing is answered here */
    rx("{\"type\":\"read\",\"room\":\"general\",\"seq\":3,\"rid\":\"r1\"}");
    ck_assert_int_eq(fake.reads, 1);
    ck_assert_str_eq(fake.read_room, "general");
    ck_assert_int_eq(fake.read_seq, 3);
    ck_assert_str_eq(fake.read_rid, "r1");
    expect_empty();
    /* the join rules apply: another pair's dm room is forbidden */
    rx("{\"type\":\"read\",\"room\":\"dm:bob:carol\",\"seq\":1,\"rid\":\"r2\"}");
    expect("error", "forbidden", "r2", NULL);
    ck_assert_int_eq(fake.reads, 1);
    /* rooms: the default limit, then a limit and a cursor; the answer or an error */
    rx("{\"type\":\"rooms\",\"rid\":\"l1\"}");
    ck_assert_int_eq(fake.rooms_calls, 1);
    ck_assert_int_eq(fake.rooms.limit, CHAT_ROOMS_LIMIT_DEFAULT);
    ck_assert_str_eq(fake.rooms_cursor, "");
    now_us += 10000000; /* refill the bucket */
    rx("{\"type\":\"rooms\",\"rid\":\"l2\",\"limit\":5,\"cursor\":\"12.general\"}");
    ck_assert_int_eq(fake.rooms_calls, 2);
    ck_assert_int_eq(fake.rooms.limit, 5);
    ck_assert_str_eq(fake.rooms_cursor, "12.general");
    rx("{\"type\":\"rooms\",\"rid\":\"l3\",\"cursor\":\"garbage\"}");
    expect("error", "bad_request", "l3", NULL);
    const char *frame = "{\"type\":\"rooms\",\"rid\":\"l1\",\"rooms\":[]}";
    gw_session_rooms_done(sess, "l1", gw_buf_new(frame, strlen(frame)), GW_E_INTERNAL, NULL);
    expect("rooms", NULL, "l1", NULL);
    gw_session_rooms_done(sess, "l2", NULL, GW_E_BAD_REQUEST, "cursor is not valid");
    expect("error", "bad_request", "l2", NULL);
    /* leave tells the room list, joined or not */
    rx("{\"type\":\"leave\",\"room\":\"general\"}");
    expect("left", NULL, NULL, NULL);
    ck_assert_int_eq(fake.leaves, 1);
    ck_assert_str_eq(fake.leave_room, "general");
}
END_TEST

/* ---- private rooms (docs/server-api.md) ---- */

static struct {
    int calls;
    char room[64], cid[64], frame[256];
} checks;

static chat_err_t op_submit_act_check(void *ud, const gw_act_req_t *req)
{
    (void)ud;
    checks.calls++;
    snprintf(checks.room, sizeof checks.room, "%s", req->room);
    snprintf(checks.cid, sizeof checks.cid, "%s", req->cid != NULL ? req->cid : "");
    snprintf(checks.frame, sizeof checks.frame, "%.*s", (int)req->frame_len, req->frame);
    return CHAT_OK;
}

/* Answers the last action check with kind (gone: the room was deleted). */
static void act_answer(gw_room_kind_t kind, bool gone)
{
    gw_act_req_t req = {.room = checks.room,
                        .cid = checks.cid[0] != '\0' ? checks.cid : NULL,
                        .frame = checks.frame,
                        .frame_len = strlen(checks.frame)};
    gw_session_act_checked(sess, &req, kind, gone);
}

/* The environment of a gateway that looks up the kind of a room before an unjoined action. */
static gw_session_ops_t ops_checked;

static void use_act_checks(void)
{
    memset(&checks, 0, sizeof checks);
    ops_checked = ops;
    ops_checked.submit_act_check = op_submit_act_check;
    env.ops = &ops_checked;
}

/* ---- push frames and online counts ---- */

static struct {
    int calls;
    gw_push_req_t req;
    char endpoint[128], p256dh[128], auth[64], room[64], mode[16], rid[64];
    bool room_null;
    chat_err_t rc; /* what submit_push returns */
    int online[2]; /* +1 and -1 calls */
    char online_user[64];
} push;

static chat_err_t op_submit_push(void *ud, const gw_push_req_t *req, char *why, size_t whylen)
{
    (void)ud;
    push.calls++;
    push.req = *req;
    snprintf(push.endpoint, sizeof push.endpoint, "%s", req->endpoint ? req->endpoint : "");
    snprintf(push.p256dh, sizeof push.p256dh, "%s", req->p256dh ? req->p256dh : "");
    snprintf(push.auth, sizeof push.auth, "%s", req->auth ? req->auth : "");
    snprintf(push.room, sizeof push.room, "%s", req->room ? req->room : "");
    snprintf(push.mode, sizeof push.mode, "%s", req->mode ? req->mode : "");
    snprintf(push.rid, sizeof push.rid, "%s", req->rid ? req->rid : "");
    push.room_null = req->room == NULL;
    if (push.rc == CHAT_ERR_INVALID)
        snprintf(why, whylen, "keys.p256dh: not a P-256 point");
    return push.rc;
}

static void op_online(void *ud, const char *tenant, const char *user, int delta)
{
    (void)ud;
    ck_assert_str_eq(tenant, "acme");
    ck_assert(delta == 1 || delta == -1);
    push.online[delta == 1 ? 0 : 1]++;
    snprintf(push.online_user, sizeof push.online_user, "%s", user);
}

static gw_session_ops_t ops_push;

static void use_push(void)
{
    memset(&push, 0, sizeof push);
    ops_push = ops;
    ops_push.submit_push = op_submit_push;
    ops_push.online = op_online;
    env.ops = &ops_push;
}

/* Each push frame goes to the environment with its fields; the answer is ok {rid}, a store
 * failure error internal, a refusal bad_request with its reason, all echoing the rid. */
START_TEST(test_push_frames)
{
    use_push();
    env.vapid = "BPk";
    authenticate();
    now_us += 1000000; /* within the rate */
    rx("{\"type\":\"push_subscribe\",\"rid\":\"s1\",\"endpoint\":\"https://p.example/x\","
       "\"keys\":{\"p256dh\":\"BAbc\",\"auth\":\"QUJD\"}}");
    ck_assert_int_eq(push.calls, 1);
    ck_assert_int_eq(push.req.type, GW_C_PUSH_SUBSCRIBE);
    ck_assert_str_eq(push.endpoint, "https://p.example/x");
    ck_assert_str_eq(push.p256dh, "BAbc");
    ck_assert_str_eq(push.auth, "QUJD");
    ck_assert_str_eq(push.rid, "s1");
    ck_assert_str_eq(push.req.user, "alice");
    ck_assert_str_eq(push.req.tenant, "acme");
    expect_empty(); /* the answer comes from the worker */
    gw_session_push_done(sess, "s1", CHAT_OK);
    expect("ok", NULL, "s1", NULL);
    gw_session_push_done(sess, "s1", CHAT_ERR_MONGO);
    expect("error", "internal", "s1", NULL);

    now_us += 1000000; /* within the rate */
    rx("{\"type\":\"push_prefs\",\"rid\":\"f1\",\"mode\":\"none\"}");
    ck_assert_int_eq(push.req.type, GW_C_PUSH_PREFS);
    ck_assert(push.room_null);
    ck_assert_str_eq(push.mode, "none");
    now_us += 1000000; /* within the rate */
    rx("{\"type\":\"push_prefs\",\"rid\":\"f2\",\"room\":\"team\",\"mode\":\"default\"}");
    ck_assert_str_eq(push.room, "team");
    ck_assert_str_eq(push.mode, "default");
    now_us += 1000000; /* within the rate */
    rx("{\"type\":\"push_unsubscribe\",\"rid\":\"u1\",\"endpoint\":\"https://p.example/x\"}");
    ck_assert_int_eq(push.req.type, GW_C_PUSH_UNSUBSCRIBE);
    ck_assert_int_eq(push.calls, 4);
    expect_empty();

    push.rc = CHAT_ERR_INVALID;
    now_us += 1000000; /* within the rate */
    rx("{\"type\":\"push_subscribe\",\"rid\":\"s2\",\"endpoint\":\"https://p.example/x\","
       "\"keys\":{\"p256dh\":\"BAbc\",\"auth\":\"QUJD\"}}");
    cJSON *o = next_frame(NULL);
    ck_assert_str_eq(str_of(o, "code"), "bad_request");
    ck_assert_str_eq(str_of(o, "rid"), "s2");
    ck_assert_str_eq(str_of(o, "message"), "keys.p256dh: not a P-256 point");
    cJSON_Delete(o);
    push.rc = CHAT_ERR_NOMEM;
    now_us += 1000000; /* within the rate */
    rx("{\"type\":\"push_unsubscribe\",\"rid\":\"u2\",\"endpoint\":\"https://p.example/x\"}");
    expect("error", "internal", "u2", NULL);
    /* a frame the parser refuses never reaches the environment */
    now_us += 1000000; /* within the rate */
    rx("{\"type\":\"push_prefs\",\"rid\":\"f3\",\"mode\":\"loud\"}");
    expect("error", "bad_request", "f3", NULL);
    ck_assert_int_eq(push.calls, 6);
}
END_TEST

/* welcome carries vapid (when configured) and the token's exp; a gateway without the push op
 * answers push frames bad_request. */
START_TEST(test_welcome_vapid_and_unsupported_push)
{
    env.vapid = "BPk";
    ck_assert_int_eq(rx("{\"type\":\"auth\",\"token\":\"x.y.z\"}"), GW_RX_CONTINUE);
    chat_jwt_claims_t c = claims_make("acme", "alice", NULL, 0);
    gw_session_auth_done(sess, CHAT_OK, &c, NULL);
    chat_jwt_claims_clear(&c);
    cJSON *o = next_frame(NULL);
    ck_assert_str_eq(str_of(o, "type"), "welcome");
    ck_assert_str_eq(str_of(o, "vapid"), "BPk");
    ck_assert_double_eq(cJSON_GetObjectItem(o, "exp")->valuedouble, 2000000000.0);
    cJSON_Delete(o);
    rx("{\"type\":\"push_prefs\",\"rid\":\"f1\",\"mode\":\"all\"}");
    expect("error", "bad_request", "f1", NULL);
}
END_TEST

/* An authenticated session counts +1 after its welcome and -1 when it goes; one that never
 * got its welcome counts nothing. */
START_TEST(test_online_counts)
{
    use_push();
    gw_session_t *other = gw_session_new(&env, "0.abc.2", NULL);
    ck_assert_int_eq(
        gw_session_rx(other, "{\"type\":\"auth\",\"token\":\"x.y.z\"}", 31, false, true, 0),
        GW_RX_CONTINUE);
    gw_session_free(other); /* still authenticating */
    ck_assert_int_eq(push.online[0] + push.online[1], 0);

    authenticate_as("bob", NULL, 0);
    ck_assert_int_eq(push.online[0], 1);
    ck_assert_int_eq(push.online[1], 0);
    ck_assert_str_eq(push.online_user, "bob");
    gw_session_free(sess);
    sess = NULL;
    ck_assert_int_eq(push.online[1], 1);
    ck_assert_str_eq(push.online_user, "bob");

    /* refused tokens count nothing */
    sess = gw_session_new(&env, "0.abc.3", NULL);
    rx("{\"type\":\"auth\",\"token\":\"x.y.z\"}");
    gw_session_auth_done(sess, CHAT_ERR_UNAUTHORIZED, NULL, "bad signature");
    ck_assert_int_eq(push.online[0], 1);
}
END_TEST

/* Answers the pending join of general as the worker would: joined with kind, or refused. */
static void join_answer(gw_room_kind_t kind, bool refused, gw_code_t code, const char *message)
{
    gw_join_result_t res = {.room = "general",
                            .rid = fake.join_rid,
                            .gen = fake.join.gen,
                            .refused = refused,
                            .refuse_code = code,
                            .refuse_message = message,
                            .kind = kind};
    gw_session_join_done(sess, &res);
}

/* A refused join (not a member, or a deleted room) ends the subscription: its error, the
 * registration released, no live delivery afterwards. */
START_TEST(test_join_refused)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j1\"}");
    ck_assert_int_eq(fake.join.kind, GW_ROOM_KIND_UNKNOWN);
    ck_assert(!fake.join.dm);
    deliver_live(1); /* held meanwhile */
    join_answer(GW_ROOM_KIND_PRIVATE, true, GW_E_FORBIDDEN, "not a member");
    cJSON *e = next_frame(NULL);
    ck_assert_str_eq(str_of(e, "code"), "forbidden");
    ck_assert_str_eq(str_of(e, "message"), "not a member");
    ck_assert_str_eq(str_of(e, "rid"), "j1");
    cJSON_Delete(e);
    expect_empty();
    ck_assert_int_eq(fake.releases, 1);
    ck_assert_int_eq(gw_rooms_kind(env.rooms, "acme", "general"), GW_ROOM_KIND_UNKNOWN);
    deliver_live(2);
    expect_empty();

    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j2\"}");
    join_answer(GW_ROOM_KIND_UNKNOWN, true, GW_E_NOT_FOUND, "room not found");
    expect("error", "not_found", "j2", NULL);
    rx("{\"type\":\"join\",\"room\":\"dm:alice:bob\"}");
    ck_assert(fake.join.dm);
}
END_TEST

/* Sends: a dm room and a joined room need no lookup; an unjoined room whose kind the gateway
 * does not know is looked up first, then produced (public) or refused (private: join first;
 * deleted: not found); a finished join caches the kind for the room's other connections
 * until its last subscription goes. */
START_TEST(test_send_rules_of_private_rooms)
{
    use_act_checks();
    authenticate();
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c1\",\"text\":\"hi\"}");
    ck_assert_int_eq(checks.calls, 1);
    ck_assert_int_eq(fake.sends, 0);
    ck_assert_str_eq(checks.cid, "c1");
    ck_assert(strstr(checks.frame, "\"text\":\"hi\"") != NULL);
    act_answer(GW_ROOM_KIND_PRIVATE, false);
    expect("error", "forbidden", NULL, "c1");
    act_answer(GW_ROOM_KIND_PUBLIC, true);
    expect("error", "not_found", NULL, "c1");
    act_answer(GW_ROOM_KIND_PUBLIC, false);
    ck_assert_int_eq(fake.sends, 1);
    ck_assert_str_eq(fake.send_cid, "c1");
    expect_empty();

    rx("{\"type\":\"send\",\"room\":\"dm:alice:bob\",\"cid\":\"c2\",\"text\":\"hi\"}");
    ck_assert_int_eq(fake.sends, 2);
    ck_assert_int_eq(checks.calls, 1);

    /* joined: no lookup, and the kind is known to every connection of the gateway */
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j1\"}");
    join_answer(GW_ROOM_KIND_PRIVATE, false, GW_E_BAD_REQUEST, NULL);
    expect("joined", NULL, "j1", NULL);
    ck_assert_int_eq(gw_rooms_kind(env.rooms, "acme", "general"), GW_ROOM_KIND_PRIVATE);
    now_us += 10000000;
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c3\",\"text\":\"hi\"}");
    ck_assert_int_eq(fake.sends, 3);
    ck_assert_int_eq(checks.calls, 1);

    gw_session_t *other = gw_session_new(&env, "0.abc.2", NULL);
    gw_session_t *mine = sess;
    sess = other;
    authenticate_as("bob", NULL, 0);
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c4\",\"text\":\"hi\"}");
    expect("error", "forbidden", NULL, "c4");
    ck_assert_int_eq(checks.calls, 1);
    ck_assert_int_eq(fake.sends, 3);
    gw_session_free(other);
    sess = mine;

    /* the cache goes with the room's last subscription */
    rx("{\"type\":\"leave\",\"room\":\"general\"}");
    expect("left", NULL, NULL, NULL);
    ck_assert_int_eq(gw_rooms_kind(env.rooms, "acme", "general"), GW_ROOM_KIND_UNKNOWN);
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c5\",\"text\":\"hi\"}");
    ck_assert_int_eq(checks.calls, 2);

    /* history: no check once joined or in a dm room; else the kind travels with it */
    now_us += 10000000;
    rx("{\"type\":\"history\",\"room\":\"general\",\"rid\":\"h1\"}");
    ck_assert(!fake.history.allowed);
    ck_assert_str_eq(fake.history.user, "alice");
    rx("{\"type\":\"history\",\"room\":\"dm:alice:bob\",\"rid\":\"h2\"}");
    ck_assert(fake.history.allowed);
    gw_session_refused(sess, GW_E_FORBIDDEN, "not a member", "h1", NULL);
    expect("error", "forbidden", "h1", NULL);
}
END_TEST

/* Edits, deletes, reactions and read marks follow the rules of sends: outside a joined room
 * whose kind is unknown they wait for the lookup, a private room refuses them (join first). */
START_TEST(test_actions_of_private_rooms)
{
    use_act_checks();
    authenticate();
    rx("{\"type\":\"react\",\"room\":\"general\",\"id\":\"0123456789abcdef01234567\","
       "\"emoji\":\"x\",\"on\":true,\"rid\":\"r1\"}");
    ck_assert_int_eq(checks.calls, 1);
    ck_assert_str_eq(checks.cid, "");
    ck_assert_int_eq(fake.updates, 0);
    act_answer(GW_ROOM_KIND_PRIVATE, false);
    expect("error", "forbidden", "r1", NULL);
    ck_assert_int_eq(fake.updates, 0);
    act_answer(GW_ROOM_KIND_PUBLIC, false);
    ck_assert_int_eq(fake.updates, 1);
    expect_empty();

    rx("{\"type\":\"read\",\"room\":\"general\",\"seq\":3,\"rid\":\"m1\"}");
    ck_assert_int_eq(checks.calls, 2);
    ck_assert_int_eq(fake.reads, 0);
    act_answer(GW_ROOM_KIND_PUBLIC, true);
    expect("error", "not_found", "m1", NULL);
    act_answer(GW_ROOM_KIND_PUBLIC, false);
    ck_assert_int_eq(fake.reads, 1);

    /* a known private room refuses at once */
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j1\"}");
    join_answer(GW_ROOM_KIND_PRIVATE, false, GW_E_BAD_REQUEST, NULL);
    expect("joined", NULL, "j1", NULL);
    gw_session_t *other = gw_session_new(&env, "0.abc.2", NULL);
    gw_session_t *mine = sess;
    sess = other;
    authenticate_as("bob", NULL, 0);
    rx("{\"type\":\"delete\",\"room\":\"general\",\"id\":\"0123456789abcdef01234567\","
       "\"rid\":\"d1\"}");
    expect("error", "forbidden", "d1", NULL);
    ck_assert_int_eq(checks.calls, 2);
    gw_session_free(other);
    sess = mine;
}
END_TEST

/* A connection's sends are acted on in the order it sent them: one sent before a join waits
 * for its lookup, and one sent after the join (which alone would go at once) waits behind it;
 * once every lookup of the room is answered, sends in the joined room go at once again. */
START_TEST(test_actions_keep_order_through_checks)
{
    use_act_checks();
    authenticate();
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c1\",\"text\":\"one\"}");
    ck_assert_int_eq(checks.calls, 1);
    char first[sizeof checks.frame];
    snprintf(first, sizeof first, "%s", checks.frame);

    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j1\"}");
    join_answer(GW_ROOM_KIND_PUBLIC, false, GW_E_BAD_REQUEST, NULL);
    expect("joined", NULL, "j1", NULL);
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c2\",\"text\":\"two\"}");
    ck_assert_int_eq(checks.calls, 2); /* behind c1, although joined */
    ck_assert_int_eq(fake.sends, 0);

    gw_act_req_t req = {.room = "general", .cid = "c1", .frame = first, .frame_len = strlen(first)};
    gw_session_act_checked(sess, &req, GW_ROOM_KIND_PUBLIC, false);
    ck_assert_int_eq(fake.sends, 1);
    ck_assert_str_eq(fake.send_cid, "c1");
    act_answer(GW_ROOM_KIND_PUBLIC, false);
    ck_assert_int_eq(fake.sends, 2);
    ck_assert_str_eq(fake.send_cid, "c2");
    expect_empty();

    now_us += 10000000;
    rx("{\"type\":\"send\",\"room\":\"general\",\"cid\":\"c3\",\"text\":\"three\"}");
    ck_assert_int_eq(checks.calls, 2); /* nothing under way: joined, at once */
    ck_assert_int_eq(fake.sends, 3);
    ck_assert_str_eq(fake.send_cid, "c3");
}
END_TEST

static void end_cb(void *ud, void *owner)
{
    gw_session_room_ended(owner, "general", ud);
}

/* A notice ends a subscription: left {room, reason}, the registration released, nothing of
 * the room after it; the user's other rooms stay. */
START_TEST(test_room_ended_by_notice)
{
    authenticate();
    rx("{\"type\":\"join\",\"room\":\"general\",\"rid\":\"j1\"}");
    join_answer(GW_ROOM_KIND_PRIVATE, false, GW_E_BAD_REQUEST, NULL);
    expect("joined", NULL, "j1", NULL);
    rx("{\"type\":\"join\",\"room\":\"other\"}");
    deliver_live(1);
    expect_msg_seq(1);
    ck_assert_uint_eq(gw_rooms_end(env.rooms, "acme", "general", "bob", end_cb, "removed"), 0);
    ck_assert_uint_eq(gw_rooms_end(env.rooms, "acme", "general", "alice", end_cb, "removed"), 1);
    cJSON *left = next_frame(NULL);
    ck_assert_str_eq(str_of(left, "type"), "left");
    ck_assert_str_eq(str_of(left, "room"), "general");
    ck_assert_str_eq(str_of(left, "reason"), "removed");
    ck_assert_ptr_null(str_of(left, "rid"));
    cJSON_Delete(left);
    ck_assert_int_eq(fake.releases, 1);
    ck_assert_int_eq(fake.leaves, 0); /* the user's room list is the api's business */
    deliver_live(2);
    expect_empty();
    ck_assert_uint_eq(gw_rooms_end(env.rooms, "acme", "general", NULL, end_cb, "deleted"), 0);
    gw_session_room_ended(sess, "general", "deleted"); /* not subscribed: nothing */
    expect_empty();
    ck_assert_uint_eq(gw_rooms_count(env.rooms), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_session");
    TCase *tc = tcase_create("session");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_first_frame_must_be_auth);
    tcase_add_test(tc, test_first_frame_garbage_or_binary);
    tcase_add_test(tc, test_malformed_auth);
    tcase_add_test(tc, test_auth_success);
    tcase_add_test(tc, test_auth_refused_and_store_failure);
    tcase_add_test(tc, test_auth_timeout);
    tcase_add_test(tc, test_connect_results_counted_once);
    tcase_add_test(tc, test_sends_pending_until_answered);
    tcase_add_test(tc, test_frames_sent_by_type);
    tcase_add_test(tc, test_auth_timeout_after_auth_is_noop);
    tcase_add_test(tc, test_auth_timeout_while_verifying);
    tcase_add_test(tc, test_frames_during_auth_wait);
    tcase_add_test(tc, test_auth_again_is_bad_request);
    tcase_add_test(tc, test_refresh_ok_replaces_claims);
    tcase_add_test(tc, test_refresh_answered_at_once);
    tcase_add_test(tc, test_token_expiry);
    tcase_add_test(tc, test_refresh_other_user_refused);
    tcase_add_test(tc, test_refresh_bad_token_refused);
    tcase_add_test(tc, test_refresh_before_auth_and_unsupported);
    tcase_add_test(tc, test_refresh_one_at_a_time);
    tcase_add_test(tc, test_refresh_closed_while_verifying);
    tcase_add_test(tc, test_fragments_assembled);
    tcase_add_test(tc, test_frame_too_big_announced);
    tcase_add_test(tc, test_fragmented_total_too_big);
    tcase_add_test(tc, test_frame_at_limit_accepted);
    tcase_add_test(tc, test_bad_requests_keep_connection);
    tcase_add_test(tc, test_rate_limit_and_close);
    tcase_add_test(tc, test_rate_persistent_excess_closes);
    tcase_add_test(tc, test_rate_burst_forgiven);
    tcase_add_test(tc, test_rooms_claim_and_dm_rules);
    tcase_add_test(tc, test_dm_membership);
    tcase_add_test(tc, test_join_replay_then_held);
    tcase_add_test(tc, test_join_stale_or_failed_result);
    tcase_add_test(tc, test_join_leave_join_stale_answer);
    tcase_add_test(tc, test_refused_requests_are_answered);
    tcase_add_test(tc, test_join_without_since_drops_older_held);
    tcase_add_test(tc, test_replay_trimmed_to_queue_room);
    tcase_add_test(tc, test_leave_is_idempotent);
    tcase_add_test(tc, test_free_releases_subscriptions);
    tcase_add_test(tc, test_send_and_failures);
    tcase_add_test(tc, test_typing_joined_and_throttled);
    tcase_add_test(tc, test_history_request_and_answer);
    tcase_add_test(tc, test_read_rooms_leave);
    tcase_add_test(tc, test_queue_overflow_closes_1008);
    tcase_add_test(tc, test_close_flush_writes_queue_first);
    tcase_add_test(tc, test_join_refused);
    tcase_add_test(tc, test_send_rules_of_private_rooms);
    tcase_add_test(tc, test_actions_of_private_rooms);
    tcase_add_test(tc, test_actions_keep_order_through_checks);
    tcase_add_test(tc, test_room_ended_by_notice);
    tcase_add_test(tc, test_push_frames);
    tcase_add_test(tc, test_welcome_vapid_and_unsupported_push);
    tcase_add_test(tc, test_online_counts);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
