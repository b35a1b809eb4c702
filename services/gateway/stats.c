/* Registration of the gateway's metrics (see stats.h). */
#include "services/gateway/stats.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool labelled_counters(chat_metrics_t *m, const char *name, const char *help,
                              const char *label, size_t n, const char *(*value)(int),
                              chat_counter_t **out)
{
    for (size_t i = 0; i < n; i++) {
        char labels[64];
        snprintf(labels, sizeof labels, "%s=\"%s\"", label, value((int)i));
        out[i] = chat_metrics_counter(m, name, help, labels);
        if (out[i] == NULL)
            return false;
    }
    return true;
}

static const char *frame_label(int type)
{
    return gw_ctype_name((gw_ctype_t)type);
}

static const char *code_label(int code)
{
    return gw_code_name((gw_code_t)code);
}

static const char *refresh_label(int result)
{
    return gw_refresh_result_name((gw_refresh_result_t)result);
}

static const char *fill_label(int result)
{
    return gw_recent_fill_result_name((gw_recent_fill_result_t)result);
}

/* chat_gateway_recent_reads_total{op, result}: every op with every result. */
static bool recent_read_counters(chat_metrics_t *m, gw_stats_t *st)
{
    static const char *const ops[GW_RECENT_OP__COUNT] = {
        [GW_RECENT_OP_JOIN] = "join", [GW_RECENT_OP_HISTORY] = "history"};
    for (int op = 0; op < GW_RECENT_OP__COUNT; op++) {
        for (int r = 0; r < CHAT_RECENT__COUNT; r++) {
            char labels[64];
            snprintf(labels, sizeof labels, "op=\"%s\",result=\"%s\"", ops[op],
                     chat_recent_result_name((chat_recent_result_t)r));
            st->recent_reads[op][r] = chat_metrics_counter(
                m, "chat_gateway_recent_reads_total",
                "Joins and history pages by what the recent history in Redis answered (hit: "
                "served from it; otherwise read from MongoDB).",
                labels);
            if (st->recent_reads[op][r] == NULL)
                return false;
        }
    }
    return true;
}

