/* Fan-out of chat.messages and chat.events events into per-gateway chat.deliver items: a
 * msg, typing or presence frame is built and serialised once per event and shared by every
 * gateway's list (each gateway's record copies the bytes instead of printing the frame
 * again); acks and errors go to one connection.
 * Lists keep input order, which keeps each room's seq order on every gateway. */
#include "services/broadcast/fanout.h"

#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/contract.h"
#include "common/deliver_codec.h"
#include "common/frames.h"
#include "common/log.h"

/* One item of a gateway's list; strings are borrowed from the event, frame from f->frames. */
typedef struct fanout_entry {
    const char *tenant;
    const char *room;
    int64_t seq;  /* 0: not a msg item */
    int64_t sent; /* msg items: when the send was received (0: unknown) */
    cJSON *frame;
    const char *conn;        /* NULL: every subscriber of the room on that gateway */
    const char *except_user; /* NULL, or whose sockets the item skips (typing, presence) */
    const char *end;         /* NULL, or the subscriptions the item ends (deliver_codec.h) */
    const char *end_user;
} fanout_entry_t;

typedef struct fanout_list {
    fanout_entry_t *v;
    size_t n, cap;
} fanout_list_t;

struct broadcast_fanout {
    int32_t ngateways;
    size_t lists_cap;
    fanout_list_t *lists; /* one per gateway index */
    uint64_t *seen;       /* per gateway: the event serial that last reached it (dedup) */
    uint64_t serial;      /* events added since creation */
    cJSON **frames;       /* frames owned by the batch */
    size_t nframes, frames_cap;
    broadcast_api_reply_t *replies; /* answers to api origins */
    size_t nreplies, replies_cap;
    chat_deliver_item_t *scratch; /* items handed to the encoder */
    size_t scratch_cap;
    broadcast_fanout_stats_t stats;
};

broadcast_fanout_t *broadcast_fanout_new(void)
{
    broadcast_fanout_t *f = calloc(1, sizeof *f);
    if (f != NULL)
        f->stats.unknown_gateway_example = -1;
    return f;
}

static void frames_clear(broadcast_fanout_t *f)
{
    for (size_t i = 0; i < f->nframes; i++)
        cJSON_Delete(f->frames[i]);
    f->nframes = 0;
}

void broadcast_fanout_free(broadcast_fanout_t *f)
{
    if (f == NULL)
        return;
    frames_clear(f);
    for (size_t i = 0; i < f->lists_cap; i++)
        free(f->lists[i].v);
    free(f->lists);
    free(f->seen);
    free(f->frames);
    free(f->replies);
    free(f->scratch);
    free(f);
}

chat_err_t broadcast_fanout_reset(broadcast_fanout_t *f, int32_t ngateways)
{
    if (f == NULL || ngateways < 0)
        return CHAT_ERR_INVALID;
    size_t need = (size_t)ngateways;
    if (need > f->lists_cap) {
        fanout_list_t *lists = realloc(f->lists, need * sizeof *lists);
        if (lists == NULL)
            return CHAT_ERR_NOMEM;
        f->lists = lists;
        uint64_t *seen = realloc(f->seen, need * sizeof *seen);
        if (seen == NULL)
            return CHAT_ERR_NOMEM;
        f->seen = seen;
        memset(lists + f->lists_cap, 0, (need - f->lists_cap) * sizeof *lists);
        memset(seen + f->lists_cap, 0, (need - f->lists_cap) * sizeof *seen);
        f->lists_cap = need;
    }
    for (size_t i = 0; i < f->lists_cap; i++)
        f->lists[i].n = 0;
    frames_clear(f);
    f->nreplies = 0;
    f->ngateways = ngateways;
    memset(&f->stats, 0, sizeof f->stats);
    f->stats.unknown_gateway_example = -1;
    return CHAT_OK;
}

/* Takes ownership of frame (NULL is passed through: the caller's allocation failed). */
static cJSON *frame_keep(broadcast_fanout_t *f, cJSON *frame)
{
    if (frame == NULL)
        return NULL;
    cJSON **frames = chat_array_grow(f->frames, &f->frames_cap, f->nframes + 1, sizeof *frames);
    if (frames == NULL) {
        cJSON_Delete(frame);
        return NULL;
    }
    f->frames = frames;
    f->frames[f->nframes++] = frame;
    return frame;
}

/* Counts a delivery to an index outside 0..ngateways-1 (-1: not a gateway index). */
static void unknown_gateway(broadcast_fanout_t *f, int32_t gw)
{
    f->stats.unknown_gateway++;
    f->stats.unknown_gateway_example = gw;
}

