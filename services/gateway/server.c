/* The libwebsockets side of the gateway: one context with one service loop (libuv event
 * library when its plugin loads, lws's poll loop otherwise), the protocol callback that
 * feeds sessions, the write path, the loop's timers (heartbeat, stop check) and the graceful
 * shutdown. Other threads only push tasks to the inbox and wake the loop with
 * lws_cancel_service.
 *
 * The write path: a socket with frames queued goes on a list of sockets to flush; once the
 * event at hand is handled (a batch of deliveries, a received message), each is written at
 * once, all its queued frames framed into one buffer and sent with one system call, as
 * uWebSockets does. Only a socket that cannot take everything (lws then buffers the rest and
 * asks for POLLOUT itself) waits for LWS_CALLBACK_SERVER_WRITEABLE. lws's own rule, writing
 * only in that callback, cost a POLLOUT request, an epoll change, a wake and a callback per
 * socket per frame; lws_write is safe outside it (lws 4.1 appends to a partially sent
 * buffer and drains that first), which CHAT_GATEWAY_WRITE_MODE=writable keeps for
 * comparison. */
#include "services/gateway/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <libwebsockets.h>

#include "common/clock.h"
#include "common/events.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/tls.h"
#include "services/gateway/history.h"
#include "services/gateway/http.h"
#include "services/gateway/join.h"
#include "services/gateway/online.h"
#include "services/gateway/presence.h"
#include "services/gateway/push.h"
#include "services/gateway/registrations.h"
#include "services/gateway/room_list.h"
#include "services/gateway/act_check.h"
#include "services/gateway/drain.h"

_Static_assert(GW_BUF_PRE >= LWS_PRE, "frame buffers need the headroom lws_write uses");

#define WS_PATH "/v1/ws"
#define PROTOCOL_NAME "chat"
#define RX_CHUNK                                                                                   \
    1024                     /* lws hands messages over in chunks of at most this; it is           \
                                each connection's receive buffer, so it is kept small */
#define DRAIN_MAX 256        /* inbox tasks per wake, so sockets are served in between */
#define WRITE_BURST 256      /* frames one flush of a socket may send */
#define WRITE_BUF 65536      /* bytes of frames gathered into one system call */
#define WS_HEADER_MAX 10     /* a server frame's header: FIN|opcode, length (no mask) */
#define TICK_US (200 * 1000) /* deadlines, stop check and shutdown progress */
#define CLOSE_GRACE_MS 5000  /* a closing socket that cannot flush */
#define SHUTDOWN_GRACE_US (3 * LWS_USEC_PER_SEC)
#define AUTH_UNREAD_GRACE_MS 1000 /* the auth deadline passed with bytes unread: the loop */
#define AUTH_UNREAD_GRACES 5      /* was behind, not the client; wait up to this often */
#define DRAIN_RETRY_AFTER_S 5     /* Retry-After of an upgrade refused while draining */
#define LOG_LINE_MAX 512

/* lws keeps one of these per connection (zeroed); the session lives on our heap. */
typedef struct conn_data {
    gw_session_t *session;
    struct lws *wsi;
    struct conn_data *dirty_prev, *dirty_next; /* the loop's list of sockets to flush */
    bool dirty;                                /* on that list */
    bool await_writable;  /* the socket is full (or the burst ran out): flush when writable */
    bool close_timer;     /* the close grace deadline replaced the others */
    bool close_started;   /* lws has the close (frame sent, waiting for the peer's) */
    bool peer_closed;     /* the peer sent a close frame first, with peer_code */
    uint16_t peer_code;   /* its code (1005 if it had none) */
    uint8_t auth_graces;  /* auth deadlines extended because the client's bytes were unread */
    gw_timeout_t timeout; /* its one deadline: auth, keepalive or close grace */
    gw_timeout_t expiry;  /* its token's exp, once authenticated (expiry.c) */
    int64_t last_rx_ms;   /* monotonic: the last frame (or pong) received */
    int64_t ping_sent_ms; /* the keepalive ping not answered yet; 0 if none */
    bool unauth;          /* counted in gw->unauth (and its address's count) */
    char ip[48];          /* the peer's address, when CHAT_GATEWAY_UNAUTH_PER_IP_MAX is on */
} conn_data_t;
_Static_assert(sizeof(gw_http_reply_t) <= sizeof(conn_data_t),
               "an HTTP request's reply lives in the per-connection memory of a WebSocket");

/* The loop's timers and shutdown progress; lives on gw_server_run's stack, timers find it
 * again with lws_container_of. */
typedef struct server_loop {
    gw_gateway_t *gw;
    lws_sorted_usec_list_t tick;
    lws_sorted_usec_list_t heartbeat;
    int64_t shutdown_deadline_us;
    bool destroy_called;
    lws_sorted_usec_list_t drain; /* the drain's steps */
    int64_t drain_start_us;       /* when the drain began */
    int64_t drain_end_us;         /* its window ends here */
    size_t drain_open;            /* connections open when it began */
    size_t drain_done;            /* of them, closed by its steps so far */
} server_loop_t;

static gw_gateway_t *gateway_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- lws logs into the JSON log ---- */

static void lws_log_emit(int level, const char *line)
{
    char msg[LOG_LINE_MAX];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    if (level & LLL_ERR)
        chat_log_error(msg, CHAT_F_STR("src", "lws"));
    else if (level & LLL_WARN)
        chat_log_warn(msg, CHAT_F_STR("src", "lws"));
    else if (level & (LLL_NOTICE | LLL_USER))
        chat_log_info(msg, CHAT_F_STR("src", "lws"));
    else
        chat_log_debug(msg, CHAT_F_STR("src", "lws"));
}

static void lws_log_setup(void)
{
    int levels = LLL_ERR;
    if (chat_log_enabled(CHAT_LOG_WARN))
        levels |= LLL_WARN;
    if (chat_log_enabled(CHAT_LOG_INFO))
        levels |= LLL_NOTICE | LLL_USER;
    if (chat_log_enabled(CHAT_LOG_DEBUG))
        levels |= LLL_INFO;
    lws_set_log_level(levels, lws_log_emit);
}

/* ---- session environment ---- */

/* ---- the write path ---- */

static void dirty_add(gw_gateway_t *gw, conn_data_t *cd)
{
    if (cd->dirty)
        return;
    cd->dirty = true;
    cd->dirty_prev = NULL;
    cd->dirty_next = gw->dirty;
    if (gw->dirty != NULL)
        ((conn_data_t *)gw->dirty)->dirty_prev = cd;
    gw->dirty = cd;
}

static void dirty_remove(gw_gateway_t *gw, conn_data_t *cd)
{
    if (!cd->dirty)
        return;
    if (cd->dirty_prev != NULL)
        cd->dirty_prev->dirty_next = cd->dirty_next;
    else
        gw->dirty = cd->dirty_next;
    if (cd->dirty_next != NULL)
        cd->dirty_next->dirty_prev = cd->dirty_prev;
    cd->dirty = false;
    cd->dirty_prev = cd->dirty_next = NULL;
}