/* The series of read marks and the room list. */
static bool read_stats_init(gw_stats_t *st, chat_metrics_t *m)
{
    st->reads_sent = chat_metrics_counter(m, "chat_gateway_reads_total",
                                          "Read marks produced to chat.inbound.", NULL);
    st->unread_counts[0] = chat_metrics_counter(
        m, "chat_gateway_unread_counts_total",
        "Unread counts of joins and room lists, by where they were counted.", "source=\"mongodb\"");
    st->unread_counts[1] = chat_metrics_counter(
        m, "chat_gateway_unread_counts_total",
        "Unread counts of joins and room lists, by where they were counted.", "source=\"redis\"");
    st->room_index_writes =
        chat_metrics_counter(m, "chat_gateway_room_index_writes_total",
                             "First joins of a user's room written to MongoDB user_rooms.", NULL);
    st->room_index_errors = chat_metrics_counter(
        m, "chat_gateway_room_index_errors_total",
        "Writes of user_rooms (joins, leaves) that failed (retried on the next join).", NULL);
    st->rooms_seconds = chat_metrics_histogram(
        m, "chat_gateway_rooms_seconds", "Time from rooms frame to its answer.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    return st->reads_sent != NULL && st->unread_counts[0] != NULL && st->unread_counts[1] != NULL &&
           st->room_index_writes != NULL && st->room_index_errors != NULL &&
           st->rooms_seconds != NULL;
}

static const int disconnect_codes[GW_DISCONNECT_SLOTS - 1] = {
    1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012, 1013,
    4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009,
};

size_t gw_stats_disconnect_slot(int code)
{
    for (size_t i = 0; i < GW_DISCONNECT_SLOTS - 1; i++)
        if (disconnect_codes[i] == code)
            return i;
    return GW_DISCONNECT_SLOTS - 1;
}

const char *gw_stats_disconnect_label(size_t slot)
{
    static const char *const labels[GW_DISCONNECT_SLOTS - 1] = {
        "1000", "1001", "1005", "1006", "1008", "1009", "1011", "1012", "1013",
        "4001", "4002", "4003", "4004", "4005", "4006", "4007", "4008", "4009",
    };
    return slot < GW_DISCONNECT_SLOTS - 1 ? labels[slot] : "other";
}

void gw_stats_observe_seconds(chat_histogram_t *h, double seconds)
{
    gw_stats_observe_seconds_n(h, seconds, 1);
}

void gw_stats_observe_seconds_n(chat_histogram_t *h, double seconds, uint64_t n)
{
    chat_histogram_observe_n(h, seconds > 0 ? seconds : 0, n);
}

static const char *disconnect_label(int slot)
{
    return gw_stats_disconnect_label((size_t)slot);
}

static const char *connect_label(int result)
{
    return gw_connect_result_name((gw_connect_result_t)result);
}

static const char *stype_label(int type)
{
    return gw_stype_name((gw_stype_t)type);
}

/* The connection series of docs/metrics.md: starts, ends, frames sent, latencies, drain. */
static bool connection_stats_init(gw_stats_t *st, chat_metrics_t *m, const char *tenants_allow,
                                  int tenants_max)
{
    bool ok = labelled_counters(m, "chat_gateway_connects_total",
                                "WebSocket upgrades by how their start ended (welcome: "
                                "authenticated; auth_failed; auth_timeout; overload: 1013; "
                                "draining: refused or closed by a drain).",
                                "result", GW_CONNECT__COUNT, connect_label, st->connects);
    ok = ok && labelled_counters(m, "chat_gateway_disconnects_total",
                                 "Closed WebSockets by close code (1006: no close frame was "
                                 "exchanged; other: a code not listed).",
                                 "code", GW_DISCONNECT_SLOTS, disconnect_label, st->disconnects);
    ok = ok && labelled_counters(m, "chat_gateway_frames_sent_total",
                                 "Server frames queued to clients, by type.", "type", GW_S__COUNT,
                                 stype_label, st->frames_sent);
    st->send_ack_seconds = chat_metrics_histogram(
        m, "chat_gateway_send_ack_seconds",
        "Time from a send frame received to its ack queued (stored in MongoDB first).", NULL,
        chat_metrics_slo_buckets, chat_metrics_slo_nbuckets);
    st->deliver_seconds = chat_metrics_histogram(
        m, "chat_gateway_deliver_seconds",
        "Send -> deliver: from the send received (by its gateway or the api) to the msg frame "
        "queued on this gateway, per delivery (wall clocks; negative clamped to 0).",
        NULL, chat_metrics_slo_buckets, chat_metrics_slo_nbuckets);
    st->draining = chat_metrics_gauge(m, "chat_gateway_draining",
                                      "1 while the gateway drains (after SIGTERM), else 0.", NULL);
    st->drain_closes = chat_metrics_counter(
        m, "chat_gateway_drain_closes_total",
        "Connections closed by a drain with 1012 (service restart: reconnect elsewhere).", NULL);
    st->tenant_labels = chat_tenant_labels_new(tenants_allow, tenants_max);
    if (st->tenant_labels != NULL)
        st->tenant_connections = chat_tenant_gauge_new(
            st->tenant_labels, m, "chat_gateway_tenant_connections",
            "Open authenticated WebSocket connections per tenant (bounded: see "
            "CHAT_METRICS_TENANTS).",
            NULL);
    return ok && st->send_ack_seconds != NULL && st->deliver_seconds != NULL &&
           st->draining != NULL && st->drain_closes != NULL && st->tenant_connections != NULL;
}

void gw_stats_free(gw_stats_t *st)
{
    chat_tenant_labels_destroy(st->tenant_labels);
    st->tenant_labels = NULL;
    st->tenant_connections = NULL;
}

chat_err_t gw_stats_init(gw_stats_t *st, chat_metrics_t *m, const char *tenants_allow,
                         int tenants_max)
{
    memset(st, 0, sizeof *st);
    st->connections =
        chat_metrics_gauge(m, "chat_gateway_connections", "Open WebSocket connections.", NULL);
    st->rooms = chat_metrics_gauge(m, "chat_gateway_rooms",
                                   "Rooms with at least one subscriber on this gateway.", NULL);
    bool ok = st->connections != NULL && st->rooms != NULL;
    ok = ok && labelled_counters(m, "chat_gateway_frames_total",
                                 "Client frames received, by type (invalid: unparsable).", "type",
                                 GW_C__COUNT, frame_label, st->frames);
    ok = ok && labelled_counters(m, "chat_gateway_errors_total", "Error frames sent, by code.",
                                 "code", GW_E__COUNT, code_label, st->errors);
    ok = ok && labelled_counters(m, "chat_gateway_refreshes_total",
                                 "Refresh frames (a new token on an open connection), by result "
                                 "(ok; invalid: bad, forged or expired token; other_user: a "
                                 "token of another tenant or user; failed: the tenant lookup "
                                 "failed; busy: another refresh was being verified).",
                                 "result", GW_REFRESH__COUNT, refresh_label, st->refreshes);
    ok = ok && recent_read_counters(m, st);
    ok = ok && labelled_counters(m, "chat_gateway_recent_fills_total",
                                 "Rooms filled into the recent history from a join's MongoDB read "
                                 "(raced: the room was written meanwhile, nothing filled).",
                                 "result", GW_RECENT_FILL__COUNT, fill_label, st->recent_fills);
    st->deliveries = chat_metrics_counter(m, "chat_gateway_deliveries_total",
                                          "Frames from chat.deliver queued to sockets.", NULL);
    st->unrouted = chat_metrics_counter(m, "chat_gateway_deliveries_unrouted_total",
                                        "chat.deliver items that no local socket took.", NULL);
    st->slow_closes =
        chat_metrics_counter(m, "chat_gateway_write_queue_closes_total",
                             "Sockets closed with 1008 because their write queue was full.", NULL);
    st->queue_drops = chat_metrics_counter(
        m, "chat_gateway_write_queue_drops_total",
        "Frames discarded because their socket was closing or its queue was full.", NULL);
    st->writes = chat_metrics_counter(m, "chat_gateway_frames_written_total",
                                      "Frames written to sockets.", NULL);
    st->socket_writes = chat_metrics_counter(
        m, "chat_gateway_socket_writes_total",
        "Writes to sockets (system calls); each carries every frame queued for its socket, up "
        "to 64 KiB.",
        NULL);
    st->send_failures = chat_metrics_counter(m, "chat_gateway_send_failures_total",
                                             "Sends not delivered to chat.inbound.", NULL);
    st->registry_errors = chat_metrics_counter(m, "chat_gateway_registry_errors_total",
                                               "Failed Redis registration updates.", NULL);
    st->registrations_lapsed = chat_metrics_counter(
        m, "chat_gateway_registrations_lapsed_total",
        "Rooms whose registration of this gateway had expired when its heartbeat came (late): "
        "broadcast did not send them here meanwhile, so members here may have missed messages.",
        NULL);
    st->lapse_frames = chat_metrics_counter(
        m, "chat_gateway_lapse_caught_up_frames_total",
        "Messages and updates sent to members after a lapsed registration: what they had missed "
        "while broadcast did not send the room here.",
        NULL);
    st->auth_overloads = chat_metrics_counter(
        m, "chat_gateway_auth_overload_closes_total",
        "Connections closed with 1013 (try again later): their token was not verified within "
        "CHAT_AUTH_TIMEOUT of its arrival.",
        NULL);
    st->auth_lookups =
        chat_metrics_counter(m, "chat_gateway_auth_lookups_total",
                             "Auth frames whose tenant secret was not cached (a worker looked it "
                             "up); the others are verified on the event loop at once.",
                             NULL);
    st->auth_graces = chat_metrics_counter(
        m, "chat_gateway_auth_deadline_extensions_total",
        "Auth deadlines extended because the client's bytes were still unread in its socket "
        "(the loop was behind, not the client).",
        NULL);
    st->expiry_closes = chat_metrics_counter(
        m, "chat_gateway_token_expiry_closes_total",
        "Connections closed with 4001 because their token expired without a refresh.", NULL);
    st->idle_hangups = chat_metrics_counter(
        m, "chat_gateway_idle_hangups_total",
        "Connections dropped after CHAT_GATEWAY_IDLE_HANGUP without a frame or an "
        "answer to the keepalive ping.",
        NULL);
    static const char typing[] = "chat_gateway_typing_total";
    static const char typing_help[] =
        "Typing frames of clients: forwarded to chat.events, throttled (within 2 s of the "
        "user's last one in the room; dropped silently), failed (producer queue full).";
    st->typing_forwarded = chat_metrics_counter(m, typing, typing_help, "result=\"forwarded\"");
    st->typing_throttled = chat_metrics_counter(m, typing, typing_help, "result=\"throttled\"");
    st->typing_failed = chat_metrics_counter(m, typing, typing_help, "result=\"failed\"");
    static const char presence[] = "chat_gateway_presence_events_total";
    static const char presence_help[] =
        "Presence events produced to chat.events: a user's first connection in a room on any "
        "gateway (online) or their last one gone (offline).";
    st->presence_events[1] = chat_metrics_counter(m, presence, presence_help, "online=\"true\"");
    st->presence_events[0] = chat_metrics_counter(m, presence, presence_help, "online=\"false\"");
    st->presence_expired = chat_metrics_counter(
        m, "chat_gateway_presence_expired_total",
        "Users gone offline because every gateway holding them stopped refreshing (found "
        "expired by this gateway's join or heartbeat).",
        NULL);
    st->auth_pending = chat_metrics_gauge(m, "chat_gateway_auth_pending",
                                          "Auth frames waiting for their tenant lookup.", NULL);
    st->auth_seconds = chat_metrics_histogram(
        m, "chat_gateway_auth_seconds", "Time from auth frame to welcome or refusal.", NULL,
        chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    st->join_seconds =
        chat_metrics_histogram(m, "chat_gateway_join_seconds", "Time from join frame to joined.",
                               NULL, chat_metrics_latency_buckets, chat_metrics_latency_nbuckets);
    ok = ok && read_stats_init(st, m);
    ok = ok && connection_stats_init(st, m, tenants_allow, tenants_max);
    ok = ok && st->deliveries != NULL && st->unrouted != NULL && st->slow_closes != NULL &&
         st->queue_drops != NULL && st->writes != NULL && st->socket_writes != NULL &&
         st->send_failures != NULL && st->registry_errors != NULL && st->auth_seconds != NULL &&
         st->registrations_lapsed != NULL && st->lapse_frames != NULL && st->join_seconds != NULL &&
         st->auth_overloads != NULL && st->auth_lookups != NULL && st->auth_pending != NULL &&
         st->auth_graces != NULL && st->idle_hangups != NULL && st->expiry_closes != NULL &&
         st->typing_forwarded != NULL && st->typing_throttled != NULL &&
         st->typing_failed != NULL && st->presence_events[0] != NULL &&
         st->presence_events[1] != NULL && st->presence_expired != NULL;
    return ok ? CHAT_OK : CHAT_ERR_NOMEM;
}
