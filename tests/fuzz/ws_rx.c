/* Fuzz target ws_rx: WebSocket message assembly and the per-connection protocol state machine
 * (services/gateway/session.c, gw_session_rx), driven through its public API with a fake
 * environment as tests/unit/gateway/test_session.c does. The input is a sequence of chunks,
 * each [flags][length][length bytes]: flags bit 0 binary, bit 1 final (the chunk ends the
 * message), bits 2-3 how many bytes libwebsockets says remain of the frame (0, 1, the size
 * limit, or more than it), bits 4-7 how far the clock moves first (rate limit, typing
 * throttle). Whatever the session asks of its environment (auth, refresh, join, history,
 * rooms, push, room access lookups) is answered after the chunk, successfully, so that
 * frames reach every state; everything it queues is written out and freed. */
#include "services/gateway/rooms.h"
#include "services/gateway/session.h"
#include "tests/fuzz/fuzz.h"

#define MAX_FRAME 4096
#define SEND_QUEUE 32
#define PENDING_MAX 16

typedef enum { P_AUTH, P_REFRESH, P_JOIN, P_HISTORY, P_ROOMS, P_PUSH, P_ACT } pending_kind_t;

typedef struct pending {
    pending_kind_t kind;
    char room[CHAT_ROOM_MAX * 4 + 1];
    char rid[256];
    char cid[CHAT_CID_MAX * 4 + 1];
    char *frame;
    size_t frame_len;
    uint32_t gen;
} pending_t;

static pending_t pend[PENDING_MAX];
static size_t npend;
static int64_t clock_us;

static int64_t fake_now(void)
{
    return clock_us;
}