/* Appends one item to gateway gw's list. */
static chat_err_t list_push(broadcast_fanout_t *f, int32_t gw, const chat_event_t *ev, int64_t seq,
                            cJSON *frame, const char *conn)
{
    fanout_list_t *l = &f->lists[gw];
    fanout_entry_t *v = chat_array_grow(l->v, &l->cap, l->n + 1, sizeof *v);
    if (v == NULL)
        return CHAT_ERR_NOMEM;
    l->v = v;
    l->v[l->n++] = (fanout_entry_t){
        .tenant = ev->tenant, .room = ev->room, .seq = seq, .frame = frame, .conn = conn};
    return CHAT_OK;
}

/* obj printed once into a raw node that the batch keeps (obj is deleted). NULL if out of
 * memory (or obj is NULL). */
static cJSON *frame_keep_printed(broadcast_fanout_t *f, cJSON *obj)
{
    if (obj == NULL)
        return NULL;
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    cJSON *frame = text != NULL ? cJSON_CreateRaw(text) : NULL;
    cJSON_free(text);
    return frame_keep(f, frame);
}

/* The client ack frame of a msg or ack event (chat_frame_ack_new), or NULL (out of memory or
 * fields missing: *incomplete tells which). */
static cJSON *ack_frame_new(const chat_event_t *ev, bool *incomplete)
{
    if (ev->op != NULL) /* of an edit, delete or react */
        *incomplete = ev->room == NULL || ev->id == NULL || !ev->has_seq;
    else
        *incomplete =
            ev->cid == NULL || ev->room == NULL || ev->id == NULL || !ev->has_seq || !ev->has_ts;
    return *incomplete ? NULL : chat_frame_ack_new(ev);
}

/* The client error frame of a reject event (chat_frame_error_new), or NULL (as above). */
static cJSON *error_frame_new(const chat_event_t *ev, bool *incomplete)
{
    *incomplete = ev->code == NULL || ev->message == NULL;
    return *incomplete ? NULL : chat_frame_error_new(ev->code, ev->message, ev->rid, ev->cid);
}

/* Keeps the answer (built by make from ev) to a request of the api service, printed once. */
static chat_err_t to_api(broadcast_fanout_t *f, const chat_event_t *ev,
                         cJSON *(*make)(const chat_event_t *, bool *))
{
    bool incomplete = false;
    cJSON *obj = make(ev, &incomplete);
    if (incomplete) {
        f->stats.incomplete++;
        return CHAT_OK;
    }
    cJSON *frame = frame_keep_printed(f, obj);
    broadcast_api_reply_t *v =
        frame != NULL ? chat_array_grow(f->replies, &f->replies_cap, f->nreplies + 1, sizeof *v)
                      : NULL;
    if (v == NULL)
        return CHAT_ERR_NOMEM;
    f->replies = v;
    f->replies[f->nreplies++] = (broadcast_api_reply_t){
        .conn = ev->origin_conn, .frame = frame->valuestring, .len = strlen(frame->valuestring)};
    f->stats.api_replies++;
    return CHAT_OK;
}

/* Queues frame (built by make from ev) for the event's origin connection (an api origin's
 * goes to the api replies). Events without an origin, or from a gateway index we cannot
 * deliver to, are counted and skipped. */
static chat_err_t to_origin(broadcast_fanout_t *f, const chat_event_t *ev,
                            cJSON *(*make)(const chat_event_t *, bool *), uint64_t *counter)
{
    if (ev->origin_gw == NULL || ev->origin_conn == NULL)
        return CHAT_OK;
    if (chat_origin_is_api(ev->origin_gw))
        return to_api(f, ev, make);
    int32_t gw = chat_gateway_partition(ev->origin_gw);
    if (gw < 0 || gw >= f->ngateways) {
        unknown_gateway(f, gw);
        return CHAT_OK;
    }
    bool incomplete = false;
    cJSON *frame = frame_keep(f, make(ev, &incomplete));
    if (incomplete) {
        f->stats.incomplete++;
        return CHAT_OK;
    }
    if (frame == NULL)
        return CHAT_ERR_NOMEM;
    chat_err_t err = list_push(f, gw, ev, 0, frame, ev->origin_conn);
    if (err == CHAT_OK)
        (*counter)++;
    return err;
}

/* A msg notice that ends subscriptions says so on its items (docs/server-api.md): a removed
 * member's, or everyone's when the room is deleted. Other events: nothing to do but the test
 * of one field. */