/* The header of an unmasked server text frame of len bytes; returns its size. */
static size_t ws_header(unsigned char *h, size_t len)
{
    h[0] = 0x81; /* FIN, text */
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Sends bytes already framed; lws keeps what the socket did not take and asks for POLLOUT.
 * False if the socket failed. */
static bool raw_write(gw_gateway_t *gw, struct lws *wsi, unsigned char *bytes, size_t len)
{
    chat_counter_inc(gw->stats.socket_writes);
    return lws_write(wsi, bytes, len, LWS_WRITE_RAW) >= 0;
}

/* A frame too big for the gather buffer: lws frames it in its headroom. */
static bool big_write(gw_gateway_t *gw, struct lws *wsi, gw_buf_t *buf)
{
    chat_counter_inc(gw->stats.socket_writes);
    int n = lws_write(wsi, gw_buf_payload(buf), buf->len, LWS_WRITE_TEXT);
    return n >= 0;
}

/* Writes what the session has queued: its frames framed into the gather buffer and sent
 * with one system call per WRITE_BUF bytes, while lws holds nothing unsent for the socket.
 * Stops at WRITE_BURST frames (other sockets get their turn) or when the socket is full;
 * then the rest waits for the writable callback. Returns false if the socket failed (the
 * caller drops it). */
static bool conn_flush(gw_gateway_t *gw, struct lws *wsi, conn_data_t *cd)
{
    gw_session_t *s = cd->session;
    if (s == NULL || cd->close_started)
        return true;
    unsigned char *out = gw->write_buf;
    size_t used = 0;
    int frames = 0;
    bool ok = true;
    while (ok && frames < WRITE_BURST && !lws_partial_buffered(wsi)) {
        gw_buf_t *buf = NULL;
        gw_write_t w = gw_session_next_write(s, &buf);
        if (w == GW_WRITE_NONE)
            break;
        if (w == GW_WRITE_CLOSE) {
            /* Returning -1 from a callback would drop the socket without a close frame;
             * the timer callback closes politely once what is gathered is out. */
            if (used > 0)
                ok = raw_write(gw, wsi, out, used);
            used = 0;
            lws_set_timer_usecs(wsi, 1);
            return ok;
        }
        if (used > 0 && used + WS_HEADER_MAX + buf->len > WRITE_BUF) {
            ok = raw_write(gw, wsi, out, used);
            used = 0;
        }
        if (ok && WS_HEADER_MAX + buf->len > WRITE_BUF) {
            ok = big_write(gw, wsi, buf);
        } else if (ok) {
            used += ws_header(out + used, buf->len);
            memcpy(out + used, gw_buf_payload(buf), buf->len);
            used += buf->len;
        }
        gw_buf_unref(buf);
        frames++;
    }
    if (ok && used > 0)
        ok = raw_write(gw, wsi, out, used);
    chat_counter_add(gw->stats.writes, (uint64_t)frames);
    if (!ok)
        return false;
    if (lws_partial_buffered(wsi) || gw_session_queued(s) > 0) {
        cd->await_writable = true;
        lws_callback_on_writable(wsi);
    }
    return true;
}

/* Flushes every socket that has frames queued and is not waiting for POLLOUT. A socket
 * whose write failed is closed from its own context (lws kills it asynchronously). */
static void flush_dirty(gw_gateway_t *gw)
{
    while (gw->dirty != NULL) {
        conn_data_t *cd = gw->dirty;
        dirty_remove(gw, cd);
        if (cd->await_writable || cd->close_started)
            continue;
        if (!conn_flush(gw, cd->wsi, cd))
            lws_set_timeout(cd->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
    }
}

/* ---- the edge: connections not authenticated yet ---- */

#define UNAUTH_REFUSED_TOTAL 0  /* CHAT_GATEWAY_UNAUTH_MAX reached */
#define UNAUTH_REFUSED_PER_IP 1 /* CHAT_GATEWAY_UNAUTH_PER_IP_MAX reached */
#define UNAUTH_RETRY_AFTER_S 2  /* Retry-After of an upgrade refused by those caps */

/* An upgrade may go on unless a cap of unauthenticated WebSockets is reached; then the
 * reason (UNAUTH_REFUSED_*). -1: it may. */
static int unauth_refusal(gw_gateway_t *gw, struct lws *wsi)
{
    if (gw->cfg->unauth_max > 0 && gw->unauth >= (size_t)gw->cfg->unauth_max)
        return UNAUTH_REFUSED_TOTAL;
    if (gw->cfg->unauth_per_ip_max > 0) {
        char ip[48];
        lws_get_peer_simple(wsi, ip, sizeof ip);
        uintptr_t n = (uintptr_t)chat_strmap_get(gw->unauth_ips, ip);
        if (n >= (uintptr_t)gw->cfg->unauth_per_ip_max)
            return UNAUTH_REFUSED_PER_IP;
    }
    return -1;
}

/* A new WebSocket: counted until it authenticates or closes. */
static void unauth_add(gw_gateway_t *gw, struct lws *wsi, conn_data_t *cd)
{
    cd->unauth = true;
    gw->unauth++;
    chat_gauge_set(gw->unauth_gauge, (double)gw->unauth);
    if (gw->cfg->unauth_per_ip_max <= 0)
        return;
    lws_get_peer_simple(wsi, cd->ip, sizeof cd->ip);
    uintptr_t n = (uintptr_t)chat_strmap_get(gw->unauth_ips, cd->ip);
    if (!chat_strmap_put(gw->unauth_ips, cd->ip, (void *)(n + 1)))
        cd->ip[0] = '\0'; /* out of memory: this one is not counted per address */
}

static void unauth_done(gw_gateway_t *gw, conn_data_t *cd)
{
    if (!cd->unauth)
        return;
    cd->unauth = false;
    gw->unauth--;
    chat_gauge_set(gw->unauth_gauge, (double)gw->unauth);
    if (gw->cfg->unauth_per_ip_max <= 0 || cd->ip[0] == '\0')
        return;
    uintptr_t n = (uintptr_t)chat_strmap_get(gw->unauth_ips, cd->ip);
    if (n <= 1)
        chat_strmap_remove(gw->unauth_ips, cd->ip);
    else
        chat_strmap_put(gw->unauth_ips, cd->ip, (void *)(n - 1));
}

/* The session's token expires at exp_s (welcome, refresh): its deadline on the wheel. The
 * first call is the welcome: the connection is authenticated from now on. */
static void op_expiry(void *ud, gw_session_t *s, int64_t exp_s)
{
    gw_gateway_t *gw = ud;
    conn_data_t *cd = lws_wsi_user(gw_session_io(s));
    if (cd == NULL || cd->session != s)
        return;
    unauth_done(gw, cd);
    gw_expiry_set(&gw->expiries, &cd->expiry, exp_s);
}

static void op_want_write(void *ud, gw_session_t *s)
{
    gw_gateway_t *gw = ud;
    struct lws *wsi = gw_session_io(s);
    conn_data_t *cd = lws_wsi_user(wsi);
    if (cd == NULL || cd->close_started)
        return;
    if (gw_session_closing(s) && !cd->close_timer) {
        cd->close_timer = true;
        gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_CLOSE,
                        chat_clock_mono_ms() + CLOSE_GRACE_MS);
    }
    if (cd->await_writable)
        return;
    if (gw->write_direct) {
        dirty_add(gw, cd);
    } else {
        cd->await_writable = true;
        lws_callback_on_writable(wsi);
    }
}

static void op_rx_pause(void *ud, gw_session_t *s, bool pause)
{
    (void)ud;
    lws_rx_flow_control(gw_session_io(s), pause ? 0 : 1);
}

/* The auth frame arrived: from now on the deadline measures the gateway, not the client
 * (CHAT_AUTH_TIMEOUT again, for the verification). */
static void op_submit_auth(void *ud, gw_session_t *s, const char *token)
{
    gw_gateway_t *gw = ud;
    conn_data_t *cd = lws_wsi_user(gw_session_io(s));
    if (cd != NULL && !cd->close_timer)
        gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_AUTH,
                        chat_clock_mono_ms() + gw->cfg->auth_timeout_ms);
    gw_auth_submit(gw, s, token);
}

