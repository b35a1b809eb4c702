/* Outgoing frames of the gateway: a reference-counted buffer holds one serialised server
 * frame with the headroom libwebsockets writes its frame header into, so one delivery is
 * encoded once and shared by every socket that receives it; a bounded FIFO of such
 * buffers is a socket's write queue (and a pending subscription's held deliveries). */
#ifndef CHAT_GATEWAY_OUTQ_H
#define CHAT_GATEWAY_OUTQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes reserved before the payload; server.c checks that it covers LWS_PRE. */
#define GW_BUF_PRE 16

/* The type of a server frame, for chat_gateway_frames_sent_total{type} (msg frames are
 * "message"; ok and anything unknown "other"). */
typedef enum gw_stype {
    GW_S_WELCOME = 0,
    GW_S_ACK,
    GW_S_MESSAGE,
    GW_S_UPDATE,
    GW_S_ERROR,
    GW_S_JOINED,
    GW_S_HISTORY,
    GW_S_PRESENCE,
    GW_S_TYPING,
    GW_S_READ,
    GW_S_ROOMS,
    GW_S_LEFT,
    GW_S_NOTICE,
    GW_S_PONG,
    GW_S_OTHER,
    GW_S__COUNT
} gw_stype_t;

/* The label value of a type: "welcome", "ack", "message", ... */
const char *gw_stype_name(gw_stype_t type);

/* The type of the serialised frame of len bytes: its first "type" member (every builder
 * writes it first). GW_S_OTHER if there is none or it is not one of the above. */
gw_stype_t gw_stype_of(const void *payload, size_t len);

typedef struct gw_buf {
    atomic_uint refs;
    uint8_t stype;        /* gw_stype_t of the payload, found once when the buffer is made */
    size_t len;           /* payload bytes, without headroom */
    unsigned char data[]; /* GW_BUF_PRE bytes of headroom, payload, NUL */
} gw_buf_t;

/* Copies len bytes of payload into a new buffer with one reference. NULL if out of
 * memory. */
gw_buf_t *gw_buf_new(const void *payload, size_t len);

/* Takes over a malloc'd NUL-terminated JSON text (frees it) and returns a buffer holding a
 * copy with headroom, or NULL (text is freed in every case). */
gw_buf_t *gw_buf_take_text(char *text);

/* Adds a reference and returns b. Thread-safe. */
gw_buf_t *gw_buf_ref(gw_buf_t *b);

/* Drops a reference; the last one frees. Accepts NULL. Thread-safe. */
void gw_buf_unref(gw_buf_t *b);

/* The payload (after the headroom); its writable headroom precedes it. */
static inline unsigned char *gw_buf_payload(gw_buf_t *b)
{
    return b->data + GW_BUF_PRE;
}

/* One queued frame: its buffer (one reference owned by the queue) and, for a msg frame,
 * its seq (0 for any other frame). */
typedef struct gw_outq_entry {
    gw_buf_t *buf;
    int64_t seq;
} gw_outq_entry_t;

/* Bounded FIFO. The ring grows by doubling up to cap entries, so an idle socket costs
 * little memory. Not thread-safe: a queue belongs to the event loop. */
typedef struct gw_outq {
    gw_outq_entry_t *ring;
    size_t alloc; /* ring slots allocated (power of two) */
    size_t head;  /* index of the oldest entry */
    size_t len;
    size_t cap; /* most entries the queue accepts */
} gw_outq_t;

void gw_outq_init(gw_outq_t *q, size_t cap);

/* Drops every entry (unref) and frees the ring. The queue can be used again. */
void gw_outq_clear(gw_outq_t *q);

/* Appends buf (taking over the caller's reference). Returns false, keeping nothing and
 * dropping the reference, if the queue already holds cap entries or memory ran out. */
bool gw_outq_push(gw_outq_t *q, gw_buf_t *buf, int64_t seq);

/* Removes the oldest entry into *out (the reference passes to the caller). Returns false if
 * empty. */
bool gw_outq_pop(gw_outq_t *q, gw_outq_entry_t *out);

static inline size_t gw_outq_len(const gw_outq_t *q)
{
    return q->len;
}

static inline size_t gw_outq_room(const gw_outq_t *q)
{
    return q->len < q->cap ? q->cap - q->len : 0;
}

#endif
