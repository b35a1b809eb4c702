/* Reference-counted frame buffers and the bounded per-socket FIFO (see outq.h). */
#include "services/gateway/outq.h"

#include <stdlib.h>
#include <string.h>

#define OUTQ_MIN_ALLOC 4

static const char *const stype_names[GW_S__COUNT] = {
    [GW_S_WELCOME] = "welcome", [GW_S_ACK] = "ack",           [GW_S_MESSAGE] = "message",
    [GW_S_UPDATE] = "update",   [GW_S_ERROR] = "error",       [GW_S_JOINED] = "joined",
    [GW_S_HISTORY] = "history", [GW_S_PRESENCE] = "presence", [GW_S_TYPING] = "typing",
    [GW_S_READ] = "read",       [GW_S_ROOMS] = "rooms",       [GW_S_LEFT] = "left",
    [GW_S_NOTICE] = "notice",   [GW_S_PONG] = "pong",         [GW_S_OTHER] = "other",
};

const char *gw_stype_name(gw_stype_t type)
{
    return type < GW_S__COUNT ? stype_names[type] : "other";
}

gw_stype_t gw_stype_of(const void *payload, size_t len)
{
    static const char key[] = "\"type\":\"";
    const size_t klen = sizeof key - 1;
    if (payload == NULL)
        return GW_S_OTHER;
    const char *p = payload;
    const char *end = p + len;
    const char *at = NULL;
    for (const char *q = p; q + klen <= end; q++) {
        if (*q == '"' && memcmp(q, key, klen) == 0) {
            at = q + klen;
            break;
        }
    }
    if (at == NULL)
        return GW_S_OTHER;
    const char *close = memchr(at, '"', (size_t)(end - at));
    if (close == NULL)
        return GW_S_OTHER;
    size_t n = (size_t)(close - at);
    if (n == 3 && memcmp(at, "msg", 3) == 0)
        return GW_S_MESSAGE;
    for (int t = 0; t < GW_S_OTHER; t++) {
        if (t != GW_S_MESSAGE && strlen(stype_names[t]) == n && memcmp(at, stype_names[t], n) == 0)
            return (gw_stype_t)t;
    }
    return GW_S_OTHER;
}

gw_buf_t *gw_buf_new(const void *payload, size_t len)
{
    gw_buf_t *b = malloc(sizeof *b + GW_BUF_PRE + len + 1);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    b->stype = (uint8_t)gw_stype_of(payload, len);
    b->len = len;
    memset(b->data, 0, GW_BUF_PRE);
    if (len > 0)
        memcpy(b->data + GW_BUF_PRE, payload, len);
    b->data[GW_BUF_PRE + len] = '\0';
    return b;
}

gw_buf_t *gw_buf_take_text(char *text)
{
    if (text == NULL)
        return NULL;
    gw_buf_t *b = gw_buf_new(text, strlen(text));
    free(text);
    return b;
}

gw_buf_t *gw_buf_ref(gw_buf_t *b)
{
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void gw_buf_unref(gw_buf_t *b)
{
    if (b != NULL && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        free(b);
}

void gw_outq_init(gw_outq_t *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->cap = cap;
}

void gw_outq_clear(gw_outq_t *q)
{
    gw_outq_entry_t e;
    while (gw_outq_pop(q, &e))
        gw_buf_unref(e.buf);
    free(q->ring);
    q->ring = NULL;
    q->alloc = 0;
    q->head = 0;
}

/* Doubles the ring, unwrapping it so that the oldest entry lands at index 0. Returns false
 * if out of memory (the queue is unchanged). */
static bool outq_grow(gw_outq_t *q)
{
    size_t n = q->alloc == 0 ? OUTQ_MIN_ALLOC : q->alloc * 2;
    gw_outq_entry_t *ring = malloc(n * sizeof *ring);
    if (ring == NULL)
        return false;
    for (size_t i = 0; i < q->len; i++)
        ring[i] = q->ring[(q->head + i) & (q->alloc - 1)];
    free(q->ring);
    q->ring = ring;
    q->alloc = n;
    q->head = 0;
    return true;
}

bool gw_outq_push(gw_outq_t *q, gw_buf_t *buf, int64_t seq)
{
    if (q->len >= q->cap || (q->len == q->alloc && !outq_grow(q))) {
        gw_buf_unref(buf);
        return false;
    }
    q->ring[(q->head + q->len) & (q->alloc - 1)] = (gw_outq_entry_t){.buf = buf, .seq = seq};
    q->len++;
    return true;
}

bool gw_outq_pop(gw_outq_t *q, gw_outq_entry_t *out)
{
    if (q->len == 0)
        return false;
    *out = q->ring[q->head];
    q->head = (q->head + 1) & (q->alloc - 1);
    q->len--;
    return true;
}