/* A refresh frame of a READY session: no deadline, the auth workers always answer. */
static void op_submit_refresh(void *ud, gw_session_t *s, const char *token)
{
    gw_auth_refresh_submit(ud, s, token);
}

static chat_err_t op_submit_join(void *ud, const gw_join_req_t *req)
{
    return gw_join_submit(ud, req);
}

static chat_err_t op_submit_history(void *ud, const gw_history_req_t *req)
{
    return gw_history_submit(ud, req);
}

static chat_err_t op_submit_act_check(void *ud, const gw_act_req_t *req)
{
    return gw_act_check_submit(ud, req);
}

static chat_err_t op_send(void *ud, gw_session_t *s, const char *room, const char *cid,
                          const char *text)
{
    gw_gateway_t *gw = ud;
    return gw_inbound_send(gw->inbound, gw_session_tenant(s), room, gw_session_user(s),
                           gw_session_name(s), cid, text, gw_session_id(s), chat_clock_wall_ms());
}

static chat_err_t op_update(void *ud, gw_session_t *s, const gw_cframe_t *f)
{
    gw_gateway_t *gw = ud;
    gw_inbound_update_t u = {
        .type = f->type == GW_C_EDIT     ? CHAT_EV_EDIT
                : f->type == GW_C_DELETE ? CHAT_EV_DELETE
                                         : CHAT_EV_REACT,
        .tenant = gw_session_tenant(s),
        .room = f->room,
        .user = gw_session_user(s),
        .id = f->id,
        .text = f->text,
        .emoji = f->emoji,
        .on = f->on,
        .rid = f->rid,
        .conn = gw_session_id(s),
        .ts = chat_clock_wall_ms(),
    };
    return gw_inbound_update(gw->inbound, &u);
}

static void op_typing(void *ud, gw_session_t *s, const char *room)
{
    gw_presence_typing(ud, gw_session_tenant(s), room, gw_session_user(s), gw_session_name(s));
}

static void op_count_typing_throttled(void *ud)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(gw->stats.typing_throttled);
}

static chat_err_t op_send_read(void *ud, gw_session_t *s, const char *room, int64_t seq,
                               const char *rid)
{
    gw_gateway_t *gw = ud;
    chat_err_t err = gw_inbound_read(gw->inbound, gw_session_tenant(s), room, gw_session_user(s),
                                     seq, rid, gw_session_id(s), chat_clock_wall_ms());
    if (err == CHAT_OK)
        chat_counter_inc(gw->stats.reads_sent);
    return err;
}

static chat_err_t op_submit_rooms(void *ud, const gw_rooms_req_t *req)
{
    return gw_room_list_submit(ud, req);
}

static chat_err_t op_submit_push(void *ud, const gw_push_req_t *req, char *why, size_t whylen)
{
    return gw_push_submit(ud, req, why, whylen);
}

static bool op_tenant_send(void *ud, const char *tenant)
{
    return gw_policy_send(((gw_gateway_t *)ud)->policy, tenant);
}

static void op_online(void *ud, const char *tenant, const char *user, int delta)
{
    gw_gateway_t *gw = ud;
    chat_tenant_gauge_add(gw->stats.tenant_connections, tenant, delta);
    gw_policy_conn_note(gw->policy, tenant, delta);
    gw_online_note(ud, tenant, user, delta);
}

static void op_count_sent(void *ud, const gw_buf_t *buf)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(gw->stats.frames_sent[buf->stype < GW_S__COUNT ? buf->stype : GW_S_OTHER]);
}

static void op_count_connect(void *ud, gw_connect_result_t result)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(
        gw->stats.connects[result < GW_CONNECT__COUNT ? result : GW_CONNECT_AUTH_FAILED]);
}

static void op_note_leave(void *ud, const char *tenant, const char *room, const char *user)
{
    gw_room_list_note_leave(ud, tenant, room, user);
}

static void op_count_frame(void *ud, gw_ctype_t type)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(gw->stats.frames[type < GW_C__COUNT ? type : GW_C_INVALID]);
}

static void op_count_error(void *ud, gw_code_t code)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(gw->stats.errors[code < GW_E__COUNT ? code : GW_E_INTERNAL]);
}

static void op_count_slow_close(void *ud)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(gw->stats.slow_closes);
}

/* Logs the 1013 closes not logged yet, at most once a second (the tick flushes the rest). */
static void auth_overload_log(gw_gateway_t *gw)
{
    int64_t now = chat_clock_mono_ms();
    if (gw->auth_overloads_unlogged == 0 || now - gw->auth_overload_logged_ms < 1000)
        return;
    chat_log_warn("overloaded: tokens not verified in time, connections closed with 1013",
                  CHAT_F_INT("connections", gw->auth_overloads_unlogged),
                  CHAT_F_INT("auth_timeout_ms", gw->cfg->auth_timeout_ms),
                  CHAT_F_INT("auth_pending", chat_gauge_value(gw->stats.auth_pending)));
    gw->auth_overloads_unlogged = 0;
    gw->auth_overload_logged_ms = now;
}

static void op_count_auth_overload(void *ud)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(gw->stats.auth_overloads);
    gw->auth_overloads_unlogged++;
    auth_overload_log(gw);
}

static void op_count_refresh(void *ud, gw_refresh_result_t result)
{
    gw_gateway_t *gw = ud;
    chat_counter_inc(gw->stats.refreshes[result < GW_REFRESH__COUNT ? result : GW_REFRESH_INVALID]);
}

static void op_count_drops(void *ud, size_t n)
{
    gw_gateway_t *gw = ud;
    chat_counter_add(gw->stats.queue_drops, n);
}

/* Room table sink: deliveries go to the session's queue. */
static void sink_deliver(void *ud, void *owner, gw_buf_t *buf, int64_t seq)
{
    (void)ud;
    (void)seq;
    gw_session_enqueue(owner, buf);
}

static void sink_overflow(void *ud, void *owner)
{
    op_count_slow_close(ud);
    gw_session_close(owner, GW_CLOSE_POLICY, "too slow", false);
}

static void sink_released(void *ud, const char *tenant, const char *room, const char *user,
                          bool room_empty, bool user_gone)
{
    gw_registrations_release(ud, tenant, room, user, room_empty, user_gone);
}