static void notice_ends(const chat_event_t *ev, fanout_entry_t *e)
{
    if (ev->notice == NULL || ev->type != CHAT_EV_MSG)
        return;
    if (strcmp(ev->notice, "member_removed") == 0 && ev->target != NULL) {
        e->end = "removed";
        e->end_user = ev->target;
    } else if (strcmp(ev->notice, "room_deleted") == 0) {
        e->end = "deleted";
    }
}

/* Queues frame once for every distinct follower gateway in range (the item's seq = order, 0
 * for none; except_user, if not NULL, skips that user's sockets there); *count grows by one per
 * gateway. */
static chat_err_t to_followers(broadcast_fanout_t *f, const chat_event_t *ev,
                               const int32_t *followers, size_t nfollowers, int64_t order,
                               cJSON *frame, const char *except_user, uint64_t *count)
{
    f->serial++;
    for (size_t i = 0; i < nfollowers; i++) {
        int32_t gw = followers[i];
        if (gw < 0 || gw >= f->ngateways) {
            unknown_gateway(f, gw);
            continue;
        }
        if (f->seen[gw] == f->serial)
            continue;
        f->seen[gw] = f->serial;
        chat_err_t err = list_push(f, gw, ev, order, frame, NULL);
        if (err != CHAT_OK)
            return err;
        fanout_list_t *l = &f->lists[gw];
        l->v[l->n - 1].except_user = except_user;
        if (ev->type == CHAT_EV_MSG && ev->has_sent)
            l->v[l->n - 1].sent = ev->sent;
        notice_ends(ev, &l->v[l->n - 1]);
        (*count)++;
    }
    return CHAT_OK;
}

/* Queues the msg (or update) frame for every follower (once per gateway), then the sender's
 * (or actor's) ack. A msg item carries its seq, an update item its useq: what the gateways'
 * filters order them by. */
static chat_err_t route_msg(broadcast_fanout_t *f, const chat_event_t *ev, const int32_t *followers,
                            size_t nfollowers)
{
    bool update = ev->type == CHAT_EV_UPDATE;
    cJSON *frame = NULL;
    if (nfollowers > 0) {
        cJSON *obj = update ? chat_frame_update_new(ev) : chat_frame_msg_new(ev);
        if (obj == NULL) {
            /* Decoded events are complete; NULL here is an allocation failure or a codec
             * that disagrees with the decoder: count it, keep the batch going. */
            f->stats.incomplete++;
            return CHAT_OK;
        }
        if ((frame = frame_keep_printed(f, obj)) == NULL)
            return CHAT_ERR_NOMEM;
    }
    chat_err_t err = to_followers(f, ev, followers, nfollowers, update ? ev->useq : ev->seq, frame,
                                  NULL, update ? &f->stats.update_items : &f->stats.msg_items);
    if (err != CHAT_OK)
        return err;
    return to_origin(f, ev, ack_frame_new, &f->stats.ack_items);
}

/* The client typing frame {"type":"typing","room","user","name"?} of a typing event, or
 * the presence frame {"type":"presence","room","user","online"}; NULL if out of memory or
 * a field is missing. */
