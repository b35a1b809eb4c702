/* The gateway's Prometheus series (chat_gateway_*), registered once at start; updates are
 * atomic and safe from any thread. */
#ifndef CHAT_GATEWAY_STATS_H
#define CHAT_GATEWAY_STATS_H

#include "common/err.h"
#include "common/metrics.h"
#include "common/tenant_label.h"
#include "services/gateway/frames.h"
#include "services/gateway/recent.h"
#include "services/gateway/session.h"

/* What a read of the recent history answered: a join (with its replay) or a history page. */
typedef enum gw_recent_op {
    GW_RECENT_OP_JOIN,
    GW_RECENT_OP_HISTORY,
    GW_RECENT_OP__COUNT
} gw_recent_op_t;

/* The close codes chat_gateway_disconnects_total is labelled with (every other code is
 * "other"): 1000, 1001, 1005 (a close frame without a code), 1006 (no close frame
 * exchanged), 1008, 1009, 1011, 1012, 1013, 4001..4009. */
#define GW_DISCONNECT_SLOTS 19
/* The slot of a close code in that list; GW_DISCONNECT_SLOTS - 1 ("other") if not in it. */
size_t gw_stats_disconnect_slot(int code);
/* The label value of a slot: "1000", ..., "other". */
const char *gw_stats_disconnect_label(size_t slot);

typedef struct gw_stats {
    chat_gauge_t *connections;           /* open WebSocket connections */
    chat_gauge_t *rooms;                 /* rooms with a local subscriber */
    chat_counter_t *frames[GW_C__COUNT]; /* client frames by type ("invalid": unparsable) */
    chat_counter_t *errors[GW_E__COUNT]; /* error frames sent, by code */
    chat_counter_t *deliveries;          /* frames queued to sockets from chat.deliver */
    chat_counter_t *unrouted;            /* chat.deliver items no local socket took */
    chat_counter_t *slow_closes;         /* sockets closed because their queue was full */
    chat_counter_t *queue_drops;         /* frames discarded for closing/overflowing sockets */
    chat_counter_t *writes;              /* frames written to sockets */
    chat_counter_t *socket_writes;       /* write system calls (several frames each) */
    chat_counter_t *send_failures;       /* sends whose produce to chat.inbound failed */
    chat_counter_t *registry_errors;     /* failed Redis registration pipelines */
    chat_counter_t
        *registrations_lapsed;        /* rooms whose registration expired before its heartbeat */
    chat_counter_t *lapse_frames;     /* frames sent by the catch-ups after lapses */
    chat_counter_t *auth_overloads;   /* closed with 1013: verification took too long */
    chat_counter_t *auth_lookups;     /* auth frames that needed a tenant lookup */
    chat_counter_t *auth_graces;      /* auth deadlines extended: the client's bytes unread */
    chat_counter_t *idle_hangups;     /* connections dropped: no answer to the keepalive ping */
    chat_counter_t *expiry_closes;    /* connections closed 4001: their token expired */
    chat_counter_t *typing_forwarded; /* typing frames produced to chat.events */
    chat_counter_t *typing_throttled; /* typing frames dropped: within 2 s of the last one */
    chat_counter_t *typing_failed;    /* typing frames the producer could not queue */
    /* presence events produced: [online], and offline ones caused by expired members */
    chat_counter_t *presence_events[2];
    chat_counter_t *presence_expired;
    /* refresh frames answered (a new token on an open connection), by result */
    chat_counter_t *refreshes[GW_REFRESH__COUNT];
    chat_histogram_t *auth_seconds; /* auth frame -> welcome or refusal */
    chat_gauge_t *auth_pending;     /* auth frames waiting for a tenant lookup */
    chat_histogram_t *join_seconds; /* join frame -> joined */
    /* reads of the recent history in Redis, by op and result (hit, miss, untrusted, ...) */
    chat_counter_t *recent_reads[GW_RECENT_OP__COUNT][CHAT_RECENT__COUNT];
    chat_counter_t *recent_fills[GW_RECENT_FILL__COUNT]; /* fills of cold rooms, by result */
    /* read marks and the room list (unread.c, room_list.c) */
    chat_counter_t *reads_sent;        /* read marks produced to chat.inbound */
    chat_counter_t *unread_counts[2];  /* unread counts by source: [0] MongoDB, [1] Redis */
    chat_counter_t *room_index_writes; /* first joins written to user_rooms */
    chat_counter_t *room_index_errors; /* user_rooms writes that failed */
    chat_histogram_t *rooms_seconds;   /* rooms frame -> answer */
    /* connections: how each start ended, how each ended, what was sent (docs/metrics.md) */
    chat_counter_t *connects[GW_CONNECT__COUNT];
    chat_counter_t *disconnects[GW_DISCONNECT_SLOTS];
    chat_counter_t *frames_sent[GW_S__COUNT];
    chat_histogram_t *send_ack_seconds; /* send frame received -> its ack queued */
    chat_histogram_t *deliver_seconds;  /* a message's ts -> its msg frame queued here */
    chat_gauge_t *draining;             /* 1 while draining */
    chat_counter_t *drain_closes;       /* connections closed by a drain (1012) */
    /* open authenticated connections per tenant (bounded labels); owned, see gw_stats_free */
    chat_tenant_labels_t *tenant_labels;
    chat_tenant_gauge_t *tenant_connections;
} gw_stats_t;

/* Registers every series in m; tenants_allow and tenants_max bound the tenant labels
 * (CHAT_METRICS_TENANTS, CHAT_METRICS_TENANTS_MAX). CHAT_ERR_NOMEM if one could not be
 * registered. gw_stats_free releases what it allocated (the series stay m's). */
chat_err_t gw_stats_init(gw_stats_t *st, chat_metrics_t *m, const char *tenants_allow,
                         int tenants_max);
void gw_stats_free(gw_stats_t *st);

/* Observes one duration of seconds, clamped at 0 (wall clocks of two hosts may disagree). */
void gw_stats_observe_seconds(chat_histogram_t *h, double seconds);
/* The same, n times (one per socket a delivery reached). */
void gw_stats_observe_seconds_n(chat_histogram_t *h, double seconds, uint64_t n);

#endif