/* The edge's metrics and the TLS pair (checked now: a bad file stops start-up). */
static chat_err_t edge_prepare(gw_gateway_t *gw)
{
    const gw_config_t *cfg = gw->cfg;
    static const char refused_help[] =
        "WebSocket upgrades refused with 503 by a cap of unauthenticated connections "
        "(total: CHAT_GATEWAY_UNAUTH_MAX; per_ip: CHAT_GATEWAY_UNAUTH_PER_IP_MAX).";
    static const char reload_help[] =
        "TLS certificate reloads (SIGHUP, or its files changed) by result.";
    gw->unauth_gauge = chat_metrics_gauge(
        gw->metrics, "chat_gateway_unauthenticated_connections",
        "WebSockets open that have not authenticated yet (capped by CHAT_GATEWAY_UNAUTH_MAX).",
        NULL);
    gw->upgrades_refused[UNAUTH_REFUSED_TOTAL] = chat_metrics_counter(
        gw->metrics, "chat_gateway_upgrades_refused_total", refused_help, "reason=\"total\"");
    gw->upgrades_refused[UNAUTH_REFUSED_PER_IP] = chat_metrics_counter(
        gw->metrics, "chat_gateway_upgrades_refused_total", refused_help, "reason=\"per_ip\"");
    gw->tls_reloads[0] = chat_metrics_counter(gw->metrics, "chat_gateway_tls_reloads_total",
                                              reload_help, "result=\"ok\"");
    gw->tls_reloads[1] = chat_metrics_counter(gw->metrics, "chat_gateway_tls_reloads_total",
                                              reload_help, "result=\"failed\"");
    gw->unauth_ips = chat_strmap_new();
    if (gw->unauth_ips == NULL)
        return CHAT_ERR_NOMEM;
    if (cfg->tls_cert[0] == '\0' && cfg->tls_key[0] == '\0')
        return CHAT_OK;
    gw->tls_stamp = chat_tls_files_stamp(cfg->tls_cert, cfg->tls_key);
    gw->tls_watched_ms = chat_clock_mono_ms();
    chat_err_t err = chat_tls_cert_load(cfg->tls_cert, cfg->tls_key, "CHAT_GATEWAY_TLS_CERT",
                                        "CHAT_GATEWAY_TLS_KEY", &gw->tls);
    if (err == CHAT_OK)
        chat_tls_cert_log(gw->tls, "tls: certificate loaded", "CHAT_GATEWAY_TLS_CERT");
    return err;
}

chat_err_t gw_server_prepare(gw_gateway_t *gw)
{
    const gw_config_t *cfg = gw->cfg;
    pthread_mutex_init(&gw->lws_lock, NULL);
    gw->prepared = true;
    gw->session_ops = (gw_session_ops_t){
        .want_write = op_want_write,
        .rx_pause = op_rx_pause,
        .expiry = op_expiry,
        .submit_auth = op_submit_auth,
        .submit_refresh = op_submit_refresh,
        .submit_join = op_submit_join,
        .submit_history = op_submit_history,
        .submit_act_check = op_submit_act_check,
        .send = op_send,
        .update = op_update,
        .typing = op_typing,
        .count_typing_throttled = op_count_typing_throttled,
        .send_read = op_send_read,
        .submit_rooms = op_submit_rooms,
        .submit_push = op_submit_push,
        .online = op_online,
        .tenant_send = op_tenant_send,
        .note_leave = op_note_leave,
        .count_frame = op_count_frame,
        .count_error = op_count_error,
        .count_slow_close = op_count_slow_close,
        .count_auth_overload = op_count_auth_overload,
        .count_refresh = op_count_refresh,
        .count_drops = op_count_drops,
        .count_sent = op_count_sent,
        .count_connect = op_count_connect,
    };
    gw_rooms_sink_t sink = {
        .deliver = sink_deliver,
        .overflow = sink_overflow,
        .released = sink_released,
        .ud = gw,
    };
    if (edge_prepare(gw) != CHAT_OK)
        return CHAT_ERR_CONFIG;
    gw->rooms = gw_rooms_new((size_t)cfg->send_queue, &sink);
    gw->sessions = chat_strmap_new();
    gw->write_buf = malloc(WRITE_BUF);
    gw_timeouts_init(&gw->timeouts);
    gw_expiry_init(&gw->expiries, chat_clock_wall_ms() / 1000);
    gw->write_direct = strcmp(cfg->write_mode, "direct") == 0;
    if (gw->rooms == NULL || gw->sessions == NULL || gw->write_buf == NULL)
        return CHAT_ERR_NOMEM;
    gw->session_env = (gw_session_env_t){
        .limits =
            {
                .max_frame_bytes = (size_t)cfg->max_frame_bytes,
                .max_text_chars = (size_t)cfg->max_text_chars,
                .send_queue = (size_t)cfg->send_queue,
                .rate_per_sec = (double)cfg->rate_per_sec,
                .rate_burst = (double)cfg->rate_burst,
                .rate_close_after = (unsigned)cfg->rate_close_after,
                .history_default = cfg->history_default,
                .auth_timeout_s = (int)(cfg->auth_timeout_ms / 1000),
                .typing_interval_us = GW_TYPING_INTERVAL_US,
            },
        .ops = &gw->session_ops,
        .ud = gw,
        .rooms = gw->rooms,
        .now_us = chat_clock_mono_us,
        .vapid = cfg->vapid_public[0] != '\0' ? cfg->vapid_public : NULL,
    };
    return CHAT_OK;
}

void gw_server_release(gw_gateway_t *gw)
{
    chat_tls_cert_free(gw->tls);
    gw->tls = NULL;
    chat_strmap_free(gw->unauth_ips);
    gw->unauth_ips = NULL;
    free(gw->write_buf);
    gw->write_buf = NULL;
    gw_rooms_free(gw->rooms);
    gw->rooms = NULL;
    chat_strmap_free(gw->sessions);
    gw->sessions = NULL;
    pthread_mutex_destroy(&gw->lws_lock);
}

/* ---- connections ---- */

static int conn_open(struct lws *wsi, conn_data_t *cd)
{
    gw_gateway_t *gw = gateway_of(wsi);
    if (gw->shutting_down)
        return -1;
    char id[GW_CONN_ID_MAX];
    snprintf(id, sizeof id, "%s.%s.%llu", gw->id, gw->boot, (unsigned long long)++gw->conn_seq);
    gw_session_t *s = gw_session_new(&gw->session_env, id, wsi);
    if (s == NULL || !gw_policy_conn_open(wsi, s) || !chat_strmap_put(gw->sessions, id, s)) {
        gw_session_free(s);
        return -1;
    }
    cd->session = s;
    cd->wsi = wsi;
    cd->last_rx_ms = chat_clock_mono_ms();
    gw_timeout_init(&cd->timeout);
    gw_timeout_init(&cd->expiry);
    gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_AUTH,
                    cd->last_rx_ms + gw->cfg->auth_timeout_ms);
    unauth_add(gw, wsi, cd);
    chat_gauge_add(gw->stats.connections, 1);
    chat_log_debug("connection open", CHAT_F_STR("conn", id));
    return 0;
}

static void conn_closed(struct lws *wsi, conn_data_t *cd)
{
    gw_gateway_t *gw = gateway_of(wsi);
    dirty_remove(gw, cd); /* lws frees cd after this callback */
    if (cd->session != NULL) {
        gw_timeouts_clear(&gw->timeouts, &cd->timeout);
        gw_expiry_clear(&gw->expiries, &cd->expiry);
    }
    unauth_done(gw, cd);
    gw_session_t *s = cd->session;
    if (s == NULL)
        return;
    cd->session = NULL;
    /* The code of the close frames exchanged: ours if we sent one, else the peer's; 1006
     * if none was (peer gone, killed, or a close that could not be sent). */
    int code = cd->close_started ? gw_session_close_code(s)
               : cd->peer_closed ? cd->peer_code
                                 : 1006;
    chat_counter_inc(gw->stats.disconnects[gw_stats_disconnect_slot(code)]);
    chat_log_debug("connection closed", CHAT_F_STR("conn", gw_session_id(s)),
                   CHAT_F_INT("code", code));
    chat_strmap_remove(gw->sessions, gw_session_id(s));
    gw_session_free(s);
    chat_gauge_add(gw->stats.connections, -1);
    chat_gauge_set(gw->stats.rooms, (double)gw_rooms_count(gw->rooms));
}