static cJSON *room_event_frame_new(const chat_event_t *ev)
{
    bool typing = ev->type == CHAT_EV_TYPING;
    if (ev->room == NULL || ev->user == NULL || (!typing && !ev->has_online))
        return NULL;
    cJSON *obj = cJSON_CreateObject();
    bool ok =
        obj != NULL &&
        cJSON_AddStringToObject(obj, "type", typing ? "typing" : "presence") != NULL &&
        cJSON_AddStringToObject(obj, "room", ev->room) != NULL &&
        cJSON_AddStringToObject(obj, "user", ev->user) != NULL &&
        (!typing || ev->name == NULL || cJSON_AddStringToObject(obj, "name", ev->name) != NULL) &&
        (typing || cJSON_AddBoolToObject(obj, "online", ev->online) != NULL);
    if (!ok) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/* Queues a typing, presence or read frame for every follower of the room (once per gateway).
 * Typing and presence skip the sockets of the user they are about (except_user): a typer's
 * own tabs do not show them typing, and a user's own connections learn nothing from their own
 * presence (the joining one has joined.online; at the last exit none is left). A read goes to
 * every subscriber, the reader's other devices included: they see the mark move. */
static chat_err_t route_room_event(broadcast_fanout_t *f, const chat_event_t *ev,
                                   const int32_t *followers, size_t nfollowers)
{
    if (nfollowers == 0)
        return CHAT_OK;
    bool read = ev->type == CHAT_EV_READ;
    cJSON *frame;
    if (read) {
        frame = frame_keep(f, chat_frame_read_new(ev));
    } else {
        cJSON *obj = room_event_frame_new(ev);
        if (obj == NULL) {
            f->stats.incomplete++;
            return CHAT_OK;
        }
        frame = frame_keep_printed(f, obj);
    }
    if (frame == NULL)
        return CHAT_ERR_NOMEM;
    uint64_t *count = read                         ? &f->stats.read_items
                      : ev->type == CHAT_EV_TYPING ? &f->stats.typing_items
                                                   : &f->stats.presence_items;
    return to_followers(f, ev, followers, nfollowers, 0, frame, read ? NULL : ev->user, count);
}

chat_err_t broadcast_fanout_add(broadcast_fanout_t *f, const chat_event_t *ev,
                                const int32_t *followers, size_t nfollowers)
{
    if (f == NULL || ev == NULL || (followers == NULL && nfollowers > 0))
        return CHAT_ERR_INVALID;
    switch (ev->type) {
    case CHAT_EV_MSG:
    case CHAT_EV_UPDATE:
        return route_msg(f, ev, followers, nfollowers);
    case CHAT_EV_ACK:
        return to_origin(f, ev, ack_frame_new, &f->stats.ack_items);
    case CHAT_EV_REJECT:
        return to_origin(f, ev, error_frame_new, &f->stats.error_items);
    case CHAT_EV_TYPING:
    case CHAT_EV_PRESENCE:
    case CHAT_EV_READ:
        return route_room_event(f, ev, followers, nfollowers);
    default:
        chat_log_debug("event type not routed by broadcast",
                       CHAT_F_STR("type", chat_event_type_name(ev->type)),
                       CHAT_F_STR("tenant", ev->tenant), CHAT_F_STR("room", ev->room));
        f->stats.unhandled++;
        return CHAT_OK;
    }
}

/* Encodes l->v[lo..hi) into one value, splitting it into as many roughly equal parts as
 * its size asks for (again, recursively, if a part is still too big). */
static chat_err_t emit_range(broadcast_fanout_t *f, int32_t gw, size_t lo, size_t hi,
                             size_t max_bytes, broadcast_record_fn emit, void *ud)
{
    fanout_list_t *l = &f->lists[gw];
    size_t count = hi - lo;
    for (size_t i = 0; i < count; i++) {
        fanout_entry_t *e = &l->v[lo + i];
        f->scratch[i] = (chat_deliver_item_t){
            .tenant = e->tenant,
            .room = e->room,
            .seq = e->seq,
            .sent = e->sent,
            .frame = e->frame,
            .conns = e->conn != NULL ? &e->conn : NULL,
            .nconns = e->conn != NULL ? 1 : 0,
            .except_user = e->except_user,
            .end = e->end,
            .end_user = e->end_user,
        };
    }
    char *value = NULL;
    size_t len = 0;
    chat_err_t err = chat_deliver_encode(f->scratch, count, &value, &len);
    if (err != CHAT_OK)
        return err;
    if (len <= max_bytes || count == 1) {
        err = emit(ud, gw, value, len, count);
        free(value);
        return err;
    }
    free(value);
    size_t parts = len / max_bytes + 1;
    if (parts > count)
        parts = count;
    for (size_t p = 0; p < parts && err == CHAT_OK; p++)
        err = emit_range(f, gw, lo + count * p / parts, lo + count * (p + 1) / parts, max_bytes,
                         emit, ud);
    return err;
}

chat_err_t broadcast_fanout_emit(broadcast_fanout_t *f, size_t max_bytes, broadcast_record_fn emit,
                                 void *ud)
{
    if (f == NULL || emit == NULL || max_bytes == 0)
        return CHAT_ERR_INVALID;
    for (int32_t gw = 0; gw < f->ngateways; gw++) {
        const fanout_list_t *l = &f->lists[gw];
        if (l->n == 0)
            continue;
        chat_deliver_item_t *scratch =
            chat_array_grow(f->scratch, &f->scratch_cap, l->n, sizeof *scratch);
        if (scratch == NULL)
            return CHAT_ERR_NOMEM;
        f->scratch = scratch;
        chat_err_t err = emit_range(f, gw, 0, l->n, max_bytes, emit, ud);
        if (err != CHAT_OK)
            return err;
    }
    return CHAT_OK;
}

const broadcast_fanout_stats_t *broadcast_fanout_stats(const broadcast_fanout_t *f)
{
    return &f->stats;
}

const broadcast_api_reply_t *broadcast_fanout_api_replies(const broadcast_fanout_t *f, size_t *n)
{
    *n = f->nreplies;
    return f->replies;
}