static pending_t *pend_add(pending_kind_t kind, const char *room, const char *rid)
{
    if (npend == PENDING_MAX)
        return NULL;
    pending_t *p = &pend[npend++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    snprintf(p->room, sizeof p->room, "%s", room != NULL ? room : "");
    snprintf(p->rid, sizeof p->rid, "%s", rid != NULL ? rid : "");
    return p;
}

static void op_want_write(void *ud, gw_session_t *s)
{
    (void)ud;
    (void)s;
}

static void op_rx_pause(void *ud, gw_session_t *s, bool pause)
{
    (void)ud;
    (void)s;
    (void)pause;
}

static void op_submit_auth(void *ud, gw_session_t *s, const char *token)
{
    (void)ud;
    (void)s;
    (void)token;
    pend_add(P_AUTH, NULL, NULL);
}

static void op_submit_refresh(void *ud, gw_session_t *s, const char *token)
{
    (void)ud;
    (void)s;
    (void)token;
    pend_add(P_REFRESH, NULL, NULL);
}

static chat_err_t op_submit_join(void *ud, const gw_join_req_t *req)
{
    (void)ud;
    pending_t *p = pend_add(P_JOIN, req->room, req->rid);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    p->gen = req->gen;
    return CHAT_OK;
}

static chat_err_t op_submit_history(void *ud, const gw_history_req_t *req)
{
    (void)ud;
    return pend_add(P_HISTORY, req->room, req->rid) != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

static chat_err_t op_submit_act_check(void *ud, const gw_act_req_t *req)
{
    (void)ud;
    pending_t *p = pend_add(P_ACT, req->room, req->rid);
    if (p == NULL)
        return CHAT_ERR_NOMEM;
    snprintf(p->cid, sizeof p->cid, "%s", req->cid != NULL ? req->cid : "");
    p->frame = fuzz_strndup((const uint8_t *)req->frame, req->frame_len);
    p->frame_len = req->frame_len;
    return CHAT_OK;
}

static chat_err_t op_send(void *ud, gw_session_t *s, const char *room, const char *cid,
                          const char *text)
{
    (void)ud;
    (void)s;
    FUZZ_ASSERT(room != NULL && cid != NULL && text != NULL, "send without room/cid/text");
    return CHAT_OK;
}

static chat_err_t op_update(void *ud, gw_session_t *s, const gw_cframe_t *f)
{
    (void)ud;
    (void)s;
    FUZZ_ASSERT(f->type == GW_C_EDIT || f->type == GW_C_DELETE || f->type == GW_C_REACT,
                "update of type %s", gw_ctype_name(f->type));
    return CHAT_OK;
}

static void op_typing(void *ud, gw_session_t *s, const char *room)
{
    (void)ud;
    (void)s;
    (void)room;
}

static chat_err_t op_send_read(void *ud, gw_session_t *s, const char *room, int64_t seq,
                               const char *rid)
{
    (void)ud;
    (void)s;
    (void)room;
    (void)rid;
    FUZZ_ASSERT(seq > 0, "read seq %lld", (long long)seq);
    return CHAT_OK;
}

static chat_err_t op_submit_rooms(void *ud, const gw_rooms_req_t *req)
{
    (void)ud;
    return pend_add(P_ROOMS, NULL, req->rid) != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

static chat_err_t op_submit_push(void *ud, const gw_push_req_t *req, char *why, size_t whylen)
{
    (void)ud;
    (void)why;
    (void)whylen;
    return pend_add(P_PUSH, NULL, req->rid) != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

static const gw_session_ops_t ops = {
    .want_write = op_want_write,
    .rx_pause = op_rx_pause,
    .submit_auth = op_submit_auth,
    .submit_refresh = op_submit_refresh,
    .submit_join = op_submit_join,
    .submit_history = op_submit_history,
    .submit_act_check = op_submit_act_check,
    .send = op_send,
    .update = op_update,
    .typing = op_typing,
    .send_read = op_send_read,
    .submit_rooms = op_submit_rooms,
    .submit_push = op_submit_push,
};

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
    (void)room_empty;
    (void)user_gone;
}

static chat_jwt_claims_t claims_make(void)
{
    chat_jwt_claims_t c;
    memset(&c, 0, sizeof c);
    snprintf(c.tenant, sizeof c.tenant, "acme");
    snprintf(c.user, sizeof c.user, "alice");
    c.exp = 2000000000;
    return c;
}

/* Answers what the session asked for, in order (answers may ask for more: bounded). */
static void answer(gw_session_t *s)
{
    for (size_t i = 0; i < npend; i++) {
        pending_t *p = &pend[i];
        const char *rid = p->rid[0] != '\0' ? p->rid : NULL;
        chat_jwt_claims_t c = claims_make();
        switch (p->kind) {
        case P_AUTH:
            gw_session_auth_done(s, CHAT_OK, &c, NULL);
            break;
        case P_REFRESH:
            gw_session_refresh_done(s, CHAT_OK, &c, NULL);
            break;
        case P_JOIN: {
            gw_join_result_t res = {.room = p->room,
                                    .rid = rid,
                                    .gen = p->gen,
                                    .kind = GW_ROOM_KIND_PUBLIC,
                                    .latest = 3,
                                    .useq = 1,
                                    .unread = 1};
            gw_session_join_done(s, &res);
            break;
        }
        case P_HISTORY:
            gw_session_history_done(s, rid, NULL);
            break;
        case P_ROOMS:
            gw_session_rooms_done(s, rid, NULL, GW_E_INTERNAL, "rooms unavailable");
            break;
        case P_PUSH:
            gw_session_push_done(s, rid, CHAT_OK);
            break;
        case P_ACT: {
            gw_act_req_t req = {.conn = gw_session_id(s),
                                .tenant = gw_session_tenant(s),
                                .room = p->room,
                                .cid = p->cid[0] != '\0' ? p->cid : NULL,
                                .rid = rid,
                                .frame = p->frame,
                                .frame_len = p->frame_len};
            gw_session_act_checked(s, &req, GW_ROOM_KIND_PUBLIC, false);
            break;
        }
        }
        chat_jwt_claims_clear(&c);
        free(p->frame);
        p->frame = NULL;
    }
    npend = 0;
}

/* Writes out what is queued. */
static bool drain(gw_session_t *s)
{
    for (;;) {
        gw_buf_t *buf = NULL;
        gw_write_t w = gw_session_next_write(s, &buf);
        if (w == GW_WRITE_NONE)
            return true;
        if (w == GW_WRITE_CLOSE)
            return false;
        FUZZ_ASSERT(buf != NULL && buf->len > 0, "empty frame to write");
        gw_buf_unref(buf);
    }
}

FUZZ_QUIET_INIT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_rooms_sink_t sink = {sink_deliver, sink_overflow, sink_released, NULL};
    gw_session_env_t env = {
        .limits = {.max_frame_bytes = MAX_FRAME,
                   .max_text_chars = 200,
                   .send_queue = SEND_QUEUE,
                   .rate_per_sec = 20,
                   .rate_burst = 30,
                   .rate_close_after = 10,
                   .history_default = 50,
                   .auth_timeout_s = 10,
                   .typing_interval_us = 2000000},
        .ops = &ops,
        .rooms = gw_rooms_new(SEND_QUEUE, &sink),
        .now_us = fake_now,
        .vapid = "BFuzzVapidKey",
    };
    if (env.rooms == NULL)
        abort();
    clock_us = 1000000;
    npend = 0;
    gw_session_t *s = gw_session_new(&env, "0.fuzz.1", NULL);
    if (s == NULL)
        abort();
    bool open = true;
    while (open && size >= 2) {
        uint8_t flags = fuzz_take_byte(&data, &size);
        size_t n = fuzz_take_byte(&data, &size);
        if (n > size)
            n = size;
        static const size_t remaining_of[4] = {0, 1, MAX_FRAME, MAX_FRAME * 2};
        clock_us += (int64_t)(flags >> 4) * 100000;
        gw_rx_result_t r = gw_session_rx(s, data, n, (flags & 1) != 0, (flags & 2) != 0,
                                         remaining_of[(flags >> 2) & 3]);
        data += n;
        size -= n;
        if (r == GW_RX_CLOSE) {
            FUZZ_ASSERT(gw_session_close_code(s) != 0, "close without a code");
            break;
        }
        answer(s);
        open = drain(s) && !gw_session_closing(s);
    }
    for (size_t i = 0; i < npend; i++)
        free(pend[i].frame);
    npend = 0;
    gw_session_free(s);
    gw_rooms_free(env.rooms);
    return 0;
}