/* Sets the close frame's code and reason; the caller then returns -1 and lws sends the
 * close frame and waits for the peer's. From then on the callbacks leave the socket alone:
 * a second -1 would drop it at once, and a peer still sending (e.g. the rest of an
 * oversized frame) would get a reset instead of the close frame. */
static int conn_close_now(struct lws *wsi, conn_data_t *cd)
{
    const char *reason = gw_session_close_reason(cd->session);
    lws_close_reason(wsi, (enum lws_close_status)gw_session_close_code(cd->session),
                     (unsigned char *)reason, strlen(reason));
    cd->close_started = true;
    return -1;
}

/* The socket can take more (lws drained what it held): go on with the queue. */
static int conn_writable(struct lws *wsi, conn_data_t *cd)
{
    cd->await_writable = false;
    return conn_flush(gateway_of(wsi), wsi, cd) ? 0 : -1;
}

static int conn_receive(struct lws *wsi, conn_data_t *cd, const void *in, size_t len)
{
    gw_session_t *s = cd->session;
    if (s == NULL)
        return -1;
    if (cd->close_started)
        return 0;
    cd->last_rx_ms = chat_clock_mono_ms();
    gw_rx_result_t r =
        gw_session_rx(s, in, len, lws_frame_is_binary(wsi) != 0, lws_is_final_fragment(wsi) != 0,
                      lws_remaining_packet_payload(wsi));
    return r == GW_RX_CLOSE ? conn_close_now(wsi, cd) : 0;
}

/* lws's per-connection timer, armed only to close from the connection's own callback (a
 * close needs -1 returned there): at once once the queue is drained, or when the close grace
 * period of a socket that could not flush has passed. (The deadlines themselves live in
 * timeouts.c: lws's timer list costs a walk of every connection's timer per insertion.) */
static int conn_timer(struct lws *wsi, conn_data_t *cd)
{
    gw_session_t *s = cd->session;
    if (s == NULL)
        return -1;
    if (cd->close_started)
        return 0;
    if (gw_session_closing(s))
        return conn_close_now(wsi, cd);
    return 0;
}

/* True if the socket holds bytes the loop has not read yet. */
static bool conn_unread(struct lws *wsi)
{
    int n = 0;
    return ioctl(lws_get_socket_fd(wsi), FIONREAD, &n) == 0 && n > 0;
}

/* The auth deadline passed. A client that authenticated meanwhile moves on to the keepalive
 * checks. One whose bytes sit unread in its socket did send (the loop was behind): it gets a
 * little more time, a few times. The others are timed out by the session: unauthorized
 * before their auth frame, 1013 (the gateway's fault) after it. */
static void deadline_auth(gw_gateway_t *gw, conn_data_t *cd, int64_t now)
{
    gw_session_t *s = cd->session;
    if (gw_session_state(s) == GW_SESS_READY) {
        gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_KEEPALIVE,
                        cd->last_rx_ms + gw->cfg->idle_ping_ms);
        return;
    }
    if (gw_session_state(s) == GW_SESS_AWAIT_AUTH && cd->auth_graces < AUTH_UNREAD_GRACES &&
        conn_unread(cd->wsi)) {
        cd->auth_graces++;
        chat_counter_inc(gw->stats.auth_graces);
        gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_AUTH, now + AUTH_UNREAD_GRACE_MS);
        return;
    }
    gw_session_auth_timeout(s);
}

/* Keepalive: a client silent for CHAT_GATEWAY_IDLE_PING gets a ping; one still silent at
 * CHAT_GATEWAY_IDLE_HANGUP is dropped (its peer is gone: no close frame would arrive). */
static void deadline_keepalive(gw_gateway_t *gw, conn_data_t *cd, int64_t now)
{
    if (cd->ping_sent_ms != 0 && cd->last_rx_ms < cd->ping_sent_ms) {
        if (now - cd->last_rx_ms >= gw->cfg->idle_hangup_ms) {
            chat_log_debug("keepalive: no answer, hanging up",
                           CHAT_F_STR("conn", gw_session_id(cd->session)),
                           CHAT_F_INT("silent_ms", now - cd->last_rx_ms));
            chat_counter_inc(gw->stats.idle_hangups);
            lws_set_timeout(cd->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
            return;
        }
        gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_KEEPALIVE,
                        cd->last_rx_ms + gw->cfg->idle_hangup_ms);
        return;
    }
    cd->ping_sent_ms = 0;
    if (now - cd->last_rx_ms < gw->cfg->idle_ping_ms) {
        gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_KEEPALIVE,
                        cd->last_rx_ms + gw->cfg->idle_ping_ms);
        return;
    }
    /* The ping carries a payload: lws 4.1 passes an empty pong to no callback, so an empty
     * ping would never count as answered. */
    unsigned char ping[LWS_PRE + 8];
    memcpy(ping + LWS_PRE, "keepaliv", 8);
    if (lws_write(cd->wsi, ping + LWS_PRE, 8, LWS_WRITE_PING) < 0) {
        lws_set_timeout(cd->wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, LWS_TO_KILL_ASYNC);
        return;
    }
    cd->ping_sent_ms = now;
    gw_timeouts_set(&gw->timeouts, &cd->timeout, GW_TIMEOUT_KEEPALIVE,
                    cd->last_rx_ms + gw->cfg->idle_hangup_ms);
}

/* Runs every deadline that is due (from the loop's tick). */
static void deadlines_run(gw_gateway_t *gw)
{
    int64_t now = chat_clock_mono_ms();
    gw_timeout_t *t;
    gw_timeout_kind_t kind;
    while ((t = gw_timeouts_expired(&gw->timeouts, now, &kind)) != NULL) {
        conn_data_t *cd = lws_container_of(t, conn_data_t, timeout);
        if (cd->session == NULL || cd->close_started)
            continue;
        if (kind == GW_TIMEOUT_CLOSE) /* the close grace period ran out */
            lws_set_timer_usecs(cd->wsi, 1);
        else if (gw_session_closing(cd->session))
            continue;
        else if (kind == GW_TIMEOUT_AUTH)
            deadline_auth(gw, cd, now);
        else
            deadline_keepalive(gw, cd, now);
    }
    /* Tokens that expired without a refresh: error unauthorized, close 4001. One whose
     * refresh is being verified is asked again in a second. */
    int64_t now_s = chat_clock_wall_ms() / 1000;
    while ((t = gw_expiry_expired(&gw->expiries, now_s)) != NULL) {
        conn_data_t *cd = lws_container_of(t, conn_data_t, expiry);
        if (cd->session == NULL || cd->close_started || gw_session_closing(cd->session))
            continue;
        if (!gw_session_token_expired(cd->session))
            gw_expiry_set(&gw->expiries, &cd->expiry, now_s + 1); /* not due again this second */
        else if (gw_session_closing(cd->session))
            chat_counter_inc(gw->stats.expiry_closes);
    }
}

/* An upgrade while draining: 503 with Retry-After (the client, or the load balancer, goes to
 * another gateway), counted as a connect refused by the drain. */
static int upgrade_refuse_draining(gw_gateway_t *gw, struct lws *wsi)
{
    chat_counter_inc(gw->stats.connects[GW_CONNECT_DRAINING]);
    return gw_http_refuse_upgrade(wsi, "503 Service Unavailable", DRAIN_RETRY_AFTER_S,
                                  "draining\n");
}

/* An upgrade beyond a cap of unauthenticated connections: 503 with Retry-After, counted by
 * reason, logged at most once a second. */
static int upgrade_refuse_unauth(gw_gateway_t *gw, struct lws *wsi, int reason)
{
    static const char *const why[] = {"unauthenticated connections at CHAT_GATEWAY_UNAUTH_MAX",
                                      "unauthenticated connections of this address at "
                                      "CHAT_GATEWAY_UNAUTH_PER_IP_MAX"};
    chat_counter_inc(gw->upgrades_refused[reason]);
    static int64_t logged_ms;
    int64_t now = chat_clock_mono_ms();
    if (now - logged_ms >= 1000) {
        char ip[48];
        lws_get_peer_simple(wsi, ip, sizeof ip);
        chat_log_warn("upgrade refused with 503", CHAT_F_STR("reason", why[reason]),
                      CHAT_F_STR("peer", ip), CHAT_F_INT("unauthenticated", gw->unauth));
        logged_ms = now;
    }
    return gw_http_refuse_upgrade(wsi, "503 Service Unavailable", UNAUTH_RETRY_AFTER_S,
                                  "too many\n");
}

/* A WebSocket upgrade for any other path is refused like any unknown URL: with a 404
 * (returning > 0 tells lws the response was sent). */
static int upgrade_confirm(struct lws *wsi)
{
    char uri[256];
    gw_gateway_t *gw = gateway_of(wsi);
    if (gw->shutting_down)
        return -1;
    bool ws =
        lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) > 0 && strcmp(uri, WS_PATH) == 0;
    if (ws && atomic_load(&gw->draining))
        return upgrade_refuse_draining(gw, wsi);
    int refusal = ws ? unauth_refusal(gw, wsi) : -1;
    if (refusal >= 0)
        return upgrade_refuse_unauth(gw, wsi, refusal);
    if (ws)
        return gw_policy_upgrade(gw, wsi);
    return gw_http_refuse_upgrade(wsi, "404 Not Found", 0, "not found\n");
}

/* ---- TLS (CHAT_GATEWAY_TLS_CERT / _KEY) ---- */

/* lws created the listening vhost's SSL_CTX: TLS 1.2 and later only, and the certificate
 * checked at start. Non-zero fails the vhost (the gateway does not start). */
static int tls_ctx_ready(gw_gateway_t *gw, void *ssl_ctx)
{
    if (gw->tls == NULL)
        return 0;
    gw->ssl_ctx = ssl_ctx;
    if (!chat_tls_ctx_harden(ssl_ctx) || !chat_tls_cert_apply(gw->tls, ssl_ctx)) {
        chat_log_error("tls: cannot set up the listener's TLS context",
                       CHAT_F_STR("var", "CHAT_GATEWAY_TLS_CERT"));
        return 1;
    }
    return 0;
}

/* SIGHUP, or the files changed: they are read and checked again; a good pair serves every
 * new handshake from now on (established connections keep theirs), a bad one is logged and
 * the certificate in use stays. */
static void tls_reload(gw_gateway_t *gw, const char *why)
{
    if (gw->tls == NULL || gw->ssl_ctx == NULL) {
        chat_log_info("reload requested (SIGHUP): nothing to reload without TLS");
        return;
    }
    chat_log_info("tls: reloading the certificate", CHAT_F_STR("why", why));
    gw->tls_stamp = chat_tls_files_stamp(gw->cfg->tls_cert, gw->cfg->tls_key);
    chat_tls_cert_t *fresh = NULL;
    if (chat_tls_cert_load(gw->cfg->tls_cert, gw->cfg->tls_key, "CHAT_GATEWAY_TLS_CERT",
                           "CHAT_GATEWAY_TLS_KEY", &fresh) != CHAT_OK ||
        !chat_tls_cert_apply(fresh, gw->ssl_ctx)) {
        chat_tls_cert_free(fresh);
        chat_counter_inc(gw->tls_reloads[1]);
        chat_log_error("tls: reload failed; still serving the previous certificate",
                       CHAT_F_STR("sha256", chat_tls_cert_fingerprint(gw->tls)));
        /* a failed apply may have left the context half-changed: the old pair goes back */
        if (!chat_tls_cert_apply(gw->tls, gw->ssl_ctx))
            chat_log_error("tls: the previous certificate could not be restored");
        return;
    }
    chat_tls_cert_free(gw->tls);
    gw->tls = fresh;
    chat_counter_inc(gw->tls_reloads[0]);
    chat_tls_cert_log(fresh, "tls: certificate reloaded", "CHAT_GATEWAY_TLS_CERT");
}

/* Every CHAT_TLS_WATCH_MS: files that changed since the last (re)load are reloaded. */
static void tls_watch(gw_gateway_t *gw)
{
    int64_t now = chat_clock_mono_ms();
    if (gw->tls == NULL || now - gw->tls_watched_ms < CHAT_TLS_WATCH_MS)
        return;
    gw->tls_watched_ms = now;
    uint64_t stamp = chat_tls_files_stamp(gw->cfg->tls_cert, gw->cfg->tls_key);
    if (stamp != 0 && stamp != gw->tls_stamp)
        tls_reload(gw, "files changed");
}

static int on_event_dispatch(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
    conn_data_t *cd = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return gateway_of(wsi)->shutting_down ? -1 : 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return upgrade_confirm(wsi);
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS: /* user: the vhost's SSL_CTX */
        return tls_ctx_ready(gateway_of(wsi), user);
    /* Plain HTTP (http.c): lws gives each transaction fresh zeroed per-connection memory,
     * which holds the reply under way. */
    case LWS_CALLBACK_HTTP:
        return gw_http_on_request(wsi, user, &gateway_of(wsi)->http, in, len);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return gw_http_on_writable(wsi, user);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return gw_http_on_body_done(wsi, user);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        gw_http_on_drop(user);
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        return conn_open(wsi, cd);
    case LWS_CALLBACK_RECEIVE:
        return conn_receive(wsi, cd, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        if (cd != NULL)
            cd->last_rx_ms = chat_clock_mono_ms();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return conn_writable(wsi, cd);
    case LWS_CALLBACK_TIMER:
        return conn_timer(wsi, cd);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (cd != NULL && !cd->close_started) {
            const unsigned char *p = in;
            cd->peer_closed = true;
            cd->peer_code = len >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : 1005;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        conn_closed(wsi, cd);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        gw_gateway_t *gw = gateway_of(wsi);
        gw_inbox_drain(gw->inbox, DRAIN_MAX, gw);
        chat_gauge_set(gw->stats.rooms, (double)gw_rooms_count(gw->rooms));
        return 0;
    }
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Every event may have queued frames (deliveries, answers, closes): they go out before the
 * loop waits again. */
static int on_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    int rc = on_event_dispatch(wsi, reason, user, in, len);
    gw_gateway_t *gw = lws_context_user(lws_get_context(wsi));
    if (gw != NULL && gw->dirty != NULL)
        flush_dirty(gw);
    return rc;
}

static const struct lws_protocols protocols[] = {
    {
        .name = PROTOCOL_NAME,
        .callback = on_event,
        .per_session_data_size = sizeof(conn_data_t),
        .rx_buffer_size = RX_CHUNK,
        /* lws sends at most this much per send() of a raw write: the whole gather buffer */
        .tx_packet_size = WRITE_BUF,
    },
    {0},
};

/* lws's own idle pings are off (its per-connection timer is re-armed on every frame, with a
 * walk of its sorted timer list): deadlines_run pings and hangs up instead. */
static const lws_retry_bo_t idle_policy = {
    .secs_since_valid_ping = 0,
    .secs_since_valid_hangup = 0,
};

/* ---- wake-ups from other threads ---- */

static void loop_wake(void *ud)
{
    gw_gateway_t *gw = ud;
    pthread_mutex_lock(&gw->lws_lock);
    if (gw->lws != NULL)
        lws_cancel_service(gw->lws);
    pthread_mutex_unlock(&gw->lws_lock);
}

/* ---- timers and shutdown ---- */

/* Closes a session for a stop: 1012 (service restart), after what it has queued (the acks
 * already there go out first). Counted once per session. */
static void drain_close(gw_gateway_t *gw, gw_session_t *s)
{
    if (gw_session_closing(s))
        return;
    gw_session_close(s, GW_CLOSE_SERVICE_RESTART, "service restart", true);
    chat_counter_inc(gw->stats.drain_closes);
}

static void close_session_cb(const char *key, void *value, void *ud)
{
    (void)key;
    drain_close(ud, value);
}

/* Step 1 of the shutdown (at the drain's end, or at once without one): refuse new
 * connections, close every socket still open with 1012 and remove this gateway's
 * registrations and online users from Redis. The -1 of the sockets that close after the
 * online hash went leaves nothing behind (a count never stays at 0 or below). */
static void shutdown_begin(server_loop_t *loop)
{
    gw_gateway_t *gw = loop->gw;
    chat_log_info("stopping: closing connections",
                  CHAT_F_INT("connections", chat_strmap_count(gw->sessions)));
    gw->shutting_down = true;
    atomic_store(&gw->listening, false);
    gw_registrations_remove_all(gw);
    gw_online_remove(gw);
    chat_strmap_foreach(gw->sessions, close_session_cb, gw);
    loop->shutdown_deadline_us = chat_clock_mono_us() + SHUTDOWN_GRACE_US;
}

/* ---- the drain: closes spread over CHAT_GATEWAY_DRAIN ---- */

/* The sessions a drain step may close, those without a send awaiting its ack first (a send
 * answered before its connection closes needs no resend). */
typedef struct drain_pick {
    gw_session_t **v;
    size_t n;     /* filled */
    size_t ready; /* of them, without a pending send (at the front) */
    size_t cap;
} drain_pick_t;

static void drain_collect_cb(const char *key, void *value, void *ud)
{
    (void)key;
    drain_pick_t *p = ud;
    gw_session_t *s = value;
    if (gw_session_closing(s) || p->n == p->cap)
        return;
    if (gw_session_sends_pending(s) > 0) {
        p->v[p->n++] = s;
        return;
    }
    p->v[p->n++] = p->v[p->ready]; /* keep the ones awaiting acks behind */
    p->v[p->ready++] = s;
}

static void drain_step_cb(lws_sorted_usec_list_t *sul);

/* The drain is over (window out, or nobody left): the shutdown proper. */
static void drain_finish(server_loop_t *loop)
{
    gw_gateway_t *gw = loop->gw;
    chat_log_info("drain done", CHAT_F_INT("connections", loop->drain_open),
                  CHAT_F_INT("closed", loop->drain_done),
                  CHAT_F_INT("elapsed_ms", (chat_clock_mono_us() - loop->drain_start_us) / 1000),
                  CHAT_F_INT("still_open", chat_strmap_count(gw->sessions)));
    shutdown_begin(loop);
    flush_dirty(gw);
}

/* One step: close this step's share of the connections still open (gw_drain_batch). */
static void drain_step(server_loop_t *loop)
{
    gw_gateway_t *gw = loop->gw;
    int64_t now = chat_clock_mono_us();
    size_t count = chat_strmap_count(gw->sessions);
    drain_pick_t pick = {.v = count > 0 ? calloc(count, sizeof *pick.v) : NULL, .cap = count};
    if (count > 0 && pick.v == NULL) {
        drain_finish(loop); /* out of memory: close them all at once */
        return;
    }
    chat_strmap_foreach(gw->sessions, drain_collect_cb, &pick);
    if (pick.n == 0 || now >= loop->drain_end_us) {
        free(pick.v);
        drain_finish(loop);
        return;
    }
    size_t k =
        gw_drain_batch(loop->drain_open, loop->drain_done, pick.n,
                       (now - loop->drain_start_us) / 1000, gw->cfg->drain_ms, GW_DRAIN_TICK_MS);
    for (size_t i = 0; i < k; i++)
        drain_close(gw, pick.v[i]);
    loop->drain_done += k;
    free(pick.v);
    flush_dirty(gw);
    lws_sul_schedule(gw->lws, 0, &loop->drain, drain_step_cb, (lws_usec_t)GW_DRAIN_TICK_MS * 1000);
}

static void drain_step_cb(lws_sorted_usec_list_t *sul)
{
    drain_step(lws_container_of(sul, server_loop_t, drain));
}

/* A stop was asked with a drain window: new upgrades are refused from now on (503) and the
 * open connections closed a few at a time over the window; registrations stay until the
 * end, so the connections still open keep getting their rooms' messages and acks. */
static void drain_begin(server_loop_t *loop)
{
    gw_gateway_t *gw = loop->gw;
    atomic_store(&gw->draining, true);
    chat_gauge_set(gw->stats.draining, 1);
    loop->drain_start_us = chat_clock_mono_us();
    loop->drain_end_us = loop->drain_start_us + (int64_t)gw->cfg->drain_ms * 1000;
    loop->drain_open = chat_strmap_count(gw->sessions);
    chat_log_info("draining: closing connections with 1012 over the window",
                  CHAT_F_INT("connections", loop->drain_open),
                  CHAT_F_INT("window_ms", gw->cfg->drain_ms));
    drain_step(loop);
}

/* Step 2, once every socket closed (or the grace period ran out): leave the service loop. */
static void shutdown_finish(server_loop_t *loop)
{
    gw_gateway_t *gw = loop->gw;
    chat_log_info("stopping: leaving the event loop",
                  CHAT_F_INT("connections_left", chat_strmap_count(gw->sessions)));
    loop->destroy_called = true;
    struct lws_context *ctx = gw->lws;
    /* With libuv, lws_service only returns once the context is being destroyed; the poll
     * loop notices destroy_called by itself. */
    if (gw->uv_loop)
        lws_context_destroy(ctx);
    else
        lws_cancel_service(ctx);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    server_loop_t *loop = lws_container_of(sul, server_loop_t, tick);
    gw_gateway_t *gw = loop->gw;
    if (!gw->shutting_down && !atomic_load(&gw->draining) && chat_signals_stop_requested()) {
        if (gw->cfg->drain_ms > 0) {
            drain_begin(loop);
        } else {
            atomic_store(&gw->draining, true);
            chat_gauge_set(gw->stats.draining, 1);
            shutdown_begin(loop);
            flush_dirty(gw); /* the close frames, after what the sockets had queued */
        }
    }
    if (gw->shutting_down && (chat_strmap_count(gw->sessions) == 0 ||
                              chat_clock_mono_us() >= loop->shutdown_deadline_us)) {
        shutdown_finish(loop);
        return;
    }
    if (chat_signals_take_reload())
        tls_reload(gw, "SIGHUP");
    tls_watch(gw);
    chat_gauge_set(gw->stats.rooms, (double)gw_rooms_count(gw->rooms));
    deadlines_run(gw);
    flush_dirty(gw); /* errors and closes the deadlines queued */
    auth_overload_log(gw);
    lws_sul_schedule(gw->lws, 0, &loop->tick, tick_cb, TICK_US);
}

static void heartbeat_cb(lws_sorted_usec_list_t *sul)
{
    server_loop_t *loop = lws_container_of(sul, server_loop_t, heartbeat);
    gw_gateway_t *gw = loop->gw;
    if (gw->shutting_down)
        return;
    gw_registrations_refresh_all(gw);
    gw_online_refresh(gw);
    lws_sul_schedule(gw->lws, 0, &loop->heartbeat, heartbeat_cb,
                     (lws_usec_t)gw->cfg->heartbeat_ms * 1000);
}

/* With libuv, SIGTERM/SIGINT and SIGHUP arrive here (the uv loop owns those signals). */
static void on_signal(void *handle, int signum)
{
    (void)handle;
    if (signum == SIGHUP) {
        chat_signals_request_reload(); /* the next tick reloads */
        return;
    }
    chat_log_info("stop signal received", CHAT_F_INT("signal", signum));
    chat_signals_request_stop();
}

static void session_collect_cb(const char *key, void *value, void *ud)
{
    (void)key;
    gw_session_t ***next = ud;
    *(*next)++ = value;
}

/* Frees sessions whose connection lws did not report closed while destroying the context
 * (none are expected), while the workers still take their registration releases. */
static void sessions_drop_all(gw_gateway_t *gw)
{
    size_t n = chat_strmap_count(gw->sessions);
    if (n == 0)
        return;
    chat_log_warn("sessions left after the event loop", CHAT_F_INT("sessions", n));
    gw_session_t **all = calloc(n, sizeof *all);
    if (all == NULL)
        return;
    gw_session_t **next = all;
    chat_strmap_foreach(gw->sessions, session_collect_cb, &next);
    for (size_t i = 0; i < n; i++) {
        chat_strmap_remove(gw->sessions, gw_session_id(all[i]));
        gw_session_free(all[i]);
    }
    free(all);
}

/* ---- context ---- */

/* The creation info of both the context and the listening vhost. */
static void info_fill(struct lws_context_creation_info *info, gw_gateway_t *gw, bool uv)
{
    memset(info, 0, sizeof *info);
    bool any = strcmp(gw->cfg->addr, "0.0.0.0") == 0 || gw->cfg->addr[0] == '\0';
    info->port = (int)gw->cfg->port;
    info->iface = any ? NULL : gw->cfg->addr;
    info->protocols = protocols;
    info->user = gw;
    info->count_threads = 1;
    info->retry_and_idle_policy = &idle_policy;
    info->server_string = "chat-gateway";
    /* The HTTP phase (docs: README, "Limits of the edge"): a socket has
     * CHAT_GATEWAY_HANDSHAKE_TIMEOUT to finish its TLS and upgrade handshakes (lws closes
     * it otherwise, one byte at a time or none), and its request headers may take
     * CHAT_GATEWAY_HTTP_HEADER_MAX bytes (lws refuses and closes a larger request). Header
     * buffers are allocated per socket in the HTTP phase only, as many as there are file
     * descriptors. */
    unsigned handshake_s = (unsigned)((gw->cfg->handshake_timeout_ms + 999) / 1000);
    info->timeout_secs = handshake_s;
    info->timeout_secs_ah_idle = handshake_s;
    info->max_http_header_data = (unsigned short)gw->cfg->header_max;
    /* No LWS_SERVER_OPTION_VALIDATE_UTF8: invalid text is bad_request (frame parser), not a
     * close. The vhost is created separately, so that a busy port is not taken for a
     * missing event library. */
    info->options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (any || strchr(gw->cfg->addr, ':') == NULL)
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* TLS: lws creates the vhost's SSL_CTX, tls_ctx_ready installs the checked pair */
    if (gw->tls != NULL)
        info->options |=
            LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_CREATE_VHOST_SSL_CTX;
    if (uv) {
        /* lws creates its own uv loop; leave SIGSEGV/SIGFPE to the process (sanitizers). */
        info->options |= LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
        info->signal_cb = on_signal;
    }
}

/* Destroys a context outside its service loop. With libuv the handles close
 * asynchronously: the loop must run once more before the final destroy frees them. */
static void context_destroy(gw_gateway_t *gw, struct lws_context *ctx)
{
    lws_context_destroy(ctx);
    if (gw->uv_loop) {
        lws_service(ctx, 0);
        lws_context_destroy(ctx);
    }
}

/* The context with the libuv event library, or lws's poll loop if that plugin cannot be
 * loaded; then the listening vhost. NULL (logged with its variable) if the listener
 * failed. */
static struct lws_context *context_create(gw_gateway_t *gw)
{
    struct lws_context_creation_info info;
    info_fill(&info, gw, true);
    gw->uv_loop = true;
    struct lws_context *ctx = lws_create_context(&info);
    if (ctx == NULL) {
        chat_log_warn("libuv event library unavailable; using the poll loop");
        gw->uv_loop = false;
        info_fill(&info, gw, false);
        ctx = lws_create_context(&info);
    }
    if (ctx == NULL) {
        chat_log_error("cannot create the WebSocket context");
        return NULL;
    }
    if (lws_create_vhost(ctx, &info) == NULL) {
        chat_log_error("cannot listen", CHAT_F_STR("var", "CHAT_GATEWAY_PORT"),
                       CHAT_F_STR("addr", gw->cfg->addr), CHAT_F_INT("port", gw->cfg->port));
        context_destroy(gw, ctx);
        return NULL;
    }
    return ctx;
}

chat_err_t gw_server_run(gw_gateway_t *gw)
{
    lws_log_setup();
    struct lws_context *ctx = context_create(gw);
    if (ctx == NULL)
        return CHAT_ERR_IO;
    pthread_mutex_lock(&gw->lws_lock);
    gw->lws = ctx;
    pthread_mutex_unlock(&gw->lws_lock);
    gw_inbox_set_wake(gw->inbox, loop_wake, gw);
    server_loop_t loop;
    memset(&loop, 0, sizeof loop);
    loop.gw = gw;
    lws_sul_schedule(ctx, 0, &loop.tick, tick_cb, TICK_US);
    lws_sul_schedule(ctx, 0, &loop.heartbeat, heartbeat_cb,
                     (lws_usec_t)gw->cfg->heartbeat_ms * 1000);
    atomic_store(&gw->listening, true);
    chat_log_info("listening", CHAT_F_STR("addr", gw->cfg->addr), CHAT_F_INT("port", gw->cfg->port),
                  CHAT_F_STR("path", WS_PATH), CHAT_F_STR("scheme", gw->tls != NULL ? "wss" : "ws"),
                  CHAT_F_STR("event_loop", gw->uv_loop ? "libuv" : "poll"));
    while (!loop.destroy_called) {
        if (lws_service(ctx, 0) < 0 && !gw->uv_loop)
            break;
    }
    atomic_store(&gw->listening, false);
    gw_inbox_set_wake(gw->inbox, NULL, NULL);
    pthread_mutex_lock(&gw->lws_lock);
    gw->lws = NULL;
    pthread_mutex_unlock(&gw->lws_lock);
    lws_context_destroy(ctx);
    sessions_drop_all(gw);
    return CHAT_OK;
}
